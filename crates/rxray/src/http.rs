//! API calls per endpoint: `rxray analyze --http` over captures and `rxray http` live. Both feed TCP
//! segments to the engine's `HttpTracker`; this module wires sources to it and renders its snapshots.
use anyhow::{anyhow, Context, Result};
use rxray_engine::http::{direction, HttpConfig, HttpSnapshot, HttpTracker, TcpSegment, DEFAULT_PORTS};
use rxray_io::CaptureReader;
use rxray_wire::dissect::{ip_from, tcp_segment};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::PathBuf;

/// Options shared by `analyze --http` and `rxray http`.
#[derive(clap::Args, Debug, Clone)]
pub struct HttpOpts {
    /// Server ports whose traffic is HTTP (comma-separated or repeated).
    #[arg(long = "port", value_delimiter = ',', default_values_t = DEFAULT_PORTS)]
    pub ports: Vec<u16>,
    /// Endpoints kept before the rest go to the `other` bucket.
    #[arg(long, default_value_t = 1000)]
    pub max_endpoints: usize,
}

impl HttpOpts {
    pub fn config(&self) -> HttpConfig {
        HttpConfig { max_endpoints: self.max_endpoints, ..HttpConfig::default() }
    }
}

/// Feeds every TCP segment of a capture on the watched ports to the tracker.
fn read_capture(r: impl Read, t: &mut HttpTracker, ports: &[u16]) -> Result<(), String> {
    let mut rd = CaptureReader::new(r).map_err(|e| e.to_string())?;
    while let Some(rec) = rd.next_record() {
        let rec = rec.map_err(|e| e.to_string())?;
        let Some(s) = tcp_segment(rec.data, rec.linktype, rec.orig_len) else { continue };
        let Some(dir) = direction(s.sport, s.dport, ports) else { continue };
        t.segment(&TcpSegment {
            ts_ns: rec.ts_ns,
            src: ip_from(s.ip_version, &s.src),
            sport: s.sport,
            dst: ip_from(s.ip_version, &s.dst),
            dport: s.dport,
            dir,
            seq: s.seq,
            ack: s.ack,
            flags: s.flags,
            payload: &rec.data[s.payload.clone()],
            wire_len: s.wire_payload_len,
        });
    }
    Ok(())
}

/// Reads the files into one report; returns it with the errors met (one per damaged file, naming it
/// and the byte offset). Segments read before an error are kept.
pub fn analyze_files(files: &[PathBuf], o: &HttpOpts) -> (HttpSnapshot, Vec<String>) {
    let mut t = HttpTracker::new(o.config());
    let mut errors = Vec::new();
    for f in files {
        let shown = f.display().to_string();
        let res = if shown == "-" {
            read_capture(std::io::stdin().lock(), &mut t, &o.ports)
        } else {
            match std::fs::File::open(f) {
                Ok(file) => read_capture(std::io::BufReader::with_capacity(1 << 16, file), &mut t, &o.ports),
                Err(e) => Err(format!("cannot open: {e}")),
            }
        };
        if let Err(e) = res {
            errors.push(format!("{shown}: {e}"));
        }
    }
    t.finish();
    (t.snapshot(), errors)
}

/// `rxray analyze FILE... --http [--json]`.
pub fn analyze(files: &[PathBuf], o: &HttpOpts, json: bool) -> Result<()> {
    let (snap, errors) = analyze_files(files, o);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            files: Vec<String>,
            ports: &'a [u16],
            errors: &'a [String],
            http: &'a HttpSnapshot,
        }
        let doc = Doc { files: files.iter().map(|f| f.display().to_string()).collect(), ports: &o.ports, errors: &errors, http: &snap };
        serde_json::to_writer(&mut out, &doc).context("writing JSON")?;
        writeln!(out)?;
    } else {
        out.write_all(table(&snap, 0).as_bytes())?;
    }
    out.flush()?;
    let Some((last, rest)) = errors.split_last() else { return Ok(()) };
    for e in rest {
        eprintln!("rxray: error: {e}");
    }
    Err(anyhow!("{last}"))
}

fn statuses(s: &std::collections::BTreeMap<u16, u64>) -> String {
    let mut o = String::new();
    for (k, v) in s {
        if !o.is_empty() {
            o.push(' ');
        }
        let _ = write!(o, "{k}:{v}");
    }
    if o.is_empty() {
        o.push('-');
    }
    o
}

/// The endpoint table as text (`top` rows, 0 for all), then totals and completeness.
pub fn table(s: &HttpSnapshot, top: usize) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<7} {:<40} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12} {:>7}  statuses",
        "METHOD", "ENDPOINT", "REQUESTS", "P50_MS", "P95_MS", "P99_MS", "MAX_MS", "REQ_BYTES", "RESP_BYTES", "CLIENTS"
    );
    let n = if top == 0 { s.endpoints.len() } else { top.min(s.endpoints.len()) };
    for e in &s.endpoints[..n] {
        let l = |f: fn(&rxray_engine::http::endpoints::LatencyMs) -> f64| e.latency_ms.as_ref().map_or("-".to_string(), |x| format!("{:.3}", f(x)));
        let _ = writeln!(
            o,
            "{:<7} {:<40} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12} {:>7}  {}{}",
            e.method,
            e.template,
            e.requests,
            l(|x| x.p50),
            l(|x| x.p95),
            l(|x| x.p99),
            l(|x| x.max),
            e.request_bytes,
            e.response_bytes,
            e.clients,
            statuses(&e.statuses),
            if e.unanswered > 0 { format!(" unanswered:{}", e.unanswered) } else { String::new() }
        );
    }
    if n < s.endpoints.len() {
        let _ = writeln!(o, "... {} more endpoints", s.endpoints.len() - n);
    }
    let t = &s.totals;
    let _ = writeln!(
        o,
        "\n{} requests, {} responses ({} unpaired, {} interim), {} unanswered, {} connections, {} endpoints ({} requests in other)",
        t.requests, t.responses, t.unpaired_responses, t.interim_responses, t.unanswered, t.connections, t.endpoints, t.other_requests
    );
    let c = &s.completeness;
    let _ = writeln!(
        o,
        "completeness: {} bytes not copied, {} gaps ({} bytes, {} from full buffers), {} messages cut, {} request gaps, {} parse errors, {} streams dropped, {} idle-expired, {} events lost",
        c.bytes_not_copied, c.gaps, c.gap_bytes, c.buffer_overflow_gaps, c.messages_cut, c.request_gaps, c.parse_errors, c.streams_dropped, c.streams_idle_expired, c.events_lost
    );
    o
}
