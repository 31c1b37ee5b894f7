//! Exfiltration: a connection that sent more than a threshold to a remote address this host has
//! rarely (or never) talked to before. Fed by connection summaries, not packets: the kernel's
//! `rxray conns` gives them live, the analysis of a two-way capture builds them.
//!
//! "Rare" means fewer than `rare_max_conns` earlier connections to that remote in the memory,
//! which is capped and forgets a remote after `forget_after_s` of event time without contact.
use super::state::BoundedMap;
use super::{ConnSummary, Detector, StateStats};
use crate::alert::{Alert, Signature};
use crate::event::Packet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExfilConfig {
    /// Bytes sent on one connection that make it "large".
    pub bytes_sent: u64,
    /// A remote with fewer earlier connections than this is rare (1 = only never-seen remotes).
    pub rare_max_conns: u32,
    pub forget_after_s: u64,
    pub max_remotes: usize,
}

impl Default for ExfilConfig {
    fn default() -> Self {
        ExfilConfig { bytes_sent: 64 << 20, rare_max_conns: 3, forget_after_s: 7 * 86_400, max_remotes: 100_000 }
    }
}

pub const EXFILTRATION: Signature = Signature {
    detector: "exfiltration",
    sid: 9,
    rev: 1,
    msg: "RXRAY large outgoing transfer to a rare destination",
    category: "Potential Corporate Privacy Violation",
    severity: 2,
};

pub struct ExfilDetector {
    cfg: ExfilConfig,
    /// Earlier connections per remote.
    seen: BoundedMap<IpAddr, u32>,
    last_expiry_ns: u64,
}

impl ExfilDetector {
    pub fn new(cfg: ExfilConfig) -> Self {
        ExfilDetector { seen: BoundedMap::new(cfg.max_remotes), last_expiry_ns: 0, cfg }
    }
}

impl Detector for ExfilDetector {
    fn name(&self) -> &'static str {
        "exfiltration"
    }

    fn on_packet(&mut self, _p: &Packet, _out: &mut Vec<Alert>) {}

    fn on_tick(&mut self, now_ns: u64, _out: &mut Vec<Alert>) {
        if now_ns.saturating_sub(self.last_expiry_ns) >= 60_000_000_000 {
            self.last_expiry_ns = now_ns;
            self.seen.expire(now_ns, self.cfg.forget_after_s * 1_000_000_000);
        }
    }

    fn on_conn(&mut self, c: &ConnSummary, out: &mut Vec<Alert>) {
        let prior = self.seen.get(&c.remote).copied().unwrap_or(0);
        if c.bytes_sent >= self.cfg.bytes_sent && prior < self.cfg.rare_max_conns {
            let secs = c.end_ns.saturating_sub(c.start_ns) as f64 / 1e9;
            let mut a = Alert::new(EXFILTRATION, c.end_ns, c.remote)
                .with("bytes_sent", c.bytes_sent)
                .with("bytes_received", c.bytes_received)
                .with("threshold_bytes", self.cfg.bytes_sent)
                .with("prior_connections", prior)
                .with("rare_max_conns", self.cfg.rare_max_conns)
                .with("duration_s", secs)
                .with("send_rate_bps", if secs > 0.0 { c.bytes_sent as f64 * 8.0 / secs } else { 0.0 });
            a.src_ip = Some(c.local);
            a.src_port = Some(c.local_port);
            a.dest_ip = Some(c.remote);
            a.dest_port = Some(c.remote_port);
            a.proto = Some(c.proto);
            a.offender = Some(c.remote);
            out.push(a);
        }
        if let Some(n) = self.seen.touch(&c.remote, c.end_ns, || 0) {
            *n = n.saturating_add(1);
        }
    }

    fn state(&self) -> StateStats {
        StateStats { entries: self.seen.len(), dropped: self.seen.dropped }
    }
}
