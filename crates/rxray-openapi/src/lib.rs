//! rxray's OpenAPI conformance checks: loads an OpenAPI 3.0 or 3.1 document (JSON or YAML), matches
//! requests to its path templates and reports where real HTTP exchanges disagree with it. Pure: no I/O
//! but `read::read_spec_file`, no clock (times arrive on the exchanges).
//!
//! Kept out of rxray-engine because the JSON Schema validator is a heavy dependency; the engine (or
//! the binary) depends on this crate, never the other way.
pub mod check;
pub mod error;
pub mod normalize;
pub mod path;
pub mod read;
pub mod spec;
pub mod text;

pub use check::{CheckCounters, CheckLimits, Checked, Checker, Detail, Example, Exchange, Finding, FindingKey, Kind, Report};
pub use error::SpecError;
pub use path::PathMatch;
pub use spec::{Spec, Version, DEFAULT_MAX_SPEC_BYTES};

#[cfg(test)]
mod tests {
    /// A loaded spec can be shared between threads (an agent's sources and sinks).
    #[test]
    fn spec_is_send_and_sync() {
        fn ok<T: Send + Sync>() {}
        ok::<crate::Spec>();
        ok::<crate::Checker>();
    }
}
