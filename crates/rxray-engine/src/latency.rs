//! Delivery-latency histograms: the bucket layout the kernel fills (bpf/include/rxray.h,
//! `struct rxray_lat_hist`) and the percentiles read from it.
//! Buckets are log2 with 4 linear sub-buckets per power of two, so a bucket is at most 25% wide and
//! a percentile reported at its bucket's middle is within 12.5% of the true value.

/// Buckets in a histogram (RXRAY_LAT_BUCKETS).
pub const BUCKETS: usize = 160;
const SUB: u64 = 4;

/// The bucket a value (ns) falls in, exactly as the kernel's `lat_bucket` computes it.
pub fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let o = 63 - v.leading_zeros() as u64; // floor(log2 v) >= 2
    let i = (o - 1) * SUB + ((v >> (o - 2)) & (SUB - 1));
    (i as usize).min(BUCKETS - 1)
}

/// The values bucket `i` holds: [lo, hi).
pub fn bucket_bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, i + 1);
    }
    let o = i / SUB + 1;
    let s = i % SUB;
    ((SUB + s) << (o - 2), (SUB + s + 1) << (o - 2))
}

/// One latency distribution (one stage of one flow or process), summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    pub count: u64,
    pub sum_ns: u64,
    pub max_ns: u64,
    pub buckets: Vec<u64>,
}

impl Histogram {
    /// Adds another CPU's (or entry's) counts.
    pub fn merge(&mut self, count: u64, sum_ns: u64, max_ns: u64, buckets: &[u32]) {
        if self.buckets.len() < buckets.len() {
            self.buckets.resize(buckets.len(), 0);
        }
        self.count += count;
        self.sum_ns += sum_ns;
        self.max_ns = self.max_ns.max(max_ns);
        for (a, b) in self.buckets.iter_mut().zip(buckets) {
            *a += u64::from(*b);
        }
    }

    /// Adds one value (ns).
    pub fn add(&mut self, v: u64) {
        if self.buckets.len() < BUCKETS {
            self.buckets.resize(BUCKETS, 0);
        }
        self.buckets[bucket_of(v)] += 1;
        self.count += 1;
        self.sum_ns += v;
        self.max_ns = self.max_ns.max(v);
    }

    /// Cumulative counts at each bound (ns, ascending), as a Prometheus histogram's buckets: the
    /// values whose bucket lies wholly at or below the bound (a bucket straddling a bound counts
    /// at the next one, so a count is low by at most one bucket's width, 1/4 of its octave).
    pub fn cumulative(&self, bounds_ns: &[u64]) -> Vec<u64> {
        bounds_ns.iter().map(|b| self.buckets.iter().enumerate().filter(|(i, _)| bucket_bounds(*i).1 - 1 <= *b).map(|(_, c)| c).sum()).collect()
    }

    /// The p-th percentile (0 < p <= 100) in ns: the middle of the bucket holding the ceil(p% of n)-th
    /// value, never more than the largest value seen. `None` for an empty histogram.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        let n: u64 = self.buckets.iter().sum();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil().clamp(1.0, n as f64) as u64;
        let mut cum = 0;
        for (i, c) in self.buckets.iter().enumerate() {
            cum += c;
            if cum >= rank {
                let (lo, hi) = bucket_bounds(i);
                let mid = if hi - lo <= 1 { lo } else { lo + (hi - lo) / 2 };
                return Some(if self.max_ns > 0 { mid.min(self.max_ns) } else { mid });
            }
        }
        Some(self.max_ns)
    }

    pub fn summary(&self) -> Summary {
        let ms = |v: Option<u64>| v.map(|x| x as f64 / 1e6);
        Summary {
            count: self.count,
            p50_ms: ms(self.percentile(50.0)),
            p90_ms: ms(self.percentile(90.0)),
            p99_ms: ms(self.percentile(99.0)),
            max_ms: ms((self.count > 0).then_some(self.max_ns)),
            mean_ms: ms((self.count > 0).then(|| self.sum_ns / self.count)),
        }
    }
}

/// What `rxray latency` prints for one stage: counts and percentiles in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_counts_are_exact_at_bucket_edges_and_never_above_the_truth() {
        let mut h = Histogram::default();
        let values = [3u64, 16, 1_000, 999_999, 1_000_000, 5_000_000, 250_000_000];
        for v in values {
            h.add(v);
        }
        assert_eq!((h.count, h.sum_ns, h.max_ns), (7, values.iter().sum(), 250_000_000));
        let bounds = [1_000_000u64, 10_000_000, 1_000_000_000];
        let c = h.cumulative(&bounds);
        for (b, got) in bounds.iter().zip(&c) {
            let truth = values.iter().filter(|v| **v <= *b).count() as u64;
            // Low only by the values in the bucket the bound falls inside.
            let straddling = values.iter().filter(|v| **v <= *b && bucket_of(**v) == bucket_of(*b)).count() as u64;
            assert!(*got <= truth && truth - got <= straddling, "at {b}: {got} of {truth}");
        }
        assert_eq!(c, [3, 6, 7]);
        // At a bucket's last value the count is exact.
        let edge = bucket_bounds(bucket_of(999_999)).0 - 1;
        assert_eq!(h.cumulative(&[edge]), [values.iter().filter(|v| **v <= edge).count() as u64]);
    }

    #[test]
    fn buckets_tile_the_values_and_are_at_most_a_quarter_wide() {
        let mut prev_hi = 0;
        for i in 0..BUCKETS {
            let (lo, hi) = bucket_bounds(i);
            assert_eq!(lo, prev_hi, "bucket {i} starts where {} ended", i.saturating_sub(1));
            assert!(hi > lo);
            if lo >= 4 {
                assert!((hi - lo) * 4 <= lo, "bucket {i} [{lo}, {hi}) is more than 25% wide");
            }
            assert_eq!(bucket_of(lo), i);
            assert_eq!(bucket_of(hi - 1), i);
            prev_hi = hi;
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_are_within_an_eighth_of_the_values() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut vals = Vec::new();
        let mut h = Histogram::default();
        for _ in 0..10_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let v = 1_000 + rng % 500_000_000; // 1 µs .. 0.5 s
            vals.push(v);
            let mut b = vec![0u32; BUCKETS];
            b[bucket_of(v)] = 1;
            h.merge(1, v, v, &b);
        }
        vals.sort_unstable();
        for p in [50.0, 90.0, 99.0] {
            let exact = vals[((p / 100.0 * vals.len() as f64).ceil() as usize) - 1] as f64;
            let got = h.percentile(p).unwrap() as f64;
            assert!((got - exact).abs() <= exact * 0.125 + 1.0, "p{p}: {got} vs {exact}");
        }
        assert_eq!(h.summary().max_ms, Some(*vals.last().unwrap() as f64 / 1e6));
    }

    #[test]
    fn one_value_reports_near_itself_and_never_above_the_max() {
        let mut h = Histogram::default();
        let v = 300_000_000;
        let mut b = vec![0u32; BUCKETS];
        b[bucket_of(v)] = 1;
        h.merge(1, v, v, &b);
        let p50 = h.percentile(50.0).unwrap();
        assert!(p50 <= v && p50 as f64 >= v as f64 * 0.8, "{p50}");
        assert_eq!(Histogram::default().percentile(50.0), None);
    }
}
