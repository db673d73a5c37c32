//! `make invoke-env`: DynamoDB Local on :8000 with the table, the HubSpot and Stream sandboxes, the sample events'
//! channel registered, and `events/local.env` for `cargo lambda watch --env-file events/local.env`. Runs until
//! Ctrl-C, then stops everything and removes the file. See `infra::invoke_env`.

use infra::invoke_env::{InvokeEnv, Ports};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    chat_sync::telemetry::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("invoke-env: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("invoke-env: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), infra::invoke_env::InvokeEnvError> {
    let events = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../events"));
    let events = events.canonicalize().unwrap_or(events);
    let env_file = events.join("local.env");
    let env = InvokeEnv::start(Ports::KNOWN, &events).await?;
    env.write_env_file(&env_file)?;
    let sample = env.sample();
    println!(
        "\nReady: DynamoDB Local, table {table}, the HubSpot and Stream sandboxes; channel {cid} registered for {name}.\n\
         Wrote {file}:\n\n{vars}\n\
         In another terminal:\n\
         \x20 cargo lambda watch --env-file events/local.env\n\
         and in a third, any row of the README's event table, e.g.:\n\
         \x20 cargo lambda invoke webhook --data-file events/webhook-message-new.json\n\n\
         Ctrl-C stops everything.",
        table = infra::invoke_env::TABLE,
        cid = sample.channel.cid(),
        name = sample.visitor_name,
        file = env_file.display(),
        vars = env.env_file(),
    );
    infra::dev::shutdown_signal().await;
    let _ = std::fs::remove_file(&env_file);
    if let Err(error) = env.stop().await {
        tracing::warn!(%error, "DynamoDB Local did not stop cleanly");
    }
    Ok(())
}
