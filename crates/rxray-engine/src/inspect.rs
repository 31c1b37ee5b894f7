//! One pass over packets for alerts: the detectors and the payload signatures together. Signature
//! matches become `Alert`s (detector "signature", Suricata's gid 1 and the rule's sid), and every
//! alert goes through the same suppression, numbering and mitigation policy.
use crate::alert::{Alert, Signature};
use crate::detect::{ConnSummary, Detectors};
use crate::event::Packet;
use crate::http::TcpSegment;
use crate::inspect_http::HttpInspector;
use crate::signatures::{SigMatch, SignatureSet};
use crate::source::Frame;
use std::collections::HashMap;
use std::net::IpAddr;

/// The detector name of signature alerts.
pub const SIGNATURE: &str = "signature";

/// The rules rxray ships (common web attacks: SQL injection, XSS, path traversal, shell injection).
pub const DEFAULT_RULES: &str = include_str!("../../../rules/default.rules");

pub struct Inspector {
    pub detectors: Detectors,
    sigs: Option<SignatureSet>,
    /// msg and classtype per sid, kept for the run (alerts carry `&'static str`; bounded by the rules).
    names: HashMap<u32, (&'static str, &'static str)>,
    matches: Vec<SigMatch>,
    /// HTTP reassembled into calls (OpenAPI findings), when asked for.
    http: Option<HttpInspector>,
}

impl Inspector {
    pub fn new(detectors: Detectors, sigs: Option<SignatureSet>) -> Inspector {
        Inspector { detectors, sigs, names: HashMap::new(), matches: Vec::new(), http: None }
    }

    /// Adds the HTTP side: calls reassembled from segments, checked against an OpenAPI document.
    pub fn with_http(mut self, h: HttpInspector) -> Inspector {
        self.http = Some(h);
        self
    }

    pub fn http(&self) -> Option<&HttpInspector> {
        self.http.as_ref()
    }

    /// A whole frame (a capture's record): its TCP segment goes to the HTTP side, if there is one.
    pub fn on_frame(&mut self, f: &Frame<'_>, out: &mut Vec<Alert>) {
        if let Some(h) = self.http.as_mut() {
            h.on_frame(f, &mut self.detectors, out);
        }
    }

    /// A TCP segment from a source that copies them itself (the kernel's HTTP copies).
    pub fn on_segment(&mut self, seg: &TcpSegment<'_>, out: &mut Vec<Alert>) {
        if let Some(h) = self.http.as_mut() {
            h.on_segment(seg, &mut self.detectors, out);
        }
    }

    /// The end of a finite input: the HTTP side ends its connections and checks their calls.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        if let Some(h) = self.http.as_mut() {
            h.finish(&mut self.detectors, out);
        }
    }

    pub fn signatures(&self) -> Option<&SignatureSet> {
        self.sigs.as_ref()
    }

    pub fn on_packet(&mut self, p: &Packet, out: &mut Vec<Alert>) {
        self.detectors.on_packet(p, out);
        let Some(sigs) = self.sigs.as_mut() else { return };
        self.matches.clear();
        sigs.match_packet_into(p, &mut self.matches);
        for m in std::mem::take(&mut self.matches) {
            let a = self.alert(&m, p);
            self.detectors.submit(a, out);
        }
    }

    pub fn on_tick(&mut self, now_ns: u64, out: &mut Vec<Alert>) {
        self.detectors.on_tick(now_ns, out);
        if let Some(h) = self.http.as_mut() {
            h.on_tick(now_ns, &mut self.detectors, out);
        }
    }

    pub fn on_conn(&mut self, c: &ConnSummary, out: &mut Vec<Alert>) {
        self.detectors.on_conn(c, out);
    }

    fn alert(&mut self, m: &SigMatch, p: &Packet) -> Alert {
        let (msg, category) = *self.names.entry(m.sid).or_insert_with(|| {
            (Box::leak(m.msg.clone().into_boxed_str()), Box::leak(m.classtype.clone().unwrap_or_default().into_boxed_str()))
        });
        let sig = Signature { detector: SIGNATURE, sid: m.sid, rev: m.rev, msg, category, severity: m.priority };
        let src = p.ip.as_ref().map(|ip| ip.src);
        let (sport, dport) = match (&p.tcp, &p.udp) {
            (Some(t), _) => (Some(t.sport), Some(t.dport)),
            (_, Some(u)) => (Some(u.sport), Some(u.dport)),
            _ => (None, None),
        };
        let mut a = Alert::new(sig, p.ts_ns, src.unwrap_or(IpAddr::from([0u8, 0, 0, 0])));
        a.iface = (!p.iface.is_empty()).then(|| p.iface.clone());
        a.src_ip = src;
        a.dest_ip = p.ip.as_ref().map(|ip| ip.dst);
        a.src_port = sport;
        a.dest_port = dport;
        a.proto = p.ip.as_ref().map(|ip| ip.proto);
        a.topic = m.sid as u64;
        a.offender = src;
        let ev: Vec<serde_json::Value> = m
            .evidence
            .iter()
            .map(|e| {
                serde_json::json!({"keyword": e.keyword, "offset": e.offset, "bytes": crate::event::hex_string(&e.bytes),
                    "text": String::from_utf8_lossy(&e.bytes)})
            })
            .collect();
        a.with("matches", ev)
    }
}
