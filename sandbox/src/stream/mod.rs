//! A local double of the Stream Chat API (the subset this project and the browser SDK call) and of Stream's
//! webhooks, in one file per concern, each reading like the part of Stream it stands in for:
//!
//! * `auth.rs`: `api_key` + raw-JWT auth, server and user tokens, expiry and revocation;
//! * `rest.rs`: the routes and the request pipeline (record, authenticate, faults, latency, logic);
//! * `cors.rs`: CORS for every origin, as Stream answers browsers;
//! * `users.rs`, `channels.rs`, `messages.rs`, `app.rs`: what each endpoint does, over the stored `state.rs`;
//! * `channel_types.rs`: channel types and their grants, with Stream's defaults;
//! * `permissions.rs`: those grants enforced on user tokens, as Stream's permissions v2 does;
//! * `roles.rs`: custom roles (`/roles`), which users may have and grants may name;
//! * `deletions.rs`: user and channel erasure (hard/soft, async tasks), recorded for tests;
//! * `filter.rs`: the query filters of `queryChannels` and `queryUsers`;
//! * `websocket.rs`: the SDK's `/connect`: `health.check`, pings, events to the connections watching a channel;
//! * `webhooks.rs`: signed delivery with Stream's retries, duplicates and reordering on request.
//!
//! It enforces what real Stream enforces and the app must get right: id charsets, server-side `created_by_id`,
//! existing members, get-or-create idempotency, app-settings merges.

mod app;
mod auth;
mod channel_types;
mod channels;
mod cors;
mod deletions;
mod errors;
mod filter;
mod messages;
mod permissions;
mod rest;
mod roles;
mod state;
mod users;
mod webhooks;
mod websocket;

pub use crate::support::RecordedCall;
pub use auth::{server_token, user_token};
pub use channel_types::MAX_MESSAGE_LENGTH;
pub use errors::StreamError;
pub use state::{Channel, ChannelDeletion, Erasure, User, UserDeletion};
pub use users::MAX_USERS_PER_CALL;
pub use webhooks::{message_event, sign_webhook, Delivery};

use crate::double::Double;
use crate::faults::Faults;
use crate::support::{any_local_port, lock, now_rfc3339, Recorder};
use auth::Actor;
use axum::Router;
use serde_json::{json, Map, Value};
use state::{Data, UserRecord};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webhooks::Webhooks;
use websocket::Hub;

/// A running Stream double on a loopback port; dropping it stops the server. Its routes, as
/// [`Double::call_count`] names them: `"connect"` (the websocket), `"upsert_users"`, `"partial_update_users"`,
/// `"query_users"`, `"delete_users"`, `"get_task"`, `"query_channels"`, `"query_channel"`,
/// `"update_channel"`, `"update_channel_partial"`, `"delete_channel"`, `"stop_watching"`, `"mark_read"`, `"send_event"`, `"send_message"`,
/// `"get_message"`, `"update_message"`, `"delete_message"`, `"get_channel_type"`, `"update_channel_type"`,
/// `"create_channel_type"`, `"get_app"`, `"update_app"`, `"list_roles"`, `"create_role"` (and `"not_found"`, `"method_not_allowed"` for the rest).
pub type StreamDouble = Double<StreamState>;

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
        let router = rest::router(state.clone());
        let (recorder, faults) = (state.recorder.clone(), state.faults.clone());
        Double::serve(addr, state, recorder, faults, router, "stream").await
    }

    /// Forgets recorded calls and webhook deliveries (e.g. after test setup).
    pub fn clear_calls(&self) {
        self.state.recorder.clear();
        self.state.webhooks.forget_deliveries();
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
        lock(&self.state.data).channel_messages(&format!("{channel_type}:{channel_id}"))
    }

    /// Every user deletion applied so far, in order (a `POST /users/delete` task's only once it ran).
    pub fn user_deletions(&self) -> Vec<UserDeletion> {
        lock(&self.state.data).user_deletions.clone()
    }

    /// The next `n` `POST /users/delete` tasks fail: `GET /tasks/{id}` shows them `failed` with an `error`, and
    /// they erase nothing (as a task that failed before its first user).
    pub fn fail_next_tasks(&self, n: usize) {
        lock(&self.state.data).failing_tasks += n;
    }

    /// Every channel deletion applied so far, in order (deleted users' conversations included).
    pub fn channel_deletions(&self) -> Vec<ChannelDeletion> {
        lock(&self.state.data).channel_deletions.clone()
    }

    /// A channel type's grants (role → permission ids, sorted), as `PUT /channeltypes/{name}` left them;
    /// `None` for an unknown type.
    pub fn channel_type_grants(&self, name: &str) -> Option<BTreeMap<String, Vec<String>>> {
        lock(&self.state.data).channel_types.get(name).map(|kind| {
            kind.grants
                .iter()
                .map(|(role, ids)| (role.clone(), ids.iter().cloned().collect()))
                .collect()
        })
    }

    /// A user as `GET /users` shows it (custom fields included), if it exists.
    pub fn user_json(&self, id: &str) -> Option<Value> {
        lock(&self.state.data).users.get(id).map(state::user_json)
    }

    /// Sets (or with `None` clears) the legacy app-level `webhook_url`, as `PATCH /app` would.
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.set_app_setting("webhook_url", Value::String(url.unwrap_or_default()));
    }

    /// Sets one app setting as someone might in Stream's dashboard (`disable_auth_checks`, ...).
    pub fn set_app_setting(&self, name: &str, value: Value) {
        lock(&self.state.data).app.insert(name.to_owned(), value);
    }

    /// The app settings as `GET /app` returns them.
    pub fn app_settings(&self) -> Value {
        self.state.app()
    }

    /// Every webhook delivery attempt so far, in completion order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.webhooks.deliveries()
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

    /// How often a websocket opened from now on gets an unprompted `health.check` (Stream: about every 30 s).
    pub fn set_health_check_interval(&self, interval: Duration) {
        self.state.hub.set_health_interval(interval);
    }

    /// Cuts every open websocket without a close frame, as a lost network does (the SDK reconnects and
    /// recovers its channels). Returns how many were open.
    pub fn drop_connections(&self) -> usize {
        self.state.hub.drop_all()
    }

    /// The user of each open websocket connection (one entry per connection).
    pub fn connected_users(&self) -> Vec<String> {
        self.state.hub.connected_users()
    }

    /// The same routes, for mounting in a dev server; shares this double's state.
    pub fn router(&self) -> Router {
        rest::router(self.state.clone())
    }

    /// Creates a user directly (test setup without HTTP traffic).
    pub fn seed_user(&self, id: &str, name: &str, role: &str) {
        self.seed_user_with(id, name, role, Map::new());
    }

    /// [`Self::seed_user`] with custom fields (`image`, a team...), as an operator may give a user in Stream's
    /// dashboard.
    pub fn seed_user_with(&self, id: &str, name: &str, role: &str, extra: Map<String, Value>) {
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
                extra,
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

    /// Shows a soft-deleted message again, as `undeleted_by`, and delivers `message.undeleted`.
    pub async fn undelete_message(
        &self,
        message_id: &str,
        undeleted_by: &str,
    ) -> Result<Value, StreamError> {
        self.state.undelete_message(message_id, undeleted_by)
    }
}

/// The Stream double's state, which every route shares: opaque, reached through [`StreamDouble`]'s methods.
pub struct StreamState {
    api_key: String,
    secret: String,
    faults: Faults,
    recorder: Recorder,
    data: Mutex<Data>,
    webhooks: Webhooks,
    hub: Hub,
    /// When the double started: the built-in roles' creation time (`GET /roles`).
    started_at: String,
}

impl StreamState {
    fn new(api_key: &str, secret: &str) -> std::io::Result<Self> {
        Ok(Self {
            api_key: api_key.to_owned(),
            secret: secret.to_owned(),
            faults: Faults::default(),
            recorder: Recorder::default(),
            data: Mutex::new(Data::new(app::default_settings())),
            webhooks: Webhooks::new(api_key, secret)?,
            hub: Hub::default(),
            started_at: now_rfc3339(),
        })
    }

    /// Sends an event wherever Stream sends it. Called with the data lock held, so events leave in the order the
    /// changes were made.
    fn publish(&self, data: &Data, event: &Value) {
        self.hub.broadcast(event);
        self.webhooks.enqueue(data, event);
    }
}
