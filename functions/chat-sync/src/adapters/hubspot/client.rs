//! The transport: every request takes a permit from the shared rate budget first, carries the token, gets the time
//! left before its deadline, and reports what HubSpot said about the limit.

use super::SERVICE;
use crate::adapters::backoff::Backoff;
use crate::adapters::http::exchange;
use crate::ports::{BudgetError, Caller, Permit, RateBudget, RateSignal, UpstreamError};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest a registration waits for a permit of the rate budget.
const REGISTRATION_PERMIT_WAIT: Duration = Duration::from_secs(3);

/// HubSpot's rolling window when an answer does not say.
const DEFAULT_WINDOW: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct HubSpotClient {
    pub(super) http: reqwest::Client,
    pub(super) base_url: String,
    pub(super) token: SecretString,
    pub(super) per_attempt: Duration,
    pub(super) backoff: Backoff,
    pub(super) budget: Arc<dyn RateBudget>,
}

impl HubSpotClient {
    /// A client whose every request takes a permit from `budget` first, on the shared `http` client
    /// (`adapters::http::client`).
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        access_token: SecretString,
        budget: Arc<dyn RateBudget>,
    ) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: access_token,
            per_attempt: Duration::from_secs(3),
            backoff: Backoff::new(4, Duration::from_millis(250), Duration::from_secs(2)),
            budget,
        }
    }

    /// The absolute URL of a path made by [`objects`], [`properties`] or [`associations`].
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends one request with the time left before `deadline`, once the budget grants a permit, and maps failures.
    pub(super) async fn send(
        &self,
        request: reqwest::RequestBuilder,
        caller: Caller,
        deadline: Instant,
    ) -> Result<Value, UpstreamError> {
        // A person is waiting on a registration: it waits for a permit only as long as a person would, not for a
        // rate-limited window to pass (it answers 502 `upstream_rate_limited` and the widget says to try again).
        let permit_by = match caller {
            Caller::Registration => deadline.min(Instant::now() + REGISTRATION_PERMIT_WAIT),
            Caller::Background => deadline,
        };
        let permit = self
            .budget
            .acquire(caller, permit_by)
            .await
            .map_err(budget_error)?;
        self.send_with(permit, request, deadline).await
    }

    /// Sends one request under a permit already granted.
    pub(super) async fn send_with(
        &self,
        _permit: Permit,
        request: reqwest::RequestBuilder,
        deadline: Instant,
    ) -> Result<Value, UpstreamError> {
        let request = request.bearer_auth(self.token.expose_secret());
        let answer = exchange(SERVICE, request, deadline, self.per_attempt, rate_limit).await;
        if let Some(signal) = signal(answer.headers.as_ref(), &answer.result) {
            self.budget.observe(signal).await;
        }
        answer.result
    }
}

/// No permit: to the caller, the same as a 429 (nothing was sent).
pub fn budget_error(error: BudgetError) -> UpstreamError {
    match error {
        BudgetError::Exhausted { wait, daily } => UpstreamError::RateLimited {
            service: SERVICE,
            retry_after: Some(wait),
            daily,
        },
        BudgetError::Storage(error) => UpstreamError::Unavailable {
            service: SERVICE,
            detail: format!("the rate budget could not be read: {error}"),
        },
    }
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn window(headers: Option<&HeaderMap>) -> Duration {
    headers
        .and_then(|h| header_number(h, "x-hubspot-ratelimit-interval-milliseconds"))
        .filter(|ms| (1_000..=86_400_000).contains(ms))
        .map_or(DEFAULT_WINDOW, Duration::from_millis)
}

/// HubSpot's 429: `policyName` says which limit was hit. The rolling window frees up only once it has passed (the
/// official client waits the whole window too); the daily quota does not free up today. Other policies (the search
/// API's per-second limit) free up within a second.
fn rate_limit(headers: &HeaderMap, body: &str) -> (Option<Duration>, bool) {
    let policy = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("policyName")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    match policy.as_str() {
        "DAILY" => (None, true),
        "TEN_SECONDLY_ROLLING" | "" => (Some(window(Some(headers))), false),
        _ => (Some(Duration::from_secs(1)), false),
    }
}

/// What an answer tells the shared budget.
fn signal(
    headers: Option<&HeaderMap>,
    result: &Result<Value, UpstreamError>,
) -> Option<RateSignal> {
    match result {
        Err(UpstreamError::RateLimited { daily: true, .. }) => Some(RateSignal::DailyExhausted),
        Err(UpstreamError::RateLimited { .. }) => Some(RateSignal::WindowExhausted {
            interval: window(headers),
        }),
        _ => {
            let headers = headers?;
            let remaining = header_number(headers, "x-hubspot-ratelimit-remaining")?;
            Some(RateSignal::Remaining {
                remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                max: header_number(headers, "x-hubspot-ratelimit-max")
                    .and_then(|m| u32::try_from(m).ok())
                    .unwrap_or(0),
                interval: window(Some(headers)),
            })
        }
    }
}
