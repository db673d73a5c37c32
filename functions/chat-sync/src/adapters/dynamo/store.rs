//! `Store` on DynamoDB: conversations and messages, the sync record and its queue, leases, the flusher.

use super::{
    build_error, channel_pk, conditional, contact_pk, corrupt, get_bool, get_n, get_s, key,
    message_sk, n, s, schema, shard, unavailable, DynamoStore, Item, CONFLICT_RETRIES,
    LEASE_GARBAGE_AFTER,
};
use crate::domain::transcript::{Cleared, Conversation, Filling};
use crate::domain::{
    ChannelId, ChannelRef, ChannelType, ContactId, Email, Identity, MessageChange, MessageId,
    MessageKind, MessageVersion, NoteId, Role, StoredMessage, Timestamp, UserId,
};
use crate::ports::{
    Archived, BacklogEntry, BacklogHealth, ChannelMapping, ContactReading, ConversationNotes,
    Footprint, Frozen, IdleContact, LeaseOwner, Recorded, Release, Store, StoreError, SyncState,
    TranscriptSource,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Get, KeysAndAttributes, ReturnConsumedCapacity,
    ReturnValue, Select, TransactGetItem, TransactWriteItem, Update,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::schema::{IDLE_INDEX_PARTITION_KEY as IDLE, IDLE_INDEX_SORT_KEY as IDLE_SINCE};

const SYNC: &str = "SYNC";
const FLUSHER_PK: &str = "FLUSHER";
/// The attribute of the sync record that holds a conversation's first delivered message time.
pub(super) fn first_at(cid: &str) -> String {
    format!("first_at:{cid}")
}

/// The attribute of the sync record that counts a conversation's erasures (see `SyncState::erasures`).
fn erasures(cid: &str) -> String {
    format!("erasures:{cid}")
}

/// What an erasure erased, as the sync record counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Erasure {
    /// Messages of the conversation (a truncation or deletion), or its lines' counts after one.
    Conversation,
    /// The conversation's visitor and their messages.
    Visitor,
}

/// How far Stream's message times may run behind the conversation start we recorded.
pub(super) const CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(86_400);
/// Messages read per page of a newest-first read: a page is about what one transcript line costs to fill.
pub(super) const MESSAGE_PAGE: i32 = 100;

fn flusher_key() -> Item {
    key(FLUSHER_PK.to_owned(), FLUSHER_PK)
}

fn string_set(contacts: &[ContactId]) -> AttributeValue {
    AttributeValue::Ss(contacts.iter().map(|c| c.as_str().to_owned()).collect())
}

pub(super) fn parse_message(item: &Item) -> Result<StoredMessage, StoreError> {
    let attachments = item
        .get("attachments")
        .and_then(|v| v.as_l().ok())
        .map(|list| list.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default();
    Ok(StoredMessage {
        message_id: MessageId::parse(get_s(item, "message_id")?).map_err(corrupt)?,
        cid: get_s(item, "cid")?.to_owned(),
        author_name: get_s(item, "author_name")?.to_owned(),
        role: Role::parse(get_s(item, "role")?),
        text: get_s(item, "body")?.to_owned(),
        attachments,
        created_at: Timestamp::parse("created_at", get_s(item, "created_at")?).map_err(corrupt)?,
        edited: get_bool(item, "edited"),
        deleted: get_bool(item, "deleted"),
        restored: get_bool(item, "restored"),
        removed: get_bool(item, "removed"),
    })
}

/// Whether the item's TTL has passed: DynamoDB deletes such items only within days, and until then a read must
/// not see them (a message expired by retention is HubSpot's alone; see `retention`).
pub(super) fn expired(item: &Item, now: Timestamp) -> bool {
    item.get(schema::TTL_ATTRIBUTE)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .is_some_and(|at| at <= now.unix_seconds())
}

/// The sync record's `frozen` map: cid → `{notes, erasures}`.
fn parse_frozen(item: &Item) -> HashMap<String, Frozen> {
    let number = |map: &HashMap<String, AttributeValue>, name: &str| {
        map.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    item.get("frozen")
        .and_then(|v| v.as_m().ok())
        .map(|frozen| {
            frozen
                .iter()
                .filter_map(|(cid, value)| {
                    let value = value.as_m().ok()?;
                    Some((
                        cid.clone(),
                        Frozen {
                            notes: number(value, "notes") as usize,
                            erasures: number(value, "erasures"),
                        },
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn parse_conversation(item: &Item) -> Result<Conversation, StoreError> {
    Ok(Conversation {
        cid: get_s(item, "cid")?.to_owned(),
        channel_id: get_s(item, "channel_id")?.to_owned(),
        started_at: Timestamp::parse("started_at", get_s(item, "started_at")?).map_err(corrupt)?,
        identity: parse_identity(item)?,
        cleared: parse_cleared(item)?,
    })
}

/// How the visitor was identified, as kept on the channel mapping and conversation items.
fn parse_identity(item: &Item) -> Result<Identity, StoreError> {
    let stored = item.get("identity").and_then(|v| v.as_s().ok());
    Identity::parse(stored.map(String::as_str)).ok_or_else(|| {
        StoreError::Corrupt(format!("identity {stored:?} is not a known identification"))
    })
}

/// What Stream erased of a conversation, as kept on its channel mapping and conversation items.
fn parse_cleared(item: &Item) -> Result<Option<Cleared>, StoreError> {
    if get_bool(item, "cleared_deleted") {
        return Ok(Some(Cleared::Deleted));
    }
    match item.get("cleared_until").and_then(|v| v.as_s().ok()) {
        Some(until) => Ok(Some(Cleared::Truncated(
            Timestamp::parse("cleared_until", until).map_err(corrupt)?,
        ))),
        None => Ok(None),
    }
}

/// The condition and values that apply `cleared` only if it erases more than what is recorded.
fn clearing(cleared: Cleared) -> (&'static str, &'static str, Item) {
    match cleared {
        Cleared::Deleted => (
            "SET cleared_deleted = :true",
            "attribute_not_exists(cleared_deleted)",
            HashMap::from([(":true".to_owned(), AttributeValue::Bool(true))]),
        ),
        Cleared::Truncated(until) => (
            "SET cleared_until = :until",
            "attribute_not_exists(cleared_deleted) AND (attribute_not_exists(cleared_until) OR cleared_until < :until)",
            HashMap::from([(":until".to_owned(), s(until.key()))]),
        ),
    }
}

/// How one attempt at writing a message item ended.
enum Attempt {
    Written,
    /// The item's condition failed; the item as it is (`None`: there is none).
    Found(Option<Item>),
    /// The channel's mapping is gone.
    Gone,
}

/// The version a stored message item holds (see `MessageVersion`).
fn stored_version(item: &Item) -> MessageVersion {
    MessageVersion {
        updated_at: item
            .get("updated_at")
            .and_then(|v| v.as_s().ok())
            .and_then(|raw| Timestamp::parse("updated_at", raw).ok()),
        deleted: get_bool(item, "deleted"),
        erased: get_bool(item, "erased"),
        removed: get_bool(item, "removed"),
    }
}

/// The condition, on a present item, under which `change` supersedes it: `MessageVersion::supersedes` as DynamoDB
/// evaluates it (an absent boolean reads false; an absent `updated_at` is older than any).
fn supersedes(change: &MessageChange) -> (String, Item) {
    let mut values = HashMap::from([(":true".to_owned(), AttributeValue::Bool(true))]);
    let not_removed = "attribute_exists(#pk) AND NOT removed = :true";
    if change.kind == MessageKind::Removed {
        return (not_removed.to_owned(), values);
    }
    values.insert(":at".to_owned(), s(change.updated_at.key()));
    let older = if change.kind.deleted() {
        // At the same instant, a deletion beats a shown state.
        "attribute_not_exists(updated_at) OR updated_at < :at OR (updated_at = :at AND NOT deleted = :true)"
    } else {
        "attribute_not_exists(updated_at) OR updated_at < :at"
    };
    (
        format!("{not_removed} AND NOT erased = :true AND ({older})"),
        values,
    )
}

/// The sync record as read (`Store::sync_state`).
pub(super) fn parse_sync_state(item: &Item) -> Result<SyncState, StoreError> {
    let crm_contact = match item.get("crm_contact_id").and_then(|v| v.as_s().ok()) {
        Some(id) => Some(ContactId::parse(id).map_err(corrupt)?),
        None => None,
    };
    Ok(SyncState {
        version: get_n(item, "change_version"),
        synced_version: get_n(item, "synced_version"),
        messages: get_n(item, "message_count"),
        crm_contact,
        parked: item
            .get("parked_reason")
            .and_then(|v| v.as_s().ok())
            .cloned(),
        pending_notes: item
            .get("pending_notes")
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default(),
        archived_at: match item.get("archived_at").and_then(|v| v.as_s().ok()) {
            Some(at) => Some(Timestamp::parse("archived_at", at).map_err(corrupt)?),
            None => None,
        },
        changed_at: match item.get("changed_at").and_then(|v| v.as_s().ok()) {
            Some(at) => Some(Timestamp::parse("changed_at", at).map_err(corrupt)?),
            None => None,
        },
        frozen: parse_frozen(item),
        erasures: item
            .iter()
            .filter_map(|(name, value)| {
                let cid = name.strip_prefix("erasures:")?;
                Some((cid.to_owned(), value.as_n().ok()?.parse().ok()?))
            })
            .collect(),
        visitor_erased: item
            .get("visitor_erased")
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default(),
    })
}

impl DynamoStore {
    /// Our lease on the contact, released as part of a transaction (which fails if the lease is no longer ours).
    fn release_with(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::lease_key(contact)))
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", s(owner.as_str()))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The sync record's part of a recorded change: a new version, `shown` more (or fewer) lines to show, and the
    /// contact queued in its shard (unless it is parked: a contact HubSpot no longer has stays parked).
    fn bump_version(
        &self,
        contact: &ContactId,
        cid: &str,
        shown: i64,
        created_at: Option<&Timestamp>,
        erasure: Option<Erasure>,
    ) -> Result<TransactWriteItem, StoreError> {
        // `pending_notes` names the conversations whose notes need rewriting; it is cleared only together with
        // marking the contact synced at the version written (`release_if_current`). `first_at:<cid>` keeps the
        // creation time of the first message delivered in each conversation, where reading one starts.
        // `changed_at` is what retention measures idleness from (see `retention`): not an index key, so keeping it
        // costs no index write.
        let mut add = "change_version :one, message_count :added, pending_notes :cid".to_owned();
        let mut set = "contact_id = :contact, dirty = if_not_exists(dirty, :shard), \
                       dirty_since = if_not_exists(dirty_since, :now), changed_at = :now"
            .to_owned();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(contact), SYNC)))
            .expression_attribute_values(":cid", AttributeValue::Ss(vec![cid.to_owned()]))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":added", n(shown))
            .expression_attribute_values(":contact", s(contact.as_str()))
            .expression_attribute_values(":shard", s(shard(contact)))
            .expression_attribute_values(":now", s(Timestamp::now().key()));
        if let Some(created_at) = created_at {
            set.push_str(", #first = if_not_exists(#first, :created)");
            update = update
                .expression_attribute_names("#first", first_at(cid))
                .expression_attribute_values(":created", s(created_at.key()));
        }
        if let Some(erasure) = erasure {
            add.push_str(", #erasures :one");
            update = update.expression_attribute_names("#erasures", erasures(cid));
            if erasure == Erasure::Visitor {
                add.push_str(", visitor_erased :cid");
            }
        }
        let update = update
            .update_expression(format!("ADD {add} SET {set}"))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn message_item(&self, contact: &ContactId, change: &MessageChange, role: &Role) -> Item {
        let removed = change.kind == MessageKind::Removed;
        let deleted = change.kind.deleted();
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
            (
                "restored".to_owned(),
                AttributeValue::Bool(change.kind == MessageKind::Undeleted),
            ),
            ("removed".to_owned(), AttributeValue::Bool(removed)),
        ]);
        item
    }

    /// Puts a message item under `condition` together with the version bump (`shown` more lines) and the gate of
    /// every change (the channel's mapping still exists).
    async fn put_with_bump(
        &self,
        contact: &ContactId,
        item: Item,
        condition: &str,
        values: Item,
        shown: i64,
    ) -> Result<Attempt, StoreError> {
        let cid = get_s(&item, "cid")?.to_owned();
        let created_at =
            Timestamp::parse("created_at", get_s(&item, "created_at")?).map_err(corrupt)?;
        // A failed condition returns the item as it is: the next attempt is decided on what is there.
        let items = vec![
            self.put(item, condition, &[("#pk", schema::PARTITION_KEY)], values)?,
            self.bump_version(contact, &cid, shown, Some(&created_at), None)?,
            self.mapping_exists(&cid)?,
        ];
        Ok(match self.transact(items).await? {
            Ok(()) => Attempt::Written,
            Err(failed) if failed.index == 0 => Attempt::Found(failed.item),
            Err(_) => Attempt::Gone,
        })
    }

    /// The gate of every recorded change: the channel's mapping still exists (an erasure deletes it first, so
    /// nothing is recorded for an erased contact, even by a webhook that read the mapping just before).
    fn mapping_exists(&self, cid: &str) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("CHANNEL#{cid}"), "CHANNEL")))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// A query of one partition of the queue index: a shard of the contacts behind, or the parked ones.
    fn queue_query(
        &self,
        partition: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(schema::DIRTY_INDEX)
            .key_condition_expression("#queue = :queue")
            .expression_attribute_names("#queue", schema::DIRTY_INDEX_PARTITION_KEY)
            .expression_attribute_values(":queue", s(partition))
    }

    async fn query_shard(
        &self,
        partition: &str,
        limit: usize,
    ) -> Result<Vec<(String, ContactId)>, StoreError> {
        let output = self
            .queue_query(partition)
            .limit(limit.clamp(1, 1000) as i32)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.consumed.add(output.consumed_capacity());
        output
            .items()
            .iter()
            .map(|item| {
                let since = get_s(item, schema::DIRTY_INDEX_SORT_KEY)?.to_owned();
                let contact = ContactId::parse(get_s(item, "contact_id")?).map_err(corrupt)?;
                Ok((since, contact))
            })
            .collect()
    }

    /// How many entries one partition of the queue index holds: a `COUNT` query (reads the index entries, returns
    /// no items), followed page by page so a long backlog is counted whole.
    async fn count_partition(&self, partition: &str) -> Result<usize, StoreError> {
        let mut count = 0;
        let mut start = None;
        loop {
            let output = self
                .queue_query(partition)
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(unavailable)?;
            self.consumed.add(output.consumed_capacity());
            count += usize::try_from(output.count()).unwrap_or_default();
            match output.last_evaluated_key() {
                Some(last) => start = Some(last.clone()),
                None => return Ok(count),
            }
        }
    }

    /// Every shard's oldest entries, merged oldest first.
    async fn queued(&self, limit: usize) -> Result<Vec<(String, ContactId)>, StoreError> {
        let shards = (0..schema::DIRTY_SHARDS).map(|shard| shard.to_string());
        let pages = futures::future::try_join_all(
            shards.map(|p| async move { self.query_shard(&p, limit).await }),
        )
        .await?;
        let mut all: Vec<(String, ContactId)> = pages.into_iter().flatten().collect();
        all.sort();
        all.truncate(limit);
        Ok(all)
    }

    /// The conversation items named, read in one request.
    async fn conversation_items(
        &self,
        contact: &ContactId,
        cids: &[&str],
    ) -> Result<Vec<Item>, StoreError> {
        if cids.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = KeysAndAttributes::builder().consistent_read(true);
        for cid in cids {
            keys = keys.keys(key(contact_pk(contact), &format!("CONV#{cid}")));
        }
        let output = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys.build().map_err(build_error)?)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.consumed.add_all(output.consumed_capacity());
        // A handful of small items never leaves keys unprocessed short of throttling; a missing conversation only
        // changes a header to its fallback, and the next flush reads it again.
        Ok(output
            .responses()
            .and_then(|r| r.get(&self.table))
            .cloned()
            .unwrap_or_default())
    }

    async fn conversations(
        &self,
        contact: &ContactId,
        cids: &[&str],
    ) -> Result<Vec<Conversation>, StoreError> {
        self.conversation_items(contact, cids)
            .await?
            .iter()
            .map(parse_conversation)
            .collect()
    }

    async fn update_conversation(
        &self,
        contact: &ContactId,
        cid: &str,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(contact), &format!("CONV#{cid}"))))
            .update_expression(expression)
            // An erased conversation stays erased: a flusher that held the contact during the erasure writes nothing.
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        let result = update.send().await;
        if let Ok(output) = &result {
            self.consumed.add(output.consumed_capacity());
        }
        conditional(result).map(|_| ())
    }

    /// Erases the stored messages of a conversation that `erase` picks (their text and attachments go; the line
    /// goes too when `remove`, else it reads "message deleted"), and takes the lines no longer shown off the
    /// contact's count. Each message is erased with its own conditional write, so a repeated erasure counts none
    /// twice.
    async fn erase_messages(
        &self,
        contact: &ContactId,
        conversation: &Conversation,
        remove: bool,
        mut erase: impl FnMut(&StoredMessage, &Item) -> bool,
    ) -> Result<u64, StoreError> {
        let everything = Conversation {
            cleared: None,
            ..conversation.clone()
        };
        let mut removed = 0u64;
        for item in self.conversation_items_raw(contact, &everything).await? {
            let message = parse_message(&item)?;
            if !erase(&message, &item) {
                continue;
            }
            // `erased` makes the erasure final: no later change (an undeletion) shows the text again; only a hard
            // delete still takes the line (see `MessageVersion`).
            let (expression, condition) = if remove {
                (
                    "SET removed = :true, deleted = :true, erased = :true, body = :empty, attachments = :none",
                    "attribute_exists(#pk) AND NOT removed = :true",
                )
            } else {
                (
                    "SET deleted = :true, erased = :true, body = :empty, attachments = :none",
                    "attribute_exists(#pk) AND NOT removed = :true AND NOT erased = :true",
                )
            };
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(
                    contact_pk(contact),
                    get_s(&item, schema::SORT_KEY)?,
                )))
                .update_expression(expression)
                .condition_expression(condition)
                .expression_attribute_names("#pk", schema::PARTITION_KEY)
                .expression_attribute_values(":true", AttributeValue::Bool(true))
                .expression_attribute_values(":empty", s(""))
                .expression_attribute_values(":none", AttributeValue::L(vec![]))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            if let Ok(output) = &result {
                self.consumed.add(output.consumed_capacity());
            }
            // The count is of the property's lines: a notes-only conversation's never were among them.
            if conditional(result)? && remove && !get_bool(&item, "notes_only") {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Every message item of a conversation, erased ones included. Its messages were created after the earlier of
    /// its start and its first delivered message (Stream's clock agrees with ours within seconds, and deliveries
    /// come out of order by seconds; a day's allowance covers both): the read starts there.
    async fn conversation_items_raw(
        &self,
        contact: &ContactId,
        conversation: &Conversation,
    ) -> Result<Vec<Item>, StoreError> {
        let sync = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(contact), SYNC)))
            .projection_expression("#first")
            .expression_attribute_names("#first", first_at(&conversation.cid))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.consumed.add(sync.consumed_capacity());
        let first = sync
            .item()
            .and_then(|item| item.get(&first_at(&conversation.cid)))
            .and_then(|v| v.as_s().ok())
            .and_then(|raw| Timestamp::parse("first_at", raw).ok());
        let since = first
            .map_or(conversation.started_at, |first| {
                first.min(conversation.started_at)
            })
            .earlier_by(CLOCK_SKEW);
        self.query_all(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .filter_expression("cid = :cid")
                .expression_attribute_names("#pk", schema::PARTITION_KEY)
                .expression_attribute_names("#sk", schema::SORT_KEY)
                .expression_attribute_values(":pk", s(contact_pk(contact)))
                .expression_attribute_values(":from", s(format!("MSG#{}", since.key())))
                .expression_attribute_values(":to", s("MSG#~"))
                .expression_attribute_values(":cid", s(&conversation.cid))
                .consistent_read(true),
        )
        .await
    }

    /// A change that is not a message (an erasure): bumps the version, queues the contact, marks the
    /// conversation's notes for rewriting and takes `removed` lines off the count, in one update.
    async fn record_erasure(
        &self,
        contact: &ContactId,
        cid: &str,
        removed: u64,
        erasure: Option<Erasure>,
    ) -> Result<(), StoreError> {
        let shown = -(removed.min(i64::MAX as u64) as i64);
        let bump = self.bump_version(contact, cid, shown, None, erasure)?;
        // Only the mapping's check has a condition: if it fails, the contact was erased meanwhile and nothing of it
        // is left to queue.
        if self
            .transact(vec![bump, self.mapping_exists(cid)?])
            .await?
            .is_err()
        {
            tracing::debug!(contact_id = %contact, "erasure not recorded: the contact was erased meanwhile");
        }
        Ok(())
    }

    pub(super) async fn update_sync(
        &self,
        contact: &ContactId,
        expression: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(contact), SYNC)))
            .update_expression(expression)
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        let result = update.send().await;
        if let Ok(output) = &result {
            self.consumed.add(output.consumed_capacity());
        }
        conditional(result)
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
            ("identity".to_owned(), s(mapping.identity.as_str())),
            (
                "channel_type".to_owned(),
                s(mapping.channel.channel_type.as_str()),
            ),
            (
                "channel_id".to_owned(),
                s(mapping.channel.channel_id.as_str()),
            ),
            ("created_at".to_owned(), s(mapping.created_at.key())),
            (
                "notes_only".to_owned(),
                AttributeValue::Bool(mapping.notes_only),
            ),
        ]);
        let mut conversation = key(contact_pk(&mapping.contact_id), &format!("CONV#{cid}"));
        conversation.extend([
            ("cid".to_owned(), s(&cid)),
            (
                "channel_id".to_owned(),
                s(mapping.channel.channel_id.as_str()),
            ),
            ("started_at".to_owned(), s(mapping.created_at.key())),
            ("identity".to_owned(), s(mapping.identity.as_str())),
        ]);
        // The visitor's channels, so that Stream erasing the visitor's messages can be followed here.
        let mut visitor = key(
            format!("USER#{}", mapping.visitor_id.as_str()),
            &format!("CHANNEL#{cid}"),
        );
        visitor.extend([
            ("contact_id".to_owned(), s(mapping.contact_id.as_str())),
            ("cid".to_owned(), s(&cid)),
        ]);
        let not_exists = "attribute_not_exists(#pk)";
        let names = [("#pk", schema::PARTITION_KEY)];
        let items = vec![
            self.put(channel_item, not_exists, &names, Item::new())?,
            self.put(conversation, not_exists, &names, Item::new())?,
            self.put(visitor, not_exists, &names, Item::new())?,
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
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.consumed.add(output.consumed_capacity());
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
            identity: parse_identity(&item)?,
            created_at: Timestamp::parse("created_at", get_s(&item, "created_at")?)
                .map_err(corrupt)?,
            cleared: parse_cleared(&item)?,
            purge_at: item
                .get(schema::TTL_ATTRIBUTE)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .and_then(Timestamp::from_unix_seconds),
            notes_only: get_bool(&item, "notes_only"),
        }))
    }

    async fn record_change(
        &self,
        contact: &ContactId,
        change: &MessageChange,
        role: Role,
        notes_only: bool,
    ) -> Result<Recorded, StoreError> {
        // One change is one decision on the message item as it is when the write lands, never a check and a write
        // apart (a `message.new` landing between them would make both fail and lose the change). Each attempt is
        // one transaction conditional on the item's exact state: "absent", or "present and superseded by this
        // change" (`MessageVersion`), each with the count of shown lines it implies (+1 for a new line, −1 for a
        // hard delete of a shown one). A failed attempt returns the item as it now is; the change is then either
        // stale (done: `Unchanged`) or the other attempt applies. Every failure means the item changed in between,
        // and it can change only as often as changes arrive, so this ends; `CONFLICT_RETRIES` bounds it anyway.
        let mut item = self.message_item(contact, change, &role);
        if notes_only {
            // Read past by the property's reader (`recent_transcript`) and left out of its count of lines.
            item.insert("notes_only".to_owned(), AttributeValue::Bool(true));
        }
        let version = MessageVersion::of(change);
        // The count of lines the property shows: a notes-only conversation's lines are not among them.
        let removed = i64::from(version.removed && !notes_only);
        let created = i64::from(!notes_only);
        // A `message.new` mostly finds nothing; any other change mostly finds its message.
        let mut present = change.kind != MessageKind::New;
        for _ in 0..CONFLICT_RETRIES {
            let (condition, values, shown) = if present {
                let (condition, values) = supersedes(change);
                (condition, values, -removed)
            } else {
                (
                    "attribute_not_exists(#pk)".to_owned(),
                    Item::new(),
                    created - removed,
                )
            };
            match self
                .put_with_bump(contact, item.clone(), &condition, values, shown)
                .await?
            {
                Attempt::Written => return Ok(Recorded::Applied),
                // The channel's mapping is gone: the contact was erased, nothing is recorded for it.
                Attempt::Gone => return Ok(Recorded::Unchanged),
                Attempt::Found(None) => present = false,
                Attempt::Found(Some(stored)) => {
                    if !version.supersedes(&stored_version(&stored)) {
                        return Ok(Recorded::Unchanged);
                    }
                    present = true;
                }
            }
        }
        Err(StoreError::Unavailable(
            "the message kept changing while a change to it was recorded".into(),
        ))
    }

    async fn sync_state(&self, contact: &ContactId) -> Result<SyncState, StoreError> {
        // Read transactionally: a plain read is only read-committed per item, so it could see a change's version
        // bump before its message item; a transactional read is serialized after the whole change, so the
        // messages read next include every change up to this version.
        let get = Get::builder()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(contact), SYNC)))
            .build()
            .map_err(build_error)?;
        let mut attempt = 0;
        let output = loop {
            attempt += 1;
            match self
                .client
                .transact_get_items()
                .transact_items(TransactGetItem::builder().get(get.clone()).build())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
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
        self.consumed.add_all(output.consumed_capacity());
        match output.responses().first().and_then(|r| r.item()) {
            Some(item) => parse_sync_state(item),
            None => Ok(SyncState::default()),
        }
    }

    async fn recent_transcript(
        &self,
        contact: &ContactId,
        limit: usize,
    ) -> Result<TranscriptSource, StoreError> {
        // Newest first, page by page, until the lines read overflow the limit: older lines cannot be shown, so a
        // long history costs no more than a short one.
        let mut messages = Vec::new();
        let mut filling = Filling::new(limit);
        let now = Timestamp::now();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :msg)")
                .expression_attribute_names("#pk", schema::PARTITION_KEY)
                .expression_attribute_names("#sk", schema::SORT_KEY)
                .expression_attribute_values(":pk", s(contact_pk(contact)))
                .expression_attribute_values(":msg", s("MSG#"))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(MESSAGE_PAGE)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(unavailable)?;
            self.consumed.add(output.consumed_capacity());
            for item in output.items() {
                // A notes-only conversation's lines never go into the property (see `ChannelMapping::notes_only`).
                if expired(item, now) || get_bool(item, "notes_only") {
                    continue;
                }
                // A hard-deleted message has no line (the renderer leaves it out) but is read all the same: it
                // drops HubSpot's copy of its line (see `domain::archive`).
                let message = parse_message(item)?;
                filling.add(&message);
                messages.push(message);
            }
            start = output.last_evaluated_key().cloned();
            if filling.is_full() || start.is_none() {
                break;
            }
        }
        messages.reverse();
        let mut cids: Vec<&str> = messages.iter().map(|m| m.cid.as_str()).collect();
        cids.sort_unstable();
        cids.dedup();
        let conversations = self.conversations(contact, &cids).await?;
        Ok(TranscriptSource {
            conversations,
            messages,
        })
    }

    async fn read_small_contact(
        &self,
        contact: &ContactId,
        cids: &[String],
    ) -> Result<Option<ContactReading>, StoreError> {
        DynamoStore::read_small_contact(self, contact, cids).await
    }

    async fn sync_states(&self, contacts: &[ContactId]) -> Result<Vec<SyncState>, StoreError> {
        self.read_sync_states(contacts).await
    }

    async fn contact_email(&self, contact: &ContactId) -> Result<Option<Email>, StoreError> {
        // Through a conversation's channel mapping: the e-mail is stored once, with the registration.
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :conv)")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .expression_attribute_names("#sk", schema::SORT_KEY)
            .expression_attribute_values(":pk", s(contact_pk(contact)))
            .expression_attribute_values(":conv", s("CONV#"))
            .limit(1)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(conversation) = output.items().first() else {
            return Ok(None);
        };
        let channel = ChannelRef::parse_cid(get_s(conversation, "cid")?).map_err(corrupt)?;
        Ok(self.channel(&channel).await?.map(|mapping| mapping.email))
    }

    async fn all_conversations(
        &self,
        contact: &ContactId,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.contact_conversations(contact).await
    }

    async fn conversation_notes(
        &self,
        contact: &ContactId,
        cids: &[String],
    ) -> Result<Vec<ConversationNotes>, StoreError> {
        let cids: Vec<&str> = cids.iter().map(String::as_str).collect();
        let mut found = Vec::new();
        for chunk in cids.chunks(100) {
            for item in self.conversation_items(contact, chunk).await? {
                let notes = item
                    .get("note_ids")
                    .and_then(|v| v.as_l().ok())
                    .map(|ids| {
                        ids.iter()
                            .filter_map(|id| id.as_s().ok())
                            .map(|id| NoteId::parse(id).map_err(corrupt))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .transpose()?
                    .unwrap_or_default();
                found.push(ConversationNotes {
                    conversation: parse_conversation(&item)?,
                    notes,
                    creating: get_bool(&item, "creating_note"),
                });
            }
        }
        found.sort_by(|a, b| a.conversation.cid.cmp(&b.conversation.cid));
        Ok(found)
    }

    async fn conversation_messages(
        &self,
        contact: &ContactId,
        conversation: &Conversation,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let now = Timestamp::now();
        self.conversation_items_raw(contact, conversation)
            .await?
            .iter()
            .filter(|item| !expired(item, now))
            .map(parse_message)
            .collect()
    }

    async fn clear_conversation(
        &self,
        mapping: &ChannelMapping,
        cleared: Cleared,
    ) -> Result<Recorded, StoreError> {
        let cid = mapping.channel.cid();
        let contact = &mapping.contact_id;
        let (expression, condition, values) = clearing(cleared);
        let update = |pk: String, sk: String| {
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk, &sk)))
                .update_expression(expression)
                .condition_expression(format!("attribute_exists(#pk) AND ({condition})"))
                .expression_attribute_names("#pk", schema::PARTITION_KEY)
                .set_expression_attribute_values(Some(values.clone()))
                .build()
                .map_err(build_error)
        };
        // The channel mapping (so later deliveries of erased messages store nothing) and the conversation (so
        // the flusher renders without them) record it together with the contact's version bump.
        let items = vec![
            TransactWriteItem::builder()
                .update(update(channel_pk(&mapping.channel), "CHANNEL".into())?)
                .build(),
            TransactWriteItem::builder()
                .update(update(contact_pk(contact), format!("CONV#{cid}"))?)
                .build(),
            self.bump_version(contact, &cid, 0, None, Some(Erasure::Conversation))?,
        ];
        if self.transact(items).await?.is_err() {
            // Already erased at least this far (a redelivery), or the contact was erased.
            return Ok(Recorded::Unchanged);
        }
        let conversation = Conversation {
            cid: cid.clone(),
            channel_id: mapping.channel.channel_id.as_str().to_owned(),
            started_at: mapping.created_at,
            identity: mapping.identity,
            cleared: Some(cleared),
        };
        let removed = self
            .erase_messages(contact, &conversation, true, |m, _| {
                !cleared.keeps(m.created_at)
            })
            .await?;
        self.record_erasure(contact, &cid, removed, None).await?;
        Ok(Recorded::Applied)
    }

    async fn visitor_channels(&self, visitor: &UserId) -> Result<Vec<ChannelRef>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .expression_attribute_values(":pk", s(format!("USER#{}", visitor.as_str())))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .items()
            .iter()
            .map(|item| ChannelRef::parse_cid(get_s(item, "cid")?).map_err(corrupt))
            .collect()
    }

    async fn erase_author(
        &self,
        mapping: &ChannelMapping,
        author: &UserId,
        remove: bool,
    ) -> Result<Recorded, StoreError> {
        let cid = mapping.channel.cid();
        let conversation = Conversation {
            cid: cid.clone(),
            channel_id: mapping.channel.channel_id.as_str().to_owned(),
            started_at: mapping.created_at,
            identity: mapping.identity,
            cleared: None,
        };
        let author_id = author.as_str().to_owned();
        let mut touched = false;
        let removed = self
            .erase_messages(&mapping.contact_id, &conversation, remove, |_, item| {
                let theirs = item
                    .get("author_id")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|id| *id == author_id);
                touched |= theirs;
                theirs
            })
            .await;
        let removed = removed?;
        if !touched {
            // No stored message of theirs, but HubSpot's copy of messages that expired here may hold their lines
            // (see `domain::archive`): the erasure is recorded once for that.
            let state = self.sync_state(&mapping.contact_id).await?;
            if state.archived_at.is_none() || state.visitor_erased.contains(&cid) {
                return Ok(Recorded::Unchanged);
            }
        }
        self.record_erasure(&mapping.contact_id, &cid, removed, Some(Erasure::Visitor))
            .await?;
        Ok(Recorded::Applied)
    }

    async fn creating_note(&self, contact: &ContactId, cid: &str) -> Result<(), StoreError> {
        self.update_conversation(
            contact,
            cid,
            "SET creating_note = :true",
            vec![(":true", AttributeValue::Bool(true))],
        )
        .await
    }

    async fn save_notes(
        &self,
        contact: &ContactId,
        cid: &str,
        notes: &[NoteId],
    ) -> Result<(), StoreError> {
        let ids = notes.iter().map(|id| s(id.as_str())).collect();
        self.update_conversation(
            contact,
            cid,
            "SET note_ids = :ids REMOVE creating_note",
            vec![(":ids", AttributeValue::L(ids))],
        )
        .await
    }

    async fn footprint(&self, contact: &ContactId) -> Result<Footprint, StoreError> {
        self.footprint_of(contact).await
    }

    async fn erase_contact(&self, contact: &ContactId) -> Result<Footprint, StoreError> {
        self.erase(contact).await
    }

    async fn mark_deleted(
        &self,
        contact: &ContactId,
        at: Timestamp,
        purge_at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.mark_contact_deleted(contact, at, purge_at).await
    }

    async fn due_purges(&self, now: Timestamp, limit: usize) -> Result<Vec<ContactId>, StoreError> {
        DynamoStore::due_purges(self, now, limit).await
    }

    async fn restore_contact(
        &self,
        contact: &ContactId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.restore(contact, at).await
    }

    async fn contacts_with_email(&self, email: &Email) -> Result<Vec<ContactId>, StoreError> {
        self.contacts_by_email(email).await
    }

    async fn idle_contacts(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<IdleContact>, StoreError> {
        self.idle_since_before(before, limit).await
    }

    async fn defer_idle(&self, contact: &ContactId, since: Timestamp) -> Result<(), StoreError> {
        self.move_on_idle_index(contact, since).await
    }

    async fn archive_contact(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        state: &SyncState,
        expires_at: Timestamp,
        until: Instant,
    ) -> Result<Option<Archived>, StoreError> {
        self.archive(contact, owner, state, expires_at, until).await
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
            .set_key(Some(Self::lease_key(contact)))
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

    async fn redirect_contact(
        &self,
        contact: &ContactId,
        crm_contact: &ContactId,
    ) -> Result<bool, StoreError> {
        if contact == crm_contact {
            return Ok(false);
        }
        let known = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .expression_attribute_values(":pk", s(contact_pk(contact)))
            .projection_expression("#pk")
            .limit(1)
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.consumed.add(known.consumed_capacity());
        if known.items().is_empty() {
            return Ok(false);
        }
        // The alias first: once it is there, erasing, deleting or restoring the surviving record reaches this
        // contact's conversations (see `erasure`), whether or not it was ever synced.
        let mut alias = key(contact_pk(crm_contact), &format!("ALIAS#{contact}"));
        alias.insert("contact_id".to_owned(), s(contact.as_str()));
        let output = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(alias))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.consumed.add(output.consumed_capacity());
        // Then its writes go to the survivor (a contact that never had a message has no sync record yet: its first
        // flush finds the survivor by e-mail).
        self.update_sync(
            contact,
            "SET crm_contact_id = :crm",
            &[(":crm", s(crm_contact.as_str()))],
        )
        .await?;
        Ok(true)
    }

    async fn park_contact(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        reason: &str,
    ) -> Result<(), StoreError> {
        // Parked in the same transaction as the lease goes: nobody writes the contact again until an operator
        // re-queues it.
        let park = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(contact), SYNC)))
            .update_expression("SET dirty = :parked, dirty_since = :now, parked_reason = :why")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .expression_attribute_values(":parked", s(schema::PARKED))
            .expression_attribute_values(":now", s(Timestamp::now().key()))
            .expression_attribute_values(":why", s(reason.chars().take(500).collect::<String>()))
            .build()
            .map_err(build_error)?;
        let items = vec![
            self.release_with(contact, owner)?,
            TransactWriteItem::builder().update(park).build(),
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            // Our lease expired: whoever holds it now decides; the contact is still queued.
            Err(failed) if failed.index == 0 => Ok(()),
            // No sync record: the contact was erased meanwhile. Nothing to park; hand the lease back.
            Err(_) => self.release_lease(contact, owner).await,
        }
    }

    async fn requeue(&self, contact: &ContactId) -> Result<bool, StoreError> {
        self.update_sync(
            contact,
            "SET dirty = :shard, dirty_since = :now REMOVE parked_reason",
            &[
                (":shard", s(shard(contact))),
                (":now", s(Timestamp::now().key())),
            ],
        )
        .await
    }

    async fn dirty_contacts(&self, limit: usize) -> Result<Vec<ContactId>, StoreError> {
        Ok(self
            .queued(limit)
            .await?
            .into_iter()
            .map(|(_, contact)| contact)
            .collect())
    }

    async fn backlog(&self, limit: usize) -> Result<Vec<BacklogEntry>, StoreError> {
        let since = |raw: &str| Timestamp::parse("dirty_since", raw).map_err(corrupt);
        let mut entries = Vec::new();
        for (at, contact) in self.queued(limit).await? {
            entries.push(BacklogEntry {
                contact,
                since: since(&at)?,
                parked: None,
            });
        }
        // The index projects only the contact id: the reason comes from each parked contact's sync record.
        for (at, contact) in self.query_shard(schema::PARKED, limit).await? {
            let reason = self
                .sync_state(&contact)
                .await?
                .parked
                .unwrap_or_else(|| "unknown".to_owned());
            entries.push(BacklogEntry {
                contact,
                since: since(&at)?,
                parked: Some(reason),
            });
        }
        Ok(entries)
    }

    async fn backlog_health(&self) -> Result<BacklogHealth, StoreError> {
        let partitions = (0..schema::DIRTY_SHARDS)
            .map(|shard| shard.to_string())
            .chain([schema::PARKED.to_owned()]);
        let counts = futures::future::try_join_all(
            partitions.map(|p| async move { self.count_partition(&p).await }),
        )
        .await?;
        let (behind, parked) = counts.split_at(schema::DIRTY_SHARDS as usize);
        let oldest_behind_since = match self.queued(1).await?.first() {
            Some((at, _)) => Some(Timestamp::parse("dirty_since", at).map_err(corrupt)?),
            None => None,
        };
        Ok(BacklogHealth {
            behind: behind.iter().sum(),
            parked: parked.iter().sum(),
            oldest_behind_since,
        })
    }

    async fn acquire_flusher(&self, owner: &LeaseOwner, ttl: Duration) -> Result<bool, StoreError> {
        let now = Timestamp::now().unix_millis();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(flusher_key()))
            .update_expression("SET lease_owner = :owner, lease_until_ms = :until")
            .condition_expression("attribute_not_exists(lease_until_ms) OR lease_until_ms < :now")
            .expression_attribute_values(":owner", s(owner.as_str()))
            .expression_attribute_values(":until", n(now + ttl.as_millis() as i64))
            .expression_attribute_values(":now", n(now))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        if let Ok(output) = &result {
            self.consumed.add(output.consumed_capacity());
        }
        conditional(result)
    }

    async fn wake_flusher(&self, contact: &ContactId) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(flusher_key()))
            .update_expression("ADD wake :contact")
            .condition_expression("lease_until_ms >= :now")
            .expression_attribute_values(":contact", string_set(std::slice::from_ref(contact)))
            .expression_attribute_values(":now", n(Timestamp::now().unix_millis()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        if let Ok(output) = &result {
            self.consumed.add(output.consumed_capacity());
        }
        conditional(result)
    }

    async fn renew_flusher(
        &self,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<Option<Vec<ContactId>>, StoreError> {
        // Renewing even an expired lease is safe: the condition is that nobody took it since.
        let until = Timestamp::now().unix_millis() + ttl.as_millis() as i64;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(flusher_key()))
            .update_expression("SET lease_until_ms = :until")
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":owner", s(owner.as_str()))
            .return_values(ReturnValue::AllNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(e) => {
                return match conditional(Err::<(), _>(e)) {
                    Ok(_) => Ok(None),
                    Err(error) => Err(error),
                }
            }
        };
        self.consumed.add(output.consumed_capacity());
        let woken = output
            .attributes()
            .and_then(|item| item.get("wake"))
            .and_then(|v| v.as_ss().ok())
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| ContactId::parse(id).ok())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(woken))
    }

    async fn clear_wakes(&self, contacts: &[ContactId]) -> Result<(), StoreError> {
        if contacts.is_empty() {
            return Ok(());
        }
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(flusher_key()))
            .update_expression("DELETE wake :taken")
            .expression_attribute_values(":taken", string_set(contacts))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.consumed.add(output.consumed_capacity());
        Ok(())
    }

    async fn release_flusher(&self, owner: &LeaseOwner, if_idle: bool) -> Result<bool, StoreError> {
        let condition = if if_idle {
            "lease_owner = :owner AND attribute_not_exists(wake)"
        } else {
            "lease_owner = :owner"
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(flusher_key()))
            .update_expression("REMOVE lease_owner, lease_until_ms")
            .condition_expression(condition)
            .expression_attribute_values(":owner", s(owner.as_str()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        if let Ok(output) = &result {
            self.consumed.add(output.consumed_capacity());
        }
        conditional(result)
    }
}
