//! `rxray analyze` beside its peers on one generated capture (>= 1,000,000 packets, >= 100,000
//! flows): packets/s and peak RSS for rxray, `tcpdump -nn -r` and `tshark -q -z conv,ip -r`, with ratios.
//! Run: `scripts/bench-analyze` (builds rxray in release first). Prints figures; asserts nothing.
use rxray_io::{LinkType, PcapWriter};
use std::process::Command;
use std::time::Instant;

/// The README's size; RXRAY_BENCH_PACKETS=N makes a smaller capture (scripts/bench-all's quick run),
/// with one conversation per 8 packets as here.
const PACKETS: usize = 1_000_000;
const PACKETS_PER_FLOW: usize = 8;

fn packets() -> usize {
    match std::env::var("RXRAY_BENCH_PACKETS") {
        Err(_) => PACKETS,
        Ok(v) => match v.parse::<usize>() {
            Ok(n) if n >= PACKETS_PER_FLOW => n,
            _ => {
                eprintln!("bench analyze: RXRAY_BENCH_PACKETS must be a whole number of at least {PACKETS_PER_FLOW}, not {v:?}");
                std::process::exit(2);
            }
        },
    }
}

/// An Ethernet frame of flow `i` (TCP or UDP, IPv4 or IPv6, some VLAN-tagged), `k`-th packet.
fn frame(buf: &mut Vec<u8>, i: usize, k: usize) {
    buf.clear();
    buf.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    if i % 4 == 1 {
        buf.extend_from_slice(&[0x81, 0x00, 0, (i % 4000) as u8]);
    }
    let v6 = i.is_multiple_of(5);
    let tcp = !i.is_multiple_of(3);
    let l4_len = if tcp { 20 } else { 8 };
    let payload = 16 + (i * 7 + k * 13) % 1200;
    let rev = k % 2 == 1;
    let (a, b) = ((i as u32).to_be_bytes(), [10, 1, 0, (i % 200) as u8]);
    let (src, dst) = if rev { (b, a) } else { (a, b) };
    let (sp, dp) = if rev { (443u16, 1024 + (i % 60000) as u16) } else { (1024 + (i % 60000) as u16, 443u16) };
    if v6 {
        buf.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        buf.extend_from_slice(&((l4_len + payload) as u16).to_be_bytes());
        buf.extend_from_slice(&[if tcp { 6 } else { 17 }, 64]);
        buf.extend_from_slice(&[0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
        buf.extend_from_slice(&src);
        buf.extend_from_slice(&[0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
        buf.extend_from_slice(&dst);
    } else {
        buf.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        buf.extend_from_slice(&((20 + l4_len + payload) as u16).to_be_bytes());
        buf.extend_from_slice(&[0, 0, 0x40, 0, 64, if tcp { 6 } else { 17 }, 0, 0]);
        buf.extend_from_slice(&src);
        buf.extend_from_slice(&dst);
    }
    buf.extend_from_slice(&sp.to_be_bytes());
    buf.extend_from_slice(&dp.to_be_bytes());
    if tcp {
        buf.extend_from_slice(&(k as u32).to_be_bytes());
        buf.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        buf.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
    }
    buf.resize(buf.len() + payload, 0x61);
}

struct Run {
    name: &'static str,
    secs: f64,
    /// User plus system CPU seconds: on a loaded machine, the figure the wall time hides.
    cpu: f64,
    rss_kb: u64,
}

fn time(name: &'static str, cmd: &str) -> Option<Run> {
    let t = Instant::now();
    let out = Command::new("/usr/bin/time").args(["-v", "sh", "-c", cmd]).env("TZ", "UTC").output().ok()?;
    let secs = t.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        eprintln!("{name}: failed: {err}");
        return None;
    }
    let rss_kb = err.lines().find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): ")).and_then(|v| v.parse().ok())?;
    let field = |k: &str| err.lines().find_map(|l| l.trim().strip_prefix(k)).and_then(|v| v.trim().parse::<f64>().ok());
    let cpu = field("User time (seconds):")? + field("System time (seconds):")?;
    Some(Run { name, secs, cpu, rss_kb })
}

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let rxray = std::env::var("RXRAY_BIN").unwrap_or_else(|_| format!("{root}/target/release/rxray"));
    let path = std::env::temp_dir().join(format!("rxray-bench-{}.pcap", std::process::id()));
    let mut w = PcapWriter::new(std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap()), LinkType::ETHERNET, 262144).unwrap();
    let mut buf = Vec::with_capacity(2048);
    let (packets, flows) = (packets(), packets() / PACKETS_PER_FLOW);
    // Each flow sends packets/flows packets alternating direction: 2 * flows one-way flows.
    for n in 0..packets {
        let (i, k) = (n % flows, n / flows);
        frame(&mut buf, i, k);
        w.write_packet(1_700_000_000_000_000_000 + n as u64 * 1000, buf.len() as u32, &buf).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!("capture: {packets} packets, {flows} conversations ({} one-way flows), {} MB", 2 * flows, size / 1_000_000);
    let p = path.display();
    let runs: Vec<Run> = [
        time("rxray analyze", &format!("{rxray} analyze --json --top 0 {p} > /dev/null")),
        time("rxray analyze (text, top 20)", &format!("{rxray} analyze {p} > /dev/null")),
        time("tcpdump -nn -r", &format!("tcpdump -nn -r {p} > /dev/null 2>&1")),
        time("tshark -q -z conv,ip -r", &format!("tshark -q -z conv,ip -r {p} > /dev/null 2>&1")),
    ]
    .into_iter()
    .flatten()
    .collect();
    println!("{:<30} {:>9} {:>14} {:>12} {:>12}", "", "seconds", "packets/s", "CPU seconds", "peak RSS MB");
    for r in &runs {
        println!("{:<30} {:>9.2} {:>14.0} {:>12.2} {:>12.1}", r.name, r.secs, packets as f64 / r.secs, r.cpu, r.rss_kb as f64 / 1024.0);
    }
    if let Some(rx) = runs.first().filter(|r| r.name == "rxray analyze") {
        for peer in runs.iter().filter(|r| !r.name.starts_with("rxray")) {
            println!(
                "rxray vs {:<24} {:>6.1}x packets/s, {:>6.1}x less CPU, {:>6.2}x memory",
                peer.name,
                peer.secs / rx.secs,
                peer.cpu / rx.cpu,
                rx.rss_kb as f64 / peer.rss_kb as f64
            );
        }
    }
    if std::env::var_os("RXRAY_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_file(&path);
    } else {
        println!("kept {p}");
    }
}
