//! HubSpot's signature v3, refused bodies, and a privacy deletion: every item here and the visitors in Stream, with
//! nothing written back by a late webhook or a running flusher.

use super::*;
use aws_sdk_dynamodb::types::AttributeValue;
use chat_sync::domain::Cleared;
use chat_sync::ports::{ChannelMapping, LeaseOwner, Leases};

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
    let (contact, visitor, channel, mapping) =
        erased_behind_a_webhook(&app, "late@example.com").await;
    let needles = [contact.as_str(), visitor.as_str(), channel.as_str()];
    assert!(items_mentioning(&app, &needles).await.is_empty());
    let count = app.item_count().await;

    let late = visitor_message(&mapping, &visitor, "m-late", "one more thing");
    let recorded = app
        .store
        .record_change(&mapping, &late, Role::Visitor)
        .await
        .expect("answered");
    assert_eq!(recorded, Recorded::Refused);
    app.store
        .erase_author(
            &mapping,
            &chat_sync::domain::UserId::parse("v", &visitor).expect("valid"),
            true,
        )
        .await
        .expect("answered");
    app.store
        .clear_conversation(&mapping, Cleared::Deleted)
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
            let leased = items_mentioning(&app, &[contact.as_str()])
                .await
                .iter()
                .any(|item| item.contains_key("lease_owner"));
            if leased {
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
    // The erasure waited for the flusher to let go of the lease (on the sync record) before deleting the record.
    assert!(
        items_mentioning(&app, &[contact.as_str()]).await.is_empty(),
        "the erasure answered before the contact was gone"
    );
    flush.await.expect("flush task");
    // Nothing of the contact came back.
    let left = items_mentioning(
        &app,
        &[contact.as_str(), visitor.as_str(), channel.as_str()],
    )
    .await;
    assert!(left.is_empty(), "the flusher wrote back {left:#?}");
}

#[tokio::test]
async fn an_erasure_meeting_a_live_lease_answers_503_and_its_retry_finishes() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = chatting_visitor(&app, "held.lease@example.com").await;
    let id = ContactId::parse(&contact).expect("valid");
    let mapping = mapping_of(&app, &channel).await;
    // A flusher holds the contact for longer than HubSpot waits for an answer (its write may still land: until the
    // lease ends, the erasure must not delete the record the lease is on).
    let holder = app.hold_lease(&id, Duration::from_secs(120)).await;
    let (status, body) = from_hubspot(&app, &[("contact.privacyDeletion", &contact)]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // What could go went: the channel is no longer mapped, so nothing more is recorded for it. The sync record
    // stays, marked: nobody takes a new lease on it.
    let mapping_left = items_mentioning(&app, &[channel.as_str()])
        .await
        .iter()
        .any(|item| {
            item.get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some("CHANNEL")
        });
    assert!(!mapping_left, "the mapping outlived the failed erasure");
    let record = items_mentioning(&app, &[contact.as_str()]).await;
    assert!(
        record.iter().any(|item| item.contains_key("erasing")),
        "the record is marked: {record:#?}"
    );
    // A webhook that read the mapping before it went records nothing either: the sync record gates the
    // conversation (its changes no longer check the mapping), and it is being erased.
    let late = visitor_message(
        &mapping,
        &visitor,
        "m-while-erasing",
        "written while erasing",
    );
    assert_eq!(record_for(&app, &mapping, &late).await, Recorded::Refused);
    let left = items_mentioning(&app, &["written while erasing"]).await;
    assert!(left.is_empty(), "recorded while erasing: {left:#?}");
    let other = LeaseOwner::random();
    assert!(
        app.store
            .acquire_lease(&id, &other, Duration::from_secs(15))
            .await
            .expect("answered")
            .is_none(),
        "a lease was taken on a record being erased"
    );
    // The holder lets go; HubSpot's redelivery finishes the erasure.
    app.store
        .release_lease(&id, &holder)
        .await
        .expect("released");
    let (status, body) = from_hubspot(&app, &[("contact.privacyDeletion", &contact)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let needles = [contact.as_str(), visitor.as_str(), channel.as_str()];
    let left = items_mentioning(&app, &needles).await;
    assert!(left.is_empty(), "left after the retry: {left:#?}");
}

#[tokio::test]
async fn changes_racing_the_erasure_leave_nothing_behind() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = chatting_visitor(&app, "racing-changes@example.com").await;
    // Webhooks that read the mapping before the erasure, and record while it runs and after it: each change checks
    // in its transaction that the mapping still exists, and the erasure deletes the mappings first, then the sync
    // record (with the lease on it), then reads the partition again.
    let mapping = mapping_of(&app, &channel).await;
    let racing = racing_deliveries(
        &app,
        &mapping,
        &visitor,
        "m-race",
        "are you still there?",
        None,
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    let (mut status, mut body) = from_hubspot(&app, &[("contact.privacyDeletion", &contact)]).await;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // The racing writes kept the erasure from finishing within its budget (a loaded machine): it answers "retry
        // later", and HubSpot's retry finishes it, as for a live lease.
        (status, body) = from_hubspot(&app, &[("contact.privacyDeletion", &contact)]).await;
    }
    assert_eq!(status, StatusCode::OK, "{body}");
    let applied = recorded(racing).await;
    let needles = [contact.as_str(), visitor.as_str(), channel.as_str()];
    let left = items_mentioning(&app, &needles).await;
    assert!(
        left.is_empty(),
        "{} item(s) written after the erasure: {left:#?}",
        left.len()
    );
    // The race happened: changes landed before the erasure and were refused after it.
    assert_raced(applied);
}

#[tokio::test]
async fn late_deliveries_racing_a_truncation_keep_nothing_it_erased() {
    let app = TestApp::start().await;
    let (_, visitor, channel) = chatting_visitor(&app, "racing-truncation@example.com").await;
    // Webhooks that read the mapping before the truncation (so they do not know of it), delivering messages it
    // erases while it runs: a change landing after the truncation read the conversation's messages would stay,
    // unless its commit checks the truncation on the mapping.
    let mapping = mapping_of(&app, &channel).await;
    let until = Timestamp::parse("until", "2026-11-24T11:00:00.000Z").expect("valid");
    let sent = Timestamp::parse("sent", "2026-11-24T10:30:00.000Z").expect("valid");
    let racing = racing_deliveries(
        &app,
        &mapping,
        &visitor,
        "m-trunc",
        "a late secret",
        Some(sent),
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    truncate(&app, &mapping, until).await;
    let applied = recorded(racing).await;
    let left = items_mentioning(&app, &["a late secret"]).await;
    assert!(
        left.is_empty(),
        "{} message(s) the truncation erased kept their text: {left:#?}",
        left.len()
    );
    // The race happened: changes landed before the truncation (and were erased by it) and were refused after it.
    assert_raced(applied);
}

#[tokio::test]
async fn a_conversation_cleared_before_its_record_mirrored_clearings_stays_gated_on_its_mapping() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = chatting_visitor(&app, "cleared.before@example.com").await;
    // A mapping saved before records had epochs: its changes are gated on the record only once it lists them.
    let mapping = before_epochs(&app, mapping_of(&app, &channel).await).await;
    let cid = mapping.channel.cid();

    // A truncation, on a record from before records mirrored clearings: the mapping has it, the record neither
    // the truncation nor the conversation in `gates`.
    let until = Timestamp::parse("until", "2026-11-24T11:00:00.000Z").expect("valid");
    truncate(&app, &mapping, until).await;
    app.dynamodb
        .update_item()
        .table_name(app.store.table())
        .set_key(Some(support::sync_record_key(&contact)))
        .update_expression("DELETE gates :cid REMOVE #until")
        .expression_attribute_names("#until", format!("cleared_until:{cid}"))
        .expression_attribute_values(":cid", AttributeValue::Ss(vec![cid.clone()]))
        .send()
        .await
        .expect("the record as an older version left it");

    // A late delivery of a message the truncation erased: refused by the mapping, and the record does not take
    // the gate over (it would not know of the truncation).
    let sent = Timestamp::parse("sent", "2026-11-24T10:30:00.000Z").expect("valid");
    let late = ("m-erased-late", "erased, delivered late", sent);
    assert_refused(&app, &mapping, &visitor, late).await;
    // A message after the truncation is recorded, still checked on the mapping.
    let after = visitor_message(&mapping, &visitor, "m-after", "after the truncation");
    assert_eq!(record_for(&app, &mapping, &after).await, Recorded::Applied);
    assert!(!record_gates(&app, &contact, &cid).await);

    // The next clearing writes the record's mirror: from then on the record gates the conversation.
    let later = Timestamp::parse("later", "2026-11-24T11:30:00.000Z").expect("valid");
    truncate(&app, &mapping, later).await;
    assert!(record_gates(&app, &contact, &cid).await);
    let late = ("m-erased-later", "erased by the second", until);
    assert_refused(&app, &mapping, &visitor, late).await;
}

#[tokio::test]
async fn a_conversation_registered_before_records_gated_conversations_joins_at_its_first_change() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) =
        register_visitor(&app, "Ada", "registered.before@example.com").await;
    // As a registration before records had epochs, or gated conversations, left it: a mapping with no epoch,
    // and no sync record.
    let mapping = before_epochs(&app, mapping_of(&app, &channel).await).await;
    let cid = mapping.channel.cid();
    app.dynamodb
        .delete_item()
        .table_name(app.store.table())
        .set_key(Some(support::sync_record_key(&contact)))
        .send()
        .await
        .expect("deleted");
    // Its first change is checked beside the mapping, which has no clearing: the record gates it from then on.
    let texts = ["first after the upgrade", "second after the upgrade"];
    for (i, text) in texts.into_iter().enumerate() {
        let change = visitor_message(&mapping, &visitor, &format!("m-joined-{i}"), text);
        assert_eq!(
            record_for(&app, &mapping, &change).await,
            Recorded::Applied,
            "{text}"
        );
        assert!(record_gates(&app, &contact, &cid).await, "{text}");
    }
    assert_eq!(items_mentioning(&app, &texts).await.len(), 2);
}

/// Records `change` as a webhook that read `mapping` does.
pub(super) async fn record_for(
    app: &TestApp,
    mapping: &ChannelMapping,
    change: &MessageChange,
) -> Recorded {
    app.store
        .record_change(mapping, change, Role::Visitor)
        .await
        .expect("answered")
}

/// Truncates the conversation `until` (a first truncation, or a later one than the last).
async fn truncate(app: &TestApp, mapping: &ChannelMapping, until: Timestamp) {
    let truncated = app
        .store
        .clear_conversation(mapping, Cleared::Truncated(until))
        .await
        .expect("answered");
    assert_eq!(truncated, Recorded::Applied);
}

/// A late delivery of the visitor's message `(id, text, created at)`: refused, and nothing of its text stored.
pub(super) async fn assert_refused(
    app: &TestApp,
    mapping: &ChannelMapping,
    visitor: &str,
    (id, text, at): (&str, &str, Timestamp),
) {
    let mut change = visitor_message(mapping, visitor, id, text);
    (change.created_at, change.updated_at) = (at, at);
    assert_eq!(record_for(app, mapping, &change).await, Recorded::Refused);
    assert!(items_mentioning(app, &[text]).await.is_empty(), "{text}");
}

/// `mapping` as a registration saved it before records had epochs: the stored mapping loses its epoch too.
async fn before_epochs(app: &TestApp, mapping: ChannelMapping) -> ChannelMapping {
    assert!(
        mapping.epoch.is_some(),
        "a registration saves the record's epoch"
    );
    app.dynamodb
        .update_item()
        .table_name(app.store.table())
        .set_key(Some(chat_sync::adapters::dynamo::mapping_key(
            &mapping.channel.cid(),
        )))
        .update_expression("REMOVE epoch")
        .send()
        .await
        .expect("the mapping as an older version saved it");
    ChannelMapping {
        epoch: None,
        ..mapping
    }
}

/// Whether the contact's sync record names the conversation `cid` in `gates`.
async fn record_gates(app: &TestApp, contact: &str, cid: &str) -> bool {
    sync_record(app, contact)
        .await
        .and_then(|item| item.get("gates").cloned())
        .and_then(|gates| gates.as_ss().ok().cloned())
        .is_some_and(|gates| gates.iter().any(|gated| gated == cid))
}

/// The contact's sync record as it is.
pub(super) async fn sync_record(app: &TestApp, contact: &str) -> Option<Item> {
    app.dynamodb
        .get_item()
        .table_name(app.store.table())
        .set_key(Some(support::sync_record_key(contact)))
        .consistent_read(true)
        .send()
        .await
        .expect("read")
        .item
}

/// How many tasks race an erasure, and how many changes each records.
const RACERS: usize = 8;
const RACED: usize = 30;

/// `RACERS` tasks at once, each recording `RACED` new messages from the channel's visitor 5 ms apart (ids
/// `<prefix>-<task>-<i>`, created at `sent` or now), as webhooks that read `mapping` before what they race.
fn racing_deliveries(
    app: &TestApp,
    mapping: &ChannelMapping,
    visitor: &str,
    prefix: &str,
    text: &str,
    sent: Option<Timestamp>,
) -> Vec<tokio::task::JoinHandle<usize>> {
    (0..RACERS)
        .map(|task| {
            let (store, mapping) = (app.store.clone(), mapping.clone());
            let (visitor, prefix, text) = (visitor.to_owned(), prefix.to_owned(), text.to_owned());
            tokio::spawn(async move {
                let mut applied = 0;
                for i in 0..RACED {
                    let id = format!("{prefix}-{task}-{i}");
                    let mut change = visitor_message(&mapping, &visitor, &id, &text);
                    if let Some(sent) = sent {
                        (change.created_at, change.updated_at) = (sent, sent);
                    }
                    let recorded = store
                        .record_change(&mapping, &change, Role::Visitor)
                        .await
                        .expect("answered");
                    applied += usize::from(recorded == Recorded::Applied);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                applied
            })
        })
        .collect()
}

/// Some of the racing changes were recorded and some refused: the race this checks really happened.
fn assert_raced(applied: usize) {
    assert!(
        applied > 0 && applied < RACERS * RACED,
        "{applied} of {} changes recorded",
        RACERS * RACED
    );
}

/// How many of the racing changes were recorded.
async fn recorded(racing: Vec<tokio::task::JoinHandle<usize>>) -> usize {
    let mut applied = 0;
    for task in racing {
        applied += task.await.expect("recorder");
    }
    applied
}

/// A chatting visitor erased by a privacy deletion, and their channel's mapping as a webhook read it just before,
/// to record after it: (contact, visitor, channel, mapping).
pub(super) async fn erased_behind_a_webhook(
    app: &TestApp,
    email: &str,
) -> (String, String, String, ChannelMapping) {
    let (contact, visitor, channel) = chatting_visitor(app, email).await;
    let mapping = mapping_of(app, &channel).await;
    let (status, body) = from_hubspot(app, &[("contact.privacyDeletion", &contact)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (contact, visitor, channel, mapping)
}

/// The channel's mapping as a webhook reads it.
pub(super) async fn mapping_of(app: &TestApp, channel: &str) -> ChannelMapping {
    let cid = ChannelRef::new(
        ChannelType::parse("messaging").expect("valid"),
        ChannelId::parse(channel).expect("valid"),
    );
    app.store
        .channel(&cid)
        .await
        .expect("read")
        .expect("mapped")
}

/// A new message from the channel's visitor, sent now.
pub(super) fn visitor_message(
    mapping: &ChannelMapping,
    visitor: &str,
    id: &str,
    text: &str,
) -> MessageChange {
    MessageChange {
        kind: MessageKind::New,
        channel: mapping.channel.clone(),
        message_id: MessageId::parse(id).expect("valid"),
        author: Author {
            id: visitor.to_owned(),
            name: "Ada".into(),
            role: "user".into(),
        },
        text: text.into(),
        attachments: vec![],
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
        edited: false,
    }
}
