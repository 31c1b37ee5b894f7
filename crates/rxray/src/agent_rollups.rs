//! The agent's per-minute roll-ups for the store: delivery latency (per process and per remote
//! end, from the kernel's cumulative histograms: each snapshot's growth since the previous one) and
//! HTTP calls (per endpoint, client and server: what the HTTP view counted since its last take),
//! added to the minute they were read in; a minute's rows leave when a later minute begins (or on
//! `take(true)`).
use rxray_engine::latency::Histogram;
use rxray_engine::source::LatencySnapshot;
use rxray_store::{hist_add, HttpRow, LatencyRow};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// What grew since `prev`, or all of `cur` when the entry was made anew (it shrank). The max is
/// the entry's (the kernel keeps no per-interval max): at least the period's own.
pub(crate) fn growth(cur: &Histogram, prev: Option<&Histogram>) -> Histogram {
    match prev {
        Some(p) if p.count <= cur.count && p.sum_ns <= cur.sum_ns => {
            let mut b = cur.buckets.clone();
            for (x, y) in b.iter_mut().zip(&p.buckets) {
                *x = x.saturating_sub(*y);
            }
            Histogram { count: cur.count - p.count, sum_ns: cur.sum_ns - p.sum_ns, max_ns: cur.max_ns, buckets: b }
        }
        _ => cur.clone(),
    }
}

/// A latency roll-up's key: stage, then either a process or a remote end.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct LatKey {
    stage: &'static str,
    pid: Option<u32>,
    comm: Option<String>,
    cgroup_id: Option<u64>,
    remote: Option<IpAddr>,
    rport: Option<u16>,
}

/// Latency per minute.
#[derive(Default)]
pub struct LatencyMinutes {
    prev: HashMap<LatKey, Histogram>,
    minute: u64,
    acc: BTreeMap<LatKey, Histogram>,
    out: Vec<LatencyRow>,
}

impl LatencyMinutes {
    /// Adds what grew since the previous snapshot to the minute of `now_ns` (epoch ns). The first
    /// snapshot only sets the baseline (what came before the agent is not this minute's).
    pub fn observe(&mut self, snap: &LatencySnapshot, now_ns: u64, cgroup: &mut dyn FnMut(u64) -> Option<String>) {
        let first = self.prev.is_empty() && self.minute == 0;
        let minute = now_ns / 1_000_000_000 / 60 * 60;
        if minute != self.minute {
            self.close(cgroup);
            self.minute = minute;
        }
        // Entries of one key from several sources (one per interface) are summed first.
        let mut cur: HashMap<LatKey, Histogram> = HashMap::with_capacity(self.prev.len());
        let procs = snap.procs.iter().map(|p| (Some(p.pid), Some(p.latency.comm.clone()), Some(p.cgroup_id), None, None, &p.latency));
        let flows = snap.flows.iter().map(|f| (None, None, None, f.remote, Some(f.remote_port), &f.latency));
        for (pid, comm, cgroup_id, remote, rport, e) in procs.chain(flows) {
            for (stage, h) in [("read", &e.read), ("queue", &e.queue)] {
                if h.count > 0 {
                    let k = LatKey { stage, pid, comm: comm.clone().filter(|c| !c.is_empty()), cgroup_id, remote, rport };
                    hist_add(cur.entry(k).or_default(), h);
                }
            }
        }
        for (k, h) in &cur {
            let g = growth(h, self.prev.get(k));
            if !first && g.count > 0 {
                hist_add(self.acc.entry(k.clone()).or_default(), &g);
            }
        }
        let seen = cur;
        self.prev = seen;
    }

    fn close(&mut self, cgroup: &mut dyn FnMut(u64) -> Option<String>) {
        for (k, hist) in std::mem::take(&mut self.acc) {
            self.out.push(LatencyRow {
                start: self.minute,
                res: 60,
                stage: k.stage.to_string(),
                pid: k.pid,
                comm: k.comm,
                cgroup: k.cgroup_id.and_then(&mut *cgroup),
                remote: k.remote,
                rport: k.rport,
                hist,
            });
        }
    }

    /// The rows of the minutes that ended; with `all`, the current one's too (the agent stops).
    pub fn take(&mut self, all: bool, cgroup: &mut dyn FnMut(u64) -> Option<String>) -> Vec<LatencyRow> {
        if all {
            self.close(cgroup);
        }
        std::mem::take(&mut self.out)
    }
}

/// The HTTP view's calls since its last take, per endpoint, client and server, as store rows (their
/// time fields are set by `HttpMinutes`). An entry without peers is its endpoint's `other` bucket.
pub fn client_rows(taken: Vec<(&rxray_engine::http::Endpoint, rxray_engine::http::clients::ClientKey, rxray_engine::http::clients::ClientCounts)>) -> Vec<HttpRow> {
    taken
        .into_iter()
        .map(|(e, k, c)| HttpRow {
            start: 0,
            res: 0,
            client: k.peers.map(|p| p.client),
            server: k.peers.map(|p| p.server),
            port: k.peers.map(|p| p.server_port),
            endpoint: format!("{} {}", e.method, e.template),
            requests: c.requests,
            client_errors: c.statuses.range(400..500).map(|(_, n)| n).sum(),
            server_errors: c.statuses.range(500..600).map(|(_, n)| n).sum(),
            unanswered: c.unanswered,
            statuses: c.statuses,
            request_bytes: c.request_bytes,
            response_bytes: c.response_bytes,
            latency: c.latency.to_histogram(),
        })
        .collect()
}

/// (endpoint, client, server, port): one row per minute.
type HttpKey = (String, Option<IpAddr>, Option<IpAddr>, Option<u16>);

/// Rows one minute holds at most; the calls of further (endpoint, client, server) pairs go to
/// their endpoint's `other` row (no addresses), so the minute's sums stay exact.
pub const HTTP_ROWS_PER_MINUTE: usize = 10_000;

/// HTTP calls per minute, per endpoint, client and server, fed by the agent's HTTP view.
#[derive(Default)]
pub struct HttpMinutes {
    minute: u64,
    acc: BTreeMap<HttpKey, HttpRow>,
    out: Vec<HttpRow>,
}

impl HttpMinutes {
    /// Adds the calls taken since the previous call (`client_rows`) to the minute of `now_ns`.
    pub fn observe(&mut self, calls: Vec<HttpRow>, now_ns: u64) {
        let minute = now_ns / 1_000_000_000 / 60 * 60;
        if minute != self.minute {
            self.out.extend(std::mem::take(&mut self.acc).into_values());
            self.minute = minute;
        }
        for c in calls {
            let mut key = (c.endpoint.clone(), c.client, c.server, c.port);
            if self.acc.len() >= HTTP_ROWS_PER_MINUTE && !self.acc.contains_key(&key) {
                key = (c.endpoint.clone(), None, None, None);
            }
            let r = self.acc.entry(key.clone()).or_insert_with(|| HttpRow {
                start: minute,
                res: 60,
                client: key.1,
                server: key.2,
                port: key.3,
                endpoint: key.0,
                requests: 0,
                client_errors: 0,
                server_errors: 0,
                unanswered: 0,
                statuses: Default::default(),
                request_bytes: 0,
                response_bytes: 0,
                latency: Histogram::default(),
            });
            r.requests += c.requests;
            r.client_errors += c.client_errors;
            r.server_errors += c.server_errors;
            r.unanswered += c.unanswered;
            r.request_bytes += c.request_bytes;
            r.response_bytes += c.response_bytes;
            for (code, n) in c.statuses {
                *r.statuses.entry(code).or_default() += n;
            }
            hist_add(&mut r.latency, &c.latency);
        }
    }

    /// The rows of the minutes that ended; with `all`, the current one's too.
    pub fn take(&mut self, all: bool) -> Vec<HttpRow> {
        if all {
            self.out.extend(std::mem::take(&mut self.acc).into_values());
        }
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rxray_engine::latency::{bucket_of, BUCKETS};
    use rxray_engine::source::{LatencyEntry, LatencyProc};

    fn hist(vals: &[u64]) -> Histogram {
        let mut h = Histogram::default();
        for v in vals {
            let mut b = vec![0u32; BUCKETS];
            b[bucket_of(*v)] = 1;
            h.merge(1, *v, *v, &b);
        }
        h
    }

    fn snap(vals: &[u64]) -> LatencySnapshot {
        LatencySnapshot {
            procs: vec![LatencyProc { pid: 7, cgroup_id: 99, latency: LatencyEntry { read: hist(vals), queue: Histogram::default(), comm: "srv".into(), last_ns: 0 } }],
            ..Default::default()
        }
    }

    const M: u64 = 60_000_000_000;

    #[test]
    fn latency_minutes_hold_exactly_what_grew_in_each_minute() {
        let mut l = LatencyMinutes::default();
        let mut cg = |id: u64| Some(format!("/cg{id}"));
        let t0 = 1_800_000_000 * 1_000_000_000 / M * M;
        // Baseline: 2 values from before the agent; not counted.
        l.observe(&snap(&[5_000, 6_000]), t0, &mut cg);
        l.observe(&snap(&[5_000, 6_000, 10_000, 20_000]), t0 + 10_000_000_000, &mut cg);
        l.observe(&snap(&[5_000, 6_000, 10_000, 20_000, 30_000]), t0 + 50_000_000_000, &mut cg);
        assert!(l.take(false, &mut cg).is_empty(), "the minute has not ended");
        l.observe(&snap(&[5_000, 6_000, 10_000, 20_000, 30_000, 1_000_000]), t0 + M + 1, &mut cg);
        let rows = l.take(false, &mut cg);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.start, r.stage.as_str(), r.pid, r.comm.as_deref(), r.cgroup.as_deref()), (t0 / 1_000_000_000, "read", Some(7), Some("srv"), Some("/cg99")));
        let want = hist(&[10_000, 20_000, 30_000]);
        assert_eq!((r.hist.count, r.hist.sum_ns, r.hist.buckets.iter().sum::<u64>()), (3, 60_000, 3));
        assert_eq!(&r.hist.buckets[..want.buckets.len()], &want.buckets[..]);
        let last = l.take(true, &mut cg);
        assert_eq!((last.len(), last[0].hist.count, last[0].hist.sum_ns), (1, 1, 1_000_000));
        // An entry made anew (counts went down): counted from zero.
        l.observe(&snap(&[40_000]), t0 + 2 * M + 1, &mut cg);
        let again = l.take(true, &mut cg);
        assert_eq!((again[0].hist.count, again[0].hist.sum_ns), (1, 40_000));
    }

    fn call(client: &str, requests: u64, statuses: &[(u16, u64)], lat: &[u64]) -> HttpRow {
        HttpRow {
            start: 0,
            res: 0,
            client: Some(client.parse().unwrap()),
            server: Some("198.18.0.2".parse().unwrap()),
            port: Some(8080),
            endpoint: "GET /users/{id}".into(),
            requests,
            client_errors: statuses.iter().filter(|s| (400..500).contains(&s.0)).map(|s| s.1).sum(),
            server_errors: statuses.iter().filter(|s| s.0 >= 500).map(|s| s.1).sum(),
            unanswered: 0,
            statuses: statuses.iter().copied().collect(),
            request_bytes: requests * 10,
            response_bytes: requests * 100,
            latency: hist(lat),
        }
    }

    #[test]
    fn http_minutes_hold_exactly_the_calls_of_each_minute_per_client() {
        let mut h = HttpMinutes::default();
        let t0 = 1_800_000_000 * 1_000_000_000 / M * M;
        h.observe(vec![call("198.18.0.1", 1, &[(200, 1)], &[1_000_000])], t0);
        h.observe(vec![call("198.18.0.1", 2, &[(200, 1), (404, 1)], &[2_000_000, 3_000_000]), call("198.18.0.9", 1, &[(200, 1)], &[4_000_000])], t0 + 5_000_000_000);
        h.observe(vec![call("198.18.0.1", 2, &[(500, 1), (200, 1)], &[5_000_000, 6_000_000])], t0 + M);
        let rows = h.take(true);
        let got: Vec<_> = rows.iter().map(|r| (r.start, r.client.unwrap().to_string(), r.requests, r.client_errors, r.server_errors, r.latency.count, r.latency.sum_ns)).collect();
        let m0 = t0 / 1_000_000_000;
        assert_eq!(got, [
            (m0, "198.18.0.1".to_string(), 3, 1, 0, 3, 6_000_000),
            (m0, "198.18.0.9".to_string(), 1, 0, 0, 1, 4_000_000),
            (m0 + 60, "198.18.0.1".to_string(), 2, 0, 1, 2, 11_000_000)
        ]);
        assert_eq!(rows[0].statuses.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), [(200, 2), (404, 1)]);
        assert_eq!(rows[0].request_bytes, 30);
    }

    #[test]
    fn http_minutes_past_the_row_cap_go_to_other_with_exact_sums() {
        let mut h = HttpMinutes::default();
        let t0 = 1_800_000_000 * 1_000_000_000 / M * M;
        let n = HTTP_ROWS_PER_MINUTE + 5;
        let calls: Vec<HttpRow> = (0..n).map(|i| call(&std::net::Ipv4Addr::from(0xc612_0000u32 + i as u32).to_string(), 1, &[(200, 1)], &[1_000])).collect();
        h.observe(calls, t0);
        let rows = h.take(true);
        assert_eq!(rows.len(), HTTP_ROWS_PER_MINUTE + 1);
        let other: Vec<_> = rows.iter().filter(|r| r.client.is_none()).collect();
        assert_eq!((other.len(), other[0].requests, other[0].latency.count, other[0].statuses.get(&200).copied()), (1, 5, 5, Some(5)));
        assert_eq!(rows.iter().map(|r| r.requests).sum::<u64>(), n as u64);
    }
}
