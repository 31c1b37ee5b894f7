//! `rxray agent`: one long-lived owner of this namespace's interfaces. It attaches once, counts
//! (flows, drops), detects (detectors and signatures, alerts as EVE on stdout), optionally enforces
//! and applies a firewall rules file, serves Prometheus metrics and answers `rxray status` on
//! `/run/rxray/<netns inode>/agent.sock`. SIGHUP reloads the config (a bad one is rejected and the
//! running one stays); SIGTERM detaches the observers, leaves the firewall pinned and stops.
use crate::records::agent as rec;
use crate::sinks::Sink;
use crate::{alerts, session, XdpModeArg};
use anyhow::{anyhow, bail, Context, Result};
use rxray_agent::config::{hostname, parse_listen, AgentConfig};
use rxray_agent::metrics::Snapshot;
use rxray_agent::serve::{MetricsServer, Shared};
use rxray_engine::alert::Alert;
use rxray_engine::detect::policy::{ActionKind, Mitigation};
use rxray_engine::flows::FlowKey;
use rxray_engine::inspect::Inspector;
use rxray_store::{AlertRow, Batch, FlowRow, MinuteCount, MitigationRow, Retention, Store, StoreWriter};
use std::collections::HashMap;
use rxray_kernel::firewall::{Firewall, FwCapacity};
use rxray_engine::source::{Event, Source as _};
use rxray_kernel::source::{CAP_SNAP_MAX, PAYLOAD_MAX};
use rxray_kernel::{Clock, Drops, DropsOptions, Ingress, IngressOptions, LiveSource};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// The configuration file (TOML; every key in docs/agent.md). Without it, the defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Interface to own (repeatable); added to the config's `interfaces`.
    #[arg(short = 'i', long = "interface")]
    pub ifaces: Vec<String>,
    /// Serve Prometheus metrics here (address:port, or `off`); overrides `[metrics] listen`.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// The history store's directory (overrides `[store] dir`; default /var/lib/rxray), or `off`.
    #[arg(long, value_name = "DIR")]
    pub store: Option<String>,
    /// The size limit on the config and every file it names (rules, lists, signatures).
    #[command(flatten)]
    pub files: crate::args::FileLimit,
}

/// The agent's control socket in this network namespace.
pub fn socket_path() -> PathBuf {
    rxray_kernel::owner::lock_dir().join("agent.sock")
}

/// Reads, parses and merges the config with the command line; every error, with its place.
fn load_config(a: &AgentArgs) -> Result<AgentConfig> {
    let (name, text) = match &a.config {
        Some(p) => (p.display().to_string(), a.files.read(p)?),
        None => ("(no config file)".to_string(), String::new()),
    };
    let mut cfg = AgentConfig::parse(&name, &text, &hostname()).map_err(|errs| {
        anyhow!("{}", errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\nrxray: error: "))
    })?;
    for i in &a.ifaces {
        if !cfg.interfaces.contains(i) {
            cfg.interfaces.push(i.clone());
        }
    }
    if let Some(m) = &a.metrics {
        cfg.metrics = parse_listen(m).map_err(|e| anyhow!("--metrics {e}"))?;
    }
    if let Some(d) = &a.store {
        cfg.store_dir = (d != "off").then(|| d.clone());
    }
    Ok(cfg)
}

/// The config's `xdp_mode` as the command line's `--xdp-mode` reads it (auto when unknown).
fn xdp_mode(s: &str) -> XdpModeArg {
    <XdpModeArg as clap::ValueEnum>::from_str(s, true).unwrap_or(XdpModeArg::Auto)
}

/// The detection pipeline the config asks for.
fn inspector(cfg: &AgentConfig, hosts: &[std::net::IpAddr], files: &crate::args::FileLimit) -> Result<Option<Inspector>> {
    if !cfg.detect {
        return Ok(None);
    }
    let opts = alerts::AlertOpts {
        signatures: cfg.signatures.clone(),
        detect_config: cfg.detect_config.as_ref().map(PathBuf::from),
        api_limits: cfg.api_limits.as_ref().map(PathBuf::from),
        threat_lists: cfg.threat_lists.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        eve: None,
        recorder: None,
        recorder_seconds: 5.0,
        home_net: Vec::new(),
        files: files.clone(),
        suricata: Default::default(),
    };
    alerts::inspector(&opts, hosts).map(Some)
}

/// What is attached on one interface.
struct Observed {
    /// The observer's live source: its ingress program, and the flight recorder's frames (whole
    /// packets up to its snap length) when it is on.
    src: LiveSource,
    iface: String,
    firewall: Option<Firewall>,
}

impl Observed {
    fn ingress(&self) -> &Ingress {
        self.src.ingress().expect("an observer's source is built with its ingress program")
    }

    fn ingress_mut(&mut self) -> &mut Ingress {
        self.src.ingress_mut().expect("an observer's source is built with its ingress program")
    }
}

/// The firewall rules file, parsed and compiled (validated before anything is attached).
struct Rules {
    file: PathBuf,
    set: rxray_engine::firewall::RuleSet,
    compiled: rxray_engine::firewall::Compiled,
}

fn load_rules(file: &str, files: &crate::args::FileLimit) -> Result<Rules> {
    let set = crate::firewall::load_rules(Path::new(file), files)?;
    let compiled = rxray_engine::firewall::Compiled::new(&set).map_err(|e| anyhow!("{file}: {e}"))?;
    Ok(Rules { file: PathBuf::from(file), set, compiled })
}

/// Applies the rules on an interface's firewall as `rxray firewall apply` does: a set that is
/// already live is left alone, so its counters and rate limits go on across restarts.
fn apply_rules(o: &mut Observed, r: &Rules, fresh: bool) {
    let Some(f) = o.firewall.as_mut() else {
        eprintln!("rxray agent: {} has no firewall; restart the agent to install it", o.iface);
        return;
    };
    match crate::firewall::apply_to(f, fresh, &r.file, &r.set, &r.compiled, false) {
        Ok(Some(gen)) => eprintln!("rxray agent: {} firewall rules applied on {} (generation {gen})", r.set.rules.len(), o.iface),
        Ok(None) => eprintln!("rxray agent: the {} firewall rules on {} are already live; unchanged", r.set.rules.len(), o.iface),
        Err(e) => eprintln!("rxray agent: applying the firewall rules on {}: {e:#}", o.iface),
    }
}

struct State {
    cfg: AgentConfig,
    config_file: Option<PathBuf>,
    files: crate::args::FileLimit,
    started: Instant,
    rules: Option<Rules>,
    alerts: BTreeMap<String, u64>,
    reloads: u64,
    reloads_rejected: u64,
    last_reload_error: Option<String>,
    /// What the next store batch holds so far, and what the store knows of each flow.
    history: History,
}

/// The agent's side of the store: flows' counters as last written (for deltas), and the alerts,
/// mitigations and per-minute counts waiting for the next batch.
#[derive(Default)]
struct History {
    flows: HashMap<FlowKey, FlowMark>,
    alerts: Vec<AlertRow>,
    mitigations: Vec<MitigationRow>,
    /// Kernel totals at the previous batch, per (kind, key), for per-minute deltas.
    totals: HashMap<(String, String), u64>,
    events_lost: u64,
}

/// A flow as the store last saw it.
struct FlowMark {
    packets: u64,
    bytes: u64,
    written_ns: u64,
    closed: bool,
    /// When its last row was made (agent time): live flows get a row at most every flow_period_s.
    row_ns: u64,
}

pub fn run(a: AgentArgs) -> Result<()> {
    session::require_root()?;
    let cfg = load_config(&a)?;
    if cfg.interfaces.is_empty() {
        bail!("name the interfaces the agent owns: `interfaces = [\"eth1\"]` in the config, or -i IFACE");
    }
    // Everything that can fail on input is checked before anything is attached.
    let hosts = rxray_kernel::host::addresses().context("reading this host's own addresses")?;
    let mut insp = inspector(&cfg, &hosts, &a.files)?;
    let rules = cfg.firewall_rules.as_deref().map(|f| load_rules(f, &a.files)).transpose()?;
    let store = match &cfg.store_dir {
        Some(dir) => {
            let st = Store::open(Path::new(dir), &cfg.host)?;
            let r = Retention { max_age_s: cfg.store_max_age_s, max_bytes: cfg.store_max_bytes, rollup_after_s: cfg.store_rollup_after_s };
            Some(StoreWriter::start(st, 64, r)?)
        }
        None => None,
    };
    let mut recorder = match &cfg.recorder_dir {
        Some(dir) => Some(alerts::Recorder::open(Path::new(dir), cfg.recorder_seconds)?),
        None => None,
    };
    let sock = socket_path();
    std::fs::create_dir_all(sock.parent().expect("a parent")).with_context(|| format!("creating {}", sock.parent().unwrap().display()))?;
    if UnixStream::connect(&sock).is_ok() {
        bail!("an agent already runs in this network namespace ({}); stop it first", sock.display());
    }
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).with_context(|| format!("binding {}", sock.display()))?;
    listener.set_nonblocking(true)?;
    // Root only: the socket shows what the host receives.
    std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let shared: Shared = Arc::default();
    shared.lock().unwrap().latest.host = cfg.host.clone();
    let metrics = cfg.metrics.map(|addr| MetricsServer::start(addr, Arc::clone(&shared), cfg.label_values)).transpose().map_err(|e| anyhow!(e))?;

    let stop = session::stop_flag()?;
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload)).context("installing the SIGHUP handler")?;

    // Attach: one program per interface (a firewalled one has its own program and maps).
    let mut observed = Vec::new();
    // The latency stages this kernel has (a joined `latency` reports them), once measured.
    let mut latency_stages = None;
    for iface in &cfg.interfaces {
        let opts = IngressOptions {
            events: cfg.detect,
            // Joined `watch` clients turn events on when detection is off; the payload costs only
            // while events are on.
            payload_snap: PAYLOAD_MAX,
            ring_bytes: cfg.ring_size,
            flows: cfg.flows,
            flow_capacity: cfg.flow_capacity,
            // The capture ring: the flight recorder's, or joined `capture` clients' (copies on only
            // while one reads).
            capture: recorder.is_some() || cfg.client_capture_ring > 0,
            capture_ring_bytes: if recorder.is_some() { 32 << 20 } else { cfg.client_capture_ring.max(4096) },
            capture_snap: recorder.as_ref().map_or(CAP_SNAP_MAX, |r| r.snap()),
            // The HTTP view's ring (as `rxray http`'s default); one page when it is off.
            http_ring_bytes: if cfg.http { crate::agent_http::RING_BYTES } else { 0 },
            ..Default::default()
        };
        let mut firewall = None;
        let mut fresh = false;
        if rules.is_some() || cfg.enforce {
            let (f, new) = Firewall::open_or_install(iface, xdp_mode(&cfg.xdp_mode).into(), FwCapacity::default())?;
            if new {
                eprintln!("rxray agent: installed the firewall on {iface}");
            }
            (firewall, fresh) = (Some(f), new);
        }
        let mut ingress = session::attach(std::slice::from_ref(iface), xdp_mode(&cfg.xdp_mode), opts, "agent", "agent on")?;
        if cfg.latency {
            // Delivery latency per process and remote end, rolled up per minute into the store.
            match ingress.enable_latency() {
                Ok(st) => latency_stages = Some((st.queue, st.udp)),
                Err(e) => eprintln!("rxray agent: no delivery latency on {iface} ({e})"),
            }
        }
        let frames = recorder.is_some() || cfg.client_capture_ring > 0;
        if frames && recorder.is_none() {
            ingress.set_capture(false)?;
        }
        let src = LiveSource::new().with_ingress(ingress, true, frames)?;
        let mut o = Observed { src, iface: iface.clone(), firewall };
        if let Some(r) = &rules {
            apply_rules(&mut o, r, fresh);
        }
        observed.push(o);
    }
    let ifindexes: Vec<u32> = observed.iter().flat_map(|o| o.ingress().attached().iter().map(|x| x.ifindex)).collect();
    let mut drop_src = if cfg.drops {
        let netns = rxray_kernel::drops::current_netns_ino().ok();
        // Count only; a joined `drops` turns the events on while it reads them (its ring: 1 MiB).
        match Drops::attach(&DropsOptions { ring_bytes: 1 << 20, netns_ino: netns, ifindexes: ifindexes.clone(), events: false }) {
            Ok(d) => Some(LiveSource::new().with_drops(d)),
            Err(e) => {
                eprintln!("rxray agent: no drop counts ({e})");
                None
            }
        }
    } else {
        None
    };
    let reasons = rxray_kernel::btf::drop_reasons(Path::new(rxray_kernel::btf::VMLINUX)).unwrap_or_default();
    let mut http = if cfg.http { start_http(&mut observed, &cfg.http_ports)? } else { None };
    // Connections: for the detectors (the agent's and joined alerts') and, with the store, its rows.
    let mut latency = crate::agent_rollups::LatencyMinutes::default();
    let mut http_minutes = crate::agent_rollups::HttpMinutes::default();
    let mut os = rxray_kernel::os::LinuxOs::new();
    let mut conns = if cfg.conns {
        match crate::agent_conns::ConnHistory::attach(1 << 20, store.is_some()) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("rxray agent: warning: no TCP connections ({e:#}): none in the store, and the exfiltration detector is idle");
                None
            }
        }
    } else {
        None
    };
    let mut next_live_conns = Instant::now();
    let mut conn_stats = crate::agent_metrics::ConnStats::default();
    let mut st = State {
        cfg,
        config_file: a.config.clone(),
        files: a.files.clone(),
        started: Instant::now(),
        rules,
        alerts: BTreeMap::new(),
        reloads: 0,
        reloads_rejected: 0,
        last_reload_error: None,
        history: History::default(),
    };

    let clock = Clock::now();
    if store.is_some() {
        let tables = flow_tables(&st, &observed, &clock);
        if let Ok(s) = snapshot(&st, &observed, &tables, drop_src.as_ref().and_then(|s| s.drops()), &reasons) {
            st.history.baseline(&s, &tables, clock.now_ns());
        }
        if st.cfg.latency {
            // What the histograms hold before the agent is ready is not any minute's.
            latency.observe(&latency_snapshot(&observed), clock.now_ns(), &mut |_| None);
        }
        if let Some(h) = http.as_mut() {
            // The store keeps each endpoint's calls per client and server.
            h.tracker.set_client_counts(Some(crate::agent_http::CLIENT_ENTRIES));
        }
    }
    // Ready: everything is attached and the store's baseline is taken (what arrives from now on is
    // counted in it).
    eprintln!(
        "rxray agent {}: {} interface(s): {}; metrics {}; store {}; socket {}; SIGHUP reloads, SIGTERM stops",
        st.cfg.host,
        observed.len(),
        st.cfg.interfaces.join(", "),
        metrics.as_ref().map_or("off".to_string(), |m| format!("http://{}/metrics", m.addr)),
        st.cfg.store_dir.as_deref().unwrap_or("off"),
        sock.display()
    );
    let mut alerts_out = Vec::new();
    // Joined `capture` clients take packets cut from the agent's capture ring (none when it is off).
    let capture_snap = (st.cfg.client_capture_ring > 0 || recorder.is_some()).then(|| recorder.as_ref().map_or(CAP_SNAP_MAX, |r| r.snap()));
    let mut hub = crate::join::hub::Hub::new(st.cfg.max_clients, st.cfg.client_queue);
    let mut events_on = st.cfg.detect;
    let mut eve = crate::sinks::eve::Eve::new(std::io::stdout());
    let mut last_tick = 0u64;
    let mut next_snapshot = Instant::now();
    let mut next_retention = 0u64;
    let mut next_ageing = Instant::now();
    let mut next_tables = Instant::now();
    let mut tables = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // Wait for events on any ring (or the control socket), 100 ms at most.
        let mut fds: Vec<libc::pollfd> = observed
            .iter_mut()
            .flat_map(|o| o.src.poll_fds())
            .chain(conns.iter_mut().flat_map(|c| c.poll_fds()))
            .chain(drop_src.iter_mut().filter(|d| d.drops().is_some_and(|d| d.events())).flat_map(|d| d.poll_fds()))
            .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
            .collect();
        fds.push(libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        fds.extend(hub.poll_fds());
        if let Some(h) = &http {
            fds.extend(h.poll_fds().into_iter().map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }));
        }
        // SAFETY: fds is a valid array of pollfds whose descriptors we keep open across the call.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
        for o in observed.iter_mut() {
            let mut n = 0;
            while let Some(ev) = o.src.next_event() {
                match ev {
                    Ok(Event::Packet(p)) => {
                        hub.on_packet(p);
                        if let Some(i) = insp.as_mut() {
                            i.on_packet(p, &mut alerts_out);
                        }
                    }
                    Ok(Event::Frame(f)) => {
                        if let Some(r) = recorder.as_mut() {
                            r.record(f.iface, f.ts_ns, f.orig_len, f.data);
                        }
                        hub.on_frame(&f, &crate::join::views::Feeds { capture_snap, ..Default::default() });
                    }
                    _ => {}
                }
                n += 1;
                if n >= session::BATCH {
                    break;
                }
            }
        }
        if let Some(c) = conns.as_mut() {
            // Closed connections go to the detectors as they close, live ones every 5 s (as
            // `rxray alerts` follows them).
            let on = |conn: &rxray_engine::source::Connection, ts: u64, insp: &mut Option<Inspector>, hub: &mut crate::join::hub::Hub, out: &mut Vec<Alert>| {
                if let Some(s) = conn.summary(ts) {
                    if let Some(i) = insp.as_mut() {
                        i.on_conn(&s, out);
                    }
                    hub.on_conn(&s);
                }
            };
            let mut closed = Vec::new();
            c.pump(session::BATCH, |conn, ts| {
                on(conn, ts, &mut insp, &mut hub, &mut alerts_out);
                conn_stats.on_closed(conn, ts);
                closed.push((conn.clone(), ts));
            });
            // Joined `conns` list each as it closed.
            let feeds = crate::join::views::Feeds { drops: drop_src.as_ref(), conns: Some(c.source()), now_ns: clock.now_ns(), capture_snap, latency: None, ..Default::default() };
            for (conn, ts) in &closed {
                hub.on_closed_conn(conn, *ts, &feeds);
            }
            if Instant::now() >= next_live_conns {
                next_live_conns = Instant::now() + Duration::from_secs(5);
                if let Some(snap) = c.live() {
                    for conn in &snap.conns {
                        on(conn, snap.ts_ns, &mut insp, &mut hub, &mut alerts_out);
                    }
                }
            }
        }
        if let Some(h) = http.as_mut() {
            h.pump(session::BATCH, |iface, seg| hub.on_http_segment(iface, seg));
            // The HTTP view's calls go to detection when it wants them (HTTP rules, API limits).
            let wants = insp.as_ref().is_some_and(|i| i.wants_calls());
            if h.tracker.keeps_calls() != wants {
                h.tracker.keep_calls(wants);
            }
            if let Some(i) = insp.as_mut().filter(|_| wants) {
                for c in h.tracker.take_calls() {
                    i.on_call(&c, &mut alerts_out);
                }
            }
        }
        crate::join::views::pump_drops(&mut drop_src, conns.as_ref().map(|c| c.source()), &mut hub, clock.now_ns());
        let now = clock.now_ns();
        if now >= last_tick + 100_000_000 {
            if let Some(i) = insp.as_mut() {
                i.on_tick(now, &mut alerts_out);
            }
            last_tick = now;
        }
        for mut al in alerts_out.drain(..) {
            if st.cfg.enforce {
                let mut fws: Vec<Firewall> = Vec::new();
                for o in observed.iter_mut() {
                    if let Some(f) = o.firewall.take() {
                        fws.push(f);
                    }
                }
                alerts::enforce(&mut fws, &mut al);
                for (o, f) in observed.iter_mut().zip(fws) {
                    o.firewall = Some(f);
                }
            }
            if let Some(r) = recorder.as_mut() {
                r.trigger(&mut al);
            }
            *st.alerts.entry(al.sig.detector.to_string()).or_default() += 1;
            hub.on_alert(&al);
            if store.is_some() {
                st.history.record_alert(&al);
            }
            let _ = eve.write(&al);
        }
        if let Some(r) = recorder.as_mut() {
            if let Err(e) = r.poll(now) {
                eprintln!("rxray agent: flight recorder: {e:#}");
            }
        }
        while let Ok((conn, _)) = listener.accept() {
            match read_request(&conn) {
                Ok(Request::Join(req)) => {
                    // Events on before the hello goes out: the client sees every packet after it.
                    if matches!(req.command.as_str(), "watch" | "alerts") {
                        events_on = joined_events(&mut observed, events_on, true);
                    }
                    let owned: Vec<String> = observed.iter().map(|o| o.iface.clone()).collect();
                    let ports = http.as_ref().map(|h| h.ports.clone());
                    let lat_of: crate::join::views::LatencyOf = &|i| joined_latency(&observed, i);
                    let view = crate::join::hub::AgentView {
                        owned: &owned,
                        host: &st.cfg.host,
                        totals: &|i| iface_totals(&observed, i),
                        http_ports: ports.as_deref(),
                        http_totals: &|i| iface_http_totals(&observed, i),
                        hosts: &hosts,
                        now_ns: clock.now_ns(),
                        ifindexes: &ifindexes,
                        flows: &|i| joined_flows(&observed, &st, i),
                        feeds: crate::join::views::Feeds { drops: drop_src.as_ref(), conns: conns.as_ref().map(|c| c.source()), now_ns: clock.now_ns(), capture_snap, latency: latency_stages.map(|(q, u)| crate::join::views::LatencyFeed { read: lat_of, queue_stage: q, udp_stage: u }), detect: st.cfg.detect, http_ports: ports.as_deref(), ..Default::default() },
                    };
                    hub.join(conn, *req, &view);
                    // Copies on before the client sends anything after its hello (a joined
                    // `alerts` reading whole payloads, a `capture`).
                    if capture_snap.is_some() && hub.wants_frames() {
                        crate::join::views::joined_capture(observed.iter_mut().map(|o| o.ingress_mut()), true);
                    }
                }
                Ok(Request::Status) => {
                    let mut v = status(&st, &observed, drop_src.as_ref().and_then(|s| s.drops()), metrics.as_ref(), store.as_ref(), &hub);
                    v.connections = match conns.as_ref().and_then(|c| c.totals()) {
                        Some(Ok(t)) => rec::ConnectionsStatus { enabled: true, new: Some(t.new), events: Some(t.events), events_lost: Some(t.lost), insert_failed: Some(t.insert_failed), ..Default::default() },
                        Some(Err(e)) => rec::ConnectionsStatus { enabled: true, error: Some(e.to_string()), ..Default::default() },
                        None => rec::ConnectionsStatus::default(),
                    };
                    reply(&conn, &v)
                }
                Err(e) => reply(&conn, &rec::AgentError { error: e }),
            }
        }
        hub.refresh();
        {
            let owned: Vec<String> = Vec::new();
            let lat_of: crate::join::views::LatencyOf = &|i| joined_latency(&observed, i);
            let view = crate::join::hub::AgentView {
                owned: &owned,
                host: &st.cfg.host,
                totals: &|i| iface_totals(&observed, i),
                http_ports: None,
                http_totals: &|i| iface_http_totals(&observed, i),
                hosts: &hosts,
                now_ns: clock.now_ns(),
                ifindexes: &ifindexes,
                flows: &|i| joined_flows(&observed, &st, i),
                feeds: crate::join::views::Feeds { drops: drop_src.as_ref(), conns: conns.as_ref().map(|c| c.source()), now_ns: clock.now_ns(), capture_snap, latency: latency_stages.map(|(q, u)| crate::join::views::LatencyFeed { read: lat_of, queue_stage: q, udp_stage: u }), ..Default::default() },
            };
            hub.service(&view);
        }
        events_on = joined_events(&mut observed, events_on, st.cfg.detect || hub.wants_packets());
        if capture_snap.is_some() {
            crate::join::views::joined_capture(observed.iter_mut().map(|o| o.ingress_mut()), recorder.is_some() || hub.wants_frames());
        }
        if Instant::now() >= next_snapshot {
            next_snapshot = Instant::now() + Duration::from_millis(st.cfg.interval_ms);
            // The flow table costs a syscall per entry to read: it is read every flow_period_s
            // (or half the idle time, if shorter), not every interval.
            if Instant::now() >= next_tables {
                let every = st.cfg.flow_period_s.min(st.cfg.flow_idle_s / 2).max(1);
                next_tables = Instant::now() + Duration::from_secs(every);
                tables = flow_tables(&st, &observed, &clock);
                if let Some(c) = conns.as_mut() {
                    c.snapshot(now, st.cfg.flow_period_s);
                }
            }
            match snapshot(&st, &observed, &tables, drop_src.as_ref().and_then(|s| s.drops()), &reasons) {
                Ok(mut s) => {
                    if let Some(h) = http.as_mut() {
                        h.advance();
                        h.fill(&mut s, http_lost(&observed));
                    }
                    // Connection events the ring could not take count as lost events too.
                    if let Some(t) = conns.as_ref().and_then(|c| c.totals()).and_then(|t| t.ok()) {
                        s.events_lost += t.lost;
                        conn_stats.fill(&mut s, &t);
                    }
                    if st.cfg.latency {
                        crate::agent_metrics::fill_latency(&mut s, &latency_snapshot(&observed));
                    }
                    if let Some(w) = &store {
                        let mut b = st.history.batch(&s, &tables, now, st.cfg.flow_idle_s, st.cfg.flow_period_s);
                        if let Some(c) = conns.as_mut() {
                            b.conns = c.take();
                            b.events_lost += c.take_lost();
                        }
                        if st.cfg.latency {
                            latency.observe(&latency_snapshot(&observed), now, &mut |id| rxray_engine::os::Os::cgroup_path(&mut os, id));
                            b.latency = latency.take(false, &mut |id| rxray_engine::os::Os::cgroup_path(&mut os, id));
                        }
                        if let Some(h) = http.as_mut() {
                            http_minutes.observe(crate::agent_rollups::client_rows(h.tracker.take_client_counts()), now);
                            b.http = http_minutes.take(false);
                        }
                        w.submit(b);
                    }
                    shared.lock().unwrap_or_else(|e| e.into_inner()).latest = s;
                }
                Err(e) => eprintln!("rxray agent: reading the kernel's counters: {e:#}"),
            }
            // Flows idle past flow_idle_s leave the kernel's table (the store has their closing
            // row), so a long-running agent keeps room for new ones.
            if st.cfg.flows && Instant::now() >= next_ageing {
                // Half the idle time apart: a full pass over the table is not free.
                next_ageing = Instant::now() + Duration::from_secs((st.cfg.flow_idle_s / 2).max(1));
                let cutoff = rxray_kernel::firewall::monotonic_ns().saturating_sub(st.cfg.flow_idle_s.saturating_mul(1_000_000_000));
                let storing = store.is_some();
                for (i, o) in observed.iter_mut().enumerate() {
                    // With the store on, only flows whose closing row is written leave the table.
                    let h = &st.history;
                    match o.ingress_mut().remove_idle_flows(cutoff, |k| !storing || h.closed(k)) {
                        Ok(gone) if !gone.is_empty() => {
                            st.history.forget(&gone);
                            // The cached read of the table must not bring them back.
                            let gone: std::collections::HashSet<&FlowKey> = gone.iter().collect();
                            if let Some(t) = tables.get_mut(i) {
                                t.retain(|r| !gone.contains(&r.key));
                            }
                        }
                        Ok(_) => {}
                        Err(e) => eprintln!("rxray agent: ageing idle flows on {}: {e}", o.iface),
                    }
                }
            }
            if let Some(w) = &store {
                if now >= next_retention {
                    w.retain(now);
                    next_retention = now + 60_000_000_000;
                }
            }
        }
        if reload.swap(false, Ordering::Relaxed) {
            do_reload(&mut st, &mut observed, &mut insp, &hosts);
        }
    }
    eprintln!("rxray agent: stopping; observers detach, the firewall (if any) stays pinned");
    if let Some(r) = recorder.as_mut() {
        r.finish()?;
    }
    if let Some(w) = store {
        // The last batch: what happened since the previous one.
        let tables = flow_tables(&st, &observed, &clock);
        if let Ok(s) = snapshot(&st, &observed, &tables, drop_src.as_ref().and_then(|s| s.drops()), &reasons) {
            let now = clock.now_ns();
            let mut b = st.history.batch(&s, &tables, now, st.cfg.flow_idle_s, 0);
            if let Some(c) = conns.as_mut() {
                c.pump(usize::MAX, |_, _| {});
                c.snapshot(now, 0);
                b.conns = c.take();
                b.events_lost += c.take_lost();
            }
            if st.cfg.latency {
                latency.observe(&latency_snapshot(&observed), now, &mut |id| rxray_engine::os::Os::cgroup_path(&mut os, id));
                b.latency = latency.take(true, &mut |id| rxray_engine::os::Os::cgroup_path(&mut os, id));
            }
            if let Some(h) = http.as_mut() {
                h.pump(usize::MAX, |_, _| {});
                h.advance();
                http_minutes.observe(crate::agent_rollups::client_rows(h.tracker.take_client_counts()), now);
                b.http = http_minutes.take(true);
            }
            w.submit(b);
        }
        w.finish();
    }
    drop(observed);
    drop(metrics);
    let _ = std::fs::remove_file(&sock);
    // The namespace's run directory goes with its last user (the owner locks went with `observed`).
    if let Some(dir) = sock.parent() {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}

/// SIGHUP: a good config replaces the running one (what can change live does; the rest says it
/// needs a restart); a bad one is rejected with its place, and the running one stays.
fn do_reload(st: &mut State, observed: &mut [Observed], insp: &mut Option<Inspector>, hosts: &[std::net::IpAddr]) {
    let Some(file) = st.config_file.clone() else {
        eprintln!("rxray agent: SIGHUP: no config file to reload");
        return;
    };
    let attempt = (|| -> Result<(AgentConfig, Option<Inspector>, Option<Rules>)> {
        let text = st.files.read(&file)?;
        let mut cfg = AgentConfig::parse(&file.display().to_string(), &text, &hostname())
            .map_err(|errs| anyhow!("{}", errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")))?;
        // Interfaces given with -i stay.
        for i in &st.cfg.interfaces {
            if !cfg.interfaces.contains(i) {
                cfg.interfaces.push(i.clone());
            }
        }
        let new_insp = inspector(&cfg, hosts, &st.files)?;
        let rules = cfg.firewall_rules.as_deref().map(|f| load_rules(f, &st.files)).transpose()?;
        Ok((cfg, new_insp, rules))
    })();
    match attempt {
        Err(e) => {
            st.reloads_rejected += 1;
            st.last_reload_error = Some(format!("{e:#}"));
            eprintln!("rxray agent: reload rejected, the running configuration stays: {e:#}");
        }
        Ok((cfg, new_insp, rules)) => {
            let restart: Vec<&str> = [
                ("interfaces", cfg.interfaces != st.cfg.interfaces),
                ("xdp", cfg.xdp_mode != st.cfg.xdp_mode || cfg.ring_size != st.cfg.ring_size),
                ("flows", cfg.flows != st.cfg.flows || cfg.flow_capacity != st.cfg.flow_capacity),
                ("metrics.listen", cfg.metrics != st.cfg.metrics),
                ("detect.enabled", cfg.detect != st.cfg.detect),
            ]
            .into_iter()
            .filter_map(|(k, changed)| changed.then_some(k))
            .collect();
            if let Some(r) = &rules {
                for o in observed.iter_mut() {
                    apply_rules(o, r, false);
                }
            }
            if st.cfg.detect {
                *insp = new_insp;
            }
            let keep = (st.cfg.interfaces.clone(), st.cfg.xdp_mode.clone(), st.cfg.ring_size, st.cfg.flows, st.cfg.flow_capacity, st.cfg.metrics, st.cfg.detect);
            st.cfg = cfg;
            // What needs a restart keeps its running value until then.
            (st.cfg.interfaces, st.cfg.xdp_mode, st.cfg.ring_size, st.cfg.flows, st.cfg.flow_capacity, st.cfg.metrics, st.cfg.detect) = keep;
            st.rules = rules;
            st.reloads += 1;
            st.last_reload_error = None;
            eprintln!(
                "rxray agent: reloaded {}{}",
                file.display(),
                if restart.is_empty() { String::new() } else { format!(" ({} changed: takes effect at the next start)", restart.join(", ")) }
            );
        }
    }
}

/// The latency histograms and counters over `ifaces` (a joined `latency`).
fn joined_latency(observed: &[Observed], ifaces: &[String]) -> Option<(rxray_engine::source::LatencySnapshot, rxray_kernel::LatencyTotals)> {
    let (mut all, mut t) = (rxray_engine::source::LatencySnapshot::default(), rxray_kernel::LatencyTotals::default());
    for o in observed.iter().filter(|o| ifaces.contains(&o.iface)) {
        let s = o.src.latency_snapshot().ok()?;
        all.flows.extend(s.flows);
        all.procs.extend(s.procs);
        let x = o.ingress().latency_totals().ok()?;
        t.stamped += x.stamped;
        t.queued += x.queued;
        t.read += x.read;
        t.flow_insert_failed += x.flow_insert_failed;
        t.proc_insert_failed += x.proc_insert_failed;
    }
    Some((all, t))
}

/// Every observer's latency histograms as one snapshot.
fn latency_snapshot(observed: &[Observed]) -> rxray_engine::source::LatencySnapshot {
    let mut all = rxray_engine::source::LatencySnapshot::default();
    for o in observed {
        if let Ok(s) = o.src.latency_snapshot() {
            all.flows.extend(s.flows);
            all.procs.extend(s.procs);
        }
    }
    all
}

/// The snapshot the metrics show: every count from the kernel's maps (exact whatever the rings lost).
/// Each observer's flow table, decoded: read once per interval (a syscall per entry) and shared by
/// the metrics and the store's batch.
fn flow_tables(st: &State, observed: &[Observed], clock: &Clock) -> Vec<Vec<rxray_engine::flows::FlowRecord>> {
    observed.iter().map(|o| if st.cfg.flows { o.ingress().flow_records(clock).unwrap_or_default() } else { Vec::new() }).collect()
}

fn snapshot(st: &State, observed: &[Observed], tables: &[Vec<rxray_engine::flows::FlowRecord>], drops: Option<&Drops>, reasons: &BTreeMap<u64, String>) -> Result<Snapshot> {
    let mut s = Snapshot { host: st.cfg.host.clone(), ..Default::default() };
    s.flows_live = tables.iter().map(|t| t.len() as u64).sum();
    for o in observed {
        let ing = o.ingress();
        let t = ing.totals()?;
        s.events_lost += t.lost;
        s.flow_inserts_failed += t.flow_insert_failed;
        for (_, name, c) in ing.interface_counts()? {
            let e = s.interfaces.entry(name).or_default();
            e.0 += c.packets;
            e.1 += c.bytes;
        }
        for (n, c) in ing.protocol_counts()? {
            *s.protocols.entry(n.to_string()).or_default() += c.packets;
        }
        if st.cfg.flows {
            s.flow_capacity += st.cfg.flow_capacity as u64;
        }
        if let Some(f) = &o.firewall {
            let c = f.counts()?;
            let names: Vec<String> = st.rules.as_ref().map(|r| r.set.rules.iter().map(|r| r.name.clone()).collect()).unwrap_or_default();
            for (i, v) in c.rules.iter().enumerate() {
                let name = names.get(i).filter(|n| !n.is_empty()).cloned().unwrap_or_else(|| format!("rule {}", i + 1));
                *s.firewall_rules.entry(name).or_default() += v.packets;
            }
            *s.firewall_rules.entry("dynamic blocks".into()).or_default() += c.blocks.packets;
        }
    }
    if let Some(d) = drops {
        let t = d.totals()?;
        s.events_lost += t.lost;
        for (code, n) in t.by_reason {
            let name = if code as usize == rxray_kernel::drops::REASON_SLOTS - 1 {
                "OTHER".to_string()
            } else {
                reasons.get(&(code as u64)).cloned().unwrap_or_else(|| format!("reason_{code}"))
            };
            *s.drops.entry(name).or_default() += n;
        }
    }
    s.alerts = st.alerts.clone();
    Ok(s)
}

/// `rxray status --json`: what the agent runs and how complete its data is.
fn status(st: &State, observed: &[Observed], drops: Option<&Drops>, metrics: Option<&MetricsServer>, store: Option<&StoreWriter>, hub: &crate::join::hub::Hub) -> rec::AgentStatus {
    let interfaces = observed
        .iter()
        .flat_map(|o| {
            let t = o.ingress().totals().ok();
            o.ingress().attached().iter().map(move |x| rec::IfaceStatus {
                interface: x.iface.clone(),
                ifindex: x.ifindex,
                hook: "xdp",
                mode: x.mode.to_string(),
                firewall: o.firewall.is_some(),
                packets: t.as_ref().map(|t| t.packets),
                bytes: t.as_ref().map(|t| t.bytes),
                events_lost: t.as_ref().map(|t| t.lost),
                flow_insert_failed: t.as_ref().map(|t| t.flow_insert_failed),
                flows: if st.cfg.flows { o.ingress().flows().ok().map(|f| f.len()) } else { None },
                flow_capacity: st.cfg.flows.then_some(st.cfg.flow_capacity),
            }).collect::<Vec<_>>()
        })
        .collect();
    let d = drops.and_then(|d| d.totals().ok());
    rec::AgentStatus {
        host: st.cfg.host.clone(),
        pid: std::process::id(),
        uptime_s: st.started.elapsed().as_secs_f64(),
        config: st.config_file.as_ref().map(|p| p.display().to_string()),
        reloads: st.reloads,
        reloads_rejected: st.reloads_rejected,
        last_reload_error: st.last_reload_error.clone(),
        interfaces,
        drops: d.map(|d| rec::DropsStatus { drops: d.drops, events_lost: d.lost }),
        detection: rec::DetectionStatus { enabled: st.cfg.detect, enforce: st.cfg.enforce, alerts: st.alerts.clone() },
        firewall_rules: st.cfg.firewall_rules.clone(),
        sinks: vec![
            rec::SinkStatus::Metrics { name: "metrics", listen: metrics.map(|m| m.addr.to_string()), healthy: metrics.is_some() || st.cfg.metrics.is_none() },
            rec::SinkStatus::Eve { name: "eve", to: "stdout", healthy: true },
            store_status(st, store),
        ],
        clients: hub.status(),
        connections: Default::default(),
    }
}

/// The store sink's health: size, lag (batches queued, age of the newest written), retention.
fn store_status(st: &State, store: Option<&StoreWriter>) -> rec::SinkStatus {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(w) = store else { return rec::SinkStatus::StoreOff { name: "store", enabled: false, healthy: true } };
    let s = &w.stats;
    let last = s.last_written_ts.load(Relaxed);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let err = s.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
    rec::SinkStatus::Store(rec::StoreStatus {
        name: "store",
        enabled: true,
        dir: st.cfg.store_dir.clone(),
        size_bytes: s.size_bytes.load(Relaxed),
        batches_written: s.batches_written.load(Relaxed),
        rows_written: s.rows_written.load(Relaxed),
        batches_lost: s.batches_lost.load(Relaxed),
        batches_failed: s.batches_failed.load(Relaxed),
        queued: s.queued.load(Relaxed),
        lag_s: if last > 0 { Some(now.saturating_sub(last) as f64 / 1e9) } else { None },
        retention: rec::Retention { max_age_s: st.cfg.store_max_age_s, max_bytes: st.cfg.store_max_bytes, rollup_after_s: st.cfg.store_rollup_after_s },
        last_error: err,
        healthy: s.batches_failed.load(Relaxed) == 0 && s.batches_lost.load(Relaxed) == 0,
    })
}

impl History {
    /// Takes the kernel's counters as they are at start as already written: a restarted agent
    /// that adopts pinned maps (the firewall's) then does not count their past twice.
    fn baseline(&mut self, s: &Snapshot, tables: &[Vec<rxray_engine::flows::FlowRecord>], now: u64) {
        let _ = self.batch(s, tables, now, u64::MAX / 2_000_000_000, 0);
    }

    /// Whether the flow's closing row is written.
    fn closed(&self, k: &FlowKey) -> bool {
        self.flows.get(k).is_some_and(|m| m.closed)
    }

    /// Flows removed from the kernel's table: their marks go (their last row is written).
    fn forget(&mut self, gone: &[FlowKey]) {
        for k in gone {
            self.flows.remove(k);
        }
    }

    fn record_alert(&mut self, al: &Alert) {
        self.alerts.push(crate::history::alert_row(al));
        if let Some(Mitigation::Taken(act)) = &al.mitigation {
            let (kind, target) = match &act.kind {
                ActionKind::Block { cidr } => ("block", cidr.to_string()),
                ActionKind::RateLimit { dst, .. } => ("rate_limit", dst.to_string()),
                ActionKind::LimitSrc { cidr, .. } => ("rate_limit_src", cidr.to_string()),
            };
            let enforced = al.evidence.get("enforced").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
            self.mitigations.push(MitigationRow { ts: al.ts_ns, alert_id: al.id, kind: kind.into(), target, ttl_s: act.ttl_s as u64, reason: act.reason.clone(), enforced });
        }
    }

    /// The batch for the period ending `now`: flows that moved (as deltas) or went idle (closed),
    /// the alerts and mitigations since the last batch, and per-minute deltas of the counters.
    /// `period_s`: a live flow that moved gets a row only when its last one is at least this old
    /// (0: every flow that moved, as the last batch before stopping does).
    fn batch(&mut self, s: &Snapshot, tables: &[Vec<rxray_engine::flows::FlowRecord>], now: u64, idle_s: u64, period_s: u64) -> Batch {
        let mut b = Batch { ts: now, ..Default::default() };
        let mut seen = std::collections::HashSet::new();
        for flows in tables {
            for r in flows {
                if r.key.fragments {
                    continue;
                }
                seen.insert(r.key.clone());
                let m = self.flows.entry(r.key.clone()).or_insert(FlowMark { packets: 0, bytes: 0, written_ns: r.first_ns, closed: false, row_ns: now });
                if r.packets < m.packets {
                    // The entry was made anew (removed and recreated): count it from zero.
                    *m = FlowMark { packets: 0, bytes: 0, written_ns: r.first_ns, closed: false, row_ns: now };
                }
                let idle = r.last_ns.saturating_add(idle_s.saturating_mul(1_000_000_000)) <= now;
                let moved = r.packets > m.packets;
                let due = m.row_ns.saturating_add(period_s.saturating_mul(1_000_000_000)) <= now;
                if !moved && (m.closed || !idle) {
                    continue;
                }
                if moved && !idle && !due {
                    continue;
                }
                b.flows.push(FlowRow {
                    ts_start: m.written_ns.min(r.last_ns),
                    ts_end: r.last_ns,
                    iface: r.iface.clone(),
                    proto: r.key.proto,
                    src: r.key.src,
                    sport: r.key.sport,
                    dst: r.key.dst,
                    dport: r.key.dport,
                    packets: r.packets - m.packets,
                    bytes: r.bytes.saturating_sub(m.bytes),
                    closed: idle,
                    drops: 0,
                    last_drop: None,
                    pid: None,
                    comm: None,
                    cgroup: None,
                });
                *m = FlowMark { packets: r.packets, bytes: r.bytes, written_ns: r.last_ns, closed: idle, row_ns: now };
            }
        }
        // Marks of flows the table no longer holds (another owner removed them) are dropped; the
        // agent's own removals are forgotten exactly (`forget`).
        if self.flows.len() > seen.len() {
            self.flows.retain(|k, _| seen.contains(k));
        }
        b.alerts = std::mem::take(&mut self.alerts);
        b.mitigations = std::mem::take(&mut self.mitigations);
        let minute = now / 1_000_000_000 / 60 * 60;
        let mut delta = |kind: &str, key: &str, total: u64, out: &mut Vec<MinuteCount>| {
            let prev = self.totals.insert((kind.to_string(), key.to_string()), total).unwrap_or(0);
            if total > prev {
                out.push(MinuteCount { minute, kind: kind.into(), key: key.into(), value: total - prev });
            }
        };
        for (reason, n) in &s.drops {
            delta("drop", reason, *n, &mut b.counts);
        }
        for (rule, n) in &s.firewall_rules {
            delta("fw_rule", rule, *n, &mut b.counts);
        }
        b.events_lost = s.events_lost.saturating_sub(self.events_lost);
        self.events_lost = s.events_lost;
        b
    }
}

/// A control connection's first line: `{"cmd":"status"}` or a join request (crate::join).
enum Request {
    Status,
    Join(Box<crate::join::JoinRequest>),
}

/// Reads the request line of a control connection (at most 4 KiB, 500 ms).
fn read_request(conn: &UnixStream) -> std::result::Result<Request, String> {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = conn.set_write_timeout(Some(Duration::from_millis(500)));
    let mut line = String::new();
    // One request line of at most 4 KiB (the socket is root-only; still, never unbounded).
    let mut r = BufReader::new(std::io::Read::take(conn, 4096));
    r.read_line(&mut line).map_err(|e| format!("reading the request: {e}"))?;
    let v: serde_json::Value = serde_json::from_str(line.trim()).map_err(|_| "expected one JSON line like {\"cmd\":\"status\"}".to_string())?;
    match v["cmd"].as_str() {
        Some("status") => Ok(Request::Status),
        Some("join") => serde_json::from_value(v).map(|r| Request::Join(Box::new(r))).map_err(|e| format!("join request: {e}")),
        Some(c) => Err(format!("unknown command {c:?} (this agent answers: status, join)")),
        None => Err("expected one JSON line like {\"cmd\":\"status\"}".to_string()),
    }
}

/// One JSON line back.
fn reply<R: crate::sinks::Record>(conn: &UnixStream, rec: &R) {
    let _ = crate::sinks::JsonLines::new(conn).write(rec);
}

/// `[http] enabled`: HTTP copies on every interface the agent observes through its own program
/// (a firewalled interface's program makes no HTTP copies: said once, and it goes without).
fn start_http(observed: &mut [Observed], ports: &[u16]) -> Result<Option<crate::agent_http::HttpView>> {
    for o in observed.iter().filter(|o| o.firewall.is_some()) {
        eprintln!("rxray agent: warning: {} runs rxray's firewall program, which makes no HTTP copies: no HTTP view there", o.iface);
    }
    let ings = observed.iter_mut().filter(|o| o.firewall.is_none()).map(|o| o.ingress_mut());
    let v = crate::agent_http::HttpView::start(ings, ports)?;
    eprintln!("rxray agent: HTTP view on ports {}", ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "));
    Ok(Some(v))
}

/// HTTP records the kernel could not copy (its rings were full), over the HTTP interfaces.
fn http_lost(observed: &[Observed]) -> u64 {
    observed.iter().filter(|o| o.firewall.is_none()).filter_map(|o| o.ingress().http_totals().ok()).map(|t| t.records_lost).sum()
}

/// The flow table and ingress counters over `ifaces` (a joined `flows`); None with `[flows]` off.
fn joined_flows(observed: &[Observed], st: &State, ifaces: &[String]) -> Option<(rxray_engine::source::FlowSnapshot, rxray_kernel::Totals)> {
    if !st.cfg.flows {
        return None;
    }
    let mut snap = rxray_engine::source::FlowSnapshot::default();
    let mut t = rxray_kernel::Totals::default();
    for o in observed.iter().filter(|o| ifaces.contains(&o.iface)) {
        let s = o.src.flow_snapshot().ok()?;
        snap.ts_ns = snap.ts_ns.max(s.ts_ns);
        snap.flows.extend(s.flows);
        for (n, c) in s.protocols {
            match snap.protocols.iter_mut().find(|(m, _)| *m == n) {
                Some((_, x)) => {
                    x.packets += c.packets;
                    x.bytes += c.bytes;
                }
                None => snap.protocols.push((n, c)),
            }
        }
        snap.interfaces.extend(s.interfaces);
        t.add(&o.ingress().totals().ok()?);
    }
    Some((snap, t))
}

/// The HTTP copies' kernel counters of the agent's interface `iface`.
fn iface_http_totals(observed: &[Observed], iface: &str) -> Option<rxray_kernel::http::HttpKernelTotals> {
    observed.iter().find(|o| o.iface == iface && o.firewall.is_none()).and_then(|o| o.ingress().http_totals().ok())
}

/// The kernel counters of the agent's interface `iface`.
fn iface_totals(observed: &[Observed], iface: &str) -> Option<rxray_kernel::Totals> {
    observed.iter().find(|o| o.iface == iface).and_then(|o| o.ingress().totals().ok())
}

/// Packet events are on while detection or a joined `watch` needs them: turned on and off in the
/// programs' config (the attached programs stay). Returns the new state.
fn joined_events(observed: &mut [Observed], on: bool, want: bool) -> bool {
    if on == want {
        return on;
    }
    for o in observed.iter_mut() {
        if let Err(e) = o.ingress_mut().set_events(want) {
            eprintln!("rxray agent: turning packet events {} on {}: {e}", if want { "on" } else { "off" }, o.iface);
        }
    }
    want
}

/// `rxray status [--json]`: asks the agent of this network namespace.
pub fn status_cmd(json: bool) -> Result<()> {
    let sock = socket_path();
    let mut c = UnixStream::connect(&sock).with_context(|| format!("no agent answers at {} (start one with `rxray agent`)", sock.display()))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    writeln!(c, "{{\"cmd\":\"status\"}}")?;
    let mut line = String::new();
    BufReader::new(&c).read_line(&mut line).context("reading the agent's answer")?;
    let v: serde_json::Value = serde_json::from_str(line.trim()).with_context(|| format!("the agent's answer is not JSON: {line:?}"))?;
    if let Some(e) = v["error"].as_str() {
        bail!("the agent says: {e}");
    }
    if json {
        println!("{v}");
        return Ok(());
    }
    println!(
        "rxray agent {} (pid {}), up {:.0} s; config {}; {} reloads, {} rejected",
        v["host"].as_str().unwrap_or("?"),
        v["pid"],
        v["uptime_s"].as_f64().unwrap_or(0.0),
        v["config"].as_str().unwrap_or("(none)"),
        v["reloads"],
        v["reloads_rejected"]
    );
    println!("{:<12} {:<5} {:<8} {:>9} {:>12} {:>14} {:>10} {:>9}", "INTERFACE", "HOOK", "MODE", "FIREWALL", "PACKETS", "BYTES", "LOST", "FLOWS");
    for i in v["interfaces"].as_array().into_iter().flatten() {
        let flows = match (i["flows"].as_u64(), i["flow_capacity"].as_u64()) {
            (Some(n), Some(c)) if c > 0 => format!("{n} ({:.0}%)", 100.0 * n as f64 / c as f64),
            _ => "-".into(),
        };
        println!(
            "{:<12} {:<5} {:<8} {:>9} {:>12} {:>14} {:>10} {:>9}",
            i["interface"].as_str().unwrap_or("?"),
            i["hook"].as_str().unwrap_or("?"),
            i["mode"].as_str().unwrap_or("?"),
            if i["firewall"].as_bool() == Some(true) { "yes" } else { "no" },
            i["packets"],
            i["bytes"],
            i["events_lost"],
            flows
        );
    }
    for s in v["sinks"].as_array().into_iter().flatten() {
        println!("sink {}: {}", s["name"].as_str().unwrap_or("?"), if s["healthy"].as_bool() == Some(true) { "healthy" } else { "UNHEALTHY" });
    }
    println!("alerts: {}", v["detection"]["alerts"]);
    let clients = v["clients"].as_array().cloned().unwrap_or_default();
    println!("{} joined client(s)", clients.len());
    if !clients.is_empty() {
        println!("{:>4} {:<8} {:>8} {:<14} {:>16} {:>10} {:>10}  FILTER", "ID", "COMMAND", "PID", "INTERFACES", "QUEUE", "MATCHED", "LOST");
    }
    for c in &clients {
        let ifaces: Vec<&str> = c["interfaces"].as_array().into_iter().flatten().filter_map(|i| i.as_str()).collect();
        println!(
            "{:>4} {:<8} {:>8} {:<14} {:>16} {:>10} {:>10}  {}",
            c["id"],
            c["command"].as_str().unwrap_or("?"),
            c["pid"],
            ifaces.join(","),
            format!("{}/{} ({:.0}%)", c["queue"], c["queue_capacity"], 100.0 * c["queue_fill"].as_f64().unwrap_or(0.0)),
            c["matched"],
            c["lost"],
            c["filter"].as_str().unwrap_or("(none)")
        );
    }
    Ok(())
}
