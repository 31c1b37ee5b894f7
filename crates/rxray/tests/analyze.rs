//! `rxray analyze` against tshark on the same files: captures of several hundred flows (IPv4/IPv6,
//! TCP/UDP/ICMP, VLAN and QinQ, IPv4 and IPv6 fragments, ARP) written by rxray-io's pcap and pcapng
//! writers, a real capture shipped in a Debian package, and damaged files.
mod common;

use common::{have, rxray_bin, skip_or_fail, TempDir};
use rxray_io::{LinkType, PcapWriter, PcapngWriter};
use rxray_lab::frames::{self as f, tcp_flags, Eth, Ext, Ipv4, Ipv6, L3, L4};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Command;

const E: Eth = Eth { dst: [2, 0, 0, 0, 0, 0xb], src: [2, 0, 0, 0, 0, 0xa] };
const ER: Eth = Eth { dst: [2, 0, 0, 0, 0, 0xa], src: [2, 0, 0, 0, 0, 0xb] };

fn v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Ipv4 {
    Ipv4 { src, dst, ttl: 64, tos: 0, id: 0, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: proto }
}

fn v6(src: Ipv6Addr, dst: Ipv6Addr, nh: u8) -> Ipv6 {
    Ipv6 { src, dst, hop_limit: 64, traffic_class: 0, flow_label: 0, next_header: nh }
}

fn tcp(sport: u16, dport: u16, flags: u8) -> L4 {
    L4::Tcp(f::Tcp { sport, dport, seq: 1, ack: 1, flags, window: 1000, urgent: 0, options: vec![] })
}

/// Addresses in the lab ranges: flow i gets its own client; servers repeat so talkers aggregate.
fn addrs4(i: usize) -> (Ipv4Addr, Ipv4Addr) {
    (Ipv4Addr::new(198, 18, (i >> 8) as u8, i as u8), Ipv4Addr::new(198, 19, 0, (i % 7) as u8 + 1))
}

fn addrs6(i: usize) -> (Ipv6Addr, Ipv6Addr) {
    (Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, i as u16), Ipv6Addr::new(0x2001, 2, 0, 2, 0, 0, 0, (i % 5) as u16 + 1))
}

/// IPv4 fragments of one UDP datagram (8-byte multiples), in the given order.
fn frag4(vlans: &[f::Vlan], src: Ipv4Addr, dst: Ipv4Addr, id: u16, sport: u16, dport: u16, len: usize, reverse: bool) -> Vec<Vec<u8>> {
    let seg = f::transport(src.into(), dst.into(), &L4::Udp(f::Udp { sport, dport }), &vec![0x5a; len]);
    let chunks: Vec<&[u8]> = seg.chunks(512).collect();
    let mut out: Vec<Vec<u8>> = chunks
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let mut ip = v4(src, dst, 17);
            ip.df = false;
            ip.id = id;
            ip.mf = k + 1 < chunks.len();
            ip.frag_off_bytes = (k * 512) as u16;
            f::frame(&E, vlans, L3::Ipv4(ip), L4::None, c)
        })
        .collect();
    if reverse {
        out.reverse();
    }
    out
}

fn frag6(src: Ipv6Addr, dst: Ipv6Addr, id: u32, sport: u16, dport: u16, len: usize) -> Vec<Vec<u8>> {
    let seg = f::transport(src.into(), dst.into(), &L4::Udp(f::Udp { sport, dport }), &vec![0xa5; len]);
    let chunks: Vec<&[u8]> = seg.chunks(1232).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let ext = Ext::Fragment { offset_bytes: (k * 1232) as u16, more: k + 1 < chunks.len(), id };
            f::frame(&E, &[], L3::Ipv6(v6(src, dst, 17), vec![ext]), L4::None, c)
        })
        .collect()
}

/// `flows` conversations of mixed kinds, frames in a deterministic interleaving.
fn traffic(flows: usize) -> Vec<Vec<u8>> {
    let mut per_flow: Vec<Vec<Vec<u8>>> = Vec::new();
    for i in 0..flows {
        let (c4, s4) = addrs4(i);
        let (c6, s6) = addrs6(i);
        let port = 20000 + i as u16;
        let vlans: Vec<f::Vlan> = match i % 5 {
            1 => vec![f::Vlan { tpid: f::TPID_8021Q, tci: 100 + (i % 3) as u16 }],
            2 => vec![f::Vlan { tpid: f::TPID_8021AD, tci: 10 }, f::Vlan { tpid: f::TPID_8021Q, tci: 20 }],
            _ => vec![],
        };
        let mut v = Vec::new();
        match i % 7 {
            0 | 1 => {
                v.push(f::frame(&E, &vlans, L3::Ipv4(v4(c4, s4, 6)), tcp(port, 80, tcp_flags::SYN), b""));
                v.push(f::frame(&ER, &vlans, L3::Ipv4(v4(s4, c4, 6)), tcp(80, port, tcp_flags::SYN | tcp_flags::ACK), b""));
                v.push(f::frame(&E, &vlans, L3::Ipv4(v4(c4, s4, 6)), tcp(port, 80, tcp_flags::ACK | tcp_flags::PSH), &vec![1; 100 + i]));
                for k in 0..(i % 4) {
                    v.push(f::frame(&ER, &vlans, L3::Ipv4(v4(s4, c4, 6)), tcp(80, port, tcp_flags::ACK), &vec![2; 1400 - k * 100]));
                }
                v.push(f::frame(&E, &vlans, L3::Ipv4(v4(c4, s4, 6)), tcp(port, 80, tcp_flags::FIN | tcp_flags::ACK), b""));
            }
            2 => {
                v.push(f::frame(&E, &vlans, L3::Ipv4(v4(c4, s4, 17)), L4::Udp(f::Udp { sport: port, dport: 53 }), &vec![3; 30 + i % 50]));
                v.push(f::frame(&ER, &vlans, L3::Ipv4(v4(s4, c4, 17)), L4::Udp(f::Udp { sport: 53, dport: port }), &vec![4; 90]));
            }
            3 => {
                for s in 0..3 {
                    v.push(f::frame(&E, &vlans, L3::Ipv4(v4(c4, s4, 1)), L4::Icmp(f::Icmp { ty: 8, code: 0, id: i as u16, seq: s }), &[0; 56]));
                    v.push(f::frame(&ER, &vlans, L3::Ipv4(v4(s4, c4, 1)), L4::Icmp(f::Icmp { ty: 0, code: 0, id: i as u16, seq: s }), &[0; 56]));
                }
            }
            4 => {
                v.push(f::frame(&E, &[], L3::Ipv6(v6(c6, s6, 6), vec![]), tcp(port, 443, tcp_flags::SYN), b""));
                v.push(f::frame(&ER, &[], L3::Ipv6(v6(s6, c6, 6), vec![]), tcp(443, port, tcp_flags::SYN | tcp_flags::ACK), b""));
                v.push(f::frame(&E, &[], L3::Ipv6(v6(c6, s6, 6), vec![]), tcp(port, 443, tcp_flags::ACK), &vec![5; 200]));
            }
            5 => {
                v.push(f::frame(&E, &[], L3::Ipv6(v6(c6, s6, 17), vec![]), L4::Udp(f::Udp { sport: port, dport: 4789 }), &[6; 20]));
                v.extend(frag6(s6, c6, i as u32, 4789, port, 2000 + i));
                v.push(f::frame(&E, &[], L3::Ipv6(v6(c6, s6, 58), vec![]), L4::Icmpv6(f::Icmpv6 { ty: 128, code: 0, id: 1, seq: 1 }), &[0; 8]));
            }
            _ => {
                v.push(f::frame(&E, &vlans, L3::Ipv4(v4(c4, s4, 17)), L4::Udp(f::Udp { sport: port, dport: 2049 }), &[7; 40]));
                v.extend(frag4(&vlans, c4, s4, i as u16, port, 2049, 1500 + i, i % 2 == 0));
                let arp = f::Arp { op: 1, sha: E.src, spa: c4, tha: [0; 6], tpa: s4 };
                v.push(f::frame(&E, &[], L3::Arp(arp), L4::None, &[0; 18]));
            }
        }
        per_flow.push(v);
    }
    // Round-robin over the flows so conversations overlap in time.
    let mut out = Vec::new();
    let mut k = 0;
    while per_flow.iter().any(|v| k < v.len()) {
        for v in &per_flow {
            if let Some(fr) = v.get(k) {
                out.push(fr.clone());
            }
        }
        k += 1;
    }
    out
}

const T0: u64 = 1_700_000_000_000_000_000;

fn write_pcapng(path: &Path, frames: &[Vec<u8>]) {
    let mut w = PcapngWriter::new(std::io::BufWriter::new(std::fs::File::create(path).unwrap()), "rxray tests").unwrap();
    let id = w.add_interface("lab0", LinkType::ETHERNET, 262144).unwrap();
    for (i, fr) in frames.iter().enumerate() {
        w.write_packet(id, T0 + i as u64 * 1_000_003, fr.len() as u32, fr, None).unwrap();
    }
    w.flush().unwrap();
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut w = PcapWriter::new(std::io::BufWriter::new(std::fs::File::create(path).unwrap()), LinkType::ETHERNET, 262144).unwrap();
    for (i, fr) in frames.iter().enumerate() {
        w.write_packet(T0 + i as u64 * 999_999, fr.len() as u32, fr).unwrap();
    }
    w.flush().unwrap();
}

/// Unordered endpoint pair → frames and bytes from the lesser endpoint, then from the greater.
type Table = BTreeMap<(String, String), (u64, u64, u64, u64)>;

fn insert(t: &mut Table, a: String, b: String, ab: (u64, u64), ba: (u64, u64)) {
    let (k, v) = if a <= b { ((a, b), (ab.0, ab.1, ba.0, ba.1)) } else { ((b, a), (ba.0, ba.1, ab.0, ab.1)) };
    assert!(t.insert(k.clone(), v).is_none(), "duplicate conversation {k:?}");
}

/// tshark's `-z conv,...` tables: rows are `A <-> B  <-frames bytes  ->frames bytes ...`, where
/// `<-` is B to A.
fn tshark_tables(path: &Path) -> BTreeMap<&'static str, Table> {
    let out = Command::new("tshark")
        .args(["-q", "-z", "conv,ip", "-z", "conv,ipv6", "-z", "conv,tcp", "-z", "conv,udp", "-r"])
        .arg(path)
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut tables: BTreeMap<&'static str, Table> = BTreeMap::new();
    let mut cur = None;
    for line in text.lines() {
        cur = match line.trim() {
            "IPv4 Conversations" => Some("ip"),
            "IPv6 Conversations" => Some("ipv6"),
            "TCP Conversations" => Some("tcp"),
            "UDP Conversations" => Some("udp"),
            _ => cur,
        };
        let tok: Vec<&str> = line.split_whitespace().collect();
        if tok.len() < 12 || tok[1] != "<->" {
            continue;
        }
        assert_eq!((tok[5], tok[8]), ("bytes", "bytes"), "unexpected unit in tshark output: {line}");
        let n = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("number in {line}"));
        let name = cur.expect("a row before any table title");
        let t = tables.entry(name).or_default();
        insert(t, norm(tok[0], name), norm(tok[2], name), (n(tok[6]), n(tok[7])), (n(tok[3]), n(tok[4])));
    }
    tables
}

/// One spelling of an endpoint: `addr` or `addr|port`.
fn norm(s: &str, table: &str) -> String {
    if table == "ip" || table == "ipv6" {
        return s.parse::<IpAddr>().unwrap_or_else(|_| panic!("address {s}")).to_string();
    }
    let (a, p) = s.rsplit_once(':').unwrap_or_else(|| panic!("endpoint {s}"));
    let a = a.trim_start_matches('[').trim_end_matches(']');
    format!("{}|{}", a.parse::<IpAddr>().unwrap_or_else(|_| panic!("address {a}")), p)
}

fn rxray_tables(doc: &Value) -> BTreeMap<&'static str, Table> {
    let mut tables = BTreeMap::new();
    for name in ["ip", "ipv6", "tcp", "udp"] {
        let mut t = Table::new();
        for c in doc["report"]["conversations"][name].as_array().unwrap() {
            let ep = |a: &str, p: &str| {
                let addr = c[a].as_str().unwrap().to_string();
                if name.starts_with("ip") { addr } else { format!("{addr}|{}", c[p]) }
            };
            let g = |k: &str| c[k].as_u64().unwrap();
            insert(&mut t, ep("a", "a_port"), ep("b", "b_port"), (g("frames_ab"), g("bytes_ab")), (g("frames_ba"), g("bytes_ba")));
        }
        if !t.is_empty() {
            tables.insert(name, t);
        }
    }
    tables
}

fn analyze_json(files: &[&Path]) -> (Value, std::process::Output) {
    let out = Command::new(rxray_bin()).arg("analyze").arg("--json").args(files).output().expect("run rxray");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("rxray analyze --json: {e}\nstdout: {}\nstderr: {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    (doc, out)
}

fn compare_with_tshark(path: &Path) -> usize {
    let (doc, out) = analyze_json(&[path]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ours = rxray_tables(&doc);
    let theirs = tshark_tables(path);
    for name in ["ip", "ipv6", "tcp", "udp"] {
        let (a, b) = (ours.get(name).cloned().unwrap_or_default(), theirs.get(name).cloned().unwrap_or_default());
        for (k, v) in &b {
            assert_eq!(a.get(k), Some(v), "{}: conv,{name} {k:?}: rxray {:?}, tshark {v:?}", path.display(), a.get(k));
        }
        assert_eq!(a.len(), b.len(), "{}: conv,{name}: rxray has conversations tshark lacks", path.display());
    }
    theirs.values().map(|t| t.len()).sum()
}

#[test]
fn conversations_match_tshark_on_pcap_and_pcapng() {
    if !have("tshark") {
        return skip_or_fail("tshark is not installed");
    }
    let dir = TempDir::new();
    let frames = traffic(420);
    let ng = dir.path().join("lab.pcapng");
    let pc = dir.path().join("lab.pcap");
    write_pcapng(&ng, &frames);
    write_pcap(&pc, &frames);
    for p in [&ng, &pc] {
        let n = compare_with_tshark(p);
        assert!(n >= 780, "{n} conversations compared");
    }
    // Totals come from what the test wrote.
    let (doc, _) = analyze_json(&[&ng]);
    let t = &doc["report"]["totals"];
    assert_eq!(t["packets"].as_u64(), Some(frames.len() as u64));
    assert_eq!(t["bytes"].as_u64(), Some(frames.iter().map(|f| f.len() as u64).sum()));
    assert_eq!(t["malformed"].as_u64(), Some(0));
    // Reversed IPv4 fragment trains (even flows of kind 6): every later fragment arrives before
    // its first fragment, so the kernel's rule puts it in the fragments bucket.
    let reversed: u64 = (0..420usize).filter(|i| i % 7 == 6 && i % 2 == 0).map(|i| (8 + 1500 + i).div_ceil(512) as u64 - 1).sum();
    assert_eq!(t["frag_unattributed"].as_u64(), Some(reversed));
    let protos: BTreeMap<String, u64> = doc["report"]["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["packets"].as_u64().unwrap()))
        .collect();
    assert_eq!(protos["arp"], 60);
    assert_eq!(protos["ipv4_icmp"], 60 * 6);
    // Two files read as one stream: everything doubles.
    let (both, _) = analyze_json(&[&ng, &pc]);
    assert_eq!(both["report"]["totals"]["packets"].as_u64(), Some(2 * frames.len() as u64));
}

#[test]
fn a_damaged_capture_prints_what_was_read_then_the_offset_and_exits_1() {
    let dir = TempDir::new();
    let frames = traffic(20);
    let p = dir.path().join("cut.pcap");
    write_pcap(&p, &frames);
    let bytes = std::fs::read(&p).unwrap();
    // Cut inside the 11th record: 10 records survive.
    let tenth_end: usize = 24 + frames[..10].iter().map(|f| 16 + f.len()).sum::<usize>();
    std::fs::write(&p, &bytes[..tenth_end + 20]).unwrap();
    let out = Command::new(rxray_bin()).arg("analyze").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("10 packets, "), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        format!("rxray: error: {}: truncated packet data (4 of {} bytes) at byte offset {tenth_end}", p.display(), frames[10].len())
    );
    let (doc, out) = analyze_json(&[&p]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(doc["report"]["totals"]["packets"].as_u64(), Some(10));
    assert!(doc["errors"][0].as_str().unwrap().ends_with(&format!("at byte offset {tenth_end}")));
    let out = Command::new(rxray_bin()).arg("analyze").arg(dir.path().join("missing.pcap")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.pcap: cannot open"));
}

/// A real capture from a Debian package (pcapfix ships test.pcap, an HTTP session, and
/// test_damaged.pcap): fetched with `apt-get download` at test time and compared with tshark.
#[test]
fn conversations_match_tshark_on_a_real_capture_from_debian() {
    if !have("tshark") || !have("apt-get") {
        return skip_or_fail("tshark or apt-get is not installed");
    }
    let dir = TempDir::new();
    let download = || Command::new("apt-get").arg("download").arg("pcapfix").current_dir(dir.path()).output().unwrap();
    let mut got = download();
    if !got.status.success() {
        // A fresh machine may have no package lists yet.
        let _ = Command::new("apt-get").args(["update", "-qq"]).output();
        got = download();
    }
    let deb = std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).find(|e| e.file_name().to_string_lossy().ends_with(".deb"));
    let Some(deb) = deb else {
        return skip_or_fail(&format!("apt-get download pcapfix failed: {}", String::from_utf8_lossy(&got.stderr)));
    };
    let x = dir.path().join("x");
    let st = Command::new("dpkg-deb").arg("-x").arg(deb.path()).arg(&x).status().unwrap();
    assert!(st.success());
    let ex = x.join("usr/share/doc/pcapfix/examples");
    let n = compare_with_tshark(&ex.join("test.pcap"));
    assert_eq!(n, 3, "one IPv4 and two TCP conversations");
    // The damaged one: rxray stops at the bad record, names its offset and keeps what came before.
    let (doc, out) = analyze_json(&[&ex.join("test_damaged.pcap")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(doc["report"]["totals"]["packets"].as_u64(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at byte offset 114"), "{}", String::from_utf8_lossy(&out.stderr));
}
