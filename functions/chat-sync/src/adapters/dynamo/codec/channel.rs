//! The channel mapping item (`CHANNEL#<cid>` / `CHANNEL`): where a channel's messages belong.

use super::super::keys::{channel_pk, key, MAPPING};
use super::super::{corrupt, schema};
use super::{get_bool, get_s, parse_cleared, parse_identity, s, Item};
use crate::domain::{ChannelId, ChannelRef, ChannelType, ContactId, Email, Timestamp, UserId};
use crate::ports::{ChannelMapping, RecordEpoch, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;

/// Every attribute the item can hold: what `encode` writes, then what Stream's erasures (`clearing`) and a deletion
/// in HubSpot (the TTL) add.
#[cfg(test)]
pub(in super::super) const ATTRIBUTES: &[&str] = &[
    "contact_id",
    "email",
    "visitor_id",
    "visitor_name",
    "identity",
    "channel_type",
    "channel_id",
    "created_at",
    "notes_only",
    "epoch",
    "cleared_until",
    "cleared_deleted",
    schema::TTL_ATTRIBUTE,
];

/// The item a registration stores (with the epoch of the sync record it joined, once the store knows it).
pub(in super::super) fn encode(mapping: &ChannelMapping) -> Item {
    let mut channel_item = key(channel_pk(&mapping.channel), MAPPING);
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
    if let Some(epoch) = &mapping.epoch {
        channel_item.insert("epoch".to_owned(), s(epoch.as_str()));
    }
    channel_item
}

pub(in super::super) fn decode(item: &Item) -> Result<ChannelMapping, StoreError> {
    Ok(ChannelMapping {
        channel: ChannelRef::new(
            ChannelType::parse(get_s(item, "channel_type")?).map_err(corrupt)?,
            ChannelId::parse(get_s(item, "channel_id")?).map_err(corrupt)?,
        ),
        contact_id: ContactId::parse(get_s(item, "contact_id")?).map_err(corrupt)?,
        email: Email::parse(get_s(item, "email")?).map_err(corrupt)?,
        visitor_id: UserId::parse("visitor_id", get_s(item, "visitor_id")?).map_err(corrupt)?,
        visitor_name: get_s(item, "visitor_name")?.to_owned(),
        identity: parse_identity(item)?,
        created_at: Timestamp::parse("created_at", get_s(item, "created_at")?).map_err(corrupt)?,
        cleared: parse_cleared(item)?,
        purge_at: item
            .get(schema::TTL_ATTRIBUTE)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .and_then(Timestamp::from_unix_seconds),
        notes_only: get_bool(item, "notes_only"),
        epoch: item
            .get("epoch")
            .and_then(|v| v.as_s().ok())
            .map(|raw| RecordEpoch::stored(raw)),
    })
}

#[cfg(test)]
pub(in super::super) fn documented() -> super::Documented {
    use super::sample;
    super::Documented {
        item: "channel mapping",
        keys: vec![(channel_pk(&sample::channel()), MAPPING.to_owned())],
        placeholders: sample::contact_placeholders(),
        attributes: ATTRIBUTES,
        written: Some(encode(&sample::mapping())),
    }
}
