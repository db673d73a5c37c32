//! HubSpot's webhooks (`POST /hubspot/webhooks`, an HTTP API route): a contact's privacy deletion, deletion, restore
//! and merge, followed here and in Stream (see `erasure`). Every request must carry a valid signature v3 less than
//! five minutes old; the body is a JSON array of events, checked whole before anything changes.
//!
//! Events come in two shapes, and both are read: the legacy `contact.*` subscription types, and the developer
//! platform's generic `object.*` types, which name the object type (`objectTypeId`; contacts are `0-1`). A generic
//! event about any other object type is acknowledged and ignored: its `objectId` is not a contact's.

pub mod signature;

use super::response::{body_bytes, header_str, json_response, method_not_allowed, ApiError};
use crate::domain::{ContactId, Timestamp};
use crate::erasure::Erasure;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use signature::{SignatureError, Signed};
use std::time::{Duration, Instant};

/// Largest accepted body: HubSpot sends at most 100 events of a few hundred bytes each per request.
pub const MAX_BODY: usize = 256 * 1024;
/// HubSpot waits 5 s for an answer and retries a timeout or a 5xx (up to 10 times over 24 h): answer 503 before it
/// gives up, and let the retry finish the work (every step is idempotent).
const ANSWER_BUDGET: Duration = Duration::from_millis(4_500);

pub struct HubSpotWebhooks {
    erasure: Erasure,
    client_secret: SecretString,
    /// `PUBLIC_BASE_URL`: scheme and host HubSpot calls, when a proxy in front of us changes them.
    public_base_url: Option<String>,
}

/// HubSpot's object type id of contacts, in generic (`object.*`) events.
const CONTACTS: &str = "0-1";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent {
    subscription_type: String,
    object_id: WireId,
    /// Generic events only: the object type the event is about.
    #[serde(default)]
    object_type_id: Option<String>,
    /// Milliseconds since the epoch.
    occurred_at: i64,
    /// Merges: the record kept, the records merged into it, and the id the result has (which may be new).
    #[serde(default)]
    primary_object_id: Option<WireId>,
    #[serde(default)]
    merged_object_ids: Vec<WireId>,
    #[serde(default)]
    new_object_id: Option<WireId>,
}

/// An object id as HubSpot sends it: a JSON number (or, in some payloads, a string of digits).
#[derive(Deserialize)]
#[serde(untagged)]
enum WireId {
    Number(u64),
    Text(String),
}

impl WireId {
    fn parse(&self) -> Result<ContactId, crate::domain::Invalid> {
        match self {
            WireId::Number(id) => ContactId::parse(&id.to_string()),
            WireId::Text(id) => ContactId::parse(id),
        }
    }
}

/// What one event asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Erase,
    Delete,
    Restore,
    /// These contacts were merged into the event's contact (the record that survives).
    Merge(Vec<ContactId>),
    /// Other subscriptions (property changes, other object types).
    Ignore,
}

struct Event {
    action: Action,
    contact: ContactId,
    occurred_at: Timestamp,
}

/// What a delivery did, per action: its answer's body.
#[derive(Debug, Default)]
struct Tally {
    erased: u32,
    deleted: u32,
    restored: u32,
    merged: u32,
    ignored: u32,
}

fn parse_events(body: &[u8]) -> Result<Vec<Event>, ApiError> {
    let events: Vec<WireEvent> = serde_json::from_slice(body).map_err(|e| {
        let code = if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
            "invalid_event"
        } else {
            "invalid_json"
        };
        ApiError::new(
            StatusCode::BAD_REQUEST,
            code,
            format!("the body must be a JSON array of HubSpot events: {e}"),
        )
    })?;
    events
        .into_iter()
        .map(|event| {
            let invalid = |field: &'static str, what: String| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_event", what).with_field(field)
            };
            let id = |field: &'static str, id: &WireId| {
                id.parse().map_err(|e| invalid(field, e.to_string()))
            };
            let mut contact = id("objectId", &event.object_id)?;
            let occurred_at = time::OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(event.occurred_at) * 1_000_000,
            )
            .map(Timestamp::from_datetime)
            .map_err(|_| invalid("occurredAt", "is out of range".into()))?;
            // `contact.deletion` or `object.deletion` of a contact: the same event in either shape.
            let kind = match event.subscription_type.split_once('.') {
                Some(("contact", kind)) => Some(kind),
                Some(("object", kind)) if event.object_type_id.as_deref() == Some(CONTACTS) => {
                    Some(kind)
                }
                _ => None,
            };
            let action = match kind {
                Some("privacyDeletion") => Action::Erase,
                Some("deletion") => Action::Delete,
                Some("restore") => Action::Restore,
                Some("merge") => {
                    // The survivor is the merge's result: its new id if it has one, else the primary record.
                    let mut all = vec![contact.clone()];
                    if let Some(primary) = &event.primary_object_id {
                        all.push(id("primaryObjectId", primary)?);
                    }
                    for merged in &event.merged_object_ids {
                        all.push(id("mergedObjectIds", merged)?);
                    }
                    let survivor = match (&event.new_object_id, &event.primary_object_id) {
                        (Some(new), _) => id("newObjectId", new)?,
                        (None, Some(primary)) => id("primaryObjectId", primary)?,
                        (None, None) => contact.clone(),
                    };
                    all.retain(|one| *one != survivor);
                    all.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                    all.dedup();
                    contact = survivor;
                    Action::Merge(all)
                }
                _ => Action::Ignore,
            };
            Ok(Event {
                action,
                contact,
                occurred_at,
            })
        })
        .collect()
}

impl HubSpotWebhooks {
    pub fn new(erasure: Erasure, client_secret: SecretString) -> Self {
        Self {
            erasure,
            client_secret,
            public_base_url: None,
        }
    }

    /// The scheme and host HubSpot calls (`PUBLIC_BASE_URL`), when they are not the ones the request shows.
    pub fn with_public_base_url(mut self, base_url: Option<String>) -> Self {
        self.public_base_url = base_url.map(|url| url.trim_end_matches('/').to_owned());
        self
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        self.handle_at(request, Timestamp::now()).await
    }

    /// Handles a delivery as if received at `now` (tests replay the signed files in `events/`).
    pub async fn handle_at(&self, request: Request, now: Timestamp) -> Response<Body> {
        if request.method() != Method::POST {
            return method_not_allowed("POST");
        }
        match self.process(&request, now).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        }
    }

    /// The URL HubSpot called, as it signed it: `PUBLIC_BASE_URL` + path and query behind a proxy; else what the
    /// request says (API Gateway gives the full URL from its `Host` header, the dev server only the path).
    fn called_uri(&self, request: &Request) -> String {
        let uri = request.uri();
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        if let Some(base) = &self.public_base_url {
            return format!("{base}{path_and_query}");
        }
        if uri.authority().is_some() {
            return uri.to_string();
        }
        let host = header_str(request, "host").unwrap_or("localhost");
        format!("http://{host}{path_and_query}")
    }

    fn verify(&self, request: &Request, body: &[u8], now: Timestamp) -> Result<(), ApiError> {
        let uri = self.called_uri(request);
        let headers = (
            header_str(request, "x-hubspot-signature-v3"),
            header_str(request, "x-hubspot-request-timestamp"),
        );
        let result = match headers {
            (Some(signature), Some(timestamp)) => Signed {
                method: request.method().as_str(),
                uri: &uri,
                body,
                timestamp,
            }
            .verify(&self.client_secret, signature, now),
            _ => Err(SignatureError::Missing),
        };
        result.map_err(|error| {
            tracing::warn!(%error, uri, "rejected a HubSpot webhook");
            let code = match error {
                SignatureError::Missing => "missing_signature",
                SignatureError::Stale => "stale_request",
                SignatureError::Invalid => "invalid_signature",
            };
            ApiError::new(StatusCode::UNAUTHORIZED, code, error.to_string())
        })
    }

    async fn process(&self, request: &Request, now: Timestamp) -> Result<Response<Body>, ApiError> {
        let received = Instant::now();
        let body = body_bytes(request);
        if body.len() > MAX_BODY {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body must be at most {MAX_BODY} bytes"),
            ));
        }
        self.verify(request, body, now)?;
        let mut events = parse_events(body)?;
        // In the order they happened: a deletion and its restore may come in one delivery.
        events.sort_by_key(|event| event.occurred_at);
        let deadline = received + ANSWER_BUDGET;
        let tally = tokio::time::timeout_at(deadline.into(), self.apply(&events, deadline))
            .await
            .map_err(|_| unavailable(&"not done within HubSpot's timeout"))?
            .map_err(|error| unavailable(&error))?;
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "status": "processed",
                "erased": tally.erased,
                "deleted": tally.deleted,
                "restored": tally.restored,
                "merged": tally.merged,
                "ignored": tally.ignored,
            }),
        ))
    }

    async fn apply(
        &self,
        events: &[Event],
        deadline: Instant,
    ) -> Result<Tally, crate::erasure::ErasureError> {
        let mut tally = Tally::default();
        for event in events {
            let contact = &event.contact;
            match &event.action {
                Action::Erase => {
                    self.erasure.erase(contact, deadline).await?;
                    tally.erased += 1;
                }
                Action::Delete => {
                    if self.erasure.deleted(contact, event.occurred_at).await? {
                        tally.deleted += 1;
                    } else {
                        tally.ignored += 1;
                    }
                }
                Action::Restore => {
                    if self.erasure.restored(contact, event.occurred_at).await? {
                        tally.restored += 1;
                    } else {
                        tally.ignored += 1;
                    }
                }
                Action::Merge(merged) => {
                    for one in merged {
                        if self.erasure.merged(one, contact).await? {
                            tally.merged += 1;
                        }
                    }
                }
                Action::Ignore => tally.ignored += 1,
            }
        }
        Ok(tally)
    }
}

fn unavailable(error: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(%error, "could not apply HubSpot's events; HubSpot will retry");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the events could not be applied now; retry later",
    )
}
