//! What the dev server refuses: an oversize webhook (413, every time), dev endpoints to a host that is not this
//! machine, the agent's token and transcripts in live mode.

use super::*;

/// A body over the adapter's limit is read to its end before the 413, so the client, which is still sending when the
/// limit is reached, always gets the JSON error rather than a reset connection.
#[tokio::test]
async fn an_oversize_signed_webhook_gets_the_413_json_error_every_time() {
    let mut server = DevServer::start().await;
    let text = "x".repeat(6 * 1024 * 1024);
    let body = serde_json::to_vec(&json!({"type": "message.new", "message": {"text": text}}))
        .expect("JSON");
    let signature = chat_sync::adapters::stream::sign_body(SANDBOX_STREAM_SECRET, &body);
    for attempt in 1..=5 {
        let response = server
            .http
            .post(server.url("/webhooks"))
            .header("content-type", "application/json")
            .header("x-signature", &signature)
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "attempt {attempt}: no answer ({e:?})\n{}",
                    server.log_text()
                )
            });
        let (status, json) = json_of(response).await;
        assert_eq!(
            (status, json["code"].as_str()),
            (413, Some("payload_too_large")),
            "attempt {attempt}: {json}"
        );
        assert!(json["error"].is_string(), "{json}");
    }
    // The server is still serving after them.
    let (status, _) = server.get_json("/dev/config").await;
    assert!(status < 500, "{status}");
    assert!(server.interrupt().await.success());
}

/// Issue 21, item 2. The dev endpoints (`/dev/*`) answer only when the `Host` header names this machine
/// (`127.0.0.1`, `localhost` or `[::1]`, with or without a port) and no proxy forwarded the request; anything else —
/// another site's name that resolved here (DNS rebinding), a tunnel's name — is refused with 403
/// `host_not_allowed` (or `forwarded_not_allowed`) before any endpoint runs. The handlers' own paths are not
/// guarded: Stream and HubSpot reach them through a tunnel.
#[tokio::test]
async fn dev_endpoints_answer_only_to_a_loopback_host() {
    use reqwest::Method;
    let mut server = DevServer::start().await;
    let port = server
        .base_url
        .rsplit(':')
        .next()
        .expect("a port")
        .to_owned();
    let routes = [
        (
            Method::GET,
            "/dev/transcript?channelType=messaging&channelId=never-registered",
        ),
        (Method::GET, "/dev/config"),
        (Method::GET, "/dev/demo.js"),
    ];
    let foreign = [
        "attacker.example".to_owned(),
        format!("attacker.example:{port}"),
        format!("127.0.0.1.attacker.example:{port}"),
        format!("localhost.attacker.example:{port}"),
        format!("evil-localhost:{port}"),
        format!("127.0.0.2:{port}"),
        format!("0.0.0.0:{port}"),
        format!("[::2]:{port}"),
        "localhost:port".to_owned(),
        String::new(),
    ];
    for host in &foreign {
        for (method, path) in &routes {
            let (status, body) = server.request_as(method.clone(), path, host, &[]).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (403, Some("host_not_allowed")),
                "{method} {path} with Host {host:?}: {body}"
            );
            assert!(
                body["error"].as_str().is_some_and(|e| e.contains("Host")),
                "{body}"
            );
        }
    }
    // Through a proxy (a tunnel forwarding to localhost, Host rewritten or not): refused too.
    for forwarded in [
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-host", "tunnel.example"),
        ("forwarded", "for=203.0.113.7;host=tunnel.example"),
    ] {
        let (status, body) = server
            .request_as(
                Method::GET,
                "/dev/transcript?channelType=messaging&channelId=never-registered",
                &format!("localhost:{port}"),
                &[forwarded],
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forwarded_not_allowed")),
            "{forwarded:?}: {body}"
        );
    }
    // This machine, however it is spelled: served.
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_owned(),
        format!("localhost:{port}"),
        "localhost".to_owned(),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
        "[::1]".to_owned(),
    ] {
        let (status, config) = server
            .request_as(Method::GET, "/dev/config", &host, &[])
            .await;
        assert_eq!(status, 200, "Host {host}: {config}");
        assert_eq!(config["mode"], "sandbox");
    }
    // The handlers answer whatever the Host: a tunnel's requests reach them (unsigned, so refused by the handler).
    let (status, body) = server
        .request_as(Method::POST, "/webhooks", "tunnel.example", &[])
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("missing_signature")),
        "{body}"
    );
    assert!(server.interrupt().await.success());
}

/// Issue 21, item 2. In live mode the transcript is real CRM data: `/dev/transcript` is off (403 `sandbox_only`),
/// even for this machine; no route hands out an agent's token (issue 23 removed `/dev/agent-session`: agents sign in
/// at the identity provider, and without `AGENT_OIDC_ISSUER` there are no agent sessions). "Live" here is the dev server given credentials and base URLs, pointed at the doubles exactly as it
/// would be at HubSpot and Stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_mode_hands_out_no_agent_token_and_no_transcript() {
    const HUBSPOT_TOKEN: &str = "live-hubspot-token";
    const STREAM_KEY: &str = "live-api-key";
    const STREAM_SECRET: &str = "live-api-secret";
    let hubspot = sandbox::HubSpotDouble::start(HUBSPOT_TOKEN)
        .await
        .expect("the HubSpot double");
    hubspot.define_property(chat_sync::adapters::hubspot::TRANSCRIPT_PROPERTY);
    let stream = sandbox::StreamDouble::start(STREAM_KEY, STREAM_SECRET)
        .await
        .expect("the Stream double");
    let (hubspot_url, stream_url) = (hubspot.base_url(), stream.base_url());
    let mut server = DevServer::start_with(&[
        ("HUBSPOT_ACCESS_TOKEN", HUBSPOT_TOKEN),
        ("HUBSPOT_BASE_URL", &hubspot_url),
        ("STREAM_API_KEY", STREAM_KEY),
        ("STREAM_API_SECRET", STREAM_SECRET),
        ("STREAM_BASE_URL", &stream_url),
    ])
    .await;
    let (status, config) = server.get_json("/dev/config").await;
    assert_eq!(
        (status, config["mode"].as_str()),
        (200, Some("live")),
        "{config}"
    );

    // A real conversation exists, registered as the widget registers.
    let response = server
        .http
        .post(server.url("/registrations"))
        .header("origin", &server.base_url)
        .json(&json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"}))
        .send()
        .await
        .expect("register");
    let (status, registration) = json_of(response).await;
    assert_eq!(status, 200, "{registration}\n{}", server.log_text());

    // No agent token handed out by the server in any mode; without AGENT_OIDC_ISSUER no agent sessions either.
    let (status, body) = server.post_json("/dev/agent-session", &json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, body) = server.post_json("/agent-sessions", &json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let query = format!(
        "/dev/transcript?channelType={}&channelId={}",
        text(&registration, "channelType"),
        text(&registration, "channelId")
    );
    let (status, body) = server.get_json(&query).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("sandbox_only")),
        "GET /dev/transcript in live mode: {body}"
    );
    // Nothing was asked of the CRM for it.
    assert_eq!(
        hubspot.call_count("get_contact") + hubspot.call_count("contact_notes"),
        0
    );
    assert!(server.interrupt().await.success());
}
