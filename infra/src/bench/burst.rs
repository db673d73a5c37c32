//! The webhook burst: many signed messages over many contacts, some of them edited or deleted, concurrent deliveries
//! with duplicates in shuffled order (a change may arrive before, after or at the same instant as its message),
//! Stream-style retries, a slow and flaky HubSpot that enforces its rate limit. Then a checker compares every
//! transcript with what was sent: each message exactly once, in order, in its newest state.

use super::design::{Deployment, Design};
use super::probe::{Latencies, Probe};
use super::world::{serve, Visitor, World, AGENT_ID, STREAM_SECRET};
use super::{markdown, ms, percentile, secs};
use chat_sync::domain::Timestamp;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sandbox::stream::{message_event, sign_webhook};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub messages: usize,
    pub contacts: usize,
    pub concurrency: usize,
    pub duplicate_rate: f64,
    /// Share of messages edited once (`message.updated`), and of the others deleted (`message.deleted`, soft): the
    /// changes go into the same shuffled pool as the messages.
    pub edit_rate: f64,
    pub delete_rate: f64,
    pub hubspot_latency: Duration,
    /// Share of HubSpot writes answered 429, 500, 502 or 503 (picked at random) without being applied.
    pub hubspot_failure_rate: f64,
    /// Share of HubSpot writes answered 502 that land `late_write_delay` later anyway.
    pub late_write_rate: f64,
    pub late_write_delay: Duration,
    /// Deliveries started per second at most (`None`: as fast as `concurrency` allows).
    pub pace: Option<f64>,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            messages: 1_000,
            contacts: 50,
            concurrency: 32,
            duplicate_rate: 0.2,
            edit_rate: 0.1,
            delete_rate: 0.05,
            hubspot_latency: Duration::from_millis(50),
            hubspot_failure_rate: 0.1,
            late_write_rate: 0.0,
            late_write_delay: Duration::ZERO,
            pace: None,
        }
    }
}

impl Workload {
    /// The same burst with late writes (10 % of writes answer 502 and land 3 s later) and no other failures.
    pub fn with_late_writes(self) -> Self {
        Self {
            hubspot_failure_rate: 0.0,
            late_write_rate: 0.1,
            late_write_delay: Duration::from_secs(3),
            ..self
        }
    }

    /// `pairs` messages, each with one change (an edit or a deletion), over as many contacts, every delivery posted at
    /// the same instant: each message races its own change. No duplicates, no HubSpot failures.
    pub fn racing_pairs(pairs: usize) -> Self {
        Self {
            messages: pairs,
            contacts: pairs,
            concurrency: 2 * pairs,
            duplicate_rate: 0.0,
            edit_rate: 0.5,
            delete_rate: 1.0,
            hubspot_failure_rate: 0.0,
            ..Self::default()
        }
    }

    /// The same messages delivered at a busy desk's pace rather than all at once.
    pub fn paced(self, messages: usize, per_second: f64) -> Self {
        Self {
            messages,
            pace: Some(per_second),
            ..self
        }
    }
}

/// The routes that write the `chat_transcript` property: chat-sync's contacts batch update, the PATCH of the
/// previous design and the baseline.
pub const PROPERTY_ROUTES: [&str; 2] = ["batch_update", "patch_contact"];
/// The routes that write timeline notes (chat-sync writes one per conversation besides the property, by default).
pub const NOTE_ROUTES: [&str; 4] = [
    "notes_batch_create",
    "notes_batch_update",
    "notes_create",
    "notes_update",
];

/// Whether a call to `route` writes a transcript (failures are injected on these).
pub fn is_write(route: &str) -> bool {
    PROPERTY_ROUTES.contains(&route) || NOTE_ROUTES.contains(&route)
}

/// Figures of one run.
#[derive(Debug, Clone, Default)]
pub struct BurstReport {
    pub messages: usize,
    pub deliveries: usize,
    pub hubspot_calls: usize,
    /// Calls to the write routes (property and notes), and of them the note writes.
    pub write_calls: usize,
    pub note_writes: usize,
    /// Of the writes, the sweeper's.
    pub sweeper_writes: u32,
    /// Calls answered 429 (HubSpot's limiter or an injected failure), and of them the limiter's.
    pub rate_limited: usize,
    pub limiter_refused: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub delivered_in: Duration,
    /// From the first delivery until every transcript passed the checker with no late write pending (None: never,
    /// within the time given).
    pub final_after: Option<Duration>,
    pub lost: usize,
    pub duplicated: usize,
    pub out_of_order: usize,
    /// Edited messages the property shows with an older text, and deleted ones it shows at all.
    pub changes: ChangeCheck,
    /// Contacts whose final transcript (property, or notes when the design writes them) fails the checker.
    pub stale: usize,
    /// The same check of the timeline notes, for a design that writes them.
    pub notes: Option<Check>,
    pub overlapping_writes: usize,
    /// Late writes the double injected.
    pub late_writes: usize,
    /// Calls to other routes (reads), per route.
    pub other_calls: BTreeMap<&'static str, usize>,
    /// Write calls answered 5xx (injected failures and late writes).
    pub server_errors: usize,
    /// Times a transcript lost a line it had shown (polled every 100 ms from the first delivery on).
    pub went_backwards: usize,
    /// DynamoDB requests of the design (store and rate budget) during the run.
    pub dynamodb_requests: u64,
    /// DynamoDB Local's latency meanwhile.
    pub dynamodb_latency: Latencies,
}

impl BurstReport {
    pub fn calls_per_message(&self) -> f64 {
        self.hubspot_calls as f64 / self.messages.max(1) as f64
    }

    pub fn writes_per_message(&self) -> f64 {
        self.write_calls as f64 / self.messages.max(1) as f64
    }

    pub fn property_writes_per_message(&self) -> f64 {
        (self.write_calls - self.note_writes) as f64 / self.messages.max(1) as f64
    }
}

/// A unique, fixed-width token per message, so the checker can find it in a transcript.
pub fn token(contact: usize, index: usize) -> String {
    format!("msg-{contact:03}-{index:05}.")
}

/// The text an edit gives a message: its token stays (the line is the same message), a marker of the edit follows.
fn edit_marker(contact: usize, index: usize) -> String {
    format!("edit-{contact:03}-{index:05};")
}

/// What the changes in a burst must leave, per contact: the edit markers that must show, the tokens of deleted
/// messages that must not.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub edited: Vec<Vec<String>>,
    pub deleted: Vec<Vec<String>>,
}

/// The events to deliver (with duplicates, shuffled), the expected tokens per contact, in order (deleted messages
/// left out), and what the edits and deletions must leave.
pub fn events(
    visitors: &[Visitor],
    workload: &Workload,
    seed: u64,
) -> (Vec<Value>, Vec<Vec<String>>, Changes) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut deliveries = Vec::new();
    let mut expected = vec![Vec::new(); visitors.len()];
    let mut changes = Changes {
        edited: vec![Vec::new(); visitors.len()],
        deleted: vec![Vec::new(); visitors.len()],
    };
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
        let mut events = vec![message_event(
            "message.new",
            "messaging",
            &visitor.channel_id,
            &message,
        )];
        // Stream stamps a change after its message: half a second later here, so the newest state is known.
        let changed_at = Timestamp::parse("created_at", &created_at)
            .map(|t| t.later_by(Duration::from_millis(500)).key())
            .unwrap_or_else(|_| created_at.clone());
        if rng.random_bool(workload.edit_rate) {
            let mut edited = message.clone();
            edited["text"] = json!(format!("{} {} edited", token(c, i), edit_marker(c, i)));
            edited["updated_at"] = json!(changed_at);
            edited["message_text_updated_at"] = json!(changed_at);
            events.push(message_event(
                "message.updated",
                "messaging",
                &visitor.channel_id,
                &edited,
            ));
            changes.edited[c].push(edit_marker(c, i));
            expected[c].push(token(c, i));
        } else if rng.random_bool(workload.delete_rate) {
            let mut deleted = message.clone();
            deleted["type"] = json!("deleted");
            deleted["updated_at"] = json!(changed_at);
            deleted["deleted_at"] = json!(changed_at);
            events.push(message_event(
                "message.deleted",
                "messaging",
                &visitor.channel_id,
                &deleted,
            ));
            changes.deleted[c].push(token(c, i));
        } else {
            expected[c].push(token(c, i));
        }
        for event in events {
            if rng.random_bool(workload.duplicate_rate) {
                deliveries.push(event.clone());
            }
            deliveries.push(event);
        }
    }
    deliveries.shuffle(&mut rng);
    (deliveries, expected, changes)
}

/// Edits a transcript lost (it shows the text from before) and deletions it lost (it shows the deleted text).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeCheck {
    pub lost_edits: usize,
    pub resurrected: usize,
}

impl ChangeCheck {
    pub fn of(transcript: &str, edited: &[String], deleted: &[String]) -> Self {
        Self {
            lost_edits: edited
                .iter()
                .filter(|m| !transcript.contains(m.as_str()))
                .count(),
            resurrected: deleted
                .iter()
                .filter(|t| transcript.contains(t.as_str()))
                .count(),
        }
    }

    /// Across every contact's property.
    pub fn all(world: &World, visitors: &[Visitor], changes: &Changes) -> Self {
        let mut total = Self::default();
        for (c, visitor) in visitors.iter().enumerate() {
            let one = Self::of(
                &world.transcript(&visitor.contact_id),
                changes.edited.get(c).map_or(&[][..], Vec::as_slice),
                changes.deleted.get(c).map_or(&[][..], Vec::as_slice),
            );
            total.lost_edits += one.lost_edits;
            total.resurrected += one.resurrected;
        }
        total
    }

    pub fn is_clean(&self) -> bool {
        *self == Self::default()
    }
}

/// Lost, duplicated and out-of-order lines of one transcript, against the tokens it should hold in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Check {
    pub lost: usize,
    pub duplicated: usize,
    pub out_of_order: usize,
}

impl Check {
    pub fn of(transcript: &str, tokens: &[String]) -> Self {
        let mut check = Check::default();
        let mut last = None;
        for t in tokens {
            match transcript.matches(t.as_str()).count() {
                0 => check.lost += 1,
                1 => {}
                n => check.duplicated += n - 1,
            }
            if let Some(position) = transcript.find(t.as_str()) {
                if last.is_some_and(|l| position < l) {
                    check.out_of_order += 1;
                }
                last = Some(position);
            }
        }
        check
    }

    pub fn is_clean(&self) -> bool {
        *self == Check::default()
    }

    fn add(&mut self, other: Check) {
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.out_of_order += other.out_of_order;
    }
}

/// Each contact's check of its `chat_transcript` property.
pub fn check_each(world: &World, visitors: &[Visitor], expected: &[Vec<String>]) -> Vec<Check> {
    visitors
        .iter()
        .zip(expected)
        .map(|(visitor, tokens)| Check::of(&world.transcript(&visitor.contact_id), tokens))
        .collect()
}

/// Each contact's check of its timeline notes.
pub fn check_notes_each(
    world: &World,
    visitors: &[Visitor],
    expected: &[Vec<String>],
) -> Vec<Check> {
    visitors
        .iter()
        .zip(expected)
        .map(|(visitor, tokens)| Check::of(&world.notes_text(&visitor.contact_id), tokens))
        .collect()
}

/// The sum of some checks.
pub fn total(checks: &[Check]) -> Check {
    let mut total = Check::default();
    for one in checks {
        total.add(*one);
    }
    total
}

/// Lost, duplicated and out-of-order lines across all contacts' properties.
pub fn check(world: &World, visitors: &[Visitor], expected: &[Vec<String>]) -> Check {
    total(&check_each(world, visitors, expected))
}

/// Delivers like Stream: `concurrency` at a time (starting `pace` per second at most), signed, 6 s timeout, up to 3
/// attempts on 408/429/5xx/timeouts. Returns every attempt's latency.
pub async fn deliver(
    url: &str,
    events: Vec<Value>,
    concurrency: usize,
    pace: Option<f64>,
) -> Vec<Duration> {
    let interval = pace.map(|per_second| Duration::from_secs_f64(1.0 / per_second));
    let next_slot = Arc::new(Mutex::new(Instant::now()));
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
            let (http, queue, latencies, url, next_slot) = (
                http.clone(),
                queue.clone(),
                latencies.clone(),
                url.to_owned(),
                next_slot.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some((event, attempt)) = next else { break };
                    if let Some(interval) = interval {
                        let slot = match next_slot.lock() {
                            Ok(mut next) => {
                                let slot = (*next).max(Instant::now());
                                *next = slot + interval;
                                Some(slot)
                            }
                            Err(_) => None,
                        };
                        if let Some(slot) = slot {
                            tokio::time::sleep_until(slot.into()).await;
                        }
                    }
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

/// Polls every transcript every 100 ms from the first delivery on: counts lines that vanish from a property that
/// showed them, and once the deliveries are done, stops when every transcript is final (the notes too, with
/// `notes`; and no late write pending) or `settle` has passed. Returns when it was final, from `started`.
async fn watch(
    world: &World,
    (visitors, expected, changes): (&[Visitor], &[Vec<String>], &Changes),
    (delivered, notes): (&OnceLock<Instant>, bool),
    (started, settle): (Instant, Duration),
    went_backwards: &mut usize,
) -> Option<Duration> {
    let mut shown: Vec<Vec<bool>> = expected.iter().map(|t| vec![false; t.len()]).collect();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut clean = true;
        for ((visitor, tokens), shown) in visitors.iter().zip(expected).zip(&mut shown) {
            let transcript = world.transcript(&visitor.contact_id);
            clean &= Check::of(&transcript, tokens).is_clean();
            let mut lost_one = false;
            for (token, shown) in tokens.iter().zip(shown.iter_mut()) {
                let now = transcript.contains(token.as_str());
                lost_one |= *shown && !now;
                *shown = now;
            }
            *went_backwards += usize::from(lost_one);
        }
        let Some(delivered) = delivered.get() else {
            continue;
        };
        if clean {
            clean = ChangeCheck::all(world, visitors, changes).is_clean();
        }
        if notes && clean {
            clean = total(&check_notes_each(world, visitors, expected)).is_clean();
        }
        if clean && world.hubspot.late_writes_pending() == 0 {
            return Some(started.elapsed());
        }
        if delivered.elapsed() >= settle {
            return None;
        }
    }
}

/// Runs the burst against a deployed design, watching the transcripts until every one is final (and no late write
/// is pending) or `settle` passes after the last delivery.
pub async fn run(
    world: &World,
    visitors: &[Visitor],
    deployment: &Deployment,
    workload: &Workload,
    settle: Duration,
) -> Result<BurstReport, String> {
    let (base, server) = serve(deployment.router.clone()).await?;
    let (events, expected, changes) = events(visitors, workload, 0xC0FFEE);
    let deliveries = events.len();
    let hubspot = &world.hubspot;
    hubspot.faults().set_latency(workload.hubspot_latency);
    for route in PROPERTY_ROUTES.iter().chain(&NOTE_ROUTES) {
        hubspot.faults().set_failure_rate(
            route,
            workload.hubspot_failure_rate,
            vec![429, 500, 502, 503],
        );
    }
    hubspot.set_late_writes(workload.late_write_rate, workload.late_write_delay);
    let calls_before = hubspot.calls().len();
    let sweeper_writes_before = deployment.sweeper_writes.load(Ordering::Relaxed);
    let dynamodb_before = world.meter.units();
    let probe = Probe::start(&world.dynamodb_endpoint, world.store.table()).await;
    let started = Instant::now();
    let delivered = OnceLock::new();
    let mut went_backwards = 0;
    let url = format!("{base}/webhooks");
    let delivering = async {
        let latencies = deliver(&url, events, workload.concurrency, workload.pace).await;
        let _ = delivered.set(Instant::now());
        latencies
    };
    let (latencies, final_after) = tokio::join!(
        delivering,
        watch(
            world,
            (visitors, &expected, &changes),
            (&delivered, deployment.notes),
            (started, settle),
            &mut went_backwards
        )
    );
    let delivered_in = delivered
        .get()
        .map(|d| d.duration_since(started))
        .unwrap_or_default();
    if workload.late_write_rate > 0.0 {
        // Judge the transcripts only once every late write has landed, and the writes it may have raced with are
        // done.
        let landed_by = Instant::now() + workload.late_write_delay * 3;
        while hubspot.late_writes_pending() > 0 && Instant::now() < landed_by {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let dynamodb_latency = probe.finish();
    let each = check_each(world, visitors, &expected);
    let notes = deployment
        .notes
        .then(|| check_notes_each(world, visitors, &expected));
    let stale = each
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            !c.is_clean()
                || notes
                    .as_ref()
                    .and_then(|n| n.get(*i))
                    .is_some_and(|n| !n.is_clean())
        })
        .count();
    let property = total(&each);
    server.abort();
    hubspot.faults().clear();
    hubspot.set_late_writes(0.0, Duration::ZERO);
    let calls = hubspot.calls();
    let calls = &calls[calls_before.min(calls.len())..];
    let writes = || calls.iter().filter(|c| is_write(c.route));
    let mut other_calls = BTreeMap::new();
    for call in calls.iter().filter(|c| !is_write(c.route)) {
        *other_calls.entry(call.route).or_insert(0) += 1;
    }
    Ok(BurstReport {
        messages: workload.messages,
        deliveries,
        hubspot_calls: calls.len(),
        write_calls: writes().count(),
        note_writes: writes().filter(|c| NOTE_ROUTES.contains(&c.route)).count(),
        sweeper_writes: deployment.sweeper_writes.load(Ordering::Relaxed) - sweeper_writes_before,
        rate_limited: calls.iter().filter(|c| c.status == 429).count(),
        limiter_refused: hubspot.rate_limited(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        delivered_in,
        final_after,
        lost: property.lost,
        duplicated: property.duplicated,
        out_of_order: property.out_of_order,
        changes: ChangeCheck::all(world, visitors, &changes),
        stale,
        notes: notes.as_deref().map(total),
        overlapping_writes: hubspot.overlapping_patches().len(),
        late_writes: hubspot.late_writes(),
        server_errors: writes().filter(|c| c.status >= 500).count(),
        other_calls,
        went_backwards,
        dynamodb_requests: (world.meter.units() - dynamodb_before).requests,
        dynamodb_latency,
    })
}

/// `0 / 0 / 0`, or `—` for a design that writes no notes.
pub fn notes_check(report: &BurstReport) -> String {
    report.notes.map_or_else(
        || "—".into(),
        |n| format!("{} / {} / {}", n.lost, n.duplicated, n.out_of_order),
    )
}

/// `contact_notes 50, get_contact 3`, or `none`.
pub fn other_calls(report: &BurstReport) -> String {
    if report.other_calls.is_empty() {
        return "none".into();
    }
    report
        .other_calls
        .iter()
        .map(|(route, n)| format!("{route} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `12 (3.4 %)`.
pub fn share(part: usize, whole: usize) -> String {
    format!(
        "{part} ({:.1} %)",
        part as f64 * 100.0 / whole.max(1) as f64
    )
}

pub fn final_after(report: &BurstReport) -> String {
    report
        .final_after
        .map(secs)
        .unwrap_or_else(|| "never".into())
}

pub fn table(workload: &Workload, runs: &[(Design, BurstReport)]) -> String {
    let mut header = vec!["burst".to_owned()];
    header.extend(runs.iter().map(|(design, _)| design.name().to_owned()));
    let row = |name: &str, value: &dyn Fn(&BurstReport) -> String| {
        let mut row = vec![name.to_owned()];
        row.extend(runs.iter().map(|(_, report)| value(report)));
        row
    };
    let rows = vec![
        row("messages (deliveries incl. duplicates)", &|r| {
            format!("{} ({})", r.messages, r.deliveries)
        }),
        row(
            "property write calls per message (batch_update + patch_contact)",
            &|r| format!("{:.3}", r.property_writes_per_message()),
        ),
        row(
            "all write calls per message (property + timeline notes)",
            &|r| format!("{:.3}", r.writes_per_message()),
        ),
        row("all HubSpot calls per message", &|r| {
            format!("{:.3}", r.calls_per_message())
        }),
        row("other HubSpot requests, by route", &|r| other_calls(r)),
        row("of the write calls, the sweeper's", &|r| {
            r.sweeper_writes.to_string()
        }),
        row(
            "429s (share of HubSpot calls); of them the limiter's",
            &|r| {
                format!(
                    "{}; {}",
                    share(r.rate_limited, r.hubspot_calls),
                    r.limiter_refused
                )
            },
        ),
        row("write calls answered 5xx (injected)", &|r| {
            r.server_errors.to_string()
        }),
        row("webhook ack p50 / p99 / max", &|r| {
            format!("{} / {} / {}", ms(r.p50), ms(r.p99), ms(r.max))
        }),
        row("all deliveries answered after", &|r| secs(r.delivered_in)),
        row("every transcript final after", &|r| final_after(r)),
        row("lost / duplicated / out-of-order lines (property)", &|r| {
            format!("{} / {} / {}", r.lost, r.duplicated, r.out_of_order)
        }),
        row(
            "edits lost (older text shown) / deleted messages shown (property)",
            &|r| format!("{} / {}", r.changes.lost_edits, r.changes.resurrected),
        ),
        row(
            "lost / duplicated / out-of-order lines (timeline notes)",
            &|r| notes_check(r),
        ),
        row("overlapping writes to one contact", &|r| {
            r.overlapping_writes.to_string()
        }),
        row("times a property lost a line it had shown", &|r| {
            r.went_backwards.to_string()
        }),
        row("DynamoDB requests per delivery", &|r| {
            format!(
                "{:.1}",
                r.dynamodb_requests as f64 / r.deliveries.max(1) as f64
            )
        }),
        row(
            "DynamoDB Local latency meanwhile (the probe's p50 / p99: a GetItem every 100 ms \\| a one-item transaction every 500 ms)",
            &|r| {
                let (read, transaction) = (r.dynamodb_latency.read, r.dynamodb_latency.transaction);
                format!(
                    "{} / {} \\| {} / {}",
                    ms(read.p50),
                    ms(read.p99),
                    ms(transaction.p50),
                    ms(transaction.p99)
                )
            },
        ),
    ];
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    format!(
        "Burst: {} messages over {} contacts ({:.0} % edited, {:.0} % of the others deleted, the changes in the same \
         pool), {} concurrent deliveries, {:.0} % duplicates, shuffled; HubSpot double {} ms per call, its 100 / 10 s \
         limit on, {:.0} % of writes (property and notes) answered 429/500/502/503.\n\n{}",
        workload.messages,
        workload.contacts,
        workload.edit_rate * 100.0,
        workload.delete_rate * 100.0,
        workload.concurrency,
        workload.duplicate_rate * 100.0,
        workload.hubspot_latency.as_millis(),
        workload.hubspot_failure_rate * 100.0,
        markdown(&header, &rows)
    )
}
