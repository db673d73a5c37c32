//! `setup` against the HubSpot and Stream doubles and DynamoDB Local: idempotent, keeps what it does not own,
//! changes nothing in a dry run, and names the variable to fix when credentials are missing or wrong.

use chat_sync::adapters::dynamo::schema;
use chat_sync::adapters::stream::StreamClient;
use chat_sync::adapters::stream_access::{AgentChange, GrantsChange};
use chat_sync::config::Env;
use infra::setup::{self, HookMode, Options, Outcome, SetupError};
use sandbox::{DynamoDbLocal, HubSpotDouble, StreamDouble};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TOKEN: &str = "pat-na1-setup-test-token";
const KEY: &str = "setup-test-key";
const SECRET: &str = "setup-test-secret-that-is-long-enough";
const WEBHOOK: &str = "https://abc123.lambda-url.eu-west-1.on.aws/";

fn env(hubspot: &HubSpotDouble, stream: &StreamDouble, token: &str, secret: &str) -> Env {
    Env::from_pairs([
        ("HUBSPOT_BASE_URL", hubspot.base_url()),
        ("HUBSPOT_ACCESS_TOKEN", token.to_owned()),
        ("STREAM_BASE_URL", stream.base_url()),
        ("STREAM_API_KEY", KEY.to_owned()),
        ("STREAM_API_SECRET", secret.to_owned()),
    ])
}

async fn doubles() -> (HubSpotDouble, StreamDouble) {
    let hubspot = HubSpotDouble::start(TOKEN)
        .await
        .expect("HubSpot double starts");
    let stream = StreamDouble::start(KEY, SECRET)
        .await
        .expect("Stream double starts");
    (hubspot, stream)
}

async fn run(options: &Options, env: &Env) -> Result<Vec<Outcome>, SetupError> {
    let mut outcomes = Vec::new();
    setup::run(options, env, &mut |outcome| outcomes.push(outcome.clone()))
        .await
        .map(|()| outcomes)
}

/// A table name no other test (or earlier run against a shared DynamoDB Local) uses.
fn unique_table(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn stream_client(stream: &StreamDouble) -> StreamClient {
    let http = chat_sync::adapters::http::client().expect("an HTTP client");
    StreamClient::new(http, &stream.base_url(), KEY, SECRET.into()).expect("server token")
}

/// `setup --stream-webhook WEBHOOK`.
fn stream_webhook_options() -> Options {
    Options {
        stream_webhook: Some(WEBHOOK.into()),
        ..Options::default()
    }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[tokio::test]
async fn hubspot_property_is_created_once() {
    let (hubspot, stream) = doubles().await;
    let env = env(&hubspot, &stream, TOKEN, SECRET);
    let options = Options {
        hubspot: true,
        ..Options::default()
    };
    assert_eq!(
        run(&options, &env).await.expect("first run"),
        [Outcome::PropertyCreated, Outcome::ScopesPresent]
    );
    assert_eq!(
        run(&options, &env).await.expect("second run"),
        [Outcome::PropertyAlreadyThere, Outcome::ScopesPresent],
        "the second create gets 409, which is fine"
    );
    assert_eq!(hubspot.call_count("create_property"), 2);
    assert_eq!(hubspot.call_count("get_property"), 0);
}

#[tokio::test]
async fn stream_webhook_is_added_and_other_hooks_and_settings_are_kept() {
    let (hubspot, stream) = doubles().await;
    let client = stream_client(&stream);
    let sqs = json!({"hook_type": "sqs", "enabled": true, "sqs_queue_url": "https://sqs.example/q",
                     "event_types": ["user.updated"]});
    let elsewhere = json!({"hook_type": "webhook", "enabled": true, "webhook_url": "https://moderation.example/hook",
                           "event_types": []});
    client
        .update_app_settings(&json!({ "event_hooks": [sqs, elsewhere] }), deadline())
        .await
        .expect("seed the app's hooks");
    let before = client.app_settings(deadline()).await.expect("GET /app")["app"].clone();
    stream.clear_calls();

    let options = stream_webhook_options();
    let env = env(&hubspot, &stream, TOKEN, SECRET);
    let outcomes = run(&options, &env).await.expect("setup");
    assert_eq!(
        outcomes.last(),
        Some(&Outcome::WebhookSet {
            url: WEBHOOK.into(),
            mode: HookMode::EventHooks
        })
    );
    assert!(
        matches!(&outcomes[0], Outcome::Note(note) if note.contains("1 other webhook")),
        "{outcomes:?}"
    );
    assert_eq!(stream.call_count("get_app"), 1);
    assert_eq!(stream.call_count("update_app"), 1);

    let after = client.app_settings(deadline()).await.expect("GET /app")["app"].clone();
    let hooks = after["event_hooks"].as_array().expect("event_hooks");
    let old_hooks = before["event_hooks"].as_array().expect("event_hooks");
    assert_eq!(hooks.len(), 3);
    for (old, kept) in old_hooks.iter().zip(hooks) {
        assert_eq!(old["id"], kept["id"], "existing hooks keep their ids");
        assert_eq!(old["hook_type"], kept["hook_type"]);
        assert_eq!(old["event_types"], kept["event_types"]);
    }
    let ours = &hooks[2];
    assert_eq!(ours["webhook_url"], WEBHOOK);
    assert_eq!(ours["enabled"], true);
    assert_eq!(
        ours["event_types"],
        json!([
            "message.new",
            "message.updated",
            "message.deleted",
            "message.undeleted",
            "channel.truncated",
            "channel.deleted",
            "user.deleted",
            "user.messages.deleted"
        ])
    );
    // Nothing else in the app changed.
    let without_hooks = |app: &Value| {
        let mut app = app.as_object().expect("app object").clone();
        app.remove("event_hooks");
        app
    };
    assert_eq!(without_hooks(&after), without_hooks(&before));

    // Again: already configured, no PATCH.
    let outcomes = run(&options, &env).await.expect("second run");
    assert_eq!(
        outcomes.last(),
        Some(&Outcome::WebhookAlreadyConfigured {
            url: WEBHOOK.into()
        })
    );
    assert_eq!(stream.call_count("update_app"), 1);
}

/// An app configured before event hooks existed delivers to its `webhook_url`, and Stream keeps doing so when the
/// app also has `event_hooks`: a hook for the same URL would deliver every event twice.
#[tokio::test]
async fn a_legacy_webhook_url_already_pointing_here_is_done() {
    let (hubspot, stream) = doubles().await;
    let client = stream_client(&stream);
    client
        .update_app_settings(&json!({ "webhook_url": WEBHOOK }), deadline())
        .await
        .expect("seed the legacy webhook_url");
    let before = client.app_settings(deadline()).await.expect("GET /app")["app"].clone();
    assert_eq!(
        before["event_hooks"],
        json!([]),
        "the app has event_hooks (an empty list), as newer apps do"
    );
    stream.clear_calls();

    let options = stream_webhook_options();
    let env = env(&hubspot, &stream, TOKEN, SECRET);
    let outcomes = run(&options, &env).await.expect("setup");
    assert_eq!(
        outcomes,
        [Outcome::WebhookAlreadyConfigured {
            url: WEBHOOK.into()
        }]
    );
    assert_eq!(stream.call_count("get_app"), 1);
    assert_eq!(stream.call_count("update_app"), 0, "nothing to change");
    let after = client.app_settings(deadline()).await.expect("GET /app")["app"].clone();
    assert_eq!(after, before, "no event hook was added");

    // An app where both already point here gets a note: each event arrives twice until one is removed.
    let ours =
        json!({"hook_type": "webhook", "enabled": true, "webhook_url": WEBHOOK, "event_types": []});
    client
        .update_app_settings(&json!({ "event_hooks": [ours] }), deadline())
        .await
        .expect("seed our hook beside the legacy URL");
    stream.clear_calls();
    let outcomes = run(&options, &env).await.expect("setup");
    assert!(
        matches!(&outcomes[..], [Outcome::Note(note), Outcome::WebhookAlreadyConfigured { .. }]
            if note.contains("twice")),
        "{outcomes:?}"
    );
    assert_eq!(stream.call_count("update_app"), 0);
}

#[tokio::test]
async fn dry_run_makes_no_changing_call() {
    let (hubspot, stream) = doubles().await;
    let endpoint = DynamoDbLocal::shared().endpoint();
    let table = unique_table("setup-dry-run");
    let options = Options {
        hubspot: true,
        stream_webhook: Some(WEBHOOK.into()),
        stream_access: true,
        confine_other_types: true,
        enable_auth_checks: true,
        local_table: Some(table.clone()),
        dynamodb_endpoint: endpoint.clone(),
        dry_run: true,
    };
    let env = env(&hubspot, &stream, TOKEN, SECRET);
    let app_before = stream.app_settings();
    let outcomes = run(&options, &env).await.expect("dry run");
    assert_eq!(
        outcomes,
        [
            Outcome::PropertyWouldBeCreated,
            Outcome::ScopesPresent,
            Outcome::WebhookWouldBeSet {
                url: WEBHOOK.into(),
                mode: HookMode::EventHooks
            },
            Outcome::Agent {
                id: "support-agent".into(),
                change: AgentChange::Created,
                dry_run: true,
            },
            Outcome::AgentRole {
                created: true,
                dry_run: true,
            },
            Outcome::VisitorGrants {
                channel_type: "messaging".into(),
                change: GrantsChange {
                    channel_type: true,
                    app: true
                },
                dry_run: true,
            },
            Outcome::OtherChannelTypes {
                types: other_types(),
                confined: true,
                dry_run: true,
            },
            Outcome::TableWouldBeCreated {
                table: table.clone()
            },
        ]
    );
    // Reads only; the scope check's batch writes carry no inputs, so HubSpot refuses them and changes nothing.
    for call in hubspot.calls().iter().chain(stream.calls().iter()) {
        let probe = call.method == "POST" && call.body == r#"{"inputs":[]}"#;
        assert!(
            call.method == "GET" || probe,
            "dry run sent {} {}",
            call.method,
            call.path
        );
    }
    assert_eq!(hubspot.call_count("get_property"), 1);
    assert_eq!(stream.app_settings(), app_before);
    assert!(
        stream.user_json("support-agent").is_none(),
        "no agent created"
    );
    let dynamodb = chat_sync::app::local_dynamodb(&endpoint).await;
    let described = dynamodb.describe_table().table_name(&table).send().await;
    assert!(described.is_err(), "the dry run created table {table}");

    // Once the property exists, the dry run says so.
    hubspot.define_property(chat_sync::adapters::hubspot::TRANSCRIPT_PROPERTY);
    let options = Options {
        hubspot: true,
        dry_run: true,
        ..Options::default()
    };
    assert_eq!(
        run(&options, &env).await.expect("dry run"),
        [Outcome::PropertyAlreadyThere, Outcome::ScopesPresent]
    );
}

#[tokio::test]
async fn the_apps_required_scopes_are_all_setup_needs() {
    let (hubspot, stream) = doubles().await;
    // An app granted exactly what the HubSpot project requires (hubspot/src/app/app-hsmeta.json).
    hubspot.set_scopes(Some(
        chat_sync::adapters::hubspot::REQUIRED_SCOPES
            .iter()
            .map(|scope| (*scope).to_owned())
            .collect(),
    ));
    let env = env(&hubspot, &stream, TOKEN, SECRET);
    let options = Options {
        hubspot: true,
        ..Options::default()
    };
    assert_eq!(
        run(&options, &env)
            .await
            .expect("setup --hubspot with the required scopes"),
        [Outcome::PropertyCreated, Outcome::ScopesPresent]
    );
}

#[tokio::test]
async fn missing_scopes_are_named() {
    let (hubspot, stream) = doubles().await;
    hubspot.define_property(chat_sync::adapters::hubspot::TRANSCRIPT_PROPERTY);
    // A private app that can read contacts but not write them (nor, so, notes).
    hubspot.set_scopes(Some(vec![
        "crm.objects.contacts.read".into(),
        "crm.schemas.contacts.read".into(),
        "crm.schemas.contacts.write".into(),
    ]));
    let env = env(&hubspot, &stream, TOKEN, SECRET);
    let options = Options {
        hubspot: true,
        ..Options::default()
    };
    let error = run(&options, &env).await.expect_err("scopes are missing");
    assert!(
        matches!(&error, SetupError::MissingScopes(missing) if missing == &["crm.objects.contacts.write".to_owned()]),
        "{error}"
    );
    assert!(
        error.to_string().contains("crm.objects.contacts.write"),
        "{error}"
    );
    assert!(hubspot.notes().is_empty(), "the check wrote nothing");
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_named_and_never_printed() {
    let (hubspot, stream) = doubles().await;
    let options = Options {
        hubspot: true,
        ..Options::default()
    };
    let wrong_token = "pat-na1-not-the-right-token";
    let error = run(&options, &env(&hubspot, &stream, wrong_token, SECRET))
        .await
        .expect_err("wrong token");
    let message = error.to_string();
    assert!(
        message.starts_with("HubSpot rejected the access token (401): check HUBSPOT_ACCESS_TOKEN"),
        "{message}"
    );
    assert!(message.contains("crm.schemas.contacts.write"), "{message}");
    assert!(!message.contains(wrong_token), "{message}");

    let options = stream_webhook_options();
    let wrong_secret = "not-the-app-secret-at-all-0123456789";
    let error = run(&options, &env(&hubspot, &stream, TOKEN, wrong_secret))
        .await
        .expect_err("wrong secret");
    let message = error.to_string();
    assert!(
        matches!(error, SetupError::StreamCredentials { status: 401 }),
        "{message}"
    );
    assert!(message.contains("STREAM_API_SECRET"), "{message}");
    assert!(!message.contains(wrong_secret), "{message}");
    assert_eq!(stream.call_count("update_app"), 0);

    // A missing credential stops setup before any step: the HubSpot property is not created either.
    let options = Options {
        hubspot: true,
        stream_webhook: Some(WEBHOOK.into()),
        ..Options::default()
    };
    let env = Env::from_pairs([
        ("HUBSPOT_BASE_URL", hubspot.base_url()),
        ("HUBSPOT_ACCESS_TOKEN", TOKEN.to_owned()),
        ("STREAM_BASE_URL", stream.base_url()),
        ("STREAM_API_KEY", KEY.to_owned()),
    ]);
    hubspot.clear_calls();
    let error = run(&options, &env).await.expect_err("no secret");
    assert!(
        error.to_string().contains("STREAM_API_SECRET is not set"),
        "{error}"
    );
    assert!(hubspot.calls().is_empty());
}

#[tokio::test]
async fn local_table_has_the_code_schema_and_is_created_once() {
    let endpoint = DynamoDbLocal::shared().endpoint();
    let table = unique_table("setup-table");
    let options = Options {
        local_table: Some(table.clone()),
        dynamodb_endpoint: endpoint.clone(),
        ..Options::default()
    };
    let env = Env::default();
    assert_eq!(
        run(&options, &env).await.expect("create"),
        [Outcome::TableCreated {
            table: table.clone()
        }]
    );
    assert_eq!(
        run(&options, &env).await.expect("again"),
        [Outcome::TableAlreadyThere {
            table: table.clone()
        }]
    );

    let dynamodb = chat_sync::app::local_dynamodb(&endpoint).await;
    let description = dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("describe")
        .table
        .expect("table");
    let keys: Vec<(String, String)> = description
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            (schema::PARTITION_KEY.to_owned(), "HASH".to_owned()),
            (schema::SORT_KEY.to_owned(), "RANGE".to_owned())
        ]
    );
    let mut indexes: Vec<&str> = description
        .global_secondary_indexes()
        .iter()
        .filter_map(|index| index.index_name())
        .collect();
    indexes.sort_unstable();
    assert_eq!(
        indexes,
        [schema::DIRTY_INDEX, schema::IDLE_INDEX, schema::NOTES_INDEX]
    );
    let ttl = dynamodb
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .expect("describe TTL")
        .time_to_live_description
        .expect("TTL description");
    assert_eq!(ttl.attribute_name(), Some(schema::TTL_ATTRIBUTE));

    // The dry run sees the existing table too.
    let dry = Options {
        dry_run: true,
        ..options
    };
    assert_eq!(
        run(&dry, &env).await.expect("dry run"),
        [Outcome::TableAlreadyThere { table }]
    );
}

/// A user as an operator might have set it up in Stream's dashboard: promoted, with a picture and a custom field.
fn seed_promoted_agent(stream: &StreamDouble) {
    let profile = json!({ "image": "https://cdn.example.com/grace.png", "team": "care" })
        .as_object()
        .cloned()
        .expect("an object");
    stream.seed_user_with("support-agent", "Old name", "admin", profile);
}

#[tokio::test]
async fn stream_access_creates_or_renames_the_agent_and_confines_visitors_once() {
    let (hubspot, stream) = doubles().await;
    let mut env = env(&hubspot, &stream, TOKEN, SECRET);
    env.set("SUPPORT_AGENT_NAME", "Grace (Support)");
    let options = Options {
        stream_access: true,
        ..Options::default()
    };
    // An agent someone promoted and gave a picture: only its name changes.
    seed_promoted_agent(&stream);
    let outcomes = run(&options, &env).await.expect("first run");
    assert_eq!(
        outcomes,
        [
            Outcome::Agent {
                id: "support-agent".into(),
                change: AgentChange::Renamed,
                dry_run: false,
            },
            // The role agents signed in through the identity provider get (issue 23).
            Outcome::AgentRole {
                created: true,
                dry_run: false,
            },
            Outcome::VisitorGrants {
                channel_type: "messaging".into(),
                change: GrantsChange {
                    channel_type: true,
                    app: true
                },
                dry_run: false,
            },
            // Stream's other built-in types keep their defaults unless asked: said, not changed.
            Outcome::OtherChannelTypes {
                types: other_types(),
                confined: false,
                dry_run: false,
            },
        ]
    );
    let team = stream.channel_type_grants("team").expect("team");
    assert!(team["user"].contains(&"create-channel".to_owned()));
    let agent = stream.user_json("support-agent").expect("agent");
    assert_eq!(agent["name"], "Grace (Support)");
    assert_eq!(agent["role"], "admin", "never lowered");
    assert_eq!(agent["image"], "https://cdn.example.com/grace.png");
    assert_eq!(agent["team"], "care");
    assert_eq!(
        stream.call_count("upsert_users"),
        0,
        "never POST /users for an existing agent"
    );
    let grants = stream.channel_type_grants("messaging").expect("messaging");
    assert!(
        !grants["user"].contains(&"create-channel".to_owned()),
        "{grants:?}"
    );
    assert!(grants["channel_member"].contains(&"read-channel".to_owned()));
    assert!(
        grants["admin"].contains(&"update-channel-members".to_owned()),
        "admins keep theirs"
    );
    // Agents read and write the product's channel type; nothing app-wide.
    let agents = &grants[chat_sync::adapters::stream_access::AGENT_ROLE];
    for id in ["read-channel", "create-message", "update-channel"] {
        assert!(agents.contains(&id.to_owned()), "{agents:?}");
    }
    assert!(!agents.contains(&"create-channel".to_owned()), "{agents:?}");

    // Again: nothing to do, nothing written.
    stream.clear_calls();
    let outcomes = run(&options, &env).await.expect("second run");
    assert!(
        matches!(
            outcomes.as_slice(),
            [
                Outcome::Agent {
                    change: AgentChange::Unchanged,
                    ..
                },
                Outcome::AgentRole { created: false, .. },
                Outcome::VisitorGrants {
                    change: GrantsChange {
                        channel_type: false,
                        app: false
                    },
                    ..
                },
                Outcome::OtherChannelTypes { .. },
            ]
        ),
        "{outcomes:?}"
    );
    assert!(
        stream.calls().iter().all(|c| c.method == "GET"),
        "{:?}",
        stream.calls()
    );

    // A missing agent is created, as a user.
    let (hubspot, stream) = doubles().await;
    let env = self::env(&hubspot, &stream, TOKEN, SECRET);
    let outcomes = run(&options, &env).await.expect("fresh app");
    assert!(matches!(
        outcomes[0],
        Outcome::Agent {
            change: AgentChange::Created,
            ..
        }
    ));
    let agent = stream.user_json("support-agent").expect("created");
    assert_eq!(
        (agent["name"].as_str(), agent["role"].as_str()),
        (Some("Support"), Some("user"))
    );
}

/// Stream's built-in channel types but the product's (`messaging`), sorted.
fn other_types() -> Vec<String> {
    ["commerce", "gaming", "livestream", "team"]
        .map(str::to_owned)
        .to_vec()
}

/// A client-side request with a user token, as a visitor's widget would make it: its status and Stream's code.
async fn as_visitor(stream: &StreamDouble, user: &str, path: &str, body: Value) -> (u16, Value) {
    let token = sandbox::stream::user_token(SECRET, user, None).expect("token");
    let response = reqwest::Client::new()
        .post(format!("{}{path}", stream.base_url()))
        .query(&[("api_key", KEY)])
        .header("authorization", token)
        .header("stream-auth-type", "jwt")
        .json(&body)
        .send()
        .await
        .expect("the Stream double answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn confining_other_types_takes_channel_creation_from_visitors_everywhere_once() {
    let (hubspot, stream) = doubles().await;
    let env = env(&hubspot, &stream, TOKEN, SECRET);
    stream.seed_user_with("visitor-1", "Ada", "user", serde_json::Map::new());
    let create = |kind: &str, id: &str| {
        let (stream, path) = (&stream, format!("/channels/{kind}/{id}/query"));
        async move {
            let body = json!({ "data": { "members": ["visitor-1"] } });
            as_visitor(stream, "visitor-1", &path, body).await
        }
    };
    // Stream's defaults: a visitor's token may create a team channel.
    let (status, body) = create("team", "before").await;
    assert!((200..300).contains(&status), "{body}");

    let options = Options {
        stream_access: true,
        confine_other_types: true,
        ..Options::default()
    };
    // A dry run says what it would take and changes nothing.
    let dry = Options {
        dry_run: true,
        ..options.clone()
    };
    let outcomes = run(&dry, &env).await.expect("dry run");
    assert_eq!(
        outcomes.last(),
        Some(&Outcome::OtherChannelTypes {
            types: other_types(),
            confined: true,
            dry_run: true,
        })
    );
    assert!(
        stream.channel_type_grants("gaming").expect("gaming")["user"]
            .contains(&"create-channel".to_owned())
    );

    run(&options, &env).await.expect("confined");
    for kind in ["team", "livestream", "gaming", "commerce", "messaging"] {
        let (status, body) = create(kind, "after").await;
        assert_eq!((status, &body["code"]), (403, &json!(17)), "{kind}: {body}");
        let grants = stream.channel_type_grants(kind).expect("a type");
        assert!(
            !grants["user"].contains(&"create-channel".to_owned()),
            "{kind}"
        );
        assert!(
            grants["admin"].contains(&"create-channel".to_owned()),
            "{kind}: admins keep it"
        );
    }
    // The other rights of a user on those types are kept.
    let team = stream.channel_type_grants("team").expect("team");
    assert!(
        team["user"].contains(&"update-message-owner".to_owned()),
        "{team:?}"
    );

    // Again: nothing left to take.
    stream.clear_calls();
    let outcomes = run(&options, &env).await.expect("again");
    assert_eq!(
        outcomes.last(),
        Some(&Outcome::OtherChannelTypes {
            types: vec![],
            confined: true,
            dry_run: false,
        })
    );
    assert!(
        stream.calls().iter().all(|c| c.method == "GET"),
        "{:?}",
        stream.calls()
    );
}

/// A `POST /channels` query with a user token, as a browser holding the public API key would send it.
async fn query_channels_as(stream: &StreamDouble, token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/channels", stream.base_url()))
        .query(&[("api_key", KEY)])
        .header("authorization", token)
        .header("stream-auth-type", "jwt")
        .json(&json!({ "filter_conditions": {}, "state": false, "watch": false }))
        .send()
        .await
        .expect("the Stream double answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn switched_off_auth_checks_stop_setup_until_it_switches_them_back_on() {
    let (hubspot, stream) = doubles().await;
    stream.set_app_setting("disable_auth_checks", json!(true));
    stream.set_app_setting("disable_permissions_checks", json!(true));
    // What that means: a token nobody signed with the app secret acts as the support agent.
    let forged =
        sandbox::stream::user_token("not-the-app-secret", "support-agent", None).expect("a token");
    assert!((200..300).contains(&query_channels_as(&stream, &forged).await));

    let env = env(&hubspot, &stream, TOKEN, SECRET);
    let access = Options {
        stream_access: true,
        ..Options::default()
    };
    let error = run(&access, &env).await.expect_err("not confined");
    assert!(
        matches!(&error, SetupError::AuthChecksOff(on) if on == &["disable_auth_checks", "disable_permissions_checks"]),
        "{error}"
    );
    assert!(
        error.to_string().contains("--enable-auth-checks"),
        "{error}"
    );
    let switch = Options {
        enable_auth_checks: true,
        ..access.clone()
    };
    let dry = run(
        &Options {
            dry_run: true,
            ..switch.clone()
        },
        &env,
    )
    .await
    .expect("dry run");
    assert!(
        matches!(&dry[0], Outcome::AuthChecks { dry_run: true, .. }),
        "{dry:?}"
    );
    assert_eq!(
        stream.app_settings()["disable_auth_checks"],
        true,
        "a dry run changes nothing"
    );

    let outcomes = run(&switch, &env).await.expect("switched back on");
    assert_eq!(
        outcomes[0],
        Outcome::AuthChecks {
            switched_off: vec!["disable_auth_checks", "disable_permissions_checks"],
            dry_run: false
        }
    );
    assert_eq!(stream.app_settings()["disable_auth_checks"], false);
    assert_eq!(stream.app_settings()["disable_permissions_checks"], false);
    assert_eq!(query_channels_as(&stream, &forged).await, 401);
    // From then on setup reports the app confined, with or without the flag.
    let again = run(&access, &env).await.expect("confined");
    assert!(
        !again
            .iter()
            .any(|o| matches!(o, Outcome::AuthChecks { .. })),
        "{again:?}"
    );
}
