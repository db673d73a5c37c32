//! `/connect`, the websocket the SDK keeps open: health checks, refused tokens, watchers' events and their order.

use super::*;

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
