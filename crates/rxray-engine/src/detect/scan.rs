//! Port scans: vertical (one source → one host, many distinct ports) and horizontal (one source →
//! many hosts, one port), counted over a sliding window with fixed-size distinct counters.
//!
//! What counts as a probe, from incoming packets alone: a TCP segment without ACK and without RST
//! (SYN, NULL, FIN, Xmas probes: replies always carry ACK), and a UDP datagram whose source port is
//! not a well-known one (< 1024), so replies from DNS (53), NTP (123) or QUIC (443) servers to our
//! many ephemeral ports never look like a scan. Memory: each key (source+host, or source+port) holds
//! one `DistinctWindow` (64 bytes), keys are capped, and a refused key is counted.
use super::state::{hash_of, BoundedMap, DistinctWindow};
use super::{Detector, StateStats};
use crate::alert::{Alert, Signature};
use crate::event::Packet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// Distinct ports on one host from one source within the window.
    pub vertical_ports: u32,
    /// Distinct hosts on one port from one source within the window.
    pub horizontal_hosts: u32,
    /// The window (distinct values are counted over one to two halves of it).
    pub window_ms: u64,
    /// Keys (source+host and source+port, each) tracked at once.
    pub max_keys: usize,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig { vertical_ports: 100, horizontal_hosts: 64, window_ms: 10_000, max_keys: 65_536 }
    }
}

pub const PORT_SCAN_VERTICAL: Signature = Signature {
    detector: "port_scan_vertical",
    sid: 5,
    rev: 1,
    msg: "RXRAY port scan: one source probing many ports of one host",
    category: "Detection of a Network Scan",
    severity: 2,
};
pub const PORT_SCAN_HORIZONTAL: Signature = Signature {
    detector: "port_scan_horizontal",
    sid: 6,
    rev: 1,
    msg: "RXRAY port sweep: one source probing one port on many hosts",
    category: "Detection of a Network Scan",
    severity: 2,
};

#[derive(Debug, Default)]
struct Key {
    distinct: DistinctWindow,
    probes: u64,
    first_ns: u64,
    /// The first few values seen (ports or hosts' last octets), for the analyst.
    sample: [u16; SAMPLE],
    sampled: u8,
    next_alert_ns: u64,
}

const SAMPLE: usize = 8;

impl Key {
    fn add(&mut self, now: u64, epoch_ns: u64, v: u64, sample: u16) {
        if self.probes == 0 {
            self.first_ns = now;
        }
        self.probes += 1;
        self.distinct.add(now, epoch_ns, hash_of(&v));
        let n = self.sampled as usize;
        if n < SAMPLE && !self.sample[..n].contains(&sample) {
            self.sample[n] = sample;
            self.sampled += 1;
        }
    }
}

pub struct ScanDetector {
    cfg: ScanConfig,
    epoch_ns: u64,
    /// Bits set in a `DistinctWindow` at which each threshold is reached.
    vertical_bits: u32,
    horizontal_bits: u32,
    vertical: BoundedMap<(IpAddr, IpAddr, u8), Key>,
    horizontal: BoundedMap<(IpAddr, u16, u8), Key>,
    last_expiry_ns: u64,
}

impl ScanDetector {
    pub fn new(cfg: ScanConfig) -> Self {
        ScanDetector {
            epoch_ns: (cfg.window_ms * 1_000_000 / 2).max(1),
            vertical_bits: DistinctWindow::bits_for(cfg.vertical_ports as f64),
            horizontal_bits: DistinctWindow::bits_for(cfg.horizontal_hosts as f64),
            vertical: BoundedMap::new(cfg.max_keys),
            horizontal: BoundedMap::new(cfg.max_keys),
            last_expiry_ns: 0,
            cfg,
        }
    }
}

fn scan_alert(sig: Signature, p: &Packet, k: &Key, threshold: u32, window_ms: u64) -> Alert {
    let ip = p.ip.as_ref().expect("probes are IP");
    let mut a = Alert::new(sig, p.ts_ns, ip.src)
        .with("distinct_estimate", k.distinct.estimate().round())
        .with("threshold", threshold)
        .with("window_ms", window_ms)
        .with("probes", k.probes)
        .with("duration_ms", (p.ts_ns - k.first_ns) / 1_000_000);
    a.iface = Some(p.iface.clone());
    a.src_ip = Some(ip.src);
    a.dest_ip = Some(ip.dst);
    a.proto = Some(ip.proto);
    a.offender = Some(ip.src);
    a
}

impl Detector for ScanDetector {
    fn name(&self) -> &'static str {
        "port_scan"
    }

    fn on_packet(&mut self, p: &Packet, out: &mut Vec<Alert>) {
        let Some(ip) = &p.ip else { return };
        let (sport, dport) = match (&p.tcp, &p.udp) {
            (Some(t), _) if t.flags & 0x14 == 0 => (t.sport, t.dport),
            (None, Some(u)) if u.sport >= 1024 => (u.sport, u.dport),
            _ => return,
        };
        let now = p.ts_ns;
        let e = self.epoch_ns;
        if let Some(k) = self.vertical.touch(&(ip.src, ip.dst, ip.proto), now, Key::default) {
            k.add(now, e, dport as u64, dport);
            if k.distinct.reaches(self.vertical_bits) && now >= k.next_alert_ns {
                k.next_alert_ns = now + 1_000_000_000;
                let mut a = scan_alert(PORT_SCAN_VERTICAL, p, k, self.cfg.vertical_ports, self.cfg.window_ms)
                    .with("ports_sample", k.sample[..k.sampled as usize].to_vec());
                a.src_port = Some(sport);
                out.push(a);
            }
        }
        let host_tag = match ip.dst {
            IpAddr::V4(a) => a.octets()[3] as u16,
            IpAddr::V6(a) => a.segments()[7],
        };
        if let Some(k) = self.horizontal.touch(&(ip.src, dport, ip.proto), now, Key::default) {
            k.add(now, e, hash_of(&ip.dst), host_tag);
            if k.distinct.reaches(self.horizontal_bits) && now >= k.next_alert_ns {
                k.next_alert_ns = now + 1_000_000_000;
                let mut a = scan_alert(PORT_SCAN_HORIZONTAL, p, k, self.cfg.horizontal_hosts, self.cfg.window_ms)
                    .with("host_suffix_sample", k.sample[..k.sampled as usize].to_vec());
                a.dest_port = Some(dport);
                out.push(a);
            }
        }
    }

    fn on_tick(&mut self, now_ns: u64, _out: &mut Vec<Alert>) {
        if now_ns.saturating_sub(self.last_expiry_ns) >= 1_000_000_000 {
            self.last_expiry_ns = now_ns;
            let idle = self.cfg.window_ms * 1_000_000;
            self.vertical.expire(now_ns, idle);
            self.horizontal.expire(now_ns, idle);
        }
    }

    fn state(&self) -> StateStats {
        StateStats {
            entries: self.vertical.len() + self.horizontal.len(),
            dropped: self.vertical.dropped + self.horizontal.dropped,
        }
    }
}
