//! Root tests for `Lab` and `send_frames`: real namespaces, real ping and tcpdump, exact checks.
//! Without root they skip with a printed reason, except under CI=true, where they fail.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rxray_lab::frames::*;
use rxray_lab::{send_frames, Lab, LabError};

/// A lab, or None (after printing or failing per `skip_or_fail`) when this machine cannot run one.
fn lab(quiet: bool) -> Option<Lab> {
    if !common::is_root() {
        common::skip_or_fail("the lab needs root");
        return None;
    }
    let name = common::unique_name();
    let made = if quiet {
        Lab::pair_quiet(&name)
    } else {
        Lab::pair(&name)
    };
    match made {
        Ok(l) => Some(l),
        Err(e @ (LabError::NotRoot { .. } | LabError::NoIp(_))) => {
            common::skip_or_fail(&e.to_string());
            None
        }
        Err(e) => panic!("creating lab {name}: {e}"),
    }
}

fn netns_list() -> Result<Vec<String>> {
    let out = Command::new("ip").args(["netns", "list"]).output()?;
    ensure!(out.status.success(), "ip netns list failed");
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect())
}

/// Runs a command to completion and returns its stdout, failing with its stderr.
fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn pair_pings_both_families_and_is_removed_on_drop() -> Result<()> {
    let Some(lab) = lab(false) else { return Ok(()) };
    let (a, b) = (lab.ns_a().to_string(), lab.ns_b().to_string());
    let names = netns_list()?;
    ensure!(
        names.contains(&a) && names.contains(&b),
        "namespaces missing: {names:?}"
    );
    assert!(lab.addr4_b().octets()[..2] == [198, 18]);
    assert!(lab.addr6_b().segments()[..2] == [0x2001, 2]);

    if common::have("ping") {
        for dst in [IpAddr::V4(lab.addr4_b()), IpAddr::V6(lab.addr6_b())] {
            let dst = dst.to_string();
            // -w bounds the whole run; -W bounds each reply wait.
            run(&mut lab.exec(&a, ["ping", "-n", "-c", "2", "-W", "1", "-w", "5", &dst]))?;
        }
    } else {
        common::skip_or_fail("ping (iputils-ping) is not installed; connectivity not checked");
    }

    // The isolation rules: no routes beyond the two on-link prefixes, no forwarding, and the veth
    // ends live only in the lab namespaces.
    for ns in [&a, &b] {
        let routes = run(Command::new("ip").args(["-n", ns, "route", "show"]))?
            + &run(Command::new("ip").args(["-n", ns, "-6", "route", "show"]))?;
        ensure!(
            !routes.contains("default"),
            "{ns} has a default route:\n{routes}"
        );
        let fwd = run(&mut lab.exec(ns, ["sysctl", "-n", "net.ipv4.ip_forward"]))?;
        ensure!(fwd.trim() == "0", "{ns}: ip_forward is {fwd}");
        let fwd6 = run(&mut lab.exec(ns, ["sysctl", "-n", "net.ipv6.conf.all.forwarding"]))?;
        ensure!(fwd6.trim() == "0", "{ns}: IPv6 forwarding is {fwd6}");
    }
    let mac_b = run(&mut lab.exec(&b, ["cat", "/sys/class/net/veth-b/address"]))?;
    assert_eq!(mac_b.trim(), "02:52:58:00:00:0b");
    let idx_b = run(&mut lab.exec(&b, ["cat", "/sys/class/net/veth-b/ifindex"]))?;
    assert_eq!(idx_b.trim(), lab.ifindex_b().to_string());

    drop(lab);
    let names = netns_list()?;
    ensure!(
        !names.contains(&a) && !names.contains(&b),
        "namespaces left after drop: {names:?}"
    );
    Ok(())
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn quiet_sender_has_no_addresses_and_no_ipv6() -> Result<()> {
    let Some(lab) = lab(true) else { return Ok(()) };
    let a = lab.ns_a();
    let addrs = run(Command::new("ip").args(["-n", a, "-o", "addr", "show", "dev", "veth-a"]))?;
    ensure!(addrs.trim().is_empty(), "veth-a has addresses:\n{addrs}");
    let v6off = run(&mut lab.exec(a, ["sysctl", "-n", "net.ipv6.conf.veth-a.disable_ipv6"]))?;
    assert_eq!(v6off.trim(), "1");
    let b_addrs =
        run(Command::new("ip").args(["-n", lab.ns_b(), "-o", "addr", "show", "dev", "veth-b"]))?;
    ensure!(
        b_addrs.contains(&lab.addr4_b().to_string())
            && b_addrs.contains(&lab.addr6_b().to_string()),
        "veth-b lacks its addresses:\n{b_addrs}"
    );
    Ok(())
}

/// Kills the child on drop, so a failed test never leaves a capture running.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Parses `tcpdump -r FILE -xx` output (a summary line per packet, then "\t0x0000:  hhhh hhhh"
/// lines) into the packets' bytes.
fn parse_tcpdump_hex(text: &str) -> Result<Vec<Vec<u8>>> {
    let mut packets: Vec<Vec<u8>> = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        if !t.starts_with("0x") {
            packets.push(Vec::new());
            continue;
        }
        let (_, hex) = t.split_once(':').context("hex line without ':'")?;
        let cur = packets.last_mut().context("hex before any packet line")?;
        for group in hex.split_whitespace() {
            for i in (0..group.len()).step_by(2) {
                cur.push(u8::from_str_radix(&group[i..i + 2], 16)?);
            }
        }
    }
    Ok(packets)
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn send_frames_delivers_exactly_the_built_bytes() -> Result<()> {
    if !common::have("tcpdump") {
        common::skip_or_fail("tcpdump is not installed");
        return Ok(());
    }
    let Some(lab) = lab(true) else { return Ok(()) };
    let eth = Eth {
        dst: lab.mac_b(),
        src: lab.mac_a(),
    };
    let ip4 = |id| Ipv4 {
        src: lab.addr4_a(),
        dst: lab.addr4_b(),
        ttl: 64,
        tos: 0,
        id,
        df: true,
        mf: false,
        frag_off_bytes: 0,
        options: vec![],
        protocol: ipproto::UDP,
    };
    let ip6 = Ipv6 {
        src: lab.addr6_a(),
        dst: lab.addr6_b(),
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 1,
        next_header: ipproto::UDP,
    };
    let udp = |dport| {
        L4::Udp(Udp {
            sport: 40000,
            dport,
        })
    };
    let frames = vec![
        frame(&eth, &[], L3::Ipv4(ip4(1)), udp(9), b"one"),
        frame(&eth, &[], L3::Ipv4(ip4(2)), udp(9), &[0x55; 300]),
        frame(&eth, &[], L3::Ipv6(ip6, vec![]), udp(9), b"three"),
        // Shorter than the 60-byte Ethernet minimum: veth carries it unpadded.
        frame(
            &eth,
            &[],
            L3::Arp(Arp {
                op: 1,
                sha: lab.mac_a(),
                spa: lab.addr4_a(),
                tha: [0; 6],
                tpa: Ipv4Addr::new(198, 18, 255, 254),
            }),
            L4::None,
            &[],
        ),
        frame(&eth, &[], L3::Ipv4(ip4(5)), udp(10), b"five"),
    ];

    let dir = common::TempDir::new();
    let file = dir.path().join("veth-b.pcap");
    // -Q in: only what arrives at b. -c N with exact comparison below: a stray frame would
    // take the place of one of ours and fail the test.
    let n = frames.len().to_string();
    let mut tcpdump = ChildGuard(
        lab.exec(
            lab.ns_b(),
            [
                "tcpdump", "-n", "-U", "-Z", "root", "-Q", "in", "-i", "veth-b", "-c", &n, "-w",
            ],
        )
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting tcpdump")?,
    );
    let stderr = tcpdump.0.stderr.take().context("tcpdump stderr")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("listening on") => break,
            Ok(line) => seen.push(line),
            Err(_) => bail!("tcpdump did not start listening within 10 s; stderr: {seen:?}"),
        }
    }

    let sent = send_frames(lab.ns_a(), lab.if_a(), &frames)?;
    assert_eq!(sent, frames.len());

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = tcpdump.0.try_wait()? {
            break s;
        }
        ensure!(
            Instant::now() < deadline,
            "tcpdump saw fewer than {n} frames within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    ensure!(status.success(), "tcpdump exited with {status}");

    let text = run(Command::new("tcpdump").args(["-n", "-xx", "-r"]).arg(&file))?;
    let captured = parse_tcpdump_hex(&text)?;
    assert_eq!(captured.len(), frames.len(), "tcpdump -r:\n{text}");
    for (i, (got, want)) in captured.iter().zip(&frames).enumerate() {
        assert_eq!(got, want, "frame {i} differs");
    }

    // Quiet sender: the kernel in a sent nothing of its own, so veth-a transmitted exactly ours.
    let tx = run(&mut lab.exec(
        lab.ns_a(),
        ["cat", "/sys/class/net/veth-a/statistics/tx_packets"],
    ))?;
    assert_eq!(tx.trim(), n, "veth-a tx_packets");
    Ok(())
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn failed_creation_removes_what_it_made() -> Result<()> {
    if !common::is_root() {
        common::skip_or_fail("the lab needs root");
        return Ok(());
    }
    let name = common::unique_name();
    let (a, b) = (format!("{name}-a"), format!("{name}-b"));
    // Someone else's namespace holds b's name: creation must fail, remove a, and leave b alone.
    run(Command::new("ip").args(["netns", "add", &b]))?;
    let result = Lab::pair(&name);
    let names = netns_list()?;
    let _ = Command::new("ip").args(["netns", "del", &b]).output();
    match result {
        Err(LabError::Command { cmd, stderr, .. }) => {
            ensure!(
                cmd == format!("ip netns add {b}"),
                "failed at an unexpected step: {cmd}"
            );
            ensure!(!stderr.is_empty(), "the error carries no stderr");
        }
        Err(e) => bail!("wrong error: {e}"),
        Ok(_) => bail!("Lab::pair succeeded although {b} existed"),
    }
    ensure!(!names.contains(&a), "{a} left behind: {names:?}");
    ensure!(
        names.contains(&b),
        "the pre-existing {b} was deleted: {names:?}"
    );
    Ok(())
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn cleanup_stale_deletes_by_prefix() -> Result<()> {
    if !common::is_root() {
        common::skip_or_fail("the lab needs root");
        return Ok(());
    }
    let prefix = format!("rxt{}stale", std::process::id());
    let made = [format!("{prefix}0"), format!("{prefix}1")];
    for ns in &made {
        run(Command::new("ip").args(["netns", "add", ns]))?;
    }
    let mut deleted = Lab::cleanup_stale(&prefix)?;
    deleted.sort();
    assert_eq!(deleted, made.to_vec());
    let names = netns_list()?;
    ensure!(
        !names.iter().any(|n| n.starts_with(&prefix)),
        "left: {names:?}"
    );
    Ok(())
}

#[test]
fn send_frames_to_a_missing_namespace_says_which() {
    let err = rxray_lab::send_frames("rxt-no-such-ns", "veth-a", &[vec![0; 60]]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/run/netns/rxt-no-such-ns"), "{msg}");
}

/// Whether a process is still running (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(") ").next().is_some_and(|rest| !rest.starts_with('Z')))
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn processes_left_in_the_lab_are_killed_even_when_the_test_panics() -> Result<()> {
    let Some(lab) = lab(true) else { return Ok(()) };
    let ns_b = lab.ns_b().to_string();
    // A server the test "forgot", and a grandchild in its own process group (what a `timeout`
    // wrapper or a shell leaves behind): neither is a child the test could kill by its handle.
    let mut server = lab.exec(&ns_b, ["python3", "-c", "import time; time.sleep(600)"]).spawn()?;
    let mut shell = lab.exec(&ns_b, ["sh", "-c", "setsid sleep 600 & wait"]).spawn()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pids = Vec::new();
    while pids.len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        pids = rxray_lab::processes_in(&ns_b);
    }
    ensure!(pids.len() >= 3, "expected python3, sh and sleep in {ns_b}: {pids:?}");
    ensure!(pids.contains(&(server.id() as i32)), "{pids:?} lacks the server {}", server.id());
    // The test fails (panics) while they run: unwinding drops the lab.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _lab = lab;
        panic!("a failing test");
    }));
    ensure!(r.is_err());
    let _ = server.wait();
    let _ = shell.wait();
    let left: Vec<_> = pids.iter().copied().filter(|p| alive(*p)).collect();
    ensure!(left.is_empty(), "still running after the lab was dropped: {left:?}");
    ensure!(!netns_list()?.contains(&ns_b), "{ns_b} was not removed");
    Ok(())
}
