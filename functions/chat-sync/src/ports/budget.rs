//! The shared HubSpot rate budget and the registration throttles.

use super::StoreError;
use async_trait::async_trait;
use std::time::{Duration, Instant};

/// Who is asking for a HubSpot request: the shared rate budget keeps room for visitors waiting on a registration,
/// and caps registrations so that a flood of them cannot starve transcript writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Registration,
    /// Transcript writes and everything else done in the background (sweeper, operator commands).
    Background,
}

/// What a HubSpot answer said about the app's rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateSignal {
    /// `X-HubSpot-RateLimit-Remaining` / `-Max` / `-Interval-Milliseconds` on an answer.
    Remaining {
        remaining: u32,
        max: u32,
        interval: Duration,
    },
    /// A 429 for the rolling window (`TEN_SECONDLY_ROLLING`): nothing more until the window has passed.
    WindowExhausted { interval: Duration },
    /// A 429 for the daily quota (`DAILY`): nothing more until the quota resets.
    DailyExhausted,
}

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// No permit before the caller's deadline: the next one is due after `wait`.
    #[error("no HubSpot request permit before the deadline (next in {wait:?})")]
    Exhausted { wait: Duration, daily: bool },
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// The budget's leave to send one HubSpot request. Only a budget makes one; a request consumes it.
#[derive(Debug)]
pub struct Permit(());

impl Permit {
    pub(crate) fn granted() -> Self {
        Self(())
    }
}

/// One rate budget for the HubSpot app, shared by every running Lambda (see `budget`).
#[async_trait]
pub trait RateBudget: Send + Sync + std::fmt::Debug {
    /// Waits for a permit to send one request, until `deadline` at most.
    async fn acquire(&self, caller: Caller, deadline: Instant) -> Result<Permit, BudgetError>;
    /// Tightens the budget with what HubSpot said.
    async fn observe(&self, signal: RateSignal);
}

/// The registration throttles' store (see `crate::throttle`).
#[async_trait]
pub trait Throttle: Send + Sync {
    /// Takes one registration from `subject`'s allowance under `limit`: `None` if granted, else the wait until the
    /// next one is.
    async fn take(
        &self,
        subject: &crate::throttle::Subject,
        limit: crate::budget::RateLimit,
    ) -> Result<Option<Duration>, StoreError>;
}
