//! The sync queue: contacts whose newest changes are not in HubSpot yet; and the notes' queue, contacts whose notes
//! wait (see `sync`, "Notes").

use super::{LeaseOwner, StoreError};
use crate::domain::{ContactId, Timestamp};
use async_trait::async_trait;

/// A contact whose transcript is not in HubSpot: behind (waiting in the queue) or parked (taken out of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacklogEntry {
    pub contact: ContactId,
    /// Since when it has been waiting, or since when it has been parked.
    pub since: Timestamp,
    /// `None` while waiting; why, once parked.
    pub parked: Option<String>,
}

/// How far the transcripts are behind the CRM, counted over the whole queue: the sweeper's metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BacklogHealth {
    /// Contacts with changes not yet written (queued, parked ones not included).
    pub behind: usize,
    /// Contacts taken out of the queue for good until an operator re-queues them.
    pub parked: usize,
    /// Contacts in sync but for notes that wait (see `sync`, "Notes"): not behind, written once due.
    pub notes_waiting: usize,
    /// Since when the longest-waiting queued contact has been waiting; `None` when nothing is behind.
    pub oldest_behind_since: Option<Timestamp>,
}

/// The queue: the flusher takes contacts from it and parks those HubSpot refuses; operators list and re-queue them
/// (`backlog`); the sweeper reports how far behind it is.
#[async_trait]
pub trait SyncQueue: Send + Sync {
    /// Contacts with changes not yet written to the CRM, longest waiting first, across every shard of the queue.
    async fn dirty_contacts(&self, limit: usize) -> Result<Vec<ContactId>, StoreError>;
    /// Contacts whose notes have waited since `since` or before (see `sync`, "Notes"), longest waiting first, with
    /// since when each has waited.
    async fn notes_due(
        &self,
        since: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Timestamp, ContactId)>, StoreError>;
    /// Makes the notes of a contact that `notes_due` found due wait again, from its last change, if that change is
    /// younger than `quiet_since` (its conversation still talks) and its oldest change not in the notes younger
    /// than `oldest_since` (they have not waited their longest): the notes then go out once the conversation
    /// pauses. `since` is where `notes_due` found it: a contact that moved since, or whose notes cannot wait
    /// (`notes_now`), is left as it is. No lease: only the notes' place in their queue changes, and a release
    /// that writes the notes takes the contact off the queue whatever that place. True if it was made to wait.
    async fn postpone_notes(
        &self,
        contact: &ContactId,
        since: Timestamp,
        quiet_since: Timestamp,
        oldest_since: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Takes the contact out of the queue for good, recording why, and releases our lease.
    async fn park_contact(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        reason: &str,
    ) -> Result<(), StoreError>;
    /// Puts a parked or waiting contact (back) at the front of the queue; false if it has no sync record.
    async fn requeue(&self, contact: &ContactId) -> Result<bool, StoreError>;
    /// Waiting and parked contacts, for operators.
    async fn backlog(&self, limit: usize) -> Result<Vec<BacklogEntry>, StoreError>;
    /// How many contacts are behind or parked, and the oldest waiting one's age: for monitoring.
    async fn backlog_health(&self) -> Result<BacklogHealth, StoreError>;
}
