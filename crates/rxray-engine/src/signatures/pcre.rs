//! `pcre:"/pattern/flags"` translated to the `regex` crate's bytes API. PCRE features `regex`
//! does not have (backreferences, lookaround, atomic groups, possessive quantifiers, recursion,
//! conditionals, `\K`...) make the rule unsupported, with the reason, rather than match differently.
use regex::bytes::{Regex, RegexBuilder};

/// What the pcre option asks for, or why it cannot be honoured.
pub struct Translated {
    pub regex: Regex,
    pub relative: bool,
}

pub enum PcreError {
    /// The option text is malformed: (char offset inside the value, message).
    Syntax(usize, String),
    /// Valid PCRE that rxray cannot run.
    Unsupported(String),
}

/// Compiled regexes are bounded so a hostile rule cannot take unbounded memory.
const SIZE_LIMIT: usize = 1 << 20;

/// `body` is the text between the quotes (after any `!`); `\;` and `\"` are already escapes
/// of the rule language and are undone here before the pattern reaches the regex compiler.
pub fn translate(body: &str) -> Result<Translated, PcreError> {
    let Some(rest) = body.strip_prefix('/') else {
        return Err(PcreError::Syntax(0, "pcre must look like \"/pattern/flags\"".into()));
    };
    let Some(close) = rest.rfind('/') else {
        return Err(PcreError::Syntax(body.len(), "pcre has no closing '/'".into()));
    };
    let pattern = unescape_rule_chars(&rest[..close]);
    let flags = &rest[close + 1..];
    let mut inline = String::new();
    let mut relative = false;
    let mut anchored = false;
    for (i, f) in flags.char_indices() {
        match f {
            'i' | 's' | 'm' | 'x' => {
                if !inline.contains(f) {
                    inline.push(f);
                }
            }
            // PCRE_UNGREEDY (Snort/Suricata's `G`) is the regex crate's swap-greed flag.
            'G' => inline.push('U'),
            'R' => relative = true,
            'A' => anchored = true,
            // Suricata's match-limit override: a PCRE engine knob with no meaning here.
            'O' => {}
            'E' => return Err(PcreError::Unsupported("pcre flag 'E' (dollar end-only) is not supported".into())),
            'U' | 'I' | 'P' | 'Q' | 'H' | 'D' | 'M' | 'C' | 'K' | 'S' | 'Y' | 'V' | 'W' | 'Z' | 'B' => {
                return Err(PcreError::Unsupported(format!(
                    "pcre flag '{f}' selects an HTTP/app-layer buffer, which rxray signatures do not have"
                )))
            }
            _ => return Err(PcreError::Syntax(1 + close + 1 + i, format!("unknown pcre flag '{f}'"))),
        }
    }
    if let Some(feature) = unsupported_feature(&pattern) {
        return Err(PcreError::Unsupported(format!("pcre uses {feature}, which the regex crate does not support")));
    }
    // `(?-u)`: bytes, not Unicode scalar values, as PCRE without the UTF flag sees them.
    let mut full = format!("(?{inline}-u)");
    if anchored {
        full.push_str("\\A(?:");
        full.push_str(&pattern);
        full.push(')');
    } else {
        full.push_str(&pattern);
    }
    let regex = RegexBuilder::new(&full).size_limit(SIZE_LIMIT).dfa_size_limit(SIZE_LIMIT).build().map_err(|e| {
        let msg = e.to_string();
        let last = msg.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
        PcreError::Unsupported(format!("pcre cannot be compiled by the regex crate: {last}"))
    })?;
    Ok(Translated { regex, relative })
}

/// Undoes the rule language's `\;` and `\"`, keeping every other escape for the regex.
fn unescape_rule_chars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some(n @ (';' | '"')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Names the first PCRE-only construct in `p`, for a clear "unsupported" reason.
fn unsupported_feature(p: &str) -> Option<&'static str> {
    let b = p.as_bytes();
    let mut i = 0;
    let mut in_class = false;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() => {
                let n = b[i + 1];
                if !in_class {
                    match n {
                        b'1'..=b'9' => return Some("a backreference (\\N)"),
                        b'g' | b'k' => return Some("a backreference (\\g or \\k)"),
                        b'K' => return Some("\\K (match reset)"),
                        b'G' => return Some("\\G"),
                        b'Z' => return Some("\\Z"),
                        b'R' | b'X' | b'C' => return Some("a PCRE-only escape"),
                        _ => {}
                    }
                }
                i += 2;
                continue;
            }
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            b'(' if !in_class && b.get(i + 1) == Some(&b'?') => {
                let rest = &b[i + 2..];
                if rest.starts_with(b"=") || rest.starts_with(b"!") {
                    return Some("lookahead ((?= or (?!)");
                }
                if rest.starts_with(b"<=") || rest.starts_with(b"<!") {
                    return Some("lookbehind ((?<= or (?<!)");
                }
                if rest.starts_with(b">") {
                    return Some("an atomic group ((?>)");
                }
                if rest.starts_with(b"(") {
                    return Some("a conditional group ((?()");
                }
                if rest.starts_with(b"R") || rest.first().is_some_and(|c| c.is_ascii_digit()) || rest.starts_with(b"&") {
                    return Some("recursion ((?R), (?N) or (?&name))");
                }
                if rest.starts_with(b"|") {
                    return Some("a branch-reset group ((?|)");
                }
            }
            b'+' if !in_class && i > 0 && matches!(b[i - 1], b'*' | b'+' | b'?' | b'}') && !escaped(b, i - 1) => {
                return Some("a possessive quantifier (*+, ++, ?+)");
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether the byte at `i` is escaped by an odd run of backslashes before it.
fn escaped(b: &[u8], i: usize) -> bool {
    let mut n = 0;
    let mut j = i;
    while j > 0 && b[j - 1] == b'\\' {
        n += 1;
        j -= 1;
    }
    n % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Translated {
        match translate(s) {
            Ok(t) => t,
            Err(PcreError::Syntax(_, m)) | Err(PcreError::Unsupported(m)) => panic!("{s}: {m}"),
        }
    }

    fn unsupported(s: &str) -> String {
        match translate(s) {
            Err(PcreError::Unsupported(m)) => m,
            _ => panic!("{s} should be unsupported"),
        }
    }

    #[test]
    fn flags_translate() {
        assert!(ok("/abc/i").regex.is_match(b"xABCx"));
        assert!(!ok("/a.c/").regex.is_match(b"a\nc"));
        assert!(ok("/a.c/s").regex.is_match(b"a\nc"));
        assert!(ok("/^b$/m").regex.is_match(b"a\nb\nc"));
        assert!(ok("/a b # comment\n/x").regex.is_match(b"ab"));
        assert!(ok("/x/R").relative);
        assert!(!ok("/b/A").regex.is_match(b"ab"));
        // Bytes, not UTF-8: \xff matches the byte 0xff.
        assert!(ok("/\\xff\\x00/").regex.is_match(&[1, 0xff, 0]));
        assert!(ok("/a\\;b/").regex.is_match(b"a;b"));
    }

    #[test]
    fn pcre_only_features_are_named() {
        assert!(unsupported("/(a)\\1/").contains("backreference"));
        assert!(unsupported("/a(?=b)/").contains("lookahead"));
        assert!(unsupported("/(?<!a)b/").contains("lookbehind"));
        assert!(unsupported("/a++/").contains("possessive"));
        assert!(unsupported("/(?>a)/").contains("atomic"));
        assert!(unsupported("/a/U").contains("HTTP"));
        // Escaped or in a class, these are plain characters.
        assert!(ok("/[(?=]\\(?=/").regex.is_match(b"((="));
        assert!(ok("/a\\++/").regex.is_match(b"a++"));
    }

    #[test]
    fn malformed_is_a_syntax_error() {
        assert!(matches!(translate("abc"), Err(PcreError::Syntax(0, _))));
        assert!(matches!(translate("/abc/q"), Err(PcreError::Syntax(5, _))));
    }
}
