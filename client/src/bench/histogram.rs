//! A lock-free latency histogram: log-linear buckets over microseconds (128 linear buckets,
//! then 64 per power of two — under 1.6% relative error), shared by every sender.

use std::sync::atomic::{AtomicU64, Ordering};

/// Values below this are counted exactly.
const LINEAR: u64 = 128;
/// Sub-buckets per power of two above the linear range.
const SUB_BUCKETS: u64 = 64;
/// Powers of two covered above the linear range (up to 2^63 µs).
const POWERS: u64 = 57;
const BUCKETS: usize = (LINEAR + POWERS * SUB_BUCKETS) as usize;

/// Concurrent histogram of microsecond latencies.
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

fn index_of(micros: u64) -> usize {
    if micros < LINEAR {
        return micros as usize;
    }
    let bits = 64 - u64::from(micros.leading_zeros());
    let shift = bits - 7;
    let sub = (micros >> shift) - SUB_BUCKETS;
    ((LINEAR + (shift - 1) * SUB_BUCKETS + sub) as usize).min(BUCKETS - 1)
}

/// The largest value of bucket `index`.
fn upper_bound(index: usize) -> u64 {
    let index = index as u64;
    if index < LINEAR {
        return index;
    }
    let shift = (index - LINEAR) / SUB_BUCKETS + 1;
    let sub = (index - LINEAR) % SUB_BUCKETS + SUB_BUCKETS;
    ((sub + 1) << shift) - 1
}

impl Histogram {
    /// Records one value.
    pub fn record(&self, micros: u64) {
        if let Some(bucket) = self.buckets.get(index_of(micros)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(micros, Ordering::Relaxed);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The largest value recorded.
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// The value at quantile `q` (0.0..=1.0), as its bucket's upper bound (capped by the
    /// maximum); 0 when empty.
    pub fn percentile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return upper_bound(index).min(self.max());
            }
        }
        self.max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for value in (0..100_000u64).chain([1 << 20, 1 << 30, u64::MAX / 4]) {
            let index = index_of(value);
            assert!(index >= last || value < 100_000, "monotonic at {value}");
            assert!(upper_bound(index) >= value, "bound of {value}");
            assert!(upper_bound(index) as f64 <= value as f64 * 1.016 + 1.0, "error at {value}");
            last = index;
        }
    }

    #[test]
    fn percentiles() {
        let histogram = Histogram::default();
        assert_eq!(histogram.percentile(0.5), 0);
        for value in 1..=1000 {
            histogram.record(value);
        }
        assert_eq!(histogram.count(), 1000);
        assert_eq!(histogram.max(), 1000);
        let p50 = histogram.percentile(0.5);
        assert!((500..=508).contains(&p50), "{p50}");
        let p99 = histogram.percentile(0.99);
        assert!((990..=1000).contains(&p99), "{p99}");
        assert_eq!(histogram.percentile(1.0), 1000);
    }
}
