//! What retention costs: expiring an idle contact's messages (the sweeper's pass: one conditional write per message
//! item, once), and a flush of that contact when it changes again (few stored messages to read; HubSpot's copy of
//! the property is read back, one more request) against the same flush with every message stored, in the same run.

use super::flush_cost::{notes_now, one_message, seed};
use super::markdown;
use super::meter::Metered;
use super::world::World;
use aws_sdk_dynamodb::types::AttributeValue;
use chat_sync::adapters::dynamo::contact_partition;

use chat_sync::domain::{ChannelRef, ContactId, Timestamp};
use chat_sync::retention::{Retention, RetentionPeriod};
use std::time::{Duration, Instant};

/// Histories measured.
pub const SIZES: [usize; 2] = [100, 1_000];

#[derive(Debug, Clone, Copy)]
pub struct RetentionCost {
    pub messages: usize,
    /// The retention pass that expires the contact's messages, and how long it took.
    pub expire: Metered,
    pub expire_time: Duration,
    /// One sweep after one new message, every message stored: units, HubSpot requests, bytes sent.
    pub before: (Metered, usize, usize),
    /// The same once the messages expired (and DynamoDB's TTL deleted them).
    pub after: (Metered, usize, usize),
}

/// Deletes the contact's items whose TTL is set, as DynamoDB's TTL process does within days: on a client of its
/// own, so the meter counts none of it.
async fn ttl_process(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    contact: &ContactId,
) -> Result<usize, String> {
    let mut deleted = 0;
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .filter_expression("attribute_exists(expires_at)")
            .projection_expression("pk, sk")
            .expression_attribute_values(":pk", AttributeValue::S(contact_partition(contact)))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| format!("query: {e:?}"))?;
        for key in page.items() {
            client
                .delete_item()
                .table_name(table)
                .set_key(Some(key.clone()))
                .send()
                .await
                .map_err(|e| format!("delete: {e:?}"))?;
            deleted += 1;
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(deleted);
        }
    }
}

pub async fn run(world: &World, dynamodb_endpoint: &str) -> Result<Vec<RetentionCost>, String> {
    let visitors = world.setup_visitors(SIZES.len()).await?;
    let sweeper = world.app.sweeper().map_err(|e| e.to_string())?;
    let notes_now = notes_now(world)?;
    let period = RetentionPeriod::days(RetentionPeriod::DEFAULT_DAYS);
    let retention = Retention::new(world.store.clone(), period);
    let client = chat_sync::app::local_dynamodb(dynamodb_endpoint).await;
    let base = Timestamp::now().unix_seconds() - 86_400 * 60;
    let mut results = Vec::new();
    for (size, visitor) in SIZES.into_iter().zip(&visitors) {
        let contact = ContactId::parse(&visitor.contact_id).map_err(|e| e.to_string())?;
        let channel = ChannelRef::parse_cid(&format!("messaging:{}", visitor.channel_id))
            .map_err(|e| e.to_string())?;
        seed(world, (&contact, &channel), size, base).await?;
        sweeper.sweep().await.map_err(|e| e.to_string())?;
        let (_, flush, calls, bytes) =
            one_message(world, &sweeper, (&contact, &channel), size).await?;
        let shown = world
            .hubspot
            .contact(contact.as_str())
            .and_then(|c| c.properties.get("chat_transcript").cloned())
            .unwrap_or_default();

        // The sweeper's pass, as if the contact had been idle for the whole period (its notes written: a contact
        // whose notes wait keeps its messages).
        notes_now.sweep().await.map_err(|e| e.to_string())?;
        let before = world.meter.units();
        let started = Instant::now();
        let report = retention
            .run(
                Timestamp::now().later_by(period.duration() + Duration::from_secs(86_400)),
                Instant::now() + Duration::from_secs(60),
            )
            .await
            .map_err(|e| e.to_string())?;
        let expire_time = started.elapsed();
        let expire = world.meter.units() - before;
        if report.contacts != 1 || report.messages != size as u64 + 1 {
            return Err(format!(
                "the retention pass did not expire the contact's {} messages: {report:?}",
                size + 1
            ));
        }
        ttl_process(&client, world.store.table(), &contact).await?;

        let (_, flush_after, calls_after, bytes_after) =
            one_message(world, &sweeper, (&contact, &channel), size + 1).await?;
        let now_shown = world
            .hubspot
            .contact(contact.as_str())
            .and_then(|c| c.properties.get("chat_transcript").cloned())
            .unwrap_or_default();
        // What HubSpot showed is still there, as it was (its oldest line may give way to the new one, as always).
        if shown.is_empty() || !shown.lines().skip(3).all(|line| now_shown.contains(line)) {
            let missing = shown.lines().skip(3).find(|line| !now_shown.contains(line));
            return Err(format!(
                "after expiry, the property no longer shows a line it showed: {missing:?}"
            ));
        }
        // Expire it again, so that the next contact's pass is measured alone.
        notes_now.sweep().await.map_err(|e| e.to_string())?;
        retention
            .run(
                Timestamp::now().later_by(period.duration() + Duration::from_secs(86_400)),
                Instant::now() + Duration::from_secs(60),
            )
            .await
            .map_err(|e| e.to_string())?;
        results.push(RetentionCost {
            messages: size + 1,
            expire,
            expire_time,
            before: (flush, calls, bytes),
            after: (flush_after, calls_after, bytes_after),
        });
    }
    Ok(results)
}

pub fn table(results: &[RetentionCost]) -> String {
    let units = |u: Metered| format!("{:.1} / {:.1}", u.read, u.write);
    let hubspot = |calls: usize, bytes: usize| format!("{calls} / {:.0} KB", bytes as f64 / 1024.0);
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                r.messages.to_string(),
                format!(
                    "{} ({} requests, {:.2} s)",
                    units(r.expire),
                    r.expire.requests,
                    r.expire_time.as_secs_f64()
                ),
                units(r.before.0),
                hubspot(r.before.1, r.before.2),
                units(r.after.0),
                hubspot(r.after.1, r.after.2),
            ]
        })
        .collect();
    format!(
        "Retention: one contact, one conversation, ~60-character messages, notes and property (the default \
         targets). Expiring its messages is the sweeper's pass once the contact has been in sync and idle for \
         `MESSAGE_RETENTION_DAYS`; the flushes are one sweep after one new message, with every message stored \
         (before) and once they expired (after: HubSpot's copy of the property is read back). DynamoDB capacity \
         units as DynamoDB Local reports them.\n\n{}",
        markdown(
            &[
                "stored messages",
                "expiring them: RCU / WCU",
                "flush before: RCU / WCU",
                "its HubSpot requests / bytes sent",
                "flush after expiry: RCU / WCU",
                "its HubSpot requests / bytes sent",
            ],
            &rows,
        )
    )
}
