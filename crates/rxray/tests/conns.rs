//! `rxray conns` in a lab: a real TCP connection from ns a to a server in ns b is reported once, by
//! b's rxray only, with its states, exact payload bytes each way, handshake time and an RTT that
//! agrees with the socket's own TCP_INFO; a connection refused is a reset received; a blackholed
//! peer shows retransmits; a listener that never accepts shows accept-queue overflows equal to the
//! namespace's /proc/net/netstat.
mod common;
use common::*;
use rxray_lab::Lab;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn start(ns: &str, extra: &[&str]) -> Running {
    let mut args = vec!["conns", "--json"];
    args.extend_from_slice(extra);
    let mut r = Running::start(ns, &args);
    r.wait_stderr("rxray: watching TCP connections", Duration::from_secs(20));
    r
}

/// Waits (bounded) until a stdout record satisfies `pred`; returns it.
fn wait_record(r: &mut Running, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        r.wait_lines(usize::MAX, Duration::from_millis(100));
        if let Some(v) = json_lines(&r.stdout).into_iter().find(|v| pred(v)) {
            return v;
        }
        assert!(Instant::now() < deadline, "no matching record within {timeout:?}; stdout: {:?}", r.stdout);
    }
}

fn stop(r: Running) -> (Vec<Value>, Value) {
    let (code, out, err) = r.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let recs = json_lines(&out);
    let s = summary(&err);
    assert_eq!(s["kernel"]["lost"], json!(0), "{s}");
    assert_eq!(s["kernel"]["insert_failed"], json!(0), "{s}");
    (recs, s)
}

const SERVER: &str = r#"
import socket, struct, sys
n, m, host, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket(); s.settimeout(20)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((host, port)); s.listen(8)
print("ready", flush=True)
c, _ = s.accept(); c.settimeout(20); got = 0
while got < n:
    d = c.recv(min(65536, n - got))
    if not d: break
    got += len(d)
c.sendall(b"m" * m)
info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
print("done", got, struct.unpack_from("I", info, 68)[0], flush=True)
c.close(); s.close()
"#;

const CLIENT: &str = r#"
import socket, sys
n, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
k = socket.create_connection((host, port), timeout=20); k.sendall(b"n" * n); got = 0
while True:
    d = k.recv(65536)
    if not d: break
    got += len(d)
print("got", got, k.getsockname()[1], flush=True)
k.close()
"#;

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_full_connection_is_one_record_with_exact_bytes_and_rtt() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let (n, m, port) = (100_000u64, 54_321u64, 5201u16);
    let rb = start(lab.ns_b(), &[]);
    let mut server =
        Kid::python(&lab, lab.ns_b(), SERVER, &[n.to_string(), m.to_string(), lab.addr4_b().to_string(), port.to_string()]);
    assert_eq!(server.line(), "ready");
    let mut client = Kid::python(&lab, lab.ns_a(), CLIENT, &[n.to_string(), lab.addr4_b().to_string(), port.to_string()]);
    let done = server.line();
    let f: Vec<&str> = done.split_whitespace().collect();
    assert_eq!(f[..2], ["done", &n.to_string()[..]], "{done}");
    let info_rtt: u64 = f[2].parse().unwrap();
    let got = client.line();
    assert!(got.starts_with(&format!("got {m} ")), "{got}");
    let cport: u64 = got.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(server.wait(Duration::from_secs(10)) && client.wait(Duration::from_secs(10)));
    let mut rb = rb;
    let rec = wait_record(&mut rb, Duration::from_secs(10), |v| v["status"] == "closed" && v["local_port"] == json!(port));
    let (recs, s) = stop(rb);

    let b4 = lab.addr4_b().to_string();
    let a4 = lab.addr4_a().to_string();
    let mine: Vec<&Value> = recs.iter().filter(|v| v["status"] == "closed" && v["local_port"] == json!(port)).collect();
    assert_eq!(mine.len(), 1, "one record for the connection: {recs:?}");
    assert_eq!(rec["local"], json!(format!("{b4}:{port}")), "{rec}");
    assert_eq!(rec["remote"], json!(format!("{a4}:{cport}")), "{rec}");
    assert_eq!(rec["passive"], json!(true), "{rec}");
    assert_eq!(rec["seeded"], json!(false), "began after rxray: {rec}");
    let states: Vec<&str> = rec["states"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(states.first(), Some(&"SYN_RECV"), "{rec}");
    assert_eq!(states.last(), Some(&"CLOSE"), "{rec}");
    let est = states.iter().position(|s| *s == "ESTABLISHED").expect("went through ESTABLISHED");
    assert!(est == 1 && states.len() >= 3, "{rec}");
    assert_eq!(rec["state"], json!("CLOSE"));
    // Exact payload each way, seen from the server.
    assert_eq!(rec["bytes_rx"], json!(n), "{rec}");
    assert_eq!(rec["bytes_tx"], json!(m), "{rec}");
    assert_eq!(rec["retransmits"], json!(0), "{rec}");
    assert_eq!(rec["reset_by"], Value::Null, "{rec}");
    let hs = rec["handshake_ms"].as_f64().expect("handshake time");
    assert!(hs > 0.0 && hs < 1000.0, "{rec}");
    let srtt = rec["srtt_us"].as_u64().unwrap();
    assert!(srtt > 0 && srtt < 100_000, "veth RTT: {rec}");
    let (lo, hi, min) = (rec["srtt_min_us"].as_u64().unwrap(), rec["srtt_max_us"].as_u64().unwrap(), rec["min_rtt_us"].as_u64().unwrap());
    // TCP_INFO's rtt (what `ss -ti` shows) was read once, mid-connection; rxray samples srtt along the
    // way (state changes, tcp_probe). The kernel's value must lie within what rxray sampled, give or
    // take the tolerance: on a loaded machine the last sample (at close) can be far from a mid value.
    let tol = 1000 + info_rtt / 2;
    assert!(lo <= info_rtt + tol && info_rtt <= hi + tol, "TCP_INFO {info_rtt} µs outside rxray's srtt samples {lo}..{hi} µs: {rec}");
    assert!(lo > 0 && lo <= srtt && srtt <= hi, "{rec}");
    assert!(min > 0 && min <= hi, "{rec}");
    // a's client socket is not in b's namespace: b's rxray does not report it.
    assert!(recs.iter().all(|v| v["local_port"] != json!(cport)), "{recs:?}");
    assert!(s["closed"].as_u64().unwrap() >= 1, "{s}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_refused_connection_is_a_reset_received_and_b_counts_the_reset_it_sent() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let port = 5999u16;
    let ra = start(lab.ns_a(), &[]);
    let rb = start(lab.ns_b(), &[]);
    let script = r#"
import socket, sys
k = socket.socket(); k.settimeout(10)
try:
    k.connect((sys.argv[1], int(sys.argv[2]))); print("connected", flush=True)
except ConnectionRefusedError:
    print("refused", k.getsockname()[1], flush=True)
"#;
    let mut c = Kid::python(&lab, lab.ns_a(), script, &[lab.addr4_b().to_string(), port.to_string()]);
    let l = c.line();
    assert!(l.starts_with("refused "), "{l}");
    let mut ra = ra;
    let rec = wait_record(&mut ra, Duration::from_secs(10), |v| v["status"] == "closed" && v["remote_port"] == json!(port));
    let (recs, _) = stop(ra);
    let (_, sb) = stop(rb);
    assert_eq!(recs.iter().filter(|v| v["remote_port"] == json!(port)).count(), 1, "{recs:?}");
    assert_eq!(rec["states"], json!(["SYN_SENT", "CLOSE"]), "{rec}");
    assert_eq!(rec["rst_rx"], json!(1), "{rec}");
    assert_eq!(rec["rst_tx"], json!(0), "{rec}");
    assert_eq!(rec["reset_by"], json!("peer"), "{rec}");
    assert_eq!(rec["passive"], json!(false), "{rec}");
    assert_eq!(rec["handshake_ms"], Value::Null, "never established: {rec}");
    assert_eq!(rec["remote"], json!(format!("{}:{port}", lab.addr4_b())), "{rec}");
    assert!(sb["kernel"]["rst_tx_nosock"].as_u64().unwrap() >= 1, "b answered the SYN with a reset: {sb}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_blackholed_peer_shows_retransmits() {
    if !need_root() {
        return;
    }
    if !have("nft") {
        skip_or_fail("needs nft (nftables)");
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let port = 5301u16;
    let mut ra = start(lab.ns_a(), &["--interval", "0.2"]);
    let server = r#"
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4); s.settimeout(20)
print("ready", flush=True)
c, _ = s.accept(); time.sleep(30)
"#;
    let client = r#"
import socket, sys, time
k = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
print("connected", k.getsockname()[1], flush=True)
sys.stdin.readline(); k.sendall(b"x" * 10000); print("sent", flush=True); time.sleep(30)
"#;
    let mut srv = Kid::python(&lab, lab.ns_b(), server, &[lab.addr4_b().to_string(), port.to_string()]);
    assert_eq!(srv.line(), "ready");
    let mut cl = Kid::python(&lab, lab.ns_a(), client, &[lab.addr4_b().to_string(), port.to_string()]);
    let l = cl.line();
    let cport: u16 = l.strip_prefix("connected ").expect(&l).parse().unwrap();
    for rule in [
        vec!["add", "table", "inet", "t"],
        vec!["add", "chain", "inet", "t", "in", "{ type filter hook input priority 0; }"],
        vec!["add", "rule", "inet", "t", "in", "tcp", "dport", &port.to_string(), "drop"],
    ] {
        let st = lab.exec(lab.ns_b(), std::iter::once("nft").chain(rule.iter().copied())).status().expect("nft");
        assert!(st.success(), "nft {rule:?}");
    }
    cl.say("go");
    assert_eq!(cl.line(), "sent");
    let rec = wait_record(&mut ra, Duration::from_secs(8), |v| {
        v["local_port"] == json!(cport) && v["retransmits"].as_u64().unwrap_or(0) > 0
    });
    assert_eq!(rec["status"], json!("live"), "{rec}");
    assert_eq!(rec["state"], json!("ESTABLISHED"), "{rec}");
    assert_eq!(rec["remote_port"], json!(port), "{rec}");
    assert_eq!(rec["bytes_acked"].as_u64(), Some(1), "nothing past the SYN was acknowledged: {rec}");
    drop(cl);
    drop(srv);
    let (recs, _) = stop(ra);
    let last = recs.iter().rfind(|v| v["local_port"] == json!(cport)).expect("listed");
    assert!(last["retransmits"].as_u64().unwrap() >= rec["retransmits"].as_u64().unwrap(), "{last}");
}

fn netstat_in(lab: &Lab, ns: &str) -> (u64, u64) {
    let out = lab.exec(ns, ["cat", "/proc/net/netstat"]).output().expect("cat netstat");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    let keys: Vec<&str> = lines[0].split_whitespace().collect();
    let vals: Vec<&str> = lines[1].split_whitespace().collect();
    let get = |k: &str| vals[keys.iter().position(|x| *x == k).unwrap()].parse::<u64>().unwrap();
    (get("ListenOverflows"), get("ListenDrops"))
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_listener_that_never_accepts_overflows_and_rxray_reports_the_netstat_counts() {
    if !need_root() {
        return;
    }
    if !have("nft") {
        skip_or_fail("needs nft (nftables)");
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let (port, backlog) = (5401u16, 4usize);
    let rb = start(lab.ns_b(), &[]);
    let listener = r#"
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(int(sys.argv[3]))
print("ready", flush=True); time.sleep(30)
"#;
    // The accept queue holds backlog + 1 connections, the request queue backlog handshakes. First
    // `backlog` connections complete (queued, never accepted). Then `backlog` more SYNs are answered
    // (room in the request queue) while a's nftables rule drops the SYN-ACKs; once the rule is gone
    // the retransmitted SYN-ACKs are acknowledged: one ACK fills the accept queue, the others find
    // it full, and the kernel frees them with TCP_LISTEN_OVERFLOW (tcp_check_req) and counts
    // ListenOverflows. (SYNs refused at once for a full queue count ListenOverflows too, but the
    // kernel consumes those without a drop reason, and cookies bypass tcp_check_req: hence this order.)
    let clients = r#"
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ks = [socket.create_connection((host, port), timeout=5) for i in range(n)]
print("filled", flush=True); sys.stdin.readline()
for i in range(n):
    k = socket.socket(); k.setblocking(False); k.connect_ex((host, port)); ks.append(k)
print("sent", flush=True); sys.stdin.readline(); time.sleep(3); print("done", flush=True)
"#;
    let args = [lab.addr4_b().to_string(), port.to_string(), backlog.to_string()];
    let mut l = Kid::python(&lab, lab.ns_b(), listener, &args);
    assert_eq!(l.line(), "ready");
    let mut c = Kid::python(&lab, lab.ns_a(), clients, &args);
    assert_eq!(c.line(), "filled");
    let nft = |rule: &[&str]| {
        let st = lab.exec(lab.ns_a(), std::iter::once("nft").chain(rule.iter().copied())).status().expect("nft");
        assert!(st.success(), "nft {rule:?}");
    };
    nft(&["add", "table", "inet", "t"]);
    nft(&["add", "chain", "inet", "t", "in", "{ type filter hook input priority 0; }"]);
    nft(&["add", "rule", "inet", "t", "in", "tcp", "sport", &port.to_string(), "tcp", "flags", "syn", "drop"]);
    c.say("go");
    assert_eq!(c.line(), "sent");
    std::thread::sleep(Duration::from_millis(200));
    nft(&["delete", "table", "inet", "t"]);
    c.say("go");
    assert_eq!(c.line(), "done");
    // The listener goes first, so nothing overflows after rxray's last reading.
    drop(l);
    drop(c);
    std::thread::sleep(Duration::from_millis(300));
    let (_, s) = stop(rb);
    let (ov, dr) = netstat_in(&lab, lab.ns_b());
    assert!(ov > 0 && dr > 0, "the accept queue overflowed: {ov} {dr}");
    assert_eq!(s["listen"]["ListenOverflows"], json!(ov), "{s}");
    assert_eq!(s["listen"]["ListenDrops"], json!(dr), "{s}");
    assert_eq!(s["listen_since_start"]["ListenOverflows"], json!(ov), "a fresh namespace starts at 0: {s}");
    // At least the backlog - 1 ACKs that found the queue full, each an overflow counted by both.
    let lo = s["listen_drop_reasons"]["TCP_LISTEN_OVERFLOW"].as_u64().unwrap_or_else(|| panic!("{s}"));
    assert!(lo >= backlog as u64 - 1 && lo <= ov, "TCP_LISTEN_OVERFLOW {lo} vs ListenOverflows {ov}: {s}");
}

const READER: &str = r#"
import os, socket, sys
n, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.socket(); s.settimeout(20)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((host, port)); s.listen(8)
print("ready", os.getpid(), flush=True)
c, _ = s.accept(); c.settimeout(20); got = 0
while got < n:
    d = c.recv(min(4096, n - got))
    if not d: break
    got += len(d)
c.close(); s.close()
print("done", got, flush=True)
sys.stdin.readline()
"#;

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_connection_names_the_process_and_cgroup_that_read_it() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let (n, port) = (77_777u64, 5202u16);
    let cg = Cgroup::new();
    let rb = start(lab.ns_b(), &[]);
    let mut server = Kid::python(&lab, lab.ns_b(), READER, &[n.to_string(), lab.addr4_b().to_string(), port.to_string()]);
    let ready = server.line();
    let pid: u32 = ready.strip_prefix("ready ").expect("ready <pid>").parse().unwrap();
    cg.add(pid); // before any byte is read: the client connects only now
    let mut client = Kid::python(&lab, lab.ns_a(), CLIENT, &[n.to_string(), lab.addr4_b().to_string(), port.to_string()]);
    assert_eq!(server.line(), format!("done {n}"));
    let mut rb = rb;
    // The server stays alive (waiting on stdin) until its record is out, so its exe resolves.
    let rec = wait_record(&mut rb, Duration::from_secs(10), |v| v["status"] == "closed" && v["local_port"] == json!(port));
    server.say("bye");
    assert!(server.wait(Duration::from_secs(10)));
    assert!(client.wait(Duration::from_secs(10)));
    let (_recs, s) = stop(rb);
    assert_eq!(s["readers"], json!(true), "{s}");
    assert_eq!(rec["pid"], json!(pid), "{rec}");
    assert_eq!(rec["comm"], json!("python3"), "{rec}");
    let exe = rec["exe"].as_str().unwrap_or_else(|| panic!("exe: {rec}"));
    let base = exe.rsplit('/').next().unwrap();
    assert!(base.starts_with("python3"), "{rec}");
    assert_eq!(rec["cgroup"], json!(cg.rel()), "{rec}");
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&cg.dir).unwrap());
    assert_eq!(rec["cgroup_id"], json!(ino), "{rec}");
    assert_eq!(rec["read_bytes"], json!(n), "{rec}");
    assert_eq!(rec["reader_changes"], json!(0), "{rec}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_connection_older_than_rxray_is_seeded_and_its_close_is_reported() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let port = 5203u16;
    let server = r#"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(20)
print("ready", flush=True)
c, _ = s.accept(); c.settimeout(20)
while c.recv(100): pass
c.close(); print("closed", flush=True)
"#;
    let client = r#"
import socket, sys
k = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
print("connected", k.getsockname()[1], flush=True)
sys.stdin.readline(); k.close(); print("bye", flush=True)
"#;
    let args = [lab.addr4_b().to_string(), port.to_string()];
    let mut srv = Kid::python(&lab, lab.ns_b(), server, &args);
    assert_eq!(srv.line(), "ready");
    let mut cl = Kid::python(&lab, lab.ns_a(), client, &args);
    let l = cl.line();
    let cport: u16 = l.strip_prefix("connected ").expect(&l).parse().unwrap();
    // rxray starts only now: the connection is established and quiet.
    let mut rb = start(lab.ns_b(), &["--interval", "0.2"]);
    let live = wait_record(&mut rb, Duration::from_secs(10), |v| v["status"] == "live" && v["local_port"] == json!(port));
    assert_eq!(live["seeded"], json!(true), "{live}");
    assert_eq!(live["state"], json!("ESTABLISHED"), "{live}");
    assert_eq!(live["remote"], json!(format!("{}:{cport}", lab.addr4_a())), "{live}");
    assert_eq!(live["age_ms"], Value::Null, "start unknown: {live}");
    cl.say("bye");
    assert_eq!(cl.line(), "bye");
    assert_eq!(srv.line(), "closed");
    let closed = wait_record(&mut rb, Duration::from_secs(10), |v| v["status"] == "closed" && v["local_port"] == json!(port));
    let (recs, _) = stop(rb);
    assert_eq!(closed["seeded"], json!(true), "{closed}");
    assert_eq!(closed["age_ms"], Value::Null, "{closed}");
    assert_eq!(closed["remote_port"], json!(cport), "{closed}");
    assert_eq!(closed["states"].as_array().unwrap().last(), Some(&json!("CLOSE")), "{closed}");
    let n = recs.iter().filter(|v| v["status"] == "closed" && v["local_port"] == json!(port)).count();
    assert_eq!(n, 1, "{recs:?}");
}
