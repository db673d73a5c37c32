//! The sweeper (run on a schedule): runs the flusher when no webhook does, so contacts left queued (a webhook ran
//! out of budget, HubSpot refused or failed, a write is fenced, a Lambda crashed) reach HubSpot without waiting
//! for another message.

use crate::ports::{Store, StoreError};
use crate::sync::{FlushReport, TranscriptSync};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Queue entries the sweeper reports on (the backlog figure saturates there).
const BACKLOG_SAMPLE: usize = 1_000;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    /// What the flusher did (or `busy`: a webhook's flusher was running).
    #[serde(flatten)]
    pub flush: FlushReport,
    /// Contacts still queued after the sweep.
    pub waiting: usize,
}

pub struct Sweeper {
    store: Arc<dyn Store>,
    sync: TranscriptSync,
    budget: Duration,
}

impl Sweeper {
    /// `budget`: no new round starts after it (keep it well under the Lambda timeout).
    pub fn new(store: Arc<dyn Store>, sync: TranscriptSync, budget: Duration) -> Self {
        Self {
            store,
            sync,
            budget,
        }
    }

    /// The Lambda handler: a scheduled event (its content does not matter) triggers one sweep.
    pub async fn handle(&self, event: serde_json::Value) -> Result<SweepReport, StoreError> {
        let scheduled_for = event
            .get("time")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("-");
        tracing::info!(scheduled_for, "sweep started");
        self.sweep().await
    }

    /// One sweep: flush until the queue is empty or the budget is spent.
    pub async fn sweep(&self) -> Result<SweepReport, StoreError> {
        let flush = self.sync.sweep(Instant::now() + self.budget).await?;
        let waiting = self.store.dirty_contacts(BACKLOG_SAMPLE).await?.len();
        let report = SweepReport { flush, waiting };
        tracing::info!(?report, "sweep finished");
        Ok(report)
    }
}
