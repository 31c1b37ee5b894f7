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
            let mut comment = format!("rxq={}", f.rx_queue);
            // Where a request starts, its request line (as `rxray watch` shows it).
            if let Some(seg) = rxray_wire::dissect::tcp_segment(f.data, LinkType::ETHERNET, f.orig_len) {
                if let Some(rl) = rxray_wire::http::request_line(&f.data[seg.payload]) {
                    comment.push_str(" http=");
                    comment.push_str(&rl);
                }
            }
            let r = out.sink.write_packet(iface, f.ts_ns, f.orig_len, f.data, Some(&comment));
            if let Err(e) = r {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    pump.finish();
                    break;
                }
                return Err(e).with_context(|| format!("writing {}", out.name()));
            }
            written += 1;
            if a.count.is_some_and(|c| written >= c) {
                pump.finish();
                break;
            }
            if a.file_size_mb.is_some_and(|mb| out.sink.get_ref().n >= mb * 1_000_000) {
                out.rotate()?;
            }
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
