//! The app under test, wired to DynamoDB Local and the HubSpot/Stream doubles over real HTTP.

use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::adapters::hubspot::HubSpotClient;
use chat_sync::adapters::stream::StreamClient;
use chat_sync::app::{App, Parts};
use chat_sync::budget::RateLimit;
use chat_sync::config::{
    AgentSessionSettings, AllowedOrigins, Env, FlushSettings, HubSpotSettings,
    HubSpotWebhooksSettings, RegistrationSettings, StreamSettings, SweeperSettings, Targets,
    WebhookSettings,
};
use chat_sync::domain::identity::{IdentityPolicy, IdentityVerifier};
use chat_sync::domain::{ChannelType, ContactId, UserId};
use chat_sync::handlers::agent_sessions::AgentSessions;
use chat_sync::handlers::hubspot_webhooks::signature::Signed;
use chat_sync::handlers::hubspot_webhooks::HubSpotWebhooks;
use chat_sync::handlers::registration::Registration;
use chat_sync::handlers::sweeper::{SweepReport, Sweeper};
use chat_sync::handlers::webhook::Webhook;
use chat_sync::ports::{LeaseOwner, Leases, RateBudget};
use chat_sync::throttle::RegistrationLimits;
use lambda_http::{Body, Request, Response};
pub use sandbox::fixtures::{
    HUBSPOT_CLIENT_SECRET, HUBSPOT_TOKEN, IDENTITY_SECRET, STREAM_KEY, STREAM_SECRET,
};
use sandbox::{DynamoDbLocal, HubSpotDouble, StreamDouble};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

pub mod roles;
pub use roles::Lambda;
use roles::{Refusals, RoleGuard};

/// A DynamoDB item as the SDK returns it.
pub type Item = HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// The key of a contact's sync record (docs/storage.md), for tests that read or set it directly.
pub fn sync_record_key(contact: &str) -> Item {
    chat_sync::adapters::dynamo::sync_record_key(&ContactId::parse(contact).expect("a contact id"))
}

pub const AGENT_ID: &str = chat_sync::config::SupportAgent::DEFAULT_ID;
/// Where HubSpot calls us in the tests (and in the files in `events/`).
pub const HUBSPOT_WEBHOOKS_URL: &str = "https://api.example.com/hubspot/webhooks";

/// The app as `App::build` assembles it for production, on DynamoDB Local and the doubles.
pub struct TestApp {
    pub hubspot: HubSpotDouble,
    pub stream: StreamDouble,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub store: Arc<DynamoStore>,
    pub registration: Arc<Registration>,
    pub webhook: Arc<Webhook>,
    pub hubspot_webhooks: Arc<HubSpotWebhooks>,
    pub crm: Arc<HubSpotClient>,
    /// The HubSpot rate budget `crm` draws from.
    pub budget: Arc<dyn RateBudget>,
    sweeper: Arc<Sweeper>,
    flush: FlushSettings,
    /// What the deployed roles would have refused the handlers ([`roles`]): checked when the app is dropped.
    refused: Refusals,
}

/// The support agent's display name in the test app.
pub const AGENT_NAME: &str = "Grace (Support)";

/// `setup --stream-access` on the Stream double: creates the agent and restricts visitors' grants.
pub async fn setup_stream_access(chat: &StreamClient) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let agent = UserId::parse("agent", AGENT_ID).expect("valid");
    chat.ensure_agent(&agent, AGENT_NAME, true, deadline)
        .await
        .expect("agent created");
    chat.ensure_agent_role(true, deadline)
        .await
        .expect("agents' role created");
    chat.restrict_visitors(
        &ChannelType::parse("messaging").expect("valid"),
        true,
        deadline,
    )
    .await
    .expect("grants set");
}

/// The registration settings of the test app: identity verification available (`IDENTITY_SECRET`), not required.
pub fn registration_settings() -> RegistrationSettings {
    RegistrationSettings {
        channel_type: ChannelType::parse("messaging").expect("valid"),
        support_agent_id: UserId::parse("agent", AGENT_ID).expect("valid"),
        visitor_token_ttl: Duration::from_secs(3_600),
        allowed_origins: AllowedOrigins::parse("http://localhost:3000").expect("valid"),
        identity: IdentityPolicy::new(Some(IdentityVerifier::new(IDENTITY_SECRET.into())), false),
        // Tests register the same e-mail many times over; the throttles' own tests turn them on.
        limits: RegistrationLimits::OFF,
    }
}

/// Flush settings for tests: short linger, small budgets, so fault tests run in seconds.
pub fn test_flush_settings() -> FlushSettings {
    FlushSettings {
        webhook_budget: Duration::from_millis(1_000),
        linger: Duration::from_millis(20),
        // Notes with the property, so a test of notes sees them after one flush; the wait's own tests set one.
        note_wait: Duration::ZERO,
        // A wait that never moves (no longer than the wait): the tests that move it set one.
        note_max_wait: Duration::ZERO,
        lease_ttl: Duration::from_secs(5),
        write_timeout: Duration::from_millis(1_500),
        late_write_window: Duration::from_secs(2),
        // The property alone, so tests count one write call per batch; the notes' own tests turn notes on.
        targets: Targets {
            notes: false,
            property: true,
        },
    }
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(test_flush_settings()).await
    }

    pub async fn start_with(flush: FlushSettings) -> Self {
        Self::start_on(&DynamoDbLocal::shared().endpoint(), flush).await
    }

    /// The app on a given DynamoDB endpoint (a test that stops and restarts its own DynamoDB Local).
    pub async fn start_on(dynamodb_endpoint: &str, flush: FlushSettings) -> Self {
        let hubspot = HubSpotDouble::start(HUBSPOT_TOKEN)
            .await
            .expect("HubSpot double starts");
        hubspot.define_property("chat_transcript");
        let stream = StreamDouble::start(STREAM_KEY, STREAM_SECRET)
            .await
            .expect("Stream double starts");
        let dynamodb = chat_sync::app::local_dynamodb(dynamodb_endpoint).await;
        let table = format!("chat-test-{}", uuid::Uuid::new_v4().simple());
        let store = Arc::new(DynamoStore::new(dynamodb.clone(), table));
        store
            .create_table()
            .await
            .expect("table created in DynamoDB Local");
        // Each Lambda's handler as deployed: an app of its own (a process of its own), reaching the table only as
        // its role in template.yaml allows.
        let refused = Refusals::default();
        let app = |lambda| {
            let store = guarded(&dynamodb, store.table(), lambda, &refused);
            App::build(parts(&hubspot, &stream, store, flush)).expect("the app builds")
        };
        let (webhook, registration) = (app(Lambda::Webhook), app(Lambda::Registration));
        let (sweeper, hubspot_webhooks) = (app(Lambda::Sweeper), app(Lambda::HubSpotWebhooks));
        let chat = registration.chat.clone().expect("Stream client");
        // What `setup --stream-access` does to a deployed app: the agent exists, visitors are confined to their
        // channels. The calls it made are forgotten, so tests count only the app's own.
        setup_stream_access(&chat).await;
        stream.clear_calls();
        Self {
            dynamodb,
            store,
            registration: registration.registration().expect("registration"),
            webhook: webhook.webhook().expect("webhook"),
            hubspot_webhooks: hubspot_webhooks
                .hubspot_webhooks()
                .expect("HubSpot webhooks"),
            sweeper: sweeper.sweeper().expect("sweeper"),
            crm: webhook.crm.clone().expect("HubSpot client"),
            budget: webhook.budget.clone().expect("HubSpot budget"),
            flush,
            hubspot,
            stream,
            refused,
        }
    }

    /// The test app's table as `lambda`'s role lets it reach it.
    pub fn store_as(&self, lambda: Lambda) -> Arc<DynamoStore> {
        guarded(&self.dynamodb, self.store.table(), lambda, &self.refused)
    }

    /// The test app's parts again, on `store`: to build a handler like the app's with one part changed.
    fn parts_on(&self, store: Arc<DynamoStore>) -> Parts {
        parts(&self.hubspot, &self.stream, store, self.flush)
    }

    /// A registration handler like the app's, with other settings, on the same doubles and table.
    pub fn registration_with(&self, settings: RegistrationSettings) -> Arc<Registration> {
        App::build(Parts {
            registration: Some(settings),
            ..self.parts_on(self.store_as(Lambda::Registration))
        })
        .and_then(|app| app.registration())
        .expect("registration builds")
    }

    /// The agent-session handler, built like the app's, for an identity provider of the test's own.
    pub fn agent_sessions_with(&self, settings: AgentSessionSettings) -> Arc<AgentSessions> {
        App::build(Parts {
            agent_sessions: Some(settings),
            ..self.parts_on(self.store_as(Lambda::AgentSessions))
        })
        .and_then(|app| app.agent_sessions())
        .expect("agent sessions build")
    }

    /// A webhook like the app's, on another store (a broken or stalled DynamoDB), writing to the same HubSpot.
    pub fn webhook_on(&self, store: Arc<DynamoStore>) -> Arc<Webhook> {
        App::build(Parts {
            flush: Some(test_flush_settings()),
            ..self.parts_on(store)
        })
        .and_then(|app| app.webhook())
        .expect("webhook builds")
    }

    /// What the deployed roles would have refused the handlers so far, and forgets it (a test of the guard).
    pub fn take_refusals(&self) -> Vec<String> {
        std::mem::take(&mut *self.refused.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The sweeper, as the schedule runs it (its budget 10 s, no retention pass: retention's tests run their own).
    pub fn sweeper(&self) -> &Sweeper {
        &self.sweeper
    }

    /// One sweep, as the schedule runs it; its report.
    pub async fn sweep(&self) -> SweepReport {
        self.sweeper.sweep().await.expect("sweep")
    }

    /// Every data item in the table, read consistently: the HubSpot rate budget's items, written whenever HubSpot is
    /// called, and the registration throttles' are not data (they name no one, and their numbers, times in
    /// milliseconds, can contain a contact id's digits).
    pub async fn data_items(&self) -> Vec<Item> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .dynamodb
                .scan()
                .table_name(self.store.table())
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .expect("scan");
            for item in output.items() {
                let pk = item.get("pk").and_then(|v| v.as_s().ok());
                if !pk.is_some_and(|pk| pk.starts_with("BUDGET#") || pk.starts_with("THROTTLE#")) {
                    found.push(item.clone());
                }
            }
            start = output.last_evaluated_key().cloned();
            if start.is_none() {
                return found;
            }
        }
    }

    /// How many data items the table holds (to prove that bad input wrote nothing).
    pub async fn item_count(&self) -> usize {
        self.data_items().await.len()
    }

    /// Takes the contact's lease for `ttl` as another holder would (a flusher, a retention pass), failing the test if
    /// it is not free; the owner gives it back (`release_lease`).
    pub async fn hold_lease(&self, contact: &ContactId, ttl: Duration) -> LeaseOwner {
        let holder = LeaseOwner::random();
        self.store
            .acquire_lease(contact, &holder, ttl)
            .await
            .expect("answered")
            .expect("the contact's lease is free");
        holder
    }

    /// The contact's transcript property in the HubSpot double.
    pub fn transcript(&self, contact_id: &str) -> String {
        self.hubspot
            .contact(contact_id)
            .and_then(|c| c.properties.get("chat_transcript").cloned())
            .unwrap_or_default()
    }
}

/// Fails the test if a handler sent a request its Lambda's role would refuse once deployed: a handler may have
/// swallowed the failure (a flush after the webhook's answer), so the test itself may not have seen it.
impl Drop for TestApp {
    fn drop(&mut self) {
        let refused = self.take_refusals();
        if !refused.is_empty() && !std::thread::panicking() {
            panic!("requests the deployed roles would refuse (template.yaml): {refused:#?}");
        }
    }
}

/// A store on `table` that reaches it as `lambda`'s role allows, its refusals kept in `refused`.
fn guarded(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    lambda: Lambda,
    refused: &Refusals,
) -> Arc<DynamoStore> {
    let client = RoleGuard::new(lambda, table, refused.clone()).guard(client);
    Arc::new(DynamoStore::new(client, table))
}

/// The parts of the test app: the doubles' URLs and the fixture credentials, HubSpot's Free/Starter rate limit,
/// the given flush settings, and every handler.
fn parts(
    hubspot: &HubSpotDouble,
    stream: &StreamDouble,
    store: Arc<DynamoStore>,
    flush: FlushSettings,
) -> Parts {
    Parts {
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
        registration: Some(registration_settings()),
        webhook: Some(WebhookSettings {
            api_secret: STREAM_SECRET.into(),
            agents: vec![AGENT_ID.to_owned()],
            // As deployed: a warm webhook keeps the mappings it read.
            mapping_cache: WebhookSettings::mapping_cache(&Env::default()).expect("the default"),
        }),
        sweeper: Some(SweeperSettings {
            budget: Duration::from_secs(10),
            retention: None,
            metrics: false,
        }),
        hubspot_webhooks: Some(HubSpotWebhooksSettings {
            client_secret: HUBSPOT_CLIENT_SECRET.into(),
            public_base_url: None,
        }),
        agent_sessions: None,
    }
}

/// Loads an API Gateway / Function URL event from `events/`.
pub fn event(name: &str) -> Request {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    lambda_http::request::from_str(&json)
        .unwrap_or_else(|e| panic!("{path} is not a Lambda HTTP event: {e}"))
}

/// A request as API Gateway would deliver it.
pub fn http_request(method: &str, body: &str, headers: &[(&str, &str)]) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri("https://api.example.com/registrations");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(if body.is_empty() {
            Body::Empty
        } else {
            Body::Text(body.to_owned())
        })
        .expect("valid request")
}

pub fn json_body(response: &Response<Body>) -> serde_json::Value {
    let bytes: &[u8] = match response.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"null",
    };
    serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null)
}

/// A webhook request as Stream sends it: JSON body signed with the app secret.
pub fn signed_webhook(body: &serde_json::Value) -> Request {
    let bytes = serde_json::to_vec(body).expect("serialisable");
    let signature = sandbox::stream::sign_webhook(STREAM_SECRET, &bytes);
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("https://webhook.lambda-url.us-east-1.on.aws/")
        .header("content-type", "application/json")
        .header("x-signature", signature)
        .header("x-api-key", STREAM_KEY)
        .header("x-webhook-id", uuid::Uuid::new_v4().to_string())
        .header("x-webhook-attempt", "1")
        .body(Body::Binary(bytes))
        .expect("valid request")
}

/// A HubSpot webhook request: `events` signed (v3) with `secret` at `at` (milliseconds since the epoch).
pub fn hubspot_request(body: &[u8], secret: &str, at: i64) -> Request {
    let timestamp = at.to_string();
    let signature = Signed {
        method: "POST",
        uri: HUBSPOT_WEBHOOKS_URL,
        body,
        timestamp: &timestamp,
    }
    .sign(&secret.to_owned().into());
    lambda_http::http::Request::builder()
        .method("POST")
        .uri(HUBSPOT_WEBHOOKS_URL)
        .header("content-type", "application/json")
        .header("x-hubspot-signature-v3", signature)
        .header("x-hubspot-request-timestamp", timestamp)
        .body(Body::Binary(body.to_vec()))
        .expect("valid request")
}

/// HubSpot events about contacts, as HubSpot delivers them, signed now with the app's client secret; they
/// happened a second ago, one millisecond apart, in this order.
pub fn hubspot_events(events: &[(&str, &str)]) -> Request {
    let now = chat_sync::domain::Timestamp::now().unix_millis();
    let timed: Vec<(&str, &str, i64)> = events
        .iter()
        .enumerate()
        .map(|(i, (kind, contact))| (*kind, *contact, now - 1_000 + i as i64))
        .collect();
    hubspot_events_at(&timed)
}

/// HubSpot events (type, contact, `occurredAt` in milliseconds), signed now.
pub fn hubspot_events_at(events: &[(&str, &str, i64)]) -> Request {
    let now = chat_sync::domain::Timestamp::now().unix_millis();
    let events: Vec<serde_json::Value> = events
        .iter()
        .enumerate()
        .map(|(i, (kind, contact, occurred_at))| {
            serde_json::json!({
                "eventId": 100 + i, "subscriptionId": 7, "portalId": 62515, "appId": 1160452,
                "occurredAt": occurred_at, "subscriptionType": kind, "attemptNumber": 0,
                "objectId": contact.parse::<u64>().expect("numeric id"), "changeFlag": "DELETED",
                "changeSource": "CRM_UI",
            })
        })
        .collect();
    let body = serde_json::to_vec(&events).expect("serialisable");
    hubspot_request(&body, HUBSPOT_CLIENT_SECRET, now)
}

/// A Stream message payload.
pub fn message(
    id: &str,
    user_id: &str,
    user_name: &str,
    text: &str,
    created_at: &str,
) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "text": text,
        "type": "regular",
        "created_at": created_at,
        "updated_at": created_at,
        "user": { "id": user_id, "name": user_name, "role": "user" },
        "attachments": [],
    })
}

/// Registers a visitor through the handler; returns (contact id, visitor id, channel id).
pub async fn register_visitor(app: &TestApp, first: &str, email: &str) -> (String, String, String) {
    let body = format!(r#"{{"firstName":"{first}","lastName":"Tester","email":"{email}"}}"#);
    let response = app
        .registration
        .handle(http_request(
            "POST",
            &body,
            &[("content-type", "application/json")],
        ))
        .await;
    let json = json_body(&response);
    assert_eq!(response.status(), 200, "{json}");
    let contact = app
        .hubspot
        .contact_by_email(email)
        .expect("contact exists")
        .id;
    (
        contact,
        json["customerId"].as_str().expect("id").to_owned(),
        json["channelId"].as_str().expect("id").to_owned(),
    )
}

/// Delivers one signed event: the ack (status, JSON body, how long it took), then the flush that runs after it.
pub async fn deliver(
    app: &TestApp,
    event: &serde_json::Value,
) -> (
    lambda_http::http::StatusCode,
    serde_json::Value,
    Duration,
    Option<chat_sync::sync::FlushOutcome>,
) {
    let started = std::time::Instant::now();
    let (response, flush) = app.webhook.receive(signed_webhook(event)).await;
    let ack = started.elapsed();
    let outcome = match flush {
        Some(flush) => flush.run().await,
        None => None,
    };
    (response.status(), json_body(&response), ack, outcome)
}

/// A `message.new` event for a message `second` seconds from now, by `user` (named Ada): Stream stamps messages
/// after the conversation started.
pub fn new_message(
    channel: &str,
    user: &str,
    id: &str,
    text: &str,
    second: usize,
) -> serde_json::Value {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(second as i64);
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats");
    sandbox::stream::message_event(
        "message.new",
        "messaging",
        channel,
        &message(id, user, "Ada", text, &at),
    )
}

/// A `message.new` event for a message at a fixed date, `second` seconds after 10:00 on 24 November 2026, by `user`
/// (named Ada).
pub fn dated_message(
    channel: &str,
    user: &str,
    id: &str,
    text: &str,
    second: usize,
) -> serde_json::Value {
    sandbox::stream::message_event(
        "message.new",
        "messaging",
        channel,
        &message(
            id,
            user,
            "Ada",
            text,
            &format!("2026-11-24T10:{:02}:{:02}.000Z", second / 60, second % 60),
        ),
    )
}

/// Delivers one signed event and checks it was accepted; the flush that would follow is left to the caller's sweep.
pub async fn record(app: &TestApp, event: &serde_json::Value) {
    let (response, _flush) = app.webhook.receive(signed_webhook(event)).await;
    assert_eq!(
        response.status(),
        lambda_http::http::StatusCode::OK,
        "{}",
        json_body(&response)
    );
}
