//! Mitigation policy: a pure decision per alert (block a source, rate-limit a destination, or only
//! alert), with a TTL and the reason recorded. Carrying it out is the firewall's job, not ours.
//!
//! Two rules hold whatever the configuration: an address on the allow list (the host's own
//! addresses plus configured networks) is never blocked, and an alert marked `distributed`
//! (many, likely spoofed, sources) rate-limits its destination instead of blocking a source.
use crate::alert::Alert;
use crate::cidr::{Cidr, CidrSet};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// What to do when a detector alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    /// Report only.
    Alert,
    /// Block the source address (a host prefix) for the TTL.
    Block,
    /// Rate-limit packets to the destination for the TTL.
    RateLimit,
}

/// The response of one detector.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorPolicy {
    pub response: Response,
    pub ttl_s: u32,
    /// Rate limit applied to a destination (packets/s and burst), when the response rate-limits.
    pub rate_limit_pps: u32,
    pub rate_limit_burst: u32,
}

impl Default for DetectorPolicy {
    fn default() -> Self {
        DetectorPolicy { response: Response::Alert, ttl_s: 600, rate_limit_pps: 1000, rate_limit_burst: 2000 }
    }
}

impl DetectorPolicy {
    fn new(response: Response, ttl_s: u32) -> Self {
        DetectorPolicy { response, ttl_s, ..Default::default() }
    }
}

/// Policy configuration: per-detector responses (by detector name) and the allow list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Keyed by detector name: a name not in `DETECTOR_NAMES` is an error (with its line and
    /// column when it comes from a file), never a policy that silently applies to nothing.
    #[serde(deserialize_with = "known_detectors")]
    pub detectors: BTreeMap<String, DetectorPolicy>,
    /// Networks never blocked (the host's own addresses are added by `Policy::new`).
    pub allow: Vec<Cidr>,
}

/// Every name a detector policy can be keyed by: the detectors' alert names, `threat_list`,
/// `signature`, `signature_drop` (a `drop` or `reject` rule's match) and `openapi`.
pub const DETECTOR_NAMES: &[&str] = &[
    "syn_flood",
    "udp_flood",
    "icmp_flood",
    "tcp_flags",
    "port_scan_vertical",
    "port_scan_horizontal",
    "volumetric_spike",
    "baseline",
    "exfiltration",
    "threat_list",
    "signature",
    "signature_drop",
    "openapi",
    "api_limit",
    "api_health",
];

/// A detector name, checked against `DETECTOR_NAMES` while deserialising (so the error carries
/// the position the format gives it).
struct DetectorName(String);

impl<'de> Deserialize<'de> for DetectorName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if DETECTOR_NAMES.contains(&s.as_str()) {
            Ok(DetectorName(s))
        } else {
            Err(serde::de::Error::custom(format!("unknown detector name {s:?} in policy.detectors, expected one of {}", DETECTOR_NAMES.join(", "))))
        }
    }
}

fn known_detectors<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, DetectorPolicy>, D::Error> {
    let m = BTreeMap::<DetectorName, DetectorPolicy>::deserialize(d)?;
    Ok(m.into_iter().map(|(k, v)| (k.0, v)).collect())
}

impl PartialEq for DetectorName {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for DetectorName {}
impl PartialOrd for DetectorName {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for DetectorName {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}

impl Default for PolicyConfig {
    /// The defaults documented in docs/detection.md.
    fn default() -> Self {
        use Response::*;
        let d = [
            ("syn_flood", DetectorPolicy::new(Block, 600)),
            ("udp_flood", DetectorPolicy::new(Block, 600)),
            ("icmp_flood", DetectorPolicy::new(Block, 600)),
            ("tcp_flags", DetectorPolicy::new(Block, 600)),
            ("port_scan_vertical", DetectorPolicy::new(Block, 3600)),
            ("port_scan_horizontal", DetectorPolicy::new(Block, 3600)),
            ("volumetric_spike", DetectorPolicy { rate_limit_pps: 10_000, rate_limit_burst: 20_000, ..DetectorPolicy::new(RateLimit, 300) }),
            ("baseline", DetectorPolicy::new(Alert, 0)),
            ("exfiltration", DetectorPolicy::new(Alert, 0)),
            ("threat_list", DetectorPolicy::new(Block, 3600)),
            ("signature", DetectorPolicy::new(Alert, 0)),
            // A rule whose action is drop or reject: its sender is blocked (with --enforce).
            ("signature_drop", DetectorPolicy::new(Block, 600)),
        ];
        PolicyConfig { detectors: d.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), allow: Vec::new() }
    }
}

/// A mitigation to carry out.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ActionKind {
    Block { cidr: Cidr },
    RateLimit { dst: IpAddr, pps: u32, burst: u32 },
    /// Rate-limit packets from a source prefix (a client over its API limit): to `dport`, only
    /// its connection openings when `syn_only`, one per `interval_ns` with `burst` (`rate` says it).
    LimitSrc { cidr: Cidr, dport: Option<u16>, syn_only: bool, interval_ns: u64, burst: u64, rate: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Action {
    pub kind: ActionKind,
    pub ttl_s: u32,
    pub reason: String,
    pub alert_id: u64,
}

impl Action {
    pub fn is_block(&self) -> bool {
        matches!(self.kind, ActionKind::Block { .. })
    }
}

/// The decision recorded on an alert: an action, or why none was taken.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Mitigation {
    Taken(Action),
    None { reason: String },
}

/// The policy, ready to decide.
#[derive(Clone, Debug)]
pub struct Policy {
    cfg: PolicyConfig,
    allow: CidrSet,
    /// The same prefixes as a list (to test whole prefixes against it).
    allow_list: Vec<Cidr>,
}

impl Policy {
    /// `host_addrs` (the machine's own addresses) join the configured allow list.
    pub fn new(cfg: PolicyConfig, host_addrs: &[IpAddr]) -> Policy {
        let mut list = cfg.allow.clone();
        list.extend(host_addrs.iter().map(|a| Cidr::host(*a)));
        Policy { allow: CidrSet::new(&list), allow_list: list, cfg }
    }

    pub fn is_allowed(&self, a: IpAddr) -> bool {
        self.allow.contains(a)
    }

    /// A detector's own decision (an API limit's action): numbered, and refused when the prefix
    /// it acts on holds an address of the allow list.
    pub fn vet(&self, m: Mitigation, alert: &Alert) -> Mitigation {
        let Mitigation::Taken(mut act) = m else { return m };
        if let ActionKind::Block { cidr } | ActionKind::LimitSrc { cidr, .. } = &act.kind {
            let hit = self.allow_list.iter().find(|a| a.contains(cidr.addr()) || cidr.contains(a.addr()));
            if let Some(net) = hit {
                return Mitigation::None { reason: format!("{cidr} overlaps the allow list ({net}): not acted on ({})", act.reason) };
            }
        }
        act.alert_id = alert.id;
        Mitigation::Taken(act)
    }

    /// The decision for `alert` (already numbered).
    pub fn decide(&self, alert: &Alert) -> Mitigation {
        let det = match &alert.rule {
            Some(r) if r.action.blocks() => "signature_drop",
            _ => alert.detector(),
        };
        let Some(p) = self.cfg.detectors.get(det) else {
            return Mitigation::None { reason: format!("no policy for detector {det}: alert only") };
        };
        let rate_limit = |why: String| match alert.dest_ip {
            Some(dst) => Mitigation::Taken(Action {
                kind: ActionKind::RateLimit { dst, pps: p.rate_limit_pps, burst: p.rate_limit_burst },
                ttl_s: p.ttl_s,
                reason: why,
                alert_id: alert.id,
            }),
            None => Mitigation::None { reason: format!("{why}, but the alert names no destination") },
        };
        match p.response {
            Response::Alert => Mitigation::None { reason: format!("policy for {det} is alert only") },
            Response::RateLimit => rate_limit(format!("policy for {det} rate-limits the destination")),
            Response::Block if alert.distributed => rate_limit(format!(
                "{det} comes from many sources (likely spoofed): rate-limiting the destination instead of blocking"
            )),
            Response::Block => match alert.offender {
                None => Mitigation::None { reason: format!("policy for {det} blocks, but the alert names no single source to block") },
                Some(src) => match self.allow.matching(src) {
                    Some(net) => Mitigation::None { reason: format!("{src} is on the allow list ({net}): not blocked") },
                    None => Mitigation::Taken(Action {
                        kind: ActionKind::Block { cidr: Cidr::host(src) },
                        ttl_s: p.ttl_s,
                        reason: match &alert.rule {
                            Some(r) => format!("{} rule {}:{} matched; policy for {det} blocks the source", r.action.name(), r.gid, alert.sig.sid),
                            None => format!("policy for {det} blocks the source"),
                        },
                        alert_id: alert.id,
                    }),
                },
            },
        }
    }
}
