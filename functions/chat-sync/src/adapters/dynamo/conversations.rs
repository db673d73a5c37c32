//! Conversation items and the timeline notes that hold each (`TimelineNotes`).

use super::codec::{conversation, s, Item};
use super::keys::{contact_pk, conversation_sk, key, CONVERSATION_PREFIX};
use super::{build_error, schema, unavailable, DynamoStore};
use crate::domain::Conversation;
use crate::domain::{ContactId, NoteId};
use crate::ports::{ConversationNotes, StoreError, TimelineNotes};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

impl DynamoStore {
    /// The conversation items named, read in one request.
    pub(super) async fn conversation_items(
        &self,
        contact: &ContactId,
        cids: &[&str],
    ) -> Result<Vec<Item>, StoreError> {
        if cids.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = KeysAndAttributes::builder().consistent_read(true);
        for cid in cids {
            keys = keys.keys(key(contact_pk(contact), &conversation_sk(cid)));
        }
        let output = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys.build().map_err(build_error)?)
            .send()
            .await
            .map_err(unavailable)?;
        // A handful of small items never leaves keys unprocessed short of throttling; a missing conversation only
        // changes a header to its fallback, and the next flush reads it again.
        Ok(output
            .responses()
            .and_then(|r| r.get(&self.table))
            .cloned()
            .unwrap_or_default())
    }

    pub(super) async fn conversations(
        &self,
        contact: &ContactId,
        cids: &[&str],
    ) -> Result<Vec<Conversation>, StoreError> {
        self.conversation_items(contact, cids)
            .await?
            .iter()
            .map(conversation::decode)
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
            .set_key(Some(key(contact_pk(contact), &conversation_sk(cid))))
            .update_expression(expression)
            // An erased conversation stays erased: a flusher that held the contact during the erasure writes nothing.
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", schema::PARTITION_KEY);
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        self.send_update(update).await.map(|_| ())
    }

    /// The contact's conversation items.
    pub(super) async fn conversation_records(
        &self,
        contact: &ContactId,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_all(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :conv)")
                .expression_attribute_names("#pk", schema::PARTITION_KEY)
                .expression_attribute_names("#sk", schema::SORT_KEY)
                .expression_attribute_values(":pk", s(contact_pk(contact)))
                .expression_attribute_values(":conv", s(CONVERSATION_PREFIX))
                .consistent_read(true),
        )
        .await
    }
}

#[async_trait]
impl TimelineNotes for DynamoStore {
    async fn conversation_notes(
        &self,
        contact: &ContactId,
        cids: &[String],
    ) -> Result<Vec<ConversationNotes>, StoreError> {
        let cids: Vec<&str> = cids.iter().map(String::as_str).collect();
        let mut found = Vec::new();
        for chunk in cids.chunks(100) {
            for item in self.conversation_items(contact, chunk).await? {
                found.push(conversation::decode_notes(&item)?);
            }
        }
        found.sort_by(|a, b| a.conversation.cid.cmp(&b.conversation.cid));
        Ok(found)
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
}
