//! Conversation tables with Wireshark's semantics (`tshark -z conv,ip|ipv6|tcp|udp`): one row per
//! unordered endpoint pair, frames and bytes (original frame lengths) in each direction.
//!
//! As tshark (with its default IP reassembly) does, a fragmented TCP/UDP datagram counts in the
//! TCP/UDP table once, in the frame that completes it, with that frame's length; every fragment
//! still counts in the IP table. `Conversations::add` does that from `Packet`s.
use crate::event::Packet;
use rxray_wire::dissect::Summary;
use foldhash::fast::FixedState;
use serde::Serialize;
use std::collections::HashMap;
use std::net::IpAddr;

type FastMap<K, V> = HashMap<K, V, FixedState>;

/// One conversation. A is the source of the first frame seen, as in Wireshark.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Conversation {
    pub a: IpAddr,
    /// 0 in the IP tables.
    pub a_port: u16,
    pub b: IpAddr,
    pub b_port: u16,
    pub frames_ab: u64,
    pub bytes_ab: u64,
    pub frames_ba: u64,
    pub bytes_ba: u64,
    pub first_ns: u64,
    pub last_ns: u64,
}

impl Conversation {
    pub fn frames(&self) -> u64 {
        self.frames_ab + self.frames_ba
    }
    pub fn bytes(&self) -> u64 {
        self.bytes_ab + self.bytes_ba
    }
}

/// An endpoint: IP version, address (IPv4 in the first 4 bytes) and port.
pub type Endpoint = (u8, [u8; 16], u16);

pub(crate) use rxray_wire::dissect::ip_from as ip_of;

/// One row being aggregated: A is the source of the contribution with the lowest `order`.
#[derive(Clone, Debug)]
struct Row {
    a: Endpoint,
    b: Endpoint,
    ab: (u64, u64),
    ba: (u64, u64),
    first_ns: u64,
    last_ns: u64,
    order: u64,
}

/// Conversations keyed by an unordered endpoint pair.
#[derive(Clone, Debug, Default)]
pub struct ConvTable {
    index: FastMap<(Endpoint, Endpoint), u32>,
    convs: Vec<Row>,
    next_order: u64,
}

impl ConvTable {
    /// Counts one frame from (src, sport) to (dst, dport).
    pub fn add(&mut self, src: IpAddr, sport: u16, dst: IpAddr, dport: u16, bytes: u64, ts_ns: u64) {
        let v = if src.is_ipv4() { 4 } else { 6 };
        let o = self.next_order;
        self.add_agg((v, rxray_wire::dissect::addr_bytes(src), sport), (v, rxray_wire::dissect::addr_bytes(dst), dport), 1, bytes, ts_ns, ts_ns, o);
    }

    /// Counts `frames` frames from `src` to `dst`, seen between `first_ns` and `last_ns`; `order`
    /// ranks this contribution's first frame among all others (lower: seen earlier).
    #[allow(clippy::too_many_arguments)]
    pub fn add_agg(&mut self, src: Endpoint, dst: Endpoint, frames: u64, bytes: u64, first_ns: u64, last_ns: u64, order: u64) {
        self.next_order = self.next_order.max(order + 1);
        let key = if src <= dst { (src, dst) } else { (dst, src) };
        let convs = &mut self.convs;
        let i = *self.index.entry(key).or_insert_with(|| {
            convs.push(Row { a: src, b: dst, ab: (0, 0), ba: (0, 0), first_ns, last_ns, order });
            (convs.len() - 1) as u32
        }) as usize;
        let c = &mut self.convs[i];
        if order < c.order {
            c.order = order;
            if c.a != src {
                std::mem::swap(&mut c.a, &mut c.b);
                std::mem::swap(&mut c.ab, &mut c.ba);
            }
        }
        let d = if c.a == src { &mut c.ab } else { &mut c.ba };
        d.0 += frames;
        d.1 += bytes;
        c.first_ns = c.first_ns.min(first_ns);
        c.last_ns = c.last_ns.max(last_ns);
    }

    pub fn len(&self) -> usize {
        self.convs.len()
    }

    /// Room for `more` rows beyond those held, so that adding them neither rehashes nor moves rows.
    pub fn reserve(&mut self, more: usize) {
        self.index.reserve(more);
        self.convs.reserve(more);
    }

    /// Keeps the `keep` rows with the most bytes (then frames) and removes the others; returns
    /// (rows removed, their frames, their bytes). Linear apart from one selection.
    pub fn fold_smallest(&mut self, keep: usize) -> (u64, u64, u64) {
        if self.convs.len() <= keep {
            return (0, 0, 0);
        }
        let size = |r: &Row| (r.ab.1 + r.ba.1, r.ab.0 + r.ba.0);
        self.convs.select_nth_unstable_by(keep, |x, y| size(y).cmp(&size(x)));
        let mut folded = (0, 0, 0);
        for r in self.convs.drain(keep..) {
            folded.0 += 1;
            folded.1 += r.ab.0 + r.ba.0;
            folded.2 += r.ab.1 + r.ba.1;
        }
        self.convs.shrink_to(keep.max(1) * 2);
        self.index.clear();
        for (i, r) in self.convs.iter().enumerate() {
            let key = if r.a <= r.b { (r.a, r.b) } else { (r.b, r.a) };
            self.index.insert(key, i as u32);
        }
        folded
    }

    pub fn is_empty(&self) -> bool {
        self.convs.is_empty()
    }

    /// [`ConvTable::sorted`], consuming the table: its index is freed first, and the rows become
    /// conversations in place.
    pub fn into_sorted(self) -> Vec<Conversation> {
        let ConvTable { index, convs, .. } = self;
        drop(index);
        // Ranked by (bytes, frames) alone first, a small key per row; rows equal in both are
        // then put in endpoint order. The same order as by_size_then_endpoints, with fewer moves
        // of whole rows.
        let mut rank: Vec<(u64, u64, u32)> = convs.iter().enumerate().map(|(i, r)| (r.ab.1 + r.ba.1, r.ab.0 + r.ba.0, i as u32)).collect();
        rank.sort_unstable_by(|x, y| y.0.cmp(&x.0).then(y.1.cmp(&x.1)).then(x.2.cmp(&y.2)));
        let mut slots: Vec<Option<Row>> = convs.into_iter().map(Some).collect();
        let mut v: Vec<Conversation> = rank.iter().filter_map(|&(_, _, i)| slots[i as usize].take().map(Row::conversation)).collect();
        drop(slots);
        let mut start = 0;
        while start < rank.len() {
            let end = start + rank[start..].iter().take_while(|r| (r.0, r.1) == (rank[start].0, rank[start].1)).count();
            if end - start > 1 {
                v[start..end].sort_unstable_by(by_size_then_endpoints);
            }
            start = end;
        }
        v
    }

    /// Every conversation, most bytes first (then most frames, then by endpoints): deterministic.
    pub fn sorted(&self) -> Vec<Conversation> {
        let mut v: Vec<Conversation> = self.convs.iter().cloned().map(Row::conversation).collect();
        v.sort_unstable_by(by_size_then_endpoints);
        v
    }
}

/// Most bytes first, then most frames, then by endpoints: a total order, so output is deterministic.
fn by_size_then_endpoints(x: &Conversation, y: &Conversation) -> std::cmp::Ordering {
    y.bytes()
        .cmp(&x.bytes())
        .then(y.frames().cmp(&x.frames()))
        .then((x.a, x.a_port, x.b, x.b_port).cmp(&(y.a, y.a_port, y.b, y.b_port)))
}

impl Row {
    fn conversation(self) -> Conversation {
        Conversation {
            a: ip_of(self.a.0, &self.a.1),
            a_port: self.a.2,
            b: ip_of(self.b.0, &self.b.1),
            b_port: self.b.2,
            frames_ab: self.ab.0,
            bytes_ab: self.ab.1,
            frames_ba: self.ba.0,
            bytes_ba: self.ba.1,
            first_ns: self.first_ns,
            last_ns: self.last_ns,
        }
    }
}

/// One IP datagram being put back together from its fragments.
#[derive(Clone, Debug, Default)]
struct Datagram {
    /// (start, end) byte ranges received.
    have: Vec<(u32, u32)>,
    /// The datagram's length, once the last fragment (MF clear) arrived.
    total: Option<u32>,
    /// The transport ports, from the first fragment.
    ports: Option<(u16, u16)>,
}

impl Datagram {
    fn complete(&mut self) -> bool {
        let Some(total) = self.total else { return false };
        self.have.sort_unstable();
        let mut reach = 0u32;
        for &(s, e) in &self.have {
            if s > reach {
                return false;
            }
            reach = reach.max(e);
        }
        reach >= total
    }
}

/// The four tables tshark prints, fed from `Packet`s (or packet summaries).
#[derive(Clone, Debug, Default)]
pub struct Conversations {
    pub ip: ConvTable,
    pub ipv6: ConvTable,
    pub tcp: ConvTable,
    pub udp: ConvTable,
    /// Fragmented TCP/UDP datagrams not complete yet: (version, src, dst, id, proto).
    pending: FastMap<(u8, [u8; 16], [u8; 16], u32, u8), Datagram>,
    next_order: u64,
}

impl Conversations {
    /// Rows in all four tables, and datagrams waiting for fragments.
    pub fn rows(&self) -> usize {
        self.ip.len() + self.ipv6.len() + self.tcp.len() + self.udp.len() + self.pending.len()
    }

    /// Bounds every table to `keep` rows (see [`ConvTable::fold_smallest`]) and forgets the
    /// datagrams waiting for fragments; returns the rows removed.
    pub fn fold_smallest(&mut self, keep: usize) -> u64 {
        let mut n = self.pending.len() as u64;
        self.pending.clear();
        for t in [&mut self.ip, &mut self.ipv6, &mut self.tcp, &mut self.udp] {
            n += t.fold_smallest(keep).0;
        }
        n
    }

    pub fn add(&mut self, p: &Packet) {
        let o = self.next_order;
        self.add_summary(&Summary::of_packet(p), p.len as u64, p.ts_ns, o);
    }

    /// Counts one frame; `order` ranks it among all frames (lower: seen earlier).
    pub fn add_summary(&mut self, s: &Summary, bytes: u64, ts_ns: u64, order: u64) {
        self.next_order = self.next_order.max(order + 1);
        if s.ip_version == 0 {
            return;
        }
        let v = s.ip_version;
        let v4 = v == 4;
        let l4 = matches!(s.proto, 6 | 17);
        let (src, dst) = ((v, s.src, 0), (v, s.dst, 0));
        if !s.fragment {
            let t = if v4 { &mut self.ip } else { &mut self.ipv6 };
            t.add_agg(src, dst, 1, bytes, ts_ns, ts_ns, order);
            let ports = (s.l4 != 0).then_some((s.sport, s.dport));
            self.add_l4(s, ports, bytes, ts_ns, order);
            return;
        }
        // tshark counts every IPv4 fragment in conv,ip, but an IPv6 fragment only in the frame
        // that completes its datagram; TCP/UDP always in that frame.
        if v4 {
            self.ip.add_agg(src, dst, 1, bytes, ts_ns, ts_ns, order);
            if !l4 {
                return;
            }
        }
        if let Some(ports) = self.reassemble(s) {
            if !v4 {
                self.ipv6.add_agg(src, dst, 1, bytes, ts_ns, ts_ns, order);
            }
            self.add_l4(s, ports, bytes, ts_ns, order);
        }
    }

    fn add_l4(&mut self, s: &Summary, ports: Option<(u16, u16)>, bytes: u64, ts_ns: u64, order: u64) {
        let Some((sport, dport)) = ports else { return };
        let (src, dst) = ((s.ip_version, s.src, sport), (s.ip_version, s.dst, dport));
        match s.proto {
            6 => self.tcp.add_agg(src, dst, 1, bytes, ts_ns, ts_ns, order),
            17 => self.udp.add_agg(src, dst, 1, bytes, ts_ns, ts_ns, order),
            _ => {}
        }
    }

    /// Records one fragment; when this frame completes its datagram, returns the transport ports
    /// seen in the first fragment (`Some(None)` when it had none).
    fn reassemble(&mut self, s: &Summary) -> Option<Option<(u16, u16)>> {
        let key = (s.ip_version, s.src, s.dst, s.id, s.proto);
        let d = self.pending.entry(key).or_default();
        let start = s.frag_offset as u32;
        let end = start + (s.total_len as u32).saturating_sub(s.hdr_len as u32);
        d.have.push((start, end));
        if !s.mf {
            d.total = Some(end);
        }
        if start == 0 {
            d.ports = (s.l4 != 0).then_some((s.sport, s.dport));
        }
        if !d.complete() {
            return None;
        }
        let ports = d.ports;
        self.pending.remove(&key);
        Some(ports)
    }
}

impl Conversations {
    /// The TCP conversations with one end in `home` (this host's networks), as the detectors take
    /// connections: bytes this host sent and received, first to last packet. Offline, where no
    /// kernel says which connections are the host's.
    pub fn home_connections(&self, home: &crate::cidr::CidrSet) -> Vec<crate::detect::ConnSummary> {
        let mut out = Vec::new();
        for cv in self.tcp.sorted() {
            let (local, lp, remote, rp, sent, recv) = if home.contains(cv.a) {
                (cv.a, cv.a_port, cv.b, cv.b_port, cv.bytes_ab, cv.bytes_ba)
            } else if home.contains(cv.b) {
                (cv.b, cv.b_port, cv.a, cv.a_port, cv.bytes_ba, cv.bytes_ab)
            } else {
                continue;
            };
            out.push(crate::detect::ConnSummary {
                local,
                local_port: lp,
                remote,
                remote_port: rp,
                proto: 6,
                bytes_sent: sent,
                bytes_received: recv,
                start_ns: cv.first_ns,
                end_ns: cv.last_ns,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Ip, Udp};
    use std::net::Ipv4Addr;

    fn pkt(src: u8, dst: u8, len: u32, ts: u64, frag: Option<(u32, u16, bool)>, udp: Option<(u16, u16)>) -> Packet {
        let (id, off, mf) = frag.unwrap_or((0, 0, false));
        Packet {
            ts_ns: ts,
            ifindex: 0,
            iface: String::new(),
            rx_queue: 0,
            len,
            malformed: None,
            eth: None,
            vlans: vec![],
            arp: None,
            ip: Some(Ip {
                version: 4,
                src: Ipv4Addr::new(10, 0, 0, src).into(),
                dst: Ipv4Addr::new(10, 0, 0, dst).into(),
                ttl: 64,
                dscp: 0,
                ecn: 0,
                id,
                df: false,
                mf,
                frag_offset: off,
                fragment: frag.is_some(),
                proto: 17,
                hdr_len: 20,
                total_len: (len - 14) as u16,
                options: false,
                flow_label: 0,
                ext_headers: vec![],
            }),
            tcp: None,
            udp: udp.map(|(s, d)| Udp { sport: s, dport: d, len: 0 }),
            icmp: None,
            payload_offset: 0,
            firewall: None,
            payload: vec![],
        }
    }

    #[test]
    fn both_directions_fold_into_one_row_with_the_first_source_as_a() {
        let mut c = Conversations::default();
        c.add(&pkt(2, 1, 100, 5, None, Some((53, 1000))));
        c.add(&pkt(1, 2, 60, 9, None, Some((1000, 53))));
        c.add(&pkt(1, 2, 70, 7, None, Some((1000, 53))));
        let ip = c.ip.sorted();
        assert_eq!(ip.len(), 1);
        assert_eq!((ip[0].a, ip[0].frames_ab, ip[0].bytes_ab, ip[0].frames_ba, ip[0].bytes_ba), (Ipv4Addr::new(10, 0, 0, 2).into(), 1, 100, 2, 130));
        assert_eq!((ip[0].first_ns, ip[0].last_ns), (5, 9));
        let u = c.udp.sorted();
        assert_eq!((u[0].a_port, u[0].b_port, u[0].frames()), (53, 1000, 3));
    }

    #[test]
    fn a_fragmented_datagram_counts_once_in_the_completing_frame() {
        let mut c = Conversations::default();
        // 128-byte UDP datagram in two fragments (the second arrives first), one never completed.
        c.add(&pkt(1, 2, 14 + 20 + 64, 1, Some((7, 64, false)), None));
        c.add(&pkt(1, 2, 14 + 20 + 64, 2, Some((7, 0, true)), Some((1000, 53))));
        c.add(&pkt(1, 2, 14 + 20 + 64, 3, Some((8, 0, true)), Some((1000, 53))));
        assert_eq!(c.ip.sorted()[0].frames(), 3);
        let u = c.udp.sorted();
        assert_eq!((u.len(), u[0].frames(), u[0].bytes(), u[0].first_ns), (1, 1, 98, 2));
    }

    #[test]
    fn an_ipv6_fragment_counts_in_conv_ipv6_only_when_it_completes_the_datagram() {
        let mut c = Conversations::default();
        let v6 = |mut p: Packet| {
            let ip = p.ip.as_mut().unwrap();
            ip.version = 6;
            ip.src = "2001:2::1".parse().unwrap();
            ip.dst = "2001:2::2".parse().unwrap();
            p
        };
        c.add(&v6(pkt(1, 2, 14 + 20 + 64, 1, Some((7, 0, true)), Some((1000, 53)))));
        assert!(c.ipv6.is_empty());
        c.add(&v6(pkt(1, 2, 14 + 20 + 32, 2, Some((7, 64, false)), None)));
        let t = c.ipv6.sorted();
        assert_eq!((t[0].frames(), t[0].bytes()), (1, 66));
        assert_eq!(c.udp.sorted()[0].bytes(), 66);
    }

    #[test]
    fn sorting_is_by_bytes_then_frames_then_endpoints() {
        let mut t = ConvTable::default();
        let a: IpAddr = Ipv4Addr::new(1, 1, 1, 1).into();
        let b: IpAddr = Ipv4Addr::new(2, 2, 2, 2).into();
        t.add(a, 0, b, 0, 10, 0);
        t.add(b, 0, a, 1, 10, 0);
        t.add(a, 0, a, 2, 50, 0);
        let v = t.sorted();
        assert_eq!(v.iter().map(|c| (c.a_port, c.b_port)).collect::<Vec<_>>(), vec![(0, 2), (0, 0), (0, 1)]);
    }
}
