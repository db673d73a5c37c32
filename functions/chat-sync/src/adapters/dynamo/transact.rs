//! How the store sends its requests: transactions and conditional updates (each re-sent when a transaction on its
//! item was committing), reads of one item, and paged queries. What they cost is metered outside the store, at the
//! SDK client (the bench's `meter`), which asks every request for its consumed capacity.

use super::codec::Item;
use super::{build_error, unavailable, DynamoStore};
use crate::ports::StoreError;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use std::time::Duration;

/// Transactions touching one contact's sync record can conflict; they are retried this many times.
pub(super) const CONFLICT_RETRIES: u32 = 8;

/// A transaction whose condition on one of its items failed: nothing of it was written.
#[derive(Debug)]
pub(super) struct ConditionFailed {
    /// The position of the item whose condition failed.
    pub(super) index: usize,
    /// That item as it was, when the write asked for it (`ReturnValuesOnConditionCheckFailure::AllOld`); `None`
    /// also when there was no item.
    pub(super) item: Option<Item>,
}

/// How one conditional update ended.
pub(super) enum Outcome {
    /// Written; the item as it is now (when the update asked for it: `ReturnValue`).
    Written(Option<Item>),
    /// The condition failed; the item as it was (when the update asked for it:
    /// `ReturnValuesOnConditionCheckFailure::AllOld`; `None` also when there is none).
    Refused(Option<Item>),
}

impl Outcome {
    pub(super) fn written(&self) -> bool {
        matches!(self, Outcome::Written(_))
    }
}

/// What a cancelled transaction's reasons say.
enum Cancelled {
    /// The condition of an item failed.
    Condition(ConditionFailed),
    /// Another transaction touched the same items: retry.
    Conflict,
    Other(String),
}

fn cancelled(
    error: &aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
) -> Cancelled {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match error {
        E::TransactionCanceledException(e) => {
            let reasons = e.cancellation_reasons();
            if let Some(index) = reasons
                .iter()
                .position(|r| r.code() == Some("ConditionalCheckFailed"))
            {
                Cancelled::Condition(ConditionFailed {
                    index,
                    item: reasons[index].item().cloned(),
                })
            } else if reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"))
            {
                Cancelled::Conflict
            } else {
                Cancelled::Other(e.message().unwrap_or("transaction cancelled").to_owned())
            }
        }
        E::TransactionInProgressException(_) => Cancelled::Conflict,
        other => Cancelled::Other(format!(
            "{}: {}",
            other.code().unwrap_or("TransactWriteItems"),
            other.message().unwrap_or_default()
        )),
    }
}

impl DynamoStore {
    /// Runs a transaction, retrying conflicts with other transactions on the same items.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), ConditionFailed>, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(Ok(())),
                Err(error) => error,
            };
            match error.as_service_error().map(cancelled) {
                Some(Cancelled::Condition(failed)) => return Ok(Err(failed)),
                Some(Cancelled::Conflict) if attempt < CONFLICT_RETRIES => {
                    let jitter = rand::random::<u64>() % 20;
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt) + jitter))
                        .await;
                }
                Some(Cancelled::Conflict) => {
                    return Err(StoreError::Unavailable(
                        "transaction kept conflicting".into(),
                    ))
                }
                Some(Cancelled::Other(detail)) => return Err(StoreError::Unavailable(detail)),
                None => return Err(unavailable(error)),
            }
        }
    }

    /// Sends an update, the one way the store does: a failed condition is an
    /// `Outcome`, not an error. An update that meets a transaction committing on its item (DynamoDB refuses it as a
    /// `TransactionConflict`: a change being recorded on a sync record) is sent again once that has landed.
    pub(super) async fn send_update(
        &self,
        update: UpdateItemFluentBuilder,
    ) -> Result<Outcome, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match update.clone().send().await {
                Ok(output) => return Ok(Outcome::Written(output.attributes().cloned())),
                Err(error) => error,
            };
            match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    return Ok(Outcome::Refused(failed.item().cloned()))
                }
                Some(e)
                    if e.code() == Some("TransactionConflictException")
                        && attempt < CONFLICT_RETRIES =>
                {
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                }
                _ => return Err(unavailable(error)),
            }
        }
    }

    /// One item by its key, whole or only the `attributes` named (each through a placeholder, so a name with `:` in
    /// it, or a reserved word, reads as it is), read strongly when `consistent`. `None`: there is none.
    pub(super) async fn get(
        &self,
        key: Item,
        attributes: &[&str],
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        let mut get = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(consistent);
        if !attributes.is_empty() {
            let placeholders: Vec<String> =
                (0..attributes.len()).map(|i| format!("#a{i}")).collect();
            get = get.projection_expression(placeholders.join(", "));
            for (placeholder, attribute) in placeholders.iter().zip(attributes) {
                get = get.expression_attribute_names(placeholder, *attribute);
            }
        }
        let output = get.send().await.map_err(unavailable)?;
        Ok(output.item)
    }

    pub(super) fn put(
        &self,
        item: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        // A failed condition returns the item as it is (`ConditionFailed::item`), at no extra cost: a caller may
        // decide its next attempt on what is there.
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (k, v) in names {
            put = put.expression_attribute_names(*k, *v);
        }
        if !values.is_empty() {
            put = put.set_expression_attribute_values(Some(values));
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }

    /// One page of a query.
    pub(super) async fn query_page(
        &self,
        query: QueryFluentBuilder,
    ) -> Result<QueryOutput, StoreError> {
        query.send().await.map_err(unavailable)
    }

    /// Every item a query matches, page after page.
    pub(super) async fn query_all(
        &self,
        query: QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .query_page(query.clone().set_exclusive_start_key(start.take()))
                .await?;
            items.extend(output.items().iter().cloned());
            start = output.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}
