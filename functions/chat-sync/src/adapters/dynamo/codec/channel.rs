//! The channel mapping item (`CHANNEL#<cid>` / `CHANNEL`): where a channel's messages belong.

use super::super::keys::{channel_pk, key, MAPPING};
use super::super::{corrupt, schema};
use super::{get_bool, get_s, parse_cleared, parse_identity, s, Item};
use crate::domain::{ChannelId, ChannelRef, ChannelType, ContactId, Email, Timestamp, UserId};
use crate::ports::{ChannelMapping, RecordEpoch, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;

/// The attribute that holds the e-mail the visitor registered with: stored with the mapping, read only to find a
/// merged contact again (`contact_email`).
pub(in super::super) const EMAIL: &str = "email";

/// The item's attributes, after `$extra`: what `encode` writes, then what Stream's erasures (`clearing`) and a
/// deletion in HubSpot (the TTL) add. One list, so that a read of the mapping cannot miss an attribute added later.
macro_rules! attributes {
    ($($extra:expr),*) => {
        &[
            $($extra,)*
            "contact_id",
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
        ]
    };
}

/// Every attribute the item can hold.
#[cfg(test)]
pub(in super::super) const ATTRIBUTES: &[&str] = attributes!(EMAIL);

/// What a read of the mapping asks for: every attribute but the e-mail. The webhook reads the mapping for every
/// change and keeps copies of it for minutes; none of that needs the visitor's e-mail, so it never leaves the
/// table. (DynamoDB bills the whole item either way.)
pub(in super::super) const READ: &[&str] = attributes!();

/// The item a registration stores (with the epoch of the sync record it joined, once the store knows it).
pub(in super::super) fn encode(mapping: &ChannelMapping, email: &Email) -> Item {
    let mut channel_item = key(channel_pk(&mapping.channel), MAPPING);
    channel_item.extend([
        ("contact_id".to_owned(), s(mapping.contact_id.as_str())),
        (EMAIL.to_owned(), s(email.as_str())),
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
        written: Some(encode(&sample::mapping(), &sample::email())),
    }
}

/// The e-mail stored beside a mapping, from an item read with at least [`EMAIL`].
pub(in super::super) fn decode_email(item: &Item) -> Result<Email, StoreError> {
    Email::parse(get_s(item, EMAIL)?).map_err(corrupt)
}
