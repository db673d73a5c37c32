//! Erasing what is stored about a contact, here and in Stream, and following HubSpot's deletions; and erasing an
//! agent who has left, in Stream (`erase_agent`).
//!
//! - **Privacy deletion** (HubSpot's GDPR delete, or an operator's `erase`): the contact's visitors are hard-deleted
//!   in Stream (users, their messages, their conversation channels), then every item of the contact here. Stream
//!   goes first because its users are found from our items: an attempt that fails half-way is retried (HubSpot
//!   redelivers, the operator reruns) and still knows whom to erase. Both steps are idempotent.
//! - **Deletion** (restorable in HubSpot for 90 days): the contact leaves the queue at once; when HubSpot would purge
//!   it, the sweeper erases it as a privacy deletion does, here and in Stream (`purge_due`); its items' TTL, a week
//!   later, is only the backstop. **Restore** clears that and queues the contact again.
//! - **Merge**: the surviving record names each contact merged into it (an alias item), so each of the above, done to
//!   the survivor, reaches them too, transitively. HubSpot announces merges by webhook; a write that meets the old id
//!   (404) finds the survivor by e-mail and records the same.

use crate::domain::{ChannelRef, ContactId, Timestamp, UserId};
use crate::ports::{
    ChatService, ContactErasure, Footprint, StoreError, SyncRecords, UpstreamError,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long HubSpot keeps a deleted contact restorable: our copy of it is purged when HubSpot's is.
pub const RESTORABLE_FOR: Duration = Duration::from_secs(90 * 86_400);
/// How long after a deleted contact's purge time its items' TTL falls: the sweeper purges it at the time itself,
/// Stream included; the TTL only takes the items if no sweeper ran for that long.
pub const PURGE_BACKSTOP: Duration = Duration::from_secs(7 * 86_400);
/// Deleted contacts looked at per query of the purge.
const PURGE_BATCH: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error("Stream did not finish the erasure: {0}")]
    Chat(#[from] UpstreamError),
}

/// What erasure needs from storage: the contact's items, and its sync record (a merge redirects it).
pub trait ErasureStore: ContactErasure + SyncRecords {}

impl<T: ContactErasure + SyncRecords + ?Sized> ErasureStore for T {}

#[derive(Clone)]
pub struct Erasure {
    store: Arc<dyn ErasureStore>,
    chat: Arc<dyn ChatService>,
}

impl Erasure {
    pub fn new(store: Arc<dyn ErasureStore>, chat: Arc<dyn ChatService>) -> Self {
        Self { store, chat }
    }

    /// What an erasure would delete (changes nothing).
    pub async fn footprint(&self, contact: &ContactId) -> Result<Footprint, StoreError> {
        self.store.footprint(contact).await
    }

    /// Erases the contact here and its visitors in Stream, and so the contacts HubSpot merged into it; returns what
    /// was found to erase.
    pub async fn erase(
        &self,
        contact: &ContactId,
        deadline: Instant,
    ) -> Result<Footprint, ErasureError> {
        // The merged ones first: this contact's items name them, so a retry after a failure still finds them.
        let mut all = self.with_merged(contact).await?;
        let Some((_, found)) = all.pop() else {
            return Ok(Footprint::default());
        };
        for (one, footprint) in &all {
            self.erase_one(one, footprint, deadline).await?;
        }
        self.erase_one(contact, &found, deadline).await?;
        Ok(found)
    }

    /// Erases one contact whose items are `found`.
    async fn erase_one(
        &self,
        contact: &ContactId,
        found: &Footprint,
        deadline: Instant,
    ) -> Result<(), ErasureError> {
        // Its channels explicitly (one with a second agent in it is no conversation channel that deleting the
        // visitor takes along), then its visitors with their messages.
        let channels: Vec<ChannelRef> = found
            .channels
            .iter()
            .filter_map(|cid| ChannelRef::parse_cid(cid).ok())
            .collect();
        self.chat.delete_channels(&channels, deadline).await?;
        self.chat.delete_users(&found.visitors, deadline).await?;
        self.store.erase_contact(contact).await?;
        tracing::info!(contact_id = %contact, items = found.items, visitors = found.visitors.len(), "contact erased");
        Ok(())
    }

    /// Erases an agent who has left (an operator's `erase --agent-subject`): their Stream user is marked deleted,
    /// what Stream holds about them (name, image) is nullified, and their Stream tokens stop working. Their answers
    /// stay in the visitors' conversations, whose record they are, and go with each visitor's erasure or expiry;
    /// nothing else of an agent is stored here. False, changing nothing, if Stream has no such user (a subject or
    /// issuer mistyped would otherwise "erase" nobody without a word). Idempotent.
    pub async fn erase_agent(
        &self,
        agent: &UserId,
        dry_run: bool,
        deadline: Instant,
    ) -> Result<bool, ErasureError> {
        if !self.chat.user_exists(agent, deadline).await? {
            return Ok(false);
        }
        if !dry_run {
            self.chat
                .prune_users(std::slice::from_ref(agent), deadline)
                .await?;
            tracing::info!(user_id = %agent, "agent erased in Stream");
        }
        Ok(true)
    }

    /// The contacts a HubSpot record stands for here, each with what is stored of it: itself and those merged into
    /// it, and into them (a record can be merged again after others were merged into it), each once, the merged
    /// ones before what they were merged into (`contact` last).
    async fn with_merged(
        &self,
        contact: &ContactId,
    ) -> Result<Vec<(ContactId, Footprint)>, StoreError> {
        let mut all: Vec<(ContactId, Footprint)> = Vec::new();
        let mut pending = vec![contact.clone()];
        while let Some(one) = pending.pop() {
            let footprint = self.store.footprint(&one).await?;
            for merged in &footprint.merged {
                if *merged != *contact
                    && !all.iter().any(|(seen, _)| seen == merged)
                    && !pending.contains(merged)
                {
                    pending.push(merged.clone());
                }
            }
            all.push((one, footprint));
        }
        all.reverse();
        Ok(all)
    }

    /// HubSpot merged `merged` into `into` (announced by its webhook, or found when a write met the old id): the
    /// survivor stands for it from now on. False if nothing of `merged` is stored here.
    pub async fn merged(&self, merged: &ContactId, into: &ContactId) -> Result<bool, StoreError> {
        let known = self.store.redirect_contact(merged, into).await?;
        if known {
            tracing::info!(contact_id = %merged, into = %into, "contact merged in HubSpot: the surviving record stands for it");
        }
        Ok(known)
    }

    /// The contact was deleted in HubSpot at `at`: stop writing it, purge it when HubSpot does.
    pub async fn deleted(&self, contact: &ContactId, at: Timestamp) -> Result<bool, StoreError> {
        let purge_at =
            Timestamp::from_unix_seconds(at.unix_seconds() + RESTORABLE_FOR.as_secs() as i64)
                .unwrap_or(at);
        let mut marked = false;
        for (one, _) in self.with_merged(contact).await? {
            if self.store.mark_deleted(&one, at, purge_at).await? {
                tracing::info!(contact_id = %one, purge_at = %purge_at.rfc3339(), "contact deleted in HubSpot: no longer synced, purged unless restored");
                marked = true;
            }
        }
        Ok(marked)
    }

    /// Erases the contacts deleted in HubSpot whose purge time has passed (HubSpot has purged them too), here and
    /// in Stream, until `deadline`; a contact that fails stays listed for the next run. Returns how many were purged.
    pub async fn purge_due(&self, deadline: Instant) -> Result<usize, StoreError> {
        let mut purged = 0;
        while Instant::now() < deadline {
            let due = self.store.due_purges(Timestamp::now(), PURGE_BATCH).await?;
            if due.is_empty() {
                break;
            }
            let mut progress = false;
            for contact in &due {
                if Instant::now() >= deadline {
                    break;
                }
                match self.erase(contact, deadline).await {
                    Ok(_) => {
                        tracing::info!(contact_id = %contact, "contact purged: deleted in HubSpot 90 days ago");
                        purged += 1;
                        progress = true;
                    }
                    Err(error) => {
                        tracing::warn!(%error, contact_id = %contact, "could not purge the contact now; the next sweep tries again");
                    }
                }
            }
            if !progress {
                break;
            }
        }
        Ok(purged)
    }

    /// The contact was restored in HubSpot at `at`: keep it and sync it again.
    pub async fn restored(&self, contact: &ContactId, at: Timestamp) -> Result<bool, StoreError> {
        let mut restored = false;
        for (one, _) in self.with_merged(contact).await? {
            if self.store.restore_contact(&one, at).await? {
                tracing::info!(contact_id = %one, "contact restored in HubSpot: synced again");
                restored = true;
            }
        }
        Ok(restored)
    }
}
