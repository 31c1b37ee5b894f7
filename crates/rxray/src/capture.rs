//! `rxray capture`: whole packets from the kernel's capture ring, stitched from their chunks and
//! written as pcapng (one interface block per interface, nanosecond times, original lengths, and a
//! comment per packet with what pcap does not carry: the RX queue). Rotation as tcpdump's -C/-G.
use crate::{session, XdpModeArg};
use anyhow::{bail, Context, Result};
use rxray_io::write::PcapngWriter;
use rxray_engine::source::Event;
use rxray_kernel::source::CAP_SNAP_MAX;
use rxray_kernel::{IngressOptions, LiveSource};
use rxray_wire::LinkType;
use std::{
    fs::File,
    io::{self, BufWriter, Write},
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

/// Counts the bytes written, for -C.
struct Counting<W: Write> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(b)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type Sink = PcapngWriter<Counting<Box<dyn Write>>>;

struct Output {
    base: String,
    index: u64,
    snaplen: u32,
    ifaces: Vec<(u32, String)>,
    sink: Sink,
    opened: Instant,
}

/// The name of output file `index` (FILE, FILE1, FILE2, ...).
fn file_name(base: &str, index: u64) -> String {
    if index == 0 {
        base.to_string()
    } else {
        format!("{base}{index}")
    }
}

impl Output {
    /// Creates the file and writes its section header through to it, so a file that cannot take
    /// a capture (a directory, `/proc/version`, a full disk) fails here, naming itself, before
    /// anything is attached.
    fn create_sink(base: &str, index: u64) -> Result<Sink> {
        let name = file_name(base, index);
        let w: Box<dyn Write> = if base == "-" {
            Box::new(io::stdout())
        } else {
            Box::new(BufWriter::with_capacity(1 << 20, File::create(&name).with_context(|| format!("creating {name}"))?))
        };
        let mut s = PcapngWriter::new(Counting { inner: w, n: 0 }, "rxray capture").with_context(|| format!("writing {name}"))?;
        s.flush().with_context(|| format!("writing {name}"))?;
        Ok(s)
    }

    fn add_interfaces(s: &mut Sink, name: &str, snaplen: u32, ifaces: &[(u32, String)]) -> Result<()> {
        for (_, iface) in ifaces {
            s.add_interface(iface, LinkType::ETHERNET, snaplen).with_context(|| format!("writing {name}"))?;
        }
        Ok(())
    }

    fn name(&self) -> String {
        file_name(&self.base, self.index)
    }

    /// Writes one packet, with its comment (the RX queue; where a request starts, its request
    /// line as `rxray watch` shows it). `Ok(false)`: the reader went away (`-w -` into a closed pipe).
    fn write(&mut self, idb: u32, ts_ns: u64, orig_len: u32, rx_queue: u32, data: &[u8]) -> Result<bool> {
        let mut comment = format!("rxq={rx_queue}");
        if let Some(seg) = rxray_wire::dissect::tcp_segment(data, LinkType::ETHERNET, orig_len) {
            if let Some(rl) = rxray_wire::http::request_line(&data[seg.payload]) {
                comment.push_str(" http=");
                comment.push_str(&rl);
            }
        }
        match self.sink.write_packet(idb, ts_ns, orig_len, data, Some(&comment)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(e).with_context(|| format!("writing {}", self.name())),
        }
    }

    /// After a packet: a new file once this one holds `-C` million bytes.
    fn after_write(&mut self, file_size_mb: Option<u64>) -> Result<()> {
        if file_size_mb.is_some_and(|mb| self.sink.get_ref().n >= mb * 1_000_000) {
            self.rotate()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        self.sink.flush().with_context(|| format!("writing {}", self.name()))?;
        self.index += 1;
        let name = self.name();
        self.sink = Self::create_sink(&self.base, self.index)?;
        Self::add_interfaces(&mut self.sink, &name, self.snaplen, &self.ifaces)?;
        self.opened = Instant::now();
        Ok(())
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
    let mut sink = Output::create_sink(&a.file, 0)?;
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
            let ifaces: Vec<(u32, String)> = a.ifaces.iter().map(|i| (0, i.clone())).collect();
            Output::add_interfaces(&mut sink, &a.file, a.snaplen, &ifaces)?;
            let out = Output { base: a.file.clone(), index: 0, snaplen: a.snaplen, sink, ifaces, opened: Instant::now() };
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
    Output::add_interfaces(&mut sink, &a.file, a.snaplen, &ifaces)?;
    let mut out = Output { base: a.file.clone(), index: 0, snaplen: a.snaplen, sink, ifaces: ifaces.clone(), opened: Instant::now() };
    let mut written = 0u64;
    let mut pump = session::Pump::new(&stop);
    loop {
        while let Some(ev) = pump.next(&mut src) {
            let Event::Frame(f) = ev? else { continue };
            let iface = idb(f.ifindex).unwrap_or(0);
            if !out.write(iface, f.ts_ns, f.orig_len, f.rx_queue, f.data)? {
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
        if a.rotate_secs.is_some_and(|s| out.opened.elapsed() >= Duration::from_secs(s)) {
            out.rotate()?;
        }
        if out.sink.flush().is_err() {
            pump.finish();
        }
        if !pump.again(&mut src) {
            break;
        }
    }
    out.sink.flush().with_context(|| format!("writing {}", out.name()))?;
    let t = crate::flows::totals(&src)?;
    eprintln!(
        "{} packets captured, {} lost (capture ring full), {} incomplete, {} files",
        written,
        t.capture_lost,
        src.frames_incomplete(),
        out.index + 1
    );
    Ok(())
}

/// `capture` joined to the agent: the agent sends the packets of its capture ring that this
/// client's interfaces, filter and snap length take; this writes them as the standalone capture
/// does (the same pcapng: interfaces, times, lengths, comments, rotation).
fn run_joined(a: &CaptureArgs, mut j: crate::join::client::Joined, mut out: Output, stop: &std::sync::atomic::AtomicBool) -> Result<()> {
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
            if !out.write(p.idb, p.ts_ns, p.orig_len, p.rx_queue, p.data)? {
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
        if a.rotate_secs.is_some_and(|s| out.opened.elapsed() >= Duration::from_secs(s)) {
            out.rotate()?;
        }
        if out.sink.flush().is_err() {
            writing = false;
        }
    }
    out.sink.flush().with_context(|| format!("writing {}", out.name()))?;
    let s = j.summary.take().unwrap_or_default();
    let lost = |k: &str| s[k].as_u64().map_or("?".to_string(), |n| n.to_string());
    eprintln!(
        "{} packets captured, {} lost (capture ring full), {} lost (this client's queue in the agent full), {} files",
        written,
        lost("capture_lost"),
        lost("lost_queue"),
        out.index + 1
    );
    Ok(())
}
