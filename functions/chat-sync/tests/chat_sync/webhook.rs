//! The webhook: signatures, event files, idempotent recording, and the transcript in HubSpot.

use crate::support::{
    event, json_body, message, register_visitor, signed_webhook, TestApp, AGENT_ID, STREAM_SECRET,
};
use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::domain::{
    ChannelId, ChannelRef, ChannelType, Email, Identity, PersonName, Timestamp, UserId,
};
use chat_sync::ports::{ChannelMapping, Channels, ContactDetails, Crm};
use lambda_http::http::StatusCode;
use lambda_http::Body;
use sandbox::stream::message_event;
use serde_json::json;
use std::io::Write;
use std::sync::Arc;

/// The channel, contact and visitor the files in `events/` refer to.
const EVENTS_CHANNEL: &str = "chat-0f8e5b9c2d7a4e6f9b1c3d5e7f9a1b2c";
const EVENTS_VISITOR: &str = "visitor-5a0c9e3f7b1d4f2a8c6e0b9d7f5a3c1e";

/// Maps the events' channel to a HubSpot contact; returns the contact id.
async fn map_events_channel(app: &TestApp) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let details = ContactDetails {
        email: Email::parse("ada.lovelace@example.com").expect("valid"),
        first_name: PersonName::parse("firstName", "Ada").expect("valid"),
        last_name: PersonName::parse("lastName", "Lovelace").expect("valid"),
    };
    let contact = app
        .crm
        .link_contact(&details, Identity::Unverified, deadline)
        .await
        .expect("contact linked")
        .id;
    app.store
        .save_channel(
            &ChannelMapping::registered(
                ChannelRef::new(
                    ChannelType::parse("messaging").expect("valid"),
                    ChannelId::parse(EVENTS_CHANNEL).expect("valid"),
                ),
                contact.clone(),
                UserId::parse("visitor", EVENTS_VISITOR).expect("valid"),
                "Ada Lovelace".into(),
                Identity::Unverified,
                Timestamp::parse("t", "2026-11-24T10:00:00Z").expect("valid"),
            ),
            &Email::parse("ada.lovelace@example.com").expect("valid"),
        )
        .await
        .expect("mapping stored");
    contact.as_str().to_owned()
}

#[tokio::test]
async fn every_event_file_does_what_its_name_says() {
    let app = TestApp::start().await;
    let contact = map_events_channel(&app).await;

    let response = app.webhook.handle(event("webhook-message-new.json")).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        json_body(&response)
    );
    assert_eq!(json_body(&response)["status"], "recorded");
    let transcript = app.transcript(&contact);
    assert!(
        transcript.contains("Ada Lovelace (visitor): Hello! I have a question about my order."),
        "{transcript}"
    );
    assert!(transcript.starts_with(&format!(
        "=== Conversation {EVENTS_CHANNEL} started 2026-11-24 10:00:00 UTC · e-mail as typed, not verified ==="
    )));

    let response = app.webhook.handle(event("webhook-message-new.json")).await;
    assert_eq!(
        json_body(&response)["status"],
        "duplicate",
        "redelivery is a no-op"
    );

    let response = app
        .webhook
        .handle(event("webhook-message-updated.json"))
        .await;
    assert_eq!(json_body(&response)["status"], "recorded");
    let transcript = app.transcript(&contact);
    assert!(
        transcript.contains("Hello! I have a question about order #1234. (edited)"),
        "{transcript}"
    );

    let response = app
        .webhook
        .handle(event("webhook-message-deleted.json"))
        .await;
    assert_eq!(json_body(&response)["status"], "recorded");
    let transcript = app.transcript(&contact);
    assert!(
        transcript.contains("Ada Lovelace (visitor): (message deleted)"),
        "{transcript}"
    );
    assert!(
        !transcript.contains("order #1234"),
        "deleted text is erased: {transcript}"
    );
    assert_eq!(transcript.lines().count(), 2, "{transcript}");

    // Undeleted in Stream: the message shows again, as it was edited, in the same place.
    let response = app
        .webhook
        .handle(event("webhook-message-undeleted.json"))
        .await;
    assert_eq!(json_body(&response)["status"], "recorded");
    let transcript = app.transcript(&contact);
    assert!(
        transcript.contains(
            "Ada Lovelace (visitor): Hello! I have a question about order #1234. (edited)"
        ),
        "{transcript}"
    );
    assert!(!transcript.contains("(message deleted)"), "{transcript}");
    assert_eq!(transcript.lines().count(), 2, "{transcript}");
    // The deletion delivered again (Stream retries) is older than the undeletion: nothing changes.
    let response = app
        .webhook
        .handle(event("webhook-message-deleted.json"))
        .await;
    assert_eq!(json_body(&response)["status"], "duplicate");

    let items_before = app.item_count().await;
    for (file, status, expected) in [
        ("webhook-unknown-event.json", StatusCode::OK, "ignored"),
        ("webhook-unknown-channel.json", StatusCode::OK, "ignored"),
        (
            "webhook-bad-signature.json",
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
    ] {
        let response = app.webhook.handle(event(file)).await;
        assert_eq!(response.status(), status, "{file}");
        let body = json_body(&response);
        assert!(
            body["status"] == expected || body["code"] == expected,
            "{file}: {body}"
        );
    }
    assert_eq!(
        app.item_count().await,
        items_before,
        "ignored and rejected events store nothing"
    );
}

#[tokio::test]
async fn bad_signatures_are_401_and_store_nothing() {
    let app = TestApp::start().await;
    let (_, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let items = app.item_count().await;
    let body = message_event(
        "message.new",
        "messaging",
        &channel,
        &message("m-1", &visitor, "Ada", "hi", "2026-11-24T10:00:01.000Z"),
    );
    let bytes = serde_json::to_vec(&body).expect("json");

    // Tampered body: signature of the original, body changed by one byte.
    let mut tampered = signed_webhook(&body);
    let mut changed = bytes.clone();
    if let Some(last) = changed.iter_mut().rev().find(|b| **b == b'i') {
        *last = b'I';
    }
    *tampered.body_mut() = Body::Binary(changed);
    // Missing header.
    let mut missing = signed_webhook(&body);
    missing.headers_mut().remove("x-signature");
    // Signed with the wrong secret.
    let mut wrong = signed_webhook(&body);
    let other = sandbox::stream::sign_webhook("not-the-secret", &bytes);
    wrong
        .headers_mut()
        .insert("x-signature", other.parse().expect("header"));
    // Upper-case hex of the right MAC is not what Stream sends, but it is the same MAC: accepted by hex decoding.
    for (request, code) in [
        (tampered, "invalid_signature"),
        (missing, "missing_signature"),
        (wrong, "invalid_signature"),
    ] {
        let response = app.webhook.handle(request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(json_body(&response)["code"], code);
    }
    assert_eq!(app.item_count().await, items, "nothing stored");
    assert_eq!(app.hubspot.call_count("batch_update"), 0);
}

#[tokio::test]
async fn gzip_bodies_are_verified_after_decompression() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let body = message_event(
        "message.new",
        "messaging",
        &channel,
        &message(
            "m-gz",
            &visitor,
            "Ada",
            "compressed hello",
            "2026-11-24T10:00:01.000Z",
        ),
    );
    let mut request = signed_webhook(&body); // signature over the uncompressed bytes
    let plain = serde_json::to_vec(&body).expect("json");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&plain).expect("gzip");
    *request.body_mut() = Body::Binary(encoder.finish().expect("gzip"));
    request
        .headers_mut()
        .insert("content-encoding", "gzip".parse().expect("header"));
    let response = app.webhook.handle(request).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        json_body(&response)
    );
    assert!(app.transcript(&contact).contains("compressed hello"));
}

#[tokio::test]
async fn malformed_and_oversized_events_are_4xx() {
    let app = TestApp::start().await;
    let sign = |bytes: Vec<u8>| {
        let mut request = signed_webhook(&json!({}));
        let signature = sandbox::stream::sign_webhook(STREAM_SECRET, &bytes);
        request
            .headers_mut()
            .insert("x-signature", signature.parse().expect("header"));
        *request.body_mut() = Body::Binary(bytes);
        request
    };
    let response = app.webhook.handle(sign(b"{not json".to_vec())).await;
    assert_eq!(
        (response.status(), json_body(&response)["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_json"))
    );
    let response = app
        .webhook
        .handle(sign(br#"{"type":"message.new","cid":"messaging:x","message":{"id":"m","created_at":"yesterday","user":{"id":"u"}}}"#.to_vec()))
        .await;
    assert_eq!(
        (response.status(), json_body(&response)["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_event"))
    );
    let response = app.webhook.handle(sign(vec![b' '; 1024 * 1024 + 1])).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let mut get = signed_webhook(&json!({}));
    *get.method_mut() = lambda_http::http::Method::GET;
    assert_eq!(
        app.webhook.handle(get).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(app.item_count().await, 0);
}

#[tokio::test]
async fn ephemeral_error_and_system_messages_are_not_transcript_lines() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    for (i, kind) in ["ephemeral", "error", "system"].iter().enumerate() {
        let mut m = message(
            &format!("m-{kind}"),
            &visitor,
            "Ada",
            "not a line",
            "2026-11-24T10:00:01.000Z",
        );
        m["type"] = json!(kind);
        let response = app
            .webhook
            .handle(signed_webhook(&message_event(
                "message.new",
                "messaging",
                &channel,
                &m,
            )))
            .await;
        assert_eq!(json_body(&response)["status"], "ignored", "case {i}");
    }
    assert_eq!(app.transcript(&contact), "");
    assert_eq!(app.hubspot.call_count("batch_update"), 0);
}

#[tokio::test]
async fn agent_lines_attachments_and_out_of_order_updates_converge() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let send = |kind: &'static str, m: serde_json::Value| {
        let webhook = app.webhook.clone();
        let channel = channel.clone();
        async move {
            let response = webhook
                .handle(signed_webhook(&message_event(
                    kind,
                    "messaging",
                    &channel,
                    &m,
                )))
                .await;
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{}",
                json_body(&response)
            );
        }
    };
    let mut reply = message(
        "m-2",
        "support-agent",
        "Grace (Support)",
        "Here is the invoice",
        "2026-11-24T10:00:02.000Z",
    );
    reply["attachments"] =
        json!([{ "type": "file", "asset_url": "https://cdn.example.com/invoice.pdf" }]);
    // The update arrives before its message.new, and an older update after the newer one.
    let mut newer = message(
        "m-1",
        &visitor,
        "Ada",
        "final text",
        "2026-11-24T10:00:01.000Z",
    );
    newer["updated_at"] = json!("2026-11-24T10:05:00.000Z");
    let mut older = message(
        "m-1",
        &visitor,
        "Ada",
        "intermediate text",
        "2026-11-24T10:00:01.000Z",
    );
    older["updated_at"] = json!("2026-11-24T10:03:00.000Z");
    send("message.updated", newer).await;
    send(
        "message.new",
        message(
            "m-1",
            &visitor,
            "Ada",
            "first text",
            "2026-11-24T10:00:01.000Z",
        ),
    )
    .await;
    send("message.updated", older).await;
    send("message.new", reply).await;
    // A delete before its message.new, then an update of the deleted message after it: the line stays deleted.
    let mut deleted = message("m-3", &visitor, "Ada", "oops", "2026-11-24T10:00:03.000Z");
    deleted["deleted_at"] = json!("2026-11-24T10:06:00.000Z");
    deleted["type"] = json!("deleted");
    send("message.deleted", deleted).await;
    send(
        "message.new",
        message("m-3", &visitor, "Ada", "oops", "2026-11-24T10:00:03.000Z"),
    )
    .await;
    // Stream sends an update of a message that is still deleted with `type: deleted`: it is no undeletion.
    let mut late_edit = message(
        "m-3",
        &visitor,
        "Ada",
        "resurrected?",
        "2026-11-24T10:00:03.000Z",
    );
    late_edit["updated_at"] = json!("2026-11-24T10:07:00.000Z");
    late_edit["deleted_at"] = json!("2026-11-24T10:06:00.000Z");
    late_edit["type"] = json!("deleted");
    send("message.updated", late_edit).await;

    let transcript = app.transcript(&contact);
    let lines: Vec<&str> = transcript.lines().skip(1).collect();
    assert_eq!(
        lines,
        vec![
            "[2026-11-24 10:00:01 UTC] Ada Tester (visitor): final text (edited)",
            "[2026-11-24 10:00:02 UTC] Grace (Support) (agent): Here is the invoice [attachment: https://cdn.example.com/invoice.pdf]",
            "[2026-11-24 10:00:03 UTC] Ada Tester (visitor): (message deleted)",
        ],
        "{transcript}"
    );
}

#[tokio::test]
async fn storage_failure_is_a_5xx_so_stream_retries() {
    let app = TestApp::start().await;
    let (_, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    // Same DynamoDB, but a table that does not exist: every storage call fails.
    let webhook = app.webhook_on(Arc::new(DynamoStore::new(
        app.dynamodb.clone(),
        "no-such-table",
    )));
    let body = message_event(
        "message.new",
        "messaging",
        &channel,
        &message("m-1", &visitor, "Ada", "hello", "2026-11-24T10:00:01.000Z"),
    );
    let response = webhook.handle(signed_webhook(&body)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_body(&response)["code"], "storage_unavailable");
    // Stream's retry against the healthy deployment records it.
    let response = app.webhook.handle(signed_webhook(&body)).await;
    assert_eq!(json_body(&response)["status"], "recorded");
}

#[tokio::test]
async fn a_stalled_dynamodb_gets_a_5xx_within_the_ack_budget() {
    use chat_sync::handlers::webhook::ACK_BUDGET;
    let app = TestApp::start().await;
    let (_, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    // A DynamoDB that accepts connections and never answers: without a budget the delivery would hang past
    // Stream's 6 s timeout.
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let endpoint = format!("http://{}", stalled.local_addr().expect("address"));
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = stalled.accept().await {
            open.push(socket);
        }
    });
    let webhook = app.webhook_on(Arc::new(DynamoStore::new(
        chat_sync::app::local_dynamodb(&endpoint).await,
        "chat",
    )));
    let body = message_event(
        "message.new",
        "messaging",
        &channel,
        &message("m-1", &visitor, "Ada", "hello", "2026-11-24T10:00:01.000Z"),
    );
    let started = std::time::Instant::now();
    let (response, flush) = tokio::time::timeout(
        ACK_BUDGET + std::time::Duration::from_secs(2),
        webhook.receive(signed_webhook(&body)),
    )
    .await
    .expect("the webhook answers even when DynamoDB does not");
    let elapsed = started.elapsed();
    hold.abort();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_body(&response)["code"], "storage_unavailable");
    assert!(flush.is_none(), "nothing stored, nothing to flush");
    assert!(
        elapsed >= ACK_BUDGET && elapsed < ACK_BUDGET + std::time::Duration::from_millis(500),
        "answered after {elapsed:?}, budget {ACK_BUDGET:?}"
    );
    // Stream's retry against a healthy DynamoDB records it.
    let response = app.webhook.handle(signed_webhook(&body)).await;
    assert_eq!(json_body(&response)["status"], "recorded");
}

/// Stream redelivers a message whose first delivery was recorded but whose Lambda died before its flush: the
/// redelivery flushes, because a change waits. Once it is written, a further redelivery has nothing to flush.
#[tokio::test]
async fn a_redelivery_flushes_only_while_a_change_waits() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) =
        register_visitor(&app, "Ada", "redelivered@example.com").await;
    let event = message_event(
        "message.new",
        "messaging",
        &channel,
        &message(
            "r-1",
            &visitor,
            "Ada",
            "hello again",
            "2026-11-24T10:00:01.000Z",
        ),
    );
    let (response, flush) = app.webhook.receive(signed_webhook(&event)).await;
    assert_eq!(json_body(&response)["status"], "recorded");
    drop(flush.expect("a recorded change is flushed"));
    assert_eq!(
        app.transcript(&contact),
        "",
        "the first delivery's flush never ran"
    );

    let (response, flush) = app.webhook.receive(signed_webhook(&event)).await;
    assert_eq!(json_body(&response)["status"], "duplicate");
    flush
        .expect("a change waits: the redelivery flushes")
        .run()
        .await;
    assert!(app.transcript(&contact).contains("hello again"));

    let (response, flush) = app.webhook.receive(signed_webhook(&event)).await;
    assert_eq!(json_body(&response)["status"], "duplicate");
    assert!(flush.is_none(), "written already: nothing to flush");
}

#[tokio::test]
async fn base64_encoded_function_url_bodies_are_decoded_before_verification() {
    use base64::Engine;
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let body = serde_json::to_vec(&message_event(
        "message.new",
        "messaging",
        &channel,
        &message(
            "m-b64",
            &visitor,
            "Ada",
            "base64 hello",
            "2026-11-24T10:00:01.000Z",
        ),
    ))
    .expect("json");
    // The Function URL event format, as Lambda delivers a binary body.
    let mut event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/webhook-message-new.json"
        ))
        .expect("event file"),
    )
    .expect("JSON");
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(&body));
    event["isBase64Encoded"] = json!(true);
    event["headers"]["x-signature"] = json!(sandbox::stream::sign_webhook(STREAM_SECRET, &body));
    let request = lambda_http::request::from_str(&event.to_string()).expect("Lambda event");
    let response = app.webhook.handle(request).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        json_body(&response)
    );
    assert!(app.transcript(&contact).contains("base64 hello"));
}

#[tokio::test]
async fn the_newest_edit_wins_whatever_its_text_and_roles_come_from_configuration() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let send = |kind: &'static str, m: serde_json::Value, extra: serde_json::Value| {
        let webhook = app.webhook.clone();
        let mut event = message_event(kind, "messaging", &channel, &m);
        if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
            event.extend(extra.clone());
        }
        async move {
            let response = webhook.handle(signed_webhook(&event)).await;
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{}",
                json_body(&response)
            );
        }
    };
    let at = |id: &str, text: &str, updated: &str| {
        let mut m = message(id, &visitor, "Ada", text, "2026-11-24T10:00:01.000Z");
        m["updated_at"] = json!(updated);
        m
    };
    // "Hi" (t0), edited back to "Hi" (t2), and the edit to "Hi!" (t1) arriving last: the final text is "Hi".
    send(
        "message.new",
        at("m-1", "Hi", "2026-11-24T10:00:01.000Z"),
        json!({}),
    )
    .await;
    send(
        "message.updated",
        at("m-1", "Hi", "2026-11-24T10:00:30.000Z"),
        json!({}),
    )
    .await;
    send(
        "message.updated",
        at("m-1", "Hi!", "2026-11-24T10:00:20.000Z"),
        json!({}),
    )
    .await;
    // An edit that only adds an attachment applies.
    let mut photo = message(
        "m-2",
        &visitor,
        "Ada",
        "see photo",
        "2026-11-24T10:00:02.000Z",
    );
    send("message.new", photo.clone(), json!({})).await;
    photo["updated_at"] = json!("2026-11-24T10:00:40.000Z");
    photo["attachments"] =
        json!([{ "type": "image", "image_url": "https://cdn.example.com/p.png" }]);
    send("message.updated", photo, json!({})).await;
    // Deleted for one user only: everyone else still sees it.
    let mine = message(
        "m-3",
        &visitor,
        "Ada",
        "still here",
        "2026-11-24T10:00:03.000Z",
    );
    send("message.new", mine.clone(), json!({})).await;
    send("message.deleted", mine, json!({ "deleted_for_me": true })).await;
    // Hard-deleted: gone from Stream, so gone from the transcript (even if its message.new comes after).
    let gone = message("m-4", &visitor, "Ada", "secret", "2026-11-24T10:00:04.000Z");
    send(
        "message.deleted",
        gone.clone(),
        json!({ "hard_delete": true }),
    )
    .await;
    send("message.new", gone, json!({})).await;
    // Someone who is neither the visitor nor a configured agent keeps their Stream role.
    let mut moderator = message(
        "m-5",
        "mod-7",
        "Max",
        "moderated",
        "2026-11-24T10:00:05.000Z",
    );
    moderator["user"]["role"] = json!("moderator");
    send("message.new", moderator, json!({})).await;

    let transcript = app.transcript(&contact);
    let lines: Vec<&str> = transcript.lines().skip(1).collect();
    assert_eq!(
        lines,
        vec![
            "[2026-11-24 10:00:01 UTC] Ada Tester (visitor): Hi (edited)",
            "[2026-11-24 10:00:02 UTC] Ada Tester (visitor): see photo [attachment: https://cdn.example.com/p.png] (edited)",
            "[2026-11-24 10:00:03 UTC] Ada Tester (visitor): still here",
            "[2026-11-24 10:00:05 UTC] Max (moderator): moderated",
        ],
        "{transcript}"
    );
}

#[tokio::test]
async fn gzip_is_recognised_by_its_magic_bytes_when_a_proxy_dropped_the_header() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let body = message_event(
        "message.new",
        "messaging",
        &channel,
        &message(
            "m-gz",
            &visitor,
            "Ada",
            "no header",
            "2026-11-24T10:00:01.000Z",
        ),
    );
    let mut request = signed_webhook(&body);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(&serde_json::to_vec(&body).expect("json"))
        .expect("gzip");
    *request.body_mut() = Body::Binary(encoder.finish().expect("gzip"));
    let response = app.webhook.handle(request).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        json_body(&response)
    );
    assert!(app.transcript(&contact).contains("no header"));
}

/// A signed event of any type for the channel.
async fn deliver_event(app: &TestApp, event: serde_json::Value) -> serde_json::Value {
    let response = app.webhook.handle(signed_webhook(&event)).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        json_body(&response)
    );
    json_body(&response)
}

#[tokio::test]
async fn truncation_and_deletion_erase_what_stream_erased_in_any_order() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let say = |id: &str, text: &str, second: u32| {
        message_event(
            "message.new",
            "messaging",
            &channel,
            &message(
                id,
                &visitor,
                "Ada",
                text,
                &format!("2026-11-24T10:00:{second:02}.000Z"),
            ),
        )
    };
    deliver_event(&app, say("m1", "old secret", 1)).await;
    deliver_event(&app, say("m2", "older secret", 2)).await;
    let truncated = json!({
        "type": "channel.truncated", "cid": format!("messaging:{channel}"),
        "channel": { "truncated_at": "2026-11-24T10:00:05.000Z" },
        "created_at": "2026-11-24T10:00:05.000Z",
    });
    assert_eq!(
        deliver_event(&app, truncated.clone()).await["status"],
        "recorded"
    );
    assert_eq!(deliver_event(&app, truncated).await["status"], "duplicate");
    // A message from before the truncation arriving late stores nothing; a newer one shows.
    deliver_event(&app, say("m3", "late old secret", 3)).await;
    deliver_event(&app, say("m6", "after the truncation", 6)).await;
    let transcript = app.transcript(&contact);
    assert!(!transcript.contains("secret"), "{transcript}");
    assert!(transcript.contains("after the truncation"), "{transcript}");
    assert!(
        transcript.contains("(messages before 2026-11-24 10:00:05 UTC removed in chat)"),
        "{transcript}"
    );
    // Nothing of the erased text is kept here either.
    let scan = app
        .dynamodb
        .scan()
        .table_name(app.store.table())
        .send()
        .await
        .expect("scan");
    assert!(
        !format!("{:?}", scan.items()).contains("secret"),
        "erased from DynamoDB"
    );

    // The channel deleted: the conversation leaves the transcript.
    let deleted = json!({ "type": "channel.deleted", "cid": format!("messaging:{channel}"), "created_at": "2026-11-24T10:01:00.000Z" });
    deliver_event(&app, deleted).await;
    deliver_event(&app, say("m7", "too late", 7)).await;
    assert_eq!(app.transcript(&contact), "");
}

#[tokio::test]
async fn a_visitors_erased_messages_are_erased_here() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let say = |id: &str, user: &str, text: &str, second: u32| {
        message_event(
            "message.new",
            "messaging",
            &channel,
            &message(
                id,
                user,
                "Ada",
                text,
                &format!("2026-11-24T10:00:{second:02}.000Z"),
            ),
        )
    };
    deliver_event(&app, say("m1", &visitor, "my address is 1 Main St", 1)).await;
    deliver_event(&app, say("m2", AGENT_ID, "thanks, noted", 2)).await;
    // Soft: the visitor's lines read "message deleted".
    let soft =
        json!({ "type": "user.messages.deleted", "user": { "id": visitor }, "hard_delete": false });
    assert_eq!(deliver_event(&app, soft).await["status"], "recorded");
    let transcript = app.transcript(&contact);
    assert!(!transcript.contains("1 Main St"), "{transcript}");
    assert!(
        transcript.contains("Ada Tester (visitor): (message deleted)"),
        "{transcript}"
    );
    assert!(
        transcript.contains("thanks, noted"),
        "the agent's line stays"
    );
    // Hard (user.deleted with its messages): the lines go.
    let hard = json!({ "type": "user.deleted", "user": { "id": visitor }, "hard_delete": true, "mark_messages_deleted": true });
    deliver_event(&app, hard).await;
    let transcript = app.transcript(&contact);
    assert!(!transcript.contains("(visitor)"), "{transcript}");
    assert!(transcript.contains("thanks, noted"));
    // Someone who is not a registered visitor: nothing to do here.
    let agent =
        json!({ "type": "user.messages.deleted", "user": { "id": AGENT_ID }, "hard_delete": true });
    assert_eq!(deliver_event(&app, agent).await["status"], "ignored");
}

#[tokio::test]
async fn a_hard_deleted_visitor_takes_its_lines_and_its_conversations_along() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "gone@example.com").await;
    for (id, user, text, second) in [
        ("h1", visitor.as_str(), "my phone is 555-0100", 1),
        ("h2", AGENT_ID, "thanks, we will call", 2),
    ] {
        let event = message_event(
            "message.new",
            "messaging",
            &channel,
            &message(
                id,
                user,
                "Ada",
                text,
                &format!("2026-11-24T10:00:{second:02}.000Z"),
            ),
        );
        deliver_event(&app, event).await;
    }
    // Stream's hard delete of a user removes its messages even without `mark_messages_deleted`.
    let hard = json!({ "type": "user.deleted", "user": { "id": visitor }, "hard_delete": true });
    assert_eq!(deliver_event(&app, hard).await["status"], "recorded");
    let transcript = app.transcript(&contact);
    assert!(!transcript.contains("555-0100"), "{transcript}");
    assert!(transcript.contains("thanks, we will call"), "{transcript}");
    // With `delete_conversation_channels`, the conversation itself is gone: it leaves the property.
    let channels = json!({ "type": "user.deleted", "user": { "id": visitor }, "hard_delete": true,
        "delete_conversation_channels": true });
    assert_eq!(deliver_event(&app, channels).await["status"], "recorded");
    let transcript = app.transcript(&contact);
    assert!(!transcript.contains("thanks, we will call"), "{transcript}");
    // A soft delete of the user alone (no messages, no channels): nothing to erase.
    let soft = json!({ "type": "user.deleted", "user": { "id": visitor } });
    assert_eq!(deliver_event(&app, soft).await["status"], "ignored");
}

/// Counts the requests that read a channel's mapping (a `GetItem` of a `CHANNEL#` key), before they are sent, and
/// the answers to any `GetItem` that carried an `email` attribute.
#[derive(Debug, Clone, Default)]
struct MappingReads(
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicUsize>,
);

impl aws_sdk_dynamodb::config::Intercept for MappingReads {
    fn name(&self) -> &'static str {
        "mapping-reads"
    }

    fn read_before_execution(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<
            '_,
        >,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let mapping = context
            .input()
            .downcast_ref::<aws_sdk_dynamodb::operation::get_item::GetItemInput>()
            .and_then(|get| get.key()?.get("pk")?.as_s().ok().cloned())
            .is_some_and(|pk| pk.starts_with("CHANNEL#"));
        if mapping {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef<
            '_,
        >,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let email = context
            .output_or_error()
            .ok()
            .and_then(|output| {
                output.downcast_ref::<aws_sdk_dynamodb::operation::get_item::GetItemOutput>()
            })
            .and_then(|get| get.item())
            .is_some_and(|item| item.contains_key("email"));
        if email {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_warm_webhook_reads_each_channels_mapping_once() {
    let app = TestApp::start().await;
    let (ada, visitor, first) = register_visitor(&app, "Ada", "warm.copy@example.com").await;
    let (_, other, second) = register_visitor(&app, "Bo", "warm.other@example.com").await;
    // A webhook like the app's, on the webhook's role, whose mapping reads are counted.
    let reads = MappingReads::default();
    let client = app
        .dynamodb
        .config()
        .to_builder()
        .interceptor(reads.clone())
        .build();
    let client = crate::support::roles::RoleGuard::new(
        crate::support::Lambda::Webhook,
        app.store.table(),
        Default::default(),
    )
    .guard(&aws_sdk_dynamodb::Client::from_conf(client));
    let webhook = app.webhook_on(Arc::new(DynamoStore::new(client, app.store.table())));
    let mut counted = Vec::new();
    for (i, (channel, user)) in [
        (&first, &visitor),
        (&first, &visitor),
        (&second, &other),
        (&first, &visitor),
        (&second, &other),
    ]
    .into_iter()
    .enumerate()
    {
        let event = crate::support::new_message(channel, user, &format!("m-warm-{i}"), "hi", i);
        let (response, _flush) = webhook.receive(signed_webhook(&event)).await;
        assert_eq!(json_body(&response)["status"], "recorded");
        counted.push(reads.0.load(std::sync::atomic::Ordering::SeqCst));
    }
    // Each channel's first delivery reads its mapping; every later one uses the copy.
    assert_eq!(counted, [1, 1, 2, 2, 2]);
    // And none of them read the visitor's e-mail, which the registration stored beside the mapping: no change needs
    // it, and a copy lives for minutes.
    assert_eq!(reads.1.load(std::sync::atomic::Ordering::SeqCst), 0);
    let stored = app
        .store
        .contact_email(&chat_sync::domain::ContactId::parse(&ada).expect("valid"))
        .await
        .expect("read");
    assert_eq!(
        stored.as_ref().map(|e| e.as_str()),
        Some("warm.copy@example.com")
    );
}
