//! Writing transcripts to HubSpot: batched, within one shared rate budget, never overtaken by a late write.
//!
//! **Who writes.** One *flusher* at a time (a lease on the `FLUSHER` item, a DynamoDB conditional write) takes the
//! contacts waiting in the queue, claims each one's own lease, renders each transcript from the stored messages and
//! writes them all in one `batch/update` call: a burst over many contacts becomes a few calls, not one per contact.
//! A webhook, once it has answered Stream, either becomes the flusher or *wakes* the running one by adding its
//! contact to the flusher item's wake set (a conditional update that succeeds only while a flusher holds the
//! lease). The flusher releases its lease only if no contact was woken since its last look (the same conditional
//! write), so a change is never stranded between "flusher finished" and "newcomer gave up": group commit across
//! contacts, as the per-contact release (below) is within one.
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
//! **Bounded.** A flusher started by a webhook starts no new round after its budget and hands the queue over (the
//! wake set stays for the next flusher; the sweeper takes over if no webhook comes). Each round reads only the
//! newest messages each transcript can show. Contacts HubSpot no longer has (404, even by e-mail) or refuses (400)
//! are parked with the reason, out of the queue, until an operator re-queues them.

use crate::config::FlushSettings;
use crate::domain::transcript::{render, HUBSPOT_PROPERTY_LIMIT};
use crate::domain::ContactId;
use crate::ports::{
    BudgetError, Caller, Crm, LeaseOwner, RateBudget, Release, Store, StoreError, TranscriptWrite,
    UpstreamError, WriteResult, MAX_BATCH,
};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Claims (lease, sync record, messages) made at once in a round.
const CLAIM_CONCURRENCY: usize = 16;
/// Time kept free at the end of a linger for claiming, rendering and starting the write.
const LINGER_MARGIN: Duration = Duration::from_millis(50);
/// Clock skew allowed between Lambdas comparing lease expiry times.
const CLOCK_MARGIN: Duration = Duration::from_secs(1);
/// How often a webhook tries to become the flusher or wake it when the lease changes hands under it.
const WAKE_ATTEMPTS: usize = 3;

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
    /// HubSpot batch writes sent.
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
    /// Batches HubSpot refused as a whole before applying them (rate limit, unavailable, token): the flusher stops
    /// for now rather than hammer it; the contacts stay queued.
    pub refused: u32,
    /// Whether the flusher lease was held by someone else (nothing done).
    pub busy: bool,
}

impl FlushReport {
    fn add(&mut self, other: FlushReport) {
        self.rounds += other.rounds;
        self.calls += other.calls;
        self.synced += other.synced;
        self.behind += other.behind;
        self.fenced += other.fenced;
        self.deferred += other.deferred;
        self.redirected += other.redirected;
        self.parked += other.parked;
        self.refused += other.refused;
    }
}

/// A contact claimed for this round: its lease is ours and its transcript rendered.
struct Claim {
    contact: ContactId,
    owner: LeaseOwner,
    version: u64,
    write: TranscriptWrite,
    /// When our lease on it ends, by our clock (counted from before it was taken).
    lease_until: Instant,
}

#[derive(Clone)]
pub struct TranscriptSync {
    store: Arc<dyn Store>,
    crm: Arc<dyn Crm>,
    budget: Arc<dyn RateBudget>,
    settings: FlushSettings,
}

impl TranscriptSync {
    pub fn new(
        store: Arc<dyn Store>,
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
        for _ in 0..WAKE_ATTEMPTS {
            let owner = LeaseOwner::random();
            if self
                .store
                .acquire_flusher(&owner, self.settings.lease_ttl)
                .await?
            {
                let report = self.hold(&owner, start_by, self.settings.linger).await?;
                return Ok(FlushOutcome::Flushed(report));
            }
            if self.store.wake_flusher(contact).await? {
                return Ok(FlushOutcome::Handed);
            }
            // The lease expired or was released between the two: try again.
        }
        Ok(FlushOutcome::Queued)
    }

    /// Runs the flusher if nobody does (the sweeper): no linger, rounds until the queue is empty or `start_by`.
    pub async fn sweep(&self, start_by: Instant) -> Result<FlushReport, StoreError> {
        let owner = LeaseOwner::random();
        if !self
            .store
            .acquire_flusher(&owner, self.settings.lease_ttl)
            .await?
        {
            return Ok(FlushReport {
                busy: true,
                ..FlushReport::default()
            });
        }
        self.hold(&owner, start_by, Duration::ZERO).await
    }

    /// Rounds under the flusher lease, until nothing waits or the time is up.
    async fn hold(
        &self,
        owner: &LeaseOwner,
        start_by: Instant,
        linger: Duration,
    ) -> Result<FlushReport, StoreError> {
        let mut report = FlushReport::default();
        let result = self.rounds(owner, start_by, linger, &mut report).await;
        if result.is_err() {
            // Storage failed mid-flush: hand the lease back so the next flusher need not wait for it to expire.
            if let Err(error) = self.store.release_flusher(owner, false).await {
                tracing::warn!(%error, "could not release the flusher lease; it will expire");
            }
        }
        result.map(|()| report)
    }

    async fn rounds(
        &self,
        owner: &LeaseOwner,
        start_by: Instant,
        linger: Duration,
        report: &mut FlushReport,
    ) -> Result<(), StoreError> {
        let mut wait = linger;
        loop {
            // Let the rest of a burst land first: many messages, many contacts, one write.
            let room = start_by
                .saturating_duration_since(Instant::now())
                .saturating_sub(LINGER_MARGIN);
            if !wait.is_zero() && !room.is_zero() {
                tokio::time::sleep(wait.min(room)).await;
            }
            if Instant::now() >= start_by {
                // Out of time: hand over. Woken contacts stay in the wake set for the next flusher.
                self.store.release_flusher(owner, false).await?;
                return Ok(());
            }
            let Some(woken) = self
                .store
                .renew_flusher(owner, self.settings.lease_ttl)
                .await?
            else {
                tracing::warn!("the flusher lease was taken over; stopping");
                return Ok(());
            };
            // Oldest first, then the contacts woken since the last look (the index may not show them yet).
            let mut candidates = self.store.dirty_contacts(MAX_BATCH).await?;
            for contact in &woken {
                if !candidates.contains(contact) {
                    candidates.push(contact.clone());
                }
            }
            self.store.clear_wakes(&woken).await?;
            if candidates.is_empty() {
                if self.store.release_flusher(owner, true).await? {
                    return Ok(());
                }
                wait = Duration::ZERO;
                continue;
            }
            candidates.truncate(MAX_BATCH);
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
                    self.store.release_flusher(owner, false).await?;
                    return Ok(());
                }
                Err(BudgetError::Storage(error)) => return Err(error),
            };
            let round = self.round(candidates, permit, start_by).await?;
            let full = round.synced + round.behind + round.fenced >= MAX_BATCH as u32;
            report.add(round);
            report.rounds += 1;
            if round.refused > 0 {
                // HubSpot is refusing writes: stop here; the next webhook or sweep tries again.
                self.store.release_flusher(owner, false).await?;
                return Ok(());
            }
            // Nothing written (every candidate busy or fenced) and nobody woke us: nothing to do now. The queue keeps
            // them for the next flusher or the sweeper.
            if round.calls == 0 && woken.is_empty() {
                if self.store.release_flusher(owner, true).await? {
                    return Ok(());
                }
                wait = Duration::ZERO;
                continue;
            }
            // A full batch means a backlog: no linger before the next.
            wait = if full { Duration::ZERO } else { linger };
        }
    }

    /// One round: claim the candidates, write what they need in one batch, settle each.
    async fn round(
        &self,
        candidates: Vec<ContactId>,
        permit: crate::ports::Permit,
        start_by: Instant,
    ) -> Result<FlushReport, StoreError> {
        let mut report = FlushReport::default();
        let claimed: Vec<Result<Option<Claim>, StoreError>> = stream::iter(candidates)
            .map(|contact| async move { self.claim(contact).await })
            .buffer_unordered(CLAIM_CONCURRENCY)
            .collect()
            .await;
        let mut claims: Vec<Claim> = Vec::new();
        let mut failure = None;
        for claim in claimed {
            match claim {
                Ok(Some(claim)) => {
                    // Two contacts merged into one HubSpot record: one write per record per call.
                    if claims
                        .iter()
                        .any(|c| c.write.contact == claim.write.contact)
                    {
                        self.let_go(&claim).await;
                        report.deferred += 1;
                    } else {
                        claims.push(claim);
                    }
                }
                Ok(None) => {}
                Err(error) => failure = Some(error),
            }
        }
        if let Some(error) = failure {
            for claim in &claims {
                self.let_go(claim).await;
            }
            return Err(error);
        }
        if claims.is_empty() {
            return Ok(report);
        }
        if Instant::now() >= start_by {
            report.deferred += claims.len() as u32;
            for claim in &claims {
                self.let_go(claim).await;
            }
            return Ok(report);
        }
        self.write(claims, Some(permit), start_by, &mut report)
            .await?;
        Ok(report)
    }

    /// Takes the contact's lease and renders its transcript; `None` if it is busy, parked or already synced.
    async fn claim(&self, contact: ContactId) -> Result<Option<Claim>, StoreError> {
        let owner = LeaseOwner::random();
        let taken_at = Instant::now();
        if !self
            .store
            .acquire_lease(&contact, &owner, self.settings.lease_ttl)
            .await?
        {
            return Ok(None);
        }
        let result = self.prepare(&contact, &owner, taken_at).await;
        if !matches!(result, Ok(Some(_))) {
            if let Err(error) = self.store.release_lease(&contact, &owner).await {
                tracing::warn!(%error, contact_id = %contact, "could not release a lease; it will expire");
            }
        }
        result
    }

    async fn prepare(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        taken_at: Instant,
    ) -> Result<Option<Claim>, StoreError> {
        // The version is read before the messages, so the messages include at least that version.
        let state = self.store.sync_state(contact).await?;
        if state.parked.is_some() || state.version == 0 {
            return Ok(None);
        }
        if state.version == state.synced_version {
            // Written by someone else already (the queue may lag): take it out of the queue.
            let _ = self
                .store
                .release_if_current(contact, owner, state.version)
                .await?;
            return Ok(None);
        }
        let source = self
            .store
            .recent_transcript(contact, HUBSPOT_PROPERTY_LIMIT)
            .await?;
        let transcript = render(
            &source.conversations,
            &source.messages,
            HUBSPOT_PROPERTY_LIMIT,
            state.messages,
        );
        Ok(Some(Claim {
            write: TranscriptWrite {
                contact: state.crm_target(contact),
                transcript,
            },
            contact: contact.clone(),
            owner: owner.clone(),
            version: state.version,
            lease_until: taken_at + self.settings.lease_ttl,
        }))
    }

    /// Hands a claimed contact back unwritten (it stays queued).
    async fn let_go(&self, claim: &Claim) {
        if let Err(error) = self.store.release_lease(&claim.contact, &claim.owner).await {
            tracing::warn!(%error, contact_id = %claim.contact, "could not release a lease; it will expire");
        }
    }

    /// The least lease a write may be sent under: it must outlive the write and then the late-write window.
    fn lease_needed(&self) -> Duration {
        self.settings.write_timeout + self.settings.late_write_window + CLOCK_MARGIN
    }

    /// Writes the claims in one call (halves again after a 400 for the whole batch, to find the input HubSpot
    /// refuses), then settles each contact.
    async fn write(
        &self,
        claims: Vec<Claim>,
        permit: Option<crate::ports::Permit>,
        start_by: Instant,
        report: &mut FlushReport,
    ) -> Result<(), StoreError> {
        let mut batches = vec![claims];
        let mut permit = permit;
        while let Some(batch) = batches.pop() {
            let permit = match permit.take() {
                Some(permit) => permit,
                None => match self.budget.acquire(Caller::Background, start_by).await {
                    Ok(permit) => permit,
                    Err(error) => {
                        tracing::info!(%error, "no HubSpot permit left for the rest of a split batch");
                        for claim in batches.iter().flatten().chain(&batch) {
                            self.let_go(claim).await;
                        }
                        report.deferred +=
                            batches.iter().map(Vec::len).sum::<usize>() as u32 + batch.len() as u32;
                        return Ok(());
                    }
                },
            };
            let batch = self.keep_fenceable(batch, report).await?;
            if batch.is_empty() {
                continue;
            }
            let writes: Vec<TranscriptWrite> = batch.iter().map(|c| c.write.clone()).collect();
            let deadline = Instant::now() + self.settings.write_timeout;
            report.calls += 1;
            match self.crm.write_transcripts(&writes, permit, deadline).await {
                Ok(results) => {
                    let settled: Vec<Result<FlushReport, StoreError>> =
                        stream::iter(batch.into_iter().zip(results))
                            .map(|(claim, result)| async move {
                                let mut settled = FlushReport::default();
                                self.settle(&claim, result, &mut settled).await?;
                                Ok(settled)
                            })
                            .buffer_unordered(CLAIM_CONCURRENCY)
                            .collect()
                            .await;
                    for one in settled {
                        report.add(one?);
                    }
                }
                Err(error) if error.may_have_landed() => {
                    // Fencing: leave every lease of the batch to expire (see the module header).
                    tracing::warn!(%error, contacts = batch.len(), late_write_window_ms = self.settings.late_write_window.as_millis() as u64, "transcript batch may still land; its contacts wait for their leases to expire");
                    report.fenced += batch.len() as u32;
                }
                Err(UpstreamError::Rejected {
                    status: 400,
                    detail,
                    ..
                }) if batch.len() > 1 => {
                    // One input spoils the batch: split until the one HubSpot refuses stands alone.
                    tracing::info!(contacts = batch.len(), %detail, "HubSpot refused a batch; splitting it");
                    let mut first = batch;
                    let second = first.split_off(first.len() / 2);
                    batches.push(second);
                    batches.push(first);
                }
                Err(UpstreamError::Rejected {
                    status: 400,
                    detail,
                    ..
                }) => {
                    for claim in &batch {
                        self.park(
                            claim,
                            &format!("HubSpot refused the transcript (400): {detail}"),
                            report,
                        )
                        .await?;
                    }
                }
                Err(error) => {
                    // Refused before it was applied (rate limit, HubSpot unavailable, token or scopes): nothing
                    // landed, so the contacts can be written again as soon as HubSpot takes writes.
                    let level_error = matches!(error, UpstreamError::Rejected { .. });
                    if level_error {
                        tracing::error!(%error, "HubSpot refused a transcript batch; check the token and its scopes");
                    } else {
                        tracing::warn!(%error, contacts = batch.len(), "transcript batch refused; the contacts stay queued");
                    }
                    report.deferred += batch.len() as u32;
                    report.refused += 1;
                    for claim in batches.iter().flatten().chain(&batch) {
                        self.let_go(claim).await;
                    }
                    report.deferred += batches.iter().map(Vec::len).sum::<usize>() as u32;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Renews the leases that would not outlive a write and the late-write window; drops contacts whose lease is
    /// gone.
    async fn keep_fenceable(
        &self,
        batch: Vec<Claim>,
        report: &mut FlushReport,
    ) -> Result<Vec<Claim>, StoreError> {
        let mut kept = Vec::with_capacity(batch.len());
        for mut claim in batch {
            if claim.lease_until.saturating_duration_since(Instant::now()) >= self.lease_needed() {
                kept.push(claim);
                continue;
            }
            let renewed_at = Instant::now();
            if self
                .store
                .renew_lease(&claim.contact, &claim.owner, self.settings.lease_ttl)
                .await?
            {
                claim.lease_until = renewed_at + self.settings.lease_ttl;
                kept.push(claim);
            } else {
                report.deferred += 1;
            }
        }
        Ok(kept)
    }

    async fn settle(
        &self,
        claim: &Claim,
        result: WriteResult,
        report: &mut FlushReport,
    ) -> Result<(), StoreError> {
        let contact = &claim.contact;
        match result {
            WriteResult::Written => {
                tracing::info!(contact_id = %contact, version = claim.version, chars = claim.write.transcript.len(), "transcript written");
                match self
                    .store
                    .release_if_current(contact, &claim.owner, claim.version)
                    .await?
                {
                    Release::Released => report.synced += 1,
                    Release::Changed => {
                        // Newer changes arrived during the write: their webhooks woke the flusher.
                        self.let_go(claim).await;
                        report.behind += 1;
                    }
                    Release::Lost => report.behind += 1,
                }
            }
            WriteResult::Unconfirmed => {
                tracing::warn!(contact_id = %contact, "HubSpot's answer did not confirm the write; leaving the lease to expire");
                report.fenced += 1;
            }
            WriteResult::Rejected(reason) => {
                self.park(
                    claim,
                    &format!("HubSpot refused the transcript: {reason}"),
                    report,
                )
                .await?;
            }
            WriteResult::NotFound => self.find_again(claim, report).await?,
        }
        Ok(())
    }

    /// A 404: HubSpot merges contacts into a record with a new id, so look the contact up by e-mail before giving
    /// up on it.
    async fn find_again(&self, claim: &Claim, report: &mut FlushReport) -> Result<(), StoreError> {
        let contact = &claim.contact;
        let gone = claim.write.contact.clone();
        let Some(email) = self.store.contact_email(contact).await? else {
            let reason = format!(
                "HubSpot has no contact {gone} (404) and no e-mail is stored to find it by"
            );
            return self.park(claim, &reason, report).await;
        };
        let deadline = Instant::now() + self.settings.write_timeout;
        match self.crm.find_contact(&email, deadline).await {
            Ok(Some(found)) if found != gone => {
                tracing::info!(contact_id = %contact, from = %gone, to = %found, "contact was merged in HubSpot; writing to the surviving record");
                self.store.redirect_contact(contact, &found).await?;
                self.let_go(claim).await;
                report.redirected += 1;
                Ok(())
            }
            Ok(_) => {
                let reason = format!(
                    "HubSpot has no contact {gone} (404) and none with the registered e-mail: deleted in HubSpot"
                );
                self.park(claim, &reason, report).await
            }
            Err(error) => {
                tracing::warn!(%error, contact_id = %contact, "could not look the contact up by e-mail; it stays queued");
                self.let_go(claim).await;
                report.deferred += 1;
                Ok(())
            }
        }
    }

    async fn park(
        &self,
        claim: &Claim,
        reason: &str,
        report: &mut FlushReport,
    ) -> Result<(), StoreError> {
        tracing::error!(contact_id = %claim.contact, reason, "contact parked: its transcript is no longer written; re-queue it with `backlog requeue` once fixed");
        self.store
            .park_contact(&claim.contact, &claim.owner, reason)
            .await?;
        report.parked += 1;
        Ok(())
    }
}
