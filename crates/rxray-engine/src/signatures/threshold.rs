//! `threshold` state: per rule and tracked address, when the window opened and how many matches
//! it has seen, with time taken from the packets (no clock of our own).
//!
//! - `limit`: alert on the first `count` matches in each window of `seconds`.
//! - `threshold`: alert on every `count`-th match within a window (the count restarts after each
//!   alert, and when a window expires).
//! - `both`: alert once per window, on its `count`-th match.
//!
//! A window opens at the first match after the previous one expired (Suricata's behaviour).
use super::rule::{Threshold, ThresholdType};
use super::table::Bounded;
use std::net::IpAddr;

/// (rule, address) pairs tracked at once.
pub const DEFAULT_THRESHOLD_CAPACITY: usize = 65_536;

#[derive(Clone, Copy, Debug)]
struct Window {
    start_ns: u64,
    count: u32,
}

pub struct Thresholds {
    windows: Bounded<(u32, IpAddr), Window>,
}

impl Thresholds {
    pub fn new(capacity: usize) -> Self {
        Thresholds { windows: Bounded::new(capacity) }
    }

    pub fn evicted(&self) -> u64 {
        self.windows.evicted
    }

    /// Counts one match of rule `rule` (its index) for `addr` at `ts_ns`; true when it should alert.
    pub fn allow(&mut self, rule: u32, t: &Threshold, addr: IpAddr, ts_ns: u64) -> bool {
        let w = self.windows.entry((rule, addr), || Window { start_ns: ts_ns, count: 0 });
        let span = t.seconds as u64 * 1_000_000_000;
        if ts_ns.saturating_sub(w.start_ns) >= span || ts_ns < w.start_ns {
            *w = Window { start_ns: ts_ns, count: 0 };
        }
        w.count = w.count.saturating_add(1);
        match t.kind {
            ThresholdType::Limit => w.count <= t.count,
            ThresholdType::Threshold => {
                if w.count >= t.count {
                    w.count = 0;
                    true
                } else {
                    false
                }
            }
            ThresholdType::Both => w.count == t.count,
        }
    }
}
