//! The pcapng writer against tshark: files and a pipe (`tshark -r -`) must show the lengths,
//! comments and nanosecond timestamps that were written. Skips (fails under CI=true) without tshark.
use rxray_io::{LinkType, PcapngWriter};
use rxray_lab::testing::{have, skip_or_fail, TempDir};
use std::io::Write;
use std::process::{Command, Stdio};

const FIELDS: [&str; 10] = ["-T", "fields", "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.comment", "-e", "frame.time_epoch"];

fn packets() -> Vec<(u64, u32, Vec<u8>, Option<String>)> {
    (0..50u64)
        .map(|i| {
            let data = vec![i as u8; 60 + i as usize];
            let orig = if i % 3 == 0 { 1500 } else { data.len() as u32 };
            let comment = (i % 2 == 0).then(|| format!("packet {i}"));
            (1_700_000_000_000_000_000 + i * 1_000_000_007, orig, data, comment)
        })
        .collect()
}

fn write(w: impl Write) -> std::io::Result<()> {
    let mut ng = PcapngWriter::new(w, "rxray tests")?;
    let a = ng.add_interface("eth0", LinkType::ETHERNET, 262144)?;
    let b = ng.add_interface("eth1", LinkType::ETHERNET, 262144)?;
    for (i, (ts, orig, data, c)) in packets().iter().enumerate() {
        ng.write_packet(if i % 2 == 0 { a } else { b }, *ts, *orig, data, c.as_deref())?;
    }
    ng.flush()
}

fn expected() -> Vec<String> {
    packets()
        .iter()
        .map(|(ts, orig, data, c)| {
            format!("{orig}\t{}\t{}\t{}.{:09}", data.len(), c.clone().unwrap_or_default(), ts / 1_000_000_000, ts % 1_000_000_000)
        })
        .collect()
}

fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out).lines().map(str::to_string).collect()
}

#[test]
fn tshark_reads_the_pcapng_file_with_nanosecond_times_and_comments() {
    if !have("tshark") {
        return skip_or_fail("tshark is not installed");
    }
    let dir = TempDir::new();
    let path = dir.path().join("w.pcapng");
    write(std::io::BufWriter::new(std::fs::File::create(&path).unwrap())).unwrap();
    let out = Command::new("tshark").arg("-r").arg(&path).args(FIELDS).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines(&out.stdout), expected());
}

#[test]
fn tshark_reads_the_pcapng_stream_from_a_pipe() {
    if !have("tshark") {
        return skip_or_fail("tshark is not installed");
    }
    let mut child = Command::new("tshark")
        .args(["-r", "-"])
        .args(FIELDS)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    write(child.stdin.take().unwrap()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines(&out.stdout), expected());
}
