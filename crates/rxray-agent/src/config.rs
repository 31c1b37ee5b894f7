//! The agent's configuration file (TOML): every key documented in docs/agent.md, defaults that
//! work with no file, and errors as `FILE:LINE:COLUMN: what` so a bad reload names its fault.
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use rxray_engine::firewall::rules::line_col;
use toml::Spanned;

/// A configuration error at a place in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The default metrics address (Prometheus' exporter port range; loopback only by default).
pub const DEFAULT_METRICS: &str = "127.0.0.1:9464";
/// The default capture ring for joined `capture` clients, per interface (4 MiB).
pub const DEFAULT_CAPTURE_RING: u32 = 4 << 20;
/// The default HTTP ports observed when the HTTP view is on.
pub const DEFAULT_HTTP_PORTS: [u16; 5] = [80, 8080, 8000, 3000, 5000];

/// The configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// The agent's name in every output (default: the hostname).
    pub host: String,
    /// Interfaces the agent owns (`-i` adds to them).
    pub interfaces: Vec<String>,
    /// Where `/metrics` is served; `None` when off.
    pub metrics: Option<SocketAddr>,
    /// At most this many values per label; the rest are summed into `other` and counted.
    pub label_values: usize,
    /// How often the agent reads the kernel's maps into a snapshot, in milliseconds.
    pub interval_ms: u64,
    pub flows: bool,
    pub flow_capacity: u32,
    pub drops: bool,
    pub conns: bool,
    pub detect: bool,
    pub detect_config: Option<String>,
    /// `default`, `none` or a file.
    pub signatures: String,
    /// API limits (`rxray alerts --api-limits`'s file), checked on the HTTP view's calls.
    pub api_limits: Option<String>,
    pub threat_lists: BTreeMap<String, String>,
    /// A rules file the firewall applies at start and on every reload.
    pub firewall_rules: Option<String>,
    /// Carry out the detectors' mitigations through the firewall.
    pub enforce: bool,
    pub latency: bool,
    pub http: bool,
    pub http_ports: Vec<u16>,
    /// Events queued per joined client before it starts losing (and is told so).
    pub client_queue: usize,
    /// Joined clients at once.
    pub max_clients: usize,
    /// Bytes of each interface's capture ring for joined `capture` clients (0: they attach
    /// themselves); the flight recorder's ring when it is on.
    pub client_capture_ring: u32,
    /// `auto`, `native`, `generic` (or whatever the attach code accepts), checked by the caller.
    pub xdp_mode: String,
    /// Bytes of the packet event ring (a power of two).
    pub ring_size: u32,
    /// The history store's directory; `None` when off.
    pub store_dir: Option<String>,
    /// Rows older than this go (seconds).
    pub store_max_age_s: u64,
    /// The store is cut (oldest flows first) to stay under this many bytes.
    pub store_max_bytes: u64,
    /// Minute counts older than this are summed into hours (seconds).
    pub store_rollup_after_s: u64,
    /// A flow idle this long is written as closed (seconds).
    pub flow_idle_s: u64,
    /// A live flow's counts are written at most this often (seconds); a closing row at once.
    pub flow_period_s: u64,
    /// The flight recorder's directory (pcapng around each alert); `None` when off.
    pub recorder_dir: Option<String>,
    pub recorder_seconds: f64,
}

/// The default store directory.
pub const DEFAULT_STORE: &str = "/var/lib/rxray";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Doc {
    host: Option<Spanned<String>>,
    interfaces: Option<Vec<Spanned<String>>>,
    metrics: Option<MetricsDoc>,
    snapshot: Option<SnapshotDoc>,
    flows: Option<FlowsDoc>,
    drops: Option<Toggle>,
    conns: Option<Toggle>,
    detect: Option<DetectDoc>,
    firewall: Option<FirewallDoc>,
    latency: Option<Toggle>,
    http: Option<HttpDoc>,
    clients: Option<ClientsDoc>,
    xdp: Option<XdpDoc>,
    store: Option<StoreDoc>,
    recorder: Option<RecorderDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreDoc {
    enabled: Option<bool>,
    dir: Option<String>,
    max_age_s: Option<Spanned<i64>>,
    max_bytes: Option<Spanned<i64>>,
    rollup_after_s: Option<Spanned<i64>>,
    flow_idle_s: Option<Spanned<i64>>,
    flow_period_s: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecorderDoc {
    dir: Option<String>,
    seconds: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsDoc {
    listen: Option<Spanned<String>>,
    label_values: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotDoc {
    interval_ms: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Toggle {
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowsDoc {
    enabled: Option<bool>,
    capacity: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectDoc {
    enabled: Option<bool>,
    config: Option<String>,
    signatures: Option<String>,
    api_limits: Option<Spanned<String>>,
    threat_lists: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FirewallDoc {
    rules: Option<String>,
    enforce: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpDoc {
    enabled: Option<bool>,
    ports: Option<Vec<Spanned<i64>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsDoc {
    queue: Option<Spanned<i64>>,
    max: Option<Spanned<i64>>,
    capture_ring: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct XdpDoc {
    mode: Option<Spanned<String>>,
    ring_size: Option<Spanned<i64>>,
}

struct Cx<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Cx<'_> {
    fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.errors.push(ConfigError { file: self.file.to_string(), line, column, message: message.into() });
    }

    /// An integer key within `lo..=hi`, or the default.
    fn int(&mut self, v: Option<Spanned<i64>>, key: &str, lo: i64, hi: i64, default: i64) -> i64 {
        match v {
            None => default,
            Some(s) if (lo..=hi).contains(s.get_ref()) => *s.get_ref(),
            Some(s) => {
                let (span, n) = (s.span(), *s.get_ref());
                self.err(span, format!("{key} = {n} is out of range ({lo}..={hi})"));
                default
            }
        }
    }
}

impl AgentConfig {
    /// The configuration with no file: every default.
    pub fn defaults(hostname: &str) -> AgentConfig {
        AgentConfig::parse("(defaults)", "", hostname).expect("the defaults are valid")
    }

    /// Parses and validates `text` (from `file`, named in errors). Every error found is returned,
    /// each with its line and column; an error yields no configuration.
    pub fn parse(file: &str, text: &str, hostname: &str) -> Result<AgentConfig, Vec<ConfigError>> {
        let mut cx = Cx { file, text, errors: Vec::new() };
        let doc: Doc = match toml::from_str(text) {
            Ok(d) => d,
            Err(e) => {
                cx.err(e.span().unwrap_or(0..0), e.message().trim().to_string());
                return Err(cx.errors);
            }
        };
        let host = match doc.host {
            Some(h) if h.get_ref().trim().is_empty() || h.get_ref().len() > 253 => {
                cx.err(h.span(), "host must be a name of 1 to 253 characters");
                String::new()
            }
            Some(h) => h.into_inner(),
            None => hostname.to_string(),
        };
        let mut interfaces = Vec::new();
        for i in doc.interfaces.unwrap_or_default() {
            let name = i.get_ref();
            if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
                cx.err(i.span(), format!("{name:?} is not an interface name (1 to 15 characters, no '/' or space)"));
            } else if interfaces.contains(name) {
                cx.err(i.span(), format!("interface {name:?} is listed twice"));
            } else {
                interfaces.push(name.clone());
            }
        }
        let (mut metrics, mut label_values) = (Some(DEFAULT_METRICS.parse().expect("valid")), 500);
        if let Some(m) = doc.metrics {
            if let Some(l) = m.listen {
                metrics = parse_listen(l.get_ref()).unwrap_or_else(|e| {
                    cx.err(l.span(), format!("listen = {e}"));
                    None
                });
            }
            label_values = cx.int(m.label_values, "label_values", 1, 100_000, 500) as usize;
        }
        let interval_ms = cx.int(doc.snapshot.and_then(|s| s.interval_ms), "interval_ms", 100, 60_000, 1000) as u64;
        let flows = doc.flows.as_ref().and_then(|f| f.enabled).unwrap_or(true);
        let flow_capacity = cx.int(doc.flows.and_then(|f| f.capacity), "capacity", 1, 1 << 24, 65_536) as u32;
        let d = doc.detect;
        let (detect, detect_config, signatures, api_limits, threat_lists) = match d {
            Some(d) => (d.enabled.unwrap_or(true), d.config, d.signatures.unwrap_or_else(|| "default".into()), d.api_limits, d.threat_lists.unwrap_or_default()),
            None => (true, None, "default".into(), None, BTreeMap::new()),
        };
        let (firewall_rules, enforce) = doc.firewall.map_or((None, false), |f| (f.rules, f.enforce.unwrap_or(false)));
        let (http, mut http_ports) = (doc.http.as_ref().and_then(|h| h.enabled).unwrap_or(false), DEFAULT_HTTP_PORTS.to_vec());
        if let Some(ports) = doc.http.and_then(|h| h.ports) {
            http_ports.clear();
            for p in ports {
                match u16::try_from(*p.get_ref()) {
                    Ok(n) if n > 0 && !http_ports.contains(&n) => http_ports.push(n),
                    Ok(n) if n > 0 => cx.err(p.span(), format!("port {n} is listed twice")),
                    _ => cx.err(p.span(), format!("port {} is not 1..=65535", p.get_ref())),
                }
            }
        }
        // API limits count the HTTP view's requests: without it they would never see one.
        if let Some(l) = &api_limits {
            if !http {
                cx.err(l.span(), "api_limits needs the HTTP view ([http] enabled = true, with the API's ports)");
            }
        }
        let api_limits = api_limits.map(Spanned::into_inner);
        let (mut client_queue, mut max_clients, mut client_capture_ring) = (4096, 16, DEFAULT_CAPTURE_RING);
        if let Some(c) = doc.clients {
            (client_queue, max_clients) = (cx.int(c.queue, "queue", 16, 1 << 20, 4096) as usize, cx.int(c.max, "max", 1, 1024, 16) as usize);
            if let Some(r) = c.capture_ring {
                let n = *r.get_ref();
                if n == 0 || ((4096..=1 << 30).contains(&n) && (n as u64).is_power_of_two()) {
                    client_capture_ring = n as u32;
                } else {
                    cx.err(r.span(), format!("capture_ring = {n}: 0 (off) or a power of two from 4096 to 1073741824 bytes"));
                }
            }
        }
        let (mut xdp_mode, mut ring_size) = ("auto".to_string(), 8u32 << 20);
        if let Some(x) = doc.xdp {
            if let Some(m) = x.mode {
                match m.get_ref().as_str() {
                    "auto" | "native" | "generic" | "tc" => xdp_mode = m.get_ref().clone(),
                    other => cx.err(m.span(), format!("mode = {other:?}: one of auto, native, generic, tc")),
                }
            }
            if let Some(r) = x.ring_size {
                let n = *r.get_ref();
                if (4096..=1 << 30).contains(&n) && (n as u64).is_power_of_two() {
                    ring_size = n as u32;
                } else {
                    cx.err(r.span(), format!("ring_size = {n}: a power of two from 4096 to 1073741824 bytes"));
                }
            }
        }
        let (mut store_dir, mut max_age, mut max_bytes, mut rollup, mut idle, mut period) = (Some(DEFAULT_STORE.to_string()), 7 * 86_400, 1i64 << 30, 86_400, 60, 30);
        if let Some(st) = doc.store {
            if st.enabled == Some(false) {
                store_dir = None;
            } else if let Some(d) = st.dir {
                store_dir = Some(d);
            }
            max_age = cx.int(st.max_age_s, "max_age_s", 60, 10 * 365 * 86_400, max_age);
            max_bytes = cx.int(st.max_bytes, "max_bytes", 1 << 20, 1 << 50, max_bytes);
            rollup = cx.int(st.rollup_after_s, "rollup_after_s", 60, 10 * 365 * 86_400, rollup);
            idle = cx.int(st.flow_idle_s, "flow_idle_s", 1, 86_400, idle);
            period = cx.int(st.flow_period_s, "flow_period_s", 1, 86_400, period);
        }
        let (recorder_dir, recorder_seconds) = match doc.recorder {
            Some(r) => (r.dir, r.seconds.unwrap_or(5.0).clamp(0.0, 600.0)),
            None => (None, 5.0),
        };
        if !cx.errors.is_empty() {
            cx.errors.sort_by_key(|e| (e.line, e.column));
            return Err(cx.errors);
        }
        Ok(AgentConfig {
            host,
            interfaces,
            metrics,
            label_values,
            interval_ms,
            flows,
            flow_capacity,
            drops: doc.drops.and_then(|t| t.enabled).unwrap_or(true),
            conns: doc.conns.and_then(|t| t.enabled).unwrap_or(true),
            detect,
            detect_config,
            signatures,
            api_limits,
            threat_lists,
            firewall_rules,
            enforce,
            latency: doc.latency.and_then(|t| t.enabled).unwrap_or(false),
            http,
            http_ports,
            client_queue,
            max_clients,
            client_capture_ring,
            xdp_mode,
            ring_size,
            store_dir,
            store_max_age_s: max_age as u64,
            store_max_bytes: max_bytes as u64,
            store_rollup_after_s: rollup as u64,
            flow_idle_s: idle as u64,
            flow_period_s: period as u64,
            recorder_dir,
            recorder_seconds,
        })
    }
}

/// A metrics address: `address:port`, or `off` (or empty) for none.
pub fn parse_listen(s: &str) -> Result<Option<SocketAddr>, String> {
    match s.trim() {
        "" | "off" => Ok(None),
        t => t.parse().map(Some).map_err(|_| format!("{t:?} is not an address:port (e.g. \"127.0.0.1:9464\"), or \"off\"")),
    }
}

/// This machine's hostname (the default `host`), or "localhost" when it cannot be read.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(s) if r == 0 && !s.is_empty() => s.to_string(),
        _ => "localhost".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_gives_the_documented_defaults() {
        let c = AgentConfig::defaults("web-1");
        assert_eq!(c.host, "web-1");
        assert!(c.interfaces.is_empty());
        assert_eq!(c.metrics, Some("127.0.0.1:9464".parse().unwrap()));
        assert!(c.flows && c.drops && c.conns && c.detect);
        assert!(!c.enforce && !c.latency && !c.http && c.firewall_rules.is_none());
        assert_eq!(c.signatures, "default");
        assert_eq!(c.http_ports, DEFAULT_HTTP_PORTS);
        assert_eq!((c.xdp_mode.as_str(), c.ring_size, c.interval_ms), ("auto", 8 << 20, 1000));
    }

    #[test]
    fn every_key_is_read() {
        let text = r#"
host = "edge-7"
interfaces = ["veth-b", "eth1"]
[metrics]
listen = "[::1]:9500"
label_values = 50
[snapshot]
interval_ms = 250
[flows]
capacity = 1024
[drops]
enabled = false
[conns]
enabled = false
[detect]
signatures = "none"
config = "/etc/rxray/detect.json"
api_limits = "/etc/rxray/limits.toml"
threat_lists = { tor = "/etc/rxray/tor.netset" }
[firewall]
rules = "/etc/rxray/rules.toml"
enforce = true
[latency]
enabled = true
[http]
enabled = true
ports = [8080, 9000]
[clients]
queue = 64
max = 2
capture_ring = 0
[xdp]
mode = "generic"
ring_size = 65536
"#;
        let c = AgentConfig::parse("a.toml", text, "h").unwrap();
        assert_eq!(c.host, "edge-7");
        assert_eq!(c.interfaces, ["veth-b", "eth1"]);
        assert_eq!(c.metrics, Some("[::1]:9500".parse().unwrap()));
        assert_eq!((c.label_values, c.interval_ms, c.flow_capacity), (50, 250, 1024));
        assert!(!c.drops && !c.conns && c.detect && c.enforce && c.latency && c.http);
        assert_eq!(c.signatures, "none");
        assert_eq!(c.detect_config.as_deref(), Some("/etc/rxray/detect.json"));
        assert_eq!(c.threat_lists["tor"], "/etc/rxray/tor.netset");
        assert_eq!(c.api_limits.as_deref(), Some("/etc/rxray/limits.toml"));
        assert_eq!(c.firewall_rules.as_deref(), Some("/etc/rxray/rules.toml"));
        assert_eq!(c.http_ports, [8080, 9000]);
        assert_eq!((c.client_queue, c.max_clients, c.client_capture_ring), (64, 2, 0));
        assert_eq!(AgentConfig::defaults("h").client_capture_ring, DEFAULT_CAPTURE_RING);
        let e = AgentConfig::parse("a.toml", "[clients]\ncapture_ring = 5000\n", "h").unwrap_err();
        assert_eq!((e[0].line, e[0].column), (2, 16), "{e:?}");
        assert_eq!((c.xdp_mode.as_str(), c.ring_size), ("generic", 65536));
        let off = AgentConfig::parse("a.toml", "[metrics]\nlisten = \"off\"\n", "h").unwrap();
        assert_eq!(off.metrics, None);
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let e = AgentConfig::parse("agent.toml", "host = \"a\"\n[flows]\ncapacty = 5\n", "h").unwrap_err();
        assert_eq!((e[0].file.as_str(), e[0].line, e[0].column), ("agent.toml", 3, 1), "{e:?}");
        assert!(e[0].message.contains("unknown field `capacty`"), "{}", e[0]);
        assert!(e[0].to_string().starts_with("agent.toml:3:1: "), "{}", e[0]);

        let text = "[metrics]\nlisten = \"nowhere\"\n[xdp]\nmode = \"fast\"\nring_size = 5000\n[http]\nports = [80, 0, 80]\n";
        let e = AgentConfig::parse("agent.toml", text, "h").unwrap_err();
        let at: Vec<_> = e.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(at, [(2, 10), (4, 8), (5, 13), (7, 14), (7, 17)], "{e:?}");
        assert!(e[0].message.contains("not an address:port"), "{}", e[0]);

        let e = AgentConfig::parse("agent.toml", "interfaces = [\"a/b\", \"eth1\", \"eth1\"]\n", "h").unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        let e = AgentConfig::parse("agent.toml", "[snapshot]\ninterval_ms = 5\n", "h").unwrap_err();
        assert!(e[0].message.contains("out of range"), "{}", e[0]);
        // API limits without the HTTP view would never see a request.
        let e = AgentConfig::parse("agent.toml", "[detect]\napi_limits = \"l.toml\"\n", "h").unwrap_err();
        assert_eq!((e[0].line, e[0].column), (2, 14), "{e:?}");
        assert!(e[0].message.contains("needs the HTTP view"), "{}", e[0]);
        let e = AgentConfig::parse("agent.toml", "host = [\n", "h").unwrap_err();
        assert_eq!(e[0].file, "agent.toml");
    }

    #[test]
    fn arbitrary_text_never_panics() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let alphabet = b"[]=\"\n #abcdehilmnoprstx0123456789.,{}_-";
        for _ in 0..5000 {
            let n = (seed % 80) as usize;
            let mut s = String::new();
            for _ in 0..n {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push(alphabet[(seed % alphabet.len() as u64) as usize] as char);
            }
            let _ = AgentConfig::parse("f", &s, "h");
        }
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(!hostname().is_empty());
    }
}
