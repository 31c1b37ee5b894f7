//! Where each command attaches on a veth with `--xdp-mode auto` (observers: TC ingress; the
//! firewall: native XDP, which observers then share), and what a packet is on the TC hook: a TCP
//! bulk transfer with GSO and GRO on is counted in wire segments and wire bytes, exactly as the
//! sender's tcpdump and /proc/net/snmp give them.
mod common;
use common::*;
use rxray_lab::Lab;
use serde_json::{json, Value};
use std::{collections::BTreeMap, process::Command, time::Duration};

/// A lab pair (`quiet`: a has no addresses, so it sends only what a test crafts).
fn lab_with(tools: &[&str], quiet: bool) -> Option<Lab> {
    if !need_root() {
        return None;
    }
    for t in tools {
        if !have(t) {
            skip_or_fail(&format!("{t} is not installed"));
            return None;
        }
    }
    Some(if quiet { Lab::pair_quiet(&unique_name()) } else { Lab::pair(&unique_name()) }.expect("lab"))
}

fn lab(tools: &[&str]) -> Option<Lab> {
    lab_with(tools, true)
}

/// What `rxray ifaces --json` says is attached to veth-b: (xdp program and mode, tc ingress names).
fn hooks(lab: &Lab) -> (Value, Vec<String>) {
    let st = iface_state(lab.ns_b(), "veth-b");
    assert_eq!(st["driver"], json!("veth"), "{st}");
    let tc = st["tc_ingress"].as_array().expect("tc_ingress list").iter().map(|p| p["prog_name"].as_str().unwrap().to_string()).collect();
    let xdp = if st["xdp"].is_null() { Value::Null } else { json!([st["xdp"]["prog_name"], st["xdp"]["mode"]]) };
    (xdp, tc)
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn observers_attach_tc_ingress_on_a_veth() {
    let Some(lab) = lab(&[]) else { return };
    let dir = TempDir::new();
    let pcap = dir.path().join("c.pcapng");
    let cases: [(&str, Vec<&str>, &str); 5] = [
        ("watch", vec!["watch", "-i", "veth-b", "--json"], "rxray: watching veth-b (TC ingress)"),
        ("flows", vec!["flows", "-i", "veth-b", "--json"], "rxray: counting flows on veth-b (TC ingress)"),
        ("capture", vec!["capture", "-i", "veth-b", "-w", pcap.to_str().unwrap()], "rxray: capturing on veth-b (TC ingress)"),
        ("latency", vec!["latency", "-i", "veth-b"], "on veth-b (TC ingress)"),
        ("alerts", vec!["alerts", "-i", "veth-b"], "rxray: inspecting veth-b (TC ingress)"),
    ];
    for (name, args, line) in cases {
        let mut r = Running::start(lab.ns_b(), &args);
        r.wait_stderr(line, Duration::from_secs(30));
        assert_eq!(hooks(&lab), (Value::Null, vec!["rxray_tc".to_string()]), "{name}");
        let st = iface_state(lab.ns_b(), "veth-b");
        assert_eq!(st["owner_pid"], json!(r.pid()), "{name}: {st}");
        let (code, _, err) = r.interrupt();
        assert_eq!(code, Some(0), "{name}: {err:?}");
        assert_eq!(hooks(&lab), (Value::Null, vec![]), "{name} left something attached");
    }
    // Asked for explicitly, the XDP modes still attach XDP.
    for mode in ["generic", "native"] {
        let mut r = Running::start(lab.ns_b(), &["flows", "-i", "veth-b", "--json", "--xdp-mode", mode]);
        r.wait_stderr(&format!("rxray: counting flows on veth-b ({mode} XDP)"), Duration::from_secs(30));
        assert_eq!(hooks(&lab), (json!(["rxray_xdp", mode]), vec![]));
        let (code, _, err) = r.interrupt();
        assert_eq!(code, Some(0), "{err:?}");
    }
}

/// `rxray --netns NS ARGS` (the firewall's pins need the host's bpffs, which `ip netns exec` hides).
fn rxray_netns(ns: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(rxray_bin()).args(["--netns", ns]).args(args).output().expect("run rxray");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Removes the firewall even when the test fails half-way (the namespaces go with the Lab).
struct FirewallOff<'a>(&'a Lab);

impl Drop for FirewallOff<'_> {
    fn drop(&mut self) {
        let _ = rxray_netns(self.0.ns_b(), &["firewall", "off", "-i", "veth-b"]);
    }
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn the_firewall_takes_tc_on_a_veth_native_when_asked_and_observers_share_it() {
    let Some(lab) = lab(&[]) else { return };
    let dir = TempDir::new();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\naction = \"deny\"\nproto = \"udp\"\ndport = 7300\n").unwrap();
    let _off = FirewallOff(&lab);
    // Auto on a veth: the TC (tcx) copy; native XDP when asked for. Either way, observers share the
    // firewall's program and attach nothing of their own.
    for (mode, want) in [("auto", (Value::Null, vec!["rxray_tc".to_string()])), ("native", (json!(["rxray_xdp", "native"]), vec![]))] {
        let (code, out, err) = rxray_netns(lab.ns_b(), &["firewall", "apply", rules.to_str().unwrap(), "-i", "veth-b", "--xdp-mode", mode]);
        assert_eq!(code, Some(0), "{mode}: {out}{err}");
        assert_eq!(hooks(&lab), want, "{mode}");
        for (args, line) in [
            (vec!["flows", "-i", "veth-b", "--json"], "rxray: counting flows on veth-b (through the firewall's program)"),
            (vec!["alerts", "-i", "veth-b", "--enforce"], "rxray: inspecting veth-b (through the firewall's program)"),
        ] {
            let mut r = Running::start_netns(lab.ns_b(), &args);
            r.wait_stderr(line, Duration::from_secs(30));
            assert_eq!(hooks(&lab), want, "{mode}: {args:?} attached a second program");
            let (code, _, err) = r.interrupt();
            assert_eq!(code, Some(0), "{err:?}");
        }
        let (code, _, err) = rxray_netns(lab.ns_b(), &["firewall", "off", "-i", "veth-b"]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(hooks(&lab), (Value::Null, vec![]), "{mode}: firewall off left something attached");
    }
}

/// Tcp: counters of /proc/net/snmp in `ns`, by name.
fn tcp_snmp(lab: &Lab, ns: &str) -> BTreeMap<String, u64> {
    let out = lab.exec(ns, ["cat", "/proc/net/snmp"]).output().expect("cat /proc/net/snmp");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("Tcp:")).collect();
    assert_eq!(rows.len(), 2, "{text}");
    rows[0].split_whitespace().zip(rows[1].split_whitespace()).skip(1).map(|(k, v)| (k.to_string(), v.parse().unwrap_or(0))).collect()
}

/// One TCP unit the sender handed to veth-a, as tshark reads it from the sender's capture.
struct Unit {
    sport: u64,
    frame_len: u64,
    /// Ethernet + IP + TCP header bytes (repeated by every wire segment of the unit).
    hdr_len: u64,
    payload: u64,
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn flows_count_the_wire_segments_of_a_tcp_bulk_transfer() {
    let Some(lab) = lab_with(&["tcpdump", "tshark", "iperf3"], false) else { return };
    let dir = TempDir::new();
    // GSO and GRO on, as veth has them by default (the test checks the capture shows it).
    for (ns, i) in [(lab.ns_a(), "veth-a"), (lab.ns_b(), "veth-b")] {
        let _ = lab.exec(ns, ["ethtool", "-K", i, "gso", "on", "tso", "on", "gro", "on"]).output();
    }
    let server = dir.path().join("iperf3.pid");
    let st = lab.exec(lab.ns_b(), ["iperf3", "-s", "-1", "-D", "-B", &lab.addr4_b().to_string(), "-I", server.to_str().unwrap()]).status().unwrap();
    assert!(st.success(), "iperf3 server");
    struct Kill(std::path::PathBuf);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Some(pid) = std::fs::read_to_string(&self.0).ok().and_then(|s| s.trim_matches(char::from(0)).trim().parse::<i32>().ok()) {
                // SAFETY: kill with the pid the iperf3 daemon wrote; it is ours.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
    }
    let _server = Kill(server.clone());
    for _ in 0..50 {
        let ss = lab.exec(lab.ns_b(), ["ss", "-Hltn", "sport = :5201"]).output().unwrap();
        if !ss.stdout.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut r = Running::start(lab.ns_b(), &["flows", "-i", "veth-b", "--json", "--interval", "0.5"]);
    r.wait_stderr("rxray: counting flows on veth-b (TC ingress)", Duration::from_secs(30));
    let dump = Dump::start(lab.ns_a(), "veth-a", "out", dir.path(), "sender");
    let before = tcp_snmp(&lab, lab.ns_a());
    let out = lab
        .exec(lab.ns_a(), ["timeout", "60", "iperf3", "-c", &lab.addr4_b().to_string(), "-n", "150M", "-J"])
        .output()
        .expect("iperf3 client");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(out.status.success() && report.get("error").is_none(), "iperf3: {}", String::from_utf8_lossy(&out.stdout));
    std::thread::sleep(Duration::from_millis(300));
    let after = tcp_snmp(&lab, lab.ns_a());
    let (file, _) = dump.stop();
    std::thread::sleep(Duration::from_millis(700));
    let (code, lines, err) = r.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let snap = json_lines(&lines).pop().expect("a flows snapshot");

    // The sender's units, read by tshark.
    let t = Command::new("tshark")
        .args(["-r", file.to_str().unwrap(), "-n", "-Y", "tcp", "-T", "fields", "-E", "separator=,"])
        .args(["-e", "tcp.srcport", "-e", "frame.len", "-e", "tcp.hdr_len", "-e", "ip.hdr_len", "-e", "tcp.len", "-e", "tcp.flags.syn", "-e", "tcp.options.mss_val", "-e", "tcp.options.timestamp.tsval"])
        .output()
        .expect("tshark");
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let mut units = Vec::new();
    let mut mss_opt: Option<u64> = None;
    let mut timestamps = false;
    for l in String::from_utf8_lossy(&t.stdout).lines() {
        let f: Vec<&str> = l.split(',').collect();
        let n = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        if n(5) == 1 {
            mss_opt = f.get(6).and_then(|s| s.parse::<u64>().ok()).or(mss_opt);
            timestamps = f.get(7).is_some_and(|s| !s.is_empty());
        }
        units.push(Unit { sport: n(0), frame_len: n(1), hdr_len: 14 + n(3) + n(2), payload: n(4) });
    }
    // The segment size GSO cuts at: the MSS less the timestamp option every segment carries.
    let text = String::from_utf8_lossy(&t.stdout);
    let Some(mss_opt) = mss_opt else { panic!("no SYN with an MSS option in the sender's capture ({} units, {} bytes of pcap): {} {}", units.len(), std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0), &text[..text.len().min(2000)], String::from_utf8_lossy(&t.stderr)) };
    let mss = mss_opt - if timestamps { 12 } else { 0 };
    assert!(units.iter().any(|u| u.frame_len > 1514), "no unit larger than the MTU: GSO is off, the test would prove nothing");
    let mut want: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for u in &units {
        let segs = u.payload.div_ceil(mss).max(1);
        let e = want.entry(u.sport).or_default();
        e.0 += segs;
        e.1 += u.frame_len + (segs - 1) * u.hdr_len;
    }
    let total: u64 = want.values().map(|v| v.0).sum();
    // The kernel's own count of what the sender sent (new data and retransmissions) agrees.
    let sent = (after["OutSegs"] - before["OutSegs"]) + (after["RetransSegs"] - before["RetransSegs"]);
    assert_eq!(total, sent, "tcpdump's units cut at {mss} bytes vs /proc/net/snmp");

    let mut got: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for f in snap["flows"].as_array().unwrap() {
        if f["proto"] == json!(6) && f["src"] == json!(lab.addr4_a().to_string()) {
            got.insert(f["sport"].as_u64().unwrap(), (f["packets"].as_u64().unwrap(), f["bytes"].as_u64().unwrap()));
        }
    }
    assert_eq!(got, want, "per flow (packets, bytes): rxray vs the sender's capture");
    assert_eq!(snap["protocols"]["ipv4_tcp"]["packets"], json!(total), "{}", snap["protocols"]);
    assert_eq!(snap["totals"]["malformed"], json!(0));
}
