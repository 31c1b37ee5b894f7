//! The agent's metrics of connections and delivery latency: closed connections summed as they close
//! (resets, RTT and handshake histograms), the kernel's connection counters, and the latency
//! histograms of every flow summed per stage, into the snapshot `/metrics` shows.
use rxray_agent::metrics::{ConnMetrics, Hist, Snapshot, LATENCY_BOUNDS_S};
use rxray_engine::conns::record;
use rxray_engine::latency::Histogram;
use rxray_engine::source::{Connection, LatencySnapshot};
use std::collections::BTreeMap;

/// What the closed connections added up to.
#[derive(Default)]
pub struct ConnStats {
    resets: BTreeMap<String, u64>,
    rtt: Histogram,
    handshake: Histogram,
}

impl ConnStats {
    /// One connection that closed.
    pub fn on_closed(&mut self, c: &Connection, ts_ns: u64) {
        let r = record(c, ts_ns, "closed");
        if let Some(by) = r.reset_by {
            *self.resets.entry(by.to_string()).or_default() += 1;
        }
        if r.srtt_us > 0 {
            self.rtt.add(u64::from(r.srtt_us) * 1000);
        }
        if let Some(ms) = r.handshake_ms {
            self.handshake.add((ms * 1e6) as u64);
        }
    }

    /// Into the snapshot, with the kernel's connection counters.
    pub fn fill(&self, s: &mut Snapshot, t: &rxray_kernel::ConnTotals) {
        s.conns = Some(ConnMetrics {
            opened: t.new,
            closed: t.closed,
            resets: self.resets.clone(),
            resets_no_socket: t.rst_tx_nosock,
            rtt: Hist::of(&self.rtt, &LATENCY_BOUNDS_S),
            handshake: Hist::of(&self.handshake, &LATENCY_BOUNDS_S),
        });
    }
}

/// The delivery latency of every measured packet, per stage (`queued`, `read`): the flows'
/// histograms summed (each packet is in one flow's).
pub fn fill_latency(s: &mut Snapshot, snap: &LatencySnapshot) {
    let (mut queued, mut read) = (Histogram::default(), Histogram::default());
    for f in &snap.flows {
        rxray_store::hist_add(&mut queued, &f.latency.queue);
        rxray_store::hist_add(&mut read, &f.latency.read);
    }
    s.latency.insert("queued".into(), Hist::of(&queued, &LATENCY_BOUNDS_S));
    s.latency.insert("read".into(), Hist::of(&read, &LATENCY_BOUNDS_S));
}
