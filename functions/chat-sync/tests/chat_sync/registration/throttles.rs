//! The registration throttles: per address and per e-mail, 429 with `Retry-After`, nothing changed.

use super::*;

/// A registration request from `ip`, as API Gateway delivers it (`requestContext.http.sourceIp`).
fn from_ip(ip: &str, body: &str) -> lambda_http::Request {
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.http.source_ip = Some(ip.to_owned());
    http_request("POST", body, &[JSON]).with_request_context(RequestContext::ApiGatewayV2(context))
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
