//! One GCRA (`crate::budget::decide`) kept in one table item and taken with conditional writes, so that every
//! Lambda instance draws from the same allowance. The shared HubSpot rate budget and the registration throttles
//! both run on it: one mechanism for "at most this many, this often".

use super::codec::{get_n, n, Item};
use super::keys::key;
use super::{schema, unavailable};
use crate::budget::{decide, Decision};
use crate::domain::Timestamp;
use crate::ports::BudgetError;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use aws_sdk_dynamodb::Client;
use std::time::{Duration, Instant};

pub(super) fn now_ms() -> i64 {
    Timestamp::now().unix_millis()
}

/// The outcome of one conditional update of the item.
pub(super) enum Attempt {
    Done,
    /// The condition failed; the item as it was, if DynamoDB said.
    Refused(Option<Item>),
}

/// One GCRA's item.
pub(super) struct Cell<'a> {
    pub(super) client: &'a Client,
    pub(super) table: &'a str,
    pub(super) pk: String,
    pub(super) sk: &'a str,
    /// Whether the item carries a TTL (`expires_at`): one item per caller (the throttles) must not pile up, while
    /// the budget's few items live forever.
    pub(super) expires: bool,
}

impl Cell<'_> {
    /// A conditional `UpdateItem`; with `expires`, `expires_at` is set to a second after `tat_ms` may reach, when
    /// the item says no more than a missing one would.
    pub(super) async fn update(
        &self,
        expression: &str,
        condition: &str,
        values: &[(&str, i64)],
        latest_tat_ms: i64,
    ) -> Result<Attempt, BudgetError> {
        let expression = if self.expires {
            format!("{expression}, #ttl = :expires")
        } else {
            expression.to_owned()
        };
        let mut request = self
            .client
            .update_item()
            .table_name(self.table)
            .set_key(Some(key(self.pk.clone(), self.sk)))
            .update_expression(expression)
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, value) in values {
            request = request.expression_attribute_values(*name, n(value));
        }
        if self.expires {
            request = request
                .expression_attribute_names("#ttl", schema::TTL_ATTRIBUTE)
                .expression_attribute_values(":expires", n(latest_tat_ms / 1000 + 1));
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

    async fn read(&self) -> Result<Option<Item>, BudgetError> {
        let output = self
            .client
            .get_item()
            .table_name(self.table)
            .set_key(Some(key(self.pk.clone(), self.sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item)
    }

    /// Takes one permit, waiting for it until `deadline`; `Exhausted` with the wait when none comes in time (and
    /// `daily` if the item records a daily block).
    pub(super) async fn take(
        &self,
        emission_ms: i64,
        tolerance_ms: i64,
        deadline: Instant,
    ) -> Result<(), BudgetError> {
        loop {
            let now = now_ms();
            let latest = now + tolerance_ms + emission_ms;
            // The busy case in one request: `tat` within the tolerance moves on by one emission.
            let attempt = self
                .update(
                    "SET tat_ms = tat_ms + :emission",
                    "tat_ms BETWEEN :now AND :latest",
                    &[
                        (":emission", emission_ms),
                        (":now", now),
                        (":latest", now + tolerance_ms),
                    ],
                    latest,
                )
                .await?;
            let item = match attempt {
                Attempt::Done => return Ok(()),
                Attempt::Refused(Some(item)) => Some(item),
                // An emulator that does not return the refused item: read it.
                Attempt::Refused(None) => self.read().await?,
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
                            "SET tat_ms = :next",
                            "attribute_not_exists(tat_ms) OR tat_ms < :now",
                            &[(":next", next), (":now", now)],
                            next,
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
}
