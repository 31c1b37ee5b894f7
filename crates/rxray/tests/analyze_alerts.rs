//! `rxray analyze --alerts` over a capture: detectors and the default signatures, as EVE JSON Lines.
//! No root needed: the same pipeline as `rxray alerts`, in capture time.
mod common;

use common::*;
use rxray_lab::frames::{self as f, ipproto, Eth, Ipv4, L3, L4};
use std::net::Ipv4Addr;
use std::process::Command;

fn eth() -> Eth {
    Eth { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1] }
}

fn tcp(src: Ipv4Addr, sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let ip = Ipv4 { src, dst: Ipv4Addr::new(198, 18, 9, 2), ttl: 64, tos: 0, id: sport, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::TCP };
    f::frame(&eth(), &[], L3::Ipv4(ip), L4::Tcp(f::Tcp { sport, dport, seq: 1, ack: 1, flags, window: 1000, urgent: 0, options: vec![] }), payload)
}

/// One TCP segment between two addresses of 198.18.9.0/24.
#[allow(clippy::too_many_arguments)]
fn seg(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let ip = Ipv4 { src, dst, ttl: 64, tos: 0, id: 1, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::TCP };
    f::frame(&eth(), &[], L3::Ipv4(ip), L4::Tcp(f::Tcp { sport, dport, seq, ack, flags, window: 1000, urgent: 0, options: vec![] }), payload)
}

/// A whole HTTP call as frames: handshake, the request in the pieces given (one segment each), the
/// response, and both FINs.
fn call(client: Ipv4Addr, sport: u16, pieces: &[&[u8]], response: &[u8]) -> Vec<Vec<u8>> {
    use f::tcp_flags::{ACK, FIN, PSH, SYN};
    let server = Ipv4Addr::new(198, 18, 9, 2);
    let (mut c, mut s) = (1000u32, 5000u32);
    let mut v = vec![seg(client, server, sport, 8080, c, 0, SYN, b""), seg(server, client, 8080, sport, s, c + 1, SYN | ACK, b"")];
    c += 1;
    s += 1;
    for p in pieces {
        v.push(seg(client, server, sport, 8080, c, s, PSH | ACK, p));
        c += p.len() as u32;
    }
    v.push(seg(server, client, 8080, sport, s, c, PSH | ACK, response));
    s += response.len() as u32;
    v.push(seg(client, server, sport, 8080, c, s, FIN | ACK, b""));
    v.push(seg(server, client, 8080, sport, s, c + 1, FIN | ACK, b""));
    v
}

fn run(args: &[&str]) -> (Vec<serde_json::Value>, String) {
    let o = Command::new(rxray_bin()).arg("analyze").arg("--alerts").args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let v = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).expect("EVE JSON line")).collect();
    (v, err)
}

#[test]
fn a_syn_flood_and_a_sql_injection_in_a_capture_raise_their_alerts() {
    let dir = TempDir::new();
    let attacker = Ipv4Addr::new(198, 18, 9, 66);
    let client = Ipv4Addr::new(198, 18, 9, 7);
    let mut frames: Vec<Vec<u8>> = (0..3000u16).map(|i| tcp(attacker, 10000 + i, 80, f::tcp_flags::SYN, b"")).collect();
    // The injection split across two segments: the quote in the first, the tautology in the second.
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    frames.extend(call(client, 40000, &[b"GET /item?id=1%27", b"%20OR%20%271%27=%271 HTTP/1.1\r\nHost: shop\r\n\r\n"], ok));
    frames.extend(call(client, 40001, &[b"GET /index.html HTTP/1.1\r\nHost: shop\r\n\r\n"], ok));
    let pcap = dir.path().join("attack.pcap");
    rxray_lab::pcap::write_pcap(&pcap, &frames).unwrap();
    let (alerts, err) = run(&[pcap.to_str().unwrap()]);
    let syn: Vec<&serde_json::Value> = alerts.iter().filter(|a| a["rxray"]["detector"] == "syn_flood").collect();
    assert_eq!(syn.len(), 1, "one SYN flood alert (repeats suppressed): {alerts:?}");
    let a = syn[0];
    assert_eq!((a["event_type"].as_str(), a["dest_ip"].as_str()), (Some("alert"), Some("198.18.9.2")));
    assert_eq!(a["rxray"]["offender"], "198.18.9.66");
    assert_eq!(a["rxray"]["mitigation"]["kind"]["cidr"], "198.18.9.66/32", "{a}");
    let sql: Vec<&serde_json::Value> = alerts.iter().filter(|a| a["rxray"]["detector"] == "signature").collect();
    assert_eq!(sql.len(), 1, "the injection, and not the plain GET: {alerts:?}");
    assert_eq!((sql[0]["alert"]["gid"].as_u64(), sql[0]["alert"]["signature_id"].as_u64()), (Some(1), Some(9000002)), "{}", sql[0]);
    assert_eq!(sql[0]["src_ip"], "198.18.9.7");
    assert!(err.contains(&format!("alerts over {} packets", frames.len())), "{err}");
    assert_eq!(sql[0]["rxray"]["evidence"]["matches"][0]["buffer"], "http.uri", "{}", sql[0]);

    // The flight recorder: the alert names its pcapng, which holds the packets around it, commented.
    let rec_dir = dir.path().join("rec");
    let (alerts, err) = run(&["--recorder", rec_dir.to_str().unwrap(), "--recorder-seconds", "1", pcap.to_str().unwrap()]);
    let a = alerts.iter().find(|a| a["rxray"]["detector"] == "syn_flood").unwrap();
    let file = a["rxray"]["pcap"].as_str().unwrap_or_else(|| panic!("no pcap named: {a}"));
    assert!(err.contains("flight recorder"), "{err}");
    let mut rd = rxray_io::CaptureReader::new(std::fs::File::open(file).unwrap()).unwrap();
    let mut n = 0;
    while let Some(r) = rd.next_record() {
        r.unwrap();
        n += 1;
    }
    assert_eq!(n, frames.len(), "every packet of this 3 ms capture is within a second of the alert");
    if have("tshark") {
        let o = Command::new("tshark").args(["-r", file, "-T", "fields", "-e", "frame.comment", "-c", "1"]).output().unwrap();
        let c = String::from_utf8_lossy(&o.stdout);
        assert!(c.contains("syn_flood"), "packet comment: {c}");
    } else {
        skip_or_fail("tshark is not installed");
    }

    // Without signatures, only the detector speaks; a threat list names its list.
    let list = dir.path().join("bad.netset");
    std::fs::write(&list, "# test list\n198.18.9.66\n").unwrap();
    let (alerts, _) = run(&["--signatures", "none", "--threat-list", &format!("lab={}", list.display()), pcap.to_str().unwrap()]);
    assert!(alerts.iter().all(|a| a["rxray"]["detector"] != "signature"));
    let t: Vec<&serde_json::Value> = alerts.iter().filter(|a| a["rxray"]["detector"] == "threat_list").collect();
    assert!(!t.is_empty() && t[0].to_string().contains("lab"), "{alerts:?}");
}

#[test]
fn bad_signature_files_are_reported_and_the_rest_load() {
    let dir = TempDir::new();
    let rules = dir.path().join("x.rules");
    std::fs::write(
        &rules,
        "alert tcp any any -> any any (msg:\"ok\"; content:\"evil\"; sid:1; rev:1;)\nalert tcp any any -> any any (msg:\"bad\"; content:\"x\"; byte_test:1,>,2,0; sid:2;)\nalert tcp any any -> (msg:\"broken\"; sid:3;)\n",
    )
    .unwrap();
    let pcap = dir.path().join("p.pcap");
    let client = Ipv4Addr::new(198, 18, 9, 7);
    rxray_lab::pcap::write_pcap(&pcap, &[tcp(client, 40000, 80, f::tcp_flags::PSH | f::tcp_flags::ACK, b"some evil bytes")]).unwrap();
    let (alerts, err) = run(&["--signatures", rules.to_str().unwrap(), pcap.to_str().unwrap()]);
    assert!(err.contains("sid 2 unsupported") && err.contains(":3:"), "{err}");
    assert!(err.contains("1 rules loaded"), "{err}");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["alert"]["signature_id"], 1);
}

#[test]
fn an_api_limit_over_a_capture_alerts_about_the_one_client_over_it() {
    let dir = TempDir::new();
    let (fast, slow) = (Ipv4Addr::new(198, 18, 9, 7), Ipv4Addr::new(198, 18, 9, 8));
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    // Frames are 1 µs apart: the fast client's 10 requests come within a millisecond (limit 5/s,
    // burst 0: the first conforms, the other 9 are over it); the slow client sends one.
    let mut frames = Vec::new();
    for i in 0..10u16 {
        let req = format!("POST /api/orders/{i} HTTP/1.1\r\nHost: shop\r\nContent-Length: 0\r\n\r\n");
        frames.extend(call(fast, 41000 + i, &[req.as_bytes()], ok));
    }
    frames.extend(call(slow, 42000, &[b"POST /api/orders/1 HTTP/1.1\r\nHost: shop\r\nContent-Length: 0\r\n\r\n"], ok));
    frames.extend(call(fast, 43000, &[b"GET /api/orders/1 HTTP/1.1\r\nHost: shop\r\n\r\n"], ok)); // another method
    let pcap = dir.path().join("api.pcap");
    rxray_lab::pcap::write_pcap(&pcap, &frames).unwrap();
    let limits = dir.path().join("limits.toml");
    std::fs::write(&limits, "[[api_limit]]\nendpoint = \"POST /api/orders/{id}\"\nrate = \"5/s\"\naction = \"block\"\n").unwrap();
    let (alerts, err) = run(&["--signatures", "none", "--port", "8080", "--api-limits", limits.to_str().unwrap(), pcap.to_str().unwrap()]);
    assert_eq!(alerts.len(), 1, "one alert (repeats suppressed): {alerts:?}");
    let a = &alerts[0];
    assert_eq!((a["rxray"]["detector"].as_str(), a["alert"]["signature_id"].as_u64()), (Some("api_limit"), Some(17)), "{a}");
    assert_eq!(a["src_ip"], "198.18.9.7");
    assert_eq!(a["rxray"]["evidence"]["request"], "POST /api/orders/1", "the second request is the first over: {a}");
    assert_eq!(a["rxray"]["evidence"]["requests_in_period"], 2);
    assert_eq!(a["rxray"]["mitigation"]["kind"]["cidr"], "198.18.9.7/32", "{a}");
    assert_eq!(a["alert"]["action"], "allowed", "offline nothing is enforced");
    assert!(err.contains("API limits: 11 requests matched a limit, 9 were over it"), "{err}");
}

// ------------------------------------------------------------------ Suricata rules (issue 23)

fn suricata_pcap(dir: &TempDir, n: u16) -> std::path::PathBuf {
    let client = Ipv4Addr::new(198, 18, 9, 7);
    let mut frames = vec![tcp(client, 40000, 80, f::tcp_flags::SYN, b"")];
    frames.extend((0..n).map(|_| tcp(client, 40000, 80, f::tcp_flags::PSH | f::tcp_flags::ACK, b"GET /attack")));
    let pcap = dir.path().join("s.pcap");
    rxray_lab::pcap::write_pcap(&pcap, &frames).unwrap();
    pcap
}

#[test]
fn suricata_rules_alert_per_match_with_pcap_cnt_and_a_threshold_file() {
    let dir = TempDir::new();
    let pcap = suricata_pcap(&dir, 17);
    let rules = dir.path().join("s.rules");
    std::fs::write(&rules, "alert tcp any any -> any 80 (msg:\"attack\"; content:\"/attack\"; gid:1; sid:7; rev:1;)\n").unwrap();
    let p = pcap.to_str().unwrap();
    let r = rules.to_str().unwrap();
    // "alert - generate an alert" per match (rules/intro.rst): 17 packets, 17 alerts.
    let (alerts, _) = run(&["--signatures", r, p]);
    let sig: Vec<&serde_json::Value> = alerts.iter().filter(|a| a["rxray"]["detector"] == "signature").collect();
    assert_eq!(sig.len(), 17, "{alerts:?}");
    // pcap_cnt: the packet's ordinal in the capture, 1-based; the SYN is record 1.
    let cnt: Vec<u64> = sig.iter().map(|a| a["pcap_cnt"].as_u64().unwrap()).collect();
    assert_eq!(cnt, (2..=18).collect::<Vec<u64>>());
    // threshold.config (global-thresholds.rst): "threshold gen_id 1, sig_id ..., type limit, track
    // by_src, count 1, seconds 15" replaces the rule's setting: one alert in the capture's 15 s.
    let th = dir.path().join("threshold.config");
    std::fs::write(&th, "# limit\nthreshold gen_id 1, sig_id 7, type limit, track by_src, count 1, seconds 15\n").unwrap();
    let (alerts, err) = run(&["--signatures", r, "--threshold-file", th.to_str().unwrap(), p]);
    assert_eq!(alerts.iter().filter(|a| a["rxray"]["detector"] == "signature").count(), 1, "{err}");
    // suppress by source: the rule never alerts for 198.18.9.7.
    std::fs::write(&th, "suppress gen_id 1, sig_id 7, track by_src, ip [198.18.9.0/24]\n").unwrap();
    let (alerts, _) = run(&["--signatures", r, "--threshold-file", th.to_str().unwrap(), p]);
    assert_eq!(alerts.iter().filter(|a| a["rxray"]["detector"] == "signature").count(), 0);
    // A bad entry stops the command with the file, line and column.
    std::fs::write(&th, "\nsuppress gen_id 1, sig_id seven\n").unwrap();
    let o = Command::new(rxray_bin()).args(["analyze", "--alerts", "--signatures", r, "--threshold-file", th.to_str().unwrap(), p]).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("threshold.config:2:27"), "{e}");
}

#[test]
fn home_net_is_one_setting_for_rules_and_the_home_net_flag() {
    let dir = TempDir::new();
    let pcap = suricata_pcap(&dir, 1);
    let rules = dir.path().join("s.rules");
    std::fs::write(&rules, "alert tcp $HOME_NET any -> $EXTERNAL_NET 80 (msg:\"out\"; content:\"/attack\"; sid:8;)\n").unwrap();
    let (p, r) = (pcap.to_str().unwrap(), rules.to_str().unwrap());
    let n = |args: &[&str]| {
        let mut a = vec!["--signatures", r];
        a.extend_from_slice(args);
        a.push(p);
        run(&a).0.iter().filter(|a| a["rxray"]["detector"] == "signature").count()
    };
    // Suricata's default HOME_NET is the private ranges: 198.18.9.7 is outside it.
    assert_eq!(n(&[]), 0);
    assert_eq!(n(&["--set", "vars.address-groups.HOME_NET=[198.18.9.7/32]"]), 1);
    assert_eq!(n(&["--home-net", "198.18.9.7/32"]), 1);
    // The destination inside HOME_NET too: not to $EXTERNAL_NET.
    assert_eq!(n(&["--home-net", "198.18.9.0/24"]), 0);
    let o = Command::new(rxray_bin())
        .args(["analyze", "--alerts", "--home-net", "198.18.9.0/24", "--set", "vars.address-groups.HOME_NET=[10.0.0.0/8]", p])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("one setting"), "{e}");
}

/// `pass` per TCP flow and the order of one packet's alerts, over a capture the test writes.
/// Suricata's rules/intro.rst, "pass": "If a signature matches and contains pass, Suricata stops
/// scanning the packet and skips to the end of all rules (only for the current packet). If the
/// signature matches on a TCP connection, the entire flow will be passed but details of the flow
/// will still be logged." detect-engine-sigorder.c orders signatures by action
/// (SCSigOrderByActionCompare) and then by priority (SCSigOrderByPriorityCompare, 1 first), and
/// detect-engine-alert.c (PacketAlertFinalize) sorts a packet's alerts by that order before they
/// are logged: the priority 1 rule's record comes before the priority 3 rule's, whatever the
/// rule file's order.
#[test]
fn a_pass_on_a_tcp_flow_passes_the_flow_and_alerts_come_in_priority_order() {
    use f::tcp_flags::{ACK, FIN, PSH, SYN};
    let dir = TempDir::new();
    let rules = dir.path().join("pass.rules");
    std::fs::write(
        &rules,
        "pass tcp any any -> any any (msg:\"pass\"; content:\"PASSME\"; sid:1;)\n\
         alert tcp any any -> any any (msg:\"low\"; content:\"data\"; priority:3; sid:2;)\n\
         alert tcp any any -> any any (msg:\"high\"; content:\"data\"; priority:1; sid:3;)\n\
         alert udp any any -> any any (msg:\"udp\"; content:\"data\"; sid:4;)\n\
         pass udp any any -> any any (msg:\"udp pass\"; content:\"PASSME\"; sid:5;)\n",
    )
    .unwrap();
    let (client, other, server) = (Ipv4Addr::new(198, 18, 9, 7), Ipv4Addr::new(198, 18, 9, 8), Ipv4Addr::new(198, 18, 9, 2));
    let udp = |payload: &[u8]| {
        let ip = Ipv4 { src: client, dst: server, ttl: 64, tos: 0, id: 1, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::UDP };
        f::frame(&eth(), &[], L3::Ipv4(ip), L4::Udp(f::Udp { sport: 5000, dport: 5353 }), payload)
    };
    let c = |flags: u8, seq: u32, payload: &[u8]| seg(client, server, 40000, 8080, seq, 1, flags, payload);
    let s = |flags: u8, payload: &[u8]| seg(server, client, 8080, 40000, 1, 1, flags, payload);
    let frames = vec![
        c(SYN, 100, b""),                      // 1
        s(SYN | ACK, b""),                     // 2
        c(ACK, 101, b""),                      // 3
        c(PSH | ACK, 101, b"data 1"),          // 4: alerts 3, 2
        c(PSH | ACK, 107, b"data PASSME"),     // 5: pass (no alert); the flow is passed
        c(PSH | ACK, 118, b"data 3"),          // 6: passed flow
        s(PSH | ACK, b"data 4"),               // 7: passed flow, the other direction
        seg(other, server, 40001, 8080, 1, 1, PSH | ACK, b"data 8"), // 8: another flow: alerts 3, 2
        udp(b"data u9"),                       // 9: alert 4
        udp(b"data PASSME"),                   // 10: pass, this packet only (UDP)
        udp(b"data u11"),                      // 11: alert 4
        c(FIN | ACK, 124, b""),                // 12
        s(FIN | ACK, b""),                     // 13
        c(SYN, 900, b""),                      // 14: a new connection on the same ports
        s(SYN | ACK, b""),                     // 15
        c(ACK, 901, b""),                      // 16
        c(PSH | ACK, 901, b"data 17"),         // 17: alerts 3, 2
    ];
    let pcap = dir.path().join("pass.pcap");
    rxray_lab::pcap::write_pcap(&pcap, &frames).unwrap();
    let (eve, err) = run(&["--signatures", rules.to_str().unwrap(), pcap.to_str().unwrap()]);
    let got: Vec<(u64, u64)> = eve
        .iter()
        .filter(|a| a["rxray"]["detector"] == "signature")
        .map(|a| (a["pcap_cnt"].as_u64().unwrap(), a["alert"]["signature_id"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, [(4, 3), (4, 2), (8, 3), (8, 2), (9, 4), (11, 4), (17, 3), (17, 2)], "{err}");
}
