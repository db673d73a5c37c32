//! Writing a contact's transcript to HubSpot, safely. HubSpot has no conditional write, so we serialise writers:
//! only the holder of the contact's lease (a DynamoDB conditional write) writes, and it renders the whole
//! transcript from the stored messages, so every write is complete and idempotent.
//!
//! Group commit: a webhook that cannot get the lease only records its message. The holder releases the lease in
//! the same transaction that checks no change arrived since the version it wrote; if one did, it loops. So a
//! change is never stranded between "holder finished" and "newcomer gave up". What a holder cannot finish
//! (budget, HubSpot failures, a crash) stays marked dirty, and the sweeper finishes it.

use crate::adapters::backoff::Backoff;
use crate::config::FlushSettings;
use crate::domain::transcript::{render, HUBSPOT_PROPERTY_LIMIT};
use crate::domain::ContactId;
use crate::ports::{Crm, LeaseOwner, Release, Store, StoreError, UpstreamError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Time kept free at the end of a linger for reading, rendering and starting the write.
const LINGER_MARGIN: Duration = Duration::from_millis(50);

/// A webhook's flush, run after its response has been sent: on Lambda by an internal extension (the environment
/// is frozen only once it is done), in a long-lived server by a spawned task, in tests inline.
pub struct PendingFlush {
    sync: TranscriptSync,
    contact: ContactId,
    start_by: Instant,
}

impl PendingFlush {
    pub fn contact(&self) -> &ContactId {
        &self.contact
    }

    /// Runs the flush; failures are logged (the contact stays dirty for the next writer or the sweeper).
    pub async fn run(self) -> Option<FlushOutcome> {
        let linger = self.sync.settings.linger;
        match self
            .sync
            .flush_with(&self.contact, self.start_by, linger)
            .await
        {
            Ok(outcome) => {
                tracing::debug!(contact_id = %self.contact, ?outcome, "flush finished");
                Some(outcome)
            }
            Err(error) => {
                tracing::warn!(%error, contact_id = %self.contact, "transcript flush failed; the sweeper will retry");
                None
            }
        }
    }
}

/// What a flush did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushOutcome {
    /// The CRM has the newest transcript (after `writes` writes by us, possibly zero).
    Synced { writes: u32 },
    /// Another writer holds the lease; it will pick up our change.
    Busy,
    /// Left dirty for the next writer or the sweeper (out of time, or the CRM kept failing).
    Deferred { writes: u32 },
    /// Our lease expired under us; whoever holds it now carries on.
    LostLease { writes: u32 },
}

#[derive(Clone)]
pub struct TranscriptSync {
    store: Arc<dyn Store>,
    crm: Arc<dyn Crm>,
    settings: FlushSettings,
    backoff: Backoff,
}

impl TranscriptSync {
    pub fn new(store: Arc<dyn Store>, crm: Arc<dyn Crm>, settings: FlushSettings) -> Self {
        Self {
            store,
            crm,
            settings,
            backoff: Backoff::new(4, Duration::from_millis(200), Duration::from_secs(2)),
        }
    }

    /// A flush for a webhook to run once it has answered: it lingers to gather the rest of a burst.
    pub fn after_response(&self, contact: ContactId, received: Instant) -> PendingFlush {
        PendingFlush {
            sync: self.clone(),
            contact,
            start_by: received + self.settings.webhook_budget,
        }
    }

    /// Brings the contact's CRM transcript up to date if we can get its lease, without lingering (the sweeper).
    /// No new write starts after `start_by`; a started write ends within `write_timeout`.
    pub async fn flush(
        &self,
        contact: &ContactId,
        start_by: Instant,
    ) -> Result<FlushOutcome, StoreError> {
        self.flush_with(contact, start_by, Duration::ZERO).await
    }

    async fn flush_with(
        &self,
        contact: &ContactId,
        start_by: Instant,
        linger: Duration,
    ) -> Result<FlushOutcome, StoreError> {
        let owner = LeaseOwner::random();
        if !self
            .store
            .acquire_lease(contact, &owner, self.settings.lease_ttl)
            .await?
        {
            return Ok(FlushOutcome::Busy);
        }
        let mut writes = 0;
        let result = self
            .flush_holding(contact, &owner, start_by, linger, &mut writes)
            .await;
        if result.is_err() {
            // Storage failed mid-flush: try to hand the lease back so the next writer need not wait for expiry.
            if let Err(error) = self.store.release_lease(contact, &owner).await {
                tracing::warn!(%error, contact_id = %contact, "could not release the lease; it will expire");
            }
        }
        result
    }

    async fn flush_holding(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        start_by: Instant,
        linger: Duration,
        writes: &mut u32,
    ) -> Result<FlushOutcome, StoreError> {
        let mut failures = 0;
        let mut linger = linger;
        loop {
            // Let the rest of a burst land first: many messages, one write. Never linger past the point where the
            // write could still start.
            let room = start_by
                .saturating_duration_since(Instant::now())
                .saturating_sub(LINGER_MARGIN);
            if !linger.is_zero() && !room.is_zero() {
                tokio::time::sleep(linger.min(room)).await;
            }
            // The version is read before the messages, so the messages include at least that version.
            let state = self.store.sync_state(contact).await?;
            if state.version == 0 {
                // No message was ever recorded for this contact.
                self.store.release_lease(contact, owner).await?;
                return Ok(FlushOutcome::Synced { writes: *writes });
            }
            if state.version == state.synced_version {
                // Nothing to write (e.g. another holder finished it): hand back the lease.
                return match self
                    .store
                    .release_if_current(contact, owner, state.version)
                    .await?
                {
                    Release::Released => Ok(FlushOutcome::Synced { writes: *writes }),
                    Release::Changed => continue,
                    Release::Lost => Ok(FlushOutcome::LostLease { writes: *writes }),
                };
            }
            if Instant::now() >= start_by {
                self.store.release_lease(contact, owner).await?;
                return Ok(FlushOutcome::Deferred { writes: *writes });
            }
            let source = self.store.transcript_source(contact).await?;
            let transcript = render(
                &source.conversations,
                &source.messages,
                HUBSPOT_PROPERTY_LIMIT,
            );
            // Renewing right before the write means the lease outlives the write (lease_ttl > 2 × write_timeout).
            if !self
                .store
                .renew_lease(contact, owner, self.settings.lease_ttl)
                .await?
            {
                return Ok(FlushOutcome::LostLease { writes: *writes });
            }
            let write_deadline = Instant::now() + self.settings.write_timeout;
            match self
                .crm
                .write_transcript(contact, &transcript, write_deadline)
                .await
            {
                Ok(()) => {
                    *writes += 1;
                    tracing::info!(contact_id = %contact, version = state.version, chars = transcript.len(), "transcript written");
                    match self
                        .store
                        .release_if_current(contact, owner, state.version)
                        .await?
                    {
                        Release::Released => return Ok(FlushOutcome::Synced { writes: *writes }),
                        Release::Changed => {
                            // Still busy: a sustained burst gets longer windows, so its writes thin out
                            // exponentially while a short exchange still shows up within one linger.
                            linger = linger.saturating_mul(2);
                            continue;
                        }
                        Release::Lost => return Ok(FlushOutcome::LostLease { writes: *writes }),
                    }
                }
                Err(UpstreamError::Timeout { .. }) => {
                    // The write may still land. Keep the lease until it expires, so no newer write can be
                    // overtaken by this one; the sweeper finishes the contact afterwards.
                    tracing::warn!(contact_id = %contact, "transcript write timed out; leaving the lease to expire");
                    return Ok(FlushOutcome::Deferred { writes: *writes });
                }
                Err(error) => {
                    failures += 1;
                    match self.backoff.next_wait(failures, &error, start_by) {
                        Some(wait) => {
                            tracing::warn!(contact_id = %contact, %error, wait_ms = wait.as_millis() as u64, "transcript write failed; retrying");
                            tokio::time::sleep(wait).await;
                        }
                        None => {
                            tracing::warn!(contact_id = %contact, %error, "transcript write failed; leaving the contact for the sweeper");
                            self.store.release_lease(contact, owner).await?;
                            self.store.requeue_dirty(contact).await?;
                            return Ok(FlushOutcome::Deferred { writes: *writes });
                        }
                    }
                }
            }
        }
    }
}
