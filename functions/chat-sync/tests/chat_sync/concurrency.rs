//! The concurrency checker: many messages over several contacts, delivered by concurrent tasks with duplicates
//! and in shuffled order, against a HubSpot double that fails the test if two writes to one contact overlap.
//! At the end every contact's transcript must hold every message exactly once, in order.

use crate::support::{message, register_visitor, signed_webhook, TestApp, AGENT_ID};
use chat_sync::config::{FlushSettings, Targets};
use chat_sync::domain::line::render_line;
use chat_sync::domain::transcript::{render, HUBSPOT_PROPERTY_LIMIT};
use chat_sync::domain::Conversation;
use chat_sync::domain::{Identity, MessageId, Role, StoredMessage, Timestamp};
use chat_sync::ports::{Leases, MessageLog, SyncRecords};
use chat_sync::sync::{FlushOutcome, FlushReport};
use lambda_http::http::StatusCode;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sandbox::stream::message_event;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONTACTS: usize = 5;
const MESSAGES_PER_CONTACT: usize = 48;
const WORKERS: usize = 16;
const DUPLICATE_RATE: f64 = 0.2;

struct Contact {
    id: String,
    visitor: String,
    channel: String,
    name: String,
}

/// Registers `count` visitors, `{prefix}{c} Tester` at `{prefix}{c}@example.com` (lowercased), one after another.
async fn register_contacts(app: &TestApp, prefix: &str, count: usize) -> Vec<Contact> {
    let mut contacts = Vec::new();
    for c in 0..count {
        let first = format!("{prefix}{c}");
        let email = format!("{}@example.com", first.to_lowercase());
        let (id, visitor, channel) = register_visitor(app, &first, &email).await;
        contacts.push(Contact {
            id,
            visitor,
            channel,
            // As the registration names the visitor.
            name: format!("{first} Tester"),
        });
    }
    contacts
}

fn created_at(contact: usize, index: usize) -> String {
    format!(
        "2026-11-24T10:{:02}:{:02}.{:03}Z",
        index / 60,
        index % 60,
        contact
    )
}

fn text(contact: usize, index: usize) -> String {
    format!("contact {contact} message {index:03}")
}

/// The messages a property or a note shows, as `text` made them, in the order shown.
fn message_lines(shown: &str) -> Vec<String> {
    shown
        .lines()
        .flat_map(|line| line.split("</p>"))
        .filter_map(|line| {
            let from = &line[line.find("contact ")?..];
            let end = from.find("message ")? + "message ".len() + 3;
            from.get(..end).map(str::to_owned)
        })
        .collect()
}

/// Contact `c`'s property, and the one note of its conversation, show `expected` (as `text` made them): each
/// message exactly once, in order.
fn assert_shows_once_in_order(app: &TestApp, c: usize, contact: &str, expected: &[String]) {
    assert_eq!(
        message_lines(&app.transcript(contact)),
        expected,
        "contact {c}: the property holds every message exactly once, in order"
    );
    let notes = app.hubspot.notes_of_contact(contact);
    assert_eq!(notes.len(), 1, "contact {c}: one note for its conversation");
    assert_eq!(
        message_lines(&notes[0].properties["hs_note_body"]),
        expected,
        "contact {c}: its note holds every message exactly once, in order"
    );
}

/// Sweeps until nothing waits, notes included, and no flusher runs (at most 40 sweeps): whatever a holder deferred
/// is written.
async fn sweep_until_idle(app: &TestApp) {
    let sweeper = app.sweeper();
    for _ in 0..40 {
        let report = sweeper.sweep().await.expect("sweep");
        if report.waiting == 0 && report.notes_waiting == 0 && !report.flush.busy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_exactly_once_in_order_under_concurrency() {
    let app = Arc::new(TestApp::start().await);
    app.hubspot.faults().set_latency(Duration::from_millis(25));

    let contacts = register_contacts(&app, "Visitor", CONTACTS).await;

    // Every message.new once, ~20 % delivered twice, all shuffled.
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut deliveries = Vec::new();
    for (c, contact) in contacts.iter().enumerate() {
        for i in 0..MESSAGES_PER_CONTACT {
            let (user, name) = if i % 3 == 2 {
                (AGENT_ID.to_owned(), "Grace (Support)".to_owned())
            } else {
                (
                    contact.visitor.clone(),
                    "whatever the widget says".to_owned(),
                )
            };
            let m = message(
                &format!("c{c}-m{i:03}"),
                &user,
                &name,
                &text(c, i),
                &created_at(c, i),
            );
            let event = message_event("message.new", "messaging", &contact.channel, &m);
            deliveries.push(event.clone());
            if rng.random_bool(DUPLICATE_RATE) {
                deliveries.push(event);
            }
        }
    }
    deliveries.shuffle(&mut rng);
    let total_deliveries = deliveries.len();
    let queue = Arc::new(Mutex::new(VecDeque::from(deliveries)));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let flushes = Arc::new(Mutex::new(Vec::new()));

    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (app, queue, latencies, flushes) = (
                app.clone(),
                queue.clone(),
                latencies.clone(),
                flushes.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let Some(event) = queue.lock().expect("queue").pop_front() else {
                        break;
                    };
                    let started = Instant::now();
                    // As in production: answer first, flush after the response (here a spawned task).
                    let (response, flush) = app.webhook.receive(signed_webhook(&event)).await;
                    latencies.lock().expect("latencies").push(started.elapsed());
                    if let Some(flush) = flush {
                        flushes
                            .lock()
                            .expect("flushes")
                            .push(tokio::spawn(flush.run()));
                    }
                    if response.status().is_server_error() {
                        // Stream retries 5xx: put it back.
                        queue.lock().expect("queue").push_back(event);
                    } else {
                        assert_eq!(response.status(), StatusCode::OK);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker finished");
    }

    let flushes: Vec<_> = std::mem::take(&mut *flushes.lock().expect("flushes"));
    for flush in flushes {
        flush.await.expect("flush task");
    }

    // Whatever a holder deferred, the sweeper finishes.
    sweep_until_idle(&app).await;

    assert_eq!(
        app.hubspot.overlapping_patches(),
        Vec::<String>::new(),
        "two writes to one contact overlapped"
    );
    for (c, contact) in contacts.iter().enumerate() {
        let transcript = app.transcript(&contact.id);
        // Independent check: the message lines, in order, exactly once each.
        let seen: Vec<String> = transcript
            .lines()
            .filter_map(|line| line.find("contact ").map(|at| line[at..].to_owned()))
            .collect();
        let expected: Vec<String> = (0..MESSAGES_PER_CONTACT).map(|i| text(c, i)).collect();
        assert_eq!(
            seen, expected,
            "contact {c}: every message exactly once, in order"
        );
        // And the whole property equals the rendering of the expected messages.
        let started_at = transcript
            .lines()
            .next()
            .and_then(|h| h.split(" started ").nth(1))
            .and_then(|s| s.split(" · ").next())
            .map(str::to_owned)
            .expect("header line");
        let messages: Vec<StoredMessage> = (0..MESSAGES_PER_CONTACT)
            .map(|i| StoredMessage {
                message_id: MessageId::parse(&format!("c{c}-m{i:03}")).expect("id"),
                cid: format!("messaging:{}", contact.channel),
                author_name: if i % 3 == 2 {
                    "Grace (Support)".into()
                } else {
                    contact.name.clone()
                },
                role: if i % 3 == 2 {
                    Role::Agent
                } else {
                    Role::Visitor
                },
                text: text(c, i),
                attachments: vec![],
                created_at: Timestamp::parse("t", &created_at(c, i)).expect("time"),
                edited: false,
                deleted: false,
                restored: false,
                removed: false,
            })
            .collect();
        let started = time::PrimitiveDateTime::parse(
            &started_at,
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"),
        )
        .expect("header time")
        .assume_utc();
        let conversation = Conversation {
            cid: format!("messaging:{}", contact.channel),
            channel_id: contact.channel.clone(),
            started_at: Timestamp::from_datetime(started),
            identity: Identity::Unverified,
            cleared: None,
        };
        assert_eq!(
            transcript,
            render(
                &[conversation],
                &messages,
                HUBSPOT_PROPERTY_LIMIT,
                MESSAGES_PER_CONTACT as u64
            )
        );
    }

    let messages = CONTACTS * MESSAGES_PER_CONTACT;
    let patches = app.hubspot.call_count("batch_update");
    let mut latencies = latencies.lock().expect("latencies").clone();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "concurrency: {messages} messages, {total_deliveries} deliveries, {patches} HubSpot batch writes \
         ({:.3} per message), webhook latency p50 {:?} p99 {:?} max {:?}",
        patches as f64 / messages as f64,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    assert!(
        patches * 10 < messages,
        "batched group commit: far fewer writes than messages ({patches} for {messages})"
    );
}

/// What a message should end as: the state its newest change left (the checker's own statement of the rule, in
/// causal order; the store decides it from versions instead).
#[derive(Debug, Clone)]
struct Expected {
    text: String,
    edited: bool,
    deleted: bool,
    removed: bool,
}

/// One message's life as Stream reports it, in causal order, with the state each event leaves: created, edited,
/// soft-deleted and undeleted (sometimes a deletion in the same instant as the change before it), maybe
/// hard-deleted at the end.
fn life(
    rng: &mut StdRng,
    id: &str,
    visitor: &str,
    channel: &str,
    created: &str,
) -> (Vec<serde_json::Value>, Expected) {
    let created_at = Timestamp::parse("t", created).expect("time");
    let mut at_ms = 0u64;
    let stamp = |ms: u64| {
        let at = created_at.later_by(Duration::from_millis(ms));
        let key = at.key();
        format!("{}Z", &key[..23])
    };
    let mut events = Vec::new();
    let mut state = Expected {
        text: format!("{id} v0"),
        edited: false,
        deleted: false,
        removed: false,
    };
    let body = |state: &Expected, updated: &str| {
        let mut m = message(
            id,
            visitor,
            "whatever the widget says",
            &state.text,
            created,
        );
        m["updated_at"] = serde_json::json!(updated);
        if state.edited {
            m["message_text_updated_at"] = serde_json::json!(updated);
        }
        m
    };
    events.push(message_event(
        "message.new",
        "messaging",
        channel,
        &body(&state, &stamp(0)),
    ));
    for edit in 1..=rng.random_range(0..3) {
        at_ms += 1_000;
        state.text = format!("{id} v{edit}");
        state.edited = true;
        events.push(message_event(
            "message.updated",
            "messaging",
            channel,
            &body(&state, &stamp(at_ms)),
        ));
    }
    for _ in 0..rng.random_range(0..3) {
        // A quarter of deletions carry the same instant as the change before them: the deletion still wins.
        if !rng.random_bool(0.25) {
            at_ms += 1_000;
        }
        let mut deleted = body(&state, &stamp(at_ms));
        deleted["type"] = serde_json::json!("deleted");
        deleted["deleted_at"] = serde_json::json!(stamp(at_ms));
        events.push(message_event(
            "message.deleted",
            "messaging",
            channel,
            &deleted,
        ));
        state.deleted = true;
        if !rng.random_bool(0.6) {
            break;
        }
        at_ms += 1_000;
        state.deleted = false;
        events.push(message_event(
            "message.undeleted",
            "messaging",
            channel,
            &body(&state, &stamp(at_ms)),
        ));
    }
    if rng.random_bool(0.2) {
        at_ms += 1_000;
        let mut removed = body(&state, &stamp(at_ms));
        removed["type"] = serde_json::json!("deleted");
        removed["deleted_at"] = serde_json::json!(stamp(at_ms));
        let mut event = message_event("message.deleted", "messaging", channel, &removed);
        event["hard_delete"] = serde_json::json!(true);
        events.push(event);
        state.removed = true;
        state.deleted = true;
    }
    (events, state)
}

/// Every change of a message fired at the same instant as the message itself, from separate tasks, round after
/// round: whatever interleaving DynamoDB sees, the stored message, the count of shown lines and the transcript end
/// in the newest state (an edit is never lost, a deletion never undone but by an undeletion, a hard delete final).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_racing_their_message_end_in_the_newest_state() {
    const ROUNDS: usize = 12;
    const MESSAGES_PER_ROUND: usize = 8;
    let app = Arc::new(TestApp::start().await);
    let (contact, visitor, channel) = register_visitor(&app, "Racer", "racer@example.com").await;
    let mut rng = StdRng::seed_from_u64(0x0dd5);
    let mut expected = Vec::new();
    let mut deliveries = 0;
    for round in 0..ROUNDS {
        let mut events = Vec::new();
        for m in 0..MESSAGES_PER_ROUND {
            let index = round * MESSAGES_PER_ROUND + m;
            let id = format!("r{index:03}");
            let created = format!(
                "2026-11-24T10:{:02}:{:02}.000Z",
                index / 6,
                (index % 6) * 10
            );
            let (life, end) = life(&mut rng, &id, &visitor, &channel, &created);
            for event in life {
                if rng.random_bool(0.3) {
                    events.push(event.clone());
                }
                events.push(event);
            }
            expected.push((id, created, end));
        }
        deliveries += events.len();
        // All of a round's deliveries start together: the barrier releases every task at once.
        let start = Arc::new(tokio::sync::Barrier::new(events.len()));
        let tasks: Vec<_> = events
            .into_iter()
            .map(|event| {
                let (app, start) = (app.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    loop {
                        // The flush is left to the sweep below: this test is about what is recorded.
                        let (response, _flush) = app.webhook.receive(signed_webhook(&event)).await;
                        if !response.status().is_server_error() {
                            assert_eq!(response.status(), StatusCode::OK);
                            break;
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("delivery task");
        }
    }

    sweep_until_idle(&app).await;

    let contact_id = chat_sync::domain::ContactId::parse(&contact).expect("id");
    let cid = format!("messaging:{channel}");
    let messages: Vec<StoredMessage> = expected
        .iter()
        .map(|(id, created, end)| StoredMessage {
            message_id: MessageId::parse(id).expect("id"),
            cid: cid.clone(),
            author_name: "Racer Tester".into(),
            role: Role::Visitor,
            text: if end.deleted {
                String::new()
            } else {
                end.text.clone()
            },
            attachments: vec![],
            created_at: Timestamp::parse("t", created).expect("time"),
            edited: end.edited,
            deleted: end.deleted,
            restored: false,
            removed: end.removed,
        })
        .collect();
    // The stored items, one by one.
    let stored = app
        .store
        .recent_transcript(&contact_id, 1 << 30)
        .await
        .expect("read")
        .messages;
    for want in &messages {
        let got = stored.iter().find(|m| m.message_id == want.message_id);
        match got {
            Some(got) => assert_eq!(
                (
                    got.deleted,
                    got.removed,
                    got.text.as_str(),
                    render_line(got)
                ),
                (
                    want.deleted,
                    want.removed,
                    want.text.as_str(),
                    render_line(want)
                ),
                "message {}",
                want.message_id
            ),
            None => assert!(want.removed, "message {} is missing", want.message_id),
        }
    }
    // The count of shown lines the sync record keeps.
    let shown = messages.iter().filter(|m| !m.removed).count() as u64;
    let state = app.store.sync_state(&contact_id).await.expect("state");
    assert_eq!(state.messages, shown, "lines shown");
    // And the transcript in HubSpot equals the rendering of the newest states.
    let transcript = app.transcript(&contact);
    let started_at = transcript
        .lines()
        .next()
        .and_then(|h| h.split(" started ").nth(1))
        .and_then(|s| s.split(" · ").next())
        .and_then(Timestamp::parse_human)
        .expect("header line");
    let conversation = Conversation {
        cid: cid.clone(),
        channel_id: channel.clone(),
        started_at,
        identity: Identity::Unverified,
        cleared: None,
    };
    assert_eq!(
        transcript,
        render(&[conversation], &messages, HUBSPOT_PROPERTY_LIMIT, shown)
    );
    let changed = expected
        .iter()
        .filter(|(_, _, e)| e.edited || e.deleted)
        .count();
    println!(
        "racing changes: {} messages ({changed} edited or deleted), {deliveries} deliveries in {ROUNDS} rounds",
        expected.len()
    );
}

/// Two flushers at once. A flusher renews its lease only between rounds, so a round slower than the lease (here
/// HubSpot answers each call after 1.4 s, and a round makes two: the property, then the notes) lets another flusher
/// take over while the first still writes; sweepers keep trying all along, so it happens again and again. What
/// keeps them apart is the per-contact lease, the same promise parallel flushers over the queue's shards would
/// rest on. The checker: the HubSpot double flags any write to a contact or note that starts while another is in
/// flight; at the end each property and each conversation's note holds every message exactly once, in order, and
/// each conversation has exactly one note. The test also checks that a flusher did go for a contact another one
/// held (its round counts it `held`: after a takeover, or a handover before a last round), or it proves nothing.
/// A takeover comes only in the last ~100 ms of a slow round, so a burst of messages may pass without one (it did on
/// a busy machine, and the zero-wait variant's first burst mostly does: its first rounds' takeovers find the other
/// contacts free); messages then come in another burst, up to `MAX_BURSTS`. With the lease's condition taken out
/// of `acquire_lease`, both variants fail on overlapping writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flushers_running_at_once_never_write_one_contact_together() {
    flushers_at_once(Duration::ZERO, 10).await;
}

/// The same with notes that wait a second: rounds write properties alone until a contact's notes are due, and the
/// rounds that write both (two calls, slower than the lease) are where flushers overlap, so messages come for
/// longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flushers_running_at_once_never_write_one_contact_together_when_notes_wait() {
    flushers_at_once(Duration::from_secs(1), 24).await;
}

async fn flushers_at_once(note_wait: Duration, burst: usize) {
    const CONTACTS: usize = 6;
    const MAX_BURSTS: usize = 6;
    let settings = FlushSettings {
        webhook_budget: Duration::from_secs(30),
        linger: Duration::ZERO,
        note_wait,
        // Notes due while messages still come may wait again, up to three waits.
        note_max_wait: note_wait * 3,
        // Just above write_timeout + late_write_window + 1 s, as the settings require, and below two calls.
        lease_ttl: Duration::from_millis(2_700),
        write_timeout: Duration::from_millis(1_500),
        late_write_window: Duration::from_millis(100),
        targets: Targets::BOTH,
    };
    let app = Arc::new(TestApp::start_with(settings).await);
    app.hubspot
        .faults()
        .set_latency(Duration::from_millis(1_400));
    let contacts = register_contacts(&app, "Parallel", CONTACTS).await;
    // What every flusher run did, webhooks' and sweepers' alike, added up.
    let flushed = Arc::new(Mutex::new(FlushReport::default()));
    let delivering = Arc::new(std::sync::atomic::AtomicBool::new(true));
    // Messages a few at a time, each webhook flushing after its answer, as deployed, in bursts of `burst` a contact
    // until a flusher has found a contact held by another. Answers the messages sent to each contact.
    let producer = {
        let (app, flushed) = (app.clone(), flushed.clone());
        let contacts: Vec<(String, String)> = contacts
            .iter()
            .map(|c| (c.visitor.clone(), c.channel.clone()))
            .collect();
        tokio::spawn(async move {
            let mut sent = 0;
            for _ in 0..MAX_BURSTS {
                let mut flushes = Vec::new();
                for i in sent..sent + burst {
                    for (c, (visitor, channel)) in contacts.iter().enumerate() {
                        let m = message(
                            &format!("p{c}-m{i:03}"),
                            visitor,
                            "Visitor",
                            &text(c, i),
                            &created_at(c, i),
                        );
                        let event = message_event("message.new", "messaging", channel, &m);
                        let (response, flush) = app.webhook.receive(signed_webhook(&event)).await;
                        assert_eq!(response.status(), StatusCode::OK);
                        if let Some(flush) = flush {
                            let flushed = flushed.clone();
                            flushes.push(tokio::spawn(async move {
                                if let Some(FlushOutcome::Flushed(report)) = flush.run().await {
                                    flushed.lock().expect("flushed").add(&report);
                                }
                            }));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                sent += burst;
                for flush in flushes {
                    flush.await.expect("flush task");
                }
                if flushed.lock().expect("flushed").held > 0 {
                    break;
                }
            }
            sent
        })
    };
    // Sweepers trying all the time: whenever a flusher's lease lapses mid-round, one of them takes over.
    let sweepers: Vec<_> = (0..3)
        .map(|_| {
            let (app, flushed, delivering) = (app.clone(), flushed.clone(), delivering.clone());
            tokio::spawn(async move {
                let sweeper = app.sweeper();
                while delivering.load(std::sync::atomic::Ordering::Relaxed) {
                    let report = sweeper.sweep().await.expect("sweep");
                    flushed.lock().expect("flushed").add(&report.flush);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        })
        .collect();
    let messages = producer.await.expect("producer");
    delivering.store(false, std::sync::atomic::Ordering::Relaxed);
    for sweeper in sweepers {
        sweeper.await.expect("sweeper");
    }
    app.hubspot.faults().set_latency(Duration::ZERO);
    // Whatever is left (fenced or deferred contacts wait for their leases to expire), the sweeper finishes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sweep_until_idle(&app).await;

    let flushed = *flushed.lock().expect("flushed");
    println!(
        "flushers at once: {messages} messages a contact; {} rounds, {} contacts held by another flusher, {} fenced",
        flushed.rounds, flushed.held, flushed.fenced
    );
    assert_eq!(
        app.hubspot.overlapping_patches(),
        Vec::<String>::new(),
        "two writes to one contact overlapped"
    );
    // Or the test proved nothing (see above).
    assert!(
        flushed.held > 0,
        "no flusher went for a contact another one held: {flushed:?}"
    );
    for (c, contact) in contacts.iter().enumerate() {
        let expected: Vec<String> = (0..messages).map(|i| text(c, i)).collect();
        assert_shows_once_in_order(&app, c, &contact.id, &expected);
    }
}

/// A round counts a contact whose lease another holder has as `held`, writes nothing of it and leaves it queued;
/// once the lease is given back, the next round writes it. (`held` is what the test above takes as its proof that
/// flushers met.)
#[tokio::test]
async fn a_round_leaves_a_contact_another_holds_queued_and_counts_it_held() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Held", "held@example.com").await;
    let id = chat_sync::domain::ContactId::parse(&contact).expect("id");
    let m = message("h1", &visitor, "Held", &text(0, 0), &created_at(0, 0));
    let (response, _flush) = app
        .webhook
        .receive(signed_webhook(&message_event(
            "message.new",
            "messaging",
            &channel,
            &m,
        )))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let holder = app.hold_lease(&id, Duration::from_secs(30)).await;
    let report = app.sweeper().sweep().await.expect("sweep").flush;
    assert_eq!(
        (report.held, report.claimed, report.calls),
        (1, 0, 0),
        "{report:?}"
    );
    assert_eq!(
        app.transcript(&contact),
        "",
        "nothing written under another's lease"
    );
    app.store
        .release_lease(&id, &holder)
        .await
        .expect("release");
    let report = app.sweeper().sweep().await.expect("sweep").flush;
    assert_eq!((report.held, report.synced), (0, 1), "{report:?}");
    assert!(app.transcript(&contact).contains(&text(0, 0)));
}

/// A flusher gives its lease up before its last round (see `sync`), so the next flusher may start while that round
/// still writes. Webhooks fired at once for the contact the last round is writing make the next flushers; only the
/// contact's own lease keeps them off it. The checker: no two writes to the contact overlap, every message is
/// there exactly once in the end, and a next flusher did run while the last round was writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flushers_after_a_handover_never_write_the_contact_its_last_round_holds() {
    // A budget with room for one linger and one round: the first flusher's first round is its last (it starts
    // ~250 ms in, the margin before the budget). HubSpot is slow, so that round writes for a while after the lease
    // is free, and the next flusher's round is due 300 ms after it started.
    let app = Arc::new(
        TestApp::start_with(FlushSettings {
            linger: Duration::from_millis(300),
            webhook_budget: Duration::from_millis(500),
            ..crate::support::test_flush_settings()
        })
        .await,
    );
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    sweep_until_idle(&app).await;
    app.hubspot.faults().set_latency(Duration::from_millis(600));
    let event = |i: usize| {
        let m = message(
            &format!("m{i:03}"),
            &visitor,
            "Ada",
            &text(0, i),
            &created_at(0, i),
        );
        signed_webhook(&message_event("message.new", "messaging", &channel, &m))
    };
    let (response, flush) = app.webhook.receive(event(0)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let flush = flush.expect("a flush");
    let first = tokio::spawn(async move { (flush.run().await, Instant::now()) });
    tokio::time::sleep(Duration::from_millis(400)).await;
    // While the last round writes: eight webhooks at once, each then flushing as after its response.
    let racers: Vec<_> = (1..=8)
        .map(|i| {
            let app = app.clone();
            let event = event(i);
            tokio::spawn(async move {
                let (response, flush) = app.webhook.receive(event).await;
                assert_eq!(response.status(), StatusCode::OK);
                let started = Instant::now();
                (flush.expect("a flush").run().await, started)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.push(racer.await.expect("racer"));
    }
    let (first, first_ended) = first.await.expect("first flusher");
    sweep_until_idle(&app).await;

    assert!(
        matches!(first, Some(FlushOutcome::Flushed(report)) if report.calls > 0),
        "the first flusher wrote: {first:?}"
    );
    assert!(
        outcomes.iter().any(|(outcome, started)| {
            matches!(outcome, Some(FlushOutcome::Flushed(_))) && *started < first_ended
        }),
        "a next flusher started while the last round wrote: {outcomes:?}"
    );
    assert_eq!(
        app.hubspot.overlapping_patches(),
        Vec::<String>::new(),
        "two writes to one contact overlapped"
    );
    let transcript = app.transcript(&contact);
    let seen: Vec<String> = transcript
        .lines()
        .filter_map(|line| line.find("contact ").map(|at| line[at..].to_owned()))
        .collect();
    let expected: Vec<String> = (0..=8).map(|i| text(0, i)).collect();
    assert_eq!(seen, expected, "every message exactly once, in order");
}

/// A flusher behind (a full page of the queue) runs the contacts whose notes are due in a notes round of their own,
/// beside its round of the property (see `sync::aside`). Some of those contacts have a new message too, so the
/// notes round writes their property as well. The checker: the two rounds' calls were in flight at once, no two
/// writes to one contact or note overlapped, and every contact's property, and each note, holds each of its
/// messages once, in order. So that the check does not depend on how the machine times the two rounds (a notes
/// round's calls could end before the other round's begin on a slow one, beside each other or not), HubSpot holds
/// each write until two are in flight, and the two rounds have about as many contacts to claim and read before
/// their first call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_notes_round_beside_a_backlog_never_writes_a_contact_with_its_rounds() {
    // Contacts whose notes come due, four in five of them with a new message too, and contacts queued at once:
    // with those new messages, a full page of the queue (`MAX_BATCH`), so the flusher is behind.
    const NOTED: usize = 50;
    const BACKLOG: usize = 60;
    let second = |c: usize| c < NOTED && c % 5 != 0;
    // Long enough for the first sweep to write the noted contacts' property before their notes are due, on a
    // loaded machine too.
    let note_wait = Duration::from_secs(5);
    // How long a write waits for the other round's: under the write's timeout, so the held call is not given up.
    let hold = Duration::from_secs(2);
    let write_timeout = Duration::from_secs(3);
    let app = TestApp::start_with(FlushSettings {
        targets: Targets::BOTH,
        note_wait,
        linger: Duration::ZERO,
        write_timeout,
        // A lease outlives its write and the late-write window.
        lease_ttl: write_timeout + Duration::from_secs(4),
        ..crate::support::test_flush_settings()
    })
    .await;
    let contacts = register_contacts(&app, "Beside", NOTED + BACKLOG).await;
    let send = |c: usize, i: usize| {
        let contact = &contacts[c];
        let m = message(
            &format!("b{c}-m{i}"),
            &contact.visitor,
            &contact.name,
            &text(c, i),
            &created_at(c, i),
        );
        message_event("message.new", "messaging", &contact.channel, &m)
    };
    let record = |event: serde_json::Value| {
        let app = &app;
        async move {
            // Recorded only: the sweeps below flush.
            let (response, _flush) = app.webhook.receive(signed_webhook(&event)).await;
            assert_eq!(response.status(), StatusCode::OK);
        }
    };
    // The noted contacts' first messages go out; their notes wait.
    let first_sent = tokio::time::Instant::now();
    for c in 0..NOTED {
        record(send(c, 0)).await;
    }
    let report = app.sweeper().sweep().await.expect("sweep").flush;
    assert_eq!(report.synced as usize, NOTED, "{report:?}");
    assert!(app.hubspot.notes().is_empty(), "the notes wait");
    // A backlog: a message for every other contact, and a second one for most of the noted ones.
    for c in NOTED..NOTED + BACKLOG {
        record(send(c, 0)).await;
    }
    for c in (0..NOTED).filter(|&c| second(c)) {
        record(send(c, 1)).await;
    }
    // The noted contacts' notes have waited twice the wait: the next round is a notes round, however few are due.
    tokio::time::sleep_until(first_sent + note_wait * 2 + Duration::from_millis(500)).await;
    app.hubspot.clear_calls();
    app.hubspot.faults().set_latency(Duration::from_millis(300));
    app.hubspot.hold_writes_until_in_flight(2, hold);
    let report = app.sweeper().sweep().await.expect("sweep").flush;
    app.hubspot.faults().set_latency(Duration::ZERO);
    let beside = app.hubspot.peak_writes_in_flight();
    sweep_until_idle(&app).await;
    assert_eq!(
        app.hubspot.overlapping_patches(),
        Vec::<String>::new(),
        "two writes to one contact or note overlapped"
    );
    // Or the test proved nothing: one round after the other never has two calls in flight.
    assert!(
        beside >= 2,
        "the notes round did not run beside the round of the property: {beside} call(s) at once; {report:?}"
    );
    for (c, contact) in contacts.iter().enumerate() {
        let expected: Vec<String> = match c {
            c if second(c) => vec![text(c, 0), text(c, 1)],
            c => vec![text(c, 0)],
        };
        assert_shows_once_in_order(&app, c, &contact.id, &expected);
    }
}
