//! The store's write rate and size, and a query's time: writes FLOWS flow rows (1,000 distinct
//! sources, batches of BATCH rows, one second of event time per batch), then times an
//! `investigate`-style query of one source over the whole span.
//!   store_bench DIR FLOWS BATCH
use rxray_store::{AddrRange, Batch, FlowRow, Query, Store};
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (dir, flows, batch): (&str, u64, u64) = (&a[1], a[2].parse().expect("FLOWS"), a[3].parse().expect("BATCH"));
    let mut s = Store::open(std::path::Path::new(dir), "bench").expect("open");
    const S: u64 = 1_000_000_000;
    let t0 = 1_800_000_000 * S;
    let start = Instant::now();
    let mut written = 0u64;
    let mut second = 0u64;
    while written < flows {
        let mut b = Batch { ts: t0 + second * S, ..Default::default() };
        for j in 0..batch.min(flows - written) {
            let i = written + j;
            b.flows.push(FlowRow {
                ts_start: t0 + second * S,
                ts_end: t0 + second * S + S / 2,
                iface: "eth1".into(),
                proto: 6,
                src: std::net::Ipv4Addr::new(198, 18, (i % 1000 / 250) as u8, (i % 250) as u8 + 1).into(),
                sport: (1024 + i % 60000) as u16,
                dst: "198.19.0.2".parse().unwrap(),
                dport: 443,
                packets: 10 + i % 7,
                bytes: 1000 + i % 999,
                closed: i % 3 == 0,
                drops: 0,
                last_drop: None,
                pid: Some(4242),
                comm: Some("nginx".into()),
                cgroup: Some("/system.slice/nginx.service".into()),
            });
        }
        written += b.flows.len() as u64;
        s.write(&b, 0).expect("write");
        second += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let size = s.size_bytes();
    let q = Query { since: 0, until: u64::MAX, addr: Some(AddrRange::parse("198.18.0.7").unwrap()), limit: 1_000_000, ..Default::default() };
    let qs = Instant::now();
    let r = s.query(&q).expect("query");
    let qt = qs.elapsed().as_secs_f64();
    println!(
        "{written} rows in {secs:.2} s: {:.0} rows/s; {:.1} MB on disk ({:.1} MB per million flows); one source's {} rows over {second} s of history read in {:.3} s",
        written as f64 / secs,
        size as f64 / 1e6,
        size as f64 / 1e6 / (written as f64 / 1e6),
        r.flows.len(),
        qt
    );
}
