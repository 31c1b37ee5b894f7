//! The bounded, event-time-aged building blocks every detector keeps its state in: a capped map,
//! a bucketed sliding-window counter, a top-k sketch, a windowed distinct counter and hashed entropy.
//!
//! All of them are O(1) (or O(k) with small fixed k) per packet and allocate nothing once warm,
//! so the per-packet path of `Detectors` never allocates except to admit a new key.
use foldhash::fast::FixedState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// A map with a hard entry cap. A new key is admitted only while there is room; `expire` drops
/// keys idle for longer than the given age. Refused admissions are counted (`dropped`), so a
/// flood of fresh keys (spoofed sources) costs bounded memory and shows up as a number.
#[derive(Clone, Debug)]
pub struct BoundedMap<K, V> {
    map: HashMap<K, (V, u64), FixedState>,
    cap: usize,
    pub dropped: u64,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    pub fn new(cap: usize) -> Self {
        BoundedMap { map: HashMap::with_hasher(FixedState::default()), cap, dropped: 0 }
    }

    /// The value for `k` (created by `make` if there is room), its last-seen time set to `now`.
    pub fn touch(&mut self, k: &K, now: u64, make: impl FnOnce() -> V) -> Option<&mut V> {
        // One hash lookup in the common case; the second only when the map is full.
        if self.map.len() >= self.cap && !self.map.contains_key(k) {
            self.dropped += 1;
            return None;
        }
        let e = self.map.entry(k.clone()).or_insert_with(|| (make(), now));
        e.1 = e.1.max(now);
        Some(&mut e.0)
    }

    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.map.get_mut(k).map(|e| &mut e.0)
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k).map(|e| &e.0)
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        self.map.remove(k).map(|e| e.0)
    }

    /// Drops entries not touched since `now - max_idle`.
    pub fn expire(&mut self, now: u64, max_idle: u64) {
        self.map.retain(|_, e| now.saturating_sub(e.1) <= max_idle);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.map.iter_mut().map(|(k, e)| (k, &mut e.0))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter().map(|(k, e)| (k, &e.0))
    }
}

/// Buckets per sliding window: the window slides in steps of a tenth of its length.
pub const BUCKETS: usize = 10;

/// Events over the last `window` of event time, in `BUCKETS` buckets with a running total.
#[derive(Clone, Debug, Default)]
pub struct WindowCounter {
    buckets: [u32; BUCKETS],
    /// Absolute index (time / bucket length) of the newest bucket.
    head: u64,
    total: u64,
}

impl WindowCounter {
    /// Advances to `now` (clearing buckets that slid out) and adds `n`.
    #[inline]
    pub fn add(&mut self, now: u64, bucket_ns: u64, n: u32) {
        self.advance(now, bucket_ns);
        self.buckets[(self.head % BUCKETS as u64) as usize] += n;
        self.total += n as u64;
    }

    #[inline]
    pub fn advance(&mut self, now: u64, bucket_ns: u64) {
        let slot = now / bucket_ns;
        if slot <= self.head {
            return; // same bucket, or a packet slightly out of order: count it in the newest bucket
        }
        let steps = (slot - self.head).min(BUCKETS as u64);
        for i in 1..=steps {
            let b = &mut self.buckets[((self.head + i) % BUCKETS as u64) as usize];
            self.total -= *b as u64;
            *b = 0;
        }
        self.head = slot;
    }

    /// Events in the window ending at the last `advance`/`add`.
    #[inline]
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// Space-saving top-k (Metwally et al.): k counters; an unseen key replaces the smallest and
/// inherits its count, so counts are over-estimates by at most that minimum. k is small (8), so a
/// linear scan beats any index.
#[derive(Clone, Debug)]
pub struct TopK<K, const N: usize> {
    items: Vec<(K, u64)>,
}

impl<K: PartialEq + Copy, const N: usize> Default for TopK<K, N> {
    fn default() -> Self {
        TopK { items: Vec::with_capacity(N) }
    }
}

impl<K: PartialEq + Copy, const N: usize> TopK<K, N> {
    #[inline]
    pub fn add(&mut self, k: K, n: u64) {
        if let Some(e) = self.items.iter_mut().find(|e| e.0 == k) {
            e.1 += n;
        } else if self.items.len() < N {
            self.items.push((k, n));
        } else if let Some(m) = self.items.iter_mut().min_by_key(|e| e.1) {
            *m = (k, m.1 + n);
        }
    }

    /// Largest first; ties keep insertion order (deterministic).
    pub fn top(&self) -> Vec<(K, u64)> {
        let mut v = self.items.clone();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        v
    }

    pub fn clear(&mut self) {
        self.items.clear();
    }
}

/// Bits per epoch bitmap of `DistinctWindow` (32 bytes each).
pub const DISTINCT_BITS: usize = 256;

/// Distinct values seen over the last one to two epochs, by linear counting (Whang et al.) over
/// two 256-bit bitmaps: fixed 64 bytes per key whatever the traffic. The estimate's standard error
/// is ~5% around 100 distinct values, ~10% at 400, and it saturates near 1,400; thresholds sit
/// far below (at most a few hundred).
#[derive(Clone, Debug, Default)]
pub struct DistinctWindow {
    cur: [u64; DISTINCT_BITS / 64],
    prev: [u64; DISTINCT_BITS / 64],
    epoch: u64,
}

impl DistinctWindow {
    /// Records `value` (any hashable) at `now`; epochs are `epoch_ns` long.
    #[inline]
    pub fn add(&mut self, now: u64, epoch_ns: u64, hash: u64) {
        let e = now / epoch_ns;
        if e > self.epoch {
            self.prev = if e == self.epoch + 1 { self.cur } else { [0; DISTINCT_BITS / 64] };
            self.cur = [0; DISTINCT_BITS / 64];
            self.epoch = e;
        }
        let bit = (hash % DISTINCT_BITS as u64) as usize;
        self.cur[bit / 64] |= 1 << (bit % 64);
    }

    fn bits_set(&self) -> u32 {
        self.cur.iter().zip(&self.prev).map(|(a, b)| (a | b).count_ones()).sum()
    }

    /// Estimated distinct values in the current and previous epoch together.
    pub fn estimate(&self) -> f64 {
        let m = DISTINCT_BITS as f64;
        let zeros = (m - self.bits_set() as f64).max(0.5);
        m * (m / zeros).ln()
    }

    /// Whether `estimate() >= threshold`, without the logarithm (for the per-packet path): the
    /// bits that must be set for an estimate of `threshold`, from `bits_for`.
    #[inline]
    pub fn reaches(&self, bits: u32) -> bool {
        self.bits_set() >= bits
    }

    /// The number of set bits at which the estimate first reaches `threshold`.
    pub fn bits_for(threshold: f64) -> u32 {
        (0..=DISTINCT_BITS as u32)
            .find(|&b| {
                let m = DISTINCT_BITS as f64;
                m * (m / (m - b as f64).max(0.5)).ln() >= threshold
            })
            .unwrap_or(DISTINCT_BITS as u32)
    }
}

/// A fixed, well-mixed 64-bit hash (the same in every run, so results are reproducible).
#[inline]
pub fn hash_of<T: Hash>(v: &T) -> u64 {
    FixedState::with_seed(0x5258_5241_5900_0001).hash_one(v)
}

/// Shannon entropy, in bits, of a distribution given by counts.
pub fn entropy(counts: &[u32]) -> f64 {
    let total: u64 = counts.iter().map(|&c| c as u64).sum();
    if total == 0 {
        return 0.0;
    }
    let t = total as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| {
        let p = c as f64 / t;
        -p * p.log2()
    }).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counter_slides() {
        let mut w = WindowCounter::default();
        let b = 100; // bucket length; window = 1000
        for t in 0..1000 {
            w.add(t, b, 1);
        }
        assert_eq!(w.total(), 1000);
        w.advance(1050, b); // bucket 0 slid out
        assert_eq!(w.total(), 900);
        w.advance(5000, b);
        assert_eq!(w.total(), 0);
    }

    #[test]
    fn topk_keeps_heavy_hitters() {
        let mut t: TopK<u32, 4> = TopK::default();
        for i in 0..1000u32 {
            t.add(7, 1);
            t.add(1000 + i, 1);
        }
        assert_eq!(t.top()[0].0, 7);
    }

    #[test]
    fn distinct_window_estimates_and_forgets() {
        let mut d = DistinctWindow::default();
        for p in 0..200u16 {
            d.add(10, 1000, hash_of(&p));
        }
        let e = d.estimate();
        assert!((180.0..220.0).contains(&e), "{e}");
        d.add(1500, 1000, hash_of(&1u16)); // next epoch: previous still counts
        assert!(d.estimate() > 180.0);
        d.add(2500, 1000, hash_of(&1u16)); // two epochs on: forgotten
        assert!(d.estimate() < 3.0);
        let b = DistinctWindow::bits_for(100.0);
        assert!(b > 70 && b < 100, "{b}");
    }

    #[test]
    fn entropy_of_uniform_is_log2() {
        assert!((entropy(&[5; 8]) - 3.0).abs() < 1e-9);
        assert_eq!(entropy(&[9, 0, 0]), 0.0);
    }

    #[test]
    fn bounded_map_refuses_past_cap_and_expires() {
        let mut m: BoundedMap<u32, u32> = BoundedMap::new(2);
        assert!(m.touch(&1, 0, || 0).is_some());
        assert!(m.touch(&2, 5, || 0).is_some());
        assert!(m.touch(&3, 5, || 0).is_none());
        assert_eq!(m.dropped, 1);
        m.expire(10, 7);
        assert_eq!(m.len(), 1);
    }
}
