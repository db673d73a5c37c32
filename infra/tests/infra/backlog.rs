//! The `backlog` command, as an operator runs it: the binary against DynamoDB Local.

use crate::support::{local_aws_command, local_table};
use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::domain::{
    ChannelId, ChannelRef, ChannelType, ContactId, Email, Identity, Role, Timestamp, UserId,
};
use chat_sync::handlers::webhook::{parse_event, Parsed};
use chat_sync::ports::{
    ChannelMapping, Channels, LeaseOwner, Leases, MessageLog, Recorded, SyncQueue,
};
use std::time::Duration;

fn backlog(endpoint: &str, table: &str, args: &[&str]) -> (i32, String, String) {
    let output = local_aws_command(env!("CARGO_BIN_EXE_backlog"), endpoint)
        .args(args)
        .env("TABLE_NAME", table)
        .output()
        .expect("backlog runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn record(store: &DynamoStore, contact: &ContactId, id: &str) {
    // Changes are recorded only for a registered channel: register this contact's, as registration would.
    let channel = format!("chat-{}", contact.as_str());
    let mapping = ChannelMapping::registered(
        ChannelRef::new(
            ChannelType::parse("messaging").expect("valid"),
            ChannelId::parse(&channel).expect("valid"),
        ),
        contact.clone(),
        UserId::parse("v", "visitor-1").expect("valid"),
        "Ada".into(),
        Identity::Unverified,
        Timestamp::parse("t", "2026-11-24T10:00:00Z").expect("valid"),
    );
    store
        .save_channel(
            &mapping,
            &Email::parse(&format!("visitor-{}@example.com", contact.as_str())).expect("valid"),
        )
        .await
        .expect("channel");
    let event = serde_json::json!({
        "type": "message.new",
        "cid": format!("messaging:{channel}"),
        "message": {
            "id": id, "text": "hello", "type": "regular",
            "created_at": "2026-11-24T10:00:00Z",
            "user": {"id": "visitor-1", "name": "Ada"}
        }
    });
    let Ok(Parsed::Change(change)) = parse_event(event.to_string().as_bytes()) else {
        panic!("a message event");
    };
    assert_eq!(
        store
            .record_change(&mapping, &change, Role::Visitor)
            .await
            .expect("recorded"),
        Recorded::Applied
    );
}

#[tokio::test]
async fn lists_behind_and_parked_contacts_and_requeues_them() {
    let (endpoint, table, store) = local_table("backlog").await;
    let (behind, gone) = (
        ContactId::parse("1001").expect("id"),
        ContactId::parse("1002").expect("id"),
    );
    record(&store, &behind, "m1").await;
    record(&store, &gone, "m2").await;
    let owner = LeaseOwner::random();
    assert!(store
        .acquire_lease(&gone, &owner, Duration::from_secs(10))
        .await
        .expect("lease")
        .is_some());
    store
        .park_contact(
            &gone,
            &owner,
            "HubSpot has no contact 1002 (404): deleted in HubSpot",
        )
        .await
        .expect("parked");

    let (code, out, err) = backlog(&endpoint, &table, &["list"]);
    assert_eq!(code, 0, "{err}");
    let line = |id: &str| out.lines().find(|l| l.starts_with(id)).map(str::to_owned);
    let behind_line = line("1001").expect("listed");
    assert!(behind_line.contains("behind"), "{out}");
    let gone_line = line("1002").expect("listed");
    assert!(
        gone_line.contains("parked") && gone_line.contains("deleted in HubSpot"),
        "{out}"
    );

    let (code, out, err) = backlog(&endpoint, &table, &["requeue", "--all"]);
    assert_eq!(
        (code, out.trim()),
        (0, "re-queued 1 parked contact(s)"),
        "{err}"
    );
    let (_, out, _) = backlog(&endpoint, &table, &["list"]);
    assert!(!out.contains("parked"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains("behind")).count(),
        2,
        "{out}"
    );

    let (code, _, err) = backlog(&endpoint, &table, &["requeue"]);
    assert_eq!(code, 2, "usage error: {err}");
    assert!(err.contains("--contact <id> or --all"), "{err}");
}
