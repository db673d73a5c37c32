//! A conversation (`CONTACT#<contact>` / `CONV#<cid>`): its header, what Stream erased of it, and the timeline
//! notes that hold it.

use super::super::corrupt;
use super::super::keys::{contact_pk, conversation_sk, key};
use super::{get_bool, get_s, parse_cleared, parse_identity, s, Item};
use crate::domain::Conversation;
use crate::domain::{NoteId, Timestamp};
use crate::ports::{ChannelMapping, ConversationNotes, StoreError};

/// Every attribute the item can hold: what `encode` writes, then the flusher's notes (`note_ids`,
/// `creating_note`), Stream's erasures (`clearing`) and the TTL of a contact deleted in HubSpot.
#[cfg(test)]
pub(in super::super) const ATTRIBUTES: &[&str] = &[
    "cid",
    "channel_id",
    "started_at",
    "identity",
    "note_ids",
    "creating_note",
    "cleared_until",
    "cleared_deleted",
    super::super::schema::TTL_ATTRIBUTE,
];

/// The conversation a registration starts, in the contact's partition.
pub(in super::super) fn encode(mapping: &ChannelMapping) -> Item {
    let cid = mapping.channel.cid();
    let mut conversation = key(contact_pk(&mapping.contact_id), &conversation_sk(&cid));
    conversation.extend([
        ("cid".to_owned(), s(&cid)),
        (
            "channel_id".to_owned(),
            s(mapping.channel.channel_id.as_str()),
        ),
        ("started_at".to_owned(), s(mapping.created_at.key())),
        ("identity".to_owned(), s(mapping.identity.as_str())),
    ]);
    conversation
}

pub(in super::super) fn decode(item: &Item) -> Result<Conversation, StoreError> {
    Ok(Conversation {
        cid: get_s(item, "cid")?.to_owned(),
        channel_id: get_s(item, "channel_id")?.to_owned(),
        started_at: Timestamp::parse("started_at", get_s(item, "started_at")?).map_err(corrupt)?,
        identity: parse_identity(item)?,
        cleared: parse_cleared(item)?,
    })
}

/// The conversation with the notes that hold it.
pub(in super::super) fn decode_notes(item: &Item) -> Result<ConversationNotes, StoreError> {
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
    Ok(ConversationNotes {
        conversation: decode(item)?,
        notes,
        creating: get_bool(item, "creating_note"),
    })
}

/// How many notes hold the conversation, without reading their ids.
pub(in super::super) fn note_count(item: &Item) -> usize {
    item.get("note_ids")
        .and_then(|v| v.as_l().ok())
        .map_or(0, Vec::len)
}

#[cfg(test)]
pub(in super::super) fn documented() -> super::Documented {
    use super::sample;
    super::Documented {
        item: "conversation",
        keys: vec![(contact_pk(&sample::contact()), conversation_sk(sample::CID))],
        placeholders: sample::contact_placeholders(),
        attributes: ATTRIBUTES,
        written: Some(encode(&sample::mapping())),
    }
}
