//! The bench's capacity meter bills what DynamoDB bills: a transaction's `ConditionCheck` at two write units,
//! which DynamoDB Local does not report; every item a transaction writes at two write units at least, which DynamoDB
//! Local 3.x does not either for several small items; and nothing for a transaction its condition cancelled but the
//! refusal.

use crate::support::local_table;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use infra::bench::meter::{metered, Meter, RequestKind};
use std::sync::Arc;

fn key(pk: &str) -> std::collections::HashMap<String, AttributeValue> {
    [
        ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
        ("sk".to_owned(), AttributeValue::S("ITEM".to_owned())),
    ]
    .into()
}

fn put(table: &str, pk: &str) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(key(pk)))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .expect("a valid put");
    TransactWriteItem::builder().put(put).build()
}

fn check_exists(table: &str, pk: &str) -> TransactWriteItem {
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key(pk)))
        .condition_expression("attribute_exists(pk)")
        .build()
        .expect("a valid check");
    TransactWriteItem::builder().condition_check(check).build()
}

/// A request kind of the test's, not flushing: its items are none of the store's.
fn kind(operation: &'static str, item: &'static str) -> RequestKind {
    RequestKind {
        flushing: false,
        operation,
        item,
    }
}

#[tokio::test]
async fn a_transactions_condition_check_is_billed_two_write_units() {
    let (endpoint, table, _store) = local_table("meter").await;
    let meter = Arc::new(Meter::default());
    let client = metered(
        chat_sync::app::local_dynamodb(&endpoint).await,
        meter.clone(),
    );
    client
        .put_item()
        .table_name(&table)
        .set_item(Some(key("gate")))
        .send()
        .await
        .expect("the gate item");
    let before = meter.units();

    // A put alone, then a put with a check of the gate: the second costs two write units more.
    client
        .transact_write_items()
        .transact_items(put(&table, "first"))
        .send()
        .await
        .expect("committed");
    let alone = meter.units() - before;
    client
        .transact_write_items()
        .transact_items(put(&table, "second"))
        .transact_items(check_exists(&table, "gate"))
        .send()
        .await
        .expect("committed");
    let checked = meter.units() - before - alone;
    assert!(alone.write > 0.0, "{alone:?}");
    assert_eq!(checked.write, alone.write + 2.0, "{alone:?} {checked:?}");
    assert_eq!(
        meter
            .by_request()
            .get(&kind("ConditionCheck", "other + other"))
            .map(|m| (m.write, m.requests)),
        Some((2.0, 0)),
        "{:?}",
        meter.by_request()
    );

    // A check that fails cancels the transaction: the refusal is counted, the check is not billed as a write.
    let refused = client
        .transact_write_items()
        .transact_items(put(&table, "third"))
        .transact_items(check_exists(&table, "no such gate"))
        .send()
        .await;
    assert!(refused.is_err(), "the check failed");
    assert_eq!(
        meter
            .by_request()
            .get(&kind("ConditionCheck", "other + other"))
            .map(|m| m.write),
        Some(2.0)
    );
    assert_eq!(
        meter
            .by_request()
            .get(&kind("refused", "other + other"))
            .map(|m| m.write),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_transaction_is_billed_two_write_units_for_each_item_it_writes() {
    let (endpoint, table, _store) = local_table("meter-items").await;
    let meter = Arc::new(Meter::default());
    let client = metered(
        chat_sync::app::local_dynamodb(&endpoint).await,
        meter.clone(),
    );
    let mut billed = Vec::new();
    for (n, items) in [1, 2, 3].into_iter().enumerate() {
        let before = meter.units();
        let mut transaction = client.transact_write_items();
        for i in 0..items {
            transaction = transaction.transact_items(put(&table, &format!("t{n}-{i}")));
        }
        transaction.send().await.expect("committed");
        billed.push((meter.units() - before).write);
    }
    // Items under 1 KB, no index entry: two units each, as DynamoDB bills them. (DynamoDB Local 3.x reports 2, 2
    // and 2.)
    assert_eq!(billed, [2.0, 4.0, 6.0], "{:?}", meter.by_request());
    // On the transaction's own line, one request each.
    assert_eq!(
        meter
            .by_request()
            .iter()
            .filter(|(kind, _)| kind.operation == "TransactWriteItems")
            .map(|(_, m)| (m.write, m.requests))
            .fold((0.0, 0), |(w, r), (mw, mr)| (w + mw, r + mr)),
        (12.0, 3)
    );
}
