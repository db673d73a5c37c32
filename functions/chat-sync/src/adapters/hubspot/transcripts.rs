//! The transcript property: the batch writes and reads the flusher makes, the dev page's read of one contact, and
//! the property's definition that `infra setup` checks and creates.

use super::batch::check_batch;
use super::{objects, properties, HubSpotClient, TRANSCRIPT_PROPERTY};
use crate::domain::ContactId;
use crate::ports::{Caller, Permit, TranscriptWrite, UpstreamError, WriteResult};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Instant;

impl HubSpotClient {
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

    pub(super) async fn write_transcript_batch(
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

    pub(super) async fn read_transcript_batch(
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
}
