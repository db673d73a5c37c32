//! The read, create and property routes, and the answers for unknown routes and methods. Writes that can race each
//! other or land late (contact PATCH and batch update, every note write) live in `writes.rs`.

use super::crm::{
    batch_answer, batch_inputs, by_email, contact_json, input_id, parse_json, property_definition,
    unknown_ids, valid_email, wanted_properties, Object, DEFAULT_PROPERTIES,
};
use super::errors::{
    conflict, error, object_not_found, problem, property_errors, standard_error, validation,
    HsError,
};
use super::notes::contact_to_note_json;
use super::properties::{updates_from, Updates};
use super::rules::refused_input;
use super::scopes::Route;
use super::{guarded, HubState, Outcome, PathParam, St, ASSOCIATIONS_PER_PAGE, MAX_BATCH_INPUTS};
use crate::support::{lock, now_rfc3339, Req};
use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

pub(super) async fn upsert(State(s): St, req: Req) -> Response {
    guarded(&s, Route::Upsert, &req, || do_upsert(&s, &req)).await
}

fn do_upsert(s: &HubState, req: &Req) -> Outcome {
    let body = parse_json(&req.body)?;
    let inputs = batch_inputs(&body)?;
    let mut batch: Vec<UpsertInput> = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        let Some(id) = input.get("id").and_then(Value::as_str) else {
            return Err(validation(&format!("inputs[{index}].id is required")));
        };
        match input.get("idProperty").and_then(Value::as_str) {
            Some("email") => {}
            other => {
                return Err(validation(&format!(
                    "inputs[{index}].idProperty must be \"email\" (the only unique property supported here); got {}",
                    other.map_or("nothing".to_owned(), |o| format!("\"{o}\""))
                )))
            }
        }
        let email = id.trim().to_lowercase();
        if !valid_email(&email) {
            let problem = problem(
                "email",
                "INVALID_EMAIL",
                format!("Email address {id} is invalid"),
            );
            return Err(property_errors(vec![problem]));
        }
        if batch.iter().any(|b| b.email == email) {
            return Err(validation(&format!(
                "Duplicate IDs found in batch input: [{email}]"
            )));
        }
        let mut updates = updates_from(input.get("properties").unwrap_or(&Value::Null), false)?;
        // The email is the input's id; a conflicting `properties.email` is ignored.
        updates.remove("email");
        batch.push(UpsertInput {
            sent: id.to_owned(),
            email,
            updates,
        });
    }
    let started_at = now_rfc3339();
    // One lock for the whole batch: concurrent upserts of one email serialize, so exactly one creates it.
    let mut crm = lock(&s.crm);
    for input in &batch {
        crm.validate(&input.updates)?;
    }
    // Invalid values refuse the batch; a validation rule of the portal refuses only the input that breaks it.
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in &batch {
        let violations = crm.violations(&input.updates);
        if !violations.is_empty() {
            errors.push(refused_input(&input.sent, &violations));
            continue;
        }
        let (contact, new) = crm.upsert_by_email(&input.email, &input.updates);
        let mut json = contact_json(&contact, None);
        json["new"] = Value::Bool(new);
        results.push(json);
    }
    drop(crm);
    Ok(batch_answer(started_at, results, errors))
}

/// One input of a batch upsert.
struct UpsertInput {
    /// The id as the client sent it (what an `errors` entry names).
    sent: String,
    /// Trimmed and lowercased.
    email: String,
    updates: Updates,
}

pub(super) async fn create_contact(State(s): St, req: Req) -> Response {
    guarded(&s, Route::CreateContact, &req, || {
        let body = parse_json(&req.body)?;
        let updates = updates_from(body.get("properties").unwrap_or(&Value::Null), false)?;
        // Required by the documents even with nothing to associate; the double models no contact associations.
        match body.get("associations").and_then(Value::as_array) {
            Some(list) if list.is_empty() => {}
            Some(_) => {
                return Err(validation(
                    "associations on a contact create are not modelled by this double: send []",
                ))
            }
            None => {
                return Err(validation(
                    "Invalid input JSON: \"associations\" is required (an array, [] for none)",
                ))
            }
        }
        let mut crm = lock(&s.crm);
        crm.validate(&updates)?;
        crm.check_rules(&updates)?;
        let email = updates
            .get("email")
            .cloned()
            .flatten()
            .map(|e| e.trim().to_lowercase());
        if let Some(&existing) = email.as_ref().and_then(|e| crm.by_email.get(e)) {
            return Err(conflict(existing));
        }
        let contact = crm.create(email, &updates);
        Ok((StatusCode::CREATED, contact_json(&contact, None)))
    })
    .await
}

pub(super) async fn get_contact(State(s): St, path: PathParam, req: Req) -> Response {
    guarded(&s, Route::GetContact, &req, || {
        let Ok(Path(key)) = path else {
            return Err(object_not_found());
        };
        let query = req.query();
        let by_email = query.get("idProperty").is_some_and(|p| p == "email");
        let wanted = wanted_properties(query.get("properties")).unwrap_or_else(default_properties);
        let crm = lock(&s.crm);
        let contact = crm
            .resolve(&key, by_email)
            .and_then(|id| crm.contacts.get(&id))
            .ok_or_else(object_not_found)?;
        // Like HubSpot: requested properties without a value come back as null; unknown ones are omitted.
        let wanted: Vec<String> = wanted
            .into_iter()
            .filter(|p| crm.properties.contains_key(p))
            .collect();
        Ok((StatusCode::OK, contact_json(contact, Some(&wanted))))
    })
    .await
}

pub(super) async fn list_contacts(State(s): St, req: Req) -> Response {
    guarded(&s, Route::ListContacts, &req, || {
        let query = req.query();
        let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
            None => 10,
            Some(Ok(limit)) if (1..=MAX_BATCH_INPUTS).contains(&limit) => limit,
            Some(_) => {
                return Err(validation(&format!(
                    "limit must be a number between 1 and {MAX_BATCH_INPUTS}"
                )))
            }
        };
        let after: u64 = query.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
        let crm = lock(&s.crm);
        let mut page = crm.contacts.range(after.saturating_add(1)..);
        let results: Vec<Value> = page
            .by_ref()
            .take(limit)
            .map(|(_, c)| contact_json(c, None))
            .collect();
        let mut body = json!({ "results": results });
        if let Some((next, _)) = page.next() {
            body["paging"] = json!({ "next": { "after": (next - 1).to_string() } });
        }
        Ok((StatusCode::OK, body))
    })
    .await
}

pub(super) async fn batch_read_contacts(State(s): St, req: Req) -> Response {
    guarded(&s, Route::BatchRead, &req, || {
        let read = parse_batch_read(&req.body, Object::Contact)?;
        let started_at = now_rfc3339();
        let crm = lock(&s.crm);
        let wanted: Vec<String> = read
            .properties
            .unwrap_or_else(default_properties)
            .into_iter()
            .filter(|p| crm.properties.contains_key(p))
            .collect();
        let mut results = Vec::new();
        let mut unknown = Vec::new();
        for id in read.ids {
            match crm
                .resolve(&id, read.by_email)
                .and_then(|id| crm.contacts.get(&id))
            {
                Some(contact) => results.push(contact_json(contact, Some(&wanted))),
                None => unknown.push(id),
            }
        }
        let errors = unknown_ids(unknown, Object::Contact).into_iter().collect();
        Ok(batch_answer(started_at, results, errors))
    })
    .await
}

pub(super) async fn get_note(State(s): St, path: PathParam, req: Req) -> Response {
    guarded(&s, Route::NotesGet, &req, || {
        let Ok(Path(id)) = path else {
            return Err(object_not_found());
        };
        let wanted = wanted_properties(req.query().get("properties")).unwrap_or_default();
        let crm = lock(&s.crm);
        let note = crm.notes.get(&id).ok_or_else(object_not_found)?;
        Ok((StatusCode::OK, crm.notes.json(&note, Some(&wanted))))
    })
    .await
}

pub(super) async fn batch_read_notes(State(s): St, req: Req) -> Response {
    guarded(&s, Route::NotesBatchRead, &req, || {
        let read = parse_batch_read(&req.body, Object::Note)?;
        let started_at = now_rfc3339();
        let wanted = read.properties.unwrap_or_default();
        let crm = lock(&s.crm);
        let mut results = Vec::new();
        let mut unknown = Vec::new();
        for id in read.ids {
            match crm.notes.get(&id) {
                Some(note) => results.push(crm.notes.json(&note, Some(&wanted))),
                None => unknown.push(id),
            }
        }
        let errors = unknown_ids(unknown, Object::Note).into_iter().collect();
        Ok(batch_answer(started_at, results, errors))
    })
    .await
}

/// `POST /crm/associations/{version}/contacts/notes/batch/read`: per input — a contact id, and the `after` cursor a
/// previous page of it gave — the contact's notes in id order, a page at a time (`paging.next.after` on every page
/// but the last). A contact without notes on that page, or without a record (HubSpot does not tell them apart), has
/// no result but an `OBJECT_NOT_FOUND` entry in `errors` naming it in `context.fromObjectId`.
pub(super) async fn contact_notes(State(s): St, req: Req) -> Response {
    guarded(&s, Route::ContactNotes, &req, || {
        let body = parse_json(&req.body)?;
        let mut inputs: Vec<(String, u64)> = Vec::new();
        for (index, input) in batch_inputs(&body)?.iter().enumerate() {
            let id = input_id(input, index)?;
            let after = match input.get("after") {
                None | Some(Value::Null) => 0,
                Some(Value::String(after)) => after.parse().map_err(|_| {
                    validation(&format!(
                        "inputs[{index}].after must be a paging cursor this API returned"
                    ))
                })?,
                Some(_) => {
                    return Err(validation(&format!(
                        "Invalid input JSON: inputs[{index}].after must be a string"
                    )))
                }
            };
            if !inputs.iter().any(|(seen, _)| *seen == id) {
                inputs.push((id, after));
            }
        }
        let started_at = now_rfc3339();
        let crm = lock(&s.crm);
        let mut results = Vec::new();
        let mut errors = Vec::new();
        for (id, after) in inputs {
            // One more than a page, to know whether another follows.
            let notes: Vec<u64> = match crm.resolve(&id, false) {
                Some(contact) => crm
                    .notes
                    .of_contact(contact)
                    .filter(|note| *note > after)
                    .take(ASSOCIATIONS_PER_PAGE + 1)
                    .collect(),
                None => Vec::new(),
            };
            let page = &notes[..notes.len().min(ASSOCIATIONS_PER_PAGE)];
            let Some(last) = page.last() else {
                errors.push(standard_error(
                    "OBJECT_NOT_FOUND",
                    &format!("No note is associated with contact {id}."),
                    json!({
                        "fromObjectId": [id],
                        "fromObjectType": ["contact"],
                        "toObjectType": ["note"],
                    }),
                    Vec::new(),
                ));
                continue;
            };
            let to: Vec<Value> = page
                .iter()
                .map(|note| contact_to_note_json(*note))
                .collect();
            let mut result = json!({ "from": { "id": id }, "to": to });
            if notes.len() > page.len() {
                result["paging"] = json!({ "next": { "after": last.to_string() } });
            }
            results.push(result);
        }
        Ok(batch_answer(started_at, results, errors))
    })
    .await
}

/// The body of a batch read: `{"properties":[..],"propertiesWithHistory":[],"idProperty":..,"inputs":[{"id":..}]}`.
struct BatchRead {
    /// Deduplicated, in input order (lowercased e-mails when `by_email`).
    ids: Vec<String>,
    by_email: bool,
    /// `None` when empty: the object type's defaults are read.
    properties: Option<Vec<String>>,
}

/// Only contacts can be read by e-mail (`idProperty: email`). `properties` and `propertiesWithHistory` are required
/// by the documents (an empty list for none); the double keeps no history, so asking for one is refused.
fn parse_batch_read(body: &[u8], object: Object) -> Result<BatchRead, HsError> {
    let body = parse_json(body)?;
    let by_email = by_email(body.get("idProperty"), object, "")?;
    let properties = string_list(&body, "properties")?;
    if !string_list(&body, "propertiesWithHistory")?.is_empty() {
        return Err(validation(
            "propertiesWithHistory: property history is not modelled by this double",
        ));
    }
    let properties = (!properties.is_empty()).then_some(properties);
    let mut ids: Vec<String> = Vec::new();
    for (index, input) in batch_inputs(&body)?.iter().enumerate() {
        let id = input_id(input, index)?;
        let id = if by_email { id.to_lowercase() } else { id };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(BatchRead {
        ids,
        by_email,
        properties,
    })
}

/// A required field of a batch read that lists property names.
fn string_list(body: &Value, field: &str) -> Result<Vec<String>, HsError> {
    let invalid = || {
        validation(&format!(
            "Invalid input JSON: \"{field}\" is required, an array of strings ([] for none)"
        ))
    };
    body.get(field)
        .and_then(Value::as_array)
        .ok_or_else(invalid)?
        .iter()
        .map(|p| p.as_str().map(str::to_owned))
        .collect::<Option<Vec<String>>>()
        .ok_or_else(invalid)
}

fn default_properties() -> Vec<String> {
    DEFAULT_PROPERTIES.iter().map(|p| (*p).to_owned()).collect()
}

pub(super) async fn create_property(State(s): St, req: Req) -> Response {
    guarded(&s, Route::CreateProperty, &req, || {
        let body = parse_json(&req.body)?;
        let field = |name: &str| {
            body.get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let (Some(name), Some(label), Some(kind), Some(field_type), Some(group)) = (
            field("name"),
            field("label"),
            field("type"),
            field("fieldType"),
            field("groupName"),
        ) else {
            return Err(validation("name, label, type, fieldType and groupName are required"));
        };
        let valid_name = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_name {
            return Err(validation(&format!(
                "Property name '{name}' is invalid: use lowercase letters, digits and underscores, starting with a letter"
            )));
        }
        if !["string", "number", "date", "datetime", "enumeration", "bool"].contains(&kind) {
            return Err(validation(&format!("Unknown property type '{kind}'")));
        }
        let mut crm = lock(&s.crm);
        if crm.properties.contains_key(name) {
            return Err(error(
                StatusCode::CONFLICT,
                "OBJECT_ALREADY_EXISTS",
                &format!("Property named '{name}' already exists."),
            ));
        }
        let definition = property_definition(name, label, kind, field_type, group);
        crm.properties.insert(name.to_owned(), definition.clone());
        Ok((StatusCode::CREATED, definition))
    })
    .await
}

pub(super) async fn get_property(State(s): St, path: PathParam, req: Req) -> Response {
    guarded(&s, Route::GetProperty, &req, || {
        let name = path.map(|Path(name)| name).unwrap_or_default();
        match lock(&s.crm).properties.get(&name) {
            Some(definition) => Ok((StatusCode::OK, definition.clone())),
            None => Err(error(
                StatusCode::NOT_FOUND,
                "OBJECT_NOT_FOUND",
                &format!("Unable to find property named '{name}' for object type contacts"),
            )),
        }
    })
    .await
}

pub(super) async fn not_found(State(s): St, req: Req) -> Response {
    let call = s.recorder.begin("not_found", &req);
    let gate = s.admit_unrouted(&req);
    let message = format!("No route for {} {}", req.method, req.uri.path());
    call.finish(gate.answer(|| Err(error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", &message))))
        .await
}

pub(super) async fn method_not_allowed(State(s): St, req: Req) -> Response {
    let call = s.recorder.begin("method_not_allowed", &req);
    let gate = s.admit_unrouted(&req);
    let message = format!("Method {} is not allowed on {}", req.method, req.uri.path());
    call.finish(gate.answer(|| {
        Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "VALIDATION_ERROR",
            &message,
        ))
    }))
    .await
}
