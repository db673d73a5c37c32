//! Notes that wait (`FLUSH_NOTE_WAIT_MS`): the property shows every message at once, a conversation's note takes
//! the messages of a wait in one write, and nothing that takes text out of a note waits.

use crate::support;
use crate::support::{deliver, new_message, record, register_visitor, TestApp};
use chat_sync::config::{FlushSettings, Targets};
use chat_sync::domain::ContactId;
use chat_sync::handlers::sweeper::SweepReport;
use chat_sync::ports::{SyncQueue, SyncRecords};
use chat_sync::sync::{FlushOutcome, FlushReport};
use std::time::{Duration, Instant};

fn waiting(note_wait: Duration) -> FlushSettings {
    FlushSettings {
        targets: Targets::BOTH,
        note_wait,
        ..support::test_flush_settings()
    }
}

fn contact_id(raw: &str) -> ContactId {
    ContactId::parse(raw).expect("contact id")
}

fn note_bodies(app: &TestApp, contact: &str) -> Vec<String> {
    app.hubspot
        .notes_of_contact(contact)
        .into_iter()
        .map(|note| note.properties["hs_note_body"].clone())
        .collect()
}

/// The `message.deleted` event (soft) of the message that `new` delivered, deleted a minute after it was created.
fn deletion_of(new: &serde_json::Value) -> serde_json::Value {
    let created = new["message"]["created_at"].as_str().expect("created_at");
    let created =
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
            .expect("parses");
    let deleted_at = (created + time::Duration::minutes(1))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats");
    let mut event = new.clone();
    event["type"] = serde_json::json!("message.deleted");
    event["message"]["type"] = serde_json::json!("deleted");
    event["message"]["updated_at"] = serde_json::json!(deleted_at);
    event["message"]["deleted_at"] = serde_json::json!(deleted_at);
    event
}

/// Records `event` and sweeps: the sweep must write the contact's property (one call, showing `line`) and no note.
async fn property_alone(
    app: &TestApp,
    contact: &str,
    event: &serde_json::Value,
    line: &str,
) -> SweepReport {
    record(app, event).await;
    app.hubspot.clear_calls();
    let report = app.sweep().await;
    assert_eq!(
        (report.flush.synced, report.flush.calls),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(app.hubspot.call_count("batch_update"), 1);
    assert!(app.transcript(contact).contains(line));
    assert!(
        note_bodies(app, contact)
            .iter()
            .all(|body| !body.contains(line)),
        "the note waits"
    );
    report
}

/// A webhook's flush, run to its end: what its turn as the flusher did.
async fn flush_of(app: &TestApp, event: &serde_json::Value) -> FlushReport {
    match deliver(app, event).await {
        (status, _, _, Some(FlushOutcome::Flushed(report))) if status == 200 => report,
        other => panic!("not flushed by its own webhook: {other:?}"),
    }
}

#[tokio::test]
async fn a_note_waits_while_the_property_shows_each_message_then_takes_them_in_one_write() {
    let wait = Duration::from_millis(1_500);
    let app = TestApp::start_with(waiting(wait)).await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let (bo, bo_visitor, bo_channel) = register_visitor(&app, "Bo", "bo@example.com").await;
    let (cy, cy_visitor, cy_channel) = register_visitor(&app, "Cy", "cy@example.com").await;
    let first_recorded = Instant::now();
    // The property at once, the note not yet: one call, and the contact waits on the notes' queue.
    let m1 = new_message(&channel, &visitor, "m1", "first line", 1);
    let report = property_alone(&app, &contact, &m1, "first line").await;
    assert_eq!((report.waiting, report.notes_waiting), (0, 1), "{report:?}");

    // A later message is not held back by the waiting notes: its property goes out in the next round.
    let m2 = new_message(&channel, &visitor, "m2", "second line", 2);
    property_alone(&app, &contact, &m2, "second line").await;
    let state = app
        .store
        .sync_state(&contact_id(&contact))
        .await
        .expect("state");
    assert_eq!(
        state.synced_version, state.version,
        "the property is in sync"
    );
    assert_eq!(state.pending_notes, vec![format!("messaging:{channel}")]);

    // Due (a little past the wait: `notes_since` was stamped while recording, after `first_recorded`). Bo's
    // webhook makes a flusher whose first round has Bo's property to write and one note due, neither a batch nor
    // waiting twice the wait: the note waits. Its next round has nothing else to write: the note goes, one creation
    // with both lines, and no property call for a property in sync.
    tokio::time::sleep(
        (wait + Duration::from_millis(300)).saturating_sub(first_recorded.elapsed()),
    )
    .await;
    app.hubspot.clear_calls();
    let bo_recorded = Instant::now();
    let report = flush_of(
        &app,
        &new_message(&bo_channel, &bo_visitor, "b1", "hello", 1),
    )
    .await;
    assert_eq!(
        (report.rounds, report.calls, report.notes_only),
        (2, 2, 1),
        "{report:?}"
    );
    let bodies = note_bodies(&app, &contact);
    assert_eq!(bodies.len(), 1, "one note for the conversation: {bodies:?}");
    assert!(
        bodies[0].contains("first line") && bodies[0].contains("second line"),
        "{bodies:?}"
    );
    assert!(app.transcript(&bo).contains("hello"));
    assert_eq!(
        app.hubspot.call_count("batch_update"),
        1,
        "Bo's property only"
    );
    assert_eq!(
        app.hubspot.call_count("notes_batch_create"),
        1,
        "Ada's note only"
    );
    assert_eq!(
        note_bodies(&app, &bo),
        Vec::<String>::new(),
        "Bo's note waits"
    );
    let state = app
        .store
        .sync_state(&contact_id(&contact))
        .await
        .expect("state");
    assert!(state.pending_notes.is_empty(), "{state:?}");
    assert_eq!(state.notes_since, None);

    // Twice the wait: Cy's webhook makes a flusher whose first round is a notes round, however few are due: Bo's
    // note goes with Cy's property, in one round.
    tokio::time::sleep(
        (wait * 2 + Duration::from_millis(300)).saturating_sub(bo_recorded.elapsed()),
    )
    .await;
    app.hubspot.clear_calls();
    let report = flush_of(&app, &new_message(&cy_channel, &cy_visitor, "c1", "hi", 1)).await;
    assert_eq!(
        (report.rounds, report.calls, report.notes_only),
        (1, 2, 1),
        "{report:?}"
    );
    assert!(note_bodies(&app, &bo)[0].contains("hello"));
    assert!(app.transcript(&cy).contains("hi"));

    // Written: nothing of Ada or Bo waits any more; Cy's notes do.
    let waiting: Vec<ContactId> = app
        .store
        .notes_due(chat_sync::domain::Timestamp::now(), 10)
        .await
        .expect("notes' queue")
        .into_iter()
        .map(|(_, contact)| contact)
        .collect();
    assert_eq!(waiting, vec![contact_id(&cy)]);
    assert_eq!(app.hubspot.overlapping_patches(), Vec::<String>::new());
}

#[tokio::test]
async fn a_deletion_reaches_the_note_without_waiting_and_a_new_message_waits_again() {
    // A wait no test would sit out: only a change that takes text out of a note can bring it forward.
    let app = TestApp::start_with(waiting(Duration::from_secs(120))).await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let card = new_message(&channel, &visitor, "m1", "my card is 4111", 1);
    record(&app, &card).await;
    record(
        &app,
        &new_message(&channel, &visitor, "m2", "sorry, ignore that", 2),
    )
    .await;
    app.sweep().await;
    assert_eq!(note_bodies(&app, &contact), Vec::<String>::new());

    record(&app, &deletion_of(&card)).await;
    app.hubspot.clear_calls();
    let report = app.sweep().await;
    assert_eq!(report.notes_waiting, 0, "{report:?}");
    let bodies = note_bodies(&app, &contact);
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(!bodies[0].contains("4111"), "{bodies:?}");
    assert!(bodies[0].contains("sorry, ignore that"), "{bodies:?}");
    assert!(!app.transcript(&contact).contains("4111"));

    // The deletion's urgency is spent with the write: the next message's note waits again.
    let m3 = new_message(&channel, &visitor, "m3", "one more thing", 3);
    let report = property_alone(&app, &contact, &m3, "one more thing").await;
    assert_eq!(report.notes_waiting, 1, "{report:?}");
    assert_eq!(note_bodies(&app, &contact).len(), 1);
}

fn pausing(note_wait: Duration, note_max_wait: Duration) -> FlushSettings {
    FlushSettings {
        note_max_wait,
        ..waiting(note_wait)
    }
}

#[tokio::test]
async fn a_note_due_while_its_conversation_talks_waits_for_the_pause_then_takes_every_message() {
    let wait = Duration::from_millis(1_500);
    let app = TestApp::start_with(pausing(wait, Duration::from_secs(60))).await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let id = contact_id(&contact);
    let first_recorded = Instant::now();
    property_alone(
        &app,
        &contact,
        &new_message(&channel, &visitor, "m1", "first line", 1),
        "first line",
    )
    .await;
    let since = app.store.sync_state(&id).await.expect("state").notes_since;
    // A second message half a wait later: once the first's wait is over, the conversation still talks.
    tokio::time::sleep((wait / 2).saturating_sub(first_recorded.elapsed())).await;
    let second_recorded = Instant::now();
    property_alone(
        &app,
        &contact,
        &new_message(&channel, &visitor, "m2", "second line", 2),
        "second line",
    )
    .await;
    tokio::time::sleep(
        (wait + Duration::from_millis(200)).saturating_sub(first_recorded.elapsed()),
    )
    .await;
    assert!(
        second_recorded.elapsed() < wait,
        "the test ran too slowly to find the conversation talking"
    );

    // The sweep has nothing else to write, so it would write a due note: this one waits again instead, from the
    // second message, with no call and no claim.
    app.hubspot.clear_calls();
    let report = app.sweep().await;
    assert_eq!(
        (
            report.flush.notes_postponed,
            report.flush.calls,
            report.flush.claimed
        ),
        (1, 0, 0),
        "{report:?}"
    );
    assert_eq!(report.notes_waiting, 1, "{report:?}");
    assert_eq!(note_bodies(&app, &contact), Vec::<String>::new());
    let state = app.store.sync_state(&id).await.expect("state");
    assert!(
        state.notes_since > since && state.notes_since == state.changed_at,
        "the wait counts from the last change now: {state:?}"
    );

    // Once the conversation has paused for the wait, the next sweep writes the note: one creation, both lines,
    // and the contact leaves the notes' queue.
    tokio::time::sleep(
        (wait + Duration::from_millis(200)).saturating_sub(second_recorded.elapsed()),
    )
    .await;
    let report = app.sweep().await;
    assert_eq!(
        (report.flush.notes_postponed, report.flush.calls),
        (0, 1),
        "{report:?}"
    );
    assert_eq!(app.hubspot.call_count("notes_batch_create"), 1);
    let bodies = note_bodies(&app, &contact);
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(
        bodies[0].contains("first line") && bodies[0].contains("second line"),
        "{bodies:?}"
    );
    let state = app.store.sync_state(&id).await.expect("state");
    assert_eq!(
        (state.pending_notes.len(), state.notes_since),
        (0, None),
        "{state:?}"
    );
    assert!(
        app.data_items()
            .await
            .iter()
            .all(|item| !item.contains_key("notes_oldest")),
        "the longest wait's start goes with the notes"
    );
}

#[tokio::test]
async fn a_conversation_that_never_pauses_has_its_note_written_after_the_longest_wait() {
    // Waits long against the pace, so that a loaded machine, whose sweeps come seconds apart, still sweeps while the
    // conversation talks (a change younger than the wait) and between twice the wait and the longest (when a round
    // with a property to write makes a notes round, and the note still may wait again).
    let (wait, longest) = (Duration::from_millis(2_000), Duration::from_millis(6_000));
    let app = TestApp::start_with(pausing(wait, longest)).await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    // A message every 400 ms for 14 s, each recorded and swept: never a pause of a wait. The note waits again
    // while the oldest line not in it is younger than the longest wait, then goes out within two waits (a round
    // with a property to write takes notes once the longest-waiting has waited twice the wait). Its first write is
    // what this is about: later lines make it wait again, and a rewrite may come at any sweep, the last included.
    let started = Instant::now();
    let mut postponed = 0;
    let mut sent: usize = 0;
    // The first write: how many lines had been sent, how long after the first, and the note then.
    let mut first_write: Option<(usize, Duration, String)> = None;
    while started.elapsed() < Duration::from_secs(14) {
        sent += 1;
        record(
            &app,
            &new_message(
                &channel,
                &visitor,
                &format!("m{sent}"),
                &format!("line {sent:02}"),
                sent,
            ),
        )
        .await;
        postponed += app.sweep().await.flush.notes_postponed;
        if first_write.is_none() {
            let bodies = note_bodies(&app, &contact);
            assert!(
                bodies.len() <= 1,
                "one note for one conversation: {bodies:?}"
            );
            first_write = bodies
                .into_iter()
                .next()
                .map(|body| (sent, started.elapsed(), body));
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert!(postponed > 0, "the note never waited again");
    let (lines_then, after, body) = first_write.expect("the note was never written");
    // Not before the longest wait (without it, the note would have gone out a wait after the first line) ...
    assert!(
        after >= longest,
        "the first write came {after:?} after the first line, before the longest wait"
    );
    // ... and while the conversation still talked: lines came after it.
    assert!(
        lines_then < sent,
        "the note was first written only at the last of {sent} lines"
    );
    assert!(
        body.contains("line 01") && body.contains(&format!("line {lines_then:02}")),
        "every line so far in the first write: {body}"
    );
    assert_eq!(note_bodies(&app, &contact).len(), 1, "rewritten in place");
    assert!(app
        .transcript(&contact)
        .contains(&format!("line {sent:02}")));
}
