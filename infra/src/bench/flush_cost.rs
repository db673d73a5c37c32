//! What one flush costs in DynamoDB as a contact's history grows. chat-sync reads only the newest messages a
//! transcript can show (HubSpot keeps 65,536 characters), so its cost levels off; the previous design read the
//! contact's whole history on every flush. The ack path (look the channel up, record the message) is per message.
//! And what both cost as a contact's conversations add up ([`by_conversations`]): the sync record grows with them.

use super::markdown;
use super::meter::Metered;
use super::world::{World, AGENT_ID};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use chat_sync::adapters::dynamo::contact_partition;
use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::config::{Env, FlushSettings, Targets};
use chat_sync::domain::transcript::HUBSPOT_PROPERTY_LIMIT;
use chat_sync::domain::{ChannelRef, ContactId, MessageChange, Role, Timestamp};
use chat_sync::handlers::sweeper::Sweeper;
use chat_sync::handlers::webhook::{parse_event, Parsed};
use chat_sync::ports::{ChannelMapping, Channels, MessageLog, SyncRecords};
use chat_sync::retention::{Retention, RetentionPeriod};
use futures::stream::{self, StreamExt, TryStreamExt};
use sandbox::stream::message_event;
use serde_json::json;
use std::time::Duration;

/// Histories measured.
pub const SIZES: [usize; 3] = [100, 1_000, 20_000];
/// Messages recorded at once while seeding.
const SEED_CONCURRENCY: usize = 32;
/// About 60 characters, as a chat line is.
const TEXT: &str = "could you check where my order is? it said two days ago.";

#[derive(Debug, Clone, Copy)]
pub struct FlushCost {
    pub messages: usize,
    /// One sweep that flushes the contact after one new message, as configured by default (timeline notes and the
    /// property): flusher lease, queue, permit, claim, reads, writes, release.
    pub flush: Metered,
    /// The HubSpot requests of that sweep and the bytes they sent.
    pub hubspot_calls: usize,
    pub hubspot_bytes: usize,
    /// The same after one more message, with `TRANSCRIPT_TARGETS=property` (no notes).
    pub property_only: Metered,
    /// The newest-messages read (`recent_transcript`) alone.
    pub message_read: Metered,
    /// The previous design's read: the contact's whole partition.
    pub whole_history: Metered,
    /// Channel lookup and `record_change` of one message.
    pub ack: Metered,
    pub seeded_in: Duration,
}

/// Message `n` of the channel, as the webhook would have parsed it from Stream's event.
fn change(channel: &ChannelRef, n: usize, created_at: Timestamp) -> Result<MessageChange, String> {
    let at = created_at.key();
    let message = json!({
        "id": format!("seed-{n:06}"),
        "text": format!("{n:06} {TEXT}"),
        "type": "regular",
        "created_at": at,
        "updated_at": at,
        "user": { "id": AGENT_ID, "name": "Support", "role": "user" },
    });
    let event = message_event(
        "message.new",
        channel.channel_type.as_str(),
        channel.channel_id.as_str(),
        &message,
    );
    match parse_event(event.to_string().as_bytes()) {
        Ok(Parsed::Change(change)) => Ok(change),
        other => Err(format!("seed message {n} did not parse: {other:?}")),
    }
}

/// The previous design's read: every item of the contact, consistent, page by page.
async fn whole_history(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    contact: &ContactId,
) -> Result<Metered, String> {
    let mut units = Metered::default();
    let mut start = None;
    loop {
        let output = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(contact_partition(contact)))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| format!("query: {e:?}"))?;
        units.requests += 1;
        units.read += output
            .consumed_capacity()
            .and_then(|c| c.capacity_units())
            .unwrap_or(0.0);
        start = output.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(units);
        }
    }
}

/// The channel's mapping, as the webhook looks it up before it records a change: it must be `contact`'s.
async fn mapping_of(
    store: &DynamoStore,
    (contact, channel): (&ContactId, &ChannelRef),
) -> Result<ChannelMapping, String> {
    store
        .channel(channel)
        .await
        .map_err(|e| e.to_string())?
        .filter(|mapping| mapping.contact_id == *contact)
        .ok_or_else(|| format!("{} is not {contact}'s channel", channel.cid()))
}

/// Records message `n` (the webhook's ack path), then runs one sweep; returns the units of each and the HubSpot
/// calls and bytes the sweep sent.
pub(super) async fn one_message(
    world: &World,
    sweeper: &Sweeper,
    (contact, channel): (&ContactId, &ChannelRef),
    n: usize,
) -> Result<(Metered, Metered, usize, usize), String> {
    let (meter, store) = (&world.meter, &world.store);
    let calls_before = world.hubspot.calls().len();
    let before = meter.units();
    let mapping = mapping_of(store, (contact, channel)).await?;
    store
        .record_change(
            &mapping,
            &change(channel, n, Timestamp::now())?,
            Role::Agent,
        )
        .await
        .map_err(|e| e.to_string())?;
    let acked = meter.units();
    let report = sweeper.sweep().await.map_err(|e| e.to_string())?;
    let flushed = meter.units();
    if report.flush.synced != 1 {
        return Err(format!(
            "the measured sweep did not sync the contact: {report:?}"
        ));
    }
    let calls = world.hubspot.calls();
    let calls = &calls[calls_before.min(calls.len())..];
    let bytes = calls.iter().map(|c| c.body.len()).sum();
    Ok((acked - before, flushed - acked, calls.len(), bytes))
}

/// Records `size` messages in the channel, a second apart from `base` (unix seconds), as webhooks would; returns
/// how long it took.
pub(super) async fn seed(
    world: &World,
    (contact, channel): (&ContactId, &ChannelRef),
    size: usize,
    base: i64,
) -> Result<Duration, String> {
    let store = &world.store;
    let mapping = &mapping_of(store, (contact, channel)).await?;
    let started = std::time::Instant::now();
    stream::iter(0..size)
        .map(|n| async move {
            let at =
                Timestamp::from_unix_seconds(base + n as i64).ok_or("timestamp out of range")?;
            let change = change(channel, n, at)?;
            // A conflict that outlasts the store's own retries: try again.
            for _ in 0..10 {
                if store
                    .record_change(mapping, &change, Role::Agent)
                    .await
                    .is_ok()
                {
                    return Ok(());
                }
            }
            Err(format!("could not seed message {n}"))
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(started.elapsed())
}

pub async fn run(world: &World, dynamodb_endpoint: &str) -> Result<Vec<FlushCost>, String> {
    let visitors = world.setup_visitors(SIZES.len()).await?;
    let flush = FlushSettings::load(&Env::from_process()).map_err(|e| e.to_string())?;
    let sweeper = |flush: FlushSettings| {
        world
            .app_with(flush)
            .and_then(|app| app.sweeper().map_err(|e| e.to_string()))
    };
    let configured = sweeper(flush)?;
    let property_only = sweeper(FlushSettings {
        targets: Targets {
            notes: false,
            property: true,
        },
        ..flush
    })?;
    let client = chat_sync::app::local_dynamodb(dynamodb_endpoint).await;
    let store = &world.store;
    let base = Timestamp::now().unix_seconds() - 86_400 * 30;
    let mut results = Vec::new();
    for (size, visitor) in SIZES.into_iter().zip(&visitors) {
        let contact = ContactId::parse(&visitor.contact_id).map_err(|e| e.to_string())?;
        let channel = ChannelRef::parse_cid(&format!("messaging:{}", visitor.channel_id))
            .map_err(|e| e.to_string())?;
        // Seed the history (a month ago, a second apart) and sync it, so the flushes below write one new message.
        let seeded_in = seed(world, (&contact, &channel), size, base).await?;
        configured.sweep().await.map_err(|e| e.to_string())?;

        let (ack, flush, hubspot_calls, hubspot_bytes) =
            one_message(world, &configured, (&contact, &channel), size).await?;
        let (_, property_flush, _, _) =
            one_message(world, &property_only, (&contact, &channel), size + 1).await?;
        let before = world.meter.units();
        store
            .recent_transcript(&contact, HUBSPOT_PROPERTY_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        results.push(FlushCost {
            messages: size + 1,
            flush,
            hubspot_calls,
            hubspot_bytes,
            property_only: property_flush,
            message_read: world.meter.units() - before,
            whole_history: whole_history(&client, store.table(), &contact).await?,
            ack,
            seeded_in,
        });
    }
    Ok(results)
}

/// Read / write units, as the tables print them.
fn units(u: Metered) -> String {
    format!("{:.1} / {:.1}", u.read, u.write)
}

pub fn table(results: &[FlushCost]) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                format!("{}", r.messages),
                units(r.flush),
                format!(
                    "{} / {:.0} KB",
                    r.hubspot_calls,
                    r.hubspot_bytes as f64 / 1024.0
                ),
                units(r.property_only),
                format!("{:.1}", r.message_read.read),
                format!("{:.1}", r.whole_history.read),
                units(r.ack),
            ]
        })
        .collect();
    format!(
        "Flush cost vs history: one contact, one conversation, ~60-character messages. DynamoDB capacity units as \
         DynamoDB Local reports them, metered per request (reads: Get/Query/BatchGet/TransactGet; writes: the rest, \
         the rate budget's included). chat-sync's flush is one sweep after one new message: flusher lease, queue \
         shards, permit, claim, version, messages, HubSpot writes, release — as configured by default \
         (`TRANSCRIPT_TARGETS` notes and property: the changed conversation's notes are rendered from all of its \
         messages) and with the property alone (the newest messages only). The previous design read the whole \
         partition on every flush (consistent, paginated; its lease and version reads came on top). Seeding {} took \
         {}.\n\n{}",
        results
            .iter()
            .map(|r| r.messages.to_string())
            .collect::<Vec<_>>()
            .join(" / "),
        results
            .iter()
            .map(|r| format!("{:.1} s", r.seeded_in.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" / "),
        markdown(
            &[
                "stored messages",
                "chat-sync RCU / WCU per flush (notes + property)",
                "its HubSpot requests / bytes sent",
                "chat-sync RCU / WCU per flush (property only)",
                "of it, the newest-messages read (RCU)",
                "previous design RCU per flush (whole history)",
                "RCU / WCU per message (ack: channel lookup + record)",
            ],
            &rows,
        )
    )
}

/// Conversations per contact measured: a first chat, a regular, a contact who has chatted every week for a year.
pub const CONVERSATIONS: [usize; 3] = [1, 10, 50];

/// What a message and its flush cost for a contact with `conversations` conversations, each with a message.
#[derive(Debug, Clone, Copy)]
pub struct ConversationCost {
    pub conversations: usize,
    /// The contact's sync record, in bytes as DynamoDB sizes an item (attribute names and values).
    pub sync_record_bytes: usize,
    /// Channel lookup and `record_change` of one message in the newest conversation.
    pub ack: Metered,
    /// One sweep that flushes it, as configured by default.
    pub flush: Metered,
    /// Once its messages expired (retention, with every conversation's notes frozen), then one more message: the
    /// sync record's bytes, and that message's acknowledgement.
    pub expired: (usize, Metered),
}

/// An item's size as DynamoDB counts it (close enough for units: names and values in bytes, numbers by digits).
fn item_bytes(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
            AttributeValue::Ns(set) => set.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
            AttributeValue::M(map) => {
                3 + map
                    .iter()
                    .map(|(k, v)| k.len() + value(v) + 1)
                    .sum::<usize>()
            }
            AttributeValue::L(list) => 3 + list.iter().map(|v| value(v) + 1).sum::<usize>(),
            _ => 0,
        }
    }
    item.iter().map(|(name, v)| name.len() + value(v)).sum()
}

/// A sweeper that writes the notes that wait (`FLUSH_NOTE_WAIT_MS` at 0), so that retention finds a contact in sync:
/// a contact whose notes wait keeps its messages.
pub fn notes_now(world: &World) -> Result<std::sync::Arc<Sweeper>, String> {
    let settings = FlushSettings::load(&Env::from_process()).map_err(|e| e.to_string())?;
    world
        .app_with(FlushSettings {
            note_wait: Duration::ZERO,
            ..settings
        })
        .and_then(|app| app.sweeper().map_err(|e| e.to_string()))
}

/// The contact's sync record's size, in bytes as DynamoDB sizes an item.
async fn record_bytes(
    client: &aws_sdk_dynamodb::Client,
    store: &DynamoStore,
    contact: &ContactId,
) -> Result<usize, String> {
    let record = client
        .get_item()
        .table_name(store.table())
        .set_key(Some(chat_sync::adapters::dynamo::sync_record_key(contact)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| format!("get_item: {e:?}"))?;
    Ok(record.item().map_or(0, item_bytes))
}

/// For each of [`CONVERSATIONS`]: one contact whose conversations were registered (as registrations save them) and
/// each given a message and synced; then one more message in the newest, its ack and its flush metered.
pub async fn by_conversations(
    world: &World,
    dynamodb_endpoint: &str,
) -> Result<Vec<ConversationCost>, String> {
    use chat_sync::domain::{Email, Identity, UserId};
    let visitors = world.setup_visitors(CONVERSATIONS.len()).await?;
    let configured = world
        .app_with(FlushSettings::load(&Env::from_process()).map_err(|e| e.to_string())?)
        .and_then(|app| app.sweeper().map_err(|e| e.to_string()))?;
    let notes_now = notes_now(world)?;
    let client = chat_sync::app::local_dynamodb(dynamodb_endpoint).await;
    let store = &world.store;
    let mut results = Vec::new();
    for (count, visitor) in CONVERSATIONS.into_iter().zip(&visitors) {
        // Conversation n's message, a second after the one before, the newest a second ago.
        let now = Timestamp::now();
        let message_at = |n: usize| now.earlier_by(Duration::from_secs((count - n) as u64));
        let contact = ContactId::parse(&visitor.contact_id).map_err(|e| e.to_string())?;
        let first = ChannelRef::parse_cid(&format!("messaging:{}", visitor.channel_id))
            .map_err(|e| e.to_string())?;
        let mut mappings = vec![mapping_of(store, (&contact, &first)).await?];
        // The visitor's earlier conversations, saved as their registrations saved them.
        for n in 1..count {
            let channel = ChannelRef::parse_cid(&format!("messaging:{}-{n}", visitor.channel_id))
                .map_err(|e| e.to_string())?;
            let email = Email::parse(&format!("returning{count}@bench.example.com"))
                .map_err(|e| e.to_string())?;
            let mapping = ChannelMapping::registered(
                channel.clone(),
                contact.clone(),
                UserId::parse("visitor", &format!("{}-{n}", visitor.visitor_id))
                    .map_err(|e| e.to_string())?,
                "Returning Visitor".into(),
                Identity::Unverified,
                // A minute before its message: each conversation was registered, then written in.
                message_at(n).earlier_by(Duration::from_secs(60)),
            );
            let stored = store
                .save_channel(&mapping, &email)
                .await
                .map_err(|e| e.to_string())?;
            mappings.push(stored);
        }
        for (n, mapping) in mappings.iter().enumerate() {
            let change = change(&mapping.channel, n, message_at(n))?;
            store
                .record_change(mapping, &change, Role::Agent)
                .await
                .map_err(|e| e.to_string())?;
        }
        configured.sweep().await.map_err(|e| e.to_string())?;
        let newest = &mappings.last().ok_or("no conversation")?.channel;
        let (ack, flush, _, _) =
            one_message(world, &configured, (&contact, newest), count + 1).await?;
        let sync_record_bytes = record_bytes(&client, store, &contact).await?;
        // Its notes written, then the contact idle for the whole retention period (the contacts before it expire
        // again, as they were).
        notes_now.sweep().await.map_err(|e| e.to_string())?;
        let period = RetentionPeriod::days(RetentionPeriod::DEFAULT_DAYS);
        Retention::new(store.clone(), period)
            .run(
                Timestamp::now().later_by(period.duration() + Duration::from_secs(86_400)),
                std::time::Instant::now() + Duration::from_secs(60),
            )
            .await
            .map_err(|e| e.to_string())?;
        let archived = store
            .sync_state(&contact)
            .await
            .map_err(|e| e.to_string())?;
        if archived.archived_at.is_none() {
            return Err(format!(
                "retention did not expire contact {contact}'s messages"
            ));
        }
        let (ack_expired, _, _, _) =
            one_message(world, &configured, (&contact, newest), count + 2).await?;
        let expired = (record_bytes(&client, store, &contact).await?, ack_expired);
        results.push(ConversationCost {
            conversations: count,
            sync_record_bytes,
            ack,
            flush,
            expired,
        });
    }
    Ok(results)
}

pub fn conversations_table(results: &[ConversationCost]) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                r.conversations.to_string(),
                format!("{} B", r.sync_record_bytes),
                units(r.ack),
                units(r.flush),
                format!("{} B", r.expired.0),
                units(r.expired.1),
            ]
        })
        .collect();
    format!(
        "Cost vs conversations: one contact with 1, 10 and 50 conversations (a visitor who registered again, each \
         conversation with one message, synced), then one more message in the newest: its acknowledgement and its \
         flush, as configured by default; then, once its messages expired (retention, every conversation's notes \
         frozen), one more message. The sync record is read and written by both, and DynamoDB bills a write by each \
         started KB of the item (twice in a transaction).\n\n{}",
        markdown(
            &[
                "conversations",
                "the contact's sync record",
                "RCU / WCU per message (ack: channel lookup + record)",
                "RCU / WCU per flush (notes + property)",
                "after expiry: the sync record",
                "after expiry: RCU / WCU per message (ack)",
            ],
            &rows,
        )
    )
}
