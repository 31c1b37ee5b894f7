//! The store: filters return exactly the rows written for them; kill -9 during writes loses at most
//! the batch in flight (and never half of one); corrupt, foreign and newer files get a clear error
//! and are left byte for byte untouched; retention removes old rows and the roll-up keeps sums exact.
use rxray_lab::testing::TempDir;
use rxray_store::*;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Command, Stdio};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_800_000_000 * S;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn flow(ts: u64, src: &str, sport: u16, dst: &str, dport: u16, proto: u8, packets: u64) -> FlowRow {
    FlowRow {
        ts_start: ts,
        ts_end: ts + S,
        iface: "veth-b".into(),
        proto,
        src: ip(src),
        sport,
        dst: ip(dst),
        dport,
        packets,
        bytes: packets * 100,
        closed: false,
        drops: 0,
        last_drop: None,
        pid: Some(42),
        comm: Some("nginx".into()),
        cgroup: Some("/system.slice/nginx.service".into()),
    }
}

fn alert(ts: u64, id: u64, detector: &str, src: &str) -> AlertRow {
    AlertRow {
        ts,
        alert_id: id,
        detector: detector.into(),
        sid: 1,
        msg: "m".into(),
        proto: Some(6),
        src: Some(ip(src)),
        sport: Some(1234),
        dst: Some(ip("198.18.0.2")),
        dport: Some(80),
        subject: ip(src),
        offender: Some(ip(src)),
        pcap: Some(format!("/var/lib/rxray/rec/alert-{id}.pcapng")),
        eve: serde_json::json!({"event_type": "alert", "id": id}),
    }
}

fn sample() -> Vec<Batch> {
    let mut b1 = Batch { ts: T0 + 10 * S, events_lost: 3, ..Default::default() };
    b1.flows.push(flow(T0, "198.18.0.1", 40000, "198.18.0.2", 80, 6, 10));
    b1.flows.push(flow(T0 + S, "198.18.7.9", 5353, "198.18.0.2", 53, 17, 4));
    b1.flows.push(flow(T0 + 2 * S, "2001:2::5", 40001, "2001:2::2", 443, 6, 7));
    b1.alerts.push(alert(T0 + 3 * S, 1, "port_scan_vertical", "198.18.0.1"));
    b1.mitigations.push(MitigationRow { ts: T0 + 3 * S, alert_id: 1, kind: "block".into(), target: "198.18.0.1/32".into(), ttl_s: 600, reason: "scan".into(), enforced: vec!["block 1 on veth-b".into()] });
    b1.counts.push(MinuteCount { minute: T0 / S / 60 * 60, kind: "drop".into(), key: "NO_SOCKET".into(), value: 5 });
    b1.http.push(http_row(T0 / S / 60 * 60, "198.18.0.2", 80, "GET /api/items/{id}", &[(200, 1_000_000), (200, 3_000_000), (404, 2_000_000), (503, 9_000_000)]));
    b1.latency.push(latency_row(T0 / S / 60 * 60, "read", Some("198.18.0.1"), &[10_000, 20_000, 30_000]));
    b1.latency.push(latency_row(T0 / S / 60 * 60, "read", Some("198.18.7.9"), &[50_000]));
    let mut b2 = Batch { ts: T0 + 20 * S, ..Default::default() };
    b2.flows.push(flow(T0 + 15 * S, "198.18.0.1", 40002, "198.18.0.2", 22, 6, 1));
    b2.alerts.push(alert(T0 + 16 * S, 2, "syn_flood", "198.18.9.9"));
    b2.conns.push(ConnRow {
        ts_start: T0 + 14 * S,
        ts_end: T0 + 18 * S,
        local: ip("198.18.0.2"),
        lport: 80,
        remote: ip("198.18.0.1"),
        rport: 40003,
        state: "CLOSE".into(),
        bytes_in: 100,
        bytes_out: 2000,
        retrans: 0,
        pid: Some(42),
        comm: Some("nginx".into()),
        cgroup: None,
        closed: true,
        srtt_us: 120,
        min_rtt_us: 80,
        reset_by: Some("peer".into()),
    });
    b2.counts.push(MinuteCount { minute: T0 / S / 60 * 60, kind: "drop".into(), key: "NO_SOCKET".into(), value: 2 });
    vec![b1, b2]
}

/// A histogram of exactly these values (ns), built the way the kernel fills one.
fn hist_of(vals: &[u64]) -> Histogram {
    let mut h = Histogram::default();
    for v in vals {
        let mut b = vec![0u32; BUCKETS];
        b[rxray_engine::latency::bucket_of(*v)] = 1;
        h.merge(1, *v, *v, &b);
    }
    h
}

fn http_row(start: u64, server: &str, port: u16, ep: &str, calls: &[(u16, u64)]) -> HttpRow {
    let mut statuses = std::collections::BTreeMap::new();
    for c in calls {
        *statuses.entry(c.0).or_insert(0) += 1;
    }
    HttpRow {
        start,
        res: 60,
        client: None,
        statuses,
        server: Some(ip(server)),
        port: Some(port),
        endpoint: ep.into(),
        requests: calls.len() as u64,
        client_errors: calls.iter().filter(|c| (400..500).contains(&c.0)).count() as u64,
        server_errors: calls.iter().filter(|c| c.0 >= 500).count() as u64,
        unanswered: 0,
        request_bytes: 100 * calls.len() as u64,
        response_bytes: 1000 * calls.len() as u64,
        latency: hist_of(&calls.iter().map(|c| c.1).collect::<Vec<_>>()),
    }
}

fn latency_row(start: u64, stage: &str, remote: Option<&str>, vals: &[u64]) -> LatencyRow {
    LatencyRow {
        start,
        res: 60,
        stage: stage.into(),
        pid: Some(42),
        comm: Some("nginx".into()),
        cgroup: Some("/system.slice/nginx.service".into()),
        remote: remote.map(ip),
        rport: remote.map(|_| 40000),
        hist: hist_of(vals),
    }
}

fn all() -> Query {
    Query { since: 0, until: u64::MAX, ..Default::default() }
}

#[test]
fn filters_return_exactly_the_rows_expected() {
    let dir = TempDir::new();
    let mut s = Store::open(dir.path(), "host-a").unwrap();
    for b in sample() {
        s.write(&b, 0).unwrap();
    }
    let r = s.query(&all()).unwrap();
    assert_eq!((r.flows.len(), r.alerts.len(), r.mitigations.len(), r.conns.len()), (4, 2, 1, 1));
    assert!(r.flows.windows(2).all(|w| w[0].ts_start <= w[1].ts_start), "time order");
    assert_eq!(r.completeness, Completeness { batches: 2, events_lost: 3, batches_lost: 0 });
    // Minute counts add up across batches.
    let drop = r.counts.iter().find(|c| c.kind == "drop").unwrap();
    assert_eq!(drop.value, 7);

    let by_addr = s.query(&Query { addr: Some(AddrRange::parse("198.18.0.1").unwrap()), ..all() }).unwrap();
    assert_eq!(by_addr.flows.iter().map(|f| f.sport).collect::<Vec<_>>(), [40000, 40002]);
    assert_eq!(by_addr.alerts.iter().map(|a| a.alert_id).collect::<Vec<_>>(), [1]);
    assert_eq!(by_addr.mitigations.len(), 1);
    assert_eq!(by_addr.conns.len(), 1);
    assert!(by_addr.counts.is_empty(), "counts have no address");

    let net = s.query(&Query { addr: Some(AddrRange::parse("198.18.0.0/15").unwrap()), ..all() }).unwrap();
    assert_eq!(net.flows.len(), 3);
    let v6 = s.query(&Query { addr: Some(AddrRange::parse("2001:2::/48").unwrap()), ..all() }).unwrap();
    assert_eq!((v6.flows.len(), v6.alerts.len()), (1, 0));

    let port = s.query(&Query { port: Some(53), ..all() }).unwrap();
    assert_eq!((port.flows.len(), port.alerts.len(), port.conns.len()), (1, 0, 0));
    let udp = s.query(&Query { proto: Some(17), ..all() }).unwrap();
    assert_eq!((udp.flows.len(), udp.conns.len()), (1, 0));
    let det = s.query(&Query { detector: Some("syn_flood".into()), ..all() }).unwrap();
    assert_eq!((det.flows.len(), det.alerts.len(), det.mitigations.len()), (0, 1, 0));
    let ep = s.query(&Query { endpoint: Some("GET /api/items/{id}".into()), ..all() }).unwrap();
    assert_eq!((ep.http.len(), ep.counts.len(), ep.flows.len(), ep.latency.len()), (1, 0, 0, 0));
    let h = &ep.http[0];
    assert_eq!((h.requests, h.client_errors, h.server_errors, h.latency.count, h.latency.max_ns), (4, 1, 1, 4, 9_000_000));
    assert_eq!(h.error_rate(), 0.5);
    assert_eq!(h.latency.buckets.iter().sum::<u64>(), 4);
    assert!(s.query(&Query { endpoint: Some("GET /other".into()), ..all() }).unwrap().http.is_empty());
    // Latency rows: per remote end; the address filter picks the remote's.
    assert_eq!(r.latency.len(), 2);
    assert_eq!(by_addr.latency.iter().map(|l| l.hist.count).collect::<Vec<_>>(), [3]);
    assert_eq!(by_addr.latency[0].hist.sum_ns, 60_000);
    assert!(by_addr.http.is_empty(), "the HTTP rows are the server's (198.18.0.2)");
    let server = s.query(&Query { addr: Some(AddrRange::parse("198.18.0.2").unwrap()), ..all() }).unwrap();
    assert_eq!(server.http.len(), 1);
    assert_eq!(s.query(&Query { port: Some(80), ..all() }).unwrap().http.len(), 1);
    assert!(udp.http.is_empty() && udp.latency.is_empty());
    let c = &by_addr.conns[0];
    assert_eq!((c.closed, c.srtt_us, c.min_rtt_us, c.reset_by.as_deref()), (true, 120, 80, Some("peer")));
    let window = s.query(&Query { since: T0 + 10 * S, until: T0 + 17 * S, ..all() }).unwrap();
    assert_eq!((window.flows.len(), window.alerts.len()), (1, 1));
    let limited = s.query(&Query { limit: 2, ..all() }).unwrap();
    assert!(limited.truncated && limited.flows.len() == 2 && limited.flows[1].sport == 40002, "the newest kept");
}

fn digest(p: &std::path::Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn corrupt_foreign_and_newer_files_get_clear_errors_and_are_left_untouched() {
    let dir = TempDir::new();
    let db = dir.path().join(FILE);
    std::fs::write(&db, b"this is not an sqlite file, just bytes that someone put here\n".repeat(100)).unwrap();
    let before = digest(&db);
    let e = Store::open(dir.path(), "h").err().unwrap().to_string();
    assert!(e.contains("not an SQLite database, or damaged") && e.contains("untouched"), "{e}");
    assert_eq!(digest(&db), before);

    let dir = TempDir::new();
    let db = dir.path().join(FILE);
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE invoices (id INTEGER, total REAL); INSERT INTO invoices VALUES (1, 9.5);").unwrap();
    }
    let before = digest(&db);
    let e = Store::open(dir.path(), "h").err().unwrap().to_string();
    assert!(e.contains("not an rxray store"), "{e}");
    assert_eq!(digest(&db), before);

    let dir = TempDir::new();
    {
        let mut s = Store::open(dir.path(), "h").unwrap();
        s.write(&sample()[0], 0).unwrap();
    }
    let db = dir.path().join(FILE);
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute("UPDATE rxray_meta SET value = '99' WHERE key = 'schema_version'", []).unwrap();
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    }
    let before = digest(&db);
    let e = Store::open(dir.path(), "h").err().unwrap().to_string();
    assert!(e.contains("newer rxray (schema 99"), "{e}");
    assert_eq!(digest(&db), before);
    // Damage inside a real store (a page overwritten) is found too.
    let dir = TempDir::new();
    {
        let mut s = Store::open(dir.path(), "h").unwrap();
        for _ in 0..50 {
            s.write(&sample()[0], 0).unwrap();
        }
    }
    let db = dir.path().join(FILE);
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    }
    let mut bytes = std::fs::read(&db).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n / 2..n / 2 + 2048] {
        *b = 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    let e = Store::open(dir.path(), "h").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("damaged") || e.contains("not an SQLite"), "a damaged page must be reported: {e:?}");
    assert_eq!(std::fs::read(&db).unwrap(), bytes);
    // A reader does not read the whole file first (a day's store is many GB): SQLite reports a
    // damaged page when a query meets it, and the reader never writes.
    let e = match Store::open_read(dir.path()) {
        Err(e) => Some(e.to_string()),
        Ok(s) => s.query(&all()).err().map(|e| e.to_string()),
    };
    if let Some(e) = e {
        assert!(e.contains("damaged") || e.contains("malformed"), "the reader names the damage: {e:?}");
    }
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "the reader left the file untouched");
}

#[test]
fn retention_ages_out_and_the_roll_up_keeps_sums_exact() {
    let dir = TempDir::new();
    let mut s = Store::open(dir.path(), "h").unwrap();
    // Three days of minute counts, 10 per minute per key.
    let day = 86_400u64;
    let start_s = T0 / S / 3600 * 3600;
    let mut b = Batch { ts: T0, ..Default::default() };
    for m in 0..(3 * day / 60) {
        for key in ["NO_SOCKET", "TCP_CSUM"] {
            b.counts.push(MinuteCount { minute: start_s + m * 60, kind: "drop".into(), key: key.into(), value: 10 });
        }
    }
    b.flows.push(flow(start_s * S, "198.18.0.1", 1, "198.18.0.2", 2, 17, 1));
    b.flows.push(flow((start_s + 2 * day + 3600) * S, "198.18.0.1", 3, "198.18.0.2", 4, 17, 1));
    s.write(&b, 0).unwrap();
    let now = (start_s + 3 * day) * S;
    let sums_before = s.count_sums("drop", 0, u64::MAX / S).unwrap();
    let rep = s.retain(now, Retention { max_age_s: 100 * day, max_bytes: u64::MAX, rollup_after_s: day }).unwrap();
    assert_eq!(rep.rows_aged_out, 0);
    assert!(rep.minutes_rolled_up >= 2 * (2 * day / 60), "{rep:?}");
    assert_eq!(s.count_sums("drop", 0, u64::MAX / S).unwrap(), sums_before, "roll-up sums are exact");
    assert_eq!(sums_before, [("NO_SOCKET".into(), 3 * day / 60 * 10), ("TCP_CSUM".into(), 3 * day / 60 * 10)]);
    assert!(s.count_rows(3600).unwrap() >= 2 * 48);
    // A second pass changes nothing more than it should (idempotent sums).
    s.retain(now, Retention { max_age_s: 100 * day, max_bytes: u64::MAX, rollup_after_s: day }).unwrap();
    assert_eq!(s.count_sums("drop", 0, u64::MAX / S).unwrap(), sums_before);
    // Age: two days kept, so the first flow and the first day's counts go.
    let rep = s.retain(now, Retention { max_age_s: 2 * day, max_bytes: u64::MAX, rollup_after_s: day }).unwrap();
    assert!(rep.rows_aged_out >= 1, "{rep:?}");
    let left = s.query(&all()).unwrap();
    assert_eq!(left.flows.iter().map(|f| f.sport).collect::<Vec<_>>(), [3]);
    let kept = s.count_sums("drop", 0, u64::MAX / S).unwrap();
    assert_eq!(kept[0].1, 2 * day / 60 * 10, "exactly the last two days of counts remain");
}

#[test]
fn size_retention_cuts_the_oldest_flows() {
    let dir = TempDir::new();
    let mut s = Store::open(dir.path(), "h").unwrap();
    for i in 0..40u64 {
        let mut b = Batch { ts: T0 + i * S, ..Default::default() };
        for j in 0..500u64 {
            b.flows.push(flow(T0 + i * S, "198.18.0.1", (j % 60000) as u16, "198.18.0.2", 80, 6, j));
        }
        s.write(&b, 0).unwrap();
    }
    let total = s.query(&Query { limit: 100_000, ..all() }).unwrap().flows.len();
    assert_eq!(total, 20_000);
    let rep = s.retain(T0 + 100 * S, Retention { max_age_s: 1 << 30, max_bytes: 600_000, rollup_after_s: 1 << 30 }).unwrap();
    assert!(rep.rows_cut_for_size > 0, "{rep:?}");
    assert!(s.size_bytes() <= 600_000, "{}", s.size_bytes());
    let left = s.query(&Query { limit: 100_000, ..all() }).unwrap().flows;
    assert_eq!(left.len() as u64 + rep.rows_cut_for_size, 20_000);
    assert!(left.iter().all(|f| f.ts_start >= left[0].ts_start) && left.last().unwrap().ts_start == T0 + 39 * S, "the newest stay");
}

#[test]
fn kill_9_during_writes_loses_at_most_the_batch_in_flight() {
    let dir = TempDir::new();
    // The writer is the example `store_writer` (cargo test builds examples beside the tests).
    let exe = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples").join("store_writer");
    assert!(exe.exists(), "{} is missing: cargo test builds it", exe.display());
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(Command::new(&exe).arg(dir.path()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap());
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut committed = 0u64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while committed < 200 {
        let l = lines.next().expect("the child ended early").unwrap();
        if let Ok(n) = l.trim().parse::<u64>() {
            committed = n;
        }
        assert!(std::time::Instant::now() < deadline, "the child wrote only {committed} batches in 60 s");
    }
    child.0.kill().unwrap(); // SIGKILL, mid-write
    child.0.wait().unwrap();
    // What it printed after the count was reached, up to the kill: the last batch it confirmed.
    for l in lines.by_ref() {
        if let Ok(n) = l.unwrap_or_default().trim().parse::<u64>() {
            committed = n;
        }
    }
    let s = Store::open(dir.path(), "reader").unwrap();
    let flows = s.query(&Query { limit: 10_000_000, ..all() }).unwrap().flows;
    let mut per: std::collections::BTreeMap<u64, usize> = Default::default();
    for f in &flows {
        *per.entry(f.ts_start).or_default() += 1;
    }
    let last = *per.keys().last().unwrap();
    assert!(last >= committed && last <= committed + 1, "batches up to {committed} were confirmed; the store holds up to {last}");
    assert_eq!(per.len() as u64, last, "no batch is missing");
    assert!(per.values().all(|&n| n == 100), "no batch is half written: {:?}", per.iter().find(|(_, &n)| n != 100));
}

#[test]
fn the_writer_thread_counts_what_it_cannot_queue() {
    let dir = TempDir::new();
    let s = Store::open(dir.path(), "h").unwrap();
    let w = StoreWriter::start(s, 1, Retention::default()).unwrap();
    let mut accepted = 0u64;
    for _ in 0..2000 {
        let mut b = sample()[0].clone();
        b.flows = (0..50).flat_map(|_| b.flows.clone()).collect();
        accepted += w.submit(b) as u64;
    }
    let stats = std::sync::Arc::clone(&w.stats);
    w.finish();
    let lost = stats.batches_lost.load(std::sync::atomic::Ordering::Relaxed);
    let written = stats.batches_written.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(written, accepted);
    assert_eq!(written + lost, 2000);
    assert!(lost > 0, "a one-batch queue took 2000 batches at once?");
    let s = Store::open(dir.path(), "h").unwrap();
    let r = s.query(&all()).unwrap();
    assert_eq!(r.completeness.batches, written);
    // Each loss is written once (with the next batch that got through), so the window's sum is at
    // most what was lost, and exactly that when a batch was written after the last loss.
    assert!(r.completeness.batches_lost > 0 && r.completeness.batches_lost <= lost, "{:?} vs {lost}", r.completeness);
}

#[test]
fn latency_and_http_minutes_roll_up_to_hours_with_exact_sums_and_buckets() {
    let dir = TempDir::new();
    let mut s = Store::open(dir.path(), "h").unwrap();
    let hour0 = T0 / S / 3600 * 3600;
    // Three hours of minutes: each minute one HTTP row (minute m: m+1 calls, one 5xx) and one
    // latency row (the values m*1000+1 and m*1000+2 µs).
    let mut b = Batch { ts: T0, ..Default::default() };
    let (mut calls, mut lat_vals) = (Vec::new(), Vec::new());
    for m in 0..180u64 {
        let c: Vec<(u16, u64)> = (0..=m).map(|i| (if i == 0 { 503 } else { 200 }, (i + 1) * 1_000_000)).collect();
        calls.extend(c.iter().map(|x| x.1));
        b.http.push(http_row(hour0 + m * 60, "198.18.0.2", 8080, "POST /orders", &c));
        let v = [m * 1_000_000 + 1_000, m * 1_000_000 + 2_000];
        lat_vals.extend(v);
        b.latency.push(latency_row(hour0 + m * 60, "queue", None, &v));
    }
    s.write(&b, 0).unwrap();
    let want_http = hist_of(&calls);
    let want_lat = hist_of(&lat_vals);
    // Rolled after one hour, at the end of the third hour: the first two hours become two rows each.
    let now = (hour0 + 3 * 3600) * S;
    let rep = s.retain(now, Retention { max_age_s: 100 * 86_400, max_bytes: u64::MAX, rollup_after_s: 3600 }).unwrap();
    assert_eq!(rep.minutes_rolled_up, 2 * 120, "{rep:?}");
    let r = s.query(&all()).unwrap();
    assert_eq!(r.http.iter().map(|h| h.res).collect::<Vec<_>>(), [[3600; 2].as_slice(), &[60; 60]].concat());
    assert_eq!(r.latency.iter().filter(|l| l.res == 3600).count(), 2);
    let mut got_http = Histogram::default();
    let (mut requests, mut errors) = (0, 0);
    for h in &r.http {
        hist_add(&mut got_http, &h.latency);
        requests += h.requests;
        errors += h.server_errors;
    }
    assert_eq!((requests, errors), (calls.len() as u64, 180));
    // Counts, sums, max and every bucket survive the roll-up exactly.
    got_http.buckets.resize(BUCKETS, 0);
    let mut w = want_http.clone();
    w.buckets.resize(BUCKETS, 0);
    assert_eq!(got_http, w);
    let mut got_lat = Histogram::default();
    for l in &r.latency {
        hist_add(&mut got_lat, &l.hist);
    }
    got_lat.buckets.resize(BUCKETS, 0);
    let mut w = want_lat.clone();
    w.buckets.resize(BUCKETS, 0);
    assert_eq!(got_lat, w);
    // The first hour alone: minutes 0..59, (m+1) calls each.
    let h0 = &r.http[0];
    assert_eq!((h0.start, h0.requests, h0.server_errors, h0.latency.max_ns), (hour0, (1..=60).sum::<u64>(), 60, 60_000_000));
    // A window inside the first hour still finds its hour row (periods overlap the window).
    let inside = s.query(&Query { since: (hour0 + 600) * S, until: (hour0 + 660) * S, ..all() }).unwrap();
    assert_eq!(inside.http.iter().map(|h| (h.start, h.res)).collect::<Vec<_>>(), [(hour0, 3600)]);
    // Age: the old hours go with the rest.
    let rep = s.retain(now, Retention { max_age_s: 3600, max_bytes: u64::MAX, rollup_after_s: 3600 }).unwrap();
    assert!(rep.rows_aged_out >= 4, "{rep:?}");
    let left = s.query(&all()).unwrap();
    assert!(left.http.iter().all(|h| h.start >= hour0 + 2 * 3600) && left.http.len() == 60);
}

#[test]
fn a_version_1_store_migrates_to_version_3_and_keeps_its_rows() {
    let dir = TempDir::new();
    let db = dir.path().join(FILE);
    // The file an rxray of schema 1 wrote: its migration, its meta rows, a connection and a flow.
    let v1 = || {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;").unwrap();
        c.execute_batch("CREATE TABLE rxray_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO rxray_meta VALUES ('app', 'rxray'), ('schema_version', '1');").unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        let a = |s: &str| addr_key(ip(s)).to_vec();
        c.execute(
            "INSERT INTO conns VALUES ('old', ?1, ?2, ?3, 80, ?4, 40000, 'CLOSE', 11, 22, 1, 7, 'curl', '/user.slice')",
            rusqlite::params![(T0) as i64, (T0 + S) as i64, a("198.18.0.2"), a("198.18.0.1")],
        )
        .unwrap();
        c.execute(
            "INSERT INTO flows VALUES ('old', ?1, ?2, 'veth-b', 6, ?3, 40000, ?4, 80, 5, 500, 1, 0, NULL, NULL, NULL, NULL)",
            rusqlite::params![(T0) as i64, (T0 + S) as i64, a("198.18.0.1"), a("198.18.0.2")],
        )
        .unwrap();
    };
    v1();
    // A reader (history, investigate) does not write: it says what to do, and leaves the file alone.
    let e = Store::open_read(dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("older rxray (schema 1") && e.contains("migrates it"), "{e}");
    let mut s = Store::open(dir.path(), "new").unwrap();
    assert_eq!(s.schema_version().unwrap(), 3);
    let r = s.query(&all()).unwrap();
    assert_eq!(r.flows.len(), 1);
    let c = &r.conns[0];
    assert_eq!((c.bytes_in, c.bytes_out, c.retrans, c.pid, c.comm.as_deref(), c.cgroup.as_deref()), (11, 22, 1, Some(7), Some("curl"), Some("/user.slice")));
    // The columns v2 added have their defaults on the old row: closed, no RTT, not reset.
    assert_eq!((c.closed, c.srtt_us, c.min_rtt_us, c.reset_by.clone()), (true, 0, 0, None));
    // The new tables take rows.
    let mut b = Batch { ts: T0 + 2 * S, ..Default::default() };
    b.http.push(http_row(T0 / S / 60 * 60, "198.18.0.2", 80, "GET /", &[(200, 5_000)]));
    b.latency.push(latency_row(T0 / S / 60 * 60, "read", Some("198.18.0.1"), &[7_000]));
    s.write(&b, 0).unwrap();
    drop(s);
    let s = Store::open_read(dir.path()).unwrap();
    let r = s.query(&all()).unwrap();
    assert_eq!((r.http.len(), r.latency.len(), r.conns.len(), r.flows.len()), (1, 1, 1, 1));
}

#[test]
fn a_long_row_is_found_by_a_window_inside_it_through_the_start_index() {
    let dir = TempDir::new();
    let mut s = Store::open(dir.path(), "h").unwrap();
    let mut b = Batch { ts: T0, ..Default::default() };
    let mut long = flow(T0, "198.18.0.1", 1, "198.18.0.2", 2, 6, 1);
    long.ts_end = T0 + 3600 * S;
    b.flows.push(long);
    b.flows.push(flow(T0 + 100 * S, "198.18.0.1", 3, "198.18.0.2", 4, 6, 1));
    s.write(&b, 0).unwrap();
    drop(s);
    let s = Store::open_read(dir.path()).unwrap();
    for addr in [None, Some("198.18.0.1"), Some("198.18.0.0/24")] {
        let q = Query { since: T0 + 1800 * S, until: T0 + 1801 * S, addr: addr.map(|a| AddrRange::parse(a).unwrap()), ..all() };
        assert_eq!(s.query(&q).unwrap().flows.iter().map(|f| f.sport).collect::<Vec<_>>(), [1], "{addr:?}");
        let q = Query { since: T0 + 99 * S, until: T0 + 101 * S, ..q };
        assert_eq!(s.query(&q).unwrap().flows.iter().map(|f| f.sport).collect::<Vec<_>>(), [1, 3], "{addr:?}");
        let q = Query { since: T0 + 3601 * S, until: T0 + 3700 * S, ..q };
        assert!(s.query(&q).unwrap().flows.is_empty(), "{addr:?}");
    }
}

#[test]
fn a_version_2_store_migrates_to_version_3_and_keeps_its_http_rows() {
    let dir = TempDir::new();
    let db = dir.path().join(FILE);
    // The file an rxray of schema 2 wrote: an HTTP row per endpoint (no client), and a flow.
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;").unwrap();
        c.execute_batch("CREATE TABLE rxray_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO rxray_meta VALUES ('app', 'rxray'), ('schema_version', '2');").unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        c.execute_batch(MIGRATIONS[1]).unwrap();
        let blob = rxray_store::addr_key(ip("198.18.0.2")).to_vec();
        c.execute(
            "INSERT INTO http VALUES ('old', 60, ?1, ?2, 8080, 'GET /a', 7, 1, 2, 0, 700, 7000, 7, 70000, 20000, x'')",
            rusqlite::params![(T0 / S / 60 * 60) as i64, blob],
        )
        .unwrap();
        c.execute(
            "INSERT INTO flows VALUES ('old', ?1, ?2, 'veth-b', 6, ?3, 40000, ?4, 80, 5, 500, 1, 0, NULL, NULL, NULL, NULL)",
            rusqlite::params![T0 as i64, (T0 + S) as i64, addr_key(ip("198.18.0.1")).to_vec(), addr_key(ip("198.18.0.2")).to_vec()],
        )
        .unwrap();
    }
    let e = Store::open_read(dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("older rxray (schema 2"), "{e}");
    let mut s = Store::open(dir.path(), "new").unwrap();
    assert_eq!(s.schema_version().unwrap(), 3);
    let r = s.query(&all()).unwrap();
    assert_eq!(r.flows.len(), 1);
    let h = &r.http[0];
    assert_eq!(
        (h.client, h.server, h.port, h.endpoint.as_str(), h.requests, h.client_errors, h.server_errors, h.request_bytes, h.latency.count, h.statuses.len()),
        (None, Some(ip("198.18.0.2")), Some(8080), "GET /a", 7, 1, 2, 700, 7, 0)
    );
    // New rows carry their client and statuses beside the old one.
    let mut b = Batch { ts: T0 + 2 * S, ..Default::default() };
    let mut row = http_row(T0 / S / 60 * 60, "198.18.0.2", 8080, "GET /a", &[(200, 1_000), (404, 2_000)]);
    row.client = Some(ip("198.18.0.1"));
    b.http.push(row);
    s.write(&b, 0).unwrap();
    drop(s);
    let s = Store::open_read(dir.path()).unwrap();
    let mine = s.query(&Query { addr: Some(AddrRange::parse("198.18.0.1").unwrap()), ..all() }).unwrap();
    assert_eq!(mine.http.len(), 1);
    assert_eq!(mine.http[0].statuses.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), [(200, 1), (404, 1)]);
    assert_eq!(s.query(&all()).unwrap().http.len(), 2);
}

/// (endpoint, client, requests, statuses) summed over HTTP rows.
type PerClient = (String, Option<IpAddr>, u64, Vec<(u16, u64)>);

#[test]
fn http_rows_per_client_filter_exactly_by_endpoint_and_address_and_roll_up_per_client() {
    let dir = TempDir::new();
    let mut s = Store::open(dir.path(), "h").unwrap();
    let hour0 = T0 / S / 3600 * 3600;
    let row = |m: u64, client: Option<&str>, ep: &str, calls: &[(u16, u64)]| {
        let mut r = http_row(hour0 + m * 60, "198.18.0.2", 8080, ep, calls);
        r.client = client.map(ip);
        if client.is_none() {
            (r.server, r.port) = (None, None);
        }
        r
    };
    // Two hours of minutes: client .1 calls GET /a (200, 404) and POST /b (500); client .9 calls
    // GET /a (200); one `other` row (no addresses) a minute of GET /a (200).
    let mut b = Batch { ts: T0, ..Default::default() };
    for m in 0..120 {
        b.http.push(row(m, Some("198.18.0.1"), "GET /a", &[(200, 1_000_000), (404, 2_000_000)]));
        b.http.push(row(m, Some("198.18.0.1"), "POST /b", &[(500, 3_000_000)]));
        b.http.push(row(m, Some("198.18.0.9"), "GET /a", &[(200, 4_000_000)]));
        b.http.push(row(m, None, "GET /a", &[(200, 5_000_000)]));
    }
    s.write(&b, 0).unwrap();
    let pick = |s: &Store, addr: Option<&str>, ep: Option<&str>| {
        let r = s.query(&Query { addr: addr.map(|a| AddrRange::parse(a).unwrap()), endpoint: ep.map(String::from), ..all() }).unwrap();
        let mut v: Vec<PerClient> = Vec::new();
        for h in &r.http {
            match v.iter_mut().find(|x| x.0 == h.endpoint && x.1 == h.client) {
                Some(x) => {
                    x.2 += h.requests;
                    for (c, n) in &h.statuses {
                        match x.3.iter_mut().find(|y| y.0 == *c) {
                            Some(y) => y.1 += n,
                            None => x.3.push((*c, *n)),
                        }
                    }
                }
                None => v.push((h.endpoint.clone(), h.client, h.requests, h.statuses.iter().map(|(c, n)| (*c, *n)).collect())),
            }
        }
        v.sort();
        (v, r.flows.len() + r.conns.len() + r.alerts.len())
    };
    let one = Some(ip("198.18.0.1"));
    let nine = Some(ip("198.18.0.9"));
    assert_eq!(pick(&s, Some("198.18.0.1"), Some("GET /a")), (vec![("GET /a".into(), one, 240, vec![(200, 120), (404, 120)])], 0));
    assert_eq!(pick(&s, Some("198.18.0.9"), Some("GET /a")), (vec![("GET /a".into(), nine, 120, vec![(200, 120)])], 0));
    assert_eq!(pick(&s, Some("198.18.0.9"), Some("POST /b")).0, vec![]);
    assert_eq!(pick(&s, Some("198.18.0.1"), None).0, vec![("GET /a".into(), one, 240, vec![(200, 120), (404, 120)]), ("POST /b".into(), one, 120, vec![(500, 120)])]);
    // The server's address finds every client's calls to it (the `other` rows have none).
    assert_eq!(pick(&s, Some("198.18.0.2"), Some("GET /a")).0, vec![("GET /a".into(), one, 240, vec![(200, 120), (404, 120)]), ("GET /a".into(), nine, 120, vec![(200, 120)])]);
    assert_eq!(pick(&s, None, Some("GET /a")).0.iter().map(|x| x.2).sum::<u64>(), 240 + 120 + 120);
    assert_eq!(pick(&s, Some("198.18.0.0/24"), None).0.len(), 3);
    // The roll-up after an hour: each client's hour row holds exactly its minutes, statuses merged.
    let now = (hour0 + 2 * 3600) * S;
    let rep = s.retain(now, Retention { max_age_s: 100 * 86_400, max_bytes: u64::MAX, rollup_after_s: 3600 }).unwrap();
    assert_eq!(rep.minutes_rolled_up, 4 * 60, "{rep:?}");
    let r = s.query(&Query { addr: Some(AddrRange::parse("198.18.0.1").unwrap()), endpoint: Some("GET /a".into()), ..all() }).unwrap();
    let hours: Vec<_> = r.http.iter().filter(|h| h.res == 3600).collect();
    assert_eq!(hours.len(), 1);
    assert_eq!((hours[0].requests, hours[0].client_errors, hours[0].latency.count), (120, 60, 120));
    assert_eq!(hours[0].statuses.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), [(200, 60), (404, 60)]);
    assert_eq!(pick(&s, Some("198.18.0.1"), Some("GET /a")).0, vec![("GET /a".into(), one, 240, vec![(200, 120), (404, 120)])]);
    assert_eq!(pick(&s, Some("198.18.0.9"), None).0, vec![("GET /a".into(), nine, 120, vec![(200, 120)])]);
    assert_eq!(pick(&s, None, Some("GET /a")).0.iter().map(|x| x.2).sum::<u64>(), 480, "the sums are exact after the roll-up");
}
