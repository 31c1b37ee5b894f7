//! `rxray top`: the live dashboard (crates/rxray-tui) over this host's interfaces, attached as
//! `flows` attaches: exact flow counters, the drop tracepoint's counts per reason, the detectors
//! over per-packet events, and the HTTP view over the TC copies of the HTTP ports.
use crate::{session, XdpModeArg};
use anyhow::{bail, Context as _, Result};
use aya::maps::{MapData, RingBuf};
use rxray_engine::alert::Alert;
use rxray_engine::http::{HttpConfig, HttpTracker, DEFAULT_PORTS};
use rxray_engine::inspect::Inspector;
use rxray_engine::flows::{FlowKey, FlowRecord};
use rxray_engine::source::{Count, Event, FlowSnapshot, Source as _};
use rxray_kernel::{btf, Drops, DropsOptions, IngressOptions, LiveSource};
use rxray_tui::collect::Counters;
use rxray_tui::model::Detail;
use rxray_tui::run::{Error, Feed, Options};
use rxray_tui::Collector;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct TopArgs {
    /// Interface to watch (repeatable). Default: every interface that is up, except loopback.
    #[arg(short = 'i', long = "interface")]
    pub ifaces: Vec<String>,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 1.0, value_parser = crate::args::seconds)]
    pub interval: f64,
    /// Flow-table capacity; new flows beyond it are counted as failed inserts.
    #[arg(long = "flow-capacity", default_value_t = 65536)]
    pub capacity: u32,
    /// Where to attach: auto, native, generic or tc (as `rxray flows`).
    #[arg(long = "xdp-mode", value_enum, default_value = "auto")]
    pub xdp_mode: XdpModeArg,
    /// No detectors: no per-packet events (the alerts pane stays empty; saves their cost).
    #[arg(long = "no-alerts")]
    pub no_alerts: bool,
    /// No HTTP view (no TC egress program, no copies of the HTTP ports' payload).
    #[arg(long = "no-http")]
    pub no_http: bool,
    /// No drop counts (no kfree_skb tracing program).
    #[arg(long = "no-drops")]
    pub no_drops: bool,
    /// HTTP server ports (comma-separated or repeated).
    #[arg(long = "http-port", value_delimiter = ',', default_values_t = DEFAULT_PORTS)]
    pub http_ports: Vec<u16>,
    /// The history store whose `investigate` timeline the detail view shows (when it exists).
    /// Default: the joined agent's store, otherwise /var/lib/rxray/store.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Exit after this many refreshes (benchmarks).
    #[arg(long, hide = true)]
    pub refreshes: Option<u64>,
    /// Attach even when this namespace's agent runs (by default `top` joins it).
    #[arg(long)]
    pub standalone: bool,
    /// Print the redraw times on exit (benchmarks).
    #[arg(long, hide = true)]
    pub stats: bool,
}

/// The live kernel as the dashboard's feed.
pub(crate) struct LiveFeed {
    pub(crate) src: LiveSource,
    stop: Arc<AtomicBool>,
    insp: Option<Inspector>,
    alerts: Vec<Alert>,
    last_tick: u64,
    reasons: BTreeMap<u64, String>,
    http: Option<(RingBuf<MapData>, HttpTracker, Vec<u16>)>,
    store: PathBuf,
}

impl LiveFeed {
    /// A feed over `src` (flows on); add the detectors, drops and HTTP with the `with_` calls.
    pub(crate) fn new(src: LiveSource, stop: Arc<AtomicBool>) -> Self {
        LiveFeed {
            src,
            stop,
            insp: None,
            alerts: Vec::new(),
            last_tick: 0,
            reasons: BTreeMap::new(),
            http: None,
            store: PathBuf::from(rxray_agent::config::DEFAULT_STORE),
        }
    }

    /// The detectors over the source's packet events (and its ticks, every 100 ms).
    pub(crate) fn with_detectors(mut self) -> Result<Self> {
        let hosts = rxray_kernel::host::addresses().unwrap_or_default();
        let det = rxray_engine::detect::Detectors::new(Default::default(), &hosts).map_err(|e| anyhow::anyhow!("{e}"))?;
        self.src = self.src.with_ticks(Duration::from_millis(100));
        self.insp = Some(Inspector::new(det, None));
        Ok(self)
    }
}

/// Runs the dashboard over `feed` on this terminal (restored when it returns, or on a panic).
pub(crate) fn dashboard(feed: &mut dyn Feed, c: &mut Collector, o: Options) -> Result<rxray_tui::run::Stats> {
    let mut screen = rxray_tui::term::Screen::enter().context("setting up the terminal")?;
    rxray_tui::run::run(&mut screen.terminal, feed, c, o).map_err(|e| anyhow::anyhow!("{e}"))
}

impl Feed for LiveFeed {
    fn pump(&mut self, c: &mut Collector, wait: Duration) -> Result<(), Error> {
        let mut read = 0;
        while read < session::BATCH {
            let Some(ev) = self.src.next_event() else { break };
            read += 1;
            match ev? {
                Event::Packet(p) => {
                    if let Some(i) = self.insp.as_mut() {
                        i.on_packet(p, &mut self.alerts);
                    }
                }
                Event::Tick(now) if now >= self.last_tick + 100_000_000 => {
                    self.last_tick = now;
                    if let Some(i) = self.insp.as_mut() {
                        i.on_tick(now, &mut self.alerts);
                    }
                }
                _ => {}
            }
        }
        for a in self.alerts.drain(..) {
            c.on_alert(&a, false);
        }
        if let Some((ring, t, ports)) = self.http.as_mut() {
            while read < 2 * session::BATCH {
                let Some(item) = ring.next() else { break };
                read += 1;
                if let Some((_, seg)) = rxray_kernel::http::segment_of(&item, ports) {
                    t.segment(&seg);
                }
            }
        }
        if read == 0 {
            self.src.wait(wait);
        }
        Ok(())
    }

    fn refresh(&mut self, c: &mut Collector) -> Result<(), Error> {
        let ing = self.src.ingress().ok_or("no ingress program")?;
        let t = ing.totals()?;
        let http = match self.http.as_mut() {
            Some((_, tr, _)) => {
                let k = ing.http_totals()?;
                tr.completeness_mut().events_lost = k.records_lost;
                tr.advance(rxray_kernel::monotonic_ns());
                c.on_http(tr.snapshot());
                Some(k.records_lost)
            }
            None => None,
        };
        let drops = match self.src.drops() {
            Some(d) => {
                let dt = d.totals()?;
                let reasons = &self.reasons;
                c.set_drops(dt.by_reason.iter().map(|(r, n)| {
                    (reasons.get(&(*r as u64)).cloned().unwrap_or_else(|| format!("reason_{r}")), *n)
                }));
                Some(dt.lost)
            }
            None => None,
        };
        let counters = Counters {
            packets: t.packets,
            bytes: t.bytes,
            flow_insert_failed: t.flow_insert_failed,
            malformed: t.malformed,
            events: self.insp.is_some().then_some(t.events),
            events_lost: self.insp.is_some().then_some(t.lost),
            drop_events_lost: drops,
            http_records_lost: http,
            ..Default::default()
        };
        c.on_flows(self.src.flow_snapshot()?, counters);
        Ok(())
    }

    fn detail(&mut self, addr: IpAddr, c: &Collector) -> Detail {
        detail_of(&self.store, addr, c)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The detail of `addr`: its `investigate` timeline of the last hour from the store at `store`
/// when one is there, otherwise its live flows and alerts.
fn detail_of(store: &Path, addr: IpAddr, c: &Collector) -> Detail {
    match crate::history::store_timeline(store, &addr.to_string(), 3600 * 1_000_000_000) {
        Some(Ok(lines)) => Detail { addr: Some(addr), origin: "store".into(), lines },
        Some(Err(e)) => {
            let mut d = c.detail_live(addr);
            d.lines.insert(0, format!("(the store at {} could not be read: {e:#})", store.display()));
            d
        }
        None => c.detail_live(addr),
    }
}

/// The agent of this namespace as the dashboard's feed: `top` joins it twice, as a JSON `flows`
/// client (its flow table, counted from the join, every interval) and as a `top` client (its
/// drops, alerts and HTTP panes, `join::top_view`).
struct JoinFeed {
    flows: Option<crate::join::client::Joined>,
    panes: Option<crate::join::client::Joined>,
    stop: Arc<AtomicBool>,
    latest: Option<serde_json::Value>,
    latest_panes: Option<crate::join::top_view::TopPanes>,
    /// What the last panes said of the loss line: detectors on, drop events and HTTP records lost.
    loss: (bool, Option<u64>, Option<u64>),
    gone: bool,
    store: PathBuf,
}

impl Feed for JoinFeed {
    fn pump(&mut self, _: &mut Collector, wait: Duration) -> Result<(), Error> {
        if let Some(p) = self.panes.as_mut() {
            match p.poll_out(Duration::ZERO).map_err(|e| format!("{e:#}"))? {
                Some(lines) => {
                    if let Some(last) = lines.last() {
                        let v = serde_json::from_slice(last).map_err(|e| format!("the agent's top panes: {e} (at line {}, column {})", e.line(), e.column()))?;
                        self.latest_panes = Some(v);
                    }
                }
                None => self.gone = true,
            }
        }
        let Some(j) = self.flows.as_mut() else { return Ok(()) };
        match j.poll_out(wait).map_err(|e| format!("{e:#}"))? {
            Some(lines) => {
                if let Some(last) = lines.last() {
                    self.latest = Some(serde_json::from_slice(last).map_err(|e| format!("the agent's flows snapshot is not JSON: {e}"))?);
                }
            }
            None => self.gone = true,
        }
        Ok(())
    }

    fn refresh(&mut self, c: &mut Collector) -> Result<(), Error> {
        let panes = self.latest_panes.take();
        if let Some(p) = &panes {
            self.loss = (p.panes.alerts.on, p.drop_events_lost, p.http_records_lost);
        }
        if let Some(v) = self.latest.take() {
            let (snap, protocols, mut counters) = flows_from_json(&v);
            // The agent's detector events and ring losses over these interfaces since the join.
            if self.loss.0 {
                counters.events = v["totals"]["events"].as_u64();
                counters.events_lost = v["totals"]["lost"].as_u64();
            }
            (counters.drop_events_lost, counters.http_records_lost) = (self.loss.1, self.loss.2);
            c.on_flows(snap, counters);
            c.set_protocols(protocols);
        }
        if let Some(p) = panes {
            c.set_panes(p.panes);
        }
        Ok(())
    }

    fn detail(&mut self, addr: IpAddr, c: &Collector) -> Detail {
        detail_of(&self.store, addr, c)
    }

    fn stopped(&self) -> bool {
        self.gone || self.stop.load(Ordering::Relaxed)
    }
}

impl Drop for JoinFeed {
    fn drop(&mut self) {
        for j in [self.flows.take(), self.panes.take()].into_iter().flatten() {
            j.leave();
        }
    }
}

/// The store directory of the agent of this namespace, from its status (None: it keeps none, or
/// it does not say).
fn agent_store() -> Option<PathBuf> {
    #[derive(serde::Deserialize)]
    struct Status {
        #[serde(default)]
        sinks: Vec<Sink>,
    }
    #[derive(serde::Deserialize)]
    struct Sink {
        name: String,
        #[serde(default)]
        enabled: bool,
        #[serde(default)]
        dir: Option<String>,
    }
    use std::io::{BufRead as _, Write as _};
    let mut c = std::os::unix::net::UnixStream::connect(crate::agent::socket_path()).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    c.write_all(b"{\"cmd\":\"status\"}\n").ok()?;
    let mut line = String::new();
    std::io::BufReader::new(&c).read_line(&mut line).ok()?;
    let st: Status = serde_json::from_str(line.trim()).ok()?;
    st.sinks.into_iter().find(|s| s.name == "store" && s.enabled).and_then(|s| s.dir).map(PathBuf::from)
}

/// One of the agent's JSON flows snapshots (`rxray flows --json`'s line) as the engine's table,
/// its per-protocol counters and the kernel's totals. Fields it lacks read as zero.
fn flows_from_json(v: &serde_json::Value) -> (FlowSnapshot, Vec<(String, u64, u64)>, Counters) {
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
    let addr = |v: &serde_json::Value, k: &str| v[k].as_str().and_then(|s| s.parse::<IpAddr>().ok());
    let flows = v["flows"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| {
                    Some(FlowRecord {
                        key: FlowKey {
                            ifindex: n(f, "ifindex") as u32,
                            vlan: n(f, "vlan") as u16,
                            proto: n(f, "proto") as u8,
                            src: addr(f, "src")?,
                            dst: addr(f, "dst")?,
                            sport: n(f, "sport") as u16,
                            dport: n(f, "dport") as u16,
                            fragments: f["fragments"].as_bool().unwrap_or(false),
                        },
                        iface: f["iface"].as_str().unwrap_or("?").to_string(),
                        packets: n(f, "packets"),
                        bytes: n(f, "bytes"),
                        first_ns: n(f, "first_ns"),
                        last_ns: n(f, "last_ns"),
                        tcp_flags: n(f, "tcp_flags") as u8,
                        size_hist: [0; 8],
                        pps: 0.0,
                        bps: 0.0,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let interfaces = v["interfaces"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| (n(i, "ifindex") as u32, i["iface"].as_str().unwrap_or("?").to_string(), Count { packets: n(i, "packets"), bytes: n(i, "bytes") }))
                .collect()
        })
        .unwrap_or_default();
    let protocols = v["protocols"]
        .as_object()
        .map(|m| m.iter().map(|(k, c)| (k.clone(), n(c, "packets"), n(c, "bytes"))).collect())
        .unwrap_or_default();
    let t = &v["totals"];
    let counters = Counters {
        packets: n(t, "packets"),
        bytes: n(t, "bytes"),
        flow_insert_failed: n(t, "flow_insert_failed"),
        malformed: n(t, "malformed"),
        ..Default::default()
    };
    (FlowSnapshot { ts_ns: n(v, "ts_ns"), flows, protocols: Vec::new(), interfaces }, protocols, counters)
}

/// Joins this namespace's agent when one runs and owns the interfaces; None: attach instead.
fn join(a: &TopArgs, stop: &Arc<AtomicBool>) -> Result<Option<(JoinFeed, Collector)>> {
    let req = crate::join::JoinRequest {
        interfaces: a.ifaces.clone(),
        json: true,
        interval: Some(a.interval),
        ..Default::default()
    };
    let Some(j) = crate::join::client::try_join("flows", req.clone())? else { return Ok(None) };
    let mut c = Collector::new(format!("{} (joined the agent of {}, client {})", j.hello.interfaces.join(", "), j.hello.host, j.hello.id));
    // The drops, alerts and HTTP panes: a second join (an older agent refuses it: the panes say so).
    let panes = match crate::join::client::try_join("top", crate::join::JoinRequest { json: false, ..req }) {
        Ok(Some(p)) => Some(p),
        Ok(None) => None,
        Err(e) => {
            let why = || Err(format!("the agent sends no top panes ({e:#}); `rxray top --standalone` attaches its own"));
            c.set_parts(why(), why(), why());
            None
        }
    };
    let store = a.store.clone().or_else(agent_store).unwrap_or_else(|| PathBuf::from(rxray_agent::config::DEFAULT_STORE));
    Ok(Some((JoinFeed { flows: Some(j), panes, stop: Arc::clone(stop), latest: None, latest_panes: None, loss: (false, None, None), gone: false, store }, c)))
}

fn drop_counts(ifindexes: &[u32]) -> Result<(Drops, BTreeMap<u64, String>), String> {
    let netns = rxray_kernel::drops::current_netns_ino().map_err(|e| e.to_string())?;
    let d = Drops::attach(&DropsOptions { ring_bytes: 4096, netns_ino: Some(netns), ifindexes: ifindexes.to_vec(), events: false })
        .map_err(|e| e.to_string())?;
    let names = btf::drop_reasons(Path::new(btf::VMLINUX)).map_err(|e| format!("drop-reason names: {e}"))?;
    Ok((d, names))
}

pub fn run(a: TopArgs) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!("rxray top draws on a terminal; for text or JSON use `rxray flows` (--json)");
    }
    if a.http_ports.is_empty() || a.http_ports.len() > rxray_kernel::http::MAX_PORTS {
        bail!("--http-port takes 1 to {} ports", rxray_kernel::http::MAX_PORTS);
    }
    let stop = session::stop_flag()?;
    let o = Options { interval: Duration::from_secs_f64(a.interval.max(0.05)), refreshes: a.refreshes };
    if !a.standalone {
        session::require_root()?;
        if let Some((mut feed, mut c)) = join(&a, &stop)? {
            let stats = dashboard(&mut feed, &mut c, o)?;
            if feed.gone {
                eprintln!("rxray: the agent went away");
            }
            print_stats(a.stats, &stats);
            return Ok(());
        }
    }
    let opts = IngressOptions {
        events: !a.no_alerts,
        ring_bytes: if a.no_alerts { 4096 } else { 8 << 20 },
        flows: true,
        flow_capacity: a.capacity,
        http_ring_bytes: if a.no_http { 0 } else { 16 << 20 },
        ..Default::default()
    };
    let ports = a.http_ports.clone();
    let (mut ing, http_on) = session::attach_then(&a.ifaces, a.xdp_mode, opts, "top", "watching", |ing| {
        Ok(if a.no_http {
            Err("--no-http".to_string())
        } else {
            ing.enable_http(&ports, 64 << 10).map_err(|e| format!("HTTP copies (TC egress): {e}"))
        })
    })?;
    let source = ing.attached().iter().map(|x| format!("{} ({})", x.iface, x.hook_name())).collect::<Vec<_>>().join(", ");
    let ifindexes: Vec<u32> = ing.attached().iter().map(|x| x.ifindex).collect();
    let http = match &http_on {
        Ok(()) => {
            let ring = ing.take_http_ring().context("the HTTP ring is missing from the object")?;
            Some((ring, HttpTracker::new(HttpConfig::default()), a.http_ports.clone()))
        }
        Err(_) => None,
    };
    let mut src = LiveSource::new().with_ingress(ing, !a.no_alerts, false)?;
    let mut reasons = BTreeMap::new();
    let drops_on = if a.no_drops {
        Err("--no-drops".to_string())
    } else {
        match drop_counts(&ifindexes) {
            Ok((d, r)) => {
                src = src.with_drops(d);
                reasons = r;
                Ok(())
            }
            Err(e) => Err(e),
        }
    };
    let mut feed = LiveFeed::new(src, stop);
    feed.http = http;
    feed.store = a.store.clone().unwrap_or_else(|| PathBuf::from(rxray_agent::config::DEFAULT_STORE));
    feed.reasons = reasons;
    let alerts_on = if a.no_alerts {
        Err("--no-alerts".to_string())
    } else {
        feed = feed.with_detectors()?;
        Ok(())
    };
    let mut c = Collector::new(source);
    c.set_parts(drops_on, alerts_on, http_on);
    let stats = dashboard(&mut feed, &mut c, o)?;
    print_stats(a.stats, &stats);
    Ok(())
}

fn print_stats(on: bool, stats: &rxray_tui::run::Stats) {
    if on {
        eprintln!(
            "rxray top: {} refreshes, {} redraws, mean {:.3} ms, max {:.3} ms per redraw",
            stats.refreshes,
            stats.draws,
            stats.draw_ns as f64 / stats.draws.max(1) as f64 / 1e6,
            stats.draw_max_ns as f64 / 1e6
        );
    }
}
