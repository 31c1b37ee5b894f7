//! `rxray drops --json`: one line per drop on stdout, the counts per reason every interval, the
//! summary on stderr at exit.
use schemars::JsonSchema;
use serde::Serialize;
use std::{collections::BTreeMap, net::IpAddr};

super::record_keys!(Declared: DropRecord; Sorted: DropCounts, DropsSummary);

/// One drop. Keys in the order declared here, not sorted.
#[derive(Serialize, JsonSchema, Clone, Debug)]
pub struct DropRecord {
    pub ts_ns: u64,
    pub iface: String,
    pub ifindex: u32,
    /// The kernel's enum skb_drop_reason name (`reason_N` when the BTF has no name for it).
    pub reason: String,
    pub reason_code: u32,
    /// `function+0xoff`, or the hex address when kallsyms is not readable.
    pub location: String,
    pub len: u32,
    /// Ethertype (skb->protocol).
    pub protocol: u16,
    pub ip_ver: u8,
    pub proto: u8,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
}

/// `--interval`: the kernel's counts so far.
#[derive(Serialize, JsonSchema)]
pub struct DropCounts {
    /// Drops per reason (the last slot, `OTHER`, also counts every larger reason).
    pub counts: BTreeMap<String, u64>,
    pub drops: u64,
    pub lost: u64,
    /// When the counts were read (the text's clock); not in the JSON.
    #[serde(skip)]
    #[schemars(skip)]
    pub now_ns: u64,
    /// The text table's rows (a slot per reason, as the kernel counts them); not in the JSON.
    #[serde(skip)]
    #[schemars(skip)]
    pub rows: Vec<(String, u64)>,
}

impl DropCounts {
    pub fn new(now_ns: u64, rows: Vec<(String, u64)>, drops: u64, lost: u64) -> Self {
        DropCounts { counts: rows.iter().cloned().collect(), drops, lost, now_ns, rows }
    }
}

/// Drops of one flow and reason.
#[derive(Serialize, JsonSchema)]
pub struct DropFlow {
    pub dport: u16,
    pub drops: u64,
    pub dst: Option<IpAddr>,
    pub proto: u8,
    pub reason: String,
    pub sport: u16,
    pub src: Option<IpAddr>,
}

/// The summary at exit.
#[derive(Serialize, JsonSchema)]
pub struct DropsSummary {
    pub by_reason: BTreeMap<String, u64>,
    /// Drop events written.
    pub delivered: u64,
    pub drops: u64,
    /// Per flow and reason, most drops first.
    pub flows: Vec<DropFlow>,
    pub lost: u64,
    /// Drops the program saw but could not place in a network namespace.
    pub no_netns: u64,
    pub seconds: f64,
}
