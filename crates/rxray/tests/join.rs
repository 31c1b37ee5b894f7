//! Commands that join the agent (docs/agent.md, "Joining the agent"), in a lab with an agent the
//! test starts with a config file: a joined `watch` prints what a standalone `watch` printed for the
//! same frames; clients with different filters each get exactly theirs while the agent's counts
//! stay whole; a client that does not read loses from its own queue (counted, told to it) while
//! the agent and a reading client miss nothing.
mod common;

use common::*;
use rxray_lab::frames::{self, ipproto, tcp_flags as F, Eth, Icmp, Ipv4, Tcp, Udp, L3, L4};
use rxray_lab::{send_frames, Lab};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The agent, started in `ns` with `config`; ready once it says so. Killed on drop (Running).
fn agent(ns: &str, config: &Path) -> Running {
    let mut a = Running::start_netns(ns, &["agent", "--config", config.to_str().unwrap()]);
    a.wait_stderr("SIGHUP reloads", Duration::from_secs(30));
    a
}

fn config(dir: &TempDir, iface: &str, extra: &str) -> std::path::PathBuf {
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, format!("host = \"join-lab\"\ninterfaces = [\"{iface}\"]\n[metrics]\nlisten = \"off\"\n[store]\nenabled = false\n{extra}")).unwrap();
    cfg
}

fn status(ns: &str) -> Value {
    let o = Command::new(rxray_bin()).args(["--netns", ns, "status", "--json"]).output().unwrap();
    assert!(o.status.success(), "rxray status: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A scripted mix, each frame with its own IPv4 id: UDP to 5000 (ids 1000..), UDP to 6000
/// (2000..), TCP SYNs to 80 (3000..), ICMP echoes (4000..).
fn mix(lab: &Lab, each: u16) -> Vec<Vec<u8>> {
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let ip = |id: u16, protocol: u8| Ipv4 { src: lab.addr4_a(), dst: lab.addr4_b(), ttl: 64, tos: 0, id, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol };
    let mut v = Vec::new();
    for i in 0..each {
        v.push(frames::frame(&eth, &[], L3::Ipv4(ip(1000 + i, ipproto::UDP)), L4::Udp(Udp { sport: 40000 + i, dport: 5000 }), b"five thousand"));
        v.push(frames::frame(&eth, &[], L3::Ipv4(ip(2000 + i, ipproto::UDP)), L4::Udp(Udp { sport: 40000 + i, dport: 6000 }), b"six thousand"));
        let syn = Tcp { sport: 41000 + i, dport: 80, seq: 7 + i as u32, ack: 0, flags: F::SYN, window: 64240, urgent: 0, options: vec![] };
        v.push(frames::frame(&eth, &[], L3::Ipv4(ip(3000 + i, ipproto::TCP)), L4::Tcp(syn), &[]));
        v.push(frames::frame(&eth, &[], L3::Ipv4(ip(4000 + i, ipproto::ICMP)), L4::Icmp(Icmp { ty: 8, code: 0, id: 9, seq: i }), b"ping"));
    }
    v
}

/// The IPv4 ids of a `watch --json` run's packets.
fn ids(lines: &[String]) -> Vec<u64> {
    json_lines(lines).iter().map(|p| p["ip"]["id"].as_u64().unwrap_or_else(|| panic!("no ip id: {p}"))).collect()
}

/// A text line without its leading time of arrival (the one field two runs cannot share).
fn untimed(l: &str) -> String {
    l.split_once(' ').map(|(_, rest)| rest.to_string()).unwrap_or_default()
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn joined_watch_prints_what_a_standalone_watch_prints_and_each_filter_gets_exactly_its_packets() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let each = 50u16;
    let sent = mix(&lab, each);

    // 1. Standalone: no agent runs; watch attaches itself.
    let mut alone = Running::start_netns(&ns, &["watch", "-i", &iface]);
    alone.wait_stderr("Ctrl-C to stop", Duration::from_secs(30));
    assert!(!alone.stderr.iter().any(|l| l.contains("joined")), "{:?}", alone.stderr);
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &sent).unwrap(), sent.len());
    assert!(alone.wait_lines(sent.len(), Duration::from_secs(10)));
    let (code, standalone, _) = alone.interrupt();
    assert_eq!(code, Some(0));

    // 2. The agent (detection off: packet events run only while a client watches).
    let dir = TempDir::new();
    let cfg = config(&dir, &iface, "[detect]\nenabled = false\n");
    let _agent = agent(&ns, &cfg);
    let mut all = Running::start_netns(&ns, &["watch", "-i", &iface]);
    let mut udp5000 = Running::start_netns(&ns, &["watch", "--json", "-i", &iface, "udp", "and", "dst", "port", "5000"]);
    let mut tcp_icmp = Running::start_netns(&ns, &["watch", "--json", "tcp", "or", "icmp"]);
    for c in [&mut all, &mut udp5000, &mut tcp_icmp] {
        c.wait_stderr("joined the agent of join-lab", Duration::from_secs(10));
    }
    let st = status(&ns);
    let clients = st["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 3, "{st}");
    let filters: BTreeSet<String> = clients.iter().map(|c| c["filter"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(filters, BTreeSet::from(["".to_string(), "udp and dst port 5000".to_string(), "tcp or icmp".to_string()]), "{st}");
    assert!(clients.iter().all(|c| c["command"] == "watch" && c["lost"] == 0 && c["queue_capacity"] == 4096), "{st}");

    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &sent).unwrap(), sent.len());
    let n = each as usize;
    assert!(all.wait_lines(sent.len(), Duration::from_secs(10)), "joined watch: {} of {} lines", all.stdout.len(), sent.len());
    assert!(udp5000.wait_lines(n, Duration::from_secs(10)));
    assert!(tcp_icmp.wait_lines(2 * n, Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(300));
    let (c1, joined, err1) = all.interrupt();
    let (c2, out2, err2) = udp5000.interrupt();
    let (c3, out3, err3) = tcp_icmp.interrupt();
    assert_eq!((c1, c2, c3), (Some(0), Some(0), Some(0)), "{err1:?} {err2:?} {err3:?}");

    // The same lines, in the same order, but for the time of arrival.
    assert_eq!(joined.len(), sent.len(), "{err1:?}");
    let a: Vec<String> = standalone.iter().map(|l| untimed(l)).collect();
    let b: Vec<String> = joined.iter().map(|l| untimed(l)).collect();
    assert_eq!(a, b, "joined and standalone watch differ");
    // Each filter: exactly its packets, each once, in order.
    assert_eq!(ids(&out2), (1000..1000 + each as u64).collect::<Vec<_>>());
    let mut want: Vec<u64> = Vec::new();
    for i in 0..each as u64 {
        want.extend([3000 + i, 4000 + i]);
    }
    assert_eq!(ids(&out3), want);
    // Their summaries: the agent's counts over the interface, and what each filter turned away.
    let s2 = summary(&err2);
    assert_eq!((s2["packets"].as_u64(), s2["delivered"].as_u64(), s2["filtered"].as_u64(), s2["lost"].as_u64()), (Some(4 * n as u64), Some(n as u64), Some(3 * n as u64), Some(0)), "{s2}");
    let s3 = summary(&err3);
    assert_eq!((s3["delivered"].as_u64(), s3["filtered"].as_u64()), (Some(2 * n as u64), Some(2 * n as u64)), "{s3}");
    // The clients' filters changed nothing for the agent: it counted every frame, lost none, and
    // the clients that left are gone from its list.
    let st = status(&ns);
    assert_eq!(st["interfaces"][0]["packets"].as_u64(), Some(sent.len() as u64), "{st}");
    assert_eq!(st["interfaces"][0]["events_lost"].as_u64(), Some(0), "{st}");
    assert_eq!(st["clients"].as_array().unwrap().len(), 0, "{st}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_client_that_does_not_read_loses_from_its_own_queue_and_never_slows_the_agent() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let dir = TempDir::new();
    // Detection on (the default): the agent runs its detectors on every packet meanwhile.
    let cfg = config(&dir, &iface, "[clients]\nqueue = 4096\n");
    let _agent = agent(&ns, &cfg);
    // The slow client reads nothing for 6 s, with a queue of 32 events in the agent.
    let mut slow = Running::start_netns(&ns, &["watch", "--json", "-i", &iface, "--join-queue", "32", "--stall-ms", "6000", "udp"]);
    let mut fast = Running::start_netns(&ns, &["watch", "--json", "-i", &iface, "udp"]);
    slow.wait_stderr("joined the agent", Duration::from_secs(10));
    fast.wait_stderr("joined the agent", Duration::from_secs(10));
    let sent = mix(&lab, 1000);
    let udp = 2000u64;
    let t = std::time::Instant::now();
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &sent).unwrap(), sent.len());
    // The reading client has every UDP packet while the slow one still sleeps.
    assert!(fast.wait_lines(udp as usize, Duration::from_secs(4)), "the reading client got {} of {udp}", fast.stdout.len());
    let st = status(&ns);
    assert!(t.elapsed() < Duration::from_secs(6), "the check must run while the slow client sleeps");
    let slow_row = st["clients"].as_array().unwrap().iter().find(|c| c["queue_capacity"] == 32).cloned().unwrap_or_else(|| panic!("{st}"));
    assert!(slow_row["lost"].as_u64().unwrap() > 0 && slow_row["queue"].as_u64().unwrap() >= 32, "the slow client's queue is full and losing: {st}");
    assert_eq!(st["interfaces"][0]["packets"].as_u64(), Some(sent.len() as u64), "{st}");
    assert_eq!(st["interfaces"][0]["events_lost"].as_u64(), Some(0), "the agent itself lost nothing: {st}");

    // The slow client wakes up, reads what its queue and socket kept, and is told its loss.
    slow.wait_stderr("events lost so far for this client", Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    let (c1, fast_out, fast_err) = fast.interrupt();
    let (c2, slow_out, slow_err) = slow.interrupt();
    assert_eq!((c1, c2), (Some(0), Some(0)), "{fast_err:?} {slow_err:?}");
    let fast_ids = ids(&fast_out);
    let mut want: Vec<u64> = Vec::new();
    for i in 0..1000u64 {
        want.extend([1000 + i, 2000 + i]);
    }
    assert_eq!(fast_ids, want, "the reading client: every UDP packet once, in order");
    assert_eq!(summary(&fast_err)["lost"].as_u64(), Some(0));
    let s = summary(&slow_err);
    let (delivered, lost) = (s["delivered"].as_u64().unwrap(), s["lost_queue"].as_u64().unwrap());
    assert!(lost > 0, "{s}");
    assert_eq!(delivered + lost, udp, "every UDP packet was either delivered or counted lost: {s}");
    assert_eq!(s["lost_ring"].as_u64(), Some(0), "{s}");
    // What it got is in order, with no packet twice.
    let got = ids(&slow_out);
    assert!(got.windows(2).all(|w| want.iter().position(|x| *x == w[0]) < want.iter().position(|x| *x == w[1])), "in order");
    assert_eq!(got.len() as u64, delivered);
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn standalone_attaches_and_an_interface_the_agent_does_not_own_is_not_joined() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let dir = TempDir::new();
    let cfg = config(&dir, &iface, "");
    let _agent = agent(&ns, &cfg);
    // --standalone attaches, and the agent owns the interface: the owner's lock says so.
    let (code, _, err) = rxray_in(&ns, &["watch", "--standalone", "-i", &iface, "-c", "1"]);
    assert_ne!(code, Some(0), "a second owner of {iface}: {err}");
    // An interface the agent does not own: the command attaches itself (and says why).
    let mut lo = Running::start_netns(&ns, &["watch", "-i", "lo", "-c", "1"]);
    lo.wait_stderr("attaching myself", Duration::from_secs(10));
    assert_eq!(status(&ns)["clients"].as_array().unwrap().len(), 0);
}

/// What two runs of `alerts` over the same frames must share: everything but the time.
fn alert_key(a: &Value) -> String {
    let mut v = serde_json::json!({});
    for k in ["flow_id", "in_iface", "event_type", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "alert"] {
        v[k] = a[k].clone();
    }
    v["detector"] = a["rxray"]["detector"].clone();
    v.to_string()
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn joined_alerts_raise_what_standalone_alerts_raise_each_with_its_own_options() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let dir = TempDir::new();
    // A threat list naming the sender: its traffic alerts (detector threat_list).
    let list = dir.path().join("lab.netset");
    std::fs::write(&list, format!("# the lab's sender\n{}\n", lab.addr4_a())).unwrap();
    let threat = format!("lab={}", list.display());
    let args = ["alerts", "-i", &iface, "--signatures", "none", "--no-conns", "--threat-list", &threat];
    let sent = mix(&lab, 20);

    let mut alone = Running::start_netns(&ns, &args);
    alone.wait_stderr("Ctrl-C to stop", Duration::from_secs(30));
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &sent).unwrap(), sent.len());
    std::thread::sleep(Duration::from_millis(1500));
    let (code, standalone, err) = alone.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let want: BTreeSet<String> = json_lines(&standalone).iter().map(alert_key).collect();
    assert!(want.iter().any(|k| k.contains("threat_list")), "the threat list alerts standalone: {standalone:?}");

    let cfg = config(&dir, &iface, "[detect]\nenabled = false\n");
    let _agent = agent(&ns, &cfg);
    let mut joined = Running::start_netns(&ns, &args);
    // Another client without the list: its detectors are its own.
    let mut plain = Running::start_netns(&ns, &["alerts", "-i", &iface, "--signatures", "none", "--no-conns"]);
    joined.wait_stderr("joined the agent of join-lab", Duration::from_secs(10));
    plain.wait_stderr("joined the agent of join-lab", Duration::from_secs(10));
    assert_eq!(status(&ns)["clients"].as_array().unwrap().iter().filter(|c| c["command"] == "alerts").count(), 2);
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &sent).unwrap(), sent.len());
    std::thread::sleep(Duration::from_millis(1500));
    let (code, out, err) = joined.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let got: BTreeSet<String> = json_lines(&out).iter().map(alert_key).collect();
    assert_eq!(got, want, "joined and standalone alerts differ");
    let (code, out, err) = plain.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    assert!(json_lines(&out).iter().all(|a| a["rxray"]["detector"] != "threat_list"), "no list, no threat alert: {out:?}");
}

/// A `flows --json` snapshot's flows, without what two runs cannot share (times and rates).
fn flow_set(snap: &Value) -> BTreeSet<String> {
    snap["flows"]
        .as_array()
        .unwrap_or_else(|| panic!("no flows: {snap}"))
        .iter()
        .map(|f| {
            let mut f = f.clone();
            for k in ["first_ns", "last_ns", "pps", "bps"] {
                f.as_object_mut().unwrap().remove(k);
            }
            f.to_string()
        })
        .collect()
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn joined_flows_count_from_when_they_joined_as_a_standalone_flows_counts_from_its_start() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let sent = mix(&lab, 20);
    let args = ["flows", "--json", "-i", &iface, "--interval", "0.5"];

    let mut alone = Running::start_netns(&ns, &args);
    alone.wait_stderr("Ctrl-C to stop", Duration::from_secs(30));
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &sent).unwrap(), sent.len());
    std::thread::sleep(Duration::from_millis(1200));
    let (code, out, err) = alone.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let standalone: Value = serde_json::from_str(out.last().unwrap()).unwrap();
    assert_eq!(standalone["totals"]["packets"].as_u64(), Some(sent.len() as u64), "{standalone}");

    let dir = TempDir::new();
    let cfg = config(&dir, &iface, "[detect]\nenabled = false\n");
    let _agent = agent(&ns, &cfg);
    // The same flows before the client joins: the agent counts them, the client must not.
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &sent).unwrap(), sent.len());
    std::thread::sleep(Duration::from_millis(300));
    let mut joined = Running::start_netns(&ns, &args);
    joined.wait_stderr("joined the agent of join-lab", Duration::from_secs(10));
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &sent).unwrap(), sent.len());
    std::thread::sleep(Duration::from_millis(1200));
    let (code, out, err) = joined.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let last: Value = serde_json::from_str(out.last().unwrap_or_else(|| panic!("no snapshot: {err:?}"))).unwrap();
    assert_eq!(last["totals"]["packets"].as_u64(), Some(sent.len() as u64), "{last}");
    assert_eq!(flow_set(&last), flow_set(&standalone), "joined and standalone flows differ");
    // The agent itself counted both rounds.
    assert_eq!(status(&ns)["interfaces"][0]["packets"].as_u64(), Some(2 * sent.len() as u64));
}

/// UDP datagrams to a closed port of b (9999), each from its own source port: each is one
/// NO_SOCKET drop on b's interface.
fn to_closed_port(lab: &Lab, n: u16) -> Vec<Vec<u8>> {
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    (0..n)
        .map(|i| {
            let ip = Ipv4 { src: lab.addr4_a(), dst: lab.addr4_b(), ttl: 64, tos: 0, id: 5000 + i, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::UDP };
            frames::frame(&eth, &[], L3::Ipv4(ip), L4::Udp(Udp { sport: 42000 + i, dport: 9999 }), b"nobody listens")
        })
        .collect()
}

/// A JSON record without the fields two observers of the same kernel event cannot share (each
/// program reads the clock itself).
fn without(v: &Value, keys: &[&str]) -> String {
    let mut v = v.clone();
    for k in keys {
        v.as_object_mut().unwrap().remove(*k);
    }
    v.to_string()
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn joined_drops_print_what_a_standalone_drops_prints_and_each_client_gets_its_own_count() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let dir = TempDir::new();
    let cfg = config(&dir, &iface, "[detect]\nenabled = false\n");
    let _agent = agent(&ns, &cfg);
    // A standalone `drops` (its own tracepoint program) beside two joined ones: the same drops.
    let mut alone = Running::start_netns(&ns, &["drops", "--standalone", "--json", "-i", &iface]);
    alone.wait_stderr("Ctrl-C to stop", Duration::from_secs(30));
    assert!(!alone.stderr.iter().any(|l| l.contains("joined")), "{:?}", alone.stderr);
    let mut joined = Running::start_netns(&ns, &["drops", "--json", "-i", &iface]);
    let mut ten = Running::start_netns(&ns, &["drops", "-i", &iface, "-c", "10"]);
    joined.wait_stderr("joined the agent of join-lab", Duration::from_secs(10));
    ten.wait_stderr("joined the agent of join-lab", Duration::from_secs(10));
    let st = status(&ns);
    let cmds: Vec<&str> = st["clients"].as_array().unwrap().iter().map(|c| c["command"].as_str().unwrap()).collect();
    assert_eq!(cmds, ["drops", "drops"], "{st}");

    let n = 40u16;
    let sent = to_closed_port(&lab, n);
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &sent).unwrap(), sent.len());
    assert!(alone.wait_lines(n as usize, Duration::from_secs(10)), "standalone: {:?}", alone.stdout);
    assert!(joined.wait_lines(n as usize, Duration::from_secs(10)), "joined: {:?}", joined.stdout);
    // The counted client ends by itself after its 10 drops, with the agent's summary.
    let (c3, out3, err3) = ten.finish();
    assert_eq!(c3, Some(0), "{err3:?}");
    std::thread::sleep(Duration::from_millis(300));
    let (c1, out1, err1) = alone.interrupt();
    let (c2, out2, err2) = joined.interrupt();
    assert_eq!((c1, c2), (Some(0), Some(0)), "{err1:?} {err2:?}");

    let ours = |lines: &[String]| -> Vec<Value> { json_lines(lines).into_iter().filter(|d| d["dport"] == 9999).collect() };
    let (a, b) = (ours(&out1), ours(&out2));
    // Exactly the datagrams sent, each once, in order, as NO_SOCKET on b's interface.
    let sports: Vec<u64> = b.iter().map(|d| d["sport"].as_u64().unwrap()).collect();
    assert_eq!(sports, (42000..42000 + n as u64).collect::<Vec<_>>(), "{out2:?}");
    assert!(b.iter().all(|d| d["reason"] == "NO_SOCKET" && d["iface"] == iface.as_str() && d["src"] == lab.addr4_a().to_string()), "{b:?}");
    // Joined and standalone: the same records but for the time each program read.
    let strip = |v: &[Value]| v.iter().map(|d| without(d, &["ts_ns"])).collect::<Vec<_>>();
    assert_eq!(strip(&a), strip(&b), "joined and standalone drops differ");
    assert_eq!(json_lines(&out1).len(), json_lines(&out2).len(), "the same drops, ours or not");
    // Their summaries agree on the counts of our reason.
    let (s1, s2) = (summary(&err1), summary(&err2));
    assert_eq!(s2["by_reason"]["NO_SOCKET"], s1["by_reason"]["NO_SOCKET"], "{s1} {s2}");
    assert_eq!(s2["by_reason"]["NO_SOCKET"].as_u64(), Some(n as u64), "{s2}");
    assert_eq!((s2["drops"].as_u64(), s2["lost"].as_u64()), (s1["drops"].as_u64(), Some(0)), "{s1} {s2}");
    // The counted text client: exactly its first 10 drops, as `drops` prints them.
    assert_eq!(out3.len(), 10, "{out3:?}");
    for (i, l) in out3.iter().enumerate() {
        let want = format!(" {iface} NO_SOCKET at ");
        let flow = format!("UDP {}:{} > {}:9999, length ", lab.addr4_a(), 42000 + i, lab.addr4_b());
        assert!(l.contains(&want) && l.contains(&flow), "line {i}: {l}");
    }
    assert!(err3.iter().any(|l| l.starts_with("NO_SOCKET ")), "its per-reason table at exit: {err3:?}");
    // Drop events go off again with the last `drops` client.
    assert_eq!(status(&ns)["clients"].as_array().unwrap().len(), 0);
}

const ECHO_SERVER: &str = r#"
import socket, sys
k, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.socket(); s.settimeout(20)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((host, port)); s.listen(8)
print("ready", flush=True)
for i in range(k):
    c, _ = s.accept(); c.settimeout(20); got = b""
    while True:
        d = c.recv(65536)
        if not d: break
        got += d
    c.sendall(got[:len(got) // 2]); c.close()
s.close()
# Alive until told: each observer reads the process's exe from /proc when it lists a connection.
sys.stdin.readline()
"#;

const CLIENTS: &str = r#"
import socket, sys
k, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(k):
    c = socket.create_connection((host, port), timeout=20); c.sendall(b"x" * (1000 * (i + 1)))
    c.shutdown(socket.SHUT_WR); got = 0
    while True:
        d = c.recv(65536)
        if not d: break
        got += len(d)
    c.close(); print("got", got, flush=True)
"#;

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn joined_conns_list_what_a_standalone_conns_lists_and_each_client_gets_its_own_count() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let dir = TempDir::new();
    let cfg = config(&dir, &iface, "[detect]\nenabled = false\n");
    let _agent = agent(&ns, &cfg);
    let mut alone = Running::start_netns(&ns, &["conns", "--standalone", "--json"]);
    alone.wait_stderr("Ctrl-C to stop", Duration::from_secs(30));
    assert!(!alone.stderr.iter().any(|l| l.contains("joined")), "{:?}", alone.stderr);
    let mut joined = Running::start_netns(&ns, &["conns", "--json"]);
    let mut two = Running::start_netns(&ns, &["conns", "-c", "2"]);
    joined.wait_stderr("joined the agent of join-lab", Duration::from_secs(10));
    two.wait_stderr("joined the agent of join-lab", Duration::from_secs(10));

    let (k, port) = (4usize, 5301u16);
    let mut server = Kid::python(&lab, lab.ns_b(), ECHO_SERVER, &[k.to_string(), lab.addr4_b().to_string(), port.to_string()]);
    assert_eq!(server.line(), "ready");
    let mut clients = Kid::python(&lab, lab.ns_a(), CLIENTS, &[k.to_string(), lab.addr4_b().to_string(), port.to_string()]);
    for i in 0..k {
        assert_eq!(clients.line(), format!("got {}", 500 * (i + 1)));
    }
    assert!(clients.wait(Duration::from_secs(10)));
    assert!(alone.wait_lines(k, Duration::from_secs(10)), "standalone: {:?}", alone.stdout);
    assert!(joined.wait_lines(k, Duration::from_secs(10)), "joined: {:?}", joined.stdout);
    let (c3, out3, err3) = two.finish();
    assert_eq!(c3, Some(0), "{err3:?}");
    std::thread::sleep(Duration::from_millis(300));
    let (c1, out1, err1) = alone.interrupt();
    let (c2, out2, err2) = joined.interrupt();
    assert_eq!((c1, c2), (Some(0), Some(0)), "{err1:?} {err2:?}");
    server.say("bye");
    assert!(server.wait(Duration::from_secs(10)));

    let closed = |lines: &[String]| -> Vec<Value> { json_lines(lines).into_iter().filter(|r| r["status"] == "closed" && r["local_port"] == port).collect() };
    let (a, b) = (closed(&out1), closed(&out2));
    // Each connection once, with the bytes the test sent and got back (seen from the server).
    let rx: Vec<u64> = b.iter().map(|r| r["bytes_rx"].as_u64().unwrap()).collect();
    let tx: Vec<u64> = b.iter().map(|r| r["bytes_tx"].as_u64().unwrap()).collect();
    assert_eq!(rx, (1..=k as u64).map(|i| 1000 * i).collect::<Vec<_>>(), "{b:?}");
    assert_eq!(tx, (1..=k as u64).map(|i| 500 * i).collect::<Vec<_>>(), "{b:?}");
    // Joined and standalone: the same records but for what each program timed itself.
    let timed = ["ts_ns", "age_ms", "handshake_ms", "srtt_us", "rttvar_us", "min_rtt_us", "srtt_min_us", "srtt_max_us"];
    let strip = |v: &[Value]| v.iter().map(|r| without(r, &timed)).collect::<Vec<_>>();
    assert_eq!(strip(&a), strip(&b), "joined and standalone conns differ");
    let (s1, s2) = (summary(&err1), summary(&err2));
    assert_eq!((s2["closed"].as_u64(), s2["kernel"]["lost"].as_u64()), (s1["closed"].as_u64(), Some(0)), "{s1} {s2}");
    // The counted text client: the table's header, then exactly its first 2 connections.
    assert!(out3[0].starts_with("STATUS "), "{out3:?}");
    let rows: Vec<&String> = out3.iter().filter(|l| l.starts_with("closed ")).collect();
    assert_eq!(rows.len(), 2, "{out3:?}");
    assert!(rows.iter().all(|l| l.contains(&format!("{}:{port}", lab.addr4_b()))), "{rows:?}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn joined_capture_writes_the_pcapng_a_standalone_capture_writes_and_each_filter_gets_its_packets() {
    if !need_root() {
        return;
    }
    use common::pcap::{frames_for, read_all, tshark_fields};
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let dir = TempDir::new();
    let sent = frames_for(&lab, 120); // UDP to 5000 + i, sizes 60..1514, every third 802.1Q-tagged
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (alone_f, joined_f, cut_f) = (path("alone.pcapng"), path("joined.pcapng"), path("cut.pcapng"));

    // 1. Standalone, no agent.
    let mut alone = Running::start_netns(&ns, &["capture", "-i", &iface, "-w", &alone_f]);
    alone.wait_stderr("Ctrl-C to stop", Duration::from_secs(30));
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &sent).unwrap(), sent.len());
    std::thread::sleep(Duration::from_millis(800));
    let (code, _, err) = alone.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    assert!(err.iter().any(|l| l.starts_with(&format!("{} packets captured, 0 lost", sent.len()))), "{err:?}");

    // 2. Two joined captures: everything, and a filter with a snap length of its own.
    let cfg = config(&dir, &iface, "[detect]\nenabled = false\n");
    let _agent = agent(&ns, &cfg);
    let mut joined = Running::start_netns(&ns, &["capture", "-i", &iface, "-w", &joined_f]);
    let mut cut = Running::start_netns(&ns, &["capture", "-i", &iface, "-w", &cut_f, "-s", "100", "udp", "and", "dst", "portrange", "5040-5100"]);
    joined.wait_stderr("joined the agent of join-lab", Duration::from_secs(10));
    cut.wait_stderr("joined the agent of join-lab", Duration::from_secs(10));
    let st = status(&ns);
    assert_eq!(st["clients"].as_array().unwrap().iter().filter(|c| c["command"] == "capture").count(), 2, "{st}");
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &sent).unwrap(), sent.len());
    std::thread::sleep(Duration::from_millis(800));
    let (c1, _, err1) = joined.interrupt();
    let (c2, _, err2) = cut.interrupt();
    assert_eq!((c1, c2), (Some(0), Some(0)), "{err1:?} {err2:?}");
    assert!(err1.iter().any(|l| l.starts_with(&format!("{} packets captured, 0 lost (capture ring full), 0 lost", sent.len()))), "{err1:?}");

    // The same pcapng records: every frame sent, its bytes and original length, and tshark reads
    // the same lengths and comments from both files.
    let (a, b) = (read_all(Path::new(&alone_f)), read_all(Path::new(&joined_f)));
    assert_eq!(a.len(), sent.len());
    assert_eq!(a, b, "joined and standalone captures differ");
    for ((orig, data, _), want) in b.iter().zip(&sent) {
        assert_eq!((*orig as usize, data), (want.len(), want));
    }
    assert_eq!(tshark_fields(Path::new(&alone_f)), tshark_fields(Path::new(&joined_f)));
    let caps = |f: &str| {
        let o = Command::new("capinfos").args(["-c", "-M", f]).output().expect("capinfos");
        String::from_utf8_lossy(&o.stdout).lines().find(|l| l.contains("Number of packets")).map(|l| l.split(':').nth(1).unwrap().trim().to_string())
    };
    assert_eq!(caps(&joined_f), Some(sent.len().to_string()));
    // The filtered client: exactly the untagged UDP frames to 5040..=5100, cut to 100 bytes.
    let tagged = |f: &Vec<u8>| f[12..14] == [0x81, 0x00];
    let want: Vec<&Vec<u8>> = sent.iter().enumerate().filter(|(i, f)| (5040..=5100).contains(&(5000 + *i)) && !tagged(f)).map(|(_, f)| f).collect();
    let c = read_all(Path::new(&cut_f));
    assert_eq!(c.len(), want.len(), "{err2:?}");
    for ((orig, data, _), w) in c.iter().zip(want) {
        assert_eq!((*orig as usize, &data[..]), (w.len(), &w[..w.len().min(100)]));
    }
}

/// Suricata inspects the whole packet payload (issue 23: "a `content` with `distance`/`within`
/// that lies past byte 256 of a 1,418-byte packet"): a joined `alerts` whose signatures read
/// payloads is fed the agent's capture ring, each frame whole, and alerts on a content at byte
/// 1000 of a 1,418-byte frame, once per frame sent; a rule on the first bytes alerts alike.
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_joined_alerts_sees_a_content_past_byte_256_of_a_1418_byte_frame() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let dir = TempDir::new();
    let rules = dir.path().join("far.rules");
    std::fs::write(
        &rules,
        "alert udp any any -> any any (msg:\"past byte 256\"; content:\"START\"; depth:5; content:\"NEEDLE\"; distance:990; within:12; sid:104;)\n\
         alert udp any any -> any any (msg:\"start\"; content:\"START\"; depth:5; sid:105;)\n",
    )
    .unwrap();
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let sent: Vec<Vec<u8>> = (0..3u16)
        .map(|i| {
            let mut payload = vec![b'.'; 1418 - 14 - 20 - 8];
            payload[..5].copy_from_slice(b"START");
            payload[1000..1006].copy_from_slice(b"NEEDLE");
            let ip = Ipv4 { src: lab.addr4_a(), dst: lab.addr4_b(), ttl: 64, tos: 0, id: 500 + i, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::UDP };
            frames::frame(&eth, &[], L3::Ipv4(ip), L4::Udp(Udp { sport: 40000 + i, dport: 9999 }), &payload)
        })
        .collect();
    assert!(sent.iter().all(|f| f.len() == 1418));
    let cfg = config(&dir, &iface, "[detect]\nenabled = false\n");
    let _agent = agent(&ns, &cfg);
    let mut joined = Running::start_netns(&ns, &["alerts", "-i", &iface, "--signatures", rules.to_str().unwrap(), "--no-conns"]);
    joined.wait_stderr("joined the agent of join-lab", Duration::from_secs(10));
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &sent).unwrap(), sent.len());
    std::thread::sleep(Duration::from_millis(1500));
    let (code, out, err) = joined.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    assert!(err.iter().any(|l| l.contains("whole frames from its capture ring")), "it says where the payloads come from: {err:?}");
    let got = json_lines(&out);
    let sid = |s: u64| got.iter().filter(|a| a["alert"]["signature_id"] == s).collect::<Vec<_>>();
    assert_eq!((sid(104).len(), sid(105).len()), (3, 3), "one alert per frame and rule: {out:?} {err:?}");
    let m = &sid(104)[0]["rxray"]["evidence"]["matches"][1];
    assert_eq!((m["offset"].as_u64(), m["text"].as_str()), (Some(1000), Some("NEEDLE")), "{}", sid(104)[0]);
}
