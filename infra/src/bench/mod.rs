//! Benchmarks against DynamoDB Local and the HubSpot/Stream doubles over real HTTP on loopback: a busy support desk
//! (sync lag under HubSpot's rate limit), the webhook burst and late writes (chat-sync vs. the previous design vs.
//! the original tutorial's read-append-write), what a flush costs as history grows, what retention costs,
//! registration latency, and cold starts of the release binaries. Figures are printed as Markdown tables for
//! docs/benchmarks.md.

pub mod baseline;
pub mod burst;
pub mod busy_desk;
pub mod cold_start;
pub mod design;
pub mod floor;
pub mod flush_cost;
pub mod late_writes;
pub mod meter;
pub mod options;
pub mod previous;
pub mod probe;
pub mod registration;
pub mod retention;
pub mod world;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Percentile of sorted durations (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1_000.0)
}

pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// A Markdown table: a header row, then one row per entry.
pub fn markdown(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

/// Invocations of one function and the time they kept it busy (for Lambda, what is billed: the handler and any
/// work after the response), summed.
#[derive(Debug, Default)]
pub struct Invocations {
    count: AtomicU64,
    micros: AtomicU64,
    /// Begun ([`Invocations::begin`]) and not recorded yet.
    running: AtomicU64,
}

impl Invocations {
    pub fn record(&self, busy: Duration) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.micros
            .fetch_add(busy.as_micros() as u64, Ordering::Relaxed);
    }

    /// An invocation starts whose end [`Invocations::finish`] records: until then [`Invocations::settled`] waits.
    pub fn begin(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    /// Records an invocation [`Invocations::begin`] started.
    pub fn finish(&self, busy: Duration) {
        self.record(busy);
        self.running.fetch_sub(1, Ordering::Relaxed);
    }

    /// Waits up to `within` for every begun invocation to finish, so that figures taken next count what those
    /// did (a sweep writing the last notes when a run's figures are taken); false if one still runs.
    pub async fn settled(&self, within: Duration) -> bool {
        let give_up = std::time::Instant::now() + within;
        while self.running.load(Ordering::Relaxed) > 0 {
            if std::time::Instant::now() >= give_up {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn busy(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }

    pub fn mean(&self) -> Duration {
        self.busy()
            .checked_div(self.count().max(1) as u32)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Invocations;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn figures_wait_for_a_begun_invocation_to_finish() {
        let sweeps = Arc::new(Invocations::default());
        assert!(sweeps.settled(Duration::ZERO).await, "nothing begun");
        sweeps.begin();
        assert!(!sweeps.settled(Duration::from_millis(50)).await, "one runs");
        let running = sweeps.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            running.finish(Duration::from_millis(100));
        });
        assert!(sweeps.settled(Duration::from_secs(5)).await);
        assert_eq!(sweeps.count(), 1);
    }
}
