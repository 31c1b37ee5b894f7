//! Joined views of the commands that follow kernel records rather than packets (`drops`, `conns`):
//! each renders, in the agent, what its command renders when it attaches itself, from the agent's
//! own sources and counted from the moment it joined.
use super::{Kind, JoinRequest};
use crate::drops::{self, Names};
use rxray_engine::conns::{fill, record, Seeds};
use rxray_engine::os::Os;
use rxray_engine::source::{Connection, DropEvent, Frame};
use rxray_kernel::os::LinuxOs;
use rxray_engine::source::{LatencyEntry, LatencySnapshot};
use rxray_kernel::{ConnTotals, DropTotals, LatencyTotals, LiveSource};
use std::collections::HashMap;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// A client's queue as a view writes to it: records count against its capacity (and are lost,
/// counted, when it is full); headers, periodic tables and the last output always go in.
pub struct Queue<'a> {
    pub(super) q: &'a mut VecDeque<Vec<u8>>,
    pub(super) cap: usize,
    pub(super) lost: &'a mut u64,
    pub(super) matched: &'a mut u64,
}

fn out_frame(body: &[u8]) -> Vec<u8> {
    super::frame(Kind::Out, body)
}

impl Queue<'_> {
    /// One record; `false` when the queue was full and it was lost.
    pub fn record(&mut self, body: &[u8]) -> bool {
        *self.matched += 1;
        if self.q.len() >= self.cap {
            *self.lost += 1;
            return false;
        }
        self.q.push_back(out_frame(body));
        true
    }

    /// Output that is not a record (a periodic table or snapshot, a header). A client that stops
    /// reading does not grow the queue past its capacity with them either: a full queue loses
    /// the output, counted as lost (the next snapshot supersedes it).
    pub fn extra(&mut self, body: &[u8]) {
        if body.is_empty() {
            return;
        }
        if self.q.len() >= self.cap {
            *self.lost += 1;
            return;
        }
        self.q.push_back(out_frame(body));
    }

}

/// The agent's sources a view reads from, when it asks.
#[derive(Clone, Copy, Default)]
pub struct Feeds<'a> {
    /// The drop tracepoint (its counters), when the agent counts drops.
    pub drops: Option<&'a LiveSource>,
    /// The TCP tracepoints (their map of open connections and counters), when the agent follows them.
    pub conns: Option<&'a LiveSource>,
    /// The kernel's monotonic clock now (the time the periodic tables are stamped with).
    pub now_ns: u64,
    /// The agent's capture snap length, when it has a capture ring for joined clients.
    pub capture_snap: Option<u32>,
    /// The agent's latency histograms, when it measures latency.
    pub latency: Option<LatencyFeed<'a>>,
    /// The agent runs its detectors (a joined `top`'s alerts pane).
    pub detect: bool,
    /// The agent's HTTP view's ports, when it runs (a joined `top`'s HTTP pane).
    pub http_ports: Option<&'a [u16]>,
    /// The HTTP copies' kernel counters of an interface (a joined `top`'s loss line).
    pub http_totals: Option<&'a dyn Fn(&str) -> Option<rxray_kernel::http::HttpKernelTotals>>,
}

/// The latency histograms and counters over some of the agent's interfaces.
pub type LatencyOf<'a> = &'a dyn Fn(&[String]) -> Option<(LatencySnapshot, LatencyTotals)>;

/// The agent's latency measurement: its histograms, and the stages this kernel has.
#[derive(Clone, Copy)]
pub struct LatencyFeed<'a> {
    pub read: LatencyOf<'a>,
    pub queue_stage: bool,
    pub udp_stage: bool,
}

/// One joined view.
pub trait View {
    /// Output before the first record (a table's header).
    fn begin(&mut self, _q: &mut Queue) {}
    fn on_drop(&mut self, _d: &DropEvent, _q: &mut Queue) {}
    /// A whole packet from the agent's capture ring.
    fn on_frame(&mut self, _f: &Frame, _q: &mut Queue) {}
    /// A connection that closed at `ts_ns`.
    fn on_closed(&mut self, _c: &Connection, _ts_ns: u64, _q: &mut Queue) {}
    /// An alert of the agent's detectors (after its firewall acted on it).
    fn on_alert(&mut self, _a: &rxray_engine::alert::Alert, _q: &mut Queue) {}
    /// A TCP segment of the agent's HTTP view, on `iface`.
    fn on_http_segment(&mut self, _iface: &str, _seg: &rxray_engine::http::TcpSegment, _q: &mut Queue) {}
    /// Periodic output, when due.
    fn tick(&mut self, _f: &Feeds, _now: Instant, _q: &mut Queue) {}
    /// The last output, and the command's closing summary (for its stderr).
    fn finish(&mut self, f: &Feeds, q: &mut Queue) -> String;
    /// Reached its `--count`.
    fn done(&self) -> bool;
    /// Needs the agent's drop events.
    fn wants_drops(&self) -> bool {
        false
    }
    /// Needs the agent's capture ring.
    fn wants_frames(&self) -> bool {
        false
    }
}

/// The view a request asks for (`Ok(None)`: the command is not one of these), or why the agent
/// cannot serve it.
pub fn view_of(req: &JoinRequest, interfaces: &[String], feeds: &Feeds) -> Result<Option<Box<dyn View>>, String> {
    let every = req.interval.filter(|i| i.is_finite() && *i > 0.0).map(|i| Duration::from_secs_f64(i.clamp(0.05, crate::args::MAX_SECONDS)));
    Ok(Some(match req.command.as_str() {
        "drops" => {
            let src = feeds.drops.ok_or("the agent counts no drops (`[drops] enabled = false`, or its tracepoint failed): --standalone attaches")?;
            let mut ifindexes = Vec::new();
            for i in interfaces {
                ifindexes.push(rxray_kernel::ifindex_of(i).map_err(|e| format!("{i}: {e}"))?);
            }
            let names = Names::load().map_err(|e| format!("{e:#}"))?;
            let base_lost = src.drops().and_then(|d| d.totals().ok()).map_or(0, |t| t.lost);
            Box::new(DropsView { names, ifindexes, flows: BTreeMap::new(), by_slot: BTreeMap::new(), drops: 0, delivered: 0, base_lost, json: req.json, count: req.count, every, next: every.map(|e| Instant::now() + e), started: Instant::now() })
        }
        "conns" => {
            let src = feeds.conns.ok_or("the agent follows no TCP connections (`[conns] enabled = false`, or its tracepoints failed): --standalone attaches")?;
            let mut os = LinuxOs::new();
            let seeds = Seeds::new(&os.tcp_sockets().unwrap_or_default());
            let listen0 = os.tcp_counters(crate::conns::LISTEN_COUNTERS).unwrap_or_default();
            let base = src.conns().and_then(|c| c.totals().ok()).unwrap_or_default();
            Box::new(ConnsView { os, seeds, listen0, base, closed: 0, delivered: 0, json: req.json, count: req.count, every, next: every.map(|e| Instant::now() + e), started: Instant::now() })
        }
        "capture" => {
            let snap = feeds.capture_snap.ok_or("the agent has no capture ring for joined clients (`[clients] capture_ring = 0`): --standalone attaches")?;
            if req.snap == 0 || req.snap > snap {
                return Err(format!("-s {}: the agent's capture ring copies at most {snap} bytes per packet (--standalone attaches with its own)", req.snap));
            }
            let filter = req.filter.as_deref().filter(|f| !f.trim().is_empty()).map(rxray_engine::filter::Filter::parse).transpose().map_err(|e| format!("filter: {e}"))?;
            Box::new(CaptureView { interfaces: interfaces.to_vec(), filter, snap: req.snap as usize, count: req.count, written: 0, filtered: 0 })
        }
        "latency" => {
            let feed = feeds.latency.ok_or("the agent measures no delivery latency: turn it on with `[latency] enabled = true` in its config, or --standalone")?;
            let (snap, totals) = (feed.read)(interfaces).ok_or("reading the agent's latency histograms failed")?;
            let base_flows = snap.flows.into_iter().map(|f| ((f.proto, f.remote, f.remote_port, f.local, f.local_port), f.latency)).collect();
            let base_procs = snap.procs.into_iter().map(|p| ((p.pid, p.cgroup_id), p.latency)).collect();
            Box::new(LatencyView {
                interfaces: interfaces.to_vec(),
                os: LinuxOs::new(),
                base_flows,
                base_procs,
                base_totals: totals,
                json: req.json,
                tty: req.tty,
                top: req.top.unwrap_or(20),
                count: req.count,
                reached: false,
                every,
                next: every.map(|e| Instant::now() + e),
                started: Instant::now(),
            })
        }
        "top" => Box::new(super::top_view::view(interfaces, every, feeds)),
        _ => return Ok(None),
    }))
}

type FlowEnds = (u8, Option<std::net::IpAddr>, u16, Option<std::net::IpAddr>, u16);

/// A joined `latency`: the agent's histograms less what they held when the client joined, so it
/// reports what it would have measured had it attached then (the one difference: the max of an
/// entry that already existed is the entry's, which may be older than the client).
struct LatencyView {
    interfaces: Vec<String>,
    os: LinuxOs,
    base_flows: HashMap<FlowEnds, LatencyEntry>,
    base_procs: HashMap<(u32, u64), LatencyEntry>,
    base_totals: LatencyTotals,
    json: bool,
    tty: bool,
    top: usize,
    count: Option<u64>,
    reached: bool,
    every: Option<Duration>,
    next: Option<Instant>,
    started: Instant,
}

fn entry_since(cur: &mut LatencyEntry, base: Option<&LatencyEntry>) {
    use crate::agent_rollups::growth;
    cur.read = growth(&cur.read, base.map(|b| &b.read));
    cur.queue = growth(&cur.queue, base.map(|b| &b.queue));
}

fn latency_since(t: &LatencyTotals, b: &LatencyTotals) -> LatencyTotals {
    LatencyTotals {
        stamped: t.stamped.saturating_sub(b.stamped),
        queued: t.queued.saturating_sub(b.queued),
        read: t.read.saturating_sub(b.read),
        flow_insert_failed: t.flow_insert_failed.saturating_sub(b.flow_insert_failed),
        proc_insert_failed: t.proc_insert_failed.saturating_sub(b.proc_insert_failed),
    }
}

impl LatencyView {
    /// The histograms and counters since the client joined.
    fn since_join(&self, f: &Feeds) -> Option<(LatencySnapshot, LatencyTotals)> {
        let (mut snap, t) = (f.latency?.read)(&self.interfaces)?;
        for x in snap.flows.iter_mut() {
            entry_since(&mut x.latency, self.base_flows.get(&(x.proto, x.remote, x.remote_port, x.local, x.local_port)));
        }
        for p in snap.procs.iter_mut() {
            entry_since(&mut p.latency, self.base_procs.get(&(p.pid, p.cgroup_id)));
        }
        let moved = |e: &LatencyEntry| e.read.count > 0 || e.queue.count > 0;
        snap.flows.retain(|x| moved(&x.latency));
        snap.procs.retain(|p| moved(&p.latency));
        Some((snap, latency_since(&t, &self.base_totals)))
    }

    fn report(&mut self, f: &Feeds, q: &mut Queue, clear: bool) -> Option<LatencyTotals> {
        let (snap, t) = self.since_join(f)?;
        let (flows, procs) = crate::latency::report_of(&snap, &mut self.os);
        let body = crate::latency::render(&flows, &procs, &t, f.now_ns, self.json, self.top);
        if clear && self.tty {
            q.extra(format!("\x1b[H\x1b[2J{body}").as_bytes());
        } else {
            q.extra(body.as_bytes());
        }
        Some(t)
    }
}

impl View for LatencyView {
    fn tick(&mut self, f: &Feeds, now: Instant, q: &mut Queue) {
        if let Some(c) = self.count {
            // `-c`: ends once this many packets are measured (checked as often as `latency` does).
            if self.since_join(f).is_some_and(|(_, t)| t.read >= c) {
                self.reached = true;
                return;
            }
        }
        let (Some(every), Some(next)) = (self.every, self.next) else { return };
        if now >= next {
            self.next = Some(next + every);
            self.report(f, q, true);
        }
    }

    fn finish(&mut self, f: &Feeds, q: &mut Queue) -> String {
        let Some(t) = self.report(f, q, false) else { return "rxray: the agent's latency histograms could not be read\n".into() };
        let (queue, udp) = f.latency.map_or((false, false), |l| (l.queue_stage, l.udp_stage));
        crate::latency::summary_text(&t, queue, udp, self.started.elapsed().as_secs_f64(), self.json)
    }

    fn done(&self) -> bool {
        self.reached
    }
}

/// A joined `capture`'s record of one packet: `[interface u32][rx queue u32][length on the wire
/// u32][time ns u64][bytes]`, big-endian, the interface as its place in the client's `-i` list.
pub fn capture_record(idb: u32, f: &Frame, snap: usize) -> Vec<u8> {
    let data = &f.data[..f.data.len().min(snap)];
    let mut v = Vec::with_capacity(20 + data.len());
    v.extend_from_slice(&idb.to_be_bytes());
    v.extend_from_slice(&f.rx_queue.to_be_bytes());
    v.extend_from_slice(&f.orig_len.to_be_bytes());
    v.extend_from_slice(&f.ts_ns.to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// One packet of a joined `capture`, as the agent sent it.
#[derive(Debug, PartialEq)]
pub struct CaptureRecord<'a> {
    pub idb: u32,
    pub rx_queue: u32,
    pub orig_len: u32,
    pub ts_ns: u64,
    pub data: &'a [u8],
}

/// Reads a `capture_record`; `None` when it is shorter than its header.
pub fn parse_capture_record(b: &[u8]) -> Option<CaptureRecord<'_>> {
    let u32_at = |i: usize| b.get(i..i + 4).map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]));
    let ts = b.get(12..20)?;
    Some(CaptureRecord {
        idb: u32_at(0)?,
        rx_queue: u32_at(4)?,
        orig_len: u32_at(8)?,
        ts_ns: u64::from_be_bytes(ts.try_into().ok()?),
        data: &b[20..],
    })
}

/// A joined `capture`: the agent's whole packets on its interfaces that its filter takes, cut to
/// its snap length (the length on the wire kept); the client writes the pcapng.
struct CaptureView {
    interfaces: Vec<String>,
    filter: Option<rxray_engine::filter::Filter>,
    snap: usize,
    count: Option<u64>,
    written: u64,
    filtered: u64,
}

impl View for CaptureView {
    fn on_frame(&mut self, f: &Frame, q: &mut Queue) {
        let Some(idb) = self.interfaces.iter().position(|i| i == f.iface) else { return };
        if self.done() {
            return;
        }
        if let Some(flt) = &self.filter {
            // The same filter the kernel runs for a standalone capture, on the packet's bytes.
            let p = rxray_wire::dissect::dissect(f.data, f.linktype, f.ts_ns, f.orig_len, f.iface, f.data.len());
            if !flt.matches(&p) {
                self.filtered += 1;
                return;
            }
        }
        if q.record(&capture_record(idb as u32, f, self.snap)) {
            self.written += 1;
        }
    }

    fn finish(&mut self, _f: &Feeds, _q: &mut Queue) -> String {
        String::new()
    }

    fn done(&self) -> bool {
        self.count.is_some_and(|c| self.written >= c)
    }

    fn wants_frames(&self) -> bool {
        !self.done()
    }
}

/// A joined `drops`: the agent's drop events on its interfaces, counted per reason from when it
/// joined (the agent's counters are over all its interfaces and since it started).
struct DropsView {
    names: Names,
    ifindexes: Vec<u32>,
    flows: BTreeMap<drops::FlowKey, u64>,
    /// Drops per counter slot (as the kernel counts them: the last slot takes every larger reason).
    by_slot: BTreeMap<u32, u64>,
    drops: u64,
    delivered: u64,
    /// The agent's ring losses when the client joined.
    base_lost: u64,
    json: bool,
    count: Option<u64>,
    every: Option<Duration>,
    next: Option<Instant>,
    started: Instant,
}

impl DropsView {
    fn totals(&self, f: &Feeds) -> DropTotals {
        let lost = f.drops.and_then(|s| s.drops()).and_then(|d| d.totals().ok()).map_or(0, |t| t.lost).saturating_sub(self.base_lost);
        DropTotals { drops: self.drops, events: self.drops, lost, no_netns: 0, by_reason: self.by_slot.iter().map(|(k, v)| (*k, *v)).collect() }
    }
}

impl View for DropsView {
    fn on_drop(&mut self, d: &DropEvent, q: &mut Queue) {
        if !self.ifindexes.contains(&d.ifindex) || self.done() {
            return;
        }
        self.drops += 1;
        let slot = d.reason.min(rxray_kernel::drops::REASON_SLOTS as u32 - 1);
        *self.by_slot.entry(slot).or_default() += 1;
        let mut buf = Vec::with_capacity(256);
        if drops::write_drop(&mut buf, d, &mut self.names, &mut self.flows, self.json).is_ok() && q.record(&buf) {
            self.delivered += 1;
        }
    }

    fn tick(&mut self, f: &Feeds, now: Instant, q: &mut Queue) {
        let (Some(every), Some(next)) = (self.every, self.next) else { return };
        if now < next {
            return;
        }
        self.next = Some(next + every);
        let mut buf = Vec::new();
        if drops::write_counts(&mut buf, &self.names, &self.totals(f), f.now_ns, self.json).is_ok() {
            q.extra(&buf);
        }
    }

    fn finish(&mut self, f: &Feeds, _q: &mut Queue) -> String {
        drops::summary_text(&self.names, &self.totals(f), &self.flows, self.delivered, self.started.elapsed().as_secs_f64(), self.json)
    }

    fn done(&self) -> bool {
        self.count.is_some_and(|c| self.delivered >= c)
    }

    fn wants_drops(&self) -> bool {
        !self.done()
    }
}

/// A joined `conns`: the agent's TCP connections, each as it closes, and the open ones at
/// intervals and at the end; seeded (connections older than the client) as `conns` seeds them.
struct ConnsView {
    os: LinuxOs,
    seeds: Seeds,
    listen0: BTreeMap<String, u64>,
    base: ConnTotals,
    closed: u64,
    delivered: u64,
    json: bool,
    count: Option<u64>,
    every: Option<Duration>,
    next: Option<Instant>,
    started: Instant,
}

/// The kernel's connection counters since `base`.
fn conn_totals_since(t: &ConnTotals, base: &ConnTotals) -> ConnTotals {
    ConnTotals {
        new: t.new.saturating_sub(base.new),
        events: t.events.saturating_sub(base.events),
        lost: t.lost.saturating_sub(base.lost),
        insert_failed: t.insert_failed.saturating_sub(base.insert_failed),
        untracked: t.untracked.saturating_sub(base.untracked),
        rst_tx_nosock: t.rst_tx_nosock.saturating_sub(base.rst_tx_nosock),
        closed: t.closed.saturating_sub(base.closed),
    }
}

impl ConnsView {
    fn live(&mut self, f: &Feeds, q: &mut Queue) {
        let Some(snap) = f.conns.and_then(|s| s.conn_snapshot().ok()) else { return };
        let mut buf = Vec::new();
        if crate::conns::live_snapshot(&mut buf, &snap, &self.seeds, &mut self.os, self.json).is_ok() {
            q.extra(&buf);
        }
    }
}

impl View for ConnsView {
    fn begin(&mut self, q: &mut Queue) {
        if !self.json {
            q.extra(format!("{}\n", crate::conns::table_header()).as_bytes());
        }
    }

    fn on_closed(&mut self, c: &Connection, ts_ns: u64, q: &mut Queue) {
        if self.done() {
            return;
        }
        self.closed += 1;
        let mut r = record(c, ts_ns, "closed");
        self.seeds.mark(&mut r);
        fill(&mut self.os, &mut r);
        let mut buf = Vec::with_capacity(512);
        if crate::conns::emit(&mut buf, &r, self.json).is_ok() && q.record(&buf) {
            self.delivered += 1;
        }
    }

    fn tick(&mut self, f: &Feeds, now: Instant, q: &mut Queue) {
        let (Some(every), Some(next)) = (self.every, self.next) else { return };
        if now >= next {
            self.next = Some(next + every);
            self.live(f, q);
        }
    }

    fn finish(&mut self, f: &Feeds, q: &mut Queue) -> String {
        // The connections still open at the end, once (as `conns` lists them at exit).
        self.live(f, q);
        let src = f.conns.and_then(|s| s.conns());
        let totals = src.and_then(|c| c.totals().ok()).map(|t| conn_totals_since(&t, &self.base)).unwrap_or_default();
        let listen = self.os.tcp_counters(crate::conns::LISTEN_COUNTERS).unwrap_or_default();
        let since = listen.iter().map(|(k, v)| (k.clone(), v.saturating_sub(*self.listen0.get(k).unwrap_or(&0)))).collect();
        crate::conns::Closing {
            closed: self.closed,
            delivered: self.delivered,
            totals,
            listen,
            since,
            reasons: None,
            readers: src.is_some_and(|c| c.readers),
            probe: src.is_some_and(|c| c.probe),
            seconds: self.started.elapsed().as_secs_f64(),
        }
        .text(self.json)
    }

    fn done(&self) -> bool {
        self.count.is_some_and(|c| self.closed >= c)
    }
}

/// The agent's drop ring, read while a joined `drops` wants its events (turned on and off in the
/// program as clients come and go); each drop goes to the hub.
pub fn pump_drops(drop_src: &mut Option<LiveSource>, conns: Option<&LiveSource>, hub: &mut super::hub::Hub, now_ns: u64) {
    let Some(src) = drop_src.as_mut() else { return };
    let want = hub.wants_drops();
    if let Some(d) = src.drops_mut() {
        if d.events() != want {
            if let Err(e) = d.set_events(want) {
                eprintln!("rxray agent: turning drop events {}: {e}", if want { "on" } else { "off" });
            }
        }
    }
    // Events are copied out of the ring first: the views may read the drop counters meanwhile.
    let mut got = Vec::new();
    for _ in 0..crate::session::BATCH {
        match rxray_engine::source::Source::next_event(src) {
            Some(Ok(rxray_engine::source::Event::Drop(d))) => got.push(d.clone()),
            Some(_) => {}
            None => break,
        }
    }
    let feeds = Feeds { drops: drop_src.as_ref(), conns, now_ns, ..Default::default() };
    for d in &got {
        hub.on_drop(d, &feeds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_record_round_trips_cut_to_its_snap() {
        let data: Vec<u8> = (0..100u8).collect();
        let f = Frame { ts_ns: 0x0102_0304_0506_0708, ifindex: 7, iface: "veth-b", rx_queue: 3, orig_len: 1500, linktype: rxray_wire::LinkType::ETHERNET, data: &data };
        let b = capture_record(1, &f, 60);
        assert_eq!(parse_capture_record(&b), Some(CaptureRecord { idb: 1, rx_queue: 3, orig_len: 1500, ts_ns: 0x0102_0304_0506_0708, data: &data[..60] }));
        assert_eq!(parse_capture_record(&b[..19]), None);
    }

    #[test]
    fn periodic_output_to_a_client_that_stops_reading_stays_within_its_queue() {
        let (mut q, mut lost, mut matched) = (VecDeque::new(), 0, 0);
        let mut queue = Queue { q: &mut q, cap: 4, lost: &mut lost, matched: &mut matched };
        for i in 0..100 {
            queue.extra(format!("snapshot {i}\n").as_bytes());
        }
        queue.extra(b"");
        assert_eq!((q.len(), lost, matched), (4, 96, 0));
    }
}

/// Copies to the capture ring are on while a joined `capture` (or the flight recorder) reads them.
pub fn joined_capture<'a>(ingresses: impl Iterator<Item = &'a mut rxray_kernel::Ingress>, want: bool) {
    for ing in ingresses {
        if ing.capturing() != want {
            if let Err(e) = ing.set_capture(want) {
                eprintln!("rxray agent: turning packet copies for capture {}: {e}", if want { "on" } else { "off" });
            }
        }
    }
}
