//! The ports: what the handlers need from the CRM, the chat service and storage. Adapters implement them.
//!
//! Storage is split by role, each trait named after what its callers do with it, so that a caller (and a fake of it)
//! depends on only what it uses: [`Channels`], [`MessageLog`], [`TimelineNotes`], [`SyncRecords`], [`SyncQueue`],
//! [`Leases`], [`FlusherLease`], [`ContactErasure`], [`MessageExpiry`]. A consumer that needs several names them
//! together in one trait of its own (`sync::FlushStore`, say), implemented for everything that has them all.

mod budget;
mod channels;
mod chat;
mod crm;
mod erasure;
mod leases;
mod message_log;
mod notes;
mod queue;
mod retention;
mod sync_record;
mod upstream;

pub use budget::*;
pub use channels::*;
pub use chat::*;
pub use crm::*;
pub use erasure::*;
pub use leases::*;
pub use message_log::*;
pub use notes::*;
pub use queue::*;
pub use retention::*;
pub use sync_record::*;
pub use upstream::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the item already exists")]
    AlreadyExists,
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}
