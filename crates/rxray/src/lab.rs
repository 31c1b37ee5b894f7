//! `rxray lab up|down|status` (the test fixture's namespaces, for people) and `rxray demo`.
use crate::{flows, line, session};
use anyhow::{bail, Context, Result};
use rxray_engine::flows::{RateTracker, SortBy};
use rxray_engine::source::{Event, Source as _};
use rxray_kernel::{AttachMode, Ingress, IngressOptions, LiveSource};
use rxray_lab::frames::{self, ipproto, tcp_flags as F, Eth, Icmp, Icmpv6, Ipv4, Ipv6, Tcp, TcpOpt, Udp, L3, L4};
use rxray_lab::{send_frames, send_frames_paced, Lab};
use std::{
    collections::VecDeque,
    fs::File,
    io::IsTerminal,
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
    sync::Arc,
    time::{Duration, Instant},
};

/// `rxray lab up` names its namespaces LAB_NAME-a and LAB_NAME-b.
pub const LAB_NAME: &str = "rxlab";
const DEMO_PREFIX: &str = "rxdemo";

#[derive(clap::Subcommand)]
pub enum LabCmd {
    /// Create two namespaces joined by a veth pair (198.18.0.0/24, 2001:2::/64), no route out.
    Up,
    /// Remove the lab's namespaces (and any a killed demo left).
    Down,
    /// Show the lab's namespaces and addresses.
    Status,
}

fn ns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

pub fn lab(cmd: LabCmd) -> Result<()> {
    session::require_root()?;
    let (a, b) = (format!("{LAB_NAME}-a"), format!("{LAB_NAME}-b"));
    match cmd {
        LabCmd::Up => {
            if ns_exists(&a) || ns_exists(&b) {
                bail!("the lab is already up (`rxray lab status`; `rxray lab down` removes it)");
            }
            let lab = Lab::pair(LAB_NAME).context("creating the lab")?;
            println!(
                "lab up: {a} ({} veth-a {}, {}) <-> {b} ({} veth-b {}, {})",
                lab.if_a(), lab.addr4_a(), lab.addr6_a(), lab.if_b(), lab.addr4_b(), lab.addr6_b()
            );
            println!("try:  sudo ip netns exec {b} rxray watch -i veth-b");
            println!("and:  sudo ip netns exec {a} ping -c 3 {}", lab.addr4_b());
            lab.keep();
        }
        LabCmd::Down => {
            let mut gone = Lab::cleanup_stale(&format!("{LAB_NAME}-"))?;
            // A demo's namespaces are rxdemo<pid>-a/-b: remove only those whose demo is gone.
            let list = Command::new("ip").args(["netns", "list"]).output().context("running ip")?;
            for name in String::from_utf8_lossy(&list.stdout).lines().filter_map(|l| l.split_whitespace().next()) {
                let Some(pid) = name.strip_prefix(DEMO_PREFIX).and_then(|r| r.split('-').next()) else { continue };
                if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    gone.extend(Lab::cleanup_stale(name)?);
                }
            }
            gone.sort();
            if gone.is_empty() {
                println!("no lab namespaces");
            } else {
                println!("removed {}", gone.join(", "));
            }
        }
        LabCmd::Status => {
            let mut any = false;
            for ns in [&a, &b] {
                if !ns_exists(ns) {
                    continue;
                }
                any = true;
                let out = Command::new("ip").args(["-n", ns, "-br", "addr"]).output().context("running ip")?;
                println!("{ns}:");
                for l in String::from_utf8_lossy(&out.stdout).lines() {
                    println!("  {l}");
                }
            }
            if !any {
                println!("the lab is down (`rxray lab up` creates it)");
            }
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct DemoArgs {
    /// How long the traffic runs.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Distinct flows in the generated traffic.
    #[arg(long, default_value_t = 300)]
    pub flows: usize,
    /// Skip the second part (the firewall and the detectors at work on an attack).
    #[arg(long)]
    pub no_protect: bool,
}

/// The demo's traffic: `flows` distinct flows mixing TCP, UDP and ICMP over IPv4 and IPv6.
fn demo_frames(lab: &Lab, flows: usize, round: usize) -> Vec<Vec<u8>> {
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let v4 = |proto| Ipv4 {
        src: lab.addr4_a(), dst: lab.addr4_b(), ttl: 64, tos: 0, id: round as u16, df: true, mf: false,
        frag_off_bytes: 0, options: vec![], protocol: proto,
    };
    let v6 = |nh| Ipv6 { src: lab.addr6_a(), dst: lab.addr6_b(), hop_limit: 64, traffic_class: 0, flow_label: 0, next_header: nh };
    (0..flows)
        .map(|i| {
            let sport = 20000 + i as u16;
            let body = vec![b'x'; 64 + (i * 37 + round * 11) % 900];
            match i % 6 {
                0 => frames::frame(&eth, &[], L3::Ipv4(v4(ipproto::TCP)), L4::Tcp(Tcp {
                    sport, dport: 443, seq: round as u32 * 1000, ack: 1, flags: if round == 0 { F::SYN } else { F::PSH | F::ACK },
                    window: 502, urgent: 0, options: if round == 0 { vec![TcpOpt::Mss(1460), TcpOpt::SackPermitted] } else { vec![] },
                }), if round == 0 { &[] } else { &body }),
                1 => frames::frame(&eth, &[], L3::Ipv4(v4(ipproto::UDP)), L4::Udp(Udp { sport, dport: 53 }), &body[..40]),
                2 => frames::frame(&eth, &[], L3::Ipv6(v6(ipproto::TCP), vec![]), L4::Tcp(Tcp {
                    sport, dport: 80, seq: round as u32, ack: 1, flags: F::ACK, window: 100, urgent: 0, options: vec![],
                }), &body),
                3 => frames::frame(&eth, &[], L3::Ipv6(v6(ipproto::UDP), vec![]), L4::Udp(Udp { sport, dport: 4789 }), &body),
                4 => frames::frame(&eth, &[], L3::Ipv4(v4(ipproto::ICMP)), L4::Icmp(Icmp { ty: 8, code: 0, id: sport, seq: round as u16 }), &body[..56]),
                _ => frames::frame(&eth, &[], L3::Ipv6(v6(ipproto::ICMPV6), vec![]), L4::Icmpv6(Icmpv6 { ty: 128, code: 0, id: sport, seq: round as u16 }), &body[..56]),
            }
        })
        .collect()
}

fn enter_netns(ns: &str) -> Result<()> {
    let f = File::open(format!("/run/netns/{ns}")).with_context(|| format!("opening namespace {ns}"))?;
    // It affects only this (still single) thread.
    rxray_kernel::os::netns::enter(&f).with_context(|| format!("entering namespace {ns}"))
}

pub fn demo(a: DemoArgs) -> Result<()> {
    session::require_root()?;
    let stop = session::stop_flag()?;
    let lab = Lab::pair(&format!("{DEMO_PREFIX}{}", std::process::id())).context("creating the demo lab")?;
    println!(
        "rxray demo: lab {} ({}, {}) -> {} veth-b ({}, {}); {} s of traffic on {} flows",
        lab.ns_a(), lab.addr4_a(), lab.addr6_a(), lab.ns_b(), lab.addr4_b(), lab.addr6_b(), a.seconds, a.flows
    );
    // rxray itself runs inside the lab's receiving namespace, never on the host's interfaces.
    enter_netns(lab.ns_b())?;
    let hook = rxray_kernel::hook::observer_hook("veth-b", AttachMode::Auto);
    let opts = IngressOptions { events: true, flows: true, command: "demo".into(), hook, ..Default::default() };
    let mut ing = Ingress::load(&opts)?;
    let att = ing.attach("veth-b", AttachMode::Auto)?;
    println!("attached to veth-b ({})\n", att.hook_name());
    let src = LiveSource::new().with_ingress(ing, true, false)?;
    // On a terminal the demo is `rxray top` over the lab (q goes on); elsewhere, text as before.
    let tty = std::io::stdout().is_terminal();

    let done = Arc::new(AtomicBool::new(false));
    // Set when the dashboard is left: the traffic stops there.
    let quit = Arc::new(AtomicBool::new(false));
    let traffic = {
        let frames_by_round: Vec<Vec<Vec<u8>>> = (0..2).map(|r| demo_frames(&lab, a.flows, r)).collect();
        let (ns_a, dst4, dst6) = (lab.ns_a().to_string(), lab.addr4_b().to_string(), lab.addr6_b().to_string());
        let (stop, done, quit, secs) = (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&quit), a.seconds);
        std::thread::spawn(move || -> Result<u64> {
            let mut sent = 0u64;
            let start = Instant::now();
            let mut round = 0usize;
            // Bounded: 10 batches a second for `secs` seconds, and one real ping each way a second.
            while start.elapsed() < Duration::from_secs(secs) && !stop.load(Ordering::Relaxed) && !quit.load(Ordering::Relaxed) {
                sent += send_frames(&ns_a, "veth-a", &frames_by_round[round.min(1)])? as u64;
                if round % 10 == 0 {
                    for (fam, dst) in [("-4", &dst4), ("-6", &dst6)] {
                        let _ = Command::new("ip").args(["netns", "exec", &ns_a, "ping", fam, "-c", "1", "-W", "1", dst]).output();
                    }
                }
                round += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            done.store(true, Ordering::Relaxed);
            Ok(sent)
        })
    };

    let src = if tty { dashboard(src, &stop, &quit, &att.hook_name())? } else { text(src, &stop, &done)? };
    let sent = traffic.join().map_err(|_| anyhow::anyhow!("the traffic thread panicked"))??;
    let t = flows::totals(&src)?;
    let nflows = src.flow_snapshot()?.flows.len();
    drop(src);
    println!("demo: sent {sent} frames; rxray saw {} packets in {nflows} flows", t.packets);
    if !a.no_protect && !stop.load(Ordering::Relaxed) {
        if let Err(e) = rxray_kernel::firewall::check_bpffs() {
            println!("\n(skipping the firewall part: {e})");
        } else {
            let r = protect(&lab);
            let _ = rxray_kernel::firewall::Firewall::off("veth-b");
            r?;
        }
    }
    println!("demo done; removing the lab");
    drop(lab);
    Ok(())
}

/// The demo's first part on a terminal: the dashboard over the lab until `q` (the traffic stops then).
fn dashboard(src: LiveSource, stop: &Arc<AtomicBool>, quit: &AtomicBool, hook: &str) -> Result<LiveSource> {
    let mut feed = crate::top::LiveFeed::new(src, Arc::clone(stop)).with_detectors()?;
    let mut c = rxray_tui::Collector::new(format!("demo lab: veth-b ({hook})"));
    c.set_parts(Err("not in the demo".into()), Ok(()), Err("not in the demo".into()));
    let o = rxray_tui::run::Options { interval: Duration::from_secs(1), refreshes: None };
    let r = crate::top::dashboard(&mut feed, &mut c, o);
    quit.store(true, Ordering::Relaxed);
    if r?.interrupted {
        // Ctrl-C ends the whole demo, as it does the text one.
        stop.store(true, Ordering::Relaxed);
    }
    Ok(feed.src)
}

/// The demo's first part as text: every second the counters, the top flows and the latest packets.
fn text(mut src: LiveSource, stop: &AtomicBool, done: &AtomicBool) -> Result<LiveSource> {
    let mut rates = RateTracker::default();
    let mut recent: VecDeque<String> = VecDeque::new();
    let mut delivered = 0u64;
    let mut last_print = Instant::now();
    let started = Instant::now();
    loop {
        let finished = done.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed);
        while let Some(ev) = src.next_event() {
            let Event::Packet(p) = ev? else { continue };
            delivered += 1;
            recent.push_back(line::format(p));
            if recent.len() > 5 {
                recent.pop_front();
            }
        }
        if last_print.elapsed() >= Duration::from_secs(1) || finished {
            last_print = Instant::now();
            let snap = flows::snapshot(&src, &mut rates, SortBy::Bytes)?;
            let t = flows::totals(&src)?;
            println!(
                "── {:>4.1} s ── {} packets seen, {} events delivered, {} lost, {} malformed",
                started.elapsed().as_secs_f64(), t.packets, delivered, t.lost, t.malformed
            );
            print!("{}", flows::table(&src, &snap.flows, 8, None)?);
            println!("latest packets:");
            for l in &recent {
                println!("  {l}");
            }
            println!();
        }
        if finished {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(src)
}

/// The demo's second part: a rules file applied to veth-b, then a SYN flood from one source that
/// the detectors see and the firewall blocks, with the counters to show it.
fn protect(lab: &Lab) -> Result<()> {
    use rxray_engine::detect::policy::{ActionKind, Mitigation};
    use rxray_engine::firewall::{parse_rules, Compiled};
    use rxray_kernel::firewall::{Firewall, FwCapacity};
    println!("\n── part 2: the firewall and the detectors ──");
    let rules = format!(
        "[[rule]]\nname = \"no DNS from {a}\"\naction = \"deny\"\nsrc = \"{a}/32\"\nproto = \"udp\"\ndport = 53\n\n\
         [[rule]]\nname = \"ping at most 20/s per source\"\naction = \"limit\"\nproto = \"icmp\"\nrate = \"20/s\"\nburst = 5\nper = \"src\"\n",
        a = lab.addr4_a()
    );
    println!("rules.toml:\n{}", rules.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"));
    let set = parse_rules("rules.toml", &rules, &|_| Err("no lists".into())).map_err(|e| anyhow::anyhow!("{}", e[0]))?;
    let (mut fw, _) = Firewall::open_or_install("veth-b", AttachMode::Auto, FwCapacity::default())?;
    fw.apply(&Compiled::new(&set).map_err(|e| anyhow::anyhow!(e))?)?;
    println!("applied to veth-b: `rxray firewall apply rules.toml -i veth-b` does the same\n");
    // Observe through the firewall's program (its maps are shared), and run the detectors.
    let ing = Ingress::adopt("veth-b", &IngressOptions { events: true, flows: false, command: "demo".into(), ..Default::default() })?;
    let mut src = LiveSource::new().with_ingress(ing, true, false)?;
    let det = rxray_engine::detect::Detectors::new(Default::default(), &[lab.addr4_b().into(), lab.addr6_b().into()])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut insp = rxray_engine::inspect::Inspector::new(det, None);
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    let attacker = std::net::Ipv4Addr::new(198, 18, 0, 66);
    let syn = |i: u16| {
        let ip = Ipv4 { src: attacker, dst: lab.addr4_b(), ttl: 64, tos: 0, id: i, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::TCP };
        frames::frame(&eth, &[], L3::Ipv4(ip), L4::Tcp(Tcp { sport: 1024 + i, dport: 80, seq: i as u32, ack: 0, flags: F::SYN, window: 1024, urgent: 0, options: vec![] }), &[])
    };
    let ordinary = demo_frames(lab, 60, 1);
    let mut blocked = false;
    let mut alerts = Vec::new();
    // Each round: ordinary traffic, then 400 SYNs (well over the detector's 1,000/s); until the flood
    // has been blocked for 10 rounds, bounded at 60 rounds (about 6 s).
    let mut after_block = 0;
    for round in 0..60u16 {
        if blocked {
            after_block += 1;
            if after_block > 10 {
                break;
            }
        }
        send_frames(lab.ns_a(), "veth-a", &ordinary)?;
        let flood: Vec<Vec<u8>> = (0..400).map(|i| syn(round * 400 + i)).collect();
        // Paced: a burst would overflow veth's 256-frame XDP ring and lose SYNs before XDP.
        send_frames_paced(lab.ns_a(), "veth-a", &flood, Duration::from_micros(20))?;
        while let Some(ev) = src.next_event() {
            if let Event::Packet(p) = ev? {
                insp.on_packet(p, &mut alerts);
            }
        }
        insp.on_tick(src.now_ns(), &mut alerts);
        for mut al in alerts.drain(..) {
            println!(
                "ALERT {} {} -> {}: {} ({})",
                al.sig.detector,
                al.src_ip.map(|i| i.to_string()).unwrap_or_default(),
                al.dest_ip.map(|i| i.to_string()).unwrap_or_default(),
                al.sig.msg,
                serde_json::to_string(&al.evidence).unwrap_or_default()
            );
            match al.mitigation.clone() {
                Some(Mitigation::Taken(act)) => {
                    // Carried out as `rxray alerts --enforce` does.
                    crate::alerts::enforce(std::slice::from_mut(&mut fw), &mut al);
                    let done = al.evidence.get("enforced").map(|v| v.to_string()).unwrap_or_default();
                    match &act.kind {
                        ActionKind::Block { cidr } => println!("  -> blocked {cidr} for {} s {done}: {}", act.ttl_s, act.reason),
                        ActionKind::LimitSrc { cidr, rate, .. } => println!("  -> {cidr} limited to {rate} for {} s {done}: {}", act.ttl_s, act.reason),
                        ActionKind::RateLimit { dst, pps, .. } => {
                            println!("  -> traffic to {dst} limited to {pps}/s for {} s {done}: {}", act.ttl_s, act.reason)
                        }
                    }
                    blocked = true;
                }
                Some(Mitigation::None { reason }) => println!("  -> no action: {reason}"),
                None => {}
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let c = fw.counts()?;
    println!("\nfirewall counters on veth-b (as `rxray firewall stats` shows them):");
    for (r, v) in set.rules.iter().zip(&c.rules) {
        println!("  rule {} ({}): {} packets dropped", r.id, r.name, v.packets);
    }
    println!("  dynamic blocks: {} packets dropped", c.blocks.packets);
    println!("  passed by default: {} packets", c.default.packets);
    if !blocked {
        println!("  (no block was needed)");
    }
    drop(src);
    Ok(())
}
