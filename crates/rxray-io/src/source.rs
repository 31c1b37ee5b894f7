//! Capture files as a source: each record is dissected as the kernel would (rxray-wire) and
//! yielded as the same `Event::Packet` the live source gives, after its `Event::Frame` when asked.
use crate::CaptureReader;
use rxray_engine::event::Packet;
use rxray_engine::source::{Event, Frame, Source, SourceError};
use rxray_wire::dissect::{dissect_into, dissect_into_whole, empty_packet};
use std::fs::File;
use std::path::PathBuf;

/// Payload bytes a dissected packet keeps (what a kernel event carries at most).
const PAYLOAD: usize = 256;

/// Reads captures (pcap or pcapng) one after the other, in capture time.
pub struct CaptureSource {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<(CaptureReader<File>, String, PathBuf)>,
    frames: bool,
    /// Packets keep their whole payload (signatures), not the kernel event's prefix.
    whole: bool,
    pending: bool,
    pkt: Packet,
    frame: FrameBuf,
    /// Records read.
    pub records: u64,
    ended: bool,
}

struct FrameBuf {
    ts_ns: u64,
    iface: String,
    rx_queue: u32,
    orig_len: u32,
    linktype: rxray_wire::LinkType,
    data: Vec<u8>,
}

impl Default for FrameBuf {
    fn default() -> Self {
        FrameBuf { ts_ns: 0, iface: String::new(), rx_queue: 0, orig_len: 0, linktype: rxray_wire::LinkType::ETHERNET, data: Vec::new() }
    }
}

impl CaptureSource {
    /// The files, read in order; with `frames`, each record also comes whole as an `Event::Frame`
    /// (before its packet).
    pub fn new(files: &[PathBuf], frames: bool) -> Self {
        CaptureSource {
            files: files.to_vec().into_iter(),
            current: None,
            frames,
            whole: false,
            pending: false,
            pkt: empty_packet(),
            frame: FrameBuf::default(),
            records: 0,
            ended: false,
        }
    }

    /// Packets keep their whole payload (up to the captured bytes) instead of the 256-byte prefix
    /// a kernel event carries: what payload signatures inspect.
    pub fn with_whole_payload(mut self) -> Self {
        self.whole = true;
        self
    }

    /// Opens the next file; `Ok(false)` when there is none.
    fn open_next(&mut self) -> Result<bool, SourceError> {
        let Some(f) = self.files.next() else { return Ok(false) };
        let file = File::open(&f).map_err(|e| SourceError::fatal(format!("opening {}: {e}", f.display())))?;
        let rd = CaptureReader::open(file).map_err(|e| SourceError::fatal(format!("{}: {e}", f.display())))?;
        let fallback = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        self.current = Some((rd, fallback, f));
        Ok(true)
    }

    /// Reads the next record into the packet (and frame) buffers; `Ok(false)` at the end of a file.
    fn read_record(&mut self) -> Result<bool, SourceError> {
        let Some((rd, fallback, path)) = self.current.as_mut() else { return Ok(false) };
        let rec = match rd.next_record() {
            None => return Ok(false),
            Some(Err(e)) => return Err(SourceError::damaged(format!("{}: {e}", path.display()))),
            Some(Ok(r)) => r,
        };
        let name = rec.iface_name.unwrap_or(fallback);
        if self.whole {
            dissect_into_whole(&mut self.pkt, rec.data, rec.linktype, rec.ts_ns, rec.orig_len, name);
        } else {
            dissect_into(&mut self.pkt, rec.data, rec.linktype, rec.ts_ns, rec.orig_len, name, PAYLOAD);
        }
        if self.frames {
            let f = &mut self.frame;
            f.ts_ns = rec.ts_ns;
            f.iface.clear();
            f.iface.push_str(name);
            f.rx_queue = rec.queue.unwrap_or(0);
            f.orig_len = rec.orig_len;
            f.linktype = rec.linktype;
            f.data.clear();
            f.data.extend_from_slice(rec.data);
        }
        self.records += 1;
        Ok(true)
    }
}

impl Source for CaptureSource {
    fn next_event(&mut self) -> Option<Result<Event<'_>, SourceError>> {
        if self.pending {
            self.pending = false;
            return Some(Ok(Event::Packet(&self.pkt)));
        }
        loop {
            if self.ended {
                return None;
            }
            if self.current.is_none() {
                match self.open_next() {
                    Ok(true) => {}
                    Ok(false) => {
                        self.ended = true;
                        return None;
                    }
                    Err(e) => {
                        self.ended = true;
                        return Some(Err(e));
                    }
                }
            }
            match self.read_record() {
                Ok(true) => break,
                Ok(false) => self.current = None,
                Err(e) => {
                    // A damaged file: what came before it was yielded; go on with the next file.
                    self.current = None;
                    return Some(Err(e));
                }
            }
        }
        if !self.frames {
            return Some(Ok(Event::Packet(&self.pkt)));
        }
        self.pending = true;
        let f = &self.frame;
        Some(Ok(Event::Frame(Frame {
            ts_ns: f.ts_ns,
            ifindex: 0,
            iface: &f.iface,
            rx_queue: f.rx_queue,
            orig_len: f.orig_len,
            linktype: f.linktype,
            data: &f.data,
        })))
    }

    fn ended(&self) -> bool {
        self.ended
    }
}
