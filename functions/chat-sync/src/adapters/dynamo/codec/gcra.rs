//! The GCRA items (`gcra`): the HubSpot rate budget's (`BUDGET#hubspot`) and the registration throttles'
//! (`THROTTLE#<kind>#<keyed hash>`), each one number updated in place.

/// Every attribute a rate budget item can hold: the theoretical arrival time, and until when HubSpot's daily quota
/// is used up.
#[cfg(test)]
pub(in super::super) const BUDGET_ATTRIBUTES: &[&str] = &["tat_ms", "daily_until_ms"];
/// Every attribute a throttle item can hold: the same GCRA, expiring once it holds nothing.
#[cfg(test)]
pub(in super::super) const THROTTLE_ATTRIBUTES: &[&str] =
    &["tat_ms", super::super::schema::TTL_ATTRIBUTE];

#[cfg(test)]
pub(in super::super) fn budget_documented() -> super::Documented {
    use super::super::keys::{BUDGET_PK, BUDGET_REGISTRATIONS, BUDGET_SHARED};
    super::Documented {
        item: "rate budget",
        keys: [BUDGET_SHARED, BUDGET_REGISTRATIONS]
            .iter()
            .map(|sk| (BUDGET_PK.to_owned(), (*sk).to_owned()))
            .collect(),
        placeholders: vec![],
        attributes: BUDGET_ATTRIBUTES,
        written: None,
    }
}

#[cfg(test)]
pub(in super::super) fn throttle_documented() -> super::Documented {
    use super::super::keys::{throttle_pk, THROTTLE_SK};
    use crate::throttle::Subject;
    let digest = "0123456789abcdef0123456789abcdef";
    super::Documented {
        item: "registration throttle",
        keys: [
            Subject::Ip(std::net::Ipv4Addr::LOCALHOST.into()),
            Subject::Email(crate::domain::Email::parse("ada@example.com").expect("e-mail")),
        ]
        .iter()
        .map(|subject| (throttle_pk(subject.kind(), digest), THROTTLE_SK.to_owned()))
        .collect(),
        placeholders: vec![("<HMAC>", digest.to_owned())],
        attributes: THROTTLE_ATTRIBUTES,
        written: None,
    }
}
