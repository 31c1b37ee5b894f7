//! Captures in tests: frames of many sizes (some tagged 802.1Q) to capture, and a pcapng read
//! back record by record and by tshark.
use rxray_io::CaptureReader;
use rxray_lab::frames::{self, ipproto, Eth, Ipv4, Udp, Vlan, L3, L4};
use rxray_lab::Lab;
use std::process::Command;

/// UDP frames of sizes from 60 to the veth's 1514, so some span two capture chunks; every third
/// one carries an 802.1Q tag (which the stack takes off before a TC hook: capture puts it back).
pub fn frames_for(lab: &Lab, n: usize) -> Vec<Vec<u8>> {
    let eth = Eth { dst: lab.mac_b(), src: lab.mac_a() };
    (0..n)
        .map(|i| {
            let ip = Ipv4 { src: lab.addr4_a(), dst: lab.addr4_b(), ttl: 64, tos: 0, id: i as u16, df: false, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::UDP };
            let size = 18 + (i * 97) % (1514 - 42 - 18);
            let payload: Vec<u8> = (0..size).map(|k| (k * 31 + i) as u8).collect();
            let tags = if i % 3 == 2 { vec![Vlan { tpid: frames::TPID_8021Q, tci: (i % 4000) as u16 + 1 }] } else { vec![] };
            frames::frame(&eth, &tags, L3::Ipv4(ip), L4::Udp(Udp { sport: 4000, dport: 5000 + i as u16 }), &payload)
        })
        .collect()
}

pub fn read_all(path: &std::path::Path) -> Vec<(u32, Vec<u8>, Option<u32>)> {
    let mut r = CaptureReader::new(std::fs::File::open(path).expect("open capture")).expect("pcapng header");
    let mut v = Vec::new();
    while let Some(rec) = r.next_record() {
        let rec = rec.expect("record");
        v.push((rec.orig_len, rec.data.to_vec(), rec.queue));
    }
    v
}

pub fn tshark_fields(path: &std::path::Path) -> Vec<String> {
    let out = Command::new("tshark").args(["-r"]).arg(path).args(["-T", "fields", "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.comment"]).output().expect("tshark");
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("appears to be damaged") && !err.contains("cut short"), "tshark complained: {err}");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

