//! API calls per endpoint: `rxray analyze --http` over captures and `rxray http` live. Both feed TCP
//! segments to the engine's `HttpTracker`; this module wires sources to it and renders its snapshots.
use anyhow::{anyhow, Context, Result};
use rxray_engine::http::{HttpConfig, HttpSnapshot, HttpTracker, TcpSegment, DEFAULT_PORTS, DEFAULT_TLS_PORTS};
use crate::records::http::{HttpAnalyzeDoc, HttpLiveSnapshot};
use crate::sinks::{JsonLines, Sink};
use rxray_io::CaptureReader;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::PathBuf;

/// Options shared by `analyze --http` and `rxray http`.
#[derive(clap::Args, Debug, Clone)]
pub struct HttpOpts {
    /// Server ports whose traffic is HTTP (comma-separated or repeated).
    #[arg(long = "port", value_delimiter = ',', default_values_t = DEFAULT_PORTS)]
    pub ports: Vec<u16>,
    /// Server ports whose traffic is TLS: the handshake's facts (SNI, ALPN, version, JA4) are
    /// read, the encrypted bytes counted.
    #[arg(long = "tls-port", value_delimiter = ',', default_values_t = DEFAULT_TLS_PORTS)]
    pub tls_ports: Vec<u16>,
    /// Endpoints kept before the rest go to the `other` bucket.
    #[arg(long, default_value_t = 1000)]
    pub max_endpoints: usize,
    /// The API's OpenAPI 3.0 or 3.1 document (JSON or YAML): endpoints take its path templates, and
    /// where the traffic and the document disagree is reported as findings (docs/openapi.md).
    #[arg(long, value_name = "FILE")]
    pub openapi: Option<PathBuf>,
}

impl HttpOpts {
    pub fn config(&self) -> HttpConfig {
        HttpConfig { max_endpoints: self.max_endpoints, ..HttpConfig::default() }
    }

    /// The tracker, with the OpenAPI document when one is given. A broken document is an error
    /// naming its place (file, JSON pointer, line), and nothing starts.
    /// Every watched port: the HTTP ones, then the TLS ones not among them.
    pub fn all_ports(&self) -> Vec<u16> {
        let mut v = self.ports.clone();
        v.extend(self.tls_ports.iter().filter(|p| !self.ports.contains(p)));
        v
    }

    pub fn tracker(&self) -> Result<HttpTracker> {
        let t = HttpTracker::new(self.config()).with_tls_ports(&self.tls_ports);
        Ok(match self.spec()? {
            None => t,
            Some(spec) => t.with_openapi(spec),
        })
    }

    /// The OpenAPI document, when one is given (a broken one is an error naming its place).
    pub fn spec(&self) -> Result<Option<std::sync::Arc<rxray_openapi::Spec>>> {
        let Some(p) = &self.openapi else { return Ok(None) };
        let spec = rxray_openapi::Spec::load(p, rxray_openapi::DEFAULT_MAX_SPEC_BYTES).map_err(|e| anyhow!("{e}"))?;
        Ok(Some(std::sync::Arc::new(spec)))
    }
}

/// Feeds every TCP segment of a capture on the watched ports to the tracker.
fn read_capture<R: Read>(rd: Result<CaptureReader<R>, rxray_io::ReadError>, t: &mut HttpTracker, ports: &[u16]) -> Result<(), String> {
    let mut rd = rd.map_err(|e| e.to_string())?;
    while let Some(rec) = rd.next_record() {
        let rec = rec.map_err(|e| e.to_string())?;
        if let Some(seg) = TcpSegment::of_frame(rec.ts_ns, rec.data, rec.linktype, rec.orig_len, ports) {
            t.segment(&seg);
        }
    }
    Ok(())
}

/// Reads the files into one report; returns it with the errors met (one per damaged file, naming it
/// and the byte offset). Segments read before an error are kept.
pub fn analyze_files(files: &[PathBuf], o: &HttpOpts) -> Result<(HttpSnapshot, Vec<String>)> {
    let mut t = o.tracker()?;
    let mut errors = Vec::new();
    for f in files {
        let shown = f.display().to_string();
        let res = if shown == "-" {
            read_capture(CaptureReader::new(std::io::stdin().lock()), &mut t, &o.all_ports())
        } else {
            match std::fs::File::open(f) {
                Ok(file) => read_capture(CaptureReader::open(file), &mut t, &o.all_ports()),
                Err(e) => Err(format!("cannot open: {e}")),
            }
        };
        if let Err(e) = res {
            errors.push(format!("{shown}: {e}"));
        }
    }
    t.finish();
    Ok((t.snapshot(), errors))
}

/// `rxray analyze FILE... --http [--json]`.
pub fn analyze(files: &[PathBuf], o: &HttpOpts, json: bool) -> Result<()> {
    let (snap, errors) = analyze_files(files, o)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        let doc = HttpAnalyzeDoc { files: files.iter().map(|f| f.display().to_string()).collect(), ports: &o.ports, tls_ports: &o.tls_ports, errors: &errors, http: &snap };
        JsonLines::new(&mut out).write(&doc).context("writing JSON")?;
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

/// HTTP/2 and gRPC counts after an endpoint's statuses.
fn h2_extra(e: &rxray_engine::http::endpoints::EndpointSnapshot) -> String {
    let mut o = String::new();
    if e.resets > 0 {
        let _ = write!(o, " resets:{}", e.resets);
    }
    if e.goaways > 0 {
        let _ = write!(o, " goaways:{}", e.goaways);
    }
    if let Some(g) = &e.grpc {
        let _ = write!(o, " grpc-status");
        for (k, v) in &g.statuses {
            let _ = write!(o, " {k}:{v}");
        }
        let _ = write!(o, " messages:{}/{}", g.request_messages, g.response_messages);
    }
    o
}

/// The TLS connections, one line each.
fn tls_table(o: &mut String, t: &rxray_engine::http::TlsSnapshot) {
    let _ = writeln!(o, "
TLS: {} connections ({} older ones not kept)", t.connections.len(), t.connections_dropped);
    for c in &t.connections {
        let ip = |a: Option<std::net::IpAddr>| a.map_or("-".into(), |a| a.to_string());
        let _ = writeln!(
            o,
            "  {}:{} -> {}:{}  sni={} alpn={}/{} version={} ja4={} handshake_ms={} encrypted={}/{}{}",
            ip(c.client),
            c.client_port,
            ip(c.server),
            c.server_port,
            c.sni.as_deref().unwrap_or("-"),
            c.alpn_offered.join(","),
            c.alpn.as_deref().unwrap_or("-"),
            c.version.as_deref().unwrap_or("-"),
            c.ja4.as_deref().unwrap_or("-"),
            c.handshake_ms.map_or("-".into(), |m| format!("{m:.3}")),
            c.client_encrypted_bytes,
            c.server_encrypted_bytes,
            c.error.as_ref().map_or(String::new(), |e| format!("  ({e})"))
        );
    }
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
        "{:<8} {:<7} {:<40} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12} {:>7}  statuses",
        "PROTO",
        "METHOD", "ENDPOINT", "REQUESTS", "P50_MS", "P95_MS", "P99_MS", "MAX_MS", "REQ_BYTES", "RESP_BYTES", "CLIENTS"
    );
    let n = if top == 0 { s.endpoints.len() } else { top.min(s.endpoints.len()) };
    for e in &s.endpoints[..n] {
        let l = |f: fn(&rxray_engine::http::endpoints::LatencyMs) -> f64| e.latency_ms.as_ref().map_or("-".to_string(), |x| format!("{:.3}", f(x)));
        let _ = writeln!(
            o,
            "{:<8} {:<7} {:<40} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12} {:>7}  {}{}{}",
            e.protocol,
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
            if e.unanswered > 0 { format!(" unanswered:{}", e.unanswered) } else { String::new() },
            h2_extra(e)
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
    if t.h2_connections > 0 {
        let _ = writeln!(o, "HTTP/2: {} connections, {} streams reset, {} GOAWAYs", t.h2_connections, t.resets, t.goaways);
    }
    let c = &s.completeness;
    if c.h2_not_decodable + c.h2_decoding_lost > 0 {
        let _ = writeln!(o, "HTTP/2 not read: {} connections picked up mid-way (no HPACK state), {} lost part way", c.h2_not_decodable, c.h2_decoding_lost);
    }
    if let Some(tls) = s.tls.as_ref().filter(|t| !t.connections.is_empty()) {
        tls_table(&mut o, tls);
    }
    let _ = writeln!(
        o,
        "completeness: {} bytes not copied ({} bodies truncated), {} gaps ({} bytes, {} from full buffers), {} messages cut, {} request gaps, {} parse errors, {} streams dropped, {} idle-expired, {} events lost",
        c.bytes_not_copied, c.bodies_truncated, c.gaps, c.gap_bytes, c.buffer_overflow_gaps, c.messages_cut, c.request_gaps, c.parse_errors, c.streams_dropped, c.streams_idle_expired, c.events_lost
    );
    if let (Some(f), Some(oa)) = (&s.findings, &s.openapi) {
        let k = &oa.counters;
        let _ = writeln!(
            o,
            "\nOpenAPI {}: {} calls checked, {} matched an operation, {} bodies checked, {} not checked (truncated), {} findings{}",
            oa.spec,
            k.exchanges,
            k.matched,
            k.bodies_checked,
            k.not_checked,
            f.len(),
            if k.overflow > 0 { format!(" ({} more not kept: the table is full)", k.overflow) } else { String::new() }
        );
        if !f.is_empty() {
            let _ = writeln!(o, "{:<20} {:<7} {:<32} {:>6} {:>7}  EXAMPLE / DETAIL", "KIND", "METHOD", "TEMPLATE OR PATH", "STATUS", "COUNT");
        }
        for x in f {
            let _ = writeln!(
                o,
                "{:<20} {:<7} {:<32} {:>6} {:>7}  {} | {}",
                x.kind.as_str(),
                x.method,
                x.template.as_deref().unwrap_or(&x.path),
                x.status.map_or("-".into(), |s| s.to_string()),
                x.count,
                x.example.request_line,
                x.detail.message
            );
        }
    }
    o
}

/// `rxray http`: the endpoint table live.
#[derive(clap::Args, Debug)]
pub struct HttpArgs {
    /// Interface to watch (repeatable). Default: every interface that is up, except loopback.
    #[arg(short = 'i', long = "interface")]
    pub ifaces: Vec<String>,
    #[command(flatten)]
    pub opts: HttpOpts,
    /// One JSON Lines snapshot per interval (and a final one after draining), instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Seconds between snapshots.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Body bytes copied per message; the rest is counted and marked not copied.
    #[arg(long, default_value_t = 65536)]
    pub body_max: u32,
    /// Rows in the table (0: all).
    #[arg(short = 'n', long = "top", default_value_t = 20)]
    pub top: usize,
    /// XDP attach mode.
    #[arg(long = "xdp-mode", value_enum, default_value = "auto")]
    pub xdp_mode: crate::XdpModeArg,
    /// HTTP ring size in bytes (power of two).
    #[arg(long = "ring-size", default_value_t = 16 << 20)]
    pub ring_size: u32,
    /// Attach even when an agent runs here (docs/agent.md, "Joining the agent").
    #[arg(long)]
    pub standalone: bool,
}

/// Joins the agent of this namespace when it runs the HTTP view on these interfaces.
fn join_agent(a: &HttpArgs) -> Result<Option<crate::join::client::Joined>> {
    let req = crate::join::JoinRequest {
        interfaces: a.ifaces.clone(),
        json: a.json,
        ports: a.opts.ports.clone(),
        max_endpoints: Some(a.opts.max_endpoints),
        interval: Some(a.interval),
        top: Some(a.top),
        ..Default::default()
    };
    if a.opts.openapi.is_some() {
        // The agent reads no document for a client: it attaches itself (or says who owns the interface).
        return Ok(None);
    }
    crate::join::client::try_join("http", req)
}

fn mono_ns() -> u64 {
    rxray_kernel::monotonic_ns()
}

/// One live snapshot as `rxray http` prints it (a JSON line, or the table redrawn); the agent
/// renders a joined `rxray http`'s snapshots with this same function.
pub fn render_snapshot(out: &mut impl Write, t: &mut HttpTracker, kernel: rxray_kernel::http::HttpKernelTotals, ts_ns: u64, last: bool, json: bool, top: usize) -> Result<()> {
    t.completeness_mut().events_lost = kernel.records_lost;
    let snap = t.snapshot();
    if json {
        JsonLines::new(&mut *out).write(&HttpLiveSnapshot { ts_ns, last, http: &snap, kernel })?;
    } else {
        // A joined client's terminal is redrawn by these codes (a local one by LiveText, in `run`).
        out.write_all(b"\x1b[H\x1b[2J")?;
        out.write_all(text_of(&snap, &kernel, top).as_bytes())?;
    }
    Ok(())
}

/// The text table with the kernel's HTTP counters under it.
fn text_of(snap: &HttpSnapshot, kernel: &rxray_kernel::http::HttpKernelTotals, top: usize) -> String {
    let mut s = table(snap, top);
    let _ = writeln!(
        s,
        "kernel: {} segments, {} records, {} bytes copied, {} not copied (over the body limit {}, ring full {}, past 64 KiB {})",
        kernel.segments, kernel.records, kernel.bytes_copied, kernel.bytes_not_copied(), kernel.bytes_over_budget, kernel.bytes_lost, kernel.bytes_unwalked
    );
    s
}

pub fn run(a: HttpArgs) -> Result<()> {
    use rxray_kernel::IngressOptions;
    let ports = a.opts.all_ports();
    if a.opts.ports.is_empty() || ports.len() > rxray_kernel::http::MAX_PORTS {
        anyhow::bail!("--port takes 1 to {} ports, --tls-port included", rxray_kernel::http::MAX_PORTS);
    }
    if !(a.interval > 0.0 && a.interval.is_finite()) {
        anyhow::bail!("--interval must be a positive number of seconds");
    }
    for i in &a.ifaces {
        if rxray_kernel::ifindex_of(i).is_ok_and(rxray_kernel::firewall::installed) {
            anyhow::bail!("{i} runs rxray's firewall program, which has no HTTP copies; `rxray http` needs its own program there");
        }
    }
    // The document is read (and any fault reported) before anything is attached.
    let mut t = a.opts.tracker()?;
    let stop = crate::session::stop_flag()?;
    if !a.standalone {
        crate::session::require_root()?;
        if let Some(j) = join_agent(&a)? {
            return crate::join::client::run_snapshots(j, &stop, "watching HTTP on", None);
        }
    }
    let opts = IngressOptions { events: false, flows: false, ring_bytes: 4096, http_ring_bytes: a.ring_size, ..Default::default() };
    let (mut ing, ()) = crate::session::attach_then(&a.ifaces, a.xdp_mode, opts, "http", "watching HTTP on", |ing| {
        ing.enable_http(&ports, a.body_max).context("turning on HTTP copies (TC egress)")
    })?;
    let mut ring = ing.take_http_ring().context("the HTTP ring is missing from the object")?;
    let clock = rxray_kernel::Clock::now();
    let every = std::time::Duration::from_secs_f64(a.interval);
    let mut next = std::time::Instant::now() + every;
    let mut bad = 0u64;
    let mut out = std::io::stdout().lock();
    // On a terminal the table is redrawn in place (rxray-tui's LiveText); elsewhere one table per interval.
    let mut live = if !a.json && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        Some(rxray_tui::term::LiveText::new().context("setting up the terminal")?)
    } else {
        None
    };
    let fd = {
        use std::os::fd::AsRawFd;
        ring.as_raw_fd()
    };
    let mut emit = |t: &mut HttpTracker, ing: &rxray_kernel::Ingress, last: bool, out: &mut std::io::StdoutLock<'_>| -> Result<()> {
        match live.as_mut().filter(|_| !last) {
            Some(l) => {
                let kernel = ing.http_totals()?;
                t.completeness_mut().events_lost = kernel.records_lost;
                l.show(&text_of(&t.snapshot(), &kernel, a.top))?;
            }
            None => render_snapshot(&mut *out, t, ing.http_totals()?, clock.to_unix_ns(mono_ns()), last, a.json, a.top)?,
        }
        out.flush()?;
        Ok(())
    };
    crate::session::pump(fd, &stop, || {
        let mut got = 0;
        while got < crate::session::BATCH {
            let Some(item) = ring.next() else { break };
            got += 1;
            match rxray_kernel::http::segment_of(&item, &ports) {
                Some((_, seg)) => t.segment(&seg),
                None => bad += 1,
            }
        }
        if std::time::Instant::now() >= next {
            next += every;
            t.advance(mono_ns());
            emit(&mut t, &ing, false, &mut out)?;
        }
        Ok(crate::session::Pass { read: got, done: false })
    })?;
    t.finish();
    emit(&mut t, &ing, true, &mut out)?;
    if bad > 0 {
        eprintln!("rxray: {bad} HTTP ring records made no sense and were skipped");
    }
    drop(ing);
    Ok(())
}
