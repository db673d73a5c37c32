//! The flusher's item (`FLUSHER` / `FLUSHER`): its lease while a flusher runs, the contacts woken for it, and
//! when the next round is due after a handover.

use crate::domain::ContactId;
use aws_sdk_dynamodb::types::AttributeValue;

/// Every attribute the item can hold.
#[cfg(test)]
pub(in super::super) const ATTRIBUTES: &[&str] =
    &["lease_owner", "lease_until_ms", "wake", "next_round_ms"];

/// Contacts as the `wake` set holds them.
pub(in super::super) fn string_set(contacts: &[ContactId]) -> AttributeValue {
    AttributeValue::Ss(contacts.iter().map(|c| c.as_str().to_owned()).collect())
}

#[cfg(test)]
pub(in super::super) fn documented() -> super::Documented {
    use super::super::keys::FLUSHER_PK;
    super::Documented {
        item: "flusher",
        keys: vec![(FLUSHER_PK.to_owned(), FLUSHER_PK.to_owned())],
        placeholders: vec![],
        attributes: ATTRIBUTES,
        written: None,
    }
}
