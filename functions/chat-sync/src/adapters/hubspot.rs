//! HubSpot CRM client: private-app Bearer token, contacts linked by e-mail, batched transcript writes. Every
//! request first takes a permit from the app's shared rate budget and reports what HubSpot said about the limit.
//!
//! Every path is date-versioned ([`API_VERSION`], built by [`objects`], [`properties`] and [`associations`]: the
//! version is spelled nowhere else), and every request body carries what that version's published documents mark
//! required (`associations` on a create, `propertiesWithHistory` on a batch read), even where it is empty.
//!
//! A batch write or read is answered as a whole (2xx) with one outcome per input: the inputs in `results` were
//! applied, and each input named in an `errors` entry's `context.ids` was not, for that entry's reason
//! (`OBJECT_NOT_FOUND`, or a `VALIDATION_ERROR` from one of the portal's validation rules). The 2026-09 documents
//! list that answer as a 200 where earlier versions listed a 207: the status is not what is read, the body is.

use super::backoff::Backoff;
use super::http::{client, exchange};
use crate::domain::{ContactId, Email, Identity, NoteId};
use crate::ports::{
    BudgetError, Caller, ContactDetails, Crm, LinkedContact, NewNote, NoteUpdate, Permit,
    RateBudget, RateSignal, TranscriptWrite, UpstreamError, WriteResult, MAX_BATCH,
};
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVICE: &str = "HubSpot";

/// The one place the API version lives. HubSpot replaced its v3 and v4 CRM paths with date-based versions (v4, which
/// lists a contact's notes, loses support on 2027-03-30, v3 in Sept 2027); from `2026-09` on, writes are also checked
/// against the portal's validation rules.
pub const API_VERSION: &str = "2026-09";

/// `/crm/objects/{version}/{object}`: an object type's records (`contacts`, `notes`); append `/{id}` or `/batch/...`.
pub fn objects(object: &str) -> String {
    format!("/crm/objects/{API_VERSION}/{object}")
}

/// `/crm/properties/{version}/{object}`: an object type's property definitions; append `/{name}` for one.
pub fn properties(object: &str) -> String {
    format!("/crm/properties/{API_VERSION}/{object}")
}

/// `/crm/associations/{version}/{from}/{to}`: associations from one object type to another; append `/batch/read`.
pub fn associations(from: &str, to: &str) -> String {
    format!("/crm/associations/{API_VERSION}/{from}/{to}")
}

/// HubSpot's association type "note to contact".
pub const NOTE_TO_CONTACT: u32 = 202;

/// The contact property that holds the transcript (created by `infra setup`).
pub const TRANSCRIPT_PROPERTY: &str = "chat_transcript";

/// Every OAuth scope chat-sync uses, the one list: the HubSpot app's `requiredScopes` in
/// `hubspot/src/app/app-hsmeta.json` must be exactly these (a test in `infra/tests/infra/template/` holds them equal).
/// Contacts read and write: contacts, the notes on their timeline and the notes' associations (HubSpot gates notes
/// with the contact scopes). The contact schemas' read and write: only `setup --hubspot`, which reads
/// [`TRANSCRIPT_PROPERTY`]'s definition and creates it if it is missing.
pub const REQUIRED_SCOPES: &[&str] = &[
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
];

pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";

/// The longest a registration waits for a permit of the rate budget.
const REGISTRATION_PERMIT_WAIT: Duration = Duration::from_secs(3);

/// HubSpot's rolling window when an answer does not say.
const DEFAULT_WINDOW: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct HubSpotClient {
    http: reqwest::Client,
    base_url: String,
    token: SecretString,
    per_attempt: Duration,
    backoff: Backoff,
    budget: Arc<dyn RateBudget>,
}

impl HubSpotClient {
    /// A client whose every request takes a permit from `budget` first.
    pub fn new(base_url: &str, access_token: SecretString, budget: Arc<dyn RateBudget>) -> Self {
        Self {
            http: client(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: access_token,
            per_attempt: Duration::from_secs(3),
            backoff: Backoff::new(4, Duration::from_millis(250), Duration::from_secs(2)),
            budget,
        }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The absolute URL of a path made by [`objects`], [`properties`] or [`associations`].
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends one request with the time left before `deadline`, once the budget grants a permit, and maps failures.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        caller: Caller,
        deadline: Instant,
    ) -> Result<Value, UpstreamError> {
        // A person is waiting on a registration: it waits for a permit only as long as a person would, not for a
        // rate-limited window to pass (it answers 502 `upstream_rate_limited` and the widget says to try again).
        let permit_by = match caller {
            Caller::Registration => deadline.min(Instant::now() + REGISTRATION_PERMIT_WAIT),
            Caller::Background => deadline,
        };
        let permit = self
            .budget
            .acquire(caller, permit_by)
            .await
            .map_err(budget_error)?;
        self.send_with(permit, request, deadline).await
    }

    /// Sends one request under a permit already granted.
    async fn send_with(
        &self,
        _permit: Permit,
        request: reqwest::RequestBuilder,
        deadline: Instant,
    ) -> Result<Value, UpstreamError> {
        let request = request.bearer_auth(self.token.expose_secret());
        let answer = exchange(SERVICE, request, deadline, self.per_attempt, rate_limit).await;
        if let Some(signal) = signal(answer.headers.as_ref(), &answer.result) {
            self.budget.observe(signal).await;
        }
        answer.result
    }

    /// Reads the contact's transcript property (the dev page's CRM view; never used to write).
    pub async fn read_transcript(
        &self,
        contact: &ContactId,
        deadline: Instant,
    ) -> Result<String, UpstreamError> {
        let url = self.url(&format!("{}/{}", objects("contacts"), contact.as_str()));
        let request = self
            .http
            .get(&url)
            .query(&[("properties", TRANSCRIPT_PROPERTY)]);
        let contact = self.send(request, Caller::Background, deadline).await?;
        Ok(contact
            .pointer(&format!("/properties/{TRANSCRIPT_PROPERTY}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }

    /// Whether the transcript property exists (a read-only check: `infra setup --dry-run`).
    pub async fn transcript_property_exists(
        &self,
        deadline: Instant,
    ) -> Result<bool, UpstreamError> {
        let url = self.url(&format!("{}/{TRANSCRIPT_PROPERTY}", properties("contacts")));
        let attempt = |_| self.send(self.http.get(&url), Caller::Background, deadline);
        match self.backoff.retry(deadline, attempt).await {
            Ok(_) => Ok(true),
            Err(UpstreamError::Rejected { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates the transcript property; an existing one (409) is fine. Returns whether it was created.
    pub async fn ensure_transcript_property(
        &self,
        deadline: Instant,
    ) -> Result<bool, UpstreamError> {
        let body = json!({
            "name": TRANSCRIPT_PROPERTY,
            "label": "Chat transcript",
            "type": "string",
            "fieldType": "textarea",
            "groupName": "contactinformation",
            "description": "Website chat conversations, written by chat-sync.",
        });
        let url = self.url(&properties("contacts"));
        let attempt = |_| {
            self.send(
                self.http.post(&url).json(&body),
                Caller::Background,
                deadline,
            )
        };
        match self.backoff.retry(deadline, attempt).await {
            Ok(_) => Ok(true),
            Err(UpstreamError::Rejected { status: 409, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
    /// `POST {objects}/batch/update` of (id, properties) inputs under `permit`: one result per input, in input
    /// order (read from `results` and `errors`, see the module header).
    async fn batch_update<'a>(
        &self,
        object: &str,
        inputs: impl Iterator<Item = (&'a str, Value)>,
        permit: Permit,
        deadline: Instant,
    ) -> Result<Vec<WriteResult>, UpstreamError> {
        let (ids, inputs): (Vec<&str>, Vec<Value>) = inputs
            .map(|(id, properties)| (id, json!({ "id": id, "properties": properties })))
            .unzip();
        check_batch(inputs.len())?;
        let request = self
            .http
            .post(self.url(&format!("{}/batch/update", objects(object))))
            .json(&json!({ "inputs": inputs }));
        let answer = self.send_with(permit, request, deadline).await?;
        Ok(batch_results(ids.into_iter(), &answer))
    }

    /// The scopes the app lacks for what chat-sync does at run time (contacts read/write, notes and their
    /// associations: the contact scopes of [`REQUIRED_SCOPES`]), found with requests HubSpot answers without changing
    /// anything: reads, and batch writes with no inputs (refused as invalid when the scope is there, 403 naming the
    /// scope when it is not).
    pub async fn missing_scopes(&self, deadline: Instant) -> Result<Vec<String>, UpstreamError> {
        let empty = json!({ "inputs": [] });
        let probes = [
            self.http
                .get(self.url(&objects("contacts")))
                .query(&[("limit", "1")]),
            self.http
                .post(self.url(&format!("{}/batch/update", objects("contacts"))))
                .json(&empty),
            self.http.get(self.url(&format!("{}/0", objects("notes")))),
            self.http
                .post(self.url(&format!("{}/batch/create", objects("notes"))))
                .json(&empty),
            self.http
                .post(self.url(&format!("{}/batch/read", associations("contacts", "notes"))))
                .json(&empty),
        ];
        let mut missing: Vec<String> = Vec::new();
        for probe in probes {
            let _permit = self
                .budget
                .acquire(Caller::Background, deadline)
                .await
                .map_err(budget_error)?;
            let timeout = deadline.saturating_duration_since(Instant::now());
            let response = probe
                .bearer_auth(self.token.expose_secret())
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| UpstreamError::Unavailable {
                    service: SERVICE,
                    detail: e.without_url().to_string(),
                })?;
            match response.status().as_u16() {
                401 => {
                    return Err(UpstreamError::Rejected {
                        service: SERVICE,
                        status: 401,
                        detail: "the access token is not valid".into(),
                    })
                }
                403 => {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    let named = body
                        .get("errors")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e.pointer("/context/requiredGranularScopes"))
                        .filter_map(Value::as_array)
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect::<Vec<_>>();
                    if named.is_empty() {
                        missing.push("(a scope HubSpot did not name)".into());
                    }
                    missing.extend(named);
                }
                _ => {}
            }
        }
        missing.sort();
        missing.dedup();
        Ok(missing)
    }
}

/// HubSpot takes 1 to [`MAX_BATCH`] inputs per batch call: more is a bug in the caller, not HubSpot's answer.
fn check_batch(inputs: usize) -> Result<(), UpstreamError> {
    if (1..=MAX_BATCH).contains(&inputs) {
        Ok(())
    } else {
        Err(UpstreamError::Protocol {
            service: SERVICE,
            detail: format!("a batch holds 1 to {MAX_BATCH} inputs, not {inputs}"),
        })
    }
}

/// No permit: to the caller, the same as a 429 (nothing was sent).
pub fn budget_error(error: BudgetError) -> UpstreamError {
    match error {
        BudgetError::Exhausted { wait, daily } => UpstreamError::RateLimited {
            service: SERVICE,
            retry_after: Some(wait),
            daily,
        },
        BudgetError::Storage(error) => UpstreamError::Unavailable {
            service: SERVICE,
            detail: format!("the rate budget could not be read: {error}"),
        },
    }
}

/// A contact id as HubSpot sends it (a string of digits).
fn contact_id(id: Option<&Value>) -> Result<ContactId, UpstreamError> {
    let id = id.and_then(Value::as_str).unwrap_or_default();
    ContactId::parse(id).map_err(|e| UpstreamError::Protocol {
        service: SERVICE,
        detail: format!("the answer names no contact id: {e}"),
    })
}

/// The contact a 409 names: HubSpot answers a create for a taken e-mail with `category` `CONFLICT` and the message
/// `Contact already exists. Existing ID: 123` (the id is in no other field).
fn existing_contact(message: &str) -> Result<ContactId, UpstreamError> {
    let id = message
        .split_once("Existing ID:")
        .map(|(_, rest)| {
            rest.trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .unwrap_or_default();
    ContactId::parse(&id).map_err(|_| UpstreamError::Protocol {
        service: SERVICE,
        detail: "a 409 for the contact's e-mail that names no existing contact id".into(),
    })
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn window(headers: Option<&HeaderMap>) -> Duration {
    headers
        .and_then(|h| header_number(h, "x-hubspot-ratelimit-interval-milliseconds"))
        .filter(|ms| (1_000..=86_400_000).contains(ms))
        .map_or(DEFAULT_WINDOW, Duration::from_millis)
}

/// HubSpot's 429: `policyName` says which limit was hit. The rolling window frees up only once it has passed (the
/// official client waits the whole window too); the daily quota does not free up today. Other policies (the search
/// API's per-second limit) free up within a second.
fn rate_limit(headers: &HeaderMap, body: &str) -> (Option<Duration>, bool) {
    let policy = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("policyName")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    match policy.as_str() {
        "DAILY" => (None, true),
        "TEN_SECONDLY_ROLLING" | "" => (Some(window(Some(headers))), false),
        _ => (Some(Duration::from_secs(1)), false),
    }
}

/// What an answer tells the shared budget.
fn signal(
    headers: Option<&HeaderMap>,
    result: &Result<Value, UpstreamError>,
) -> Option<RateSignal> {
    match result {
        Err(UpstreamError::RateLimited { daily: true, .. }) => Some(RateSignal::DailyExhausted),
        Err(UpstreamError::RateLimited { .. }) => Some(RateSignal::WindowExhausted {
            interval: window(headers),
        }),
        _ => {
            let headers = headers?;
            let remaining = header_number(headers, "x-hubspot-ratelimit-remaining")?;
            Some(RateSignal::Remaining {
                remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                max: header_number(headers, "x-hubspot-ratelimit-max")
                    .and_then(|m| u32::try_from(m).ok())
                    .unwrap_or(0),
                interval: window(Some(headers)),
            })
        }
    }
}

/// The `errors` entries of a batch answer (HubSpot's `StandardError`s).
fn batch_errors(answer: &Value) -> impl Iterator<Item = &Value> {
    answer
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// An `errors` entry as a reason: `CATEGORY: message` (the message cut to 300 characters, as logs and the parked
/// reason carry it).
fn error_reason(error: &Value) -> String {
    let category = error.get("category").and_then(Value::as_str).unwrap_or("");
    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
    format!(
        "{category}: {}",
        message.chars().take(300).collect::<String>()
    )
}

/// A batch call of one input that HubSpot refused in an `errors` entry: to the caller, the 400 the input would have
/// had as a request of its own (answered, not applied, and retrying will not change it).
fn refused_input(error: &Value) -> UpstreamError {
    UpstreamError::Rejected {
        service: SERVICE,
        status: 400,
        detail: error_reason(error),
    }
}

/// Reads a batch answer: which inputs were written, which ids HubSpot does not know, which inputs it refused and
/// why.
fn batch_results<'a>(ids: impl Iterator<Item = &'a str>, answer: &Value) -> Vec<WriteResult> {
    let written: HashSet<&str> = answer
        .get("results")
        .and_then(Value::as_array)
        .map(|results| {
            results
                .iter()
                .filter_map(|r| r.get("id").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let mut failed: HashMap<&str, WriteResult> = HashMap::new();
    for error in batch_errors(answer) {
        let category = error.get("category").and_then(Value::as_str).unwrap_or("");
        // A validation rule of the portal refuses one input this way too (`VALIDATION_ERROR`): a reason to give up on
        // it, not on the batch.
        let result = if category == "OBJECT_NOT_FOUND" {
            WriteResult::NotFound
        } else {
            WriteResult::Rejected(error_reason(error))
        };
        let ids = error.pointer("/context/ids").and_then(Value::as_array);
        for id in ids.into_iter().flatten().filter_map(Value::as_str) {
            failed.insert(id, result.clone());
        }
    }
    ids.map(|id| {
        if let Some(result) = failed.get(id) {
            result.clone()
        } else if written.contains(id) {
            WriteResult::Written
        } else {
            // Neither written nor refused by name: it may have been applied.
            WriteResult::Unconfirmed
        }
    })
    .collect()
}

#[async_trait]
impl Crm for HubSpotClient {
    async fn link_contact(
        &self,
        details: &ContactDetails,
        identity: Identity,
        deadline: Instant,
    ) -> Result<LinkedContact, UpstreamError> {
        let properties = json!({
            "email": details.email.as_str(),
            "firstname": details.first_name.as_str(),
            "lastname": details.last_name.as_str(),
        });
        match identity {
            // The site vouched for the e-mail: its owner may update the names (upsert, race-free at HubSpot).
            Identity::Verified => {
                let body = json!({
                    "inputs": [{
                        "id": details.email.as_str(),
                        "idProperty": "email",
                        "properties": properties,
                    }]
                });
                let url = self.url(&format!("{}/batch/upsert", objects("contacts")));
                let attempt = |_| {
                    self.send(
                        self.http.post(&url).json(&body),
                        Caller::Registration,
                        deadline,
                    )
                };
                let response = self.backoff.retry(deadline, attempt).await?;
                // The one input refused (a validation rule of the portal on a name, say): answered, not applied.
                if let (None, Some(error)) = (
                    response.pointer("/results/0"),
                    batch_errors(&response).next(),
                ) {
                    return Err(refused_input(error));
                }
                Ok(LinkedContact {
                    id: contact_id(response.pointer("/results/0/id"))?,
                    existed: response.pointer("/results/0/new").and_then(Value::as_bool)
                        == Some(false),
                })
            }
            // Anyone could have typed the e-mail: create the contact, or link to the one that has it without writing
            // to it. HubSpot keeps e-mails unique, so concurrent creates of one e-mail end with one contact and 409s
            // naming it.
            Identity::Unverified => {
                // `associations` is required on a create, even with nothing to associate.
                let body = json!({ "properties": properties, "associations": [] });
                let url = self.url(&objects("contacts"));
                let attempt = |_| {
                    self.send(
                        self.http.post(&url).json(&body),
                        Caller::Registration,
                        deadline,
                    )
                };
                match self.backoff.retry(deadline, attempt).await {
                    Ok(created) => Ok(LinkedContact {
                        id: contact_id(created.get("id"))?,
                        existed: false,
                    }),
                    Err(UpstreamError::Rejected {
                        status: 409,
                        detail,
                        ..
                    }) => Ok(LinkedContact {
                        id: existing_contact(&detail)?,
                        existed: true,
                    }),
                    Err(error) => Err(error),
                }
            }
        }
    }

    async fn write_transcripts(
        &self,
        writes: &[TranscriptWrite],
        permit: Permit,
        deadline: Instant,
    ) -> Result<Vec<WriteResult>, UpstreamError> {
        let inputs = writes.iter().map(|w| {
            (
                w.contact.as_str(),
                json!({ TRANSCRIPT_PROPERTY: w.transcript }),
            )
        });
        self.batch_update("contacts", inputs, permit, deadline)
            .await
    }

    async fn read_transcripts(
        &self,
        contacts: &[ContactId],
        permit: Permit,
        deadline: Instant,
    ) -> Result<Vec<Option<String>>, UpstreamError> {
        check_batch(contacts.len())?;
        let inputs: Vec<Value> = contacts
            .iter()
            .map(|contact| json!({ "id": contact.as_str() }))
            .collect();
        let request = self
            .http
            .post(self.url(&format!("{}/batch/read", objects("contacts"))))
            .json(&json!({
                "properties": [TRANSCRIPT_PROPERTY],
                "propertiesWithHistory": [],
                "inputs": inputs,
            }));
        let answer = self.send_with(permit, request, deadline).await?;
        // A record read by an id it no longer has (merged) comes back under its new id: not an answer for ours.
        let mut found: HashMap<&str, String> = HashMap::new();
        for result in answer
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(id) = result.get("id").and_then(Value::as_str) else {
                continue;
            };
            let value = result
                .pointer(&format!("/properties/{TRANSCRIPT_PROPERTY}"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            found.insert(id, value.to_owned());
        }
        Ok(contacts
            .iter()
            .map(|contact| found.remove(contact.as_str()))
            .collect())
    }

    async fn find_contact(
        &self,
        email: &Email,
        deadline: Instant,
    ) -> Result<Option<ContactId>, UpstreamError> {
        // The e-mail goes in a JSON body, never into the URL: a stored e-mail is what someone typed, and in a path
        // `%2e%2e/` or `?` would reach another route.
        let body = json!({
            "idProperty": "email",
            "inputs": [{ "id": email.as_str() }],
            "properties": ["email"],
            "propertiesWithHistory": [],
        });
        let request = self
            .http
            .post(self.url(&format!("{}/batch/read", objects("contacts"))))
            .json(&body);
        let found = match self.send(request, Caller::Background, deadline).await {
            Ok(found) => found,
            Err(UpstreamError::Rejected { status: 404, .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        // No contact has it: no result (HubSpot lists it under `errors` as not found).
        let Some(id) = found.pointer("/results/0/id") else {
            return Ok(None);
        };
        contact_id(Some(id)).map(Some)
    }

    async fn create_notes(
        &self,
        notes: &[NewNote],
        permit: Permit,
        deadline: Instant,
    ) -> Result<Vec<NoteId>, UpstreamError> {
        check_batch(notes.len())?;
        let inputs: Vec<Value> = notes
            .iter()
            .map(|note| {
                json!({
                    "properties": {
                        "hs_note_body": note.body,
                        "hs_timestamp": note.timestamp.rfc3339(),
                    },
                    "associations": [{
                        "to": { "id": note.contact.as_str() },
                        "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO_CONTACT }],
                    }],
                })
            })
            .collect();
        let request = self
            .http
            .post(self.url(&format!("{}/batch/create", objects("notes"))))
            .json(&json!({ "inputs": inputs }));
        let answer = self.send_with(permit, request, deadline).await?;
        let results = answer
            .get("results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let protocol = |detail: String| UpstreamError::Protocol {
            service: SERVICE,
            detail,
        };
        if results.len() != notes.len() {
            return Err(protocol(format!(
                "{} notes created for {} inputs",
                results.len(),
                notes.len()
            )));
        }
        // HubSpot does not promise results in input order: match each created note by its body (each carries its
        // conversation's marker), in input order when the answer has no bodies.
        let mut ids = Vec::with_capacity(notes.len());
        for (index, note) in notes.iter().enumerate() {
            let by_body = results.iter().find(|r| {
                r.pointer("/properties/hs_note_body")
                    .and_then(Value::as_str)
                    == Some(note.body.as_str())
            });
            let result = by_body.unwrap_or(&results[index]);
            let id = result.get("id").and_then(Value::as_str).unwrap_or_default();
            ids.push(NoteId::parse(id).map_err(|e| protocol(e.to_string()))?);
        }
        Ok(ids)
    }

    async fn update_notes(
        &self,
        notes: &[NoteUpdate],
        permit: Permit,
        deadline: Instant,
    ) -> Result<Vec<WriteResult>, UpstreamError> {
        let inputs = notes
            .iter()
            .map(|n| (n.note.as_str(), json!({ "hs_note_body": n.body })));
        self.batch_update("notes", inputs, permit, deadline).await
    }

    async fn contact_notes(
        &self,
        contact: &ContactId,
        deadline: Instant,
    ) -> Result<Vec<(NoteId, String)>, UpstreamError> {
        let protocol = |detail: String| UpstreamError::Protocol {
            service: SERVICE,
            detail,
        };
        let url = self.url(&format!("{}/batch/read", associations("contacts", "notes")));
        let mut ids: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut input = json!({ "id": contact.as_str() });
            if let Some(after) = &after {
                input["after"] = Value::String(after.clone());
            }
            let request = self.http.post(&url).json(&json!({ "inputs": [input] }));
            let page = self.send(request, Caller::Background, deadline).await?;
            let ours = page
                .get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|r| r.pointer("/from/id").and_then(Value::as_str) == Some(contact.as_str()));
            let Some(ours) = ours else {
                // HubSpot answers a contact without notes (or without a record: it cannot tell) with an
                // `OBJECT_NOT_FOUND` entry in `errors` instead of a result; anything else is a refusal of the read.
                if let Some(error) = batch_errors(&page)
                    .find(|e| e.get("category").and_then(Value::as_str) != Some("OBJECT_NOT_FOUND"))
                {
                    return Err(refused_input(error));
                }
                break;
            };
            for to in ours
                .get("to")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                // A string in the 2026-09 documents, a number in earlier versions' answers.
                match to.get("toObjectId") {
                    Some(Value::String(id)) => ids.push(id.clone()),
                    Some(Value::Number(id)) => ids.push(id.to_string()),
                    _ => {}
                }
            }
            // The cursor is per input: sent back with the contact's id for the next page, absent on the last.
            let next = ours
                .pointer("/paging/next/after")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if next.is_some() && next == after {
                return Err(protocol(
                    "the associations' paging cursor did not move".into(),
                ));
            }
            after = next;
            if after.is_none() {
                break;
            }
        }
        let mut notes = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_BATCH) {
            let inputs: Vec<Value> = chunk.iter().map(|id| json!({ "id": id })).collect();
            let request = self
                .http
                .post(self.url(&format!("{}/batch/read", objects("notes"))))
                .json(&json!({
                    "properties": ["hs_note_body"],
                    "propertiesWithHistory": [],
                    "inputs": inputs,
                }));
            let page = self.send(request, Caller::Background, deadline).await?;
            for result in page
                .get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let id = result.get("id").and_then(Value::as_str).unwrap_or_default();
                let body = result
                    .pointer("/properties/hs_note_body")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                notes.push((
                    NoteId::parse(id).map_err(|e| protocol(e.to_string()))?,
                    body.to_owned(),
                ));
            }
        }
        Ok(notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_carries_the_one_version() {
        assert_eq!(objects("contacts"), "/crm/objects/2026-09/contacts");
        assert_eq!(properties("contacts"), "/crm/properties/2026-09/contacts");
        assert_eq!(
            associations("contacts", "notes"),
            "/crm/associations/2026-09/contacts/notes"
        );
    }

    #[test]
    fn a_batch_answer_gives_each_input_its_own_outcome() {
        let answer = json!({
            "status": "COMPLETE",
            "results": [{"id": "1"}],
            "errors": [
                {"status": "error", "category": "OBJECT_NOT_FOUND", "message": "gone",
                 "context": {"ids": ["2"]}, "errors": [], "links": {}},
                {"status": "error", "category": "VALIDATION_ERROR", "message": "too long for the portal's rule",
                 "context": {"ids": ["3"], "propertyName": ["chat_transcript"]}, "errors": [], "links": {}},
            ],
            "numErrors": 2,
        });
        assert_eq!(
            batch_results(["1", "2", "3", "4"].into_iter(), &answer),
            [
                WriteResult::Written,
                WriteResult::NotFound,
                WriteResult::Rejected("VALIDATION_ERROR: too long for the portal's rule".into()),
                WriteResult::Unconfirmed,
            ]
        );
    }

    #[test]
    fn a_409_names_the_existing_contact() {
        let id =
            existing_contact("Contact already exists. Existing ID: 37765128953").expect("named");
        assert_eq!(id.as_str(), "37765128953");
        for unnamed in [
            "Contact already exists.",
            "Existing ID: ",
            "Existing ID: abc",
            "",
        ] {
            assert!(
                matches!(
                    existing_contact(unnamed),
                    Err(UpstreamError::Protocol { .. })
                ),
                "{unnamed:?}"
            );
        }
    }
}
