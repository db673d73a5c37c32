//! The app under test, wired to DynamoDB Local and the HubSpot/Stream doubles over real HTTP.

use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::adapters::hubspot::HubSpotClient;
use chat_sync::adapters::stream::StreamClient;
use chat_sync::budget::{BudgetPlan, RateLimit};
use chat_sync::config::{AllowedOrigins, FlushSettings, RegistrationSettings, Targets};
use chat_sync::domain::identity::{IdentityPolicy, IdentityVerifier};
use chat_sync::domain::{ChannelType, UserId};
use chat_sync::erasure::Erasure;
use chat_sync::handlers::hubspot_webhooks::signature::Signed;
use chat_sync::handlers::hubspot_webhooks::HubSpotWebhooks;
use chat_sync::handlers::registration::Registration;
use chat_sync::handlers::sweeper::Sweeper;
use chat_sync::handlers::webhook::Webhook;
use chat_sync::ports::RateBudget;
use chat_sync::sync::TranscriptSync;
use chat_sync::throttle::RegistrationLimits;
use lambda_http::{Body, Request, Response};
use sandbox::{DynamoDbLocal, HubSpotDouble, StreamDouble};
use std::sync::Arc;
use std::time::Duration;

pub const HUBSPOT_TOKEN: &str = "pat-na1-test-token";
pub const STREAM_KEY: &str = "local-api-key";
/// The documented secret the files in `events/` are signed with.
pub const STREAM_SECRET: &str = "local-stream-secret-for-events";
pub const AGENT_ID: &str = "support-agent";
/// The site's identity-verification secret (`IDENTITY_SECRET`) the test app checks `identityToken`s with.
pub const IDENTITY_SECRET: &str = "test-identity-secret-0123456789abcdef";
/// The documented HubSpot app client secret the HubSpot webhook files in `events/` are signed with.
pub const HUBSPOT_CLIENT_SECRET: &str = "local-hubspot-client-secret-for-events";
/// Where HubSpot calls us in the tests (and in the files in `events/`).
pub const HUBSPOT_WEBHOOKS_URL: &str = "https://api.example.com/hubspot/webhooks";

pub struct TestApp {
    pub hubspot: HubSpotDouble,
    pub stream: StreamDouble,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub store: Arc<DynamoStore>,
    pub registration: Registration,
    pub webhook: Arc<Webhook>,
    pub hubspot_webhooks: Arc<HubSpotWebhooks>,
    pub sync: TranscriptSync,
    pub crm: Arc<HubSpotClient>,
    pub chat: StreamClient,
    pub budget: Arc<dyn RateBudget>,
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
        // The app's shared budget, in the table, at HubSpot's Free/Starter limit.
        let budget: Arc<dyn RateBudget> =
            Arc::new(store.budget(BudgetPlan::new(RateLimit::HUBSPOT_DEFAULT)));
        let crm = Arc::new(HubSpotClient::new(
            &hubspot.base_url(),
            HUBSPOT_TOKEN.into(),
            budget.clone(),
        ));
        let chat = StreamClient::new(&stream.base_url(), STREAM_KEY, STREAM_SECRET.into())
            .expect("server token");
        // What `setup --stream-access` does to a deployed app: the agent exists, visitors are confined to their
        // channels. The calls it made are forgotten, so tests count only the app's own.
        setup_stream_access(&chat).await;
        stream.clear_calls();
        let registration = Registration::new(
            crm.clone(),
            Arc::new(chat.clone()),
            store.clone(),
            Arc::new(store.throttle(&STREAM_SECRET.into())),
            chat.tokens(),
            registration_settings(),
        );
        flush.check().expect("consistent flush settings");
        let sync = TranscriptSync::new(store.clone(), crm.clone(), budget.clone(), flush);
        let webhook = Arc::new(Webhook::new(
            store.clone(),
            sync.clone(),
            STREAM_SECRET.into(),
        ));
        let hubspot_webhooks = Arc::new(HubSpotWebhooks::new(
            Erasure::new(store.clone(), Arc::new(chat.clone())),
            HUBSPOT_CLIENT_SECRET.to_owned().into(),
        ));
        Self {
            hubspot,
            stream,
            dynamodb,
            store,
            registration,
            webhook,
            hubspot_webhooks,
            sync,
            crm,
            chat,
            budget,
        }
    }

    /// A registration handler like the app's, with other settings, on the same doubles and table.
    pub fn registration_with(&self, settings: RegistrationSettings) -> Registration {
        Registration::new(
            self.crm.clone(),
            Arc::new(self.chat.clone()),
            self.store.clone(),
            Arc::new(self.store.throttle(&STREAM_SECRET.into())),
            self.chat.tokens(),
            settings,
        )
    }

    /// A webhook like the app's, on another store (a broken or stalled DynamoDB), writing to the same HubSpot.
    pub fn webhook_on(&self, store: Arc<DynamoStore>) -> Webhook {
        let sync = TranscriptSync::new(
            store.clone(),
            self.crm.clone(),
            self.budget.clone(),
            test_flush_settings(),
        );
        Webhook::new(store, sync, STREAM_SECRET.into())
    }

    pub fn sweeper(&self) -> Sweeper {
        Sweeper::new(
            self.store.clone(),
            self.sync.clone(),
            Duration::from_secs(10),
        )
        .with_purge(Erasure::new(
            self.store.clone(),
            Arc::new(self.chat.clone()),
        ))
    }

    /// Every data item in the table (to prove that bad input wrote nothing); the HubSpot rate budget's items,
    /// written whenever HubSpot is called, and the registration throttles' are not data.
    pub async fn item_count(&self) -> usize {
        let output = self
            .dynamodb
            .scan()
            .table_name(self.store.table())
            .filter_expression("NOT begins_with(pk, :budget) AND NOT begins_with(pk, :throttle)")
            .expression_attribute_values(
                ":budget",
                aws_sdk_dynamodb::types::AttributeValue::S("BUDGET#".into()),
            )
            .expression_attribute_values(
                ":throttle",
                aws_sdk_dynamodb::types::AttributeValue::S("THROTTLE#".into()),
            )
            .send()
            .await
            .expect("scan");
        output.count() as usize
    }

    /// The contact's transcript property in the HubSpot double.
    pub fn transcript(&self, contact_id: &str) -> String {
        self.hubspot
            .contact(contact_id)
            .and_then(|c| c.properties.get("chat_transcript").cloned())
            .unwrap_or_default()
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
