//! Minutes to hours for the roll-ups whose histograms SQL cannot add (latency, HTTP): the minute
//! rows of whole hours before the cut are read, summed per key in Rust (counts, sums and every
//! bucket exactly; the larger max; status counts code by code), written as hour rows and deleted,
//! in the caller's transaction.
use crate::{buckets_blob, buckets_of, hist_add, statuses_json, statuses_of, Histogram};
use rusqlite::types::Value as Sv;
use rusqlite::{params, params_from_iter, Transaction};
use std::collections::BTreeMap;

/// Which columns key a row, which are summed, and how the histogram is stored.
struct Table {
    name: &'static str,
    keys: &'static [&'static str],
    sums: &'static [&'static str],
    /// A column of status counts (JSON), summed code by code.
    statuses: Option<&'static str>,
}

const LATENCY: Table = Table { name: "latency", keys: &["host", "stage", "pid", "comm", "cgroup", "remote", "rport"], sums: &[], statuses: None };
const HTTP: Table = Table {
    name: "http",
    keys: &["host", "client", "server", "port", "endpoint"],
    sums: &["requests", "client_errors", "server_errors", "unanswered", "request_bytes", "response_bytes"],
    statuses: Some("statuses"),
};

type Statuses = BTreeMap<u16, u64>;

/// A key as SQL values (compared as their debug text: NULLs, integers, text and blobs alike).
type Key = (i64, Vec<String>);

fn roll(tx: &Transaction, t: &Table, cut_s: i64) -> rusqlite::Result<u64> {
    let cut = cut_s - cut_s.rem_euclid(3600);
    let cols: Vec<&str> = t.keys.iter().chain(t.sums).copied().chain(["count", "sum_ns", "max_ns", "buckets", "start"]).chain(t.statuses).collect();
    let mut st = tx.prepare(&format!("SELECT {} FROM {} WHERE res = 60 AND start < ?1", cols.join(", "), t.name))?;
    let nk = t.keys.len();
    let ns = t.sums.len();
    // Per (hour, key): the key's values, the sums, the histogram.
    let mut acc: BTreeMap<Key, (Vec<Sv>, Vec<i64>, Histogram, Statuses)> = BTreeMap::new();
    let mut rows = st.query(params![cut])?;
    while let Some(r) = rows.next()? {
        let key: Vec<Sv> = (0..nk).map(|i| r.get::<_, Sv>(i)).collect::<Result<_, _>>()?;
        let sums: Vec<i64> = (0..ns).map(|i| r.get::<_, i64>(nk + i)).collect::<Result<_, _>>()?;
        let b: Vec<u8> = r.get(nk + ns + 3)?;
        let h = Histogram { count: r.get::<_, i64>(nk + ns)? as u64, sum_ns: r.get::<_, i64>(nk + ns + 1)? as u64, max_ns: r.get::<_, i64>(nk + ns + 2)? as u64, buckets: buckets_of(&b) };
        let start: i64 = r.get(nk + ns + 4)?;
        let hour = start - start.rem_euclid(3600);
        let e = acc.entry((hour, key.iter().map(|v| format!("{v:?}")).collect())).or_insert_with(|| (key, vec![0; ns], Histogram::default(), Statuses::new()));
        for (a, s) in e.1.iter_mut().zip(&sums) {
            *a += s;
        }
        hist_add(&mut e.2, &h);
        if t.statuses.is_some() {
            for (code, n) in statuses_of(&r.get::<_, String>(nk + ns + 5)?) {
                *e.3.entry(code).or_default() += n;
            }
        }
    }
    drop(rows);
    drop(st);
    let ins_cols: Vec<&str> =
        ["res", "start"].into_iter().chain(t.keys.iter().copied()).chain(t.sums.iter().copied()).chain(["count", "sum_ns", "max_ns", "buckets"]).chain(t.statuses).collect();
    let marks = vec!["?"; ins_cols.len()].join(",");
    let mut ins = tx.prepare(&format!("INSERT INTO {} ({}) VALUES ({marks})", t.name, ins_cols.join(", ")))?;
    for ((hour, _), (key, sums, h, statuses)) in acc {
        let mut v: Vec<Sv> = vec![Sv::Integer(3600), Sv::Integer(hour)];
        v.extend(key);
        v.extend(sums.into_iter().map(Sv::Integer));
        v.extend([Sv::Integer(h.count as i64), Sv::Integer(h.sum_ns as i64), Sv::Integer(h.max_ns as i64), Sv::Blob(buckets_blob(&h))]);
        if t.statuses.is_some() {
            v.push(Sv::Text(statuses_json(&statuses)));
        }
        ins.execute(params_from_iter(v))?;
    }
    Ok(tx.execute(&format!("DELETE FROM {} WHERE res = 60 AND start < ?1", t.name), params![cut])? as u64)
}

/// Latency minutes older than `cut_s` (whole hours) become hours; returns the minute rows removed.
pub(crate) fn latency(tx: &Transaction, cut_s: i64) -> rusqlite::Result<u64> {
    roll(tx, &LATENCY, cut_s)
}

/// HTTP minutes older than `cut_s` (whole hours) become hours.
pub(crate) fn http(tx: &Transaction, cut_s: i64) -> rusqlite::Result<u64> {
    roll(tx, &HTTP, cut_s)
}
