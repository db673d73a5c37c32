//! `make lambda-watch`: the README's `cargo lambda watch` loop ("Invoke the functions locally"), run as a person
//! runs it: `make invoke-env` in one process, `cargo lambda watch --env-file events/local.env` in another, then
//! `cargo lambda invoke` for every row of the event table, each answer checked against the one the table documents
//! ([`event_table::check`]), and at the end the sample conversation in the sandbox contact's transcript.
//!
//! The commands are the README's word for word ([`ENV_COMMAND`], [`WATCH_COMMAND`], [`invoke_command`]; a test
//! compares them). Under `cargo lambda watch` the functions log to the watch process, not to the invoking command,
//! so its output goes to a file and each row's check reads what the function logged while it answered.
//!
//! cargo-lambda's emulator keeps a function's process running between invocations, as Lambda keeps a warm
//! environment: the webhook's flush after its answer runs there too, unlike under the Runtime API test
//! (`infra/tests/infra/invoke.rs`), which ends each process after its answer.

use crate::event_table;
use crate::invoke_env::{SampleConversation, EVENTS_ORIGIN, SAMPLE_EMAIL, TABLE};
use chat_sync::adapters::hubspot::{objects, TRANSCRIPT_PROPERTY};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Terminal 1: the local services and `events/local.env`.
pub const ENV_COMMAND: &str = "make invoke-env";
/// Terminal 2: cargo-lambda's Lambda emulator on :9000.
pub const WATCH_COMMAND: &str = "cargo lambda watch --env-file events/local.env";
/// Where `cargo lambda watch` listens.
const WATCH_PORT: u16 = 9000;
/// The file `make invoke-env` writes once everything runs, and removes when it stops.
const ENV_FILE: &str = "events/local.env";
/// `make invoke-env` builds its binary first if it must, then starts DynamoDB Local (a JVM).
const ENV_TIMEOUT: Duration = Duration::from_secs(600);
/// A function's first invocation builds it (a debug build of the function, and of the workspace if nothing is
/// built yet).
const INVOKE_TIMEOUT: Duration = Duration::from_secs(900);
/// What a function logs may reach the watch process's output a moment after its answer.
const LOG_SETTLE: Duration = Duration::from_millis(300);

/// Terminal 3: the README's command for one row of its event table.
pub fn invoke_command(file: &str) -> String {
    format!(
        "cargo lambda invoke {} --data-file events/{file}",
        event_table::binary(file)
    )
}

#[derive(Debug, thiserror::Error)]
pub enum LambdaWatchError {
    #[error("{0}")]
    Setup(String),
    #[error("README.md: {0}")]
    Readme(String),
    #[error("{failed} of {total} checks did not give their documented answer")]
    Rows { failed: usize, total: usize },
}

/// A README command line as a person types it in the repository (no shell: the README's lines need none).
fn command(root: &Path, line: &str) -> tokio::process::Command {
    let mut words = line.split_whitespace();
    let mut command = tokio::process::Command::new(words.next().unwrap_or_default());
    command.args(words).current_dir(root).stdin(Stdio::null());
    command
}

/// A README command running in a process group of its own, stopped with the signal a person's Ctrl-C sends.
struct Background {
    line: &'static str,
    child: tokio::process::Child,
}

impl Background {
    fn start(root: &Path, line: &'static str, log: &Path) -> Result<Self, LambdaWatchError> {
        let output = std::fs::File::create(log)
            .map_err(|e| LambdaWatchError::Setup(format!("{}: {e}", log.display())))?;
        let errors = output
            .try_clone()
            .map_err(|e| LambdaWatchError::Setup(format!("{}: {e}", log.display())))?;
        let child = command(root, line)
            .stdout(output)
            .stderr(errors)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| LambdaWatchError::Setup(format!("cannot run `{line}`: {e}")))?;
        Ok(Self { line, child })
    }

    /// Whether it is still running (an early exit is a failure to start: its log says why).
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Ctrl-C to its whole process group (make and what it started), as a terminal sends it, and its exit; then
    /// SIGTERM, for a program that inherited an ignored SIGINT (a background job does), and last SIGKILL.
    async fn interrupt(mut self) {
        for signal in ["INT", "TERM", "KILL"] {
            let Some(pid) = self.child.id() else {
                return;
            };
            // `--`: a negative number after it is a process group, not an option.
            let _ = tokio::process::Command::new("kill")
                .args(["-s", signal, "--", &format!("-{pid}")])
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_ok()
            {
                return;
            }
            eprintln!("`{}` did not stop on SIG{signal}", self.line);
        }
    }
}

fn log_text(log: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned()
}

/// Waits until `ready` holds, or fails with `what` and the process's log if it exits or `timeout` passes.
async fn wait_for(
    process: &mut Background,
    log: &Path,
    what: &str,
    timeout: Duration,
    ready: impl Fn() -> bool,
) -> Result<(), LambdaWatchError> {
    let until = Instant::now() + timeout;
    while !ready() {
        if !process.running() || Instant::now() >= until {
            return Err(LambdaWatchError::Setup(format!(
                "`{}` did not get {what}:\n{}",
                process.line,
                log_text(log)
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// The variables `make invoke-env` wrote, by name.
fn env_file(root: &Path) -> std::collections::HashMap<String, String> {
    std::fs::read_to_string(root.join(ENV_FILE))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// One `cargo lambda invoke`: the function's answer (the JSON it printed) and how long it took.
async fn invoke(root: &Path, line: &str) -> Result<(Value, Duration), String> {
    let started = Instant::now();
    let child = command(root, line)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let output = tokio::time::timeout(INVOKE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("no answer within {INVOKE_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let answer = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .ok_or_else(|| {
            format!(
                "no JSON answer\nstdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    Ok((answer, started.elapsed()))
}

/// The sample conversation's contact's transcript in the sandbox HubSpot, read through HubSpot's API with the
/// sandbox's token, as `make invoke-env` wrote them.
async fn sample_transcript(root: &Path) -> Result<String, String> {
    let mut variables = env_file(root);
    let base = variables
        .remove("HUBSPOT_BASE_URL")
        .ok_or("no HUBSPOT_BASE_URL")?;
    let token = variables
        .remove("HUBSPOT_ACCESS_TOKEN")
        .ok_or("no HUBSPOT_ACCESS_TOKEN")?;
    let body = json!({
        "idProperty": "email",
        "inputs": [{ "id": SAMPLE_EMAIL }],
        "properties": [TRANSCRIPT_PROPERTY],
        "propertiesWithHistory": [],
    });
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}{}/batch/read", objects("contacts")))
        .bearer_auth(token)
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(answer
        .pointer(&format!("/results/0/properties/{TRANSCRIPT_PROPERTY}"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned())
}

/// Runs the README's `cargo lambda watch` loop in the repository at `root`, printing one line per check.
pub async fn run(root: &Path) -> Result<(), LambdaWatchError> {
    let readme = std::fs::read_to_string(root.join("README.md"))
        .map_err(|e| LambdaWatchError::Readme(e.to_string()))?;
    let files = event_table::files(&readme);
    if files.is_empty() {
        return Err(LambdaWatchError::Readme(format!(
            "no event table under {:?}",
            event_table::SECTION
        )));
    }
    // Someone else's `make invoke-env` or emulator would answer instead of ours.
    if root.join(ENV_FILE).exists() || port_open(WATCH_PORT) {
        return Err(LambdaWatchError::Setup(format!(
            "{ENV_FILE} exists or port {WATCH_PORT} answers: stop the running `{ENV_COMMAND}` and `{WATCH_COMMAND}` first"
        )));
    }
    let logs = std::env::temp_dir();
    let env_log = logs.join(format!("lambda-watch-env-{}.log", std::process::id()));
    let watch_log = logs.join(format!("lambda-watch-{}.log", std::process::id()));
    let mut env = Background::start(root, ENV_COMMAND, &env_log)?;
    let env_file = root.join(ENV_FILE);
    if let Err(error) = wait_for(&mut env, &env_log, "ready", ENV_TIMEOUT, || {
        env_file.exists()
    })
    .await
    {
        env.interrupt().await;
        return Err(error);
    }
    let checked = match Background::start(root, WATCH_COMMAND, &watch_log) {
        Ok(mut watch) => {
            let checked = match wait_for(
                &mut watch,
                &watch_log,
                "its emulator listening",
                Duration::from_secs(60),
                || port_open(WATCH_PORT),
            )
            .await
            {
                Ok(()) => Ok(check_rows(root, &files, &watch_log).await),
                Err(error) => Err(error),
            };
            watch.interrupt().await;
            checked
        }
        Err(error) => Err(error),
    };
    env.interrupt().await;
    let mut failed = checked?;
    // make may exit before the program it ran has finished cleaning up.
    let until = Instant::now() + Duration::from_secs(10);
    while root.join(ENV_FILE).exists() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if root.join(ENV_FILE).exists() {
        failed += 1;
        println!("FAIL `{ENV_COMMAND}` left {ENV_FILE} behind after Ctrl-C");
    } else {
        println!("ok   `{ENV_COMMAND}` stopped on Ctrl-C and removed {ENV_FILE}");
    }
    match failed {
        0 => Ok(()),
        failed => Err(LambdaWatchError::Rows {
            failed,
            total: files.len() + 2,
        }),
    }
}

/// Every row through `cargo lambda invoke`, then the transcript; how many failed.
async fn check_rows(root: &Path, files: &[String], watch_log: &Path) -> usize {
    let mut failed = 0;
    for file in files {
        let line = invoke_command(file);
        let logged_before = std::fs::metadata(watch_log).map_or(0, |m| m.len() as usize);
        let outcome = match invoke(root, &line).await {
            Ok((response, took)) => {
                tokio::time::sleep(LOG_SETTLE).await;
                let log = log_text(watch_log);
                let log = log.get(logged_before..).unwrap_or_default();
                let answer = event_table::Answer {
                    response: &response,
                    log,
                };
                event_table::check(file, &answer, EVENTS_ORIGIN, TABLE)
                    .map(|summary| (summary, took))
                    .map_err(|problem| format!("{problem}\nthe functions' log meanwhile:\n{log}"))
            }
            Err(problem) => Err(problem),
        };
        match outcome {
            Ok((summary, took)) => println!("ok   {file:<40} {summary} ({} ms)", took.as_millis()),
            Err(problem) => {
                failed += 1;
                println!("FAIL {file:<40} {line}: {problem}");
            }
        }
    }
    let visitor = SampleConversation::from_events(&root.join("events"))
        .map(|sample| sample.visitor_name)
        .unwrap_or_default();
    match sample_transcript(root).await {
        Ok(transcript) if !visitor.is_empty() && transcript.contains(&visitor) => println!(
            "ok   the sample conversation is in the sandbox contact's {TRANSCRIPT_PROPERTY} ({} characters)",
            transcript.len()
        ),
        Ok(transcript) => {
            failed += 1;
            println!("FAIL the sample conversation is not in the sandbox contact's {TRANSCRIPT_PROPERTY}: {transcript:?}");
        }
        Err(problem) => {
            failed += 1;
            println!("FAIL reading the sandbox contact's {TRANSCRIPT_PROPERTY}: {problem}");
        }
    }
    failed
}
