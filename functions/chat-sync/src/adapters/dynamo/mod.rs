//! The DynamoDB store: one table, single-table design. Item shapes (pk / sk):
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | channel mapping | `CHANNEL#<type>:<id>` | `CHANNEL` | contact_id, email, visitor_id, visitor_name, identity (`verified` / `unverified`), notes_only, channel_type, channel_id, created_at, expires_at (TTL, while deleted in HubSpot) |
//! | visitor's channel | `USER#<visitor id>` | `CHANNEL#<type>:<id>` | contact_id, cid |
//! | conversation | `CONTACT#<contact>` | `CONV#<type>:<id>` | cid, channel_id, started_at, identity |
//! | message | `CONTACT#<contact>` | `MSG#<created_at>#<message id>` | message_id, cid, author_id, author_name, role, body, attachments, created_at, updated_at, edited, deleted, restored, erased, removed, notes_only, expires_at (TTL, once retention expires it) |
//! | sync record | `CONTACT#<contact>` | `SYNC` | contact_id, change_version, synced_version, message_count, crm_contact_id, parked_reason, dirty, dirty_since, changed_at, idle, idle_since, archived_at, frozen (cid → notes, erasures), `erasures:<cid>`, visitor_erased |
//! | merge alias | `CONTACT#<surviving id>` | `ALIAS#<contact>` | contact_id (merged into this record in HubSpot) |
//! | lease | `CONTACT#<contact>` | `LEASE` | lease_owner, lease_until_ms, expires_at (TTL) |
//! | flusher | `FLUSHER` | `FLUSHER` | lease_owner, lease_until_ms, wake (set of contact ids) |
//! | rate budget | `BUDGET#hubspot` | `SHARED` / `REGISTRATIONS` | tat_ms, daily_until_ms |
//! | registration throttle | `THROTTLE#ip#<keyed hash>` / `THROTTLE#email#<keyed hash>` | `THROTTLE` | tat_ms, expires_at (TTL) |
//!
//! The sparse index `dirty-contacts` (dirty, dirty_since) is the queue of contacts whose newest changes are not
//! yet in HubSpot: `dirty` is the contact's shard (`0`..`7`, so no single index partition is hot), `parked` for
//! contacts taken out of the queue for good, or `purging` for contacts deleted in HubSpot (`dirty_since` is then
//! when they are purged).
//!
//! The sparse index `idle-contacts` (idle, idle_since) holds every contact from its first sync until its messages
//! expire: retention finds there the candidates for `MESSAGE_RETENTION_DAYS` and checks each (see `retention`).
//!
//! `expires_at` is the table's TTL attribute: leases carry it for garbage collection, message items once retention
//! expires them, and every item of a contact deleted in HubSpot carries the day it is purged (see `erasure`).
//! DynamoDB deletes expired items within days, so reads skip items whose `expires_at` has passed.

mod budget;
mod contact_read;
mod erasure;
mod flush_batch;
mod gcra;
mod retention;
mod store;
mod throttle;

pub use budget::DynamoBudget;
pub use throttle::DynamoThrottle;

use crate::domain::{ChannelRef, ContactId, MessageId, Timestamp};
use crate::ports::StoreError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConsumedCapacity, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnConsumedCapacity,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The table's key schema, the one source of truth (template.yaml is checked against it by a test).
pub mod schema {
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
    /// The sparse index of retention's candidates: a contact from its first sync on (see `retention`).
    pub const IDLE_INDEX: &str = "idle-contacts";
    pub const IDLE_INDEX_PARTITION_KEY: &str = "idle";
    pub const IDLE_INDEX_SORT_KEY: &str = "idle_since";
    /// Sharded like the queue (`DIRTY_SHARDS`, by the same hash of the contact id).
    pub const IDLE_INDEX_PROJECTION: &[&str] = &["contact_id"];
    pub const TTL_ATTRIBUTE: &str = "expires_at";
    /// On-demand: traffic follows website chats, spiky and mostly idle.
    pub const BILLING_MODE: &str = "PAY_PER_REQUEST";
}

/// Lease items outlive their lease by a day before TTL garbage-collects them; correctness never depends on TTL
/// (it deletes lazily), only on `lease_until_ms`.
const LEASE_GARBAGE_AFTER: Duration = Duration::from_secs(86_400);
/// Transactions touching one contact's sync record can conflict; they are retried this many times.
const CONFLICT_RETRIES: u32 = 8;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    consumed: Arc<Consumed>,
}

/// Capacity units every request of this store consumed (DynamoDB reports them with `ReturnConsumedCapacity`;
/// DynamoDB Local too), so benchmarks can show what a flush costs.
#[derive(Debug, Default)]
pub struct Consumed {
    /// Thousandths of a unit, so half units add up exactly.
    read_milli: AtomicU64,
    write_milli: AtomicU64,
}

/// Read and write capacity units.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    pub read: f64,
    pub write: f64,
}

impl std::ops::Sub for Units {
    type Output = Units;
    fn sub(self, other: Units) -> Units {
        Units {
            read: self.read - other.read,
            write: self.write - other.write,
        }
    }
}

impl Consumed {
    fn add(&self, capacity: Option<&ConsumedCapacity>) {
        let Some(capacity) = capacity else { return };
        let milli = |units: Option<f64>| (units.unwrap_or(0.0) * 1000.0).round() as u64;
        // A request reports read and write units, or (older emulators) only their total as one kind.
        let (read, write) = match (
            capacity.read_capacity_units(),
            capacity.write_capacity_units(),
        ) {
            (None, None) => (capacity.capacity_units(), None),
            (read, write) => (read, write),
        };
        self.read_milli.fetch_add(milli(read), Ordering::Relaxed);
        self.write_milli.fetch_add(milli(write), Ordering::Relaxed);
    }

    fn add_all(&self, capacities: &[ConsumedCapacity]) {
        for capacity in capacities {
            self.add(Some(capacity));
        }
    }

    fn units(&self) -> Units {
        Units {
            read: self.read_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            write: self.write_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([
        (schema::PARTITION_KEY.to_owned(), s(pk)),
        (schema::SORT_KEY.to_owned(), s(sk)),
    ])
}

fn contact_pk(contact: &ContactId) -> String {
    format!("CONTACT#{contact}")
}

/// The queue shard of a contact: FNV-1a of its id, so it is the same in every process and release.
fn shard(contact: &ContactId) -> String {
    let hash = contact
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    (hash % u64::from(schema::DIRTY_SHARDS)).to_string()
}

fn channel_pk(channel: &ChannelRef) -> String {
    format!("CHANNEL#{}", channel.cid())
}

fn message_sk(created_at: &Timestamp, message_id: &MessageId) -> String {
    format!("MSG#{}#{}", created_at.key(), message_id)
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

/// A conditional write's outcome: `true` if written, `false` if its condition failed.
fn conditional<O, E: std::fmt::Debug + ProvideErrorMetadata>(
    result: Result<O, SdkError<E>>,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error().and_then(|s| s.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(unavailable(e)),
    }
}

fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("invalid request: {error}"))
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a string")))
}

fn get_n(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn get_bool(item: &Item, name: &str) -> bool {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A transaction whose condition on one of its items failed: nothing of it was written.
#[derive(Debug)]
struct ConditionFailed {
    /// The position of the item whose condition failed.
    index: usize,
    /// That item as it was, when the write asked for it (`ReturnValuesOnConditionCheckFailure::AllOld`); `None`
    /// also when there was no item.
    item: Option<Item>,
}

/// What a cancelled transaction's reasons say.
enum Cancelled {
    /// The condition of an item failed.
    Condition(ConditionFailed),
    /// Another transaction touched the same items: retry.
    Conflict,
    Other(String),
}

fn cancelled(
    error: &aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
) -> Cancelled {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match error {
        E::TransactionCanceledException(e) => {
            let reasons = e.cancellation_reasons();
            if let Some(index) = reasons
                .iter()
                .position(|r| r.code() == Some("ConditionalCheckFailed"))
            {
                Cancelled::Condition(ConditionFailed {
                    index,
                    item: reasons[index].item().cloned(),
                })
            } else if reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"))
            {
                Cancelled::Conflict
            } else {
                Cancelled::Other(e.message().unwrap_or("transaction cancelled").to_owned())
            }
        }
        E::TransactionInProgressException(_) => Cancelled::Conflict,
        other => Cancelled::Other(format!(
            "{}: {}",
            other.code().unwrap_or("TransactWriteItems"),
            other.message().unwrap_or_default()
        )),
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            consumed: Arc::default(),
        }
    }

    /// Capacity units consumed by this store's requests so far.
    pub fn consumed(&self) -> Units {
        self.consumed.units()
    }

    /// The rate budget kept in this table.
    /// The registration throttles, in this table; `secret` (the Stream app secret) keys the hashes they store.
    pub fn throttle(&self, secret: &secrecy::SecretString) -> DynamoThrottle {
        DynamoThrottle::new(self.client.clone(), self.table.clone(), secret)
    }

    pub fn budget(&self, plan: crate::budget::BudgetPlan) -> DynamoBudget {
        DynamoBudget::new(self.client.clone(), self.table.clone(), plan)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

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
            .billing_mode(BillingMode::from(schema::BILLING_MODE))
            .attribute_definitions(attribute(schema::PARTITION_KEY)?)
            .attribute_definitions(attribute(schema::SORT_KEY)?)
            .attribute_definitions(attribute(schema::DIRTY_INDEX_PARTITION_KEY)?)
            .attribute_definitions(attribute(schema::DIRTY_INDEX_SORT_KEY)?)
            .attribute_definitions(attribute(schema::IDLE_INDEX_PARTITION_KEY)?)
            .attribute_definitions(attribute(schema::IDLE_INDEX_SORT_KEY)?)
            .key_schema(key_element(schema::PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key_element(schema::SORT_KEY, KeyType::Range)?)
            .global_secondary_indexes(index(
                schema::DIRTY_INDEX,
                schema::DIRTY_INDEX_PARTITION_KEY,
                schema::DIRTY_INDEX_SORT_KEY,
                schema::DIRTY_INDEX_PROJECTION,
            )?)
            .global_secondary_indexes(index(
                schema::IDLE_INDEX,
                schema::IDLE_INDEX_PARTITION_KEY,
                schema::IDLE_INDEX_SORT_KEY,
                schema::IDLE_INDEX_PROJECTION,
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
            .attribute_name(schema::TTL_ATTRIBUTE)
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

    /// Runs a transaction, retrying conflicts with other transactions on the same items.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), ConditionFailed>, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let error = match result {
                Ok(output) => {
                    self.consumed.add_all(output.consumed_capacity());
                    return Ok(Ok(()));
                }
                Err(error) => error,
            };
            match error.as_service_error().map(cancelled) {
                Some(Cancelled::Condition(failed)) => return Ok(Err(failed)),
                Some(Cancelled::Conflict) if attempt < CONFLICT_RETRIES => {
                    let jitter = rand::random::<u64>() % 20;
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt) + jitter))
                        .await;
                }
                Some(Cancelled::Conflict) => {
                    return Err(StoreError::Unavailable(
                        "transaction kept conflicting".into(),
                    ))
                }
                Some(Cancelled::Other(detail)) => return Err(StoreError::Unavailable(detail)),
                None => return Err(unavailable(error)),
            }
        }
    }

    fn put(
        &self,
        item: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        // A failed condition returns the item as it is (`ConditionFailed::item`), at no extra cost: a caller may
        // decide its next attempt on what is there.
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (k, v) in names {
            put = put.expression_attribute_names(*k, *v);
        }
        if !values.is_empty() {
            put = put.set_expression_attribute_values(Some(values));
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }

    /// Every item a query matches, page after page.
    async fn query_all(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = query
                .clone()
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(unavailable)?;
            self.consumed.add(output.consumed_capacity());
            items.extend(output.items().iter().cloned());
            start = output.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    fn lease_key(contact: &ContactId) -> Item {
        key(contact_pk(contact), "LEASE")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_billing_mode_is_one_the_sdk_knows() {
        // A typo would become `BillingMode::Unknown` and fail only at CreateTable.
        assert_eq!(
            BillingMode::from(schema::BILLING_MODE),
            BillingMode::PayPerRequest
        );
    }
}
