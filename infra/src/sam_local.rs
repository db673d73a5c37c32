//! `make sam-local`: every row of the README's event table through `sam local invoke`, with the real `template.yaml`
//! (built by `sam build`), in Docker, as a user runs them; one line per row, and an error if any row's answer is not
//! the documented one.
//!
//! The functions run with the template's environment, as deployed, with only what `samconfig.toml`'s `local`
//! environment and the `--env-vars` file this writes ([`ENV_VARS_FILE`]) change: the endpoints (DynamoDB Local, the
//! local Secrets Manager, the HubSpot and Stream sandboxes), all listening on the docker bridge's address, which the
//! containers reach. The commands run are the README's, word for word ([`invoke_command`]; a test compares them),
//! plus `--invoke-image IMAGE --skip-pull-image` on a machine that cannot pull AWS's base image (`make sam-local`
//! then builds a stand-in, infra/sam-local/standin-image.sh).

use crate::event_table;
use crate::invoke_env::{InvokeEnv, InvokeEnvError, Ports, EVENTS_ORIGIN, TABLE};
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Where the `--env-vars` file is written, relative to the repository (beside `sam build`'s output, git-ignored).
pub const ENV_VARS_FILE: &str = ".aws-sam/local-env-vars.json";

/// The variables `sam` must run with: DynamoDB Local keeps one database per access key and region, and SAM hands
/// the functions the credentials and region of its own session.
pub const SAM_ENVIRONMENT: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "local"),
    ("AWS_SECRET_ACCESS_KEY", "local"),
    ("AWS_REGION", "us-east-1"),
];

/// The longest one `sam local invoke` may take: a container start, the function's cold start and its work.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);

/// The template's logical id of the function a Lambda binary is built for (`Metadata.BuildProperties.Binary`).
pub fn function_id(binary: &str) -> &'static str {
    match binary {
        "registration" => "RegistrationFunction",
        "webhook" => "WebhookFunction",
        "sweeper" => "SweeperFunction",
        "hubspot-webhooks" => "HubSpotWebhooksFunction",
        _ => "UnknownFunction",
    }
}

/// The README's command for one row of its event table.
pub fn invoke_command(file: &str) -> String {
    format!(
        "sam local invoke {} --config-env local --event events/{file}",
        function_id(event_table::binary(file))
    )
}

/// The README's line that sets [`SAM_ENVIRONMENT`].
pub fn export_line() -> String {
    let pairs: Vec<String> = SAM_ENVIRONMENT
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    format!("export {}", pairs.join(" "))
}

#[derive(Debug, thiserror::Error)]
pub enum SamLocalError {
    #[error(transparent)]
    Environment(#[from] InvokeEnvError),
    #[error("cannot write {path}: {source}")]
    EnvVarsFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("README.md: {0}")]
    Readme(String),
    #[error("{failed} of {total} rows did not give their documented answer")]
    Rows { failed: usize, total: usize },
}

/// How to run `sam`.
pub struct Sam {
    /// The repository: `sam` runs there (template.yaml, samconfig.toml, .aws-sam/build, events/).
    pub root: PathBuf,
    /// The `sam` executable.
    pub program: PathBuf,
    /// A local base image to use instead of AWS's, when AWS's cannot be pulled.
    pub invoke_image: Option<String>,
}

impl Sam {
    fn command(&self, line: &str) -> tokio::process::Command {
        let mut words = line.split_whitespace().skip(1);
        let mut command = tokio::process::Command::new(&self.program);
        command.current_dir(&self.root).args(words.by_ref());
        if let Some(image) = &self.invoke_image {
            command.args(["--invoke-image", image, "--skip-pull-image"]);
        }
        command.envs(SAM_ENVIRONMENT).env("SAM_CLI_TELEMETRY", "0");
        command
    }
}

/// What one `sam local invoke` printed: the function's answer (its last stdout line) and everything else.
struct Invocation {
    response: Option<Value>,
    stdout: String,
    stderr: String,
    took: Duration,
}

async fn invoke(sam: &Sam, line: &str) -> Result<Invocation, String> {
    let started = Instant::now();
    let child = sam
        .command(line)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", sam.program.display()))?;
    let output = tokio::time::timeout(INVOKE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("no answer within {INVOKE_TIMEOUT:?}"))?
        .map_err(|e| format!("sam: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let response = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<Value>(line.trim()).ok());
    Ok(Invocation {
        response,
        stdout,
        stderr,
        took: started.elapsed(),
    })
}

/// Starts the local services on `host`, writes [`ENV_VARS_FILE`] and returns them (running until dropped).
pub async fn environment(root: &Path, host: IpAddr) -> Result<InvokeEnv, SamLocalError> {
    let env = InvokeEnv::start_on(
        host,
        Ports {
            dynamodb: 0,
            hubspot: 0,
            stream: 0,
        },
        &root.join("events"),
    )
    .await?;
    let path = root.join(ENV_VARS_FILE);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| SamLocalError::EnvVarsFile {
            path: path.clone(),
            source,
        })?;
    }
    let text = serde_json::to_string_pretty(&env.sam_env_vars()).unwrap_or_default();
    std::fs::write(&path, text + "\n")
        .map_err(|source| SamLocalError::EnvVarsFile { path, source })?;
    Ok(env)
}

/// Runs every row of the README's table through `sam local invoke` in `env`, printing one line per row.
pub async fn check_rows(sam: &Sam, env: &InvokeEnv) -> Result<(), SamLocalError> {
    let readme = std::fs::read_to_string(sam.root.join("README.md"))
        .map_err(|e| SamLocalError::Readme(e.to_string()))?;
    let files = event_table::files(&readme);
    if files.is_empty() {
        return Err(SamLocalError::Readme(format!(
            "no event table under {:?}",
            event_table::SECTION
        )));
    }
    let mut failed = 0;
    for file in &files {
        let line = invoke_command(file);
        let outcome = invoke(sam, &line).await.and_then(|run| {
            let response = run.response.as_ref().ok_or_else(|| {
                format!(
                    "no answer\nstdout:\n{}\nstderr:\n{}",
                    run.stdout, run.stderr
                )
            })?;
            let answer = event_table::Answer {
                response,
                log: &run.stderr,
            };
            event_table::check(file, &answer, EVENTS_ORIGIN, TABLE)
                .map(|summary| (summary, run.took))
                .map_err(|problem| format!("{problem}\nsam's output:\n{}", run.stderr))
        });
        match outcome {
            Ok((summary, took)) => println!("ok   {file:<40} {summary} ({} ms)", took.as_millis()),
            Err(problem) => {
                failed += 1;
                println!("FAIL {file:<40} {line}: {problem}");
            }
        }
    }
    // The message events reached the sample conversation's contact in the sandbox HubSpot, through the sweep.
    let sample = env.sample();
    let transcript = env
        .hubspot()
        .contact_by_email(crate::invoke_env::SAMPLE_EMAIL)
        .and_then(|contact| contact.properties.get("chat_transcript").cloned())
        .unwrap_or_default();
    if transcript.contains(&sample.visitor_name) {
        println!(
            "ok   the sample conversation is in the sandbox contact's chat_transcript ({} characters)",
            transcript.len()
        );
    } else {
        failed += 1;
        println!("FAIL the sample conversation is not in the sandbox contact's chat_transcript: {transcript:?}");
    }
    match failed {
        0 => Ok(()),
        failed => Err(SamLocalError::Rows {
            failed,
            total: files.len() + 1,
        }),
    }
}

/// The docker bridge's address on this host (the gateway of docker's default network): the containers SAM starts
/// reach the host there. Older daemons leave the gateway out of the network's description: then the address of the
/// bridge's interface (docker0).
pub async fn docker_bridge_address() -> Result<IpAddr, String> {
    let run = |program: &'static str, args: Vec<String>| async move {
        let output = tokio::process::Command::new(program)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        Ok::<String, String>(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let ipv4 = |text: &str| {
        text.split(|c: char| c.is_whitespace() || c == '/')
            .find_map(|word| word.parse::<IpAddr>().ok().filter(IpAddr::is_ipv4))
    };
    let inspect = |format: &str| {
        ["network", "inspect", "bridge", "--format", format]
            .map(str::to_owned)
            .to_vec()
    };
    let gateway = run(
        "docker",
        inspect("{{range .IPAM.Config}}{{.Gateway}} {{end}}"),
    )
    .await?;
    if let Some(address) = ipv4(&gateway) {
        return Ok(address);
    }
    let name = run(
        "docker",
        inspect("{{index .Options \"com.docker.network.bridge.name\"}}"),
    )
    .await?;
    let name = match name.trim() {
        "" | "<no value>" => "docker0".to_owned(),
        name => name.to_owned(),
    };
    let addresses = run(
        "ip",
        ["-4", "-o", "addr", "show", "dev", &name]
            .map(str::to_owned)
            .to_vec(),
    )
    .await?;
    addresses
        .split_whitespace()
        .skip_while(|word| *word != "inet")
        .nth(1)
        .and_then(ipv4)
        .ok_or_else(|| {
            format!("docker's bridge network has no IPv4 address (interface {name}): {addresses}")
        })
}

/// The README's command that serves the HTTP API (registration, HubSpot's webhooks) locally.
pub fn start_api_command(port: u16) -> String {
    format!("sam local start-api --config-env local --port {port} --warm-containers EAGER")
}

/// The command that serves the Lambda Invoke API locally: Stream's webhook is a Function URL, which `sam local`
/// does not serve, so [`function_url`] turns each delivery into an invocation through it.
pub fn start_lambda_command(port: u16) -> String {
    format!("sam local start-lambda --config-env local --port {port} --warm-containers EAGER")
}

/// A `sam local start-*` server, stopped when dropped.
struct Server {
    child: tokio::process::Child,
    log: PathBuf,
    url: String,
}

impl Server {
    async fn start(sam: &Sam, line: &str, port: u16, log: PathBuf) -> Result<Self, String> {
        let file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        let child = sam
            .command(line)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", sam.program.display()))?;
        let server = Self {
            child,
            log,
            url: format!("http://127.0.0.1:{port}"),
        };
        // Warm containers: SAM answers once every function's container is up.
        let deadline = Instant::now() + Duration::from_secs(180);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                return Err(format!(
                    "{line}: not listening after 180 s\n{}",
                    server.log_text()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(server)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM: SAM then removes its warm containers (SIGINT may be ignored: a background job inherits that).
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// What the Function URL bridge answered Stream, per delivery.
type Deliveries = std::sync::Arc<std::sync::Mutex<Vec<(u16, String)>>>;

/// Stream's webhook deliveries as Lambda receives a Function URL request (payload 2.0, the shape of
/// `events/webhook-message-new.json`), invoked through `sam local start-lambda`, its answer sent back to Stream.
async fn function_url(
    lambda: String,
    shape: Value,
    deliveries: Deliveries,
) -> Result<(String, tokio::task::JoinHandle<()>), String> {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let client = reqwest::Client::new();
    let handler = move |headers: HeaderMap, body: String| {
        let (client, lambda, deliveries) = (client.clone(), lambda.clone(), deliveries.clone());
        let mut event = shape.clone();
        async move {
            let mut fields = serde_json::Map::new();
            for (name, value) in &headers {
                if let Ok(value) = value.to_str() {
                    fields.insert(name.as_str().to_owned(), Value::from(value));
                }
            }
            event["headers"] = Value::Object(fields);
            event["body"] = Value::from(body);
            event["isBase64Encoded"] = Value::from(false);
            let url = format!("{lambda}/2015-03-31/functions/WebhookFunction/invocations");
            let answer = match client.post(url).json(&event).send().await {
                Ok(response) => response.json::<Value>().await.unwrap_or(Value::Null),
                Err(error) => Value::from(error.to_string()),
            };
            let status = answer["statusCode"].as_u64().unwrap_or(502) as u16;
            let body = answer["body"].as_str().unwrap_or_default().to_owned();
            if let Ok(mut deliveries) = deliveries.lock() {
                deliveries.push((status, body.clone()));
            }
            (
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                [("content-type", "application/json")],
                body,
            )
                .into_response()
        }
    };
    let router = axum::Router::new().route("/", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((format!("http://{addr}/"), task))
}

/// A page holding only the widget's embed tag (infra/static/embed-example.html) whose registration URL is `api`.
async fn embed_page(
    root: &Path,
    api: &str,
) -> Result<(String, tokio::task::JoinHandle<()>), String> {
    let template = std::fs::read_to_string(root.join("infra/static/embed-example.html"))
        .map_err(|e| format!("infra/static/embed-example.html: {e}"))?;
    let bundle = std::fs::read(root.join("widget/dist/chat-sync-widget.js"))
        .map_err(|e| format!("widget/dist/chat-sync-widget.js (make widget): {e}"))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| e.to_string())?;
    let origin = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let page = template
        .replace("{{ORIGIN}}/registrations", &format!("{api}/registrations"))
        .replace("{{ORIGIN}}", &origin);
    let router = axum::Router::new()
        .route(
            "/",
            axum::routing::get(move || async move { axum::response::Html(page) }),
        )
        .route(
            "/chat-sync-widget.js",
            axum::routing::get(
                move || async move { ([("content-type", "text/javascript")], bundle) },
            ),
        );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((format!("{origin}/"), task))
}

/// `sam local start-api`: the widget, in headless Chromium on a page that embeds it, registers through the API SAM
/// serves, and sends a message; Stream's webhook reaches the webhook function (through `sam local start-lambda`)
/// and, after a sweep, the message is in the visitor's contact in the sandbox CRM. One line per step.
pub async fn check_start_api(sam: &Sam, env: &InvokeEnv) -> Result<(), String> {
    let logs = sam.root.join(".aws-sam");
    let (api_port, lambda_port) = (free_port()?, free_port()?);
    let api = Server::start(
        sam,
        &start_api_command(api_port),
        api_port,
        logs.join("start-api.log"),
    )
    .await?;
    let lambda = Server::start(
        sam,
        &start_lambda_command(lambda_port),
        lambda_port,
        logs.join("start-lambda.log"),
    )
    .await;
    let lambda = match lambda {
        Ok(lambda) => lambda,
        Err(error) => {
            api.stop().await;
            return Err(error);
        }
    };
    let outcome = browse(sam, env, &api.url, &lambda.url).await;
    let api_log = api.log_text();
    let lambda_log = lambda.log_text();
    api.stop().await;
    lambda.stop().await;
    outcome.map_err(|problem| {
        format!("{problem}\nsam local start-api:\n{api_log}\nsam local start-lambda:\n{lambda_log}")
    })
}

async fn browse(sam: &Sam, env: &InvokeEnv, api: &str, lambda: &str) -> Result<(), String> {
    let shape: Value = std::fs::read_to_string(sam.root.join("events/webhook-message-new.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .ok_or("events/webhook-message-new.json is not JSON")?;
    let deliveries = Deliveries::default();
    let (webhook_url, bridge) = function_url(lambda.to_owned(), shape, deliveries.clone()).await?;
    env.stream().set_webhook_url(Some(webhook_url));
    let (page, server) = embed_page(&sam.root, api).await?;
    let stamp = uuid::Uuid::new_v4().simple().to_string();
    let email = format!("grace.{}@example.com", &stamp[..8]);
    let text = format!("Hello through sam local {}", &stamp[..8]);
    let started = Instant::now();
    let browser = tokio::process::Command::new("node")
        .arg(sam.root.join("infra/e2e/sam-local.mjs"))
        .args([&page, &email, &text])
        .current_dir(&sam.root)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), browser)
        .await
        .map_err(|_| "the browser did not finish within 180 s".to_owned())?
        .map_err(|e| format!("cannot run node: {e}"))?;
    server.abort();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bridge.abort();
        return Err(format!(
            "FAIL the widget through sam local start-api:\n{report}"
        ));
    }
    println!(
        "ok   the widget registered through sam local start-api and sent a message ({} ms)",
        started.elapsed().as_millis()
    );

    // Stream's webhook for the message, answered `recorded` by the webhook function.
    let deadline = Instant::now() + Duration::from_secs(60);
    let recorded = loop {
        let answers = deliveries.lock().map(|d| d.clone()).unwrap_or_default();
        if answers
            .iter()
            .any(|(status, body)| *status == 200 && body.contains("recorded"))
        {
            break answers;
        }
        if Instant::now() > deadline {
            bridge.abort();
            return Err(format!(
                "FAIL no webhook delivery was recorded: {answers:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    bridge.abort();
    println!(
        "ok   Stream's webhook reached the webhook function through SAM: {} deliveries, answered {:?}",
        recorded.len(),
        recorded.iter().map(|(status, _)| *status).collect::<Vec<_>>()
    );

    // A sweep, as the schedule runs it, then the message is in the visitor's contact.
    let schedule = std::fs::read_to_string(sam.root.join("events/sweeper-schedule.json"))
        .map_err(|e| format!("events/sweeper-schedule.json: {e}"))?;
    let sweep = reqwest::Client::new()
        .post(format!(
            "{lambda}/2015-03-31/functions/SweeperFunction/invocations"
        ))
        .body(schedule)
        .send()
        .await
        .map_err(|e| format!("the sweep: {e}"))?
        .text()
        .await
        .unwrap_or_default();
    let transcript = env
        .hubspot()
        .contact_by_email(&email)
        .and_then(|contact| contact.properties.get("chat_transcript").cloned())
        .unwrap_or_default();
    if !transcript.contains(&text) {
        return Err(format!(
            "FAIL the message is not in {email}'s chat_transcript in the sandbox CRM: {transcript:?} (sweep: {sweep})"
        ));
    }
    println!("ok   the message is in the visitor's contact in the sandbox CRM (chat_transcript)");
    Ok(())
}
