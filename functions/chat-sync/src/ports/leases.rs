//! Leases: one writer per contact (the flusher's round, retention), one flusher at a time.

use super::{StoreError, SyncState};
use crate::domain::ContactId;
use async_trait::async_trait;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Released, and the written version is the newest: the contact is clean.
    Released,
    /// Not released: changes arrived since the version that was written. The caller still holds the lease.
    Changed,
    /// Someone else holds the lease now (ours expired).
    Lost,
}

/// What a release says of the notes of the conversations changed up to the version it marks synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotesAt {
    /// Written with the version (or not a target): nothing of the contact waits any more.
    Written,
    /// Not due yet: they stay pending, and the contact waits on the notes' queue until they are due.
    Waiting,
}

/// A random lease owner: one per flush attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseOwner(String);

impl LeaseOwner {
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A contact's lease: whoever holds it is the only one writing the contact to HubSpot or expiring its messages.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes the contact's lease if it is free or expired, and returns its sync record as the lease was taken: read
    /// like [`super::SyncRecords::sync_state`] (messages read next include every change up to its version). `None`:
    /// held by someone else, or the contact has no sync record (no changes) or is being erased.
    async fn acquire_lease(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<Option<SyncState>, StoreError>;
    /// Extends our lease; false if it is no longer ours.
    async fn renew_lease(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    /// Releases our lease and marks `version` synced, only if no change arrived since `version`. `notes` says
    /// whether the notes of the conversations changed up to it were written too (`NotesAt::Written`: the contact is
    /// wholly in sync) or wait (`NotesAt::Waiting`: the contact joins the notes' queue, see `sync`, "Notes").
    async fn release_if_current(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        version: u64,
        notes: NotesAt,
    ) -> Result<Release, StoreError>;
    /// Releases our lease whatever the version (the contact stays queued).
    async fn release_lease(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
    ) -> Result<(), StoreError>;
}

/// The flusher's lease: one flusher writes batches at a time, and the others hand it their contacts (see `sync`).
#[async_trait]
pub trait FlusherLease: Send + Sync {
    /// Takes the flusher's lease (one flusher writes batches at a time) if it is free or expired; `None` if not.
    async fn acquire_flusher(
        &self,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<Option<FlusherTurn>, StoreError>;
    /// Asks the flusher that holds the lease now to take this contact; false if no flusher holds it.
    async fn wake_flusher(&self, contact: &ContactId) -> Result<bool, StoreError>;
    /// Extends our flusher lease and returns the contacts woken for it; `None` if the lease is no longer ours.
    async fn renew_flusher(
        &self,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<Option<Vec<ContactId>>, StoreError>;
    /// Forgets these wake-ups (the flusher has taken them).
    async fn clear_wakes(&self, contacts: &[ContactId]) -> Result<(), StoreError>;
    /// Releases our flusher lease. With `if_idle`, only if no contact was woken meanwhile (false: keep flushing);
    /// without, pending wake-ups stay for the next flusher.
    async fn release_flusher(&self, owner: &LeaseOwner, if_idle: bool) -> Result<bool, StoreError>;
    /// Gives our flusher lease up before our last round, so that whoever comes meanwhile becomes the next flusher,
    /// whose first round is due at `next_round_ms` (Unix milliseconds). Pending wake-ups stay for it; they are also
    /// returned (the last round takes them too, in case nobody comes). `None` if the lease was not ours.
    async fn hand_over_flusher(
        &self,
        owner: &LeaseOwner,
        next_round_ms: i64,
    ) -> Result<Option<Vec<ContactId>>, StoreError>;
}

/// What a flusher learns on taking the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlusherTurn {
    /// When the flusher that handed the lease over would have started its next round (Unix milliseconds), if one
    /// did: the round its wake set waits for is due then, not a whole linger later.
    pub next_round_ms: Option<i64>,
}
