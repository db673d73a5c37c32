//! CRM writes — PATCH and batch update of contacts; create, PATCH, batch create and batch update of notes — and the
//! two hazards they model.
//!
//! * HubSpot has no conditional write, so two writes to one object in flight at once can lose an update. Every
//!   write the gateway lets through marks the objects it updates in flight from arrival until its values land; one
//!   that starts while another write to the same object is in flight is recorded as an overlap (the race the app's
//!   per-contact fencing must prevent). Single and batch writes count against each other. A create updates no
//!   existing object, so it marks none.
//! * A gateway can answer 502 while the backend still applies the write later (a "late write"). Such a write
//!   stays in flight until it has landed, so a client that writes the object again before then is caught. A late
//!   create lands too: a client that retries it blindly makes the note twice.
//!
//! A test can also hold write calls until a number of them are in flight together (a rendezvous, see
//! [`Writes::hold_until`]): a client's parallel paths then meet whatever each spends before its call, so a test
//! that two calls *can* be in flight at once does not depend on how the machine times them.

use super::crm::{
    batch_answer, batch_complete, batch_inputs, by_email, contact_json, input_id, new_email,
    parse_json, unknown_ids, Crm, Object,
};
use super::errors::{
    bad_gateway, duplicate_ids, object_not_found, property_errors, validation, HsError,
};
use super::notes::{note_input, NoteInput};
use super::properties::{updates_from, Updates};
use super::rules::refused_input;
use super::scopes::Route;
use super::{HubState, Outcome, PathParam, St};
use crate::support::{lock, now_rfc3339, Req};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rand::Rng;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The write bookkeeping of one double: what is in flight, the overlaps seen, the late-write setting and a hold.
#[derive(Default)]
pub(super) struct Writes {
    /// Writes in flight per object.
    in_flight: Arc<Mutex<HashMap<Target, usize>>>,
    overlaps: Mutex<Vec<String>>,
    late: Mutex<LateWrites>,
    /// Late writes injected since start or [`Writes::forget`].
    injected: AtomicUsize,
    /// Late writes answered but not landed yet.
    pending: Arc<AtomicUsize>,
    /// Write calls in flight now, whatever they update, and the most at once since start or [`Writes::forget`].
    calls: Arc<AtomicUsize>,
    peak_calls: AtomicUsize,
    /// Write calls held until enough are in flight at once; `None` once met or given up.
    rendezvous: Mutex<Option<Rendezvous>>,
    /// Wakes the calls held when the rendezvous ends.
    met: Notify,
}

/// How many write calls in flight at once end a rendezvous, and how long after the first call held it ends anyway.
struct Rendezvous {
    calls: usize,
    within: Duration,
    /// When it ends anyway: set by the first call held.
    until: Option<Instant>,
}

#[derive(Default)]
struct LateWrites {
    rate: f64,
    delay: Duration,
}

/// An object a write updates: its id, or the key the client sent when that names no object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Target {
    object: Object,
    key: String,
}

impl Writes {
    pub(super) fn overlaps(&self) -> Vec<String> {
        lock(&self.overlaps).clone()
    }

    /// Forgets overlaps, the late-write count and the peak of calls at once; writes still in flight or pending
    /// stay so (they are state).
    pub(super) fn forget(&self) {
        lock(&self.overlaps).clear();
        self.injected.store(0, Ordering::SeqCst);
        self.peak_calls
            .store(self.calls.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// The most write calls in flight at once since start or [`Writes::forget`].
    pub(super) fn peak_calls(&self) -> usize {
        self.peak_calls.load(Ordering::SeqCst)
    }

    /// From now, each write call the gateway lets through waits, before its latency, until `calls` write calls
    /// are in flight at once, or until `within` has passed since the first call held; then the hold is over for
    /// every call, held or not.
    pub(super) fn hold_until(&self, calls: usize, within: Duration) {
        *lock(&self.rendezvous) = Some(Rendezvous {
            calls,
            within,
            until: None,
        });
    }

    /// Waits while a rendezvous holds write calls (see [`Writes::hold_until`]); this call is counted in flight
    /// already.
    async fn meet(&self) {
        loop {
            // Registered before the check, so an end between the check and the wait still wakes this call.
            let notified = self.met.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let until = {
                let mut rendezvous = lock(&self.rendezvous);
                let Some(held) = rendezvous.as_mut() else {
                    return;
                };
                let until = *held
                    .until
                    .get_or_insert_with(|| Instant::now() + held.within);
                if self.calls.load(Ordering::SeqCst) >= held.calls || Instant::now() >= until {
                    *rendezvous = None;
                    self.met.notify_waiters();
                    return;
                }
                until
            };
            let _ = tokio::time::timeout_at(until.into(), notified).await;
        }
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
    fn decide_late(&self) -> Option<(Duration, Counted)> {
        let late = lock(&self.late);
        if late.rate <= 0.0 || !rand::rng().random_bool(late.rate) {
            return None;
        }
        self.injected.fetch_add(1, Ordering::SeqCst);
        let (pending, _) = Counted::enter(&self.pending);
        Some((late.delay, pending))
    }

    /// Marks a write by `route` to each of `targets` (deduplicated) in flight, recording an overlap for each
    /// object another write is already in flight to, and counts the call in flight.
    fn track(&self, route: Route, targets: Vec<Target>) -> Tracked {
        let (call, now) = Counted::enter(&self.calls);
        self.peak_calls.fetch_max(now, Ordering::SeqCst);
        let mut in_flight = lock(&self.in_flight);
        let objects = targets
            .into_iter()
            .map(|target| {
                let count = in_flight.entry(target.clone()).or_insert(0);
                if *count > 0 {
                    lock(&self.overlaps).push(format!(
                        "{} to {} {} started while {count} other write(s) to it were in flight",
                        route.name(),
                        target.object,
                        target.key,
                    ));
                }
                *count += 1;
                InFlight {
                    in_flight: self.in_flight.clone(),
                    target,
                }
            })
            .collect();
        Tracked {
            _objects: objects,
            _call: call,
        }
    }
}

/// A write call in flight: its objects, and the call itself (counted whatever it updates), until dropped. Held for
/// the drops alone.
struct Tracked {
    _objects: Vec<InFlight>,
    _call: Counted,
}

/// One in a count (a write call in flight, a late write not landed yet) until dropped: when it has ended, or if
/// the runtime shuts down first, or the client hangs up (hyper drops the handler future).
struct Counted(Arc<AtomicUsize>);

impl Counted {
    /// Adds one to `count`: the guard, and the count with it.
    fn enter(count: &Arc<AtomicUsize>) -> (Self, usize) {
        let now = count.fetch_add(1, Ordering::SeqCst) + 1;
        (Self(count.clone()), now)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Decrements an object's in-flight count on drop, so a write abandoned by its client (hyper drops the handler
/// future on disconnect) stops counting as in flight.
struct InFlight {
    in_flight: Arc<Mutex<HashMap<Target, usize>>>,
    target: Target,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.in_flight);
        if let Some(count) = in_flight.get_mut(&self.target) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.remove(&self.target);
            }
        }
    }
}

/// A write as parsed on arrival; whether it applies (ids, validation) is decided when it lands.
enum Write {
    ContactPatch {
        key: String,
        by_email: bool,
        updates: Result<Updates, HsError>,
    },
    ContactBatch(Result<Vec<BatchInput>, HsError>),
    NoteCreate(Result<NoteInput, HsError>),
    NoteBatchCreate(Result<Vec<NoteInput>, HsError>),
    NotePatch {
        id: String,
        updates: Result<Updates, HsError>,
    },
    NoteBatch(Result<Vec<BatchInput>, HsError>),
}

/// One input of a batch update.
struct BatchInput {
    /// An object id, or a lowercased e-mail when `by_email` (contacts only).
    id: String,
    by_email: bool,
    updates: Updates,
}

impl Write {
    /// The objects this write updates, as in-flight keys: the object's id when the key resolves, so `/{id}` and
    /// `/{email}?idProperty=email` count as one contact.
    fn targets(&self, crm: &Crm) -> Vec<Target> {
        let contact = |id: &str, by_email: bool| Target {
            object: Object::Contact,
            key: crm
                .resolve(id, by_email)
                .map_or_else(|| id.to_owned(), |id| id.to_string()),
        };
        let note = |id: &str| Target {
            object: Object::Note,
            key: crm
                .notes
                .resolve(id)
                .map_or_else(|| id.to_owned(), |id| id.to_string()),
        };
        let mut targets: Vec<Target> = match self {
            Self::ContactPatch { key, by_email, .. } => vec![contact(key, *by_email)],
            Self::ContactBatch(Ok(inputs)) => {
                inputs.iter().map(|i| contact(&i.id, i.by_email)).collect()
            }
            Self::NotePatch { id, .. } => vec![note(id)],
            Self::NoteBatch(Ok(inputs)) => inputs.iter().map(|i| note(&i.id)).collect(),
            Self::ContactBatch(Err(_))
            | Self::NoteBatch(Err(_))
            | Self::NoteCreate(_)
            | Self::NoteBatchCreate(_) => Vec::new(),
        };
        targets.sort();
        targets.dedup();
        targets
    }

    fn apply(self, crm: &mut Crm) -> Outcome {
        match self {
            Self::ContactPatch {
                key,
                by_email,
                updates,
            } => {
                let updates = updates?;
                let id = crm.resolve(&key, by_email).ok_or_else(object_not_found)?;
                crm.validate(&updates)?;
                crm.check_rules(&updates)?;
                crm.check_email_change(id, &updates)?;
                let contact = crm.update(id, &updates).ok_or_else(object_not_found)?;
                Ok((StatusCode::OK, contact_json(&contact, None)))
            }
            Self::ContactBatch(inputs) => apply_contact_batch(&inputs?, crm),
            Self::NoteCreate(input) => {
                let note = crm
                    .create_notes(&[input?])?
                    .pop()
                    .ok_or_else(object_not_found)?;
                Ok((StatusCode::CREATED, crm.notes.json(&note, None)))
            }
            Self::NoteBatchCreate(inputs) => {
                let started_at = now_rfc3339();
                let notes = crm.create_notes(&inputs?)?;
                let results = notes.iter().map(|n| crm.notes.json(n, None)).collect();
                Ok((StatusCode::CREATED, batch_complete(started_at, results)))
            }
            Self::NotePatch { id, updates } => {
                let note = crm.update_note(&id, &updates?)?;
                Ok((StatusCode::OK, crm.notes.json(&note, None)))
            }
            Self::NoteBatch(inputs) => apply_note_batch(&inputs?, crm),
        }
    }
}

pub(super) async fn patch_contact(State(s): St, path: PathParam, req: Req) -> Response {
    const ROUTE: Route = Route::PatchContact;
    let Ok(Path(key)) = path else {
        return unroutable(&s, ROUTE, &req).await;
    };
    let by_email = req.query().get("idProperty").is_some_and(|p| p == "email");
    let write = Write::ContactPatch {
        key,
        by_email,
        updates: properties_of(&req.body),
    };
    serve(&s, ROUTE, &req, write).await
}

pub(super) async fn batch_update(State(s): St, req: Req) -> Response {
    let write = Write::ContactBatch(parse_batch(&req.body, Object::Contact));
    serve(&s, Route::BatchUpdate, &req, write).await
}

pub(super) async fn create_note(State(s): St, req: Req) -> Response {
    let input = parse_json(&req.body).and_then(|body| note_input(&body, ""));
    serve(&s, Route::NotesCreate, &req, Write::NoteCreate(input)).await
}

pub(super) async fn patch_note(State(s): St, path: PathParam, req: Req) -> Response {
    const ROUTE: Route = Route::NotesUpdate;
    let Ok(Path(id)) = path else {
        return unroutable(&s, ROUTE, &req).await;
    };
    let write = Write::NotePatch {
        id,
        updates: properties_of(&req.body),
    };
    serve(&s, ROUTE, &req, write).await
}

pub(super) async fn batch_create_notes(State(s): St, req: Req) -> Response {
    let inputs = parse_json(&req.body).and_then(|body| {
        batch_inputs(&body)?
            .iter()
            .enumerate()
            .map(|(index, input)| note_input(input, &format!("inputs[{index}].")))
            .collect()
    });
    serve(
        &s,
        Route::NotesBatchCreate,
        &req,
        Write::NoteBatchCreate(inputs),
    )
    .await
}

pub(super) async fn batch_update_notes(State(s): St, req: Req) -> Response {
    let write = Write::NoteBatch(parse_batch(&req.body, Object::Note));
    serve(&s, Route::NotesBatchUpdate, &req, write).await
}

/// A path axum could not extract (not UTF-8): 404, recorded but not admitted.
async fn unroutable(s: &HubState, route: Route, req: &Req) -> Response {
    s.recorder
        .begin(route.name(), req)
        .finish(object_not_found().into_response())
        .await
}

/// The `properties` of a single-object write.
fn properties_of(body: &[u8]) -> Result<Updates, HsError> {
    parse_json(body)
        .and_then(|body| updates_from(body.get("properties").unwrap_or(&Value::Null), false))
}

/// Records the call and runs the write.
async fn serve(s: &Arc<HubState>, route: Route, req: &Req, write: Write) -> Response {
    let call = s.recorder.begin(route.name(), req);
    call.finish(run(s, route, req, write).await).await
}

/// Admission, in-flight tracking, latency, then the write — now, or (a late write) after its 502.
async fn run(s: &Arc<HubState>, route: Route, req: &Req, write: Write) -> Response {
    let gate = s.admit(route, req);
    // Only a request the gateway let through reaches the CRM, so only it can race another write.
    let in_flight = if gate.admitted() {
        let targets = write.targets(&lock(&s.crm));
        Some(s.writes.track(route, targets))
    } else {
        None
    };
    if in_flight.is_some() {
        s.writes.meet().await;
    }
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
/// the request already), keeping its objects in flight until it has landed.
fn land_later(
    s: Arc<HubState>,
    write: Write,
    in_flight: Option<Tracked>,
    pending: Counted,
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

/// Checks a batch update's shape; its ids and property values are checked when it lands. Only contacts can be
/// named by e-mail (`idProperty: email`).
fn parse_batch(body: &[u8], object: Object) -> Result<Vec<BatchInput>, HsError> {
    let body = parse_json(body)?;
    let inputs = batch_inputs(&body)?;
    let mut batch: Vec<BatchInput> = Vec::with_capacity(inputs.len());
    let mut duplicates = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let id = input_id(input, index)?;
        let by_email = by_email(
            input.get("idProperty"),
            object,
            &format!("inputs[{index}]."),
        )?;
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

/// A batch update split by whether its ids name an object.
struct Split<'a> {
    /// The object each input names, and the input.
    known: Vec<(u64, &'a BatchInput)>,
    /// The ids as sent.
    unknown: Vec<String>,
}

/// Splits a batch update into the objects its ids name and the ids that name none. The same object twice (a
/// contact by its id and by its e-mail) refuses the batch, as HubSpot does.
fn split_known(
    inputs: &[BatchInput],
    resolve: impl Fn(&BatchInput) -> Option<u64>,
) -> Result<Split<'_>, HsError> {
    let mut known: Vec<(u64, &BatchInput)> = Vec::new();
    let mut unknown = Vec::new();
    let mut duplicates = Vec::new();
    for input in inputs {
        match resolve(input) {
            Some(id) if known.iter().any(|(k, _)| *k == id) => duplicates.push(id.to_string()),
            Some(id) => known.push((id, input)),
            None => unknown.push(input.id.clone()),
        }
    }
    if duplicates.is_empty() {
        Ok(Split { known, unknown })
    } else {
        Err(duplicate_ids(&duplicates))
    }
}

/// All or nothing for invalid values (400, nothing written); per input for unknown ids and for values a validation
/// rule of the portal refuses (an `errors` entry each, the rest written).
fn apply_contact_batch(inputs: &[BatchInput], crm: &mut Crm) -> Outcome {
    let started_at = now_rfc3339();
    let problems: Vec<Value> = inputs
        .iter()
        .flat_map(|input| crm.problems(&input.updates))
        .collect();
    if !problems.is_empty() {
        return Err(property_errors(problems));
    }
    let Split { known, unknown } =
        split_known(inputs, |input| crm.resolve(&input.id, input.by_email))?;
    let mut errors: Vec<Value> = unknown_ids(unknown, Object::Contact).into_iter().collect();
    let mut accepted: Vec<(u64, &Updates)> = Vec::with_capacity(known.len());
    for (id, input) in known {
        let violations = crm.violations(&input.updates);
        if violations.is_empty() {
            accepted.push((id, &input.updates));
        } else {
            errors.push(refused_input(&input.id, &violations));
        }
    }
    let mut claimed = HashSet::new();
    for (id, updates) in &accepted {
        crm.check_email_change(*id, updates)?;
        if let Some(Some(email)) = new_email(updates) {
            if !claimed.insert(email.clone()) {
                return Err(validation(&format!(
                    "Two inputs set the e-mail {email}; e-mails are unique"
                )));
            }
        }
    }
    let results: Vec<Value> = accepted
        .iter()
        .filter_map(|(id, updates)| crm.update(*id, updates))
        .map(|contact| contact_json(&contact, None))
        .collect();
    Ok(batch_answer(started_at, results, errors))
}

/// As [`apply_contact_batch`], for notes.
fn apply_note_batch(inputs: &[BatchInput], crm: &mut Crm) -> Outcome {
    let started_at = now_rfc3339();
    crm.notes
        .validate(inputs.iter().map(|input| &input.updates))?;
    let Split { known, unknown } = split_known(inputs, |input| crm.notes.resolve(&input.id))?;
    let notes: Vec<_> = known
        .iter()
        .filter_map(|(id, input)| crm.notes.update(*id, &input.updates))
        .collect();
    let results = notes.iter().map(|n| crm.notes.json(n, None)).collect();
    let errors = unknown_ids(unknown, Object::Note).into_iter().collect();
    Ok(batch_answer(started_at, results, errors))
}
