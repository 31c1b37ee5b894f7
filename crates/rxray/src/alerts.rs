//! Alerts: the detectors and payload signatures over live packets (`rxray alerts`) or captures
//! (`rxray analyze --alerts`), written as Suricata EVE `alert` records (JSON Lines). Live, with
//! `--enforce`, the policy's decisions are carried out by the firewall: blocks of offending sources
//! and rate limits of targeted destinations, each with its TTL, checked in the kernel.
use crate::http::HttpOpts;
use crate::sinks::eve::Eve;
use crate::sinks::pcapng::Recordings;
use crate::sinks::Sink;
use crate::{session, XdpModeArg};
use anyhow::{anyhow, bail, Context, Result};
use rxray_engine::alert::Alert;
use rxray_engine::cidr::{CidrSet, ParseMode};
use rxray_engine::detect::policy::{ActionKind, Mitigation};
use rxray_engine::detect::{DetectConfig, Detectors};
use rxray_engine::http::HttpConfig;
use rxray_engine::inspect::{Inspector, DEFAULT_RULES};
use rxray_engine::inspect_http::HttpInspector;
use rxray_engine::recorder::{FlightRecorder, RecorderConfig};
use rxray_engine::signatures::{self, Vars};
use rxray_engine::conv::Conversations;
use rxray_engine::source::{Event, Source, TCP_CLOSE};
use rxray_io::CaptureSource;
use rxray_kernel::firewall::{self as fw, FwCapacity, Firewall};
use rxray_kernel::source::{CAP_SNAP_MAX, PAYLOAD_MAX};
use rxray_kernel::{IngressOptions, LiveSource};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// What the alert pipeline is built from (shared by `alerts` and `analyze --alerts`).
#[derive(clap::Args, Debug, Clone)]
pub struct AlertOpts {
    /// Signature rules (Suricata syntax): a file, `default` (the web-attack rules rxray ships) or `none`.
    #[arg(long, default_value = "default")]
    pub signatures: String,
    /// Detector configuration (JSON; every threshold, the policy and the allow list; see docs/detection.md).
    #[arg(long, value_name = "FILE")]
    pub detect_config: Option<PathBuf>,
    /// API limits (TOML, `[[api_limit]]` entries; docs/http.md): request rates per client and
    /// endpoint on the HTTP ports (--port), and the endpoints' error-rate and latency baselines.
    #[arg(long, value_name = "FILE")]
    pub api_limits: Option<PathBuf>,
    /// A threat list NAME=FILE in FireHOL/Spamhaus format (repeatable): traffic from or to it alerts.
    #[arg(long = "threat-list", value_name = "NAME=FILE")]
    pub threat_lists: Vec<String>,
    /// Write the EVE records to this file (appended) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub eve: Option<PathBuf>,
    /// Flight recorder: keep the last seconds of packets (headers and payload prefix) per interface,
    /// and write the seconds before and after each alert as pcapng in this directory (the alert
    /// names the file; it is written once the seconds after have passed).
    #[arg(long, value_name = "DIR")]
    pub recorder: Option<PathBuf>,
    /// Seconds the flight recorder keeps before and after an alert.
    #[arg(long, default_value_t = 5.0, value_parser = crate::args::seconds)]
    pub recorder_seconds: f64,
    /// This host's networks (repeatable): the rules' `$HOME_NET` (the same setting as
    /// `--set vars.address-groups.HOME_NET=[...]`) and, offline, the connections with one end
    /// inside count as this host's, for the exfiltration detector (live, the kernel's connections
    /// say it). Without it `$HOME_NET` is Suricata's default, the private ranges.
    #[arg(long = "home-net", value_name = "CIDR")]
    pub home_net: Vec<String>,
    #[command(flatten)]
    pub files: crate::args::FileLimit,
    #[command(flatten)]
    pub suricata: SuricataOpts,
}

/// Suricata's own settings for the signatures (docs/suricata.md).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SuricataOpts {
    /// A threshold.config (suppress, threshold/event_filter and rate_filter entries, Suricata's syntax).
    #[arg(long, value_name = "FILE")]
    pub threshold_file: Option<PathBuf>,
    /// A suricata.yaml setting KEY=VALUE (repeatable): vars.address-groups.NAME and
    /// vars.port-groups.NAME, e.g. --set vars.address-groups.HOME_NET=[198.18.0.0/15].
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Signature alerts carry `payload_printable` (the payload, non-printable bytes as '.').
    #[arg(long)]
    pub payload_printable: bool,
}

impl SuricataOpts {
    fn is_default(&self) -> bool {
        self.threshold_file.is_none() && self.set.is_empty() && !self.payload_printable
    }
}

/// The rule variables: Suricata's defaults, then `--set vars.*`, with `--home-net` as HOME_NET.
fn rule_vars(o: &AlertOpts) -> Result<Vars> {
    let mut vars = Vars::default();
    let mut home_set = false;
    for kv in &o.suricata.set {
        let (k, v) = kv.split_once('=').ok_or_else(|| anyhow!("--set {kv:?}: expected KEY=VALUE"))?;
        let name = k.strip_prefix("vars.address-groups.").or_else(|| k.strip_prefix("vars.port-groups."));
        let Some(name) = name.filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) else {
            bail!("--set {k}: rxray knows vars.address-groups.NAME and vars.port-groups.NAME only");
        };
        home_set |= name == "HOME_NET";
        vars.set(name, v.trim());
    }
    if !o.home_net.is_empty() {
        if home_set {
            bail!("HOME_NET is given twice (--home-net and --set vars.address-groups.HOME_NET): they are one setting, give it once");
        }
        vars.set("HOME_NET", &format!("[{}]", o.home_net.join(",")));
    }
    Ok(vars)
}

/// The flight recorder and the sink of its recordings (pcapng files in a directory).
pub struct Recorder {
    rec: FlightRecorder,
    out: Recordings,
}

impl Recorder {
    pub fn new(o: &AlertOpts) -> Result<Option<Recorder>> {
        o.recorder.as_ref().map(|dir| Recorder::open(dir, o.recorder_seconds)).transpose()
    }

    /// A recorder writing to `dir`, keeping `seconds` before and after each alert.
    pub fn open(dir: &std::path::Path, seconds: f64) -> Result<Recorder> {
        let out = Recordings::create(dir)?;
        let ns = (seconds.max(0.0) * 1e9) as u64;
        let rec = FlightRecorder::new(RecorderConfig { before_ns: ns, after_ns: ns, snap: 256, ..Default::default() })
            .map_err(|e| anyhow!("flight recorder: {e}"))?;
        Ok(Recorder { rec, out })
    }

    pub fn snap(&self) -> u32 {
        self.rec.config().snap
    }

    pub fn record(&mut self, iface: &str, ts_ns: u64, orig_len: u32, frame: &[u8]) {
        self.rec.record(iface, ts_ns, orig_len, frame);
    }

    /// Names the file in the alert and opens its window.
    pub fn trigger(&mut self, a: &mut Alert) {
        let name = format!("rxray-alert-{}-{}.pcapng", a.id, a.sig.detector);
        if self.rec.trigger_alert(a) {
            a.pcap = Some(self.out.dir().join(name).display().to_string());
        }
    }

    fn write(&mut self, recs: Vec<rxray_engine::recorder::Recording>) -> Result<()> {
        for r in &recs {
            self.out.write(r)?;
        }
        Ok(())
    }

    /// Writes the recordings whose window has ended by event time `now_ns`.
    pub fn poll(&mut self, now_ns: u64) -> Result<()> {
        let r = self.rec.poll(now_ns);
        self.write(r)
    }

    /// Writes every open recording (end of the input, or shutdown).
    pub fn finish(&mut self) -> Result<()> {
        let r = self.rec.flush_all();
        self.write(r)?;
        if self.out.written > 0 {
            eprintln!("rxray: flight recorder: {} recordings in {}", self.out.written, self.out.dir().display());
        }
        Ok(())
    }
}

/// This host's networks for the exfiltration detector: `--home-net`, or the HOME_NET of `--set`
/// when it is a plain list of CIDRs (none when neither is given).
fn home_nets(o: &AlertOpts) -> Result<CidrSet> {
    let mut v = Vec::new();
    for t in &o.home_net {
        let (c, _) = rxray_engine::cidr::parse_cidr(t.trim()).map_err(|(_, k)| anyhow!("--home-net {t}: {k}"))?;
        v.push(c);
    }
    let set_home = o.suricata.set.iter().filter_map(|kv| kv.strip_prefix("vars.address-groups.HOME_NET=")).next_back();
    if let Some(list) = set_home {
        let items: Vec<&str> = list.trim().trim_start_matches('[').trim_end_matches(']').split(',').map(str::trim).collect();
        match items.iter().map(|t| rxray_engine::cidr::parse_cidr(t)).collect::<Result<Vec<_>, _>>() {
            Ok(cs) => v.extend(cs.into_iter().map(|(c, _)| c)),
            Err(_) => eprintln!("rxray: HOME_NET {list} is not a plain list of CIDRs: the exfiltration detector gets no home networks"),
        }
    }
    Ok(CidrSet::new(&v))
}

/// Builds the pipeline; problems with rules are reported on stderr (the rules that load are used).
pub fn inspector(o: &AlertOpts, host_addrs: &[IpAddr]) -> Result<Inspector> {
    let cfg = match &o.detect_config {
        None => DetectConfig::default(),
        Some(p) => {
            let text = o.files.read(p)?;
            DetectConfig::from_json(&text).map_err(|e| anyhow!("{}: {e}", p.display()))?
        }
    };
    let mut det = Detectors::new(cfg, host_addrs).map_err(|e| anyhow!("detector configuration: {e}"))?;
    for t in &o.threat_lists {
        let (name, file) = t.split_once('=').ok_or_else(|| anyhow!("--threat-list {t:?}: expected NAME=FILE"))?;
        let text = o.files.read(file.as_ref()).with_context(|| format!("--threat-list {t}"))?;
        // `sni:NAME` and `ja4:FINGERPRINT` lines are matched on TLS handshakes; the rest are addresses.
        let (names, text) = rxray_engine::detect::threat::TlsNames::from_list(&text);
        if !names.is_empty() {
            eprintln!("rxray: threat list {name}: {} server names and {} JA4 fingerprints from {file}", names.sni.len(), names.ja4.len());
            det.add_threat_names(name, names);
        }
        let (set, parsed) = CidrSet::parse(&text, ParseMode::Lenient).map_err(|errs| anyhow!("threat list {file}: {}", errs[0]))?;
        for e in parsed.errors.iter().take(5) {
            eprintln!("rxray: warning: threat list {file}:{e} (line skipped)");
        }
        eprintln!("rxray: threat list {name}: {} prefixes from {file}", set.len());
        det.add_threat_list(name, set);
    }
    let sigs = match o.signatures.as_str() {
        "none" => None,
        which => {
            let (text, from) = if which == "default" {
                (DEFAULT_RULES.to_string(), "the default rules".to_string())
            } else {
                (o.files.read(which.as_ref())?, which.to_string())
            };
            let loaded = signatures::load(&text, &rule_vars(o)?);
            for e in &loaded.errors {
                eprintln!("rxray: {from}:{}:{}: {} (rule skipped)", e.line, e.column, e.message);
            }
            for u in &loaded.unsupported {
                eprintln!("rxray: {from}:{}: sid {} unsupported: {} (rule skipped)", u.line, u.sid, u.reason);
            }
            eprintln!(
                "rxray: signatures: {} rules loaded from {from}, {} unsupported, {} with errors",
                loaded.set.len(),
                loaded.unsupported.len(),
                loaded.errors.len()
            );
            let mut set = loaded.set;
            if let Some(p) = &o.suricata.threshold_file {
                let text = o.files.read(p)?;
                let (cfg, errors) = signatures::threshold_config::parse(&text, &rule_vars(o)?);
                if let Some(e) = errors.first() {
                    bail!("{}:{}:{}: {} ({} bad entries in all)", p.display(), e.line, e.column, e.message, errors.len());
                }
                let (s, notes) = set.with_threshold_config(&cfg);
                for n in notes {
                    eprintln!("rxray: {}: {n}", p.display());
                }
                eprintln!("rxray: threshold file {}: {} entries", p.display(), cfg.entries.len());
                set = s;
            }
            Some(set)
        }
    };
    let insp = Inspector::new(det, sigs).with_payload_printable(o.suricata.payload_printable);
    Ok(match &o.api_limits {
        None => insp,
        Some(p) => insp.with_api(crate::api_limits::load(&o.files.read(p)?, p)?),
    })
}

#[derive(Default)]
struct Tally {
    by: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, a: &Alert) {
        let key = if a.sig.detector == rxray_engine::inspect::SIGNATURE {
            format!("signature {} ({})", a.sig.sid, a.sig.msg)
        } else {
            a.sig.detector.to_string()
        };
        *self.by.entry(key).or_default() += 1;
    }

    fn print(&self, total_packets: u64, inspector: &Inspector) {
        let n: u64 = self.by.values().sum();
        eprintln!("rxray: {n} alerts over {total_packets} packets");
        for (k, v) in &self.by {
            eprintln!("  {v:>8}  {k}");
        }
        let st = inspector.detectors.stats();
        if st.suppressed > 0 {
            eprintln!("  ({} repeats suppressed)", st.suppressed);
        }
    }
}

/// The alert pipeline over any source (`alerts` live, `analyze --alerts` over captures): packets
/// to the detectors and signatures, frames to the flight recorder, connections to the
/// exfiltration detector, all on event time; alerts out as EVE records.
struct AlertLoop<'f> {
    insp: Inspector,
    recorder: Option<Recorder>,
    out: Eve<Box<dyn Write>>,
    tally: Tally,
    alerts: Vec<Alert>,
    /// Firewalls that carry out the mitigations (`--enforce`); none otherwise.
    firewalls: &'f mut [Firewall],
    /// This host's networks (offline): connections are then taken from the packets' conversations.
    home: CidrSet,
    convs: Conversations,
    packets: u64,
    emitted: u64,
    count: Option<u64>,
    last_ts: u64,
    last_tick: u64,
    /// Offline HTTP: capture frames feed the inspector's HTTP side.
    http_frames: bool,
    /// Live HTTP: the kernel's HTTP copies, read after every pass.
    http_ring: Option<HttpRing>,
    /// Offline: alerts carry `pcap_cnt`, the ordinal of the record that raised them.
    offline: bool,
}

/// The kernel's HTTP copies (both directions of the watched ports) for the live HTTP side.
pub struct HttpRing {
    ring: aya::maps::RingBuf<aya::maps::MapData>,
    ports: Vec<u16>,
    clock: rxray_kernel::Clock,
    resynced: std::time::Instant,
    /// Records that made no sense (counted, skipped).
    bad: u64,
}

impl HttpRing {
    /// Reads up to a batch of records into the inspector, on the Unix-epoch time the other events use.
    fn drain(&mut self, insp: &mut Inspector, out: &mut Vec<Alert>) -> usize {
        if self.resynced.elapsed() >= Duration::from_secs(1) {
            self.clock.resync();
            self.resynced = std::time::Instant::now();
        }
        let mut n = 0;
        while n < session::BATCH {
            let Some(item) = self.ring.next() else { break };
            n += 1;
            match rxray_kernel::http::segment_of(&item, &self.ports) {
                Some((_, seg)) => insp.on_segment(&rxray_engine::http::TcpSegment { ts_ns: self.clock.to_unix_ns(seg.ts_ns), ..seg }, out),
                None => self.bad += 1,
            }
        }
        n
    }
}

impl<'f> AlertLoop<'f> {
    fn new(
        insp: Inspector,
        recorder: Option<Recorder>,
        out: Eve<Box<dyn Write>>,
        firewalls: &'f mut [Firewall],
        home: CidrSet,
        count: Option<u64>,
    ) -> Self {
        AlertLoop {
            insp,
            recorder,
            out,
            tally: Tally::default(),
            alerts: Vec::new(),
            firewalls,
            home,
            convs: Conversations::default(),
            packets: 0,
            emitted: 0,
            count,
            last_ts: 0,
            last_tick: 0,
            http_frames: false,
            http_ring: None,
            offline: false,
        }
    }

    /// Takes one event; true once `count` alerts have been written.
    fn on_event(&mut self, ev: Event<'_>) -> Result<bool> {
        match ev {
            Event::Packet(p) => {
                self.packets += 1;
                self.last_ts = self.last_ts.max(p.ts_ns);
                if !self.home.is_empty() {
                    self.convs.add(p);
                }
                self.insp.on_packet(p, &mut self.alerts);
                self.number_records(self.packets);
                let done = self.emit()?;
                if let Some(r) = self.recorder.as_mut() {
                    r.poll(p.ts_ns)?;
                }
                return Ok(done);
            }
            Event::Frame(f) => {
                if let Some(r) = self.recorder.as_mut() {
                    r.record(f.iface, f.ts_ns, f.orig_len, f.data);
                }
                if self.http_frames {
                    self.insp.on_frame(&f, &mut self.alerts);
                    // A record's frame comes just before its packet.
                    self.number_records(self.packets + 1);
                }
            }
            Event::Conn(c) if c.conn.state == TCP_CLOSE => {
                if let Some(s) = c.conn.summary(c.ts_ns) {
                    self.insp.on_conn(&s, &mut self.alerts);
                }
            }
            Event::Conns(snap) => {
                for c in &snap.conns {
                    if let Some(s) = c.summary(snap.ts_ns) {
                        self.insp.on_conn(&s, &mut self.alerts);
                    }
                }
            }
            // Time passes for the detectors even when no packet comes.
            Event::Tick(now) => {
                if now >= self.last_tick + 100_000_000 {
                    self.insp.on_tick(now, &mut self.alerts);
                    self.last_tick = now;
                }
                let done = self.emit()?;
                if let Some(r) = self.recorder.as_mut() {
                    r.poll(now)?;
                }
                return Ok(done);
            }
            _ => {}
        }
        self.emit()
    }

    /// Offline, the alerts raised so far by record `n` (1-based) carry it as `pcap_cnt`.
    fn number_records(&mut self, n: u64) {
        if self.offline {
            for a in self.alerts.iter_mut().filter(|a| a.pcap_cnt.is_none()) {
                a.pcap_cnt = Some(n);
            }
        }
    }

    /// Writes the alerts raised so far (mitigated, with their recordings); true once `count` are out.
    fn emit(&mut self) -> Result<bool> {
        for mut al in self.alerts.drain(..) {
            if !self.firewalls.is_empty() {
                enforce(self.firewalls, &mut al);
            }
            if let Some(r) = self.recorder.as_mut() {
                r.trigger(&mut al);
            }
            self.tally.add(&al);
            self.out.write(&al)?;
            self.emitted += 1;
            if self.count.is_some_and(|c| self.emitted >= c) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The end of a finite input is the end of time: the conversations of this host's networks
    /// (`--home-net`) go to the exfiltration detector, and windows still open close.
    fn end_of_input(&mut self) -> Result<()> {
        if !self.home.is_empty() {
            for s in self.convs.home_connections(&self.home) {
                self.insp.on_conn(&s, &mut self.alerts);
            }
        }
        self.insp.finish(&mut self.alerts);
        self.insp.on_tick(self.last_ts + 10_000_000_000, &mut self.alerts);
        self.emit()?;
        Ok(())
    }

    /// Reads `src` to its end (or until `stop`, or `count` alerts), then writes the recordings
    /// still open and the tally. A damaged input is reported after what came before it was analyzed.
    fn run(mut self, src: &mut dyn Source, stop: &AtomicBool) -> Result<()> {
        let mut errors = Vec::new();
        let mut pump = session::Pump::new(stop);
        loop {
            while let Some(ev) = pump.next(src) {
                match ev {
                    Ok(ev) => {
                        if self.on_event(ev)? {
                            pump.finish();
                        }
                    }
                    Err(e) if e.fatal => return Err(e.into()),
                    Err(e) => errors.push(e.what),
                }
            }
            if let Some(h) = self.http_ring.as_mut() {
                h.drain(&mut self.insp, &mut self.alerts);
                if self.emit()? {
                    pump.finish();
                }
            }
            if !pump.again(src) {
                break;
            }
        }
        if src.ended() {
            self.end_of_input()?;
        }
        if let Some(r) = self.recorder.as_mut() {
            r.finish()?;
        }
        self.tally.print(self.packets, &self.insp);
        if let Some(h) = self.insp.http() {
            let t = h.tracker().snapshot();
            eprintln!("rxray: HTTP: {} requests, {} responses checked on ports {:?}", t.totals.requests, t.totals.responses, h.ports());
        }
        if let Some(g) = self.insp.api() {
            eprintln!("rxray: API limits: {} requests matched a limit, {} were over it", g.matched, g.over);
        }
        if let Some(h) = self.http_ring.as_ref().filter(|h| h.bad > 0) {
            eprintln!("rxray: {} HTTP ring records made no sense and were skipped", h.bad);
        }
        if let Some(e) = errors.first() {
            bail!("{e} (the packets before it were analyzed)");
        }
        Ok(())
    }
}

/// The HTTP side of the inspector, when `--openapi` or the rules' HTTP buffers ask for it: calls
/// on the HTTP ports (`--port`), checked against the document (a broken one stops the command
/// before anything starts) and inspected by the HTTP rules.
fn with_http(insp: Inspector, h: &HttpOpts) -> Result<(Inspector, bool)> {
    let spec = h.spec()?;
    let tls = insp.wants_tls();
    if spec.is_none() && !insp.wants_calls() && !tls {
        return Ok((insp, false));
    }
    if h.ports.is_empty() && !tls {
        bail!("HTTP (--openapi, --api-limits, or rules with HTTP buffers) needs at least one --port");
    }
    let mut hi = HttpInspector::new(h.config(), &h.ports, spec);
    if tls {
        // `tls` rules and threat lists with SNI or JA4 entries read the handshakes on --tls-port.
        hi = hi.with_tls_ports(&h.tls_ports);
    }
    let ports = hi.ports().to_vec();
    Ok((insp.with_http(hi), !ports.is_empty()))
}

/// `rxray analyze --alerts FILE...`: the same pipeline over captures, in capture time. With
/// `--openapi`, the HTTP calls in the captures are checked and findings alert.
pub fn analyze(files: &[PathBuf], o: &AlertOpts, h: &HttpOpts) -> Result<()> {
    let (insp, http) = with_http(inspector(o, &[])?, h)?;
    let home = home_nets(o)?;
    let recorder = Recorder::new(o)?;
    let out = Eve::open(o.eve.as_deref())?;
    let mut src = CaptureSource::new(files, recorder.is_some() || http).with_whole_payload();
    let mut l = AlertLoop::new(insp, recorder, out, &mut [], home, None);
    l.http_frames = http;
    l.offline = true;
    l.run(&mut src, &AtomicBool::new(false))
}

#[derive(clap::Args, Debug)]
pub struct AlertsArgs {
    /// Interface (repeatable). Default: every interface that is up, except loopback.
    #[arg(short = 'i', long = "interface")]
    pub ifaces: Vec<String>,
    #[command(flatten)]
    pub opts: AlertOpts,
    /// HTTP: with --openapi, calls on --port are checked against the document and findings alert.
    #[command(flatten)]
    pub http: HttpOpts,
    /// Carry out the policy's mitigations through the firewall (installed on the interface if needed):
    /// blocks of offending sources, rate limits of targeted destinations, each with its TTL.
    #[arg(long)]
    pub enforce: bool,
    /// Where to attach: auto (per device: TC ingress on veth and virtio_net, native XDP on NICs
    /// that keep GRO with it), native, generic or tc. With --enforce the firewall is installed in this mode (auto: TC on veth, XDP elsewhere) and observed through.
    #[arg(long, value_enum, default_value = "auto")]
    pub xdp_mode: XdpModeArg,
    /// Stop after this many alerts.
    #[arg(short = 'c', long)]
    pub count: Option<u64>,
    /// Payload bytes per event the detectors see (0..=256; more is an error, not cut silently).
    /// When a signature reads packet payloads, packets come whole from the capture ring instead.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(0..=256))]
    pub snap: u32,
    /// Do not follow the kernel's TCP connections (used by the exfiltration detector).
    #[arg(long)]
    pub no_conns: bool,
    /// Attach even when an agent runs here (docs/agent.md, "Joining the agent").
    #[arg(long)]
    pub standalone: bool,
}

/// Joins the agent of this namespace, which then runs this command's own detectors (its options)
/// on its packets. `--enforce`, `--eve`, `--recorder`, `--home-net` and Suricata's settings
/// (`--threshold-file`, `--set`, `--payload-printable`) are the agent's business (its
/// config) or offline only: a command with them attaches itself.
fn join_agent(a: &AlertsArgs) -> Result<Option<crate::join::client::Joined>> {
    let o = &a.opts;
    if a.standalone || a.enforce || o.eve.is_some() || o.recorder.is_some() || !o.home_net.is_empty() || o.api_limits.is_some() || !o.suricata.is_default() {
        return Ok(None);
    }
    // Paths are the agent's to read: made absolute here.
    let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    let signatures = match o.signatures.as_str() {
        "default" | "none" => o.signatures.clone(),
        f => abs(f.as_ref()),
    };
    let threat_lists = o
        .threat_lists
        .iter()
        .map(|t| match t.split_once('=') {
            Some((n, f)) => format!("{n}={}", abs(f.as_ref())),
            None => t.clone(),
        })
        .collect();
    let req = crate::join::JoinRequest {
        interfaces: a.ifaces.clone(),
        snap: a.snap,
        count: a.count,
        alerts: Some(crate::join::AlertsRequest {
            signatures,
            detect_config: o.detect_config.as_deref().map(abs),
            threat_lists,
            max_file_size: o.files.max_file_size,
        }),
        ..Default::default()
    };
    crate::join::client::try_join("alerts", req)
}

/// The detection options of a joined `alerts`, as the agent builds its inspector from them.
pub(crate) fn opts_of(r: &crate::join::AlertsRequest) -> AlertOpts {
    AlertOpts {
        signatures: r.signatures.clone(),
        detect_config: r.detect_config.as_ref().map(PathBuf::from),
        api_limits: None,
        threat_lists: r.threat_lists.clone(),
        eve: None,
        recorder: None,
        recorder_seconds: 5.0,
        home_net: Vec::new(),
        files: crate::args::FileLimit { max_file_size: r.max_file_size },
        suricata: Default::default(),
    }
}

/// The addresses of this network namespace's interfaces, which the policy never blocks. Failing
/// closed: with `--enforce` an unreadable list stops the command (blocking the host itself must be
/// impossible); without it, nothing is blocked anyway, so a warning does.
fn host_addrs(enforce: bool, read: std::io::Result<Vec<IpAddr>>) -> Result<Vec<IpAddr>> {
    match read {
        Ok(v) => Ok(v),
        Err(e) if enforce => Err(anyhow!(
            "reading this host's own addresses failed ({e}); --enforce needs them, so that rxray never blocks the host itself"
        )),
        Err(e) => {
            eprintln!("rxray: warning: reading this host's own addresses failed ({e}); alerts go on, and nothing is blocked without --enforce");
            Ok(Vec::new())
        }
    }
}

/// `rxray alerts`: follows live traffic and prints alerts as they fire.
pub fn run(a: AlertsArgs) -> Result<()> {
    session::require_root()?;
    let hosts = host_addrs(a.enforce, rxray_kernel::host::addresses())?;
    let (insp, http) = with_http(inspector(&a.opts, &hosts)?, &a.http)?;
    if http && insp.http().is_some_and(|h| h.ports().len() > rxray_kernel::http::MAX_PORTS) {
        bail!("--port and --tls-port take 1 to {} ports together", rxray_kernel::http::MAX_PORTS);
    }
    if let Some(j) = join_agent(&a)? {
        let stop = session::stop_flag()?;
        if insp.signatures().is_some_and(|s| s.needs_whole_payload()) {
            eprintln!("rxray: the signatures read packet payloads: the agent feeds them whole frames from its capture ring");
        }
        eprintln!("rxray: inspecting {} (joined the agent of {}, client {}); Ctrl-C to stop", j.hello.interfaces.join(", "), j.hello.host, j.hello.id);
        let mut out = std::io::stdout().lock();
        let o = j.run(&stop, &mut out, a.count, Duration::ZERO)?;
        if let Some(s) = o.summary {
            eprintln!("\n{} alerts; {} packets inspected, {} lost in the agent's ring and {} in this client's queue", o.delivered, s["matched"], s["lost_ring"], s["lost_queue"]);
        }
        return Ok(());
    }
    // Outputs before anything is attached or installed: a bad path fails with nothing changed.
    let out = Eve::open(a.opts.eve.as_deref())?;
    let recorder = Recorder::new(&a.opts)?;
    if a.enforce && a.ifaces.is_empty() {
        bail!("--enforce installs rxray's firewall: name the interfaces it may act on with -i");
    }
    let ifaces = if a.ifaces.is_empty() { session::up_interfaces()? } else { a.ifaces.clone() };
    let mut firewalls: Vec<Firewall> = Vec::new();
    if a.enforce {
        fw::check_bpffs()?;
        for i in &ifaces {
            let (f, fresh) = Firewall::open_or_install(i, a.xdp_mode.into(), FwCapacity::default())?;
            if fresh {
                eprintln!("rxray: installed the firewall on {i} (no rules; `rxray firewall off -i {i}` removes it)");
            }
            firewalls.push(f);
        }
    }
    let stop = session::stop_flag()?;
    // Signatures see whole payloads (as Suricata does): when a rule reads packet payloads,
    // packets come from the capture ring, each frame whole up to CAP_SNAP_MAX, not from the
    // event ring's 256-byte prefix (HTTP and TLS rules read the reassembled streams instead).
    let whole = insp.signatures().is_some_and(|s| s.needs_whole_payload());
    let opts = IngressOptions {
        payload_snap: a.snap.min(PAYLOAD_MAX),
        events: !whole,
        flows: false,
        // The flight recorder needs the frames themselves (headers and payload prefix).
        capture: recorder.is_some() || whole,
        capture_snap: if whole { CAP_SNAP_MAX } else { recorder.as_ref().map_or(CAP_SNAP_MAX, |r| r.snap()) },
        // Whole calls of the HTTP ports, both directions (as `rxray http` reads them).
        http_ring_bytes: if http { 16 << 20 } else { 0 },
        ..Default::default()
    };
    let ports = insp.http().map(|h| h.ports().to_vec()).unwrap_or_default();
    let required = a.http.openapi.is_some();
    let (mut ingress, http) = session::attach_then(&ifaces, a.xdp_mode, opts, "alerts", "inspecting", |ing| {
        if !http {
            return Ok(false);
        }
        // Both directions of the HTTP ports, whole up to the body limit (OpenAPI, HTTP rules).
        match ing.enable_http(&ports, HttpConfig::default().body_max as u32) {
            Ok(()) => Ok(true),
            Err(e) if required => Err(anyhow!(e).context("turning on HTTP copies (TC egress) for --openapi")),
            Err(e) => {
                eprintln!("rxray: warning: no HTTP copies ({e}): the rules with HTTP buffers stay idle");
                Ok(false)
            }
        }
    })?;
    let ring = if http { Some(ingress.take_http_ring().context("the HTTP ring is missing from the object")?) } else { None };
    let mut src = LiveSource::new().with_ingress(ingress, !whole, recorder.is_some() || whole)?.with_ticks(Duration::from_millis(100));
    if whole {
        src = src.with_frame_packets();
    }
    let http_ring = ring.map(|ring| HttpRing { ring, ports, clock: *src.clock(), resynced: std::time::Instant::now(), bad: 0 });
    // The kernel's TCP connections feed the exfiltration detector: closed ones as they close, live
    // ones every 5 s.
    if !a.no_conns {
        let netns = rxray_kernel::drops::current_netns_ino()?;
        match rxray_kernel::Conns::attach(&rxray_kernel::ConnsOptions { ring_bytes: 1 << 20, netns_ino: Some(netns) }) {
            Ok(c) => src = src.with_conns(c, Some(Duration::from_secs(5))),
            Err(e) => eprintln!("rxray: no connection summaries (exfiltration detector idle): {e}"),
        }
    }
    let mut l = AlertLoop::new(insp, recorder, out, &mut firewalls, CidrSet::default(), a.count);
    l.http_ring = http_ring;
    l.run(&mut src, &stop)?;
    if let Some(t) = src.ingress().filter(|_| http).and_then(|i| i.http_totals().ok()) {
        if t.records_lost > 0 || t.bytes_not_copied() > 0 {
            eprintln!(
                "rxray: HTTP copies incomplete: {} records lost (ring full), {} bytes not copied; calls may be missing",
                t.records_lost,
                t.bytes_not_copied()
            );
        }
    }
    Ok(())
}

/// Carries out an alert's mitigation on every firewalled interface; the record says what was done.
pub(crate) fn enforce(firewalls: &mut [Firewall], al: &mut Alert) {
    let Some(Mitigation::Taken(act)) = &al.mitigation else { return };
    let mut done = Vec::new();
    let mut failed = 0;
    for f in firewalls.iter_mut() {
        let r = match &act.kind {
            ActionKind::Block { cidr } => f.block(cidr, (act.ttl_s > 0).then_some(act.ttl_s as u64)).map(|id| format!("block {id} on {}", f.iface)),
            ActionKind::RateLimit { dst, pps, burst } => f
                .limit_dst(*dst, *pps as u64, *burst as u64, (act.ttl_s > 0).then_some(act.ttl_s as u64))
                .map(|id| format!("rate limit {id} on {}", f.iface)),
            ActionKind::LimitSrc { .. } => crate::api_limits::enforce(f, &act.kind, act.ttl_s),
        };
        match r {
            Ok(s) => done.push(s),
            Err(e) => {
                failed += 1;
                done.push(format!("failed on {}: {e}", f.iface))
            }
        }
    }
    // The EVE action says `blocked` only when a firewall really took the action.
    al.enforced = done.len() > failed;
    al.evidence.insert("enforced".into(), done.into());
}

#[cfg(test)]
mod tests {
    use super::host_addrs;
    use std::io::{Error, ErrorKind};

    #[test]
    fn enforce_fails_closed_when_the_host_addresses_cannot_be_read() {
        let err = || Err(Error::new(ErrorKind::PermissionDenied, "netlink refused"));
        let e = host_addrs(true, err()).unwrap_err().to_string();
        assert!(e.contains("--enforce") && e.contains("netlink refused"), "{e}");
        // Without --enforce nothing is blocked: it goes on with no list.
        assert!(host_addrs(false, err()).unwrap().is_empty());
        let one = vec!["198.18.0.2".parse().unwrap()];
        assert_eq!(host_addrs(true, Ok(one.clone())).unwrap(), one);
    }
}
