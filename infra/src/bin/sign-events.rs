//! Re-signs the webhook events in `events/` after an edit: sets `x-signature` to Stream's HMAC of the body.
//! Files named `*bad-signature*` get a signature made with another secret, so they stay invalid.
//!
//! Usage: `cargo run -p infra --bin sign-events [-- --check] [events-dir]`. The secret is `STREAM_API_SECRET`
//! or, by default, the documented test secret the tests use.

use chat_sync::adapters::stream::sign_body;
use infra::invoke_env::EVENTS_STREAM_SECRET;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../events"));
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!(
                    "sign-events [--check] [DIR]: re-sign webhook-*.json in DIR (default: events/)"
                );
                return ExitCode::SUCCESS;
            }
            other => dir = PathBuf::from(other),
        }
    }
    let secret =
        std::env::var("STREAM_API_SECRET").unwrap_or_else(|_| EVENTS_STREAM_SECRET.to_owned());
    match sign_all(&dir, &secret, check) {
        Ok(changed) if check && !changed.is_empty() => {
            eprintln!(
                "these events are not signed correctly: {}",
                changed.join(", ")
            );
            ExitCode::FAILURE
        }
        Ok(changed) => {
            for name in changed {
                println!("signed {name}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("sign-events: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Signs every `webhook-*.json`; returns the files whose signature changed (or would change, with `check`).
fn sign_all(dir: &PathBuf, secret: &str, check: bool) -> Result<Vec<String>, String> {
    let mut changed = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("webhook-") && n.ends_with(".json"))
        })
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
        let mut event: Value = serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
        let body = event
            .get("body")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{name}: no string body"))?
            .to_owned();
        let key = if name.contains("bad-signature") {
            "not-the-app-secret"
        } else {
            secret
        };
        let signature = sign_body(key, body.as_bytes());
        let headers = event
            .get_mut("headers")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("{name}: no headers object"))?;
        if headers.get("x-signature").and_then(Value::as_str) == Some(signature.as_str()) {
            continue;
        }
        changed.push(name.clone());
        if !check {
            headers.insert("x-signature".into(), Value::String(signature));
            let pretty =
                serde_json::to_string_pretty(&event).map_err(|e| format!("{name}: {e}"))?;
            std::fs::write(&path, pretty + "\n").map_err(|e| format!("{name}: {e}"))?;
        }
    }
    Ok(changed)
}
