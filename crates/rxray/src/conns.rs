//! `rxray conns`: the TCP connections of this network namespace from the kernel's own state
//! changes: states in order, handshake time, bytes each way, retransmits, resets and who sent
//! them, smoothed and minimum RTT; plus the namespace's accept-queue counters (ListenOverflows,
//! ListenDrops).
use crate::sinks::{JsonLines, Sink};
use crate::{line::clock_time, records, session};
use anyhow::{Context, Result};
use rxray_engine::conns::{fill, live_records, record, ConnRecord, Seeds};
use rxray_engine::os::Os;
use rxray_engine::source::{ConnSnapshot, Event, TCP_CLOSE};
use rxray_kernel::os::LinuxOs;
use rxray_kernel::{btf, ConnTotals, Conns, ConnsOptions, Drops, DropsOptions, LiveSource};
use std::{
    collections::BTreeMap,
    io::{self, Write},
    path::Path,
    time::Instant,
};

#[derive(clap::Args)]
#[command(mut_arg("json", |a| a.help("JSON Lines: one object per connection when it closes (and per live one at each interval); the summary goes to stderr as `{\"summary\": ...}`")))]
#[command(mut_arg("interval", |a| a.help("Also list the live connections every S seconds (0: only at exit)")))]
#[command(mut_arg("count", |a| a.help("Exit after this many connections have closed")))]
pub struct ConnsArgs {
    #[command(flatten)]
    pub report: crate::args::Report,
    #[command(flatten)]
    pub ring: crate::args::Ring,
    /// Attach even when an agent runs here (by default `conns` joins the agent of its network
    /// namespace; docs/agent.md, "Joining the agent").
    #[arg(long)]
    pub standalone: bool,
}

pub(crate) const LISTEN_COUNTERS: &[&str] = &["ListenOverflows", "ListenDrops"];

/// Drop reasons (kfree_skb) that belong beside the listen counters: the accept queue's overflow.
const LISTEN_REASONS: &[&str] = &["TCP_LISTEN_OVERFLOW"];

/// Counts, since `drops` attached, of the `LISTEN_REASONS` this kernel has (by name from its BTF).
fn listen_reason_counts(drops: &Drops) -> Result<BTreeMap<String, u64>> {
    let names = btf::drop_reasons(Path::new(btf::VMLINUX)).context("reading drop-reason names from the kernel's BTF")?;
    let by = drops.totals()?.by_reason;
    let mut out = BTreeMap::new();
    for (code, name) in &names {
        if LISTEN_REASONS.contains(&name.as_str()) {
            let n = by.iter().find(|(c, _)| u64::from(*c) == *code).map(|(_, n)| *n).unwrap_or(0);
            out.insert(name.clone(), n);
        }
    }
    Ok(out)
}

fn ms(us: u32) -> String {
    if us == 0 {
        "-".into()
    } else {
        format!("{:.3}", us as f64 / 1000.0)
    }
}

pub(crate) fn table_header() -> String {
    format!(
        "{:<6} {:<24} {:<24} {:<11} {:>9} {:>9} {:>10} {:>10} {:>5} {:>9} {:>8} {:>8} {:>8} {:>7} {:<16} {:<24} EXE",
        "STATUS", "LOCAL", "REMOTE", "STATE", "AGE_MS", "HS_MS", "RX", "TX", "RETR", "RST", "SRTT", "MIN", "MAX",
        "PID", "COMM", "CGROUP"
    )
}

fn table_row(r: &ConnRecord) -> String {
    let rst = match r.reset_by {
        Some(w) => format!("{}:{}/{}", w, r.rst_rx, r.rst_tx),
        None => "-".into(),
    };
    format!(
        "{:<6} {:<24} {:<24} {:<11} {:>9} {:>9} {:>10} {:>10} {:>5} {:>9} {:>8} {:>8} {:>8} {:>7} {:<16} {:<24} {}",
        r.status,
        r.local,
        r.remote,
        r.state,
        r.age_ms.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into()),
        r.handshake_ms.map(|h| format!("{h:.3}")).unwrap_or_else(|| "-".into()),
        r.bytes_rx,
        r.bytes_tx,
        r.retransmits,
        rst,
        ms(r.srtt_us),
        ms(r.min_rtt_us),
        ms(r.srtt_max_us),
        r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
        r.comm.as_deref().unwrap_or("-"),
        r.cgroup.as_deref().unwrap_or("-"),
        r.exe.as_deref().unwrap_or("-"),
    )
}

pub(crate) fn kernel_counts(t: &ConnTotals) -> records::ConnsKernel {
    records::ConnsKernel {
        closed: t.closed,
        events: t.events,
        insert_failed: t.insert_failed,
        lost: t.lost,
        new: t.new,
        rst_tx_nosock: t.rst_tx_nosock,
        untracked: t.untracked,
    }
}

pub(crate) fn emit(out: &mut impl Write, r: &ConnRecord, json: bool) -> io::Result<()> {
    if json {
        JsonLines::new(out).write(r)
    } else {
        writeln!(out, "{}", table_row(r))
    }
}

/// Lists the open connections: the kernel's, and those older than rxray it has not seen change.
pub(crate) fn live_snapshot(out: &mut impl Write, snap: &ConnSnapshot, seeds: &Seeds, os: &mut dyn Os, json: bool) -> Result<()> {
    let recs = live_records(snap, seeds, os);
    if !json {
        writeln!(out, "-- {}: {} live --", clock_time(snap.ts_ns), recs.len())?;
    }
    for r in &recs {
        emit(out, r, json)?;
    }
    Ok(())
}

pub fn run(a: ConnsArgs) -> Result<()> {
    session::require_root()?;
    let stop = session::stop_flag()?;
    if !a.standalone {
        let req = crate::join::JoinRequest {
            json: a.report.json,
            count: a.report.count,
            interval: a.report.period().map(|d| d.as_secs_f64()),
            ..Default::default()
        };
        if let Some(j) = crate::join::client::try_join("conns", req)? {
            return crate::join::client::run_stream(j, &stop, "watching TCP connections of", std::time::Duration::ZERO);
        }
    }
    let netns = rxray_kernel::drops::current_netns_ino()?;
    let conns = Conns::attach(&ConnsOptions { ring_bytes: a.ring.ring_size, netns_ino: Some(netns) })
        .context("attaching the TCP tracepoints (tp_btf/inet_sock_set_state, tcp_*)")?;
    // The drop program in count-only mode, for the accept queue's overflow reason beside the
    // namespace's counters; conns work without it.
    let drops = match Drops::attach(&DropsOptions { ring_bytes: 4096, netns_ino: Some(netns), ifindexes: Vec::new(), events: false }) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("rxray: no drop reasons beside the listen counters ({e})");
            None
        }
    };
    let mut os = LinuxOs::new();
    let listen0 = os.tcp_counters(LISTEN_COUNTERS).unwrap_or_default();
    // Read after the programs are attached, so a connection is either seeded or seen changing state.
    let seeds = match os.tcp_sockets() {
        Ok(now) => Seeds::new(&now),
        Err(e) => {
            eprintln!("rxray: connections older than rxray are not listed ({e})");
            Seeds::new(&[])
        }
    };
    eprintln!(
        "rxray: watching TCP connections in network namespace {netns}{}; Ctrl-C to stop",
        if conns.probe { "" } else { " (no tcp_probe: RTT sampled at state changes only)" }
    );
    if !conns.readers {
        eprintln!("rxray: this kernel has no sock_recv_length tracepoint: no reading process per connection");
    }
    let mut src = LiveSource::new().with_conns(conns, None);
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let start = Instant::now();
    let interval = a.report.period();
    let mut next_tick = interval.map(|i| Instant::now() + i);
    let mut closed = 0u64;
    let mut delivered = 0u64;
    if !a.report.json {
        writeln!(out, "{}", table_header())?;
    }
    let mut pump = session::Pump::new(&stop);
    loop {
        while let Some(ev) = pump.next(&mut src) {
            let Event::Conn(ev) = ev? else { continue };
            delivered += 1;
            if ev.conn.state != TCP_CLOSE {
                continue; // live connections are listed from the map at intervals and at exit
            }
            closed += 1;
            let mut r = record(&ev.conn, ev.ts_ns, "closed");
            seeds.mark(&mut r);
            fill(&mut os, &mut r);
            if emit(&mut out, &r, a.report.json).is_err() || a.report.count.is_some_and(|c| closed >= c) {
                pump.finish();
                break;
            }
        }
        if let (Some(iv), Some(t)) = (interval, next_tick) {
            if Instant::now() >= t {
                let snap = src.conn_snapshot()?;
                if live_snapshot(&mut out, &snap, &seeds, &mut os, a.report.json).is_err() {
                    pump.finish();
                }
                next_tick = Some(t + iv);
            }
        }
        if out.flush().is_err() {
            pump.finish();
        }
        if !pump.again(&mut src) {
            break;
        }
    }
    // The connections still open at exit, once.
    if let Ok(snap) = src.conn_snapshot() {
        let _ = live_snapshot(&mut out, &snap, &seeds, &mut os, a.report.json);
    }
    let _ = out.flush();
    drop(out);
    let conns = src.conns().context("no connection programs")?;
    let totals = conns.totals()?;
    let listen = os.tcp_counters(LISTEN_COUNTERS).unwrap_or_default();
    let since: BTreeMap<String, u64> =
        listen.iter().map(|(k, v)| (k.clone(), v.saturating_sub(*listen0.get(k).unwrap_or(&0)))).collect();
    let reasons = match &drops {
        Some(d) => Some(listen_reason_counts(d)?),
        None => None,
    };
    let summary = Closing { closed, delivered, totals, listen, since, reasons, readers: conns.readers, probe: conns.probe, seconds: start.elapsed().as_secs_f64() };
    eprint!("{}", summary.text(a.report.json));
    Ok(())
}

/// What `conns` sums up at exit (a joined `conns`'s is rendered in the agent the same way).
pub(crate) struct Closing {
    pub closed: u64,
    pub delivered: u64,
    pub totals: ConnTotals,
    pub listen: BTreeMap<String, u64>,
    pub since: BTreeMap<String, u64>,
    pub reasons: Option<BTreeMap<String, u64>>,
    pub readers: bool,
    pub probe: bool,
    pub seconds: f64,
}

impl Closing {
    /// The summary as `conns` writes it to stderr.
    pub(crate) fn text(self, json: bool) -> String {
        let Closing { closed, delivered, totals, listen, since, reasons, readers, probe, seconds } = self;
        if json {
            let summary = records::ConnsSummary {
                closed,
                delivered,
                kernel: kernel_counts(&totals),
                listen,
                listen_drop_reasons: reasons,
                listen_since_start: since,
                readers,
                seconds,
                tcp_probe: probe,
            };
            return format!("{}\n", crate::sinks::json_line(&records::Summary { summary }));
        }
        let mut s = format!(
            "\n{} connections closed, {} events, {} lost (ring buffer full), {} not tracked (map full), {} seen late\n",
            closed, totals.events, totals.lost, totals.insert_failed, totals.untracked
        );
        s.push_str(&format!("{} resets sent with no connection (closed ports, TIME_WAIT)\n", totals.rst_tx_nosock));
        for k in LISTEN_COUNTERS {
            s.push_str(&format!(
                "{k}: {} ({} since start)\n",
                listen.get(*k).copied().unwrap_or(0),
                since.get(*k).copied().unwrap_or(0)
            ));
        }
        for (k, n) in reasons.iter().flatten() {
            s.push_str(&format!("drop reason {k}: {n} (since start)\n"));
        }
        s
    }
}

