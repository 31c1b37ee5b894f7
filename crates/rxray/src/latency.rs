//! `rxray latency`: how long incoming packets take from XDP arrival to the socket's receive queue
//! and to the application's read, per flow and per reading process, from in-kernel histograms.
use crate::{session, XdpModeArg};
use rxray_engine::os::Os;
use rxray_kernel::os::LinuxOs;
use anyhow::{Context, Result};
use rxray_engine::latency::Summary;
use rxray_engine::source::LatencyFlow;
use rxray_wire::ipproto::{self, Spelling};
use rxray_kernel::{IngressOptions, LatencyTotals, LiveSource};
pub use crate::records::latency::{FlowLatency, ProcLatency};
use crate::records::latency::{LatencyKernel, LatencyReport, LatencySummary};
use crate::records::Summary as SummaryLine;
use std::{
    io::{IsTerminal, Write},
    net::IpAddr,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

/// What one packet's latency is, and what it is not, for the help text and the README.
pub const DEFINITION: &str = "\
Per packet: arrival is when the XDP program saw it; queue is when its skb was added to the \
socket's receive queue (tp_btf/sk_data_ready); read is, for TCP, when the application's recvmsg \
started copying it (tp_btf/skb_copy_datagram_iovec, in the reading task) and, for UDP, when the \
recvmsg that returned it ended (tp_btf/sock_recv_length; datagrams are matched to reads in the \
socket's queue order). Packets are matched by their 5-tuple and a tag: the TCP sequence number, or \
for UDP the length, checksum and first 4 payload bytes. GRO and TCP receive-queue coalescing merge \
several packets into one skb: only the first packet of each skb is measured (the others are counted \
as stamped, never as read), so counts can be lower than packets sent, and the latency is the first \
packet's. A segment read in pieces is measured at its first read. Retransmitted TCP segments and \
identical UDP datagrams in flight at once share a stamp (the later arrival wins). Packets whose \
address or port changes after XDP (NAT) are not measured. Percentiles are within 12.5% (log2 \
histograms with 4 sub-buckets per power of two); max and mean are exact.";

#[derive(clap::Args)]
#[command(after_long_help = DEFINITION)]
#[command(mut_arg("json", |a| a.help("JSON Lines: one report object per interval (and one at exit); the summary goes to stderr as `{\"summary\": ...}`")))]
#[command(mut_arg("count", |a| a.help("Exit after this many packets have been measured")))]
pub struct LatencyArgs {
    /// Interface to watch (repeatable). Default: every interface that is up, except loopback.
    #[arg(short = 'i', long = "interface")]
    pub ifaces: Vec<String>,
    #[command(flatten)]
    pub report: crate::args::Report,
    /// Exit after this many seconds.
    #[arg(short = 'd', long = "duration", value_parser = crate::args::seconds)]
    pub duration: Option<f64>,
    /// Rows per table in the text output.
    #[arg(short = 'n', long = "top", default_value_t = 20)]
    pub top: usize,
    /// Where to attach: auto (per device: TC ingress on veth and virtio_net, native XDP on NICs
    /// that keep GRO with it), native, generic or tc.
    #[arg(long = "xdp-mode", value_enum, default_value = "auto")]
    pub xdp_mode: XdpModeArg,
    /// Attach even when an agent owns the interfaces (by default `latency` joins an agent that
    /// measures latency; docs/agent.md, "Joining the agent").
    #[arg(long)]
    pub standalone: bool,
}

fn endpoint(a: Option<IpAddr>, port: u16) -> String {
    match a {
        Some(IpAddr::V6(a)) => format!("[{a}]:{port}"),
        Some(a) => format!("{a}:{port}"),
        None => format!("?:{port}"),
    }
}

pub fn flow_latency(f: &LatencyFlow) -> FlowLatency {
    let e = &f.latency;
    FlowLatency {
        proto: f.proto,
        remote: endpoint(f.remote, f.remote_port),
        local: endpoint(f.local, f.local_port),
        remote_addr: f.remote,
        remote_port: f.remote_port,
        local_addr: f.local,
        local_port: f.local_port,
        queue: e.queue.summary(),
        read: e.read.summary(),
    }
}

fn latency_totals(src: &LiveSource) -> Result<LatencyTotals> {
    Ok(src.ingress().context("no ingress program")?.latency_totals()?)
}

fn report(src: &LiveSource, os: &mut dyn Os) -> Result<(Vec<FlowLatency>, Vec<ProcLatency>, LatencyTotals)> {
    let (flows, procs) = report_of(&src.latency_snapshot()?, os);
    Ok((flows, procs, latency_totals(src)?))
}

/// The rows of a latency snapshot, in `latency`'s order (the agent renders a joined `latency`'s
/// reports with this and `render`).
pub(crate) fn report_of(snap: &rxray_engine::source::LatencySnapshot, os: &mut dyn Os) -> (Vec<FlowLatency>, Vec<ProcLatency>) {
    let mut flows: Vec<FlowLatency> = snap.flows.iter().map(flow_latency).collect();
    flows.sort_by(|a, b| b.read.count.cmp(&a.read.count).then_with(|| a.remote.cmp(&b.remote)));
    let mut procs: Vec<ProcLatency> = snap
        .procs
        .iter()
        .map(|p| ProcLatency {
            pid: p.pid,
            comm: p.latency.comm.clone(),
            exe: os.exe_of(p.pid),
            cgroup_id: p.cgroup_id,
            cgroup: os.cgroup_path(p.cgroup_id),
            queue: p.latency.queue.summary(),
            read: p.latency.read.summary(),
        })
        .collect();
    procs.sort_by(|a, b| b.read.count.cmp(&a.read.count).then(a.pid.cmp(&b.pid)));
    (flows, procs)
}

/// One report as `latency` prints it: a JSON line, or the text tables.
pub(crate) fn render(flows: &[FlowLatency], procs: &[ProcLatency], t: &LatencyTotals, ts_ns: u64, json: bool, top: usize) -> String {
    if json {
        let r = LatencyReport { flows: flows.to_vec(), processes: procs.to_vec(), totals: kernel(t), ts_ns };
        format!("{}\n", crate::sinks::json_line(&r))
    } else {
        format!("{}\n", table(flows, procs, t, top))
    }
}

/// What `latency` writes to stderr at exit.
pub(crate) fn summary_text(t: &LatencyTotals, queue_stage: bool, udp_stage: bool, seconds: f64, json: bool) -> String {
    if json {
        let summary = LatencySummary { kernel: kernel(t), queue_stage, seconds, udp_stage };
        format!("{}\n", crate::sinks::json_line(&SummaryLine { summary }))
    } else {
        format!(
            "\n{} packets measured, {} stamped at XDP, {} seen queued; {} flow and {} process measurements found their table full\n",
            t.read, t.stamped, t.queued, t.flow_insert_failed, t.proc_insert_failed
        )
    }
}

fn ms(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into())
}

fn stage_cols(s: &Summary) -> String {
    format!("{:>9} {:>9} {:>9} {:>9}", ms(s.p50_ms), ms(s.p90_ms), ms(s.p99_ms), ms(s.max_ms))
}


fn table(flows: &[FlowLatency], procs: &[ProcLatency], t: &LatencyTotals, top: usize) -> String {
    let mut s = format!(
        "rxray latency: {} packets measured ({} stamped at XDP, {} seen queued); milliseconds\n",
        t.read, t.stamped, t.queued
    );
    let stages = format!(
        "{:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "Q_P50", "Q_P90", "Q_P99", "Q_MAX", "R_P50", "R_P90", "R_P99", "R_MAX"
    );
    s.push_str(&format!("{:<5} {:<45} {:<45} {:>8} {}\n", "PROTO", "REMOTE", "LOCAL", "COUNT", stages));
    for f in flows.iter().take(top) {
        s.push_str(&format!(
            "{:<5} {:<45} {:<45} {:>8} {} {}\n",
            ipproto::name_or_number(f.proto, Spelling::Filter),
            f.remote,
            f.local,
            f.read.count,
            stage_cols(&f.queue),
            stage_cols(&f.read)
        ));
    }
    s.push_str(&format!("\n{:>8} {:<16} {:<30} {:>8} {}\n", "PID", "COMM", "CGROUP", "COUNT", stages));
    for p in procs.iter().take(top) {
        s.push_str(&format!(
            "{:>8} {:<16} {:<30} {:>8} {} {}\n",
            p.pid,
            p.comm,
            p.cgroup.as_deref().unwrap_or("-"),
            p.read.count,
            stage_cols(&p.queue),
            stage_cols(&p.read)
        ));
    }
    s
}

fn kernel(t: &LatencyTotals) -> LatencyKernel {
    LatencyKernel { flow_insert_failed: t.flow_insert_failed, proc_insert_failed: t.proc_insert_failed, queued: t.queued, read: t.read, stamped: t.stamped }
}

pub fn run(a: LatencyArgs) -> Result<()> {
    let stop = session::stop_flag()?;
    if !a.standalone && !a.ifaces.is_empty() {
        session::require_root()?;
        let req = crate::join::JoinRequest {
            interfaces: a.ifaces.clone(),
            json: a.report.json,
            count: a.report.count,
            interval: a.report.period().map(|d| d.as_secs_f64()),
            top: Some(a.top),
            tty: std::io::stdout().is_terminal() && !a.report.json,
            ..Default::default()
        };
        if let Some(j) = crate::join::client::try_join("latency", req)? {
            let what = format!("measuring delivery latency on {}", a.ifaces.join(", "));
            return crate::join::client::run_stream_for(j, &stop, &what, a.duration.map(Duration::from_secs_f64));
        }
    }
    let opts = IngressOptions { events: false, ring_bytes: 4096, flows: false, ..Default::default() };
    let (ing, stages) = session::attach_then(&a.ifaces, a.xdp_mode, opts, "latency", "measuring delivery latency on", |ing| {
        ing.enable_latency()
            .context("attaching the latency stages (tp_btf/skb_copy_datagram_iovec, tp_btf/sk_data_ready, tp_btf/sock_recv_length)")
    })?;
    if !stages.queue {
        eprintln!("rxray: this kernel has no sk_data_ready tracepoint: arrival → queue is not measured");
    }
    if !stages.udp {
        eprintln!("rxray: no sk_data_ready or sock_recv_length tracepoint: UDP is not measured");
    }
    eprintln!("rxray: latency stages attached");
    let src = LiveSource::new().with_ingress(ing, false, false)?;
    let mut os = LinuxOs::new();
    let start = Instant::now();
    let interval = a.report.period();
    let mut next_tick = interval.map(|i| Instant::now() + i);
    let end = a.duration.map(|d| start + Duration::from_secs_f64(d.max(0.0)));
    let tty = std::io::stdout().is_terminal() && !a.report.json;
    // On a terminal the periodic tables are redrawn in place (rxray-tui's LiveText).
    let mut live = if tty && interval.is_some() { Some(rxray_tui::term::LiveText::new().context("setting up the terminal")?) } else { None };
    let mut print = |src: &LiveSource, os: &mut LinuxOs, clear: bool| -> Result<bool> {
        let (flows, procs, t) = report(src, os)?;
        let mut out = std::io::stdout().lock();
        let res = if let Some(l) = live.as_mut().filter(|_| clear && !a.report.json) {
            l.show(&table(&flows, &procs, &t, a.top))
        } else {
            out.write_all(render(&flows, &procs, &t, src.now_ns(), a.report.json, a.top).as_bytes())
        };
        Ok(res.and_then(|_| out.flush()).is_ok())
    };
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if stop.load(Ordering::Relaxed) || end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
        if let Some(c) = a.report.count {
            if latency_totals(&src)?.read >= c {
                break;
            }
        }
        if let (Some(iv), Some(t)) = (interval, next_tick) {
            if Instant::now() >= t {
                if !print(&src, &mut os, tty)? {
                    return Ok(());
                }
                next_tick = Some(t + iv);
            }
        }
    }
    print(&src, &mut os, false)?;
    let t = latency_totals(&src)?;
    eprint!("{}", summary_text(&t, stages.queue, stages.udp, start.elapsed().as_secs_f64(), a.report.json));
    Ok(())
}
