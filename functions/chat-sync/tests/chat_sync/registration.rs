//! `POST /registrations` end to end: the handler fn, the real HTTP clients, the HubSpot and Stream doubles over
//! HTTP, and DynamoDB Local.


use crate::support;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chat_sync::domain::identity::{IdentityPolicy, IdentityVerifier};
use chat_sync::domain::{ChannelId, ChannelRef, ChannelType, Identity};
use chat_sync::ports::{ChannelMapping, Store};
use chat_sync::throttle::{parse_limit, RegistrationLimits};
use futures::StreamExt;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use sandbox::stream::message_event;
use crate::support::{
    deliver, event, http_request, json_body, message, register_visitor, TestApp, AGENT_ID,
    IDENTITY_SECRET, STREAM_KEY, STREAM_SECRET,
};

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

#[tokio::test]
async fn new_visitor_gets_contact_users_channel_mapping_and_token() {
    let app = TestApp::start().await;
    let response = app.registration.handle(event("registration.json")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("http://localhost:3000")
    );
    let body = json_body(&response);
    assert_eq!(body["apiKey"], STREAM_KEY);
    // Not Stream's default URL: the widget's SDK must be told where this Stream is.
    assert_eq!(
        body["streamBaseUrl"],
        app.stream.base_url().trim_end_matches('/')
    );
    assert_eq!(body["channelType"], "messaging");
    let visitor = body["customerId"].as_str().expect("customerId");
    let channel_id = body["channelId"].as_str().expect("channelId");

    // HubSpot: one contact, e-mail lowercased, names set, created by a single create call.
    let contact = app
        .hubspot
        .contact_by_email("ada.lovelace@example.com")
        .expect("contact created");
    assert_eq!(
        contact.properties.get("firstname").map(String::as_str),
        Some("Ada")
    );
    assert_eq!(
        contact.properties.get("lastname").map(String::as_str),
        Some("Lovelace")
    );
    assert_eq!(app.hubspot.call_count("create_contact"), 1);
    assert_eq!(
        app.hubspot.calls().len(),
        1,
        "one call to HubSpot, no GET-then-POST"
    );

    // Stream: visitor and agent upserted in one call; the channel created server-side with both as members.
    assert_eq!(app.stream.call_count("upsert_users"), 1);
    let users = app.stream.users();
    assert!(users
        .iter()
        .any(|u| u.id == visitor && u.name == "Ada Lovelace"));
    assert!(users.iter().any(|u| u.id == AGENT_ID));
    let channel = app
        .stream
        .channels()
        .into_iter()
        .find(|c| c.id == channel_id)
        .expect("channel created");
    assert_eq!(channel.created_by_id, AGENT_ID);
    // The channel says, for the agents' tools, that the visitor's e-mail was typed, not verified.
    assert_eq!(
        channel.custom.get("visitor_identity"),
        Some(&serde_json::json!("unverified"))
    );
    let mut members = channel.members.clone();
    members.sort();
    let mut expected = vec![visitor.to_owned(), AGENT_ID.to_owned()];
    expected.sort();
    assert_eq!(members, expected);

    // DynamoDB: the channel maps to the contact.
    let key = ChannelRef::new(
        ChannelType::parse("messaging").expect("valid"),
        ChannelId::parse(channel_id).expect("valid"),
    );
    let mapping = app
        .store
        .channel(&key)
        .await
        .expect("read")
        .expect("mapping stored");
    assert_eq!(mapping.contact_id.as_str(), contact.id);
    assert_eq!(mapping.email.as_str(), "ada.lovelace@example.com");
    assert_eq!(mapping.visitor_id.as_str(), visitor);
}

#[tokio::test]
async fn ids_are_random_per_registration_and_not_derived_from_the_person() {
    let app = TestApp::start().await;
    let (_, first) = register(&app, ADA).await;
    let (_, second) = register(&app, ADA).await;
    assert_ne!(first["customerId"], second["customerId"]);
    assert_ne!(first["channelId"], second["channelId"]);
    for body in [&first, &second] {
        let visitor = body["customerId"].as_str().expect("id");
        let channel = body["channelId"].as_str().expect("id");
        // Nothing of the name or the e-mail: a prefix and 128 random bits in hex. (Hex digits can spell "ada" by
        // chance, so the check is on the whole shape.)
        for (id, prefix) in [(visitor, "visitor-"), (channel, "chat-")] {
            let random = id
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{id} has the {prefix} prefix"));
            assert_eq!(random.len(), 32, "{id}");
            assert!(random.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
            assert!(!id.contains("lovelace") && !id.contains("example"), "{id}");
        }
    }
}

#[tokio::test]
async fn an_existing_email_with_other_names_links_to_the_contact_and_leaves_it_untouched() {
    let app = TestApp::start().await;
    let existing = app.hubspot.seed_contact(
        "ada.lovelace@example.com",
        &[("firstname", "Ada"), ("lastname", "Lovelace")],
    );
    let writes_before = app.hubspot.property_writes(&existing.id);
    // Anyone who knows the e-mail can type it with other names: that must not rename the customer.
    let (status, body) = register(
        &app,
        r#"{"firstName":"Mallory","lastName":"Intruder","email":"ADA.LOVELACE@example.com"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        app.hubspot.property_writes(&existing.id),
        writes_before,
        "no property of the existing contact was written"
    );
    let contacts = app.hubspot.contacts();
    assert_eq!(contacts.len(), 1, "no duplicate contact");
    assert_eq!(
        contacts[0].properties.get("firstname").map(String::as_str),
        Some("Ada")
    );
    // One HubSpot request on the way: the create, answered 409 with the existing id.
    assert_eq!(app.hubspot.calls().len(), 1, "{:?}", app.hubspot.calls());
    assert_eq!(app.hubspot.calls()[0].status, 409);
    // The channel is linked to the existing contact, and says the e-mail was not verified.
    let mapping = stored_mapping(&app, &body).await;
    assert_eq!(mapping.contact_id.as_str(), existing.id);
    assert_eq!(mapping.identity, Identity::Unverified);
}

#[tokio::test]
async fn a_verified_visitor_may_update_the_names_in_one_request() {
    let app = TestApp::start().await;
    let existing = app.hubspot.seed_contact(
        "ada.lovelace@example.com",
        &[("firstname", "Ada"), ("lastname", "Lovelace")],
    );
    let (status, body) = register(
        &app,
        &verified("Augusta Ada", "King", "Ada.Lovelace@Example.com"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let contact = app.hubspot.contact(&existing.id).expect("same contact");
    assert_eq!(
        contact.properties.get("firstname").map(String::as_str),
        Some("Augusta Ada")
    );
    assert_eq!(app.hubspot.calls().len(), 1, "one HubSpot request");
    assert_eq!(app.hubspot.call_count("upsert"), 1);
    let mapping = stored_mapping(&app, &body).await;
    assert_eq!(mapping.identity, Identity::Verified);

    // A new verified visitor gets a new contact with the names.
    let (status, _) = register(&app, &verified("Grace", "Hopper", "grace@example.com")).await;
    assert_eq!(status, StatusCode::OK);
    let grace = app
        .hubspot
        .contact_by_email("grace@example.com")
        .expect("created");
    assert_eq!(
        grace.properties.get("lastname").map(String::as_str),
        Some("Hopper")
    );
}

#[tokio::test]
async fn a_wrong_identity_token_is_a_401_that_changes_nothing() {
    let app = TestApp::start().await;
    let ada = "ada.lovelace@example.com";
    let exp = unix_now() + 3_600;
    let cases = [
        // Grace's token presented with Ada's e-mail.
        identity_token("grace@example.com"),
        // Ada's claims under another secret.
        site_token(
            &serde_json::json!({"email": ada, "exp": exp}),
            "another-secret-0123456789abcdef-0123",
        ),
        // Ada's token, one character of the signature changed.
        {
            let mut token = identity_token(ada);
            let at = token.len() - 10;
            let changed = if &token[at..=at] == "A" { "B" } else { "A" };
            token.replace_range(at..=at, changed);
            token
        },
        // Ada's token with its signature cut short, and with none ("alg":"none").
        {
            let token = identity_token(ada);
            token[..token.len() - 6].to_owned()
        },
        {
            let token = identity_token(ada);
            let unsigned = token.rsplit_once('.').expect("three parts").0;
            format!("{unsigned}.")
        },
    ];
    for token in cases {
        let (status, body) = register(&app, &with_token("Ada", "Lovelace", ada, &token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}: {body}");
        assert_eq!(body["code"], "identity_not_verified", "{token}: {body}");
        assert_eq!(body["field"], "identityToken");
    }
    // Not a token at all: the site's backend sends something else than the documented format.
    for token in ["not-a-token", ""] {
        let (status, body) = register(&app, &with_token("Ada", "Lovelace", ada, token)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{token:?}: {body}");
        assert_eq!(body["code"], "invalid_identity_token", "{token:?}: {body}");
        assert_eq!(body["field"], "identityToken");
    }
    let (status, body) = register(
        &app,
        r#"{"firstName":"Ada","lastName":"Lovelace","email":"ada@example.com","identityToken":42}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_identity_token");
    assert_no_upstream_calls(&app);
    assert_eq!(app.item_count().await, 0, "nothing stored");
}

/// Issue 21, item 10: an identity token carries its expiry, under the same signature as the e-mail. A valid one
/// verifies; an expired one is 401 `identity_token_expired`; one whose `exp` was changed no longer verifies (401
/// `identity_not_verified`); one without `exp` — including every token of the old format, the bare hex HMAC of the
/// e-mail — is 400 `invalid_identity_token`, as is one that expires more than a day ahead. None changes anything.
#[tokio::test]
async fn identity_tokens_expire_and_their_expiry_is_signed() {
    let app = TestApp::start().await;
    let ada = "ada.lovelace@example.com";
    let now = unix_now();
    let claims = |exp: serde_json::Value| serde_json::json!({"email": ada, "exp": exp});

    let expired = site_token(&claims(serde_json::json!(now - 120)), IDENTITY_SECRET);
    let tampered = {
        // The expired token with a later `exp` pasted in, its signature kept.
        let mut parts: Vec<String> = expired.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(claims(serde_json::json!(now + 600)).to_string());
        parts.join(".")
    };
    let legacy = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(IDENTITY_SECRET.as_bytes())
            .expect("any key length");
        mac.update(ada.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let refusals = [
        ("expired", expired, 401, "identity_token_expired"),
        ("tampered expiry", tampered, 401, "identity_not_verified"),
        (
            "no expiry",
            site_token(&serde_json::json!({"email": ada}), IDENTITY_SECRET),
            400,
            "invalid_identity_token",
        ),
        (
            "expiry not a number",
            site_token(&claims(serde_json::json!("tomorrow")), IDENTITY_SECRET),
            400,
            "invalid_identity_token",
        ),
        (
            "old format (no expiry)",
            legacy,
            400,
            "invalid_identity_token",
        ),
        (
            "expiry more than a day ahead (milliseconds for seconds)",
            site_token(&claims(serde_json::json!(now * 1_000)), IDENTITY_SECRET),
            400,
            "invalid_identity_token",
        ),
    ];
    for (what, token, status, code) in refusals {
        let (got, body) = register(&app, &with_token("Ada", "Lovelace", ada, &token)).await;
        assert_eq!(got.as_u16(), status, "{what}: {body}");
        assert_eq!(body["code"], code, "{what}: {body}");
        assert_eq!(body["field"], "identityToken", "{what}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {body}"
        );
    }
    assert_no_upstream_calls(&app);
    assert_eq!(app.item_count().await, 0, "nothing stored");

    let valid = site_token(&claims(serde_json::json!(now + 600)), IDENTITY_SECRET);
    let (status, body) = register(&app, &with_token("Ada", "Lovelace", ada, &valid)).await;
    assert_eq!(status, StatusCode::OK, "valid: {body}");
    let mapping = stored_mapping(&app, &body).await;
    assert_eq!(mapping.identity, Identity::Verified);
}

/// The README's example of how a site makes an identity token, run exactly as written (bash, openssl, date), makes
/// a token registration accepts as verified.
#[tokio::test]
async fn the_readmes_identity_token_command_makes_a_token_that_verifies() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
    )
    .expect("README.md");
    let section = readme
        .split_once("### Identity: who the visitor is")
        .expect("the README's identity section")
        .1;
    let section = section.split_once("\n### ").map_or(section, |(s, _)| s);
    let script = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(script, _)| script)
        .expect("the identity section shows its command in a ```sh block");
    let output = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .env("IDENTITY_SECRET", IDENTITY_SECRET)
        .output()
        .expect("run bash");
    assert!(
        output.status.success(),
        "the README's command failed: {}\n{script}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).expect("UTF-8");
    let token = token.trim();
    let email = script
        .split_once("email='")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(email, _)| email)
        .expect("the command names its e-mail as email='…'");

    let app = TestApp::start().await;
    let (status, body) = register(&app, &with_token("Ada", "Lovelace", email, token)).await;
    assert_eq!(status, StatusCode::OK, "{token}: {body}");
    let mapping = stored_mapping(&app, &body).await;
    assert_eq!(mapping.identity, Identity::Verified);
}

#[tokio::test]
async fn require_identity_refuses_unverified_registrations() {
    let app = TestApp::start().await;
    let mut settings = support::registration_settings();
    settings.identity =
        IdentityPolicy::new(Some(IdentityVerifier::new(IDENTITY_SECRET.into())), true);
    let registration = app.registration_with(settings);
    let response = registration
        .handle(http_request("POST", ADA, &[JSON]))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = json_body(&response);
    assert_eq!(body["code"], "identity_required", "{body}");
    assert_no_upstream_calls(&app);
    assert_eq!(app.item_count().await, 0);

    let body = verified("Ada", "Lovelace", "ada.lovelace@example.com");
    let response = registration
        .handle(http_request("POST", &body, &[JSON]))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        json_body(&response)
    );
}

#[tokio::test]
async fn the_conversation_header_says_how_the_visitor_was_identified() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let (status, body) = register(&app, &verified("Grace", "Hopper", "grace@example.com")).await;
    assert_eq!(status, StatusCode::OK);
    let grace = app
        .hubspot
        .contact_by_email("grace@example.com")
        .expect("created")
        .id;
    let grace_visitor = body["customerId"].as_str().expect("id").to_owned();
    let grace_channel = body["channelId"].as_str().expect("id").to_owned();
    for (visitor, channel) in [(&visitor, &channel), (&grace_visitor, &grace_channel)] {
        let event = message_event(
            "message.new",
            "messaging",
            channel,
            &message(
                "m-1",
                visitor,
                "Visitor",
                "hello",
                "2026-11-24T10:00:01.000Z",
            ),
        );
        let (status, _, _, _) = deliver(&app, &event).await;
        assert_eq!(status, StatusCode::OK);
    }
    app.sweep().await;
    let header = |contact: &str| {
        app.transcript(contact)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        header(&contact).ends_with("· e-mail as typed, not verified ==="),
        "{}",
        header(&contact)
    );
    assert!(
        header(&grace).ends_with("· e-mail verified by the site ==="),
        "{}",
        header(&grace)
    );
}

#[tokio::test]
async fn each_invalid_field_is_a_400_naming_it_with_no_upstream_call_and_nothing_stored() {
    let app = TestApp::start().await;
    let long = "x".repeat(101);
    let cases: Vec<(String, &str, &str)> = vec![
        (
            r#"{"firstName":"Ada","lastName":"Lovelace","email":"not-an-email"}"#.into(),
            "email",
            "invalid_email",
        ),
        (
            r#"{"firstName":"Ada","lastName":"Lovelace"}"#.into(),
            "email",
            "invalid_email",
        ),
        (
            r#"{"firstName":"Ada","lastName":"Lovelace","email":42}"#.into(),
            "email",
            "invalid_email",
        ),
        (
            r#"{"firstName":"  ","lastName":"Lovelace","email":"ada@example.com"}"#.into(),
            "firstName",
            "invalid_first_name",
        ),
        (
            format!(r#"{{"firstName":"{long}","lastName":"Lovelace","email":"ada@example.com"}}"#),
            "firstName",
            "invalid_first_name",
        ),
        (
            r#"{"firstName":"Ada\u0000","lastName":"Lovelace","email":"ada@example.com"}"#.into(),
            "firstName",
            "invalid_first_name",
        ),
        (
            r#"{"firstName":"Ada","lastName":"","email":"ada@example.com"}"#.into(),
            "lastName",
            "invalid_last_name",
        ),
        (
            r#"{"firstName":"Ada","lastName":["L"],"email":"ada@example.com"}"#.into(),
            "lastName",
            "invalid_last_name",
        ),
        (
            r#"["Ada","Lovelace","ada@example.com"]"#.into(),
            "body",
            "invalid_body",
        ),
    ];
    for (body, field, code) in cases {
        let (status, json) = register(&app, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json["field"], field, "{body}");
        assert_eq!(json["code"], code, "{body}");
        assert!(
            json["error"].as_str().is_some_and(|e| e.contains(field)),
            "{json}"
        );
    }
    let (status, json) = register(&app, "{not json").await;
    assert_eq!(
        (status, json["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let oversize = format!(
        r#"{{"firstName":"{}","lastName":"L","email":"a@example.com"}}"#,
        "a".repeat(17 * 1024)
    );
    let (status, json) = register(&app, &oversize).await;
    assert_eq!(
        (status, json["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let response = app
        .registration
        .handle(http_request("POST", ADA, &[("content-type", "text/plain")]))
        .await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for method in ["GET", "PUT", "DELETE"] {
        let response = app.registration.handle(http_request(method, "", &[])).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(json_body(&response)["code"], "method_not_allowed");
    }
    assert_no_upstream_calls(&app);
    assert_eq!(app.item_count().await, 0, "nothing stored");
}

#[tokio::test]
async fn event_files_for_bad_input_and_preflight() {
    let app = TestApp::start().await;
    let response = app
        .registration
        .handle(event("registration-invalid-email.json"))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(&response)["field"], "email");
    let response = app
        .registration
        .handle(event("registration-bad-json.json"))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(&response)["code"], "invalid_json");
    let response = app
        .registration
        .handle(event("registration-preflight.json"))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header("access-control-allow-origin").as_deref(),
        Some("http://localhost:3000")
    );
    assert!(header("access-control-allow-methods").is_some_and(|m| m.contains("POST")));
    assert!(header("access-control-allow-headers").is_some_and(|h| h.contains("content-type")));
    let foreign = app
        .registration
        .handle(http_request(
            "OPTIONS",
            "",
            &[("origin", "https://evil.example")],
        ))
        .await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert!(foreign
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert_no_upstream_calls(&app);
    assert_eq!(app.item_count().await, 0);
}

#[tokio::test]
async fn hubspot_failure_is_a_502_and_stores_no_mapping() {
    let app = TestApp::start().await;
    app.hubspot.faults().fail_next("create_contact", 10, 500);
    let (status, body) = register(&app, ADA).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["code"], "upstream_unavailable");
    assert!(
        app.hubspot.call_count("create_contact") > 1,
        "5xx is retried"
    );
    assert!(
        app.hubspot.call_count("create_contact") <= 4,
        "retries are bounded"
    );
    assert_eq!(app.item_count().await, 0, "no mapping stored");
    // Stream's side, made meanwhile, is undone: no visitor or channel that nothing could find to erase.
    assert_stream_holds_no_visitor(&app);
}

/// Only the support agent is left in Stream, in no channel: what a failed registration made there is gone.
fn assert_stream_holds_no_visitor(app: &TestApp) {
    let users: Vec<String> = app.stream.users().into_iter().map(|u| u.id).collect();
    assert!(users.iter().all(|u| u == AGENT_ID), "{users:?}");
    assert!(
        app.stream.channels().is_empty(),
        "{:?}",
        app.stream.channels()
    );
}

#[tokio::test]
async fn a_rolling_window_429_is_not_hammered() {
    let app = TestApp::start().await;
    app.hubspot.faults().fail_next("create_contact", 1, 429);
    let (status, body) = register(&app, ADA).await;
    // HubSpot's TEN_SECONDLY_ROLLING 429 means "wait for the window": longer than a visitor should wait, so the
    // registration fails at once instead of retrying into the same window...
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["code"], "upstream_rate_limited");
    assert_eq!(app.hubspot.call_count("create_contact"), 1, "not retried");
    // ...and the shared budget holds every caller back until the window has passed.
    let (status, body) = register(&app, GRACE).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(
        app.hubspot.call_count("create_contact"),
        1,
        "nothing sent meanwhile"
    );
    assert!(app.hubspot.contacts().is_empty());
}

#[tokio::test]
async fn stream_rejection_is_a_502_and_stores_no_mapping() {
    let app = TestApp::start().await;
    app.stream.faults().fail_next("query_channel", 1, 400);
    let (status, body) = register(&app, ADA).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["code"], "upstream_unavailable");
    assert_eq!(
        app.stream.call_count("query_channel"),
        1,
        "a 4xx is not retried"
    );
    assert_eq!(app.item_count().await, 0);
    // The visitor user made before the channel failed is removed again.
    assert_stream_holds_no_visitor(&app);
}

#[tokio::test]
async fn concurrent_registrations_with_one_email_make_one_contact() {
    let app = TestApp::start().await;
    let bodies: Vec<String> = (0..12)
        .map(|i| {
            let email = if i % 2 == 0 {
                "Grace@Example.com"
            } else {
                "grace@example.COM"
            };
            format!(r#"{{"firstName":"Grace","lastName":"Hopper {i}","email":"{email}"}}"#)
        })
        .collect();
    let results = futures::future::join_all(bodies.iter().map(|b| register(&app, b))).await;
    assert!(
        results.iter().all(|(status, _)| *status == StatusCode::OK),
        "{results:?}"
    );
    let contacts = app.hubspot.contacts();
    assert_eq!(contacts.len(), 1, "one contact");
    // Exactly one create went through; every other registration was told the existing id (409) and wrote nothing.
    let writes = app.hubspot.property_writes(&contacts[0].id);
    assert_eq!(
        writes.iter().filter(|w| w.property == "lastname").count(),
        1,
        "{writes:?}"
    );
    let created = app
        .hubspot
        .calls()
        .iter()
        .filter(|c| c.route == "create_contact" && c.status == 201)
        .count();
    assert_eq!(created, 1);
    for (_, body) in &results {
        let mapping = app
            .store
            .channel(&channel_ref(body))
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(
            mapping.contact_id.as_str(),
            contacts[0].id,
            "every channel maps to it"
        );
    }
    let channels: std::collections::HashSet<_> = results
        .iter()
        .map(|(_, b)| b["channelId"].to_string())
        .collect();
    assert_eq!(
        channels.len(),
        12,
        "every registration gets its own channel"
    );
}

#[tokio::test]
async fn token_verifies_with_the_secret_and_expires_at_expires_at() {
    #[derive(serde::Deserialize)]
    struct Claims {
        user_id: String,
        iat: i64,
        exp: i64,
    }
    let app = TestApp::start().await;
    let (status, body) = register(&app, ADA).await;
    assert_eq!(status, StatusCode::OK);
    let token = body["customerToken"].as_str().expect("token");
    let claims = decode::<Claims>(
        token,
        &DecodingKey::from_secret(STREAM_SECRET.as_bytes()),
        &Validation::new(Algorithm::HS256),
    )
    .expect("valid HS256 token")
    .claims;
    assert_eq!(claims.user_id, body["customerId"].as_str().expect("id"));
    let expires_at = time::OffsetDateTime::parse(
        body["expiresAt"].as_str().expect("expiresAt"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    assert_eq!(claims.exp, expires_at.unix_timestamp());
    assert_eq!(claims.exp - claims.iat, 3_600);
    assert!(decode::<Claims>(
        token,
        &DecodingKey::from_secret(b"another"),
        &Validation::new(Algorithm::HS256)
    )
    .is_err());
}

/// A registration request from `ip`, as API Gateway delivers it (`requestContext.http.sourceIp`).
fn from_ip(ip: &str, body: &str) -> lambda_http::Request {
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.http.source_ip = Some(ip.to_owned());
    http_request("POST", body, &[JSON]).with_request_context(RequestContext::ApiGatewayV2(context))
}

fn person(n: usize, email: &str) -> String {
    format!(r#"{{"firstName":"Visitor","lastName":"Number {n}","email":"{email}"}}"#)
}

#[tokio::test]
async fn throttled_registrations_get_429_with_retry_after_and_change_nothing() {
    let app = TestApp::start().await;
    let mut settings = support::registration_settings();
    settings.limits = RegistrationLimits {
        per_ip: parse_limit("3/600").expect("valid"),
        per_email: parse_limit("2/600").expect("valid"),
    };
    let registration = app.registration_with(settings);
    let register_from = |ip: &'static str, body: String| {
        let registration = &registration;
        async move { registration.handle(from_ip(ip, &body)).await }
    };
    let refused = |response: &lambda_http::Response<lambda_http::Body>| {
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(json_body(response)["code"], "too_many_registrations");
        let retry_after: u64 = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After in whole seconds");
        // 2 per 600 s: the next one comes within one emission, 300 s.
        assert!((1..=300).contains(&retry_after), "{retry_after}");
    };

    // Per e-mail: two registrations of one e-mail, from two addresses; the third is refused.
    for ip in ["198.51.100.1", "198.51.100.2"] {
        let response = register_from(ip, person(0, "ada@example.com")).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (hubspot_calls, stream_calls, items) = (
        app.hubspot.calls().len(),
        app.stream.calls().len(),
        app.item_count().await,
    );
    let response = register_from("198.51.100.3", person(0, "ADA@example.com")).await;
    refused(&response);
    assert_eq!(app.hubspot.calls().len(), hubspot_calls, "no HubSpot call");
    assert_eq!(app.stream.calls().len(), stream_calls, "no Stream call");
    assert_eq!(app.item_count().await, items, "nothing stored");

    // Per address: three registrations from one address (other e-mails), the fourth is refused...
    for n in 1..=3 {
        let response = register_from("203.0.113.9", person(n, &format!("v{n}@example.com"))).await;
        assert_eq!(response.status(), StatusCode::OK, "{n}");
    }
    refused(&register_from("203.0.113.9", person(4, "v4@example.com")).await);
    // ...while another address and e-mail still get through.
    let response = register_from("203.0.113.10", person(5, "v5@example.com")).await;
    assert_eq!(response.status(), StatusCode::OK);

    // What the table keeps: keyed hashes that expire, never the address or the e-mail.
    let output = app
        .dynamodb
        .scan()
        .table_name(app.store.table())
        .filter_expression("begins_with(pk, :throttle)")
        .expression_attribute_values(":throttle", AttributeValue::S("THROTTLE#".into()))
        .send()
        .await
        .expect("scan");
    assert!(output.count() >= 8, "{}", output.count());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for item in output.items() {
        let text = format!("{item:?}");
        for raw in ["203.0.113", "198.51.100", "example.com"] {
            assert!(!text.contains(raw), "{raw} stored: {text}");
        }
        let expires: i64 = item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .expect("a TTL");
        assert!(
            expires > now && expires <= now + 600 + 2,
            "expires {expires}, now {now}"
        );
    }
}

#[tokio::test]
async fn an_address_refused_by_its_limit_takes_nothing_from_the_emails_it_names() {
    let app = TestApp::start().await;
    let mut settings = support::registration_settings();
    settings.limits = RegistrationLimits {
        per_ip: parse_limit("1/600").expect("valid"),
        per_email: parse_limit("2/600").expect("valid"),
    };
    let registration = app.registration_with(settings);
    // One address (and its whole IPv6 /64) registers once, then keeps naming the customer's e-mail: refused by its
    // own limit every time.
    let attacker = "2001:db8:bad:1::1";
    let response = registration
        .handle(from_ip(attacker, &person(0, "attacker@example.com")))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    for n in 1..=5 {
        // Another address of the same /64 is the same client.
        let ip = format!("2001:db8:bad:1::{n:x}");
        let response = registration
            .handle(from_ip(&ip, &person(n, "customer@example.com")))
            .await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{ip}");
    }
    // The customer, from their own address, still has the e-mail's whole allowance.
    for ip in ["198.51.100.20", "198.51.100.21"] {
        let response = registration
            .handle(from_ip(ip, &person(9, "customer@example.com")))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{ip}: {}",
            json_body(&response)
        );
    }
}

#[tokio::test]
async fn the_event_files_address_is_throttled_like_any_other() {
    let app = TestApp::start().await;
    let mut settings = support::registration_settings();
    settings.limits = RegistrationLimits {
        per_ip: parse_limit("1/600").expect("valid"),
        per_email: None,
    };
    let registration = app.registration_with(settings);
    assert_eq!(
        registration
            .handle(event("registration.json"))
            .await
            .status(),
        StatusCode::OK
    );
    let again = registration.handle(event("registration.json")).await;
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    // Off: no limit at all.
    let mut settings = support::registration_settings();
    settings.limits = RegistrationLimits::OFF;
    let unlimited = app.registration_with(settings);
    for _ in 0..3 {
        assert_eq!(
            unlimited.handle(event("registration.json")).await.status(),
            StatusCode::OK
        );
    }
}

/// A client-side call to the Stream double with a visitor's token, as the widget's SDK makes it.
async fn as_visitor(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", app.stream.base_url()))
        .query(&[("api_key", STREAM_KEY)])
        .query(query)
        .header("authorization", token)
        .header("stream-auth-type", "jwt");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the Stream double answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// A client-side `POST` with a visitor's token.
async fn post_as(
    app: &TestApp,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    as_visitor(app, token, reqwest::Method::POST, path, &[], Some(body)).await
}

fn refused_by_permissions((status, body): &(u16, serde_json::Value)) -> bool {
    *status == 403 && body["code"] == 17
}

#[tokio::test]
async fn a_visitor_token_reads_and_writes_only_its_own_channel() {
    let app = TestApp::start().await;
    let (_, ada) = register(&app, ADA).await;
    let (_, grace) = register(&app, GRACE).await;
    let token = ada["customerToken"].as_str().expect("token");
    let own = format!(
        "/channels/messaging/{}",
        ada["channelId"].as_str().expect("id")
    );
    let other = format!(
        "/channels/messaging/{}",
        grace["channelId"].as_str().expect("id")
    );
    let query = serde_json::json!({ "state": true, "watch": false, "presence": false });

    // Its own channel: read it, write in it.
    let (status, body) = post_as(&app, token, &format!("{own}/query"), query.clone()).await;
    assert!((200..300).contains(&status), "{body}");
    let message = serde_json::json!({ "message": { "text": "hello" } });
    let (status, body) = post_as(&app, token, &format!("{own}/message"), message.clone()).await;
    assert!((200..300).contains(&status), "{body}");

    // Another visitor's channel: neither read nor written.
    let read = post_as(&app, token, &format!("{other}/query"), query).await;
    assert!(refused_by_permissions(&read), "{read:?}");
    let write = post_as(&app, token, &format!("{other}/message"), message).await;
    assert!(refused_by_permissions(&write), "{write:?}");
    // No members added, to its own channel or another: not even a visitor the app knows.
    let grace_id = grace["customerId"].as_str().expect("id");
    for channel in [&own, &other] {
        let add = serde_json::json!({ "add_members": [grace_id] });
        let added = post_as(&app, token, channel, add).await;
        assert!(refused_by_permissions(&added), "{channel}: {added:?}");
    }
    // No channel of its own making, with or without others in it.
    let create = serde_json::json!({ "data": { "members": [ada["customerId"], grace_id] } });
    let created = post_as(
        &app,
        token,
        "/channels/messaging/visitor-made/query",
        create,
    )
    .await;
    assert!(refused_by_permissions(&created), "{created:?}");
    // No listing of the app's users.
    let payload =
        serde_json::json!({ "filter_conditions": { "id": { "$in": [grace_id, AGENT_ID] } } })
            .to_string();
    let listed = as_visitor(
        &app,
        token,
        reqwest::Method::GET,
        "/users",
        &[("payload", &payload)],
        None,
    )
    .await;
    assert!(refused_by_permissions(&listed), "{listed:?}");
    // No renaming itself in the agent's view.
    let visitor_id = ada["customerId"].as_str().expect("id");
    let rename = serde_json::json!({ "users": [{ "id": visitor_id, "set": { "name": "Support (agent)" } }] });
    let renamed = as_visitor(
        &app,
        token,
        reqwest::Method::PATCH,
        "/users",
        &[],
        Some(rename),
    )
    .await;
    assert!(refused_by_permissions(&renamed), "{renamed:?}");
    assert_eq!(
        app.stream.user_json(visitor_id).expect("visitor")["name"],
        "Ada Lovelace"
    );
    let members = |id: &str| {
        app.stream
            .channels()
            .into_iter()
            .find(|c| c.id == id)
            .map(|c| c.members.len())
    };
    assert_eq!(members(ada["channelId"].as_str().expect("id")), Some(2));
    assert_eq!(members(grace["channelId"].as_str().expect("id")), Some(2));
    assert!(members("visitor-made").is_none());
}

/// Makes the agent what an operator may have made it in Stream's dashboard: an admin with a picture and a custom
/// field.
fn promote_agent(app: &TestApp) {
    let profile =
        serde_json::json!({ "image": "https://cdn.example.com/grace.png", "team": "care" })
            .as_object()
            .cloned()
            .expect("an object");
    app.stream
        .seed_user_with(AGENT_ID, support::AGENT_NAME, "admin", profile);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_agents_admin_role_and_image_survive_100_registrations() {
    let app = TestApp::start().await;
    promote_agent(&app);
    let bodies: Vec<String> = (0..100)
        .map(|n| person(n, &format!("visitor{n}@example.com")))
        .collect();
    // Two at a time: registrations are paced by the HubSpot budget's registration cap (one per ~250 ms) anyway, and
    // more contenders only wait longer for a permit.
    let results: Vec<_> = futures::stream::iter(bodies.iter().map(|b| register(&app, b)))
        .buffer_unordered(2)
        .collect()
        .await;
    assert!(
        results.iter().all(|(status, _)| *status == StatusCode::OK),
        "{results:?}"
    );
    let agent = app.stream.user_json(AGENT_ID).expect("agent");
    assert_eq!(agent["role"], "admin");
    assert_eq!(agent["image"], "https://cdn.example.com/grace.png");
    assert_eq!(agent["team"], "care");
    assert_eq!(agent["name"], support::AGENT_NAME);
    // Registration wrote visitors only, and made the agent a member of each channel.
    let upserts: Vec<_> = app
        .stream
        .calls()
        .into_iter()
        .filter(|c| c.route == "upsert_users")
        .collect();
    assert_eq!(upserts.len(), 100);
    assert!(
        upserts.iter().all(|c| !c.body.contains(AGENT_ID)),
        "the agent was written"
    );
    let with_agent = app
        .stream
        .channels()
        .iter()
        .filter(|c| c.members.iter().any(|m| m == AGENT_ID))
        .count();
    assert_eq!(with_agent, 100);
}

#[tokio::test]
async fn without_the_agent_in_stream_registration_fails_cleanly() {
    let app = TestApp::start().await;
    let mut settings = support::registration_settings();
    // An agent `setup --stream-access` never created: Stream refuses a channel with a member that does not exist.
    settings.support_agent_id =
        chat_sync::domain::UserId::parse("agent", "agent-nobody-created").expect("valid");
    let response = app
        .registration_with(settings)
        .handle(http_request("POST", ADA, &[JSON]))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(json_body(&response)["code"], "upstream_unavailable");
    assert_eq!(app.item_count().await, 0, "no mapping stored");
    assert!(
        app.stream.user_json("agent-nobody-created").is_none(),
        "registration does not create the agent"
    );
}
