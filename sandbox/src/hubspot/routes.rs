//! The read, create and property routes, and the answers for unknown routes and methods. Writes that can race each
//! other or land late (contact PATCH and batch update, every note write) live in `writes.rs`.

use super::crm::{
    batch_answer, batch_complete, batch_inputs, by_email, contact_json, input_id, parse_json,
    property_definition, updates_from, valid_email, wanted_properties, Object, Updates,
    DEFAULT_PROPERTIES,
};
use super::errors::{
    conflict, error, object_not_found, problem, property_errors, validation, HsError,
};
use super::notes::contact_to_note_json;
use super::scopes::Route;
use super::{guarded, HubState, Outcome, PathParam, St, MAX_BATCH_INPUTS};
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
    let mut batch: Vec<(String, Updates)> = Vec::with_capacity(inputs.len());
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
        if batch.iter().any(|(e, _)| *e == email) {
            return Err(validation(&format!(
                "Duplicate IDs found in batch input: [{email}]"
            )));
        }
        let mut updates = updates_from(input.get("properties").unwrap_or(&Value::Null), true)?;
        // The email is the input's id; a conflicting `properties.email` is ignored.
        updates.remove("email");
        batch.push((email, updates));
    }
    let started_at = now_rfc3339();
    // One lock for the whole batch: concurrent upserts of one email serialize, so exactly one creates it.
    let mut crm = lock(&s.crm);
    for (_, updates) in &batch {
        crm.validate(updates)?;
    }
    let results: Vec<Value> = batch
        .iter()
        .map(|(email, updates)| {
            let (contact, new) = crm.upsert_by_email(email, updates);
            let mut json = contact_json(&contact, None);
            json["new"] = Value::Bool(new);
            json
        })
        .collect();
    drop(crm);
    Ok((StatusCode::OK, batch_complete(started_at, results)))
}

pub(super) async fn create_contact(State(s): St, req: Req) -> Response {
    guarded(&s, Route::CreateContact, &req, || {
        let body = parse_json(&req.body)?;
        let updates = updates_from(body.get("properties").unwrap_or(&Value::Null), false)?;
        let mut crm = lock(&s.crm);
        crm.validate(&updates)?;
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
        Ok(batch_answer(started_at, results, unknown, Object::Contact))
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
        Ok(batch_answer(started_at, results, unknown, Object::Note))
    })
    .await
}

/// HubSpot's most associations per page of a v4 listing, and the default.
const MAX_ASSOCIATIONS_PAGE: usize = 500;

/// `GET /crm/v4/objects/contacts/{id}/associations/notes`: the contact's notes in id order, paged by note id.
pub(super) async fn contact_notes(State(s): St, path: PathParam, req: Req) -> Response {
    guarded(&s, Route::ContactNotes, &req, || {
        let Ok(Path(contact)) = path else {
            return Err(object_not_found());
        };
        let query = req.query();
        let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
            None => MAX_ASSOCIATIONS_PAGE,
            Some(Ok(limit)) if (1..=MAX_ASSOCIATIONS_PAGE).contains(&limit) => limit,
            Some(_) => {
                return Err(validation(&format!(
                    "limit must be a number between 1 and {MAX_ASSOCIATIONS_PAGE}"
                )))
            }
        };
        let after: u64 = match query.get("after").map(|a| a.parse()) {
            None => 0,
            Some(Ok(after)) => after,
            Some(Err(_)) => {
                return Err(validation(
                    "after must be a paging cursor this API returned",
                ))
            }
        };
        let crm = lock(&s.crm);
        let contact = crm.resolve(&contact, false).ok_or_else(object_not_found)?;
        let mut page = crm.notes.of_contact(contact).filter(|id| *id > after);
        let ids: Vec<u64> = page.by_ref().take(limit).collect();
        let results: Vec<Value> = ids.iter().map(|id| contact_to_note_json(*id)).collect();
        let mut body = json!({ "results": results });
        if let (Some(last), Some(_)) = (ids.last(), page.next()) {
            body["paging"] = json!({ "next": { "after": last.to_string() } });
        }
        Ok((StatusCode::OK, body))
    })
    .await
}

/// The body of a batch read: `{"properties":[..],"idProperty":..,"inputs":[{"id":..}]}`.
struct BatchRead {
    /// Deduplicated, in input order (lowercased e-mails when `by_email`).
    ids: Vec<String>,
    by_email: bool,
    properties: Option<Vec<String>>,
}

/// Only contacts can be read by e-mail (`idProperty: email`).
fn parse_batch_read(body: &[u8], object: Object) -> Result<BatchRead, HsError> {
    let body = parse_json(body)?;
    let by_email = by_email(body.get("idProperty"), object, "")?;
    let properties = match body.get("properties") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(
            list.iter()
                .map(|p| p.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| {
                    validation("Invalid input JSON: \"properties\" must be an array of strings")
                })?,
        ),
        Some(_) => {
            return Err(validation(
                "Invalid input JSON: \"properties\" must be an array of strings",
            ))
        }
    };
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
