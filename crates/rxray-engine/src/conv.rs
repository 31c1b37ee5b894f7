//! Conversation tables with Wireshark's semantics (`tshark -z conv,ip|ipv6|tcp|udp`): one row per
//! unordered endpoint pair, frames and bytes (original frame lengths) in each direction.
//!
//! As tshark (with its default IP reassembly) does, a fragmented TCP/UDP datagram counts in the
//! TCP/UDP table once, in the frame that completes it, with that frame's length; every fragment
//! still counts in the IP table. `Conversations::add` does that from `Packet`s.
use crate::event::Packet;
use foldhash::fast::FixedState;
use serde::Serialize;
use std::collections::HashMap;
use std::net::IpAddr;

type FastMap<K, V> = HashMap<K, V, FixedState>;

/// One conversation. A is the source of the first frame seen, as in Wireshark.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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

/// Conversations keyed by an unordered endpoint pair.
#[derive(Clone, Debug, Default)]
pub struct ConvTable {
    index: FastMap<(IpAddr, u16, IpAddr, u16), usize>,
    convs: Vec<Conversation>,
}

impl ConvTable {
    /// Counts one frame from (src, sport) to (dst, dport).
    pub fn add(&mut self, src: IpAddr, sport: u16, dst: IpAddr, dport: u16, bytes: u64, ts_ns: u64) {
        let key = if (src, sport) <= (dst, dport) { (src, sport, dst, dport) } else { (dst, dport, src, sport) };
        let convs = &mut self.convs;
        let i = *self.index.entry(key).or_insert_with(|| {
            convs.push(Conversation {
                a: src,
                a_port: sport,
                b: dst,
                b_port: dport,
                frames_ab: 0,
                bytes_ab: 0,
                frames_ba: 0,
                bytes_ba: 0,
                first_ns: ts_ns,
                last_ns: ts_ns,
            });
            convs.len() - 1
        });
        let c = &mut self.convs[i];
        if c.a == src && c.a_port == sport {
            c.frames_ab += 1;
            c.bytes_ab += bytes;
        } else {
            c.frames_ba += 1;
            c.bytes_ba += bytes;
        }
        c.first_ns = c.first_ns.min(ts_ns);
        c.last_ns = c.last_ns.max(ts_ns);
    }

    pub fn len(&self) -> usize {
        self.convs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.convs.is_empty()
    }

    /// Every conversation, most bytes first (then most frames, then by endpoints): deterministic.
    pub fn sorted(&self) -> Vec<Conversation> {
        let mut v = self.convs.clone();
        v.sort_by(|x, y| {
            y.bytes()
                .cmp(&x.bytes())
                .then(y.frames().cmp(&x.frames()))
                .then((x.a, x.a_port, x.b, x.b_port).cmp(&(y.a, y.a_port, y.b, y.b_port)))
        });
        v
    }
}

/// One IP datagram being put back together from its fragments.
#[derive(Debug, Default)]
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

/// The four tables tshark prints, fed from `Packet`s.
#[derive(Debug, Default)]
pub struct Conversations {
    pub ip: ConvTable,
    pub ipv6: ConvTable,
    pub tcp: ConvTable,
    pub udp: ConvTable,
    /// Fragmented TCP/UDP datagrams not complete yet: (version, src, dst, id, proto).
    pending: FastMap<(IpAddr, IpAddr, u32, u8), Datagram>,
}

impl Conversations {
    pub fn add(&mut self, p: &Packet) {
        let Some(ip) = &p.ip else { return };
        let bytes = p.len as u64;
        let v4 = ip.version == 4;
        let l4 = matches!(ip.proto, 6 | 17);
        if !ip.fragment {
            let t = if v4 { &mut self.ip } else { &mut self.ipv6 };
            t.add(ip.src, 0, ip.dst, 0, bytes, p.ts_ns);
            let ports = p.tcp.map(|t| (t.sport, t.dport)).or(p.udp.map(|u| (u.sport, u.dport)));
            self.add_l4(ip.proto, ip.src, ip.dst, ports, bytes, p.ts_ns);
            return;
        }
        // tshark counts every IPv4 fragment in conv,ip, but an IPv6 fragment only in the frame
        // that completes its datagram; TCP/UDP always in that frame.
        if v4 {
            self.ip.add(ip.src, 0, ip.dst, 0, bytes, p.ts_ns);
            if !l4 {
                return;
            }
        }
        if let Some(ports) = self.reassemble(p) {
            if !v4 {
                self.ipv6.add(ip.src, 0, ip.dst, 0, bytes, p.ts_ns);
            }
            self.add_l4(ip.proto, ip.src, ip.dst, ports, bytes, p.ts_ns);
        }
    }

    fn add_l4(&mut self, proto: u8, src: IpAddr, dst: IpAddr, ports: Option<(u16, u16)>, bytes: u64, ts_ns: u64) {
        let Some((sport, dport)) = ports else { return };
        match proto {
            6 => self.tcp.add(src, sport, dst, dport, bytes, ts_ns),
            17 => self.udp.add(src, sport, dst, dport, bytes, ts_ns),
            _ => {}
        }
    }

    /// Records one fragment; when this frame completes its datagram, returns the transport ports
    /// seen in the first fragment (`Some(None)` when it had none).
    fn reassemble(&mut self, p: &Packet) -> Option<Option<(u16, u16)>> {
        let ip = p.ip.as_ref()?;
        let key = (ip.src, ip.dst, ip.id, ip.proto);
        let d = self.pending.entry(key).or_default();
        let start = ip.frag_offset as u32;
        let end = start + (ip.total_len as u32).saturating_sub(ip.hdr_len as u32);
        d.have.push((start, end));
        if !ip.mf {
            d.total = Some(end);
        }
        if start == 0 {
            d.ports = p.tcp.map(|t| (t.sport, t.dport)).or(p.udp.map(|u| (u.sport, u.dport)));
        }
        if !d.complete() {
            return None;
        }
        let ports = d.ports;
        self.pending.remove(&key);
        Some(ports)
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
