//! Compiles a `RuleSet` into what the XDP program reads (see `rxray.h`, "firewall").
//!
//! Addresses are classified per field (source, destination): an address's class is the set of rules
//! whose prefixes cover it. Every prefix gets the class of itself plus all shorter prefixes covering
//! it, so the longest matching prefix alone gives the full answer. Classes are numbered 1..127 per
//! field (0: no prefix matched) and map to a 64-bit rule mask; a packet's candidate rules are the
//! source mask AND the destination mask, tried in order.
//!
//! IPv4 source prefixes up to /24 are painted into a direct table of 2^24 /24 slots (one lookup
//! whatever the list size); a slot holding longer prefixes is flagged "deep" and those prefixes, like
//! every other prefix (IPv6 sources, destinations), go into the prefix table (`ptable`: open
//! addressing over 64-byte buckets, keyed by field, version, length and masked address), tried
//! longest length first. For IPv6 sources a filter of 2^22 bytes, indexed by
//! a hash of the address's first 32 bits, names the lengths worth probing (`v6_src`): a random source
//! usually meets none, so it costs one table read instead of one probe per length. IPv6 source
//! prefixes of /32 and longer are grouped by their first 32 bits instead (`group_src`, up to GROUP a
//! group): one scan of the group in the prefix table answers every length, and the filter is read
//! only after a miss when a group was too big (its marker says so) or a /24../31 prefix exists.
//! IPv4 source prefixes longer than /24 are grouped by their /24 the same way.
use super::ptable::{Group, PTable};
use super::rules::{Action, AddrMatch, Per, Rule, RuleSet};
use std::collections::HashMap;
use std::net::IpAddr;

/// The compiled form's limits, which the kernel's tables are sized for: rxray-kernel's
/// tests/abi_btf.rs checks each against its RXRAY_FW_* enum in the objects' BTF.
/// Address classes per field (7 bits; 0: no prefix matched).
pub const CLASSES: usize = 128;
/// `v4_src` byte flag: longer prefixes than /24 inside this /24.
pub const DEEP: u8 = 0x80;
/// Distinct prefix lengths per (field, IP version).
pub const MAX_LENS: usize = 32;
/// /24 slots of the IPv4 source table.
pub const V4_SLOTS: usize = 1 << 24;
/// Slots of the IPv6 source length filter (2^V6_BITS).
pub const V6_BITS: u32 = 22;
pub const V6_SLOTS: usize = 1 << V6_BITS;
/// IPv6 filter byte bit for every length from index 7 of `lens[0][1]` on (bit i < 7: index i).
pub const V6_REST: u8 = 0x80;
/// IPv6 source lengths shorter than this are not painted into the filter: always probed.
pub const V6_MIN: u8 = 24;
/// IPv6 source prefixes (/32 or longer) sharing their first 32 bits that are grouped (RXRAY_FW_GROUP).
pub const GROUP: usize = 6;
/// The filter's hash: slot = (first 32 bits * V6_MUL) >> (32 - V6_BITS), in 32-bit arithmetic.
pub const V6_MUL: u32 = 0x61c8_8647;

/// The IPv6 filter slot of an address whose first 32 bits are `a32`.
pub fn v6_slot(a32: u32) -> usize {
    (a32.wrapping_mul(V6_MUL) >> (32 - V6_BITS)) as usize
}

/// The filter bit of the length at index `i` of `lens[0][1]`.
fn v6_bit(i: usize) -> u8 {
    if i < 7 { 1 << i } else { V6_REST }
}

/// Which packets share a rate-limit bucket, as compiled (the kernel's code is rxray-kernel's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LimitKey {
    /// One bucket for the rule.
    #[default]
    Rule,
    /// One per source prefix (`limit_len`, `limit_len6`).
    Src,
    /// One per destination port.
    Dport,
}

/// One rule as the kernel's `struct rxray_fw_rule` holds it (expiry is set when applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompiledRule {
    pub id: u32,
    pub action: Action,
    pub ip_ver: u8,
    pub proto: u8,
    pub limit_by: LimitKey,
    pub limit_len: u8,
    pub limit_len6: u8,
    pub flags_mask: u8,
    pub flags_value: u8,
    pub sport: (u16, u16),
    pub dport: (u16, u16),
    pub l4: bool,
    pub pps: u64,
    pub burst_pkts: u64,
    pub bps: u64,
    pub burst_bytes: u64,
    pub ttl_s: Option<u64>,
}

/// One entry of the prefix hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixEntry {
    pub field: u8, // 0 src, 1 dst
    pub ver: u8,   // 4 or 6
    pub len: u8,
    pub addr: [u8; 16],
    pub class: u8,
    /// An IPv6 source prefix of /32 or longer kept with its group (see `ptable`): no filter bit,
    /// found by the group scan. With len 0: a group's marker (too big to group; never in `prefixes`).
    pub grouped: bool,
}

#[derive(Clone, Debug)]
pub struct Compiled {
    pub default_deny: bool,
    pub drop_malformed: bool,
    pub dry_run: bool,
    pub rules: Vec<CompiledRule>,
    /// IPv4 source classes by /24 (`class | DEEP`); empty when no rule has an IPv4 source prefix.
    pub v4_src: Vec<u8>,
    /// IPv6 source length filter by `v6_slot` (bits as `v6_bit`); empty when no rule has an IPv6
    /// source prefix of /V6_MIN or longer.
    pub v6_src: Vec<u8>,
    /// IPv6 source lengths shorter than V6_MIN, as filter bits: probed for every source.
    pub v6_always: u8,
    /// Bit 0: IPv6 source prefixes are grouped (the group scan comes first); bit 1: after a group
    /// miss the filter is read always (some /V6_MIN../31 prefix is in it), not only for a marker;
    /// bit 2: IPv4 source prefixes longer than /24 are grouped by /24 (`group_src`).
    pub groups: u8,
    pub prefixes: Vec<PrefixEntry>,
    /// [field][0: v4, 1: v6]: the lengths present in `prefixes`, longest first.
    pub lens: [[Vec<u8>; 2]; 2],
    /// [field][class]: the rules (bit i = rule i) an address of that class may meet.
    pub class_masks: [[u64; CLASSES]; 2],
    /// Classes in use per field (including class 0).
    pub classes: [usize; 2],
    /// `prefixes` as the kernel's prefix table (rxray_fw_lpm) holds them; `classify` reads it.
    pub ptable: PTable,
}

/// A packet as the firewall sees it (for `Compiled::decide`, the user-space model of the kernel's
/// evaluation without rate limits).
#[derive(Clone, Copy, Debug)]
pub struct FwInput {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub flags: u8,
    pub l4_known: bool,
}

fn bytes16(a: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v) => b[..4].copy_from_slice(&v.octets()),
        IpAddr::V6(v) => b = v.octets(),
    }
    b
}

struct FieldOut {
    /// (is_v4, start, len, class) per distinct prefix.
    entries: Vec<(bool, u128, u8, u8)>,
    masks: [u64; CLASSES],
    classes: usize,
}

fn compile_field(rules: &[Rule], name: &str, get: fn(&Rule) -> &AddrMatch) -> Result<FieldOut, String> {
    let mut any = 0u64;
    let mut own: HashMap<(bool, u128, u8), u64> = HashMap::new();
    for (i, r) in rules.iter().enumerate() {
        match get(r) {
            AddrMatch::Any => any |= 1 << i,
            AddrMatch::Prefixes(v) => {
                for c in v {
                    *own.entry((c.is_ipv4(), c.range().0, c.prefix_len())).or_default() |= 1 << i;
                }
            }
        }
    }
    let mut sorted: Vec<((bool, u128, u8), u64)> = own.into_iter().collect();
    // Per family, by start address, then shorter first: a prefix comes after every prefix covering it.
    sorted.sort_unstable_by_key(|&((v4, start, len), _)| (!v4, start, len));
    let mut class_of: HashMap<u64, u8> = HashMap::new();
    let mut masks = [0u64; CLASSES];
    masks[0] = any;
    let mut entries = Vec::with_capacity(sorted.len());
    let mut stack: Vec<(bool, u128, u64)> = Vec::new(); // (family, end, accumulated rules)
    for ((v4, start, len), bits) in sorted {
        let width = if v4 { 32 } else { 128 };
        let end = end_of(start, len, width);
        while let Some(&(f, e, _)) = stack.last() {
            if f != v4 || e < start {
                stack.pop();
            } else {
                break;
            }
        }
        let acc = bits | stack.last().map_or(0, |s| s.2);
        stack.push((v4, end, acc));
        let next = class_of.len() + 1;
        let class = *class_of.entry(acc).or_insert(next as u8);
        if next >= CLASSES && class as usize == next {
            return Err(format!(
                "the {name} prefixes fall into more than {} distinct rule combinations (the kernel keeps {}): merge rules that share prefixes",
                CLASSES - 1,
                CLASSES - 1
            ));
        }
        masks[class as usize] = acc | any;
        entries.push((v4, start, len, class));
    }
    Ok(FieldOut { entries, masks, classes: class_of.len() + 1 })
}

fn compile_rule(r: &Rule) -> CompiledRule {
    let mut c = CompiledRule {
        id: r.id,
        action: r.action,
        ip_ver: r.ip.unwrap_or(0),
        proto: r.proto.unwrap_or(0),
        limit_by: LimitKey::Rule,
        limit_len: 0,
        limit_len6: 0,
        flags_mask: 0,
        flags_value: 0,
        sport: r.sport,
        dport: r.dport,
        l4: r.tests_l4(),
        pps: 0,
        burst_pkts: 0,
        bps: 0,
        burst_bytes: 0,
        ttl_s: r.ttl_s,
    };
    if let Some((v, m)) = r.tcp_flags {
        c.flags_value = v;
        c.flags_mask = m;
    }
    if let Some(l) = r.limit {
        c.pps = l.pps;
        c.burst_pkts = l.burst_pkts;
        c.bps = l.bps;
        c.burst_bytes = l.burst_bytes;
        match l.per {
            Per::Rule => c.limit_by = LimitKey::Rule,
            Per::Src { v4, v6 } => {
                c.limit_by = LimitKey::Src;
                c.limit_len = v4;
                c.limit_len6 = v6;
            }
            Per::Dport => c.limit_by = LimitKey::Dport,
        }
    }
    c
}

impl Compiled {
    pub fn new(set: &RuleSet) -> Result<Compiled, String> {
        let src = compile_field(&set.rules, "source", |r| &r.src)?;
        let dst = compile_field(&set.rules, "destination", |r| &r.dst)?;
        let mut out = Compiled {
            default_deny: set.default == Action::Deny,
            drop_malformed: set.drop_malformed,
            dry_run: set.dry_run,
            rules: set.rules.iter().map(compile_rule).collect(),
            v4_src: Vec::new(),
            v6_src: Vec::new(),
            v6_always: 0,
            groups: 0,
            prefixes: Vec::new(),
            lens: Default::default(),
            class_masks: [src.masks, dst.masks],
            classes: [src.classes, dst.classes],
            ptable: PTable::default(),
        };
        let mut v4: Vec<&(bool, u128, u8, u8)> = src.entries.iter().filter(|e| e.0).collect();
        if !v4.is_empty() {
            out.v4_src = vec![0u8; V4_SLOTS];
            v4.sort_by_key(|e| e.2);
            for &&(_, start, len, class) in &v4 {
                let slot = (start >> 8) as usize;
                if len <= 24 {
                    let n = 1usize << (24 - len);
                    for b in &mut out.v4_src[slot..slot + n] {
                        *b = class;
                    }
                } else {
                    out.v4_src[slot] |= DEEP;
                }
            }
        }
        for (field, f) in [(0u8, &src), (1u8, &dst)] {
            for &(is_v4, start, len, class) in &f.entries {
                if field == 0 && is_v4 && len <= 24 {
                    continue;
                }
                let ip = if is_v4 { IpAddr::from((start as u32).to_be_bytes()) } else { IpAddr::from(start.to_be_bytes()) };
                out.prefixes.push(PrefixEntry { field, ver: if is_v4 { 4 } else { 6 }, len, addr: bytes16(ip), class, grouped: false });
            }
        }
        for field in 0..2 {
            for vi in 0..2 {
                let mut l: Vec<u8> = out
                    .prefixes
                    .iter()
                    .filter(|p| p.field == field as u8 && (p.ver == 6) == (vi == 1))
                    .map(|p| p.len)
                    .collect();
                l.sort_unstable_by(|a, b| b.cmp(a));
                l.dedup();
                if l.len() > MAX_LENS {
                    return Err(format!(
                        "{} IPv{} {} prefixes have {} distinct lengths; the kernel tries at most {MAX_LENS}",
                        if field == 0 { "source" } else { "destination" },
                        if vi == 0 { 4 } else { 6 },
                        if field == 0 && vi == 0 { "(longer than /24)" } else { "" },
                        l.len()
                    ));
                }
                out.lens[field][vi] = l;
            }
        }
        let markers = out.group_src();
        out.paint_v6();
        let mut entries = out.prefixes.clone();
        entries.extend(markers);
        out.ptable = PTable::build(&entries)?;
        Ok(out)
    }

    /// Groups the IPv6 source prefixes of /32 or longer by their first 32 bits, and the IPv4 ones
    /// longer than /24 by their /24: groups of up to GROUP are marked `grouped`; each bigger one gets
    /// a marker (returned) and stays per length.
    fn group_src(&mut self) -> Vec<PrefixEntry> {
        let mut size: HashMap<(u8, [u8; 4]), usize> = HashMap::new();
        let key = |p: &PrefixEntry| (p.ver, [p.addr[0], p.addr[1], p.addr[2], if p.ver == 6 { p.addr[3] } else { 0 }]);
        let groupable = |p: &PrefixEntry| p.field == 0 && if p.ver == 6 { p.len >= 32 } else { p.len > 24 };
        let bit = |ver: u8| if ver == 6 { 1 } else { 4 };
        for p in self.prefixes.iter().filter(|p| groupable(p)) {
            *size.entry(key(p)).or_default() += 1;
            self.groups |= bit(p.ver);
        }
        for p in self.prefixes.iter_mut().filter(|p| groupable(p)) {
            p.grouped = size[&key(p)] <= GROUP;
        }
        let mut markers: Vec<PrefixEntry> = size
            .into_iter()
            .filter(|&(_, n)| n > GROUP)
            .map(|((ver, w0), _)| {
                let mut addr = [0u8; 16];
                addr[..4].copy_from_slice(&w0);
                PrefixEntry { field: 0, ver, len: 0, addr, class: 0, grouped: true }
            })
            .collect();
        markers.sort_unstable_by_key(|m| (m.ver, m.addr));
        markers
    }

    /// The IPv6 source filter: for each prefix of /V6_MIN or longer, its length's bit in the slot of
    /// every first-32-bit value it covers (at most 2^(32 - V6_MIN)); shorter lengths in v6_always.
    fn paint_v6(&mut self) {
        let lens = &self.lens[0][1];
        for p in self.prefixes.iter().filter(|p| p.field == 0 && p.ver == 6 && !p.grouped) {
            if p.len < 32 && p.len >= V6_MIN {
                self.groups |= 2;
            }
            let bit = v6_bit(lens.iter().position(|&l| l == p.len).unwrap_or(lens.len()));
            if p.len < V6_MIN {
                self.v6_always |= bit;
                continue;
            }
            if self.v6_src.is_empty() {
                self.v6_src = vec![0u8; V6_SLOTS];
            }
            let a32 = u32::from_be_bytes([p.addr[0], p.addr[1], p.addr[2], p.addr[3]]);
            let span = 1u32 << (32 - p.len.min(32) as u32);
            for v in 0..span {
                self.v6_src[v6_slot(a32 | v)] |= bit;
            }
        }
    }

    /// The class of an address in one field, as the kernel computes it.
    pub fn classify(&self, field: usize, ip: IpAddr) -> u8 {
        let ver = if ip.is_ipv4() { 4 } else { 6 };
        let mut dflt = 0u8;
        let addr = bytes16(ip);
        if field == 0 && ver == 4 {
            if self.v4_src.is_empty() {
                return 0;
            }
            let a24 = (u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]) >> 8) as usize;
            let b = self.v4_src[a24];
            dflt = b & !DEEP;
            if b & DEEP == 0 {
                return dflt;
            }
            if self.groups & 4 != 0 {
                match self.ptable.group(&addr, 4) {
                    Group::Class(c) => return c,
                    Group::None => return dflt,
                    Group::Marked => {} // per length
                }
            }
        }
        let mut present = 0xffu8;
        if field == 0 && ver == 6 {
            let mut marked = false;
            if self.groups & 1 != 0 {
                match self.ptable.group(&addr, 6) {
                    Group::Class(c) => return c,
                    Group::Marked => marked = true,
                    Group::None => {}
                }
            }
            present = self.v6_always;
            if self.groups & 1 == 0 || self.groups & 2 != 0 || marked {
                let a32 = u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]);
                present |= self.v6_src.get(v6_slot(a32)).copied().unwrap_or(0);
            }
        }
        for (i, &len) in self.lens[field][(ver == 6) as usize].iter().enumerate() {
            if present & v6_bit(i) == 0 {
                continue;
            }
            let masked = mask16(&addr, len);
            if let Some(class) = self.ptable.get(field as u8, ver, len, &masked) {
                return class;
            }
        }
        dflt
    }

    /// Which rule decides a packet (index into `rules`), or `None` for the default; limit rules are
    /// taken as conforming (this model has no clock). Mirrors the kernel's `rxray_fw`.
    pub fn decide(&self, p: &FwInput) -> Option<usize> {
        let m = self.class_masks[0][self.classify(0, p.src) as usize] & self.class_masks[1][self.classify(1, p.dst) as usize];
        let ver = if p.src.is_ipv4() { 4 } else { 6 };
        (0..self.rules.len()).filter(|i| m & (1 << i) != 0).find(|&i| {
            let r = &self.rules[i];
            if r.ip_ver != 0 && r.ip_ver != ver {
                return false;
            }
            let l4 = !r.l4
                || if !p.l4_known {
                    r.action != Action::Allow
                } else {
                    (r.proto == 0 || r.proto == p.proto)
                        && (r.sport.0..=r.sport.1).contains(&p.sport)
                        && (r.dport.0..=r.dport.1).contains(&p.dport)
                        && p.flags & r.flags_mask == r.flags_value
                };
            l4 && r.action != Action::Limit
        })
    }
}

/// The last address of the prefix start/len in a family `width` bits wide.
fn end_of(start: u128, len: u8, width: u32) -> u128 {
    let host = width - len as u32;
    match host {
        0 => start,
        128.. => u128::MAX,
        h => start | ((1u128 << h) - 1),
    }
}

/// The first `len` bits of a 16-byte address.
pub fn mask16(a: &[u8; 16], len: u8) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, b) in a.iter().enumerate() {
        let bits = (len as i32 - 8 * i as i32).clamp(0, 8);
        out[i] = if bits == 0 { 0 } else { b & (0xffu8 << (8 - bits)) };
    }
    out
}
