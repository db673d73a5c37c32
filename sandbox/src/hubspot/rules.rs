//! The portal's validation rules: limits an admin sets on a contact property in HubSpot's settings, which HubSpot
//! checks every API write of that property against from version 2026-09 on.
//!
//! The double models one rule type, HubSpot's `MAX_LENGTH` (its `PublicPropertyValidationRule` knows many more: a
//! test needs a rule that one value breaks and another keeps, and a length is what a transcript can break). At most
//! one rule per property; a test sets it with `HubSpotDouble::set_validation_rule`, as an admin would in the UI.
//!
//! Invariants: a rule is checked only once the write's values passed the property's own validation (the property
//! exists, HubSpot's 65,536-character limit), and only on the values the write sets: clearing a value breaks no rule.
//! A write refused by a rule changes nothing of the object. How a refusal is answered:
//! * a single write (create, PATCH): 400 `VALIDATION_ERROR`, the whole write refused;
//! * a batch write (update, upsert): only the inputs that break a rule are refused, each with its own `errors` entry
//!   (`category` `VALIDATION_ERROR`, the rule's message, `context.ids` naming the input's id — an e-mail id
//!   lowercased, as unknown ids are named — and one `errors` detail per broken rule: `code` the rule type, `in` the
//!   property); the other inputs are applied.

use super::errors::standard_error;
use super::properties::Updates;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// How much of a refused value a validation message quotes.
const QUOTED: usize = 200;

/// A validation rule on a contact property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidationRule {
    /// HubSpot's `MAX_LENGTH`: a value of more than this many characters is refused. Characters are counted as
    /// HubSpot counts them (UTF-16 units), like its own 65,536-character limit.
    MaxLength(usize),
}

impl ValidationRule {
    /// The rule type, as HubSpot names it (`ruleType`).
    fn rule_type(&self) -> &'static str {
        match self {
            Self::MaxLength(_) => "MAX_LENGTH",
        }
    }

    /// HubSpot's message for a value of `property` this rule refuses; `None` if it allows the value. Like
    /// HubSpot's validation messages, it quotes the value it refused (its start): whatever was written, names and
    /// message text included, can come back in an error.
    fn refusal(&self, property: &str, value: &str) -> Option<String> {
        match self {
            Self::MaxLength(max) => (value.encode_utf16().count() > *max).then(|| {
                let start: String = value.chars().take(QUOTED).collect();
                format!(
                    "The value \"{start}…\" of property \"{property}\" is longer than {max} characters, the most \
                     this portal's validation rule (MAX_LENGTH) allows."
                )
            }),
        }
    }
}

/// One rule a write breaks.
pub(super) struct Violation {
    property: String,
    rule_type: &'static str,
    message: String,
}

/// The rules of the portal, by property name.
#[derive(Default)]
pub(super) struct Rules(BTreeMap<String, ValidationRule>);

impl Rules {
    pub(super) fn set(&mut self, property: &str, rule: Option<ValidationRule>) {
        match rule {
            Some(rule) => self.0.insert(property.to_owned(), rule),
            None => self.0.remove(property),
        };
    }

    /// The rules the values `updates` sets break, in property order.
    pub(super) fn violations(&self, updates: &Updates) -> Vec<Violation> {
        updates
            .iter()
            .filter_map(|(property, value)| {
                let rule = self.0.get(property)?;
                let message = rule.refusal(property, value.as_deref()?)?;
                Some(Violation {
                    property: property.clone(),
                    rule_type: rule.rule_type(),
                    message,
                })
            })
            .collect()
    }
}

/// What a refusal says: the rules' messages, and one `errors` detail per rule.
pub(super) fn refusal(violations: &[Violation]) -> (String, Vec<Value>) {
    let message = violations
        .iter()
        .map(|v| v.message.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let details = violations
        .iter()
        .map(|v| json!({ "message": v.message, "code": v.rule_type, "in": v.property }))
        .collect();
    (message, details)
}

/// The `errors` entry of a batch input (`id` as the batch names it) that breaks `violations`.
pub(super) fn refused_input(id: &str, violations: &[Violation]) -> Value {
    let (message, details) = refusal(violations);
    let properties: Vec<&str> = violations.iter().map(|v| v.property.as_str()).collect();
    standard_error(
        "VALIDATION_ERROR",
        &message,
        json!({ "ids": [id], "propertyName": properties }),
        details,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_max_length_rule_counts_utf16_units_and_ignores_cleared_values() {
        let mut rules = Rules::default();
        rules.set("chat_transcript", Some(ValidationRule::MaxLength(4)));
        let updates = |value: Option<&str>| -> Updates {
            [("chat_transcript".to_owned(), value.map(str::to_owned))].into()
        };
        assert!(rules.violations(&updates(Some("abcd"))).is_empty());
        assert!(rules.violations(&updates(None)).is_empty(), "clearing");
        assert_eq!(
            rules.violations(&updates(Some("😀😀😀"))).len(),
            1,
            "6 units"
        );
        let other: Updates = [("firstname".to_owned(), Some("a".repeat(10)))].into();
        assert!(rules.violations(&other).is_empty(), "another property");
        rules.set("chat_transcript", None);
        assert!(rules.violations(&updates(Some("abcde"))).is_empty());
    }
}
