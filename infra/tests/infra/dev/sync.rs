//! A conversation end to end through the dev server: registration, the agent's side, Stream's webhook, the CRM; then Ctrl-C.

use super::*;

#[tokio::test]
async fn dev_server_syncs_a_conversation_into_the_crm_and_stops_on_ctrl_c() {
    let mut server = DevServer::start_alone().await;

    // The demo page: no inline script, the widget by its embed tag, the agent's side from this server.
    let page = server.get("/").await;
    assert!(header(&page, "content-type").starts_with("text/html"));
    assert!(
        header(&page, "content-security-policy").contains("script-src 'self';"),
        "{}",
        header(&page, "content-security-policy")
    );
    let html = page.text().await.expect("page");
    assert!(html.contains(
        r#"<script src="/chat-sync-widget.js" data-registration-url="/registrations" data-title="#
    ));
    assert!(
        html.contains(r#"href="/agent/""#),
        "the demo page links the agent console"
    );
    for id in ["transcript", "notes"] {
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "the page lacks #{id}"
        );
    }

    // The embed example: only the tag, with this server's absolute URLs, as a customer's site would have it.
    let example = server.get("/embed-example.html").await;
    assert_eq!(example.status(), 200);
    let csp = header(&example, "content-security-policy").to_owned();
    let html = example.text().await.expect("example");
    let tag = format!(
        r#"<script src="{0}/chat-sync-widget.js" data-registration-url="{0}/registrations" async></script>"#,
        server.base_url
    );
    assert!(html.contains(&tag), "{html}");
    assert_eq!(html.matches("<script").count(), 1, "{html}");

    // The bundle, as built by `make widget`.
    let bundle = server.get("/chat-sync-widget.js").await;
    assert_eq!(bundle.status(), 200);
    assert!(header(&bundle, "content-type").starts_with("text/javascript"));
    assert!(bundle.bytes().await.expect("bundle") == widget_bundle());

    let (status, config) = server.get_json("/dev/config").await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["mode"], "sandbox", "{config}");
    let agent = text(&config, "agentId").to_owned();
    let dynamodb = text(&config, "dynamodbEndpoint").to_owned();
    assert!(accepts_connections(&dynamodb));

    // HubSpot's webhooks at the deployed path, signed for the URL called (http://<Host><path>).
    let unsigned = server
        .http
        .post(server.url("/hubspot/webhooks"))
        .body("[]")
        .send()
        .await
        .expect("POST /hubspot/webhooks");
    let (status, body) = json_of(unsigned).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("missing_signature"))
    );
    let timestamp = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis())
    .to_string();
    let url = server.url("/hubspot/webhooks");
    let signature = chat_sync::handlers::hubspot_webhooks::signature::Signed {
        method: "POST",
        uri: &url,
        body: b"[]",
        timestamp: &timestamp,
    }
    .sign(
        &sandbox::fixtures::SANDBOX_HUBSPOT_CLIENT_SECRET
            .to_owned()
            .into(),
    );
    let signed = server
        .http
        .post(&url)
        .header("x-hubspot-signature-v3", signature)
        .header("x-hubspot-request-timestamp", timestamp)
        .body("[]")
        .send()
        .await
        .expect("POST /hubspot/webhooks");
    let (status, body) = json_of(signed).await;
    assert_eq!(status, 200, "{body}\n{}", server.log_text());

    // Registration as the widget does it: same origin, so CORS allows it. It names the sandbox Stream, which the
    // pages' CSP lets the widget reach.
    let origin = server.base_url.clone();
    let response = server
        .http
        .post(server.url("/registrations"))
        .header("origin", &origin)
        .json(&json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"}))
        .send()
        .await
        .expect("register");
    assert_eq!(header(&response, "access-control-allow-origin"), origin);
    let (status, registration) = json_of(response).await;
    assert_eq!(status, 200, "{registration}\n{}", server.log_text());
    let visitor = text(&registration, "customerId").to_owned();
    let channel_type = text(&registration, "channelType").to_owned();
    let channel_id = text(&registration, "channelId").to_owned();
    let stream = text(&registration, "streamBaseUrl").to_owned();
    let api_key = text(&registration, "apiKey").to_owned();
    assert!(!text(&registration, "expiresAt").is_empty());
    assert!(
        csp.contains(&format!("{stream} {}", stream.replacen("http", "ws", 1))),
        "{csp}"
    );

    // The agents' side: the console, signed in through the sandbox identity provider (issue 23). Ada's session is
    // her own Stream user with the agents' role; she joins the conversation to answer.
    let (status, session) = server.agent_session("ada@agents.example").await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["userName"], "Ada Agent", "{session}");
    assert_eq!(session["apiKey"], api_key.as_str(), "{session}");
    assert_eq!(session["streamBaseUrl"], stream.as_str(), "{session}");
    let agent_token = text(&session, "token").to_owned();
    let ada = text(&session, "userId").to_owned();
    assert_ne!(
        ada, agent,
        "Ada is her own Stream user, not the shared support agent"
    );
    join_as(
        &server.http,
        &stream,
        &api_key,
        &agent_token,
        (&channel_type, &channel_id),
        &ada,
    )
    .await;
    // The dev server's old agent token is gone: agents only sign in.
    let (status, error) = server.post_json("/dev/agent-session", &json!({})).await;
    assert_eq!(
        (status, &error["code"]),
        (404, &json!("not_found")),
        "{error}"
    );

    // Each person writes with their own token, as the SDK does: nothing passes through the dev server.
    let visitor_token = text(&registration, "customerToken").to_owned();
    let conversation = [
        (
            &visitor_token,
            "visitor",
            "Hello! I have a question about order #1234.",
        ),
        (
            &agent_token,
            "Ada Agent (agent)",
            "Of course, what would you like to know?",
        ),
        (&visitor_token, "visitor", "When will it ship?"),
    ];
    for (token, _, message) in conversation {
        let sent = send_as(
            &server.http,
            &stream,
            &api_key,
            token,
            (&channel_type, &channel_id),
            message,
        )
        .await;
        assert_eq!(sent["message"]["text"], message, "{sent}");
    }
    assert_ne!(visitor, agent);

    // Stream double → signed webhook → webhook handler → DynamoDB → HubSpot double, read back through the page's API.
    let expected: Vec<String> = conversation
        .iter()
        .map(|(_, role, message)| match *role {
            "visitor" => format!("(visitor): {message}"),
            author => format!("{author}: {message}"),
        })
        .collect();
    let query = format!("/dev/transcript?channelType={channel_type}&channelId={channel_id}");
    let deadline = Instant::now() + SYNC_TIMEOUT;
    // The conversation's timeline note follows the property once the conversation has paused for its wait
    // (`FLUSH_NOTE_WAIT_MS`, 20 s by default, from its last message, sent before this deadline was set), at the next
    // sweep (every 5 s here).
    let notes_deadline = deadline + Duration::from_secs(20 + 15);
    loop {
        let (status, contact) = server.get_json(&query).await;
        assert_eq!(status, 200, "{contact}");
        let transcript = text(&contact, "transcript");
        let notes = contact["notes"].as_array().cloned().unwrap_or_default();
        let synced = has_exactly_in_order(transcript, &expected);
        if synced && !notes.is_empty() {
            assert_eq!(contact["email"], "ada@example.com");
            assert!(!text(&contact, "contactId").is_empty());
            assert!(
                transcript.starts_with(&format!("=== Conversation {channel_id} started ")),
                "{transcript}"
            );
            assert_eq!(notes.len(), 1, "{contact}");
            let body = text(&notes[0], "body");
            assert!(
                body.contains(&format!(
                    "chat-sync conversation {channel_type}:{channel_id} part 1"
                )),
                "{body}"
            );
            break;
        }
        assert!(
            synced || Instant::now() < deadline,
            "the transcript did not show the conversation within {SYNC_TIMEOUT:?}; last:\n{transcript}\n\nlog:\n{}",
            server.log_text()
        );
        assert!(
            Instant::now() < notes_deadline,
            "the conversation's note did not come after its wait; log:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Bad input: JSON errors naming the field, nothing sent anywhere.
    let (status, error) = server
        .post_json(
            "/registrations",
            &json!({"firstName": "Ada", "lastName": "Lovelace", "email": "not-an-email"}),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["code"], "invalid_email", "{error}");
    assert!(!text(&error, "error").is_empty());
    let (status, error) = server
        .get_json("/dev/transcript?channelType=messaging&channelId=never-registered")
        .await;
    assert_eq!(
        (status, &error["code"]),
        (404, &json!("unknown_channel")),
        "{error}"
    );
    // Messages go through Stream only: the dev server's old way to send them is gone.
    let (status, error) = server
        .post_json(
            "/dev/messages",
            &json!({"channelType": channel_type, "channelId": channel_id, "userId": visitor, "text": "hi"}),
        )
        .await;
    assert_eq!(
        (status, &error["code"]),
        (404, &json!("not_found")),
        "{error}"
    );

    let exit = server.interrupt().await;
    assert!(exit.success(), "{exit}\n{}", server.log_text());
    assert!(
        !accepts_connections(&dynamodb),
        "DynamoDB Local ({dynamodb}) still runs after the dev server stopped"
    );
    assert!(!accepts_connections(&server.base_url));
}
