//! Messages and the webhooks they cause: signed like Stream's, retried on failure with the same id.

use super::*;

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
    let events = receiver.events();
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
