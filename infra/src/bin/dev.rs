//! `make dev`: the whole system on http://127.0.0.1:3000 (`PORT` overrides), against local doubles of HubSpot
//! and Stream unless their credentials are set. See `infra::dev`.

use chat_sync::config::Env;
use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::var_os("RUST_LOG").is_none() {
        // Still single-threaded here: nothing else reads the environment concurrently.
        std::env::set_var("RUST_LOG", infra::dev::DEFAULT_LOG_FILTER);
    }
    chat_sync::telemetry::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dev: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(infra::dev::run(
        Env::from_process(),
        infra::dev::shutdown_signal(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dev: {error}");
            ExitCode::FAILURE
        }
    }
}
