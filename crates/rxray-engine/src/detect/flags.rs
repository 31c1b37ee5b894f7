//! TCP flag abuse per source: NULL, Xmas (FIN+PSH+URG), FIN-only scans and combinations no TCP
//! stack sends (SYN+FIN, SYN+RST, data/FIN flags without ACK), over a small count threshold.
//!
//! Only FIN SYN RST PSH ACK URG are judged; ECE/CWR (ECN) are legal with any of them.
use super::state::{BoundedMap, WindowCounter, BUCKETS};
use super::{Detector, StateStats};
use crate::alert::{Alert, Signature};
use crate::event::Packet;
use serde::{Deserialize, Serialize};
use serde_json::Map;
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlagsConfig {
    /// Abnormal packets from one source within the window that raise an alert.
    pub count: u32,
    pub window_ms: u64,
    pub max_sources: usize,
}

impl Default for FlagsConfig {
    fn default() -> Self {
        FlagsConfig { count: 5, window_ms: 10_000, max_sources: 65_536 }
    }
}

pub const TCP_FLAGS: Signature = Signature {
    detector: "tcp_flags",
    sid: 4,
    rev: 1,
    msg: "RXRAY TCP flag abuse (NULL/Xmas/FIN scan or invalid flag combination)",
    category: "Detection of a Network Scan",
    severity: 2,
};

/// The kinds of abnormal flag sets, in the order they are tested.
pub const FLAG_KINDS: [&str; 6] = ["null", "xmas", "syn_fin", "syn_rst", "fin_only", "no_ack"];

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;

/// The abnormal kind (index into `FLAG_KINDS`) of a TCP flag byte, if abnormal.
pub fn classify(flags: u8) -> Option<usize> {
    let f = flags & 0x3f;
    match f {
        0 => Some(0),
        _ if f & (FIN | PSH | URG) == FIN | PSH | URG => Some(1),
        _ if f & (SYN | FIN) == SYN | FIN => Some(2),
        _ if f & (SYN | RST) == SYN | RST => Some(3),
        FIN => Some(4),
        // Every segment after the SYN carries ACK; only SYN and RST may go without it.
        _ if f & (ACK | SYN | RST) == 0 => Some(5),
        _ => None,
    }
}

#[derive(Debug, Default)]
struct Source {
    window: WindowCounter,
    kinds: [u32; 6],
    next_alert_ns: u64,
}

pub struct FlagsDetector {
    cfg: FlagsConfig,
    bucket_ns: u64,
    sources: BoundedMap<IpAddr, Source>,
    last_expiry_ns: u64,
}

impl FlagsDetector {
    pub fn new(cfg: FlagsConfig) -> Self {
        FlagsDetector {
            bucket_ns: (cfg.window_ms * 1_000_000 / BUCKETS as u64).max(1),
            sources: BoundedMap::new(cfg.max_sources),
            last_expiry_ns: 0,
            cfg,
        }
    }
}

impl Detector for FlagsDetector {
    fn name(&self) -> &'static str {
        "tcp_flags"
    }

    fn on_packet(&mut self, p: &Packet, out: &mut Vec<Alert>) {
        let (Some(t), Some(ip)) = (&p.tcp, &p.ip) else { return };
        let Some(kind) = classify(t.flags) else { return };
        let now = p.ts_ns;
        let Some(s) = self.sources.touch(&ip.src, now, Source::default) else { return };
        s.window.add(now, self.bucket_ns, 1);
        s.kinds[kind] += 1;
        if s.window.total() >= self.cfg.count as u64 && now >= s.next_alert_ns {
            s.next_alert_ns = now + 1_000_000_000;
            let kinds: Map<String, serde_json::Value> =
                FLAG_KINDS.iter().zip(s.kinds).filter(|(_, n)| *n > 0).map(|(k, n)| (k.to_string(), n.into())).collect();
            let mut a = Alert::new(TCP_FLAGS, now, ip.src)
                .with("packets_in_window", s.window.total())
                .with("threshold", self.cfg.count)
                .with("window_ms", self.cfg.window_ms)
                .with("kinds", kinds)
                .with("last_flags", t.flags_str());
            a.iface = Some(p.iface.clone());
            a.src_ip = Some(ip.src);
            a.src_port = Some(t.sport);
            a.dest_ip = Some(ip.dst);
            a.dest_port = Some(t.dport);
            a.proto = Some(6);
            a.offender = Some(ip.src);
            out.push(a);
        }
    }

    fn on_tick(&mut self, now_ns: u64, _out: &mut Vec<Alert>) {
        if now_ns.saturating_sub(self.last_expiry_ns) >= 1_000_000_000 {
            self.last_expiry_ns = now_ns;
            self.sources.expire(now_ns, self.cfg.window_ms * 1_000_000);
        }
    }

    fn state(&self) -> StateStats {
        StateStats { entries: self.sources.len(), dropped: self.sources.dropped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_scans_and_spares_normal_segments() {
        assert_eq!(classify(0), Some(0));
        assert_eq!(classify(FIN | PSH | URG), Some(1));
        assert_eq!(classify(SYN | FIN), Some(2));
        assert_eq!(classify(SYN | RST), Some(3));
        assert_eq!(classify(FIN), Some(4));
        assert_eq!(classify(PSH), Some(5));
        for ok in [SYN, SYN | ACK, ACK, PSH | ACK, FIN | ACK, RST, RST | ACK, SYN | 0xc0, ACK | 0x40] {
            assert_eq!(classify(ok), None, "{ok:#x}");
        }
    }
}
