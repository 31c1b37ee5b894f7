//! A bounded map for per-flow and per-address state: two generations, so the least recently used
//! half is dropped wholesale when the newer one fills. O(1) per packet, no sweeps, no clock.
use foldhash::fast::FixedState;
use std::collections::HashMap;
use std::hash::Hash;

pub struct Bounded<K, V> {
    cur: HashMap<K, V, FixedState>,
    old: HashMap<K, V, FixedState>,
    /// Entries per generation: the map holds at most twice this.
    per_gen: usize,
    /// Entries dropped to make room (each one lost its state).
    pub evicted: u64,
}

impl<K: Hash + Eq, V> Bounded<K, V> {
    pub fn new(capacity: usize) -> Self {
        let per_gen = (capacity / 2).max(1);
        Bounded { cur: HashMap::with_hasher(FixedState::default()), old: HashMap::with_hasher(FixedState::default()), per_gen, evicted: 0 }
    }

    /// The entry for `k`, created by `make` when absent. A hit in the old generation moves the
    /// entry to the current one (so busy entries survive rotation).
    pub fn entry(&mut self, k: K, make: impl FnOnce() -> V) -> &mut V {
        if self.cur.contains_key(&k) {
            return self.cur.get_mut(&k).expect("checked above");
        }
        let v = self.old.remove(&k).unwrap_or_else(make);
        if self.cur.len() >= self.per_gen {
            self.evicted += self.old.len() as u64;
            self.old = std::mem::replace(&mut self.cur, HashMap::with_hasher(FixedState::default()));
        }
        self.cur.entry(k).or_insert(v)
    }

    /// Whether `k` has an entry (in either generation), without touching it.
    pub fn contains(&self, k: &K) -> bool {
        self.cur.contains_key(k) || self.old.contains_key(k)
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        self.cur.remove(k).or_else(|| self.old.remove(k))
    }

    pub fn len(&self) -> usize {
        self.cur.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_twice_a_generation_and_counts_evictions() {
        let mut t: Bounded<u32, u32> = Bounded::new(4);
        for k in 0..10 {
            *t.entry(k, || 0) += 1;
            assert!(t.len() <= 4);
        }
        // 10 inserts into 2 + 2 slots: 6 entries were dropped with their generation.
        assert_eq!(t.evicted, 6);
        assert_eq!(t.len(), 4);
        // A recently used entry survives; its state is kept.
        assert_eq!(*t.entry(9, || 100), 1);
    }
}
