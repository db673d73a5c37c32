//! Stream's error answers: `{"code","message","StatusCode","duration","more_info","details"}`, with Stream's codes.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{HeaderValue, StatusCode};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// A Stream API error, shaped like Stream's `{"code","message","StatusCode",...}` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamError {
    /// HTTP status.
    pub status: u16,
    /// Stream's error code (2 api key, 4 input, 5 auth, 9 rate limit, 16 does not exist, 17 not allowed, 40 token expired).
    pub code: i64,
    pub message: String,
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Stream error {} (code {}): {}",
            self.status, self.code, self.message
        )
    }
}

impl std::error::Error for StreamError {}

impl StreamError {
    pub(crate) fn new(
        status: u16,
        code: i64,
        endpoint: &str,
        message: impl std::fmt::Display,
    ) -> Self {
        Self {
            status,
            code,
            message: format!("{endpoint} failed with error: \"{message}\""),
        }
    }

    pub(crate) fn input(endpoint: &str, message: impl std::fmt::Display) -> Self {
        Self::new(400, 4, endpoint, message)
    }

    pub(crate) fn not_found(endpoint: &str, message: impl std::fmt::Display) -> Self {
        Self::new(404, 16, endpoint, message)
    }

    pub(crate) fn not_allowed(endpoint: &str, message: impl std::fmt::Display) -> Self {
        Self::new(403, 17, endpoint, message)
    }

    /// An authentication failure (401): the message is not wrapped in the endpoint's name, as Stream's are not.
    pub(crate) fn auth(code: i64, message: &str) -> Self {
        Self {
            status: 401,
            code,
            message: message.to_owned(),
        }
    }

    pub(crate) fn body(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "StatusCode": self.status,
            "duration": "0.00ms",
            "more_info": "https://getstream.io/chat/docs/api_errors_response",
            "details": [],
        })
    }
}

impl IntoResponse for StreamError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

/// An injected failure with Stream's error body (and rate-limit headers for 429).
pub(crate) fn injected(status: u16) -> Response {
    let code = match status {
        429 => 9,
        400 => 4,
        401 => 5,
        403 => 17,
        404 => 16,
        s if s >= 500 => -1,
        _ => 4,
    };
    let message = if status == 429 {
        "Too many requests, check response headers for more information.".to_owned()
    } else {
        format!("injected fault: HTTP {status}")
    };
    let error = StreamError {
        status,
        code,
        message,
    };
    let mut response = error.into_response();
    if status == 429 {
        let reset = OffsetDateTime::now_utc().unix_timestamp() + 60;
        let headers = response.headers_mut();
        headers.insert("X-RateLimit-Limit", HeaderValue::from_static("60"));
        headers.insert("X-RateLimit-Remaining", HeaderValue::from_static("0"));
        if let Ok(value) = HeaderValue::from_str(&reset.to_string()) {
            headers.insert("X-RateLimit-Reset", value);
        }
    }
    response
}
