//! The flusher's batched reads: the versions of a round's contacts in a few transactional reads rather than one
//! request per contact.
//!
//! Each version must be read *transactionally* (see `Store::sync_state`): a transactional read is serialized after
//! every change that touched the item, so the messages read next include every change up to the version read.
//! A `TransactGetItems` of many sync records keeps that for each of them (it is serializable as a whole, which is
//! more than needed). It is cancelled as a whole if any of its items is being written by a transaction at that
//! moment; then its contacts are read one by one, each with `sync_state`'s own retries, so a busy contact costs
//! its batch one extra request each, never a wrong answer.

use super::codec::sync_record;
use super::keys::{contact_pk, key, SYNC};
use super::{unavailable, DynamoStore};
use crate::domain::ContactId;
use crate::ports::{StoreError, SyncRecords, SyncState};
use aws_sdk_dynamodb::types::{Get, ReturnConsumedCapacity, TransactGetItem};

/// Sync records read per transactional read (DynamoDB allows up to 100 items; fewer items, fewer cancellations).
const READS_PER_TRANSACTION: usize = 25;

impl DynamoStore {
    pub(super) async fn read_sync_states(
        &self,
        contacts: &[ContactId],
    ) -> Result<Vec<SyncState>, StoreError> {
        let mut states = Vec::with_capacity(contacts.len());
        for chunk in contacts.chunks(READS_PER_TRANSACTION) {
            match self.sync_state_batch(chunk).await? {
                Some(read) => states.extend(read),
                None => {
                    for contact in chunk {
                        states.push(SyncRecords::sync_state(self, contact).await?);
                    }
                }
            }
        }
        Ok(states)
    }

    /// One transactional read of `contacts`' sync records, in order; `None` if it was cancelled by a write in
    /// progress.
    async fn sync_state_batch(
        &self,
        contacts: &[ContactId],
    ) -> Result<Option<Vec<SyncState>>, StoreError> {
        let mut request = self
            .client
            .transact_get_items()
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        for contact in contacts {
            let get = Get::builder()
                .table_name(&self.table)
                .set_key(Some(key(contact_pk(contact), SYNC)))
                .build()
                .map_err(super::build_error)?;
            request = request.transact_items(TransactGetItem::builder().get(get).build());
        }
        let output = match request.send().await {
            Ok(output) => output,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_transaction_canceled_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(unavailable(e)),
        };
        self.consumed.add_all(output.consumed_capacity());
        // One response per item asked, in order; a missing item is a contact with no changes yet.
        output
            .responses()
            .iter()
            .map(|response| match response.item() {
                Some(item) => sync_record::decode(item),
                None => Ok(SyncState::default()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}
