//! `rxray latency --json`: one report per interval (and one at exit) on stdout, the summary on
//! stderr at exit.
use rxray_engine::latency::Summary;
use schemars::JsonSchema;
use serde::Serialize;
use std::net::IpAddr;

super::record_keys!(Sorted: LatencyReport, LatencySummary);

/// One report (keys sorted at every depth).
#[derive(Serialize, JsonSchema)]
pub struct LatencyReport {
    /// Per flow, most measured first.
    pub flows: Vec<FlowLatency>,
    /// Per reading process, most measured first.
    pub processes: Vec<ProcLatency>,
    pub totals: LatencyKernel,
    pub ts_ns: u64,
}

/// The latency programs' counters.
#[derive(Serialize, JsonSchema)]
pub struct LatencyKernel {
    pub flow_insert_failed: u64,
    pub proc_insert_failed: u64,
    /// Packets seen queued (sk_data_ready).
    pub queued: u64,
    /// Packets measured (read).
    pub read: u64,
    /// Packets stamped at XDP.
    pub stamped: u64,
}

/// The summary at exit.
#[derive(Serialize, JsonSchema)]
pub struct LatencySummary {
    pub kernel: LatencyKernel,
    /// Arrival → queue is measured (the kernel has sk_data_ready).
    pub queue_stage: bool,
    pub seconds: f64,
    /// UDP is measured.
    pub udp_stage: bool,
}

/// One flow's latency.
#[derive(Serialize, JsonSchema, Clone, Debug)]
pub struct FlowLatency {
    pub proto: u8,
    pub remote: String,
    pub local: String,
    pub remote_addr: Option<IpAddr>,
    pub remote_port: u16,
    pub local_addr: Option<IpAddr>,
    pub local_port: u16,
    /// arrival → socket receive queue.
    pub queue: Summary,
    /// arrival → application read.
    pub read: Summary,
}

/// One reading process's latency.
#[derive(Serialize, JsonSchema, Clone, Debug)]
pub struct ProcLatency {
    pub pid: u32,
    pub comm: String,
    pub exe: Option<String>,
    pub cgroup_id: u64,
    pub cgroup: Option<String>,
    pub queue: Summary,
    pub read: Summary,
}
