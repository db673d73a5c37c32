//! What the HubSpot and Stream clients share: the HTTP client and the mapping of responses to `UpstreamError`.

use crate::config::error::ConfigError;
use crate::ports::UpstreamError;
use reqwest::{header::HeaderMap, Response, StatusCode};
use std::time::{Duration, Instant};

/// Shortest time worth starting a request in.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);

/// The HTTP client every upstream client shares (one connection pool for HubSpot, Stream and the identity
/// provider), built once by `App::build` or a command.
///
/// Building fails only if the TLS backend cannot start (no usable root certificates, say): a broken deployment. It
/// is reported as a configuration error when the function starts, not left to `reqwest::Client::new()`, which
/// panics on the same failure.
pub fn client() -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(50))
        .user_agent(concat!("chat-sync/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            ConfigError::new(
                "(the HTTP client)",
                format!("could not start: its TLS backend did not initialise ({e})"),
            )
        })
}

/// Time left for one attempt, capped at `per_attempt`; `None` if too little is left to try.
fn attempt_timeout(deadline: Instant, per_attempt: Duration) -> Option<Duration> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    (remaining >= MIN_ATTEMPT).then(|| remaining.min(per_attempt))
}

fn out_of_time(service: &'static str) -> UpstreamError {
    UpstreamError::Unavailable {
        service,
        detail: "no time left to send the request".into(),
    }
}

fn transport_error(service: &'static str, error: reqwest::Error) -> UpstreamError {
    let (connect, timeout) = (error.is_connect(), error.is_timeout());
    // No URL in the detail: query strings can carry keys.
    let detail = error.without_url().to_string();
    if connect {
        // Never connected: nothing was sent.
        UpstreamError::Unavailable { service, detail }
    } else if timeout {
        UpstreamError::Timeout { service }
    } else {
        // The connection broke after the request went out: it may have been applied.
        UpstreamError::Indeterminate { service, detail }
    }
}

/// One answered (or failed) request: the result, and the answer's headers when there was an answer.
pub struct Exchange {
    pub headers: Option<HeaderMap>,
    pub result: Result<serde_json::Value, UpstreamError>,
}

/// Sends one request (already authenticated by the caller) with the time left before `deadline`, capped at
/// `per_attempt`, and returns the JSON body of a success or the classified error.
pub async fn send_json(
    service: &'static str,
    request: reqwest::RequestBuilder,
    deadline: Instant,
    per_attempt: Duration,
    rate_limit: impl Fn(&HeaderMap, &str) -> (Option<Duration>, bool),
) -> Result<serde_json::Value, UpstreamError> {
    exchange(service, request, deadline, per_attempt, rate_limit)
        .await
        .result
}

/// [`send_json`], keeping the answer's headers (HubSpot's rate-limit headers come on every answer).
pub async fn exchange(
    service: &'static str,
    request: reqwest::RequestBuilder,
    deadline: Instant,
    per_attempt: Duration,
    rate_limit: impl Fn(&HeaderMap, &str) -> (Option<Duration>, bool),
) -> Exchange {
    let Some(timeout) = attempt_timeout(deadline, per_attempt) else {
        return Exchange {
            headers: None,
            result: Err(out_of_time(service)),
        };
    };
    let response = match request.timeout(timeout).send().await {
        Ok(response) => response,
        Err(e) => {
            return Exchange {
                headers: None,
                result: Err(transport_error(service, e)),
            }
        }
    };
    let headers = response.headers().clone();
    let result = if response.status().is_success() {
        response.json::<serde_json::Value>().await.map_err(|e| {
            if e.is_decode() {
                UpstreamError::Protocol {
                    service,
                    detail: e.without_url().to_string(),
                }
            } else {
                // The body did not arrive whole: the request was processed, its answer is unknown.
                transport_error(service, e)
            }
        })
    } else {
        Err(status_error(service, response, rate_limit).await)
    };
    Exchange {
        headers: Some(headers),
        result,
    }
}

/// Maps a non-success status to an error; `rate_limit` reads service-specific 429 details.
async fn status_error(
    service: &'static str,
    response: Response,
    rate_limit: impl Fn(&HeaderMap, &str) -> (Option<Duration>, bool),
) -> UpstreamError {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    let detail = summary(&body);
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            let (hinted, daily) = rate_limit(&headers, &body);
            let retry_after = retry_after_header(&headers).or(hinted);
            UpstreamError::RateLimited {
                service,
                retry_after,
                daily,
            }
        }
        // Refused before any processing: nothing was applied.
        StatusCode::REQUEST_TIMEOUT | StatusCode::LOCKED => {
            UpstreamError::Unavailable { service, detail }
        }
        // A gateway or server error can hide a write that was applied, or is still on its way.
        s if s.is_server_error() => UpstreamError::Indeterminate { service, detail },
        s => UpstreamError::Rejected {
            service,
            status: s.as_u16(),
            detail,
        },
    }
}

fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(60)))
}

/// The error's message, short, for logs and error responses.
fn summary(body: &str) -> String {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.to_owned());
    message.chars().take(300).collect()
}
