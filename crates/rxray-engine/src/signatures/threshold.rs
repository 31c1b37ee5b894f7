//! `threshold` and `detection_filter`: their option syntax, and their state per rule and tracked
//! key (address, address pair, rule, flow), with time taken from the packets (no clock of our own).
//! Semantics are Suricata's (docs/userguide/rules/thresholding.rst and detect-engine-threshold.c):
//!
//! - `limit`: alert on the first `count` matches in each window of `seconds`.
//! - `threshold`: alert on every `count`-th match within a window (the count restarts after each
//!   alert, and when a window expires).
//! - `both`: alert once per window, on its `count`-th match.
//! - `backoff` (by_flow only): alert on match `count`, then `count*multiplier`, `count*multiplier²`...
//! - `detection_filter`: alert on every match after the `count`-th within the window.
//!
//! A window opens at the first match after the previous one expired.
use super::rule::{Threshold, ThresholdType, Track};
use super::table::Bounded;
use std::net::IpAddr;

/// (rule, key) pairs tracked at once.
pub const DEFAULT_THRESHOLD_CAPACITY: usize = 65_536;

/// What one threshold counts by, for one match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackKey {
    Addr(IpAddr),
    /// The lower address first, so both directions share it.
    Pair(IpAddr, IpAddr),
    Rule,
    /// Protocol and the two endpoints, lower first.
    Flow(u8, (IpAddr, u16), (IpAddr, u16)),
}

/// The addresses and ports of one match, from which each `track` takes its key.
#[derive(Clone, Copy, Debug)]
pub struct Tuple {
    pub proto: u8,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
}

impl Tuple {
    pub fn key(&self, track: Track) -> TrackKey {
        match track {
            Track::BySrc => TrackKey::Addr(self.src),
            Track::ByDst => TrackKey::Addr(self.dst),
            Track::ByRule => TrackKey::Rule,
            Track::ByBoth => TrackKey::Pair(self.src.min(self.dst), self.src.max(self.dst)),
            Track::ByFlow => {
                let (a, b) = ((self.src, self.sport), (self.dst, self.dport));
                TrackKey::Flow(self.proto, a.min(b), a.max(b))
            }
        }
    }
}

/// Which of a rule's thresholds a window belongs to (a rule may have several).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    Threshold,
    DetectionFilter,
    /// A `threshold.config` entry (its index).
    Config(u32),
}

#[derive(Clone, Copy, Debug)]
struct Window {
    start_ns: u64,
    count: u32,
    /// backoff: the match number that alerts next.
    next: u64,
}

pub struct Thresholds {
    windows: Bounded<(u32, Slot, TrackKey), Window>,
}

impl Thresholds {
    pub fn new(capacity: usize) -> Self {
        Thresholds { windows: Bounded::new(capacity) }
    }

    pub fn evicted(&self) -> u64 {
        self.windows.evicted
    }

    /// Counts one match of rule `rule` (its index) under `t` at `ts_ns`; true when it should alert.
    pub fn allow(&mut self, rule: u32, slot: Slot, t: &Threshold, tuple: &Tuple, ts_ns: u64) -> bool {
        let key = (rule, slot, tuple.key(t.track));
        let w = self.windows.entry(key, || Window { start_ns: ts_ns, count: 0, next: t.count as u64 });
        if t.kind == ThresholdType::Backoff {
            w.count = w.count.saturating_add(1);
            if w.count as u64 == w.next {
                w.next = w.next.saturating_mul(t.multiplier.max(1) as u64).max(w.next + 1);
                return true;
            }
            return false;
        }
        let span = t.seconds as u64 * 1_000_000_000;
        if ts_ns.saturating_sub(w.start_ns) >= span || ts_ns < w.start_ns {
            *w = Window { start_ns: ts_ns, count: 0, next: 0 };
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
            ThresholdType::Detection => w.count > t.count,
            ThresholdType::Backoff => false,
        }
    }
}

/// (char offset inside the value, message): a syntax error in the option's value.
pub type OptError = (usize, String);

/// What an option asked for that rxray parsed but cannot honour (its reason), or the threshold.
#[derive(Debug)]
pub enum Parsed {
    Ok(Threshold),
    Unsupported(String),
}

/// `name value` parts separated by commas, with each part's char offset in `v`.
fn parts(v: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    for part in v.split(',') {
        let lead = part.chars().take_while(|c| c.is_whitespace()).count();
        out.push((part.trim().to_string(), at + lead));
        at += part.chars().count() + 1;
    }
    out
}

fn track(val: &str, at: usize) -> Result<Track, OptError> {
    Ok(match val {
        "by_src" => Track::BySrc,
        "by_dst" => Track::ByDst,
        "by_rule" => Track::ByRule,
        "by_both" => Track::ByBoth,
        "by_flow" => Track::ByFlow,
        _ => return Err((at, format!("track '{val}' is not by_src, by_dst, by_rule, by_both or by_flow"))),
    })
}

fn num(val: &str, at: usize, what: &str) -> Result<u32, OptError> {
    val.parse::<u32>().map_err(|_| (at, format!("{what}: '{val}' is not a valid number")))
}

/// `threshold: type <limit|threshold|both|backoff>, track <..>, count N, <seconds T|multiplier M>`
/// (`detection == false`), or `detection_filter: track <..>, count N, seconds T[, unique_on ..]`.
pub fn parse(v: &str, detection: bool) -> Result<Parsed, OptError> {
    let what = if detection { "detection_filter" } else { "threshold" };
    let (mut kind, mut trk, mut count, mut seconds, mut mult) = (None, None, None, None, None);
    let mut unsupported = None;
    for (item, at) in parts(v) {
        let mut words = item.split_whitespace();
        let (Some(k), Some(val), None) = (words.next(), words.next(), words.next()) else {
            return Err((at, format!("{what} part '{item}' must be 'name value'")));
        };
        let vat = at + item.find(val).map_or(0, |b| item[..b].chars().count());
        match k {
            "type" if !detection => {
                kind = Some(match val {
                    "limit" => ThresholdType::Limit,
                    "threshold" => ThresholdType::Threshold,
                    "both" => ThresholdType::Both,
                    "backoff" => ThresholdType::Backoff,
                    _ => return Err((vat, format!("threshold type '{val}' is not limit, threshold, both or backoff"))),
                })
            }
            "track" => trk = Some(track(val, vat)?),
            "count" => count = Some(num(val, vat, &format!("{what} count"))?),
            "seconds" => seconds = Some(num(val, vat, &format!("{what} seconds"))?),
            "multiplier" if !detection => mult = Some(num(val, vat, "threshold multiplier")?),
            "unique_on" if detection => match val {
                "src_port" | "dst_port" => unsupported = Some(format!("detection_filter unique_on {val} is not supported")),
                _ => return Err((vat, format!("unique_on '{val}' is not src_port or dst_port"))),
            },
            _ => return Err((at, format!("unknown {what} part '{k}'"))),
        }
    }
    let kind = if detection { Some(ThresholdType::Detection) } else { kind };
    let (Some(kind), Some(track), Some(count)) = (kind, trk, count) else {
        let need = if detection { "track, count and seconds" } else { "type, track, count and seconds (or multiplier)" };
        return Err((0, format!("{what} needs {need}")));
    };
    if count == 0 {
        return Err((0, format!("{what} count must be 1 or more")));
    }
    let t = match kind {
        ThresholdType::Backoff => {
            let Some(m) = mult.filter(|&m| m > 0) else {
                return Err((0, "threshold type backoff needs a multiplier of 1 or more".into()));
            };
            if track != Track::ByFlow {
                return Err((0, "threshold type backoff can only be used with track by_flow".into()));
            }
            Threshold { kind, track, count, seconds: 0, multiplier: m }
        }
        _ => {
            if mult.is_some() {
                return Err((0, "multiplier is only for threshold type backoff".into()));
            }
            let Some(seconds) = seconds else {
                return Err((0, format!("{what} needs seconds")));
            };
            Threshold { kind, track, count, seconds, multiplier: 0 }
        }
    };
    Ok(match unsupported {
        Some(r) => Parsed::Unsupported(r),
        None => Parsed::Ok(t),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alerts(kind: ThresholdType, count: u32, multiplier: u32, n: u32) -> Vec<u32> {
        let t = Threshold { kind, track: Track::ByFlow, count, seconds: 60, multiplier };
        let tuple = Tuple { proto: 6, src: [198, 18, 0, 1].into(), sport: 1, dst: [198, 18, 0, 2].into(), dport: 2 };
        let mut th = Thresholds::new(16);
        (1..=n).filter(|_| th.allow(0, Slot::Threshold, &t, &tuple, 1)).collect()
    }

    #[test]
    fn backoff_follows_the_documented_sequences() {
        // thresholding.rst: "A count of 1 with a multiplier of 10 would generate alerts for
        // matching packets: 1, 10, 100, 1000"; "count of 5 with multiplier 5: 5, 25, 125, 625".
        assert_eq!(alerts(ThresholdType::Backoff, 1, 10, 1000), [1, 10, 100, 1000]);
        assert_eq!(alerts(ThresholdType::Backoff, 1, 2, 64), [1, 2, 4, 8, 16, 32, 64]);
        assert_eq!(alerts(ThresholdType::Backoff, 5, 5, 700), [5, 25, 125, 625]);
    }

    #[test]
    fn detection_filter_alerts_on_every_match_after_the_count() {
        assert_eq!(alerts(ThresholdType::Detection, 3, 0, 6), [4, 5, 6]);
    }

    #[test]
    fn parse_reports_what_is_wrong() {
        assert!(matches!(parse("type backoff, track by_flow, count 1, multiplier 10", false), Ok(Parsed::Ok(_))));
        assert!(parse("type backoff, track by_src, count 1, multiplier 10", false).unwrap_err().1.contains("by_flow"));
        assert!(parse("type limit, track by_src, count 1", false).unwrap_err().1.contains("seconds"));
        assert_eq!(parse("type limit, track by_host, count 1, seconds 1", false).unwrap_err().0, 18);
        assert!(matches!(parse("track by_dst, count 10, seconds 60, unique_on dst_port", true), Ok(Parsed::Unsupported(_))));
        assert!(matches!(parse("track by_rule,count 15,seconds 2", true), Ok(Parsed::Ok(t)) if t.kind == ThresholdType::Detection && t.track == Track::ByRule));
    }
}
