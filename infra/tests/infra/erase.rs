//! The `erase` command, as an operator runs it: the binary against DynamoDB Local and the Stream double.

use crate::support::{local_aws_command, local_table};
use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::domain::identity::Identity;
use chat_sync::domain::{
    ChannelId, ChannelRef, ChannelType, ContactId, Email, Role, Timestamp, UserId,
};
use chat_sync::handlers::agent_sessions::agent_user_id_for;
use chat_sync::handlers::webhook::{parse_event, Parsed};
use chat_sync::ports::{ChannelMapping, Channels, MessageLog};
use sandbox::StreamDouble;

const STREAM_KEY: &str = "erase-test-key";
const STREAM_SECRET: &str = "erase-test-secret";
/// The agent console's identity provider, as `AGENT_OIDC_ISSUER` names it.
const ISSUER: &str = "https://idp.example.com/pool";

struct World {
    endpoint: String,
    table: String,
    store: DynamoStore,
    stream: StreamDouble,
}

impl World {
    async fn start() -> Self {
        let (endpoint, table, store) = local_table("erase").await;
        let stream = StreamDouble::start(STREAM_KEY, STREAM_SECRET)
            .await
            .expect("Stream double");
        Self {
            endpoint,
            table,
            store,
            stream,
        }
    }

    /// A registered visitor of `contact` with one message.
    async fn chat(&self, contact: &str, email: &str, visitor: &str, channel: &str) {
        let contact = ContactId::parse(contact).expect("id");
        let mapping = ChannelMapping::registered(
            ChannelRef::new(
                ChannelType::parse("messaging").expect("valid"),
                ChannelId::parse(channel).expect("valid"),
            ),
            contact.clone(),
            UserId::parse("visitor", visitor).expect("valid"),
            "Ada Lovelace".into(),
            Identity::Unverified,
            Timestamp::now(),
        );
        self.store
            .save_channel(&mapping, &Email::parse(email).expect("valid"))
            .await
            .expect("mapping");
        let event = serde_json::json!({
            "type": "message.new",
            "cid": format!("messaging:{channel}"),
            "message": {
                "id": format!("m-{channel}"), "text": "my address is 12 Privet Drive", "type": "regular",
                "created_at": "2026-11-24T10:00:00Z", "user": {"id": visitor, "name": "Ada"}
            }
        });
        let Ok(Parsed::Change(change)) = parse_event(event.to_string().as_bytes()) else {
            panic!("a message event");
        };
        self.store
            .record_change(&mapping, &change, Role::Visitor)
            .await
            .expect("recorded");
        self.stream.seed_user(visitor, "Ada Lovelace", "user");
    }

    fn erase(&self, args: &[&str]) -> (i32, String, String) {
        self.erase_with_issuer(args, Some(ISSUER))
    }

    fn erase_with_issuer(&self, args: &[&str], issuer: Option<&str>) -> (i32, String, String) {
        let mut command = local_aws_command(env!("CARGO_BIN_EXE_erase"), &self.endpoint);
        match issuer {
            Some(issuer) => command.env("AGENT_OIDC_ISSUER", issuer),
            None => command.env_remove("AGENT_OIDC_ISSUER"),
        };
        let output = command
            .args(args)
            .env("TABLE_NAME", &self.table)
            .env("STREAM_API_KEY", STREAM_KEY)
            .env("STREAM_API_SECRET", STREAM_SECRET)
            .env("STREAM_BASE_URL", self.stream.base_url())
            .env_remove("STREAM_API_SECRET_SECRET_ARN")
            .output()
            .expect("erase runs");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Items of the table that mention `needle` as a whole token: a contact id such as 2001 also turns up inside a
    /// millisecond timestamp (the rate budget's `tat_ms`), which is no mention of the contact.
    async fn items_with(&self, needle: &str) -> usize {
        let client = chat_sync::app::local_dynamodb(&self.endpoint).await;
        let output = client
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .expect("scan");
        output
            .items()
            .iter()
            .filter(|item| sandbox::inspect::mentions(&format!("{item:?}"), needle))
            .count()
    }

    /// The bodies of the `POST /users/delete` calls Stream received, in order.
    fn stream_deletions(&self) -> Vec<serde_json::Value> {
        self.stream
            .calls()
            .into_iter()
            .filter(|call| call.route == "delete_users")
            .map(|call| serde_json::from_str(&call.body).expect("a JSON body"))
            .collect()
    }
}

// Multi-threaded: the command blocks one thread while the Stream double answers it on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erases_by_email_after_a_dry_run_and_by_contact_id() {
    let world = World::start().await;
    world
        .chat("2001", "ada@example.com", "visitor-a1", "chat-a1")
        .await;
    world
        .chat("2001", "ada@example.com", "visitor-a2", "chat-a2")
        .await;
    world
        .chat("2002", "grace@example.com", "visitor-g1", "chat-g1")
        .await;
    let before = world.items_with("2001").await;
    assert!(before >= 6, "{before}");

    let (code, out, err) = world.erase(&["--email", "Ada@Example.com", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("would erase contact 2001"), "{out}");
    assert!(out.contains("2 Stream visitor(s)"), "{out}");
    assert!(
        !out.contains("ada@example.com") && !out.contains("Privet"),
        "no personal data printed: {out}"
    );
    assert_eq!(
        world.items_with("2001").await,
        before,
        "a dry run changes nothing"
    );
    assert!(world.stream_deletions().is_empty());

    let (code, out, err) = world.erase(&["--email", "ada@example.com"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("erased contact 2001"), "{out}");
    assert_eq!(world.items_with("2001").await, 0);
    assert_eq!(world.items_with("visitor-a").await, 0);
    assert_eq!(world.items_with("chat-a").await, 0);
    // Hard-deleted in Stream, with their messages and conversations, through its task (followed to the end: the
    // users are gone when the command returns).
    let deletions = world.stream_deletions();
    for visitor in ["visitor-a1", "visitor-a2"] {
        assert!(
            deletions.iter().any(|d| d["user_ids"]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|id| id == visitor))
                && d["user"] == "hard"
                && d["messages"] == "hard"
                && d["conversations"] == "hard"),
            "{deletions:?}"
        );
    }
    let users: Vec<String> = world.stream.users().into_iter().map(|u| u.id).collect();
    assert!(
        !users.iter().any(|u| u.starts_with("visitor-a")),
        "{users:?}"
    );
    assert!(
        world.items_with("2002").await > 0,
        "another contact is untouched"
    );

    // Again: nothing left, nothing fails.
    let (code, out, _) = world.erase(&["--email", "ada@example.com"]);
    assert_eq!((code, out.trim()), (0, "nothing is stored here for it"));

    let (code, out, err) = world.erase(&["--contact-id", "2002"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("erased contact 2002"), "{out}");
    assert_eq!(world.items_with("2002").await, 0);
}

// Multi-threaded: the command blocks one thread while the Stream double answers it on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_arguments_exit_2_and_change_nothing() {
    let world = World::start().await;
    world
        .chat("3001", "kept@example.com", "visitor-k1", "chat-k1")
        .await;
    let before = world.items_with("3001").await;
    for args in [
        vec!["--email"],
        vec!["--email", "not-an-email"],
        vec!["--contact-id", "abc"],
        vec!["--email", "kept@example.com", "--contact-id", "3001"],
        vec!["--dry-run"],
        vec!["--everything"],
        vec!["--agent-subject"],
        vec!["--agent-subject", " "],
        vec!["--agent-subject", "sub\u{7}"],
        vec!["--agent-subject", "sub-1", "--email", "kept@example.com"],
    ] {
        let (code, _, err) = world.erase(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("usage: erase"), "{args:?}: {err}");
    }
    let (code, out, _) = world.erase(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("usage: erase"));
    assert_eq!(world.items_with("3001").await, before);
    assert!(world.stream_deletions().is_empty());
}

// Multi-threaded: the command blocks one thread while the Stream double answers it on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erases_an_agent_in_stream_and_keeps_their_answers_and_the_contacts() {
    let world = World::start().await;
    world
        .chat("4001", "visitor@example.com", "visitor-v1", "chat-v1")
        .await;
    let agent = agent_user_id_for(ISSUER, "0f1e2d3c-ada");
    world
        .stream
        .seed_user(agent.as_str(), "Ada Agent", "chat_agent");
    let before = world.items_with("4001").await;
    let named = |world: &World| {
        world
            .stream
            .user_json(agent.as_str())
            .map(|user| user["name"].clone())
    };
    assert_eq!(named(&world), Some(serde_json::json!("Ada Agent")));

    let (code, out, err) = world.erase(&["--agent-subject", "0f1e2d3c-ada", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        format!(
            "would erase agent {agent} in Stream: their name and data there; their answers stay"
        )
    );
    assert!(
        world.stream_deletions().is_empty(),
        "a dry run changes nothing"
    );

    // A subject (or an issuer) that names nobody in Stream changes nothing, and says so.
    let (code, out, err) = world.erase(&["--agent-subject", "0f1e2d3c-bob"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Stream has no user agent-"), "{out}");
    assert!(out.contains("nothing erased"), "{out}");
    assert!(world.stream_deletions().is_empty());

    // The agent's Stream id comes from the issuer: without it, nothing can be found, and nothing changes.
    let (code, _, err) = world.erase_with_issuer(&["--agent-subject", "0f1e2d3c-ada"], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("AGENT_OIDC_ISSUER"), "{err}");
    assert!(world.stream_deletions().is_empty());

    // Pasted with spaces around it, the subject finds the same agent.
    let (code, out, err) = world.erase(&["--agent-subject", " 0f1e2d3c-ada "]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("erased agent {agent}")), "{out}");
    assert!(!out.contains("Ada"), "no personal data printed: {out}");
    // Pruned, not deleted: no messages or conversations mode, so the answers stay in the visitors' channels.
    assert_eq!(
        world.stream_deletions(),
        vec![serde_json::json!({"user_ids": [agent.as_str()], "user": "pruning"})]
    );
    assert_eq!(
        named(&world),
        Some(serde_json::json!("")),
        "the name is gone"
    );
    assert!(
        world.stream.users().iter().any(|u| u.id == "visitor-v1"),
        "the visitors stay"
    );
    assert_eq!(world.items_with("4001").await, before, "the contacts stay");

    // Again: it completes, as a repeated erasure does.
    let (code, _, err) = world.erase(&["--agent-subject", "0f1e2d3c-ada"]);
    assert_eq!(code, 0, "{err}");
}
