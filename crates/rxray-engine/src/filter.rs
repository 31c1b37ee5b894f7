//! tcpdump-syntax packet filters: one parser, one AST, lowered once into field tests (`Cond`) that
//! user space evaluates over a `Packet` and rxray-kernel compiles into the XDP program's filter.
//!
//! Supported (pcap-filter(7) subset): `host`, `net` (CIDR, `A mask M`, short IPv4 forms like
//! `net 10`), `port`, `portrange A-B`, with `src`/`dst`/`src or dst`/`src and dst` and the protocol
//! qualifiers `ip`/`ip6`/`arp` (host, net) and `tcp`/`udp` (port, portrange); the
//! protocols `ip ip6 arp tcp udp icmp icmp6`, `vlan [ID]`; `tcp[tcpflags]` / `tcp[13]` with an
//! optional `& MASK` and a relation; `len OP N`, `greater N`, `less N`; `and && or || not !` and
//! parentheses; a bare value after `and`/`or`/`not` repeats the previous qualifiers
//! (`host a or b` is `host a or host b`).
//!
//! Semantics follow tcpdump (libpcap 1.10), including its less obvious rules:
//! - `and` and `or` have the SAME precedence and associate left to right; `not` binds tighter
//!   (`a or b and c` is `(a or b) and c`), exactly as pcap-filter(7) says.
//! - `vlan` shifts every test written after it by one tag, textually, whatever the parentheses:
//!   a test after N `vlan` keywords looks at a frame with exactly N tags (tcpdump reads the header
//!   at 14 + 4N bytes; a frame with a different number of tags never matches it here). So `ip`
//!   alone does not match VLAN-tagged IPv4; `vlan and ip` does.
//! - `port`, `portrange` and `tcp[...]` skip IPv4 fragments with a non-zero offset. IPv6 ports are
//!   only seen when the transport header follows the fixed header directly (no extension header).
//!   `tcp`/`udp`/`icmp6` on IPv6 also accept one fragment header in between.
//! - `tcp[...]` and `icmp` are IPv4 only (pcap-filter(7): "upper-layer protocol types only apply
//!   to IPv4"); `tcp`, `udp` and `port` cover both versions.
//! - IPv4 `host`/`net` also match ARP sender/target protocol addresses.
//! - `len` is the wire length; `greater N` is `len >= N`, `less N` is `len <= N`.
//!
//! Not supported: host and port names (no resolution), `ether`, `rarp`, `sctp`, general
//! `proto[offset]` arithmetic.
use crate::event::Packet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// ---------------------------------------------------------------- errors

/// A filter that does not parse: what is wrong and where (1-based character column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    pub column: usize,
    pub message: String,
    /// The expression, so the error can point at the column.
    pub expr: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pad: String = " ".repeat(self.column.saturating_sub(1));
        write!(f, "bad filter at column {}: {}\n    {}\n    {pad}^", self.column, self.message, self.expr)
    }
}

impl std::error::Error for FilterError {}

// ---------------------------------------------------------------- AST

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    SrcOrDst,
    Src,
    Dst,
    SrcAndDst,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Ip,
    Ip6,
    Arp,
    Tcp,
    Udp,
    Icmp,
    Icmp6,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds(self, a: u32, b: u32) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrimKind {
    /// `ip`, `ip6`, `arp`, `tcp`, `udp`, `icmp`, `icmp6`.
    Proto(Proto),
    /// `vlan [ID]`.
    Vlan(Option<u16>),
    /// `host`/`net`: the address and its mask (all ones for `host`).
    Addr { proto: Option<Proto>, dir: Dir, addr: IpAddr, mask: IpAddr, net: bool },
    /// `port N` (lo == hi) or `portrange LO-HI`.
    Port { proto: Option<Proto>, dir: Dir, lo: u16, hi: u16 },
    /// `len OP N`, `greater N`, `less N`.
    Len { cmp: Cmp, value: u32 },
    /// `tcp[tcpflags] [& mask] OP value`.
    TcpFlags { mask: u32, cmp: Cmp, value: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prim {
    pub kind: PrimKind,
    /// How many `vlan` keywords come before this primitive in the text (tcpdump's offset shift).
    pub vlan_depth: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Prim(Prim),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

// ---------------------------------------------------------------- lowered form

/// Scalar fields a test can read: what the kernel's rxray_pkt_event holds, packed so that one test
/// covers a common question ("IPv4 UDP with no VLAN tag" is one comparison on `Ip`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// vlan_count << 16 | ethertype after the tags.
    L3,
    /// vlan_count << 16 | ip_ver << 8 | l4_proto (ip_ver 0 when no IP header parsed).
    Ip,
    /// IPv6 extension headers: count << 8 | the first one's type.
    V6Ext,
    /// Fragment offset in bytes.
    FragOff,
    Sport,
    Dport,
    TcpFlags,
    /// Frame length on the wire.
    WireLen,
    VlanCount,
    /// VLAN ID of the outer (0) and inner (1) tag.
    Vid0,
    Vid1,
}

pub const ALL_FIELDS: [Field; 11] = [
    Field::L3, Field::Ip, Field::V6Ext, Field::FragOff, Field::Sport, Field::Dport, Field::TcpFlags,
    Field::WireLen, Field::VlanCount, Field::Vid0, Field::Vid1,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrField {
    /// IP source, or ARP sender protocol address.
    Src,
    /// IP destination, or ARP target protocol address.
    Dst,
}

/// A filter lowered to tests of event fields; what both evaluators run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    Const(bool),
    /// `(field & mask) cmp value`.
    Scalar { field: Field, mask: u32, cmp: Cmp, value: u32 },
    /// `(address & mask) == addr` over 16 bytes (IPv4 in the first 4, the rest zero).
    Addr { field: AddrField, addr: [u8; 16], mask: [u8; 16] },
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

fn t(field: Field, value: u32) -> Cond {
    Cond::Scalar { field, mask: u32::MAX, cmp: Cmp::Eq, value }
}
fn tm(field: Field, mask: u32, cmp: Cmp, value: u32) -> Cond {
    Cond::Scalar { field, mask, cmp, value }
}
fn and(a: Cond, b: Cond) -> Cond {
    match (a, b) {
        (Cond::Const(false), _) | (_, Cond::Const(false)) => Cond::Const(false),
        (Cond::Const(true), x) | (x, Cond::Const(true)) => x,
        (a, b) => Cond::And(Box::new(a), Box::new(b)),
    }
}
fn or(a: Cond, b: Cond) -> Cond {
    match (a, b) {
        (Cond::Const(true), _) | (_, Cond::Const(true)) => Cond::Const(true),
        (Cond::Const(false), x) | (x, Cond::Const(false)) => x,
        (a, b) => Cond::Or(Box::new(a), Box::new(b)),
    }
}
fn not(a: Cond) -> Cond {
    match a {
        Cond::Const(v) => Cond::Const(!v),
        Cond::Not(x) => *x,
        x => Cond::Not(Box::new(x)),
    }
}

const ETH_IP: u32 = 0x0800;
const ETH_ARP: u32 = 0x0806;
const ETH_IPV6: u32 = 0x86dd;

fn ethertype_at(d: u32, et: u32) -> Cond {
    t(Field::L3, d << 16 | et)
}
fn ipv4_at(d: u32) -> Cond {
    tm(Field::Ip, 0xffff00, Cmp::Eq, d << 16 | 4 << 8)
}
fn ipv6_at(d: u32) -> Cond {
    tm(Field::Ip, 0xffff00, Cmp::Eq, d << 16 | 6 << 8)
}
fn v4_proto(d: u32, p: u32) -> Cond {
    t(Field::Ip, d << 16 | 4 << 8 | p)
}
/// tcpdump's `ip6 proto P`: the fixed header's next header, or one fragment header then P.
fn v6_proto(d: u32, p: u32) -> Cond {
    and(t(Field::Ip, d << 16 | 6 << 8 | p), or(t(Field::V6Ext, 0), t(Field::V6Ext, 1 << 8 | 44)))
}

fn dir_cond(dir: Dir, src: Cond, dst: Cond) -> Cond {
    match dir {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::SrcOrDst => or(src, dst),
        Dir::SrcAndDst => and(src, dst),
    }
}

fn bytes16(a: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v) => b[..4].copy_from_slice(&v.octets()),
        IpAddr::V6(v) => b = v.octets(),
    }
    b
}

impl Prim {
    fn lower(&self) -> Cond {
        let d = self.vlan_depth as u32;
        match &self.kind {
            PrimKind::Proto(p) => match p {
                Proto::Ip => ethertype_at(d, ETH_IP),
                Proto::Ip6 => ethertype_at(d, ETH_IPV6),
                Proto::Arp => ethertype_at(d, ETH_ARP),
                Proto::Tcp => or(v4_proto(d, 6), v6_proto(d, 6)),
                Proto::Udp => or(v4_proto(d, 17), v6_proto(d, 17)),
                Proto::Icmp => v4_proto(d, 1),
                Proto::Icmp6 => v6_proto(d, 58),
            },
            PrimKind::Vlan(id) => {
                let present = tm(Field::VlanCount, u32::MAX, Cmp::Gt, d);
                match (id, d) {
                    (None, _) => present,
                    (Some(v), 0) => and(present, t(Field::Vid0, *v as u32)),
                    (Some(v), 1) => and(present, t(Field::Vid1, *v as u32)),
                    // rxray parses at most two tags: a third never matches.
                    (Some(_), _) => Cond::Const(false),
                }
            }
            PrimKind::Addr { proto, dir, addr, mask, .. } => {
                let (a, m) = (bytes16(*addr), bytes16(*mask));
                let test = |field| Cond::Addr { field, addr: a, mask: m };
                let cmp = dir_cond(*dir, test(AddrField::Src), test(AddrField::Dst));
                match addr {
                    IpAddr::V4(_) => {
                        let ip = and(ipv4_at(d), cmp.clone());
                        let arp = and(ethertype_at(d, ETH_ARP), cmp);
                        match proto {
                            Some(Proto::Ip) => ip,
                            Some(Proto::Arp) => arp,
                            _ => or(ip, arp),
                        }
                    }
                    IpAddr::V6(_) => and(ipv6_at(d), cmp),
                }
            }
            PrimKind::Port { proto, dir, lo, hi } => {
                let port = |f| {
                    if lo == hi {
                        t(f, *lo as u32)
                    } else {
                        and(tm(f, u32::MAX, Cmp::Ge, *lo as u32), tm(f, u32::MAX, Cmp::Le, *hi as u32))
                    }
                };
                let cmp = dir_cond(*dir, port(Field::Sport), port(Field::Dport));
                let l4s: &[u32] = match proto {
                    Some(Proto::Tcp) => &[6],
                    Some(Proto::Udp) => &[17],
                    _ => &[6, 17],
                };
                let v4 = l4s.iter().fold(Cond::Const(false), |acc, p| or(acc, v4_proto(d, *p)));
                let v4 = and(and(v4, t(Field::FragOff, 0)), cmp.clone());
                let v6 = l4s.iter().fold(Cond::Const(false), |acc, p| or(acc, t(Field::Ip, d << 16 | 6 << 8 | p)));
                let v6 = and(and(v6, t(Field::V6Ext, 0)), cmp);
                or(v4, v6)
            }
            PrimKind::Len { cmp, value } => tm(Field::WireLen, u32::MAX, *cmp, *value),
            PrimKind::TcpFlags { mask, cmp, value } => and(
                and(v4_proto(d, 6), t(Field::FragOff, 0)),
                tm(Field::TcpFlags, *mask, *cmp, *value),
            ),
        }
    }
}

impl Expr {
    pub fn lower(&self) -> Cond {
        match self {
            Expr::Prim(p) => p.lower(),
            Expr::Not(e) => not(e.lower()),
            Expr::And(a, b) => and(a.lower(), b.lower()),
            Expr::Or(a, b) => or(a.lower(), b.lower()),
        }
    }
}

/// A scalar field of a packet, as the kernel's event would hold it.
pub fn field(p: &Packet, f: Field) -> u32 {
    let vc = p.vlans.len() as u32;
    match f {
        Field::L3 => vc << 16 | p.eth.map_or(0, |e| e.ethertype as u32),
        Field::Ip => vc << 16 | p.ip.as_ref().map_or(0, |ip| (ip.version as u32) << 8 | ip.proto as u32),
        Field::V6Ext => p.ip.as_ref().map_or(0, |ip| {
            (ip.ext_headers.len() as u32) << 8 | ip.ext_headers.first().copied().unwrap_or(0) as u32
        }),
        Field::FragOff => p.ip.as_ref().map_or(0, |ip| ip.frag_offset as u32),
        Field::Sport => p.tcp.map(|t| t.sport).or(p.udp.map(|u| u.sport)).unwrap_or(0) as u32,
        Field::Dport => p.tcp.map(|t| t.dport).or(p.udp.map(|u| u.dport)).unwrap_or(0) as u32,
        Field::TcpFlags => p.tcp.map_or(0, |t| t.flags as u32),
        Field::WireLen => p.len,
        Field::VlanCount => vc,
        Field::Vid0 => p.vlans.first().map_or(0, |v| v.vid as u32),
        Field::Vid1 => p.vlans.get(1).map_or(0, |v| v.vid as u32),
    }
}

/// An address field of a packet (IPv4 in the first 4 bytes), as the kernel's event would hold it.
pub fn addr_field(p: &Packet, f: AddrField) -> [u8; 16] {
    let a = match (&p.ip, &p.arp, f) {
        (Some(ip), _, AddrField::Src) => Some(ip.src),
        (Some(ip), _, AddrField::Dst) => Some(ip.dst),
        (None, Some(arp), AddrField::Src) => Some(arp.spa),
        (None, Some(arp), AddrField::Dst) => Some(arp.tpa),
        _ => None,
    };
    a.map_or([0; 16], bytes16)
}

impl Cond {
    pub fn eval(&self, p: &Packet) -> bool {
        match self {
            Cond::Const(v) => *v,
            Cond::Scalar { field: f, mask, cmp, value } => cmp.holds(field(p, *f) & mask, *value),
            Cond::Addr { field: f, addr, mask } => {
                let a = addr_field(p, *f);
                (0..16).all(|i| a[i] & mask[i] == addr[i])
            }
            Cond::Not(c) => !c.eval(p),
            Cond::And(a, b) => a.eval(p) && b.eval(p),
            Cond::Or(a, b) => a.eval(p) || b.eval(p),
        }
    }

    /// Number of field tests (the kernel program needs one instruction per test).
    pub fn tests(&self) -> usize {
        match self {
            Cond::Const(_) => 0,
            Cond::Scalar { .. } | Cond::Addr { .. } => 1,
            Cond::Not(c) => c.tests(),
            Cond::And(a, b) | Cond::Or(a, b) => a.tests() + b.tests(),
        }
    }
}

/// A parsed filter: its text, its AST and the lowered tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub text: String,
    pub expr: Expr,
    pub cond: Cond,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let expr = parse(text)?;
        let cond = expr.lower();
        Ok(Filter { text: text.to_string(), expr, cond })
    }

    /// User-space evaluation over a dissected packet.
    pub fn matches(&self, p: &Packet) -> bool {
        self.cond.eval(p)
    }
}

// ---------------------------------------------------------------- lexer

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    LParen,
    RParen,
    LBrack,
    RBrack,
    Amp,
    Pipe,
    AndAnd,
    OrOr,
    Bang,
    Slash,
    Rel(Cmp),
    End,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("'{w}'"),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::LBrack => "'['".into(),
        Tok::RBrack => "']'".into(),
        Tok::Amp => "'&'".into(),
        Tok::Pipe => "'|'".into(),
        Tok::AndAnd => "'&&'".into(),
        Tok::OrOr => "'||'".into(),
        Tok::Bang => "'!'".into(),
        Tok::Slash => "'/'".into(),
        Tok::Rel(_) => "a comparison".into(),
        Tok::End => "the end of the expression".into(),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '_')
}

fn lex(s: &str) -> Result<Vec<(Tok, usize)>, (usize, String)> {
    let cs: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        let col = i + 1;
        let next = cs.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if is_word_char(c) {
            let start = i;
            while i < cs.len() && is_word_char(cs[i]) {
                i += 1;
            }
            out.push((Tok::Word(cs[start..i].iter().collect()), col));
            continue;
        }
        let (tok, n) = match (c, next) {
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('[', _) => (Tok::LBrack, 1),
            (']', _) => (Tok::RBrack, 1),
            ('&', Some('&')) => (Tok::AndAnd, 2),
            ('&', _) => (Tok::Amp, 1),
            ('|', Some('|')) => (Tok::OrOr, 2),
            ('|', _) => (Tok::Pipe, 1),
            ('!', Some('=')) => (Tok::Rel(Cmp::Ne), 2),
            ('!', _) => (Tok::Bang, 1),
            ('/', _) => (Tok::Slash, 1),
            ('=', Some('=')) => (Tok::Rel(Cmp::Eq), 2),
            ('=', _) => (Tok::Rel(Cmp::Eq), 1),
            ('<', Some('=')) => (Tok::Rel(Cmp::Le), 2),
            ('<', _) => (Tok::Rel(Cmp::Lt), 1),
            ('>', Some('=')) => (Tok::Rel(Cmp::Ge), 2),
            ('>', _) => (Tok::Rel(Cmp::Gt), 1),
            _ => return Err((col, format!("unexpected character {c:?}"))),
        };
        out.push((tok, col));
        i += n;
    }
    out.push((Tok::End, cs.len() + 1));
    Ok(out)
}

// ---------------------------------------------------------------- parser

/// The qualifiers a bare value after `and`/`or`/`not` inherits.
#[derive(Clone, Copy, Debug)]
struct Qual {
    proto: Option<Proto>,
    dir: Dir,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Host,
    Net,
    Port,
    PortRange,
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: u8,
    last: Option<Qual>,
    nesting: usize,
}

type PResult<T> = Result<T, FilterError>;

const MAX_NESTING: usize = 200;
/// Bounds the AST's depth (and/or chains nest), so lowering and evaluation never exhaust a stack.
const MAX_TOKENS: usize = 2048;

/// Parses a filter expression into its AST.
pub fn parse(text: &str) -> PResult<Expr> {
    let toks = lex(text).map_err(|(column, message)| FilterError { column, message, expr: text.to_string() })?;
    if toks.len() > MAX_TOKENS {
        let column = toks[MAX_TOKENS].1;
        return Err(FilterError { column, message: format!("filter too long (more than {MAX_TOKENS} tokens)"), expr: text.to_string() });
    }
    let mut p = Parser { text, toks, pos: 0, depth: 0, last: None, nesting: 0 };
    if p.peek() == &Tok::End {
        return Err(p.err_here("empty filter"));
    }
    let e = p.expr()?;
    if p.peek() != &Tok::End {
        let what = describe(p.peek());
        return Err(p.err_here(format!("expected 'and', 'or' or the end, found {what}")));
    }
    Ok(e)
}

fn parse_num(w: &str) -> Option<u32> {
    if let Some(h) = w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else if w.len() > 1 && w.starts_with('0') {
        // tcpdump reads a leading 0 as octal.
        u32::from_str_radix(&w[1..], 8).ok()
    } else if w.bytes().all(|b| b.is_ascii_digit()) {
        w.parse().ok()
    } else {
        None
    }
}

fn tcp_flag(w: &str) -> Option<u32> {
    Some(match w {
        "tcp-fin" => 0x01,
        "tcp-syn" => 0x02,
        "tcp-rst" => 0x04,
        "tcp-push" => 0x08,
        "tcp-ack" => 0x10,
        "tcp-urg" => 0x20,
        "tcp-ece" => 0x40,
        "tcp-cwr" => 0x80,
        _ => return None,
    })
}

fn is_keyword(w: &str) -> bool {
    matches!(
        w,
        "and" | "or" | "not" | "host" | "net" | "port" | "portrange" | "src" | "dst" | "ip" | "ip6" | "arp" | "tcp"
            | "udp" | "icmp" | "icmp6" | "vlan" | "len" | "greater" | "less" | "mask"
    )
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }
    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.pos + k).min(self.toks.len() - 1)].0
    }
    fn col(&self) -> usize {
        self.toks[self.pos].1
    }
    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos].clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }
    fn err(&self, column: usize, message: impl Into<String>) -> FilterError {
        FilterError { column, message: message.into(), expr: self.text.to_string() }
    }
    fn err_here(&self, message: impl Into<String>) -> FilterError {
        self.err(self.col(), message)
    }
    fn word_is(&self, k: usize, w: &str) -> bool {
        matches!(self.peek_at(k), Tok::Word(x) if x == w)
    }
    fn is_and(&self, k: usize) -> bool {
        self.word_is(k, "and") || self.peek_at(k) == &Tok::AndAnd
    }
    fn is_or(&self, k: usize) -> bool {
        self.word_is(k, "or") || self.peek_at(k) == &Tok::OrOr
    }

    fn expr(&mut self) -> PResult<Expr> {
        let mut lhs = self.unary()?;
        loop {
            // tcpdump: `and` and `or` have equal precedence, left to right.
            if self.is_and(0) {
                self.bump();
                let rhs = self.unary()?;
                lhs = Expr::And(Box::new(lhs), Box::new(rhs));
            } else if self.is_or(0) {
                self.bump();
                let rhs = self.unary()?;
                lhs = Expr::Or(Box::new(lhs), Box::new(rhs));
            } else {
                return Ok(lhs);
            }
        }
    }

    fn unary(&mut self) -> PResult<Expr> {
        if self.word_is(0, "not") || self.peek() == &Tok::Bang {
            self.bump();
            self.nesting += 1;
            if self.nesting > MAX_NESTING {
                return Err(self.err_here("expression nested too deeply"));
            }
            let e = self.unary()?;
            self.nesting -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.primary()
    }

    /// `( inner )`, with the nesting bound and an error naming the unclosed '(' column.
    fn parenthesized<T>(&mut self, inner: fn(&mut Self) -> PResult<T>) -> PResult<T> {
        let open = self.col();
        self.bump();
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.err(open, "expression nested too deeply"));
        }
        let v = inner(self)?;
        self.nesting -= 1;
        if self.peek() != &Tok::RParen {
            let what = describe(self.peek());
            return Err(self.err_here(format!("expected ')' to close the '(' at column {open}, found {what}")));
        }
        self.bump();
        Ok(v)
    }

    fn primary(&mut self) -> PResult<Expr> {
        match self.peek().clone() {
            Tok::LParen => self.parenthesized(Self::expr),
            Tok::Word(w) => self.primitive(&w),
            other => Err(self.err_here(format!("expected a primitive (host, net, port, tcp, ...), found {}", describe(&other)))),
        }
    }

    fn prim(&self, kind: PrimKind) -> Expr {
        Expr::Prim(Prim { kind, vlan_depth: self.depth })
    }

    fn primitive(&mut self, w: &str) -> PResult<Expr> {
        let col = self.col();
        let proto = match w {
            "ip" => Some(Proto::Ip),
            "ip6" => Some(Proto::Ip6),
            "arp" => Some(Proto::Arp),
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "icmp" => Some(Proto::Icmp),
            "icmp6" => Some(Proto::Icmp6),
            _ => None,
        };
        if let Some(p) = proto {
            self.bump();
            let qual_next = matches!(self.peek(), Tok::Word(x) if matches!(x.as_str(), "src" | "dst" | "host" | "net" | "port" | "portrange"));
            if qual_next {
                if matches!(p, Proto::Icmp | Proto::Icmp6) {
                    return Err(self.err(col, format!("'{w}' cannot qualify host, net or port")));
                }
                return self.qualified(Some((p, col)));
            }
            if p == Proto::Tcp && self.peek() == &Tok::LBrack {
                return self.tcp_flags(col);
            }
            if self.peek() == &Tok::LBrack {
                return Err(self.err_here(format!("only tcp[13] (tcp[tcpflags]) can be indexed, not {w}[...]")));
            }
            self.last = None;
            return Ok(self.prim(PrimKind::Proto(p)));
        }
        match w {
            "vlan" => {
                self.bump();
                let mut id = None;
                if let Tok::Word(n) = self.peek().clone() {
                    if let Some(v) = parse_num(&n) {
                        if v > 4095 {
                            return Err(self.err_here(format!("VLAN ID {v} is not in 0..4095")));
                        }
                        id = Some(v as u16);
                        self.bump();
                    }
                }
                let e = self.prim(PrimKind::Vlan(id));
                self.depth = self.depth.saturating_add(1);
                self.last = None;
                Ok(e)
            }
            "src" | "dst" | "host" | "net" | "port" | "portrange" => self.qualified(None),
            "len" => {
                self.bump();
                let Tok::Rel(cmp) = self.peek().clone() else {
                    return Err(self.err_here(format!("expected a comparison after 'len' (=, !=, <, <=, >, >=), found {}", describe(self.peek()))));
                };
                self.bump();
                let value = self.number("a length")?;
                self.last = None;
                Ok(self.prim(PrimKind::Len { cmp, value }))
            }
            "greater" | "less" => {
                self.bump();
                let value = self.number("a length")?;
                self.last = None;
                let cmp = if w == "greater" { Cmp::Ge } else { Cmp::Le };
                Ok(self.prim(PrimKind::Len { cmp, value }))
            }
            "and" | "or" | "not" | "mask" => {
                Err(self.err_here(format!("expected a primitive (host, net, port, tcp, ...), found '{w}'")))
            }
            _ => {
                // A bare value: repeat the previous qualifiers, or (first) an address means host/net.
                if let Some(q) = self.last {
                    return self.value(q);
                }
                if w.parse::<IpAddr>().is_ok() || (w.contains('.') && self.peek_at(1) == &Tok::Slash) {
                    let kind = if self.peek_at(1) == &Tok::Slash { Kind::Net } else { Kind::Host };
                    let q = Qual { proto: None, dir: Dir::SrcOrDst, kind };
                    self.last = Some(q);
                    return self.value(q);
                }
                if tcp_flag(w).is_some() || parse_num(w).is_some() {
                    return Err(self.err_here(format!("'{w}' needs a qualifier before it (host, net, port, portrange, ...)")));
                }
                Err(self.err_here(format!("unknown primitive '{w}' (rxray does not resolve names: give addresses and numbers)")))
            }
        }
    }

    /// `[proto] [dir] [host|net|port|portrange] value`; `proto` was already consumed.
    fn qualified(&mut self, proto: Option<(Proto, usize)>) -> PResult<Expr> {
        let mut dir = Dir::SrcOrDst;
        if self.word_is(0, "src") || self.word_is(0, "dst") {
            let first_src = self.word_is(0, "src");
            let other = if first_src { "dst" } else { "src" };
            self.bump();
            if (self.is_or(0) || self.is_and(0)) && self.word_is(1, other) {
                dir = if self.is_or(0) { Dir::SrcOrDst } else { Dir::SrcAndDst };
                self.bump();
                self.bump();
            } else {
                dir = if first_src { Dir::Src } else { Dir::Dst };
            }
        }
        let kind = match self.peek() {
            Tok::Word(x) if x == "host" => Some(Kind::Host),
            Tok::Word(x) if x == "net" => Some(Kind::Net),
            Tok::Word(x) if x == "port" => Some(Kind::Port),
            Tok::Word(x) if x == "portrange" => Some(Kind::PortRange),
            _ => None,
        };
        if kind.is_some() {
            self.bump();
        }
        let kind = match kind {
            Some(k) => k,
            None => match self.peek() {
                Tok::Word(v) if v.parse::<IpAddr>().is_ok() || v.contains('.') => {
                    if self.peek_at(1) == &Tok::Slash {
                        Kind::Net
                    } else {
                        Kind::Host
                    }
                }
                other => {
                    let what = describe(other);
                    return Err(self.err_here(format!("expected host, net, port, portrange or an address, found {what}")));
                }
            },
        };
        if let Some((p, pcol)) = proto {
            let ok = match kind {
                Kind::Host | Kind::Net => matches!(p, Proto::Ip | Proto::Ip6 | Proto::Arp),
                Kind::Port | Kind::PortRange => matches!(p, Proto::Tcp | Proto::Udp),
            };
            if !ok {
                let k = match kind {
                    Kind::Host => "host",
                    Kind::Net => "net",
                    Kind::Port => "port",
                    Kind::PortRange => "portrange",
                };
                return Err(self.err(pcol, format!("'{}' cannot qualify {k}", keyword(p))));
            }
        }
        let q = Qual { proto: proto.map(|(p, _)| p), dir, kind };
        self.last = Some(q);
        self.value(q)
    }

    fn value(&mut self, q: Qual) -> PResult<Expr> {
        let col = self.col();
        let Tok::Word(v) = self.peek().clone() else {
            let what = describe(self.peek());
            return Err(self.err_here(format!("expected {}, found {what}", kind_value(q.kind))));
        };
        if is_keyword(&v) {
            return Err(self.err_here(format!("expected {}, found '{v}'", kind_value(q.kind))));
        }
        self.bump();
        match q.kind {
            Kind::Host => {
                let addr: IpAddr = v.parse().map_err(|_| {
                    self.err(col, format!("'{v}' is not an IPv4 or IPv6 address (rxray does not resolve host names)"))
                })?;
                if self.peek() == &Tok::Slash || self.word_is(0, "mask") {
                    return Err(self.err_here("a mask is for networks: write 'net' instead of 'host'"));
                }
                self.check_family(q.proto, addr, col)?;
                let mask = match addr {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::BROADCAST),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(u128::MAX)),
                };
                Ok(self.prim(PrimKind::Addr { proto: q.proto, dir: q.dir, addr, mask, net: false }))
            }
            Kind::Net => {
                let (addr, mut bits) = match v.parse::<IpAddr>() {
                    Ok(a) => (a, if a.is_ipv4() { 32 } else { 128 }),
                    Err(_) => {
                        // tcpdump's short IPv4 networks: `10`, `10.1`, `10.1.2`.
                        let parts: Vec<&str> = v.split('.').collect();
                        let nums: Option<Vec<u8>> = parts.iter().map(|p| p.parse::<u8>().ok()).collect();
                        match nums {
                            Some(n) if !n.is_empty() && n.len() < 4 => {
                                let mut o = [0u8; 4];
                                o[..n.len()].copy_from_slice(&n);
                                (IpAddr::V4(Ipv4Addr::from(o)), 8 * n.len() as u32)
                            }
                            _ => return Err(self.err(col, format!("'{v}' is not a network address"))),
                        }
                    }
                };
                let mut mask = None;
                if self.peek() == &Tok::Slash {
                    self.bump();
                    let max = if addr.is_ipv4() { 32 } else { 128 };
                    let bcol = self.col();
                    let b = self.number("a prefix length")?;
                    if b > max {
                        return Err(self.err(bcol, format!("prefix length {b} is more than {max}")));
                    }
                    bits = b;
                } else if self.word_is(0, "mask") {
                    self.bump();
                    let mcol = self.col();
                    let Tok::Word(m) = self.peek().clone() else {
                        return Err(self.err_here("expected a netmask after 'mask'"));
                    };
                    let m: Ipv4Addr = m.parse().map_err(|_| self.err(mcol, format!("'{m}' is not an IPv4 netmask")))?;
                    if !addr.is_ipv4() {
                        return Err(self.err(mcol, "'mask' is for IPv4 networks; write IPv6 networks as ADDR/LEN"));
                    }
                    self.bump();
                    mask = Some(IpAddr::V4(m));
                }
                let mask = mask.unwrap_or(match addr {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(if bits == 0 { 0 } else { u32::MAX << (32 - bits) })),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(if bits == 0 { 0 } else { u128::MAX << (128 - bits) })),
                });
                let (a, m) = (bytes16(addr), bytes16(mask));
                if (0..16).any(|i| a[i] & !m[i] != 0) {
                    return Err(self.err(col, format!("non-network bits set in '{v}' for that mask")));
                }
                self.check_family(q.proto, addr, col)?;
                Ok(self.prim(PrimKind::Addr { proto: q.proto, dir: q.dir, addr, mask, net: true }))
            }
            Kind::Port => {
                let p = parse_num(&v)
                    .filter(|p| *p <= 65535)
                    .ok_or_else(|| self.err(col, format!("'{v}' is not a port number 0..65535 (rxray does not resolve service names)")))?;
                Ok(self.prim(PrimKind::Port { proto: q.proto, dir: q.dir, lo: p as u16, hi: p as u16 }))
            }
            Kind::PortRange => {
                let bad = || self.err(col, format!("'{v}' is not a port range LOW-HIGH (0..65535)"));
                let (a, b) = v.split_once('-').ok_or_else(bad)?;
                let a = parse_num(a).filter(|p| *p <= 65535).ok_or_else(bad)? as u16;
                let b = parse_num(b).filter(|p| *p <= 65535).ok_or_else(bad)? as u16;
                // tcpdump swaps a reversed range.
                let (lo, hi) = (a.min(b), a.max(b));
                Ok(self.prim(PrimKind::Port { proto: q.proto, dir: q.dir, lo, hi }))
            }
        }
    }

    fn check_family(&self, proto: Option<Proto>, addr: IpAddr, col: usize) -> PResult<()> {
        match (proto, addr) {
            (Some(Proto::Ip6), IpAddr::V4(_)) => Err(self.err(col, "an IPv4 address with 'ip6'")),
            (Some(Proto::Ip | Proto::Arp), IpAddr::V6(_)) => {
                Err(self.err(col, format!("an IPv6 address with '{}'", keyword(proto.unwrap_or(Proto::Ip)))))
            }
            _ => Ok(()),
        }
    }

    fn number(&mut self, what: &str) -> PResult<u32> {
        match self.peek().clone() {
            Tok::Word(w) => match parse_num(&w) {
                Some(n) => {
                    self.bump();
                    Ok(n)
                }
                None => Err(self.err_here(format!("expected {what} (a number), found '{w}'"))),
            },
            other => Err(self.err_here(format!("expected {what} (a number), found {}", describe(&other)))),
        }
    }

    /// `tcp[tcpflags] [& VALUE] OP VALUE`; `tcp` consumed, at '['.
    fn tcp_flags(&mut self, _col: usize) -> PResult<Expr> {
        self.bump(); // '['
        match self.peek().clone() {
            Tok::Word(w) if w == "tcpflags" || parse_num(&w) == Some(13) => {
                self.bump();
            }
            other => {
                return Err(self.err_here(format!("only tcp[13] (tcp[tcpflags]) is supported, found {}", describe(&other))));
            }
        }
        if self.peek() != &Tok::RBrack {
            let what = describe(self.peek());
            return Err(self.err_here(format!("expected ']', found {what}")));
        }
        self.bump();
        let mut mask = 0xff;
        if self.peek() == &Tok::Amp {
            self.bump();
            mask = self.flag_value()?;
        }
        let Tok::Rel(cmp) = self.peek().clone() else {
            let what = describe(self.peek());
            return Err(self.err_here(format!("expected a comparison (=, !=, <, <=, >, >=), found {what}")));
        };
        self.bump();
        let value = self.flag_value()?;
        self.last = None;
        Ok(self.prim(PrimKind::TcpFlags { mask, cmp, value }))
    }

    /// A number or TCP flag name, or several joined with '|', in optional parentheses.
    fn flag_value(&mut self) -> PResult<u32> {
        let mut v = self.flag_atom()?;
        while self.peek() == &Tok::Pipe {
            self.bump();
            v |= self.flag_atom()?;
        }
        Ok(v)
    }

    fn flag_atom(&mut self) -> PResult<u32> {
        match self.peek().clone() {
            Tok::LParen => self.parenthesized(Self::flag_value),
            Tok::Word(w) => match tcp_flag(&w).or_else(|| parse_num(&w)) {
                Some(v) => {
                    self.bump();
                    Ok(v)
                }
                None => Err(self.err_here(format!(
                    "expected a number or a TCP flag (tcp-fin, tcp-syn, tcp-rst, tcp-push, tcp-ack, tcp-urg, tcp-ece, tcp-cwr), found '{w}'"
                ))),
            },
            other => Err(self.err_here(format!("expected a number or a TCP flag, found {}", describe(&other)))),
        }
    }
}

/// The filter word for a protocol qualifier (`ip6`, `icmp6`, ...).
fn keyword(p: Proto) -> &'static str {
    match p {
        Proto::Ip => "ip",
        Proto::Ip6 => "ip6",
        Proto::Arp => "arp",
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Icmp => "icmp",
        Proto::Icmp6 => "icmp6",
    }
}

fn kind_value(k: Kind) -> &'static str {
    match k {
        Kind::Host => "an address",
        Kind::Net => "a network",
        Kind::Port => "a port number",
        Kind::PortRange => "a port range",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Expr {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn prim(kind: PrimKind) -> Expr {
        Expr::Prim(Prim { kind, vlan_depth: 0 })
    }
    fn host(a: &str) -> Expr {
        let addr: IpAddr = a.parse().unwrap();
        prim(PrimKind::Addr { proto: None, dir: Dir::SrcOrDst, addr, mask: IpAddr::V4(Ipv4Addr::BROADCAST), net: false })
    }
    fn tcp() -> Expr {
        prim(PrimKind::Proto(Proto::Tcp))
    }
    fn udp() -> Expr {
        prim(PrimKind::Proto(Proto::Udp))
    }
    fn icmp() -> Expr {
        prim(PrimKind::Proto(Proto::Icmp))
    }
    fn and(a: Expr, b: Expr) -> Expr {
        Expr::And(Box::new(a), Box::new(b))
    }
    fn or(a: Expr, b: Expr) -> Expr {
        Expr::Or(Box::new(a), Box::new(b))
    }
    fn not(a: Expr) -> Expr {
        Expr::Not(Box::new(a))
    }
    fn col(s: &str) -> (usize, String) {
        let e = parse(s).expect_err(s);
        (e.column, e.message)
    }

    #[test]
    fn and_or_have_equal_precedence_left_to_right_and_not_binds_tightest() {
        // pcap-filter(7): "Alternation and concatenation have equal precedence and associate left to right."
        assert_eq!(p("tcp or udp and icmp"), and(or(tcp(), udp()), icmp()));
        assert_eq!(p("tcp and udp or icmp"), or(and(tcp(), udp()), icmp()));
        assert_eq!(p("not tcp and udp"), and(not(tcp()), udp()));
        assert_eq!(p("! tcp || udp && icmp"), and(or(not(tcp()), udp()), icmp()));
        assert_eq!(p("tcp or (udp and icmp)"), or(tcp(), and(udp(), icmp())));
        assert_eq!(p("not not tcp"), not(not(tcp())));
    }

    #[test]
    fn bare_values_repeat_the_previous_qualifiers() {
        assert_eq!(p("host 1.2.3.4 or 5.6.7.8"), or(host("1.2.3.4"), host("5.6.7.8")));
        assert_eq!(p("host 1.2.3.4 and not 5.6.7.8"), and(host("1.2.3.4"), not(host("5.6.7.8"))));
        assert_eq!(p("host 1.2.3.4 or (5.6.7.8 or 9.9.9.9)"), or(host("1.2.3.4"), or(host("5.6.7.8"), host("9.9.9.9"))));
        let port = |n| prim(PrimKind::Port { proto: Some(Proto::Tcp), dir: Dir::Dst, lo: n, hi: n });
        assert_eq!(p("tcp dst port 80 or 443 or 8080"), or(or(port(80), port(443)), port(8080)));
        assert_eq!(p("1.2.3.4"), host("1.2.3.4"));
        // A protocol primitive in between forgets the qualifiers.
        assert!(parse("port 80 and tcp or 443").is_err());
    }

    #[test]
    fn qualifiers_and_values() {
        let e = p("src or dst net 10.0.0.0/8");
        assert_eq!(
            e,
            prim(PrimKind::Addr { proto: None, dir: Dir::SrcOrDst, addr: "10.0.0.0".parse().unwrap(), mask: "255.0.0.0".parse().unwrap(), net: true })
        );
        assert_eq!(p("net 10"), p("net 10.0.0.0/8"));
        assert_eq!(p("net 10.1.0.0 mask 255.255.0.0"), p("net 10.1/16"));
        assert!(matches!(p("src and dst host ::1"), Expr::Prim(Prim { kind: PrimKind::Addr { dir: Dir::SrcAndDst, .. }, .. })));
        assert!(matches!(p("dst or src port 53"), Expr::Prim(Prim { kind: PrimKind::Port { dir: Dir::SrcOrDst, lo: 53, hi: 53, .. }, .. })));
        assert!(matches!(p("portrange 2000-1000"), Expr::Prim(Prim { kind: PrimKind::Port { lo: 1000, hi: 2000, .. }, .. })));
        assert!(matches!(p("port 010"), Expr::Prim(Prim { kind: PrimKind::Port { lo: 8, .. }, .. })), "octal like tcpdump");
        assert_eq!(p("greater 100"), prim(PrimKind::Len { cmp: Cmp::Ge, value: 100 }));
        assert_eq!(p("less 0x40"), prim(PrimKind::Len { cmp: Cmp::Le, value: 64 }));
        assert_eq!(p("len != 60"), prim(PrimKind::Len { cmp: Cmp::Ne, value: 60 }));
        let fl = |mask, cmp, value| prim(PrimKind::TcpFlags { mask, cmp, value });
        assert_eq!(p("tcp[tcpflags] & (tcp-syn|tcp-ack) != 0"), fl(0x12, Cmp::Ne, 0));
        assert_eq!(p("tcp[13] & tcp-syn|tcp-fin == tcp-syn"), fl(0x03, Cmp::Eq, 0x02));
        assert_eq!(p("tcp[13] = 2"), fl(0xff, Cmp::Eq, 2));
        assert_eq!(p("tcp[tcpflags]&tcp-rst!=0"), fl(0x04, Cmp::Ne, 0));
    }

    #[test]
    fn vlan_shifts_later_tests_textually() {
        let Expr::And(a, b) = p("vlan 100 and udp") else { panic!() };
        assert_eq!(*a, prim(PrimKind::Vlan(Some(100))));
        assert_eq!(*b, Expr::Prim(Prim { kind: PrimKind::Proto(Proto::Udp), vlan_depth: 1 }));
        let Expr::Or(_, b) = p("(vlan) or ip") else { panic!() };
        assert_eq!(b.as_ref(), &Expr::Prim(Prim { kind: PrimKind::Proto(Proto::Ip), vlan_depth: 1 }));
    }

    #[test]
    fn errors_point_at_the_column() {
        assert_eq!(col("host 1.2.3.4 an 5").0, 14);
        assert_eq!(col("port 99999").0, 6);
        assert_eq!(col("tcp and (udp or icmp").0, 21);
        assert_eq!(col("net 10.1.2.3/8").0, 5);
        assert_eq!(col("host example.com").0, 6);
        assert_eq!(col("tcp[12] & 2 != 0").0, 5);
        assert_eq!(col("udp and $").0, 9);
        assert_eq!(col("len 5").0, 5);
        assert_eq!(col("udp and").0, 8);
        assert_eq!(col("tcp host 1.2.3.4").0, 1);
        assert_eq!(col("ip6 host 1.2.3.4").0, 10);
        assert_eq!(col("").0, 1);
        assert_eq!(col("host 1.2.3.4/24").0, 13);
        assert_eq!(col("portrange 5-x").0, 11);
        assert_eq!(col("tcp[tcpflags] & tcp-bogus != 0").0, 17);
        let e = parse("udp and dst port http").unwrap_err();
        assert_eq!(e.column, 18);
        assert_eq!(e.to_string().lines().last().unwrap(), format!("    {}^", " ".repeat(17)));
        assert!(e.to_string().contains("udp and dst port http"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let s = format!("{}tcp{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse(&s).is_err());
        let s = format!("{}tcp", "not ".repeat(5000));
        assert!(parse(&s).is_err());
    }

    #[test]
    fn lowering_folds_impossible_tests() {
        // Third-tag VIDs never match (rxray parses two tags).
        assert_eq!(p("vlan and vlan and vlan 5").lower(), Cond::Const(false));
        assert_eq!(p("vlan and vlan and vlan").lower().tests(), 3);
        // `udp and dst port 53`: 4 tests for udp, 8 for the port (both IP versions).
        assert_eq!(Filter::parse("udp and dst port 53").unwrap().cond.tests(), 4 + 8);
    }
}
