//! The `--json` records of `conns` and `firewall` as typed serde structs: the shape of each output
//! is written here, once, instead of in `json!` trees at each print. `line` prints a record with
//! its keys in sorted order, at every depth, as these outputs always have (serde_json's map).
use rxray_engine::firewall::rules::ListReport;
use rxray_kernel::firewall::{BlockInfo, FwCounts, LimitInfo};
use serde::Serialize;
use std::collections::BTreeMap;

/// One JSON line of a record (keys sorted at every depth).
pub fn line<T: Serialize>(rec: &T) -> String {
    serde_json::to_value(rec).map(|v| v.to_string()).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// `{"summary": ...}`, the last line a command writes to stderr.
#[derive(Serialize)]
pub struct Summary<T: Serialize> {
    pub summary: T,
}

/// `rxray conns --json`: the summary at exit.
#[derive(Serialize)]
pub struct ConnsSummary {
    /// Connections whose close was reported.
    pub closed: u64,
    /// Records written (closes and live snapshots).
    pub delivered: u64,
    pub kernel: ConnsKernel,
    /// The TcpExt listen counters now (ListenOverflows, ListenDrops).
    pub listen: BTreeMap<String, u64>,
    /// The listen-related drop reasons counted since start; null when drops could not be attached.
    pub listen_drop_reasons: Option<BTreeMap<String, u64>>,
    /// The listen counters' growth since start.
    pub listen_since_start: BTreeMap<String, u64>,
    /// Readers (process and cgroup of each socket's reader) were attached.
    pub readers: bool,
    pub seconds: f64,
    /// tcp_probe (RTT and retransmits) was attached.
    pub tcp_probe: bool,
}

/// The connection programs' counters.
#[derive(Serialize)]
pub struct ConnsKernel {
    pub closed: u64,
    pub events: u64,
    pub insert_failed: u64,
    pub lost: u64,
    pub new: u64,
    pub rst_tx_nosock: u64,
    pub untracked: u64,
}

/// `rxray firewall apply --json`, when the rules are already live.
#[derive(Serialize)]
pub struct FwUnchanged<'a> {
    pub interface: &'a str,
    pub rules: usize,
    pub unchanged: bool,
}

/// `rxray firewall apply --json`, when the rules were written.
#[derive(Serialize)]
pub struct FwApplied<'a> {
    pub dry_run: bool,
    pub generation: u32,
    /// The program was installed (and pinned) by this apply.
    pub installed: bool,
    pub interface: &'a str,
    pub lists: Vec<ListReport>,
    pub rules: usize,
}

/// `rxray firewall list --json`: one object per interface.
#[derive(Serialize)]
pub struct FwList<'a, R: Serialize> {
    pub blocks: Vec<BlockInfo>,
    /// The default action of the applied rules file; null when none was applied.
    pub default: Option<&'a str>,
    pub dry_run: bool,
    pub file: Option<&'a str>,
    pub interface: &'a str,
    pub limits: Vec<LimitInfo>,
    pub rules: Option<&'a [R]>,
}

/// `rxray firewall stats --json`: one object per interface.
#[derive(Serialize)]
pub struct FwStats<'a> {
    pub counters: &'a FwCounts,
    pub interface: &'a str,
}

/// `rxray firewall test --packets --json`: one verdict per packet of the capture.
#[derive(Serialize)]
pub struct FwVerdict {
    /// The packet met no rule: the default action decided.
    pub default: bool,
    /// The packet's number in the capture, from 1.
    pub index: u64,
    /// The id of the rule that decided; null for the default or a block.
    pub rule: Option<u32>,
    pub ts_ns: u64,
    /// "drop" or "pass".
    pub verdict: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_sorted_keys_at_every_depth() {
        #[derive(Serialize)]
        struct Inner {
            b: u8,
            a: u8,
        }
        #[derive(Serialize)]
        struct Outer {
            z: Inner,
            m: Option<u8>,
        }
        assert_eq!(line(&Outer { z: Inner { b: 2, a: 1 }, m: None }), r#"{"m":null,"z":{"a":1,"b":2}}"#);
    }
}
