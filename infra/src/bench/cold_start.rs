//! Cold starts of the release binaries: process start → first invocation answered, under a local Lambda Runtime
//! API, with the first request's real work (DynamoDB Local, the doubles) included.

use super::world::{World, HUBSPOT_TOKEN, STREAM_KEY, STREAM_SECRET};
use super::{ms, percentile};
use crate::runtime_api::{Outcome, RuntimeApi};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ColdStart {
    pub binary: &'static str,
    pub size_bytes: u64,
    pub median: Duration,
    pub max: Duration,
    pub outcome: String,
}

/// The Lambda binaries and the event each is invoked with.
pub const BINARIES: [(&str, &str); 3] = [
    ("registration", "registration.json"),
    ("webhook", "webhook-unknown-channel.json"),
    ("sweeper", "sweeper-schedule.json"),
];

/// Where the release binaries are: next to this bench binary (same target dir and profile).
pub fn binary_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()?
        .parent()
        .map(Path::to_path_buf)
}

pub async fn run(
    world: &World,
    dynamodb_endpoint: &str,
    table: &str,
    runs: usize,
) -> Result<Vec<ColdStart>, String> {
    let dir = binary_dir().ok_or("cannot locate the binaries")?;
    let events = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../events"));
    let mut results = Vec::new();
    for (binary, event_file) in BINARIES {
        let path = dir.join(binary);
        let size_bytes = std::fs::metadata(&path)
            .map_err(|_| {
                format!(
                    "{} is missing: build it first (make bench does)",
                    path.display()
                )
            })?
            .len();
        let event = std::fs::read_to_string(events.join(event_file))
            .map_err(|e| format!("{event_file}: {e}"))?;
        let mut times = Vec::new();
        let mut outcome = String::new();
        for _ in 0..runs {
            let api = RuntimeApi::start(event.clone())
                .await
                .map_err(|e| e.to_string())?;
            let started = Instant::now();
            let mut child = tokio::process::Command::new(&path)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("AWS_LAMBDA_RUNTIME_API", api.host())
                .env("AWS_LAMBDA_FUNCTION_NAME", binary)
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{binary}"))
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", "local")
                .env("AWS_SECRET_ACCESS_KEY", "local")
                .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
                .env("TABLE_NAME", table)
                .env("HUBSPOT_ACCESS_TOKEN", HUBSPOT_TOKEN)
                .env("HUBSPOT_BASE_URL", world.hubspot.base_url())
                .env("STREAM_API_KEY", STREAM_KEY)
                .env("STREAM_API_SECRET", STREAM_SECRET)
                .env("STREAM_BASE_URL", world.stream.base_url())
                .env("ALLOWED_ORIGINS", "http://localhost:3000")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("{binary}: {e}"))?;
            let answer = api.answer(Duration::from_secs(30)).await;
            let _ = child.kill().await;
            let answer =
                answer.ok_or_else(|| format!("{binary} did not answer its first invocation"))?;
            times.push(answer.answered_at.duration_since(started));
            outcome = summarize(answer.outcome, &answer.body);
        }
        times.sort();
        results.push(ColdStart {
            binary,
            size_bytes,
            median: percentile(&times, 0.5),
            max: times.last().copied().unwrap_or_default(),
            outcome,
        });
    }
    Ok(results)
}

/// `statusCode` for HTTP functions, the report for the sweeper.
fn summarize(outcome: Outcome, body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    match value.get("statusCode") {
        Some(code) => format!("{outcome}, HTTP {code}"),
        None => format!("{outcome}, {}", body.chars().take(120).collect::<String>()),
    }
}

pub fn table(results: &[ColdStart]) -> String {
    let mut out = String::from(
        "| cold start (process start → first answer) | release binary | median | max | first answer |\n|---|---|---|---|---|\n",
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {:.1} MiB | {} | {} | {} |\n",
            r.binary,
            r.size_bytes as f64 / (1024.0 * 1024.0),
            ms(r.median),
            ms(r.max),
            r.outcome
        ));
    }
    out
}
