//! Benchmarks against DynamoDB Local and the HubSpot/Stream doubles over real HTTP on loopback: the webhook burst
//! (ours vs. the original tutorial's read-append-write), registration latency, and cold starts of the release
//! binaries. Figures are printed as a Markdown table for the README.

pub mod baseline;
pub mod burst;
pub mod cold_start;
pub mod registration;
pub mod world;

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
