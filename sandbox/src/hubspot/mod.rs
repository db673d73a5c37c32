//! A local double of HubSpot's CRM contacts, notes, contact properties and contact → note associations (the subset
//! this project calls), at the date-based API version [`API_VERSION`]: its paths and no others (the retired v3 and v4
//! paths answer 404, as any unknown route does), with the request and answer bodies of that version's published
//! documents.
//!
//! It reproduces what the app's correctness depends on, including the unfriendly parts:
//! * bearer-token auth (API keys refused), the app's scopes (`scopes.rs`: which route needs which) and HubSpot's
//!   error shapes;
//! * per-app rate limits (`limits.rs`): a rolling ten-second window and a daily cap that count every request,
//!   refused ones too, with HubSpot's headers and 429 bodies;
//! * contact create with e-mails unique (409 `CONFLICT` naming the existing id, like HubSpot) and batch upsert by
//!   email, both atomic under concurrency; batch update with per-input `OBJECT_NOT_FOUND`; a record of every
//!   property value written to a contact, so a test can prove one was left untouched;
//!   the 65,536-character property limit and unknown-property errors (`crm.rs`);
//! * the portal's validation rules on contact properties (`rules.rs`), which refuse a single write whole and only
//!   the offending inputs of a batch write;
//! * notes on contacts' timelines (`notes.rs`): `hs_timestamp` required, the same length limit, batch create all
//!   or nothing (201), batch update and read per input;
//! * a contact's notes read back through the associations batch read, paged per input;
//! * because HubSpot has no conditional writes, detection of two writes to one contact or note in flight at once,
//!   and writes that answer 502 but land later (`writes.rs`);
//! * merges that give the merged contact a new id and keep both contacts' notes, and deletions.
//!
//! A batch answer with per-input `errors` is a 200, as the 2026-09 documents list it (see
//! `crm::PARTIAL_BATCH_STATUS`). Requests are held to the fields those documents mark required (`associations` on a
//! create, `properties` and `propertiesWithHistory` on a batch read, `id` and `properties` on a batch input), which
//! HubSpot itself may let pass: a client that drifts from the documents finds out here, not in production.
//!
//! Every request goes through one pipeline: record the call, admit it (`HubState::admit`: auth, then the limiter,
//! then the scopes, then fault injection), sleep the configured latency, run the route's logic, and stamp the
//! rate-limit headers.

mod crm;
mod errors;
mod limits;
mod notes;
mod properties;
mod routes;
mod rules;
mod scopes;
mod writes;

pub use crate::support::RecordedCall;
pub use crm::{Contact, PropertyWrite};
pub use notes::Note;
pub use rules::ValidationRule;

use crate::double::Double;
use crate::faults::Faults;
use crate::support::{any_local_port, lock, Recorder, Req};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crm::{property_definition, Crm};
use errors::{error, injected, rate_limited, HsError};
use http::{HeaderValue, StatusCode};
use limits::Limits;
use scopes::{Grant, Route};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use writes::Writes;

/// HubSpot's limit for a string property value, in characters (UTF-16 code units, as the JVM counts them).
pub const MAX_PROPERTY_CHARS: usize = 65_536;
/// HubSpot's limit on inputs per batch call.
pub const MAX_BATCH_INPUTS: usize = 100;
/// The most notes one input of an associations batch read gets per page. HubSpot chooses the page size (the request
/// has no `limit`); this is the double's, the most a v4 listing gave.
pub const ASSOCIATIONS_PER_PAGE: usize = 500;
/// The date-based API version the double serves: every route is under `/crm/objects/{API_VERSION}/`,
/// `/crm/properties/{API_VERSION}/` or `/crm/associations/{API_VERSION}/`.
pub const API_VERSION: &str = "2026-09";

/// A running HubSpot double on a loopback port; dropping it stops the server. Its routes, as
/// [`Double::call_count`] names them: `"upsert"`, `"create_contact"`, `"get_contact"`, `"list_contacts"`,
/// `"patch_contact"`, `"batch_update"`, `"batch_read"`, `"create_property"`, `"get_property"`, `"notes_create"`,
/// `"notes_update"`, `"notes_get"`, `"notes_batch_create"`, `"notes_batch_update"`, `"notes_batch_read"`,
/// `"contact_notes"` (the contact → note associations batch read), and `"not_found"`, `"method_not_allowed"` for
/// the rest.
pub type HubSpotDouble = Double<HubState>;

impl HubSpotDouble {
    /// Starts on `127.0.0.1` with an OS-chosen port; requests must carry `Authorization: Bearer <access_token>`.
    pub async fn start(access_token: &str) -> std::io::Result<Self> {
        Self::start_on(any_local_port(), access_token).await
    }

    /// Starts on a fixed address (the dev server uses a well-known port).
    pub async fn start_on(addr: SocketAddr, access_token: &str) -> std::io::Result<Self> {
        let state = Arc::new(HubState::new(access_token));
        let router = build_router(state.clone());
        let (recorder, faults) = (state.recorder.clone(), state.faults.clone());
        Double::serve(addr, state, recorder, faults, router, "hubspot").await
    }

    /// All contacts, sorted by (numeric) id.
    pub fn contacts(&self) -> Vec<Contact> {
        lock(&self.state.crm).contacts.values().cloned().collect()
    }

    pub fn contact(&self, id: &str) -> Option<Contact> {
        lock(&self.state.crm).get(id).cloned()
    }

    /// Every property value written to this contact through the API (create, upsert, PATCH, batch update) or by
    /// [`Self::seed_contact`], oldest first, under the id it was written to.
    pub fn property_writes(&self, contact_id: &str) -> Vec<PropertyWrite> {
        lock(&self.state.crm)
            .written
            .iter()
            .filter(|w| w.contact_id == contact_id)
            .cloned()
            .collect()
    }

    /// Looks a contact up by email, case-insensitively (as HubSpot does).
    pub fn contact_by_email(&self, email: &str) -> Option<Contact> {
        let crm = lock(&self.state.crm);
        crm.resolve(email, true)
            .and_then(|id| crm.contacts.get(&id).cloned())
    }

    /// One description per violation: a write (PATCH or batch-update input) to a contact or note that started while
    /// another write to it was in flight — including a late write that answered 502 but has not landed yet. Each
    /// names the route, the object type and its id (`notes_update to note 5000001 started while ...`).
    pub fn overlapping_patches(&self) -> Vec<String> {
        self.state.writes.overlaps()
    }

    /// The same routes, for mounting in a dev server; shares this double's state.
    pub fn router(&self) -> Router {
        build_router(self.state.clone())
    }

    /// Defines a contact property (as if created in the HubSpot UI), so tests can skip the create call.
    pub fn define_property(&self, name: &str) {
        lock(&self.state.crm)
            .properties
            .entry(name.to_owned())
            .or_insert_with(|| {
                property_definition(name, name, "string", "textarea", "contactinformation")
            });
    }

    /// Defines a custom note property, so notes may carry it (`hs_note_body`, `hs_timestamp`, `hubspot_owner_id`
    /// and `hs_attachment_ids` always exist).
    pub fn define_note_property(&self, name: &str) {
        lock(&self.state.crm).notes.define_property(name);
    }

    /// All notes, sorted by (numeric) id.
    pub fn notes(&self) -> Vec<Note> {
        lock(&self.state.crm).notes.all()
    }

    pub fn note(&self, id: &str) -> Option<Note> {
        lock(&self.state.crm).notes.get(id)
    }

    /// The notes on a contact's timeline, sorted by `hs_timestamp` (stored as ISO 8601 UTC), then id; empty for an
    /// unknown contact.
    pub fn notes_of_contact(&self, contact_id: &str) -> Vec<Note> {
        let crm = lock(&self.state.crm);
        crm.resolve(contact_id, false)
            .map(|id| crm.notes.timeline(id))
            .unwrap_or_default()
    }

    /// Sets (`Some`) or removes (`None`) the portal's validation rule on contact property `property`, as an admin
    /// would in HubSpot's settings. From then on a create or PATCH whose value breaks it is refused whole (400
    /// `VALIDATION_ERROR`), and a batch update or upsert refuses just the inputs that break it, each with an `errors`
    /// entry naming its id, and writes the rest (see `rules.rs`). Writes already in flight are checked when they
    /// land.
    pub fn set_validation_rule(&self, property: &str, rule: Option<ValidationRule>) {
        lock(&self.state.crm).rules.set(property, rule);
    }

    /// Grants the app only `scopes`: a call to a route that needs one it lacks answers HubSpot's 403
    /// `MISSING_SCOPES` (after the limiter has counted it). `None` (default) grants every scope.
    pub fn set_scopes(&self, scopes: Option<Vec<String>>) {
        self.state.scopes.set(scopes);
    }

    /// Creates or updates a contact directly (test setup without HTTP traffic); properties are not validated.
    pub fn seed_contact(&self, email: &str, properties: &[(&str, &str)]) -> Contact {
        let mut crm = lock(&self.state.crm);
        let values = properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
            .collect();
        crm.upsert_by_email(&email.trim().to_lowercase(), &values).0
    }

    /// Merges two contacts as HubSpot has since 2025: a new contact (new id) holds the primary's values, with
    /// the secondary's filling properties the primary lacks; both e-mails resolve to it, and both old ids are gone
    /// (404, and unknown in batch updates). The timeline is kept: both contacts' notes are the new contact's.
    /// Returns the new id; `None` if either id is unknown or they are equal.
    pub fn merge_contacts(&self, primary_id: &str, secondary_id: &str) -> Option<String> {
        lock(&self.state.crm).merge(primary_id, secondary_id)
    }

    /// Deletes a contact: its id answers 404 and its e-mail no longer resolves. Its notes stay, no longer
    /// associated with it. `false` if there was none.
    pub fn delete_contact(&self, id: &str) -> bool {
        lock(&self.state.crm).delete(id)
    }

    /// Forgets recorded calls, overlap violations and the counters below (peaks, refusals, late writes injected).
    /// The limiter keeps its window and daily count, and pending late writes still land.
    pub fn clear_calls(&self) {
        self.state.recorder.clear();
        self.state.writes.forget();
        lock(&self.state.limits).forget();
    }

    /// Enforces HubSpot's rolling limit (e.g. `Some(100)` per 10 s for Free/Starter apps) and sends its headers on
    /// every answer; `None` (default) = an unlimited account, no headers. Setting it starts an empty window.
    pub fn set_rate_limit(&self, max_per_ten_seconds: Option<u32>) {
        lock(&self.state.limits).set_rolling(max_per_ten_seconds);
    }

    /// Enforces a daily cap counted from now (`X-HubSpot-RateLimit-Daily[-Remaining]` on every answer while set);
    /// over it, a 429 with `policyName` `DAILY`. `None` (default) = off.
    pub fn set_daily_limit(&self, max_per_day: Option<u32>) {
        lock(&self.state.limits).set_daily(max_per_day);
    }

    /// The most authenticated requests (refused ones included) that arrived within any rolling 10 s window since
    /// start or [`Self::clear_calls`], whether a limit is set or not: proves a client paced itself.
    pub fn peak_requests_in_window(&self) -> usize {
        lock(&self.state.limits).peak()
    }

    /// The most write calls (of any route, to any objects) the gateway let through that were in flight at once,
    /// since start or [`Self::clear_calls`]: proves a client wrote in parallel, or never did. A late write counts
    /// until it has landed.
    pub fn peak_writes_in_flight(&self) -> usize {
        self.state.writes.peak_calls()
    }

    /// From now, each write call the gateway lets through waits (before its latency) until `calls` write calls are
    /// in flight at once, or until `within` has passed since the first call held, whichever comes first; then the
    /// hold is over for good. A client's parallel paths meet at it however long each takes to reach its call
    /// (within `within` of the first; keep it under the client's timeout), so [`Self::peak_writes_in_flight`]
    /// proves they *can* write at once, on a fast machine or a slow one; a client that never writes in parallel
    /// loses `within` once, and its peak stays 1.
    pub fn hold_writes_until_in_flight(&self, calls: usize, within: Duration) {
        self.state.writes.hold_until(calls, within);
    }

    /// Requests refused by the rolling or daily limit (not by injected faults) since start or `clear_calls`.
    pub fn rate_limited(&self) -> usize {
        lock(&self.state.limits).refused()
    }

    /// Each write (`patch_contact`, `batch_update`, `notes_create`, `notes_update`, `notes_batch_create`,
    /// `notes_batch_update`) the gateway lets through is, with probability `rate`, answered 502 after the usual
    /// latency yet applied `delay` later anyway (ids and values checked then). Until it has landed the contacts or
    /// notes it updates count as in flight, so writing them again before then shows in
    /// [`Self::overlapping_patches`]. `rate` 0 turns it off.
    pub fn set_late_writes(&self, rate: f64, delay: Duration) {
        self.state.writes.set_late(rate, delay);
    }

    /// Late writes injected since start or `clear_calls`.
    pub fn late_writes(&self) -> usize {
        self.state.writes.late_injected()
    }

    /// Late writes answered 502 that have not landed yet.
    pub fn late_writes_pending(&self) -> usize {
        self.state.writes.late_pending()
    }
}

/// The HubSpot double's state: opaque, reached through [`HubSpotDouble`]'s methods.
pub struct HubState {
    token: String,
    faults: Faults,
    recorder: Recorder,
    crm: Mutex<Crm>,
    limits: Mutex<Limits>,
    scopes: Grant,
    writes: Writes,
}

impl HubState {
    fn new(token: &str) -> Self {
        Self {
            token: token.to_owned(),
            faults: Faults::default(),
            recorder: Recorder::default(),
            crm: Mutex::new(Crm::new()),
            limits: Mutex::default(),
            scopes: Grant::default(),
            writes: Writes::default(),
        }
    }

    fn authenticate(&self, req: &Req) -> Result<(), HsError> {
        if req.query().contains_key("hapikey") {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "INVALID_AUTHENTICATION",
                "API keys (hapikey) were sunset on November 30, 2022. Use a private app access token.",
            ));
        }
        let token = req
            .header("authorization")
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        if token != Some(self.token.as_str()) {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find \
                 more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            ));
        }
        Ok(())
    }

    /// Auth, then the limiter (which counts the request whatever happens next), then the app's scopes, then fault
    /// injection. A 401 is not counted: a request without the app's token is not the app's. The limiter and the
    /// scope check stand in front of the backend, so a request they refuse never consumes a scripted fault.
    fn admit(&self, route: Route, req: &Req) -> Gate {
        if let Err(refusal) = self.authenticate(req) {
            return Gate {
                refusal: Some(refusal),
                headers: Vec::new(),
            };
        }
        let admission = lock(&self.limits).admit(Instant::now());
        let refusal = match admission.refused {
            Some(policy) => Some(rate_limited(policy)),
            None => match self.scopes.check(route) {
                Err(missing) => Some(missing),
                Ok(()) => self.faults.decide(route.name()).map(injected),
            },
        };
        Gate {
            refusal,
            headers: admission.headers,
        }
    }

    /// For unknown routes and methods, which answer even without a token (as before): counted and limited only
    /// when the app's token is present; never faulted.
    fn admit_unrouted(&self, req: &Req) -> Gate {
        if self.authenticate(req).is_err() {
            return Gate {
                refusal: None,
                headers: Vec::new(),
            };
        }
        let admission = lock(&self.limits).admit(Instant::now());
        Gate {
            refusal: admission.refused.map(rate_limited),
            headers: admission.headers,
        }
    }
}

/// A request's admission: why it is refused, if it is, and the rate-limit headers its answer carries either way.
struct Gate {
    refusal: Option<HsError>,
    headers: Vec<(&'static str, u64)>,
}

impl Gate {
    fn admitted(&self) -> bool {
        self.refusal.is_none()
    }

    /// The refusal if there is one, else what `logic` decides; stamped with the rate-limit headers.
    fn answer(self, logic: impl FnOnce() -> Outcome) -> Response {
        let outcome = match self.refusal {
            Some(refusal) => Err(refusal),
            None => logic(),
        };
        let mut response = match outcome {
            Ok((status, body)) => (status, Json(body)).into_response(),
            Err(e) => e.into_response(),
        };
        // The real counts replace the fixed headers an injected 429 carries.
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            headers.insert(name, HeaderValue::from(value));
        }
        response
    }
}

fn build_router(state: Arc<HubState>) -> Router {
    let contacts = format!("/crm/objects/{API_VERSION}/contacts");
    let notes = format!("/crm/objects/{API_VERSION}/notes");
    let properties = format!("/crm/properties/{API_VERSION}/contacts");
    let associations = format!("/crm/associations/{API_VERSION}/contacts/notes");
    Router::new()
        .route(&format!("{contacts}/batch/upsert"), post(routes::upsert))
        .route(
            &format!("{contacts}/batch/update"),
            post(writes::batch_update),
        )
        .route(
            &contacts,
            get(routes::list_contacts).post(routes::create_contact),
        )
        .route(
            &format!("{contacts}/{{id}}"),
            get(routes::get_contact).patch(writes::patch_contact),
        )
        .route(
            &format!("{contacts}/batch/read"),
            post(routes::batch_read_contacts),
        )
        .route(&properties, post(routes::create_property))
        .route(&format!("{properties}/{{name}}"), get(routes::get_property))
        .route(&notes, post(writes::create_note))
        .route(
            &format!("{notes}/{{id}}"),
            get(routes::get_note).patch(writes::patch_note),
        )
        .route(
            &format!("{notes}/batch/create"),
            post(writes::batch_create_notes),
        )
        .route(
            &format!("{notes}/batch/update"),
            post(writes::batch_update_notes),
        )
        .route(
            &format!("{notes}/batch/read"),
            post(routes::batch_read_notes),
        )
        .route(
            &format!("{associations}/batch/read"),
            post(routes::contact_notes),
        )
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
}

type St = State<Arc<HubState>>;
type PathParam = Result<Path<String>, PathRejection>;
type Outcome = Result<(StatusCode, Value), HsError>;

/// Runs a handler body between call recording, admission, latency (every answer pays it) and rendering.
async fn guarded(
    s: &HubState,
    route: Route,
    req: &Req,
    logic: impl FnOnce() -> Outcome,
) -> Response {
    let call = s.recorder.begin(route.name(), req);
    let gate = s.admit(route, req);
    s.faults.delay().await;
    call.finish(gate.answer(logic)).await
}
