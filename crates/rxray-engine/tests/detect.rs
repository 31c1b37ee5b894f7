//! Detectors on synthetic packet streams built here, always with `DetectConfig::default()`: each
//! attack raises its alert within 2 s of event time after it starts, each look-alike of ordinary
//! traffic stays silent, and a long mix of ordinary traffic raises nothing at all.
use rxray_engine::alert::Alert;
use rxray_engine::cidr::{CidrSet, ParseMode};
use rxray_engine::detect::{ActionKind, ConnSummary, DetectConfig, Detectors, Mitigation};
use rxray_engine::event::{Icmp, Ip, Packet, Tcp, Udp};
use rxray_lab::testing::Rng;
use rxray_wire::dissect::empty_packet;
use std::net::{IpAddr, Ipv4Addr};

const SEC: u64 = 1_000_000_000;
/// Event time of the start of every stream (2026-11-18), nanoseconds since the epoch.
const T0: u64 = 1_795_000_000 * SEC;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// The host under watch, and its neighbours (RFC 2544 benchmarking range).
fn host() -> IpAddr {
    v4(198, 18, 0, 2)
}

fn base(ts: u64, src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> Packet {
    let mut p = empty_packet();
    p.ts_ns = ts;
    p.ifindex = 2;
    p.iface = "veth-b".into();
    p.len = len;
    p.ip = Some(Ip {
        version: if src.is_ipv4() { 4 } else { 6 },
        src,
        dst,
        ttl: 64,
        dscp: 0,
        ecn: 0,
        id: 0,
        df: true,
        mf: false,
        frag_offset: 0,
        fragment: false,
        proto,
        hdr_len: 20,
        total_len: (len - 14) as u16,
        options: false,
        flow_label: 0,
        ext_headers: Vec::new(),
    });
    p
}

fn tcp(ts: u64, src: IpAddr, sport: u16, dst: IpAddr, dport: u16, flags: u8, len: u32) -> Packet {
    let mut p = base(ts, src, dst, 6, len);
    p.tcp = Some(Tcp {
        sport,
        dport,
        seq: 0,
        ack: 0,
        flags,
        window: 65535,
        hdr_len: 20,
        mss: None,
        wscale: None,
        sack_ok: false,
        sack: false,
        ts: None,
    });
    p
}

fn udp(ts: u64, src: IpAddr, sport: u16, dst: IpAddr, dport: u16, len: u32) -> Packet {
    let mut p = base(ts, src, dst, 17, len);
    p.udp = Some(Udp { sport, dport, len: (len - 34) as u16 });
    p
}

fn ping(ts: u64, src: IpAddr, dst: IpAddr) -> Packet {
    let mut p = base(ts, src, dst, 1, 98);
    p.icmp = Some(Icmp { v6: false, ty: 8, code: 0, echo: Some((1, 1)) });
    p
}

/// Feeds packets in event-time order; returns every alert that came out.
fn feed(d: &mut Detectors, mut pkts: Vec<Packet>) -> Vec<Alert> {
    pkts.sort_by_key(|p| p.ts_ns);
    let mut out = Vec::new();
    for p in &pkts {
        d.on_packet(p, &mut out);
    }
    out
}

fn detectors() -> Detectors {
    Detectors::new(DetectConfig::default(), &[host()]).unwrap()
}

fn of<'a>(alerts: &'a [Alert], detector: &str) -> Vec<&'a Alert> {
    alerts.iter().filter(|a| a.detector() == detector).collect()
}

fn names(alerts: &[Alert]) -> Vec<String> {
    alerts.iter().map(|a| format!("{}@{}", a.detector(), a.subject)).collect()
}

/// `n` packets spread evenly over `secs` seconds from `start`.
fn spread(start: u64, secs: f64, n: u64) -> impl Iterator<Item = (u64, u64)> {
    let step = (secs * 1e9 / n as f64) as u64;
    (0..n).map(move |i| (i, start + i * step))
}

/// Ordinary traffic for `secs` seconds from `start`, as the host sees it arrive: a bulk TCP
/// upload to it (iperf-like), HTTP on two keep-alive connections at ~5k req/s (wrk-like), short
/// HTTP connections with full handshakes, the host's own HTTPS client connections (SYN-ACKs and
/// data back to its ephemeral ports), DNS queries to it and DNS answers to its ephemeral ports,
/// and a ping per second. Returns one second at a time, so memory stays small.
fn ordinary_second(rng: &mut Rng, sec: u64, conn_base: &mut u32) -> Vec<Packet> {
    let start = T0 + sec * SEC;
    let h = host();
    let (iperf, wrk, web, dns, pinger) = (v4(198, 18, 0, 1), v4(198, 18, 0, 3), v4(198, 18, 1, 7), v4(198, 18, 0, 53), v4(198, 18, 0, 9));
    let mut v = Vec::with_capacity(30_000);
    // iperf-like: 8,000 full-size segments/s on one connection.
    for (_, t) in spread(start, 1.0, 8000) {
        v.push(tcp(t, iperf, 40_000, h, 5201, ACK | PSH, 1514));
    }
    // wrk-like: 2 connections, ~5,000 requests/s in total, each request followed by the client's
    // ACK of the response.
    for (i, t) in spread(start, 1.0, 5000) {
        let sport = 50_000 + (i % 2) as u16;
        v.push(tcp(t, wrk, sport, h, 80, ACK | PSH, 180));
        v.push(tcp(t + 150_000, wrk, sport, h, 80, ACK, 66));
    }
    // Short connections: 200/s, each SYN, ACK, request, FIN+ACK, ACK.
    for (i, t) in spread(start, 1.0, 200) {
        *conn_base = conn_base.wrapping_add(1);
        let sport = 20_000 + (*conn_base % 30_000) as u16;
        let c = v4(198, 18, 2, (i % 50) as u8 + 1);
        v.push(tcp(t, c, sport, h, 80, SYN, 74));
        v.push(tcp(t + 200_000, c, sport, h, 80, ACK, 66));
        v.push(tcp(t + 210_000, c, sport, h, 80, ACK | PSH, 200));
        v.push(tcp(t + 900_000, c, sport, h, 80, ACK | FIN, 66));
        v.push(tcp(t + 1_100_000, c, sport, h, 80, ACK, 66));
    }
    // The host as an HTTPS client: 50 connections/s, replies arrive at its ephemeral ports.
    for (i, t) in spread(start, 1.0, 50) {
        let eport = 32_768 + ((sec * 50 + i) % 28_000) as u16;
        v.push(tcp(t, web, 443, h, eport, SYN | ACK, 74));
        for k in 0..6 {
            v.push(tcp(t + 1_000_000 * (k + 1), web, 443, h, eport, ACK | PSH, 1400));
        }
        v.push(tcp(t + 9_000_000, web, 443, h, eport, ACK | FIN, 66));
    }
    // DNS: 300 queries/s to the host from ephemeral ports, 100 answers/s to its ephemeral ports.
    for (_, t) in spread(start, 1.0, 300) {
        v.push(udp(t, dns, 1024 + (rng.below(60_000) as u16), h, 53, 80));
    }
    for (i, t) in spread(start, 1.0, 100) {
        v.push(udp(t, dns, 53, h, 32_768 + ((sec * 100 + i) % 28_000) as u16, 120));
    }
    v.push(ping(start + 500_000_000, pinger, h));
    v
}

#[test]
fn ordinary_traffic_for_100_seconds_raises_nothing() {
    let mut d = detectors();
    let mut rng = Rng(7);
    let mut conn = 0;
    let mut alerts = Vec::new();
    let mut packets = 0;
    for sec in 0..100 {
        let v = ordinary_second(&mut rng, sec, &mut conn);
        packets += v.len();
        alerts.extend(feed(&mut d, v));
    }
    // A nightly backup to a known destination, and small connections to new ones.
    let backup = v4(203, 0, 113, 50);
    let mut out = Vec::new();
    for day in 0..5u64 {
        d.on_conn(&conn_to(backup, 10 << 20, T0 + day * SEC), &mut out);
    }
    d.on_conn(&conn_to(backup, 900 << 20, T0 + 99 * SEC), &mut out);
    d.on_conn(&conn_to(v4(203, 0, 113, 77), 40_000, T0 + 99 * SEC), &mut out);
    alerts.extend(out);
    assert!(packets > 1_900_000, "{packets} packets");
    assert_eq!(names(&alerts), Vec::<String>::new(), "ordinary traffic alerted: {alerts:#?}");
    assert_eq!(d.stats().alerts, 0);
}

/// Warm-up: 15 s of a light version of ordinary traffic (enough for the spike detector).
fn warm(d: &mut Detectors) -> Vec<Alert> {
    let mut v = Vec::new();
    for (i, t) in spread(T0, 15.0, 15 * 2000) {
        v.push(tcp(t, v4(198, 18, 0, 1), 40_000, host(), 5201, ACK, 1514));
        if i % 10 == 0 {
            v.push(udp(t, v4(198, 18, 0, 53), 2000 + (i % 3) as u16, host(), 53, 80));
        }
    }
    feed(d, v)
}

fn within_2s(a: &Alert, start: u64) {
    assert!(a.ts_ns >= start && a.ts_ns - start <= 2 * SEC, "{} after {} ns", a.detector(), a.ts_ns as i64 - start as i64);
}

#[test]
fn syn_flood_from_one_source_is_detected_and_its_source_blocked() {
    let mut d = detectors();
    let attacker = v4(203, 0, 113, 9);
    let start = T0 + SEC;
    let mut rng = Rng(1);
    let v: Vec<_> =
        spread(start, 3.0, 60_000).map(|(_, t)| tcp(t, attacker, 1024 + rng.below(60_000) as u16, host(), 80, SYN, 60)).collect();
    let alerts = feed(&mut d, v);
    let syn = of(&alerts, "syn_flood");
    assert_eq!(syn.len(), 1, "{:#?}", names(&alerts));
    within_2s(syn[0], start);
    assert_eq!(syn[0].dest_ip, Some(host()));
    assert_eq!(syn[0].offender, Some(attacker));
    assert!(!syn[0].distributed);
    assert_eq!(syn[0].evidence["completion_share"], 0.0);
    match &syn[0].mitigation {
        Some(Mitigation::Taken(a)) => {
            assert_eq!(a.kind, ActionKind::Block { cidr: "203.0.113.9/32".parse().unwrap() });
            assert_eq!((a.ttl_s, a.alert_id), (600, syn[0].id));
        }
        m => panic!("expected a block, got {m:?}"),
    }
}

#[test]
fn syn_flood_from_spoofed_sources_rate_limits_the_destination() {
    let mut d = detectors();
    let start = T0 + SEC;
    let mut rng = Rng(2);
    let v: Vec<_> = spread(start, 2.0, 40_000)
        .map(|(_, t)| {
            let src = v4(100, 64 + rng.below(2) as u8, rng.below(256) as u8, rng.below(250) as u8 + 1);
            tcp(t, src, 1024 + rng.below(60_000) as u16, host(), 443, SYN, 60)
        })
        .collect();
    let alerts = feed(&mut d, v);
    let syn = of(&alerts, "syn_flood");
    assert_eq!(syn.len(), 1);
    within_2s(syn[0], start);
    assert!(syn[0].distributed && syn[0].offender.is_none());
    match &syn[0].mitigation {
        Some(Mitigation::Taken(a)) => assert!(matches!(a.kind, ActionKind::RateLimit { dst, .. } if dst == host())),
        m => panic!("expected a rate limit, got {m:?}"),
    }
}

#[test]
fn a_burst_of_completed_handshakes_is_not_a_syn_flood() {
    let mut d = detectors();
    let mut v = Vec::new();
    // 3,000 connections/s for 3 s from 50 clients, each SYN answered by the client's ACK 1 ms later.
    for (i, t) in spread(T0, 3.0, 9000) {
        let c = v4(198, 18, 3, (i % 50) as u8 + 1);
        let sport = 10_000 + (i / 50) as u16;
        v.push(tcp(t, c, sport, host(), 80, SYN, 74));
        v.push(tcp(t + 1_000_000, c, sport, host(), 80, ACK, 66));
        v.push(tcp(t + 1_100_000, c, sport, host(), 80, ACK | PSH, 300));
    }
    let alerts = feed(&mut d, v);
    assert_eq!(names(&alerts), Vec::<String>::new());
}

#[test]
fn udp_flood_is_detected_and_dns_rate_is_not() {
    let mut d = detectors();
    let attacker = v4(203, 0, 113, 10);
    let start = T0 + SEC;
    let v: Vec<_> = spread(start, 2.0, 100_000).map(|(i, t)| udp(t, attacker, 5353, host(), 1000 + (i % 4) as u16, 512)).collect();
    let alerts = feed(&mut d, v);
    let f = of(&alerts, "udp_flood");
    assert_eq!(f.len(), 1, "{:?}", names(&alerts));
    within_2s(f[0], start);
    assert_eq!(f[0].offender, Some(attacker));
    assert!(f[0].evidence["pps"].as_f64().unwrap() >= 20_000.0);

    let mut d = detectors();
    let v: Vec<_> = spread(start, 5.0, 25_000).map(|(i, t)| udp(t, v4(198, 18, 0, 53), 2000 + (i % 100) as u16, host(), 53, 80)).collect();
    assert_eq!(names(&feed(&mut d, v)), Vec::<String>::new());
}

#[test]
fn icmp_flood_is_detected_and_ordinary_ping_is_not() {
    let mut d = detectors();
    let attacker = v4(203, 0, 113, 11);
    let start = T0 + SEC;
    let v: Vec<_> = spread(start, 2.0, 10_000).map(|(_, t)| ping(t, attacker, host())).collect();
    let alerts = feed(&mut d, v);
    let f = of(&alerts, "icmp_flood");
    assert_eq!(f.len(), 1);
    within_2s(f[0], start);
    assert_eq!(f[0].proto, Some(1));

    let mut d = detectors();
    let v: Vec<_> = spread(start, 10.0, 100).map(|(_, t)| ping(t, attacker, host())).collect();
    assert_eq!(names(&feed(&mut d, v)), Vec::<String>::new());
}

#[test]
fn null_xmas_and_fin_scans_are_flag_abuse() {
    for (flags, kind) in [(0u8, "null"), (FIN | PSH | 0x20, "xmas"), (FIN, "fin_only"), (SYN | FIN, "syn_fin"), (SYN | 0x04, "syn_rst")] {
        let mut d = detectors();
        let scanner = v4(203, 0, 113, 12);
        let start = T0 + SEC;
        let v: Vec<_> = spread(start, 1.0, 20).map(|(i, t)| tcp(t, scanner, 40_000, host(), 20 + i as u16, flags, 60)).collect();
        let alerts = feed(&mut d, v);
        let f = of(&alerts, "tcp_flags");
        assert_eq!(f.len(), 1, "{kind}: {:?}", names(&alerts));
        within_2s(f[0], start);
        assert_eq!(f[0].evidence["kinds"][kind], 5, "{kind}: {:?}", f[0].evidence);
        assert_eq!(f[0].offender, Some(scanner));
    }
}

#[test]
fn ordinary_flag_sequences_are_not_flag_abuse() {
    let mut d = detectors();
    let c = v4(198, 18, 0, 1);
    let mut v = Vec::new();
    for (i, t) in spread(T0, 5.0, 1000) {
        let sport = 30_000 + i as u16;
        for (k, f) in [SYN, ACK, ACK | PSH, ACK | FIN, ACK, 0x04, 0x04 | ACK, SYN | 0x40 | 0x80].into_iter().enumerate() {
            v.push(tcp(t + k as u64 * 1000, c, sport, host(), 8080, f, 66));
        }
    }
    let alerts = feed(&mut d, v);
    assert!(of(&alerts, "tcp_flags").is_empty(), "{:?}", names(&alerts));
}

#[test]
fn nmap_like_syn_scan_of_1000_ports_is_a_vertical_scan() {
    let mut d = detectors();
    let scanner = v4(203, 0, 113, 13);
    let start = T0 + SEC;
    let mut rng = Rng(3);
    let mut ports: Vec<u16> = (1..=1000).collect();
    for i in (1..ports.len()).rev() {
        ports.swap(i, rng.below(i + 1));
    }
    let v: Vec<_> = spread(start, 1.0, 1000).map(|(i, t)| tcp(t, scanner, 61_234, host(), ports[i as usize], SYN, 58)).collect();
    let alerts = feed(&mut d, v);
    let s = of(&alerts, "port_scan_vertical");
    assert_eq!(s.len(), 1, "{:?}", names(&alerts));
    within_2s(s[0], start);
    assert_eq!(s[0].offender, Some(scanner));
    assert!(of(&alerts, "port_scan_horizontal").is_empty());
    assert!(matches!(&s[0].mitigation, Some(Mitigation::Taken(a)) if a.is_block() && a.ttl_s == 3600));
}

#[test]
fn replies_to_ephemeral_ports_and_many_connections_to_one_port_are_not_scans() {
    let mut d = detectors();
    let mut v = Vec::new();
    for (i, t) in spread(T0, 5.0, 2000) {
        // One client, 2000 connections to one service.
        v.push(tcp(t, v4(198, 18, 0, 1), 20_000 + i as u16, host(), 443, SYN, 74));
        // Replies from servers to 2000 of the host's ephemeral ports.
        v.push(tcp(t, v4(198, 18, 1, 1), 443, host(), 33_000 + i as u16, SYN | ACK, 74));
        v.push(udp(t, v4(198, 18, 1, 53), 53, host(), 40_000 + i as u16, 120));
        v.push(udp(t, v4(198, 18, 1, 54), 443, host(), 45_000 + i as u16, 1200));
    }
    let alerts = feed(&mut d, v);
    assert!(!alerts.iter().any(|a| a.detector().starts_with("port_scan")), "{:?}", names(&alerts));
}

#[test]
fn sweep_of_256_hosts_on_one_port_is_a_horizontal_scan() {
    let mut d = detectors();
    let scanner = v4(203, 0, 113, 14);
    let start = T0 + SEC;
    let v: Vec<_> = spread(start, 1.5, 256).map(|(i, t)| tcp(t, scanner, 50_000, v4(198, 19, 0, i as u8), 22, SYN, 58)).collect();
    let alerts = feed(&mut d, v);
    let s = of(&alerts, "port_scan_horizontal");
    assert_eq!(s.len(), 1, "{:?}", names(&alerts));
    within_2s(s[0], start);
    assert_eq!(s[0].dest_port, Some(22));

    let mut d = detectors();
    let v: Vec<_> = spread(start, 1.5, 20).map(|(i, t)| tcp(t, scanner, 50_000, v4(198, 19, 0, i as u8), 22, SYN, 58)).collect();
    assert!(of(&feed(&mut d, v), "port_scan_horizontal").is_empty());
}

#[test]
fn spoofed_many_source_spike_names_the_target_and_rate_limits_it() {
    let mut d = detectors();
    assert_eq!(names(&warm(&mut d)), Vec::<String>::new());
    let start = T0 + 15 * SEC;
    let target = v4(198, 18, 0, 20);
    let mut rng = Rng(4);
    let sources: Vec<IpAddr> = (0..500).map(|_| v4(100, 64 + rng.below(64) as u8, rng.below(256) as u8, rng.below(256) as u8)).collect();
    // 500 spoofed sources, 15k pps in total (each under every per-destination flood threshold).
    let v: Vec<_> =
        spread(start, 3.0, 45_000).map(|(i, t)| tcp(t, sources[i as usize % 500], 1024 + (i % 50_000) as u16, target, 80, ACK, 60)).collect();
    let alerts = feed(&mut d, v);
    let s = of(&alerts, "volumetric_spike");
    assert_eq!(s.len(), 1, "{:?}", names(&alerts));
    within_2s(s[0], start);
    assert_eq!(s[0].dest_ip, Some(target));
    assert!(s[0].distributed);
    let e = &s[0].evidence;
    assert!(e["entropy_bits"].as_f64().unwrap() > e["baseline_entropy_bits"].as_f64().unwrap() + 3.0, "{e:?}");
    assert!(e["sources_estimate"].as_f64().unwrap() > 300.0, "{e:?}");
    match &s[0].mitigation {
        Some(Mitigation::Taken(a)) => {
            assert_eq!(a.kind, ActionKind::RateLimit { dst: target, pps: 10_000, burst: 20_000 });
            assert_eq!(a.ttl_s, 300);
        }
        m => panic!("expected a rate limit, got {m:?}"),
    }
}

#[test]
fn rate_rise_from_one_source_is_not_a_many_source_spike() {
    let mut d = detectors();
    warm(&mut d);
    let start = T0 + 15 * SEC;
    let v: Vec<_> = spread(start, 3.0, 45_000).map(|(_, t)| tcp(t, v4(198, 18, 0, 1), 40_000, host(), 5201, ACK, 1514)).collect();
    assert!(of(&feed(&mut d, v), "volumetric_spike").is_empty());
}

/// Steady traffic, then UDP to port 5000 rises tenfold.
fn baseline_stream(rise_at: u64) -> Vec<Packet> {
    let mut v = Vec::new();
    for (i, t) in spread(T0, 60.0, 60 * 1000) {
        v.push(tcp(t, v4(198, 18, 0, 1), 40_000, host(), 5201, ACK, 1514));
        if t < T0 + rise_at * SEC || i % 2 == 0 {
            v.push(udp(t, v4(198, 18, 0, 5), 6000, host(), 5000, 200));
        }
        if t >= T0 + rise_at * SEC {
            for k in 0..9 {
                v.push(udp(t + k * 1000, v4(198, 18, 0, 5), 6000, host(), 5000, 200));
            }
        }
    }
    v
}

#[test]
fn baseline_rise_after_warm_up_is_explained() {
    let mut d = detectors();
    let alerts = feed(&mut d, baseline_stream(45));
    let b = of(&alerts, "baseline");
    let metrics: Vec<&str> = b.iter().map(|a| a.evidence["metric"].as_str().unwrap()).collect();
    assert!(metrics.contains(&"proto:udp") && metrics.contains(&"port:udp/5000"), "{metrics:?}");
    let a = b.iter().find(|a| a.evidence["metric"] == "proto:udp").unwrap();
    within_2s(a, T0 + 45 * SEC);
    let (x, base) = (a.evidence["value_pps"].as_f64().unwrap(), a.evidence["baseline_pps"].as_f64().unwrap());
    assert!((9000.0..=10_000.0).contains(&x) && (900.0..=1100.0).contains(&base), "{:?}", a.evidence);
    assert!(a.evidence["score"].as_f64().unwrap() >= 6.0);
    assert!(a.evidence["explanation"].as_str().unwrap().starts_with("proto:udp at "));
    assert!(matches!(&a.mitigation, Some(Mitigation::None { .. })), "baselines only alert by default");
    // The TCP metric did not move.
    assert!(!metrics.iter().any(|m| m.contains("tcp")), "{metrics:?}");
}

#[test]
fn baseline_is_silent_during_warm_up() {
    let mut d = detectors();
    let alerts = feed(&mut d, baseline_stream(20));
    let b = of(&alerts, "baseline");
    // The rise at 20 s happens during the 30-interval warm-up: it becomes part of the baseline.
    assert!(b.is_empty(), "{:?}", b.iter().map(|a| &a.evidence).collect::<Vec<_>>());
}

fn conn_to(remote: IpAddr, sent: u64, end: u64) -> ConnSummary {
    ConnSummary {
        local: host(),
        local_port: 41_000,
        remote,
        remote_port: 443,
        proto: 6,
        bytes_sent: sent,
        bytes_received: 20_000,
        start_ns: end - 30 * SEC,
        end_ns: end,
    }
}

#[test]
fn large_upload_to_a_new_destination_is_exfiltration_and_to_a_known_one_is_not() {
    let mut d = detectors();
    let mut out = Vec::new();
    let known = v4(203, 0, 113, 80);
    for i in 0..5 {
        d.on_conn(&conn_to(known, 1 << 20, T0 + i * SEC), &mut out);
    }
    d.on_conn(&conn_to(known, 500 << 20, T0 + 10 * SEC), &mut out);
    d.on_conn(&conn_to(v4(203, 0, 113, 81), 1 << 20, T0 + 10 * SEC), &mut out);
    assert!(out.is_empty(), "{:?}", names(&out));
    let new = v4(203, 0, 113, 82);
    d.on_conn(&conn_to(new, 200 << 20, T0 + 11 * SEC), &mut out);
    assert_eq!(names(&out), vec!["exfiltration@203.0.113.82".to_string()]);
    let a = &out[0];
    assert_eq!((a.src_ip, a.dest_ip, a.dest_port), (Some(host()), Some(new), Some(443)));
    assert_eq!(a.evidence["bytes_sent"], 200u64 << 20);
    assert_eq!(a.evidence["prior_connections"], 0);
    assert_eq!(a.ts_ns, T0 + 11 * SEC, "detected when the summary arrives");
}

#[test]
fn threat_list_sources_are_blocked_and_destinations_reported() {
    let mut d = detectors();
    let (set, _) = CidrSet::parse("# test list\n203.0.113.0/24\n2001:db8:bad::/48 ; SBL1\n", ParseMode::Strict).unwrap();
    d.add_threat_list("firehol_level1", set);
    let v = vec![
        tcp(T0, v4(203, 0, 113, 66), 4444, host(), 22, SYN, 60),
        udp(T0 + 1000, host(), 5000, v4(203, 0, 113, 99), 53, 80),
        tcp(T0 + 2000, v4(198, 18, 0, 1), 4444, host(), 22, SYN, 60),
    ];
    let alerts = feed(&mut d, v);
    assert_eq!(names(&alerts), vec!["threat_list@203.0.113.66", "threat_list@203.0.113.99"]);
    assert_eq!(alerts[0].evidence["list"], "firehol_level1");
    assert_eq!(alerts[0].evidence["prefix"], "203.0.113.0/24");
    assert!(matches!(&alerts[0].mitigation, Some(Mitigation::Taken(a)) if a.is_block()));
    assert_eq!(alerts[1].evidence["direction"], "destination");
    assert!(matches!(&alerts[1].mitigation, Some(Mitigation::None { .. })));
}

#[test]
fn allow_listed_addresses_are_never_blocked() {
    // The attacker is the host's own neighbour on the allow list via a configured network.
    let mut cfg = DetectConfig::default();
    cfg.policy.allow.push("198.18.0.0/24".parse().unwrap());
    let mut d = Detectors::new(cfg, &[host()]).unwrap();
    let v: Vec<_> = spread(T0, 1.0, 20).map(|(i, t)| tcp(t, v4(198, 18, 0, 77), 40_000, host(), i as u16 + 1, 0, 60)).collect();
    let alerts = feed(&mut d, v);
    let f = of(&alerts, "tcp_flags");
    assert_eq!(f.len(), 1);
    match &f[0].mitigation {
        Some(Mitigation::None { reason }) => assert!(reason.contains("allow list (198.18.0.0/24)"), "{reason}"),
        m => panic!("expected no action, got {m:?}"),
    }
}

#[test]
fn repeats_are_suppressed_within_the_window_and_counted() {
    let mut d = detectors();
    let attacker = v4(203, 0, 113, 15);
    // A 2,000 pps ping flood for 70 s: one alert, then the next one after the 60 s window
    // carries the count of the repeats held back (one per second of flood).
    let v: Vec<_> = spread(T0, 70.0, 140_000).map(|(_, t)| ping(t, attacker, host())).collect();
    let alerts = feed(&mut d, v);
    let f = of(&alerts, "icmp_flood");
    assert_eq!(f.len(), 2, "{:?}", f.iter().map(|a| a.ts_ns - T0).collect::<Vec<_>>());
    assert_eq!(f[0].suppressed, 0);
    assert!(f[1].ts_ns - f[0].ts_ns >= 60 * SEC);
    assert!((58..=60).contains(&f[1].suppressed), "{}", f[1].suppressed);
    // The suppressor's total also holds the repeats after the second alert (one per second).
    let after = d.stats().suppressed - f[1].suppressed;
    assert!((7..=10).contains(&after), "{after}");
    assert!(f[1].id > f[0].id);
}

#[test]
fn alerts_serialise_as_suricata_eve() {
    let mut d = detectors();
    let attacker = v4(203, 0, 113, 16);
    let v: Vec<_> = spread(T0, 1.0, 20).map(|(i, t)| tcp(t, attacker, 40_000, host(), i as u16 + 1, 0, 60)).collect();
    let alerts = feed(&mut d, v);
    let j = serde_json::to_value(&alerts[0]).unwrap();
    let ts = j["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), "2026-11-18T11:06:40.200000+0000".len(), "{ts}");
    assert!(ts.starts_with("2026-11-18T11:06:40.") && ts.ends_with("+0000"), "{ts}");
    assert_eq!(j["event_type"], "alert");
    assert_eq!(j["src_ip"], "203.0.113.16");
    assert_eq!(j["src_port"], 40_000);
    assert_eq!(j["dest_ip"], "198.18.0.2");
    assert_eq!(j["proto"], "TCP");
    assert_eq!(j["in_iface"], "veth-b");
    assert!(j["flow_id"].as_u64().unwrap() > 0);
    // The policy decided a block, but nothing carried it out (this is the engine alone, as offline).
    assert_eq!(j["alert"]["action"], "allowed");
    assert_eq!(j["alert"]["gid"], 9000);
    assert_eq!(j["alert"]["signature_id"], 4);
    assert_eq!(j["alert"]["rev"], 1);
    assert_eq!(j["alert"]["category"], "Detection of a Network Scan");
    assert_eq!(j["alert"]["severity"], 2);
    assert!(j["alert"]["signature"].as_str().unwrap().starts_with("RXRAY "));
    assert_eq!(j["rxray"]["detector"], "tcp_flags");
    assert_eq!(j["rxray"]["evidence"]["threshold"], 5);
    assert_eq!(j["rxray"]["mitigation"]["decision"], "taken");
    // Once a firewall has carried it out (live, with --enforce), the EVE action is `blocked`.
    let mut enforced = alerts[0].clone();
    enforced.enforced = true;
    assert_eq!(serde_json::to_value(&enforced).unwrap()["alert"]["action"], "blocked");
    assert_eq!(j["rxray"]["mitigation"]["kind"]["type"], "block");
    assert_eq!(j["rxray"]["mitigation"]["kind"]["cidr"], "203.0.113.16/32");
    assert_eq!(j["rxray"]["mitigation"]["ttl_s"], 600);
    assert!(j["rxray"].get("pcap").is_none());
    let mut a = alerts[0].clone();
    a.pcap = Some("alert-1.pcapng".into());
    assert_eq!(a.to_eve()["rxray"]["pcap"], "alert-1.pcapng");
}

#[test]
fn config_is_partial_json_with_positioned_errors() {
    let c = DetectConfig::from_json(r#"{"flood": {"syn_pps": 500}, "policy": {"allow": ["10.0.0.0/8"]}}"#).unwrap();
    assert_eq!(c.flood.syn_pps, 500);
    assert_eq!(c.flood.udp_pps, DetectConfig::default().flood.udp_pps);
    assert_eq!(c.policy.allow.len(), 1);
    assert_eq!(c.policy.detectors.len(), DetectConfig::default().policy.detectors.len());

    let e = DetectConfig::from_json("{\n  \"flood\": {\"syn_ppz\": 1}\n}").unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("syn_ppz"), "{e}");
    let e = DetectConfig::from_json(r#"{"scan": {"window_ms": 0}}"#).unwrap_err().to_string();
    assert!(e.contains("scan.window_ms must be greater than 0"), "{e}");
    let e = DetectConfig::from_json(r#"{"exfil": {"forget_after_s": 18446744073709551615}}"#).unwrap_err().to_string();
    assert!(e.contains("exfil.forget_after_s must be at most 30 days"), "{e}");
    let e = DetectConfig::from_json(r#"{"policy": {"allow": ["10.0.0.0/33"]}}"#).unwrap_err().to_string();
    assert!(e.contains("prefix length 33"), "{e}");
    // The defaults round-trip through JSON.
    let back = DetectConfig::from_json(&serde_json::to_string(&DetectConfig::default()).unwrap()).unwrap();
    assert_eq!(back, DetectConfig::default());
}

#[test]
fn state_stays_bounded_under_a_flood_of_fresh_keys() {
    let mut d = detectors();
    let mut rng = Rng(5);
    // 100,000 SYNs from random sources to random destinations in 10.0.0.0/8: every key is new.
    let v: Vec<_> = spread(T0, 1.0, 100_000)
        .map(|(_, t)| {
            let dst = v4(10, rng.below(256) as u8, rng.below(256) as u8, rng.below(256) as u8);
            let src = v4(100, 64 + rng.below(64) as u8, rng.below(256) as u8, rng.below(256) as u8);
            tcp(t, src, 1024 + rng.below(60_000) as u16, dst, 80, SYN, 60)
        })
        .collect();
    feed(&mut d, v);
    let cfg = DetectConfig::default();
    let st = d.stats();
    let flood = st.state.iter().find(|(n, _)| *n == "flood").unwrap().1;
    assert!(flood.entries <= cfg.flood.max_destinations + cfg.flood.max_pending);
    assert!(flood.dropped > 0, "the destination table must have refused keys: {flood:?}");
    let scan = st.state.iter().find(|(n, _)| *n == "port_scan").unwrap().1;
    assert!(scan.entries <= 2 * cfg.scan.max_keys && scan.dropped > 0, "{scan:?}");
}

#[test]
fn ipv6_floods_scans_and_lists_are_detected_alike() {
    let mut d = detectors();
    let (set, _) = CidrSet::parse("2001:db8:bad::/48 ; SBL1\n", ParseMode::Strict).unwrap();
    d.add_threat_list("drop_v6", set);
    let me: IpAddr = "2001:2::2".parse().unwrap();
    let scanner: IpAddr = "2001:db8:bad::7".parse().unwrap();
    let flooder: IpAddr = "2001:db8:1::9".parse().unwrap();
    let start = T0 + SEC;
    let mut v: Vec<_> = spread(start, 1.0, 1000).map(|(i, t)| tcp(t, scanner, 61_000, me, i as u16 + 1, SYN, 78)).collect();
    v.extend(spread(start, 2.0, 40_000).map(|(i, t)| tcp(t, flooder, 1024 + (i % 60_000) as u16, me, 443, SYN, 78)));
    let alerts = feed(&mut d, v);
    let mut got: Vec<String> = names(&alerts);
    got.sort();
    assert_eq!(
        got,
        vec![
            "port_scan_vertical@2001:db8:bad::7",
            "syn_flood@2001:2::2",
            "threat_list@2001:db8:bad::7",
        ]
    );
    for a in &alerts {
        within_2s(a, start);
    }
    let f = of(&alerts, "syn_flood")[0];
    assert!(matches!(&f.mitigation, Some(Mitigation::Taken(a)) if a.kind == ActionKind::Block { cidr: "2001:db8:1::9/128".parse().unwrap() }));
}

#[test]
fn every_table_counts_what_it_refuses() {
    let mut d = detectors();
    let (set, _) = CidrSet::parse("100.64.0.0/10\n", ParseMode::Strict).unwrap();
    d.add_threat_list("cgnat", set);
    let cfg = DetectConfig::default();
    let n = 140_000u32; // 70,000 of each kind: over every per-key cap (65,536 sources and list hits, 4,096 ports)
    let v: Vec<_> = spread(T0, 10.0, n as u64)
        .map(|(i, t)| {
            let src = IpAddr::V4(Ipv4Addr::from(0x6440_0000 + i as u32)); // 100.64.0.0 + i: listed
            if i % 2 == 0 {
                tcp(t, src, 40_000, host(), 80, 0, 60) // NULL: a new tcp_flags source each time
            } else {
                udp(t, src, 60_000, host(), (i / 2 % 8000) as u16 + 1, 80) // service ports 1..=8000
            }
        })
        .collect();
    feed(&mut d, v);
    let mut out = Vec::new();
    for i in 0..(cfg.exfil.max_remotes as u32 + 10) {
        d.on_conn(&conn_to(IpAddr::V4(Ipv4Addr::from(0xcb00_0000 + i)), 1000, T0 + 11 * SEC), &mut out);
    }
    let st = d.stats();
    let get = |name: &str| st.state.iter().find(|(n, _)| *n == name).unwrap().1;
    let flags = get("tcp_flags");
    assert_eq!((flags.entries, flags.dropped), (cfg.flags.max_sources, 70_000 - cfg.flags.max_sources as u64));
    let base = get("baseline");
    assert_eq!(base.entries, 5 + cfg.baseline.max_ports + 1, "protocols, ports, one interface");
    assert!(base.dropped > 0, "{base:?}");
    let exfil = get("exfiltration");
    assert_eq!((exfil.entries, exfil.dropped), (cfg.exfil.max_remotes, 10));
    let threat = get("threat_list");
    assert_eq!(threat.entries + threat.dropped as usize, n as usize, "{threat:?}");
    assert!(threat.dropped > 0 && threat.entries <= 65_536, "{threat:?}");
}

proptest::proptest! {
    /// The configuration is outside input: any text gives a config or a positioned error, never a panic.
    #[test]
    fn config_parser_never_panics(text in r#"[{}\[\]":,0-9a-z_. \n-]{0,120}"#) {
        match DetectConfig::from_json(&text) {
            Ok(c) => proptest::prop_assert!(c.validate().is_ok()),
            Err(e) => proptest::prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// Mutating one threshold of the default JSON either parses to a valid config or names the field.
    #[test]
    fn config_values_are_validated(v in -2.0f64..3.0, field in 0usize..4) {
        let (sec, key) = [("flood", "dominant_share"), ("spike", "alpha"), ("baseline", "alpha"), ("flood", "syn_min_completion")][field];
        let text = format!(r#"{{"{sec}": {{"{key}": {v}}}}}"#);
        match DetectConfig::from_json(&text) {
            Ok(_) => proptest::prop_assert!((0.0..=1.0).contains(&v)),
            Err(e) => proptest::prop_assert!(e.to_string().contains(&format!("{sec}.{key}")), "{}", e),
        }
    }
}
