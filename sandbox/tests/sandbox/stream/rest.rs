//! The REST API's basics: authentication, users, channels, app settings, calls from browsers.

use super::*;

#[tokio::test]
async fn auth_requires_api_key_and_a_raw_server_jwt() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    let http = reqwest::Client::new();
    let token = server_token(SECRET).expect("token");
    let app = |key: &str| format!("{}/app?api_key={key}", double.base_url());
    let status_and_code = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["StatusCode"], status, "{body}");
        (status, body["code"].as_i64().expect("code"))
    };

    let no_token = http
        .get(app(KEY))
        .header("Stream-Auth-Type", "jwt")
        .send()
        .await
        .expect("sent");
    assert_eq!(status_and_code(no_token).await, (401, 5));
    let bearer = http
        .get(app(KEY))
        .header("Authorization", format!("Bearer {token}"))
        .header("Stream-Auth-Type", "jwt")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        status_and_code(bearer).await,
        (401, 5),
        "a Bearer prefix is rejected"
    );
    let forged = http
        .get(app(KEY))
        .header(
            "Authorization",
            server_token("other-secret").expect("token"),
        )
        .header("Stream-Auth-Type", "jwt")
        .send()
        .await
        .expect("sent");
    assert_eq!(status_and_code(forged).await, (401, 5));
    let wrong_key = http
        .get(app("other-key"))
        .header("Authorization", &token)
        .header("Stream-Auth-Type", "jwt")
        .send()
        .await
        .expect("sent");
    assert_eq!(status_and_code(wrong_key).await, (401, 2));
    let no_key = http
        .get(format!("{}/app", double.base_url()))
        .header("Authorization", &token)
        .header("Stream-Auth-Type", "jwt")
        .send()
        .await
        .expect("sent");
    assert_eq!(status_and_code(no_key).await, (401, 2));
    let user = Client::with_token(&double, user_token(SECRET, "ada", None).expect("token"));
    assert_eq!(
        user.send("GET", "/app", None).await.0,
        403,
        "user tokens cannot read app settings"
    );

    let (status, body) = Client::server(&double).send("GET", "/app", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(double.call_count("get_app"), 7);
}

#[tokio::test]
async fn users_upsert_validates_ids() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    let client = Client::server(&double);
    let (status, body) = client
        .upsert_users(&["visitor-1", "agent@support_team"])
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["users"]["visitor-1"]["name"], "User visitor-1");
    for bad in ["Visitor", "has space", "x:y", ""] {
        let (status, body) = client.upsert_users(&[bad]).await;
        assert_eq!(
            (status, body["code"].as_i64()),
            (400, Some(4)),
            "{bad:?}: {body}"
        );
    }
    let ids: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(
        client.upsert_users(&ids).await.0,
        400,
        "more than 100 users"
    );
    let users = double.users();
    assert_eq!(
        users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["agent@support_team", "visitor-1"]
    );
    assert_eq!(users[1].role, "user");
}

#[tokio::test]
async fn channel_query_requires_creator_and_existing_members_and_is_idempotent() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    let client = Client::server(&double);
    client.upsert_users(&["agent", "visitor-1"]).await;

    let (status, body) = client
        .query_channel("support-1", json!({"members": ["agent", "visitor-1"]}))
        .await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(4)), "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("created_by")),
        "{body}"
    );

    let (status, body) = client
        .query_channel(
            "support-1",
            json!({"created_by_id": "agent", "members": ["agent", "ghost"]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("ghost")),
        "{body}"
    );

    let (status, body) = client
        .query_channel("bad:id", json!({"created_by_id": "agent"}))
        .await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(4)), "{body}");

    let data = json!({"created_by_id": "agent", "members": ["agent", "visitor-1"]});
    let (status, created) = client.query_channel("support-1", data.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["channel"]["cid"], "messaging:support-1");
    assert_eq!(created["channel"]["created_by"]["id"], "agent");
    assert_eq!(created["channel"]["member_count"], 2);
    let (status, again) = client.query_channel("support-1", data).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["channel"]["created_at"],
        created["channel"]["created_at"]
    );
    let channels = double.channels();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].created_by_id, "agent");
    assert_eq!(channels[0].members, ["agent", "visitor-1"]);
}

#[tokio::test]
async fn patch_app_merges_settings() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    let client = Client::server(&double);
    let (status, body) = client
        .send(
            "PATCH",
            "/app",
            Some(json!({"webhook_url": "https://example.com/hook"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let hooks = json!({"event_hooks": [{"hook_type": "sqs", "enabled": true, "sqs_queue_url": "https://sqs.example/q"}]});
    assert_eq!(client.send("PATCH", "/app", Some(hooks)).await.0, 200);
    assert_eq!(
        client
            .send("PATCH", "/app", Some(json!({"webhook_url": "ftp://x"})))
            .await
            .0,
        400
    );

    let (_, app) = client.send("GET", "/app", None).await;
    assert_eq!(
        app["app"]["webhook_url"], "https://example.com/hook",
        "not wiped by the second PATCH"
    );
    assert_eq!(app["app"]["event_hooks"][0]["hook_type"], "sqs");
    assert!(app["app"]["event_hooks"][0]["id"].is_string());
    assert_eq!(app["app"]["name"], "sandbox");
}

/// The browser SDK calls Stream from the page's origin: preflights are answered without credentials, and every
/// answer, refusals included, lets the page read it.
#[tokio::test]
async fn browsers_may_call_it_from_any_origin() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("double");
    let http = reqwest::Client::new();
    let preflight = http
        .request(
            reqwest::Method::OPTIONS,
            format!(
                "{}/channels/messaging/support-1/query?api_key={KEY}",
                double.base_url()
            ),
        )
        .header("origin", "http://127.0.0.1:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,stream-auth-type,x-stream-client",
        )
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status(), StatusCode::OK);
    let headers = preflight.headers();
    assert_eq!(header(headers, "access-control-allow-origin"), "*");
    assert!(header(headers, "access-control-allow-methods").contains("POST"));
    assert_eq!(
        header(headers, "access-control-allow-headers"),
        "authorization,content-type,stream-auth-type,x-stream-client"
    );
    assert!(
        double.calls().is_empty(),
        "a preflight is not an API call: {:?}",
        double.calls()
    );

    for token in [server_token(SECRET).expect("token"), "forged".to_owned()] {
        let response = http
            .post(format!("{}/users?api_key={KEY}", double.base_url()))
            .header("origin", "http://127.0.0.1:3000")
            .header("authorization", token)
            .header("stream-auth-type", "jwt")
            .json(&json!({"users": {}}))
            .send()
            .await
            .expect("request");
        assert_eq!(
            header(response.headers(), "access-control-allow-origin"),
            "*",
            "{}",
            response.status()
        );
    }
}
