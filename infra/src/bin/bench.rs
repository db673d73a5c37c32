//! `make bench`: a busy support desk (sync lag, HubSpot's rate limit, cost per message), the webhook burst and late
//! writes (chat-sync vs. the previous design vs. the tutorial's read-append-write), flush cost as history grows,
//! registration latency and cold starts, against DynamoDB Local and the HubSpot/Stream doubles over loopback HTTP.
//! Prints Markdown. Options: `bench --help` (`infra::bench::options`).

use chat_sync::config::{Env, FlushSettings};
use infra::bench::burst::{self, BurstReport, Workload};
use infra::bench::busy_desk::{self, Desk};
use infra::bench::design::{deploy, Design};
use infra::bench::late_writes::{self, LateRun};
use infra::bench::options::{self, Command, Options, USAGE};
use infra::bench::world::World;
use infra::bench::{cold_start, flush_cost, registration, retention};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The late-write run at a busy desk's pace: fewer messages, so it takes about as long as the burst's settling.
const PACED_MESSAGES: usize = 600;
const PACE: f64 = 25.0;
/// Messages posted at the same instant as their own change, in the burst section.
const RACING_PAIRS: usize = 40;

/// Wrong arguments exit with 2, like most CLIs.
const USAGE_ERROR: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options::parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("bench: {problem}\n\n{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    match run(&options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The burst for each design, each on a fresh world.
async fn bursts(
    endpoint: &str,
    workload: &Workload,
    designs: &[Design],
    settle: Duration,
    sweep_every: Duration,
) -> Result<Vec<(Design, BurstReport)>, String> {
    let mut runs = Vec::new();
    for &design in designs {
        let world = World::start(endpoint).await?;
        let visitors = world.setup_visitors(workload.contacts).await?;
        let deployment = deploy(design, &world, sweep_every)?;
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

async fn run(options: &Options) -> Result<(), String> {
    // Logs of the handlers under test, on request only: they would drown the tables.
    if std::env::var_os("RUST_LOG").is_some() {
        chat_sync::telemetry::init();
    }
    let defaults = Workload::default();
    let workload = Workload {
        messages: options.messages.unwrap_or(defaults.messages),
        contacts: options.contacts.unwrap_or(defaults.contacts),
        concurrency: options.concurrency.unwrap_or(defaults.concurrency),
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
        ("desk-5x", Desk::times(options.heavy_pace)),
    ];
    // Warmed up at the heaviest pace measured (the desks are listed lightest first).
    if let Some((_, heaviest)) = desks
        .iter()
        .rev()
        .find(|(section, _)| options.runs_section(section))
    {
        let desk = Desk::warm_up(heaviest);
        let world = World::start(&endpoint).await?;
        let visitors = world.setup_visitors(desk.conversations).await?;
        let deployment = deploy(Design::ChatSync, &world, options.sweep_every)?;
        busy_desk::run(&world, &visitors, &deployment, Design::ChatSync, &desk).await?;
        eprintln!(
            "bench: DynamoDB Local warmed up (half a minute of the {}, not measured) after {:.0} s",
            heaviest.name,
            started.elapsed().as_secs_f64()
        );
    }
    for (section, desk) in desks {
        if !options.runs_section(section) {
            continue;
        }
        let mut designs = vec![Design::ChatSync; options.runs];
        if options.previous {
            designs.push(Design::Previous);
        }
        let mut runs = Vec::new();
        for design in designs {
            let world = World::start(&endpoint).await?;
            let visitors = world.setup_visitors(desk.conversations).await?;
            let deployment = deploy(design, &world, options.sweep_every)?;
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

    if options.runs_section("burst") {
        let designs = [Design::ChatSync, Design::Previous, Design::Baseline];
        let runs = bursts(
            &endpoint,
            &workload,
            &designs,
            Duration::from_secs(90),
            options.sweep_every,
        )
        .await?;
        println!("{}", burst::table(&workload, &runs));
        // Each message racing its own edit or deletion: every delivery posted at the same instant.
        let pairs = Workload::racing_pairs(RACING_PAIRS);
        let designs = [Design::ChatSync, Design::Previous];
        let runs = bursts(
            &endpoint,
            &pairs,
            &designs,
            Duration::from_secs(30),
            options.sweep_every,
        )
        .await?;
        println!("{}", burst::table(&pairs, &runs));
    }

    if options.runs_section("late-writes") {
        let burst = workload.with_late_writes();
        let paced = burst.paced(PACED_MESSAGES, PACE);
        let designs = [Design::ChatSync, Design::Previous];
        let mut runs = Vec::new();
        for (load, workload) in [("burst", burst), ("paced", paced)] {
            for (design, report) in bursts(
                &endpoint,
                &workload,
                &designs,
                Duration::from_secs(90),
                options.sweep_every,
            )
            .await?
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

    if options.runs_section("flush-cost") {
        let world = World::start(&endpoint).await?;
        let results = flush_cost::run(&world, &endpoint).await?;
        println!("{}", flush_cost::table(&results));
        let world = World::start(&endpoint).await?;
        let results = flush_cost::by_conversations(&world, &endpoint).await?;
        println!("{}", flush_cost::conversations_table(&results));
    }

    if options.runs_section("retention") {
        let world = World::start(&endpoint).await?;
        let results = retention::run(&world, &endpoint).await?;
        println!("{}", retention::table(&results));
    }

    let reg_world = World::start(&endpoint).await?;
    if options.runs_section("registration") {
        let reg = registration::run(&reg_world, Duration::from_millis(50), 30).await?;
        println!("{}", registration::table(&reg));
    }
    if options.runs_section("cold-start") {
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
