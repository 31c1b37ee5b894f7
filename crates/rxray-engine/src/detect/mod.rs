//! Detectors over the packet stream (floods, flag abuse, scans, volumetric spikes, baselines,
//! exfiltration, threat lists), the one configuration they share and `Detectors`, which owns them,
//! numbers their alerts, suppresses duplicates and attaches the mitigation policy's decision.
//!
//! Pure: time is the events' time (`Packet::ts_ns`, `ConnSummary::end_ns`, `on_tick(now)`); all
//! state is bounded and aged by that time. See docs/detection.md for thresholds and defaults.
pub mod api_health;
pub mod api_limit;
pub mod baseline;
pub mod exfil;
pub mod flags;
pub mod flood;
pub mod policy;
pub mod scan;
pub mod spike;
pub mod state;
pub mod threat;

use crate::alert::{Alert, Suppressor};
use crate::cidr::CidrSet;
use crate::event::Packet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub use baseline::BaselineConfig;
pub use exfil::ExfilConfig;
pub use flags::FlagsConfig;
pub use flood::FloodConfig;
pub use policy::{Action, ActionKind, Mitigation, Policy, PolicyConfig, Response};
pub use scan::ScanConfig;
pub use spike::SpikeConfig;

/// One detector. `Detectors` gives it every packet in event-time order, ticks, and connection
/// summaries; it appends alerts to `out` (at most one per key per second: repeats beyond that
/// are the suppressor's business).
pub trait Detector {
    fn name(&self) -> &'static str;
    fn on_packet(&mut self, p: &Packet, out: &mut Vec<Alert>);
    /// Event time has reached `now_ns` (closes intervals, ages state).
    fn on_tick(&mut self, now_ns: u64, out: &mut Vec<Alert>);
    fn on_conn(&mut self, _c: &ConnSummary, _out: &mut Vec<Alert>) {}
    fn state(&self) -> StateStats;
}

/// Size of a detector's state, and how many new keys it refused because it was full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StateStats {
    pub entries: usize,
    pub dropped: u64,
}

/// One connection as seen from this host: what it sent and received, and when. Live, the
/// kernel's `rxray conns` produces them (a finished connection, or an open one with `end_ns` the
/// time of the summary); offline, the analysis builds them from a capture holding both directions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnSummary {
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// Every threshold of every detector, with documented defaults (docs/detection.md). Deserialises
/// from any serde format (JSON, TOML, ...); missing fields keep their defaults, unknown fields are
/// an error (a misspelt threshold must not silently do nothing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Repeats of an alert for the same (subject, detector) within this window are suppressed
    /// and counted.
    pub suppress_window_s: u64,
    /// How often (event time) detectors get a tick from the packet stream.
    pub tick_ms: u64,
    pub flood: FloodConfig,
    pub flags: FlagsConfig,
    pub scan: ScanConfig,
    pub spike: SpikeConfig,
    pub baseline: BaselineConfig,
    pub exfil: ExfilConfig,
    pub policy: PolicyConfig,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            suppress_window_s: 60,
            tick_ms: 100,
            flood: Default::default(),
            flags: Default::default(),
            scan: Default::default(),
            spike: Default::default(),
            baseline: Default::default(),
            exfil: Default::default(),
            policy: Default::default(),
        }
    }
}

/// A configuration that cannot work, and which field says so.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("detection config, line {line}, column {column}: {message}")]
    Syntax { line: usize, column: usize, message: String },
    #[error("detection config: {field} must be {requirement} (it is {value})")]
    Invalid { field: &'static str, requirement: &'static str, value: String },
}

impl DetectConfig {
    /// Parses a JSON configuration (partial: absent fields keep their defaults) and validates it.
    pub fn from_json(text: &str) -> Result<DetectConfig, ConfigError> {
        let c: DetectConfig = serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        c.validate()?;
        Ok(c)
    }

    /// Checks that every window and interval is between 1 ms (or 1 s) and 30 days, counts are
    /// non-zero, and every share is a share.
    pub fn validate(&self) -> Result<(), ConfigError> {
        const DAYS_30_S: u64 = 30 * 86_400;
        const DAYS_30_MS: u64 = DAYS_30_S * 1000;
        // (field, value, maximum): durations stay under 30 days so nanosecond arithmetic never overflows.
        let bounded: [(&'static str, u64, u64); 11] = [
            ("tick_ms", self.tick_ms, DAYS_30_MS),
            ("flood.window_ms", self.flood.window_ms, DAYS_30_MS),
            ("flood.handshake_timeout_ms", self.flood.handshake_timeout_ms, DAYS_30_MS),
            ("flags.window_ms", self.flags.window_ms, DAYS_30_MS),
            ("scan.window_ms", self.scan.window_ms, DAYS_30_MS),
            ("spike.interval_ms", self.spike.interval_ms, DAYS_30_MS),
            ("baseline.interval_ms", self.baseline.interval_ms, DAYS_30_MS),
            ("suppress_window_s", self.suppress_window_s, DAYS_30_S),
            ("baseline.forget_after_s", self.baseline.forget_after_s, DAYS_30_S),
            ("exfil.forget_after_s", self.exfil.forget_after_s, DAYS_30_S),
            ("flags.count", self.flags.count as u64, u32::MAX as u64),
        ];
        for (field, v, max) in bounded {
            if v == 0 {
                return Err(ConfigError::Invalid { field, requirement: "greater than 0", value: v.to_string() });
            }
            if v > max {
                return Err(ConfigError::Invalid { field, requirement: "at most 30 days", value: v.to_string() });
            }
        }
        let shares: [(&'static str, f64); 5] = [
            ("flood.syn_min_completion", self.flood.syn_min_completion),
            ("flood.dominant_share", self.flood.dominant_share),
            ("spike.alpha", self.spike.alpha),
            ("spike.target_share", self.spike.target_share),
            ("baseline.alpha", self.baseline.alpha),
        ];
        for (field, v) in shares {
            if !(0.0..=1.0).contains(&v) {
                return Err(ConfigError::Invalid { field, requirement: "between 0 and 1", value: v.to_string() });
            }
        }
        // A configuration built in code skips the deserialiser's check of the names.
        if let Some(name) = self.policy.detectors.keys().find(|k| !policy::DETECTOR_NAMES.contains(&k.as_str())) {
            return Err(ConfigError::Invalid { field: "policy.detectors", requirement: "keyed by detector names", value: format!("{name:?}") });
        }
        Ok(())
    }
}

/// Counters of the whole detector set.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DetectStats {
    pub packets: u64,
    pub conns: u64,
    pub alerts: u64,
    pub suppressed: u64,
    /// Per detector: state size and refused keys.
    pub state: Vec<(&'static str, StateStats)>,
}

/// All detectors, the suppressor and the policy: the one value the pipeline feeds.
pub struct Detectors {
    detectors: Vec<Box<dyn Detector>>,
    threat: threat::ThreatListDetector,
    suppressor: Suppressor,
    policy: Policy,
    tick_ns: u64,
    next_tick_ns: u64,
    now_ns: u64,
    next_id: u64,
    raw: Vec<Alert>,
    stats: DetectStats,
}

impl Detectors {
    /// Builds every detector from `cfg`; `host_addrs` (the machine's own addresses) are never blocked.
    pub fn new(cfg: DetectConfig, host_addrs: &[IpAddr]) -> Result<Detectors, ConfigError> {
        cfg.validate()?;
        let detectors: Vec<Box<dyn Detector>> = vec![
            Box::new(flood::FloodDetector::new(cfg.flood.clone())),
            Box::new(flags::FlagsDetector::new(cfg.flags.clone())),
            Box::new(scan::ScanDetector::new(cfg.scan.clone())),
            Box::new(spike::SpikeDetector::new(cfg.spike.clone())),
            Box::new(baseline::BaselineDetector::new(cfg.baseline.clone())),
            Box::new(exfil::ExfilDetector::new(cfg.exfil.clone())),
        ];
        Ok(Detectors {
            detectors,
            threat: Default::default(),
            suppressor: Suppressor::new(cfg.suppress_window_s * 1_000_000_000, 65_536),
            policy: Policy::new(cfg.policy.clone(), host_addrs),
            tick_ns: cfg.tick_ms * 1_000_000,
            next_tick_ns: 0,
            now_ns: 0,
            next_id: 1,
            raw: Vec::new(),
            stats: DetectStats::default(),
        })
    }

    /// Adds a threat list (a loaded `CidrSet`) under a name the alerts will carry.
    pub fn add_threat_list(&mut self, name: impl Into<String>, set: CidrSet) {
        self.threat.add_list(name, set);
    }

    /// Adds a threat list's SNI and JA4 entries (matched on TLS handshakes, `on_tls`).
    pub fn add_threat_names(&mut self, name: impl Into<String>, names: threat::TlsNames) {
        self.threat.add_names(name, names);
    }

    /// Some threat list names TLS server names or JA4 fingerprints.
    pub fn has_threat_names(&self) -> bool {
        self.threat.has_names()
    }

    /// One TLS connection's handshake facts, for the threat lists' SNI and JA4 entries.
    pub fn on_tls(&mut self, f: &crate::http::TlsFacts, out: &mut Vec<Alert>) {
        self.threat.on_tls(f, &mut self.raw);
        self.finish(out);
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Feeds one packet (ticking first when its time has passed the next tick).
    pub fn on_packet(&mut self, p: &Packet, out: &mut Vec<Alert>) {
        self.stats.packets += 1;
        if p.ts_ns >= self.next_tick_ns {
            self.on_tick(p.ts_ns, out);
        }
        for d in &mut self.detectors {
            d.on_packet(p, &mut self.raw);
        }
        self.threat.on_packet(p, &mut self.raw);
        self.finish(out);
    }

    /// Event time has reached `now_ns`: a live source calls this when no packet came for a while.
    pub fn on_tick(&mut self, now_ns: u64, out: &mut Vec<Alert>) {
        if now_ns < self.now_ns {
            return;
        }
        self.now_ns = now_ns;
        self.next_tick_ns = now_ns - now_ns % self.tick_ns + self.tick_ns;
        for d in &mut self.detectors {
            d.on_tick(now_ns, &mut self.raw);
        }
        self.threat.on_tick(now_ns, &mut self.raw);
        self.suppressor.expire(now_ns);
        self.finish(out);
    }

    /// Feeds one connection summary.
    pub fn on_conn(&mut self, c: &ConnSummary, out: &mut Vec<Alert>) {
        self.stats.conns += 1;
        for d in &mut self.detectors {
            d.on_conn(c, &mut self.raw);
        }
        self.finish(out);
    }

    pub fn stats(&self) -> DetectStats {
        let mut s = self.stats.clone();
        s.suppressed = self.suppressor.total_suppressed;
        s.state = self.detectors.iter().map(|d| (d.name(), d.state())).collect();
        s.state.push((self.threat.name(), self.threat.state()));
        s
    }

    /// Submits an alert found outside the detectors (a payload signature): it is suppressed,
    /// numbered and decided like theirs.
    pub fn submit(&mut self, a: Alert, out: &mut Vec<Alert>) {
        self.raw.push(a);
        self.finish(out);
    }

    /// Submits a rule-based signature's alert: numbered and decided like the detectors', but
    /// never held back by repeat suppression (Suricata alerts on every match; the rule's
    /// `threshold`, `detection_filter` and threshold.config have already had their say).
    pub fn submit_rule(&mut self, a: Alert, out: &mut Vec<Alert>) {
        self.finish(out);
        self.number(a, out);
    }

    /// Suppresses repeats, numbers what is left and records the policy's decision on it.
    fn finish(&mut self, out: &mut Vec<Alert>) {
        let mut raw = std::mem::take(&mut self.raw);
        for mut a in raw.drain(..) {
            if !self.suppressor.admit(&mut a) {
                continue;
            }
            self.number(a, out);
        }
        self.raw = raw;
    }

    fn number(&mut self, mut a: Alert, out: &mut Vec<Alert>) {
        a.id = self.next_id;
        self.next_id += 1;
        // A detector that decided itself (an API limit's action) is vetted, not overruled.
        a.mitigation = Some(match a.mitigation.take() {
            Some(m) => self.policy.vet(m, &a),
            None => self.policy.decide(&a),
        });
        self.stats.alerts += 1;
        out.push(a);
    }
}
