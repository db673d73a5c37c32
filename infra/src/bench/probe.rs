//! DynamoDB Local's own latency while a benchmark runs: a GetItem every 100 ms on a client of its own (not metered).
//! DynamoDB Local is one JVM on this machine; when a design loads it, every request slows, the ack included, which
//! real DynamoDB (single-digit milliseconds at these rates) would not do. The figure says how far the run is from that.

use super::percentile;
use aws_sdk_dynamodb::types::AttributeValue;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_millis(100);

pub struct Probe {
    samples: Arc<Mutex<Vec<Duration>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Median and 99th percentile of the probe's GetItems.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
}

impl Probe {
    pub async fn start(endpoint: &str, table: &str) -> Self {
        let client = chat_sync::app::local_dynamodb(endpoint).await;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (table, into) = (table.to_owned(), samples.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(EVERY).await;
                let started = Instant::now();
                let _ = client
                    .get_item()
                    .table_name(&table)
                    .key("pk", AttributeValue::S("PROBE".into()))
                    .key("sk", AttributeValue::S("PROBE".into()))
                    .consistent_read(true)
                    .send()
                    .await;
                if let Ok(mut samples) = into.lock() {
                    samples.push(started.elapsed());
                }
            }
        });
        Self { samples, task }
    }

    pub fn finish(self) -> Latency {
        self.task.abort();
        let mut samples = self.samples.lock().map(|s| s.clone()).unwrap_or_default();
        samples.sort();
        Latency {
            p50: percentile(&samples, 0.5),
            p99: percentile(&samples, 0.99),
        }
    }
}
