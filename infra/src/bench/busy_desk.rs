//! A busy support desk: many conversations at once, messages arriving at a steady pace for a minute, each delivered
//! as Stream does (its own request, in parallel with the others, retried on 5xx and timeouts, sometimes twice), to
//! a HubSpot that enforces its 100 requests / 10 s. What a support agent sees is the **sync lag**: from Stream's
//! 2xx for a message to the moment the message shows in the contact's `chat_transcript`.
//!
//! The same run gives what the design costs per message (DynamoDB units, HubSpot calls, Lambda time).

use super::burst::{check, check_notes_each, is_write, share, token, total, Check, NOTE_ROUTES};
use super::design::{Deployment, Design};
use super::floor;
use super::meter::{ByRequest, Metered};
use super::probe::{Latencies, Probe};
use super::world::{serve, Visitor, World, AGENT_ID, STREAM_SECRET, SWEEP_BUDGET};
use super::{markdown, ms, percentile, secs};
use chat_sync::domain::Timestamp;
use chat_sync::sync::{FlushReport, RoundTimes};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sandbox::stream::{message_event, sign_webhook};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Desk {
    /// What the tables call it.
    pub name: &'static str,
    pub conversations: usize,
    pub messages_per_second: f64,
    pub load: Duration,
    pub duplicate_rate: f64,
    pub hubspot_latency: Duration,
    /// How long after the load the lag is still watched for: a message not in HubSpot by then counts as lost.
    pub drain: Duration,
    /// The lag p99 issue #25 asks of this desk: what the fewest calls any flusher could make are counted at.
    pub lag_goal: Duration,
}

impl Default for Desk {
    fn default() -> Self {
        Self {
            name: "busy desk",
            conversations: 200,
            messages_per_second: 25.0,
            load: Duration::from_secs(60),
            duplicate_rate: 0.05,
            hubspot_latency: Duration::from_millis(80),
            drain: Duration::from_secs(60),
            lag_goal: Duration::from_secs(3),
        }
    }
}

impl Desk {
    /// Half a minute of `desk`'s load, not measured: DynamoDB Local is a JVM, and its first minute of load runs
    /// before the JIT has compiled its hot paths (on this 2-core machine a cold emulator answered a 5× desk in
    /// seconds, a warm one in milliseconds). That is the emulator warming up, not the product. It warms up at the
    /// pace it is about to be measured at: after half a minute of a busy desk, the first 5× desk of an invocation
    /// ran at 10–71 s of lag in seven invocations of seven; after half a minute of its own pace, at 2.7–11.9 s,
    /// three of four under 5 s (docs/benchmarks-flusher.md, round 6).
    pub fn warm_up(desk: &Desk) -> Self {
        Self {
            name: "warm-up",
            load: Duration::from_secs(30),
            drain: Duration::from_secs(15),
            ..*desk
        }
    }

    /// `pace` busy desks at once (5 by default, `--heavy-pace`): at five, 1,000 conversations and about 134
    /// messages/s. Each conversation keeps the busy desk's pace, so a heavier desk has more conversations, not
    /// faster ones. The lag goal is the 5× desk's whatever the pace: the paces between the busy desk and 5× are
    /// where a flusher that keeps up can be compared with one that falls behind only at 5×.
    pub fn times(pace: usize) -> Self {
        let desk = Self::default();
        let pace = pace.clamp(MIN_HEAVY_PACE, MAX_HEAVY_PACE);
        Self {
            name: HEAVY_DESKS[pace - MIN_HEAVY_PACE],
            conversations: desk.conversations * pace,
            messages_per_second: FIVE_TIMES_PER_SECOND * pace as f64 / 5.0,
            lag_goal: Duration::from_secs(5),
            ..desk
        }
    }

    fn messages(&self) -> usize {
        (self.messages_per_second * self.load.as_secs_f64()).round() as usize
    }
}

/// The heavy desk's paces (`Desk::times`), and what the tables call each.
pub const MIN_HEAVY_PACE: usize = 2;
pub const MAX_HEAVY_PACE: usize = 10;
const HEAVY_DESKS: [&str; MAX_HEAVY_PACE - MIN_HEAVY_PACE + 1] = [
    "2× desk",
    "3× desk",
    "4× desk",
    "5× desk",
    "6× desk",
    "7× desk",
    "8× desk",
    "9× desk",
    "10× desk",
];
/// The 5× desk's messages a second (five busy desks' 25 and a little: the pace issue #25 measured).
const FIVE_TIMES_PER_SECOND: f64 = 134.0;

/// Stream's attempts per delivery (it retries 408/429/5xx and timeouts), its timeout, and our pause between them.
const ATTEMPTS: u32 = 3;
const STREAM_TIMEOUT: Duration = Duration::from_secs(6);
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// How long after the property the timeline notes may take before they are judged: notes wait (20 s by default,
/// up to twice that for the last few, see `sync`, "Notes"), then the sweeper writes them: this, and its period.
const NOTES_GRACE: Duration = Duration::from_secs(60);
/// How often the transcripts are read to see which messages have arrived.
const POLL: Duration = Duration::from_millis(100);
/// The lags (s) at which the fewest calls any flusher could make are also given: from keeping up to a minute behind.
const FLOOR_LAGS: [u64; 6] = [2, 5, 10, 20, 40, 70];
/// About 60 characters of text after the token, as a chat line is.
const FILLER: &str = "thanks, could you check the order status for me?";

/// One message, from the first 2xx for it to its first sight in HubSpot.
#[derive(Debug, Clone)]
struct Tracked {
    token: String,
    /// When its first delivery was sent (`floor`: nothing could write it before).
    sent: Option<Instant>,
    acked: Option<Instant>,
    seen: Option<Instant>,
}

#[derive(Debug, Clone)]
pub struct DeskReport {
    pub design: Design,
    pub messages: usize,
    pub deliveries: usize,
    /// Sorted sync lags of the messages seen in HubSpot.
    pub lags: Vec<Duration>,
    /// Messages never seen in HubSpot within the drain time.
    pub unseen: usize,
    /// Messages no delivery of which got a 2xx.
    pub unacked: usize,
    /// Delivery attempts answered with anything but a 2xx, or not within Stream's timeout (Stream delivers again).
    pub refused_answers: usize,
    /// From the end of the load until every message was in HubSpot (None: not within the drain time).
    pub drained_after: Option<Duration>,
    pub ack_p50: Duration,
    pub ack_p99: Duration,
    pub hubspot_calls: usize,
    /// Calls answered 429, and of them refused by HubSpot's limiter (the same here: no failure is injected).
    pub rate_limited: usize,
    pub limiter_refused: usize,
    /// Calls to the write routes (property and notes), and of them the note writes.
    pub write_calls: usize,
    pub note_writes: usize,
    /// Of `note_writes`, the calls that created notes (the rest updated them).
    pub note_creates: usize,
    /// The fewest HubSpot calls any flusher could make for this run's messages at the desk's lag goal, and at this
    /// run's own lag p99 (`floor::fewest_calls`).
    pub fewest_calls: (usize, usize),
    /// The same at each of [`FLOOR_LAGS`]: what a flusher further behind could save.
    pub fewest_calls_by_lag: Vec<usize>,
    pub sweeper_writes: u32,
    pub peak_in_window: usize,
    pub check: Check,
    /// The same check of the timeline notes, for a design that writes them, and when they were complete (from the
    /// end of the load).
    pub notes: Option<Check>,
    pub notes_after: Option<Duration>,
    pub overlapping_writes: usize,
    /// DynamoDB capacity units the world consumed during the run (store and rate budget).
    pub units: Metered,
    /// Of them, the flushing's (the flusher's rounds and the sweeps); the rest is the acknowledgement's.
    pub flush_units: Metered,
    /// The same units by request kind.
    pub by_request: ByRequest,
    /// chat-sync's flusher runs added up (rounds, contacts claimed, where the time went).
    pub flushes: FlushReport,
    pub webhook_invocations: u64,
    pub webhook_busy: Duration,
    pub sweeps: u64,
    pub sweep_busy: Duration,
    /// How often the sweeper ran.
    pub sweep_every: Duration,
    /// DynamoDB Local's latency meanwhile.
    pub dynamodb_latency: Latencies,
}

type Tracker = Arc<Mutex<Vec<Vec<Tracked>>>>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Delivers one event as Stream does; records the time of its first 2xx and every attempt's latency.
async fn deliver(
    http: reqwest::Client,
    url: String,
    body: String,
    tracker: Tracker,
    (contact, index): (usize, usize),
    acks: Arc<Mutex<Vec<Duration>>>,
    refused: Arc<AtomicUsize>,
) {
    for attempt in 1..=ATTEMPTS {
        let started = Instant::now();
        if let Some(tracked) = lock(&tracker)
            .get_mut(contact)
            .and_then(|c| c.get_mut(index))
        {
            tracked.sent = Some(tracked.sent.map_or(started, |s| s.min(started)));
        }
        let result = http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-signature", sign_webhook(STREAM_SECRET, body.as_bytes()))
            .header("x-webhook-attempt", attempt.to_string())
            .body(body.clone())
            .timeout(STREAM_TIMEOUT)
            .send()
            .await;
        let answered = Instant::now();
        lock(&acks).push(answered - started);
        let retry = match result {
            Ok(response) if response.status().is_success() => {
                if let Some(tracked) = lock(&tracker)
                    .get_mut(contact)
                    .and_then(|c| c.get_mut(index))
                {
                    tracked.acked = Some(tracked.acked.map_or(answered, |a| a.min(answered)));
                }
                false
            }
            Ok(response) => {
                refused.fetch_add(1, Ordering::Relaxed);
                let s = response.status().as_u16();
                s == 408 || s == 429 || s >= 500
            }
            Err(_) => {
                refused.fetch_add(1, Ordering::Relaxed);
                true
            }
        };
        if !retry {
            return;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Reads the transcripts every [`POLL`] and notes when each message first shows; stops once every message sent is
/// seen after the load ended, or `drain` after it. Returns when every message was in HubSpot, if it was.
async fn watch(
    world: &World,
    visitors: &[Visitor],
    tracker: &Tracker,
    load_ended: &OnceLock<Instant>,
    drain: Duration,
) -> Option<Instant> {
    loop {
        tokio::time::sleep(POLL).await;
        let mut waiting = 0;
        for (c, visitor) in visitors.iter().enumerate() {
            let unseen: Vec<(usize, String)> = lock(tracker)
                .get(c)
                .map(|tokens| {
                    tokens
                        .iter()
                        .enumerate()
                        .filter(|(_, t)| t.seen.is_none())
                        .map(|(i, t)| (i, t.token.clone()))
                        .collect()
                })
                .unwrap_or_default();
            if unseen.is_empty() {
                continue;
            }
            let transcript = world.transcript(&visitor.contact_id);
            let now = Instant::now();
            let mut tracker = lock(tracker);
            for (i, token) in unseen {
                if transcript.contains(&token) {
                    if let Some(tracked) = tracker.get_mut(c).and_then(|t| t.get_mut(i)) {
                        tracked.seen = Some(now);
                    }
                } else {
                    waiting += 1;
                }
            }
        }
        if let Some(ended) = load_ended.get() {
            if waiting == 0 {
                return Some(Instant::now());
            }
            if ended.elapsed() >= drain {
                return None;
            }
        }
    }
}

pub async fn run(
    world: &World,
    visitors: &[Visitor],
    deployment: &Deployment,
    design: Design,
    desk: &Desk,
) -> Result<DeskReport, String> {
    let (base, server) = serve(deployment.router.clone()).await?;
    let url = format!("{base}/webhooks");
    let visitors = &visitors[..desk.conversations.min(visitors.len())];
    world.hubspot.faults().set_latency(desk.hubspot_latency);
    let units_before = world.meter.units();
    let flush_units_before = world.meter.flush_units();
    let by_request_before = world.meter.by_request();
    let flushes_before = *lock(&deployment.flushes);
    let calls_before = world.hubspot.calls().len();
    let sweeper_writes_before = deployment.sweeper_writes.load(Ordering::Relaxed);
    let (webhooks_before, webhook_busy_before) =
        (deployment.webhooks.count(), deployment.webhooks.busy());
    let (sweeps_before, sweep_busy_before) = (deployment.sweeps.count(), deployment.sweeps.busy());

    let probe = Probe::start(&world.dynamodb_endpoint, world.store.table()).await;
    let tracker: Tracker = Arc::new(Mutex::new(vec![Vec::new(); visitors.len()]));
    let acks = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let load_ended = OnceLock::new();
    let http = reqwest::Client::new();
    let mut deliveries = Vec::new();
    let generate = async {
        let mut rng = StdRng::seed_from_u64(0xDE5C);
        let mut next = vec![0usize; visitors.len()];
        let mut ticker =
            tokio::time::interval(Duration::from_secs_f64(1.0 / desk.messages_per_second));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for _ in 0..desk.messages() {
            ticker.tick().await;
            let c = rng.random_range(0..visitors.len());
            let i = next[c];
            next[c] += 1;
            let visitor = &visitors[c];
            let (user, name) = if i % 2 == 0 {
                (visitor.visitor_id.as_str(), "Visitor")
            } else {
                (AGENT_ID, "Support")
            };
            let at = Timestamp::now().key();
            let message = json!({
                "id": format!("desk-{c:03}-{i:05}"),
                "text": format!("{} {FILLER}", token(c, i)),
                "type": "regular",
                "created_at": at,
                "updated_at": at,
                "user": { "id": user, "name": name, "role": "user" },
            });
            let body = message_event("message.new", "messaging", &visitor.channel_id, &message)
                .to_string();
            lock(&tracker)[c].push(Tracked {
                token: token(c, i),
                sent: None,
                acked: None,
                seen: None,
            });
            let copies = if rng.random_bool(desk.duplicate_rate) {
                2
            } else {
                1
            };
            for copy in 0..copies {
                // A duplicate comes a little later, as Stream's redeliveries do.
                let pause = Duration::from_millis(if copy == 0 {
                    0
                } else {
                    rng.random_range(0..1_000)
                });
                let task = deliver(
                    http.clone(),
                    url.clone(),
                    body.clone(),
                    tracker.clone(),
                    (c, i),
                    acks.clone(),
                    refused.clone(),
                );
                deliveries.push(tokio::spawn(async move {
                    tokio::time::sleep(pause).await;
                    task.await;
                }));
            }
        }
        let _ = load_ended.set(Instant::now());
    };
    let (_, drained) = tokio::join!(
        generate,
        watch(world, visitors, &tracker, &load_ended, desk.drain)
    );
    let delivery_count = deliveries.len();
    for delivery in deliveries {
        let _ = delivery.await;
    }
    server.abort();
    world.hubspot.faults().clear();
    let dynamodb_latency = probe.finish();

    let tracked = lock(&tracker).clone();
    let mut lags = Vec::new();
    let (mut unseen, mut unacked) = (0, 0);
    for t in tracked.iter().flatten() {
        match (t.acked, t.seen) {
            (Some(acked), Some(seen)) => lags.push(seen.saturating_duration_since(acked)),
            (None, _) => unacked += 1,
            (Some(_), None) => unseen += 1,
        }
    }
    lags.sort();
    let delivered: Vec<Vec<floor::Delivered>> = tracked
        .iter()
        .map(|messages| {
            messages
                .iter()
                .filter_map(|t| {
                    Some(floor::Delivered {
                        sent: t.sent?,
                        acked: t.acked?,
                    })
                })
                .collect()
        })
        .collect();
    let fewest_calls = (
        floor::fewest_calls(&delivered, desk.lag_goal, deployment.notes),
        floor::fewest_calls(&delivered, percentile(&lags, 0.99), deployment.notes),
    );
    let fewest_calls_by_lag = FLOOR_LAGS
        .iter()
        .map(|lag| floor::fewest_calls(&delivered, Duration::from_secs(*lag), deployment.notes))
        .collect();
    let mut acks = lock(&acks).clone();
    acks.sort();
    let expected: Vec<Vec<String>> = tracked
        .iter()
        .map(|tokens| tokens.iter().map(|t| t.token.clone()).collect())
        .collect();
    let check = check(world, visitors, &expected);
    // The notes are written after the property, in the same round or a later one: judge them once complete, or
    // after a grace period.
    let ended = load_ended.get().copied();
    let mut notes_after = None;
    let notes = if deployment.notes {
        let give_up = Instant::now() + NOTES_GRACE + deployment.sweep_every;
        loop {
            let notes = total(&check_notes_each(world, visitors, &expected));
            if notes.is_clean() {
                notes_after = ended.map(|e| e.elapsed());
            }
            if notes.is_clean() || Instant::now() >= give_up {
                break Some(notes);
            }
            tokio::time::sleep(POLL).await;
        }
    } else {
        None
    };
    // A sweep still running (writing the last notes, say) ends before the figures are taken, so its calls are
    // counted as the sweeper's and its units with the rest: a sweep is at most its budget and a round past it.
    if !deployment.sweeps.settled(SWEEP_BUDGET * 2).await {
        eprintln!("bench: a sweep still ran when the run's figures were taken; its calls are not the sweeper's");
    }
    let calls = world.hubspot.calls();
    let calls = &calls[calls_before.min(calls.len())..];
    Ok(DeskReport {
        design,
        messages: expected.iter().map(Vec::len).sum(),
        deliveries: delivery_count,
        lags,
        unseen,
        unacked,
        refused_answers: refused.load(Ordering::Relaxed),
        drained_after: drained
            .zip(ended)
            .map(|(d, e)| d.saturating_duration_since(e)),
        ack_p50: percentile(&acks, 0.5),
        ack_p99: percentile(&acks, 0.99),
        hubspot_calls: calls.len(),
        rate_limited: calls.iter().filter(|c| c.status == 429).count(),
        limiter_refused: world.hubspot.rate_limited(),
        write_calls: calls.iter().filter(|c| is_write(c.route)).count(),
        note_writes: calls
            .iter()
            .filter(|c| NOTE_ROUTES.contains(&c.route))
            .count(),
        note_creates: calls
            .iter()
            .filter(|c| matches!(c.route, "notes_batch_create" | "notes_create"))
            .count(),
        fewest_calls,
        fewest_calls_by_lag,
        sweeper_writes: deployment.sweeper_writes.load(Ordering::Relaxed) - sweeper_writes_before,
        peak_in_window: world.hubspot.peak_requests_in_window(),
        check,
        notes,
        notes_after,
        overlapping_writes: world.hubspot.overlapping_patches().len(),
        units: world.meter.units() - units_before,
        flush_units: world.meter.flush_units() - flush_units_before,
        by_request: super::meter::since(&world.meter.by_request(), &by_request_before),
        flushes: since(*lock(&deployment.flushes), &flushes_before),
        webhook_invocations: deployment.webhooks.count() - webhooks_before,
        webhook_busy: deployment
            .webhooks
            .busy()
            .saturating_sub(webhook_busy_before),
        sweeps: deployment.sweeps.count() - sweeps_before,
        sweep_busy: deployment.sweeps.busy().saturating_sub(sweep_busy_before),
        sweep_every: deployment.sweep_every,
        dynamodb_latency,
    })
}

/// What a flusher did between two reads of its running total.
fn since(now: FlushReport, before: &FlushReport) -> FlushReport {
    let t = (now.times, before.times);
    FlushReport {
        rounds: now.rounds - before.rounds,
        calls: now.calls - before.calls,
        synced: now.synced - before.synced,
        behind: now.behind - before.behind,
        fenced: now.fenced - before.fenced,
        deferred: now.deferred - before.deferred,
        redirected: now.redirected - before.redirected,
        parked: now.parked - before.parked,
        refused: now.refused - before.refused,
        busy: false,
        claimed: now.claimed - before.claimed,
        held: now.held - before.held,
        notes_only: now.notes_only - before.notes_only,
        left_woken: now.left_woken - before.left_woken,
        notes_postponed: now.notes_postponed - before.notes_postponed,
        times: RoundTimes {
            claim_us: t.0.claim_us - t.1.claim_us,
            read_us: t.0.read_us - t.1.read_us,
            render_us: t.0.render_us - t.1.render_us,
            marks_us: t.0.marks_us - t.1.marks_us,
            hubspot_us: t.0.hubspot_us - t.1.hubspot_us,
            settle_us: t.0.settle_us - t.1.settle_us,
        },
    }
}

/// Units per message acknowledged by request kind, largest first within the acknowledgement and the flushing.
fn by_request(r: &DeskReport) -> String {
    let m = (r.messages - r.unacked).max(1) as f64;
    let part = |flushing: bool| {
        let mut kinds: Vec<_> = r
            .by_request
            .iter()
            .filter(|(kind, _)| kind.flushing == flushing)
            .collect();
        kinds.sort_by(|a, b| (b.1.read + b.1.write).total_cmp(&(a.1.read + a.1.write)));
        kinds
            .iter()
            .map(|(kind, u)| {
                let op = format!("{} {}", kind.operation, kind.item);
                let req = u.requests as f64 / m;
                match (u.write > 0.0, u.read > 0.0) {
                    // Billed within another request: DynamoDB's units that DynamoDB Local does not report.
                    (true, _) if u.requests == 0 => {
                        format!("{op} {:.2} W (billed, not reported)", u.write / m)
                    }
                    (true, _) => format!("{op} {:.2} W ({req:.2} req)", u.write / m),
                    (false, true) => format!("{op} {:.2} R ({req:.2} req)", u.read / m),
                    (false, false) => format!("{op} ({req:.2} req)"),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("{} \\| {}", part(false), part(true))
}

/// Per unit of `count`: requests, read units, write units.
fn per(units: Metered, count: u64) -> String {
    let count = count.max(1) as f64;
    format!(
        "{:.2} / {:.2} / {:.2}",
        units.requests as f64 / count,
        units.read / count,
        units.write / count
    )
}

pub fn table(desk: &Desk, runs: &[DeskReport]) -> String {
    let mut header = vec![desk.name.to_owned()];
    // Several runs of one design are numbered.
    for (i, run) in runs.iter().enumerate() {
        let same = runs.iter().filter(|r| r.design == run.design).count();
        let nth = runs[..=i].iter().filter(|r| r.design == run.design).count();
        header.push(if same > 1 {
            format!("{} #{nth}", run.design.name())
        } else {
            run.design.name().to_owned()
        });
    }
    let row = |name: &str, value: &dyn Fn(&DeskReport) -> String| {
        let mut row = vec![name.to_owned()];
        row.extend(runs.iter().map(value));
        row
    };
    let rows = vec![
        row("messages (deliveries incl. duplicates)", &|r| {
            format!("{} ({})", r.messages, r.deliveries)
        }),
        row(
            "**sync lag** p50 / p99 / max (Stream's 2xx → line in HubSpot)",
            &|r| {
                format!(
                    "{} / {} / {}",
                    secs(percentile(&r.lags, 0.5)),
                    secs(percentile(&r.lags, 0.99)),
                    secs(r.lags.last().copied().unwrap_or_default())
                )
            },
        ),
        row(
            &format!(
                "messages not in HubSpot {} s after the load (not in the lag figures)",
                desk.drain.as_secs()
            ),
            &|r| r.unseen.to_string(),
        ),
        row("messages never acknowledged", &|r| r.unacked.to_string()),
        row(
            "webhook answers refused (not 2xx, or none within Stream's timeout: delivered again)",
            &|r| r.refused_answers.to_string(),
        ),
        row("every message in HubSpot, after the load ended", &|r| {
            r.drained_after.map(secs).unwrap_or_else(|| "never".into())
        }),
        row("webhook ack p50 / p99", &|r| {
            format!("{} / {}", ms(r.ack_p50), ms(r.ack_p99))
        }),
        row("HubSpot requests (per message)", &|r| {
            format!(
                "{} ({:.3})",
                r.hubspot_calls,
                r.hubspot_calls as f64 / r.messages.max(1) as f64
            )
        }),
        row(
            &format!(
                "HubSpot requests: the fewest any flusher could make for these messages (instant writes, full batches, each note \
                 once; docs/design-flusher.md 11): at lag p99 {} s \\| at this run's own lag p99",
                desk.lag_goal.as_secs()
            ),
            &|r| {
                let per = |calls: usize| {
                    format!("{calls} ({:.3})", calls as f64 / r.messages.max(1) as f64)
                };
                format!("{} \\| {}", per(r.fewest_calls.0), per(r.fewest_calls.1))
            },
        ),
        row(
            &format!(
                "the same at lag p99 {} s",
                FLOOR_LAGS.map(|lag| lag.to_string()).join(" / ")
            ),
            &|r| {
                r.fewest_calls_by_lag
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(" / ")
            },
        ),
        row(
            "429s (share of HubSpot requests); of them the limiter's",
            &|r| {
                format!(
                    "{}; {}",
                    share(r.rate_limited, r.hubspot_calls),
                    r.limiter_refused
                )
            },
        ),
        row(
            "write calls: property + timeline notes, of them creating (the sweeper's flushes)",
            &|r| {
                format!(
                    "{} + {}, {} ({})",
                    r.write_calls - r.note_writes,
                    r.note_writes,
                    r.note_creates,
                    r.sweeper_writes
                )
            },
        ),
        row(
            "most requests in one rolling 10 s (HubSpot allows 100)",
            &|r| r.peak_in_window.to_string(),
        ),
        row(
            "missing (not synced yet) / duplicated / out-of-order lines at the end (property)",
            &|r| {
                format!(
                    "{} / {} / {}",
                    r.check.lost, r.check.duplicated, r.check.out_of_order
                )
            },
        ),
        row(
            "the same in the timeline notes (judged once complete, or 60 s after the property)",
            &|r| {
                r.notes.map_or_else(
                    || "—".into(),
                    |n| format!("{} / {} / {}", n.lost, n.duplicated, n.out_of_order),
                )
            },
        ),
        row(
            "timeline notes complete, after the load ended",
            &|r| match (r.notes, r.notes_after) {
                (None, _) => "—".into(),
                (Some(_), Some(after)) => secs(after),
                (Some(_), None) => "not within the grace period".into(),
            },
        ),
        row("overlapping writes to one contact", &|r| {
            r.overlapping_writes.to_string()
        }),
        row("DynamoDB requests per message", &|r| {
            format!("{:.1}", r.units.requests as f64 / r.messages.max(1) as f64)
        }),
        row("DynamoDB read / write units per message (all)", &|r| {
            let m = r.messages.max(1) as f64;
            format!("{:.2} / {:.2}", r.units.read / m, r.units.write / m)
        }),
        row(
            "acknowledging: DynamoDB requests / RCU / WCU per message acknowledged",
            &|r| per(r.units - r.flush_units, (r.messages - r.unacked) as u64),
        ),
        row(
            "flushing: DynamoDB requests / RCU / WCU per contact claimed (rounds and sweeps)",
            &|r| per(r.flush_units, u64::from(r.flushes.claimed)),
        ),
        row(
            "units per message acknowledged, by request and the item it names (a query: its index): acknowledging \\| flushing (R read, W write; refused: failed conditions; conflict: refused for a transaction in flight; ConditionCheck: what DynamoDB bills for a transaction's checks, which DynamoDB Local does not report)",
            &|r| by_request(r),
        ),
        row("flusher rounds; contacts claimed per round", &|r| {
            format!(
                "{}; {:.1}",
                r.flushes.rounds,
                f64::from(r.flushes.claimed) / f64::from(r.flushes.rounds.max(1))
            )
        }),
        row(
            "woken contacts left in the wake set by a round past the budget (waiting for the next flusher or the sweeper)",
            &|r| r.flushes.left_woken.to_string(),
        ),
        row(
            "notes due while their conversation still talked, made to wait for it to pause (FLUSH_NOTE_MAX_WAIT_MS)",
            &|r| r.flushes.notes_postponed.to_string(),
        ),
        row(
            "a round's mean time: claim / read / render / marks / HubSpot / settle",
            &|r| {
                let t = r.flushes.times;
                let mean = |us: u64| {
                    ms(Duration::from_micros(
                        us / u64::from(r.flushes.rounds.max(1)),
                    ))
                };
                format!(
                    "{} / {} / {} / {} / {} / {}",
                    mean(t.claim_us),
                    mean(t.read_us),
                    mean(t.render_us),
                    mean(t.marks_us),
                    mean(t.hubspot_us),
                    mean(t.settle_us)
                )
            },
        ),
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
        "{}: {} conversations, {:.0} messages/s for {} s (a random conversation's next message each tick), \
         {:.0} % delivered twice, every delivery its own request with Stream's retries; HubSpot double {} ms per \
         call with its 100 / 10 s limit on; sweeper every {} s (every 60 s deployed).\n\n{}",
        desk.name,
        desk.conversations,
        desk.messages_per_second,
        desk.load.as_secs(),
        desk.duplicate_rate * 100.0,
        desk.hubspot_latency.as_millis(),
        runs.first().map_or(0, |r| r.sweep_every.as_secs()),
        markdown(&header, &rows)
    )
}

/// us-east-1 on-demand prices (2024).
const READ_PER_MILLION: f64 = 0.125;
const WRITE_PER_MILLION: f64 = 0.625;
const LAMBDA_PER_GB_SECOND: f64 = 0.000_016_666_7;
const LAMBDA_PER_MILLION_REQUESTS: f64 = 0.20;
const LAMBDA_GB: f64 = 128.0 / 1024.0;

/// What one design costs per 1,000 messages, from its busy-desk run, with the computation spelled out.
pub fn cost(runs: &[DeskReport]) -> String {
    let mut out = String::from(
        "Cost per 1,000 messages, from the busy-desk run. Prices: us-east-1 on-demand, 2024 — DynamoDB $0.125 per \
         million read request units and $0.625 per million write request units; Lambda (x86) $0.0000166667 per \
         GB-s and $0.20 per million requests. DynamoDB units are every request's consumed capacity (store and \
         shared rate budget; a refused conditional write counted as 1 write unit), metered at the SDK client. \
         Lambda GB-s is an estimate: the measured busy time of every webhook invocation (the handler plus the \
         flush it runs after the response, which the internal extension keeps billed: the flusher's linger and \
         rounds included) and of every sweep (every few seconds here, every minute deployed), at 128 MB; timings on \
         loopback, so real network round trips would add to them.\n\n",
    );
    let mut rows = Vec::new();
    for r in runs {
        let per_k = 1_000.0 / r.messages.max(1) as f64;
        let reads = r.units.read * per_k;
        let writes = r.units.write * per_k;
        let invocations = (r.webhook_invocations + r.sweeps) as f64 * per_k;
        let busy = (r.webhook_busy + r.sweep_busy).as_secs_f64() * per_k;
        let gb_seconds = busy * LAMBDA_GB;
        let dollars_reads = reads * READ_PER_MILLION / 1e6;
        let dollars_writes = writes * WRITE_PER_MILLION / 1e6;
        let dollars_requests = invocations * LAMBDA_PER_MILLION_REQUESTS / 1e6;
        let dollars_compute = gb_seconds * LAMBDA_PER_GB_SECOND;
        let total = dollars_reads + dollars_writes + dollars_requests + dollars_compute;
        out.push_str(&format!(
            "- {}: {} messages; DynamoDB {:.0} read + {:.0} write units ({} requests); {} HubSpot requests; {} \
             webhook invocations busy {} in all (mean {}); {} sweeps busy {}.\n  Per 1,000 messages: {reads:.0} \
             RRU × $0.125/M = ${dollars_reads:.6}; {writes:.0} WRU × $0.625/M = ${dollars_writes:.6}; \
             {invocations:.0} requests × $0.20/M = ${dollars_requests:.6}; {busy:.1} s × 0.125 GB = \
             {gb_seconds:.2} GB-s × $0.0000166667 = ${dollars_compute:.6}; total ${total:.6}.\n",
            r.design.name(),
            r.messages,
            r.units.read,
            r.units.write,
            r.units.requests,
            r.hubspot_calls,
            r.webhook_invocations,
            secs(r.webhook_busy),
            ms(r
                .webhook_busy
                .checked_div(r.webhook_invocations.max(1) as u32)
                .unwrap_or_default()),
            r.sweeps,
            secs(r.sweep_busy),
        ));
        rows.push(vec![
            r.design.name().to_owned(),
            format!("{reads:.0}"),
            format!("{writes:.0}"),
            format!("{:.0}", r.hubspot_calls as f64 * per_k),
            format!("{invocations:.0}"),
            format!("{gb_seconds:.2}"),
            format!("${total:.4}"),
        ]);
    }
    out.push('\n');
    out.push_str(&markdown(
        &[
            "per 1,000 messages",
            "DynamoDB read units",
            "DynamoDB write units",
            "HubSpot requests",
            "Lambda requests",
            "Lambda GB-s (128 MB)",
            "cost",
        ],
        &rows,
    ));
    out
}
