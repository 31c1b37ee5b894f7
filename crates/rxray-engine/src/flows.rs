//! Flow records as the engine sees them (one direction of a conversation on one interface), the
//! rates between two snapshots, and the top-N ordering `rxray flows` shows.
use serde::Serialize;
use std::{collections::HashMap, net::IpAddr};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
pub struct FlowKey {
    pub ifindex: u32,
    /// Innermost VLAN id; 0 when untagged.
    pub vlan: u16,
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// The fragments bucket: later fragments whose first fragment was never seen.
    pub fragments: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct FlowRecord {
    #[serde(flatten)]
    pub key: FlowKey,
    pub iface: String,
    pub packets: u64,
    pub bytes: u64,
    /// Unix-epoch nanoseconds.
    pub first_ns: u64,
    pub last_ns: u64,
    /// OR of the TCP flags seen.
    pub tcp_flags: u8,
    /// Packets by size: <=64, <=128, <=256, <=512, <=1024, <=1518, <=9018, larger.
    pub size_hist: [u64; 8],
    /// Rates over the last interval (0 on the first snapshot).
    pub pps: f64,
    pub bps: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    Bytes,
    Packets,
    Rate,
}

/// Remembers the previous snapshot's counters, to turn counters into rates.
#[derive(Default)]
pub struct RateTracker {
    prev: HashMap<FlowKey, (u64, u64)>,
    prev_ns: Option<u64>,
}

impl RateTracker {
    /// Fills `pps`/`bps` of each record from the counters it had at the previous call.
    pub fn update(&mut self, records: &mut [FlowRecord], now_ns: u64) {
        let dt = self.prev_ns.map(|p| now_ns.saturating_sub(p) as f64 / 1e9).filter(|d| *d > 0.0);
        let mut next = HashMap::with_capacity(records.len());
        for r in records.iter_mut() {
            let (pp, pb) = self.prev.get(&r.key).copied().unwrap_or((0, 0));
            if let Some(dt) = dt {
                r.pps = r.packets.saturating_sub(pp) as f64 / dt;
                r.bps = r.bytes.saturating_sub(pb) as f64 * 8.0 / dt;
            }
            next.insert(r.key.clone(), (r.packets, r.bytes));
        }
        self.prev = next;
        self.prev_ns = Some(now_ns);
    }
}

/// Orders records, largest first; ties by key so the order is deterministic.
pub fn sort(records: &mut [FlowRecord], by: SortBy) {
    let metric = |r: &FlowRecord| match by {
        SortBy::Bytes => r.bytes as f64,
        SortBy::Packets => r.packets as f64,
        SortBy::Rate => r.bps,
    };
    records.sort_by(|a, b| {
        metric(b)
            .partial_cmp(&metric(a))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| format!("{:?}", a.key).cmp(&format!("{:?}", b.key)))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn rec(sport: u16, packets: u64, bytes: u64) -> FlowRecord {
        FlowRecord {
            key: FlowKey {
                ifindex: 1,
                vlan: 0,
                proto: 17,
                src: Ipv4Addr::new(198, 18, 0, 1).into(),
                dst: Ipv4Addr::new(198, 18, 0, 2).into(),
                sport,
                dport: 53,
                fragments: false,
            },
            iface: "x".into(),
            packets,
            bytes,
            first_ns: 0,
            last_ns: 0,
            tcp_flags: 0,
            size_hist: [0; 8],
            pps: 0.0,
            bps: 0.0,
        }
    }

    #[test]
    fn rates_come_from_the_previous_snapshot() {
        let mut t = RateTracker::default();
        let mut a = vec![rec(1, 10, 1000)];
        t.update(&mut a, 1_000_000_000);
        assert_eq!((a[0].pps, a[0].bps), (0.0, 0.0));
        let mut b = vec![rec(1, 30, 3000), rec(2, 5, 500)];
        t.update(&mut b, 3_000_000_000);
        assert_eq!((b[0].pps, b[0].bps), (10.0, 8000.0));
        assert_eq!((b[1].pps, b[1].bps), (2.5, 2000.0));
    }

    #[test]
    fn sorting_is_by_the_chosen_metric_then_key() {
        let mut v = vec![rec(1, 100, 10), rec(2, 1, 1000), rec(3, 1, 1000)];
        sort(&mut v, SortBy::Bytes);
        assert_eq!(v.iter().map(|r| r.key.sport).collect::<Vec<_>>(), vec![2, 3, 1]);
        sort(&mut v, SortBy::Packets);
        assert_eq!(v[0].key.sport, 1);
    }
}
