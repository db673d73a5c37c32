//! HubSpot CRM v3 client: private-app Bearer token, contact upsert by e-mail, transcript property writes.

use super::backoff::Backoff;
use super::http::{client, send_json};
use crate::domain::ContactId;
use crate::ports::{ContactDetails, Crm, UpstreamError};
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SERVICE: &str = "HubSpot";

/// The one place the API version lives: `/crm/v3` is retired in Sept 2027 for date-versioned paths.
pub const API_PREFIX: &str = "/crm/v3";

/// The contact property that holds the transcript (created by `infra setup`).
pub const TRANSCRIPT_PROPERTY: &str = "chat_transcript";

pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";

#[derive(Clone)]
pub struct HubSpotClient {
    http: reqwest::Client,
    base_url: String,
    token: String,
    per_attempt: Duration,
    backoff: Backoff,
}

impl std::fmt::Debug for HubSpotClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSpotClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl HubSpotClient {
    pub fn new(base_url: &str, access_token: &str) -> Self {
        Self {
            http: client(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: access_token.to_owned(),
            per_attempt: Duration::from_secs(3),
            backoff: Backoff::new(4, Duration::from_millis(250), Duration::from_secs(2)),
        }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}{API_PREFIX}{path}", self.base_url)
    }

    /// Sends one request with the time left before `deadline`, and maps failures.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        deadline: Instant,
    ) -> Result<Value, UpstreamError> {
        let request = request.bearer_auth(&self.token);
        send_json(SERVICE, request, deadline, self.per_attempt, rate_limit).await
    }

    /// Reads the contact's transcript property (the dev page's CRM view; never used to write).
    pub async fn read_transcript(
        &self,
        contact: &ContactId,
        deadline: Instant,
    ) -> Result<String, UpstreamError> {
        let url = self.url(&format!("/objects/contacts/{}", contact.as_str()));
        let request = self
            .http
            .get(&url)
            .query(&[("properties", TRANSCRIPT_PROPERTY)]);
        let contact = self.send(request, deadline).await?;
        Ok(contact
            .pointer(&format!("/properties/{TRANSCRIPT_PROPERTY}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }

    /// Whether the transcript property exists (a read-only check: `infra setup --dry-run`).
    pub async fn transcript_property_exists(
        &self,
        deadline: Instant,
    ) -> Result<bool, UpstreamError> {
        let url = self.url(&format!("/properties/contacts/{TRANSCRIPT_PROPERTY}"));
        let attempt = |_| self.send(self.http.get(&url), deadline);
        match self.backoff.retry(deadline, attempt).await {
            Ok(_) => Ok(true),
            Err(UpstreamError::Rejected { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates the transcript property; an existing one (409) is fine. Returns whether it was created.
    pub async fn ensure_transcript_property(
        &self,
        deadline: Instant,
    ) -> Result<bool, UpstreamError> {
        let body = json!({
            "name": TRANSCRIPT_PROPERTY,
            "label": "Chat transcript",
            "type": "string",
            "fieldType": "textarea",
            "groupName": "contactinformation",
            "description": "Website chat conversations, written by chat-sync.",
        });
        let url = self.url("/properties/contacts");
        let attempt = |_| self.send(self.http.post(&url).json(&body), deadline);
        match self.backoff.retry(deadline, attempt).await {
            Ok(_) => Ok(true),
            Err(UpstreamError::Rejected { status: 409, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// HubSpot's 429: `policyName` says which window was hit. The ten-second window frees up within a second or two
/// for one caller; the daily one does not free up today.
fn rate_limit(headers: &HeaderMap, body: &str) -> (Option<Duration>, bool) {
    let policy = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("policyName")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let daily = policy == "DAILY";
    let remaining_zero = headers
        .get("x-hubspot-ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0");
    // The interval header is the window length (10 s), not the wait; back off by the schedule unless told.
    let hint = (remaining_zero && !daily).then_some(Duration::from_millis(500));
    (hint, daily)
}

#[async_trait]
impl Crm for HubSpotClient {
    async fn upsert_contact(
        &self,
        details: &ContactDetails,
        deadline: Instant,
    ) -> Result<ContactId, UpstreamError> {
        let body = json!({
            "inputs": [{
                "id": details.email.as_str(),
                "idProperty": "email",
                "properties": {
                    "email": details.email.as_str(),
                    "firstname": details.first_name.as_str(),
                    "lastname": details.last_name.as_str(),
                },
            }]
        });
        let url = self.url("/objects/contacts/batch/upsert");
        let attempt = |_| self.send(self.http.post(&url).json(&body), deadline);
        let response = self.backoff.retry(deadline, attempt).await?;
        let id = response
            .get("results")
            .and_then(|r| r.get(0))
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
            .ok_or_else(|| UpstreamError::Protocol {
                service: SERVICE,
                detail: "upsert response has no results[0].id".into(),
            })?;
        ContactId::parse(id).map_err(|e| UpstreamError::Protocol {
            service: SERVICE,
            detail: e.to_string(),
        })
    }

    async fn write_transcript(
        &self,
        contact: &ContactId,
        transcript: &str,
        deadline: Instant,
    ) -> Result<(), UpstreamError> {
        let body = json!({ "properties": { TRANSCRIPT_PROPERTY: transcript } });
        let request = self
            .http
            .patch(self.url(&format!("/objects/contacts/{}", contact.as_str())))
            .json(&body);
        self.send(request, deadline).await.map(|_| ())
    }
}
