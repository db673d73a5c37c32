//! The sync's health as CloudWatch metrics, written as Embedded Metric Format (EMF) log lines: CloudWatch Logs turns
//! each such line into datapoints, so publishing costs no API call, no IAM permission and no latency.
//!
//! A custom runtime's stdout reaches CloudWatch Logs unchanged whatever the function's log format, so one JSON object
//! per line is all EMF needs. The alarms in template.yaml watch these names (infra/tests/infra/template/ checks that
//! they match).

use crate::domain::Timestamp;
use crate::ports::BacklogHealth;
use serde_json::{json, Value};
use std::io::Write;

pub const NAMESPACE: &str = "ChatSync";
/// The one dimension: the table, which names one deployment (its stack) without a setting of its own.
pub const TABLE_DIMENSION: &str = "Table";
/// Contacts whose transcript is behind the CRM (queued).
pub const BACKLOG_CONTACTS: &str = "BacklogContacts";
/// Seconds the longest-waiting queued contact has been waiting (0 when nothing is behind).
pub const OLDEST_BEHIND_SECONDS: &str = "OldestBehindSeconds";
/// Contacts parked: no longer retried until an operator re-queues them.
pub const PARKED_CONTACTS: &str = "ParkedContacts";

/// What one sweep publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncMetrics {
    pub backlog_contacts: usize,
    pub oldest_behind_seconds: u64,
    pub parked_contacts: usize,
}

impl SyncMetrics {
    /// The figures as of `now`.
    pub fn from_health(health: &BacklogHealth, now: &Timestamp) -> Self {
        let oldest_behind_seconds = health
            .oldest_behind_since
            .as_ref()
            .map(|since| (now.unix_millis() - since.unix_millis()).max(0) as u64 / 1_000)
            .unwrap_or(0);
        Self {
            backlog_contacts: health.behind,
            oldest_behind_seconds,
            parked_contacts: health.parked,
        }
    }

    /// The EMF document: the metric values beside `_aws.CloudWatchMetrics`, which says what they are.
    pub fn emf(&self, table: &str, now: &Timestamp) -> Value {
        json!({
            "_aws": {
                "Timestamp": now.unix_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [[TABLE_DIMENSION]],
                    "Metrics": [
                        {"Name": BACKLOG_CONTACTS, "Unit": "Count"},
                        {"Name": OLDEST_BEHIND_SECONDS, "Unit": "Seconds"},
                        {"Name": PARKED_CONTACTS, "Unit": "Count"},
                    ],
                }],
            },
            TABLE_DIMENSION: table,
            BACKLOG_CONTACTS: self.backlog_contacts,
            OLDEST_BEHIND_SECONDS: self.oldest_behind_seconds,
            PARKED_CONTACTS: self.parked_contacts,
        })
    }
}

/// Writes one EMF document as one line of stdout, in a single write so no log line can split it.
pub fn publish(document: &Value) {
    let mut line = document.to_string();
    line.push('\n');
    let mut stdout = std::io::stdout().lock();
    // Metrics are best effort: a closed stdout must not fail the sweep that produced them.
    let _ = stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush());
}
