//! A host where nothing mounted the BPF filesystem: in a private mount namespace (`unshare -m`) whose
//! /sys/fs/bpf is not a bpffs, rxray mounts one itself, the firewall installs, a block holds with no
//! rxray process running, and the demo's second part (the firewall and the detectors) runs.
mod common;

use common::*;
use rxray_lab::Lab;
use std::process::Command;

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn without_a_mounted_bpffs_rxray_mounts_one_and_the_firewall_and_demo_work() {
    if !need_root() {
        return;
    }
    if !have("unshare") || !have("ping") {
        skip_or_fail("needs unshare (util-linux) and ping (iputils-ping)");
        return;
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let (ns_a, ns_b, if_b) = (lab.ns_a().to_string(), lab.ns_b().to_string(), lab.if_b().to_string());
    let a = lab.addr4_a().to_string();
    let b = lab.addr4_b().to_string();
    let rx = rxray_bin();
    // Everything below runs in one private mount namespace (it ends with the script); the host's
    // mounts are not touched. Whatever the host has, this namespace starts without a bpffs.
    let script = format!(
        r#"set -u
while [ "$(stat -f -c %T /sys/fs/bpf)" = bpf_fs ]; do umount -l /sys/fs/bpf || exit 9; done
echo "before: $(stat -f -c %T /sys/fs/bpf)"
{rx} --netns {ns_b} firewall block {a} --ttl 10m -i {if_b} || exit 10
echo "after: $(stat -f -c %T /sys/fs/bpf)"
echo "processes in {ns_b}: $(ip netns pids {ns_b} | wc -l)"
ip netns exec {ns_a} ping -n -c 3 -i 0.2 -W 1 -w 4 {b}
{rx} --netns {ns_b} firewall stats --json -i {if_b} || exit 11
{rx} --netns {ns_b} firewall off -i {if_b} || exit 12
{rx} demo --seconds 1 --flows 60 || exit 13
"#
    );
    let o = Command::new("unshare").args(["-m", "--propagation", "private", "bash", "-c", &script]).output().expect("unshare");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    let all = format!("stdout:\n{out}\nstderr:\n{err}");
    assert!(o.status.success(), "the script failed ({}): {all}", o.status);
    assert!(out.lines().any(|l| l.starts_with("before: ") && l != "before: bpf_fs"), "{all}");
    assert!(err.lines().any(|l| l.starts_with("rxray: mounted a BPF filesystem at /sys/fs/bpf")), "{all}");
    assert!(out.contains("after: bpf_fs"), "{all}");
    // The block holds in the kernel alone: no rxray process while the pings went out.
    assert!(out.contains(&format!("processes in {ns_b}: 0")), "{all}");
    let pings = out.lines().find(|l| l.contains("packets transmitted")).unwrap_or_else(|| panic!("no ping summary: {all}"));
    let sent: u64 = pings.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{pings}"));
    assert!(sent >= 3 && pings.contains(" 0 received"), "every ping is dropped: {pings}");
    let stats = out.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no stats JSON: {all}"));
    let v: serde_json::Value = serde_json::from_str(stats).unwrap();
    let dropped = v["counters"]["blocks"]["packets"].as_u64().unwrap_or_else(|| panic!("{v}"));
    assert!(dropped >= sent, "the block counted {dropped} drops of the {sent} pings: {v}");
    // The demo's second part ran, with no "skipping" line.
    assert!(!out.contains("skipping the firewall part"), "{all}");
    assert!(out.contains("part 2: the firewall and the detectors") && out.contains("-> blocked 198.18.0.66/32"), "{all}");
}
