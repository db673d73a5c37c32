//! The notes (engagements) the double keeps — the app puts one per chat conversation on a contact's timeline — with
//! HubSpot's validation, JSON shapes and note → contact associations.
//!
//! Invariants: `hs_timestamp` is set on every note and stored normalised (ISO 8601 UTC with milliseconds, as HubSpot
//! answers it), so notes sort by it as strings. A note is associated only with contacts the CRM holds (`crm.rs`
//! re-points a merged contact's notes and drops a deleted contact's associations).

use super::errors::{problem, property_errors, required_properties, validation, HsError};
use super::properties::{properties_json, too_long, unknown_property, updates_from, Updates};
use crate::support::{format_millis, now_rfc3339};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// The association type of a note → contact association, the only kind a note here can have.
const NOTE_TO_CONTACT: u64 = 202;
/// The same association seen from the contact: association types are one-way, so listing a contact's notes
/// reports this one.
const CONTACT_TO_NOTE: u64 = 201;
const HUBSPOT_DEFINED: &str = "HUBSPOT_DEFINED";
/// Far from the contacts' ids, so a client that mixes a note id up with a contact id gets a 404, not a wrong hit.
const FIRST_NOTE_ID: u64 = 5_000_001;
const TIMESTAMP: &str = "hs_timestamp";
/// The writable properties every portal's notes have.
const NOTE_PROPERTIES: [&str; 4] = [
    "hs_note_body",
    TIMESTAMP,
    "hubspot_owner_id",
    "hs_attachment_ids",
];
/// Set by HubSpot: always in a note's JSON, never writable.
const SYSTEM_PROPERTIES: [&str; 3] = ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"];

/// A note as stored by the double; `contacts` are the ids of the contacts it is associated with, in id order.
#[derive(Clone, Debug, Serialize)]
pub struct Note {
    pub id: String,
    pub properties: BTreeMap<String, String>,
    pub contacts: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

struct StoredNote {
    properties: BTreeMap<String, String>,
    contacts: BTreeSet<u64>,
    created_at: String,
    updated_at: String,
}

pub(super) struct Notes {
    notes: BTreeMap<u64, StoredNote>,
    next_id: u64,
    /// The writable property names: [`NOTE_PROPERTIES`] and custom ones.
    properties: BTreeSet<String>,
}

/// A note to create, as a request gives it: its properties and the contacts to associate it with, as named.
pub(super) struct NoteInput {
    pub(super) updates: Updates,
    /// The contact ids the note is to be associated with, as the request gave them.
    pub(super) contacts: Vec<String>,
}

impl Notes {
    pub(super) fn new() -> Self {
        Self {
            notes: BTreeMap::new(),
            next_id: FIRST_NOTE_ID,
            properties: NOTE_PROPERTIES.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    pub(super) fn define_property(&mut self, name: &str) {
        self.properties.insert(name.to_owned());
    }

    /// A note id as a client gives it, if it names a note.
    pub(super) fn resolve(&self, id: &str) -> Option<u64> {
        id.trim()
            .parse()
            .ok()
            .filter(|id| self.notes.contains_key(id))
    }

    pub(super) fn get(&self, id: &str) -> Option<Note> {
        let id = self.resolve(id)?;
        self.notes.get(&id).map(|note| view(id, note))
    }

    /// All notes, in id order.
    pub(super) fn all(&self) -> Vec<Note> {
        self.notes
            .iter()
            .map(|(id, note)| view(*id, note))
            .collect()
    }

    /// The ids of the notes associated with `contact`, in id order.
    pub(super) fn of_contact(&self, contact: u64) -> impl Iterator<Item = u64> + '_ {
        self.notes
            .iter()
            .filter(move |(_, note)| note.contacts.contains(&contact))
            .map(|(id, _)| *id)
    }

    /// The notes of `contact` as its timeline shows them: by `hs_timestamp`, then id.
    pub(super) fn timeline(&self, contact: u64) -> Vec<Note> {
        let mut notes: Vec<(&str, u64, &StoredNote)> = self
            .notes
            .iter()
            .filter(|(_, note)| note.contacts.contains(&contact))
            .map(|(id, note)| {
                let timestamp = note.properties.get(TIMESTAMP).map_or("", String::as_str);
                (timestamp, *id, note)
            })
            .collect();
        notes.sort_unstable_by_key(|(timestamp, id, _)| (*timestamp, *id));
        notes
            .into_iter()
            .map(|(_, id, note)| view(id, note))
            .collect()
    }

    /// Real HubSpot validates every value of every input and reports all problems at once.
    pub(super) fn validate<'a>(
        &self,
        all: impl IntoIterator<Item = &'a Updates>,
    ) -> Result<(), HsError> {
        let problems: Vec<Value> = all
            .into_iter()
            .flat_map(|updates| self.problems(updates))
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(property_errors(problems))
        }
    }

    /// Validates the notes of a creation: their values, and `hs_timestamp` on each (HubSpot requires it there).
    pub(super) fn validate_new(&self, all: &[&Updates]) -> Result<(), HsError> {
        self.validate(all.iter().copied())?;
        if all.iter().any(|updates| !updates.contains_key(TIMESTAMP)) {
            return Err(required_properties("NOTE", &[TIMESTAMP]));
        }
        Ok(())
    }

    /// Every invalid value in `updates`; clearing `hs_timestamp` is one (every note has a place on the timeline).
    fn problems(&self, updates: &Updates) -> Vec<Value> {
        let mut problems = Vec::new();
        for (name, value) in updates {
            if SYSTEM_PROPERTIES.contains(&name.as_str()) {
                problems.push(problem(
                    name,
                    "READ_ONLY_VALUE",
                    format!("{name} is a read only property; its value cannot be set."),
                ));
            } else if !self.properties.contains(name) {
                problems.push(unknown_property(name));
            } else if name == TIMESTAMP {
                if value.as_deref().and_then(normalised_timestamp).is_none() {
                    let shown = value.as_deref().unwrap_or_default();
                    problems.push(problem(
                        name,
                        "INVALID_DATETIME",
                        format!("{shown:?} is not a valid datetime for {name}: use epoch milliseconds or ISO 8601"),
                    ));
                }
            } else if let Some(value) = value {
                problems.extend(too_long(name, value));
            }
        }
        problems
    }

    /// Writes validated `updates` to note `id`.
    pub(super) fn update(&mut self, id: u64, updates: &Updates) -> Option<Note> {
        let note = self.notes.get_mut(&id)?;
        apply(&mut note.properties, updates);
        note.updated_at = now_rfc3339();
        Some(view(id, note))
    }

    pub(super) fn insert(&mut self, updates: &Updates, contacts: BTreeSet<u64>, now: &str) -> Note {
        let id = self.next_id;
        self.next_id += 1;
        let mut note = StoredNote {
            properties: BTreeMap::new(),
            contacts,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        };
        apply(&mut note.properties, updates);
        let view = view(id, &note);
        self.notes.insert(id, note);
        view
    }

    /// A merge keeps the timeline: notes of any contact in `from` become notes of `to`.
    pub(super) fn reassociate(&mut self, from: &[u64], to: u64) {
        for note in self.notes.values_mut() {
            let before = note.contacts.len();
            note.contacts.retain(|contact| !from.contains(contact));
            if note.contacts.len() < before {
                note.contacts.insert(to);
            }
        }
    }

    /// A deleted contact's notes stay, associated with nothing of it.
    pub(super) fn dissociate(&mut self, contact: u64) {
        for note in self.notes.values_mut() {
            note.contacts.remove(&contact);
        }
    }

    /// The note as HubSpot returns it, with its system properties; `wanted` limits the others (unset → null,
    /// undefined → omitted). HubSpot answers a read that names no properties with the system ones only.
    pub(super) fn json(&self, note: &Note, wanted: Option<&[String]>) -> Value {
        let wanted: Option<Vec<String>> = wanted.map(|wanted| {
            wanted
                .iter()
                .filter(|p| self.properties.contains(*p))
                .cloned()
                .collect()
        });
        let mut properties = properties_json(&note.properties, wanted.as_deref());
        let system = [&note.created_at, &note.updated_at, &note.id];
        for (name, value) in SYSTEM_PROPERTIES.iter().zip(system) {
            properties.insert((*name).to_owned(), Value::String(value.clone()));
        }
        json!({
            "id": note.id,
            "properties": properties,
            "createdAt": note.created_at,
            "updatedAt": note.updated_at,
            "archived": false,
        })
    }
}

/// One of a contact's notes in a batch read of its associations (the documents' `MultiAssociatedObjectWithLabel`:
/// `toObjectId` a string; an unlabelled association has no `label`).
pub(super) fn contact_to_note_json(note_id: u64) -> Value {
    json!({
        "toObjectId": note_id.to_string(),
        "associationTypes": [{"category": HUBSPOT_DEFINED, "typeId": CONTACT_TO_NOTE}],
    })
}

fn view(id: u64, note: &StoredNote) -> Note {
    Note {
        id: id.to_string(),
        properties: note.properties.clone(),
        contacts: note.contacts.iter().map(u64::to_string).collect(),
        created_at: note.created_at.clone(),
        updated_at: note.updated_at.clone(),
    }
}

/// Writes validated updates, `hs_timestamp` normalised.
fn apply(properties: &mut BTreeMap<String, String>, updates: &Updates) {
    for (name, value) in updates {
        match value {
            Some(value) if name == TIMESTAMP => {
                let value = normalised_timestamp(value).unwrap_or_else(|| value.clone());
                properties.insert(name.clone(), value);
            }
            Some(value) => {
                properties.insert(name.clone(), value.clone());
            }
            None => {
                properties.remove(name);
            }
        }
    }
}

/// HubSpot takes a datetime as epoch milliseconds or ISO 8601 (a date alone is midnight UTC) and answers with
/// ISO 8601 UTC and milliseconds.
fn normalised_timestamp(value: &str) -> Option<String> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let nanos = value.parse::<i128>().ok()?.checked_mul(1_000_000)?;
        return OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .map(format_millis);
    }
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(value, &Iso8601::DEFAULT))
    {
        return Some(format_millis(t));
    }
    Date::parse(value, format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|date| format_millis(date.midnight().assume_utc()))
}

/// Reads one note to create (`at` locates it in the request for messages, e.g. `inputs[2].`). `associations` is
/// required by the documents (`[]` for none). Association types are checked here; whether the contacts exist, when
/// the note is created.
pub(super) fn note_input(value: &Value, at: &str) -> Result<NoteInput, HsError> {
    let updates = updates_from(value.get("properties").unwrap_or(&Value::Null), false)?;
    let Some(list) = value.get("associations").and_then(Value::as_array) else {
        return Err(validation(&format!(
            "Invalid input JSON: {at}associations is required (an array, [] for none)"
        )));
    };
    let mut contacts = Vec::with_capacity(list.len());
    for (index, association) in list.iter().enumerate() {
        let here = format!("{at}associations[{index}]");
        let id = match association.pointer("/to/id") {
            Some(Value::String(id)) if !id.trim().is_empty() => id.trim().to_owned(),
            Some(Value::Number(id)) => id.to_string(),
            _ => return Err(validation(&format!("{here}.to.id is required"))),
        };
        let types = association
            .get("types")
            .and_then(Value::as_array)
            .filter(|types| !types.is_empty())
            .ok_or_else(|| validation(&format!("{here}.types must be a non-empty array")))?;
        for kind in types {
            let category = kind.get("associationCategory").and_then(Value::as_str);
            let type_id = kind.get("associationTypeId").and_then(Value::as_u64);
            if category != Some(HUBSPOT_DEFINED) || type_id != Some(NOTE_TO_CONTACT) {
                return Err(validation(&format!(
                    "{here}: association type {kind} is not a note-to-contact association \
                     (associationCategory HUBSPOT_DEFINED, associationTypeId {NOTE_TO_CONTACT})"
                )));
            }
        }
        contacts.push(id);
    }
    Ok(NoteInput { updates, contacts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_normalised_to_iso_utc_millis() {
        let cases = [
            ("1764000000000", Some("2025-11-24T16:00:00.000Z")),
            ("2026-11-24T10:00:00Z", Some("2026-11-24T10:00:00.000Z")),
            (
                "2026-11-24T11:00:00.5+01:00",
                Some("2026-11-24T10:00:00.500Z"),
            ),
            ("2026-11-24", Some("2026-11-24T00:00:00.000Z")),
            ("yesterday", None),
            ("", None),
        ];
        for (given, expected) in cases {
            assert_eq!(normalised_timestamp(given).as_deref(), expected, "{given}");
        }
    }

    #[test]
    fn a_merge_moves_notes_and_a_deletion_drops_associations() {
        let mut notes = Notes::new();
        let updates: Updates = [(TIMESTAMP.to_owned(), Some("1".to_owned()))].into();
        let now = now_rfc3339();
        let a = notes.insert(&updates, [1, 2].into(), &now).id;
        let b = notes.insert(&updates, [2].into(), &now).id;
        let c = notes.insert(&updates, [3].into(), &now).id;
        notes.reassociate(&[1, 2], 9);
        let contacts = |notes: &Notes, id: &str| notes.get(id).map(|n| n.contacts);
        assert_eq!(contacts(&notes, &a), Some(vec!["9".to_owned()]));
        assert_eq!(contacts(&notes, &b), Some(vec!["9".to_owned()]));
        assert_eq!(contacts(&notes, &c), Some(vec!["3".to_owned()]));
        notes.dissociate(9);
        assert_eq!(contacts(&notes, &a), Some(Vec::new()), "the note stays");
        assert_eq!(notes.of_contact(3).count(), 1);
    }
}
