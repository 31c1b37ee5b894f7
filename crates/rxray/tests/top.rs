//! `rxray top` in a real terminal (tmux, 80×24) in a lab namespace: the sender's address appears
//! with exactly the packets sent, the filter key narrows the view to what the filter selects, and
//! `q` quits leaving the terminal restored (main screen, cursor shown, cooked mode).
mod common;
use common::*;
use rxray_lab::frames::{self, ipproto, tcp_flags as F, Eth, Ipv4, Tcp, Udp, L3, L4};
use rxray_lab::tmux::{cooked, Tmux, AFTER};
use rxray_lab::{send_frames, Lab};
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
