//! Channel mappings and visitors' channels (`Channels`): stored at registration, read by every webhook. A
//! channel's mapping is the gate of every change recorded for its contact (see `erasure`).

use super::codec::{channel, conversation, get_s, s, visitor_channel, Item};
use super::keys::{
    channel_pk, contact_pk, key, mapping_key, visitor_pk, CONVERSATION_PREFIX, MAPPING,
};
use super::{build_error, corrupt, schema, unavailable, DynamoStore};
use crate::domain::{ChannelRef, ContactId, Email, UserId};
use crate::ports::{ChannelMapping, Channels, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, ReturnConsumedCapacity, TransactWriteItem};

impl DynamoStore {
    /// The gate of every recorded change: the channel's mapping still exists (an erasure deletes it first, so
    /// nothing is recorded for an erased contact, even by a webhook that read the mapping just before).
    pub(super) fn mapping_exists(&self, cid: &str) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(mapping_key(cid)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }
}

#[async_trait]
impl Channels for DynamoStore {
    async fn save_channel(&self, mapping: &ChannelMapping) -> Result<(), StoreError> {
        let cid = mapping.channel.cid();
        let channel_item = channel::encode(mapping);
        let conversation = conversation::encode(mapping);
        // The visitor's channels, so that Stream erasing the visitor's messages can be followed here.
        let visitor = visitor_channel::encode(&mapping.visitor_id, &mapping.contact_id, &cid);
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
            .set_key(Some(key(channel_pk(channel), MAPPING)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.consumed.add(output.consumed_capacity());
        let Some(item) = output.item else {
            return Ok(None);
        };
        channel::decode(&item).map(Some)
    }

    async fn visitor_channels(&self, visitor: &UserId) -> Result<Vec<ChannelRef>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .expression_attribute_values(":pk", s(visitor_pk(visitor)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.items().iter().map(visitor_channel::decode).collect()
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
            .expression_attribute_values(":conv", s(CONVERSATION_PREFIX))
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
}
