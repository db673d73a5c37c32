//! Re-signs the webhook events in `events/` after an edit: Stream's (`webhook-*.json`) get `x-signature`, the HMAC
//! of the body; HubSpot's (`hubspot-webhook-*.json`) get `x-hubspot-signature-v3`, over the method, the URL called,
//! the body and `x-hubspot-request-timestamp`. Files named `*bad-signature*` get a signature made with another
//! secret, so they stay invalid.
//!
//! Usage: `cargo run -p infra --bin sign-events [-- --check] [events-dir]`. The secrets are `STREAM_API_SECRET` and
//! `HUBSPOT_CLIENT_SECRET` or, by default, the documented test secrets the tests use.

use chat_sync::adapters::stream::sign_body;
use chat_sync::handlers::hubspot_webhooks::signature::Signed;
use infra::invoke_env::{EVENTS_HUBSPOT_CLIENT_SECRET, EVENTS_STREAM_SECRET};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

/// Who signs a file, and how.
enum Signer {
    Stream(String),
    HubSpot(String),
}

impl Signer {
    fn for_file(name: &str, stream: &str, hubspot: &str) -> Option<Self> {
        let bad = name.contains("bad-signature");
        if name.starts_with("hubspot-webhook-") {
            Some(Self::HubSpot(
                if bad {
                    "not-the-client-secret"
                } else {
                    hubspot
                }
                .to_owned(),
            ))
        } else if name.starts_with("webhook-") {
            Some(Self::Stream(
                if bad { "not-the-app-secret" } else { stream }.to_owned(),
            ))
        } else {
            None
        }
    }

    /// The header and its value for this Lambda event.
    fn sign(&self, event: &Value, body: &str) -> Result<(&'static str, String), String> {
        match self {
            Self::Stream(secret) => Ok(("x-signature", sign_body(secret, body.as_bytes()))),
            Self::HubSpot(secret) => {
                let text = |pointer: &str| {
                    event
                        .pointer(pointer)
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("no {pointer}"))
                };
                // The URL API Gateway received, as the handler rebuilds it (lambda_http: Host + rawPath + query).
                let query = text("/rawQueryString").unwrap_or_default();
                let uri = format!(
                    "https://{}{}{}{query}",
                    text("/headers/host")?,
                    text("/rawPath")?,
                    if query.is_empty() { "" } else { "?" },
                );
                let signed = Signed {
                    method: text("/requestContext/http/method")?,
                    uri: &uri,
                    body: body.as_bytes(),
                    timestamp: text("/headers/x-hubspot-request-timestamp")?,
                };
                Ok((
                    "x-hubspot-signature-v3",
                    signed.sign(&secret.clone().into()),
                ))
            }
        }
    }
}

fn main() -> ExitCode {
    let mut check = false;
    let mut dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../events"));
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!(
                    "sign-events [--check] [DIR]: re-sign webhook-*.json and hubspot-webhook-*.json in DIR (default: events/)"
                );
                return ExitCode::SUCCESS;
            }
            other => dir = PathBuf::from(other),
        }
    }
    let secret =
        std::env::var("STREAM_API_SECRET").unwrap_or_else(|_| EVENTS_STREAM_SECRET.to_owned());
    let hubspot = std::env::var("HUBSPOT_CLIENT_SECRET")
        .unwrap_or_else(|_| EVENTS_HUBSPOT_CLIENT_SECRET.to_owned());
    match sign_all(&dir, &secret, &hubspot, check) {
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

/// Signs every webhook file; returns the files whose signature changed (or would change, with `check`).
fn sign_all(
    dir: &PathBuf,
    secret: &str,
    hubspot: &str,
    check: bool,
) -> Result<Vec<String>, String> {
    let mut changed = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                (n.starts_with("webhook-") || n.starts_with("hubspot-webhook-"))
                    && n.ends_with(".json")
            })
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
        let Some(signer) = Signer::for_file(&name, secret, hubspot) else {
            continue;
        };
        let (header, signature) = signer
            .sign(&event, &body)
            .map_err(|e| format!("{name}: {e}"))?;
        let headers = event
            .get_mut("headers")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("{name}: no headers object"))?;
        if headers.get(header).and_then(Value::as_str) == Some(signature.as_str()) {
            continue;
        }
        changed.push(name.clone());
        if !check {
            headers.insert(header.into(), Value::String(signature));
            let pretty =
                serde_json::to_string_pretty(&event).map_err(|e| format!("{name}: {e}"))?;
            std::fs::write(&path, pretty + "\n").map_err(|e| format!("{name}: {e}"))?;
        }
    }
    Ok(changed)
}
