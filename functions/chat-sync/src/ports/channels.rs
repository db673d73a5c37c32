//! Channels and the identities behind them: what a registration stores and every webhook reads.

use super::StoreError;
use crate::domain::{ChannelRef, Cleared, ContactId, Email, Identity, Timestamp, UserId};
use async_trait::async_trait;

/// Where a channel's messages belong: stored at registration, read by every webhook. Without the e-mail the
/// visitor registered with: it is stored beside the mapping (`Channels::save_channel`), but only finding a merged
/// contact again reads it (`Channels::contact_email`). The webhook keeps copies of mappings for minutes
/// (`handlers::mapping_cache`), and no change needs the e-mail, so it never reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMapping {
    pub channel: ChannelRef,
    pub contact_id: ContactId,
    pub visitor_id: UserId,
    pub visitor_name: String,
    /// How the visitor was identified at registration.
    pub identity: Identity,
    pub created_at: Timestamp,
    /// What Stream erased of the conversation: later deliveries of erased messages store nothing.
    pub cleared: Option<Cleared>,
    /// Set while the contact is deleted in HubSpot (restorable): when its items expire. Nothing is recorded for it
    /// meanwhile.
    pub purge_at: Option<Timestamp>,
    /// The conversation's lines go to the contact's timeline notes only, never into its `chat_transcript`
    /// property: an unverified visitor who typed the e-mail of a contact that existed before could be anyone, and
    /// the property is what the customer's record shows (a stranger's 200 messages would push the customer's own
    /// lines out of it). The notes say the e-mail was not verified.
    pub notes_only: bool,
    /// Which life of the contact's sync record the conversation was registered into (see [`RecordEpoch`]); `None`
    /// until the store has saved the mapping, and on a mapping saved before records had epochs.
    pub epoch: Option<RecordEpoch>,
}

/// The id of one life of a contact's sync record: made when the record is (by the registration that creates it,
/// or the first one after an erasure deleted it), kept on every mapping registered while that record lives. The
/// store's own gate (its `bump_version`): a change whose mapping carries the record's epoch is admitted by the
/// record alone, which mirrors every clearing of the conversation since its registration; a record made again
/// after an erasure has another epoch, so it admits nothing of the erased contact's conversations. Opaque outside
/// the store: one id per life, not per conversation, so the record does not grow with the contact's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEpoch(String);

impl RecordEpoch {
    /// A new life's id: 64 random bits as hex (two lives of one contact's record never share one).
    pub fn random() -> Self {
        let mut id = uuid::Uuid::new_v4().simple().to_string();
        id.truncate(16);
        Self(id)
    }

    /// An epoch as stored.
    pub fn stored(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ChannelMapping {
    /// The mapping a registration stores: nothing of the conversation erased yet, the contact not deleted. The
    /// later states (`cleared`, `purge_at`) are set only by what happens to the conversation afterwards.
    pub fn registered(
        channel: ChannelRef,
        contact_id: ContactId,
        visitor_id: UserId,
        visitor_name: String,
        identity: Identity,
        created_at: Timestamp,
    ) -> Self {
        Self {
            channel,
            contact_id,
            visitor_id,
            visitor_name,
            identity,
            created_at,
            cleared: None,
            purge_at: None,
            notes_only: false,
            epoch: None,
        }
    }

    /// The same mapping, its lines for the timeline notes only (see [`ChannelMapping::notes_only`]).
    pub fn notes_only(self, notes_only: bool) -> Self {
        Self { notes_only, ..self }
    }
}

/// A channel's mapping to its contact, and the contact's registrations: written by the registration, read by the
/// webhook (whose contact a change belongs to) and the flusher (the e-mail that finds a merged contact again).
#[async_trait]
pub trait Channels: Send + Sync {
    /// Stores the channel mapping, the e-mail the visitor registered with beside it, and the contact's
    /// conversation header; never overwrites an existing channel. Returns the mapping as stored: with the epoch of
    /// the contact's sync record it joined.
    async fn save_channel(
        &self,
        mapping: &ChannelMapping,
        email: &Email,
    ) -> Result<ChannelMapping, StoreError>;
    /// The channel's mapping (never the e-mail stored beside it) as it was a moment ago: a clearing or an erasure
    /// may have landed since (every change recorded through it is checked against the mapping as it is when it
    /// commits), but a mapping that exists is never reported missing.
    async fn channel(&self, channel: &ChannelRef) -> Result<Option<ChannelMapping>, StoreError>;
    /// The channels a visitor was registered with.
    async fn visitor_channels(&self, visitor: &UserId) -> Result<Vec<ChannelRef>, StoreError>;
    /// The e-mail the contact registered with (to find it again after a merge).
    async fn contact_email(&self, contact: &ContactId) -> Result<Option<Email>, StoreError>;
}
