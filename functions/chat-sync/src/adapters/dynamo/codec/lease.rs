//! A contact's lease (`CONTACT#<contact>` / `LEASE`), put whole by `acquire_lease`.

/// Every attribute the item holds; its TTL is its own garbage collection, a day after the lease.
#[cfg(test)]
pub(in super::super) const ATTRIBUTES: &[&str] = &[
    "lease_owner",
    "lease_until_ms",
    super::super::schema::TTL_ATTRIBUTE,
];

#[cfg(test)]
pub(in super::super) fn documented() -> super::Documented {
    use super::super::keys::{contact_pk, LEASE};
    use super::sample;
    super::Documented {
        item: "lease",
        keys: vec![(contact_pk(&sample::contact()), LEASE.to_owned())],
        placeholders: sample::contact_placeholders(),
        attributes: ATTRIBUTES,
        written: None,
    }
}
