//! `rxray watch`: attach the XDP ingress program and print every packet it reports.
use crate::{
    context::{KernelContext, ReaderOut},
    line, session, XdpModeArg,
};
use anyhow::{bail, Context as _, Result};
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
            let res = if a.json {
                let o = PacketOut { pkt, context };
                serde_json::to_writer(&mut out, &o).map_err(io::Error::from).and_then(|_| out.write_all(b"\n"))
            } else {
                match context.and_then(|c| c.reader) {
                    Some(r) => writeln!(
                        out,
                        "{} [pid {} {} cgroup {}]",
                        line::format(pkt),
                        r.pid,
                        r.comm,
                        r.cgroup.as_deref().unwrap_or("?")
                    ),
                    None => writeln!(out, "{}", line::format(pkt)),
                }
            };
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

/// The kernel context of one packet: the process that read its flow so far (null: none yet).
#[derive(serde::Serialize)]
struct PacketContext {
    reader: Option<ReaderOut>,
}

#[derive(serde::Serialize)]
struct PacketOut<'a> {
    #[serde(flatten)]
    pkt: &'a rxray_engine::event::Packet,
    #[serde(flatten)]
    context: Option<PacketContext>,
}

fn print_summary(t: &Totals, delivered: u64, took: Duration, json: bool, filtering: bool) {
    let by = t.malformed_named();
    if json {
        let m: serde_json::Map<String, serde_json::Value> =
            by.iter().map(|(k, n)| (k.to_string(), serde_json::Value::from(*n))).collect();
        let v = serde_json::json!({"summary": {
            "packets": t.packets, "bytes": t.bytes, "delivered": delivered, "lost": t.lost,
            "malformed": t.malformed, "malformed_by": m, "filtered": t.filtered, "seconds": took.as_secs_f64(),
        }});
        eprintln!("{v}");
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
