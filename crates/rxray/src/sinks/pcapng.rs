//! pcapng sinks: captured packets into pcapng files (`rxray capture`, standalone or joined; one
//! interface block per interface, nanosecond times, original lengths, a comment per packet;
//! rotation as tcpdump's -C/-G), and the flight recorder's recordings, one file each.
use super::Sink;
use rxray_engine::recorder::Recording;
use rxray_io::write::PcapngWriter;
use rxray_wire::LinkType;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One captured packet, as the capture sink takes it.
pub struct Captured<'a> {
    /// The interface's number in the file (the order `add_interfaces` was given them in).
    pub idb: u32,
    pub ts_ns: u64,
    pub orig_len: u32,
    pub rx_queue: u32,
    pub data: &'a [u8],
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

type Writer = PcapngWriter<Counting<Box<dyn Write>>>;

/// Captured packets as pcapng, in FILE, FILE1, FILE2, ... (`-` writes to stdout, one file).
pub struct Pcapng {
    base: String,
    index: u64,
    snaplen: u32,
    ifaces: Vec<String>,
    w: Writer,
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

/// An I/O error that names the file it happened on.
fn on(name: &str, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {name}: {e}"))
}

impl Pcapng {
    /// Creates the file and writes its section header through to it, so a file that cannot take
    /// a capture (a directory, `/proc/version`, a full disk) fails here, naming itself, before
    /// anything is attached.
    pub fn create(base: &str, snaplen: u32) -> io::Result<Pcapng> {
        Ok(Pcapng { base: base.to_string(), index: 0, snaplen, ifaces: Vec::new(), w: Self::open(base, 0)?, opened: Instant::now() })
    }

    fn open(base: &str, index: u64) -> io::Result<Writer> {
        let name = file_name(base, index);
        let w: Box<dyn Write> = if base == "-" {
            Box::new(io::stdout())
        } else {
            Box::new(BufWriter::with_capacity(1 << 20, File::create(&name).map_err(|e| on(&name, "creating", e))?))
        };
        let mut s = PcapngWriter::new(Counting { inner: w, n: 0 }, "rxray capture").map_err(|e| on(&name, "writing", e))?;
        s.flush().map_err(|e| on(&name, "writing", e))?;
        Ok(s)
    }

    /// The interfaces, in the order of their `idb` numbers (each file of a rotation gets them all).
    pub fn add_interfaces(&mut self, ifaces: &[String]) -> io::Result<()> {
        self.ifaces = ifaces.to_vec();
        self.write_interfaces()
    }

    fn write_interfaces(&mut self) -> io::Result<()> {
        for iface in &self.ifaces {
            self.w.add_interface(iface, LinkType::ETHERNET, self.snaplen).map_err(|e| on(&file_name(&self.base, self.index), "writing", e))?;
        }
        Ok(())
    }

    /// The file being written.
    pub fn name(&self) -> String {
        file_name(&self.base, self.index)
    }

    /// Files written so far (this one included).
    pub fn files(&self) -> u64 {
        self.index + 1
    }

    /// After a packet: a new file once this one holds `file_size_mb` million bytes (-C).
    pub fn after_write(&mut self, file_size_mb: Option<u64>) -> io::Result<()> {
        if file_size_mb.is_some_and(|mb| self.w.get_ref().n >= mb * 1_000_000) {
            self.rotate()?;
        }
        Ok(())
    }

    /// A new file once this one is `rotate_secs` old (-G).
    pub fn tick(&mut self, rotate_secs: Option<u64>) -> io::Result<()> {
        if rotate_secs.is_some_and(|s| self.opened.elapsed() >= Duration::from_secs(s)) {
            self.rotate()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.flush()?;
        self.index += 1;
        self.w = Self::open(&self.base, self.index)?;
        self.write_interfaces()?;
        self.opened = Instant::now();
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush().map_err(|e| on(&self.name(), "writing", e))
    }
}

/// Writes one packet, with its comment (the RX queue; where a request starts, its request line as
/// `rxray watch` shows it). A reader that went away (`-w -` into a closed pipe) is a `BrokenPipe`
/// error, as it came; other errors name the file.
impl Sink<Captured<'_>> for Pcapng {
    fn write(&mut self, p: &Captured<'_>) -> io::Result<()> {
        let mut comment = format!("rxq={}", p.rx_queue);
        if let Some(seg) = rxray_wire::dissect::tcp_segment(p.data, LinkType::ETHERNET, p.orig_len) {
            if let Some(rl) = rxray_wire::http::request_line(&p.data[seg.payload]) {
                comment.push_str(" http=");
                comment.push_str(&rl);
            }
        }
        match self.w.write_packet(p.idb, p.ts_ns, p.orig_len, p.data, Some(&comment)) {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(on(&self.name(), "writing", e)),
            r => r,
        }
    }
}

/// The flight recorder's recordings, each a pcapng file in one directory (named by the recording).
pub struct Recordings {
    dir: PathBuf,
    /// Files written.
    pub written: u64,
}

impl Recordings {
    /// Recordings into `dir` (created when missing).
    pub fn create(dir: &Path) -> io::Result<Recordings> {
        std::fs::create_dir_all(dir).map_err(|e| on(&dir.display().to_string(), "creating", e))?;
        Ok(Recordings { dir: dir.to_path_buf(), written: 0 })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Sink<Recording> for Recordings {
    fn write(&mut self, r: &Recording) -> io::Result<()> {
        let path = self.dir.join(r.file_name());
        let name = path.display().to_string();
        let f = File::create(&path).map_err(|e| on(&name, "writing", e))?;
        rxray_io::write::write_recording(BufWriter::new(f), r, LinkType::ETHERNET).map_err(|e| on(&name, "writing", e))?;
        self.written += 1;
        Ok(())
    }
}
