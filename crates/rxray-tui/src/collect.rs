//! The collector: turns what the engine and the kernel say (flow tables, counters, drops, alerts,
//! HTTP snapshots) into the dashboard's `Snapshot`, keeping rates, sparkline history and the view filter.
use crate::model::{
    AlertRow, Detail, EndpointRow, FlowRow, Health, IfaceRate, Panes, PortRow, ProtoRow, Snapshot, SortKey, Talker, HISTORY,
};
use rxray_engine::alert::Alert;
use rxray_engine::detect::policy::{ActionKind, Mitigation};
use rxray_engine::filter::{Filter, FilterError};
use rxray_engine::flows::{FlowKey, FlowRecord, RateTracker};
use rxray_engine::http::HttpSnapshot;
use rxray_engine::source::FlowSnapshot;
use rxray_wire::event::{Eth, Ip, Packet, Tcp, Udp, Vlan};
use rxray_wire::ipproto::{self, Spelling};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;

/// Rows each list keeps (after sorting): more than any screen shows.
const ROWS: usize = 500;
const TCP: u8 = 6;
const UDP: u8 = 17;
/// Alerts kept for the pane and the detail view.
const RECENT_ALERTS: usize = 200;

/// The kernel's counters for the health pane, as the feed reads them (`flows` is the collector's
/// count of the table and is ignored here).
pub type Counters = Health;

struct IfaceHistory {
    prev: Option<(u64, u64, u64)>,
    pps: VecDeque<u64>,
    bps: VecDeque<u64>,
    rate: (f64, f64),
    count: (u64, u64),
}

/// Keeps what the panes need between refreshes.
pub struct Collector {
    source: String,
    rates: RateTracker,
    filter: Option<Filter>,
    ts_ns: u64,
    flows: Vec<FlowRecord>,
    protocols: Vec<(String, u64, u64)>,
    ifaces: Vec<(String, IfaceHistory)>,
    counters: Counters,
    drops_on: bool,
    drops_note: Option<String>,
    drops: BTreeMap<String, u64>,
    alerts_on: bool,
    alerts_note: Option<String>,
    alerts_total: u64,
    alerts: VecDeque<AlertRow>,
    http_on: bool,
    http_note: Option<String>,
    /// Requests over every endpoint, and the top endpoints (most requests first).
    http_requests: u64,
    http: Vec<EndpointRow>,
}

impl Collector {
    pub fn new(source: impl Into<String>) -> Self {
        Collector {
            source: source.into(),
            rates: RateTracker::default(),
            filter: None,
            ts_ns: 0,
            flows: Vec::new(),
            protocols: Vec::new(),
            ifaces: Vec::new(),
            counters: Counters::default(),
            drops_on: false,
            drops_note: None,
            drops: BTreeMap::new(),
            alerts_on: false,
            alerts_note: None,
            alerts_total: 0,
            alerts: VecDeque::new(),
            http_on: false,
            http_note: None,
            http_requests: 0,
            http: Vec::new(),
        }
    }

    /// Which optional parts run; a note says why one does not ("no kfree_skb tracepoint").
    pub fn set_parts(&mut self, drops: Result<(), String>, alerts: Result<(), String>, http: Result<(), String>) {
        (self.drops_on, self.drops_note) = part(drops);
        (self.alerts_on, self.alerts_note) = part(alerts);
        (self.http_on, self.http_note) = part(http);
    }

    /// Sets (Some) or clears (None, or blank text) the view filter; a filter that does not parse
    /// leaves the current one in place.
    pub fn set_filter(&mut self, text: Option<&str>) -> Result<(), FilterError> {
        self.filter = match text.map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => Some(Filter::parse(t)?),
        };
        Ok(())
    }

    pub fn filter_text(&self) -> Option<&str> {
        self.filter.as_ref().map(|f| f.text.as_str())
    }

    /// A new flow table (rates since the previous one), with the kernel's counters.
    pub fn on_flows(&mut self, mut snap: FlowSnapshot, counters: Counters) {
        self.rates.update(&mut snap.flows, snap.ts_ns);
        self.ts_ns = snap.ts_ns;
        self.counters = counters;
        self.protocols = snap.protocols.iter().map(|(n, c)| (n.to_string(), c.packets, c.bytes)).collect();
        for (_, name, c) in &snap.interfaces {
            let i = match self.ifaces.iter().position(|(n, _)| n == name) {
                Some(i) => i,
                None => {
                    let h = IfaceHistory { prev: None, pps: VecDeque::new(), bps: VecDeque::new(), rate: (0.0, 0.0), count: (0, 0) };
                    self.ifaces.push((name.clone(), h));
                    self.ifaces.len() - 1
                }
            };
            let h = &mut self.ifaces[i].1;
            if let Some((pp, pb, pts)) = h.prev {
                let dt = snap.ts_ns.saturating_sub(pts) as f64 / 1e9;
                if dt > 0.0 {
                    h.rate = (c.packets.saturating_sub(pp) as f64 / dt, c.bytes.saturating_sub(pb) as f64 * 8.0 / dt);
                    push(&mut h.pps, h.rate.0 as u64);
                    push(&mut h.bps, h.rate.1 as u64);
                }
            }
            h.prev = Some((c.packets, c.bytes, snap.ts_ns));
            h.count = (c.packets, c.bytes);
        }
        self.flows = snap.flows;
    }

    /// The kernel's per-protocol counters by name, when they come from elsewhere than a
    /// `FlowSnapshot` (an agent's JSON); they replace those of the last table.
    pub fn set_protocols(&mut self, protocols: Vec<(String, u64, u64)>) {
        self.protocols = protocols;
    }

    /// The kernel's drop counts by reason name, now (they replace the previous ones).
    pub fn set_drops(&mut self, by_reason: impl IntoIterator<Item = (String, u64)>) {
        self.drops.clear();
        for (r, n) in by_reason {
            if n > 0 {
                *self.drops.entry(r).or_default() += n;
            }
        }
    }

    /// An alert, with its mitigation as the detectors decided it (`enforced`: carried out).
    pub fn on_alert(&mut self, a: &Alert, enforced: bool) {
        self.alerts_total += 1;
        self.alerts.push_front(alert_row(a, enforced));
        self.alerts.truncate(RECENT_ALERTS);
    }

    /// The HTTP view's latest snapshot.
    pub fn on_http(&mut self, s: HttpSnapshot) {
        (self.http_requests, self.http) = endpoint_rows(&s);
    }

    /// The drops, alerts and HTTP panes now (what an agent sends a joined `top`).
    pub fn panes(&self) -> Panes {
        let mut drops: Vec<(String, u64)> = self.drops.iter().map(|(k, v)| (k.clone(), *v)).collect();
        drops.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Panes {
            drops: crate::model::Drops { on: self.drops_on, note: self.drops_note.clone(), reasons: drops },
            alerts: crate::model::Alerts {
                on: self.alerts_on,
                note: self.alerts_note.clone(),
                total: self.alerts_total,
                recent: self.alerts.iter().take(50).cloned().collect(),
            },
            http: crate::model::Http { on: self.http_on, note: self.http_note.clone(), requests: self.http_requests, endpoints: self.http.clone() },
        }
    }

    /// The drops, alerts and HTTP panes as a running agent sent them (they replace these panes'
    /// own; the detail view's alerts are the ones sent).
    pub fn set_panes(&mut self, p: Panes) {
        (self.drops_on, self.drops_note) = (p.drops.on, p.drops.note);
        self.set_drops(p.drops.reasons);
        (self.alerts_on, self.alerts_note, self.alerts_total) = (p.alerts.on, p.alerts.note, p.alerts.total);
        self.alerts = p.alerts.recent.into();
        (self.http_on, self.http_note, self.http_requests, self.http) = (p.http.on, p.http.note, p.http.requests, p.http.endpoints);
    }
}

/// An alert as the alerts pane shows it, with its firewall action (`enforced`: carried out;
/// otherwise "would ...").
pub fn alert_row(a: &Alert, enforced: bool) -> AlertRow {
    let action = match &a.mitigation {
        None => String::new(),
        Some(Mitigation::None { reason }) => format!("none: {reason}"),
        Some(Mitigation::Taken(act)) => {
            let what = match &act.kind {
                ActionKind::Block { cidr } => format!("block {cidr}"),
                ActionKind::RateLimit { dst, pps, .. } => format!("limit {dst} to {pps}/s"),
                ActionKind::LimitSrc { cidr, rate, .. } => format!("limit {cidr} to {rate}"),
            };
            format!("{}{what} {}s", if enforced { "" } else { "would " }, act.ttl_s)
        }
    };
    AlertRow { ts_ns: a.ts_ns, detector: a.sig.detector.to_string(), src: a.src_ip, dst: a.dest_ip, msg: a.sig.msg.to_string(), action }
}

/// An HTTP snapshot's requests and top endpoints (most requests first) with their p95 latency
/// and error rate (5xx and unanswered over requests).
pub fn endpoint_rows(s: &HttpSnapshot) -> (u64, Vec<EndpointRow>) {
    let (mut requests, mut rows) = (0, Vec::new());
    for e in &s.endpoints {
        requests += e.requests;
        let errors: u64 = e.statuses.iter().filter(|(c, _)| **c >= 500).map(|(_, n)| n).sum::<u64>() + e.unanswered;
        rows.push(EndpointRow {
            method: e.method.clone(),
            template: e.template.clone(),
            requests: e.requests,
            error_rate: if e.requests == 0 { 0.0 } else { errors as f64 / e.requests as f64 },
            p95_ms: e.latency_ms.as_ref().map(|l| l.p95),
        });
    }
    rows.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| (&a.method, &a.template).cmp(&(&b.method, &b.template))));
    rows.truncate(ROWS);
    (requests, rows)
}

impl Collector {

    fn selected(&self) -> impl Iterator<Item = &FlowRecord> {
        self.flows.iter().filter(|r| self.filter.as_ref().is_none_or(|f| f.matches(&flow_packet(r))))
    }

    /// The dashboard now, its lists ordered by `by` (largest first; ties in address order). Only
    /// the top `ROWS` of each list are built, so the cost is one pass over the flow table.
    pub fn snapshot(&self, by: SortKey) -> Snapshot {
        let mut sel: Vec<&FlowRecord> = Vec::with_capacity(self.flows.len());
        let mut sources: HashMap<IpAddr, Sum> = HashMap::new();
        let mut ports: HashMap<(u8, u16), Sum> = HashMap::new();
        let mut protos: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for r in self.selected() {
            let k = &r.key;
            sources.entry(k.src).or_default().add(r);
            if matches!(k.proto, TCP | UDP) && !k.fragments {
                ports.entry((k.proto, k.dport)).or_default().add(r);
            }
            if self.filter.is_some() {
                let e = protos.entry(proto_name(k.proto)).or_default();
                e.0 += r.packets;
                e.1 += r.bytes;
            }
            sel.push(r);
        }
        let m = |p: u64, b: u64, bps: f64| match by {
            SortKey::Bytes => b as f64,
            SortKey::Packets => p as f64,
            SortKey::Rate => bps,
        };
        let desc = |a: f64, b: f64| b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal);
        let flows: Vec<FlowRow> = top_k(sel, ROWS, |a, b| {
            desc(m(a.packets, a.bytes, a.bps), m(b.packets, b.bytes, b.bps)).then_with(|| flow_order(&a.key, &b.key))
        })
        .into_iter()
        .map(|r| FlowRow {
            iface: r.iface.clone(),
            proto: proto_name(r.key.proto),
            src: Some(r.key.src),
            sport: r.key.sport,
            dst: Some(r.key.dst),
            dport: r.key.dport,
            fragments: r.key.fragments,
            packets: r.packets,
            bytes: r.bytes,
            pps: r.pps,
            bps: r.bps,
        })
        .collect();
        let by_sum = |a: &Sum, b: &Sum| desc(m(a.packets, a.bytes, a.bps), m(b.packets, b.bytes, b.bps));
        let sources: Vec<Talker> = top_k(sources.into_iter().collect(), ROWS, |a, b| by_sum(&a.1, &b.1).then_with(|| a.0.cmp(&b.0)))
            .into_iter()
            .map(|(addr, t)| Talker { addr: Some(addr), packets: t.packets, bytes: t.bytes, pps: t.pps, bps: t.bps, flows: t.flows })
            .collect();
        let ports: Vec<PortRow> = top_k(ports.into_iter().collect(), ROWS, |a, b| by_sum(&a.1, &b.1).then_with(|| a.0.cmp(&b.0)))
            .into_iter()
            .map(|((proto, port), t)| PortRow {
                proto: proto_name(proto),
                port,
                packets: t.packets,
                bytes: t.bytes,
                pps: t.pps,
                bps: t.bps,
                flows: t.flows,
            })
            .collect();
        let protocols: Vec<ProtoRow> = if self.filter.is_some() {
            protos.into_iter().map(|(name, (packets, bytes))| ProtoRow { name, packets, bytes }).collect()
        } else {
            self.protocols.iter().map(|(n, p, b)| ProtoRow { name: n.clone(), packets: *p, bytes: *b }).collect()
        };
        let mut protocols = protocols;
        protocols.retain(|p| p.packets > 0);
        protocols.sort_by(|a, b| b.packets.cmp(&a.packets).then_with(|| a.name.cmp(&b.name)));
        let Panes { drops, alerts, http } = self.panes();
        Snapshot {
            ts_ns: self.ts_ns,
            source: self.source.clone(),
            filter: self.filter_text().map(str::to_string),
            ifaces: self
                .ifaces
                .iter()
                .map(|(name, h)| IfaceRate {
                    name: name.clone(),
                    packets: h.count.0,
                    bytes: h.count.1,
                    pps: h.rate.0,
                    bps: h.rate.1,
                    pps_history: h.pps.iter().copied().collect(),
                    bps_history: h.bps.iter().copied().collect(),
                })
                .collect(),
            health: Health { flows: self.flows.len() as u64, ..self.counters },
            sources,
            flows,
            ports,
            protocols,
            drops,
            alerts,
            http,
        }
    }

    /// One address's live flows (from or to it) and alerts (about it), for the detail view.
    pub fn detail_live(&self, addr: IpAddr) -> Detail {
        let mut lines = Vec::new();
        let mut flows: Vec<&FlowRecord> = self.flows.iter().filter(|r| r.key.src == addr || r.key.dst == addr).collect();
        flows.sort_by(|a, b| b.bytes.cmp(&a.bytes));
        lines.push(format!("{} live flows from or to {addr}", flows.len()));
        for r in flows.iter().take(100) {
            let k = &r.key;
            let bare = k.fragments || (k.sport == 0 && k.dport == 0);
            lines.push(format!(
                "  {} {} {} > {}: {} packets, {} bytes",
                r.iface,
                proto_name(k.proto),
                crate::model::endpoint(Some(k.src), k.sport, bare),
                crate::model::endpoint(Some(k.dst), k.dport, bare),
                r.packets,
                r.bytes
            ));
        }
        let alerts: Vec<&AlertRow> = self.alerts.iter().filter(|a| a.src == Some(addr) || a.dst == Some(addr)).collect();
        lines.push(String::new());
        lines.push(format!("{} recent alerts about {addr}", alerts.len()));
        for a in alerts {
            lines.push(format!("  {} {}: {} [{}]", crate::view::clock(a.ts_ns), a.detector, a.msg, a.action));
        }
        Detail { addr: Some(addr), origin: "live".into(), lines }
    }
}

/// Packets, bytes and rates summed over flows.
#[derive(Default)]
struct Sum {
    packets: u64,
    bytes: u64,
    pps: f64,
    bps: f64,
    flows: u64,
}

impl Sum {
    fn add(&mut self, r: &FlowRecord) {
        self.packets += r.packets;
        self.bytes += r.bytes;
        self.pps += r.pps;
        self.bps += r.bps;
        self.flows += 1;
    }
}

/// The `k` first of `v` in `cmp` order, sorted (a selection, then a sort of those `k` only).
fn top_k<T>(mut v: Vec<T>, k: usize, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> Vec<T> {
    if k == 0 {
        return Vec::new();
    }
    if v.len() > k {
        v.select_nth_unstable_by(k - 1, &cmp);
        v.truncate(k);
    }
    v.sort_by(&cmp);
    v
}

/// Flows in address order: the tie-break that keeps equal rows in a stable place.
fn flow_order(a: &FlowKey, b: &FlowKey) -> std::cmp::Ordering {
    (a.src, a.sport, a.dst, a.dport, a.proto, a.ifindex, a.vlan, a.fragments)
        .cmp(&(b.src, b.sport, b.dst, b.dport, b.proto, b.ifindex, b.vlan, b.fragments))
}

fn part(r: Result<(), String>) -> (bool, Option<String>) {
    match r {
        Ok(()) => (true, None),
        Err(e) => (false, Some(e)),
    }
}

fn push(q: &mut VecDeque<u64>, v: u64) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back(v);
}

fn proto_name(p: u8) -> String {
    ipproto::name_or_number(p, Spelling::Filter)
}

/// A flow as one of its packets, for the view filter: addresses, protocol, ports, the TCP flags
/// seen, VLAN, the mean packet length. Tests on anything else see zeros.
pub fn flow_packet(r: &FlowRecord) -> Packet {
    let k = &r.key;
    let mut p = rxray_wire::dissect::empty_packet();
    let v6 = k.src.is_ipv6();
    let ethertype = if v6 { 0x86dd } else { 0x0800 };
    p.eth = Some(Eth { src: [0; 6], dst: [0; 6], ethertype });
    if k.vlan != 0 {
        p.vlans.push(Vlan { tpid: 0x8100, vid: k.vlan, pcp: 0, dei: false });
    }
    p.len = r.bytes.checked_div(r.packets).unwrap_or(0) as u32;
    p.ip = Some(Ip {
        version: if v6 { 6 } else { 4 },
        src: k.src,
        dst: k.dst,
        ttl: 0,
        dscp: 0,
        ecn: 0,
        id: 0,
        df: false,
        mf: false,
        frag_offset: if k.fragments { 8 } else { 0 },
        fragment: k.fragments,
        proto: k.proto,
        hdr_len: 0,
        total_len: 0,
        options: false,
        flow_label: 0,
        ext_headers: Vec::new(),
    });
    if !k.fragments {
        match k.proto {
            TCP => {
                p.tcp = Some(Tcp {
                    sport: k.sport,
                    dport: k.dport,
                    seq: 0,
                    ack: 0,
                    flags: r.tcp_flags,
                    window: 0,
                    hdr_len: 20,
                    mss: None,
                    wscale: None,
                    sack_ok: false,
                    sack: false,
                    ts: None,
                })
            }
            UDP => p.udp = Some(Udp { sport: k.sport, dport: k.dport, len: 0 }),
            _ => {}
        }
    }
    p
}
