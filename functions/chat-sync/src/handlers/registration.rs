//! `POST /registrations`: the chat widget's form. Links the visitor to the HubSpot contact with their e-mail
//! (creating it if there is none; never changing an existing one unless the site verified the e-mail) and, at the
//! same time, creates the visitor and a fresh private channel with the support agent in Stream; stores channel →
//! contact; hands out a token.

use super::response::{
    body_bytes, check_json_content_type, check_size, header_str, json_response, method_not_allowed,
    parse_json, ApiError, Cors,
};
use crate::adapters::stream::VisitorTokens;
use crate::config::{AllowedOrigins, RegistrationSettings};
use crate::domain::identity::{Identity, IdentityRefusal, IdentityToken};
use crate::domain::{ChannelId, ChannelRef, Email, Invalid, PersonName, Timestamp, UserId};
use crate::ports::{
    ChannelMapping, Channels, ChatService, ChatUser, ContactDetails, Crm, StoreError, Throttle,
    UpstreamError,
};
use crate::throttle::Subject;
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest accepted form body.
pub const MAX_BODY: usize = 16 * 1024;
/// Everything upstream must be done by then (API Gateway's own limit is 30 s; a person is waiting).
const BUDGET: Duration = Duration::from_secs(10);
/// Undoing a failed registration's Stream side, after `BUDGET` (both within API Gateway's 30 s).
const CLEANUP_BUDGET: Duration = Duration::from_secs(5);

pub struct Registration {
    crm: Arc<dyn Crm>,
    chat: Arc<dyn ChatService>,
    store: Arc<dyn Channels>,
    throttle: Arc<dyn Throttle>,
    tokens: VisitorTokens,
    settings: RegistrationSettings,
}

/// The validated form.
pub struct RegistrationForm {
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub email: Email,
    /// The site's proof that the e-mail is the visitor's, if it sent one (see `domain::identity`).
    pub identity_token: Option<IdentityToken>,
}

impl RegistrationForm {
    /// Parses `{"firstName", "lastName", "email", "identityToken"?}`; the error names the first bad field.
    pub fn parse(body: &Value) -> Result<Self, Invalid> {
        let object = body
            .as_object()
            .ok_or_else(|| Invalid::new("body", "must be a JSON object"))?;
        let text = |field: &'static str| match object.get(field) {
            None | Some(Value::Null) => Err(Invalid::new(field, "is required")),
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(_) => Err(Invalid::new(field, "must be a string")),
        };
        let identity_token = match object.get("identityToken") {
            None | Some(Value::Null) => None,
            Some(Value::String(token)) => Some(IdentityToken::new(token)),
            Some(_) => return Err(Invalid::new("identityToken", "must be a string")),
        };
        Ok(Self {
            first_name: PersonName::parse("firstName", text("firstName")?)?,
            last_name: PersonName::parse("lastName", text("lastName")?)?,
            email: Email::parse(text("email")?)?,
            identity_token,
        })
    }
}

fn invalid_field(error: Invalid) -> ApiError {
    let code = match error.field {
        "email" => "invalid_email",
        "firstName" => "invalid_first_name",
        "lastName" => "invalid_last_name",
        "identityToken" => "invalid_identity_token",
        _ => "invalid_body",
    };
    ApiError::new(StatusCode::BAD_REQUEST, code, error.to_string()).with_field(error.field)
}

/// 401 for a token that proves nothing (or none where one is required), 400 for one the site's backend made wrong:
/// the message says what to change, and a refusal never says more about a token whose signature did not verify.
fn identity_refused(refusal: IdentityRefusal) -> ApiError {
    let (status, code, message) = match refusal {
        IdentityRefusal::WrongToken => (
            StatusCode::UNAUTHORIZED,
            "identity_not_verified",
            "the identityToken is not one the site signed for this e-mail",
        ),
        IdentityRefusal::Expired => (
            StatusCode::UNAUTHORIZED,
            "identity_token_expired",
            "the identityToken has expired: the site must sign a new one (reload the page)",
        ),
        IdentityRefusal::Malformed(why) => (
            StatusCode::BAD_REQUEST,
            "invalid_identity_token",
            why.explain(),
        ),
        IdentityRefusal::Required => (
            StatusCode::UNAUTHORIZED,
            "identity_required",
            "this site accepts only visitors it has signed in: an identityToken is required",
        ),
    };
    ApiError::new(status, code, message).with_field("identityToken")
}

fn storage_failed(error: &StoreError) -> ApiError {
    tracing::error!(%error, "registration failed in storage");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "the registration could not be saved; try again",
    )
}

fn throttled(subject: &Subject, wait: Duration) -> ApiError {
    // The kind only: neither the address nor the e-mail goes into a log line.
    tracing::warn!(
        limit = subject.kind(),
        retry_after_ms = wait.as_millis() as u64,
        "registration throttled"
    );
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_registrations",
        "too many registrations from this address or for this e-mail; try again later",
    )
    .with_retry_after(wait)
}

/// The client's address as API Gateway reports it (`requestContext.http.sourceIp`; the dev server sets the
/// socket peer there); `None` for an event without one.
fn client_ip(request: &Request) -> Option<IpAddr> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.as_deref()?.parse().ok(),
        _ => None,
    }
}

fn upstream_failed(error: &UpstreamError) -> ApiError {
    tracing::error!(%error, "registration failed upstream");
    let (code, message) = match error {
        UpstreamError::RateLimited { .. } => (
            "upstream_rate_limited",
            "the CRM or chat service is busy; try again shortly",
        ),
        _ => (
            "upstream_unavailable",
            "the CRM or chat service could not complete the registration; try again",
        ),
    };
    ApiError::new(StatusCode::BAD_GATEWAY, code, message)
}

impl Registration {
    pub fn new(
        crm: Arc<dyn Crm>,
        chat: Arc<dyn ChatService>,
        store: Arc<dyn Channels>,
        throttle: Arc<dyn Throttle>,
        tokens: VisitorTokens,
        settings: RegistrationSettings,
    ) -> Self {
        Self {
            crm,
            chat,
            store,
            throttle,
            tokens,
            settings,
        }
    }

    /// The Lambda handler. Never fails: every outcome is an HTTP response.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let origin = header_str(&request, "origin").map(str::to_owned);
        let mut response = match *request.method() {
            Method::OPTIONS => self.cors().preflight(origin.as_deref()),
            Method::POST => match self.register(&request).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            },
            _ => method_not_allowed("POST, OPTIONS"),
        };
        self.cors().allow(origin.as_deref(), &mut response);
        response
    }

    /// The widget's origins (`ALLOWED_ORIGINS`) may call this API.
    fn cors(&self) -> Cors<'_> {
        Cors {
            origins: &self.settings.allowed_origins,
            refusal: "this origin may not call the registration API (see ALLOWED_ORIGINS)",
            headers: "content-type",
        }
    }

    async fn register(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let bytes = body_bytes(request);
        check_size(bytes, MAX_BODY)?;
        check_json_content_type(request)?;
        let form = RegistrationForm::parse(&parse_json(bytes)?).map_err(invalid_field)?;
        let identity = self
            .settings
            .identity
            .identify(&form.email, form.identity_token.as_ref(), Timestamp::now())
            .map_err(identity_refused)?;
        // Abuse limits, before anything costs HubSpot or Stream quota; one after the other, so that a registration
        // refused by its address's limit takes nothing from the e-mail's (see `throttle`).
        for (subject, limit) in self.settings.limits.checks(client_ip(request), &form.email) {
            let taken = self
                .throttle
                .take(&subject, limit)
                .await
                .map_err(|e| storage_failed(&e))?;
            if let Some(wait) = taken {
                return Err(throttled(&subject, wait));
            }
        }
        let deadline = Instant::now() + BUDGET;

        let visitor = ChatUser {
            id: UserId::new_visitor(),
            name: format!("{} {}", form.first_name, form.last_name),
            role: "user",
        };
        let agent = &self.settings.support_agent_id;
        let channel = ChannelRef::new(self.settings.channel_type.clone(), ChannelId::new_random());
        let details = ContactDetails {
            email: form.email.clone(),
            first_name: form.first_name,
            last_name: form.last_name,
        };

        // HubSpot and Stream do not depend on each other: run them together, so the critical path is
        // max(HubSpot, Stream visitor → channel) and then DynamoDB. Only the visitor is written: the agent exists
        // (setup creates it) and is only made a member, so its role and profile stay as they are.
        let chat = async {
            self.chat
                .upsert_users(std::slice::from_ref(&visitor), deadline)
                .await?;
            self.chat
                .create_channel(
                    &channel,
                    agent,
                    &[visitor.id.clone(), agent.clone()],
                    identity,
                    deadline,
                )
                .await
        };
        let (contact, chat) =
            tokio::join!(self.crm.link_contact(&details, identity, deadline), chat);
        let contact = match (contact, chat) {
            (Ok(contact), Ok(())) => contact,
            (Err(error), _) | (_, Err(error)) => {
                self.undo_chat(&visitor.id).await;
                return Err(upstream_failed(&error));
            }
        };

        let contact_id = contact.id;
        let now = Timestamp::now();
        // A stranger may type a customer's e-mail: their conversation is recorded on that customer's timeline
        // (labelled unverified), never in the property the customer's record shows (see `ChannelMapping`).
        let notes_only = identity == Identity::Unverified && contact.existed;
        let mapping = ChannelMapping::registered(
            channel.clone(),
            contact_id.clone(),
            visitor.id.clone(),
            visitor.name.clone(),
            identity,
            now,
        )
        .notes_only(notes_only);
        // Only once the mapping is stored is a token handed out: no message can arrive for an unknown channel. The
        // agents' console learns whose conversation it is at the same time (the contact's id and the e-mail as
        // registered, on the channel); if Stream refuses that, the console only lacks the link to HubSpot.
        let (saved, described) = tokio::join!(
            self.store.save_channel(&mapping, &details.email),
            self.chat
                .describe_contact(&channel, &contact_id, &details.email, deadline),
        );
        if let Err(error) = saved {
            self.undo_chat(&visitor.id).await;
            return Err(storage_failed(&error));
        }
        if let Err(error) = described {
            tracing::warn!(%error, channel = %channel, "the conversation's contact could not be written to Stream");
        }
        let (token, expires_at) = self
            .tokens
            .issue(&visitor.id, now, self.settings.visitor_token_ttl)
            .map_err(|error| {
                tracing::error!(%error, "could not sign the visitor token");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "could not issue a chat token",
                )
            })?;
        tracing::info!(
            contact_id = %contact_id,
            channel = %channel,
            visitor_id = %visitor.id,
            identity = identity.as_str(),
            notes_only,
            "registered visitor"
        );
        let mut answer = json!({
            "apiKey": self.tokens.api_key(),
            "customerId": visitor.id.as_str(),
            "customerToken": token,
            "channelId": channel.channel_id.as_str(),
            "channelType": channel.channel_type.as_str(),
            "expiresAt": expires_at.rfc3339(),
        });
        if let Some(base_url) = self.tokens.base_url() {
            answer["streamBaseUrl"] = json!(base_url);
        }
        Ok(json_response(StatusCode::OK, &answer))
    }

    /// Removes from Stream what a registration that failed made there (the visitor, with their messages and
    /// conversation channels): no mapping names them, so nothing could find them to erase later. A visitor Stream
    /// never got counts as removed. If Stream refuses even this, the visitor's id (random, not personal) is logged
    /// for an operator: their registered name stays in Stream until then.
    async fn undo_chat(&self, visitor: &UserId) {
        let deadline = Instant::now() + CLEANUP_BUDGET;
        if let Err(error) = self
            .chat
            .delete_users(std::slice::from_ref(visitor), deadline)
            .await
        {
            tracing::error!(%error, visitor_id = %visitor, "a failed registration's Stream visitor could not be removed");
        }
    }

    /// The CORS origins in force (the dev server serves the same API).
    pub fn allowed_origins(&self) -> &AllowedOrigins {
        &self.settings.allowed_origins
    }
}
