//! The table's key schema, the one source of truth (template.yaml is checked against it by a test), and
//! creating the table from it.

use super::{build_error, unavailable, DynamoStore};
use crate::ports::StoreError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

pub const PARTITION_KEY: &str = "pk";
pub const SORT_KEY: &str = "sk";
pub const DIRTY_INDEX: &str = "dirty-contacts";
pub const DIRTY_INDEX_PARTITION_KEY: &str = "dirty";
pub const DIRTY_INDEX_SORT_KEY: &str = "dirty_since";
/// Partition-key values of the queue: a contact's shard is fixed by its id. Raising this later is safe (the
/// sweeper reads every shard up to it); lowering it would hide the upper shards.
pub const DIRTY_SHARDS: u32 = 8;
/// The index partition of contacts taken out of the queue for good.
pub const PARKED: &str = "parked";
/// The index partition of contacts deleted in HubSpot, sorted by when they are to be purged (`dirty_since` is
/// the purge time there): the sweeper erases each when its time comes, in Stream too (see `erasure`).
pub const PURGING: &str = "purging";
/// The index projects only what the sweeper reads (`ProjectionType: INCLUDE`).
pub const DIRTY_INDEX_PROJECTION: &[&str] = &["contact_id"];
/// The sparse index of contacts whose notes wait (see `sync`, "Notes"), by when their oldest unwritten change was
/// recorded, or their last once a notes round found their conversation still talking (`postpone_notes`). One
/// partition, not sharded like the queue: a contact joins it, or moves in it, at most once a note wait
/// (`FLUSH_NOTE_WAIT_MS`), not once a message, so it takes a few writes a second at the busiest desk.
pub const NOTES_INDEX: &str = "notes-due";
pub const NOTES_INDEX_PARTITION_KEY: &str = "notes";
pub const NOTES_INDEX_SORT_KEY: &str = "notes_since";
/// When the oldest change not in the notes was recorded, once the wait (`NOTES_INDEX_SORT_KEY`) was moved to a
/// later change (`SyncQueue::postpone_notes`): what the notes' longest wait counts from. Removed with the rest.
pub const NOTES_OLDEST: &str = "notes_oldest";
/// The one partition-key value of the notes' queue.
pub const NOTES_WAITING: &str = "waiting";
pub const NOTES_INDEX_PROJECTION: &[&str] = &["contact_id"];
/// The sparse index of retention's candidates: a contact from its first sync on (see `retention`).
pub const IDLE_INDEX: &str = "idle-contacts";
pub const IDLE_INDEX_PARTITION_KEY: &str = "idle";
pub const IDLE_INDEX_SORT_KEY: &str = "idle_since";
/// Sharded like the queue (`DIRTY_SHARDS`, by the same hash of the contact id).
pub const IDLE_INDEX_PROJECTION: &[&str] = &["contact_id"];
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// On-demand: traffic follows website chats, spiky and mostly idle.
pub const BILLING_MODE: &str = "PAY_PER_REQUEST";

impl DynamoStore {
    /// Creates the table with the schema above (on-demand, TTL on leases). Used by local setup and tests;
    /// deployed tables come from template.yaml. An existing table is left as it is.
    pub async fn create_table(&self) -> Result<bool, StoreError> {
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)
        };
        let key_element = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(build_error)
        };
        let index = |name: &str, partition: &str, sort: &str, projected: &[&str]| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key_element(partition, KeyType::Hash)?)
                .key_schema(key_element(sort, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .set_non_key_attributes(Some(
                            projected.iter().map(|name| (*name).to_owned()).collect(),
                        ))
                        .build(),
                )
                .build()
                .map_err(build_error)
        };
        let result = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::from(BILLING_MODE))
            .attribute_definitions(attribute(PARTITION_KEY)?)
            .attribute_definitions(attribute(SORT_KEY)?)
            .attribute_definitions(attribute(DIRTY_INDEX_PARTITION_KEY)?)
            .attribute_definitions(attribute(DIRTY_INDEX_SORT_KEY)?)
            .attribute_definitions(attribute(NOTES_INDEX_PARTITION_KEY)?)
            .attribute_definitions(attribute(NOTES_INDEX_SORT_KEY)?)
            .attribute_definitions(attribute(IDLE_INDEX_PARTITION_KEY)?)
            .attribute_definitions(attribute(IDLE_INDEX_SORT_KEY)?)
            .key_schema(key_element(PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key_element(SORT_KEY, KeyType::Range)?)
            .global_secondary_indexes(index(
                DIRTY_INDEX,
                DIRTY_INDEX_PARTITION_KEY,
                DIRTY_INDEX_SORT_KEY,
                DIRTY_INDEX_PROJECTION,
            )?)
            .global_secondary_indexes(index(
                NOTES_INDEX,
                NOTES_INDEX_PARTITION_KEY,
                NOTES_INDEX_SORT_KEY,
                NOTES_INDEX_PROJECTION,
            )?)
            .global_secondary_indexes(index(
                IDLE_INDEX,
                IDLE_INDEX_PARTITION_KEY,
                IDLE_INDEX_SORT_KEY,
                IDLE_INDEX_PROJECTION,
            )?)
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(unavailable(e)),
        }
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(TTL_ATTRIBUTE)
            .build()
            .map_err(build_error)?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_billing_mode_is_one_the_sdk_knows() {
        // A typo would become `BillingMode::Unknown` and fail only at CreateTable.
        assert_eq!(BillingMode::from(BILLING_MODE), BillingMode::PayPerRequest);
    }
}
