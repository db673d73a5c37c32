//! `make bench`: the webhook burst (chat-sync vs. the tutorial's read-append-write), registration latency and
//! cold starts, against DynamoDB Local and the HubSpot/Stream doubles over loopback HTTP. Prints Markdown.
//!
//! Options: `--messages N --contacts N --concurrency N --skip-cold-start`.

use chat_sync::config::{Env, FlushSettings};
use chat_sync::handlers::sweeper::Sweeper;
use chat_sync::handlers::webhook::Webhook;
use chat_sync::sync::TranscriptSync;
use infra::bench::world::{HUBSPOT_TOKEN, STREAM_SECRET};
use infra::bench::{baseline::Baseline, burst, cold_start, registration, world::World};
use infra::serve::route;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn arg(name: &str, default: usize) -> Result<usize, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
        None => Ok(default),
    }
}

async fn run() -> Result<(), String> {
    let defaults = burst::Workload::default();
    let workload = burst::Workload {
        messages: arg("--messages", defaults.messages)?,
        contacts: arg("--contacts", defaults.contacts)?,
        concurrency: arg("--concurrency", defaults.concurrency)?,
        ..defaults
    };
    let skip_cold_start = std::env::args().any(|a| a == "--skip-cold-start");
    let dynamodb = sandbox::DynamoDbLocal::start(None, None)
        .await
        .map_err(|e| format!("DynamoDB Local: {e}"))?;
    let endpoint = dynamodb.endpoint();
    println!(
        "workload: {} messages over {} contacts, {} concurrent deliveries, {:.0}% duplicates, shuffled; \
         HubSpot double {} ms latency, {:.0}% 429/5xx\n",
        workload.messages,
        workload.contacts,
        workload.concurrency,
        workload.duplicate_rate * 100.0,
        workload.hubspot_latency.as_millis(),
        workload.hubspot_failure_rate * 100.0
    );

    // chat-sync: the webhook handler with production settings, and the sweeper every second.
    let ours_world = World::start(&endpoint).await?;
    let mut visitors = Vec::new();
    for n in 0..workload.contacts {
        visitors.push(ours_world.register(n).await?);
    }
    ours_world.hubspot.clear_calls();
    // Production defaults; the same variables as the Lambdas tune them (FLUSH_LINGER_MS, ...).
    let flush = FlushSettings::load(&Env::from_process()).map_err(|e| e.to_string())?;
    println!("flush settings: {flush:?}\n");
    let sync = TranscriptSync::new(
        ours_world.store.clone(),
        ours_world.crm.clone(),
        ours_world.budget.clone(),
        flush,
    );
    let webhook = Arc::new(Webhook::new(
        ours_world.store.clone(),
        sync.clone(),
        STREAM_SECRET,
    ));
    let sweeper = Sweeper::new(ours_world.store.clone(), sync, Duration::from_secs(20));
    // The sweeper runs every 5 s here (every minute when deployed); what it writes is reported separately.
    let sweeper_writes = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let sweeping = {
        let sweeper_writes = sweeper_writes.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if let Ok(report) = sweeper.sweep().await {
                    sweeper_writes
                        .fetch_add(report.flush.calls, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
    };
    let router = axum::Router::new().route("/webhooks", route(webhook));
    let ours = burst::run(
        &ours_world,
        &visitors,
        router,
        &workload,
        Duration::from_secs(60),
    )
    .await?;
    sweeping.abort();
    let sweeper_writes = sweeper_writes.load(std::sync::atomic::Ordering::Relaxed);

    // Baseline: the same workload through read-append-write.
    let base_world = World::start(&endpoint).await?;
    let mut base_visitors = Vec::new();
    for n in 0..workload.contacts {
        base_visitors.push(base_world.register(n).await?);
    }
    base_world.hubspot.clear_calls();
    let baseline = Arc::new(Baseline {
        store: base_world.store.clone(),
        http: reqwest::Client::new(),
        hubspot_url: base_world.hubspot.base_url(),
        token: HUBSPOT_TOKEN.to_owned(),
    });
    let router = axum::Router::new().route("/webhooks", route(baseline));
    let base = burst::run(
        &base_world,
        &base_visitors,
        router,
        &workload,
        Duration::from_secs(2),
    )
    .await?;
    println!("{}", burst::table(&ours, &base));
    println!("(of chat-sync's HubSpot calls, {sweeper_writes} were the sweeper's)\n");

    let reg_world = World::start(&endpoint).await?;
    let reg = registration::run(&reg_world, Duration::from_millis(50), 30).await?;
    println!("{}", registration::table(&reg));

    if !skip_cold_start {
        let table = reg_world.store.table().to_owned();
        let cold = cold_start::run(&reg_world, &endpoint, &table, 5).await?;
        println!("{}", cold_start::table(&cold));
    }
    Ok(())
}
