//! Timeline notes: created and updated in batches, associated with their contact, and listed per contact.

use super::batch::{batch_errors, check_batch, refused_input};
use super::{associations, objects, HubSpotClient, NOTE_TO_CONTACT, SERVICE};
use crate::domain::{ContactId, NoteId};
use crate::ports::{Caller, NewNote, NoteUpdate, Permit, UpstreamError, WriteResult, MAX_BATCH};
use serde_json::{json, Value};
use std::time::Instant;

impl HubSpotClient {
    pub(super) async fn create_note_batch(
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

    pub(super) async fn update_note_batch(
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

    pub(super) async fn notes_of(
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
