//! Reads the workspace's integration tests: every test that needs root (it reaches `need_root`, a
//! `Lab`, or a helper that does) carries `#[ignore = "needs root, namespaces and BPF"]`, so a plain
//! non-root `cargo test` shows it as not run instead of passing it silently. `scripts/test` runs
//! them with `--include-ignored`, and under CI=true one that cannot run fails.
use std::collections::{HashMap, HashSet};
use std::path::Path;

const MARK: &str = "#[ignore = \"needs root, namespaces and BPF\"]";
/// Calls that need root (directly).
const ROOT: &[&str] = &["need_root(", "Lab::", "is_root()", "Running::start", "EbpfLoader", "TestRun"];

/// `src` with the contents of comments, strings and char literals blanked (same length), so brace
/// matching and searches see code only.
fn code_only(src: &str) -> Vec<u8> {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| out[from..to.min(b.len())].iter_mut().for_each(|c| *c = b' ');
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = src[i..].find('\n').map_or(b.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = src[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
                blank(&mut out, i, end);
                i = end;
            }
            b'r' if matches!(b.get(i + 1), Some(b'#') | Some(b'"')) && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) => {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let start = i + 2 + hashes;
                let end = src[start..].find(&close).map_or(b.len(), |n| start + n + close.len());
                blank(&mut out, start, end.saturating_sub(close.len()));
                i = end;
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i + 1, j);
                i = j + 1;
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{7f}'), or a lifetime ('a), which is left alone.
                if b.get(i + 1) == Some(&b'\\') {
                    let end = src[i + 2..].find('\'').map_or(b.len(), |n| i + 2 + n + 1);
                    blank(&mut out, i + 1, end - 1);
                    i = end;
                } else if b.get(i + 2) == Some(&b'\'') {
                    out[i + 1] = b' ';
                    i += 3;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Every `fn NAME` of the file with its body (code only), and the attributes just above it.
fn functions(src: &str) -> Vec<(String, String, String)> {
    let code = code_only(src);
    let text = String::from_utf8_lossy(&code).into_owned();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(n) = text[at..].find("fn ") {
        let start = at + n;
        at = start + 3;
        if start > 0 && (code[start - 1].is_ascii_alphanumeric() || code[start - 1] == b'_') {
            continue;
        }
        let name: String = text[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let Some(open) = text[at..].find(['{', ';']).map(|k| at + k) else { break };
        if code[open] == b';' {
            continue;
        }
        let mut depth = 0;
        let mut close = open;
        for (k, &c) in code[open..].iter().enumerate() {
            depth += (c == b'{') as i32 - (c == b'}') as i32;
            if depth == 0 {
                close = open + k;
                break;
            }
        }
        let attrs_from = src[..start].rfind(['}', ';']).map_or(0, |k| k + 1);
        out.push((name, text[open..=close].to_string(), src[attrs_from..start].to_string()));
    }
    out
}

/// Whether `body` calls `name` (as `name(` or `name::`, not as the tail of a longer name).
fn calls(body: &str, name: &str) -> bool {
    body.match_indices(name).any(|(k, _)| {
        let before = body[..k].chars().next_back();
        let after = &body[k + name.len()..];
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && (after.starts_with('(') || after.starts_with("::"))
    })
}

#[test]
fn every_root_test_is_marked_ignored_with_its_reason() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut checked = 0;
    let mut unmarked = Vec::new();
    for krate in std::fs::read_dir(crates).unwrap() {
        let dir = krate.unwrap().path().join("tests");
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let common: Vec<_> = ["common/mod.rs"].iter().filter_map(|c| std::fs::read_to_string(dir.join(c)).ok()).collect();
        for e in entries {
            let path = e.unwrap().path();
            if path.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let src = std::fs::read_to_string(&path).unwrap();
            let mut fns: HashMap<String, (String, String)> = HashMap::new();
            for c in &common {
                fns.extend(functions(c).into_iter().map(|(n, b, a)| (n, (b, a))));
            }
            let here = functions(&src);
            fns.extend(here.iter().cloned().map(|(n, b, a)| (n, (b, a))));
            // Which functions reach root, directly or through a helper of this file or common/.
            let mut needs: HashSet<String> = fns.iter().filter(|(_, (b, _))| ROOT.iter().any(|r| b.contains(r))).map(|(n, _)| n.clone()).collect();
            loop {
                let more: Vec<String> = fns
                    .iter()
                    .filter(|(n, (b, _))| !needs.contains(*n) && needs.iter().any(|d| calls(b, d)))
                    .map(|(n, _)| n.clone())
                    .collect();
                if more.is_empty() {
                    break;
                }
                needs.extend(more);
            }
            for (name, _, attrs) in &here {
                if attrs.contains("#[test]") && needs.contains(name) {
                    checked += 1;
                    if !attrs.contains(MARK) {
                        unmarked.push(format!("{}: {name}", path.display()));
                    }
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} root tests found: the scan is broken");
    assert!(unmarked.is_empty(), "root tests without {MARK}:\n{}", unmarked.join("\n"));
}

#[test]
fn the_scan_sees_through_strings_comments_and_helpers() {
    let src = "fn helper() { let _ = \"}\"; need_root(); }\n// fn fake() {\n#[test]\nfn uses_helper() { let c = '{'; helper(); }\n";
    let f = functions(src);
    let names: Vec<_> = f.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["helper", "uses_helper"]);
    assert!(f[0].1.contains("need_root("));
    assert!(f[1].2.contains("#[test]") && calls(&f[1].1, "helper"));
    assert!(!calls("rxray_lab::send(x)", "lab") && calls("lab(true)", "lab") && calls("x = Lab::pair()", "Lab"));
}
