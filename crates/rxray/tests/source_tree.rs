//! The binary is thin (DESIGN.md, "One direction of flow"): this test reads crates/rxray/src (every
//! folder) and fails when a module there uses the kernel's ABI module or decodes bytes (that is the sources'
//! job: rxray-kernel, rxray-io), or reads /proc or /sys or runs a process (an injected OS input's
//! job), the demo's lab aside. What has not moved yet is listed in `NOT_YET_MOVED`, which may only
//! shrink: an entry that no longer matches anything fails the test too.
use std::path::Path;

/// A rule: its name, and the patterns (searched in code, comments left out) that break it.
const RULES: &[(&str, &[&str])] = &[
    ("uses the ABI module", &["rxray_kernel::abi", "abi::", "use rxray_kernel::{abi", "{abi,", " abi}"]),
    (
        "decodes bytes",
        &["from_bytes(", "from_le_bytes", "from_be_bytes", "from_ne_bytes", "read_unaligned", "transmute", "CapHdr", "PktEvent", "::split(&"],
    ),
    ("reads /proc or /sys", &["\"/proc", "\"/sys", "format!(\"/proc", "format!(\"/sys"]),
    ("runs a process", &["Command::new", "process::Command"]),
];

/// Modules exempt from the OS rules (not from the ABI ones): the demo's lab builds namespaces and
/// runs ping by design.
const OS_EXEMPT: &[&str] = &["lab.rs"];

/// (module, rule): what is still to move to an injected OS interface (issue 13, step 2 and 3).
const NOT_YET_MOVED: &[(&str, &str)] = &[];

/// (module, rule, reason): bytes that are rxray's own, not the kernel's or the wire's.
const BYTES_EXEMPT: &[(&str, &str, &str)] = &[
    ("join/mod.rs", "decodes bytes", "the join socket's frames: rxray's own protocol with the agent"),
    ("join/views.rs", "decodes bytes", "the join socket's capture records, which the agent framed"),
];

/// The code of a file with `//` comments removed (a rule names code, not prose).
fn code_of(text: &str) -> String {
    text.lines().map(|l| l.find("//").map_or(l, |i| &l[..i])).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_binary_decodes_no_bytes_and_reads_no_os_state() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found: Vec<(String, &str, String)> = Vec::new();
    // Every folder: the joined views and the records are the binary too.
    let mut files = Vec::new();
    rust_files(&src, "", &mut files);
    for must in ["main.rs", "agent.rs", "join/hub.rs", "join/views.rs", "records/http.rs", "sinks/eve.rs"] {
        assert!(files.iter().any(|f| f == must), "the walk of {} missed {must}: {files:?}", src.display());
    }
    for name in &files {
        let code = code_of(&std::fs::read_to_string(src.join(name)).unwrap());
        for (rule, pats) in RULES {
            let os_rule = rule.starts_with("reads") || rule.starts_with("runs");
            if os_rule && OS_EXEMPT.contains(&name.as_str()) {
                continue;
            }
            if BYTES_EXEMPT.iter().any(|(f, r, _)| f == name && r == rule) {
                continue;
            }
            if let Some(p) = pats.iter().find(|p| code.contains(*p)) {
                found.push((name.clone(), rule, p.to_string()));
            }
        }
    }
    let bad: Vec<String> = found
        .iter()
        .filter(|(f, r, _)| !NOT_YET_MOVED.contains(&(f.as_str(), *r)))
        .map(|(f, r, p)| format!("crates/rxray/src/{f} {r} ({p:?})"))
        .collect();
    assert!(bad.is_empty(), "the binary must stay thin; move these to a source or an OS input:\n{}", bad.join("\n"));
    let stale: Vec<String> = NOT_YET_MOVED
        .iter()
        .filter(|(f, r)| !found.iter().any(|(ff, rr, _)| ff == f && rr == r))
        .map(|(f, r)| format!("{f}: {r}"))
        .collect();
    assert!(stale.is_empty(), "moved already: remove from NOT_YET_MOVED:\n{}", stale.join("\n"));
    let stale: Vec<String> = BYTES_EXEMPT
        .iter()
        .filter(|(f, r, _)| {
            let code = code_of(&std::fs::read_to_string(src.join(f)).unwrap_or_default());
            let pats = RULES.iter().find(|(n, _)| n == r).map_or(&[][..], |(_, p)| *p);
            !pats.iter().any(|p| code.contains(p))
        })
        .map(|(f, r, _)| format!("{f}: {r}"))
        .collect();
    assert!(stale.is_empty(), "no longer there: remove from BYTES_EXEMPT:\n{}", stale.join("\n"));
}

/// JSON output has one shape, written once: a typed record (`records`, `records/`) given to a
/// sink (`sinks.rs`, `sinks/`). Elsewhere in crates/rxray/src (every folder) no module builds a
/// `json!` tree or serializes JSON itself, except what is listed here with its reason.
const JSON_PATTERNS: &[&str] = &["json!(", "serde_json::to_writer", "serde_json::to_string", "serde_json::to_vec", "records::line("];
/// Where JSON is written: the records and the sinks (paths under crates/rxray/src).
const JSON_HOMES: &[&str] = &["records.rs", "records/", "sinks.rs", "sinks/"];
const JSON_EXEMPT: &[(&str, &str)] = &[
    ("firewall.rs", "serde_json::to_writer"), // its state file (the applied rules), not an output
    ("firewall.rs", "serde_json::to_vec"),    // the same state file's metadata
    ("join/mod.rs", "serde_json::to_string"), // its test: a join request round-trips
    ("join/top_view.rs", "serde_json::to_vec"), // its test: the top panes round-trip
    ("lab.rs", "serde_json::to_string"),      // the demo's text shows an alert's evidence
    ("join/client.rs", "serde_json::to_vec"), // the join request it sends the agent (an input of the agent's)
];

/// Every .rs file under `dir`, as paths relative to it (`join/hub.rs`), sorted.
fn rust_files(dir: &Path, rel: &str, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        let name = format!("{rel}{}", p.file_name().unwrap().to_string_lossy());
        if p.is_dir() {
            rust_files(&p, &format!("{name}/"), out);
        } else if name.ends_with(".rs") {
            out.push(name);
        }
    }
    out.sort();
}

#[test]
fn json_is_written_only_by_typed_records_through_sinks() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, "", &mut files);
    for must in ["agent.rs", "join/hub.rs", "join/mod.rs", "join/views.rs", "records/http.rs", "sinks/eve.rs"] {
        assert!(files.iter().any(|f| f == must), "the walk of {} missed {must}: {files:?}", src.display());
    }
    let mut bad = Vec::new();
    for name in &files {
        if JSON_HOMES.iter().any(|h| if h.ends_with('/') { name.starts_with(h) } else { name == h }) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(src.join(name)).unwrap());
        let hits: Vec<&str> =
            JSON_PATTERNS.iter().copied().filter(|p| code.contains(p) && !JSON_EXEMPT.contains(&(name.as_str(), *p))).collect();
        if !hits.is_empty() {
            bad.push(format!("crates/rxray/src/{name}: {hits:?}"));
        }
    }
    assert!(bad.is_empty(), "give these outputs a record in crates/rxray/src/records and write it through a sink:\n{}", bad.join("\n"));
    let stale: Vec<String> = JSON_EXEMPT
        .iter()
        .filter(|(f, p)| !std::fs::read_to_string(src.join(f)).is_ok_and(|t| code_of(&t).contains(p)))
        .map(|(f, p)| format!("{f}: {p}"))
        .collect();
    assert!(stale.is_empty(), "no longer there: remove from JSON_EXEMPT:\n{}", stale.join("\n"));
}

#[test]
fn the_rules_catch_what_they_name() {
    // The patterns above, applied to lines that break each rule (and to comments, which do not).
    let samples = [
        ("let e = abi::PktEvent::from_bytes(&item);", "uses the ABI module"),
        ("let Some((h, data)) = CapHdr::split(&item) else { return };", "decodes bytes"),
        ("let x = u32::from_le_bytes(b);", "decodes bytes"),
        ("std::fs::read_to_string(\"/proc/net/tcp\")", "reads /proc or /sys"),
        ("std::fs::read_link(format!(\"/proc/{pid}/exe\"))", "reads /proc or /sys"),
        ("Command::new(\"ip\").args([\"link\"])", "runs a process"),
    ];
    for (line, rule) in samples {
        let pats = RULES.iter().find(|(r, _)| *r == rule).unwrap().1;
        assert!(pats.iter().any(|p| code_of(line).contains(p)), "{rule}: {line}");
    }
    assert!(!code_of("// reads /proc/net/tcp via abi::Conn").contains("abi::"));
}
