//! The shared HubSpot rate budget (see `crate::budget`) in the table: one GCRA per item, taken with conditional
//! writes so that every Lambda instance draws from the same permits.

use super::{get_n, key, n, unavailable, Item};
use crate::budget::{decide, next_midnight_ms, BudgetPlan, Decision};
use crate::domain::Timestamp;
use crate::ports::{BudgetError, Caller, Permit, RateBudget, RateSignal};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use aws_sdk_dynamodb::Client;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BUDGET_PK: &str = "BUDGET#hubspot";
/// Every HubSpot request takes a permit here.
const SHARED: &str = "SHARED";
/// Registrations also take one here: their cap, so they cannot starve transcript writes.
const REGISTRATIONS: &str = "REGISTRATIONS";

#[derive(Debug)]
pub struct DynamoBudget {
    client: Client,
    table: String,
    plan: BudgetPlan,
    warned_max: AtomicBool,
}

fn now_ms() -> i64 {
    Timestamp::now().unix_millis()
}

/// The outcome of one conditional update of a budget item.
enum Attempt {
    Done,
    /// The condition failed; the item as it was, if DynamoDB said.
    Refused(Option<Item>),
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

    async fn update(
        &self,
        sk: &str,
        expression: &str,
        condition: &str,
        values: &[(&str, i64)],
    ) -> Result<Attempt, BudgetError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(BUDGET_PK.to_owned(), sk)))
            .update_expression(expression)
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, value) in values {
            request = request.expression_attribute_values(*name, n(value));
        }
        match request.send().await {
            Ok(_) => Ok(Attempt::Done),
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(Attempt::Refused(failed.item().cloned()))
                }
                Some(other) if other.code() == Some("ConditionalCheckFailedException") => {
                    Ok(Attempt::Refused(None))
                }
                _ => Err(unavailable(error).into()),
            },
        }
    }

    async fn read(&self, sk: &str) -> Result<Option<Item>, BudgetError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(BUDGET_PK.to_owned(), sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item)
    }

    /// Takes one permit from the GCRA in `sk`, waiting for it until `deadline`.
    async fn take(
        &self,
        sk: &str,
        emission_ms: i64,
        tolerance_ms: i64,
        deadline: Instant,
    ) -> Result<(), BudgetError> {
        loop {
            let now = now_ms();
            // The busy case in one request: `tat` within the tolerance moves on by one emission.
            let attempt = self
                .update(
                    sk,
                    "SET tat_ms = tat_ms + :emission",
                    "tat_ms BETWEEN :now AND :latest",
                    &[
                        (":emission", emission_ms),
                        (":now", now),
                        (":latest", now + tolerance_ms),
                    ],
                )
                .await?;
            let item = match attempt {
                Attempt::Done => return Ok(()),
                Attempt::Refused(Some(item)) => Some(item),
                // An emulator that does not return the refused item: read it.
                Attempt::Refused(None) => self.read(sk).await?,
            };
            let tat = item
                .as_ref()
                .filter(|item| item.contains_key("tat_ms"))
                .map(|item| get_n(item, "tat_ms") as i64);
            match decide(tat, now, emission_ms, tolerance_ms) {
                // Idle (or never used): start again from now, unless someone else just did.
                Decision::Grant { tat: next } => {
                    let attempt = self
                        .update(
                            sk,
                            "SET tat_ms = :next",
                            "attribute_not_exists(tat_ms) OR tat_ms < :now",
                            &[(":next", next), (":now", now)],
                        )
                        .await?;
                    if let Attempt::Done = attempt {
                        return Ok(());
                    }
                }
                Decision::Wait { wait_ms } => {
                    let wait = Duration::from_millis(wait_ms.max(1) as u64);
                    let daily = item
                        .as_ref()
                        .is_some_and(|item| get_n(item, "daily_until_ms") as i64 > now);
                    if daily || Instant::now() + wait > deadline {
                        return Err(BudgetError::Exhausted { wait, daily });
                    }
                    tokio::time::sleep(wait).await;
                }
            }
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
        self.update(
            SHARED,
            expression,
            "attribute_not_exists(tat_ms) OR tat_ms < :floor",
            &values,
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
            self.take(
                REGISTRATIONS,
                plan.registration_emission_ms,
                tolerance,
                deadline,
            )
            .await?;
        }
        self.take(
            SHARED,
            plan.emission_ms,
            plan.tolerance_ms(caller),
            deadline,
        )
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
