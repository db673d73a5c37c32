//! Conversations on the contact's timeline: one HubSpot Note per conversation, created at its first flush, updated
//! in place, escaped, continued in further parts, never created twice.

use crate::support;
use crate::support::{new_message, record, register_visitor, signed_webhook, TestApp, AGENT_ID};
use chat_sync::config::{FlushSettings, Targets};
use chat_sync::sync::FlushOutcome;
use lambda_http::http::StatusCode;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn with_notes(targets: Targets) -> FlushSettings {
    FlushSettings {
        targets,
        ..support::test_flush_settings()
    }
}

/// Sweeps until a sweep writes one contact: a fenced write's leases must expire first (`lease_ttl`, 5 s here).
async fn sweep_until_one_syncs(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let report = app.sweep().await;
        if report.flush.synced == 1 {
            return;
        }
        assert!(Instant::now() < deadline, "{report:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn one_note_per_conversation_created_once_then_updated_in_place() {
    let app = TestApp::start_with(with_notes(Targets::BOTH)).await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    record(
        &app,
        &new_message(
            &channel,
            &visitor,
            "m1",
            "<img src=x onerror=alert(1)> hello",
            1,
        ),
    )
    .await;
    record(
        &app,
        &new_message(&channel, AGENT_ID, "m2", "Hi Ada & welcome", 2),
    )
    .await;
    app.hubspot.clear_calls();
    let report = app.sweep().await;
    // The property and the new note: two calls for the round.
    assert_eq!(
        (report.flush.synced, report.flush.calls),
        (1, 2),
        "{report:?}"
    );
    assert_eq!(app.hubspot.call_count("notes_batch_create"), 1);
    let notes = app.hubspot.notes_of_contact(&contact);
    assert_eq!(notes.len(), 1, "one note for the conversation");
    let note = &notes[0];
    let body = &note.properties["hs_note_body"];
    // Hostile text is text, never markup.
    assert!(
        body.contains("&lt;img src=x onerror=alert(1)&gt; hello"),
        "{body}"
    );
    assert!(!body.contains("<img"), "{body}");
    assert!(
        body.contains("<strong>Ada</strong> (agent): Hi Ada &amp; welcome"),
        "{body}"
    );
    assert!(body.contains(&format!(
        "chat-sync conversation messaging:{channel} part 1"
    )));
    assert!(
        app.transcript(&contact).contains("Hi Ada & welcome"),
        "the property too"
    );

    // A later message rewrites the same note.
    record(&app, &new_message(&channel, &visitor, "m3", "thanks!", 3)).await;
    app.hubspot.clear_calls();
    let report = app.sweep().await;
    assert_eq!(
        (report.flush.synced, report.flush.calls),
        (1, 2),
        "{report:?}"
    );
    assert_eq!(app.hubspot.call_count("notes_batch_update"), 1);
    assert_eq!(app.hubspot.call_count("notes_batch_create"), 0);
    let notes = app.hubspot.notes_of_contact(&contact);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].id, note.id, "updated in place");
    assert!(notes[0].properties["hs_note_body"].contains("thanks!"));
    assert!(notes[0].properties["hs_timestamp"].starts_with(&note.properties["hs_timestamp"][..16]));

    // A second conversation of the same contact gets a note of its own.
    let (_, visitor2, channel2) = register_visitor(&app, "Ada", "ada@example.com").await;
    record(
        &app,
        &new_message(&channel2, &visitor2, "n1", "another day", 4),
    )
    .await;
    app.sweep().await;
    let notes = app.hubspot.notes_of_contact(&contact);
    assert_eq!(notes.len(), 2);
    assert!(notes
        .iter()
        .any(|n| n.properties["hs_note_body"].contains("another day")));
    assert_eq!(app.hubspot.overlapping_patches(), Vec::<String>::new());
}

#[tokio::test]
async fn notes_only_leaves_the_property_alone() {
    let app = TestApp::start_with(with_notes(Targets {
        notes: true,
        property: false,
    }))
    .await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    record(&app, &new_message(&channel, &visitor, "m1", "hello", 1)).await;
    let report = app.sweep().await;
    assert_eq!(
        (report.flush.synced, report.flush.calls),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(app.hubspot.call_count("batch_update"), 0);
    assert_eq!(app.transcript(&contact), "");
    assert_eq!(app.hubspot.notes_of_contact(&contact).len(), 1);
}

#[tokio::test]
async fn a_note_creation_whose_answer_never_came_is_adopted_not_repeated() {
    let settings = with_notes(Targets {
        notes: true,
        property: false,
    });
    let app = TestApp::start_with(settings).await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    record(&app, &new_message(&channel, &visitor, "m1", "first", 1)).await;
    // The create answers 502 but lands a moment later.
    app.hubspot.set_late_writes(1.0, Duration::from_millis(500));
    let report = app.sweep().await;
    assert_eq!(report.flush.fenced, 1, "{report:?}");
    app.hubspot.set_late_writes(0.0, Duration::ZERO);
    record(&app, &new_message(&channel, &visitor, "m2", "second", 2)).await;
    // Until the lease expires, nobody writes; then the next writer finds the note by its marker and updates it.
    sweep_until_one_syncs(&app).await;
    let notes = app.hubspot.notes_of_contact(&contact);
    assert_eq!(notes.len(), 1, "exactly one note: {notes:?}");
    let body = &notes[0].properties["hs_note_body"];
    assert!(body.contains("first") && body.contains("second"), "{body}");
    assert_eq!(
        app.hubspot.call_count("notes_batch_create"),
        1,
        "created once"
    );
    assert_eq!(
        app.hubspot.call_count("contact_notes"),
        1,
        "looked for on the timeline"
    );
}

#[tokio::test]
async fn a_note_that_quotes_another_conversations_marker_is_never_adopted_for_it() {
    let settings = with_notes(Targets {
        notes: true,
        property: false,
    });
    let app = TestApp::start_with(settings).await;
    let (contact, visitor, first) = register_visitor(&app, "Ada", "ada@example.com").await;
    let (again, visitor2, second) = register_visitor(&app, "Ada", "ada@example.com").await;
    assert_eq!(again, contact);
    // In her first conversation, the visitor types the words that mark the second conversation's first note.
    let quoted = format!("chat-sync conversation messaging:{second} part 1");
    record(&app, &new_message(&first, &visitor, "a1", &quoted, 1)).await;
    let report = app.sweep().await;
    assert_eq!(report.flush.synced, 1, "{report:?}");
    // The second conversation's note creation answers 502 and never lands.
    record(
        &app,
        &new_message(&second, &visitor2, "b1", "hello from B", 2),
    )
    .await;
    app.hubspot.faults().fail_next("notes_batch_create", 1, 502);
    let report = app.sweep().await;
    assert_eq!(report.flush.fenced, 1, "{report:?}");
    // The next writer looks for the second conversation's note on the timeline: the first one's is not it.
    sweep_until_one_syncs(&app).await;
    let notes = app.hubspot.notes_of_contact(&contact);
    assert_eq!(notes.len(), 2, "a note per conversation: {notes:?}");
    let bodies: Vec<&str> = notes
        .iter()
        .map(|n| n.properties["hs_note_body"].as_str())
        .collect();
    let note_of = |channel: &str| {
        bodies
            .iter()
            .find(|b| b.contains(&format!("conversation {channel} ·")))
            .copied()
            .unwrap_or_else(|| panic!("no note of {channel}: {bodies:?}"))
    };
    assert!(
        note_of(&first).contains(&quoted) && !note_of(&first).contains("hello from B"),
        "the first conversation's note keeps its own text: {bodies:?}"
    );
    assert!(note_of(&second).contains("hello from B"), "{bodies:?}");
}

#[tokio::test]
async fn a_note_is_adopted_from_a_later_page_of_the_contacts_notes() {
    use chat_sync::domain::{ContactId, Timestamp};
    use chat_sync::ports::{Caller, Crm, NewNote};
    let app = TestApp::start_with(with_notes(Targets {
        notes: true,
        property: false,
    }))
    .await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    // A full page of older notes on Ada's timeline (HubSpot pages a contact's notes 500 at a time): the one the
    // unanswered create leaves is on the second page.
    let target = ContactId::parse(&contact).expect("id");
    for batch in 0..sandbox::hubspot::ASSOCIATIONS_PER_PAGE / 100 {
        let notes: Vec<NewNote> = (0..100)
            .map(|i| NewNote {
                contact: target.clone(),
                body: format!("an older note {batch}-{i}"),
                timestamp: Timestamp::now(),
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        let permit = app
            .budget
            .acquire(Caller::Background, deadline)
            .await
            .expect("permit");
        app.crm
            .create_notes(&notes, permit, deadline)
            .await
            .expect("older notes");
    }
    app.hubspot.clear_calls();
    record(&app, &new_message(&channel, &visitor, "m1", "first", 1)).await;
    app.hubspot.set_late_writes(1.0, Duration::from_millis(500));
    let report = app.sweep().await;
    assert_eq!(report.flush.fenced, 1, "{report:?}");
    app.hubspot.set_late_writes(0.0, Duration::ZERO);
    record(&app, &new_message(&channel, &visitor, "m2", "second", 2)).await;
    sweep_until_one_syncs(&app).await;
    let marker = format!("chat-sync conversation messaging:{channel} part 1");
    let ours: Vec<_> = app
        .hubspot
        .notes_of_contact(&contact)
        .into_iter()
        .filter(|n| n.properties["hs_note_body"].contains(&marker))
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "exactly one note of the conversation: {ours:?}"
    );
    let body = &ours[0].properties["hs_note_body"];
    assert!(body.contains("first") && body.contains("second"), "{body}");
    assert_eq!(
        app.hubspot.call_count("notes_batch_create"),
        1,
        "created once"
    );
    assert_eq!(
        app.hubspot.call_count("contact_notes"),
        2,
        "both pages of the timeline were read"
    );
}

#[tokio::test]
async fn a_long_conversation_continues_in_a_second_note() {
    let app = TestApp::start_with(with_notes(Targets {
        notes: true,
        property: false,
    }))
    .await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    for i in 0..40 {
        let text = format!("message {i:03} {}", "long words ".repeat(200));
        record(
            &app,
            &new_message(&channel, &visitor, &format!("m{i}"), &text, i),
        )
        .await;
    }
    let report = app.sweep().await;
    assert_eq!(report.flush.synced, 1, "{report:?}");
    let notes = app.hubspot.notes_of_contact(&contact);
    assert!(notes.len() >= 2, "{} notes", notes.len());
    let all: String = notes
        .iter()
        .map(|n| n.properties["hs_note_body"].as_str())
        .collect();
    for i in 0..40 {
        assert_eq!(
            all.matches(&format!("message {i:03} ")).count(),
            1,
            "message {i} once"
        );
    }
    assert!(notes[1].properties["hs_note_body"].contains("(part 2)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_once_and_in_order_in_its_conversations_note_under_concurrency() {
    every_message_once_in_its_note(Duration::ZERO, Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_once_and_in_order_in_its_conversations_note_when_notes_wait() {
    every_message_once_in_its_note(Duration::from_millis(300), Duration::ZERO).await;
}

/// Deliveries spread over about seven seconds: notes come due while their conversations still talk, and wait
/// again (`postpone_notes`, no lease) beside the flushers claiming the same contacts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_once_and_in_order_in_its_conversations_note_when_notes_wait_for_a_pause() {
    every_message_once_in_its_note(Duration::from_millis(300), Duration::from_millis(400)).await;
}

/// Eight tasks deliver four contacts' messages at once, shuffled, some twice, each flushing after its answer, each
/// task a delivery every `pace`; the checker: each conversation has one note, with every message once and in
/// order. With a pace, notes due meanwhile must have waited again.
async fn every_message_once_in_its_note(note_wait: Duration, pace: Duration) {
    let app = Arc::new(
        TestApp::start_with(FlushSettings {
            note_wait,
            // Notes due while deliveries go on wait again, up to four waits.
            note_max_wait: note_wait * 4,
            ..with_notes(Targets::BOTH)
        })
        .await,
    );
    app.hubspot.faults().set_latency(Duration::from_millis(20));
    const CONTACTS: usize = 4;
    const MESSAGES: usize = 30;
    let mut conversations = Vec::new();
    for c in 0..CONTACTS {
        conversations.push(register_visitor(&app, "Ada", &format!("note{c}@example.com")).await);
    }
    let mut events = Vec::new();
    for i in 0..MESSAGES {
        for (c, (_, visitor, channel)) in conversations.iter().enumerate() {
            let event = new_message(
                channel,
                visitor,
                &format!("c{c}m{i}"),
                &format!("note-{c}-{i:03}."),
                i,
            );
            events.push(event.clone());
            if i % 5 == 0 {
                events.push(event); // a duplicate delivery
            }
        }
    }
    events.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));
    let mut tasks = Vec::new();
    for chunk in events.chunks(events.len().div_ceil(8)) {
        let (app, chunk) = (app.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut flushes = Vec::new();
            for event in chunk {
                let (response, flush) = app.webhook.receive(signed_webhook(&event)).await;
                assert_eq!(response.status(), StatusCode::OK);
                if let Some(flush) = flush {
                    flushes.push(tokio::spawn(flush.run()));
                }
                tokio::time::sleep(pace).await;
            }
            let mut postponed = 0;
            for flush in flushes {
                if let Some(FlushOutcome::Flushed(report)) = flush.await.expect("flush") {
                    postponed += report.notes_postponed;
                }
            }
            postponed
        }));
    }
    let mut postponed = 0;
    for task in tasks {
        postponed += task.await.expect("deliveries");
    }
    let sweeper = app.sweeper();
    for _ in 0..40 {
        let report = sweeper.sweep().await.expect("sweep");
        postponed += report.flush.notes_postponed;
        if report.waiting == 0 && report.notes_waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        pace.is_zero() || postponed > 0,
        "no note waited again while its conversation talked"
    );
    assert_eq!(app.hubspot.overlapping_patches(), Vec::<String>::new());
    for (c, (contact, _, _)) in conversations.iter().enumerate() {
        let notes = app.hubspot.notes_of_contact(contact);
        assert_eq!(notes.len(), 1, "contact {c}: one note");
        let body = &notes[0].properties["hs_note_body"];
        let seen: Vec<&str> = body
            .split([':', '<', ' '])
            .filter(|word| word.starts_with("note-"))
            .collect();
        let expected: Vec<String> = (0..MESSAGES).map(|i| format!("note-{c}-{i:03}.")).collect();
        assert_eq!(seen, expected, "contact {c}: every message once, in order");
    }
}

#[tokio::test]
async fn a_strangers_chat_on_an_existing_contact_goes_to_its_notes_never_its_property() {
    let app = TestApp::start_with(with_notes(Targets::BOTH)).await;
    // The customer's own first chat created the contact: its lines are the property's.
    let (contact, customer, own) = register_visitor(&app, "Ada", "ada@example.com").await;
    record(
        &app,
        &new_message(&own, &customer, "c1", "my own question", 1),
    )
    .await;
    app.sweep().await;
    let before = app.transcript(&contact);
    assert!(before.contains("my own question"), "{before}");
    // Anyone can type that e-mail: a stranger's conversation on the existing contact, 50 messages of it.
    let (same, stranger, theirs) = register_visitor(&app, "Mallory", "ada@example.com").await;
    assert_eq!(same, contact);
    for i in 0..50 {
        record(
            &app,
            &new_message(
                &theirs,
                &stranger,
                &format!("s{i}"),
                &format!("stranger line {i}"),
                2 + i,
            ),
        )
        .await;
    }
    let report = app.sweep().await;
    assert_eq!(report.flush.synced, 1, "{report:?}");
    // The property shows the customer's lines as before, and nothing of the stranger's.
    assert_eq!(app.transcript(&contact), before);
    // The stranger's conversation is on the timeline, every line, labelled not verified.
    let notes = app.hubspot.notes_of_contact(&contact);
    let theirs_note = notes
        .iter()
        .map(|n| n.properties["hs_note_body"].as_str())
        .find(|b| b.contains(&format!("conversation {theirs} ·")))
        .unwrap_or_else(|| panic!("no note of the stranger's conversation: {notes:?}"));
    assert!(theirs_note.contains("not verified"), "{theirs_note}");
    for i in 0..50 {
        assert!(
            theirs_note.contains(&format!("stranger line {i}<")),
            "line {i}"
        );
    }
    // The customer writes again in their own conversation: still only their lines in the property.
    record(&app, &new_message(&own, &customer, "c2", "a follow-up", 60)).await;
    app.sweep().await;
    let after = app.transcript(&contact);
    assert!(
        after.contains("a follow-up") && !after.contains("stranger"),
        "{after}"
    );
    assert!(
        !after.contains("earlier message"),
        "no lines counted that are not shown: {after}"
    );
}

/// A conversation is read from its registration, less a day, so its messages leave nothing per conversation on the
/// contact's sync record (which every change writes, billed by its size): a returning visitor's conversations do
/// not make each later message dearer. A message created more than a day before its channel's registration (a
/// clock far off, a channel Stream had before) keeps its time there, and its note still has it.
#[tokio::test]
async fn a_conversations_messages_leave_nothing_per_conversation_on_the_sync_record() {
    let app = TestApp::start_with(with_notes(Targets::BOTH)).await;
    let mut channels = Vec::new();
    for n in 0..3 {
        let (contact, visitor, channel) =
            register_visitor(&app, "Ada", "ada.returning@example.com").await;
        record(
            &app,
            &new_message(&channel, &visitor, &format!("m{n}"), "hello again", n),
        )
        .await;
        channels.push((contact, visitor, channel));
    }
    let contact = channels[0].0.clone();
    assert!(channels.iter().all(|(c, ..)| *c == contact), "one contact");
    // What a conversation could leave on the record: its first message's time, or its id in `gates` (the
    // record gates its changes through the epoch its mapping carries instead).
    let per_conversation = |record: &support::Item| -> Vec<String> {
        record
            .keys()
            .filter(|name| name.starts_with("first_at:") || *name == "gates")
            .cloned()
            .collect()
    };
    let sync_record = || async {
        app.dynamodb
            .get_item()
            .table_name(app.store.table())
            .set_key(Some(support::sync_record_key(&contact)))
            .consistent_read(true)
            .send()
            .await
            .expect("get")
            .item()
            .cloned()
            .expect("the sync record")
    };
    assert_eq!(per_conversation(&sync_record().await), Vec::<String>::new());

    // Two days before the third channel was registered.
    let (_, visitor, channel) = &channels[2];
    let early = time::OffsetDateTime::now_utc() - time::Duration::days(2);
    let early = early
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats");
    record(
        &app,
        &sandbox::stream::message_event(
            "message.new",
            "messaging",
            channel,
            &support::message("m-early", visitor, "Ada", "written long before", &early),
        ),
    )
    .await;
    assert_eq!(
        per_conversation(&sync_record().await),
        [format!("first_at:messaging:{channel}")]
    );
    let report = app.sweep().await;
    assert_eq!(report.flush.synced, 1, "{report:?}");
    let notes: Vec<String> = app
        .hubspot
        .notes_of_contact(&contact)
        .into_iter()
        .filter_map(|note| note.properties.get("hs_note_body").cloned())
        .collect();
    assert!(
        notes
            .iter()
            .any(|body| body.contains("written long before") && body.contains("hello again")),
        "{notes:#?}"
    );
}
