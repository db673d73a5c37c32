//! One-time setup of HubSpot, Stream and DynamoDB Local, idempotent: `cargo run -p infra --bin setup -- --help`.

use chat_sync::config::Env;
use infra::setup::{self, Command, USAGE};
use std::process::ExitCode;

/// Wrong arguments exit with 2 (like most CLIs), so scripts can tell them from a failed step (1).
const USAGE_ERROR: u8 = 2;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = match setup::parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(options)) => options,
        Err(problem) => {
            eprintln!("setup: {problem}\n\n{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    if options.dry_run {
        println!("dry run: only read-only calls; nothing will be changed");
    }
    let mut report = |outcome: &setup::Outcome| println!("{outcome}");
    match setup::run(&options, &Env::from_process(), &mut report).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("setup: {error}");
            ExitCode::FAILURE
        }
    }
}
