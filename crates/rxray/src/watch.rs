//! `rxray watch`: attach the XDP ingress program and print every packet it reports.
use crate::{
    context::KernelContext,
    line, session, XdpModeArg,
};
use anyhow::{bail, Context as _, Result};
pub use crate::records::watch::PacketContext;
use crate::records::watch::{PacketOut, WatchJoinedSummary, WatchSummary};
use crate::records::Summary;
use crate::sinks::{JsonLines, Sink};
use crate::join::JoinRequest;
use rxray_engine::source::Event;
use rxray_kernel::source::{PAYLOAD_DEFAULT, PAYLOAD_MAX};
use rxray_kernel::{IngressOptions, LiveSource, Totals};
use std::{
    io::{self, Write},
    time::{Duration, Instant},
};

#[derive(clap::Args)]
pub struct WatchArgs {
    /// Interface to watch (repeatable). Default: every interface that is up, except loopback.
    #[arg(short = 'i', long = "interface")]
    pub ifaces: Vec<String>,
    /// Print JSON Lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// Exit after this many packets.
    #[arg(short = 'c', long = "count")]
    pub count: Option<u64>,
    /// Where to attach: auto (per device: TC ingress on veth and virtio_net, native XDP on NICs
    /// that keep GRO with it), native, generic or tc.
    #[arg(long = "xdp-mode", value_enum, default_value = "auto")]
    pub xdp_mode: XdpModeArg,
    /// Payload bytes to copy per packet (0..=256).
    #[arg(short = 's', long = "snap", default_value_t = PAYLOAD_DEFAULT)]
    pub snap: u32,
    /// Ring-buffer size: bytes or a size such as 8MiB, a power of two from 4 KiB to 1 GiB.
    #[arg(long = "ring-size", default_value_t = 8 << 20, value_parser = crate::args::ring_size)]
    pub ring_size: u32,
    /// Test aid: wait this long after attaching before reading events (forces ring-buffer loss).
    #[arg(long = "stall-ms", hide = true, default_value_t = 0)]
    pub stall_ms: u64,
    /// Do not attach the kernel context (the process that read each packet's flow): saves a
    /// tracing program run per recvmsg on this host (README, "Kernel context").
    #[arg(long = "no-context")]
    pub no_context: bool,
    /// Attach even when an agent runs here (by default a command joins the agent of its network
    /// namespace when it owns the interfaces asked for; docs/agent.md, "Joining the agent").
    #[arg(long)]
    pub standalone: bool,
    /// Test aid: a smaller queue in the agent for this joined client (events).
    #[arg(long = "join-queue", hide = true)]
    pub join_queue: Option<usize>,
    /// Filter expression in tcpdump syntax (the words are joined), evaluated in the XDP program:
    /// packets it rejects never reach user space. E.g. `rxray watch -i eth0 udp and dst port 53`.
    #[arg(trailing_var_arg = true, value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// The trailing words of a command, joined like tcpdump does, parsed; `None` when there are none.
pub fn filter_from_words(words: &[String]) -> Result<Option<rxray_engine::filter::Filter>> {
    if words.is_empty() {
        return Ok(None);
    }
    let text = words.join(" ");
    rxray_engine::filter::Filter::parse(&text).map(Some).map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn run(a: WatchArgs) -> Result<()> {
    if a.snap > PAYLOAD_MAX {
        bail!("--snap {} is more than the {} payload bytes an event carries", a.snap, PAYLOAD_MAX);
    }
    let filter = filter_from_words(&a.filter)?;
    if let Some(f) = &filter {
        rxray_kernel::filter::compile(f)?;
    }
    let filtering = filter.is_some();
    let stop = session::stop_flag()?;
    if !a.standalone {
        session::require_root()?;
        let req = JoinRequest {
            interfaces: a.ifaces.clone(),
            filter: (!a.filter.is_empty()).then(|| a.filter.join(" ")),
            json: a.json,
            snap: a.snap,
            context: !a.no_context,
            count: a.count,
            queue: a.join_queue,
            ..Default::default()
        };
        if let Some(j) = crate::join::client::try_join("watch", req)? {
            return run_joined(&a, j, &stop);
        }
    }
    let opts = IngressOptions { ring_bytes: a.ring_size, payload_snap: a.snap, events: true, flows: false, filter, ..Default::default() };
    let (ingress, ctx) = session::attach_then(&a.ifaces, a.xdp_mode, opts, "watch", "watching", |_| {
        Ok(if a.no_context { None } else { KernelContext::attach(None) })
    })?;
    if a.stall_ms > 0 {
        std::thread::sleep(Duration::from_millis(a.stall_ms));
    }

    let (mut src, mut ctx) = crate::context::with_context(LiveSource::new().with_ingress(ingress, true, false)?, ctx);
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut delivered = 0u64;
    let start = Instant::now();
    let mut pump = session::Pump::new(&stop);
    loop {
        if let Some(c) = ctx.as_mut() {
            c.refresh(&src, false)?;
        }
        while let Some(ev) = pump.next(&mut src) {
            let pkt = match ev? {
                Event::Packet(p) => p,
                Event::Drop(d) => {
                    if let Some(c) = ctx.as_mut() {
                        c.on_drop(d);
                    }
                    continue;
                }
                _ => continue,
            };
            delivered += 1;
            let context = ctx.as_mut().map(|c| PacketContext { reader: c.reader_of(pkt) });
            let res = render(&mut out, pkt, context, a.json);
            // stdout closed (e.g. `| head`): stop quietly.
            if res.is_err() || a.count.is_some_and(|c| delivered >= c) {
                pump.finish();
            }
        }
        if out.flush().is_err() {
            pump.finish();
        }
        if !pump.again(&mut src) {
            break;
        }
    }
    drop(out);
    let totals = src.ingress().context("no ingress program")?.totals()?;
    print_summary(&totals, delivered, start.elapsed(), a.json, filtering);
    Ok(())
}

/// `watch` joined to the agent: the agent filters and renders; this prints and sums up.
fn run_joined(a: &WatchArgs, j: crate::join::client::Joined, stop: &std::sync::atomic::AtomicBool) -> Result<()> {
    eprintln!(
        "rxray: watching {} (joined the agent of {}, client {}); Ctrl-C to stop",
        j.hello.interfaces.join(", "),
        j.hello.host,
        j.hello.id
    );
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let o = j.run(stop, &mut out, a.count, Duration::from_millis(a.stall_ms))?;
    drop(out);
    let Some(s) = o.summary else {
        eprintln!("\n{} delivered; the agent went away before its summary", o.delivered);
        return Ok(());
    };
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    let (ring, queue) = (n("lost_ring"), n("lost_queue"));
    if a.json {
        let summary = WatchJoinedSummary {
            bytes: n("bytes"),
            delivered: o.delivered,
            filtered: n("filtered"),
            joined: true,
            lost: ring + queue,
            lost_queue: queue,
            lost_ring: ring,
            malformed: n("malformed"),
            malformed_by: s["malformed_by"].clone(),
            packets: n("packets"),
            seconds: o.took.as_secs_f64(),
        };
        let _ = JsonLines::new(io::stderr()).write(&Summary { summary });
    } else {
        let by: Vec<String> = s["malformed_by"].as_object().into_iter().flatten().map(|(k, v)| format!("{k} {v}")).collect();
        let mal = if by.is_empty() { String::new() } else { format!(" ({})", by.join(", ")) };
        let filtered = if s["filtering"] == true { format!(", {} filtered out", n("filtered")) } else { String::new() };
        eprintln!(
            "\n{} packets seen, {} delivered, {} lost ({ring} ring buffer full, {queue} this client's queue in the agent full), {} malformed{mal}{filtered}",
            n("packets"),
            o.delivered,
            ring + queue,
            n("malformed")
        );
    }
    Ok(())
}

/// One packet as `watch` prints it: a text line or a JSON line. The agent renders a joined
/// `watch`'s lines with this same function, so joined and standalone output are the same.
pub fn render(out: &mut impl Write, pkt: &rxray_engine::event::Packet, context: Option<PacketContext>, json: bool) -> io::Result<()> {
    if json {
        JsonLines::new(out).write(&PacketOut { pkt, context })
    } else {
        match context.and_then(|c| c.reader) {
            Some(r) => writeln!(out, "{} [pid {} {} cgroup {}]", line::format(pkt), r.pid, r.comm, r.cgroup.as_deref().unwrap_or("?")),
            None => writeln!(out, "{}", line::format(pkt)),
        }
    }
}

fn print_summary(t: &Totals, delivered: u64, took: Duration, json: bool, filtering: bool) {
    let by = t.malformed_named();
    if json {
        let summary = WatchSummary {
            bytes: t.bytes,
            delivered,
            filtered: t.filtered,
            lost: t.lost,
            malformed: t.malformed,
            malformed_by: by.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            packets: t.packets,
            seconds: took.as_secs_f64(),
        };
        let _ = JsonLines::new(io::stderr()).write(&Summary { summary });
    } else {
        let mal = if by.is_empty() {
            String::new()
        } else {
            format!(" ({})", by.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "))
        };
        let filtered = if filtering { format!(", {} filtered out", t.filtered) } else { String::new() };
        eprintln!(
            "\n{} packets seen, {} delivered, {} lost (ring buffer full), {} malformed{mal}{filtered}",
            t.packets, delivered, t.lost, t.malformed
        );
    }
}
