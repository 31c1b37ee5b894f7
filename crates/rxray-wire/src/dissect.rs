//! Frame → `Packet`: a line-by-line mirror of the XDP parser (parse_frame, rxray_parse_ipv4/ipv6/l4,
//! the TCP option walk and the payload copy), so a capture dissects exactly as live traffic does.
//!
//! Offsets (`payload_offset`) are byte offsets into the frame as captured, link-layer header
//! included: for Ethernet that is what the kernel reports; for Linux cooked captures (SLL: 16
//! bytes, SLL2: 20 bytes) the L3 header starts after the cooked header; for raw IP (101, 228, 229)
//! it starts at 0. Non-Ethernet link types give `eth: None`. A cooked header cut short counts as
//! `eth_truncated`. Raw IP (101) is IPv6 when the version nibble is 6 and IPv4 otherwise (so a
//! bad version is `ipv4_bad_header`). SLL2 carries an interface index: it becomes `ifindex`.
//!
//! One deliberate extension for captures: when the capture cut the frame (captured < original
//! length), the "IP datagram fits in the frame" checks use the original length, so a snapped
//! capture is not reported as `ipv4_truncated`; headers beyond the captured bytes still count as
//! truncated. With captured == original length (always the case in the kernel) this is the
//! kernel's rule exactly.
use crate::view::{
    ArpEthIpv4, ArpHeader, EthernetHeader, IcmpHeader, Ipv4Header, Ipv6Ext, Ipv6Header, TcpHeader, UdpHeader, VlanTag,
};
use crate::{LinkType, MALFORMED_NAMES, MAX_IPV6_EXT, MAX_VLANS, PAYLOAD_MAX};
use crate::{
    MAL_ARP_TRUNC, MAL_ETH_TRUNC, MAL_ICMP_TRUNC, MAL_IPV4_HDR, MAL_IPV4_TRUNC, MAL_IPV6_EXT_CHAIN, MAL_IPV6_EXT_TRUNC, MAL_IPV6_HDR,
    MAL_IPV6_TRUNC, MAL_TCP_HDR, MAL_TCP_OPT, MAL_TCP_TRUNC, MAL_UDP_LEN, MAL_UDP_TRUNC, MAL_VLAN_DEPTH, MAL_VLAN_TRUNC,
};
use crate::event::{Packet, Vlan};
use crate::flat::Flat as Ev;
use crate::flat::{
    FRAG_DF, FRAG_MF, L_ARP, L_ETH, L_FRAG, L_ICMP, L_ICMPV6, L_IPV4, L_IPV6, L_IP_OPTS, L_QINQ, L_TCP, L_UDP, L_VLAN, TCPOPT_MSS, TCPOPT_SACK,
    TCPOPT_SACK_OK, TCPOPT_TS, TCPOPT_WSCALE,
};
use std::net::IpAddr;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;

const TCP_OPT_MAX: usize = 40;

/// Dissects one frame into a new `Packet`. `wire_len` is the original length (pcap orig_len),
/// `snap` the payload bytes to keep (at most [`PAYLOAD_MAX`]). `ifindex` is 0 unless the link
/// type carries one (SLL2), `rx_queue` 0: callers set them from the capture's metadata.
pub fn dissect(frame: &[u8], linktype: LinkType, ts_ns: u64, wire_len: u32, iface: &str, snap: usize) -> Packet {
    let mut p = empty_packet();
    dissect_into(&mut p, frame, linktype, ts_ns, wire_len, iface, snap);
    p
}

/// A packet with every field empty, to reuse with [`dissect_into`].
pub fn empty_packet() -> Packet {
    Packet {
        ts_ns: 0,
        ifindex: 0,
        iface: String::new(),
        rx_queue: 0,
        len: 0,
        malformed: None,
        eth: None,
        vlans: Vec::new(),
        arp: None,
        ip: None,
        tcp: None,
        udp: None,
        icmp: None,
        payload_offset: 0,
        firewall: None,
        payload: Vec::new(),
    }
}

/// Like [`dissect`], but overwrites `out` in place and reuses its buffers: no allocation once the
/// buffers have grown (the per-packet path of `rxray analyze`).
pub fn dissect_into(
    out: &mut Packet,
    frame: &[u8],
    linktype: LinkType,
    ts_ns: u64,
    wire_len: u32,
    iface: &str,
    snap: usize,
) {
    let (e, mal) = parse(frame, linktype, wire_len);
    fill(out, &e, mal, frame, ts_ns, wire_len, iface, snap.min(PAYLOAD_MAX));
}

/// Like [`dissect_into`], but the payload is kept whole (up to the captured bytes and the IP
/// datagram's end), not cut at [`PAYLOAD_MAX`]: what signatures inspect (Suricata matches the
/// whole packet payload), from capture files and from the kernel's capture ring.
pub fn dissect_into_whole(out: &mut Packet, frame: &[u8], linktype: LinkType, ts_ns: u64, wire_len: u32, iface: &str) {
    let (e, mal) = parse(frame, linktype, wire_len);
    fill(out, &e, mal, frame, ts_ns, wire_len, iface, usize::MAX);
}

/// What `rxray analyze` needs of a frame, without building a `Packet` (same parser, same
/// results as [`dissect`]: [`Summary::of_packet`] of the dissected packet equals this).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The malformed category (index into `MALFORMED_NAMES`), 0 when the frame parsed cleanly.
    pub malformed: u16,
    pub arp: bool,
    /// 4 or 6 when an IP header parsed, else 0.
    pub ip_version: u8,
    /// Upper-layer protocol (after any IPv6 extension headers).
    pub proto: u8,
    /// Addresses; IPv4 in the first 4 bytes, the rest zero.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub fragment: bool,
    pub mf: bool,
    pub frag_offset: u16,
    pub id: u32,
    pub hdr_len: u16,
    pub total_len: u16,
    /// 6 when a TCP header parsed, 17 for UDP, else 0 (then the ports are 0).
    pub l4: u8,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    /// Innermost VLAN id (0 when untagged).
    pub vlan: u16,
    /// SLL2's interface index, else 0.
    pub ifindex: u32,
}

impl Summary {
    pub fn malformed_name(&self) -> Option<&'static str> {
        (self.malformed != 0).then(|| MALFORMED_NAMES.get(self.malformed as usize).copied().unwrap_or("unknown"))
    }

    /// The same facts, from a dissected packet.
    pub fn of_packet(p: &Packet) -> Summary {
        let mut s = Summary {
            malformed: p.malformed.map_or(0, |m| MALFORMED_NAMES.iter().position(|n| *n == m).unwrap_or(u16::MAX as usize) as u16),
            arp: p.arp.is_some(),
            vlan: p.vlans.last().map_or(0, |v| v.vid),
            ifindex: p.ifindex,
            ..Default::default()
        };
        if let Some(ip) = &p.ip {
            s.ip_version = ip.version;
            s.proto = ip.proto;
            s.src = addr_bytes(ip.src);
            s.dst = addr_bytes(ip.dst);
            s.fragment = ip.fragment;
            s.mf = ip.mf;
            s.frag_offset = ip.frag_offset;
            s.id = ip.id;
            s.hdr_len = ip.hdr_len;
            s.total_len = ip.total_len;
        }
        if let Some(t) = &p.tcp {
            (s.l4, s.sport, s.dport, s.tcp_flags) = (PROTO_TCP, t.sport, t.dport, t.flags);
        } else if let Some(u) = &p.udp {
            (s.l4, s.sport, s.dport) = (PROTO_UDP, u.sport, u.dport);
        }
        s
    }
}

/// An address as 16 bytes (IPv4 in the first 4).
pub fn addr_bytes(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v.octets());
            b
        }
        IpAddr::V6(v) => v.octets(),
    }
}

/// Parses a frame into a [`Summary`] (the per-packet path of `rxray analyze`).
pub fn summarize(frame: &[u8], linktype: LinkType, wire_len: u32) -> Summary {
    let (e, mal) = parse(frame, linktype, wire_len);
    let l = e.layers;
    let ip = l & (L_IPV4 | L_IPV6) != 0;
    let l4 = if l & L_TCP != 0 {
        PROTO_TCP
    } else if l & L_UDP != 0 {
        PROTO_UDP
    } else {
        0
    };
    let n = (e.vlan_count as usize).min(MAX_VLANS);
    Summary {
        malformed: mal,
        arp: l & L_ARP != 0,
        ip_version: if ip { e.ip_ver } else { 0 },
        proto: if ip { e.l4_proto } else { 0 },
        src: if ip { e.saddr } else { [0; 16] },
        dst: if ip { e.daddr } else { [0; 16] },
        fragment: ip && l & L_FRAG != 0,
        mf: ip && e.frag_flags & FRAG_MF != 0,
        frag_offset: if ip { e.frag_off } else { 0 },
        id: if ip { e.ip_id } else { 0 },
        hdr_len: if ip { e.ip_hdr_len } else { 0 },
        total_len: if ip { e.ip_total_len } else { 0 },
        l4,
        sport: if l4 != 0 { e.sport } else { 0 },
        dport: if l4 != 0 { e.dport } else { 0 },
        tcp_flags: if l4 == PROTO_TCP { e.tcp_flags } else { 0 },
        vlan: if n > 0 { Vlan::from_tci(e.vlan_tpid[n - 1], e.vlan_tci[n - 1]).vid } else { 0 },
        ifindex: e.ifindex.unwrap_or(0),
    }
}

/// One TCP segment of a frame, as reassembly needs it: addresses, ports, sequence number, flags and
/// where the payload is. `payload` is the captured part (a snap length may cut it); `wire_payload_len`
/// is what the segment carried on the wire, so the bytes a capture left out are known and counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSegmentView {
    /// 4 or 6.
    pub ip_version: u8,
    /// Addresses; IPv4 in the first 4 bytes, the rest zero.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// Byte range of the captured payload in the frame.
    pub payload: std::ops::Range<usize>,
    pub wire_payload_len: u32,
}

/// The TCP segment a frame carries (same parser as [`dissect`]), or `None` when the frame is not a
/// cleanly parsed, unfragmented TCP segment.
pub fn tcp_segment(frame: &[u8], linktype: LinkType, wire_len: u32) -> Option<TcpSegmentView> {
    let (e, mal) = parse(frame, linktype, wire_len);
    if mal != 0 || e.layers & L_TCP == 0 || e.layers & L_FRAG != 0 {
        return None;
    }
    let wire_payload_len = (e.l4_len as u32).saturating_sub(e.tcp_hdr_len as u32);
    let start = (e.payload_off as usize).min(frame.len());
    let end = (start + wire_payload_len as usize).min(frame.len());
    Some(TcpSegmentView {
        ip_version: e.ip_ver,
        src: e.saddr,
        dst: e.daddr,
        sport: e.sport,
        dport: e.dport,
        seq: e.tcp_seq,
        ack: e.tcp_ack,
        flags: e.tcp_flags,
        payload: start..end,
        wire_payload_len,
    })
}

/// The parser proper: the kernel's record and the malformed category.
fn parse(frame: &[u8], linktype: LinkType, wire_len: u32) -> (Ev, u16) {
    let mut e = Ev::default();
    // The datagram-fits check uses the original length when the capture cut the frame (see above).
    let limit = frame.len().max(wire_len as usize);
    let mal = match linktype {
        LinkType::ETHERNET => parse_ethernet(frame, limit, &mut e),
        LinkType::RAW => match frame.first() {
            Some(b) if b >> 4 == 6 => parse_l3(frame, 0, ETH_P_IPV6, limit, &mut e),
            _ => parse_l3(frame, 0, ETH_P_IP, limit, &mut e),
        },
        LinkType::IPV4 => parse_l3(frame, 0, ETH_P_IP, limit, &mut e),
        LinkType::IPV6 => parse_l3(frame, 0, ETH_P_IPV6, limit, &mut e),
        LinkType::LINUX_SLL => match crate::view::bytes_at(frame, 0, 16) {
            Ok(h) => parse_tags(frame, 16, u16::from_be_bytes([h[14], h[15]]), limit, &mut e),
            Err(_) => MAL_ETH_TRUNC,
        },
        LinkType::LINUX_SLL2 => match crate::view::bytes_at(frame, 0, 20) {
            Ok(h) => {
                e.ifindex = Some(u32::from_be_bytes([h[4], h[5], h[6], h[7]]));
                parse_tags(frame, 20, u16::from_be_bytes([h[0], h[1]]), limit, &mut e)
            }
            Err(_) => MAL_ETH_TRUNC,
        },
        _ => 0,
    };
    (e, mal)
}

fn parse_ethernet(b: &[u8], limit: usize, e: &mut Ev) -> u16 {
    let Ok(eth) = EthernetHeader::new_checked(b, 0) else {
        return MAL_ETH_TRUNC;
    };
    e.layers |= L_ETH;
    e.dst_mac = eth.dst();
    e.src_mac = eth.src();
    parse_tags(b, EthernetHeader::LEN, eth.ethertype(), limit, e)
}

/// VLAN tags starting at `off` (where `proto`, the ethertype just read, points), then L3.
fn parse_tags(b: &[u8], mut off: usize, mut proto: u16, limit: usize, e: &mut Ev) -> u16 {
    e.eth_proto = proto;
    e.payload_off = off as u16;
    for i in 0..=MAX_VLANS {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        if i == MAX_VLANS {
            return MAL_VLAN_DEPTH;
        }
        let Ok(tag) = VlanTag::new_checked(b, off) else {
            return MAL_VLAN_TRUNC;
        };
        e.layers |= if proto == ETH_P_8021AD { L_QINQ | L_VLAN } else { L_VLAN };
        e.vlan_tpid[i] = proto;
        e.vlan_tci[i] = tag.tci();
        e.vlan_count = i as u8 + 1;
        proto = tag.ethertype();
        off += VlanTag::LEN;
        e.eth_proto = proto;
        e.payload_off = off as u16;
    }
    parse_l3(b, off, proto, limit, e)
}

fn parse_l3(b: &[u8], off: usize, proto: u16, limit: usize, e: &mut Ev) -> u16 {
    e.l3_off = off;
    match proto {
        ETH_P_IP => parse_ipv4(b, off, limit, e),
        ETH_P_IPV6 => parse_ipv6(b, off, limit, e),
        ETH_P_ARP => parse_arp(b, off, e),
        _ => 0,
    }
}

fn parse_arp(b: &[u8], mut off: usize, e: &mut Ev) -> u16 {
    let Ok(ah) = ArpHeader::new_checked(b, off) else {
        return MAL_ARP_TRUNC;
    };
    e.layers |= L_ARP;
    e.arp_op = ah.op();
    off += ArpHeader::LEN;
    if ah.htype() == 1 && ah.ptype() == ETH_P_IP && ah.hlen() == 6 && ah.plen() == 4 {
        let Ok(body) = ArpEthIpv4::new_checked(b, off) else {
            return MAL_ARP_TRUNC;
        };
        e.arp_sha = body.sha();
        e.saddr[..4].copy_from_slice(&body.spa());
        e.arp_tha = body.tha();
        e.daddr[..4].copy_from_slice(&body.tpa());
        off += ArpEthIpv4::LEN;
    }
    e.payload_off = off as u16;
    0
}

fn parse_ipv4(b: &[u8], off: usize, limit: usize, e: &mut Ev) -> u16 {
    let Ok(ip) = Ipv4Header::new_checked(b, off) else {
        return MAL_IPV4_TRUNC;
    };
    if ip.version() != 4 || ip.ihl() < 5 {
        return MAL_IPV4_HDR;
    }
    let hlen = ip.ihl() as usize * 4;
    let tot = ip.total_len() as usize;
    if tot < hlen {
        return MAL_IPV4_HDR;
    }
    if off + tot > limit {
        return MAL_IPV4_TRUNC;
    }
    e.layers |= L_IPV4;
    if hlen > Ipv4Header::LEN {
        e.layers |= L_IP_OPTS;
    }
    e.ip_ver = 4;
    e.ip_hdr_len = hlen as u16;
    e.ip_total_len = tot as u16;
    e.ttl = ip.ttl();
    e.tos = ip.tos();
    e.l4_proto = ip.protocol();
    e.ip_id = ip.id() as u32;
    let fo = ip.frag_field();
    e.frag_off = (fo & 0x1fff) * 8;
    if fo & 0x4000 != 0 {
        e.frag_flags |= FRAG_DF;
    }
    if fo & 0x2000 != 0 {
        e.frag_flags |= FRAG_MF;
    }
    if fo & 0x3fff != 0 {
        e.layers |= L_FRAG;
    }
    e.saddr[..4].copy_from_slice(&ip.src());
    e.daddr[..4].copy_from_slice(&ip.dst());
    e.payload_off = (off + hlen) as u16;
    // A later fragment has no L4 header: its bytes are all payload.
    if e.frag_off != 0 {
        return 0;
    }
    parse_l4(b, off + hlen, off + tot, e)
}

fn is_ipv6_ext(nh: u8) -> bool {
    matches!(nh, 0 | 43 | 44 | 60 | 51)
}

fn parse_ipv6(b: &[u8], off: usize, limit: usize, e: &mut Ev) -> u16 {
    let Ok(ip6) = Ipv6Header::new_checked(b, off) else {
        return MAL_IPV6_TRUNC;
    };
    if ip6.version() != 6 {
        return MAL_IPV6_HDR;
    }
    let end = off + Ipv6Header::LEN + ip6.payload_len() as usize;
    if end > limit {
        return MAL_IPV6_TRUNC;
    }
    let w0 = ip6.word0();
    e.layers |= L_IPV6;
    e.ip_ver = 6;
    e.tos = ((w0 >> 20) & 0xff) as u8;
    e.flow_label = w0 & 0xfffff;
    e.ttl = ip6.hop_limit();
    // u16 like the kernel's field (it wraps only for datagrams no Ethernet frame can hold).
    e.ip_total_len = (end - off) as u16;
    e.saddr = ip6.src();
    e.daddr = ip6.dst();

    let mut nh = ip6.next_header();
    let mut pos = off + Ipv6Header::LEN;
    for i in 0..MAX_IPV6_EXT {
        if !is_ipv6_ext(nh) {
            break;
        }
        let h = match Ipv6Ext::new_checked(b, pos) {
            Ok(h) if pos + 8 <= end => h,
            _ => return MAL_IPV6_EXT_TRUNC,
        };
        let len = match nh {
            44 => {
                let fo = h.frag_field();
                e.layers |= L_FRAG;
                e.frag_off = fo & 0xfff8;
                if fo & 1 != 0 {
                    e.frag_flags |= FRAG_MF;
                }
                e.ip_id = h.frag_id();
                8
            }
            51 => (h.len_field() as usize + 2) * 4,
            _ => (h.len_field() as usize + 1) * 8,
        };
        if pos + len > end {
            return MAL_IPV6_EXT_TRUNC;
        }
        e.exts[i] = nh;
        e.ext_count = i as u8 + 1;
        nh = h.next_header();
        pos += len;
    }
    if is_ipv6_ext(nh) {
        return MAL_IPV6_EXT_CHAIN;
    }
    e.l4_proto = nh;
    e.ip_hdr_len = (pos - off) as u16;
    e.payload_off = pos as u16;
    if e.layers & L_FRAG != 0 && e.frag_off != 0 {
        return 0;
    }
    parse_l4(b, pos, end, e)
}

/// L4 at `off`; the IP payload ends at `end`.
fn parse_l4(b: &[u8], off: usize, end: usize, e: &mut Ev) -> u16 {
    let avail = end.saturating_sub(off);
    match e.l4_proto {
        PROTO_TCP => {
            let th = match TcpHeader::new_checked(b, off) {
                Ok(th) if TcpHeader::LEN <= avail => th,
                _ => return MAL_TCP_TRUNC,
            };
            let hlen = th.hdr_len();
            if hlen < TcpHeader::LEN {
                return MAL_TCP_HDR;
            }
            let Some(hdr) = b.get(off..off + hlen).filter(|_| hlen <= avail) else {
                return MAL_TCP_TRUNC;
            };
            e.layers |= L_TCP;
            e.sport = th.sport();
            e.dport = th.dport();
            e.tcp_seq = th.seq();
            e.tcp_ack = th.ack();
            e.tcp_window = th.window();
            e.tcp_flags = th.flags();
            e.tcp_hdr_len = hlen as u8;
            e.l4_len = avail as u16;
            if hlen > TcpHeader::LEN {
                let mal = tcp_options(&hdr[TcpHeader::LEN..], e);
                if mal != 0 {
                    return mal;
                }
            }
            e.payload_off = (off + hlen) as u16;
            0
        }
        PROTO_UDP => {
            let uh = match UdpHeader::new_checked(b, off) {
                Ok(uh) if UdpHeader::LEN <= avail => uh,
                _ => return MAL_UDP_TRUNC,
            };
            e.layers |= L_UDP;
            e.sport = uh.sport();
            e.dport = uh.dport();
            let ulen = uh.length();
            e.l4_len = ulen;
            // A first fragment carries the whole datagram's length; only check unfragmented ones.
            if e.layers & L_FRAG == 0 && ((ulen as usize) < UdpHeader::LEN || ulen as usize > avail) {
                return MAL_UDP_LEN;
            }
            e.payload_off = (off + UdpHeader::LEN) as u16;
            0
        }
        PROTO_ICMP | PROTO_ICMPV6 => {
            let ih = match IcmpHeader::new_checked(b, off) {
                Ok(ih) if IcmpHeader::LEN <= avail => ih,
                _ => return MAL_ICMP_TRUNC,
            };
            let v4 = e.l4_proto == PROTO_ICMP;
            e.layers |= if v4 { L_ICMP } else { L_ICMPV6 };
            e.icmp_type = ih.ty();
            e.icmp_code = ih.code();
            e.l4_len = avail as u16;
            let echo = if v4 { matches!(ih.ty(), 0 | 8) } else { matches!(ih.ty(), 128 | 129) };
            if echo {
                e.icmp_id = ih.echo_id();
                e.icmp_seq = ih.echo_seq();
            }
            e.payload_off = (off + IcmpHeader::LEN) as u16;
            0
        }
        _ => 0,
    }
}

/// The TCP option walk (tcp_opt_step): one option per step, at most 40 steps; what parsed before
/// a bad option is kept.
fn tcp_options(opts: &[u8], e: &mut Ev) -> u16 {
    let len = opts.len().min(TCP_OPT_MAX);
    let mut i = 0usize;
    let mut mal = 0;
    for _ in 0..TCP_OPT_MAX {
        if i >= len {
            break;
        }
        let kind = opts[i];
        if kind == 0 {
            break;
        }
        if kind == 1 {
            i += 1;
            continue;
        }
        if i + 1 >= len {
            mal = MAL_TCP_OPT;
            break;
        }
        let olen = opts[i + 1] as usize;
        if olen < 2 || i + olen > len {
            mal = MAL_TCP_OPT;
            break;
        }
        let v = &opts[i + 2..i + olen];
        let ok = match kind {
            2 if olen == 4 => {
                e.tcp_mss = u16::from_be_bytes([v[0], v[1]]);
                e.tcp_opts |= TCPOPT_MSS;
                true
            }
            3 if olen == 3 => {
                e.tcp_wscale = v[0];
                e.tcp_opts |= TCPOPT_WSCALE;
                true
            }
            4 if olen == 2 => {
                e.tcp_opts |= TCPOPT_SACK_OK;
                true
            }
            5 => {
                e.tcp_opts |= TCPOPT_SACK;
                true
            }
            8 if olen == 10 => {
                e.tcp_tsval = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
                e.tcp_tsecr = u32::from_be_bytes([v[4], v[5], v[6], v[7]]);
                e.tcp_opts |= TCPOPT_TS;
                true
            }
            2 | 3 | 4 | 8 => false,
            _ => true,
        };
        if !ok {
            mal = MAL_TCP_OPT;
            break;
        }
        i += olen;
    }
    mal
}

/// The address in a 16-byte field (the one definition is `flat::ip_from`).
pub use crate::flat::ip_from;

/// The kernel's payload copy plus user space's decode, into `out` (reusing its buffers).
#[allow(clippy::too_many_arguments)]
fn fill(out: &mut Packet, e: &Ev, mal: u16, frame: &[u8], ts_ns: u64, wire_len: u32, iface: &str, snap: usize) {
    out.ts_ns = ts_ns;
    out.ifindex = e.ifindex.unwrap_or(0);
    if out.iface != iface {
        out.iface.clear();
        out.iface.push_str(iface);
    }
    out.rx_queue = 0;
    out.len = wire_len;
    out.malformed = (mal != 0).then(|| MALFORMED_NAMES.get(mal as usize).copied().unwrap_or("unknown"));
    crate::flat::fill_layers(out, e);

    // The payload: bytes after the last parsed header, up to the IP datagram's end (no Ethernet
    // padding) when IP parsed cleanly, else up to the frame's end.
    let mut stop = frame.len();
    if e.ip_ver != 0 && mal == 0 {
        stop = stop.min(e.l3_off + e.ip_total_len as usize);
    }
    let start = e.payload_off as usize;
    out.payload.clear();
    if start < stop {
        let n = (stop - start).min(snap);
        out.payload.extend_from_slice(&frame[start..start + n]);
    }
}

#[cfg(test)]
mod tests;
