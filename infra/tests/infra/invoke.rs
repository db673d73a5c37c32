//! The Lambda binaries under the Lambda Runtime API, the protocol `cargo lambda watch` and AWS run them with: every
//! row of the README's event table gives its documented answer in `make invoke-env`'s environment, and a cold start
//! with a variable missing reports an init error at once, names the variable, prints no secret and exits non-zero.

use crate::support::repo_root;
use infra::event_table;
use infra::invoke_env::{InvokeEnv, Ports, EVENTS_ORIGIN, TABLE};
use infra::lambda_watch;
use infra::runtime_api::{Invocation, Outcome, RuntimeApi};
use infra::sam_local;
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

/// The Lambda binaries, built once per test run with the cargo running the tests (same target directory and
/// profile), found from cargo's own build messages.
fn binaries() -> &'static BTreeMap<String, PathBuf> {
    static BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let output = std::process::Command::new(env!("CARGO"))
            .current_dir(repo_root())
            .args(["build", "--locked", "--message-format=json"])
            .args(["-p", "registration", "-p", "webhook", "-p", "sweeper"])
            .args(["-p", "hubspot-webhooks", "-p", "agent-sessions"])
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
        for name in [
            "registration",
            "webhook",
            "sweeper",
            "hubspot-webhooks",
            "agent-sessions",
        ] {
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

/// The function's answer as an HTTP response: status and JSON body (null if none).
fn http_answer(file: &str, run: &Run) -> (u64, Value) {
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
    (response["statusCode"].as_u64().expect("statusCode"), body)
}

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).expect("README.md")
}

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
    let documented = event_table::files(&readme());
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
        let binary = event_table::binary(file);
        let event = std::fs::read_to_string(events_dir().join(file)).expect("event file");
        let run = invoke(binary, event, &variables).await;
        let context = format!("{file}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
        let answer = run
            .answer
            .as_ref()
            .unwrap_or_else(|| panic!("no answer\n{context}"));
        assert_eq!(answer.outcome, Outcome::Response, "{context}");
        let response: Value = serde_json::from_str(&answer.body).expect("the response is JSON");
        let checked = event_table::Answer {
            response: &response,
            log: &run.stdout,
        };
        if let Err(problem) = event_table::check(file, &checked, EVENTS_ORIGIN, TABLE) {
            panic!("{problem}\n{context}");
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
            let (status, body) = http_answer(file, &run);
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

/// The lines of the README's local-invoke section that start with one of `prefixes`, without their `# ` comment.
fn readme_commands<'a>(readme: &'a str, prefixes: &[&str]) -> Vec<&'a str> {
    event_table::section(readme)
        .expect("the README has its local-invoke section")
        .lines()
        .map(|line| line.split(" # ").next().unwrap_or_default().trim_end())
        .filter(|line| prefixes.iter().any(|prefix| line.starts_with(prefix)))
        .collect()
}

/// The README's invoke commands that start with `prefix` (at least three) each name an event of its table after
/// `flag`, and are word for word what `expected` gives for that event.
fn each_invoke_is_a_row(
    readme: &str,
    commands: &[&str],
    prefix: &str,
    flag: &str,
    expected: impl Fn(&str) -> String,
) {
    let files = event_table::files(readme);
    let invokes: Vec<&&str> = commands.iter().filter(|c| c.starts_with(prefix)).collect();
    assert!(invokes.len() >= 3, "{commands:#?}");
    for command in invokes {
        let file = command
            .split_once(flag)
            .map(|(_, file)| file)
            .unwrap_or_else(|| panic!("{command}: no {flag}FILE"));
        assert!(
            files.iter().any(|f| f == file),
            "{file} is not a row of the table"
        );
        assert_eq!(*command, expected(file));
    }
}

/// The README's `sam local` commands are the ones `make sam-local` runs (infra::sam_local), word for word: the
/// credentials line, one `sam local invoke` per row it shows (each for an event of the table), and start-api.
#[test]
fn the_readme_sam_local_commands_are_the_ones_make_sam_local_runs() {
    let readme = readme();
    let commands = readme_commands(&readme, &["sam ", "export "]);
    assert!(
        commands.contains(&sam_local::export_line().as_str()),
        "the README sets SAM's credentials as make sam-local does: {}\n{commands:#?}",
        sam_local::export_line()
    );
    each_invoke_is_a_row(
        &readme,
        &commands,
        "sam local invoke ",
        "--event events/",
        sam_local::invoke_command,
    );
    assert!(
        commands.contains(&sam_local::start_api_command(3001).as_str()),
        "the README's start-api command is the one make sam-local runs: {}\n{commands:#?}",
        sam_local::start_api_command(3001)
    );
}

/// The README's `cargo lambda watch` commands are the ones `make lambda-watch` runs (infra::lambda_watch), word for
/// word: `make invoke-env`, the watch, and one `cargo lambda invoke` per row it shows (each for an event of the table).
#[test]
fn the_readme_cargo_lambda_commands_are_the_ones_make_lambda_watch_runs() {
    let readme = readme();
    let commands = readme_commands(&readme, &["cargo lambda ", "make invoke-env"]);
    for command in [lambda_watch::ENV_COMMAND, lambda_watch::WATCH_COMMAND] {
        assert!(
            commands.contains(&command),
            "the README runs `{command}` as make lambda-watch does:\n{commands:#?}"
        );
    }
    each_invoke_is_a_row(
        &readme,
        &commands,
        "cargo lambda invoke ",
        "--data-file events/",
        lambda_watch::invoke_command,
    );
}

/// `samconfig.toml`'s `local` environment gives every `sam local` command the ARNs the local Secrets Manager serves.
#[test]
fn the_local_sam_config_names_the_secrets_the_local_secrets_manager_serves() {
    let text = std::fs::read_to_string(repo_root().join("samconfig.toml")).expect("samconfig.toml");
    let config: toml::Value = toml::from_str(&text).expect("samconfig.toml is TOML");
    for command in ["local_invoke", "local_start_api", "local_start_lambda"] {
        let parameters = &config["local"][command]["parameters"];
        let overrides = parameters["parameter_overrides"]
            .as_str()
            .unwrap_or_else(|| panic!("local.{command}: no parameter_overrides"));
        for (parameter, arn) in infra::invoke_env::SECRET_ARNS {
            assert!(
                overrides
                    .split_whitespace()
                    .any(|o| o == format!("{parameter}={arn}")),
                "local.{command}: {parameter} is not {arn}"
            );
        }
        assert_eq!(
            parameters["env_vars"].as_str(),
            Some(sam_local::ENV_VARS_FILE),
            "local.{command}"
        );
    }
}
