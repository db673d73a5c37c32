//! The Stream double behaves like the real API where the app depends on it, and sends webhooks like Stream.

mod deletions;
mod permissions;
mod rest;
mod webhooks;
mod websocket;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use http::{HeaderMap, StatusCode};
use sandbox::stream::{server_token, sign_webhook, user_token};
use sandbox::StreamDouble;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "sandbox-key";
const SECRET: &str = "sandbox-secret";

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn server(double: &StreamDouble) -> Self {
        Self::with_token(double, server_token(SECRET).expect("token"))
    }

    fn with_token(double: &StreamDouble, token: String) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: double.base_url(),
            token,
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut request = self
            .http
            .request(
                method,
                format!("{}{path}{separator}api_key={KEY}", self.base),
            )
            .header("Authorization", &self.token)
            .header("Stream-Auth-Type", "jwt");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn upsert_users(&self, ids: &[&str]) -> (u16, Value) {
        let users: serde_json::Map<String, Value> = ids
            .iter()
            .map(|id| {
                (
                    (*id).to_owned(),
                    json!({"id": id, "name": format!("User {id}"), "role": "user"}),
                )
            })
            .collect();
        self.send("POST", "/users", Some(json!({ "users": users })))
            .await
    }

    async fn query_channel(&self, id: &str, data: Value) -> (u16, Value) {
        let body = json!({"data": data, "state": false, "watch": false, "presence": false});
        self.send(
            "POST",
            &format!("/channels/messaging/{id}/query"),
            Some(body),
        )
        .await
    }
}

/// A webhook receiver that answers with scripted statuses (then 200) and keeps what it received.
#[derive(Clone, Default)]
struct Receiver {
    statuses: Arc<Mutex<VecDeque<u16>>>,
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

impl Receiver {
    async fn start(statuses: &[u16]) -> (Self, String) {
        let receiver = Receiver::default();
        receiver.statuses.lock().expect("lock").extend(statuses);
        let router = Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        (receiver, url)
    }

    fn received(&self) -> Vec<(HeaderMap, Bytes)> {
        self.received.lock().expect("lock").clone()
    }

    /// The bodies received, as JSON, in order.
    fn events(&self) -> Vec<Value> {
        self.received()
            .iter()
            .map(|(_, body)| serde_json::from_slice(body).expect("json"))
            .collect()
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver
        .received
        .lock()
        .expect("lock")
        .push((headers, body));
    let status = receiver
        .statuses
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(200);
    StatusCode::from_u16(status).expect("status")
}

async fn chat(double: &StreamDouble) {
    let client = Client::server(double);
    client
        .upsert_users(&["agent", "visitor-1", "outsider"])
        .await;
    let (status, body) = client
        .query_channel(
            "support-1",
            json!({"created_by_id": "agent", "members": ["agent", "visitor-1"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// A websocket client speaking the SDK's side of `/connect`.
struct Socket {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Socket {
    /// Connects as the SDK does; `token` is the raw JWT.
    async fn connect(double: &StreamDouble, user_id: &str, token: &str) -> Self {
        let payload =
            json!({"user_id": user_id, "user_details": {"id": user_id}, "client_request_id": "r1"});
        let url = reqwest::Url::parse_with_params(
            &format!("{}/connect", double.base_url().replace("http", "ws")),
            [
                ("json", payload.to_string().as_str()),
                ("api_key", KEY),
                ("authorization", token),
                ("stream-auth-type", "jwt"),
            ],
        )
        .expect("url");
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("the upgrade is accepted");
        Self { ws }
    }

    /// Connects as `user_id` with a fresh token and reads the first `health.check`: the socket, its connection id
    /// and the token.
    async fn open(double: &StreamDouble, user_id: &str) -> (Self, String, String) {
        let token = user_token(SECRET, user_id, None).expect("token");
        let mut socket = Self::connect(double, user_id, &token).await;
        let first = socket.next().await.expect("health.check");
        let connection_id = first["connection_id"].as_str().expect("id").to_owned();
        (socket, connection_id, token)
    }

    /// The next text frame as JSON (within 2 s), or `None` if the socket closed first.
    async fn next(&mut self) -> Option<Value> {
        self.next_frame().await.ok().flatten()
    }

    /// `Ok(Some(json))` for a text frame, `Ok(None)` once closed, `Err` after 2 s of silence; close frames are
    /// returned as `{"close": code, "reason": ...}`.
    async fn next_frame(&mut self) -> Result<Option<Value>, ()> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(2), self.ws.next())
                .await
                .map_err(|_| ())?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Ok(Some(serde_json::from_str(&text).expect("a JSON frame")))
                }
                Some(Ok(Message::Close(close))) => {
                    let (code, reason) = close
                        .map(|c| (u16::from(c.code), c.reason.to_string()))
                        .unwrap_or_default();
                    return Ok(Some(json!({"close": code, "reason": reason})));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Ok(None),
            }
        }
    }

    async fn send(&mut self, frame: Value) {
        use futures::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(
                frame.to_string().into(),
            ))
            .await
            .expect("sent");
    }

    /// The first event of `kind` within 2 s, skipping others (health checks).
    async fn expect(&mut self, kind: &str) -> Value {
        loop {
            match self.next_frame().await {
                Ok(Some(frame)) if frame["type"] == kind => return frame,
                Ok(Some(_)) => continue,
                other => panic!("expected a {kind} frame, got {other:?}"),
            }
        }
    }

    /// Asserts that nothing but health checks arrives for 300 ms.
    async fn expect_silence(&mut self) {
        use futures::StreamExt;
        let quiet = tokio::time::timeout(Duration::from_millis(300), async {
            while let Some(Ok(frame)) = self.ws.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
                    if !text.contains("health.check") {
                        return text.to_string();
                    }
                }
            }
            String::new()
        })
        .await;
        if let Ok(frame) = quiet {
            panic!("expected no event, got {frame:?}");
        }
    }
}

async fn client_upsert(server: &Client, ids: &[&str]) {
    let (status, body) = server.upsert_users(ids).await;
    assert_eq!(status, 201, "{body}");
}

fn urlencode(text: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", [("p", text)])
        .expect("url")
        .query()
        .unwrap_or_default()
        .trim_start_matches("p=")
        .to_owned()
}
