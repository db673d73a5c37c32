//! HubSpot's webhooks and erasure: signatures v3, privacy deletion (every item here, the visitors in Stream),
//! deletion and restore, and what a late webhook or a running flusher may still write (nothing).

mod deletion;
mod epochs;
mod merges;
mod privacy;
mod warm_copies;

use crate::support;
use crate::support::{
    deliver, hubspot_events, hubspot_request, json_body, message, register_visitor, Item, TestApp,
    HUBSPOT_CLIENT_SECRET,
};
use chat_sync::domain::{
    Author, ChannelId, ChannelRef, ChannelType, ContactId, MessageChange, MessageId, MessageKind,
    Role, Timestamp,
};
use chat_sync::erasure::{PURGE_BACKSTOP, RESTORABLE_FOR};
use chat_sync::ports::{Channels, MessageLog, Recorded, SyncRecords};
use lambda_http::http::StatusCode;
use sandbox::inspect::mentions;
use sandbox::stream::message_event;
use serde_json::json;
use std::time::Duration;

/// Every data item that mentions any of `needles` in its key or any attribute, as a whole token.
async fn items_mentioning(app: &TestApp, needles: &[&str]) -> Vec<Item> {
    let mut items = app.data_items().await;
    items.retain(|item| {
        let text = format!("{item:?}");
        needles.iter().any(|needle| mentions(&text, needle))
    });
    items
}

/// Runs the sweeper once: it writes whatever a webhook's flush left queued (on a loaded machine, a webhook's 1 s
/// flush budget can run out before its write).
async fn sweep(app: &TestApp) {
    app.sweeper()
        .handle(json!({"source": "aws.events"}))
        .await
        .expect("sweep");
}

/// Delivers HubSpot events about contacts, signed now, to the handler: its status and JSON body.
async fn from_hubspot(app: &TestApp, events: &[(&str, &str)]) -> (StatusCode, serde_json::Value) {
    let response = app.hubspot_webhooks.handle(hubspot_events(events)).await;
    (response.status(), json_body(&response))
}

/// A visitor with a conversation of two lines, written to HubSpot: (contact, visitor, channel id).
async fn chatting_visitor(app: &TestApp, email: &str) -> (String, String, String) {
    let (contact, visitor, channel) = register_visitor(app, "Ada", email).await;
    for (i, text) in [
        "My card number is 4111 1111 1111 1111",
        "and I live at 12 Privet Drive",
    ]
    .iter()
    .enumerate()
    {
        let event = message_event(
            "message.new",
            "messaging",
            &channel,
            &message(
                &format!("m-{channel}-{i}"),
                &visitor,
                "Ada",
                text,
                &format!("2026-11-24T10:00:0{i}Z"),
            ),
        );
        let (status, body, _, _) = deliver(app, &event).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    sweep(app).await;
    assert!(app.transcript(&contact).contains("Privet Drive"));
    (contact, visitor, channel)
}
