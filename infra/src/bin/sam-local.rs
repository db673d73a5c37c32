//! `make sam-local`: every row of the README's event table through `sam local invoke` (see `infra::sam_local`).
//! `--serve` starts the local services only, writes their `--env-vars` file and runs until Ctrl-C, for running the
//! README's `sam local` commands by hand. `--only rows` or `--only start-api` runs one of the two checks;
//! `--invoke-image IMAGE` runs the functions on a local base image.

use infra::sam_local::{self, Sam};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sam-local: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sam-local: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let mut serve = false;
    let mut only = None;
    let mut invoke_image = None;
    let mut program = PathBuf::from("sam");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--serve" => serve = true,
            "--only" => only = args.next(),
            "--invoke-image" => invoke_image = args.next().filter(|image| !image.is_empty()),
            "--sam" => program = args.next().map(PathBuf::from).unwrap_or(program),
            other => {
                return Err(format!(
                    "unknown argument {other:?} (--serve, --only rows|start-api, --invoke-image IMAGE, --sam PATH)"
                ))
            }
        }
    }
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let root = root.canonicalize().unwrap_or(root);
    let host = sam_local::docker_bridge_address().await?;
    let env = sam_local::environment(&root, host)
        .await
        .map_err(|e| e.to_string())?;
    let env_vars = root.join(sam_local::ENV_VARS_FILE);
    if serve {
        println!(
            "Ready on {host} (docker's bridge): DynamoDB Local, the local Secrets Manager, the HubSpot and Stream \
             sandboxes; wrote {}.\nIn another terminal:\n  {}\n  {}\nCtrl-C stops everything.",
            env_vars.display(),
            sam_local::export_line(),
            sam_local::invoke_command("webhook-message-new.json"),
        );
        infra::dev::shutdown_signal().await;
    } else {
        let sam = Sam {
            root,
            program,
            invoke_image,
        };
        let mut checked = match only.as_deref() {
            Some("start-api") => Ok(()),
            _ => sam_local::check_rows(&sam, &env)
                .await
                .map_err(|e| e.to_string()),
        };
        let api = match only.as_deref() {
            Some("rows") => Ok(()),
            _ => sam_local::check_start_api(&sam, &env).await,
        };
        if let Err(problem) = &api {
            println!("{problem}");
        }
        if checked.is_ok() {
            checked = api.map_err(|_| "the check through sam local start-api failed".to_owned());
        }
        if let Err(error) = checked {
            let _ = std::fs::remove_file(&env_vars);
            return Err(error);
        }
    }
    let _ = std::fs::remove_file(&env_vars);
    env.stop().await.map_err(|e| e.to_string())
}
