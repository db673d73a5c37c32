//! The dev server's HTTP surface: the Lambda handlers at their deployed paths, the demo page, and three dev-only
//! JSON endpoints the page uses to play the agent and the visitor and to show what HubSpot holds.

use super::Mode;
use crate::serve::{self, from_lambda};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chat_sync::adapters::hubspot::HubSpotClient;
use chat_sync::adapters::stream::StreamClient;
use chat_sync::domain::{ChannelId, ChannelRef, ChannelType, Invalid, UserId};
use chat_sync::handlers::registration::Registration;
use chat_sync::handlers::webhook::Webhook;
use chat_sync::handlers::ApiError;
use chat_sync::ports::Crm;
use chat_sync::ports::{ChannelMapping, Store, UpstreamError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The demo page, compiled in so `make dev` needs no files at run time.
const PAGE: &str = include_str!("../../static/index.html");
/// The page may load nothing from elsewhere and talk only to this server.
const PAGE_CSP: &str =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                        connect-src 'self'; img-src data:; form-action 'none'; base-uri 'none'; \
                        frame-ancestors 'none'";
/// Stream's default limit for a message's text.
const MAX_TEXT_CHARS: usize = 5_000;
const MAX_MESSAGE_BODY: usize = 16 * 1024;
/// A person is watching the page: fail fast rather than hang.
const UPSTREAM_BUDGET: Duration = Duration::from_secs(5);

/// What the dev endpoints need: the same clients and store the handlers use.
pub struct DevApi {
    pub mode: Mode,
    pub agent_id: UserId,
    pub chat: StreamClient,
    pub crm: std::sync::Arc<HubSpotClient>,
    pub store: Arc<dyn Store>,
    pub dynamodb_endpoint: String,
}

/// Every route of the dev server.
pub fn router(registration: Arc<Registration>, webhook: Arc<Webhook>, api: Arc<DevApi>) -> Router {
    let dev = Router::new()
        .route("/", get(page))
        .route("/dev/config", get(config))
        .route(
            "/dev/messages",
            post(send_message).layer(DefaultBodyLimit::max(MAX_MESSAGE_BODY)),
        )
        .route("/dev/transcript", get(transcript))
        .with_state(api);
    // The handlers answer every method themselves (405 for the wrong one), as behind API Gateway.
    Router::new()
        .route("/registrations", serve::route(registration))
        .route("/webhooks", serve::route(webhook))
        .merge(dev)
        .fallback(not_found)
}

fn error_response(error: ApiError) -> Response {
    from_lambda(error.into_response())
}

async fn not_found() -> Response {
    error_response(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
    ))
}

async fn page() -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (headers, PAGE).into_response()
}

async fn config(State(api): State<Arc<DevApi>>) -> Json<Value> {
    Json(json!({
        "mode": api.mode.as_str(),
        "agentId": api.agent_id.as_str(),
        "dynamodbEndpoint": api.dynamodb_endpoint,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendMessage {
    channel_type: String,
    channel_id: String,
    user_id: String,
    text: String,
}

async fn send_message(
    State(api): State<Arc<DevApi>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match api.send_message(&headers, body).await {
        Ok(message) => Json(json!({ "message": message })).into_response(),
        Err(error) => error_response(error),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TranscriptQuery {
    channel_type: Option<String>,
    channel_id: Option<String>,
}

async fn transcript(
    State(api): State<Arc<DevApi>>,
    query: Result<Query<TranscriptQuery>, QueryRejection>,
) -> Response {
    match api.transcript(query).await {
        Ok(body) => Json(body).into_response(),
        Err(error) => error_response(error),
    }
}

impl DevApi {
    /// Sends a message through the chat service as the channel's visitor or the agent. Stream then calls the
    /// webhook, exactly as when a person types in the widget or the agent's dashboard.
    async fn send_message(
        &self,
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<Value, ApiError> {
        require_json(headers)?;
        let body = body.map_err(|rejection| {
            let code = match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                _ => "invalid_body",
            };
            ApiError::new(rejection.status(), code, rejection.body_text())
        })?;
        let request: SendMessage = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("expected {{\"channelType\", \"channelId\", \"userId\", \"text\"}}: {e}"),
            )
        })?;
        let channel = channel_ref(&request.channel_type, &request.channel_id)?;
        let user = UserId::parse("userId", &request.user_id).map_err(invalid)?;
        let text = request.text.trim();
        if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
            return Err(invalid(Invalid::new(
                "text",
                format!("must be 1-{MAX_TEXT_CHARS} characters"),
            )));
        }
        // Only the two people of a channel this server registered may speak in it: in live mode this endpoint
        // reaches the real Stream app, and must not become a way to post anywhere as anyone.
        let mapping = self.mapping(&channel).await?;
        if user != mapping.visitor_id && user != self.agent_id {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_a_member",
                format!(
                    "userId must be the channel's visitor ({}) or the agent ({})",
                    mapping.visitor_id, self.agent_id
                ),
            )
            .with_field("userId"));
        }
        let response = self
            .chat
            .send_message(&channel, &user, text, Instant::now() + UPSTREAM_BUDGET)
            .await
            .map_err(upstream_failed)?;
        Ok(response.get("message").cloned().unwrap_or(response))
    }

    /// The channel's contact and its transcript as HubSpot has it now (what a person sees in the CRM).
    async fn transcript(
        &self,
        query: Result<Query<TranscriptQuery>, QueryRejection>,
    ) -> Result<Value, ApiError> {
        let Query(query) = query.map_err(|rejection| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                rejection.body_text(),
            )
        })?;
        let channel = channel_ref(
            query.channel_type.as_deref().unwrap_or_default(),
            query.channel_id.as_deref().unwrap_or_default(),
        )?;
        let mapping = self.mapping(&channel).await?;
        let deadline = Instant::now() + UPSTREAM_BUDGET;
        let transcript = self
            .crm
            .read_transcript(&mapping.contact_id, deadline)
            .await
            .map_err(upstream_failed)?;
        // The contact's timeline notes, as HubSpot shows them beside the property.
        let notes: Vec<Value> = self
            .crm
            .contact_notes(&mapping.contact_id, deadline)
            .await
            .map_err(upstream_failed)?
            .into_iter()
            .map(|(id, body)| json!({ "id": id.as_str(), "body": body }))
            .collect();
        Ok(json!({
            "contactId": mapping.contact_id.as_str(),
            "email": mapping.email.as_str(),
            "transcript": transcript,
            "notes": notes,
        }))
    }

    async fn mapping(&self, channel: &ChannelRef) -> Result<ChannelMapping, ApiError> {
        match self.store.channel(channel).await {
            Ok(Some(mapping)) => Ok(mapping),
            Ok(None) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_channel",
                format!("channel {channel} was not registered here"),
            )),
            Err(error) => {
                tracing::error!(%error, "could not read the channel mapping");
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "DynamoDB Local did not answer; try again",
                ))
            }
        }
    }
}

/// Cross-site pages cannot send `application/json` without a CORS preflight, which this server never grants:
/// requiring it keeps other websites from chatting through a developer's local server.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send JSON with Content-Type: application/json",
        ))
    }
}

fn channel_ref(channel_type: &str, channel_id: &str) -> Result<ChannelRef, ApiError> {
    Ok(ChannelRef::new(
        ChannelType::parse(channel_type).map_err(invalid)?,
        ChannelId::parse(channel_id).map_err(invalid)?,
    ))
}

fn invalid(error: Invalid) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", error.to_string())
        .with_field(error.field)
}

/// 4xx that the input explains (no such channel, not a member, bad text) pass through; anything else is the
/// upstream's fault.
fn upstream_failed(error: UpstreamError) -> ApiError {
    tracing::warn!(%error, "dev endpoint: upstream call failed");
    match error {
        UpstreamError::Rejected {
            status: status @ (400 | 403 | 404),
            ..
        } => ApiError::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            "upstream_rejected",
            error.to_string(),
        ),
        _ => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            error.to_string(),
        ),
    }
}
