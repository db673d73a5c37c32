//! The sweeper (run on a schedule): flushes contacts left dirty by a webhook that ran out of budget, met HubSpot
//! failures or crashed, so no message waits for a later message to reach HubSpot.

use crate::ports::Store;
use crate::sync::{FlushOutcome, TranscriptSync};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Contacts flushed at once (HubSpot allows ~10 requests/s per app on the smallest plan).
const CONCURRENCY: usize = 4;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    pub dirty: usize,
    pub synced: usize,
    pub busy: usize,
    pub deferred: usize,
    pub failed: usize,
    pub writes: u32,
}

pub struct Sweeper {
    store: Arc<dyn Store>,
    sync: TranscriptSync,
    batch: usize,
    budget: Duration,
}

impl Sweeper {
    /// `budget`: no new write starts after it (keep it well under the Lambda timeout).
    pub fn new(
        store: Arc<dyn Store>,
        sync: TranscriptSync,
        batch: usize,
        budget: Duration,
    ) -> Self {
        Self {
            store,
            sync,
            batch,
            budget,
        }
    }

    /// The Lambda handler: a scheduled event (its content does not matter) triggers one sweep.
    pub async fn handle(
        &self,
        event: serde_json::Value,
    ) -> Result<SweepReport, crate::ports::StoreError> {
        let scheduled_for = event
            .get("time")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("-");
        tracing::info!(scheduled_for, "sweep started");
        self.sweep().await
    }

    /// One sweep over the dirty contacts.
    pub async fn sweep(&self) -> Result<SweepReport, crate::ports::StoreError> {
        let start_by = Instant::now() + self.budget;
        let dirty = self.store.dirty_contacts(self.batch).await?;
        let mut report = SweepReport {
            dirty: dirty.len(),
            ..SweepReport::default()
        };
        let outcomes: Vec<_> = stream::iter(dirty)
            .map(|contact| async move {
                let outcome = self.sync.flush(&contact, start_by).await;
                if let Err(error) = &outcome {
                    tracing::warn!(%error, contact_id = %contact, "sweeper could not flush the contact");
                }
                outcome
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Ok(FlushOutcome::Synced { writes }) => {
                    report.synced += 1;
                    report.writes += writes;
                }
                Ok(FlushOutcome::Busy) => report.busy += 1,
                Ok(FlushOutcome::Deferred { writes } | FlushOutcome::LostLease { writes }) => {
                    report.deferred += 1;
                    report.writes += writes;
                }
                Err(_) => report.failed += 1,
            }
        }
        tracing::info!(?report, "sweep finished");
        Ok(report)
    }
}
