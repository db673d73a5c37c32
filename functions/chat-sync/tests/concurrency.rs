//! The concurrency checker: many messages over several contacts, delivered by concurrent tasks with duplicates
//! and in shuffled order, against a HubSpot double that fails the test if two writes to one contact overlap.
//! At the end every contact's transcript must hold every message exactly once, in order.

mod support;

use chat_sync::domain::transcript::{render, Conversation, HUBSPOT_PROPERTY_LIMIT};
use chat_sync::domain::{Identity, MessageId, Role, StoredMessage, Timestamp};
use lambda_http::http::StatusCode;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sandbox::stream::message_event;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{message, register_visitor, signed_webhook, TestApp, AGENT_ID};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_exactly_once_in_order_under_concurrency() {
    let app = Arc::new(TestApp::start().await);
    app.hubspot.faults().set_latency(Duration::from_millis(25));

    let mut contacts = Vec::new();
    for c in 0..CONTACTS {
        let name = format!("Visitor{c}");
        let (id, visitor, channel) =
            register_visitor(&app, &name, &format!("visitor{c}@example.com")).await;
        contacts.push(Contact {
            id,
            visitor,
            channel,
            name: format!("{name} Tester"),
        });
    }

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
    let sweeper = app.sweeper();
    for _ in 0..20 {
        let report = sweeper.sweep().await.expect("sweep");
        if report.waiting == 0 && !report.flush.busy {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

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
