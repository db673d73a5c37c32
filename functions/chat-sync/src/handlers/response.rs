//! JSON responses and request-body reading shared by the HTTP handlers.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

/// A client-facing error: `{"error": "...", "code": "..."}` (plus `field` when one input is at fault).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
    /// `Retry-After` (whole seconds, rounded up), for a 429.
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    pub fn with_field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    pub fn into_response(self) -> Response<Body> {
        let mut body = json!({ "error": self.message, "code": self.code });
        if let Some(field) = self.field {
            body["field"] = json!(field);
        }
        let mut response = json_response(self.status, &body);
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_millis().div_ceil(1000).max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds as u64));
        }
        response
    }
}

pub fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The request body's bytes (API Gateway and Function URLs base64-decode binary bodies for us).
pub fn body_bytes(request: &Request) -> &[u8] {
    match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        // `Body` is non-exhaustive; anything new is treated as no body.
        _ => &[],
    }
}

pub fn header_str<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Rejects bodies over `limit` bytes.
pub fn check_size(bytes: &[u8], limit: usize) -> Result<(), ApiError> {
    if bytes.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body must be at most {limit} bytes"),
        ));
    }
    Ok(())
}

/// Accepts JSON (or no declared type); anything else is 415.
pub fn check_json_content_type(request: &Request) -> Result<(), ApiError> {
    match header_str(request, "content-type") {
        None => Ok(()),
        Some(value) => {
            let mime = value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if mime == "application/json" || mime.ends_with("+json") {
                Ok(())
            } else {
                Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the request body must be JSON (Content-Type: application/json)",
                ))
            }
        }
    }
}

pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body is not valid JSON: {e}"),
        )
    })
}

pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("use {allow}"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// CORS for an API a browser calls from the origins in `origins` (`POST` only): the preflight's answer, and the
/// headers every answer gets. One place, so the widget's API and the agent console's answer CORS alike.
pub struct Cors<'a> {
    pub origins: &'a crate::config::AllowedOrigins,
    /// Which API and which variable lists its origins, for the 403's message.
    pub refusal: &'static str,
    /// The request headers the browser may send (`Access-Control-Allow-Headers`).
    pub headers: &'static str,
}

impl Cors<'_> {
    /// The answer to a preflight from `origin`: 204 with what may be sent, or 403 `origin_not_allowed`.
    pub fn preflight(&self, origin: Option<&str>) -> Response<Body> {
        if origin.and_then(|o| self.origins.allow(o)).is_none() {
            return ApiError::new(StatusCode::FORBIDDEN, "origin_not_allowed", self.refusal)
                .into_response();
        }
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(self.headers),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        response
    }

    /// Lets `origin` read `response`, if it is allowed (and says the answer varies by origin).
    pub fn allow(&self, origin: Option<&str>, response: &mut Response<Body>) {
        if let Some(allowed) = origin.and_then(|o| self.origins.allow(o)) {
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&allowed) {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            }
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}
