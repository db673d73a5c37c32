//! The dev server's HTTP surface: the Lambda handlers at their deployed paths, the demo page, the embed example, the
//! widget's bundle, and the dev-only endpoints the demo page uses to play the agent and to show what HubSpot holds.
//! The dev endpoints (`/dev/*`) sit behind `guard`'s layers: this machine only, and the agent's token and the CRM
//! view in sandbox mode only.

use super::assets::{Asset, Pages};
use super::{guard, Mode};
use crate::serve::{self, from_lambda};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chat_sync::adapters::hubspot::HubSpotClient;
use chat_sync::adapters::stream::VisitorTokens;
use chat_sync::domain::{ChannelId, ChannelRef, ChannelType, Invalid, Timestamp, UserId};
use chat_sync::handlers::hubspot_webhooks::HubSpotWebhooks;
use chat_sync::handlers::registration::Registration;
use chat_sync::handlers::webhook::Webhook;
use chat_sync::handlers::ApiError;
use chat_sync::ports::Crm;
use chat_sync::ports::{ChannelMapping, Channels, UpstreamError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A person is watching the page: fail fast rather than hang.
const UPSTREAM_BUDGET: Duration = Duration::from_secs(5);
/// The demo page's agent token: long enough for a session at the desk, short enough not to matter if copied.
const AGENT_TOKEN_TTL: Duration = Duration::from_secs(3_600);

/// What the dev endpoints need: the same clients and store the handlers use.
pub struct DevApi {
    pub mode: Mode,
    pub agent_id: UserId,
    /// Signs the agent's token for the demo page, with the app's secret, as registration signs the visitor's.
    pub tokens: VisitorTokens,
    pub crm: std::sync::Arc<HubSpotClient>,
    pub store: Arc<dyn Channels>,
    pub dynamodb_endpoint: String,
    pub pages: Pages,
}

/// Every route of the dev server.
pub fn router(
    registration: Arc<Registration>,
    webhook: Arc<Webhook>,
    hubspot_webhooks: Option<Arc<HubSpotWebhooks>>,
    api: Arc<DevApi>,
) -> Router {
    // What the real services hold, handed out: the support agent's token and a contact's transcript.
    let sandbox_only = Router::new()
        .route("/dev/agent-session", post(agent_session))
        .route("/dev/transcript", get(transcript))
        .route_layer(middleware::from_fn_with_state(
            api.mode,
            guard::sandbox_only,
        ));
    // The outer layer, so a request from elsewhere is refused before anything else is said about it.
    let dev_endpoints = Router::new()
        .route("/dev/demo.js", get(demo_script))
        .route("/dev/config", get(config))
        .merge(sandbox_only)
        .route_layer(middleware::from_fn(guard::loopback_only));
    let dev = Router::new()
        .route("/", get(demo_page))
        .route("/embed-example.html", get(embed_example))
        .route("/chat-sync-widget.js", get(widget_bundle))
        .merge(dev_endpoints)
        .with_state(api);
    // The handlers answer every method themselves (405 for the wrong one), as behind API Gateway.
    let mut router = Router::new()
        .route("/registrations", serve::route(registration))
        .route("/webhooks", serve::route(webhook));
    if let Some(hubspot_webhooks) = hubspot_webhooks {
        router = router.route("/hubspot/webhooks", serve::route(hubspot_webhooks));
    }
    router.merge(dev).fallback(not_found)
}

pub(super) fn error_response(error: ApiError) -> Response {
    from_lambda(error.into_response())
}

async fn not_found() -> Response {
    error_response(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
    ))
}

async fn demo_page(State(api): State<Arc<DevApi>>) -> Response {
    api.pages.demo()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmbedQuery {
    identity_token: Option<String>,
}

async fn embed_example(
    State(api): State<Arc<DevApi>>,
    query: Result<Query<EmbedQuery>, QueryRejection>,
) -> Response {
    let page = query
        .map_err(|rejection| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                rejection.body_text(),
            )
        })
        .and_then(|Query(query)| api.pages.embed_example(query.identity_token.as_deref()));
    page.unwrap_or_else(error_response)
}

async fn widget_bundle(State(api): State<Arc<DevApi>>) -> Response {
    api.pages.script(Asset::Widget).await
}

async fn demo_script(State(api): State<Arc<DevApi>>) -> Response {
    api.pages.script(Asset::Demo).await
}

async fn config(State(api): State<Arc<DevApi>>) -> Json<Value> {
    Json(json!({
        "mode": api.mode.as_str(),
        "agentId": api.agent_id.as_str(),
        "dynamodbEndpoint": api.dynamodb_endpoint,
    }))
}

async fn agent_session(State(api): State<Arc<DevApi>>, headers: HeaderMap) -> Response {
    match api.agent_session(&headers) {
        Ok(body) => Json(body).into_response(),
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
    /// A token for the support agent, so the demo page answers through Stream's SDK as an agent's dashboard would.
    /// Its messages reach the webhook the way the visitor's do.
    fn agent_session(&self, headers: &HeaderMap) -> Result<Value, ApiError> {
        require_json(headers)?;
        let (token, expires_at) = self
            .tokens
            .issue(&self.agent_id, Timestamp::now(), AGENT_TOKEN_TTL)
            .map_err(|error| {
                tracing::error!(%error, "could not sign the agent's token");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "could not issue the agent's token",
                )
            })?;
        Ok(json!({
            "apiKey": self.tokens.api_key(),
            "userId": self.agent_id.as_str(),
            "token": token,
            "expiresAt": expires_at.rfc3339(),
            "streamBaseUrl": self.tokens.base_url(),
        }))
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
/// requiring it keeps other websites from asking a developer's local server for the agent's token (and the `Host`
/// check, `guard::loopback_only`, keeps out those that resolve their own name to this machine).
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
