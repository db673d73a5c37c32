//! Which timeline notes hold each conversation: the flusher's record of what it created in HubSpot.

use super::StoreError;
use crate::domain::{ContactId, Conversation, NoteId};
use async_trait::async_trait;

/// A conversation and the notes on the contact's timeline that hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationNotes {
    pub conversation: Conversation,
    /// Part 1 first; empty before the first flush.
    pub notes: Vec<NoteId>,
    /// A note was being created when the last writer lost track of it (see [`TimelineNotes::creating_note`](super::TimelineNotes::creating_note)).
    pub creating: bool,
}

/// The notes of each conversation, kept by the flusher (see `domain::note`).
#[async_trait]
pub trait TimelineNotes: Send + Sync {
    /// These conversations of the contact, with the notes that hold them.
    async fn conversation_notes(
        &self,
        contact: &ContactId,
        cids: &[String],
    ) -> Result<Vec<ConversationNotes>, StoreError>;
    /// Marks that a note of the conversation is being created: if the answer never comes, the next writer looks
    /// for it on the contact's timeline before creating another.
    async fn creating_note(&self, contact: &ContactId, cid: &str) -> Result<(), StoreError>;
    /// The notes that hold the conversation now (part 1 first); clears the mark of a note being created.
    async fn save_notes(
        &self,
        contact: &ContactId,
        cid: &str,
        notes: &[NoteId],
    ) -> Result<(), StoreError>;
}
