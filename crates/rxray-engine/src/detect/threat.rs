//! Threat lists: traffic from or to an address in a loaded blocklist (`CidrSet`), naming the list
//! and the listed prefix. Lists are loaded by the caller (the engine does no I/O).
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

pub struct ThreatListDetector {
    lists: Vec<(String, CidrSet)>,
    /// Next time an alert may be built, per (address, list): at most one per second each.
    next: BoundedMap<(IpAddr, usize), u64>,
    last_expiry_ns: u64,
}

impl Default for ThreatListDetector {
    fn default() -> Self {
        ThreatListDetector { lists: Vec::new(), next: BoundedMap::new(65_536), last_expiry_ns: 0 }
    }
}

impl ThreatListDetector {
    pub fn add_list(&mut self, name: impl Into<String>, set: CidrSet) {
        self.lists.push((name.into(), set));
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
