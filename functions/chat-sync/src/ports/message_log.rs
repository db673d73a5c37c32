//! The message log: every change Stream delivered, recorded by the webhook, and what the flusher renders from it.

use super::{ChannelMapping, ConversationNotes, StoreError};
use crate::domain::{Cleared, ContactId, Conversation, MessageChange, Role, StoredMessage, UserId};
use async_trait::async_trait;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The change was new and is now stored; the contact's version was bumped.
    Applied,
    /// Already known (duplicate delivery, or older than what is stored): nothing changed.
    Unchanged,
    /// Refused by the gate as the change committed: the contact is being erased or is deleted in HubSpot, or a
    /// clearing of the conversation erased the message. Nothing changed. A caller that acted on a copy of the
    /// channel's mapping older than the store's (the webhook's warm copy) reads the mapping again: a copy from
    /// before an erasure is refused under the record made since.
    Refused,
}

/// What a transcript is rendered from: the newest messages (oldest first) and their conversations.
#[derive(Debug, Clone, Default)]
pub struct TranscriptSource {
    pub conversations: Vec<Conversation>,
    pub messages: Vec<StoredMessage>,
}

/// A contact read whole for a flush (see [`MessageLog::read_small_contact`]).
#[derive(Debug, Clone)]
pub struct ContactReading {
    /// What [`MessageLog::recent_transcript`] returns.
    pub transcript: TranscriptSource,
    /// For each conversation asked for that exists (by cid): what `TimelineNotes::conversation_notes` and
    /// [`MessageLog::conversation_messages`] return for it.
    pub notes: Vec<(ConversationNotes, Vec<StoredMessage>)>,
}

/// The contact's messages and conversations: the webhook records changes and erasures, the flusher reads what it
/// renders.
#[async_trait]
pub trait MessageLog: Send + Sync {
    /// Records a change to a message of `mapping`'s conversation idempotently and, atomically with it, bumps the
    /// contact's version and queues it. The mapping is the one the change was looked up by: its contact, whether
    /// its lines go to the timeline notes only ([`ChannelMapping::notes_only`]) and when it was registered.
    /// `Unchanged` also when, as the change commits, the channel's mapping is gone or a clearing of the
    /// conversation covers the message: nothing is recorded then.
    async fn record_change(
        &self,
        mapping: &ChannelMapping,
        change: &MessageChange,
        role: Role,
    ) -> Result<Recorded, StoreError>;
    /// Records that Stream erased (part of) a conversation and erases the same messages here: their text and the
    /// lines. Idempotent; `Unchanged` if it was already erased at least this far.
    async fn clear_conversation(
        &self,
        mapping: &ChannelMapping,
        cleared: Cleared,
    ) -> Result<Recorded, StoreError>;
    /// Erases one author's messages in a conversation (soft: "message deleted"; `remove`: no line).
    async fn erase_author(
        &self,
        mapping: &ChannelMapping,
        author: &UserId,
        remove: bool,
    ) -> Result<Recorded, StoreError>;
    /// The newest messages whose lines fill at least `limit` characters (or all of them), and the conversations
    /// they belong to. Reads only that much, however long the contact's history.
    async fn recent_transcript(
        &self,
        contact: &ContactId,
        limit: usize,
    ) -> Result<TranscriptSource, StoreError>;
    /// Every conversation of the contact (to read HubSpot's copy of the conversations whose messages expired).
    async fn all_conversations(&self, contact: &ContactId)
        -> Result<Vec<Conversation>, StoreError>;
    /// Every message of one conversation to show (oldest first).
    async fn conversation_messages(
        &self,
        contact: &ContactId,
        conversation: &Conversation,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// The flusher's reads of a contact with few items (the newest messages and their conversations, and the
    /// note ids and messages of the conversations `cids`) in one request; `None` if the contact has too many
    /// items for that: then they are read piece by piece. Like the pieces, it reads every change up to the
    /// version `sync_state` returned before it.
    async fn read_small_contact(
        &self,
        contact: &ContactId,
        cids: &[String],
    ) -> Result<Option<ContactReading>, StoreError>;
}
