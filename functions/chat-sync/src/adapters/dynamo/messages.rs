//! The message log (`MessageLog`): recording every change Stream delivers, each conditional on the message item as
//! it is when the write lands, and reading what the flusher renders.

use super::codec::sync_record::first_at;
use super::codec::{clearing, conversation, expired, get_bool, get_s, message, s, Item};
use super::keys::{
    channel_pk, contact_pk, conversation_sk, key, messages_from, sync_record_key, MAPPING,
    MESSAGES_END, MESSAGE_PREFIX,
};
use super::sync_record::{Bump, Erasure, SyncGate, Vouch};
use super::transact::CONFLICT_RETRIES;
use super::{build_error, schema, DynamoStore};
use crate::domain::transcript::Filling;
use crate::domain::{Cleared, Conversation};
use crate::domain::{
    ContactId, MessageChange, MessageKind, MessageVersion, Role, StoredMessage, Timestamp, UserId,
};
use crate::ports::{
    ChannelMapping, ContactReading, MessageLog, Recorded, StoreError, SyncRecords, TranscriptSource,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use std::collections::HashMap;

/// How far Stream's message times may run behind the conversation start we recorded.
pub(super) const CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(86_400);
/// Messages read per page of a newest-first read: a page is about what one transcript line costs to fill.
pub(super) const MESSAGE_PAGE: i32 = 100;

/// How one attempt at writing a message item ended.
enum Attempt {
    Written,
    /// The item's condition failed; the item as it is (`None`: there is none).
    Found(Option<Item>),
    /// The channel's mapping is gone, its contact is deleted in HubSpot, or a clearing on it erased the message.
    Gone,
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

impl DynamoStore {
    /// Puts a message item under `condition` together with the version bump (`shown` more lines) and the gate of
    /// a message's change (see `bump_version`): on the sync record when it gates the conversation, two items;
    /// else beside the channel's mapping (`mapping_admits`), three, and the record gates the conversation from
    /// then on if the mapping has no clearing. A conversation is gated on the record from its registration, so
    /// every change costs the two items, not the three a check of the mapping made every change pay; one
    /// registered before that pays a refused attempt at its first change. One cleared before records mirrored
    /// clearings pays two refused attempts a change, until its next clearing writes the mirror.
    async fn put_with_bump(
        &self,
        mapping: &ChannelMapping,
        change: &MessageChange,
        item: Item,
        condition: &str,
        values: Item,
        shown: i64,
    ) -> Result<Attempt, StoreError> {
        let contact = &mapping.contact_id;
        let cid = change.channel.cid();
        let created_at = &change.created_at;
        // A conversation is read from its registration less a day (`conversation_items_raw`): only a message
        // created before that needs its time kept as where reading starts.
        let first_at = *created_at < mapping.created_at.earlier_by(CLOCK_SKEW);
        let put = || {
            self.put(
                item.clone(),
                condition,
                &[("#pk", schema::PARTITION_KEY)],
                values.clone(),
            )
        };
        let bump = |gate| {
            self.bump_version(&Bump {
                contact,
                cid: &cid,
                shown,
                created_at: Some(created_at),
                first_at,
                erasure: None,
                // Only a new message's line may wait for the notes; any other change may take text out of them.
                notes_now: change.kind != MessageKind::New,
                gate,
            })
        };
        // The life of the record the conversation was registered into vouches for it; for a mapping saved before
        // records had epochs, the record's list does. A failed condition on the message returns the item as it
        // is: the next attempt is decided on what is there.
        let vouch = mapping.epoch.as_ref().map_or(Vouch::Listed, Vouch::Epoch);
        match self
            .transact(vec![put()?, bump(SyncGate::Required(vouch))?])
            .await?
        {
            Ok(()) => return Ok(Attempt::Written),
            Err(failed) if failed.index == 0 => return Ok(Attempt::Found(failed.item)),
            // The record vouches for the conversation and refused: the contact is being erased or is deleted in
            // HubSpot, or a clearing erased this message. Or the mapping carries an epoch the record does not (no
            // record, or another life of it): only an erasure ends a record's life (or the purge's TTL, after
            // a deletion in HubSpot), so this mapping's contact is gone, whatever the channel maps to now (see
            // `Vouch::Epoch`).
            Err(failed) if vouch.refuses_for_good(failed.item.as_ref(), &cid) => {
                return Ok(Attempt::Gone)
            }
            // A mapping from before epochs, on a record that does not list the conversation yet: the mapping
            // decides.
            Err(_) => {}
        }
        match self
            .transact(vec![
                put()?,
                bump(SyncGate::Adopted)?,
                self.mapping_uncleared(&cid)?,
            ])
            .await?
        {
            Ok(()) => return Ok(Attempt::Written),
            Err(failed) if failed.index == 0 => return Ok(Attempt::Found(failed.item)),
            // The mapping is gone, or has a clearing the record may not mirror: checked beside it as it is.
            Err(_) => {}
        }
        let items = vec![
            put()?,
            bump(SyncGate::Beside)?,
            self.mapping_admits(&cid, created_at)?,
        ];
        Ok(match self.transact(items).await? {
            Ok(()) => Attempt::Written,
            Err(failed) if failed.index == 0 => Attempt::Found(failed.item),
            Err(_) => Attempt::Gone,
        })
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
            let message = message::decode(&item)?;
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
            let update = self
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
                .expression_attribute_values(":none", AttributeValue::L(vec![]));
            // The count is of the property's lines: a notes-only conversation's never were among them.
            if self.send_update(update).await?.written() && remove && !get_bool(&item, "notes_only")
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Every message item of a conversation, erased ones included. Its messages were created after the earlier of
    /// its start and its first delivered message (Stream's clock agrees with ours within seconds, and deliveries
    /// come out of order by seconds; a day's allowance covers both): the read starts there. The first delivered
    /// message's time is kept only when it is the earlier by more than that day (`put_with_bump`).
    async fn conversation_items_raw(
        &self,
        contact: &ContactId,
        conversation: &Conversation,
    ) -> Result<Vec<Item>, StoreError> {
        let first_at = first_at(&conversation.cid);
        let sync = self
            .get(sync_record_key(contact), &[&first_at], true)
            .await?;
        let first = sync
            .as_ref()
            .and_then(|item| item.get(&first_at))
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
                .expression_attribute_values(":from", s(messages_from(&since)))
                .expression_attribute_values(":to", s(MESSAGES_END))
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
        let bump = self.bump_version(&Bump {
            contact,
            cid,
            shown,
            created_at: None,
            first_at: false,
            erasure,
            notes_now: true,
            gate: SyncGate::Beside,
        })?;
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
}

#[async_trait]
impl MessageLog for DynamoStore {
    async fn record_change(
        &self,
        mapping: &ChannelMapping,
        change: &MessageChange,
        role: Role,
    ) -> Result<Recorded, StoreError> {
        let (contact, notes_only) = (&mapping.contact_id, mapping.notes_only);
        // One change is one decision on the message item as it is when the write lands, never a check and a write
        // apart (a `message.new` landing between them would make both fail and lose the change). Each attempt is
        // one transaction conditional on the item's exact state: "absent", or "present and superseded by this
        // change" (`MessageVersion`), each with the count of shown lines it implies (+1 for a new line, −1 for a
        // hard delete of a shown one). A failed attempt returns the item as it now is; the change is then either
        // stale (done: `Unchanged`) or the other attempt applies. Every failure means the item changed in between,
        // and it can change only as often as changes arrive, so this ends; `CONFLICT_RETRIES` bounds it anyway.
        let item = message::encode(contact, change, &role, notes_only);
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
                .put_with_bump(mapping, change, item.clone(), &condition, values, shown)
                .await?
            {
                Attempt::Written => return Ok(Recorded::Applied),
                // The channel's mapping is gone (the contact was erased), its contact is deleted in HubSpot, or a
                // clearing erased this message with its conversation: nothing is recorded for it.
                Attempt::Gone => return Ok(Recorded::Refused),
                Attempt::Found(None) => present = false,
                Attempt::Found(Some(stored)) => {
                    if !version.supersedes(&message::stored_version(&stored)) {
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
                .update(update(channel_pk(&mapping.channel), MAPPING.into())?)
                .build(),
            TransactWriteItem::builder()
                .update(update(contact_pk(contact), conversation_sk(&cid))?)
                .build(),
            // The sync record mirrors the clearing from now on: it gates later changes to the conversation (a
            // mapping with no epoch has the record list it: see `Vouch`).
            self.bump_version(&Bump {
                contact,
                cid: &cid,
                shown: 0,
                created_at: None,
                first_at: false,
                erasure: Some(Erasure::Conversation {
                    cleared,
                    list: mapping.epoch.is_none(),
                }),
                notes_now: true,
                gate: SyncGate::Beside,
            })?,
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

    async fn read_small_contact(
        &self,
        contact: &ContactId,
        cids: &[String],
    ) -> Result<Option<ContactReading>, StoreError> {
        DynamoStore::read_small_contact(self, contact, cids).await
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
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :msg)")
                .expression_attribute_names("#pk", schema::PARTITION_KEY)
                .expression_attribute_names("#sk", schema::SORT_KEY)
                .expression_attribute_values(":pk", s(contact_pk(contact)))
                .expression_attribute_values(":msg", s(MESSAGE_PREFIX))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(MESSAGE_PAGE)
                .set_exclusive_start_key(start.take());
            let output = self.query_page(query).await?;
            for item in output.items() {
                // A notes-only conversation's lines never go into the property (see `ChannelMapping::notes_only`).
                if expired(item, now) || get_bool(item, "notes_only") {
                    continue;
                }
                // A hard-deleted message has no line (the renderer leaves it out) but is read all the same: it
                // drops HubSpot's copy of its line (see `domain::archive`).
                let message = message::decode(item)?;
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

    async fn all_conversations(
        &self,
        contact: &ContactId,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.conversation_records(contact)
            .await?
            .iter()
            .map(conversation::decode)
            .collect()
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
            .map(message::decode)
            .collect()
    }
}
