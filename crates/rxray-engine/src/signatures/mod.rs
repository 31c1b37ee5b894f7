//! Payload signatures: a subset of Suricata's rule language (parser, loader) and a matcher over
//! `Packet`s with an Aho-Corasick prefilter, per-flow handshake tracking and thresholds.
//!
//! The engine stays pure: rule text arrives as `&str` (the binary reads the file), time comes from
//! the packets. [`load`] returns the rules that loaded, plus, for every rule it skipped, either a
//! syntax error at a line and column or the sid and reason it is unsupported. See
//! docs/signatures.md for the keywords and their semantics.
pub mod addr;
pub mod app;
pub mod classtype;
pub mod decode_event;
pub mod dns;
pub mod flow;
pub mod hook;
pub mod http;
pub mod parse;
pub mod pass;
pub mod payload;
pub mod pcre;
pub mod rule;
pub mod set;
pub mod table;
pub mod threshold;
pub mod threshold_config;
pub mod tls;

pub use addr::Vars;
pub use parse::{Note, RuleError, Unsupported};
pub use rule::{Rule, RuleAction};
pub use threshold_config::ThresholdConfig;
pub use set::{CallMatch, Evidence, SigMatch, SigStats, SignatureSet};

use parse::{logical_lines, parse_rule, Outcome};
use std::collections::HashMap;

/// The outcome of loading a rule file: what loaded, and what did not and why.
pub struct Loaded {
    pub set: SignatureSet,
    /// Valid rules that use what rxray does not support, by sid.
    pub unsupported: Vec<Unsupported>,
    /// Rules that do not parse, by line and column.
    pub errors: Vec<RuleError>,
    /// Remarks about rules that did load (e.g. `http` matched as `tcp`).
    pub notes: Vec<Note>,
}

/// Parses every rule in `text` (a rules file's contents) with `vars` for `$VARIABLES`.
/// Bad rules are reported and skipped; the others load. A sid used twice keeps the first rule.
pub fn load(text: &str, vars: &Vars) -> Loaded {
    let mut rules = Vec::new();
    let mut unsupported = Vec::new();
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut seen: HashMap<u32, usize> = HashMap::new();
    for l in logical_lines(text) {
        match parse_rule(&l, vars) {
            Outcome::Loaded(rule, rule_notes) => {
                if let Some(first) = seen.get(&rule.sid) {
                    errors.push(RuleError {
                        line: rule.line,
                        column: 1,
                        message: format!("duplicate sid {} (first used at line {first}); this rule was skipped", rule.sid),
                    });
                    continue;
                }
                seen.insert(rule.sid, rule.line);
                notes.extend(rule_notes.into_iter().map(|note| Note { sid: rule.sid, line: rule.line, note }));
                rules.push(*rule);
            }
            Outcome::Unsupported(u) => unsupported.push(u),
            Outcome::Error(e) => errors.push(e),
        }
    }
    Loaded { set: SignatureSet::new(rules), unsupported, errors, notes }
}
