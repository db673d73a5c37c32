//! The flusher's read of a contact, folded: a contact with few items is read whole in **one** query of its
//! partition, where the piecewise reads take five requests (the newest messages, their conversations, the changed
//! conversations' note ids, each one's start and its messages). What it returns is exactly what those reads would
//! return; a partition that does not fit one small page is left to them (`None`).
//!
//! Why it is the same: the newest-first read of the property stops after its first page of [`MESSAGE_PAGE`] items
//! at the earliest, so for a partition with at most that many message items it reads them all, as this does; the
//! conversations and note ids are the same items; a conversation's messages are the same filter (its `cid`, from
//! the same start, unexpired). Consistency is the same too: every piece is a strongly consistent read made after
//! the contact's version was read transactionally (`sync_state`), so it includes every change up to that version.

use super::codec::sync_record::first_at;
use super::codec::Item;
use super::codec::{conversation, expired, get_bool, get_s, message, s};
use super::keys::{contact_pk, messages_from, CONVERSATION_PREFIX, MESSAGE_PREFIX, SYNC};
use super::messages::{CLOCK_SKEW, MESSAGE_PAGE};
use super::{schema, DynamoStore};
use crate::domain::ContactId;
use crate::domain::{NoteId, Timestamp};
use crate::ports::{ContactReading, ConversationNotes, StoreError, TranscriptSource};

/// Items read at most: the message items the property's first page holds, and room for the contact's other
/// items (sync record, lease, conversations).
const PARTITION_PAGE: i32 = MESSAGE_PAGE + 28;

impl DynamoStore {
    pub(super) async fn read_small_contact(
        &self,
        contact: &ContactId,
        cids: &[String],
    ) -> Result<Option<ContactReading>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .expression_attribute_values(":pk", s(contact_pk(contact)))
            .consistent_read(true)
            .limit(PARTITION_PAGE);
        let output = self.query_page(query).await?;
        if output.last_evaluated_key().is_some() {
            return Ok(None);
        }
        let (mut conversations, mut messages, mut sync): (Vec<&Item>, Vec<&Item>, Option<&Item>) =
            (Vec::new(), Vec::new(), None);
        for item in output.items() {
            let sk = get_s(item, schema::SORT_KEY)?;
            if sk.starts_with(CONVERSATION_PREFIX) {
                conversations.push(item);
            } else if sk.starts_with(MESSAGE_PREFIX) {
                messages.push(item);
            } else if sk == SYNC {
                sync = Some(item);
            }
        }
        if messages.len() > MESSAGE_PAGE as usize {
            return Ok(None);
        }
        let now = Timestamp::now();
        // The property's: unexpired, and not of a notes-only conversation (as `recent_transcript`).
        let mut shown = Vec::new();
        for item in &messages {
            if !expired(item, now) && !get_bool(item, "notes_only") {
                shown.push(message::decode(item)?);
            }
        }
        let mut shown_cids: Vec<&str> = shown.iter().map(|m| m.cid.as_str()).collect();
        shown_cids.sort_unstable();
        shown_cids.dedup();
        let transcript = TranscriptSource {
            conversations: conversations
                .iter()
                .filter(|item| {
                    get_s(item, "cid").is_ok_and(|cid| shown_cids.binary_search(&cid).is_ok())
                })
                .map(|item| conversation::decode(item))
                .collect::<Result<_, _>>()?,
            messages: shown,
        };
        // The changed conversations' notes and messages (as `conversation_notes` and `conversation_messages`).
        let mut notes = Vec::new();
        for item in &conversations {
            let cid = get_s(item, "cid")?;
            if !cids.iter().any(|c| c == cid) {
                continue;
            }
            let conversation = conversation::decode(item)?;
            let held = item
                .get("note_ids")
                .and_then(|v| v.as_l().ok())
                .map(|ids| {
                    ids.iter()
                        .filter_map(|id| id.as_s().ok())
                        .map(|id| NoteId::parse(id).map_err(super::corrupt))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default();
            let first = sync
                .and_then(|sync| sync.get(&first_at(cid)))
                .and_then(|v| v.as_s().ok())
                .and_then(|raw| Timestamp::parse("first_at", raw).ok());
            let since = first
                .map_or(conversation.started_at, |first| {
                    first.min(conversation.started_at)
                })
                .earlier_by(CLOCK_SKEW);
            let from = messages_from(&since);
            let mut read = Vec::new();
            for message in &messages {
                let in_range = get_s(message, schema::SORT_KEY)? >= from.as_str();
                if in_range && get_s(message, "cid")? == cid && !expired(message, now) {
                    read.push(message::decode(message)?);
                }
            }
            notes.push((
                ConversationNotes {
                    conversation,
                    notes: held,
                    creating: get_bool(item, "creating_note"),
                },
                read,
            ));
        }
        notes.sort_by(|a, b| a.0.conversation.cid.cmp(&b.0.conversation.cid));
        Ok(Some(ContactReading { transcript, notes }))
    }
}
