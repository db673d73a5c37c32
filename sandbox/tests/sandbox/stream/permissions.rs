//! Grants: user tokens are held to their channel type's grants, the server is not; partial user updates.

use super::*;

/// The least-privilege grants a setup would configure for visitors.
fn visitor_grants() -> Value {
    json!({"grants": {
        "user": [],
        "channel_member": ["read-channel", "create-message", "update-message-owner", "delete-message-owner"],
    }})
}

#[tokio::test]
async fn user_tokens_are_held_to_the_channel_types_grants_and_the_server_is_not() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    chat(&double).await;
    let server = Client::server(&double);
    let (status, body) = server
        .query_channel(
            "support-2",
            json!({"created_by_id": "agent", "members": ["agent", "outsider"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let visitor = Client::with_token(
        &double,
        user_token(SECRET, "visitor-1", None).expect("token"),
    );
    let not_allowed = |(status, body): (u16, Value), action: &str| {
        assert_eq!((status, body["code"].as_i64()), (403, Some(17)), "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("User 'visitor-1' with role 'user' is not allowed to perform action {action} in scope 'messaging'")),
            "{body}"
        );
    };

    // Stream's defaults: only members read; a user creates channels and manages the ones it created.
    not_allowed(
        visitor.query_channel("support-2", json!({})).await,
        "ReadChannel",
    );
    let (status, body) = visitor
        .query_channel("visitor-room", json!({"members": ["visitor-1"]}))
        .await;
    assert_eq!(status, 201, "{body}");
    let add = json!({"add_members": ["outsider"]});
    let (status, body) = visitor
        .send(
            "POST",
            "/channels/messaging/visitor-room",
            Some(add.clone()),
        )
        .await;
    assert_eq!(status, 201, "the owner adds members: {body}");
    not_allowed(
        visitor
            .send("POST", "/channels/messaging/support-1", Some(add.clone()))
            .await,
        "UpdateChannelMembers",
    );

    let (status, body) = server
        .send("PUT", "/channeltypes/messaging", Some(visitor_grants()))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["grants"]["user"], json!([]));
    not_allowed(
        visitor
            .query_channel("visitor-room-2", json!({"members": ["visitor-1"]}))
            .await,
        "CreateChannel",
    );
    not_allowed(
        visitor
            .send(
                "POST",
                "/channels/messaging/visitor-room",
                Some(json!({"add_members": ["agent"]})),
            )
            .await,
        "UpdateChannelMembers",
    );
    not_allowed(
        visitor
            .send("DELETE", "/channels/messaging/visitor-room", None)
            .await,
        "DeleteChannel",
    );
    let (status, body) = visitor.query_channel("support-1", json!({})).await;
    assert_eq!(status, 200, "a member still reads its channel: {body}");
    let capabilities: Vec<&str> = body["channel"]["own_capabilities"]
        .as_array()
        .expect("own_capabilities")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        capabilities,
        [
            "send-message",
            "update-own-message",
            "delete-own-message",
            "read-events",
            "connect-events",
            "typing-events"
        ],
        "what the watch returns follows the grants"
    );
    let (status, body) = visitor
        .send(
            "POST",
            "/channels/messaging/support-1/message",
            Some(json!({"message": {"text": "hi"}})),
        )
        .await;
    assert_eq!(status, 201, "and writes in it: {body}");
    let (status, body) = visitor
        .send(
            "POST",
            "/channels",
            Some(json!({"filter_conditions": {"type": "messaging"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let cids: Vec<&str> = body["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(|c| c["channel"]["cid"].as_str())
        .collect();
    assert_eq!(
        cids,
        ["messaging:support-1", "messaging:visitor-room"],
        "only channels it may read"
    );

    // The server token bypasses every grant.
    let (status, body) = server
        .send("POST", "/channels/messaging/support-1", Some(add))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["members"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn channel_types_replace_only_the_named_roles_grants() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    let server = Client::server(&double);
    let before = double.channel_type_grants("messaging").expect("built in");
    let (status, body) = server
        .send(
            "PUT",
            "/channeltypes/messaging",
            Some(json!({"grants": {"user": ["create-channel"]}, "typing_events": false})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let after = double.channel_type_grants("messaging").expect("built in");
    assert_eq!(after["user"], ["create-channel"]);
    assert_eq!(
        after["channel_member"], before["channel_member"],
        "other roles kept"
    );
    let (status, body) = server.send("GET", "/channeltypes/messaging", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["typing_events"], false);
    assert_eq!(body["read_events"], true, "other settings kept");

    for (bad, why) in [
        (
            json!({"grants": {"user": ["fly-to-the-moon"]}}),
            "unknown permission",
        ),
        (json!({"grants": {"wizard": []}}), "unknown role"),
        (json!({"grants": ["create-channel"]}), "not an object"),
        (json!({"typing_events": "yes"}), "wrong type"),
        (json!({"colour": "blue"}), "not a setting"),
    ] {
        let (status, body) = server
            .send("PUT", "/channeltypes/messaging", Some(bad))
            .await;
        assert_eq!(
            (status, body["code"].as_i64()),
            (400, Some(4)),
            "{why}: {body}"
        );
    }
    assert_eq!(
        double.channel_type_grants("messaging").expect("type")["user"],
        ["create-channel"],
        "a refused PUT changes nothing"
    );
    assert_eq!(
        server
            .send("PUT", "/channeltypes/nope", Some(json!({})))
            .await
            .0,
        404
    );
    let (status, body) = server
        .send(
            "POST",
            "/channeltypes",
            Some(json!({"name": "support", "grants": {"user": []}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["grants"]["user"], json!([]));
    assert!(
        body["grants"]["channel_member"]
            .as_array()
            .is_some_and(|g| !g.is_empty()),
        "Stream's defaults otherwise"
    );
    assert_eq!(
        server
            .send("POST", "/channeltypes", Some(json!({"name": "support"})))
            .await
            .0,
        400,
        "exists"
    );
    let visitor = Client::with_token(
        &double,
        user_token(SECRET, "visitor-1", None).expect("token"),
    );
    assert_eq!(
        visitor
            .send("PUT", "/channeltypes/messaging", Some(json!({})))
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn partial_user_updates_keep_what_they_do_not_name_and_queries_respect_grants() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    let server = Client::server(&double);
    let users = json!({"users": {"agent": {"id": "agent", "name": "Support", "role": "admin", "image": "https://x/a.png", "team": "emea"}}});
    assert_eq!(server.send("POST", "/users", Some(users)).await.0, 201);
    let (status, body) = server
        .send("PATCH", "/users", Some(json!({"users": [{"id": "agent", "set": {"name": "Support team"}, "unset": ["team"]}]})))
        .await;
    assert_eq!(status, 200, "{body}");
    let agent = double.user_json("agent").expect("agent");
    assert_eq!(agent["name"], "Support team");
    assert_eq!(agent["role"], "admin", "role kept");
    assert_eq!(agent["image"], "https://x/a.png", "custom field kept");
    assert!(agent.get("team").is_none(), "unset removes");
    for bad in [
        json!({"users": [{"id": "ghost", "set": {"name": "x"}}]}),
        json!({"users": [{"id": "agent", "set": {"role": "wizard"}}]}),
        json!({"users": [{"id": "agent"}]}),
        json!({"users": [{"id": "agent", "unset": ["role"]}]}),
    ] {
        let (status, body) = server.send("PATCH", "/users", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert_eq!(double.user_json("agent").expect("agent")["role"], "admin");

    client_upsert(&server, &["visitor-1", "visitor-2"]).await;
    let visitor = Client::with_token(
        &double,
        user_token(SECRET, "visitor-1", None).expect("token"),
    );
    let (status, body) = visitor
        .send(
            "PATCH",
            "/users",
            Some(json!({"users": [{"id": "visitor-1", "set": {"role": "admin"}}]})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (403, Some(17)),
        "no self-promotion: {body}"
    );
    let query = |filter: Value| {
        format!(
            "/users?payload={}",
            urlencode(&json!({"filter_conditions": filter}).to_string())
        )
    };
    let (status, body) = visitor
        .send(
            "GET",
            &query(json!({"id": {"$in": ["visitor-2", "agent"]}})),
            None,
        )
        .await;
    assert_eq!(status, 200, "search-user by default: {body}");
    assert_eq!(body["users"].as_array().map(Vec::len), Some(2));
    let (status, body) = server
        .send(
            "PATCH",
            "/app",
            Some(json!({"grants": {"user": ["update-user-owner"]}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = visitor
        .send("GET", &query(json!({"id": "visitor-2"})), None)
        .await;
    assert_eq!((status, body["code"].as_i64()), (403, Some(17)), "{body}");
    let (status, body) = server
        .send("GET", &query(json!({"role": "admin"})), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["users"][0]["id"], "agent");
    let (status, _) = server
        .send("GET", &query(json!({"id": {"$gt": 1}})), None)
        .await;
    assert_eq!(
        status, 400,
        "unsupported operators are refused, not ignored"
    );
}
