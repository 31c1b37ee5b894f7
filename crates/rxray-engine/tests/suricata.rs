//! Suricata compatibility (issue 23): alert semantics (an alert per match; threshold,
//! detection_filter, threshold.config), established flows, the syntax Suricata accepts, HOME_NET
//! defaults, the actions and their order, and the EVE fields of a signature alert. Each test quotes
//! the Suricata documentation or source it follows. Frames are built by rxray-lab and dissected by
//! rxray-wire, as a capture gives them; the alerts go through the same `Inspector` as `rxray
//! alerts`. No root needed.
use rxray_engine::alert::Alert;
use rxray_engine::detect::{DetectConfig, Detectors};
use rxray_engine::event::Packet;
use rxray_engine::inspect::Inspector;
use rxray_engine::signatures::{load, threshold_config, RuleAction, SignatureSet, Vars};
use rxray_lab::frames::{self as f, ipproto, tcp_flags as tf, Eth, L3, L4};
use rxray_wire::{dissect, LinkType};
use std::net::Ipv4Addr;

const ETH: Eth = Eth { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1] };

/// A TCP (or, with `flags` None, UDP) frame `src:sport -> dst:dport` at `ms` milliseconds.
fn pkt(src: &str, sport: u16, dst: &str, dport: u16, flags: Option<u8>, payload: &[u8], ms: u64) -> Packet {
    let (s, d): (Ipv4Addr, Ipv4Addr) = (src.parse().unwrap(), dst.parse().unwrap());
    let protocol = if flags.is_some() { ipproto::TCP } else { ipproto::UDP };
    let l3 = L3::Ipv4(f::Ipv4 { src: s, dst: d, ttl: 64, tos: 0, id: 1, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol });
    let l4 = match flags {
        Some(flags) => L4::Tcp(f::Tcp { sport, dport, seq: 1, ack: 1, flags, window: 1000, urgent: 0, options: vec![] }),
        None => L4::Udp(f::Udp { sport, dport }),
    };
    let fr = f::frame(&ETH, &[], l3, l4, payload);
    dissect(&fr, LinkType::ETHERNET, 1_700_000_000_000_000_000 + ms * 1_000_000, fr.len() as u32, "lab", 256)
}

const C: &str = "198.18.0.1";
const S: &str = "198.18.0.2";

fn data(payload: &[u8], ms: u64) -> Packet {
    pkt(C, 40000, S, 80, Some(tf::PSH | tf::ACK), payload, ms)
}

fn set_of(rules: &str) -> SignatureSet {
    let l = load(rules, &Vars::default());
    assert!(l.errors.is_empty(), "errors: {:?}", l.errors);
    assert!(l.unsupported.is_empty(), "unsupported: {:?}", l.unsupported);
    l.set
}

/// The full alert pipeline (detectors with their defaults, then the signatures).
fn inspector(set: SignatureSet) -> Inspector {
    Inspector::new(Detectors::new(DetectConfig::default(), &[]).unwrap(), Some(set))
}

/// Signature alerts of `packets` through the whole pipeline.
fn alerts(set: SignatureSet, packets: &[Packet]) -> Vec<Alert> {
    let mut insp = inspector(set);
    let mut out = Vec::new();
    for p in packets {
        insp.on_packet(p, &mut out);
    }
    out.retain(|a| a.sig.detector == "signature");
    out
}

fn sids(v: &[Alert]) -> Vec<u32> {
    v.iter().map(|a| a.sig.sid).collect()
}

// ------------------------------------------------------------------ alert semantics

#[test]
fn every_match_alerts_without_repeat_suppression() {
    // rules/intro.rst: "alert - generate an alert"; the thresholding docs are the only way
    // Suricata lowers the count. Seventeen matching packets from one source in one second: the
    // detectors' 60 s repeat suppression must not fold them into one (the issue's 1 vs 17).
    let set = set_of(r#"alert tcp any any -> any any (msg:"x"; content:"attack"; sid:1;)"#);
    let packets: Vec<Packet> = (0..17).map(|i| data(b"an attack", i * 10)).collect();
    let a = alerts(set, &packets);
    assert_eq!(a.len(), 17);
    assert!(a.iter().all(|a| a.suppressed == 0));
    // Each its own numbered alert.
    let ids: std::collections::BTreeSet<u64> = a.iter().map(|a| a.id).collect();
    assert_eq!(ids.len(), 17);
}

fn fired_at(rule_opts: &str, packets: &[Packet]) -> Vec<u64> {
    let set = set_of(&format!("alert tcp any any -> any any (content:\"x\"; {rule_opts} sid:1;)"));
    let mut insp = inspector(set);
    let mut at = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let mut out = Vec::new();
        insp.on_packet(p, &mut out);
        if out.iter().any(|a| a.sig.detector == "signature") {
            at.push(i as u64 + 1);
        }
    }
    at
}

#[test]
fn threshold_backoff_by_flow() {
    // thresholding.rst: "A count of 1 with a multiplier of 2 would generate alerts for matching
    // packets: 1, 2, 4, 8, 16, 32, 64, etc." ... "backoff can only be used with track by_flow".
    let packets: Vec<Packet> = (0..40).map(|i| data(b"x", i)).collect();
    assert_eq!(fired_at("threshold: type backoff, track by_flow, count 1, multiplier 2;", &packets), [1, 2, 4, 8, 16, 32]);
    // Another flow counts on its own.
    let mut two: Vec<Packet> = (0..3).map(|i| data(b"x", i)).collect();
    two.push(pkt(C, 40001, S, 80, Some(tf::PSH | tf::ACK), b"x", 4));
    assert_eq!(fired_at("threshold: type backoff, track by_flow, count 1, multiplier 10;", &two), [1, 4]);
    let l = load("alert tcp any any -> any any (threshold: type backoff, track by_src, count 1, multiplier 2; sid:1;)", &Vars::default());
    assert!(l.errors[0].message.contains("by_flow"), "{:?}", l.errors);
}

#[test]
fn threshold_tracks_by_rule_and_by_both() {
    // thresholding.rst, track: "by_both: pair of src IP and dst IP", "by_rule: signature id".
    // global-thresholds.rst: "Packets going to opposite directions between same addresses
    // tracked as the same pair."
    let mixed = [
        pkt(C, 1, S, 2, Some(tf::ACK), b"x", 1),
        pkt(S, 2, C, 1, Some(tf::ACK), b"x", 2),
        pkt("198.18.0.3", 1, S, 2, Some(tf::ACK), b"x", 3),
        pkt(C, 1, S, 2, Some(tf::ACK), b"x", 4),
    ];
    assert_eq!(fired_at("threshold: type limit, track by_rule, count 1, seconds 60;", &mixed), [1]);
    assert_eq!(fired_at("threshold: type limit, track by_both, count 1, seconds 60;", &mixed), [1, 3]);
    assert_eq!(fired_at("threshold: type limit, track by_src, count 1, seconds 60;", &mixed), [1, 2, 3]);
}

#[test]
fn detection_filter_alerts_after_the_count() {
    // thresholding.rst: "detection_filter: action applied on every match after Cth"; "neither the
    // rule action nor its alert are applied ... at (detection_filter) the count limit".
    let packets: Vec<Packet> = (0..6).map(|i| data(b"x", i * 100)).collect();
    assert_eq!(fired_at("detection_filter: track by_src, count 3, seconds 60;", &packets), [4, 5, 6]);
    // The window: matches 61 s apart never reach the count.
    let slow: Vec<Packet> = (0..6).map(|i| data(b"x", i * 61_000)).collect();
    assert!(fired_at("detection_filter: track by_src, count 1, seconds 60;", &slow).is_empty());
}

fn with_config(rules: &str, config: &str) -> SignatureSet {
    let (cfg, errors) = threshold_config::parse(config, &Vars::default());
    assert!(errors.is_empty(), "{errors:?}");
    set_of(rules).with_threshold_config(&cfg).0
}

#[test]
fn threshold_config_suppress() {
    let rules = "alert tcp any any -> any any (content:\"x\"; sid:1;)\nalert tcp any any -> any any (content:\"x\"; gid:7; sid:2;)";
    let from = |src: &str, ms| pkt(src, 1, S, 2, Some(tf::ACK), b"x", ms);
    let packets = [from(C, 1), from("198.18.0.9", 2)];
    // global-thresholds.rst: "suppress gen_id 1, sig_id 2002087 ... will simply convert the rule to
    // 'noalert', meaning it will never alert in any case."
    assert_eq!(sids(&alerts(with_config(rules, "suppress gen_id 1, sig_id 1\n"), &packets)), [2, 2]);
    // "This will make sure the signature ... will never match for src host 209.132.180.67."
    assert_eq!(sids(&alerts(with_config(rules, &format!("suppress gen_id 1, sig_id 1, track by_src, ip {C}\n")), &packets)), [2, 1, 2]);
    // by_either: "if either the source ip or destination ip matches ... the rule ... is suppressed".
    assert_eq!(sids(&alerts(with_config(rules, &format!("suppress gen_id 7, sig_id 2, track by_either, ip {S}\n")), &packets)), [1, 1]);
    // gen_id must match the rule's gid; sig_id 0 is every rule of that gid.
    assert_eq!(sids(&alerts(with_config(rules, "suppress gen_id 7, sig_id 0\n"), &packets)), [1, 1]);
    assert_eq!(sids(&alerts(with_config(rules, "suppress gen_id 0, sig_id 0\n"), &packets)), Vec::<u32>::new());
}

#[test]
fn threshold_config_threshold_replaces_the_rules_own() {
    // global-thresholds.rst: "thresholds and event_filters ... will override the signature
    // setting"; "threshold gen_id 1, sig_id 2002087, type limit, track by_src, count 1, seconds 15".
    let rules = "alert tcp any any -> any any (content:\"x\"; threshold: type limit, track by_src, count 5, seconds 60; sid:1;)";
    let packets: Vec<Packet> = (0..4).map(|i| data(b"x", i * 1000)).collect();
    assert_eq!(alerts(set_of(rules), &packets).len(), 4);
    let set = with_config(rules, "threshold gen_id 1, sig_id 1, type limit, track by_src, count 1, seconds 15\n");
    assert_eq!(alerts(set, &packets).len(), 1);
    // A wildcard entry leaves a rule that has its own threshold alone.
    let set = with_config(rules, "threshold gen_id 0, sig_id 0, type limit, track by_src, count 1, seconds 15\n");
    assert_eq!(alerts(set, &packets).len(), 4);
}

#[test]
fn threshold_config_rate_filter_changes_the_action() {
    // global-thresholds.rst: "Rate filters allow changing of a rule action when a rule matches";
    // count: "Number of rule hits before the rate_filter is activated"; timeout: "Time in seconds
    // during which the rate_filter will remain active."
    let rules = "alert tcp any any -> any any (content:\"x\"; sid:888;)";
    let set = with_config(rules, "rate_filter gen_id 1, sig_id 888, track by_src, count 3, seconds 60, new_action drop, timeout 10\n");
    // Matches at 0, 1, 2, 3 s, then 20 s (past the 10 s timeout).
    let packets: Vec<Packet> = [0u64, 1, 2, 3, 20].iter().map(|s| data(b"x", s * 1000)).collect();
    let a = alerts(set, &packets);
    let actions: Vec<RuleAction> = a.iter().map(|a| a.rule.as_ref().unwrap().action).collect();
    use RuleAction::{Alert as A, Drop as D};
    assert_eq!(actions, [A, A, D, D, A]);
    // new_action pass: the match passes the packet, no alert.
    let set = with_config(rules, "rate_filter gen_id 1, sig_id 888, track by_rule, count 2, seconds 60, new_action pass, timeout 60\n");
    assert_eq!(alerts(set, &packets).len(), 1);
}

// ------------------------------------------------------------------ established

#[test]
fn the_handshakes_ack_is_not_established_the_next_packet_is() {
    // Suricata, flow.c FlowHandlePacketUpdate: "if (SC_ATOMIC_GET(f->flow_state) ==
    // FLOW_STATE_ESTABLISHED) { p->flowflags |= FLOW_PKT_ESTABLISHED; }" runs before the stream
    // engine handles the packet; stream-tcp.c moves the flow to FLOW_STATE_ESTABLISHED
    // (StreamTcpPacketSetState) while handling the handshake's ACK. So that ACK is not
    // established and the packet after it is. The ACK here carries the content (as a client
    // that sends data with the ACK does).
    let set = set_of(r#"alert tcp any any -> any any (content:"x"; flow:established,to_server; sid:1;)"#);
    let packets = [
        pkt(C, 40000, S, 80, Some(tf::SYN), b"", 1),
        pkt(S, 80, C, 40000, Some(tf::SYN | tf::ACK), b"", 2),
        pkt(C, 40000, S, 80, Some(tf::ACK), b"x", 3),
        pkt(C, 40000, S, 80, Some(tf::ACK | tf::PSH), b"x", 4),
    ];
    let a = alerts(set, &packets);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].ts_ns % 1_000_000_000, 4_000_000, "the packet after the handshake's ACK");
    // not_established matches the ACK itself.
    let set = set_of(r#"alert tcp any any -> any any (content:"x"; flow:not_established; sid:1;)"#);
    assert_eq!(alerts(set, &packets).len(), 1);
}

// ------------------------------------------------------------------ syntax

#[test]
fn syntax_suricata_accepts_loads() {
    let text = r#"alert http any any -> any any (msg:"unquoted pcre"; pcre:/\/admin/U; sid:1;)
alert tcp any any -> any any (content:"x"; threshold: type backoff, track by_flow, count 1, multiplier 10; sid:2;)
alert http1:request_complete any any -> any any (http.uri; content:"/x"; sid:3;)
alert http any any => any any (http.uri; content:"/login"; http.stat_code; content:"200"; sid:4;)
alert tcp:all any any -> any any (content:"y"; sid:5;)
"#;
    let l = load(text, &Vars::default());
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    assert!(l.unsupported.is_empty(), "{:?}", l.unsupported);
    assert_eq!(l.set.len(), 5);
    let r = &l.set.rules()[3];
    assert!(r.transactional && r.to_client, "a transactional rule is checked on the paired call");
    assert_eq!(l.set.rules()[2].hook.as_deref(), Some("request_complete"));
    // `tls:client_hello_done` is a valid hook: whatever rxray says about the tls protocol, it is no
    // syntax error.
    let l = load("alert tls:client_hello_done any any -> any any (sid:6;)", &Vars::default());
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    // A hook the protocol does not have is an error at the protocol's column.
    let l = load("alert http1:client_hello_done any any -> any any (sid:7;)", &Vars::default());
    assert_eq!((l.errors[0].line, l.errors[0].column), (1, 7), "{:?}", l.errors);
    // `=>` on a packet rule: Suricata's transactional rules need an app-layer transaction.
    let l = load("alert tcp any any => any any (content:\"x\"; sid:8;)", &Vars::default());
    assert_eq!(l.unsupported.len(), 1, "{:?}", l.errors);
}

// ------------------------------------------------------------------ HOME_NET

#[test]
fn home_net_defaults_to_suricatas_private_ranges() {
    // suricata.yaml (default): HOME_NET: "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]",
    // EXTERNAL_NET: "!$HOME_NET".
    let rules = r#"alert tcp $EXTERNAL_NET any -> $HOME_NET any (content:"x"; sid:1;)"#;
    let inbound = pkt("203.0.113.9", 1, "10.1.2.3", 80, Some(tf::ACK), b"x", 1);
    let lab = pkt(C, 1, S, 80, Some(tf::ACK), b"x", 2);
    let private_to_private = pkt("192.168.1.1", 1, "172.16.0.1", 80, Some(tf::ACK), b"x", 3);
    assert_eq!(alerts(set_of(rules), &[inbound.clone(), lab.clone(), private_to_private]).len(), 1);
    // Set to the lab's networks, the lab's traffic from outside them matches.
    let mut vars = Vars::default();
    vars.set("HOME_NET", "[198.18.0.2/32]");
    let set = load(rules, &vars).set;
    assert_eq!(sids(&alerts(set, &[inbound, lab])), [1]);
}

// ------------------------------------------------------------------ actions

#[test]
fn actions_follow_suricatas_action_order() {
    // rules/intro.rst: "pass - stop further inspection of the packet"; suricata.yaml action-order
    // default: pass, drop, reject, alert. A pass rule later in the file still wins.
    let rules = "alert tcp any any -> any any (content:\"x\"; sid:1;)\n\
                 drop tcp any any -> any any (content:\"x\"; sid:2;)\n\
                 reject tcp any any -> any any (content:\"x\"; sid:3;)\n\
                 pass tcp any any -> any any (content:\"x\"; content:\"pass\"; sid:4;)";
    let a = alerts(set_of(rules), &[data(b"x", 1), data(b"x pass", 2)]);
    // The first packet: every rule but pass, in action order (drop, reject, alert); the second: none.
    assert_eq!(sids(&a), [2, 3, 1]);
    let eve: Vec<serde_json::Value> = a.iter().map(|a| a.to_eve()).collect();
    // IDS mode (no --enforce). output-json-alert.c, AlertJsonHeader:
    //     if (pa->action & ACTION_REJECT_ANY) { action = "blocked"; }
    //     else if ((pa->action & ACTION_DROP) && EngineModeIsIPS()) { action = "blocked"; }
    // (action starts as "allowed"): a reject is "blocked" in any mode, a drop and an alert
    // "allowed" outside IPS mode.
    let actions: Vec<&str> = eve.iter().map(|e| e["alert"]["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["allowed", "blocked", "allowed"], "{eve:?}");
    // drop and reject: the policy decides a block of the source, with a TTL and the rule named.
    let m = &eve[0]["rxray"]["mitigation"];
    assert_eq!((m["decision"].as_str(), m["kind"]["cidr"].as_str(), m["ttl_s"].as_u64()), (Some("taken"), Some("198.18.0.1/32"), Some(600)), "{m}");
    assert!(m["reason"].as_str().unwrap().contains("drop rule 1:2"), "{m}");
    assert_eq!(eve[2]["rxray"]["mitigation"]["decision"], "none", "an alert rule never blocks");
}

// ------------------------------------------------------------------ EVE

#[test]
fn eve_fields_of_a_signature_alert() {
    // eve-json-format.rst: the alert's "gid", "app_proto", "direction", the "flow" object
    // (pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient, start) and
    // "payload_printable".
    let set = set_of(r#"alert tcp any any -> any any (msg:"m"; content:"needle"; gid:3; sid:5; rev:2;)"#);
    let mut insp = inspector(set).with_payload_printable(true);
    let packets = [
        pkt(C, 40000, S, 80, Some(tf::SYN), b"", 1),
        pkt(S, 80, C, 40000, Some(tf::SYN | tf::ACK), b"", 2),
        pkt(C, 40000, S, 80, Some(tf::ACK), b"", 3),
        pkt(S, 80, C, 40000, Some(tf::ACK | tf::PSH), b"a needle\r\n\x01", 4),
    ];
    let mut out = Vec::new();
    for p in &packets {
        insp.on_packet(p, &mut out);
    }
    out.retain(|a| a.sig.detector == "signature");
    assert_eq!(out.len(), 1);
    let e = out[0].to_eve();
    assert_eq!((e["alert"]["gid"].as_u64(), e["alert"]["signature_id"].as_u64(), e["alert"]["rev"].as_u64()), (Some(3), Some(5), Some(2)));
    assert_eq!(e["direction"], "to_client");
    let fl = &e["flow"];
    let len = |p: &Packet| p.len as u64;
    assert_eq!((fl["pkts_toserver"].as_u64(), fl["pkts_toclient"].as_u64()), (Some(2), Some(2)), "{fl}");
    assert_eq!(fl["bytes_toserver"].as_u64(), Some(len(&packets[0]) + len(&packets[2])));
    assert_eq!(fl["bytes_toclient"].as_u64(), Some(len(&packets[1]) + len(&packets[3])));
    assert_eq!(fl["start"], rxray_engine::alert::eve_timestamp(packets[0].ts_ns));
    assert_eq!((fl["src_ip"].as_str(), fl["dest_port"].as_u64()), (Some(C), Some(80)));
    assert_eq!(e["payload_printable"], "a needle\r\n.");
    assert!(e.get("app_proto").is_none(), "unknown for a packet rule: left out");
    // pcap_cnt is the capture reader's: absent here.
    assert!(e.get("pcap_cnt").is_none());
}

// ------------------------------------------------------------------ decoder events

/// An IPv4 frame carrying `l4` (protocol `proto`) as its whole IP payload, bytes as given.
fn raw_ipv4(proto: u8, l4: &[u8]) -> Packet {
    let mut fr = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let tot = (20 + l4.len()) as u16;
    fr.extend_from_slice(&[0x45, 0, (tot >> 8) as u8, tot as u8, 0, 1, 0x40, 0, 64, proto, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2]);
    fr.extend_from_slice(l4);
    dissect(&fr, LinkType::ETHERNET, 1_700_000_000_000_000_000, fr.len() as u32, "lab", 256)
}

#[test]
fn decoder_events_follow_suricatas_tcp_and_udp_decoders() {
    // decoder-events.rules: `alert pkthdr any any -> any any (msg:"SURICATA TCP packet too small";
    // decode-event:tcp.pkt_too_small; ...)`. decode-tcp.c, DecodeTCPPacket (len: the IP payload):
    //   if (len < TCP_HEADER_LEN) TCP_PKT_TOO_SMALL; hlen = TCP_GET_HLEN(p);
    //   if (len < hlen) TCP_HLEN_TOO_SMALL; tcp_opt_len = hlen - TCP_HEADER_LEN (uint8_t);
    //   if (tcp_opt_len > TCP_OPTLENMAX) TCP_INVALID_OPTLEN.
    // decode-udp.c, DecodeUDPPacket: if (len < UDP_HEADER_LEN) UDP_HLEN_TOO_SMALL;
    //   if (len < UDP_GET_LEN(p)) UDP_PKT_TOO_SMALL; if (len != UDP_GET_LEN(p)) UDP_HLEN_INVALID.
    let rules = "alert pkthdr any any -> any any (msg:\"tcp small\"; decode-event:tcp.pkt_too_small; sid:2200033;)\n\
                 alert pkthdr any any -> any any (msg:\"tcp hlen\"; decode-event:tcp.hlen_too_small; sid:2200034;)\n\
                 alert pkthdr any any -> any any (msg:\"tcp optlen\"; decode-event:tcp.invalid_optlen; sid:2200035;)\n\
                 alert pkthdr any any -> any any (msg:\"udp hlen\"; decode-event:udp.hlen_too_small; sid:2200038;)\n\
                 alert pkthdr any any -> any any (msg:\"udp small\"; decode-event:udp.pkt_too_small; sid:2200037;)\n\
                 alert pkthdr any any -> any any (msg:\"udp invalid\"; decode-event:udp.hlen_invalid; sid:2200039;)";
    let tcp_hdr = |offset_words: u8| {
        let mut h = vec![0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, offset_words << 4, 0x10, 0x03, 0xe8, 0, 0, 0, 0];
        h.truncate(20);
        h
    };
    let udp_hdr = |len: u16, payload: usize| {
        let mut h = vec![0x13, 0x88, 0, 53, (len >> 8) as u8, len as u8, 0, 0];
        h.extend(std::iter::repeat_n(b'x', payload));
        h
    };
    let packets = [
        raw_ipv4(ipproto::TCP, &tcp_hdr(5)[..12]), // 12 bytes of TCP: pkt_too_small
        raw_ipv4(ipproto::TCP, &tcp_hdr(8)),       // data offset 8 (32 bytes) in 20: hlen_too_small
        raw_ipv4(ipproto::TCP, &tcp_hdr(3)),       // data offset 3 (12 bytes): invalid_optlen
        raw_ipv4(ipproto::TCP, &tcp_hdr(5)),       // a good header: no event
        raw_ipv4(ipproto::UDP, &[0x13, 0x88, 0, 53]), // 4 bytes of UDP: hlen_too_small
        raw_ipv4(ipproto::UDP, &udp_hdr(100, 4)),  // length 100 in 12 bytes: pkt_too_small
        raw_ipv4(ipproto::UDP, &udp_hdr(4, 4)),    // length 4 (below the header): hlen_invalid
        raw_ipv4(ipproto::UDP, &udp_hdr(12, 4)),   // a good datagram: no event
    ];
    let a = alerts(set_of(rules), &packets);
    assert_eq!(sids(&a), [2200033, 2200034, 2200035, 2200038, 2200037, 2200039]);
    // Events rxray does not derive are named by sid.
    let l = load("alert pkthdr any any -> any any (msg:\"x\"; decode-event:ipv4.trunc_pkt; sid:2200003;)", &Vars::default());
    assert_eq!((l.unsupported.len(), l.errors.len()), (1, 0));
    assert!(l.unsupported[0].reason.contains("ipv4.trunc_pkt"), "{:?}", l.unsupported[0].reason);
}
