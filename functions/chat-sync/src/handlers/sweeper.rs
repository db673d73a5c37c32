//! The sweeper (run on a schedule): runs the flusher when no webhook does, so contacts left queued (a webhook ran
//! out of budget, HubSpot refused or failed, a write is fenced, a Lambda crashed) reach HubSpot without waiting
//! for another message. Each scheduled run also publishes how far behind the transcripts are (`metrics`), which
//! the template's alarms watch, then expires the messages of contacts idle for the retention period
//! (`retention`), and erases the contacts deleted in HubSpot whose purge time has come (`erasure`).

use crate::domain::Timestamp;
use crate::erasure::Erasure;
use crate::metrics::{self, SyncMetrics};
use crate::ports::{StoreError, SyncQueue};
use crate::retention::{Retention, RetentionReport};
use crate::sync::{FlushReport, TranscriptSync};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    /// What the flusher did (or `busy`: a webhook's flusher was running).
    #[serde(flatten)]
    pub flush: FlushReport,
    /// Contacts still queued after the sweep.
    pub waiting: usize,
    /// Contacts in sync but for notes that wait, written once due (not behind: see `sync`, "Notes").
    pub notes_waiting: usize,
    /// Contacts parked now, by any sweep (no longer retried until re-queued); the flush's own `parked` counts
    /// those this sweep parked.
    pub parked_total: usize,
    /// How long the longest-waiting queued contact has waited, in seconds (0 when none waits).
    pub oldest_waiting_seconds: u64,
    /// Whose messages expire from this sweep on.
    pub retention: RetentionReport,
    /// Contacts deleted in HubSpot 90 days ago, erased here and in Stream by this sweep.
    pub purged: usize,
}

impl SweepReport {
    pub fn metrics(&self) -> SyncMetrics {
        SyncMetrics {
            backlog_contacts: self.waiting,
            oldest_behind_seconds: self.oldest_waiting_seconds,
            parked_contacts: self.parked_total,
        }
    }
}

pub struct Sweeper {
    store: Arc<dyn SyncQueue>,
    sync: TranscriptSync,
    budget: Duration,
    /// The table, as the metrics' dimension; `None`: publish no metrics.
    metrics_table: Option<String>,
    retention: Option<Retention>,
    purge: Option<Erasure>,
}

impl Sweeper {
    /// `budget`: no new round starts after it (keep it well under the Lambda timeout).
    pub fn new(store: Arc<dyn SyncQueue>, sync: TranscriptSync, budget: Duration) -> Self {
        Self {
            store,
            sync,
            budget,
            metrics_table: None,
            retention: None,
            purge: None,
        }
    }

    /// Erases, here and in Stream, the contacts deleted in HubSpot whose purge time has come, after each sweep's
    /// flush, within the same budget.
    pub fn with_purge(mut self, erasure: Erasure) -> Self {
        self.purge = Some(erasure);
        self
    }

    /// Expires idle contacts' messages after each sweep's flush, within the same budget.
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Publishes the backlog metrics after every scheduled sweep (`handle`), with `table` as their dimension.
    pub fn with_metrics(mut self, table: &str) -> Self {
        self.metrics_table = Some(table.to_owned());
        self
    }

    /// The Lambda handler: a scheduled event (its content does not matter) triggers one sweep, whose figures are
    /// published as metrics.
    pub async fn handle(&self, event: serde_json::Value) -> Result<SweepReport, StoreError> {
        let scheduled_for = event
            .get("time")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("-");
        tracing::info!(scheduled_for, "sweep started");
        let report = self.sweep().await?;
        if let Some(table) = &self.metrics_table {
            metrics::publish(&report.metrics().emf(table, &Timestamp::now()));
        }
        Ok(report)
    }

    /// One sweep: flush until the queue is empty or the budget is spent, count what is left, then expire the
    /// messages of idle contacts while the budget lasts.
    pub async fn sweep(&self) -> Result<SweepReport, StoreError> {
        let start_by = Instant::now() + self.budget;
        let flush = self.sync.sweep(start_by).await?;
        let health = self.store.backlog_health().await?;
        let left = SyncMetrics::from_health(&health, &Timestamp::now());
        let report = SweepReport {
            flush,
            waiting: left.backlog_contacts,
            notes_waiting: health.notes_waiting,
            parked_total: left.parked_contacts,
            oldest_waiting_seconds: left.oldest_behind_seconds,
            retention: match &self.retention {
                Some(retention) => retention.run(Timestamp::now(), start_by).await?,
                None => RetentionReport::default(),
            },
            purged: match &self.purge {
                Some(erasure) => erasure.purge_due(start_by).await?,
                None => 0,
            },
        };
        tracing::info!(?report, "sweep finished");
        Ok(report)
    }
}
