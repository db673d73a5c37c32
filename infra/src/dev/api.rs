//! The dev server's HTTP surface: the Lambda handlers at their deployed paths, the demo page, the embed example, the
//! widget's bundle, the agent console (`/agent/`, signed in through the identity provider like a deployed one), and
//! the dev-only endpoints the demo page uses to show what HubSpot holds. The dev endpoints (`/dev/*`) sit behind
//! `guard`'s layers: this machine only, and the CRM view in sandbox mode only.

use super::assets::{Asset, Pages};
use super::{guard, Mode};
use crate::serve::{self, error_response};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chat_sync::adapters::hubspot::HubSpotClient;
use chat_sync::domain::{ChannelId, ChannelRef, ChannelType, Email, Invalid, UserId};
use chat_sync::handlers::agent_sessions::AgentSessions;
use chat_sync::handlers::hubspot_webhooks::HubSpotWebhooks;
use chat_sync::handlers::registration::Registration;
use chat_sync::handlers::webhook::Webhook;
use chat_sync::handlers::ApiError;
use chat_sync::ports::Crm;
use chat_sync::ports::{ChannelMapping, Channels, StoreError, UpstreamError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A person is watching the page: fail fast rather than hang.
const UPSTREAM_BUDGET: Duration = Duration::from_secs(5);

/// What the dev endpoints need: the same clients and store the handlers use.
pub struct DevApi {
    pub mode: Mode,
    pub agent_id: UserId,
    /// What the agent console is told (`/agent/config.json`), when an identity provider is configured.
    pub console: Option<ConsoleConfig>,
    pub crm: std::sync::Arc<HubSpotClient>,
    pub store: Arc<dyn Channels>,
    pub dynamodb_endpoint: String,
    pub pages: Pages,
}

/// The agent console's configuration, as a team writes it next to the console's files (`config.json`).
pub struct ConsoleConfig {
    pub issuer: String,
    pub client_id: String,
    pub hubspot_portal_id: String,
}

/// The Lambda handlers the dev server serves at their deployed paths (those not configured are not served).
pub struct Handlers {
    pub registration: Arc<Registration>,
    pub webhook: Arc<Webhook>,
    pub hubspot_webhooks: Option<Arc<HubSpotWebhooks>>,
    pub agent_sessions: Option<Arc<AgentSessions>>,
}

/// Every route of the dev server.
pub fn router(handlers: Handlers, api: Arc<DevApi>) -> Router {
    // What the real services hold, handed out: a contact's transcript.
    let sandbox_only = Router::new()
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
        .route("/agent", get(console_redirect))
        .route("/agent/", get(console_page))
        .route("/agent/config.json", get(console_config))
        .route("/agent/agent-console.js", get(console_script))
        .merge(dev_endpoints)
        .with_state(api);
    // The handlers answer every method themselves (405 for the wrong one), as behind API Gateway.
    let mut router = Router::new()
        .route("/registrations", serve::route(handlers.registration))
        .route("/webhooks", serve::route(handlers.webhook));
    if let Some(hubspot_webhooks) = handlers.hubspot_webhooks {
        router = router.route("/hubspot/webhooks", serve::route(hubspot_webhooks));
    }
    if let Some(agent_sessions) = handlers.agent_sessions {
        router = router.route("/agent-sessions", serve::route(agent_sessions));
    }
    router.merge(dev).fallback(not_found)
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

async fn console_redirect() -> Response {
    axum::response::Redirect::permanent("/agent/").into_response()
}

async fn console_page(State(api): State<Arc<DevApi>>) -> Response {
    match api.console {
        Some(_) => api.pages.console().await,
        None => not_found().await,
    }
}

async fn console_script(State(api): State<Arc<DevApi>>) -> Response {
    api.pages.script(Asset::Console).await
}

/// What a team writes into the console's `config.json`: the identity provider, the console's client id there, and
/// where to open sessions.
async fn console_config(State(api): State<Arc<DevApi>>) -> Response {
    match &api.console {
        Some(console) => Json(json!({
            "issuer": console.issuer,
            "clientId": console.client_id,
            "sessionUrl": "/agent-sessions",
            "hubspotPortalId": (!console.hubspot_portal_id.is_empty()).then_some(&console.hubspot_portal_id),
        }))
        .into_response(),
        None => not_found().await,
    }
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
        // The e-mail is stored beside the mapping, not read with it (`ChannelMapping`).
        let email = self
            .store
            .contact_email(&mapping.contact_id)
            .await
            .map_err(|error| storage_unavailable(&error))?;
        Ok(json!({
            "contactId": mapping.contact_id.as_str(),
            "email": email.as_ref().map(Email::as_str),
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
            Err(error) => Err(storage_unavailable(&error)),
        }
    }
}

fn storage_unavailable(error: &StoreError) -> ApiError {
    tracing::error!(%error, "could not read the channel mapping");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "DynamoDB Local did not answer; try again",
    )
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
