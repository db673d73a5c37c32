//! A visitor's channel (`USER#<visitor>` / `CHANNEL#<cid>`): the channels a visitor was registered with, so that
//! Stream erasing the visitor's messages can be followed here.

use super::super::corrupt;
use super::super::keys::{key, visitor_channel_sk, visitor_pk};
use super::{get_s, s, Item};
use crate::domain::{ChannelRef, ContactId, UserId};
use crate::ports::StoreError;

/// Every attribute the item can hold: what `encode` writes, and the TTL of a contact deleted in HubSpot.
#[cfg(test)]
pub(in super::super) const ATTRIBUTES: &[&str] =
    &["contact_id", "cid", super::super::schema::TTL_ATTRIBUTE];

pub(in super::super) fn encode(visitor: &UserId, contact: &ContactId, cid: &str) -> Item {
    let mut item = key(visitor_pk(visitor), &visitor_channel_sk(cid));
    item.extend([
        ("contact_id".to_owned(), s(contact.as_str())),
        ("cid".to_owned(), s(cid)),
    ]);
    item
}

/// The channel the entry names.
pub(in super::super) fn decode(item: &Item) -> Result<ChannelRef, StoreError> {
    ChannelRef::parse_cid(get_s(item, "cid")?).map_err(corrupt)
}

#[cfg(test)]
pub(in super::super) fn documented() -> super::Documented {
    use super::sample;
    let mut placeholders = sample::contact_placeholders();
    placeholders.push(("<visitor id>", sample::visitor().as_str().to_owned()));
    super::Documented {
        item: "visitor's channel",
        keys: vec![(
            visitor_pk(&sample::visitor()),
            visitor_channel_sk(sample::CID),
        )],
        placeholders,
        attributes: ATTRIBUTES,
        written: Some(encode(&sample::visitor(), &sample::contact(), sample::CID)),
    }
}
