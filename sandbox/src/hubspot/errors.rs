//! HubSpot's error answers: `{"status":"error","message","correlationId","category"}`, and the rate-limit 429s,
//! whose body has a different shape (`errorType`, `policyName`, `groupName`, no `category`).

use super::limits::Policy;
use crate::support::uuid;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{HeaderValue, StatusCode};
use serde_json::{json, Value};

/// An error answer. Kept small so `Result`s carrying it stay cheap; `Send` so a late write can carry one.
#[derive(Debug)]
pub(super) struct HsError {
    status: StatusCode,
    body: Value,
    /// An injected 429 carries fixed rate-limit headers, as if an unseen limit had been hit (see [`injected`]).
    fixed_rate_headers: bool,
}

impl IntoResponse for HsError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.fixed_rate_headers {
            let headers = response.headers_mut();
            headers.insert("x-hubspot-ratelimit-max", HeaderValue::from_static("100"));
            headers.insert(
                "x-hubspot-ratelimit-remaining",
                HeaderValue::from_static("0"),
            );
            headers.insert(
                "x-hubspot-ratelimit-interval-milliseconds",
                HeaderValue::from_static("10000"),
            );
        }
        response
    }
}

pub(super) fn error(status: StatusCode, category: &str, message: &str) -> HsError {
    let body = json!({
        "status": "error",
        "message": message,
        "correlationId": uuid(),
        "category": category,
    });
    HsError {
        status,
        body,
        fixed_rate_headers: false,
    }
}

pub(super) fn validation(message: &str) -> HsError {
    error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

pub(super) fn object_not_found() -> HsError {
    error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "resource not found",
    )
}

pub(super) fn conflict(existing_id: u64) -> HsError {
    error(
        StatusCode::CONFLICT,
        "CONFLICT",
        &format!("Contact already exists. Existing ID: {existing_id}"),
    )
}

/// HubSpot's 403 for an app without the scopes a call needs; `requiredGranularScopes` names them.
pub(super) fn missing_scopes(required: &[&str]) -> HsError {
    HsError {
        status: StatusCode::FORBIDDEN,
        body: json!({
            "status": "error",
            "message": "This app hasn't been granted all required scopes to make this call. Read more about required \
                        scopes here: https://developers.hubspot.com/scopes.",
            "correlationId": uuid(),
            "errors": [{
                "message": "One or more of the following scopes are required.",
                "context": { "requiredGranularScopes": required },
            }],
            "links": { "scopes": "https://developers.hubspot.com/scopes" },
            "category": "MISSING_SCOPES",
        }),
        fixed_rate_headers: false,
    }
}

/// A create without a property the object type requires (`object` as HubSpot names it, e.g. `NOTE`).
pub(super) fn required_properties(object: &str, names: &[&str]) -> HsError {
    HsError {
        status: StatusCode::BAD_REQUEST,
        body: json!({
            "status": "error",
            "message": format!("Error creating {object}. Some required properties were not set."),
            "correlationId": uuid(),
            "context": { "properties": names },
            "category": "VALIDATION_ERROR",
        }),
        fixed_rate_headers: false,
    }
}

/// A single write that breaks the portal's validation rules (`rules.rs`): 400 `VALIDATION_ERROR`, one `errors`
/// detail per rule.
pub(super) fn rule_refusal(message: &str, details: Vec<Value>) -> HsError {
    let mut refusal = validation(message);
    refusal.body["errors"] = Value::Array(details);
    refusal
}

/// One entry of a batch answer's `errors`: the documents' `StandardError`, every field they require present
/// (`context` maps names to lists of strings; `errors` holds `ErrorDetail`s).
pub(super) fn standard_error(
    category: &str,
    message: &str,
    context: Value,
    details: Vec<Value>,
) -> Value {
    json!({
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": details,
        "links": {},
    })
}

/// The same object named twice in one batch (HubSpot refuses the whole call).
pub(super) fn duplicate_ids(ids: &[String]) -> HsError {
    validation(&format!(
        "Duplicate IDs found in batch input: [{}]",
        ids.join(", ")
    ))
}

/// One entry of HubSpot's "Property values were not valid" list.
pub(super) fn problem(name: &str, code: &str, message: String) -> Value {
    json!({ "isValid": false, "message": message, "error": code, "name": name, "localizedErrorMessage": message })
}

pub(super) fn property_errors(problems: Vec<Value>) -> HsError {
    let list = Value::Array(problems).to_string();
    validation(&format!("Property values were not valid: {list}"))
}

/// The gateway's answer when the backend did not reply in time; the write may still land (see late writes).
pub(super) fn bad_gateway() -> HsError {
    error(StatusCode::BAD_GATEWAY, "INTERNAL_ERROR", "Bad Gateway")
}

/// HubSpot's own limiter refusing a request. Its rate-limit headers are added by the caller, which knows the counts.
pub(super) fn rate_limited(policy: Policy) -> HsError {
    HsError {
        status: StatusCode::TOO_MANY_REQUESTS,
        body: json!({
            "status": "error",
            "message": policy.message(),
            "errorType": "RATE_LIMIT",
            "correlationId": uuid(),
            "policyName": policy.name(),
            "groupName": policy.group_name(),
        }),
        fixed_rate_headers: false,
    }
}

/// An injected failure in HubSpot's shape for that status (429 with its rate-limit headers, no Retry-After).
pub(super) fn injected(status: u16) -> HsError {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status {
        429 => HsError {
            fixed_rate_headers: true,
            ..rate_limited(Policy::TenSecondlyRolling)
        },
        400 => error(code, "VALIDATION_ERROR", "Invalid input (injected fault)"),
        401 => error(
            code,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found.",
        ),
        403 => error(
            code,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call.",
        ),
        404 => object_not_found(),
        409 => error(code, "CONFLICT", "Conflict (injected fault)"),
        423 => error(code, "LOCKED", "The resource is locked; retry later."),
        _ => error(code, "INTERNAL_ERROR", "internal error"),
    }
}
