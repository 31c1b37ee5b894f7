//! `rxray flows` in a lab: N packets on each of M flows give exactly N packets and the exact bytes
//! per flow (also while the ring buffer is losing events); fragments join their flow; a full table
//! gives counted failures; two instances in two namespaces run at once.
mod common;
use common::*;
use rxray_lab::frames::{self, ipproto, tcp_flags as F, Eth, Ext, Ipv4, Ipv6, Tcp, Udp, Vlan, L3, L4};
use rxray_lab::{send_frames, Lab};
use serde_json::{json, Value};
use std::{collections::BTreeMap, time::Duration};

/// (proto, src, dst, sport, dport, vlan) as the JSON flow record names them.
type Key = (u64, String, String, u64, u64, u64);

fn key_of(f: &Value) -> Key {
    (
        f["proto"].as_u64().unwrap(),
        f["src"].as_str().unwrap().to_string(),
        f["dst"].as_str().unwrap().to_string(),
        f["sport"].as_u64().unwrap(),
        f["dport"].as_u64().unwrap(),
        f["vlan"].as_u64().unwrap(),
    )
}

struct Traffic {
    frames: Vec<Vec<u8>>,
    /// Expected (packets, bytes) per flow, from the frames built.
    want: BTreeMap<Key, (u64, u64)>,
}

impl Traffic {
    fn new() -> Self {
        Traffic { frames: Vec::new(), want: BTreeMap::new() }
    }
    fn add(&mut self, k: Key, f: Vec<u8>) {
        let e = self.want.entry(k).or_default();
        e.0 += 1;
        e.1 += f.len() as u64;
        self.frames.push(f);
    }
}

fn v4(lab: &Lab, proto: u8, id: u16) -> Ipv4 {
    Ipv4 { src: lab.addr4_a(), dst: lab.addr4_b(), ttl: 64, tos: 0, id, df: false, mf: false, frag_off_bytes: 0, options: vec![], protocol: proto }
}

/// `m` flows (UDP and TCP over IPv4, UDP over IPv6, some VLAN-tagged) with `n` packets each, sizes varying.
fn mixed(lab: &Lab, m: usize, n: usize) -> Traffic {
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let (a4, b4, a6, b6) = (lab.addr4_a().to_string(), lab.addr4_b().to_string(), lab.addr6_a().to_string(), lab.addr6_b().to_string());
    let mut t = Traffic::new();
    for j in 0..n {
        for i in 0..m {
            let sport = 20000 + i as u16;
            let payload = vec![0xa5u8; (i * 13 + j * 7) % 300];
            match i % 4 {
                0 => t.add((17, a4.clone(), b4.clone(), sport as u64, 53, 0),
                    frames::frame(&eth, &[], L3::Ipv4(v4(lab, ipproto::UDP, j as u16)), L4::Udp(Udp { sport, dport: 53 }), &payload)),
                1 => t.add((6, a4.clone(), b4.clone(), sport as u64, 80, 0),
                    frames::frame(&eth, &[], L3::Ipv4(v4(lab, ipproto::TCP, j as u16)),
                        L4::Tcp(Tcp { sport, dport: 80, seq: j as u32, ack: 1, flags: F::ACK | F::PSH, window: 100, urgent: 0, options: vec![] }), &payload)),
                2 => t.add((17, a6.clone(), b6.clone(), sport as u64, 443, 0),
                    frames::frame(&eth, &[], L3::Ipv6(Ipv6 { src: lab.addr6_a(), dst: lab.addr6_b(), hop_limit: 64, traffic_class: 0, flow_label: 0, next_header: ipproto::UDP }, vec![]),
                        L4::Udp(Udp { sport, dport: 443 }), &payload)),
                _ => t.add((17, a4.clone(), b4.clone(), sport as u64, 53, 42),
                    frames::frame(&eth, &[Vlan { tpid: frames::TPID_8021Q, tci: 42 }], L3::Ipv4(v4(lab, ipproto::UDP, j as u16)), L4::Udp(Udp { sport, dport: 53 }), &payload)),
            }
        }
    }
    t
}

/// Runs `rxray flows --json` in ns b while `frames` are sent from ns a; returns the last snapshot.
fn run_flows(lab: &Lab, extra: &[&str], frames: &[Vec<u8>]) -> Value {
    let mut args = vec!["flows", "-i", "veth-b", "--json", "--interval", "0.2"];
    args.extend_from_slice(extra);
    let mut r = Running::start(lab.ns_b(), &args);
    r.wait_stderr("rxray: counting flows on veth-b", Duration::from_secs(20));
    assert_eq!(send_frames(lab.ns_a(), "veth-a", frames).expect("send"), frames.len());
    std::thread::sleep(Duration::from_millis(500));
    let (code, out, err) = r.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let last = out.last().unwrap_or_else(|| panic!("no snapshot; stderr {err:?}"));
    serde_json::from_str(last).expect("snapshot JSON")
}

fn observed(snap: &Value) -> BTreeMap<Key, (u64, u64)> {
    let mut m = BTreeMap::new();
    for f in snap["flows"].as_array().unwrap() {
        assert_eq!(f["iface"], json!("veth-b"));
        let prev = m.insert(key_of(f), (f["packets"].as_u64().unwrap(), f["bytes"].as_u64().unwrap()));
        assert!(prev.is_none(), "flow listed twice: {f}");
    }
    m
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn flow_counts_are_exact() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let t = mixed(&lab, 24, 25);
    let snap = run_flows(&lab, &[], &t.frames);
    assert_eq!(observed(&snap), t.want, "every flow, exactly N packets and the bytes sent");
    let total_bytes: u64 = t.frames.iter().map(|f| f.len() as u64).sum();
    assert_eq!(snap["totals"]["packets"], json!(t.frames.len()));
    assert_eq!(snap["totals"]["bytes"], json!(total_bytes));
    assert_eq!(snap["totals"]["flow_insert_failed"], json!(0));
    assert_eq!(snap["interfaces"], json!([{"ifindex": lab.ifindex_b(), "iface": "veth-b", "packets": t.frames.len(), "bytes": total_bytes}]));
    // 24 flows: i%4 = 0 and 3 are IPv4 UDP, 1 is IPv4 TCP, 2 is IPv6 UDP; 25 packets each.
    let p = &snap["protocols"];
    assert_eq!(p["ipv4_udp"]["packets"], json!(12 * 25));
    assert_eq!(p["ipv4_tcp"]["packets"], json!(6 * 25));
    assert_eq!(p["ipv6_udp"]["packets"], json!(6 * 25));
    assert_eq!(p["arp"]["packets"], json!(0));
    // Flags seen and the size histogram of one TCP flow.
    let tcp = snap["flows"].as_array().unwrap().iter().find(|f| f["proto"] == json!(6)).unwrap();
    assert_eq!(tcp["tcp_flags"], json!(F::ACK | F::PSH));
    let hist_total: u64 = tcp["size_hist"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(hist_total, 25);
    assert!(tcp["first_ns"].as_u64().unwrap() <= tcp["last_ns"].as_u64().unwrap());
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn flow_counts_stay_exact_while_events_are_lost() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let t = mixed(&lab, 16, 30);
    let snap = run_flows(&lab, &["--unread-events"], &t.frames);
    let lost = snap["totals"]["lost"].as_u64().unwrap();
    let events = snap["totals"]["events"].as_u64().unwrap();
    assert!(lost > 0, "the unread one-page ring must lose events: {}", snap["totals"]);
    assert_eq!(lost + events, t.frames.len() as u64);
    assert_eq!(observed(&snap), t.want);
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn later_fragments_join_their_flow_or_the_fragments_bucket() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let (a4, b4) = (lab.addr4_a().to_string(), lab.addr4_b().to_string());
    let mut t = Traffic::new();
    // A datagram in three IPv4 fragments: all three count in the UDP flow 5000 -> 6000.
    let d = frames::transport(lab.addr4_a().into(), lab.addr4_b().into(), &L4::Udp(Udp { sport: 5000, dport: 6000 }), &[7; 200]);
    for (off, more) in [(0usize, true), (80, true), (160, false)] {
        let end = (off + 80).min(d.len());
        let ip = Ipv4 { id: 777, mf: more, frag_off_bytes: off as u16, ..v4(&lab, ipproto::UDP, 0) };
        t.add((17, a4.clone(), b4.clone(), 5000, 6000, 0), frames::frame(&eth, &[], L3::Ipv4(ip), L4::None, &d[off..end]));
    }
    // The same over IPv6 (fragment header).
    let (a6, b6) = (lab.addr6_a().to_string(), lab.addr6_b().to_string());
    let d6 = frames::transport(lab.addr6_a().into(), lab.addr6_b().into(), &L4::Udp(Udp { sport: 5001, dport: 6001 }), &[9; 100]);
    for (off, more) in [(0usize, true), (56, false)] {
        let end = (off + 56).min(d6.len());
        let ip = Ipv6 { src: lab.addr6_a(), dst: lab.addr6_b(), hop_limit: 64, traffic_class: 0, flow_label: 0, next_header: ipproto::UDP };
        t.add((17, a6.clone(), b6.clone(), 5001, 6001, 0),
            frames::frame(&eth, &[], L3::Ipv6(ip, vec![Ext::Fragment { offset_bytes: off as u16, more, id: 99 }]), L4::None, &d6[off..end]));
    }
    // A later fragment whose first fragment never came: the fragments bucket (ports 0).
    let ip = Ipv4 { id: 778, frag_off_bytes: 80, ..v4(&lab, ipproto::UDP, 0) };
    t.add((17, a4.clone(), b4.clone(), 0, 0, 0), frames::frame(&eth, &[], L3::Ipv4(ip), L4::None, &[1; 40]));
    let snap = run_flows(&lab, &[], &t.frames);
    assert_eq!(observed(&snap), t.want);
    let bucket: Vec<&Value> = snap["flows"].as_array().unwrap().iter().filter(|f| f["fragments"] == json!(true)).collect();
    assert_eq!(bucket.len(), 1, "{}", snap["flows"]);
    assert_eq!(snap["totals"]["fragments_unattributed"], json!(1));
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_full_flow_table_counts_its_failures() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let (cap, flows, per) = (16usize, 40usize, 3usize);
    let mut t = Traffic::new();
    for j in 0..per {
        for i in 0..flows {
            let f = frames::frame(&eth, &[], L3::Ipv4(v4(&lab, ipproto::UDP, 0)), L4::Udp(Udp { sport: 30000 + i as u16, dport: 9 }), b"x");
            t.add((17, lab.addr4_a().to_string(), lab.addr4_b().to_string(), 30000 + i as u64, 9, 0), f);
            let _ = j;
        }
    }
    let snap = run_flows(&lab, &["--flow-capacity", &cap.to_string()], &t.frames);
    let got = observed(&snap);
    assert_eq!(got.len(), cap, "the table holds exactly its capacity");
    for (k, v) in &got {
        assert_eq!(Some(v), t.want.get(k), "a flow that got in is counted exactly: {k:?}");
    }
    let counted: u64 = got.values().map(|v| v.0).sum();
    assert_eq!(snap["totals"]["flow_insert_failed"], json!(((flows - cap) * per) as u64));
    assert_eq!(counted + snap["totals"]["flow_insert_failed"].as_u64().unwrap(), t.frames.len() as u64);
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn two_instances_in_two_namespaces_at_once() {
    if !need_root() {
        return;
    }
    let l1 = Lab::pair_quiet(&unique_name()).expect("lab 1");
    let l2 = Lab::pair_quiet(&unique_name()).expect("lab 2");
    let t1 = mixed(&l1, 4, 10);
    let t2 = mixed(&l2, 6, 5);
    let mut r1 = Running::start(l1.ns_b(), &["flows", "-i", "veth-b", "--json", "--interval", "0.2"]);
    let mut r2 = Running::start(l2.ns_b(), &["flows", "-i", "veth-b", "--json", "--interval", "0.2"]);
    r1.wait_stderr("counting flows on veth-b", Duration::from_secs(20));
    r2.wait_stderr("counting flows on veth-b", Duration::from_secs(20));
    send_frames(l1.ns_a(), "veth-a", &t1.frames).unwrap();
    send_frames(l2.ns_a(), "veth-a", &t2.frames).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (c1, o1, e1) = r1.interrupt();
    let (c2, o2, e2) = r2.interrupt();
    assert_eq!((c1, c2), (Some(0), Some(0)), "{e1:?} {e2:?}");
    let s1: Value = serde_json::from_str(o1.last().unwrap()).unwrap();
    let s2: Value = serde_json::from_str(o2.last().unwrap()).unwrap();
    assert_eq!(observed(&s1), t1.want);
    assert_eq!(observed(&s2), t2.want);
}

/// A UDP (unconnected socket) and a TCP receiver in ns b, both in a cgroup the test creates; each
/// acknowledges every message so the client sends the next only then.
const RECEIVER: &str = r#"
import os, socket, sys
proto, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if proto == "tcp":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(1); s.settimeout(20)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((host, port)); s.settimeout(20)
print("ready", os.getpid(), flush=True)
c = s.accept()[0] if proto == "tcp" else s
for i in range(n):
    if proto == "tcp":
        c.recv(65536); c.sendall(b"k")
    else:
        d, peer = c.recvfrom(65536); c.sendto(b"k", peer)
print("done", flush=True)
sys.stdin.readline()
"#;

const SENDER: &str = r#"
import socket, sys, time
proto, host, port, n, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
if proto == "tcp":
    k = socket.create_connection((host, port), timeout=20)
else:
    k = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); k.settimeout(20); k.connect((host, port))
print("port", k.getsockname()[1], flush=True)
for i in range(n):
    k.send(b"hello %d" % i); assert k.recv(16) == b"k"; time.sleep(gap)
print("sent", flush=True)
"#;

/// Starts a receiver in `cg` and its sender; returns (receiver, its pid, the sender's port).
fn receive(lab: &Lab, cg: &Cgroup, proto: &str, port: u16, n: usize, gap: f64) -> (Kid, u32, u16) {
    let b = lab.addr4_b().to_string();
    let mut rx = Kid::python(lab, lab.ns_b(), RECEIVER, &[proto.into(), b.clone(), port.to_string(), n.to_string()]);
    let pid: u32 = rx.line().strip_prefix("ready ").expect("ready <pid>").parse().unwrap();
    cg.add(pid); // before its first read
    let mut tx = Kid::python(lab, lab.ns_a(), SENDER, &[proto.into(), b, port.to_string(), n.to_string(), gap.to_string()]);
    let cport: u16 = tx.line().strip_prefix("port ").expect("port <n>").parse().unwrap();
    assert_eq!(tx.line(), "sent");
    assert_eq!(rx.line(), "done");
    (rx, pid, cport)
}

fn flow_in(snap: &Value, proto: u64, sport: u16, dport: u16) -> Option<&Value> {
    snap["flows"].as_array()?.iter().find(|f| f["proto"] == json!(proto) && f["sport"] == json!(sport) && f["dport"] == json!(dport))
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn flows_name_the_process_and_cgroup_that_read_them() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let cg = Cgroup::new();
    let mut r = Running::start(lab.ns_b(), &["flows", "-i", "veth-b", "--json", "--interval", "0.2"]);
    r.wait_stderr("rxray: counting flows on veth-b", Duration::from_secs(20));
    let (udp_rx, udp_pid, udp_cport) = receive(&lab, &cg, "udp", 5701, 3, 0.0);
    let (tcp_rx, tcp_pid, tcp_cport) = receive(&lab, &cg, "tcp", 5702, 3, 0.0);
    // The receivers stay alive until a snapshot after their reads is out (so their exe resolves).
    r.wait_lines(usize::MAX, Duration::from_millis(100));
    let n0 = r.stdout.len();
    assert!(r.wait_lines(n0 + 2, Duration::from_secs(10)), "snapshots keep coming");
    drop((udp_rx, tcp_rx));
    let (code, out, err) = r.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let snap: Value = serde_json::from_str(&out[n0 + 1]).expect("snapshot JSON");
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&cg.dir).unwrap());
    for (proto, cport, port, pid) in [(17u64, udp_cport, 5701u16, udp_pid), (6, tcp_cport, 5702, tcp_pid)] {
        let f = flow_in(&snap, proto, cport, port).unwrap_or_else(|| panic!("flow {proto} {cport}->{port}: {snap}"));
        assert_eq!(f["src"], json!(lab.addr4_a().to_string()), "{f}");
        let rd = &f["reader"];
        assert_eq!(rd["pid"], json!(pid), "{f}");
        assert_eq!(rd["comm"], json!("python3"), "{f}");
        assert_eq!(rd["cgroup"], json!(cg.rel()), "{f}");
        assert_eq!(rd["cgroup_id"], json!(ino), "{f}");
        assert!(rd["exe"].as_str().unwrap_or_else(|| panic!("exe: {f}")).rsplit('/').next().unwrap().starts_with("python3"), "{f}");
        assert_eq!(f["drops"], json!({"count": 0, "last_reason": null}), "nothing dropped: {f}");
    }
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_dropped_flow_shows_its_drop_count_and_reason() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let n = 7;
    // UDP to a port nobody listens on: the kernel frees each datagram with NO_SOCKET.
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|j| frames::frame(&eth, &[], L3::Ipv4(v4(&lab, ipproto::UDP, j)), L4::Udp(Udp { sport: 41000, dport: 5999 }), b"nobody"))
        .collect();
    let snap = run_flows(&lab, &[], &frames);
    let f = flow_in(&snap, 17, 41000, 5999).unwrap_or_else(|| panic!("{snap}"));
    assert_eq!(f["packets"], json!(n), "{f}");
    assert_eq!(f["drops"]["count"], json!(n), "{f}");
    assert_eq!(f["drops"]["last_reason"], json!("NO_SOCKET"), "{f}");
    assert_eq!(f["reader"], Value::Null, "{f}");
    assert_eq!(snap["context"]["drop_events_lost"], json!(0), "{snap}");
    // Without the context, neither field is there.
    let snap = run_flows(&lab, &["--no-context"], &frames);
    let f = flow_in(&snap, 17, 41000, 5999).unwrap_or_else(|| panic!("{snap}"));
    assert!(f.get("drops").is_none() && f.get("reader").is_none(), "{f}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn drop_events_the_ring_cannot_take_are_counted() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let n = 600u16;
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|j| frames::frame(&eth, &[], L3::Ipv4(v4(&lab, ipproto::UDP, j)), L4::Udp(Udp { sport: 41001, dport: 5998 }), b"nobody"))
        .collect();
    // A one-page drop ring holds a few dozen events; the rest are lost, and counted.
    let snap = run_flows(&lab, &["--drop-ring-size", "4096"], &frames);
    let f = flow_in(&snap, 17, 41001, 5998).unwrap_or_else(|| panic!("{snap}"));
    let (seen, lost) = (f["drops"]["count"].as_u64().unwrap(), snap["context"]["drop_events_lost"].as_u64().unwrap());
    assert!(lost > 0, "{snap}");
    assert_eq!(seen + lost, u64::from(n), "every drop either joined or counted lost: {snap}");
}
