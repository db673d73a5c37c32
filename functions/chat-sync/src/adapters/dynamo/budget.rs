//! The shared HubSpot rate budget (see `crate::budget`) in the table: one GCRA per item, taken with conditional
//! writes so that every Lambda instance draws from the same permits.

use super::gcra::{now_ms, Cell};
use crate::budget::{next_midnight_ms, BudgetPlan};
use crate::domain::Timestamp;
use crate::ports::{BudgetError, Caller, Permit, RateBudget, RateSignal};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::keys::{BUDGET_PK, BUDGET_REGISTRATIONS as REGISTRATIONS, BUDGET_SHARED as SHARED};

#[derive(Debug)]
pub struct DynamoBudget {
    client: Client,
    table: String,
    plan: BudgetPlan,
    warned_max: AtomicBool,
}

impl DynamoBudget {
    pub fn new(client: Client, table: String, plan: BudgetPlan) -> Self {
        Self {
            client,
            table,
            plan,
            warned_max: AtomicBool::new(false),
        }
    }

    pub fn plan(&self) -> &BudgetPlan {
        &self.plan
    }

    fn cell<'a>(&'a self, sk: &'a str) -> Cell<'a> {
        Cell {
            client: &self.client,
            table: &self.table,
            pk: BUDGET_PK.to_owned(),
            sk,
            expires: false,
        }
    }

    /// Moves the shared `tat` to at least `floor` (and records a daily block until `daily_until`).
    async fn push_back(&self, floor: i64, daily_until: Option<i64>) -> Result<(), BudgetError> {
        let (expression, values) = match daily_until {
            Some(until) => (
                "SET tat_ms = :floor, daily_until_ms = :daily",
                vec![(":floor", floor), (":daily", until)],
            ),
            None => ("SET tat_ms = :floor", vec![(":floor", floor)]),
        };
        // Never pulls the budget forward: a stricter floor set by someone else stays.
        self.cell(SHARED)
            .update(
                expression,
                "attribute_not_exists(tat_ms) OR tat_ms < :floor",
                &values,
                floor,
            )
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl RateBudget for DynamoBudget {
    async fn acquire(&self, caller: Caller, deadline: Instant) -> Result<Permit, BudgetError> {
        let plan = &self.plan;
        if caller == Caller::Registration {
            let tolerance = i64::from(plan.burst - 1) * plan.registration_emission_ms;
            self.cell(REGISTRATIONS)
                .take(plan.registration_emission_ms, tolerance, deadline)
                .await?;
        }
        self.cell(SHARED)
            .take(plan.emission_ms, plan.tolerance_ms(caller), deadline)
            .await?;
        Ok(Permit::granted())
    }

    async fn observe(&self, signal: RateSignal) {
        let now = now_ms();
        let result = match signal {
            RateSignal::Remaining { remaining, max, .. } => {
                if max > 0
                    && max < self.plan.limit.count
                    && !self.warned_max.swap(true, Ordering::Relaxed)
                {
                    tracing::warn!(
                        hubspot_max = max,
                        configured = %self.plan.limit,
                        "HubSpot reports a lower rate limit than HUBSPOT_RATE_LIMIT; lower HUBSPOT_RATE_LIMIT \
                         (the budget follows X-HubSpot-RateLimit-Remaining meanwhile)"
                    );
                }
                if !self.plan.is_tight(remaining) {
                    return;
                }
                self.push_back(self.plan.tat_for_remaining(remaining, now), None)
                    .await
            }
            RateSignal::WindowExhausted { interval } => {
                tracing::warn!(
                    wait_ms = interval.as_millis() as u64,
                    "HubSpot's rolling rate limit was reached; no HubSpot request until the window has passed"
                );
                self.push_back(self.plan.tat_after_window(interval, now), None)
                    .await
            }
            RateSignal::DailyExhausted => {
                let until = next_midnight_ms(now);
                tracing::error!(
                    until = %Timestamp::from_unix_seconds(until / 1000).map(|t| t.rfc3339()).unwrap_or_default(),
                    "HubSpot's DAILY API limit for this app is used up: no HubSpot request (registrations, transcript \
                     writes) until it resets; transcripts catch up afterwards"
                );
                self.push_back(self.plan.tat_until(until), Some(until))
                    .await
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, "could not record HubSpot's rate-limit signal in the shared budget");
        }
    }
}
