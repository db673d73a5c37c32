//! Contacts whose transcript is behind or parked, and re-queueing them: `cargo run -p infra --bin backlog -- --help`.

use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::config::Env;
use infra::backlog::{self, Command, USAGE};
use std::process::ExitCode;

/// Wrong arguments exit with 2, like most CLIs.
const USAGE_ERROR: u8 = 2;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let command = match backlog::parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(command) => command,
        Err(problem) => {
            eprintln!("backlog: {problem}\n\n{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let table = match Env::from_process().required("TABLE_NAME") {
        Ok(table) => table,
        Err(error) => {
            eprintln!("backlog: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let aws = chat_sync::config::aws().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    match backlog::run(&command, &store).await {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("backlog: {error}");
            ExitCode::FAILURE
        }
    }
}
