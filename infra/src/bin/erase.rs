//! Erases what chat-sync keeps about a person, here and in Stream: `cargo run -p infra --bin erase -- --help`.

use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::config::Env;
use infra::erase::{self, Command, USAGE};
use std::process::ExitCode;

/// Wrong arguments or configuration exit with 2, like most CLIs.
const USAGE_ERROR: u8 = 2;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let command = match erase::parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(command) => command,
        Err(problem) => {
            eprintln!("erase: {problem}\n\n{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let env = Env::from_process();
    let aws = chat_sync::config::aws().await;
    let (table, erasure) = match (
        env.required("TABLE_NAME"),
        chat_sync::app::App::from_env(&env, &aws, &[chat_sync::app::Handler::Erasure])
            .await
            .and_then(|app| app.erasure()),
    ) {
        (Ok(table), Ok(erasure)) => (table, erasure),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("erase: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    let agent_issuer = env.required("AGENT_OIDC_ISSUER").ok();
    match erase::run(&command, &store, &erasure, agent_issuer.as_deref()).await {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error @ erase::EraseError::Config(_)) => {
            eprintln!("erase: {error}");
            ExitCode::from(USAGE_ERROR)
        }
        Err(error) => {
            eprintln!("erase: {error}");
            ExitCode::FAILURE
        }
    }
}
