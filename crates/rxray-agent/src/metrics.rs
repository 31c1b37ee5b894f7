//! Prometheus metrics from the agent's snapshot: families built afresh at every scrape (the kernel's
//! counters are absolute totals, so nothing is incremented here), written in the classic text
//! format 0.0.4 by the `prometheus` crate. Every label's values are capped; the rest are summed
//! into `other` and counted, so cardinality stays bounded whatever the traffic.
use prometheus::proto::{Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::Encoder;
use std::collections::BTreeMap;

/// The content type of what `render` writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One latency histogram: cumulative counts at upper bounds in seconds (the last is +Inf).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hist {
    /// (upper bound in seconds, cumulative count), ascending; +Inf is added from `count`.
    pub buckets: Vec<(f64, u64)>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl Hist {
    /// A kernel latency histogram (log2 buckets, ns) at the upper bounds `bounds_s` (seconds): each
    /// count is of the values whose kernel bucket lies wholly at or below the bound.
    pub fn of(h: &rxray_engine::latency::Histogram, bounds_s: &[f64]) -> Hist {
        let bounds_ns: Vec<u64> = bounds_s.iter().map(|b| (b * 1e9) as u64).collect();
        Hist { buckets: bounds_s.iter().copied().zip(h.cumulative(&bounds_ns)).collect(), sum_seconds: h.sum_ns as f64 / 1e9, count: h.count }
    }
}

/// Upper bounds of the latency and RTT histograms, in seconds (10 µs to 10 s).
pub const LATENCY_BOUNDS_S: [f64; 13] = [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 1.0, 10.0];

/// The TCP connections of the agent's namespace, as its tracepoints saw them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnMetrics {
    /// Connections that entered the kernel's table (opened while the agent ran).
    pub opened: u64,
    /// Connections that closed.
    pub closed: u64,
    /// Closed connections that ended with a reset, by who sent it (`local`, `peer`, `both`).
    pub resets: BTreeMap<String, u64>,
    /// Resets sent with no connection (to closed ports, from TIME_WAIT).
    pub resets_no_socket: u64,
    /// Smoothed RTT at close, of closed connections that measured one.
    pub rtt: Hist,
    /// SYN to ESTABLISHED, of closed connections whose handshake the agent saw.
    pub handshake: Hist,
}

/// What the agent knows at one moment, as the metrics show it. Counts are totals since the agent
/// (or the kernel state it adopted) started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub host: String,
    /// Per interface: packets and bytes seen.
    pub interfaces: BTreeMap<String, (u64, u64)>,
    /// Per protocol name (ipv4_tcp, arp, ...): packets.
    pub protocols: BTreeMap<String, u64>,
    /// Per kernel drop reason: drops.
    pub drops: BTreeMap<String, u64>,
    /// Events the rings could not take (packets, drops, connections).
    pub events_lost: u64,
    /// Packets not counted in a flow because the table was full.
    pub flow_inserts_failed: u64,
    /// Samples (latency stamps, payload chunks) that could not be kept.
    pub samples_dropped: u64,
    pub flows_live: u64,
    pub flow_capacity: u64,
    /// Per firewall rule (its name or id): packets it decided.
    pub firewall_rules: BTreeMap<String, u64>,
    /// Per detector: alerts raised.
    pub alerts: BTreeMap<String, u64>,
    /// Per latency stage (`queued`, `read`): a histogram.
    pub latency: BTreeMap<String, Hist>,
    /// Per (method, template, status class): requests.
    pub http_requests: BTreeMap<(String, String, String), u64>,
    /// Per (method, template): request durations.
    pub http_duration: BTreeMap<(String, String), Hist>,
    /// With `[conns] enabled`: the namespace's TCP connections.
    pub conns: Option<ConnMetrics>,
}

/// The window a scrape covers (since the previous scrape): what was lost in it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    pub seconds: f64,
    pub events_lost: u64,
    pub flow_inserts_failed: u64,
    pub samples_dropped: u64,
}

impl Window {
    /// The window between two snapshots taken `seconds` apart.
    pub fn between(prev: &Snapshot, now: &Snapshot, seconds: f64) -> Window {
        Window {
            seconds,
            events_lost: now.events_lost.saturating_sub(prev.events_lost),
            flow_inserts_failed: now.flow_inserts_failed.saturating_sub(prev.flow_inserts_failed),
            samples_dropped: now.samples_dropped.saturating_sub(prev.samples_dropped),
        }
    }
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_string());
    l.set_value(value.to_string());
    l
}

/// Builds families; `cap` bounds the values of every label, `folded` counts what was folded.
struct Families {
    host: String,
    cap: usize,
    out: Vec<MetricFamily>,
    folded: BTreeMap<String, u64>,
}

impl Families {
    /// A family; one with no series is left out (the format has no empty families).
    fn family(&mut self, name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) {
        if metrics.is_empty() {
            return;
        }
        let mut f = MetricFamily::default();
        f.set_name(name.to_string());
        f.set_help(help.to_string());
        f.set_field_type(kind);
        for mut m in metrics {
            let mut labels = vec![label("host", &self.host)];
            labels.extend(m.take_label());
            m.set_label(labels);
            f.mut_metric().push(m);
        }
        self.out.push(f);
    }

    fn scalar(&mut self, name: &str, help: &str, kind: MetricType, v: f64) {
        self.family(name, help, kind, vec![value_metric(kind, v, vec![])]);
    }

    /// A family with one label set per key; past `cap` keys (by value, largest kept), the rest
    /// are summed into one series whose labels are all `other`.
    fn labelled<K: Ord + Clone>(&mut self, name: &str, help: &str, kind: MetricType, names: &[&str], rows: &BTreeMap<K, u64>, values: impl Fn(&K) -> Vec<String>) {
        let mut v: Vec<(&K, u64)> = rows.iter().map(|(k, n)| (k, *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let mut metrics = Vec::new();
        let mut other = None;
        for (i, (k, n)) in v.into_iter().enumerate() {
            if i < self.cap {
                let labels = names.iter().zip(values(k)).map(|(l, v)| label(l, &v)).collect();
                metrics.push(value_metric(kind, n as f64, labels));
            } else {
                *other.get_or_insert(0u64) += n;
                *self.folded.entry(name.to_string()).or_default() += 1;
            }
        }
        if let Some(n) = other {
            metrics.push(value_metric(kind, n as f64, names.iter().map(|l| label(l, "other")).collect()));
        }
        self.family(name, help, kind, metrics);
    }

    fn histograms<K: Ord>(&mut self, name: &str, help: &str, names: &[&str], rows: &BTreeMap<K, Hist>, values: impl Fn(&K) -> Vec<String>) {
        let mut metrics = Vec::new();
        let mut other: Option<Hist> = None;
        let mut v: Vec<(&K, &Hist)> = rows.iter().collect();
        v.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        for (i, (k, h)) in v.into_iter().enumerate() {
            if i < self.cap {
                metrics.push(hist_metric(h, names.iter().zip(values(k)).map(|(l, v)| label(l, &v)).collect()));
            } else {
                let o = other.get_or_insert_with(|| Hist { buckets: h.buckets.iter().map(|(le, _)| (*le, 0)).collect(), ..Default::default() });
                // Folding needs the same bounds; the agent uses one set per family.
                for (ob, b) in o.buckets.iter_mut().zip(&h.buckets) {
                    ob.1 += b.1;
                }
                o.sum_seconds += h.sum_seconds;
                o.count += h.count;
                *self.folded.entry(name.to_string()).or_default() += 1;
            }
        }
        if let Some(o) = other {
            metrics.push(hist_metric(&o, names.iter().map(|l| label(l, "other")).collect()));
        }
        self.family(name, help, MetricType::HISTOGRAM, metrics);
    }
}

fn value_metric(kind: MetricType, v: f64, labels: Vec<LabelPair>) -> Metric {
    let mut m = Metric::default();
    m.set_label(labels);
    match kind {
        MetricType::COUNTER => {
            let mut c = Counter::default();
            c.set_value(v);
            m.set_counter(c);
        }
        _ => {
            let mut g = Gauge::default();
            g.set_value(v);
            m.set_gauge(g);
        }
    }
    m
}

fn hist_metric(h: &Hist, labels: Vec<LabelPair>) -> Metric {
    let mut m = Metric::default();
    m.set_label(labels);
    let mut p = Histogram::default();
    p.set_sample_count(h.count);
    p.set_sample_sum(h.sum_seconds);
    p.set_bucket(
        h.buckets
            .iter()
            .map(|(le, n)| {
                let mut b = Bucket::default();
                b.set_upper_bound(*le);
                b.set_cumulative_count(*n);
                b
            })
            .collect(),
    );
    m.set_histogram(p);
    m
}

/// The families of `s` (each label capped at `cap` values), with the window's completeness.
pub fn families(s: &Snapshot, w: &Window, cap: usize) -> Vec<MetricFamily> {
    use MetricType::{COUNTER, GAUGE};
    let mut f = Families { host: s.host.clone(), cap: cap.max(1), out: Vec::new(), folded: BTreeMap::new() };
    let ifaces_p: BTreeMap<String, u64> = s.interfaces.iter().map(|(k, v)| (k.clone(), v.0)).collect();
    let ifaces_b: BTreeMap<String, u64> = s.interfaces.iter().map(|(k, v)| (k.clone(), v.1)).collect();
    f.labelled("rxray_interface_packets_total", "Packets that arrived on the interface, counted by rxray's program.", COUNTER, &["interface"], &ifaces_p, |k| vec![k.clone()]);
    f.labelled("rxray_interface_bytes_total", "Bytes that arrived on the interface (frame lengths).", COUNTER, &["interface"], &ifaces_b, |k| vec![k.clone()]);
    f.labelled("rxray_protocol_packets_total", "Packets per protocol (ipv4_tcp, ipv6_udp, arp, malformed, ...).", COUNTER, &["protocol"], &s.protocols, |k| vec![k.clone()]);
    f.labelled("rxray_drops_total", "Packets the kernel dropped in this network namespace, by its drop reason.", COUNTER, &["reason"], &s.drops, |k| vec![k.clone()]);
    f.scalar("rxray_events_lost_total", "Events the ring buffers could not take (the counts in maps stay exact).", COUNTER, s.events_lost as f64);
    f.scalar("rxray_flow_inserts_failed_total", "Packets not counted in a flow because the flow table was full.", COUNTER, s.flow_inserts_failed as f64);
    f.scalar("rxray_samples_dropped_total", "Samples (latency stamps, payload chunks) that could not be kept.", COUNTER, s.samples_dropped as f64);
    let fill = if s.flow_capacity > 0 { s.flows_live as f64 / s.flow_capacity as f64 } else { 0.0 };
    f.scalar("rxray_flow_table_fill_ratio", "Live flows over the flow table's capacity.", GAUGE, fill);
    f.labelled("rxray_firewall_rule_packets_total", "Packets each firewall rule decided (dropped, or passed for allow rules).", COUNTER, &["rule"], &s.firewall_rules, |k| vec![k.clone()]);
    f.labelled("rxray_alerts_total", "Alerts raised, by detector.", COUNTER, &["detector"], &s.alerts, |k| vec![k.clone()]);
    f.histograms("rxray_delivery_latency_seconds", "Delivery latency from XDP arrival, per stage (queued: to the socket queue; read: to the application's read).", &["stage"], &s.latency, |k| vec![k.clone()]);
    if let Some(c) = &s.conns {
        f.scalar("rxray_connections_opened_total", "TCP connections opened in this network namespace (seen by rxray's tracepoints).", COUNTER, c.opened as f64);
        f.scalar("rxray_connections_closed_total", "TCP connections closed in this network namespace.", COUNTER, c.closed as f64);
        f.labelled("rxray_connection_resets_total", "Closed TCP connections that ended with a reset, by who sent it (local, peer, both).", COUNTER, &["by"], &c.resets, |k| vec![k.clone()]);
        f.scalar("rxray_tcp_resets_no_socket_total", "TCP resets sent with no connection (to closed ports, from TIME_WAIT).", COUNTER, c.resets_no_socket as f64);
        let one = |h: &Hist| BTreeMap::from([(String::new(), h.clone())]);
        f.histograms("rxray_connection_rtt_seconds", "Smoothed RTT of each closed TCP connection at its close.", &[], &one(&c.rtt), |_| vec![]);
        f.histograms("rxray_connection_handshake_seconds", "SYN to ESTABLISHED of each closed TCP connection whose handshake was seen.", &[], &one(&c.handshake), |_| vec![]);
    }
    if !s.http_requests.is_empty() || !s.http_duration.is_empty() {
        f.labelled("rxray_http_requests_total", "HTTP requests seen on the wire, by endpoint and status class.", COUNTER, &["method", "template", "status_class"], &s.http_requests, |k| vec![k.0.clone(), k.1.clone(), k.2.clone()]);
        f.histograms("rxray_http_request_duration_seconds", "From the first request byte to the first response byte, on kernel time.", &["method", "template"], &s.http_duration, |k| vec![k.0.clone(), k.1.clone()]);
    }
    f.scalar("rxray_window_seconds", "The window this scrape covers: seconds since the previous scrape.", GAUGE, w.seconds);
    f.scalar("rxray_window_events_lost", "Events lost within this scrape's window (0: the window is complete).", GAUGE, w.events_lost as f64);
    f.scalar("rxray_window_flow_inserts_failed", "Flow inserts that failed within this scrape's window.", GAUGE, w.flow_inserts_failed as f64);
    f.scalar("rxray_window_samples_dropped", "Samples dropped within this scrape's window.", GAUGE, w.samples_dropped as f64);
    let folded = std::mem::take(&mut f.folded);
    f.labelled("rxray_metrics_series_folded", "Label values beyond the cap, summed into the family's `other` series.", GAUGE, &["family"], &folded, |k| vec![k.clone()]);
    f.out
}

/// The text exposition (format 0.0.4) of `s`.
pub fn render(s: &Snapshot, w: &Window, cap: usize) -> String {
    let mut buf = Vec::new();
    prometheus::TextEncoder::new().encode(&families(s, w, cap), &mut buf).expect("writing to a Vec cannot fail");
    String::from_utf8(buf).expect("the encoder writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        let mut s = Snapshot { host: "h1".into(), events_lost: 7, flows_live: 10, flow_capacity: 40, ..Default::default() };
        s.interfaces.insert("veth-b".into(), (100, 6400));
        s.drops.insert("NO_SOCKET".into(), 3);
        s.latency.insert("read".into(), Hist { buckets: vec![(0.001, 2), (0.01, 5)], sum_seconds: 0.02, count: 6 });
        s
    }

    #[test]
    fn the_text_format_has_every_family_with_the_host() {
        let t = render(&snap(), &Window { seconds: 1.0, events_lost: 2, ..Default::default() }, 10);
        assert!(t.contains("# TYPE rxray_interface_packets_total counter"), "{t}");
        assert!(t.contains("rxray_interface_packets_total{host=\"h1\",interface=\"veth-b\"} 100"), "{t}");
        assert!(t.contains("rxray_interface_bytes_total{host=\"h1\",interface=\"veth-b\"} 6400"), "{t}");
        assert!(t.contains("rxray_drops_total{host=\"h1\",reason=\"NO_SOCKET\"} 3"), "{t}");
        assert!(t.contains("rxray_events_lost_total{host=\"h1\"} 7"), "{t}");
        assert!(t.contains("rxray_flow_table_fill_ratio{host=\"h1\"} 0.25"), "{t}");
        assert!(t.contains("rxray_window_events_lost{host=\"h1\"} 2"), "{t}");
        assert!(t.contains("rxray_delivery_latency_seconds_bucket{host=\"h1\",stage=\"read\",le=\"0.01\"} 5"), "{t}");
        assert!(t.contains("rxray_delivery_latency_seconds_bucket{host=\"h1\",stage=\"read\",le=\"+Inf\"} 6"), "{t}");
        // No HTTP families until the HTTP view is on.
        assert!(!t.contains("rxray_http"), "{t}");
    }

    #[test]
    fn labels_past_the_cap_fold_into_other_and_are_counted() {
        let mut s = snap();
        for i in 0..10u64 {
            s.alerts.insert(format!("d{i}"), 100 - i);
        }
        let t = render(&s, &Window::default(), 3);
        for kept in ["d0", "d1", "d2"] {
            assert!(t.contains(&format!("rxray_alerts_total{{host=\"h1\",detector=\"{kept}\"}}")), "{t}");
        }
        assert!(!t.contains("detector=\"d3\""), "{t}");
        // 97 + 96 + ... + 91 = 658, folded from 7 series.
        assert!(t.contains("rxray_alerts_total{host=\"h1\",detector=\"other\"} 658"), "{t}");
        assert!(t.contains("rxray_metrics_series_folded{host=\"h1\",family=\"rxray_alerts_total\"} 7"), "{t}");
    }

    #[test]
    fn windows_are_differences_never_negative() {
        let a = snap();
        let mut b = snap();
        b.events_lost = 10;
        b.flow_inserts_failed = 4;
        let w = Window::between(&a, &b, 2.0);
        assert_eq!((w.events_lost, w.flow_inserts_failed, w.samples_dropped, w.seconds), (3, 4, 0, 2.0));
        assert_eq!(Window::between(&b, &a, 1.0).events_lost, 0);
    }
}
