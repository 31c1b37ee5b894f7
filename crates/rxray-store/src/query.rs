//! Reading the store back: `history`'s filters and `investigate`'s timeline share one query.
use crate::{addr_of, buckets_of, sql, statuses_of, AddrRange, AlertRow, ConnRow, FlowRow, Histogram, HttpRow, LatencyRow, MinuteCount, MitigationRow, Store, StoreError};
use rusqlite::{params_from_iter, types::Value as Sv, Row};
use serde::Serialize;

/// What to read: a time window (ns since the epoch, `until` exclusive) and optional filters. A
/// filter applies to the kinds of record that have that field; the others are left out.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub since: u64,
    pub until: u64,
    pub addr: Option<AddrRange>,
    pub port: Option<u16>,
    pub proto: Option<u8>,
    pub detector: Option<String>,
    /// `METHOD /template`: only the HTTP view's roll-ups of this endpoint.
    pub endpoint: Option<String>,
    /// At most this many rows per kind (the newest are kept).
    pub limit: usize,
}

/// How complete the window's data is: what the sources and the store's writer lost in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Completeness {
    pub batches: u64,
    pub events_lost: u64,
    pub batches_lost: u64,
}

/// Every kind of record the query found, each in time order.
#[derive(Clone, Debug, Default, Serialize, schemars::JsonSchema)]
pub struct Records {
    pub flows: Vec<FlowRow>,
    pub conns: Vec<ConnRow>,
    pub alerts: Vec<AlertRow>,
    pub mitigations: Vec<MitigationRow>,
    pub counts: Vec<MinuteCount>,
    /// Delivery latency per minute (or hour), per process and per remote end.
    pub latency: Vec<LatencyRow>,
    /// HTTP calls per minute (or hour), per endpoint, client and server.
    pub http: Vec<HttpRow>,
    pub completeness: Completeness,
    /// True when a kind had more rows than the limit (the oldest were left out).
    pub truncated: bool,
}

fn ip(r: &Row, i: usize) -> rusqlite::Result<std::net::IpAddr> {
    let b: Vec<u8> = r.get(i)?;
    addr_of(&b).ok_or_else(|| rusqlite::Error::InvalidColumnType(i, "address".into(), rusqlite::types::Type::Blob))
}

fn opt_ip(r: &Row, i: usize) -> rusqlite::Result<Option<std::net::IpAddr>> {
    let b: Option<Vec<u8>> = r.get(i)?;
    Ok(b.and_then(|b| addr_of(&b)))
}

/// A histogram from its columns `count, sum_ns, max_ns, buckets` starting at `i`.
fn hist(r: &Row, i: usize) -> rusqlite::Result<Histogram> {
    let b: Vec<u8> = r.get(i + 3)?;
    Ok(Histogram { count: r.get::<_, i64>(i)? as u64, sum_ns: r.get::<_, i64>(i + 1)? as u64, max_ns: r.get::<_, i64>(i + 2)? as u64, buckets: buckets_of(&b) })
}

/// A WHERE clause and its parameters, built up filter by filter.
struct Where {
    sql: Vec<String>,
    args: Vec<Sv>,
}

impl Where {
    fn new(col: &str, q: &Query) -> Where {
        Where { sql: vec![format!("{col} >= ? AND {col} < ?")], args: vec![Sv::Integer(q.since.min(i64::MAX as u64) as i64), Sv::Integer(q.until.min(i64::MAX as u64) as i64)] }
    }

    /// Rows whose span [start_col, end_col] overlaps the window, no row spanning more than
    /// `span`: a range on the start column (indexed), then the end.
    fn overlap(start_col: &str, end_col: &str, q: &Query, span: i64) -> Where {
        let since = q.since.min(i64::MAX as u64) as i64;
        Where {
            sql: vec![format!("{start_col} >= ? AND {start_col} < ? AND {end_col} >= ?")],
            args: vec![Sv::Integer(since.saturating_sub(span)), Sv::Integer(q.until.min(i64::MAX as u64) as i64), Sv::Integer(since)],
        }
    }
    fn add(&mut self, clause: &str, args: impl IntoIterator<Item = Sv>) {
        self.sql.push(clause.to_string());
        self.args.extend(args);
    }
    /// Rows of `table` with any of `cols` inside the range: one index range scan per column, joined
    /// by rowid (an OR of the columns in one WHERE would scan the whole table).
    /// With `ts`, the column's index is `(address, ts_start)`: the time range is applied on the index
    /// (for one address, a seek straight to the window).
    fn addr_in(&mut self, table: &str, cols: &[&str], r: &AddrRange, ts: Option<(&str, i64, i64)>) {
        let one = r.lo == r.hi;
        let c: Vec<String> = cols
            .iter()
            .map(|c| {
                let a = if one { format!("{c} = ?") } else { format!("{c} BETWEEN ? AND ?") };
                let t = ts.map(|(c, _, _)| format!(" AND {c} >= ? AND {c} < ?")).unwrap_or_default();
                format!("SELECT rowid FROM {table} WHERE {a}{t}")
            })
            .collect();
        let args = cols.iter().flat_map(|_| {
            let mut v = vec![Sv::Blob(r.lo.to_vec())];
            if !one {
                v.push(Sv::Blob(r.hi.to_vec()));
            }
            if let Some((_, lo, hi)) = ts {
                v.extend([Sv::Integer(lo), Sv::Integer(hi)]);
            }
            v
        });
        self.add(&format!("rowid IN ({})", c.join(" UNION ")), args.collect::<Vec<_>>());
    }

    /// The start column's range an `overlap` clause set (its first two arguments).
    fn start_range(&self) -> Option<(&'static str, i64, i64)> {
        match (&self.args.first(), &self.args.get(1)) {
            (Some(Sv::Integer(a)), Some(Sv::Integer(b))) => Some(("ts_start", *a, *b)),
            _ => None,
        }
    }
    fn clause(&self) -> String {
        self.sql.join(" AND ")
    }
}

impl Store {
    /// Reads what `q` selects.
    pub fn query(&self, q: &Query) -> Result<Records, StoreError> {
        let e = sql(&self.path);
        let limit = if q.limit == 0 { 10_000 } else { q.limit };
        let mut out = Records::default();
        let only_http = q.endpoint.is_some();
        let only_alerts = q.detector.is_some();

        if !only_http && !only_alerts {
            let mut w = Where::overlap("ts_start", "ts_end", q, self.span(0));
            if let Some(r) = &q.addr {
                let ts = w.start_range();
                w.addr_in("flows", &["src", "dst"], r, ts);
            }
            if let Some(p) = q.port {
                w.add("(sport = ? OR dport = ?)", [Sv::Integer(p as i64), Sv::Integer(p as i64)]);
            }
            if let Some(p) = q.proto {
                w.add("proto = ?", [Sv::Integer(p as i64)]);
            }
            let s = format!(
                "SELECT ts_start, ts_end, iface, proto, src, sport, dst, dport, packets, bytes, closed, drops, last_drop, pid, comm, cgroup \
                 FROM flows WHERE {} ORDER BY ts_start DESC, rowid DESC LIMIT {}",
                w.clause(),
                limit.saturating_add(1)
            );
            let mut st = self.conn.prepare(&s).map_err(&e)?;
            let rows = st
                .query_map(params_from_iter(w.args.iter()), |r| {
                    Ok(FlowRow {
                        ts_start: r.get::<_, i64>(0)? as u64,
                        ts_end: r.get::<_, i64>(1)? as u64,
                        iface: r.get(2)?,
                        proto: r.get(3)?,
                        src: ip(r, 4)?,
                        sport: r.get(5)?,
                        dst: ip(r, 6)?,
                        dport: r.get(7)?,
                        packets: r.get::<_, i64>(8)? as u64,
                        bytes: r.get::<_, i64>(9)? as u64,
                        closed: r.get(10)?,
                        drops: r.get::<_, i64>(11)? as u64,
                        last_drop: r.get(12)?,
                        pid: r.get(13)?,
                        comm: r.get(14)?,
                        cgroup: r.get(15)?,
                    })
                })
                .map_err(&e)?;
            out.flows = rows.collect::<Result<_, _>>().map_err(&e)?;

            if q.proto.is_none() || q.proto == Some(6) {
                let mut w = Where::overlap("ts_start", "ts_end", q, self.span(1));
                if let Some(r) = &q.addr {
                    let ts = w.start_range();
                    w.addr_in("conns", &["local", "remote"], r, ts);
                }
                if let Some(p) = q.port {
                    w.add("(lport = ? OR rport = ?)", [Sv::Integer(p as i64), Sv::Integer(p as i64)]);
                }
                let s = format!(
                    "SELECT ts_start, ts_end, local, lport, remote, rport, state, bytes_in, bytes_out, retrans, pid, comm, cgroup, closed, srtt_us, min_rtt_us, reset_by FROM conns WHERE {} \
                     ORDER BY ts_start DESC, rowid DESC LIMIT {}",
                    w.clause(),
                    limit.saturating_add(1)
                );
                let mut st = self.conn.prepare(&s).map_err(&e)?;
                let rows = st
                    .query_map(params_from_iter(w.args.iter()), |r| {
                        Ok(ConnRow {
                            ts_start: r.get::<_, i64>(0)? as u64,
                            ts_end: r.get::<_, i64>(1)? as u64,
                            local: ip(r, 2)?,
                            lport: r.get(3)?,
                            remote: ip(r, 4)?,
                            rport: r.get(5)?,
                            state: r.get(6)?,
                            bytes_in: r.get::<_, i64>(7)? as u64,
                            bytes_out: r.get::<_, i64>(8)? as u64,
                            retrans: r.get::<_, i64>(9)? as u64,
                            pid: r.get(10)?,
                            comm: r.get(11)?,
                            cgroup: r.get(12)?,
                            closed: r.get(13)?,
                            srtt_us: r.get(14)?,
                            min_rtt_us: r.get(15)?,
                            reset_by: r.get(16)?,
                        })
                    })
                    .map_err(&e)?;
                out.conns = rows.collect::<Result<_, _>>().map_err(&e)?;
            }
        }

        if !only_http {
            let mut w = Where::new("ts", q);
            if let Some(r) = &q.addr {
                w.addr_in("alerts", &["src", "dst", "subject", "offender"], r, None);
            }
            if let Some(p) = q.port {
                w.add("(sport = ? OR dport = ?)", [Sv::Integer(p as i64), Sv::Integer(p as i64)]);
            }
            if let Some(p) = q.proto {
                w.add("proto = ?", [Sv::Integer(p as i64)]);
            }
            if let Some(d) = &q.detector {
                w.add("detector = ?", [Sv::Text(d.clone())]);
            }
            let s = format!(
                "SELECT ts, alert_id, detector, sid, msg, proto, src, sport, dst, dport, subject, offender, pcap, eve FROM alerts WHERE {} \
                 ORDER BY ts DESC, rowid DESC LIMIT {}",
                w.clause(),
                limit.saturating_add(1)
            );
            let mut st = self.conn.prepare(&s).map_err(&e)?;
            let rows = st
                .query_map(params_from_iter(w.args.iter()), |r| {
                    Ok(AlertRow {
                        ts: r.get::<_, i64>(0)? as u64,
                        alert_id: r.get::<_, i64>(1)? as u64,
                        detector: r.get(2)?,
                        sid: r.get(3)?,
                        msg: r.get(4)?,
                        proto: r.get(5)?,
                        src: opt_ip(r, 6)?,
                        sport: r.get(7)?,
                        dst: opt_ip(r, 8)?,
                        dport: r.get(9)?,
                        subject: ip(r, 10)?,
                        offender: opt_ip(r, 11)?,
                        pcap: r.get(12)?,
                        eve: serde_json::from_str(&r.get::<_, String>(13)?).unwrap_or(serde_json::Value::Null),
                    })
                })
                .map_err(&e)?;
            out.alerts = rows.collect::<Result<_, _>>().map_err(&e)?;

            if q.port.is_none() && q.proto.is_none() {
                let mut w = Where::new("ts", q);
                if let Some(r) = &q.addr {
                    // The mitigation's target range overlaps the queried one.
                    w.add("addr_lo <= ? AND addr_hi >= ?", [Sv::Blob(r.hi.to_vec()), Sv::Blob(r.lo.to_vec())]);
                }
                if q.detector.is_some() {
                    // Mitigations of that detector's alerts.
                    w.add("alert_id IN (SELECT alert_id FROM alerts WHERE detector = ?)", [Sv::Text(q.detector.clone().unwrap_or_default())]);
                }
                let s = format!(
                    "SELECT ts, alert_id, kind, target, ttl_s, reason, enforced FROM mitigations WHERE {} ORDER BY ts DESC, rowid DESC LIMIT {}",
                    w.clause(),
                    limit.saturating_add(1)
                );
                let mut st = self.conn.prepare(&s).map_err(&e)?;
                let rows = st
                    .query_map(params_from_iter(w.args.iter()), |r| {
                        Ok(MitigationRow {
                            ts: r.get::<_, i64>(0)? as u64,
                            alert_id: r.get::<_, i64>(1)? as u64,
                            kind: r.get(2)?,
                            target: r.get(3)?,
                            ttl_s: r.get::<_, i64>(4)? as u64,
                            reason: r.get(5)?,
                            enforced: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or_default(),
                        })
                    })
                    .map_err(&e)?;
                out.mitigations = rows.collect::<Result<_, _>>().map_err(&e)?;
            }
        }

        let (from_s, until_s) = (q.since / 1_000_000_000, q.until.div_ceil(1_000_000_000).min(i64::MAX as u64));
        let period = |col: &str| Where {
            // A minute or hour row belongs to the window when its period overlaps it.
            sql: vec![format!("{col} + res > ? AND {col} < ?")],
            args: vec![Sv::Integer(from_s as i64), Sv::Integer(until_s as i64)],
        };
        if q.addr.is_none() && q.port.is_none() && q.proto.is_none() && q.detector.is_none() && !only_http {
            let mut st = self
                .conn
                .prepare(&format!(
                    "SELECT start, kind, key, sum(value) FROM counts WHERE start + res > ? AND start < ? GROUP BY start, kind, key ORDER BY start DESC, kind, key LIMIT {}",
                    limit.saturating_add(1)
                ))
                .map_err(&e)?;
            let rows = st
                .query_map(params_from_iter([Sv::Integer(from_s as i64), Sv::Integer(until_s as i64)].iter()), |r| {
                    Ok(MinuteCount { minute: r.get::<_, i64>(0)? as u64, kind: r.get(1)?, key: r.get(2)?, value: r.get::<_, i64>(3)? as u64 })
                })
                .map_err(&e)?;
            out.counts = rows.collect::<Result<_, _>>().map_err(&e)?;
        }

        let tcp = q.proto.is_none() || q.proto == Some(6);
        if !only_http && !only_alerts && tcp {
            let mut w = period("start");
            if let Some(r) = &q.addr {
                w.add("remote BETWEEN ? AND ?", [Sv::Blob(r.lo.to_vec()), Sv::Blob(r.hi.to_vec())]);
            }
            if let Some(p) = q.port {
                w.add("rport = ?", [Sv::Integer(p as i64)]);
            }
            let s = format!(
                "SELECT start, res, stage, pid, comm, cgroup, remote, rport, count, sum_ns, max_ns, buckets FROM latency WHERE {} \
                 ORDER BY start DESC, rowid DESC LIMIT {}",
                w.clause(),
                limit.saturating_add(1)
            );
            let mut st = self.conn.prepare(&s).map_err(&e)?;
            let rows = st
                .query_map(params_from_iter(w.args.iter()), |r| {
                    Ok(LatencyRow {
                        start: r.get::<_, i64>(0)? as u64,
                        res: r.get::<_, i64>(1)? as u64,
                        stage: r.get(2)?,
                        pid: r.get(3)?,
                        comm: r.get(4)?,
                        cgroup: r.get(5)?,
                        remote: opt_ip(r, 6)?,
                        rport: r.get(7)?,
                        hist: hist(r, 8)?,
                    })
                })
                .map_err(&e)?;
            out.latency = rows.collect::<Result<_, _>>().map_err(&e)?;
        }
        if !only_alerts && tcp {
            let mut w = period("start");
            if let Some(r) = &q.addr {
                // The address as the client or as the server; a period starts at most an hour
                // before the window (an hour row), which bounds the (address, start) index range.
                w.addr_in("http", &["client", "server"], r, Some(("start", from_s as i64 - 3600, until_s as i64)));
            }
            if let Some(p) = q.port {
                w.add("port = ?", [Sv::Integer(p as i64)]);
            }
            if let Some(ep) = &q.endpoint {
                w.add("endpoint = ?", [Sv::Text(ep.clone())]);
            }
            let s = format!(
                "SELECT start, res, server, port, endpoint, requests, client_errors, server_errors, unanswered, request_bytes, response_bytes, \
                 count, sum_ns, max_ns, buckets, client, statuses FROM http WHERE {} ORDER BY start DESC, rowid DESC LIMIT {}",
                w.clause(),
                limit.saturating_add(1)
            );
            let mut st = self.conn.prepare(&s).map_err(&e)?;
            let n = |r: &Row, i: usize| r.get::<_, i64>(i).map(|v| v as u64);
            let rows = st
                .query_map(params_from_iter(w.args.iter()), |r| {
                    Ok(HttpRow {
                        start: n(r, 0)?,
                        res: n(r, 1)?,
                        client: opt_ip(r, 15)?,
                        server: opt_ip(r, 2)?,
                        port: r.get(3)?,
                        endpoint: r.get(4)?,
                        requests: n(r, 5)?,
                        client_errors: n(r, 6)?,
                        server_errors: n(r, 7)?,
                        unanswered: n(r, 8)?,
                        statuses: statuses_of(&r.get::<_, String>(16)?),
                        request_bytes: n(r, 9)?,
                        response_bytes: n(r, 10)?,
                        latency: hist(r, 11)?,
                    })
                })
                .map_err(&e)?;
            out.http = rows.collect::<Result<_, _>>().map_err(&e)?;
        }

        // Newest first while reading (so the limit keeps the newest); time order when shown.
        for over in [
            out.flows.len() > limit,
            out.conns.len() > limit,
            out.alerts.len() > limit,
            out.mitigations.len() > limit,
            out.counts.len() > limit,
            out.latency.len() > limit,
            out.http.len() > limit,
        ] {
            out.truncated |= over;
        }
        out.flows.truncate(limit);
        out.conns.truncate(limit);
        out.alerts.truncate(limit);
        out.mitigations.truncate(limit);
        out.counts.truncate(limit);
        out.latency.truncate(limit);
        out.http.truncate(limit);
        out.flows.reverse();
        out.conns.reverse();
        out.alerts.reverse();
        out.mitigations.reverse();
        out.counts.reverse();
        out.latency.reverse();
        out.http.reverse();

        let w = Where::new("ts", q);
        out.completeness = self
            .conn
            .query_row(
                &format!("SELECT count(*), coalesce(sum(events_lost), 0), coalesce(sum(batches_lost), 0) FROM batches WHERE {}", w.clause()),
                params_from_iter(w.args.iter()),
                |r| Ok(Completeness { batches: r.get::<_, i64>(0)? as u64, events_lost: r.get::<_, i64>(1)? as u64, batches_lost: r.get::<_, i64>(2)? as u64 }),
            )
            .map_err(&e)?;
        Ok(out)
    }
}
