//! `rxray flows --json`: one snapshot of the kernel's flow table per interval (the agent renders
//! a joined `flows`'s lines with the same record).
use crate::context::{DropsOut, ReaderOut};
use rxray_engine::flows::FlowRecord;
use rxray_engine::http::TlsFacts;
use rxray_engine::source::Count;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

super::record_keys!(Sorted: FlowsSnapshot<'_>);

/// One snapshot (keys sorted at every depth).
#[derive(Serialize, JsonSchema)]
pub struct FlowsSnapshot<'a> {
    /// What the kernel context counted that it could not join; null without the context.
    pub context: Option<ContextTotals>,
    /// Every flow, in the `--sort` order.
    pub flows: Vec<FlowOut<'a>>,
    pub interfaces: Vec<IfaceCount<'a>>,
    /// Per protocol class, by name.
    pub protocols: BTreeMap<String, Count>,
    pub totals: FlowsTotals,
    pub ts_ns: u64,
}

impl std::fmt::Display for FlowsSnapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::sinks::json_line(self))
    }
}

/// The ingress program's counters.
#[derive(Serialize, JsonSchema)]
pub struct FlowsTotals {
    pub bytes: u64,
    pub events: u64,
    /// Packets not counted in a flow: the flow table was full.
    pub flow_insert_failed: u64,
    /// Flows in this snapshot.
    pub flows: usize,
    pub fragments_unattributed: u64,
    pub iface_insert_failed: u64,
    pub lost: u64,
    pub malformed: u64,
    pub packets: u64,
}

/// One interface's counters.
#[derive(Serialize, JsonSchema)]
pub struct IfaceCount<'a> {
    pub bytes: u64,
    pub iface: &'a str,
    pub ifindex: u32,
    pub packets: u64,
}

/// The kernel context's own counters.
#[derive(Serialize, JsonSchema)]
pub struct ContextTotals {
    /// Drop events the ring had no room for (their flows' drop counts are short by that many);
    /// null when drops are not attached.
    pub drop_events_lost: Option<u64>,
    /// The drop program is attached.
    pub drops: bool,
    /// Sockets in the readers table.
    pub readers: usize,
}

/// The kernel context of one flow: who read it, and what the kernel dropped of it.
#[derive(Serialize, JsonSchema)]
pub struct FlowContext {
    /// The process that read the flow's packets (null: none seen reading it).
    pub reader: Option<ReaderOut>,
    pub drops: DropsOut,
}

/// One flow: the engine's record, with its kernel context (unless `--no-context`) and TLS facts.
#[derive(Serialize, JsonSchema)]
pub struct FlowOut<'a> {
    #[serde(flatten)]
    pub flow: &'a FlowRecord,
    #[serde(flatten)]
    pub context: Option<FlowContext>,
    /// The TLS handshake of this flow's connection (with `--tls-port`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<&'a TlsFacts>,
}
