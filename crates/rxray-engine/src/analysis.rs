//! Offline analysis of a packet stream: totals, malformed categories, protocol mix, top talkers,
//! top ports, the one-direction flow table (as the kernel keeps it) and the conversation tables.
//!
//! The flow table follows the XDP program's rules (rxray_account): only well-formed IP packets,
//! keyed by ifindex, innermost VLAN id, protocol, addresses and ports; later fragments join the
//! flow of their first fragment, or the fragments bucket when it was not seen. Unlike the kernel's
//! 4096-entry LRU, the fragment table here is unbounded (a capture is finite), and flows of
//! different interfaces (by name) are kept apart even when their ifindex is the same (0 offline).
use crate::conv::{ip_of, Conversation, Conversations};
use rxray_wire::dissect::Summary;
use crate::event::Packet;
use crate::flows::{FlowKey, FlowRecord};
use foldhash::fast::FixedState;
use std::hash::BuildHasher;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

type FastMap<K, V> = HashMap<K, V, FixedState>;

/// Protocol classes, as the kernel's per-protocol counters name them (abi::PROTO_NAMES).
pub const PROTO_NAMES: [&str; 11] = [
    "ipv4_tcp", "ipv4_udp", "ipv4_icmp", "ipv4_other", "ipv6_tcp", "ipv6_udp", "ipv6_icmp", "ipv6_other", "arp",
    "other_l2", "malformed",
];

/// The kernel's proto_class: malformed first, then ARP, non-IP, then by IP version and protocol.
pub fn proto_class(p: &Packet) -> usize {
    if p.malformed.is_some() {
        return 10;
    }
    if p.arp.is_some() {
        return 8;
    }
    let Some(ip) = &p.ip else { return 9 };
    let base = if ip.version == 4 { 0 } else { 4 };
    base + match ip.proto {
        6 => 0,
        17 => 1,
        1 | 58 => 2,
        _ => 3,
    }
}

/// The kernel's size_bucket.
pub fn size_bucket(len: u32) -> usize {
    match len {
        0..=64 => 0,
        65..=128 => 1,
        129..=256 => 2,
        257..=512 => 3,
        513..=1024 => 4,
        1025..=1518 => 5,
        1519..=9018 => 6,
        _ => 7,
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Count {
    pub packets: u64,
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, bytes: u64) {
        self.packets += 1;
        self.bytes += bytes;
    }
}

/// A flow table key: compact, fixed size. `kind` 0: an ordinary packet (every table derives from
/// the flow at report time); 1: fragments (flow counters only, the rest counted as they came);
/// 2: the fragments bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    iface: u32,
    ifindex: u32,
    vlan: u16,
    proto: u8,
    ver: u8,
    kind: u8,
    sport: u16,
    dport: u16,
    src: [u8; 16],
    dst: [u8; 16],
}

/// Hashed as four words rather than field by field: fewer rounds of the hasher. (Equal keys hash
/// equally; the few bits dropped, of versions and kinds past 15, only make collisions possible.)
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u64((self.iface as u64) << 32 | self.ifindex as u64);
        h.write_u64(
            (self.vlan as u64) << 48
                | (self.proto as u64) << 40
                | (self.ver as u64 & 15) << 36
                | (self.kind as u64 & 15) << 32
                | (self.sport as u64) << 16
                | self.dport as u64,
        );
        h.write_u128(u128::from_ne_bytes(self.src));
        h.write_u128(u128::from_ne_bytes(self.dst));
    }
}

#[derive(Clone, Debug)]
struct Flow {
    key: Key,
    /// Packets by size bucket (overflow beyond u32 goes to `Analyzer::hist_spill`).
    hist: [u32; 8],
    bytes: u64,
    first_ns: u64,
    last_ns: u64,
    tcp_flags: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FragKey {
    iface: u32,
    ifindex: u32,
    id: u32,
    ver: u8,
    src: [u8; 16],
    dst: [u8; 16],
    proto: u8,
}

/// The default cap on the flow table (and on each side table): 262,144 flows. Measured, a flow
/// costs about 120 bytes while reading; the report adds the rows of one section at a time
/// (talkers, or one conversation table: [`Analyzer::stream`]), so the cap holds `analyze` near
/// 100 MB whatever the capture; `--max-flows` moves it. The README's `rxray analyze` section has the figures.
pub const DEFAULT_MAX_FLOWS: usize = 1 << 18;

/// What the cap folded away. These packets are in the totals and the protocol mix; they are in no
/// flow, talker, port or conversation row, but in this `other` row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Folded {
    /// Flows folded into `other` (a flow seen again after its fold starts a new row).
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Rows of the tables counted as packets came (talkers, ports and conversations of fragments
    /// and malformed packets, fragment attributions) that were folded or forgotten.
    pub side_rows: u64,
}

/// Accumulates everything `rxray analyze` reports, one packet at a time (no allocation per packet
/// once a flow has been seen). Ordinary packets touch one hash-table entry, their one-direction
/// flow; talkers, ports and conversations are derived from the flows at report time. Fragments
/// and malformed IP packets, whose counting rules differ, are counted as they come.
///
/// Memory is bounded: past `max_flows` flows, the half with the fewest bytes is folded into the
/// `other` row ([`Folded`]), and each side table is bounded the same way.
pub struct Analyzer {
    max_flows: usize,
    other: Folded,
    packets: u64,
    bytes: u64,
    first_ns: Option<u64>,
    last_ns: u64,
    malformed: [u64; 17],
    malformed_names: Vec<&'static str>,
    protos: [Count; 11],
    /// Interface names seen, in order; flows refer to them by index.
    ifaces: Vec<String>,
    index: crate::flow_index::FlowIndex,
    /// Flows in order of their first packet.
    flows: Vec<Flow>,
    hist_spill: FastMap<u32, [u64; 8]>,
    frags: FastMap<FragKey, (u16, u16)>,
    frag_unattributed: u64,
    /// What fragments and malformed packets add to talkers and ports.
    talkers: FastMap<(u8, [u8; 16]), (Count, Count)>,
    ports: FastMap<(u8, u16), Count>,
    /// What fragments and malformed packets add to the conversations.
    conv: Conversations,
}

/// What an address sent and received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Talker {
    pub addr: IpAddr,
    pub packets: u64,
    pub bytes: u64,
    pub tx: Count,
    pub rx: Count,
}

/// Packets that carried `port` as source or destination (counted once per packet).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PortCount {
    pub proto: &'static str,
    pub port: u16,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ProtoCount {
    pub name: &'static str,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Totals {
    pub packets: u64,
    pub bytes: u64,
    /// Unix-epoch nanoseconds of the first and last packet (0 when there were none).
    pub first_ns: u64,
    pub last_ns: u64,
    pub duration_s: f64,
    pub malformed: u64,
    /// Per category, only those seen, by name.
    pub malformed_by: BTreeMap<&'static str, u64>,
    /// Later fragments counted in the fragments bucket.
    pub frag_unattributed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ConversationTables {
    pub ip: Vec<Conversation>,
    pub ipv6: Vec<Conversation>,
    pub tcp: Vec<Conversation>,
    pub udp: Vec<Conversation>,
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Report {
    pub totals: Totals,
    /// The cap on the flow table, and what it folded into the `other` row.
    pub max_flows: usize,
    pub other: Folded,
    pub protocols: Vec<ProtoCount>,
    pub top_talkers: Vec<Talker>,
    pub top_ports: Vec<PortCount>,
    /// Flows, most bytes first (all of them, or the top N when limited).
    pub flows: Vec<FlowRecord>,
    pub flow_count: usize,
    pub conversations: ConversationTables,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::with_max_flows(DEFAULT_MAX_FLOWS)
    }
}

impl Analyzer {
    pub fn new() -> Self {
        Self::default()
    }

    /// An analyzer whose flow table (and each side table) holds at most `max_flows` rows (at least 2).
    pub fn with_max_flows(max_flows: usize) -> Self {
        Analyzer {
            max_flows: max_flows.max(2),
            other: Folded::default(),
            packets: 0,
            bytes: 0,
            first_ns: None,
            last_ns: 0,
            malformed: [0; 17],
            malformed_names: Vec::new(),
            protos: Default::default(),
            ifaces: Vec::new(),
            index: Default::default(),
            flows: Vec::new(),
            hist_spill: Default::default(),
            frags: Default::default(),
            frag_unattributed: 0,
            talkers: Default::default(),
            ports: Default::default(),
            conv: Default::default(),
        }
    }

    /// Folds the half of the flows with the fewest bytes into `other`, keeping the order of the
    /// rest, and rebuilds the index: O(n), once per `max_flows / 2` new flows.
    fn fold_flows(&mut self) {
        let keep = self.max_flows / 2;
        let mut by_bytes: Vec<(u64, u32)> = self.flows.iter().enumerate().map(|(i, f)| (f.bytes, i as u32)).collect();
        by_bytes.select_nth_unstable_by(keep, |x, y| y.cmp(x));
        let mut fold = vec![false; self.flows.len()];
        for &(_, i) in &by_bytes[keep..] {
            fold[i as usize] = true;
        }
        drop(by_bytes);
        let mut spill = std::mem::take(&mut self.hist_spill);
        let old = std::mem::take(&mut self.flows);
        self.flows.reserve(self.max_flows);
        for (i, f) in old.into_iter().enumerate() {
            let extra = spill.remove(&(i as u32));
            if fold[i] {
                self.other.flows += 1;
                self.other.packets += f.hist.iter().map(|&h| h as u64).sum::<u64>() + extra.map_or(0, |e| e.iter().sum());
                self.other.bytes += f.bytes;
            } else {
                if let Some(e) = extra {
                    self.hist_spill.insert(self.flows.len() as u32, e);
                }
                self.flows.push(f);
            }
        }
        spill.clear();
        self.index.clear();
        for (i, f) in self.flows.iter().enumerate() {
            let hash = FixedState::default().hash_one(&f.key);
            let flows = &self.flows;
            self.index.insert(hash, i as u32, |j| FixedState::default().hash_one(&flows[j as usize].key));
        }
    }

    /// Bounds the tables fed by fragments and malformed packets.
    fn bound_side_tables(&mut self) {
        let cap = self.max_flows;
        if self.frags.len() >= cap {
            // Later fragments of these datagrams count in the fragments bucket, as in the kernel's LRU.
            self.other.side_rows += self.frags.len() as u64;
            self.frags.clear();
        }
        if self.talkers.len() >= cap {
            self.other.side_rows += fold_map(&mut self.talkers, cap / 2, |(tx, rx)| tx.bytes + rx.bytes);
        }
        if self.ports.len() >= cap {
            self.other.side_rows += fold_map(&mut self.ports, cap / 2, |c| c.bytes);
        }
        if self.conv.rows() >= cap {
            self.other.side_rows += self.conv.fold_smallest(cap / 8);
        }
    }

    pub fn add(&mut self, p: &Packet) {
        let iface = self.iface(&p.iface);
        self.add_summary(&Summary::of_packet(p), p.malformed, p.len, p.ts_ns, iface);
    }

    /// The index of an interface name, for [`Analyzer::add_summary`].
    pub fn iface(&mut self, name: &str) -> u32 {
        if let Some(i) = self.ifaces.iter().rposition(|n| n == name) {
            return i as u32;
        }
        self.ifaces.push(name.to_string());
        (self.ifaces.len() - 1) as u32
    }

    /// Counts one frame of `len` bytes (on the wire) seen at `ts_ns` on interface `iface` (from
    /// [`Analyzer::iface`]); `malformed` is `s.malformed_name()`.
    pub fn add_summary(&mut self, s: &Summary, malformed: Option<&'static str>, len: u32, ts_ns: u64, iface: u32) {
        let size = size_bucket(len);
        let len = len as u64;
        self.packets += 1;
        self.bytes += len;
        self.first_ns = Some(self.first_ns.map_or(ts_ns, |f| f.min(ts_ns)));
        self.last_ns = self.last_ns.max(ts_ns);
        if let Some(m) = malformed {
            let i = match self.malformed_names.iter().position(|n| *n == m) {
                Some(i) => i,
                None => {
                    self.malformed_names.push(m);
                    self.malformed_names.len() - 1
                }
            };
            if let Some(c) = self.malformed.get_mut(i) {
                *c += 1;
            }
        }
        let class = if malformed.is_some() {
            10
        } else if s.arp {
            8
        } else if s.ip_version == 0 {
            9
        } else {
            (if s.ip_version == 4 { 0 } else { 4 })
                + match s.proto {
                    6 => 0,
                    17 => 1,
                    1 | 58 => 2,
                    _ => 3,
                }
        };
        self.protos[class].add(len);
        if s.ip_version == 0 {
            return;
        }
        let mut key = Key {
            iface,
            ifindex: s.ifindex,
            vlan: s.vlan,
            proto: s.proto,
            ver: s.ip_version,
            kind: 0,
            sport: s.sport,
            dport: s.dport,
            src: s.src,
            dst: s.dst,
        };
        // An ordinary packet: not malformed, not a fragment, and TCP/UDP exactly when a TCP/UDP header parsed.
        let expect_l4 = if matches!(s.proto, 6 | 17) { s.proto } else { 0 };
        if malformed.is_some() || s.fragment || s.l4 != expect_l4 {
            let order = 2 * self.flows.len() as u64;
            let t = self.talkers.entry((s.ip_version, s.src)).or_default();
            t.0.add(len);
            self.talkers.entry((s.ip_version, s.dst)).or_default().1.add(len);
            if s.l4 != 0 {
                self.ports.entry((s.l4, s.sport)).or_default().add(len);
                if s.dport != s.sport {
                    self.ports.entry((s.l4, s.dport)).or_default().add(len);
                }
            }
            self.conv.add_summary(s, len, ts_ns, order);
            self.bound_side_tables();
            if malformed.is_some() {
                return;
            }
            key.kind = 1;
            if s.fragment {
                let fk = FragKey { iface, ifindex: s.ifindex, id: s.id, ver: s.ip_version, src: s.src, dst: s.dst, proto: s.proto };
                if s.frag_offset == 0 {
                    self.frags.insert(fk, (s.sport, s.dport));
                } else if let Some(&(sp, dp)) = self.frags.get(&fk) {
                    key.sport = sp;
                    key.dport = dp;
                } else {
                    key.kind = 2;
                    self.frag_unattributed += 1;
                }
            }
        }
        let i = self.flow_index(&key, ts_ns);
        let f = &mut self.flows[i];
        f.bytes += len;
        f.first_ns = f.first_ns.min(ts_ns);
        f.last_ns = f.last_ns.max(ts_ns);
        f.tcp_flags |= if s.l4 == 6 { s.tcp_flags } else { 0 };
        let (h, over) = f.hist[size].overflowing_add(1);
        f.hist[size] = h;
        if over {
            self.hist_spill.entry(i as u32).or_default()[size] += 1 << 32;
        }
    }

    fn flow_index(&mut self, key: &Key, ts_ns: u64) -> usize {
        let hash = FixedState::default().hash_one(key);
        let flows = &self.flows;
        if let Some(i) = self.index.find(hash, |i| flows[i as usize].key == *key) {
            return i as usize;
        }
        if self.flows.len() >= self.max_flows {
            self.fold_flows();
        }
        let i = self.flows.len();
        self.flows.push(Flow { key: *key, hist: [0; 8], bytes: 0, first_ns: ts_ns, last_ns: ts_ns, tcp_flags: 0 });
        let flows = &self.flows;
        self.index.insert(hash, i as u32, |j| FixedState::default().hash_one(&flows[j as usize].key));
        i
    }

    fn find(&self, key: &Key) -> Option<usize> {
        let hash = FixedState::default().hash_one(key);
        self.index.find(hash, |i| self.flows[i as usize].key == *key).map(|i| i as usize)
    }

    /// Packets by size bucket of flow `i`.
    fn hist(&self, i: usize) -> [u64; 8] {
        let spill = self.hist_spill.get(&(i as u32));
        std::array::from_fn(|b| self.flows[i].hist[b] as u64 + spill.map_or(0, |s| s[b]))
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// The report; lists are cut to `top` entries (flows too) when given, conversations never.
    /// Everything at once: [`Analyzer::stream`] writes the same report a section at a time.
    pub fn report(&self, top: Option<usize>) -> Report {
        let (top_talkers, top_ports) = self.talkers_and_ports(top);
        let ranked = self.ranked_flows(top);
        Report {
            totals: self.totals(),
            max_flows: self.max_flows,
            other: self.other,
            protocols: self.protocols(),
            top_talkers,
            top_ports,
            flows: ranked.records(self).collect(),
            flow_count: ranked.count,
            conversations: ConversationTables {
                ip: self.conversations(ConvKind::Ip),
                ipv6: self.conversations(ConvKind::Ipv6),
                tcp: self.conversations(ConvKind::Tcp),
                udp: self.conversations(ConvKind::Udp),
            },
        }
    }

    /// The report as a value that serializes exactly as [`Report`] does, building each section
    /// only while it is written: at most one section's rows are in memory beside the flow table
    /// (flow records are made one at a time). `analyze --json` writes this.
    pub fn stream(&self, top: Option<usize>) -> ReportStream<'_> {
        ReportStream { an: self, top }
    }

    pub fn totals(&self) -> Totals {
        let first = self.first_ns.unwrap_or(0);
        let last = if self.first_ns.is_some() { self.last_ns } else { 0 };
        let malformed_by: BTreeMap<&'static str, u64> =
            self.malformed_names.iter().zip(self.malformed.iter()).map(|(n, c)| (*n, *c)).collect();
        Totals {
            packets: self.packets,
            bytes: self.bytes,
            first_ns: first,
            last_ns: last,
            duration_s: (last - first) as f64 / 1e9,
            malformed: malformed_by.values().sum(),
            malformed_by,
            frag_unattributed: self.frag_unattributed,
        }
    }

    pub fn protocols(&self) -> Vec<ProtoCount> {
        PROTO_NAMES
            .iter()
            .zip(self.protos.iter())
            .filter(|(_, c)| c.packets > 0)
            .map(|(n, c)| ProtoCount { name: n, packets: c.packets, bytes: c.bytes })
            .collect()
    }

    pub fn max_flows(&self) -> usize {
        self.max_flows
    }

    pub fn folded(&self) -> Folded {
        self.other
    }

    /// The ordinary flows (kind 0) with their packet and byte counts.
    fn ordinary(&self) -> impl Iterator<Item = (usize, &Key, Count, &Flow)> + '_ {
        self.flows.iter().enumerate().filter(|(_, f)| f.key.kind == 0).map(|(i, f)| {
            (i, &f.key, Count { packets: self.hist(i).iter().sum(), bytes: f.bytes }, f)
        })
    }

    /// Talkers and ports: what was counted as it came, plus every ordinary flow; cut to `top`.
    pub fn talkers_and_ports(&self, top: Option<usize>) -> (Vec<Talker>, Vec<PortCount>) {
        let cut = |n: usize| top.unwrap_or(n).min(n);
        let mut tk = self.talkers.clone();
        let mut pt = self.ports.clone();
        // Grown once rather than doubled as rows come: each flow has two addresses and two ports,
        // most of them shared with its reverse flow.
        let n = self.flows.len() / 2;
        tk.reserve(n);
        pt.reserve(n.min(2 << 16));
        for (_, k, c, _) in self.ordinary() {
            let t = tk.entry((k.ver, k.src)).or_default();
            t.0.packets += c.packets;
            t.0.bytes += c.bytes;
            let t = tk.entry((k.ver, k.dst)).or_default();
            t.1.packets += c.packets;
            t.1.bytes += c.bytes;
            if matches!(k.proto, 6 | 17) {
                for port in [k.sport, k.dport].into_iter().take(if k.sport == k.dport { 1 } else { 2 }) {
                    let p = pt.entry((k.proto, port)).or_default();
                    p.packets += c.packets;
                    p.bytes += c.bytes;
                }
            }
        }
        let mut talkers: Vec<Talker> = tk
            .iter()
            .map(|((v, a), (tx, rx))| Talker { addr: ip_of(*v, a), packets: tx.packets + rx.packets, bytes: tx.bytes + rx.bytes, tx: *tx, rx: *rx })
            .collect();
        drop(tk);
        talkers.sort_by(|x, y| y.bytes.cmp(&x.bytes).then(y.packets.cmp(&x.packets)).then(x.addr.cmp(&y.addr)));
        talkers.truncate(cut(talkers.len()));
        let mut ports: Vec<PortCount> = pt
            .iter()
            .map(|((proto, port), c)| PortCount { proto: if *proto == 6 { "tcp" } else { "udp" }, port: *port, packets: c.packets, bytes: c.bytes })
            .collect();
        ports.sort_by(|x, y| y.packets.cmp(&x.packets).then(y.bytes.cmp(&x.bytes)).then((x.proto, x.port).cmp(&(y.proto, y.port))));
        ports.truncate(cut(ports.len()));
        (talkers, ports)
    }

    /// One conversation table: what was counted as it came, plus every ordinary flow.
    pub fn conversations(&self, kind: ConvKind) -> Vec<Conversation> {
        let mut t = match kind {
            ConvKind::Ip => self.conv.ip.clone(),
            ConvKind::Ipv6 => self.conv.ipv6.clone(),
            ConvKind::Tcp => self.conv.tcp.clone(),
            ConvKind::Udp => self.conv.udp.clone(),
        };
        let v4 = |k: &Key| k.ver == 4;
        let more = self.flows.iter().filter(|f| f.key.kind == 0).filter(|f| match kind {
            ConvKind::Ip => v4(&f.key),
            ConvKind::Ipv6 => !v4(&f.key),
            ConvKind::Tcp => f.key.proto == 6,
            ConvKind::Udp => f.key.proto == 17,
        });
        // At most one new row per flow; flows of a two-way conversation share one, so half of
        // them, grown past if need be (an index sized for every flow would cost memory).
        t.reserve(more.count() / 2 + 1);
        for (i, k, c, f) in self.ordinary() {
            let order = 2 * i as u64 + 1;
            let (src, dst) = match kind {
                ConvKind::Ip if k.ver == 4 => ((k.ver, k.src, 0), (k.ver, k.dst, 0)),
                ConvKind::Ipv6 if k.ver != 4 => ((k.ver, k.src, 0), (k.ver, k.dst, 0)),
                ConvKind::Tcp if k.proto == 6 => ((k.ver, k.src, k.sport), (k.ver, k.dst, k.dport)),
                ConvKind::Udp if k.proto == 17 => ((k.ver, k.src, k.sport), (k.ver, k.dst, k.dport)),
                _ => continue,
            };
            t.add_agg(src, dst, c.packets, c.bytes, f.first_ns, f.last_ns, order);
        }
        t.into_sorted()
    }

    /// The flows to show, ranked (most bytes, then packets, then key): fragments join the
    /// ordinary flow of the same key.
    pub fn ranked_flows(&self, top: Option<usize>) -> RankedFlows {
        let mut partner: FastMap<u32, u32> = FastMap::default();
        for (i, f) in self.flows.iter().enumerate() {
            if f.key.kind == 1 {
                if let Some(j) = self.find(&Key { kind: 0, ..f.key }) {
                    partner.insert(j as u32, i as u32);
                }
            }
        }
        let absorbed: std::collections::HashSet<u32, FixedState> = partner.values().copied().collect();
        // Rank (bytes, packets, index) first; records (with their interface names) are built
        // only for the flows shown, one at a time.
        let mut ranked: Vec<(u64, u64, u32)> = (0..self.flows.len())
            .filter(|&i| self.flows[i].key.kind != 1 || !absorbed.contains(&(i as u32)))
            .map(|i| {
                let j = partner.get(&(i as u32)).map(|&j| j as usize);
                let packets = self.hist(i).iter().sum::<u64>() + j.map_or(0, |j| self.hist(j).iter().sum());
                (self.flows[i].bytes + j.map_or(0, |j| self.flows[j].bytes), packets, i as u32)
            })
            .collect();
        drop(absorbed);
        let count = ranked.len();
        let order = |a: &(u64, u64, u32), b: &(u64, u64, u32)| {
            let (ka, kb) = (&self.flows[a.2 as usize].key, &self.flows[b.2 as usize].key);
            b.0.cmp(&a.0)
                .then(b.1.cmp(&a.1))
                .then_with(|| flow_order(&self.flow_key(ka)).cmp(&flow_order(&self.flow_key(kb))))
                .then_with(|| self.iface_name(ka).cmp(self.iface_name(kb)))
        };
        let shown = top.unwrap_or(count).min(count);
        if shown < count && shown > 0 {
            ranked.select_nth_unstable_by(shown - 1, order);
        }
        ranked.truncate(shown);
        ranked.sort_by(order);
        let shown: Vec<(u32, Option<u32>)> = ranked.iter().map(|&(_, _, i)| (i, partner.get(&i).copied())).collect();
        RankedFlows { shown, count }
    }
}

/// The four conversation tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    Ip,
    Ipv6,
    Tcp,
    Udp,
}

/// The flows a report shows, in order, and how many there were in all.
pub struct RankedFlows {
    /// (flow, the flow of its fragments).
    shown: Vec<(u32, Option<u32>)>,
    pub count: usize,
}

impl RankedFlows {
    pub fn len(&self) -> usize {
        self.shown.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }

    /// The records, built one at a time.
    pub fn records<'a>(&'a self, an: &'a Analyzer) -> impl Iterator<Item = FlowRecord> + 'a {
        self.shown.iter().map(|&(i, j)| an.record(i as usize, j.map(|j| j as usize)))
    }
}

/// [`Analyzer::stream`]: serializes as [`Report`], one section at a time.
pub struct ReportStream<'a> {
    an: &'a Analyzer,
    top: Option<usize>,
}

/// Its schema is [`Report`]'s: it writes exactly that.
impl schemars::JsonSchema for ReportStream<'_> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        Report::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        Report::schema_id()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        Report::json_schema(g)
    }
}

/// A sequence serialized from an iterator, without collecting it.
struct SeqOf<I>(std::cell::RefCell<Option<I>>);

impl<I: Iterator<Item = T>, T: Serialize> Serialize for SeqOf<I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let it = self.0.borrow_mut().take().ok_or_else(|| serde::ser::Error::custom("sequence written twice"))?;
        s.collect_seq(it)
    }
}

/// The conversation tables, each built while it is written and dropped after.
struct ConvStream<'a>(&'a Analyzer);

impl Serialize for ConvStream<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("ConversationTables", 4)?;
        for (name, kind) in [("ip", ConvKind::Ip), ("ipv6", ConvKind::Ipv6), ("tcp", ConvKind::Tcp), ("udp", ConvKind::Udp)] {
            m.serialize_field(name, &self.0.conversations(kind))?;
        }
        m.end()
    }
}

impl Serialize for ReportStream<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let an = self.an;
        let mut m = s.serialize_struct("Report", 9)?;
        m.serialize_field("totals", &an.totals())?;
        m.serialize_field("max_flows", &an.max_flows)?;
        m.serialize_field("other", &an.other)?;
        m.serialize_field("protocols", &an.protocols())?;
        let (talkers, ports) = an.talkers_and_ports(self.top);
        m.serialize_field("top_talkers", &talkers)?;
        m.serialize_field("top_ports", &ports)?;
        drop((talkers, ports));
        let ranked = an.ranked_flows(self.top);
        m.serialize_field("flows", &SeqOf(std::cell::RefCell::new(Some(ranked.records(an)))))?;
        m.serialize_field("flow_count", &ranked.count)?;
        drop(ranked);
        m.serialize_field("conversations", &ConvStream(an))?;
        m.end()
    }
}

impl Analyzer {
    /// Flow `i` as a record, with the counters of flow `j` (its fragments) added.
    fn record(&self, i: usize, j: Option<usize>) -> FlowRecord {
        let f = &self.flows[i];
        let k = &f.key;
        let mut hist = self.hist(i);
        let (mut bytes, mut first_ns, mut last_ns, mut tcp_flags) = (f.bytes, f.first_ns, f.last_ns, f.tcp_flags);
        if let Some(j) = j {
            let g = &self.flows[j];
            for (h, x) in hist.iter_mut().zip(self.hist(j)) {
                *h += x;
            }
            bytes += g.bytes;
            first_ns = first_ns.min(g.first_ns);
            last_ns = last_ns.max(g.last_ns);
            tcp_flags |= g.tcp_flags;
        }
        FlowRecord {
            key: self.flow_key(k),
            iface: self.iface_name(k).to_string(),
            packets: hist.iter().sum(),
            bytes,
            first_ns,
            last_ns,
            tcp_flags,
            size_hist: hist,
            pps: 0.0,
            bps: 0.0,
        }
    }
}

impl Analyzer {
    fn flow_key(&self, k: &Key) -> FlowKey {
        FlowKey {
            ifindex: k.ifindex,
            vlan: k.vlan,
            proto: k.proto,
            src: ip_of(k.ver, &k.src),
            dst: ip_of(k.ver, &k.dst),
            sport: k.sport,
            dport: k.dport,
            fragments: k.kind == 2,
        }
    }

    fn iface_name(&self, k: &Key) -> &str {
        self.ifaces.get(k.iface as usize).map_or("", String::as_str)
    }
}

/// Keeps the `keep` entries of `m` with the largest `size`; returns how many were removed.
fn fold_map<K: Clone + Eq + std::hash::Hash, V>(m: &mut FastMap<K, V>, keep: usize, size: impl Fn(&V) -> u64) -> u64 {
    if m.len() <= keep {
        return 0;
    }
    let mut sizes: Vec<u64> = m.values().map(&size).collect();
    let n = sizes.len();
    let (_, &mut cut, _) = sizes.select_nth_unstable_by(keep, |x, y| y.cmp(x));
    drop(sizes);
    // Entries larger than the cut stay, then entries equal to it until `keep` are kept.
    let mut equal_left = keep - m.values().filter(|v| size(v) > cut).count();
    m.retain(|_, v| {
        let s = size(v);
        if s > cut {
            true
        } else if s == cut && equal_left > 0 {
            equal_left -= 1;
            true
        } else {
            false
        }
    });
    m.shrink_to(keep * 2);
    (n - m.len()) as u64
}

fn flow_order(k: &FlowKey) -> (u32, u16, u8, IpAddr, IpAddr, u16, u16, bool) {
    (k.ifindex, k.vlan, k.proto, k.src, k.dst, k.sport, k.dport, k.fragments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Ip, Tcp, Vlan};
    use std::net::Ipv4Addr;

    fn tcp_pkt(src: u8, sport: u16, len: u32, ts: u64, frag: Option<(u32, u16)>) -> Packet {
        Packet {
            ts_ns: ts,
            ifindex: 0,
            iface: "cap".into(),
            rx_queue: 0,
            len,
            malformed: None,
            eth: None,
            vlans: vec![Vlan::from_tci(0x88a8, 5), Vlan::from_tci(0x8100, 7)],
            arp: None,
            ip: Some(Ip {
                version: 4,
                src: Ipv4Addr::new(10, 0, 0, src).into(),
                dst: Ipv4Addr::new(10, 0, 0, 9).into(),
                ttl: 1,
                dscp: 0,
                ecn: 0,
                id: frag.map_or(0, |f| f.0),
                df: false,
                mf: false,
                frag_offset: frag.map_or(0, |f| f.1),
                fragment: frag.is_some(),
                proto: 6,
                hdr_len: 20,
                total_len: 40,
                options: false,
                flow_label: 0,
                ext_headers: vec![],
            }),
            tcp: (frag.is_none_or(|f| f.1 == 0)).then_some(Tcp {
                sport,
                dport: 80,
                seq: 0,
                ack: 0,
                flags: 0x02,
                window: 0,
                hdr_len: 20,
                mss: None,
                wscale: None,
                sack_ok: false,
                sack: false,
                ts: None,
            }),
            udp: None,
            icmp: None,
            payload_offset: 0,
            firewall: None,
            payload: vec![],
        }
    }

    #[test]
    fn flows_follow_the_kernels_rules() {
        let mut a = Analyzer::new();
        a.add(&tcp_pkt(1, 1000, 60, 10, None));
        a.add(&tcp_pkt(1, 1000, 2000, 20, None));
        a.add(&tcp_pkt(2, 2000, 60, 5, Some((77, 0))));
        a.add(&tcp_pkt(2, 0, 60, 6, Some((77, 8))));
        a.add(&tcp_pkt(3, 0, 60, 7, Some((78, 8))));
        let mut bad = tcp_pkt(4, 1, 60, 8, None);
        bad.malformed = Some("tcp_bad_option");
        a.add(&bad);
        let r = a.report(None);
        assert_eq!(r.flow_count, 3);
        let f = &r.flows[0];
        assert_eq!((f.key.sport, f.key.vlan, f.packets, f.bytes, f.first_ns, f.last_ns, f.tcp_flags), (1000, 7, 2, 2060, 10, 20, 2));
        assert_eq!(f.size_hist, [1, 0, 0, 0, 0, 0, 1, 0]);
        let frag = r.flows.iter().find(|f| f.key.sport == 2000).unwrap();
        assert_eq!(frag.packets, 2, "the later fragment joined its first fragment's flow");
        let bucket = r.flows.iter().find(|f| f.key.fragments).unwrap();
        assert_eq!((bucket.key.sport, bucket.packets), (0, 1));
        assert_eq!(r.totals.frag_unattributed, 1);
        assert_eq!((r.totals.packets, r.totals.malformed, r.totals.malformed_by["tcp_bad_option"]), (6, 1, 1));
        assert_eq!((r.totals.first_ns, r.totals.last_ns), (5, 20));
        assert_eq!(r.protocols, vec![ProtoCount { name: "ipv4_tcp", packets: 5, bytes: 2240 }, ProtoCount { name: "malformed", packets: 1, bytes: 60 }]);
        assert_eq!(r.top_talkers[0].addr, IpAddr::from(Ipv4Addr::new(10, 0, 0, 9)));
        assert_eq!(r.top_talkers[0].rx.packets, 6);
        assert_eq!((r.top_ports[0].port, r.top_ports[0].packets), (80, 4));
        assert_eq!(a.report(Some(1)).flows.len(), 1);
    }

    #[test]
    fn past_the_cap_the_smallest_flows_fold_into_other() {
        let mut a = Analyzer::with_max_flows(4);
        // Ten flows, each larger than the one before: at each fold the smaller half goes.
        for i in 1..=10u32 {
            a.add(&tcp_pkt(1, 1000 + i as u16, 100 + i, i as u64, None));
        }
        // 5th flow: folds 1, 2; 7th: folds 3, 4; 9th: folds 5, 6. Left: 7, 8, 9, 10.
        let r = a.report(None);
        assert_eq!(r.max_flows, 4);
        assert_eq!((r.other.flows, r.other.packets, r.other.bytes), (6, 6, (1..=6).map(|i| 100 + i).sum::<u64>()));
        let kept: Vec<u16> = r.flows.iter().map(|f| f.key.sport - 1000).collect();
        assert_eq!(kept, vec![10, 9, 8, 7]);
        assert_eq!(r.flow_count, 4);
        // The totals still count every packet; a folded flow seen again starts a new row.
        assert_eq!((r.totals.packets, r.totals.bytes), (10, (1..=10).map(|i| 100 + i).sum::<u64>()));
        a.add(&tcp_pkt(1, 1001, 1000, 11, None));
        let r = a.report(Some(1));
        // (The table was full again: 7 and 8 folded first.)
        assert_eq!((r.flows[0].key.sport, r.flows[0].packets, r.flow_count), (1001, 1, 3));
        assert_eq!(r.other.flows, 8);
    }

    #[test]
    fn size_buckets_match_the_kernel() {
        assert_eq!([64, 65, 128, 129, 1518, 1519, 9018, 9019].map(size_bucket), [0, 1, 1, 2, 5, 6, 6, 7]);
    }
}
