//! Offline analysis of a packet stream: totals, malformed categories, protocol mix, top talkers,
//! top ports, the one-direction flow table (as the kernel keeps it) and the conversation tables.
//!
//! The flow table follows the XDP program's rules (rxray_account): only well-formed IP packets,
//! keyed by ifindex, innermost VLAN id, protocol, addresses and ports; later fragments join the
//! flow of their first fragment, or the fragments bucket when it was not seen. Unlike the kernel's
//! 4096-entry LRU, the fragment table here is unbounded (a capture is finite), and flows of
//! different interfaces (by name) are kept apart even when their ifindex is the same (0 offline).
use crate::conv::{Conversation, Conversations};
use crate::event::Packet;
use crate::flows::{FlowKey, FlowRecord};
use foldhash::fast::FixedState;
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
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

#[derive(Clone, Debug, Default)]
struct FlowAgg {
    packets: u64,
    bytes: u64,
    first_ns: u64,
    last_ns: u64,
    tcp_flags: u8,
    size_hist: [u64; 8],
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FragKey {
    iface: u32,
    ifindex: u32,
    id: u32,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
}

/// Accumulates everything `rxray analyze` reports, one packet at a time (no allocation per packet
/// once a flow, address or port has been seen).
#[derive(Default)]
pub struct Analyzer {
    packets: u64,
    bytes: u64,
    first_ns: Option<u64>,
    last_ns: u64,
    malformed: [u64; 17],
    malformed_names: Vec<&'static str>,
    protos: [Count; 11],
    /// Interface names seen, in order; flows refer to them by index.
    ifaces: Vec<String>,
    flows: FastMap<(u32, FlowKey), FlowAgg>,
    frags: FastMap<FragKey, (u16, u16)>,
    frag_unattributed: u64,
    talkers: FastMap<IpAddr, (Count, Count)>,
    ports: FastMap<(u8, u16), Count>,
    conv: Conversations,
}

/// What an address sent and received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Talker {
    pub addr: IpAddr,
    pub packets: u64,
    pub bytes: u64,
    pub tx: Count,
    pub rx: Count,
}

/// Packets that carried `port` as source or destination (counted once per packet).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortCount {
    pub proto: &'static str,
    pub port: u16,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProtoCount {
    pub name: &'static str,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
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

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConversationTables {
    pub ip: Vec<Conversation>,
    pub ipv6: Vec<Conversation>,
    pub tcp: Vec<Conversation>,
    pub udp: Vec<Conversation>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub totals: Totals,
    pub protocols: Vec<ProtoCount>,
    pub top_talkers: Vec<Talker>,
    pub top_ports: Vec<PortCount>,
    /// Flows, most bytes first (all of them, or the top N when limited).
    pub flows: Vec<FlowRecord>,
    pub flow_count: usize,
    pub conversations: ConversationTables,
}

impl Analyzer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, p: &Packet) {
        let len = p.len as u64;
        self.packets += 1;
        self.bytes += len;
        self.first_ns = Some(self.first_ns.map_or(p.ts_ns, |f| f.min(p.ts_ns)));
        self.last_ns = self.last_ns.max(p.ts_ns);
        if let Some(m) = p.malformed {
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
        self.protos[proto_class(p)].add(len);
        self.conv.add(p);
        let Some(ip) = &p.ip else { return };

        let t = self.talkers.entry(ip.src).or_default();
        t.0.add(len);
        self.talkers.entry(ip.dst).or_default().1.add(len);
        let l4 = p.tcp.map(|t| (6u8, t.sport, t.dport)).or(p.udp.map(|u| (17u8, u.sport, u.dport)));
        if let Some((proto, sport, dport)) = l4 {
            self.ports.entry((proto, sport)).or_default().add(len);
            if dport != sport {
                self.ports.entry((proto, dport)).or_default().add(len);
            }
        }

        if p.malformed.is_some() {
            return;
        }
        let iface = self.iface_index(&p.iface);
        let (sport, dport) = l4.map(|(_, s, d)| (s, d)).unwrap_or((0, 0));
        let mut key = FlowKey {
            ifindex: p.ifindex,
            vlan: p.vlans.last().map_or(0, |v| v.vid),
            proto: ip.proto,
            src: ip.src,
            dst: ip.dst,
            sport,
            dport,
            fragments: false,
        };
        if ip.fragment {
            let fk = FragKey { iface, ifindex: p.ifindex, id: ip.id, src: ip.src, dst: ip.dst, proto: ip.proto };
            if ip.frag_offset == 0 {
                self.frags.insert(fk, (sport, dport));
            } else if let Some(&(s, d)) = self.frags.get(&fk) {
                key.sport = s;
                key.dport = d;
            } else {
                key.fragments = true;
                self.frag_unattributed += 1;
            }
        }
        let f = self.flows.entry((iface, key)).or_insert_with(|| FlowAgg { first_ns: p.ts_ns, ..Default::default() });
        f.packets += 1;
        f.bytes += len;
        f.first_ns = f.first_ns.min(p.ts_ns);
        f.last_ns = f.last_ns.max(p.ts_ns);
        f.tcp_flags |= p.tcp.map_or(0, |t| t.flags);
        f.size_hist[size_bucket(p.len)] += 1;
    }

    fn iface_index(&mut self, name: &str) -> u32 {
        if let Some(i) = self.ifaces.iter().rposition(|n| n == name) {
            return i as u32;
        }
        self.ifaces.push(name.to_string());
        (self.ifaces.len() - 1) as u32
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// The report; lists are cut to `top` entries (flows too) when given, conversations never.
    pub fn report(&self, top: Option<usize>) -> Report {
        let cut = |n: usize| top.unwrap_or(n).min(n);
        let first = self.first_ns.unwrap_or(0);
        let last = if self.first_ns.is_some() { self.last_ns } else { 0 };
        let malformed_by: BTreeMap<&'static str, u64> =
            self.malformed_names.iter().zip(self.malformed.iter()).map(|(n, c)| (*n, *c)).collect();
        let totals = Totals {
            packets: self.packets,
            bytes: self.bytes,
            first_ns: first,
            last_ns: last,
            duration_s: (last - first) as f64 / 1e9,
            malformed: malformed_by.values().sum(),
            malformed_by,
            frag_unattributed: self.frag_unattributed,
        };
        let protocols = PROTO_NAMES
            .iter()
            .zip(self.protos.iter())
            .filter(|(_, c)| c.packets > 0)
            .map(|(n, c)| ProtoCount { name: n, packets: c.packets, bytes: c.bytes })
            .collect();
        let mut talkers: Vec<Talker> = self
            .talkers
            .iter()
            .map(|(a, (tx, rx))| Talker { addr: *a, packets: tx.packets + rx.packets, bytes: tx.bytes + rx.bytes, tx: *tx, rx: *rx })
            .collect();
        talkers.sort_by(|x, y| y.bytes.cmp(&x.bytes).then(y.packets.cmp(&x.packets)).then(x.addr.cmp(&y.addr)));
        talkers.truncate(cut(talkers.len()));
        let mut ports: Vec<PortCount> = self
            .ports
            .iter()
            .map(|((proto, port), c)| PortCount { proto: if *proto == 6 { "tcp" } else { "udp" }, port: *port, packets: c.packets, bytes: c.bytes })
            .collect();
        ports.sort_by(|x, y| y.packets.cmp(&x.packets).then(y.bytes.cmp(&x.bytes)).then((x.proto, x.port).cmp(&(y.proto, y.port))));
        ports.truncate(cut(ports.len()));
        let mut flows: Vec<FlowRecord> = self
            .flows
            .iter()
            .map(|((iface, k), f)| FlowRecord {
                key: k.clone(),
                iface: self.ifaces.get(*iface as usize).cloned().unwrap_or_default(),
                packets: f.packets,
                bytes: f.bytes,
                first_ns: f.first_ns,
                last_ns: f.last_ns,
                tcp_flags: f.tcp_flags,
                size_hist: f.size_hist,
                pps: 0.0,
                bps: 0.0,
            })
            .collect();
        flows.sort_by(|a, b| {
            b.bytes.cmp(&a.bytes).then(b.packets.cmp(&a.packets)).then_with(|| flow_order(&a.key).cmp(&flow_order(&b.key))).then(a.iface.cmp(&b.iface))
        });
        let flow_count = flows.len();
        flows.truncate(cut(flows.len()));
        Report {
            totals,
            protocols,
            top_talkers: talkers,
            top_ports: ports,
            flows,
            flow_count,
            conversations: ConversationTables {
                ip: self.conv.ip.sorted(),
                ipv6: self.conv.ipv6.sorted(),
                tcp: self.conv.tcp.sorted(),
                udp: self.conv.udp.sorted(),
            },
        }
    }
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
    fn size_buckets_match_the_kernel() {
        assert_eq!([64, 65, 128, 129, 1518, 1519, 9018, 9019].map(size_bucket), [0, 1, 1, 2, 5, 6, 6, 7]);
    }
}
