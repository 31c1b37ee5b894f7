//! The declarative rules file (`rxray firewall apply FILE`), validated whole before anything changes.
//!
//! ```toml
//! [firewall]
//! default = "allow"          # what happens to packets no rule decides: "allow" (default) or "deny"
//! drop_malformed = false     # drop IP packets whose headers do not parse
//! dry_run = false            # count what would be dropped, drop nothing
//!
//! [[rule]]
//! name = "no telnet"
//! action = "deny"            # "allow", "deny" or "limit"
//! src = ["198.18.0.0/15", "2001:2::/48"]   # or one string; absent: any
//! dst = "198.19.0.1"
//! src_list = "lists/firehol_level1.netset" # a blocklist file (FireHOL / Spamhaus DROP), relative to this file
//! ip = 4                     # 4 or 6; absent: both
//! proto = "tcp"              # tcp, udp, icmp, icmpv6, or a number
//! dport = "23"               # a port or a range "1000-2000"; also sport
//! tcp_flags = "S/SA"         # flags/mask with F S R P A U E C (here: SYN set, ACK clear)
//! ttl = "10m"                # the rule stops applying this long after it is applied (s, m, h, d)
//!
//! [[rule]]
//! action = "limit"
//! rate = "100/s"             # packets per second (/s, /m, /h); and/or bytes_rate = "1MB/s" (B kB MB GB KiB MiB GiB kbit Mbit Gbit)
//! burst = 20                 # packets allowed above the rate at once; burst_bytes for bytes
//! per = "src"                # "rule" (one bucket), "src" (per address), "src/24" or "src/24/64" (per prefix), "dport"
//! ```
//! Rules are evaluated in file order and the first that decides wins; see `rxray.h` for the order
//! with dynamic blocks and the default.
use crate::cidr::{self, aggregate, AggregateStats, Cidr, ParseMode};
use serde::{Deserialize, Serialize};
use std::fmt;
use toml::Spanned;

/// Rules per rule set (the kernel keeps them in a 64-bit mask).
pub const MAX_RULES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
    Limit,
}

/// Which packets share a rate-limit bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    Rule,
    /// One bucket per source prefix of these lengths (IPv4, IPv6).
    Src { v4: u8, v6: u8 },
    Dport,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Limit {
    /// Packets per second (0: no packet rate).
    pub pps: u64,
    pub burst_pkts: u64,
    /// Bytes per second (0: no byte rate).
    pub bps: u64,
    pub burst_bytes: u64,
    pub per: Per,
}

/// An address condition: any address, or the union of prefixes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AddrMatch {
    Any,
    Prefixes(Vec<Cidr>),
}

impl AddrMatch {
    pub fn matches(&self, ip: std::net::IpAddr) -> bool {
        match self {
            AddrMatch::Any => true,
            AddrMatch::Prefixes(v) => v.iter().any(|c| c.contains(ip)),
        }
    }
}

/// What loading a blocklist found (for the apply report).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ListReport {
    pub file: String,
    pub field: &'static str,
    pub host_bits_cleared: usize,
    #[serde(flatten)]
    pub stats: AggregateStats,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// 1-based position in the file: the number `firewall list` and `stats` show.
    pub id: u32,
    pub name: String,
    pub line: usize,
    pub action: Action,
    pub src: AddrMatch,
    pub dst: AddrMatch,
    pub ip: Option<u8>,
    pub proto: Option<u8>,
    pub sport: (u16, u16),
    pub dport: (u16, u16),
    /// TCP flags (value, mask): the rule matches when flags & mask == value.
    pub tcp_flags: Option<(u8, u8)>,
    pub ttl_s: Option<u64>,
    pub limit: Option<Limit>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<ListReport>,
}

impl Rule {
    /// Rule `id` (line `id`, named "r<id>") with no condition: it meets every packet. For building
    /// rules in code: `Rule { src, ..Rule::unconditional(1, Action::Deny) }`.
    pub fn unconditional(id: u32, action: Action) -> Rule {
        Rule {
            id,
            name: format!("r{id}"),
            line: id as usize,
            action,
            src: AddrMatch::Any,
            dst: AddrMatch::Any,
            ip: None,
            proto: None,
            sport: (0, 65535),
            dport: (0, 65535),
            tcp_flags: None,
            ttl_s: None,
            limit: None,
            lists: Vec::new(),
        }
    }

    /// Does the rule test protocol, ports or flags?
    pub fn tests_l4(&self) -> bool {
        self.proto.is_some() || self.sport != (0, 65535) || self.dport != (0, 65535) || self.tcp_flags.is_some()
    }

    /// One line, as `firewall list` prints it.
    pub fn describe(&self) -> String {
        let mut s = format!("{:<5}", format!("{:?}", self.action).to_lowercase());
        let addrs = |m: &AddrMatch| match m {
            AddrMatch::Any => "any".to_string(),
            AddrMatch::Prefixes(v) if v.len() <= 3 => v.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","),
            AddrMatch::Prefixes(v) => format!("{} prefixes", v.len()),
        };
        s += &format!(" from {} to {}", addrs(&self.src), addrs(&self.dst));
        if let Some(v) = self.ip {
            s += &format!(" ip{v}");
        }
        if let Some(p) = self.proto {
            s += &format!(" proto {}", rxray_wire::ipproto::name_or_number(p, rxray_wire::ipproto::Spelling::Rules));
        }
        let ports = |(a, b): (u16, u16)| if a == b { a.to_string() } else { format!("{a}-{b}") };
        if self.sport != (0, 65535) {
            s += &format!(" sport {}", ports(self.sport));
        }
        if self.dport != (0, 65535) {
            s += &format!(" dport {}", ports(self.dport));
        }
        if let Some((v, m)) = self.tcp_flags {
            s += &format!(" flags {}/{}", flag_letters(v), flag_letters(m));
        }
        if let Some(l) = &self.limit {
            if l.pps > 0 {
                s += &format!(" rate {}/s burst {}", l.pps, l.burst_pkts);
            }
            if l.bps > 0 {
                s += &format!(" bytes_rate {}B/s burst {}B", l.bps, l.burst_bytes);
            }
            s += &match l.per {
                Per::Rule => " per rule".to_string(),
                Per::Dport => " per dport".to_string(),
                Per::Src { v4, v6 } => format!(" per src/{v4}/{v6}"),
            };
        }
        if let Some(t) = self.ttl_s {
            s += &format!(" ttl {t}s");
        }
        s
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleSet {
    pub default: Action,
    pub drop_malformed: bool,
    pub dry_run: bool,
    pub rules: Vec<Rule>,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet { default: Action::Allow, drop_malformed: false, dry_run: false, rules: Vec::new() }
    }
}

/// A rules-file error: the file, where (1-based line and column) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FwError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for FwError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for FwError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    firewall: Option<Header>,
    #[serde(default)]
    rule: Vec<Spanned<RuleDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    default: Option<Spanned<String>>,
    drop_malformed: Option<bool>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    name: Option<String>,
    action: Spanned<String>,
    src: Option<Spanned<toml::Value>>,
    dst: Option<Spanned<toml::Value>>,
    src_list: Option<Spanned<String>>,
    dst_list: Option<Spanned<String>>,
    ip: Option<Spanned<i64>>,
    proto: Option<Spanned<toml::Value>>,
    sport: Option<Spanned<toml::Value>>,
    dport: Option<Spanned<toml::Value>>,
    tcp_flags: Option<Spanned<String>>,
    ttl: Option<Spanned<toml::Value>>,
    rate: Option<Spanned<String>>,
    bytes_rate: Option<Spanned<String>>,
    burst: Option<Spanned<i64>>,
    burst_bytes: Option<Spanned<toml::Value>>,
    per: Option<Spanned<String>>,
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, byte: usize) -> (usize, usize) {
    let byte = byte.min(text.len());
    let before = &text[..byte];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> FwError {
        let (line, column) = line_col(self.text, span.start);
        FwError { file: self.file.to_string(), line, column, message: message.into() }
    }
}

/// Parses and validates a rules file. `file` names it in errors; `read_list` returns the text of
/// a blocklist the file names (`src_list`/`dst_list`), or an error message. A file with any error
/// yields every error found (each with its line and column) and no rule set.
pub fn parse_rules(
    file: &str,
    text: &str,
    read_list: &dyn Fn(&str) -> Result<String, String>,
) -> Result<RuleSet, Vec<FwError>> {
    let cx = Ctx { file, text };
    let doc: Doc = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        vec![cx.err(span, e.message().trim().to_string())]
    })?;
    let mut errors = Vec::new();
    let mut set = RuleSet::default();
    if let Some(h) = doc.firewall {
        if let Some(d) = h.default {
            match d.get_ref().as_str() {
                "allow" => set.default = Action::Allow,
                "deny" => set.default = Action::Deny,
                other => errors.push(cx.err(d.span(), format!("default must be \"allow\" or \"deny\", not {other:?}"))),
            }
        }
        set.drop_malformed = h.drop_malformed.unwrap_or(false);
        set.dry_run = h.dry_run.unwrap_or(false);
    }
    for (i, r) in doc.rule.into_iter().enumerate() {
        let span = r.span();
        if i == MAX_RULES {
            errors.push(cx.err(span.clone(), format!("more than {MAX_RULES} rules (put large address sets in src_list files: a list is one rule)")));
            break;
        }
        match rule(&cx, i as u32 + 1, span, r.into_inner(), read_list) {
            Ok(rule) => set.rules.push(rule),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

fn rule(
    cx: &Ctx,
    id: u32,
    span: std::ops::Range<usize>,
    d: RuleDoc,
    read_list: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Rule, Vec<FwError>> {
    let mut errs = Vec::new();
    let line = line_col(cx.text, span.start).0;
    let action = match d.action.get_ref().as_str() {
        "allow" => Action::Allow,
        "deny" => Action::Deny,
        "limit" => Action::Limit,
        other => {
            errs.push(cx.err(d.action.span(), format!("action must be \"allow\", \"deny\" or \"limit\", not {other:?}")));
            Action::Deny
        }
    };
    let mut lists = Vec::new();
    let mut addrs = |v: Option<Spanned<toml::Value>>, list: Option<Spanned<String>>, field: &'static str| {
        let mut out: Option<Vec<Cidr>> = None;
        if let Some(v) = v {
            let items: Vec<&toml::Value> = match v.get_ref() {
                toml::Value::Array(a) => a.iter().collect(),
                one => vec![one],
            };
            let mut got = Vec::new();
            for it in items {
                let Some(s) = it.as_str() else {
                    errs.push(cx.err(v.span(), format!("{field} must be a prefix or a list of prefixes (strings)")));
                    continue;
                };
                match cidr::parse_cidr(s.trim()) {
                    Ok((c, false)) => got.push(c),
                    Ok((c, true)) => errs.push(cx.err(v.span(), format!("{field}: {s:?} has host bits set (the prefix is {c})"))),
                    Err((_, kind)) => errs.push(cx.err(v.span(), format!("{field}: {kind}"))),
                }
            }
            out = Some(got);
        }
        if let Some(l) = list {
            match read_list(l.get_ref()) {
                Err(why) => errs.push(cx.err(l.span(), format!("{field}_list {:?}: {why}", l.get_ref()))),
                Ok(text) => match cidr::parse_list(&text, ParseMode::Strict) {
                    Err(list_errs) => {
                        for e in list_errs.into_iter().take(20) {
                            errs.push(FwError { file: l.get_ref().clone(), line: e.line, column: e.column, message: e.kind.to_string() });
                        }
                    }
                    Ok(parsed) => {
                        let (agg, stats) = aggregate(&parsed.entries, false);
                        lists.push(ListReport {
                            file: l.get_ref().clone(),
                            field,
                            host_bits_cleared: parsed.host_bits_cleared,
                            stats,
                        });
                        out.get_or_insert_with(Vec::new).extend(agg);
                    }
                },
            }
        }
        match out {
            None => AddrMatch::Any,
            Some(v) => AddrMatch::Prefixes(v),
        }
    };
    let src = addrs(d.src, d.src_list, "src");
    let dst = addrs(d.dst, d.dst_list, "dst");

    let ip = match d.ip {
        None => None,
        Some(v) if *v.get_ref() == 4 || *v.get_ref() == 6 => Some(*v.get_ref() as u8),
        Some(v) => {
            errs.push(cx.err(v.span(), "ip must be 4 or 6"));
            None
        }
    };
    if let Some(ver) = ip {
        for m in [&src, &dst] {
            if let AddrMatch::Prefixes(p) = m {
                if p.iter().any(|c| c.is_ipv4() != (ver == 4)) {
                    errs.push(cx.err(span.clone(), format!("ip = {ver}, but an address prefix is of the other family")));
                    break;
                }
            }
        }
    }
    let proto = match &d.proto {
        None => None,
        Some(v) => match v.get_ref() {
            toml::Value::String(s) => match s.as_str() {
                "tcp" => Some(6),
                "udp" => Some(17),
                "icmp" => Some(1),
                "icmpv6" => Some(58),
                "any" => None,
                other => {
                    errs.push(cx.err(v.span(), format!("unknown protocol {other:?} (tcp, udp, icmp, icmpv6, any, or a number)")));
                    None
                }
            },
            toml::Value::Integer(n) if (1..=255).contains(n) => Some(*n as u8),
            _ => {
                errs.push(cx.err(v.span(), "proto must be a name or a number 1..255"));
                None
            }
        },
    };
    let mut ports = |v: &Option<Spanned<toml::Value>>, what: &str| -> (u16, u16) {
        let Some(v) = v else { return (0, 65535) };
        let parsed = match v.get_ref() {
            toml::Value::Integer(n) if (0..=65535).contains(n) => Ok((*n as u16, *n as u16)),
            toml::Value::String(s) => parse_port_range(s),
            _ => Err("must be a port number or a range like \"1000-2000\"".to_string()),
        };
        match parsed {
            Ok(r) => {
                if !matches!(proto, Some(6) | Some(17) | Some(132)) {
                    errs.push(cx.err(v.span(), format!("{what} needs proto = \"tcp\" or \"udp\"")));
                }
                r
            }
            Err(m) => {
                errs.push(cx.err(v.span(), format!("{what} {m}")));
                (0, 65535)
            }
        }
    };
    let sport = ports(&d.sport, "sport");
    let dport = ports(&d.dport, "dport");
    let tcp_flags = match &d.tcp_flags {
        None => None,
        Some(f) => {
            if proto != Some(6) {
                errs.push(cx.err(f.span(), "tcp_flags needs proto = \"tcp\""));
            }
            match parse_flags(f.get_ref()) {
                Ok(v) => Some(v),
                Err(m) => {
                    errs.push(cx.err(f.span(), m));
                    None
                }
            }
        }
    };
    let ttl_s = match &d.ttl {
        None => None,
        Some(v) => match v.get_ref() {
            toml::Value::Integer(n) if *n > 0 => Some(*n as u64),
            toml::Value::String(s) => match parse_duration(s) {
                Ok(n) => Some(n),
                Err(m) => {
                    errs.push(cx.err(v.span(), format!("ttl {m}")));
                    None
                }
            },
            _ => {
                errs.push(cx.err(v.span(), "ttl must be a duration like \"10m\" or a number of seconds"));
                None
            }
        },
    };
    let limit_keys = d.rate.is_some() || d.bytes_rate.is_some() || d.burst.is_some() || d.burst_bytes.is_some() || d.per.is_some();
    let limit = if action == Action::Limit {
        let mut l = Limit { pps: 0, burst_pkts: 0, bps: 0, burst_bytes: 0, per: Per::Rule };
        if let Some(r) = &d.rate {
            match parse_rate(r.get_ref()) {
                Ok(v) => l.pps = v,
                Err(m) => errs.push(cx.err(r.span(), format!("rate {m}"))),
            }
        }
        if let Some(r) = &d.bytes_rate {
            match parse_byte_rate(r.get_ref()) {
                Ok(v) => l.bps = v,
                Err(m) => errs.push(cx.err(r.span(), format!("bytes_rate {m}"))),
            }
        }
        if l.pps == 0 && l.bps == 0 && d.rate.is_none() && d.bytes_rate.is_none() {
            errs.push(cx.err(d.action.span(), "a limit rule needs rate and/or bytes_rate"));
        }
        if let Some(b) = &d.burst {
            if *b.get_ref() < 0 {
                errs.push(cx.err(b.span(), "burst must be 0 or more"));
            }
            l.burst_pkts = (*b.get_ref()).max(0) as u64;
        }
        if let Some(b) = &d.burst_bytes {
            match b.get_ref() {
                toml::Value::Integer(n) if *n >= 0 => l.burst_bytes = *n as u64,
                toml::Value::String(s) => match parse_bytes(s) {
                    Ok(n) => l.burst_bytes = n,
                    Err(m) => errs.push(cx.err(b.span(), format!("burst_bytes {m}"))),
                },
                _ => errs.push(cx.err(b.span(), "burst_bytes must be a size like \"64kB\" or a number of bytes")),
            }
        }
        if l.bps > 0 && l.burst_bytes == 0 {
            errs.push(cx.err(d.action.span(), "bytes_rate needs burst_bytes of at least one packet (e.g. \"1500\")"));
        }
        if let Some(p) = &d.per {
            match parse_per(p.get_ref()) {
                Ok(v) => l.per = v,
                Err(m) => errs.push(cx.err(p.span(), m)),
            }
            if l.per == Per::Dport && !matches!(proto, Some(6) | Some(17)) {
                errs.push(cx.err(p.span(), "per = \"dport\" needs proto = \"tcp\" or \"udp\""));
            }
        }
        Some(l)
    } else {
        if limit_keys {
            errs.push(cx.err(d.action.span(), "rate, bytes_rate, burst, burst_bytes and per belong to action = \"limit\""));
        }
        None
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Rule {
        id,
        name: d.name.unwrap_or_default(),
        line,
        action,
        src,
        dst,
        ip,
        proto,
        sport,
        dport,
        tcp_flags,
        ttl_s,
        limit,
        lists,
    })
}

const FLAG_LETTERS: [(char, u8); 8] =
    [('F', 0x01), ('S', 0x02), ('R', 0x04), ('P', 0x08), ('A', 0x10), ('U', 0x20), ('E', 0x40), ('C', 0x80)];

pub fn flag_letters(v: u8) -> String {
    let s: String = FLAG_LETTERS.iter().filter(|(_, b)| v & b != 0).map(|(c, _)| *c).collect();
    if s.is_empty() {
        "none".into()
    } else {
        s
    }
}

/// "S/SA" (value/mask) or "S" (value = mask); letters F S R P A U E C.
pub fn parse_flags(s: &str) -> Result<(u8, u8), String> {
    let letters = |t: &str| -> Result<u8, String> {
        let mut v = 0u8;
        for ch in t.chars() {
            let Some((_, b)) = FLAG_LETTERS.iter().find(|(c, _)| *c == ch.to_ascii_uppercase()) else {
                return Err(format!("tcp_flags: {ch:?} is not a flag letter (F S R P A U E C)"));
            };
            v |= b;
        }
        Ok(v)
    };
    let (v, m) = match s.split_once('/') {
        Some((v, m)) => (letters(v)?, letters(m)?),
        None => {
            let v = letters(s)?;
            (v, v)
        }
    };
    if m == 0 {
        return Err("tcp_flags: the mask is empty".into());
    }
    if v & !m != 0 {
        return Err(format!("tcp_flags: {} is not inside the mask {}", flag_letters(v & !m), flag_letters(m)));
    }
    Ok((v, m))
}

pub fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let p = |t: &str| t.trim().parse::<u16>().map_err(|_| format!("{t:?} is not a port (0..65535)"));
    let (a, b) = match s.split_once(['-', ':']) {
        Some((a, b)) => (p(a)?, p(b)?),
        None => {
            let a = p(s)?;
            (a, a)
        }
    };
    if a > b {
        return Err(format!("range {s:?} is empty (first port above the last)"));
    }
    Ok((a, b))
}

/// "30s", "10m", "2h", "1d", or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86400),
        _ => (s, 1),
    };
    match num.trim().parse::<u64>() {
        Ok(n) if n > 0 => n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too long")),
        _ => Err(format!("{s:?} is not a duration (e.g. \"30s\", \"10m\", \"2h\", \"1d\")")),
    }
}

fn split_per(s: &str) -> Result<(&str, u64), String> {
    let (n, per) = s.split_once('/').ok_or_else(|| format!("{s:?} needs a unit like \"100/s\""))?;
    let div = match per.trim() {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        other => return Err(format!("unknown time unit {other:?} (s, m, h)")),
    };
    Ok((n.trim(), div))
}

/// "100/s", "6000/m": packets per second (at least 1).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let (n, div) = split_per(s)?;
    let n: u64 = n.parse().map_err(|_| format!("{s:?}: {n:?} is not a number"))?;
    let v = n / div;
    if v == 0 {
        return Err(format!("{s:?} is below 1 packet per second"));
    }
    Ok(v)
}

/// "1500", "64kB", "1MiB", "10Mbit": bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let i = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..i].parse().map_err(|_| format!("{s:?} does not start with a number"))?;
    let mult: f64 = match &s[i..] {
        "" | "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1048576.0,
        "GiB" => 1073741824.0,
        "kbit" => 125.0,
        "Mbit" => 125e3,
        "Gbit" => 125e6,
        other => return Err(format!("unknown size unit {other:?} (B kB MB GB KiB MiB GiB kbit Mbit Gbit)")),
    };
    Ok((n as f64 * mult) as u64)
}

/// "1MB/s", "100Mbit/s": bytes per second.
pub fn parse_byte_rate(s: &str) -> Result<u64, String> {
    let (n, div) = split_per(s)?;
    let v = parse_bytes(n)? / div;
    if v == 0 {
        return Err(format!("{s:?} is below 1 byte per second"));
    }
    Ok(v)
}

fn parse_per(s: &str) -> Result<Per, String> {
    let bad = || format!("per must be \"rule\", \"src\", \"src/<v4 len>\", \"src/<v4 len>/<v6 len>\" or \"dport\", not {s:?}");
    match s {
        "rule" => return Ok(Per::Rule),
        "dport" => return Ok(Per::Dport),
        "src" => return Ok(Per::Src { v4: 32, v6: 128 }),
        _ => {}
    }
    let rest = s.strip_prefix("src/").ok_or_else(bad)?;
    let mut it = rest.split('/');
    let v4: u8 = it.next().and_then(|t| t.parse().ok()).filter(|n| *n <= 32).ok_or_else(bad)?;
    let v6: u8 = match it.next() {
        None => 64,
        Some(t) => t.parse().ok().filter(|n| *n <= 128).ok_or_else(bad)?,
    };
    if it.next().is_some() {
        return Err(bad());
    }
    Ok(Per::Src { v4, v6 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_lists(_: &str) -> Result<String, String> {
        Err("no lists here".into())
    }

    #[test]
    fn a_full_rule_parses() {
        let t = r#"
[firewall]
default = "deny"

[[rule]]
name = "ssh"
action = "allow"
src = ["198.18.0.0/24", "2001:2::/64"]
proto = "tcp"
dport = 22
tcp_flags = "S/SA"
ttl = "10m"

[[rule]]
action = "limit"
proto = "udp"
dport = "1000-2000"
rate = "100/s"
burst = 5
bytes_rate = "1Mbit/s"
burst_bytes = "3kB"
per = "src/24"
"#;
        let s = parse_rules("r.toml", t, &no_lists).unwrap();
        assert_eq!(s.default, Action::Deny);
        let r = &s.rules[0];
        assert_eq!((r.id, r.line, r.action, r.proto, r.dport, r.tcp_flags, r.ttl_s), (1, 5, Action::Allow, Some(6), (22, 22), Some((0x02, 0x12)), Some(600)));
        assert!(matches!(&r.src, AddrMatch::Prefixes(p) if p.len() == 2));
        let l = s.rules[1].limit.unwrap();
        assert_eq!((l.pps, l.burst_pkts, l.bps, l.burst_bytes, l.per), (100, 5, 125_000, 3000, Per::Src { v4: 24, v6: 64 }));
    }

    #[test]
    fn errors_name_line_and_column() {
        let t = "[[rule]]\naction = \"deny\"\nsrc = \"198.18.0.1/24\"\n\n[[rule]]\naction = \"drop\"\n";
        let e = parse_rules("r.toml", t, &no_lists).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!((e[0].line, e[0].column), (3, 7), "{}", e[0]);
        assert!(e[0].message.contains("host bits"), "{}", e[0]);
        assert_eq!((e[1].line, e[1].column), (6, 10), "{}", e[1]);
        let e = parse_rules("r.toml", "[[rule]]\naction = \"deny\"\nport = 3\n", &no_lists).unwrap_err();
        assert_eq!(e[0].line, 3, "{}", e[0]);
        assert!(e[0].message.contains("port"), "{}", e[0]);
        let e = parse_rules("r.toml", "[[rule]\n", &no_lists).unwrap_err();
        assert_eq!(e[0].line, 1, "{}", e[0]);
        let e = parse_rules("r.toml", "[[rule]]\naction = \"deny\"\ndport = 80\n", &no_lists).unwrap_err();
        assert!(e[0].message.contains("needs proto"), "{}", e[0]);
    }

    #[test]
    fn blocklists_load_and_report() {
        let t = "[[rule]]\naction = \"deny\"\nsrc_list = \"l.netset\"\n";
        let read = |p: &str| -> Result<String, String> {
            assert_eq!(p, "l.netset");
            Ok("# FireHOL\n198.18.0.0/16\n198.18.1.0/24\n198.18.0.0/16\n2001:2::/48 ; SBL1\n".into())
        };
        let s = parse_rules("r.toml", t, &read).unwrap();
        let r = &s.rules[0];
        assert!(matches!(&r.src, AddrMatch::Prefixes(p) if p.len() == 2));
        assert_eq!((r.lists[0].stats.read, r.lists[0].stats.duplicates, r.lists[0].stats.covered), (4, 1, 1));
        let bad = |_: &str| -> Result<String, String> { Ok("198.18.0.0/16\n198.18.0.999\n".into()) };
        let e = parse_rules("r.toml", t, &bad).unwrap_err();
        assert_eq!((e[0].file.as_str(), e[0].line, e[0].column), ("l.netset", 2, 1), "{}", e[0]);
    }

    #[test]
    fn units() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert!(parse_duration("0").is_err());
        assert_eq!(parse_rate("600/m"), Ok(10));
        assert_eq!(parse_byte_rate("8Mbit/s"), Ok(1_000_000));
        assert_eq!(parse_flags("S"), Ok((2, 2)));
        assert!(parse_flags("SA/S").is_err());
        assert_eq!(parse_port_range("80:90"), Ok((80, 90)));
        assert!(parse_port_range("90-80").is_err());
    }
}
