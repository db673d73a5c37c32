//! A contact's sync record: its version, what HubSpot has of it, and where its writes go.

use super::StoreError;
use crate::domain::{ContactId, Timestamp};
use async_trait::async_trait;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncState {
    /// Bumped by every accepted change.
    pub version: u64,
    /// The version last written to the CRM and confirmed.
    pub synced_version: u64,
    /// Messages stored for the contact (what the transcript's "earlier messages not shown" line counts).
    pub messages: u64,
    /// Where the contact lives in HubSpot now, if not under the id it was registered with (a merge gave it a new id).
    pub crm_contact: Option<ContactId>,
    /// Why the contact was taken out of the queue for good (HubSpot deleted it, or refuses its writes).
    pub parked: Option<String>,
    /// Conversations (cids) changed since their notes were last written: their notes need rewriting.
    pub pending_notes: Vec<String>,
    /// When the oldest change not yet in the notes was recorded: notes wait `FLUSH_NOTE_WAIT_MS` from then; once
    /// a notes round found the conversation still talking, its last change then (`SyncQueue::postpone_notes`).
    /// `None` with notes pending: recorded before notes waited, so due at once.
    pub notes_since: Option<Timestamp>,
    /// A change since the notes were written must reach them at once: an edit, a deletion or an erasure.
    pub notes_now: bool,
    /// When its messages last expired (see `retention`): since then HubSpot holds the only copy of some of its
    /// lines, so the property is rendered around what HubSpot shows (see `domain::archive`).
    pub archived_at: Option<Timestamp>,
    /// When its last change was recorded: what retention measures idleness from.
    pub changed_at: Option<Timestamp>,
    /// Per conversation (cid): its notes as they were when its messages expired.
    pub frozen: HashMap<String, Frozen>,
    /// Per conversation (cid): erasures recorded (truncation, deletion, the visitor's erasure), to tell whether one
    /// came after its notes froze.
    pub erasures: HashMap<String, u64>,
    /// Conversations (cids) whose visitor was erased: no visitor line of them is kept from HubSpot's copy.
    pub visitor_erased: Vec<String>,
}

/// A conversation's notes when its messages expired: never rendered again, only emptied by a later erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Frozen {
    /// The first this many notes (parts) of the conversation.
    pub notes: usize,
    /// The conversation's erasure count then.
    pub erasures: u64,
}

impl SyncState {
    /// Whether the pending notes may not wait: a change since they were written takes text out of them, or they
    /// were pending before notes waited (no `notes_since`).
    pub fn notes_cannot_wait(&self) -> bool {
        self.notes_now || self.notes_since.is_none()
    }

    /// Whether the pending notes have waited `wait` at `now`.
    pub fn notes_waited(&self, now: Timestamp, wait: Duration) -> bool {
        self.notes_since
            .is_none_or(|since| since.later_by(wait) <= now)
    }

    /// The notes of the conversation that are frozen, and whether an erasure since may have reached their lines.
    pub fn frozen_notes(&self, cid: &str) -> (usize, bool) {
        let frozen = self.frozen.get(cid).copied().unwrap_or_default();
        let erasures = self.erasures.get(cid).copied().unwrap_or(0);
        (frozen.notes, frozen.notes > 0 && erasures > frozen.erasures)
    }

    /// The HubSpot record the transcript goes to.
    pub fn crm_target(&self, contact: &ContactId) -> ContactId {
        self.crm_contact.clone().unwrap_or_else(|| contact.clone())
    }
}

/// The contact's sync record: read by the webhook, the flusher and retention; redirected after a merge in HubSpot.
#[async_trait]
pub trait SyncRecords: Send + Sync {
    /// The contact's sync record. Serialized after whole changes: messages read next include every change up to
    /// its version.
    async fn sync_state(&self, contact: &ContactId) -> Result<SyncState, StoreError>;
    /// Whether a recorded change waits to be written (the record's version past the one synced): a strong read of
    /// two numbers, for a redelivery deciding whether to flush. It sees every change committed before it, and reads
    /// no messages after it, so it needs none of `sync_state`'s serialization.
    async fn change_pending(&self, contact: &ContactId) -> Result<bool, StoreError>;
    /// Records that HubSpot merged the contact into `crm_contact`: the survivor names it (an alias item, so erasing,
    /// deleting or restoring the survivor reaches it) and its writes go there. False if nothing of the contact is
    /// stored here (nothing is recorded then: a merge of someone who never chatted is none of ours).
    async fn redirect_contact(
        &self,
        contact: &ContactId,
        crm_contact: &ContactId,
    ) -> Result<bool, StoreError>;
}
