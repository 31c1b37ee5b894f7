//! The flight recorder: a bounded ring of recent frames per interface, and a window around each
//! alert ([alert − before, alert + after]) that comes back as a `Recording` once event time passes its end.
//!
//! Pure like the rest of the engine: no I/O and no clock. Time arrives with the frames (`record`) and
//! with `poll(now)`; writing a `Recording` out as pcapng is rxray-io's job (`write_recording`).
//!
//! # Memory (every part bounded)
//! - Per interface, the ring keeps the newest frames within `max_packets_per_iface` frames and
//!   `max_bytes_per_iface` captured bytes (each frame cut to `snap` bytes). Those are the *soft*
//!   bounds: recent history, evicted oldest first.
//! - A frame an open window still needs is not evicted by the soft bounds: the ring may grow to twice
//!   them (the *hard* bounds) to keep it. Past the hard bounds the oldest frame goes anyway and every
//!   window that needed it counts it in `truncated`. So one interface holds at most
//!   `2 × max_bytes_per_iface` bytes of frames plus `2 × max_packets_per_iface` 24-byte records
//!   (growable buffers may reserve up to twice what they hold).
//! - At most `max_ifaces` interfaces have a ring (frames from others are counted, not kept) and at most
//!   `max_open_windows` windows are open (further triggers are refused and counted).
//! - A `Recording` is a copy, handed to the caller: at most the two interfaces' hard bounds per window.
//!
//! The frame store is one byte ring per interface (`VecDeque<u8>`) plus a ring of frame records, so
//! `record` does not allocate once the buffers have grown to their working size.
use crate::alert::Alert;
use crate::detect::policy::{ActionKind, Mitigation};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// How much the recorder keeps and for how long. `Default` is the documented default configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecorderConfig {
    /// How far before the alert a recording starts, ns of event time.
    pub before_ns: u64,
    /// How far after the alert a recording ends, ns of event time.
    pub after_ns: u64,
    /// Soft bound of the ring, in frames, per interface.
    pub max_packets_per_iface: usize,
    /// Soft bound of the ring, in captured bytes, per interface.
    pub max_bytes_per_iface: usize,
    /// Bytes kept of each frame (headers and the start of the payload).
    pub snap: u32,
    /// Interfaces with a ring; frames from more are counted in `RecorderStats::iface_limit_drops`.
    pub max_ifaces: usize,
    /// Windows open at once; more triggers are counted in `RecorderStats::windows_refused`.
    pub max_open_windows: usize,
}

impl Default for RecorderConfig {
    /// 5 s before and after, 100,000 frames or 32 MiB per interface, 512 bytes per frame (Ethernet,
    /// IP and TCP headers with options, and the payload prefix events carry), 64 interfaces, 256 windows.
    fn default() -> Self {
        RecorderConfig {
            before_ns: 5_000_000_000,
            after_ns: 5_000_000_000,
            max_packets_per_iface: 100_000,
            max_bytes_per_iface: 32 << 20,
            snap: 512,
            max_ifaces: 64,
            max_open_windows: 256,
        }
    }
}

/// A configuration the recorder cannot work with.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecorderConfigError {
    #[error("flight recorder: {field} must be at least 1 (got 0)")]
    Zero { field: &'static str },
    #[error("flight recorder: snap ({snap} bytes) is larger than max_bytes_per_iface ({max} bytes): one frame would not fit; lower snap or raise the byte bound")]
    SnapOverBudget { snap: u32, max: usize },
}

impl RecorderConfig {
    pub fn validate(&self) -> Result<(), RecorderConfigError> {
        for (field, v) in [
            ("max_packets_per_iface", self.max_packets_per_iface),
            ("max_bytes_per_iface", self.max_bytes_per_iface),
            ("snap", self.snap as usize),
            ("max_ifaces", self.max_ifaces),
            ("max_open_windows", self.max_open_windows),
        ] {
            if v == 0 {
                return Err(RecorderConfigError::Zero { field });
            }
        }
        if self.snap as usize > self.max_bytes_per_iface {
            return Err(RecorderConfigError::SnapOverBudget { snap: self.snap, max: self.max_bytes_per_iface });
        }
        Ok(())
    }
}

/// One recorded frame in a `Recording`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecPacket {
    pub iface: Arc<str>,
    pub ts_ns: u64,
    /// Length on the wire; `data` holds the first `snap` bytes.
    pub orig_len: u32,
    pub data: Vec<u8>,
    /// `rxray alert 17 (syn_flood), verdict: blocked`: shared by every packet of the recording.
    pub comment: Arc<str>,
}

/// The frames of one alert's window, in time order (frames with equal times keep the order of
/// their interfaces' first appearance, then arrival order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    pub alert_id: u64,
    /// The alert's event time.
    pub ts_ns: u64,
    /// The window, inclusive at both ends.
    pub start_ns: u64,
    pub end_ns: u64,
    pub detector: String,
    pub verdict: String,
    /// The interface the window covered; `None`: all.
    pub iface: Option<String>,
    /// The snap length frames were cut to (the pcapng interfaces' snaplen).
    pub snap: u32,
    pub packets: Vec<RecPacket>,
    /// Frames of the window evicted while it was open because the hard bounds forced it.
    pub truncated: u64,
    /// When the alert fired, the ring had already evicted frames from the window's start (it held
    /// less than `before_ns` of history): the recording starts later than `start_ns`.
    pub history_short: bool,
    /// Closed by `flush_all` before event time reached `end_ns`.
    pub flushed: bool,
}

impl Recording {
    /// `rxray-alert-17-syn_flood.pcapng`: unique per alert id; the detector name is reduced to
    /// `[A-Za-z0-9_-]` so it is safe in a path.
    pub fn file_name(&self) -> String {
        let det: String =
            self.detector.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        format!("rxray-alert-{}-{det}.pcapng", self.alert_id)
    }

    /// The interfaces of the packets, in order of first appearance (one pcapng IDB each).
    pub fn ifaces(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for p in &self.packets {
            if !v.contains(&&*p.iface) {
                v.push(&p.iface);
            }
        }
        v
    }
}

/// Counters of everything the recorder kept, dropped or refused since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    pub recorded: u64,
    /// Frames evicted from a ring (by the soft or the hard bounds).
    pub evicted: u64,
    /// Of `evicted`, frames an open window still needed (the sum of the windows' `truncated` counts
    /// counts each window; this counts each frame once).
    pub evicted_needed: u64,
    /// Frames not kept because `max_ifaces` interfaces already had a ring.
    pub iface_limit_drops: u64,
    pub windows_opened: u64,
    /// Triggers refused because `max_open_windows` windows were open.
    pub windows_refused: u64,
    pub recordings: u64,
}

/// A frame's place in its interface's byte ring (`at` counts bytes ever appended).
#[derive(Clone, Copy, Debug)]
struct Frame {
    ts_ns: u64,
    at: u64,
    len: u32,
    orig_len: u32,
}

#[derive(Debug)]
struct Ring {
    name: Arc<str>,
    frames: VecDeque<Frame>,
    bytes: VecDeque<u8>,
    /// `at` of `bytes[0]`.
    base: u64,
    /// The latest timestamp among evicted frames (for `Recording::history_short`).
    max_evicted_ts: Option<u64>,
}

impl Ring {
    fn push(&mut self, ts_ns: u64, orig_len: u32, data: &[u8]) {
        let at = self.base + self.bytes.len() as u64;
        self.bytes.extend(data);
        self.frames.push_back(Frame { ts_ns, at, len: data.len() as u32, orig_len });
    }

    fn pop_front(&mut self) -> Option<Frame> {
        let f = self.frames.pop_front()?;
        self.bytes.drain(..f.len as usize);
        self.base += f.len as u64;
        self.max_evicted_ts = Some(self.max_evicted_ts.map_or(f.ts_ns, |t| t.max(f.ts_ns)));
        Some(f)
    }

    fn data(&self, f: &Frame) -> Vec<u8> {
        let from = (f.at - self.base) as usize;
        let (a, b) = self.bytes.as_slices();
        let mut out = Vec::with_capacity(f.len as usize);
        for (i, part) in [(0, a), (a.len(), b)] {
            let lo = from.max(i).min(i + part.len());
            let hi = (from + f.len as usize).max(i).min(i + part.len());
            out.extend_from_slice(&part[lo - i..hi - i]);
        }
        out
    }
}

#[derive(Debug)]
struct Window {
    alert_id: u64,
    ts_ns: u64,
    start: u64,
    end: u64,
    detector: String,
    verdict: String,
    iface: Option<String>,
    truncated: u64,
    history_short: bool,
}

impl Window {
    fn on(&self, iface: &str) -> bool {
        self.iface.as_deref().is_none_or(|i| i == iface)
    }

    fn covers(&self, iface: &str, ts: u64) -> bool {
        self.start <= ts && ts <= self.end && self.on(iface)
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct FlightRecorder {
    cfg: RecorderConfig,
    rings: Vec<Ring>,
    by_name: HashMap<Arc<str>, usize>,
    windows: Vec<Window>,
    stats: RecorderStats,
}

impl FlightRecorder {
    pub fn new(cfg: RecorderConfig) -> Result<FlightRecorder, RecorderConfigError> {
        cfg.validate()?;
        Ok(FlightRecorder { cfg, rings: Vec::new(), by_name: HashMap::new(), windows: Vec::new(), stats: RecorderStats::default() })
    }

    pub fn config(&self) -> &RecorderConfig {
        &self.cfg
    }

    pub fn stats(&self) -> RecorderStats {
        self.stats
    }

    /// Frames and captured bytes the ring of `iface` holds now.
    pub fn held(&self, iface: &str) -> Option<(usize, usize)> {
        self.by_name.get(iface).map(|&i| (self.rings[i].frames.len(), self.rings[i].bytes.len()))
    }

    /// Windows open now.
    pub fn open_windows(&self) -> usize {
        self.windows.len()
    }

    /// Keeps the first `snap` bytes of `frame`, seen on `iface` at `ts_ns` (`orig_len` bytes on the
    /// wire), evicting the interface's oldest frames past the bounds.
    pub fn record(&mut self, iface: &str, ts_ns: u64, orig_len: u32, frame: &[u8]) {
        let r = match self.by_name.get(iface) {
            Some(&r) => r,
            None if self.rings.len() < self.cfg.max_ifaces => {
                let name: Arc<str> = iface.into();
                self.rings.push(Ring {
                    name: name.clone(),
                    frames: VecDeque::new(),
                    bytes: VecDeque::new(),
                    base: 0,
                    max_evicted_ts: None,
                });
                self.by_name.insert(name, self.rings.len() - 1);
                self.rings.len() - 1
            }
            None => {
                self.stats.iface_limit_drops += 1;
                return;
            }
        };
        let data = &frame[..frame.len().min(self.cfg.snap as usize)];
        let orig_len = orig_len.max(u32::try_from(frame.len()).unwrap_or(u32::MAX));
        self.rings[r].push(ts_ns, orig_len, data);
        self.stats.recorded += 1;
        trim(&mut self.rings[r], &mut self.windows, &self.cfg, &mut self.stats);
    }

    /// Opens the window [ts − before, ts + after] for `alert_id` on `iface` (all interfaces when
    /// `None`). Returns false, and counts it, when `max_open_windows` windows are already open.
    pub fn trigger(&mut self, alert_id: u64, ts_ns: u64, detector: &str, verdict: &str, iface: Option<&str>) -> bool {
        if self.windows.len() >= self.cfg.max_open_windows {
            self.stats.windows_refused += 1;
            return false;
        }
        let start = ts_ns.saturating_sub(self.cfg.before_ns);
        let end = ts_ns.saturating_add(self.cfg.after_ns);
        let history_short = self
            .rings
            .iter()
            .filter(|r| iface.is_none_or(|i| i == &*r.name))
            .any(|r| r.max_evicted_ts.is_some_and(|t| t >= start));
        self.windows.push(Window {
            alert_id,
            ts_ns,
            start,
            end,
            detector: detector.to_string(),
            verdict: verdict.to_string(),
            iface: iface.map(str::to_string),
            truncated: 0,
            history_short,
        });
        self.stats.windows_opened += 1;
        true
    }

    /// `trigger` for a numbered alert: its id, time, detector, interface and `verdict(alert)`.
    pub fn trigger_alert(&mut self, a: &Alert) -> bool {
        self.trigger(a.id, a.ts_ns, a.sig.detector, verdict(a), a.iface.as_deref())
    }

    /// The recordings of every window whose end is at or before `now_ns` (event time), ordered by
    /// end then alert id. Call it after `record`ing the frames up to `now_ns`.
    pub fn poll(&mut self, now_ns: u64) -> Vec<Recording> {
        if !self.windows.iter().any(|w| w.end <= now_ns) {
            return Vec::new();
        }
        let (closed, open) = std::mem::take(&mut self.windows).into_iter().partition(|w| w.end <= now_ns);
        self.windows = open;
        self.close(closed, false)
    }

    /// Closes every open window now (end of a capture, shutdown): their recordings hold what was
    /// recorded so far and say `flushed`.
    pub fn flush_all(&mut self) -> Vec<Recording> {
        let all = std::mem::take(&mut self.windows);
        self.close(all, true)
    }

    fn close(&mut self, mut closed: Vec<Window>, flushed: bool) -> Vec<Recording> {
        closed.sort_by_key(|w| (w.end, w.alert_id));
        let recs: Vec<Recording> = closed.into_iter().map(|w| self.recording(w, flushed)).collect();
        self.stats.recordings += recs.len() as u64;
        // Frames only the closed windows held may go now.
        for r in &mut self.rings {
            trim(r, &mut self.windows, &self.cfg, &mut self.stats);
        }
        recs
    }

    fn recording(&self, w: Window, flushed: bool) -> Recording {
        let comment: Arc<str> = format!("rxray alert {} ({}), verdict: {}", w.alert_id, w.detector, w.verdict).into();
        let mut packets = Vec::new();
        for r in self.rings.iter().filter(|r| w.on(&r.name)) {
            for f in r.frames.iter().filter(|f| w.start <= f.ts_ns && f.ts_ns <= w.end) {
                packets.push(RecPacket {
                    iface: r.name.clone(),
                    ts_ns: f.ts_ns,
                    orig_len: f.orig_len,
                    data: r.data(f),
                    comment: comment.clone(),
                });
            }
        }
        packets.sort_by_key(|p| p.ts_ns); // stable: ties keep ring order, then arrival order
        Recording {
            alert_id: w.alert_id,
            ts_ns: w.ts_ns,
            start_ns: w.start,
            end_ns: w.end,
            detector: w.detector,
            verdict: w.verdict,
            iface: w.iface,
            snap: self.cfg.snap,
            packets,
            truncated: w.truncated,
            history_short: w.history_short,
            flushed,
        }
    }
}

/// Evicts the oldest frames of `r` past the soft bounds, unless an open window needs them; past the
/// hard bounds (twice the soft ones) evicts regardless and counts the loss in each window that needed it.
fn trim(r: &mut Ring, windows: &mut [Window], cfg: &RecorderConfig, stats: &mut RecorderStats) {
    let (soft_n, soft_b) = (cfg.max_packets_per_iface, cfg.max_bytes_per_iface);
    let (hard_n, hard_b) = (soft_n.saturating_mul(2), soft_b.saturating_mul(2));
    while r.frames.len() > soft_n || r.bytes.len() > soft_b {
        let Some(front) = r.frames.front() else { break };
        let needed = windows.iter().any(|w| w.covers(&r.name, front.ts_ns));
        if needed {
            if r.frames.len() <= hard_n && r.bytes.len() <= hard_b {
                break;
            }
            for w in windows.iter_mut().filter(|w| w.covers(&r.name, front.ts_ns)) {
                w.truncated += 1;
            }
            stats.evicted_needed += 1;
        }
        r.pop_front();
        stats.evicted += 1;
    }
}

/// What was done about an alert, in a word for the packet comments: `blocked`, `rate-limited`, or
/// `alerted` (no action decided, or decided but not carried out: offline, or without `--enforce`).
pub fn verdict(a: &Alert) -> &'static str {
    match &a.mitigation {
        Some(Mitigation::Taken(act)) if a.enforced => match act.kind {
            ActionKind::Block { .. } => "blocked",
            ActionKind::RateLimit { .. } | ActionKind::LimitSrc { .. } => "rate-limited",
        },
        _ => "alerted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_that_wrap_around_the_byte_ring_read_back_whole() {
        let cfg = RecorderConfig { max_packets_per_iface: 3, max_bytes_per_iface: 30, snap: 10, ..Default::default() };
        let mut r = FlightRecorder::new(cfg).unwrap();
        let mut wrapped = false;
        for i in 0..50u8 {
            let f: Vec<u8> = (0..7 + i % 4).map(|b| i.wrapping_mul(31).wrapping_add(b)).collect();
            r.record("a", i as u64, 0, &f);
            let ring = &r.rings[0];
            let last = ring.frames.back().unwrap();
            assert_eq!(ring.data(last), f);
            wrapped |= !ring.bytes.as_slices().1.is_empty();
        }
        assert!(wrapped, "the test never made the byte ring wrap");
    }

    #[test]
    fn a_frame_record_is_the_24_bytes_the_documentation_counts() {
        assert_eq!(std::mem::size_of::<Frame>(), 24);
    }

    #[test]
    fn bad_configs_are_named() {
        let e = FlightRecorder::new(RecorderConfig { max_open_windows: 0, ..Default::default() }).unwrap_err();
        assert_eq!(e.to_string(), "flight recorder: max_open_windows must be at least 1 (got 0)");
        let e = FlightRecorder::new(RecorderConfig { snap: 100, max_bytes_per_iface: 99, ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("snap (100 bytes) is larger than max_bytes_per_iface (99 bytes)"), "{e}");
    }
}
