//! One parsed signature: its header (protocol, addresses, ports, direction) and its options, in
//! the form the matcher evaluates. Built only by the parser, so every value here was validated.
use super::addr::{AddrSpec, PortSpec};
use memchr::memmem::Finder;
use super::pcre::{BufferFlag, Pcre2};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    /// ICMPv4 and ICMPv6.
    Icmp,
    /// Any IP packet.
    Ip,
    /// `pkthdr`: any packet, IP or not (rules on the packet header only).
    Pkthdr,
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
    /// `endswith`: the match must end where the buffer ends.
    pub endswith: bool,
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
        Content { bytes, negated, nocase: false, offset: None, depth: None, distance: None, within: None, fast_pattern: false, endswith: false, finder }
    }
}

/// `pcre`, compiled by PCRE2 (bytes, no UTF: PCRE's byte semantics, as Suricata runs it).
#[derive(Clone, Debug)]
pub struct Pcre {
    pub source: String,
    pub regex: Pcre2,
    pub negated: bool,
    /// `R`: searched from the end of the previous payload match, `^` anchoring there.
    pub relative: bool,
}

/// Where a `content` or `pcre` looks: the packet payload, or one of Suricata's HTTP buffers of a
/// reassembled, paired call (docs/signatures.md says what each holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Buffer {
    Payload,
    Method,
    Uri,
    UriRaw,
    Header,
    HeaderRaw,
    HeaderNames,
    Host,
    HostRaw,
    UserAgent,
    Cookie,
    RequestBody,
    StatCode,
    StatMsg,
    ResponseBody,
    /// `file.data`: the body of the rule's direction (request body to the server, response body
    /// to the client).
    FileData,
    /// `dns.query`: each question name of a DNS request, dotted (signatures/dns.rs).
    DnsQuery,
    /// TLS handshake facts (signatures/tls.rs): the ClientHello's SNI, the server certificate's
    /// subject and issuer, the ClientHello's JA4.
    TlsSni,
    TlsCertSubject,
    TlsCertIssuer,
    Ja4Hash,
}

impl Buffer {
    /// A sticky-buffer keyword (`http.uri; content:...`).
    pub fn sticky(name: &str) -> Option<Buffer> {
        Some(match name {
            "pkt_data" => Buffer::Payload,
            "http.method" => Buffer::Method,
            "http.uri" => Buffer::Uri,
            "http.uri.raw" => Buffer::UriRaw,
            "http.header" => Buffer::Header,
            "http.header.raw" => Buffer::HeaderRaw,
            "http.header_names" => Buffer::HeaderNames,
            "http.host" => Buffer::Host,
            "http.host.raw" => Buffer::HostRaw,
            "http.user_agent" => Buffer::UserAgent,
            "http.cookie" => Buffer::Cookie,
            "http.request_body" | "http.client_body" => Buffer::RequestBody,
            "http.stat_code" => Buffer::StatCode,
            "http.stat_msg" => Buffer::StatMsg,
            "http.response_body" | "http.server_body" => Buffer::ResponseBody,
            "file.data" | "file_data" => Buffer::FileData,
            "dns.query" | "dns_query" => Buffer::DnsQuery,
            "tls.sni" | "tls_sni" => Buffer::TlsSni,
            "tls.cert_subject" => Buffer::TlsCertSubject,
            "tls.cert_issuer" => Buffer::TlsCertIssuer,
            "ja4.hash" => Buffer::Ja4Hash,
            _ => return None,
        })
    }

    /// A legacy content modifier (`content:...; http_uri;`): moves the previous content there.
    pub fn modifier(name: &str) -> Option<Buffer> {
        Some(match name {
            "http_method" => Buffer::Method,
            "http_uri" => Buffer::Uri,
            "http_raw_uri" => Buffer::UriRaw,
            "http_header" => Buffer::Header,
            "http_raw_header" => Buffer::HeaderRaw,
            "http_host" => Buffer::Host,
            "http_raw_host" => Buffer::HostRaw,
            "http_user_agent" => Buffer::UserAgent,
            "http_cookie" => Buffer::Cookie,
            "http_client_body" => Buffer::RequestBody,
            "http_stat_code" => Buffer::StatCode,
            "http_stat_msg" => Buffer::StatMsg,
            "http_server_body" => Buffer::ResponseBody,
            _ => return None,
        })
    }

    /// The buffer a pcre flag selects.
    pub fn of_flag(f: BufferFlag) -> Buffer {
        match f {
            BufferFlag::Uri => Buffer::Uri,
            BufferFlag::UriRaw => Buffer::UriRaw,
            BufferFlag::RequestBody => Buffer::RequestBody,
            BufferFlag::ResponseBody => Buffer::ResponseBody,
            BufferFlag::Header => Buffer::Header,
            BufferFlag::HeaderRaw => Buffer::HeaderRaw,
            BufferFlag::Method => Buffer::Method,
            BufferFlag::Cookie => Buffer::Cookie,
            BufferFlag::StatCode => Buffer::StatCode,
            BufferFlag::UserAgent => Buffer::UserAgent,
            BufferFlag::Host => Buffer::Host,
        }
    }

    /// Buffers only a response has: a rule using one inspects the server's side.
    pub fn response_only(self) -> bool {
        matches!(self, Buffer::StatCode | Buffer::StatMsg | Buffer::ResponseBody)
    }

    /// Buffers only a request has.
    pub fn request_only(self) -> bool {
        matches!(self, Buffer::Method | Buffer::Uri | Buffer::UriRaw | Buffer::Host | Buffer::HostRaw | Buffer::UserAgent | Buffer::RequestBody)
    }

    pub fn name(self) -> &'static str {
        match self {
            Buffer::Payload => "pkt_data",
            Buffer::Method => "http.method",
            Buffer::Uri => "http.uri",
            Buffer::UriRaw => "http.uri.raw",
            Buffer::Header => "http.header",
            Buffer::HeaderRaw => "http.header.raw",
            Buffer::HeaderNames => "http.header_names",
            Buffer::Host => "http.host",
            Buffer::HostRaw => "http.host.raw",
            Buffer::UserAgent => "http.user_agent",
            Buffer::Cookie => "http.cookie",
            Buffer::RequestBody => "http.request_body",
            Buffer::StatCode => "http.stat_code",
            Buffer::StatMsg => "http.stat_msg",
            Buffer::ResponseBody => "http.response_body",
            Buffer::FileData => "file.data",
            Buffer::DnsQuery => "dns.query",
            Buffer::TlsSni => "tls.sni",
            Buffer::TlsCertSubject => "tls.cert_subject",
            Buffer::TlsCertIssuer => "tls.cert_issuer",
            Buffer::Ja4Hash => "ja4.hash",
        }
    }
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
    /// Alerts on the `count`-th match, then each time the count reaches the previous mark times
    /// `multiplier` (count 1, multiplier 10: matches 1, 10, 100, ...).
    Backoff,
    /// `detection_filter`: every match after the `count`-th within the window.
    Detection,
}

/// What a threshold counts by (Suricata's `track`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    BySrc,
    ByDst,
    /// The rule, whatever the addresses.
    ByRule,
    /// The address pair, the same in both directions.
    ByBoth,
    /// The flow (5-tuple, both directions).
    ByFlow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold {
    pub kind: ThresholdType,
    pub track: Track,
    pub count: u32,
    /// The window; 0 for `backoff` (which has none).
    pub seconds: u32,
    /// `backoff` only.
    pub multiplier: u32,
}

/// The rule's action (Suricata's `action-order` default: pass, drop, reject, alert).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleAction {
    /// Stops inspection of the packet: no alert from this rule or any rule after it.
    Pass,
    /// Alerts; with `--enforce` the source is blocked through the firewall.
    Drop,
    /// `reject`, `rejectsrc`, `rejectdst`, `rejectboth`: alerts (rxray sends no resets); with
    /// `--enforce`, blocked like `drop`.
    Reject,
    #[default]
    Alert,
}

impl RuleAction {
    pub fn parse(word: &str) -> Option<RuleAction> {
        Some(match word {
            "alert" => RuleAction::Alert,
            "pass" => RuleAction::Pass,
            "drop" => RuleAction::Drop,
            "reject" | "rejectsrc" | "rejectdst" | "rejectboth" => RuleAction::Reject,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            RuleAction::Pass => "pass",
            RuleAction::Drop => "drop",
            RuleAction::Reject => "reject",
            RuleAction::Alert => "alert",
        }
    }

    /// drop and reject: what `--enforce` turns into a block of the source.
    pub fn blocks(self) -> bool {
        matches!(self, RuleAction::Drop | RuleAction::Reject)
    }
}

impl Rule {
    /// The rule inspects HTTP calls rather than packets.
    pub fn is_http(&self) -> bool {
        !self.http.is_empty() && self.app.proto == super::app::AppProto::None
    }
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub action: RuleAction,
    /// `gid` (Suricata's generator id; 1 unless the rule says otherwise).
    pub gid: u32,
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
    /// `=>`: a transactional rule (Suricata 8): its keywords may look at both sides of one HTTP
    /// transaction (request and response buffers together), matched on the paired call.
    pub transactional: bool,
    /// The explicit hook of `proto:hook` (`tls:client_hello_done`, `http1:request_complete`).
    pub hook: Option<String>,
    /// `content` and `pcre` on the packet payload (or, in an HTTP rule, the raw message), in rule order.
    pub payload: Vec<PayloadItem>,
    /// `content` and `pcre` per HTTP buffer, each list in rule order, buffers in first-use order.
    /// A rule with any is an HTTP rule: it is evaluated on reassembled, paired calls.
    pub http: Vec<(Buffer, Vec<PayloadItem>)>,
    /// An HTTP rule inspects the response side (a response-only buffer, or `flow:to_client`).
    pub to_client: bool,
    pub flow: Option<FlowOpt>,
    pub flags: Option<FlagsOpt>,
    pub dsize: Option<Dsize>,
    /// `decode-event:NAME` (decode_event.rs).
    pub decode_event: Option<super::decode_event::DecodeEvent>,
    pub threshold: Option<Threshold>,
    /// `detection_filter` (kind `Detection`); applied before `threshold` when both are given.
    pub detection_filter: Option<Threshold>,
    pub references: Vec<String>,
    /// The app-layer protocol a `dns` or `tls` rule inspects, and its non-buffer keywords
    /// (`dns.opcode`, `tls.version`); the buffers are in `http`.
    pub app: super::app::AppRule,
}
