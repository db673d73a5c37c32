//! Retention's storage: the idle index, and expiring a contact's message items (see `crate::retention`).
//!
//! A contact joins the sparse index `idle-contacts` (`idle` = its shard, `idle_since`) at its first sync
//! (`release_if_current`, if it is not there yet) and leaves it once its messages expired (or HubSpot deleted it).
//! Changes do not touch the entry — that would cost an index write per message — so `idle_since` is a lower bound
//! of the contact's idle time: retention checks `changed_at` and the sync state under the contact's lease, and
//! moves the entry of a contact it finds active (`defer_idle`).

use super::codec::{self, conversation, get_s, n, s, Item};
use super::keys::{contact_pk, key, MESSAGE_PREFIX};
use super::{build_error, corrupt, schema, DynamoStore};
use crate::domain::{ContactId, Timestamp};
use crate::ports::{Archived, IdleContact, LeaseOwner, MessageExpiry, StoreError, SyncState};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use futures::stream::{self, StreamExt};
use std::collections::HashMap;
use std::time::Instant;

/// Message items given their TTL at once.
const EXPIRY_CONCURRENCY: usize = 16;

impl DynamoStore {
    /// Gives one message item its TTL, unless a change rewrote it since it was read; true if set.
    async fn expire_message(
        &self,
        item: &Item,
        expires_at: AttributeValue,
    ) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                get_s(item, schema::PARTITION_KEY)?.to_owned(),
                get_s(item, schema::SORT_KEY)?,
            )))
            .update_expression("SET #ttl = :at")
            .condition_expression(
                "attribute_exists(#pk) AND updated_at = :updated AND attribute_not_exists(#ttl)",
            )
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .expression_attribute_names("#ttl", schema::TTL_ATTRIBUTE)
            .expression_attribute_values(":at", expires_at)
            .expression_attribute_values(":updated", s(get_s(item, "updated_at")?));
        Ok(self.send_update(update).await?.written())
    }
}

#[async_trait]
impl MessageExpiry for DynamoStore {
    /// Every shard's contacts idle since before `before`, merged longest idle first.
    async fn idle_contacts(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<IdleContact>, StoreError> {
        let shards = (0..schema::DIRTY_SHARDS).map(|shard| shard.to_string());
        let before = before.key();
        let pages = futures::future::try_join_all(shards.map(|shard| {
            let before = before.clone();
            async move {
                let query = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(schema::IDLE_INDEX)
                    .key_condition_expression("#idle = :shard AND #since < :before")
                    .expression_attribute_names("#idle", schema::IDLE_INDEX_PARTITION_KEY)
                    .expression_attribute_names("#since", schema::IDLE_INDEX_SORT_KEY)
                    .expression_attribute_values(":shard", s(shard))
                    .expression_attribute_values(":before", s(before));
                self.index_entries(query, schema::IDLE_INDEX_SORT_KEY, limit)
                    .await?
                    .into_iter()
                    .map(|(since, contact)| {
                        Ok(IdleContact {
                            contact,
                            since: Timestamp::parse("idle_since", &since).map_err(corrupt)?,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            }
        }))
        .await?;
        let mut all: Vec<IdleContact> = pages.into_iter().flatten().collect();
        all.sort_by(|a, b| (a.since, a.contact.as_str()).cmp(&(b.since, b.contact.as_str())));
        all.truncate(limit);
        Ok(all)
    }

    async fn defer_idle(&self, contact: &ContactId, since: Timestamp) -> Result<(), StoreError> {
        let update = self
            .sync_update(contact)
            .update_expression("SET #since = :since")
            .condition_expression("attribute_exists(#idle)")
            .expression_attribute_names("#idle", schema::IDLE_INDEX_PARTITION_KEY)
            .expression_attribute_names("#since", schema::IDLE_INDEX_SORT_KEY)
            .expression_attribute_values(":since", s(since.key()));
        self.send_update(update).await.map(|_| ())
    }

    async fn archive_contact(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        state: &SyncState,
        expires_at: Timestamp,
        until: Instant,
    ) -> Result<Option<Archived>, StoreError> {
        let version = state.version;
        // 1. Record it first, with each conversation's notes frozen as they are now: from this moment the flusher
        //    renders around HubSpot's copy, so an item expiring later can never make it show less.
        let mut frozen = HashMap::new();
        for item in self.conversation_records(contact).await? {
            let notes = conversation::note_count(&item);
            let cid = get_s(&item, "cid")?.to_owned();
            let erasures = state.erasures.get(&cid).copied().unwrap_or(0);
            frozen.insert(cid, codec::frozen::entry(notes, erasures));
        }
        // Only while the lease on the record is ours (the flusher writes nothing meanwhile). The frozen notes go
        // in an item of their own, in the same transaction: the record, which every change writes, stays the
        // size it was (a map written here before is taken off it).
        let at = Timestamp::now();
        let record = self
            .sync_update_in_transaction(contact)
            .update_expression("SET archived_at = :at REMOVE frozen")
            .condition_expression(
                "lease_owner = :owner AND change_version = :version AND synced_version = :version \
                 AND attribute_not_exists(pending_notes) AND attribute_not_exists(parked_reason)",
            )
            .expression_attribute_values(":owner", s(owner.as_str()))
            .expression_attribute_values(":at", s(at.key()))
            .expression_attribute_values(":version", n(version))
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().update(record).build(),
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(codec::frozen::encode(contact, frozen, at)))
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
        ];
        if self.transact(items).await?.is_err() {
            return Ok(None);
        }
        // 2. The TTL on every message item, unless a change rewrote it since it was read (its line may not be in
        //    HubSpot yet: it is left for the next time the contact is idle).
        let messages = self
            .query_all(
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :msg)")
                    .projection_expression("#pk, #sk, updated_at, #ttl")
                    .expression_attribute_names("#pk", schema::PARTITION_KEY)
                    .expression_attribute_names("#sk", schema::SORT_KEY)
                    .expression_attribute_names("#ttl", schema::TTL_ATTRIBUTE)
                    .expression_attribute_values(":pk", s(contact_pk(contact)))
                    .expression_attribute_values(":msg", s(MESSAGE_PREFIX))
                    .consistent_read(true),
            )
            .await?;
        // Concurrently, within the time given: a long history is finished by the next pass (the contact stays on
        // the idle index until every item has its TTL).
        let pending: Vec<Item> = messages
            .into_iter()
            .filter(|item| !item.contains_key(schema::TTL_ATTRIBUTE))
            .collect();
        let expires_at = n(expires_at.unix_seconds());
        // `None`: not tried, time ran out; `Some(set)`: tried, and whether the TTL was set.
        let results: Vec<Result<Option<bool>, StoreError>> = stream::iter(pending)
            .map(|item: Item| {
                let expires_at = expires_at.clone();
                async move {
                    if Instant::now() >= until {
                        return Ok(None);
                    }
                    self.expire_message(&item, expires_at).await.map(Some)
                }
            })
            .buffer_unordered(EXPIRY_CONCURRENCY)
            .collect()
            .await;
        let mut archived = Archived {
            messages: 0,
            complete: true,
        };
        for result in results {
            match result? {
                Some(true) => archived.messages += 1,
                Some(false) => {}
                None => archived.complete = false,
            }
        }
        if !archived.complete {
            return Ok(Some(archived));
        }
        // 3. Off the idle index, unless a change already took it off (and it may be back on by now).
        let update = self
            .sync_update(contact)
            .update_expression("REMOVE #idle, #since")
            .condition_expression("change_version = :version")
            .expression_attribute_names("#idle", schema::IDLE_INDEX_PARTITION_KEY)
            .expression_attribute_names("#since", schema::IDLE_INDEX_SORT_KEY)
            .expression_attribute_values(":version", n(version));
        self.send_update(update).await?;
        Ok(Some(archived))
    }
}
