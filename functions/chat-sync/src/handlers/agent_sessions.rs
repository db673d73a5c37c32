//! `POST /agent-sessions`: an agent signed in at the team's identity provider (OpenID Connect) gets a short-lived
//! Stream token for their own Stream user, which the agent console connects with.
//!
//! The request carries the provider's ID token as `Authorization: Bearer …`. API Gateway's JWT authorizer checks it
//! first; this handler checks it again (`adapters::oidc`), since it is what hands out the Stream token. Then:
//!
//! - the agent's Stream user is `agent-` and a hash of the issuer and `sub` (stable across e-mail changes, and
//!   never the e-mail itself), written with the agent role (`stream_access::AGENT_ROLE`) and the `name` claim (or the
//!   e-mail's local part): created on first sign-in, renamed when the provider's name changes;
//! - the token expires after `AGENT_SESSION_TTL_SECONDS` (at most an hour) and never after the ID token does: the
//!   console renews it with a fresh ID token, which a person removed from the provider cannot get.
//!
//! Nothing is stored here, and neither token nor e-mail is logged.

use super::response::{header_str, json_response, method_not_allowed, ApiError, Cors};
use crate::adapters::oidc::{AgentIdentity, OidcError, OidcRefusal, OidcVerifier};
use crate::adapters::stream::VisitorTokens;
use crate::adapters::stream_access::AGENT_ROLE;
use crate::config::AgentSessionSettings;
use crate::domain::{Timestamp, UserId};
use crate::ports::{ChatService, ChatUser, UpstreamError};
use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything upstream (the provider's keys, Stream) must be done by then: a person is waiting.
const BUDGET: Duration = Duration::from_secs(8);
/// Longest display name written to Stream (as for visitors).
const MAX_NAME_CHARS: usize = 100;

pub struct AgentSessions {
    verifier: OidcVerifier,
    chat: Arc<dyn ChatService>,
    tokens: VisitorTokens,
    settings: AgentSessionSettings,
}

/// The agent's Stream user id: `agent-` + 40 hex digits of SHA-256 over issuer and subject. The same person at
/// the same provider always gets the same id; nobody can choose theirs.
pub fn agent_user_id(identity: &AgentIdentity) -> UserId {
    agent_user_id_for(&identity.issuer, &identity.subject)
}

/// [`agent_user_id`] from the issuer (as configured: `AGENT_OIDC_ISSUER`) and the subject (`sub`) alone, for an
/// operator who erases an agent who has left (`erase --agent-subject`).
pub fn agent_user_id_for(issuer: &str, subject: &str) -> UserId {
    let mut hash = Sha256::new();
    hash.update(issuer.as_bytes());
    hash.update([0]);
    hash.update(subject.as_bytes());
    let digest = hex::encode(hash.finalize());
    // 46 characters of [a-z0-9-]: always a valid Stream user id.
    UserId::parse("sub", &format!("agent-{}", &digest[..40]))
        .unwrap_or_else(|_| UserId::new_visitor())
}

/// The name shown to visitors and in HubSpot: the `name` claim, else the e-mail's local part; control characters
/// dropped, at most [`MAX_NAME_CHARS`].
pub fn agent_name(identity: &AgentIdentity) -> String {
    let raw = identity.name.clone().unwrap_or_else(|| {
        identity
            .email
            .as_str()
            .split('@')
            .next()
            .unwrap_or("agent")
            .to_owned()
    });
    let name: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    match name.trim() {
        "" => "Agent".to_owned(),
        name => name.to_owned(),
    }
}

fn refused(refusal: OidcRefusal) -> ApiError {
    let code = match refusal {
        OidcRefusal::Expired => "token_expired",
        OidcRefusal::NoEmail => "email_required",
        _ => "invalid_token",
    };
    let mut message = refusal.to_string();
    message.push_str(": sign in again");
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

impl AgentSessions {
    pub fn new(
        verifier: OidcVerifier,
        chat: Arc<dyn ChatService>,
        tokens: VisitorTokens,
        settings: AgentSessionSettings,
    ) -> Self {
        Self {
            verifier,
            chat,
            tokens,
            settings,
        }
    }

    /// The Lambda handler. Never fails: every outcome is an HTTP response.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let origin = header_str(&request, "origin").map(str::to_owned);
        let mut response = match *request.method() {
            Method::OPTIONS => self.cors().preflight(origin.as_deref()),
            Method::POST => match self.open(&request).await {
                Ok(response) => response,
                Err(error) => {
                    let unauthorized = error.status == StatusCode::UNAUTHORIZED;
                    let mut response = error.into_response();
                    if unauthorized {
                        response
                            .headers_mut()
                            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                    }
                    response
                }
            },
            _ => method_not_allowed("POST, OPTIONS"),
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.cors().allow(origin.as_deref(), &mut response);
        response
    }

    /// The console's origins (`AGENT_CONSOLE_ORIGINS`) may call this API, with the ID token in `Authorization`.
    fn cors(&self) -> Cors<'_> {
        Cors {
            origins: &self.settings.console_origins,
            refusal: "this origin may not call the agent-session API (see AGENT_CONSOLE_ORIGINS)",
            headers: "authorization, content-type",
        }
    }

    async fn open(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let token = header_str(request, "authorization")
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_token",
                    "sign in: send the identity provider's ID token as Authorization: Bearer <token>",
                )
            })?;
        let deadline = Instant::now() + BUDGET;
        let identity = match tokio::time::timeout(BUDGET, self.verifier.verify(token)).await {
            Ok(Ok(identity)) => identity,
            Ok(Err(OidcError::Refused(refusal))) => {
                tracing::info!(refusal = ?refusal, "agent session refused");
                return Err(refused(refusal));
            }
            Ok(Err(error @ OidcError::Unavailable(_))) => {
                tracing::error!(%error, "cannot verify agents' tokens");
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "identity_provider_unavailable",
                    "the identity provider's keys could not be read; try again",
                ));
            }
            Err(_) => {
                tracing::error!("the identity provider did not answer in time");
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "identity_provider_unavailable",
                    "the identity provider did not answer in time; try again",
                ));
            }
        };

        let agent = ChatUser {
            id: agent_user_id(&identity),
            name: agent_name(&identity),
            role: AGENT_ROLE,
        };
        self.chat
            .upsert_users(std::slice::from_ref(&agent), deadline)
            .await
            .map_err(|error| upstream_failed(&error))?;

        let now = Timestamp::now();
        // Never past the ID token's own expiry: the session lasts no longer than the proof it was opened with.
        let left = identity.expires_at.unix_seconds() - now.unix_seconds();
        let ttl = self
            .settings
            .session_ttl
            .min(Duration::from_secs(left.max(1) as u64));
        let (token, expires_at) = self.tokens.issue(&agent.id, now, ttl).map_err(|error| {
            tracing::error!(%error, "could not sign an agent's Stream token");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "could not issue a chat token",
            )
        })?;
        tracing::info!(agent_id = %agent.id, ttl_seconds = ttl.as_secs(), "agent session opened");
        let answer = json!({
            "apiKey": self.tokens.api_key(),
            "userId": agent.id.as_str(),
            "userName": agent.name,
            "role": AGENT_ROLE,
            "token": token,
            "expiresAt": expires_at.rfc3339(),
            "channelType": self.settings.channel_type.as_str(),
            "streamBaseUrl": self.tokens.base_url(),
            "hubspotPortalId": self.settings.hubspot_portal_id,
        });
        Ok(json_response(StatusCode::OK, &answer))
    }

    /// The CORS origins in force (the dev server serves the same API).
    pub fn console_origins(&self) -> &crate::config::AllowedOrigins {
        &self.settings.console_origins
    }
}

fn upstream_failed(error: &UpstreamError) -> ApiError {
    tracing::error!(%error, "agent session failed upstream");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "upstream_unavailable",
        "the chat service could not open the session; try again",
    )
}
