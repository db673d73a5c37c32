//! The Lambda binaries under the Lambda Runtime API, the protocol `cargo lambda watch` and AWS run them with: every
//! row of the README's event table gives its documented answer in `make invoke-env`'s environment, and a cold start
//! with a variable missing reports an init error at once, names the variable, prints no secret and exits non-zero.

use crate::support::repo_root;
use infra::invoke_env::{InvokeEnv, Ports, EVENTS_ORIGIN};
use infra::runtime_api::{Invocation, Outcome, RuntimeApi};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

fn events_dir() -> PathBuf {
    repo_root().join("events")
}

/// The three Lambda binaries, built once per test run with the cargo running the tests (same target directory and
/// profile), found from cargo's own build messages.
fn binaries() -> &'static BTreeMap<String, PathBuf> {
    static BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let output = std::process::Command::new(env!("CARGO"))
            .current_dir(repo_root())
            .args(["build", "--locked", "--message-format=json"])
            .args(["-p", "registration", "-p", "webhook", "-p", "sweeper"])
            .args(["-p", "hubspot-webhooks"])
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build");
        assert!(
            output.status.success(),
            "cargo build of the Lambda binaries failed"
        );
        let mut found = BTreeMap::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Ok(message) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if let (Some(name), Some(path)) = (
                message["target"]["name"].as_str(),
                message["executable"].as_str(),
            ) {
                found.insert(name.to_owned(), PathBuf::from(path));
            }
        }
        for name in ["registration", "webhook", "sweeper", "hubspot-webhooks"] {
            assert!(
                found.contains_key(name),
                "cargo built no {name} binary: {found:?}"
            );
        }
        found
    })
}

/// What one cold start and invocation produced.
struct Run {
    answer: Option<Invocation>,
    exit_code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Starts `binary` as Lambda would, with only `variables` set, and hands it `event` through the Runtime API.
async fn invoke(binary: &str, event: String, variables: &[(&str, String)]) -> Run {
    let api = RuntimeApi::start(event)
        .await
        .expect("Runtime API emulator");
    let mut command = tokio::process::Command::new(&binaries()[binary]);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.host())
        .env("AWS_LAMBDA_FUNCTION_NAME", binary)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256");
    for (name, value) in variables {
        command.env(name, value);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the binary");
    let pid = child.id();
    let answer = api.answer(ANSWER_TIMEOUT).await;
    // A function that answered waits for its next event: end it, as Lambda ends an idle environment.
    let exited = tokio::time::timeout(Duration::from_secs(5), async {
        let mut child = child;
        if answer
            .as_ref()
            .is_some_and(|a| a.outcome != Outcome::InitError)
        {
            child.start_kill().ok();
        }
        child.wait_with_output().await
    })
    .await
    .unwrap_or_else(|_| panic!("{binary} (pid {pid:?}) did not exit"))
    .expect("collect the binary's output");
    Run {
        answer,
        exit_code: exited.status.code(),
        stdout: String::from_utf8_lossy(&exited.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&exited.stderr).into_owned(),
    }
}

/// The function's answer as an HTTP response: status, headers, JSON body (null if none).
fn http_answer(file: &str, run: &Run) -> (u64, Value, Value) {
    let answer = run
        .answer
        .as_ref()
        .unwrap_or_else(|| panic!("{file}: no answer\n{}\n{}", run.stdout, run.stderr));
    assert_eq!(answer.outcome, Outcome::Response, "{file}: {}", answer.body);
    let response: Value = serde_json::from_str(&answer.body).expect("the response is JSON");
    let body = response["body"]
        .as_str()
        .filter(|b| !b.is_empty())
        .map(|b| serde_json::from_str(b).expect("the body is JSON"))
        .unwrap_or(Value::Null);
    (
        response["statusCode"].as_u64().expect("statusCode"),
        response["headers"].clone(),
        body,
    )
}

/// The event files the README's "Invoke the functions locally" table lists.
fn readme_event_files() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let section = readme
        .split("## Invoke the functions locally")
        .nth(1)
        .expect("the README has its local-invoke section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    let mut files = Vec::new();
    for row in section
        .lines()
        .filter(|l| l.starts_with("| `") && l.contains(".json`"))
    {
        let first_cell = row.split('|').nth(1).unwrap_or_default();
        // `webhook-message-new.json`, `-updated.json`, `-deleted.json`: suffixes continue the first name.
        let mut stem = String::new();
        for name in first_cell.split('`').skip(1).step_by(2) {
            let name = match name.strip_prefix('-') {
                Some(suffix) => format!("{stem}-{suffix}"),
                None => {
                    stem = name
                        .rsplit_once('-')
                        .map(|(s, _)| s.to_owned())
                        .unwrap_or_default();
                    name.to_owned()
                }
            };
            files.push(name);
        }
    }
    files
}

/// The rows of the README's table answered with a status and one JSON field: (file, status, field, value).
const SIMPLE_ANSWERS: [(&str, u64, &str, &str); 12] = [
    (
        "registration-invalid-email.json",
        400,
        "code",
        "invalid_email",
    ),
    ("registration-bad-json.json", 400, "code", "invalid_json"),
    ("webhook-message-new.json", 200, "status", "recorded"),
    ("webhook-message-updated.json", 200, "status", "recorded"),
    ("webhook-message-deleted.json", 200, "status", "recorded"),
    ("webhook-message-undeleted.json", 200, "status", "recorded"),
    ("webhook-unknown-event.json", 200, "status", "ignored"),
    ("webhook-unknown-channel.json", 200, "status", "ignored"),
    (
        "webhook-bad-signature.json",
        401,
        "code",
        "invalid_signature",
    ),
    (
        "hubspot-webhook-deletion.json",
        401,
        "code",
        "stale_request",
    ),
    (
        "hubspot-webhook-privacy-deletion.json",
        401,
        "code",
        "stale_request",
    ),
    (
        "hubspot-webhook-bad-signature.json",
        401,
        "code",
        "stale_request",
    ),
];

#[tokio::test]
async fn every_sample_event_gives_its_documented_answer_under_the_runtime_api() {
    let env = InvokeEnv::start(
        Ports {
            dynamodb: 0,
            hubspot: 0,
            stream: 0,
        },
        &events_dir(),
    )
    .await
    .expect("invoke-env starts");
    let variables = env.variables();

    // The README's table, in its order (message events before the sweep that writes them to HubSpot).
    let documented = readme_event_files();
    let mut on_disk: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed = documented.clone();
    listed.sort();
    assert_eq!(
        listed, on_disk,
        "the README's event table lists every file in events/"
    );

    for file in &documented {
        let binary = match file.split_once('-') {
            Some(("hubspot", _)) => "hubspot-webhooks",
            _ => file.split(['-', '.']).next().expect("a prefix"),
        };
        let event = std::fs::read_to_string(events_dir().join(file)).expect("event file");
        let run = invoke(binary, event, &variables).await;
        let context = format!("{file}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
        match file.as_str() {
            "registration.json" => {
                let (status, _, body) = http_answer(file, &run);
                assert_eq!(status, 200, "{context}");
                for field in [
                    "apiKey",
                    "customerId",
                    "customerToken",
                    "channelId",
                    "channelType",
                    "expiresAt",
                ] {
                    assert!(!body[field].is_null(), "{field} in {body}\n{context}");
                }
            }
            "registration-preflight.json" => {
                let (status, headers, _) = http_answer(file, &run);
                assert_eq!(status, 204, "{context}");
                assert_eq!(
                    headers["access-control-allow-origin"], EVENTS_ORIGIN,
                    "{context}"
                );
            }
            "sweeper-schedule.json" => {
                let answer = run.answer.as_ref().expect("the sweeper answers");
                assert_eq!(answer.outcome, Outcome::Response, "{context}");
                let report: Value = serde_json::from_str(&answer.body).expect("the sweep report");
                assert_eq!(
                    report["waiting"], 0,
                    "nothing left behind: {report}\n{context}"
                );
                // Its metrics, as one EMF line among the JSON log lines.
                let emf: Vec<Value> = run
                    .stdout
                    .lines()
                    .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                    .filter(|line| line.get("_aws").is_some())
                    .collect();
                assert_eq!(emf.len(), 1, "one EMF line per sweep\n{context}");
                assert_eq!(emf[0]["Table"], infra::invoke_env::TABLE);
                assert_eq!(emf[0]["BacklogContacts"], report["waiting"]);
                assert_eq!(emf[0]["ParkedContacts"], report["parked_total"]);
            }
            simple => {
                let (field, expected_status, value) = SIMPLE_ANSWERS
                    .iter()
                    .find(|(file, ..)| *file == simple)
                    .map(|(_, status, field, value)| (*field, *status, *value))
                    .unwrap_or_else(|| {
                        panic!("{simple}: the README documents an answer this test does not check")
                    });
                let (status, _, body) = http_answer(file, &run);
                assert_eq!(
                    (status, body[field].as_str()),
                    (expected_status, Some(value)),
                    "{context}"
                );
            }
        }
    }

    // The message events reached the sample conversation's contact in the sandbox HubSpot.
    let sample = env.sample();
    let contact = env
        .hubspot()
        .contact_by_email("ada.lovelace@example.com")
        .expect("the sample contact");
    let transcript = contact
        .properties
        .get("chat_transcript")
        .cloned()
        .unwrap_or_default();
    assert!(
        transcript.contains(&sample.visitor_name),
        "the sample conversation is in the contact's transcript: {transcript:?}"
    );

    // A URL with characters a client sends raw, unsigned: each HTTP function answers 400 and its runtime lives on
    // (lambda_http alone would panic converting the event, leaving the invocation unanswered).
    for (binary, file) in [
        ("webhook", "webhook-message-new.json"),
        ("registration", "registration.json"),
        ("hubspot-webhooks", "hubspot-webhook-deletion.json"),
    ] {
        for query in ["q=\"<>\\x", "q=a b"] {
            let mut event: Value = serde_json::from_str(
                &std::fs::read_to_string(events_dir().join(file)).expect("event file"),
            )
            .expect("JSON");
            event["rawQueryString"] = Value::from(query);
            event["headers"]
                .as_object_mut()
                .expect("headers")
                .retain(|name, _| !name.contains("signature"));
            let run = invoke(binary, event.to_string(), &variables).await;
            let context = format!(
                "{binary} {query:?}\nstdout:\n{}\nstderr:\n{}",
                run.stdout, run.stderr
            );
            let (status, _, body) = http_answer(file, &run);
            assert_eq!(
                (status, body["code"].as_str()),
                (400, Some("invalid_url")),
                "{context}"
            );
            assert!(!run.stderr.contains("panicked"), "{context}");
        }
    }
    env.stop().await.expect("DynamoDB Local stops");
}

#[tokio::test]
async fn a_cold_start_missing_a_variable_reports_an_init_error_and_exits() {
    const SECRET: &str = "stream-secret-that-must-never-be-printed";
    const TOKEN: &str = "pat-na1-token-that-must-never-be-printed";
    let event =
        std::fs::read_to_string(events_dir().join("webhook-unknown-event.json")).expect("event");
    // Everything the webhook needs except TABLE_NAME.
    let variables = [
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "local".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
        ("HUBSPOT_ACCESS_TOKEN", TOKEN.to_owned()),
        ("STREAM_API_SECRET", SECRET.to_owned()),
    ];
    let run = invoke("webhook", event, &variables).await;
    let context = format!("stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let answer = run
        .answer
        .as_ref()
        .unwrap_or_else(|| panic!("no init error was reported\n{context}"));
    assert_eq!(answer.outcome, Outcome::InitError, "{context}");
    assert_eq!(
        answer.error_type.as_deref(),
        Some(chat_sync::lambda::CONFIGURATION_ERROR),
        "{context}"
    );
    let report: Value = serde_json::from_str(&answer.body).expect("the init error is JSON");
    assert_eq!(report["errorType"], chat_sync::lambda::CONFIGURATION_ERROR);
    let message = report["errorMessage"].as_str().expect("errorMessage");
    assert!(
        message.contains("TABLE_NAME"),
        "the message names the variable: {message}"
    );
    assert_eq!(run.exit_code, Some(1), "{context}");
    for printed in [&run.stdout, &run.stderr, &answer.body] {
        assert!(
            !printed.contains(SECRET) && !printed.contains(TOKEN),
            "a secret was printed: {printed}"
        );
    }
}
