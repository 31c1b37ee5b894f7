//! CIDR prefixes, blocklist parsing (FireHOL `.netset`/`.ipset`, Spamhaus DROP/EDROP), aggregation
//! and `CidrSet`, a sorted-range set answering "is this address listed?" in O(log n) for millions of prefixes.
//!
//! Why sorted ranges and not a trie: after aggregation the prefixes are disjoint, so one binary
//! search over their start addresses answers both `contains` and "which listed prefix", with 9 bytes
//! per IPv4 prefix and no pointer chasing (1,000,000 prefixes: ~9 MB). IPv4 adds a 256 KiB index
//! on the top 16 bits, so a lookup searches one small bucket instead of ~20 levels of cache misses.
use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// One prefix, host bits always cleared (`Cidr::new` clears them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// The prefix `addr/len` with host bits cleared; `None` when `len` exceeds the family's width.
    pub fn new(addr: IpAddr, len: u8) -> Option<Cidr> {
        let width = width_of(&addr);
        if len > width {
            return None;
        }
        let v = to_bits(addr) & mask(len, width);
        Some(Cidr { addr: from_bits(v, width), len })
    }

    /// The single-address prefix (/32 or /128).
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr { addr, len: width_of(&addr) }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// First and last address as integers in the family's width (IPv4 in the low 32 bits).
    pub fn range(&self) -> (u128, u128) {
        let w = width_of(&self.addr);
        let s = to_bits(self.addr);
        (s, s | !mask(self.len, w) & full(w))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        let (s, e) = self.range();
        let x = to_bits(ip);
        s <= x && x <= e
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A prefix is written as text, `198.18.0.0/15` or `2001:2::/48`.
impl schemars::JsonSchema for Cidr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Cidr".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "description": "A prefix: an address, '/', the prefix length."})
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses `addr/len` or a bare address (a host prefix). Host bits set in the address are an error
/// here (use `parse_cidr` to clear them with a warning, as lists need).
impl FromStr for Cidr {
    type Err = CidrErrorKind;
    fn from_str(s: &str) -> Result<Cidr, CidrErrorKind> {
        let (c, host_bits) = parse_cidr(s).map_err(|(_, k)| k)?;
        if host_bits {
            return Err(CidrErrorKind::HostBitsSet { text: s.to_string(), normalised: c.to_string() });
        }
        Ok(c)
    }
}

/// What is wrong with one entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrErrorKind {
    #[error("{text:?} is not an IPv4 or IPv6 address")]
    BadAddress { text: String },
    #[error("prefix length {text:?} is not a number")]
    BadPrefixLength { text: String },
    #[error("prefix length {len} is longer than {max}, the maximum for {family}")]
    PrefixTooLong { len: u32, max: u8, family: &'static str },
    #[error("unexpected text {text:?} after the prefix (comments start with '#' or ';')")]
    TrailingText { text: String },
    #[error("{text:?} has host bits set (the prefix is {normalised})")]
    HostBitsSet { text: String, normalised: String },
    #[error("{bad} of {lines} lines are bad, more than {MAX_BAD_SHARE_PERCENT}%: the list was rejected (is it a list of prefixes?); this is the first: {first}")]
    TooManyBad { bad: usize, lines: usize, first: Box<CidrErrorKind> },
}

/// A lenient parse rejects a list when more than this share of its entry lines is bad: such a file
/// is not the list it was meant to be, and loading its few lines that happen to parse would hide it.
pub const MAX_BAD_SHARE_PERCENT: usize = 10;

/// Errors kept per list (the rest are counted in `ParsedList::bad_lines`): a file of ten million
/// bad lines must not need ten million messages in memory.
pub const MAX_KEPT_ERRORS: usize = 100;

/// At most 40 characters of a faulty token in a message.
fn clip(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// An error in a list: where (1-based line and column, in characters) and what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct CidrError {
    pub line: usize,
    pub column: usize,
    pub kind: CidrErrorKind,
}

/// Parses one prefix; returns it normalised and whether host bits had to be cleared. The error
/// carries the byte offset inside `s` of the faulty part.
pub fn parse_cidr(s: &str) -> Result<(Cidr, bool), (usize, CidrErrorKind)> {
    let (a, l) = match s.find('/') {
        Some(i) => (&s[..i], Some((i + 1, &s[i + 1..]))),
        None => (s, None),
    };
    let addr = IpAddr::from_str(a).map_err(|_| (0, CidrErrorKind::BadAddress { text: clip(a) }))?;
    let width = width_of(&addr);
    let len = match l {
        None => width as u32,
        Some((off, t)) => {
            if t.is_empty() || t.len() > 4 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err((off, CidrErrorKind::BadPrefixLength { text: clip(t) }));
            }
            let n: u32 = t.parse().map_err(|_| (off, CidrErrorKind::BadPrefixLength { text: clip(t) }))?;
            if n > width as u32 {
                let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
                return Err((off, CidrErrorKind::PrefixTooLong { len: n, max: width, family }));
            }
            n
        }
    };
    let c = Cidr::new(addr, len as u8).expect("length checked above");
    Ok((c, c.addr != addr))
}

/// How a list parse treats bad lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseMode {
    /// Any bad line fails the whole list (every error is still reported).
    Strict,
    /// Bad lines are skipped and reported next to the entries that parsed.
    Lenient,
}

/// The result of parsing a list: entries in file order (normalised), and what was noticed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedList {
    pub entries: Vec<Cidr>,
    /// Per-line errors, the first `MAX_KEPT_ERRORS` (strict mode returns them as `Err` instead).
    pub errors: Vec<CidrError>,
    /// Every bad line, kept in `errors` or not.
    pub bad_lines: usize,
    /// Lines that hold an entry, good or bad (not blank, not only a comment).
    pub entry_lines: usize,
    /// Entries whose host bits were set and have been cleared (a warning, not an error).
    pub host_bits_cleared: usize,
}

/// Parses a blocklist: one prefix or address per line; `#` (FireHOL) and `;` (Spamhaus) start
/// comments, so `1.10.16.0/20 ; SBL256894` is the prefix `1.10.16.0/20`. Blank lines are skipped.
/// Strict mode fails on any bad line; lenient mode fails when more than `MAX_BAD_SHARE_PERCENT`
/// of the entry lines are bad (one `TooManyBad` error at the first bad line). Either way at most
/// `MAX_KEPT_ERRORS` errors are kept, and the work is linear in the text.
pub fn parse_list(text: &str, mode: ParseMode) -> Result<ParsedList, Vec<CidrError>> {
    let mut out = ParsedList::default();
    let push = |out: &mut ParsedList, e: CidrError| {
        out.bad_lines += 1;
        if out.errors.len() < MAX_KEPT_ERRORS {
            out.errors.push(e);
        }
    };
    for (i, line) in text.lines().enumerate() {
        let content = match line.find(['#', ';']) {
            Some(c) => &line[..c],
            None => line,
        };
        let start = content.len() - content.trim_start().len();
        let token_len = content[start..].find(char::is_whitespace).unwrap_or(content.len() - start);
        let token = &content[start..start + token_len];
        if token.is_empty() {
            continue;
        }
        out.entry_lines += 1;
        let column = |byte: usize| line[..byte].chars().count() + 1;
        let rest = &content[start + token_len..];
        if !rest.trim().is_empty() {
            let off = start + token_len + (rest.len() - rest.trim_start().len());
            let e = CidrError { line: i + 1, column: column(off), kind: CidrErrorKind::TrailingText { text: clip(rest.trim()) } };
            push(&mut out, e);
            continue;
        }
        match parse_cidr(token) {
            Ok((c, host_bits)) => {
                out.host_bits_cleared += host_bits as usize;
                out.entries.push(c);
            }
            Err((off, kind)) => push(&mut out, CidrError { line: i + 1, column: column(start + off), kind }),
        }
    }
    if mode == ParseMode::Strict && !out.errors.is_empty() {
        return Err(out.errors);
    }
    if out.bad_lines * 100 > out.entry_lines * MAX_BAD_SHARE_PERCENT {
        let first = out.errors.swap_remove(0);
        let kind = CidrErrorKind::TooManyBad { bad: out.bad_lines, lines: out.entry_lines, first: Box::new(first.kind) };
        return Err(vec![CidrError { line: first.line, column: first.column, kind }]);
    }
    Ok(out)
}

/// Counts from `aggregate`: `read = duplicates + covered + merged + result` holds for every input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct AggregateStats {
    pub read: usize,
    /// Exact repeats of an earlier prefix.
    pub duplicates: usize,
    /// Prefixes inside a shorter one in the list.
    pub covered: usize,
    /// Prefixes that disappeared by merging two adjacent siblings into their parent.
    pub merged: usize,
    pub result: usize,
}

/// Sorts, deduplicates and drops prefixes covered by a shorter one; with `merge_siblings`, two
/// adjacent halves of a prefix become that prefix (repeatedly). The output is sorted, disjoint,
/// IPv4 before IPv6, and covers exactly the addresses the input covered.
pub fn aggregate(entries: &[Cidr], merge_siblings: bool) -> (Vec<Cidr>, AggregateStats) {
    let mut st = AggregateStats { read: entries.len(), ..Default::default() };
    let mut out = Vec::with_capacity(entries.len());
    for v4 in [true, false] {
        let w: u8 = if v4 { 32 } else { 128 };
        let mut fam: Vec<(u128, u8)> =
            entries.iter().filter(|c| c.is_ipv4() == v4).map(|c| (to_bits(c.addr), c.len)).collect();
        fam.sort_unstable();
        let n = fam.len();
        fam.dedup();
        st.duplicates += n - fam.len();
        // Kept prefixes are disjoint and sorted: only the last kept can cover the next one.
        let mut kept: Vec<(u128, u8)> = Vec::with_capacity(fam.len());
        for (s, l) in fam {
            if let Some(&(ks, kl)) = kept.last() {
                if kl <= l && (s & mask(kl, w)) == ks {
                    st.covered += 1;
                    continue;
                }
            }
            kept.push((s, l));
            while merge_siblings && kept.len() >= 2 {
                let (bs, bl) = kept[kept.len() - 1];
                let (as_, al) = kept[kept.len() - 2];
                if al != bl || al == 0 || as_ & mask(al - 1, w) != as_ || bs != as_ | (1u128 << (w - al)) {
                    break;
                }
                kept.pop();
                kept.pop();
                kept.push((as_, al - 1));
                st.merged += 1;
            }
        }
        out.extend(kept.into_iter().map(|(s, l)| Cidr { addr: from_bits(s, w), len: l }));
    }
    st.result = out.len();
    (out, st)
}

/// Disjoint sorted ranges of one family, in that family's integer type.
#[derive(Clone, Debug, Default)]
struct Ranges<T> {
    starts: Vec<T>,
    ends: Vec<T>,
    lens: Vec<u8>,
}

impl<T: Copy + Ord> Ranges<T> {
    /// The range holding `x`: the last one starting at or before it, if it reaches `x`. `lo..hi`
    /// bounds where that start can be (the whole vector, or an index bucket).
    #[inline]
    fn find_in(&self, x: T, lo: usize, hi: usize) -> Option<usize> {
        let i = lo + self.starts[lo..hi].partition_point(|s| *s <= x);
        (i > 0 && self.ends[i - 1] >= x).then(|| i - 1)
    }
}

/// IPv4 ranges with a first-level index on the top 16 bits: `index[h]` is the first range starting
/// at or after `h << 16`, so a lookup binary-searches only its bucket (a large list's search
/// otherwise pays a cache miss per level).
#[derive(Clone, Debug, Default)]
struct Ranges4 {
    r: Ranges<u32>,
    index: Vec<u32>,
}

impl Ranges4 {
    fn build_index(&mut self) {
        self.index = (0..=1u32 << 16)
            .map(|h| self.r.starts.partition_point(|s| (*s as u64) < (h as u64) << 16) as u32)
            .collect();
    }

    #[inline]
    fn find(&self, x: u32) -> Option<usize> {
        let h = (x >> 16) as usize;
        // The answer starts in this bucket, or is the last range before it.
        self.r.find_in(x, self.index[h] as usize, self.index[h + 1] as usize)
    }
}

/// A set of prefixes for fast membership tests. Built from any list (it aggregates on the way in);
/// an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is looked up as the IPv4 address.
#[derive(Clone, Debug, Default)]
pub struct CidrSet {
    v4: Ranges4,
    v6: Ranges<u128>,
    stats: AggregateStats,
}

impl CidrSet {
    pub fn new(entries: &[Cidr]) -> CidrSet {
        let (agg, stats) = aggregate(entries, false);
        let mut set = CidrSet { stats, ..Default::default() };
        for c in agg {
            let (s, e) = c.range();
            if c.is_ipv4() {
                set.v4.r.starts.push(s as u32);
                set.v4.r.ends.push(e as u32);
                set.v4.r.lens.push(c.len);
            } else {
                set.v6.starts.push(s);
                set.v6.ends.push(e);
                set.v6.lens.push(c.len);
            }
        }
        if !set.v4.r.starts.is_empty() {
            set.v4.build_index();
        }
        set
    }

    /// Parses and builds in one step (see `parse_list`); the parse warnings come back with the set.
    pub fn parse(text: &str, mode: ParseMode) -> Result<(CidrSet, ParsedList), Vec<CidrError>> {
        let parsed = parse_list(text, mode)?;
        Ok((CidrSet::new(&parsed.entries), parsed))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.matching(ip).is_some()
    }

    /// The listed prefix holding `ip`. The set's prefixes are disjoint (covered ones were
    /// dropped), so at most one matches: the longest match in the set, which is the shortest
    /// of the overlapping prefixes the input list had.
    pub fn matching(&self, ip: IpAddr) -> Option<Cidr> {
        match canonical(ip) {
            IpAddr::V4(_) if self.v4.r.starts.is_empty() => None,
            IpAddr::V4(a) => self.v4.find(u32::from(a)).map(|i| Cidr {
                addr: IpAddr::V4(Ipv4Addr::from(self.v4.r.starts[i])),
                len: self.v4.r.lens[i],
            }),
            IpAddr::V6(a) => self.v6.find_in(u128::from(a), 0, self.v6.starts.len()).map(|i| Cidr {
                addr: IpAddr::V6(Ipv6Addr::from(self.v6.starts[i])),
                len: self.v6.lens[i],
            }),
        }
    }

    /// Number of (disjoint) prefixes held.
    pub fn len(&self) -> usize {
        self.v4.r.starts.len() + self.v6.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What aggregation did to the input.
    pub fn stats(&self) -> AggregateStats {
        self.stats
    }

    /// The prefixes held, sorted, IPv4 first.
    pub fn iter(&self) -> impl Iterator<Item = Cidr> + '_ {
        let r = &self.v4.r;
        let v4 = (0..r.starts.len()).map(|i| Cidr { addr: IpAddr::V4(Ipv4Addr::from(r.starts[i])), len: r.lens[i] });
        let v6 = (0..self.v6.starts.len())
            .map(|i| Cidr { addr: IpAddr::V6(Ipv6Addr::from(self.v6.starts[i])), len: self.v6.lens[i] });
        v4.chain(v6)
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn width_of(a: &IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

fn full(w: u8) -> u128 {
    if w == 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    }
}

/// The network mask of a `len`-bit prefix in a `w`-bit family.
fn mask(len: u8, w: u8) -> u128 {
    if len == 0 {
        0
    } else {
        full(w) & !((1u128 << (w - len)) - 1)
    }
}

fn to_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_bits(v: u128, w: u8) -> IpAddr {
    if w == 32 {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn masks_are_right_at_the_edges() {
        assert_eq!(mask(0, 32), 0);
        assert_eq!(mask(32, 32), 0xffff_ffff);
        assert_eq!(mask(24, 32), 0xffff_ff00);
        assert_eq!(mask(128, 128), u128::MAX);
        assert_eq!(mask(1, 128), 1u128 << 127);
    }

    #[test]
    fn ranges_span_the_prefix() {
        assert_eq!(c("10.0.0.0/8").range(), (0x0a00_0000, 0x0aff_ffff));
        assert_eq!(c("0.0.0.0/0").range(), (0, 0xffff_ffff));
        assert_eq!(c("::/0").range(), (0, u128::MAX));
    }
}
