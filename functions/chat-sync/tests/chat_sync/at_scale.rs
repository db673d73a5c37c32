//! HubSpot at the scale of a real support desk: one shared rate budget, batched writes, fencing against writes that
//! land late, merges and deletions, reads bounded by what a transcript shows, the sharded queue.

use crate::support;
use crate::support::{
    dated_message, record, register_visitor, signed_webhook, TestApp, HUBSPOT_TOKEN,
};
use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::adapters::hubspot::HubSpotClient;
use chat_sync::budget::{BudgetPlan, RateLimit};
use chat_sync::config::FlushSettings;
use chat_sync::domain::{ContactId, Email};
use chat_sync::ports::{BudgetError, Caller, Crm, MessageLog, RateBudget, RateSignal, SyncQueue};
use chat_sync::sync::FlushOutcome;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lambdas_sharing_the_budget_never_exceed_hubspots_limit() {
    let app = TestApp::start().await;
    // A small limit, so a few seconds cover more than a window: 20 requests per rolling 10 s.
    app.hubspot.set_rate_limit(Some(20));
    let plan = BudgetPlan::new(RateLimit::parse("20/10").expect("valid"));
    let nobody = Email::parse("nobody@example.com").expect("valid");
    let until = Instant::now() + Duration::from_secs(12);
    let sent = Arc::new(AtomicUsize::new(0));
    // Four "Lambdas", each with its own client and budget object over the one table, calling as fast as allowed.
    let lambdas: Vec<_> = (0..4)
        .map(|_| {
            let budget: Arc<dyn RateBudget> = Arc::new(app.store.budget(plan));
            let http = chat_sync::adapters::http::client().expect("an HTTP client");
            let client =
                HubSpotClient::new(http, &app.hubspot.base_url(), HUBSPOT_TOKEN.into(), budget);
            let (nobody, sent) = (nobody.clone(), sent.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    if client
                        .find_contact(&nobody, Instant::now() + Duration::from_secs(2))
                        .await
                        .is_ok()
                    {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for lambda in lambdas {
        lambda.await.expect("lambda");
    }
    let peak = app.hubspot.peak_requests_in_window();
    assert_eq!(app.hubspot.rate_limited(), 0, "no request refused");
    assert!(peak <= 20, "{peak} requests in one rolling window");
    assert!(
        peak as u32 <= plan.max_per_window(),
        "{peak} > plan {plan:?}"
    );
    // Used, not starved: over 12 s the plan grants its burst plus one per emission.
    let sent = sent.load(Ordering::Relaxed);
    assert!(sent >= 18, "only {sent} requests in 12 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registrations_and_transcript_writes_cannot_starve_each_other() {
    let app = TestApp::start().await;
    let plan = BudgetPlan::new(RateLimit::HUBSPOT_DEFAULT);
    let budget: Arc<dyn RateBudget> = Arc::new(app.store.budget(plan));
    let flood = |caller: Caller, until: Instant| {
        let budget = budget.clone();
        tokio::spawn(async move {
            let mut granted = 0;
            while Instant::now() < until {
                if budget.acquire(caller, until).await.is_ok() {
                    granted += 1;
                }
            }
            granted
        })
    };
    // Transcript writes saturate the budget: a registration still gets a permit at once (the reserve).
    let until = Instant::now() + Duration::from_secs(3);
    let writers: Vec<_> = (0..4).map(|_| flood(Caller::Background, until)).collect();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let asked = Instant::now();
    budget
        .acquire(Caller::Registration, asked + Duration::from_secs(1))
        .await
        .expect("a registration gets a permit while writes saturate the budget");
    let waited = asked.elapsed();
    assert!(
        waited < Duration::from_millis(300),
        "registration waited {waited:?}"
    );
    for writer in writers {
        writer.await.expect("writer");
    }
    // A flood of registrations: transcript writes still get a good share (registrations are capped at half the
    // sustained rate). Shares, not counts, so a loaded machine does not change the verdict.
    let until = Instant::now() + Duration::from_secs(4);
    let registrations: Vec<_> = (0..6).map(|_| flood(Caller::Registration, until)).collect();
    let writers: Vec<_> = (0..4).map(|_| flood(Caller::Background, until)).collect();
    let (mut registered, mut writes) = (0, 0);
    for registration in registrations {
        registered += registration.await.expect("registration");
    }
    for writer in writers {
        writes += writer.await.expect("writer");
    }
    // Registrations never get more than their cap: a burst, then half the sustained rate...
    let cap = plan.burst as usize + (4_000 / plan.registration_emission_ms) as usize + 1;
    assert!(registered <= cap, "{registered} registrations, cap {cap}");
    // ...so transcript writes keep a share of the budget however many registrations there are.
    assert!(
        writes * 5 >= registered + writes,
        "{writes} writes vs {registered} registrations in 4 s"
    );
}

#[tokio::test]
async fn hubspots_signals_hold_the_whole_budget_back() {
    let app = TestApp::start().await;
    let plan = BudgetPlan::new(RateLimit::HUBSPOT_DEFAULT);
    let budget: Arc<dyn RateBudget> = Arc::new(app.store.budget(plan));
    // Another client of the same app used most of HubSpot's window: its answers say only 3 are left. The budget
    // counts from its own clock reading inside `observe` (before its write), so the sustained rate's additions are
    // counted from before the call: counting from its return would miss what accrued while DynamoDB answered.
    let told = Instant::now();
    budget
        .observe(RateSignal::Remaining {
            remaining: 3,
            max: 100,
            interval: Duration::from_secs(10),
        })
        .await;
    let mut granted = 0;
    while budget
        .acquire(
            Caller::Registration,
            Instant::now() + Duration::from_millis(20),
        )
        .await
        .is_ok()
    {
        granted += 1;
        assert!(granted < 20, "the budget ignored HubSpot's Remaining");
    }
    // Three, plus what the sustained rate added while these requests took their time.
    let replenished = told.elapsed().as_millis() as i64 / plan.emission_ms;
    assert!(
        granted as i64 <= 3 + replenished,
        "{granted} permits with 3 left ({replenished} replenished)"
    );
    // A rolling-window 429: nobody sends before the window has passed.
    budget
        .observe(RateSignal::WindowExhausted {
            interval: Duration::from_secs(10),
        })
        .await;
    match budget
        .acquire(
            Caller::Registration,
            Instant::now() + Duration::from_secs(1),
        )
        .await
    {
        Err(BudgetError::Exhausted { wait, daily: false }) => {
            assert!(wait > Duration::from_secs(8), "{wait:?}")
        }
        other => panic!("granted during a blocked window: {other:?}"),
    }
    // The daily quota: refused at once, and said so.
    budget.observe(RateSignal::DailyExhausted).await;
    match budget
        .acquire(
            Caller::Background,
            Instant::now() + Duration::from_secs(3_600),
        )
        .await
    {
        Err(BudgetError::Exhausted { daily: true, .. }) => {}
        other => panic!("expected the daily block: {other:?}"),
    }
}

#[tokio::test]
async fn a_batch_writes_every_contact_in_one_call_across_all_queue_shards() {
    let app = TestApp::start().await;
    let mut visitors = Vec::new();
    for n in 0..20 {
        visitors.push(register_visitor(&app, "Ada", &format!("visitor{n}@example.com")).await);
    }
    for (n, (_, visitor, channel)) in visitors.iter().enumerate() {
        record(
            &app,
            &dated_message(channel, visitor, &format!("m{n}"), &format!("hello {n}"), n),
        )
        .await;
    }
    // The queue is spread over several index partitions.
    let shards: std::collections::HashSet<String> = app
        .dynamodb
        .scan()
        .table_name(app.store.table())
        .filter_expression("sk = :sync")
        .expression_attribute_values(
            ":sync",
            aws_sdk_dynamodb::types::AttributeValue::S(
                chat_sync::adapters::dynamo::SYNC_RECORD_SORT_KEY.into(),
            ),
        )
        .send()
        .await
        .expect("scan")
        .items()
        .iter()
        .filter_map(|item| item.get("dirty").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    assert!(shards.len() >= 4, "queued in shards {shards:?}");
    let report = app.sweep().await;
    assert_eq!(
        (report.flush.synced, report.flush.calls, report.waiting),
        (20, 1, 0),
        "{report:?}"
    );
    assert_eq!(app.hubspot.call_count("batch_update"), 1);
    for (n, (contact, _, _)) in visitors.iter().enumerate() {
        assert!(app.transcript(contact).contains(&format!("hello {n}")));
    }
}

#[tokio::test]
async fn a_contact_deleted_in_hubspot_is_parked_and_the_rest_of_the_batch_is_written() {
    let app = TestApp::start().await;
    let (ada, ada_visitor, ada_channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let (bo, bo_visitor, bo_channel) = register_visitor(&app, "Bo", "bo@example.com").await;
    assert!(app.hubspot.delete_contact(&bo));
    record(
        &app,
        &dated_message(&ada_channel, &ada_visitor, "a1", "for ada", 1),
    )
    .await;
    record(
        &app,
        &dated_message(&bo_channel, &bo_visitor, "b1", "for bo", 1),
    )
    .await;
    app.hubspot.clear_calls();

    // One call; HubSpot's answer names Bo's id unknown: Ada is written, Bo is looked up by e-mail, then parked.
    let report = app.sweep().await;
    assert_eq!(
        (
            report.flush.calls,
            report.flush.synced,
            report.flush.parked,
            report.waiting
        ),
        (1, 1, 1, 0),
        "{report:?}"
    );
    assert!(app.transcript(&ada).contains("for ada"));
    assert_eq!(
        app.hubspot.call_count("batch_read"),
        1,
        "looked up by e-mail"
    );
    let backlog = app.store.backlog(10).await.expect("backlog");
    let parked = backlog
        .iter()
        .find(|entry| entry.contact.as_str() == bo)
        .expect("Bo is listed");
    let reason = parked.parked.as_deref().expect("parked with a reason");
    assert!(reason.contains("deleted"), "{reason}");

    // Parked means no retry loop: new messages are recorded, nothing is sent.
    record(
        &app,
        &dated_message(&bo_channel, &bo_visitor, "b2", "again", 2),
    )
    .await;
    app.hubspot.clear_calls();
    let report = app.sweep().await;
    assert_eq!((report.flush.calls, report.waiting), (0, 0), "{report:?}");
    assert!(app.hubspot.calls().is_empty());

    // An operator re-queues it (say, after restoring the contact): it is tried again.
    let bo_id = ContactId::parse(&bo).expect("id");
    assert!(app.store.requeue(&bo_id).await.expect("requeue"));
    assert_eq!(
        app.store.dirty_contacts(10).await.expect("queue"),
        vec![bo_id]
    );
}

/// Ada, registered with `email`, and Bo merged in HubSpot into a record with a new id: Ada's next write meets her
/// old id (404), finds the survivor by her e-mail and is written there, as are later ones.
async fn a_merge_is_followed_by_email(email: &str) {
    let app = TestApp::start().await;
    let (ada, visitor, channel) = register_visitor(&app, "Ada", email).await;
    let (bo, _, _) = register_visitor(&app, "Bo", "bo@example.com").await;
    let merged = app.hubspot.merge_contacts(&ada, &bo).expect("merged");
    assert_ne!(merged, ada);
    record(
        &app,
        &dated_message(&channel, &visitor, "m1", "after the merge", 1),
    )
    .await;

    let report = app.sweep().await;
    assert_eq!(
        (
            report.flush.redirected,
            report.flush.synced,
            report.flush.parked
        ),
        (1, 1, 0),
        "found by its e-mail: {report:?}"
    );
    assert!(app.transcript(&merged).contains("after the merge"));
    // Later writes go straight to the surviving record.
    record(
        &app,
        &dated_message(&channel, &visitor, "m2", "and later", 2),
    )
    .await;
    app.hubspot.clear_calls();
    let report = app.sweep().await;
    assert_eq!(
        (report.flush.calls, report.flush.synced),
        (1, 1),
        "{report:?}"
    );
    assert!(app.hubspot.call_count("batch_read") == 0);
    let transcript = app.transcript(&merged);
    assert!(transcript.contains("after the merge") && transcript.contains("and later"));
}

#[tokio::test]
async fn a_merged_contact_is_found_by_email_and_written_under_its_new_id() {
    a_merge_is_followed_by_email("ada@example.com").await;
}

#[tokio::test]
async fn an_email_with_url_characters_is_looked_up_as_an_email() {
    // Valid in an e-mail's local part; in a URL path `%2e%2e/` climbs a level and `?` starts the query.
    a_merge_is_followed_by_email("ada%2e%2e/x?y@example.com").await;
}

/// The queries a store sends, the items they examine and the read units DynamoDB bills for them (each query is
/// made to return its consumed capacity).
#[derive(Debug, Clone, Default)]
struct QueryCost(Arc<std::sync::Mutex<(usize, i32, f64)>>);

impl QueryCost {
    /// (queries, items examined, read units) so far.
    fn so_far(&self) -> (usize, i32, f64) {
        *self.0.lock().expect("not poisoned")
    }
}

impl aws_sdk_dynamodb::config::Intercept for QueryCost {
    fn name(&self) -> &'static str {
        "query-cost"
    }

    fn modify_before_serialization(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextMut<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        if let Some(query) = context
            .input_mut()
            .downcast_mut::<aws_sdk_dynamodb::operation::query::QueryInput>()
        {
            query.return_consumed_capacity =
                Some(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total);
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef<
            '_,
        >,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        if let Some(query) =
            output.downcast_ref::<aws_sdk_dynamodb::operation::query::QueryOutput>()
        {
            let mut cost = self.0.lock().expect("not poisoned");
            cost.0 += 1;
            cost.1 += query.scanned_count();
            cost.2 += query
                .consumed_capacity()
                .and_then(|c| c.capacity_units())
                .unwrap_or(0.0);
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_flush_reads_what_it_shows_however_long_the_history() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let contact = ContactId::parse(&contact).expect("id");
    let limit = 2_000; // about 25 lines
                       // The flusher's read, through a store whose queries are measured.
    let cost = QueryCost::default();
    let client = app
        .dynamodb
        .config()
        .to_builder()
        .interceptor(cost.clone())
        .build();
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(client),
        app.store.table(),
    );
    let mut reads = Vec::new();
    let mut recorded = 0;
    for history in [100, 600] {
        while recorded < history {
            let text = format!("message {recorded:04} {}", "x".repeat(40));
            record(
                &app,
                &dated_message(&channel, &visitor, &format!("m{recorded}"), &text, recorded),
            )
            .await;
            recorded += 1;
        }
        let before = cost.so_far();
        let source = store
            .recent_transcript(&contact, limit)
            .await
            .expect("read");
        let after = cost.so_far();
        assert!(
            source.messages.len() <= 100,
            "read {} messages: one page",
            source.messages.len()
        );
        assert!(source
            .messages
            .last()
            .is_some_and(|m| m.text.starts_with(&format!("message {:04}", history - 1))));
        reads.push((after.0 - before.0, after.1 - before.1, after.2 - before.2));
    }
    assert!(reads[0].2 > 0.0, "DynamoDB Local reports consumed capacity");
    // The same queries, examining the same items and billed the same, for 100 and for 600 stored messages.
    assert_eq!(
        reads[0], reads[1],
        "(queries, items examined, read units): {reads:?}"
    );
}

#[tokio::test]
async fn a_webhook_hands_its_contact_to_the_running_flusher() {
    // A long linger, so the second message is recorded before the flusher claims the contact.
    let app = TestApp::start_with(FlushSettings {
        linger: Duration::from_millis(300),
        ..support::test_flush_settings()
    })
    .await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    app.hubspot.faults().set_latency(Duration::from_millis(300));
    // The first webhook becomes the flusher (and lingers, then writes slowly)...
    let (response, flush) = app
        .webhook
        .receive(signed_webhook(&dated_message(
            &channel, &visitor, "m1", "first", 1,
        )))
        .await;
    assert_eq!(response.status(), 200);
    let flusher = tokio::spawn(flush.expect("a flush").run());
    tokio::time::sleep(Duration::from_millis(20)).await;
    // ...the second hands its contact over and is done at once; the flusher writes both.
    delivered_to_the_running_flusher(&app, &dated_message(&channel, &visitor, "m2", "second", 2))
        .await;
    match flusher.await.expect("flusher") {
        Some(FlushOutcome::Flushed(report)) => assert_eq!(report.synced, 1, "{report:?}"),
        other => panic!("{other:?}"),
    }
    let transcript = app.transcript(&contact);
    assert!(
        transcript.contains("first") && transcript.contains("second"),
        "{transcript}"
    );
    assert_eq!(app.hubspot.call_count("batch_update"), 1);
}

#[tokio::test]
async fn a_webhook_during_a_flushers_last_round_becomes_the_next_flusher() {
    // The first flusher's budget leaves room for one round only (after its linger, another linger and the margin
    // before the budget would end past it), and HubSpot is slow, so that last round is long. The rest of the budget
    // is the second flusher's time to find and claim its contact, on a loaded machine too.
    let app = TestApp::start_with(FlushSettings {
        linger: Duration::from_millis(300),
        webhook_budget: Duration::from_millis(800),
        ..support::test_flush_settings()
    })
    .await;
    let (ada, ada_visitor, ada_channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let (bob, bob_visitor, bob_channel) = register_visitor(&app, "Bob", "bob@example.com").await;
    app.hubspot
        .faults()
        .set_latency(Duration::from_millis(1_000));
    let (response, flush) = app
        .webhook
        .receive(signed_webhook(&dated_message(
            &ada_channel,
            &ada_visitor,
            "m1",
            "first",
            1,
        )))
        .await;
    assert_eq!(response.status(), 200);
    let first = tokio::spawn(flush.expect("a flush").run());
    // Midway through its last round (it lingers 300 ms, then writes for a second)...
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (response, flush) = app
        .webhook
        .receive(signed_webhook(&dated_message(
            &bob_channel,
            &bob_visitor,
            "m2",
            "second",
            2,
        )))
        .await;
    assert_eq!(response.status(), 200);
    // ...the next webhook finds the lease given up and becomes the flusher: handing its contact to a flusher on
    // its way out would leave it to the sweeper.
    let second = flush.expect("a flush").run().await;
    let first = first.await.expect("flusher");
    assert!(
        matches!(second, Some(FlushOutcome::Flushed(report)) if report.synced == 1),
        "{second:?}"
    );
    assert!(matches!(first, Some(FlushOutcome::Flushed(report)) if report.synced == 1));
    assert!(app.transcript(&ada).contains("first"));
    assert!(app.transcript(&bob).contains("second"));
}

/// The `n`th registered visitor's `message.new` event for a message "line n" (id `m<n>`).
fn numbered_line(visitors: &[(String, String, String)], n: usize) -> serde_json::Value {
    let (_, visitor, channel) = &visitors[n];
    dated_message(channel, visitor, &format!("m{n}"), &format!("line {n}"), 1)
}

/// Delivers an event that a running flusher must take over: acknowledged, then its flush hands the contact over.
async fn delivered_to_the_running_flusher(app: &TestApp, event: &serde_json::Value) {
    let (status, _, _, outcome) = support::deliver(app, event).await;
    assert_eq!(status, 200);
    assert_eq!(outcome, Some(FlushOutcome::Handed));
}

#[tokio::test]
async fn a_turn_of_long_rounds_hands_over_before_the_one_that_would_end_past_its_budget_and_keeps_the_pace(
) {
    // Rounds of about a second (HubSpot at 1 s a call): the second starts at ~1.63 s, with time left for its
    // claims and a linger (2.18 s < 2.42 s), but, as long as the first, it ends past the budget (~2.66 s).
    let app = TestApp::start_with(FlushSettings {
        linger: Duration::from_millis(300),
        webhook_budget: Duration::from_millis(2_420),
        ..support::test_flush_settings()
    })
    .await;
    let mut people = Vec::new();
    for name in ["ada", "bob", "carl", "dan"] {
        people.push(register_visitor(&app, name, &format!("{name}@example.com")).await);
    }
    app.hubspot
        .faults()
        .set_latency(Duration::from_millis(1_000));
    let before = app.hubspot.call_count("batch_update");
    let message = |n: usize| numbered_line(&people, n);
    let (response, flush) = app.webhook.receive(signed_webhook(&message(0))).await;
    assert_eq!(response.status(), 200);
    let first = tokio::spawn(flush.expect("a flush").run());
    // Bob's message comes during the first round (0.3–1.3 s) and wakes the flusher for a second one...
    tokio::time::sleep(Duration::from_millis(600)).await;
    delivered_to_the_running_flusher(&app, &message(1)).await;
    // ...and Carl's during the second (1.63–2.66 s; at ~2.0 s, well clear of both ends on a loaded machine). Had the
    // lease been kept through it, Carl's webhook would have woken a flusher past its budget, and his line would
    // wait for the sweeper. It becomes the next flusher.
    tokio::time::sleep(Duration::from_millis(1_400)).await;
    let (response, flush) = app.webhook.receive(signed_webhook(&message(2))).await;
    assert_eq!(response.status(), 200);
    let third = tokio::spawn(flush.expect("a flush").run());
    // Dan's comes at ~2.5 s, while that round still runs. The next flusher's first round is due when the first
    // flusher's next would have been, after its last round and a linger (~2.96 s), so Dan's wakes it and both go in
    // one batch: starting at once, it would have written Carl alone, then Dan a round later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    delivered_to_the_running_flusher(&app, &message(3)).await;
    let (first, third) = (first.await.expect("flusher"), third.await.expect("flusher"));
    match first {
        Some(FlushOutcome::Flushed(report)) => {
            assert_eq!((report.rounds, report.synced), (2, 2), "{report:?}");
            assert_eq!(report.left_woken, 0, "{report:?}");
        }
        other => panic!("{other:?}"),
    }
    match third {
        Some(FlushOutcome::Flushed(report)) => {
            assert_eq!((report.rounds, report.synced), (1, 2), "{report:?}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(app.hubspot.call_count("batch_update") - before, 3);
    for (n, (contact, _, _)) in people.iter().enumerate() {
        assert!(app.transcript(contact).contains(&format!("line {n}")));
    }
}

#[tokio::test]
async fn a_sweeper_that_webhooks_wake_writes_at_the_desks_pace() {
    let app = Arc::new(
        TestApp::start_with(FlushSettings {
            linger: Duration::from_millis(500),
            ..support::test_flush_settings()
        })
        .await,
    );
    let mut visitors = Vec::new();
    for n in 0..6 {
        visitors.push(register_visitor(&app, "Ada", &format!("ada{n}@example.com")).await);
    }
    app.sweep().await;
    let before = app.hubspot.call_count("batch_update");
    app.hubspot.faults().set_latency(Duration::from_millis(200));
    // One change the webhooks left to the sweeper (its webhook's flush never ran)...
    let message = |n: usize| numbered_line(&visitors, n);
    let (response, _left) = app.webhook.receive(signed_webhook(&message(0))).await;
    assert_eq!(response.status(), 200);
    let sweeper = tokio::spawn({
        let app = app.clone();
        async move { app.sweep().await }
    });
    // ...then five more, 120 ms apart, while the sweeper holds the lease: each webhook wakes it.
    for n in 1..6 {
        tokio::time::sleep(Duration::from_millis(if n == 1 { 20 } else { 120 })).await;
        delivered_to_the_running_flusher(&app, &message(n)).await;
    }
    let report = sweeper.await.expect("sweeper");
    // The first round at once, the next after a linger: every wake-up in one batch, not a round each.
    assert_eq!(report.flush.synced, 6, "{report:?}");
    assert_eq!(app.hubspot.call_count("batch_update") - before, 2);
    for (n, (contact, _, _)) in visitors.iter().enumerate() {
        assert!(app.transcript(contact).contains(&format!("line {n}")));
    }
}

#[tokio::test]
async fn a_flusher_handing_over_leaves_its_wake_set_and_its_pace_to_the_next_one() {
    use chat_sync::ports::{FlusherLease, LeaseOwner};
    let app = TestApp::start().await;
    let ttl = Duration::from_secs(15);
    let contact = ContactId::parse("1001").expect("contact id");
    let [first, second, third] = [(); 3].map(|()| LeaseOwner::random());
    let turn = app.store.acquire_flusher(&first, ttl).await.expect("store");
    assert_eq!(
        turn.map(|t| t.next_round_ms),
        Some(None),
        "nobody handed over"
    );
    assert!(app.store.wake_flusher(&contact).await.expect("store"));
    // Handing over: the lease goes, the wake-up stays (and comes back to the last round), the due time is left.
    let due = 1_800_000_000_000;
    let left = app
        .store
        .hand_over_flusher(&first, due)
        .await
        .expect("store");
    assert_eq!(left, Some(vec![contact.clone()]));
    assert_eq!(
        app.store
            .hand_over_flusher(&first, due)
            .await
            .expect("store"),
        None,
        "not ours any more"
    );
    assert!(
        !app.store.wake_flusher(&contact).await.expect("store"),
        "nobody to wake: the webhook becomes the next flusher"
    );
    let turn = app
        .store
        .acquire_flusher(&second, ttl)
        .await
        .expect("store");
    assert_eq!(turn.map(|t| t.next_round_ms), Some(Some(due)));
    let woken = app.store.renew_flusher(&second, ttl).await.expect("store");
    assert_eq!(
        woken,
        Some(vec![contact.clone()]),
        "the wake set outlives the handover"
    );
    // Not idle while the wake-up is there; once taken, idle, and the due time went with the turn that took it.
    assert!(!app
        .store
        .release_flusher(&second, true)
        .await
        .expect("store"));
    app.store
        .clear_wakes(std::slice::from_ref(&contact))
        .await
        .expect("store");
    assert!(app
        .store
        .release_flusher(&second, true)
        .await
        .expect("store"));
    let turn = app.store.acquire_flusher(&third, ttl).await.expect("store");
    assert_eq!(
        turn.map(|t| t.next_round_ms),
        Some(None),
        "a due time is for one turn"
    );
    // And a lease held is not taken.
    assert_eq!(
        app.store.acquire_flusher(&first, ttl).await.expect("store"),
        None
    );
}
