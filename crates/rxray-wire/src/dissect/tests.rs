//! Unit tests for the dissector: crafted frames (rxray-lab's builder) with expected fields chosen by
//! the test; the exhaustive comparison with the kernel lives in rxray-kernel/tests/wire_vs_kernel.rs.
use super::*;
use rxray_lab::frames::{self as f, ipproto, Eth as FEth, Ipv4 as FIpv4, Ipv6 as FIpv6, L3, L4};

const E: FEth = FEth { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1] };

fn v4(proto: u8) -> FIpv4 {
    FIpv4 {
        src: "198.18.0.1".parse().unwrap(),
        dst: "198.18.0.2".parse().unwrap(),
        ttl: 64,
        tos: 0x2e << 2 | 1,
        id: 7,
        df: true,
        mf: false,
        frag_off_bytes: 0,
        options: vec![],
        protocol: proto,
    }
}

fn v6(nh: u8) -> FIpv6 {
    FIpv6 {
        src: "2001:2::1".parse().unwrap(),
        dst: "2001:2::2".parse().unwrap(),
        hop_limit: 9,
        traffic_class: 0,
        flow_label: 0x12345,
        next_header: nh,
    }
}

fn syn() -> f::Tcp {
    f::Tcp {
        sport: 40000,
        dport: 80,
        seq: 1,
        ack: 0,
        flags: f::tcp_flags::SYN,
        window: 65535,
        urgent: 0,
        options: vec![f::TcpOpt::Mss(1460), f::TcpOpt::SackPermitted, f::TcpOpt::Timestamps(5, 0), f::TcpOpt::Nop, f::TcpOpt::WScale(7)],
    }
}

#[test]
fn tcp_syn_with_options() {
    let fr = f::frame(&E, &[], L3::Ipv4(v4(ipproto::TCP)), L4::Tcp(syn()), b"hello");
    let p = dissect(&fr, LinkType::ETHERNET, 5, fr.len() as u32, "eth0", 128);
    assert_eq!(p.malformed, None);
    let ip = p.ip.as_ref().unwrap();
    assert_eq!((ip.version, ip.dscp, ip.ecn, ip.df, ip.proto, ip.hdr_len), (4, 0x2e, 1, true, 6, 20));
    let t = p.tcp.unwrap();
    assert_eq!((t.sport, t.dport, t.flags, t.hdr_len), (40000, 80, 2, 40));
    assert_eq!((t.mss, t.wscale, t.sack_ok, t.ts), (Some(1460), Some(7), true, Some((5, 0))));
    assert_eq!(p.payload_offset, 14 + 20 + 40);
    assert_eq!(p.payload, b"hello");
    assert_eq!((p.len, p.ts_ns, p.iface.as_str()), (fr.len() as u32, 5, "eth0"));
}

#[test]
fn ethernet_padding_is_not_payload_but_snap_and_max_apply() {
    let mut fr = f::frame(&E, &[], L3::Ipv4(v4(ipproto::UDP)), L4::Udp(f::Udp { sport: 1, dport: 53 }), b"ab");
    fr.resize(60, 0xee);
    let p = dissect(&fr, LinkType::ETHERNET, 0, 60, "x", 128);
    assert_eq!(p.payload, b"ab");
    assert_eq!(p.udp.unwrap().len, 10);
    let big = f::frame(&E, &[], L3::Ipv4(v4(ipproto::UDP)), L4::Udp(f::Udp { sport: 1, dport: 53 }), &[7u8; 1000]);
    assert_eq!(dissect(&big, LinkType::ETHERNET, 0, 0, "x", 100).payload.len(), 100);
    assert_eq!(dissect(&big, LinkType::ETHERNET, 0, 0, "x", 5000).payload.len(), PAYLOAD_MAX);
}

#[test]
fn later_fragment_has_no_l4_and_first_keeps_ports() {
    let mut ip = v4(ipproto::UDP);
    ip.df = false;
    ip.mf = true;
    let first = f::frame(&E, &[], L3::Ipv4(ip.clone()), L4::Udp(f::Udp { sport: 9, dport: 10 }), &[0; 32]);
    // UDP length claims the whole datagram: no udp_bad_length for a fragment.
    let mut first = first;
    first[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&3000u16.to_be_bytes());
    let p = dissect(&first, LinkType::ETHERNET, 0, 0, "x", 0);
    assert_eq!((p.malformed, p.ip.as_ref().unwrap().fragment, p.udp.unwrap().sport), (None, true, 9));
    ip.frag_off_bytes = 40;
    ip.mf = false;
    let later = f::frame(&E, &[], L3::Ipv4(ip), L4::None, &[1; 16]);
    let p = dissect(&later, LinkType::ETHERNET, 0, 0, "x", 4);
    assert!(p.udp.is_none());
    assert_eq!((p.ip.as_ref().unwrap().frag_offset, p.payload_offset, p.payload.len()), (40, 34, 4));
}

#[test]
fn third_vlan_tag_is_too_deep_and_keeps_two() {
    let tags = [
        f::Vlan { tpid: f::TPID_8021AD, tci: 10 },
        f::Vlan { tpid: f::TPID_8021Q, tci: (3 << 13) | 20 },
        f::Vlan { tpid: f::TPID_8021Q, tci: 30 },
    ];
    let fr = f::frame(&E, &tags, L3::Ipv4(v4(ipproto::UDP)), L4::Udp(f::Udp { sport: 1, dport: 2 }), b"");
    let p = dissect(&fr, LinkType::ETHERNET, 0, 0, "x", 0);
    assert_eq!(p.malformed, Some("vlan_too_deep"));
    assert_eq!(p.vlans.len(), 2);
    assert_eq!((p.vlans[1].vid, p.vlans[1].pcp), (20, 3));
    assert_eq!(p.eth.unwrap().ethertype, f::TPID_8021Q);
    assert!(p.ip.is_none());
    assert_eq!(p.payload_offset, 22);
}

#[test]
fn ipv6_fragment_header_and_chain() {
    let exts = vec![
        f::Ext::HopByHop(f::pad_options(&[])),
        f::Ext::Fragment { offset_bytes: 0, more: true, id: 0xdeadbeef },
    ];
    let fr = f::frame(&E, &[], L3::Ipv6(v6(ipproto::UDP), exts), L4::Udp(f::Udp { sport: 5, dport: 6 }), b"zz");
    let p = dissect(&fr, LinkType::ETHERNET, 0, 0, "x", 64);
    let ip = p.ip.as_ref().unwrap();
    assert_eq!((ip.id, ip.mf, ip.fragment, ip.ext_headers.as_slice(), ip.hdr_len), (0xdeadbeef, true, true, &[0u8, 44][..], 56));
    assert_eq!(ip.flow_label, 0x12345);
    assert_eq!(p.udp.unwrap().dport, 6);
    let nine: Vec<f::Ext> = (0..9).map(|_| f::Ext::DestOpts(f::pad_options(&[]))).collect();
    let fr = f::frame(&E, &[], L3::Ipv6(v6(ipproto::NONE), nine), L4::None, b"");
    let p = dissect(&fr, LinkType::ETHERNET, 0, 0, "x", 0);
    assert_eq!(p.malformed, Some("ipv6_ext_chain_too_long"));
    assert_eq!(p.ip.as_ref().unwrap().ext_headers.len(), 8);
    assert_eq!((p.ip.as_ref().unwrap().proto, p.payload_offset), (0, 14));
}

#[test]
fn bad_tcp_option_keeps_tcp_and_options_before_it() {
    let mut fr = f::frame(&E, &[], L3::Ipv4(v4(ipproto::TCP)), L4::Tcp(syn()), b"");
    // Options start at 54: MSS(4) SACK-OK(2) TS(10) NOP WS(3); break the WS length.
    fr[54 + 4 + 2 + 10 + 1 + 1] = 4;
    let p = dissect(&fr, LinkType::ETHERNET, 0, 0, "x", 0);
    assert_eq!(p.malformed, Some("tcp_bad_option"));
    let t = p.tcp.unwrap();
    assert_eq!((t.mss, t.sack_ok, t.wscale), (Some(1460), true, None));
    assert_eq!(p.payload_offset, 34);
}

#[test]
fn non_ethernet_link_types_parse_from_l3() {
    let fr = f::frame(&E, &[], L3::Ipv6(v6(ipproto::ICMPV6), vec![]), L4::Icmpv6(f::Icmpv6 { ty: 128, code: 0, id: 3, seq: 4 }), b"p");
    let l3 = &fr[14..];
    for lt in [LinkType::RAW, LinkType::IPV6] {
        let p = dissect(l3, lt, 0, l3.len() as u32, "x", 8);
        assert!(p.eth.is_none());
        assert_eq!((p.icmp.unwrap().echo, p.payload_offset, p.payload.as_slice()), (Some((3, 4)), 48, &b"p"[..]));
    }
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x86, 0xdd];
    sll.extend_from_slice(l3);
    let p = dissect(&sll, LinkType::LINUX_SLL, 0, 0, "x", 8);
    assert_eq!((p.icmp.unwrap().ty, p.payload_offset), (128, 64));
    let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 7, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    sll2.extend_from_slice(l3);
    let p = dissect(&sll2, LinkType::LINUX_SLL2, 0, 0, "x", 8);
    assert_eq!((p.ifindex, p.payload_offset, p.ip.unwrap().hdr_len), (7, 68, 40));
    assert_eq!(dissect(&sll2[..10], LinkType::LINUX_SLL2, 0, 0, "x", 8).malformed, Some("eth_truncated"));
    assert_eq!(dissect(&[], LinkType::RAW, 0, 0, "x", 8).malformed, Some("ipv4_truncated"));
}

#[test]
fn a_snapped_capture_is_not_an_ipv4_truncation() {
    let fr = f::frame(&E, &[], L3::Ipv4(v4(ipproto::UDP)), L4::Udp(f::Udp { sport: 1, dport: 2 }), &[0; 500]);
    let p = dissect(&fr[..96], LinkType::ETHERNET, 0, fr.len() as u32, "x", 256);
    assert_eq!((p.malformed, p.udp.unwrap().len), (None, 508));
    assert_eq!(p.payload.len(), 96 - 42);
    // The same cut without the original length is what the kernel would call truncated.
    assert_eq!(dissect(&fr[..96], LinkType::ETHERNET, 0, 96, "x", 256).malformed, Some("ipv4_truncated"));
}

#[test]
fn every_prefix_of_every_frame_dissects_without_panic_and_reuse_is_identical() {
    let frames = [
        f::frame(&E, &[], L3::Ipv4(v4(ipproto::TCP)), L4::Tcp(syn()), b"x"),
        f::frame(&E, &[f::Vlan { tpid: 0x8100, tci: 5 }], L3::Ipv6(v6(ipproto::UDP), vec![f::Ext::Fragment { offset_bytes: 0, more: true, id: 1 }]), L4::Udp(f::Udp { sport: 1, dport: 2 }), b"y"),
    ];
    let mut reused = empty_packet();
    for fr in &frames {
        for n in 0..=fr.len() {
            for lt in [1, 101, 113, 228, 229, 276, 9999] {
                let fresh = dissect(&fr[..n], LinkType(lt), 1, n as u32, "i", 256);
                dissect_into(&mut reused, &fr[..n], LinkType(lt), 1, n as u32, "i", 256);
                assert_eq!(fresh, reused);
                assert_eq!(summarize(&fr[..n], LinkType(lt), n as u32), Summary::of_packet(&fresh));
            }
        }
    }
}

#[test]
fn tcp_segment_gives_payload_range_and_wire_length_even_when_snapped() {
    let mut t = syn();
    t.flags = f::tcp_flags::ACK | f::tcp_flags::PSH;
    t.seq = 1000;
    let body = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let fr = f::frame(&E, &[], L3::Ipv4(v4(ipproto::TCP)), L4::Tcp(t.clone()), body);
    let s = tcp_segment(&fr, LinkType::ETHERNET, fr.len() as u32).unwrap();
    assert_eq!((s.ip_version, s.sport, s.dport, s.seq, s.flags), (4, 40000, 80, 1000, 0x18));
    assert_eq!(&fr[s.payload.clone()], body);
    assert_eq!(s.wire_payload_len as usize, body.len());
    // Cut by a snap length: the captured part shrinks, the wire length does not.
    let cut = f::truncate(&fr, fr.len() - 10);
    let s = tcp_segment(&cut, LinkType::ETHERNET, fr.len() as u32).unwrap();
    assert_eq!(&cut[s.payload.clone()], &body[..body.len() - 10]);
    assert_eq!(s.wire_payload_len as usize, body.len());
    // Ethernet padding is not payload.
    let mut pad = f::frame(&E, &[], L3::Ipv6(v6(ipproto::TCP), vec![]), L4::Tcp(t), b"");
    pad.resize(pad.len() + 6, 0);
    let s = tcp_segment(&pad, LinkType::ETHERNET, pad.len() as u32).unwrap();
    assert_eq!((s.ip_version, s.payload.len(), s.wire_payload_len), (6, 0, 0));
    // Not TCP.
    let u = f::frame(&E, &[], L3::Ipv4(v4(ipproto::UDP)), L4::Udp(f::Udp { sport: 1, dport: 80 }), b"x");
    assert_eq!(tcp_segment(&u, LinkType::ETHERNET, u.len() as u32), None);
}
