//! A fixed-size log-linear latency histogram: recording is an index computation and one
//! increment, with no allocation, so it can sit inside the put loop.
//!
//! Values below 64 get a bucket each. Above, each power of two is split into 32 linear
//! sub-buckets, so a reported percentile is at most 1/32 (about 3%) above the true value.

/// Linear sub-buckets per power of two: `2^SUB_BITS`.
const SUB_BITS: u32 = 5;
const SUB_COUNT: usize = 1 << SUB_BITS;
/// Values below this get exact buckets.
const EXACT_LIMIT: u64 = 2 << SUB_BITS;
/// Buckets needed for every `u64`: the 64 exact ones, then 32 for each exponent
/// `SUB_BITS + 1 ..= 63`.
const BUCKET_COUNT: usize = (65 - SUB_BITS as usize) * SUB_COUNT;
const _: () = assert!(BUCKET_COUNT == 1920);

/// Counts of values (nanoseconds here) in log-linear buckets, plus the exact maximum.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Box<[u64; BUCKET_COUNT]>,
    total: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram").field("total", &self.total).field("max", &self.max).finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: Box::new([0; BUCKET_COUNT]), total: 0, max: 0 }
    }
}

impl Histogram {
    /// Counts one value.
    pub(crate) fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    /// Adds every count of `other`.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded (exact).
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0.0..=1.0): the upper bound of the bucket holding the
    /// `ceil(q × count)`-th smallest value, never above the exact maximum. 0 when empty.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_high(index).min(self.max);
            }
        }
        self.max
    }
}

/// The bucket of `value`.
fn bucket_of(value: u64) -> usize {
    if value < EXACT_LIMIT {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros(); // >= SUB_BITS + 1
    let shift = exponent - SUB_BITS;
    let mantissa = (value >> shift) as usize; // in SUB_COUNT..2 * SUB_COUNT
    (shift as usize) * SUB_COUNT + mantissa
}

/// The largest value that falls in bucket `index`.
fn bucket_high(index: usize) -> u64 {
    if index < EXACT_LIMIT as usize {
        return index as u64;
    }
    let shift = (index / SUB_COUNT - 1) as u32;
    let mantissa = (index % SUB_COUNT + SUB_COUNT) as u64;
    // Low end plus width minus one: the top bucket ends at u64::MAX without overflowing.
    (mantissa << shift) + ((1u64 << shift) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_bound_their_values() {
        let mut previous = 0;
        for value in 0..200_000u64 {
            let index = bucket_of(value);
            assert!(index >= previous, "buckets must not go backwards at {value}");
            assert!(bucket_high(index) >= value, "bucket {index} high below {value}");
            if index > 0 {
                assert!(bucket_high(index - 1) < value, "value {value} belongs lower");
            }
            previous = index;
        }
        for value in [u64::MAX / 3, u64::MAX - 1, u64::MAX] {
            assert!(bucket_high(bucket_of(value)) >= value, "{value}");
        }
        assert_eq!(bucket_of(u64::MAX), BUCKET_COUNT - 1);
    }

    #[test]
    fn quantiles_are_within_three_percent() {
        let mut histogram = Histogram::default();
        for value in 1..=100_000u64 {
            histogram.record(value);
        }
        let p50 = histogram.quantile(0.5) as f64;
        assert!((50_000.0..=50_000.0 * 1.04).contains(&p50), "p50={p50}");
        let p99 = histogram.quantile(0.99) as f64;
        assert!((99_000.0..=99_000.0 * 1.04).contains(&p99), "p99={p99}");
        assert_eq!(histogram.quantile(1.0), 100_000);
        assert_eq!(histogram.max(), 100_000);

        let mut other = Histogram::default();
        other.record(7);
        histogram.merge(&other);
        assert_eq!(histogram.count(), 100_001);
        assert_eq!(histogram.quantile(0.0), 1);
    }
}
