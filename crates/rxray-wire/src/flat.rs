//! The flat facts of one parsed frame, field for field the header of the kernel's
//! `struct rxray_pkt_event` (rxray.h), and the one conversion from them to `Packet`'s layers: the
//! kernel's events (rxray-kernel's decode) and captures (`dissect`) both build packets here.
use crate::event::{Arp, Eth, Icmp, Ip, Packet, Tcp, Udp, Vlan};
use crate::{MAX_IPV6_EXT, MAX_VLANS};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// Layers (enum rxray_layer), fragment flags and TCP options seen (rxray.h). Defined here once:
// rxray-kernel's abi.rs re-exports them, and its tests/abi_btf.rs checks them against the BTF.
pub const L_ETH: u32 = 1 << 0;
pub const L_VLAN: u32 = 1 << 1;
pub const L_QINQ: u32 = 1 << 2;
pub const L_ARP: u32 = 1 << 3;
pub const L_IPV4: u32 = 1 << 4;
pub const L_IPV6: u32 = 1 << 5;
pub const L_IP_OPTS: u32 = 1 << 6;
pub const L_FRAG: u32 = 1 << 7;
pub const L_TCP: u32 = 1 << 8;
pub const L_UDP: u32 = 1 << 9;
pub const L_ICMP: u32 = 1 << 10;
pub const L_ICMPV6: u32 = 1 << 11;
pub const L_FRAG_PORTS: u32 = 1 << 12;
pub const FRAG_DF: u8 = 1 << 0;
pub const FRAG_MF: u8 = 1 << 1;
pub const TCPOPT_MSS: u8 = 1 << 0;
pub const TCPOPT_WSCALE: u8 = 1 << 1;
pub const TCPOPT_SACK_OK: u8 = 1 << 2;
pub const TCPOPT_SACK: u8 = 1 << 3;
pub const TCPOPT_TS: u8 = 1 << 4;

/// One frame's parsed header fields: the kernel's rxray_pkt_event minus what user space fills in.
/// The capture parser writes here first (zeroed like the kernel's record); `l3_off` and `ifindex`
/// are its own (the kernel's events leave them 0 and `None`).
#[derive(Default)]
pub struct Flat {
    pub layers: u32,
    pub payload_off: u16,
    pub eth_proto: u16,
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub vlan_tpid: [u16; MAX_VLANS],
    pub vlan_tci: [u16; MAX_VLANS],
    pub vlan_count: u8,
    pub ip_ver: u8,
    pub l4_proto: u8,
    pub ttl: u8,
    pub tos: u8,
    pub ext_count: u8,
    pub ip_hdr_len: u16,
    pub ip_total_len: u16,
    pub frag_flags: u8,
    pub tcp_flags: u8,
    pub ip_id: u32,
    pub frag_off: u16,
    pub arp_op: u16,
    pub flow_label: u32,
    pub exts: [u8; MAX_IPV6_EXT],
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub arp_sha: [u8; 6],
    pub arp_tha: [u8; 6],
    pub sport: u16,
    pub dport: u16,
    pub tcp_seq: u32,
    pub tcp_ack: u32,
    pub tcp_window: u16,
    pub tcp_opts: u8,
    pub tcp_wscale: u8,
    pub tcp_mss: u16,
    pub tcp_hdr_len: u8,
    pub icmp_type: u8,
    pub tcp_tsval: u32,
    pub tcp_tsecr: u32,
    pub icmp_code: u8,
    pub icmp_id: u16,
    pub icmp_seq: u16,
    pub l4_len: u16,
    /// Where L3 starts (the kernel's 14 + 4 * vlan_count for Ethernet).
    pub l3_off: usize,
    /// SLL2's interface index, when the link type carries one.
    pub ifindex: Option<u32>,
}

/// An address of `ver` (4: the first 4 bytes) from the event's 16-byte field.
pub fn ip_from(ver: u8, b: &[u8; 16]) -> IpAddr {
    if ver == 4 {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*b))
    }
}

/// Sets `out`'s layers (eth, vlans, arp, ip, tcp, udp, icmp) and payload offset from `e`, reusing
/// its buffers. Time, interface, length, malformed category and payload are the caller's.
pub fn fill_layers(out: &mut Packet, e: &Flat) {
    let l = e.layers;
    out.eth = (l & L_ETH != 0).then_some(Eth { src: e.src_mac, dst: e.dst_mac, ethertype: e.eth_proto });
    out.vlans.clear();
    out.vlans.extend((0..(e.vlan_count as usize).min(MAX_VLANS)).map(|i| Vlan::from_tci(e.vlan_tpid[i], e.vlan_tci[i])));
    out.arp = (l & L_ARP != 0).then(|| Arp {
        op: e.arp_op,
        sha: e.arp_sha,
        spa: ip_from(4, &e.saddr),
        tha: e.arp_tha,
        tpa: ip_from(4, &e.daddr),
    });
    let old_ip = out.ip.take();
    if l & (L_IPV4 | L_IPV6) != 0 {
        let mut ext_headers = old_ip.map(|ip| ip.ext_headers).unwrap_or_default();
        ext_headers.clear();
        ext_headers.extend_from_slice(&e.exts[..(e.ext_count as usize).min(MAX_IPV6_EXT)]);
        out.ip = Some(Ip {
            version: e.ip_ver,
            src: ip_from(e.ip_ver, &e.saddr),
            dst: ip_from(e.ip_ver, &e.daddr),
            ttl: e.ttl,
            dscp: e.tos >> 2,
            ecn: e.tos & 3,
            id: e.ip_id,
            df: e.frag_flags & FRAG_DF != 0,
            mf: e.frag_flags & FRAG_MF != 0,
            frag_offset: e.frag_off,
            fragment: l & L_FRAG != 0,
            proto: e.l4_proto,
            hdr_len: e.ip_hdr_len,
            total_len: e.ip_total_len,
            options: l & L_IP_OPTS != 0,
            flow_label: e.flow_label,
            ext_headers,
        });
    }
    let o = e.tcp_opts;
    out.tcp = (l & L_TCP != 0).then_some(Tcp {
        sport: e.sport,
        dport: e.dport,
        seq: e.tcp_seq,
        ack: e.tcp_ack,
        flags: e.tcp_flags,
        window: e.tcp_window,
        hdr_len: e.tcp_hdr_len,
        mss: (o & TCPOPT_MSS != 0).then_some(e.tcp_mss),
        wscale: (o & TCPOPT_WSCALE != 0).then_some(e.tcp_wscale),
        sack_ok: o & TCPOPT_SACK_OK != 0,
        sack: o & TCPOPT_SACK != 0,
        ts: (o & TCPOPT_TS != 0).then_some((e.tcp_tsval, e.tcp_tsecr)),
    });
    out.udp = (l & L_UDP != 0).then_some(Udp { sport: e.sport, dport: e.dport, len: e.l4_len });
    out.icmp = (l & (L_ICMP | L_ICMPV6) != 0).then(|| {
        let v6 = l & L_ICMPV6 != 0;
        let echo = if v6 { matches!(e.icmp_type, 128 | 129) } else { matches!(e.icmp_type, 0 | 8) };
        Icmp { v6, ty: e.icmp_type, code: e.icmp_code, echo: echo.then_some((e.icmp_id, e.icmp_seq)) }
    });
    out.payload_offset = e.payload_off;
}
