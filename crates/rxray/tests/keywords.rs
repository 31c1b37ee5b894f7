//! Suricata's `dns` and `tls` keywords and whole payloads through the real binary: `rxray analyze
//! --alerts` on captures the tests write or tcpdump records, and `rxray alerts` live in a lab pair
//! with real tools (dig against a Python DNS responder over UDP and TCP, curl against nginx over
//! TLS 1.2). Expected values are what the tools were told to send (names, the certificate's
//! subject), the JA4 of an independent Python implementation over tcpdump's capture, and counts
//! of what was sent.
mod common;

use common::web::Nginx;
use common::{need_root, rxray_bin, skip_or_fail, Dump, Kid, Running, TempDir};
use rxray_lab::frames::{self as f, ipproto, Eth, L3, L4};
use rxray_lab::Lab;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

fn tools(list: &[&str]) -> bool {
    for t in list {
        let ok = Command::new("sh").arg("-c").arg(format!("command -v {t}")).output().is_ok_and(|o| o.status.success());
        if !ok {
            skip_or_fail(&format!("{t} is not installed (scripts/test installs it)"));
            return false;
        }
    }
    true
}

/// `rxray analyze --alerts` with `args`: the EVE records by signature id.
fn analyze(args: &[&str]) -> (BTreeMap<u64, Vec<Value>>, String) {
    let o = Command::new(rxray_bin()).args(["analyze", "--alerts"]).args(args).output().expect("rxray analyze");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "rxray analyze: {err}");
    (by_sid(&String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect::<Vec<_>>()), err)
}

fn by_sid(lines: &[String]) -> BTreeMap<u64, Vec<Value>> {
    let mut m: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    for v in common::json_lines(lines) {
        let sid = if v["rxray"]["detector"] == "signature" { v["alert"]["signature_id"].as_u64().unwrap_or(0) } else { 0 };
        m.entry(sid).or_default().push(v);
    }
    m
}

fn counts(m: &BTreeMap<u64, Vec<Value>>) -> BTreeMap<u64, usize> {
    m.iter().filter(|(k, _)| **k != 0).map(|(k, v)| (*k, v.len())).collect()
}

const FAR: &str = r#"alert ip any any -> any any (msg:"past byte 256"; content:"START"; depth:5; content:"NEEDLE"; distance:990; within:12; sid:104;)"#;

/// Suricata inspects the whole packet payload: a content past byte 256 of a 1,418-byte frame,
/// placed by `distance`/`within`, alerts once from a capture.
#[test]
fn a_content_past_byte_256_of_a_1418_byte_packet_alerts_offline() {
    let dir = TempDir::new();
    let mut payload = vec![b'.'; 1418 - 14 - 20 - 20];
    payload[..5].copy_from_slice(b"START");
    payload[1000..1006].copy_from_slice(b"NEEDLE");
    let l3 = L3::Ipv4(f::Ipv4 { src: Ipv4Addr::new(198, 18, 0, 1), dst: Ipv4Addr::new(198, 18, 0, 2), ttl: 64, tos: 0, id: 1, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::TCP });
    let l4 = L4::Tcp(f::Tcp { sport: 40000, dport: 9000, seq: 1, ack: 1, flags: f::tcp_flags::ACK, window: 1000, urgent: 0, options: vec![] });
    let fr = f::frame(&Eth { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1] }, &[], l3, l4, &payload);
    assert_eq!(fr.len(), 1418);
    let pcap = dir.path().join("far.pcap");
    rxray_lab::pcap::write_pcap(&pcap, &[fr]).unwrap();
    let rules = dir.path().join("far.rules");
    std::fs::write(&rules, format!("{FAR}\n")).unwrap();
    let (got, err) = analyze(&["--signatures", rules.to_str().unwrap(), pcap.to_str().unwrap()]);
    assert_eq!(counts(&got), BTreeMap::from([(104, 1)]), "{err}");
    let m = &got[&104][0]["rxray"]["evidence"]["matches"][1];
    assert_eq!((m["offset"].as_u64(), m["text"].as_str()), (Some(1000), Some("NEEDLE")), "{}", got[&104][0]);
}

/// A DNS responder over UDP and TCP on port 53: every question answered with one A record
/// (198.18.0.99), the opcode echoed. Bounded: it exits after 60 s.
const DNS_PY: &str = r#"
import socket, struct, sys, threading, time
addr = sys.argv[1]
def answer(q):
    hdr = bytearray(q[:12]); hdr[2] |= 0x80; hdr[3] = 0x80
    qd = struct.unpack('!H', q[4:6])[0]
    end = 12
    for _ in range(qd):
        while q[end] != 0: end += 1 + q[end]
        end += 5
    hdr[6:12] = struct.pack('!HHH', 1 if qd else 0, 0, 0)
    rr = (b'\xc0\x0c' + struct.pack('!HHIH', 1, 1, 60, 4) + socket.inet_aton('198.18.0.99')) if qd else b''
    return bytes(hdr) + q[12:end] + rr
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((addr, 53))
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind((addr, 53)); t.listen(8)
def udp():
    while True:
        q, peer = u.recvfrom(4096); u.sendto(answer(q), peer)
def tcp():
    while True:
        c, _ = t.accept(); c.settimeout(5)
        try:
            n = struct.unpack('!H', c.recv(2, socket.MSG_WAITALL))[0]
            q = c.recv(n, socket.MSG_WAITALL); a = answer(q)
            c.sendall(struct.pack('!H', len(a)) + a)
        except Exception as e:
            print('tcp:', e, file=sys.stderr)
        c.close()
threading.Thread(target=udp, daemon=True).start(); threading.Thread(target=tcp, daemon=True).start()
print('ready', flush=True)
time.sleep(60)
"#;

/// Sends one UDP datagram of `n` bytes: "START", dots, "NEEDLE" at offset 1000.
const FAR_PY: &str = r#"
import socket, sys
p = bytearray(b'.' * int(sys.argv[3])); p[:5] = b'START'; p[1000:1006] = b'NEEDLE'
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(bytes(p), (sys.argv[1], int(sys.argv[2])))
print('sent', flush=True)
"#;

fn dig(lab: &Lab, server: &str, args: &[&str]) -> String {
    let out = lab.exec(lab.ns_a(), ["dig", &format!("@{server}"), "+tries=1", "+time=3", "+short"]).args(args).output().expect("dig");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// dig against a DNS responder over UDP and TCP, plus a 1,418-byte UDP frame: `rxray alerts` live
/// on the server's interface (its ingress: the requests) and `rxray analyze --alerts` on
/// tcpdump's capture of both directions. Suricata's docs: "dns.query: the DNS request queries
/// are inspected" (one alert per request); "dns.opcode:4: Match on DNS requests and responses
/// with opcode 4" (the NOTIFY request and its response, in the capture).
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn dns_rules_over_udp_and_tcp_and_whole_payloads_live_and_offline() {
    if !need_root() || !tools(&["dig", "tcpdump", "python3"]) {
        return;
    }
    let dir = TempDir::new();
    let lab = Lab::pair("rxkwdns").expect("lab");
    let b = lab.addr4_b().to_string();
    let rules = dir.path().join("dns.rules");
    std::fs::write(
        &rules,
        format!(
            "alert dns any any -> any any (msg:\"udp query\"; dns.query; content:\"udp.kw.test\"; startswith; endswith; sid:101;)\n\
             alert dns any any -> any any (msg:\"tcp query\"; flow:to_server; dns.query; content:\"tcp.kw.test\"; sid:102;)\n\
             alert dns any any -> any any (msg:\"notify\"; dns.opcode:4; sid:103;)\n{FAR}\n"
        ),
    )
    .unwrap();
    let mut srv = Kid::python(&lab, lab.ns_b(), DNS_PY, std::slice::from_ref(&b));
    assert_eq!(srv.line(), "ready");
    let dump = Dump::start_snap(lab.ns_b(), lab.if_b(), "inout", dir.path(), "dns", 0);
    let mut rx = Running::start(lab.ns_b(), &["alerts", "-i", lab.if_b(), "--standalone", "--no-conns", "--signatures", rules.to_str().unwrap()]);
    rx.wait_stderr("Ctrl-C to stop", Duration::from_secs(20));
    assert_eq!(dig(&lab, &b, &["+notcp", "udp.kw.test", "A"]), "198.18.0.99");
    assert_eq!(dig(&lab, &b, &["+tcp", "tcp.kw.test", "A"]), "198.18.0.99");
    // NOTIFY (opcode 4): dig prints no A record for it; the responder answers it all the same.
    dig(&lab, &b, &["+notcp", "+opcode=4", "notify.kw.test", "SOA"]);
    let mut far = Kid::python(&lab, lab.ns_a(), FAR_PY, &[b.clone(), "9999".into(), (1418 - 14 - 20 - 8).to_string()]);
    assert_eq!(far.line(), "sent");
    std::thread::sleep(Duration::from_millis(1500));
    let (code, stdout, stderr) = rx.interrupt();
    assert_eq!(code, Some(0), "rxray alerts: {stderr:?}");
    let (file, frames) = dump.stop();
    assert!(frames.iter().any(|(_, fr)| fr.len() == 1418), "the 1,418-byte frame is in the capture");
    let live = by_sid(&stdout);
    // Live: the requests arrive on the server's interface (the responses leave it).
    assert_eq!(counts(&live), BTreeMap::from([(101, 1), (102, 1), (103, 1), (104, 1)]), "{stderr:?}");
    let q = &live[&101][0]["rxray"]["evidence"]["matches"][0];
    assert_eq!((q["buffer"].as_str(), q["text"].as_str()), (Some("dns.query"), Some("udp.kw.test")));
    assert_eq!(live[&104][0]["rxray"]["evidence"]["matches"][1]["offset"], 1000);
    let (off, err) = analyze(&["--signatures", rules.to_str().unwrap(), file.to_str().unwrap()]);
    assert_eq!(counts(&off), BTreeMap::from([(101, 1), (102, 1), (103, 2), (104, 1)]), "{err}");
}

/// nginx over TLS 1.2 with a certificate whose subject the test chose, called by curl with an
/// SNI: `tls.sni`, `tls.cert_subject`, `tls.cert_issuer`, `tls.version` and `ja4.hash` (the JA4
/// from the independent Python implementation over tcpdump's capture) each alert once for the
/// connection, live and offline; a threat list's `sni:` entry alerts too.
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn tls_rules_and_threat_list_names_on_curl_against_nginx_live_and_offline() {
    if !need_root() || !tools(&["nginx", "curl", "openssl", "tcpdump", "python3"]) {
        return;
    }
    let dir = TempDir::new();
    let lab = Lab::pair("rxkwtls").expect("lab");
    let b = lab.addr4_b().to_string();
    let (key_f, cert_f) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/C=US/O=Rxray Lab/CN=kw.lab.test", "-keyout"])
        .arg(&key_f)
        .arg("-out")
        .arg(&cert_f)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "tls lab\n").unwrap();
    let _nginx = Nginx::start_tls(&lab, lab.ns_b(), &b, 8443, &www, dir.path(), &cert_f, &key_f);
    let dump = Dump::start_snap(lab.ns_b(), lab.if_b(), "inout", dir.path(), "tls", 0);
    // First run: record the ClientHello to learn curl's JA4 independently, then write the rules.
    let curl = |extra: &[&str]| {
        let out = lab
            .exec(lab.ns_a(), ["curl", "-sk", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", "--tls-max", "1.2", "--resolve", &format!("kw.lab.test:8443:{b}")])
            .args(extra)
            .arg("https://kw.lab.test:8443/index.html")
            .output()
            .expect("curl");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "curl {extra:?}");
    };
    curl(&["--http1.1"]);
    let (file1, _) = dump.stop();
    let py = Command::new("python3").args(["-c", common::JA4_PY]).arg(&file1).arg("8443").output().expect("python3");
    assert!(py.status.success(), "JA4 in Python: {}", String::from_utf8_lossy(&py.stderr));
    let ja4s: Vec<String> = String::from_utf8_lossy(&py.stdout).lines().filter_map(|l| l.split_once(' ').map(|(_, j)| j.to_string())).collect();
    assert_eq!(ja4s.len(), 1, "{ja4s:?}");
    let ja4 = &ja4s[0];
    let rules = dir.path().join("tls.rules");
    std::fs::write(
        &rules,
        format!(
            "alert tls any any -> any any (msg:\"sni\"; tls.sni; content:\"kw.lab.test\"; startswith; endswith; sid:201;)\n\
             alert tls any any -> any any (msg:\"subject\"; tls.cert_subject; content:\"C=US, O=Rxray Lab, CN=kw.lab.test\"; sid:202;)\n\
             alert tls any any -> any any (msg:\"issuer\"; tls.cert_issuer; content:\"O=Rxray Lab\"; sid:203;)\n\
             alert tls any any -> any any (msg:\"1.2\"; tls.version:1.2; sid:204;)\n\
             alert tls any any -> any any (msg:\"1.3\"; tls.version:1.3; sid:205;)\n\
             alert tls any any -> any any (msg:\"ja4\"; ja4.hash; content:\"{ja4}\"; sid:206;)\n"
        ),
    )
    .unwrap();
    let list = dir.path().join("bad.list");
    std::fs::write(&list, "# names\nsni:lab.test\n203.0.113.0/24\n").unwrap();
    let list_arg = format!("bad={}", list.display());
    let dump = Dump::start_snap(lab.ns_b(), lab.if_b(), "inout", dir.path(), "tls2", 0);
    let mut rx = Running::start(
        lab.ns_b(),
        &["alerts", "-i", lab.if_b(), "--standalone", "--no-conns", "--signatures", rules.to_str().unwrap(), "--threat-list", &list_arg, "--tls-port", "8443", "--port", "8080"],
    );
    rx.wait_stderr("Ctrl-C to stop", Duration::from_secs(20));
    curl(&["--http1.1"]);
    std::thread::sleep(Duration::from_millis(1500));
    let (code, stdout, stderr) = rx.interrupt();
    assert_eq!(code, Some(0), "rxray alerts: {stderr:?}");
    let (file2, _) = dump.stop();
    let want = BTreeMap::from([(201, 1), (202, 1), (203, 1), (204, 1), (206, 1)]);
    let check = |got: &BTreeMap<u64, Vec<Value>>, what: &str| {
        assert_eq!(counts(got), want, "{what}");
        let t = &got[&202][0]["rxray"]["evidence"]["tls"];
        assert_eq!((t["sni"].as_str(), t["subject"].as_str(), t["ja4"].as_str()), (Some("kw.lab.test"), Some("C=US, O=Rxray Lab, CN=kw.lab.test"), Some(ja4.as_str())), "{what}");
        // Suricata writes the handshake in the alert's top-level `tls` object (output-json-tls.c,
        // JsonTlsLogJSONExtended: "subject", "issuerdn", "sni", "version" as SSLVersionToString
        // spells it, "TLS 1.2", and "ja4"), and `app_proto` "tls". The certificate is
        // self-signed: its issuer is the subject the test chose; curl was held to TLS 1.2.
        for (sid, a) in got.iter().filter(|(k, _)| **k != 0).flat_map(|(k, v)| v.iter().map(move |a| (k, a))) {
            let subject = "C=US, O=Rxray Lab, CN=kw.lab.test";
            let want = serde_json::json!({"subject": subject, "issuerdn": subject, "sni": "kw.lab.test", "version": "TLS 1.2", "ja4": ja4});
            assert_eq!((&a["tls"], a["app_proto"].as_str()), (&want, Some("tls")), "{what}: sid {sid}: {a}");
        }
        let threat: Vec<&Value> = got.get(&0).map(|v| v.iter().filter(|a| a["rxray"]["detector"] == "threat_list").collect()).unwrap_or_default();
        assert_eq!(threat.len(), 1, "{what}: {threat:?}");
        assert_eq!(threat[0]["rxray"]["evidence"]["entry"], "lab.test", "{what}");
    };
    check(&by_sid(&stdout), "rxray alerts (live)");
    let (off, _) = analyze(&["--signatures", rules.to_str().unwrap(), "--threat-list", &list_arg, "--tls-port", "8443", "--port", "8080", file2.to_str().unwrap()]);
    check(&off, "rxray analyze --alerts on tcpdump's capture");
}
