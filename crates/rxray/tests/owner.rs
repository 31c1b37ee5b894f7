//! One owner per interface: a second command gets a clear message naming the owner; a killed
//! owner leaves nothing that `rxray detach` does not remove; an orphaned rxray XDP program (left by
//! a netlink attach) is removed by `detach` too.
mod common;
use common::*;
use rxray_lab::Lab;
use serde_json::{json, Value};
use std::{path::Path, process::Command, time::Duration};

fn netns_inode(ns: &str) -> String {
    let out = Command::new("ip").args(["netns", "exec", ns, "stat", "-L", "-c", "%i", "/proc/self/ns/net"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_second_command_names_the_owner() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let mut w = Running::start(lab.ns_b(), &["watch", "-i", "veth-b", "--json"]);
    w.wait_stderr("rxray: watching", Duration::from_secs(20));
    let st = iface_state(lab.ns_b(), "veth-b");
    assert_eq!(st["owner_pid"], json!(w.pid()), "{st}");
    assert_eq!(st["tc_ingress"], json!([{"prog_id": st["tc_ingress"][0]["prog_id"], "prog_name": "rxray_tc"}]), "{st}");
    let (code, _out, err) = rxray_in(lab.ns_b(), &["flows", "-i", "veth-b"]);
    assert_eq!(code, Some(1));
    let want = format!("veth-b is owned by rxray watch (pid {})", w.pid());
    assert!(err.trim().lines().count() == 1 && err.contains(&want), "{err}");
    let (code, _, err) = w.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    // A clean exit leaves nothing behind.
    let st = iface_state(lab.ns_b(), "veth-b");
    assert_eq!((st["xdp"].clone(), st["tc_ingress"].clone(), st["owner"].clone(), st["stale_owner"].clone()), (Value::Null, json!([]), Value::Null, json!(false)), "{st}");
    assert!(!Path::new(&format!("/run/rxray/{}", netns_inode(lab.ns_b()))).exists());
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_killed_watch_leaves_nothing_detach_does_not_remove() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let ino = netns_inode(lab.ns_b());
    let lock_dir = format!("/run/rxray/{ino}");
    let w = Running::start(lab.ns_b(), &["watch", "-i", "veth-b"]);
    let mut w = w;
    w.wait_stderr("rxray: watching", Duration::from_secs(20));
    w.kill9();
    let st = iface_state(lab.ns_b(), "veth-b");
    assert_eq!(st["stale_owner"], json!(true), "{st}");
    assert_eq!((st["xdp"].clone(), st["tc_ingress"].clone()), (Value::Null, json!([])), "the bpf_link went with the process: {st}");
    let (code, out, err) = rxray_in(lab.ns_b(), &["detach", "-i", "veth-b"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("removed the stale owner lock"), "{out}");
    assert!(!Path::new(&lock_dir).exists(), "{lock_dir} left behind");
    let st = iface_state(lab.ns_b(), "veth-b");
    assert_eq!((st["stale_owner"].clone(), st["xdp"].clone()), (json!(false), Value::Null));
    let (code, out, _) = rxray_in(lab.ns_b(), &["detach"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), "nothing to remove");
    // And the interface can be taken again.
    let mut w = Running::start(lab.ns_b(), &["watch", "-i", "veth-b"]);
    w.wait_stderr("rxray: watching", Duration::from_secs(20));
    let (code, _, err) = w.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn detach_removes_an_orphaned_rxray_program() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let obj = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bpf/obj/xdp_ingress.bpf.o");
    let st = Command::new("ip").args(["-n", lab.ns_b(), "link", "set", "dev", "veth-b", "xdpgeneric", "obj", obj, "sec", "xdp"]).status().unwrap();
    assert!(st.success(), "leaving a netlink-attached program behind");
    let st = iface_state(lab.ns_b(), "veth-b");
    assert_eq!(st["xdp"]["prog_name"], json!("rxray_xdp"));
    // Attaching over it fails with a hint.
    let (code, _, err) = rxray_in(lab.ns_b(), &["watch", "-i", "veth-b", "--xdp-mode", "generic"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("rxray detach -i veth-b"), "{err}");
    let (code, out, err) = rxray_in(lab.ns_b(), &["detach", "-i", "veth-b"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("detached XDP program rxray_xdp"), "{out}");
    assert_eq!(iface_state(lab.ns_b(), "veth-b")["xdp"], Value::Null);
}
