//! A minimal AWS Lambda Runtime API, enough to run a Lambda binary locally for one invocation: it hands out one
//! event on `/invocation/next` and records the function's response, or the error it reports for the invocation or
//! for its cold start (`/init/error`). Used to measure cold starts (process start → first response) and to check
//! that the binaries really run under the Lambda runtime protocol (infra/tests/infra/invoke.rs).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

/// Which endpoint the function called with its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `/invocation/{id}/response`.
    Response,
    /// `/invocation/{id}/error`: the handler failed.
    Error,
    /// `/init/error`: the cold start failed, before any event was asked for.
    InitError,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Response => "response",
            Outcome::Error => "error",
            Outcome::InitError => "init error",
        })
    }
}

/// What the function answered.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub outcome: Outcome,
    /// The `Lambda-Runtime-Function-Error-Type` header of an error report.
    pub error_type: Option<String>,
    pub body: String,
    pub answered_at: Instant,
}

struct Shared {
    event: Mutex<Option<String>>,
    done: Mutex<Option<oneshot::Sender<Invocation>>>,
}

/// One emulated runtime endpoint serving one event.
pub struct RuntimeApi {
    addr: SocketAddr,
    answer: oneshot::Receiver<Invocation>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Serves `event` (JSON) to the first `next` call.
    pub async fn start(event: String) -> std::io::Result<Self> {
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            event: Mutex::new(Some(event)),
            done: Mutex::new(Some(tx)),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            answer: rx,
            server,
        })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Waits for the function's answer.
    pub async fn answer(self, timeout: Duration) -> Option<Invocation> {
        let result = tokio::time::timeout(timeout, self.answer)
            .await
            .ok()
            .and_then(Result::ok);
        self.server.abort();
        result
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let event = shared.event.lock().ok().and_then(|mut e| e.take());
    let Some(event) = event else {
        // One invocation only: later polls wait, as the real API does between invocations.
        std::future::pending::<()>().await;
        return StatusCode::NO_CONTENT.into_response();
    };
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 30_000)
        .unwrap_or_default();
    let pairs = [
        ("lambda-runtime-aws-request-id", REQUEST_ID.to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:local".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (StatusCode::OK, headers, event).into_response()
}

fn finish(shared: &Shared, outcome: Outcome, headers: &HeaderMap, body: String) -> StatusCode {
    let answered_at = Instant::now();
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(tx) = shared.done.lock().ok().and_then(|mut d| d.take()) {
        let _ = tx.send(Invocation {
            outcome,
            error_type,
            body,
            answered_at,
        });
    }
    StatusCode::ACCEPTED
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(_id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    finish(&shared, Outcome::Response, &headers, body)
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(_id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    finish(&shared, Outcome::Error, &headers, body)
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    finish(&shared, Outcome::InitError, &headers, body)
}
