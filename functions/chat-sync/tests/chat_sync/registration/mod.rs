//! `POST /registrations` end to end: the handler fn, the real HTTP clients, the HubSpot and Stream doubles over
//! HTTP, and DynamoDB Local.

mod failures;
mod identity;
mod new_visitors;
mod stream_access;
mod throttles;

use crate::support;
use crate::support::{
    deliver, event, http_request, json_body, message, register_visitor, TestApp, AGENT_ID,
    IDENTITY_SECRET, STREAM_KEY, STREAM_SECRET,
};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chat_sync::domain::identity::{IdentityPolicy, IdentityVerifier};
use chat_sync::domain::{ChannelId, ChannelRef, ChannelType, Identity};
use chat_sync::ports::{ChannelMapping, Channels};
use chat_sync::throttle::{parse_limit, RegistrationLimits};
use futures::StreamExt;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use sandbox::stream::message_event;

const ADA: &str = r#"{"firstName":"Ada","lastName":"Lovelace","email":"Ada.Lovelace@Example.com"}"#;
const GRACE: &str = r#"{"firstName":"Grace","lastName":"Hopper","email":"grace@example.com"}"#;
const JSON: (&str, &str) = ("content-type", "application/json");

async fn register(app: &TestApp, body: &str) -> (StatusCode, serde_json::Value) {
    let response = app
        .registration
        .handle(http_request("POST", body, &[JSON]))
        .await;
    (response.status(), json_body(&response))
}

/// Seconds since 1970, as a JWT's `exp` counts them.
fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// What the README tells a site's backend to make: an HS256 JWT of `claims` under `secret`. Built with the
/// jsonwebtoken crate, independently of chat-sync's own verifier, so the format is checked from the outside.
fn site_token(claims: &serde_json::Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign an HS256 JWT")
}

/// The token a site's backend makes for `email` with the test app's `IDENTITY_SECRET`, valid for an hour.
fn identity_token(email: &str) -> String {
    site_token(
        &serde_json::json!({"email": email, "exp": unix_now() + 3_600}),
        IDENTITY_SECRET,
    )
}

/// A registration body with the site's `identityToken` for `email`.
fn verified(first: &str, last: &str, email: &str) -> String {
    with_token(first, last, email, &identity_token(email))
}

/// A registration body carrying `token` as its `identityToken`.
fn with_token(first: &str, last: &str, email: &str, token: &str) -> String {
    format!(
        r#"{{"firstName":"{first}","lastName":"{last}","email":"{email}","identityToken":"{token}"}}"#
    )
}

/// The channel a registration's answer names.
fn channel_ref(body: &serde_json::Value) -> ChannelRef {
    ChannelRef::new(
        ChannelType::parse(body["channelType"].as_str().expect("channelType")).expect("valid"),
        ChannelId::parse(body["channelId"].as_str().expect("channelId")).expect("valid"),
    )
}

/// The channel mapping a registration's answer names, as stored.
async fn stored_mapping(app: &TestApp, body: &serde_json::Value) -> ChannelMapping {
    app.store
        .channel(&channel_ref(body))
        .await
        .expect("read")
        .expect("stored")
}

fn assert_no_upstream_calls(app: &TestApp) {
    assert!(
        app.hubspot.calls().is_empty(),
        "HubSpot was called: {:?}",
        app.hubspot.calls()
    );
    assert!(app.stream.calls().is_empty(), "Stream was called");
}

fn person(n: usize, email: &str) -> String {
    format!(r#"{{"firstName":"Visitor","lastName":"Number {n}","email":"{email}"}}"#)
}
