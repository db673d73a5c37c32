//! A contact's conversation (one Stream channel) and what Stream erased of it: what the transcript, the notes and
//! the archive of expired lines all render around.

use super::{Identity, StoredMessage, Timestamp};

/// A conversation (one Stream channel) of the contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub cid: String,
    pub channel_id: String,
    pub started_at: Timestamp,
    /// How the visitor was identified when the conversation began (its header says so).
    pub identity: Identity,
    /// What Stream erased of it, if anything.
    pub cleared: Option<Cleared>,
}

/// What Stream erased of a conversation (`channel.truncated`, `channel.deleted`): the CRM copy erases it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleared {
    /// Messages created before this instant are gone.
    Truncated(Timestamp),
    /// The whole conversation is gone.
    Deleted,
}

impl Cleared {
    /// Whether a message created at `created_at` survives.
    pub fn keeps(&self, created_at: Timestamp) -> bool {
        match self {
            Cleared::Truncated(until) => created_at >= *until,
            Cleared::Deleted => false,
        }
    }

    /// The wider of two clearings (they only ever grow).
    pub fn max(self, other: Cleared) -> Cleared {
        match (self, other) {
            (Cleared::Deleted, _) | (_, Cleared::Deleted) => Cleared::Deleted,
            (Cleared::Truncated(a), Cleared::Truncated(b)) => Cleared::Truncated(a.max(b)),
        }
    }
}

impl Conversation {
    /// Whether the message is still shown (not erased by a truncation or deletion of the conversation).
    pub fn shows(&self, message: &StoredMessage) -> bool {
        self.cleared
            .is_none_or(|cleared| cleared.keeps(message.created_at))
    }

    /// How the conversation's header says it was truncated, if it was.
    pub fn truncation_note(&self) -> String {
        match self.cleared {
            Some(Cleared::Truncated(until)) => {
                format!(" (messages before {} removed in chat)", until.human())
            }
            _ => String::new(),
        }
    }
}
