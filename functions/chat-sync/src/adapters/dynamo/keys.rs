//! Every key of the table: each partition- and sort-key prefix is spelled here and nowhere else, and every key is
//! built here. The item table in `docs/storage.md` is checked against these builders by a test (`codec::tests`).
//!
//! A contact's items share its partition `CONTACT#<id>` (conversations, messages, the sync record with its lease,
//! the aliases of contacts merged into it), so one query reads or erases them all; a channel mapping has a partition
//! of its own, read by every webhook by the channel's cid alone.

use super::codec::{s, Item};
use super::schema;
use crate::domain::{ChannelRef, ContactId, MessageId, Timestamp, UserId};
use std::collections::HashMap;

const CONTACT_PREFIX: &str = "CONTACT#";
const USER_PREFIX: &str = "USER#";
/// The prefix of a channel mapping's partition key, and of a visitor's channel's sort key.
pub(super) const CHANNEL_PREFIX: &str = "CHANNEL#";
/// The sort key of a channel mapping (under `CHANNEL#<cid>`).
pub(super) const MAPPING: &str = "CHANNEL";
/// The prefix of a conversation's sort key.
pub(super) const CONVERSATION_PREFIX: &str = "CONV#";
/// The prefix of a message's sort key.
pub(super) const MESSAGE_PREFIX: &str = "MSG#";
/// Sorts after every message key of a partition (`~` after every digit).
pub(super) const MESSAGES_END: &str = "MSG#~";
/// The prefix of a merge alias's sort key.
pub(super) const ALIAS_PREFIX: &str = "ALIAS#";
/// The sort key of a contact's sync record.
pub const SYNC: &str = "SYNC";
/// The sort key of a contact's frozen notes (see `codec::frozen`).
pub(super) const FROZEN: &str = "FROZEN";
/// The partition and sort key of the flusher's item.
pub(super) const FLUSHER_PK: &str = "FLUSHER";
/// The partition key of the HubSpot rate budget's items.
pub(super) const BUDGET_PK: &str = "BUDGET#hubspot";
/// Every HubSpot request takes a permit here.
pub(super) const BUDGET_SHARED: &str = "SHARED";
/// Registrations also take one here: their cap, so they cannot starve transcript writes.
pub(super) const BUDGET_REGISTRATIONS: &str = "REGISTRATIONS";
const THROTTLE_PREFIX: &str = "THROTTLE#";
/// The sort key of every registration throttle item.
pub(super) const THROTTLE_SK: &str = "THROTTLE";

/// An item's key.
pub(super) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([
        (schema::PARTITION_KEY.to_owned(), s(pk)),
        (schema::SORT_KEY.to_owned(), s(sk)),
    ])
}

pub(super) fn contact_pk(contact: &ContactId) -> String {
    format!("{CONTACT_PREFIX}{contact}")
}

/// Which kind of item a key names, by its name in `docs/storage.md`'s item table: its sort key's prefix says, or its
/// partition's for the items whose sort key does not (the flusher's, the rate budget's, a throttle's). For readers
/// that count requests by item, such as the bench's capacity meter, so they do not spell the prefixes again.
pub fn item_kind(pk: &str, sk: &str) -> &'static str {
    if sk == SYNC {
        "sync record"
    } else if sk.starts_with(MESSAGE_PREFIX) {
        "message"
    } else if sk.starts_with(CONVERSATION_PREFIX) {
        "conversation"
    } else if sk == FROZEN {
        "frozen notes"
    } else if sk.starts_with(ALIAS_PREFIX) {
        "merge alias"
    } else if pk == FLUSHER_PK {
        "flusher"
    } else if pk == BUDGET_PK {
        "rate budget"
    } else if pk.starts_with(THROTTLE_PREFIX) {
        "registration throttle"
    } else if pk.starts_with(CHANNEL_PREFIX) && sk == MAPPING {
        "channel mapping"
    } else if pk.starts_with(USER_PREFIX) && sk.starts_with(CHANNEL_PREFIX) {
        "visitor's channel"
    } else {
        "other"
    }
}

/// A contact's partition key, for readers of the table outside the store (the tests' and the bench's direct
/// queries), so they do not spell the prefix again.
pub fn contact_partition(contact: &ContactId) -> String {
    contact_pk(contact)
}

/// The key of a contact's sync record: the store's own reads and writes of it, and readers of the table outside the
/// store.
pub fn sync_record_key(contact: &ContactId) -> Item {
    key(contact_pk(contact), SYNC)
}

/// The queue shard of a contact: FNV-1a of its id, so it is the same in every process and release.
pub(super) fn shard(contact: &ContactId) -> String {
    let hash = contact
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    (hash % u64::from(schema::DIRTY_SHARDS)).to_string()
}

pub(super) fn channel_pk(channel: &ChannelRef) -> String {
    mapping_pk(&channel.cid())
}

fn mapping_pk(cid: &str) -> String {
    format!("{CHANNEL_PREFIX}{cid}")
}

/// The key of a channel's mapping, by its cid.
pub fn mapping_key(cid: &str) -> Item {
    key(mapping_pk(cid), MAPPING)
}

pub(super) fn visitor_pk(visitor: &UserId) -> String {
    format!("{USER_PREFIX}{}", visitor.as_str())
}

/// The sort key of a visitor's channel, under the visitor's partition.
pub(super) fn visitor_channel_sk(cid: &str) -> String {
    format!("{CHANNEL_PREFIX}{cid}")
}

pub(super) fn conversation_sk(cid: &str) -> String {
    format!("{CONVERSATION_PREFIX}{cid}")
}

pub(super) fn message_sk(created_at: &Timestamp, message_id: &MessageId) -> String {
    format!("{MESSAGE_PREFIX}{}#{}", created_at.key(), message_id)
}

/// What a message's sort key holds: its creation time and id (a message item stores neither again). `None` for a
/// key `message_sk` did not build. The time's key has no `#`, so the first one after it ends it, whatever the id.
pub(super) fn parse_message_sk(sk: &str) -> Option<(Timestamp, MessageId)> {
    let (created_at, message_id) = sk.strip_prefix(MESSAGE_PREFIX)?.split_once('#')?;
    Some((
        Timestamp::parse("created_at", created_at).ok()?,
        MessageId::parse(message_id).ok()?,
    ))
}

/// The first message sort key at or after `since`.
pub(super) fn messages_from(since: &Timestamp) -> String {
    format!("{MESSAGE_PREFIX}{}", since.key())
}

/// The sort key of the alias, under the surviving record's partition, of a contact merged into it.
pub(super) fn alias_sk(merged: &ContactId) -> String {
    format!("{ALIAS_PREFIX}{merged}")
}

pub(super) fn flusher_key() -> Item {
    key(FLUSHER_PK.to_owned(), FLUSHER_PK)
}

/// A registration throttle's partition key: `kind` is `ip` or `email`, `digest` the keyed hash of the value.
pub(super) fn throttle_pk(kind: &str, digest: &str) -> String {
    format!("{THROTTLE_PREFIX}{kind}#{digest}")
}
