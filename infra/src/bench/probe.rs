//! DynamoDB Local's own latency while a benchmark runs, on a client of its own (not metered): a GetItem every 100
//! ms, and a one-item transaction every 500 ms. DynamoDB Local is one JVM on this machine; when a design loads it,
//! every request slows, the ack included, which real DynamoDB (single-digit milliseconds at these rates) would not
//! do. The figures say how far the run is from that. The two are apart because the emulator does not slow them
//! alike: a machine that cannot hold the 5× desk answers its reads in milliseconds while its transactions (every
//! acknowledgement is one) queue for seconds (docs/benchmarks-flusher.md, round 16).

use super::percentile;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often each kind of probe request goes: the transaction less often, as it loads the emulator more (two a
/// second beside the 5× desk's ~134).
const READ_EVERY: Duration = Duration::from_millis(100);
const TRANSACTION_EVERY: Duration = Duration::from_millis(500);
/// The probe's own item, in a partition of its own.
const PROBE_KEY: &str = "PROBE";

pub struct Probe {
    reads: Sampler,
    transactions: Sampler,
}

/// Median and 99th percentile of one kind of the probe's requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
}

/// What the probe measured: its strongly consistent GetItems, and its one-item transactions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latencies {
    pub read: Latency,
    pub transaction: Latency,
}

impl Probe {
    pub async fn start(endpoint: &str, table: &str) -> Self {
        let client = chat_sync::app::local_dynamodb(endpoint).await;
        let (read_client, read_table) = (client.clone(), table.to_owned());
        let reads = Sampler::start(READ_EVERY, move || {
            read(read_client.clone(), read_table.clone())
        });
        let table = table.to_owned();
        let transactions = Sampler::start(TRANSACTION_EVERY, move || {
            transaction(client.clone(), table.clone())
        });
        Self {
            reads,
            transactions,
        }
    }

    pub fn finish(self) -> Latencies {
        Latencies {
            read: self.reads.finish(),
            transaction: self.transactions.finish(),
        }
    }
}

async fn read(client: Client, table: String) {
    let _ = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(PROBE_KEY.into()))
        .key("sk", AttributeValue::S(PROBE_KEY.into()))
        .consistent_read(true)
        .send()
        .await;
}

async fn transaction(client: Client, table: String) {
    let Ok(update) = Update::builder()
        .table_name(table)
        .key("pk", AttributeValue::S(PROBE_KEY.into()))
        .key("sk", AttributeValue::S("PROBE#TRANSACTION".into()))
        .update_expression("ADD probes :one")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .build()
    else {
        return;
    };
    let _ = client
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().update(update).build())
        .send()
        .await;
}

/// One kind of probe request, sent every `every` (the next one `every` after the last answer) until finished.
struct Sampler {
    samples: Arc<Mutex<Vec<Duration>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start<F, Fut>(every: Duration, request: F) -> Self
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let into = samples.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let started = Instant::now();
                request().await;
                if let Ok(mut samples) = into.lock() {
                    samples.push(started.elapsed());
                }
            }
        });
        Self { samples, task }
    }

    fn finish(self) -> Latency {
        self.task.abort();
        let mut samples = self.samples.lock().map(|s| s.clone()).unwrap_or_default();
        samples.sort();
        Latency {
            p50: percentile(&samples, 0.5),
            p99: percentile(&samples, 0.99),
        }
    }
}
