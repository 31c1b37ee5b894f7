//! Suricata's `pkthdr`, `dns` and `tls` keywords, and whole payloads, from frames and segments the
//! tests build: every expected value is what the test sent (names, opcodes, the certificate's
//! `-subj` given to openssl), or a digest computed by `sha256sum`. No root needed.
use rxray_engine::detect::threat::TlsNames;
use rxray_engine::detect::{DetectConfig, Detectors};
use rxray_engine::event::Packet;
use rxray_engine::http::flags::{ACK, SYN};
use rxray_engine::http::{Direction as Dir, HttpConfig, HttpTracker, TcpSegment, TlsFacts};
use rxray_engine::signatures::{load, CallMatch, SignatureSet, Vars};
use rxray_lab::frames::{self as f, ipproto, tcp_flags as tf, Eth, L3, L4};
use rxray_wire::dissect::dissect_into_whole;
use rxray_wire::{dissect, LinkType};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

const ETH: Eth = Eth { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1] };
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn set(rules: &str) -> SignatureSet {
    let l = load(rules, &Vars::default());
    assert!(l.errors.is_empty(), "errors: {:?}", l.errors);
    assert!(l.unsupported.is_empty(), "unsupported: {:?}", l.unsupported);
    l.set
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8) -> L3 {
    L3::Ipv4(f::Ipv4 { src, dst, ttl: 64, tos: 0, id: 1, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol })
}

/// A whole frame dissected with its whole payload (as signatures see it).
fn whole(fr: &[u8]) -> Packet {
    let mut p = dissect(fr, LinkType::ETHERNET, 0, 0, "", 0);
    dissect_into_whole(&mut p, fr, LinkType::ETHERNET, 1_000_000_000, fr.len() as u32, "lab");
    assert_eq!(p.malformed, None);
    p
}

fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Packet {
    whole(&f::frame(&ETH, &[], ipv4(src, dst, ipproto::UDP), L4::Udp(f::Udp { sport, dport }), payload))
}

fn tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Packet {
    let l4 = L4::Tcp(f::Tcp { sport, dport, seq, ack: 1, flags, window: 1000, urgent: 0, options: vec![] });
    whole(&f::frame(&ETH, &[], ipv4(src, dst, ipproto::TCP), l4, payload))
}

fn sids(s: &mut SignatureSet, p: &Packet) -> Vec<u32> {
    s.match_packet(p).iter().map(|m| m.sid).collect()
}

// ------------------------------------------------------------------ pkthdr

/// Suricata: "pkthdr" is a protocol for rules on the packet header only, matching any packet.
#[test]
fn pkthdr_rules_see_every_packet_ip_or_not() {
    let mut s = set("alert pkthdr any any -> any any (msg:\"any packet\"; sid:1;)\n\
                     alert pkthdr 198.18.0.1 any -> any any (msg:\"from the client\"; sid:2;)\n\
                     alert pkthdr any any -> any any (msg:\"ttl\"; dsize:>3; sid:3;)");
    assert_eq!(sids(&mut s, &udp(CLIENT, 5000, SERVER, 6000, b"abcd")), vec![1, 2, 3]);
    assert_eq!(sids(&mut s, &udp(SERVER, 6000, CLIENT, 5000, b"ab")), vec![1]);
    let arp = L3::Arp(f::Arp { op: 1, sha: [2, 0, 0, 0, 0, 1], spa: CLIENT, tha: [0; 6], tpa: SERVER });
    let fr = f::frame(&ETH, &[], arp, L4::None, &[]);
    let p = dissect(&fr, LinkType::ETHERNET, 0, fr.len() as u32, "lab", 256);
    assert!(p.ip.is_none() && p.arp.is_some());
    // ARP has no IP header: only the rule that names no address takes it (dsize needs a payload size).
    assert_eq!(sids(&mut s, &p), vec![1]);
}

// ------------------------------------------------------------------ dns

/// A DNS message: header (id, flags) and the questions, each name written label by label.
fn dns_msg(id: u16, flags: u16, names: &[&str]) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&(names.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0; 6]);
    for n in names {
        for l in n.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
    }
    m
}

const QR: u16 = 0x8000;
fn opcode(o: u16) -> u16 {
    o << 11
}

/// Suricata's docs: "dns.query buffer: mail.google.com" for the wire bytes
/// "|04|mail|06|google|03|com|00|" ("<length> values ... are literal '.' characters, no leading
/// <length> value, no terminating NULL"); "With dns.query the DNS request queries are inspected".
#[test]
fn dns_query_is_the_dotted_name_of_each_request_question() {
    let mut s = set(r#"alert dns any any -> any any (msg:"exact"; dns.query; content:"mail.google.com"; startswith; endswith; sid:1;)
alert dns any any -> any any (msg:"wire form"; dns.query; content:"|04|mail"; sid:2;)
alert dns any any -> any any (msg:"nocase"; dns.query; content:"GOOGLE"; nocase; sid:3;)
alert udp any any -> any 53 (msg:"udp header"; dns_query; content:"evil"; sid:4;)"#);
    let q = udp(CLIENT, 40000, SERVER, 53, &dns_msg(7, 0x0100, &["mail.google.com"]));
    assert_eq!(sids(&mut s, &q), vec![1, 3]);
    let m = s.match_packet(&q);
    assert_eq!(m[0].evidence[0].buffer, Some("dns.query"));
    assert_eq!(m[0].evidence[0].bytes, b"mail.google.com");
    // The second of two questions matches too (each question is inspected).
    assert_eq!(sids(&mut s, &udp(CLIENT, 40000, SERVER, 53, &dns_msg(8, 0x0100, &["a.test", "x.evil.test"]))), vec![4]);
    // A response with the same question: no dns.query buffer.
    assert_eq!(sids(&mut s, &udp(SERVER, 53, CLIENT, 40000, &dns_msg(7, QR | 0x0100, &["mail.google.com"]))), Vec::<u32>::new());
    // Not port 53: not DNS.
    assert_eq!(sids(&mut s, &udp(CLIENT, 40000, SERVER, 5353, &dns_msg(7, 0x0100, &["mail.google.com"]))), Vec::<u32>::new());
    // Malformed (the name runs past the end): counted, no match, no panic.
    let mut cut = dns_msg(9, 0x0100, &["mail.google.com"]);
    cut.truncate(20);
    assert_eq!(sids(&mut s, &udp(CLIENT, 40000, SERVER, 53, &cut)), Vec::<u32>::new());
}

/// Suricata's docs: "dns.opcode:4; Match on DNS requests and responses with opcode 4",
/// "dns.opcode:!0; ... where the opcode is NOT 0", "dns.opcode:7-15; ... between 7 and 15,
/// exclusively", "dns.opcode:!7-15; ... not between 7 and 15".
#[test]
fn dns_opcode_numbers_negations_and_ranges() {
    let mut s = set("alert dns any any -> any any (dns.opcode:4; sid:1;)\n\
                     alert dns any any -> any any (dns.opcode:!0; sid:2;)\n\
                     alert dns any any -> any any (dns.opcode:7-15; sid:3;)\n\
                     alert dns any any -> any any (dns.opcode:!7-15; sid:4;)\n\
                     alert dns any any -> any any (dns.opcode:0; flow:to_client; sid:5;)");
    let q = |op: u16, qr: u16| udp(CLIENT, 40000, SERVER, 53, &dns_msg(1, opcode(op) | qr, &["x.test"]));
    assert_eq!(sids(&mut s, &q(4, 0)), vec![1, 2, 4]);
    assert_eq!(sids(&mut s, &q(4, QR)), vec![1, 2, 4], "requests and responses");
    assert_eq!(sids(&mut s, &q(0, 0)), vec![4]);
    assert_eq!(sids(&mut s, &q(0, QR)), vec![4, 5], "flow:to_client is a response");
    assert_eq!(sids(&mut s, &q(7, 0)), vec![2, 4]);
    assert_eq!(sids(&mut s, &q(8, 0)), vec![2, 3]);
    assert_eq!(sids(&mut s, &q(15, 0)), vec![2, 4]);
    let bad = load("alert dns any any -> any any (dns.opcode:x; sid:1;)", &Vars::default());
    assert_eq!((bad.errors[0].line, bad.errors[0].column), (1, 42), "{:?}", bad.errors);
}

/// DNS over TCP (RFC 1035 §4.2.2): "The message is prefixed with a two byte length field", and a
/// message may span segments; rules see each whole message once.
#[test]
fn dns_over_tcp_is_reassembled_from_length_prefixed_segments() {
    let mut s = set(r#"alert dns any any -> any any (msg:"q"; dns.query; content:"split.example"; sid:1;)
alert tcp any any -> any 53 (msg:"tcp q"; dns.query; content:"second.example"; sid:2;)"#);
    let one = dns_msg(1, 0x0100, &["split.example"]);
    let two = dns_msg(2, 0x0100, &["second.example"]);
    let mut stream = (one.len() as u16).to_be_bytes().to_vec();
    stream.extend_from_slice(&one);
    stream.extend_from_slice(&(two.len() as u16).to_be_bytes());
    stream.extend_from_slice(&two);
    let seq0 = 100;
    assert!(sids(&mut s, &tcp(CLIENT, 40001, SERVER, 53, seq0 - 1, tf::SYN, &[])).is_empty());
    // Cut inside the first message's name, then inside the second's length prefix.
    let (a, rest) = stream.split_at(9);
    let (b, c) = rest.split_at(one.len() + 2 - 9 + 1);
    let mut seq = seq0;
    let mut fired = Vec::new();
    for part in [a, b, c] {
        fired.push(sids(&mut s, &tcp(CLIENT, 40001, SERVER, 53, seq, tf::PSH | tf::ACK, part)));
        seq += part.len() as u32;
    }
    assert_eq!(fired, vec![vec![], vec![1], vec![2]]);
    // A retransmission of the last segment adds nothing.
    assert!(sids(&mut s, &tcp(CLIENT, 40001, SERVER, 53, seq - c.len() as u32, tf::PSH | tf::ACK, c)).is_empty());
    // Both messages in one segment of a new connection: two alerts from one packet.
    assert!(sids(&mut s, &tcp(CLIENT, 40002, SERVER, 53, 9, tf::SYN, &[])).is_empty());
    assert_eq!(sids(&mut s, &tcp(CLIENT, 40002, SERVER, 53, 10, tf::PSH | tf::ACK, &stream)), vec![1, 2]);
}

// ------------------------------------------------------------------ whole payload

/// Suricata matches the whole packet payload: a content past byte 256 of a 1,418-byte packet
/// (`distance`/`within` from a match at the start) is found.
#[test]
fn signatures_see_the_whole_payload_past_byte_256() {
    let mut payload = vec![b'.'; 1418 - 14 - 20 - 20];
    payload[..5].copy_from_slice(b"START");
    payload[1000..1006].copy_from_slice(b"NEEDLE");
    let fr = f::frame(&ETH, &[], ipv4(CLIENT, SERVER, ipproto::TCP), L4::Tcp(f::Tcp { sport: 40000, dport: 8000, seq: 1, ack: 1, flags: tf::ACK, window: 1000, urgent: 0, options: vec![] }), &payload);
    assert_eq!(fr.len(), 1418);
    let rules = r#"alert tcp any any -> any any (msg:"far"; content:"START"; depth:5; content:"NEEDLE"; distance:990; within:12; sid:1;)"#;
    let mut s = set(rules);
    let m = s.match_packet(&whole(&fr));
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].evidence[1].offset, m[0].evidence[1].bytes.as_slice()), (1000, &b"NEEDLE"[..]));
    // A 256-byte prefix (the kernel event's) cannot show it.
    let prefix = dissect(&fr, LinkType::ETHERNET, 0, fr.len() as u32, "lab", 256);
    assert_eq!(prefix.payload.len(), 256);
    assert!(s.match_packet(&prefix).is_empty());
}

// ------------------------------------------------------------------ tls

fn record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![kind, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

fn ext(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut v = kind.to_be_bytes().to_vec();
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// A TLS 1.2 ClientHello: one cipher (0xc02f), SNI `sni`, ALPN "h2"; no supported_versions.
fn client_hello(sni: &str) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[9; 32]);
    b.push(0);
    b.extend_from_slice(&[0, 2, 0xc0, 0x2f, 1, 0]);
    let mut name = vec![0];
    name.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    name.extend_from_slice(sni.as_bytes());
    let mut list = (name.len() as u16).to_be_bytes().to_vec();
    list.extend_from_slice(&name);
    let exts = [ext(0, &list), ext(0x10, &[0, 3, 2, b'h', b'2'])].concat();
    b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    b.extend_from_slice(&exts);
    record(22, &handshake(1, &b))
}

/// ServerHello (TLS 1.2, 0xc02f), Certificate (`der`) and ServerHelloDone, in one record.
fn server_flight(der: &[u8]) -> Vec<u8> {
    let mut sh = vec![3, 3];
    sh.extend_from_slice(&[5; 32]);
    sh.extend_from_slice(&[0, 0xc0, 0x2f, 0]);
    let mut cert = (der.len() as u32).to_be_bytes()[1..].to_vec();
    cert.extend_from_slice(der);
    let mut list = (cert.len() as u32).to_be_bytes()[1..].to_vec();
    list.extend_from_slice(&cert);
    record(22, &[handshake(2, &sh), handshake(11, &list), handshake(14, &[])].concat())
}

/// A self-signed certificate made by openssl with the given subject (DER).
fn openssl_cert(subj: &str) -> Option<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("rxray-kw-{}-{}", std::process::id(), subj.len()));
    std::fs::create_dir_all(&dir).ok()?;
    let (key, der) = (dir.join("key.pem"), dir.join("cert.der"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-outform", "DER", "-subj", subj, "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&der)
        .output()
        .ok()?;
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    let d = std::fs::read(&der).ok();
    let _ = std::fs::remove_dir_all(&dir);
    d
}

/// The facts of one TLS 1.2 handshake fed to the tracker as segments.
fn tls_facts(sni: &str, der: &[u8]) -> TlsFacts {
    let mut t = HttpTracker::new(HttpConfig::default()).with_tls_ports(&[8443]);
    let (c, s): (IpAddr, IpAddr) = (CLIENT.into(), SERVER.into());
    let segs: Vec<(Dir, u32, u8, Vec<u8>)> = vec![
        (Dir::ToServer, 999, SYN, vec![]),
        (Dir::ToClient, 4999, SYN | ACK, vec![]),
        (Dir::ToServer, 1000, ACK, client_hello(sni)),
        (Dir::ToClient, 5000, ACK, server_flight(der)),
    ];
    for (n, (d, seq, flags, data)) in segs.iter().enumerate() {
        let (src, sport, dst, dport) = if *d == Dir::ToServer { (c, 40000, s, 8443) } else { (s, 8443, c, 40000) };
        t.segment(&TcpSegment { ts_ns: 1_000_000_000 + n as u64, src, sport, dst, dport, dir: *d, seq: *seq, ack: 0, flags: *flags, payload: data, wire_len: data.len() as u32 });
    }
    let mut f = t.take_tls_facts();
    assert_eq!(f.len(), 1, "the server's clear-text handshake ended: one connection's facts");
    f.remove(0)
}

fn sha256_12(s: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(format!("printf '%s' '{s}' | sha256sum")).output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)[..12].to_string()
}

/// Suricata's docs: `tls.sni` "matches the TLS SNI"; `tls.cert_subject` / `tls.cert_issuer` the
/// certificate's subject and issuer ("C=US, O=..., CN=..."); `ja4.hash` "the JA4 hash of the
/// client"; `tls.version` the negotiated version. A TLS connection is one transaction: each rule
/// alerts at most once on it.
#[test]
fn tls_rules_match_sni_certificate_names_version_and_ja4() {
    let subj = "/C=US/O=Rxray Test/CN=kw.example";
    let Some(der) = openssl_cert(subj) else { panic!("openssl is needed (scripts/test installs it)") };
    let f = tls_facts("kw.example", &der);
    // x509's subject in Suricata's form: the -subj's RDNs in order, joined by ", ".
    assert_eq!(f.cert_subject.as_deref(), Some("C=US, O=Rxray Test, CN=kw.example"));
    assert_eq!(f.cert_issuer.as_deref(), Some("C=US, O=Rxray Test, CN=kw.example"), "self-signed");
    // JA4 of the hello this test wrote: TCP, TLS 1.2, SNI, 1 cipher, 2 extensions, ALPN "h2";
    // sorted ciphers "c02f"; no extensions left after SNI and ALPN, no signature algorithms.
    let ja4 = format!("t12d0102h2_{}_000000000000", sha256_12("c02f"));
    let rules = format!(
        r#"alert tls any any -> any any (msg:"sni"; tls.sni; content:"kw.example"; startswith; endswith; sid:1;)
alert tls any any -> any any (msg:"subject"; tls.cert_subject; content:"O=Rxray Test, CN=kw.example"; sid:2;)
alert tls any any -> any any (msg:"issuer"; tls.cert_issuer; content:"C=US"; startswith; sid:3;)
alert tls any any -> any any (msg:"1.2"; tls.version:1.2; sid:4;)
alert tls any any -> any any (msg:"1.3"; tls.version:1.3; sid:5;)
alert tls any any -> any any (msg:"ja4"; ja4.hash; content:"{ja4}"; sid:6;)
alert tls any any -> any any (msg:"other sni"; tls_sni; content:"other"; sid:7;)
alert tls any any -> any 443 (msg:"other port"; tls.sni; content:"kw"; sid:8;)
alert tls 198.18.0.2 8443 -> any any (msg:"cert from the server"; tls.cert_subject; content:"kw"; sid:9;)"#
    );
    let mut s = set(&rules);
    let mut out: Vec<CallMatch> = Vec::new();
    s.match_tls_into(&f, &mut out);
    let got: Vec<u32> = out.iter().map(|m| m.m.sid).collect();
    assert_eq!(got, vec![1, 2, 3, 4, 6, 9]);
    assert_eq!(out[0].m.evidence[0].buffer, Some("tls.sni"));
    assert_eq!(out[0].m.evidence[0].bytes, b"kw.example");
    // SNI and JA4 rules are about the client; certificate rules about the server.
    assert_eq!((out[0].src, out[0].dport), (IpAddr::from(CLIENT), 8443));
    assert_eq!((out[5].src, out[5].sport), (IpAddr::from(SERVER), 8443));
    // A tls rule with a bare content cannot be honoured: rxray reads the handshake's facts.
    let l = load(r#"alert tls any any -> any any (content:"x"; sid:10;)"#, &Vars::default());
    assert_eq!(l.unsupported.len(), 1, "{:?}", l.unsupported);
    assert_eq!(l.unsupported[0].sid, 10);
}

/// Threat lists name TLS server names (and their subdomains) and JA4 fingerprints.
#[test]
fn threat_lists_match_sni_and_ja4() {
    let Some(der) = openssl_cert("/CN=x") else { panic!("openssl is needed") };
    let f = tls_facts("cdn.kw.example", &der);
    let ja4 = f.ja4.clone().expect("ja4");
    let (names, rest) = TlsNames::from_list(&format!("198.51.100.0/24\nsni:KW.example. # a domain and its subdomains\nja4:{ja4}\n; comment\n"));
    assert_eq!(rest, "198.51.100.0/24\n\n\n; comment\n", "lines kept in place for the address parser");
    assert_eq!(names.sni.len() + names.ja4.len(), 2);
    let mut det = Detectors::new(DetectConfig::default(), &[]).unwrap();
    det.add_threat_names("bad", names);
    let mut out = Vec::new();
    det.on_tls(&f, &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    let e = &out[0].evidence;
    assert_eq!((e["list"].as_str(), e["sni"].as_str(), e["entry"].as_str(), e["ja4"].as_str()), (Some("bad"), Some("cdn.kw.example"), Some("kw.example"), Some(ja4.as_str())));
    // A name that only ends like a listed one is not under it.
    let (n2, _) = TlsNames::from_list("sni:w.example\n");
    assert_eq!(n2.sni_entry("kw.example"), None);
    assert_eq!(n2.sni_entry("a.w.example"), Some("w.example"));
}

// ------------------------------------------------------------------ file_data, http.uri

fn http_call(target: &str, req_body: &[u8], resp_body: &[u8]) -> rxray_engine::http::Call {
    use rxray_engine::http::{Call, ConnKey, Message};
    let k = ConnKey { client: CLIENT.into(), client_port: 40000, server: SERVER.into(), server_port: 8080 };
    let head = format!("POST {target} HTTP/1.1\r\nHost: shop.example\r\nContent-Length: {}\r\n\r\n", req_body.len());
    let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", resp_body.len());
    Call {
        client: k.client,
        conn: k,
        ts_ns: 1,
        request: Message { head: head.into_bytes(), body: req_body.to_vec(), truncated: false },
        status: 200,
        response: Message { head: resp.into_bytes(), body: resp_body.to_vec(), truncated: false },
        latency_ns: 0,
    }
}

/// The request side (delivered alone when whole) and then the paired call, as the tracker does.
fn call_sids(s: &mut SignatureSet, c: &rxray_engine::http::Call) -> Vec<(u32, bool)> {
    let mut v: Vec<CallMatch> = Vec::new();
    let request = rxray_engine::http::Call { status: 0, response: Default::default(), ..c.clone() };
    s.match_call_into(&request, &mut v);
    s.match_call_into(c, &mut v);
    v.into_iter().map(|m| (m.m.sid, m.to_client)).collect()
}

/// Suricata's docs: "The file.data sticky buffer matches on contents of files that are seen in
/// flows" (HTTP uploads and downloads alike; `alert tcp ... (file.data; ...)` is valid), and
/// `http.uri` is the normalized request URI ("Request" direction).
#[test]
fn file_data_sees_request_and_response_bodies_and_http_uri_the_normalized_uri() {
    let mut s = set(r#"alert http any any -> any any (msg:"file either way"; file_data; content:"MZ"; startswith; sid:1;)
alert tcp any any -> any any (msg:"file to the client"; flow:established,to_client; file.data; content:"MZ"; sid:2;)
alert http any any -> any any (msg:"upload"; flow:to_server; file_data; content:"MZ"; sid:3;)
alert http any any -> any any (msg:"uri"; http.uri; content:"/a/b.exe"; endswith; sid:4;)
alert http any any -> any any (msg:"raw uri"; http.uri.raw; content:"%2e"; sid:5;)"#);
    // A download: the response body starts with MZ.
    assert_eq!(call_sids(&mut s, &http_call("/a/x/%2e%2e/b.exe", b"", b"MZ\x90\x00")), vec![(4, false), (5, false), (1, true), (2, true)]);
    // An upload: the request body does.
    assert_eq!(call_sids(&mut s, &http_call("/up", b"MZ\x90\x00", b"ok")), vec![(1, false), (3, false)]);
}

/// `smtp`, `sip` and `smb` stay unsupported: the loader names each rule by its sid and line.
#[test]
fn smtp_sip_and_smb_rules_are_named_by_sid() {
    let l = load(
        "alert smtp any any -> any any (msg:\"m\"; sid:11;)\nalert sip any any -> any any (msg:\"s\"; sid:12;)\n\
         alert smb any any -> any any (msg:\"b\"; content:\"x\"; sid:13;)\nalert dns any any -> any any (sid:14;)",
        &Vars::default(),
    );
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    let got: Vec<(u32, usize, bool)> = l.unsupported.iter().map(|u| (u.sid, u.line, u.reason.contains("is not supported"))).collect();
    assert_eq!(got, vec![(11, 1, true), (12, 2, true), (13, 3, true)]);
    assert_eq!(l.set.len(), 1);
}

proptest::proptest! {
    /// Outside input never panics the DNS parser or the DNS rules, over UDP or TCP, and a parsed
    /// question name never exceeds 255 bytes.
    #[test]
    fn dns_parsing_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600), cut in 0usize..600) {
        let (mut names, mut spans) = (Vec::new(), Vec::new());
        if rxray_wire::dns::questions(&bytes, &mut names, &mut spans).is_ok() {
            for &(s, e) in &spans {
                proptest::prop_assert!(e - s <= 255 + 1);
            }
        }
        let mut s = set("alert dns any any -> any any (dns.query; content:\"a\"; sid:1;)\nalert dns any any -> any any (dns.opcode:!0; sid:2;)");
        let _ = s.match_packet(&udp(CLIENT, 40000, SERVER, 53, &bytes));
        let (a, b) = bytes.split_at(cut.min(bytes.len()));
        let _ = s.match_packet(&tcp(CLIENT, 40003, SERVER, 53, 1, tf::PSH | tf::ACK, a));
        let _ = s.match_packet(&tcp(CLIENT, 40003, SERVER, 53, 1 + a.len() as u32, tf::PSH | tf::ACK, b));
    }
}
