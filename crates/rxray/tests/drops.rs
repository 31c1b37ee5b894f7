//! `rxray drops` in a lab: packets the stack in ns b drops for known reasons are each reported once
//! with the kernel's reason, the exact 5-tuple and the dropping function; other namespaces and,
//! with -i, other interfaces stay out.
mod common;
use common::*;
use rxray_lab::frames::{self, ipproto, tcp_flags as F, Eth, Ipv4, Ipv6, Tcp, Udp, L3, L4};
use rxray_lab::{send_frames, Lab};
use serde_json::{json, Value};
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

fn start(ns: &str, extra: &[&str]) -> Running {
    let mut args = vec!["drops", "--json"];
    args.extend_from_slice(extra);
    let mut r = Running::start(ns, &args);
    r.wait_stderr("rxray: watching drops", Duration::from_secs(20));
    r
}

/// Stops rxray (after the last drops had time to arrive) and returns its drops and its summary.
fn stop(r: Running) -> (Vec<Value>, Value) {
    std::thread::sleep(Duration::from_millis(400));
    let (code, out, err) = r.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let drops = json_lines(&out);
    let s = summary(&err);
    assert_eq!(s["lost"], json!(0), "{s}");
    assert_eq!(s["delivered"].as_u64(), Some(drops.len() as u64), "every counted drop was delivered: {s}");
    assert_eq!(s["drops"].as_u64(), Some(drops.len() as u64), "{s}");
    (drops, s)
}

/// The drops of one flow: (proto, src, sport, dst, dport).
fn of_flow<'a>(drops: &'a [Value], proto: u8, src: &str, sport: u16, dst: &str, dport: u16) -> Vec<&'a Value> {
    drops
        .iter()
        .filter(|d| {
            d["proto"] == json!(proto)
                && d["src"] == json!(src)
                && d["sport"] == json!(sport)
                && d["dst"] == json!(dst)
                && d["dport"] == json!(dport)
        })
        .collect()
}

fn v4(lab: &Lab, proto: u8) -> Ipv4 {
    Ipv4 { src: lab.addr4_a(), dst: lab.addr4_b(), ttl: 64, tos: 0, id: 1, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: proto }
}

fn udp4(lab: &Lab, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    frames::frame(&eth, &[], L3::Ipv4(v4(lab, ipproto::UDP)), L4::Udp(Udp { sport, dport }), payload)
}

fn tcp4(lab: &Lab, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let tcp = Tcp { sport, dport, seq: 1000, ack: 0, flags, window: 64240, urgent: 0, options: vec![] };
    frames::frame(&eth, &[], L3::Ipv4(v4(lab, ipproto::TCP)), L4::Tcp(tcp), &[])
}

fn assert_each(ds: &[&Value], reason: &str, lab: &Lab, location_has: &str) {
    for d in ds {
        assert_eq!(d["reason"], json!(reason), "{d}");
        assert_eq!(d["iface"], json!("veth-b"), "{d}");
        assert_eq!(d["ifindex"], json!(lab.ifindex_b()), "{d}");
        let loc = d["location"].as_str().unwrap();
        assert!(loc.contains(location_has), "dropped in {loc}, expected a function with {location_has:?}: {d}");
    }
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn udp_to_a_closed_port_is_no_socket_with_the_exact_tuple() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let (n4, n6) = (7usize, 3usize);
    let mut fr: Vec<Vec<u8>> = (0..n4).map(|i| udp4(&lab, 40000, 9999, &vec![0x5a; 10 + i])).collect();
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    for i in 0..n6 {
        let ip = Ipv6 { src: lab.addr6_a(), dst: lab.addr6_b(), hop_limit: 64, traffic_class: 0, flow_label: 0, next_header: ipproto::UDP };
        fr.push(frames::frame(&eth, &[], L3::Ipv6(ip, vec![]), L4::Udp(Udp { sport: 40001, dport: 9998 }), &vec![0xa5; 20 + i]));
    }
    let r = start(lab.ns_b(), &[]);
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &fr).expect("send"), fr.len());
    let (drops, s) = stop(r);

    let (a4, b4, a6, b6) = (lab.addr4_a().to_string(), lab.addr4_b().to_string(), lab.addr6_a().to_string(), lab.addr6_b().to_string());
    let got4 = of_flow(&drops, 17, &a4, 40000, &b4, 9999);
    assert_eq!(got4.len(), n4, "each IPv4 datagram dropped once: {drops:?}");
    assert_each(&got4, "NO_SOCKET", &lab, "udp");
    // skb->len at the UDP layer: the UDP header and the payload (one each of the sizes sent).
    let mut lens: Vec<u64> = got4.iter().map(|d| d["len"].as_u64().unwrap()).collect();
    lens.sort();
    assert_eq!(lens, (0..n4).map(|i| 8 + 10 + i as u64).collect::<Vec<_>>());
    assert!(got4.iter().all(|d| d["ip_ver"] == json!(4) && d["protocol"] == json!(0x0800)));
    let got6 = of_flow(&drops, 17, &a6, 40001, &b6, 9998);
    assert_eq!(got6.len(), n6, "each IPv6 datagram dropped once: {drops:?}");
    assert_each(&got6, "NO_SOCKET", &lab, "udp");
    assert!(got6.iter().all(|d| d["ip_ver"] == json!(6) && d["protocol"] == json!(0x86dd)));

    let no_socket = drops.iter().filter(|d| d["reason"] == json!("NO_SOCKET")).count() as u64;
    assert_eq!(s["by_reason"]["NO_SOCKET"].as_u64(), Some(no_socket), "the kernel count agrees with the events: {s}");
    let flow = s["flows"].as_array().unwrap().iter().find(|f| f["sport"] == json!(40000)).expect("flow in summary");
    assert_eq!(flow["drops"], json!(n4));
    assert_eq!(flow["reason"], json!("NO_SOCKET"));
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn syn_to_a_closed_port_is_no_socket_and_only_its_namespace_sees_it() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    // One rxray per namespace: b drops the SYN (and answers RST); a drops that RST (no socket there).
    let rb = start(lab.ns_b(), &[]);
    let ra = start(lab.ns_a(), &[]);
    let syn = tcp4(&lab, 40002, 7777, F::SYN);
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &[syn]).expect("send"), 1);
    std::thread::sleep(Duration::from_millis(300));
    let (db, _) = stop(rb);
    let (da, _) = stop(ra);
    let (a4, b4) = (lab.addr4_a().to_string(), lab.addr4_b().to_string());
    let got = of_flow(&db, 6, &a4, 40002, &b4, 7777);
    assert_eq!(got.len(), 1, "{db:?}");
    assert_each(&got, "NO_SOCKET", &lab, "tcp");
    assert_eq!(got[0]["tcp_flags"], json!(F::SYN));
    assert_eq!(got[0]["len"], json!(20), "skb->len at TCP: the bare header");
    // The RST b sent was dropped in a, and only a's rxray reports it.
    let rst = of_flow(&da, 6, &b4, 7777, &a4, 40002);
    assert_eq!(rst.len(), 1, "a drops the RST: {da:?}");
    assert_eq!(rst[0]["reason"], json!("NO_SOCKET"));
    assert_eq!(rst[0]["iface"], json!("veth-a"));
    assert_eq!(rst[0]["tcp_flags"].as_u64().unwrap() & F::RST as u64, F::RST as u64);
    assert!(of_flow(&db, 6, &b4, 7777, &a4, 40002).is_empty(), "a's drop must not show in b");
    assert!(of_flow(&da, 6, &a4, 40002, &b4, 7777).is_empty(), "b's drop must not show in a");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn an_nftables_drop_rule_is_netfilter_drop() {
    if !need_root() {
        return;
    }
    if !have("nft") {
        skip_or_fail("nft (nftables) is not installed");
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    for rule in [
        "add table inet rxt",
        "add chain inet rxt in { type filter hook input priority 0; policy accept; }",
        "add rule inet rxt in udp dport 9999 drop",
    ] {
        let out = lab.exec(lab.ns_b(), ["nft"]).args(rule.split(' ')).output().expect("nft");
        assert!(out.status.success(), "nft {rule}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let n = 5usize;
    let fr: Vec<Vec<u8>> = (0..n).map(|i| udp4(&lab, 40003, 9999, &[i as u8; 16])).collect();
    let r = start(lab.ns_b(), &[]);
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &fr).expect("send"), n);
    let (drops, s) = stop(r);
    let got = of_flow(&drops, 17, &lab.addr4_a().to_string(), 40003, &lab.addr4_b().to_string(), 9999);
    assert_eq!(got.len(), n, "each datagram dropped once, by the rule (not again for no socket): {drops:?}");
    // nf_hook_slow, or nft_do_chain where nftables passes its own reason (6.x).
    assert_each(&got, "NETFILTER_DROP", &lab, "nf");
    let nf = drops.iter().filter(|d| d["reason"] == json!("NETFILTER_DROP")).count() as u64;
    assert_eq!(nf, n as u64, "nothing else hit the rule");
    assert_eq!(s["by_reason"]["NETFILTER_DROP"], json!(n));
}

/// A listener in `ns` on TCP `port`; killed on drop.
struct Listener(Child);

impl Listener {
    fn start(lab: &Lab, port: u16) -> Listener {
        let py = if std::path::Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" };
        let code = format!(
            "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',{port}))\ns.listen(16)\nprint('listening',flush=True)\ntime.sleep(60)\n"
        );
        let mut child = lab.exec(lab.ns_b(), [py, "-c", &code]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).expect("listener output");
        assert_eq!(line.trim(), "listening");
        Listener(child)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_bad_tcp_checksum_to_a_listener_is_tcp_csum() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let _l = Listener::start(&lab, 8080);
    let k = 3usize;
    let fr: Vec<Vec<u8>> = (0..k)
        .map(|i| {
            let mut f = tcp4(&lab, 40010 + i as u16, 8080, F::SYN);
            // Ethernet 14 + IPv4 20 + 16: the TCP checksum.
            f[14 + 20 + 16] ^= 0xff;
            f
        })
        .collect();
    let r = start(lab.ns_b(), &[]);
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &fr).expect("send"), k);
    let (drops, s) = stop(r);
    for i in 0..k {
        let got = of_flow(&drops, 6, &lab.addr4_a().to_string(), 40010 + i as u16, &lab.addr4_b().to_string(), 8080);
        assert_eq!(got.len(), 1, "segment {i}: {drops:?}");
        assert_each(&got, "TCP_CSUM", &lab, "tcp");
    }
    assert_eq!(s["by_reason"]["TCP_CSUM"], json!(k));
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn interface_filter_keeps_other_interfaces_out() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let up = lab.exec(lab.ns_b(), ["ip", "link", "set", "lo", "up"]).status().expect("ip");
    assert!(up.success());
    let all = start(lab.ns_b(), &[]);
    let only = start(lab.ns_b(), &["-i", "veth-b"]);
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &[udp4(&lab, 40020, 9999, b"veth")]).expect("send"), 1);
    // A datagram to a closed port over loopback in b: dropped on lo.
    let py = if std::path::Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" };
    let st = Command::new("ip")
        .args(["netns", "exec", lab.ns_b(), py, "-c"])
        .arg("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('127.0.0.1',40021))\ns.sendto(b'lo',('127.0.0.1',9999))\n")
        .status()
        .expect("python3");
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (da, _) = stop(all);
    let (di, _) = stop(only);
    let (a4, b4) = (lab.addr4_a().to_string(), lab.addr4_b().to_string());
    let lo = of_flow(&da, 17, "127.0.0.1", 40021, "127.0.0.1", 9999);
    assert_eq!(lo.len(), 1, "{da:?}");
    assert_eq!(lo[0]["iface"], json!("lo"));
    assert_eq!(lo[0]["reason"], json!("NO_SOCKET"));
    assert_eq!(of_flow(&da, 17, &a4, 40020, &b4, 9999).len(), 1);
    assert_eq!(of_flow(&di, 17, &a4, 40020, &b4, 9999).len(), 1, "{di:?}");
    assert!(di.iter().all(|d| d["iface"] == json!("veth-b")), "-i veth-b reports only veth-b: {di:?}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_full_ring_counts_lost_drops_and_still_counts_their_reason() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    // One page holds fewer than 50 events of 80 bytes; rxray reads nothing for the first 1.5 s.
    let n = 200usize;
    let fr: Vec<Vec<u8>> = (0..n).map(|i| udp4(&lab, 41000 + i as u16, 9999, b"x")).collect();
    let r = start(lab.ns_b(), &["--ring-size", "4096", "--stall-ms", "1500"]);
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &fr).expect("send"), n);
    std::thread::sleep(Duration::from_millis(1800));
    let (code, out, err) = r.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let drops = json_lines(&out);
    let s = summary(&err);
    let ours = drops.iter().filter(|d| d["dport"] == json!(9999) && d["proto"] == json!(17)).count();
    let lost = s["lost"].as_u64().unwrap();
    assert!(lost > 0, "a one-page ring that is not read must lose drops: {s}");
    assert_eq!(s["delivered"].as_u64().unwrap(), drops.len() as u64);
    assert_eq!(s["delivered"].as_u64().unwrap() + lost, s["drops"].as_u64().unwrap(), "{s}");
    assert!(ours < n, "{ours} of {n} delivered");
    assert!(s["by_reason"]["NO_SOCKET"].as_u64().unwrap() >= n as u64, "lost drops still count per reason: {s}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn text_lines_and_count_limit() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let mut r = Running::start(lab.ns_b(), &["drops", "-i", "veth-b"]);
    r.wait_stderr("rxray: watching drops", Duration::from_secs(20));
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &[udp4(&lab, 40030, 9999, b"x")]).expect("send"), 1);
    std::thread::sleep(Duration::from_millis(400));
    let (code, out, err) = r.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let want = format!("UDP {}:40030 > {}:9999, length 9", lab.addr4_a(), lab.addr4_b());
    let line = out.iter().find(|l| l.ends_with(&want)).unwrap_or_else(|| panic!("no line ending {want:?}: {out:?}"));
    assert!(line.contains(" veth-b NO_SOCKET at __udp4_lib_rcv+0x"), "{line}");
    assert!(err.iter().any(|l| l.starts_with("NO_SOCKET ")), "the per-reason table at exit: {err:?}");

    // -c 1: exits by itself after the first drop, having printed exactly one.
    let mut r = Running::start(lab.ns_b(), &["drops", "-i", "veth-b", "--json", "-c", "1"]);
    r.wait_stderr("rxray: watching drops", Duration::from_secs(20));
    let fr: Vec<Vec<u8>> = (0..3).map(|_| udp4(&lab, 40031, 9999, b"x")).collect();
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &fr).expect("send"), 3);
    let (code, out, err) = r.finish();
    assert_eq!(code, Some(0), "{err:?}");
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(summary(&err)["delivered"], json!(1));
}
