//! HubSpot's webhooks and erasure: signatures v3, privacy deletion (every item here, the visitors in Stream),
//! deletion and restore, and what a late webhook or a running flusher may still write (nothing).


use crate::support;
use chat_sync::domain::{
    Author, ChannelId, ChannelRef, ChannelType, ContactId, MessageChange, MessageId, MessageKind,
    Role, Timestamp,
};
use chat_sync::erasure::{PURGE_BACKSTOP, RESTORABLE_FOR};
use chat_sync::ports::{Recorded, Store};
use lambda_http::http::StatusCode;
use sandbox::stream::message_event;
use serde_json::json;
use std::time::Duration;
use crate::support::{
    deliver, hubspot_events, hubspot_request, json_body, message, register_visitor, Item, TestApp,
    HUBSPOT_CLIENT_SECRET,
};

/// Every data item that mentions any of `needles` in its key or any string attribute.
async fn items_mentioning(app: &TestApp, needles: &[&str]) -> Vec<Item> {
    let mut items = app.data_items().await;
    items.retain(|item| {
        let text = format!("{item:?}");
        needles.iter().any(|needle| text.contains(needle))
    });
    items
}

/// Runs the sweeper once: it writes whatever a webhook's flush left queued (on a loaded machine, a webhook's 1 s
/// flush budget can run out before its write).
async fn sweep(app: &TestApp) {
    app.sweeper()
        .handle(json!({"source": "aws.events"}))
        .await
        .expect("sweep");
}

/// Delivers HubSpot events about contacts, signed now, to the handler: its status and JSON body.
async fn from_hubspot(app: &TestApp, events: &[(&str, &str)]) -> (StatusCode, serde_json::Value) {
    let response = app.hubspot_webhooks.handle(hubspot_events(events)).await;
    (response.status(), json_body(&response))
}

/// A visitor with a conversation of two lines, written to HubSpot: (contact, visitor, channel id).
async fn chatting_visitor(app: &TestApp, email: &str) -> (String, String, String) {
    let (contact, visitor, channel) = register_visitor(app, "Ada", email).await;
    for (i, text) in [
        "My card number is 4111 1111 1111 1111",
        "and I live at 12 Privet Drive",
    ]
    .iter()
    .enumerate()
    {
        let event = message_event(
            "message.new",
            "messaging",
            &channel,
            &message(
                &format!("m-{channel}-{i}"),
                &visitor,
                "Ada",
                text,
                &format!("2026-11-24T10:00:0{i}Z"),
            ),
        );
        let (status, body, _, _) = deliver(app, &event).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    sweep(app).await;
    assert!(app.transcript(&contact).contains("Privet Drive"));
    (contact, visitor, channel)
}

#[tokio::test]
async fn signature_v3_valid_tampered_old_future_and_wrong_secret() {
    let app = TestApp::start().await;
    let now = Timestamp::now().unix_millis();
    let body = br#"[{"eventId":1,"subscriptionType":"contact.propertyChange","objectId":51,"occurredAt":1795687205000}]"#;

    let ok = app
        .hubspot_webhooks
        .handle(hubspot_request(body, HUBSPOT_CLIENT_SECRET, now))
        .await;
    assert_eq!(ok.status(), StatusCode::OK, "{}", json_body(&ok));
    assert_eq!(json_body(&ok)["ignored"], 1);

    // Signed for one body, another one sent.
    let mut tampered = hubspot_request(body, HUBSPOT_CLIENT_SECRET, now);
    *tampered.body_mut() =
        lambda_http::Body::Text(String::from_utf8_lossy(body).replace("51", "52"));
    let cases = [
        ("tampered body", tampered, "invalid_signature"),
        (
            "wrong secret",
            hubspot_request(body, "another-apps-secret", now),
            "invalid_signature",
        ),
        (
            "six minutes old",
            hubspot_request(body, HUBSPOT_CLIENT_SECRET, now - 6 * 60_000),
            "stale_request",
        ),
        (
            "six minutes ahead",
            hubspot_request(body, HUBSPOT_CLIENT_SECRET, now + 6 * 60_000),
            "stale_request",
        ),
    ];
    for (case, request, code) in cases {
        let response = app.hubspot_webhooks.handle(request).await;
        let json = json_body(&response);
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{case}: {json}"
        );
        assert_eq!(json["code"], code, "{case}");
        assert!(json["error"].is_string(), "{case}");
    }
    // Another URL than the one HubSpot signed (a request replayed against another path).
    let mut moved = hubspot_request(body, HUBSPOT_CLIENT_SECRET, now);
    *moved.uri_mut() = "https://api.example.com/hubspot/other"
        .parse()
        .expect("uri");
    assert_eq!(
        app.hubspot_webhooks.handle(moved).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let mut unsigned = hubspot_request(body, HUBSPOT_CLIENT_SECRET, now);
    unsigned.headers_mut().remove("x-hubspot-signature-v3");
    let response = app.hubspot_webhooks.handle(unsigned).await;
    assert_eq!(json_body(&response)["code"], "missing_signature");
}

#[tokio::test]
async fn a_malformed_body_is_refused_whole_and_changes_nothing() {
    let app = TestApp::start().await;
    let (contact, _, _) = chatting_visitor(&app, "whole@example.com").await;
    let before = app.item_count().await;
    let now = Timestamp::now().unix_millis();
    let erase = format!(
        r#"{{"subscriptionType":"contact.privacyDeletion","objectId":{contact},"occurredAt":{now}}}"#
    );
    let bodies = [
        ("not JSON", "[{".to_owned(), "invalid_json"),
        ("an object, not an array", erase.clone(), "invalid_event"),
        (
            "one bad event after a good one",
            format!(
                r#"[{erase},{{"subscriptionType":"contact.deletion","objectId":"abc","occurredAt":1}}]"#
            ),
            "invalid_event",
        ),
    ];
    for (case, body, code) in bodies {
        let response = app
            .hubspot_webhooks
            .handle(hubspot_request(body.as_bytes(), HUBSPOT_CLIENT_SECRET, now))
            .await;
        let json = json_body(&response);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}: {json}");
        assert_eq!(json["code"], code, "{case}");
    }
    assert_eq!(app.item_count().await, before, "nothing was erased");
    assert_eq!(
        app.stream.call_count("delete_users"),
        0,
        "nobody deleted in Stream"
    );
}

#[tokio::test]
async fn privacy_deletion_erases_every_item_and_the_visitors_in_stream() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = chatting_visitor(&app, "erase.me@example.com").await;
    // A second registration of the same person: a second visitor and conversation of the same contact.
    let (again, visitor2, channel2) = chatting_visitor(&app, "erase.me@example.com").await;
    assert_eq!(again, contact);
    let (other, other_visitor, _) = chatting_visitor(&app, "stays@example.com").await;
    let needles = [
        contact.as_str(),
        "erase.me@example.com",
        visitor.as_str(),
        visitor2.as_str(),
        channel.as_str(),
        channel2.as_str(),
    ];
    assert!(items_mentioning(&app, &needles).await.len() > 8);
    let others_before = items_mentioning(&app, &[other.as_str(), other_visitor.as_str()])
        .await
        .len();

    app.hubspot.delete_contact(&contact);
    for delivery in 0..2 {
        // HubSpot retries a delivery it thinks failed: the second is harmless.
        let (status, body) = from_hubspot(&app, &[("contact.privacyDeletion", &contact)]).await;
        assert_eq!(status, StatusCode::OK, "delivery {delivery}: {body}");
        let left = items_mentioning(&app, &needles).await;
        assert!(left.is_empty(), "delivery {delivery} left {left:#?}");
    }
    assert_eq!(
        items_mentioning(&app, &[other.as_str(), other_visitor.as_str()])
            .await
            .len(),
        others_before,
        "another contact's items are untouched"
    );
    // Both visitors hard-deleted in Stream with their messages and conversation channels, through Stream's task:
    // `POST /users/delete`, then `GET /tasks/{id}` until it completed (a second delivery finds nobody to erase).
    let calls = app.stream.calls();
    let deletions: Vec<serde_json::Value> = calls
        .iter()
        .filter(|c| c.route == "delete_users")
        .map(|c| serde_json::from_str(&c.body).expect("JSON body"))
        .collect();
    let erased: Vec<&str> = deletions
        .iter()
        .flat_map(|d| d["user_ids"].as_array().into_iter().flatten())
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert!(
        erased.contains(&visitor.as_str()) && erased.contains(&visitor2.as_str()),
        "{deletions:#?}"
    );
    assert!(!erased.contains(&other_visitor.as_str()));
    for deletion in &deletions {
        for mode in ["user", "messages", "conversations"] {
            assert_eq!(deletion[mode], "hard", "{mode} in {deletion}");
        }
    }
    assert!(
        calls
            .iter()
            .any(|c| c.route == "get_task" && c.status == 200),
        "the task was followed"
    );
    let applied = app.stream.user_deletions();
    for user in [&visitor, &visitor2] {
        let deletion = applied
            .iter()
            .find(|d| d.user_id == user.as_str())
            .unwrap_or_else(|| panic!("{user} not deleted: {applied:#?}"));
        assert_eq!(
            (deletion.user, deletion.messages),
            (
                sandbox::stream::Erasure::Hard,
                Some(sandbox::stream::Erasure::Hard)
            )
        );
    }
    // The double applied them: the users, their messages and their one-to-one channels are gone from Stream.
    let users: Vec<String> = app.stream.users().into_iter().map(|u| u.id).collect();
    assert!(
        !users.contains(&visitor) && !users.contains(&visitor2),
        "{users:?}"
    );
    assert!(users.contains(&other_visitor));
    for erased in [&channel, &channel2] {
        assert!(app.stream.messages("messaging", erased).is_empty());
        assert!(app.stream.channels().iter().all(|c| c.id != **erased));
    }
}

#[tokio::test]
async fn webhooks_for_an_erased_channel_write_nothing() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = chatting_visitor(&app, "late@example.com").await;
    let cid = ChannelRef::new(
        ChannelType::parse("messaging").expect("valid"),
        ChannelId::parse(&channel).expect("valid"),
    );
    // A webhook that read the mapping just before the erasure, and records after it.
    let mapping = app
        .store
        .channel(&cid)
        .await
        .expect("read")
        .expect("mapped");
    let (status, body) = from_hubspot(&app, &[("contact.privacyDeletion", &contact)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let needles = [contact.as_str(), visitor.as_str(), channel.as_str()];
    assert!(items_mentioning(&app, &needles).await.is_empty());
    let count = app.item_count().await;

    let late = MessageChange {
        kind: MessageKind::New,
        channel: cid.clone(),
        message_id: MessageId::parse("m-late").expect("valid"),
        author: Author {
            id: visitor.clone(),
            name: "Ada".into(),
            role: "user".into(),
        },
        text: "one more thing".into(),
        attachments: vec![],
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
        edited: false,
    };
    let recorded = app
        .store
        .record_change(&mapping.contact_id, &late, Role::Visitor, false)
        .await
        .expect("answered");
    assert_eq!(recorded, Recorded::Unchanged);
    app.store
        .erase_author(
            &mapping,
            &chat_sync::domain::UserId::parse("v", &visitor).expect("valid"),
            true,
        )
        .await
        .expect("answered");
    app.store
        .clear_conversation(&mapping, chat_sync::domain::transcript::Cleared::Deleted)
        .await
        .expect("answered");
    assert_eq!(
        app.item_count().await,
        count,
        "nothing written for an erased contact"
    );

    // And every Stream event for the channel, from its webhook, is ignored.
    for (kind, text) in [("message.new", "hello?"), ("message.updated", "edited")] {
        let event = message_event(
            kind,
            "messaging",
            &channel,
            &message("m-after", &visitor, "Ada", text, "2026-11-24T11:00:00Z"),
        );
        let (status, body, _, _) = deliver(&app, &event).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "ignored", "{body}");
    }
    let event = json!({"type": "channel.deleted", "cid": format!("messaging:{channel}")});
    let (status, body, _, _) = deliver(&app, &event).await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::OK, json!("ignored"))
    );
    assert_eq!(
        app.item_count().await,
        count,
        "nothing written for an erased contact"
    );
    assert!(items_mentioning(&app, &needles).await.is_empty());
}

#[tokio::test]
async fn a_flusher_holding_the_contact_during_the_erasure_writes_nothing_back() {
    let app = TestApp::start_with(chat_sync::config::FlushSettings {
        targets: chat_sync::config::Targets::BOTH,
        ..support::test_flush_settings()
    })
    .await;
    let (contact, visitor, channel) = chatting_visitor(&app, "racing@example.com").await;
    // HubSpot is slow: the flusher holds the contact's lease, mid-write, while the erasure runs.
    app.hubspot.faults().set_latency(Duration::from_millis(600));
    let event = message_event(
        "message.new",
        "messaging",
        &channel,
        &message(
            "m-race",
            &visitor,
            "Ada",
            "are you there?",
            "2026-11-24T10:01:00Z",
        ),
    );
    let (response, flush) = app.webhook.receive(support::signed_webhook(&event)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let flush = tokio::spawn(flush.expect("a flush to run").run());
    let lease_taken = async {
        loop {
            let leases = items_mentioning(&app, &["LEASE"]).await;
            if !leases.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), lease_taken)
        .await
        .expect("the flusher took the contact's lease");
    // HubSpot has deleted the contact: the flusher's write meets a 404 and looks for it by e-mail meanwhile.
    app.hubspot.delete_contact(&contact);
    let (status, body) = from_hubspot(&app, &[("contact.privacyDeletion", &contact)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    flush.await.expect("flush task");
    // The flusher's lease, kept while it writes, is released by it; nothing else of the contact came back.
    let left = items_mentioning(
        &app,
        &[contact.as_str(), visitor.as_str(), channel.as_str()],
    )
    .await;
    assert!(left.is_empty(), "the flusher wrote back {left:#?}");
}

/// `expires_at` of every item of the contact (its lease aside).
async fn expiry_of_items(app: &TestApp, needles: &[&str]) -> Vec<Option<i64>> {
    items_mentioning(app, needles)
        .await
        .iter()
        .filter(|item| {
            item.get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                != Some("LEASE")
        })
        .map(|item| {
            item.get("expires_at")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
        })
        .collect()
}

#[tokio::test]
async fn deletion_stops_syncing_and_purges_in_90_days_restore_resumes() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = chatting_visitor(&app, "restorable@example.com").await;
    let needles = [contact.as_str(), visitor.as_str(), channel.as_str()];
    let before = Timestamp::now().unix_seconds();
    let (_, body) = from_hubspot(&app, &[("contact.deletion", &contact)]).await;
    assert_eq!(body["deleted"], 1, "{body}");
    // Every item expires a week after HubSpot would purge the contact (90 days after the deletion): the backstop
    // of the sweeper's purge, which comes at the 90 days themselves.
    let expiries = expiry_of_items(&app, &needles).await;
    assert!(expiries.len() >= 5, "{expiries:?}");
    let ninety_days = (RESTORABLE_FOR + PURGE_BACKSTOP).as_secs() as i64;
    for expiry in &expiries {
        let expiry = expiry.expect("every item has a TTL");
        assert!(
            (before - 2 + ninety_days..=before + 1 + ninety_days).contains(&expiry),
            "{expiry} is not 90 days after {before}"
        );
    }
    let state = app
        .store
        .sync_state(&ContactId::parse(&contact).expect("id"))
        .await
        .expect("read");
    assert!(state
        .parked
        .is_some_and(|why| why.contains("deleted in HubSpot")));

    // Syncing stops at once: a new message is not kept, nothing goes to HubSpot, no 404 loop.
    app.hubspot.clear_calls();
    let event = message_event(
        "message.new",
        "messaging",
        &channel,
        &message(
            "m-while-deleted",
            &visitor,
            "Ada",
            "hello?",
            "2026-11-24T10:02:00Z",
        ),
    );
    let (_, body, _, _) = deliver(&app, &event).await;
    assert_eq!(body["status"], "ignored", "{body}");
    sweep(&app).await;
    assert_eq!(app.hubspot.calls().len(), 0, "{:#?}", app.hubspot.calls());

    // Restored: the TTL goes, the contact is synced again.
    let (_, body) = from_hubspot(&app, &[("contact.restore", &contact)]).await;
    assert_eq!(body["restored"], 1, "{body}");
    assert!(expiry_of_items(&app, &needles)
        .await
        .iter()
        .all(Option::is_none));
    let event = message_event(
        "message.new",
        "messaging",
        &channel,
        &message(
            "m-restored",
            &visitor,
            "Ada",
            "back again",
            "2026-11-24T10:03:00Z",
        ),
    );
    let (_, body, _, _) = deliver(&app, &event).await;
    assert_eq!(body["status"], "recorded", "{body}");
    sweep(&app).await;
    assert!(app.transcript(&contact).contains("back again"));
}

#[tokio::test]
async fn privacy_deletion_and_deletion_in_either_order_erase_everything() {
    let app = TestApp::start().await;
    let (first, _, _) = chatting_visitor(&app, "order.one@example.com").await;
    let (second, _, _) = chatting_visitor(&app, "order.two@example.com").await;
    // One delivery, deletion first; then the other order across two deliveries.
    let (status, body) = from_hubspot(
        &app,
        &[
            ("contact.deletion", &first),
            ("contact.privacyDeletion", &first),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for kind in [
        "contact.privacyDeletion",
        "contact.deletion",
        "contact.restore",
    ] {
        let (status, body) = from_hubspot(&app, &[(kind, &second)]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert!(items_mentioning(&app, &[first.as_str()]).await.is_empty());
    assert!(items_mentioning(&app, &[second.as_str()]).await.is_empty());
}

#[tokio::test]
async fn every_hubspot_event_file_does_what_its_name_says() {
    let app = TestApp::start().await;
    // The files' contact (objectId 1001) with a conversation, as registration stores it.
    let channel = "chat-0f8e5b9c2d7a4e6f9b1c3d5e7f9a1b2c";
    app.store
        .save_channel(&chat_sync::ports::ChannelMapping::registered(
            ChannelRef::new(
                ChannelType::parse("messaging").expect("valid"),
                ChannelId::parse(channel).expect("valid"),
            ),
            ContactId::parse("1001").expect("valid"),
            chat_sync::domain::Email::parse("ada.lovelace@example.com").expect("valid"),
            chat_sync::domain::UserId::parse("v", "visitor-5a0c9e3f7b1d4f2a8c6e0b9d7f5a3c1e")
                .expect("valid"),
            "Ada Lovelace".into(),
            chat_sync::domain::identity::Identity::Unverified,
            Timestamp::parse("t", "2026-11-24T10:00:00Z").expect("valid"),
        ))
        .await
        .expect("mapping stored");
    // The files were signed at 2026-11-24T10:00:05Z (`sign-events`); replayed a minute later.
    let at = Timestamp::parse("t", "2026-11-24T10:01:05Z").expect("valid");
    let handle = |name: &'static str| {
        let app = &app;
        async move {
            let response = app
                .hubspot_webhooks
                .handle_at(support::event(name), at)
                .await;
            (response.status(), json_body(&response))
        }
    };
    let (status, body) = handle("hubspot-webhook-bad-signature.json").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_signature"))
    );
    let (status, body) = handle("hubspot-webhook-deletion.json").await;
    assert_eq!(
        (status, body["deleted"].clone()),
        (StatusCode::OK, json!(1)),
        "{body}"
    );
    let (status, body) = handle("hubspot-webhook-privacy-deletion.json").await;
    assert_eq!(
        (status, body["erased"].clone()),
        (StatusCode::OK, json!(1)),
        "{body}"
    );
    assert!(items_mentioning(&app, &["1001", channel]).await.is_empty());
    // Replayed later than five minutes after signing: refused.
    let late = Timestamp::parse("t", "2026-11-24T10:06:06Z").expect("valid");
    let response = app
        .hubspot_webhooks
        .handle_at(support::event("hubspot-webhook-deletion.json"), late)
        .await;
    assert_eq!(json_body(&response)["code"], "stale_request");
}

#[tokio::test]
async fn a_privacy_deletion_stream_fails_is_answered_503_and_its_retry_finishes() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = chatting_visitor(&app, "retry.me@example.com").await;
    // Stream is down for longer than the client's retries: nothing is erased here yet, so HubSpot's redelivery
    // still finds the visitors to erase.
    app.stream.faults().fail_next("delete_users", 10, 503);
    let (status, body) = from_hubspot(&app, &[("contact.privacyDeletion", &contact)]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let needles = [contact.as_str(), visitor.as_str(), channel.as_str()];
    assert!(!items_mentioning(&app, &needles).await.is_empty());
    app.stream.faults().clear();
    let (status, body) = from_hubspot(&app, &[("contact.privacyDeletion", &contact)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(items_mentioning(&app, &needles).await.is_empty());
    assert!(app.stream.users().iter().all(|u| u.id != visitor));
}

#[tokio::test]
async fn a_privacy_deletion_whose_stream_task_fails_is_answered_503_and_its_retry_finishes() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = chatting_visitor(&app, "task.fails@example.com").await;
    // Stream accepts the deletion but its task fails: nothing is erased here, HubSpot redelivers.
    app.stream.fail_next_tasks(1);
    let (status, body) = from_hubspot(&app, &[("contact.privacyDeletion", &contact)]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let needles = [contact.as_str(), visitor.as_str(), channel.as_str()];
    assert!(!items_mentioning(&app, &needles).await.is_empty());
    assert!(app.stream.users().iter().any(|u| u.id == visitor));
    let (status, body) = from_hubspot(&app, &[("contact.privacyDeletion", &contact)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(items_mentioning(&app, &needles).await.is_empty());
    assert!(app.stream.users().iter().all(|u| u.id != visitor));
    assert_eq!(
        app.stream.call_count("delete_users"),
        2,
        "one task per delivery"
    );
}

#[tokio::test]
async fn a_deletion_delivered_after_its_restore_changes_nothing() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = chatting_visitor(&app, "late.retry@example.com").await;
    let needles = [contact.as_str(), visitor.as_str(), channel.as_str()];
    let now = Timestamp::now().unix_millis();
    // Deleted at t, restored at t + 1 s; HubSpot's retry of the deletion arrives after the restore.
    let deliver_at = |kind: &'static str, at: i64| {
        let app = &app;
        let contact = contact.clone();
        async move {
            let response = app
                .hubspot_webhooks
                .handle(support::hubspot_events_at(&[(kind, &contact, at)]))
                .await;
            json_body(&response)
        }
    };
    assert_eq!(
        deliver_at("contact.restore", now - 1_000).await["restored"],
        1
    );
    let stale = deliver_at("contact.deletion", now - 2_000).await;
    assert_eq!(
        (stale["deleted"].clone(), stale["ignored"].clone()),
        (json!(0), json!(1)),
        "{stale}"
    );
    assert!(expiry_of_items(&app, &needles)
        .await
        .iter()
        .all(Option::is_none));
    let state = app
        .store
        .sync_state(&ContactId::parse(&contact).expect("id"))
        .await
        .expect("read");
    assert_eq!(state.parked, None);
    // A later deletion still applies.
    assert_eq!(deliver_at("contact.deletion", now).await["deleted"], 1);
    assert!(expiry_of_items(&app, &needles)
        .await
        .iter()
        .all(Option::is_some));
}

#[tokio::test]
async fn erasing_a_merged_record_erases_the_contacts_merged_into_it() {
    let app = TestApp::start().await;
    let (ada, visitor, channel) = chatting_visitor(&app, "ada.merged@example.com").await;
    let (bo, _, _) = chatting_visitor(&app, "bo.merged@example.com").await;
    // HubSpot merges the two into a record with a new id; the next write of Ada's finds it by e-mail.
    let merged = app.hubspot.merge_contacts(&ada, &bo).expect("merged");
    let event = message_event(
        "message.new",
        "messaging",
        &channel,
        &message(
            "m-merged",
            &visitor,
            "Ada",
            "after the merge",
            "2026-11-24T10:05:00Z",
        ),
    );
    deliver(&app, &event).await;
    sweep(&app).await;
    assert!(app.transcript(&merged).contains("after the merge"));
    // A privacy deletion of the surviving record reaches the conversations written to it.
    let (status, body) = from_hubspot(&app, &[("contact.privacyDeletion", &merged)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let left = items_mentioning(
        &app,
        &[
            ada.as_str(),
            visitor.as_str(),
            channel.as_str(),
            merged.as_str(),
        ],
    )
    .await;
    assert!(left.is_empty(), "{left:#?}");
}

/// HubSpot events given whole (for the fields `hubspot_events` does not set), signed now.
async fn from_hubspot_raw(
    app: &TestApp,
    events: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let body = serde_json::to_vec(&events).expect("serialisable");
    let now = Timestamp::now().unix_millis();
    let response = app
        .hubspot_webhooks
        .handle(hubspot_request(&body, HUBSPOT_CLIENT_SECRET, now))
        .await;
    (response.status(), json_body(&response))
}

fn id(contact: &str) -> u64 {
    contact.parse().expect("numeric id")
}

#[tokio::test]
async fn merges_hubspot_announces_then_a_privacy_deletion_leave_nothing_of_any_of_them() {
    let app = TestApp::start().await;
    let (ada, ada_visitor, ada_channel) = chatting_visitor(&app, "ada.announced@example.com").await;
    let (bo, bo_visitor, bo_channel) = chatting_visitor(&app, "bo.announced@example.com").await;
    // Carol registered and never wrote: her contact has no sync record here, only her conversation.
    let (carol, carol_visitor, carol_channel) =
        register_visitor(&app, "Carol", "carol.announced@example.com").await;
    let now = Timestamp::now().unix_millis();

    // Ada and Bo merged into a record with a new id, announced in the developer platform's generic shape.
    let first = app.hubspot.merge_contacts(&ada, &bo).expect("merged");
    let (status, body) = from_hubspot_raw(
        &app,
        json!([{
            "eventId": 1, "subscriptionId": 7, "portalId": 62515, "appId": 1160452, "occurredAt": now - 2_000,
            "subscriptionType": "object.merge", "objectTypeId": "0-1", "attemptNumber": 0,
            "objectId": id(&first), "primaryObjectId": id(&ada), "mergedObjectIds": [id(&bo)],
            "newObjectId": id(&first), "changeSource": "CRM_UI",
        }]),
    )
    .await;
    assert_eq!(
        (status, &body["merged"]),
        (StatusCode::OK, &json!(2)),
        "{body}"
    );
    // That record and Carol's merged again, announced in the legacy shape: the chain is followed.
    let second = app.hubspot.merge_contacts(&first, &carol).expect("merged");
    let (status, body) = from_hubspot_raw(
        &app,
        json!([{
            "eventId": 2, "subscriptionId": 8, "portalId": 62515, "appId": 1160452, "occurredAt": now - 1_000,
            "subscriptionType": "contact.merge", "attemptNumber": 0, "objectId": id(&second),
            "primaryObjectId": id(&first), "mergedObjectIds": [id(&carol)], "newObjectId": id(&second),
            "changeSource": "CRM_UI",
        }]),
    )
    .await;
    assert_eq!(
        (status, &body["merged"]),
        (StatusCode::OK, &json!(2)),
        "{body}"
    );

    // No write has met an old id yet: the announcement alone lets the survivor's privacy deletion reach all three.
    let (status, body) = from_hubspot(&app, &[("contact.privacyDeletion", &second)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let needles = [
        ada.as_str(),
        bo.as_str(),
        carol.as_str(),
        first.as_str(),
        second.as_str(),
        ada_visitor.as_str(),
        bo_visitor.as_str(),
        carol_visitor.as_str(),
        ada_channel.as_str(),
        bo_channel.as_str(),
        carol_channel.as_str(),
    ];
    let left = items_mentioning(&app, &needles).await;
    assert!(left.is_empty(), "{left:#?}");
    let users: Vec<String> = app.stream.users().into_iter().map(|u| u.id).collect();
    for visitor in [&ada_visitor, &bo_visitor, &carol_visitor] {
        assert!(
            !users.contains(visitor),
            "{visitor} is still in Stream: {users:?}"
        );
    }
    for channel in [&ada_channel, &bo_channel, &carol_channel] {
        assert!(app.stream.messages("messaging", channel).is_empty());
        assert!(app.stream.channels().iter().all(|c| c.id != **channel));
    }
}

#[tokio::test]
async fn generic_events_about_other_object_types_change_nothing() {
    let app = TestApp::start().await;
    let (contact, visitor, _) = chatting_visitor(&app, "kept@example.com").await;
    let before = items_mentioning(&app, &[contact.as_str(), visitor.as_str()])
        .await
        .len();
    let now = Timestamp::now().unix_millis();
    // A company (0-2) whose id happens to be the contact's, deleted and merged: not a contact.
    let (status, body) = from_hubspot_raw(
        &app,
        json!([
            {"eventId": 1, "subscriptionId": 7, "portalId": 62515, "appId": 1160452, "occurredAt": now - 2_000,
             "subscriptionType": "object.deletion", "objectTypeId": "0-2", "attemptNumber": 0,
             "objectId": id(&contact), "changeSource": "CRM_UI"},
            {"eventId": 2, "subscriptionId": 8, "portalId": 62515, "appId": 1160452, "occurredAt": now - 1_000,
             "subscriptionType": "object.merge", "objectTypeId": "0-2", "attemptNumber": 0,
             "objectId": 1, "primaryObjectId": 1, "mergedObjectIds": [id(&contact)], "newObjectId": 1,
             "changeSource": "CRM_UI"},
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["ignored"], &body["deleted"], &body["merged"]),
        (&json!(2), &json!(0), &json!(0))
    );
    assert_eq!(
        items_mentioning(&app, &[contact.as_str(), visitor.as_str()])
            .await
            .len(),
        before
    );
    // The same deletion of the contact (0-1), generic shape: followed like `contact.deletion`.
    let (status, body) = from_hubspot_raw(
        &app,
        json!([{"eventId": 3, "subscriptionId": 9, "portalId": 62515, "appId": 1160452, "occurredAt": now,
                "subscriptionType": "object.deletion", "objectTypeId": "0-1", "attemptNumber": 0,
                "objectId": id(&contact), "changeSource": "CRM_UI"}]),
    )
    .await;
    assert_eq!(
        (status, &body["deleted"]),
        (StatusCode::OK, &json!(1)),
        "{body}"
    );
}

#[tokio::test]
async fn a_contact_deleted_in_hubspot_is_purged_here_and_in_stream_when_hubspot_purges_it() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = chatting_visitor(&app, "purged@example.com").await;
    let (kept, kept_visitor, _) = chatting_visitor(&app, "deleted.lately@example.com").await;
    let needles = [contact.as_str(), visitor.as_str(), channel.as_str()];
    let now = Timestamp::now().unix_millis();
    let day = 86_400_000;
    // One deleted 91 days ago (HubSpot has purged it by now), one deleted yesterday (still restorable).
    let response = app
        .hubspot_webhooks
        .handle(support::hubspot_events_at(&[
            ("contact.deletion", &contact, now - 91 * day),
            ("contact.deletion", &kept, now - day),
        ]))
        .await;
    assert_eq!(json_body(&response)["deleted"], 2);
    let report = app.sweep().await;
    assert_eq!(report.purged, 1, "{report:?}");
    // Nothing of it is left here, nor in Stream: its visitor, messages and channel are gone.
    let left = items_mentioning(&app, &needles).await;
    assert!(left.is_empty(), "{left:#?}");
    let users: Vec<String> = app.stream.users().into_iter().map(|u| u.id).collect();
    assert!(!users.contains(&visitor), "{users:?}");
    assert!(app.stream.messages("messaging", &channel).is_empty());
    assert!(app.stream.channels().iter().all(|c| c.id != channel));
    // The one still restorable is untouched, and a second sweep purges nothing.
    assert!(!items_mentioning(&app, &[kept.as_str()]).await.is_empty());
    assert!(users.contains(&kept_visitor));
    let report = app.sweep().await;
    assert_eq!(report.purged, 0, "{report:?}");
}

#[tokio::test]
async fn privacy_deletion_deletes_a_channel_a_second_agent_joined() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = chatting_visitor(&app, "two.agents@example.com").await;
    // A second agent joined the conversation: it is no one-to-one channel that deleting the visitor takes along.
    app.stream
        .seed_user("second-agent", "Bob (Support)", "user");
    let server = sandbox::stream::server_token(support::STREAM_SECRET).expect("token");
    let added = reqwest::Client::new()
        .post(format!(
            "{}/channels/messaging/{channel}",
            app.stream.base_url()
        ))
        .query(&[("api_key", support::STREAM_KEY)])
        .header("authorization", server)
        .header("stream-auth-type", "jwt")
        .json(&json!({ "add_members": ["second-agent"] }))
        .send()
        .await
        .expect("the Stream double answers");
    assert!(added.status().is_success(), "{:?}", added.text().await);
    let (status, body) = from_hubspot(&app, &[("contact.privacyDeletion", &contact)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The conversation is gone from Stream, its messages with it, the agent's replies included.
    assert!(app.stream.channels().iter().all(|c| c.id != channel));
    assert!(app.stream.messages("messaging", &channel).is_empty());
    let users: Vec<String> = app.stream.users().into_iter().map(|u| u.id).collect();
    assert!(!users.contains(&visitor), "{users:?}");
}
