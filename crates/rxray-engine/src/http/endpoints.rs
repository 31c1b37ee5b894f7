//! Endpoints (method + path template) and their metrics: requests, statuses, latency, bytes, clients.
//! Templates fold numeric, UUID and long hex path segments to `{id}`; the table has a cap, past which
//! requests go to one counted `other` bucket.
use hashbrown::{HashMap, HashSet};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

/// Method and template of the bucket that takes requests once the table is full.
pub const OTHER_METHOD: &str = "*";
pub const OTHER_TEMPLATE: &str = "other";
/// Templates are cut to this many bytes (at a segment boundary), ending in `/...`.
pub const MAX_TEMPLATE: usize = 200;

/// Whether a path segment is an identifier: all digits, a UUID, or 16 or more hex digits.
pub fn is_id(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.is_empty() {
        return false;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    if b.len() == 36 {
        return b.iter().enumerate().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() });
    }
    b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit)
}

/// Writes the template of a request target into `out`: the path alone (no query, no fragment, no
/// scheme and authority), with identifier segments folded to `{id}`.
pub fn template(target: &str, out: &mut String) {
    out.clear();
    let mut path = target;
    if let Some(i) = path.find("://") {
        // Absolute form: drop scheme and authority.
        path = path[i + 3..].find('/').map_or("/", |j| &path[i + 3 + j..]);
    }
    let end = path.find(['?', '#']).unwrap_or(path.len());
    path = &path[..end];
    if !path.starts_with('/') {
        // `*` (OPTIONS) or the authority form of CONNECT: one template each.
        out.push_str(if path == "*" { "*" } else { "{authority}" });
        return;
    }
    for seg in path[1..].split('/') {
        let piece = if is_id(seg) { "{id}" } else { seg };
        if out.len() + 1 + piece.len() > MAX_TEMPLATE {
            out.push_str("/...");
            return;
        }
        out.push('/');
        out.push_str(piece);
    }
}

/// Latency histogram: log2 with 16 linear sub-buckets, so a percentile read at a bucket's middle is
/// within about 3% of the true value (finer than `latency::Histogram`, which mirrors the kernel's).
#[derive(Clone, Debug, Default)]
pub struct LatencyHist {
    counts: Vec<u64>,
    pub count: u64,
    pub max_ns: u64,
    /// The sum of every value (for a Prometheus histogram's `_sum`).
    pub sum_ns: u64,
}

const SUB: u64 = 16;

fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let o = 63 - u64::from(v.leading_zeros()); // >= 4
    ((o - 3) * SUB + ((v >> (o - 4)) & (SUB - 1))) as usize
}

/// The lowest value bucket `i` holds, and its width.
fn bucket_span(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, 1);
    }
    let o = i / SUB + 3;
    let s = i % SUB;
    ((SUB + s) << (o - 4), 1u64 << (o - 4))
}

fn bucket_mid(i: usize) -> u64 {
    let (lo, w) = bucket_span(i);
    if w == 1 {
        lo
    } else {
        lo + w / 2
    }
}

impl LatencyHist {
    pub fn add(&mut self, ns: u64) {
        let b = bucket_of(ns);
        if self.counts.len() <= b {
            self.counts.resize(b + 1, 0);
        }
        self.counts[b] += 1;
        self.count += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// The p-th percentile in ns (the middle of the bucket of the ceil(p% · n)-th value, never above
    /// the maximum seen), `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((p / 100.0 * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_mid(i).min(self.max_ns));
            }
        }
        Some(self.max_ns)
    }
}

/// The largest value bucket `i` holds.
fn bucket_max(i: usize) -> u64 {
    let (lo, w) = bucket_span(i);
    lo + w - 1
}

impl LatencyHist {
    /// Cumulative counts at each bound (ns, ascending), as a Prometheus histogram's buckets: the
    /// values whose bucket lies wholly at or below the bound. A bucket straddling a bound counts
    /// at the next one, so a count is low by at most one bucket's width (1/16 of its octave).
    pub fn cumulative(&self, bounds_ns: &[u64]) -> Vec<u64> {
        bounds_ns
            .iter()
            .map(|b| self.counts.iter().enumerate().filter(|(i, _)| bucket_max(*i) <= *b).map(|(_, c)| c).sum())
            .collect()
    }
}

impl LatencyHist {
    /// The same counts in `latency::Histogram`'s coarser buckets (log2 with 4 sub-buckets), as the
    /// store keeps them: each of these buckets lies wholly inside one of those, so the move is exact.
    pub fn to_histogram(&self) -> crate::latency::Histogram {
        let mut h = crate::latency::Histogram { count: self.count, sum_ns: self.sum_ns, max_ns: self.max_ns, buckets: vec![0; crate::latency::BUCKETS] };
        for (i, c) in self.counts.iter().enumerate() {
            if *c > 0 {
                h.buckets[crate::latency::bucket_of(bucket_max(i))] += c;
            }
        }
        h
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LatencyMs {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// One endpoint's metrics.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `http/1.1` (HTTP/1.x), `h2c` (HTTP/2 in clear text) or `grpc` (gRPC over h2c).
    pub protocol: &'static str,
    pub method: String,
    pub template: String,
    pub requests: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Requests whose connection ended (or whose answer was lost) before a response head.
    pub unanswered: u64,
    pub latency: LatencyHist,
    pub request_bytes: u64,
    pub response_bytes: u64,
    clients: HashSet<IpAddr, foldhash::fast::FixedState>,
    /// More distinct clients than the set keeps: `clients` is then a lower bound.
    pub clients_capped: bool,
    /// HTTP/2: streams reset by either side (RST_STREAM), and GOAWAYs that came while a stream of
    /// this endpoint was open.
    pub resets: u64,
    pub goaways: u64,
    /// gRPC: `grpc-status` of the calls' trailers, and the messages each way.
    pub grpc_statuses: BTreeMap<u32, u64>,
    pub grpc_request_messages: u64,
    pub grpc_response_messages: u64,
}

impl Endpoint {
    fn new(protocol: &'static str, method: &str, template: &str) -> Self {
        Endpoint {
            protocol,
            resets: 0,
            goaways: 0,
            grpc_statuses: BTreeMap::new(),
            grpc_request_messages: 0,
            grpc_response_messages: 0,
            method: method.to_string(),
            template: template.to_string(),
            requests: 0,
            statuses: BTreeMap::new(),
            unanswered: 0,
            latency: LatencyHist::default(),
            request_bytes: 0,
            response_bytes: 0,
            clients: HashSet::with_hasher(foldhash::fast::FixedState::with_seed(0)),
            clients_capped: false,
        }
    }

    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    pub fn snapshot(&self) -> EndpointSnapshot {
        let ms = |ns: u64| (ns as f64 / 1e6 * 1000.0).round() / 1000.0;
        let latency_ms = (self.latency.count > 0).then(|| LatencyMs {
            p50: ms(self.latency.percentile(50.0).unwrap_or(0)),
            p95: ms(self.latency.percentile(95.0).unwrap_or(0)),
            p99: ms(self.latency.percentile(99.0).unwrap_or(0)),
            max: ms(self.latency.max_ns),
        });
        EndpointSnapshot {
            protocol: self.protocol,
            resets: self.resets,
            goaways: self.goaways,
            grpc: (self.protocol == PROTO_GRPC).then(|| GrpcSnapshot {
                statuses: self.grpc_statuses.clone(),
                request_messages: self.grpc_request_messages,
                response_messages: self.grpc_response_messages,
            }),
            method: self.method.clone(),
            template: self.template.clone(),
            requests: self.requests,
            statuses: self.statuses.clone(),
            unanswered: self.unanswered,
            latency_ms,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            clients: self.clients.len() as u64,
            clients_capped: self.clients_capped,
        }
    }
}

/// One endpoint in a snapshot (see docs/http.md).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct EndpointSnapshot {
    pub protocol: &'static str,
    pub method: String,
    pub template: String,
    pub requests: u64,
    /// Responses by status code (JSON keys are the codes as strings).
    pub statuses: BTreeMap<u16, u64>,
    pub unanswered: u64,
    /// First request byte to first byte of the final response; absent before any response.
    pub latency_ms: Option<LatencyMs>,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub clients: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub clients_capped: bool,
    /// HTTP/2 only (0 and absent for HTTP/1.x).
    #[serde(skip_serializing_if = "is_zero")]
    pub resets: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub goaways: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcSnapshot>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A gRPC endpoint's calls: `grpc-status` codes from the trailers (JSON keys are the codes as
/// strings), and the length-prefixed messages each way.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GrpcSnapshot {
    pub statuses: BTreeMap<u32, u64>,
    pub request_messages: u64,
    pub response_messages: u64,
}

/// Protocol names of endpoints.
pub const PROTO_HTTP1: &str = "http/1.1";
pub const PROTO_H2C: &str = "h2c";
pub const PROTO_GRPC: &str = "grpc";

/// The endpoint table.
#[derive(Debug)]
pub struct Endpoints {
    index: HashMap<String, usize, foldhash::fast::FixedState>,
    pub list: Vec<Endpoint>,
    max_endpoints: usize,
    max_clients: usize,
    other: Option<usize>,
    /// Requests that went to the `other` bucket.
    pub other_requests: u64,
    key: String,
    tmpl: String,
    /// The API's document: its path templates name the endpoints (ids are folded otherwise).
    spec: Option<std::sync::Arc<rxray_openapi::Spec>>,
    /// The calls split by client and server, when something reads them (the agent's store).
    pub(super) clients: Option<super::clients::ClientTable>,
}

impl Endpoints {
    /// Endpoint templates from now on come from the document's paths where a request matches one.
    pub fn set_spec(&mut self, spec: std::sync::Arc<rxray_openapi::Spec>) {
        self.spec = Some(spec);
    }

    pub fn new(max_endpoints: usize, max_clients: usize) -> Self {
        Endpoints {
            index: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0)),
            list: Vec::new(),
            max_endpoints,
            max_clients,
            other: None,
            other_requests: 0,
            key: String::new(),
            spec: None,
            tmpl: String::new(),
            clients: None,
        }
    }

    /// Endpoint `e`'s counts for connection `conn`'s client and server (none when not kept).
    pub(super) fn client(&mut self, e: usize, conn: &super::ConnKey) -> Option<&mut super::clients::ClientCounts> {
        self.clients.as_mut().map(|t| t.entry(e, conn))
    }

    /// Counts an HTTP/1.x request and returns its endpoint's index.
    pub fn request(&mut self, method: &str, target: &str, client: IpAddr) -> usize {
        self.request_of(PROTO_HTTP1, method, target, client)
    }

    /// Counts a request of `protocol` and returns its endpoint's index. A gRPC call's template is
    /// its `service/method` (the path without its leading slash, not folded).
    pub fn request_of(&mut self, protocol: &'static str, method: &str, target: &str, client: IpAddr) -> usize {
        if protocol == PROTO_GRPC {
            self.tmpl.clear();
            let p = target.strip_prefix('/').unwrap_or(target);
            let p = &p[..p.find('?').unwrap_or(p.len())];
            let mut cut = p.len().min(MAX_TEMPLATE);
            while !p.is_char_boundary(cut) {
                cut -= 1;
            }
            self.tmpl.push_str(&p[..cut]);
        } else {
            match self.spec.as_ref().and_then(|s| s.template_of(target)) {
                Some(t) => {
                    self.tmpl.clear();
                    self.tmpl.push_str(t);
                }
                None => template(target, &mut self.tmpl),
            }
        }
        self.key.clear();
        let _ = write!(self.key, "{protocol} {method} {}", self.tmpl);
        let i = match self.index.get(self.key.as_str()) {
            Some(&i) => i,
            None if self.index.len() < self.max_endpoints => {
                let i = self.list.len();
                self.list.push(Endpoint::new(protocol, method, &self.tmpl));
                self.index.insert(self.key.clone(), i);
                i
            }
            None => {
                self.other_requests += 1;
                *self.other.get_or_insert_with(|| {
                    self.list.push(Endpoint::new("*", OTHER_METHOD, OTHER_TEMPLATE));
                    self.list.len() - 1
                })
            }
        };
        let e = &mut self.list[i];
        e.requests += 1;
        if e.clients.len() < self.max_clients {
            e.clients.insert(client);
        } else if !e.clients.contains(&client) {
            e.clients_capped = true;
        }
        i
    }

    /// Endpoints sorted by requests (most first), then method and template.
    pub fn snapshot(&self) -> Vec<EndpointSnapshot> {
        let mut v: Vec<EndpointSnapshot> = self.list.iter().map(Endpoint::snapshot).collect();
        v.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.method.cmp(&b.method)).then_with(|| a.template.cmp(&b.template)));
        v
    }
}

#[cfg(test)]
mod cumulative_tests {
    use super::*;

    #[test]
    fn the_coarse_histogram_holds_each_value_in_its_own_bucket() {
        let values = [0u64, 3, 7, 15, 16, 17, 1_000, 4_095, 4_096, 999_999, 1_000_000, 5_000_000, 250_000_000];
        let mut h = LatencyHist::default();
        let mut want = vec![0u64; crate::latency::BUCKETS];
        for v in values {
            h.add(v);
            want[crate::latency::bucket_of(v)] += 1;
        }
        let c = h.to_histogram();
        assert_eq!(c.buckets, want);
        assert_eq!((c.count, c.sum_ns, c.max_ns), (values.len() as u64, values.iter().sum::<u64>(), 250_000_000));
    }

    #[test]
    fn cumulative_counts_are_exact_at_bucket_edges_and_never_above_the_truth() {
        let mut h = LatencyHist::default();
        let values = [3u64, 15, 16, 1_000, 999_999, 1_000_000, 5_000_000, 250_000_000];
        for v in values {
            h.add(v);
        }
        assert_eq!(h.sum_ns, values.iter().sum::<u64>());
        let bounds = [10u64, 1_000_000, 10_000_000, 1_000_000_000];
        let got = h.cumulative(&bounds);
        for (b, n) in bounds.iter().zip(&got) {
            let truth = values.iter().filter(|v| **v <= *b).count() as u64;
            assert!(*n <= truth, "at {b}: {n} > {truth}");
            // Low by at most the values within one bucket's width (1/16 of the octave) below b.
            let near = values.iter().filter(|v| **v <= *b && **v + *b / 8 > *b).count() as u64;
            assert!(*n + near >= truth, "at {b}: {n} + {near} < {truth}");
        }
        assert_eq!(got[0], 1);
        assert_eq!(*got.last().unwrap(), values.len() as u64);
    }
}
