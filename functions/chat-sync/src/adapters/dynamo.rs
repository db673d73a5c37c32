//! The DynamoDB store: one table, single-table design. Item shapes (pk / sk):
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | channel mapping | `CHANNEL#<type>:<id>` | `CHANNEL` | contact_id, email, visitor_id, visitor_name, channel_type, channel_id, created_at |
//! | conversation | `CONTACT#<contact>` | `CONV#<type>:<id>` | cid, channel_id, started_at |
//! | message | `CONTACT#<contact>` | `MSG#<created_at>#<message id>` | message_id, cid, author_id, author_name, role, body, attachments, created_at, updated_at, edited, deleted |
//! | sync record | `CONTACT#<contact>` | `SYNC` | contact_id, change_version, synced_version, dirty, dirty_since |
//! | lease | `CONTACT#<contact>` | `LEASE` | lease_owner, lease_until_ms, expires_at (TTL) |
//!
//! The sparse index `dirty-contacts` (dirty, dirty_since) lists contacts whose newest changes are not yet in HubSpot.

use crate::domain::{
    transcript::Conversation, ChannelId, ChannelRef, ChannelType, ContactId, Email, MessageChange,
    MessageId, MessageKind, Role, StoredMessage, Timestamp, UserId,
};
use crate::ports::{
    ChannelMapping, LeaseOwner, Recorded, Release, Store, StoreError, SyncState, TranscriptSource,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, Get, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ScalarAttributeType,
    TimeToLiveSpecification, TransactGetItem, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::time::Duration;

/// The table's key schema, the one source of truth (template.yaml is checked against it by a test).
pub mod schema {
    pub const PARTITION_KEY: &str = "pk";
    pub const SORT_KEY: &str = "sk";
    pub const DIRTY_INDEX: &str = "dirty-contacts";
    pub const DIRTY_INDEX_PARTITION_KEY: &str = "dirty";
    pub const DIRTY_INDEX_SORT_KEY: &str = "dirty_since";
    /// The index projects only what the sweeper reads (`ProjectionType: INCLUDE`).
    pub const DIRTY_INDEX_PROJECTION: &[&str] = &["contact_id"];
    pub const TTL_ATTRIBUTE: &str = "expires_at";
    /// On-demand: traffic follows website chats, spiky and mostly idle.
    pub const BILLING_MODE: &str = "PAY_PER_REQUEST";
}

/// Lease items outlive their lease by a day before TTL garbage-collects them; correctness never depends on TTL
/// (it deletes lazily), only on `lease_until_ms`.
const LEASE_GARBAGE_AFTER: Duration = Duration::from_secs(86_400);
/// The one value of the sparse index's partition key.
const DIRTY: &str = "1";
/// Transactions touching one contact's sync record can conflict; they are retried this many times.
const CONFLICT_RETRIES: u32 = 8;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
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

/// What a cancelled transaction's reasons say.
enum Cancelled {
    /// The condition of the item at this index failed.
    Condition(usize),
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
                Cancelled::Condition(index)
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
        }
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
        let index = GlobalSecondaryIndex::builder()
            .index_name(schema::DIRTY_INDEX)
            .key_schema(key_element(
                schema::DIRTY_INDEX_PARTITION_KEY,
                KeyType::Hash,
            )?)
            .key_schema(key_element(schema::DIRTY_INDEX_SORT_KEY, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .set_non_key_attributes(Some(
                        schema::DIRTY_INDEX_PROJECTION
                            .iter()
                            .map(|name| (*name).to_owned())
                            .collect(),
                    ))
                    .build(),
            )
            .build()
            .map_err(build_error)?;
        let result = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::from(schema::BILLING_MODE))
            .attribute_definitions(attribute(schema::PARTITION_KEY)?)
            .attribute_definitions(attribute(schema::SORT_KEY)?)
            .attribute_definitions(attribute(schema::DIRTY_INDEX_PARTITION_KEY)?)
            .attribute_definitions(attribute(schema::DIRTY_INDEX_SORT_KEY)?)
            .key_schema(key_element(schema::PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key_element(schema::SORT_KEY, KeyType::Range)?)
            .global_secondary_indexes(index)
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
    ) -> Result<Result<(), usize>, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(Ok(())),
                Err(error) => error,
            };
            match error.as_service_error().map(cancelled) {
                Some(Cancelled::Condition(index)) => return Ok(Err(index)),
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
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
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

    fn bump_version(&self, contact: &ContactId) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(contact), "SYNC")))
            .update_expression(
                "ADD change_version :one SET contact_id = :contact, dirty = :dirty, \
                 dirty_since = if_not_exists(dirty_since, :now)",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":contact", s(contact.as_str()))
            .expression_attribute_values(":dirty", s(DIRTY))
            .expression_attribute_values(":now", s(Timestamp::now().key()))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn lease_key(contact: &ContactId) -> Item {
        key(contact_pk(contact), "LEASE")
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn save_channel(&self, mapping: &ChannelMapping) -> Result<(), StoreError> {
        let cid = mapping.channel.cid();
        let mut channel_item = key(channel_pk(&mapping.channel), "CHANNEL");
        channel_item.extend([
            ("contact_id".to_owned(), s(mapping.contact_id.as_str())),
            ("email".to_owned(), s(mapping.email.as_str())),
            ("visitor_id".to_owned(), s(mapping.visitor_id.as_str())),
            ("visitor_name".to_owned(), s(&mapping.visitor_name)),
            (
                "channel_type".to_owned(),
                s(mapping.channel.channel_type.as_str()),
            ),
            (
                "channel_id".to_owned(),
                s(mapping.channel.channel_id.as_str()),
            ),
            ("created_at".to_owned(), s(mapping.created_at.key())),
        ]);
        let mut conversation = key(contact_pk(&mapping.contact_id), &format!("CONV#{cid}"));
        conversation.extend([
            ("cid".to_owned(), s(&cid)),
            (
                "channel_id".to_owned(),
                s(mapping.channel.channel_id.as_str()),
            ),
            ("started_at".to_owned(), s(mapping.created_at.key())),
        ]);
        let not_exists = "attribute_not_exists(#pk)";
        let names = [("#pk", schema::PARTITION_KEY)];
        let items = vec![
            self.put(channel_item, not_exists, &names, Item::new())?,
            self.put(conversation, not_exists, &names, Item::new())?,
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(StoreError::AlreadyExists),
        }
    }

    async fn channel(&self, channel: &ChannelRef) -> Result<Option<ChannelMapping>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(channel_pk(channel), "CHANNEL")))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        Ok(Some(ChannelMapping {
            channel: ChannelRef::new(
                ChannelType::parse(get_s(&item, "channel_type")?).map_err(corrupt)?,
                ChannelId::parse(get_s(&item, "channel_id")?).map_err(corrupt)?,
            ),
            contact_id: ContactId::parse(get_s(&item, "contact_id")?).map_err(corrupt)?,
            email: Email::parse(get_s(&item, "email")?).map_err(corrupt)?,
            visitor_id: UserId::parse("visitor_id", get_s(&item, "visitor_id")?)
                .map_err(corrupt)?,
            visitor_name: get_s(&item, "visitor_name")?.to_owned(),
            created_at: Timestamp::parse("created_at", get_s(&item, "created_at")?)
                .map_err(corrupt)?,
        }))
    }

    async fn record_change(
        &self,
        contact: &ContactId,
        change: &MessageChange,
        role: Role,
    ) -> Result<Recorded, StoreError> {
        let deleted = change.kind == MessageKind::Deleted;
        let mut item = key(
            contact_pk(contact),
            &message_sk(&change.created_at, &change.message_id),
        );
        let attachments = if deleted {
            vec![]
        } else {
            change.attachments.iter().map(s).collect()
        };
        item.extend([
            ("message_id".to_owned(), s(change.message_id.as_str())),
            ("cid".to_owned(), s(change.channel.cid())),
            ("author_id".to_owned(), s(&change.author.id)),
            ("author_name".to_owned(), s(&change.author.name)),
            ("role".to_owned(), s(role.as_str())),
            // Deleting erases the text (privacy) but keeps the line's place.
            (
                "body".to_owned(),
                s(if deleted { "" } else { change.text.as_str() }),
            ),
            ("attachments".to_owned(), AttributeValue::L(attachments)),
            ("created_at".to_owned(), s(change.created_at.key())),
            ("updated_at".to_owned(), s(change.updated_at.key())),
            ("edited".to_owned(), AttributeValue::Bool(change.edited)),
            ("deleted".to_owned(), AttributeValue::Bool(deleted)),
        ]);
        // Newer state wins, deletion is final, and anything already known is a no-op: so duplicates and any
        // delivery order converge to the same item.
        let (condition, values): (&str, Item) = match change.kind {
            MessageKind::New => ("attribute_not_exists(#pk)", Item::new()),
            MessageKind::Updated => (
                "attribute_not_exists(#pk) OR (deleted = :false AND updated_at < :updated AND body <> :body)",
                HashMap::from([
                    (":false".to_owned(), AttributeValue::Bool(false)),
                    (":updated".to_owned(), s(change.updated_at.key())),
                    (":body".to_owned(), s(&change.text)),
                ]),
            ),
            MessageKind::Deleted => (
                "attribute_not_exists(#pk) OR deleted = :false",
                HashMap::from([(":false".to_owned(), AttributeValue::Bool(false))]),
            ),
        };
        let items = vec![
            self.put(item, condition, &[("#pk", schema::PARTITION_KEY)], values)?,
            self.bump_version(contact)?,
        ];
        Ok(match self.transact(items).await? {
            Ok(()) => Recorded::Applied,
            Err(_) => Recorded::Unchanged,
        })
    }

    async fn sync_state(&self, contact: &ContactId) -> Result<SyncState, StoreError> {
        // Read transactionally: a plain read is only read-committed per item, so it could see a change's version
        // bump before its message item; a transactional read is serialized after the whole change, so the
        // messages read next include every change up to this version.
        let get = Get::builder()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(contact), "SYNC")))
            .build()
            .map_err(build_error)?;
        let mut attempt = 0;
        let output = loop {
            attempt += 1;
            match self
                .client
                .transact_get_items()
                .transact_items(TransactGetItem::builder().get(get.clone()).build())
                .send()
                .await
            {
                Ok(output) => break output,
                // A change to this contact is committing right now: read again once it has.
                Err(e)
                    if attempt < CONFLICT_RETRIES
                        && e.as_service_error()
                            .is_some_and(|s| s.is_transaction_canceled_exception()) =>
                {
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                }
                Err(e) => return Err(unavailable(e)),
            }
        };
        Ok(output
            .responses()
            .first()
            .and_then(|response| response.item())
            .map(|item| SyncState {
                version: get_n(item, "change_version"),
                synced_version: get_n(item, "synced_version"),
            })
            .unwrap_or_default())
    }

    async fn transcript_source(&self, contact: &ContactId) -> Result<TranscriptSource, StoreError> {
        let mut source = TranscriptSource::default();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .expression_attribute_values(":pk", s(contact_pk(contact)))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(unavailable)?;
            let sk = get_s(&item, schema::SORT_KEY)?;
            if sk.starts_with("CONV#") {
                source.conversations.push(Conversation {
                    cid: get_s(&item, "cid")?.to_owned(),
                    channel_id: get_s(&item, "channel_id")?.to_owned(),
                    started_at: Timestamp::parse("started_at", get_s(&item, "started_at")?)
                        .map_err(corrupt)?,
                });
            } else if sk.starts_with("MSG#") {
                let attachments = item
                    .get("attachments")
                    .and_then(|v| v.as_l().ok())
                    .map(|list| list.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
                    .unwrap_or_default();
                source.messages.push(StoredMessage {
                    message_id: MessageId::parse(get_s(&item, "message_id")?).map_err(corrupt)?,
                    cid: get_s(&item, "cid")?.to_owned(),
                    author_name: get_s(&item, "author_name")?.to_owned(),
                    role: Role::parse(get_s(&item, "role")?),
                    text: get_s(&item, "body")?.to_owned(),
                    attachments,
                    created_at: Timestamp::parse("created_at", get_s(&item, "created_at")?)
                        .map_err(corrupt)?,
                    edited: get_bool(&item, "edited"),
                    deleted: get_bool(&item, "deleted"),
                });
            }
        }
        Ok(source)
    }

    async fn acquire_lease(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = Timestamp::now().unix_millis();
        let until = now + ttl.as_millis() as i64;
        let mut item = Self::lease_key(contact);
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
            .send()
            .await;
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
            .set_key(Some(Self::lease_key(contact)))
            .update_expression("SET lease_until_ms = :until, #ttl = :ttl")
            .condition_expression("lease_owner = :owner")
            .expression_attribute_names("#ttl", schema::TTL_ATTRIBUTE)
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(
                ":ttl",
                n(until / 1000 + LEASE_GARBAGE_AFTER.as_secs() as i64),
            )
            .expression_attribute_values(":owner", s(owner.as_str()))
            .send()
            .await;
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
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::lease_key(contact)))
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", s(owner.as_str()))
            .build()
            .map_err(build_error)?;
        let mark_synced = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(contact), "SYNC")))
            .update_expression("SET synced_version = :version REMOVE dirty, dirty_since")
            .condition_expression("change_version = :version")
            .expression_attribute_values(":version", n(version))
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(mark_synced).build(),
        ];
        Ok(match self.transact(items).await? {
            Ok(()) => Release::Released,
            Err(0) => Release::Lost,
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
            .set_key(Some(Self::lease_key(contact)))
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", s(owner.as_str()))
            .send()
            .await;
        conditional(result).map(|_| ())
    }

    async fn requeue_dirty(&self, contact: &ContactId) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(contact), "SYNC")))
            .update_expression("SET dirty_since = :now")
            .condition_expression("attribute_exists(dirty)")
            .expression_attribute_values(":now", s(Timestamp::now().key()))
            .send()
            .await;
        // A failed condition means clean already: nothing to requeue.
        conditional(result).map(|_| ())
    }

    async fn dirty_contacts(&self, limit: usize) -> Result<Vec<ContactId>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(schema::DIRTY_INDEX)
            .key_condition_expression("dirty = :dirty")
            .expression_attribute_values(":dirty", s(DIRTY))
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .items()
            .iter()
            .map(|item| ContactId::parse(get_s(item, "contact_id")?).map_err(corrupt))
            .collect()
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
