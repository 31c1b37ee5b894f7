//! API calls from TCP segments: per-connection reassembly, HTTP/1.x exchanges, per-endpoint metrics.
//! Pure and on event time: every input carries its timestamp; captures and the kernel feed the same type.
pub mod clients;
pub mod conn;
pub mod endpoints;
pub mod exchange;
pub mod h2;
pub mod reassembly;
pub mod tls;

use endpoints::{EndpointSnapshot, Endpoints};
pub use endpoints::{Endpoint, LatencyHist};
pub use exchange::{Call, Message};
use conn::ConnParser;
use exchange::{Ctx, Dir, ParserLimits};
pub use tls::TlsFacts;
use rxray_openapi::{CheckCounters, CheckLimits, Checker, Finding, FindingKey, Spec};
use std::sync::Arc;
use hashbrown::HashMap;
use reassembly::{Piece, Stream, ACK, RST, SYN};
use serde::Serialize;
use std::net::IpAddr;

pub use exchange::Dir as Direction;

/// The ports `rxray http` watches unless told otherwise.
pub const DEFAULT_PORTS: [u16; 5] = [80, 8080, 8000, 3000, 5000];
/// The ports whose connections are TLS unless told otherwise: their handshakes are read.
pub const DEFAULT_TLS_PORTS: [u16; 2] = [443, 8443];
/// TLS connections kept for the report after they end (the oldest go first, counted).
pub const MAX_TLS_KEPT: usize = 1000;

/// One TCP segment (or one chunk of one: a source that copies a packet's payload in pieces gives
/// each piece with `seq` advanced by its offset). `payload` is what was copied of the `wire_len`
/// bytes the segment carried; the rest is counted as not copied.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<'a> {
    pub ts_ns: u64,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    pub dir: Dir,
    pub seq: u32,
    /// The acknowledgement number (read when `flags` has ACK): bytes the other direction is known
    /// to have delivered, so holes below it are final.
    pub ack: u32,
    pub flags: u8,
    pub payload: &'a [u8],
    pub wire_len: u32,
}

/// Which way a segment goes, from its ports: to a watched port is a request, from one a response.
pub fn direction(sport: u16, dport: u16, ports: &[u16]) -> Option<Dir> {
    if ports.contains(&dport) {
        Some(Dir::ToServer)
    } else if ports.contains(&sport) {
        Some(Dir::ToClient)
    } else {
        None
    }
}

impl<'a> TcpSegment<'a> {
    /// The TCP segment a captured frame carries, when it is on a watched port (`None` otherwise,
    /// or when the frame is not a cleanly parsed, unfragmented TCP segment).
    pub fn of_frame(ts_ns: u64, frame: &'a [u8], linktype: rxray_wire::LinkType, wire_len: u32, ports: &[u16]) -> Option<TcpSegment<'a>> {
        use rxray_wire::dissect::{ip_from, tcp_segment};
        let s = tcp_segment(frame, linktype, wire_len)?;
        let dir = direction(s.sport, s.dport, ports)?;
        Some(TcpSegment {
            ts_ns,
            src: ip_from(s.ip_version, &s.src),
            sport: s.sport,
            dst: ip_from(s.ip_version, &s.dst),
            dport: s.dport,
            dir,
            seq: s.seq,
            ack: s.ack,
            flags: s.flags,
            payload: &frame[s.payload.clone()],
            wire_len: s.wire_payload_len,
        })
    }
}

/// A connection, client and server side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub client: IpAddr,
    pub client_port: u16,
    pub server: IpAddr,
    pub server_port: u16,
}

impl ConnKey {
    pub fn of(s: &TcpSegment<'_>) -> ConnKey {
        match s.dir {
            Dir::ToServer => ConnKey { client: s.src, client_port: s.sport, server: s.dst, server_port: s.dport },
            Dir::ToClient => ConnKey { client: s.dst, client_port: s.dport, server: s.src, server_port: s.sport },
        }
    }
}

/// Bounds and timeouts (event time).
#[derive(Clone, Copy, Debug)]
pub struct HttpConfig {
    /// Connections tracked at once; segments of others are counted, not parsed.
    pub max_connections: usize,
    /// Out-of-order bytes held per direction of a connection.
    pub max_buffered_per_stream: usize,
    /// Out-of-order bytes held over all connections.
    pub max_buffered_total: usize,
    /// A connection with no segment for this long is ended.
    pub idle_timeout_ns: u64,
    /// A hole not filled for this long is skipped as a gap.
    pub hole_timeout_ns: u64,
    pub max_endpoints: usize,
    /// Distinct clients kept per endpoint.
    pub max_clients: usize,
    pub max_head: usize,
    pub max_pipeline: usize,
    /// Body bytes kept per message for the whole-call checks (OpenAPI); longer bodies are not
    /// schema-checked (counted as `not_checked`).
    pub body_max: usize,
    /// Distinct findings kept (the rest are counted in `overflow`).
    pub max_findings: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_connections: 65_536,
            max_buffered_per_stream: 256 * 1024,
            max_buffered_total: 64 * 1024 * 1024,
            idle_timeout_ns: 120_000_000_000,
            hole_timeout_ns: 2_000_000_000,
            max_endpoints: 1000,
            max_clients: 10_000,
            max_head: 64 * 1024,
            max_pipeline: 64,
            body_max: 64 * 1024,
            max_findings: 1000,
        }
    }
}

/// Counts over every endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Totals {
    pub requests: u64,
    /// Final responses (not 1xx interim ones), paired or not.
    pub responses: u64,
    /// Responses with no request to pair with (their request was missed).
    pub unpaired_responses: u64,
    pub unanswered: u64,
    pub interim_responses: u64,
    pub connections: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub endpoints: u64,
    /// Requests counted in the `other` bucket because the endpoint table was full.
    pub other_requests: u64,
    /// HTTP/2 connections read from their start, streams reset (RST_STREAM) and GOAWAYs.
    pub h2_connections: u64,
    pub resets: u64,
    pub goaways: u64,
}

/// How complete the data behind the numbers is: every byte or message that was not seen whole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Completeness {
    /// Bytes whose length was known but whose content was not copied (snap length, body limit).
    pub bytes_not_copied: u64,
    /// Message bodies with such bytes (truncated bodies; the message itself still counts).
    pub bodies_truncated: u64,
    /// Holes in a stream that were skipped, and their bytes.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Holes skipped because a stream's or the total out-of-order buffer was full (in `gaps`).
    pub buffer_overflow_gaps: u64,
    /// Retransmitted or overlapping bytes dropped (not a loss; shown for completeness).
    pub duplicate_bytes: u64,
    /// Bytes before the point a connection was picked up at.
    pub bytes_before_start: u64,
    /// Connections not tracked because the table was full (counted at their SYN), and the
    /// segments of untracked connections.
    pub streams_dropped: u64,
    pub segments_untracked: u64,
    /// Connections ended by the idle timeout.
    pub streams_idle_expired: u64,
    /// Messages ended early by a gap, a parse error or the end of their stream.
    pub messages_cut: u64,
    /// Gaps where a request head should have started (requests may be missing).
    pub request_gaps: u64,
    pub heads_too_large: u64,
    pub parse_errors: u64,
    /// Bytes not parsed: after a lost place until a message start, or after a protocol switch.
    pub unparsed_bytes: u64,
    pub pipeline_overflow: u64,
    /// Events the source lost before the engine (the kernel ring buffer was full).
    pub events_lost: u64,
    /// HTTP/2 connections picked up mid-way (no preface or first SETTINGS seen, so no HPACK
    /// state): their frames are counted in `unparsed_bytes`, never read.
    pub h2_not_decodable: u64,
    /// HTTP/2 connections whose reading stopped part way: bytes lost outside a DATA frame's
    /// payload, a header block HPACK refused, or a frame that breaks the protocol.
    pub h2_decoding_lost: u64,
}

/// A report: endpoints sorted by requests, totals, completeness; with an OpenAPI document, where
/// the traffic and the document disagree.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct HttpSnapshot {
    pub endpoints: Vec<EndpointSnapshot>,
    pub totals: Totals,
    pub completeness: Completeness,
    /// Findings against the OpenAPI document, most frequent first (only with a document).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<Finding>>,
    /// The document's file and how many exchanges were matched and checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openapi: Option<OpenApiCounters>,
    /// TLS connections on the TLS ports (only when there are any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSnapshot>,
}

/// The TLS connections: the open ones and the last `MAX_TLS_KEPT` that ended, oldest first.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct TlsSnapshot {
    pub connections: Vec<TlsFacts>,
    /// Ended connections no longer kept (the report holds the newest).
    pub connections_dropped: u64,
}

/// What the OpenAPI checks covered.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct OpenApiCounters {
    pub spec: String,
    #[serde(flatten)]
    pub counters: CheckCounters,
}

/// One occurrence of a finding in one call (collected only after `with_finding_events`): what
/// alerts are raised on, through the detectors' suppression.
#[derive(Clone, Debug)]
pub struct FindingEvent {
    pub key: FindingKey,
    /// Its (kind, method, template, status) was seen here for the first time.
    pub first: bool,
    /// The finding as the table holds it now (count so far, first example, detail); `None` when
    /// the table was full and it was not kept.
    pub finding: Option<Finding>,
    pub conn: ConnKey,
    pub ts_ns: u64,
    /// The raw request line of this call.
    pub request_line: String,
}

struct Conn {
    streams: [Stream; 2],
    ex: ConnParser,
    last_ns: u64,
    /// Its TLS facts went to the new-facts list.
    tls_told: bool,
}

fn other(d: Dir) -> Dir {
    match d {
        Dir::ToServer => Dir::ToClient,
        Dir::ToClient => Dir::ToServer,
    }
}

fn idx(d: Dir) -> usize {
    match d {
        Dir::ToServer => 0,
        Dir::ToClient => 1,
    }
}

/// The tracker: connections, endpoints, counters.
pub struct HttpTracker {
    cfg: HttpConfig,
    conns: HashMap<ConnKey, Conn, foldhash::fast::FixedState>,
    endpoints: Endpoints,
    totals: Totals,
    comp: Completeness,
    buffered_total: usize,
    last_sweep_ns: u64,
    /// Whole calls waiting for the checks (collected only when something checks them).
    calls: Option<Vec<Call>>,
    openapi: Option<Checker>,
    tls_ports: Vec<u16>,
    tls_done: std::collections::VecDeque<TlsFacts>,
    tls_dropped: u64,
    new_tls: Vec<TlsFacts>,
    /// Every finding occurrence, when something raises alerts on them.
    finding_events: Option<Vec<FindingEvent>>,
    /// Checked calls kept for another reader (HTTP signatures), when asked.
    kept_calls: Option<Vec<Call>>,
}

impl HttpTracker {
    /// Checks every call against `spec` (and names endpoints by its templates). Calls are then
    /// collected whole: heads, and bodies up to `HttpConfig::body_max`.
    pub fn with_openapi(mut self, spec: Arc<Spec>) -> Self {
        self.endpoints.set_spec(Arc::clone(&spec));
        self.openapi = Some(Checker::new(spec, CheckLimits { max_findings: self.cfg.max_findings }));
        self.calls = Some(Vec::new());
        self
    }

    /// Connections to these server ports are TLS: their handshakes are read, the rest counted.
    pub fn with_tls_ports(mut self, ports: &[u16]) -> Self {
        self.tls_ports = ports.to_vec();
        self
    }

    /// TLS facts of connections whose ServerHello was read (or that ended without one) since the
    /// last call: what signatures and threat lists match (SNI, JA4, ALPN, version).
    pub fn take_tls_facts(&mut self) -> Vec<TlsFacts> {
        std::mem::take(&mut self.new_tls)
    }

    /// Every occurrence of a finding is kept for `take_finding_events` (the alert pipeline).
    pub fn with_finding_events(mut self) -> Self {
        self.finding_events = Some(Vec::new());
        self
    }

    /// Whole calls are collected and kept for `take_calls` once checked.
    pub fn with_calls(mut self) -> Self {
        self.keep_calls(true);
        self
    }

    /// Turns the keeping of whole calls for `take_calls` on or off (a running tracker whose
    /// consumer comes or goes, as the agent's detection on a reload).
    pub fn keep_calls(&mut self, on: bool) {
        if on {
            self.calls.get_or_insert_with(Vec::new);
            self.kept_calls.get_or_insert_with(Vec::new);
        } else {
            self.kept_calls = None;
            if self.openapi.is_none() {
                self.calls = None;
            }
        }
    }

    /// Whether whole calls are kept for `take_calls`.
    pub fn keeps_calls(&self) -> bool {
        self.kept_calls.is_some()
    }

    /// The finding occurrences since the last call (empty without `with_finding_events`).
    pub fn take_finding_events(&mut self) -> Vec<FindingEvent> {
        self.finding_events.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Each endpoint's calls are split by client and server too, for `take_client_counts`; at most
    /// `max` (endpoint, client, server) entries between two takes, the rest in each endpoint's
    /// `other` entry.
    pub fn with_client_counts(mut self, max: usize) -> Self {
        self.set_client_counts(Some(max));
        self
    }

    /// Turns the split by client on (at most `max` entries between takes) or off.
    pub fn set_client_counts(&mut self, max: Option<usize>) {
        self.endpoints.clients = max.map(clients::ClientTable::new);
    }

    /// The calls per endpoint, client and server since the last take, with each endpoint's method,
    /// template and protocol (empty without `with_client_counts`).
    pub fn take_client_counts(&mut self) -> Vec<(&Endpoint, clients::ClientKey, clients::ClientCounts)> {
        let taken = self.endpoints.clients.as_mut().map(|t| t.take()).unwrap_or_default();
        let list = &self.endpoints.list;
        taken.into_iter().filter_map(|(k, c)| Some((list.get(k.endpoint)?, k, c))).collect()
    }

    /// The calls completed since the last call (empty without `with_calls`).
    pub fn take_calls(&mut self) -> Vec<Call> {
        self.kept_calls.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Runs the collected calls through the checks, and keeps them when asked to.
    fn check_calls(&mut self) {
        let Some(calls) = self.calls.as_mut() else { return };
        for c in calls.drain(..) {
            if let Some(checker) = self.openapi.as_mut().filter(|_| !c.is_request_only()) {
                check_call(checker, &c, self.finding_events.as_mut());
            }
            if let Some(k) = self.kept_calls.as_mut() {
                k.push(c);
            }
        }
    }

    pub fn new(cfg: HttpConfig) -> Self {
        HttpTracker {
            cfg,
            conns: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0)),
            endpoints: Endpoints::new(cfg.max_endpoints, cfg.max_clients),
            totals: Totals::default(),
            comp: Completeness::default(),
            buffered_total: 0,
            last_sweep_ns: 0,
            calls: None,
            openapi: None,
            tls_ports: Vec::new(),
            tls_done: std::collections::VecDeque::new(),
            tls_dropped: 0,
            new_tls: Vec::new(),
            finding_events: None,
            kept_calls: None,
        }
    }

    /// Counters a source fills in (events it lost, bytes it could not copy before the engine).
    pub fn completeness_mut(&mut self) -> &mut Completeness {
        &mut self.comp
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// The endpoints as counted so far, with their whole latency histograms (the agent's metrics).
    pub fn endpoint_list(&self) -> &[Endpoint] {
        &self.endpoints.list
    }

    /// Takes one segment.
    pub fn segment(&mut self, seg: &TcpSegment<'_>) {
        let key = ConnKey::of(seg);
        let limits = ParserLimits { max_head: self.cfg.max_head, max_pipeline: self.cfg.max_pipeline };
        if !self.conns.contains_key(&key) {
            // Only a SYN or data opens a connection; a stray ACK, FIN or RST of one not tracked does not.
            if seg.flags & RST != 0 || (seg.flags & SYN == 0 && seg.wire_len == 0) {
                return;
            }
            if self.conns.len() >= self.cfg.max_connections {
                self.comp.segments_untracked += 1;
                if seg.flags & SYN != 0 && seg.dir == Dir::ToServer {
                    self.comp.streams_dropped += 1;
                }
                return;
            }
            self.totals.connections += 1;
            let tls = self.tls_ports.contains(&key.server_port);
            self.conns.insert(key, Conn { streams: [Stream::default(), Stream::default()], ex: ConnParser::new(key, tls), last_ns: seg.ts_ns, tls_told: false });
        }
        let Some(conn) = self.conns.get_mut(&key) else { return };
        conn.last_ns = conn.last_ns.max(seg.ts_ns);
        let mut cx = Ctx { endpoints: &mut self.endpoints, totals: &mut self.totals, comp: &mut self.comp, limits, calls: self.calls.as_mut(), body_max: self.cfg.body_max };
        let d = seg.dir;
        let Conn { streams, ex, .. } = &mut *conn;
        let st = &mut streams[idx(d)];
        let before = st.buffered();
        let room = self.cfg.max_buffered_per_stream.min(self.cfg.max_buffered_total.saturating_sub(self.buffered_total.saturating_sub(before)));
        if !st.is_started() && seg.flags & SYN == 0 {
            // Picked up mid-connection: parse from the first segment that starts a message.
            ex.lost_place(d);
        }
        if seg.flags & RST != 0 {
            for d in [Dir::ToServer, Dir::ToClient] {
                let st = &mut streams[idx(d)];
                let b = st.buffered();
                st.finish(seg.ts_ns, &mut |p: Piece<'_>| ex.piece(d, p, &mut cx));
                self.buffered_total -= b.min(self.buffered_total);
            }
        } else {
            if seg.flags & ACK != 0 {
                let o = other(d);
                let st = &mut streams[idx(o)];
                let b = st.buffered();
                st.acked(seg.ack, &mut |p: Piece<'_>| ex.piece(o, p, &mut cx));
                self.buffered_total = self.buffered_total.saturating_sub(b) + st.buffered();
            }
            let st = &mut streams[idx(d)];
            st.push(seg.seq, seg.flags, seg.payload, seg.wire_len, seg.ts_ns, room, &mut |p: Piece<'_>| ex.piece(d, p, &mut cx));
            if st.oldest_held_ns().is_some_and(|t| t + self.cfg.hole_timeout_ns < seg.ts_ns) {
                st.expire_holes(seg.ts_ns - self.cfg.hole_timeout_ns, &mut |p: Piece<'_>| ex.piece(d, p, &mut cx));
            }
            self.buffered_total = self.buffered_total.saturating_sub(before) + st.buffered();
        }
        if let (Some(t), false) = (conn.ex.tls(), conn.tls_told) {
            if t.complete {
                conn.tls_told = true;
                self.new_tls.push(t.facts.clone());
            }
        }
        if conn.streams.iter().all(Stream::is_ended) {
            self.remove(key);
        }
        if seg.ts_ns >= self.last_sweep_ns + 1_000_000_000 {
            self.advance(seg.ts_ns);
        }
        self.check_calls();
    }

    fn remove(&mut self, key: ConnKey) {
        let Some(mut conn) = self.conns.remove(&key) else { return };
        let limits = ParserLimits { max_head: self.cfg.max_head, max_pipeline: self.cfg.max_pipeline };
        let mut cx = Ctx { endpoints: &mut self.endpoints, totals: &mut self.totals, comp: &mut self.comp, limits, calls: self.calls.as_mut(), body_max: self.cfg.body_max };
        let Conn { streams, ex, last_ns, .. } = &mut conn;
        for d in [Dir::ToServer, Dir::ToClient] {
            let st = &mut streams[idx(d)];
            self.buffered_total -= st.buffered().min(self.buffered_total);
            st.finish(*last_ns, &mut |p: Piece<'_>| ex.piece(d, p, &mut cx));
        }
        ex.close(&mut cx);
        for st in streams.iter() {
            add_stream(&mut self.comp, &st.counters);
        }
        if let Some(t) = conn.ex.tls() {
            if !conn.tls_told {
                self.new_tls.push(t.facts.clone());
            }
            if self.tls_done.len() >= MAX_TLS_KEPT {
                self.tls_done.pop_front();
                self.tls_dropped += 1;
            }
            self.tls_done.push_back(t.facts.clone());
        }
    }

    /// Moves event time to `now_ns`: ends idle connections and skips holes past their timeout.
    pub fn advance(&mut self, now_ns: u64) {
        self.last_sweep_ns = now_ns;
        let idle: Vec<ConnKey> = self.conns.iter().filter(|(_, c)| c.last_ns + self.cfg.idle_timeout_ns < now_ns).map(|(k, _)| *k).collect();
        for k in idle {
            self.comp.streams_idle_expired += 1;
            self.remove(k);
        }
        let limits = ParserLimits { max_head: self.cfg.max_head, max_pipeline: self.cfg.max_pipeline };
        let Some(cutoff) = now_ns.checked_sub(self.cfg.hole_timeout_ns) else { return };
        for conn in self.conns.values_mut() {
            let Conn { streams, ex, .. } = conn;
            for d in [Dir::ToServer, Dir::ToClient] {
                let st = &mut streams[idx(d)];
                if st.oldest_held_ns().is_some_and(|t| t < cutoff) {
                    let b = st.buffered();
                    let mut cx = Ctx { endpoints: &mut self.endpoints, totals: &mut self.totals, comp: &mut self.comp, limits, calls: self.calls.as_mut(), body_max: self.cfg.body_max };
                    st.expire_holes(cutoff, &mut |p: Piece<'_>| ex.piece(d, p, &mut cx));
                    self.buffered_total -= (b - st.buffered()).min(self.buffered_total);
                }
            }
        }
    }

    /// Ends every connection (the end of a capture, or draining on exit).
    pub fn finish(&mut self) {
        let keys: Vec<ConnKey> = self.conns.keys().copied().collect();
        for k in keys {
            self.remove(k);
        }
        self.check_calls();
    }

    /// The report so far. Counters of connections still open are included.
    pub fn snapshot(&self) -> HttpSnapshot {
        let mut comp = self.comp;
        for c in self.conns.values() {
            for s in &c.streams {
                add_stream(&mut comp, &s.counters);
            }
        }
        let mut totals = self.totals;
        totals.endpoints = self.endpoints.list.len() as u64;
        totals.other_requests = self.endpoints.other_requests;
        HttpSnapshot {
            endpoints: self.endpoints.snapshot(),
            totals,
            completeness: comp,
            findings: self.openapi.as_ref().map(|c| c.findings()),
            openapi: self.openapi.as_ref().map(|c| OpenApiCounters { spec: c.spec().file.clone(), counters: c.counters.clone() }),
            tls: (!self.tls_ports.is_empty()).then(|| {
                let mut connections: Vec<TlsFacts> = self.tls_done.iter().cloned().collect();
                let mut open: Vec<TlsFacts> = self.conns.values().filter_map(|c| c.ex.tls()).map(|t| t.facts.clone()).collect();
                open.sort_by_key(|f| (f.ts_ns, f.client_port));
                connections.extend(open);
                TlsSnapshot { connections, connections_dropped: self.tls_dropped }
            }),
        }
    }
}

/// The request line of a head (up to its first CR or LF), for examples.
fn first_line(head: &[u8]) -> &str {
    let end = head.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(head.len());
    std::str::from_utf8(&head[..end]).unwrap_or("")
}

fn check_call(checker: &mut Checker, c: &Call, events: Option<&mut Vec<FindingEvent>>) {
    let line = first_line(&c.request.head);
    let mut parts = line.split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else { return };
    let (rq, rs) = (rxray_wire::http::head_headers(&c.request.head), rxray_wire::http::head_headers(&c.response.head));
    let x = rxray_openapi::Exchange {
        method,
        target,
        request_headers: &rq,
        request_body: &c.request.body,
        request_truncated: c.request.truncated,
        status: Some(c.status),
        response_headers: &rs,
        response_body: &c.response.body,
        response_truncated: c.response.truncated,
        time_ns: c.ts_ns,
    };
    let checked = checker.check(&x);
    let Some(events) = events else { return };
    for key in checked.keys {
        let finding = checker.finding(&key).cloned();
        events.push(FindingEvent { first: checked.new.contains(&key), key, finding, conn: c.conn, ts_ns: c.ts_ns, request_line: line.to_string() });
    }
}

fn add_stream(c: &mut Completeness, s: &reassembly::StreamCounters) {
    c.bytes_not_copied += s.not_copied;
    c.gaps += s.gaps;
    c.gap_bytes += s.gap_bytes;
    c.buffer_overflow_gaps += s.overflow_gaps;
    c.duplicate_bytes += s.duplicate;
    c.bytes_before_start += s.before_start;
}

/// The flag bits the reassembly reads, re-exported for sources.
pub mod flags {
    pub use super::reassembly::{ACK, FIN, RST, SYN};
}

