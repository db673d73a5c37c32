//! One HubSpot rate budget for the whole app, whatever runs at the moment (registration, webhook flushes, the
//! sweeper, several Lambda instances of each).
//!
//! HubSpot allows an app `N` requests per rolling window (100 per 10 s on Free/Starter) and counts every request,
//! refused ones too: callers that each retry 429s on their own hammer the limit instead of sharing it. So every
//! HubSpot request first takes a permit from one budget, held in DynamoDB and taken with conditional writes.
//!
//! The budget is a GCRA (the "virtual scheduling" form of a token bucket): one number, the theoretical arrival
//! time `tat`, advances by the emission interval `T` per permit; a permit is granted while `tat` stays within a
//! tolerance of now. Over any window `W` it grants at most `burst + W / T` permits, and the plan sizes both so that
//! this stays under HubSpot's limit with headroom — a plain token bucket of capacity `N` would allow up to `2N` in
//! one rolling window.
//!
//! Registration is user-facing: a few permits of the burst are reserved for it (background callers get a smaller
//! tolerance), and registrations also take from a cap of their own at half the sustained rate, so a flood of
//! registrations cannot starve transcript writes either.
//!
//! HubSpot's answers tighten the budget: `X-HubSpot-RateLimit-Remaining` below our own view (another client of
//! the same app, or a lower plan), a `TEN_SECONDLY_ROLLING` 429 (no permits until the window has passed), a `DAILY`
//! 429 (none until the quota resets at midnight).

use crate::ports::{BudgetError, Caller, Permit, RateBudget, RateSignal};
use std::fmt;
use std::time::Duration;

/// Share of HubSpot's limit we never use: other tools of the same app, clock skew between the two windows.
const HEADROOM_PERCENT: u32 = 10;

/// `HUBSPOT_RATE_LIMIT`: requests per rolling window, as `<count>/<seconds>` (or just `<count>`, per 10 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub window: Duration,
}

impl RateLimit {
    /// HubSpot Free/Starter: 100 requests per 10 s.
    pub const HUBSPOT_DEFAULT: RateLimit = RateLimit {
        count: 100,
        window: Duration::from_secs(10),
    };

    pub fn parse(raw: &str) -> Result<Self, String> {
        let (count, seconds) = match raw.split_once('/') {
            Some((count, seconds)) => (count.trim(), seconds.trim()),
            None => (raw.trim(), "10"),
        };
        let count: u32 = count
            .parse()
            .map_err(|_| format!("must be <count>/<seconds> (e.g. 100/10), got {raw:?}"))?;
        let seconds: u64 = seconds
            .parse()
            .map_err(|_| format!("must be <count>/<seconds> (e.g. 100/10), got {raw:?}"))?;
        if !(10..=100_000).contains(&count) || !(1..=86_400).contains(&seconds) {
            return Err("needs a count of 10 to 100000 per 1 to 86400 seconds".into());
        }
        Ok(Self {
            count,
            window: Duration::from_secs(seconds),
        })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.window.as_secs())
    }
}

/// The numbers the budget runs on, derived from the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetPlan {
    pub limit: RateLimit,
    /// Permits that may be taken at once after a quiet spell.
    pub burst: u32,
    /// Of the burst, permits only registrations may take.
    pub reserve: u32,
    /// Emission interval `T`, in milliseconds: the sustained rate is one permit per `T`.
    pub emission_ms: i64,
    /// Registrations' own cap: one permit per this many milliseconds at most, sustained.
    pub registration_emission_ms: i64,
}

impl BudgetPlan {
    pub fn new(limit: RateLimit) -> Self {
        let usable = limit.count - (limit.count * HEADROOM_PERCENT).div_ceil(100);
        let burst = (usable / 10).max(2);
        let sustained = (usable - burst).max(1);
        let window_ms = limit.window.as_millis() as i64;
        // Rounded up, so `burst + window / T` never exceeds `usable`.
        let emission_ms = (window_ms + i64::from(sustained) - 1) / i64::from(sustained);
        Self {
            limit,
            burst,
            reserve: (burst / 5).max(1),
            emission_ms,
            registration_emission_ms: emission_ms * 2,
        }
    }

    /// The most permits this plan grants in any one window of the limit's length.
    pub fn max_per_window(&self) -> u32 {
        self.burst + (self.limit.window.as_millis() as i64 / self.emission_ms) as u32
    }

    /// How far ahead of now `tat` may run before this caller must wait.
    pub fn tolerance_ms(&self, caller: Caller) -> i64 {
        let usable = match caller {
            Caller::Registration => self.burst,
            Caller::Background => self.burst - self.reserve,
        };
        i64::from(usable.saturating_sub(1)) * self.emission_ms
    }

    /// The earliest `tat` after HubSpot said only `remaining` requests are left in its window: then we grant at
    /// most that many before the next emission.
    pub fn tat_for_remaining(&self, remaining: u32, now_ms: i64) -> i64 {
        now_ms + self.tolerance_ms(Caller::Registration)
            - (i64::from(remaining) - 1) * self.emission_ms
    }

    /// The earliest `tat` after a rolling-window 429: no permit until the window has passed.
    pub fn tat_after_window(&self, window: Duration, now_ms: i64) -> i64 {
        now_ms + window.as_millis() as i64 + self.tolerance_ms(Caller::Registration)
    }

    /// The earliest `tat` until `until_ms` (the daily quota's reset).
    pub fn tat_until(&self, until_ms: i64) -> i64 {
        until_ms + self.tolerance_ms(Caller::Registration)
    }

    /// Whether an answer's `Remaining` is worth writing down: only when HubSpot sees less room than a full burst
    /// (so a healthy answer costs no DynamoDB write).
    pub fn is_tight(&self, remaining: u32) -> bool {
        remaining < self.burst
    }
}

/// One GCRA step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Granted: store `tat` (conditionally on the value read).
    Grant { tat: i64 },
    /// Not before `wait_ms` from now.
    Wait { wait_ms: i64 },
}

/// Decides one permit: `tat` as stored (`None`: never used), `emission_ms` and `tolerance_ms` for the caller.
pub fn decide(tat: Option<i64>, now_ms: i64, emission_ms: i64, tolerance_ms: i64) -> Decision {
    let tat = tat.unwrap_or(now_ms).max(now_ms);
    if tat - now_ms <= tolerance_ms {
        Decision::Grant {
            tat: tat + emission_ms,
        }
    } else {
        Decision::Wait {
            wait_ms: tat - now_ms - tolerance_ms,
        }
    }
}

/// Milliseconds since the epoch of the next midnight UTC after `now_ms` (HubSpot resets daily quotas at midnight
/// in the account's time zone; UTC midnight plus a day at most is what we can know without asking).
pub fn next_midnight_ms(now_ms: i64) -> i64 {
    const DAY: i64 = 86_400_000;
    (now_ms.div_euclid(DAY) + 1) * DAY
}

/// A budget held by this process alone, on the same plan: for operator commands run by hand (`setup`), which
/// make a handful of requests and may run where there is no table to share a budget through.
#[derive(Debug)]
pub struct ProcessBudget {
    plan: BudgetPlan,
    tat: std::sync::Mutex<Option<i64>>,
}

impl ProcessBudget {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            plan: BudgetPlan::new(limit),
            tat: std::sync::Mutex::new(None),
        }
    }
}

fn now_ms() -> i64 {
    crate::domain::Timestamp::now().unix_millis()
}

#[async_trait::async_trait]
impl RateBudget for ProcessBudget {
    async fn acquire(
        &self,
        caller: Caller,
        deadline: std::time::Instant,
    ) -> Result<Permit, BudgetError> {
        loop {
            let decision = {
                let mut tat = self.tat.lock().unwrap_or_else(|p| p.into_inner());
                let decision = decide(
                    *tat,
                    now_ms(),
                    self.plan.emission_ms,
                    self.plan.tolerance_ms(caller),
                );
                if let Decision::Grant { tat: next } = decision {
                    *tat = Some(next);
                }
                decision
            };
            match decision {
                Decision::Grant { .. } => return Ok(Permit::granted()),
                Decision::Wait { wait_ms } => {
                    let wait = Duration::from_millis(wait_ms.max(1) as u64);
                    if std::time::Instant::now() + wait > deadline {
                        return Err(BudgetError::Exhausted { wait, daily: false });
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn observe(&self, signal: RateSignal) {
        let now = now_ms();
        let floor = match signal {
            RateSignal::Remaining { remaining, .. } if self.plan.is_tight(remaining) => {
                self.plan.tat_for_remaining(remaining, now)
            }
            RateSignal::Remaining { .. } => return,
            RateSignal::WindowExhausted { interval } => self.plan.tat_after_window(interval, now),
            RateSignal::DailyExhausted => self.plan.tat_until(next_midnight_ms(now)),
        };
        let mut tat = self.tat.lock().unwrap_or_else(|p| p.into_inner());
        *tat = Some(tat.unwrap_or(floor).max(floor));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_plan_stays_under_hubspots_limit_with_headroom() {
        let plan = BudgetPlan::new(RateLimit::HUBSPOT_DEFAULT);
        assert_eq!(plan.burst, 9);
        assert!(plan.max_per_window() <= 90, "{plan:?}");
        assert!(plan.max_per_window() >= 85, "not wasteful: {plan:?}");
        assert!(plan.tolerance_ms(Caller::Background) < plan.tolerance_ms(Caller::Registration));
        let pro = BudgetPlan::new(RateLimit::parse("190/10").expect("valid"));
        assert!(pro.max_per_window() <= 171, "{pro:?}");
    }

    #[test]
    fn limits_parse_or_say_why() {
        assert_eq!(
            RateLimit::parse("100").expect("count only"),
            RateLimit::HUBSPOT_DEFAULT
        );
        assert_eq!(
            RateLimit::parse(" 190 / 10 ").expect("spaces").to_string(),
            "190/10"
        );
        for bad in ["", "fast", "100/", "0/10", "5/10", "100/0", "-1/10"] {
            assert!(RateLimit::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quiet_budget_grants_a_burst_then_one_per_emission() {
        let plan = BudgetPlan::new(RateLimit::HUBSPOT_DEFAULT);
        let tolerance = plan.tolerance_ms(Caller::Registration);
        let mut tat = None;
        let mut granted = 0;
        while let Decision::Grant { tat: next } = decide(tat, 0, plan.emission_ms, tolerance) {
            tat = Some(next);
            granted += 1;
        }
        assert_eq!(granted, plan.burst);
        assert_eq!(
            decide(tat, 0, plan.emission_ms, tolerance),
            Decision::Wait {
                wait_ms: plan.emission_ms
            }
        );
    }

    #[test]
    fn hubspot_signals_push_the_budget_back() {
        let plan = BudgetPlan::new(RateLimit::HUBSPOT_DEFAULT);
        let now = 1_000_000;
        let full = plan.tolerance_ms(Caller::Registration);
        // Remaining 2: exactly two permits now, for anyone.
        let mut tat = Some(plan.tat_for_remaining(2, now));
        let mut granted = 0;
        while let Decision::Grant { tat: next } = decide(tat, now, plan.emission_ms, full) {
            tat = Some(next);
            granted += 1;
        }
        assert_eq!(granted, 2);
        // A rolling-window 429: nothing for ten seconds.
        let tat = plan.tat_after_window(Duration::from_secs(10), now);
        let Decision::Wait { wait_ms } = decide(Some(tat), now, plan.emission_ms, full) else {
            panic!("granted during a blocked window");
        };
        assert_eq!(wait_ms, 10_000);
        assert_eq!(next_midnight_ms(86_400_000 * 3 + 5), 86_400_000 * 4);
    }

    proptest! {
        /// Whatever the arrival times and callers, no rolling window of the limit's length holds more grants than
        /// the plan's maximum, which stays under HubSpot's limit.
        #[test]
        fn no_window_exceeds_the_limit(
            count in 10u32..400,
            gaps in proptest::collection::vec((0i64..400, any::<bool>()), 1..600),
        ) {
            let plan = BudgetPlan::new(RateLimit { count, window: Duration::from_secs(10) });
            prop_assert!(plan.max_per_window() < count);
            let (mut now, mut tat, mut grants) = (0i64, None, Vec::new());
            for (gap, registration) in gaps {
                now += gap;
                let caller = if registration { Caller::Registration } else { Caller::Background };
                if let Decision::Grant { tat: next } =
                    decide(tat, now, plan.emission_ms, plan.tolerance_ms(caller))
                {
                    tat = Some(next);
                    grants.push(now);
                }
            }
            for (i, start) in grants.iter().enumerate() {
                let in_window = grants[i..].iter().take_while(|t| **t < start + 10_000).count();
                prop_assert!(in_window as u32 <= plan.max_per_window(), "{in_window} in one window");
            }
        }
    }
}
