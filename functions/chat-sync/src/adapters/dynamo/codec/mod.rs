//! One codec per item type: how a value is written to its item's attributes and read back, in one place. Each
//! names every attribute its item can hold (`ATTRIBUTES`), and the test below checks those lists and the keys
//! `keys` builds against the item table in `docs/storage.md`, so the document cannot drift from the code.
//!
//! Items written whole (a put) are built by their codec's `encode`; attributes set later by an update expression
//! are named where the update is (the aggregate's file), and listed in the codec's `ATTRIBUTES`.

pub(super) mod alias;
pub(super) mod channel;
pub(super) mod conversation;
pub(super) mod flusher;
pub(super) mod frozen;
pub(super) mod gcra;
pub(super) mod message;
pub(super) mod sync_record;
pub(super) mod visitor_channel;

#[cfg(test)]
mod tests;

use super::{corrupt, schema};
use crate::domain::Cleared;
use crate::domain::{Identity, Timestamp};
use crate::ports::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a string")))
}

pub(super) fn get_n(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub(super) fn get_bool(item: &Item, name: &str) -> bool {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

/// Whether the item's TTL has passed: DynamoDB deletes such items only within days, and until then a read must
/// not see them (a message expired by retention is HubSpot's alone; see `retention`).
pub(super) fn expired(item: &Item, now: Timestamp) -> bool {
    item.get(schema::TTL_ATTRIBUTE)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .is_some_and(|at| at <= now.unix_seconds())
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

/// The condition and values that apply `cleared` only if it erases more than what is recorded (to the channel
/// mapping and the conversation item alike).
pub(super) fn clearing(cleared: Cleared) -> (&'static str, &'static str, Item) {
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

/// An item type as `docs/storage.md` documents it, from its codec: checked by `tests`.
#[cfg(test)]
pub(super) struct Documented {
    /// The row's name in the table.
    pub(super) item: &'static str,
    /// Its keys (`pk`, `sk`) as `keys` builds them for sample values.
    pub(super) keys: Vec<(String, String)>,
    /// The table's placeholders and the sample values they stand for here.
    pub(super) placeholders: Vec<(&'static str, String)>,
    pub(super) attributes: &'static [&'static str],
    /// The item as the codec writes it whole, for items written with a put.
    pub(super) written: Option<Item>,
}

/// Every item type of the table.
#[cfg(test)]
pub(super) fn documented() -> Vec<Documented> {
    vec![
        channel::documented(),
        visitor_channel::documented(),
        conversation::documented(),
        message::documented(),
        sync_record::documented(),
        alias::documented(),
        flusher::documented(),
        frozen::documented(),
        gcra::budget_documented(),
        gcra::throttle_documented(),
    ]
}

/// Sample values for the codecs' tests.
#[cfg(test)]
pub(super) mod sample {
    use crate::domain::{ChannelRef, ContactId, Identity, Timestamp, UserId};
    use crate::ports::ChannelMapping;

    pub(in super::super) const CID: &str = "messaging:chat-0f8e";
    pub(in super::super) const CONTACT: &str = "101";

    pub(in super::super) fn contact() -> ContactId {
        ContactId::parse(CONTACT).expect("contact id")
    }

    pub(in super::super) fn channel() -> ChannelRef {
        ChannelRef::parse_cid(CID).expect("cid")
    }

    pub(in super::super) fn visitor() -> UserId {
        UserId::parse("visitor_id", "visitor-7").expect("visitor id")
    }

    pub(in super::super) fn at() -> Timestamp {
        Timestamp::parse("at", "2026-11-24T10:00:05.123Z").expect("timestamp")
    }

    pub(in super::super) fn email() -> crate::domain::Email {
        crate::domain::Email::parse("ada@example.com").expect("e-mail")
    }

    pub(in super::super) fn mapping() -> ChannelMapping {
        let mapping = ChannelMapping::registered(
            channel(),
            contact(),
            visitor(),
            "Ada Lovelace".to_owned(),
            Identity::Unverified,
            at(),
        )
        .notes_only(true);
        ChannelMapping {
            epoch: Some(crate::ports::RecordEpoch::stored("5c1f0e2a9b7d4c83")),
            ..mapping
        }
    }

    /// The placeholders of a contact's partition and a conversation's cid.
    pub(in super::super) fn contact_placeholders() -> Vec<(&'static str, String)> {
        vec![
            ("<contact id>", CONTACT.to_owned()),
            ("<type>:<id>", CID.to_owned()),
        ]
    }
}
