//! Batch calls: how many inputs one takes, and how its answer reads (see the module header of `hubspot`).

use super::{objects, HubSpotClient, SERVICE};
use crate::ports::{Permit, UpstreamError, WriteResult, MAX_BATCH};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

impl HubSpotClient {
    /// `POST {objects}/batch/update` of (id, properties) inputs under `permit`: one result per input, in input
    /// order (read from `results` and `errors`, see the module header).
    pub(super) async fn batch_update<'a>(
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
}

/// HubSpot takes 1 to [`MAX_BATCH`] inputs per batch call: more is a bug in the caller, not HubSpot's answer.
pub(super) fn check_batch(inputs: usize) -> Result<(), UpstreamError> {
    if (1..=MAX_BATCH).contains(&inputs) {
        Ok(())
    } else {
        Err(UpstreamError::Protocol {
            service: SERVICE,
            detail: format!("a batch holds 1 to {MAX_BATCH} inputs, not {inputs}"),
        })
    }
}

/// The `errors` entries of a batch answer (HubSpot's `StandardError`s).
pub(super) fn batch_errors(answer: &Value) -> impl Iterator<Item = &Value> {
    answer
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// An `errors` entry as a reason: `CATEGORY: message` (the message cut to 300 characters, as logs and the parked
/// reason carry it).
pub(super) fn error_reason(error: &Value) -> String {
    let category = error.get("category").and_then(Value::as_str).unwrap_or("");
    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
    format!(
        "{category}: {}",
        message.chars().take(300).collect::<String>()
    )
}

/// A batch call of one input that HubSpot refused in an `errors` entry: to the caller, the 400 the input would have
/// had as a request of its own (answered, not applied, and retrying will not change it).
pub(super) fn refused_input(error: &Value) -> UpstreamError {
    UpstreamError::Rejected {
        service: SERVICE,
        status: 400,
        detail: error_reason(error),
    }
}

/// Reads a batch answer: which inputs were written, which ids HubSpot does not know, which inputs it refused and
/// why.
pub(super) fn batch_results<'a>(
    ids: impl Iterator<Item = &'a str>,
    answer: &Value,
) -> Vec<WriteResult> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
