//! Throughput of the whole detector set on one core: a mixed synthetic stream (TCP data over
//! 20,000 flows, handshakes, DNS, ping, a scan, a flag-abuse source, a spoofed UDP burst) cycling
//! through many addresses, with a 100,000-prefix threat list loaded. Prints packets/s and ns/packet
//! for the detectors beside the bare loop over the same packets (the floor), plus what they found.
//!
//! Run: scripts/bench-detect [PACKETS]   (default 2,000,000)
use rxray_engine::cidr::{Cidr, CidrSet};
use rxray_engine::detect::{baseline, exfil, flags, flood, scan, spike, threat, DetectConfig, Detector, Detectors};
use rxray_engine::event::{Icmp, Ip, Packet, Tcp, Udp};
use rxray_lab::testing::Rng;
use rxray_wire::dissect::empty_packet;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

const T0: u64 = 1_795_000_000_000_000_000;
/// Event-time packet rate of the stream: 50k pps, so 2M packets span 40 s (past every warm-up).
const EVENT_PPS: u64 = 50_000;

fn v4(x: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(x))
}

fn packet(ts: u64, src: IpAddr, dst: IpAddr, proto: u8) -> Packet {
    let mut p = empty_packet();
    p.ts_ns = ts;
    p.ifindex = 2;
    p.iface = "eth0".into();
    p.len = 100;
    p.ip = Some(Ip {
        version: 4, src, dst, ttl: 64, dscp: 0, ecn: 0, id: 0, df: true, mf: false, frag_offset: 0,
        fragment: false, proto, hdr_len: 20, total_len: 86, options: false, flow_label: 0, ext_headers: Vec::new(),
    });
    p
}

fn tcp(mut p: Packet, sport: u16, dport: u16, flags: u8) -> Packet {
    p.tcp = Some(Tcp { sport, dport, seq: 0, ack: 0, flags, window: 65535, hdr_len: 20, mss: None, wscale: None,
        sack_ok: false, sack: false, ts: None });
    p
}

fn stream(n: usize) -> Vec<Packet> {
    let mut rng = Rng(0x5eed);
    let hosts = 0xc612_0000u32; // 198.18.0.0: 256 local hosts
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let ts = T0 + i as u64 * 1_000_000_000 / EVENT_PPS;
        let dst = v4(hosts + rng.below(256) as u32);
        let r = rng.below(1000);
        let p = match r {
            0..=599 => {
                let f = rng.below(20_000) as u32;
                tcp(packet(ts, v4(0x6440_0000 + f / 4), dst, 6), 10_000 + (f % 50_000) as u16, 443, 0x18)
            }
            600..=699 => {
                let c = rng.below(5000) as u32;
                let flags = if r < 650 { 0x02 } else { 0x10 };
                tcp(packet(ts, v4(0x6441_0000 + c), dst, 6), 20_000 + (i / 2 % 40_000) as u16, 80, flags)
            }
            700..=899 => {
                let mut p = packet(ts, v4(0x6442_0000 + rng.below(10_000) as u32), dst, 17);
                p.udp = Some(Udp { sport: 1024 + rng.below(60_000) as u16, dport: 53, len: 60 });
                p
            }
            900..=949 => {
                let mut p = packet(ts, v4(0x6443_0000 + rng.below(1000) as u32), dst, 1);
                p.icmp = Some(Icmp { v6: false, ty: 8, code: 0, echo: Some((1, 1)) });
                p
            }
            950..=969 => tcp(packet(ts, v4(0xcb00_7101), dst, 6), 61_000, rng.below(65_535) as u16 + 1, 0x02),
            970..=979 => tcp(packet(ts, v4(0xcb00_7102), dst, 6), 61_001, rng.below(1024) as u16, 0x29),
            _ => {
                let mut p = packet(ts, v4(rng.next() as u32), v4(hosts + 7), 17);
                p.udp = Some(Udp { sport: rng.below(65_535) as u16, dport: 123, len: 60 });
                p
            }
        };
        v.push(p);
    }
    v
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000_000);
    eprintln!("bench-detect: generating {n} packets ...");
    let pkts = stream(n);
    // 100,000 /24s spread over 0.0.0.0/0, none of them covering the stream's own addresses.
    let mut rng = Rng(7);
    let list: Vec<Cidr> = (0..100_000)
        .map(|_| Cidr::new(v4((rng.next() as u32 & 0x7fff_ff00) | 0x0100_0000), 24).unwrap())
        .collect();
    let set = CidrSet::new(&list);
    let cfg = DetectConfig::default();

    // Floor: touching every packet's addresses without detecting anything.
    let t = Instant::now();
    let mut acc = 0u64;
    for p in &pkts {
        if let Some(ip) = &p.ip {
            acc = acc.wrapping_add(u32::from(match ip.src { IpAddr::V4(a) => a, _ => Ipv4Addr::UNSPECIFIED }) as u64 ^ p.ts_ns);
        }
    }
    black_box(acc);
    let floor = t.elapsed().as_secs_f64();

    let mut d = Detectors::new(DetectConfig::default(), &[v4(0xc612_0001)]).unwrap();
    d.add_threat_list("bench", set.clone());
    let mut out = Vec::with_capacity(1024);
    let mut alerts = 0usize;
    let mut by: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let t = Instant::now();
    for p in &pkts {
        d.on_packet(p, &mut out);
        if !out.is_empty() {
            alerts += out.len();
            for a in out.drain(..) {
                *by.entry(a.detector()).or_default() += 1;
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let st = d.stats();
    println!("packets                {n}");
    println!("event time             {:.1} s at {} pps", n as f64 / EVENT_PPS as f64, EVENT_PPS);
    println!("detectors              {:.3} s  {:>12.0} packets/s  {:>7.1} ns/packet", secs, n as f64 / secs, secs * 1e9 / n as f64);
    println!("floor (bare loop)      {:.3} s  {:>12.0} packets/s  {:>7.1} ns/packet", floor, n as f64 / floor, floor * 1e9 / n as f64);
    println!("ratio detectors/floor  {:.1}x", secs / floor.max(1e-9));
    println!("alerts                 {alerts} emitted, {} suppressed: {by:?}", st.suppressed);
    for (name, s) in st.state {
        println!("state {name:<16} {} entries, {} refused", s.entries, s.dropped);
    }
    // Each detector alone over the same packets (no suppression or policy): where the time goes.
    let mut t4 = threat::ThreatListDetector::default();
    t4.add_list("bench", set);
    let alone: Vec<Box<dyn Detector>> = vec![
        Box::new(flood::FloodDetector::new(cfg.flood.clone())),
        Box::new(flags::FlagsDetector::new(cfg.flags.clone())),
        Box::new(scan::ScanDetector::new(cfg.scan.clone())),
        Box::new(spike::SpikeDetector::new(cfg.spike.clone())),
        Box::new(baseline::BaselineDetector::new(cfg.baseline.clone())),
        Box::new(exfil::ExfilDetector::new(cfg.exfil.clone())),
        Box::new(t4),
    ];
    cidr_lookups();
    for mut det in alone {
        let t = Instant::now();
        for p in &pkts {
            det.on_packet(p, &mut out);
            out.clear();
        }
        let s = t.elapsed().as_secs_f64();
        println!("alone {:<16} {:>7.1} ns/packet", det.name(), s * 1e9 / n as f64);
    }
}

/// `CidrSet` at the size the firewall needs: 1,000,000 prefixes (random /28 to /32), random lookups.
fn cidr_lookups() {
    let mut rng = Rng(11);
    let list: Vec<Cidr> =
        (0..1_000_000).map(|_| Cidr::new(v4(rng.next() as u32), 28 + rng.below(5) as u8).unwrap()).collect();
    let t = Instant::now();
    let set = CidrSet::new(&list);
    let build = t.elapsed().as_secs_f64();
    let probes: Vec<IpAddr> = (0..4_000_000).map(|_| v4(rng.next() as u32)).collect();
    let t = Instant::now();
    let hits = probes.iter().filter(|a| set.contains(**a)).count();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "cidr set               1000000 prefixes -> {} after aggregation, built in {:.3} s; {:.1} ns/lookup ({:.0} lookups/s, {} of {} hit)",
        set.len(),
        build,
        secs * 1e9 / probes.len() as f64,
        probes.len() as f64 / secs,
        hits,
        probes.len()
    );
}
