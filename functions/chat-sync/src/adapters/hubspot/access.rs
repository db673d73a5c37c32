//! What the app may do: the scopes it lacks, found without changing anything.

use super::client::budget_error;
use super::{associations, objects, HubSpotClient, SERVICE};
use crate::ports::{Caller, UpstreamError};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::time::Instant;

impl HubSpotClient {
    /// The scopes the app lacks for what chat-sync does at run time (contacts read/write, notes and their
    /// associations: the contact scopes of [`REQUIRED_SCOPES`](super::REQUIRED_SCOPES)), found with requests HubSpot answers without changing
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
