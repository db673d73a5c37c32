//! Retention: the idle index and expiring a contact's messages (see `crate::retention`).

use super::{LeaseOwner, StoreError, SyncState};
use crate::domain::{ContactId, Timestamp};
use async_trait::async_trait;
use std::time::Instant;

/// What one expiry of a contact's messages did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archived {
    /// Message items given their TTL now.
    pub messages: usize,
    /// Every message item has its TTL: the contact is off the idle index. Otherwise time ran out and the next pass
    /// goes on where this one stopped.
    pub complete: bool,
}

/// An entry of the idle index: the contact joined it (at its first sync) or was last found active at `since`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleContact {
    pub contact: ContactId,
    pub since: Timestamp,
}

/// Expiring idle contacts' messages (see `crate::retention`).
#[async_trait]
pub trait MessageExpiry: Send + Sync {
    /// The idle index's contacts whose entry is older than `before`, oldest first, across every shard: the
    /// candidates for expiring their messages, each to be checked (see `retention`).
    async fn idle_contacts(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<IdleContact>, StoreError>;
    /// Moves the contact's idle-index entry to `since` (it changed, or is not in sync): looked at again once the
    /// period has passed from then.
    async fn defer_idle(&self, contact: &ContactId, since: Timestamp) -> Result<(), StoreError>;
    /// Expires the contact's messages, under our lease, if it is still in sync, not parked and unchanged since
    /// `state` (its sync record, read under that lease): records it (freezing each conversation's notes as they
    /// are), then gives every message item the TTL `expires_at` (until `until` at most), and once all have it takes
    /// the contact off the idle index. `None` if the contact changed (or our lease is gone) and nothing was done.
    async fn archive_contact(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        state: &SyncState,
        expires_at: Timestamp,
        until: Instant,
    ) -> Result<Option<Archived>, StoreError>;
}
