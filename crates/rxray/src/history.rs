//! `rxray history` (the store's records, filtered) and `rxray investigate ADDR` (everything known
//! about one address around an incident, as one timeline: from the store, or offline from a
//! directory of captures through the same engine).
use crate::alerts;
use anyhow::{anyhow, bail, Context, Result};
use rxray_engine::event::Packet;
use rxray_io::CaptureReader;
use rxray_store::{AddrRange, AlertRow, ConnRow, FlowRow, HttpRow, LatencyRow, Query, Records, Store};
use rxray_wire::dissect::empty_packet;
use rxray_wire::dissect_into;
use crate::records::history::{HistoryOut, Investigation, TimelineEntry, Window};
use crate::sinks::{JsonLines, Sink};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// The store's directory.
    #[arg(long, default_value = rxray_agent::config::DEFAULT_STORE)]
    pub store: PathBuf,
    /// From: an RFC 3339 time (2026-12-06T04:00:00Z), Unix seconds, or an age (10m, 2h, 1d).
    #[arg(long)]
    pub since: Option<String>,
    /// Until (same forms); default now.
    #[arg(long)]
    pub until: Option<String>,
    /// Only records of this address or prefix.
    #[arg(long)]
    pub addr: Option<String>,
    #[arg(long)]
    pub port: Option<u16>,
    /// tcp, udp, icmp, icmpv6, or a number.
    #[arg(long)]
    pub proto: Option<String>,
    /// Only alerts (and their mitigations) of this detector.
    #[arg(long)]
    pub detector: Option<String>,
    /// Only the HTTP view's per-minute roll-ups of this endpoint (`METHOD /template`, e.g.
    /// `GET /users/{id}`); with --addr, only the calls that address made or answered.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// At most this many records of each kind (the newest).
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct InvestigateArgs {
    /// The address (or prefix) under investigation.
    pub addr: String,
    /// The incident's time (RFC 3339, Unix seconds, or an age like 5m); the window is centred on
    /// it. Without it, the window ends now.
    #[arg(long)]
    pub around: Option<String>,
    /// The window's length (e.g. 10m, 1h).
    #[arg(long, default_value = "10m")]
    pub window: String,
    /// The store's directory.
    #[arg(long, default_value = rxray_agent::config::DEFAULT_STORE)]
    pub store: PathBuf,
    /// Offline: investigate over every pcap/pcapng file in this directory instead of the store.
    #[arg(long, value_name = "DIR")]
    pub captures: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// A time argument: RFC 3339, Unix seconds, or an age before now.
fn parse_time(s: &str, what: &str) -> Result<u64> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return secs.checked_mul(1_000_000_000).ok_or_else(|| anyhow!("{what} {s:?}: too far in the future"));
    }
    if let Ok(d) = humantime::parse_duration(t) {
        return Ok(now_ns().saturating_sub(d.as_nanos().min(u64::MAX as u128) as u64));
    }
    let at = humantime::parse_rfc3339_weak(t).map_err(|e| anyhow!("{what} {s:?}: not a time ({e}); use 2026-12-06T04:00:00Z, Unix seconds, or an age like 10m"))?;
    Ok(at.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0))
}

fn parse_proto(s: &str) -> Result<u8> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "icmp6" | "icmpv6" => 58,
        n => n.parse().map_err(|_| anyhow!("--proto {s:?}: tcp, udp, icmp, icmpv6 or a number"))?,
    })
}

fn ts(ns: u64) -> String {
    humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(ns)).to_string()
}

fn endpoint(a: std::net::IpAddr, port: u16) -> String {
    if a.is_ipv6() {
        format!("[{a}]:{port}")
    } else {
        format!("{a}:{port}")
    }
}

fn flow_line(f: &FlowRow) -> String {
    format!(
        "{} flow {} proto {} {} > {}: {} packets, {} bytes{}{}",
        ts(f.ts_start),
        f.iface,
        f.proto,
        endpoint(f.src, f.sport),
        endpoint(f.dst, f.dport),
        f.packets,
        f.bytes,
        if f.closed { " (closed)" } else { "" },
        process(f.pid, f.comm.as_deref(), f.cgroup.as_deref())
    )
}

fn alert_line(a: &AlertRow) -> String {
    format!(
        "{} alert {} (sid {}) {} -> {}: {}{}",
        ts(a.ts),
        a.detector,
        a.sid,
        a.src.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
        a.dst.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
        a.msg,
        a.pcap.as_ref().map(|p| format!(" [pcap {p}]")).unwrap_or_default()
    )
}

/// `[pid 42 nginx cgroup /system.slice/nginx.service]`, or nothing when no process is known.
fn process(pid: Option<u32>, comm: Option<&str>, cgroup: Option<&str>) -> String {
    match (pid, comm, cgroup) {
        (None, None, None) => String::new(),
        _ => format!(
            " [pid {} {}{}]",
            pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            comm.unwrap_or("-"),
            cgroup.map(|c| format!(" cgroup {c}")).unwrap_or_default()
        ),
    }
}

fn conn_line(c: &ConnRow) -> String {
    let rtt = |us: u32| if us == 0 { "-".to_string() } else { format!("{:.3} ms", us as f64 / 1000.0) };
    format!(
        "{} conn {} > {} {}{}: {} bytes in, {} out, {} retransmits, srtt {}, min rtt {}{}{}",
        ts(c.ts_start),
        endpoint(c.remote, c.rport),
        endpoint(c.local, c.lport),
        c.state,
        if c.closed { " (closed)" } else { "" },
        c.bytes_in,
        c.bytes_out,
        c.retrans,
        rtt(c.srtt_us),
        rtt(c.min_rtt_us),
        c.reset_by.as_ref().map(|w| format!(", reset by {w}")).unwrap_or_default(),
        process(c.pid, c.comm.as_deref(), c.cgroup.as_deref())
    )
}

/// p50/p95/p99 and max of a histogram in ms.
fn percentiles(h: &rxray_store::Histogram) -> String {
    let ms = |v: Option<u64>| v.map(|x| format!("{:.3}", x as f64 / 1e6)).unwrap_or_else(|| "-".into());
    format!("p50 {} p95 {} p99 {} max {} ms", ms(h.percentile(50.0)), ms(h.percentile(95.0)), ms(h.percentile(99.0)), ms((h.count > 0).then_some(h.max_ns)))
}

fn period(start: u64, res: u64) -> String {
    format!("{} {}", ts(start * 1_000_000_000), if res >= 3600 { "hour" } else { "minute" })
}

fn latency_line(l: &LatencyRow) -> String {
    format!(
        "{} latency {}{}: {} packets, {}{}",
        period(l.start, l.res),
        l.stage,
        l.remote.map(|a| format!(" from {}", endpoint(a, l.rport.unwrap_or(0)))).unwrap_or_default(),
        l.hist.count,
        percentiles(&l.hist),
        process(l.pid, l.comm.as_deref(), l.cgroup.as_deref())
    )
}

/// `GET /users/{id} 198.18.0.1 > 198.18.0.2:8080: 3 requests, 1 4xx, 0 5xx, 0 unanswered (33.3%
/// errors), statuses 200x2 404x1, p50 ...`; a row with no client is the minute's `other` bucket
/// (or a schema-2 row, per endpoint only).
fn http_line(h: &HttpRow) -> String {
    let who = match (h.client, h.server) {
        (Some(c), Some(s)) => format!(" {c} > {}", endpoint(s, h.port.unwrap_or(0))),
        (Some(c), None) => format!(" {c}"),
        (None, Some(s)) => format!(" (clients not kept) > {}", endpoint(s, h.port.unwrap_or(0))),
        (None, None) => " (addresses not kept)".to_string(),
    };
    let statuses: Vec<String> = h.statuses.iter().map(|(c, n)| format!("{c}x{n}")).collect();
    format!(
        "{} http {}{who}: {} requests, {} 4xx, {} 5xx, {} unanswered ({:.1}% errors), statuses {}, {}",
        period(h.start, h.res),
        h.endpoint,
        h.requests,
        h.client_errors,
        h.server_errors,
        h.unanswered,
        100.0 * h.error_rate(),
        if statuses.is_empty() { "-".to_string() } else { statuses.join(" ") },
        percentiles(&h.latency)
    )
}

/// The records as one time-ordered timeline (text lines).
fn timeline(r: &Records) -> Vec<(u64, String)> {
    let mut v: Vec<(u64, String)> = Vec::new();
    v.extend(r.flows.iter().map(|f| (f.ts_start, flow_line(f))));
    v.extend(r.conns.iter().map(|c| (c.ts_start, conn_line(c))));
    v.extend(r.latency.iter().map(|l| (l.start * 1_000_000_000, latency_line(l))));
    v.extend(r.http.iter().map(|h| (h.start * 1_000_000_000, http_line(h))));
    v.extend(r.alerts.iter().map(|a| (a.ts, alert_line(a))));
    v.extend(r.mitigations.iter().map(|m| {
        (m.ts, format!("{} mitigation {} {} for {} s (alert {}): {} {:?}", ts(m.ts), m.kind, m.target, m.ttl_s, m.alert_id, m.reason, m.enforced))
    }));
    v.extend(r.counts.iter().map(|c| (c.minute * 1_000_000_000, format!("{} count {} {}: {}", ts(c.minute * 1_000_000_000), c.kind, c.key, c.value))));
    v.sort_by_key(|(t, _)| *t);
    v
}

fn completeness_line(r: &Records) -> String {
    let c = r.completeness;
    format!(
        "completeness: {} batches in the window, {} events lost, {} batches lost{}",
        c.batches,
        c.events_lost,
        c.batches_lost,
        if r.truncated { "; some kinds had more records than --limit (the oldest are left out)" } else { "" }
    )
}

pub fn history(a: HistoryArgs) -> Result<()> {
    let until = a.until.as_deref().map(|s| parse_time(s, "--until")).transpose()?.unwrap_or_else(|| now_ns() + 1);
    let since = a.since.as_deref().map(|s| parse_time(s, "--since")).transpose()?.unwrap_or(0);
    if since >= until {
        bail!("--since must come before --until");
    }
    let q = Query {
        since,
        until,
        addr: a.addr.as_deref().map(AddrRange::parse).transpose().map_err(|e| anyhow!("--addr {e}"))?,
        port: a.port,
        proto: a.proto.as_deref().map(parse_proto).transpose()?,
        detector: a.detector.clone(),
        endpoint: a.endpoint.clone(),
        limit: a.limit,
    };
    let store = Store::open_read(&a.store)?;
    let r = store.query(&q)?;
    if a.json {
        JsonLines::new(std::io::stdout().lock()).write(&HistoryOut { records: &r, window: Window { since_ns: since, until_ns: until } })?;
        return Ok(());
    }
    for (_, l) in timeline(&r) {
        println!("{l}");
    }
    println!("{}", completeness_line(&r));
    Ok(())
}

pub fn investigate(a: InvestigateArgs) -> Result<()> {
    let range = AddrRange::parse(&a.addr).map_err(|e| anyhow!("investigate {e}"))?;
    let window = humantime::parse_duration(&a.window).map_err(|e| anyhow!("--window {:?}: {e} (e.g. 10m, 1h)", a.window))?.as_nanos().min(u64::MAX as u128) as u64;
    let (records, since, until, source) = match &a.captures {
        Some(dir) => {
            let (r, first, last) = offline(dir, &range)?;
            let (since, until) = match &a.around {
                Some(t) => {
                    let c = parse_time(t, "--around")?;
                    (c.saturating_sub(window / 2), c.saturating_add(window / 2))
                }
                None => (first, last + 1),
            };
            (clip(r, since, until), since, until, "captures")
        }
        None => {
            let (since, until) = match &a.around {
                Some(t) => {
                    let c = parse_time(t, "--around")?;
                    (c.saturating_sub(window / 2), c.saturating_add(window / 2))
                }
                None => (now_ns().saturating_sub(window), now_ns() + 1),
            };
            let store = Store::open_read(&a.store)?;
            let q = Query { since, until, addr: Some(range), limit: 100_000, ..Default::default() };
            (store.query(&q)?, since, until, "store")
        }
    };
    let recordings: Vec<String> =
        records.alerts.iter().filter_map(|al| al.pcap.clone()).collect::<BTreeSet<_>>().into_iter().filter(|p| Path::new(p).exists()).collect();
    let tl = timeline(&records);
    if a.json {
        let inv = Investigation {
            addr: a.addr.clone(),
            since_ns: since,
            until_ns: until,
            source: source.into(),
            timeline: tl.into_iter().map(|(ts_ns, line)| TimelineEntry { ts_ns, line }).collect(),
            records,
            recordings,
        };
        JsonLines::new(std::io::stdout().lock()).write(&inv)?;
        return Ok(());
    }
    println!("rxray investigate {} from {} to {} ({source})", a.addr, ts(since), ts(until.saturating_sub(1)));
    for (_, l) in &tl {
        println!("{l}");
    }
    for p in &recordings {
        println!("recording: {p}");
    }
    if source == "store" {
        println!("{}", completeness_line(&records));
    }
    Ok(())
}

/// `rxray investigate ADDR` over the store for the last `window_ns`, as text lines (for `top`'s
/// detail view); None when there is no store at `dir`.
pub(crate) fn store_timeline(dir: &Path, addr: &str, window_ns: u64) -> Option<Result<Vec<String>>> {
    if !dir.join(rxray_store::FILE).exists() {
        return None;
    }
    Some((|| {
        let range = AddrRange::parse(addr).map_err(|e| anyhow!("investigate {e}"))?;
        let (since, until) = (now_ns().saturating_sub(window_ns), now_ns() + 1);
        let store = Store::open_read(dir)?;
        let records = store.query(&Query { since, until, addr: Some(range), limit: 100_000, ..Default::default() })?;
        let mut lines = vec![format!("rxray investigate {addr} from {} to {} (store {})", ts(since), ts(until - 1), dir.display())];
        lines.extend(timeline(&records).into_iter().map(|(_, l)| l));
        lines.push(completeness_line(&records));
        Ok(lines)
    })())
}

/// Keeps the records inside `[since, until)`.
fn clip(mut r: Records, since: u64, until: u64) -> Records {
    r.flows.retain(|f| f.ts_end >= since && f.ts_start < until);
    r.alerts.retain(|a| a.ts >= since && a.ts < until);
    r.mitigations.retain(|m| m.ts >= since && m.ts < until);
    r
}

/// Offline: every capture in `dir`, in name order, through the same engine: the address's flows
/// (one per direction and 5-tuple, as the kernel counts them) and the alerts about it.
fn offline(dir: &Path, range: &AddrRange) -> Result<(Records, u64, u64)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no .pcap or .pcapng files", dir.display());
    }
    let opts = alerts::AlertOpts {
        signatures: "default".into(),
        detect_config: None,
        api_limits: None,
        threat_lists: Vec::new(),
        eve: None,
        recorder: None,
        recorder_seconds: 5.0,
        home_net: Vec::new(),
        files: Default::default(),
        suricata: Default::default(),
    };
    let mut insp = alerts::inspector(&opts, &[])?;
    let mut flows: HashMap<(String, u8, std::net::IpAddr, u16, std::net::IpAddr, u16), FlowRow> = HashMap::new();
    let mut out = Records::default();
    let mut pending = Vec::new();
    let mut pkt: Packet = empty_packet();
    let (mut first, mut last) = (u64::MAX, 0u64);
    for f in &files {
        let file = std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
        let mut rd = CaptureReader::open(file).map_err(|e| anyhow!("{}: {e}", f.display()))?;
        let fallback = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        while let Some(rec) = rd.next_record() {
            let rec = rec.map_err(|e| anyhow!("{}: {e}", f.display()))?;
            let name = rec.iface_name.unwrap_or(&fallback).to_string();
            dissect_into(&mut pkt, rec.data, rec.linktype, rec.ts_ns, rec.orig_len, &name, 256);
            first = first.min(rec.ts_ns);
            last = last.max(rec.ts_ns);
            insp.on_packet(&pkt, &mut pending);
            for al in pending.drain(..) {
                if [al.src_ip, al.dest_ip, Some(al.subject), al.offender].into_iter().flatten().any(|x| range.contains(x)) {
                    out.alerts.push(alert_row(&al));
                }
            }
            let Some(ip) = &pkt.ip else { continue };
            if !range.contains(ip.src) && !range.contains(ip.dst) {
                continue;
            }
            let (sport, dport) = match (&pkt.tcp, &pkt.udp) {
                (Some(t), _) => (t.sport, t.dport),
                (_, Some(u)) => (u.sport, u.dport),
                _ => (0, 0),
            };
            let e = flows.entry((name.clone(), ip.proto, ip.src, sport, ip.dst, dport)).or_insert_with(|| FlowRow {
                ts_start: rec.ts_ns,
                ts_end: rec.ts_ns,
                iface: name.clone(),
                proto: ip.proto,
                src: ip.src,
                sport,
                dst: ip.dst,
                dport,
                packets: 0,
                bytes: 0,
                closed: true,
                drops: 0,
                last_drop: None,
                pid: None,
                comm: None,
                cgroup: None,
            });
            e.packets += 1;
            e.bytes += rec.orig_len as u64;
            e.ts_end = rec.ts_ns;
        }
    }
    if first == u64::MAX {
        first = 0;
    }
    insp.on_tick(last + 10_000_000_000, &mut pending);
    for al in pending.drain(..) {
        if [al.src_ip, al.dest_ip, Some(al.subject), al.offender].into_iter().flatten().any(|x| range.contains(x)) {
            out.alerts.push(alert_row(&al));
        }
    }
    out.flows = flows.into_values().collect();
    out.flows.sort_by_key(|f| (f.ts_start, f.sport));
    Ok((out, first, last))
}

/// An alert as the store keeps it (its whole EVE record is the evidence).
pub(crate) fn alert_row(al: &rxray_engine::alert::Alert) -> AlertRow {
    AlertRow {
        ts: al.ts_ns,
        alert_id: al.id,
        detector: al.sig.detector.to_string(),
        sid: al.sig.sid,
        msg: al.sig.msg.to_string(),
        proto: al.proto,
        src: al.src_ip,
        sport: al.src_port,
        dst: al.dest_ip,
        dport: al.dest_port,
        subject: al.subject,
        offender: al.offender,
        pcap: al.pcap.clone(),
        eve: serde_json::to_value(al).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_three_forms_and_errors_say_which() {
        assert_eq!(parse_time("1800000000", "--since").unwrap(), 1_800_000_000 * 1_000_000_000);
        assert_eq!(parse_time("2026-12-06T04:00:00Z", "--since").unwrap(), 1_796_529_600 * 1_000_000_000);
        let ago = parse_time("10m", "--since").unwrap();
        let want = now_ns() - 600 * 1_000_000_000;
        assert!(ago.abs_diff(want) < 5_000_000_000, "{ago} vs {want}");
        let e = parse_time("yesterday-ish", "--since").unwrap_err().to_string();
        assert!(e.contains("--since") && e.contains("not a time"), "{e}");
        assert_eq!(parse_proto("UDP").unwrap(), 17);
        assert!(parse_proto("sctpx").is_err());
    }
}
