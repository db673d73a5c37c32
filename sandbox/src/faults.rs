//! Fault injection shared by the doubles: latency, scripted failures, random failures and outage windows.
//!
//! Each double checks auth first, then asks [`Faults::decide`] whether to fail this request, then sleeps the
//! configured latency (so slow requests are really in flight), and only then runs its real logic.

use crate::support::lock;
use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Route name that matches every route of a double (e.g. `fail_until("*", ..)` for a full outage).
pub const ANY_ROUTE: &str = "*";

/// Cheaply cloneable handle to a double's fault settings; all clones share state.
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    latency: Duration,
    /// Per route: remaining scripted failures, each with its status, consumed in order.
    next: HashMap<String, Vec<(usize, u16)>>,
    rates: HashMap<String, (f64, Vec<u16>)>,
    outages: HashMap<String, (Instant, u16)>,
}

impl Faults {
    /// Adds `d` before every response (including injected failures).
    pub fn set_latency(&self, d: Duration) {
        lock(&self.inner).latency = d;
    }

    /// The next `n` requests to `route` answer `status` (queued after any failures already scripted).
    pub fn fail_next(&self, route: &str, n: usize, status: u16) {
        if n > 0 {
            lock(&self.inner)
                .next
                .entry(route.to_owned())
                .or_default()
                .push((n, status));
        }
    }

    /// Each request to `route` fails with probability `rate` (clamped to 0..=1), with a status picked at random.
    pub fn set_failure_rate(&self, route: &str, rate: f64, statuses: Vec<u16>) {
        let mut state = lock(&self.inner);
        if rate <= 0.0 || statuses.is_empty() {
            state.rates.remove(route);
        } else {
            state
                .rates
                .insert(route.to_owned(), (rate.min(1.0), statuses));
        }
    }

    /// Every request to `route` answers `status` until `until` (an outage window).
    pub fn fail_until(&self, route: &str, until: Instant, status: u16) {
        lock(&self.inner)
            .outages
            .insert(route.to_owned(), (until, status));
    }

    /// Removes every fault, including latency.
    pub fn clear(&self) {
        *lock(&self.inner) = State::default();
    }

    /// The latency currently configured.
    pub fn latency(&self) -> Duration {
        lock(&self.inner).latency
    }

    /// Decides whether this request to `route` fails, consuming a scripted failure if one applies.
    /// Precedence: outage window, then scripted `fail_next`, then the random failure rate.
    pub fn decide(&self, route: &str) -> Option<u16> {
        let mut state = lock(&self.inner);
        let now = Instant::now();
        for key in [route, ANY_ROUTE] {
            if let Some(&(until, status)) = state.outages.get(key) {
                if now < until {
                    return Some(status);
                }
                state.outages.remove(key);
            }
        }
        for key in [route, ANY_ROUTE] {
            if let Some(queue) = state.next.get_mut(key) {
                if let Some(first) = queue.first_mut() {
                    let status = first.1;
                    first.0 -= 1;
                    if first.0 == 0 {
                        queue.remove(0);
                    }
                    if queue.is_empty() {
                        state.next.remove(key);
                    }
                    return Some(status);
                }
            }
        }
        for key in [route, ANY_ROUTE] {
            if let Some((rate, statuses)) = state.rates.get(key) {
                let mut rng = rand::rng();
                if rng.random_bool(*rate) {
                    return Some(statuses[rng.random_range(0..statuses.len())]);
                }
            }
        }
        None
    }

    /// Sleeps the configured latency.
    pub async fn delay(&self) {
        let latency = self.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_is_consumed_in_order() {
        let faults = Faults::default();
        faults.fail_next("a", 2, 429);
        faults.fail_next("a", 1, 500);
        assert_eq!(faults.decide("b"), None);
        assert_eq!(faults.decide("a"), Some(429));
        assert_eq!(faults.decide("a"), Some(429));
        assert_eq!(faults.decide("a"), Some(500));
        assert_eq!(faults.decide("a"), None);
    }

    #[test]
    fn outage_window_and_any_route() {
        let faults = Faults::default();
        faults.fail_until(ANY_ROUTE, Instant::now() + Duration::from_secs(60), 503);
        assert_eq!(faults.decide("x"), Some(503));
        faults.fail_until(ANY_ROUTE, Instant::now(), 503);
        assert_eq!(faults.decide("x"), None);
    }

    #[test]
    fn failure_rate_one_always_fails_and_clear_resets() {
        let faults = Faults::default();
        faults.set_failure_rate("a", 1.0, vec![502]);
        faults.set_latency(Duration::from_millis(5));
        assert_eq!(faults.decide("a"), Some(502));
        faults.clear();
        assert_eq!(faults.decide("a"), None);
        assert_eq!(faults.latency(), Duration::ZERO);
    }
}
