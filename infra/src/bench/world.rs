//! A local world for one benchmark: DynamoDB table, HubSpot and Stream doubles, registered visitors.

use super::meter::{metered, Meter};
use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::adapters::hubspot::HubSpotClient;
use chat_sync::adapters::stream::StreamClient;
use chat_sync::app::{App, Parts};
use chat_sync::budget::{ProcessBudget, RateLimit};
use chat_sync::config::{
    AllowedOrigins, Env, FlushSettings, HubSpotSettings, RegistrationSettings, StreamSettings,
    SupportAgent, SweeperSettings, WebhookSettings,
};
use chat_sync::domain::identity::IdentityPolicy;
use chat_sync::domain::{ChannelType, UserId};
use chat_sync::handlers::registration::Registration;
use chat_sync::ports::RateBudget;
use chat_sync::throttle::{parse_limit, RegistrationLimits};
use futures::stream::{self, StreamExt, TryStreamExt};
use sandbox::{HubSpotDouble, StreamDouble};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The fixture credentials: the events/ test secret, so the signed sample events verify against these worlds too.
pub use sandbox::fixtures::{HUBSPOT_TOKEN, STREAM_KEY, STREAM_SECRET};
pub const AGENT_ID: &str = SupportAgent::DEFAULT_ID;
/// How long one sweep may run in a benchmark.
pub(super) const SWEEP_BUDGET: Duration = Duration::from_secs(20);

pub struct Visitor {
    pub contact_id: String,
    pub visitor_id: String,
    pub channel_id: String,
}

pub struct World {
    pub hubspot: HubSpotDouble,
    /// Every DynamoDB request of the world (store and rate budget), metered by operation.
    pub meter: Arc<Meter>,
    pub dynamodb_endpoint: String,
    pub stream: StreamDouble,
    /// The app as `App::build` assembles it for production, with the flush settings of the environment (the
    /// variables that tune the Lambdas: FLUSH_LINGER_MS, ...).
    pub app: App,
    pub store: Arc<DynamoStore>,
    pub crm: Arc<HubSpotClient>,
    /// The shared HubSpot budget `crm` draws from (100 requests / 10 s, HubSpot's Free/Starter limit).
    pub budget: Arc<dyn RateBudget>,
    pub chat: Arc<StreamClient>,
    pub registration: Arc<Registration>,
    /// The same handler on a HubSpot client with a budget of its own, far above HubSpot's limit: registers the
    /// visitors a benchmark needs without spending the shared budget it measures (see [`World::setup_visitors`]).
    setup_registration: Arc<Registration>,
}

/// Registrations run at once while setting a benchmark up.
const SETUP_CONCURRENCY: usize = 8;

impl World {
    pub async fn start(dynamodb_endpoint: &str) -> Result<Self, String> {
        let hubspot = HubSpotDouble::start(HUBSPOT_TOKEN)
            .await
            .map_err(|e| format!("HubSpot double: {e}"))?;
        hubspot.define_property("chat_transcript");
        let stream = StreamDouble::start(STREAM_KEY, STREAM_SECRET)
            .await
            .map_err(|e| format!("Stream double: {e}"))?;
        let meter = Arc::new(Meter::default());
        let client = metered(
            chat_sync::app::local_dynamodb(dynamodb_endpoint).await,
            meter.clone(),
        );
        let table = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let store = Arc::new(DynamoStore::new(client, table));
        store
            .create_table()
            .await
            .map_err(|e| format!("create table: {e}"))?;
        let flush = FlushSettings::load(&Env::from_process()).map_err(|e| e.to_string())?;
        let app = App::build(parts(&hubspot, &stream, store.clone(), flush)?)
            .map_err(|e| e.to_string())?;
        let missing = || "the world's app lacks a client".to_owned();
        let (crm, budget) = (
            app.crm.clone().ok_or_else(missing)?,
            app.budget.clone().ok_or_else(missing)?,
        );
        let chat = app.chat.clone().ok_or_else(missing)?;
        // As `setup --stream-access` leaves a deployed app: the agent exists (registration only adds it to channels).
        chat.ensure_agent(
            &UserId::parse("agent", AGENT_ID).map_err(|e| e.to_string())?,
            "Support",
            true,
            Instant::now() + Duration::from_secs(10),
        )
        .await
        .map_err(|e| e.to_string())?;
        let setup_crm = Arc::new(HubSpotClient::new(
            chat_sync::adapters::http::client().map_err(|e| e.to_string())?,
            &hubspot.base_url(),
            HUBSPOT_TOKEN.into(),
            Arc::new(ProcessBudget::new(RateLimit::parse("100000/10")?)),
        ));
        let registration = app.registration().map_err(|e| e.to_string())?;
        // Setup plumbing, not the app under measurement: the app's registration handler on another HubSpot budget.
        let setup_registration = Arc::new(Registration::new(
            setup_crm,
            chat.clone(),
            store.clone(),
            Arc::new(store.throttle(&STREAM_SECRET.into())),
            chat.tokens(),
            registration_settings()?,
        ));
        Ok(Self {
            app,
            hubspot,
            meter,
            dynamodb_endpoint: dynamodb_endpoint.to_owned(),
            stream,
            store,
            crm,
            budget,
            chat,
            registration,
            setup_registration,
        })
    }

    /// Another app on this world's doubles and table, with other flush settings (its own HubSpot client, on the
    /// same budget in the table).
    pub fn app_with(&self, flush: FlushSettings) -> Result<App, String> {
        App::build(parts(
            &self.hubspot,
            &self.stream,
            self.store.clone(),
            flush,
        )?)
        .map_err(|e| e.to_string())
    }

    /// Registers visitors `0..count` for a benchmark's setup, a few at a time, outside the shared HubSpot budget;
    /// then turns on HubSpot's rolling limit (100 requests / 10 s, from an empty window) and forgets the setup's
    /// calls, so what follows is measured alone.
    pub async fn setup_visitors(&self, count: usize) -> Result<Vec<Visitor>, String> {
        let visitors = stream::iter(0..count)
            .map(|n| self.register_with(&self.setup_registration, n))
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await?;
        self.hubspot.set_rate_limit(Some(100));
        self.hubspot.clear_calls();
        Ok(visitors)
    }

    /// Registers a visitor through the registration handler, drawing on the shared HubSpot budget.
    pub async fn register(&self, n: usize) -> Result<Visitor, String> {
        self.register_with(&self.registration, n).await
    }

    async fn register_with(
        &self,
        registration: &Registration,
        n: usize,
    ) -> Result<Visitor, String> {
        let email = format!("visitor{n}@bench.example.com");
        let body =
            format!(r#"{{"firstName":"Visitor","lastName":"Number {n}","email":"{email}"}}"#);
        let request = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/registrations")
            .header("content-type", "application/json")
            .body(lambda_http::Body::Text(body))
            .map_err(|e| e.to_string())?;
        let response = registration.handle(request).await;
        let json: serde_json::Value = match response.body() {
            lambda_http::Body::Text(text) => {
                serde_json::from_str(text).map_err(|e| e.to_string())?
            }
            _ => serde_json::Value::Null,
        };
        if !response.status().is_success() {
            return Err(format!("registration failed: {json}"));
        }
        let contact = self
            .hubspot
            .contact_by_email(&email)
            .ok_or("registered contact missing in the HubSpot double")?;
        Ok(Visitor {
            contact_id: contact.id,
            visitor_id: json["customerId"].as_str().unwrap_or_default().to_owned(),
            channel_id: json["channelId"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// The contact's timeline notes, their bodies one after another in timeline order.
    pub fn notes_text(&self, contact_id: &str) -> String {
        self.hubspot
            .notes_of_contact(contact_id)
            .iter()
            .filter_map(|note| note.properties.get("hs_note_body").cloned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn transcript(&self, contact_id: &str) -> String {
        self.hubspot
            .contact(contact_id)
            .and_then(|c| c.properties.get("chat_transcript").cloned())
            .unwrap_or_default()
    }
}

/// The registration settings of a benchmark: the default limits, so a registration's latency includes its throttle
/// check (each visitor has its own e-mail; in-process requests carry no client address).
fn registration_settings() -> Result<RegistrationSettings, String> {
    Ok(RegistrationSettings {
        channel_type: ChannelType::parse("messaging").map_err(|e| e.to_string())?,
        support_agent_id: UserId::parse("agent", AGENT_ID).map_err(|e| e.to_string())?,
        visitor_token_ttl: Duration::from_secs(3_600),
        allowed_origins: AllowedOrigins::List(vec![]),
        identity: IdentityPolicy::default(),
        limits: RegistrationLimits {
            per_ip: parse_limit(RegistrationLimits::DEFAULT_PER_IP)?,
            per_email: parse_limit(RegistrationLimits::DEFAULT_PER_EMAIL)?,
        },
    })
}

/// A benchmark world's parts: the doubles, the fixture credentials, HubSpot's Free/Starter limit (100 requests /
/// 10 s) shared through the table, `flush`, and the handlers the benchmarks drive.
fn parts(
    hubspot: &HubSpotDouble,
    stream: &StreamDouble,
    store: Arc<DynamoStore>,
    flush: FlushSettings,
) -> Result<Parts, String> {
    Ok(Parts {
        store,
        hubspot: Some(HubSpotSettings {
            base_url: hubspot.base_url(),
            access_token: HUBSPOT_TOKEN.into(),
            rate_limit: RateLimit::HUBSPOT_DEFAULT,
        }),
        stream: Some(StreamSettings {
            base_url: stream.base_url(),
            api_key: STREAM_KEY.to_owned(),
            api_secret: STREAM_SECRET.into(),
        }),
        flush: Some(flush),
        registration: Some(registration_settings()?),
        webhook: Some(WebhookSettings {
            api_secret: STREAM_SECRET.into(),
            agents: vec![AGENT_ID.to_owned()],
            // From the environment, as the flush settings: `WEBHOOK_MAPPING_CACHE_SECONDS=0` measures without copies.
            mapping_cache: WebhookSettings::mapping_cache(&Env::from_process())
                .map_err(|e| e.to_string())?,
        }),
        sweeper: Some(SweeperSettings {
            budget: SWEEP_BUDGET,
            retention: None,
            metrics: false,
        }),
        hubspot_webhooks: None,
        agent_sessions: None,
    })
}

/// Serves `router` on a loopback port; returns its base URL and the server task.
pub async fn serve(router: axum::Router) -> Result<(String, tokio::task::JoinHandle<()>), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((format!("http://{addr}"), task))
}
