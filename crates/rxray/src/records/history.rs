//! `rxray history --json` and `rxray investigate ADDR --json`: the store's records (or, for
//! `investigate --captures`, the engine's over a directory of captures).
use rxray_store::Records;
use schemars::JsonSchema;
use serde::Serialize;

super::record_keys!(Sorted: HistoryOut<'_>; Declared: Investigation);

/// `history --json` (keys sorted at every depth).
#[derive(Serialize, JsonSchema)]
pub struct HistoryOut<'a> {
    pub records: &'a Records,
    pub window: Window,
}

/// The window asked for, in ns since the Unix epoch.
#[derive(Serialize, JsonSchema)]
pub struct Window {
    pub since_ns: u64,
    pub until_ns: u64,
}

/// `investigate --json`. Keys in the order declared here, not sorted.
#[derive(Serialize, JsonSchema)]
pub struct Investigation {
    pub addr: String,
    pub since_ns: u64,
    pub until_ns: u64,
    /// `store` or `captures`.
    pub source: String,
    pub records: Records,
    /// The flight-recorder files that hold the address's packets (its alerts' captures).
    pub recordings: Vec<String>,
    pub timeline: Vec<TimelineEntry>,
}

/// One line of the timeline.
#[derive(Serialize, JsonSchema)]
pub struct TimelineEntry {
    pub ts_ns: u64,
    pub line: String,
}
