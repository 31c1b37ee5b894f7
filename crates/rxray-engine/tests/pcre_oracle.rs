//! `pcre` against PCRE2's own test program: a generated corpus of (pattern, Suricata flags,
//! payload) cases, each loaded as a rule (none may be unsupported) and matched by rxray, and each
//! run by `pcre2test` (Debian's pcre2-utils) with the same options and match limit. The outcome
//! (the matched bytes, no match, or stopped by the match limit) must be the same for every case.
use rxray_engine::signatures::pcre::{DEPTH_LIMIT, MATCH_LIMIT};
use rxray_engine::signatures::rule::PayloadItem;
use rxray_engine::signatures::{load, Vars};
use std::fmt::Write as _;
use std::process::Command;

/// Patterns covering anchors, `$` before a final newline, `\Z` and `\z`, dot and newline, case,
/// classes, quantifiers (greedy, lazy, possessive), groups, backreferences, lookaround and
/// catastrophic backtracking.
const PATTERNS: &[&str] = &[
    r"evil$",
    r"^evil",
    r"evil\Z",
    r"evil\z",
    r"^evil$",
    r"\Aevil",
    r"a.c",
    r"^b$",
    r"^$",
    r"(a+)+$",
    r"(a|aa)+b",
    r"\bfoo\b",
    r"[a-z]+\d",
    r"ABC",
    r"a{2,4}",
    r"x*y",
    r"(ab|cd)+e",
    r"\x41\x42",
    r"a b c",
    r"(a)\1",
    r"a(?=b)",
    r"(?<!x)b",
    r"a++b",
    r".+",
    r".*?c",
    r"a.+?c",
    r"\s+",
    r"[^\n]+$",
    r"\d{3}-\d{4}",
    r"select\s+\w+",
    r"%27",
    r"(?:or|and)\s+\d=\d",
    r"\/etc\/passwd",
    r"\xff",
    r"[\x80-\xff]+",
    r"(?i)EvIl",
    r"e.i.$",
    r"^.*$",
    r"(?>a+)b",
    r"c$\n?",
];

/// Suricata flag sets: every modifier alone and in combinations. `R`, `B`, `O` and the buffer
/// flags (`U`) do not change what the pattern matches in a given buffer.
const FLAGS: &[&str] = &[
    "", "i", "s", "m", "x", "A", "E", "G", "R", "B", "O", "U", "is", "im", "ms", "mE", "sE", "iG", "xA", "ismx", "AEG", "sG", "iAE", "mG",
];

const PAYLOADS: &[&[u8]] = &[
    b"evil",
    b"evil\n",
    b"evil\n\n",
    b"xevil\n",
    b"EVIL\n",
    b"a\nc",
    b"abc",
    b"ab\nb\nc",
    b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!",
    b"foo bar",
    b"1' or 1=1",
    b"GET /etc/passwd HTTP/1.1\r\n",
    b"aab",
    b"cdcde",
    b"select  name",
    b"555-1234\n",
    b"\xff\x80abc\n",
];

/// pcre2test's options for Suricata's flags (`None` for the flags that do not change matching).
fn modifiers(flags: &str) -> String {
    let mut letters = String::new();
    let mut words = Vec::new();
    for f in flags.chars() {
        match f {
            'i' | 's' | 'm' | 'x' => letters.push(f),
            'A' => words.push("anchored"),
            'E' => words.push("dollar_endonly"),
            'G' => words.push("ungreedy"),
            _ => {}
        }
    }
    let mut all: Vec<String> = Vec::new();
    if !letters.is_empty() {
        all.push(letters);
    }
    all.extend(words.into_iter().map(String::from));
    all.push("jit".into());
    all.join(",")
}

/// How pcre2test prints matched bytes (8-bit, no UTF).
fn shown(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        if (0x20..0x7f).contains(&c) {
            s.push(c as char);
        } else {
            let _ = write!(s, "\\x{c:02x}");
        }
    }
    s
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Match(String),
    NoMatch,
    Limit,
}

#[test]
fn pcre_matches_what_pcre2test_matches() {
    if Command::new("pcre2test").arg("-version").output().is_err() {
        rxray_lab::testing::skip_or_fail("pcre2test is not installed (Debian's pcre2-utils; scripts/test installs it)");
        return;
    }
    let mut input = String::new();
    let mut ours: Vec<Outcome> = Vec::new();
    let mut cases = Vec::new();
    let mut limit_hits = 0u64;
    for pat in PATTERNS {
        for flags in FLAGS {
            // Every case loads as a rule: none is unsupported, none is an error.
            let rule = format!("alert tcp any any -> any any (pcre:\"/{pat}/{flags}\"; sid:1;)");
            let l = load(&rule, &Vars::default());
            assert!(l.errors.is_empty() && l.unsupported.is_empty(), "{rule}: {:?} {:?}", l.errors, l.unsupported);
            let r = &l.set.rules()[0];
            let item = r.payload.iter().chain(r.http.iter().flat_map(|(_, v)| v.iter())).next().expect("the pcre item");
            let PayloadItem::Pcre(p) = item else { panic!("{rule}: not a pcre") };
            let delim = ['/', '!', '"', '%', ',', '@', '~', '|'].into_iter().find(|d| !pat.contains(*d)).expect("a delimiter");
            let _ = writeln!(input, "{delim}{pat}{delim}{}", modifiers(flags));
            for payload in PAYLOADS {
                let mut subj = String::from("    ");
                for b in *payload {
                    let _ = write!(subj, "\\x{{{b:02x}}}");
                }
                let _ = writeln!(subj, "\\=match_limit={MATCH_LIMIT},depth_limit={DEPTH_LIMIT}");
                input.push_str(&subj);
                let before = p.regex.limit_hits();
                ours.push(match p.regex.find_at(payload, 0) {
                    Ok(Some((s, e))) => Outcome::Match(shown(&payload[s..e])),
                    Ok(None) => Outcome::NoMatch,
                    Err(_) => Outcome::Limit,
                });
                limit_hits += p.regex.limit_hits() - before;
                cases.push((pat, flags, payload));
            }
            input.push('\n');
        }
    }
    assert!(cases.len() >= 2000, "{} cases", cases.len());
    let dir = std::env::temp_dir().join(format!("rxray-pcre-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("corpus.in");
    std::fs::write(&file, &input).unwrap();
    let o = Command::new("pcre2test").arg(&file).output().expect("pcre2test");
    let out = String::from_utf8_lossy(&o.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    // Results in input order: " 0: ..." (captures " 1:" ... follow), "No match" or "Failed: error -N".
    let mut theirs: Vec<Outcome> = Vec::new();
    for line in out.lines() {
        if let Some(m) = line.strip_prefix(" 0: ") {
            theirs.push(Outcome::Match(m.to_string()));
        } else if line == " 0: " || line == " 0:" {
            theirs.push(Outcome::Match(String::new()));
        } else if line == "No match" {
            theirs.push(Outcome::NoMatch);
        } else if let Some(e) = line.strip_prefix("Failed: error ") {
            let code: i32 = e.split(':').next().and_then(|c| c.trim().parse().ok()).unwrap_or(0);
            assert!(matches!(code, -47 | -53 | -46 | -63), "pcre2test: {line}");
            theirs.push(Outcome::Limit);
        } else if line.starts_with("Failed:") || line.starts_with("**") {
            panic!("pcre2test did not take the corpus: {line}");
        }
    }
    assert_eq!(theirs.len(), ours.len(), "pcre2test gave {} results for {} cases", theirs.len(), ours.len());
    let mut wrong = Vec::new();
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        if a != b {
            let (pat, flags, payload) = cases[i];
            wrong.push(format!("/{pat}/{flags} on {:?}: rxray {a:?}, pcre2test {b:?}", shown(payload)));
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases differ:\n{}", wrong.len(), ours.len(), wrong[..wrong.len().min(30)].join("\n"));
    // The catastrophic patterns were stopped by the limit, counted, on both sides alike.
    let stopped = theirs.iter().filter(|o| **o == Outcome::Limit).count() as u64;
    assert!(stopped > 0 && stopped == limit_hits, "limit: pcre2test {stopped}, rxray counted {limit_hits}");
    let matched = theirs.iter().filter(|o| matches!(o, Outcome::Match(_))).count();
    let missed = theirs.iter().filter(|o| **o == Outcome::NoMatch).count();
    assert!(matched > 1000 && missed > 1000, "the corpus has both outcomes: {matched} matches, {missed} misses");
    println!("{} cases: {matched} matches, {missed} no match, {stopped} stopped by the match limit, all as pcre2test", ours.len());
}
