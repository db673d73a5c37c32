//! `make dev` as a person uses it: the dev binary started on a machine with no accounts, driven over HTTP and in
//! a headless browser, then stopped with Ctrl-C (SIGINT), which must also stop the DynamoDB Local it started.

use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// DynamoDB Local needs ~3 s; a cold machine under a parallel test run much more.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const SYNC_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);

/// Variables that would switch the server to live mode, another DynamoDB Local or other settings.
const CLEARED: [&str; 12] = [
    "HUBSPOT_ACCESS_TOKEN",
    "HUBSPOT_ACCESS_TOKEN_SECRET_ARN",
    "HUBSPOT_BASE_URL",
    "STREAM_API_KEY",
    "STREAM_API_SECRET",
    "STREAM_API_SECRET_SECRET_ARN",
    "STREAM_BASE_URL",
    "DYNAMODB_LOCAL_ENDPOINT",
    "TABLE_NAME",
    "ALLOWED_ORIGINS",
    "SUPPORT_AGENT_ID",
    "STREAM_CHANNEL_TYPE",
];

/// The dev binary on a free port, with its output in a log file that failures quote.
struct DevServer {
    child: Child,
    base_url: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl DevServer {
    async fn start() -> Self {
        let port = free_port();
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dev-server-{port}.log"));
        let output = std::fs::File::create(&log).expect("create the dev server's log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_dev"));
        for name in CLEARED {
            command.env_remove(name);
        }
        let child = command
            .env("PORT", port.to_string())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log file handle"))
            .stderr(output)
            .spawn()
            .expect("start the dev binary");
        let mut server = Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
        };
        server.wait_until_ready().await;
        server
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the dev server") {
                panic!(
                    "the dev server exited ({status}) before serving:\n{}",
                    self.log_text()
                );
            }
            let page = self.http.get(self.url("/")).send().await;
            if page.is_ok_and(|response| response.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the dev server did not answer GET / within {STARTUP_TIMEOUT:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .expect("GET the dev server");
        json_of(response).await
    }

    async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST to the dev server");
        json_of(response).await
    }

    /// Ctrl-C, as a person would press it; returns how the process ended.
    async fn interrupt(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("run kill");
        assert!(kill.success(), "kill -INT {pid} failed");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the dev server") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the dev server did not stop within {STOP_TIMEOUT:?} of SIGINT:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for DevServer {
    /// A failed test must not leave the server running (its DynamoDB Local dies with it).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("response body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("expected JSON ({e}), got {status}: {text}"));
    (status, body)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn accepts_connections(endpoint: &str) -> bool {
    let address: SocketAddr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{endpoint:?} is not http://IP:PORT: {e}"));
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
}

/// Each expected line ends one of the transcript's lines, in this order, and there is no other message line.
fn has_exactly_in_order(transcript: &str, expected: &[String]) -> bool {
    let messages: Vec<&str> = transcript
        .lines()
        .filter(|line| line.contains(" (visitor): ") || line.contains(" (agent): "))
        .collect();
    messages.len() == expected.len()
        && messages
            .iter()
            .zip(expected)
            .all(|(line, wanted)| line.ends_with(wanted.as_str()))
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing in {value}"))
}

#[tokio::test]
async fn dev_server_syncs_a_conversation_into_the_crm_and_stops_on_ctrl_c() {
    let mut server = DevServer::start().await;

    let page = server
        .http
        .get(server.url("/"))
        .send()
        .await
        .expect("GET /");
    assert!(page
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html")));
    let html = page.text().await.expect("page");
    for id in [
        "firstName",
        "lastName",
        "email",
        "register",
        "registration-status",
        "visitor-text",
        "visitor-send",
        "agent-text",
        "agent-send",
        "transcript",
    ] {
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "the page lacks #{id}"
        );
    }

    let (status, config) = server.get_json("/dev/config").await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["mode"], "sandbox", "{config}");
    let agent = text(&config, "agentId").to_owned();
    let dynamodb = text(&config, "dynamodbEndpoint").to_owned();
    assert!(accepts_connections(&dynamodb));

    // Registration as the page does it: same origin, so CORS allows it.
    let origin = server.base_url.clone();
    let response = server
        .http
        .post(server.url("/registrations"))
        .header("origin", &origin)
        .json(&json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"}))
        .send()
        .await
        .expect("register");
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(origin.as_str())
    );
    let (status, registration) = json_of(response).await;
    assert_eq!(status, 200, "{registration}\n{}", server.log_text());
    let visitor = text(&registration, "customerId").to_owned();
    let channel_type = text(&registration, "channelType").to_owned();
    let channel_id = text(&registration, "channelId").to_owned();
    assert!(!text(&registration, "expiresAt").is_empty());

    let conversation = [
        (
            &visitor,
            "visitor",
            "Hello! I have a question about order #1234.",
        ),
        (&agent, "agent", "Of course, what would you like to know?"),
        (&visitor, "visitor", "When will it ship?"),
    ];
    for (user, _, message) in conversation {
        let (status, sent) = server
            .post_json(
                "/dev/messages",
                &json!({"channelType": channel_type, "channelId": channel_id, "userId": user, "text": message}),
            )
            .await;
        assert_eq!(status, 200, "{sent}\n{}", server.log_text());
        assert_eq!(sent["message"]["text"], message, "{sent}");
    }

    // Stream double → signed webhook → webhook handler → DynamoDB → HubSpot double, read back through the page's API.
    let expected: Vec<String> = conversation
        .iter()
        .map(|(_, role, message)| format!("({role}): {message}"))
        .collect();
    let query = format!("/dev/transcript?channelType={channel_type}&channelId={channel_id}");
    let deadline = Instant::now() + SYNC_TIMEOUT;
    loop {
        let (status, contact) = server.get_json(&query).await;
        assert_eq!(status, 200, "{contact}");
        let transcript = text(&contact, "transcript");
        if has_exactly_in_order(transcript, &expected) {
            assert_eq!(contact["email"], "ada@example.com");
            assert!(!text(&contact, "contactId").is_empty());
            assert!(
                transcript.starts_with(&format!("=== Conversation {channel_id} started ")),
                "{transcript}"
            );
            // The same round wrote the conversation's timeline note.
            let notes = contact["notes"].as_array().cloned().unwrap_or_default();
            assert_eq!(notes.len(), 1, "{contact}");
            let body = text(&notes[0], "body");
            assert!(
                body.contains(&format!(
                    "chat-sync conversation {channel_type}:{channel_id} part 1"
                )),
                "{body}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the transcript did not show the conversation within {SYNC_TIMEOUT:?}; last:\n{transcript}\n\nlog:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Bad input: JSON errors naming the field, nothing sent anywhere.
    let (status, error) = server
        .post_json(
            "/registrations",
            &json!({"firstName": "Ada", "lastName": "Lovelace", "email": "not-an-email"}),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["code"], "invalid_email", "{error}");
    assert!(!text(&error, "error").is_empty());
    let (status, error) = server
        .post_json(
            "/dev/messages",
            &json!({"channelType": channel_type, "channelId": channel_id, "userId": "Not Valid", "text": "hi"}),
        )
        .await;
    assert_eq!(
        (status, &error["field"]),
        (400, &json!("userId")),
        "{error}"
    );
    let (status, error) = server
        .post_json(
            "/dev/messages",
            &json!({"channelType": channel_type, "channelId": channel_id, "userId": "someone-else", "text": "hi"}),
        )
        .await;
    assert_eq!(
        (status, &error["code"]),
        (403, &json!("not_a_member")),
        "{error}"
    );
    let (status, error) = server
        .get_json("/dev/transcript?channelType=messaging&channelId=never-registered")
        .await;
    assert_eq!(
        (status, &error["code"]),
        (404, &json!("unknown_channel")),
        "{error}"
    );

    let exit = server.interrupt().await;
    assert!(exit.success(), "{exit}\n{}", server.log_text());
    assert!(
        !accepts_connections(&dynamodb),
        "DynamoDB Local ({dynamodb}) still runs after the dev server stopped"
    );
    assert!(!accepts_connections(&server.base_url));
}

#[tokio::test]
async fn demo_page_works_in_a_headless_browser() {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "Chromium is not installed at {chromium}, so the demo page cannot be checked: run `make browser-deps` \
         (as root it runs apt-get install -y --no-install-recommends chromium), or set CHROMIUM_PATH"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    assert!(
        root.join("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is not installed: run `make deps` (npm ci) at {}",
        root.display()
    );
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("e2e-screenshot.png");
    std::fs::remove_file(&screenshot).ok();

    let mut server = DevServer::start().await;
    let browser = tokio::process::Command::new("node")
        .arg(root.join("infra/e2e/browser.mjs"))
        .arg(server.url("/"))
        .current_dir(root)
        .env("CHROMIUM_PATH", &chromium)
        .env("E2E_SCREENSHOT", &screenshot)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node (Node 20+ is required)");
    let output = tokio::time::timeout(BROWSER_TIMEOUT, browser.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the browser check did not finish within {BROWSER_TIMEOUT:?}"))
        .expect("the browser check's output");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the browser check failed ({}):\n{report}\nscreenshot: {}\n\ndev server log:\n{}",
        output.status,
        screenshot.display(),
        server.log_text()
    );
    assert!(report.contains("[browser] OK"), "{report}");
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );

    let exit = server.interrupt().await;
    assert!(exit.success(), "{exit}\n{}", server.log_text());
}
