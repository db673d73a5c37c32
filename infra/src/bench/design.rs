//! The designs a benchmark compares, each deployed on its own world: the webhook served at `/webhooks` over HTTP
//! and, where the design has one, its sweeper every few seconds ([`SWEEP_EVERY`] unless `bench --sweep-every`
//! says otherwise; every minute when deployed, as `template.yaml` schedules it: here the benchmarks are short).

use super::baseline::Baseline;
use super::meter::flushing;
use super::previous::Previous;
use super::world::{World, HUBSPOT_TOKEN, STREAM_SECRET};
use super::Invocations;
use crate::serve::{route, HttpHandler};
use chat_sync::config::{Env, FlushSettings};
use chat_sync::handlers::webhook::Webhook;
use chat_sync::sync::{FlushOutcome, FlushReport};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the bench sweeps by default.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// chat-sync as it is: one flusher, batched writes, the shared rate budget, fencing.
    ChatSync,
    /// The previous design (see `previous`).
    Previous,
    /// The original tutorial: GET, append, PATCH on every webhook.
    Baseline,
}

impl Design {
    pub fn name(self) -> &'static str {
        match self {
            Design::ChatSync => "chat-sync",
            Design::Previous => "previous design",
            Design::Baseline => "baseline (tutorial)",
        }
    }
}

/// A design running against a world. Dropping it stops its sweeper.
pub struct Deployment {
    pub router: axum::Router,
    /// Webhook invocations, each until its work after the response ended.
    pub webhooks: Arc<Invocations>,
    /// Sweeper runs and how long each took.
    pub sweeps: Arc<Invocations>,
    /// HubSpot writes the sweeper sent.
    pub sweeper_writes: Arc<AtomicU32>,
    /// Whether the design writes timeline notes too (then they are checked like the property).
    pub notes: bool,
    /// chat-sync's flusher runs (webhooks' and sweeps'), added up: rounds, contacts, where the time went.
    pub flushes: Arc<Mutex<FlushReport>>,
    /// How often its sweeper runs.
    pub sweep_every: Duration,
    sweeper: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some(sweeper) = self.sweeper.take() {
            sweeper.abort();
        }
    }
}

/// chat-sync's webhook as `serve` runs it (answer, then flush in a task), timing each invocation to the end of
/// its flush: on Lambda the internal extension keeps the environment, and the bill, running until then.
struct TimedWebhook {
    webhook: Arc<Webhook>,
    invocations: Arc<Invocations>,
    flushes: Arc<Mutex<FlushReport>>,
}

fn add_flush(flushes: &Mutex<FlushReport>, report: &FlushReport) {
    flushes
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .add(report);
}

#[async_trait::async_trait]
impl HttpHandler for TimedWebhook {
    async fn call(
        &self,
        request: lambda_http::Request,
    ) -> lambda_http::Response<lambda_http::Body> {
        let received = Instant::now();
        let (response, flush) = self.webhook.receive(request).await;
        match flush {
            Some(flush) => {
                let (invocations, flushes) = (self.invocations.clone(), self.flushes.clone());
                tokio::spawn(async move {
                    if let Some(FlushOutcome::Flushed(report)) = flushing(flush.run()).await {
                        add_flush(&flushes, &report);
                    }
                    invocations.record(received.elapsed());
                });
            }
            None => self.invocations.record(received.elapsed()),
        }
        response
    }
}

/// Runs `sweep` every `every`, one at a time, timing each.
fn sweeping<F, Fut>(
    every: Duration,
    sweeps: Arc<Invocations>,
    sweep: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            sweeps.begin();
            let started = Instant::now();
            flushing(sweep()).await;
            sweeps.finish(started.elapsed());
        }
    })
}

pub fn deploy(design: Design, world: &World, sweep_every: Duration) -> Result<Deployment, String> {
    let webhooks = Arc::new(Invocations::default());
    let sweeps = Arc::new(Invocations::default());
    let sweeper_writes = Arc::new(AtomicU32::new(0));
    let flushes = Arc::new(Mutex::new(FlushReport::default()));
    let mut notes = false;
    let (handler, sweeper): (Arc<dyn HttpHandler>, _) = match design {
        Design::ChatSync => {
            // The world's app: production defaults, tuned by the same variables as the Lambdas (FLUSH_LINGER_MS, ...).
            notes = FlushSettings::load(&Env::from_process())
                .map_err(|e| e.to_string())?
                .targets
                .notes;
            let webhook = world.app.webhook().map_err(|e| e.to_string())?;
            let sweeper = world.app.sweeper().map_err(|e| e.to_string())?;
            let (writes, swept) = (sweeper_writes.clone(), flushes.clone());
            let sweeping = sweeping(sweep_every, sweeps.clone(), move || {
                let (sweeper, writes, swept) = (sweeper.clone(), writes.clone(), swept.clone());
                async move {
                    if let Ok(report) = sweeper.sweep().await {
                        writes.fetch_add(report.flush.calls, Ordering::Relaxed);
                        add_flush(&swept, &report.flush);
                    }
                }
            });
            let handler = TimedWebhook {
                webhook,
                invocations: webhooks.clone(),
                flushes: flushes.clone(),
            };
            (Arc::new(handler) as Arc<dyn HttpHandler>, Some(sweeping))
        }
        Design::Previous => {
            let previous = Arc::new(Previous::new(
                world.store.clone(),
                world.hubspot.base_url(),
                (HUBSPOT_TOKEN, STREAM_SECRET),
                webhooks.clone(),
                sweeper_writes.clone(),
            ));
            let sweeper = previous.clone();
            let sweeping = sweeping(sweep_every, sweeps.clone(), move || {
                let sweeper = sweeper.clone();
                async move { sweeper.sweep().await }
            });
            (Arc::new(previous) as Arc<dyn HttpHandler>, Some(sweeping))
        }
        Design::Baseline => {
            let baseline = Baseline {
                store: world.store.clone(),
                http: reqwest::Client::new(),
                hubspot_url: world.hubspot.base_url(),
                token: HUBSPOT_TOKEN.to_owned(),
            };
            (Arc::new(baseline) as Arc<dyn HttpHandler>, None)
        }
    };
    Ok(Deployment {
        router: axum::Router::new().route("/webhooks", route(handler)),
        webhooks,
        sweeps,
        sweeper_writes,
        notes,
        flushes,
        sweep_every,
        sweeper,
    })
}
