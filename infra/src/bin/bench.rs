//! `make bench`: a busy support desk (sync lag, HubSpot's rate limit, cost per message), the webhook burst and late
//! writes (chat-sync vs. the previous design vs. the tutorial's read-append-write), flush cost as history grows,
//! registration latency and cold starts, against DynamoDB Local and the HubSpot/Stream doubles over loopback HTTP.
//! Prints Markdown.
//!
//! Options: `--only <section>[,<section>...]` (busy-desk, desk-5x, burst, late-writes, flush-cost, retention,
//! registration, cold-start), `--skip-cold-start`, for the desks `--runs N` (chat-sync's runs, each on a fresh world;
//! 1 by default) and `--no-previous` (leave the previous design out), and for the burst
//! `--messages N --contacts N --concurrency N`. With `RUST_LOG` set, the handlers' logs are printed too.

use chat_sync::config::{Env, FlushSettings};
use infra::bench::burst::{self, BurstReport, Workload};
use infra::bench::busy_desk::{self, Desk};
use infra::bench::design::{deploy, Design};
use infra::bench::late_writes::{self, LateRun};
use infra::bench::world::World;
use infra::bench::{cold_start, flush_cost, registration, retention};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The late-write run at a busy desk's pace: fewer messages, so it takes about as long as the burst's settling.
const PACED_MESSAGES: usize = 600;
const PACE: f64 = 25.0;
/// Messages posted at the same instant as their own change, in the burst section.
const RACING_PAIRS: usize = 40;

const SECTIONS: [&str; 8] = [
    "busy-desk",
    "desk-5x",
    "burst",
    "late-writes",
    "flush-cost",
    "retention",
    "registration",
    "cold-start",
];

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

/// The sections to run: all of them, or those named by `--only`.
fn sections() -> Result<Vec<&'static str>, String> {
    let args: Vec<String> = std::env::args().collect();
    let mut chosen: Vec<&'static str> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if a != "--only" {
            continue;
        }
        let names = args
            .get(i + 1)
            .ok_or_else(|| format!("--only needs one of {}", SECTIONS.join(", ")))?;
        for name in names.split(',') {
            let section = SECTIONS
                .iter()
                .find(|s| **s == name.trim())
                .ok_or_else(|| {
                    format!("unknown section {name:?}: one of {}", SECTIONS.join(", "))
                })?;
            chosen.push(section);
        }
    }
    if chosen.is_empty() {
        chosen = SECTIONS.to_vec();
    }
    if std::env::args().any(|a| a == "--skip-cold-start") {
        chosen.retain(|s| *s != "cold-start");
    }
    Ok(chosen)
}

/// The burst for each design, each on a fresh world.
async fn bursts(
    endpoint: &str,
    workload: &Workload,
    designs: &[Design],
    settle: Duration,
) -> Result<Vec<(Design, BurstReport)>, String> {
    let mut runs = Vec::new();
    for &design in designs {
        let world = World::start(endpoint).await?;
        let visitors = world.setup_visitors(workload.contacts).await?;
        let deployment = deploy(design, &world)?;
        // The baseline never converges: waiting for it would only pad the run.
        let settle = if design == Design::Baseline {
            Duration::from_secs(5)
        } else {
            settle
        };
        let report = burst::run(&world, &visitors, &deployment, workload, settle).await?;
        eprintln!("bench: {} {report:?}", design.name());
        runs.push((design, report));
    }
    Ok(runs)
}

async fn run() -> Result<(), String> {
    let sections = sections()?;
    // Logs of the handlers under test, on request only: they would drown the tables.
    if std::env::var_os("RUST_LOG").is_some() {
        chat_sync::telemetry::init();
    }
    let defaults = Workload::default();
    let workload = Workload {
        messages: arg("--messages", defaults.messages)?,
        contacts: arg("--contacts", defaults.contacts)?,
        concurrency: arg("--concurrency", defaults.concurrency)?,
        ..defaults
    };
    let dynamodb = sandbox::DynamoDbLocal::start(None, None)
        .await
        .map_err(|e| format!("DynamoDB Local: {e}"))?;
    let endpoint = dynamodb.endpoint();
    let flush = FlushSettings::load(&Env::from_process()).map_err(|e| e.to_string())?;
    println!("chat-sync flush settings: {flush:?}\n");
    let started = Instant::now();

    let desks = [
        ("busy-desk", Desk::default()),
        ("desk-5x", Desk::five_times()),
    ];
    // Warmed up at the heaviest pace measured (the desks are listed lightest first).
    if let Some((_, heaviest)) = desks
        .iter()
        .rev()
        .find(|(section, _)| sections.contains(section))
    {
        let desk = Desk::warm_up(heaviest);
        let world = World::start(&endpoint).await?;
        let visitors = world.setup_visitors(desk.conversations).await?;
        let deployment = deploy(Design::ChatSync, &world)?;
        busy_desk::run(&world, &visitors, &deployment, Design::ChatSync, &desk).await?;
        eprintln!(
            "bench: DynamoDB Local warmed up (half a minute of the {}, not measured) after {:.0} s",
            heaviest.name,
            started.elapsed().as_secs_f64()
        );
    }
    for (section, desk) in desks {
        if !sections.contains(&section) {
            continue;
        }
        let mut designs = vec![Design::ChatSync; arg("--runs", 1)?.max(1)];
        if !std::env::args().any(|a| a == "--no-previous") {
            designs.push(Design::Previous);
        }
        let mut runs = Vec::new();
        for design in designs {
            let world = World::start(&endpoint).await?;
            let visitors = world.setup_visitors(desk.conversations).await?;
            let deployment = deploy(design, &world)?;
            let report = busy_desk::run(&world, &visitors, &deployment, design, &desk).await?;
            eprintln!(
                "bench: {}, {} done after {:.0} s",
                desk.name,
                design.name(),
                started.elapsed().as_secs_f64()
            );
            runs.push(report);
        }
        println!("{}", busy_desk::table(&desk, &runs));
        println!("{}", busy_desk::cost(&runs));
    }

    if sections.contains(&"burst") {
        let designs = [Design::ChatSync, Design::Previous, Design::Baseline];
        let runs = bursts(&endpoint, &workload, &designs, Duration::from_secs(90)).await?;
        println!("{}", burst::table(&workload, &runs));
        // Each message racing its own edit or deletion: every delivery posted at the same instant.
        let pairs = Workload::racing_pairs(RACING_PAIRS);
        let designs = [Design::ChatSync, Design::Previous];
        let runs = bursts(&endpoint, &pairs, &designs, Duration::from_secs(30)).await?;
        println!("{}", burst::table(&pairs, &runs));
    }

    if sections.contains(&"late-writes") {
        let burst = workload.with_late_writes();
        let paced = burst.paced(PACED_MESSAGES, PACE);
        let designs = [Design::ChatSync, Design::Previous];
        let mut runs = Vec::new();
        for (load, workload) in [("burst", burst), ("paced", paced)] {
            for (design, report) in
                bursts(&endpoint, &workload, &designs, Duration::from_secs(90)).await?
            {
                runs.push(LateRun {
                    design,
                    load,
                    workload,
                    report,
                });
            }
        }
        println!("{}", late_writes::table(&runs));
    }

    if sections.contains(&"flush-cost") {
        let world = World::start(&endpoint).await?;
        let results = flush_cost::run(&world, &endpoint).await?;
        println!("{}", flush_cost::table(&results));
        let world = World::start(&endpoint).await?;
        let results = flush_cost::by_conversations(&world, &endpoint).await?;
        println!("{}", flush_cost::conversations_table(&results));
    }

    if sections.contains(&"retention") {
        let world = World::start(&endpoint).await?;
        let results = retention::run(&world, &endpoint).await?;
        println!("{}", retention::table(&results));
    }

    let reg_world = World::start(&endpoint).await?;
    if sections.contains(&"registration") {
        let reg = registration::run(&reg_world, Duration::from_millis(50), 30).await?;
        println!("{}", registration::table(&reg));
    }
    if sections.contains(&"cold-start") {
        let table = reg_world.store.table().to_owned();
        let cold = cold_start::run(&reg_world, &endpoint, &table, 5).await?;
        println!("{}", cold_start::table(&cold));
    }
    eprintln!(
        "bench: finished in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
