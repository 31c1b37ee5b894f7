//! Threat lists: traffic from or to an address in a loaded blocklist (`CidrSet`), naming the list
//! and the listed prefix; and TLS connections whose SNI or JA4 a list names (`TlsNames`, lines
//! `sni:NAME` and `ja4:FINGERPRINT`). Lists are loaded by the caller (the engine does no I/O).
use super::state::BoundedMap;
use super::{Detector, StateStats};
use crate::alert::{Alert, Signature};
use crate::cidr::CidrSet;
use crate::event::Packet;
use std::net::IpAddr;

pub const THREAT_LIST: Signature = Signature {
    detector: "threat_list",
    sid: 10,
    rev: 1,
    msg: "RXRAY traffic with an address on a threat list",
    category: "Misc Attack",
    severity: 2,
};

/// The TLS entries of a threat list: server names (each also matching its subdomains, as domain
/// blocklists mean them; compared without case and trailing dot) and JA4 fingerprints (exact).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsNames {
    pub sni: std::collections::HashSet<String>,
    pub ja4: std::collections::HashSet<String>,
}

impl TlsNames {
    pub fn is_empty(&self) -> bool {
        self.sni.is_empty() && self.ja4.is_empty()
    }

    /// Takes the `sni:` and `ja4:` lines out of a list's text: returns the names and the text with
    /// those lines blanked (so the address parser's line numbers stay right). `#` and `;` start a
    /// comment, as in the address lines.
    pub fn from_list(text: &str) -> (TlsNames, String) {
        let mut names = TlsNames::default();
        let mut rest = String::with_capacity(text.len());
        for line in text.lines() {
            let t = line.split(['#', ';']).next().unwrap_or("").trim();
            let entry = t.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()));
            match entry {
                Some((k, v)) if k == "sni" && !v.is_empty() => {
                    names.sni.insert(v.trim_end_matches('.').to_ascii_lowercase());
                }
                Some((k, v)) if k == "ja4" && !v.is_empty() => {
                    names.ja4.insert(v.to_ascii_lowercase());
                }
                _ => rest.push_str(line),
            }
            rest.push('\n');
        }
        (names, rest)
    }

    /// The listed name `sni` is, or is under; None when it is not listed.
    pub fn sni_entry(&self, sni: &str) -> Option<&str> {
        let s = sni.trim_end_matches('.').to_ascii_lowercase();
        let mut at = Some(s.as_str());
        while let Some(d) = at {
            if let Some(e) = self.sni.get(d) {
                return Some(e.as_str());
            }
            at = d.split_once('.').map(|(_, r)| r);
        }
        None
    }
}

pub struct ThreatListDetector {
    lists: Vec<(String, CidrSet)>,
    names: Vec<(String, TlsNames)>,
    /// Next time an alert may be built, per (address, list): at most one per second each.
    next: BoundedMap<(IpAddr, usize), u64>,
    last_expiry_ns: u64,
}

impl Default for ThreatListDetector {
    fn default() -> Self {
        ThreatListDetector { lists: Vec::new(), names: Vec::new(), next: BoundedMap::new(65_536), last_expiry_ns: 0 }
    }
}

impl ThreatListDetector {
    pub fn add_list(&mut self, name: impl Into<String>, set: CidrSet) {
        self.lists.push((name.into(), set));
    }

    /// Adds the SNI and JA4 entries of a list (alerts name the list).
    pub fn add_names(&mut self, name: impl Into<String>, names: TlsNames) {
        self.names.push((name.into(), names));
    }

    pub fn has_names(&self) -> bool {
        !self.names.is_empty()
    }

    /// One TLS connection's handshake facts: an alert per list that names its SNI or its JA4
    /// (once per connection; about the client, which asked for the name).
    pub fn on_tls(&mut self, f: &crate::http::TlsFacts, out: &mut Vec<Alert>) {
        let (Some(client), Some(server)) = (f.client, f.server) else { return };
        for (i, (name, n)) in self.names.iter().enumerate() {
            let sni = f.sni.as_deref().and_then(|s| n.sni_entry(s));
            let ja4 = f.ja4.as_deref().filter(|j| n.ja4.contains(&j.to_ascii_lowercase()));
            if sni.is_none() && ja4.is_none() {
                continue;
            }
            let mut a = Alert::new(THREAT_LIST, f.ts_ns, client).with("list", name.as_str());
            if let Some(e) = sni {
                a = a.with("sni", f.sni.clone().unwrap_or_default()).with("entry", e.to_string());
            }
            if let Some(j) = ja4 {
                a = a.with("ja4", j.to_string());
            }
            // Its own topic per list and connection: every connection that matches alerts.
            a.topic = (self.lists.len() + i + 1) as u64 | (u64::from(f.client_port) << 32);
            a.src_ip = Some(client);
            a.src_port = Some(f.client_port);
            a.dest_ip = Some(server);
            a.dest_port = Some(f.server_port);
            a.proto = Some(6);
            a.offender = Some(client);
            out.push(a);
        }
    }

    pub fn lists(&self) -> impl Iterator<Item = (&str, usize)> {
        self.lists.iter().map(|(n, s)| (n.as_str(), s.len()))
    }
}

impl Detector for ThreatListDetector {
    fn name(&self) -> &'static str {
        "threat_list"
    }

    fn on_packet(&mut self, p: &Packet, out: &mut Vec<Alert>) {
        let Some(ip) = &p.ip else { return };
        for (i, (name, set)) in self.lists.iter().enumerate() {
            for (addr, is_src) in [(ip.src, true), (ip.dst, false)] {
                let Some(prefix) = set.matching(addr) else { continue };
                let Some(next) = self.next.touch(&(addr, i), p.ts_ns, || 0) else { continue };
                if p.ts_ns < *next {
                    continue;
                }
                *next = p.ts_ns + 1_000_000_000;
                let mut a = Alert::new(THREAT_LIST, p.ts_ns, addr)
                    .with("list", name.as_str())
                    .with("prefix", prefix.to_string())
                    .with("direction", if is_src { "source" } else { "destination" });
                a.topic = i as u64 + 1;
                a.iface = Some(p.iface.clone());
                a.src_ip = Some(ip.src);
                a.dest_ip = Some(ip.dst);
                a.proto = Some(ip.proto);
                (a.src_port, a.dest_port) = match (&p.tcp, &p.udp) {
                    (Some(t), _) => (Some(t.sport), Some(t.dport)),
                    (None, Some(u)) => (Some(u.sport), Some(u.dport)),
                    _ => (None, None),
                };
                // Only a listed source is blockable; a listed destination is ours to report.
                a.offender = is_src.then_some(addr);
                out.push(a);
            }
        }
    }

    fn on_tick(&mut self, now_ns: u64, _out: &mut Vec<Alert>) {
        if now_ns.saturating_sub(self.last_expiry_ns) >= 10_000_000_000 {
            self.last_expiry_ns = now_ns;
            self.next.expire(now_ns, 10_000_000_000);
        }
    }

    fn state(&self) -> StateStats {
        StateStats { entries: self.next.len(), dropped: self.next.dropped }
    }
}
