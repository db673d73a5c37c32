//! HubSpot's per-app rate limits — a rolling ten-second window and a daily cap — and what the double saw of them.
//!
//! Invariant, as on the real API: every authenticated request counts, the ones the limiter refuses included, so a
//! client that keeps retrying into a 429 keeps the window full and stays refused. Clients must pace themselves;
//! [`Limits::peak`] lets tests prove they did, whether or not a limit is being enforced.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The rolling window HubSpot counts requests in.
pub(super) const WINDOW: Duration = Duration::from_secs(10);
/// The account the double pretends to be, for `groupName` in 429 bodies.
const PORTAL_ID: u32 = 1_234_567;

/// Which limit refused a request (`policyName` in the 429 body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Policy {
    TenSecondlyRolling,
    Daily,
}

impl Policy {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::TenSecondlyRolling => "TEN_SECONDLY_ROLLING",
            Self::Daily => "DAILY",
        }
    }

    pub(super) fn message(self) -> &'static str {
        match self {
            Self::TenSecondlyRolling => "You have reached your ten_secondly_rolling limit.",
            Self::Daily => "You have reached your daily limit.",
        }
    }

    pub(super) fn group_name(self) -> String {
        let policy = match self {
            Self::TenSecondlyRolling => "ten-secondly-rolling",
            Self::Daily => "daily",
        };
        format!("publicapi:private-app:{policy}:{PORTAL_ID}")
    }
}

/// The limiter's verdict on one request, and the headers its answer carries (whatever the answer is).
pub(super) struct Admission {
    pub(super) refused: Option<Policy>,
    pub(super) headers: Vec<(&'static str, u64)>,
}

#[derive(Default)]
pub(super) struct Limits {
    /// `None`: an "unlimited" test account, which answers without rate-limit headers.
    rolling_max: Option<u32>,
    /// Arrivals in the last [`WINDOW`] since the rolling limit was set.
    rolling: VecDeque<Instant>,
    daily_max: Option<u32>,
    /// Requests since the daily limit was set (there is no reset at midnight: tests are shorter than a day).
    daily_count: u64,
    /// Arrivals in the last [`WINDOW`] since start or [`Limits::forget`], limit or not: feeds `peak`.
    recent: VecDeque<Instant>,
    peak: usize,
    refused: usize,
}

impl Limits {
    pub(super) fn set_rolling(&mut self, max: Option<u32>) {
        self.rolling_max = max;
        self.rolling.clear();
    }

    pub(super) fn set_daily(&mut self, max: Option<u32>) {
        self.daily_max = max;
        self.daily_count = 0;
    }

    /// Forgets the observations (peak, refusals) but not the limiter's state: HubSpot does not forget either.
    pub(super) fn forget(&mut self) {
        self.recent.clear();
        self.peak = 0;
        self.refused = 0;
    }

    /// The most requests that arrived within one [`WINDOW`].
    pub(super) fn peak(&self) -> usize {
        self.peak
    }

    /// Requests the limiter (not fault injection) refused.
    pub(super) fn refused(&self) -> usize {
        self.refused
    }

    /// Counts one authenticated request arriving `now` and decides whether the limiter refuses it.
    /// The daily cap is checked first: once it is spent, waiting out the window does not help.
    pub(super) fn admit(&mut self, now: Instant) -> Admission {
        let recent = push(&mut self.recent, now);
        self.peak = self.peak.max(recent);
        let mut refused = None;
        let mut headers = Vec::new();
        if let Some(max) = self.daily_max {
            self.daily_count += 1;
            let max = u64::from(max);
            headers.push(("x-hubspot-ratelimit-daily", max));
            headers.push((
                "x-hubspot-ratelimit-daily-remaining",
                max.saturating_sub(self.daily_count),
            ));
            if self.daily_count > max {
                refused = Some(Policy::Daily);
            }
        }
        if let Some(max) = self.rolling_max {
            let in_window = u64::try_from(push(&mut self.rolling, now)).unwrap_or(u64::MAX);
            let max = u64::from(max);
            headers.push(("x-hubspot-ratelimit-max", max));
            headers.push((
                "x-hubspot-ratelimit-remaining",
                max.saturating_sub(in_window),
            ));
            headers.push((
                "x-hubspot-ratelimit-interval-milliseconds",
                u64::try_from(WINDOW.as_millis()).unwrap_or(u64::MAX),
            ));
            if refused.is_none() && in_window > max {
                refused = Some(Policy::TenSecondlyRolling);
            }
        }
        if refused.is_some() {
            self.refused += 1;
        }
        Admission { refused, headers }
    }
}

/// Adds an arrival to a rolling window, drops those older than [`WINDOW`], and returns how many remain.
fn push(window: &mut VecDeque<Instant>, now: Instant) -> usize {
    while window
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
    {
        window.pop_front();
    }
    window.push_back(now);
    window.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_requests_count_and_the_window_rolls() {
        let mut limits = Limits::default();
        limits.set_rolling(Some(2));
        let start = Instant::now();
        let verdicts: Vec<_> = (0..4).map(|_| limits.admit(start).refused).collect();
        assert_eq!(
            verdicts,
            [
                None,
                None,
                Some(Policy::TenSecondlyRolling),
                Some(Policy::TenSecondlyRolling)
            ]
        );
        assert_eq!((limits.peak(), limits.refused()), (4, 2));
        // Ten seconds after the burst the window is empty again.
        assert_eq!(limits.admit(start + WINDOW).refused, None);
        assert_eq!(limits.peak(), 4);
    }

    #[test]
    fn daily_cap_outranks_the_window_and_reports_its_headers() {
        let mut limits = Limits::default();
        limits.set_daily(Some(1));
        let now = Instant::now();
        let first = limits.admit(now);
        assert_eq!(first.refused, None);
        assert_eq!(
            first.headers,
            [
                ("x-hubspot-ratelimit-daily", 1),
                ("x-hubspot-ratelimit-daily-remaining", 0)
            ]
        );
        limits.set_rolling(Some(1));
        assert_eq!(limits.admit(now).refused, Some(Policy::Daily));
    }

    #[test]
    fn no_limit_means_no_headers_but_the_peak_is_still_measured() {
        let mut limits = Limits::default();
        let now = Instant::now();
        for _ in 0..3 {
            assert!(limits.admit(now).headers.is_empty());
        }
        assert_eq!((limits.peak(), limits.refused()), (3, 0));
        limits.forget();
        assert_eq!(limits.peak(), 0);
    }
}
