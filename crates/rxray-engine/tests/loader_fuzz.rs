//! The loaders of outside files, fuzzed as the filter parser is (filter_fuzz.rs): signatures,
//! threat lists (FireHOL/Spamhaus, lenient) and detector configs (JSON). Arbitrary text, token
//! soups and mutations of seeds (tests/corpus/, rules/default.rules, the default config) never
//! panic; every error points inside the text; a list that loads holds at most the allowed share
//! of bad lines. (Time and memory on huge inputs: crates/rxray/tests/bad_input.rs.)
use proptest::prelude::*;
use rxray_engine::cidr::{parse_list, CidrErrorKind, CidrSet, ParseMode, MAX_BAD_SHARE_PERCENT, MAX_KEPT_ERRORS};
use rxray_engine::detect::DetectConfig;
use rxray_engine::signatures::{load, parse::logical_lines, Vars};

fn default_config_json() -> String {
    serde_json::to_string_pretty(&DetectConfig::default()).unwrap()
}

/// Splices `ins` into `base` at `at` (in chars), deleting `del` chars.
fn mutate(base: &str, at: usize, del: usize, ins: &str) -> String {
    let base: Vec<char> = base.chars().collect();
    let at = at % (base.len() + 1);
    let end = (at + del).min(base.len());
    let mut s: String = base[..at].iter().collect();
    s.push_str(ins);
    s.extend(&base[end..]);
    s
}

fn check_signatures(text: &str) {
    let l = load(text, &Vars::default());
    let lines: Vec<&str> = text.lines().collect();
    for e in &l.errors {
        assert!(e.line >= 1 && e.line <= lines.len().max(1), "{text:?}: line {} of {}", e.line, lines.len());
        assert!(e.column >= 1, "{text:?}: column 0");
        assert!(!e.message.is_empty());
    }
    for u in &l.unsupported {
        assert!(u.line >= 1 && u.line <= lines.len().max(1));
    }
}

fn check_threat_list(text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let in_text = |line: usize, column: usize| {
        let l = lines.get(line.wrapping_sub(1)).unwrap_or_else(|| panic!("{text:?}: line {line} of {}", lines.len()));
        assert!(column >= 1 && column <= l.chars().count() + 1, "{text:?}: column {column} in {l:?}");
    };
    match CidrSet::parse(text, ParseMode::Lenient) {
        Ok((set, p)) => {
            assert!(p.bad_lines * 100 <= p.entry_lines * MAX_BAD_SHARE_PERCENT, "{text:?}: loaded with {} of {} bad", p.bad_lines, p.entry_lines);
            assert!(p.errors.len() <= MAX_KEPT_ERRORS && p.errors.len() <= p.bad_lines);
            assert_eq!(p.entries.len() + p.bad_lines, p.entry_lines);
            for e in &p.errors {
                in_text(e.line, e.column);
            }
            assert!(set.len() <= p.entries.len());
        }
        Err(errs) => {
            assert_eq!(errs.len(), 1, "lenient mode fails with one error");
            assert!(matches!(errs[0].kind, CidrErrorKind::TooManyBad { .. }), "{:?}", errs[0]);
            in_text(errs[0].line, errs[0].column);
        }
    }
    if let Err(errs) = parse_list(text, ParseMode::Strict) {
        assert!(!errs.is_empty() && errs.len() <= MAX_KEPT_ERRORS);
        for e in &errs {
            in_text(e.line, e.column);
        }
    }
}

fn check_config(text: &str) {
    match DetectConfig::from_json(text) {
        Ok(c) => assert!(c.validate().is_ok()),
        Err(e) => {
            let m = e.to_string();
            assert!(!m.is_empty());
            if let rxray_engine::detect::ConfigError::Syntax { line, column, .. } = e {
                // The end of the text counts as a place (serde_json reports an early end there).
                let lines: Vec<&str> = text.split('\n').collect();
                assert!(line >= 1 && line <= lines.len(), "{text:?}: line {line} of {}: {m}", lines.len());
                // serde_json counts columns in bytes.
                assert!(column <= lines[line - 1].len() + 1, "{text:?}: column {column}: {m}");
            }
        }
    }
}

const SIG_TOKENS: &[&str] = &[
    "alert", "tcp", "udp", "any", "->", "<>", "(", ")", ";", ":", "\"", "\\", "\\\n", "\n", "|", "content", "msg",
    "sid", "1", "nocase", "offset", "depth", "pcre", "\"/a+/i\"", "flow", "to_server", "!", "$HOME_NET", "[", "]", "80",
    "|41 42|", "threshold", "type limit, track by_src, count 1, seconds 1",
];

const LIST_TOKENS: &[&str] = &[
    "1.2.3.4", "10.0.0.0/8", "/", "33", "2001:db8::", "/129", "#", ";", " ", "\n", "\r\n", "SBL1", "x", "::", "..",
    "255.255.255.255/32", "0.0.0.0/0", "é",
];

const CONFIG_TOKENS: &[&str] = &[
    "{", "}", "[", "]", ":", ",", "\"policy\"", "\"detectors\"", "\"syn_flood\"", "\"nosuch\"", "\"response\"",
    "\"block\"", "\"flood\"", "\"syn_pps\"", "0", "1e400", "-1", "18446744073709551616", "null", "true", "\"allow\"",
    "\"10.0.0.0/8\"", "\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn signatures_arbitrary_and_mutated_never_panic(s in "\\PC{0,120}", at in 0usize..4000, del in 0usize..6, ins in "(\\PC|\\\\\n){0,4}") {
        check_signatures(&s);
        check_signatures(&mutate(include_str!("../../../rules/default.rules"), at, del, &ins));
    }

    #[test]
    fn signatures_token_soup_never_panics(words in proptest::collection::vec(proptest::sample::select(SIG_TOKENS), 0..40)) {
        check_signatures(&words.join(" "));
        check_signatures(&words.concat());
    }

    #[test]
    fn threat_lists_arbitrary_and_mutated_never_panic(s in "\\PC{0,120}", at in 0usize..200, del in 0usize..6, ins in "\\PC{0,4}") {
        check_threat_list(&s);
        check_threat_list(&mutate(include_str!("corpus/threat.netset"), at, del, &ins));
    }

    #[test]
    fn threat_list_token_soup_never_panics(words in proptest::collection::vec(proptest::sample::select(LIST_TOKENS), 0..60)) {
        check_threat_list(&words.concat());
    }

    #[test]
    fn detector_configs_mutated_never_panic(at in 0usize..4000, del in 0usize..6, ins in "\\PC{0,4}") {
        check_config(&mutate(&default_config_json(), at, del, &ins));
    }

    #[test]
    fn detector_config_token_soup_never_panics(words in proptest::collection::vec(proptest::sample::select(CONFIG_TOKENS), 0..40)) {
        check_config(&words.concat());
    }
}

/// Joining continuation lines is linear: the joined rule of n lines has the chars of n lines, and
/// an error on the last physical line is placed there, for n up to 100,000.
#[test]
fn continuations_join_linearly_and_keep_positions() {
    for n in [10usize, 1000, 100_000] {
        let mut t = String::from("alert tcp any any -> any any (msg:\"m\"; \\\n");
        for _ in 0..n {
            t.push_str("  \\\n");
        }
        t.push_str("content:\"\"; sid:1;)\n");
        let l = logical_lines(&t);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].text.chars().count(), "alert tcp any any -> any any (msg:\"m\"; ".len() + 2 * n + "content:\"\"; sid:1;)".len());
        let loaded = load(&t, &Vars::default());
        assert_eq!(loaded.errors.len(), 1);
        assert_eq!((loaded.errors[0].line, loaded.errors[0].column), (n + 2, 9), "{}", loaded.errors[0]);
    }
}
