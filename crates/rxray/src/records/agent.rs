//! The agent's JSON: `rxray status --json` (what the agent runs and how complete its data is),
//! and the records of its socket protocol (crate::join): an error reply, a client's loss notice
//! and its closing summary. Keys are sorted at every depth, as these replies always were.
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

super::record_keys!(Sorted: AgentStatus, AgentError, LostNotice, JoinSummary);

/// `rxray status --json`: the agent's answer to `{"cmd":"status"}`, printed as it came.
#[derive(Serialize, JsonSchema)]
pub struct AgentStatus {
    pub clients: Vec<ClientStatus>,
    /// The config file, null when the agent runs on defaults.
    pub config: Option<String>,
    pub connections: ConnectionsStatus,
    pub detection: DetectionStatus,
    /// The drop programs' counters; null when drops are not attached.
    pub drops: Option<DropsStatus>,
    /// The firewall's rules file, null when none is applied.
    pub firewall_rules: Option<String>,
    pub host: String,
    pub interfaces: Vec<IfaceStatus>,
    pub last_reload_error: Option<String>,
    pub pid: u32,
    pub reloads: u64,
    pub reloads_rejected: u64,
    pub sinks: Vec<SinkStatus>,
    pub uptime_s: f64,
}

/// One interface the agent observes. The counters are null when they could not be read.
#[derive(Serialize, JsonSchema)]
pub struct IfaceStatus {
    pub bytes: Option<u64>,
    pub events_lost: Option<u64>,
    /// The firewall's program runs here (the agent observes through it).
    pub firewall: bool,
    /// The flow table's size; null when the agent keeps no flows.
    pub flow_capacity: Option<u32>,
    pub flow_insert_failed: Option<u64>,
    /// Flows in the table now; null when the agent keeps no flows.
    pub flows: Option<usize>,
    /// Always "xdp".
    pub hook: &'static str,
    pub ifindex: u32,
    pub interface: String,
    pub mode: String,
    pub packets: Option<u64>,
}

/// The drop programs' counters.
#[derive(Serialize, JsonSchema)]
pub struct DropsStatus {
    pub drops: u64,
    pub events_lost: u64,
}

/// Detection and what it raised, by detector.
#[derive(Serialize, JsonSchema)]
pub struct DetectionStatus {
    pub alerts: BTreeMap<String, u64>,
    pub enabled: bool,
    pub enforce: bool,
}

/// The connection programs: their counters, or why they could not be read (absent when off).
#[derive(Serialize, JsonSchema, Default)]
pub struct ConnectionsStatus {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_lost: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insert_failed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<u64>,
}

/// One sink and its health.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SinkStatus {
    /// `metrics`: the Prometheus endpoint (null when off).
    Metrics { healthy: bool, listen: Option<String>, name: &'static str },
    /// `eve`: the alerts, to standard output.
    Eve { healthy: bool, name: &'static str, to: &'static str },
    /// `store`: off.
    StoreOff { enabled: bool, healthy: bool, name: &'static str },
    /// `store`: its size, lag and retention.
    Store(StoreStatus),
}

/// The store sink's health: size, lag (batches queued, age of the newest written), retention.
#[derive(Serialize, JsonSchema)]
pub struct StoreStatus {
    pub batches_failed: u64,
    pub batches_lost: u64,
    pub batches_written: u64,
    pub dir: Option<String>,
    pub enabled: bool,
    pub healthy: bool,
    /// Seconds since the newest batch written; null before the first.
    pub lag_s: Option<f64>,
    pub last_error: Option<String>,
    /// Always "store".
    pub name: &'static str,
    pub queued: u64,
    pub retention: Retention,
    pub rows_written: u64,
    pub size_bytes: u64,
}

/// The store's retention settings.
#[derive(Serialize, JsonSchema)]
pub struct Retention {
    pub max_age_s: u64,
    pub max_bytes: u64,
    pub rollup_after_s: u64,
}

/// One joined client: its filter, queue fill and losses.
#[derive(Serialize, JsonSchema)]
pub struct ClientStatus {
    pub command: String,
    pub filter: Option<String>,
    pub filtered: u64,
    pub id: u64,
    pub interfaces: Vec<String>,
    pub joined_s: f64,
    pub json: bool,
    pub lost: u64,
    pub matched: u64,
    /// The client's process, when the socket says it.
    pub pid: Option<i32>,
    pub queue: usize,
    pub queue_capacity: usize,
    pub queue_fill: f64,
}

/// The agent's reply to a request it could not take (an unknown command, a line that is not JSON).
#[derive(Serialize, JsonSchema)]
pub struct AgentError {
    pub error: String,
}

/// A loss notice (frame `L`): the events dropped so far because the client's queue was full.
#[derive(Serialize, JsonSchema)]
pub struct LostNotice {
    pub lost: u64,
}

/// A joined client's closing summary (frame `S`): after its bye, the kernel's counts over its
/// interfaces since it joined and its own; when its view reached its count, only its own.
#[derive(Serialize, JsonSchema)]
pub struct JoinSummary {
    #[serde(flatten)]
    pub kernel: Option<JoinTotals>,
    /// Events dropped because the client's queue was full.
    pub lost_queue: u64,
    pub matched: u64,
    /// A view's closing text, for the command's standard error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The kernel's counts over a client's interfaces since it joined, and its filter's.
#[derive(Serialize, JsonSchema)]
pub struct JoinTotals {
    pub bytes: u64,
    pub capture_lost: u64,
    pub filtered: u64,
    /// The client has a filter.
    pub filtering: bool,
    pub lost_ring: u64,
    pub malformed: u64,
    pub malformed_by: BTreeMap<String, u64>,
    pub packets: u64,
}
