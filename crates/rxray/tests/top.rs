//! `rxray top` in a real terminal (tmux, 80×24) in a lab namespace: the sender's address appears
//! with exactly the packets sent, the filter key narrows the view to what the filter selects, and
//! `q` quits leaving the terminal restored (main screen, cursor shown, cooked mode). Joined to an
//! agent, its drops, alerts (with the firewall's action) and HTTP panes show what the lab sent, and
//! the detail view is the agent's store's `investigate` timeline.
mod common;
use common::web;
use common::*;
use rxray_lab::frames::{self, ipproto, tcp_flags as F, Eth, Ipv4, Tcp, Udp, L3, L4};
use rxray_lab::tmux::{cooked, Tmux, AFTER};
use rxray_lab::{send_frames, Lab};
use std::process::Command;
use std::time::Duration;

/// The packets column of the row that starts with `addr` in the sources pane (None: no such row).
fn packets_of(screen: &str, addr: &str) -> Option<u64> {
    screen.lines().find_map(|l| {
        let cells: Vec<&str> = l.split(['│', ' ']).filter(|c| !c.is_empty()).collect();
        let i = cells.iter().position(|c| *c == addr)?;
        cells.get(i + 1)?.parse().ok()
    })
}

/// Root (namespaces, BPF) and tmux are there; otherwise skips (or fails under CI=true).
fn can_run() -> bool {
    if !need_root() {
        return false;
    }
    if !have("tmux") {
        skip_or_fail("needs tmux (apt-get install tmux)");
        return false;
    }
    true
}

/// After `q`: rxray exited 0 and left the terminal as it found it (main screen, cursor shown,
/// cooked mode); the final screen.
fn quits_restored(t: &Tmux) -> String {
    t.keys(&["q"]);
    let s = t.wait_for(Duration::from_secs(30), "rxray to exit", |s| s.contains("END"));
    assert!(s.contains("rc=0"), "{s}");
    assert_eq!(t.var("alternate_on"), "0", "still on the alternate screen:\n{s}");
    assert_eq!(t.var("cursor_flag"), "1", "cursor hidden:\n{s}");
    assert!(cooked(&s), "the tty is not back in cooked mode:\n{s}");
    s
}

/// A UDP frame from the lab's sender with IPv4 id `id`.
fn udp(lab: &Lab, id: u16, sport: u16, dport: u16) -> Vec<u8> {
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let ip = Ipv4 { src: lab.addr4_a(), dst: lab.addr4_b(), ttl: 64, tos: 0, id, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::UDP };
    frames::frame(&eth, &[], L3::Ipv4(ip), L4::Udp(Udp { sport, dport }), b"lab")
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn top_shows_the_sender_filters_live_and_quits() {
    if !can_run() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let script = format!("ip netns exec {} {} top -i veth-b --interval 0.3; {AFTER}", lab.ns_b(), rxray_bin());
    let t = Tmux::start(&script, 80, 24);
    // The dashboard is drawn once everything is attached.
    t.wait_var("alternate_on", "1", Duration::from_secs(60));
    t.wait_for(Duration::from_secs(30), "the dashboard", |s| s.contains("1:All") && s.contains("Top sources"));

    // 200 UDP frames to port 53 and 100 TCP frames to port 443, all from the sender's address.
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let ip = |proto, id| Ipv4 {
        src: lab.addr4_a(), dst: lab.addr4_b(), ttl: 64, tos: 0, id, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: proto,
    };
    let mut frames_out: Vec<Vec<u8>> = (0..200u16).map(|i| udp(&lab, i, 30000 + i % 20, 53)).collect();
    for i in 0..100u16 {
        let tcp = Tcp { sport: 40000 + i % 10, dport: 443, seq: i as u32, ack: 1, flags: F::ACK | F::PSH, window: 100, urgent: 0, options: vec![] };
        frames_out.push(frames::frame(&eth, &[], L3::Ipv4(ip(ipproto::TCP, i)), L4::Tcp(tcp), b"hello"));
    }
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &frames_out).expect("send"), 300);
    let sender = lab.addr4_a().to_string();
    let s = t.wait_for(Duration::from_secs(20), "the sender with its 300 packets", |s| packets_of(s, &sender) == Some(300));
    assert!(s.contains("53/udp") && s.contains("443/tcp"), "both ports before the filter:\n{s}");

    // The filter key: only the TCP flows are left, so the sender has its 100 TCP packets.
    t.keys(&["/"]);
    t.type_text("tcp");
    t.keys(&["Enter"]);
    let s = t.wait_for(Duration::from_secs(20), "the filtered view", |s| s.contains("filter tcp") && packets_of(s, &sender) == Some(100));
    assert!(s.contains("443/tcp") && !s.contains("53/udp"), "the filter left UDP in the view:\n{s}");

    quits_restored(&t);
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn the_demo_on_a_terminal_is_the_dashboard() {
    if !can_run() {
        return;
    }
    let script = format!("{} demo --seconds 3 --flows 30 --no-protect; {AFTER}", rxray_bin());
    let t = Tmux::start(&script, 100, 30);
    t.wait_var("alternate_on", "1", Duration::from_secs(60));
    // The demo's sender (198.18.0.1, the lab's first address) shows up with packets.
    t.wait_for(Duration::from_secs(30), "the demo's dashboard with the sender", |s| {
        s.contains("demo lab: veth-b") && packets_of(s, "198.18.0.1").is_some_and(|n| n > 0)
    });
    let s = quits_restored(&t);
    assert!(s.contains("demo done; removing the lab"), "{s}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn top_joins_the_agent_of_its_namespace() {
    if !can_run() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let dir = TempDir::new();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, "host = \"top-lab\"\ninterfaces = [\"veth-b\"]\n[metrics]\nlisten = \"off\"\n[store]\nenabled = false\n").unwrap();
    let mut agent = Running::start_netns(lab.ns_b(), &["agent", "--config", cfg.to_str().unwrap()]);
    agent.wait_stderr("SIGHUP reloads", Duration::from_secs(30));
    let script = format!("{} --netns {} top -i veth-b --interval 0.3; {AFTER}", rxray_bin(), lab.ns_b());
    let t = Tmux::start(&script, 80, 24);
    t.wait_for(Duration::from_secs(30), "top joined to the agent", |s| s.contains("joined the agent of top-lab"));
    let frames_out: Vec<Vec<u8>> = (0..250u16).map(|i| udp(&lab, i, 31000 + i % 5, 5353)).collect();
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &frames_out).expect("send"), 250);
    // Counted from the join: exactly what was sent after it.
    let sender = lab.addr4_a().to_string();
    t.wait_for(Duration::from_secs(20), "the sender with its 250 packets, through the agent", |s| packets_of(s, &sender) == Some(250));
    quits_restored(&t);
}

/// An agent in the lab's second namespace with `cfg` (TOML); it is ready when this returns.
fn agent_in(lab: &Lab, dir: &TempDir, cfg: &str) -> Running {
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, cfg).unwrap();
    let mut agent = Running::start_netns(lab.ns_b(), &["agent", "--config", file.to_str().unwrap()]);
    agent.wait_stderr("SIGHUP reloads", Duration::from_secs(60));
    agent
}

/// `rxray top` joined to the lab's agent in a 200×60 terminal (every pane on the overview).
fn top_joined(lab: &Lab) -> Tmux {
    let script = format!("{} --netns {} top -i {} --interval 0.3; {AFTER}", rxray_bin(), lab.ns_b(), lab.if_b());
    let t = Tmux::start(&script, 200, 60);
    t.wait_for(Duration::from_secs(30), "top joined to the agent", |s| s.contains("joined the agent of top-lab"));
    t
}

/// Opens the detail view of the selected row until it shows the store's timeline with `want`
/// (the store is written every second: the first tries may come before the rows do); scrolls
/// down a page at a time to find it. Returns the screen that has it.
fn store_detail(t: &Tmux, what: &str, want: impl Fn(&str) -> bool) -> String {
    for _ in 0..20 {
        t.keys(&["Enter"]);
        let s = t.wait_for(Duration::from_secs(10), "the detail view", |s| s.contains("Detail: "));
        assert!(s.contains("investigate timeline from the store"), "the detail is not the store's:\n{s}");
        let mut last = s;
        for _ in 0..40 {
            if want(&last) {
                return last;
            }
            t.keys(&["PageDown"]);
            std::thread::sleep(Duration::from_millis(100));
            let next = t.screen();
            if next == last {
                break;
            }
            last = next;
        }
        t.keys(&["Escape"]);
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("the store's timeline never showed {what}:\n{}", t.screen());
}

/// Joined to an agent with its HTTP view, drop counts and store on: 40 UDP datagrams to a port
/// nobody listens on are 40 NO_SOCKET drops in the drops pane; curl's requests to nginx are the
/// HTTP pane's rows with curl's counts; and the detail of the sender is its `investigate`
/// timeline from the agent's store, with its 40 datagrams.
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn top_joined_shows_the_agents_drops_http_and_store_detail() {
    if !can_run() {
        return;
    }
    for tool in ["nginx", "curl"] {
        if !have(tool) {
            return skip_or_fail(&format!("{tool} is not installed"));
        }
    }
    let dir = TempDir::new();
    let lab = Lab::pair(&unique_name()).expect("lab");
    let (www, _) = web::web_roots(&dir);
    let server = lab.addr4_b().to_string();
    let _nginx = web::Nginx::start(&lab, lab.ns_b(), &server, 8080, &www, dir.path());
    let store = dir.path().join("store");
    let cfg = format!(
        "host = \"top-lab\"\ninterfaces = [\"{}\"]\n[metrics]\nlisten = \"off\"\n[snapshot]\ninterval_ms = 200\n[http]\nenabled = true\nports = [8080]\n[store]\ndir = \"{}\"\nflow_period_s = 1\n",
        lab.if_b(),
        store.display()
    );
    let _agent = agent_in(&lab, &dir, &cfg);
    let t = top_joined(&lab);
    let sender = lab.addr4_a().to_string();

    // (a) Drops: 40 datagrams to port 5001, where nobody listens.
    t.keys(&["7"]);
    t.wait_for(Duration::from_secs(10), "the drops pane", |s| s.contains("Kernel drops by reason"));
    let frames_out: Vec<Vec<u8>> = (0..40u16).map(|i| udp(&lab, i, 41000, 5001)).collect();
    assert_eq!(send_frames(lab.ns_a(), "veth-a", &frames_out).expect("send"), 40);
    let s = t.wait_for(Duration::from_secs(20), "40 NO_SOCKET drops", |s| packets_of(s, "NO_SOCKET") == Some(40));
    assert!(!s.contains("not sent over the join"), "{s}");

    // (c) HTTP: 12 requests for /api/items/N and 3 for /index.html, as curl reports them.
    let items: Vec<String> = (1..=12).map(|i| format!("http://{server}:8080/api/items/{i}")).collect();
    let index: Vec<String> = (0..3).map(|_| format!("http://{server}:8080/index.html")).collect();
    let codes: Vec<u16> = [web::curl(&lab, lab.ns_a(), &[], &items), web::curl(&lab, lab.ns_a(), &[], &index)].concat();
    assert!(codes.iter().all(|c| *c == 200), "curl: {codes:?}");
    t.keys(&["9"]);
    let (items_t, index_t) = (web::expected_template("/api/items/1"), web::expected_template("/index.html"));
    let s = t.wait_for(Duration::from_secs(20), "curl's requests in the HTTP pane", |s| {
        packets_of(s, &items_t) == Some(12) && packets_of(s, &index_t) == Some(3)
    });
    assert!(s.contains("Top HTTP endpoints (15 requests)"), "{s}");
    // The loss line has the agent's parts: its detectors, drop counts and HTTP view all run.
    t.keys(&["1"]);
    t.wait_for(Duration::from_secs(10), "the agent's parts on the loss line", |s| {
        s.contains("detector events ") && s.contains("drop events lost 0") && s.contains("HTTP lost 0")
    });

    // The detail of the sender (the top source): its investigate timeline from the agent's store,
    // with the 40 datagrams to port 5001 (in one row or more, as the store's periods cut them).
    t.keys(&["4"]);
    t.wait_for(Duration::from_secs(10), "the sender in the sources pane", |s| packets_of(s, &sender).is_some());
    let to_5001 = format!("> {server}:5001:");
    let s = store_detail(&t, "the sender's 40 datagrams", |s| {
        let n: u64 = s
            .lines()
            .filter(|l| l.contains(" flow ") && l.contains(&format!("{sender}:41000")) && l.contains(&to_5001))
            .filter_map(|l| l.split(&to_5001).nth(1)?.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        n == 40
    });
    assert!(s.contains(&format!("Detail: {sender}")) && s.contains(&format!("rxray investigate {sender}")), "{s}");
    t.keys(&["Escape"]);
    quits_restored(&t);
}

/// Joined to an agent that detects and enforces: an nmap scan from the lab's sender is a
/// port-scan alert with the block of the sender (carried out, with its TTL) in the alerts pane,
/// and the detail of that alert's source shows the alert and the block from the agent's store.
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn top_joined_shows_the_agents_alert_and_block() {
    if !can_run() {
        return;
    }
    if !have("nmap") {
        return skip_or_fail("nmap is not installed (scripts/test installs it)");
    }
    let dir = TempDir::new();
    let lab = Lab::pair(&unique_name()).expect("lab");
    let store = dir.path().join("store");
    let cfg = format!(
        "host = \"top-lab\"\ninterfaces = [\"{}\"]\n[metrics]\nlisten = \"off\"\n[snapshot]\ninterval_ms = 200\n[firewall]\nenforce = true\n[store]\ndir = \"{}\"\nflow_period_s = 1\n",
        lab.if_b(),
        store.display()
    );
    let _off = FwOff(&lab);
    let _agent = agent_in(&lab, &dir, &cfg);
    let t = top_joined(&lab);
    t.keys(&["8"]);
    t.wait_for(Duration::from_secs(10), "the alerts pane", |s| s.contains("Recent alerts and firewall actions (0)"));

    let (scanner, target) = (lab.addr4_a().to_string(), lab.addr4_b().to_string());
    let out = lab
        .exec(lab.ns_a(), ["timeout", "-s", "INT", "30", "nmap", "-n", "-Pn", "-sS", "-p", "1-200", "-T4", "--max-retries", "1", "--host-timeout", "20s", &target])
        .output()
        .expect("nmap");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Nmap"), "nmap ran: {out:?}");
    let block = format!("block {scanner}/32 ");
    let alert_row = |s: &str| {
        s.lines().any(|l| l.contains("port_scan_vert") && l.contains(&scanner) && l.contains(&block) && !l.contains("would"))
    };
    let s = t.wait_for(Duration::from_secs(20), "the scan alert and its block", alert_row);
    // The TTL, as the action column shows it: "block ADDR/32 600s".
    let ttl = s.lines().find(|l| alert_row(l)).and_then(|l| l.split(&block).nth(1)?.split('s').next()?.parse::<u64>().ok());
    assert!(ttl.is_some_and(|t| t > 0), "no TTL in the action:\n{s}");
    // The block is real: the firewall's dynamic block list has the scanner.
    let fw = Command::new(rxray_bin()).args(["--netns", lab.ns_b(), "firewall", "list", "-i", lab.if_b()]).output().expect("firewall list");
    assert!(String::from_utf8_lossy(&fw.stdout).contains(&format!("{scanner}/32")), "the firewall has no block of {scanner}: {fw:?}");

    // The alert's source, in detail: the agent's store has the alert and the mitigation.
    t.keys(&["Home"]);
    let s = store_detail(&t, "the scan alert and the block", |s| {
        s.contains("alert port_scan_vertical") && s.contains(&format!("mitigation block {scanner}/32"))
    });
    assert!(s.contains(&format!("Detail: {scanner}")), "{s}");
    t.keys(&["Escape"]);
    quits_restored(&t);
}
