//! Per-metric baselines learned online: packets/s by protocol, by service port and by interface,
//! each with its own EWMA level and EWMA absolute deviation (a MAD-like scale), silent during its
//! warm-up, alerting on a robust z-score with the metric, value, baseline and score named.
//!
//! Warm-up is a plain running mean and mean absolute deviation over the first intervals. After it,
//! a sample is winsorised to level ± 3 scales before it is learned (robustness: one burst
//! cannot drag the baseline), and anomalous intervals are not learned at all. Only rises alert (a drop
//! in traffic is not an attack on this host). The service port of a packet is the lower of its
//! two ports, so replies to our ephemeral ports count under the server's port.
use super::state::BoundedMap;
use super::{Detector, StateStats};
use crate::alert::{Alert, Signature};
use crate::event::Packet;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    pub interval_ms: u64,
    /// Intervals a metric learns before it may alert (each metric has its own warm-up).
    pub warmup_intervals: u32,
    /// EWMA weight of a new interval.
    pub alpha: f64,
    /// Robust z-score that alerts.
    pub z: f64,
    /// The value must also be at least this multiple of the baseline ...
    pub min_ratio: f64,
    /// ... and at least this many packets/s.
    pub min_pps: f64,
    /// Service-port metrics tracked at once (the protocol and interface ones are few).
    pub max_ports: usize,
    /// A metric with no traffic for this long is forgotten.
    pub forget_after_s: u64,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            interval_ms: 1000,
            warmup_intervals: 30,
            alpha: 0.05,
            z: 6.0,
            min_ratio: 3.0,
            min_pps: 1000.0,
            max_ports: 4096,
            forget_after_s: 600,
        }
    }
}

pub const BASELINE: Signature = Signature {
    detector: "baseline",
    sid: 8,
    rev: 1,
    msg: "RXRAY traffic metric far above its learned baseline",
    category: "Misc activity",
    severity: 3,
};

#[derive(Debug, Default, Clone)]
struct Metric {
    count: u64,
    l: Learned,
}

/// A level learned online (shared with the API health baselines): a plain running mean and mean
/// absolute deviation during the warm-up, then EWMAs of samples winsorised to level ± 3 scales;
/// anomalous samples are not learned.
#[derive(Debug, Default, Clone)]
pub struct Learned {
    pub level: f64,
    pub dev: f64,
    pub learned: u32,
}

impl Learned {
    /// The scale of the robust z-score: 1.4826 × the deviation, never below 10% of the level or
    /// `floor` (steady traffic has a tiny deviation, and a z-score over it would flag every wobble).
    pub fn scale(&self, floor: f64) -> f64 {
        (1.4826 * self.dev).max(0.1 * self.level).max(floor)
    }

    /// Ends one interval with sample `x`: once `warmup` samples are learned and `alarm(score,
    /// level)` holds, returns the robust z-score (and learns nothing); otherwise learns `x`.
    pub fn step(&mut self, x: f64, warmup: u32, alpha: f64, floor: f64, alarm: impl FnOnce(f64, f64) -> bool) -> Option<f64> {
        if self.learned == 0 {
            (self.level, self.dev, self.learned) = (x, 0.0, 1);
            return None;
        }
        let scale = self.scale(floor);
        let score = (x - self.level) / scale;
        if self.learned >= warmup && alarm(score, self.level) {
            return Some(score);
        }
        if self.learned < warmup {
            // Warm-up: plain running mean and mean absolute deviation of everything seen, so a level
            // shift during warm-up is part of the baseline rather than an alert right after it.
            let n = self.learned as f64 + 1.0;
            self.dev += ((x - self.level).abs() - self.dev) / n;
            self.level += (x - self.level) / n;
            self.learned += 1;
            return None;
        }
        let clipped = x.clamp(self.level - 3.0 * scale, self.level + 3.0 * scale);
        let d = (clipped - self.level).abs();
        self.level += alpha * (clipped - self.level);
        self.dev += alpha * (d - self.dev);
        self.learned = self.learned.saturating_add(1);
        None
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Proto(u8),
    Port(u8, u16),
    Iface(u32),
}

const PROTOS: [&str; 5] = ["tcp", "udp", "icmp", "other_ip", "non_ip"];

pub struct BaselineDetector {
    cfg: BaselineConfig,
    interval_ns: u64,
    cur: u64,
    protos: [Metric; 5],
    ports: BoundedMap<(u8, u16), Metric>,
    /// Interfaces are few: a short vector searched linearly beats hashing on every packet.
    ifaces: Vec<(u32, String, Metric, u64)>,
    /// Interfaces not tracked because `MAX_IFACES` were already.
    ifaces_dropped: u64,
}

const MAX_IFACES: usize = 256;

impl BaselineDetector {
    pub fn new(cfg: BaselineConfig) -> Self {
        BaselineDetector {
            interval_ns: (cfg.interval_ms * 1_000_000).max(1),
            cur: 0,
            protos: Default::default(),
            ports: BoundedMap::new(cfg.max_ports),
            ifaces: Vec::new(),
            ifaces_dropped: 0,
            cfg,
        }
    }

    fn roll(&mut self, now: u64, out: &mut Vec<Alert>) {
        let slot = now / self.interval_ns;
        if slot <= self.cur {
            return;
        }
        if self.cur != 0 {
            let ts = (self.cur + 1) * self.interval_ns;
            let gap = (slot - self.cur).min(100);
            for i in 0..gap {
                let ts = ts + i * self.interval_ns;
                for (n, m) in self.protos.iter_mut().enumerate() {
                    close(&self.cfg, m, Key::Proto(n as u8), "", ts, out);
                }
                for (k, m) in self.ports.iter_mut() {
                    close(&self.cfg, m, Key::Port(k.0, k.1), "", ts, out);
                }
                for (k, name, m, _) in self.ifaces.iter_mut() {
                    close(&self.cfg, m, Key::Iface(*k), name, ts, out);
                }
            }
            let forget = self.cfg.forget_after_s * 1_000_000_000;
            self.ports.expire(now, forget);
            self.ifaces.retain(|i| now.saturating_sub(i.3) <= forget);
        }
        self.cur = slot;
    }
}

/// Ends one interval of one metric: judge it (when warm), then learn it (when not anomalous).
fn close(cfg: &BaselineConfig, m: &mut Metric, key: Key, iface: &str, ts: u64, out: &mut Vec<Alert>) {
    let x = m.count as f64 * 1e9 / (cfg.interval_ms as f64 * 1e6);
    m.count = 0;
    let alarm = |score: f64, level: f64| score >= cfg.z && x >= cfg.min_ratio * level && x >= cfg.min_pps;
    let Some(score) = m.l.step(x, cfg.warmup_intervals, cfg.alpha, 1.0, alarm) else { return };
    let level = m.l.level;
    let (name, subject_iface) = match key {
        Key::Proto(n) => (format!("proto:{}", PROTOS[n as usize]), None),
        Key::Port(p, port) => (format!("port:{}/{}", if p == 6 { "tcp" } else { "udp" }, port), None),
        Key::Iface(_) => (format!("iface:{iface}"), Some(iface.to_string())),
    };
    let explanation = format!(
        "{name} at {x:.0} pps is {:.1}x its baseline of {:.0} pps (robust z-score {score:.1} >= {})",
        x / level.max(1e-9),
        level,
        cfg.z
    );
    let mut a = Alert::new(BASELINE, ts, std::net::IpAddr::from([0u8; 4]));
    a.topic = super::state::hash_of(&name);
    let mut a = a
        .with("metric", name)
        .with("value_pps", x)
        .with("baseline_pps", level)
        .with("deviation_pps", m.l.dev)
        .with("score", score)
        .with("z_threshold", cfg.z)
        .with("min_ratio", cfg.min_ratio)
        .with("explanation", explanation);
    a.iface = subject_iface;
    if let Key::Port(p, port) = key {
        a.proto = Some(p);
        a.dest_port = Some(port);
    }
    out.push(a);
}

impl Detector for BaselineDetector {
    fn name(&self) -> &'static str {
        "baseline"
    }

    fn on_packet(&mut self, p: &Packet, out: &mut Vec<Alert>) {
        let now = p.ts_ns;
        self.roll(now, out);
        let class = match &p.ip {
            None => 4,
            Some(ip) => match ip.proto {
                6 => 0,
                17 => 1,
                1 | 58 => 2,
                _ => 3,
            },
        };
        self.protos[class].count += 1;
        let ports = match (&p.tcp, &p.udp) {
            (Some(t), _) => Some((6, t.sport.min(t.dport))),
            (None, Some(u)) => Some((17, u.sport.min(u.dport))),
            _ => None,
        };
        if let Some(k) = ports {
            if let Some(m) = self.ports.touch(&k, now, Metric::default) {
                m.count += 1;
            }
        }
        let n = self.ifaces.len();
        match self.ifaces.iter_mut().find(|i| i.0 == p.ifindex) {
            Some(i) => {
                i.2.count += 1;
                i.3 = now;
            }
            None if n < MAX_IFACES => {
                self.ifaces.push((p.ifindex, p.iface.clone(), Metric { count: 1, ..Default::default() }, now))
            }
            None => self.ifaces_dropped += 1,
        }
    }

    fn on_tick(&mut self, now_ns: u64, out: &mut Vec<Alert>) {
        self.roll(now_ns, out);
    }

    fn state(&self) -> StateStats {
        StateStats { entries: 5 + self.ports.len() + self.ifaces.len(), dropped: self.ports.dropped + self.ifaces_dropped }
    }
}
