//! The DynamoDB store: one table, single-table design. The item table (every item's keys and attributes) is in
//! `docs/storage.md`, checked against `keys` and the codecs by a test.
//!
//! One file per aggregate, each implementing the port of its role: `channels` (`Channels`), `messages`
//! (`MessageLog`), `conversations` (`TimelineNotes`), `sync_record` (`SyncRecords`), `queue` (`SyncQueue`), `lease`
//! (`Leases`, held on the sync record), `flusher` (`FlusherLease`), `erasure` (`ContactErasure`), `retention`
//! (`MessageExpiry`), `budget` and `throttle` (on `gcra`). Every key is built in `keys`, every item encoded and
//! decoded in its `codec`.
//!
//! The sparse index `dirty-contacts` (dirty, dirty_since) is the queue of contacts whose newest changes are not
//! yet in HubSpot: `dirty` is the contact's shard (`0`..`7`, so no single index partition is hot), `parked` for
//! contacts taken out of the queue for good, or `purging` for contacts deleted in HubSpot (`dirty_since` is then
//! when they are purged).
//!
//! The sparse index `notes-due` (notes, notes_since) is the notes' queue: contacts whose property is in HubSpot and
//! whose notes wait (see `sync`, "Notes"), by when the oldest change not in them was recorded.
//!
//! The sparse index `idle-contacts` (idle, idle_since) holds every contact from its first sync until its messages
//! expire: retention finds there the candidates for `MESSAGE_RETENTION_DAYS` and checks each (see `retention`).
//!
//! `expires_at` is the table's TTL attribute: message items carry it once retention expires them, and every item of
//! a contact deleted in HubSpot carries the day it is purged (see `erasure`). DynamoDB deletes expired items within
//! days, so reads skip items whose `expires_at` has passed.

mod budget;
mod channels;
mod codec;
mod contact_read;
mod conversations;
mod erasure;
mod flusher;
mod gcra;
mod keys;
mod lease;
mod messages;
mod queue;
mod retention;
pub mod schema;
mod sync_record;
mod throttle;
mod transact;

pub use budget::DynamoBudget;
pub use keys::{
    contact_partition, item_kind, mapping_key, sync_record_key, SYNC as SYNC_RECORD_SORT_KEY,
};
pub use throttle::DynamoThrottle;

use crate::ports::StoreError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::Client;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn unavailable<E: std::fmt::Debug + ProvideErrorMetadata>(error: SdkError<E>) -> StoreError {
    // The SDK's Display hides the cause; the code and message say what went wrong, with no secrets.
    let detail = match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("ServiceError"),
            service.message().unwrap_or_default()
        ),
        None => format!("{error:?}").chars().take(300).collect(),
    };
    StoreError::Unavailable(detail)
}

fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("invalid request: {error}"))
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The registration throttles, in this table; `secret` (the Stream app secret) keys the hashes they store.
    pub fn throttle(&self, secret: &secrecy::SecretString) -> DynamoThrottle {
        DynamoThrottle::new(self.client.clone(), self.table.clone(), secret)
    }

    /// The rate budget kept in this table.
    pub fn budget(&self, plan: crate::budget::BudgetPlan) -> DynamoBudget {
        DynamoBudget::new(self.client.clone(), self.table.clone(), plan)
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}
