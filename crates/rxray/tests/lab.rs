//! `rxray demo` and `rxray lab up|down|status`, as a new user runs them.
mod common;
use common::*;
use std::process::Command;

fn netns_list() -> String {
    String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).into_owned()
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn demo_shows_packets_and_flows_and_cleans_up() {
    if !need_root() {
        return;
    }
    let out = Command::new(rxray_bin()).args(["demo", "--seconds", "2", "--flows", "120"]).output().expect("demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("attached to veth-b"), "{text}");
    assert!(text.contains("latest packets:") && text.contains("IFACE    PROTO"), "{text}");
    assert_eq!(text.lines().last(), Some("demo done; removing the lab"), "{text}");
    // "demo: sent N frames; rxray saw M packets in K flows"
    let last = text.lines().find(|l| l.starts_with("demo: sent")).unwrap_or_else(|| panic!("{text}"));
    let nums: Vec<u64> = last.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    assert!(nums.len() == 3, "{last}");
    let (sent, seen, flows) = (nums[0], nums[1], nums[2]);
    assert!(sent >= 120 && seen >= sent, "every generated frame is seen (pings and neighbour discovery add more): {last}");
    // 120 generated flows: 80 with ports, plus one ICMP and one ICMPv6 conversation.
    assert!(flows >= 82, "{last}");
    assert!(!netns_list().lines().any(|l| l.starts_with("rxdemo")), "demo namespaces left: {}", netns_list());
    // Part 2: the rules drop what they name, the SYN flood is caught and its source blocked.
    assert!(text.contains("ALERT syn_flood 198.18.0.66") && text.contains("-> blocked 198.18.0.66/32"), "{text}");
    let count = |prefix: &str| -> u64 {
        let l = text.lines().find(|l| l.trim_start().starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in {text}"));
        l.split(':').nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{l}"))
    };
    assert!(count("rule 1 (no DNS") > 0, "{text}");
    assert!(count("dynamic blocks") > 0, "{text}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn lab_up_status_down() {
    if !need_root() {
        return;
    }
    let run = |args: &[&str]| {
        let o = Command::new(rxray_bin()).args(args).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    /// Removes the lab even when an assertion below fails.
    struct Down;
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = Command::new(rxray_bin()).args(["lab", "down"]).output();
        }
    }
    let _ = run(&["lab", "down"]);
    let _down = Down;
    let (code, out, err) = run(&["lab", "up"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("rxlab-a") && out.contains("198.18.0.2"), "{out}");
    let (code, out, _) = run(&["lab", "status"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("rxlab-b:") && out.contains("198.18.0.2/24") && out.contains("2001:2::2/64"), "{out}");
    // The lab has no route out.
    let routes = Command::new("ip").args(["-n", "rxlab-b", "route", "show", "default"]).output().unwrap();
    assert!(routes.stdout.is_empty());
    let (code, _, err) = run(&["lab", "up"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("already up"), "{err}");
    let (code, out, _) = run(&["lab", "down"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("removed rxlab-a, rxlab-b"), "{out}");
    let (_, out, _) = run(&["lab", "status"]);
    assert!(out.contains("the lab is down"), "{out}");
}
