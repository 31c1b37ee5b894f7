//! Every `--json` output checked against its schema in docs/json.md, on lines printed by real runs
//! of the commands: offline ones on a capture this test writes, live ones in a lab (watch, drops,
//! conns, flows, latency, ifaces, the firewall, and the agent with a joined watch, history and
//! investigate). A record that says its keys are sorted must print them sorted at every depth.
mod common;
use common::*;
use rxray_lab::frames::{frame, Eth, Ipv4, L3, L4, Tcp, Udp};
use rxray_lab::Lab;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The schemas of docs/json.md by record name, and whether each record's keys are sorted.
fn schemas() -> BTreeMap<String, (Value, bool)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/json.md");
    let doc = std::fs::read_to_string(&path).expect("docs/json.md");
    let mut out = BTreeMap::new();
    for section in doc.split("\n## ").skip(1) {
        let name = section.lines().next().unwrap().trim().to_string();
        let sorted = !section.contains("keys in declared order");
        let json = section.split("```json\n").nth(1).and_then(|s| s.split("\n```").next()).expect("a schema block");
        out.insert(name, (serde_json::from_str(json).expect("schema JSON"), sorted));
    }
    assert!(out.len() >= 20, "docs/json.md lists {} records", out.len());
    out
}

/// Checks one printed line against the schema of `name`; returns the name.
fn check(schemas: &BTreeMap<String, (Value, bool)>, name: &str, line: &str) -> String {
    let (schema, sorted) = schemas.get(name).unwrap_or_else(|| panic!("no record {name} in docs/json.md"));
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {line}"));
    let validator = jsonschema::validator_for(schema).expect("a valid schema");
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{line}");
    if *sorted {
        // serde_json's map is sorted: the line prints back the same only when its keys were.
        assert_eq!(v.to_string(), line, "{name}: keys not sorted at every depth");
    }
    name.to_string()
}

fn lines_starting<'a>(lines: &'a [String], prefix: &'a str) -> impl Iterator<Item = &'a String> {
    lines.iter().filter(move |l| l.starts_with(prefix))
}

/// A small capture: UDP and TCP between two addresses of the test ranges.
fn capture(dir: &Path) -> std::path::PathBuf {
    let eth = Eth { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1] };
    let (a, b) = ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap());
    let ip = |id: u16, protocol: u8| Ipv4 { src: a, dst: b, ttl: 64, tos: 0, id, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol };
    let mut frames = Vec::new();
    for i in 0..4u16 {
        frames.push(frame(&eth, &[], L3::Ipv4(ip(100 + i, 17)), L4::Udp(Udp { sport: 40000 + i, dport: 53 }), b"query"));
        frames.push(frame(&eth, &[], L3::Ipv4(ip(200 + i, 6)), L4::Tcp(Tcp { sport: 41000 + i, dport: 80, seq: 1, ack: 0, flags: 0x02, window: 1024, urgent: 0, options: vec![] }), b""));
    }
    let path = dir.join("mix.pcap");
    rxray_lab::pcap::write_pcap(&path, &frames).unwrap();
    path
}

/// One TCP segment between two addresses of the test ranges.
#[allow(clippy::too_many_arguments)]
fn seg(src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr, sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let eth = Eth { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1] };
    let ip = Ipv4 { src, dst, ttl: 64, tos: 0, id: 1, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: 6 };
    frame(&eth, &[], L3::Ipv4(ip), L4::Tcp(Tcp { sport, dport, seq, ack, flags, window: 1000, urgent: 0, options: vec![] }), payload)
}

/// A capture that alerts and holds HTTP calls: a SYN flood from one source, and two whole calls to
/// port 8080 (a SQL injection in the first's query, a plain GET in the second).
fn attack_capture(dir: &Path) -> std::path::PathBuf {
    use rxray_lab::frames::tcp_flags::{ACK, FIN, PSH, SYN};
    let (attacker, client, server) = ("198.18.9.66".parse().unwrap(), "198.18.9.7".parse().unwrap(), "198.18.9.2".parse().unwrap());
    let mut frames: Vec<Vec<u8>> = (0..3000u16).map(|i| seg(attacker, server, 10000 + i, 80, 1, 0, SYN, b"")).collect();
    for (sport, req) in [(40000u16, &b"GET /item?id=1%27%20OR%20%271%27=%271 HTTP/1.1\r\nHost: shop\r\n\r\n"[..]), (40001, b"GET /index.html HTTP/1.1\r\nHost: shop\r\n\r\n")] {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let (c, s) = (1001u32, 5001u32);
        frames.push(seg(client, server, sport, 8080, c - 1, 0, SYN, b""));
        frames.push(seg(server, client, 8080, sport, s - 1, c, SYN | ACK, b""));
        frames.push(seg(client, server, sport, 8080, c, s, PSH | ACK, req));
        let c = c + req.len() as u32;
        frames.push(seg(server, client, 8080, sport, s, c, PSH | ACK, resp));
        let s = s + resp.len() as u32;
        frames.push(seg(client, server, sport, 8080, c, s, FIN | ACK, b""));
        frames.push(seg(server, client, 8080, sport, s, c + 1, FIN | ACK, b""));
    }
    let path = dir.join("attack.pcap");
    rxray_lab::pcap::write_pcap(&path, &frames).unwrap();
    path
}

fn run(args: &[&str]) -> (String, String) {
    let o = Command::new(rxray_bin()).args(args).output().expect("run rxray");
    assert!(o.status.success(), "rxray {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// `analyze --json` (with a filter) and `investigate --captures --json`: no root needed.
fn offline(s: &BTreeMap<String, (Value, bool)>, dir: &Path) -> BTreeSet<String> {
    let pcap = capture(dir);
    let mut seen = BTreeSet::new();
    let (out, _) = run(&["analyze", "--json", pcap.to_str().unwrap(), "--", "udp"]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["filter"]["matched"], 4, "the example carries a filter: {doc}");
    seen.insert(check(s, "AnalyzeDoc", out.trim_end()));
    let (out, _) = run(&["investigate", "198.18.0.1", "--captures", dir.to_str().unwrap(), "--json"]);
    seen.insert(check(s, "Investigation", out.trim_end()));
    // EVE: a detector's alert and a signature's (with its flow, direction and payload).
    let attack = attack_capture(dir);
    let (out, _) = run(&["analyze", "--alerts", "--payload-printable", attack.to_str().unwrap()]);
    let eve: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for d in ["syn_flood", "signature"] {
        assert!(eve.iter().any(|a| a["rxray"]["detector"] == d), "the example has a {d} alert: {out}");
    }
    assert!(eve.iter().any(|a| a["payload_printable"].is_string() && a["direction"].is_string() && a["app_proto"] == "http"), "a signature's EVE fields: {out}");
    for l in out.lines() {
        seen.insert(check(s, "EveRecord", l));
    }
    let (out, _) = run(&["analyze", "--http", "--port", "8080", "--json", attack.to_str().unwrap()]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["http"]["totals"]["requests"], 2, "the example has both calls: {doc}");
    seen.insert(check(s, "HttpAnalyzeDoc", out.trim_end()));
    seen
}

#[test]
fn offline_outputs_match_their_schemas() {
    let dir = TempDir::new();
    let seen = offline(&schemas(), dir.path());
    assert_eq!(seen.len(), 4, "{seen:?}");
}

const SERVER: &str = r#"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4); s.settimeout(30)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.settimeout(10)
    c.recv(64); c.send(b"k"); c.close()
"#;

const CLIENT: &str = r#"
import socket, sys, time
b, port = sys.argv[1], int(sys.argv[2])
for i in range(5):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"x" * 32, (b, 9)); u.close()
    time.sleep(0.02)
k = socket.create_connection((b, port), timeout=10); k.send(b"hello"); assert k.recv(16) == b"k"; k.close()
print("done", flush=True)
"#;

/// Speaks the agent's socket protocol: a request it cannot take (its error line), then a joined
/// `watch --json` with a queue of 8 that reads nothing until told (so a flood overflows it), then
/// reads for two seconds, says bye and prints the loss notices and the closing summary.
const PROTOCOL: &str = r#"
import socket, os, json, struct, sys, time
path = "/run/rxray/%d/agent.sock" % os.stat("/proc/self/ns/net").st_ino
def ask(req):
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(path); s.sendall(req + b"\n"); return s
s = ask(b'{"cmd":"nope"}')
print("E " + s.makefile().readline().strip(), flush=True)
s.close()
s = ask(json.dumps({"cmd": "join", "v": 1, "command": "watch", "json": True, "queue": 8}).encode())
buf = b""
def frames(until):
    global buf
    while True:
        while len(buf) >= 5:
            n = struct.unpack(">I", buf[1:5])[0]
            if len(buf) < 5 + n:
                break
            k, p, buf = chr(buf[0]), buf[5:5 + n], buf[5 + n:]
            yield k, p
        if time.time() > until:
            return
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        if not d:
            return
        buf += d
k, p = next(frames(time.time() + 10))
assert k == "H", k
print("joined", flush=True)
sys.stdin.readline()
s.settimeout(0.2)
for k, p in frames(time.time() + 2):
    if k == "L":
        print("L " + p.decode(), flush=True)
s.sendall(b'{"cmd":"bye"}\n')
for k, p in frames(time.time() + 10):
    if k == "L":
        print("L " + p.decode(), flush=True)
    if k == "S":
        print("S " + p.decode(), flush=True)
        break
print("done", flush=True)
"#;

/// Datagrams from a to a closed port of b, as fast as python sends them (bounded: 3000).
const FLOOD: &str = r#"
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3000):
    u.sendto(b"x" * 16, (sys.argv[1], 9))
print("done", flush=True)
"#;

/// Five UDP datagrams to a closed port (drops) and one TCP exchange with the server, from a.
fn traffic(lab: &Lab) {
    let mut cl = Kid::python(lab, lab.ns_a(), CLIENT, &[lab.addr4_b().to_string(), "5700".into()]);
    assert_eq!(cl.line(), "done");
    assert!(cl.wait(Duration::from_secs(10)));
}

fn stopped(r: Running) -> (Vec<String>, Vec<String>) {
    let (code, out, err) = r.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    (out, err)
}

fn fw(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["--netns", ns, "firewall"];
    all.extend_from_slice(args);
    run(&all).0
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn every_record_in_docs_json_md_matches_a_real_run() {
    if !need_root() {
        return;
    }
    let s = schemas();
    let dir = TempDir::new();
    let mut seen = offline(&s, dir.path());
    let lab = Lab::pair(&unique_name()).expect("lab");
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let mut srv = Kid::python(&lab, &ns, SERVER, &[lab.addr4_b().to_string(), "5700".into()]);
    assert_eq!(srv.line(), "ready");

    // watch, drops and conns at once (only watch attaches to the interface).
    let mut watch = Running::start(&ns, &["watch", "--json", "--standalone", "-i", &iface]);
    let mut drops = Running::start(&ns, &["drops", "--json", "--interval", "0.2"]);
    let mut conns = Running::start(&ns, &["conns", "--json"]);
    watch.wait_stderr("Ctrl-C to stop", Duration::from_secs(20));
    drops.wait_stderr("Ctrl-C to stop", Duration::from_secs(20));
    conns.wait_stderr("Ctrl-C to stop", Duration::from_secs(20));
    traffic(&lab);
    assert!(drops.wait_lines(6, Duration::from_secs(5)), "drops printed too little");
    std::thread::sleep(Duration::from_millis(300));
    let (out, err) = stopped(watch);
    assert!(!out.is_empty(), "watch printed no packet");
    for l in &out {
        seen.insert(check(&s, "PacketOut", l));
    }
    seen.insert(check(&s, "Summary<WatchSummary>", lines_starting(&err, "{\"summary\"").next().expect("watch's summary")));
    let (out, err) = stopped(drops);
    for l in &out {
        let name = if l.starts_with("{\"counts\"") { "DropCounts" } else { "DropRecord" };
        seen.insert(check(&s, name, l));
    }
    seen.insert(check(&s, "Summary<DropsSummary>", lines_starting(&err, "{\"summary\"").next().expect("drops' summary")));
    let (out, err) = stopped(conns);
    assert!(!out.is_empty(), "conns printed no connection");
    for l in &out {
        seen.insert(check(&s, "ConnRecord", l));
    }
    seen.insert(check(&s, "Summary<ConnsSummary>", lines_starting(&err, "{\"summary\"").next().expect("conns' summary")));

    // flows, then latency (each attaches to the interface).
    let mut flows = Running::start(&ns, &["flows", "--json", "--standalone", "--interval", "0.3", "-i", &iface]);
    flows.wait_stderr("Ctrl-C to stop", Duration::from_secs(20));
    traffic(&lab);
    assert!(flows.wait_lines(2, Duration::from_secs(5)), "flows printed no snapshot");
    let (out, _) = stopped(flows);
    for l in &out {
        seen.insert(check(&s, "FlowsSnapshot", l));
    }
    let mut latency = Running::start(&ns, &["latency", "--json", "-i", &iface]);
    latency.wait_stderr("latency stages attached", Duration::from_secs(20));
    traffic(&lab);
    let (out, err) = stopped(latency);
    for l in &out {
        seen.insert(check(&s, "LatencyReport", l));
    }
    seen.insert(check(&s, "Summary<LatencySummary>", lines_starting(&err, "{\"summary\"").next().expect("latency's summary")));

    // http: its snapshots (the exchange on port 5700 is not HTTP; the counters still print).
    let mut http = Running::start(&ns, &["http", "--json", "--standalone", "--port", "5700", "--interval", "0.3", "-i", &iface]);
    http.wait_stderr("Ctrl-C to stop", Duration::from_secs(20));
    traffic(&lab);
    assert!(http.wait_lines(1, Duration::from_secs(5)), "http printed no snapshot");
    let (out, _) = stopped(http);
    assert!(out.last().is_some_and(|l| l.contains("\"final\":true")), "the last snapshot says it is: {out:?}");
    for l in &out {
        seen.insert(check(&s, "HttpLiveSnapshot", l));
    }

    let (code, out, err) = rxray_in(&ns, &["ifaces", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    for l in out.lines() {
        seen.insert(check(&s, "Iface", l));
    }

    // The firewall: apply (twice: the second finds the rules live), list, stats, simulate.
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\naction = \"deny\"\nproto = \"udp\"\ndport = 53\n").unwrap();
    let r = rules.to_str().unwrap();
    let _off = FwOff(&lab);
    seen.insert(check(&s, "FwApplied", fw(&ns, &["apply", "--json", r, "-i", &iface]).trim_end()));
    seen.insert(check(&s, "FwUnchanged", fw(&ns, &["apply", "--json", r, "-i", &iface]).trim_end()));
    seen.insert(check(&s, "FwList", fw(&ns, &["list", "--json", "-i", &iface]).trim_end()));
    seen.insert(check(&s, "FwStats", fw(&ns, &["stats", "--json", "-i", &iface]).trim_end()));
    let pcap = dir.path().join("mix.pcap");
    let (out, _) = run(&["firewall", "simulate", "--json", r, pcap.to_str().unwrap()]);
    seen.insert(check(&s, "SimReport", out.trim_end()));
    let (out, _) = run(&["firewall", "simulate", "--packets", "--json", r, pcap.to_str().unwrap()]);
    for l in out.lines().filter(|l| l.starts_with("{\"default\"")) {
        seen.insert(check(&s, "FwVerdict", l));
    }
    fw(&ns, &["off", "-i", &iface]);

    // The agent, with its store: a joined watch, then history and investigate over what it wrote.
    let cfg = dir.path().join("agent.toml");
    let store = dir.path().join("store");
    std::fs::write(
        &cfg,
        format!("host = \"json-lab\"\ninterfaces = [\"{iface}\"]\n[metrics]\nlisten = \"off\"\n[store]\ndir = \"{}\"\nflow_period_s = 1\n", store.display()),
    )
    .unwrap();
    let mut agent = Running::start_netns(&ns, &["agent", "--config", cfg.to_str().unwrap()]);
    agent.wait_stderr("SIGHUP reloads", Duration::from_secs(30));
    let mut joined = Running::start_netns(&ns, &["watch", "--json", "-i", &iface]);
    joined.wait_stderr("joined the agent", Duration::from_secs(10));
    traffic(&lab);
    assert!(joined.wait_lines(1, Duration::from_secs(5)), "the joined watch printed no packet");
    let (out, err) = stopped(joined);
    for l in &out {
        seen.insert(check(&s, "PacketOut", l));
    }
    seen.insert(check(&s, "Summary<WatchJoinedSummary>", lines_starting(&err, "{\"summary\"").next().expect("the joined summary")));
    let (code, out, err) = rxray_in(&ns, &["status", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    seen.insert(check(&s, "AgentStatus", out.trim_end()));
    // The socket protocol's own records: an error reply, a loss notice and a closing summary.
    let mut p = Kid::python(&lab, &ns, PROTOCOL, &[]);
    let e = p.line();
    seen.insert(check(&s, "AgentError", e.strip_prefix("E ").expect("the error reply")));
    assert_eq!(p.line(), "joined");
    let mut flood = Kid::python(&lab, lab.ns_a(), FLOOD, &[lab.addr4_b().to_string()]);
    assert_eq!(flood.line(), "done");
    assert!(flood.wait(Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(500));
    p.say("read");
    let mut lines = Vec::new();
    loop {
        let l = p.line();
        if l == "done" {
            break;
        }
        lines.push(l);
    }
    assert!(p.wait(Duration::from_secs(10)));
    for l in &lines {
        match l.split_once(' ') {
            Some(("L", j)) => seen.insert(check(&s, "LostNotice", j)),
            Some(("S", j)) => seen.insert(check(&s, "JoinSummary", j)),
            _ => panic!("the protocol script printed {l:?}"),
        };
    }
    std::thread::sleep(Duration::from_millis(1500));
    let (code, _, err) = agent.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let st = store.to_str().unwrap();
    let (out, _) = run(&["history", "--store", st, "--json"]);
    let h: Value = serde_json::from_str(&out).unwrap();
    assert!(!h["records"]["flows"].as_array().unwrap().is_empty(), "the example has flows: {h}");
    seen.insert(check(&s, "HistoryOut", out.trim_end()));
    let a4 = lab.addr4_a().to_string();
    let (out, _) = run(&["investigate", &a4, "--store", st, "--window", "1h", "--json"]);
    seen.insert(check(&s, "Investigation", out.trim_end()));
    drop(srv);

    let all: BTreeSet<String> = s.keys().cloned().collect();
    assert_eq!(seen, all, "records with no example from a real run: {:?}", all.difference(&seen).collect::<Vec<_>>());
}
