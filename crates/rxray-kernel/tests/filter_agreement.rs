//! Filters: the kernel (the real XDP program under BPF_PROG_TEST_RUN, filter loaded, events on),
//! user space (`rxray_wire::dissect` + `Filter::matches`) and tcpdump (`tcpdump -r FILE -w - EXPR`)
//! must pick exactly the same packets of a generated capture, for a fixed list of expressions and
//! for seeded random ones. Needs root and tcpdump (fails under CI=true without them).
//!
//! Generation stays where tcpdump's BPF and rxray's parsed fields read the same bytes: well-formed
//! frames only (tcpdump reads raw offsets even in broken headers), no SCTP or RARP (rxray does not
//! parse them), and random expressions use `vlan` only as a leading `vlan and (...)` (tcpdump's
//! `vlan` shifts later offsets, so `vlan or ip` reads an untagged ARP's protocol type as an
//! ethertype; rxray's tests never match a frame with a different number of tags).
use aya::programs::{TestRun, TestRunOptions};
use rxray_engine::filter::Filter;
use rxray_io::{write::PcapWriter, CaptureReader};
use rxray_kernel::{filter as kfilter, Ingress, IngressOptions};
use rxray_lab::frames::{self as f, Arp, Eth, Ext, Icmp, Icmpv6, Ipv4, Ipv6, Tcp, Udp, Vlan, L3, L4};
use rxray_lab::testing::Rng;
use rxray_lab::testing::{have, need_root, skip_or_fail, TempDir};
use rxray_wire::{dissect, LinkType};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;

const V4: [&str; 5] = ["198.18.0.1", "198.18.0.2", "198.19.5.9", "10.1.2.3", "192.0.2.77"];
const V6: [&str; 4] = ["2001:2::a", "2001:2::b", "2001:2:0:1::5", "fe80::1"];
const PORTS: [u16; 10] = [53, 80, 443, 1000, 1500, 2000, 5353, 40001, 8080, 22];
const FLAGS: [u8; 9] = [0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01, 0x29];

fn frames(seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut r = Rng(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let eth = Eth { dst: [2, 0, 0, 0, 0, 0xb], src: [2, 0, 0, 0, 0, 0xa] };
        let vlans: Vec<Vlan> = match r.below(10) {
            0..=5 => vec![],
            6..=8 => vec![Vlan { tpid: f::TPID_8021Q, tci: r.pick(&[5u16, 100, 200]) | (r.below(8) as u16) << 13 }],
            _ => vec![Vlan { tpid: f::TPID_8021AD, tci: r.pick(&[100u16, 300]) }, Vlan { tpid: f::TPID_8021Q, tci: r.pick(&[5u16, 100]) }],
        };
        let a4 = |r: &mut Rng| r.pick(&V4).parse::<Ipv4Addr>().unwrap();
        let a6 = |r: &mut Rng| r.pick(&V6).parse::<Ipv6Addr>().unwrap();
        let port = |r: &mut Rng| if r.below(5) == 0 { r.next() as u16 } else { r.pick(&PORTS) };
        let payload: Vec<u8> = (0..r.below(300)).map(|_| r.next() as u8).collect();
        let tcp = |r: &mut Rng| {
            let flags = if r.below(4) == 0 { r.next() as u8 } else { r.pick(&FLAGS) };
            L4::Tcp(Tcp { sport: port(r), dport: port(r), seq: r.next() as u32, ack: r.next() as u32, flags, window: 1000, urgent: 0, options: vec![] })
        };
        let udp = |r: &mut Rng| L4::Udp(Udp { sport: port(r), dport: port(r) });
        let ip4 = |r: &mut Rng, proto: u8| Ipv4 {
            src: a4(r), dst: a4(r), ttl: 64, tos: 0, id: i as u16, df: r.below(2) == 0, mf: false, frag_off_bytes: 0, options: vec![], protocol: proto,
        };
        let ip6 = |r: &mut Rng, nh: u8| Ipv6 { src: a6(r), dst: a6(r), hop_limit: 64, traffic_class: 0, flow_label: r.below(1 << 20) as u32, next_header: nh };
        let (l3, l4) = match r.below(14) {
            0 | 1 => (L3::Ipv4(ip4(&mut r, 6)), tcp(&mut r)),
            2 | 3 => (L3::Ipv4(ip4(&mut r, 17)), udp(&mut r)),
            4 => (L3::Ipv4(ip4(&mut r, 1)), L4::Icmp(Icmp { ty: r.pick(&[0u8, 8, 3]), code: 0, id: 1, seq: 2 })),
            5 => (L3::Ipv6(ip6(&mut r, 6), vec![]), tcp(&mut r)),
            6 => (L3::Ipv6(ip6(&mut r, 17), vec![]), udp(&mut r)),
            7 => (L3::Ipv6(ip6(&mut r, 58), vec![]), L4::Icmpv6(Icmpv6 { ty: r.pick(&[128u8, 129, 135]), code: 0, id: 1, seq: 2 })),
            8 => {
                let arp = Arp { op: 1 + r.below(2) as u16, sha: eth.src, spa: a4(&mut r), tha: [0; 6], tpa: a4(&mut r) };
                (L3::Arp(arp), L4::None)
            }
            9 => {
                // IPv4 first fragment (ports visible) or later fragment (no L4 header).
                let proto = r.pick(&[6u8, 17]);
                let mut ip = ip4(&mut r, proto);
                ip.df = false;
                if r.below(2) == 0 {
                    ip.mf = true;
                    (L3::Ipv4(ip), if proto == 6 { tcp(&mut r) } else { udp(&mut r) })
                } else {
                    ip.frag_off_bytes = 8 * (1 + r.below(100)) as u16;
                    ip.mf = r.below(2) == 0;
                    (L3::Ipv4(ip), L4::None)
                }
            }
            10 => {
                let proto = r.pick(&[6u8, 17, 58]);
                let first = r.below(2) == 0;
                let ext = Ext::Fragment { offset_bytes: if first { 0 } else { 8 * (1 + r.below(100)) as u16 }, more: first, id: r.next() as u32 };
                let l4 = match (first, proto) {
                    (false, _) => L4::None,
                    (true, 6) => tcp(&mut r),
                    (true, 17) => udp(&mut r),
                    _ => L4::Icmpv6(Icmpv6 { ty: 128, code: 0, id: 1, seq: 1 }),
                };
                (L3::Ipv6(ip6(&mut r, proto), vec![ext]), l4)
            }
            11 => (L3::Ipv6(ip6(&mut r, 6), vec![Ext::DestOpts(f::pad_options(&[]))]), tcp(&mut r)),
            12 => (L3::Raw { ethertype: 0x88cc, bytes: vec![2, 7, 4, 0, 0, 0, 0, 0, 1] }, L4::None),
            _ => (L3::Ipv4(ip4(&mut r, 17)), L4::Udp(Udp { sport: port(&mut r), dport: 53 })),
        };
        let payload = if matches!(l3, L3::Arp(_) | L3::Raw { .. }) { &payload[..payload.len().min(20)] } else { &payload[..] };
        out.push(f::frame(&eth, &vlans, l3, l4, payload));
    }
    out
}

const FIXED: &[&str] = &[
    "tcp", "udp", "icmp", "icmp6", "ip", "ip6", "arp", "vlan", "vlan 100", "not vlan", "vlan and ip", "vlan and vlan and udp",
    "vlan 100 and udp", "vlan 300 and vlan 5 and tcp", "host 198.18.0.1", "src host 198.18.0.1", "dst host 198.18.0.2",
    "host 2001:2::a", "src or dst host 198.19.5.9", "src and dst net 198.18.0.0/15", "net 198.18.0.0/15", "net 10",
    "net 2001:2::/32", "dst net 2001:2:0:1::/64", "net 198.19.0.0 mask 255.255.0.0", "port 53", "dst port 53", "src port 443",
    "tcp port 80", "udp port 53 or 5353", "portrange 1000-2000", "tcp dst portrange 1-1024", "udp src portrange 5000-6000",
    "tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "tcp[13] = 0x12",
    "tcp[tcpflags] & (tcp-rst|tcp-fin) != 0", "tcp[tcpflags] & tcp-push != 0 and tcp[tcpflags] & tcp-ack != 0", "len > 100",
    "greater 200", "less 100", "len = 60", "len <= 74", "udp and dst port 53", "host 198.18.0.1 or 198.18.0.2 and not port 80",
    "not (tcp or udp)", "ip and not tcp", "ip6 and (tcp or icmp6)", "arp and host 198.18.0.2", "arp host 10.1.2.3",
    "ip host 10.1.2.3", "vlan and host 198.18.0.1", "vlan and (port 53 or icmp6)", "tcp or udp and not icmp",
    "! tcp && udp || arp",
];

/// Random expressions over primitives tcpdump and rxray read the same way.
fn random_expr(r: &mut Rng, depth: u32) -> String {
    const PRIMS: &[&str] = &[
        "tcp", "udp", "icmp", "icmp6", "ip", "ip6", "arp", "host 198.18.0.1", "src host 198.18.0.2", "dst host 10.1.2.3",
        "host 2001:2::b", "src net 2001:2::/48", "net 198.19.0.0/16", "port 53", "src port 80", "dst port 443",
        "tcp port 40001", "udp dst port 5353", "portrange 1000-2000", "src portrange 1-1023", "less 120", "greater 300",
        "len >= 100", "len != 78", "tcp[tcpflags] & tcp-syn != 0", "tcp[13] & (tcp-fin|tcp-rst) != 0",
        "tcp[tcpflags] == tcp-ack", "tcp[tcpflags] & 0x18 == 0x18",
    ];
    if depth == 0 || r.below(3) == 0 {
        let p = r.pick(PRIMS).to_string();
        return if r.below(5) == 0 { format!("not {p}") } else { p };
    }
    let a = random_expr(r, depth - 1);
    let b = random_expr(r, depth - 1);
    let op = r.pick(&["and", "or", "&&", "||"]);
    match r.below(4) {
        0 => format!("({a}) {op} {b}"),
        1 => format!("not ({a} {op} {b})"),
        _ => format!("{a} {op} {b}"),
    }
}

/// tcpdump's verdicts, from its unoptimised BPF (-O): libpcap 1.10.3's optimiser miscompiles some
/// expressions, e.g. `not src net 2001:2::/48 and udp or src net 2001:2::/48` rejects an IPv6 TCP
/// packet from 2001:2:0:1::5 (the unoptimised code, and pcap-filter(7), accept it).
fn tcpdump_matches(file: &std::path::Path, expr: &str) -> BTreeSet<usize> {
    let out = Command::new("tcpdump")
        .args(["-O", "-Z", "root", "-nn", "-r"])
        .arg(file)
        .args(["-w", "-", expr])
        .output()
        .expect("run tcpdump");
    // tcpdump's optimiser refuses an expression it proves unsatisfiable: that is an empty match.
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("expression rejects all packets") {
        return BTreeSet::new();
    }
    assert!(out.status.success(), "tcpdump rejected {expr:?}: {}", String::from_utf8_lossy(&out.stderr));
    let mut rd = CaptureReader::new(&out.stdout[..]).expect("tcpdump's output");
    let mut set = BTreeSet::new();
    while let Some(rec) = rd.next_record() {
        let rec = rec.expect("record");
        set.insert((rec.ts_ns / 1_000_000_000 - 1) as usize);
    }
    set
}

fn kernel_matches(ingress: &mut Ingress, filter: &Filter, frames: &[Vec<u8>]) -> BTreeSet<usize> {
    ingress.set_filter(Some(filter)).expect("install the filter");
    let mut set = BTreeSet::new();
    for (i, fr) in frames.iter().enumerate() {
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(fr);
        let r = ingress.program().test_run(opts).expect("BPF_PROG_TEST_RUN");
        assert_eq!(r.return_value, 2, "XDP_PASS whatever the filter says");
        let mut n = 0;
        while ingress.ring().next().is_some() {
            n += 1;
        }
        assert!(n <= 1, "one event at most per frame");
        if n == 1 {
            set.insert(i);
        }
    }
    set
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn kernel_user_space_and_tcpdump_pick_the_same_packets() {
    if !need_root() {
        return;
    }
    if !have("tcpdump") {
        skip_or_fail("tcpdump is not installed");
        return;
    }
    let dir = TempDir::new();
    let file = dir.path().join("filter.pcap");
    let frames = frames(0xf117_e125, 400);
    let mut w = PcapWriter::new(std::fs::File::create(&file).unwrap(), LinkType::ETHERNET, 65535).unwrap();
    for (i, fr) in frames.iter().enumerate() {
        w.write_packet((i as u64 + 1) * 1_000_000_000, fr.len() as u32, fr).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let packets: Vec<_> = frames.iter().map(|fr| dissect(fr, LinkType::ETHERNET, 0, fr.len() as u32, "lo", 0)).collect();
    assert!(packets.iter().all(|p| p.malformed.is_none()), "the generator makes well-formed frames only");

    let mut ingress = Ingress::load(&IngressOptions { payload_snap: 0, flows: false, ..Default::default() }).expect("load the XDP program");
    let mut exprs: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
    let mut r = Rng(0x5eed_f11e);
    let mut random = 0;
    while random < 150 {
        let e = random_expr(&mut r, 3);
        // Keep those the kernel program can hold; some also under a leading vlan.
        if Filter::parse(&e).ok().and_then(|f| kfilter::compile(&f).ok()).is_some() {
            exprs.push(if random % 10 == 0 { format!("vlan and ({e})") } else { e });
            random += 1;
        }
    }
    let mut rejected = 0u64;
    let mut nonempty = 0;
    for e in &exprs {
        let filter = Filter::parse(e).unwrap_or_else(|err| panic!("{e:?}: {err}"));
        let prog = kfilter::compile(&filter).unwrap_or_else(|err| panic!("{err}"));
        let user: BTreeSet<usize> = packets.iter().enumerate().filter(|(_, p)| filter.matches(p)).map(|(i, _)| i).collect();
        // The Rust model of the kernel interpreter agrees with the lowered tests.
        for (i, p) in packets.iter().enumerate() {
            let (s, a) = kfilter::fields_of(p);
            assert_eq!(kfilter::run(&prog, &s, &a), user.contains(&i), "{e:?}: compiled program vs tests, packet {i}");
        }
        let kernel = kernel_matches(&mut ingress, &filter, &frames);
        let tcpdump = tcpdump_matches(&file, e);
        let show = |set: &BTreeSet<usize>, other: &BTreeSet<usize>| -> Vec<String> {
            set.symmetric_difference(other).take(5).map(|i| format!("#{i} {}", rxray_wire::event::hex_string(&frames[*i]))).collect()
        };
        assert_eq!(user, tcpdump, "{e:?}: user space vs tcpdump differ on {:?}", show(&user, &tcpdump));
        assert_eq!(kernel, tcpdump, "{e:?}: kernel vs tcpdump differ on {:?}", show(&kernel, &tcpdump));
        rejected += (frames.len() - kernel.len()) as u64;
        if !kernel.is_empty() && kernel.len() < frames.len() {
            nonempty += 1;
        }
    }
    // The expressions discriminate (most select some packets but not all).
    assert!(nonempty * 10 >= exprs.len() * 7, "only {nonempty} of {} expressions split the capture", exprs.len());
    assert_eq!(ingress.totals().unwrap().filtered, rejected, "RXRAY_C_FILTERED counts every rejected packet");
}
