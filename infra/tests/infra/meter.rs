//! The bench's capacity meter bills what DynamoDB bills: a transaction's `ConditionCheck` at two write units,
//! which DynamoDB Local does not report; every item a transaction writes at two write units at least, which DynamoDB
//! Local 3.x does not either for several small items; the index entries a transaction writes as the same writes
//! outside one, where DynamoDB Local doubles them; and nothing for a transaction its condition cancelled but the
//! refusal.

use crate::support::local_table;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use chat_sync::adapters::dynamo::schema::{DIRTY_INDEX_PARTITION_KEY, DIRTY_INDEX_SORT_KEY};
use infra::bench::meter::{metered, Meter, RequestKind};
use std::collections::HashMap;
use std::sync::Arc;

fn key(pk: &str) -> HashMap<String, AttributeValue> {
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

/// A fresh table in DynamoDB Local, and a client whose every request is metered into the returned meter.
async fn metered_table(prefix: &str) -> (String, Arc<Meter>, aws_sdk_dynamodb::Client) {
    let (endpoint, table, _store) = local_table(prefix).await;
    let meter = Arc::new(Meter::default());
    let client = metered(
        chat_sync::app::local_dynamodb(&endpoint).await,
        meter.clone(),
    );
    (table, meter, client)
}

#[tokio::test]
async fn a_transactions_condition_check_is_billed_two_write_units() {
    let (table, meter, client) = metered_table("meter").await;
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
    let (table, meter, client) = metered_table("meter-items").await;
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

/// The values an index update names: the shard (`:shard`) when it adds an entry, the sort key (`:since`) when it adds
/// or moves one.
fn index_values(expression: &str, since: Option<&str>) -> Option<HashMap<String, AttributeValue>> {
    let shard = expression
        .contains(":shard")
        .then(|| (":shard".to_owned(), AttributeValue::S("0".to_owned())));
    let since = since.map(|t| (":since".to_owned(), AttributeValue::S(t.to_owned())));
    let values: HashMap<String, AttributeValue> = shard.into_iter().chain(since).collect();
    (!values.is_empty()).then_some(values)
}

#[tokio::test]
async fn a_transactions_index_entries_are_billed_as_outside_one() {
    let (table, meter, client) = metered_table("meter-index").await;
    // An entry in the queue's index (`dirty-contacts`) added, its sort key moved, then removed.
    let steps = [
        (
            "added",
            format!("SET {DIRTY_INDEX_PARTITION_KEY} = :shard, {DIRTY_INDEX_SORT_KEY} = :since"),
            Some("t1"),
        ),
        (
            "moved",
            format!("SET {DIRTY_INDEX_SORT_KEY} = :since"),
            Some("t2"),
        ),
        (
            "removed",
            format!("REMOVE {DIRTY_INDEX_PARTITION_KEY}, {DIRTY_INDEX_SORT_KEY}"),
            None,
        ),
    ];
    let mut billed = Vec::new();
    for (pk, transactional) in [("alone", false), ("in-one", true)] {
        for (what, expression, since) in &steps {
            let values = index_values(expression, *since);
            let before = meter.units();
            if transactional {
                let update = Update::builder()
                    .table_name(&table)
                    .set_key(Some(key(pk)))
                    .update_expression(expression)
                    .set_expression_attribute_values(values)
                    .build()
                    .expect("a valid update");
                client
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().update(update).build())
                    .send()
                    .await
                    .expect("committed");
            } else {
                client
                    .update_item()
                    .table_name(&table)
                    .set_key(Some(key(pk)))
                    .update_expression(expression)
                    .set_expression_attribute_values(values)
                    .send()
                    .await
                    .expect("written");
            }
            billed.push((*what, transactional, (meter.units() - before).write));
        }
    }
    // Outside a transaction, as DynamoDB Local reports it: the table's unit, and the index's one to add or remove an
    // entry, two to move one. Inside one the table's part doubles and the index's does not; DynamoDB Local reports
    // 4, 6 and 4 there.
    assert_eq!(
        billed,
        [
            ("added", false, 2.0),
            ("moved", false, 3.0),
            ("removed", false, 2.0),
            ("added", true, 3.0),
            ("moved", true, 4.0),
            ("removed", true, 3.0),
        ],
        "{:?}",
        meter.by_request()
    );
}
