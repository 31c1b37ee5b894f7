//! `rxray watch --json`: one line per packet on stdout, the summary on stderr at exit.
use crate::context::ReaderOut;
use rxray_engine::event::Packet;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

super::record_keys!(Declared: PacketOut<'_>; Sorted: WatchSummary, WatchJoinedSummary);

/// The kernel context of one packet: the process that read its flow so far (null: none yet).
#[derive(Serialize, JsonSchema)]
pub struct PacketContext {
    pub reader: Option<ReaderOut>,
}

/// One packet: the decoded `Packet` with, unless `--no-context`, its reader. Keys in the order
/// declared here (the packet's first), not sorted.
#[derive(Serialize, JsonSchema)]
pub struct PacketOut<'a> {
    #[serde(flatten)]
    pub pkt: &'a Packet,
    #[serde(flatten)]
    pub context: Option<PacketContext>,
}

/// The summary of a standalone `watch`.
#[derive(Serialize, JsonSchema)]
pub struct WatchSummary {
    pub bytes: u64,
    /// Packets written.
    pub delivered: u64,
    /// Packets filtered out in the kernel (the trailing filter).
    pub filtered: u64,
    /// Events the ring buffer had no room for.
    pub lost: u64,
    pub malformed: u64,
    /// Malformed packets by category (only those seen).
    pub malformed_by: BTreeMap<String, u64>,
    /// Packets the program saw.
    pub packets: u64,
    pub seconds: f64,
}

/// The summary of a `watch` joined to the agent.
#[derive(Serialize, JsonSchema)]
pub struct WatchJoinedSummary {
    pub bytes: u64,
    pub delivered: u64,
    pub filtered: u64,
    /// Always true: this `watch` joined the agent.
    pub joined: bool,
    /// `lost_ring` + `lost_queue`.
    pub lost: u64,
    /// Lost in this client's queue in the agent.
    pub lost_queue: u64,
    /// Lost in the kernel's ring buffer.
    pub lost_ring: u64,
    pub malformed: u64,
    /// As the agent sent it (null when it sent none).
    pub malformed_by: serde_json::Value,
    pub packets: u64,
    pub seconds: f64,
}
