//! `threshold.config` (Suricata's global thresholds, docs/userguide/configuration/
//! global-thresholds.rst): `suppress`, `threshold`/`event_filter` and `rate_filter` entries by
//! `gen_id` and `sig_id` (0 for any), their parser (errors by line and column) and the state of
//! the rate filters. Applied to a loaded set by `SignatureSet::with_threshold_config`.
use super::addr::{parse_addr, AddrSpec, Vars};
use super::rule::{RuleAction, Threshold, Track};
use super::table::Bounded;
use super::threshold::{TrackKey, Tuple};
use std::net::IpAddr;

/// Which address a `suppress ... ip` entry looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuppressTrack {
    BySrc,
    ByDst,
    /// The source or the destination.
    ByEither,
}

#[derive(Clone, Debug)]
pub struct Suppress {
    /// None: the rule never alerts (it becomes `noalert`).
    pub only: Option<(SuppressTrack, AddrSpec)>,
}

impl Suppress {
    pub fn suppresses(&self, src: IpAddr, dst: IpAddr) -> bool {
        match &self.only {
            None => true,
            Some((SuppressTrack::BySrc, a)) => a.matches(src),
            Some((SuppressTrack::ByDst, a)) => a.matches(dst),
            Some((SuppressTrack::ByEither, a)) => a.matches(src) || a.matches(dst),
        }
    }
}

/// `rate_filter`: once `count` matches came within `seconds`, the rule's action becomes
/// `new_action` for `timeout` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateFilter {
    pub track: Track,
    pub count: u32,
    pub seconds: u32,
    pub new_action: RuleAction,
    pub timeout: u32,
}

#[derive(Clone, Debug)]
pub enum EntryKind {
    Suppress(Suppress),
    /// Replaces the rule's own `threshold`/`detection_filter` (for gen_id 0 or sig_id 0: only
    /// rules that have neither, as Suricata applies such wildcards).
    Threshold(Threshold),
    Rate(RateFilter),
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub gid: u32,
    pub sid: u32,
    /// 1-based line of the entry.
    pub line: usize,
    pub kind: EntryKind,
}

impl Entry {
    /// The entry names this rule (0 is a wildcard: gen_id 0 means every rule).
    pub fn applies_to(&self, gid: u32, sid: u32) -> bool {
        self.gid == 0 || (self.gid == gid && (self.sid == 0 || self.sid == sid))
    }

    pub fn is_wildcard(&self) -> bool {
        self.gid == 0 || self.sid == 0
    }
}

#[derive(Clone, Debug, Default)]
pub struct ThresholdConfig {
    pub entries: Vec<Entry>,
}

/// A line of the file that is not a valid entry: where (line, column) and why; the same shape as
/// a rule's syntax error.
pub type ConfigError = super::parse::RuleError;

/// Parses a threshold.config. Comments (`#`), blank lines and `\` continuations as in rule files.
/// Every bad entry is reported; the good ones are kept.
pub fn parse(text: &str, vars: &Vars) -> (ThresholdConfig, Vec<ConfigError>) {
    let mut cfg = ThresholdConfig::default();
    let mut errors = Vec::new();
    for l in super::parse::logical_lines(text) {
        let line = l.first_line();
        match entry(&l.text, vars) {
            Ok(kind_gid_sid) => {
                let (gid, sid, kind) = kind_gid_sid;
                cfg.entries.push(Entry { gid, sid, line, kind });
            }
            Err((at, message)) => {
                let (line, column) = l.position(at);
                errors.push(ConfigError { line, column, message });
            }
        }
    }
    (cfg, errors)
}

type PErr = (usize, String);

/// Splits `a b, c [d, e], f` at commas outside brackets: (part, char offset).
fn parts(v: &str, base: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let (mut depth, mut start, mut cur) = (0i32, 0usize, String::new());
    for (i, ch) in v.chars().enumerate() {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth <= 0 => {
                let lead = cur.chars().take_while(|c| c.is_whitespace()).count();
                out.push((cur.trim().to_string(), base + start + lead));
                cur.clear();
                start = i + 1;
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    let lead = cur.chars().take_while(|c| c.is_whitespace()).count();
    out.push((cur.trim().to_string(), base + start + lead));
    out
}

fn entry(text: &str, vars: &Vars) -> Result<(u32, u32, EntryKind), PErr> {
    let lead = text.chars().take_while(|c| c.is_whitespace()).count();
    let t = text.trim();
    let (word, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    let rest_at = lead + word.chars().count() + 1;
    let kind = match word {
        "suppress" | "threshold" | "event_filter" | "rate_filter" => word,
        _ => return Err((lead, format!("unknown entry '{word}' (expected suppress, threshold, event_filter or rate_filter)"))),
    };
    let mut fields: Vec<(String, String, usize)> = Vec::new();
    for (part, at) in parts(rest, rest_at) {
        let (k, v) = part.split_once(char::is_whitespace).ok_or((at, format!("'{part}' must be 'name value'")))?;
        let vat = at + k.chars().count() + (v.len() - v.trim_start().len()) + 1;
        if fields.iter().any(|(n, _, _)| n == k) {
            return Err((at, format!("'{k}' given twice")));
        }
        fields.push((k.to_string(), v.trim().to_string(), vat));
    }
    let get = |k: &str| fields.iter().find(|(n, _, _)| n == k).map(|(_, v, at)| (v.as_str(), *at));
    let num = |k: &str| -> Result<Option<u32>, PErr> {
        match get(k) {
            None => Ok(None),
            Some((v, at)) => v.parse::<u32>().map(Some).map_err(|_| (at, format!("{k}: '{v}' is not a valid number"))),
        }
    };
    let allowed: &[&str] = match kind {
        "suppress" => &["gen_id", "sig_id", "track", "ip"],
        "rate_filter" => &["gen_id", "sig_id", "track", "count", "seconds", "new_action", "timeout"],
        _ => &["gen_id", "sig_id", "type", "track", "count", "seconds"],
    };
    if let Some((k, _, at)) = fields.iter().find(|(k, _, _)| !allowed.contains(&k.as_str())) {
        return Err((*at - k.chars().count() - 1, format!("'{k}' is not a field of {kind} ({})", allowed.join(", "))));
    }
    let (Some(gid), Some(sid)) = (num("gen_id")?, num("sig_id")?) else {
        return Err((lead, format!("{kind} needs gen_id and sig_id")));
    };
    let track = |accept_either: bool| -> Result<Option<(&str, usize)>, PErr> {
        match get("track") {
            None => Ok(None),
            Some((v, at)) => {
                let ok = matches!(v, "by_src" | "by_dst" | "by_rule" | "by_both" | "by_flow") || (accept_either && v == "by_either");
                if ok { Ok(Some((v, at))) } else { Err((at, format!("track '{v}' is not valid for {kind}"))) }
            }
        }
    };
    let to_track = |v: &str| match v {
        "by_dst" => Track::ByDst,
        "by_rule" => Track::ByRule,
        "by_both" => Track::ByBoth,
        "by_flow" => Track::ByFlow,
        _ => Track::BySrc,
    };
    let need = |k: &str| -> Result<u32, PErr> { num(k)?.ok_or((lead, format!("{kind} needs {k}"))) };
    let k = match kind {
        "suppress" => {
            let only = match (track(true)?, get("ip")) {
                (None, None) => None,
                (Some((tr, at)), Some((ip, ipat))) => {
                    let tr = match tr {
                        "by_src" => SuppressTrack::BySrc,
                        "by_dst" => SuppressTrack::ByDst,
                        "by_either" => SuppressTrack::ByEither,
                        _ => return Err((at, format!("suppress tracks by_src, by_dst or by_either, not {tr}"))),
                    };
                    let a = parse_addr(ip, vars).map_err(|(o, m)| (ipat + o, m))?;
                    Some((tr, a))
                }
                (Some((_, at)), None) => return Err((at, "suppress with track needs ip".into())),
                (None, Some((_, at))) => return Err((at, "suppress with ip needs track".into())),
            };
            EntryKind::Suppress(Suppress { only })
        }
        "rate_filter" => {
            let Some((tr, _)) = track(false)? else { return Err((lead, "rate_filter needs track".into())) };
            let (na, naat) = get("new_action").ok_or((lead, "rate_filter needs new_action".to_string()))?;
            let new_action = match na {
                "alert" | "drop" | "pass" | "reject" => RuleAction::parse(na).unwrap_or_default(),
                "sdrop" | "log" => return Err((naat, format!("new_action {na} is parsed by Suricata but not implemented; use alert, drop, pass or reject"))),
                _ => return Err((naat, format!("new_action '{na}' is not alert, drop, pass or reject"))),
            };
            let count = need("count")?;
            if count == 0 {
                return Err((lead, "rate_filter count must be 1 or more".into()));
            }
            EntryKind::Rate(RateFilter { track: to_track(tr), count, seconds: need("seconds")?, new_action, timeout: need("timeout")? })
        }
        _ => {
            // One threshold option's text, parsed by the rule keyword's own parser.
            let ty = get("type").map(|(v, _)| v).ok_or((lead, format!("{kind} needs type")))?;
            let Some((tr, _)) = track(false)? else { return Err((lead, format!("{kind} needs track"))) };
            let text = format!("type {ty}, track {tr}, count {}, seconds {}", need("count")?, need("seconds")?);
            match super::threshold::parse(&text, false) {
                Ok(super::threshold::Parsed::Ok(t)) => EntryKind::Threshold(t),
                Ok(super::threshold::Parsed::Unsupported(m)) | Err((_, m)) => return Err((lead, m)),
            }
        }
    };
    Ok((gid, sid, k))
}

#[derive(Clone, Copy, Debug)]
struct RateState {
    start_ns: u64,
    count: u32,
    /// When the new action took over (0: not in force).
    since_ns: u64,
}

/// The rate filters' counters, per (entry, tracked key).
pub struct RateFilters {
    state: Bounded<(u32, TrackKey), RateState>,
}

impl RateFilters {
    pub fn new(capacity: usize) -> Self {
        RateFilters { state: Bounded::new(capacity) }
    }

    pub fn evicted(&self) -> u64 {
        self.state.evicted
    }

    /// Counts one match under rate filter `entry`; the action it has now: `rf.new_action` while
    /// the filter is in force, else `action`. (Suricata's IsThresholdReached: the count-th match
    /// in the window puts it in force, for `timeout` seconds from then.)
    pub fn action(&mut self, entry: u32, rf: &RateFilter, tuple: &Tuple, ts_ns: u64, action: RuleAction) -> RuleAction {
        let st = self.state.entry((entry, tuple.key(rf.track)), || RateState { start_ns: ts_ns, count: 0, since_ns: 0 });
        if st.since_ns != 0 {
            if ts_ns.saturating_sub(st.since_ns) > rf.timeout as u64 * 1_000_000_000 {
                *st = RateState { start_ns: ts_ns, count: 0, since_ns: 0 };
            } else {
                return rf.new_action;
            }
        }
        if ts_ns.saturating_sub(st.start_ns) >= rf.seconds as u64 * 1_000_000_000 {
            *st = RateState { start_ns: ts_ns, count: 0, since_ns: 0 };
        }
        st.count = st.count.saturating_add(1);
        if st.count >= rf.count {
            st.since_ns = ts_ns.max(1);
            return rf.new_action;
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_examples_parse() {
        // global-thresholds.rst's examples, verbatim.
        let text = "suppress gen_id 1, sig_id 2002087, track by_src, ip 209.132.180.67\n\
                    suppress gen_id 1, sig_id 2003614, track by_src, ip [192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]\n\
                    suppress gen_id 1, sig_id 2003614, track by_src, ip $HOME_NET\n\
                    suppress gen_id 1, sig_id 2003614, track by_either, ip 217.110.97.128/25\n\
                    suppress gen_id 1, sig_id 2002087\n\
                    threshold gen_id 1, sig_id 2002087, type both, track by_src, count 3, seconds 5\n\
                    rate_filter gen_id 1, sig_id 1000, track by_rule, count 100, seconds 60, \\\n  new_action alert, timeout 30\n\
                    event_filter gen_id 1, sig_id 888, type limit, track by_dst, count 1, seconds 15\n";
        let (cfg, errors) = parse(text, &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cfg.entries.len(), 8);
        assert_eq!(cfg.entries[6].line, 7);
        assert!(matches!(cfg.entries[6].kind, EntryKind::Rate(RateFilter { count: 100, seconds: 60, timeout: 30, .. })));
    }

    #[test]
    fn bad_entries_are_reported_by_line_and_column() {
        let text = "suppress gen_id 1, sig_id x\nthreshold gen_id 1, sig_id 2, type sometimes, track by_src, count 1, seconds 1\n\
                    bogus gen_id 1\nsuppress gen_id 1, sig_id 3, track by_src\nrate_filter gen_id 1, sig_id 4, track by_src, count 1, seconds 1, new_action sdrop, timeout 1\n";
        let (cfg, errors) = parse(text, &Vars::default());
        assert!(cfg.entries.is_empty());
        let at: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(at, [(1, 27), (2, 1), (3, 1), (4, 36), (5, 78)], "{errors:?}");
    }
}
