//! Faults: HubSpot failing for a while, a lease holder dying mid-write.

use crate::support;
use crate::support::{
    dated_message, deliver, json_body, register_visitor, signed_webhook, TestApp,
};
use aws_sdk_dynamodb::types::AttributeValue;
use chat_sync::config::FlushSettings;
use chat_sync::sync::FlushOutcome;
use lambda_http::http::StatusCode;
use std::time::{Duration, Instant};

#[tokio::test]
async fn hubspot_outage_then_sweeper_converges() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    // HubSpot refuses every write until the outage ends (423 Locked: nothing is applied, so nothing is fenced).
    app.hubspot.faults().fail_next("batch_update", 10_000, 423);
    let budget = support::test_flush_settings();
    for i in 0..3 {
        let started = Instant::now();
        let event = dated_message(
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
        match outcome {
            Some(FlushOutcome::Flushed(report)) => {
                assert!(report.deferred >= 1 && report.synced == 0, "{report:?}")
            }
            other => panic!("the webhook ran the flusher: {other:?}"),
        }
        let elapsed = started.elapsed();
        assert!(
            elapsed < budget.webhook_budget + budget.write_timeout,
            "flush within budget ({elapsed:?})"
        );
    }
    assert!(
        app.hubspot.call_count("batch_update") >= 1,
        "writes were attempted"
    );
    assert_eq!(
        app.transcript(&contact),
        "",
        "nothing reached HubSpot during the outage"
    );

    let sweeper = app.sweeper();
    let report = sweeper.sweep().await.expect("sweep");
    assert_eq!(
        (report.flush.deferred, report.waiting),
        (1, 1),
        "{report:?}"
    );
    app.hubspot.faults().clear();
    let report = sweeper.sweep().await.expect("sweep");
    assert_eq!(
        (
            report.flush.synced,
            report.flush.deferred,
            report.flush.calls
        ),
        (1, 0, 1),
        "{report:?}"
    );
    let transcript = app.transcript(&contact);
    for i in 0..3 {
        assert_eq!(
            transcript.matches(&format!("during outage {i}")).count(),
            1,
            "{transcript}"
        );
    }
    let report = sweeper.sweep().await.expect("sweep");
    assert_eq!(
        (report.waiting, report.flush.calls),
        (0, 0),
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
        late_write_window: Duration::from_millis(500),
        ..support::test_flush_settings()
    };
    let app = std::sync::Arc::new(TestApp::start_with(settings).await);
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    app.hubspot.faults().set_latency(Duration::from_millis(800));

    // The first webhook records its message, takes the lease and dies while its HubSpot write is in flight.
    let holder = {
        let app = app.clone();
        let event = dated_message(&channel, &visitor, "m1", "first", 1);
        tokio::spawn(async move { app.webhook.handle(signed_webhook(&event)).await })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.hubspot.call_count("batch_update") == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    holder.abort();
    assert!(holder.await.is_err(), "the holder was killed");
    let killed_at = Instant::now();

    // A second message arrives while the dead flusher's lease is still valid: recorded, handed to the flusher that
    // holds the lease (dead, so nothing is written until the lease expires).
    let (_, body, _, outcome) =
        deliver(&app, &dated_message(&channel, &visitor, "m2", "second", 2)).await;
    assert_eq!(body["status"], "recorded");
    assert_eq!(
        outcome,
        Some(FlushOutcome::Handed),
        "the flusher lease was still held"
    );

    // Once the lease expires, the next writer (here the sweeper) converges.
    app.hubspot.faults().set_latency(Duration::ZERO);
    tokio::time::sleep(
        Duration::from_secs(3).saturating_sub(killed_at.elapsed()) + Duration::from_millis(100),
    )
    .await;
    let report = app.sweep().await;
    assert_eq!(report.flush.synced, 1, "{report:?}");
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
        for i in 0..20usize {
            deliveries.push((
                round,
                dated_message(
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
    app.sweep().await;
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
    let events: Vec<_> = (0..6usize)
        .map(|i| {
            dated_message(
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
        assert_eq!(
            json_body(&response)["status"],
            "recorded",
            "{:?} {:?}",
            response.status(),
            response.body()
        );
    }
    app.sweep().await;
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
    app.hubspot.faults().fail_next("batch_update", 10_000, 423);
    let response = app
        .webhook
        .handle(signed_webhook(&dated_message(
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
        (report.flush.synced, report.flush.calls, report.waiting),
        (1, 1, 0),
        "{report:?}"
    );
    assert!(app.transcript(&contact).contains("left dirty"));
}

/// Checks a document against the Embedded Metric Format specification: `_aws.Timestamp` in epoch milliseconds, and
/// each `CloudWatchMetrics` directive's namespace, dimension sets and metrics naming members of the root that hold
/// a dimension's string value or a metric's number.
fn assert_valid_emf(document: &serde_json::Value) {
    const UNITS: [&str; 5] = ["Count", "Seconds", "Milliseconds", "Bytes", "None"];
    let aws = document["_aws"].as_object().expect("_aws is an object");
    assert!(
        aws["Timestamp"]
            .as_i64()
            .is_some_and(|ms| ms > 1_600_000_000_000),
        "_aws.Timestamp is epoch milliseconds: {document}"
    );
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("_aws.CloudWatchMetrics is a list");
    assert!(!directives.is_empty(), "{document}");
    for directive in directives {
        let namespace = directive["Namespace"].as_str().expect("Namespace");
        assert!(!namespace.is_empty() && namespace.len() <= 255);
        for set in directive["Dimensions"].as_array().expect("Dimensions") {
            let set = set.as_array().expect("a dimension set is a list");
            assert!(!set.is_empty() && set.len() <= 30);
            for name in set {
                let name = name.as_str().expect("a dimension is named");
                assert!(
                    document[name].as_str().is_some_and(|v| !v.is_empty()),
                    "dimension {name} has a string value in the root: {document}"
                );
            }
        }
        let metrics = directive["Metrics"].as_array().expect("Metrics");
        assert!(!metrics.is_empty() && metrics.len() <= 100);
        for metric in metrics {
            let name = metric["Name"].as_str().expect("a metric is named");
            assert!(
                document[name].is_number(),
                "metric {name} has a number in the root: {document}"
            );
            if let Some(unit) = metric.get("Unit") {
                assert!(UNITS.contains(&unit.as_str().expect("Unit is a string")));
            }
        }
    }
}

#[tokio::test]
async fn a_sweep_counts_contacts_behind_and_parked_and_publishes_them_as_valid_emf() {
    use chat_sync::metrics::{
        BACKLOG_CONTACTS, NAMESPACE, OLDEST_BEHIND_SECONDS, PARKED_CONTACTS, TABLE_DIMENSION,
    };
    let app = TestApp::start().await;
    let empty = app.sweep().await;
    assert_eq!(
        (
            empty.waiting,
            empty.parked_total,
            empty.oldest_waiting_seconds
        ),
        (0, 0, 0)
    );

    // One contact deleted in HubSpot: its write finds no contact under its id or e-mail, so it is parked.
    let (gone, gone_visitor, gone_channel) =
        register_visitor(&app, "Gone", "gone@example.com").await;
    assert!(app.hubspot.delete_contact(&gone));
    deliver(
        &app,
        &dated_message(&gone_channel, &gone_visitor, "g1", "hello", 1),
    )
    .await;
    let parked = app.sweep().await;
    assert_eq!((parked.waiting, parked.parked_total), (0, 1), "{parked:?}");

    // Three contacts behind while HubSpot refuses every write; one of them has waited an hour.
    app.hubspot.faults().fail_next("batch_update", 10_000, 423);
    let mut behind = Vec::new();
    for (i, name) in ["Ada", "Bob", "Cy"].into_iter().enumerate() {
        let email = format!("{}@example.com", name.to_lowercase());
        let (contact, visitor, channel) = register_visitor(&app, name, &email).await;
        deliver(
            &app,
            &dated_message(&channel, &visitor, &format!("m{i}"), "hi", i),
        )
        .await;
        behind.push(contact);
    }
    let an_hour_ago = chat_sync::domain::Timestamp::now()
        .earlier_by(Duration::from_secs(3_600))
        .key();
    app.dynamodb
        .update_item()
        .table_name(app.store.table())
        .set_key(Some(support::sync_record_key(&behind[1])))
        .update_expression("SET dirty_since = :then")
        .expression_attribute_values(":then", AttributeValue::S(an_hour_ago))
        .send()
        .await
        .expect("backdate one contact's place in the queue");

    let report = app.sweep().await;
    assert_eq!((report.waiting, report.parked_total), (3, 1), "{report:?}");
    assert!(
        (3_600..3_660).contains(&report.oldest_waiting_seconds),
        "the backdated contact is the oldest: {report:?}"
    );

    let now = chat_sync::domain::Timestamp::now();
    let document = report.metrics().emf(app.store.table(), &now);
    assert_valid_emf(&document);
    let directive = &document["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], NAMESPACE);
    assert_eq!(
        directive["Dimensions"],
        serde_json::json!([[TABLE_DIMENSION]])
    );
    assert_eq!(document["_aws"]["Timestamp"], now.unix_millis());
    assert_eq!(document[TABLE_DIMENSION], app.store.table());
    assert_eq!(document[BACKLOG_CONTACTS], 3);
    assert_eq!(document[PARKED_CONTACTS], 1);
    assert_eq!(
        document[OLDEST_BEHIND_SECONDS],
        report.oldest_waiting_seconds
    );
    let named: Vec<&str> = directive["Metrics"]
        .as_array()
        .expect("Metrics")
        .iter()
        .filter_map(|m| m["Name"].as_str())
        .collect();
    assert_eq!(
        named,
        [BACKLOG_CONTACTS, OLDEST_BEHIND_SECONDS, PARKED_CONTACTS]
    );

    // Once HubSpot takes writes again, the backlog drains and the figures fall back to zero.
    app.hubspot.faults().clear();
    let drained = app.sweep().await;
    assert_eq!(
        (
            drained.waiting,
            drained.parked_total,
            drained.oldest_waiting_seconds
        ),
        (0, 1, 0),
        "{drained:?}"
    );
}

#[tokio::test]
async fn a_validation_rule_refusing_one_transcript_parks_that_contact_and_writes_the_rest() {
    use chat_sync::config::{FlushSettings, Targets};
    use chat_sync::domain::ContactId;
    use chat_sync::ports::{SyncQueue, SyncRecords};
    use sandbox::hubspot::ValidationRule;
    let app = TestApp::start_with(FlushSettings {
        targets: Targets::BOTH,
        ..support::test_flush_settings()
    })
    .await;
    // Four contacts with a conversation each; Bo's transcript is the one a portal rule will refuse.
    let mut contacts = Vec::new();
    for (i, name) in ["Ada", "Bo", "Cy", "Di"].into_iter().enumerate() {
        let email = format!("{}@example.com", name.to_lowercase());
        let (contact, visitor, channel) = register_visitor(&app, name, &email).await;
        let text = if name == "Bo" {
            "a long story ".repeat(100)
        } else {
            format!("hello from {name}")
        };
        support::record(
            &app,
            &dated_message(&channel, &visitor, &format!("m{i}"), &text, i),
        )
        .await;
        contacts.push(contact);
    }
    let bo = contacts[1].clone();
    let others = [&contacts[0], &contacts[2], &contacts[3]];
    let bo_writes = app.hubspot.property_writes(&bo);
    // An admin limits the property in HubSpot's settings: from 2026-09 on, API writes are checked against it.
    app.hubspot
        .set_validation_rule("chat_transcript", Some(ValidationRule::MaxLength(1_000)));
    app.hubspot.clear_calls();

    let report = app.sweep().await;
    // One property batch, whose answer refuses Bo's input alone (no splitting, no retry), and one batch of notes
    // for the three others.
    assert_eq!(
        (
            report.flush.calls,
            report.flush.synced,
            report.flush.parked,
            report.flush.deferred,
            report.waiting,
            report.parked_total,
        ),
        (2, 3, 1, 0, 0, 1),
        "{report:?}"
    );
    assert_eq!(app.hubspot.call_count("batch_update"), 1);
    assert_eq!(app.hubspot.call_count("notes_batch_create"), 1);
    for (contact, name) in others.iter().zip(["Ada", "Cy", "Di"]) {
        assert!(
            app.transcript(contact)
                .contains(&format!("hello from {name}")),
            "{name}'s transcript is written"
        );
        assert_eq!(app.hubspot.notes_of_contact(contact).len(), 1, "{name}");
    }

    // Bo is parked with HubSpot's own message (which quotes the start of the value it refused); nothing of his
    // reached HubSpot.
    let backlog = app.store.backlog(10).await.expect("backlog");
    assert_eq!(backlog.len(), 1, "only Bo is left: {backlog:?}");
    assert_eq!(backlog[0].contact.as_str(), bo);
    let reason = backlog[0].parked.as_deref().expect("a reason");
    assert!(
        reason.starts_with(
            "HubSpot refused the transcript: VALIDATION_ERROR: The value \"=== Conversation "
        ) && reason.contains("of property \"chat_transcript\" is longer than 1000 characters"),
        "{reason}"
    );
    assert_eq!(app.transcript(&bo), "");
    assert_eq!(app.hubspot.property_writes(&bo), bo_writes);
    assert!(app.hubspot.notes_of_contact(&bo).is_empty());
    for contact in others {
        let state = app
            .store
            .sync_state(&ContactId::parse(contact).expect("id"))
            .await
            .expect("state");
        assert_eq!(
            (state.parked, state.synced_version),
            (None, state.version),
            "{contact}"
        );
    }

    // Parked is for good: the next sweep sends nothing.
    app.hubspot.clear_calls();
    let report = app.sweep().await;
    assert_eq!(
        (report.flush.calls, report.waiting, report.parked_total),
        (0, 0, 1),
        "{report:?}"
    );
    assert!(app.hubspot.calls().is_empty(), "{:?}", app.hubspot.calls());
}

/// What chat-sync logs in this test binary, every test's lines together, at every level: the process's one
/// subscriber (a thread's own would miss what tracing decided for a log site while another test's thread had none).
#[derive(Clone, Default)]
struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

fn captured_logs() -> &'static CapturedLogs {
    static LOGS: std::sync::OnceLock<CapturedLogs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("chat_sync=trace")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        logs
    })
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut captured) = self.0.lock() {
            captured.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn error_paths_log_no_email_name_or_message_text() {
    use chat_sync::config::Targets;
    use chat_sync::ports::SyncQueue;
    use sandbox::hubspot::ValidationRule;
    const EMAIL: &str = "zoe.secret-mail@example.com";
    const NAME: &str = "Zoesecretname";
    const TEXT: &str = "my-secret-message-text";
    let logs = captured_logs();
    let app = TestApp::start_with(FlushSettings {
        targets: Targets::BOTH,
        ..support::test_flush_settings()
    })
    .await;
    let form = format!(r#"{{"firstName":"{NAME}","lastName":"Tester","email":"{EMAIL}"}}"#);
    let register = |form: String| {
        let app = &app;
        async move {
            app.registration
                .handle(support::http_request(
                    "POST",
                    &form,
                    &[("content-type", "application/json")],
                ))
                .await
                .status()
        }
    };
    // Registration failing at HubSpot, then at Stream.
    app.hubspot.faults().fail_next("create_contact", 10, 500);
    assert_eq!(register(form.clone()).await, StatusCode::BAD_GATEWAY);
    app.stream.faults().fail_next("query_channel", 1, 400);
    assert_eq!(register(form.clone()).await, StatusCode::BAD_GATEWAY);
    // A transcript a portal rule refuses: HubSpot's message quotes the start of it, the visitor's name included.
    let (contact, visitor, channel) = register_visitor(&app, NAME, EMAIL).await;
    support::record(&app, &dated_message(&channel, &visitor, "m1", TEXT, 1)).await;
    app.hubspot
        .set_validation_rule("chat_transcript", Some(ValidationRule::MaxLength(10)));
    let report = app.sweep().await;
    assert_eq!(report.flush.parked, 1, "{report:?}");
    let backlog = app.store.backlog(10).await.expect("backlog");
    let reason = backlog
        .iter()
        .find(|entry| entry.contact.as_str() == contact)
        .and_then(|entry| entry.parked.clone())
        .expect("parked with a reason");
    assert!(
        reason.contains(NAME),
        "HubSpot's answer quoted the name: {reason}"
    );

    let logged = logs.text();
    assert!(
        logged
            .lines()
            .any(|line| line.contains("contact parked") && line.contains(&contact)),
        "{logged}"
    );
    assert!(logged.contains("registration failed upstream"), "{logged}");
    for secret in [EMAIL, NAME, TEXT] {
        assert!(
            !logged.contains(secret),
            "{secret} reached a log line:\n{logged}"
        );
    }
}
