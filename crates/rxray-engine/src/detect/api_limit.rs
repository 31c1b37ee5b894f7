//! API limits (`--api-limits FILE`): request rates per client and endpoint, checked on the HTTP
//! calls the engine reassembles, and the mitigation a client over its limit gets in the kernel.
//!
//! ```toml
//! [[api_limit]]
//! endpoint = "POST /api/orders/{id}"  # method and path; {name} is one path segment; no method: any
//! rate = "20/s"                       # requests per second or minute ("/s", "/m")
//! per = "src"                         # one count per client address, or per prefix: "src/24", "src/24/64"
//! burst = 0                           # requests allowed above the rate at once (default 0, as nginx)
//! action = "ratelimit"                # "ratelimit", "block" or "alert"
//! ttl = "10m"                         # how long the kernel keeps the limit or block
//! kernel_rate = "200/s"               # optional: limit all the client's packets to the port at this rate
//!
//! [api_health]                        # optional: the endpoint baselines (see api_health.rs)
//! interval_s = 10
//! ```
//! The limit is a generic cell rate algorithm on event time (the same arithmetic as the kernel's
//! limits): a request conforms when it comes no earlier than `interval × burst` before its
//! theoretical arrival time, with `interval = period / count`. XDP cannot see endpoints, so what
//! the kernel limits is the client: by default its new TCP connections (SYN without ACK) to the
//! server's port at the same rate and burst; with `kernel_rate`, all its packets to that port.
use super::api_health::{ApiHealth, ApiHealthConfig};
use super::policy::{Action, ActionKind, Mitigation};
use super::state::BoundedMap;
use crate::alert::{Alert, Signature};
use crate::cidr::Cidr;
use crate::firewall::rules::{line_col, parse_duration};
use crate::http::endpoints::template;
use crate::http::Call;
use serde::Deserialize;
use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use toml::Spanned;

pub const API_LIMIT: Signature = Signature {
    detector: "api_limit",
    sid: 17,
    rev: 1,
    msg: "RXRAY API client over its request rate limit on an endpoint",
    category: "Attempted Denial of Service",
    severity: 2,
};

/// A request rate: `count` per `period_s` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u64,
    pub period_s: u64,
}

impl Rate {
    /// "20/s", "600/m".
    pub fn parse(s: &str) -> Result<Rate, String> {
        let (n, unit) = s.split_once('/').ok_or_else(|| format!("{s:?} needs a unit, like \"20/s\" or \"600/m\""))?;
        let period_s = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            other => return Err(format!("unknown time unit {other:?} in {s:?} (s or m)")),
        };
        let count: u64 = n.trim().parse().map_err(|_| format!("{s:?}: {:?} is not a whole number", n.trim()))?;
        if count == 0 || count > 1_000_000 {
            return Err(format!("{s:?}: the count must be between 1 and 1000000"));
        }
        Ok(Rate { count, period_s })
    }

    /// Time between conforming requests, in ns.
    pub fn interval_ns(&self) -> u64 {
        self.period_s * 1_000_000_000 / self.count
    }

    pub fn period_ns(&self) -> u64 {
        self.period_s * 1_000_000_000
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, if self.period_s == 1 { "s" } else { "m" })
    }
}

/// One path segment of an endpoint pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Lit(String),
    /// `{name}`: any one non-empty segment.
    Param,
}

/// An endpoint: an optional method and a path pattern ("POST /api/orders/{id}").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointPattern {
    pub text: String,
    method: Option<String>,
    segs: Vec<Seg>,
}

impl EndpointPattern {
    pub fn parse(s: &str) -> Result<EndpointPattern, String> {
        let t = s.trim();
        let (method, path) = match t.split_once(char::is_whitespace) {
            Some((m, p)) => (Some(m), p.trim()),
            None => (None, t),
        };
        let method = match method {
            None | Some("*") => None,
            Some(m) if m.bytes().all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_') => Some(m.to_string()),
            Some(m) => return Err(format!("{m:?} is not an HTTP method (upper case, like GET or POST)")),
        };
        if !path.starts_with('/') {
            return Err(format!("the path {path:?} must start with '/' (e.g. \"POST /api/orders\")"));
        }
        if path.contains(['?', '#', ' ']) {
            return Err(format!("the path {path:?} must be a path alone (no query, fragment or spaces)"));
        }
        let mut segs = Vec::new();
        for seg in path[1..].split('/') {
            if seg.starts_with('{') && seg.ends_with('}') && seg.len() > 2 {
                segs.push(Seg::Param);
            } else if seg.contains(['{', '}']) {
                return Err(format!("{seg:?}: a parameter is a whole segment, like {{id}}"));
            } else {
                segs.push(Seg::Lit(seg.to_string()));
            }
        }
        Ok(EndpointPattern { text: t.to_string(), method, segs })
    }

    /// Whether a request (method and target) is for this endpoint. The target's query is ignored.
    pub fn matches(&self, method: &str, target: &str) -> bool {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return false;
        }
        let mut path = target;
        if let Some(i) = path.find("://") {
            path = path[i + 3..].find('/').map_or("/", |j| &path[i + 3 + j..]);
        }
        let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
        let Some(rest) = path.strip_prefix('/') else { return false };
        let mut n = 0;
        for (i, seg) in rest.split('/').enumerate() {
            match self.segs.get(i) {
                Some(Seg::Lit(l)) if l == seg => {}
                Some(Seg::Param) if !seg.is_empty() => {}
                _ => return false,
            }
            n += 1;
        }
        n == self.segs.len()
    }
}

/// What a client over its limit gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitAction {
    Alert,
    RateLimit,
    Block,
}

/// One `[[api_limit]]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiLimit {
    /// Line of the entry in its file.
    pub line: usize,
    pub endpoint: EndpointPattern,
    pub rate: Rate,
    /// Prefix lengths a client is counted by (IPv4, IPv6).
    pub per: (u8, u8),
    pub burst: u64,
    pub action: LimitAction,
    pub ttl_s: u32,
    /// The kernel limits every packet of the client to the port at this rate (None: its new connections at `rate`).
    pub kernel_rate: Option<Rate>,
}

/// A whole API limits file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiLimits {
    pub limits: Vec<ApiLimit>,
    pub health: ApiHealthConfig,
}

/// A problem in an API limits file, where it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ApiLimitError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    #[serde(default)]
    api_limit: Vec<Spanned<EntryDoc>>,
    api_health: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryDoc {
    endpoint: Spanned<String>,
    rate: Spanned<String>,
    per: Option<Spanned<String>>,
    burst: Option<Spanned<i64>>,
    action: Option<Spanned<String>>,
    ttl: Option<Spanned<toml::Value>>,
    kernel_rate: Option<Spanned<String>>,
}

/// "src", "src/24" (IPv6 clients then by /64), "src/24/48", or "src/64" (a length above 32 is
/// IPv6's; IPv4 clients are then counted by address).
pub fn parse_per(s: &str) -> Result<(u8, u8), String> {
    let bad = || format!("per must be \"src\", \"src/<len>\" or \"src/<v4 len>/<v6 len>\", not {s:?}");
    if s == "src" {
        return Ok((32, 128));
    }
    let rest = s.strip_prefix("src/").ok_or_else(bad)?;
    let nums: Vec<u8> = rest.split('/').map(|t| t.parse::<u8>().map_err(|_| bad())).collect::<Result<_, _>>()?;
    match nums[..] {
        [n] if n <= 32 => Ok((n, 64)),
        [n] if n <= 128 => Ok((32, n)),
        [a, b] if a <= 32 && b <= 128 => Ok((a, b)),
        _ => Err(bad()),
    }
}

impl ApiLimits {
    /// Parses and checks a file; every problem found comes back with its line and column.
    pub fn parse(file: &str, text: &str) -> Result<ApiLimits, Vec<ApiLimitError>> {
        let err = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            ApiLimitError { file: file.to_string(), line, column, message }
        };
        let doc: Doc = toml::from_str(text).map_err(|e| vec![err(e.span().unwrap_or(0..0), e.message().trim().to_string())])?;
        let mut errors = Vec::new();
        let mut out = ApiLimits::default();
        if let Some(h) = doc.api_health {
            let span = h.span();
            match h.into_inner().try_into::<ApiHealthConfig>() {
                Ok(c) if c.interval_s == 0 || c.interval_s > 86_400 => errors.push(err(span, "api_health.interval_s must be 1 to 86400".into())),
                Ok(c) if !(0.0..=1.0).contains(&c.alpha) => errors.push(err(span, "api_health.alpha must be between 0 and 1".into())),
                Ok(c) => out.health = c,
                Err(e) => errors.push(err(span, format!("api_health: {}", e.message().trim()))),
            }
        }
        for d in doc.api_limit {
            let line = line_col(text, d.span().start).0;
            let d = d.into_inner();
            let mut bad = |span: std::ops::Range<usize>, m: String| errors.push(err(span, m));
            let endpoint = EndpointPattern::parse(d.endpoint.get_ref()).map_err(|m| bad(d.endpoint.span(), m));
            let rate = Rate::parse(d.rate.get_ref()).map_err(|m| bad(d.rate.span(), m));
            let per = match &d.per {
                None => Ok((32, 128)),
                Some(p) => parse_per(p.get_ref()).map_err(|m| bad(p.span(), m)),
            };
            let burst = match &d.burst {
                None => Ok(0),
                Some(b) if (0..=1_000_000).contains(b.get_ref()) => Ok(*b.get_ref() as u64),
                Some(b) => Err(bad(b.span(), format!("burst must be 0 to 1000000, not {}", b.get_ref()))),
            };
            let action = match d.action.as_ref().map(|a| (a.get_ref().as_str(), a.span())) {
                None | Some(("ratelimit", _)) => Ok(LimitAction::RateLimit),
                Some(("block", _)) => Ok(LimitAction::Block),
                Some(("alert", _)) => Ok(LimitAction::Alert),
                Some((o, span)) => Err(bad(span, format!("action must be \"ratelimit\", \"block\" or \"alert\", not {o:?}"))),
            };
            let ttl = match &d.ttl {
                None => Ok(600),
                Some(t) => {
                    let v = match t.get_ref() {
                        toml::Value::String(s) => parse_duration(s),
                        toml::Value::Integer(n) if *n > 0 => Ok(*n as u64),
                        _ => Err("ttl must be a duration like \"10m\" or a number of seconds".to_string()),
                    };
                    match v {
                        Ok(s) if s <= 30 * 86_400 => Ok(s as u32),
                        Ok(_) => Err(bad(t.span(), "ttl must be at most 30 days".into())),
                        Err(m) => Err(bad(t.span(), m)),
                    }
                }
            };
            let kernel_rate = match &d.kernel_rate {
                None => Ok(None),
                Some(k) => Rate::parse(k.get_ref()).map(Some).map_err(|m| bad(k.span(), m)),
            };
            if let (Ok(endpoint), Ok(rate), Ok(per), Ok(burst), Ok(action), Ok(ttl_s), Ok(kernel_rate)) =
                (endpoint, rate, per, burst, action, ttl, kernel_rate)
            {
                out.limits.push(ApiLimit { line, endpoint, rate, per, burst, action, ttl_s, kernel_rate });
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

/// Generic cell rate algorithm: whether a request at `now` conforms (then `tat` advances).
pub fn gcra(tat: &mut u64, now: u64, interval: u64, tolerance: u64) -> bool {
    let t = (*tat).max(now);
    if t - now > tolerance {
        return false;
    }
    *tat = t + interval;
    true
}

#[derive(Debug, Default, Clone)]
struct Client {
    tat: u64,
    /// Times of the latest requests (within one period, capped).
    recent: VecDeque<u64>,
    over: u64,
}

/// The API side of the alert pipeline: the limits and the endpoint baselines, fed whole calls.
pub struct ApiGuard {
    limits: Vec<ApiLimit>,
    clients: BoundedMap<(u16, IpAddr), Client>,
    health: ApiHealth,
    tmpl: String,
    /// Requests that matched at least one limit, and those over one.
    pub matched: u64,
    pub over: u64,
}

/// Requests kept per client to count the observed rate (the count saturates here).
const RECENT_MAX: usize = 100_000;

impl ApiGuard {
    pub fn new(cfg: ApiLimits) -> ApiGuard {
        ApiGuard { limits: cfg.limits, clients: BoundedMap::new(65_536), health: ApiHealth::new(cfg.health), tmpl: String::new(), matched: 0, over: 0 }
    }

    pub fn limits(&self) -> &[ApiLimit] {
        &self.limits
    }

    /// One call from the HTTP side: a request alone (counted against the limits) or a request
    /// with its answer (for the endpoint baselines).
    pub fn on_call(&mut self, c: &Call, out: &mut Vec<Alert>) {
        let Some((method, target)) = request_line(&c.request.head) else { return };
        if c.is_request_only() {
            self.on_request(method, target, c, out);
            return;
        }
        template(target, &mut self.tmpl);
        let name = format!("{method} {}", self.tmpl);
        self.health.on_answer(&name, c.status, c.latency_ns, (c.conn.server, c.conn.server_port), c.ts_ns + c.latency_ns, out);
    }

    pub fn on_tick(&mut self, now_ns: u64, out: &mut Vec<Alert>) {
        self.health.on_tick(now_ns, out);
        self.clients.expire(now_ns, 600 * 1_000_000_000);
    }

    fn on_request(&mut self, method: &str, target: &str, c: &Call, out: &mut Vec<Alert>) {
        let now = c.ts_ns;
        let mut hit = false;
        for (i, l) in self.limits.iter().enumerate() {
            if !l.endpoint.matches(method, target) {
                continue;
            }
            hit = true;
            let len = if c.client.is_ipv4() { l.per.0 } else { l.per.1 };
            let Some(prefix) = Cidr::new(c.client, len) else { continue };
            let Some(st) = self.clients.touch(&(i as u16, prefix.addr()), now, Client::default) else { continue };
            let period = l.rate.period_ns();
            while st.recent.front().is_some_and(|t| now.saturating_sub(*t) >= period) {
                st.recent.pop_front();
            }
            if st.recent.len() < RECENT_MAX {
                st.recent.push_back(now);
            }
            let iv = l.rate.interval_ns();
            if gcra(&mut st.tat, now, iv, iv * l.burst) {
                continue;
            }
            st.over += 1;
            self.over += 1;
            out.push(limit_alert(i, l, c, method, target, prefix, st.recent.len() as u64, st.over));
        }
        self.matched += u64::from(hit);
    }

    /// Endpoints with baselines, and those refused because the table was full.
    pub fn health_state(&self) -> (usize, u64) {
        (self.health.len(), self.health.dropped())
    }
}

/// Method and target of a request head.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut it = line.split(' ');
    Some((it.next()?, it.next()?))
}

#[allow(clippy::too_many_arguments)]
fn limit_alert(i: usize, l: &ApiLimit, c: &Call, method: &str, target: &str, prefix: Cidr, in_period: u64, over: u64) -> Alert {
    let unit = if l.rate.period_s == 1 { "s" } else { "min" };
    let observed = format!("{in_period}/{}", if l.rate.period_s == 1 { "s" } else { "m" });
    let why = format!(
        "{prefix} sent {in_period} requests to {} in the last {unit} ({method} {target}): over the limit of {} (burst {}), {over} over it so far",
        l.endpoint.text, l.rate, l.burst
    );
    let mut a = Alert::new(API_LIMIT, c.ts_ns, c.client);
    a.src_ip = Some(c.client);
    a.src_port = Some(c.conn.client_port);
    a.dest_ip = Some(c.conn.server);
    a.dest_port = Some(c.conn.server_port);
    a.proto = Some(6);
    a.topic = i as u64 + 1;
    a.offender = Some(c.client);
    let reason = format!("API limit {} {} (file line {}): {prefix} at {observed}", l.endpoint.text, l.rate, l.line);
    a.mitigation = Some(match l.action {
        LimitAction::Alert => Mitigation::None { reason: format!("{reason}; the limit's action is alert only") },
        LimitAction::Block => Mitigation::Taken(Action { kind: ActionKind::Block { cidr: prefix }, ttl_s: l.ttl_s, reason, alert_id: 0 }),
        LimitAction::RateLimit => {
            let k = l.kernel_rate.unwrap_or(l.rate);
            let kind = ActionKind::LimitSrc {
                cidr: prefix,
                dport: Some(c.conn.server_port),
                syn_only: l.kernel_rate.is_none(),
                interval_ns: k.interval_ns(),
                burst: l.burst,
                rate: k.to_string(),
            };
            Mitigation::Taken(Action { kind, ttl_s: l.ttl_s, reason, alert_id: 0 })
        }
    });
    a.with("endpoint", l.endpoint.text.clone())
        .with("request", format!("{method} {target}"))
        .with("client", prefix.to_string())
        .with("limit", l.rate.to_string())
        .with("burst", l.burst)
        .with("observed_rate", observed)
        .with("requests_in_period", in_period)
        .with("over_limit", over)
        .with("explanation", why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{exchange::Message, ConnKey};

    const MS: u64 = 1_000_000;

    fn call(client: &str, method: &str, target: &str, ts_ns: u64) -> Call {
        let client: IpAddr = client.parse().unwrap();
        let server: IpAddr = "198.18.0.1".parse().unwrap();
        Call {
            client,
            conn: ConnKey { client, client_port: 40000, server, server_port: 80 },
            ts_ns,
            request: Message { head: format!("{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(), ..Default::default() },
            status: 0,
            response: Message::default(),
            latency_ns: 0,
        }
    }

    fn guard(toml: &str) -> ApiGuard {
        ApiGuard::new(ApiLimits::parse("t.toml", toml).unwrap())
    }

    #[test]
    fn rates_and_endpoints_parse() {
        assert_eq!(Rate::parse("20/s").unwrap().interval_ns(), 50 * MS);
        assert_eq!(Rate::parse("30/m").unwrap().interval_ns(), 2_000 * MS);
        assert!(Rate::parse("0/s").is_err() && Rate::parse("5/h").is_err() && Rate::parse("5").is_err());
        let e = EndpointPattern::parse("POST /api/orders/{id}").unwrap();
        assert!(e.matches("POST", "/api/orders/17?x=1"));
        assert!(e.matches("POST", "http://h/api/orders/abc"));
        assert!(!e.matches("GET", "/api/orders/17"));
        assert!(!e.matches("POST", "/api/orders"));
        assert!(!e.matches("POST", "/api/orders/"));
        assert!(!e.matches("POST", "/api/orders/17/items"));
        let any = EndpointPattern::parse("/api/orders").unwrap();
        assert!(any.matches("GET", "/api/orders") && any.matches("DELETE", "/api/orders?a"));
        assert!(EndpointPattern::parse("post /x").is_err() && EndpointPattern::parse("GET x").is_err());
        assert_eq!(parse_per("src").unwrap(), (32, 128));
        assert_eq!(parse_per("src/24").unwrap(), (24, 64));
        assert_eq!(parse_per("src/64").unwrap(), (32, 64));
        assert_eq!(parse_per("src/24/48").unwrap(), (24, 48));
        assert!(parse_per("dst").is_err() && parse_per("src/33/200").is_err());
    }

    #[test]
    fn gcra_allows_exactly_the_rate_plus_the_burst() {
        // 20/s, burst 0: one request per 50 ms; a request 1 ns early is refused.
        let (mut tat, iv) = (0, 50 * MS);
        assert!(gcra(&mut tat, 1000 * MS, iv, 0));
        assert!(!gcra(&mut tat, 1050 * MS - 1, iv, 0));
        assert!(gcra(&mut tat, 1050 * MS, iv, 0));
        // burst 3: 4 at once, then one per interval.
        let mut tat = 0;
        let at_once = (0..10).filter(|_| gcra(&mut tat, 5000 * MS, iv, 3 * iv)).count();
        assert_eq!(at_once, 4);
        assert!(gcra(&mut tat, 5050 * MS, iv, 3 * iv));
        assert!(!gcra(&mut tat, 5050 * MS, iv, 3 * iv));
    }

    #[test]
    fn one_client_over_its_limit_alerts_and_the_others_do_not() {
        let mut g = guard("[[api_limit]]\nendpoint = \"POST /api/orders\"\nrate = \"10/s\"\nburst = 2\naction = \"ratelimit\"\nttl = \"5m\"\n");
        let mut out = Vec::new();
        // 198.18.0.2: 30 requests in one second (every 1/30 s); 198.18.0.3: 10 (every 100 ms);
        // 198.18.0.4: 30 to another endpoint.
        let t0 = 1_000_000 * 1_000_000_000u64;
        for i in 0..30u64 {
            g.on_call(&call("198.18.0.2", "POST", "/api/orders", t0 + i * 1_000_000_000 / 30), &mut out);
            g.on_call(&call("198.18.0.4", "POST", "/api/other", t0 + i * 1_000_000_000 / 30), &mut out);
        }
        for i in 0..10u64 {
            g.on_call(&call("198.18.0.3", "POST", "/api/orders?x", t0 + i * 100 * MS), &mut out);
        }
        // Expected from the arithmetic: request k (at k/30 s) conforms when k/30 s >= tat - 200 ms.
        let mut tat = 0;
        let refused = (0..30u64).filter(|k| !gcra(&mut tat, t0 + k * 1_000_000_000 / 30, 100 * MS, 200 * MS)).count();
        assert_eq!(out.len(), refused);
        assert!(refused > 15, "{refused}");
        assert!(out.iter().all(|a| a.src_ip == Some("198.18.0.2".parse().unwrap())));
        let first = &out[0];
        assert_eq!(first.sig.detector, "api_limit");
        assert_eq!(first.evidence["endpoint"], "POST /api/orders");
        assert_eq!(first.evidence["limit"], "10/s");
        assert_eq!(first.evidence["client"], "198.18.0.2/32");
        // The first refusal: the 4th request (3 conform with burst 2 ... at 0, 33 and 67 ms, the
        // 4th at 100 ms has tat 300 ms: 200 ms early, conforms; the 5th at 133 ms is refused).
        assert_eq!(first.evidence["requests_in_period"], 5);
        match &first.mitigation {
            Some(Mitigation::Taken(Action { kind: ActionKind::LimitSrc { cidr, dport, syn_only, interval_ns, burst, .. }, ttl_s, .. })) => {
                assert_eq!(cidr.to_string(), "198.18.0.2/32");
                assert_eq!((*dport, *syn_only, *interval_ns, *burst, *ttl_s), (Some(80), true, 100 * MS, 2, 300));
            }
            m => panic!("{m:?}"),
        }
        assert_eq!(g.over, refused as u64);
    }

    #[test]
    fn a_prefix_counts_its_clients_together_and_block_blocks_the_prefix() {
        let mut g = guard("[[api_limit]]\nendpoint = \"GET /api/items/{id}\"\nrate = \"60/m\"\nper = \"src/24\"\naction = \"block\"\n");
        let mut out = Vec::new();
        let t0 = 2_000_000 * 1_000_000_000u64;
        // Two addresses of one /24, 600 ms apart in turn: the /24 sends one every 600 ms (limit: one a second).
        g.on_call(&call("198.18.5.1", "GET", "/api/items/1", t0), &mut out);
        g.on_call(&call("198.18.5.2", "GET", "/api/items/2", t0 + 600 * MS), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].evidence["client"], "198.18.5.0/24");
        assert!(matches!(&out[0].mitigation, Some(Mitigation::Taken(Action { kind: ActionKind::Block { cidr }, ttl_s: 600, .. })) if cidr.to_string() == "198.18.5.0/24"));
        // /api/items (no id) is another endpoint.
        g.on_call(&call("198.18.5.3", "GET", "/api/items", t0 + 700 * MS), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn bad_files_say_where() {
        let text = "[[api_limit]]\nendpoint = \"POST /api/orders\"\nrate = \"20/h\"\n\n[[api_limit]]\nendpoint = \"POST api\"\nrate = \"5/s\"\nper = \"dst\"\n";
        let errs = ApiLimits::parse("limits.toml", text).unwrap_err();
        let s: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(s.len(), 3, "{s:?}");
        assert!(s[0].starts_with("limits.toml:3:8: unknown time unit \"h\""), "{s:?}");
        assert!(s[1].starts_with("limits.toml:6:12: the path \"api\""), "{s:?}");
        assert!(s[2].starts_with("limits.toml:8:7: per must be"), "{s:?}");
        let e = ApiLimits::parse("l.toml", "[[api_limit]]\nendpoint = \"/x\"\nrate = \"1/s\"\nrat = 3\n").unwrap_err();
        assert!(e[0].to_string().starts_with("l.toml:4:1: unknown field `rat`"), "{e:?}");
        let e = ApiLimits::parse("l.toml", "[[api_limit]]\nendpoint = \"/x\"\n").unwrap_err();
        assert!(e[0].to_string().contains("missing field `rate`"), "{e:?}");
        let e = ApiLimits::parse("l.toml", "[api_health]\ninterval_s = \"x\"\n").unwrap_err();
        assert!(e[0].to_string().starts_with("l.toml:1:1: api_health:"), "{e:?}");
    }
}
