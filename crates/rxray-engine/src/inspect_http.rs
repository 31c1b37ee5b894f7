//! HTTP in the alert pipeline: TCP segments (capture frames, or the kernel's HTTP copies) are
//! reassembled into paired calls by the engine's `HttpTracker`; with an OpenAPI document, every
//! finding occurrence becomes an `openapi` alert that goes through the detectors' suppression,
//! so one alert goes out per (kind, method, template) and suppression window.
use crate::alert::{Alert, Signature};
use crate::detect::Detectors;
use crate::http::{Call, FindingEvent, HttpConfig, HttpTracker, TcpSegment};
use crate::source::Frame;
use rxray_openapi::{Kind, Spec};
use std::sync::Arc;

/// The detector name of OpenAPI alerts.
pub const OPENAPI: &str = "openapi";

const CATEGORY: &str = "Detection of a Non-Standard Protocol or Event";

/// The signature of each kind: gid 9000, sids 11 to 16 (after the detectors' 1 to 10).
pub fn openapi_signature(kind: Kind) -> Signature {
    let (sid, msg) = match kind {
        Kind::UndocumentedPath => (11, "RXRAY OpenAPI: request to a path the API document does not describe"),
        Kind::UndocumentedMethod => (12, "RXRAY OpenAPI: method the API document does not describe for this path"),
        Kind::UndocumentedStatus => (13, "RXRAY OpenAPI: response status the API document does not describe"),
        Kind::MissingParameter => (14, "RXRAY OpenAPI: required parameter missing"),
        Kind::WrongType => (15, "RXRAY OpenAPI: parameter of the wrong type"),
        Kind::SchemaViolation => (16, "RXRAY OpenAPI: body violates its JSON Schema"),
    };
    Signature { detector: OPENAPI, sid, rev: 1, msg, category: CATEGORY, severity: 3 }
}

/// The HTTP side of the inspector.
pub struct HttpInspector {
    tracker: HttpTracker,
    ports: Vec<u16>,
    /// Calls are handed on (HTTP signatures) rather than dropped once checked.
    keep_calls: bool,
    calls: Vec<Call>,
}

impl HttpInspector {
    /// Tracks HTTP on `ports`; with `spec`, findings against it raise alerts.
    pub fn new(cfg: HttpConfig, ports: &[u16], spec: Option<Arc<Spec>>) -> Self {
        let mut tracker = HttpTracker::new(cfg);
        if let Some(s) = spec {
            tracker = tracker.with_openapi(s).with_finding_events();
        }
        HttpInspector { tracker, ports: ports.to_vec(), keep_calls: false, calls: Vec::new() }
    }

    /// Keeps whole calls for `take_calls`.
    pub fn with_calls(mut self) -> Self {
        self.tracker = self.tracker.with_calls();
        self.keep_calls = true;
        self
    }

    /// Connections to these server ports are TLS: their handshakes are read (SNI, JA4, version,
    /// the certificate's names), for `tls` rules and the threat lists' TLS entries.
    pub fn with_tls_ports(mut self, ports: &[u16]) -> Self {
        self.tracker = self.tracker.with_tls_ports(ports);
        for p in ports {
            if !self.ports.contains(p) {
                self.ports.push(*p);
            }
        }
        self
    }

    /// The TLS facts of connections whose clear-text handshake ended since the last call.
    pub fn take_tls_facts(&mut self) -> Vec<crate::http::TlsFacts> {
        self.tracker.take_tls_facts()
    }

    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    pub fn tracker(&self) -> &HttpTracker {
        &self.tracker
    }

    /// A whole frame (Ethernet, raw IP or Linux cooked, as its link type says): its TCP segment
    /// on a watched port goes to the tracker.
    pub fn on_frame(&mut self, f: &Frame<'_>, det: &mut Detectors, out: &mut Vec<Alert>) {
        if let Some(seg) = TcpSegment::of_frame(f.ts_ns, f.data, f.linktype, f.orig_len, &self.ports) {
            self.on_segment(&seg, det, out);
        }
    }

    /// One segment (or chunk of one) from any source, on event time.
    pub fn on_segment(&mut self, seg: &TcpSegment<'_>, det: &mut Detectors, out: &mut Vec<Alert>) {
        self.tracker.segment(seg);
        self.drain(det, out);
    }

    /// Event time has reached `now_ns`: idle connections end, holes past their timeout are skipped.
    pub fn on_tick(&mut self, now_ns: u64, det: &mut Detectors, out: &mut Vec<Alert>) {
        self.tracker.advance(now_ns);
        self.drain(det, out);
    }

    /// The end of the input: every connection ends, its calls are checked.
    pub fn finish(&mut self, det: &mut Detectors, out: &mut Vec<Alert>) {
        self.tracker.finish();
        self.drain(det, out);
    }

    /// The calls completed since the last call (with `with_calls`).
    pub fn take_calls(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.calls)
    }

    fn drain(&mut self, det: &mut Detectors, out: &mut Vec<Alert>) {
        for e in self.tracker.take_finding_events() {
            det.submit(finding_alert(&e), out);
        }
        if self.keep_calls {
            self.calls.extend(self.tracker.take_calls());
        }
    }
}

/// FNV-1a of the (kind, method, template): the suppression topic, so each is its own alert.
fn topic(kind: Kind, method: &str, template: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.as_str().bytes().chain([0]).chain(method.bytes()).chain([0]).chain(template.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One finding occurrence as an alert about the server (the API), from the client that called it.
pub fn finding_alert(e: &FindingEvent) -> Alert {
    let k = &e.key;
    let mut a = Alert::new(openapi_signature(k.kind), e.ts_ns, e.conn.server);
    a.src_ip = Some(e.conn.client);
    a.src_port = Some(e.conn.client_port);
    a.dest_ip = Some(e.conn.server);
    a.dest_port = Some(e.conn.server_port);
    a.proto = Some(6);
    a.topic = topic(k.kind, &k.method, &k.template);
    a.evidence.insert("kind".into(), k.kind.as_str().into());
    a.evidence.insert("method".into(), k.method.clone().into());
    a.evidence.insert("template".into(), k.template.clone().into());
    if let Some(s) = k.status {
        a.evidence.insert("status".into(), s.into());
    }
    a.evidence.insert("first".into(), e.first.into());
    a.evidence.insert("request_line".into(), e.request_line.clone().into());
    if let Some(f) = &e.finding {
        a.evidence.insert("count".into(), f.count.into());
        a.evidence.insert("path".into(), f.path.clone().into());
        a.evidence.insert("detail".into(), serde_json::to_value(&f.detail).unwrap_or_default());
        a.evidence.insert("example".into(), serde_json::to_value(&f.example).unwrap_or_default());
    }
    a
}
