//! The domain: values that can only hold valid data, and the pure transcript renderer.

pub mod archive;
mod contact;
mod conversation;
pub mod identity;
mod ids;
pub mod line;
pub mod message;
pub mod note;
pub mod transcript;

pub use contact::{Email, PersonName};
pub use conversation::{Cleared, Conversation};
pub use identity::Identity;
pub use ids::{ChannelId, ChannelRef, ChannelType, ContactId, MessageId, NoteId, UserId};
pub use message::{
    Author, MessageChange, MessageKind, MessageVersion, Role, StoredMessage, Timestamp,
};

/// Why a value was rejected; `field` names the input so the API can say which one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: &'static str,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}
