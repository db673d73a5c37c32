//! The CRM the double keeps: contacts, their e-mail index and the property definitions, with HubSpot's
//! validation and JSON shapes (the 2026-09 documents' schemas); the portal's validation rules (`rules.rs`); and the
//! notes on the contacts' timelines (`notes.rs`).
//!
//! Invariants: `by_email` maps every lowercased e-mail that resolves to a contact to that contact's id, and only to
//! ids present in `contacts` (a merge repoints both e-mails to the new id; a deletion drops them). Notes are
//! associated only with contacts present in `contacts` (a merge moves both contacts' notes to the new id; a
//! deletion drops the contact's associations and keeps the notes).

use super::errors::{
    conflict, object_not_found, problem, property_errors, rule_refusal, standard_error, validation,
    HsError,
};
use super::notes::{Note, NoteInput, Notes};
use super::properties::{properties_json, too_long, unknown_property, Updates};
use super::rules::{refusal, Rules, Violation};
use super::MAX_BATCH_INPUTS;
use crate::support::now_rfc3339;
use http::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

const FIRST_CONTACT_ID: u64 = 1001;
/// What a GET returns when no `properties` are asked for; also the properties every portal has.
pub(super) const DEFAULT_PROPERTIES: [&str; 3] = ["email", "firstname", "lastname"];

/// A contact as stored by the double.
#[derive(Clone, Debug, Serialize)]
pub struct Contact {
    pub id: String,
    pub properties: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One property value written to a contact, by any route (create, upsert, PATCH, batch update): a test proves a
/// contact was left untouched by finding no write to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PropertyWrite {
    pub contact_id: String,
    pub property: String,
    /// `None`: the value was cleared.
    pub value: Option<String>,
}

/// The CRM object types the double keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Object {
    Contact,
    Note,
}

impl Object {
    /// The name HubSpot uses in its messages (`Could not get some CONTACT objects`).
    pub(super) fn hubspot_name(self) -> &'static str {
        match self {
            Self::Contact => "CONTACT",
            Self::Note => "NOTE",
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Contact => "contact",
            Self::Note => "note",
        })
    }
}

pub(super) struct Crm {
    pub(super) contacts: BTreeMap<u64, Contact>,
    pub(super) by_email: HashMap<String, u64>,
    next_id: u64,
    pub(super) properties: BTreeMap<String, Value>,
    pub(super) notes: Notes,
    /// Every property value written to a contact, in order.
    pub(super) written: Vec<PropertyWrite>,
    /// The portal's validation rules on contact properties.
    pub(super) rules: Rules,
}

impl Crm {
    pub(super) fn new() -> Self {
        let properties = DEFAULT_PROPERTIES
            .iter()
            .map(|name| {
                let def = property_definition(name, name, "string", "text", "contactinformation");
                ((*name).to_owned(), def)
            })
            .collect();
        Self {
            contacts: BTreeMap::new(),
            by_email: HashMap::new(),
            next_id: FIRST_CONTACT_ID,
            properties,
            notes: Notes::new(),
            written: Vec::new(),
            rules: Rules::default(),
        }
    }

    fn record_writes(&mut self, id: u64, updates: &Updates) {
        self.written
            .extend(updates.iter().map(|(property, value)| PropertyWrite {
                contact_id: id.to_string(),
                property: property.clone(),
                value: value.clone(),
            }));
    }

    fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(super) fn get(&self, id: &str) -> Option<&Contact> {
        id.parse().ok().and_then(|id| self.contacts.get(&id))
    }

    /// Creates the contact for `email` (already lowercased) or updates it; returns it and whether it is new.
    pub(super) fn upsert_by_email(&mut self, email: &str, updates: &Updates) -> (Contact, bool) {
        let now = now_rfc3339();
        let (id, new) = match self.by_email.get(email) {
            Some(&id) => (id, false),
            None => {
                let id = self.allocate_id();
                self.by_email.insert(email.to_owned(), id);
                (id, true)
            }
        };
        let contact = self.contacts.entry(id).or_insert_with(|| Contact {
            id: id.to_string(),
            properties: BTreeMap::new(),
            created_at: now.clone(),
            updated_at: now.clone(),
        });
        apply(contact, updates, &now);
        contact
            .properties
            .insert("email".to_owned(), email.to_owned());
        let contact = contact.clone();
        if new {
            let email = Updates::from([("email".to_owned(), Some(email.to_owned()))]);
            self.record_writes(id, &email);
        }
        self.record_writes(id, updates);
        (contact, new)
    }

    /// Creates a contact with a fresh id; the caller has validated `updates` and checked the e-mail is free.
    pub(super) fn create(&mut self, email: Option<String>, updates: &Updates) -> Contact {
        let now = now_rfc3339();
        let id = self.allocate_id();
        let mut contact = Contact {
            id: id.to_string(),
            properties: BTreeMap::new(),
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        apply(&mut contact, updates, &now);
        if let Some(email) = email {
            self.by_email.insert(email, id);
        }
        self.contacts.insert(id, contact.clone());
        self.record_writes(id, updates);
        contact
    }

    /// Resolves an id as a client gives it: a numeric contact id, or an email when `idProperty=email`.
    pub(super) fn resolve(&self, key: &str, by_email: bool) -> Option<u64> {
        if by_email {
            self.by_email.get(&key.trim().to_lowercase()).copied()
        } else {
            key.trim()
                .parse()
                .ok()
                .filter(|id| self.contacts.contains_key(id))
        }
    }

    /// Creates every note or none: an invalid value, a missing `hs_timestamp` or an association to a contact that
    /// does not exist refuses the whole call. (Here, not in `notes.rs`: a note's contacts are the CRM's to resolve.)
    pub(super) fn create_notes(&mut self, inputs: &[NoteInput]) -> Result<Vec<Note>, HsError> {
        let values: Vec<&Updates> = inputs.iter().map(|input| &input.updates).collect();
        self.notes.validate_new(&values)?;
        let mut missing: Vec<&str> = Vec::new();
        let mut associations = Vec::with_capacity(inputs.len());
        for input in inputs {
            let mut contacts = BTreeSet::new();
            for contact in &input.contacts {
                match self.resolve(contact, false) {
                    Some(id) => {
                        contacts.insert(id);
                    }
                    None => missing.push(contact),
                }
            }
            associations.push(contacts);
        }
        if !missing.is_empty() {
            return Err(validation(&format!(
                "One or more associations are invalid: no CONTACT with id {}",
                missing.join(", ")
            )));
        }
        let now = now_rfc3339();
        Ok(inputs
            .iter()
            .zip(associations)
            .map(|(input, contacts)| self.notes.insert(&input.updates, contacts, &now))
            .collect())
    }

    /// Validates and writes a PATCH of one note: 404 if there is none, 400 for an invalid value.
    pub(super) fn update_note(&mut self, id: &str, updates: &Updates) -> Result<Note, HsError> {
        let id = self.notes.resolve(id).ok_or_else(object_not_found)?;
        self.notes.validate([updates])?;
        self.notes.update(id, updates).ok_or_else(object_not_found)
    }

    /// Real HubSpot validates every value and reports all problems at once.
    pub(super) fn validate(&self, updates: &Updates) -> Result<(), HsError> {
        let problems = self.problems(updates);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(property_errors(problems))
        }
    }

    /// Every invalid value in `updates`, as entries of HubSpot's "Property values were not valid" list.
    pub(super) fn problems(&self, updates: &Updates) -> Vec<Value> {
        let mut problems = Vec::new();
        for (name, value) in updates {
            if !self.properties.contains_key(name) {
                problems.push(unknown_property(name));
            } else if let Some(value) = value {
                problems.extend(too_long(name, value));
                if name == "email" && !value.is_empty() && !valid_email(value) {
                    problems.push(problem(
                        name,
                        "INVALID_EMAIL",
                        format!("Email address {value} is invalid"),
                    ));
                }
            }
        }
        problems
    }

    /// The portal's validation rules the values of one write break (see `rules.rs`).
    pub(super) fn violations(&self, updates: &Updates) -> Vec<Violation> {
        self.rules.violations(updates)
    }

    /// A single write (create, PATCH) that breaks a validation rule is refused whole: 400.
    pub(super) fn check_rules(&self, updates: &Updates) -> Result<(), HsError> {
        let violations = self.violations(updates);
        if violations.is_empty() {
            return Ok(());
        }
        let (message, details) = refusal(&violations);
        Err(rule_refusal(&message, details))
    }

    /// Refuses a write that would give contact `id` an e-mail another contact already has.
    pub(super) fn check_email_change(&self, id: u64, updates: &Updates) -> Result<(), HsError> {
        match new_email(updates).flatten() {
            Some(email) => match self.by_email.get(&email) {
                Some(&other) if other != id => Err(conflict(other)),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Writes `updates` to contact `id`, keeping the e-mail index in step; the caller has validated them and run
    /// [`Self::check_email_change`]. Only the contact's current e-mail is re-pointed: a merged contact keeps
    /// resolving by the other e-mail it absorbed.
    pub(super) fn update(&mut self, id: u64, updates: &Updates) -> Option<Contact> {
        let contact = self.contacts.get_mut(&id)?;
        if let Some(email) = new_email(updates) {
            if let Some(old) = contact.properties.get("email") {
                if self.by_email.get(old) == Some(&id) {
                    self.by_email.remove(old);
                }
            }
            if let Some(email) = email {
                self.by_email.insert(email, id);
            }
        }
        apply(contact, updates, &now_rfc3339());
        let contact = contact.clone();
        self.record_writes(id, updates);
        Some(contact)
    }

    /// HubSpot's merge since 2025: a new contact replaces both; the primary's values win, the secondary's fill the
    /// gaps; both e-mails resolve to the new id and both old ids are gone. `None` if either id is unknown.
    pub(super) fn merge(&mut self, primary_id: &str, secondary_id: &str) -> Option<String> {
        let primary_id: u64 = primary_id.trim().parse().ok()?;
        let secondary_id: u64 = secondary_id.trim().parse().ok()?;
        if primary_id == secondary_id
            || !self.contacts.contains_key(&primary_id)
            || !self.contacts.contains_key(&secondary_id)
        {
            return None;
        }
        let primary = self.contacts.remove(&primary_id)?;
        let secondary = self.contacts.remove(&secondary_id)?;
        let id = self.allocate_id();
        let mut properties = secondary.properties;
        properties.extend(primary.properties);
        let merged = Contact {
            id: id.to_string(),
            properties,
            // The record's history starts with the older of the two.
            created_at: primary.created_at.min(secondary.created_at),
            updated_at: now_rfc3339(),
        };
        for owner in self.by_email.values_mut() {
            if *owner == primary_id || *owner == secondary_id {
                *owner = id;
            }
        }
        self.contacts.insert(id, merged);
        self.notes.reassociate(&[primary_id, secondary_id], id);
        Some(id.to_string())
    }

    /// Removes a contact and its e-mails from the index; `false` if there was no such contact.
    pub(super) fn delete(&mut self, id: &str) -> bool {
        let Some(id) = id.trim().parse::<u64>().ok() else {
            return false;
        };
        if self.contacts.remove(&id).is_none() {
            return false;
        }
        self.by_email.retain(|_, owner| *owner != id);
        self.notes.dissociate(id);
        true
    }
}

/// The normalised e-mail a write sets: `None` if it leaves `email` alone, `Some(None)` if it clears it.
pub(super) fn new_email(updates: &Updates) -> Option<Option<String>> {
    updates
        .get("email")
        .map(|email| email.as_deref().map(|e| e.trim().to_lowercase()))
}

fn apply(contact: &mut Contact, updates: &Updates, now: &str) {
    for (name, value) in updates {
        match value {
            Some(value) if name == "email" => {
                contact
                    .properties
                    .insert(name.clone(), value.trim().to_lowercase());
            }
            Some(value) => {
                contact.properties.insert(name.clone(), value.clone());
            }
            None => {
                contact.properties.remove(name);
            }
        }
    }
    contact.updated_at = now.to_owned();
}

pub(super) fn valid_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

pub(super) fn property_definition(
    name: &str,
    label: &str,
    kind: &str,
    field_type: &str,
    group: &str,
) -> Value {
    let now = now_rfc3339();
    json!({
        "name": name,
        "label": label,
        "type": kind,
        "fieldType": field_type,
        "groupName": group,
        "description": "",
        "options": [],
        "displayOrder": -1,
        "hidden": false,
        "formField": false,
        "calculated": false,
        "externalOptions": false,
        "hasUniqueValue": name == "email",
        "archived": false,
        "createdAt": now,
        "updatedAt": now,
        "modificationMetadata": {"archivable": true, "readOnlyDefinition": false, "readOnlyValue": false},
    })
}

/// The contact as HubSpot returns it, with its system properties; `wanted` limits properties (missing ones → null).
pub(super) fn contact_json(contact: &Contact, wanted: Option<&[String]>) -> Value {
    let mut properties = properties_json(&contact.properties, wanted);
    properties.insert("hs_object_id".to_owned(), Value::String(contact.id.clone()));
    properties.insert(
        "createdate".to_owned(),
        Value::String(contact.created_at.clone()),
    );
    properties.insert(
        "lastmodifieddate".to_owned(),
        Value::String(contact.updated_at.clone()),
    );
    json!({
        "id": contact.id,
        "properties": properties,
        "createdAt": contact.created_at,
        "updatedAt": contact.updated_at,
        "archived": false,
    })
}

/// The `inputs` of a batch call: an array of 1 to [`MAX_BATCH_INPUTS`] entries. (Without the wrapper HubSpot
/// silently does nothing; the double refuses, so a client that forgets it finds out in tests.)
pub(super) fn batch_inputs(body: &Value) -> Result<&[Value], HsError> {
    let Some(inputs) = body.get("inputs").and_then(Value::as_array) else {
        return Err(validation(
            "Invalid input JSON: \"inputs\" must be an array",
        ));
    };
    if inputs.is_empty() || inputs.len() > MAX_BATCH_INPUTS {
        return Err(validation(&format!(
            "The number of inputs must be between 1 and {MAX_BATCH_INPUTS}; got {}",
            inputs.len()
        )));
    }
    Ok(inputs)
}

/// The body of a batch call that went through.
pub(super) fn batch_complete(started_at: String, results: Vec<Value>) -> Value {
    json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": started_at,
        "completedAt": now_rfc3339(),
    })
}

/// The status of a batch answer whose `errors` name inputs that were not done, the others being done. The 2026-09
/// documents list 200 only for every batch call (`errors` and `numErrors` are fields of its
/// `BatchResponseSimplePublicObject`); earlier versions (v3, 2026-03) listed a 207 with a `...WithErrors` schema. The
/// double follows the documents of the version it serves; a client must read the body, not the status.
pub(super) const PARTIAL_BATCH_STATUS: StatusCode = StatusCode::OK;

/// A batch call's answer: its results, and the `errors` entries of the inputs not done (`numErrors` counts entries,
/// not inputs).
pub(super) fn batch_answer(
    started_at: String,
    results: Vec<Value>,
    errors: Vec<Value>,
) -> (StatusCode, Value) {
    let mut body = batch_complete(started_at, results);
    if errors.is_empty() {
        return (StatusCode::OK, body);
    }
    body["numErrors"] = json!(errors.len());
    body["errors"] = Value::Array(errors);
    (PARTIAL_BATCH_STATUS, body)
}

/// The `errors` entry for the ids of a batch that name no object: HubSpot groups them all into one
/// `OBJECT_NOT_FOUND` entry. `None` when every id named one.
pub(super) fn unknown_ids(unknown: Vec<String>, object: Object) -> Option<Value> {
    if unknown.is_empty() {
        return None;
    }
    let object = object.hubspot_name();
    Some(standard_error(
        "OBJECT_NOT_FOUND",
        &format!(
            "Could not get some {object} objects, they may be deleted or not exist. Check that ids are valid."
        ),
        json!({ "ids": unknown }),
        Vec::new(),
    ))
}

/// A batch input's `id`: a non-empty string (trimmed) or a number.
pub(super) fn input_id(input: &Value, index: usize) -> Result<String, HsError> {
    match input.get("id") {
        Some(Value::String(id)) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        Some(Value::Number(id)) => Ok(id.to_string()),
        _ => Err(validation(&format!("inputs[{index}].id is required"))),
    }
}

/// Whether an `idProperty` (`at` locates it for messages) names objects by e-mail, which only contacts can be;
/// otherwise ids are object ids.
pub(super) fn by_email(
    id_property: Option<&Value>,
    object: Object,
    at: &str,
) -> Result<bool, HsError> {
    match id_property {
        None | Some(Value::Null) => Ok(false),
        Some(Value::String(p)) if p == "hs_object_id" => Ok(false),
        Some(Value::String(p)) if p == "email" && object == Object::Contact => Ok(true),
        Some(other) => Err(validation(&format!(
            "{at}idProperty {other} is not a unique identifier property of {object}s"
        ))),
    }
}

/// The `properties` a read asks for (`?properties=a,b`): `None` when it names none.
pub(super) fn wanted_properties(list: Option<&String>) -> Option<Vec<String>> {
    list.map(|list| {
        list.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

pub(super) fn parse_json(body: &[u8]) -> Result<Value, HsError> {
    serde_json::from_slice(body)
        .map_err(|e| validation(&format!("Invalid input JSON on line {}: {e}", e.line())))
}
