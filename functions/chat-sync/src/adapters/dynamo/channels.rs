//! Channel mappings and visitors' channels (`Channels`): stored at registration, read by every webhook. A
//! channel's mapping is the gate of every change recorded for its contact (see `erasure`), checked beside the
//! change or, once the contact's sync record mirrors it, through the record (see `bump_version`).

use super::codec::{channel, conversation, get_s, s, visitor_channel, Item};
use super::keys::{
    channel_pk, contact_pk, key, mapping_key, visitor_pk, CONVERSATION_PREFIX, MAPPING,
};
use super::{build_error, corrupt, schema, DynamoStore};
use crate::domain::{ChannelRef, ContactId, Email, Timestamp, UserId};
use crate::ports::{ChannelMapping, Channels, RecordEpoch, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};

/// How often a registration reads the sync record's epoch and tries to join it (see `save_channel`).
const JOIN_ATTEMPTS: usize = 3;
/// The position of the sync record's part in a registration's transaction.
const JOIN_INDEX: usize = 3;

impl DynamoStore {
    /// The gate of every recorded change: the channel's mapping still exists (an erasure deletes it first, so
    /// nothing is recorded for an erased contact, even by a webhook that read the mapping just before).
    pub(super) fn mapping_exists(&self, cid: &str) -> Result<TransactWriteItem, StoreError> {
        self.mapping_check(cid, "attribute_exists(#pk)", None)
    }

    /// The gate of a change to a message created at `created_at`: the mapping still exists and no clearing of the
    /// conversation erased the message (`Cleared::keeps`, as DynamoDB evaluates it on `clearing`'s attributes).
    /// Checked when the change commits, not when the webhook read the mapping: a truncation landing in between
    /// has its messages read and erased only after its mark is on the mapping, so a change it would miss is
    /// refused here. This is also what lets the webhook read the mapping eventually consistently (see `channel`).
    pub(super) fn mapping_admits(
        &self,
        cid: &str,
        created_at: &Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        self.mapping_check(
            cid,
            "attribute_exists(#pk) AND NOT cleared_deleted = :true \
             AND (attribute_not_exists(cleared_until) OR cleared_until <= :created)",
            Some(created_at),
        )
    }

    /// The gate of a change that the sync record takes over (see `bump_version`): the mapping exists and has no
    /// clearing, so the record, which mirrors every clearing from now on, holds all of the gate.
    pub(super) fn mapping_uncleared(&self, cid: &str) -> Result<TransactWriteItem, StoreError> {
        self.mapping_check(
            cid,
            "attribute_exists(#pk) AND attribute_not_exists(cleared_deleted) \
             AND attribute_not_exists(cleared_until)",
            None,
        )
    }

    fn mapping_check(
        &self,
        cid: &str,
        condition: &str,
        created_at: Option<&Timestamp>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(mapping_key(cid)))
            .condition_expression(condition)
            .expression_attribute_names("#pk", schema::PARTITION_KEY);
        if let Some(created_at) = created_at {
            check = check
                .expression_attribute_values(":true", AttributeValue::Bool(true))
                .expression_attribute_values(":created", s(created_at.key()));
        }
        let check = check.build().map_err(build_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// `attributes` of the channel's mapping item, read eventually consistently, at half the units; only a miss
    /// is read again, strongly: a mapping written a moment ago may not show yet, and a reader that missed it would
    /// drop what it came for.
    async fn read_mapping(
        &self,
        channel: &ChannelRef,
        attributes: &[&str],
    ) -> Result<Option<Item>, StoreError> {
        let mapping = key(channel_pk(channel), MAPPING);
        match self.get(mapping.clone(), attributes, false).await? {
            Some(item) => Ok(Some(item)),
            None => self.get(mapping, attributes, true).await,
        }
    }
}

#[async_trait]
impl Channels for DynamoStore {
    async fn save_channel(
        &self,
        mapping: &ChannelMapping,
        email: &Email,
    ) -> Result<ChannelMapping, StoreError> {
        let cid = mapping.channel.cid();
        let conversation = conversation::encode(mapping);
        // The visitor's channels, so that Stream erasing the visitor's messages can be followed here.
        let visitor = visitor_channel::encode(&mapping.visitor_id, &mapping.contact_id, &cid);
        let not_exists = "attribute_not_exists(#pk)";
        let names = [("#pk", schema::PARTITION_KEY)];
        // The mapping joins the sync record's life as it is when the registration commits: read its epoch, then
        // write it only if the record still has it (or, with none, make one). An erasure deleting the record, or
        // another registration making it, in between refuses the join: read again.
        for _ in 0..JOIN_ATTEMPTS {
            let (epoch, current) = match self.record_epoch(&mapping.contact_id).await? {
                Some(epoch) => (epoch, true),
                None => (RecordEpoch::random(), false),
            };
            let stored = ChannelMapping {
                epoch: Some(epoch.clone()),
                ..mapping.clone()
            };
            let items = vec![
                self.put(
                    channel::encode(&stored, email),
                    not_exists,
                    &names,
                    Item::new(),
                )?,
                self.put(conversation.clone(), not_exists, &names, Item::new())?,
                self.put(visitor.clone(), not_exists, &names, Item::new())?,
                // A new conversation has no clearing: the contact's sync record vouches for it from its first
                // change.
                self.join_record(&mapping.contact_id, &epoch, current)?,
            ];
            match self.transact(items).await? {
                Ok(()) => return Ok(stored),
                Err(failed) if failed.index == JOIN_INDEX => continue,
                Err(_) => return Err(StoreError::AlreadyExists),
            }
        }
        Err(StoreError::Unavailable(
            "the contact's sync record kept changing under the registration".into(),
        ))
    }

    async fn channel(&self, channel: &ChannelRef) -> Result<Option<ChannelMapping>, StoreError> {
        // Every webhook reads this, so it is read eventually consistently (`read_mapping`): nothing a stale copy
        // holds can be acted on. Every change is gated at commit on the mapping as it then is (`mapping_admits`,
        // `mapping_exists`, the clearing's own condition) or on the sync record's mirror of it (written in the
        // clearing's transaction: `bump_version`), and the rest of a mapping never changes once written
        // (`save_channel` puts it only where none is).
        let item = self.read_mapping(channel, channel::READ).await?;
        item.as_ref().map(channel::decode).transpose()
    }

    async fn visitor_channels(&self, visitor: &UserId) -> Result<Vec<ChannelRef>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .expression_attribute_values(":pk", s(visitor_pk(visitor)))
            .consistent_read(true);
        let entries = self.query_all(query).await?;
        entries.iter().map(visitor_channel::decode).collect()
    }

    async fn contact_email(&self, contact: &ContactId) -> Result<Option<Email>, StoreError> {
        // Through a conversation's channel mapping: the e-mail is stored once, with the registration.
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :conv)")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .expression_attribute_names("#sk", schema::SORT_KEY)
            .expression_attribute_values(":pk", s(contact_pk(contact)))
            .expression_attribute_values(":conv", s(CONVERSATION_PREFIX))
            .limit(1);
        let output = self.query_page(query).await?;
        let Some(conversation) = output.items().first() else {
            return Ok(None);
        };
        let channel = ChannelRef::parse_cid(get_s(conversation, "cid")?).map_err(corrupt)?;
        let item = self.read_mapping(&channel, &[channel::EMAIL]).await?;
        item.as_ref().map(channel::decode_email).transpose()
    }
}
