//! The HubSpot double behaves like the real API where the app depends on it.

mod api;
mod batches;
mod contacts;
mod notes;
mod rate_limits;

use sandbox::HubSpotDouble;
use serde_json::{json, Value};
use std::time::Duration;

const TOKEN: &str = "pat-na1-sandbox";

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(double: &HubSpotDouble) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: double.base_url(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    async fn upsert(&self, email: &str, properties: Value) -> (u16, Value) {
        let body =
            json!({"inputs": [{"id": email, "idProperty": "email", "properties": properties}]});
        let (status, _, body) = self
            .send(
                "POST",
                "/crm/objects/2026-09/contacts/batch/upsert",
                Some(body),
            )
            .await;
        (status, body)
    }
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Polls until the double's late writes have landed, so tests wait for the event rather than a guessed time.
async fn wait_for_late_writes(double: &HubSpotDouble) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while double.late_writes_pending() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "late writes never landed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const BATCH_UPDATE: &str = "/crm/objects/2026-09/contacts/batch/update";

const NOTES: &str = "/crm/objects/2026-09/notes";
const NOTES_BATCH_CREATE: &str = "/crm/objects/2026-09/notes/batch/create";
const NOTES_BATCH_UPDATE: &str = "/crm/objects/2026-09/notes/batch/update";
const NOTES_BATCH_READ: &str = "/crm/objects/2026-09/notes/batch/read";

/// A note input as the app sends it: body, timestamp and one association to a contact (note → contact, 202).
fn note(contact: &str, body: &str, timestamp: &str) -> Value {
    json!({
        "properties": {"hs_note_body": body, "hs_timestamp": timestamp},
        "associations": [{
            "to": {"id": contact},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}],
        }],
    })
}

const NOTE_ASSOCIATIONS: &str = "/crm/associations/2026-09/contacts/notes/batch/read";

/// One page of a contact's notes, as the associations batch read gives it for one input: (status, answer).
async fn read_note_associations(
    client: &Client,
    contact: &str,
    after: Option<&str>,
) -> (u16, Value) {
    let mut input = json!({"id": contact});
    if let Some(after) = after {
        input["after"] = json!(after);
    }
    let body = json!({"inputs": [input]});
    let (status, _, answer) = client.send("POST", NOTE_ASSOCIATIONS, Some(body)).await;
    (status, answer)
}

/// The note ids one page names for `contact` (its result's `to`), checking the answer's shape against the
/// documents: a batch answer, `from.id` the contact, `toObjectId` a string, contact → note association type 201.
fn listed_note_ids(answer: &Value, contact: &str) -> Vec<u64> {
    assert_eq!(answer["status"], "COMPLETE", "{answer}");
    assert!(answer["startedAt"].is_string() && answer["completedAt"].is_string());
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{answer}");
    assert_eq!(results[0]["from"]["id"], contact, "{answer}");
    results[0]["to"]
        .as_array()
        .expect("to")
        .iter()
        .map(|row| {
            assert_eq!(
                row["associationTypes"],
                json!([{"category": "HUBSPOT_DEFINED", "typeId": 201}]),
                "{row}"
            );
            let id = row["toObjectId"].as_str().expect("a string toObjectId");
            id.parse().expect("a numeric note id")
        })
        .collect()
}

/// The answer for a contact without notes (or without a record): no result, an `OBJECT_NOT_FOUND` entry naming it.
fn assert_no_associations(answer: &Value, contact: &str) {
    assert_eq!(answer["results"], json!([]), "{answer}");
    assert_eq!(answer["numErrors"], 1, "{answer}");
    let error = &answer["errors"][0];
    assert_eq!(error["status"], "error");
    assert_eq!(error["category"], "OBJECT_NOT_FOUND");
    assert_eq!(
        error["message"],
        format!("No note is associated with contact {contact}.")
    );
    assert_eq!(error["context"]["fromObjectId"], json!([contact]));
    assert_eq!(
        (&error["errors"], &error["links"]),
        (&json!([]), &json!({}))
    );
}

fn ids_of(notes: &[sandbox::hubspot::Note]) -> Vec<&str> {
    notes.iter().map(|n| n.id.as_str()).collect()
}
