//! Plumbing shared by the doubles: call recording, request capture, timestamps, ids and ports.
//!
//! Every request a double serves passes through its [`Recorder`] (`begin` on arrival, [`CallGuard::finish`] with
//! the answer), so this is where the traffic log is kept too: with `SANDBOX_TRAFFIC_DIR` set, each double appends
//! every exchange to its own file there (see [`TRAFFIC_DIR_VAR`]), the input of the contract check
//! (`contract/validate.py`, run by `make test`). Unset, nothing is buffered or written.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

/// Bodies larger than this are refused: far above anything the real APIs accept, small enough to stay cheap.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// One request as the double saw it, so tests can assert on traffic (counts, ordering, overlap).
#[derive(Clone, Debug)]
pub struct RecordedCall {
    /// The double's route name (as used by [`crate::faults::Faults`]), or `"not_found"` / `"method_not_allowed"`.
    pub route: &'static str,
    pub method: String,
    pub path: String,
    pub query: String,
    /// The response status; `0` while the request is in flight or if the client went away before the response.
    pub status: u16,
    /// The request body (lossy UTF-8).
    pub body: String,
    pub started: Instant,
    pub finished: Instant,
}

/// Locks a mutex, recovering from poisoning: a panicking test thread must not cascade into every later call.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The environment variable naming the directory the doubles append their traffic to.
///
/// Invariants of the traffic log: one file per double instance, `<service>-<pid>-<port>.jsonl`, so test binaries
/// running at once never share a file; append-only, one whole JSON line per `write` (a line is never interleaved
/// with another); one line per exchange the double served, written when the answer is complete, or with a `null`
/// status when the client went away before it. A line holds the double (`service`: `hubspot` or `stream`), its
/// route name, the request's method, path, raw query string, `User-Agent`, content type and body, and the answer's
/// status, content type and body (bodies as UTF-8, lossy). Never the `Authorization` header, nor any other header:
/// tokens stay out of the log (the Stream websocket's query-string token is taken out before it is recorded).
pub const TRAFFIC_DIR_VAR: &str = "SANDBOX_TRAFFIC_DIR";

/// Every request to a double, in arrival order, and its traffic log when one is kept.
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    calls: Arc<Mutex<Calls>>,
    /// Set once, when the double's port is known (before it accepts a connection), if [`TRAFFIC_DIR_VAR`] is set.
    traffic: Arc<OnceLock<TrafficLog>>,
}

/// One double's traffic file.
struct TrafficLog {
    service: &'static str,
    file: Mutex<std::fs::File>,
}

impl TrafficLog {
    /// Opens `<dir>/<service>-<pid>-<port>.jsonl` for appending (the directory is created if missing).
    fn open(dir: &Path, service: &'static str, port: u16) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{service}-{}-{port}.jsonl", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            service,
            file: Mutex::new(file),
        })
    }

    /// Appends one exchange as one line. A failed write is logged, not raised: the test that made the request
    /// must not fail for it; the contract check then misses the exchange, or refuses the torn line.
    fn append(&self, exchange: &Exchange, response: Option<(u16, &str, &[u8])>) {
        let (status, content_type, body) = match response {
            Some((status, content_type, body)) => (
                serde_json::json!(status),
                serde_json::json!(content_type),
                serde_json::json!(String::from_utf8_lossy(body)),
            ),
            None => Default::default(),
        };
        let line = serde_json::json!({
            "service": self.service,
            "route": exchange.route,
            "method": exchange.method,
            "path": exchange.path,
            "query": exchange.query,
            "user_agent": exchange.user_agent,
            "request_content_type": exchange.content_type,
            "request_body": exchange.body,
            "status": status,
            "response_content_type": content_type,
            "response_body": body,
        });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        if let Err(error) = lock(&self.file).write_all(&bytes) {
            tracing::error!(%error, double = self.service, "could not append to the traffic log");
        }
    }
}

/// A request as the traffic log keeps it, held by its [`CallGuard`] until the answer is known.
struct Exchange {
    route: &'static str,
    method: String,
    path: String,
    query: String,
    user_agent: String,
    content_type: String,
    body: String,
}

/// Calls tagged with an increasing sequence number, so a guard finds its call even after `clear`.
#[derive(Default)]
struct Calls {
    next_seq: u64,
    list: Vec<(u64, RecordedCall)>,
}

impl Calls {
    fn get_mut(&mut self, seq: u64) -> Option<&mut RecordedCall> {
        let index = self.list.binary_search_by_key(&seq, |(s, _)| *s).ok()?;
        self.list.get_mut(index).map(|(_, call)| call)
    }
}

impl Recorder {
    /// Starts the traffic log of the double `service` listening on `port`, if [`TRAFFIC_DIR_VAR`] names a directory.
    /// Called once, before the double accepts connections; a second call changes nothing.
    pub(crate) fn log_traffic(&self, service: &'static str, port: u16) -> std::io::Result<()> {
        match std::env::var_os(TRAFFIC_DIR_VAR).filter(|dir| !dir.is_empty()) {
            Some(dir) => self.log_traffic_in(Path::new(&dir), service, port),
            None => Ok(()),
        }
    }

    fn log_traffic_in(&self, dir: &Path, service: &'static str, port: u16) -> std::io::Result<()> {
        if self.traffic.get().is_none() {
            // A concurrent first call may have won: its file is as good as ours.
            let _ = self.traffic.set(TrafficLog::open(dir, service, port)?);
        }
        Ok(())
    }

    /// Records the request on arrival (so tests can see calls still in flight); the guard fills in the outcome.
    pub(crate) fn begin(&self, route: &'static str, req: &Req) -> CallGuard {
        let now = Instant::now();
        let exchange = self.traffic.get().map(|_| Exchange {
            route,
            method: req.method.to_string(),
            path: req.uri.path().to_owned(),
            query: req.uri.query().unwrap_or_default().to_owned(),
            user_agent: req.header("user-agent").unwrap_or_default().to_owned(),
            content_type: req.header("content-type").unwrap_or_default().to_owned(),
            body: String::from_utf8_lossy(&req.body).into_owned(),
        });
        let mut calls = lock(&self.calls);
        let seq = calls.next_seq;
        calls.next_seq += 1;
        let call = RecordedCall {
            route,
            method: req.method.to_string(),
            path: req.uri.path().to_owned(),
            query: req.uri.query().unwrap_or_default().to_owned(),
            status: 0,
            body: String::from_utf8_lossy(&req.body).into_owned(),
            started: now,
            finished: now,
        };
        calls.list.push((seq, call));
        CallGuard {
            recorder: self.clone(),
            seq,
            exchange,
        }
    }

    pub(crate) fn calls(&self) -> Vec<RecordedCall> {
        lock(&self.calls)
            .list
            .iter()
            .map(|(_, call)| call.clone())
            .collect()
    }

    pub(crate) fn clear(&self) {
        lock(&self.calls).list.clear();
    }

    pub(crate) fn count(&self, route: &str) -> usize {
        lock(&self.calls)
            .list
            .iter()
            .filter(|(_, c)| c.route == route)
            .count()
    }
}

/// Completes a [`RecordedCall`]; if dropped without [`CallGuard::finish`] (client disconnected) the status stays 0.
pub(crate) struct CallGuard {
    recorder: Recorder,
    seq: u64,
    /// The request for the traffic log, when one is kept; taken by `finish`, or logged without an answer on drop.
    exchange: Option<Exchange>,
}

impl CallGuard {
    /// Records the answer's status and, with a traffic log, the whole exchange: the body is buffered for that (the
    /// doubles answer small JSON bodies) and handed on unchanged.
    pub(crate) async fn finish(mut self, response: Response) -> Response {
        self.update(response.status().as_u16());
        let Some(exchange) = self.exchange.take() else {
            return response;
        };
        let Some(log) = self.recorder.traffic.get() else {
            return response;
        };
        let (parts, body) = response.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(bytes) => bytes,
            Err(error) => {
                // Only a body the double itself failed to produce gets here; the client sees it fail too.
                tracing::error!(%error, double = log.service, "could not buffer an answer for the traffic log");
                Bytes::new()
            }
        };
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        log.append(
            &exchange,
            Some((parts.status.as_u16(), content_type, &bytes)),
        );
        Response::from_parts(parts, axum::body::Body::from(bytes))
    }

    fn update(&self, status: u16) {
        if let Some(call) = lock(&self.recorder.calls).get_mut(self.seq) {
            call.status = status;
            call.finished = Instant::now();
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        // The client went away before the answer: its request is still part of the traffic.
        if let (Some(exchange), Some(log)) = (self.exchange.take(), self.recorder.traffic.get()) {
            log.append(&exchange, None);
        }
        let mut calls = lock(&self.recorder.calls);
        if let Some(call) = calls.get_mut(self.seq) {
            if call.status == 0 {
                call.finished = Instant::now();
            }
        }
    }
}

/// The whole request, buffered: handlers need the raw body both to record it and to parse it leniently.
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Req {
    /// Query parameters (last one wins); an unparsable query string yields no parameters.
    pub(crate) fn query(&self) -> HashMap<String, String> {
        axum::extract::Query::<HashMap<String, String>>::try_from_uri(&self.uri)
            .map(|q| q.0)
            .unwrap_or_default()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl<S: Send + Sync> FromRequest<S> for Req {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    axum::Json(
                        serde_json::json!({"status": "error", "message": "request body too large"}),
                    ),
                )
                    .into_response()
            })?;
        Ok(Req {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        })
    }
}

const RFC3339_MILLIS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Now as RFC 3339 UTC with milliseconds (`2026-11-24T10:00:00.123Z`), the shape both real APIs return.
pub(crate) fn now_rfc3339() -> String {
    format_millis(time::OffsetDateTime::now_utc())
}

/// Formats a UTC time as RFC 3339 with exactly three fractional digits, so timestamps sort as strings.
pub(crate) fn format_millis(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(RFC3339_MILLIS)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_owned())
}

pub(crate) fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The loopback address with an OS-chosen port.
pub(crate) fn any_local_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn request(body: &str) -> Req {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            "Bearer secret-token".parse().expect("header"),
        );
        headers.insert("user-agent", "chat-sync/test".parse().expect("header"));
        headers.insert("content-type", "application/json".parse().expect("header"));
        Req {
            method: Method::POST,
            uri: "/users/delete?api_key=key".parse().expect("uri"),
            headers,
            body: Bytes::from(body.to_owned()),
        }
    }

    fn lines(dir: &Path) -> Vec<Value> {
        let mut all = Vec::new();
        for file in std::fs::read_dir(dir).expect("dir") {
            let text = std::fs::read_to_string(file.expect("entry").path()).expect("file");
            all.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line")),
            );
        }
        all
    }

    #[tokio::test]
    async fn the_traffic_log_has_each_exchange_once_and_no_credential() {
        let dir = std::env::temp_dir().join(format!("traffic-test-{}", uuid()));
        let recorder = Recorder::default();
        recorder.log_traffic_in(&dir, "stream", 4100).expect("log");
        let answer = (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({"task_id": "t"})),
        )
            .into_response();
        let passed_on = recorder
            .begin("delete_users", &request(r#"{"user_ids":["a"]}"#))
            .finish(answer)
            .await;
        let body = axum::body::to_bytes(passed_on.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(
            &body[..],
            br#"{"task_id":"t"}"#,
            "the answer is handed on unchanged"
        );
        // A client gone before the answer: its request is still logged, without one.
        drop(recorder.begin("get_task", &request("")));

        let logged = lines(&dir);
        assert_eq!(logged.len(), 2, "{logged:#?}");
        let first = &logged[0];
        assert_eq!(first["service"], "stream");
        assert_eq!(
            (first["method"].as_str(), first["path"].as_str()),
            (Some("POST"), Some("/users/delete"))
        );
        assert_eq!(first["query"], "api_key=key");
        assert_eq!(first["user_agent"], "chat-sync/test");
        assert_eq!(first["request_body"], r#"{"user_ids":["a"]}"#);
        assert_eq!(first["status"], 201);
        assert_eq!(first["response_content_type"], "application/json");
        assert_eq!(first["response_body"], r#"{"task_id":"t"}"#);
        assert_eq!(logged[1]["status"], Value::Null);
        let text = logged.iter().map(Value::to_string).collect::<String>();
        assert!(!text.contains("secret-token"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn without_a_traffic_directory_nothing_is_kept() {
        let recorder = Recorder::default();
        let guard = recorder.begin("get_task", &request(""));
        assert!(guard.exchange.is_none());
        let response = guard.finish(StatusCode::OK.into_response()).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}
