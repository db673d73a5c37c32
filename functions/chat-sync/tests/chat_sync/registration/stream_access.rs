//! What a visitor's token may do in Stream (its own channel only), and the support agent registration relies on.

use super::*;

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
