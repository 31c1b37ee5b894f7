//! `rxray analyze FILE...`: reads pcap/pcapng captures, dissects every frame as the kernel would
//! (rxray-wire) and prints the engine's report: totals, protocols, talkers, ports, flows, conversations.
use anyhow::{anyhow, bail, Context, Result};
use rxray_engine::filter::Filter;
use crate::records::analyze::{AnalyzeDoc, FilterOut};
use crate::sinks::{JsonLines, Sink};
use rxray_engine::analysis::{Analyzer, ConvKind};
use rxray_engine::conv::Conversation;
use rxray_io::CaptureReader;
use rxray_engine::event::Packet;
use rxray_wire::dissect::{empty_packet, summarize};
use rxray_wire::dissect_into;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng, any byte order and resolution); `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Rows in the talker, port and flow lists (0: all). Conversation tables are always complete.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Only packets matching this tcpdump-syntax expression (evaluated in user space).
    #[arg(long = "filter", value_name = "EXPR")]
    pub filter: Option<String>,
    /// The filter as trailing words after `--`, like tcpdump: `rxray analyze FILE -- udp port 53`.
    #[arg(last = true, value_name = "FILTER")]
    pub filter_words: Vec<String>,
    /// The most flows the report keeps (each side table too): past it, the half with the fewest
    /// bytes is folded into an `other` row that the report shows. About 120 bytes per flow, and the rows of one report section at a time.
    #[arg(long, value_name = "N", default_value_t = rxray_engine::analysis::DEFAULT_MAX_FLOWS)]
    pub max_flows: usize,
    /// Run the detectors and signatures instead of the report: alerts as EVE JSON Lines, in capture time.
    #[arg(long)]
    pub alerts: bool,
    #[command(flatten)]
    pub alert_opts: crate::alerts::AlertOpts,
    /// API calls instead of the report: HTTP/1.x requests per endpoint (method and path template),
    /// statuses, latency, bytes and clients, from the TCP streams on the `--port`s.
    #[arg(long)]
    pub http: bool,
    #[command(flatten)]
    pub http_opts: crate::http::HttpOpts,
}

/// Reads every file into `an`; returns the errors met (one per damaged file), each naming the
/// file and the byte offset. Packets read before an error are kept.
pub fn read_files(files: &[PathBuf], an: &mut Analyzer, filter: &mut Option<FilterCount>) -> Vec<String> {
    let mut errors = Vec::new();
    for f in files {
        let shown = f.display().to_string();
        let res = if shown == "-" {
            read_one(CaptureReader::new(std::io::stdin().lock()), &shown, an, filter)
        } else {
            match std::fs::File::open(f) {
                Ok(file) => read_one(CaptureReader::open(file), &shown, an, filter),
                Err(e) => Err(format!("cannot open: {e}")),
            }
        };
        if let Err(e) = res {
            errors.push(format!("{shown}: {e}"));
        }
    }
    errors
}

/// A filter, the packet it is evaluated on, and how many packets it let through and held back.
pub struct FilterCount {
    pub filter: Filter,
    pub packet: Packet,
    pub matched: u64,
    pub rejected: u64,
}

fn read_one<R: Read>(
    rd: Result<CaptureReader<R>, rxray_io::ReadError>,
    file: &str,
    an: &mut Analyzer,
    filter: &mut Option<FilterCount>,
) -> Result<(), String> {
    let mut rd = rd.map_err(|e| e.to_string())?;
    let mut unsupported = BTreeSet::new();
    let fallback = file.rsplit('/').next().unwrap_or(file).to_string();
    // The analyzer's index of the last interface name (pcapng sections may rename interfaces).
    let mut last: Option<(String, u32)> = None;
    while let Some(rec) = rd.next_record() {
        let rec = rec.map_err(|e| e.to_string())?;
        if !rec.linktype.is_supported() && unsupported.insert(rec.linktype.0) {
            eprintln!("rxray: warning: {file}: link type {} is not supported; its packets count as other_l2", rec.linktype.0);
        }
        let name = rec.iface_name.unwrap_or(&fallback);
        if let Some(fc) = filter.as_mut() {
            // The filter needs the whole dissection; without one, the summary below is enough.
            dissect_into(&mut fc.packet, rec.data, rec.linktype, rec.ts_ns, rec.orig_len, name, 0);
            if !fc.filter.matches(&fc.packet) {
                fc.rejected += 1;
                continue;
            }
            fc.matched += 1;
        }
        let iface = match &last {
            Some((n, i)) if n == name => *i,
            _ => last.insert((name.to_string(), an.iface(name))).1,
        };
        let s = summarize(rec.data, rec.linktype, rec.orig_len);
        an.add_summary(&s, s.malformed_name(), rec.orig_len, rec.ts_ns, iface);
    }
    Ok(())
}

pub fn run(a: AnalyzeArgs) -> Result<()> {
    // --openapi implies --http, or with --alerts, findings that alert.
    if a.http || (a.http_opts.openapi.is_some() && !a.alerts) {
        if a.filter.is_some() || !a.filter_words.is_empty() || a.alerts {
            bail!("--http reads every TCP segment on its ports; drop the filter and --alerts (--alerts --openapi checks the calls and alerts on findings)");
        }
        return crate::http::analyze(&a.files, &a.http_opts, a.json);
    }
    if a.alerts {
        if a.filter.is_some() || !a.filter_words.is_empty() {
            bail!("--alerts looks at every packet; drop the filter");
        }
        return crate::alerts::analyze(&a.files, &a.alert_opts, &a.http_opts);
    }
    let expr = match (&a.filter, a.filter_words.is_empty()) {
        (Some(_), false) => bail!("give the filter once: --filter EXPR or -- FILTER..., not both"),
        (Some(f), true) => Some(f.clone()),
        (None, false) => Some(a.filter_words.join(" ")),
        (None, true) => None,
    };
    let mut filter = match expr {
        Some(t) => {
            let filter = Filter::parse(&t).map_err(|e| anyhow!("{e}"))?;
            Some(FilterCount { filter, packet: empty_packet(), matched: 0, rejected: 0 })
        }
        None => None,
    };
    let mut an = Analyzer::with_max_flows(a.max_flows);
    let errors = read_files(&a.files, &mut an, &mut filter);
    // Written section by section straight from the analyzer's tables (large captures: at most one
    // section's rows exist beside the flow table at a time).
    let top = (a.top != 0).then_some(a.top);
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if a.json {
        // Serialised straight from the report (no intermediate JSON tree: large captures).
        let filter = filter.as_ref().map(|f| FilterOut { expr: &f.filter.text, matched: f.matched, rejected: f.rejected });
        let doc = AnalyzeDoc { files: a.files.iter().map(|f| f.display().to_string()).collect(), filter, errors: &errors, report: an.stream(top) };
        JsonLines::new(&mut out).write(&doc).context("writing JSON")?;
    } else {
        let mut s = String::new();
        if let Some(f) = &filter {
            let _ = writeln!(s, "filter: {} ({} packets matched, {} did not)", f.filter.text, f.matched, f.rejected);
        }
        text(&an, top, &mut s, &mut out)?;
    }
    out.flush()?;
    let Some((last, rest)) = errors.split_last() else { return Ok(()) };
    for e in rest {
        eprintln!("rxray: error: {e}");
    }
    Err(anyhow!("{last}"))
}

fn endpoint(addr: std::net::IpAddr, port: u16, with_port: bool) -> String {
    match (with_port, addr) {
        (false, _) => addr.to_string(),
        (true, std::net::IpAddr::V6(a)) => format!("[{a}]:{port}"),
        (true, a) => format!("{a}:{port}"),
    }
}

/// Times as the text report prints them (one civil-date algorithm, rxray_engine::time).
use rxray_engine::time::utc_text as utc;

/// The report as text tables, written to `out` section by section (`s` is scratch); lists are cut
/// to `top` rows when given, conversations never.
pub fn text(an: &Analyzer, top: Option<usize>, s: &mut String, out: &mut impl Write) -> std::io::Result<()> {
    let t = &an.totals();
    let _ = writeln!(s, "{} packets, {} bytes, {:.6} s", t.packets, t.bytes, t.duration_s);
    if t.packets > 0 {
        let _ = writeln!(s, "first {}  last {}", utc(t.first_ns), utc(t.last_ns));
    }
    let _ = write!(s, "malformed: {}", t.malformed);
    for (k, v) in &t.malformed_by {
        let _ = write!(s, "  {k}={v}");
    }
    s.push('\n');
    if t.frag_unattributed > 0 {
        let _ = writeln!(s, "later fragments whose first fragment was not seen: {}", t.frag_unattributed);
    }
    let pct = |b: u64| if t.bytes == 0 { 0.0 } else { b as f64 * 100.0 / t.bytes as f64 };

    let _ = writeln!(s, "\nProtocols\n  {:<12} {:>10} {:>14} {:>7}", "class", "packets", "bytes", "bytes%");
    for p in &an.protocols() {
        let _ = writeln!(s, "  {:<12} {:>10} {:>14} {:>6.1}%", p.name, p.packets, p.bytes, pct(p.bytes));
    }
    let _ = writeln!(s, "\nTop talkers\n  {:<40} {:>10} {:>14} {:>10} {:>14} {:>10} {:>14}", "address", "packets", "bytes", "tx pkts", "tx bytes", "rx pkts", "rx bytes");
    let (talkers, ports) = an.talkers_and_ports(top);
    for x in &talkers {
        let _ = writeln!(s, "  {:<40} {:>10} {:>14} {:>10} {:>14} {:>10} {:>14}", x.addr, x.packets, x.bytes, x.tx.packets, x.tx.bytes, x.rx.packets, x.rx.bytes);
    }
    let _ = writeln!(s, "\nTop ports\n  {:<10} {:>10} {:>14}", "port", "packets", "bytes");
    for x in &ports {
        let _ = writeln!(s, "  {:<10} {:>10} {:>14}", format!("{}/{}", x.port, x.proto), x.packets, x.bytes);
    }
    drop((talkers, ports));
    let flows = an.ranked_flows(top);
    let _ = writeln!(s, "\nFlows ({} of {}, one direction each)", flows.len(), flows.count);
    let _ = writeln!(s, "  {:<10} {:>5} {:>5}  {:<72} {:>10} {:>14} flags", "iface", "vlan", "proto", "flow", "packets", "bytes");
    for f in flows.records(an) {
        if s.len() > 1 << 16 {
            out.write_all(s.as_bytes())?;
            s.clear();
        }
        let k = &f.key;
        let flow = if k.fragments {
            format!("{} -> {} (later fragments)", k.src, k.dst)
        } else {
            format!("{} -> {}", endpoint(k.src, k.sport, true), endpoint(k.dst, k.dport, true))
        };
        let flags = if k.proto == 6 { tcp_flags(f.tcp_flags) } else { String::new() };
        let _ = writeln!(s, "  {:<10} {:>5} {:>5}  {:<72} {:>10} {:>14} {flags}", f.iface, k.vlan, k.proto, flow, f.packets, f.bytes);
    }
    drop(flows);
    let o = &an.folded();
    if o.flows > 0 || o.side_rows > 0 {
        let _ = writeln!(
            s,
            "  {:<10} {:>5} {:>5}  {:<72} {:>10} {:>14}",
            "other",
            "",
            "",
            format!("{} flows folded past --max-flows {}", o.flows, an.max_flows()),
            o.packets,
            o.bytes
        );
        let _ = writeln!(
            s,
            "  (folded flows count in the totals and protocols only, not in talkers, ports or conversations; {} rows of fragment and malformed-packet tables were folded too)",
            o.side_rows
        );
    }
    out.write_all(s.as_bytes())?;
    for (name, kind, ports) in [("IPv4", ConvKind::Ip, false), ("IPv6", ConvKind::Ipv6, false), ("TCP", ConvKind::Tcp, true), ("UDP", ConvKind::Udp, true)] {
        conv_table(s, name, &an.conversations(kind), ports, out)?;
    }
    Ok(())
}

fn tcp_flags(f: u8) -> String {
    rxray_engine::event::Tcp { sport: 0, dport: 0, seq: 0, ack: 0, flags: f, window: 0, hdr_len: 0, mss: None, wscale: None, sack_ok: false, sack: false, ts: None }
        .flags_str()
}

fn conv_table(s: &mut String, name: &str, v: &[Conversation], ports: bool, out: &mut impl Write) -> std::io::Result<()> {
    s.clear();
    let _ = writeln!(s, "\n{name} conversations ({})", v.len());
    if v.is_empty() {
        return out.write_all(s.as_bytes());
    }
    let _ = writeln!(s, "  {:<47}     {:<47} {:>9} {:>12} {:>9} {:>12} {:>9} {:>12}", "A", "B", "A->B", "bytes", "B->A", "bytes", "frames", "bytes");
    for c in v {
        if s.len() > 1 << 16 {
            out.write_all(s.as_bytes())?;
            s.clear();
        }
        let _ = writeln!(
            s,
            "  {:<47} <-> {:<47} {:>9} {:>12} {:>9} {:>12} {:>9} {:>12}",
            endpoint(c.a, c.a_port, ports),
            endpoint(c.b, c.b_port, ports),
            c.frames_ab,
            c.bytes_ab,
            c.frames_ba,
            c.bytes_ba,
            c.frames(),
            c.bytes()
        );
    }
    out.write_all(s.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00.000000000 UTC");
        assert_eq!(super::utc(1_700_000_000_123_456_789), "2023-11-14 22:13:20.123456789 UTC");
    }
}

