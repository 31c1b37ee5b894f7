//! A joined `top`'s panes beyond the flow table: the agent's drops by reason, its detectors'
//! alerts with their firewall actions, and its HTTP view's endpoints, sent every interval as one
//! typed record (`TopPanes`), counted from the moment the client joined (as its flow table is).
//! The flow table itself comes through a joined `flows` beside it.
use super::views::{Feeds, Queue, View};
use crate::drops::Names;
use crate::sinks::{JsonLines, Keys, Record, Sink};
use rxray_engine::alert::Alert;
use rxray_engine::http::{Direction, HttpConfig, HttpTracker, TcpSegment};
use rxray_kernel::DropTotals;
use rxray_tui::model::Panes;
use rxray_tui::Collector;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One refresh of a joined `top`'s panes (one output frame, JSON).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct TopPanes {
    /// The agent's monotonic clock when it was made.
    pub ts_ns: u64,
    pub panes: Panes,
    /// Drop events the agent's drops ring had no room for since the join (None: no drop counts).
    pub drop_events_lost: Option<u64>,
    /// HTTP records the agent's HTTP rings had no room for since the join (None: no HTTP view).
    #[serde(default)]
    pub http_records_lost: Option<u64>,
}

/// The panes go to the client as a JSON line, keys in the order above (the client reads them back).
impl Record for TopPanes {
    const KEYS: Keys = Keys::Declared;
}

/// A joined `top`: the agent's drops, alerts and HTTP segments, through the dashboard's own
/// collector (so the panes are made as a standalone `top` makes them).
pub struct TopView {
    c: Collector,
    names: Option<Names>,
    /// The agent's drop counts (per reason slot) and ring losses when the client joined.
    base: BTreeMap<u32, u64>,
    base_lost: u64,
    /// HTTP records lost on the client's interfaces when it joined.
    base_http_lost: u64,
    http: Option<(HttpTracker, Vec<u16>)>,
    interfaces: Vec<String>,
    every: Duration,
    next: Instant,
}

/// The view a `top` join asks for. `detect`: the agent runs its detectors; `http_ports`: the
/// agent's HTTP view's ports, when it runs.
pub fn view(interfaces: &[String], every: Option<Duration>, feeds: &Feeds) -> TopView {
    let mut c = Collector::new("agent");
    let drops = match feeds.drops.and_then(|s| s.drops()) {
        None => Err("the agent counts no drops (`[drops] enabled = false`, or its tracepoint failed)".to_string()),
        Some(_) => Ok(()),
    };
    let names = match Names::load() {
        Ok(n) => Some(n),
        Err(e) => {
            eprintln!("rxray agent: a joined top gets drop reasons by number: {e:#}");
            None
        }
    };
    let t = feeds.drops.and_then(|s| s.drops()).and_then(|d| d.totals().ok()).unwrap_or_default();
    let alerts = if feeds.detect { Ok(()) } else { Err("the agent runs no detectors (`[detect] enabled = false`)".to_string()) };
    let http = feeds.http_ports.map(|p| (HttpTracker::new(HttpConfig::default()), p.to_vec()));
    let http_on = if http.is_some() { Ok(()) } else { Err("the agent runs without its HTTP view (`[http] enabled = true` turns it on)".to_string()) };
    c.set_parts(drops, alerts, http_on);
    let every = every.unwrap_or(Duration::from_secs(1));
    let base_http_lost = http_lost(interfaces, feeds).unwrap_or(0);
    TopView {
        c,
        names,
        base: t.by_reason.into_iter().collect(),
        base_lost: t.lost,
        base_http_lost,
        http,
        interfaces: interfaces.to_vec(),
        every,
        next: Instant::now(),
    }
}

/// HTTP records the agent's rings on `interfaces` had no room for (None: no HTTP counters).
fn http_lost(interfaces: &[String], feeds: &Feeds) -> Option<u64> {
    let f = feeds.http_totals?;
    let t: Vec<_> = interfaces.iter().filter_map(|i| f(i)).collect();
    (!t.is_empty()).then(|| t.iter().map(|t| t.records_lost).sum())
}

impl TopView {
    /// The agent's drop counts since the join, by reason name.
    fn drops_since(&self, t: &DropTotals) -> Vec<(String, u64)> {
        t.by_reason
            .iter()
            .map(|(slot, n)| {
                let name = match &self.names {
                    Some(names) => names.slot(*slot),
                    None => format!("reason_{slot}"),
                };
                (name, n.saturating_sub(*self.base.get(slot).unwrap_or(&0)))
            })
            .collect()
    }

    fn panes(&mut self, f: &Feeds) -> TopPanes {
        let t = f.drops.and_then(|s| s.drops()).and_then(|d| d.totals().ok());
        if let Some(t) = &t {
            let rows = self.drops_since(t);
            self.c.set_drops(rows);
        }
        if let Some((tr, _)) = self.http.as_mut() {
            tr.advance(rxray_kernel::monotonic_ns());
            self.c.on_http(tr.snapshot());
        }
        let http_records_lost = self.http.as_ref().and_then(|_| http_lost(&self.interfaces, f)).map(|n| n.saturating_sub(self.base_http_lost));
        TopPanes { ts_ns: f.now_ns, panes: self.c.panes(), drop_events_lost: t.map(|t| t.lost.saturating_sub(self.base_lost)), http_records_lost }
    }

    fn send(&mut self, f: &Feeds, q: &mut Queue) {
        let mut line = Vec::new();
        if JsonLines::new(&mut line).write(&self.panes(f)).is_ok() {
            q.extra(&line);
        }
    }
}

impl View for TopView {
    fn on_alert(&mut self, a: &Alert, _q: &mut Queue) {
        self.c.on_alert(a, a.enforced);
    }

    fn on_http_segment(&mut self, iface: &str, seg: &TcpSegment, _q: &mut Queue) {
        let Some((tr, ports)) = self.http.as_mut() else { return };
        let server_port = match seg.dir {
            Direction::ToServer => seg.dport,
            Direction::ToClient => seg.sport,
        };
        if ports.contains(&server_port) && self.interfaces.iter().any(|i| i == iface) {
            tr.segment(seg);
        }
    }

    fn tick(&mut self, f: &Feeds, now: Instant, q: &mut Queue) {
        if now >= self.next {
            self.next = now + self.every;
            self.send(f, q);
        }
    }

    fn finish(&mut self, f: &Feeds, q: &mut Queue) -> String {
        self.send(f, q);
        String::new()
    }

    fn done(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rxray_tui::model::{AlertRow, EndpointRow};

    #[test]
    fn top_panes_round_trip_as_json() {
        let mut p = TopPanes { ts_ns: 7, drop_events_lost: Some(1), ..Default::default() };
        p.panes.drops.reasons = vec![("NO_SOCKET".into(), 40)];
        p.panes.alerts.recent.push(AlertRow { detector: "syn_flood".into(), src: "198.18.0.66".parse().ok(), action: "block 198.18.0.66/32 600s".into(), ..Default::default() });
        p.panes.http.endpoints.push(EndpointRow { method: "GET".into(), template: "/a/{id}".into(), requests: 3, error_rate: 1.0 / 3.0, p95_ms: None });
        let back: TopPanes = serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}
