//! Alerts: what a detector found, shaped as a Suricata EVE `alert` record (so EVE tooling reads
//! them) with an `rxray` object for the evidence and the mitigation; plus duplicate suppression.
//!
//! Field names and formats follow Suricata's eve.json: `timestamp` like `2026-11-29T08:00:00.123456+0000`,
//! `proto` as a name (`TCP`, `UDP`, `ICMP`, `IPv6-ICMP`), `alert.action` `allowed` or `blocked`.
use crate::detect::policy::Mitigation;
use crate::detect::state::BoundedMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::net::IpAddr;

/// The generator id of rxray's detectors, apart from rule-based signatures (gid 1) so their
/// signature ids never collide with a ruleset's.
pub const GID: u32 = 9000;

/// What a detector reports under: Suricata's `alert` sub-object, fixed per detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    pub detector: &'static str,
    pub sid: u32,
    pub rev: u32,
    pub msg: &'static str,
    /// A Suricata classtype description.
    pub category: &'static str,
    /// 1 (high) to 3 (low), as Suricata.
    pub severity: u8,
}

/// One finding. Built by a detector; `Detectors` numbers it, applies suppression and the policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// Sequence number from `Detectors` (0 until numbered); `Action::alert_id` refers to it.
    pub id: u64,
    /// Event time the condition was met, ns since the epoch.
    pub ts_ns: u64,
    pub sig: Signature,
    pub iface: Option<String>,
    pub src_ip: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dest_ip: Option<IpAddr>,
    pub dest_port: Option<u16>,
    pub proto: Option<u8>,
    /// The address the alert is about, the key of duplicate suppression: the source for
    /// per-source detectors, the destination for per-destination ones.
    pub subject: IpAddr,
    /// Sub-key of suppression for detectors with several independent findings per subject
    /// (the metric of a baseline alert, the list of a threat-list alert); 0 otherwise.
    pub topic: u64,
    /// The traffic comes from many (probably spoofed) sources: blocking `src_ip` would not help.
    pub distributed: bool,
    /// The one address a block would target (a scanner, a flood's dominant source, a listed
    /// source); `None` when blocking any single source would be wrong.
    pub offender: Option<IpAddr>,
    /// The numbers behind the decision (rates, counts, thresholds, baseline, score, top talkers).
    pub evidence: Map<String, Value>,
    /// Repeats of this (subject, detector) suppressed since the previous alert was emitted.
    pub suppressed: u64,
    pub mitigation: Option<Mitigation>,
    /// The flight recorder's pcap for this alert, when one was written (set by the output side).
    pub pcap: Option<String>,
    /// The mitigation was carried out in the kernel (set by whoever enforced it). Only then does the
    /// EVE record say `"action":"blocked"`; offline, or live without `--enforce`, it says `allowed`
    /// and the policy's decision stays in `rxray.mitigation`.
    pub enforced: bool,
    /// What a rule-based signature alert adds to the record (None for the detectors).
    pub rule: Option<Box<RuleInfo>>,
    /// Offline: the packet's ordinal in the capture (1-based, Suricata's `pcap_cnt`).
    pub pcap_cnt: Option<u64>,
}

/// The EVE fields of a signature's alert (Suricata's eve-json-format: `alert.gid`,
/// `alert.action`, `app_proto`, `direction`, `flow`, `payload_printable`).
#[derive(Clone, Debug, PartialEq)]
pub struct RuleInfo {
    pub gid: u32,
    /// The rule's action (or a rate filter's).
    pub action: crate::signatures::RuleAction,
    pub app_proto: Option<&'static str>,
    /// true: `to_server`; false: `to_client`.
    pub to_server: Option<bool>,
    pub flow: Option<EveFlow>,
    /// The packet's payload (or the HTTP message), for `payload_printable`, when asked for.
    pub payload: Option<Vec<u8>>,
    /// A `tls` rule's handshake facts as Suricata's top-level `tls` object (output-json-tls.c,
    /// JsonTlsLogJSONExtended: `subject`, `issuerdn`, `sni`, `version`, `ja4`).
    pub tls: Option<serde_json::Value>,
}

/// Suricata's alert `flow` object: the flow's counters up to this packet and its endpoints as the
/// client opened it.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct EveFlow {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    /// The flow's first packet, as `timestamp`.
    #[serde(serialize_with = "eve_ts")]
    #[schemars(with = "String")]
    pub start: u64,
    pub src_ip: IpAddr,
    pub dest_ip: IpAddr,
    pub src_port: u16,
    pub dest_port: u16,
}

fn eve_ts<S: Serializer>(ns: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&eve_timestamp(*ns))
}

/// Suricata's `payload_printable`: printable ASCII, `\n` and `\r` as they are, every other byte `.`
/// (util-print.c, PrintStringsToBuffer).
pub fn printable(b: &[u8]) -> String {
    b.iter().map(|&c| if c.is_ascii_graphic() || c == b' ' || c == b'\n' || c == b'\r' { c as char } else { '.' }).collect()
}

impl Alert {
    pub fn new(sig: Signature, ts_ns: u64, subject: IpAddr) -> Alert {
        Alert {
            id: 0,
            ts_ns,
            sig,
            iface: None,
            src_ip: None,
            src_port: None,
            dest_ip: None,
            dest_port: None,
            proto: None,
            subject,
            topic: 0,
            distributed: false,
            offender: None,
            evidence: Map::new(),
            suppressed: 0,
            mitigation: None,
            pcap: None,
            enforced: false,
            rule: None,
            pcap_cnt: None,
        }
    }

    pub fn detector(&self) -> &'static str {
        self.sig.detector
    }

    /// Adds one evidence field (builder style).
    pub fn with(mut self, k: &str, v: impl Into<Value>) -> Alert {
        self.evidence.insert(k.to_string(), v.into());
        self
    }

    /// Suricata-style flow id: a hash of the 5-tuple that is the same in both directions and in
    /// every run (FNV-1a over the ordered endpoints), kept below 2^53 so JSON readers keep it exact.
    pub fn flow_id(&self) -> u64 {
        flow_id(self.proto.unwrap_or(0), self.src_ip, self.src_port.unwrap_or(0), self.dest_ip, self.dest_port.unwrap_or(0))
    }

    /// The EVE record as a JSON value (keys sorted; serialise the `Alert` itself for EVE's order).
    pub fn to_eve(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The EVE `alert` record as rxray writes it (`rxray alerts`, `analyze --alerts`, the agent's
/// EVE output): Suricata's fields in Suricata's order (timestamp, flow_id, in_iface, event_type,
/// addresses, proto, alert, then a signature's app_proto, direction, flow, payload and tls), then
/// `rxray` with the evidence. Absent addresses, ports and fields are left out, not null.
#[derive(Serialize, schemars::JsonSchema)]
pub struct EveRecord<'a> {
    /// Event time, as Suricata writes it (`2026-11-29T08:00:00.123456+0000`).
    pub timestamp: String,
    /// A hash of the 5-tuple, the same both ways and in every run, below 2^53.
    pub flow_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_iface: Option<&'a str>,
    /// Offline: the packet's ordinal in the capture (from 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap_cnt: Option<u64>,
    /// Always "alert".
    pub event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    /// The protocol's name as Suricata spells it (`TCP`, `UDP`, `ICMP`, `IPv6-ICMP`), else its number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    pub alert: EveAlert<'a>,
    /// A signature's: the application protocol of its flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<&'static str>,
    /// A signature's: `to_server` or `to_client`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<&'static str>,
    /// A signature's: its flow's counters up to this packet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<&'a EveFlow>,
    /// With `--payload-printable`: the payload, non-printable bytes as '.'.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_printable: Option<String>,
    /// A `tls` rule's: the handshake's facts, as Suricata's top-level `tls` object (`subject`,
    /// `issuerdn`, `sni`, `version`, `ja4`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<&'a Value>,
    pub rxray: EveRxray<'a>,
}

/// Suricata's `alert` sub-object.
#[derive(Serialize, schemars::JsonSchema)]
pub struct EveAlert<'a> {
    /// `blocked` for a reject rule, or when a firewall really took the action; `allowed` otherwise.
    pub action: &'static str,
    /// 1 for rule-based signatures (or the rule's own), 9000 for rxray's detectors.
    pub gid: u32,
    pub signature_id: u32,
    pub rev: u32,
    pub signature: &'a str,
    pub category: &'a str,
    /// 1 (high) to 3 (low).
    pub severity: u8,
}

/// rxray's own sub-object: the detector, what the alert is about, the evidence and the mitigation.
#[derive(Serialize, schemars::JsonSchema)]
pub struct EveRxray<'a> {
    pub id: u64,
    pub detector: &'a str,
    pub subject: IpAddr,
    pub distributed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offender: Option<IpAddr>,
    /// The numbers behind the decision (rates, counts, thresholds, baseline, score, top talkers;
    /// `enforced`: what the firewall did), per detector.
    pub evidence: &'a Map<String, Value>,
    pub suppressed: u64,
    pub mitigation: &'a Option<Mitigation>,
    /// The flight recorder's pcapng for this alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap: &'a Option<String>,
}

impl Alert {
    /// The EVE record of this alert (what serializing the `Alert` writes).
    pub fn eve(&self) -> EveRecord<'_> {
        // output-json-alert.c: "blocked" for a reject rule in any mode (Suricata sends its
        // reset), for a drop only when the packet was dropped (rxray: the block is in place).
        let reject = self.rule.as_ref().is_some_and(|r| r.action == crate::signatures::RuleAction::Reject);
        let blocked = reject || (self.enforced && matches!(&self.mitigation, Some(Mitigation::Taken(a)) if a.is_block()));
        let rule = self.rule.as_deref();
        EveRecord {
            timestamp: eve_timestamp(self.ts_ns),
            flow_id: self.flow_id(),
            in_iface: self.iface.as_deref(),
            pcap_cnt: self.pcap_cnt,
            event_type: "alert",
            src_ip: self.src_ip,
            src_port: self.src_port,
            dest_ip: self.dest_ip,
            dest_port: self.dest_port,
            proto: self.proto.map(|p| rxray_wire::ipproto::name_or_number(p, rxray_wire::ipproto::Spelling::Eve)),
            alert: EveAlert {
                action: if blocked { "blocked" } else { "allowed" },
                gid: match rule {
                    Some(r) => r.gid,
                    None if self.sig.detector == crate::inspect::SIGNATURE => 1,
                    None => GID,
                },
                signature_id: self.sig.sid,
                rev: self.sig.rev,
                signature: self.sig.msg,
                category: self.sig.category,
                severity: self.sig.severity,
            },
            app_proto: rule.and_then(|r| r.app_proto),
            direction: rule.and_then(|r| r.to_server).map(|ts| if ts { "to_server" } else { "to_client" }),
            flow: rule.and_then(|r| r.flow.as_ref()),
            payload_printable: rule.and_then(|r| r.payload.as_deref()).map(printable),
            tls: rule.and_then(|r| r.tls.as_ref()),
            rxray: EveRxray {
                id: self.id,
                detector: self.sig.detector,
                subject: self.subject,
                distributed: self.distributed,
                offender: self.offender,
                evidence: &self.evidence,
                suppressed: self.suppressed,
                mitigation: &self.mitigation,
                pcap: &self.pcap,
            },
        }
    }
}

/// An alert serializes as its EVE record (`Alert::eve`).
impl Serialize for Alert {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.eve().serialize(s)
    }
}

/// See `Alert::flow_id`.
pub fn flow_id(proto: u8, a: Option<IpAddr>, ap: u16, b: Option<IpAddr>, bp: u16) -> u64 {
    let ep = |ip: Option<IpAddr>, port: u16| {
        let mut v = ip.map(|i| rxray_wire::dissect::addr_bytes(i).to_vec()).unwrap_or_default();
        v.extend_from_slice(&port.to_be_bytes());
        v
    };
    let (x, y) = (ep(a, ap), ep(b, bp));
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in std::iter::once(proto).chain(lo).chain(hi) {
        h ^= byte as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h & ((1 << 53) - 1)
}

/// EVE times (one definition, in `crate::time`).
pub use crate::time::eve_timestamp;

/// Duplicate suppression: per (subject, detector, topic), one alert per window; the repeats in between
/// are counted and reported on the next alert that gets through (`Alert::suppressed`).
#[derive(Debug)]
pub struct Suppressor {
    window_ns: u64,
    last: BoundedMap<(IpAddr, &'static str, u64), (u64, u64)>,
    /// Repeats suppressed since start.
    pub total_suppressed: u64,
}

impl Suppressor {
    pub fn new(window_ns: u64, cap: usize) -> Suppressor {
        Suppressor { window_ns, last: BoundedMap::new(cap), total_suppressed: 0 }
    }

    /// Whether `a` goes out; if it does, `a.suppressed` is set to the repeats held back before it.
    /// When the table is full the alert goes out (losing a duplicate count beats losing an alert).
    pub fn admit(&mut self, a: &mut Alert) -> bool {
        let w = self.window_ns;
        let Some(e) = self.last.touch(&(a.subject, a.sig.detector, a.topic), a.ts_ns, || (0, 0)) else {
            return true;
        };
        if e.0 != 0 && a.ts_ns.saturating_sub(e.0) < w {
            e.1 += 1;
            self.total_suppressed += 1;
            return false;
        }
        a.suppressed = e.1;
        *e = (a.ts_ns.max(1), 0);
        true
    }

    /// Forgets keys quiet for two windows.
    pub fn expire(&mut self, now_ns: u64) {
        self.last.expire(now_ns, 2 * self.window_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_suricata_shaped() {
        assert_eq!(eve_timestamp(0), "1970-01-01T00:00:00.000000+0000");
        // 2024-02-29T12:34:56.789012 UTC (a leap day).
        assert_eq!(eve_timestamp(1_709_210_096_789_012_345), "2024-02-29T12:34:56.789012+0000");
    }

    #[test]
    fn flow_id_is_direction_independent() {
        let a: IpAddr = "198.18.0.1".parse().unwrap();
        let b: IpAddr = "198.18.0.2".parse().unwrap();
        assert_eq!(flow_id(6, Some(a), 1234, Some(b), 80), flow_id(6, Some(b), 80, Some(a), 1234));
        assert_ne!(flow_id(6, Some(a), 1234, Some(b), 80), flow_id(17, Some(a), 1234, Some(b), 80));
        assert!(flow_id(6, Some(a), 1, Some(b), 2) < 1 << 53);
    }

    fn alert(subject: [u8; 4], ts: u64) -> Alert {
        let sig = Signature { detector: "t", sid: 1, rev: 1, msg: "m", category: "c", severity: 3 };
        Alert::new(sig, ts, IpAddr::from(subject))
    }

    #[test]
    fn suppressor_counts_repeats_and_lets_alerts_through_when_full() {
        let mut s = Suppressor::new(10, 1);
        assert!(s.admit(&mut alert([1, 1, 1, 1], 100)));
        assert!(!s.admit(&mut alert([1, 1, 1, 1], 105)));
        assert!(!s.admit(&mut alert([1, 1, 1, 1], 109)));
        // The table (capacity 1) is full: another subject is not suppressed, and not remembered.
        assert!(s.admit(&mut alert([2, 2, 2, 2], 106)));
        assert!(s.admit(&mut alert([2, 2, 2, 2], 107)));
        let mut a = alert([1, 1, 1, 1], 110);
        assert!(s.admit(&mut a));
        assert_eq!((a.suppressed, s.total_suppressed), (2, 2));
    }
}
