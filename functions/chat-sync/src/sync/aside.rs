//! Notes rounds beside the property's rounds, when the flusher is behind.
//!
//! A notes round claims, besides a batch of contacts behind, the contacts whose notes are due (see `sync`,
//! "Notes"): up to twice a round's claims, and, for those of them whose property changed too, a second property
//! call of a few contacts. When the queue's page is full (a backlog) that round is on the property's critical path:
//! at five times a busy desk, notes rounds doubled the lag p99 (docs/design-flusher.md §16). So a flusher that is
//! behind runs the due contacts in a round of their own *beside* its rounds, in the same task (joined, not
//! spawned: the flusher's tracing span and its callers' task-locals cover both), one such round at a time.
//!
//! *Invariant: a contact is written by one round at a time.* The per-contact lease makes it so whatever the
//! rounds' candidates are: each round claims its contacts' leases, and a round that finds one held leaves it
//! queued. The property's rounds also leave out the contacts of the notes round in flight, so as not to spend a
//! refused lease attempt on each. Their wake-ups stay in the flusher item's wake set until that round has let
//! them go, so a change that arrived meanwhile is taken by a later round of this flusher, or by the next flusher.
//!
//! *Invariant: no lost wake-up.* A flusher never goes idle (gives its lease up for want of work) while a notes
//! round runs beside it: with nothing else to do it waits for that round and looks again. A turn that ends
//! otherwise (its last round, its budget, a refusal, a failure) ends when the notes round does; what that round
//! could not write stays queued, as a last round's, and the wake-ups it held stay for the next flusher.

use super::{FlushReport, TranscriptSync};
use crate::domain::ContactId;
use crate::ports::{BudgetError, Caller, StoreError};
use std::sync::Mutex;
use std::time::Instant;
use tokio::sync::Notify;

/// The notes round beside a flusher's rounds: what it holds, what it did.
#[derive(Default)]
pub(super) struct Aside {
    state: Mutex<State>,
    /// A round was handed over, or the turn is ending.
    started: Notify,
    /// The round in flight has ended.
    ended: Notify,
}

#[derive(Default)]
struct State {
    /// The contacts of the round in flight (none: no round).
    holding: Vec<ContactId>,
    /// The round handed over and not begun yet.
    next: Option<Vec<ContactId>>,
    /// What the rounds did, added up.
    report: FlushReport,
    /// A round's storage failure, for the flusher to stop on.
    failed: Option<StoreError>,
    /// The turn is over: no more rounds.
    closed: bool,
}

impl Aside {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Never held across an await, and every update leaves the state whole: a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a notes round is in flight.
    pub(super) fn running(&self) -> bool {
        !self.state().holding.is_empty()
    }

    /// Whether the notes round in flight holds `contact`.
    pub(super) fn holds(&self, contact: &ContactId) -> bool {
        self.state().holding.contains(contact)
    }

    /// Hands `contacts` to a notes round (none in flight: see `running`).
    pub(super) fn start(&self, contacts: Vec<ContactId>) {
        if contacts.is_empty() {
            return;
        }
        let mut state = self.state();
        state.holding = contacts.clone();
        state.next = Some(contacts);
        drop(state);
        self.started.notify_one();
    }

    /// A notes round's storage failure, once: the flusher stops on it as on its own.
    pub(super) fn check(&self) -> Result<(), StoreError> {
        match self.state().failed.take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Waits for the notes round in flight, if any, to end.
    pub(super) async fn wait(&self) -> Result<(), StoreError> {
        loop {
            // Made before the look, so an end between the two is not missed.
            let ended = self.ended.notified();
            if !self.running() {
                return self.check();
            }
            ended.await;
        }
    }

    /// The turn is over: the round in flight ends the notes rounds.
    pub(super) fn close(&self) {
        self.state().closed = true;
        self.started.notify_one();
    }

    /// What the notes rounds did, and their failure if one failed.
    pub(super) fn finish(&self) -> Result<FlushReport, StoreError> {
        let mut state = self.state();
        match state.failed.take() {
            Some(error) => Err(error),
            None => Ok(state.report),
        }
    }
}

impl TranscriptSync {
    /// Runs the notes rounds handed to `aside`, one at a time, until it is closed.
    pub(super) async fn notes_beside(&self, aside: &Aside, start_by: Instant) {
        loop {
            let started = aside.started.notified();
            let next = {
                let mut state = aside.state();
                match state.next.take() {
                    Some(contacts) => Some(contacts),
                    None if state.closed => return,
                    None => None,
                }
            };
            let Some(contacts) = next else {
                started.await;
                continue;
            };
            let result = self.notes_round_beside(contacts, start_by).await;
            let mut state = aside.state();
            state.holding.clear();
            match result {
                Ok(report) => state.report.add(&report),
                Err(error) => state.failed = Some(error),
            }
            drop(state);
            aside.ended.notify_waiters();
        }
    }

    async fn notes_round_beside(
        &self,
        contacts: Vec<ContactId>,
        start_by: Instant,
    ) -> Result<FlushReport, StoreError> {
        let permit = match self.budget.acquire(Caller::Background, start_by).await {
            Ok(permit) => permit,
            Err(BudgetError::Exhausted { .. }) => {
                // Their notes stay due, and their changes queued, for a later round.
                return Ok(FlushReport {
                    deferred: contacts.len() as u32,
                    ..FlushReport::default()
                });
            }
            Err(BudgetError::Storage(error)) => return Err(error),
        };
        self.round(contacts, true, permit, start_by).await
    }
}
