//! A contact's sync record (`SyncRecords`): its version, bumped atomically with every recorded change, what was
//! last written to HubSpot, and where its writes go after a merge.

use super::codec::sync_record::{
    cleared_deleted, cleared_until, epoch as codec_epoch, erasures, first_at, gates,
};
use super::codec::{alias, frozen, get_n, n, s, sync_record, Item};
use super::keys::{contact_pk, key, shard, sync_record_key, FROZEN};
use super::transact::CONFLICT_RETRIES;
use super::{build_error, schema, unavailable, DynamoStore};
use crate::domain::Cleared;
use crate::domain::{ContactId, Timestamp};
use crate::ports::{RecordEpoch, StoreError, SyncRecords, SyncState};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Get, ReturnValuesOnConditionCheckFailure, TransactGetItem, TransactWriteItem,
    Update,
};
use std::time::Duration;

/// What an erasure erased, as the sync record counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Erasure {
    /// Messages of the conversation (a truncation or deletion): the clearing the sync record mirrors from now on.
    /// `list`: name the conversation in `gates` too, for a mapping that carries no epoch (see `Vouch`).
    Conversation { cleared: Cleared, list: bool },
    /// The conversation's visitor and their messages.
    Visitor,
}

/// How a change to a message is gated on the sync record (see `bump_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SyncGate<'a> {
    /// Not on it: the channel's mapping is checked beside it in the transaction.
    Beside,
    /// On it: it must vouch for the conversation (mirror its clearing since its registration), have no erasure
    /// under way, and admit a message created when this one was.
    Required(Vouch<'a>),
    /// Beside it, on a mapping with no clearing: the sync record mirrors the conversation from now on.
    Adopted,
}

/// Why a sync record mirrors a conversation's clearing, so its gate is the mapping's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Vouch<'a> {
    /// It is the life of the record the conversation was registered into: its `epoch` is the one the mapping
    /// carries. Every clearing since writes its mirror on the record in the mapping's transaction, and a record
    /// made again after an erasure has another epoch. A refusal is final: a record with that epoch refuses what
    /// the mapping would, and a record without it (none, or another life) means the life the mapping joined is
    /// over (an erasure, or the purge's TTL after a deletion in HubSpot). Checking such a change beside the
    /// channel's mapping as it now is would be wrong: the channel may be registered again, to the same contact's
    /// new life or to another contact, and the change names the old one.
    Epoch(&'a RecordEpoch),
    /// It names the conversation in `gates`: registered before records had epochs and adopted at a change, or
    /// cleared since.
    Listed,
}

impl Vouch<'_> {
    /// Whether the refusal of a change vouched for so is final, given `record` as the refused write returned it: for
    /// an epoch always (see `Vouch::Epoch`); for a listed conversation when the record lists it (then what it
    /// refused, the mapping refuses too), not when it does not list it yet.
    pub(super) fn refuses_for_good(self, record: Option<&Item>, cid: &str) -> bool {
        match self {
            Vouch::Epoch(_) => true,
            Vouch::Listed => gates(record, cid),
        }
    }
}

/// A change's part on the sync record.
pub(super) struct Bump<'a> {
    pub(super) contact: &'a ContactId,
    pub(super) cid: &'a str,
    /// Lines the property shows more (or fewer, negative).
    pub(super) shown: i64,
    /// The message's creation time, for a change to a message.
    pub(super) created_at: Option<&'a Timestamp>,
    /// Keep the message's creation time as its conversation's first (`first_at:<cid>`, unless one is kept): only
    /// for a message created more than a day before its channel's registration (see `record_change`).
    pub(super) first_at: bool,
    pub(super) erasure: Option<Erasure>,
    /// The change must reach the notes at once (an edit, a deletion, an erasure).
    pub(super) notes_now: bool,
    pub(super) gate: SyncGate<'a>,
}

impl DynamoStore {
    /// An update of a contact's sync record. The record is never written whole (see `codec::sync_record`): every
    /// writer of it starts here and changes its own attributes.
    pub(super) fn sync_update(&self, contact: &ContactId) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(sync_record_key(contact)))
    }

    /// The same update, as an item of a transaction.
    pub(super) fn sync_update_in_transaction(&self, contact: &ContactId) -> UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(sync_record_key(contact)))
    }

    /// The sync record's part of a recorded change: a new version, `shown` more (or fewer) lines to show, and the
    /// contact queued in its shard (unless it is parked: a contact HubSpot no longer has stays parked). A change
    /// that must reach the notes at once (`notes_now`: an edit, a deletion, an erasure) says so.
    ///
    /// **The gate.** Nothing may be recorded for a conversation its clearing erased, or for a contact being
    /// erased. The channel's mapping holds the clearing and goes first in an erasure, so a change checks it in its
    /// transaction (`mapping_admits`), a third item that DynamoDB bills as a write. The sync record can hold the
    /// same gate: a clearing writes its marks on the mapping and, in the same transaction, on the sync record
    /// (`cleared_until:<cid>`, `cleared_deleted:<cid>`); a contact's erasure marks the record `erasing` after
    /// deleting the mappings, then deletes it (and reads the partition again, which takes whatever committed
    /// before the mark). So a change to a conversation the record vouches for (`Vouch`) is gated on the record
    /// alone (`SyncGate::Required`): two items. The record vouches for every conversation registered into its
    /// life (`join_record`: the mapping carries the record's `epoch`), with no attribute per conversation, and for
    /// those it names in `gates`: registered before records had epochs and adopted at a change checked beside a
    /// mapping that has no clearing (`SyncGate::Adopted`), or cleared since; a mapping cleared before records
    /// mirrored clearings is never adopted, and its changes are checked beside it as before.
    pub(super) fn bump_version(&self, bump: &Bump<'_>) -> Result<TransactWriteItem, StoreError> {
        let Bump {
            contact,
            cid,
            shown,
            created_at,
            first_at: keep_first,
            erasure,
            notes_now,
            gate,
        } = *bump;
        // `pending_notes` names the conversations whose notes need rewriting; it is cleared only together with
        // marking the contact synced at a version whose notes were written (`release_if_current`), and
        // `notes_since` with it: when the oldest change not in the notes was recorded, what a note's wait is
        // counted from. It is the notes' queue's sort key, but the contact joins that queue only when a flusher
        // lets its notes wait (the partition key, `notes`, is the flusher's to set): a change writes no index
        // entry for it. `first_at:<cid>` keeps the creation time of the first message delivered in a
        // conversation, where reading it starts, when that is earlier than its registration allows for (`first_at`
        // above): one attribute for every conversation would grow the record, and so every change's units, with
        // the contact's history. `changed_at` is what retention measures idleness from (see `retention`): not an
        // index key, so keeping it costs no index write.
        let mut add = "change_version :one, message_count :added, pending_notes :cid".to_owned();
        let mut set = "contact_id = :contact, dirty = if_not_exists(dirty, :shard), \
                       dirty_since = if_not_exists(dirty_since, :now), changed_at = :now, \
                       notes_since = if_not_exists(notes_since, :now)"
            .to_owned();
        let mut update = self
            .sync_update_in_transaction(contact)
            .expression_attribute_values(":cid", AttributeValue::Ss(vec![cid.to_owned()]))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":added", n(shown))
            .expression_attribute_values(":contact", s(contact.as_str()))
            .expression_attribute_values(":shard", s(shard(contact)))
            .expression_attribute_values(":now", s(Timestamp::now().key()));
        if notes_now {
            set.push_str(", notes_now = :true");
            update = update.expression_attribute_values(":true", AttributeValue::Bool(true));
        }
        if let Some(created_at) = created_at.filter(|_| keep_first) {
            set.push_str(", #first = if_not_exists(#first, :created)");
            update = update
                .expression_attribute_names("#first", first_at(cid))
                .expression_attribute_values(":created", s(created_at.key()));
        }
        match erasure {
            Some(Erasure::Conversation { cleared, list }) => {
                add.push_str(", #erasures :one");
                if list {
                    add.push_str(", gates :cid");
                }
                update = update.expression_attribute_names("#erasures", erasures(cid));
                match cleared {
                    Cleared::Deleted => {
                        set.push_str(", #deleted = :true");
                        update = update
                            .expression_attribute_names("#deleted", cleared_deleted(cid))
                            .expression_attribute_values(":true", AttributeValue::Bool(true));
                    }
                    Cleared::Truncated(until) => {
                        set.push_str(", #until = :until");
                        update = update
                            .expression_attribute_names("#until", cleared_until(cid))
                            .expression_attribute_values(":until", s(until.key()));
                    }
                }
            }
            Some(Erasure::Visitor) => {
                add.push_str(", #erasures :one, visitor_erased :cid");
                update = update.expression_attribute_names("#erasures", erasures(cid));
            }
            None => {}
        }
        match gate {
            SyncGate::Beside => {}
            SyncGate::Adopted => add.push_str(", gates :cid"),
            SyncGate::Required(vouch) => {
                // The mapping's own condition (`mapping_admits`), on the record's mirror of it. A refusal returns
                // the record, so the caller can tell a gate that refused from a record that does not gate yet.
                let created_at = created_at.ok_or_else(|| {
                    StoreError::Unavailable(
                        "a change gated on its sync record has no message".into(),
                    )
                })?;
                let vouched = match vouch {
                    Vouch::Epoch(epoch) => {
                        update = update.expression_attribute_values(":vouch", s(epoch.as_str()));
                        "epoch = :vouch"
                    }
                    Vouch::Listed => {
                        update = update.expression_attribute_values(":vouch", s(cid));
                        "contains(gates, :vouch)"
                    }
                };
                // A contact deleted in HubSpot (`mark_deleted`: `dirty` is `purging` until it is restored) keeps
                // nothing new, which would outlive its purge: its mapping says so too (`purge_at`), but a webhook may
                // hold a copy of the mapping from before.
                update = update
                    .condition_expression(format!(
                        "{vouched} AND NOT erasing = :true AND NOT dirty = :purging AND NOT #deleted = :true \
                         AND (attribute_not_exists(#until) OR #until <= :created)"
                    ))
                    .expression_attribute_values(":purging", s(schema::PURGING))
                    .expression_attribute_names("#deleted", cleared_deleted(cid))
                    .expression_attribute_names("#until", cleared_until(cid))
                    .expression_attribute_values(":true", AttributeValue::Bool(true))
                    .expression_attribute_values(":created", s(created_at.key()))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
            }
        }
        let update = update
            .update_expression(format!("ADD {add} SET {set}"))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// `state` with the contact's frozen notes, if it is archived: they are in an item of their own
    /// (`codec::frozen`), which retention puts with `archived_at` under the contact's lease, so the record every
    /// change writes does not grow with them. Read strongly, after the record: it is the one that expiry left.
    pub(super) async fn with_frozen(
        &self,
        contact: &ContactId,
        mut state: SyncState,
    ) -> Result<SyncState, StoreError> {
        // A record archived before the notes had an item of their own still holds them itself.
        if state.archived_at.is_some() && state.frozen.is_empty() {
            if let Some(item) = self
                .get(key(contact_pk(contact), FROZEN), &[], true)
                .await?
            {
                state.frozen = frozen::decode(&item);
            }
        }
        Ok(state)
    }

    /// The epoch of the contact's sync record as it is now (read strongly): `None` if there is no record, or one
    /// made before records had epochs.
    pub(super) async fn record_epoch(
        &self,
        contact: &ContactId,
    ) -> Result<Option<RecordEpoch>, StoreError> {
        let record = self.get(sync_record_key(contact), &["epoch"], true).await?;
        Ok(codec_epoch(record.as_ref()).map(RecordEpoch::stored))
    }

    /// The sync record's part of a conversation's registration: the record is still the life `epoch` names
    /// (`current`), or, if it has none, becomes that life (a new record for a contact's first conversation, or the
    /// first after an erasure). The new mapping carries the epoch, so the record vouches for the conversation from
    /// its first change (`Vouch::Epoch`), which then checks no mapping: a conversation has no clearing until it is
    /// registered. One attribute a record, not one a conversation.
    pub(super) fn join_record(
        &self,
        contact: &ContactId,
        epoch: &RecordEpoch,
        current: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let condition = if current {
            "epoch = :epoch"
        } else {
            "attribute_not_exists(epoch)"
        };
        let update = self
            .sync_update_in_transaction(contact)
            .update_expression("SET contact_id = :contact, epoch = :epoch")
            .condition_expression(condition)
            .expression_attribute_values(":contact", s(contact.as_str()))
            .expression_attribute_values(":epoch", s(epoch.as_str()))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    pub(super) async fn update_sync(
        &self,
        contact: &ContactId,
        expression: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<bool, StoreError> {
        let mut update = self
            .sync_update(contact)
            .update_expression(expression)
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", schema::PARTITION_KEY);
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        Ok(self.send_update(update).await?.written())
    }
}

#[async_trait]
impl SyncRecords for DynamoStore {
    async fn sync_state(&self, contact: &ContactId) -> Result<SyncState, StoreError> {
        // Read transactionally: a plain read is only read-committed per item, so it could see a change's version
        // bump before its message item; a transactional read is serialized after the whole change, so the
        // messages read next include every change up to this version.
        let get = Get::builder()
            .table_name(&self.table)
            .set_key(Some(sync_record_key(contact)))
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
        let Some(item) = output.responses().first().and_then(|r| r.item()) else {
            return Ok(SyncState::default());
        };
        self.with_frozen(contact, sync_record::decode(item)?).await
    }

    async fn change_pending(&self, contact: &ContactId) -> Result<bool, StoreError> {
        // One unit (a strong read of a small projection), where `sync_state` takes two for the transaction and, for
        // an archived contact, the frozen notes' item as well.
        const VERSIONS: [&str; 2] = ["change_version", "synced_version"];
        let item = self.get(sync_record_key(contact), &VERSIONS, true).await?;
        Ok(item.is_some_and(|item| get_n(&item, VERSIONS[0]) != get_n(&item, VERSIONS[1])))
    }

    async fn redirect_contact(
        &self,
        contact: &ContactId,
        crm_contact: &ContactId,
    ) -> Result<bool, StoreError> {
        if contact == crm_contact {
            return Ok(false);
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .expression_attribute_values(":pk", s(contact_pk(contact)))
            .projection_expression("#pk")
            .limit(1)
            .consistent_read(true);
        let known = self.query_page(query).await?;
        if known.items().is_empty() {
            return Ok(false);
        }
        // The alias first: once it is there, erasing, deleting or restoring the surviving record reaches this
        // contact's conversations (see `erasure`), whether or not it was ever synced.
        let alias = alias::encode(crm_contact, contact);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(alias))
            .send()
            .await
            .map_err(unavailable)?;
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
}
