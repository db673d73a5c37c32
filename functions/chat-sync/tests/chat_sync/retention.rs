//! Retention: a contact in sync and idle for `MESSAGE_RETENTION_DAYS` has its message items expire by TTL, and what
//! HubSpot shows never shrinks or changes because of it: later messages are rendered around HubSpot's copy of the
//! property and go to notes after the frozen ones; erasures still reach the lines HubSpot alone holds.

use crate::support;
use crate::support::{new_message, record, register_visitor, Item, Lambda, TestApp, AGENT_ID};
use aws_sdk_dynamodb::types::AttributeValue;
use chat_sync::adapters::dynamo::contact_partition;
use chat_sync::config::{FlushSettings, Targets};
use chat_sync::domain::{ContactId, Timestamp};
use chat_sync::ports::{ContactErasure, Leases, MessageExpiry, SyncRecords};
use chat_sync::retention::{Retention, RetentionPeriod};
use sandbox::stream::message_event;
use serde_json::json;
use std::time::{Duration, Instant};

const DAY: Duration = Duration::from_secs(86_400);

async fn app() -> TestApp {
    TestApp::start_with(FlushSettings {
        targets: Targets::BOTH,
        ..support::test_flush_settings()
    })
    .await
}

async fn sweep(app: &TestApp) -> chat_sync::handlers::sweeper::SweepReport {
    let report = app.sweep().await;
    assert_eq!(
        report.flush.deferred + report.flush.refused,
        0,
        "{report:?}"
    );
    report
}

/// Retention as the sweeper runs it, on the table as the sweeper's role lets it reach it.
fn retention(app: &TestApp) -> Retention {
    Retention::new(app.store_as(Lambda::Sweeper), RetentionPeriod::days(30))
}

/// Every item of the contact's partition.
async fn partition(app: &TestApp, contact: &str) -> Vec<Item> {
    app.dynamodb
        .query()
        .table_name(app.store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            AttributeValue::S(contact_partition(
                &ContactId::parse(contact).expect("a contact id"),
            )),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("query")
        .items()
        .to_vec()
}

fn sk(item: &Item) -> &str {
    item["sk"].as_s().expect("sk")
}

fn ttl(item: &Item) -> Option<i64> {
    item.get("expires_at")
        .map(|v| v.as_n().expect("number").parse().expect("integer"))
}

/// The TTL of each of the contact's message items.
async fn message_ttls(app: &TestApp, contact: &str) -> Vec<Option<i64>> {
    partition(app, contact)
        .await
        .iter()
        .filter(|i| sk(i).starts_with("MSG#"))
        .map(ttl)
        .collect()
}

/// When the contact's last change was recorded.
async fn changed_at(app: &TestApp, contact: &ContactId) -> Timestamp {
    app.store
        .sync_state(contact)
        .await
        .expect("state")
        .changed_at
        .expect("recorded with its changes")
}

/// What DynamoDB's TTL process does, some time after the items' `expires_at`: deletes them.
async fn delete_expired(app: &TestApp, contact: &str) -> usize {
    let mut deleted = 0;
    for item in partition(app, contact).await {
        if ttl(&item).is_some() {
            app.dynamodb
                .delete_item()
                .table_name(app.store.table())
                .key("pk", item["pk"].clone())
                .key("sk", item["sk"].clone())
                .send()
                .await
                .expect("delete");
            deleted += 1;
        }
    }
    deleted
}

/// A registered visitor with a conversation of three lines in HubSpot (property and note): (contact, visitor,
/// channel, the agent's message).
async fn idle_conversation(
    app: &TestApp,
    email: &str,
) -> (String, String, String, serde_json::Value) {
    let (contact, visitor, channel) = register_visitor(app, "Ada", email).await;
    let reply = new_message(&channel, AGENT_ID, "a2", "sorry, it ships today", 2);
    record(
        app,
        &new_message(
            &channel,
            &visitor,
            "a1",
            "my order #1234 is late\nsince Monday",
            1,
        ),
    )
    .await;
    record(app, &reply).await;
    record(app, &new_message(&channel, &visitor, "a3", "thank you", 3)).await;
    assert_eq!(sweep(app).await.flush.synced, 1);
    (contact, visitor, channel, reply["message"].clone())
}

#[tokio::test]
async fn idle_synced_messages_expire_as_documented_and_hubspot_keeps_showing_them() {
    let app = app().await;
    let (contact, visitor, channel, _) = idle_conversation(&app, "ada@example.com").await;
    let shown = app.transcript(&contact);
    let notes = app.hubspot.notes_of_contact(&contact);
    assert_eq!(notes.len(), 1);
    let frozen = notes[0].clone();

    // The contact is on the idle index from its sync on.
    let id = ContactId::parse(&contact).expect("id");
    let idle = app
        .store
        .idle_contacts(Timestamp::now().later_by(DAY), 10)
        .await
        .expect("idle");
    assert_eq!(idle.len(), 1);
    assert_eq!(idle[0].contact, id);
    let changed_at = changed_at(&app, &id).await;

    // 29 days on, nothing expires; 31 days on, every message item does, at its last change + 30 days.
    let run_at = |days: u64| Timestamp::now().later_by(DAY * days as u32);
    let far = Instant::now() + Duration::from_secs(30);
    let report = retention(&app).run(run_at(29), far).await.expect("run");
    assert_eq!(report.contacts, 0, "{report:?}");
    assert!(partition(&app, &contact)
        .await
        .iter()
        .all(|i| ttl(i).is_none()));
    let report = retention(&app).run(run_at(31), far).await.expect("run");
    assert_eq!((report.contacts, report.messages), (1, 3), "{report:?}");
    let expected = changed_at.later_by(DAY * 30).unix_seconds();
    for item in partition(&app, &contact).await {
        if sk(&item).starts_with("MSG#") {
            assert_eq!(ttl(&item), Some(expected), "{}", sk(&item));
        } else {
            assert_eq!(ttl(&item), None, "only messages expire: {}", sk(&item));
        }
    }
    let state = app.store.sync_state(&id).await.expect("state");
    assert!(state.archived_at.is_some());
    assert_eq!(state.frozen[&format!("messaging:{channel}")].notes, 1);
    // In an item of their own: the sync record, which every change writes, does not grow with them.
    let sync_record = partition(&app, &contact)
        .await
        .into_iter()
        .find(|item| sk(item) == chat_sync::adapters::dynamo::SYNC_RECORD_SORT_KEY)
        .expect("the sync record");
    assert!(!sync_record.contains_key("frozen"), "{sync_record:?}");
    // Off the idle index: the next pass does nothing.
    let report = retention(&app).run(run_at(62), far).await.expect("run");
    assert_eq!(report.contacts, 0, "{report:?}");
    assert_eq!(delete_expired(&app, &contact).await, 3);

    // The visitor comes back to the same chat, and opens a second one.
    record(
        &app,
        &new_message(&channel, &visitor, "b1", "it has not arrived", 10),
    )
    .await;
    record(
        &app,
        &new_message(&channel, AGENT_ID, "b2", "a courier is on the way", 11),
    )
    .await;
    let (_, visitor2, channel2) = register_visitor(&app, "Ada", "ada@example.com").await;
    record(
        &app,
        &new_message(&channel2, &visitor2, "c1", "another question", 12),
    )
    .await;
    app.hubspot.clear_calls();
    assert_eq!(sweep(&app).await.flush.synced, 1);
    assert_eq!(
        app.hubspot.call_count("batch_read"),
        1,
        "HubSpot's copy was read once"
    );

    // The property shows every line it showed, unchanged and in place, then the new ones.
    let now_shown = app.transcript(&contact);
    assert!(now_shown.starts_with(&shown), "{now_shown}");
    let lines: Vec<&str> = now_shown.lines().collect();
    assert!(lines.contains(&"    since Monday"));
    let new_lines = &now_shown[shown.len()..];
    assert!(
        new_lines.contains("(visitor): it has not arrived"),
        "{now_shown}"
    );
    assert!(
        new_lines.contains("(agent): a courier is on the way"),
        "{now_shown}"
    );
    // The new conversation is a second unverified registration of an existing contact: notes only (see
    // `ChannelMapping::notes_only`), so its line is in its note below and not in the property.
    assert!(!new_lines.contains("another question"), "{now_shown}");
    assert_eq!(now_shown.matches("my order #1234").count(), 1);

    // The note that held the expired messages is frozen: never written again. The new lines go to part 2.
    let notes = app.hubspot.notes_of_contact(&contact);
    let still = notes.iter().find(|n| n.id == frozen.id).expect("kept");
    assert_eq!(
        still.properties["hs_note_body"],
        frozen.properties["hs_note_body"]
    );
    let part2 = notes
        .iter()
        .find(|n| n.properties["hs_note_body"].contains(&format!("messaging:{channel} part 2")))
        .expect("part 2");
    assert!(part2.properties["hs_note_body"].contains("it has not arrived"));
    assert!(!part2.properties["hs_note_body"].contains("order #1234"));
    assert!(notes
        .iter()
        .any(|n| n.properties["hs_note_body"].contains("another question")));
    assert_eq!(notes.len(), 3);

    // Another change renders around HubSpot's copy again, and still loses nothing.
    record(
        &app,
        &new_message(&channel, &visitor, "b3", "got it, thanks", 13),
    )
    .await;
    sweep(&app).await;
    let again = app.transcript(&contact);
    assert!(again.contains("my order #1234 is late\n    since Monday"));
    assert!(again.contains("got it, thanks"));
    assert_eq!(
        again.matches("a courier is on the way").count(),
        1,
        "{again}"
    );
}

#[tokio::test]
async fn changes_and_erasures_still_reach_the_lines_only_hubspot_holds() {
    let app = app().await;
    let (contact, visitor, channel, reply) = idle_conversation(&app, "grace@example.com").await;
    let frozen = app.hubspot.notes_of_contact(&contact)[0].clone();
    let far = Instant::now() + Duration::from_secs(30);
    let later = Timestamp::now().later_by(DAY * 31);
    assert_eq!(
        retention(&app).run(later, far).await.expect("run").contacts,
        1
    );
    delete_expired(&app, &contact).await;

    // An edit of an expired message replaces its line in place.
    let mut edited = reply;
    edited["text"] = json!("sorry, it ships tomorrow");
    edited["updated_at"] = json!(Timestamp::now().rfc3339());
    record(
        &app,
        &message_event("message.updated", "messaging", &channel, &edited),
    )
    .await;
    sweep(&app).await;
    let shown = app.transcript(&contact);
    assert!(
        shown.contains("(agent): sorry, it ships tomorrow (edited)"),
        "{shown}"
    );
    assert!(!shown.contains("ships today"), "{shown}");
    assert!(shown.contains("my order #1234"), "{shown}");

    // The visitor is hard-deleted in Stream: their lines go from the property, and the frozen note (whose lines
    // are no longer here to render it again) is emptied.
    let hard = json!({ "type": "user.deleted", "user": { "id": visitor }, "hard_delete": true });
    record(&app, &hard).await;
    sweep(&app).await;
    let shown = app.transcript(&contact);
    assert!(!shown.contains("(visitor)"), "{shown}");
    assert!(
        !shown.contains("order #1234") && !shown.contains("since Monday"),
        "{shown}"
    );
    assert!(
        shown.contains("(agent): sorry, it ships tomorrow (edited)"),
        "{shown}"
    );
    let note = app.hubspot.note(&frozen.id).expect("note");
    let body = &note.properties["hs_note_body"];
    assert!(body.contains("(messages erased in chat)"), "{body}");
    assert!(!body.contains("order #1234"), "{body}");
}

/// A retention pass at `later` that defers the contact, not yet in HubSpot whole, and expires none of its items.
async fn defers_and_keeps_everything(app: &TestApp, contact: &str, later: Timestamp, far: Instant) {
    let report = retention(app).run(later, far).await.expect("run");
    assert_eq!((report.contacts, report.deferred), (0, 1), "{report:?}");
    assert!(partition(app, contact)
        .await
        .iter()
        .all(|i| ttl(i).is_none()));
}

#[tokio::test]
async fn a_contact_whose_notes_wait_keeps_its_messages_until_they_are_written() {
    let wait = Duration::from_secs(1);
    let app = TestApp::start_with(FlushSettings {
        targets: Targets::BOTH,
        note_wait: wait,
        ..support::test_flush_settings()
    })
    .await;
    // The property is in sync at the contact's version; its notes wait.
    let written = Instant::now();
    let (contact, _, _, _) = idle_conversation(&app, "wait@example.com").await;
    let id = ContactId::parse(&contact).expect("id");
    let state = app.store.sync_state(&id).await.expect("state");
    assert_eq!(state.version, state.synced_version);
    assert!(!state.pending_notes.is_empty());
    let (later, far) = (
        Timestamp::now().later_by(DAY * 31),
        Instant::now() + Duration::from_secs(30),
    );
    defers_and_keeps_everything(&app, &contact, later, far).await;

    // Once its notes are written (a sweep after the wait), the next period's pass expires its messages.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sweep(&app).await.notes_waiting > 0 {
        assert!(Instant::now() < deadline, "the notes were never written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(written.elapsed() >= wait);
    assert_eq!(app.hubspot.notes_of_contact(&contact).len(), 1);
    let report = retention(&app)
        .run(later.later_by(DAY * 31), far)
        .await
        .expect("run");
    assert_eq!((report.contacts, report.messages), (1, 3), "{report:?}");
}

#[tokio::test]
async fn contacts_behind_or_busy_keep_their_messages() {
    let app = app().await;
    let (contact, visitor, channel, _) = idle_conversation(&app, "lin@example.com").await;
    // A change not yet in HubSpot: nothing expires, and the contact is looked at again a period later.
    record(
        &app,
        &new_message(&channel, &visitor, "a4", "one more thing", 4),
    )
    .await;
    let (later, far) = (
        Timestamp::now().later_by(DAY * 31),
        Instant::now() + Duration::from_secs(30),
    );
    defers_and_keeps_everything(&app, &contact, later, far).await;
    let report = retention(&app).run(later, far).await.expect("run");
    assert_eq!(
        report,
        Default::default(),
        "moved on: not looked at again this period"
    );

    // Synced again, a period after that, but a flusher holds its lease: left for the next pass.
    let later = later.later_by(DAY * 31);
    sweep(&app).await;
    let id = ContactId::parse(&contact).expect("id");
    let holder = app.hold_lease(&id, Duration::from_secs(30)).await;
    let report = retention(&app).run(later, far).await.expect("run");
    assert_eq!((report.contacts, report.skipped), (0, 1), "{report:?}");
    app.store
        .release_lease(&id, &holder)
        .await
        .expect("release");
    let report = retention(&app).run(later, far).await.expect("run");
    assert_eq!((report.contacts, report.messages), (1, 4), "{report:?}");

    // Deleted in HubSpot (restorable) and restored: the purge TTL never postpones retention's, and the restore
    // clears only the purge's.
    let archived = message_ttls(&app, &contact).await;
    let at = Timestamp::now();
    assert!(app
        .store
        .mark_deleted(&id, at, at.later_by(DAY * 90))
        .await
        .expect("delete"));
    assert_eq!(message_ttls(&app, &contact).await, archived);
    assert!(app
        .store
        .restore_contact(&id, at.later_by(Duration::from_secs(1)))
        .await
        .expect("restore"));
    for item in partition(&app, &contact).await {
        let expected = if sk(&item).starts_with("MSG#") {
            archived[0]
        } else {
            None
        };
        assert_eq!(ttl(&item), expected, "{}", sk(&item));
    }

    // A contact deleted in HubSpot leaves the idle index: its messages go with the purge, and it never blocks the
    // index for the others.
    let (deleted, _, _, _) = idle_conversation(&app, "deleted@example.com").await;
    let deleted = ContactId::parse(&deleted).expect("id");
    assert!(app
        .store
        .mark_deleted(&deleted, at, at.later_by(DAY * 90))
        .await
        .expect("delete"));
    let idle = app
        .store
        .idle_contacts(later.later_by(DAY * 100), 10)
        .await
        .expect("idle");
    assert!(idle.iter().all(|c| c.contact != deleted), "{idle:?}");
}

#[tokio::test]
async fn a_pass_out_of_time_leaves_the_contact_for_the_next_one_which_finishes_it() {
    let app = app().await;
    let (contact, _, _, _) = idle_conversation(&app, "long@example.com").await;
    let id = ContactId::parse(&contact).expect("id");
    let state = app.store.sync_state(&id).await.expect("state");
    let expires_at = Timestamp::now().later_by(DAY * 30);
    let owner = app.hold_lease(&id, Duration::from_secs(30)).await;
    // No time left: recorded as archived (so no item can expire unnoticed), nothing marked, still on the index.
    let archived = app
        .store
        .archive_contact(&id, &owner, &state, expires_at, Instant::now())
        .await
        .expect("archive")
        .expect("in sync");
    assert_eq!((archived.messages, archived.complete), (0, false));
    assert!(app
        .store
        .sync_state(&id)
        .await
        .expect("state")
        .archived_at
        .is_some());
    assert!(message_ttls(&app, &contact)
        .await
        .iter()
        .all(Option::is_none));
    let idle = app.store.idle_contacts(expires_at, 10).await.expect("idle");
    assert_eq!(idle.len(), 1);
    // Someone else's lease: nothing is done.
    let other = chat_sync::ports::LeaseOwner::random();
    let later = Instant::now() + Duration::from_secs(30);
    assert_eq!(
        app.store
            .archive_contact(&id, &other, &state, expires_at, later)
            .await
            .expect("archive"),
        None
    );
    // The next pass finishes it and takes it off the index.
    let archived = app
        .store
        .archive_contact(&id, &owner, &state, expires_at, later)
        .await
        .expect("archive")
        .expect("in sync");
    assert_eq!((archived.messages, archived.complete), (3, true));
    assert!(app
        .store
        .idle_contacts(expires_at, 10)
        .await
        .expect("idle")
        .is_empty());
}

#[tokio::test]
async fn a_contact_active_since_its_entry_is_looked_at_again_a_period_after_its_last_change() {
    let app = app().await;
    let (contact, visitor, channel, _) = idle_conversation(&app, "busy@example.com").await;
    let id = ContactId::parse(&contact).expect("id");
    let entry = |app: &TestApp| {
        let store = app.store.clone();
        async move {
            store
                .idle_contacts(Timestamp::now().later_by(DAY * 400), 10)
                .await
                .expect("idle")
        }
    };
    let joined = entry(&app).await[0].since;
    // Another message, written: the entry is not touched (no index write per message or per flush).
    tokio::time::sleep(Duration::from_secs(2)).await;
    record(
        &app,
        &new_message(&channel, &visitor, "a5", "still there?", 5),
    )
    .await;
    sweep(&app).await;
    assert_eq!(entry(&app).await[0].since, joined);
    let changed_at = changed_at(&app, &id).await;
    assert!(changed_at > joined.later_by(Duration::from_secs(1)));
    // A period after joining, but not after the last change: it moves to its last change, nothing expires.
    let run_at = changed_at
        .later_by(DAY * 30)
        .earlier_by(Duration::from_secs(1));
    let far = Instant::now() + Duration::from_secs(30);
    let report = retention(&app).run(run_at, far).await.expect("run");
    assert_eq!((report.contacts, report.deferred), (0, 1), "{report:?}");
    assert_eq!(entry(&app).await[0].since, changed_at);
    assert!(partition(&app, &contact)
        .await
        .iter()
        .all(|i| ttl(i).is_none()));
    // A period after the last change, it expires.
    let report = retention(&app)
        .run(
            changed_at
                .later_by(DAY * 30)
                .later_by(Duration::from_secs(1)),
            far,
        )
        .await
        .expect("run");
    assert_eq!((report.contacts, report.messages), (1, 4), "{report:?}");
}
