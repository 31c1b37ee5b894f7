//! `rxray analyze FILE... --json`: one document for every file read.
use rxray_engine::analysis::ReportStream;
use schemars::JsonSchema;
use serde::Serialize;

super::record_keys!(Declared: AnalyzeDoc<'_>);

/// The document. Keys in the order declared here, not sorted.
#[derive(Serialize, JsonSchema)]
pub struct AnalyzeDoc<'a> {
    pub files: Vec<String>,
    /// The filter and what it let through; absent without a filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterOut<'a>>,
    /// One per damaged file, naming the file and the byte offset (packets before it are kept).
    pub errors: &'a [String],
    /// The report, written a section at a time (its schema is the engine's `Report`).
    pub report: ReportStream<'a>,
}

/// The filter of an analysis.
#[derive(Serialize, JsonSchema)]
pub struct FilterOut<'a> {
    pub expr: &'a str,
    pub matched: u64,
    pub rejected: u64,
}
