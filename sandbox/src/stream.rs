//! A local double of the Stream Chat server API (the subset this project calls) and of Stream's webhooks.
//!
//! It enforces what real Stream enforces and the app must get right: `api_key` + raw-JWT auth (server tokens, and
//! user tokens on the message routes), id charsets, server-side `created_by_id`, existing members, get-or-create
//! idempotency, and app-settings merges. Messages sent through it produce webhooks signed exactly like Stream's
//! (HMAC-SHA256 of the raw body), delivered in the background with Stream's retry policy.

use crate::faults::Faults;
pub use crate::support::RecordedCall;
use crate::support::{
    any_local_port, format_millis, lock, now_rfc3339, uuid, Recorder, Req, Server,
};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use http::{HeaderValue, StatusCode};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Stream's per-call limit for `POST /users`.
pub const MAX_USERS_PER_CALL: usize = 100;
/// Stream's default maximum message length.
pub const MAX_MESSAGE_LENGTH: usize = 5_000;
const CHANNEL_TYPES: [&str; 5] = ["messaging", "livestream", "team", "gaming", "commerce"];
const ROLES: [&str; 5] = ["user", "admin", "moderator", "guest", "anonymous"];
/// Stream's webhook timeouts: 6 s per attempt, 15 s for all attempts of one event.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(6);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
/// Short backoffs keep tests fast while still separating attempts.
const BACKOFF: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(300)];
/// Tokens issued a little in the future are accepted (clock skew), as Stream does.
const IAT_LEEWAY_SECS: i64 = 5;

/// A Stream API error, shaped like Stream's `{"code","message","StatusCode",...}` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamError {
    /// HTTP status.
    pub status: u16,
    /// Stream's error code (2 api key, 4 input, 5 auth, 9 rate limit, 16 does not exist, 17 not allowed, 40 token expired).
    pub code: i64,
    pub message: String,
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Stream error {} (code {}): {}",
            self.status, self.code, self.message
        )
    }
}

impl std::error::Error for StreamError {}

impl StreamError {
    fn new(status: u16, code: i64, endpoint: &str, message: impl std::fmt::Display) -> Self {
        Self {
            status,
            code,
            message: format!("{endpoint} failed with error: \"{message}\""),
        }
    }

    fn input(endpoint: &str, message: impl std::fmt::Display) -> Self {
        Self::new(400, 4, endpoint, message)
    }

    fn not_found(endpoint: &str, message: impl std::fmt::Display) -> Self {
        Self::new(404, 16, endpoint, message)
    }

    fn not_allowed(endpoint: &str, message: impl std::fmt::Display) -> Self {
        Self::new(403, 17, endpoint, message)
    }

    fn auth(code: i64, message: &str) -> Self {
        Self {
            status: 401,
            code,
            message: message.to_owned(),
        }
    }

    fn body(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "StatusCode": self.status,
            "duration": "0.00ms",
            "more_info": "https://getstream.io/chat/docs/api_errors_response",
            "details": [],
        })
    }
}

impl IntoResponse for StreamError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

/// A user as stored by the double.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: String,
}

/// A channel as stored by the double.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Channel {
    pub channel_type: String,
    pub id: String,
    pub created_by_id: String,
    pub members: Vec<String>,
    pub created_at: String,
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

/// A running Stream double on a loopback port; dropping it stops the server.
pub struct StreamDouble {
    state: Arc<StreamState>,
    server: Server,
}

impl StreamDouble {
    /// Starts on `127.0.0.1` with an OS-chosen port.
    pub async fn start(api_key: &str, api_secret: &str) -> std::io::Result<Self> {
        Self::start_on(any_local_port(), api_key, api_secret).await
    }

    /// Starts on a fixed address (the dev server uses a well-known port).
    pub async fn start_on(
        addr: SocketAddr,
        api_key: &str,
        api_secret: &str,
    ) -> std::io::Result<Self> {
        let state = Arc::new(StreamState::new(api_key, api_secret)?);
        let server = Server::start(addr, build_router(state.clone()), "stream").await?;
        Ok(Self { state, server })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Every request, in arrival order (in-flight ones have `status` 0).
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.state.recorder.calls()
    }

    /// Requests to one route (`"upsert_users"`, `"query_channel"`, `"get_app"`, `"update_app"`, `"send_message"`, ...).
    pub fn call_count(&self, route: &str) -> usize {
        self.state.recorder.count(route)
    }

    /// Forgets recorded calls and webhook deliveries (e.g. after test setup).
    pub fn clear_calls(&self) {
        self.state.recorder.clear();
        lock(&self.state.webhooks.ctx.deliveries).clear();
    }

    /// All users, sorted by id.
    pub fn users(&self) -> Vec<User> {
        lock(&self.state.data)
            .users
            .values()
            .map(|u| u.user.clone())
            .collect()
    }

    /// All channels, sorted by cid.
    pub fn channels(&self) -> Vec<Channel> {
        lock(&self.state.data).channels.values().cloned().collect()
    }

    /// A channel's messages in creation order (soft-deleted ones included, hard-deleted ones gone).
    pub fn messages(&self, channel_type: &str, channel_id: &str) -> Vec<Value> {
        let data = lock(&self.state.data);
        let cid = format!("{channel_type}:{channel_id}");
        data.order
            .get(&cid)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| data.messages.get(id).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets (or with `None` clears) the legacy app-level `webhook_url`, as `PATCH /app` would.
    pub fn set_webhook_url(&self, url: Option<String>) {
        lock(&self.state.data).app.insert(
            "webhook_url".to_owned(),
            Value::String(url.unwrap_or_default()),
        );
    }

    /// The app settings as `GET /app` returns them.
    pub fn app_settings(&self) -> Value {
        Value::Object(lock(&self.state.data).app.clone())
    }

    /// Every webhook delivery attempt so far, in completion order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.state.webhooks.ctx.deliveries).clone()
    }

    /// Waits until at least `count` delivery attempts finished (or `timeout` passed); returns them all.
    pub async fn wait_for_deliveries(&self, count: usize, timeout: Duration) -> Vec<Delivery> {
        let deadline = Instant::now() + timeout;
        loop {
            let deliveries = self.deliveries();
            if deliveries.len() >= count || Instant::now() >= deadline {
                return deliveries;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// At-least-once chaos, as real Stream: each event is delivered a second time with probability `rate`.
    pub fn set_duplicate_rate(&self, rate: f64) {
        lock(&self.state.webhooks.chaos).duplicate_rate = rate.clamp(0.0, 1.0);
    }

    /// When `true`, deliveries are no longer queued per channel: each goes out after a random 0–50 ms delay,
    /// so events can arrive out of order (Stream does not guarantee order).
    pub fn set_unordered_delivery(&self, unordered: bool) {
        lock(&self.state.webhooks.chaos).unordered = unordered;
    }

    /// The same routes, for mounting in a dev server; shares this double's state.
    pub fn router(&self) -> Router {
        build_router(self.state.clone())
    }

    /// Creates a user directly (test setup without HTTP traffic).
    pub fn seed_user(&self, id: &str, name: &str, role: &str) {
        let mut data = lock(&self.state.data);
        let now = now_rfc3339();
        let created_at = data
            .users
            .get(id)
            .map_or_else(|| now.clone(), |u| u.created_at.clone());
        let user = User {
            id: id.to_owned(),
            name: name.to_owned(),
            role: role.to_owned(),
        };
        data.users.insert(
            id.to_owned(),
            UserRecord {
                user,
                extra: Map::new(),
                created_at,
                updated_at: now,
            },
        );
    }

    /// Chats as `user_id` (a member of the channel): stores the message and delivers a signed `message.new`
    /// webhook. Returns the message object.
    pub async fn send_message(
        &self,
        channel_type: &str,
        channel_id: &str,
        user_id: &str,
        text: &str,
    ) -> Result<Value, StreamError> {
        let actor = Actor::User(user_id.to_owned());
        let message = json!({ "text": text });
        self.state
            .create_message(channel_type, channel_id, &actor, &message)
    }

    /// Edits a message's text and delivers `message.updated`. Returns the message object.
    pub async fn update_message(&self, message_id: &str, text: &str) -> Result<Value, StreamError> {
        self.state
            .update_message(message_id, &Actor::Server, &json!({ "text": text }))
    }

    /// Deletes a message (soft: kept with `type: "deleted"`; hard: removed) and delivers `message.deleted`.
    pub async fn delete_message(&self, message_id: &str, hard: bool) -> Result<Value, StreamError> {
        self.state.delete_message(message_id, hard, &Actor::Server)
    }
}

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

/// A server-side token (`{"server": true}`, HS256), as the real server SDKs create.
pub fn server_token(secret: &str) -> Result<String, jsonwebtoken::errors::Error> {
    encode(
        &Header::new(Algorithm::HS256),
        &json!({ "server": true }),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// A user token (`{"user_id", "iat", "exp"?}`, HS256); `ttl: None` = never expires.
pub fn user_token(
    secret: &str,
    user_id: &str,
    ttl: Option<Duration>,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = json!({ "user_id": user_id, "iat": now });
    if let Some(ttl) = ttl {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        claims["exp"] = json!(now.saturating_add(ttl));
    }
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// Who is calling: the server (full access) or a user (own messages, channels they belong to).
#[derive(Clone, Debug)]
enum Actor {
    Server,
    User(String),
}

struct UserRecord {
    user: User,
    extra: Map<String, Value>,
    created_at: String,
    updated_at: String,
}

struct Data {
    users: BTreeMap<String, UserRecord>,
    channels: BTreeMap<String, Channel>,
    /// Message id → message JSON (with `cid`).
    messages: HashMap<String, Value>,
    /// cid → message ids in creation order.
    order: HashMap<String, Vec<String>>,
    app: Map<String, Value>,
    /// Last message timestamp handed out: message times are strictly increasing, as Stream's microsecond
    /// timestamps effectively are, so `created_at` orders messages and `updated_at` always moves forward.
    clock: OffsetDateTime,
}

impl Data {
    fn tick(&mut self) -> String {
        let now = OffsetDateTime::now_utc();
        // Millisecond precision, as the reference documents.
        let now = now
            .replace_nanosecond(u32::from(now.millisecond()) * 1_000_000)
            .unwrap_or(now);
        let min = self.clock + time::Duration::milliseconds(1);
        self.clock = if now < min { min } else { now };
        format_millis(self.clock)
    }

    fn user_json(&self, id: &str) -> Value {
        match self.users.get(id) {
            Some(record) => user_json(record),
            None => json!({ "id": id }),
        }
    }

    /// Every URL that should receive `event_type`: the legacy `webhook_url` and enabled webhook `event_hooks`.
    fn webhook_targets(&self, event_type: &str) -> Vec<String> {
        let wants = |events: Option<&Value>| match events.and_then(Value::as_array) {
            Some(list) if !list.is_empty() => list
                .iter()
                .any(|e| e.as_str() == Some(event_type) || e == "*"),
            _ => true,
        };
        let mut urls = Vec::new();
        if let Some(url) = self.app.get("webhook_url").and_then(Value::as_str) {
            if !url.is_empty() && wants(self.app.get("webhook_events")) {
                urls.push(url.to_owned());
            }
        }
        for hook in self
            .app
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
}

fn user_json(record: &UserRecord) -> Value {
    let mut user = record.extra.clone();
    user.insert("id".to_owned(), Value::String(record.user.id.clone()));
    user.insert("name".to_owned(), Value::String(record.user.name.clone()));
    user.insert("role".to_owned(), Value::String(record.user.role.clone()));
    user.insert(
        "created_at".to_owned(),
        Value::String(record.created_at.clone()),
    );
    user.insert(
        "updated_at".to_owned(),
        Value::String(record.updated_at.clone()),
    );
    user.insert("banned".to_owned(), Value::Bool(false));
    user.insert("online".to_owned(), Value::Bool(false));
    Value::Object(user)
}

struct StreamState {
    api_key: String,
    secret: String,
    faults: Faults,
    recorder: Recorder,
    data: Mutex<Data>,
    webhooks: Webhooks,
}

impl StreamState {
    fn new(api_key: &str, secret: &str) -> std::io::Result<Self> {
        let app = json!({
            "name": "sandbox",
            "organization": "sandbox",
            "webhook_url": "",
            "webhook_events": [],
            "event_hooks": [],
            "sqs_url": "",
            "sns_topic_arn": "",
            "disable_auth_checks": false,
            "disable_permissions_checks": false,
            "multi_tenant_enabled": false,
            "permission_version": "v2",
            "enforce_unique_usernames": "no",
            "custom_action_handler_url": "",
            "before_message_send_hook_url": "",
        });
        let Value::Object(app) = app else {
            unreachable!("the literal is an object")
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            api_key: api_key.to_owned(),
            secret: secret.to_owned(),
            faults: Faults::default(),
            recorder: Recorder::default(),
            data: Mutex::new(Data {
                users: BTreeMap::new(),
                channels: BTreeMap::new(),
                messages: HashMap::new(),
                order: HashMap::new(),
                app,
                clock: OffsetDateTime::UNIX_EPOCH,
            }),
            webhooks: Webhooks {
                ctx: Arc::new(DeliveryContext {
                    client,
                    api_key: api_key.to_owned(),
                    secret: secret.to_owned(),
                    deliveries: Mutex::default(),
                }),
                queues: Mutex::default(),
                chaos: Mutex::default(),
            },
        })
    }

    /// Stream's server-side auth: `api_key` query parameter, raw JWT in `Authorization`, `Stream-Auth-Type: jwt`.
    fn authenticate(&self, req: &Req, allow_user: bool) -> Result<Actor, StreamError> {
        match req.query().get("api_key") {
            None => return Err(StreamError::auth(2, "api_key not found")),
            Some(key) if *key != self.api_key => {
                return Err(StreamError::auth(2, &format!("api_key not valid: {key}")))
            }
            Some(_) => {}
        }
        let Some(token) = req
            .header("authorization")
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Err(StreamError::auth(
                5,
                "JWTAuth error: the Authorization header is missing",
            ));
        };
        if token.len() >= 7 && token[..7].eq_ignore_ascii_case("bearer ") {
            return Err(StreamError::auth(
                5,
                "JWTAuth error: token contains an invalid number of segments (send the raw JWT, without a Bearer prefix)",
            ));
        }
        if !req
            .header("stream-auth-type")
            .is_some_and(|t| t.eq_ignore_ascii_case("jwt"))
        {
            return Err(StreamError::auth(
                5,
                "Stream-Auth-Type header must be 'jwt'",
            ));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        validation.leeway = 0;
        let claims = match decode::<Value>(token, &DecodingKey::from_secret(self.secret.as_bytes()), &validation) {
            Ok(data) => data.claims,
            Err(e) => {
                return Err(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        StreamError::auth(40, "JWTAuth error: token is expired (exp)")
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => StreamError::auth(
                        5,
                        "JWTAuth error: signature is not valid. Make sure the token is created using the secret for \
                         this API key",
                    ),
                    _ => StreamError::auth(5, &format!("JWTAuth error: token is not valid: {e}")),
                })
            }
        };
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if claims
            .get("iat")
            .and_then(Value::as_i64)
            .is_some_and(|iat| iat > now + IAT_LEEWAY_SECS)
        {
            return Err(StreamError::auth(
                5,
                "JWTAuth error: token used before issue at (iat)",
            ));
        }
        if claims.get("server").and_then(Value::as_bool) == Some(true) {
            return Ok(Actor::Server);
        }
        match claims.get("user_id").and_then(Value::as_str) {
            Some(user) if allow_user => Ok(Actor::User(user.to_owned())),
            Some(_) => Err(StreamError {
                status: 403,
                code: 17,
                message: "this endpoint requires server-side authentication".to_owned(),
            }),
            None => Err(StreamError::auth(
                5,
                "JWTAuth error: token has neither a server nor a user_id claim",
            )),
        }
    }

    fn upsert_users(&self, body: &Value) -> Result<Value, StreamError> {
        const EP: &str = "UpdateUsers";
        let Some(users) = body.get("users").and_then(Value::as_object) else {
            return Err(StreamError::input(EP, "users is a required field"));
        };
        if users.is_empty() || users.len() > MAX_USERS_PER_CALL {
            return Err(StreamError::input(
                EP,
                format!("users must contain between 1 and {MAX_USERS_PER_CALL} users"),
            ));
        }
        let mut parsed = Vec::with_capacity(users.len());
        for (key, user) in users {
            let Some(user) = user.as_object() else {
                return Err(StreamError::input(
                    EP,
                    format!("users[{key}] must be an object"),
                ));
            };
            let id = user.get("id").and_then(Value::as_str).unwrap_or(key);
            if id != key {
                return Err(StreamError::input(
                    EP,
                    format!("users[{key}].id must match its key, got {id}"),
                ));
            }
            if !valid_user_id(id) {
                return Err(StreamError::input(
                    EP,
                    format!("user_id {id:?} is not valid: use 1-255 characters from a-z, 0-9, @, _ and -"),
                ));
            }
            let role = match user.get("role") {
                None | Some(Value::Null) => "user",
                Some(Value::String(role)) if ROLES.contains(&role.as_str()) => role.as_str(),
                Some(other) => {
                    return Err(StreamError::input(
                        EP,
                        format!("role {other} does not exist"),
                    ))
                }
            };
            let name = match user.get("name") {
                None | Some(Value::Null) => "",
                Some(Value::String(name)) => name.as_str(),
                Some(_) => {
                    return Err(StreamError::input(
                        EP,
                        format!("users[{key}].name must be a string"),
                    ))
                }
            };
            let extra: Map<String, Value> = user
                .iter()
                .filter(|(k, _)| {
                    !["id", "name", "role", "created_at", "updated_at"].contains(&k.as_str())
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            parsed.push((id.to_owned(), name.to_owned(), role.to_owned(), extra));
        }
        let mut data = lock(&self.data);
        let now = now_rfc3339();
        let mut out = Map::new();
        for (id, name, role, extra) in parsed {
            let created_at = data
                .users
                .get(&id)
                .map_or_else(|| now.clone(), |u| u.created_at.clone());
            // An upsert replaces the user (fields not given are gone), as Stream's UpdateUsers does.
            let record = UserRecord {
                user: User {
                    id: id.clone(),
                    name,
                    role,
                },
                extra,
                created_at,
                updated_at: now.clone(),
            };
            out.insert(id.clone(), user_json(&record));
            data.users.insert(id, record);
        }
        Ok(json!({ "users": out }))
    }

    fn query_channel(
        &self,
        kind: &str,
        id: &str,
        actor: &Actor,
        body: &Value,
    ) -> Result<(bool, Value), StreamError> {
        const EP: &str = "GetOrCreateChannel";
        validate_channel(EP, kind, id)?;
        let cid = format!("{kind}:{id}");
        let empty = Map::new();
        let spec = match body.get("data") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(spec)) => spec,
            Some(_) => return Err(StreamError::input(EP, "data must be an object")),
        };
        let mut data = lock(&self.data);
        if let Some(channel) = data.channels.get(&cid) {
            if let Actor::User(user) = actor {
                if !channel.members.contains(user) {
                    return Err(StreamError::not_allowed(
                        EP,
                        format!("User '{user}' with role 'user' is not allowed to perform action ReadChannel in scope '{kind}'"),
                    ));
                }
            }
            // Get-or-create: an existing channel is returned as is; `data` is only used on creation.
            let channel = channel.clone();
            return Ok((false, channel_state(&data, &channel)));
        }
        let creator = match actor {
            Actor::User(user) => user.clone(),
            Actor::Server => {
                let by_id = spec.get("created_by_id").and_then(Value::as_str);
                let by_obj = spec
                    .get("created_by")
                    .and_then(|c| c.get("id"))
                    .and_then(Value::as_str);
                match by_id.or(by_obj) {
                    Some(creator) if !creator.is_empty() => creator.to_owned(),
                    _ => {
                        return Err(StreamError::input(
                            EP,
                            "When using server side auth, data.created_by or data.created_by_id is a required field",
                        ))
                    }
                }
            }
        };
        let mut members: Vec<String> = Vec::new();
        for member in spec
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let member = match member {
                Value::String(id) => Some(id.as_str()),
                Value::Object(m) => m.get("user_id").and_then(Value::as_str),
                _ => None,
            };
            let Some(member) = member else {
                return Err(StreamError::input(
                    EP,
                    "members must be user ids or {\"user_id\"} objects",
                ));
            };
            if !members.iter().any(|m| m == member) {
                members.push(member.to_owned());
            }
        }
        let mut missing: Vec<&str> = std::iter::once(creator.as_str())
            .chain(members.iter().map(String::as_str))
            .filter(|u| !data.users.contains_key(*u))
            .collect();
        missing.dedup();
        if !missing.is_empty() {
            return Err(StreamError::input(
                EP,
                format!(
                    "The following users are involved in channel create operation, but don't exist: [{}]. Please create \
                     the user objects before setting up the channel.",
                    missing.join(", ")
                ),
            ));
        }
        let channel = Channel {
            channel_type: kind.to_owned(),
            id: id.to_owned(),
            created_by_id: creator,
            members,
            created_at: now_rfc3339(),
        };
        data.channels.insert(cid, channel.clone());
        Ok((true, channel_state(&data, &channel)))
    }

    fn update_app(&self, body: &Value) -> Result<Value, StreamError> {
        const EP: &str = "UpdateApp";
        let Some(fields) = body.as_object() else {
            return Err(StreamError::input(
                EP,
                "the request body must be a JSON object",
            ));
        };
        let mut fields = fields.clone();
        if let Some(url) = fields.get("webhook_url") {
            let Some(url) = url.as_str() else {
                return Err(StreamError::input(EP, "webhook_url must be a string"));
            };
            if !url.is_empty() && !valid_url(url) {
                return Err(StreamError::input(
                    EP,
                    format!("webhook_url {url:?} is not a valid http(s) URL"),
                ));
            }
        }
        if let Some(hooks) = fields.get_mut("event_hooks") {
            let Some(hooks) = hooks.as_array_mut() else {
                return Err(StreamError::input(EP, "event_hooks must be an array"));
            };
            let now = now_rfc3339();
            for hook in hooks.iter_mut() {
                let Some(hook) = hook.as_object_mut() else {
                    return Err(StreamError::input(EP, "each event hook must be an object"));
                };
                let kind = hook
                    .get("hook_type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !["webhook", "sqs", "sns", "pending_message"].contains(&kind) {
                    return Err(StreamError::input(
                        EP,
                        format!("hook_type {kind:?} is not valid"),
                    ));
                }
                if kind == "webhook" {
                    let url = hook
                        .get("webhook_url")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !valid_url(url) {
                        return Err(StreamError::input(
                            EP,
                            format!("webhook_url {url:?} is not a valid http(s) URL"),
                        ));
                    }
                }
                // Stream assigns ids and timestamps to hooks it has not seen.
                hook.entry("id").or_insert_with(|| Value::String(uuid()));
                hook.entry("created_at")
                    .or_insert_with(|| Value::String(now.clone()));
                hook.insert("updated_at".to_owned(), Value::String(now.clone()));
            }
        }
        // Merge: fields not given keep their values (a PATCH never wipes other settings).
        lock(&self.data).app.extend(fields);
        Ok(json!({}))
    }

    fn create_message(
        &self,
        kind: &str,
        id: &str,
        actor: &Actor,
        message: &Value,
    ) -> Result<Value, StreamError> {
        const EP: &str = "SendMessage";
        let Some(message) = message.as_object() else {
            return Err(StreamError::input(EP, "message is a required field"));
        };
        let cid = format!("{kind}:{id}");
        let mut data = lock(&self.data);
        let Some(channel) = data.channels.get(&cid) else {
            return Err(StreamError::not_found(
                EP,
                format!("channel \"{cid}\" does not exist"),
            ));
        };
        let user_id = match actor {
            Actor::User(user) => user.clone(),
            Actor::Server => {
                let by_id = message.get("user_id").and_then(Value::as_str);
                let by_obj = message
                    .get("user")
                    .and_then(|u| u.get("id"))
                    .and_then(Value::as_str);
                match by_id.or(by_obj) {
                    Some(user) => user.to_owned(),
                    None => {
                        return Err(StreamError::input(
                            EP,
                            "message.user or message.user_id is a required field when using server side auth",
                        ))
                    }
                }
            }
        };
        if !data.users.contains_key(&user_id) {
            return Err(StreamError::input(
                EP,
                format!("user \"{user_id}\" does not exist"),
            ));
        }
        if !channel.members.contains(&user_id) {
            return Err(StreamError::not_allowed(
                EP,
                format!("User '{user_id}' is not allowed to perform action CreateMessage in scope '{kind}' (not a member of {cid})"),
            ));
        }
        let text = match message.get("text") {
            None | Some(Value::Null) => "",
            Some(Value::String(text)) => text.as_str(),
            Some(_) => return Err(StreamError::input(EP, "message.text must be a string")),
        };
        let attachments = message
            .get("attachments")
            .cloned()
            .unwrap_or_else(|| json!([]));
        let has_attachments = attachments.as_array().is_some_and(|a| !a.is_empty());
        if text.trim().is_empty() && !has_attachments {
            return Err(StreamError::input(
                EP,
                "message.text or message.attachments is required",
            ));
        }
        if text.chars().count() > MAX_MESSAGE_LENGTH {
            return Err(StreamError::input(
                EP,
                format!(
                    "message is too long: the maximum length is {MAX_MESSAGE_LENGTH} characters"
                ),
            ));
        }
        let message_id = match message.get("id") {
            None | Some(Value::Null) => uuid(),
            Some(Value::String(given)) if !given.is_empty() && given.len() <= 255 => given.clone(),
            Some(_) => {
                return Err(StreamError::input(
                    EP,
                    "message.id must be a string of 1-255 characters",
                ))
            }
        };
        if data.messages.contains_key(&message_id) {
            return Err(StreamError::input(
                EP,
                format!("a message with ID {message_id} already exists"),
            ));
        }
        let now = data.tick();
        let stored = json!({
            "id": message_id,
            "text": text,
            "type": "regular",
            "cid": cid,
            "user": data.user_json(&user_id),
            "attachments": attachments,
            "mentioned_users": [],
            "latest_reactions": [],
            "reaction_counts": {},
            "reply_count": 0,
            "silent": false,
            "pinned": false,
            "shadowed": false,
            "created_at": now,
            "updated_at": now,
        });
        data.messages.insert(message_id.clone(), stored.clone());
        data.order.entry(cid).or_default().push(message_id);
        let event = message_event("message.new", kind, id, &stored);
        self.webhooks.enqueue(&data, event);
        Ok(stored)
    }

    fn update_message(
        &self,
        message_id: &str,
        actor: &Actor,
        update: &Value,
    ) -> Result<Value, StreamError> {
        const EP: &str = "UpdateMessage";
        let Some(update) = update.as_object() else {
            return Err(StreamError::input(EP, "message is a required field"));
        };
        let text = match update.get("text") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => return Err(StreamError::input(EP, "message.text must be a string")),
        };
        if text
            .as_ref()
            .is_some_and(|t| t.chars().count() > MAX_MESSAGE_LENGTH)
        {
            return Err(StreamError::input(
                EP,
                format!(
                    "message is too long: the maximum length is {MAX_MESSAGE_LENGTH} characters"
                ),
            ));
        }
        let mut data = lock(&self.data);
        let now = data.tick();
        let Some(stored) = data.messages.get_mut(message_id) else {
            return Err(StreamError::not_found(
                EP,
                format!("message with id {message_id} doesn't exist"),
            ));
        };
        check_author(EP, stored, actor)?;
        if stored.get("type").and_then(Value::as_str) == Some("deleted") {
            return Err(StreamError::input(EP, "cannot update a deleted message"));
        }
        if let Some(text) = text {
            stored["text"] = Value::String(text);
        }
        if let Some(attachments) = update.get("attachments") {
            stored["attachments"] = attachments.clone();
        }
        stored["updated_at"] = Value::String(now);
        let stored = stored.clone();
        let (kind, id) = split_cid(&stored);
        let event = message_event("message.updated", &kind, &id, &stored);
        self.webhooks.enqueue(&data, event);
        Ok(stored)
    }

    fn delete_message(
        &self,
        message_id: &str,
        hard: bool,
        actor: &Actor,
    ) -> Result<Value, StreamError> {
        const EP: &str = "DeleteMessage";
        let mut data = lock(&self.data);
        let now = data.tick();
        let Some(stored) = data.messages.get_mut(message_id) else {
            return Err(StreamError::not_found(
                EP,
                format!("message with id {message_id} doesn't exist"),
            ));
        };
        check_author(EP, stored, actor)?;
        let already_deleted = stored.get("type").and_then(Value::as_str) == Some("deleted");
        if already_deleted && !hard {
            // Soft-deleting twice changes nothing and sends no second event.
            return Ok(stored.clone());
        }
        if !already_deleted {
            stored["type"] = Value::String("deleted".to_owned());
            stored["deleted_at"] = Value::String(now.clone());
            stored["updated_at"] = Value::String(now);
        }
        let stored = stored.clone();
        let (kind, id) = split_cid(&stored);
        if hard {
            data.messages.remove(message_id);
            if let Some(order) = data.order.get_mut(&format!("{kind}:{id}")) {
                order.retain(|m| m != message_id);
            }
        }
        let mut event = message_event("message.deleted", &kind, &id, &stored);
        event["hard_delete"] = Value::Bool(hard);
        self.webhooks.enqueue(&data, event);
        Ok(stored)
    }

    fn get_message(&self, message_id: &str) -> Result<Value, StreamError> {
        lock(&self.data)
            .messages
            .get(message_id)
            .cloned()
            .ok_or_else(|| {
                StreamError::not_found(
                    "GetMessage",
                    format!("message with id {message_id} doesn't exist"),
                )
            })
    }
}

/// A user may only edit or delete their own messages; the server may touch any.
fn check_author(endpoint: &str, message: &Value, actor: &Actor) -> Result<(), StreamError> {
    if let Actor::User(user) = actor {
        let author = message
            .get("user")
            .and_then(|u| u.get("id"))
            .and_then(Value::as_str);
        if author != Some(user.as_str()) {
            return Err(StreamError::not_allowed(
                endpoint,
                format!("User '{user}' is not allowed to change another user's message"),
            ));
        }
    }
    Ok(())
}

fn split_cid(message: &Value) -> (String, String) {
    let cid = message
        .get("cid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (kind, id) = cid.split_once(':').unwrap_or(("", cid));
    (kind.to_owned(), id.to_owned())
}

fn channel_state(data: &Data, channel: &Channel) -> Value {
    let cid = format!("{}:{}", channel.channel_type, channel.id);
    let members: Vec<Value> = channel
        .members
        .iter()
        .map(|m| {
            json!({
                "user_id": m,
                "user": data.user_json(m),
                "channel_role": if *m == channel.created_by_id { "channel_moderator" } else { "channel_member" },
                "created_at": channel.created_at,
                "updated_at": channel.created_at,
            })
        })
        .collect();
    let ids = data.order.get(&cid).map(Vec::as_slice).unwrap_or_default();
    let messages: Vec<Value> = ids
        .iter()
        .rev()
        .take(25)
        .rev()
        .filter_map(|id| data.messages.get(id).cloned())
        .collect();
    json!({
        "channel": {
            "id": channel.id,
            "type": channel.channel_type,
            "cid": cid,
            "created_by": data.user_json(&channel.created_by_id),
            "created_at": channel.created_at,
            "updated_at": channel.created_at,
            "member_count": channel.members.len(),
            "frozen": false,
            "disabled": false,
            "config": { "name": channel.channel_type, "max_message_length": MAX_MESSAGE_LENGTH },
        },
        "members": members,
        "messages": messages,
        "pinned_messages": [],
        "read": [],
        "watcher_count": 0,
    })
}

/// `^[a-z0-9@_-]{1,255}$`, the charset the reference documents.
fn valid_user_id(id: &str) -> bool {
    (1..=255).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'@' | b'_' | b'-')
        })
}

/// Type `^[a-z0-9_-]{1,64}$` (and a built-in type), id `^[\w-]{1,64}$`.
fn validate_channel(endpoint: &str, kind: &str, id: &str) -> Result<(), StreamError> {
    let type_ok = (1..=64).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    if !type_ok {
        return Err(StreamError::input(
            endpoint,
            format!("channel type {kind:?} is not valid"),
        ));
    }
    let id_ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if !id_ok {
        return Err(StreamError::input(
            endpoint,
            format!(
                "channel id {id:?} is not valid: use 1-64 characters from a-z, A-Z, 0-9, _ and -"
            ),
        ));
    }
    if !CHANNEL_TYPES.contains(&kind) {
        return Err(StreamError::not_found(
            endpoint,
            format!("Channel type '{kind}' does not exist"),
        ));
    }
    Ok(())
}

fn valid_url(url: &str) -> bool {
    url.parse::<http::Uri>().is_ok_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
    })
}

fn build_router(state: Arc<StreamState>) -> Router {
    Router::new()
        .route("/users", post(upsert_users))
        .route("/channels/{type}/{id}/query", post(query_channel))
        .route("/channels/{type}/{id}/message", post(send_message))
        .route(
            "/messages/{id}",
            get(get_message).post(update_message).delete(delete_message),
        )
        .route("/app", get(get_app).patch(update_app))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

type St = State<Arc<StreamState>>;
type Outcome = Result<(StatusCode, Value), StreamError>;

/// Records the call, authenticates, applies faults and latency, then runs `logic` and renders its outcome.
async fn guarded(
    s: &StreamState,
    route: &'static str,
    req: &Req,
    allow_user: bool,
    logic: impl FnOnce(Actor) -> Outcome,
) -> Response {
    let call = s.recorder.begin(route, req);
    let verdict = s
        .authenticate(req, allow_user)
        .map(|actor| (actor, s.faults.decide(route)));
    s.faults.delay().await;
    let response = match verdict {
        Err(e) => e.into_response(),
        Ok((_, Some(status))) => injected(status),
        Ok((actor, None)) => match logic(actor) {
            Ok((status, mut body)) => {
                if let Some(object) = body.as_object_mut() {
                    object.insert("duration".to_owned(), Value::String("1.00ms".to_owned()));
                }
                (status, Json(body)).into_response()
            }
            Err(e) => e.into_response(),
        },
    };
    call.finish(response)
}

fn parse_json(endpoint: &str, req: &Req) -> Result<Value, StreamError> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| StreamError::input(endpoint, format!("invalid JSON body: {e}")))
}

fn path_or_404<T>(path: Result<Path<T>, PathRejection>) -> Result<T, StreamError> {
    path.map(|Path(p)| p)
        .map_err(|e| StreamError::not_found("Route", format!("invalid path: {e}")))
}

async fn upsert_users(State(s): St, req: Req) -> Response {
    guarded(&s, "upsert_users", &req, false, |_| {
        let body = parse_json("UpdateUsers", &req)?;
        Ok((StatusCode::CREATED, s.upsert_users(&body)?))
    })
    .await
}

async fn query_channel(
    State(s): St,
    path: Result<Path<(String, String)>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "query_channel", &req, true, |actor| {
        let (kind, id) = path_or_404(path)?;
        let body = parse_json("GetOrCreateChannel", &req)?;
        let (created, state) = s.query_channel(&kind, &id, &actor, &body)?;
        Ok((
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            state,
        ))
    })
    .await
}

async fn get_app(State(s): St, req: Req) -> Response {
    guarded(&s, "get_app", &req, false, |_| {
        let app = Value::Object(lock(&s.data).app.clone());
        Ok((StatusCode::OK, json!({ "app": app })))
    })
    .await
}

async fn update_app(State(s): St, req: Req) -> Response {
    guarded(&s, "update_app", &req, false, |_| {
        let body = parse_json("UpdateApp", &req)?;
        Ok((StatusCode::CREATED, s.update_app(&body)?))
    })
    .await
}

async fn send_message(
    State(s): St,
    path: Result<Path<(String, String)>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "send_message", &req, true, |actor| {
        let (kind, id) = path_or_404(path)?;
        let body = parse_json("SendMessage", &req)?;
        let message = body.get("message").cloned().unwrap_or(Value::Null);
        let stored = s.create_message(&kind, &id, &actor, &message)?;
        Ok((StatusCode::CREATED, json!({ "message": stored })))
    })
    .await
}

async fn update_message(
    State(s): St,
    path: Result<Path<String>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "update_message", &req, true, |actor| {
        let id = path_or_404(path)?;
        let body = parse_json("UpdateMessage", &req)?;
        let message = body.get("message").cloned().unwrap_or(Value::Null);
        let stored = s.update_message(&id, &actor, &message)?;
        Ok((StatusCode::CREATED, json!({ "message": stored })))
    })
    .await
}

async fn delete_message(
    State(s): St,
    path: Result<Path<String>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "delete_message", &req, true, |actor| {
        let id = path_or_404(path)?;
        let hard = match req.query().get("hard").map(String::as_str) {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(StreamError::input(
                    "DeleteMessage",
                    format!("hard must be a boolean, got {other}"),
                ))
            }
        };
        let stored = s.delete_message(&id, hard, &actor)?;
        Ok((StatusCode::OK, json!({ "message": stored })))
    })
    .await
}

async fn get_message(
    State(s): St,
    path: Result<Path<String>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "get_message", &req, true, |_| {
        let id = path_or_404(path)?;
        Ok((StatusCode::OK, json!({ "message": s.get_message(&id)? })))
    })
    .await
}

async fn not_found(State(s): St, req: Req) -> Response {
    let call = s.recorder.begin("not_found", &req);
    let error = StreamError::not_found(
        "Route",
        format!("no route for {} {}", req.method, req.uri.path()),
    );
    call.finish(error.into_response())
}

async fn method_not_allowed(State(s): St, req: Req) -> Response {
    let call = s.recorder.begin("method_not_allowed", &req);
    let error = StreamError::new(
        405,
        4,
        "Route",
        format!("method {} is not allowed on {}", req.method, req.uri.path()),
    );
    call.finish(error.into_response())
}

/// An injected failure with Stream's error body (and rate-limit headers for 429).
fn injected(status: u16) -> Response {
    let code = match status {
        429 => 9,
        400 => 4,
        401 => 5,
        403 => 17,
        404 => 16,
        s if s >= 500 => -1,
        _ => 4,
    };
    let message = if status == 429 {
        "Too many requests, check response headers for more information.".to_owned()
    } else {
        format!("injected fault: HTTP {status}")
    };
    let error = StreamError {
        status,
        code,
        message,
    };
    let mut response = error.into_response();
    if status == 429 {
        let reset = OffsetDateTime::now_utc().unix_timestamp() + 60;
        let headers = response.headers_mut();
        headers.insert("X-RateLimit-Limit", HeaderValue::from_static("60"));
        headers.insert("X-RateLimit-Remaining", HeaderValue::from_static("0"));
        if let Ok(value) = HeaderValue::from_str(&reset.to_string()) {
            headers.insert("X-RateLimit-Reset", value);
        }
    }
    response
}

/// What delivery workers need; deliberately not the whole state, so workers never keep a dropped double alive.
struct DeliveryContext {
    client: reqwest::Client,
    api_key: String,
    secret: String,
    deliveries: Mutex<Vec<Delivery>>,
}

#[derive(Default)]
struct Chaos {
    duplicate_rate: f64,
    unordered: bool,
}

struct Webhooks {
    ctx: Arc<DeliveryContext>,
    /// One FIFO worker per (url, channel), so a channel's events arrive in order, as in the sandbox's contract.
    queues: Mutex<HashMap<(String, String), mpsc::UnboundedSender<Job>>>,
    chaos: Mutex<Chaos>,
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
    /// Queues `event` for every configured target; called with the data lock held so queue order = event order.
    fn enqueue(&self, data: &Data, event: Value) {
        let event_type = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let targets = data.webhook_targets(&event_type);
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
        let body = match serde_json::to_vec(&event) {
            Ok(body) => Arc::new(body),
            Err(error) => {
                tracing::error!(%error, "webhook event is not serialisable");
                return;
            }
        };
        let (duplicate_rate, unordered) = {
            let chaos = lock(&self.chaos);
            (chaos.duplicate_rate, chaos.unordered)
        };
        for url in targets {
            let job = Job {
                url: url.clone(),
                event_type: event_type.clone(),
                message_id: message_id.clone(),
                webhook_id: uuid(),
                body: body.clone(),
            };
            let copies = if duplicate_rate > 0.0 && rand::rng().random_bool(duplicate_rate) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                if unordered {
                    let ctx = self.ctx.clone();
                    let job = job.clone();
                    let jitter = Duration::from_millis(rand::rng().random_range(0..50));
                    tokio::spawn(async move {
                        tokio::time::sleep(jitter).await;
                        deliver(&ctx, &job).await;
                    });
                } else {
                    self.queue(&url, &cid).send(job.clone()).ok();
                }
            }
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
    fn user_ids_follow_the_documented_charset() {
        assert!(valid_user_id("visitor-1"));
        assert!(valid_user_id("a@b_c-d"));
        assert!(!valid_user_id(""));
        assert!(!valid_user_id("Upper"));
        assert!(!valid_user_id("has space"));
        assert!(!valid_user_id(&"a".repeat(256)));
    }

    #[test]
    fn channel_ids_and_types_are_validated() {
        assert!(validate_channel("X", "messaging", "Abc_1-2").is_ok());
        assert_eq!(
            validate_channel("X", "messaging", "a:b").map_err(|e| e.code),
            Err(4)
        );
        assert_eq!(
            validate_channel("X", "messaging", &"a".repeat(65)).map_err(|e| e.code),
            Err(4)
        );
        assert_eq!(
            validate_channel("X", "Messaging", "a").map_err(|e| e.code),
            Err(4)
        );
        assert_eq!(
            validate_channel("X", "custom", "a").map_err(|e| e.status),
            Err(404)
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

    #[test]
    fn message_clock_is_strictly_increasing_with_millis() {
        let mut data = Data {
            users: BTreeMap::new(),
            channels: BTreeMap::new(),
            messages: HashMap::new(),
            order: HashMap::new(),
            app: Map::new(),
            clock: OffsetDateTime::UNIX_EPOCH,
        };
        let stamps: Vec<String> = (0..50).map(|_| data.tick()).collect();
        assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
        assert!(
            stamps
                .iter()
                .all(|s| s.len() == "2026-11-24T10:00:00.123Z".len()),
            "{stamps:?}"
        );
    }
}
