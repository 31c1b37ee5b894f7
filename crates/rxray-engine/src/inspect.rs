//! One pass over packets for alerts: the detectors and the payload signatures together. Signature
//! matches become `Alert`s (detector "signature", Suricata's gid 1 and the rule's sid), and every
//! alert goes through the same suppression, numbering and mitigation policy.
use crate::alert::{Alert, EveFlow, RuleInfo, Signature};
use crate::detect::api_limit::ApiGuard;
use crate::detect::{ConnSummary, Detectors};
use crate::event::Packet;
use crate::http::TcpSegment;
use crate::inspect_http::HttpInspector;
use crate::signatures::{CallMatch, SigMatch, SignatureSet};
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
    call_matches: Vec<CallMatch>,
    /// HTTP reassembled into calls (OpenAPI findings, HTTP signatures), when asked for.
    http: Option<HttpInspector>,
    /// API limits and endpoint baselines (`--api-limits`), fed the HTTP side's calls.
    api: Option<ApiGuard>,
    /// Signature alerts carry the payload for EVE's `payload_printable`.
    payload_printable: bool,
}

impl Inspector {
    pub fn new(detectors: Detectors, sigs: Option<SignatureSet>) -> Inspector {
        Inspector { detectors, sigs, names: HashMap::new(), matches: Vec::new(), call_matches: Vec::new(), http: None, api: None, payload_printable: false }
    }

    /// Signature alerts carry `payload_printable` (the packet's payload, or the HTTP message).
    pub fn with_payload_printable(mut self, on: bool) -> Inspector {
        self.payload_printable = on;
        self
    }

    /// Adds the API limits and endpoint baselines (they need the HTTP side: add it after).
    pub fn with_api(mut self, g: ApiGuard) -> Inspector {
        self.api = Some(g);
        self
    }

    pub fn api(&self) -> Option<&ApiGuard> {
        self.api.as_ref()
    }

    /// Adds the HTTP side: calls reassembled from segments, checked against an OpenAPI document
    /// and, when the rules have HTTP rules, inspected by them.
    pub fn with_http(mut self, h: HttpInspector) -> Inspector {
        let wants_calls = self.wants_calls();
        self.http = Some(if wants_calls { h.with_calls() } else { h });
        self
    }

    /// The rules include HTTP rules, which need the HTTP side.
    pub fn has_http_rules(&self) -> bool {
        self.sigs.as_ref().is_some_and(|s| s.http_rules() > 0)
    }

    /// The rules include `tls` rules, or a threat list has SNI or JA4 entries: TLS handshakes on
    /// the TLS ports need reading (the HTTP side, `HttpInspector::with_tls_ports`).
    pub fn wants_tls(&self) -> bool {
        self.sigs.as_ref().is_some_and(|s| s.tls_rules() > 0) || self.detectors.has_threat_names()
    }

    /// Runs the HTTP rules over the calls the HTTP side completed, and the `tls` rules and the
    /// threat lists over the TLS handshakes it read.
    fn http_calls(&mut self, out: &mut Vec<Alert>) {
        let Some(h) = self.http.as_mut() else { return };
        for f in h.take_tls_facts() {
            self.detectors.on_tls(&f, out);
            let Some(sigs) = self.sigs.as_mut() else { continue };
            let mut ms = std::mem::take(&mut self.call_matches);
            ms.clear();
            sigs.match_tls_into(&f, &mut ms);
            for m in &ms {
                let mut a = self.call_alert(m, f.ts_ns, "tls").with("tls", tls_json(&f));
                if let Some(r) = a.rule.as_mut() {
                    r.tls = Some(eve_tls(&f));
                }
                self.detectors.submit_rule(a, out);
            }
            self.call_matches = ms;
        }
        let Some(h) = self.http.as_mut() else { return };
        for c in h.take_calls() {
            self.on_call(&c, out);
        }
    }

    /// Whole HTTP calls are wanted (`on_call`): the rules have HTTP rules, or there are API limits.
    pub fn wants_calls(&self) -> bool {
        self.has_http_rules() || self.api.is_some()
    }

    /// One HTTP call (a request alone when it is whole, then the paired call): the API limits and
    /// baselines, and the HTTP rules. Called for the HTTP side's own calls, and by sources that
    /// reassemble HTTP themselves (the agent's HTTP view).
    pub fn on_call(&mut self, c: &crate::http::Call, out: &mut Vec<Alert>) {
        if let Some(g) = self.api.as_mut() {
            let mut found = Vec::new();
            g.on_call(c, &mut found);
            for a in found {
                self.detectors.submit(a, out);
            }
        }
        let Some(sigs) = self.sigs.as_mut() else { return };
        let mut ms = std::mem::take(&mut self.call_matches);
        ms.clear();
        sigs.match_call_into(c, &mut ms);
        for m in &ms {
            let mut a = self.call_alert(m, c.ts_ns, "http").with("http", true);
            if self.payload_printable {
                let side = if m.to_client { &c.response } else { &c.request };
                if let Some(r) = a.rule.as_mut() {
                    r.payload = Some([&side.head[..], &side.body[..]].concat());
                }
            }
            self.detectors.submit_rule(a, out);
        }
        self.call_matches = ms;
    }

    pub fn http(&self) -> Option<&HttpInspector> {
        self.http.as_ref()
    }

    /// A whole frame (a capture's record): its TCP segment goes to the HTTP side, if there is one.
    pub fn on_frame(&mut self, f: &Frame<'_>, out: &mut Vec<Alert>) {
        if let Some(h) = self.http.as_mut() {
            h.on_frame(f, &mut self.detectors, out);
            self.http_calls(out);
        }
    }

    /// A TCP segment from a source that copies them itself (the kernel's HTTP copies).
    pub fn on_segment(&mut self, seg: &TcpSegment<'_>, out: &mut Vec<Alert>) {
        if let Some(h) = self.http.as_mut() {
            h.on_segment(seg, &mut self.detectors, out);
            self.http_calls(out);
        }
    }

    /// The end of a finite input: the HTTP side ends its connections and checks their calls.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        if let Some(h) = self.http.as_mut() {
            h.finish(&mut self.detectors, out);
            self.http_calls(out);
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
            self.detectors.submit_rule(a, out);
        }
    }

    pub fn on_tick(&mut self, now_ns: u64, out: &mut Vec<Alert>) {
        self.detectors.on_tick(now_ns, out);
        if let Some(g) = self.api.as_mut() {
            let mut found = Vec::new();
            g.on_tick(now_ns, &mut found);
            for a in found {
                self.detectors.submit(a, out);
            }
        }
        if let Some(h) = self.http.as_mut() {
            h.on_tick(now_ns, &mut self.detectors, out);
            self.http_calls(out);
        }
    }

    pub fn on_conn(&mut self, c: &ConnSummary, out: &mut Vec<Alert>) {
        self.detectors.on_conn(c, out);
    }

    fn signature(&mut self, m: &SigMatch) -> Signature {
        let (msg, category) = *self.names.entry(m.sid).or_insert_with(|| {
            (Box::leak(m.msg.clone().into_boxed_str()), Box::leak(m.classtype.clone().unwrap_or_default().into_boxed_str()))
        });
        Signature { detector: SIGNATURE, sid: m.sid, rev: m.rev, msg, category, severity: m.priority }
    }

    /// An HTTP rule's match on a call: about the side's sender, with the buffers' evidence.
    fn call_alert(&mut self, cm: &CallMatch, ts_ns: u64, app_proto: &'static str) -> Alert {
        let sig = self.signature(&cm.m);
        let mut a = Alert::new(sig, ts_ns, cm.src);
        a.src_ip = Some(cm.src);
        a.src_port = Some(cm.sport);
        a.dest_ip = Some(cm.dst);
        a.dest_port = Some(cm.dport);
        a.proto = Some(6);
        a.topic = cm.m.sid as u64;
        a.offender = Some(cm.src);
        a.rule = Some(Box::new(RuleInfo {
            gid: cm.m.gid,
            action: cm.m.action,
            app_proto: Some(app_proto),
            to_server: Some(!cm.to_client),
            flow: None,
            payload: None,
            tls: None,
        }));
        a.with("matches", evidence(&cm.m))
    }

    fn alert(&mut self, m: &SigMatch, p: &Packet) -> Alert {
        let sig = self.signature(m);
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
        let flow = m.flow.map(|v| EveFlow {
            pkts_toserver: v.pkts[0],
            pkts_toclient: v.pkts[1],
            bytes_toserver: v.bytes[0],
            bytes_toclient: v.bytes[1],
            start: v.start_ns,
            src_ip: v.client.0,
            dest_ip: v.server.0,
            src_port: v.client.1,
            dest_port: v.server.1,
        });
        a.rule = Some(Box::new(RuleInfo {
            gid: m.gid,
            action: m.action,
            app_proto: None,
            to_server: m.flow.map(|v| v.to_server),
            flow,
            payload: self.payload_printable.then(|| p.payload.clone()),
            tls: None,
        }));
        a.with("matches", evidence(m))
    }
}

/// The TLS facts an alert carries (EVE's `tls` object: sni, version, subject, issuerdn, ja4).
fn tls_json(f: &crate::http::TlsFacts) -> serde_json::Value {
    let mut v = serde_json::json!({});
    let mut put = |k: &str, x: &Option<String>| {
        if let Some(x) = x {
            v[k] = x.clone().into();
        }
    };
    put("sni", &f.sni);
    put("version", &f.version);
    put("subject", &f.cert_subject);
    put("issuerdn", &f.cert_issuer);
    put("ja4", &f.ja4);
    v
}

/// Suricata's top-level `tls` object of an alert (output-json-tls.c, JsonTlsLogJSONExtended):
/// `subject`, `issuerdn`, `sni`, `version` as SSLVersionToString spells it ("TLS 1.2"), `ja4`;
/// each only when known.
fn eve_tls(f: &crate::http::TlsFacts) -> serde_json::Value {
    let mut v = serde_json::Map::new();
    let fields = [("subject", &f.cert_subject), ("issuerdn", &f.cert_issuer), ("sni", &f.sni), ("ja4", &f.ja4)];
    for (k, x) in fields {
        if let Some(x) = x {
            v.insert(k.into(), x.clone().into());
        }
    }
    if let Some(ver) = &f.version {
        v.insert("version".into(), suricata_tls_version(ver).into());
    }
    serde_json::Value::Object(v)
}

/// rxray's version name ("1.2", "ssl3", "0x7f1c") as Suricata's SSLVersionToString writes it.
fn suricata_tls_version(v: &str) -> String {
    match v {
        "1.3" => "TLS 1.3".into(),
        "1.2" => "TLS 1.2".into(),
        "1.1" => "TLS 1.1".into(),
        "1.0" => "TLSv1".into(),
        "ssl3" => "SSLv3".into(),
        other => other.into(),
    }
}

fn evidence(m: &SigMatch) -> Vec<serde_json::Value> {
    m.evidence
        .iter()
        .map(|e| {
            let mut v = serde_json::json!({"keyword": e.keyword, "offset": e.offset, "bytes": crate::event::hex_string(&e.bytes),
                "text": String::from_utf8_lossy(&e.bytes)});
            if let Some(b) = e.buffer {
                v["buffer"] = b.into();
            }
            v
        })
        .collect()
}
