//! `rxray capture` in a lab: the pcapng holds exactly the frames sent (count, original length,
//! bytes), tshark reads it without complaint (from a file and from a pipe), the snap length cuts
//! packets but keeps their original length, and -C rotates files without losing a packet.
mod common;
use common::*;
use common::pcap::{frames_for, read_all, tshark_fields};
use rxray_lab::{send_frames, Lab};
use std::{
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

fn capture(lab: &Lab, args: &[&str], frames: &[Vec<u8>]) {
    let mut all = vec!["capture", "-i", "veth-b"];
    all.extend_from_slice(args);
    let mut r = Running::start(lab.ns_b(), &all);
    r.wait_stderr("rxray: capturing on veth-b", Duration::from_secs(20));
    assert_eq!(send_frames(lab.ns_a(), "veth-a", frames).expect("send"), frames.len());
    let (code, _out, err) = r.finish();
    assert_eq!(code, Some(0), "{err:?}");
    assert!(err.iter().any(|l| l.contains(&format!("{} packets captured, 0 lost", frames.len()))), "{err:?}");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn capture_holds_exactly_the_frames_sent() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let dir = TempDir::new();
    let file = dir.path().join("cap.pcapng");
    let sent = frames_for(&lab, 200);
    capture(&lab, &["-w", file.to_str().unwrap(), "-c", "200"], &sent);
    let got = read_all(&file);
    assert_eq!(got.len(), sent.len());
    for (i, ((orig, data, _), want)) in got.iter().zip(&sent).enumerate() {
        assert_eq!(*orig as usize, want.len(), "frame {i} original length");
        assert_eq!(data, want, "frame {i} bytes");
    }
    let lines = tshark_fields(&file);
    assert_eq!(lines.len(), sent.len());
    for (l, want) in lines.iter().zip(&sent) {
        assert_eq!(l, &format!("{}\t{}\trxq=0", want.len(), want.len()));
    }
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn snap_length_cuts_but_keeps_the_original_length() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let dir = TempDir::new();
    let file = dir.path().join("snap.pcapng");
    let sent = frames_for(&lab, 50);
    capture(&lab, &["-w", file.to_str().unwrap(), "-c", "50", "-s", "100"], &sent);
    let got = read_all(&file);
    assert_eq!(got.len(), 50);
    for ((orig, data, _), want) in got.iter().zip(&sent) {
        assert_eq!(*orig as usize, want.len());
        assert_eq!(data[..], want[..want.len().min(100)]);
    }
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn capture_streams_to_tshark_through_a_pipe() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let sent = frames_for(&lab, 30);
    let mut rx = Command::new("ip")
        .args(["netns", "exec", lab.ns_b(), rxray_bin(), "capture", "-i", "veth-b", "-w", "-", "-c", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ts = Command::new("tshark")
        .args(["-r", "-", "-T", "fields", "-e", "frame.len"])
        .stdin(rx.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the attach message before sending.
    let mut err = rx.stderr.take().unwrap();
    let mut buf = [0u8; 256];
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains("capturing on") && std::time::Instant::now() < deadline {
        let n = std::io::Read::read(&mut err, &mut buf).unwrap_or(0);
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    send_frames(lab.ns_a(), "veth-a", &sent).unwrap();
    let out = ts.wait_with_output().unwrap();
    assert!(rx.wait().unwrap().success());
    let lens: Vec<usize> = String::from_utf8_lossy(&out.stdout).lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(lens, sent.iter().map(|f| f.len()).collect::<Vec<_>>(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::io::stderr().flush();
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn file_size_rotation_keeps_every_packet() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let dir = TempDir::new();
    let base = dir.path().join("rot.pcapng");
    let sent = frames_for(&lab, 1500); // ~1.1 MB of frames
    capture(&lab, &["-w", base.to_str().unwrap(), "-c", "1500", "-C", "1"], &sent);
    let mut all = read_all(&base);
    let second = dir.path().join("rot.pcapng1");
    assert!(second.exists(), "-C 1 must have started a second file");
    all.extend(read_all(&second));
    assert!(!dir.path().join("rot.pcapng2").exists());
    assert_eq!(all.len(), sent.len());
    for ((_, data, _), want) in all.iter().zip(&sent) {
        assert_eq!(data, want);
    }
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_filter_captures_only_matching_packets() {
    if !need_root() {
        return;
    }
    let lab = Lab::pair_quiet(&unique_name()).expect("lab");
    let dir = TempDir::new();
    let file = dir.path().join("f.pcapng");
    let sent = frames_for(&lab, 60); // UDP dport 5000 + i
    // As in tcpdump, `udp` does not match an 802.1Q frame (that needs `vlan and udp`).
    let tagged = |f: &Vec<u8>| f[12..14] == [0x81, 0x00];
    let want: Vec<&Vec<u8>> = sent.iter().enumerate().filter(|(i, f)| 5000 + *i as u16 >= 5040 && !tagged(f)).map(|(_, f)| f).collect();
    let mut r = Running::start(lab.ns_b(), &["capture", "-i", "veth-b", "-w", file.to_str().unwrap(), "udp", "and", "dst", "portrange", "5040-5100"]);
    r.wait_stderr("rxray: capturing on veth-b", Duration::from_secs(20));
    send_frames(lab.ns_a(), "veth-a", &sent).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (code, _, err) = r.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let got = read_all(&file);
    assert_eq!(got.len(), want.len(), "{err:?}");
    for ((_, data, _), w) in got.iter().zip(want) {
        assert_eq!(data, w);
    }
}
