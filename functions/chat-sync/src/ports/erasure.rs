//! Erasure: what is stored about a contact, erasing it, and following HubSpot's deletions and restores.

use super::StoreError;
use crate::domain::{ContactId, Email, Timestamp, UserId};
use async_trait::async_trait;

/// What is stored about a contact: counted before an erasure (`--dry-run` shows it), and what it erased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Items in the table: messages, conversations, the sync record, channel mappings, the visitors' channel lists.
    pub items: usize,
    /// The Stream users registered as the contact's visitors.
    pub visitors: Vec<UserId>,
    /// Channels (cids) of the contact's conversations.
    pub channels: Vec<String>,
    /// Contacts HubSpot merged into this one: their conversations are written to it, and go with it.
    pub merged: Vec<ContactId>,
}

/// Privacy erasure and HubSpot's deletions (see `crate::erasure`); operators find contacts by e-mail.
#[async_trait]
pub trait ContactErasure: Send + Sync {
    /// What is stored about the contact (read only).
    async fn footprint(&self, contact: &ContactId) -> Result<Footprint, StoreError>;
    /// Deletes every item of the contact (privacy erasure): its channel mappings first, so that no webhook records
    /// anything for it from then on, then its sync record once no flusher holds the lease on it (waiting for the
    /// holder, or failing to be retried), then everything else. Idempotent.
    async fn erase_contact(&self, contact: &ContactId) -> Result<Footprint, StoreError>;
    /// Contact deleted in HubSpot at `at` (restorable): takes it out of the queue at once and lists it for the purge
    /// at `purge_at` ([`ContactErasure::due_purges`]); every item of it also expires by TTL a while after, as a backstop.
    /// False if nothing is stored for it, or a later deletion or restore is recorded.
    async fn mark_deleted(
        &self,
        contact: &ContactId,
        at: Timestamp,
        purge_at: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Up to `limit` contacts deleted in HubSpot whose purge time is past, oldest first: to be erased, in Stream too.
    async fn due_purges(&self, now: Timestamp, limit: usize) -> Result<Vec<ContactId>, StoreError>;
    /// Contact restored in HubSpot at `at`: clears what `mark_deleted` set and queues it. False if nothing is
    /// stored, or a later deletion or restore is recorded.
    async fn restore_contact(&self, contact: &ContactId, at: Timestamp)
        -> Result<bool, StoreError>;
    /// The contacts registered with this e-mail (operators' erasure requests arrive by e-mail).
    async fn contacts_with_email(&self, email: &Email) -> Result<Vec<ContactId>, StoreError>;
}
