//! A local double of the HubSpot CRM v3 contacts API (the subset this project calls).
//!
//! It reproduces what the app's correctness depends on: bearer-token auth (API keys refused), batch upsert by
//! email that is atomic under concurrency, the 65,536-character property limit, unknown-property errors,
//! HubSpot's error and 429 shapes, and — because HubSpot has no conditional writes — detection of two PATCHes
//! to one contact in flight at the same time (the lost-update race the app's per-contact lock must prevent).

use crate::faults::Faults;
pub use crate::support::RecordedCall;
use crate::support::{any_local_port, lock, now_rfc3339, uuid, Recorder, Req, Server};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// HubSpot's limit for a string property value, in characters (UTF-16 code units, as the JVM counts them).
pub const MAX_PROPERTY_CHARS: usize = 65_536;
/// HubSpot's limit on inputs per batch call.
pub const MAX_BATCH_INPUTS: usize = 100;
const FIRST_CONTACT_ID: u64 = 1001;
const DEFAULT_PROPERTIES: [&str; 3] = ["email", "firstname", "lastname"];

/// A contact as stored by the double.
#[derive(Clone, Debug, Serialize)]
pub struct Contact {
    pub id: String,
    pub properties: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A running HubSpot double on a loopback port; dropping it stops the server.
pub struct HubSpotDouble {
    state: Arc<HubState>,
    server: Server,
}

impl HubSpotDouble {
    /// Starts on `127.0.0.1` with an OS-chosen port; requests must carry `Authorization: Bearer <access_token>`.
    pub async fn start(access_token: &str) -> std::io::Result<Self> {
        Self::start_on(any_local_port(), access_token).await
    }

    /// Starts on a fixed address (the dev server uses a well-known port).
    pub async fn start_on(addr: SocketAddr, access_token: &str) -> std::io::Result<Self> {
        let state = Arc::new(HubState::new(access_token));
        let server = Server::start(addr, build_router(state.clone()), "hubspot").await?;
        Ok(Self { state, server })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Every request, in arrival order (in-flight ones have `status` 0).
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.state.recorder.calls()
    }

    /// Requests to one route (`"upsert"`, `"patch_contact"`, `"get_contact"`, `"create_property"`, ...).
    pub fn call_count(&self, route: &str) -> usize {
        self.state.recorder.count(route)
    }

    /// All contacts, sorted by (numeric) id.
    pub fn contacts(&self) -> Vec<Contact> {
        lock(&self.state.crm).contacts.values().cloned().collect()
    }

    pub fn contact(&self, id: &str) -> Option<Contact> {
        let crm = lock(&self.state.crm);
        id.parse()
            .ok()
            .and_then(|id| crm.contacts.get(&id).cloned())
    }

    /// Looks a contact up by email, case-insensitively (as HubSpot does).
    pub fn contact_by_email(&self, email: &str) -> Option<Contact> {
        let crm = lock(&self.state.crm);
        crm.by_email
            .get(&email.trim().to_lowercase())
            .and_then(|id| crm.contacts.get(id).cloned())
    }

    /// One description per violation: a PATCH to a contact that started while another PATCH to it was in flight.
    pub fn overlapping_patches(&self) -> Vec<String> {
        lock(&self.state.overlaps).clone()
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

    /// Creates or updates a contact directly (test setup without HTTP traffic); properties are not validated.
    pub fn seed_contact(&self, email: &str, properties: &[(&str, &str)]) -> Contact {
        let mut crm = lock(&self.state.crm);
        let values = properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
            .collect();
        crm.upsert_by_email(&email.trim().to_lowercase(), &values).0
    }

    /// Forgets recorded calls and overlap violations (e.g. after test setup).
    pub fn clear_calls(&self) {
        self.state.recorder.clear();
        lock(&self.state.overlaps).clear();
    }

    /// Enforces HubSpot's rolling limit (e.g. `Some(100)` per 10 s for Free/Starter apps); `None` (default) = off.
    pub fn set_rate_limit(&self, max_per_ten_seconds: Option<u32>) {
        let mut limit = lock(&self.state.rate_limit);
        limit.max = max_per_ten_seconds;
        limit.window.clear();
    }
}

struct HubState {
    token: String,
    faults: Faults,
    recorder: Recorder,
    crm: Mutex<Crm>,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    overlaps: Arc<Mutex<Vec<String>>>,
    rate_limit: Mutex<RateLimit>,
}

#[derive(Default)]
struct RateLimit {
    max: Option<u32>,
    window: VecDeque<Instant>,
}

const RATE_LIMIT_WINDOW: Duration = Duration::from_secs(10);

impl HubState {
    fn new(token: &str) -> Self {
        let properties = DEFAULT_PROPERTIES
            .iter()
            .map(|name| {
                let def = property_definition(name, name, "string", "text", "contactinformation");
                ((*name).to_owned(), def)
            })
            .collect();
        Self {
            token: token.to_owned(),
            faults: Faults::default(),
            recorder: Recorder::default(),
            crm: Mutex::new(Crm {
                contacts: BTreeMap::new(),
                by_email: HashMap::new(),
                next_id: FIRST_CONTACT_ID,
                properties,
            }),
            in_flight: Arc::default(),
            overlaps: Arc::default(),
            rate_limit: Mutex::default(),
        }
    }

    /// Auth, then fault decision (and the optional real rate limit). Latency is applied later by [`Self::settle`].
    fn check(&self, route: &str, req: &Req) -> Result<Option<u16>, HsError> {
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
        Ok(self
            .faults
            .decide(route)
            .or_else(|| self.rate_limited().then_some(429)))
    }

    fn rate_limited(&self) -> bool {
        let mut limit = lock(&self.rate_limit);
        let Some(max) = limit.max else { return false };
        let now = Instant::now();
        while limit
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= RATE_LIMIT_WINDOW)
        {
            limit.window.pop_front();
        }
        if limit.window.len() >= max as usize {
            return true;
        }
        limit.window.push_back(now);
        false
    }

    /// Sleeps the configured latency (every response pays it), then turns a refusal into its response.
    async fn settle(&self, verdict: Result<Option<u16>, HsError>) -> Result<(), HsError> {
        self.faults.delay().await;
        match verdict? {
            Some(status) => Err(injected(status)),
            None => Ok(()),
        }
    }

    /// Marks a PATCH to `key` in flight, recording a violation if another one already is.
    fn track_patch(&self, key: String) -> PatchGuard {
        let mut in_flight = lock(&self.in_flight);
        let count = in_flight.entry(key.clone()).or_insert(0);
        if *count > 0 {
            lock(&self.overlaps).push(format!(
                "PATCH to contact {key} started while {count} other PATCH(es) to it were in flight"
            ));
        }
        *count += 1;
        PatchGuard {
            in_flight: self.in_flight.clone(),
            key,
        }
    }
}

/// Decrements the per-contact in-flight count on drop, so a PATCH abandoned by its client (hyper drops the
/// handler future on disconnect) stops counting as in flight.
struct PatchGuard {
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for PatchGuard {
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

struct Crm {
    contacts: BTreeMap<u64, Contact>,
    by_email: HashMap<String, u64>,
    next_id: u64,
    properties: BTreeMap<String, Value>,
}

/// Property updates: `None` clears the value (JSON `null` or `""`).
type Updates = BTreeMap<String, Option<String>>;

impl Crm {
    /// Creates the contact for `email` (already lowercased) or updates it; returns it and whether it is new.
    fn upsert_by_email(&mut self, email: &str, updates: &Updates) -> (Contact, bool) {
        let now = now_rfc3339();
        let (id, new) = match self.by_email.get(email) {
            Some(&id) => (id, false),
            None => {
                let id = self.next_id;
                self.next_id += 1;
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
        (contact.clone(), new)
    }

    /// Resolves a path id: a numeric contact id, or an email when `idProperty=email`.
    fn resolve(&self, key: &str, by_email: bool) -> Option<u64> {
        if by_email {
            self.by_email.get(&key.trim().to_lowercase()).copied()
        } else {
            key.parse().ok().filter(|id| self.contacts.contains_key(id))
        }
    }

    /// Real HubSpot validates every value and reports all problems at once.
    fn validate(&self, updates: &Updates) -> Result<(), HsError> {
        let mut problems = Vec::new();
        for (name, value) in updates {
            if !self.properties.contains_key(name) {
                problems.push(problem(
                    name,
                    "PROPERTY_DOESNT_EXIST",
                    format!("Property \"{name}\" does not exist"),
                ));
            } else if let Some(value) = value {
                let len = value.encode_utf16().count();
                if len > MAX_PROPERTY_CHARS {
                    problems.push(problem(
                        name,
                        "INVALID_LENGTH",
                        format!("Property \"{name}\" has a value of {len} characters; the limit is {MAX_PROPERTY_CHARS}"),
                    ));
                }
                if name == "email" && !value.is_empty() && !valid_email(value) {
                    problems.push(problem(
                        name,
                        "INVALID_EMAIL",
                        format!("Email address {value} is invalid"),
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(property_errors(problems))
        }
    }

    /// Keeps the email index in step with a write that changes `email`; refuses to steal another contact's.
    fn reindex_email(&mut self, id: u64, updates: &Updates) -> Result<(), HsError> {
        let Some(new_email) = updates.get("email") else {
            return Ok(());
        };
        let new_email = new_email.as_deref().map(|e| e.trim().to_lowercase());
        if let Some(email) = &new_email {
            if let Some(&other) = self.by_email.get(email) {
                if other != id {
                    return Err(error(
                        StatusCode::CONFLICT,
                        "CONFLICT",
                        &format!("Contact already exists. Existing ID: {other}"),
                    ));
                }
            }
        }
        self.by_email.retain(|_, v| *v != id);
        if let Some(email) = new_email {
            self.by_email.insert(email, id);
        }
        Ok(())
    }
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

fn valid_email(email: &str) -> bool {
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

fn build_router(state: Arc<HubState>) -> Router {
    Router::new()
        .route("/crm/v3/objects/contacts/batch/upsert", post(upsert))
        .route(
            "/crm/v3/objects/contacts",
            get(list_contacts).post(create_contact),
        )
        .route(
            "/crm/v3/objects/contacts/{id}",
            get(get_contact).patch(patch_contact),
        )
        .route("/crm/v3/properties/contacts", post(create_property))
        .route("/crm/v3/properties/contacts/{name}", get(get_property))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

type St = State<Arc<HubState>>;
type PathParam = Result<Path<String>, PathRejection>;
type Outcome = Result<(StatusCode, Value), HsError>;

/// Runs a handler body between call recording, auth/faults/latency, and rendering.
async fn guarded(
    s: &HubState,
    route: &'static str,
    req: &Req,
    logic: impl FnOnce() -> Outcome,
) -> Response {
    let call = s.recorder.begin(route, req);
    let verdict = s.check(route, req);
    let outcome = match s.settle(verdict).await {
        Ok(()) => logic(),
        Err(e) => Err(e),
    };
    call.finish(render(outcome))
}

fn render(outcome: Outcome) -> Response {
    match outcome {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn upsert(State(s): St, req: Req) -> Response {
    guarded(&s, "upsert", &req, || do_upsert(&s, &req)).await
}

fn do_upsert(s: &HubState, req: &Req) -> Outcome {
    let body = parse_json(req)?;
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
    let body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": started_at,
        "completedAt": now_rfc3339(),
    });
    Ok((StatusCode::OK, body))
}

async fn create_contact(State(s): St, req: Req) -> Response {
    guarded(&s, "create_contact", &req, || {
        let body = parse_json(&req)?;
        let updates = updates_from(body.get("properties").unwrap_or(&Value::Null), false)?;
        let mut crm = lock(&s.crm);
        crm.validate(&updates)?;
        let email = updates
            .get("email")
            .cloned()
            .flatten()
            .map(|e| e.trim().to_lowercase());
        if let Some(existing) = email.as_ref().and_then(|e| crm.by_email.get(e)) {
            return Err(error(
                StatusCode::CONFLICT,
                "CONFLICT",
                &format!("Contact already exists. Existing ID: {existing}"),
            ));
        }
        let now = now_rfc3339();
        let id = crm.next_id;
        crm.next_id += 1;
        let mut contact = Contact {
            id: id.to_string(),
            properties: BTreeMap::new(),
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        apply(&mut contact, &updates, &now);
        if let Some(email) = email {
            crm.by_email.insert(email, id);
        }
        crm.contacts.insert(id, contact.clone());
        Ok((StatusCode::CREATED, contact_json(&contact, None)))
    })
    .await
}

async fn patch_contact(State(s): St, path: PathParam, req: Req) -> Response {
    const ROUTE: &str = "patch_contact";
    let call = s.recorder.begin(ROUTE, &req);
    let Ok(Path(key)) = path else {
        return call.finish(not_found_contact().into_response());
    };
    let by_email = req.query().get("idProperty").is_some_and(|p| p == "email");
    let verdict = s.check(ROUTE, &req);
    // Track by contact id when it resolves, so `/{id}` and `/{email}?idProperty=email` count as one contact.
    let track_key = lock(&s.crm)
        .resolve(&key, by_email)
        .map_or_else(|| key.clone(), |id| id.to_string());
    let _in_flight = verdict.is_ok().then(|| s.track_patch(track_key));
    let outcome = match s.settle(verdict).await {
        // The write lands at the end of the request, like a slow real PATCH: an overlapping one would race it.
        Ok(()) => do_patch(&s, &req, &key, by_email),
        Err(e) => Err(e),
    };
    call.finish(render(outcome))
}

fn do_patch(s: &HubState, req: &Req, key: &str, by_email: bool) -> Outcome {
    let body = parse_json(req)?;
    let updates = updates_from(body.get("properties").unwrap_or(&Value::Null), false)?;
    let mut crm = lock(&s.crm);
    let id = crm.resolve(key, by_email).ok_or_else(not_found_contact)?;
    crm.validate(&updates)?;
    crm.reindex_email(id, &updates)?;
    let now = now_rfc3339();
    let contact = crm.contacts.get_mut(&id).ok_or_else(not_found_contact)?;
    apply(contact, &updates, &now);
    Ok((StatusCode::OK, contact_json(contact, None)))
}

async fn get_contact(State(s): St, path: PathParam, req: Req) -> Response {
    guarded(&s, "get_contact", &req, || {
        let Ok(Path(key)) = path else {
            return Err(not_found_contact());
        };
        let query = req.query();
        let by_email = query.get("idProperty").is_some_and(|p| p == "email");
        let wanted: Vec<String> = match query.get("properties") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            None => DEFAULT_PROPERTIES.iter().map(|p| (*p).to_owned()).collect(),
        };
        let crm = lock(&s.crm);
        let contact = crm
            .resolve(&key, by_email)
            .and_then(|id| crm.contacts.get(&id))
            .ok_or_else(not_found_contact)?;
        // Like HubSpot: requested properties without a value come back as null; unknown ones are omitted.
        let wanted: Vec<String> = wanted
            .into_iter()
            .filter(|p| crm.properties.contains_key(p))
            .collect();
        Ok((StatusCode::OK, contact_json(contact, Some(&wanted))))
    })
    .await
}

async fn list_contacts(State(s): St, req: Req) -> Response {
    guarded(&s, "list_contacts", &req, || {
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

async fn create_property(State(s): St, req: Req) -> Response {
    guarded(&s, "create_property", &req, || {
        let body = parse_json(&req)?;
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

async fn get_property(State(s): St, path: PathParam, req: Req) -> Response {
    guarded(&s, "get_property", &req, || {
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

async fn not_found(State(s): St, req: Req) -> Response {
    let call = s.recorder.begin("not_found", &req);
    let message = format!("No route for {} {}", req.method, req.uri.path());
    call.finish(error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", &message).into_response())
}

async fn method_not_allowed(State(s): St, req: Req) -> Response {
    let call = s.recorder.begin("method_not_allowed", &req);
    let message = format!("Method {} is not allowed on {}", req.method, req.uri.path());
    call.finish(error(StatusCode::METHOD_NOT_ALLOWED, "VALIDATION_ERROR", &message).into_response())
}

fn property_definition(
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
fn contact_json(contact: &Contact, wanted: Option<&[String]>) -> Value {
    let mut properties = Map::new();
    match wanted {
        Some(wanted) => {
            for name in wanted {
                let value = contact
                    .properties
                    .get(name)
                    .map_or(Value::Null, |v| Value::String(v.clone()));
                properties.insert(name.clone(), value);
            }
        }
        None => {
            for (name, value) in &contact.properties {
                properties.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
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

/// Reads a `properties` object: strings, numbers and booleans are stored as strings; `null`/`""` clear a value.
fn updates_from(value: &Value, allow_missing: bool) -> Result<Updates, HsError> {
    let object = match value {
        Value::Object(object) => object,
        Value::Null if allow_missing => return Ok(Updates::new()),
        _ => {
            return Err(validation(
                "Invalid input JSON: \"properties\" must be an object",
            ))
        }
    };
    let mut updates = Updates::new();
    for (name, value) in object {
        let value = match value {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
            _ => {
                return Err(validation(&format!(
                    "Invalid input JSON: the value of property \"{name}\" must be a string"
                )))
            }
        };
        updates.insert(name.clone(), value);
    }
    Ok(updates)
}

fn parse_json(req: &Req) -> Result<Value, HsError> {
    serde_json::from_slice(&req.body)
        .map_err(|e| validation(&format!("Invalid input JSON on line {}: {e}", e.line())))
}

/// One entry of HubSpot's "Property values were not valid" list.
fn problem(name: &str, code: &str, message: String) -> Value {
    json!({ "isValid": false, "message": message, "error": code, "name": name, "localizedErrorMessage": message })
}

fn property_errors(problems: Vec<Value>) -> HsError {
    let list = Value::Array(problems).to_string();
    validation(&format!("Property values were not valid: {list}"))
}

fn validation(message: &str) -> HsError {
    error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

fn not_found_contact() -> HsError {
    error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "resource not found",
    )
}

/// A HubSpot error response: `{"status":"error","message","correlationId","category"}` (plus rate-limit headers
/// for a 429). Kept small so `Result`s carrying it stay cheap.
struct HsError {
    status: StatusCode,
    body: Value,
    rate_limited: bool,
}

impl IntoResponse for HsError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.rate_limited {
            let headers = response.headers_mut();
            headers.insert("X-HubSpot-RateLimit-Max", HeaderValue::from_static("100"));
            headers.insert(
                "X-HubSpot-RateLimit-Remaining",
                HeaderValue::from_static("0"),
            );
            headers.insert(
                "X-HubSpot-RateLimit-Interval-Milliseconds",
                HeaderValue::from_static("10000"),
            );
        }
        response
    }
}

fn error(status: StatusCode, category: &str, message: &str) -> HsError {
    let body = json!({
        "status": "error",
        "message": message,
        "correlationId": uuid(),
        "category": category,
    });
    HsError {
        status,
        body,
        rate_limited: false,
    }
}

/// An injected failure in HubSpot's shape for that status (429 with its rate-limit headers, no Retry-After).
fn injected(status: u16) -> HsError {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status {
        429 => HsError {
            status: code,
            body: json!({
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": uuid(),
                "policyName": "TEN_SECONDLY_ROLLING",
            }),
            rate_limited: true,
        },
        400 => error(code, "VALIDATION_ERROR", "Invalid input (injected fault)"),
        401 => error(
            code,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found.",
        ),
        403 => error(
            code,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call.",
        ),
        404 => not_found_contact(),
        409 => error(code, "CONFLICT", "Conflict (injected fault)"),
        423 => error(code, "LOCKED", "The resource is locked; retry later."),
        _ => error(code, "INTERNAL_ERROR", "internal error"),
    }
}
