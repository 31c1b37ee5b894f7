//! The live kernel source: every ring rxray reads (packet events, capture chunks, drops, TCP
//! connections) and the maps it snapshots (flows, connections, latency), decoded into the engine's
//! typed events through one poll loop. Owns the clock mapping; what it yields carries wall time.
use crate::{
    abi, capture::Reassembler, decode, decode::decode_conn, decode::decode_drop, Clock, Conns, Drops, Ingress,
    KernelError, ReaderTable, Readers,
};
use aya::maps::{MapData, RingBuf};
use rxray_engine::event::Packet;
use rxray_engine::source::{
    ConnEvent, ConnSnapshot, DropEvent, Event, FlowSnapshot, Frame, LatencySnapshot, Source, SourceError,
};
use rxray_wire::dissect::dissect_into_whole;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Public sizes of what the kernel's records carry.
pub const PAYLOAD_MAX: u32 = abi::PAYLOAD_MAX as u32;
pub const PAYLOAD_DEFAULT: u32 = abi::PAYLOAD_DEFAULT;
pub const CAP_SNAP_MAX: u32 = abi::CAP_SNAP_MAX;

/// Rings in the order they take turns.
const RINGS: usize = 4;
/// Events between two looks at the clock (ticks, snapshots due) while the rings are busy.
const CLOCK_EVERY: u32 = 256;

struct Every {
    every_ns: u64,
    next_ns: u64,
}

impl Every {
    fn new(every: Duration, now: u64) -> Self {
        let every_ns = (every.as_nanos() as u64).max(1);
        Every { every_ns, next_ns: now + every_ns }
    }

    /// True (and the next one scheduled) when one is due at `now`.
    fn due(&mut self, now: u64) -> bool {
        if now < self.next_ns {
            return false;
        }
        self.next_ns = (self.next_ns + self.every_ns).max(now);
        true
    }
}

/// The live kernel as one source. Build it from what the command attached, then read events.
pub struct LiveSource {
    clock: Clock,
    ingress: Option<Ingress>,
    read_events: bool,
    capture: Option<(RingBuf<MapData>, Reassembler)>,
    /// Each captured frame is also dissected into a packet with its whole payload (yielded
    /// after the frame): signatures then see whole payloads, not the event ring's prefix.
    frame_packets: bool,
    /// A frame's packet is waiting to be yielded.
    pending_packet: bool,
    drops: Option<Drops>,
    conns: Option<Conns>,
    readers: Option<Readers>,
    names: Vec<(u32, String)>,
    ticks: Option<Every>,
    conn_snapshots: Option<Every>,
    flow_snapshots: Option<Every>,
    latency_snapshots: Option<Every>,
    turn: usize,
    since_clock: u32,
    /// CLOCK_MONOTONIC when the clock mapping was last sampled (resampled about every second).
    synced_mono_ns: u64,
    pkt: Packet,
    drop_ev: DropEvent,
    conn_ev: ConnEvent,
    conn_snap: ConnSnapshot,
    flow_snap: FlowSnapshot,
    lat_snap: LatencySnapshot,
}

impl LiveSource {
    /// An empty source with its clock sampled now; add what was attached.
    pub fn new() -> Self {
        LiveSource {
            clock: Clock::now(),
            ingress: None,
            read_events: false,
            capture: None,
            frame_packets: false,
            pending_packet: false,
            drops: None,
            conns: None,
            readers: None,
            names: Vec::new(),
            ticks: None,
            conn_snapshots: None,
            flow_snapshots: None,
            latency_snapshots: None,
            turn: 0,
            since_clock: 0,
            synced_mono_ns: crate::decode::monotonic_ns(),
            pkt: rxray_wire::dissect::empty_packet(),
            drop_ev: DropEvent::default(),
            conn_ev: ConnEvent::default(),
            conn_snap: ConnSnapshot::default(),
            flow_snap: FlowSnapshot::default(),
            lat_snap: LatencySnapshot::default(),
        }
    }

    /// The XDP/TC ingress program: its packet events (when it was loaded with `events`) are read,
    /// and with `frames` its capture ring, reassembled into whole frames.
    pub fn with_ingress(mut self, mut ingress: Ingress, events: bool, frames: bool) -> Result<Self, KernelError> {
        self.names = ingress.attached().iter().map(|a| (a.ifindex, a.iface.clone())).collect();
        if frames {
            let ring = ingress
                .take_capture_ring()
                .ok_or(KernelError::Map { map: "rxray_cap", detail: "missing from the object".into() })?;
            self.capture = Some((ring, Reassembler::default()));
        }
        self.read_events = events;
        self.ingress = Some(ingress);
        Ok(self)
    }

    /// Packets from the capture ring (each frame dissected with its whole payload, after its
    /// `Event::Frame`) instead of the event ring's records with their 256-byte prefix. Needs the
    /// ingress loaded with `capture` and added here with `frames`; read it without `events`.
    pub fn with_frame_packets(mut self) -> Self {
        self.frame_packets = true;
        self
    }

    /// The drop tracepoint: each drop becomes an `Event::Drop`.
    pub fn with_drops(mut self, drops: Drops) -> Self {
        self.drops = Some(drops);
        self
    }

    /// The TCP tracepoints: each state change becomes an `Event::Conn`; with `snapshots`, the open
    /// connections come as an `Event::Conns` that often.
    pub fn with_conns(mut self, conns: Conns, snapshots: Option<Duration>) -> Self {
        let now = self.clock.now_ns();
        self.conn_snapshots = snapshots.map(|d| Every::new(d, now));
        self.conns = Some(conns);
        self
    }

    /// The readers program (who read each flow); its table is read with `reader_table`.
    pub fn with_readers(mut self, readers: Readers) -> Self {
        self.readers = Some(readers);
        self
    }

    /// An `Event::Tick` with the time now at least that often, for what runs on event time.
    pub fn with_ticks(mut self, every: Duration) -> Self {
        self.ticks = Some(Every::new(every, self.clock.now_ns()));
        self
    }

    /// The flow table as an `Event::Flows` that often.
    pub fn with_flow_snapshots(mut self, every: Duration) -> Self {
        self.flow_snapshots = Some(Every::new(every, self.clock.now_ns()));
        self
    }

    /// The latency histograms as an `Event::Latency` that often.
    pub fn with_latency_snapshots(mut self, every: Duration) -> Self {
        self.latency_snapshots = Some(Every::new(every, self.clock.now_ns()));
        self
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The time now, Unix-epoch ns.
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    pub fn ingress(&self) -> Option<&Ingress> {
        self.ingress.as_ref()
    }

    pub fn ingress_mut(&mut self) -> Option<&mut Ingress> {
        self.ingress.as_mut()
    }

    pub fn drops(&self) -> Option<&Drops> {
        self.drops.as_ref()
    }

    pub fn drops_mut(&mut self) -> Option<&mut Drops> {
        self.drops.as_mut()
    }

    pub fn conns(&self) -> Option<&Conns> {
        self.conns.as_ref()
    }

    /// Capture records that made no whole frame (a chunk lost or out of order).
    pub fn frames_incomplete(&self) -> u64 {
        self.capture.as_ref().map_or(0, |(_, r)| r.incomplete)
    }

    /// The name of an interface the ingress program is attached to ("?" for any other).
    pub fn iface_name(&self, ifindex: u32) -> &str {
        iface_name(&self.names, ifindex)
    }

    /// Who read each socket, now (empty without the readers program).
    pub fn reader_table(&self) -> Result<ReaderTable, KernelError> {
        self.readers.as_ref().map_or(Ok(ReaderTable::default()), Readers::table)
    }

    /// The connections open now, decoded.
    pub fn conn_snapshot(&self) -> Result<ConnSnapshot, KernelError> {
        let mut s = ConnSnapshot::default();
        self.fill_conn_snapshot(&mut s)?;
        Ok(s)
    }

    fn fill_conn_snapshot(&self, s: &mut ConnSnapshot) -> Result<(), KernelError> {
        s.ts_ns = self.clock.now_ns();
        s.conns.clear();
        if let Some(c) = &self.conns {
            let mut live = c.live()?;
            live.sort_by_key(|c| c.first_ns);
            s.conns.extend(live.iter().map(|c| decode_conn(c, &self.clock)));
        }
        Ok(())
    }

    /// The flow table now, decoded (empty without the ingress program).
    pub fn flow_snapshot(&self) -> Result<FlowSnapshot, KernelError> {
        match &self.ingress {
            Some(i) => i.flow_snapshot(&self.clock),
            None => Ok(FlowSnapshot { ts_ns: self.clock.now_ns(), ..Default::default() }),
        }
    }

    /// The latency histograms now, decoded (empty without the ingress program).
    pub fn latency_snapshot(&self) -> Result<LatencySnapshot, KernelError> {
        self.ingress.as_ref().map_or(Ok(LatencySnapshot::default()), Ingress::latency_snapshot)
    }

    /// Takes the snapshot or tick that is due, if one is, into the source's buffers.
    fn take_due(&mut self) -> Option<Result<Due, SourceError>> {
        let mono = crate::decode::monotonic_ns();
        if mono.saturating_sub(self.synced_mono_ns) >= 1_000_000_000 {
            self.clock.resync();
            self.synced_mono_ns = mono;
        }
        let now = self.clock.now_ns();
        let err = |e: KernelError| Some(Err(SourceError::fatal(e.to_string())));
        if self.ticks.as_mut().is_some_and(|t| t.due(now)) {
            return Some(Ok(Due::Tick(now)));
        }
        if self.conn_snapshots.as_mut().is_some_and(|t| t.due(now)) {
            let mut s = std::mem::take(&mut self.conn_snap);
            let r = self.fill_conn_snapshot(&mut s);
            self.conn_snap = s;
            return match r {
                Ok(()) => Some(Ok(Due::Conns)),
                Err(e) => err(e),
            };
        }
        if self.flow_snapshots.as_mut().is_some_and(|t| t.due(now)) {
            return match self.flow_snapshot() {
                Ok(s) => {
                    self.flow_snap = s;
                    Some(Ok(Due::Flows))
                }
                Err(e) => err(e),
            };
        }
        if self.latency_snapshots.as_mut().is_some_and(|t| t.due(now)) {
            return match self.latency_snapshot() {
                Ok(s) => {
                    self.lat_snap = s;
                    Some(Ok(Due::Latency))
                }
                Err(e) => err(e),
            };
        }
        None
    }

    /// Reads one record of ring `i` into the source's buffers; which kind it was, if any.
    fn read_ring(&mut self, i: usize) -> Option<Kind> {
        match i {
            0 => {
                let (ring, re) = self.capture.as_mut()?;
                while let Some(item) = ring.next() {
                    if let Some(info) = re.push_record(&item) {
                        return Some(Kind::Frame(info));
                    }
                }
                None
            }
            1 => {
                if !self.read_events {
                    return None;
                }
                let ing = self.ingress.as_mut()?;
                loop {
                    let item = ing.ring().next()?;
                    let Some(ev) = abi::PktEvent::from_bytes(&item) else { continue };
                    drop(item);
                    self.pkt = decode(&ev, &self.clock, iface_name(&self.names, ev.ifindex));
                    return Some(Kind::Packet);
                }
            }
            2 => {
                let d = self.drops.as_mut()?;
                loop {
                    let item = d.ring().next()?;
                    let Some(ev) = abi::DropEvent::from_bytes(&item) else { continue };
                    drop(item);
                    self.drop_ev = decode_drop(&ev, &self.clock);
                    return Some(Kind::Drop);
                }
            }
            _ => {
                let c = self.conns.as_mut()?;
                loop {
                    let item = c.ring().next()?;
                    let Some(ev) = abi::ConnEvent::from_bytes(&item) else { continue };
                    drop(item);
                    self.conn_ev = ConnEvent { ts_ns: self.clock.to_unix_ns(ev.ts_ns), conn: decode_conn(&ev.c, &self.clock) };
                    return Some(Kind::Conn);
                }
            }
        }
    }

    /// The descriptors of the rings this source reads (for a caller that polls several sources).
    pub fn poll_fds(&mut self) -> Vec<std::os::fd::RawFd> {
        let mut v = Vec::new();
        if let Some((r, _)) = &self.capture {
            v.push(r.as_raw_fd());
        }
        if self.read_events {
            if let Some(i) = self.ingress.as_mut() {
                v.push(i.ring().as_raw_fd());
            }
        }
        if let Some(d) = self.drops.as_mut() {
            v.push(d.ring().as_raw_fd());
        }
        if let Some(c) = self.conns.as_mut() {
            v.push(c.ring().as_raw_fd());
        }
        v
    }

    fn next_due_ns(&self) -> Option<u64> {
        [&self.ticks, &self.conn_snapshots, &self.flow_snapshots, &self.latency_snapshots]
            .into_iter()
            .flatten()
            .map(|e| e.next_ns)
            .min()
    }
}

impl Default for LiveSource {
    fn default() -> Self {
        Self::new()
    }
}

enum Due {
    Tick(u64),
    Conns,
    Flows,
    Latency,
}

enum Kind {
    Frame(crate::capture::FrameInfo),
    Packet,
    Drop,
    Conn,
}

fn iface_name(names: &[(u32, String)], ifindex: u32) -> &str {
    names.iter().find(|(i, _)| *i == ifindex).map_or("?", |(_, n)| n.as_str())
}

impl Source for LiveSource {
    fn next_event(&mut self) -> Option<Result<Event<'_>, SourceError>> {
        if std::mem::take(&mut self.pending_packet) {
            return Some(Ok(Event::Packet(&self.pkt)));
        }
        if self.since_clock == 0 {
            self.since_clock = CLOCK_EVERY;
            if let Some(d) = self.take_due() {
                self.since_clock = 0; // another may be due as well
                return Some(d.map(|d| match d {
                    Due::Tick(now) => Event::Tick(now),
                    Due::Conns => Event::Conns(&self.conn_snap),
                    Due::Flows => Event::Flows(&self.flow_snap),
                    Due::Latency => Event::Latency(&self.lat_snap),
                }));
            }
        }
        self.since_clock -= 1;
        for k in 0..RINGS {
            let i = (self.turn + k) % RINGS;
            let Some(kind) = self.read_ring(i) else { continue };
            self.turn = (i + 1) % RINGS;
            return Some(Ok(match kind {
                Kind::Frame(info) => {
                    let data = self.capture.as_ref().map_or(&[][..], |(_, r)| r.last_frame());
                    let ts_ns = self.clock.to_unix_ns(info.ts_mono_ns);
                    if self.frame_packets {
                        let iface = iface_name(&self.names, info.ifindex);
                        dissect_into_whole(&mut self.pkt, data, rxray_wire::LinkType::ETHERNET, ts_ns, info.wire_len, iface);
                        self.pkt.ifindex = info.ifindex;
                        self.pkt.rx_queue = info.rx_queue;
                        self.pending_packet = true;
                    }
                    Event::Frame(Frame {
                        ts_ns,
                        ifindex: info.ifindex,
                        iface: iface_name(&self.names, info.ifindex),
                        rx_queue: info.rx_queue,
                        orig_len: info.wire_len,
                        linktype: rxray_wire::LinkType::ETHERNET,
                        data,
                    })
                }
                Kind::Packet => Event::Packet(&self.pkt),
                Kind::Drop => Event::Drop(&self.drop_ev),
                Kind::Conn => Event::Conn(&self.conn_ev),
            }));
        }
        // Nothing in any ring: look at the clock on the next call.
        self.since_clock = 0;
        None
    }

    fn wait(&mut self, timeout: Duration) {
        let mut timeout_ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        if let Some(n) = self.next_due_ns() {
            let left = n.saturating_sub(self.clock.now_ns()) / 1_000_000;
            timeout_ms = timeout_ms.min(left as i32);
        }
        let mut pfds: Vec<libc::pollfd> =
            self.poll_fds().into_iter().map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
        if pfds.is_empty() {
            std::thread::sleep(Duration::from_millis(timeout_ms.max(0) as u64));
            return;
        }
        // SAFETY: pfds is a valid array of pollfds for ring fds this source keeps open.
        unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms.max(0)) };
        self.since_clock = 0;
    }
}
