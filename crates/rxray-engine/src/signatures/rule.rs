//! One parsed signature: its header (protocol, addresses, ports, direction) and its options, in
//! the form the matcher evaluates. Built only by the parser, so every value here was validated.
use super::addr::{AddrSpec, PortSpec};
use memchr::memmem::Finder;
use regex::bytes::Regex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    /// ICMPv4 and ICMPv6.
    Icmp,
    /// Any IP packet.
    Ip,
}

/// `content` with its modifiers. `offset`/`depth` are absolute (from the payload start);
/// `distance`/`within` are relative to the end of the previous payload match.
#[derive(Clone, Debug)]
pub struct Content {
    pub bytes: Vec<u8>,
    pub negated: bool,
    pub nocase: bool,
    pub offset: Option<u32>,
    pub depth: Option<u32>,
    pub distance: Option<i32>,
    pub within: Option<u32>,
    pub fast_pattern: bool,
    /// Searches `bytes` (lowercased when `nocase`, then run over the lowercased payload).
    pub(crate) finder: Finder<'static>,
}

impl Content {
    pub fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }

    /// Sets up the searcher once the modifiers are known (`nocase` changes the needle).
    pub(crate) fn finish(&mut self) {
        let needle = if self.nocase { self.bytes.to_ascii_lowercase() } else { self.bytes.clone() };
        self.finder = Finder::new(&needle).into_owned();
    }

    pub(crate) fn new(bytes: Vec<u8>, negated: bool) -> Content {
        let finder = Finder::new(&bytes).into_owned();
        Content { bytes, negated, nocase: false, offset: None, depth: None, distance: None, within: None, fast_pattern: false, finder }
    }
}

/// `pcre`, translated to the `regex` crate (bytes API, Unicode off: PCRE's byte semantics).
#[derive(Clone, Debug)]
pub struct Pcre {
    pub source: String,
    pub regex: Regex,
    pub negated: bool,
    /// `R`: searched from the end of the previous payload match, `^` anchoring there.
    pub relative: bool,
}

#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // a handful per rule, built once
pub enum PayloadItem {
    Content(Content),
    Pcre(Pcre),
}

impl PayloadItem {
    pub fn is_relative(&self) -> bool {
        match self {
            PayloadItem::Content(c) => c.is_relative(),
            PayloadItem::Pcre(p) => p.relative,
        }
    }
    pub fn is_negated(&self) -> bool {
        match self {
            PayloadItem::Content(c) => c.negated,
            PayloadItem::Pcre(p) => p.negated,
        }
    }
}

/// `flow`: which side sent the packet, and the state the flow must be in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowOpt {
    /// Some(true): `to_server`/`from_client`; Some(false): `to_client`/`from_server`.
    pub to_server: Option<bool>,
    pub state: FlowState,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlowState {
    #[default]
    Any,
    Established,
    NotEstablished,
    /// `stateless`: matches whatever the state.
    Stateless,
}

/// `flags`: TCP flag bits (FIN=0x01 .. CWR=0x80), how to compare them, and the bits to ignore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlagsOpt {
    pub bits: u8,
    pub modifier: FlagsMod,
    pub ignore: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagsMod {
    /// No modifier: exactly these bits (outside the ignore mask).
    Exact,
    /// `+`: these bits, and any others.
    All,
    /// `*`: any of these bits.
    AnyOf,
    /// `!`: none of these bits.
    NoneOf,
}

impl FlagsOpt {
    pub fn matches(&self, flags: u8) -> bool {
        let f = flags & !self.ignore;
        match self.modifier {
            FlagsMod::Exact => f == self.bits,
            FlagsMod::All => f & self.bits == self.bits,
            FlagsMod::AnyOf => f & self.bits != 0,
            FlagsMod::NoneOf => f & self.bits == 0,
        }
    }
}

/// `dsize`: the transport payload size (from the IP lengths, so the whole payload even when only
/// a prefix was captured). `Range(a, b)` is exclusive, as in Suricata (`a<>b`: a < size < b).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dsize {
    Eq(u32),
    Ne(u32),
    Lt(u32),
    Gt(u32),
    Range(u32, u32),
}

impl Dsize {
    pub fn matches(&self, n: u32) -> bool {
        match *self {
            Dsize::Eq(a) => n == a,
            Dsize::Ne(a) => n != a,
            Dsize::Lt(a) => n < a,
            Dsize::Gt(a) => n > a,
            Dsize::Range(a, b) => a < n && n < b,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdType {
    Limit,
    Threshold,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold {
    pub kind: ThresholdType,
    /// true: by_src; false: by_dst.
    pub by_src: bool,
    pub count: u32,
    pub seconds: u32,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub sid: u32,
    pub rev: u32,
    pub msg: String,
    pub classtype: Option<String>,
    /// The explicit `priority`, else the classtype's default, else 3.
    pub priority: u8,
    /// First physical line of the rule in its file (1-based).
    pub line: usize,
    pub proto: Proto,
    pub src: AddrSpec,
    pub sport: PortSpec,
    pub dst: AddrSpec,
    pub dport: PortSpec,
    /// `<>`: the header matches in either orientation.
    pub bidirectional: bool,
    /// `content` and `pcre`, in rule order.
    pub payload: Vec<PayloadItem>,
    pub flow: Option<FlowOpt>,
    pub flags: Option<FlagsOpt>,
    pub dsize: Option<Dsize>,
    pub threshold: Option<Threshold>,
    pub references: Vec<String>,
}
