//! A small packet *builder* (never a parser) so tests craft frames whose every field they chose.
//! Lengths and checksums are computed; everything else is taken verbatim from the caller.
//!
//! Written by hand rather than with a packet crate on purpose: expected values in rxray's tests
//! must not come from code that also parses, and malformed frames need raw control.
//! Misuse that cannot give a well-formed frame (an IPv4 option list that is not a multiple of 4,
//! a fragment offset that is not a multiple of 8, ...) panics with a message: this is test code.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub type Mac = [u8; 6];

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q customer tag.
pub const TPID_8021Q: u16 = 0x8100;
/// 802.1ad service tag (outer tag of QinQ).
pub const TPID_8021AD: u16 = 0x88a8;

/// IP protocol / IPv6 next-header numbers.
pub mod ipproto {
    pub const HOPOPTS: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ICMPV6: u8 = 58;
    pub const NONE: u8 = 59;
    pub const DSTOPTS: u8 = 60;
}

/// TCP flag bits as they sit in byte 13 of the TCP header.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eth {
    pub dst: Mac,
    pub src: Mac,
}

/// One VLAN tag: `tpid` is [`TPID_8021Q`] or [`TPID_8021AD`] (or anything a test wants),
/// `tci` is PCP(3) | DEI(1) | VID(12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vlan {
    pub tpid: u16,
    pub tci: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub tos: u8,
    pub id: u16,
    pub df: bool,
    pub mf: bool,
    /// Fragment offset in bytes; must be a multiple of 8.
    pub frag_off_bytes: u16,
    /// Raw option bytes, already padded by the caller to a multiple of 4 (at most 40).
    pub options: Vec<u8>,
    /// Written to the header as given, whatever the L4 is.
    pub protocol: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    pub traffic_class: u8,
    /// 20 bits.
    pub flow_label: u32,
    /// The upper-layer protocol, written into the last header of the chain (the IPv6 header
    /// itself when there are no extension headers). Written as given, whatever the L4 is.
    pub next_header: u8,
}

/// IPv6 extension headers; the builder fills in each next-header and length field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ext {
    /// Option bytes; 2 + len must be a multiple of 8 (see [`pad_options`]).
    HopByHop(Vec<u8>),
    /// `data` is everything after the first four bytes (type 0: 4 reserved bytes then addresses;
    /// type 4: last entry, flags, tag, segments, TLVs); 4 + len must be a multiple of 8.
    Routing {
        routing_type: u8,
        segments_left: u8,
        data: Vec<u8>,
    },
    /// `offset_bytes` must be a multiple of 8.
    Fragment {
        offset_bytes: u16,
        more: bool,
        id: u32,
    },
    /// Option bytes; 2 + len must be a multiple of 8 (see [`pad_options`]).
    DestOpts(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpOpt {
    Eol,
    Nop,
    Mss(u16),
    WScale(u8),
    SackPermitted,
    Sack(Vec<(u32, u32)>),
    Timestamps(u32, u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// See [`tcp_flags`].
    pub flags: u8,
    pub window: u16,
    pub urgent: u16,
    /// Encoded in order, then padded with EOL (zero) bytes to a multiple of 4; at most 40 bytes.
    pub options: Vec<TcpOpt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp {
    pub sport: u16,
    pub dport: u16,
}

/// ICMPv4 with the echo layout: the rest of the header is id, seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp {
    pub ty: u8,
    pub code: u8,
    pub id: u16,
    pub seq: u16,
}

/// ICMPv6 with the echo layout: the rest of the header is id, seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6 {
    pub ty: u8,
    pub code: u8,
    pub id: u16,
    pub seq: u16,
}

/// ARP for Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    pub sha: Mac,
    pub spa: Ipv4Addr,
    pub tha: Mac,
    pub tpa: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L3 {
    Ipv4(Ipv4),
    Ipv6(Ipv6, Vec<Ext>),
    Arp(Arp),
    /// Any EtherType followed by raw bytes (the frame's payload follows those bytes).
    Raw {
        ethertype: u16,
        bytes: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L4 {
    Tcp(Tcp),
    Udp(Udp),
    Icmp(Icmp),
    Icmpv6(Icmpv6),
    /// No transport header: the payload follows the IP headers directly (non-first fragments,
    /// or a transport segment built with [`transport`]).
    None,
}

/// A plain IP header from `src` to `dst` (both of one family) carrying `protocol`: TTL/hop limit
/// 64, DF set, no options or extension headers.
pub fn plain_ip(src: IpAddr, dst: IpAddr, protocol: u8) -> L3 {
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => L3::Ipv4(Ipv4 {
            src,
            dst,
            ttl: 64,
            tos: 0,
            id: 1,
            df: true,
            mf: false,
            frag_off_bytes: 0,
            options: vec![],
            protocol,
        }),
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            L3::Ipv6(Ipv6 { src, dst, hop_limit: 64, traffic_class: 0, flow_label: 0, next_header: protocol }, vec![])
        }
        _ => panic!("plain_ip: {src} and {dst} are of different families"),
    }
}

/// Builds a whole Ethernet frame: Ethernet header, `vlans` outermost first, L3, L4, payload.
///
/// IPv4 total length, IHL, IPv6 payload length, extension-header lengths and next headers, TCP
/// data offset, UDP length and all checksums are computed. Transport checksums use the IP
/// header's src/dst (for an IPv6 routing header with segments left, build the segment with
/// [`transport`] against the final destination and pass it as payload with `L4::None`).
///
/// Panics if L4 is not `None` with ARP or `Raw`, or if a length constraint is violated.
pub fn frame(eth: &Eth, vlans: &[Vlan], l3: L3, l4: L4, payload: &[u8]) -> Vec<u8> {
    let ethertype = match &l3 {
        L3::Ipv4(_) => ETHERTYPE_IPV4,
        L3::Ipv6(..) => ETHERTYPE_IPV6,
        L3::Arp(_) => ETHERTYPE_ARP,
        L3::Raw { ethertype, .. } => *ethertype,
    };
    let mut out = Vec::with_capacity(64 + payload.len());
    out.extend_from_slice(&eth.dst);
    out.extend_from_slice(&eth.src);
    for v in vlans {
        out.extend_from_slice(&v.tpid.to_be_bytes());
        out.extend_from_slice(&v.tci.to_be_bytes());
    }
    out.extend_from_slice(&ethertype.to_be_bytes());

    match l3 {
        L3::Ipv4(ip) => {
            let seg = transport(IpAddr::V4(ip.src), IpAddr::V4(ip.dst), &l4, payload);
            out.extend_from_slice(&ipv4_header(&ip, seg.len()));
            out.extend_from_slice(&seg);
        }
        L3::Ipv6(ip, exts) => {
            let seg = transport(IpAddr::V6(ip.src), IpAddr::V6(ip.dst), &l4, payload);
            let ext_bytes = ipv6_exts(&exts, ip.next_header);
            let first_nh = exts.first().map_or(ip.next_header, ext_type);
            let plen = ext_bytes.len() + seg.len();
            let plen = u16::try_from(plen).expect("IPv6 payload length over 65535");
            assert!(ip.flow_label < 1 << 20, "IPv6 flow label has 20 bits");
            let vtf = (6u32 << 28) | (u32::from(ip.traffic_class) << 20) | ip.flow_label;
            out.extend_from_slice(&vtf.to_be_bytes());
            out.extend_from_slice(&plen.to_be_bytes());
            out.push(first_nh);
            out.push(ip.hop_limit);
            out.extend_from_slice(&ip.src.octets());
            out.extend_from_slice(&ip.dst.octets());
            out.extend_from_slice(&ext_bytes);
            out.extend_from_slice(&seg);
        }
        L3::Arp(arp) => {
            assert!(l4 == L4::None, "an ARP frame has no transport header");
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            out.extend_from_slice(&[6, 4]);
            out.extend_from_slice(&arp.op.to_be_bytes());
            out.extend_from_slice(&arp.sha);
            out.extend_from_slice(&arp.spa.octets());
            out.extend_from_slice(&arp.tha);
            out.extend_from_slice(&arp.tpa.octets());
            out.extend_from_slice(payload);
        }
        L3::Raw { bytes, .. } => {
            assert!(l4 == L4::None, "a Raw L3 takes no transport header");
            out.extend_from_slice(&bytes);
            out.extend_from_slice(payload);
        }
    }
    out
}

/// The transport header plus payload, checksummed with the pseudo-header of `src`/`dst`
/// (ICMPv4 has none). For `L4::None` this is just `payload`. Useful to build a datagram once
/// and then cut it into fragments sent with `L4::None`.
///
/// Panics if `src` and `dst` are of different families.
pub fn transport(src: IpAddr, dst: IpAddr, l4: &L4, payload: &[u8]) -> Vec<u8> {
    let (mut seg, proto, csum_at) = match l4 {
        L4::None => return payload.to_vec(),
        L4::Tcp(t) => (tcp_header(t), ipproto::TCP, 16),
        L4::Udp(u) => {
            let len = u16::try_from(8 + payload.len()).expect("UDP length over 65535");
            let mut h = Vec::with_capacity(8);
            h.extend_from_slice(&u.sport.to_be_bytes());
            h.extend_from_slice(&u.dport.to_be_bytes());
            h.extend_from_slice(&len.to_be_bytes());
            h.extend_from_slice(&[0, 0]);
            (h, ipproto::UDP, 6)
        }
        L4::Icmp(i) => (echo_header(i.ty, i.code, i.id, i.seq), ipproto::ICMP, 2),
        L4::Icmpv6(i) => (echo_header(i.ty, i.code, i.id, i.seq), ipproto::ICMPV6, 2),
    };
    seg.extend_from_slice(payload);
    let mut sum = 0u32;
    if proto != ipproto::ICMP {
        let len = u32::try_from(seg.len()).expect("segment too long");
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                sum = add_bytes(sum, &s.octets());
                sum = add_bytes(sum, &d.octets());
                // The pseudo-header length is 16 bits for IPv4.
                let len = u16::try_from(len).expect("IPv4 segment over 65535");
                sum = add_bytes(sum, &[0, proto]);
                sum = add_bytes(sum, &len.to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                sum = add_bytes(sum, &s.octets());
                sum = add_bytes(sum, &d.octets());
                sum = add_bytes(sum, &len.to_be_bytes());
                sum = add_bytes(sum, &[0, 0, 0, proto]);
            }
            _ => panic!("transport: src and dst are of different address families"),
        }
    }
    let mut csum = fold(add_bytes(sum, &seg));
    // UDP sends 0 as "no checksum", so a computed 0 is written as 0xffff (RFC 768, RFC 8200).
    if proto == ipproto::UDP && csum == 0 {
        csum = 0xffff;
    }
    seg[csum_at..csum_at + 2].copy_from_slice(&csum.to_be_bytes());
    seg
}

/// The first `n` bytes of `frame` (all of it if shorter).
pub fn truncate(frame: &[u8], n: usize) -> Vec<u8> {
    frame[..n.min(frame.len())].to_vec()
}

/// Pads IPv6 option bytes with Pad1/PadN so that a Hop-by-Hop or Destination Options header
/// holding them (2 bytes + options) is a multiple of 8 long.
pub fn pad_options(options: &[u8]) -> Vec<u8> {
    let mut out = options.to_vec();
    match (8 - (2 + out.len()) % 8) % 8 {
        0 => {}
        1 => out.push(0),
        n => {
            out.push(1);
            out.push((n - 2) as u8);
            out.resize(out.len() + n - 2, 0);
        }
    }
    out
}

/// The Internet checksum (RFC 1071) of `data`: the one's complement of the one's-complement sum.
pub fn checksum(data: &[u8]) -> u16 {
    fold(add_bytes(0, data))
}

fn add_bytes(mut sum: u32, data: &[u8]) -> u32 {
    // Callers pass even-length pieces except the last one, so pairing per call is correct.
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        sum = (sum & 0xffff) + (sum >> 16);
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4_header(ip: &Ipv4, seg_len: usize) -> Vec<u8> {
    assert!(
        ip.options.len().is_multiple_of(4) && ip.options.len() <= 40,
        "IPv4 options must be padded to a multiple of 4 and at most 40 bytes"
    );
    assert!(
        ip.frag_off_bytes.is_multiple_of(8),
        "IPv4 fragment offset must be a multiple of 8"
    );
    let hlen = 20 + ip.options.len();
    let total = u16::try_from(hlen + seg_len).expect("IPv4 total length over 65535");
    let frag = (u16::from(ip.df) << 14) | (u16::from(ip.mf) << 13) | (ip.frag_off_bytes / 8);
    let mut h = Vec::with_capacity(hlen);
    h.push(0x40 | (hlen / 4) as u8);
    h.push(ip.tos);
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&ip.id.to_be_bytes());
    h.extend_from_slice(&frag.to_be_bytes());
    h.push(ip.ttl);
    h.push(ip.protocol);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&ip.src.octets());
    h.extend_from_slice(&ip.dst.octets());
    h.extend_from_slice(&ip.options);
    let csum = checksum(&h);
    h[10..12].copy_from_slice(&csum.to_be_bytes());
    h
}

fn ext_type(e: &Ext) -> u8 {
    match e {
        Ext::HopByHop(_) => ipproto::HOPOPTS,
        Ext::Routing { .. } => ipproto::ROUTING,
        Ext::Fragment { .. } => ipproto::FRAGMENT,
        Ext::DestOpts(_) => ipproto::DSTOPTS,
    }
}

fn ipv6_exts(exts: &[Ext], upper: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in exts.iter().enumerate() {
        let nh = exts.get(i + 1).map_or(upper, ext_type);
        let start = out.len();
        match e {
            Ext::HopByHop(opts) | Ext::DestOpts(opts) => {
                out.extend_from_slice(&[nh, 0]);
                out.extend_from_slice(opts);
            }
            Ext::Routing {
                routing_type,
                segments_left,
                data,
            } => {
                out.extend_from_slice(&[nh, 0, *routing_type, *segments_left]);
                out.extend_from_slice(data);
            }
            Ext::Fragment {
                offset_bytes,
                more,
                id,
            } => {
                assert!(
                    offset_bytes.is_multiple_of(8),
                    "IPv6 fragment offset must be a multiple of 8"
                );
                let off = ((offset_bytes / 8) << 3) | u16::from(*more);
                out.extend_from_slice(&[nh, 0]);
                out.extend_from_slice(&off.to_be_bytes());
                out.extend_from_slice(&id.to_be_bytes());
                continue; // fixed 8 bytes; its second byte is reserved, not a length
            }
        }
        let len = out.len() - start;
        assert!(
            len.is_multiple_of(8) && len <= 2048,
            "IPv6 extension header {i} is {len} bytes, not a multiple of 8 (see pad_options)"
        );
        out[start + 1] = (len / 8 - 1) as u8;
    }
    out
}

fn tcp_header(t: &Tcp) -> Vec<u8> {
    let mut opts = Vec::new();
    for o in &t.options {
        match o {
            TcpOpt::Eol => opts.push(0),
            TcpOpt::Nop => opts.push(1),
            TcpOpt::Mss(v) => {
                opts.extend_from_slice(&[2, 4]);
                opts.extend_from_slice(&v.to_be_bytes());
            }
            TcpOpt::WScale(v) => opts.extend_from_slice(&[3, 3, *v]),
            TcpOpt::SackPermitted => opts.extend_from_slice(&[4, 2]),
            TcpOpt::Sack(blocks) => {
                opts.extend_from_slice(&[5, (2 + 8 * blocks.len()) as u8]);
                for (l, r) in blocks {
                    opts.extend_from_slice(&l.to_be_bytes());
                    opts.extend_from_slice(&r.to_be_bytes());
                }
            }
            TcpOpt::Timestamps(val, ecr) => {
                opts.extend_from_slice(&[8, 10]);
                opts.extend_from_slice(&val.to_be_bytes());
                opts.extend_from_slice(&ecr.to_be_bytes());
            }
        }
    }
    opts.resize(opts.len().div_ceil(4) * 4, 0);
    assert!(
        opts.len() <= 40,
        "TCP options take {} bytes, over 40",
        opts.len()
    );
    let hlen = 20 + opts.len();
    let mut h = Vec::with_capacity(hlen);
    h.extend_from_slice(&t.sport.to_be_bytes());
    h.extend_from_slice(&t.dport.to_be_bytes());
    h.extend_from_slice(&t.seq.to_be_bytes());
    h.extend_from_slice(&t.ack.to_be_bytes());
    h.push(((hlen / 4) as u8) << 4);
    h.push(t.flags);
    h.extend_from_slice(&t.window.to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&t.urgent.to_be_bytes());
    h.extend_from_slice(&opts);
    h
}

fn echo_header(ty: u8, code: u8, id: u16, seq: u16) -> Vec<u8> {
    let mut h = vec![ty, code, 0, 0];
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&seq.to_be_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const ETH: Eth = Eth {
        dst: [0x02, 0, 0, 0, 0, 2],
        src: [0x02, 0, 0, 0, 0, 1],
    };

    #[test]
    fn rfc1071_classic_ipv4_header() {
        // The well-known example header 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7.
        let mut h = hex("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7");
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&[0xb8, 0x61]);
        assert_eq!(
            checksum(&h),
            0,
            "a header with its checksum in place sums to zero"
        );
    }

    #[test]
    fn rfc1071_odd_length_and_carries() {
        // RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 (checksum 220d).
        assert_eq!(checksum(&hex("0001 f203 f4f5 f6f7")), !0xddf2);
        // An odd trailing byte is padded with a zero byte on the right.
        assert_eq!(checksum(&[0x12]), !0x1200);
        assert_eq!(checksum(&[0xff; 64]), 0);
    }

    #[test]
    fn ipv4_header_matches_the_classic_example() {
        let ip = Ipv4 {
            src: Ipv4Addr::new(192, 168, 0, 1),
            dst: Ipv4Addr::new(192, 168, 0, 199),
            ttl: 0x40,
            tos: 0,
            id: 0,
            df: true,
            mf: false,
            frag_off_bytes: 0,
            options: vec![],
            protocol: ipproto::UDP,
        };
        let f = frame(&ETH, &[], L3::Ipv4(ip), L4::None, &[0u8; 0x73 - 20]);
        assert_eq!(
            f[14..34],
            hex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7")[..]
        );
    }

    #[test]
    fn vlan_tags_sit_between_macs_and_ethertype() {
        let vlans = [
            Vlan {
                tpid: TPID_8021AD,
                tci: 0x0064,
            },
            Vlan {
                tpid: TPID_8021Q,
                tci: 0x200a,
            },
        ];
        let f = frame(
            &ETH,
            &vlans,
            L3::Raw {
                ethertype: 0x88b5,
                bytes: vec![0xaa],
            },
            L4::None,
            &[0xbb],
        );
        assert_eq!(
            f,
            hex("020000000002 020000000001 88a8 0064 8100 200a 88b5 aa bb")
        );
    }

    #[test]
    fn udp_over_ipv4_known_checksum() {
        // Hand-computed: pseudo 0a00+0001+0a00+0002+0011+000a, header 1234+5678+000a, data 6869.
        let ip = Ipv4 {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            ttl: 64,
            tos: 0,
            id: 1,
            df: false,
            mf: false,
            frag_off_bytes: 0,
            options: vec![],
            protocol: ipproto::UDP,
        };
        let f = frame(
            &ETH,
            &[],
            L3::Ipv4(ip),
            L4::Udp(Udp {
                sport: 0x1234,
                dport: 0x5678,
            }),
            b"hi",
        );
        let sum: u32 =
            0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 0x0011 + 0x000a + 0x1234 + 0x5678 + 0x000a + 0x6869;
        let expect = !((sum & 0xffff) + (sum >> 16)) as u16;
        assert_eq!(
            f[34..42],
            [
                0x12,
                0x34,
                0x56,
                0x78,
                0,
                10,
                (expect >> 8) as u8,
                expect as u8
            ]
        );
        // The whole segment plus pseudo-header sums to zero.
        let mut pseudo = hex("0a000001 0a000002 0011 000a");
        pseudo.extend_from_slice(&f[34..]);
        assert_eq!(checksum(&pseudo), 0);
    }

    #[test]
    fn ipv6_extension_chain_and_lengths() {
        let ip = Ipv6 {
            src: "2001:2::1".parse().unwrap(),
            dst: "2001:2::2".parse().unwrap(),
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0x12345,
            next_header: ipproto::UDP,
        };
        let exts = vec![
            Ext::HopByHop(pad_options(&[])),
            Ext::Routing {
                routing_type: 0,
                segments_left: 0,
                data: vec![0; 4],
            },
            Ext::Fragment {
                offset_bytes: 0,
                more: true,
                id: 0xdeadbeef,
            },
            Ext::DestOpts(pad_options(&[0x1e, 1, 0])),
        ];
        let f = frame(
            &ETH,
            &[],
            L3::Ipv6(ip, exts),
            L4::Udp(Udp { sport: 1, dport: 2 }),
            b"x",
        );
        let ip6 = &f[14..];
        assert_eq!(ip6[..4], [0x6b, 0x81, 0x23, 0x45]);
        assert_eq!(u16::from_be_bytes([ip6[4], ip6[5]]), 8 * 4 + 8 + 1);
        assert_eq!(ip6[6], ipproto::HOPOPTS);
        let e = &ip6[40..];
        assert_eq!(e[..8], [ipproto::ROUTING, 0, 1, 4, 0, 0, 0, 0]); // PadN of 4
        assert_eq!(e[8..16], [ipproto::FRAGMENT, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            e[16..24],
            [ipproto::DSTOPTS, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(e[24..32], [ipproto::UDP, 0, 0x1e, 1, 0, 1, 1, 0]); // option, then PadN of 3
        assert_eq!(e[32..36], [0, 1, 0, 2]);
    }

    #[test]
    fn tcp_options_wire_format() {
        let t = Tcp {
            sport: 1,
            dport: 2,
            seq: 3,
            ack: 4,
            flags: tcp_flags::SYN,
            window: 5,
            urgent: 0,
            options: vec![
                TcpOpt::Mss(1460),
                TcpOpt::SackPermitted,
                TcpOpt::Timestamps(1, 2),
                TcpOpt::Nop,
                TcpOpt::WScale(7),
            ],
        };
        let seg = transport(
            "198.18.0.1".parse().unwrap(),
            "198.18.0.2".parse().unwrap(),
            &L4::Tcp(t),
            &[],
        );
        assert_eq!(seg[12], 10 << 4, "data offset: 20 + 20 option bytes");
        assert_eq!(
            seg[20..],
            hex("020405b4 0402 080a0000000100000002 01 030307")[..]
        );
    }

    #[test]
    fn tcp_options_are_padded_with_zeros() {
        let t = Tcp {
            sport: 1,
            dport: 2,
            seq: 0,
            ack: 0,
            flags: tcp_flags::ACK,
            window: 0,
            urgent: 0,
            options: vec![TcpOpt::Sack(vec![(10, 20)])],
        };
        let seg = transport(
            "::1".parse().unwrap(),
            "::2".parse().unwrap(),
            &L4::Tcp(t),
            &[],
        );
        assert_eq!(seg[12], 8 << 4);
        assert_eq!(seg[20..], hex("050a 0000000a 00000014 0000")[..]);
    }

    #[test]
    fn arp_layout() {
        let arp = Arp {
            op: 1,
            sha: [2, 0, 0, 0, 0, 1],
            spa: Ipv4Addr::new(198, 18, 0, 1),
            tha: [0; 6],
            tpa: Ipv4Addr::new(198, 18, 0, 2),
        };
        let f = frame(&ETH, &[], L3::Arp(arp), L4::None, &[]);
        assert_eq!(
            f[12..],
            hex("0806 0001 0800 06 04 0001 020000000001 c6120001 000000000000 c6120002")[..]
        );
    }

    #[test]
    fn pad_options_sizes() {
        for n in 0..20 {
            let p = pad_options(&vec![0x1e; n][..]);
            assert_eq!((2 + p.len()) % 8, 0, "n = {n}");
            assert!(p.len() - n < 8);
        }
    }

    #[test]
    fn truncate_is_bounded() {
        assert_eq!(truncate(&[1, 2, 3], 2), vec![1, 2]);
        assert_eq!(truncate(&[1, 2, 3], 10), vec![1, 2, 3]);
    }
}
