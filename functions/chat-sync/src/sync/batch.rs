//! Sending a round's writes to HubSpot in batches, each under one permit of the shared budget.

use super::{FlushReport, TranscriptSync};
use crate::ports::{Caller, Permit, UpstreamError, MAX_BATCH};
use std::future::Future;
use std::time::Instant;

/// What became of one input.
#[derive(Debug)]
pub(super) enum Sent<R> {
    /// HubSpot answered, with this result for the input.
    Done(R),
    /// The outcome is unknown: the write may still land (see fencing in `sync`).
    Ambiguous,
    /// Refused before it was applied (rate limit, HubSpot unavailable, token or scopes, no permit): nothing landed.
    Refused,
    /// HubSpot refuses this input itself (a 400 it got alone), with its message.
    Rejected(String),
}

impl TranscriptSync {
    /// Sends `inputs` in batches of at most [`MAX_BATCH`] through `call`, one permit each (`permit` first). A batch
    /// HubSpot refuses as a whole with 400 is halved until the refused input stands alone; after any other refusal
    /// the rest is not sent (HubSpot is refusing writes; the contacts stay queued). One result per input, in order.
    pub(super) async fn send_batches<I, R, F, Fut>(
        &self,
        inputs: Vec<I>,
        permit: &mut Option<Permit>,
        start_by: Instant,
        report: &mut FlushReport,
        call: F,
    ) -> Vec<Sent<R>>
    where
        I: Clone,
        F: Fn(Vec<I>, Permit, Instant) -> Fut,
        Fut: Future<Output = Result<Vec<R>, UpstreamError>>,
    {
        let mut results: Vec<Option<Sent<R>>> = (0..inputs.len()).map(|_| None).collect();
        let indices: Vec<usize> = (0..inputs.len()).collect();
        let mut batches: Vec<Vec<usize>> =
            indices.chunks(MAX_BATCH).map(<[usize]>::to_vec).collect();
        batches.reverse();
        let mut refusing = false;
        while let Some(batch) = batches.pop() {
            if refusing {
                for i in batch {
                    results[i] = Some(Sent::Refused);
                }
                continue;
            }
            let granted = match permit.take() {
                Some(granted) => granted,
                None => match self.budget.acquire(Caller::Background, start_by).await {
                    Ok(granted) => granted,
                    Err(error) => {
                        tracing::info!(%error, "no HubSpot permit left this round; the rest stays queued");
                        report.refused += 1;
                        refusing = true;
                        batches.push(batch);
                        continue;
                    }
                },
            };
            let items: Vec<I> = batch.iter().map(|&i| inputs[i].clone()).collect();
            let deadline = Instant::now() + self.settings.write_timeout;
            report.calls += 1;
            match call(items, granted, deadline).await {
                Ok(answers) => {
                    let mut answers = answers.into_iter();
                    for i in batch {
                        // One answer per input; a missing one is as good as unknown.
                        results[i] = Some(answers.next().map_or(Sent::Ambiguous, Sent::Done));
                    }
                }
                Err(error) if error.may_have_landed() => {
                    tracing::warn!(%error, inputs = batch.len(), late_write_window_ms = self.settings.late_write_window.as_millis() as u64, "HubSpot batch may still land; its contacts wait for their leases to expire");
                    for i in batch {
                        results[i] = Some(Sent::Ambiguous);
                    }
                }
                Err(UpstreamError::Rejected {
                    status: 400,
                    detail,
                    ..
                }) => {
                    if batch.len() > 1 {
                        // One input spoils the batch: split until the one HubSpot refuses stands alone.
                        tracing::info!(
                            inputs = batch.len(),
                            "HubSpot refused a batch; splitting it"
                        );
                        let mut first = batch;
                        let second = first.split_off(first.len() / 2);
                        batches.push(second);
                        batches.push(first);
                    } else {
                        for i in batch {
                            results[i] = Some(Sent::Rejected(detail.clone()));
                        }
                    }
                }
                Err(error) => {
                    if matches!(error, UpstreamError::Rejected { .. }) {
                        tracing::error!(%error, "HubSpot refused a batch; check the token and its scopes");
                    } else {
                        tracing::warn!(%error, inputs = batch.len(), "HubSpot refused a batch; its contacts stay queued");
                    }
                    report.refused += 1;
                    refusing = true;
                    for i in batch {
                        results[i] = Some(Sent::Refused);
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or(Sent::Refused))
            .collect()
    }
}
