//! The prefix table the XDP program probes (`rxray_fw_lpm` in `rxray_fw.h`, `struct rxray_fw_pbucket`
//! in `rxray.h`): open addressing over 64-byte buckets of PSLOTS prefixes each, so that a probe reads
//! one cache line in the common case. A prefix (masked address, length, tag) goes into the first bucket
//! from its home bucket that has a free slot; a probe reads from the home bucket on until it finds the
//! key, meets a bucket whose last slot is free (the key would have gone there), or has read PROBES
//! buckets. Home buckets are 0..home_buckets(); PROBES - 1 more follow them, so nothing wraps. Built
//! whole per rule-set generation, never updated in place, so no deletions.
//!
//! `PTable::get` is the user-space mirror of the kernel's `fw_ptable_get`; `Compiled::classify` uses it,
//! so the model and the kernel read the same bytes.
use super::compile::PrefixEntry;

/// Prefixes per bucket (RXRAY_FW_PSLOTS).
pub const PSLOTS: usize = 3;
/// Buckets a probe reads at most, from the home bucket on (RXRAY_FW_PROBES).
pub const PROBES: usize = 8;
/// Bytes per bucket (sizeof(struct rxray_fw_pbucket)).
pub const BUCKET: usize = 64;
/// The hash's constants (RXRAY_FW_PK1..3).
pub const PK1: u64 = 0x9e37_79b9_7f4a_7c15;
pub const PK2: u64 = 0xc2b2_ae3d_27d4_eb4f;
pub const PK3: u64 = 0x1656_67b1_9e37_79f9;
/// Tag bit of a grouped prefix or a group's marker (RXRAY_FW_TAG_GROUP).
pub const TAG_GROUP: u8 = 0x10;
/// Prefixes per bucket on average when built (a bucket is full with probability about 0.2).
const LOAD: f64 = 1.5;

// Offsets inside a bucket: addr[PSLOTS][16], then len[PSLOTS], tag[PSLOTS], cls[PSLOTS].
const OFF_LEN: usize = PSLOTS * 16;
const OFF_TAG: usize = OFF_LEN + PSLOTS;
const OFF_CLS: usize = OFF_TAG + PSLOTS;

/// The tag of a (field, IP version): never 0 (0 marks a free slot).
pub fn tag(field: u8, ver: u8) -> u8 {
    0x80 | (field & 1) << 1 | (ver == 6) as u8
}

/// The hash of a masked address (16 bytes, IPv4 in the first 4) with its length and tag, as
/// `fw_ptable_get` computes it (the address read as four little-endian words, as BPF on x86 reads it).
pub fn hash(addr: &[u8; 16], len: u8, tag: u8) -> u64 {
    let w = |i: usize| u32::from_le_bytes([addr[4 * i], addr[4 * i + 1], addr[4 * i + 2], addr[4 * i + 3]]) as u64;
    let x = w(0) | w(1) << 32;
    let y = w(2) | w(3) << 32;
    let mut z = x.wrapping_mul(PK1) ^ y.wrapping_mul(PK2) ^ (len as u64 | (tag as u64) << 8).wrapping_mul(PK3);
    z ^= z >> 29;
    z.wrapping_mul(PK1)
}

/// The home bucket of a hash in a table of `nb` buckets.
pub fn home(h: u64, nb: u32) -> u32 {
    (((h >> 32) * nb as u64) >> 32) as u32
}

/// What the group scan found for an IPv6 source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// The class of the longest grouped prefix holding the source.
    Class(u8),
    /// The source's group is too big to group: probe per length.
    Marked,
    /// No grouped prefix holds it.
    None,
}

/// The bits that make a source prefix's group: IPv6 32, IPv4 24.
fn group_len(ver: u8) -> u8 {
    if ver == 6 { 32 } else { 24 }
}

/// The key of an address's group: its first group_len bits, the rest zero.
fn group_key(a: &[u8; 16], ver: u8) -> [u8; 16] {
    let mut k = [0u8; 16];
    let n = group_len(ver) as usize / 8;
    k[..n].copy_from_slice(&a[..n]);
    k
}

/// One generation's table: `nb` buckets of BUCKET bytes, as the kernel's array holds them.
#[derive(Clone, Debug, Default)]
pub struct PTable {
    home: u32,
    bytes: Vec<u8>,
}

impl PTable {
    /// Builds the table for `entries` (distinct keys). Empty entries: an empty table (0 buckets).
    pub fn build(entries: &[PrefixEntry]) -> Result<PTable, String> {
        if entries.is_empty() {
            return Ok(PTable::default());
        }
        let mut nb = ((entries.len() as f64 / LOAD).ceil() as usize).max(PROBES);
        // A run of full buckets longer than PROBES is very unlikely at this load; when one happens,
        // a larger table spreads it out.
        for _ in 0..8 {
            if nb > u32::MAX as usize / 2 {
                break;
            }
            if let Some(t) = PTable::fill(entries, nb as u32) {
                return Ok(t);
            }
            nb += nb / 4;
        }
        Err(format!("{} prefixes do not fit the prefix table (a run of full buckets longer than {PROBES})", entries.len()))
    }

    fn fill(entries: &[PrefixEntry], nb: u32) -> Option<PTable> {
        let mut t = PTable { home: nb, bytes: vec![0u8; (nb as usize + PROBES - 1) * BUCKET] };
        for e in entries {
            let (tg, h) = if e.grouped {
                let tg = tag(e.field, e.ver) | TAG_GROUP;
                (tg, hash(&group_key(&e.addr, e.ver), group_len(e.ver), tg))
            } else {
                let tg = tag(e.field, e.ver);
                (tg, hash(&e.addr, e.len, tg))
            };
            let mut b = home(h, nb);
            let mut placed = false;
            for _ in 0..PROBES {
                let bk = t.bucket_mut(b);
                if let Some(s) = (0..PSLOTS).find(|&s| bk[OFF_TAG + s] == 0) {
                    bk[s * 16..s * 16 + 16].copy_from_slice(&e.addr);
                    bk[OFF_LEN + s] = e.len;
                    bk[OFF_TAG + s] = tg;
                    bk[OFF_CLS + s] = e.class;
                    placed = true;
                    break;
                }
                b += 1;
            }
            if !placed {
                return None;
            }
        }
        Some(t)
    }

    fn bucket_mut(&mut self, b: u32) -> &mut [u8] {
        &mut self.bytes[b as usize * BUCKET..(b as usize + 1) * BUCKET]
    }

    /// Home buckets of the table (set->pbuckets); 0 for an empty table.
    pub fn home_buckets(&self) -> u32 {
        self.home
    }

    /// The table as the kernel's array holds it ((home_buckets() + PROBES - 1) * BUCKET bytes).
    /// Its size, for the memory it takes: len().
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The class of the prefix (`addr` already masked to `len`), as `fw_ptable_get` finds it.
    pub fn get(&self, field: u8, ver: u8, len: u8, addr: &[u8; 16]) -> Option<u8> {
        let nb = self.home;
        if nb == 0 {
            return None;
        }
        let tg = tag(field, ver);
        let mut b = home(hash(addr, len, tg), nb);
        for _ in 0..PROBES {
            let bk = &self.bytes[b as usize * BUCKET..(b as usize + 1) * BUCKET];
            for s in 0..PSLOTS {
                if bk[OFF_TAG + s] == tg && bk[OFF_LEN + s] == len && bk[s * 16..s * 16 + 16] == addr[..] {
                    return Some(bk[OFF_CLS + s]);
                }
            }
            if bk[OFF_TAG + PSLOTS - 1] == 0 {
                return None;
            }
            b += 1;
        }
        None
    }

    /// The grouped source prefixes of IP version `ver` holding `src` (a whole address), as
    /// `rxray_fw_pgroup` finds them: the class of the longest, or the group's marker, or none.
    pub fn group(&self, src: &[u8; 16], ver: u8) -> Group {
        let nb = self.home;
        if nb == 0 {
            return Group::None;
        }
        let tg = tag(0, ver) | TAG_GROUP;
        let gb = group_len(ver) as usize / 8;
        let mut b = home(hash(&group_key(src, ver), group_len(ver), tg), nb) as usize;
        let mut best: Option<(u8, u8)> = None;
        for _ in 0..PROBES {
            let bk = &self.bytes[b * BUCKET..(b + 1) * BUCKET];
            for s in 0..PSLOTS {
                if bk[OFF_TAG + s] != tg || bk[s * 16..s * 16 + gb] != src[..gb] {
                    continue;
                }
                let len = bk[OFF_LEN + s];
                if len == 0 {
                    return Group::Marked;
                }
                if best.is_some_and(|(l, _)| l >= len) {
                    continue;
                }
                let mut entry = [0u8; 16];
                entry.copy_from_slice(&bk[s * 16..s * 16 + 16]);
                if super::compile::mask16(src, len) == entry {
                    best = Some((len, bk[OFF_CLS + s]));
                }
            }
            if bk[OFF_TAG + PSLOTS - 1] == 0 {
                break;
            }
            b += 1;
        }
        best.map_or(Group::None, |(_, c)| Group::Class(c))
    }

    /// Test hook: frees the first slot of every bucket (the table loses about a third of its
    /// prefixes), to check that tests notice a broken table.
    #[doc(hidden)]
    pub fn break_first_slots(&mut self) {
        for bk in self.bytes.chunks_mut(BUCKET) {
            bk[OFF_TAG] = 0;
        }
    }
}
