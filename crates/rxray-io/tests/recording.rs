//! A flight recorder's recordings written as pcapng: read back by rxray-io's reader (times, lengths,
//! bytes, one interface block per interface) and by tshark (every packet's comment, under
//! `frame.comment`, or `pkt_comment` on Wireshark versions that name it so) and capinfos (the
//! section comment). Expected values come from the frames the test built. Without tshark or
//! capinfos the tool tests skip, and fail under CI=true.
use rxray_engine::recorder::{FlightRecorder, RecorderConfig, Recording};
use rxray_io::write::{recording_comment, write_recording};
use rxray_io::{CaptureReader, LinkType};
use rxray_lab::frames::{self, ipproto, Eth, Ipv4, Tcp, Udp, L3, L4};
use rxray_lab::testing::{have, skip_or_fail, Rng, TempDir};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

const S: u64 = 1_000_000_000;
const T0: u64 = 1_800_000_000 * S;
const SNAP: u32 = 96;

/// One frame the test sent: interface, time, the whole frame.
struct Sent {
    iface: &'static str,
    ts_ns: u64,
    frame: Vec<u8>,
}

/// 400 TCP and UDP frames over three interfaces, 10 ms apart, with payloads long enough that
/// some are cut by the snap length; each frame's source port is its number.
fn traffic() -> Vec<Sent> {
    let mut rng = Rng(0x7ec0_7d3e);
    let eth = Eth { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1] };
    (0..400u16)
        .map(|i| {
            let ip = |protocol| {
                L3::Ipv4(Ipv4 {
                    src: Ipv4Addr::new(198, 18, 0, 1),
                    dst: Ipv4Addr::new(198, 18, 0, 2),
                    ttl: 64,
                    tos: 0,
                    id: i,
                    df: true,
                    mf: false,
                    frag_off_bytes: 0,
                    options: vec![],
                    protocol,
                })
            };
            let payload = vec![b'a' + (i % 26) as u8; rng.below(120)];
            let sport = 20000 + i;
            let frame = if i % 2 == 0 {
                let tcp = Tcp { sport, dport: 80, seq: i as u32, ack: 0, flags: 0x02, window: 1000, urgent: 0, options: vec![] };
                frames::frame(&eth, &[], ip(ipproto::TCP), L4::Tcp(tcp), &payload)
            } else {
                frames::frame(&eth, &[], ip(ipproto::UDP), L4::Udp(Udp { sport, dport: 53 }), &payload)
            };
            Sent { iface: ["veth-a", "veth-b", "lo"][rng.below(3)], ts_ns: T0 + i as u64 * 10_000_000, frame }
        })
        .collect()
}

/// Runs the traffic through a recorder with two overlapping alerts (one on every interface, one on
/// veth-b only) and a third cut short by the end of the capture.
fn recordings(sent: &[Sent]) -> Vec<Recording> {
    let cfg = RecorderConfig { before_ns: S / 2, after_ns: S / 2, snap: SNAP, ..Default::default() };
    let mut r = FlightRecorder::new(cfg).unwrap();
    let mut out = Vec::new();
    for (i, s) in sent.iter().enumerate() {
        r.record(s.iface, s.ts_ns, s.frame.len() as u32, &s.frame);
        match i {
            150 => assert!(r.trigger(17, T0 + 3 * S / 2, "syn_flood", "blocked", None)),
            160 => assert!(r.trigger(18, T0 + 2 * S, "port_scan", "alerted", Some("veth-b"))),
            390 => assert!(r.trigger(19, T0 + 39 * S / 10, "udp_flood", "rate-limited", None)),
            _ => {}
        }
        out.extend(r.poll(s.ts_ns));
    }
    out.extend(r.flush_all());
    assert_eq!(out.iter().map(|r| r.alert_id).collect::<Vec<_>>(), vec![17, 18, 19]);
    out
}

/// The frames of `sent` a window should hold, as (iface, ts, orig_len, data cut to SNAP).
fn expected(sent: &[Sent], start: u64, end: u64, iface: Option<&str>) -> Vec<(String, u64, u32, Vec<u8>)> {
    sent.iter()
        .filter(|s| start <= s.ts_ns && s.ts_ns <= end && iface.is_none_or(|i| i == s.iface))
        .map(|s| (s.iface.to_string(), s.ts_ns, s.frame.len() as u32, s.frame[..s.frame.len().min(SNAP as usize)].to_vec()))
        .collect()
}

fn write_file(dir: &Path, rec: &Recording) -> std::path::PathBuf {
    let path = dir.join(rec.file_name());
    if let Ok(d) = std::env::var("REC_KEEP") { let _ = std::fs::create_dir_all(&d); let _ = std::fs::File::create(Path::new(&d).join(rec.file_name())).map(|f| write_recording(f, rec, LinkType::ETHERNET)); }
    let f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    write_recording(f, rec, LinkType::ETHERNET).unwrap();
    path
}

#[test]
fn recordings_round_trip_through_the_reader_with_one_interface_block_per_interface() {
    let sent = traffic();
    let windows = [(T0 + S, T0 + 2 * S, None), (T0 + 3 * S / 2, T0 + 5 * S / 2, Some("veth-b")), (T0 + 34 * S / 10, T0 + 44 * S / 10, None)];
    for (rec, (start, end, iface)) in recordings(&sent).iter().zip(windows) {
        let mut buf = Vec::new();
        write_recording(&mut buf, rec, LinkType::ETHERNET).unwrap();
        let mut rd = CaptureReader::new(&buf[..]).unwrap();
        let mut got = Vec::new();
        while let Some(r) = rd.next_record() {
            let r = r.unwrap();
            assert_eq!(r.linktype, LinkType::ETHERNET);
            got.push((r.iface_name.unwrap().to_string(), r.ts_ns, r.orig_len, r.data.to_vec()));
        }
        let want = expected(&sent, start, end, iface);
        assert!(want.len() > 20, "the window should hold traffic: {}", want.len());
        assert_eq!(got, want, "alert {}", rec.alert_id);
        // One IDB per interface, in order of first appearance, with the snap length.
        let mut names: Vec<&str> = Vec::new();
        for (i, ..) in &want {
            if !names.contains(&i.as_str()) {
                names.push(i);
            }
        }
        let idbs: Vec<(Option<&str>, u32)> = rd.interfaces().iter().map(|i| (i.name.as_deref(), i.snaplen)).collect();
        assert_eq!(idbs, names.iter().map(|n| (Some(*n), SNAP)).collect::<Vec<_>>());
    }
}

/// Every packet comment, one line per packet, under whichever field name this tshark knows.
fn tshark_comments(path: &Path) -> Vec<String> {
    for field in ["frame.comment", "pkt_comment"] {
        let out = Command::new("tshark").arg("-r").arg(path).args(["-T", "fields", "-e", field]).output().expect("run tshark");
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("valid field") || err.contains(field), "tshark -e {field} failed: {err}");
    }
    panic!("tshark knows neither frame.comment nor pkt_comment");
}

#[test]
fn tshark_reads_every_packet_comment_and_the_file_is_valid() {
    if !have("tshark") {
        return skip_or_fail("tshark is not installed");
    }
    let sent = traffic();
    let dir = TempDir::new();
    let recs = recordings(&sent);
    let want_comments = [
        "rxray alert 17 (syn_flood), verdict: blocked",
        "rxray alert 18 (port_scan), verdict: alerted",
        "rxray alert 19 (udp_flood), verdict: rate-limited",
    ];
    for (rec, want) in recs.iter().zip(want_comments) {
        let path = write_file(dir.path(), rec);
        let comments = tshark_comments(&path);
        assert_eq!(comments.len(), rec.packets.len());
        assert!(comments.iter().all(|c| c == want), "{path:?}: {comments:?}");
        // tshark dissects the frames: the ports the test put in each frame, per interface.
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args(["-T", "fields", "-e", "frame.interface_name", "-e", "tcp.srcport", "-e", "udp.srcport", "-e", "frame.len", "-e", "frame.cap_len"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
        let want_lines: Vec<String> = sent
            .iter()
            .enumerate()
            .filter(|(_, s)| rec.start_ns <= s.ts_ns && s.ts_ns <= rec.end_ns && rec.iface.as_deref().is_none_or(|i| i == s.iface))
            .map(|(i, s)| {
                let port = (20000 + i).to_string();
                let (tcp, udp) = if i % 2 == 0 { (port.as_str(), "") } else { ("", port.as_str()) };
                format!("{}\t{tcp}\t{udp}\t{}\t{}", s.iface, s.frame.len(), s.frame.len().min(SNAP as usize))
            })
            .collect();
        assert_eq!(lines, want_lines, "{path:?}");
    }
}

#[test]
fn capinfos_shows_the_section_comment() {
    if !have("capinfos") {
        return skip_or_fail("capinfos (wireshark-common) is not installed");
    }
    let sent = traffic();
    let dir = TempDir::new();
    for rec in recordings(&sent) {
        let path = write_file(dir.path(), &rec);
        let out = Command::new("capinfos").arg("-k").arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let want = recording_comment(&rec);
        assert!(want.starts_with(&format!("rxray flight recorder: alert {} ({}), verdict: {},", rec.alert_id, rec.detector, rec.verdict)));
        assert!(text.contains(&want), "capinfos -k:\n{text}\nwanted: {want}");
        assert_eq!(want.contains("closed early"), rec.alert_id == 19, "{want}");
    }
}

#[test]
fn overlong_comments_and_names_are_cut_not_corrupting_the_file() {
    // 70,000 bytes of 3-byte characters: over an option's 65,535-byte limit, and not on a boundary.
    let long = "€".repeat(70_000 / 3);
    let mut ng = rxray_io::PcapngWriter::with_comment(Vec::new(), "t", Some(&long)).unwrap();
    let i = ng.add_interface(&long, LinkType::ETHERNET, 100).unwrap();
    ng.write_packet(i, T0, 60, &[7; 60], Some(&long)).unwrap();
    ng.write_packet(i, T0 + 1, 60, &[8; 60], None).unwrap();
    let buf = ng.into_inner();
    let mut rd = CaptureReader::new(&buf[..]).unwrap();
    let a = rd.next_record().unwrap().unwrap();
    let name = a.iface_name.unwrap().to_string();
    assert_eq!((a.ts_ns, a.data.to_vec()), (T0, vec![7; 60]));
    assert_eq!(name.len(), 65_535 / 3 * 3);
    assert!(long.starts_with(&name));
    let b = rd.next_record().unwrap().unwrap();
    assert_eq!((b.ts_ns, b.data.to_vec()), (T0 + 1, vec![8; 60]));
    assert!(rd.next_record().is_none());
}
