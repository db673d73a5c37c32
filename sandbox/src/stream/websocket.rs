//! The client websocket, as the browser SDK (`stream-chat`'s `StableWSConnection`) uses it.
//!
//! `GET /connect?json={"user_id","user_details",...}&api_key=…&authorization=<user JWT>&stream-auth-type=jwt`:
//! the upgrade is always accepted, then the token is checked like a REST call. A refusal is one frame
//! `{"error": {"code","message","StatusCode",...}}` followed by a close with code 1000 — the SDK rejects
//! `connectUser` with that code and message (and does not retry: only 40 with a token provider is retried).
//! Accepted, the user is upserted from `user_details` (given fields only: a client never changes a role), the
//! first frame is `health.check` with the new `connection_id` and `me` (the own user), and from then on the
//! server answers each client ping (`[{"type":"health.check"}]`) with a `health.check`, sends one unprompted
//! every health-check interval, and pushes every event of the channels this connection watches (a channel query
//! with `watch: true` and this `connection_id` starts watching; `stop-watching` or the socket closing ends it).

use super::auth::Actor;
use super::errors::StreamError;
use super::permissions::{Action, Resource};
use super::state::{user_json, valid_user_id, Data, User, UserRecord};
use super::StreamState;
use crate::support::{lock, now_rfc3339, uuid, Req};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Stream sends a `health.check` about every 30 s; the SDK reconnects after 35 s without any event.
const HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// Close code the SDK treats as final (no reconnect): Stream closes refused connections with it.
const CLOSE_REFUSED: u16 = 1000;

/// The open connections and what each watches.
pub(crate) struct Hub {
    connections: Mutex<HashMap<String, Connection>>,
    health_interval: Mutex<Duration>,
}

struct Connection {
    user_id: String,
    watching: BTreeSet<String>,
    frames: mpsc::UnboundedSender<Frame>,
}

enum Frame {
    Event(Value),
    /// Drop the socket without a close frame, as a lost network does.
    Drop,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            connections: Mutex::default(),
            health_interval: Mutex::new(HEALTH_CHECK_INTERVAL),
        }
    }
}

impl Hub {
    pub(crate) fn set_health_interval(&self, interval: Duration) {
        *lock(&self.health_interval) = interval;
    }

    fn register(&self, user_id: &str) -> (String, mpsc::UnboundedReceiver<Frame>) {
        let (frames, receiver) = mpsc::unbounded_channel();
        let id = uuid();
        lock(&self.connections).insert(
            id.clone(),
            Connection {
                user_id: user_id.to_owned(),
                watching: BTreeSet::new(),
                frames,
            },
        );
        (id, receiver)
    }

    fn remove(&self, connection_id: &str) {
        lock(&self.connections).remove(connection_id);
    }

    /// Starts watching `cid` on the caller's own connection; Stream refuses a watch without one.
    pub(crate) fn watch(
        &self,
        endpoint: &str,
        connection_id: Option<&str>,
        user_id: &str,
        cid: &str,
    ) -> Result<(), StreamError> {
        let mut connections = lock(&self.connections);
        match connection_id.and_then(|id| connections.get_mut(id)) {
            Some(connection) if connection.user_id == user_id => {
                connection.watching.insert(cid.to_owned());
                Ok(())
            }
            _ => Err(no_connection(endpoint)),
        }
    }

    /// Checks, before anything changes, that a watch will find the caller's connection.
    pub(crate) fn check_connection(
        &self,
        endpoint: &str,
        connection_id: Option<&str>,
        user_id: &str,
    ) -> Result<(), StreamError> {
        let connections = lock(&self.connections);
        match connection_id.and_then(|id| connections.get(id)) {
            Some(connection) if connection.user_id == user_id => Ok(()),
            _ => Err(no_connection(endpoint)),
        }
    }

    pub(crate) fn stop_watching(&self, connection_id: Option<&str>, cid: &str) {
        let mut connections = lock(&self.connections);
        if let Some(connection) = connection_id.and_then(|id| connections.get_mut(id)) {
            connection.watching.remove(cid);
        }
    }

    /// Distinct users watching `cid`.
    pub(crate) fn watcher_count(&self, cid: &str) -> usize {
        lock(&self.connections)
            .values()
            .filter(|c| c.watching.contains(cid))
            .map(|c| c.user_id.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Sends a channel event (it has a `cid`) to every connection watching that channel, with `watcher_count`.
    pub(crate) fn broadcast(&self, event: &Value) {
        let Some(cid) = event.get("cid").and_then(Value::as_str) else {
            return;
        };
        let mut event = event.clone();
        event["watcher_count"] = json!(self.watcher_count(cid));
        for connection in lock(&self.connections).values() {
            if connection.watching.contains(cid) {
                connection.frames.send(Frame::Event(event.clone())).ok();
            }
        }
    }

    /// Sends a user-level event (`user.deleted`) to that user's connections.
    pub(crate) fn send_to_user(&self, user_id: &str, event: &Value) {
        for connection in lock(&self.connections).values() {
            if connection.user_id == user_id {
                connection.frames.send(Frame::Event(event.clone())).ok();
            }
        }
    }

    /// Cuts every open connection (no close frame), as a network loss would; clients reconnect.
    pub(crate) fn drop_all(&self) -> usize {
        let mut connections = lock(&self.connections);
        for connection in connections.values() {
            connection.frames.send(Frame::Drop).ok();
        }
        let count = connections.len();
        connections.clear();
        count
    }

    pub(crate) fn connected_users(&self) -> Vec<String> {
        lock(&self.connections)
            .values()
            .map(|c| c.user_id.clone())
            .collect()
    }
}

fn no_connection(endpoint: &str) -> StreamError {
    StreamError::input(
        endpoint,
        "Watch or Presence requires an active websocket connection, please make sure to include your websocket \
         connection_id",
    )
}

/// `GET /connect`: the upgrade, then the session (or the refusal) on the socket.
pub(crate) async fn connect(
    State(s): State<Arc<StreamState>>,
    req: axum::extract::Request,
) -> Response {
    let (mut parts, body) = req.into_parts();
    drop(body);
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &()).await;
    let original = Req {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
        body: Default::default(),
    };
    let query = original.query();
    // The token travels in the query string here: the recorded call keeps everything but it.
    let record = Req {
        uri: without_token(&original.uri),
        ..original
    };
    let call = s.recorder.begin("connect", &record);
    let fault = s.faults.decide("connect");
    s.faults.delay().await;
    let upgrade = match (upgrade, fault) {
        (_, Some(status)) => return call.finish(super::errors::injected(status)).await,
        (Err(rejection), None) => {
            let error = StreamError::input(
                "Connect",
                format!("a websocket upgrade is required: {rejection}"),
            );
            return call.finish(error.into_response()).await;
        }
        (Ok(upgrade), None) => upgrade,
    };
    let session = s.open_session(&query);
    let state = s.clone();
    call.finish(upgrade.on_upgrade(move |socket| serve(state, socket, session)))
        .await
}

/// `uri` with the `authorization` query parameter's value redacted.
fn without_token(uri: &http::Uri) -> http::Uri {
    let Some(query) = uri.query() else {
        return uri.clone();
    };
    let redacted: Vec<&str> = query
        .split('&')
        .map(|pair| {
            if pair.starts_with("authorization=") {
                "authorization=[redacted]"
            } else {
                pair
            }
        })
        .collect();
    format!("{}?{}", uri.path(), redacted.join("&"))
        .parse()
        .unwrap_or_else(|_| http::Uri::from_static("/connect"))
}

/// Who connects: the checks of the query parameters and the token, and the user upserted from `user_details`.
struct Session {
    user_id: String,
}

impl StreamState {
    fn open_session(&self, query: &HashMap<String, String>) -> Result<Session, StreamError> {
        self.check_api_key(query.get("api_key").map(String::as_str))?;
        super::auth::check_auth_type(query.get("stream-auth-type").map(String::as_str))?;
        let token = query
            .get("authorization")
            .map(String::as_str)
            .unwrap_or_default();
        if token.is_empty() {
            return Err(StreamError::auth(
                5,
                "JWTAuth error: the authorization parameter is missing",
            ));
        }
        let Some(payload) = query.get("json") else {
            return Err(StreamError::input(
                "Connect",
                "the json parameter is required",
            ));
        };
        let payload: Value = serde_json::from_str(payload)
            .map_err(|e| StreamError::input("Connect", format!("json is not valid JSON: {e}")))?;
        let Some(user_id) = payload.get("user_id").and_then(Value::as_str) else {
            return Err(StreamError::input(
                "Connect",
                "json.user_id is a required field",
            ));
        };
        match self.verify_token(token)? {
            Actor::User(token_user) if token_user == user_id => {}
            Actor::User(_) => {
                return Err(StreamError::auth(
                    5,
                    "JWTAuth error: the user_id in the token does not match the connecting user_id",
                ))
            }
            Actor::Server => {
                return Err(StreamError::auth(
                    5,
                    "JWTAuth error: connecting needs a user token, not a server token",
                ))
            }
        }
        if !valid_user_id(user_id) {
            return Err(StreamError::input(
                "Connect",
                format!("user_id {user_id:?} is not valid"),
            ));
        }
        let details = payload.get("user_details").and_then(Value::as_object);
        upsert_connecting_user(&mut lock(&self.data), user_id, details);
        Ok(Session {
            user_id: user_id.to_owned(),
        })
    }
}

/// Creates the user, or sets the fields the client gave (never `role`, never Stream's own fields). An existing
/// user's fields change only if it may update itself (`update-user-owner` in the app scope); without it the
/// connection is still accepted and the fields are left as they are (what this double assumes of Stream).
fn upsert_connecting_user(data: &mut Data, user_id: &str, details: Option<&Map<String, Value>>) {
    let may_update = !data.users.contains_key(user_id)
        || data
            .permit(
                "Connect",
                user_id,
                "",
                Action::UpdateUser,
                Resource::OwnUser,
            )
            .is_ok();
    let details = details.filter(|_| may_update);
    const NOT_FROM_CLIENT: [&str; 8] = [
        "id",
        "role",
        "created_at",
        "updated_at",
        "banned",
        "online",
        "last_active",
        "deleted_at",
    ];
    let now = now_rfc3339();
    let record = data
        .users
        .entry(user_id.to_owned())
        .or_insert_with(|| UserRecord {
            user: User {
                id: user_id.to_owned(),
                name: String::new(),
                role: "user".to_owned(),
            },
            extra: Map::new(),
            created_at: now.clone(),
            updated_at: now.clone(),
        });
    for (key, value) in details.into_iter().flatten() {
        match key.as_str() {
            k if NOT_FROM_CLIENT.contains(&k) => {}
            "name" => {
                if let Some(name) = value.as_str() {
                    record.user.name = name.to_owned();
                }
            }
            _ => {
                record.extra.insert(key.clone(), value.clone());
            }
        }
    }
    record.updated_at = now;
}

async fn serve(state: Arc<StreamState>, socket: WebSocket, session: Result<Session, StreamError>) {
    let (mut sink, mut stream) = socket.split();
    let session = match session {
        Ok(session) => session,
        Err(error) => {
            let frame = json!({ "error": error.body() }).to_string();
            let _ = sink.send(Message::Text(frame.into())).await;
            let close = CloseFrame {
                code: CLOSE_REFUSED,
                reason: error.message.clone().into(),
            };
            let _ = sink.send(Message::Close(Some(close))).await;
            return;
        }
    };
    let (connection_id, mut frames) = state.hub.register(&session.user_id);
    let health = |with_me: bool| {
        let mut event = json!({
            "type": "health.check",
            "connection_id": connection_id,
            "cid": "*",
            "created_at": now_rfc3339(),
        });
        if with_me {
            event["me"] = state.me(&session.user_id);
        }
        Message::Text(event.to_string().into())
    };
    let interval = *lock(&state.hub.health_interval);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    if sink.send(health(true)).await.is_ok() {
        loop {
            tokio::select! {
                frame = frames.recv() => match frame {
                    Some(Frame::Event(event)) => {
                        if sink.send(Message::Text(event.to_string().into())).await.is_err() {
                            break;
                        }
                    }
                    Some(Frame::Drop) | None => break,
                },
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        if is_ping(&text) && sink.send(health(false)).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                _ = ticks.tick() => {
                    if sink.send(health(false)).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    state.hub.remove(&connection_id);
}

/// The SDK's ping: `[{"type":"health.check","client_id":…}]`.
fn is_ping(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| {
        v.as_array()
            .and_then(|a| a.first())
            .and_then(|e| e.get("type"))
            .and_then(Value::as_str)
            == Some("health.check")
    })
}

impl StreamState {
    /// The own user as the first `health.check` carries it (`OwnUserResponse`).
    fn me(&self, user_id: &str) -> Value {
        let data = lock(&self.data);
        let mut me = match data.users.get(user_id) {
            Some(record) => user_json(record),
            None => json!({ "id": user_id }),
        };
        me["online"] = Value::Bool(true);
        me["channel_mutes"] = json!([]);
        me["mutes"] = json!([]);
        me["devices"] = json!([]);
        me["blocked_user_ids"] = json!([]);
        me["invisible"] = Value::Bool(false);
        me["total_unread_count"] = json!(0);
        me["unread_count"] = json!(0);
        me["unread_channels"] = json!(0);
        me
    }
}
