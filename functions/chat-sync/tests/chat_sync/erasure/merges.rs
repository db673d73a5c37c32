//! Merged contacts, events about other object types, purges HubSpot announces, a channel a second agent joined.

use super::*;

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
