//! `rxray flows`: the kernel's flow table, refreshed live (text) or as JSON Lines snapshots.
//! Counts come from the kernel's own counters, so they are exact whatever the ring buffer loses.
use crate::{
    context::{DropsOut, KernelContext},
    records::flows::{ContextTotals, FlowContext, FlowOut, FlowsSnapshot, FlowsTotals, IfaceCount},
    sinks::{JsonLines, Sink},
    session, XdpModeArg,
};
use anyhow::{Context as _, Result};
use rxray_engine::flows::{sort, FlowRecord, RateTracker, SortBy};
use rxray_engine::source::Source as _;
use rxray_engine::source::{Event, FlowSnapshot};
use rxray_wire::ipproto::{self, Spelling};
use rxray_kernel::{IngressOptions, LiveSource, Totals};
use std::{
    io::{IsTerminal, Write},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SortArg {
    Bytes,
    Packets,
    Rate,
}

#[derive(clap::Args)]
pub struct FlowsArgs {
    /// Interface to watch (repeatable). Default: every interface that is up, except loopback.
    #[arg(short = 'i', long = "interface")]
    pub ifaces: Vec<String>,
    /// Order of the table.
    #[arg(long, value_enum, default_value = "bytes")]
    pub sort: SortArg,
    /// Print a JSON Lines snapshot per interval (every flow) instead of the live table.
    #[arg(long)]
    pub json: bool,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 1.0, value_parser = crate::args::seconds)]
    pub interval: f64,
    /// Rows in the text table.
    #[arg(short = 'n', long = "top", default_value_t = 20)]
    pub top: usize,
    /// Exit after this many refreshes.
    #[arg(short = 'c', long = "count")]
    pub count: Option<u64>,
    /// Flow-table capacity; new flows beyond it are counted as failed inserts.
    #[arg(long = "flow-capacity", default_value_t = 65536)]
    pub capacity: u32,
    /// Where to attach: auto (per device: TC ingress on veth and virtio_net, native XDP on NICs
    /// that keep GRO with it), native, generic or tc.
    #[arg(long = "xdp-mode", value_enum, default_value = "auto")]
    pub xdp_mode: XdpModeArg,
    /// Do not attach the kernel context (the process that read each flow, and its drops): saves
    /// a tracing program run per recvmsg and per dropped packet on this host (README, "Kernel context").
    #[arg(long = "no-context")]
    pub no_context: bool,
    /// Size in bytes of the ring the drop events of the kernel context come through (a power of two from 4 KiB to 1 GiB).
    #[arg(long = "drop-ring-size", default_value_t = 1 << 18, hide = true, value_parser = crate::args::ring_size)]
    pub drop_ring_size: u32,
    /// TLS server ports: the handshakes of TCP flows to or from them are read (SNI, ALPN, version,
    /// JA4, handshake time) and shown under `tls` in the JSON of both directions' flows.
    #[arg(long = "tls-port", value_delimiter = ',')]
    pub tls_ports: Vec<u16>,
    /// Test aid: also emit per-packet events into a one-page ring nobody reads (forces loss).
    #[arg(long = "unread-events", hide = true)]
    pub unread_events: bool,
    /// Attach even when an agent runs here (docs/agent.md, "Joining the agent").
    #[arg(long)]
    pub standalone: bool,
}


fn human(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.1}G", x / 1e9),
        x if x >= 1e6 => format!("{:.1}M", x / 1e6),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// The flow table now, with rates since the last snapshot, sorted.
pub(crate) fn snapshot(src: &LiveSource, rates: &mut RateTracker, by: SortBy) -> Result<FlowSnapshot> {
    let mut snap = src.flow_snapshot()?;
    rates.update(&mut snap.flows, src.now_ns());
    sort(&mut snap.flows, by);
    Ok(snap)
}

/// The ingress program's counters.
pub(crate) fn totals(src: &LiveSource) -> Result<Totals> {
    Ok(src.ingress().context("no ingress program")?.totals()?)
}

/// The TLS facts of the connection a flow belongs to, either way round.
fn tls_of<'a>(tls: &'a [rxray_engine::http::TlsFacts], r: &FlowRecord) -> Option<&'a rxray_engine::http::TlsFacts> {
    let k = &r.key;
    tls.iter().find(|f| {
        let (c, s) = ((f.client, f.client_port), (f.server, f.server_port));
        ((Some(k.src), k.sport) == c && (Some(k.dst), k.dport) == s) || ((Some(k.src), k.sport) == s && (Some(k.dst), k.dport) == c)
    })
}

fn flow_context(ctx: Option<&mut KernelContext>, r: &FlowRecord) -> Option<FlowContext> {
    let ctx = ctx?;
    let k = &r.key;
    if k.fragments {
        return Some(FlowContext { reader: None, drops: DropsOut::default() });
    }
    Some(FlowContext {
        reader: ctx.reader(k.proto, k.src, k.sport, k.dst, k.dport),
        drops: ctx.drops(k.proto, k.src, k.sport, k.dst, k.dport),
    })
}

fn json_snapshot<'a>(
    src: &LiveSource,
    snap: &'a FlowSnapshot,
    ts_ns: u64,
    ctx: Option<&mut KernelContext>,
    tls: &'a [rxray_engine::http::TlsFacts],
) -> Result<FlowsSnapshot<'a>> {
    let context = ctx.as_ref().map(|c| c.context_totals(src));
    Ok(json_snapshot_of(&totals(src)?, snap, ts_ns, ctx, context, tls))
}

/// The JSON snapshot of `snap` with the ingress counters `t` (the agent renders a joined
/// `flows`'s lines with this same function).
pub(crate) fn json_snapshot_of<'a>(
    t: &Totals,
    snap: &'a FlowSnapshot,
    ts_ns: u64,
    mut ctx: Option<&mut KernelContext>,
    context: Option<ContextTotals>,
    tls: &'a [rxray_engine::http::TlsFacts],
) -> FlowsSnapshot<'a> {
    let recs = &snap.flows;
    FlowsSnapshot {
        context,
        flows: recs.iter().map(|r| FlowOut { flow: r, context: flow_context(ctx.as_deref_mut(), r), tls: tls_of(tls, r) }).collect(),
        interfaces: snap
            .interfaces
            .iter()
            .map(|(ifindex, iface, c)| IfaceCount { bytes: c.bytes, iface, ifindex: *ifindex, packets: c.packets })
            .collect(),
        protocols: snap.protocols.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        totals: FlowsTotals {
            bytes: t.bytes,
            events: t.events,
            flow_insert_failed: t.flow_insert_failed,
            flows: recs.len(),
            fragments_unattributed: t.frag_unattributed,
            iface_insert_failed: t.iface_insert_failed,
            lost: t.lost,
            malformed: t.malformed,
            packets: t.packets,
        },
        ts_ns,
    }
}

pub(crate) fn table(src: &LiveSource, recs: &[FlowRecord], top: usize, ctx: Option<&mut KernelContext>) -> Result<String> {
    Ok(table_of(&totals(src)?, recs, top, ctx))
}

/// The text table of `recs` with the ingress counters `t` (as `table`; the agent's joined `flows`).
pub(crate) fn table_of(t: &Totals, recs: &[FlowRecord], top: usize, mut ctx: Option<&mut KernelContext>) -> String {
    let mut s = format!(
        "rxray flows: {} flows, {} packets, {} bytes; flow table full: {} packets not counted in a flow\n",
        recs.len(),
        t.packets,
        t.bytes,
        t.flow_insert_failed
    );
    s.push_str(&format!(
        "{:<8} {:<5} {:>41} {:>41} {:>10} {:>12} {:>8} {:>9}{}\n",
        "IFACE",
        "PROTO",
        "SOURCE",
        "DESTINATION",
        "PACKETS",
        "BYTES",
        "PPS",
        "BPS",
        if ctx.is_some() { format!(" {:>8} {:<16} {:>6} {}", "PID", "COMM", "DROPS", "LAST_DROP") } else { String::new() }
    ));
    for r in recs.iter().take(top) {
        let k = &r.key;
        let (src, dst) = if k.fragments {
            (format!("{} (fragments)", k.src), k.dst.to_string())
        } else if k.sport == 0 && k.dport == 0 {
            (k.src.to_string(), k.dst.to_string())
        } else {
            (format!("{}:{}", k.src, k.sport), format!("{}:{}", k.dst, k.dport))
        };
        let extra = match flow_context(ctx.as_deref_mut(), r) {
            Some(c) => format!(
                " {:>8} {:<16} {:>6} {}",
                c.reader.as_ref().map(|p| p.pid.to_string()).unwrap_or_else(|| "-".into()),
                c.reader.as_ref().map(|p| p.comm.as_str()).unwrap_or("-"),
                c.drops.count,
                c.drops.last_reason.as_deref().unwrap_or("-")
            ),
            None => String::new(),
        };
        s.push_str(&format!(
            "{:<8} {:<5} {:>41} {:>41} {:>10} {:>12} {:>8} {:>9}{}\n",
            r.iface,
            ipproto::name_or_number(k.proto, Spelling::Filter),
            src,
            dst,
            r.packets,
            r.bytes,
            human(r.pps),
            human(r.bps),
            extra
        ));
    }
    s
}

pub fn run(a: FlowsArgs) -> Result<()> {
    let stop = session::stop_flag()?;
    if a.tls_ports.len() > rxray_kernel::http::MAX_PORTS {
        anyhow::bail!("--tls-port takes at most {} ports", rxray_kernel::http::MAX_PORTS);
    }
    // --tls-port copies handshakes through a ring of this command's own: it attaches itself.
    if !a.standalone && !a.unread_events && a.tls_ports.is_empty() {
        session::require_root()?;
        let req = crate::join::JoinRequest {
            interfaces: a.ifaces.clone(),
            json: a.json,
            context: !a.no_context,
            count: a.count,
            interval: Some(a.interval),
            top: Some(a.top),
            sort: Some(format!("{:?}", a.sort).to_lowercase()),
            tty: std::io::stdout().is_terminal() && !a.json,
            ..Default::default()
        };
        if let Some(j) = crate::join::client::try_join("flows", req)? {
            return crate::join::client::run_snapshots(j, &stop, "counting flows on", a.count);
        }
    }
    let opts = IngressOptions {
        events: a.unread_events,
        ring_bytes: if a.unread_events { 4096 } else { 1 << 16 },
        flows: true,
        flow_capacity: a.capacity,
        http_ring_bytes: if a.tls_ports.is_empty() { 0 } else { 4 << 20 },
        ..Default::default()
    };
    let (mut ing, ctx) = session::attach_then(&a.ifaces, a.xdp_mode, opts, "flows", "counting flows on", |ing| {
        if !a.tls_ports.is_empty() {
            // The first 16 KiB of each direction hold the hellos; nothing past them is copied.
            ing.enable_http(&a.tls_ports, 0).context("turning on the TLS handshake copies (TC egress)")?;
        }
        let ifindexes: Vec<u32> = ing.attached().iter().map(|x| x.ifindex).collect();
        Ok(if a.no_context { None } else { KernelContext::attach(Some((&ifindexes, a.drop_ring_size))) })
    })?;
    let mut tls = if a.tls_ports.is_empty() {
        None
    } else {
        let ring = ing.take_http_ring().context("the HTTP ring is missing from the object")?;
        Some((ring, rxray_engine::http::HttpTracker::new(rxray_engine::http::HttpConfig::default()).with_tls_ports(&a.tls_ports)))
    };
    let (mut src, mut ctx) = crate::context::with_context(LiveSource::new().with_ingress(ing, false, false)?, ctx);
    let by = match a.sort {
        SortArg::Bytes => SortBy::Bytes,
        SortArg::Packets => SortBy::Packets,
        SortArg::Rate => SortBy::Rate,
    };
    let interval = Duration::from_secs_f64(a.interval.max(0.05));
    let tty = std::io::stdout().is_terminal() && !a.json;
    let mut rates = RateTracker::default();
    let mut shown = 0u64;
    // On a terminal the table is redrawn in place (rxray-tui's LiveText, the dashboard's renderer).
    let mut live = if tty { Some(rxray_tui::term::LiveText::new().context("setting up the terminal")?) } else { None };
    loop {
        // Sleep in small steps so a signal is answered at once.
        let until = Instant::now() + interval;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let last = stop.load(Ordering::Relaxed) || a.count.is_some_and(|c| shown + 1 >= c);
        let snap = snapshot(&src, &mut rates, by)?;
        if let Some(c) = ctx.as_mut() {
            // The drops that came since the last refresh, then who reads each flow now.
            while let Some(ev) = src.next_event() {
                if let Event::Drop(d) = ev? {
                    c.on_drop(d);
                }
            }
            c.refresh(&src, true)?;
        }
        let mut facts = Vec::new();
        if let Some((ring, t)) = tls.as_mut() {
            while let Some(item) = ring.next() {
                if let Some((_, seg)) = rxray_kernel::http::segment_of(&item, &a.tls_ports) {
                    t.segment(&seg);
                }
            }
            facts = t.snapshot().tls.map(|x| x.connections).unwrap_or_default();
        }
        let mut out = std::io::stdout().lock();
        let res = if a.json {
            let v = json_snapshot(&src, &snap, src.now_ns(), ctx.as_mut(), &facts)?;
            JsonLines::new(&mut out).write(&v)
        } else {
            let t = table(&src, &snap.flows, a.top, ctx.as_mut())?;
            match live.as_mut() {
                Some(l) => l.show(&t),
                None => writeln!(out, "{t}"),
            }
        };
        if res.and_then(|_| out.flush()).is_err() {
            break;
        }
        shown += 1;
        if last {
            break;
        }
    }
    Ok(())
}
