//! Registration latency with every upstream call slowed down: the critical path is HubSpot ∥ (Stream users →
//! channel), then DynamoDB — not the sum of all calls.

use super::world::{World, AGENT_ID};
use super::{ms, percentile};
use chat_sync::domain::{
    ChannelId, ChannelRef, ChannelType, Email, Identity, PersonName, Timestamp, UserId,
};
use chat_sync::ports::{ChannelMapping, Channels, ChatService, ChatUser, ContactDetails, Crm};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RegistrationReport {
    pub injected: Duration,
    pub samples: usize,
    /// One upstream round trip (a single HubSpot contact create), median.
    pub round_trip: Duration,
    /// The same four calls made one after another, median.
    pub sequential: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

/// Samples are paced below the shared budget's registration cap (a burst of 9, then one per ~250 ms), so the figures
/// are latency, not a queue for permits; the run ends once the cap has refilled, so what follows starts unthrottled.
const PACE: Duration = Duration::from_millis(300);
const REFILL: Duration = Duration::from_secs(3);

pub async fn run(
    world: &World,
    injected: Duration,
    samples: usize,
) -> Result<RegistrationReport, String> {
    world.hubspot.faults().set_latency(injected);
    world.stream.faults().set_latency(injected);
    // Warm the connection pools, as a warm Lambda would have them.
    world.register(1_000_000).await?;

    let mut ours = Vec::new();
    for n in 0..samples {
        tokio::time::sleep(PACE).await;
        let started = Instant::now();
        world.register(n).await?;
        ours.push(started.elapsed());
    }

    let deadline = || Instant::now() + Duration::from_secs(10);
    let agent = UserId::parse("agent", AGENT_ID).map_err(|e| e.to_string())?;
    let mut round_trips = Vec::new();
    let mut sequential = Vec::new();
    for n in 0..samples {
        tokio::time::sleep(PACE).await;
        let details = ContactDetails {
            email: Email::parse(&format!("sequential{n}@bench.example.com"))
                .map_err(|e| e.to_string())?,
            first_name: PersonName::parse("firstName", "Seq").map_err(|e| e.to_string())?,
            last_name: PersonName::parse("lastName", "Ential").map_err(|e| e.to_string())?,
        };
        let visitor = UserId::new_visitor();
        let channel = ChannelRef::new(
            ChannelType::parse("messaging").map_err(|e| e.to_string())?,
            ChannelId::new_random(),
        );
        // What registration writes in Stream: the visitor only (the agent exists and is only made a member).
        let users = [ChatUser {
            id: visitor.clone(),
            name: "Seq Ential".into(),
            role: "user",
        }];
        let started = Instant::now();
        let contact = world
            .crm
            .link_contact(&details, Identity::Unverified, deadline())
            .await
            .map_err(|e| e.to_string())?
            .id;
        round_trips.push(started.elapsed());
        world
            .chat
            .upsert_users(&users, deadline())
            .await
            .map_err(|e| e.to_string())?;
        world
            .chat
            .create_channel(
                &channel,
                &agent,
                &[visitor.clone(), agent.clone()],
                Identity::Unverified,
                deadline(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let mapping = ChannelMapping::registered(
            channel,
            contact,
            visitor,
            "Seq Ential".into(),
            Identity::Unverified,
            Timestamp::now(),
        );
        world
            .store
            .save_channel(&mapping, &details.email)
            .await
            .map_err(|e| e.to_string())?;
        sequential.push(started.elapsed());
    }
    world.hubspot.faults().clear();
    world.stream.faults().clear();
    for list in [&mut ours, &mut round_trips, &mut sequential] {
        list.sort();
    }
    tokio::time::sleep(REFILL).await;
    Ok(RegistrationReport {
        injected,
        samples,
        round_trip: percentile(&round_trips, 0.5),
        sequential: percentile(&sequential, 0.5),
        p50: percentile(&ours, 0.5),
        p99: percentile(&ours, 0.99),
    })
}

pub fn table(report: &RegistrationReport) -> String {
    let ratio = |d: Duration| d.as_secs_f64() / report.round_trip.as_secs_f64().max(f64::EPSILON);
    format!(
        "| registration ({} injected per upstream call, {} samples) | latency | × one round trip |\n|---|---|---|\n\
         | one upstream round trip (median) | {} | 1.00 |\n\
         | chat-sync registration p50 | {} | {:.2} |\n\
         | chat-sync registration p99 | {} | {:.2} |\n\
         | the same calls one after another (median) | {} | {:.2} |\n",
        ms(report.injected),
        report.samples,
        ms(report.round_trip),
        ms(report.p50),
        ratio(report.p50),
        ms(report.p99),
        ratio(report.p99),
        ms(report.sequential),
        ratio(report.sequential),
    )
}
