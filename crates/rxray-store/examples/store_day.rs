//! A day of history written straight through the store's API, as the agent writes it: RATE flow
//! rows per second of event time for SECONDS, one batch (one transaction) every BATCH_S seconds
//! (the agent reads its flow table every flow_period_s, 30 s by default), over CLIENTS client
//! addresses talking to 200 servers. Prints the write rate and size as it goes (stderr) and at the
//! end (stdout). The store is then read by `rxray investigate` / `rxray history` (scripts/bench-store).
//!   store_day DIR RATE SECONDS BATCH_S CLIENTS [CACHE_MIB]
#[path = "shared/day_flows.rs"]
mod day_flows;

use rxray_store::{Batch, Store};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

/// The day starts here (Unix seconds): 2026-12-01T00:00:00Z.
pub const DAY0: u64 = 1_796_083_200;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 6 && a.len() != 7 {
        eprintln!("usage: store_day DIR RATE SECONDS BATCH_S CLIENTS [CACHE_MIB]");
        std::process::exit(2);
    }
    let num = |i: usize| -> u64 { a[i].parse().unwrap_or_else(|_| panic!("argument {i} ({:?}) is not a number", a[i])) };
    let (rate, seconds, batch_s, clients) = (num(2), num(3), num(4).max(1), num(5).max(1));
    let mut s = Store::open(std::path::Path::new(&a[1]), "bench").expect("opening the store");
    if a.len() == 7 {
        s.set_cache_bytes(num(6) << 20).expect("setting the cache");
    }
    const S: u64 = 1_000_000_000;
    let t0 = DAY0 * S;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let start = Instant::now();
    let (mut written, mut last_report) = (0u64, Instant::now());
    let mut sec = 0u64;
    while sec < seconds {
        let end = (sec + batch_s).min(seconds);
        let mut b = Batch { ts: t0 + end * S, ..Default::default() };
        for t in sec..end {
            for _ in 0..rate {
                let r = next();
                let c = (r % clients) as u32;
                // Clients in 198.18.0.0/16 from .0.1 on; servers 198.19.0.1..=200.
                let client = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 1)) + c));
                b.flows.push(day_flows::flow_row(r, t0, t, client));
            }
        }
        written += b.flows.len() as u64;
        s.write(&b, 0).expect("writing a batch");
        sec = end;
        if last_report.elapsed().as_secs() >= 30 {
            last_report = Instant::now();
            eprintln!(
                "store_day: {:.1} h of event time, {written} rows, {:.0} rows/s, {:.2} GB",
                sec as f64 / 3600.0,
                written as f64 / start.elapsed().as_secs_f64(),
                s.size_bytes() as f64 / 1e9
            );
        }
    }
    let secs = start.elapsed().as_secs_f64();
    s.checkpoint().expect("checkpoint");
    let size = s.size_bytes();
    println!(
        "store_day: {written} flow rows ({seconds} s at {rate}/s, a batch every {batch_s} s, {clients} clients) in {secs:.0} s: {:.0} rows/s; {:.2} GB after a checkpoint ({:.1} MB per million flows)",
        written as f64 / secs,
        size as f64 / 1e9,
        size as f64 / 1e6 / (written as f64 / 1e6)
    );
}
