//! A merge alias (`CONTACT#<surviving id>` / `ALIAS#<contact>`): a contact HubSpot merged into the surviving record,
//! so that erasing, deleting or restoring the survivor reaches it.

use super::super::corrupt;
use super::super::keys::{alias_sk, contact_pk, key};
use super::{get_s, s, Item};
use crate::domain::ContactId;
use crate::ports::StoreError;

/// Every attribute the item can hold: what `encode` writes, and the TTL of a contact deleted in HubSpot.
#[cfg(test)]
pub(in super::super) const ATTRIBUTES: &[&str] =
    &["contact_id", super::super::schema::TTL_ATTRIBUTE];

pub(in super::super) fn encode(survivor: &ContactId, merged: &ContactId) -> Item {
    let mut alias = key(contact_pk(survivor), &alias_sk(merged));
    alias.insert("contact_id".to_owned(), s(merged.as_str()));
    alias
}

/// The contact merged into the survivor.
pub(in super::super) fn decode(item: &Item) -> Result<ContactId, StoreError> {
    ContactId::parse(get_s(item, "contact_id")?).map_err(corrupt)
}

#[cfg(test)]
pub(in super::super) fn documented() -> super::Documented {
    use super::sample;
    let survivor = ContactId::parse("202").expect("contact id");
    super::Documented {
        item: "merge alias",
        keys: vec![(contact_pk(&survivor), alias_sk(&sample::contact()))],
        placeholders: vec![
            ("<surviving HubSpot id>", survivor.as_str().to_owned()),
            ("<contact id>", sample::CONTACT.to_owned()),
        ],
        attributes: ATTRIBUTES,
        written: Some(encode(&survivor, &sample::contact())),
    }
}
