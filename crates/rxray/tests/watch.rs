//! `rxray watch` in a lab: a scripted set of raw frames sent from one namespace must be observed in
//! the other exactly once each, in order, with every field equal to what the script put in the
//! frame; malformed frames are counted in the right category; forced ring-buffer loss is reported
//! exactly (lost = sent - delivered).
mod common;
use common::*;
use rxray_lab::frames::{self, ipproto, tcp_flags as F, Arp, Eth, Ext, Icmp, Icmpv6, Ipv4, Ipv6, Tcp, TcpOpt, Udp, Vlan, L3, L4};
use rxray_lab::{send_frames, Lab};
use serde_json::{json, Value};
use std::{collections::BTreeMap, time::Duration};

/// One scripted frame and what every field of its event must be (from the script's own values).
struct Case {
    name: &'static str,
    frame: Vec<u8>,
    /// (JSON pointer, expected value) pairs; the event must have each.
    expect: Vec<(&'static str, Value)>,
    /// JSON pointers that must be absent (layers not parsed).
    absent: Vec<&'static str>,
    malformed: Option<&'static str>,
}

fn ipv4(lab: &Lab, proto: u8) -> Ipv4 {
    Ipv4 {
        src: lab.addr4_a(),
        dst: lab.addr4_b(),
        ttl: 64,
        tos: 0,
        id: 1,
        df: false,
        mf: false,
        frag_off_bytes: 0,
        options: vec![],
        protocol: proto,
    }
}

fn ipv6(lab: &Lab, nh: u8) -> Ipv6 {
    Ipv6 { src: lab.addr6_a(), dst: lab.addr6_b(), hop_limit: 64, traffic_class: 0, flow_label: 0, next_header: nh }
}

fn cases(lab: &Lab) -> Vec<Case> {
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let (a4, b4) = (lab.addr4_a().to_string(), lab.addr4_b().to_string());
    let (a6, b6) = (lab.addr6_a().to_string(), lab.addr6_b().to_string());
    let payload_200: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut v = Vec::new();

    // 1. TCP SYN with options, DSCP/ECN, DF.
    let syn = Tcp {
        sport: 40001,
        dport: 80,
        seq: 0x0102_0304,
        ack: 0,
        flags: F::SYN,
        window: 64240,
        urgent: 0,
        options: vec![TcpOpt::Mss(1460), TcpOpt::SackPermitted, TcpOpt::Timestamps(111, 0), TcpOpt::Nop, TcpOpt::WScale(7)],
    };
    let ip = Ipv4 { ttl: 61, tos: 0xb9, id: 1001, df: true, ..ipv4(lab, ipproto::TCP) };
    v.push(Case {
        name: "tcp syn with options",
        frame: frames::frame(&eth, &[], L3::Ipv4(ip), L4::Tcp(syn), &[]),
        expect: vec![
            ("/eth/src", json!(mac(lab.mac_a()))), ("/eth/dst", json!(mac(lab.mac_b()))), ("/eth/ethertype", json!(0x0800)),
            ("/ip/version", json!(4)), ("/ip/src", json!(a4)), ("/ip/dst", json!(b4)), ("/ip/ttl", json!(61)),
            ("/ip/dscp", json!(0xb9 >> 2)), ("/ip/ecn", json!(1)), ("/ip/id", json!(1001)), ("/ip/df", json!(true)),
            ("/ip/mf", json!(false)), ("/ip/fragment", json!(false)), ("/ip/proto", json!(6)), ("/ip/hdr_len", json!(20)),
            ("/ip/total_len", json!(20 + 40)), ("/ip/options", json!(false)),
            ("/tcp/sport", json!(40001)), ("/tcp/dport", json!(80)), ("/tcp/seq", json!(0x0102_0304)), ("/tcp/ack", json!(0)),
            ("/tcp/flags", json!(F::SYN)), ("/tcp/window", json!(64240)), ("/tcp/hdr_len", json!(40)),
            ("/tcp/mss", json!(1460)), ("/tcp/wscale", json!(7)), ("/tcp/sack_ok", json!(true)), ("/tcp/ts", json!([111, 0])),
            ("/payload", json!("")),
        ],
        absent: vec!["/udp", "/icmp", "/vlans", "/malformed"],
        malformed: None,
    });

    // 2. TCP data: PSH|ACK with 200 payload bytes (the event carries the first 128).
    let data = Tcp { sport: 40001, dport: 80, seq: 1001, ack: 2002, flags: F::PSH | F::ACK, window: 502, urgent: 0, options: vec![] };
    v.push(Case {
        name: "tcp data",
        frame: frames::frame(&eth, &[], L3::Ipv4(Ipv4 { id: 1002, ..ipv4(lab, ipproto::TCP) }), L4::Tcp(data), &payload_200),
        expect: vec![
            ("/tcp/flags", json!(F::PSH | F::ACK)), ("/tcp/seq", json!(1001)), ("/tcp/ack", json!(2002)), ("/tcp/window", json!(502)),
            ("/tcp/hdr_len", json!(20)), ("/tcp/sack_ok", json!(false)), ("/ip/total_len", json!(20 + 20 + 200)),
            ("/payload_offset", json!(14 + 20 + 20)), ("/payload", json!(hex(&payload_200[..128]))),
        ],
        absent: vec!["/tcp/mss", "/tcp/ts", "/tcp/wscale"],
        malformed: None,
    });

    // 3. UDP with ECN.
    let p = b"udp payload 0123456789".to_vec();
    v.push(Case {
        name: "udp",
        frame: frames::frame(&eth, &[], L3::Ipv4(Ipv4 { tos: 0x02, id: 1003, ..ipv4(lab, ipproto::UDP) }), L4::Udp(Udp { sport: 5353, dport: 53 }), &p),
        expect: vec![
            ("/udp/sport", json!(5353)), ("/udp/dport", json!(53)), ("/udp/len", json!(8 + p.len())), ("/ip/ecn", json!(2)),
            ("/ip/dscp", json!(0)), ("/payload", json!(hex(&p))),
        ],
        absent: vec!["/tcp"],
        malformed: None,
    });

    // 4. ICMP echo request.
    v.push(Case {
        name: "icmp echo",
        frame: frames::frame(&eth, &[], L3::Ipv4(Ipv4 { id: 1004, ..ipv4(lab, ipproto::ICMP) }), L4::Icmp(Icmp { ty: 8, code: 0, id: 0x1234, seq: 7 }), b"ping!"),
        expect: vec![("/icmp/type", json!(8)), ("/icmp/code", json!(0)), ("/icmp/echo", json!([0x1234, 7])), ("/icmp/v6", json!(false)), ("/payload", json!(hex(b"ping!")))],
        absent: vec!["/tcp", "/udp"],
        malformed: None,
    });

    // 5. IPv4 with options (record-route style bytes: 7 bytes + NOP pad = 8).
    v.push(Case {
        name: "ipv4 options",
        frame: frames::frame(
            &eth, &[],
            L3::Ipv4(Ipv4 { id: 1005, options: vec![7, 7, 4, 0, 0, 0, 0, 1], ..ipv4(lab, ipproto::UDP) }),
            L4::Udp(Udp { sport: 1, dport: 2 }), b"x"),
        expect: vec![("/ip/options", json!(true)), ("/ip/hdr_len", json!(28)), ("/udp/dport", json!(2)), ("/payload_offset", json!(14 + 28 + 8))],
        absent: vec![],
        malformed: None,
    });

    // 6. IPv6 UDP behind a hop-by-hop header, with traffic class and flow label.
    let hbh = frames::pad_options(&[]);
    v.push(Case {
        name: "ipv6 hop-by-hop udp",
        frame: frames::frame(
            &eth, &[],
            L3::Ipv6(Ipv6 { hop_limit: 33, traffic_class: 0x29, flow_label: 0xabcde, ..ipv6(lab, ipproto::UDP) }, vec![Ext::HopByHop(hbh)]),
            L4::Udp(Udp { sport: 546, dport: 547 }), b"v6"),
        expect: vec![
            ("/ip/version", json!(6)), ("/ip/src", json!(a6)), ("/ip/dst", json!(b6)), ("/ip/ttl", json!(33)), ("/ip/dscp", json!(0x29 >> 2)),
            ("/ip/ecn", json!(1)), ("/ip/flow_label", json!(0xabcde)), ("/ip/ext_headers", json!([0])), ("/ip/proto", json!(17)),
            ("/ip/hdr_len", json!(48)), ("/ip/total_len", json!(40 + 8 + 8 + 2)), ("/udp/sport", json!(546)), ("/eth/ethertype", json!(0x86dd)),
        ],
        absent: vec!["/tcp"],
        malformed: None,
    });

    // 7. IPv6 TCP SYN behind routing + destination-options headers.
    let tcp6 = Tcp { sport: 443, dport: 50000, seq: 9, ack: 0, flags: F::SYN, window: 1000, urgent: 0, options: vec![TcpOpt::Mss(1220)] };
    v.push(Case {
        name: "ipv6 routing+dstopts tcp",
        frame: frames::frame(
            &eth, &[],
            L3::Ipv6(ipv6(lab, ipproto::TCP), vec![
                Ext::Routing { routing_type: 4, segments_left: 0, data: vec![0; 4] },
                Ext::DestOpts(frames::pad_options(&[])),
            ]),
            L4::Tcp(tcp6), &[]),
        expect: vec![("/ip/ext_headers", json!([43, 60])), ("/tcp/sport", json!(443)), ("/tcp/mss", json!(1220)), ("/ip/hdr_len", json!(40 + 8 + 8))],
        absent: vec![],
        malformed: None,
    });

    // 8. ICMPv6 echo.
    v.push(Case {
        name: "icmpv6 echo",
        frame: frames::frame(&eth, &[], L3::Ipv6(ipv6(lab, ipproto::ICMPV6), vec![]), L4::Icmpv6(Icmpv6 { ty: 128, code: 0, id: 77, seq: 3 }), b"6"),
        expect: vec![("/icmp/v6", json!(true)), ("/icmp/type", json!(128)), ("/icmp/echo", json!([77, 3]))],
        absent: vec![],
        malformed: None,
    });

    // 9. 802.1Q-tagged UDP.
    v.push(Case {
        name: "vlan udp",
        frame: frames::frame(&eth, &[Vlan { tpid: frames::TPID_8021Q, tci: (3 << 13) | 100 }], L3::Ipv4(Ipv4 { id: 1009, ..ipv4(lab, ipproto::UDP) }), L4::Udp(Udp { sport: 7, dport: 9 }), b"tagged"),
        expect: vec![
            ("/vlans", json!([{"tpid": 0x8100, "vid": 100, "pcp": 3, "dei": false}])), ("/eth/ethertype", json!(0x0800)),
            ("/udp/dport", json!(9)), ("/ip/id", json!(1009)), ("/payload_offset", json!(18 + 20 + 8)),
        ],
        absent: vec![],
        malformed: None,
    });

    // 10. 802.1ad outer + 802.1Q inner, TCP.
    let t = Tcp { sport: 1000, dport: 2000, seq: 5, ack: 6, flags: F::ACK, window: 10, urgent: 0, options: vec![] };
    v.push(Case {
        name: "qinq tcp",
        frame: frames::frame(
            &eth,
            &[Vlan { tpid: frames::TPID_8021AD, tci: 200 | 0x1000 }, Vlan { tpid: frames::TPID_8021Q, tci: 300 }],
            L3::Ipv4(Ipv4 { id: 1010, ..ipv4(lab, ipproto::TCP) }), L4::Tcp(t), &[]),
        expect: vec![
            ("/vlans", json!([{"tpid": 0x88a8, "vid": 200, "pcp": 0, "dei": true}, {"tpid": 0x8100, "vid": 300, "pcp": 0, "dei": false}])),
            ("/tcp/dport", json!(2000)), ("/tcp/flags", json!(F::ACK)),
        ],
        absent: vec![],
        malformed: None,
    });

    // 11./12. An IPv4 UDP datagram in two fragments: the first carries the UDP header.
    let dgram = frames::transport(lab.addr4_a().into(), lab.addr4_b().into(), &L4::Udp(Udp { sport: 3333, dport: 4444 }), &[0x5a; 100]);
    let (first, rest) = dgram.split_at(64);
    v.push(Case {
        name: "ipv4 first fragment",
        frame: frames::frame(&eth, &[], L3::Ipv4(Ipv4 { id: 4242, mf: true, ..ipv4(lab, ipproto::UDP) }), L4::None, first),
        expect: vec![
            ("/ip/fragment", json!(true)), ("/ip/mf", json!(true)), ("/ip/frag_offset", json!(0)), ("/ip/id", json!(4242)),
            ("/udp/sport", json!(3333)), ("/udp/dport", json!(4444)), ("/udp/len", json!(108)),
        ],
        absent: vec!["/malformed"],
        malformed: None,
    });
    v.push(Case {
        name: "ipv4 later fragment",
        frame: frames::frame(&eth, &[], L3::Ipv4(Ipv4 { id: 4242, frag_off_bytes: 64, ..ipv4(lab, ipproto::UDP) }), L4::None, rest),
        expect: vec![
            ("/ip/fragment", json!(true)), ("/ip/mf", json!(false)), ("/ip/frag_offset", json!(64)), ("/ip/id", json!(4242)),
            ("/payload_offset", json!(34)), ("/payload", json!(hex(rest))),
        ],
        absent: vec!["/udp", "/tcp"],
        malformed: None,
    });

    // 13. An IPv6 later fragment.
    v.push(Case {
        name: "ipv6 later fragment",
        frame: frames::frame(&eth, &[], L3::Ipv6(ipv6(lab, ipproto::UDP), vec![Ext::Fragment { offset_bytes: 1232, more: true, id: 0xdead_beef }]), L4::None, &[1; 16]),
        expect: vec![
            ("/ip/fragment", json!(true)), ("/ip/mf", json!(true)), ("/ip/frag_offset", json!(1232)), ("/ip/id", json!(0xdead_beef_u32)),
            ("/ip/ext_headers", json!([44])), ("/ip/proto", json!(17)),
        ],
        absent: vec!["/udp"],
        malformed: None,
    });

    // 14. ARP request.
    let arp = Arp { op: 1, sha: lab.mac_a(), spa: lab.addr4_a(), tha: [0; 6], tpa: lab.addr4_b() };
    v.push(Case {
        name: "arp",
        frame: frames::frame(&Eth { dst: [0xff; 6], src: lab.mac_a() }, &[], L3::Arp(arp), L4::None, &[]),
        expect: vec![
            ("/arp/op", json!(1)), ("/arp/sha", json!(mac(lab.mac_a()))), ("/arp/spa", json!(a4)), ("/arp/tpa", json!(b4)),
            ("/arp/tha", json!("00:00:00:00:00:00")), ("/eth/ethertype", json!(0x0806)),
        ],
        absent: vec!["/ip"],
        malformed: None,
    });

    // ---- malformed and truncated frames: passed on, counted by category ----
    let good_tcp = frames::frame(&eth, &[], L3::Ipv4(Ipv4 { id: 2000, ..ipv4(lab, ipproto::TCP) }), L4::Tcp(Tcp { sport: 1, dport: 2, seq: 0, ack: 0, flags: F::SYN, window: 0, urgent: 0, options: vec![] }), &[]);
    // IPv4 header cut after 10 bytes.
    v.push(Case { name: "ipv4 truncated", frame: frames::truncate(&good_tcp, 14 + 10), expect: vec![("/eth/ethertype", json!(0x0800))], absent: vec!["/ip"], malformed: Some("ipv4_truncated") });
    // IHL 3.
    let mut f = good_tcp.clone();
    f[14] = 0x43;
    v.push(Case { name: "ipv4 ihl 3", frame: f, expect: vec![], absent: vec!["/ip"], malformed: Some("ipv4_bad_header") });
    // Total length says 28: only 8 TCP bytes are there.
    let mut f = frames::truncate(&good_tcp, 14 + 28);
    f[16..18].copy_from_slice(&28u16.to_be_bytes());
    v.push(Case { name: "tcp truncated", frame: f, expect: vec![("/ip/proto", json!(6)), ("/ip/total_len", json!(28))], absent: vec!["/tcp"], malformed: Some("tcp_truncated") });
    // TCP data offset 3.
    let mut f = good_tcp.clone();
    f[14 + 20 + 12] = 3 << 4;
    v.push(Case { name: "tcp doff 3", frame: f, expect: vec![], absent: vec!["/tcp"], malformed: Some("tcp_bad_header") });
    // MSS option with length 5.
    let opt = Tcp { sport: 1, dport: 2, seq: 0, ack: 0, flags: F::SYN, window: 0, urgent: 0, options: vec![TcpOpt::Mss(1)] };
    let mut f = frames::frame(&eth, &[], L3::Ipv4(Ipv4 { id: 2001, ..ipv4(lab, ipproto::TCP) }), L4::Tcp(opt), &[]);
    f[14 + 20 + 20 + 1] = 5;
    v.push(Case { name: "tcp bad option", frame: f, expect: vec![], absent: vec![], malformed: Some("tcp_bad_option") });
    // UDP length field 4.
    let mut f = frames::frame(&eth, &[], L3::Ipv4(Ipv4 { id: 2002, ..ipv4(lab, ipproto::UDP) }), L4::Udp(Udp { sport: 1, dport: 2 }), b"abc");
    f[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&4u16.to_be_bytes());
    v.push(Case { name: "udp length 4", frame: f, expect: vec![("/ip/id", json!(2002))], absent: vec![], malformed: Some("udp_bad_length") });
    // A VLAN tag cut short.
    let mut f = eth_header(&eth, 0x8100);
    f.extend_from_slice(&[0x00, 0x64]);
    v.push(Case { name: "vlan truncated", frame: f, expect: vec![], absent: vec!["/vlans"], malformed: Some("vlan_truncated") });
    // Three VLAN tags.
    let tags = [Vlan { tpid: 0x88a8, tci: 1 }, Vlan { tpid: 0x8100, tci: 2 }, Vlan { tpid: 0x8100, tci: 3 }];
    let f = frames::frame(&eth, &tags, L3::Ipv4(Ipv4 { id: 2003, ..ipv4(lab, ipproto::UDP) }), L4::Udp(Udp { sport: 1, dport: 2 }), b"");
    v.push(Case { name: "three vlan tags", frame: f, expect: vec![("/vlans/1/vid", json!(2))], absent: vec!["/ip"], malformed: Some("vlan_too_deep") });
    // Nine destination-options headers: longer than the walk's bound.
    let exts = (0..9).map(|_| Ext::DestOpts(frames::pad_options(&[]))).collect();
    let f = frames::frame(&eth, &[], L3::Ipv6(ipv6(lab, ipproto::UDP), exts), L4::Udp(Udp { sport: 1, dport: 2 }), b"");
    v.push(Case { name: "ipv6 ext chain", frame: f, expect: vec![("/ip/version", json!(6))], absent: vec!["/udp"], malformed: Some("ipv6_ext_chain_too_long") });
    // IPv6 payload length beyond the frame.
    let mut f = frames::frame(&eth, &[], L3::Ipv6(ipv6(lab, ipproto::UDP), vec![]), L4::Udp(Udp { sport: 1, dport: 2 }), b"12345678");
    f[14 + 4..14 + 6].copy_from_slice(&500u16.to_be_bytes());
    v.push(Case { name: "ipv6 truncated", frame: f, expect: vec![], absent: vec!["/ip"], malformed: Some("ipv6_truncated") });
    v
}

fn eth_header(eth: &Eth, ethertype: u16) -> Vec<u8> {
    let mut f = eth.dst.to_vec();
    f.extend_from_slice(&eth.src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn unix_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn check_event(c: &Case, ev: &Value, lab: &Lab, sent_window: (u64, u64)) {
    let ctx = format!("case {:?}: event {ev}", c.name);
    let ts = ev["ts_ns"].as_u64().expect("ts_ns");
    assert!(ts >= sent_window.0 && ts <= sent_window.1, "{ctx}: arrival time outside the sending window {sent_window:?}");
    assert_eq!(ev["len"], json!(c.frame.len()), "{ctx}: len");
    assert_eq!(ev["iface"], json!("veth-b"), "{ctx}");
    assert_eq!(ev["ifindex"], json!(lab.ifindex_b()), "{ctx}");
    assert_eq!(ev["rx_queue"], json!(0), "{ctx}: single-queue veth");
    assert_eq!(ev.pointer("/malformed").cloned(), c.malformed.map(|m| json!(m)), "{ctx}: malformed");
    for (ptr, want) in &c.expect {
        assert_eq!(ev.pointer(ptr), Some(want), "{ctx}: {ptr}");
    }
    for ptr in &c.absent {
        assert!(ev.pointer(ptr).is_none(), "{ctx}: {ptr} should be absent");
    }
}

fn watch_frames(mode: &str) {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let mut cases = cases(&lab);
    if mode == "tc" {
        // The stack takes the outer VLAN tag off before TC and drops a frame whose tag is cut
        // short (skb_vlan_untag): only XDP, before the stack, sees that one.
        cases.retain(|c| c.name != "vlan truncated");
    }
    let mut w = Running::start(lab.ns_b(), &["watch", "-i", "veth-b", "--json", "--xdp-mode", mode]);
    w.wait_stderr("rxray: watching veth-b", Duration::from_secs(20));
    let frames: Vec<Vec<u8>> = cases.iter().map(|c| c.frame.clone()).collect();
    let t0 = unix_ns();
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &frames).expect("send"), frames.len());
    let t1 = unix_ns();
    let got_all = w.wait_lines(frames.len(), Duration::from_secs(10));
    // A moment more, so any extra event would be seen too.
    std::thread::sleep(Duration::from_millis(300));
    let (code, stdout, stderr) = w.interrupt();
    assert_eq!(code, Some(0), "watch exit; stderr: {stderr:?}");
    assert!(got_all, "only {} of {} events; stderr {stderr:?}", stdout.len(), frames.len());
    let events = json_lines(&stdout);
    assert_eq!(events.len(), cases.len(), "exactly the frames sent, each once: {stdout:#?}");
    for (c, ev) in cases.iter().zip(&events) {
        check_event(c, ev, &lab, (t0, t1));
    }
    let s = summary(&stderr);
    assert_eq!(s["packets"], json!(cases.len()), "{s}");
    assert_eq!(s["delivered"], json!(cases.len()), "{s}");
    assert_eq!(s["lost"], json!(0), "{s}");
    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    for c in &cases {
        if let Some(m) = c.malformed {
            *want.entry(m).or_default() += 1;
        }
    }
    let want_total: u64 = want.values().sum();
    assert_eq!(s["malformed"], json!(want_total), "{s}");
    assert_eq!(s["malformed_by"], json!(want), "{s}");
    assert_eq!(s["bytes"], json!(frames.iter().map(|f| f.len()).sum::<usize>()), "{s}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn watch_reports_every_field_native() {
    watch_frames("native");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn watch_reports_every_field_generic() {
    watch_frames("generic");
}

/// The default on a veth: the TC build sees the same fields (the outer VLAN tag, which the stack
/// takes off before TC, included).
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn watch_reports_every_field_tc() {
    watch_frames("tc");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn watch_text_output_reads_like_tcpdump() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let syn = Tcp { sport: 40001, dport: 80, seq: 7, ack: 0, flags: F::SYN, window: 512, urgent: 0, options: vec![TcpOpt::Mss(1460)] };
    let f = frames::frame(&eth, &[], L3::Ipv4(Ipv4 { ttl: 64, id: 5, df: true, ..ipv4(&lab, ipproto::TCP) }), L4::Tcp(syn), &[]);
    let mut w = Running::start(lab.ns_b(), &["watch", "-i", "veth-b", "-c", "1"]);
    w.wait_stderr("rxray: watching", Duration::from_secs(20));
    send_frames(lab.ns_a(), "veth-a", &[f]).expect("send");
    let (code, stdout, stderr) = w.finish();
    assert_eq!(code, Some(0), "{stderr:?}");
    assert_eq!(stdout.len(), 1, "{stdout:?}");
    let want = format!(
        "veth-b q0 {} > {}, ethertype 0x0800, length 58: IP (tos 0x0, ttl 64, id 5, offset 0, flags [DF], proto TCP (6), length 44) {}.40001 > {}.80: Flags [S], seq 7, win 512, options [mss 1460]",
        mac(lab.mac_a()), mac(lab.mac_b()), lab.addr4_a(), lab.addr4_b()
    );
    assert!(stdout[0].ends_with(&want), "got  {}\nwant …{want}", stdout[0]);
    assert!(stderr.iter().any(|l| l.contains("1 packets seen, 1 delivered, 0 lost")), "{stderr:?}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn watch_counts_ring_buffer_loss_exactly() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let sent = 300usize;
    let frames: Vec<Vec<u8>> = (0..sent)
        .map(|i| frames::frame(&eth, &[], L3::Ipv4(Ipv4 { id: i as u16, ..ipv4(&lab, ipproto::UDP) }), L4::Udp(Udp { sport: 1000, dport: 2000 }), b"loss"))
        .collect();
    // One page of ring (a handful of events) and a reader that sleeps through the burst.
    let mut w = Running::start(lab.ns_b(), &["watch", "-i", "veth-b", "--json", "--ring-size", "4096", "--stall-ms", "3000"]);
    w.wait_stderr("rxray: watching", Duration::from_secs(20));
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &frames).expect("send"), sent);
    std::thread::sleep(Duration::from_millis(3500));
    let (code, stdout, stderr) = w.interrupt();
    assert_eq!(code, Some(0), "{stderr:?}");
    let s = summary(&stderr);
    let delivered = stdout.len() as u64;
    assert_eq!(s["delivered"], json!(delivered), "{s}");
    assert_eq!(s["packets"], json!(sent), "{s}");
    let lost = s["lost"].as_u64().unwrap();
    assert!(lost > 0, "the tiny ring must have lost events: {s}");
    assert_eq!(lost, sent as u64 - delivered, "lost = sent - delivered: {s}");
    // What did arrive is the head of the burst, in order.
    let ids: Vec<u64> = json_lines(&stdout).iter().map(|e| e["ip"]["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (0..delivered).collect::<Vec<_>>());
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn watch_errors_are_one_clear_line() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let w = Running::start(lab.ns_b(), &["watch", "-i", "nosuch0"]);
    let (code, _out, err) = w.finish();
    assert_eq!(code, Some(1));
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].contains("no interface named \"nosuch0\""), "{err:?}");

    // Not root: run as nobody.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", rxray_bin(), "watch", "-i", "lo"])
        .output()
        .expect("setpriv");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.trim().lines().count() == 1 && err.contains("needs root"), "{err}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn watch_drains_a_large_backlog_on_sigint() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let sent = 6000usize; // more than one 4096-event read batch
    let frames: Vec<Vec<u8>> = (0..sent)
        .map(|i| frames::frame(&eth, &[], L3::Ipv4(Ipv4 { id: i as u16, ..ipv4(&lab, ipproto::UDP) }), L4::Udp(Udp { sport: 1, dport: 2 }), b"b"))
        .collect();
    // The reader sleeps while the backlog builds and the signal arrives; it must still deliver all of it.
    let mut w = Running::start(lab.ns_b(), &["watch", "-i", "veth-b", "--json", "--stall-ms", "3000"]);
    w.wait_stderr("rxray: watching", Duration::from_secs(20));
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &frames).expect("send"), sent);
    let (code, stdout, stderr) = w.interrupt();
    assert_eq!(code, Some(0), "{stderr:?}");
    let s = summary(&stderr);
    assert_eq!(s["lost"], json!(0), "{s}");
    assert_eq!(s["packets"], json!(sent), "{s}");
    assert_eq!(stdout.len(), sent, "every event in the ring at SIGINT is delivered");
    assert_eq!(s["delivered"], json!(sent));
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn watch_names_the_process_and_cgroup_that_read_a_flow() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let cg = Cgroup::new();
    let port = 5703u16;
    let mut r = Running::start(lab.ns_b(), &["watch", "-i", "veth-b", "--json", "udp", "and", "dst", "port", "5703"]);
    r.wait_stderr("rxray: watching veth-b", Duration::from_secs(20));
    let receiver = r#"
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(20)
print("ready", os.getpid(), flush=True)
for i in range(6):
    d, peer = s.recvfrom(100); s.sendto(b"k", peer)
print("done", flush=True); sys.stdin.readline()
"#;
    // 400 ms between datagrams: watch re-reads who read what every 200 ms.
    let sender = r#"
import socket, sys, time
k = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); k.settimeout(20); k.connect((sys.argv[1], int(sys.argv[2])))
for i in range(6):
    k.send(b"datagram %d" % i); assert k.recv(8) == b"k"; time.sleep(0.4)
print("sent", k.getsockname()[1], flush=True)
"#;
    let args = [lab.addr4_b().to_string(), port.to_string()];
    let mut rx = Kid::python(&lab, lab.ns_b(), receiver, &args);
    let pid: u32 = rx.line().strip_prefix("ready ").expect("ready <pid>").parse().unwrap();
    cg.add(pid);
    let mut tx = Kid::python(&lab, lab.ns_a(), sender, &args);
    let cport: u16 = tx.line().strip_prefix("sent ").expect("sent <port>").parse().unwrap();
    assert_eq!(rx.line(), "done");
    r.wait_lines(6, Duration::from_secs(5));
    rx.say("bye");
    let (code, out, err) = r.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let evs: Vec<Value> = json_lines(&out).into_iter().filter(|v| v["udp"]["sport"] == json!(cport)).collect();
    assert_eq!(evs.len(), 6, "{out:?}");
    // The first datagram arrives before anyone read the socket; from the third on, the reader is known.
    for ev in &evs[2..] {
        let rd = &ev["reader"];
        assert_eq!(rd["pid"], json!(pid), "{ev}");
        assert_eq!(rd["comm"], json!("python3"), "{ev}");
        assert_eq!(rd["cgroup"], json!(cg.rel()), "{ev}");
    }
}
