//! The previous design, kept here only for comparison (chat-sync shipped it before batched writes): each webhook
//! records its message, answers, then flushes only its own contact — the contact's lease, a 1 s linger doubling
//! while changes keep coming, one `PATCH` of the contact (`/crm/objects/<version>/contacts/{id}`) per contact,
//! retrying 429s and 5xx on its own (250 ms–2 s, 4 attempts, within the webhook's 5 s budget) with no shared rate
//! budget. A timeout leaves the lease to expire; a 5xx is retried at once, as it shipped (it had no notion of a write
//! landing late). A sweeper does the same for the dirty contacts every 5 s, 4 at a time, without linger. Built on the
//! same store, so only the way HubSpot is written differs.

use super::Invocations;
use crate::serve::HttpHandler;
use chat_sync::adapters::backoff::Backoff;
use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::adapters::hubspot::{objects, TRANSCRIPT_PROPERTY};
use chat_sync::adapters::stream::verify_signature;
use chat_sync::domain::transcript::{render, HUBSPOT_PROPERTY_LIMIT};
use chat_sync::domain::{ContactId, Role};
use chat_sync::handlers::webhook::{parse_event, Parsed};
use chat_sync::ports::{
    Channels, LeaseOwner, Leases, MessageLog, NotesAt, Recorded, Release, StoreError, SyncQueue,
    SyncRecords, UpstreamError,
};
use futures::stream::{self, StreamExt};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVICE: &str = "HubSpot";
const LINGER: Duration = Duration::from_secs(1);
const WEBHOOK_BUDGET: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const LEASE_TTL: Duration = Duration::from_secs(15);
const LINGER_MARGIN: Duration = Duration::from_millis(50);
const BACKOFF: Backoff = Backoff::new(4, Duration::from_millis(250), Duration::from_secs(2));
const SWEEP_BATCH: usize = 200;
const SWEEP_CONCURRENCY: usize = 4;
const SWEEP_BUDGET: Duration = Duration::from_secs(20);

/// The previous webhook and its sweeper.
pub struct Previous {
    store: Arc<DynamoStore>,
    http: reqwest::Client,
    hubspot_url: String,
    token: String,
    secret: String,
    /// Webhook invocations, each until its flush ended (on Lambda the extension kept the environment that long).
    invocations: Arc<Invocations>,
    /// HubSpot PATCHes the sweeper sent.
    sweeper_writes: Arc<AtomicU32>,
}

fn answer(code: StatusCode, status: &str) -> Response<Body> {
    let mut response = Response::new(Body::Text(json!({ "status": status }).to_string()));
    *response.status_mut() = code;
    response
}

impl Previous {
    pub fn new(
        store: Arc<DynamoStore>,
        hubspot_url: String,
        (token, secret): (&str, &str),
        invocations: Arc<Invocations>,
        sweeper_writes: Arc<AtomicU32>,
    ) -> Self {
        Self {
            store,
            http: reqwest::Client::new(),
            hubspot_url,
            token: token.to_owned(),
            secret: secret.to_owned(),
            invocations,
            sweeper_writes,
        }
    }

    /// Records the change; `Some(contact)` if its transcript needs a flush.
    async fn record(&self, request: &Request) -> Result<Option<ContactId>, StatusCode> {
        let body: &[u8] = match request.body() {
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => &[],
        };
        let signature = request
            .headers()
            .get("x-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !verify_signature(&self.secret, body, signature) {
            return Err(StatusCode::UNAUTHORIZED);
        }
        let Ok(Parsed::Change(mut change)) = parse_event(body) else {
            return Ok(None);
        };
        let unavailable = |_: StoreError| StatusCode::SERVICE_UNAVAILABLE;
        let Some(mapping) = self
            .store
            .channel(&change.channel)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let role = if change.author.id == mapping.visitor_id.as_str() {
            change.author.name = mapping.visitor_name.clone();
            Role::Visitor
        } else {
            Role::Agent
        };
        let needs_flush = match self
            .store
            .record_change(&mapping, &change, role)
            .await
            .map_err(unavailable)?
        {
            Recorded::Applied => true,
            Recorded::Refused => false,
            Recorded::Unchanged => {
                let state = self
                    .store
                    .sync_state(&mapping.contact_id)
                    .await
                    .map_err(unavailable)?;
                state.version != state.synced_version
            }
        };
        Ok(needs_flush.then_some(mapping.contact_id))
    }

    /// Flushes one contact if its lease is free; returns the PATCHes sent.
    async fn flush(&self, contact: &ContactId, start_by: Instant, linger: Duration) -> u32 {
        let owner = LeaseOwner::random();
        match self.store.acquire_lease(contact, &owner, LEASE_TTL).await {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return 0,
        }
        let mut writes = 0;
        if self
            .holding(contact, &owner, start_by, linger, &mut writes)
            .await
            .is_err()
        {
            let _ = self.store.release_lease(contact, &owner).await;
        }
        writes
    }

    async fn holding(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        start_by: Instant,
        mut linger: Duration,
        writes: &mut u32,
    ) -> Result<(), StoreError> {
        let mut failures = 0;
        loop {
            let room = start_by
                .saturating_duration_since(Instant::now())
                .saturating_sub(LINGER_MARGIN);
            if !linger.is_zero() && !room.is_zero() {
                tokio::time::sleep(linger.min(room)).await;
            }
            let state = self.store.sync_state(contact).await?;
            if state.version == 0 {
                return self.store.release_lease(contact, owner).await;
            }
            if state.version == state.synced_version {
                match self
                    .store
                    .release_if_current(contact, owner, state.version, NotesAt::Written)
                    .await?
                {
                    Release::Changed => continue,
                    Release::Released | Release::Lost => return Ok(()),
                }
            }
            if Instant::now() >= start_by {
                return self.store.release_lease(contact, owner).await;
            }
            let source = self
                .store
                .recent_transcript(contact, HUBSPOT_PROPERTY_LIMIT)
                .await?;
            let transcript = render(
                &source.conversations,
                &source.messages,
                HUBSPOT_PROPERTY_LIMIT,
                state.messages,
            );
            if !self.store.renew_lease(contact, owner, LEASE_TTL).await? {
                return Ok(());
            }
            *writes += 1;
            match self.patch(contact, &transcript).await {
                Ok(()) => match self
                    .store
                    .release_if_current(contact, owner, state.version, NotesAt::Written)
                    .await?
                {
                    Release::Changed => linger = linger.saturating_mul(2),
                    Release::Released | Release::Lost => return Ok(()),
                },
                // It may still land: the lease is left to expire.
                Err(UpstreamError::Timeout { .. }) => return Ok(()),
                Err(error) => {
                    failures += 1;
                    match BACKOFF.next_wait(failures, &error, start_by) {
                        Some(wait) => tokio::time::sleep(wait).await,
                        // The contact stays dirty for the next webhook or the sweeper.
                        None => return self.store.release_lease(contact, owner).await,
                    }
                }
            }
        }
    }

    /// One PATCH of the whole transcript, with the bearer token, no permit from anyone.
    async fn patch(&self, contact: &ContactId, transcript: &str) -> Result<(), UpstreamError> {
        let url = format!(
            "{}{}/{}",
            self.hubspot_url,
            objects("contacts"),
            contact.as_str()
        );
        let response = self
            .http
            .patch(url)
            .bearer_auth(&self.token)
            .json(&json!({ "properties": { TRANSCRIPT_PROPERTY: transcript } }))
            .timeout(WRITE_TIMEOUT)
            .send()
            .await;
        let status = match response {
            Ok(response) => response.status(),
            Err(error) if error.is_timeout() => {
                return Err(UpstreamError::Timeout { service: SERVICE })
            }
            Err(error) => {
                return Err(UpstreamError::Unavailable {
                    service: SERVICE,
                    detail: error.without_url().to_string(),
                })
            }
        };
        match status.as_u16() {
            200..=299 => Ok(()),
            429 => Err(UpstreamError::RateLimited {
                service: SERVICE,
                retry_after: None,
                daily: false,
            }),
            500..=599 => Err(UpstreamError::Unavailable {
                service: SERVICE,
                detail: status.to_string(),
            }),
            code => Err(UpstreamError::Rejected {
                service: SERVICE,
                status: code,
                detail: status.to_string(),
            }),
        }
    }

    /// One sweep: every dirty contact, 4 at a time, no linger.
    pub async fn sweep(&self) {
        let start_by = Instant::now() + SWEEP_BUDGET;
        let Ok(dirty) = self.store.dirty_contacts(SWEEP_BATCH).await else {
            return;
        };
        let writes: Vec<u32> = stream::iter(dirty)
            .map(|contact| async move { self.flush(&contact, start_by, Duration::ZERO).await })
            .buffer_unordered(SWEEP_CONCURRENCY)
            .collect()
            .await;
        self.sweeper_writes
            .fetch_add(writes.iter().sum(), Ordering::Relaxed);
    }
}

/// The webhook answers once the change is stored and flushes its contact afterwards, in a task of its own.
#[async_trait::async_trait]
impl HttpHandler for Arc<Previous> {
    async fn call(&self, request: Request) -> Response<Body> {
        let received = Instant::now();
        match self.record(&request).await {
            Ok(Some(contact)) => {
                let this = self.clone();
                tokio::spawn(async move {
                    this.flush(&contact, received + WEBHOOK_BUDGET, LINGER)
                        .await;
                    this.invocations.record(received.elapsed());
                });
                answer(StatusCode::OK, "recorded")
            }
            Ok(None) => {
                self.invocations.record(received.elapsed());
                answer(StatusCode::OK, "ignored")
            }
            Err(code) => {
                self.invocations.record(received.elapsed());
                answer(code, "error")
            }
        }
    }
}
