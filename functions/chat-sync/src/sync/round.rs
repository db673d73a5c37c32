//! One round of the flusher: claim a batch of queued contacts, render what each needs (the property transcript,
//! the notes of its changed conversations), write it all in a few batch calls, then settle each contact.

use super::batch::Sent;
use super::note_write::ConversationWrite;
use super::{FlushReport, TranscriptSync, CLAIM_CONCURRENCY, CLOCK_MARGIN};
use crate::domain::archive::archived_lines;
use crate::domain::note::{emptied_note, erased_note, render_notes, NOTE_BODY_LIMIT};
use crate::domain::transcript::{render, render_with_archive, HUBSPOT_PROPERTY_LIMIT};
use crate::domain::{ContactId, Conversation, StoredMessage, Timestamp};
use crate::ports::{
    LeaseOwner, NotesAt, Permit, Release, StoreError, SyncState, TranscriptWrite, WriteResult,
};
use futures::stream::{self, StreamExt};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The most lines a contact may show to be read whole in one request: the store reads a contact whole only up to
/// 100 message items (`Store::read_small_contact`), and the lines shown are at most the message items.
const SMALL_CONTACT_LINES: u64 = 100;

/// What one claim took, by part (see `RoundTimes`).
#[derive(Debug, Default, Clone, Copy)]
struct ClaimTimes {
    lease: Duration,
    read: Duration,
    render: Duration,
}

impl ClaimTimes {
    fn add(&mut self, other: ClaimTimes) {
        self.lease += other.lease;
        self.read += other.read;
        self.render += other.render;
    }

    /// The claiming phase's wall time (its contacts run concurrently), split between taking leases, reading and
    /// rendering in proportion to the time each took.
    fn apportion(&self, wall: Duration, report: &mut FlushReport) {
        let total = (self.lease + self.read + self.render).as_secs_f64();
        if total <= 0.0 {
            report.times.claim_us += wall.as_micros() as u64;
            return;
        }
        let share = |part: Duration| (wall.as_secs_f64() * part.as_secs_f64() / total * 1e6) as u64;
        report.times.claim_us += share(self.lease);
        report.times.read_us += share(self.read);
        report.times.render_us += share(self.render);
    }
}

/// A contact claimed for this round: its lease is ours and what it needs is rendered.
pub(super) struct Claim {
    pub(super) contact: ContactId,
    pub(super) owner: LeaseOwner,
    pub(super) version: u64,
    /// When our lease on it ends, by our clock (counted from before it was taken).
    pub(super) lease_until: Instant,
    /// The HubSpot record written (after a merge, not the id the contact was registered with).
    pub(super) target: ContactId,
    /// The property's transcript, when the property is a target (once HubSpot's copy is read, for an archived one).
    pub(super) property: Option<String>,
    /// What the property is rendered from around HubSpot's copy, for a contact whose messages expired (see
    /// `domain::archive`): the copy is read in the round, before the write.
    archived: Option<ArchivedSource>,
    /// The conversations whose notes need writing, when notes are a target and due.
    pub(super) conversations: Vec<ConversationWrite>,
    /// Claimed for its notes alone: its property is in sync.
    notes_only: bool,
    /// Whether its pending notes are written this round or wait.
    notes: NotesAt,
    pub(super) outcome: Outcome,
}

/// The stored half of an archived contact's property.
struct ArchivedSource {
    conversations: Vec<Conversation>,
    messages: Vec<StoredMessage>,
    visitor_erased: Vec<String>,
    total: u64,
}

impl ArchivedSource {
    fn render(&self, shown: &str) -> String {
        let archived = archived_lines(
            shown,
            &self.conversations,
            &self.visitor_erased,
            &self.messages,
        );
        render_with_archive(
            &self.conversations,
            &archived,
            &self.messages,
            HUBSPOT_PROPERTY_LIMIT,
            self.total,
        )
    }
}

/// What happened to a claim's writes this round.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// A write may still land: the lease is left to expire.
    pub(super) ambiguous: bool,
    /// Not applied (rate limit, HubSpot unavailable, no permit): queued for the next round.
    pub(super) refused: bool,
    /// HubSpot has no such contact (404): look it up by e-mail.
    pub(super) gone: bool,
    /// HubSpot refuses a write of this contact, with its reason: parked.
    pub(super) rejected: Option<String>,
    /// Written, but not all of it (a note deleted in HubSpot is created again next round).
    pub(super) incomplete: bool,
    /// The lease could not be kept: someone else carries on.
    pub(super) lost: bool,
}

impl Outcome {
    /// Records what became of one write of `what`; true if HubSpot answered that the record does not exist.
    pub(super) fn note(&mut self, result: Sent<WriteResult>, what: &str) -> bool {
        match result {
            Sent::Done(WriteResult::Written) => {}
            Sent::Done(WriteResult::NotFound) => return true,
            Sent::Done(WriteResult::Rejected(reason)) | Sent::Rejected(reason) => {
                self.rejected = Some(format!("HubSpot refused {what}: {reason}"))
            }
            Sent::Done(WriteResult::Unconfirmed) | Sent::Ambiguous => self.ambiguous = true,
            Sent::Refused => self.refused = true,
        }
        false
    }

    /// Nothing has gone wrong yet: further writes of this round go ahead.
    pub(super) fn clear(&self) -> bool {
        !(self.ambiguous || self.refused || self.gone || self.lost) && self.rejected.is_none()
    }
}

impl TranscriptSync {
    /// One round: claim the candidates, write what they need in a few batches, settle each.
    pub(super) async fn round(
        &self,
        candidates: Vec<ContactId>,
        notes_round: bool,
        permit: Permit,
        start_by: Instant,
    ) -> Result<FlushReport, StoreError> {
        let mut report = FlushReport::default();
        let claimed = self.claim(candidates, notes_round, &mut report).await;
        let mut claims: Vec<Claim> = Vec::new();
        let mut failure = None;
        for claim in claimed {
            match claim {
                // Two contacts merged into one HubSpot record: one write per record per call.
                Ok(Some(claim)) if claims.iter().any(|c| c.target == claim.target) => {
                    self.let_go(&claim).await;
                    report.deferred += 1;
                }
                Ok(Some(claim)) => claims.push(claim),
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
        report.claimed = claims.len() as u32;
        report.notes_only = claims.iter().filter(|c| c.notes_only).count() as u32;
        if claims.is_empty() {
            return Ok(report);
        }
        if Instant::now() >= start_by {
            // Claiming took the whole budget (storage is slow): say so, or the queue seems to stall silently.
            tracing::warn!(
                contacts = claims.len(),
                "the flush budget ran out while claiming; the contacts stay queued"
            );
            report.deferred += claims.len() as u32;
            for claim in &claims {
                self.let_go(claim).await;
            }
            return Ok(report);
        }
        let mut permit = Some(permit);
        let phase = Instant::now();
        let marks_before = report.times.marks_us;
        self.adopt_notes(&mut claims).await;
        self.read_archives(&mut claims, &mut permit, start_by, &mut report)
            .await;
        self.write_properties(&mut claims, &mut permit, start_by, &mut report)
            .await?;
        self.update_notes(&mut claims, &mut permit, start_by, &mut report)
            .await?;
        self.create_notes(&mut claims, &mut permit, start_by, &mut report)
            .await?;
        report.times.hubspot_us += (phase.elapsed().as_micros() as u64)
            .saturating_sub(report.times.marks_us - marks_before);
        let phase = Instant::now();
        let settled: Vec<Result<FlushReport, StoreError>> = stream::iter(claims)
            .map(|claim| async move {
                let mut settled = FlushReport::default();
                self.settle(claim, &mut settled).await?;
                Ok(settled)
            })
            .buffer_unordered(CLAIM_CONCURRENCY)
            .collect()
            .await;
        for one in settled {
            report.add(&one?);
        }
        report.times.settle_us += phase.elapsed().as_micros() as u64;
        Ok(report)
    }

    /// Takes each candidate's lease, which reads its sync record in the same request, and renders what it needs;
    /// a contact is left out if it is busy, parked or already synced. The contacts go concurrently, each on from
    /// its lease to its reads at once; the version comes with the lease, before anything else of the contact is
    /// read.
    async fn claim(
        &self,
        candidates: Vec<ContactId>,
        notes_round: bool,
        report: &mut FlushReport,
    ) -> Vec<Result<Option<Claim>, StoreError>> {
        let phase = Instant::now();
        let ttl = self.settings.lease_ttl;
        let held = AtomicU32::new(0);
        let held = &held;
        let claimed: Vec<(Result<Option<Claim>, StoreError>, ClaimTimes)> =
            stream::iter(candidates)
                .map(|contact| async move {
                    let mut took = ClaimTimes::default();
                    let owner = LeaseOwner::random();
                    let taken_at = Instant::now();
                    let acquired = self.store.acquire_lease(&contact, &owner, ttl).await;
                    took.lease = taken_at.elapsed();
                    let state = match acquired {
                        Ok(Some(state)) => state,
                        Ok(None) => {
                            held.fetch_add(1, Ordering::Relaxed);
                            return (Ok(None), took);
                        }
                        Err(error) => return (Err(error), took),
                    };
                    // Nothing to write: parked, no change yet, or written already (the queue may lag).
                    if state.parked.is_some() || state.version == 0 {
                        self.release(&contact, &owner).await;
                        return (Ok(None), took);
                    }
                    let notes = self.notes_at(&state, notes_round);
                    if state.version == state.synced_version && !self.writes_notes(&state, notes) {
                        return (
                            self.dequeue(&contact, &owner, state.version, notes).await,
                            took,
                        );
                    }
                    let reading = Instant::now();
                    let result = self
                        .prepare(&contact, &owner, taken_at, state, notes, &mut took.render)
                        .await;
                    took.read = reading.elapsed().saturating_sub(took.render);
                    if result.is_err() {
                        self.release(&contact, &owner).await;
                    }
                    (result.map(Some), took)
                })
                .buffer_unordered(CLAIM_CONCURRENCY)
                .collect()
                .await;
        let mut times = ClaimTimes::default();
        for (_, took) in &claimed {
            times.add(*took);
        }
        times.apportion(phase.elapsed(), report);
        report.held += held.load(Ordering::Relaxed);
        claimed.into_iter().map(|(result, _)| result).collect()
    }

    /// What this round does with a claimed contact's pending notes: writes them in a notes round if they are due,
    /// in any round if they must not wait (an edit, a deletion, an erasure, no wait set), or lets them wait (see
    /// `sync`, "Notes"). None pending, or notes not a target: nothing waits.
    fn notes_at(&self, state: &SyncState, notes_round: bool) -> NotesAt {
        let wait = self.settings.note_wait;
        let written = !self.settings.targets.notes
            || state.pending_notes.is_empty()
            || wait.is_zero()
            || state.notes_cannot_wait()
            || (notes_round && state.notes_waited(Timestamp::now(), wait));
        if written {
            NotesAt::Written
        } else {
            NotesAt::Waiting
        }
    }

    /// Whether a claimed contact has notes to write this round.
    fn writes_notes(&self, state: &SyncState, notes: NotesAt) -> bool {
        self.settings.targets.notes && notes == NotesAt::Written && !state.pending_notes.is_empty()
    }

    /// A contact with nothing to write this round: written at its version already (by another flusher: the queue
    /// may lag), its notes written or not due yet. It leaves the queue in the write that gives its lease back (for
    /// the notes' queue if they wait). A change that landed since keeps it queued; then only the lease goes.
    async fn dequeue(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        version: u64,
        notes: NotesAt,
    ) -> Result<Option<Claim>, StoreError> {
        match self
            .store
            .release_if_current(contact, owner, version, notes)
            .await
        {
            Ok(Release::Released | Release::Lost) => Ok(None),
            Ok(Release::Changed) => {
                self.release(contact, owner).await;
                Ok(None)
            }
            Err(error) => {
                self.release(contact, owner).await;
                Err(error)
            }
        }
    }

    async fn release(&self, contact: &ContactId, owner: &LeaseOwner) {
        if let Err(error) = self.store.release_lease(contact, owner).await {
            tracing::warn!(%error, contact_id = %contact, "could not release a lease; it will expire");
        }
    }

    /// Reads and renders what a claimed contact needs, from `state` as its lease came with it.
    async fn prepare(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        taken_at: Instant,
        state: SyncState,
        notes: NotesAt,
        rendering: &mut Duration,
    ) -> Result<Claim, StoreError> {
        // The version came with the lease, so everything read next includes every change up to it. The property
        // is written only if a change came since it was (a contact whose notes came due may have none); the notes
        // only if due.
        let wants_notes = self.writes_notes(&state, notes);
        let wants_property =
            self.settings.targets.property && state.version != state.synced_version;
        // A small contact is read whole in one request; a larger one piece by piece (see `read_small_contact`).
        // Only a contact that shows few lines is tried whole: a long history would pay for a page it cannot use.
        let small = state.messages <= SMALL_CONTACT_LINES;
        let folded = if small && (wants_property || wants_notes) {
            let cids: &[String] = if wants_notes {
                &state.pending_notes
            } else {
                &[]
            };
            self.store.read_small_contact(contact, cids).await?
        } else {
            None
        };
        let (folded_transcript, folded_notes) = match folded {
            Some(reading) => (Some(reading.transcript), Some(reading.notes)),
            None => (None, None),
        };
        let (mut property, mut archived) = (None, None);
        if wants_property {
            let source = match folded_transcript {
                Some(source) => source,
                None => {
                    self.store
                        .recent_transcript(contact, HUBSPOT_PROPERTY_LIMIT)
                        .await?
                }
            };
            if state.archived_at.is_some() {
                archived = Some(ArchivedSource {
                    conversations: self.store.all_conversations(contact).await?,
                    messages: source.messages,
                    visitor_erased: state.visitor_erased.clone(),
                    total: state.messages,
                });
            } else {
                let started = Instant::now();
                property = Some(render(
                    &source.conversations,
                    &source.messages,
                    HUBSPOT_PROPERTY_LIMIT,
                    state.messages,
                ));
                *rendering += started.elapsed();
            }
        }
        let mut conversations = Vec::new();
        if wants_notes {
            let held_notes = match folded_notes {
                Some(notes) => notes,
                None => {
                    let mut read = Vec::new();
                    for held in self
                        .store
                        .conversation_notes(contact, &state.pending_notes)
                        .await?
                    {
                        let messages = self
                            .store
                            .conversation_messages(contact, &held.conversation)
                            .await?;
                        read.push((held, messages));
                    }
                    read
                }
            };
            for (held, messages) in held_notes {
                let cid = held.conversation.cid.clone();
                let (frozen, erased) = state.frozen_notes(&cid);
                let frozen = frozen.min(held.notes.len());
                // A deletion of a message that expired here reaches the frozen notes too.
                let erase_frozen = frozen > 0
                    && (erased
                        || state.archived_at.is_some_and(|at| {
                            messages
                                .iter()
                                .any(|m| (m.deleted || m.removed) && m.created_at < at)
                        }));
                let started = Instant::now();
                let parts = render_notes(&held.conversation, &messages, NOTE_BODY_LIMIT, frozen);
                *rendering += started.elapsed();
                let surplus = (frozen + parts.len()..held.notes.len())
                    .map(|i| emptied_note(&held.conversation, i + 1))
                    .collect();
                let erased = (1..=frozen)
                    .map(|number| erased_note(&held.conversation, number))
                    .collect();
                conversations.push(ConversationWrite {
                    cid,
                    frozen,
                    erase_frozen,
                    parts,
                    notes: held.notes,
                    creating: held.creating,
                    changed: false,
                    surplus,
                    erased,
                });
            }
        }
        Ok(Claim {
            target: state.crm_target(contact),
            contact: contact.clone(),
            owner: owner.clone(),
            version: state.version,
            lease_until: taken_at + self.settings.lease_ttl,
            property,
            archived,
            conversations,
            notes,
            notes_only: state.version == state.synced_version,
            outcome: Outcome::default(),
        })
    }

    /// Hands a claimed contact back unwritten (it stays queued).
    async fn let_go(&self, claim: &Claim) {
        self.release(&claim.contact, &claim.owner).await;
    }

    /// Before a write: every lease it goes out under must outlive the write and then the late-write window, so it
    /// is renewed if need be; a claim whose lease is gone is dropped from the round.
    pub(super) async fn keep_leases(
        &self,
        claims: &mut [Claim],
        wanted: impl Fn(&Claim) -> bool,
        report: &mut FlushReport,
    ) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.renew_leases(claims, wanted).await;
        report.times.marks_us += started.elapsed().as_micros() as u64;
        result
    }

    async fn renew_leases(
        &self,
        claims: &mut [Claim],
        wanted: impl Fn(&Claim) -> bool,
    ) -> Result<(), StoreError> {
        let needed = self.settings.write_timeout + self.settings.late_write_window + CLOCK_MARGIN;
        for claim in claims.iter_mut().filter(|c| c.outcome.clear() && wanted(c)) {
            if claim.lease_until.saturating_duration_since(Instant::now()) >= needed {
                continue;
            }
            let renewed_at = Instant::now();
            if self
                .store
                .renew_lease(&claim.contact, &claim.owner, self.settings.lease_ttl)
                .await?
            {
                claim.lease_until = renewed_at + self.settings.lease_ttl;
            } else {
                claim.outcome.lost = true;
            }
        }
        Ok(())
    }

    /// Reads HubSpot's copy of the property for the archived contacts (their messages expired here) and renders
    /// their transcripts around it. A contact whose copy could not be read is not written this round.
    async fn read_archives(
        &self,
        claims: &mut [Claim],
        permit: &mut Option<Permit>,
        start_by: Instant,
        report: &mut FlushReport,
    ) {
        let mut targets = Vec::new();
        let mut owners = Vec::new();
        for (index, claim) in claims.iter().enumerate() {
            if claim.outcome.clear() && claim.archived.is_some() {
                targets.push(claim.target.clone());
                owners.push(index);
            }
        }
        if targets.is_empty() {
            return;
        }
        let crm = &self.crm;
        let results = self
            .send_batches(
                targets,
                permit,
                start_by,
                report,
                |batch, permit, deadline| async move {
                    crm.read_transcripts(&batch, permit, deadline).await
                },
            )
            .await;
        for (index, result) in owners.into_iter().zip(results) {
            let claim = &mut claims[index];
            match result {
                Sent::Done(Some(shown)) => {
                    claim.property = claim.archived.take().map(|source| source.render(&shown));
                }
                // Deleted, or merged into another record: looked up by e-mail like a write's 404.
                Sent::Done(None) => claim.outcome.gone = true,
                // A read changes nothing in HubSpot: whatever became of it, the contact waits for the next round.
                Sent::Ambiguous | Sent::Refused => claim.outcome.refused = true,
                Sent::Rejected(reason) => {
                    claim.outcome.rejected =
                        Some(format!("HubSpot refused to read the transcript: {reason}"))
                }
            }
        }
    }

    async fn write_properties(
        &self,
        claims: &mut [Claim],
        permit: &mut Option<Permit>,
        start_by: Instant,
        report: &mut FlushReport,
    ) -> Result<(), StoreError> {
        self.keep_leases(claims, |c| c.property.is_some(), report)
            .await?;
        let mut writes = Vec::new();
        let mut owners = Vec::new();
        for (index, claim) in claims.iter().enumerate() {
            if let (true, Some(transcript)) = (claim.outcome.clear(), &claim.property) {
                writes.push(TranscriptWrite {
                    contact: claim.target.clone(),
                    transcript: transcript.clone(),
                });
                owners.push(index);
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        let crm = &self.crm;
        let results = self
            .send_batches(
                writes,
                permit,
                start_by,
                report,
                |batch, permit, deadline| async move {
                    crm.write_transcripts(&batch, permit, deadline).await
                },
            )
            .await;
        for (index, result) in owners.into_iter().zip(results) {
            let outcome = &mut claims[index].outcome;
            if outcome.note(result, "the transcript") {
                outcome.gone = true;
            }
        }
        Ok(())
    }

    /// Records what the round did for one contact and releases, fences, parks or re-queues it.
    async fn settle(&self, claim: Claim, report: &mut FlushReport) -> Result<(), StoreError> {
        let contact = &claim.contact;
        for conversation in claim.conversations.iter().filter(|c| c.changed) {
            self.store
                .save_notes(contact, &conversation.cid, &conversation.notes)
                .await?;
        }
        let outcome = &claim.outcome;
        if outcome.lost {
            report.deferred += 1;
        } else if outcome.ambiguous {
            // Fencing: leave the lease to expire (see the module header).
            report.fenced += 1;
        } else if let Some(reason) = &outcome.rejected {
            self.park(&claim, reason, report).await?;
        } else if outcome.gone {
            self.find_again(&claim, report).await?;
        } else if outcome.refused || outcome.incomplete {
            self.let_go(&claim).await;
            report.deferred += 1;
        } else {
            tracing::info!(contact_id = %contact, version = claim.version, notes = claim.conversations.len(), "transcript written");
            match self
                .store
                .release_if_current(contact, &claim.owner, claim.version, claim.notes)
                .await?
            {
                Release::Released => report.synced += 1,
                Release::Changed => {
                    // Newer changes arrived during the write: their webhooks woke the flusher.
                    self.let_go(&claim).await;
                    report.behind += 1;
                }
                Release::Lost => report.behind += 1,
            }
        }
        Ok(())
    }

    /// A 404: HubSpot merges contacts into a record with a new id, so look the contact up by e-mail before giving
    /// up on it.
    async fn find_again(&self, claim: &Claim, report: &mut FlushReport) -> Result<(), StoreError> {
        let contact = &claim.contact;
        let gone = &claim.target;
        let Some(email) = self.store.contact_email(contact).await? else {
            let reason = format!(
                "HubSpot has no contact {gone} (404) and no e-mail is stored to find it by"
            );
            return self.park(claim, &reason, report).await;
        };
        let deadline = Instant::now() + self.settings.write_timeout;
        match self.crm.find_contact(&email, deadline).await {
            Ok(Some(found)) if found != *gone => {
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
        // The reason may quote HubSpot's message, which may quote the transcript: stored, shown by `backlog`, not logged.
        tracing::error!(contact_id = %claim.contact, "contact parked: its transcript is no longer written; `backlog` shows why; re-queue it with `backlog requeue` once fixed");
        self.store
            .park_contact(&claim.contact, &claim.owner, reason)
            .await?;
        report.parked += 1;
        Ok(())
    }
}
