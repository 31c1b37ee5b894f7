//! rxray's embedded history: one SQLite file (WAL) per store directory, written in batches by the
//! agent and read by `rxray history` and `rxray investigate`. Every row carries its `host`.
//!
//! Safety of the file comes first: a corrupt file, a foreign SQLite file or one of a newer schema
//! gets a clear error and is never written; schema changes are numbered migrations.
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
pub use rxray_engine::latency::{Histogram, BUCKETS};

mod writer;
pub use writer::{StoreWriter, WriterStats};

/// The file inside the store directory.
pub const FILE: &str = "rxray.db";
/// What `meta.app` says in a store of ours.
const APP: &str = "rxray";
/// The schema this build writes (and the newest it reads).
pub const SCHEMA_VERSION: i64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: not an SQLite database, or damaged ({detail}); it was left untouched: move it away to start a new store")]
    Corrupt { path: String, detail: String },
    #[error("{path}: an SQLite database, but not an rxray store ({detail}); it was left untouched: point --store at another directory")]
    Foreign { path: String, detail: String },
    #[error("{path}: written by a newer rxray (schema {found}; this one knows up to {known}); it was left untouched")]
    Newer { path: String, found: i64, known: i64 },
    #[error("{path}: written by an older rxray (schema {found}; this one reads {known}); the agent migrates it when it next starts with this version")]
    Older { path: String, found: i64, known: i64 },
    #[error("{path}: {detail}")]
    Io { path: String, detail: String },
    #[error("store {path}: {source}")]
    Sql {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
}

/// The migrations, in order: migration `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE flows (
    host TEXT NOT NULL, ts_start INTEGER NOT NULL, ts_end INTEGER NOT NULL,
    iface TEXT NOT NULL, proto INTEGER NOT NULL,
    src BLOB NOT NULL, sport INTEGER NOT NULL, dst BLOB NOT NULL, dport INTEGER NOT NULL,
    packets INTEGER NOT NULL, bytes INTEGER NOT NULL, closed INTEGER NOT NULL,
    drops INTEGER NOT NULL DEFAULT 0, last_drop TEXT,
    pid INTEGER, comm TEXT, cgroup TEXT
);
CREATE INDEX flows_src ON flows(src, ts_start);
CREATE INDEX flows_dst ON flows(dst, ts_start);
CREATE INDEX flows_ts ON flows(ts_start);
CREATE INDEX flows_end ON flows(ts_end);
CREATE TABLE conns (
    host TEXT NOT NULL, ts_start INTEGER NOT NULL, ts_end INTEGER NOT NULL,
    local BLOB NOT NULL, lport INTEGER NOT NULL, remote BLOB NOT NULL, rport INTEGER NOT NULL,
    state TEXT NOT NULL, bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL, retrans INTEGER NOT NULL,
    pid INTEGER, comm TEXT, cgroup TEXT
);
CREATE INDEX conns_remote ON conns(remote, ts_start);
CREATE INDEX conns_ts ON conns(ts_start);
CREATE INDEX conns_end ON conns(ts_end);
CREATE TABLE alerts (
    host TEXT NOT NULL, ts INTEGER NOT NULL, alert_id INTEGER NOT NULL, detector TEXT NOT NULL,
    sid INTEGER NOT NULL, msg TEXT NOT NULL, proto INTEGER,
    src BLOB, sport INTEGER, dst BLOB, dport INTEGER, subject BLOB NOT NULL, offender BLOB,
    pcap TEXT, eve TEXT NOT NULL
);
CREATE INDEX alerts_ts ON alerts(ts);
CREATE INDEX alerts_subject ON alerts(subject, ts);
CREATE INDEX alerts_src ON alerts(src);
CREATE INDEX alerts_dst ON alerts(dst);
CREATE INDEX alerts_offender ON alerts(offender);
CREATE INDEX conns_local ON conns(local, ts_start);
CREATE TABLE mitigations (
    host TEXT NOT NULL, ts INTEGER NOT NULL, alert_id INTEGER NOT NULL, kind TEXT NOT NULL,
    target TEXT NOT NULL, addr_lo BLOB NOT NULL, addr_hi BLOB NOT NULL, ttl_s INTEGER NOT NULL,
    reason TEXT NOT NULL, enforced TEXT NOT NULL
);
CREATE INDEX mitigations_ts ON mitigations(ts);
CREATE TABLE counts (
    host TEXT NOT NULL, res INTEGER NOT NULL, start INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    value INTEGER NOT NULL, PRIMARY KEY (host, res, start, kind, key)
);
CREATE TABLE batches (
    host TEXT NOT NULL, ts INTEGER NOT NULL, rows INTEGER NOT NULL,
    events_lost INTEGER NOT NULL, batches_lost INTEGER NOT NULL
);
CREATE INDEX batches_ts ON batches(ts);
"#, r#"
DROP INDEX flows_end;
DROP INDEX conns_end;
INSERT OR REPLACE INTO rxray_meta SELECT 'flows_max_span', CAST(coalesce(max(ts_end - ts_start), 0) AS TEXT) FROM flows;
INSERT OR REPLACE INTO rxray_meta SELECT 'conns_max_span', CAST(coalesce(max(ts_end - ts_start), 0) AS TEXT) FROM conns;
ALTER TABLE conns ADD COLUMN closed INTEGER NOT NULL DEFAULT 1;
ALTER TABLE conns ADD COLUMN srtt_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conns ADD COLUMN min_rtt_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conns ADD COLUMN reset_by TEXT;
CREATE TABLE latency (
    host TEXT NOT NULL, res INTEGER NOT NULL, start INTEGER NOT NULL, stage TEXT NOT NULL,
    pid INTEGER, comm TEXT, cgroup TEXT, remote BLOB, rport INTEGER,
    count INTEGER NOT NULL, sum_ns INTEGER NOT NULL, max_ns INTEGER NOT NULL, buckets BLOB NOT NULL
);
CREATE INDEX latency_start ON latency(start);
CREATE INDEX latency_remote ON latency(remote, start);
CREATE TABLE http (
    host TEXT NOT NULL, res INTEGER NOT NULL, start INTEGER NOT NULL,
    server BLOB, port INTEGER, endpoint TEXT NOT NULL,
    requests INTEGER NOT NULL, client_errors INTEGER NOT NULL, server_errors INTEGER NOT NULL,
    unanswered INTEGER NOT NULL, request_bytes INTEGER NOT NULL, response_bytes INTEGER NOT NULL,
    count INTEGER NOT NULL, sum_ns INTEGER NOT NULL, max_ns INTEGER NOT NULL, buckets BLOB NOT NULL
);
CREATE INDEX http_start ON http(start);
CREATE INDEX http_server ON http(server, start);
CREATE INDEX http_endpoint ON http(endpoint, start);
"#, r#"
ALTER TABLE http ADD COLUMN client BLOB;
ALTER TABLE http ADD COLUMN statuses TEXT NOT NULL DEFAULT '{}';
CREATE INDEX http_client ON http(client, start);
"#];

/// 16 bytes an address is stored as (IPv4 as v4-mapped IPv6), so a prefix is a byte range.
pub fn addr_key(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    }
}

/// The address back from its 16 bytes (v4-mapped ones as IPv4).
pub fn addr_of(b: &[u8]) -> Option<IpAddr> {
    let a: [u8; 16] = b.try_into().ok()?;
    let v6 = Ipv6Addr::from(a);
    Some(v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)))
}

/// An address or prefix as the inclusive byte range its addresses take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrRange {
    pub lo: [u8; 16],
    pub hi: [u8; 16],
}

impl AddrRange {
    /// `198.18.0.7`, `198.18.0.0/15`, `2001:2::/48`.
    pub fn parse(s: &str) -> Result<AddrRange, String> {
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u32>().map_err(|_| format!("{s:?}: bad prefix length"))?)),
            None => (s, None),
        };
        let ip: IpAddr = a.parse().map_err(|_| format!("{s:?} is not an address or prefix"))?;
        let (max, off) = if ip.is_ipv4() { (32, 96) } else { (128, 0) };
        let len = len.unwrap_or(max);
        if len > max {
            return Err(format!("{s:?}: a /{len} is longer than the address"));
        }
        let k = u128::from_be_bytes(addr_key(ip));
        let host_bits = 128 - (off + len);
        let mask = if host_bits == 128 { 0 } else { u128::MAX << host_bits };
        Ok(AddrRange { lo: (k & mask).to_be_bytes(), hi: (k | !mask).to_be_bytes() })
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        let k = addr_key(a);
        self.lo <= k && k <= self.hi
    }
}

/// One row of the flows table: a closed flow, or a live flow's delta over one period.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct FlowRow {
    pub ts_start: u64,
    pub ts_end: u64,
    pub iface: String,
    pub proto: u8,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    pub packets: u64,
    pub bytes: u64,
    /// The flow ended (idle past the timeout, or left the table); otherwise a periodic delta.
    pub closed: bool,
    pub drops: u64,
    pub last_drop: Option<String>,
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub cgroup: Option<String>,
}

/// A TCP connection with the process and cgroup that read it: like a flow, a closed connection
/// or a live one's counts over one period (`bytes_in`, `bytes_out` and `retrans` are what changed
/// since the connection's previous row, so the rows of one connection sum to its totals).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ConnRow {
    pub ts_start: u64,
    pub ts_end: u64,
    pub local: IpAddr,
    pub lport: u16,
    pub remote: IpAddr,
    pub rport: u16,
    pub state: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub retrans: u64,
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub cgroup: Option<String>,
    /// The connection ended (its last row); otherwise a periodic row of a live one.
    pub closed: bool,
    /// Smoothed RTT at the row's end, and the smallest RTT seen (µs; 0: no sample).
    pub srtt_us: u32,
    pub min_rtt_us: u32,
    /// Who reset it: `peer`, `local`, `both`; none when it was not reset.
    pub reset_by: Option<String>,
}

/// A latency distribution with its percentiles as the store shows it (ns; the buckets are the
/// engine's, `rxray_engine::latency`, sparse as `[index, count]`). Fields in sorted order, as
/// every record of `history --json` prints them.
#[derive(Serialize, schemars::JsonSchema)]
pub struct HistOut {
    /// `[bucket index, count]` for each non-empty bucket.
    pub buckets: Vec<(usize, u64)>,
    pub count: u64,
    pub max_ns: u64,
    pub p50_ns: Option<u64>,
    pub p95_ns: Option<u64>,
    pub p99_ns: Option<u64>,
    pub sum_ns: u64,
}

fn hist_json<S: serde::Serializer>(h: &Histogram, s: S) -> Result<S::Ok, S::Error> {
    let buckets: Vec<(usize, u64)> = h.buckets.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, n)| (i, *n)).collect();
    HistOut {
        buckets,
        count: h.count,
        max_ns: h.max_ns,
        p50_ns: h.percentile(50.0),
        p95_ns: h.percentile(95.0),
        p99_ns: h.percentile(99.0),
        sum_ns: h.sum_ns,
    }
    .serialize(s)
}

/// Delivery latency over one minute (or hour, once rolled up) of one stage (`read`: arrival to
/// the reader's read; `queue`: arrival to the socket's queue) for one process or one remote end.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LatencyRow {
    /// Unix seconds of the period's start.
    pub start: u64,
    /// The period: 60 (a minute) or 3600 (an hour).
    pub res: u64,
    pub stage: String,
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub cgroup: Option<String>,
    pub remote: Option<IpAddr>,
    pub rport: Option<u16>,
    #[serde(serialize_with = "hist_json")]
    #[schemars(with = "HistOut")]
    pub hist: Histogram,
}

/// The calls of one client to one endpoint of one server over one minute (or hour): calls,
/// answers by status, errors, latency (request to response, ns). A row with no client is the
/// `other` bucket: calls of a minute past the per-minute cap on (endpoint, client, server) rows
/// (or, in a store of schema 2, every call: those rows were per endpoint only).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct HttpRow {
    pub start: u64,
    pub res: u64,
    /// The client's address (none: the `other` bucket).
    pub client: Option<IpAddr>,
    /// The server's address and port (none: the `other` bucket, or a source that does not split
    /// endpoints by server).
    pub server: Option<IpAddr>,
    pub port: Option<u16>,
    /// `METHOD /template`.
    pub endpoint: String,
    pub requests: u64,
    /// Answers 400..=499 and 500..=599.
    pub client_errors: u64,
    pub server_errors: u64,
    pub unanswered: u64,
    /// Final answers by status code (JSON keys are the codes as strings).
    pub statuses: std::collections::BTreeMap<u16, u64>,
    pub request_bytes: u64,
    pub response_bytes: u64,
    #[serde(serialize_with = "hist_json")]
    #[schemars(with = "HistOut")]
    pub latency: Histogram,
}

impl HttpRow {
    /// Errors (4xx and 5xx answers) per request.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            (self.client_errors + self.server_errors) as f64 / self.requests as f64
        }
    }
}

/// Sparse buckets as stored: `(u16 index, u64 count)` little-endian pairs for the non-zero ones.
fn buckets_blob(h: &Histogram) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, n) in h.buckets.iter().enumerate() {
        if *n > 0 {
            v.extend_from_slice(&(i as u16).to_le_bytes());
            v.extend_from_slice(&n.to_le_bytes());
        }
    }
    v
}

/// The buckets back (pieces that do not parse, or indexes out of range, are skipped).
fn buckets_of(b: &[u8]) -> Vec<u64> {
    let mut out = vec![0u64; BUCKETS];
    for c in b.chunks_exact(10) {
        let i = u16::from_le_bytes([c[0], c[1]]) as usize;
        let n = u64::from_le_bytes(c[2..10].try_into().unwrap_or([0; 8]));
        if let Some(x) = out.get_mut(i) {
            *x += n;
        }
    }
    out
}

/// Adds `b` into `a` (counts, sums, buckets; the larger max).
pub fn hist_add(a: &mut Histogram, b: &Histogram) {
    if a.buckets.len() < b.buckets.len() {
        a.buckets.resize(b.buckets.len(), 0);
    }
    a.count += b.count;
    a.sum_ns += b.sum_ns;
    a.max_ns = a.max_ns.max(b.max_ns);
    for (x, y) in a.buckets.iter_mut().zip(&b.buckets) {
        *x += y;
    }
}

/// An alert with its evidence (the whole EVE record).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AlertRow {
    pub ts: u64,
    pub alert_id: u64,
    pub detector: String,
    pub sid: u32,
    pub msg: String,
    pub proto: Option<u8>,
    pub src: Option<IpAddr>,
    pub sport: Option<u16>,
    pub dst: Option<IpAddr>,
    pub dport: Option<u16>,
    pub subject: IpAddr,
    pub offender: Option<IpAddr>,
    /// The flight recorder's file for this alert.
    pub pcap: Option<String>,
    pub eve: serde_json::Value,
}

/// A mitigation with its TTL and provenance (the alert it answers, and why).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct MitigationRow {
    pub ts: u64,
    pub alert_id: u64,
    /// `block` or `rate_limit`.
    pub kind: String,
    /// The prefix blocked or the destination limited.
    pub target: String,
    pub ttl_s: u64,
    pub reason: String,
    /// What was carried out, per firewall (empty: decided only).
    pub enforced: Vec<String>,
}

/// A count over one minute (`kind`: `drop` per reason, `fw_rule` per rule, `http` per endpoint...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct MinuteCount {
    /// Unix time of the minute's start, in seconds (a multiple of 60).
    pub minute: u64,
    pub kind: String,
    pub key: String,
    pub value: u64,
}

/// What one write holds, with what the writer knows it lost before it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// When it was made (ns since the epoch).
    pub ts: u64,
    pub flows: Vec<FlowRow>,
    pub conns: Vec<ConnRow>,
    pub alerts: Vec<AlertRow>,
    pub mitigations: Vec<MitigationRow>,
    pub counts: Vec<MinuteCount>,
    pub latency: Vec<LatencyRow>,
    pub http: Vec<HttpRow>,
    /// Events the sources lost since the previous batch.
    pub events_lost: u64,
}

impl Batch {
    pub fn rows(&self) -> usize {
        self.flows.len() + self.conns.len() + self.alerts.len() + self.mitigations.len() + self.counts.len() + self.latency.len() + self.http.len()
    }
}

/// Retention: rows older than `max_age_s` go; then the oldest go until the file is under
/// `max_bytes`; minute counts older than `rollup_after_s` are summed into hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub max_age_s: u64,
    pub max_bytes: u64,
    pub rollup_after_s: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { max_age_s: 7 * 86_400, max_bytes: 1 << 30, rollup_after_s: 86_400 }
    }
}

/// What one retention pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub rows_aged_out: u64,
    pub rows_cut_for_size: u64,
    pub minutes_rolled_up: u64,
}

/// The store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    host: String,
    /// The longest `ts_end - ts_start` of any flow and connection row written (ns): a window's
    /// rows are found through the `ts_start` indexes alone, from `since - span` on (no index on
    /// `ts_end` to keep up on every insert).
    spans: [i64; 2],
}

/// The tables whose rows span a time, with their span's key in `rxray_meta`.
const SPAN_KEYS: [&str; 2] = ["flows_max_span", "conns_max_span"];

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sql { path: path.display().to_string(), source }
}

impl Store {
    /// Opens the store in `dir` (created with the file when missing), writing as `host`.
    pub fn open(dir: &Path, host: &str) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io { path: dir.display().to_string(), detail: format!("creating the store directory: {e}") })?;
        let path = dir.join(FILE);
        Store::open_file(&path, host, true)
    }

    /// Opens an existing store file read-only (for `history` and `investigate`).
    pub fn open_read(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join(FILE);
        if !path.exists() {
            return Err(StoreError::Io { path: path.display().to_string(), detail: "no store here (the agent writes one; see --store)".into() });
        }
        Store::open_file(&path, "", false)
    }

    fn open_file(path: &Path, host: &str, write: bool) -> Result<Store, StoreError> {
        let p = path.display().to_string();
        let exists = path.exists();
        if exists && !std::fs::metadata(path).map(|m| m.is_file()).unwrap_or(false) {
            return Err(StoreError::Io { path: p, detail: "not a regular file".into() });
        }
        let flags = if write && !exists {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } else if write {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        };
        let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(|e| StoreError::Corrupt { path: p.clone(), detail: e.to_string() })?;
        let mut s = Store { conn, path: path.to_path_buf(), host: host.to_string(), spans: [0; 2] };
        if exists {
            s.check_existing(write)?;
        }
        if write {
            s.conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql(path))?;
            // WAL: readers (history, investigate) never block the agent's writes; NORMAL sync: a
            // crash of the process loses nothing committed, a power loss at most the last batches.
            if !exists {
                // Freed pages can be given back without rewriting the file: set before the file's
                // first page is written (switching to WAL writes it).
                s.conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").map_err(sql(path))?;
            }
            s.conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| StoreError::Corrupt { path: p.clone(), detail: e.to_string() })?;
            s.conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql(path))?;
            // A batch touches a page per address in each address index: 32 MiB of page cache keeps
            // them (the default 2 MiB spills mid-transaction), and checkpoints every 32 MiB of WAL
            // instead of 4 MiB sync the file less often. Measured by store_day: 2.3x the rows/s.
            s.conn.pragma_update(None, "cache_size", -32768).map_err(sql(path))?;
            s.conn.pragma_update(None, "wal_autocheckpoint", 8192).map_err(sql(path))?;
            s.migrate()?;
        } else {
            let v = s.version()?;
            if v < SCHEMA_VERSION {
                return Err(StoreError::Older { path: p, found: v, known: SCHEMA_VERSION });
            }
        }
        s.spans = s.read_spans()?;
        Ok(s)
    }

    /// An existing file must be an rxray store of a schema this build knows, and intact.
    /// `full`: the whole file is read through (`quick_check`) before the agent writes to it; a
    /// reader (history, investigate) reads only what its query needs, and SQLite reports any
    /// damaged page it meets (a day's store is many GB: a full pass would be most of the time).
    fn check_existing(&self, full: bool) -> Result<(), StoreError> {
        let p = self.path.display().to_string();
        let corrupt = |e: rusqlite::Error| StoreError::Corrupt { path: p.clone(), detail: e.to_string() };
        if full {
            let check: String = self.conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(corrupt)?;
            if check != "ok" {
                return Err(StoreError::Corrupt { path: p, detail: format!("quick_check: {check}") });
            }
        }
        let has_meta: bool = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'rxray_meta'", [], |r| r.get::<_, i64>(0))
            .map_err(corrupt)?
            > 0;
        if !has_meta {
            let tables: i64 = self.conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0)).map_err(corrupt)?;
            if tables == 0 {
                // An empty SQLite file (e.g. created and never written): ours to set up.
                return Ok(());
            }
            return Err(StoreError::Foreign { path: p, detail: format!("{tables} tables, none of them rxray_meta") });
        }
        let app: Option<String> = self.conn.query_row("SELECT value FROM rxray_meta WHERE key = 'app'", [], |r| r.get(0)).optional().map_err(corrupt)?;
        if app.as_deref() != Some(APP) {
            return Err(StoreError::Foreign { path: p, detail: format!("rxray_meta.app is {app:?}") });
        }
        let v = self.version()?;
        if v > SCHEMA_VERSION {
            return Err(StoreError::Newer { path: p, found: v, known: SCHEMA_VERSION });
        }
        Ok(())
    }

    fn read_spans(&self) -> Result<[i64; 2], StoreError> {
        let mut out = [0; 2];
        for (o, k) in out.iter_mut().zip(SPAN_KEYS) {
            let v: Option<String> = self.conn.query_row("SELECT value FROM rxray_meta WHERE key = ?1", [k], |r| r.get(0)).optional().map_err(sql(&self.path))?;
            *o = v.and_then(|v| v.parse().ok()).unwrap_or(0);
        }
        Ok(out)
    }

    /// The longest span of a flow row (`0`) or a connection row (`1`), as written so far (ns).
    pub(crate) fn span(&self, i: usize) -> i64 {
        // A reader sees what the writer has written since it opened.
        self.read_spans().map(|s| s[i]).unwrap_or(i64::MAX / 2)
    }

    /// Moves the WAL's pages into the file and empties the WAL (a size taken after it is the
    /// file's alone).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(sql(&self.path))
    }

    /// Sets the page cache (bytes). The agent's default is 32 MiB; a bulk load (the benchmarks'
    /// generated history) writes far less with a larger one.
    pub fn set_cache_bytes(&mut self, bytes: u64) -> Result<(), StoreError> {
        self.conn.pragma_update(None, "cache_size", -((bytes / 1024).clamp(1, i64::MAX as u64) as i64)).map_err(sql(&self.path))
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.version()
    }

    fn version(&self) -> Result<i64, StoreError> {
        let v: Option<String> =
            self.conn.query_row("SELECT value FROM rxray_meta WHERE key = 'schema_version'", [], |r| r.get(0)).optional().map_err(sql(&self.path))?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// Brings the schema to `SCHEMA_VERSION`, one numbered migration per transaction.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        self.conn
            .execute_batch("CREATE TABLE IF NOT EXISTS rxray_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT OR IGNORE INTO rxray_meta VALUES ('app', 'rxray');")
            .map_err(sql(&path))?;
        let mut v = self.version()?;
        while v < SCHEMA_VERSION {
            let tx = self.conn.transaction().map_err(sql(&path))?;
            tx.execute_batch(MIGRATIONS[v as usize]).map_err(sql(&path))?;
            tx.execute("INSERT OR REPLACE INTO rxray_meta VALUES ('schema_version', ?1)", params![(v + 1).to_string()]).map_err(sql(&path))?;
            tx.commit().map_err(sql(&path))?;
            v += 1;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's size on disk (the file and its WAL).
    pub fn size_bytes(&self) -> u64 {
        let f = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        f(self.path.clone()) + f(self.path.with_extension("db-wal"))
    }

    /// Writes one batch in one transaction: all of it, or (on a crash) none of it.
    pub fn write(&mut self, b: &Batch, batches_lost: u64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let e = sql(&path);
        let host = self.host.clone();
        let tx = self.conn.transaction().map_err(&e)?;
        {
            let mut st = tx
                .prepare_cached("INSERT INTO flows VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)")
                .map_err(&e)?;
            for f in &b.flows {
                st.execute(params![
                    host, f.ts_start as i64, f.ts_end as i64, f.iface, f.proto, addr_key(f.src).to_vec(), f.sport, addr_key(f.dst).to_vec(), f.dport,
                    f.packets as i64, f.bytes as i64, f.closed, f.drops as i64, f.last_drop, f.pid, f.comm, f.cgroup
                ])
                .map_err(&e)?;
            }
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO conns (host, ts_start, ts_end, local, lport, remote, rport, state, bytes_in, bytes_out, retrans, pid, comm, cgroup, \
                     closed, srtt_us, min_rtt_us, reset_by) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)",
                )
                .map_err(&e)?;
            for c in &b.conns {
                st.execute(params![
                    host, c.ts_start as i64, c.ts_end as i64, addr_key(c.local).to_vec(), c.lport, addr_key(c.remote).to_vec(), c.rport, c.state,
                    c.bytes_in as i64, c.bytes_out as i64, c.retrans as i64, c.pid, c.comm, c.cgroup, c.closed, c.srtt_us, c.min_rtt_us, c.reset_by
                ])
                .map_err(&e)?;
            }
            insert_latency(&tx, &host, &b.latency).map_err(&e)?;
            insert_http(&tx, &host, &b.http).map_err(&e)?;
            let mut st = tx.prepare_cached("INSERT INTO alerts VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)").map_err(&e)?;
            for a in &b.alerts {
                st.execute(params![
                    host, a.ts as i64, a.alert_id as i64, a.detector, a.sid, a.msg, a.proto, a.src.map(|x| addr_key(x).to_vec()), a.sport,
                    a.dst.map(|x| addr_key(x).to_vec()), a.dport, addr_key(a.subject).to_vec(), a.offender.map(|x| addr_key(x).to_vec()), a.pcap, a.eve.to_string()
                ])
                .map_err(&e)?;
            }
            let mut st = tx.prepare_cached("INSERT INTO mitigations VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)").map_err(&e)?;
            for m in &b.mitigations {
                let r = AddrRange::parse(&m.target).unwrap_or(AddrRange { lo: [0; 16], hi: [0; 16] });
                st.execute(params![
                    host, m.ts as i64, m.alert_id as i64, m.kind, m.target, r.lo.to_vec(), r.hi.to_vec(), m.ttl_s as i64, m.reason,
                    serde_json::to_string(&m.enforced).unwrap_or_default()
                ])
                .map_err(&e)?;
            }
            // Counts add up: two batches may carry parts of one minute.
            let mut st = tx
                .prepare_cached("INSERT INTO counts VALUES (?1, 60, ?2, ?3, ?4, ?5) ON CONFLICT (host, res, start, kind, key) DO UPDATE SET value = value + excluded.value")
                .map_err(&e)?;
            for c in &b.counts {
                st.execute(params![host, c.minute as i64, c.kind, c.key, c.value as i64]).map_err(&e)?;
            }
            let flows_span = b.flows.iter().map(|f| f.ts_end.saturating_sub(f.ts_start)).max().unwrap_or(0).min(i64::MAX as u64) as i64;
            let conns_span = b.conns.iter().map(|c| c.ts_end.saturating_sub(c.ts_start)).max().unwrap_or(0).min(i64::MAX as u64) as i64;
            for (i, span) in [flows_span, conns_span].into_iter().enumerate() {
                if span > self.spans[i] {
                    tx.execute("INSERT OR REPLACE INTO rxray_meta VALUES (?1, ?2)", params![SPAN_KEYS[i], span.to_string()]).map_err(&e)?;
                }
            }
            tx.execute("INSERT INTO batches VALUES (?1, ?2, ?3, ?4, ?5)", params![host, b.ts as i64, b.rows() as i64, b.events_lost as i64, batches_lost as i64])
                .map_err(&e)?;
        }
        tx.commit().map_err(&e)?;
        for f in &b.flows {
            self.spans[0] = self.spans[0].max(f.ts_end.saturating_sub(f.ts_start).min(i64::MAX as u64) as i64);
        }
        for c in &b.conns {
            self.spans[1] = self.spans[1].max(c.ts_end.saturating_sub(c.ts_start).min(i64::MAX as u64) as i64);
        }
        Ok(())
    }

    /// One retention pass at `now_ns`.
    pub fn retain(&mut self, now_ns: u64, r: Retention) -> Result<RetentionReport, StoreError> {
        let path = self.path.clone();
        let e = sql(&path);
        let mut rep = RetentionReport::default();
        let cutoff = now_ns.saturating_sub(r.max_age_s.saturating_mul(1_000_000_000)) as i64;
        let cutoff_s = cutoff / 1_000_000_000;
        let tx = self.conn.transaction().map_err(&e)?;
        // Flows and connections: through the ts_start index (a row that ends before the cut started before it).
        for table in ["flows", "conns"] {
            rep.rows_aged_out += tx.execute(&format!("DELETE FROM {table} WHERE ts_start < ?1 AND ts_end < ?1"), params![cutoff]).map_err(&e)? as u64;
        }
        for table in ["alerts", "mitigations", "batches"] {
            rep.rows_aged_out += tx.execute(&format!("DELETE FROM {table} WHERE ts < ?1"), params![cutoff]).map_err(&e)? as u64;
        }
        for table in ["counts", "latency", "http"] {
            rep.rows_aged_out += tx.execute(&format!("DELETE FROM {table} WHERE start < ?1"), params![cutoff_s]).map_err(&e)? as u64;
        }
        // Minutes older than the roll-up age become hours: the sums are exact.
        let roll = (now_ns / 1_000_000_000).saturating_sub(r.rollup_after_s) as i64;
        tx.execute(
            "INSERT INTO counts SELECT host, 3600, start - start % 3600, kind, key, sum(value) FROM counts WHERE res = 60 AND start < ?1 - ?1 % 3600 \
             GROUP BY host, start - start % 3600, kind, key ON CONFLICT (host, res, start, kind, key) DO UPDATE SET value = value + excluded.value",
            params![roll],
        )
        .map_err(&e)?;
        rep.minutes_rolled_up = tx.execute("DELETE FROM counts WHERE res = 60 AND start < ?1 - ?1 % 3600", params![roll]).map_err(&e)? as u64;
        rep.minutes_rolled_up += rollup::latency(&tx, roll).map_err(&e)?;
        rep.minutes_rolled_up += rollup::http(&tx, roll).map_err(&e)?;
        tx.commit().map_err(&e)?;
        // Size: the oldest flow rows go first (they are most of the store). The excess is estimated
        // from the pages in use, deleted in one statement, and the freed pages given back to the
        // file system (incremental auto-vacuum): no whole-file rewrite. At most three rounds.
        let page = |c: &Connection, p: &str| c.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as u64;
        for _ in 0..3 {
            let used = (page(&self.conn, "page_count") - page(&self.conn, "freelist_count").min(page(&self.conn, "page_count"))) * page(&self.conn, "page_size");
            if used <= r.max_bytes {
                break;
            }
            let rows: u64 = self.conn.query_row("SELECT count(*) FROM flows", [], |r| r.get::<_, i64>(0)).map_err(&e)?.max(0) as u64;
            if rows == 0 {
                break;
            }
            let n = (rows as f64 * (used - r.max_bytes) as f64 / used as f64 * 1.1).ceil() as u64 + 1;
            rep.rows_cut_for_size += self
                .conn
                .execute("DELETE FROM flows WHERE rowid IN (SELECT rowid FROM flows ORDER BY ts_start LIMIT ?1)", params![n.min(i64::MAX as u64) as i64])
                .map_err(&e)? as u64;
            // Stepped to the end: each step of incremental_vacuum frees pages.
            {
                let mut st = self.conn.prepare("PRAGMA incremental_vacuum").map_err(&e)?;
                let mut rows = st.query([]).map_err(&e)?;
                while rows.next().map_err(&e)?.is_some() {}
            }
            self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(&e)?;
        }
        Ok(rep)
    }

    /// The counts of `kind` (both resolutions) in `[from_s, until_s)`, summed per key.
    pub fn count_sums(&self, kind: &str, from_s: u64, until_s: u64) -> Result<Vec<(String, u64)>, StoreError> {
        let e = sql(&self.path);
        let mut st = self
            .conn
            .prepare("SELECT key, sum(value) FROM counts WHERE kind = ?1 AND start >= ?2 AND start < ?3 GROUP BY key ORDER BY key")
            .map_err(&e)?;
        let rows = st.query_map(params![kind, from_s as i64, until_s as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))).map_err(&e)?;
        rows.collect::<Result<_, _>>().map_err(&e)
    }

    /// Rows at each resolution (60: minutes, 3600: hours), for the roll-up's report and tests.
    pub fn count_rows(&self, res: u64) -> Result<u64, StoreError> {
        let e = sql(&self.path);
        self.conn.query_row("SELECT count(*) FROM counts WHERE res = ?1", params![res as i64], |r| r.get::<_, i64>(0)).map(|n| n as u64).map_err(&e)
    }
}

mod query;
mod rollup;
pub use query::{Completeness, Query, Records};

fn insert_latency(tx: &rusqlite::Transaction, host: &str, rows: &[LatencyRow]) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached("INSERT INTO latency VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)")?;
    for l in rows {
        st.execute(params![
            host, l.res as i64, l.start as i64, l.stage, l.pid, l.comm, l.cgroup, l.remote.map(|a| addr_key(a).to_vec()), l.rport,
            l.hist.count as i64, l.hist.sum_ns as i64, l.hist.max_ns as i64, buckets_blob(&l.hist)
        ])?;
    }
    Ok(())
}

fn insert_http(tx: &rusqlite::Transaction, host: &str, rows: &[HttpRow]) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT INTO http (host, res, start, server, port, endpoint, requests, client_errors, server_errors, unanswered, request_bytes, response_bytes, \
         count, sum_ns, max_ns, buckets, client, statuses) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)",
    )?;
    for h in rows {
        st.execute(params![
            host, h.res as i64, h.start as i64, h.server.map(|a| addr_key(a).to_vec()), h.port, h.endpoint, h.requests as i64, h.client_errors as i64,
            h.server_errors as i64, h.unanswered as i64, h.request_bytes as i64, h.response_bytes as i64, h.latency.count as i64,
            h.latency.sum_ns as i64, h.latency.max_ns as i64, buckets_blob(&h.latency), h.client.map(|a| addr_key(a).to_vec()), statuses_json(&h.statuses)
        ])?;
    }
    Ok(())
}

/// Status counts as stored: a JSON object of code to count (`{"200":3,"404":1}`).
pub(crate) fn statuses_json(m: &std::collections::BTreeMap<u16, u64>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}

/// Status counts back (a value that does not parse counts as none).
pub(crate) fn statuses_of(s: &str) -> std::collections::BTreeMap<u16, u64> {
    serde_json::from_str(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_byte_ranges() {
        let r = AddrRange::parse("198.18.0.0/15").unwrap();
        assert!(r.contains("198.19.255.255".parse().unwrap()) && r.contains("198.18.0.0".parse().unwrap()));
        assert!(!r.contains("198.20.0.0".parse().unwrap()) && !r.contains("2001:2::1".parse().unwrap()));
        let one = AddrRange::parse("2001:2::7").unwrap();
        assert!(one.contains("2001:2::7".parse().unwrap()) && !one.contains("2001:2::8".parse().unwrap()));
        assert!(AddrRange::parse("0.0.0.0/0").unwrap().contains("1.2.3.4".parse().unwrap()));
        assert!(AddrRange::parse("10.0.0.0/33").is_err() && AddrRange::parse("nope").is_err());
        for a in ["198.18.0.1", "2001:2::1"] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(addr_of(&addr_key(ip)), Some(ip));
        }
    }
}
