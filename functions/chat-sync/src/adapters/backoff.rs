//! One retry schedule for every upstream call: exponential with full jitter, capped, bounded by a deadline.

use crate::ports::UpstreamError;
use rand::Rng;
use std::future::Future;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub const fn new(max_attempts: u32, base: Duration, cap: Duration) -> Self {
        Self {
            max_attempts,
            base,
            cap,
        }
    }

    /// Wait before attempt `attempt + 1` (attempt counts from 1). A wait the service asked for (Retry-After) wins
    /// over the schedule.
    pub fn delay(&self, attempt: u32, error: &UpstreamError) -> Duration {
        if let Some(asked) = error.retry_after() {
            return asked;
        }
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.cap);
        // Full jitter spreads retries of concurrent callers (many Lambdas hitting one rate limit).
        let millis = exp.as_millis().max(1) as u64;
        Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
    }

    /// The wait before the next attempt, or `None` if the error is final, attempts are used up, or the wait would
    /// overrun `deadline` (better to fail now than to sleep past the caller's budget).
    pub fn next_wait(
        &self,
        attempt: u32,
        error: &UpstreamError,
        deadline: Instant,
    ) -> Option<Duration> {
        if !error.is_retryable() || attempt >= self.max_attempts {
            return None;
        }
        let wait = self.delay(attempt, error);
        let remaining = deadline.saturating_duration_since(Instant::now());
        // Leave at least as long as the wait for the attempt itself.
        (wait * 2 < remaining).then_some(wait)
    }

    /// Runs `call` until it succeeds, fails for good, or the attempts or the deadline run out.
    pub async fn retry<T, F, Fut>(&self, deadline: Instant, mut call: F) -> Result<T, UpstreamError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let mut attempt = 1;
        loop {
            match call(attempt).await {
                Ok(value) => return Ok(value),
                Err(error) => match self.next_wait(attempt, &error, deadline) {
                    Some(wait) => {
                        tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, %error, "retrying upstream call");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    None => return Err(error),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable() -> UpstreamError {
        UpstreamError::Unavailable {
            service: "test",
            detail: "500".into(),
        }
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let backoff = Backoff::new(10, Duration::from_millis(100), Duration::from_millis(400));
        let first = backoff.delay(1, &unavailable());
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let late = backoff.delay(8, &unavailable());
        assert!(late >= Duration::from_millis(200) && late <= Duration::from_millis(400));
    }

    #[test]
    fn retry_after_wins_and_final_errors_stop() {
        let backoff = Backoff::new(5, Duration::from_millis(10), Duration::from_secs(1));
        let limited = UpstreamError::RateLimited {
            service: "test",
            retry_after: Some(Duration::from_millis(700)),
            daily: false,
        };
        assert_eq!(backoff.delay(1, &limited), Duration::from_millis(700));
        let far = Instant::now() + Duration::from_secs(10);
        assert!(backoff.next_wait(1, &limited, far).is_some());
        let near = Instant::now() + Duration::from_millis(500);
        assert!(
            backoff.next_wait(1, &limited, near).is_none(),
            "would overrun the deadline"
        );
        let daily = UpstreamError::RateLimited {
            service: "test",
            retry_after: None,
            daily: true,
        };
        assert!(backoff.next_wait(1, &daily, far).is_none());
        assert!(
            backoff.next_wait(5, &unavailable(), far).is_none(),
            "attempts used up"
        );
    }

    #[tokio::test]
    async fn retry_stops_after_success() {
        let backoff = Backoff::new(4, Duration::from_millis(1), Duration::from_millis(2));
        let deadline = Instant::now() + Duration::from_secs(5);
        let result = backoff
            .retry(deadline, |attempt| async move {
                if attempt < 3 {
                    Err(unavailable())
                } else {
                    Ok(attempt)
                }
            })
            .await;
        assert_eq!(result.expect("third attempt succeeds"), 3);
    }
}
