//! The flow table's index: an open-addressed array of (hash tag, row) words, so that finding a
//! flow costs one cache line of the index and then the flow's own row. (A general hash table keeps
//! its control bytes and its slots apart: two lines, and so two cache misses, per packet when, as
//! in a large capture, consecutive packets belong to different flows.)

/// Rows are `u32` indices into the caller's table; `hash` is the key's 64-bit hash.
#[derive(Clone, Debug, Default)]
pub struct FlowIndex {
    /// 0: empty; else (high 32 bits of the hash) << 32 | (row + 1).
    slots: Vec<u64>,
    len: usize,
}

impl FlowIndex {
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The row whose key `eq` accepts, among rows of the same hash.
    #[inline]
    pub fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let tag = hash >> 32;
        let mut i = hash as usize & self.mask();
        loop {
            let v = self.slots[i];
            if v == 0 {
                return None;
            }
            if v >> 32 == tag && eq((v as u32) - 1) {
                return Some((v as u32) - 1);
            }
            i = (i + 1) & self.mask();
        }
    }

    /// Adds `row` (not present) under `hash`; `rehash` gives the hash of any row already held,
    /// for when the index grows. At most half full.
    pub fn insert(&mut self, hash: u64, row: u32, rehash: impl Fn(u32) -> u64) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow(rehash);
        }
        self.put(hash, row);
        self.len += 1;
    }

    fn put(&mut self, hash: u64, row: u32) {
        let mut i = hash as usize & self.mask();
        while self.slots[i] != 0 {
            i = (i + 1) & self.mask();
        }
        self.slots[i] = (hash >> 32) << 32 | (row as u64 + 1);
    }

    fn grow(&mut self, rehash: impl Fn(u32) -> u64) {
        let n = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![0; n]);
        for v in old.into_iter().filter(|&v| v != 0) {
            let row = (v as u32) - 1;
            self.put(rehash(row), row);
        }
    }

    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = 0);
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_row_through_collisions_and_growth() {
        // Keys 0..5000 with a deliberately poor hash (many equal tags and slots).
        let h = |k: u32| ((k % 7) as u64) << 32 | (k % 13) as u64;
        let mut ix = FlowIndex::default();
        let keys: Vec<u32> = (0..5000).map(|k| k * 3).collect();
        for (row, &k) in keys.iter().enumerate() {
            assert_eq!(ix.find(h(k), |r| keys[r as usize] == k), None);
            ix.insert(h(k), row as u32, |r| h(keys[r as usize]));
        }
        for (row, &k) in keys.iter().enumerate() {
            assert_eq!(ix.find(h(k), |r| keys[r as usize] == k), Some(row as u32));
        }
        assert_eq!(ix.find(h(1), |r| keys[r as usize] == 1), None);
        ix.clear();
        assert_eq!(ix.find(h(0), |r| keys[r as usize] == 0), None);
    }
}
