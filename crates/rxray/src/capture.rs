//! `rxray capture`: whole packets from the kernel's capture ring, stitched from their chunks and
//! written as pcapng (one interface block per interface, nanosecond times, original lengths, and a
//! comment per packet with what pcap does not carry: the RX queue). Rotation as tcpdump's -C/-G.
use crate::{session, XdpModeArg};
use anyhow::{bail, Context, Result};
use crate::sinks::pcapng::{Captured, Pcapng};
use crate::sinks::Sink;
use rxray_engine::source::Event;
use rxray_kernel::source::CAP_SNAP_MAX;
use rxray_kernel::{IngressOptions, LiveSource};
use std::{
    io,
    time::{Duration, Instant},
};

#[derive(clap::Args)]
pub struct CaptureArgs {
    /// Interface to capture on (repeatable).
    #[arg(short = 'i', long = "interface", required = true)]
    pub ifaces: Vec<String>,
    /// Output file (pcapng); `-` writes to stdout.
    #[arg(short = 'w', long = "write")]
    pub file: String,
    /// Bytes captured per packet (1..=262144).
    #[arg(short = 's', long = "snaplen", default_value_t = CAP_SNAP_MAX)]
    pub snaplen: u32,
    /// Exit after this many packets.
    #[arg(short = 'c', long = "count")]
    pub count: Option<u64>,
    /// Start a new file once this one holds this many million bytes (FILE, FILE1, FILE2, ...).
    #[arg(short = 'C', long = "file-size")]
    pub file_size_mb: Option<u64>,
    /// Start a new file every this many seconds (FILE, FILE1, FILE2, ...).
    #[arg(short = 'G', long = "rotate-seconds")]
    pub rotate_secs: Option<u64>,
    /// Where to attach: auto (per device: TC ingress on veth and virtio_net, native XDP on NICs
    /// that keep GRO with it), native, generic or tc.
    #[arg(long = "xdp-mode", value_enum, default_value = "auto")]
    pub xdp_mode: XdpModeArg,
    /// Capture ring size: bytes or a size such as 32MiB, a power of two from 4 KiB to 1 GiB.
    #[arg(long = "ring-size", default_value_t = 32 << 20, value_parser = crate::args::ring_size)]
    pub ring_size: u32,
    /// Filter expression in tcpdump syntax (the words are joined), evaluated in the XDP program:
    /// only matching packets are captured. E.g. `rxray capture -i eth0 -w x.pcapng tcp port 443`.
    #[arg(trailing_var_arg = true, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Attach even when an agent owns the interfaces (by default `capture` joins it and writes
    /// the packets of its capture ring; docs/agent.md, "Joining the agent").
    #[arg(long)]
    pub standalone: bool,
}

/// Writes one packet to the sink; `Ok(false)`: the reader went away (`-w -` into a closed pipe).
fn write(out: &mut Pcapng, p: &Captured) -> Result<bool> {
    match out.write(p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub fn run(a: CaptureArgs) -> Result<()> {
    if a.snaplen == 0 || a.snaplen > CAP_SNAP_MAX {
        bail!("-s {}: the snap length must be 1..={}", a.snaplen, CAP_SNAP_MAX);
    }
    if a.file == "-" && (a.file_size_mb.is_some() || a.rotate_secs.is_some()) {
        bail!("-C and -G rotate files; they cannot be used with -w -");
    }
    let filter = crate::watch::filter_from_words(&a.filter)?;
    if let Some(f) = &filter {
        rxray_kernel::filter::compile(f)?;
    }
    let stop = session::stop_flag()?;
    // The output first: a file that cannot be written fails before anything is attached.
    let mut out = Pcapng::create(&a.file, a.snaplen)?;
    if !a.standalone {
        session::require_root()?;
        let req = crate::join::JoinRequest {
            interfaces: a.ifaces.clone(),
            filter: (!a.filter.is_empty()).then(|| a.filter.join(" ")),
            snap: a.snaplen,
            count: a.count,
            ..Default::default()
        };
        if let Some(j) = crate::join::client::try_join("capture", req)? {
            out.add_interfaces(&a.ifaces)?;
            return run_joined(&a, j, out, &stop);
        }
    }
    let opts = IngressOptions {
        filter,
        events: false,
        flows: false,
        capture: true,
        capture_snap: a.snaplen,
        capture_ring_bytes: a.ring_size,
        ring_bytes: 4096,
        ..Default::default()
    };
    let ing = session::attach(&a.ifaces, a.xdp_mode, opts, "capture", "capturing on")?;
    let ifaces: Vec<(u32, String)> = ing.attached().iter().map(|x| (x.ifindex, x.iface.clone())).collect();
    let idb = |ifindex: u32| ifaces.iter().position(|(i, _)| *i == ifindex).map(|p| p as u32);
    let mut src = LiveSource::new().with_ingress(ing, false, true).context("the capture ring")?;
    out.add_interfaces(&ifaces.iter().map(|(_, i)| i.clone()).collect::<Vec<_>>())?;
    let mut written = 0u64;
    let mut pump = session::Pump::new(&stop);
    loop {
        while let Some(ev) = pump.next(&mut src) {
            let Event::Frame(f) = ev? else { continue };
            let iface = idb(f.ifindex).unwrap_or(0);
            if !write(&mut out, &Captured { idb: iface, ts_ns: f.ts_ns, orig_len: f.orig_len, rx_queue: f.rx_queue, data: f.data })? {
                pump.finish();
                break;
            }
            written += 1;
            if a.count.is_some_and(|c| written >= c) {
                pump.finish();
                break;
            }
            out.after_write(a.file_size_mb)?;
        }
        out.tick(a.rotate_secs)?;
        if out.flush().is_err() {
            pump.finish();
        }
        if !pump.again(&mut src) {
            break;
        }
    }
    out.flush()?;
    let t = crate::flows::totals(&src)?;
    eprintln!(
        "{} packets captured, {} lost (capture ring full), {} incomplete, {} files",
        written,
        t.capture_lost,
        src.frames_incomplete(),
        out.files()
    );
    Ok(())
}

/// `capture` joined to the agent: the agent sends the packets of its capture ring that this
/// client's interfaces, filter and snap length take; this writes them as the standalone capture
/// does (the same pcapng: interfaces, times, lengths, comments, rotation).
fn run_joined(a: &CaptureArgs, mut j: crate::join::client::Joined, mut out: Pcapng, stop: &std::sync::atomic::AtomicBool) -> Result<()> {
    eprintln!("rxray: capturing on {} (joined the agent of {}, client {}); Ctrl-C to stop", a.ifaces.join(", "), j.hello.host, j.hello.id);
    let mut written = 0u64;
    let mut bye: Option<Instant> = None;
    let mut writing = true;
    loop {
        if bye.is_none() && (!writing || stop.load(std::sync::atomic::Ordering::Relaxed)) {
            j.say_bye();
            bye = Some(Instant::now() + Duration::from_secs(3));
        }
        if bye.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let Some(records) = j.poll_out(Duration::from_millis(100))? else { break };
        for r in &records {
            if !writing {
                break;
            }
            let Some(p) = crate::join::views::parse_capture_record(r) else {
                bail!("the agent sent a capture record of {} bytes (shorter than its 20-byte header)", r.len());
            };
            if !write(&mut out, &Captured { idb: p.idb, ts_ns: p.ts_ns, orig_len: p.orig_len, rx_queue: p.rx_queue, data: p.data })? {
                writing = false;
                break;
            }
            written += 1;
            if a.count.is_some_and(|c| written >= c) {
                writing = false;
                break;
            }
            out.after_write(a.file_size_mb)?;
        }
        out.tick(a.rotate_secs)?;
        if out.flush().is_err() {
            writing = false;
        }
    }
    out.flush()?;
    let s = j.summary.take().unwrap_or_default();
    let lost = |k: &str| s[k].as_u64().map_or("?".to_string(), |n| n.to_string());
    eprintln!(
        "{} packets captured, {} lost (capture ring full), {} lost (this client's queue in the agent full), {} files",
        written,
        lost("capture_lost"),
        lost("lost_queue"),
        out.files()
    );
    Ok(())
}
