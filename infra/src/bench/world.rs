//! A local world for one benchmark: DynamoDB table, HubSpot and Stream doubles, registered visitors.

use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::adapters::hubspot::HubSpotClient;
use chat_sync::adapters::stream::StreamClient;
use chat_sync::budget::{BudgetPlan, RateLimit};
use chat_sync::config::{AllowedOrigins, RegistrationSettings};
use chat_sync::domain::{ChannelType, UserId};
use chat_sync::handlers::registration::Registration;
use chat_sync::ports::RateBudget;
use sandbox::{HubSpotDouble, StreamDouble};
use std::sync::Arc;
use std::time::Duration;

pub const HUBSPOT_TOKEN: &str = "bench-hubspot-token";
pub const STREAM_KEY: &str = "bench-api-key";
/// The events/ test secret, so the signed sample events verify against these worlds too.
pub const STREAM_SECRET: &str = "local-stream-secret-for-events";
pub const AGENT_ID: &str = "support-agent";

pub struct Visitor {
    pub contact_id: String,
    pub visitor_id: String,
    pub channel_id: String,
}

pub struct World {
    pub hubspot: HubSpotDouble,
    pub stream: StreamDouble,
    pub store: Arc<DynamoStore>,
    pub crm: Arc<HubSpotClient>,
    /// The shared HubSpot budget `crm` draws from (100 requests / 10 s, HubSpot's Free/Starter limit).
    pub budget: Arc<dyn RateBudget>,
    pub chat: StreamClient,
    pub registration: Arc<Registration>,
}

impl World {
    pub async fn start(dynamodb_endpoint: &str) -> Result<Self, String> {
        let hubspot = HubSpotDouble::start(HUBSPOT_TOKEN)
            .await
            .map_err(|e| format!("HubSpot double: {e}"))?;
        hubspot.define_property("chat_transcript");
        let stream = StreamDouble::start(STREAM_KEY, STREAM_SECRET)
            .await
            .map_err(|e| format!("Stream double: {e}"))?;
        let client = chat_sync::wiring::local_dynamodb(dynamodb_endpoint).await;
        let table = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let store = Arc::new(DynamoStore::new(client, table));
        store
            .create_table()
            .await
            .map_err(|e| format!("create table: {e}"))?;
        let budget: Arc<dyn RateBudget> =
            Arc::new(store.budget(BudgetPlan::new(RateLimit::HUBSPOT_DEFAULT)));
        let crm = Arc::new(HubSpotClient::new(
            &hubspot.base_url(),
            HUBSPOT_TOKEN,
            budget.clone(),
        ));
        let chat = StreamClient::new(&stream.base_url(), STREAM_KEY, STREAM_SECRET)
            .map_err(|e| e.to_string())?;
        let settings = RegistrationSettings {
            channel_type: ChannelType::parse("messaging").map_err(|e| e.to_string())?,
            support_agent_id: UserId::parse("agent", AGENT_ID).map_err(|e| e.to_string())?,
            support_agent_name: "Support".into(),
            visitor_token_ttl: Duration::from_secs(3_600),
            allowed_origins: AllowedOrigins::List(vec![]),
        };
        let registration = Arc::new(Registration::new(
            crm.clone(),
            Arc::new(chat.clone()),
            store.clone(),
            chat.tokens(),
            settings,
        ));
        Ok(Self {
            hubspot,
            stream,
            store,
            crm,
            budget,
            chat,
            registration,
        })
    }

    /// Registers a visitor through the registration handler.
    pub async fn register(&self, n: usize) -> Result<Visitor, String> {
        let email = format!("visitor{n}@bench.example.com");
        let body =
            format!(r#"{{"firstName":"Visitor","lastName":"Number {n}","email":"{email}"}}"#);
        let request = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/registrations")
            .header("content-type", "application/json")
            .body(lambda_http::Body::Text(body))
            .map_err(|e| e.to_string())?;
        let response = self.registration.handle(request).await;
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

    pub fn transcript(&self, contact_id: &str) -> String {
        self.hubspot
            .contact(contact_id)
            .and_then(|c| c.properties.get("chat_transcript").cloned())
            .unwrap_or_default()
    }
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
