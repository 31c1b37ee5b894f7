//! Floods per destination: SYN (rate AND handshake completion), UDP and ICMP (packets/s over a
//! sliding window), naming the top sources and whether one of them dominates.
//!
//! Handshake completion is judged from incoming packets only: a SYN from (src, sport) to
//! (dst, dport) is pending until the client's ACK on the same 4-tuple arrives (the third
//! packet of the handshake). Pending SYNs sit in a capped table aged by event time; when it is
//! full, further SYNs are counted but not tracked (which can only lower the completion share,
//! i.e. err towards "flood" while a flood is filling the table).
use super::state::{BoundedMap, TopK, WindowCounter, BUCKETS};
use super::{Detector, StateStats};
use crate::alert::{Alert, Signature};
use crate::event::Packet;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FloodConfig {
    /// Sliding window over which rates are measured.
    pub window_ms: u64,
    /// SYNs (without ACK) per second to one destination before the completion share is judged.
    pub syn_pps: u64,
    /// Alert when fewer than this share of those SYNs completed their handshake.
    pub syn_min_completion: f64,
    /// A SYN whose handshake has not completed after this long stops being pending.
    pub handshake_timeout_ms: u64,
    pub udp_pps: u64,
    pub icmp_pps: u64,
    /// One source with at least this share of the flood is "the" source (blockable); below it
    /// the alert is marked distributed.
    pub dominant_share: f64,
    /// Destinations tracked at once.
    pub max_destinations: usize,
    /// Pending handshakes tracked at once.
    pub max_pending: usize,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            window_ms: 1000,
            syn_pps: 1000,
            syn_min_completion: 0.3,
            handshake_timeout_ms: 3000,
            udp_pps: 20_000,
            icmp_pps: 1000,
            dominant_share: 0.5,
            max_destinations: 16_384,
            max_pending: 262_144,
        }
    }
}

pub const SYN_FLOOD: Signature = Signature {
    detector: "syn_flood",
    sid: 1,
    rev: 1,
    msg: "RXRAY SYN flood: high SYN rate with few completed handshakes",
    category: "Attempted Denial of Service",
    severity: 1,
};
pub const UDP_FLOOD: Signature = Signature {
    detector: "udp_flood",
    sid: 2,
    rev: 1,
    msg: "RXRAY UDP flood",
    category: "Attempted Denial of Service",
    severity: 1,
};
pub const ICMP_FLOOD: Signature = Signature {
    detector: "icmp_flood",
    sid: 3,
    rev: 1,
    msg: "RXRAY ICMP flood",
    category: "Attempted Denial of Service",
    severity: 2,
};

/// Per-class counters for one destination.
#[derive(Debug, Default)]
struct Class {
    rate: WindowCounter,
    sources: TopK<IpAddr, 8>,
    /// Packets added to `sources` since it was last cleared.
    since_reset: u64,
    reset_at: u64,
    next_alert_ns: u64,
}

impl Class {
    #[inline]
    fn add(&mut self, now: u64, bucket_ns: u64, window_ns: u64, src: IpAddr) {
        self.rate.add(now, bucket_ns, 1);
        let epoch = now / window_ns;
        if epoch != self.reset_at {
            self.sources.clear();
            self.since_reset = 0;
            self.reset_at = epoch;
        }
        self.sources.add(src, 1);
        self.since_reset += 1;
    }
}

#[derive(Debug, Default)]
struct Dst {
    syn: Class,
    completed: WindowCounter,
    udp: Class,
    icmp: Class,
}

type HandshakeKey = (IpAddr, u16, IpAddr, u16);

pub struct FloodDetector {
    cfg: FloodConfig,
    bucket_ns: u64,
    window_ns: u64,
    dsts: BoundedMap<IpAddr, Dst>,
    pending: BoundedMap<HandshakeKey, ()>,
    last_expiry_ns: u64,
}

impl FloodDetector {
    pub fn new(cfg: FloodConfig) -> Self {
        let window_ns = cfg.window_ms * 1_000_000;
        FloodDetector {
            bucket_ns: (window_ns / BUCKETS as u64).max(1),
            window_ns,
            dsts: BoundedMap::new(cfg.max_destinations),
            pending: BoundedMap::new(cfg.max_pending),
            last_expiry_ns: 0,
            cfg,
        }
    }

    fn alert(&self, sig: Signature, p: &Packet, dst: IpAddr, c: &Class, threshold: u64) -> Alert {
        let secs = self.cfg.window_ms as f64 / 1000.0;
        let top = c.sources.top();
        let share = top.first().map(|t| t.1 as f64 / c.since_reset.max(1) as f64).unwrap_or(0.0);
        let mut a = Alert::new(sig, p.ts_ns, dst);
        a.iface = Some(p.iface.clone());
        a.dest_ip = Some(dst);
        a.proto = p.ip.as_ref().map(|i| i.proto);
        a.src_ip = top.first().map(|t| t.0);
        if share >= self.cfg.dominant_share {
            a.offender = a.src_ip;
        } else {
            a.distributed = true;
        }
        a.with("pps", c.rate.total() as f64 / secs)
            .with("threshold_pps", threshold)
            .with("window_ms", self.cfg.window_ms)
            .with("top_source_share", share)
            .with(
                "top_sources",
                top.iter().take(5).map(|(ip, n)| json!({"ip": ip.to_string(), "packets": n})).collect::<Vec<_>>(),
            )
    }
}

impl Detector for FloodDetector {
    fn name(&self) -> &'static str {
        "flood"
    }

    fn on_packet(&mut self, p: &Packet, out: &mut Vec<Alert>) {
        let Some(ip) = &p.ip else { return };
        let (src, dst, now) = (ip.src, ip.dst, p.ts_ns);
        let (b, w) = (self.bucket_ns, self.window_ns);
        let secs = self.cfg.window_ms as f64 / 1000.0;
        if let Some(t) = &p.tcp {
            let (syn, ack, rst) = (t.flags & 0x02 != 0, t.flags & 0x10 != 0, t.flags & 0x04 != 0);
            if syn && !ack && !rst {
                let _ = self.pending.touch(&(src, t.sport, dst, t.dport), now, || ());
                let Some(d) = self.dsts.touch(&dst, now, Dst::default) else { return };
                d.syn.add(now, b, w, src);
                d.completed.advance(now, b);
                let threshold = (self.cfg.syn_pps as f64 * secs) as u64;
                if d.syn.rate.total() >= threshold.max(1) && now >= d.syn.next_alert_ns {
                    let share = d.completed.total() as f64 / d.syn.rate.total() as f64;
                    if share < self.cfg.syn_min_completion {
                        d.syn.next_alert_ns = now + 1_000_000_000;
                        let d = self.dsts.get(&dst).expect("just touched");
                        let a = self
                            .alert(SYN_FLOOD, p, dst, &d.syn, self.cfg.syn_pps)
                            .with("completed_handshakes", d.completed.total())
                            .with("completion_share", share)
                            .with("min_completion", self.cfg.syn_min_completion);
                        out.push(a);
                    }
                }
            } else if ack
                && !syn
                && !rst
                && !self.pending.is_empty()
                && self.pending.remove(&(src, t.sport, dst, t.dport)).is_some()
            {
                if let Some(d) = self.dsts.get_mut(&dst) {
                    d.completed.add(now, b, 1);
                }
            }
            return;
        }
        let (udp, threshold_pps) = if p.udp.is_some() {
            (true, self.cfg.udp_pps)
        } else if p.icmp.is_some() {
            (false, self.cfg.icmp_pps)
        } else {
            return;
        };
        let Some(d) = self.dsts.touch(&dst, now, Dst::default) else { return };
        let c = if udp { &mut d.udp } else { &mut d.icmp };
        c.add(now, b, w, src);
        let threshold = ((threshold_pps as f64 * secs) as u64).max(1);
        if c.rate.total() >= threshold && now >= c.next_alert_ns {
            c.next_alert_ns = now + 1_000_000_000;
            let d = self.dsts.get(&dst).expect("just touched");
            let (sig, c) = if udp { (UDP_FLOOD, &d.udp) } else { (ICMP_FLOOD, &d.icmp) };
            out.push(self.alert(sig, p, dst, c, threshold_pps));
        }
    }

    fn on_tick(&mut self, now_ns: u64, _out: &mut Vec<Alert>) {
        if now_ns.saturating_sub(self.last_expiry_ns) < 1_000_000_000 {
            return;
        }
        self.last_expiry_ns = now_ns;
        self.pending.expire(now_ns, self.cfg.handshake_timeout_ms * 1_000_000);
        self.dsts.expire(now_ns, 2 * self.window_ns);
    }

    fn state(&self) -> StateStats {
        StateStats {
            entries: self.dsts.len() + self.pending.len(),
            dropped: self.dsts.dropped + self.pending.dropped,
        }
    }
}
