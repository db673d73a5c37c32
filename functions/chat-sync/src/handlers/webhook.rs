//! Stream's webhook (a Lambda Function URL). Verifies the signature over the exact bytes, records the message
//! idempotently, answers 2xx only once it is durably stored, and writes the transcript within a bounded budget.

use super::mapping_cache::MappingCache;
use super::response::{body_bytes, header_str, json_response, method_not_allowed, ApiError};
use crate::adapters::stream::verify_signature;
use crate::adapters::stream_access::AGENT_ROLE;
use crate::domain::Cleared;
use crate::domain::{
    Author, ChannelRef, ContactId, Invalid, MessageChange, MessageId, MessageKind, Role, Timestamp,
    UserId,
};
use crate::ports::{ChannelMapping, Channels, MessageLog, Recorded, StoreError, SyncRecords};
use crate::sync::{PendingFlush, TranscriptSync};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest accepted event, before and after gzip.
pub const MAX_BODY: usize = 1024 * 1024;

/// The longest a delivery waits for storage before answering 503. Stream gives up after 6 s; answering well before
/// that turns a slow DynamoDB into a clean retry instead of a timeout. A change that commits after the cut-off is
/// harmless: the retry finds it already recorded.
pub const ACK_BUDGET: Duration = Duration::from_secs(3);

/// What the webhook needs from storage: the channel a change belongs to, the message log it records the change in,
/// and the contact's sync record (whether a duplicate delivery still needs a flush).
pub trait WebhookStore: Channels + MessageLog + SyncRecords {}

impl<T: Channels + MessageLog + SyncRecords + ?Sized> WebhookStore for T {}

pub struct Webhook {
    store: Arc<dyn WebhookStore>,
    sync: TranscriptSync,
    secret: SecretString,
    /// Stream user ids shown as `(agent)`.
    agents: Vec<String>,
    /// Copies of the channel mappings earlier deliveries read (`WEBHOOK_MAPPING_CACHE_SECONDS`).
    mappings: MappingCache,
}

#[derive(Deserialize)]
struct WireEvent {
    #[serde(rename = "type")]
    kind: String,
    cid: Option<String>,
    channel_type: Option<String>,
    channel_id: Option<String>,
    message: Option<WireMessage>,
    /// `message.deleted` for the deleting user only: everyone else still sees the message.
    #[serde(default)]
    deleted_for_me: Option<bool>,
    /// `message.deleted`, `user.deleted`, `user.messages.deleted` that remove messages everywhere (not a "message
    /// deleted" placeholder).
    #[serde(default)]
    hard_delete: Option<bool>,
    /// `user.deleted`: whether the user's messages go too.
    #[serde(default)]
    mark_messages_deleted: Option<bool>,
    /// `user.deleted`: whether the user's one-to-one channels (our conversations) were deleted with it.
    #[serde(default)]
    delete_conversation_channels: Option<bool>,
    #[serde(default)]
    channel: Option<WireChannel>,
    #[serde(default)]
    user: Option<WireUser>,
    /// When the event happened.
    #[serde(default)]
    created_at: Option<String>,
}

#[derive(Deserialize)]
struct WireChannel {
    #[serde(default)]
    truncated_at: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    id: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    created_at: String,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    deleted_at: Option<String>,
    /// When the text was last edited (absent if never): an undeleted message says so this way.
    #[serde(default)]
    message_text_updated_at: Option<String>,
    #[serde(default)]
    user: Option<WireUser>,
    #[serde(default)]
    attachments: Vec<WireAttachment>,
}

#[derive(Deserialize)]
struct WireUser {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

#[derive(Deserialize)]
struct WireAttachment {
    #[serde(default)]
    asset_url: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    title_link: Option<String>,
    #[serde(default)]
    og_scrape_url: Option<String>,
}

/// What an event means for the transcript.
#[derive(Debug)]
// One value per request, consumed at once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    Change(MessageChange),
    /// `channel.truncated` / `channel.deleted`: Stream erased (part of) the conversation.
    Cleared {
        channel: ChannelRef,
        cleared: Cleared,
    },
    /// `user.deleted` / `user.messages.deleted`: Stream erased a user's messages (`Some(remove)`: soft, or hard
    /// when `remove`) and, for `user.deleted` with `delete_conversation_channels`, their conversations.
    UserErased {
        user: UserId,
        messages: Option<bool>,
        conversations: bool,
    },
    /// Not a transcript line (other event types, ephemeral/error/system messages).
    Ignored(&'static str),
}

/// Every Stream event type the webhook acts on (`parse_event`): what `setup --stream-webhook` subscribes the hook to.
/// A type left out of the hook would never arrive: an undeletion never shown, an erasure never followed.
pub const EVENT_TYPES: [&str; 8] = [
    "message.new",
    "message.updated",
    "message.deleted",
    "message.undeleted",
    "channel.truncated",
    "channel.deleted",
    "user.deleted",
    "user.messages.deleted",
];

/// Parses a verified event body.
pub fn parse_event(body: &[u8]) -> Result<Parsed, Invalid> {
    let event: WireEvent = serde_json::from_slice(body)
        .map_err(|e| Invalid::new("body", format!("is not a valid event: {e}")))?;
    let channel = || match (&event.cid, &event.channel_type, &event.channel_id) {
        (Some(cid), _, _) => ChannelRef::parse_cid(cid),
        (None, Some(t), Some(id)) => ChannelRef::parse_cid(&format!("{t}:{id}")),
        _ => Err(Invalid::new("cid", "is required")),
    };
    let kind = match event.kind.as_str() {
        "channel.truncated" => {
            let at = event
                .channel
                .as_ref()
                .and_then(|c| c.truncated_at.as_deref())
                .or(event.created_at.as_deref())
                .ok_or_else(|| Invalid::new("channel.truncated_at", "is required"))?;
            return Ok(Parsed::Cleared {
                channel: channel()?,
                cleared: Cleared::Truncated(Timestamp::parse("channel.truncated_at", at)?),
            });
        }
        "channel.deleted" => {
            return Ok(Parsed::Cleared {
                channel: channel()?,
                cleared: Cleared::Deleted,
            })
        }
        "user.deleted" | "user.messages.deleted" => {
            let hard = event.hard_delete == Some(true);
            // A hard-deleted user's messages go with it, whether or not `mark_messages_deleted` says so.
            let messages = (event.kind == "user.messages.deleted"
                || hard
                || event.mark_messages_deleted == Some(true))
            .then_some(hard);
            let conversations =
                event.kind == "user.deleted" && event.delete_conversation_channels == Some(true);
            if messages.is_none() && !conversations {
                return Ok(Parsed::Ignored("user deleted without their messages"));
            }
            let user = event
                .user
                .as_ref()
                .ok_or_else(|| Invalid::new("user", "is required"))?;
            return Ok(Parsed::UserErased {
                user: UserId::parse("user.id", &user.id)?,
                messages,
                conversations,
            });
        }
        "message.new" => MessageKind::New,
        "message.updated" => MessageKind::Updated,
        "message.deleted" if event.deleted_for_me == Some(true) => {
            return Ok(Parsed::Ignored("deleted for one user only"))
        }
        "message.deleted" if event.hard_delete == Some(true) => MessageKind::Removed,
        "message.deleted" => MessageKind::Deleted,
        "message.undeleted" => MessageKind::Undeleted,
        _ => return Ok(Parsed::Ignored("event type")),
    };
    let message = event
        .message
        .ok_or_else(|| Invalid::new("message", "is required"))?;
    if matches!(
        message.kind.as_deref(),
        Some("ephemeral" | "error" | "system")
    ) {
        return Ok(Parsed::Ignored("message type"));
    }
    let channel = channel()?;
    let created_at = Timestamp::parse("message.created_at", &message.created_at)?;
    let time = |field: &'static str, raw: &Option<String>| {
        raw.as_deref()
            .map(|raw| Timestamp::parse(field, raw))
            .transpose()
    };
    let updated_at = time("message.updated_at", &message.updated_at)?;
    let deleted_at = time("message.deleted_at", &message.deleted_at)?;
    // The message as the event carries it is the state at its version: an update of a message that is still
    // soft-deleted (Stream sends it with `type: deleted`) is a deleted state, not the text coming back; only an
    // undeletion brings that.
    let kind = match kind {
        MessageKind::New | MessageKind::Updated | MessageKind::Undeleted
            if message.kind.as_deref() == Some("deleted") || deleted_at.is_some() =>
        {
            MessageKind::Deleted
        }
        kind => kind,
    };
    let updated_at = if kind.deleted() {
        updated_at.max(deleted_at)
    } else {
        updated_at
    }
    .unwrap_or(created_at);
    let user = message
        .user
        .ok_or_else(|| Invalid::new("message.user", "is required"))?;
    let attachments = message
        .attachments
        .into_iter()
        .filter_map(|a| {
            a.asset_url
                .or(a.image_url)
                .or(a.title_link)
                .or(a.og_scrape_url)
        })
        .filter(|url| !url.is_empty())
        .collect();
    Ok(Parsed::Change(MessageChange {
        kind,
        channel,
        message_id: MessageId::parse(&message.id)?,
        author: Author {
            name: user
                .name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| user.id.clone()),
            id: user.id,
            role: user.role.unwrap_or_else(|| "user".to_owned()),
        },
        text: message.text.unwrap_or_default(),
        attachments,
        created_at,
        updated_at,
        edited: kind == MessageKind::Updated || message.message_text_updated_at.is_some(),
    }))
}

/// Whether `X-Signature` has the shape of Stream's: the hex of an HMAC-SHA256 (64 characters).
fn well_formed_signature(signature: &str) -> bool {
    let signature = signature.trim();
    signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit())
}

/// gzip's magic bytes. No JSON body starts with them.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Undoes gzip, said by `Content-Encoding` or seen in the magic bytes (a proxy may strip the header, and Stream's
/// own SDK detects gzip the same way); the signature covers the uncompressed body.
fn decode_body<'a>(
    request: &Request,
    bytes: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, ApiError> {
    let gzip = header_str(request, "content-encoding")
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip"))
        || bytes.starts_with(&GZIP_MAGIC);
    if !gzip {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut decoded)
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_encoding",
                "the body is not valid gzip",
            )
        })?;
    if decoded.len() > MAX_BODY {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the uncompressed body must be at most {MAX_BODY} bytes"),
        ));
    }
    Ok(std::borrow::Cow::Owned(decoded))
}

fn ok(status: &str, reason: Option<&str>) -> Response<Body> {
    let mut body = json!({ "status": status });
    if let Some(reason) = reason {
        body["reason"] = json!(reason);
    }
    json_response(StatusCode::OK, &body)
}

fn unavailable(error: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(%error, "could not record the event; Stream will retry");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "the event could not be stored; retry later",
    )
}

impl Webhook {
    /// A webhook that keeps copies of the channel mappings it reads for `mapping_cache` (zero: none).
    pub fn new(
        store: Arc<dyn WebhookStore>,
        sync: TranscriptSync,
        api_secret: SecretString,
        mapping_cache: Duration,
    ) -> Self {
        Self {
            store,
            sync,
            secret: api_secret,
            agents: Vec::new(),
            mappings: MappingCache::new(mapping_cache),
        }
    }

    /// The Stream user ids of the support team (`SUPPORT_AGENT_ID` and `AGENT_IDS`).
    pub fn with_agents(mut self, agents: Vec<String>) -> Self {
        self.agents = agents;
        self
    }

    /// Handles one delivery and runs its transcript flush before returning (tests, and runtimes that cannot run
    /// work after answering).
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let (response, flush) = self.receive(request).await;
        if let Some(flush) = flush {
            flush.run().await;
        }
        response
    }

    /// Handles one delivery: answers as soon as the change is durably stored, and returns the transcript flush to
    /// run after the response is sent, so HubSpot is never on the ack's path. Never fails: every outcome is an
    /// HTTP response.
    pub async fn receive(&self, request: Request) -> (Response<Body>, Option<PendingFlush>) {
        let received = Instant::now();
        if request.method() != Method::POST {
            return (method_not_allowed("POST"), None);
        }
        match self.process(&request, received).await {
            Ok(result) => result,
            Err(error) => (error.into_response(), None),
        }
    }

    async fn process(
        &self,
        request: &Request,
        received: Instant,
    ) -> Result<(Response<Body>, Option<PendingFlush>), ApiError> {
        let raw = body_bytes(request);
        if raw.len() > MAX_BODY {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body must be at most {MAX_BODY} bytes"),
            ));
        }
        // The signature covers the uncompressed body, so checking it needs the body inflated; but a request with no
        // signature, or one that cannot be an HMAC-SHA256, is refused before any work is spent on its body.
        let signature = header_str(request, "x-signature").ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_signature",
                "the X-Signature header is required",
            )
        })?;
        if !well_formed_signature(signature) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "X-Signature must be 64 hexadecimal characters",
            ));
        }
        let body = decode_body(request, raw)?;
        if !verify_signature(self.secret.expose_secret(), &body, signature) {
            tracing::warn!("rejected a webhook with an invalid signature");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "X-Signature does not match the body",
            ));
        }
        let webhook_id = header_str(request, "x-webhook-id")
            .unwrap_or("-")
            .to_owned();
        let event = match parse_event(&body) {
            Ok(Parsed::Ignored(reason)) => return Ok((ok("ignored", Some(reason)), None)),
            Ok(event) => event,
            Err(invalid) => {
                let code = if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
                    "invalid_json"
                } else {
                    "invalid_event"
                };
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    code,
                    invalid.to_string(),
                ));
            }
        };
        let budget = ACK_BUDGET.saturating_sub(received.elapsed());
        let stored = match tokio::time::timeout(budget, self.record(event, &webhook_id)).await {
            Ok(Ok(Some(stored))) => stored,
            Ok(Ok(None)) => return Ok((ok("ignored", Some("unknown channel or user")), None)),
            Ok(Err(error)) => return Err(unavailable(&error)),
            Err(_) => {
                return Err(unavailable(&format_args!(
                    "storage did not answer within the {} ms ack budget",
                    ACK_BUDGET.as_millis()
                )))
            }
        };
        // From here on the change is durable: we answer 2xx whatever happens with HubSpot.
        tracing::info!(
            contact_id = %stored.contact,
            webhook_id,
            recorded = ?stored.recorded,
            elapsed_ms = received.elapsed().as_millis() as u64,
            "webhook recorded"
        );
        let status = match stored.recorded {
            Recorded::Applied => "recorded",
            Recorded::Unchanged => "duplicate",
            Recorded::Refused => return Ok((ok("ignored", Some("erased")), None)),
        };
        let flush = stored
            .needs_flush
            .then(|| self.sync.after_response(stored.contact, received));
        Ok((ok(status, None), flush))
    }

    /// Stores an event under its channel's contact; `None` if the channel (or user) is not one we registered.
    async fn record(&self, event: Parsed, webhook_id: &str) -> Result<Option<Stored>, StoreError> {
        let (contact, recorded) = match event {
            Parsed::Change(change) => {
                let mut copy = true;
                loop {
                    let Some((mapping, copied)) =
                        self.mapping(&change.channel, webhook_id, copy).await?
                    else {
                        return Ok(None);
                    };
                    if mapping.purge_at.is_some() {
                        // Deleted in HubSpot: nothing is synced until it is restored, and nothing new is kept (it
                        // would outlive the purge).
                        tracing::info!(contact_id = %mapping.contact_id, webhook_id, "message for a contact deleted in HubSpot; ignored");
                        return Ok(None);
                    }
                    let contact = mapping.contact_id.clone();
                    let recorded = self.record_change(mapping, change.clone()).await?;
                    if recorded == Recorded::Refused && copied {
                        // Refused on a copy: the mapping may have changed since it was kept (an erasure, the
                        // channel registered again): decided again on the mapping as it is.
                        self.mappings.forget(&change.channel);
                        copy = false;
                        continue;
                    }
                    break (contact, recorded);
                }
            }
            Parsed::Cleared { channel, cleared } => {
                let Some((mapping, _)) = self.mapping(&channel, webhook_id, false).await? else {
                    return Ok(None);
                };
                let recorded = self.store.clear_conversation(&mapping, cleared).await?;
                // The copy no longer knows what the conversation keeps (a change it admits, the store refuses).
                self.mappings.forget(&channel);
                tracing::info!(contact_id = %mapping.contact_id, channel = %channel, ?cleared, "conversation erased as in Stream");
                (mapping.contact_id, recorded)
            }
            Parsed::UserErased {
                user,
                messages,
                conversations,
            } => {
                // Only a registered visitor's messages can be found (an agent's span every contact).
                let mut last = None;
                for channel in self.store.visitor_channels(&user).await? {
                    self.mappings.forget(&channel);
                    if let Some(mapping) = self.store.channel(&channel).await? {
                        let mut recorded = Recorded::Unchanged;
                        if conversations {
                            // The visitor's channel is the conversation: deleted with the user.
                            recorded = self
                                .store
                                .clear_conversation(&mapping, Cleared::Deleted)
                                .await?;
                        }
                        if let Some(remove) = messages {
                            if self.store.erase_author(&mapping, &user, remove).await?
                                == Recorded::Applied
                            {
                                recorded = Recorded::Applied;
                            }
                        }
                        tracing::info!(contact_id = %mapping.contact_id, channel = %channel, ?messages, conversations, "visitor's messages erased as in Stream");
                        let applied = matches!(last, Some((_, Recorded::Applied)))
                            || recorded == Recorded::Applied;
                        last = Some((
                            mapping.contact_id,
                            if applied {
                                Recorded::Applied
                            } else {
                                Recorded::Unchanged
                            },
                        ));
                    }
                }
                match last {
                    Some(found) => found,
                    None => {
                        tracing::info!(
                            webhook_id,
                            "messages of a user who is not a registered visitor; ignored"
                        );
                        return Ok(None);
                    }
                }
            }
            Parsed::Ignored(_) => return Ok(None),
        };
        let needs_flush = match recorded {
            Recorded::Applied => true,
            // Nothing of it is kept: its contact is erased or deleted in HubSpot, or its clearing flushes.
            Recorded::Refused => false,
            // A redelivery: its first delivery may have died before writing; flush only if something is pending.
            Recorded::Unchanged => self.store.change_pending(&contact).await.unwrap_or(false),
        };
        Ok(Some(Stored {
            contact,
            recorded,
            needs_flush,
        }))
    }

    /// The channel's mapping, and whether it is a copy kept from an earlier delivery (only when `copy`): the store's
    /// gate decides every change made on it (see `mapping_cache`).
    async fn mapping(
        &self,
        channel: &ChannelRef,
        webhook_id: &str,
        copy: bool,
    ) -> Result<Option<(ChannelMapping, bool)>, StoreError> {
        if let Some(kept) = copy.then(|| self.mappings.get(channel)).flatten() {
            return Ok(Some((kept, true)));
        }
        let Some(mapping) = self.store.channel(channel).await? else {
            tracing::info!(channel = %channel, webhook_id, "event for a channel we did not register; ignored");
            return Ok(None);
        };
        self.mappings.keep(&mapping);
        Ok(Some((mapping, false)))
    }

    async fn record_change(
        &self,
        mapping: ChannelMapping,
        mut change: MessageChange,
    ) -> Result<Recorded, StoreError> {
        // The role comes from the registered visitor id and the configured agent ids, and a visitor's name from the
        // registration: a visitor renaming themselves in the widget cannot pass as the agent in the CRM, and
        // nobody else is passed off as one either.
        let role = if change.author.id == mapping.visitor_id.as_str() {
            change.author.name = mapping.visitor_name.clone();
            Role::Visitor
        } else if self.agents.contains(&change.author.id) || change.author.role == AGENT_ROLE {
            // The role is Stream's, in an event Stream signed: only a server token gives a user the agents' role
            // (agent sessions do), and a visitor's token cannot change its own role.
            Role::Agent
        } else {
            Role::other(&change.author.role)
        };
        // A late delivery of a message Stream has since erased with its conversation: keep nothing of it. (A
        // clearing this read of the mapping missed is checked again when the change commits: `record_change`
        // refuses it there.)
        if mapping
            .cleared
            .is_some_and(|cleared| !cleared.keeps(change.created_at))
        {
            tracing::debug!(contact_id = %mapping.contact_id, "a change to a message erased with its conversation; nothing stored");
            return Ok(Recorded::Refused);
        }
        self.store.record_change(&mapping, &change, role).await
    }
}

/// A change that is durably stored.
struct Stored {
    contact: ContactId,
    recorded: Recorded,
    needs_flush: bool,
}

#[cfg(test)]
mod tests {
    use super::{parse_event, Parsed, EVENT_TYPES};

    #[test]
    fn every_subscribed_event_type_is_acted_on_and_no_other_message_type() {
        for kind in EVENT_TYPES {
            let event = serde_json::json!({
                "type": kind, "cid": "messaging:chat-1", "user": {"id": "visitor-1"}, "hard_delete": true,
                "channel": {"truncated_at": "2026-11-24T10:00:00Z"},
                "message": {"id": "m-1", "text": "hi", "created_at": "2026-11-24T10:00:00Z",
                            "user": {"id": "visitor-1"}},
            });
            let parsed = parse_event(event.to_string().as_bytes());
            assert!(
                matches!(&parsed, Ok(p) if !matches!(p, Parsed::Ignored(_))),
                "{kind}: {parsed:?}"
            );
        }
        let other = serde_json::json!({"type": "message.read", "cid": "messaging:chat-1"});
        assert!(matches!(
            parse_event(other.to_string().as_bytes()),
            Ok(Parsed::Ignored("event type"))
        ));
    }
}
