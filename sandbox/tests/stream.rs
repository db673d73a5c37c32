//! The Stream double behaves like the real API where the app depends on it, and sends webhooks like Stream.

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

#[tokio::test]
async fn auth_requires_api_key_and_a_raw_server_jwt() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    let http = reqwest::Client::new();
    let token = server_token(SECRET).expect("token");
    let app = |key: &str| format!("{}/app?api_key={key}", double.base_url());
    let status_and_code = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["StatusCode"], status, "{body}");
        (status, body["code"].as_i64().expect("code"))
    };

    let no_token = http
        .get(app(KEY))
        .header("Stream-Auth-Type", "jwt")
        .send()
        .await
        .expect("sent");
    assert_eq!(status_and_code(no_token).await, (401, 5));
    let bearer = http
        .get(app(KEY))
        .header("Authorization", format!("Bearer {token}"))
        .header("Stream-Auth-Type", "jwt")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        status_and_code(bearer).await,
        (401, 5),
        "a Bearer prefix is rejected"
    );
    let forged = http
        .get(app(KEY))
        .header(
            "Authorization",
            server_token("other-secret").expect("token"),
        )
        .header("Stream-Auth-Type", "jwt")
        .send()
        .await
        .expect("sent");
    assert_eq!(status_and_code(forged).await, (401, 5));
    let wrong_key = http
        .get(app("other-key"))
        .header("Authorization", &token)
        .header("Stream-Auth-Type", "jwt")
        .send()
        .await
        .expect("sent");
    assert_eq!(status_and_code(wrong_key).await, (401, 2));
    let no_key = http
        .get(format!("{}/app", double.base_url()))
        .header("Authorization", &token)
        .header("Stream-Auth-Type", "jwt")
        .send()
        .await
        .expect("sent");
    assert_eq!(status_and_code(no_key).await, (401, 2));
    let user = Client::with_token(&double, user_token(SECRET, "ada", None).expect("token"));
    assert_eq!(
        user.send("GET", "/app", None).await.0,
        403,
        "user tokens cannot read app settings"
    );

    let (status, body) = Client::server(&double).send("GET", "/app", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(double.call_count("get_app"), 7);
}

#[tokio::test]
async fn users_upsert_validates_ids() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    let client = Client::server(&double);
    let (status, body) = client
        .upsert_users(&["visitor-1", "agent@support_team"])
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["users"]["visitor-1"]["name"], "User visitor-1");
    for bad in ["Visitor", "has space", "x:y", ""] {
        let (status, body) = client.upsert_users(&[bad]).await;
        assert_eq!(
            (status, body["code"].as_i64()),
            (400, Some(4)),
            "{bad:?}: {body}"
        );
    }
    let ids: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(
        client.upsert_users(&ids).await.0,
        400,
        "more than 100 users"
    );
    let users = double.users();
    assert_eq!(
        users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["agent@support_team", "visitor-1"]
    );
    assert_eq!(users[1].role, "user");
}

#[tokio::test]
async fn channel_query_requires_creator_and_existing_members_and_is_idempotent() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    let client = Client::server(&double);
    client.upsert_users(&["agent", "visitor-1"]).await;

    let (status, body) = client
        .query_channel("support-1", json!({"members": ["agent", "visitor-1"]}))
        .await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(4)), "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("created_by")),
        "{body}"
    );

    let (status, body) = client
        .query_channel(
            "support-1",
            json!({"created_by_id": "agent", "members": ["agent", "ghost"]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("ghost")),
        "{body}"
    );

    let (status, body) = client
        .query_channel("bad:id", json!({"created_by_id": "agent"}))
        .await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(4)), "{body}");

    let data = json!({"created_by_id": "agent", "members": ["agent", "visitor-1"]});
    let (status, created) = client.query_channel("support-1", data.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["channel"]["cid"], "messaging:support-1");
    assert_eq!(created["channel"]["created_by"]["id"], "agent");
    assert_eq!(created["channel"]["member_count"], 2);
    let (status, again) = client.query_channel("support-1", data).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["channel"]["created_at"],
        created["channel"]["created_at"]
    );
    let channels = double.channels();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].created_by_id, "agent");
    assert_eq!(channels[0].members, ["agent", "visitor-1"]);
}

#[tokio::test]
async fn patch_app_merges_settings() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    let client = Client::server(&double);
    let (status, body) = client
        .send(
            "PATCH",
            "/app",
            Some(json!({"webhook_url": "https://example.com/hook"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let hooks = json!({"event_hooks": [{"hook_type": "sqs", "enabled": true, "sqs_queue_url": "https://sqs.example/q"}]});
    assert_eq!(client.send("PATCH", "/app", Some(hooks)).await.0, 200);
    assert_eq!(
        client
            .send("PATCH", "/app", Some(json!({"webhook_url": "ftp://x"})))
            .await
            .0,
        400
    );

    let (_, app) = client.send("GET", "/app", None).await;
    assert_eq!(
        app["app"]["webhook_url"], "https://example.com/hook",
        "not wiped by the second PATCH"
    );
    assert_eq!(app["app"]["event_hooks"][0]["hook_type"], "sqs");
    assert!(app["app"]["event_hooks"][0]["id"].is_string());
    assert_eq!(app["app"]["name"], "sandbox");
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

#[tokio::test]
async fn send_message_delivers_a_signed_webhook() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    chat(&double).await;
    let (receiver, url) = Receiver::start(&[]).await;
    double.set_webhook_url(Some(url));

    let message = double
        .send_message("messaging", "support-1", "visitor-1", "Hello!")
        .await
        .expect("sent");
    assert_eq!(message["user"]["id"], "visitor-1");
    assert_eq!(message["type"], "regular");
    assert!(
        double
            .send_message("messaging", "support-1", "outsider", "hi")
            .await
            .is_err(),
        "not a member"
    );

    let deliveries = double.wait_for_deliveries(1, Duration::from_secs(5)).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, Some(200));
    let received = receiver.received();
    let (headers, body) = &received[0];
    assert_eq!(header(headers, "x-signature"), sign_webhook(SECRET, body));
    assert_eq!(header(headers, "x-api-key"), KEY);
    assert_eq!(header(headers, "x-webhook-attempt"), "1");
    assert_eq!(header(headers, "content-type"), "application/json");
    assert!(!header(headers, "x-webhook-id").is_empty());
    let event: Value = serde_json::from_slice(body).expect("json");
    assert_eq!(event["type"], "message.new");
    assert_eq!(event["cid"], "messaging:support-1");
    assert_eq!(event["channel_type"], "messaging");
    assert_eq!(event["channel_id"], "support-1");
    assert_eq!(event["message"]["id"], message["id"]);
    assert_eq!(event["message"]["text"], "Hello!");
    assert_eq!(event["user"]["id"], "visitor-1");

    // Edits and deletes follow, in order, with their own event shapes.
    let id = message["id"].as_str().expect("id");
    let updated = double
        .update_message(id, "Hello again")
        .await
        .expect("updated");
    assert!(updated["updated_at"].as_str() > message["updated_at"].as_str());
    // A soft deletion can be undone (the text comes back, newer than the deletion); a hard one cannot.
    let deleted = double.delete_message(id, false).await.expect("deleted");
    let undeleted = double
        .undelete_message(id, "visitor-1")
        .await
        .expect("undeleted");
    assert_eq!(undeleted["type"], "regular");
    assert_eq!(undeleted["text"], "Hello again");
    assert!(undeleted.get("deleted_at").is_none());
    assert!(undeleted["updated_at"].as_str() > deleted["deleted_at"].as_str());
    assert!(
        double.undelete_message(id, "visitor-1").await.is_err(),
        "not deleted"
    );
    double.delete_message(id, true).await.expect("deleted");
    assert!(
        double.undelete_message(id, "visitor-1").await.is_err(),
        "hard-deleted: gone"
    );
    double.wait_for_deliveries(5, Duration::from_secs(5)).await;
    let events: Vec<Value> = receiver
        .received()
        .iter()
        .map(|(_, body)| serde_json::from_slice(body).expect("json"))
        .collect();
    assert_eq!(
        events
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        [
            "message.new",
            "message.updated",
            "message.deleted",
            "message.undeleted",
            "message.deleted"
        ]
    );
    assert_eq!(events[1]["message"]["text"], "Hello again");
    assert_eq!(events[2]["hard_delete"], false);
    assert_eq!(events[3]["message"]["text"], "Hello again");
    assert_eq!(events[3]["message"]["type"], "regular");
    assert_eq!(events[4]["hard_delete"], true);
    assert_eq!(events[4]["message"]["type"], "deleted");
    assert!(events[4]["message"]["deleted_at"].is_string());
    assert!(
        double.messages("messaging", "support-1").is_empty(),
        "hard-deleted"
    );
}

#[tokio::test]
async fn webhooks_are_retried_on_500_with_the_same_id() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    chat(&double).await;
    let (receiver, url) = Receiver::start(&[500, 500, 500]).await;
    let client = Client::server(&double);
    let hook =
        json!({"event_hooks": [{"hook_type": "webhook", "enabled": true, "webhook_url": url}]});
    assert_eq!(client.send("PATCH", "/app", Some(hook)).await.0, 200);

    // Over HTTP with a user token: the message's user is the token's user.
    let visitor = Client::with_token(
        &double,
        user_token(SECRET, "visitor-1", Some(Duration::from_secs(60))).expect("t"),
    );
    let (status, body) = visitor
        .send(
            "POST",
            "/channels/messaging/support-1/message",
            Some(json!({"message": {"text": "hi"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"]["user"]["id"], "visitor-1");

    let deliveries = double.wait_for_deliveries(3, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(double.deliveries().len(), 3, "3 attempts, no more");
    assert_eq!(
        deliveries.iter().map(|d| d.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(deliveries.iter().all(|d| d.status == Some(500)));
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    let ids: Vec<&str> = received
        .iter()
        .map(|(h, _)| header(h, "x-webhook-id"))
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0] && !id.is_empty()),
        "{ids:?}"
    );
    let attempts: Vec<&str> = received
        .iter()
        .map(|(h, _)| header(h, "x-webhook-attempt"))
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    assert!(
        received.iter().all(|(_, body)| body == &received[0].1),
        "the same body each time"
    );

    // A 4xx is not retried; a network error is tried twice.
    receiver.statuses.lock().expect("lock").push_back(400);
    double
        .send_message("messaging", "support-1", "agent", "ok")
        .await
        .expect("sent");
    double.wait_for_deliveries(4, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(double.deliveries().len(), 4);
    double.set_webhook_url(Some("http://127.0.0.1:9/unreachable".to_owned()));
    let unreachable = json!({"event_hooks": []});
    assert_eq!(client.send("PATCH", "/app", Some(unreachable)).await.0, 200);
    double
        .send_message("messaging", "support-1", "agent", "lost")
        .await
        .expect("sent");
    let deliveries = double.wait_for_deliveries(6, Duration::from_secs(5)).await;
    assert_eq!(deliveries.len(), 6);
    assert!(deliveries[4..]
        .iter()
        .all(|d| d.status.is_none() && d.error.is_some()));
}

#[tokio::test]
async fn message_routes_check_auth_membership_and_faults() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    chat(&double).await;
    let server = Client::server(&double);
    let path = "/channels/messaging/support-1/message";

    let (status, body) = server
        .send("POST", path, Some(json!({"message": {"text": "x"}})))
        .await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (400, Some(4)),
        "server token needs message.user_id"
    );
    let (status, body) = server
        .send(
            "POST",
            path,
            Some(json!({"message": {"text": "x", "user_id": "outsider"}})),
        )
        .await;
    assert_eq!((status, body["code"].as_i64()), (403, Some(17)), "{body}");
    let (status, body) = server
        .send(
            "POST",
            path,
            Some(json!({"message": {"id": "m-1", "text": "x", "user": {"id": "agent"}}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"]["id"], "m-1");

    let expired = user_token(SECRET, "visitor-1", Some(Duration::ZERO)).expect("token");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, body) = Client::with_token(&double, expired)
        .send("POST", path, Some(json!({"message": {"text": "x"}})))
        .await;
    assert_eq!(status, 401, "{body}");

    let visitor = Client::with_token(
        &double,
        user_token(SECRET, "visitor-1", None).expect("token"),
    );
    let (status, _) = visitor
        .send(
            "POST",
            "/messages/m-1",
            Some(json!({"message": {"text": "not mine"}})),
        )
        .await;
    assert_eq!(status, 403, "users may only edit their own messages");
    let (status, body) = server
        .send(
            "POST",
            "/messages/m-1",
            Some(json!({"message": {"text": "edited"}})),
        )
        .await;
    assert_eq!(
        (status, body["message"]["text"].as_str()),
        (201, Some("edited"))
    );
    let (status, body) = server
        .send("DELETE", "/messages/m-1?hard=false", None)
        .await;
    assert_eq!(
        (status, body["message"]["type"].as_str()),
        (200, Some("deleted"))
    );
    assert_eq!(
        double.messages("messaging", "support-1").len(),
        1,
        "soft-deleted messages stay"
    );
    // Undeleting is the server's: a user's token is refused, and `undeleted_by` is required.
    let (status, _) = visitor
        .send(
            "POST",
            "/messages/m-1/undelete",
            Some(json!({"undeleted_by": "visitor-1"})),
        )
        .await;
    assert!(matches!(status, 401 | 403), "{status}");
    let (status, _) = server
        .send("POST", "/messages/m-1/undelete", Some(json!({})))
        .await;
    assert_eq!(status, 400);
    let (status, body) = server
        .send(
            "POST",
            "/messages/m-1/undelete",
            Some(json!({"undeleted_by": "visitor-1"})),
        )
        .await;
    assert_eq!(
        (
            status,
            body["message"]["type"].as_str(),
            body["message"]["text"].as_str()
        ),
        (201, Some("regular"), Some("edited"))
    );

    double.faults().fail_next("send_message", 1, 429);
    let (status, body) = server
        .send(
            "POST",
            path,
            Some(json!({"message": {"text": "x", "user_id": "agent"}})),
        )
        .await;
    assert_eq!((status, body["code"].as_i64()), (429, Some(9)));
    assert_eq!(
        double.messages("messaging", "support-1").len(),
        1,
        "a failed call writes nothing"
    );
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

#[tokio::test]
async fn connect_answers_health_check_with_me_then_pings_and_periodic_checks() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    double.seed_user("visitor-1", "Ada", "user");
    double.set_health_check_interval(Duration::from_millis(200));
    let token = user_token(SECRET, "visitor-1", Some(Duration::from_secs(60))).expect("token");
    let mut socket = Socket::connect(&double, "visitor-1", &token).await;

    let first = socket.next().await.expect("a first frame");
    assert_eq!(first["type"], "health.check", "{first}");
    assert!(
        first["connection_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{first}"
    );
    assert_eq!(first["me"]["id"], "visitor-1");
    assert_eq!(first["me"]["name"], "Ada", "me is the stored user");
    assert_eq!(first["me"]["role"], "user");
    assert_eq!(double.connected_users(), ["visitor-1"]);
    let recorded = double.calls();
    assert_eq!(recorded[0].route, "connect");
    assert!(
        recorded[0].query.contains("authorization=[redacted]")
            && !recorded[0].query.contains(&token),
        "the token is not recorded: {}",
        recorded[0].query
    );

    socket
        .send(json!([{"type": "health.check", "client_id": "visitor-1--x"}]))
        .await;
    let pong = socket.expect("health.check").await;
    assert_eq!(pong["connection_id"], first["connection_id"]);
    let unprompted = socket.expect("health.check").await;
    assert_eq!(unprompted["connection_id"], first["connection_id"]);

    assert_eq!(double.drop_connections(), 1);
    assert_eq!(socket.next().await, None, "cut without a close frame");
    assert!(double.connected_users().is_empty());
}

#[tokio::test]
async fn connect_refuses_bad_tokens_with_an_error_frame_and_close_1000() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    double.seed_user("visitor-1", "Ada", "user");
    let expired = {
        // Issued two minutes ago, expired one minute ago.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({"user_id": "visitor-1", "iat": now - 120, "exp": now - 60}),
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("token")
    };
    let cases = [
        (
            user_token("other-secret", "visitor-1", None).expect("token"),
            5,
            "signature is not valid",
        ),
        (expired, 40, "token is expired"),
        (
            user_token(SECRET, "visitor-2", None).expect("token"),
            5,
            "does not match",
        ),
        (server_token(SECRET).expect("token"), 5, "user token"),
    ];
    for (token, code, says) in cases {
        let mut socket = Socket::connect(&double, "visitor-1", &token).await;
        let error = socket.next().await.expect("an error frame");
        assert_eq!(error["error"]["code"], code, "{error}");
        assert_eq!(error["error"]["StatusCode"], 401, "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(says)),
            "{error}"
        );
        let close = socket.next().await.expect("a close frame");
        assert_eq!(close["close"], 1000, "{close}");
    }
    assert!(double.connected_users().is_empty());

    let plain = reqwest::get(format!("{}/connect?api_key={KEY}", double.base_url()))
        .await
        .expect("sent");
    assert_eq!(plain.status(), 400, "not a websocket upgrade");
    let body: Value = plain.json().await.expect("Stream's error body");
    assert_eq!(body["code"], 4);
}

#[tokio::test]
async fn watchers_get_their_channels_events_and_nobody_elses() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    chat(&double).await;
    let server = Client::server(&double);
    let (status, body) = server
        .query_channel(
            "support-2",
            json!({"created_by_id": "agent", "members": ["agent", "outsider"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let (mut visitor, connection_id, visitor_token) = Socket::open(&double, "visitor-1").await;
    let (mut outsider, outsider_connection, outsider_token) =
        Socket::open(&double, "outsider").await;

    let as_visitor = Client::with_token(&double, visitor_token);
    let watch = json!({"state": true, "watch": true, "presence": false});
    let (status, body) = as_visitor
        .send(
            "POST",
            "/channels/messaging/support-1/query",
            Some(watch.clone()),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (400, Some(4)),
        "watch needs a connection_id: {body}"
    );
    let (status, _) = as_visitor
        .send(
            "POST",
            "/channels/messaging/new-room/query",
            Some(json!({"watch": true, "data": {"members": ["visitor-1"]}})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        double.channels().iter().all(|c| c.id != "new-room"),
        "a watch that cannot happen creates nothing"
    );
    let (status, body) = as_visitor
        .send(
            "POST",
            &format!("/channels/messaging/support-1/query?connection_id={outsider_connection}"),
            Some(watch.clone()),
        )
        .await;
    assert_eq!(status, 400, "someone else's connection: {body}");
    let (status, body) = as_visitor
        .send(
            "POST",
            &format!("/channels/messaging/support-1/query?connection_id={connection_id}"),
            Some(watch.clone()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["watcher_count"], 1);
    let as_outsider = Client::with_token(&double, outsider_token);
    let (status, _) = as_outsider
        .send(
            "POST",
            &format!("/channels/messaging/support-2/query?connection_id={outsider_connection}"),
            Some(watch),
        )
        .await;
    assert_eq!(status, 200);

    let message = double
        .send_message("messaging", "support-1", "agent", "Hello Ada")
        .await
        .expect("sent");
    let event = visitor.expect("message.new").await;
    assert_eq!(event["message"]["id"], message["id"]);
    assert_eq!(event["cid"], "messaging:support-1");
    assert_eq!(event["channel_type"], "messaging");
    assert_eq!(event["channel_id"], "support-1");
    assert_eq!(event["user"]["id"], "agent");
    assert_eq!(event["watcher_count"], 1);
    assert!(event["created_at"].is_string());
    outsider.expect_silence().await;

    let id = message["id"].as_str().expect("id");
    double
        .update_message(id, "Hello again")
        .await
        .expect("updated");
    assert_eq!(
        visitor.expect("message.updated").await["message"]["text"],
        "Hello again"
    );
    double.delete_message(id, false).await.expect("deleted");
    let deleted = visitor.expect("message.deleted").await;
    assert_eq!(deleted["message"]["type"], "deleted");
    assert_eq!(deleted["hard_delete"], false);

    let (status, _) = as_visitor
        .send(
            "POST",
            &format!("/channels/messaging/support-1/stop-watching?connection_id={connection_id}"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201);
    double
        .send_message("messaging", "support-1", "agent", "Anyone there?")
        .await
        .expect("sent");
    visitor.expect_silence().await;
}

/// The least-privilege grants a setup would configure for visitors.
fn visitor_grants() -> Value {
    json!({"grants": {
        "user": [],
        "channel_member": ["read-channel", "create-message", "update-message-owner", "delete-message-owner"],
    }})
}

#[tokio::test]
async fn user_tokens_are_held_to_the_channel_types_grants_and_the_server_is_not() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    chat(&double).await;
    let server = Client::server(&double);
    let (status, body) = server
        .query_channel(
            "support-2",
            json!({"created_by_id": "agent", "members": ["agent", "outsider"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let visitor = Client::with_token(
        &double,
        user_token(SECRET, "visitor-1", None).expect("token"),
    );
    let not_allowed = |(status, body): (u16, Value), action: &str| {
        assert_eq!((status, body["code"].as_i64()), (403, Some(17)), "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("User 'visitor-1' with role 'user' is not allowed to perform action {action} in scope 'messaging'")),
            "{body}"
        );
    };

    // Stream's defaults: only members read; a user creates channels and manages the ones it created.
    not_allowed(
        visitor.query_channel("support-2", json!({})).await,
        "ReadChannel",
    );
    let (status, body) = visitor
        .query_channel("visitor-room", json!({"members": ["visitor-1"]}))
        .await;
    assert_eq!(status, 201, "{body}");
    let add = json!({"add_members": ["outsider"]});
    let (status, body) = visitor
        .send(
            "POST",
            "/channels/messaging/visitor-room",
            Some(add.clone()),
        )
        .await;
    assert_eq!(status, 201, "the owner adds members: {body}");
    not_allowed(
        visitor
            .send("POST", "/channels/messaging/support-1", Some(add.clone()))
            .await,
        "UpdateChannelMembers",
    );

    let (status, body) = server
        .send("PUT", "/channeltypes/messaging", Some(visitor_grants()))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["grants"]["user"], json!([]));
    not_allowed(
        visitor
            .query_channel("visitor-room-2", json!({"members": ["visitor-1"]}))
            .await,
        "CreateChannel",
    );
    not_allowed(
        visitor
            .send(
                "POST",
                "/channels/messaging/visitor-room",
                Some(json!({"add_members": ["agent"]})),
            )
            .await,
        "UpdateChannelMembers",
    );
    not_allowed(
        visitor
            .send("DELETE", "/channels/messaging/visitor-room", None)
            .await,
        "DeleteChannel",
    );
    let (status, body) = visitor.query_channel("support-1", json!({})).await;
    assert_eq!(status, 200, "a member still reads its channel: {body}");
    let capabilities: Vec<&str> = body["channel"]["own_capabilities"]
        .as_array()
        .expect("own_capabilities")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        capabilities,
        [
            "send-message",
            "update-own-message",
            "delete-own-message",
            "read-events",
            "connect-events",
            "typing-events"
        ],
        "what the watch returns follows the grants"
    );
    let (status, body) = visitor
        .send(
            "POST",
            "/channels/messaging/support-1/message",
            Some(json!({"message": {"text": "hi"}})),
        )
        .await;
    assert_eq!(status, 201, "and writes in it: {body}");
    let (status, body) = visitor
        .send(
            "POST",
            "/channels",
            Some(json!({"filter_conditions": {"type": "messaging"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let cids: Vec<&str> = body["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(|c| c["channel"]["cid"].as_str())
        .collect();
    assert_eq!(
        cids,
        ["messaging:support-1", "messaging:visitor-room"],
        "only channels it may read"
    );

    // The server token bypasses every grant.
    let (status, body) = server
        .send("POST", "/channels/messaging/support-1", Some(add))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["members"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn channel_types_replace_only_the_named_roles_grants() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    let server = Client::server(&double);
    let before = double.channel_type_grants("messaging").expect("built in");
    let (status, body) = server
        .send(
            "PUT",
            "/channeltypes/messaging",
            Some(json!({"grants": {"user": ["create-channel"]}, "typing_events": false})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let after = double.channel_type_grants("messaging").expect("built in");
    assert_eq!(after["user"], ["create-channel"]);
    assert_eq!(
        after["channel_member"], before["channel_member"],
        "other roles kept"
    );
    let (status, body) = server.send("GET", "/channeltypes/messaging", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["typing_events"], false);
    assert_eq!(body["read_events"], true, "other settings kept");

    for (bad, why) in [
        (
            json!({"grants": {"user": ["fly-to-the-moon"]}}),
            "unknown permission",
        ),
        (json!({"grants": {"wizard": []}}), "unknown role"),
        (json!({"grants": ["create-channel"]}), "not an object"),
        (json!({"typing_events": "yes"}), "wrong type"),
        (json!({"colour": "blue"}), "not a setting"),
    ] {
        let (status, body) = server
            .send("PUT", "/channeltypes/messaging", Some(bad))
            .await;
        assert_eq!(
            (status, body["code"].as_i64()),
            (400, Some(4)),
            "{why}: {body}"
        );
    }
    assert_eq!(
        double.channel_type_grants("messaging").expect("type")["user"],
        ["create-channel"],
        "a refused PUT changes nothing"
    );
    assert_eq!(
        server
            .send("PUT", "/channeltypes/nope", Some(json!({})))
            .await
            .0,
        404
    );
    let (status, body) = server
        .send(
            "POST",
            "/channeltypes",
            Some(json!({"name": "support", "grants": {"user": []}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["grants"]["user"], json!([]));
    assert!(
        body["grants"]["channel_member"]
            .as_array()
            .is_some_and(|g| !g.is_empty()),
        "Stream's defaults otherwise"
    );
    assert_eq!(
        server
            .send("POST", "/channeltypes", Some(json!({"name": "support"})))
            .await
            .0,
        400,
        "exists"
    );
    let visitor = Client::with_token(
        &double,
        user_token(SECRET, "visitor-1", None).expect("token"),
    );
    assert_eq!(
        visitor
            .send("PUT", "/channeltypes/messaging", Some(json!({})))
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn partial_user_updates_keep_what_they_do_not_name_and_queries_respect_grants() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    let server = Client::server(&double);
    let users = json!({"users": {"agent": {"id": "agent", "name": "Support", "role": "admin", "image": "https://x/a.png", "team": "emea"}}});
    assert_eq!(server.send("POST", "/users", Some(users)).await.0, 201);
    let (status, body) = server
        .send("PATCH", "/users", Some(json!({"users": [{"id": "agent", "set": {"name": "Support team"}, "unset": ["team"]}]})))
        .await;
    assert_eq!(status, 200, "{body}");
    let agent = double.user_json("agent").expect("agent");
    assert_eq!(agent["name"], "Support team");
    assert_eq!(agent["role"], "admin", "role kept");
    assert_eq!(agent["image"], "https://x/a.png", "custom field kept");
    assert!(agent.get("team").is_none(), "unset removes");
    for bad in [
        json!({"users": [{"id": "ghost", "set": {"name": "x"}}]}),
        json!({"users": [{"id": "agent", "set": {"role": "wizard"}}]}),
        json!({"users": [{"id": "agent"}]}),
        json!({"users": [{"id": "agent", "unset": ["role"]}]}),
    ] {
        let (status, body) = server.send("PATCH", "/users", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert_eq!(double.user_json("agent").expect("agent")["role"], "admin");

    client_upsert(&server, &["visitor-1", "visitor-2"]).await;
    let visitor = Client::with_token(
        &double,
        user_token(SECRET, "visitor-1", None).expect("token"),
    );
    let (status, body) = visitor
        .send(
            "PATCH",
            "/users",
            Some(json!({"users": [{"id": "visitor-1", "set": {"role": "admin"}}]})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (403, Some(17)),
        "no self-promotion: {body}"
    );
    let query = |filter: Value| {
        format!(
            "/users?payload={}",
            urlencode(&json!({"filter_conditions": filter}).to_string())
        )
    };
    let (status, body) = visitor
        .send(
            "GET",
            &query(json!({"id": {"$in": ["visitor-2", "agent"]}})),
            None,
        )
        .await;
    assert_eq!(status, 200, "search-user by default: {body}");
    assert_eq!(body["users"].as_array().map(Vec::len), Some(2));
    let (status, body) = server
        .send(
            "PATCH",
            "/app",
            Some(json!({"grants": {"user": ["update-user-owner"]}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = visitor
        .send("GET", &query(json!({"id": "visitor-2"})), None)
        .await;
    assert_eq!((status, body["code"].as_i64()), (403, Some(17)), "{body}");
    let (status, body) = server
        .send("GET", &query(json!({"role": "admin"})), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["users"][0]["id"], "agent");
    let (status, _) = server
        .send("GET", &query(json!({"id": {"$gt": 1}})), None)
        .await;
    assert_eq!(
        status, 400,
        "unsupported operators are refused, not ignored"
    );
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

#[tokio::test]
async fn deleting_users_erases_their_messages_and_conversations_and_tells_the_webhook() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    chat(&double).await;
    let server = Client::server(&double);
    client_upsert(&server, &["visitor-2"]).await;
    let (status, _) = server
        .query_channel(
            "support-2",
            json!({"created_by_id": "agent", "members": ["agent", "visitor-2"]}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = server
        .query_channel(
            "group",
            json!({"created_by_id": "agent", "members": ["agent", "visitor-1", "visitor-2"]}),
        )
        .await;
    assert_eq!(status, 201);
    for (channel, user) in [
        ("support-1", "visitor-1"),
        ("group", "visitor-1"),
        ("support-1", "agent"),
        ("support-2", "visitor-2"),
    ] {
        double
            .send_message("messaging", channel, user, "hello")
            .await
            .expect("sent");
    }
    let (receiver, url) = Receiver::start(&[]).await;
    double.set_webhook_url(Some(url));
    let old_token = user_token(SECRET, "visitor-1", None).expect("token");

    // Deleting is a task: nothing happens until it has run, and `GET /tasks/{id}` says when it has.
    let (status, body) = server
        .send(
            "POST",
            "/users/delete",
            Some(json!({
                "user_ids": ["visitor-1"],
                "user": "hard",
                "messages": "hard",
                "conversations": "hard",
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let task_id = body["task_id"].as_str().expect("task id").to_owned();
    let (_, task) = server.send("GET", &format!("/tasks/{task_id}"), None).await;
    assert_eq!(
        (task["task_id"].as_str(), &task["status"]),
        (Some(task_id.as_str()), &json!("pending"))
    );
    assert!(double.user_deletions().is_empty(), "not applied yet");
    let task = finished(&server, &task_id).await;
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["result"]["deleted_user_ids"], json!(["visitor-1"]));
    assert_eq!(
        double.user_deletions(),
        [sandbox::stream::UserDeletion {
            user_id: "visitor-1".to_owned(),
            user: sandbox::stream::Erasure::Hard,
            messages: Some(sandbox::stream::Erasure::Hard),
            conversations: vec!["messaging:support-1".to_owned()],
        }]
    );
    assert!(double.users().iter().all(|u| u.id != "visitor-1"));
    assert!(
        double.messages("messaging", "support-1").is_empty(),
        "the conversation went with its messages"
    );
    assert!(
        double.messages("messaging", "group").is_empty(),
        "the user's messages elsewhere went too"
    );
    assert_eq!(
        double.messages("messaging", "support-2").len(),
        1,
        "others' untouched"
    );
    assert_eq!(
        double
            .channels()
            .iter()
            .map(|c| c.cid())
            .collect::<Vec<_>>(),
        ["messaging:group", "messaging:support-2"]
    );
    let (status, body) = Client::with_token(&double, old_token)
        .send("POST", "/channels/messaging/group/query", Some(json!({})))
        .await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (401, Some(40)),
        "its tokens stop: {body}"
    );

    double.wait_for_deliveries(2, Duration::from_secs(5)).await;
    let events: Vec<Value> = receiver
        .received()
        .iter()
        .map(|(_, body)| serde_json::from_slice(body).expect("json"))
        .collect();
    let deleted_channel = events
        .iter()
        .find(|e| e["type"] == "channel.deleted")
        .expect("channel.deleted sent");
    assert_eq!(deleted_channel["cid"], "messaging:support-1");
    let deleted_user = events
        .iter()
        .find(|e| e["type"] == "user.deleted")
        .expect("user.deleted sent");
    assert_eq!(deleted_user["user"]["id"], "visitor-1");
    assert_eq!(deleted_user["hard_delete"], true);
    assert_eq!(deleted_user["mark_messages_deleted"], true);

    // Soft: the user stays, marked deleted, its messages too.
    let (status, body) = server
        .send(
            "POST",
            "/users/delete",
            Some(json!({"user_ids": ["visitor-2"], "user": "soft", "messages": "soft"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let task_id = body["task_id"].as_str().expect("task id").to_owned();
    assert_eq!(double.user_deletions().len(), 1, "not applied yet");
    let task = finished(&server, &task_id).await;
    assert_eq!(task["status"], "completed", "{task}");
    let last = double.user_deletions().pop().expect("applied");
    assert_eq!(
        (last.user, last.messages),
        (
            sandbox::stream::Erasure::Soft,
            Some(sandbox::stream::Erasure::Soft)
        )
    );
    assert!(
        double.users().iter().any(|u| u.id == "visitor-2"),
        "soft: the user stays, marked deleted"
    );
    assert_eq!(
        double.messages("messaging", "support-2")[0]["type"],
        "deleted"
    );
    for bad in [
        json!({"user_ids": ["x"]}),
        json!({"user_ids": [], "user": "soft"}),
        json!({"user_ids": ["x"], "user": "gone"}),
        // Hard needs hard messages and conversations, as Stream's document says.
        json!({"user_ids": ["x"], "user": "hard", "messages": "soft", "conversations": "hard"}),
        json!({"user_ids": ["x"], "user": "hard", "messages": "hard"}),
    ] {
        assert_eq!(
            server
                .send("POST", "/users/delete", Some(bad.clone()))
                .await
                .0,
            400,
            "{bad}"
        );
    }

    let (status, body) = server
        .send("DELETE", "/channels/messaging/group?hard_delete=true", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        double.channel_deletions().last(),
        Some(&sandbox::stream::ChannelDeletion {
            cid: "messaging:group".to_owned(),
            hard: true
        })
    );

    // A task that fails says so, and erases nothing; the next one runs.
    double.fail_next_tasks(1);
    let again = json!({"user_ids": ["visitor-2"], "user": "hard", "messages": "hard", "conversations": "hard"});
    let (_, body) = server
        .send("POST", "/users/delete", Some(again.clone()))
        .await;
    let task = finished(&server, body["task_id"].as_str().expect("task id")).await;
    assert_eq!(task["status"], "failed", "{task}");
    assert!(task["error"]["description"].is_string(), "{task}");
    assert!(double.users().iter().any(|u| u.id == "visitor-2"));
    let (_, body) = server.send("POST", "/users/delete", Some(again)).await;
    let task = finished(&server, body["task_id"].as_str().expect("task id")).await;
    assert_eq!(task["status"], "completed", "{task}");
    assert!(double.users().iter().all(|u| u.id != "visitor-2"));

    let (status, body) = server
        .send("DELETE", "/users/visitor-1?hard_delete=true", None)
        .await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (404, Some(16)),
        "DELETE /users/{{id}} is not in Stream's published API: {body}"
    );
    let (status, _) = server.send("GET", "/tasks/no-such-task", None).await;
    assert_eq!(status, 404);
}

/// Polls `GET /tasks/{id}` until the task is no longer pending (at most 2 s).
async fn finished(server: &Client, task_id: &str) -> Value {
    let mut task = Value::Null;
    for _ in 0..100 {
        task = server
            .send("GET", &format!("/tasks/{task_id}"), None)
            .await
            .1;
        if task["status"] != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task
}

/// The browser SDK calls Stream from the page's origin: preflights are answered without credentials, and every
/// answer, refusals included, lets the page read it.
#[tokio::test]
async fn browsers_may_call_it_from_any_origin() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("double");
    let http = reqwest::Client::new();
    let preflight = http
        .request(
            reqwest::Method::OPTIONS,
            format!(
                "{}/channels/messaging/support-1/query?api_key={KEY}",
                double.base_url()
            ),
        )
        .header("origin", "http://127.0.0.1:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,stream-auth-type,x-stream-client",
        )
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status(), StatusCode::OK);
    let headers = preflight.headers();
    assert_eq!(header(headers, "access-control-allow-origin"), "*");
    assert!(header(headers, "access-control-allow-methods").contains("POST"));
    assert_eq!(
        header(headers, "access-control-allow-headers"),
        "authorization,content-type,stream-auth-type,x-stream-client"
    );
    assert!(
        double.calls().is_empty(),
        "a preflight is not an API call: {:?}",
        double.calls()
    );

    for token in [server_token(SECRET).expect("token"), "forged".to_owned()] {
        let response = http
            .post(format!("{}/users?api_key={KEY}", double.base_url()))
            .header("origin", "http://127.0.0.1:3000")
            .header("authorization", token)
            .header("stream-auth-type", "jwt")
            .json(&json!({"users": {}}))
            .send()
            .await
            .expect("request");
        assert_eq!(
            header(response.headers(), "access-control-allow-origin"),
            "*",
            "{}",
            response.status()
        );
    }
}

/// Events leave in the order the changes were made: 4 members sending 25 messages each at once, a watcher sees
/// every message exactly once, in the channel's stored order, with strictly increasing `created_at`.
#[tokio::test]
async fn concurrent_senders_reach_a_watcher_once_each_in_stored_order() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    let server = Client::server(&double);
    let senders = ["s-1", "s-2", "s-3", "s-4"];
    client_upsert(&server, &["agent", "s-1", "s-2", "s-3", "s-4"]).await;
    let (status, body) = server
        .query_channel(
            "busy",
            json!({"created_by_id": "agent", "members": ["agent", "s-1", "s-2", "s-3", "s-4"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (mut watcher, connection_id, token) = Socket::open(&double, "agent").await;
    let (status, _) = Client::with_token(&double, token)
        .send(
            "POST",
            &format!("/channels/messaging/busy/query?connection_id={connection_id}"),
            Some(json!({"watch": true})),
        )
        .await;
    assert_eq!(status, 200);

    let sends = senders.iter().map(|sender| {
        let client = Client::with_token(&double, user_token(SECRET, sender, None).expect("token"));
        async move {
            for i in 0..25 {
                let (status, body) = client
                    .send(
                        "POST",
                        "/channels/messaging/busy/message",
                        Some(json!({"message": {"text": format!("{sender} #{i}")}})),
                    )
                    .await;
                assert_eq!(status, 201, "{body}");
            }
        }
    });
    futures::future::join_all(sends).await;

    let mut seen = Vec::new();
    while seen.len() < 100 {
        let event = watcher.expect("message.new").await;
        seen.push((
            event["message"]["id"].as_str().expect("id").to_owned(),
            event["message"]["created_at"]
                .as_str()
                .expect("time")
                .to_owned(),
        ));
    }
    watcher.expect_silence().await;
    let stored: Vec<String> = double
        .messages("messaging", "busy")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect();
    let ids: Vec<String> = seen.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, stored, "each message once, in the stored order");
    assert!(
        seen.windows(2).all(|w| w[0].1 < w[1].1),
        "created_at strictly increases along the events"
    );
}

#[tokio::test]
async fn typing_events_go_to_watchers_and_never_to_the_webhook() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    chat(&double).await;
    let (_receiver, url) = Receiver::start(&[]).await;
    double.set_webhook_url(Some(url));
    let visitor = Client::with_token(
        &double,
        user_token(SECRET, "visitor-1", None).expect("token"),
    );
    let path = "/channels/messaging/support-1/event";
    let (status, body) = visitor
        .send(
            "POST",
            path,
            Some(json!({"event": {"type": "typing.start"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["event"]["user"]["id"], "visitor-1");
    let (status, _) = visitor
        .send("POST", path, Some(json!({"event": {"type": "my.custom"}})))
        .await;
    assert_eq!(status, 400, "only typing events");
    let outsider = Client::with_token(
        &double,
        user_token(SECRET, "outsider", None).expect("token"),
    );
    let (status, _) = outsider
        .send(
            "POST",
            path,
            Some(json!({"event": {"type": "typing.start"}})),
        )
        .await;
    assert_eq!(status, 403, "only readers of the channel");
    double
        .send_message("messaging", "support-1", "agent", "hi")
        .await
        .expect("sent");
    let deliveries = double.wait_for_deliveries(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let types: Vec<String> = double
        .deliveries()
        .iter()
        .map(|d| d.event_type.clone())
        .collect();
    assert_eq!(types, ["message.new"], "{deliveries:?}");
}
