//! The offline dissector (rxray-wire) against the real XDP program: every frame goes through
//! BPF_PROG_TEST_RUN, its event is decoded, and `rxray_wire::dissect` must give the identical Packet.
//! Frames: hand-built ones covering every layer and every malformed category, plus a few thousand
//! random and mutated frames from a seeded generator. Needs root (fails under CI=true without it).
use rxray_lab::testing::Rng;
use aya::programs::{TestRun, TestRunOptions};
use rxray_engine::event::Packet;
use rxray_kernel::{abi, decode, Clock, Ingress, IngressOptions};
use rxray_lab::frames::{self as f, tcp_flags, Eth, Ext, Ipv4, Ipv6, L3, L4, TcpOpt};
use rxray_wire::{dissect, LinkType};

const E: Eth = Eth { dst: [2, 0, 0, 0, 0, 0xb], src: [2, 0, 0, 0, 0, 0xa] };
const SNAP: u32 = 256;

fn v4(proto: u8) -> Ipv4 {
    Ipv4 {
        src: "198.18.0.1".parse().unwrap(),
        dst: "198.19.0.2".parse().unwrap(),
        ttl: 64,
        tos: 0xb9,
        id: 0x1234,
        df: true,
        mf: false,
        frag_off_bytes: 0,
        options: vec![],
        protocol: proto,
    }
}

fn v6(nh: u8) -> Ipv6 {
    Ipv6 {
        src: "2001:2::a".parse().unwrap(),
        dst: "2001:2::b".parse().unwrap(),
        hop_limit: 63,
        traffic_class: 0x2d,
        flow_label: 0xabcde,
        next_header: nh,
    }
}

fn tcp(opts: Vec<TcpOpt>) -> f::Tcp {
    f::Tcp {
        sport: 40001,
        dport: 443,
        seq: 0x01020304,
        ack: 0x0a0b0c0d,
        flags: tcp_flags::SYN | tcp_flags::ACK,
        window: 29200,
        urgent: 0,
        options: opts,
    }
}

fn udp() -> L4 {
    L4::Udp(f::Udp { sport: 5353, dport: 53 })
}

/// An IPv4 frame whose L4 bytes are given raw (lengths of the IP header stay consistent).
fn v4_raw(proto: u8, l4: &[u8]) -> Vec<u8> {
    f::frame(&E, &[], L3::Ipv4(v4(proto)), L4::None, l4)
}

fn v6_raw(proto: u8, l4: &[u8]) -> Vec<u8> {
    f::frame(&E, &[], L3::Ipv6(v6(proto), vec![]), L4::None, l4)
}

fn set(mut fr: Vec<u8>, at: usize, bytes: &[u8]) -> Vec<u8> {
    fr[at..at + bytes.len()].copy_from_slice(bytes);
    fr
}

/// A TCP header (20 bytes + `opts` raw, data offset from `doff`) as raw bytes.
fn tcp_raw(doff: u8, opts: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 20];
    h[0..2].copy_from_slice(&1234u16.to_be_bytes());
    h[2..4].copy_from_slice(&80u16.to_be_bytes());
    h[12] = doff << 4;
    h[13] = 0x18;
    h.extend_from_slice(opts);
    h
}

/// Hand-built frames: every layer the parser knows and every malformed category it can reach
/// through BPF_PROG_TEST_RUN (eth_truncated needs < 14 bytes, which the kernel refuses).
fn crafted() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let all_opts = vec![
        TcpOpt::Mss(1460),
        TcpOpt::SackPermitted,
        TcpOpt::Timestamps(111, 222),
        TcpOpt::Nop,
        TcpOpt::WScale(7),
        TcpOpt::Sack(vec![(1, 2)]),
    ];
    v.push(("tcp4 syn options", f::frame(&E, &[], L3::Ipv4(v4(6)), L4::Tcp(tcp(all_opts.clone())), b"hello")));
    v.push(("tcp6", f::frame(&E, &[], L3::Ipv6(v6(6), vec![]), L4::Tcp(tcp(vec![TcpOpt::Mss(1220)])), &[9; 300])));
    v.push(("udp4", f::frame(&E, &[], L3::Ipv4(v4(17)), udp(), b"dns")));
    let mut padded = f::frame(&E, &[], L3::Ipv4(v4(17)), udp(), b"x");
    padded.resize(60, 0xee);
    v.push(("udp4 padded", padded));
    v.push(("udp6", f::frame(&E, &[], L3::Ipv6(v6(17), vec![]), udp(), &[1; 40])));
    v.push(("icmp echo", f::frame(&E, &[], L3::Ipv4(v4(1)), L4::Icmp(f::Icmp { ty: 8, code: 0, id: 77, seq: 3 }), b"ping")));
    v.push(("icmp unreach", f::frame(&E, &[], L3::Ipv4(v4(1)), L4::Icmp(f::Icmp { ty: 3, code: 1, id: 77, seq: 3 }), b"")));
    v.push(("icmp6 echo", f::frame(&E, &[], L3::Ipv6(v6(58), vec![]), L4::Icmpv6(f::Icmpv6 { ty: 129, code: 0, id: 5, seq: 6 }), b"pong")));
    v.push(("icmp6 ns", f::frame(&E, &[], L3::Ipv6(v6(58), vec![]), L4::Icmpv6(f::Icmpv6 { ty: 135, code: 0, id: 5, seq: 6 }), b"")));
    v.push(("icmpv6 over ipv4", v4_raw(58, &[128, 0, 0, 0, 0, 1, 0, 2])));
    let arp = f::Arp { op: 1, sha: E.src, spa: "198.18.0.1".parse().unwrap(), tha: [0; 6], tpa: "198.18.0.2".parse().unwrap() };
    v.push(("arp", f::frame(&E, &[], L3::Arp(arp), L4::None, &[0; 18])));
    v.push(("arp other hw", f::frame(&E, &[], L3::Raw { ethertype: 0x0806, bytes: vec![0, 6, 0x08, 0, 6, 4, 0, 1] }, L4::None, &[5; 20])));
    v.push(("other ethertype", f::frame(&E, &[], L3::Raw { ethertype: 0x88cc, bytes: vec![1, 2, 3] }, L4::None, b"")));
    let q = f::Vlan { tpid: f::TPID_8021Q, tci: (5 << 13) | 0x1000 | 100 };
    let ad = f::Vlan { tpid: f::TPID_8021AD, tci: 200 };
    v.push(("vlan", f::frame(&E, &[q], L3::Ipv4(v4(17)), udp(), b"v")));
    v.push(("qinq", f::frame(&E, &[ad, q], L3::Ipv6(v6(6), vec![]), L4::Tcp(tcp(vec![])), b"q")));
    let mut opts4 = v4(6);
    opts4.options = vec![1, 1, 1, 0];
    v.push(("ipv4 options", f::frame(&E, &[], L3::Ipv4(opts4), L4::Tcp(tcp(vec![])), b"o")));
    let mut frag1 = v4(17);
    frag1.df = false;
    frag1.mf = true;
    v.push(("ipv4 first fragment", f::frame(&E, &[], L3::Ipv4(frag1.clone()), udp(), &[3; 64])));
    frag1.frag_off_bytes = 72;
    frag1.mf = false;
    v.push(("ipv4 later fragment", f::frame(&E, &[], L3::Ipv4(frag1), L4::None, &[4; 30])));
    let exts = vec![
        Ext::HopByHop(f::pad_options(&[])),
        Ext::Routing { routing_type: 4, segments_left: 0, data: vec![0; 4] },
        Ext::DestOpts(f::pad_options(&[])),
        Ext::Fragment { offset_bytes: 0, more: true, id: 0xfeedface },
    ];
    v.push(("ipv6 ext + first fragment", f::frame(&E, &[], L3::Ipv6(v6(17), exts), udp(), &[7; 24])));
    v.push(("ipv6 later fragment", f::frame(&E, &[], L3::Ipv6(v6(17), vec![Ext::Fragment { offset_bytes: 1448, more: false, id: 9 }]), L4::None, &[7; 24])));
    v.push(("ipv6 atomic fragment", f::frame(&E, &[], L3::Ipv6(v6(17), vec![Ext::Fragment { offset_bytes: 0, more: false, id: 9 }]), udp(), b"a")));
    v.push(("ipv6 no next header", f::frame(&E, &[], L3::Ipv6(v6(59), vec![Ext::DestOpts(f::pad_options(&[]))]), L4::None, b"nn")));
    // AH: next header, length (in 4-byte units minus 2), 10 more bytes.
    let mut ah = vec![17u8, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
    ah.extend_from_slice(&[5, 5, 0, 53, 0, 9, 0, 0, 9]);
    v.push(("ipv6 ah", v6_raw(51, &ah)));

    // ---- malformed, one or more per category ----
    v.push(("vlan_truncated", set(vec![0u8; 16], 12, &[0x81, 0x00])));
    v.push(("vlan_too_deep", f::frame(&E, &[ad, q, q], L3::Ipv4(v4(17)), udp(), b"")));
    v.push(("arp_truncated hdr", f::frame(&E, &[], L3::Raw { ethertype: 0x0806, bytes: vec![0, 1, 8, 0, 6] }, L4::None, b"")));
    v.push(("arp_truncated body", f::truncate(&f::frame(&E, &[], L3::Arp(arp), L4::None, b""), 14 + 8 + 12)));
    let tcp4 = f::frame(&E, &[], L3::Ipv4(v4(6)), L4::Tcp(tcp(vec![])), b"payload");
    v.push(("ipv4_truncated hdr", f::truncate(&tcp4, 14 + 12)));
    v.push(("ipv4_truncated total", f::truncate(&tcp4, tcp4.len() - 3)));
    v.push(("ipv4_bad_header version", set(tcp4.clone(), 14, &[0x55])));
    v.push(("ipv4_bad_header ihl", set(tcp4.clone(), 14, &[0x44])));
    v.push(("ipv4_bad_header total", set(tcp4.clone(), 16, &[0, 10])));
    let tcp6 = f::frame(&E, &[], L3::Ipv6(v6(6), vec![]), L4::Tcp(tcp(vec![])), b"payload");
    v.push(("ipv6_truncated hdr", f::truncate(&tcp6, 14 + 30)));
    v.push(("ipv6_truncated payload", f::truncate(&tcp6, tcp6.len() - 1)));
    v.push(("ipv6_bad_header", set(tcp6.clone(), 14, &[0x45])));
    v.push(("ipv6_ext_truncated", v6_raw(0, &[6, 0, 0, 0])));
    v.push(("ipv6_ext_truncated len", v6_raw(60, &[6, 3, 0, 0, 0, 0, 0, 0, 1, 2])));
    let nine: Vec<Ext> = (0..9).map(|_| Ext::DestOpts(f::pad_options(&[]))).collect();
    v.push(("ipv6_ext_chain_too_long", f::frame(&E, &[], L3::Ipv6(v6(59), nine), L4::None, b"")));
    v.push(("tcp_truncated", v4_raw(6, &[0; 12])));
    v.push(("tcp_truncated doff", v4_raw(6, &tcp_raw(15, &[1; 8]))));
    v.push(("tcp6_truncated", v6_raw(6, &[0; 19])));
    v.push(("tcp_bad_header", v4_raw(6, &tcp_raw(4, &[]))));
    v.push(("tcp_bad_option olen<2", v4_raw(6, &tcp_raw(6, &[8, 1, 0, 0]))));
    v.push(("tcp_bad_option mss len", v4_raw(6, &tcp_raw(6, &[2, 3, 5, 0]))));
    v.push(("tcp_bad_option ws len", v4_raw(6, &tcp_raw(7, &[2, 4, 5, 0xb4, 3, 4, 7, 0]))));
    v.push(("tcp_bad_option past end", v4_raw(6, &tcp_raw(7, &[2, 4, 5, 0xb4, 30, 9, 0, 0]))));
    v.push(("tcp_bad_option lone kind", v4_raw(6, &tcp_raw(6, &[1, 1, 1, 30]))));
    v.push(("tcp_bad_option ts len", v4_raw(6, &tcp_raw(8, &[4, 2, 8, 8, 0, 0, 0, 1, 0, 0, 0, 2]))));
    v.push(("tcp_bad_option sackok len", v4_raw(6, &tcp_raw(6, &[4, 3, 0, 0]))));
    v.push(("tcp options eol then junk", v4_raw(6, &tcp_raw(6, &[0, 99, 99, 99]))));
    v.push(("tcp options unknown kind", v4_raw(6, &tcp_raw(7, &[30, 6, 1, 2, 3, 4, 5, 2]))));
    v.push(("udp_truncated", v4_raw(17, &[0, 53, 0, 53])));
    v.push(("udp6_truncated", v6_raw(17, &[0, 53, 0, 53, 0, 8])));
    v.push(("udp_bad_length small", v4_raw(17, &[0, 53, 0, 53, 0, 4, 0, 0])));
    v.push(("udp_bad_length large", v4_raw(17, &[0, 53, 0, 53, 0, 40, 0, 0, 1, 2])));
    v.push(("icmp_truncated", v4_raw(1, &[8, 0, 0, 0])));
    v.push(("icmp6_truncated", v6_raw(58, &[128, 0, 0, 0, 0, 1, 0])));
    v
}

/// Random and mutated frames: mutations of the crafted ones (byte flips, truncation, length-field
/// corruption, padding) and structured random headers with plausible ethertypes and protocols.
fn random_frames(seed: u64, n: usize, base: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut r = Rng(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut fr = match r.below(3) {
            0 | 1 => base[r.below(base.len())].clone(),
            _ => {
                let mut fr: Vec<u8> = (0..14 + r.below(200)).map(|_| r.next() as u8).collect();
                let et: [u16; 6] = [0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8, r.next() as u16];
                let e = et[r.below(et.len())];
                fr[12..14].copy_from_slice(&e.to_be_bytes());
                if e == 0x0800 && fr.len() > 14 + 20 {
                    fr[14] = 0x45 + (r.below(3) as u8);
                    let tot = (fr.len() - 14 - r.below(4)) as u16;
                    fr[16..18].copy_from_slice(&tot.to_be_bytes());
                    fr[20] &= 0x3f;
                    fr[23] = [1u8, 6, 17, 58][r.below(4)];
                } else if e == 0x86dd && fr.len() > 14 + 40 {
                    fr[14] = 0x60;
                    let pl = (fr.len() - 54 - r.below(3).min(fr.len() - 54)) as u16;
                    fr[18..20].copy_from_slice(&pl.to_be_bytes());
                    fr[20] = [0u8, 6, 17, 43, 44, 51, 58, 60][r.below(8)];
                }
                fr
            }
        };
        for _ in 0..r.below(4) {
            if fr.is_empty() {
                break;
            }
            let i = r.below(fr.len());
            fr[i] = r.next() as u8;
        }
        match r.below(6) {
            0 => fr.truncate(r.below(fr.len() + 1)),
            1 => fr.extend((0..r.below(40)).map(|_| r.next() as u8)),
            _ => {}
        }
        if fr.len() >= 14 {
            out.push(fr);
        }
    }
    out
}

fn normalise(mut p: Packet) -> Packet {
    p.ts_ns = 0;
    p.ifindex = 0;
    p.rx_queue = 0;
    p.iface = String::new();
    p
}

/// Runs one frame through the XDP program and returns the decoded event.
fn kernel_packet(ingress: &mut Ingress, frame: &[u8]) -> Packet {
    let mut opts = TestRunOptions::new();
    opts.data_in = Some(frame);
    let r = ingress.program().test_run(opts).expect("BPF_PROG_TEST_RUN");
    assert_eq!(r.return_value, 2, "XDP_PASS expected");
    let item = ingress.ring().next().expect("one event per test run");
    let ev = abi::PktEvent::from_bytes(&item).expect("an rxray_pkt_event");
    assert_eq!(ev.ifindex, 1, "BPF_PROG_TEST_RUN runs on lo");
    let p = decode(&ev, &Clock::identity(), "lo");
    drop(item);
    assert!(ingress.ring().next().is_none(), "exactly one event per frame");
    p
}

fn compare(ingress: &mut Ingress, name: &str, frame: &[u8]) {
    let k = normalise(kernel_packet(ingress, frame));
    let w = normalise(dissect(frame, LinkType::ETHERNET, 0, frame.len() as u32, "lo", SNAP as usize));
    assert_eq!(w, k, "{name}: rxray-wire and the kernel disagree on frame {}", rxray_engine::event::hex_string(frame));
}

#[test]
fn malformed_names_match_the_kernel_abi() {
    assert_eq!(abi::MALFORMED_NAMES.len(), abi::MAL_COUNT);
    assert_eq!(rxray_wire::PAYLOAD_MAX, abi::PAYLOAD_MAX);
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn wire_dissects_like_the_kernel() {
    if !rxray_lab::testing::need_root() {
        return;
    }
    let mut ingress = Ingress::load(&IngressOptions { payload_snap: SNAP, flows: false, ..Default::default() })
        .expect("load the XDP program");
    let crafted = crafted();
    let mut seen = std::collections::BTreeSet::new();
    for (name, fr) in &crafted {
        compare(&mut ingress, name, fr);
        if let Some(m) = dissect(fr, LinkType::ETHERNET, 0, 0, "", 0).malformed {
            seen.insert(m);
        }
    }
    // Every malformed category is exercised (eth_truncated below, without the kernel).
    let missing: Vec<_> = abi::MALFORMED_NAMES[2..].iter().filter(|n| !seen.contains(*n)).collect();
    assert!(missing.is_empty(), "crafted frames miss malformed categories {missing:?}");
    for n in 0..14 {
        let p = dissect(&crafted[0].1[..n], LinkType::ETHERNET, 0, n as u32, "", 256);
        assert_eq!((p.malformed, p.eth, p.payload_offset, p.payload.len()), (Some("eth_truncated"), None, 0, n));
    }
    let base: Vec<Vec<u8>> = crafted.into_iter().map(|(_, f)| f).collect();
    for (i, fr) in random_frames(0x5eed_0f_0ff1ce, 4000, &base).iter().enumerate() {
        compare(&mut ingress, &format!("random frame {i}"), fr);
    }
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn wire_matches_the_kernel_with_a_small_snap_length() {
    if !rxray_lab::testing::need_root() {
        return;
    }
    let mut ingress = Ingress::load(&IngressOptions { payload_snap: 16, flows: false, ..Default::default() })
        .expect("load the XDP program");
    for (name, fr) in crafted() {
        let k = normalise(kernel_packet(&mut ingress, &fr));
        let w = normalise(dissect(&fr, LinkType::ETHERNET, 0, fr.len() as u32, "lo", 16));
        assert_eq!(w, k, "{name} (snap 16)");
    }
}
