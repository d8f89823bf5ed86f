//! Latency fault tolerance (client.md §3.5, the 5.x tables): after each send attempt the
//! broker is marked unavailable for a while that grows with the attempt's latency; a failed
//! attempt counts as 10 s of latency. Queue selection then prefers available brokers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Latency thresholds, ms (5.x `latencyMax`).
const LATENCY_MAX_MS: [u64; 7] = [50, 100, 550, 1800, 3000, 5000, 15_000];
/// Isolation for each threshold, ms (5.x `notAvailableDuration`).
const NOT_AVAILABLE_MS: [u64; 7] = [0, 0, 2000, 5000, 6000, 10_000, 30_000];
/// Latency charged for a failed attempt, ms (5.x isolation latency).
pub(crate) const ISOLATION_LATENCY_MS: u64 = 10_000;

const _: () = assert!(LATENCY_MAX_MS.len() == NOT_AVAILABLE_MS.len());

/// Per-broker fault items.
#[derive(Debug, Default)]
pub(crate) struct LatencyFaultTolerance {
    items: Mutex<HashMap<String, FaultItem>>,
}

#[derive(Debug, Clone, Copy)]
struct FaultItem {
    available_from: Instant,
}

impl LatencyFaultTolerance {
    /// Records an attempt on `broker` that took `latency` (or failed, with `isolation`).
    pub(crate) fn update(&self, broker: &str, latency: Duration, isolation: bool) {
        let latency_ms = if isolation {
            ISOLATION_LATENCY_MS
        } else {
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)
        };
        let duration = Duration::from_millis(not_available_ms(latency_ms));
        let item = FaultItem { available_from: Instant::now() + duration };
        let mut items = self.items.lock();
        match items.get_mut(broker) {
            Some(existing) => *existing = item,
            None => {
                items.insert(broker.to_owned(), item);
            }
        }
    }

    /// True when `broker` has no fault item or its isolation is over.
    pub(crate) fn is_available(&self, broker: &str) -> bool {
        self.items.lock().get(broker).is_none_or(|item| Instant::now() >= item.available_from)
    }
}

/// The isolation, ms, for an attempt of `latency_ms`: the duration of the largest
/// threshold the latency reaches.
pub(crate) fn not_available_ms(latency_ms: u64) -> u64 {
    LATENCY_MAX_MS
        .iter()
        .zip(NOT_AVAILABLE_MS)
        .rev()
        .find(|(max, _)| latency_ms >= **max)
        .map_or(0, |(_, duration)| duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_grows_with_latency() {
        assert_eq!(not_available_ms(10), 0);
        assert_eq!(not_available_ms(100), 0);
        assert_eq!(not_available_ms(600), 2000);
        assert_eq!(not_available_ms(ISOLATION_LATENCY_MS), 10_000);
        assert_eq!(not_available_ms(60_000), 30_000);
    }

    #[test]
    fn failed_broker_is_unavailable_then_fast_one_is_available() {
        let faults = LatencyFaultTolerance::default();
        assert!(faults.is_available("a"));
        faults.update("a", Duration::from_millis(5), true);
        assert!(!faults.is_available("a"));
        faults.update("a", Duration::from_millis(5), false);
        assert!(faults.is_available("a"));
    }
}
