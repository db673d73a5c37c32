//! Capacity units every request of the store consumed, so that benchmarks can show what a flush costs.

use aws_sdk_dynamodb::types::ConsumedCapacity;
use std::sync::atomic::{AtomicU64, Ordering};

/// Capacity units every request of this store consumed (DynamoDB reports them with `ReturnConsumedCapacity`;
/// DynamoDB Local too), so benchmarks can show what a flush costs.
#[derive(Debug, Default)]
pub struct Consumed {
    /// Thousandths of a unit, so half units add up exactly.
    read_milli: AtomicU64,
    write_milli: AtomicU64,
}

/// Read and write capacity units.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    pub read: f64,
    pub write: f64,
}

impl std::ops::Sub for Units {
    type Output = Units;
    fn sub(self, other: Units) -> Units {
        Units {
            read: self.read - other.read,
            write: self.write - other.write,
        }
    }
}

impl Consumed {
    pub(super) fn add(&self, capacity: Option<&ConsumedCapacity>) {
        let Some(capacity) = capacity else { return };
        let milli = |units: Option<f64>| (units.unwrap_or(0.0) * 1000.0).round() as u64;
        // A request reports read and write units, or (older emulators) only their total as one kind.
        let (read, write) = match (
            capacity.read_capacity_units(),
            capacity.write_capacity_units(),
        ) {
            (None, None) => (capacity.capacity_units(), None),
            (read, write) => (read, write),
        };
        self.read_milli.fetch_add(milli(read), Ordering::Relaxed);
        self.write_milli.fetch_add(milli(write), Ordering::Relaxed);
    }

    pub(super) fn add_all(&self, capacities: &[ConsumedCapacity]) {
        for capacity in capacities {
            self.add(Some(capacity));
        }
    }

    pub(super) fn units(&self) -> Units {
        Units {
            read: self.read_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            write: self.write_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}
