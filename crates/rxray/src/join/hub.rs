//! The agent's side of joining: the joined clients, each with its own filter, its own bounded queue
//! and its own counters. A client's filter never changes what the agent or another client sees;
//! a client that reads too slowly loses events from its own queue (counted and told to it) and
//! never holds up the agent: every write is non-blocking.
use super::{json_frame, Hello, JoinRequest, Kind, COMMANDS, VERSION};
use crate::context::KernelContext;
use crate::records::agent::{ClientStatus, JoinSummary, JoinTotals, LostNotice};
use crate::sinks::eve::Eve;
use crate::sinks::Sink;
use crate::watch::{render, PacketContext};
use rxray_engine::event::Packet;
use rxray_engine::filter::Filter;
use rxray_engine::http::{HttpConfig, HttpTracker, TcpSegment};
use rxray_kernel::http::HttpKernelTotals;
use rxray_engine::flows::{sort, FlowKey, RateTracker, SortBy};
use rxray_engine::source::{Event, FlowSnapshot, Source as _};
use rxray_kernel::{LiveSource, Totals};
use std::collections::HashMap;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The kernel counters of the interface named, as the agent reads them (None: not the agent's).
pub type TotalsOf<'a> = &'a dyn Fn(&str) -> Option<Totals>;

/// What the hub needs to know of the agent, per call.
pub struct AgentView<'a> {
    /// The interfaces the agent owns.
    pub owned: &'a [String],
    pub host: &'a str,
    pub totals: TotalsOf<'a>,
    /// The HTTP view's ports, when it runs.
    pub http_ports: Option<&'a [u16]>,
    /// The HTTP copies' kernel counters of an interface.
    pub http_totals: &'a dyn Fn(&str) -> Option<HttpKernelTotals>,
    /// This host's addresses (the detectors never block them).
    pub hosts: &'a [std::net::IpAddr],
    /// Event time now (the detectors' ticks).
    pub now_ns: u64,
    /// The agent's interface indexes (the kernel context's drops are counted on them).
    pub ifindexes: &'a [u32],
    /// The flow table over these interfaces now, with their ingress counters (a joined `flows`).
    pub flows: FlowsOf<'a>,
    /// The drop and connection sources (joined `drops` and `conns`).
    pub feeds: super::views::Feeds<'a>,
}

impl<'a> AgentView<'a> {
    /// The sources the joined views read (with the HTTP copies' counters).
    fn view_feeds(&self) -> super::views::Feeds<'a> {
        super::views::Feeds { http_totals: Some(self.http_totals), ..self.feeds }
    }
}

/// The flow table and ingress counters over some of the agent's interfaces.
pub type FlowsOf<'a> = &'a dyn Fn(&[String]) -> Option<(FlowSnapshot, Totals)>;

/// A joined `flows`: the agent's flow table, less what it held when the client joined, so the
/// client sees what it would have counted had it attached then.
struct FlowsClient {
    rates: RateTracker,
    by: SortBy,
    every: Duration,
    next: Instant,
    top: usize,
    tty: bool,
    base: HashMap<FlowKey, (u64, u64, [u64; 8])>,
    base_totals: Totals,
    base_protocols: HashMap<&'static str, (u64, u64)>,
    base_ifaces: HashMap<u32, (u64, u64)>,
}

impl FlowsClient {
    fn new(req: &JoinRequest, now: Option<(FlowSnapshot, Totals)>) -> FlowsClient {
        let every = Duration::from_secs_f64(req.interval.filter(|i| i.is_finite() && *i >= 0.0).unwrap_or(1.0).clamp(0.05, 3600.0));
        let by = match req.sort.as_deref() {
            Some("packets") => SortBy::Packets,
            Some("rate") => SortBy::Rate,
            _ => SortBy::Bytes,
        };
        let (snap, t) = now.unwrap_or_default();
        FlowsClient {
            rates: RateTracker::default(),
            by,
            every,
            next: Instant::now() + every,
            top: req.top.unwrap_or(20),
            tty: req.tty,
            base: snap.flows.into_iter().map(|r| (r.key, (r.packets, r.bytes, r.size_hist))).collect(),
            base_totals: t,
            base_protocols: snap.protocols.into_iter().map(|(n, c)| (n, (c.packets, c.bytes))).collect(),
            base_ifaces: snap.interfaces.into_iter().map(|(i, _, c)| (i, (c.packets, c.bytes))).collect(),
        }
    }

    /// The snapshot as counted since the client joined.
    fn since_join(&self, mut snap: FlowSnapshot, t: Totals) -> (FlowSnapshot, Totals) {
        snap.flows.retain_mut(|r| {
            if let Some((p, b, h)) = self.base.get(&r.key) {
                if r.packets >= *p {
                    r.packets -= p;
                    r.bytes = r.bytes.saturating_sub(*b);
                    for (x, y) in r.size_hist.iter_mut().zip(h) {
                        *x = x.saturating_sub(*y);
                    }
                }
            }
            r.packets > 0
        });
        for (n, c) in snap.protocols.iter_mut() {
            if let Some((p, b)) = self.base_protocols.get(n) {
                c.packets = c.packets.saturating_sub(*p);
                c.bytes = c.bytes.saturating_sub(*b);
            }
        }
        for (i, _, c) in snap.interfaces.iter_mut() {
            if let Some((p, b)) = self.base_ifaces.get(i) {
                c.packets = c.packets.saturating_sub(*p);
                c.bytes = c.bytes.saturating_sub(*b);
            }
        }
        (snap, t.since(&self.base_totals))
    }
}

/// A joined `alerts`: its own detectors, fed the agent's packets from when it joined.
struct AlertsClient {
    insp: rxray_engine::inspect::Inspector,
    raised: Vec<rxray_engine::alert::Alert>,
    last_tick: u64,
    /// Its signatures read packet payloads: fed the agent's capture ring (each frame whole, as
    /// a standalone `alerts` reads them), not the event ring's 256-byte prefix.
    whole: bool,
}

/// A joined `rxray http`: its own tracker, fed the agent's segments on its ports from the moment
/// it joined, so it shows what it would show had it attached then.
struct HttpClient {
    tracker: HttpTracker,
    ports: Vec<u16>,
    every: Duration,
    next: Instant,
    base: HttpKernelTotals,
    top: usize,
}

fn http_sum(ifaces: &[String], f: &dyn Fn(&str) -> Option<HttpKernelTotals>) -> HttpKernelTotals {
    let mut t = HttpKernelTotals::default();
    for x in ifaces.iter().filter_map(|i| f(i)) {
        t.add(&x);
    }
    t
}

/// How long a client that said bye has to read its summary before the agent closes it anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Loss notices go out at most this often (the summary has the final figure).
const NOTICE_EVERY: Duration = Duration::from_millis(500);

/// One joined client.
struct Client {
    id: u64,
    conn: UnixStream,
    req: JoinRequest,
    pid: Option<i32>,
    filter: Option<Filter>,
    interfaces: Vec<String>,
    joined: Instant,
    /// Encoded frames waiting for the socket (events count against `cap`; notices and the
    /// summary do not).
    queue: VecDeque<Vec<u8>>,
    /// Bytes of the front frame already written.
    written: usize,
    cap: usize,
    /// Events this client's filter accepted, that it rejected, and that its full queue dropped.
    matched: u64,
    filtered: u64,
    lost: u64,
    lost_told: u64,
    last_notice: Instant,
    /// The kernel's counters over its interfaces when it joined (its summary is the difference).
    base: Totals,
    /// Said bye: the summary is queued; closed once written, or at this deadline.
    closing: Option<Instant>,
    inbuf: Vec<u8>,
    /// The client's socket failed or closed.
    gone: bool,
    http: Option<HttpClient>,
    alerts: Option<AlertsClient>,
    flows: Option<FlowsClient>,
    /// A joined `drops` or `conns` (join::views).
    view: Option<Box<dyn super::views::View>>,
}

/// The joined clients of an agent.
pub struct Hub {
    clients: Vec<Client>,
    next_id: u64,
    /// The agent's `[clients]` limits.
    pub max: usize,
    pub queue: usize,
    /// The process per flow, attached when the first client that wants it joins.
    ctx: Option<(LiveSource, KernelContext)>,
    ctx_tried: bool,
    scratch: Vec<u8>,
    /// A capture ring frame dissected whole (joined `alerts` reading whole payloads).
    frame_pkt: Packet,
}

/// The sum of the kernel's counters over `ifaces`.
fn totals_over(ifaces: &[String], totals: TotalsOf) -> Totals {
    let mut t = Totals::default();
    for x in ifaces.iter().filter_map(|i| totals(i)) {
        t.add(&x);
    }
    t
}

fn peer_pid(conn: &UnixStream) -> Option<i32> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a ucred we own.
    let r = unsafe { libc::getsockopt(conn.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, &mut cred as *mut _ as *mut libc::c_void, &mut len) };
    (r == 0 && cred.pid > 0).then_some(cred.pid)
}

impl Hub {
    pub fn new(max: usize, queue: usize) -> Hub {
        Hub { clients: Vec::new(), next_id: 1, max, queue, ctx: None, ctx_tried: false, scratch: Vec::with_capacity(512), frame_pkt: rxray_wire::dissect::empty_packet() }
    }

    /// Whether any client needs packet events (the agent turns them on in its programs).
    pub fn wants_packets(&self) -> bool {
        self.clients.iter().any(|c| matches!(c.req.command.as_str(), "watch" | "alerts") && c.closing.is_none())
    }

    /// Takes a join request (already read from `conn`); answers with the hello frame. `owned`:
    /// the interfaces the agent owns.
    pub fn join(&mut self, conn: UnixStream, req: JoinRequest, agent: &AgentView) {
        let (owned, host, totals) = (agent.owned, agent.host, agent.totals);
        let refuse = |conn: &UnixStream, error: String, not_owned: bool| {
            let h = Hello { v: VERSION, ok: false, error: Some(error), not_owned, host: host.to_string(), ..Default::default() };
            let mut w = conn;
            let _ = w.write_all(&json_frame(Kind::Hello, &h));
        };
        let _ = conn.set_write_timeout(Some(Duration::from_millis(500)));
        if req.v != VERSION {
            return refuse(&conn, format!("protocol version {} asked; this agent speaks {VERSION}", req.v), false);
        }
        if !COMMANDS.contains(&req.command.as_str()) {
            return refuse(&conn, format!("`{}` cannot join this agent (it serves: {})", req.command, COMMANDS.join(", ")), true);
        }
        let missing: Vec<&String> = req.interfaces.iter().filter(|i| !owned.contains(i)).collect();
        if !missing.is_empty() {
            let m = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            return refuse(&conn, format!("the agent owns {}, not {m}", owned.join(", ")), true);
        }
        if self.clients.len() >= self.max {
            return refuse(&conn, format!("the agent already has {} joined clients ([clients] max)", self.max), false);
        }
        let http = if req.command == "http" {
            let Some(ports) = agent.http_ports else {
                return refuse(&conn, "the agent runs without its HTTP view: turn it on with `[http] enabled = true` in its config".into(), false);
            };
            let extra: Vec<String> = req.ports.iter().filter(|p| !ports.contains(p)).map(|p| p.to_string()).collect();
            if req.ports.is_empty() || !extra.is_empty() {
                let have = ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",");
                return refuse(&conn, format!("the agent's HTTP view watches ports {have}, not {}: ask for some of those (--port {have})", extra.join(",")), false);
            }
            let every = Duration::from_secs_f64(req.interval.filter(|i| i.is_finite() && *i > 0.0).unwrap_or(1.0).clamp(0.05, 3600.0));
            let cfg = HttpConfig { max_endpoints: req.max_endpoints.unwrap_or(1000).clamp(1, 100_000), ..HttpConfig::default() };
            let ifaces = if req.interfaces.is_empty() { owned.to_vec() } else { req.interfaces.clone() };
            Some(HttpClient { tracker: HttpTracker::new(cfg), ports: req.ports.clone(), every, next: Instant::now() + every, base: http_sum(&ifaces, agent.http_totals), top: req.top.unwrap_or(20) })
        } else {
            None
        };
        let alerts = if req.command == "alerts" {
            let Some(r) = req.alerts.as_ref() else {
                return refuse(&conn, "an alerts join names its detection options".into(), false);
            };
            match crate::alerts::inspector(&crate::alerts::opts_of(r), agent.hosts) {
                Ok(insp) => {
                    let whole = insp.signatures().is_some_and(|s| s.needs_whole_payload());
                    if whole && agent.feeds.capture_snap.is_none() {
                        return refuse(&conn, "its signatures read whole packet payloads, and the agent has no capture ring for joined clients (`[clients] capture_ring = 0`)".into(), false);
                    }
                    Some(AlertsClient { insp, raised: Vec::new(), last_tick: 0, whole })
                }
                Err(e) => return refuse(&conn, format!("{e:#}"), false),
            }
        } else {
            None
        };
        let flows = (req.command == "flows").then(|| {
            let ifaces = if req.interfaces.is_empty() { owned.to_vec() } else { req.interfaces.clone() };
            FlowsClient::new(&req, (agent.flows)(&ifaces))
        });
        let view_ifaces = if req.interfaces.is_empty() { owned.to_vec() } else { req.interfaces.clone() };
        let view = match super::views::view_of(&req, &view_ifaces, &agent.view_feeds()) {
            Ok(v) => v,
            Err(e) => return refuse(&conn, e, false),
        };
        let filter = match req.filter.as_deref().filter(|f| !f.trim().is_empty()).map(Filter::parse).transpose() {
            Ok(f) => f,
            Err(e) => return refuse(&conn, format!("filter: {e}"), false),
        };
        if matches!(req.command.as_str(), "watch" | "flows") && req.context && !self.ctx_tried {
            self.ctx_tried = true;
            // With the drops per flow on the agent's interfaces (`flows` shows them).
            if let Some((c, parts)) = KernelContext::attach(Some((agent.ifindexes, 1 << 18))) {
                let (src, c) = crate::context::with_context(LiveSource::new(), Some((c, parts)));
                self.ctx = c.map(|c| (src, c));
            }
        }
        let interfaces = if req.interfaces.is_empty() { owned.to_vec() } else { req.interfaces.clone() };
        let cap = req.queue.unwrap_or(self.queue).clamp(1, self.queue);
        let id = self.next_id;
        self.next_id += 1;
        let hello = Hello { v: VERSION, ok: true, error: None, not_owned: false, host: host.to_string(), interfaces: interfaces.clone(), queue: cap, id };
        let mut w = &conn;
        if w.write_all(&json_frame(Kind::Hello, &hello)).is_err() || conn.set_nonblocking(true).is_err() {
            return;
        }
        let pid = peer_pid(&conn);
        let base = totals_over(&interfaces, totals);
        self.clients.push(Client {
            id,
            conn,
            req,
            pid,
            filter,
            interfaces,
            joined: Instant::now(),
            queue: VecDeque::new(),
            written: 0,
            cap,
            matched: 0,
            filtered: 0,
            lost: 0,
            lost_told: 0,
            last_notice: Instant::now(),
            base,
            closing: None,
            inbuf: Vec::new(),
            gone: false,
            http,
            alerts,
            flows,
            view,
        });
        if let Some(c) = self.clients.last_mut() {
            c.with_view(|v, q| v.begin(q));
        }
    }

    /// Whether a joined `capture` (or an `alerts` whose signatures read whole payloads) needs
    /// the agent's capture ring.
    pub fn wants_frames(&self) -> bool {
        self.clients.iter().any(|c| c.closing.is_none() && (c.view.as_ref().is_some_and(|v| v.wants_frames()) || c.alerts.as_ref().is_some_and(|a| a.whole)))
    }

    /// One whole packet from the agent's capture ring: each joined `capture` takes it if its
    /// interfaces and filter do; each joined `alerts` reading whole payloads inspects it.
    pub fn on_frame(&mut self, f: &rxray_engine::source::Frame, feeds: &super::views::Feeds) {
        if self.clients.iter().any(|c| c.alerts.as_ref().is_some_and(|a| a.whole)) {
            rxray_wire::dissect::dissect_into_whole(&mut self.frame_pkt, f.data, f.linktype, f.ts_ns, f.orig_len, f.iface);
            self.frame_pkt.ifindex = f.ifindex;
            self.frame_pkt.rx_queue = f.rx_queue;
            for c in self.clients.iter_mut() {
                if c.alerts.as_ref().is_some_and(|a| a.whole) && c.closing.is_none() && c.interfaces.iter().any(|i| i == f.iface) {
                    c.inspect(&self.frame_pkt);
                }
            }
        }
        self.to_views(feeds, |v, q| v.on_frame(f, q));
    }

    /// Hands something to every joined view; a view that reached its count then ends.
    fn to_views(&mut self, feeds: &super::views::Feeds, mut f: impl FnMut(&mut dyn super::views::View, &mut super::views::Queue)) {
        for c in self.clients.iter_mut() {
            c.with_view(&mut f);
            c.close_if_done(feeds);
        }
    }

    /// Whether a joined `drops` needs the agent's drop events.
    pub fn wants_drops(&self) -> bool {
        self.clients.iter().any(|c| c.closing.is_none() && c.view.as_ref().is_some_and(|v| v.wants_drops()))
    }

    /// One drop the agent's tracepoint reported: each joined `drops` takes it if it is on its
    /// interfaces.
    pub fn on_drop(&mut self, d: &rxray_engine::source::DropEvent, feeds: &super::views::Feeds) {
        self.to_views(feeds, |v, q| v.on_drop(d, q));
    }

    /// One TCP connection that closed at `ts_ns`: each joined `conns` lists it.
    pub fn on_closed_conn(&mut self, conn: &rxray_engine::source::Connection, ts_ns: u64, feeds: &super::views::Feeds) {
        self.to_views(feeds, |v, q| v.on_closed(conn, ts_ns, q));
    }

    /// Re-reads the process-per-flow table when a client uses it (at most every 200 ms).
    pub fn refresh(&mut self) {
        if let Some((src, c)) = self.ctx.as_mut() {
            // The drops per flow (bounded per pass, as every reader of a ring).
            for _ in 0..crate::session::BATCH {
                match src.next_event() {
                    Some(Ok(Event::Drop(d))) => c.on_drop(d),
                    Some(_) => {}
                    None => break,
                }
            }
            if self.clients.iter().any(|c| c.req.context) {
                let _ = c.refresh(src, false);
            }
        }
    }

    /// One packet the agent read: each watching client whose interfaces and filter take it gets it
    /// rendered as its command renders it, in its own queue.
    pub fn on_packet(&mut self, p: &Packet) {
        if self.clients.is_empty() {
            return;
        }
        let mut reader = None;
        let mut cut: Option<Packet> = None;
        for c in self.clients.iter_mut() {
            if let Some(a) = &c.alerts {
                // One reading whole payloads takes the capture ring's frames instead (on_frame).
                if !a.whole && c.closing.is_none() && c.interfaces.contains(&p.iface) {
                    c.inspect(p);
                }
                continue;
            }
            if c.req.command != "watch" || c.closing.is_some() || c.gone || !c.interfaces.contains(&p.iface) {
                continue;
            }
            if c.req.count.is_some_and(|n| c.matched >= n) {
                continue;
            }
            if let Some(f) = &c.filter {
                if !f.matches(p) {
                    c.filtered += 1;
                    continue;
                }
            }
            c.matched += 1;
            if c.events_queued() >= c.cap {
                // Full within a batch: hand what the socket takes now before counting a loss.
                c.flush();
                if c.events_queued() >= c.cap {
                    c.lost += 1;
                    continue;
                }
            }
            // The payload as the command's own snap length would have copied it.
            let snap = c.req.snap as usize;
            let pkt: &Packet = if p.payload.len() > snap {
                if cut.as_ref().is_none_or(|x| x.payload.len() != snap) {
                    let mut x = p.clone();
                    x.payload.truncate(snap);
                    cut = Some(x);
                }
                cut.as_ref().expect("set above")
            } else {
                p
            };
            let context = if c.req.context {
                self.ctx.as_mut().map(|(_, k)| PacketContext { reader: reader.get_or_insert_with(|| k.reader_of(p)).clone() })
            } else {
                None
            };
            self.scratch.clear();
            self.scratch.extend_from_slice(&[Kind::Out.byte(), 0, 0, 0, 0]);
            if render(&mut self.scratch, pkt, context, c.req.json).is_err() {
                continue;
            }
            let len = (self.scratch.len() - 5) as u32;
            self.scratch[1..5].copy_from_slice(&len.to_be_bytes());
            c.queue.push_back(self.scratch.clone());
        }
    }

    /// One TCP connection the kernel reported (closed, or live at a snapshot): each joined
    /// `alerts`'s exfiltration detector takes it.
    pub fn on_conn(&mut self, s: &rxray_engine::detect::ConnSummary) {
        for c in self.clients.iter_mut() {
            if let Some(a) = c.alerts.as_mut() {
                if c.closing.is_none() {
                    a.insp.on_conn(s, &mut a.raised);
                    c.emit_alerts();
                }
            }
        }
    }

    /// One TCP segment of the agent's HTTP view, on `iface`: each joined `http` whose interfaces
    /// and ports take it counts it in its own tracker.
    pub fn on_http_segment(&mut self, iface: &str, seg: &TcpSegment) {
        let server_port = match seg.dir {
            rxray_engine::http::Direction::ToServer => seg.dport,
            rxray_engine::http::Direction::ToClient => seg.sport,
        };
        for c in self.clients.iter_mut() {
            if let Some(h) = c.http.as_mut() {
                if c.closing.is_none() && h.ports.contains(&server_port) && c.interfaces.iter().any(|i| i == iface) {
                    h.tracker.segment(seg);
                }
            }
            c.with_view(|v, q| v.on_http_segment(iface, seg, q));
        }
    }

    /// One alert of the agent's detectors (after its firewall acted on it): each joined `top` shows it.
    pub fn on_alert(&mut self, a: &rxray_engine::alert::Alert) {
        for c in self.clients.iter_mut() {
            c.with_view(|v, q| v.on_alert(a, q));
        }
    }

    /// The clients' sockets to wait on: readable (bye, EOF), and writable while a queue holds
    /// something.
    pub fn poll_fds(&self) -> Vec<libc::pollfd> {
        self.clients
            .iter()
            .map(|c| libc::pollfd {
                fd: c.conn.as_raw_fd(),
                events: libc::POLLIN | if c.queue.is_empty() { 0 } else { libc::POLLOUT },
                revents: 0,
            })
            .collect()
    }

    /// Reads what clients said, writes what their sockets take (never waiting), tells clients
    /// their losses, and closes the finished.
    pub fn service(&mut self, agent: &AgentView) {
        let now = Instant::now();
        for c in self.clients.iter_mut() {
            c.read_requests(agent, &mut self.ctx);
            c.http_snapshot(agent, now, false);
            c.alerts_tick(agent.now_ns);
            c.flows_snapshot(agent, now, false, &mut self.ctx);
            c.with_view(|v, q| v.tick(&agent.view_feeds(), now, q));
            c.close_if_done(&agent.feeds);
            if c.lost > c.lost_told && now.duration_since(c.last_notice) >= NOTICE_EVERY && c.events_queued() < c.cap {
                c.queue.push_back(json_frame(Kind::Lost, &LostNotice { lost: c.lost }));
                c.lost_told = c.lost;
                c.last_notice = now;
            }
            c.flush();
        }
        // Gone, or said bye and either written out or past its grace.
        self.clients.retain(|c| !c.gone && c.closing.is_none_or(|d| now < d && !c.queue.is_empty()));
    }

    /// `rxray status`: each joined client, its filter, queue fill and losses.
    pub fn status(&self) -> Vec<ClientStatus> {
        self.clients
            .iter()
            .map(|c| {
                let q = c.events_queued();
                ClientStatus {
                    id: c.id,
                    command: c.req.command.clone(),
                    pid: c.pid,
                    interfaces: c.interfaces.clone(),
                    filter: c.req.filter.clone(),
                    json: c.req.json,
                    queue: q,
                    queue_capacity: c.cap,
                    queue_fill: q as f64 / c.cap as f64,
                    matched: c.matched,
                    filtered: c.filtered,
                    lost: c.lost,
                    joined_s: c.joined.elapsed().as_secs_f64(),
                }
            })
            .collect()
    }
}

impl Client {
    /// Runs `f` on this client's view (if it has one and is not closing) with its queue; a full
    /// queue first hands what the socket takes now.
    fn with_view(&mut self, f: impl FnOnce(&mut dyn super::views::View, &mut super::views::Queue)) {
        if self.closing.is_some() || self.gone || self.view.is_none() {
            return;
        }
        if self.queue.len() >= self.cap {
            self.flush();
        }
        let Some(v) = self.view.as_mut() else { return };
        let mut q = super::views::Queue { q: &mut self.queue, cap: self.cap, lost: &mut self.lost, matched: &mut self.matched };
        f(v.as_mut(), &mut q);
    }

    /// A view that reached its `--count` ends as if its client had said bye.
    fn close_if_done(&mut self, feeds: &super::views::Feeds) {
        if self.closing.is_none() && self.view.as_ref().is_some_and(|v| v.done()) {
            let s = self.finish_view(feeds, JoinSummary { kernel: None, lost_queue: self.lost, matched: self.matched, text: None });
            self.queue.push_back(json_frame(Kind::Summary, &s));
            self.closing = Some(Instant::now() + CLOSE_GRACE);
        }
    }

    /// A view's last output and closing summary (its `text`, for the command's stderr), into `s`.
    fn finish_view(&mut self, feeds: &super::views::Feeds, mut s: JoinSummary) -> JoinSummary {
        if let Some(v) = self.view.as_mut() {
            let mut q = super::views::Queue { q: &mut self.queue, cap: usize::MAX, lost: &mut self.lost, matched: &mut self.matched };
            s.text = Some(v.finish(feeds, &mut q));
            s.lost_queue = self.lost;
        }
        s
    }

    /// Event frames queued (notices and the summary excluded; they are few).
    fn events_queued(&self) -> usize {
        self.queue.len()
    }

    /// A joined `alerts`: one packet through its detectors (payload cut to its snap, unless its
    /// signatures read whole payloads), and the alerts raised written as `rxray alerts` writes
    /// them.
    fn inspect(&mut self, p: &Packet) {
        let Some(a) = self.alerts.as_mut() else { return };
        self.matched += 1;
        let snap = self.req.snap as usize;
        if p.payload.len() > snap && !a.whole {
            let mut x = p.clone();
            x.payload.truncate(snap);
            a.insp.on_packet(&x, &mut a.raised);
        } else {
            a.insp.on_packet(p, &mut a.raised);
        }
        self.emit_alerts();
    }

    /// Time passes for a joined `alerts`'s detectors even when no packet comes (every 100 ms).
    fn alerts_tick(&mut self, now_ns: u64) {
        let Some(a) = self.alerts.as_mut() else { return };
        if now_ns >= a.last_tick + 100_000_000 {
            a.insp.on_tick(now_ns, &mut a.raised);
            a.last_tick = now_ns;
            self.emit_alerts();
        }
    }

    fn emit_alerts(&mut self) {
        let Some(a) = self.alerts.as_mut() else { return };
        for al in a.raised.drain(..) {
            if self.queue.len() >= self.cap {
                self.lost += 1;
                continue;
            }
            let mut buf = vec![Kind::Out.byte(), 0, 0, 0, 0];
            if Eve::new(&mut buf).write(&al).is_ok() {
                let len = (buf.len() - 5) as u32;
                buf[1..5].copy_from_slice(&len.to_be_bytes());
                self.queue.push_back(buf);
            }
        }
    }

    /// A joined `http`'s snapshot, when due (or its final one), rendered as `rxray http` does.
    fn http_snapshot(&mut self, agent: &AgentView, now: Instant, last: bool) {
        let Some(h) = self.http.as_mut() else { return };
        if !last && (now < h.next || self.closing.is_some()) {
            return;
        }
        h.next = now + h.every;
        if last {
            h.tracker.finish();
        } else {
            h.tracker.advance(rxray_kernel::monotonic_ns());
        }
        if !last && self.queue.len() >= self.cap {
            self.lost += 1;
            return;
        }
        let kernel = http_sum(&self.interfaces, agent.http_totals).since(&h.base);
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let mut buf = vec![Kind::Out.byte(), 0, 0, 0, 0];
        if crate::http::render_snapshot(&mut buf, &mut h.tracker, kernel, ts, last, self.req.json, h.top).is_ok() {
            let len = (buf.len() - 5) as u32;
            buf[1..5].copy_from_slice(&len.to_be_bytes());
            self.queue.push_back(buf);
            self.matched += 1;
        }
    }

    /// A joined `flows`'s table (or JSON line), when due, rendered as `rxray flows` renders it.
    fn flows_snapshot(&mut self, agent: &AgentView, now: Instant, last: bool, ctx: &mut Option<(LiveSource, KernelContext)>) {
        let Some(f) = self.flows.as_mut() else { return };
        if !last && (now < f.next || self.closing.is_some()) {
            return;
        }
        f.next = now + f.every;
        if self.queue.len() >= self.cap && !last {
            self.lost += 1;
            return;
        }
        let Some((snap, t)) = (agent.flows)(&self.interfaces) else { return };
        let (mut snap, t) = f.since_join(snap, t);
        f.rates.update(&mut snap.flows, snap.ts_ns);
        sort(&mut snap.flows, f.by);
        let kctx = if self.req.context { ctx.as_mut() } else { None };
        let body = match kctx {
            Some((src, k)) => {
                let _ = k.refresh(src, true);
                if self.req.json {
                    let cj = k.context_totals(src);
                    crate::flows::json_snapshot_of(&t, &snap, agent.now_ns, Some(k), Some(cj), &[]).to_string() + "\n"
                } else {
                    crate::flows::table_of(&t, &snap.flows, f.top, Some(k))
                }
            }
            None if self.req.json => crate::flows::json_snapshot_of(&t, &snap, agent.now_ns, None, None, &[]).to_string() + "\n",
            None => crate::flows::table_of(&t, &snap.flows, f.top, None),
        };
        let text = if self.req.json {
            body
        } else if f.tty {
            format!("\x1b[H\x1b[2J{body}")
        } else {
            format!("{body}\n")
        };
        let mut buf = vec![Kind::Out.byte(), 0, 0, 0, 0];
        buf.extend_from_slice(text.as_bytes());
        let len = (buf.len() - 5) as u32;
        buf[1..5].copy_from_slice(&len.to_be_bytes());
        self.queue.push_back(buf);
        self.matched += 1;
    }

    fn read_requests(&mut self, agent: &AgentView, ctx: &mut Option<(LiveSource, KernelContext)>) {
        let mut buf = [0u8; 512];
        loop {
            match (&self.conn).read(&mut buf) {
                Ok(0) => {
                    // The client went away without bye: nothing more to send.
                    if self.closing.is_none() {
                        self.gone = true;
                    }
                    return;
                }
                Ok(n) => {
                    self.inbuf.extend_from_slice(&buf[..n]);
                    if self.inbuf.len() > 4096 {
                        self.gone = true;
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.gone = true;
                    return;
                }
            }
        }
        while let Some(nl) = self.inbuf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.inbuf.drain(..=nl).collect();
            let cmd = serde_json::from_slice::<serde_json::Value>(&line).ok().and_then(|v| v["cmd"].as_str().map(str::to_string));
            if cmd.as_deref() == Some("bye") && self.closing.is_none() {
                self.http_snapshot(agent, Instant::now(), true);
                self.flows_snapshot(agent, Instant::now(), true, ctx);
                let s = self.summary(agent.totals);
                let s = self.finish_view(&agent.feeds, s);
                self.queue.push_back(json_frame(Kind::Summary, &s));
                self.closing = Some(Instant::now() + CLOSE_GRACE);
            }
        }
    }

    /// What the client's summary line needs: the kernel's counts over its interfaces since it
    /// joined, and its own filtered and lost events.
    fn summary(&self, totals: TotalsOf) -> JoinSummary {
        let d = totals_over(&self.interfaces, totals).since(&self.base);
        JoinSummary {
            kernel: Some(JoinTotals {
                packets: d.packets,
                bytes: d.bytes,
                lost_ring: d.lost,
                capture_lost: d.capture_lost,
                malformed: d.malformed,
                malformed_by: d.malformed_named().into_iter().map(|(k, n)| (k.to_string(), n)).collect(),
                filtered: self.filtered,
                filtering: self.filter.is_some(),
            }),
            lost_queue: self.lost,
            matched: self.matched,
            text: None,
        }
    }

    /// Writes queued frames until the socket would block.
    fn flush(&mut self) {
        while let Some(f) = self.queue.front() {
            match (&self.conn).write(&f[self.written..]) {
                Ok(n) => {
                    self.written += n;
                    if self.written == f.len() {
                        self.queue.pop_front();
                        self.written = 0;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.gone = true;
                    return;
                }
            }
        }
    }
}
