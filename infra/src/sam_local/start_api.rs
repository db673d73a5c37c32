//! `sam local start-api` with the widget: a page embedding it, in headless Chromium (infra/e2e/sam-local.mjs),
//! registers through the API SAM serves and sends a message; Stream's webhook, a Function URL (which `sam local`
//! does not serve), reaches the webhook function through `sam local start-lambda`; a sweep, and the message is in
//! the sandbox CRM. Warm containers (`--warm-containers EAGER`): a webhook must be answered within Stream's 6 s.

use super::Sam;
use crate::invoke_env::InvokeEnv;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

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
        let mut server = Self {
            child,
            log,
            url: format!("http://127.0.0.1:{port}"),
        };
        // Warm containers: SAM answers once every function's container is up, or exits if one cannot start.
        let deadline = Instant::now() + Duration::from_secs(180);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("{line}: exited ({status})\n{}", server.log_text()));
            }
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

    /// `start`, once more if SAM drew one host port for two of its warm containers (it picks each at random, and
    /// checks that it is free before any of them has started): Docker refuses the second, and SAM gives up. The
    /// containers it had started are removed first.
    async fn start_retrying(
        sam: &Sam,
        line: &str,
        port: u16,
        log: PathBuf,
    ) -> Result<Self, String> {
        match Self::start(sam, line, port, log.clone()).await {
            Err(error) if error.contains("port is already allocated") => {
                eprintln!("sam-local: SAM gave two containers one port; starting it again");
                remove_leftover_containers(&sam.root).await;
                Self::start(sam, line, port, log).await
            }
            other => other,
        }
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
    let api = Server::start_retrying(
        sam,
        &start_api_command(api_port),
        api_port,
        logs.join("start-api.log"),
    )
    .await;
    let api = match api {
        Ok(api) => api,
        Err(error) => {
            remove_leftover_containers(&sam.root).await;
            return Err(error);
        }
    };
    let lambda = Server::start_retrying(
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
            remove_leftover_containers(&sam.root).await;
            return Err(error);
        }
    };
    let outcome = browse(sam, env, &api.url, &lambda.url).await;
    let api_log = api.log_text();
    let lambda_log = lambda.log_text();
    api.stop().await;
    lambda.stop().await;
    remove_leftover_containers(&sam.root).await;
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

/// Removes the function containers SAM left running for this checkout's `.aws-sam/build` (on SIGTERM it removes its
/// warm containers, but not always those it started for invocations while the warm ones were busy). Containers of
/// other checkouts are left alone.
async fn remove_leftover_containers(root: &Path) {
    let build = root.join(".aws-sam/build");
    let docker = |args: Vec<String>| async move {
        tokio::process::Command::new("docker")
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .await
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let ids = docker(
        [
            "ps",
            "-aq",
            "--filter",
            "label=sam.cli.container.type=lambda",
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .await;
    let ids: Vec<String> = ids.split_whitespace().map(str::to_owned).collect();
    if ids.is_empty() {
        return;
    }
    let mut inspect = vec![
        "inspect".to_owned(),
        "--format".to_owned(),
        "{{.Id}} {{range .Mounts}}{{.Source}} {{end}}".to_owned(),
    ];
    inspect.extend(ids);
    let ours: Vec<String> = docker(inspect)
        .await
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let id = words.next()?;
            words
                .any(|source| Path::new(source).starts_with(&build))
                .then(|| id.to_owned())
        })
        .collect();
    if !ours.is_empty() {
        let mut remove = vec!["rm".to_owned(), "-f".to_owned()];
        remove.extend(ours);
        docker(remove).await;
    }
}
