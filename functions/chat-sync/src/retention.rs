//! Retention: message items are kept only while a transcript may still need them.
//!
//! A contact whose transcript is in HubSpot (synced) and has not changed for `MESSAGE_RETENTION_DAYS` has every
//! message item expire by TTL (`expires_at` = the day it became idle plus that period; DynamoDB deletes such items
//! within days, and reads skip them at once). The sweeper finds these contacts on the `idle-contacts` index, so
//! no scan is needed, and expires each under its lease, so no flusher renders it meanwhile.
//!
//! Expiry never shrinks or rewrites what HubSpot shows: before any item can expire, the contact is marked archived
//! and its conversations' notes frozen. When it changes again, the flusher reads the property back from HubSpot and
//! keeps every line no stored message accounts for, and writes later messages to notes after the frozen ones (see
//! `domain::archive`). Contacts that are behind or parked are never on the index: their messages stay until their
//! transcript is in HubSpot (or the contact is erased).
//!
//! What stays after expiry: the channel mappings and conversation records (to file a later message of the same
//! chat; they hold the e-mail, the visitor's name and the conversation's start), and the sync record. They go
//! with the contact (HubSpot's deletion or privacy deletion, or the `erase` command).

use crate::domain::{ContactId, Timestamp};
use crate::ports::{Archived, LeaseOwner, Store, StoreError};
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
    /// Contacts left for a later pass: busy (a flusher holds them) or changed meanwhile.
    pub skipped: u32,
    /// Contacts whose items the pass ran out of time to mark all (a long history): the next pass goes on.
    pub unfinished: u32,
}

#[derive(Clone)]
pub struct Retention {
    store: Arc<dyn Store>,
    period: RetentionPeriod,
}

impl Retention {
    pub fn new(store: Arc<dyn Store>, period: RetentionPeriod) -> Self {
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
                let expires_at = candidate.since.later_by(self.period.duration());
                match self
                    .expire(&candidate.contact, expires_at, start_by)
                    .await?
                {
                    Some(archived) => {
                        tracing::info!(contact_id = %candidate.contact, messages = archived.messages, complete = archived.complete, idle_since = %candidate.since, "messages expire: the contact has been in sync and idle for the retention period");
                        report.messages += archived.messages as u64;
                        if archived.complete {
                            report.contacts += 1;
                            progressed = true;
                        } else {
                            // Out of time mid-contact: the next pass goes on where this one stopped.
                            report.unfinished += 1;
                            return Ok(report);
                        }
                    }
                    None => {
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

    /// Under the contact's lease: expires its messages if it is still in sync. `None` if it is busy or changed.
    async fn expire(
        &self,
        contact: &ContactId,
        expires_at: Timestamp,
        until: Instant,
    ) -> Result<Option<Archived>, StoreError> {
        let owner = LeaseOwner::random();
        if !self.store.acquire_lease(contact, &owner, LEASE_TTL).await? {
            return Ok(None);
        }
        let result = async {
            let state = self.store.sync_state(contact).await?;
            if state.version != state.synced_version || state.parked.is_some() {
                return Ok(None);
            }
            self.store
                .archive_contact(contact, &owner, state.version, expires_at, until)
                .await
        }
        .await;
        if let Err(error) = self.store.release_lease(contact, &owner).await {
            tracing::warn!(%error, contact_id = %contact, "could not release a lease; it will expire");
        }
        result
    }
}
