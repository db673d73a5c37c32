//! A contact's frozen notes (`CONTACT#<contact>` / `FROZEN`): per conversation, how many of its notes froze when its
//! messages expired, and its erasure count then (see `retention`). An item of its own, not an attribute of the sync
//! record: every change and every lease is billed by the record's size, and only a flusher rendering an archived
//! contact's notes reads this.

use super::super::keys::{contact_pk, key, FROZEN};
use super::{n, s, Item};
use crate::domain::{ContactId, Timestamp};
use crate::ports::Frozen;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// Every attribute the item can hold: what `encode` writes, and the TTL of a contact deleted in HubSpot.
#[cfg(test)]
pub(in super::super) const ATTRIBUTES: &[&str] = &[
    "contact_id",
    "frozen",
    "archived_at",
    super::super::schema::TTL_ATTRIBUTE,
];

/// One conversation's entry: its notes as they are, and its erasure count then.
pub(in super::super) fn entry(notes: usize, erasures: u64) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("notes".to_owned(), n(notes)),
        ("erasures".to_owned(), n(erasures)),
    ]))
}

/// The item retention puts when the contact's messages expire at `archived_at`: `frozen` maps cid → `entry`.
pub(in super::super) fn encode(
    contact: &ContactId,
    frozen: HashMap<String, AttributeValue>,
    archived_at: Timestamp,
) -> Item {
    let mut item = key(contact_pk(contact), FROZEN);
    item.extend([
        ("contact_id".to_owned(), s(contact.as_str())),
        ("frozen".to_owned(), AttributeValue::M(frozen)),
        ("archived_at".to_owned(), s(archived_at.key())),
    ]);
    item
}

/// The `frozen` map of an item (this one, or a sync record written before the map had an item of its own).
pub(in super::super) fn decode(item: &Item) -> HashMap<String, Frozen> {
    let number = |map: &HashMap<String, AttributeValue>, name: &str| {
        map.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    item.get("frozen")
        .and_then(|v| v.as_m().ok())
        .map(|frozen| {
            frozen
                .iter()
                .filter_map(|(cid, value)| {
                    let value = value.as_m().ok()?;
                    Some((
                        cid.clone(),
                        Frozen {
                            notes: number(value, "notes") as usize,
                            erasures: number(value, "erasures"),
                        },
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
pub(in super::super) fn documented() -> super::Documented {
    use super::sample;
    let frozen = HashMap::from([(sample::CID.to_owned(), entry(2, 0))]);
    super::Documented {
        item: "frozen notes",
        keys: vec![(contact_pk(&sample::contact()), FROZEN.to_owned())],
        placeholders: sample::contact_placeholders(),
        attributes: ATTRIBUTES,
        written: Some(encode(&sample::contact(), frozen, sample::at())),
    }
}
