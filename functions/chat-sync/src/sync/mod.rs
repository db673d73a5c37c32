//! Writing transcripts to HubSpot: batched, within one shared rate budget, never overtaken by a late write.
//! Transcripts go to one timeline note per conversation and/or the `chat_transcript` contact property
//! (`TRANSCRIPT_TARGETS`).
//!
//! **Who writes.** One *flusher* at a time (a lease on the `FLUSHER` item, a DynamoDB conditional write) takes the
//! contacts waiting in the queue, claims each one's own lease, renders what each needs from the stored messages and
//! writes them all in a few batch calls (contacts `batch/update` for the property, notes `batch/update` and
//! `batch/create`): a burst over many contacts becomes a few calls, not one per contact.
//! A webhook, once it has answered Stream, either becomes the flusher or *wakes* the running one by adding its
//! contact to the flusher item's wake set (a conditional update that succeeds only while a flusher holds the
//! lease). An idle flusher releases its lease only if no contact was woken since its last look (the same
//! conditional write), so a change is never stranded between "flusher finished" and "newcomer gave up": group
//! commit across contacts, as the per-contact release (below) is within one. (One out of time hands over: below.)
//!
//! **Per contact.** The per-contact lease is what promises no lost update: only its holder writes the contact. The
//! holder releases it in a transaction that marks the contact synced only if no change arrived since the version it
//! rendered; otherwise the contact stays queued, and its webhook has woken the flusher for the next round.
//!
//! **Fencing.** HubSpot has no conditional write, and an ambiguous outcome (timeout, 5xx, a connection lost after
//! sending) may still land later, over a newer transcript. So after one, the holder keeps the contact's lease until
//! it expires: a write is only sent while the lease has at least `write_timeout + late_write_window` left, so it
//! expires no earlier than `late_write_window` after the ambiguous answer, and every later write *starts after*
//! the ambiguous one could still land. That later write renders everything again, so it carries every change.
//!
//! **Notes.** Each conversation changed since its notes were last written (`pending_notes`, cleared only with a
//! synced mark whose notes were written) has its notes rewritten in place; a part with no note yet gets one, created
//! with the conversation marked first, so a creation whose answer never came is found on the contact's timeline by
//! its marker and adopted instead of repeated (fencing holds that writer back until such a creation could still
//! land). A new message's notes *wait* (`note_wait`, `FLUSH_NOTE_WAIT_MS`) from the oldest change not in them
//! (`notes_since`), and a notes round that finds them due while their conversation still talks (a change younger
//! than the wait) makes them wait again from its last change, up to `note_max_wait` from the oldest
//! (`quiet_notes`): rounds write the property alone, and release the contact synced at its version with its notes
//! pending, onto the notes' queue (`notes-due`). Notes go out in *notes rounds*, rounds that find a batch of notes
//! due, or the longest-waiting at twice the wait, or nothing else to write (a sweep at a quiet desk). Such a round
//! writes the due notes of every contact it claims, and takes the due contacts of that queue after its batch of
//! contacts behind, if it has the time (see `rounds`); a flusher behind (a full page of the queue) runs them in a
//! round of their own beside its rounds instead (`aside`), so that they do not hold the property back. So one note
//! write takes every message of a wait, and one call a batch of notes, instead of a call every round for the few
//! that came due since the last. The release that marks the notes written takes the contact off that queue. A
//! change that may take text out of a note (an edit, a deletion, an erasure) sets `notes_now`: its notes go out in
//! the next round. The wait changes when notes are written, never what: the rendering, the creation markers,
//! fencing and the version check of the release are the same, so every message is still in its note once; and a
//! later message never waits for the notes (a change queues the contact for its property whatever its notes'
//! state).
//!
//! **Expired messages.** For a contact whose messages expired here (`retention`), HubSpot holds the only copy of
//! some lines: the round reads the property back (`contacts/batch/read`, batched, under the same budget and lease)
//! and renders around it (`domain::archive`), and its notes so far are frozen, later messages starting the next part.
//!
//! **Bounded.** A flusher started by a webhook starts no new round after its budget. Before its last round (the one
//! after which no other would start in time, were it as long as the one before) it gives the lease up, leaving the
//! time its next round would have been due, after that round and a linger: a webhook arriving during that round
//! becomes the next flusher, which keeps the pace, rather than waking one on its way out (whose wake set would wait
//! for the sweeper, a minute when deployed). What woke it since its last look goes into the last round too. A
//! webhook that becomes the flusher takes its own contact into its first round, whatever the queue's index shows
//! yet. Each round reads only the newest messages each transcript can show. Contacts HubSpot no longer has (404,
//! even by e-mail) or refuses (400) are parked with the reason, out of the queue, until an operator re-queues them.

mod aside;
mod batch;
mod note_write;
mod notes;
mod round;

use crate::config::FlushSettings;
use crate::domain::{ContactId, Timestamp};
use crate::ports::{
    BudgetError, Caller, Channels, Crm, FlusherLease, FlusherTurn, LeaseOwner, Leases, MessageLog,
    RateBudget, StoreError, SyncQueue, SyncRecords, TimelineNotes, MAX_BATCH,
};
use aside::Aside;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Claims (lease, sync record, messages) made at once in a round.
const CLAIM_CONCURRENCY: usize = 16;
/// Time kept free at the end of a flusher's budget for its last round to claim, read and render before it: a round
/// whose claims end past the budget writes nothing ("the flush budget ran out while claiming"). Claiming a batch
/// takes ~50 ms at a busy desk and ~200 ms at five times it (docs/benchmarks-flusher.md).
const LINGER_MARGIN: Duration = Duration::from_millis(250);
/// Clock skew allowed between Lambdas comparing lease expiry times.
const CLOCK_MARGIN: Duration = Duration::from_secs(1);
/// How often a webhook tries to become the flusher or wake it when the lease changes hands under it.
const WAKE_ATTEMPTS: usize = 3;

/// The next linger: `linger`, or less if `claimed` contacts came in `over` at a pace that fills a batch sooner.
/// The linger exists to gather a batch per HubSpot call; waiting past a full batch only adds lag, so at a slow
/// pace it stays `linger` (as many calls as before) and at a fast one it is the time a batch takes to fill.
fn adaptive_linger(linger: Duration, claimed: u32, over: Duration) -> Duration {
    if claimed == 0 || over.is_zero() {
        return linger;
    }
    let fill = over.mul_f64(MAX_BATCH as f64 / f64::from(claimed));
    linger.min(fill)
}

/// Whether a round leaves a backlog behind it (then the next goes without a linger): it wrote a full batch, or the
/// queue's page it drew from was full (`page_full`: at least a batch waiting) and it claimed at least half of it,
/// the rest being busy under another flusher's last round or written already. Judged by the written count alone, a
/// round a few short of a batch lingered while the queue was full, for about a round's time at 5×: half the
/// flusher's pace exactly when it was behind, which set it further behind. The half keeps a round that found most
/// of its page busy from spinning on it.
fn behind(round: &FlushReport, page_full: bool) -> bool {
    // Contacts claimed for their notes alone came from the notes' queue, not the backlog.
    let written = (round.synced + round.behind + round.fenced).saturating_sub(round.notes_only);
    written >= MAX_BATCH as u32
        || (page_full && round.claimed.saturating_sub(round.notes_only) as usize >= MAX_BATCH / 2)
}

/// Appends to a round's `candidates` those of `contacts` not among them yet, in order.
fn add_new<'a>(candidates: &mut Vec<ContactId>, contacts: impl IntoIterator<Item = &'a ContactId>) {
    for contact in contacts {
        if !candidates.contains(contact) {
            candidates.push(contact.clone());
        }
    }
}

/// Whether a round is a *notes round* (see "Notes"): a batch of notes is due (`due` of them, the longest-waiting
/// `oldest`), or the longest-waiting has waited twice `wait`, so a few stragglers go out too, or the round has
/// nothing else to write (`idle`: a sweep at a quiet desk, whose next chance is a sweep later).
fn notes_round(
    due: usize,
    oldest: Option<Timestamp>,
    wait: Duration,
    now: Timestamp,
    idle: bool,
) -> bool {
    due >= MAX_BATCH
        || oldest.is_some_and(|since| since.later_by(wait * 2) <= now)
        || (idle && due > 0)
}

/// The linger before a new flusher's first round: `linger`, or, when the flusher before handed the lease over with
/// its next round due at `turn.next_round_ms`, the time until then (none once it has passed). That is its last
/// round's expected time and a linger after the handover, so it can be longer than a linger; a due time further
/// off than two lingers and the clock margin is taken for another clock's error, and waiting it out would only
/// add lag.
fn first_linger(linger: Duration, turn: FlusherTurn, now_ms: i64) -> Duration {
    match turn.next_round_ms {
        None => linger,
        Some(due) => (linger * 2 + CLOCK_MARGIN).min(Duration::from_millis(
            u64::try_from(due.saturating_sub(now_ms)).unwrap_or(0),
        )),
    }
}

/// A webhook's share of the flushing, run after its response has been sent: on Lambda by an internal extension
/// (the environment is frozen only once it is done), in a long-lived server by a spawned task, in tests inline.
pub struct PendingFlush {
    sync: TranscriptSync,
    contact: ContactId,
    start_by: Instant,
}

impl PendingFlush {
    pub fn contact(&self) -> &ContactId {
        &self.contact
    }

    /// Becomes the flusher, or hands the contact to the one running. Failures are logged: the contact stays
    /// queued for the next flusher or the sweeper.
    pub async fn run(self) -> Option<FlushOutcome> {
        match self.sync.flush_for(&self.contact, self.start_by).await {
            Ok(outcome) => {
                tracing::debug!(contact_id = %self.contact, ?outcome, "flush finished");
                Some(outcome)
            }
            Err(error) => {
                tracing::warn!(%error, contact_id = %self.contact, "transcript flush failed; the sweeper will retry");
                None
            }
        }
    }
}

/// What a webhook's flush did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushOutcome {
    /// It was the flusher for a while.
    Flushed(FlushReport),
    /// The running flusher took the contact.
    Handed,
    /// The flusher lease kept changing hands: the contact waits in the queue.
    Queued,
}

/// What one flusher did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FlushReport {
    /// Rounds run (each claims a batch of waiting contacts).
    pub rounds: u32,
    /// HubSpot batch calls sent: writes, and reads of the property of contacts whose messages expired.
    pub calls: u32,
    /// Contacts whose newest transcript is now in HubSpot.
    pub synced: u32,
    /// Contacts written whose newer changes wait for the next round.
    pub behind: u32,
    /// Contacts whose write may still land: their lease is left to expire before anyone writes them again.
    pub fenced: u32,
    /// Contacts left queued after a refused or failed write (rate limit, HubSpot down), or for lack of time.
    pub deferred: u32,
    /// Contacts HubSpot merged into another record: written there from now on.
    pub redirected: u32,
    /// Contacts taken out of the queue for good (see the backlog command).
    pub parked: u32,
    /// Batches not applied: HubSpot refused them as a whole (rate limit, unavailable, token), or no permit was left.
    /// The flusher stops for now rather than hammer it; the contacts stay queued.
    pub refused: u32,
    /// Whether the flusher lease was held by someone else (nothing done).
    pub busy: bool,
    /// Contacts whose lease a round took (written or not).
    pub claimed: u32,
    /// Contacts a round could not take: another holder's lease was on them (another flusher's round, a write
    /// fenced), or an erasure was taking them or had. What is queued of them stays queued.
    pub held: u32,
    /// Of `claimed`, contacts taken for their notes alone (their property in sync, see "Notes"): neither the pace
    /// the linger follows nor a backlog.
    pub notes_only: u32,
    /// Contacts that woke a flusher during a round that ran past its budget (not known to be its last): they stay
    /// in the wake set for whoever takes the lease next, the sweeper if no webhook comes.
    pub left_woken: u32,
    /// Contacts whose notes came due while their conversation still talked: they wait again, from its last change
    /// (see "Notes").
    pub notes_postponed: u32,
    /// Where the rounds' time went.
    pub times: RoundTimes,
}

/// Where rounds spend their time, in microseconds summed over rounds: what says which part of a round to make
/// cheaper (`make bench` prints it). Each phase is wall time; the claim phase runs its contacts concurrently, so its
/// wall time is split between taking leases, reading and rendering in proportion to the time each took.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RoundTimes {
    /// Taking the contacts' leases.
    pub claim_us: u64,
    /// Reading what each contact needs (its version, messages, conversations).
    pub read_us: u64,
    /// Rendering transcripts and notes.
    pub render_us: u64,
    /// DynamoDB writes between HubSpot calls: lease renewals, and each new note's marker before its creation.
    pub marks_us: u64,
    /// HubSpot calls, their budget permits included.
    pub hubspot_us: u64,
    /// Settling each contact: notes saved, lease released with the synced mark, or kept, parked, re-queued.
    pub settle_us: u64,
}

impl RoundTimes {
    fn add(&mut self, other: RoundTimes) {
        self.claim_us += other.claim_us;
        self.read_us += other.read_us;
        self.render_us += other.render_us;
        self.marks_us += other.marks_us;
        self.hubspot_us += other.hubspot_us;
        self.settle_us += other.settle_us;
    }
}

impl FlushReport {
    /// Adds up what two flusher runs did.
    pub fn add(&mut self, other: &FlushReport) {
        self.rounds += other.rounds;
        self.calls += other.calls;
        self.synced += other.synced;
        self.behind += other.behind;
        self.fenced += other.fenced;
        self.deferred += other.deferred;
        self.redirected += other.redirected;
        self.parked += other.parked;
        self.refused += other.refused;
        self.claimed += other.claimed;
        self.held += other.held;
        self.notes_only += other.notes_only;
        self.left_woken += other.left_woken;
        self.notes_postponed += other.notes_postponed;
        self.times.add(other.times);
    }
}

/// What the flusher needs from storage: the queue and the leases, what it renders from (the message log, the
/// conversations' notes, the sync record) and the e-mail that finds a merged contact again.
pub trait FlushStore:
    Channels + MessageLog + TimelineNotes + SyncRecords + SyncQueue + Leases + FlusherLease
{
}

impl<T> FlushStore for T where
    T: Channels
        + MessageLog
        + TimelineNotes
        + SyncRecords
        + SyncQueue
        + Leases
        + FlusherLease
        + ?Sized
{
}

#[derive(Clone)]
pub struct TranscriptSync {
    store: Arc<dyn FlushStore>,
    crm: Arc<dyn Crm>,
    budget: Arc<dyn RateBudget>,
    settings: FlushSettings,
}

impl TranscriptSync {
    pub fn new(
        store: Arc<dyn FlushStore>,
        crm: Arc<dyn Crm>,
        budget: Arc<dyn RateBudget>,
        settings: FlushSettings,
    ) -> Self {
        Self {
            store,
            crm,
            budget,
            settings,
        }
    }

    /// A flush for a webhook to run once it has answered.
    pub fn after_response(&self, contact: ContactId, received: Instant) -> PendingFlush {
        PendingFlush {
            sync: self.clone(),
            contact,
            start_by: received + self.settings.webhook_budget,
        }
    }

    async fn flush_for(
        &self,
        contact: &ContactId,
        start_by: Instant,
    ) -> Result<FlushOutcome, StoreError> {
        // Waking first: at a busy desk a flusher is almost always running, so most webhooks make one write (the
        // wake-up) rather than a refused lease attempt and then the wake-up. Either order hands the contact over.
        for _ in 0..WAKE_ATTEMPTS {
            if self.store.wake_flusher(contact).await? {
                return Ok(FlushOutcome::Handed);
            }
            let owner = LeaseOwner::random();
            if let Some(turn) = self
                .store
                .acquire_flusher(&owner, self.settings.lease_ttl)
                .await?
            {
                let linger = self.settings.linger;
                let report = self
                    .hold(Turn {
                        owner: &owner,
                        start_by,
                        linger,
                        first: first_linger(linger, turn, Timestamp::now().unix_millis()),
                        own: Some(contact),
                    })
                    .await?;
                return Ok(FlushOutcome::Flushed(report));
            }
            // Taken by another webhook between the two: wake that one.
        }
        Ok(FlushOutcome::Queued)
    }

    /// Runs the flusher if nobody does (the sweeper): its first round at once (what webhooks left), unless a flusher
    /// handed the lease over with a round due (then at that time), and the next ones at the desk's pace, until the
    /// queue is empty or `start_by`. Webhooks wake whoever holds the lease, the sweeper too: with no linger between
    /// its rounds it would write a live desk's wake-ups a few at a time (at a busy desk, twice the HubSpot calls).
    pub async fn sweep(&self, start_by: Instant) -> Result<FlushReport, StoreError> {
        let owner = LeaseOwner::random();
        let Some(turn) = self
            .store
            .acquire_flusher(&owner, self.settings.lease_ttl)
            .await?
        else {
            return Ok(FlushReport {
                busy: true,
                ..FlushReport::default()
            });
        };
        let linger = self.settings.linger;
        let first = match turn.next_round_ms {
            Some(_) => first_linger(linger, turn, Timestamp::now().unix_millis()),
            None => Duration::ZERO,
        };
        self.hold(Turn {
            owner: &owner,
            start_by,
            linger,
            first,
            own: None,
        })
        .await
    }

    /// Rounds under the flusher lease, until nothing waits or the time is up.
    async fn hold(&self, turn: Turn<'_>) -> Result<FlushReport, StoreError> {
        let mut report = FlushReport::default();
        let result = self.rounds(&turn, &mut report).await;
        if result.is_err() {
            // Storage failed mid-flush: hand the lease back so the next flusher need not wait for it to expire.
            if let Err(error) = self.store.release_flusher(turn.owner, false).await {
                tracing::warn!(%error, "could not release the flusher lease; it will expire");
            }
        }
        result.map(|()| report)
    }

    /// The rounds of a turn, and the notes rounds beside them when it is behind (see `aside`).
    async fn rounds(&self, turn: &Turn<'_>, report: &mut FlushReport) -> Result<(), StoreError> {
        let aside = Aside::default();
        let (result, ()) = futures::join!(
            async {
                let result = self.rounds_with(turn, report, &aside).await;
                aside.close();
                result
            },
            self.notes_beside(&aside, turn.start_by),
        );
        result?;
        report.add(&aside.finish()?);
        Ok(())
    }

    async fn rounds_with(
        &self,
        turn: &Turn<'_>,
        report: &mut FlushReport,
        aside: &Aside,
    ) -> Result<(), StoreError> {
        let Turn {
            owner,
            start_by,
            linger,
            ..
        } = *turn;
        let mut wait = turn.first;
        let mut own = turn.own;
        // When the last round claimed (to see how fast contacts come in). The first round's contacts came in
        // since the turn began, or, after a handover, during the last round of the flusher before, which its
        // first linger waited out.
        let mut claimed_at = Instant::now();
        // How long the last round took: what the next one is expected to take (none run yet: nothing known).
        let mut took = Duration::ZERO;
        loop {
            // Let the rest of a burst land first: many messages, many contacts, one write.
            let room = start_by
                .saturating_duration_since(Instant::now())
                .saturating_sub(LINGER_MARGIN);
            if !wait.is_zero() && !room.is_zero() {
                tokio::time::sleep(wait.min(room)).await;
            }
            // When the next round is due, were there one: the last round hands the pace over with the lease.
            let next_round_ms = Timestamp::now().unix_millis() + wait.as_millis() as i64;
            if Instant::now() >= start_by {
                // Out of time (a round overran the budget): hand over. Woken contacts stay for the next flusher.
                let left = self.store.hand_over_flusher(owner, next_round_ms).await?;
                let left = left.map_or(0, |left| left.len());
                if left > 0 {
                    tracing::info!(
                        contacts = left,
                        "a round ran past the flush budget; the contacts woken meanwhile wait for the next flusher"
                    );
                }
                report.left_woken += left as u32;
                return Ok(());
            }
            // No round fits after this one, if it takes as long as the one before and the linger stays: it is the
            // last. Leaving the round's own time out would mark a long round last too late, once it had run past
            // the budget with the lease still held, and what woke the flusher meanwhile would wait (`left_woken`).
            let last = Instant::now() + took + wait + LINGER_MARGIN >= start_by;
            let Some(woken) = self
                .store
                .renew_flusher(owner, self.settings.lease_ttl)
                .await?
            else {
                tracing::warn!("the flusher lease was taken over; stopping");
                return Ok(());
            };
            // Oldest first, then the contacts woken since the last look (the index may not show them yet), and
            // the webhook's own contact (its change may not show there yet either).
            aside.check()?;
            let mut candidates = self.store.dirty_contacts(MAX_BATCH).await?;
            // A full page of the queue: at least a batch was waiting, whatever this round can claim of it.
            let page_full = candidates.len() >= MAX_BATCH;
            add_new(&mut candidates, &woken);
            add_new(&mut candidates, own.take());
            // A contact the notes round beside holds stays woken: the next look takes it, once that round is done.
            let taken: Vec<ContactId> = woken
                .iter()
                .filter(|contact| !aside.holds(contact))
                .cloned()
                .collect();
            self.store.clear_wakes(&taken).await?;
            if last {
                // The lease goes *before* the last round: a webhook that comes during it becomes the next flusher
                // instead of waking one that is leaving, whose wake set would wait for the sweeper. Its first round
                // is due when our next would have been, after this one (as long as the one before) and a linger:
                // sooner, it would find the contacts this round holds busy and write a batch short of them. Whoever
                // woke us since our look is taken along, and stays woken for the next flusher in case one comes.
                let due = next_round_ms + took.as_millis() as i64;
                let Some(left) = self.store.hand_over_flusher(owner, due).await? else {
                    tracing::warn!("the flusher lease was taken over; stopping");
                    return Ok(());
                };
                add_new(&mut candidates, &left);
            }
            // Then the notes: is this a notes round? If so, the contacts whose notes are due come too, after the
            // batch of contacts behind (notes wait for the property, never the other way round). (Queried whatever
            // the settings: a contact left waiting under another wait, or before notes stopped being a target, is
            // written at its claim.)
            candidates.truncate(MAX_BATCH);
            let now = Timestamp::now();
            let due = self
                .store
                .notes_due(now.earlier_by(self.settings.note_wait), MAX_BATCH)
                .await?;
            let notes_due_now = notes_round(
                due.len(),
                due.first().map(|(since, _)| *since),
                self.settings.note_wait,
                now,
                candidates.is_empty(),
            );
            // Its due contacts' claims may make the round up to twice as long: only in a round that is not the last
            // and would end within the budget even so. A longer round than the one before, past the budget, would
            // leave what woke the flusher meanwhile for the next one (`left_woken`): the lag's tail at 5×.
            let time_for_notes = !last && Instant::now() + took * 2 + LINGER_MARGIN < start_by;
            let mut notes_here = notes_due_now;
            if notes_due_now && time_for_notes {
                if page_full && aside.running() {
                    // Behind, and a notes round runs beside already: the due wait for the next.
                    notes_here = false;
                } else {
                    // Of the due, those whose conversation still talks wait again (`quiet_notes`). The rest make a
                    // notes round by themselves, or wait for more, as notes do: a round for the few that paused
                    // would be a call for a few notes.
                    let quiet = self.quiet_notes(due, now, report).await?;
                    notes_here = notes_round(
                        quiet.len(),
                        quiet.first().map(|(since, _)| *since),
                        self.settings.note_wait,
                        now,
                        candidates.is_empty(),
                    );
                    let due: Vec<ContactId> =
                        quiet.into_iter().map(|(_, contact)| contact).collect();
                    if notes_here && !page_full {
                        add_new(&mut candidates, &due);
                    } else if notes_here {
                        // Behind: the due contacts go in a round of their own, beside this one (see `aside`);
                        // the candidates leave them out below, with any the notes round holds.
                        notes_here = false;
                        aside.start(due);
                        report.rounds += 1;
                    }
                }
            }
            candidates.retain(|contact| !aside.holds(contact));
            if candidates.is_empty() {
                if aside.running() && !last {
                    // Never idle while a notes round runs beside: its contacts may have changed meanwhile.
                    aside.wait().await?;
                    wait = Duration::ZERO;
                    continue;
                }
                if last || self.store.release_flusher(owner, true).await? {
                    return Ok(());
                }
                wait = Duration::ZERO;
                continue;
            }
            // Wait for a permit before claiming: no contact's lease is held while the budget is empty.
            let permit = match self.budget.acquire(Caller::Background, start_by).await {
                Ok(permit) => permit,
                Err(BudgetError::Exhausted { wait, daily }) => {
                    tracing::info!(
                        wait_ms = wait.as_millis() as u64,
                        daily,
                        waiting = candidates.len(),
                        "no HubSpot permit before the flush budget ends; handing over"
                    );
                    report.deferred += candidates.len() as u32;
                    if !last {
                        self.store.release_flusher(owner, false).await?;
                    }
                    return Ok(());
                }
                Err(BudgetError::Storage(error)) => return Err(error),
            };
            let began = Instant::now();
            let came_over = began.duration_since(claimed_at);
            claimed_at = began;
            let round = self.round(candidates, notes_here, permit, start_by).await?;
            took = began.elapsed();
            let backlog = behind(&round, page_full);
            report.add(&round);
            report.rounds += 1;
            if last {
                return Ok(());
            }
            if round.refused > 0 {
                // HubSpot is refusing writes: stop here; the next webhook or sweep tries again.
                self.store.release_flusher(owner, false).await?;
                return Ok(());
            }
            // Nothing written (every candidate busy or fenced) and nobody woke us: nothing to do now. The queue keeps
            // them for the next flusher or the sweeper.
            if round.calls == 0 && woken.is_empty() {
                if aside.running() {
                    aside.wait().await?;
                    wait = Duration::ZERO;
                    continue;
                }
                if self.store.release_flusher(owner, true).await? {
                    return Ok(());
                }
                wait = Duration::ZERO;
                continue;
            }
            // A backlog (`behind`): no linger before the next. Otherwise the linger adapts to how fast
            // the contacts this round claimed came in, since the round before claimed: no longer than a full
            // batch takes to come.
            wait = if backlog {
                Duration::ZERO
            } else {
                adaptive_linger(
                    linger,
                    round.claimed.saturating_sub(round.notes_only),
                    came_over,
                )
            };
        }
    }
}

/// A flusher's turn under the lease `owner`: rounds start until `start_by`, the first after `first` and the others
/// after `linger` (or less, see `adaptive_linger`); `own` is the contact of the webhook that took the lease.
struct Turn<'a> {
    owner: &'a LeaseOwner,
    start_by: Instant,
    linger: Duration,
    first: Duration,
    own: Option<&'a ContactId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linger_shortens_only_when_a_batch_fills_sooner() {
        let linger = Duration::from_secs(1);
        // A busy desk's pace: 27 contacts a second, a batch would take ~3.7 s: the whole linger.
        assert_eq!(adaptive_linger(linger, 27, linger), linger);
        // Five times that: 135 a second fill a batch of 100 in ~0.74 s.
        let fill = adaptive_linger(linger, 135, linger);
        assert!(
            fill < Duration::from_millis(750) && fill > Duration::from_millis(730),
            "{fill:?}"
        );
        // Nothing seen yet: the whole linger.
        assert_eq!(adaptive_linger(linger, 0, linger), linger);
        assert_eq!(adaptive_linger(linger, 50, Duration::ZERO), linger);
    }

    #[test]
    fn a_round_leaves_a_backlog_when_it_wrote_a_batch_or_took_most_of_a_full_queue() {
        let round = |claimed: u32, synced: u32| FlushReport {
            claimed,
            synced,
            ..FlushReport::default()
        };
        // A full batch written: behind, whatever the queue showed.
        assert!(behind(&round(100, 100), false));
        // 97 of a full page (three busy): behind. The same of a shorter page: caught up.
        assert!(behind(&round(97, 97), true));
        assert!(!behind(&round(97, 97), false));
        // Most of a full page busy: a linger, not a spin on the busy ones.
        assert!(!behind(&round(30, 30), true));
        // A round of 60 contacts behind and 60 taken for their notes alone: caught up, with or without a full page.
        let with_notes = FlushReport {
            notes_only: 60,
            ..round(120, 120)
        };
        assert!(!behind(&with_notes, false));
        assert!(behind(&with_notes, true));
        let mostly_notes = FlushReport {
            notes_only: 100,
            ..round(130, 130)
        };
        assert!(!behind(&mostly_notes, true));
    }

    #[test]
    fn a_notes_round_needs_a_batch_due_twice_the_wait_or_nothing_else_to_write() {
        let wait = Duration::from_secs(20);
        let now = Timestamp::now();
        let waited = |secs: u64| Some(now.earlier_by(Duration::from_secs(secs)));
        // Nothing due: no notes round, even with nothing else to write.
        assert!(!notes_round(0, None, wait, now, false));
        assert!(!notes_round(0, None, wait, now, true));
        // A few due, the longest-waiting a little past the wait: they wait for more, unless the round has nothing
        // else to write.
        assert!(!notes_round(3, waited(25), wait, now, false));
        assert!(notes_round(3, waited(25), wait, now, true));
        // A batch due: written.
        assert!(notes_round(MAX_BATCH, waited(21), wait, now, false));
        // Twice the wait: written, however few.
        assert!(notes_round(1, waited(40), wait, now, false));
    }

    #[test]
    fn a_flusher_taking_over_starts_when_the_round_handed_over_was_due() {
        let linger = Duration::from_secs(1);
        let now = 1_800_000_000_000;
        let handed = |due| FlusherTurn {
            next_round_ms: Some(due),
        };
        // Nobody handed over: the whole linger.
        assert_eq!(first_linger(linger, FlusherTurn::default(), now), linger);
        // Due in 400 ms: 400 ms.
        assert_eq!(
            first_linger(linger, handed(now + 400), now),
            Duration::from_millis(400)
        );
        // Overdue: at once.
        assert_eq!(first_linger(linger, handed(now - 5), now), Duration::ZERO);
        // After a last round expected to take 1.5 s: the round's time and a linger.
        assert_eq!(
            first_linger(linger, handed(now + 2_500), now),
            Duration::from_millis(2_500)
        );
        // Never longer than two lingers and the clock margin, whatever another clock wrote.
        assert_eq!(
            first_linger(linger, handed(now + 60_000), now),
            linger * 2 + CLOCK_MARGIN
        );
    }
}
