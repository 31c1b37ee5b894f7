//! API health baselines: per endpoint (method + template, as the HTTP view names them), the share of
//! 5xx answers and the p95 latency of each interval, learned as the traffic baselines are
//! (`baseline::Learned`: warm-up, then winsorised EWMAs) and alerting, with the numbers explained,
//! when an interval leaves its baseline. Intervals with too few answers are neither judged nor learned.
use super::baseline::Learned;
use super::state::{hash_of, BoundedMap};
use crate::alert::{Alert, Signature};
use crate::http::endpoints::LatencyHist;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The `[api_health]` table of an API limits file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiHealthConfig {
    /// Length of one interval, in seconds.
    pub interval_s: u64,
    /// Intervals an endpoint's metric learns before it may alert.
    pub warmup_intervals: u32,
    /// EWMA weight of a new interval.
    pub alpha: f64,
    /// Robust z-score that alerts.
    pub z: f64,
    /// The value must also be at least this multiple of the baseline ...
    pub min_ratio: f64,
    /// ... an error share of at least this much (0..1) ...
    pub min_error_rate: f64,
    /// ... or a p95 latency of at least this many milliseconds.
    pub min_p95_ms: f64,
    /// Answers an interval needs to be judged or learned.
    pub min_requests: u64,
    /// Endpoints followed at once.
    pub max_endpoints: usize,
}

impl Default for ApiHealthConfig {
    fn default() -> Self {
        ApiHealthConfig {
            interval_s: 10,
            warmup_intervals: 30,
            alpha: 0.05,
            z: 6.0,
            min_ratio: 2.0,
            min_error_rate: 0.05,
            min_p95_ms: 10.0,
            min_requests: 20,
            max_endpoints: 1024,
        }
    }
}

pub const API_HEALTH: Signature = Signature {
    detector: "api_health",
    sid: 18,
    rev: 1,
    msg: "RXRAY API endpoint error rate or latency far above its learned baseline",
    category: "Misc activity",
    severity: 2,
};

#[derive(Debug, Default, Clone)]
struct Endpoint {
    answers: u64,
    errors: u64,
    latency: LatencyHist,
    server: Option<(IpAddr, u16)>,
    error_rate: Learned,
    p95_ms: Learned,
}

/// The baselines of every endpoint seen.
pub struct ApiHealth {
    cfg: ApiHealthConfig,
    interval_ns: u64,
    cur: u64,
    endpoints: BoundedMap<String, Endpoint>,
}

impl ApiHealth {
    pub fn new(cfg: ApiHealthConfig) -> Self {
        ApiHealth { interval_ns: cfg.interval_s.max(1) * 1_000_000_000, cur: 0, endpoints: BoundedMap::new(cfg.max_endpoints), cfg }
    }

    /// One answered call: `endpoint` is "METHOD template".
    pub fn on_answer(&mut self, endpoint: &str, status: u16, latency_ns: u64, server: (IpAddr, u16), ts_ns: u64, out: &mut Vec<Alert>) {
        self.roll(ts_ns, out);
        let Some(e) = self.endpoints.touch(&endpoint.to_string(), ts_ns, Endpoint::default) else { return };
        e.answers += 1;
        e.errors += u64::from(status >= 500);
        e.latency.add(latency_ns);
        e.server = Some(server);
    }

    /// Event time has reached `now_ns`: intervals that ended are judged.
    pub fn on_tick(&mut self, now_ns: u64, out: &mut Vec<Alert>) {
        self.roll(now_ns, out);
    }

    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    pub fn dropped(&self) -> u64 {
        self.endpoints.dropped
    }

    fn roll(&mut self, now: u64, out: &mut Vec<Alert>) {
        let slot = now / self.interval_ns;
        if slot <= self.cur {
            return;
        }
        if self.cur != 0 {
            // Only the interval that had answers carries any; the empty ones after it are skipped
            // (too few answers to judge).
            let ts = (self.cur + 1) * self.interval_ns;
            for (name, e) in self.endpoints.iter_mut() {
                close(&self.cfg, name, e, ts, out);
            }
            self.endpoints.expire(now, 100 * self.interval_ns);
        }
        self.cur = slot;
    }
}

fn close(cfg: &ApiHealthConfig, name: &str, e: &mut Endpoint, ts: u64, out: &mut Vec<Alert>) {
    let (n, errors) = (e.answers, e.errors);
    let p95 = e.latency.percentile(95.0).unwrap_or(0) as f64 / 1e6;
    e.answers = 0;
    e.errors = 0;
    e.latency = LatencyHist::default();
    if n < cfg.min_requests.max(1) {
        return;
    }
    let rate = errors as f64 / n as f64;
    let alarm = |min: f64, x: f64| move |score: f64, level: f64| score >= cfg.z && x >= cfg.min_ratio * level && x >= min;
    if let Some(score) = e.error_rate.step(rate, cfg.warmup_intervals, cfg.alpha, 0.01, alarm(cfg.min_error_rate, rate)) {
        let level = e.error_rate.level;
        let why = format!(
            "{name} answered {errors} of {n} requests with 5xx ({:.1}%), {:.1}x its baseline of {:.1}% (robust z-score {score:.1} >= {})",
            rate * 100.0,
            rate / level.max(1e-9),
            level * 100.0,
            cfg.z
        );
        out.push(alert(cfg, name, e, ts, "error_rate", rate, level, e.error_rate.dev, score, why).with("requests", n).with("errors", errors));
    }
    if let Some(score) = e.p95_ms.step(p95, cfg.warmup_intervals, cfg.alpha, 1.0, alarm(cfg.min_p95_ms, p95)) {
        let level = e.p95_ms.level;
        let why = format!(
            "{name} p95 latency {p95:.1} ms over {n} requests is {:.1}x its baseline of {level:.1} ms (robust z-score {score:.1} >= {})",
            p95 / level.max(1e-9),
            cfg.z
        );
        out.push(alert(cfg, name, e, ts, "p95_latency_ms", p95, level, e.p95_ms.dev, score, why).with("requests", n));
    }
}

#[allow(clippy::too_many_arguments)]
fn alert(cfg: &ApiHealthConfig, name: &str, e: &Endpoint, ts: u64, metric: &str, x: f64, level: f64, dev: f64, score: f64, why: String) -> Alert {
    let (server, port) = e.server.unwrap_or((IpAddr::from([0u8; 4]), 0));
    let mut a = Alert::new(API_HEALTH, ts, server);
    a.dest_ip = e.server.map(|s| s.0);
    a.dest_port = e.server.map(|s| s.1).filter(|_| port != 0);
    a.proto = Some(6);
    a.topic = hash_of(&(metric, name));
    a.with("endpoint", name)
        .with("metric", metric)
        .with("value", x)
        .with("baseline", level)
        .with("deviation", dev)
        .with("score", score)
        .with("z_threshold", cfg.z)
        .with("min_ratio", cfg.min_ratio)
        .with("interval_s", cfg.interval_s)
        .with("explanation", why)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn cfg() -> ApiHealthConfig {
        ApiHealthConfig { interval_s: 1, warmup_intervals: 5, min_requests: 10, ..Default::default() }
    }

    /// `n` answers per second for `secs` seconds starting at `t0` s, `bad` of them 5xx, each `ms` long.
    fn feed(h: &mut ApiHealth, t0: u64, secs: u64, n: u64, bad: u64, ms: u64, out: &mut Vec<Alert>) {
        let srv = ("198.18.0.1".parse().unwrap(), 80);
        for s in t0..t0 + secs {
            for i in 0..n {
                let status = if i < bad { 503 } else { 200 };
                h.on_answer("GET /api/items/{id}", status, ms * 1_000_000, srv, s * S + i * (S / (n + 1)), out);
            }
        }
    }

    #[test]
    fn an_error_burst_after_the_warm_up_alerts_once_with_its_explanation() {
        let mut h = ApiHealth::new(cfg());
        let mut out = Vec::new();
        // 20 answers/s, 1 of them 5xx: a 5% baseline.
        feed(&mut h, 100, 10, 20, 1, 5, &mut out);
        assert!(out.is_empty(), "{out:?}");
        // 10 of 20 fail in one second.
        feed(&mut h, 110, 1, 20, 10, 5, &mut out);
        h.on_tick(112 * S, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        let a = &out[0];
        assert_eq!(a.sig.detector, "api_health");
        assert_eq!(a.evidence["metric"], "error_rate");
        assert_eq!(a.evidence["errors"], 10);
        assert_eq!(a.evidence["requests"], 20);
        assert_eq!(a.evidence["value"], 0.5);
        assert!((a.evidence["baseline"].as_f64().unwrap() - 0.05).abs() < 1e-9);
        let why = a.evidence["explanation"].as_str().unwrap();
        assert!(why.contains("GET /api/items/{id} answered 10 of 20 requests with 5xx (50.0%)") && why.contains("baseline of 5.0%"), "{why}");
    }

    #[test]
    fn nothing_alerts_during_the_warm_up_or_on_too_few_answers() {
        let mut h = ApiHealth::new(cfg());
        let mut out = Vec::new();
        feed(&mut h, 100, 3, 20, 0, 5, &mut out);
        feed(&mut h, 103, 1, 20, 20, 500, &mut out); // awful, but still warming up
        feed(&mut h, 104, 10, 20, 0, 5, &mut out);
        feed(&mut h, 114, 1, 9, 9, 500, &mut out); // awful, but 9 < min_requests
        h.on_tick(120 * S, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_latency_rise_alerts_on_p95() {
        let mut h = ApiHealth::new(cfg());
        let mut out = Vec::new();
        feed(&mut h, 100, 10, 20, 0, 4, &mut out);
        assert!(out.is_empty());
        feed(&mut h, 110, 1, 20, 0, 200, &mut out);
        h.on_tick(112 * S, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].evidence["metric"], "p95_latency_ms");
        let p95 = out[0].evidence["value"].as_f64().unwrap();
        // The histogram reads a bucket's middle: within 4% of 200 ms.
        assert!((p95 - 200.0).abs() / 200.0 < 0.04, "{p95}");
        assert!(out[0].evidence["explanation"].as_str().unwrap().contains("p95 latency"));
    }
}
