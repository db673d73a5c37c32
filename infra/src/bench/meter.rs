//! Meters a world's DynamoDB traffic at the SDK client, by operation: read units (GetItem, Query, BatchGetItem,
//! TransactGetItems) and write units (PutItem, UpdateItem, DeleteItem, TransactWriteItems, BatchWriteItem), for every
//! request of the world's store *and* of the rate budget it shares the client with. Every request is made to return
//! its consumed capacity (neither asks for it itself). DynamoDB Local reports one total per request, which cannot
//! tell reads from writes; the operation can.
//!
//! A conditional write whose condition fails returns no capacity but is billed: each is counted as one write unit
//! (the items are under 1 KB), a lower bound.
//!
//! A `ConditionCheck` in a `TransactWriteItems` is billed by DynamoDB like a transactional write of its item, two
//! write units per KB ("DynamoDB performs two underlying reads or writes of every item in the transaction", the
//! developer guide's capacity management for transactions; measured at 2 WCU for a checked item under 1 KB against
//! real DynamoDB by the open dynamodb-conformance suite). DynamoDB Local reports nothing for it, so the meter
//! counts the checks of each transaction it sends and adds two write units for each of a transaction that
//! commits, on a line of its own (`ConditionCheck`): the bench's units are what the table's bill would show.
//!
//! A committed `TransactWriteItems` is billed two write units per KB of *each* item it writes, every item's size
//! rounded up on its own (what the open dynamodb-conformance suite measured against real DynamoDB: two items under
//! 1 KB bill 4 units). DynamoDB Local 3.x reports less for a transaction of several small items
//! that touches no index: two units for two or three items under 1 KB (awslabs/amazon-dynamodb-local-samples#31;
//! with an index entry written it reports them item by item). So the meter bills the table's part of a transaction
//! at no less than two units for each item it writes (every item is at least one KB to the bill).
//!
//! The index entries a transaction writes are billed as the same writes outside a transaction: the transactional
//! factor applies to the table's part alone (measured against real DynamoDB in eu-west-2 on 2026-08-13 by the
//! dynoxide emulator's capture, nubo-db/dynoxide#188: an entry added or removed is one unit per KB, a key moved two,
//! inside a transaction or not). DynamoDB Local reports them doubled inside one (an entry added 2, a key moved 4,
//! an entry removed 2, against 1, 2 and 1 for the same `UpdateItem`), so the meter bills half what it reports for
//! a transaction's indexes. The transaction's line carries what DynamoDB bills, table and indexes.
//!
//! Requests made inside [`flushing`] (the flusher's rounds and the sweeps, wherever they run) are also counted
//! apart, so a benchmark can tell what the acknowledgement costs from what the flushing does; and every request is
//! counted by the kind of item it reads or writes (`chat_sync::adapters::dynamo::item_kind`, or the index a query
//! reads), so it can tell a lease's write from a wake-up's.

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::{
    batch_get_item::{BatchGetItemInput, BatchGetItemOutput},
    batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput},
    delete_item::{DeleteItemInput, DeleteItemOutput},
    get_item::{GetItemInput, GetItemOutput},
    put_item::{PutItemInput, PutItemOutput},
    query::{QueryInput, QueryOutput},
    transact_get_items::{TransactGetItemsInput, TransactGetItemsOutput},
    transact_write_items::{TransactWriteItemsInput, TransactWriteItemsOutput},
    update_item::{UpdateItemInput, UpdateItemOutput},
};
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use chat_sync::adapters::dynamo::{item_kind, schema};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Capacity units and requests, as metered.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Metered {
    pub read: f64,
    /// Including one unit per refused conditional write.
    pub write: f64,
    pub requests: u64,
}

impl std::ops::Sub for Metered {
    type Output = Metered;
    fn sub(self, other: Metered) -> Metered {
        Metered {
            read: self.read - other.read,
            write: self.write - other.write,
            requests: self.requests.saturating_sub(other.requests),
        }
    }
}

tokio::task_local! {
    static FLUSHING: ();
}

/// Runs `work` with its DynamoDB requests counted as flushing (see [`Meter::flush_units`]).
pub async fn flushing<F: std::future::Future>(work: F) -> F::Output {
    FLUSHING.scope((), work).await
}

#[derive(Debug, Default)]
struct Counters {
    /// Thousandths of a unit.
    read_milli: AtomicU64,
    write_milli: AtomicU64,
    refused: AtomicU64,
    requests: AtomicU64,
}

impl Counters {
    fn units(&self) -> Metered {
        let units = |milli: &AtomicU64| milli.load(Ordering::Relaxed) as f64 / 1000.0;
        Metered {
            read: units(&self.read_milli),
            write: units(&self.write_milli) + self.refused.load(Ordering::Relaxed) as f64,
            requests: self.requests.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Default)]
pub struct Meter {
    all: Counters,
    /// The part made inside [`flushing`].
    flush: Counters,
    /// Units by request kind, so a benchmark can say which request a unit went to.
    by_request: Mutex<ByRequest>,
}

/// A kind of request: made while flushing or not, its operation (or `refused`, `conflict`, `ConditionCheck`), and
/// the kind of item it named (`sync record`, `flusher`, ...; a query's index, or `table`; a transaction's items
/// joined by `+`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestKind {
    pub flushing: bool,
    pub operation: &'static str,
    pub item: &'static str,
}

/// Units by request kind → what those requests consumed.
pub type ByRequest = BTreeMap<RequestKind, Metered>;

impl Meter {
    pub fn units(&self) -> Metered {
        self.all.units()
    }

    /// What the flushing (rounds and sweeps) used of [`Meter::units`].
    pub fn flush_units(&self) -> Metered {
        self.flush.units()
    }

    /// Units by request kind so far (subtract an earlier snapshot with [`since`]).
    pub fn by_request(&self) -> ByRequest {
        self.by_request
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn each(&self, count: impl Fn(&Counters)) {
        count(&self.all);
        if FLUSHING.try_with(|_| ()).is_ok() {
            count(&self.flush);
        }
    }

    fn request(&self, operation: &'static str, item: &'static str, add: impl FnOnce(&mut Metered)) {
        let kind = RequestKind {
            flushing: FLUSHING.try_with(|_| ()).is_ok(),
            operation,
            item,
        };
        let mut by = self
            .by_request
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        add(by.entry(kind).or_default());
    }

    /// Write units DynamoDB bills that DynamoDB Local does not report, on their own line; no request of their own.
    fn add_units(&self, what: &'static str, item: &'static str, units: f64) {
        let milli = (units * 1000.0).round() as u64;
        self.each(|c| {
            c.write_milli.fetch_add(milli, Ordering::Relaxed);
        });
        self.request(what, item, |m| m.write += units);
    }

    fn add(
        &self,
        operation: &'static str,
        item: &'static str,
        write: bool,
        capacities: &[&ConsumedCapacity],
    ) {
        let total: f64 = capacities
            .iter()
            .map(|c| c.capacity_units().unwrap_or(0.0))
            .sum();
        self.add_total(operation, item, write, total);
    }

    /// One request that consumed `total` units.
    fn add_total(&self, operation: &'static str, item: &'static str, write: bool, total: f64) {
        let milli = (total * 1000.0).round() as u64;
        self.each(|c| {
            let counter = if write { &c.write_milli } else { &c.read_milli };
            counter.fetch_add(milli, Ordering::Relaxed);
        });
        self.request(operation, item, |m| {
            m.requests += 1;
            if write {
                m.write += total;
            } else {
                m.read += total;
            }
        });
    }
}

/// What each request kind consumed between two snapshots.
pub fn since(now: &ByRequest, before: &ByRequest) -> ByRequest {
    now.iter()
        .map(|(k, v)| (*k, *v - before.get(k).copied().unwrap_or_default()))
        .filter(|(_, v)| v.requests > 0 || v.write > 0.0 || v.read > 0.0)
        .collect()
}

/// `client` with every request metered into `meter`.
pub fn metered(client: aws_sdk_dynamodb::Client, meter: Arc<Meter>) -> aws_sdk_dynamodb::Client {
    let config = client
        .config()
        .to_builder()
        .interceptor(MeterInterceptor(meter))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

#[derive(Debug)]
struct MeterInterceptor(Arc<Meter>);

/// Write units DynamoDB bills for each `ConditionCheck` of a committed transaction (its item under 1 KB).
const CONDITION_CHECK_UNITS: f64 = 2.0;

/// The fewest write units DynamoDB bills the table for each item a committed transaction puts, updates or deletes:
/// one KB, written twice.
const TRANSACTION_ITEM_UNITS: f64 = 2.0;
/// What DynamoDB Local multiplies a transaction's index writes by, and DynamoDB does not.
const TRANSACTION_INDEX_FACTOR: f64 = 2.0;

/// The shape of the transaction being sent, from its input to its answer: the items it writes, and its
/// `ConditionCheck`s.
#[derive(Debug, Clone, Copy)]
struct Transaction {
    writes: usize,
    checks: usize,
}

impl Storable for Transaction {
    type Storer = StoreReplace<Self>;
}

/// Sets `ReturnConsumedCapacity: TOTAL` on inputs of these types that do not ask for it.
macro_rules! ask_for_capacity {
    ($input:expr, $($ty:ty),+) => {
        $(
            if let Some(input) = $input.downcast_mut::<$ty>() {
                input.return_consumed_capacity.get_or_insert(ReturnConsumedCapacity::Total);
            }
        )+
    };
}

/// What DynamoDB bills for a committed transaction that writes `writes` items, from what DynamoDB Local reported
/// (`capacities`, the indexes apart): the table's part at least [`TRANSACTION_ITEM_UNITS`] an item, and the
/// indexes' at half the report, the transactional factor the emulator applies to them and DynamoDB does not (see
/// the module's doc).
fn billed_transaction_units(capacities: &[&ConsumedCapacity], writes: usize) -> f64 {
    let (table, indexes) = capacities.iter().fold((0.0, 0.0), |(table, indexes), c| {
        // Without a breakdown (the meter asks for one), the whole report counts as the table's: nothing is billed
        // twice.
        let own = match c.table() {
            Some(table) => table.capacity_units(),
            None => c.capacity_units(),
        }
        .unwrap_or(0.0);
        let index: f64 = c
            .global_secondary_indexes()
            .into_iter()
            .flat_map(|by_index| by_index.values())
            .chain(
                c.local_secondary_indexes()
                    .into_iter()
                    .flat_map(|by_index| by_index.values()),
            )
            .map(|capacity| capacity.capacity_units().unwrap_or(0.0))
            .sum();
        (table + own, indexes + index)
    });
    table.max(writes as f64 * TRANSACTION_ITEM_UNITS) + indexes / TRANSACTION_INDEX_FACTOR
}

/// The kind of item the request being sent names (see [`RequestKind::item`]), from its input to its answer.
#[derive(Debug, Clone, Copy)]
struct Target(&'static str);

impl Storable for Target {
    type Storer = StoreReplace<Self>;
}

/// The kind of item a key (or a whole item) names.
fn kind_of(key: Option<&HashMap<String, AttributeValue>>) -> &'static str {
    let part = |name: &str| {
        key.and_then(|key| key.get(name))
            .and_then(|value| value.as_s().ok())
            .map_or("", String::as_str)
    };
    item_kind(part(schema::PARTITION_KEY), part(schema::SORT_KEY))
}

/// What a request names, for [`RequestKind::item`].
fn target(context: &BeforeSerializationInterceptorContextMut<'_>) -> &'static str {
    let input = context.input();
    if let Some(input) = input.downcast_ref::<GetItemInput>() {
        kind_of(input.key())
    } else if let Some(input) = input.downcast_ref::<UpdateItemInput>() {
        kind_of(input.key())
    } else if let Some(input) = input.downcast_ref::<PutItemInput>() {
        kind_of(input.item())
    } else if let Some(input) = input.downcast_ref::<DeleteItemInput>() {
        kind_of(input.key())
    } else if let Some(input) = input.downcast_ref::<QueryInput>() {
        intern(input.index_name().unwrap_or("table"))
    } else if let Some(input) = input.downcast_ref::<TransactWriteItemsInput>() {
        let kinds: Vec<&str> = input
            .transact_items()
            .iter()
            .map(|item| {
                if let Some(put) = item.put() {
                    kind_of(Some(put.item()))
                } else if let Some(update) = item.update() {
                    kind_of(Some(update.key()))
                } else if let Some(delete) = item.delete() {
                    kind_of(Some(delete.key()))
                } else if let Some(check) = item.condition_check() {
                    kind_of(Some(check.key()))
                } else {
                    "other"
                }
            })
            .collect();
        intern(&kinds.join(" + "))
    } else {
        "batch"
    }
}

/// A name kept for the process's life: the few distinct index names and transaction shapes, each leaked once.
fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

impl Intercept for MeterInterceptor {
    fn name(&self) -> &'static str {
        "bench-capacity-meter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Target(target(context)));
        let input = context.input_mut();
        if let Some(transaction) = input.downcast_mut::<TransactWriteItemsInput>() {
            let items = transaction.transact_items();
            let checks = items
                .iter()
                .filter(|item| item.condition_check().is_some())
                .count();
            cfg.interceptor_state().store_put(Transaction {
                writes: items.len() - checks,
                checks,
            });
            // The table's part apart from the indexes', to bill the table's by the items (see the module's doc). A
            // caller that asked for the total still gets it, with the parts beside it.
            transaction.return_consumed_capacity = Some(ReturnConsumedCapacity::Indexes);
        }
        ask_for_capacity!(
            input,
            GetItemInput,
            QueryInput,
            BatchGetItemInput,
            TransactGetItemsInput,
            PutItemInput,
            UpdateItemInput,
            DeleteItemInput,
            TransactWriteItemsInput,
            BatchWriteItemInput
        );
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let meter = &self.0;
        let item = cfg.load::<Target>().map_or("", |target| target.0);
        meter.each(|c| {
            c.requests.fetch_add(1, Ordering::Relaxed);
        });
        let output = match context.output_or_error() {
            Ok(output) => output,
            Err(_) => {
                let body = context.response().body().bytes().unwrap_or_default();
                let body = String::from_utf8_lossy(body);
                // A transaction cancelled by a conflict is retried by the store; only a failed condition is billed.
                if body.contains("ConditionalCheckFailed") && !body.contains("TransactionConflict")
                {
                    meter.each(|c| {
                        c.refused.fetch_add(1, Ordering::Relaxed);
                    });
                    meter.request("refused", item, |m| {
                        m.requests += 1;
                        m.write += 1.0;
                    });
                } else if body.contains("TransactionConflict") {
                    // Not billed, but each is a request sent again: what contention costs.
                    meter.request("conflict", item, |m| m.requests += 1);
                }
                return Ok(());
            }
        };
        let (read, write) = (false, true);
        if let Some(o) = output.downcast_ref::<GetItemOutput>() {
            meter.add(
                "GetItem",
                item,
                read,
                &o.consumed_capacity().into_iter().collect::<Vec<_>>(),
            );
        } else if let Some(o) = output.downcast_ref::<QueryOutput>() {
            meter.add(
                "Query",
                item,
                read,
                &o.consumed_capacity().into_iter().collect::<Vec<_>>(),
            );
        } else if let Some(o) = output.downcast_ref::<BatchGetItemOutput>() {
            meter.add(
                "BatchGetItem",
                item,
                read,
                &o.consumed_capacity().iter().collect::<Vec<_>>(),
            );
        } else if let Some(o) = output.downcast_ref::<TransactGetItemsOutput>() {
            meter.add(
                "TransactGetItems",
                item,
                read,
                &o.consumed_capacity().iter().collect::<Vec<_>>(),
            );
        } else if let Some(o) = output.downcast_ref::<PutItemOutput>() {
            meter.add(
                "PutItem",
                item,
                write,
                &o.consumed_capacity().into_iter().collect::<Vec<_>>(),
            );
        } else if let Some(o) = output.downcast_ref::<UpdateItemOutput>() {
            meter.add(
                "UpdateItem",
                item,
                write,
                &o.consumed_capacity().into_iter().collect::<Vec<_>>(),
            );
        } else if let Some(o) = output.downcast_ref::<DeleteItemOutput>() {
            meter.add(
                "DeleteItem",
                item,
                write,
                &o.consumed_capacity().into_iter().collect::<Vec<_>>(),
            );
        } else if let Some(o) = output.downcast_ref::<TransactWriteItemsOutput>() {
            let capacities: Vec<&ConsumedCapacity> = o.consumed_capacity().iter().collect();
            let Transaction { writes, checks } =
                cfg.load::<Transaction>().copied().unwrap_or(Transaction {
                    writes: 0,
                    checks: 0,
                });
            meter.add_total(
                "TransactWriteItems",
                item,
                write,
                billed_transaction_units(&capacities, writes),
            );
            if checks > 0 {
                meter.add_units(
                    "ConditionCheck",
                    item,
                    checks as f64 * CONDITION_CHECK_UNITS,
                );
            }
        } else if let Some(o) = output.downcast_ref::<BatchWriteItemOutput>() {
            meter.add(
                "BatchWriteItem",
                item,
                write,
                &o.consumed_capacity().iter().collect::<Vec<_>>(),
            );
        }
        Ok(())
    }
}
