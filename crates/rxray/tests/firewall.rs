//! The XDP firewall in a lab: what it drops and passes (IPv4, IPv6, fragments, malformed packets,
//! over-long IPv6 header chains), rate limits judged by the kernel's timestamps, TTLs that expire
//! with no rxray running, a 1,000,000-prefix blocklist, kill -9, a bad rules file, dry run, and the
//! what-if replay agreeing packet by packet with the live program.
//!
//! What reached the stack is read from a tcpdump in namespace b: XDP runs before the packet taps,
//! so tcpdump sees exactly the frames the firewall passed (the tests ask for native XDP). The TC
//! copy, which auto takes on veth, runs after the taps: its verdicts are read after it, through an
//! nftables netdev chain that duplicates what passed to a veth of the test's. Frames are compared
//! byte for byte.
mod common;

use common::*;
use rxray_engine::cidr::{aggregate, Cidr, CidrSet};
use rxray_lab::frames::{self, ipproto, Eth, Ext, Ipv4, Ipv6, Udp, L3, L4};
use rxray_lab::testing::Rng;
use rxray_lab::{send_frames_paced, Lab};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn lab() -> Option<Lab> {
    if !need_root() {
        return None;
    }
    if !have("tcpdump") {
        skip_or_fail("tcpdump is not installed");
        return None;
    }
    Some(Lab::pair_quiet(&unique_name()).expect("lab"))
}

/// `rxray --netns NS firewall ARGS`.
fn fw(ns: &str, args: &[&str]) -> Output {
    Command::new(rxray_bin()).args(["--netns", ns, "firewall"]).args(args).output().expect("run rxray")
}

fn fw_ok(ns: &str, args: &[&str]) -> String {
    let o = fw(ns, args);
    assert!(o.status.success(), "rxray firewall {args:?} failed: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Removes the firewall even when a test fails half-way (the namespaces go with the Lab).
struct Off<'a>(&'a Lab);

impl Drop for Off<'_> {
    fn drop(&mut self) {
        let _ = fw(self.0.ns_b(), &["off", "-i", self.0.if_b()]);
    }
}

fn eth(lab: &Lab) -> Eth {
    Eth { dst: lab.mac_b(), src: lab.mac_a() }
}

fn v4(src: Ipv4Addr, dst: Ipv4Addr, id: u16) -> Ipv4 {
    Ipv4 { src, dst, ttl: 64, tos: 0, id, df: false, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::UDP }
}

fn v6(src: Ipv6Addr, dst: Ipv6Addr) -> Ipv6 {
    Ipv6 { src, dst, hop_limit: 64, traffic_class: 0, flow_label: 0, next_header: ipproto::UDP }
}

fn udp4(lab: &Lab, src: Ipv4Addr, dport: u16, marker: u32) -> Vec<u8> {
    frames::frame(&eth(lab), &[], L3::Ipv4(v4(src, lab.addr4_b(), marker as u16)), L4::Udp(Udp { sport: 40000, dport }), &marker.to_be_bytes())
}

fn udp6(lab: &Lab, src: Ipv6Addr, dport: u16, marker: u32) -> Vec<u8> {
    frames::frame(&eth(lab), &[], L3::Ipv6(v6(src, lab.addr6_b()), vec![]), L4::Udp(Udp { sport: 40000, dport }), &marker.to_be_bytes())
}

/// A UDP datagram to `dport` cut into three IPv4 fragments (all, or only the later ones).
fn frags4(lab: &Lab, src: Ipv4Addr, dport: u16, id: u16, first: bool) -> Vec<Vec<u8>> {
    let seg = frames::transport(IpAddr::V4(src), IpAddr::V4(lab.addr4_b()), &L4::Udp(Udp { sport: 40001, dport }), &[7u8; 40]);
    let mut out = Vec::new();
    for (i, chunk) in seg.chunks(16).enumerate() {
        if i == 0 && !first {
            continue;
        }
        let mut ip = v4(src, lab.addr4_b(), id);
        ip.frag_off_bytes = (i * 16) as u16;
        ip.mf = (i + 1) * 16 < seg.len();
        out.push(frames::frame(&eth(lab), &[], L3::Ipv4(ip), L4::None, chunk));
    }
    out
}

/// An IPv6 UDP datagram in two fragments.
fn frags6(lab: &Lab, src: Ipv6Addr, dport: u16, id: u32) -> Vec<Vec<u8>> {
    let seg = frames::transport(IpAddr::V6(src), IpAddr::V6(lab.addr6_b()), &L4::Udp(Udp { sport: 40001, dport }), &[9u8; 24]);
    let (a, b) = seg.split_at(16);
    let mk = |off: u16, more: bool, data: &[u8]| {
        frames::frame(&eth(lab), &[], L3::Ipv6(v6(src, lab.addr6_b()), vec![Ext::Fragment { offset_bytes: off, more, id }]), L4::None, data)
    };
    vec![mk(0, true, a), mk(16, false, b)]
}

/// UDP behind nine destination-options headers: one more than rxray walks (its L4 is unknown).
fn long_chain6(lab: &Lab, src: Ipv6Addr, dport: u16) -> Vec<u8> {
    let exts = (0..9).map(|_| Ext::DestOpts(frames::pad_options(&[]))).collect();
    frames::frame(&eth(lab), &[], L3::Ipv6(v6(src, lab.addr6_b()), exts), L4::Udp(Udp { sport: 40000, dport }), b"chain")
}

/// Captures what arrives in namespace b (after XDP: tcpdump sees only what the firewall passed).
fn tap(lab: &Lab, dir: &Path) -> Dump {
    Dump::start(lab.ns_b(), lab.if_b(), "in", dir, &format!("tap{}", unique_name()))
}


fn received(lab: &Lab, dir: &Path, frames: &[Vec<u8>]) -> HashSet<Vec<u8>> {
    let tap = tap(lab, dir);
    // Paced: a burst would overflow veth's 256-frame XDP ring (a loss nobody asked about).
    send_frames_paced(lab.ns_a(), lab.if_a(), frames, Duration::from_micros(20)).expect("send");
    tap.stop().1.into_iter().map(|(_, f)| f).collect()
}

fn spoofed4(lab: &Lab, host: u8) -> Ipv4Addr {
    let b = lab.addr4_b().octets();
    Ipv4Addr::new(b[0], b[1], b[2], host)
}

fn stats(ns: &str, iface: &str) -> serde_json::Value {
    let out = fw_ok(ns, &["stats", "--json", "-i", iface]);
    serde_json::from_str::<serde_json::Value>(out.lines().next().unwrap()).unwrap()["counters"].clone()
}

/// What passed a TC firewall, read after it: TC ingress runs after the packet taps, so tcpdump on
/// veth-b sees every frame. An nftables netdev ingress chain (which runs after TC) duplicates every
/// frame it sees to a veth of the test's own, where tcpdump reads them, byte for byte.
fn received_after_tc(lab: &Lab, dir: &Path, frames: &[Vec<u8>]) -> HashSet<Vec<u8>> {
    let ns = lab.ns_b();
    let ip = |args: &[&str]| {
        let o = lab.exec(ns, ["ip"].iter().chain(args)).output().expect("ip");
        assert!(o.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    ip(&["link", "add", "rxpost0", "type", "veth", "peer", "name", "rxpost1"]);
    ip(&["link", "set", "rxpost0", "up"]);
    ip(&["link", "set", "rxpost1", "up"]);
    let nft = format!(
        "table netdev rxpost {{\n chain in {{\n  type filter hook ingress device \"{}\" priority 0; policy accept;\n  dup to \"rxpost0\"\n }}\n}}\n",
        lab.if_b()
    );
    let mut child = lab.exec(ns, ["nft", "-f", "-"]).stdin(Stdio::piped()).spawn().expect("nft");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), nft.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "nft: {nft}");
    let dump = Dump::start(ns, "rxpost0", "out", dir, &format!("post{}", unique_name()));
    send_frames_paced(lab.ns_a(), lab.if_a(), frames, Duration::from_micros(20)).expect("send");
    let got = dump.stop().1.into_iter().map(|(_, f)| f).collect();
    let _ = lab.exec(ns, ["nft", "delete", "table", "netdev", "rxpost"]).status();
    ip(&["link", "del", "rxpost0"]);
    got
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn denies_and_allows_v4_v6_fragments_malformed_and_long_chains() {
    let Some(lab) = lab() else { return };
    // Native XDP (taps see only what passed), then the TC copy (read after it): the same verdicts.
    for mode in ["native", "tc"] {
        denies_and_allows(&lab, mode);
    }
}

fn denies_and_allows(lab: &Lab, mode: &str) {
    let dir = TempDir::new();
    let bad4 = spoofed4(&lab, 99);
    let bad6: Ipv6Addr = format!("{}99", lab.addr6_b().to_string().trim_end_matches(|c: char| c != ':')).parse().unwrap();
    let good4 = spoofed4(&lab, 1);
    let good6 = lab.addr6_a();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            r#"
[[rule]]
name = "allow 7001 from good"
action = "allow"
src = ["{good4}/32", "{good6}/128"]
proto = "udp"
dport = 7001

[[rule]]
name = "no 7000-7005"
action = "deny"
proto = "udp"
dport = "7000-7005"

[[rule]]
name = "bad hosts"
action = "deny"
src = ["{bad4}/32", "{bad6}/128"]
"#
        ),
    )
    .unwrap();
    let _off = Off(lab);
    fw_ok(lab.ns_b(), &["apply", rules.to_str().unwrap(), "-i", lab.if_b(), "--xdp-mode", mode]);

    let mut pass = Vec::new();
    let mut drop = Vec::new();
    pass.push(udp4(&lab, good4, 7001, 1)); // rule 1
    drop.push(udp4(&lab, good4, 7002, 2)); // rule 2
    pass.push(udp4(&lab, good4, 9000, 3)); // default
    drop.push(udp4(&lab, bad4, 9000, 4)); // rule 3
    pass.push(udp6(&lab, good6, 7001, 5));
    drop.push(udp6(&lab, good6, 7002, 6));
    pass.push(udp6(&lab, good6, 9000, 7));
    drop.push(udp6(&lab, bad6, 9000, 8));
    drop.extend(frags4(&lab, good4, 7002, 0x100, true)); // every fragment, by the first one's port
    pass.extend(frags4(&lab, good4, 7001, 0x101, true)); // allowed, every fragment
    drop.extend(frags4(&lab, good4, 7001, 0x102, false)); // later fragments alone: ports unknown, a port deny holds them
    drop.extend(frags4(&lab, bad4, 9000, 0x103, true)); // address deny, every fragment
    drop.extend(frags6(&lab, good6, 7003, 0x104));
    pass.extend(frags6(&lab, good6, 7001, 0x105));
    drop.extend(frags6(&lab, bad6, 7001, 0x106));
    drop.push(long_chain6(&lab, good6, 9000)); // L4 unknown: the port deny holds it
    drop.push(long_chain6(&lab, bad6, 9000));
    // A truncated UDP header from the bad host: its addresses still deny it.
    let mut t = udp4(&lab, bad4, 9000, 9);
    t.truncate(14 + 20 + 4);
    t[16..18].copy_from_slice(&24u16.to_be_bytes()); // total length = what is there
    drop.push(t);

    let mut all = pass.clone();
    all.extend(drop.iter().cloned());
    let got = if mode == "tc" { received_after_tc(lab, dir.path(), &all) } else { received(lab, dir.path(), &all) };
    for (i, f) in pass.iter().enumerate() {
        assert!(got.contains(f), "{mode}: pass frame {i} was dropped");
    }
    for (i, f) in drop.iter().enumerate() {
        assert!(!got.contains(f), "{mode}: drop frame {i} reached the stack");
    }
    let c = stats(lab.ns_b(), lab.if_b());
    let n = |i: usize| c["rules"][i]["packets"].as_u64().unwrap();
    assert_eq!(n(0), 7, "{mode}: rule 1 allows: v4 and v6 to 7001, and every fragment of both datagrams to 7001 (3 + 2): {c}");
    assert_eq!(n(1) + n(2) + c["default"]["packets"].as_u64().unwrap() + n(0), all.len() as u64, "{mode}: every frame decided once: {c}");
    assert_eq!(n(1) + n(2), drop.len() as u64, "{mode}: {c}");
    fw_ok(lab.ns_b(), &["off", "-i", lab.if_b()]);
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn rate_limit_passes_rate_times_duration_plus_burst() {
    let Some(lab) = lab() else { return };
    let dir = TempDir::new();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\naction = \"limit\"\nproto = \"udp\"\ndport = 7100\nrate = \"400/s\"\nburst = 40\nper = \"src\"\n").unwrap();
    let _off = Off(&lab);
    fw_ok(lab.ns_b(), &["apply", rules.to_str().unwrap(), "-i", lab.if_b(), "--xdp-mode", "native"]);
    let src = spoofed4(&lab, 1);
    let flood: Vec<Vec<u8>> = (0..3000u32).map(|i| udp4(&lab, src, 7100, i)).collect();
    let tap = tap(&lab, dir.path());
    let t0 = Instant::now();
    send_frames_paced(lab.ns_a(), lab.if_a(), &flood, Duration::from_micros(300)).expect("send");
    let wall = t0.elapsed();
    let got = tap.stop().1;
    assert!(wall < Duration::from_secs(30), "the flood is bounded");
    let first = got.first().expect("something passed").0;
    let last = got.last().unwrap().0;
    let secs = (last - first) as f64 / 1e9;
    let expected = 400.0 * secs + 40.0;
    let passed = got.len() as f64;
    let c = stats(lab.ns_b(), lab.if_b());
    let dropped = c["rules"][0]["packets"].as_u64().unwrap();
    eprintln!("flood of {} frames over {secs:.3} s (kernel time): {passed} passed, {dropped} dropped, expected {expected:.0}", flood.len());
    assert!(secs > 0.5, "the flood lasted {secs} s; it must outlast the burst by far");
    assert!((passed - expected).abs() <= 0.10 * expected, "passed {passed}, expected {expected:.0} ±10%");
    assert_eq!(passed as u64 + dropped, flood.len() as u64, "every frame either passed or was counted as dropped");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn ttl_rules_and_blocks_expire_with_no_agent_running() {
    let Some(lab) = lab() else { return };
    let dir = TempDir::new();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\naction = \"deny\"\nproto = \"udp\"\ndport = 7200\nttl = \"2s\"\n").unwrap();
    let _off = Off(&lab);
    fw_ok(lab.ns_b(), &["apply", rules.to_str().unwrap(), "-i", lab.if_b(), "--xdp-mode", "native"]);
    let blocked = spoofed4(&lab, 77);
    fw_ok(lab.ns_b(), &["block", &format!("{blocked}"), "--ttl", "2s", "-i", lab.if_b()]);
    let listed = fw_ok(lab.ns_b(), &["list", "-i", lab.if_b()]);
    assert!(listed.contains(&format!("deny from {blocked}/32")), "{listed}");
    // No rxray process runs from here on: only the kernel decides.
    let before = vec![udp4(&lab, spoofed4(&lab, 1), 7200, 1), udp4(&lab, blocked, 9000, 2)];
    let got = received(&lab, dir.path(), &before);
    assert!(got.is_empty(), "both are dropped while the TTLs run: {}", got.len());
    std::thread::sleep(Duration::from_millis(2600));
    let after = vec![udp4(&lab, spoofed4(&lab, 1), 7200, 3), udp4(&lab, blocked, 9000, 4)];
    let got = received(&lab, dir.path(), &after);
    assert_eq!(got.len(), 2, "both pass once the TTLs ran out");
    let listed = fw_ok(lab.ns_b(), &["list", "-i", lab.if_b()]);
    assert!(listed.contains("blocks: 0"), "{listed}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_million_prefix_blocklist_loads_and_matches() {
    let Some(lab) = lab() else { return };
    let dir = TempDir::new();
    let mut rng = Rng(0x5eed_f1e1d);
    let mut text = String::from("# FireHOL-style netset, generated\n");
    let mut list = Vec::new();
    // Prefixes anywhere (never used as traffic sources) and inside 198.19.0.0/16, where the test's
    // spoofed sources come from.
    for i in 0..1_000_000u32 {
        let (addr, len) = if i % 2000 == 0 {
            (0xC613_0000 | (rng.next() as u32 & 0xffff), 24 + (rng.next() % 9) as u8)
        } else {
            // anywhere but 198.19.0.0/16, where only the prefixes above are
            let mut a = rng.next() as u32;
            while a >> 16 == 0xC613 {
                a = rng.next() as u32;
            }
            (a, 16 + (rng.next() % 17) as u8)
        };
        let c = Cidr::new(IpAddr::from(addr.to_be_bytes()), len).unwrap();
        text.push_str(&format!("{c}\n"));
        list.push(c);
    }
    let path = dir.path().join("big.netset");
    std::fs::write(&path, text).unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\naction = \"deny\"\nsrc_list = \"big.netset\"\n").unwrap();
    let _off = Off(&lab);
    let t = Instant::now();
    let out = fw_ok(lab.ns_b(), &["apply", rules.to_str().unwrap(), "-i", lab.if_b(), "--xdp-mode", "native"]);
    eprintln!("apply of 1,000,000 prefixes: {:?}\n{out}", t.elapsed());
    assert!(out.contains("1000000 read"), "{out}");
    let (agg, _) = aggregate(&list, false);
    let set = CidrSet::new(&agg);
    let mut frames = Vec::new();
    let mut inside = Vec::new();
    for i in 0..1500u32 {
        let src = Ipv4Addr::from(0xC613_0000 | (rng.next() as u32 & 0xffff));
        inside.push(set.contains(IpAddr::V4(src)));
        frames.push(udp4(&lab, src, 9000, i));
    }
    let n_in = inside.iter().filter(|x| **x).count();
    assert!(n_in > 50 && n_in < 1450, "{n_in} of 1500 sources are listed: both kinds are tested");
    let got = received(&lab, dir.path(), &frames);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(got.contains(f), !inside[i], "frame {i} (listed: {})", inside[i]);
    }
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn kill_9_leaves_the_rules_enforcing_and_a_restart_changes_nothing() {
    let Some(lab) = lab() else { return };
    let dir = TempDir::new();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\naction = \"deny\"\nproto = \"udp\"\ndport = 7300\n").unwrap();
    let _off = Off(&lab);
    let mut agent = Command::new(rxray_bin())
        .args(["--netns", lab.ns_b(), "firewall", "apply", "--follow", rules.to_str().unwrap(), "-i", lab.if_b(), "--xdp-mode", "native"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Generous: installing loads the program and allocates its maps, which a loaded 2-core CI
    // machine has been seen to take over 10 s for.
    let deadline = Instant::now() + Duration::from_secs(45);
    while !rxray_kernel_installed(&lab) {
        assert!(Instant::now() < deadline, "the agent did not install the firewall within 45 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let src = spoofed4(&lab, 1);
    assert!(received(&lab, dir.path(), &[udp4(&lab, src, 7300, 1)]).is_empty(), "dropped while the agent runs");
    agent.kill().unwrap(); // SIGKILL
    agent.wait().unwrap();
    assert!(received(&lab, dir.path(), &[udp4(&lab, src, 7300, 2)]).is_empty(), "still dropped after kill -9");
    assert_eq!(received(&lab, dir.path(), &[udp4(&lab, src, 9000, 3)]).len(), 1, "other traffic passes");
    let c1 = stats(lab.ns_b(), lab.if_b());
    assert_eq!(c1["rules"][0]["packets"], 2, "{c1}");
    let out = fw_ok(lab.ns_b(), &["apply", rules.to_str().unwrap(), "-i", lab.if_b(), "--xdp-mode", "native"]);
    assert!(out.contains("already live; nothing changed"), "{out}");
    let c2 = stats(lab.ns_b(), lab.if_b());
    assert_eq!(c2["rules"][0]["packets"], 2, "counters continue: {c2}");
    assert_eq!(c2["generation"], c1["generation"], "{c2}");
}

fn rxray_kernel_installed(lab: &Lab) -> bool {
    let o = fw(lab.ns_b(), &["list", "-i", lab.if_b()]);
    o.status.success() && String::from_utf8_lossy(&o.stdout).contains("rules from")
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_malformed_rules_file_changes_nothing() {
    let Some(lab) = lab() else { return };
    let dir = TempDir::new();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\naction = \"deny\"\nproto = \"udp\"\ndport = 7400\n").unwrap();
    let _off = Off(&lab);
    fw_ok(lab.ns_b(), &["apply", rules.to_str().unwrap(), "-i", lab.if_b(), "--xdp-mode", "native"]);
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[rule]]\naction = \"allow\"\nproto = \"udp\"\ndport = 7400\n\n[[rule]]\naction = \"deny\"\nsrc = \"198.18.0.0/33\"\n").unwrap();
    let o = fw(lab.ns_b(), &["apply", bad.to_str().unwrap(), "-i", lab.if_b(), "--xdp-mode", "native"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a bad file fails");
    assert!(err.contains(&format!("{}:8:7:", bad.display())) && err.contains("nothing was changed"), "{err}");
    let o = fw(lab.ns_b(), &["apply", bad.to_str().unwrap().trim_end_matches("bad.toml"), "-i", lab.if_b(), "--xdp-mode", "native"]);
    assert!(!o.status.success());
    let src = spoofed4(&lab, 1);
    assert!(received(&lab, dir.path(), &[udp4(&lab, src, 7400, 1)]).is_empty(), "the previous rules still drop");
    let listed = fw_ok(lab.ns_b(), &["list", "-i", lab.if_b()]);
    assert!(listed.contains("rules.toml") && listed.contains("deny  from any to any proto udp dport 7400"), "{listed}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn dry_run_counts_and_drops_nothing() {
    let Some(lab) = lab() else { return };
    let dir = TempDir::new();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\naction = \"deny\"\nproto = \"udp\"\ndport = 7500\n").unwrap();
    let _off = Off(&lab);
    fw_ok(lab.ns_b(), &["apply", "--dry-run", rules.to_str().unwrap(), "-i", lab.if_b(), "--xdp-mode", "native"]);
    let src = spoofed4(&lab, 1);
    let frames: Vec<Vec<u8>> = (0..5).map(|i| udp4(&lab, src, 7500, i)).collect();
    let got = received(&lab, dir.path(), &frames);
    assert_eq!(got.len(), 5, "dry run drops nothing");
    let c = stats(lab.ns_b(), lab.if_b());
    assert_eq!((c["dry_run"].as_bool(), c["rules"][0]["packets"].as_u64()), (Some(true), Some(5)), "{c}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn simulate_agrees_with_the_live_program_packet_by_packet() {
    let Some(lab) = lab() else { return };
    let dir = TempDir::new();
    let good4 = spoofed4(&lab, 1);
    let bad4 = spoofed4(&lab, 66);
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[firewall]\ndefault = \"deny\"\n\n[[rule]]\naction = \"deny\"\nsrc = \"{bad4}/32\"\n\n[[rule]]\naction = \"allow\"\nproto = \"udp\"\ndport = \"7000-7999\"\n\n[[rule]]\naction = \"allow\"\nip = 6\n"
        ),
    )
    .unwrap();
    let mut rng = Rng(42);
    let mut frames = Vec::new();
    for i in 0..300u32 {
        let f = match rng.below(6) {
            0 => udp4(&lab, bad4, 7000 + rng.below(2000) as u16, i),
            1 | 2 => udp4(&lab, good4, 7000 + rng.below(2000) as u16, i),
            3 => udp6(&lab, lab.addr6_a(), rng.below(60000) as u16, i),
            4 => frags4(&lab, if rng.below(2) == 0 { good4 } else { bad4 }, 6990 + rng.below(20) as u16, i as u16, true)[rng.below(3)].clone(),
            _ => {
                let mut f = udp4(&lab, good4, 7500, i);
                f.truncate(14 + 20 + 3); // malformed: cut UDP header
                f
            }
        };
        frames.push(f);
    }
    let pcap = dir.path().join("replay.pcap");
    rxray_lab::pcap::write_pcap(&pcap, &frames).unwrap();
    let o = Command::new(rxray_bin()).args(["firewall", "simulate", "--packets"]).arg(&rules).arg(&pcap).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let verdicts: Vec<bool> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["verdict"] == "drop")
        .collect();
    assert_eq!(verdicts.len(), frames.len());
    assert!(verdicts.iter().any(|d| *d) && verdicts.iter().any(|d| !*d), "both verdicts occur");

    let _off = Off(&lab);
    fw_ok(lab.ns_b(), &["apply", rules.to_str().unwrap(), "-i", lab.if_b(), "--xdp-mode", "native"]);
    let got = received(&lab, dir.path(), &frames);
    let mut seen = HashSet::new();
    for (i, f) in frames.iter().enumerate() {
        if !seen.insert(f.clone()) {
            continue; // a repeated frame has one fate per copy; compare unique ones
        }
        assert_eq!(got.contains(f), !verdicts[i], "frame {i}: simulate said {}", if verdicts[i] { "drop" } else { "pass" });
    }
    // The report's per-rule drops equal the live counters.
    let o = Command::new(rxray_bin()).args(["firewall", "simulate", "--json"]).arg(&rules).arg(&pcap).output().unwrap();
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = stats(lab.ns_b(), lab.if_b());
    assert_eq!(rep["rules"][0]["packets"], c["rules"][0]["packets"], "rule 1: {rep} {c}");
    assert_eq!(rep["default"]["packets"], c["default"]["packets"], "default: {rep} {c}");
    assert!(rep["rules"][0]["flows"].as_u64().unwrap() > 0);
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn firewall_commands_under_ip_netns_exec_explain_netns() {
    let Some(lab) = lab() else { return };
    let o = lab.exec(lab.ns_b(), [rxray_bin(), "firewall", "list"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--netns"), "{err}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn watch_on_a_firewalled_interface_observes_through_the_firewall() {
    let Some(lab) = lab() else { return };
    let dir = TempDir::new();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\naction = \"deny\"\nproto = \"udp\"\ndport = 7600\n").unwrap();
    let _off = Off(&lab);
    fw_ok(lab.ns_b(), &["apply", rules.to_str().unwrap(), "-i", lab.if_b(), "--xdp-mode", "native"]);
    let mut watch = Command::new(rxray_bin())
        .args(["--netns", lab.ns_b(), "watch", "--json", "--no-context", "-c", "2", "-i", lab.if_b()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for its "Ctrl-C to stop" line.
    let mut err = std::io::BufReader::new(watch.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !line.contains("Ctrl-C to stop") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut err, &mut line).unwrap() > 0, "watch exited early");
        assert!(Instant::now() < deadline);
    }
    assert!(line.contains("through the firewall"), "{line}");
    let src = spoofed4(&lab, 1);
    let frames = vec![udp4(&lab, src, 7600, 1), udp4(&lab, src, 9000, 2)];
    let got = received(&lab, dir.path(), &frames);
    assert_eq!(got.len(), 1, "the firewall still drops while watch runs");
    let out = watch.wait_with_output().unwrap();
    assert!(out.status.success());
    let events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["udp"]["dport"], 7600);
    assert_eq!(events[0]["firewall"], "drop", "{}", events[0]);
    assert!(events[1].get("firewall").is_none(), "{}", events[1]);
    // watch is gone: its events are off, the rules are not.
    assert!(received(&lab, dir.path(), &[udp4(&lab, src, 7600, 3)]).is_empty(), "still enforcing after watch");
}

/// TCP-flag rules and a SYN rate limit per destination port, judged through `simulate` (the very
/// XDP program, its clock set to each packet's timestamp): exact counts, no wall clock involved.
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn simulate_counts_flag_rules_and_a_syn_limit_per_port_on_capture_time() {
    if !need_root() {
        return;
    }
    let dir = TempDir::new();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"xmas\"\naction = \"deny\"\nproto = \"tcp\"\ntcp_flags = \"FPU/FPU\"\n\n\
         [[rule]]\nname = \"syn per port\"\naction = \"limit\"\nproto = \"tcp\"\ntcp_flags = \"S/SA\"\nrate = \"100/s\"\nburst = 10\nper = \"dport\"\n",
    )
    .unwrap();
    let eth = Eth { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1] };
    let tcp = |src: u8, sport: u16, dport: u16, flags: u8| {
        let mut ip = v4(Ipv4Addr::new(198, 18, 7, src), Ipv4Addr::new(198, 18, 7, 2), sport);
        ip.protocol = ipproto::TCP;
        frames::frame(&eth, &[], L3::Ipv4(ip), L4::Tcp(frames::Tcp { sport, dport, seq: 1, ack: 0, flags, window: 1000, urgent: 0, options: vec![] }), b"")
    };
    use frames::tcp_flags::{ACK, FIN, PSH, SYN, URG};
    let pcap = dir.path().join("syns.pcap");
    let mut w = rxray_io::PcapWriter::new(std::fs::File::create(&pcap).unwrap(), rxray_io::LinkType::ETHERNET, 65535).unwrap();
    let t0 = 1_700_000_000_000_000_000u64;
    let mut n = 0;
    // 2 s of SYNs at 1,000/s to port 80 and 500/s to port 443, from many sources; ACKs and Xmas probes mixed in.
    for ms in 0..2000u64 {
        let ts = t0 + ms * 1_000_000;
        let mut put = |f: Vec<u8>| {
            w.write_packet(ts, f.len() as u32, &f).unwrap();
            n += 1;
        };
        put(tcp((ms % 200) as u8 + 10, 1000 + ms as u16, 80, SYN));
        if ms % 2 == 0 {
            put(tcp((ms % 200) as u8 + 10, 3000 + ms as u16, 443, SYN));
        }
        if ms % 10 == 0 {
            put(tcp(5, 5000 + ms as u16, 80, ACK)); // not a SYN: never limited
            put(tcp(6, 6000 + ms as u16, 22, FIN | PSH | URG));
        }
    }
    drop(w);
    let o = Command::new(rxray_bin()).args(["firewall", "simulate", "--json"]).arg(&rules).arg(&pcap).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep["packets"], n);
    assert_eq!(rep["rules"][0]["packets"], 200, "every Xmas probe: {rep}");
    // Per port over 2 s (the last SYN at 1.999 s): allowed = rate x duration + burst + 1.
    let allowed = |rate: f64, count: u64| (rate * 1.999 + 11.0).floor().min(count as f64) as u64;
    let expected_drops = (2000 - allowed(100.0, 2000)) + (1000 - allowed(100.0, 1000));
    let got = rep["rules"][1]["packets"].as_u64().unwrap();
    assert!(got.abs_diff(expected_drops) <= 2, "SYN limit dropped {got}, expected {expected_drops}: {rep}");
    assert_eq!(rep["dropped"].as_u64().unwrap(), 200 + got);
    assert_eq!(rep["rules"][1]["flows"].as_u64().unwrap(), got, "each dropped SYN is its own flow");
}

/// A byte-rate limit per rule, through `simulate`: 1,000-byte datagrams at 100/s for 2 s against
/// 10 kB/s with a 2 kB burst pass 2 s x 10 pkt/s + 3 (the burst and the first).
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn simulate_applies_a_byte_rate_limit() {
    if !need_root() {
        return;
    }
    let dir = TempDir::new();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\naction = \"limit\"\nproto = \"udp\"\ndport = 9000\nbytes_rate = \"10kB/s\"\nburst_bytes = \"2kB\"\n").unwrap();
    let eth = Eth { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1] };
    let pcap = dir.path().join("bytes.pcap");
    let mut w = rxray_io::PcapWriter::new(std::fs::File::create(&pcap).unwrap(), rxray_io::LinkType::ETHERNET, 65535).unwrap();
    let payload = vec![0u8; 1000 - 14 - 20 - 8];
    for i in 0..200u64 {
        let f = frames::frame(&eth, &[], L3::Ipv4(v4(Ipv4Addr::new(198, 18, 7, 1), Ipv4Addr::new(198, 18, 7, 2), i as u16)),
            L4::Udp(Udp { sport: 4000, dport: 9000 }), &payload);
        assert_eq!(f.len(), 1000);
        w.write_packet(1_700_000_000_000_000_000 + i * 10_000_000, 1000, &f).unwrap();
    }
    drop(w);
    let o = Command::new(rxray_bin()).args(["firewall", "simulate", "--json"]).arg(&rules).arg(&pcap).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let passed = rep["passed"].as_u64().unwrap();
    assert!(passed.abs_diff(23) <= 1, "passed {passed}, expected 23: {rep}");
    assert_eq!(rep["rules"][0]["bytes"].as_u64().unwrap(), (200 - passed) * 1000);
}

/// Atomic updates: two rule sets that both pass a sentinel flow, but whose halves together would
/// drop it (set A's address classes with set B's rules). Applying them in turn, 16 times, while the
/// sentinel flows, must never drop one sentinel.
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn applies_are_atomic_traffic_never_meets_half_a_rule_set() {
    let Some(lab) = lab() else { return };
    let dir = TempDir::new();
    let s1 = spoofed4(&lab, 1);
    let s2 = spoofed4(&lab, 2);
    let a = dir.path().join("a.toml");
    let b = dir.path().join("b.toml");
    // A: rule 1 allows S1 (its class holds rule 1); rule 2 denies UDP 9000 from anyone else.
    std::fs::write(&a, format!("[[rule]]\naction = \"allow\"\nsrc = \"{s1}/32\"\n\n[[rule]]\naction = \"deny\"\nproto = \"udp\"\ndport = 9000\n")).unwrap();
    // B: rule 1 denies UDP 9000 from S2 only; rule 2 allows everything. With A's classes (S1 in
    // rule 1's class) and B's rules, S1's packets would meet B's rule 1 and be dropped.
    std::fs::write(&b, format!("[[rule]]\naction = \"deny\"\nsrc = \"{s2}/32\"\nproto = \"udp\"\ndport = 9000\n\n[[rule]]\naction = \"allow\"\n")).unwrap();
    let _off = Off(&lab);
    fw_ok(lab.ns_b(), &["apply", a.to_str().unwrap(), "-i", lab.if_b(), "--xdp-mode", "native"]);
    let sentinels: Vec<Vec<u8>> = (0..10000u32).map(|i| udp4(&lab, s1, 9000, i)).collect();
    let tap = tap(&lab, dir.path());
    let (ns, ifa) = (lab.ns_a().to_string(), lab.if_a().to_string());
    let sender = std::thread::spawn(move || send_frames_paced(&ns, &ifa, &sentinels, Duration::from_micros(200)).expect("send"));
    for i in 0..16 {
        let f = if i % 2 == 0 { &b } else { &a };
        fw_ok(lab.ns_b(), &["apply", "--force", f.to_str().unwrap(), "-i", lab.if_b(), "--xdp-mode", "native"]);
    }
    let sent = sender.join().unwrap();
    let got = tap.stop().1;
    assert_eq!(sent, 10000);
    let c = stats(lab.ns_b(), lab.if_b());
    // The firewall's own total over every generation: a torn rule set would have dropped sentinels.
    assert_eq!(c["dropped_total"], 0, "the firewall dropped sentinels during the applies: {c}");
    assert!(c["packets_seen"].as_u64().unwrap() >= 10000, "{c}");
    // What tcpdump saw: all of them, give or take what a loaded 2-core VM loses before XDP (veth's
    // 256-frame ring); reported, and bounded.
    eprintln!("sentinels received: {} of 10000", got.len());
    assert!(got.len() >= 9800, "received {} of 10000", got.len());
}

/// A namespace deleted while its firewall was installed leaves pinned maps in bpffs;
/// `rxray detach --orphans` removes them, and only them.
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn detach_orphans_removes_the_state_of_a_deleted_namespace() {
    use std::os::unix::fs::MetadataExt;
    let Some(lab) = lab() else { return };
    let Some(other) = lab_quiet_second() else { return };
    let dir = TempDir::new();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\naction = \"deny\"\nproto = \"udp\"\ndport = 7700\n").unwrap();
    let _off_other = Off(&other);
    for l in [&lab, &other] {
        fw_ok(l.ns_b(), &["apply", rules.to_str().unwrap(), "-i", l.if_b(), "--xdp-mode", "native"]);
    }
    let root_of = |l: &Lab| {
        let ino = std::fs::metadata(format!("/run/netns/{}", l.ns_b())).unwrap().ino();
        PathBuf::from(format!("/sys/fs/bpf/rxray/{ino}"))
    };
    let (gone, kept) = (root_of(&lab), root_of(&other));
    assert!(gone.exists() && kept.exists());
    // The rule descriptions `list` reads, beside the owner locks, keyed by the same inode.
    let gone_run = PathBuf::from("/run/rxray").join(gone.file_name().unwrap());
    assert!(gone_run.exists());
    let out = Command::new("ip").args(["netns", "del", lab.ns_b()]).output().unwrap();
    assert!(out.status.success());
    // The namespace is freed asynchronously once nothing refers to it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = Command::new(rxray_bin()).args(["detach", "-i", "lo", "--orphans"]).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{text}{}", String::from_utf8_lossy(&o.stderr));
        if !gone.exists() {
            assert!(text.contains(&gone.display().to_string()), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "the deleted namespace's firewall state is still there: {text}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(!gone_run.exists(), "a reused inode must not inherit the deleted namespace's run directory");
    assert!(kept.exists(), "a live namespace's firewall is left alone");
    assert!(received(&other, dir.path(), &[udp4(&other, spoofed4(&other, 1), 7700, 1)]).is_empty(), "and keeps enforcing");
}

fn lab_quiet_second() -> Option<Lab> {
    Some(Lab::pair_quiet(&unique_name()).expect("second lab"))
}

/// Where the firewall on the lab's veth-b pins its map `name` (bpffs, by namespace inode and
/// ifindex).
fn fw_pin(lab: &Lab, name: &str) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(format!("/run/netns/{}", lab.ns_b())).unwrap().ino();
    let o = lab.exec(lab.ns_b(), ["cat"]).arg(format!("/sys/class/net/{}/ifindex", lab.if_b())).output().unwrap();
    let ifindex = String::from_utf8_lossy(&o.stdout).trim().to_string();
    PathBuf::from(format!("/sys/fs/bpf/rxray/{ino}/{ifindex}/{name}"))
}

/// A firewall pinned by an older rxray lacks the maps a newer one added (here the source limits'):
/// the commands that open it say so and what to do, `off` removes it, and a new `apply` installs
/// the current one.
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_firewall_installed_by_an_older_rxray_is_named_as_such_and_off_then_apply_replaces_it() {
    let Some(lab) = lab() else { return };
    let dir = TempDir::new();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\naction = \"deny\"\nproto = \"udp\"\ndport = 7700\n").unwrap();
    let _off = Off(&lab);
    fw_ok(lab.ns_b(), &["apply", rules.to_str().unwrap(), "-i", lab.if_b()]);
    let pin = fw_pin(&lab, "rxray_fw_slimits");
    assert!(pin.exists(), "{}", pin.display());
    std::fs::remove_file(&pin).unwrap();
    for args in [vec!["list", "-i", lab.if_b()], vec!["apply", rules.to_str().unwrap(), "-i", lab.if_b()]] {
        let o = fw(lab.ns_b(), &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert!(err.contains("installed by an older rxray (it has no map rxray_fw_slimits)"), "{args:?}: {err}");
        assert!(err.contains(&format!("rxray firewall off -i {}", lab.if_b())), "{err}");
    }
    fw_ok(lab.ns_b(), &["off", "-i", lab.if_b()]);
    fw_ok(lab.ns_b(), &["apply", rules.to_str().unwrap(), "-i", lab.if_b()]);
    assert!(pin.exists(), "the new install has every map");
    fw_ok(lab.ns_b(), &["list", "-i", lab.if_b()]);
}

/// A firewall pinned by an older rxray whose map has another shape: here the flow table as it was
/// (a per-CPU hash of 104-byte values) where this rxray's is a plain hash with its counters inline.
/// The pin is replaced by such a map (bpftool). An observer adopting the firewall's program
/// (`watch` on its interface) and the firewall's own commands name the map, both shapes and the
/// fix, instead of reading counters of another layout; `off` removes it and `apply` installs anew.
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_firewall_map_of_another_shape_is_named_with_both_shapes_and_off_then_apply_replaces_it() {
    let Some(lab) = lab() else { return };
    if !have("bpftool") {
        skip_or_fail("bpftool is not installed");
        return;
    }
    let dir = TempDir::new();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\naction = \"deny\"\nproto = \"udp\"\ndport = 7700\n").unwrap();
    let _off = Off(&lab);
    fw_ok(lab.ns_b(), &["apply", rules.to_str().unwrap(), "-i", lab.if_b()]);
    let pin = fw_pin(&lab, "rxray_flows");
    assert!(pin.exists(), "{}", pin.display());
    std::fs::remove_file(&pin).unwrap();
    let o = Command::new("bpftool")
        .args(["map", "create"])
        .arg(&pin)
        .args(["type", "percpu_hash", "key", "48", "value", "104", "entries", "64", "name", "rxray_flows"])
        .output()
        .expect("bpftool");
    assert!(o.status.success(), "bpftool map create: {}", String::from_utf8_lossy(&o.stderr));
    let want = |what: &str, err: &str| {
        assert!(err.contains("installed by another rxray version (its map rxray_flows is a PerCpuHash with 48-byte keys and 104-byte values; this rxray's is a Hash"), "{what}: {err}");
        assert!(err.contains(&format!("rxray firewall off -i {}", lab.if_b())), "{what}: {err}");
    };
    // Bounded: were the map adopted, watch would wait for packets; `timeout` ends it.
    let o = Command::new("timeout")
        .args(["-s", "INT", "20", rxray_bin(), "--netns", lab.ns_b(), "watch", "-i", lab.if_b(), "-c", "1"])
        .output()
        .expect("run rxray watch");
    assert!(!o.status.success(), "watch adopted a map of another shape");
    want("watch", &String::from_utf8_lossy(&o.stderr));
    let o = fw(lab.ns_b(), &["list", "-i", lab.if_b()]);
    assert!(!o.status.success(), "list");
    want("list", &String::from_utf8_lossy(&o.stderr));
    fw_ok(lab.ns_b(), &["off", "-i", lab.if_b()]);
    fw_ok(lab.ns_b(), &["apply", rules.to_str().unwrap(), "-i", lab.if_b()]);
    let o = Command::new("bpftool").args(["-j", "map", "show", "pinned"]).arg(&pin).output().expect("bpftool");
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).expect("bpftool -j map show");
    assert_eq!(shown["type"], "hash", "the new install's flow table: {shown}");
    fw_ok(lab.ns_b(), &["list", "-i", lab.if_b()]);
}
