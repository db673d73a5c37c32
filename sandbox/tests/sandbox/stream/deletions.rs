//! Deleting users erases their messages and conversations, as a task, and tells the webhook.

use super::*;

#[tokio::test]
async fn deleting_users_erases_their_messages_and_conversations_and_tells_the_webhook() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    chat(&double).await;
    let server = Client::server(&double);
    client_upsert(&server, &["visitor-2"]).await;
    let (status, _) = server
        .query_channel(
            "support-2",
            json!({"created_by_id": "agent", "members": ["agent", "visitor-2"]}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = server
        .query_channel(
            "group",
            json!({"created_by_id": "agent", "members": ["agent", "visitor-1", "visitor-2"]}),
        )
        .await;
    assert_eq!(status, 201);
    for (channel, user) in [
        ("support-1", "visitor-1"),
        ("group", "visitor-1"),
        ("support-1", "agent"),
        ("support-2", "visitor-2"),
    ] {
        double
            .send_message("messaging", channel, user, "hello")
            .await
            .expect("sent");
    }
    let (receiver, url) = Receiver::start(&[]).await;
    double.set_webhook_url(Some(url));
    let old_token = user_token(SECRET, "visitor-1", None).expect("token");

    // Deleting is a task: nothing happens until it has run, and `GET /tasks/{id}` says when it has.
    let (status, body) = server
        .send(
            "POST",
            "/users/delete",
            Some(json!({
                "user_ids": ["visitor-1"],
                "user": "hard",
                "messages": "hard",
                "conversations": "hard",
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let task_id = body["task_id"].as_str().expect("task id").to_owned();
    let (_, task) = server.send("GET", &format!("/tasks/{task_id}"), None).await;
    assert_eq!(
        (task["task_id"].as_str(), &task["status"]),
        (Some(task_id.as_str()), &json!("pending"))
    );
    assert!(double.user_deletions().is_empty(), "not applied yet");
    let task = finished(&server, &task_id).await;
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["result"]["deleted_user_ids"], json!(["visitor-1"]));
    assert_eq!(
        double.user_deletions(),
        [sandbox::stream::UserDeletion {
            user_id: "visitor-1".to_owned(),
            user: sandbox::stream::Erasure::Hard,
            messages: Some(sandbox::stream::Erasure::Hard),
            conversations: vec!["messaging:support-1".to_owned()],
        }]
    );
    assert!(double.users().iter().all(|u| u.id != "visitor-1"));
    assert!(
        double.messages("messaging", "support-1").is_empty(),
        "the conversation went with its messages"
    );
    assert!(
        double.messages("messaging", "group").is_empty(),
        "the user's messages elsewhere went too"
    );
    assert_eq!(
        double.messages("messaging", "support-2").len(),
        1,
        "others' untouched"
    );
    assert_eq!(
        double
            .channels()
            .iter()
            .map(|c| c.cid())
            .collect::<Vec<_>>(),
        ["messaging:group", "messaging:support-2"]
    );
    let (status, body) = Client::with_token(&double, old_token)
        .send("POST", "/channels/messaging/group/query", Some(json!({})))
        .await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (401, Some(40)),
        "its tokens stop: {body}"
    );

    double.wait_for_deliveries(2, Duration::from_secs(5)).await;
    let events = receiver.events();
    let deleted_channel = events
        .iter()
        .find(|e| e["type"] == "channel.deleted")
        .expect("channel.deleted sent");
    assert_eq!(deleted_channel["cid"], "messaging:support-1");
    let deleted_user = events
        .iter()
        .find(|e| e["type"] == "user.deleted")
        .expect("user.deleted sent");
    assert_eq!(deleted_user["user"]["id"], "visitor-1");
    assert_eq!(deleted_user["hard_delete"], true);
    assert_eq!(deleted_user["mark_messages_deleted"], true);

    // Soft: the user stays, marked deleted, its messages too.
    let (status, body) = server
        .send(
            "POST",
            "/users/delete",
            Some(json!({"user_ids": ["visitor-2"], "user": "soft", "messages": "soft"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let task_id = body["task_id"].as_str().expect("task id").to_owned();
    assert_eq!(double.user_deletions().len(), 1, "not applied yet");
    let task = finished(&server, &task_id).await;
    assert_eq!(task["status"], "completed", "{task}");
    let last = double.user_deletions().pop().expect("applied");
    assert_eq!(
        (last.user, last.messages),
        (
            sandbox::stream::Erasure::Soft,
            Some(sandbox::stream::Erasure::Soft)
        )
    );
    assert!(
        double.users().iter().any(|u| u.id == "visitor-2"),
        "soft: the user stays, marked deleted"
    );
    assert_eq!(
        double.messages("messaging", "support-2")[0]["type"],
        "deleted"
    );
    for bad in [
        json!({"user_ids": ["x"]}),
        json!({"user_ids": [], "user": "soft"}),
        json!({"user_ids": ["x"], "user": "gone"}),
        // Hard needs hard messages and conversations, as Stream's document says.
        json!({"user_ids": ["x"], "user": "hard", "messages": "soft", "conversations": "hard"}),
        json!({"user_ids": ["x"], "user": "hard", "messages": "hard"}),
    ] {
        assert_eq!(
            server
                .send("POST", "/users/delete", Some(bad.clone()))
                .await
                .0,
            400,
            "{bad}"
        );
    }

    let (status, body) = server
        .send("DELETE", "/channels/messaging/group?hard_delete=true", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        double.channel_deletions().last(),
        Some(&sandbox::stream::ChannelDeletion {
            cid: "messaging:group".to_owned(),
            hard: true
        })
    );

    // A task that fails says so, and erases nothing; the next one runs.
    double.fail_next_tasks(1);
    let again = json!({"user_ids": ["visitor-2"], "user": "hard", "messages": "hard", "conversations": "hard"});
    let (_, body) = server
        .send("POST", "/users/delete", Some(again.clone()))
        .await;
    let task = finished(&server, body["task_id"].as_str().expect("task id")).await;
    assert_eq!(task["status"], "failed", "{task}");
    assert!(task["error"]["description"].is_string(), "{task}");
    assert!(double.users().iter().any(|u| u.id == "visitor-2"));
    let (_, body) = server.send("POST", "/users/delete", Some(again)).await;
    let task = finished(&server, body["task_id"].as_str().expect("task id")).await;
    assert_eq!(task["status"], "completed", "{task}");
    assert!(double.users().iter().all(|u| u.id != "visitor-2"));

    let (status, body) = server
        .send("DELETE", "/users/visitor-1?hard_delete=true", None)
        .await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (404, Some(16)),
        "DELETE /users/{{id}} is not in Stream's published API: {body}"
    );
    let (status, _) = server.send("GET", "/tasks/no-such-task", None).await;
    assert_eq!(status, 404);
}

/// Polls `GET /tasks/{id}` until the task is no longer pending (at most 2 s).
async fn finished(server: &Client, task_id: &str) -> Value {
    let mut task = Value::Null;
    for _ in 0..100 {
        task = server
            .send("GET", &format!("/tasks/{task_id}"), None)
            .await
            .1;
        if task["status"] != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task
}

/// `user: "pruning"` with no `messages` mode, as an agent's erasure asks: the user is marked deleted and its name
/// and custom fields go; its messages stay in the conversations.
#[tokio::test]
async fn pruning_a_user_nullifies_its_information_and_keeps_its_messages() {
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    chat(&double).await;
    let server = Client::server(&double);
    let (status, _) = server
        .send(
            "PATCH",
            "/users",
            Some(json!({"users": [{"id": "agent", "set": {"image": "https://example.com/ada.png"}}]})),
        )
        .await;
    assert_eq!(status, 200);
    double
        .send_message("messaging", "support-1", "agent", "how can I help?")
        .await
        .expect("sent");
    let (receiver, url) = Receiver::start(&[]).await;
    double.set_webhook_url(Some(url));

    let (status, body) = server
        .send(
            "POST",
            "/users/delete",
            Some(json!({"user_ids": ["agent"], "user": "pruning"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let task = finished(&server, body["task_id"].as_str().expect("task id")).await;
    assert_eq!(task["status"], "completed", "{task}");
    let deletion = double.user_deletions().pop().expect("applied");
    assert_eq!(
        (
            deletion.user,
            deletion.messages,
            deletion.conversations.len()
        ),
        (sandbox::stream::Erasure::Pruning, None, 0)
    );
    let agent = double
        .user_json("agent")
        .expect("the user stays, marked deleted");
    assert_eq!(agent["name"], "", "{agent}");
    assert!(agent.get("image").is_none(), "{agent}");
    assert!(agent["deleted_at"].is_string(), "{agent}");
    let messages = double.messages("messaging", "support-1");
    let answer = messages
        .iter()
        .find(|m| m["text"] == "how can I help?")
        .expect("the message stays");
    assert_eq!(answer["type"], "regular", "{answer}");
    double.wait_for_deliveries(1, Duration::from_secs(5)).await;
    let events = receiver.events();
    let event = events
        .iter()
        .find(|e| e["type"] == "user.deleted")
        .expect("user.deleted sent");
    assert_eq!(
        (
            &event["type"],
            &event["hard_delete"],
            &event["mark_messages_deleted"],
            &event["user"]["name"]
        ),
        (
            &json!("user.deleted"),
            &json!(false),
            &json!(false),
            &json!("")
        ),
        "{event}"
    );
}
