//! Capture writers: pcapng (SHB with an optional comment, one IDB per interface with
//! if_name/if_tsresol=9/snaplen, EPB with original length and an optional comment) and classic
//! nanosecond pcap; both flush on request. Plus a flight recorder's `Recording` as a whole pcapng file.
use rxray_engine::alert::eve_timestamp;
use rxray_engine::recorder::Recording;
use rxray_wire::LinkType;
use std::io::{self, Write};

fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

const ZEROS: [u8; 4] = [0; 4];

/// Writes one pcapng option (code, value, padding) into `out`.
fn option(out: &mut Vec<u8>, code: u16, v: &[u8]) {
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    out.extend_from_slice(v);
    out.extend_from_slice(&ZEROS[..pad4(v.len()) - v.len()]);
}

/// A text option: cut at a character boundary to the 65,535 bytes an option's length can say
/// (a longer value would otherwise corrupt the block).
fn str_option(out: &mut Vec<u8>, code: u16, s: &str) {
    let mut n = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    option(out, code, &s.as_bytes()[..n]);
}

/// A pcapng stream in little-endian byte order, one section. Timestamps are nanoseconds.
pub struct PcapngWriter<W: Write> {
    w: W,
    ifaces: u32,
    scratch: Vec<u8>,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header block; `app` goes into shb_userappl.
    pub fn new(w: W, app: &str) -> io::Result<Self> {
        Self::with_comment(w, app, None)
    }

    /// `new`, with an opt_comment on the section (what the file is: capinfos shows it).
    pub fn with_comment(mut w: W, app: &str, comment: Option<&str>) -> io::Result<Self> {
        let mut opts = Vec::new();
        if let Some(c) = comment {
            str_option(&mut opts, 1, c);
        }
        str_option(&mut opts, 4, app);
        option(&mut opts, 0, &[]);
        let total = (28 + opts.len()) as u32;
        let mut b = Vec::with_capacity(total as usize);
        b.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
        b.extend_from_slice(&total.to_le_bytes());
        b.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown: a stream
        b.extend_from_slice(&opts);
        b.extend_from_slice(&total.to_le_bytes());
        w.write_all(&b)?;
        Ok(PcapngWriter { w, ifaces: 0, scratch: Vec::with_capacity(256) })
    }

    /// Writes an interface description block; returns the interface id for `write_packet`.
    pub fn add_interface(&mut self, name: &str, linktype: LinkType, snaplen: u32) -> io::Result<u32> {
        let mut opts = Vec::new();
        str_option(&mut opts, 2, name);
        option(&mut opts, 9, &[9]); // if_tsresol: nanoseconds
        option(&mut opts, 0, &[]);
        let total = (20 + opts.len()) as u32;
        let mut b = Vec::with_capacity(total as usize);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&total.to_le_bytes());
        b.extend_from_slice(&(linktype.0 as u16).to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&snaplen.to_le_bytes());
        b.extend_from_slice(&opts);
        b.extend_from_slice(&total.to_le_bytes());
        self.w.write_all(&b)?;
        self.ifaces += 1;
        Ok(self.ifaces - 1)
    }

    /// Writes an enhanced packet block: `data` as captured, `orig_len` as on the wire, and an
    /// opt_comment when `comment` is given.
    pub fn write_packet(&mut self, iface: u32, ts_ns: u64, orig_len: u32, data: &[u8], comment: Option<&str>) -> io::Result<()> {
        if iface >= self.ifaces {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("pcapng: interface {iface} was never added")));
        }
        let cap = u32::try_from(data.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet over 4 GiB"))?;
        let b = &mut self.scratch;
        b.clear();
        if let Some(c) = comment {
            str_option(b, 1, c);
            option(b, 0, &[]);
        }
        let total = (32 + pad4(data.len()) + b.len()) as u32;
        let mut h = [0u8; 28];
        h[0..4].copy_from_slice(&6u32.to_le_bytes());
        h[4..8].copy_from_slice(&total.to_le_bytes());
        h[8..12].copy_from_slice(&iface.to_le_bytes());
        h[12..16].copy_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(ts_ns as u32).to_le_bytes());
        h[20..24].copy_from_slice(&cap.to_le_bytes());
        h[24..28].copy_from_slice(&orig_len.max(cap).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(data)?;
        self.w.write_all(&ZEROS[..pad4(data.len()) - data.len()])?;
        self.w.write_all(b)?;
        self.w.write_all(&total.to_le_bytes())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    /// The underlying writer (e.g. to see how much has been written).
    pub fn get_ref(&self) -> &W {
        &self.w
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

/// Writes a flight recorder's `Recording` as one pcapng section: a section comment saying which
/// alert and window it is (and whether frames are missing), one interface block per interface in
/// order of first appearance (snaplen = the recording's snap), and each packet with its comment
/// (`rxray alert 17 (syn_flood), verdict: blocked`). Returns the writer, flushed.
pub fn write_recording<W: Write>(w: W, rec: &Recording, linktype: LinkType) -> io::Result<W> {
    let mut ng = PcapngWriter::with_comment(w, "rxray flight recorder", Some(&recording_comment(rec)))?;
    let names = rec.ifaces();
    for n in &names {
        ng.add_interface(n, linktype, rec.snap)?;
    }
    for p in &rec.packets {
        // `names` holds every packet's interface, so the position is always found.
        let id = names.iter().position(|n| *n == &*p.iface).unwrap_or(0) as u32;
        ng.write_packet(id, p.ts_ns, p.orig_len, &p.data, Some(&p.comment))?;
    }
    ng.flush()?;
    Ok(ng.into_inner())
}

/// The section comment of a recording: alert, detector, verdict, window, and what is missing.
pub fn recording_comment(rec: &Recording) -> String {
    let mut c = format!(
        "rxray flight recorder: alert {} ({}), verdict: {}, at {}; window {} to {} on {}; {} packets",
        rec.alert_id,
        rec.detector,
        rec.verdict,
        eve_timestamp(rec.ts_ns),
        eve_timestamp(rec.start_ns),
        eve_timestamp(rec.end_ns),
        rec.iface.as_deref().unwrap_or("all interfaces"),
        rec.packets.len(),
    );
    if rec.truncated > 0 {
        c += &format!(", {} evicted before the window closed (recorder bounds)", rec.truncated);
    }
    if rec.history_short {
        c += ", starts late (the ring held less history than the window's start)";
    }
    if rec.flushed {
        c += ", closed early (capture ended or rxray stopped)";
    }
    c
}

/// A classic pcap stream, little-endian, with nanosecond timestamps (magic a1b23c4d) or, from
/// `new_micros`, microsecond ones (magic a1b2c3d4, the format every reader knows).
pub struct PcapWriter<W: Write> {
    w: W,
    micros: bool,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(w: W, linktype: LinkType, snaplen: u32) -> io::Result<Self> {
        Self::with_resolution(w, linktype, snaplen, false)
    }

    /// The same with microsecond timestamps (sub-microsecond parts are cut).
    pub fn new_micros(w: W, linktype: LinkType, snaplen: u32) -> io::Result<Self> {
        Self::with_resolution(w, linktype, snaplen, true)
    }

    fn with_resolution(mut w: W, linktype: LinkType, snaplen: u32, micros: bool) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&(if micros { 0xa1b2_c3d4u32 } else { 0xa1b2_3c4d }).to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&linktype.0.to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w, micros })
    }

    pub fn write_packet(&mut self, ts_ns: u64, orig_len: u32, data: &[u8]) -> io::Result<()> {
        let cap = u32::try_from(data.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet over 4 GiB"))?;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        let frac = ts_ns % 1_000_000_000;
        h[4..8].copy_from_slice(&((if self.micros { frac / 1000 } else { frac }) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&cap.to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.max(cap).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(data)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}
