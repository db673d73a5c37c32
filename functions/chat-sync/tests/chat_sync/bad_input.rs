//! The bad-input table (documented in docs/operations.md): every endpoint × malformed request → the documented 4xx,
//! and nothing written anywhere (no DynamoDB item, no HubSpot or Stream call).

use crate::support::{http_request, json_body, TestApp, STREAM_SECRET};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request};

struct Case {
    name: &'static str,
    request: Request,
    status: StatusCode,
    code: &'static str,
}

fn registration_cases() -> Vec<Case> {
    let json = [("content-type", "application/json")];
    let long = "n".repeat(101);
    let mut cases = vec![
        Case {
            name: "GET",
            request: http_request("GET", "", &[]),
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
        },
        Case {
            name: "PUT",
            request: http_request("PUT", "{}", &json),
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
        },
        Case {
            name: "oversize body",
            request: http_request(
                "POST",
                &format!(r#"{{"firstName":"{}"}}"#, "a".repeat(16 * 1024)),
                &json,
            ),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
        },
        Case {
            name: "invalid JSON",
            request: http_request("POST", "{\"firstName\":", &json),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_json",
        },
        Case {
            name: "empty body",
            request: http_request("POST", "", &json),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_json",
        },
        Case {
            name: "array body",
            request: http_request("POST", "[]", &json),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_body",
        },
        Case {
            name: "wrong type",
            request: http_request(
                "POST",
                r#"{"firstName":1,"lastName":"L","email":"a@example.com"}"#,
                &json,
            ),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_first_name",
        },
        Case {
            name: "missing field",
            request: http_request(
                "POST",
                r#"{"firstName":"A","email":"a@example.com"}"#,
                &json,
            ),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_last_name",
        },
        Case {
            name: "very long name",
            request: http_request(
                "POST",
                &format!(r#"{{"firstName":"A","lastName":"{long}","email":"a@example.com"}}"#),
                &json,
            ),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_last_name",
        },
        Case {
            name: "very long email",
            request: http_request(
                "POST",
                &format!(
                    r#"{{"firstName":"A","lastName":"B","email":"{}@example.com"}}"#,
                    "a".repeat(300)
                ),
                &json,
            ),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_email",
        },
        Case {
            name: "control characters",
            request: http_request(
                "POST",
                r#"{"firstName":"A\u001b[31m","lastName":"B","email":"a@example.com"}"#,
                &json,
            ),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_first_name",
        },
        Case {
            name: "not JSON content type",
            request: http_request(
                "POST",
                "firstName=A",
                &[("content-type", "application/x-www-form-urlencoded")],
            ),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
        },
        Case {
            name: "preflight from unknown origin",
            request: http_request("OPTIONS", "", &[("origin", "https://evil.example")]),
            status: StatusCode::FORBIDDEN,
            code: "origin_not_allowed",
        },
        Case {
            name: "preflight without Origin header",
            request: http_request("OPTIONS", "", &[]),
            status: StatusCode::FORBIDDEN,
            code: "origin_not_allowed",
        },
    ];
    let mut binary = http_request("POST", "", &json);
    *binary.body_mut() = Body::Binary(vec![0xff, 0xfe, 0x00]);
    cases.push(Case {
        name: "binary body",
        request: binary,
        status: StatusCode::BAD_REQUEST,
        code: "invalid_json",
    });
    cases
}

fn webhook_request(body: &[u8], signature: Option<String>, headers: &[(&str, &str)]) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method("POST")
        .uri("https://webhook.example/");
    if let Some(signature) = signature {
        builder = builder.header("x-signature", signature);
    }
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(Body::Binary(body.to_vec())).expect("request")
}

fn signed(body: &[u8]) -> Request {
    webhook_request(
        body,
        Some(sandbox::stream::sign_webhook(STREAM_SECRET, body)),
        &[],
    )
}

fn webhook_cases() -> Vec<Case> {
    let valid = br#"{"type":"message.new","cid":"messaging:c","message":{"id":"m","text":"hi","created_at":"2026-11-24T10:00:00Z","user":{"id":"u"}}}"#;
    let mut get = signed(valid);
    *get.method_mut() = lambda_http::http::Method::GET;
    vec![
        Case { name: "GET", request: get, status: StatusCode::METHOD_NOT_ALLOWED, code: "method_not_allowed" },
        Case { name: "missing signature", request: webhook_request(valid, None, &[]), status: StatusCode::UNAUTHORIZED, code: "missing_signature" },
        Case {
            name: "wrong signature",
            request: webhook_request(valid, Some("00".repeat(32)), &[]),
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_signature",
        },
        Case {
            name: "signature not hex",
            request: webhook_request(valid, Some("not-hex".into()), &[]),
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_signature",
        },
        Case {
            name: "oversize body",
            request: signed(&vec![b' '; 1024 * 1024 + 1]),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
        },
        Case { name: "invalid JSON", request: signed(b"{\"type\":"), status: StatusCode::BAD_REQUEST, code: "invalid_json" },
        Case {
            name: "wrong types",
            request: signed(br#"{"type":"message.new","cid":"messaging:c","message":{"id":5,"created_at":"2026-11-24T10:00:00Z","user":{"id":"u"}}}"#),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_event",
        },
        Case {
            name: "invalid cid",
            request: signed(br#"{"type":"message.new","cid":"no colon","message":{"id":"m","created_at":"2026-11-24T10:00:00Z","user":{"id":"u"}}}"#),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_event",
        },
        Case {
            name: "missing user",
            request: signed(br#"{"type":"message.new","cid":"messaging:c","message":{"id":"m","created_at":"2026-11-24T10:00:00Z"}}"#),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_event",
        },
        // Refused on the signature alone: nothing is inflated for a request that carries none, or one of no shape.
        Case {
            name: "unsigned invalid gzip",
            request: webhook_request(b"not gzip", None, &[("content-encoding", "gzip")]),
            status: StatusCode::UNAUTHORIZED,
            code: "missing_signature",
        },
        Case {
            name: "invalid gzip with a signature of no shape",
            request: webhook_request(b"\x1f\x8bnot gzip", Some("abc".into()), &[]),
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_signature",
        },
        Case {
            name: "invalid gzip",
            request: webhook_request(b"not gzip", Some(sandbox::stream::sign_webhook(STREAM_SECRET, b"not gzip")), &[("content-encoding", "gzip")]),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_encoding",
        },
    ]
}

#[tokio::test]
async fn every_bad_request_gets_its_4xx_and_writes_nothing() {
    let app = TestApp::start().await;
    for case in registration_cases() {
        let response = app.registration.handle(case.request).await;
        let body = json_body(&response);
        assert_eq!(
            response.status(),
            case.status,
            "registration, {}: {body}",
            case.name
        );
        assert_eq!(body["code"], case.code, "registration, {}", case.name);
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "registration, {}: {body}",
            case.name
        );
    }
    for case in webhook_cases() {
        let response = app.webhook.handle(case.request).await;
        let body = json_body(&response);
        assert_eq!(
            response.status(),
            case.status,
            "webhook, {}: {body}",
            case.name
        );
        assert_eq!(body["code"], case.code, "webhook, {}", case.name);
    }
    assert!(app.hubspot.calls().is_empty(), "no HubSpot call");
    assert!(app.stream.calls().is_empty(), "no Stream call");
    assert_eq!(app.item_count().await, 0, "nothing stored");
}

#[tokio::test]
async fn unicode_and_emoji_names_are_accepted_as_given() {
    let app = TestApp::start().await;
    let body = r#"{"firstName":"  Zoë 😀 ","lastName":"Ōtomo-李","email":"ZOE@Example.COM"}"#;
    let response = app
        .registration
        .handle(http_request(
            "POST",
            body,
            &[("content-type", "application/json")],
        ))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        json_body(&response)
    );
    let contact = app
        .hubspot
        .contact_by_email("zoe@example.com")
        .expect("created");
    assert_eq!(
        contact.properties.get("firstname").map(String::as_str),
        Some("Zoë 😀")
    );
    assert_eq!(
        contact.properties.get("lastname").map(String::as_str),
        Some("Ōtomo-李")
    );
    assert!(app
        .stream
        .users()
        .iter()
        .any(|u| u.name == "Zoë 😀 Ōtomo-李"));
}
