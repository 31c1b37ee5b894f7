//! One full day of stored history, made fast for `investigate`'s benchmark (scripts/bench-investigate):
//! the store's real schema (opened through `Store::open`, every migration run) and its real writer
//! (`Store::write`, one transaction per minute of event time), with bench-mode settings for the
//! generation only: the flow table's indexes are dropped while rows go in (appends instead of random
//! B-tree inserts), then made again from their own definitions in the schema, sorted once; a 1 GiB
//! page cache. The file that results is the one the agent would have written.
//!
//! Traffic: RATE flow rows per second of event time over 24 h (2026-12-01 UTC), CLIENTS client
//! addresses in 198.18.0.0/16 talking to 200 servers in 198.19.0.0/24 on 443, 80, 53 and 5432, with
//! durations up to 30 s. Addresses of interest, on top:
//!   198.18.0.77    an ordinary client (1/CLIENTS of the flows), also an HTTP client every minute;
//!   198.18.200.1   a scanner at 12:00-12:10: 100 flows/s to one server's ports 1..=60000, a
//!                  port-scan alert at 12:00:30, a block with a TTL, and its connections;
//!   198.18.100.100 a heavy client: 5% of all flows.
//! HTTP: every minute, 50 clients (198.18.0.50..=99) call 3 endpoints of 198.19.0.1:8080.
//!   store_day_bulk DIR [RATE] [CLIENTS]    (default 1000, 10000)
#[path = "shared/day_flows.rs"]
mod day_flows;

use rxray_store::{AlertRow, Batch, ConnRow, FlowRow, Histogram, HttpRow, MitigationRow, Store};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

/// The day starts here (Unix seconds): 2026-12-01T00:00:00Z.
const DAY0: u64 = 1_796_083_200;
const S: u64 = 1_000_000_000;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if !(2..=4).contains(&a.len()) {
        eprintln!("usage: store_day_bulk DIR [RATE] [CLIENTS]");
        std::process::exit(2);
    }
    let num = |i: usize, d: u64| -> u64 { a.get(i).map(|v| v.parse().unwrap_or_else(|_| panic!("argument {i} ({v:?}) is not a number"))).unwrap_or(d) };
    let (rate, clients) = (num(2, 1000), num(3, 10_000).max(1));
    let dir = std::path::Path::new(&a[1]);
    let db = dir.join(rxray_store::FILE);
    assert!(!db.exists(), "{} exists: give a new directory", db.display());

    // The real schema, then the flow indexes set aside (their definitions kept to make them again).
    drop(Store::open(dir, "bench").expect("creating the store"));
    let indexes: Vec<(String, String)> = {
        let c = rusqlite::Connection::open(&db).expect("opening the store's file");
        let mut st = c.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'flows' AND sql IS NOT NULL ORDER BY name").unwrap();
        let v: Vec<(String, String)> = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap();
        drop(st);
        for (name, _) in &v {
            c.execute_batch(&format!("DROP INDEX {name}")).unwrap();
        }
        v
    };
    let mut s = Store::open(dir, "bench").expect("opening the store");
    s.set_cache_bytes(1 << 30).expect("cache");

    let t0 = DAY0 * S;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (ordinary, scanner, heavy) = (v4(198, 18, 0, 77), v4(198, 18, 200, 1), v4(198, 18, 100, 100));
    let start = Instant::now();
    let (mut written, mut last_report) = (0u64, Instant::now());
    let mut alert_id = 0u64;
    for minute in 0..1440u64 {
        let mut b = Batch { ts: t0 + (minute + 1) * 60 * S, ..Default::default() };
        for sec in minute * 60..minute * 60 + 60 {
            for _ in 0..rate {
                let r = next();
                let client = if r % 20 == 7 {
                    heavy
                } else {
                    IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 1)) + ((r >> 3) % clients) as u32))
                };
                b.flows.push(day_flows::flow_row(r, t0, sec, client));
            }
            // The scan: 12:00-12:10, 100 SYN-only flows a second.
            if (43_200..43_800).contains(&sec) {
                for i in 0..100u64 {
                    let port = ((sec - 43_200) * 100 + i) % 60_000 + 1;
                    let ts = t0 + sec * S + i * (S / 100);
                    b.flows.push(FlowRow {
                        ts_start: ts,
                        ts_end: ts,
                        iface: "eth1".into(),
                        proto: 6,
                        src: scanner,
                        sport: 40_000,
                        dst: v4(198, 19, 0, 9),
                        dport: port as u16,
                        packets: 1,
                        bytes: 58,
                        closed: true,
                        drops: 0,
                        last_drop: None,
                        pid: None,
                        comm: None,
                        cgroup: None,
                    });
                }
            }
            if sec == 43_230 {
                alert_id += 1;
                let ts = t0 + sec * S;
                b.alerts.push(AlertRow {
                    ts,
                    alert_id,
                    detector: "port_scan_vertical".into(),
                    sid: 9_000_001,
                    msg: "vertical port scan".into(),
                    proto: Some(6),
                    src: Some(scanner),
                    sport: None,
                    dst: Some(v4(198, 19, 0, 9)),
                    dport: None,
                    subject: scanner,
                    offender: Some(scanner),
                    pcap: Some("/var/lib/rxray/recorder/alert-1.pcapng".into()),
                    eve: serde_json::json!({"event_type": "alert", "src_ip": scanner.to_string(), "alert": {"signature_id": 9_000_001}}),
                });
                b.mitigations.push(MitigationRow {
                    ts: ts + S / 10,
                    alert_id,
                    kind: "block".into(),
                    target: format!("{scanner}/32"),
                    ttl_s: 600,
                    reason: "port_scan_vertical".into(),
                    enforced: vec!["veth-b: block".into()],
                });
            }
            // The ordinary client's and the scanner's connections, one a minute each.
            if sec % 60 == 0 {
                for (who, lport) in [(ordinary, 443u16), (scanner, 22)] {
                    let ts = t0 + sec * S;
                    b.conns.push(ConnRow {
                        ts_start: ts,
                        ts_end: ts + 5 * S,
                        local: v4(198, 19, 0, 1),
                        lport,
                        remote: who,
                        rport: 50_000 + (minute % 10_000) as u16,
                        state: "CLOSE".into(),
                        bytes_in: 1000 + minute,
                        bytes_out: 20_000,
                        retrans: 0,
                        pid: Some(812),
                        comm: Some("nginx".into()),
                        cgroup: Some("/system.slice/nginx.service".into()),
                        closed: true,
                        srtt_us: 250,
                        min_rtt_us: 120,
                        reset_by: None,
                    });
                }
            }
        }
        // HTTP: this minute's calls of 50 clients to 3 endpoints, as the agent rolls them up.
        for c in 50..100u8 {
            for (k, ep) in ["GET /api/items/{id}", "POST /api/orders", "GET /index.html"].iter().enumerate() {
                let n = 1 + (next() % 5);
                let mut h = Histogram::default();
                let mut statuses = BTreeMap::new();
                for j in 0..n {
                    let ns = 200_000 + (next() % 5_000_000);
                    let mut bk = vec![0u32; rxray_store::BUCKETS];
                    bk[rxray_engine::latency::bucket_of(ns)] = 1;
                    h.merge(1, ns, ns, &bk);
                    *statuses.entry(if j == 0 && k == 1 && minute % 7 == 0 { 500 } else { 200 }).or_insert(0u64) += 1;
                }
                b.http.push(HttpRow {
                    start: DAY0 + minute * 60,
                    res: 60,
                    client: Some(v4(198, 18, 0, c)),
                    server: Some(v4(198, 19, 0, 1)),
                    port: Some(8080),
                    endpoint: ep.to_string(),
                    requests: n,
                    client_errors: 0,
                    server_errors: statuses.get(&500).copied().unwrap_or(0),
                    unanswered: 0,
                    statuses,
                    request_bytes: n * 120,
                    response_bytes: n * 900,
                    latency: h,
                });
            }
        }
        written += b.flows.len() as u64;
        s.write(&b, 0).expect("writing a batch");
        if last_report.elapsed().as_secs() >= 60 {
            last_report = Instant::now();
            eprintln!("store_day_bulk: {:.1} h of event time, {written} flow rows, {:.0} rows/s", (minute + 1) as f64 / 60.0, written as f64 / start.elapsed().as_secs_f64());
        }
    }
    let insert_s = start.elapsed().as_secs_f64();
    s.checkpoint().expect("checkpoint");
    drop(s);
    let t = Instant::now();
    {
        let c = rusqlite::Connection::open(&db).expect("opening the store's file");
        c.execute_batch("PRAGMA cache_size = -2097152; PRAGMA threads = 2;").unwrap();
        for (name, sql) in &indexes {
            let ti = Instant::now();
            c.execute_batch(sql).unwrap_or_else(|e| panic!("{name}: {e}"));
            eprintln!("store_day_bulk: index {name} in {:.0} s", ti.elapsed().as_secs_f64());
        }
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    }
    let index_s = t.elapsed().as_secs_f64();
    let s = Store::open_read(dir).expect("reading the store back");
    let size = s.size_bytes();
    println!(
        "store_day_bulk: {written} flow rows (86,400 s at {rate}/s, {clients} clients, plus the scanner's) in {insert_s:.0} s of inserts ({:.0} rows/s, no flow indexes) + {index_s:.0} s of index builds; {:.2} GB ({:.1} MB per million flows)",
        written as f64 / insert_s,
        size as f64 / 1e9,
        size as f64 / 1e6 / (written as f64 / 1e6)
    );
}
