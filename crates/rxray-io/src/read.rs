//! Streaming capture reader: classic pcap (micro/nano, either byte order) and pcapng (SHB in either
//! byte order, IDB with if_tsresol, EPB, SPB, OPB; unknown blocks skipped), from any `Read`.
//!
//! Written here rather than taken from the `pcap-file` crate because rxray needs, on a damaged file,
//! an error naming the byte offset and the fault after every good record was yielded, and a reader
//! that never panics on any input and reuses one buffer for all records.
use rxray_wire::LinkType;
use std::io::{self, BufReader, Read};

/// No record or block may claim more than this (a corrupt length would otherwise drive a huge read).
pub const MAX_RECORD: usize = 64 << 20;

/// A fault in a capture file: what was wrong, and where.
#[derive(Debug, thiserror::Error)]
#[error("{what} at byte offset {offset}")]
pub struct ReadError {
    /// Byte offset of the record or block that could not be read (0 for the file header).
    pub offset: u64,
    pub what: String,
}

fn err<T>(offset: u64, what: impl Into<String>) -> Result<T, ReadError> {
    Err(ReadError { offset, what: what.into() })
}

/// One captured packet. `data` borrows the reader's buffer until the next call.
#[derive(Debug)]
pub struct Record<'a> {
    /// Unix-epoch nanoseconds (0 for pcapng simple packet blocks, which carry no time).
    pub ts_ns: u64,
    pub linktype: LinkType,
    /// The pcapng interface (0 for classic pcap).
    pub iface_id: u32,
    /// Length on the wire; `data` may be shorter (snap length).
    pub orig_len: u32,
    pub data: &'a [u8],
    /// The interface's name, when the pcapng says (if_name).
    pub iface_name: Option<&'a str>,
    /// The receive queue, when the pcapng record says (epb_queue).
    pub queue: Option<u32>,
    /// Byte offset of the record in the file.
    pub offset: u64,
}

/// Timestamp units of an interface: 10^-n or 2^-n seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsResol {
    Pow10(u8),
    Pow2(u8),
}

impl TsResol {
    /// `ts` units in nanoseconds; `None` when that is past what a u64 holds (the year 2554).
    /// Every step is checked: a wrapped time is worse than none (2^40+3 at 2^-0 s once printed
    /// as the year 2323, and 2^63 as 1970).
    pub fn to_ns(self, ts: u64) -> Option<u64> {
        let ns: u128 = match self {
            TsResol::Pow10(n) if n <= 9 => (ts as u128).checked_mul(10u128.pow(9 - n as u32))?,
            // if_tsresol is checked to be at most 10^-38 when read, so the power fits in a u128.
            TsResol::Pow10(n) => ts as u128 / 10u128.checked_pow(n as u32 - 9)?,
            // ts < 2^64 and 10^9 < 2^30: the product fits in a u128; n is at most 127.
            TsResol::Pow2(n) => (ts as u128 * 1_000_000_000) >> n,
        };
        u64::try_from(ns).ok()
    }

    /// Unix-epoch nanoseconds of `ts` with the interface's if_tsoffset (seconds, signed), or
    /// `None` when the result is before 1970 or after 2554.
    pub fn to_unix_ns(self, ts: u64, offset_s: i64) -> Option<u64> {
        let ns = self.to_ns(ts)? as i128 + offset_s as i128 * 1_000_000_000;
        u64::try_from(ns).ok()
    }
}

impl std::fmt::Display for TsResol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TsResol::Pow10(n) => write!(f, "10^-{n} s"),
            TsResol::Pow2(n) => write!(f, "2^-{n} s"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Interface {
    pub linktype: LinkType,
    pub snaplen: u32,
    pub name: Option<String>,
    pub tsresol: TsResol,
    /// if_tsoffset: seconds added to every timestamp.
    pub tsoffset_s: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pcap { nanos: bool, big_endian: bool },
    Pcapng,
}

/// Reads records one at a time; after an error it yields nothing more.
///
/// Over a regular file ([`CaptureReader::open`]) the reader maps the file and hands out records
/// straight from the mapping: no copy into a buffer, and pages already read are given back to the
/// kernel every [`RELEASE_BYTES`], so resident memory stays small whatever the file's size.
pub struct CaptureReader<R: Read> {
    r: BufReader<R>,
    /// The mapped file, when reading a regular file.
    map: Option<Mapped>,
    pos: u64,
    format: Format,
    /// Byte order of the current pcapng section (or of the pcap file).
    big_endian: bool,
    ifaces: Vec<Interface>,
    buf: Vec<u8>,
    /// In a mapped file: the current block's body (what `buf` holds otherwise).
    win: (usize, usize),
    done: bool,
}

/// Pages behind the reading position are released in steps of this many bytes.
pub const RELEASE_BYTES: usize = 16 << 20;

/// Pages ahead of the reading position are mapped in steps of this many bytes (one
/// MADV_POPULATE_READ), rather than one page fault per few pages as the reading reaches them.
const POPULATE_BYTES: usize = 2 << 20;

struct Mapped {
    map: memmap2::Mmap,
    /// Bytes before this offset have been released.
    released: usize,
    /// Released in steps of this many bytes ([`RELEASE_BYTES`]).
    step: usize,
    /// Bytes before this offset have been populated (0 and never again once the kernel refused).
    populated: usize,
}

impl Mapped {
    /// Gives back the pages wholly before `upto` (nothing that a live record still borrows).
    fn release(&mut self, upto: usize) {
        if upto + POPULATE_BYTES / 2 > self.populated && self.populated < self.map.len() {
            let n = POPULATE_BYTES.min(self.map.len() - self.populated);
            // Only a hint: a kernel without MADV_POPULATE_READ (before 5.14) faults pages in as before.
            match self.map.advise_range(memmap2::Advice::PopulateRead, self.populated, n) {
                Ok(()) => self.populated += n,
                Err(_) => self.populated = self.map.len(),
            }
        }
        let page = 4096;
        let end = upto / page * page;
        if end < self.released + self.step {
            return;
        }
        // SAFETY: the mapping is private and read-only, and no slice into [released, end) is alive:
        // records borrow the reader, and this runs before the next record is read. Touching these
        // pages again would only fault them back in from the file.
        let _ = unsafe { self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, self.released, end - self.released) };
        self.released = end;
    }
}

/// Asks the CPU for the bytes a few records ahead of `from`: reading a mapped file record by
/// record, each record's first line would otherwise come from memory only when it is reached.
#[inline]
fn prefetch_ahead(map: &[u8], from: usize) {
    const AHEAD: usize = 2048;
    #[cfg(target_arch = "x86_64")]
    if let Some(b) = map.get(from + AHEAD..from + AHEAD + 128) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of x86_64; a prefetch is a hint that never faults, and of bytes
        // within the mapping at that.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().cast());
            _mm_prefetch::<_MM_HINT_T0>(b[64..].as_ptr().cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (map, from);
}

fn u16_at(b: &[u8], at: usize, be: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if be { u16::from_be_bytes(s) } else { u16::from_le_bytes(s) })
}

fn u32_at(b: &[u8], at: usize, be: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if be { u32::from_be_bytes(s) } else { u32::from_le_bytes(s) })
}

fn u64_at(b: &[u8], at: usize, be: bool) -> Option<u64> {
    let s: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
    Some(if be { u64::from_be_bytes(s) } else { u64::from_le_bytes(s) })
}

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const OPB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

fn block_name(t: u32) -> &'static str {
    match t {
        SHB => "section header block",
        IDB => "interface description block",
        OPB => "packet block",
        SPB => "simple packet block",
        EPB => "enhanced packet block",
        _ => "block",
    }
}

/// pcapng options (code, value) in `b`; stops at opt_endofopt or at the end, errors on overrun.
fn options(b: &[u8], be: bool) -> impl Iterator<Item = Result<(u16, &[u8]), ()>> {
    let mut i = 0usize;
    std::iter::from_fn(move || {
        if i + 4 > b.len() {
            return None;
        }
        let code = u16_at(b, i, be)?;
        let len = u16_at(b, i + 2, be)? as usize;
        if code == 0 {
            return None;
        }
        let Some(v) = b.get(i + 4..i + 4 + len) else {
            i = b.len();
            return Some(Err(()));
        };
        i += 4 + len.div_ceil(4) * 4;
        Some(Ok((code, v)))
    })
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header (pcap) or the first section header (pcapng).
    pub fn new(inner: R) -> Result<Self, ReadError> {
        Self::with_input(BufReader::with_capacity(1 << 20, inner), None)
    }

    fn with_input(r: BufReader<R>, map: Option<Mapped>) -> Result<Self, ReadError> {
        let mut me = CaptureReader {
            r,
            map,
            pos: 0,
            format: Format::Pcapng,
            big_endian: false,
            ifaces: Vec::new(),
            buf: Vec::with_capacity(1 << 16),
            win: (0, 0),
            done: false,
        };
        let mut m = [0u8; 4];
        let got = me.read_upto(&mut m, 0)?;
        if got == 0 {
            return err(0, "empty file: not a pcap or pcapng capture");
        }
        if got < 4 {
            return err(0, format!("file too short for a capture header ({got} bytes)"));
        }
        let (nanos, be) = match m {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0xa1, 0xb2, 0xc3, 0xd4] => (false, true),
            [0x4d, 0x3c, 0xb2, 0xa1] => (true, false),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                me.read_shb()?;
                return Ok(me);
            }
            _ => {
                return err(0, format!("not a pcap or pcapng file (magic {:02x}{:02x}{:02x}{:02x})", m[0], m[1], m[2], m[3]))
            }
        };
        let mut h = [0u8; 20];
        let got = me.read_upto(&mut h, 4)?;
        if got < 20 {
            return err(0, format!("truncated pcap file header ({} of 24 bytes)", 4 + got));
        }
        let snaplen = u32_at(&h, 12, be).unwrap_or(0);
        // The upper bits of the link-type field carry FCS information, not the type.
        let linktype = LinkType(u32_at(&h, 16, be).unwrap_or(0) & 0x0fff_ffff);
        me.format = Format::Pcap { nanos, big_endian: be };
        me.big_endian = be;
        me.ifaces.push(Interface {
            linktype,
            snaplen,
            name: None,
            tsresol: if nanos { TsResol::Pow10(9) } else { TsResol::Pow10(6) },
            tsoffset_s: 0,
        });
        Ok(me)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Interfaces described so far (pcap: one).
    pub fn interfaces(&self) -> &[Interface] {
        &self.ifaces
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Reads until `buf` is full or the input ends; returns how many bytes came.
    fn read_upto(&mut self, buf: &mut [u8], at: u64) -> Result<usize, ReadError> {
        if let Some(m) = self.map.as_mut() {
            let from = (self.pos as usize).min(m.map.len());
            m.release(from);
            prefetch_ahead(&m.map, from);
            let n = buf.len().min(m.map.len() - from);
            buf[..n].copy_from_slice(&m.map[from..from + n]);
            self.pos += n as u64;
            return Ok(n);
        }
        let mut n = 0;
        while n < buf.len() {
            match self.r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return err(at + n as u64, format!("read error: {e}")),
            }
        }
        self.pos += n as u64;
        Ok(n)
    }

    /// Reads `n` bytes into the reusable buffer; returns how many came.
    fn read_buf(&mut self, n: usize, at: u64) -> Result<usize, ReadError> {
        if let Some(m) = &self.map {
            let from = (self.pos as usize).min(m.map.len());
            let got = n.min(m.map.len() - from);
            self.win = (from, from + got);
            self.pos += got as u64;
            return Ok(got);
        }
        // Appended straight from the buffered reader: no zero-filling first.
        let mut b = std::mem::take(&mut self.buf);
        b.clear();
        b.reserve(n);
        let res = (&mut self.r).take(n as u64).read_to_end(&mut b);
        let got = b.len();
        self.buf = b;
        self.pos += got as u64;
        match res {
            Ok(_) => Ok(got),
            Err(e) => err(at + got as u64, format!("read error: {e}")),
        }
    }

    /// The body read by the last `read_buf` (or `read_block_rest`).
    fn body(&self) -> &[u8] {
        match &self.map {
            Some(m) => &m.map[self.win.0..self.win.1],
            None => &self.buf,
        }
    }

    /// The next record, `None` at a clean end, or the error that stopped reading (once).
    pub fn next_record(&mut self) -> Option<Result<Record<'_>, ReadError>> {
        if self.done {
            return None;
        }
        let r = match self.format {
            Format::Pcap { .. } => self.next_pcap(),
            Format::Pcapng => self.next_pcapng(),
        };
        match r {
            Ok(Some(meta)) => {
                let data = self.body().get(meta.start..meta.start + meta.caplen).unwrap_or(&[]);
                let iface_name = self.ifaces.get(meta.iface_id as usize).and_then(|i| i.name.as_deref());
                Some(Ok(Record {
                    ts_ns: meta.ts_ns,
                    linktype: meta.linktype,
                    iface_id: meta.iface_id,
                    orig_len: meta.orig_len,
                    data,
                    iface_name,
                    queue: meta.queue,
                    offset: meta.offset,
                }))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn next_pcap(&mut self) -> Result<Option<Meta>, ReadError> {
        let at = self.pos;
        let be = self.big_endian;
        let mut h = [0u8; 16];
        match self.read_upto(&mut h, at)? {
            0 => return Ok(None),
            16 => {}
            got => return err(at, format!("truncated pcap record header ({got} of 16 bytes)")),
        }
        let sec = u32_at(&h, 0, be).unwrap_or(0) as u64;
        let frac = u32_at(&h, 4, be).unwrap_or(0) as u64;
        let caplen = u32_at(&h, 8, be).unwrap_or(0) as usize;
        let orig_len = u32_at(&h, 12, be).unwrap_or(0);
        if caplen > MAX_RECORD {
            return err(at, format!("pcap record claims {caplen} captured bytes, more than any packet (corrupt file?)"));
        }
        let got = self.read_buf(caplen, at + 16)?;
        if got < caplen {
            return err(at, format!("truncated packet data ({got} of {caplen} bytes)"));
        }
        let nanos = matches!(self.format, Format::Pcap { nanos: true, .. });
        // A u32 of seconds and of fractions cannot overflow a u64 of nanoseconds; checked all the same.
        let frac_ns = if nanos { Some(frac) } else { frac.checked_mul(1000) };
        let Some(ts_ns) = sec.checked_mul(1_000_000_000).zip(frac_ns).and_then(|(s, f)| s.checked_add(f)) else {
            return err(at, format!("pcap record time {sec} s + {frac} is out of range"));
        };
        let linktype = self.ifaces.first().map_or(LinkType(0), |i| i.linktype);
        Ok(Some(Meta { ts_ns, linktype, iface_id: 0, orig_len, start: 0, caplen, queue: None, offset: at }))
    }

    /// Reads a section header block whose first 4 bytes (`head`) were already read.
    fn read_shb(&mut self) -> Result<(), ReadError> {
        let at = self.pos - 4;
        let mut h = [0u8; 8];
        let got = self.read_upto(&mut h, at + 4)?;
        if got < 8 {
            return err(at, format!("truncated section header block ({} of 12 bytes)", 4 + got));
        }
        let be = match h[4..8] {
            [0x1a, 0x2b, 0x3c, 0x4d] => true,
            [0x4d, 0x3c, 0x2b, 0x1a] => false,
            _ => return err(at, "section header block has an invalid byte-order magic"),
        };
        let total = u32_at(&h, 0, be).unwrap_or(0) as usize;
        self.big_endian = be;
        // The rest of the block after type, length and byte-order magic.
        self.read_block_rest(SHB, total, 12, at)?;
        let major = u16_at(self.body(), 0, be).unwrap_or(0);
        if major != 1 {
            return err(at, format!("unsupported pcapng version {major}"));
        }
        self.ifaces.clear();
        self.format = Format::Pcapng;
        Ok(())
    }

    /// Checks a block's total length, reads what follows the `already` bytes read, checks the
    /// trailing length; leaves the body (after the `already` bytes, without the trailer) in `buf`.
    fn read_block_rest(&mut self, ty: u32, total: usize, already: usize, at: u64) -> Result<usize, ReadError> {
        let name = block_name(ty);
        if total < already + 4 || !total.is_multiple_of(4) {
            return err(at, format!("{name} has an invalid total length {total}"));
        }
        if total > MAX_RECORD {
            return err(at, format!("{name} claims {total} bytes, more than any block (corrupt file?)"));
        }
        let rest = total - already;
        let got = self.read_buf(rest, at + already as u64)?;
        if got < rest {
            return err(at, format!("truncated {name} ({} of {total} bytes)", already + got));
        }
        let trailer = u32_at(self.body(), rest - 4, self.big_endian).unwrap_or(0) as usize;
        if trailer != total {
            return err(at, format!("{name} length mismatch: header says {total}, trailer says {trailer}"));
        }
        self.buf.truncate(rest - 4);
        self.win.1 = self.win.0 + (rest - 4);
        Ok(rest - 4)
    }

    fn next_pcapng(&mut self) -> Result<Option<Meta>, ReadError> {
        loop {
            let at = self.pos;
            let mut h = [0u8; 8];
            match self.read_upto(&mut h[..4], at)? {
                0 => return Ok(None),
                4 => {}
                got => return err(at, format!("truncated block header ({got} of 8 bytes)")),
            }
            if h[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
                self.read_shb()?;
                continue;
            }
            let got = self.read_upto(&mut h[4..], at + 4)?;
            if got < 4 {
                return err(at, format!("truncated block header ({} of 8 bytes)", 4 + got));
            }
            let be = self.big_endian;
            let ty = u32_at(&h, 0, be).unwrap_or(0);
            let total = u32_at(&h, 4, be).unwrap_or(0) as usize;
            let body_len = self.read_block_rest(ty, total, 8, at)?;
            let name = block_name(ty);
            let short = || err(at, format!("{name} body too short ({body_len} bytes)"));
            match ty {
                IDB => {
                    let (Some(lt), Some(snaplen)) = (u16_at(self.body(), 0, be), u32_at(self.body(), 4, be)) else {
                        return short();
                    };
                    let mut iface = Interface {
                        linktype: LinkType(lt as u32),
                        snaplen,
                        name: None,
                        tsresol: TsResol::Pow10(6),
                        tsoffset_s: 0,
                    };
                    for o in options(&self.body()[8..], be) {
                        let Ok((code, v)) = o else {
                            return err(at, "interface description block has an option running past its end");
                        };
                        match (code, v) {
                            (2, name) => iface.name = Some(String::from_utf8_lossy(name).trim_end_matches('\0').to_string()),
                            (9, [r]) => {
                                iface.tsresol = if r & 0x80 != 0 { TsResol::Pow2(r & 0x7f) } else { TsResol::Pow10(*r) };
                                if matches!(iface.tsresol, TsResol::Pow10(n) if n > 38) {
                                    return err(at, format!("unsupported if_tsresol 10^-{r}"));
                                }
                            }
                            (14, v) if v.len() == 8 => iface.tsoffset_s = u64_at(v, 0, be).unwrap_or(0) as i64,
                            _ => {}
                        }
                    }
                    self.ifaces.push(iface);
                }
                EPB | OPB => {
                    let (iface_id, fixed) = if ty == EPB {
                        (u32_at(self.body(), 0, be), 20)
                    } else {
                        (u16_at(self.body(), 0, be).map(u32::from), 20)
                    };
                    let (Some(iface_id), Some(hi), Some(lo), Some(caplen), Some(orig_len)) = (
                        iface_id,
                        u32_at(self.body(), 4, be),
                        u32_at(self.body(), 8, be),
                        u32_at(self.body(), 12, be),
                        u32_at(self.body(), 16, be),
                    ) else {
                        return short();
                    };
                    let caplen = caplen as usize;
                    if caplen > body_len - fixed {
                        return err(at, format!("{name}: captured length {caplen} runs past the block ({} bytes of data)", body_len - fixed));
                    }
                    let Some(iface) = self.ifaces.get(iface_id as usize) else {
                        return err(at, format!("{name} refers to interface {iface_id}, which no interface description block defined"));
                    };
                    let ts = (hi as u64) << 32 | lo as u64;
                    let Some(ts_ns) = iface.tsresol.to_unix_ns(ts, iface.tsoffset_s) else {
                        return err(
                            at,
                            format!(
                                "{name}: timestamp {ts} in units of {} (if_tsoffset {} s) is outside 1970 to 2554, the times rxray can represent",
                                iface.tsresol, iface.tsoffset_s
                            ),
                        );
                    };
                    let linktype = iface.linktype;
                    let mut queue = None;
                    if ty == EPB {
                        let opts_at = fixed + caplen.div_ceil(4) * 4;
                        for (code, v) in options(self.body().get(opts_at..).unwrap_or(&[]), be).flatten() {
                            if code == 6 && v.len() == 4 {
                                queue = u32_at(v, 0, be);
                            }
                        }
                    }
                    return Ok(Some(Meta { ts_ns, linktype, iface_id, orig_len, start: fixed, caplen, queue, offset: at }));
                }
                SPB => {
                    let Some(orig_len) = u32_at(self.body(), 0, be) else {
                        return short();
                    };
                    let Some(iface) = self.ifaces.first() else {
                        return err(at, "simple packet block before any interface description block");
                    };
                    let mut caplen = (orig_len as usize).min(body_len - 4);
                    if iface.snaplen != 0 {
                        caplen = caplen.min(iface.snaplen as usize);
                    }
                    let linktype = iface.linktype;
                    return Ok(Some(Meta { ts_ns: 0, linktype, iface_id: 0, orig_len, start: 4, caplen, queue: None, offset: at }));
                }
                _ => {} // name resolution, statistics, custom, unknown: skipped
            }
        }
    }
}

impl CaptureReader<std::fs::File> {
    /// Reads a capture file. A regular file is mapped (see [`CaptureReader`]); anything else (a
    /// pipe, a FIFO, a device) is read through a buffer, as [`CaptureReader::new`] does.
    ///
    /// A mapped file must not shrink while it is read: the kernel would end the process (SIGBUS)
    /// at the first page past the new end. Captures being written are only ever appended to.
    pub fn open(file: std::fs::File) -> Result<Self, ReadError> {
        let mapped = match file.metadata() {
            Ok(m) if m.is_file() && m.len() > 0 => {
                // SAFETY: the mapping is read-only and private; see the note on shrinking above.
                unsafe { memmap2::Mmap::map(&file) }.ok()
            }
            _ => None,
        };
        match mapped {
            Some(map) => {
                let _ = map.advise(memmap2::Advice::Sequential);
                Self::with_input(BufReader::with_capacity(0, file), Some(Mapped { map, released: 0, step: RELEASE_BYTES, populated: 0 }))
            }
            None => Self::new(file),
        }
    }
}

impl<R: Read> CaptureReader<R> {
    /// Whether records come straight from a mapping of the file.
    pub fn is_mapped(&self) -> bool {
        self.map.is_some()
    }

    /// Releases read pages every `bytes` instead of [`RELEASE_BYTES`] (tests use a small step).
    #[doc(hidden)]
    pub fn with_release_step(mut self, bytes: usize) -> Self {
        if let Some(m) = self.map.as_mut() {
            m.step = bytes.max(4096);
        }
        self
    }
}

struct Meta {
    ts_ns: u64,
    linktype: LinkType,
    iface_id: u32,
    orig_len: u32,
    start: usize,
    caplen: usize,
    queue: Option<u32>,
    offset: u64,
}
