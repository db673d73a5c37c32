//! A contact's sync record (`CONTACT#<contact>` / `SYNC`). Never written whole: every writer changes its own
//! attributes with an update expression (a change bumps the version, the flusher takes the lease on it and marks it
//! synced, retention freezes notes, ...), so this codec reads it, and names the attributes that hold one value per
//! conversation.

use super::super::corrupt;
use super::{get_n, Item};
use crate::domain::{ContactId, Timestamp};
use crate::ports::{StoreError, SyncState};

/// The prefix of the attributes that hold each conversation's first delivered message time.
const FIRST_AT: &str = "first_at:";
/// The prefix of the attributes that count each conversation's erasures.
const ERASURES: &str = "erasures:";
/// The prefixes of each conversation's clearing, mirrored from its channel mapping (see `bump_version`, the gate).
const CLEARED_UNTIL: &str = "cleared_until:";
const CLEARED_DELETED: &str = "cleared_deleted:";

/// Every attribute the item can hold (a name ending in `:` stands for one attribute per conversation, the cid
/// after it), and the index keys it carries (`dirty`, `dirty_since`, `notes`, `notes_since`, `idle`,
/// `idle_since`).
#[cfg(test)]
pub(in super::super) const ATTRIBUTES: &[&str] = &[
    "contact_id",
    "change_version",
    "synced_version",
    "message_count",
    "pending_notes",
    super::super::schema::NOTES_INDEX_PARTITION_KEY,
    super::super::schema::NOTES_INDEX_SORT_KEY,
    super::super::schema::NOTES_OLDEST,
    "notes_now",
    FIRST_AT,
    "crm_contact_id",
    super::super::schema::DIRTY_INDEX_PARTITION_KEY,
    super::super::schema::DIRTY_INDEX_SORT_KEY,
    "parked_reason",
    "crm_event_at",
    "changed_at",
    super::super::schema::IDLE_INDEX_PARTITION_KEY,
    super::super::schema::IDLE_INDEX_SORT_KEY,
    "archived_at",
    "frozen",
    ERASURES,
    "visitor_erased",
    "epoch",
    "gates",
    CLEARED_UNTIL,
    CLEARED_DELETED,
    "lease_owner",
    "lease_until_ms",
    "erasing",
    super::super::schema::TTL_ATTRIBUTE,
];

/// The attribute of the sync record that holds a conversation's first delivered message time.
pub(in super::super) fn first_at(cid: &str) -> String {
    format!("{FIRST_AT}{cid}")
}

/// The attribute of the sync record that counts a conversation's erasures (see `SyncState::erasures`).
pub(in super::super) fn erasures(cid: &str) -> String {
    format!("{ERASURES}{cid}")
}

/// The attribute of the sync record that mirrors a conversation's truncation (its mapping's `cleared_until`).
pub(in super::super) fn cleared_until(cid: &str) -> String {
    format!("{CLEARED_UNTIL}{cid}")
}

/// The attribute of the sync record that mirrors a conversation's deletion (its mapping's `cleared_deleted`).
pub(in super::super) fn cleared_deleted(cid: &str) -> String {
    format!("{CLEARED_DELETED}{cid}")
}

/// Whether a sync record (as a refused write returned it) names the conversation `cid` in `gates`: it mirrors that
/// conversation's clearing, so what it refused, its mapping refuses too.
pub(in super::super) fn gates(item: Option<&Item>, cid: &str) -> bool {
    item.and_then(|item| item.get("gates"))
        .and_then(|v| v.as_ss().ok())
        .is_some_and(|cids| cids.iter().any(|gated| gated == cid))
}

/// The epoch of a sync record (as read or as a refused write returned it): which life of the record it is.
pub(in super::super) fn epoch(item: Option<&Item>) -> Option<&str> {
    item.and_then(|item| item.get("epoch"))
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(in super::super) fn decode(item: &Item) -> Result<SyncState, StoreError> {
    let crm_contact = match item.get("crm_contact_id").and_then(|v| v.as_s().ok()) {
        Some(id) => Some(ContactId::parse(id).map_err(corrupt)?),
        None => None,
    };
    Ok(SyncState {
        version: get_n(item, "change_version"),
        synced_version: get_n(item, "synced_version"),
        messages: get_n(item, "message_count"),
        crm_contact,
        parked: item
            .get("parked_reason")
            .and_then(|v| v.as_s().ok())
            .cloned(),
        pending_notes: item
            .get("pending_notes")
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default(),
        notes_since: match item
            .get(super::super::schema::NOTES_INDEX_SORT_KEY)
            .and_then(|v| v.as_s().ok())
        {
            Some(at) => Some(Timestamp::parse("notes_since", at).map_err(corrupt)?),
            None => None,
        },
        notes_now: item
            .get("notes_now")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        archived_at: match item.get("archived_at").and_then(|v| v.as_s().ok()) {
            Some(at) => Some(Timestamp::parse("archived_at", at).map_err(corrupt)?),
            None => None,
        },
        changed_at: match item.get("changed_at").and_then(|v| v.as_s().ok()) {
            Some(at) => Some(Timestamp::parse("changed_at", at).map_err(corrupt)?),
            None => None,
        },
        // Written here before the map had an item of its own (`codec::frozen`); the lease reads that item.
        frozen: super::frozen::decode(item),
        erasures: item
            .iter()
            .filter_map(|(name, value)| {
                let cid = name.strip_prefix(ERASURES)?;
                Some((cid.to_owned(), value.as_n().ok()?.parse().ok()?))
            })
            .collect(),
        visitor_erased: item
            .get("visitor_erased")
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default(),
    })
}

#[cfg(test)]
pub(in super::super) fn documented() -> super::Documented {
    use super::super::keys::{contact_pk, SYNC};
    use super::sample;
    super::Documented {
        item: "sync record",
        keys: vec![(contact_pk(&sample::contact()), SYNC.to_owned())],
        placeholders: sample::contact_placeholders(),
        attributes: ATTRIBUTES,
        written: None,
    }
}
