//! The webhook burst: many signed messages over many contacts, concurrent deliveries with duplicates in shuffled
//! order, Stream-style retries, a slow and flaky HubSpot. Then a checker compares every transcript with what was
//! sent: each message exactly once, in order.

use super::world::{serve, Visitor, World, AGENT_ID, STREAM_SECRET};
use super::{ms, percentile};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sandbox::stream::{message_event, sign_webhook};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub messages: usize,
    pub contacts: usize,
    pub concurrency: usize,
    pub duplicate_rate: f64,
    pub hubspot_latency: Duration,
    pub hubspot_failure_rate: f64,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            messages: 1_000,
            contacts: 50,
            concurrency: 32,
            duplicate_rate: 0.2,
            hubspot_latency: Duration::from_millis(50),
            hubspot_failure_rate: 0.1,
        }
    }
}

/// Figures of one run.
#[derive(Debug, Clone, Default)]
pub struct BurstReport {
    pub messages: usize,
    pub deliveries: usize,
    pub hubspot_calls: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub delivered_in: Duration,
    /// From the first delivery until every transcript passed the checker (None: it never did).
    pub final_after: Option<Duration>,
    pub lost: usize,
    pub duplicated: usize,
    pub out_of_order: usize,
    pub overlapping_writes: usize,
}

impl BurstReport {
    pub fn calls_per_message(&self) -> f64 {
        self.hubspot_calls as f64 / self.messages.max(1) as f64
    }
}

/// A unique, fixed-width token per message, so the checker can find it in a transcript.
fn token(contact: usize, index: usize) -> String {
    format!("msg-{contact:03}-{index:05}.")
}

/// The events to deliver (with duplicates, shuffled) and the expected tokens per contact, in order.
pub fn events(
    visitors: &[Visitor],
    workload: &Workload,
    seed: u64,
) -> (Vec<Value>, Vec<Vec<String>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut deliveries = Vec::new();
    let mut expected = vec![Vec::new(); visitors.len()];
    for n in 0..workload.messages {
        let c = n % visitors.len();
        let i = n / visitors.len();
        let visitor = &visitors[c];
        let (user, name) = if i % 2 == 0 {
            (visitor.visitor_id.as_str(), "Visitor")
        } else {
            (AGENT_ID, "Support")
        };
        let created_at = format!(
            "2026-11-24T{:02}:{:02}:{:02}.{:03}Z",
            10 + i / 3600,
            i / 60 % 60,
            i % 60,
            c % 1000
        );
        let message = json!({
            "id": format!("bench-{c}-{i}"),
            "text": format!("{} hello from the burst", token(c, i)),
            "type": "regular",
            "created_at": created_at,
            "updated_at": created_at,
            "user": { "id": user, "name": name, "role": "user" },
        });
        let event = message_event("message.new", "messaging", &visitor.channel_id, &message);
        if rng.random_bool(workload.duplicate_rate) {
            deliveries.push(event.clone());
        }
        deliveries.push(event);
        expected[c].push(token(c, i));
    }
    deliveries.shuffle(&mut rng);
    (deliveries, expected)
}

/// Lost, duplicated and out-of-order messages across all contacts.
pub fn check(
    world: &World,
    visitors: &[Visitor],
    expected: &[Vec<String>],
) -> (usize, usize, usize) {
    let (mut lost, mut duplicated, mut out_of_order) = (0, 0, 0);
    for (visitor, tokens) in visitors.iter().zip(expected) {
        let transcript = world.transcript(&visitor.contact_id);
        let mut last = None;
        for t in tokens {
            match transcript.matches(t.as_str()).count() {
                0 => lost += 1,
                1 => {}
                n => duplicated += n - 1,
            }
            if let Some(position) = transcript.find(t.as_str()) {
                if last.is_some_and(|l| position < l) {
                    out_of_order += 1;
                }
                last = Some(position);
            }
        }
    }
    (lost, duplicated, out_of_order)
}

/// Delivers like Stream: `concurrency` at a time, signed, 6 s timeout, up to 3 attempts on 408/429/5xx/timeouts.
/// Returns every attempt's latency.
pub async fn deliver(url: &str, events: Vec<Value>, concurrency: usize) -> Vec<Duration> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(6))
        .build()
        .unwrap_or_default();
    let queue = Arc::new(Mutex::new(
        events
            .into_iter()
            .map(|e| (e, 1u32))
            .collect::<VecDeque<_>>(),
    ));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, queue, latencies, url) = (
                http.clone(),
                queue.clone(),
                latencies.clone(),
                url.to_owned(),
            );
            tokio::spawn(async move {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some((event, attempt)) = next else { break };
                    let body = event.to_string();
                    let started = Instant::now();
                    let result = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-signature", sign_webhook(STREAM_SECRET, body.as_bytes()))
                        .header("x-webhook-attempt", attempt.to_string())
                        .body(body)
                        .send()
                        .await;
                    if let Ok(mut l) = latencies.lock() {
                        l.push(started.elapsed());
                    }
                    let retry = match result {
                        Ok(response) => {
                            let s = response.status().as_u16();
                            s == 408 || s == 429 || s >= 500
                        }
                        Err(_) => true,
                    };
                    if retry && attempt < 3 {
                        if let Ok(mut q) = queue.lock() {
                            q.push_back((event, attempt + 1));
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let mut latencies = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    latencies.sort();
    latencies
}

/// Runs the burst against `router` (serving the webhook at `/webhooks`), polling the checker until every
/// transcript is final or `settle` passes.
pub async fn run(
    world: &World,
    visitors: &[Visitor],
    router: axum::Router,
    workload: &Workload,
    settle: Duration,
) -> Result<BurstReport, String> {
    let (base, server) = serve(router).await?;
    let (events, expected) = events(visitors, workload, 0xC0FFEE);
    let deliveries = events.len();
    world.hubspot.faults().set_latency(workload.hubspot_latency);
    let statuses = vec![429, 500, 502, 503];
    for route in ["patch_contact", "get_contact"] {
        world.hubspot.faults().set_failure_rate(
            route,
            workload.hubspot_failure_rate,
            statuses.clone(),
        );
    }
    let calls_before = world.hubspot.calls().len();
    let started = Instant::now();
    let latencies = deliver(&format!("{base}/webhooks"), events, workload.concurrency).await;
    let delivered_in = started.elapsed();
    let mut final_after = None;
    let deadline = Instant::now() + settle;
    loop {
        let (lost, duplicated, out_of_order) = check(world, visitors, &expected);
        if lost == 0 && duplicated == 0 && out_of_order == 0 {
            final_after = Some(started.elapsed());
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (lost, duplicated, out_of_order) = check(world, visitors, &expected);
    server.abort();
    world.hubspot.faults().clear();
    let hubspot_calls = world.hubspot.calls().len() - calls_before;
    Ok(BurstReport {
        messages: workload.messages,
        deliveries,
        hubspot_calls,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        delivered_in,
        final_after,
        lost,
        duplicated,
        out_of_order,
        overlapping_writes: world.hubspot.overlapping_patches().len(),
    })
}

pub fn table(ours: &BurstReport, baseline: &BurstReport) -> String {
    let final_after = |r: &BurstReport| r.final_after.map(ms).unwrap_or_else(|| "never".into());
    let rows = [
        (
            "messages (deliveries incl. duplicates)",
            format!("{} ({})", ours.messages, ours.deliveries),
            format!("{} ({})", baseline.messages, baseline.deliveries),
        ),
        (
            "HubSpot calls per message",
            format!("{:.3}", ours.calls_per_message()),
            format!("{:.3}", baseline.calls_per_message()),
        ),
        (
            "webhook ack p50 / p99 / max",
            format!("{} / {} / {}", ms(ours.p50), ms(ours.p99), ms(ours.max)),
            format!(
                "{} / {} / {}",
                ms(baseline.p50),
                ms(baseline.p99),
                ms(baseline.max)
            ),
        ),
        (
            "all deliveries answered after",
            ms(ours.delivered_in),
            ms(baseline.delivered_in),
        ),
        (
            "every transcript final after",
            final_after(ours),
            final_after(baseline),
        ),
        (
            "lost lines",
            ours.lost.to_string(),
            baseline.lost.to_string(),
        ),
        (
            "duplicated lines",
            ours.duplicated.to_string(),
            baseline.duplicated.to_string(),
        ),
        (
            "lines out of order",
            ours.out_of_order.to_string(),
            baseline.out_of_order.to_string(),
        ),
        (
            "overlapping writes to one contact",
            ours.overlapping_writes.to_string(),
            baseline.overlapping_writes.to_string(),
        ),
    ];
    let mut out =
        String::from("| burst | chat-sync | baseline (GET, append, PATCH) |\n|---|---|---|\n");
    for (name, a, b) in rows {
        out.push_str(&format!("| {name} | {a} | {b} |\n"));
    }
    out
}
