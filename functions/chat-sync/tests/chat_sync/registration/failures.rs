//! Bad input (400 naming the field, nothing called or stored) and upstream failures (502, nothing left behind).

use super::*;

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
