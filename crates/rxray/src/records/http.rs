//! `rxray analyze FILE... --http --json` and `rxray http --json`: the engine's HTTP snapshot (API
//! calls per endpoint, TLS facts, OpenAPI findings) with what each command adds around it.
use rxray_engine::http::HttpSnapshot;
use rxray_kernel::http::HttpKernelTotals;
use schemars::JsonSchema;
use serde::Serialize;

super::record_keys!(Declared: HttpAnalyzeDoc<'_>, HttpLiveSnapshot<'_>);

/// `analyze --http --json`: one document for every file read. Keys in the order declared here.
#[derive(Serialize, JsonSchema)]
pub struct HttpAnalyzeDoc<'a> {
    pub files: Vec<String>,
    /// The HTTP ports (`--port`).
    pub ports: &'a [u16],
    /// The TLS ports (`--tls-port`).
    pub tls_ports: &'a [u16],
    /// One per damaged file, naming the file and the byte offset (segments before it are kept).
    pub errors: &'a [String],
    pub http: &'a HttpSnapshot,
}

/// `http --json`: one snapshot per interval, and a last one at exit (also what the agent sends a
/// joined `http --json`). Keys in the order declared here, the snapshot's between `final` and `kernel`.
#[derive(Serialize, JsonSchema)]
pub struct HttpLiveSnapshot<'a> {
    /// Wall-clock time of the snapshot, ns since the Unix epoch.
    pub ts_ns: u64,
    /// This is the last snapshot (after draining on exit).
    #[serde(rename = "final")]
    pub last: bool,
    #[serde(flatten)]
    pub http: &'a HttpSnapshot,
    /// The kernel's own counters for the HTTP copies.
    pub kernel: HttpKernelTotals,
}
