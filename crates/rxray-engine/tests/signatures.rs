//! Payload signatures: every keyword and modifier with a packet that must fire and one that must
//! not; loader reporting (unsupported rules by sid, syntax errors by line and column); the
//! default rules on attack and ordinary requests; the prefilter against naive evaluation; and
//! parser robustness on arbitrary input. Packets are real frames built by rxray-lab's builder and
//! dissected by rxray-wire, as a capture would give them. No root needed.
use proptest::prelude::*;
use rxray_engine::event::Packet;
use rxray_engine::signatures::{load, Loaded, SigMatch, SignatureSet, Vars};
use rxray_lab::frames::{self as f, ipproto, tcp_flags as tf, Eth, L4};
use rxray_lab::testing::Rng;
use rxray_wire::{dissect, LinkType};
use std::net::IpAddr;

const ETH: Eth = Eth { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1] };
const CLIENT: &str = "198.18.0.1";
const SERVER: &str = "198.18.0.2";

#[derive(Clone, Copy)]
enum Tp {
    Tcp(u8),
    Udp,
    Icmp,
}

/// One dissected frame: `src:sport -> dst:dport`, at `ts_s` seconds, payload kept up to 256 bytes.
fn pkt(src: &str, sport: u16, dst: &str, dport: u16, tp: Tp, payload: &[u8], ts_s: u64) -> Packet {
    let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let proto = match tp {
        Tp::Tcp(_) => ipproto::TCP,
        Tp::Udp => ipproto::UDP,
        Tp::Icmp => if s.is_ipv4() { ipproto::ICMP } else { ipproto::ICMPV6 },
    };
    let l3 = f::plain_ip(s, d, proto);
    let l4 = match tp {
        Tp::Tcp(flags) => {
            L4::Tcp(f::Tcp { sport, dport, seq: 1, ack: 1, flags, window: 1000, urgent: 0, options: vec![] })
        }
        Tp::Udp => L4::Udp(f::Udp { sport, dport }),
        Tp::Icmp if s.is_ipv4() => L4::Icmp(f::Icmp { ty: 8, code: 0, id: 1, seq: 1 }),
        Tp::Icmp => L4::Icmpv6(f::Icmpv6 { ty: 128, code: 0, id: 1, seq: 1 }),
    };
    let fr = f::frame(&ETH, &[], l3, l4, payload);
    let p = dissect(&fr, LinkType::ETHERNET, ts_s * 1_000_000_000, fr.len() as u32, "lab", 256);
    assert_eq!(p.malformed, None, "test frame must be well formed");
    p
}

/// A data packet (PSH|ACK) from the client to port 80.
fn req(payload: &[u8]) -> Packet {
    pkt(CLIENT, 40000, SERVER, 80, Tp::Tcp(tf::PSH | tf::ACK), payload, 1)
}

/// Loads rules that must all load cleanly.
fn set(rules: &str) -> SignatureSet {
    let l = load(rules, &Vars::default());
    assert!(l.errors.is_empty(), "errors: {:?}", l.errors);
    assert!(l.unsupported.is_empty(), "unsupported: {:?}", l.unsupported);
    l.set
}

/// One rule with `opts` and sid 1 over `tcp any any -> any any`.
fn rule(opts: &str) -> SignatureSet {
    set(&format!("alert tcp any any -> any any ({opts} sid:1;)"))
}

fn sids(s: &mut SignatureSet, p: &Packet) -> Vec<u32> {
    s.match_packet(p).iter().map(|m| m.sid).collect()
}

fn fires(opts: &str, payload: &[u8]) -> bool {
    let mut s = rule(opts);
    !s.match_packet(&req(payload)).is_empty()
}

// ------------------------------------------------------------------ content and modifiers

#[test]
fn content_matches_anywhere_and_reports_evidence() {
    let mut s = set(r#"alert tcp any any -> any any (msg:"evil"; content:"evil"; classtype:web-application-attack; sid:7; rev:3;)"#);
    let m: Vec<SigMatch> = s.match_packet(&req(b"GET /evil HTTP/1.1"));
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].sid, m[0].rev, m[0].msg.as_str(), m[0].priority), (7, 3, "evil", 1));
    assert_eq!(m[0].classtype.as_deref(), Some("web-application-attack"));
    assert_eq!((m[0].evidence[0].offset, m[0].evidence[0].bytes.as_slice(), m[0].evidence[0].keyword), (5, &b"evil"[..], "content"));
    assert!(s.match_packet(&req(b"GET /good HTTP/1.1")).is_empty());
    // Case matters without nocase.
    assert!(s.match_packet(&req(b"GET /EVIL")).is_empty());
}

#[test]
fn a_content_longer_than_the_prefilter_pattern_still_matches_exactly() {
    // The prefilter keys on the first 64 bytes; the full evaluation checks all of it.
    let long = format!("{}B", "A".repeat(200));
    let opts = format!("content:\"{long}\";");
    assert!(fires(&opts, format!("xx{long}xx").as_bytes()));
    assert!(!fires(&opts, format!("xx{}C", "A".repeat(200)).as_bytes()), "the prefix alone must not fire");
}

#[test]
fn content_hex_and_escapes() {
    assert!(fires(r#"content:"A|42 43|D";"#, b"xxABCDxx"));
    assert!(!fires(r#"content:"A|42 43|D";"#, b"xxAB CDxx"));
    assert!(fires(r#"content:"a\"b\;c\\d";"#, b"__a\"b;c\\d__"));
    assert!(!fires(r#"content:"a\"b\;c\\d";"#, b"__a\"b;cd__"));
    assert!(fires(r#"content:"|00 ff|";"#, &[1, 0, 0xff, 2]));
}

#[test]
fn nocase() {
    assert!(fires(r#"content:"SeLeCt"; nocase;"#, b"x select y"));
    assert!(!fires(r#"content:"SeLeCt"; nocase;"#, b"x selec t y"));
    assert!(!fires(r#"content:"SeLeCt";"#, b"x select y"));
}

#[test]
fn offset() {
    assert!(fires(r#"content:"ab"; offset:2;"#, b"xxab"));
    assert!(!fires(r#"content:"ab"; offset:3;"#, b"xxab"));
}

#[test]
fn depth_counts_from_offset() {
    assert!(fires(r#"content:"ab"; depth:4;"#, b"xxab"));
    assert!(!fires(r#"content:"ab"; depth:3;"#, b"xxab"));
    // offset 2, depth 2: bytes 2..4.
    assert!(fires(r#"content:"ab"; offset:2; depth:2;"#, b"xxabyy"));
    assert!(!fires(r#"content:"ab"; offset:1; depth:2;"#, b"xxabyy"));
}

#[test]
fn distance() {
    assert!(fires(r#"content:"GET"; content:"x"; distance:3;"#, b"GET abcx"));
    assert!(!fires(r#"content:"GET"; content:"x"; distance:5;"#, b"GET abcx"));
    // A negative distance reaches back before the previous match's end.
    assert!(fires(r#"content:"cd"; content:"bc"; distance:-3; within:2;"#, b"abcd"));
    assert!(!fires(r#"content:"cd"; content:"ab"; distance:-3; within:2;"#, b"abcd"));
}

#[test]
fn within() {
    assert!(fires(r#"content:"user="; content:"admin"; within:6;"#, b"user= adminz"));
    assert!(!fires(r#"content:"user="; content:"admin"; within:5;"#, b"user= adminz"));
    // within counts from the end of the distance (Suricata): window is [prev+2, prev+2+5).
    assert!(fires(r#"content:"a"; content:"bcdef"; distance:2; within:5;"#, b"a..bcdef"));
    assert!(!fires(r#"content:"a"; content:"bcdef"; distance:2; within:5;"#, b"a...bcdef"));
}

#[test]
fn relative_matches_backtrack_to_a_later_occurrence() {
    // The first "id=" is not followed by a digit within 1 byte, the second is.
    assert!(fires(r#"content:"id="; content:"7"; within:1;"#, b"id=x&id=7"));
    assert!(!fires(r#"content:"id="; content:"7"; within:1;"#, b"id=x&id=8 7"));
}

#[test]
fn negated_content() {
    assert!(fires(r#"content:"GET"; content:!"Host";"#, b"GET / HTTP/1.0\r\n\r\n"));
    assert!(!fires(r#"content:"GET"; content:!"Host";"#, b"GET / HTTP/1.1\r\nHost: x\r\n"));
    // Relative negation: "admin" not within 10 bytes after "user=".
    assert!(fires(r#"content:"user="; content:!"admin"; within:10;"#, b"user=bob&x=.......admin"));
    assert!(!fires(r#"content:"user="; content:!"admin"; within:10;"#, b"user=admin"));
    // A rule of only a negated content is evaluated without a prefilter pattern.
    assert!(fires(r#"content:!"zzz";"#, b"abc"));
    assert!(!fires(r#"content:!"zzz";"#, b"abzzzc"));
}

#[test]
fn pcre_plain_and_flags() {
    assert!(fires(r#"pcre:"/id=\d+'/";"#, b"?id=12'"));
    assert!(!fires(r#"pcre:"/id=\d+'/";"#, b"?id=ab'"));
    assert!(fires(r#"pcre:"/UNION\s+SELECT/i";"#, b"union  select"));
    assert!(!fires(r#"pcre:"/UNION\s+SELECT/";"#, b"union  select"));
    assert!(fires(r#"pcre:"/a.b/s";"#, b"a\nb"));
    assert!(!fires(r#"pcre:"/a.b/";"#, b"a\nb"));
    assert!(fires(r#"pcre:"/^Host: x$/m";"#, b"GET /\nHost: x\nY"));
    assert!(!fires(r#"pcre:"/^Host: x$/";"#, b"GET /\nHost: x\nY"));
    assert!(fires(r#"pcre:"/a b c # spaced out/x";"#, b"abc"));
    assert!(!fires(r#"pcre:"/a b c/";"#, b"abc"));
    assert!(fires(r#"pcre:!"/secret/";"#, b"public"));
    assert!(!fires(r#"pcre:!"/secret/";"#, b"top secret"));
}

#[test]
fn pcre_relative_starts_at_the_previous_match() {
    assert!(fires(r#"content:"cmd="; pcre:"/^ls/R";"#, b"x=ls&cmd=ls"));
    assert!(!fires(r#"content:"cmd="; pcre:"/^ls/R";"#, b"x=ls&cmd=rm"));
    // Without R, ^ is the payload start.
    assert!(!fires(r#"content:"cmd="; pcre:"/^ls/";"#, b"x=ls&cmd=ls"));
    // A content relative to a pcre match.
    assert!(fires(r#"pcre:"/v=\d+/"; content:"!"; within:1;"#, b"v=12!"));
    assert!(!fires(r#"pcre:"/v=\d+/"; content:"!"; within:1;"#, b"v=12 !"));
}

// ------------------------------------------------------------------ flow

fn flow_set(opts: &str) -> SignatureSet {
    set(&format!(r#"alert tcp any any -> any any (content:"data"; flow:{opts}; sid:1;)"#))
}

#[test]
fn flow_to_server_and_to_client() {
    let mut s = flow_set("to_server");
    let syn = pkt(CLIENT, 40000, SERVER, 80, Tp::Tcp(tf::SYN), b"", 1);
    assert!(s.match_packet(&syn).is_empty());
    assert_eq!(sids(&mut s, &pkt(CLIENT, 40000, SERVER, 80, Tp::Tcp(tf::ACK | tf::PSH), b"data", 2)), [1]);
    assert!(sids(&mut s, &pkt(SERVER, 80, CLIENT, 40000, Tp::Tcp(tf::ACK | tf::PSH), b"data", 3)).is_empty());
    let mut s = flow_set("to_client");
    s.match_packet(&syn);
    assert!(sids(&mut s, &pkt(CLIENT, 40000, SERVER, 80, Tp::Tcp(tf::ACK | tf::PSH), b"data", 2)).is_empty());
    assert_eq!(sids(&mut s, &pkt(SERVER, 80, CLIENT, 40000, Tp::Tcp(tf::ACK | tf::PSH), b"data", 3)), [1]);
    // A flow first seen at its SYN-ACK: the client is the SYN-ACK's receiver.
    let mut s = flow_set("to_server");
    s.match_packet(&pkt(SERVER, 81, CLIENT, 40001, Tp::Tcp(tf::SYN | tf::ACK), b"", 1));
    assert_eq!(sids(&mut s, &pkt(CLIENT, 40001, SERVER, 81, Tp::Tcp(tf::ACK | tf::PSH), b"data", 2)), [1]);
}

#[test]
fn flow_established_from_the_servers_incoming_view() {
    let mut s = flow_set("established,to_server");
    let data = pkt(CLIENT, 40000, SERVER, 80, Tp::Tcp(tf::ACK | tf::PSH), b"data", 3);
    // Midstream: no handshake seen, so not established.
    assert!(s.match_packet(&data).is_empty());
    let mut s = flow_set("established,to_server");
    s.match_packet(&pkt(CLIENT, 40000, SERVER, 80, Tp::Tcp(tf::SYN), b"", 1));
    // Data on the SYN itself (TFO-like) is not established.
    assert!(s.match_packet(&pkt(CLIENT, 40000, SERVER, 80, Tp::Tcp(tf::SYN), b"data", 1)).is_empty());
    s.match_packet(&pkt(CLIENT, 40000, SERVER, 80, Tp::Tcp(tf::ACK), b"", 2));
    assert_eq!(sids(&mut s, &data), [1]);
    // A RST ends it.
    s.match_packet(&pkt(CLIENT, 40000, SERVER, 80, Tp::Tcp(tf::RST), b"", 4));
    assert!(s.match_packet(&data).is_empty());
}

#[test]
fn flow_established_from_the_clients_incoming_view_and_both_directions() {
    let mut s = flow_set("established,to_client");
    s.match_packet(&pkt(SERVER, 80, CLIENT, 40000, Tp::Tcp(tf::SYN | tf::ACK), b"", 1));
    assert_eq!(sids(&mut s, &pkt(SERVER, 80, CLIENT, 40000, Tp::Tcp(tf::ACK | tf::PSH), b"data", 2)), [1]);
    // Both directions, full handshake.
    let mut s = flow_set("established");
    s.match_packet(&pkt(CLIENT, 40002, SERVER, 80, Tp::Tcp(tf::SYN), b"", 1));
    s.match_packet(&pkt(SERVER, 80, CLIENT, 40002, Tp::Tcp(tf::SYN | tf::ACK), b"", 1));
    assert!(s.match_packet(&pkt(SERVER, 80, CLIENT, 40002, Tp::Tcp(tf::SYN | tf::ACK), b"data", 1)).is_empty());
    s.match_packet(&pkt(CLIENT, 40002, SERVER, 80, Tp::Tcp(tf::ACK), b"", 2));
    assert_eq!(sids(&mut s, &pkt(CLIENT, 40002, SERVER, 80, Tp::Tcp(tf::ACK | tf::PSH), b"data", 3)), [1]);
    // FIN from each side closes it.
    s.match_packet(&pkt(CLIENT, 40002, SERVER, 80, Tp::Tcp(tf::FIN | tf::ACK), b"", 4));
    assert_eq!(sids(&mut s, &pkt(SERVER, 80, CLIENT, 40002, Tp::Tcp(tf::ACK | tf::PSH), b"data", 4)), [1]);
    s.match_packet(&pkt(SERVER, 80, CLIENT, 40002, Tp::Tcp(tf::FIN | tf::ACK), b"", 5));
    assert!(s.match_packet(&pkt(CLIENT, 40002, SERVER, 80, Tp::Tcp(tf::ACK | tf::PSH), b"data", 6)).is_empty());
}

#[test]
fn flow_established_udp_needs_both_directions_and_stateless_ignores_state() {
    let mut s = set(r#"alert udp any any -> any any (content:"q"; flow:established; sid:1;)"#);
    assert!(s.match_packet(&pkt(CLIENT, 5000, SERVER, 53, Tp::Udp, b"q", 1)).is_empty());
    assert_eq!(sids(&mut s, &pkt(SERVER, 53, CLIENT, 5000, Tp::Udp, b"q", 2)), [1]);
    let mut s = set(r#"alert udp any any -> any any (content:"q"; flow:stateless; sid:1;)"#);
    assert_eq!(sids(&mut s, &pkt(CLIENT, 5000, SERVER, 53, Tp::Udp, b"q", 1)), [1]);
    assert!(s.match_packet(&pkt(CLIENT, 5000, SERVER, 53, Tp::Udp, b"r", 1)).is_empty());
}

#[test]
fn flow_table_eviction_is_counted_and_loses_state() {
    let rules = r#"alert tcp any any -> any any (content:"data"; flow:established; sid:1;)"#;
    let mut s = load(rules, &Vars::default()).set.with_state_capacity(4, 4);
    s.match_packet(&pkt(CLIENT, 40000, SERVER, 80, Tp::Tcp(tf::SYN), b"", 1));
    s.match_packet(&pkt(CLIENT, 40000, SERVER, 80, Tp::Tcp(tf::ACK), b"", 1));
    // Eight other flows push the first one out of a 4-entry table.
    for port in 1..=8 {
        s.match_packet(&pkt(CLIENT, port, SERVER, 80, Tp::Tcp(tf::SYN), b"", 2));
    }
    assert_eq!(s.stats().flows_evicted, 6);
    assert!(s.match_packet(&pkt(CLIENT, 40000, SERVER, 80, Tp::Tcp(tf::ACK | tf::PSH), b"data", 3)).is_empty());
}

// ------------------------------------------------------------------ flags, dsize

fn flags_fire(spec: &str, flags: u8) -> bool {
    let mut s = set(&format!("alert tcp any any -> any any (flags:{spec}; sid:1;)"));
    !s.match_packet(&pkt(CLIENT, 1, SERVER, 2, Tp::Tcp(flags), b"", 1)).is_empty()
}

#[test]
fn flags_modifiers_and_mask() {
    assert!(flags_fire("S", tf::SYN));
    assert!(!flags_fire("S", tf::SYN | tf::ACK));
    assert!(flags_fire("SA", tf::SYN | tf::ACK));
    assert!(flags_fire("S+", tf::SYN | tf::ACK));
    assert!(flags_fire("+S", tf::SYN | tf::ECE));
    assert!(!flags_fire("S+", tf::ACK));
    assert!(flags_fire("*SF", tf::FIN | tf::ACK));
    assert!(!flags_fire("*SF", tf::ACK | tf::PSH));
    assert!(flags_fire("!R", tf::ACK));
    assert!(!flags_fire("!R", tf::RST | tf::ACK));
    // Mask: ignore CWR and ECE (12 is their old names).
    assert!(flags_fire("S,12", tf::SYN | tf::CWR | tf::ECE));
    assert!(!flags_fire("S", tf::SYN | tf::CWR | tf::ECE));
    assert!(flags_fire("S,CE", tf::SYN | tf::ECE));
    assert!(flags_fire("0", 0));
    assert!(!flags_fire("0", tf::ACK));
    // flags only match TCP.
    let mut s = set("alert ip any any -> any any (flags:!R; sid:1;)");
    assert!(s.match_packet(&pkt(CLIENT, 1, SERVER, 2, Tp::Udp, b"x", 1)).is_empty());
}

fn dsize_fires(spec: &str, len: usize) -> bool {
    fires(&format!("dsize:{spec};"), &vec![b'x'; len])
}

#[test]
fn dsize_forms() {
    assert!(dsize_fires("10", 10) && !dsize_fires("10", 11));
    assert!(dsize_fires("<10", 9) && !dsize_fires("<10", 10));
    assert!(dsize_fires(">10", 11) && !dsize_fires(">10", 10));
    assert!(dsize_fires("10<>20", 11) && dsize_fires("10<>20", 19));
    assert!(!dsize_fires("10<>20", 10) && !dsize_fires("10<>20", 20));
    assert!(dsize_fires("!5", 6) && !dsize_fires("!5", 5));
    // The whole payload counts, not just the 256 bytes captured.
    assert!(dsize_fires("1000", 1000) && !dsize_fires("256", 1000));
}

// ------------------------------------------------------------------ threshold

fn threshold_alerts(kind: &str, count: u32, seconds: u32, times: &[u64]) -> Vec<u64> {
    let mut s = set(&format!(
        r#"alert tcp any any -> any any (content:"x"; threshold: type {kind}, track by_src, count {count}, seconds {seconds}; sid:1;)"#
    ));
    times.iter().copied().filter(|&t| !s.match_packet(&pkt(CLIENT, 1, SERVER, 2, Tp::Tcp(tf::ACK), b"x", t)).is_empty()).collect()
}

#[test]
fn threshold_limit() {
    assert_eq!(threshold_alerts("limit", 2, 60, &[0, 1, 2, 3, 59, 60, 61, 62]), [0, 1, 60, 61]);
}

#[test]
fn threshold_threshold() {
    assert_eq!(threshold_alerts("threshold", 3, 60, &[0, 1, 2, 3, 4, 5, 6, 70, 71]), [2, 5]);
}

#[test]
fn threshold_both() {
    assert_eq!(threshold_alerts("both", 2, 10, &[0, 1, 2, 3, 10, 11, 12]), [1, 11]);
    assert_eq!(threshold_alerts("both", 3, 10, &[0, 1]), Vec::<u64>::new());
}

#[test]
fn threshold_tracks_each_address_separately() {
    let rules = r#"alert tcp any any -> any any (content:"x"; threshold: type limit, track by_dst, count 1, seconds 60; sid:1;)"#;
    let mut s = set(rules);
    let to = |dst: &str, t| pkt(CLIENT, 1, dst, 2, Tp::Tcp(tf::ACK), b"x", t);
    assert_eq!(sids(&mut s, &to("198.18.0.2", 1)), [1]);
    assert!(sids(&mut s, &to("198.18.0.2", 2)).is_empty());
    assert_eq!(sids(&mut s, &to("198.18.0.3", 3)), [1]);
    assert_eq!(s.stats().suppressed, 1);
}

#[test]
fn threshold_table_eviction_is_counted_and_restarts_the_window() {
    let rules = r#"alert tcp any any -> any any (content:"x"; threshold: type limit, track by_src, count 1, seconds 60; sid:1;)"#;
    let mut s = load(rules, &Vars::default()).set.with_state_capacity(4, 2);
    let from = |src: &str, t| pkt(src, 1, SERVER, 2, Tp::Tcp(tf::ACK), b"x", t);
    assert_eq!(sids(&mut s, &from("198.18.1.1", 1)), [1]);
    assert!(sids(&mut s, &from("198.18.1.1", 2)).is_empty());
    // Three other sources push 198.18.1.1 out of a 2-entry table (1 + 1 per generation).
    for (i, src) in ["198.18.1.2", "198.18.1.3", "198.18.1.4"].iter().enumerate() {
        assert_eq!(sids(&mut s, &from(src, 3 + i as u64)), [1]);
    }
    assert_eq!(s.stats().thresholds_evicted, 2);
    // Its window was forgotten with it, so it alerts again inside the 60 s.
    assert_eq!(sids(&mut s, &from("198.18.1.1", 10)), [1]);
}

// ------------------------------------------------------------------ header: protocol, addresses, ports, direction

fn header_fires(header: &str, p: &Packet) -> bool {
    let mut s = set(&format!("alert {header} (sid:1;)"));
    !s.match_packet(p).is_empty()
}

#[test]
fn protocols() {
    let t = pkt(CLIENT, 1, SERVER, 2, Tp::Tcp(tf::ACK), b"", 1);
    let u = pkt(CLIENT, 1, SERVER, 2, Tp::Udp, b"", 1);
    let i = pkt(CLIENT, 0, SERVER, 0, Tp::Icmp, b"", 1);
    let i6 = pkt("2001:2::1", 0, "2001:2::2", 0, Tp::Icmp, b"", 1);
    assert!(header_fires("tcp any any -> any any", &t) && !header_fires("tcp any any -> any any", &u));
    assert!(header_fires("udp any any -> any any", &u) && !header_fires("udp any any -> any any", &i));
    assert!(header_fires("icmp any any -> any any", &i) && header_fires("icmp any any -> any any", &i6));
    assert!(!header_fires("icmp any any -> any any", &t));
    assert!(header_fires("ip any any -> any any", &t) && header_fires("ip any any -> any any", &i6));
}

#[test]
fn addresses_cidr_lists_negation_and_variables() {
    let p = pkt("198.18.0.1", 1000, "198.18.5.9", 80, Tp::Tcp(tf::ACK), b"", 1);
    assert!(header_fires("tcp 198.18.0.1 any -> 198.18.0.0/16 any", &p));
    assert!(!header_fires("tcp 198.18.0.1 any -> 198.19.0.0/16 any", &p));
    assert!(header_fires("tcp [10.0.0.1,198.18.0.0/24] any -> any any", &p));
    assert!(!header_fires("tcp [10.0.0.1,192.0.2.0/24] any -> any any", &p));
    assert!(header_fires("tcp !10.0.0.0/8 any -> any any", &p));
    assert!(!header_fires("tcp !198.18.0.0/24 any -> any any", &p));
    assert!(header_fires("tcp [198.18.0.0/16,!198.18.5.0/24] any -> !198.18.0.1 any", &p));
    assert!(!header_fires("tcp any any -> [198.18.0.0/16,!198.18.5.0/24] any", &p));
    let v6 = pkt("2001:2::1", 1000, "2001:2::2", 80, Tp::Tcp(tf::ACK), b"", 1);
    assert!(header_fires("tcp 2001:2::/48 any -> any any", &v6) && !header_fires("tcp 198.18.0.0/15 any -> any any", &v6));
    // Variables from a configurable map.
    let mut vars = Vars::default();
    vars.set("HOME_NET", "[198.18.5.0/24]");
    let rules = "alert tcp $EXTERNAL_NET any -> $HOME_NET any (sid:1;)";
    let mut s = load(rules, &vars).set;
    assert_eq!(sids(&mut s, &p), [1]);
    let back = pkt("198.18.5.9", 80, "198.18.0.1", 1000, Tp::Tcp(tf::ACK), b"", 1);
    assert!(sids(&mut s, &back).is_empty());
}

#[test]
fn ports_ranges_lists_and_negation() {
    let p = |dport| pkt(CLIENT, 40000, SERVER, dport, Tp::Tcp(tf::ACK), b"", 1);
    assert!(header_fires("tcp any any -> any 80", &p(80)) && !header_fires("tcp any any -> any 80", &p(81)));
    assert!(header_fires("tcp any any -> any 1024:", &p(1024)) && !header_fires("tcp any any -> any 1024:", &p(1023)));
    assert!(header_fires("tcp any any -> any :1023", &p(1023)) && !header_fires("tcp any any -> any :1023", &p(1024)));
    assert!(header_fires("tcp any any -> any 80:90", &p(85)) && !header_fires("tcp any any -> any 80:90", &p(91)));
    assert!(header_fires("tcp any any -> any [80,443,8000:8100]", &p(8050)));
    assert!(!header_fires("tcp any any -> any [80,443,8000:8100]", &p(8101)));
    assert!(header_fires("tcp any any -> any !22", &p(80)) && !header_fires("tcp any any -> any !22", &p(22)));
    assert!(!header_fires("tcp any any -> any [1:100,!80]", &p(80)));
    assert!(header_fires("tcp any 40000 -> any $HTTP_PORTS", &p(80)));
    assert!(!header_fires("tcp any !40000 -> any any", &p(80)));
}

#[test]
fn bidirectional_header() {
    let fwd = pkt(CLIENT, 40000, SERVER, 80, Tp::Tcp(tf::ACK), b"", 1);
    let back = pkt(SERVER, 80, CLIENT, 40000, Tp::Tcp(tf::ACK), b"", 1);
    let other = pkt(SERVER, 81, CLIENT, 40000, Tp::Tcp(tf::ACK), b"", 1);
    let h = format!("tcp {CLIENT} any <> {SERVER} 80");
    assert!(header_fires(&h, &fwd) && header_fires(&h, &back) && !header_fires(&h, &other));
    let h = format!("tcp {CLIENT} any -> {SERVER} 80");
    assert!(header_fires(&h, &fwd) && !header_fires(&h, &back));
}

// ------------------------------------------------------------------ the loader

#[test]
fn unsupported_rules_are_reported_by_sid_and_the_others_load() {
    let text = r#"
alert tcp any any -> any any (msg:"ok 1"; content:"a"; sid:1;)
drop tcp any any -> any any (msg:"drop"; content:"a"; sid:2;)
alert http any any -> any any (msg:"sticky"; http.uri; content:"/x"; sid:3;)
alert tcp any any -> any any (msg:"byte_test"; byte_test:4,>,1000,0; sid:4;)
alert tcp any any -> any any (msg:"backref"; pcre:"/(a)\1/"; sid:5;)
alert smtp any any -> any any (msg:"smtp"; sid:6;)
alert tcp any any -> any any (msg:"lookahead"; pcre:"/a(?=b)/"; sid:7;)
alert tcp any any -> any any (msg:"http_uri modifier"; content:"/x"; http_uri; sid:8;)
alert tcp any any -> any any (msg:"ok 2"; content:"b"; sid:9;)
alert tcp any any -> any any (msg:"stream"; flow:established,only_stream; sid:10;)
"#;
    let l = load(text, &Vars::default());
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    let got: Vec<(u32, usize)> = l.unsupported.iter().map(|u| (u.sid, u.line)).collect();
    // HTTP buffers (sticky and legacy modifiers), PCRE-only constructs (PCRE2 runs them) and the
    // drop action (issue 23: it alerts, and blocks with --enforce) load.
    assert_eq!(got, [(4, 5), (6, 7), (10, 11)]);
    let reason = |sid| l.unsupported.iter().find(|u| u.sid == sid).unwrap().reason.clone();
    assert!(reason(4).contains("byte_test"));
    assert!(reason(6).contains("protocol 'smtp'"));
    assert!(reason(10).contains("only_stream"));
    let loaded: Vec<u32> = l.set.rules().iter().map(|r| r.sid).collect();
    assert_eq!(loaded, [1, 2, 3, 5, 7, 8, 9]);
    assert_eq!(l.set.rules()[1].action, rxray_engine::signatures::RuleAction::Drop);
    assert_eq!(l.set.http_rules(), 2);
}

#[test]
fn syntax_errors_give_line_and_column_and_do_not_stop_the_others() {
    let text = "# comment\n\
                alert tcp any any -> any any (content:\"a\"; sid:1;)\n\
                alert tcp any any <= any any (sid:2;)\n\
                alert tcp any 99999 -> any any (sid:3;)\n\
                alert tcp any any -> any any (content:\"a|4|\"; sid:4;)\n\
                \n\
                alert tcp any any -> any any (msg:\"no sid\";)\n\
                alert tcp any any -> any any (content:\"x\"; depth:abc; sid:6;)\n\
                alert tcp any any -> any any (nocase; sid:7;)\n\
                alert tcp any any -> any any (content:\"x\"; \\\n\
                   dsize:<>; sid:8;)\n\
                alert tcp any any -> any any (content:\"ok\"; sid:9;)\n\
                alert tcp any any -> any any (content:\"dup\"; sid:9;)\n";
    let l = load(text, &Vars::default());
    let got: Vec<(usize, usize)> = l.errors.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(got, [(3, 19), (4, 15), (5, 43), (7, 30), (8, 50), (9, 31), (11, 7), (13, 1)], "{:#?}", l.errors);
    assert!(l.errors[0].message.contains("direction"));
    assert!(l.errors[1].message.contains("99999"));
    assert!(l.errors[2].message.contains("odd number of hex digits"));
    assert!(l.errors[3].message.contains("no sid"));
    assert!(l.errors[4].message.contains("abc"));
    assert!(l.errors[5].message.contains("previous content"));
    assert!(l.errors[7].message.contains("duplicate sid 9"));
    assert_eq!(l.errors[0].to_string(), format!("line 3, column 19: {}", l.errors[0].message));
    let loaded: Vec<u32> = l.set.rules().iter().map(|r| r.sid).collect();
    assert_eq!(loaded, [1, 9]);
}

#[test]
fn continuation_lines_join_into_one_rule() {
    let text = "alert tcp any any -> any any (msg:\"split\"; \\\n    content:\"ab\"; \\\n    sid:5;)\n";
    let mut s = set(text);
    assert_eq!(s.rules()[0].line, 1);
    assert_eq!(sids(&mut s, &req(b"xxabxx")), [5]);
}

#[test]
fn http_is_tcp_with_a_note_and_priority_follows_classtype() {
    let text = r#"alert http any any -> any any (content:"x"; classtype:attempted-recon; sid:1;)
alert tcp any any -> any any (content:"x"; classtype:attempted-recon; priority:4; sid:2;)
alert tcp any any -> any any (content:"x"; classtype:no-such-class; sid:3;)
alert tcp any any -> any any (content:"x"; reference:url,example.com; metadata:created_at 2026_01_01; sid:4;)"#;
    let l: Loaded = load(text, &Vars::default());
    assert_eq!(l.notes.len(), 1);
    assert_eq!((l.notes[0].sid, l.notes[0].line), (1, 1));
    assert!(l.notes[0].note.contains("tcp"));
    let mut s = l.set;
    let m = s.match_packet(&req(b"x"));
    let pr: Vec<(u32, u8)> = m.iter().map(|m| (m.sid, m.priority)).collect();
    // In Suricata's order: by priority (detect-engine-sigorder.c), then rule-file order.
    assert_eq!(pr, [(1, 2), (3, 3), (4, 3), (2, 4)]);
}

// ------------------------------------------------------------------ the default rules

fn default_rules() -> Loaded {
    load(include_str!("../../../rules/default.rules"), &Vars::default())
}

#[test]
fn default_rules_load_cleanly() {
    let l = default_rules();
    assert!(l.errors.is_empty(), "{:#?}", l.errors);
    assert!(l.unsupported.is_empty(), "{:#?}", l.unsupported);
    let n = l.set.len();
    assert!((40..=100).contains(&n), "{n} rules");
    assert!(l.set.rules().iter().all(|r| r.sid >= 9_000_000));
    // Every default rule reads HTTP buffers (tests/http_signatures.rs checks each one).
    assert_eq!(l.set.http_rules(), n);
}

// ------------------------------------------------------------------ prefilter vs naive

/// Random rules over a small alphabet, so random payloads hit them often.
fn random_rules(rng: &mut Rng, n: usize) -> String {
    const WORDS: &[&str] = &["ab", "abc", "ba", "cab", "ABC", "bb", "a|00|b", "cc", "bca"];
    let mut out = String::new();
    for sid in 1..=n {
        let mut opts = String::new();
        for k in 0..1 + rng.below(3) {
            let w = rng.pick(WORDS);
            let neg = if rng.below(6) == 0 { "!" } else { "" };
            opts.push_str(&format!("content:{neg}\"{w}\"; "));
            if rng.below(3) == 0 {
                opts.push_str("nocase; ");
            }
            match rng.below(5) {
                0 => opts.push_str(&format!("offset:{}; ", rng.below(4))),
                1 => opts.push_str(&format!("depth:{}; ", 6 + rng.below(10))),
                2 if k > 0 => opts.push_str(&format!("distance:{}; ", rng.below(3))),
                3 if k > 0 => opts.push_str(&format!("within:{}; ", 6 + rng.below(4))),
                _ => {}
            }
        }
        if rng.below(4) == 0 {
            opts.push_str(&format!("pcre:\"/{}[abc]/{}\"; ", rng.pick(&["a", "b", "c"]), rng.pick(&["", "i", "R"])));
        }
        out.push_str(&format!("alert tcp any any -> any any ({opts}sid:{sid};)\n"));
    }
    out
}

#[test]
fn prefilter_gives_exactly_the_naive_results() {
    let mut rng = Rng(0x5157);
    let text = random_rules(&mut rng, 300);
    let l = load(&text, &Vars::default());
    assert!(l.errors.is_empty(), "{:?}", l.errors.first());
    let mut fast = l.set;
    let mut naive = load(&text, &Vars::default()).set;
    naive.set_prefilter(false);
    let mut fired = 0;
    for i in 0..2000 {
        let len = rng.below(40);
        let payload: Vec<u8> = (0..len).map(|_| rng.pick(b"abcABC\0 ")).collect();
        let p = pkt(CLIENT, 1000 + (i % 50) as u16, SERVER, 80, Tp::Tcp(tf::ACK), &payload, i);
        let a = fast.match_packet(&p);
        let b = naive.match_packet(&p);
        assert_eq!(a, b, "payload {:?}", String::from_utf8_lossy(&payload));
        fired += a.len();
    }
    assert!(fired > 1000, "the random rules must fire often to test anything ({fired})");
    assert!(fast.stats().evaluated < naive.stats().evaluated);
}

// ------------------------------------------------------------------ robustness

const TOKENS: &[&str] = &[
    "alert", "drop", "tcp", "udp", "any", "->", "<>", "[", "]", "!", "$HOME_NET", "80", "1024:", "(", ")", ";", ":", "\"",
    "content", "nocase", "depth", "within", "distance", "offset", "pcre", "\"/a/R\"", "|41|", "|", "\\", "sid", "1",
    "flow", "flags", "dsize", "threshold", "type limit", ",", "msg", "-5", "99999999999", "é", "\n", "#",
];

fn check_never_panics(text: &str) {
    let l = load(text, &Vars::default());
    let lines = text.lines().count().max(1);
    for e in &l.errors {
        assert!(e.line >= 1 && e.line <= lines + 1, "{text:?}: line {} of {lines}", e.line);
        assert!(e.column >= 1, "{text:?}: column 0");
        assert!(!e.message.is_empty());
    }
    let mut s = l.set;
    let _ = s.match_packet(&req(b"GET /a?b=c HTTP/1.1\r\n\r\n"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,120}") {
        check_never_panics(&s);
    }

    #[test]
    fn token_soup_never_panics(words in proptest::collection::vec(proptest::sample::select(TOKENS), 0..40)) {
        check_never_panics(&words.join(" "));
        check_never_panics(&words.concat());
    }

    #[test]
    fn default_rule_mutations_never_panic(at in 0usize..4000, del in 0usize..6, ins in "\\PC{0,4}") {
        let base: Vec<char> = include_str!("../../../rules/default.rules").chars().collect();
        let at = at % (base.len() + 1);
        let end = (at + del).min(base.len());
        let mut s: String = base[..at].iter().collect();
        s.push_str(&ins);
        s.extend(&base[end..]);
        check_never_panics(&s);
    }
}
