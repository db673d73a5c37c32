//! `POST /registrations` end to end: the handler fn, the real HTTP clients, the HubSpot and Stream doubles over
//! HTTP, and DynamoDB Local.

mod support;

use chat_sync::domain::{ChannelId, ChannelRef, ChannelType};
use chat_sync::ports::Store;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use lambda_http::http::StatusCode;
use support::{event, http_request, json_body, TestApp, AGENT_ID, STREAM_KEY, STREAM_SECRET};

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

    // HubSpot: one contact, e-mail lowercased, names set, created by a single upsert call.
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
    assert_eq!(app.hubspot.call_count("upsert"), 1);
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
async fn existing_contact_keeps_its_id_and_is_not_duplicated() {
    let app = TestApp::start().await;
    register(&app, ADA).await;
    let first_id = app
        .hubspot
        .contact_by_email("ada.lovelace@example.com")
        .expect("created")
        .id;
    let (status, _) = register(
        &app,
        r#"{"firstName":"Augusta Ada","lastName":"King","email":"ADA.LOVELACE@example.com"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let contacts = app.hubspot.contacts();
    assert_eq!(contacts.len(), 1, "no duplicate contact");
    assert_eq!(contacts[0].id, first_id);
    assert_eq!(
        contacts[0].properties.get("firstname").map(String::as_str),
        Some("Augusta Ada")
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
    app.hubspot.faults().fail_next("upsert", 10, 500);
    let (status, body) = register(&app, ADA).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["code"], "upstream_unavailable");
    assert!(app.hubspot.call_count("upsert") > 1, "5xx is retried");
    assert!(app.hubspot.call_count("upsert") <= 4, "retries are bounded");
    assert_eq!(app.item_count().await, 0, "no mapping stored");
}

#[tokio::test]
async fn a_rolling_window_429_is_not_hammered() {
    let app = TestApp::start().await;
    app.hubspot.faults().fail_next("upsert", 1, 429);
    let (status, body) = register(&app, ADA).await;
    // HubSpot's TEN_SECONDLY_ROLLING 429 means "wait for the window": longer than a visitor should wait, so the
    // registration fails at once instead of retrying into the same window...
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["code"], "upstream_rate_limited");
    assert_eq!(app.hubspot.call_count("upsert"), 1, "not retried");
    // ...and the shared budget holds every caller back until the window has passed.
    let (status, _) = register(&app, GRACE).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        app.hubspot.call_count("upsert"),
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
    assert_eq!(app.hubspot.contacts().len(), 1);
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
