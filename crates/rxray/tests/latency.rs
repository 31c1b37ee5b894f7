//! `rxray latency` in a lab: servers in namespace b that wait a known time after their data has
//! arrived before reading it show that wait as arrival → read (and a short arrival → queue), named
//! after their pid and comm, once per message; a server that reads at once shows a short read
//! latency. Messages are acknowledged one by one, so no two are ever merged into one skb (GRO or
//! receive-queue coalescing would measure only the first of them).
mod common;
use common::*;
use rxray_lab::Lab;
use serde_json::{json, Value};
use std::time::Duration;

const MSGS: u64 = 5;
const DELAY_MS: f64 = 300.0;

/// Waits until its data is readable (select: nothing is copied), sleeps, then reads; acknowledges
/// each message so the client sends the next only then.
const SERVER: &str = r#"
import os, select, socket, sys, time
proto, host, port, n, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
if proto == "tcp":
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if ":" in host: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((host, port)); s.listen(1); s.settimeout(20)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((host, port))
print("ready", os.getpid(), flush=True)
c = s.accept()[0] if proto == "tcp" else s
for i in range(n):
    r, _, _ = select.select([c], [], [], 20)
    assert r, "no data"
    time.sleep(delay)
    if proto == "tcp":
        d = c.recv(65536); c.sendall(b"k")
    else:
        d, peer = c.recvfrom(65536); c.sendto(b"k", peer)
print("done", flush=True)
"#;

const CLIENT: &str = r#"
import socket, sys
proto, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if proto == "tcp":
    k = socket.create_connection((host, port), timeout=20)
else:
    k = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); k.settimeout(20); k.connect((host, port))
for i in range(n):
    k.send(("message %d " % i).encode() * 10)
    assert k.recv(16) == b"k"
print("sent", k.getsockname()[1], flush=True)
"#;

fn start(lab: &Lab) -> Running {
    let mut r = Running::start(lab.ns_b(), &["latency", "-i", lab.if_b(), "--json"]);
    r.wait_stderr("rxray: latency stages attached", Duration::from_secs(20));
    r
}

/// Runs one server/client pair; returns (server pid, client port).
fn exchange(lab: &Lab, proto: &str, port: u16, delay_s: f64) -> (u32, u16) {
    let b = lab.addr4_b().to_string();
    exchange_at(lab, proto, &b, &b, port, delay_s)
}

/// exchange with the server bound to `bind` (an IPv6 address or `::` makes an IPv6 socket that also
/// takes IPv4) and the client connecting to `to`.
fn exchange_at(lab: &Lab, proto: &str, bind: &str, to: &str, port: u16, delay_s: f64) -> (u32, u16) {
    let mut srv =
        Kid::python(lab, lab.ns_b(), SERVER, &[proto.into(), bind.into(), port.to_string(), MSGS.to_string(), delay_s.to_string()]);
    let ready = srv.line();
    let pid: u32 = ready.strip_prefix("ready ").expect("ready <pid>").parse().unwrap();
    let mut cl = Kid::python(lab, lab.ns_a(), CLIENT, &[proto.into(), to.into(), port.to_string(), MSGS.to_string()]);
    let sent = cl.line();
    let cport: u16 = sent.strip_prefix("sent ").expect("sent <port>").parse().unwrap();
    assert_eq!(srv.line(), "done");
    assert!(srv.wait(Duration::from_secs(10)) && cl.wait(Duration::from_secs(10)));
    (pid, cport)
}

/// Stops rxray; returns its last report and the summary.
fn stop(r: Running) -> (Value, Value) {
    let (code, out, err) = r.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let reports = json_lines(&out);
    let last = reports.last().cloned().unwrap_or_else(|| panic!("no report: {out:?} {err:?}"));
    (last, summary(&err))
}

fn flow(rep: &Value, proto: u8, local_port: u16, remote_port: u16) -> &Value {
    rep["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["proto"] == json!(proto) && f["local_port"] == json!(local_port) && f["remote_port"] == json!(remote_port))
        .unwrap_or_else(|| panic!("no flow {proto} {remote_port} -> {local_port}: {rep}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_reader_that_waits_shows_the_wait_as_read_latency_for_tcp_and_udp() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let r = start(&lab);
    let (tcp_pid, tcp_cport) = exchange(&lab, "tcp", 5601, DELAY_MS / 1000.0);
    let (udp_pid, udp_cport) = exchange(&lab, "udp", 5602, DELAY_MS / 1000.0);
    let (rep, s) = stop(r);
    let a4 = lab.addr4_a().to_string();
    let b4 = lab.addr4_b().to_string();
    for (proto, port, cport, pid) in [(6u8, 5601u16, tcp_cport, tcp_pid), (17, 5602, udp_cport, udp_pid)] {
        let fl = flow(&rep, proto, port, cport);
        assert_eq!(fl["remote"], json!(format!("{a4}:{cport}")), "{fl}");
        assert_eq!(fl["local"], json!(format!("{b4}:{port}")), "{fl}");
        // Every message measured once, and nothing else (handshake, ACKs and FIN carry no data).
        assert_eq!(fl["read"]["count"], json!(MSGS), "{fl}");
        assert_eq!(fl["queue"]["count"], json!(MSGS), "{fl}");
        let (mean, max, p50) = (f(&fl["read"]["mean_ms"]), f(&fl["read"]["max_ms"]), f(&fl["read"]["p50_ms"]));
        // At least the sleep; the tolerance covers select's wake-up on a busy 2-core machine.
        assert!(mean >= DELAY_MS && (DELAY_MS..DELAY_MS + 150.0).contains(&max), "{fl}");
        assert!((p50 - mean).abs() <= mean * 0.2, "p50 within the histogram's precision: {fl}");
        assert!(f(&fl["queue"]["max_ms"]) < 50.0, "queued at once: {fl}");

        let procs = rep["processes"].as_array().unwrap();
        let p = procs.iter().find(|p| p["pid"] == json!(pid)).unwrap_or_else(|| panic!("pid {pid}: {rep}"));
        assert_eq!(p["comm"], json!("python3"), "{p}");
        assert_eq!(p["read"]["count"], json!(MSGS), "{p}");
        assert!(f(&p["read"]["mean_ms"]) >= DELAY_MS, "{p}");
        assert!(p["cgroup_id"].as_u64().unwrap() > 0, "{p}");
    }
    let k = &s["kernel"];
    assert!(k["read"].as_u64().unwrap() >= 2 * MSGS, "{s}");
    assert_eq!(k["flow_insert_failed"], json!(0), "{s}");
    assert_eq!(s["queue_stage"], json!(true), "{s}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_reader_that_does_not_wait_shows_a_short_read_latency() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let r = start(&lab);
    let (pid, cport) = exchange(&lab, "tcp", 5603, 0.0);
    let (rep, _) = stop(r);
    let fl = flow(&rep, 6, 5603, cport);
    assert_eq!(fl["read"]["count"], json!(MSGS), "{fl}");
    assert!(f(&fl["read"]["max_ms"]) < 50.0, "{fl}");
    assert!(f(&fl["queue"]["max_ms"]) <= f(&fl["read"]["max_ms"]), "queued before read: {fl}");
    let procs = rep["processes"].as_array().unwrap();
    assert!(procs.iter().any(|p| p["pid"] == json!(pid) && p["read"]["count"] == json!(MSGS)), "{rep}");
}

/// The read stage names a TCP skb by its socket's addresses and the skb's first sequence number; the
/// XDP stamp by the packet's headers. Both must agree for IPv6, and for IPv4 read through an IPv6
/// socket (a v4-mapped peer), where the socket's family is not the packets'.
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn tcp_over_ipv6_and_ipv4_on_a_dual_stack_socket_is_measured_once_per_message() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let r = start(&lab);
    let (a6, b6) = (lab.addr6_a().to_string(), lab.addr6_b().to_string());
    let (a4, b4) = (lab.addr4_a().to_string(), lab.addr4_b().to_string());
    let (pid6, cport6) = exchange_at(&lab, "tcp", &b6, &b6, 5604, DELAY_MS / 1000.0);
    let (pid46, cport46) = exchange_at(&lab, "tcp", "::", &b4, 5605, DELAY_MS / 1000.0);
    let (rep, _) = stop(r);
    for (port, cport, pid, remote, local) in [
        (5604u16, cport6, pid6, format!("[{a6}]:{cport6}"), format!("[{b6}]:5604")),
        (5605, cport46, pid46, format!("{a4}:{cport46}"), format!("{b4}:5605")),
    ] {
        let fl = flow(&rep, 6, port, cport);
        assert_eq!(fl["remote"], json!(remote), "{fl}");
        assert_eq!(fl["local"], json!(local), "{fl}");
        assert_eq!(fl["read"]["count"], json!(MSGS), "{fl}");
        assert_eq!(fl["queue"]["count"], json!(MSGS), "{fl}");
        assert!(f(&fl["read"]["mean_ms"]) >= DELAY_MS, "{fl}");
        let procs = rep["processes"].as_array().unwrap();
        assert!(procs.iter().any(|p| p["pid"] == json!(pid) && p["read"]["count"] == json!(MSGS)), "{rep}");
    }
}

/// What a latency entry must show the same, joined or standalone: its counts (the times are
/// those of each run).
fn counts(e: &Value) -> (Value, Value) {
    (e["read"]["count"].clone(), e["queue"]["count"].clone())
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_joined_latency_reports_what_a_standalone_one_reports_from_when_it_joined() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    // Standalone: no agent.
    let r = start(&lab);
    let (pid, cport) = exchange(&lab, "tcp", 5611, 0.05);
    let (alone, s1) = stop(r);
    let fl = flow(&alone, 6, 5611, cport);
    assert_eq!(counts(fl), (json!(MSGS), json!(MSGS)), "{fl}");

    // The agent measures latency; an exchange before the client joins is the agent's, not the client's.
    let dir = TempDir::new();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, format!("host = \"lat-lab\"\ninterfaces = [\"{}\"]\n[metrics]\nlisten = \"off\"\n[store]\nenabled = false\n[detect]\nenabled = false\n[latency]\nenabled = true\n", lab.if_b())).unwrap();
    let mut agent = Running::start(lab.ns_b(), &["agent", "--config", cfg.to_str().unwrap()]);
    agent.wait_stderr("SIGHUP reloads", Duration::from_secs(30));
    let (_, before) = exchange(&lab, "tcp", 5612, 0.05);
    let mut joined = Running::start(lab.ns_b(), &["latency", "-i", lab.if_b(), "--json"]);
    joined.wait_stderr("joined the agent of lat-lab", Duration::from_secs(10));
    let (pid2, cport2) = exchange(&lab, "tcp", 5611, 0.05);
    let (rep, s2) = stop(joined);
    let fl2 = flow(&rep, 6, 5611, cport2);
    assert_eq!(counts(fl2), counts(fl), "joined and standalone: the same counts for the same exchange: {fl2}");
    assert_eq!((&fl2["local"], fl2["proto"].as_u64()), (&fl["local"], Some(6)));
    assert!(rep["flows"].as_array().unwrap().iter().all(|f| f["remote_port"] != json!(before)), "the exchange before it joined is not the client's: {rep}");
    let proc_of = |rep: &Value, pid: u32| rep["processes"].as_array().unwrap().iter().find(|p| p["pid"] == json!(pid)).cloned().unwrap_or_else(|| panic!("pid {pid}: {rep}"));
    assert_eq!(counts(&proc_of(&rep, pid2)), counts(&proc_of(&alone, pid)));
    // The summaries: the same kernel counts of packets measured.
    assert_eq!(s2["kernel"]["read"], s1["kernel"]["read"], "{s1} {s2}");
    assert_eq!(s2["kernel"]["flow_insert_failed"], json!(0), "{s2}");
    drop(agent);
}

/// Four readers at once (TCP and UDP, each once waiting and once not), so that their first reads
/// may claim histogram slots on both CPUs at the same moment: each flow and each process still has
/// exactly its own messages, with its own wait.
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn concurrent_readers_keep_their_own_flow_and_process_histograms() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let r = start(&lab);
    let runs = [("tcp", 5621u16, 0.0), ("tcp", 5622, DELAY_MS / 1000.0), ("udp", 5623, 0.0), ("udp", 5624, DELAY_MS / 1000.0)];
    let got: Vec<(u32, u16)> = std::thread::scope(|s| {
        let hs: Vec<_> = runs.iter().map(|&(proto, port, d)| {
            let lab = &lab;
            s.spawn(move || exchange(lab, proto, port, d))
        }).collect();
        hs.into_iter().map(|h| h.join().expect("exchange")).collect()
    });
    let (rep, s) = stop(r);
    let procs = rep["processes"].as_array().unwrap();
    for (&(proto, port, delay_s), &(pid, cport)) in runs.iter().zip(&got) {
        let fl = flow(&rep, if proto == "tcp" { 6 } else { 17 }, port, cport);
        assert_eq!(fl["read"]["count"], json!(MSGS), "{fl}");
        assert_eq!(fl["queue"]["count"], json!(MSGS), "{fl}");
        let p = procs.iter().find(|p| p["pid"] == json!(pid)).unwrap_or_else(|| panic!("pid {pid}: {rep}"));
        assert_eq!(p["read"]["count"], json!(MSGS), "{p}");
        for e in [&fl["read"], &p["read"]] {
            if delay_s > 0.0 {
                assert!(f(&e["mean_ms"]) >= DELAY_MS, "the waiting reader's: {fl} {p}");
            } else {
                assert!(f(&e["max_ms"]) < DELAY_MS / 2.0, "the reader that does not wait: {fl} {p}");
            }
        }
    }
    // One entry per flow of this run, however the slots were claimed.
    let ports: Vec<u16> = runs.iter().map(|r| r.1).collect();
    let ours = rep["flows"].as_array().unwrap().iter().filter(|f| ports.iter().any(|p| f["local_port"] == json!(p))).count();
    assert_eq!(ours, runs.len(), "{rep}");
    assert_eq!(s["kernel"]["flow_insert_failed"], json!(0), "{s}");
    assert_eq!(s["kernel"]["proc_insert_failed"], json!(0), "{s}");
}
