//! Plumbing shared by the doubles: call recording, request capture, timestamps and the server task.

use crate::faults::Faults;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{HeaderMap, Method, StatusCode, Uri};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use tokio::task::JoinHandle;

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

/// Every request to a double, in arrival order.
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    calls: Arc<Mutex<Calls>>,
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
    /// Records the request on arrival (so tests can see calls still in flight); the guard fills in the outcome.
    pub(crate) fn begin(&self, route: &'static str, req: &Req) -> CallGuard {
        let now = Instant::now();
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
}

impl CallGuard {
    pub(crate) fn finish(self, response: Response) -> Response {
        self.update(response.status().as_u16());
        response
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

/// A double running on a loopback port: its own state (`S`), and what every double offers — its base URL, the calls
/// it recorded, its faults. Dropping it stops the server. `HubSpotDouble` and `StreamDouble` are its two kinds.
pub struct Double<S> {
    pub(crate) state: Arc<S>,
    recorder: Recorder,
    faults: Faults,
    server: Server,
}

impl<S> Double<S> {
    /// Serves `router` on `addr`; `recorder` and `faults` are the ones the routes in `state` use.
    pub(crate) async fn serve(
        addr: SocketAddr,
        state: Arc<S>,
        recorder: Recorder,
        faults: Faults,
        router: Router,
        name: &'static str,
    ) -> std::io::Result<Self> {
        let server = Server::start(addr, router, name).await?;
        Ok(Self {
            state,
            recorder,
            faults,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Every request, in arrival order (in-flight ones have `status` 0).
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.recorder.calls()
    }

    /// Requests to one route, by the double's route names (listed on each double).
    pub fn call_count(&self, route: &str) -> usize {
        self.recorder.count(route)
    }
}

/// A running axum server; dropping it stops accepting connections.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(addr: SocketAddr, router: Router, name: &'static str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, double = name, "test double server stopped");
            }
        });
        Ok(Self { addr, task })
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The loopback address with an OS-chosen port.
pub(crate) fn any_local_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
