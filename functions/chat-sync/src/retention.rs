//! Retention: message items are kept only while a transcript may still need them.
//!
//! A contact whose transcript is in HubSpot (synced) and has not changed for `MESSAGE_RETENTION_DAYS` has every
//! message item expire by TTL (`expires_at` = its last change plus that period; DynamoDB deletes such items within
//! days, and reads skip them at once). The sweeper finds the candidates on the `idle-contacts` index, so no scan
//! is needed: a contact is on it from its first sync, with the time it joined or was last found active. Under the
//! contact's lease the sweeper checks it: in sync and unchanged for the period, its messages expire; changed since,
//! its entry moves to its last change; behind or parked, to now — looked at again a period later either way. So
//! the index is written once per contact and period, not with every message.
//!
//! Expiry never shrinks or rewrites what HubSpot shows: before any item can expire, the contact is marked archived
//! and its conversations' notes frozen. When it changes again, the flusher reads the property back from HubSpot and
//! keeps every line no stored message accounts for, and writes later messages to notes after the frozen ones (see
//! `domain::archive`). The messages of a contact that is behind or parked stay until its transcript is in HubSpot
//! (or the contact is erased).
//!
//! What stays after expiry: the channel mappings and conversation records (to file a later message of the same
//! chat; they hold the e-mail, the visitor's name and the conversation's start), and the sync record. They go
//! with the contact (HubSpot's deletion or privacy deletion, or the `erase` command).

use crate::domain::{ContactId, Timestamp};
use crate::ports::{
    Archived, IdleContact, LeaseOwner, Leases, MessageExpiry, StoreError, SyncRecords,
};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Contacts looked at per read of the idle index.
const BATCH: usize = 100;
/// The contact's lease while its items are marked: longer than a sweep's budget (`SWEEPER_BUDGET_SECONDS`, whose
/// end stops the marking), so no flusher renders the contact meanwhile.
const LEASE_TTL: Duration = Duration::from_secs(60);

/// How long a synced, idle contact's messages are kept: `MESSAGE_RETENTION_DAYS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPeriod(Duration);

impl RetentionPeriod {
    pub const DEFAULT_DAYS: u64 = 30;
    /// Ten years: longer is as good as keeping messages forever, which is not an option.
    pub const MAX_DAYS: u64 = 3_650;

    pub fn days(days: u64) -> Self {
        Self(Duration::from_secs(days.clamp(1, Self::MAX_DAYS) * 86_400))
    }

    pub fn duration(&self) -> Duration {
        self.0
    }
}

/// What one retention pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Contacts whose messages now expire.
    pub contacts: u32,
    /// Message items given their TTL.
    pub messages: u64,
    /// Contacts found active (changed since their entry) or not in sync: their entry moved on.
    pub deferred: u32,
    /// Contacts left for a later pass: busy (a flusher holds them) or changed meanwhile.
    pub skipped: u32,
    /// Contacts whose items the pass ran out of time to mark all (a long history): the next pass goes on.
    pub unfinished: u32,
}

/// What retention needs from storage: the idle index and the expiry, the contact's lease, and its sync record.
pub trait RetentionStore: MessageExpiry + Leases + SyncRecords {}

impl<T: MessageExpiry + Leases + SyncRecords + ?Sized> RetentionStore for T {}

#[derive(Clone)]
pub struct Retention {
    store: Arc<dyn RetentionStore>,
    period: RetentionPeriod,
}

impl Retention {
    pub fn new(store: Arc<dyn RetentionStore>, period: RetentionPeriod) -> Self {
        Self { store, period }
    }

    /// Expires the messages of every contact idle for the period at `now`, until `start_by` (no contact is started
    /// after it).
    pub async fn run(
        &self,
        now: Timestamp,
        start_by: Instant,
    ) -> Result<RetentionReport, StoreError> {
        let mut report = RetentionReport::default();
        let cutoff = now.earlier_by(self.period.duration());
        // Busy or changed this pass: still at the head of the index, left for the next pass.
        let mut left: Vec<ContactId> = Vec::new();
        loop {
            let idle = self.store.idle_contacts(cutoff, BATCH).await?;
            let mut progressed = false;
            for candidate in &idle {
                if left.contains(&candidate.contact) {
                    continue;
                }
                if Instant::now() >= start_by {
                    return Ok(report);
                }
                match self.look_at(candidate, now, start_by).await? {
                    Looked::Expired(archived) => {
                        tracing::info!(contact_id = %candidate.contact, messages = archived.messages, complete = archived.complete, "messages expire: the contact has been in sync and idle for the retention period");
                        report.messages += archived.messages as u64;
                        if !archived.complete {
                            // Out of time mid-contact: the next pass goes on where this one stopped.
                            report.unfinished += 1;
                            return Ok(report);
                        }
                        report.contacts += 1;
                        progressed = true;
                    }
                    Looked::Deferred => {
                        report.deferred += 1;
                        progressed = true;
                    }
                    Looked::Busy => {
                        report.skipped += 1;
                        left.push(candidate.contact.clone());
                    }
                }
            }
            // A page with nothing done holds only contacts left for the next pass.
            if idle.len() < BATCH || !progressed {
                return Ok(report);
            }
        }
    }

    /// Under the contact's lease: expires its messages if it is in sync and unchanged for the period, else moves
    /// its entry on.
    async fn look_at(
        &self,
        candidate: &IdleContact,
        now: Timestamp,
        until: Instant,
    ) -> Result<Looked, StoreError> {
        let contact = &candidate.contact;
        let owner = LeaseOwner::random();
        let Some(state) = self.store.acquire_lease(contact, &owner, LEASE_TTL).await? else {
            return Ok(Looked::Busy);
        };
        let result = async {
            // Records from before `changed_at` was kept: the entry's time is the best known.
            let changed_at = state.changed_at.unwrap_or(candidate.since);
            if state.version != state.synced_version
                || !state.pending_notes.is_empty()
                || state.parked.is_some()
            {
                // Its messages stay until they are in HubSpot, in its notes too: looked at again a period from now.
                self.store.defer_idle(contact, now).await?;
                return Ok(Looked::Deferred);
            }
            if changed_at > now.earlier_by(self.period.duration()) {
                self.store.defer_idle(contact, changed_at).await?;
                return Ok(Looked::Deferred);
            }
            let expires_at = changed_at.later_by(self.period.duration());
            Ok(
                match self
                    .store
                    .archive_contact(contact, &owner, &state, expires_at, until)
                    .await?
                {
                    Some(archived) => Looked::Expired(archived),
                    None => Looked::Busy,
                },
            )
        }
        .await;
        if let Err(error) = self.store.release_lease(contact, &owner).await {
            tracing::warn!(%error, contact_id = %contact, "could not release a lease; it will expire");
        }
        result
    }
}

/// What became of one candidate.
enum Looked {
    Expired(Archived),
    /// Active since its entry, or not in sync: its entry moved on.
    Deferred,
    /// Its lease is held, or it changed while being looked at: left for the next pass.
    Busy,
}
