//! `make lambda-watch`: the README's `cargo lambda watch` loop, every row of its event table through
//! `cargo lambda invoke` (see `infra::lambda_watch`).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("lambda-watch: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let root = root.canonicalize().unwrap_or(root);
    match runtime.block_on(infra::lambda_watch::run(&root)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lambda-watch: {error}");
            ExitCode::FAILURE
        }
    }
}
