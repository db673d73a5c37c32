//! Contact leases (`Leases`): one writer per contact, by conditional writes on its `LEASE` item.

use super::codec::{n, s};
use super::keys::{contact_pk, key, lease_key, shard, SYNC};
use super::{build_error, conditional, schema, DynamoStore};
use crate::domain::{ContactId, Timestamp};
use crate::ports::{LeaseOwner, Leases, Release, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, ReturnConsumedCapacity, TransactWriteItem, Update};
use std::time::Duration;

use super::schema::{IDLE_INDEX_PARTITION_KEY as IDLE, IDLE_INDEX_SORT_KEY as IDLE_SINCE};

/// Lease items outlive their lease by a day before TTL garbage-collects them; correctness never depends on TTL
/// (it deletes lazily), only on `lease_until_ms`.
const LEASE_GARBAGE_AFTER: Duration = Duration::from_secs(86_400);

impl DynamoStore {
    /// Our lease on the contact, released as part of a transaction (which fails if the lease is no longer ours).
    pub(super) fn release_with(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(lease_key(contact)))
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", s(owner.as_str()))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}

#[async_trait]
impl Leases for DynamoStore {
    async fn acquire_lease(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = Timestamp::now().unix_millis();
        let until = now + ttl.as_millis() as i64;
        let mut item = lease_key(contact);
        item.extend([
            ("lease_owner".to_owned(), s(owner.as_str())),
            ("lease_until_ms".to_owned(), n(until)),
            (
                schema::TTL_ATTRIBUTE.to_owned(),
                n(until / 1000 + LEASE_GARBAGE_AFTER.as_secs() as i64),
            ),
        ]);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR lease_until_ms < :now")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .expression_attribute_values(":now", n(now))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        if let Ok(output) = &result {
            self.consumed.add(output.consumed_capacity());
        }
        conditional(result)
    }

    async fn renew_lease(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let until = Timestamp::now().unix_millis() + ttl.as_millis() as i64;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(lease_key(contact)))
            .update_expression("SET lease_until_ms = :until, #ttl = :ttl")
            .condition_expression("lease_owner = :owner")
            .expression_attribute_names("#ttl", schema::TTL_ATTRIBUTE)
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(
                ":ttl",
                n(until / 1000 + LEASE_GARBAGE_AFTER.as_secs() as i64),
            )
            .expression_attribute_values(":owner", s(owner.as_str()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        if let Ok(output) = &result {
            self.consumed.add(output.consumed_capacity());
        }
        conditional(result)
    }

    async fn release_if_current(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        version: u64,
    ) -> Result<Release, StoreError> {
        // One transaction: the lease goes away only together with the check that nothing changed. A change that
        // lands first makes the check fail, so its writer (who could not get the lease) is never stranded.
        let mark_synced = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(contact), SYNC)))
            // In sync: on the idle index from its first sync on (see `retention`). Only joining it writes the index;
            // a contact already there keeps its entry, so a busy contact's syncs cost no index write.
            .update_expression(format!(
                "SET synced_version = :version, {IDLE} = if_not_exists({IDLE}, :shard), \
                 {IDLE_SINCE} = if_not_exists({IDLE_SINCE}, :now) \
                 REMOVE dirty, dirty_since, pending_notes"
            ))
            .condition_expression("change_version = :version")
            .expression_attribute_values(":version", n(version))
            .expression_attribute_values(":shard", s(shard(contact)))
            .expression_attribute_values(":now", s(Timestamp::now().key()))
            .build()
            .map_err(build_error)?;
        let items = vec![
            self.release_with(contact, owner)?,
            TransactWriteItem::builder().update(mark_synced).build(),
        ];
        Ok(match self.transact(items).await? {
            Ok(()) => Release::Released,
            Err(failed) if failed.index == 0 => Release::Lost,
            Err(_) => Release::Changed,
        })
    }

    async fn release_lease(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(lease_key(contact)))
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", s(owner.as_str()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        if let Ok(output) = &result {
            self.consumed.add(output.consumed_capacity());
        }
        conditional(result).map(|_| ())
    }
}
