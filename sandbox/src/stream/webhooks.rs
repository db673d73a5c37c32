//! Webhooks as Stream sends them: signed (`X-Signature`, HMAC-SHA256 of the raw body), to the legacy `webhook_url`
//! and every enabled webhook `event_hooks` entry that wants the event, delivered in the background with Stream's
//! timeouts and retry policy, one channel's events in order. Duplicate or out-of-order delivery is for the caller to
//! fake (the bench sends its own duplicates and shuffles them): the double has one way to deliver.

use super::state::Data;
use crate::support::{lock, now_rfc3339, uuid};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Stream's webhook timeouts: 6 s per attempt, 15 s for all attempts of one event.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(6);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
/// Short backoffs keep tests fast while still separating attempts.
const BACKOFF: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(300)];

/// Lowercase hex HMAC-SHA256 of `body` keyed by the app secret: Stream's `X-Signature`.
pub fn sign_webhook(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A `message.new` / `message.updated` / `message.deleted` webhook payload as Stream sends it.
/// `message.deleted` gets `"hard_delete": false` (set it to `true` for a hard delete).
pub fn message_event(kind: &str, channel_type: &str, channel_id: &str, message: &Value) -> Value {
    let user = message.get("user").cloned().unwrap_or(Value::Null);
    let mut event = json!({
        "type": kind,
        "cid": format!("{channel_type}:{channel_id}"),
        "channel_id": channel_id,
        "channel_type": channel_type,
        "message": message,
        "user": user,
        "created_at": now_rfc3339(),
    });
    if kind == "message.deleted" {
        event["hard_delete"] = Value::Bool(false);
    }
    event
}

/// The outcome of one webhook delivery attempt.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub event_type: String,
    pub message_id: String,
    /// `X-Webhook-Id`: the same for every attempt of one event.
    pub webhook_id: String,
    pub url: String,
    /// `X-Webhook-Attempt`, from 1.
    pub attempt: u32,
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// Timeout or network error, if it did not.
    pub error: Option<String>,
    pub latency: Duration,
    pub finished: Instant,
}

/// What delivery workers need; deliberately not the whole state, so workers never keep a dropped double alive.
struct DeliveryContext {
    client: reqwest::Client,
    api_key: String,
    secret: String,
    deliveries: Mutex<Vec<Delivery>>,
}

pub(crate) struct Webhooks {
    ctx: Arc<DeliveryContext>,
    /// One FIFO worker per (url, channel), so a channel's events arrive in order, as in the sandbox's contract.
    queues: Mutex<HashMap<(String, String), mpsc::UnboundedSender<Job>>>,
}

#[derive(Clone)]
struct Job {
    url: String,
    event_type: String,
    message_id: String,
    webhook_id: String,
    body: Arc<Vec<u8>>,
}

impl Webhooks {
    pub(crate) fn new(api_key: &str, secret: &str) -> std::io::Result<Self> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            ctx: Arc::new(DeliveryContext {
                client,
                api_key: api_key.to_owned(),
                secret: secret.to_owned(),
                deliveries: Mutex::default(),
            }),
            queues: Mutex::default(),
        })
    }

    pub(crate) fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.ctx.deliveries).clone()
    }

    pub(crate) fn forget_deliveries(&self) {
        lock(&self.ctx.deliveries).clear();
    }

    /// Queues `event` for every configured target; called with the data lock held so queue order = event order.
    pub(crate) fn enqueue(&self, data: &Data, event: &Value) {
        let event_type = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let targets = targets(&data.app, &event_type);
        if targets.is_empty() {
            return;
        }
        let cid = event
            .get("cid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let message_id = event
            .get("message")
            .and_then(|m| m.get("id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let body = match serde_json::to_vec(event) {
            Ok(body) => Arc::new(body),
            Err(error) => {
                tracing::error!(%error, "webhook event is not serialisable");
                return;
            }
        };
        for url in targets {
            let job = Job {
                url: url.clone(),
                event_type: event_type.clone(),
                message_id: message_id.clone(),
                webhook_id: uuid(),
                body: body.clone(),
            };
            self.queue(&url, &cid).send(job).ok();
        }
    }

    fn queue(&self, url: &str, cid: &str) -> mpsc::UnboundedSender<Job> {
        let mut queues = lock(&self.queues);
        let key = (url.to_owned(), cid.to_owned());
        if let Some(sender) = queues.get(&key).filter(|s| !s.is_closed()) {
            return sender.clone();
        }
        let (sender, mut receiver) = mpsc::unbounded_channel::<Job>();
        let ctx = self.ctx.clone();
        tokio::spawn(async move {
            while let Some(job) = receiver.recv().await {
                deliver(&ctx, &job).await;
            }
        });
        queues.insert(key, sender.clone());
        sender
    }
}

/// Every URL that should receive `event_type`: the legacy `webhook_url` and enabled webhook `event_hooks`.
fn targets(app: &Map<String, Value>, event_type: &str) -> Vec<String> {
    let wants = |events: Option<&Value>| match events.and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list
            .iter()
            .any(|e| e.as_str() == Some(event_type) || e == "*"),
        _ => true,
    };
    let mut urls = Vec::new();
    if let Some(url) = app.get("webhook_url").and_then(Value::as_str) {
        if !url.is_empty() && wants(app.get("webhook_events")) {
            urls.push(url.to_owned());
        }
    }
    for hook in app
        .get("event_hooks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let is_webhook = hook.get("hook_type").and_then(Value::as_str) == Some("webhook");
        let enabled = hook.get("enabled").and_then(Value::as_bool) == Some(true);
        let url = hook
            .get("webhook_url")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if is_webhook
            && enabled
            && !url.is_empty()
            && wants(hook.get("event_types"))
            && !urls.iter().any(|u| u == url)
        {
            urls.push(url.to_owned());
        }
    }
    urls
}

enum Retry {
    No,
    /// 408/429/5xx/timeout: up to 3 attempts.
    Transient,
    /// Connection failures: up to 2 attempts.
    Network,
}

/// Stream's delivery policy: 6 s per attempt, 15 s overall; 3 attempts on 408/429/5xx/timeout, 2 on network errors.
async fn deliver(ctx: &DeliveryContext, job: &Job) {
    let signature = sign_webhook(&ctx.secret, &job.body);
    let first = Instant::now();
    let mut attempt: u32 = 1;
    loop {
        let started = Instant::now();
        let result = ctx
            .client
            .post(&job.url)
            .header("Content-Type", "application/json")
            .header("X-Signature", &signature)
            .header("X-Api-Key", &ctx.api_key)
            .header("X-Webhook-Id", &job.webhook_id)
            .header("X-Webhook-Attempt", attempt.to_string())
            .body(job.body.as_ref().clone())
            .send()
            .await;
        let (status, error, retry) = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read the body so the connection can be reused.
                let _ = response.bytes().await;
                let retry = if status == 408 || status == 429 || status >= 500 {
                    Retry::Transient
                } else {
                    Retry::No
                };
                (Some(status), None, retry)
            }
            Err(e) if e.is_timeout() => (None, Some(format!("timeout: {e}")), Retry::Transient),
            Err(e) => (None, Some(format!("network error: {e}")), Retry::Network),
        };
        lock(&ctx.deliveries).push(Delivery {
            event_type: job.event_type.clone(),
            message_id: job.message_id.clone(),
            webhook_id: job.webhook_id.clone(),
            url: job.url.clone(),
            attempt,
            status,
            error,
            latency: started.elapsed(),
            finished: Instant::now(),
        });
        let max_attempts = match retry {
            Retry::No => return,
            Retry::Transient => 3,
            Retry::Network => 2,
        };
        let backoff = BACKOFF[(attempt as usize - 1).min(BACKOFF.len() - 1)];
        if attempt >= max_attempts || first.elapsed() + backoff >= TOTAL_TIMEOUT {
            return;
        }
        tokio::time::sleep(backoff).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_webhook_matches_the_reference_vector() {
        assert_eq!(
            sign_webhook("porewqKAFDSAKZssecretsercretfads", br#"{"a":1}"#),
            "e527a6ad4993a4c9a30680c8be4b3eda1c36ab104f1f7d39c744bd27016a9624"
        );
    }

    #[test]
    fn message_event_has_the_reference_shape() {
        let message = json!({"id": "m-1", "text": "hi", "user": {"id": "visitor-1", "name": "Ada", "role": "user"}});
        let event = message_event("message.new", "messaging", "abc", &message);
        assert_eq!(event["cid"], "messaging:abc");
        assert_eq!(event["channel_id"], "abc");
        assert_eq!(event["channel_type"], "messaging");
        assert_eq!(event["user"]["id"], "visitor-1");
        assert_eq!(event["message"]["id"], "m-1");
        assert!(event["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
        assert!(event.get("hard_delete").is_none());
        assert_eq!(
            message_event("message.deleted", "messaging", "abc", &message)["hard_delete"],
            false
        );
    }
}
