//! Faults: HubSpot failing for a while, a lease holder dying mid-write.

mod support;

use chat_sync::config::FlushSettings;
use chat_sync::sync::FlushOutcome;
use lambda_http::http::StatusCode;
use sandbox::stream::message_event;
use std::time::{Duration, Instant};
use support::{deliver, json_body, message, register_visitor, signed_webhook, TestApp};

fn new_message(
    channel: &str,
    visitor: &str,
    id: &str,
    text: &str,
    second: u32,
) -> serde_json::Value {
    message_event(
        "message.new",
        "messaging",
        channel,
        &message(
            id,
            visitor,
            "Ada",
            text,
            &format!("2026-11-24T10:00:{second:02}.000Z"),
        ),
    )
}

#[tokio::test]
async fn hubspot_outage_then_sweeper_converges() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    // HubSpot rate-limits every write until the outage ends.
    app.hubspot.faults().fail_next("patch_contact", 10_000, 429);
    let budget = support::test_flush_settings();
    for i in 0..3 {
        let started = Instant::now();
        let event = new_message(
            &channel,
            &visitor,
            &format!("m{i}"),
            &format!("during outage {i}"),
            i,
        );
        let (status, body, ack, outcome) = deliver(&app, &event).await;
        // Durably recorded and acknowledged at once, although HubSpot is failing...
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("recorded"))
        );
        assert!(
            ack < Duration::from_secs(1),
            "ack is not held up by HubSpot ({ack:?})"
        );
        // ...and the flush after it gives up within its budget, leaving the contact for the sweeper.
        assert!(
            matches!(outcome, Some(FlushOutcome::Deferred { .. })),
            "{outcome:?}"
        );
        let elapsed = started.elapsed();
        assert!(
            elapsed < budget.webhook_budget + budget.write_timeout,
            "flush within budget ({elapsed:?})"
        );
    }
    assert!(
        app.hubspot.call_count("patch_contact") >= 1,
        "writes were attempted"
    );
    assert_eq!(
        app.transcript(&contact),
        "",
        "nothing reached HubSpot during the outage"
    );

    let sweeper = app.sweeper();
    let report = sweeper.sweep().await.expect("sweep");
    assert_eq!(report.dirty, 1);
    app.hubspot.faults().clear();
    let report = sweeper.sweep().await.expect("sweep");
    assert_eq!((report.synced, report.deferred), (1, 0), "{report:?}");
    let transcript = app.transcript(&contact);
    for i in 0..3 {
        assert_eq!(
            transcript.matches(&format!("during outage {i}")).count(),
            1,
            "{transcript}"
        );
    }
    assert_eq!(
        sweeper.sweep().await.expect("sweep").dirty,
        0,
        "clean afterwards"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_killed_mid_write_loses_nothing() {
    let settings = FlushSettings {
        webhook_budget: Duration::from_millis(1_000),
        linger: Duration::ZERO,
        lease_ttl: Duration::from_secs(3),
        write_timeout: Duration::from_millis(1_200),
    };
    let app = std::sync::Arc::new(TestApp::start_with(settings).await);
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    app.hubspot.faults().set_latency(Duration::from_millis(800));

    // The first webhook records its message, takes the lease and dies while its HubSpot write is in flight.
    let holder = {
        let app = app.clone();
        let event = new_message(&channel, &visitor, "m1", "first", 1);
        tokio::spawn(async move { app.webhook.handle(signed_webhook(&event)).await })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.hubspot.call_count("patch_contact") == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    holder.abort();
    assert!(holder.await.is_err(), "the holder was killed");
    let killed_at = Instant::now();

    // A second message arrives while the dead holder's lease is still valid: recorded, not written.
    let (_, body, _, outcome) =
        deliver(&app, &new_message(&channel, &visitor, "m2", "second", 2)).await;
    assert_eq!(body["status"], "recorded");
    assert_eq!(
        outcome,
        Some(FlushOutcome::Busy),
        "the lease was still held"
    );

    // Once the lease expires, the next writer (here the sweeper) converges.
    app.hubspot.faults().set_latency(Duration::ZERO);
    tokio::time::sleep(
        Duration::from_secs(3).saturating_sub(killed_at.elapsed()) + Duration::from_millis(100),
    )
    .await;
    let report = app.sweeper().sweep().await.expect("sweep");
    assert_eq!(report.synced, 1, "{report:?}");
    let transcript = app.transcript(&contact);
    assert_eq!(transcript.matches("first").count(), 1, "{transcript}");
    assert_eq!(transcript.matches("second").count(), 1, "{transcript}");
    assert!(transcript.find("first") < transcript.find("second"));
    assert_eq!(app.hubspot.overlapping_patches(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_redelivered_three_times_lands_once() {
    let app = std::sync::Arc::new(TestApp::start().await);
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let mut deliveries = Vec::new();
    for round in 0..3 {
        for i in 0..20u32 {
            deliveries.push((
                round,
                new_message(
                    &channel,
                    &visitor,
                    &format!("m{i:02}"),
                    &format!("line {i:02}"),
                    i,
                ),
            ));
        }
    }
    // Redeliveries interleave with first deliveries, four at a time.
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    deliveries.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));
    let mut statuses = Vec::new();
    for chunk in deliveries.chunks(4) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|(_, event)| {
                let (app, event) = (app.clone(), event.clone());
                tokio::spawn(async move {
                    json_body(&app.webhook.handle(signed_webhook(&event)).await)["status"].clone()
                })
            })
            .collect();
        for handle in handles {
            statuses.push(handle.await.expect("delivered"));
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| *s == "recorded").count(),
        20,
        "each message recorded once"
    );
    assert_eq!(statuses.iter().filter(|s| *s == "duplicate").count(), 40);
    app.sweeper().sweep().await.expect("sweep");
    let transcript = app.transcript(&contact);
    let lines: Vec<&str> = transcript.lines().filter(|l| l.contains("line ")).collect();
    assert_eq!(lines.len(), 20, "{transcript}");
    for (i, line) in lines.iter().enumerate() {
        assert!(line.ends_with(&format!("line {i:02}")), "{line}");
    }
}

#[tokio::test]
async fn dynamodb_outage_gets_5xx_and_retries_after_restart_converge() {
    let dir = std::env::temp_dir().join(format!("chat-sync-ddb-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("data dir");
    let mut dynamodb = sandbox::DynamoDbLocal::start(None, Some(dir.clone()))
        .await
        .expect("DynamoDB Local starts");
    let app = TestApp::start_on(&dynamodb.endpoint(), support::test_flush_settings()).await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let events: Vec<_> = (0..6u32)
        .map(|i| {
            new_message(
                &channel,
                &visitor,
                &format!("m{i}"),
                &format!("message {i}"),
                i,
            )
        })
        .collect();
    for event in &events[..3] {
        assert_eq!(
            app.webhook.handle(signed_webhook(event)).await.status(),
            StatusCode::OK
        );
    }

    dynamodb.stop().await.expect("stopped");
    for event in &events[3..] {
        let response = app.webhook.handle(signed_webhook(event)).await;
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "Stream must retry"
        );
    }
    dynamodb.restart().await.expect("restarted with its data");

    // Stream's retries of the failed deliveries now succeed; earlier messages survived the restart.
    for event in &events[3..] {
        let response = app.webhook.handle(signed_webhook(event)).await;
        assert_eq!(json_body(&response)["status"], "recorded");
    }
    app.sweeper().sweep().await.expect("sweep");
    let transcript = app.transcript(&contact);
    for i in 0..6 {
        assert_eq!(
            transcript.matches(&format!("message {i}")).count(),
            1,
            "{transcript}"
        );
    }
    drop(dynamodb);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_schedule_event_file_runs_a_sweep_that_flushes_dirty_contacts() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    app.hubspot.faults().fail_next("patch_contact", 10_000, 503);
    let response = app
        .webhook
        .handle(signed_webhook(&new_message(
            &channel,
            &visitor,
            "m1",
            "left dirty",
            1,
        )))
        .await;
    assert_eq!(json_body(&response)["status"], "recorded");
    assert_eq!(app.transcript(&contact), "", "HubSpot refused the write");
    app.hubspot.faults().clear();

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/sweeper-schedule.json"
    );
    let event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("event file")).expect("JSON");
    assert_eq!(event["detail-type"], "Scheduled Event");
    let report = app.sweeper().handle(event).await.expect("sweep");
    assert_eq!(
        (report.dirty, report.synced, report.writes),
        (1, 1, 1),
        "{report:?}"
    );
    assert!(app.transcript(&contact).contains("left dirty"));
}

#[tokio::test]
async fn a_contact_hubspot_keeps_rejecting_does_not_starve_the_others() {
    let app = TestApp::start().await;
    let (broken, broken_visitor, broken_channel) =
        register_visitor(&app, "Bo", "bo@example.com").await;
    let (healthy, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    // HubSpot is down while both write: both are left dirty, the broken one first in the sweeper's queue.
    app.hubspot.faults().fail_next("patch_contact", 1_000, 503);
    for (channel, visitor, id) in [
        (&broken_channel, &broken_visitor, "b1"),
        (&channel, &visitor, "h1"),
    ] {
        let (_, _, _, outcome) = deliver(&app, &new_message(channel, visitor, id, id, 1)).await;
        assert!(
            matches!(outcome, Some(FlushOutcome::Deferred { .. })),
            "{outcome:?}"
        );
    }
    app.hubspot.faults().clear();
    let queue = |app: &TestApp| {
        let store = app.store.clone();
        async move {
            use chat_sync::ports::Store;
            let dirty = store.dirty_contacts(10).await.expect("dirty contacts");
            dirty
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(queue(&app).await, vec![broken.clone(), healthy.clone()]);

    // One contact per sweep. HubSpot rejects the broken contact's write: it goes to the back of the queue...
    let sweeper = chat_sync::handlers::sweeper::Sweeper::new(
        app.store.clone(),
        app.sync.clone(),
        1,
        Duration::from_secs(5),
    );
    app.hubspot.faults().fail_next("patch_contact", 1, 400);
    let report = sweeper.sweep().await.expect("sweep");
    assert_eq!((report.synced, report.deferred), (0, 1), "{report:?}");
    assert_eq!(queue(&app).await, vec![healthy.clone(), broken.clone()]);
    // ...so the next sweep reaches the healthy one.
    let report = sweeper.sweep().await.expect("sweep");
    assert_eq!(report.synced, 1, "{report:?}");
    assert!(app.transcript(&healthy).contains("h1"));
    assert_eq!(queue(&app).await, vec![broken]);
}
