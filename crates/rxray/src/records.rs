//! The `--json` records of `conns` and `firewall` as typed serde structs: the shape of each output
//! is written here, once, instead of in `json!` trees at each print. `line` prints a record with
//! its keys in sorted order, at every depth, as these outputs always have (serde_json's map).
pub mod agent;
pub mod analyze;
pub mod drops;
pub mod flows;
pub mod history;
pub mod http;
pub mod latency;
pub mod watch;

use rxray_engine::firewall::rules::ListReport;
use rxray_kernel::firewall::{BlockInfo, FwCounts, LimitInfo, SrcLimitInfo};
use crate::sinks::{Keys, Record};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

/// One JSON line of a record (keys sorted at every depth).
pub fn line<T: Serialize + ?Sized>(rec: &T) -> String {
    serde_json::to_value(rec).map(|v| v.to_string()).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// `{"summary": ...}`, the last line a command writes to stderr.
#[derive(Serialize, JsonSchema)]
pub struct Summary<T: Serialize + JsonSchema> {
    pub summary: T,
}

impl<T: Serialize + JsonSchema> Record for Summary<T> {
    const KEYS: Keys = Keys::Sorted;
}

/// Says the key order of records: `record_keys!(Sorted: A, B<'_>; Declared: C)`.
macro_rules! record_keys {
    ($($keys:ident: $($t:ty),+);+ $(;)?) => {
        $($(impl crate::sinks::Record for $t {
            const KEYS: crate::sinks::Keys = crate::sinks::Keys::$keys;
        })+)+
    };
}
pub(crate) use record_keys;

/// `rxray conns --json`: the summary at exit.
#[derive(Serialize, JsonSchema)]
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

// `rxray conns --json`: one line per connection, the engine's record as it is.
record_keys!(Declared: rxray_engine::conns::ConnRecord; Sorted: ConnsSummary);

/// The connection programs' counters.
#[derive(Serialize, JsonSchema)]
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
#[derive(Serialize, JsonSchema)]
pub struct FwUnchanged<'a> {
    pub interface: &'a str,
    pub rules: usize,
    pub unchanged: bool,
}

/// `rxray firewall apply --json`, when the rules were written.
#[derive(Serialize, JsonSchema)]
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
#[derive(Serialize, JsonSchema)]
pub struct FwList<'a> {
    pub blocks: Vec<BlockInfo>,
    /// The default action of the applied rules file; null when none was applied.
    pub default: Option<&'a str>,
    pub dry_run: bool,
    pub file: Option<&'a str>,
    pub interface: &'a str,
    pub limits: Vec<LimitInfo>,
    /// The applied rules; null when none were applied.
    pub rules: Option<&'a [crate::firewall::MetaRule]>,
    /// Source rate limits (a client over its API limit, `alerts --api-limits --enforce`).
    pub src_limits: Vec<SrcLimitInfo>,
}

/// `rxray firewall stats --json`: one object per interface.
#[derive(Serialize, JsonSchema)]
pub struct FwStats<'a> {
    pub counters: &'a FwCounts,
    pub interface: &'a str,
}

// `rxray firewall simulate --json`, `rxray ifaces --json`, and the firewall's other records.
record_keys!(Declared: crate::firewall::SimReport, crate::ifaces::Iface; Sorted: FwUnchanged<'_>, FwApplied<'_>, FwList<'_>, FwStats<'_>, FwVerdict);

/// `rxray firewall simulate --packets --json`: one verdict per packet of the capture.
#[derive(Serialize, JsonSchema)]
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

/// The reference of every typed record (docs/json.md): the command that prints it, its name, and
/// its JSON Schema (draft 2020-12, from the structs above by schemars).
#[cfg(test)]
pub fn reference() -> Vec<(&'static str, &'static str, schemars::Schema)> {
    vec![
        ("`rxray watch --json`, one per packet (keys in declared order)", "PacketOut", schema_for::<watch::PacketOut>()),
        ("`rxray watch --json`, on stderr at exit", "Summary<WatchSummary>", schema_for::<Summary<watch::WatchSummary>>()),
        ("`rxray watch --json` joined to the agent, on stderr at exit", "Summary<WatchJoinedSummary>", schema_for::<Summary<watch::WatchJoinedSummary>>()),
        ("`rxray drops --json`, one per drop (keys in declared order)", "DropRecord", schema_for::<drops::DropRecord>()),
        ("`rxray drops --json --interval S`, every S seconds", "DropCounts", schema_for::<drops::DropCounts>()),
        ("`rxray drops --json`, on stderr at exit", "Summary<DropsSummary>", schema_for::<Summary<drops::DropsSummary>>()),
        ("`rxray flows --json`, one per interval (and by the agent for a joined `flows`)", "FlowsSnapshot", schema_for::<flows::FlowsSnapshot>()),
        ("`rxray latency --json`, one per interval and one at exit", "LatencyReport", schema_for::<latency::LatencyReport>()),
        ("`rxray latency --json`, on stderr at exit", "Summary<LatencySummary>", schema_for::<Summary<latency::LatencySummary>>()),
        ("`rxray conns --json`, one per connection (keys in declared order)", "ConnRecord", schema_for::<rxray_engine::conns::ConnRecord>()),
        ("`rxray conns --json`, on stderr at exit", "Summary<ConnsSummary>", schema_for::<Summary<ConnsSummary>>()),
        ("`rxray analyze FILE... --json`, one document (keys in declared order)", "AnalyzeDoc", schema_for::<analyze::AnalyzeDoc>()),
        ("`rxray history --json`", "HistoryOut", schema_for::<history::HistoryOut>()),
        ("`rxray investigate ADDR --json` (keys in declared order)", "Investigation", schema_for::<history::Investigation>()),
        ("`rxray firewall apply --json` when the rules are already live", "FwUnchanged", schema_for::<FwUnchanged>()),
        ("`rxray firewall apply --json`", "FwApplied", schema_for::<FwApplied>()),
        ("`rxray firewall list --json`, one per interface", "FwList", schema_for::<FwList>()),
        ("`rxray firewall stats --json`, one per interface", "FwStats", schema_for::<FwStats>()),
        ("`rxray firewall simulate --packets --json`, one per packet", "FwVerdict", schema_for::<FwVerdict>()),
        ("`rxray firewall simulate --json` (keys in declared order)", "SimReport", schema_for::<crate::firewall::SimReport>()),
        ("`rxray ifaces --json`, one per interface (keys in declared order)", "Iface", schema_for::<crate::ifaces::Iface>()),
        ("`rxray alerts`, `rxray analyze --alerts` and the agent, one per alert: Suricata's EVE `alert` record with rxray's evidence (keys in declared order)", "EveRecord", schema_for::<rxray_engine::alert::EveRecord>()),
        ("`rxray analyze FILE... --http --json`, one document (keys in declared order)", "HttpAnalyzeDoc", schema_for::<http::HttpAnalyzeDoc>()),
        ("`rxray http --json`, one per interval and one at exit (keys in declared order)", "HttpLiveSnapshot", schema_for::<http::HttpLiveSnapshot>()),
        ("`rxray status --json`", "AgentStatus", schema_for::<agent::AgentStatus>()),
        ("the agent, on its socket, to a request it cannot take (crate::join)", "AgentError", schema_for::<agent::AgentError>()),
        ("the agent, on its socket, to a joined client whose queue lost events (frame `L`)", "LostNotice", schema_for::<agent::LostNotice>()),
        ("the agent, on its socket, to a joined client as it closes (frame `S`)", "JoinSummary", schema_for::<agent::JoinSummary>()),
    ]
}

/// The schema of what `T` serializes to (schemars' serialize contract: a field skipped when
/// empty is not required, an `Option` that prints null is).
#[cfg(test)]
fn schema_for<T: JsonSchema>() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft2020_12().for_serialize().into_generator().into_root_schema_for::<T>()
}

/// docs/json.md as `reference` makes it.
#[cfg(test)]
pub fn reference_markdown() -> String {
    let mut s = String::from(
        "# rxray's typed JSON records\n\n\
         Generated from the serde structs in `crates/rxray/src/records.rs` (and the types they name) by\n\
         `RXRAY_BLESS=1 cargo test -p rxray --bin rxray records`; a test fails when this file is out of date,\n\
         and `crates/rxray/tests/json_records.rs` checks lines printed by real runs of each command\n\
         against the schemas in this file. Keys are printed sorted at every depth, except where a\n\
         record says they are in the order its struct declares them.\n\
         The agent's socket protocol (docs/agent.md) carries some of these records too.\n",
    );
    for (cmd, name, schema) in reference() {
        let json = serde_json::to_string_pretty(&schema).unwrap_or_default();
        s.push_str(&format!("\n## {name}\n\nPrinted by {cmd}.\n\n```json\n{json}\n```\n"));
    }
    s
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

    use std::path::Path;

    fn doc_path() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/json.md")
    }

    #[test]
    fn the_json_reference_in_docs_is_up_to_date() {
        let want = reference_markdown();
        if std::env::var("RXRAY_BLESS").as_deref() == Ok("1") {
            std::fs::write(doc_path(), &want).expect("writing docs/json.md");
        }
        let have = std::fs::read_to_string(doc_path()).unwrap_or_default();
        assert!(have == want, "docs/json.md is out of date: run RXRAY_BLESS=1 cargo test -p rxray --bin rxray records");
    }

    /// One example of each record, as the commands build them.
    fn examples() -> Vec<(&'static str, serde_json::Value)> {
        use rxray_kernel::firewall::FwCounterView;
        let v = |s: String| serde_json::from_str::<serde_json::Value>(&s).unwrap();
        let mut listen = BTreeMap::new();
        listen.insert("ListenDrops".to_string(), 3u64);
        let conns = ConnsSummary {
            closed: 2,
            delivered: 5,
            kernel: ConnsKernel { closed: 2, events: 9, insert_failed: 0, lost: 0, new: 3, rst_tx_nosock: 1, untracked: 0 },
            listen: listen.clone(),
            listen_drop_reasons: None,
            listen_since_start: listen,
            readers: true,
            seconds: 1.5,
            tcp_probe: false,
        };
        let counter = FwCounterView { packets: 4, bytes: 400, last_hit_s_ago: Some(0.5) };
        let counts = FwCounts { packets_seen: 9, rules: vec![counter], default: counter, blocks: FwCounterView::default(), ..Default::default() };
        let rules = [crate::firewall::MetaRule { id: 1, name: "ssh".into(), line: 3, rule: "allow tcp dport 22".into() }];
        let block = BlockInfo { id: 1, cidr: "198.18.0.0/24".into(), expires_in_s: None, packets: 1, bytes: 60 };
        let limit = LimitInfo { id: 2, dst: "198.18.0.2".into(), pps: 100, burst: 10, expires_in_s: Some(30.0), dropped: 7 };
        let iface = crate::ifaces::Iface {
            name: "veth-b".into(),
            ifindex: 2,
            state: "UP".into(),
            mac: "02:00:00:00:00:02".into(),
            driver: Some("veth".into()),
            xdp: Some(crate::ifaces::Xdp { prog_id: 7, prog_name: "rxray_xdp".into(), mode: "generic" }),
            tc_ingress: vec![crate::ifaces::Tc { prog_id: 8, prog_name: "rxray_tc".into() }],
            owner: None,
            owner_pid: None,
            stale_owner: true,
            firewall: false,
        };
        vec![
            ("Summary<ConnsSummary>", v(line(&Summary { summary: conns }))),
            ("FwUnchanged", v(line(&FwUnchanged { interface: "veth-b", rules: 3, unchanged: true }))),
            ("FwApplied", v(line(&FwApplied { dry_run: true, generation: 2, installed: false, interface: "veth-b", lists: vec![], rules: 3 }))),
            (
                "FwList",
                v(line(&FwList {
                    blocks: vec![block],
                    default: Some("deny"),
                    dry_run: false,
                    file: Some("/etc/rxray/rules"),
                    interface: "veth-b",
                    limits: vec![limit],
                    rules: Some(&rules),
                    src_limits: vec![SrcLimitInfo {
                        id: 3,
                        src: "198.18.0.1/32".into(),
                        dport: Some(8080),
                        syn_only: true,
                        rate_per_s: 20.0,
                        burst: 0,
                        expires_in_s: Some(600.0),
                        dropped: 12,
                        passed: 40,
                    }],
                })),
            ),
            ("FwStats", v(line(&FwStats { counters: &counts, interface: "veth-b" }))),
            ("FwVerdict", v(line(&FwVerdict { default: false, index: 1, rule: Some(2), ts_ns: 1, verdict: "drop" }))),
            ("Iface", serde_json::to_value(&iface).unwrap()),
        ]
    }

    #[test]
    fn an_example_of_each_record_matches_its_schema() {
        let schemas = reference();
        // Built here, these show each schema rejects a wrong type; the examples of every record
        // from real runs are checked by tests/json_records.rs.
        let ex = examples();
        for (name, value) in ex {
            let (_, _, schema) = schemas.iter().find(|(_, n, _)| *n == name).expect("a schema for each example");
            let validator = jsonschema::validator_for(schema.as_value()).expect("a valid schema");
            let errors: Vec<String> = validator.iter_errors(&value).map(|e| format!("{e} at {}", e.instance_path())).collect();
            assert!(errors.is_empty(), "{name}: {errors:?}\n{value}");
            // And a record with a field of the wrong type does not.
            let mut bad = value.clone();
            let key = bad.as_object().and_then(|o| o.keys().next().cloned()).expect("an object");
            bad[&key] = serde_json::json!({"not": "this"});
            assert!(!validator.is_valid(&bad), "{name}: the schema accepted {bad}");
        }
    }
}
