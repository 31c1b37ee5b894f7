//! The firewall's rules: the TOML rules file (`rules`), and its compilation into the tables the XDP
//! program reads (`compile`). Pure: files a rules file names (blocklists) are read through a
//! caller-supplied function, and nothing here touches the kernel.
pub mod compile;
pub mod ptable;
pub mod rules;

pub use compile::{Compiled, CompiledRule, LimitKey};
pub use rules::{parse_rules, Action, AddrMatch, FwError, Limit, Per, Rule, RuleSet};
