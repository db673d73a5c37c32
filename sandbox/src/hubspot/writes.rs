//! Contact writes — `PATCH` of one contact and batch update of many — and the two hazards they model.
//!
//! * HubSpot has no conditional write, so two writes to one contact in flight at once can lose an update. Every
//!   write the gateway lets through marks its contacts in flight from arrival until its values land; one that
//!   starts while another write to the same contact is in flight is recorded as an overlap (the race the app's
//!   per-contact fencing must prevent). PATCH and batch writes count against each other.
//! * A gateway can answer 502 while the backend still applies the write later (a "late write"). Such a write
//!   stays in flight until it has landed, so a client that writes the contact again before then is caught.

use super::crm::{batch_inputs, contact_json, new_email, parse_json, updates_from, Crm, Updates};
use super::errors::{
    bad_gateway, duplicate_ids, not_found_contact, property_errors, validation, HsError,
};
use super::{HubState, Outcome, PathParam, St};
use crate::support::{lock, now_rfc3339, Req};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The write bookkeeping of one double: what is in flight, the overlaps seen, and the late-write setting.
#[derive(Default)]
pub(super) struct Writes {
    /// Writes in flight per contact (its id, or the key the client sent when it resolved to no contact).
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    overlaps: Mutex<Vec<String>>,
    late: Mutex<LateWrites>,
    /// Late writes injected since start or [`Writes::forget`].
    injected: AtomicUsize,
    /// Late writes answered but not landed yet.
    pending: Arc<AtomicUsize>,
}

#[derive(Default)]
struct LateWrites {
    rate: f64,
    delay: Duration,
}

impl Writes {
    pub(super) fn overlaps(&self) -> Vec<String> {
        lock(&self.overlaps).clone()
    }

    /// Forgets overlaps and the late-write count; writes still in flight or pending stay so (they are state).
    pub(super) fn forget(&self) {
        lock(&self.overlaps).clear();
        self.injected.store(0, Ordering::SeqCst);
    }

    pub(super) fn set_late(&self, rate: f64, delay: Duration) {
        // `!(rate > 0.0)` also turns a NaN rate off instead of handing it to the RNG.
        let rate = if rate > 0.0 { rate.min(1.0) } else { 0.0 };
        *lock(&self.late) = LateWrites { rate, delay };
    }

    pub(super) fn late_injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    pub(super) fn late_pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Whether this write becomes a late one, and if so how long after its 502 it lands.
    fn decide_late(&self) -> Option<(Duration, Pending)> {
        let late = lock(&self.late);
        if late.rate <= 0.0 || !rand::rng().random_bool(late.rate) {
            return None;
        }
        self.injected.fetch_add(1, Ordering::SeqCst);
        self.pending.fetch_add(1, Ordering::SeqCst);
        Some((late.delay, Pending(self.pending.clone())))
    }

    /// Marks a write by `route` to each of `contacts` (deduplicated) in flight, recording an overlap for each
    /// contact another write is already in flight to.
    fn track(&self, route: &str, contacts: Vec<String>) -> Vec<InFlight> {
        let mut in_flight = lock(&self.in_flight);
        contacts
            .into_iter()
            .map(|key| {
                let count = in_flight.entry(key.clone()).or_insert(0);
                if *count > 0 {
                    lock(&self.overlaps).push(format!(
                        "{route} to contact {key} started while {count} other write(s) to it were in flight"
                    ));
                }
                *count += 1;
                InFlight {
                    in_flight: self.in_flight.clone(),
                    key,
                }
            })
            .collect()
    }
}

/// Decrements a contact's in-flight count on drop, so a write abandoned by its client (hyper drops the handler
/// future on disconnect) stops counting as in flight.
struct InFlight {
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.in_flight);
        if let Some(count) = in_flight.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.remove(&self.key);
            }
        }
    }
}

/// Counts a late write as pending until dropped (when it has landed, or if the runtime shuts down first);
/// made only by [`Writes::decide_late`], which does the matching increment.
struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A write as parsed on arrival; whether it applies (ids, validation) is decided when it lands.
enum Write {
    Patch {
        key: String,
        by_email: bool,
        updates: Result<Updates, HsError>,
    },
    Batch(Result<Vec<BatchInput>, HsError>),
}

struct BatchInput {
    /// A contact id, or a lowercased e-mail when `by_email`.
    id: String,
    by_email: bool,
    updates: Updates,
}

impl Write {
    /// The contacts this write touches, as in-flight keys: the contact id when the key resolves, so `/{id}` and
    /// `/{email}?idProperty=email` count as one contact.
    fn targets(&self, crm: &Crm) -> Vec<String> {
        let key = |id: &str, by_email: bool| {
            crm.resolve(id, by_email)
                .map_or_else(|| id.to_owned(), |id| id.to_string())
        };
        let mut keys: Vec<String> = match self {
            Self::Patch {
                key: id, by_email, ..
            } => vec![key(id, *by_email)],
            Self::Batch(Ok(inputs)) => inputs.iter().map(|i| key(&i.id, i.by_email)).collect(),
            Self::Batch(Err(_)) => Vec::new(),
        };
        keys.sort();
        keys.dedup();
        keys
    }

    fn apply(self, crm: &mut Crm) -> Outcome {
        match self {
            Self::Patch {
                key,
                by_email,
                updates,
            } => {
                let updates = updates?;
                let id = crm.resolve(&key, by_email).ok_or_else(not_found_contact)?;
                crm.validate(&updates)?;
                crm.check_email_change(id, &updates)?;
                let contact = crm.update(id, &updates).ok_or_else(not_found_contact)?;
                Ok((StatusCode::OK, contact_json(&contact, None)))
            }
            Self::Batch(inputs) => apply_batch(&inputs?, crm),
        }
    }
}

pub(super) async fn patch_contact(State(s): St, path: PathParam, req: Req) -> Response {
    const ROUTE: &str = "patch_contact";
    let call = s.recorder.begin(ROUTE, &req);
    let Ok(Path(key)) = path else {
        return call.finish(not_found_contact().into_response());
    };
    let by_email = req.query().get("idProperty").is_some_and(|p| p == "email");
    let updates = parse_json(&req.body)
        .and_then(|body| updates_from(body.get("properties").unwrap_or(&Value::Null), false));
    let write = Write::Patch {
        key,
        by_email,
        updates,
    };
    call.finish(run(&s, ROUTE, &req, write).await)
}

pub(super) async fn batch_update(State(s): St, req: Req) -> Response {
    const ROUTE: &str = "batch_update";
    let call = s.recorder.begin(ROUTE, &req);
    let write = Write::Batch(parse_batch(&req.body));
    call.finish(run(&s, ROUTE, &req, write).await)
}

/// Admission, in-flight tracking, latency, then the write — now, or (a late write) after its 502.
async fn run(s: &Arc<HubState>, route: &'static str, req: &Req, write: Write) -> Response {
    let gate = s.admit(route, req);
    // Only a request the gateway let through reaches the CRM, so only it can race another write.
    let in_flight = if gate.admitted() {
        let targets = write.targets(&lock(&s.crm));
        s.writes.track(route, targets)
    } else {
        Vec::new()
    };
    if let Some((delay, pending)) = gate.admitted().then(|| s.writes.decide_late()).flatten() {
        land_later(
            s.clone(),
            write,
            in_flight,
            pending,
            s.faults.latency() + delay,
        );
        s.faults.delay().await;
        return gate.answer(|| Err(bad_gateway()));
    }
    s.faults.delay().await;
    // The write lands at the end of the request, like a slow real one: an overlapping write would race it.
    let response = gate.answer(|| write.apply(&mut lock(&s.crm)));
    drop(in_flight);
    response
}

/// Applies a write `after` from now on its own task, so a client hanging up does not cancel it (the backend has
/// the request already), keeping its contacts in flight until it has landed.
fn land_later(
    s: Arc<HubState>,
    write: Write,
    in_flight: Vec<InFlight>,
    pending: Pending,
    after: Duration,
) {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let outcome = write.apply(&mut lock(&s.crm));
        if let Err(error) = outcome {
            tracing::debug!(?error, "a late write was refused when it landed");
        }
        drop(in_flight);
        drop(pending);
    });
}

/// Checks a batch update's shape; its ids and property values are checked when it lands.
fn parse_batch(body: &[u8]) -> Result<Vec<BatchInput>, HsError> {
    let body = parse_json(body)?;
    let inputs = batch_inputs(&body)?;
    let mut batch: Vec<BatchInput> = Vec::with_capacity(inputs.len());
    let mut duplicates = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let id = match input.get("id") {
            Some(Value::String(id)) if !id.trim().is_empty() => id.trim().to_owned(),
            Some(Value::Number(id)) => id.to_string(),
            _ => return Err(validation(&format!("inputs[{index}].id is required"))),
        };
        let by_email = match input.get("idProperty") {
            None | Some(Value::Null) => false,
            Some(Value::String(p)) if p == "hs_object_id" => false,
            Some(Value::String(p)) if p == "email" => true,
            Some(other) => {
                return Err(validation(&format!(
                    "inputs[{index}].idProperty {other} is not a unique identifier property of contacts"
                )))
            }
        };
        let id = if by_email { id.to_lowercase() } else { id };
        let seen = batch.iter().any(|b| b.by_email == by_email && b.id == id);
        if seen && !duplicates.contains(&id) {
            duplicates.push(id.clone());
        }
        let updates = updates_from(input.get("properties").unwrap_or(&Value::Null), false)?;
        batch.push(BatchInput {
            id,
            by_email,
            updates,
        });
    }
    if !duplicates.is_empty() {
        return Err(duplicate_ids(&duplicates));
    }
    Ok(batch)
}

/// All or nothing for invalid values (400, nothing written); per input for unknown ids (207, the rest written).
fn apply_batch(inputs: &[BatchInput], crm: &mut Crm) -> Outcome {
    let started_at = now_rfc3339();
    let problems: Vec<Value> = inputs
        .iter()
        .flat_map(|input| crm.problems(&input.updates))
        .collect();
    if !problems.is_empty() {
        return Err(property_errors(problems));
    }
    let mut known: Vec<(u64, &Updates)> = Vec::new();
    let mut unknown = Vec::new();
    let mut duplicates = Vec::new();
    for input in inputs {
        match crm.resolve(&input.id, input.by_email) {
            // Two spellings of one contact (its id and its e-mail): HubSpot refuses those as duplicates too.
            Some(id) if known.iter().any(|(k, _)| *k == id) => duplicates.push(id.to_string()),
            Some(id) => known.push((id, &input.updates)),
            None => unknown.push(input.id.clone()),
        }
    }
    if !duplicates.is_empty() {
        return Err(duplicate_ids(&duplicates));
    }
    let mut claimed = HashSet::new();
    for (id, updates) in &known {
        crm.check_email_change(*id, updates)?;
        if let Some(Some(email)) = new_email(updates) {
            if !claimed.insert(email.clone()) {
                return Err(validation(&format!(
                    "Two inputs set the e-mail {email}; e-mails are unique"
                )));
            }
        }
    }
    let results: Vec<Value> = known
        .iter()
        .filter_map(|(id, updates)| crm.update(*id, updates))
        .map(|contact| contact_json(&contact, None))
        .collect();
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": started_at,
        "completedAt": now_rfc3339(),
    });
    if unknown.is_empty() {
        return Ok((StatusCode::OK, body));
    }
    // HubSpot groups the unknown ids into one error; `numErrors` counts error entries, not inputs.
    body["errors"] = json!([{
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.",
        "context": { "ids": unknown },
    }]);
    body["numErrors"] = json!(1);
    Ok((StatusCode::MULTI_STATUS, body))
}
