//! Volumetric spike from many sources: the total packet rate well over its learned baseline AND
//! the source-address entropy jumping, the signature of a spoofed or botnet flood. The alert names
//! the targeted destination(s) so the policy rate-limits them rather than chasing random sources.
//!
//! Entropy is Shannon entropy over 1024 bins of hashed source addresses per interval (bounded
//! memory whatever the number of sources; it reads ~log2(sources) up to a few hundred sources
//! and saturates towards 10 bits). Baselines are EWMAs of rate and entropy over quiet intervals.
use super::state::{entropy, hash_of, TopK};
use super::{Detector, StateStats};
use crate::alert::{Alert, Signature};
use crate::event::Packet;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpikeConfig {
    /// Length of one measurement interval.
    pub interval_ms: u64,
    /// Intervals learned before the detector may alert (warm-up).
    pub warmup_intervals: u32,
    /// The rate must exceed the baseline by this factor ...
    pub rate_factor: f64,
    /// ... and this absolute floor (packets/s) ...
    pub min_pps: f64,
    /// ... while the source entropy rises by at least this many bits over its baseline.
    pub entropy_jump_bits: f64,
    /// EWMA weight of a new interval in the baselines.
    pub alpha: f64,
    /// Destinations with at least this share of the interval's packets are named as targets.
    pub target_share: f64,
}

impl Default for SpikeConfig {
    fn default() -> Self {
        SpikeConfig {
            interval_ms: 500,
            warmup_intervals: 20,
            rate_factor: 4.0,
            min_pps: 5000.0,
            entropy_jump_bits: 3.0,
            alpha: 0.05,
            target_share: 0.2,
        }
    }
}

pub const VOLUMETRIC_SPIKE: Signature = Signature {
    detector: "volumetric_spike",
    sid: 7,
    rev: 1,
    msg: "RXRAY volumetric spike from many sources (rate over baseline, source entropy jump)",
    category: "Attempted Denial of Service",
    severity: 1,
};

const BINS: usize = 1024;

pub struct SpikeDetector {
    cfg: SpikeConfig,
    interval_ns: u64,
    cur: u64,
    total: u64,
    bins: Box<[u32; BINS]>,
    targets: TopK<IpAddr, 8>,
    iface: String,
    base_pps: f64,
    base_entropy: f64,
    intervals: u64,
}

impl SpikeDetector {
    pub fn new(cfg: SpikeConfig) -> Self {
        SpikeDetector {
            interval_ns: (cfg.interval_ms * 1_000_000).max(1),
            cur: 0,
            total: 0,
            bins: Box::new([0; BINS]),
            targets: TopK::default(),
            iface: String::new(),
            base_pps: 0.0,
            base_entropy: 0.0,
            intervals: 0,
            cfg,
        }
    }

    /// Closes every interval before the one holding `now`, evaluating the one with traffic.
    fn roll(&mut self, now: u64, out: &mut Vec<Alert>) {
        let slot = now / self.interval_ns;
        if slot <= self.cur {
            return;
        }
        if self.cur != 0 {
            self.close(out);
            // Silent intervals in between count as zero traffic (bounded: a long gap is a restart).
            for _ in 1..(slot - self.cur).min(100) {
                self.learn(0.0, 0.0);
            }
        }
        self.cur = slot;
    }

    fn learn(&mut self, pps: f64, h: f64) {
        if self.intervals == 0 {
            (self.base_pps, self.base_entropy) = (pps, h);
        } else {
            let a = self.cfg.alpha;
            self.base_pps += a * (pps - self.base_pps);
            self.base_entropy += a * (h - self.base_entropy);
        }
        self.intervals += 1;
    }

    fn close(&mut self, out: &mut Vec<Alert>) {
        let secs = self.interval_ns as f64 / 1e9;
        let pps = self.total as f64 / secs;
        let h = entropy(&self.bins[..]);
        let warm = self.intervals >= self.cfg.warmup_intervals as u64;
        let spike = warm
            && pps >= self.cfg.min_pps
            && pps >= self.cfg.rate_factor * self.base_pps
            && h >= self.base_entropy + self.cfg.entropy_jump_bits;
        if spike {
            let zeros = self.bins.iter().filter(|&&c| c == 0).count().max(1) as f64;
            let sources = BINS as f64 * (BINS as f64 / zeros).ln();
            let ts = (self.cur + 1) * self.interval_ns;
            let top = self.targets.top();
            let targets: Vec<_> = top
                .iter()
                .filter(|(_, n)| *n as f64 >= self.cfg.target_share * self.total as f64)
                .map(|(ip, n)| json!({"ip": ip.to_string(), "packets": n, "share": *n as f64 / self.total as f64}))
                .collect();
            for (ip, n) in top.iter().filter(|(_, n)| *n as f64 >= self.cfg.target_share * self.total as f64).take(4) {
                let mut a = Alert::new(VOLUMETRIC_SPIKE, ts, *ip)
                    .with("pps", pps)
                    .with("baseline_pps", self.base_pps)
                    .with("rate_factor", self.cfg.rate_factor)
                    .with("min_pps", self.cfg.min_pps)
                    .with("entropy_bits", h)
                    .with("baseline_entropy_bits", self.base_entropy)
                    .with("entropy_jump_bits", self.cfg.entropy_jump_bits)
                    .with("sources_estimate", sources.round())
                    .with("target_packets", *n)
                    .with("targets", targets.clone());
                a.iface = Some(self.iface.clone());
                a.dest_ip = Some(*ip);
                a.distributed = true;
                out.push(a);
            }
        } else {
            // Attack intervals are not learned, so a long flood does not become the baseline.
            self.learn(pps, h);
        }
        self.total = 0;
        self.bins.fill(0);
        self.targets.clear();
    }
}

impl Detector for SpikeDetector {
    fn name(&self) -> &'static str {
        "volumetric_spike"
    }

    fn on_packet(&mut self, p: &Packet, out: &mut Vec<Alert>) {
        let Some(ip) = &p.ip else { return };
        self.roll(p.ts_ns, out);
        self.total += 1;
        self.bins[(hash_of(&ip.src) % BINS as u64) as usize] += 1;
        self.targets.add(ip.dst, 1);
        if self.iface != p.iface {
            self.iface.clone_from(&p.iface);
        }
    }

    fn on_tick(&mut self, now_ns: u64, out: &mut Vec<Alert>) {
        self.roll(now_ns, out);
    }

    fn state(&self) -> StateStats {
        StateStats { entries: BINS, dropped: 0 }
    }
}
