//! `rxray agent` in a lab: started by the test with a config file. Debian's Prometheus server,
//! started in the agent's namespace, scrapes it and answers a PromQL query with exactly the packets
//! the test sent; promtool accepts a scrape; `rxray status` reports; SIGHUP with a bad config is
//! rejected with its place and the agent runs on; kill -9 leaves the firewall enforcing; a restart
//! attaches again and carries on; SIGTERM stops it and leaves the firewall pinned.
mod common;

use common::*;
use rxray_lab::frames::{self, ipproto, Eth, Ipv4, Udp, L3, L4};
use rxray_lab::{send_frames, Lab};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The running agent; killed on drop (the lab kills anything left in its namespaces too).
struct Agent {
    child: Child,
    err: mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl Agent {
    fn start(ns: &str, config: &Path) -> Agent {
        let mut child = Command::new(rxray_bin())
            .args(["--netns", ns, "agent", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rxray agent");
        let (tx, err) = mpsc::channel();
        let e = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(e).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut a = Agent { child, err, stderr: Vec::new() };
        a.wait_for("SIGHUP reloads", Duration::from_secs(60));
        a
    }

    fn wait_for(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            self.stderr.extend(self.err.try_iter());
            if self.stderr.iter().any(|l| l.contains(needle)) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                self.stderr.extend(self.err.try_iter());
                panic!("the agent exited ({st}) before {needle:?}: {:?}", self.stderr);
            }
            assert!(Instant::now() < deadline, "no {needle:?} within {timeout:?}: {:?}", self.stderr);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill with the pid of our child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits (bounded) for the exit; its status code.
    fn exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                self.stderr.extend(self.err.try_iter());
                return st.code();
            }
            assert!(Instant::now() < deadline, "the agent did not exit within {timeout:?}: {:?}", self.stderr);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        common::interrupt_then_kill(&mut self.child);
    }
}

/// A process in a lab namespace, killed on drop.
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn in_ns(ns: &str, args: &[&str]) -> std::process::Output {
    Command::new("ip").args(["netns", "exec", ns]).args(args).output().expect("ip netns exec")
}

fn status(ns: &str) -> Value {
    let o = Command::new(rxray_bin()).args(["--netns", ns, "status", "--json"]).output().unwrap();
    assert!(o.status.success(), "rxray status: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn iface_packets(st: &Value, iface: &str) -> u64 {
    st["interfaces"].as_array().unwrap().iter().find(|i| i["interface"] == iface).and_then(|i| i["packets"].as_u64()).unwrap_or_else(|| panic!("{st}"))
}

/// `n` UDP frames from a spoofed lab source to `dport`.
fn udp(lab: &Lab, n: usize, dport: u16) -> Vec<Vec<u8>> {
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    (0..n)
        .map(|i| {
            let ip = Ipv4 { src: lab.addr4_a(), dst: lab.addr4_b(), ttl: 64, tos: 0, id: i as u16, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::UDP };
            frames::frame(&eth, &[], L3::Ipv4(ip), L4::Udp(Udp { sport: 40000 + (i % 50) as u16, dport }), b"agent")
        })
        .collect()
}

fn fw_stats(ns: &str, iface: &str) -> Value {
    let o = Command::new(rxray_bin()).args(["--netns", ns, "firewall", "stats", "--json", "-i", iface]).output().unwrap();
    assert!(o.status.success(), "firewall stats: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str::<Value>(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap()["counters"].clone()
}

/// Whether Debian's prometheus, promtool and curl are here (a test without them fails under CI).
fn have_prometheus() -> bool {
    for tool in ["prometheus", "promtool", "curl"] {
        if !have(tool) {
            skip_or_fail(&format!("{tool} is not installed (Debian's prometheus and curl packages)"));
            return false;
        }
    }
    true
}

/// Debian's Prometheus server in `ns`, scraping `target` every second (API on 127.0.0.1:19090).
fn start_prometheus(ns: &str, target: &str, dir: &Path) -> Bg {
    let prom_cfg = dir.join("prometheus.yml");
    std::fs::write(&prom_cfg, format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: rxray\n    static_configs:\n      - targets: ['{target}']\n")).unwrap();
    Bg(Command::new("ip")
        .args(["netns", "exec", ns, "prometheus"])
        .arg(format!("--config.file={}", prom_cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .args(["--web.listen-address=127.0.0.1:19090", "--log.level=warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus"))
}

/// `promtool check metrics` on a scrape: no complaint.
fn promtool_accepts(text: &str) {
    let mut p = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).stderr(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(&mut p.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let o = p.wait_with_output().unwrap();
    assert!(o.status.success() && o.stderr.is_empty() && o.stdout.is_empty(), "promtool: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

/// PromQL `q` through the Prometheus HTTP API in `ns`: the first sample's value.
fn promql(ns: &str, q: &str) -> Option<f64> {
    let url = format!("http://127.0.0.1:19090/api/v1/query?query={}", q.replace(' ', "%20").replace('{', "%7B").replace('}', "%7D").replace('"', "%22").replace('=', "%3D"));
    let o = in_ns(ns, &["curl", "-sf", "--max-time", "3", &url]);
    let v: Value = serde_json::from_slice(&o.stdout).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn the_agent_serves_exact_metrics_reloads_survives_kill_9_and_stops_cleanly() {
    if !need_root() {
        return;
    }
    if !have_prometheus() {
        return;
    }
    // A quiet sender: only the frames the test sends reach veth-b.
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let dir = TempDir::new();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\nname = \"no udp 9999\"\naction = \"deny\"\nproto = \"udp\"\ndport = 9999\n").unwrap();
    let cfg = dir.path().join("agent.toml");
    let good = format!(
        "host = \"lab-agent\"\ninterfaces = [\"{iface}\"]\n[metrics]\nlisten = \"127.0.0.1:19464\"\n[snapshot]\ninterval_ms = 200\n[firewall]\nrules = \"{}\"\n[store]\ndir = \"{}\"\nflow_period_s = 1\n",
        rules.display(),
        dir.path().join("store").display()
    );
    std::fs::write(&cfg, &good).unwrap();
    let _off = FwOff(&lab);
    let mut agent = Agent::start(&ns, &cfg);

    // 1. Exact counts through Prometheus itself.
    let sent = 700;
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &udp(&lab, sent, 5000)).unwrap(), sent);
    let prom = start_prometheus(&ns, "127.0.0.1:19464", dir.path());
    let q = format!("sum(rxray_interface_packets_total{{interface=\"{iface}\"}})");
    let got = promql_reaching(&ns, &q, sent as f64);
    assert_eq!(got, Some(sent as f64), "PromQL {q}; agent: {:?}", agent.stderr);
    drop(prom);
    let scrape = in_ns(&ns, &["curl", "-sf", "--max-time", "3", "http://127.0.0.1:19464/metrics"]);
    assert!(scrape.status.success());
    let text = String::from_utf8_lossy(&scrape.stdout).into_owned();
    assert!(text.contains("host=\"lab-agent\""), "{text}");
    assert!(text.contains("rxray_window_events_lost"), "{text}");
    promtool_accepts(&text);

    // 2. Status.
    let st = status(&ns);
    assert_eq!(st["host"], "lab-agent", "{st}");
    assert_eq!(iface_packets(&st, &iface), sent as u64, "{st}");
    assert_eq!(st["interfaces"][0]["firewall"], true, "{st}");

    // 3. SIGHUP with a bad config: rejected with its place; the agent runs on.
    std::fs::write(&cfg, format!("{good}[flows]\ncapacty = 5\n")).unwrap();
    agent.signal(libc::SIGHUP);
    agent.wait_for("reload rejected", Duration::from_secs(10));
    let line = agent.stderr.iter().find(|l| l.contains("reload rejected")).unwrap().clone();
    assert!(line.contains(&format!("{}:", cfg.display())) && line.contains("capacty"), "{line}");
    let st = status(&ns);
    assert_eq!((st["reloads"].as_u64(), st["reloads_rejected"].as_u64()), (Some(0), Some(1)), "{st}");
    // A good one is taken.
    std::fs::write(&cfg, &good).unwrap();
    agent.signal(libc::SIGHUP);
    agent.wait_for("rxray agent: reloaded", Duration::from_secs(10));
    assert_eq!(status(&ns)["reloads"].as_u64(), Some(1));

    // 4. kill -9: the firewall keeps enforcing with no agent running.
    agent.signal(libc::SIGKILL);
    agent.exit(Duration::from_secs(10));
    let before = fw_stats(&ns, &iface)["rules"][0]["packets"].as_u64().unwrap();
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &udp(&lab, 40, 9999)).unwrap(), 40);
    let after = fw_stats(&ns, &iface)["rules"][0]["packets"].as_u64().unwrap();
    assert_eq!(after - before, 40, "the rule dropped every frame with no agent running");

    // 5. A restart attaches again (through the firewall's pinned program) and carries on.
    let mut agent = Agent::start(&ns, &cfg);
    let st = status(&ns);
    let base = iface_packets(&st, &iface);
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &udp(&lab, 25, 5000)).unwrap(), 25);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(iface_packets(&status(&ns), &iface), base + 25);

    // 6. SIGTERM: a clean stop; the firewall stays pinned.
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.exit(Duration::from_secs(20)), Some(0), "{:?}", agent.stderr);
    // The store kept every packet to port 5000 exactly once, across kill -9 and the restart
    // (which adopted the firewall's pinned flow counters and did not count them again).
    let h = Command::new(rxray_bin()).args(["history", "--store"]).arg(dir.path().join("store")).args(["--port", "5000", "--json"]).output().unwrap();
    assert!(h.status.success(), "{}", String::from_utf8_lossy(&h.stderr));
    let h: Value = serde_json::from_slice(&h.stdout).unwrap();
    let stored: u64 = h["records"]["flows"].as_array().unwrap().iter().map(|f| f["packets"].as_u64().unwrap()).sum();
    assert_eq!(stored, sent as u64 + 25, "packets to port 5000 in the store ({} flow rows)", h["records"]["flows"].as_array().unwrap().len());
    assert!(!rxray_agent_socket_answers(&ns));
    let c = fw_stats(&ns, &iface);
    assert!(c["rules"][0]["packets"].as_u64().unwrap() >= 40, "{c}");
}

/// Whether `rxray status` still finds an agent.
fn rxray_agent_socket_answers(ns: &str) -> bool {
    Command::new(rxray_bin()).args(["--netns", ns, "status"]).output().unwrap().status.success()
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_lossy_window_is_never_mistaken_for_a_quiet_one() {
    if !need_root() {
        return;
    }
    if !have("curl") {
        skip_or_fail("curl is not installed");
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let dir = TempDir::new();
    let cfg = dir.path().join("agent.toml");
    // A one-page event ring: a burst cannot fit, so events are lost (the counts stay exact).
    std::fs::write(&cfg, format!("interfaces = [\"{iface}\"]\n[metrics]\nlisten = \"127.0.0.1:19465\"\n[snapshot]\ninterval_ms = 100\n[xdp]\nring_size = 4096\n[store]\nenabled = false\n")).unwrap();
    let agent = Agent::start(&ns, &cfg);
    let scrape = || String::from_utf8_lossy(&in_ns(&ns, &["curl", "-sf", "--max-time", "3", "http://127.0.0.1:19465/metrics"]).stdout).into_owned();
    let value = |text: &str, name: &str| -> u64 {
        let l = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {text}"));
        l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64
    };
    let quiet = scrape();
    assert_eq!(value(&quiet, "rxray_events_lost_total"), 0, "{quiet}");
    let sent = 5000;
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &udp(&lab, sent, 5000)).unwrap(), sent);
    std::thread::sleep(Duration::from_millis(500));
    let st = status(&ns);
    let lost = st["interfaces"][0]["events_lost"].as_u64().unwrap();
    assert!(lost > 0, "a one-page ring took a {sent}-frame burst without loss? {st}");
    assert_eq!(iface_packets(&st, &iface), sent as u64, "the counts stay exact: {st}");
    let lossy = scrape();
    assert_eq!(value(&lossy, "rxray_events_lost_total"), lost, "{lossy}");
    // The scrape's window (since the previous scrape) holds exactly the loss.
    assert_eq!(value(&lossy, "rxray_window_events_lost"), lost, "{lossy}");
    let next = scrape();
    assert_eq!(value(&next, "rxray_window_events_lost"), 0, "a window with no new loss: {next}");
    drop(agent);
}


#[test]
#[ignore = "needs root, namespaces and BPF"]
fn investigate_shows_the_scanner_alert_block_flows_and_recording_and_nothing_of_the_other_address() {
    if !need_root() {
        return;
    }
    if !have("nmap") {
        skip_or_fail("nmap is not installed (scripts/test installs it)");
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let dir = TempDir::new();
    let store = dir.path().join("store");
    let rec = dir.path().join("recorder");
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "interfaces = [\"{iface}\"]\n[metrics]\nlisten = \"off\"\n[snapshot]\ninterval_ms = 200\n[firewall]\nenforce = true\n\
             [store]\ndir = \"{}\"\n[recorder]\ndir = \"{}\"\nseconds = 1.0\n",
            store.display(),
            rec.display()
        ),
    )
    .unwrap();
    let _off = FwOff(&lab);
    let mut agent = Agent::start(&ns, &cfg);
    // Ordinary traffic from another address: 60 UDP datagrams, spoofed from .77 (nobody listens).
    let other = {
        let b = lab.addr4_b().octets();
        std::net::Ipv4Addr::new(b[0], b[1], b[2], 77)
    };
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let quiet: Vec<Vec<u8>> = (0..60)
        .map(|i| {
            let ip = Ipv4 { src: other, dst: lab.addr4_b(), ttl: 64, tos: 0, id: i, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::UDP };
            frames::frame(&eth, &[], L3::Ipv4(ip), L4::Udp(Udp { sport: 41000, dport: 5001 }), b"ordinary")
        })
        .collect();
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &quiet).unwrap(), 60);
    // The scan, bounded.
    let scanner = lab.addr4_a().to_string();
    let dst = lab.addr4_b().to_string();
    let _ = in_ns(lab.ns_a(), &["timeout", "-s", "INT", "30", "nmap", "-n", "-Pn", "-sS", "-p", "1-1000", "-T4", "--max-retries", "1", "--host-timeout", "20s", &dst]);
    // The recorder writes its file once the seconds after the alert have passed; then a clean stop
    // flushes the last batch.
    std::thread::sleep(Duration::from_millis(2500));
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.exit(Duration::from_secs(20)), Some(0), "{:?}", agent.stderr);

    let store_s = store.to_str().unwrap();
    let inv = rx_json(&["investigate", &scanner, "--store", store_s, "--window", "1h", "--json"]);
    let r = &inv["records"];
    let alerts = r["alerts"].as_array().unwrap();
    assert!(alerts.iter().any(|a| a["detector"] == "port_scan_vertical"), "no scan alert: {inv}");
    let blocks: Vec<&Value> = r["mitigations"].as_array().unwrap().iter().filter(|m| m["kind"] == "block").collect();
    assert!(blocks.iter().any(|m| m["target"] == format!("{scanner}/32") && m["ttl_s"].as_u64().unwrap() > 0), "no block with a TTL: {inv}");
    assert!(blocks.iter().any(|m| m["enforced"].to_string().contains("block")), "the block was carried out: {inv}");
    let flows = r["flows"].as_array().unwrap();
    assert!(flows.len() >= 100, "the scanner's flows ({}): {inv}", flows.len());
    assert!(flows.iter().all(|f| f["src"] == scanner.as_str() || f["dst"] == scanner.as_str()), "only the scanner's flows");
    let recs = inv["recordings"].as_array().unwrap();
    assert!(!recs.is_empty() && recs.iter().all(|p| Path::new(p.as_str().unwrap()).starts_with(&rec)), "the recorder's file: {inv}");
    let text = inv.to_string();
    assert!(!text.contains(&other.to_string()), "nothing of {other} in the scanner's investigation");

    // The other address: exactly its 60 datagrams, and no alert.
    let h = rx_json(&["history", "--store", store_s, "--addr", &other.to_string(), "--json"]);
    let f = h["records"]["flows"].as_array().unwrap();
    let packets: u64 = f.iter().map(|x| x["packets"].as_u64().unwrap()).sum();
    assert_eq!(packets, 60, "{h}");
    assert!(f.iter().all(|x| x["dport"] == 5001 && x["src"] == other.to_string().as_str()), "{h}");
    assert!(h["records"]["alerts"].as_array().unwrap().is_empty(), "{h}");
    // Filters: by port, and by detector.
    let by_port = rx_json(&["history", "--store", store_s, "--port", "5001", "--json"]);
    assert_eq!(by_port["records"]["flows"].as_array().unwrap().iter().map(|x| x["packets"].as_u64().unwrap()).sum::<u64>(), 60);
    let by_det = rx_json(&["history", "--store", store_s, "--detector", "port_scan_vertical", "--json"]);
    assert!(!by_det["records"]["alerts"].as_array().unwrap().is_empty() && by_det["records"]["flows"].as_array().unwrap().is_empty(), "{by_det}");
    assert_eq!(by_det["records"]["completeness"]["batches_lost"], 0, "{by_det}");
    // Offline, from the recorder's captures, through the same engine: the scanner's flows.
    let off = rx_json(&["investigate", &scanner, "--captures", rec.to_str().unwrap(), "--json"]);
    assert!(!off["records"]["flows"].as_array().unwrap().is_empty(), "{off}");
    assert_eq!(off["source"], "captures");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn idle_flows_leave_the_kernel_table_with_a_closing_row_and_exact_counts() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let dir = TempDir::new();
    let store = dir.path().join("store");
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!("interfaces = [\"{iface}\"]\n[metrics]\nlisten = \"off\"\n[snapshot]\ninterval_ms = 200\n[store]\ndir = \"{}\"\nflow_idle_s = 1\n", store.display()),
    )
    .unwrap();
    let mut agent = Agent::start(&ns, &cfg);
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &udp(&lab, 100, 6000)).unwrap(), 100);
    std::thread::sleep(Duration::from_millis(400));
    let live = status(&ns)["interfaces"][0]["flows"].as_u64().unwrap();
    assert_eq!(live, 50, "50 flows (sports 40000..40049) while they are fresh");
    // Idle for over a second: written as closed and removed from the kernel's table.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(status(&ns)["interfaces"][0]["flows"].as_u64(), Some(0), "idle flows left the table");
    // The same flows again: they come back as new entries, counted from zero, never twice.
    assert_eq!(send_frames(lab.ns_a(), lab.if_a(), &udp(&lab, 100, 6000)).unwrap(), 100);
    std::thread::sleep(Duration::from_millis(600));
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.exit(Duration::from_secs(20)), Some(0), "{:?}", agent.stderr);
    let h = rx_json(&["history", "--store", store.to_str().unwrap(), "--port", "6000", "--json"]);
    let rows = h["records"]["flows"].as_array().unwrap();
    let packets: u64 = rows.iter().map(|f| f["packets"].as_u64().unwrap()).sum();
    assert_eq!(packets, 200, "every packet once, across the removal ({} rows)", rows.len());
    assert!(rows.iter().filter(|f| f["closed"] == true).count() >= 50, "each flow's closing row");
}

/// An agent on the lab's b side writing its store, with `extra` config lines; (its dir, the store, the agent).
fn store_agent(lab: &Lab, extra: &str) -> (TempDir, std::path::PathBuf, Agent) {
    let dir = TempDir::new();
    let store = dir.path().join("store");
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "interfaces = [\"{}\"]\n[metrics]\nlisten = \"off\"\n[snapshot]\ninterval_ms = 200\n[detect]\nenabled = false\n{extra}[store]\ndir = \"{}\"\nflow_period_s = 1\n",
            lab.if_b(),
            store.display()
        ),
    )
    .unwrap();
    let agent = Agent::start(lab.ns_b(), &cfg);
    (dir, store, agent)
}

/// A server that says its pid, waits to be put in a cgroup, reads `n` bytes, answers `m`, closes.
const CONN_SERVER: &str = r#"
import os, socket, sys
n, m, host, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket(); s.settimeout(30)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((host, port)); s.listen(8)
print("ready", os.getpid(), flush=True)
c, _ = s.accept(); c.settimeout(30); got = 0
while got < n:
    d = c.recv(min(4096, n - got))
    if not d: break
    got += len(d)
c.sendall(b"m" * m)
c.close(); s.close()
print("done", got, flush=True)
sys.stdin.readline()
"#;

/// A client that sends `n1` bytes, pauses (the agent writes a live row meanwhile), sends `n2`, reads to the end.
const CONN_CLIENT: &str = r#"
import socket, sys, time
n1, n2, pause, host, port = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
k = socket.create_connection((host, port), timeout=30); k.sendall(b"a" * n1)
time.sleep(pause)
k.sendall(b"b" * n2); got = 0
while True:
    d = k.recv(65536)
    if not d: break
    got += len(d)
print("got", got, k.getsockname()[1], flush=True)
k.close()
"#;

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn the_agent_stores_connections_with_exact_bytes_process_and_cgroup() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let (_dir, store, mut agent) = store_agent(&lab, "");
    let (n1, n2, m, port) = (30_000u64, 45_678u64, 12_345u64, 5203u16);
    let cg = Cgroup::new();
    let mut server = Kid::python(&lab, lab.ns_b(), CONN_SERVER, &[(n1 + n2).to_string(), m.to_string(), lab.addr4_b().to_string(), port.to_string()]);
    let pid: u32 = server.line().strip_prefix("ready ").expect("ready <pid>").parse().unwrap();
    cg.add(pid);
    let mut client = Kid::python(&lab, lab.ns_a(), CONN_CLIENT, &[n1.to_string(), n2.to_string(), "2.5".into(), lab.addr4_b().to_string(), port.to_string()]);
    assert_eq!(server.line(), format!("done {}", n1 + n2));
    let got = client.line();
    assert!(got.starts_with(&format!("got {m} ")), "{got}");
    let cport: u64 = got.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(client.wait(Duration::from_secs(10)));
    // The close reaches the agent through its ring; then a clean stop writes the last batch.
    std::thread::sleep(Duration::from_millis(1000));
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.exit(Duration::from_secs(20)), Some(0), "{:?}", agent.stderr);
    server.say("bye");
    assert!(server.wait(Duration::from_secs(10)));

    let store_s = store.to_str().unwrap();
    let a4 = lab.addr4_a().to_string();
    let h = rx_json(&["history", "--store", store_s, "--port", &port.to_string(), "--json"]);
    let rows: Vec<&Value> = h["records"]["conns"].as_array().unwrap().iter().filter(|c| c["lport"] == port).collect();
    // The connection's rows: at least the one written while it paused, and exactly one closing row.
    assert!(rows.len() >= 2, "a live row during the pause and the closing row: {h}");
    assert_eq!(rows.iter().filter(|c| c["closed"] == true).count(), 1, "{h}");
    assert_eq!(rows.last().unwrap()["closed"], true, "the closing row is the last: {h}");
    // Their bytes sum exactly to what each side sent.
    let sum = |k: &str| rows.iter().map(|c| c[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("bytes_in"), sum("bytes_out"), sum("retrans")), (n1 + n2, m, 0), "{h}");
    for c in &rows {
        assert_eq!((c["remote"].as_str(), c["rport"].as_u64(), c["local"].as_str()), (Some(a4.as_str()), Some(cport), Some(lab.addr4_b().to_string().as_str())), "{c}");
        // Rows written before the server read anything have no reader yet; every other names it.
        if !c["pid"].is_null() {
            assert_eq!((c["pid"].as_u64(), c["comm"].as_str(), c["cgroup"].as_str()), (Some(pid as u64), Some("python3"), Some(cg.rel().as_str())), "{c}");
        }
    }
    let last = rows.last().unwrap();
    assert_eq!(last["pid"].as_u64(), Some(pid as u64), "the closing row names the reader: {last}");
    let srtt = last["srtt_us"].as_u64().unwrap();
    assert!(srtt > 0 && srtt < 100_000, "veth RTT: {last}");
    assert!(rows.windows(2).all(|w| w[0]["ts_end"].as_u64() <= w[1]["ts_start"].as_u64().map(|x| x + 1)), "rows follow each other: {h}");
    // Filters: udp has no connections; another address none of these.
    let udp = rx_json(&["history", "--store", store_s, "--port", &port.to_string(), "--proto", "udp", "--json"]);
    assert!(udp["records"]["conns"].as_array().unwrap().is_empty(), "{udp}");
    let other = rx_json(&["history", "--store", store_s, "--addr", "198.18.0.77", "--json"]);
    assert!(other["records"]["conns"].as_array().unwrap().is_empty(), "{other}");
    // investigate: the client's connection with its process and cgroup in the timeline.
    let inv = rx_json(&["investigate", &a4, "--store", store_s, "--window", "1h", "--json"]);
    let line = inv["timeline"].as_array().unwrap().iter().filter_map(|t| t["line"].as_str()).find(|l| l.contains(" conn ") && l.contains("(closed)")).unwrap_or_else(|| panic!("{inv}")).to_string();
    assert!(line.contains(&format!("pid {pid} python3 cgroup {}", cg.rel())), "{line}");
    let inv_rows = inv["records"]["conns"].as_array().unwrap().iter().filter(|c| c["lport"] == port).count();
    assert_eq!(inv_rows, rows.len(), "{inv}");
}

/// A UDP server that, once in its cgroup (a line on stdin), lets each of `n` datagrams wait `delay`
/// seconds in its socket before reading it, and acknowledges it (the client sends the next then).
const SLOW_READER: &str = r#"
import os, socket, sys, time
host, port, n, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((host, port)); s.settimeout(30)
print("ready", os.getpid(), flush=True)
sys.stdin.readline()
print("go", flush=True)
for _ in range(n):
    s.recvfrom(1, socket.MSG_PEEK)
    time.sleep(delay)
    d, peer = s.recvfrom(65536)
    s.sendto(b"ok", peer)
print("done", flush=True)
"#;

const ACKED_SENDER: &str = r#"
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
k = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); k.settimeout(30); k.connect((host, port))
for i in range(n):
    k.send(b"datagram %d" % i)
    assert k.recv(8) == b"ok"
print("sent", k.getsockname()[1], flush=True)
"#;

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn the_agent_rolls_delivery_latency_up_per_minute_with_exact_counts() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let (_dir, store, mut agent) = store_agent(&lab, "[latency]\nenabled = true\n");
    let (n, delay_ms, port) = (20u64, 30u64, 5204u16);
    let cg = Cgroup::new();
    let b4 = lab.addr4_b().to_string();
    let mut server = Kid::python(&lab, lab.ns_b(), SLOW_READER, &[b4.clone(), port.to_string(), n.to_string(), (delay_ms as f64 / 1000.0).to_string()]);
    let pid: u32 = server.line().strip_prefix("ready ").expect("ready <pid>").parse().unwrap();
    cg.add(pid);
    server.say("go");
    assert_eq!(server.line(), "go");
    let mut client = Kid::python(&lab, lab.ns_a(), ACKED_SENDER, &[b4, port.to_string(), n.to_string()]);
    let cport: u64 = client.line().strip_prefix("sent ").expect("sent <port>").parse().unwrap();
    assert_eq!(server.line(), "done");
    assert!(client.wait(Duration::from_secs(10)) && server.wait(Duration::from_secs(10)));
    // A snapshot after the last read, then a clean stop writes the minute still open.
    std::thread::sleep(Duration::from_millis(600));
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.exit(Duration::from_secs(20)), Some(0), "{:?}", agent.stderr);
    assert!(!agent.stderr.iter().any(|l| l.contains("[latency] is not run")), "{:?}", agent.stderr);

    let store_s = store.to_str().unwrap();
    let a4 = lab.addr4_a().to_string();
    let h = rx_json(&["history", "--store", store_s, "--json"]);
    let lat = h["records"]["latency"].as_array().unwrap();
    let read = |f: &dyn Fn(&Value) -> bool| -> Vec<&Value> { lat.iter().filter(|l| l["stage"] == "read" && f(l)).collect() };
    // Per remote end: the client's datagrams, each read once.
    let remote = read(&|l| l["remote"] == a4.as_str() && l["rport"].as_u64() == Some(cport));
    assert_eq!(remote.iter().map(|l| l["hist"]["count"].as_u64().unwrap()).sum::<u64>(), n, "{h}");
    // Per process: the server's reads, with its cgroup.
    let proc_rows = read(&|l| l["pid"].as_u64() == Some(pid as u64));
    assert_eq!(proc_rows.iter().map(|l| l["hist"]["count"].as_u64().unwrap()).sum::<u64>(), n, "{h}");
    for l in &proc_rows {
        assert_eq!((l["comm"].as_str(), l["cgroup"].as_str(), l["res"].as_u64()), (Some("python3"), Some(cg.rel().as_str()), Some(60)), "{l}");
        // Each datagram waited the sleep: the median is at least that (within the buckets' 12.5%).
        let p50 = l["hist"]["p50_ns"].as_u64().unwrap();
        assert!(p50 as f64 >= delay_ms as f64 * 1e6 * 0.875, "{l}");
        assert_eq!(l["hist"]["buckets"].as_array().unwrap().iter().map(|b| b[1].as_u64().unwrap()).sum::<u64>(), l["hist"]["count"].as_u64().unwrap(), "{l}");
    }
    // investigate the client: its latency rows are in the timeline; another address has none.
    let inv = rx_json(&["investigate", &a4, "--store", store_s, "--window", "1h", "--json"]);
    assert_eq!(inv["records"]["latency"].as_array().unwrap().iter().filter(|l| l["stage"] == "read").map(|l| l["hist"]["count"].as_u64().unwrap()).sum::<u64>(), n, "{inv}");
    assert!(inv["timeline"].as_array().unwrap().iter().any(|t| t["line"].as_str().unwrap_or("").contains(" latency read from ")), "{inv}");
    let none = rx_json(&["investigate", "198.18.0.77", "--store", store_s, "--window", "1h", "--json"]);
    assert!(none["records"]["latency"].as_array().unwrap().is_empty(), "{none}");
}

/// Waits (bounded, 40 s) until PromQL `q` answers at least `want`; returns its answer then.
fn promql_reaching(ns: &str, q: &str, want: f64) -> Option<f64> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let v = promql(ns, q);
        if v.is_some_and(|v| v >= want) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

const REFUSED: &str = r#"
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10); print("connected", flush=True)
except ConnectionRefusedError:
    print("refused", flush=True)
"#;

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn connection_and_latency_metrics_answer_promql_with_exact_counts() {
    if !need_root() {
        return;
    }
    if !have_prometheus() {
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let ns = lab.ns_b().to_string();
    // Prometheus runs in the lab's other namespace and scrapes b's address: its queries and the
    // test's are then no TCP connections of b's (its one scrape connection stays open).
    let pns = lab.ns_a().to_string();
    let target = format!("{}:19464", lab.addr4_b());
    let dir = TempDir::new();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, format!("host = \"lab-agent\"\ninterfaces = [\"{}\"]\n[metrics]\nlisten = \"{target}\"\n[snapshot]\ninterval_ms = 200\n[detect]\nenabled = false\n[store]\nenabled = false\n[latency]\nenabled = true\n", lab.if_b())).unwrap();
    let agent = Agent::start(&ns, &cfg);
    let _prom = start_prometheus(&pns, &target, dir.path());
    let b4 = lab.addr4_b().to_string();

    // 1. Delivery latency: n datagrams, each read once, in the `read` stage's histogram.
    let n = 12u64;
    let mut server = Kid::python(&lab, lab.ns_b(), SLOW_READER, &[b4.clone(), "5205".into(), n.to_string(), "0.02".into()]);
    server.line();
    server.say("go");
    assert_eq!(server.line(), "go");
    let mut client = Kid::python(&lab, lab.ns_a(), ACKED_SENDER, &[b4.clone(), "5205".into(), n.to_string()]);
    client.line();
    assert_eq!(server.line(), "done");
    let q = "sum(rxray_delivery_latency_seconds_count{stage=\"read\"})";
    assert_eq!(promql_reaching(&pns, q, n as f64), Some(n as f64), "PromQL {q}; agent: {:?}", agent.stderr);
    // Each waited at least 20 ms: none is in a bucket at or below 10 ms.
    assert_eq!(promql(&pns, "sum(rxray_delivery_latency_seconds_bucket{stage=\"read\",le=\"0.01\"})"), Some(0.0));

    // 2. Connections: k closed with exact bytes, and one SYN to a closed port (a reset sent with
    // no socket).
    let k = 3u64;
    for i in 0..k {
        let port = (5210 + i).to_string();
        let mut s = Kid::python(&lab, lab.ns_b(), CONN_SERVER, &["1000".into(), "500".into(), b4.clone(), port.clone()]);
        s.line();
        let mut c = Kid::python(&lab, lab.ns_a(), CONN_CLIENT, &["600".into(), "400".into(), "0".into(), b4.clone(), port]);
        assert!(c.line().starts_with("got 500 "));
        assert!(s.line().starts_with("done 1000"));
        s.say("bye");
        assert!(s.wait(Duration::from_secs(10)) && c.wait(Duration::from_secs(10)));
    }
    let mut refused = Kid::python(&lab, lab.ns_a(), REFUSED, &[b4.clone(), "5299".into()]);
    assert_eq!(refused.line(), "refused");
    for (q, want) in [
        ("sum(rxray_connection_handshake_seconds_count)", k),
        ("sum(rxray_connection_rtt_seconds_count)", k),
        ("sum(rxray_tcp_resets_no_socket_total)", 1),
    ] {
        assert_eq!(promql_reaching(&pns, q, want as f64), Some(want as f64), "PromQL {q}; agent: {:?}", agent.stderr);
    }
    // Opened: the k, and Prometheus' scrape connection (open); closed: the k.
    assert_eq!(promql(&pns, "sum(rxray_connections_opened_total)"), Some(k as f64 + 1.0));
    assert_eq!(promql(&pns, "sum(rxray_connections_closed_total)"), Some(k as f64));
    // promtool accepts the scrape with every family on.
    let scrape = in_ns(&pns, &["curl", "-sf", "--max-time", "3", &format!("http://{target}/metrics")]);
    let text = String::from_utf8_lossy(&scrape.stdout).into_owned();
    for fam in ["rxray_connections_opened_total", "rxray_connections_closed_total", "rxray_connection_rtt_seconds_bucket", "rxray_delivery_latency_seconds_bucket"] {
        assert!(text.contains(fam), "{fam}: {text}");
    }
    promtool_accepts(&text);
}
