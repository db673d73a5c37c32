//! Erasure and deletion of a contact's items.
//!
//! A contact's items are its partition `CONTACT#<id>` (messages, conversations, sync record with its lease), the
//! channel mapping of each of its conversations (`CHANNEL#<cid>`), and each visitor's entry for that channel
//! (`USER#<visitor>` / `CHANNEL#<cid>`). The channel mappings are the gate: every change recorded for a contact
//! checks, in its own transaction, that its channel's mapping still exists, or that its sync record, which
//! mirrors the mapping's part of the gate (see `bump_version`), is not being erased; and every flusher write to the
//! contact's conversation or sync record requires the item to exist. So once the mappings are gone and the record
//! is marked `erasing`, nothing can be recorded for the contact again; the sync record, which holds the contact's
//! lease, goes once no flusher holds it (`delete_sync_record`), and a second pass over the partition catches
//! whatever committed before the mark.

use super::codec::{alias, get_s, n, s, Item};
use super::keys::{
    alias_sk, contact_pk, key, mapping_key, shard, sync_record_key, visitor_channel_sk, visitor_pk,
    ALIAS_PREFIX, CHANNEL_PREFIX, CONVERSATION_PREFIX, MAPPING,
};
use super::{build_error, corrupt, schema, unavailable, DynamoStore};
use crate::domain::{ContactId, Email, Timestamp, UserId};
use crate::ports::{ContactErasure, Footprint, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// BatchWriteItem's limit.
const BATCH_WRITE: usize = 25;
/// Rounds of retrying the items a batch write left unprocessed (throttling) before giving up for now.
const UNPROCESSED_RETRIES: u32 = 8;
/// How long an erasure waits for the flusher writing the contact: longer than a lease lasts (15 s by default)
/// unless its holder keeps renewing it, which it does only while it writes.
const ERASE_WAIT: Duration = Duration::from_secs(30);
/// How often it looks whether the flusher is done.
const ERASE_POLL: Duration = Duration::from_millis(100);

/// The keys of every item of a contact, found from its partition.
#[derive(Default)]
struct ContactItems {
    /// `USER#<visitor>` entries: deleted first, while the mappings still name the visitors (a retry finds them).
    visitor_entries: Vec<Item>,
    /// Channel mappings: deleted next; from then on no webhook records anything for the contact.
    mappings: Vec<Item>,
    /// The contact's partition.
    partition: Vec<Item>,
    visitors: Vec<UserId>,
    channels: Vec<String>,
    /// Contacts merged into this one (its `ALIAS#` items).
    merged: Vec<ContactId>,
    /// The record this contact was merged into, whose `ALIAS#` item names it.
    merged_into: Option<ContactId>,
}

impl ContactItems {
    fn footprint(&self) -> Footprint {
        Footprint {
            items: self.visitor_entries.len() + self.mappings.len() + self.partition.len(),
            visitors: self.visitors.clone(),
            channels: self.channels.clone(),
            merged: self.merged.clone(),
        }
    }

    fn is_empty(&self) -> bool {
        self.visitor_entries.is_empty() && self.mappings.is_empty() && self.partition.is_empty()
    }

    /// Every key, in deletion order.
    fn all(&self) -> impl Iterator<Item = &Item> {
        self.visitor_entries
            .iter()
            .chain(&self.mappings)
            .chain(&self.partition)
    }
}

/// What `set_expiry` does to a deleted contact's items.
#[derive(Clone, Copy)]
enum Expiry {
    /// Expire at this time (unix seconds), unless an item expires earlier already.
    Purge(i64),
    /// Restored: clear the purge at this time, and only it.
    Restore(i64),
}

fn key_of(item: &Item) -> Result<Item, StoreError> {
    Ok(key(
        get_s(item, schema::PARTITION_KEY)?.to_owned(),
        get_s(item, schema::SORT_KEY)?,
    ))
}

impl DynamoStore {
    /// The keys (and `cid`s) of the contact's partition, read consistently.
    async fn partition_items(&self, contact: &ContactId) -> Result<Vec<Item>, StoreError> {
        self.query_all(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .projection_expression("#pk, #sk, cid, contact_id, crm_contact_id")
                .expression_attribute_names("#pk", schema::PARTITION_KEY)
                .expression_attribute_names("#sk", schema::SORT_KEY)
                .expression_attribute_values(":pk", s(contact_pk(contact)))
                .consistent_read(true),
        )
        .await
    }

    async fn contact_items(&self, contact: &ContactId) -> Result<ContactItems, StoreError> {
        let mut found = ContactItems::default();
        for item in self.partition_items(contact).await? {
            let sk = get_s(&item, schema::SORT_KEY)?;
            if sk.starts_with(CONVERSATION_PREFIX) {
                found.channels.push(get_s(&item, "cid")?.to_owned());
            }
            if sk.starts_with(ALIAS_PREFIX) {
                found.merged.push(alias::decode(&item)?);
            }
            if let Some(into) = item.get("crm_contact_id").and_then(|v| v.as_s().ok()) {
                found.merged_into = Some(ContactId::parse(into).map_err(corrupt)?);
            }
            found.partition.push(key_of(&item)?);
        }
        for cid in &found.channels {
            let mapping_key = mapping_key(cid);
            // A mapping already deleted (an erasure that stopped half-way) took its visitor entry before it.
            let Some(mapping) = self.get(mapping_key.clone(), &["visitor_id"], true).await? else {
                continue;
            };
            let visitor =
                UserId::parse("visitor_id", get_s(&mapping, "visitor_id")?).map_err(corrupt)?;
            found
                .visitor_entries
                .push(key(visitor_pk(&visitor), &visitor_channel_sk(cid)));
            found.mappings.push(mapping_key);
            if !found.visitors.contains(&visitor) {
                found.visitors.push(visitor);
            }
        }
        Ok(found)
    }

    /// Deletes these items, 25 per request, retrying what DynamoDB leaves unprocessed.
    async fn delete_all(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        for chunk in keys.chunks(BATCH_WRITE) {
            let mut requests = chunk
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key.clone()))
                        .build()
                        .map(|delete| WriteRequest::builder().delete_request(delete).build())
                        .map_err(build_error)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut attempt = 0;
            while !requests.is_empty() {
                attempt += 1;
                if attempt > UNPROCESSED_RETRIES {
                    return Err(StoreError::Unavailable(
                        "DynamoDB kept leaving deletions unprocessed".into(),
                    ));
                }
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(unavailable)?;
                requests = output
                    .unprocessed_items()
                    .and_then(|items| items.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if !requests.is_empty() {
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
            }
        }
        Ok(())
    }

    /// Deletes the contact's sync record, and the lease on it, once no writer holds the lease: a holder may have
    /// sent a write that can still land, and until its lease ends nobody else may write the contact (fencing). The
    /// record is marked `erasing` first, so no new lease is taken on it and no change gated on it is recorded;
    /// then it is deleted as soon as the holder lets go or its lease ends, waiting at most `ERASE_WAIT` (then the
    /// erasure fails, to be retried, and the mark stays).
    async fn delete_sync_record(&self, contact: &ContactId) -> Result<(), StoreError> {
        let mark = self
            .sync_update(contact)
            .update_expression("SET erasing = :true")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .expression_attribute_values(":true", AttributeValue::Bool(true));
        if !self.send_update(mark).await?.written() {
            return Ok(());
        }
        let give_up = Instant::now() + ERASE_WAIT;
        loop {
            let deleted = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(sync_record_key(contact)))
                .condition_expression(
                    "attribute_not_exists(lease_until_ms) OR lease_until_ms < :now",
                )
                .expression_attribute_values(":now", n(Timestamp::now().unix_millis()))
                .send()
                .await;
            match deleted {
                Ok(_) => return Ok(()),
                // A holder is still there (its lease is live), or a write to the record is committing: look again.
                Err(e)
                    if matches!(
                        e.as_service_error().and_then(|s| s.code()),
                        Some("ConditionalCheckFailedException" | "TransactionConflictException")
                    ) => {}
                Err(e) => return Err(unavailable(e)),
            }
            if Instant::now() >= give_up {
                return Err(StoreError::Unavailable(
                    "a flusher is still writing the contact; its sync record stays until the erasure is retried"
                        .into(),
                ));
            }
            tokio::time::sleep(ERASE_POLL).await;
        }
    }

    /// Sets every item's TTL attribute to the purge time `at`, or clears it (`None`) where it is the purge time
    /// `restoring` recorded on the sync record. Only items that exist are touched. A message item that retention
    /// expires keeps its own TTL either way: it expires at the purge only if that comes first, and a restore leaves
    /// it as it was (see `retention`).
    async fn set_expiry(&self, items: &ContactItems, expiry: Expiry) -> Result<(), StoreError> {
        for key in items.all() {
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .expression_attribute_names("#pk", schema::PARTITION_KEY)
                .expression_attribute_names("#ttl", schema::TTL_ATTRIBUTE);
            let update = match expiry {
                Expiry::Purge(at) => update
                    .update_expression("SET #ttl = :at")
                    .condition_expression(
                        "attribute_exists(#pk) AND (attribute_not_exists(#ttl) OR #ttl > :at)",
                    )
                    .expression_attribute_values(":at", n(at)),
                Expiry::Restore(purge) => update
                    .update_expression("REMOVE #ttl")
                    .condition_expression("attribute_exists(#pk) AND #ttl = :purge")
                    .expression_attribute_values(":purge", n(purge)),
            };
            self.send_update(update).await?;
        }
        Ok(())
    }

    /// The purge time a deletion set on the contact's sync record, if any.
    async fn purge_time(&self, contact: &ContactId) -> Result<Option<i64>, StoreError> {
        let record = self
            .get(sync_record_key(contact), &[schema::TTL_ATTRIBUTE], true)
            .await?;
        Ok(record
            .as_ref()
            .and_then(|item| item.get(schema::TTL_ATTRIBUTE))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok()))
    }

    /// Records HubSpot's latest deletion or restore of the contact on its sync record, unless a later one is
    /// already recorded: HubSpot retries deliveries for a day and does not order them, so a deletion delivered after
    /// the restore that followed it must change nothing. Returns false for such a stale event. `rest` continues the
    /// update expression after its `SET` of the event time.
    async fn crm_event(
        &self,
        contact: &ContactId,
        at: Timestamp,
        rest: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<bool, StoreError> {
        let mut update = self
            .sync_update(contact)
            .update_expression(format!(
                "SET crm_event_at = :at, contact_id = :contact{rest}"
            ))
            .condition_expression("attribute_not_exists(crm_event_at) OR crm_event_at < :at")
            .expression_attribute_values(":at", s(at.key()))
            .expression_attribute_values(":contact", s(contact.as_str()));
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        Ok(self.send_update(update).await?.written())
    }
}

#[async_trait]
impl ContactErasure for DynamoStore {
    async fn footprint(&self, contact: &ContactId) -> Result<Footprint, StoreError> {
        Ok(self.contact_items(contact).await?.footprint())
    }

    async fn erase_contact(&self, contact: &ContactId) -> Result<Footprint, StoreError> {
        let items = self.contact_items(contact).await?;
        let footprint = items.footprint();
        self.delete_all(items.visitor_entries).await?;
        self.delete_all(items.mappings).await?;
        // The sync record next: from then on no flusher takes the contact (see `delete_sync_record`).
        self.delete_sync_record(contact).await?;
        // Read the partition again: a change that committed after the first read and before its mapping went.
        let partition = self
            .partition_items(contact)
            .await?
            .iter()
            .map(key_of)
            .collect::<Result<Vec<_>, _>>()?;
        self.delete_all(partition).await?;
        if let Some(into) = &items.merged_into {
            self.delete_all(vec![key(contact_pk(into), &alias_sk(contact))])
                .await?;
        }
        Ok(footprint)
    }

    async fn mark_deleted(
        &self,
        contact: &ContactId,
        at: Timestamp,
        purge_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut items = self.contact_items(contact).await?;
        if items.is_empty() {
            return Ok(false);
        }
        // Out of the queue first (nothing is written to a contact HubSpot deleted), and off the idle index (its
        // messages go with the purge, or expire once it is restored and idle again) and the notes' queue (notes
        // still pending go out in the first notes round after a restore), then the TTL on every item.
        let why = format!(
            "deleted in HubSpot; purged at {} unless restored",
            purge_at.human()
        );
        // On the queue's `purging` partition by its purge time: the sweeper erases it then, here and in Stream.
        let fresh = self
            .crm_event(
                contact,
                at,
                ", dirty = :purging, dirty_since = :purge, parked_reason = :why REMOVE idle, idle_since, notes",
                &[
                    (":purging", s(schema::PURGING)),
                    (":purge", s(purge_at.key())),
                    (":why", s(why)),
                ],
            )
            .await?;
        if !fresh {
            return Ok(false);
        }
        // The sync record may have been created just now (a contact with no message yet): it expires too.
        let sync = sync_record_key(contact);
        if !items.partition.contains(&sync) {
            items.partition.push(sync);
        }
        // TTL is the backstop, a week after the purge: it would take the items even if no sweeper ran (Stream's
        // copy would then stay: the sweeper's purge is what reaches it).
        let backstop = purge_at.later_by(crate::erasure::PURGE_BACKSTOP);
        self.set_expiry(&items, Expiry::Purge(backstop.unix_seconds()))
            .await?;
        Ok(true)
    }

    /// Contacts deleted in HubSpot whose purge time has come, oldest first.
    async fn due_purges(&self, now: Timestamp, limit: usize) -> Result<Vec<ContactId>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(schema::DIRTY_INDEX)
            .key_condition_expression("#dirty = :purging AND #since <= :now")
            .expression_attribute_names("#dirty", schema::DIRTY_INDEX_PARTITION_KEY)
            .expression_attribute_names("#since", schema::DIRTY_INDEX_SORT_KEY)
            .expression_attribute_values(":purging", s(schema::PURGING))
            .expression_attribute_values(":now", s(now.key()))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        let output = self.query_page(query).await?;
        output
            .items()
            .iter()
            .map(|item| ContactId::parse(get_s(item, "contact_id")?).map_err(corrupt))
            .collect()
    }

    async fn restore_contact(
        &self,
        contact: &ContactId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let items = self.contact_items(contact).await?;
        let purge = self.purge_time(contact).await?;
        // Out of the parked queue; back in the queue below if it has changes.
        let unparked = " REMOVE parked_reason, dirty, dirty_since";
        if items.is_empty() || !self.crm_event(contact, at, unparked, &[]).await? {
            return Ok(false);
        }
        if let Some(purge) = purge {
            self.set_expiry(&items, Expiry::Restore(purge)).await?;
        }
        // Back at the front of the queue, if it has changes at all: what changed before the deletion is written
        // now (a contact already in sync leaves the queue at its first claim).
        let update = self
            .sync_update(contact)
            .update_expression("SET dirty = :shard, dirty_since = :now REMOVE parked_reason")
            .condition_expression("attribute_exists(change_version)")
            .expression_attribute_values(":shard", s(shard(contact)))
            .expression_attribute_values(":now", s(Timestamp::now().key()));
        self.send_update(update).await?;
        Ok(true)
    }

    async fn contacts_with_email(&self, email: &Email) -> Result<Vec<ContactId>, StoreError> {
        // Operators only (an erasure request by e-mail): a scan of the channel mappings, not worth an index.
        let mut contacts: Vec<ContactId> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "begins_with(#pk, :channel) AND #sk = :mapping AND email = :email",
                )
                .projection_expression("contact_id")
                .expression_attribute_names("#pk", schema::PARTITION_KEY)
                .expression_attribute_names("#sk", schema::SORT_KEY)
                .set_expression_attribute_values(Some(HashMap::from([
                    (":channel".to_owned(), s(CHANNEL_PREFIX)),
                    (":mapping".to_owned(), s(MAPPING)),
                    (":email".to_owned(), s(email.as_str())),
                ])))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in output.items() {
                let contact = ContactId::parse(get_s(item, "contact_id")?).map_err(corrupt)?;
                if !contacts.contains(&contact) {
                    contacts.push(contact);
                }
            }
            start = output.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(contacts);
            }
        }
    }
}
