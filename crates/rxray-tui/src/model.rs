//! The dashboard's model: one `Snapshot` of everything the panes show, plain data with no handle on
//! the kernel, the engine or the clock. Panes render only this, so tests render fixed snapshots.
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// How many samples a sparkline keeps (one per refresh: 5 minutes at the default 1 s).
pub const HISTORY: usize = 300;

/// Everything the dashboard shows at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Unix-epoch ns of the data.
    pub ts_ns: u64,
    /// Where the data comes from ("veth-b (tc)", "agent ...").
    pub source: String,
    /// The view filter (tcpdump syntax) the rows were selected with; None: every flow.
    pub filter: Option<String>,
    pub ifaces: Vec<IfaceRate>,
    pub health: Health,
    pub sources: Vec<Talker>,
    pub flows: Vec<FlowRow>,
    pub ports: Vec<PortRow>,
    pub protocols: Vec<ProtoRow>,
    pub drops: Drops,
    pub alerts: Alerts,
    pub http: Http,
}

/// Packets and bits per second on one interface, now and over the last minutes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IfaceRate {
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
    pub pps: f64,
    pub bps: f64,
    /// Oldest first, one sample per refresh, at most `HISTORY`.
    pub pps_history: Vec<u64>,
    pub bps_history: Vec<u64>,
}

/// What was seen, what was lost, and how complete each view is.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Health {
    /// Packets the ingress program counted (exact, kernel counters).
    pub packets: u64,
    pub bytes: u64,
    /// Live flows in the kernel's table.
    pub flows: u64,
    /// Packets counted but in no flow (the flow table was full).
    pub flow_insert_failed: u64,
    pub malformed: u64,
    /// Per-packet events delivered to the detectors, and those the ring had no room for (None: the
    /// detectors are off, no per-packet events).
    pub events: Option<u64>,
    pub events_lost: Option<u64>,
    /// Drop events the drops ring had no room for (None: drops not attached).
    pub drop_events_lost: Option<u64>,
    /// HTTP records the ring had no room for (None: HTTP off).
    pub http_records_lost: Option<u64>,
}

impl Health {
    /// Share of counted packets that are in the flow table (flows, sources, ports are exact for those).
    pub fn flow_completeness(&self) -> f64 {
        ratio(self.packets.saturating_sub(self.flow_insert_failed), self.packets)
    }

    /// Share of per-packet events the detectors saw (None when they are off).
    pub fn event_completeness(&self) -> Option<f64> {
        let (seen, lost) = (self.events?, self.events_lost.unwrap_or(0));
        Some(ratio(seen, seen + lost))
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// One source address and what it sent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Talker {
    pub addr: Option<IpAddr>,
    pub packets: u64,
    pub bytes: u64,
    pub pps: f64,
    pub bps: f64,
    pub flows: u64,
}

/// One flow (one direction on one interface).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlowRow {
    pub iface: String,
    /// Protocol as a filter spells it ("tcp", "udp", "icmp", "47").
    pub proto: String,
    pub src: Option<IpAddr>,
    pub sport: u16,
    pub dst: Option<IpAddr>,
    pub dport: u16,
    /// The fragments bucket (later fragments whose first was not seen).
    pub fragments: bool,
    pub packets: u64,
    pub bytes: u64,
    pub pps: f64,
    pub bps: f64,
}

impl FlowRow {
    /// "198.18.0.1:20000" ("[2001:2::1]:80" for IPv6; the bare address without ports).
    pub fn src_text(&self) -> String {
        endpoint(self.src, self.sport, self.fragments || (self.sport == 0 && self.dport == 0))
    }

    pub fn dst_text(&self) -> String {
        endpoint(self.dst, self.dport, self.fragments || (self.sport == 0 && self.dport == 0))
    }
}

/// An address and port as people write them.
pub fn endpoint(a: Option<IpAddr>, port: u16, bare: bool) -> String {
    match (a, bare) {
        (None, _) => "?".into(),
        (Some(a), true) => a.to_string(),
        (Some(IpAddr::V6(a)), false) => format!("[{a}]:{port}"),
        (Some(a), false) => format!("{a}:{port}"),
    }
}

/// One destination port.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortRow {
    pub proto: String,
    pub port: u16,
    pub packets: u64,
    pub bytes: u64,
    pub pps: f64,
    pub bps: f64,
    pub flows: u64,
}

/// One protocol class.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProtoRow {
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
}

/// Kernel drops by reason (tp_btf/kfree_skb on the watched interfaces).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Drops {
    /// False: the drop tracepoint is not attached (the pane says why).
    pub on: bool,
    pub note: Option<String>,
    /// Reason name and count, most first.
    pub reasons: Vec<(String, u64)>,
}

/// Recent alerts, newest first, with what was (or would be) done about each.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Alerts {
    pub on: bool,
    pub note: Option<String>,
    pub total: u64,
    pub recent: Vec<AlertRow>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    pub ts_ns: u64,
    pub detector: String,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub msg: String,
    /// The firewall action: "block 198.18.0.66/32 300s", "would block ...", "none: reason".
    pub action: String,
}

/// Top HTTP endpoints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Http {
    pub on: bool,
    pub note: Option<String>,
    pub requests: u64,
    pub endpoints: Vec<EndpointRow>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointRow {
    pub method: String,
    pub template: String,
    pub requests: u64,
    /// Responses with a 5xx status, and requests never answered, over requests.
    pub error_rate: f64,
    pub p95_ms: Option<f64>,
}

/// The panes a feed fills from outside the flow table (drops, alerts, HTTP): what a running agent
/// sends a joined `top` every refresh.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Panes {
    pub drops: Drops,
    pub alerts: Alerts,
    pub http: Http,
}

/// What the lists are ordered by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    Bytes,
    Packets,
    Rate,
}

impl SortKey {
    pub fn next(self) -> Self {
        match self {
            SortKey::Bytes => SortKey::Packets,
            SortKey::Packets => SortKey::Rate,
            SortKey::Rate => SortKey::Bytes,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Bytes => "bytes",
            SortKey::Packets => "packets",
            SortKey::Rate => "rate",
        }
    }
}

/// The detail of one address: its `investigate` timeline from the store, or its live flows and alerts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Detail {
    pub addr: Option<IpAddr>,
    /// "store" (the investigate timeline) or "live".
    pub origin: String,
    pub lines: Vec<String>,
}
