//! Deletion and restore: syncing stops, the purge after 90 days, either order with a privacy deletion, Stream
//! failing (503 and a retry that finishes), a deletion delivered after its restore.

use super::*;

/// `expires_at` of every item of the contact.
async fn expiry_of_items(app: &TestApp, needles: &[&str]) -> Vec<Option<i64>> {
    items_mentioning(app, needles)
        .await
        .iter()
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
        .save_channel(
            &chat_sync::ports::ChannelMapping::registered(
                ChannelRef::new(
                    ChannelType::parse("messaging").expect("valid"),
                    ChannelId::parse(channel).expect("valid"),
                ),
                ContactId::parse("1001").expect("valid"),
                chat_sync::domain::UserId::parse("v", "visitor-5a0c9e3f7b1d4f2a8c6e0b9d7f5a3c1e")
                    .expect("valid"),
                "Ada Lovelace".into(),
                chat_sync::domain::identity::Identity::Unverified,
                Timestamp::parse("t", "2026-11-24T10:00:00Z").expect("valid"),
            ),
            &chat_sync::domain::Email::parse("ada.lovelace@example.com").expect("valid"),
        )
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
