//! Filters through the CLI: `rxray watch ... FILTER` in a lab delivers exactly the frames the test
//! built to match and counts the rest as filtered; `rxray analyze FILE -- FILTER` keeps the packets
//! tcpdump keeps; a bad expression exits 1 with the message and a caret under the column.
mod common;
use common::*;
use rxray_io::{LinkType, PcapWriter};
use rxray_lab::frames::{self, ipproto, Arp, Eth, Ipv4, Ipv6, Tcp, Udp, L3, L4};
use rxray_lab::{send_frames, Lab};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

/// (frame, whether "udp and dst port 53" matches it by construction); the UDP source port is the
/// frame's number, so every event names its frame.
fn dns_mix(eth: &Eth, a4: std::net::Ipv4Addr, b4: std::net::Ipv4Addr, a6: std::net::Ipv6Addr, b6: std::net::Ipv6Addr) -> Vec<(Vec<u8>, bool)> {
    let ip4 = |proto| L3::Ipv4(Ipv4 { src: a4, dst: b4, ttl: 64, tos: 0, id: 1, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: proto });
    let ip6 = |nh| L3::Ipv6(Ipv6 { src: a6, dst: b6, hop_limit: 64, traffic_class: 0, flow_label: 0, next_header: nh }, vec![]);
    let mut v = Vec::new();
    for i in 0..60u16 {
        let sport = 10000 + i;
        let (frame, hit) = match i % 6 {
            0 => (frames::frame(eth, &[], ip4(ipproto::UDP), L4::Udp(Udp { sport, dport: 53 }), b"query"), true),
            1 => (frames::frame(eth, &[], ip6(ipproto::UDP), L4::Udp(Udp { sport, dport: 53 }), b"query6"), true),
            2 => (frames::frame(eth, &[], ip4(ipproto::UDP), L4::Udp(Udp { sport: 53, dport: sport }), b"answer"), false),
            3 => (frames::frame(eth, &[], ip4(ipproto::TCP), L4::Tcp(Tcp { sport, dport: 53, seq: 1, ack: 0, flags: 2, window: 100, urgent: 0, options: vec![] }), b""), false),
            4 => (frames::frame(eth, &[], ip4(ipproto::UDP), L4::Udp(Udp { sport, dport: 5353 }), b"mdns"), false),
            _ => {
                let arp = Arp { op: 1, sha: eth.src, spa: a4, tha: [0; 6], tpa: b4 };
                (frames::frame(eth, &[], L3::Arp(arp), L4::None, &[]), false)
            }
        };
        v.push((frame, hit));
    }
    v
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn watch_delivers_only_matching_frames_and_counts_the_rest() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let mix = dns_mix(&eth, lab.addr4_a(), lab.addr4_b(), lab.addr6_a(), lab.addr6_b());
    let want: Vec<u64> = (0..mix.len()).filter(|i| mix[*i].1).map(|i| 10000 + i as u64).collect();
    let mut w = Running::start(lab.ns_b(), &["watch", "-i", "veth-b", "--json", "udp and dst port 53"]);
    w.wait_stderr("rxray: watching veth-b", Duration::from_secs(20));
    let frames: Vec<Vec<u8>> = mix.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &frames).expect("send"), frames.len());
    let got_all = w.wait_lines(want.len(), Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let (code, stdout, stderr) = w.interrupt();
    assert_eq!(code, Some(0), "{stderr:?}");
    assert!(got_all, "only {} of {} events; {stderr:?}", stdout.len(), want.len());
    let got: Vec<u64> = json_lines(&stdout).iter().map(|e| e["udp"]["sport"].as_u64().expect("a UDP event")).collect();
    assert_eq!(got, want, "exactly the matching frames, in order, once each");
    let s = summary(&stderr);
    assert_eq!(s["packets"], json!(frames.len()), "{s}");
    assert_eq!(s["delivered"], json!(want.len()), "{s}");
    assert_eq!(s["filtered"], json!(frames.len() - want.len()), "{s}");
    assert_eq!(s["lost"], json!(0), "{s}");
}

#[test]
fn bad_filters_exit_1_with_a_caret_under_the_column() {
    for (args, col) in [
        (vec!["watch", "-i", "lo", "udp", "and", "dst", "port", "http"], 18),
        (vec!["analyze", "/dev/null", "--", "tcp[12]", "&", "2", "!=", "0"], 5),
        (vec!["analyze", "/dev/null", "--filter", "host 1.2.3.4 an 5"], 14),
    ] {
        let out = Command::new(rxray_bin()).args(&args).output().expect("run rxray");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 3, "{args:?}: message, expression, caret: {err}");
        assert!(lines[0].starts_with(&format!("rxray: error: bad filter at column {col}: ")), "{err}");
        assert_eq!(lines[2].find('^'), Some(4 + col - 1), "{args:?}: caret under column {col}: {err}");
    }
}

#[test]
fn analyze_keeps_what_tcpdump_keeps() {
    if !have("tcpdump") {
        skip_or_fail("tcpdump is not installed");
        return;
    }
    let dir = TempDir::new();
    let file = dir.path().join("mix.pcap");
    let eth = Eth { dst: [2, 0, 0, 0, 0, 0xb], src: [2, 0, 0, 0, 0, 0xa] };
    let mix = dns_mix(&eth, "198.18.0.1".parse().unwrap(), "198.19.0.2".parse().unwrap(), "2001:2::a".parse().unwrap(), "2001:2::b".parse().unwrap());
    let mut w = PcapWriter::new(std::fs::File::create(&file).unwrap(), LinkType::ETHERNET, 65535).unwrap();
    for (i, (f, _)) in mix.iter().enumerate() {
        w.write_packet(i as u64 * 1000, f.len() as u32, f).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    for expr in ["udp and dst port 53", "not arp", "ip6 or tcp", "src port 53 or 10000"] {
        let out = Command::new(rxray_bin()).arg("analyze").arg(&file).args(["--json", "--", expr]).output().expect("rxray");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let td = Command::new("tcpdump").args(["-nn", "-q", "-r"]).arg(&file).arg(expr).output().expect("tcpdump");
        assert!(td.status.success(), "{}", String::from_utf8_lossy(&td.stderr));
        let n = String::from_utf8_lossy(&td.stdout).lines().count() as u64;
        assert_eq!(doc["filter"]["matched"], json!(n), "{expr}: {}", doc["filter"]);
        assert_eq!(doc["filter"]["rejected"], json!(mix.len() as u64 - n), "{expr}");
        assert_eq!(doc["report"]["totals"]["packets"], json!(n), "{expr}: the report covers the matching packets only");
    }
}
