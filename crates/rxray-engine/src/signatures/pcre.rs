//! `pcre:"/pattern/flags"` run by PCRE2 itself (the system libpcre2-8 through `pcre2-sys`, the
//! FFI layer of the `pcre2` crate, which ripgrep uses): every PCRE construct means what it means in
//! Suricata, JIT-compiled when the library has a JIT, with a match limit so a pattern with
//! catastrophic backtracking stops (and is counted) instead of hanging.
//!
//! `pcre2-sys` rather than the `pcre2` crate's safe API: that API has no match limit and no
//! ANCHORED, DOLLAR_ENDONLY or UNGREEDY option, which Suricata's `A`, `E` and `G` flags need.
use pcre2_sys::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The HTTP buffer a pcre's flag selects (Suricata's buffer modifiers), or the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BufferFlag {
    /// `U`: the normalized URI (http.uri).
    Uri,
    /// `I`: the raw URI (http.uri.raw).
    UriRaw,
    /// `P`: the request body.
    RequestBody,
    /// `Q`: the response body.
    ResponseBody,
    /// `H`: the normalized headers.
    Header,
    /// `D`: the raw headers.
    HeaderRaw,
    /// `M`: the method.
    Method,
    /// `C`: the cookie.
    Cookie,
    /// `S`: the status code.
    StatCode,
    /// `V`: the User-Agent.
    UserAgent,
    /// `W`: the host (normalized).
    Host,
}

/// What the pcre option asks for, or why it cannot be honoured.
pub struct Translated {
    pub regex: Pcre2,
    pub relative: bool,
    /// A buffer flag (`U`, `P`, `H`, ...): the pcre inspects that HTTP buffer.
    pub buffer: Option<BufferFlag>,
}

pub enum PcreError {
    /// The option text is malformed: (char offset inside the value, message).
    Syntax(usize, String),
    /// Valid PCRE that rxray cannot run.
    Unsupported(String),
}

/// Backtracking steps one match may take (PCRE2's own default is 10,000,000; Suricata's
/// `pcre.match-limit` default is 3,500): past it the search stops and counts as no match.
pub const MATCH_LIMIT: u32 = 100_000;
/// Nesting of backtracking frames one match may use.
pub const DEPTH_LIMIT: u32 = 10_000;

/// A compiled PCRE2 pattern. Cloning shares it.
#[derive(Clone)]
pub struct Pcre2 {
    inner: Arc<Inner>,
}

struct Inner {
    code: *mut pcre2_code_8,
    mctx: *mut pcre2_match_context_8,
    /// One match block, reused (a search does not allocate); the lock is uncontended.
    md: Mutex<MatchData>,
    jit: bool,
    source: String,
    /// Searches the match limit stopped.
    limit_hits: AtomicU64,
}

struct MatchData(*mut pcre2_match_data_8);

// SAFETY: the compiled code and match context are immutable after construction and PCRE2
// documents them as shareable between threads; the match data is only touched under the mutex.
unsafe impl Send for Inner {}
// SAFETY: as above.
unsafe impl Sync for Inner {}
// SAFETY: the pointer is owned by `Inner` and only used under its mutex.
unsafe impl Send for MatchData {}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: each pointer was returned by its PCRE2 constructor, is non-null (checked at
        // construction) and is freed once, here.
        unsafe {
            if let Ok(md) = self.md.get_mut() {
                pcre2_match_data_free_8(md.0);
            }
            pcre2_match_context_free_8(self.mctx);
            pcre2_code_free_8(self.code);
        }
    }
}

impl std::fmt::Debug for Pcre2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pcre2({:?}, jit: {})", self.inner.source, self.inner.jit)
    }
}

/// PCRE2's message for an error code.
fn message(code: i32) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its length; PCRE2 writes a NUL-terminated message into it.
    let n = unsafe { pcre2_get_error_message_8(code, buf.as_mut_ptr(), buf.len()) };
    if n < 0 {
        return format!("PCRE2 error {code}");
    }
    String::from_utf8_lossy(&buf[..n as usize]).into_owned()
}

/// A search that the match limit (or the depth limit) stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitHit;

impl Pcre2 {
    /// Compiles `pattern` with PCRE2 `options`; the error names the byte offset in the pattern.
    pub fn new(pattern: &str, options: u32) -> Result<Pcre2, (usize, String)> {
        let mut err: i32 = 0;
        let mut off: usize = 0;
        // SAFETY: pattern is valid for its length; err and off are writable; null contexts ask
        // for the defaults.
        let code = unsafe { pcre2_compile_8(pattern.as_ptr(), pattern.len(), options, &mut err, &mut off, std::ptr::null_mut()) };
        if code.is_null() {
            return Err((off, message(err)));
        }
        // SAFETY: code is a valid compiled pattern. A JIT failure (no JIT on this CPU, or the
        // pattern is too big for it) leaves the interpreter, which gives the same results.
        let jit = unsafe { pcre2_jit_compile_8(code, PCRE2_JIT_COMPLETE) } == 0;
        // SAFETY: null general context: default allocator.
        let mctx = unsafe { pcre2_match_context_create_8(std::ptr::null_mut()) };
        // SAFETY: as above; one pair of offsets is all a search reads.
        let md = unsafe { pcre2_match_data_create_8(1, std::ptr::null_mut()) };
        if mctx.is_null() || md.is_null() {
            // SAFETY: freeing what was allocated (the free functions accept null).
            unsafe {
                pcre2_match_context_free_8(mctx);
                pcre2_match_data_free_8(md);
                pcre2_code_free_8(code);
            }
            return Err((0, "out of memory".into()));
        }
        // SAFETY: mctx is a valid match context.
        unsafe {
            pcre2_set_match_limit_8(mctx, MATCH_LIMIT);
            pcre2_set_depth_limit_8(mctx, DEPTH_LIMIT);
        }
        Ok(Pcre2 {
            inner: Arc::new(Inner { code, mctx, md: Mutex::new(MatchData(md)), jit, source: pattern.to_string(), limit_hits: AtomicU64::new(0) }),
        })
    }

    /// The leftmost match in `hay` starting at or after `from`, as (start, end).
    pub fn find_at(&self, hay: &[u8], from: usize) -> Result<Option<(usize, usize)>, LimitHit> {
        if from > hay.len() {
            return Ok(None);
        }
        let i = &self.inner;
        let md = i.md.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: code, md and mctx are valid; hay is valid for its length and outlives the call.
        let rc = unsafe { pcre2_match_8(i.code, hay.as_ptr(), hay.len(), from, 0, md.0, i.mctx) };
        // 0: a match whose captures did not fit the one pair kept (only the whole match is read).
        if rc >= 0 {
            // SAFETY: after a successful match the ovector holds at least one pair.
            let ov = unsafe { std::slice::from_raw_parts(pcre2_get_ovector_pointer_8(md.0), 2) };
            return Ok(Some((ov[0], ov[1].max(ov[0]))));
        }
        match rc {
            PCRE2_ERROR_NOMATCH => Ok(None),
            PCRE2_ERROR_MATCHLIMIT | PCRE2_ERROR_DEPTHLIMIT | PCRE2_ERROR_HEAPLIMIT | PCRE2_ERROR_JIT_STACKLIMIT => {
                i.limit_hits.fetch_add(1, Ordering::Relaxed);
                Err(LimitHit)
            }
            // Any other error (none is expected for a valid pattern on bytes) is no match.
            _ => Ok(None),
        }
    }

    pub fn is_match(&self, hay: &[u8]) -> Result<bool, LimitHit> {
        self.find_at(hay, 0).map(|m| m.is_some())
    }

    /// Searches the match limit stopped, since the pattern was compiled.
    pub fn limit_hits(&self) -> u64 {
        self.inner.limit_hits.load(Ordering::Relaxed)
    }

    pub fn jit(&self) -> bool {
        self.inner.jit
    }
}

/// Compiled patterns are bounded so a hostile rule cannot take unbounded memory.
const MAX_PATTERN: usize = 64 * 1024;

/// `body` is the text between the quotes (after any `!`); `\;` and `\"` are escapes of the rule
/// language and are undone here before the pattern reaches PCRE2.
pub fn translate(body: &str) -> Result<Translated, PcreError> {
    let Some(rest) = body.strip_prefix('/') else {
        return Err(PcreError::Syntax(0, "pcre must look like \"/pattern/flags\"".into()));
    };
    let Some(close) = rest.rfind('/') else {
        return Err(PcreError::Syntax(body.len(), "pcre has no closing '/'".into()));
    };
    let pattern = unescape_rule_chars(&rest[..close]);
    let flags = &rest[close + 1..];
    let mut options = 0u32;
    let mut relative = false;
    let mut buffer = None;
    for (i, f) in flags.char_indices() {
        let b = match f {
            'i' => {
                options |= PCRE2_CASELESS;
                None
            }
            's' => {
                options |= PCRE2_DOTALL;
                None
            }
            'm' => {
                options |= PCRE2_MULTILINE;
                None
            }
            'x' => {
                options |= PCRE2_EXTENDED;
                None
            }
            'A' => {
                options |= PCRE2_ANCHORED;
                None
            }
            'E' => {
                options |= PCRE2_DOLLAR_ENDONLY;
                None
            }
            'G' => {
                options |= PCRE2_UNGREEDY;
                None
            }
            'R' => {
                relative = true;
                None
            }
            // `B` (rawbytes: the payload as it is) and `O` (override the configured match limit):
            // rxray always matches raw bytes and keeps its one limit.
            'B' | 'O' => None,
            'U' => Some(BufferFlag::Uri),
            'I' => Some(BufferFlag::UriRaw),
            'P' => Some(BufferFlag::RequestBody),
            'Q' => Some(BufferFlag::ResponseBody),
            'H' => Some(BufferFlag::Header),
            'D' => Some(BufferFlag::HeaderRaw),
            'M' => Some(BufferFlag::Method),
            'C' => Some(BufferFlag::Cookie),
            'S' => Some(BufferFlag::StatCode),
            'V' => Some(BufferFlag::UserAgent),
            'W' => Some(BufferFlag::Host),
            'K' | 'Y' | 'Z' => {
                return Err(PcreError::Unsupported(format!(
                    "pcre flag '{f}' selects a buffer rxray does not have (raw cookie, status message, raw host)"
                )))
            }
            _ => return Err(PcreError::Syntax(1 + close + 1 + i, format!("unknown pcre flag '{f}'"))),
        };
        if let Some(b) = b {
            if buffer.is_some_and(|x| x != b) {
                return Err(PcreError::Syntax(1 + close + 1 + i, "pcre flags select two buffers".into()));
            }
            buffer = Some(b);
        }
    }
    if pattern.len() > MAX_PATTERN {
        return Err(PcreError::Unsupported(format!("pcre pattern is {} bytes, more than {MAX_PATTERN}", pattern.len())));
    }
    let regex = Pcre2::new(&pattern, options).map_err(|(off, m)| PcreError::Syntax(1 + off.min(close), format!("pcre: {m} (at byte {off} of the pattern)")))?;
    Ok(Translated { regex, relative, buffer })
}

/// Undoes the rule language's `\;` and `\"`, keeping every other escape for PCRE2.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Translated {
        match translate(s) {
            Ok(t) => t,
            Err(PcreError::Syntax(_, m)) | Err(PcreError::Unsupported(m)) => panic!("{s}: {m}"),
        }
    }

    fn m(s: &str, hay: &[u8]) -> bool {
        ok(s).regex.is_match(hay).unwrap()
    }

    #[test]
    fn flags_mean_what_pcre_says() {
        assert!(m("/abc/i", b"xABCx"));
        assert!(!m("/a.c/", b"a\nc"));
        assert!(m("/a.c/s", b"a\nc"));
        assert!(m("/^b$/m", b"a\nb\nc"));
        assert!(m("/a b # comment\n/x", b"ab"));
        assert!(ok("/x/R").relative);
        assert!(!m("/b/A", b"ab"));
        assert!(m("/\\xff\\x00/", &[1, 0xff, 0]));
        assert!(m("/a\\;b/", b"a;b"));
        // $ matches before a final newline unless E; \Z too, \z never.
        assert!(m("/evil$/", b"evil\n"));
        assert!(!m("/evil$/E", b"evil\n"));
        assert!(m("/evil\\Z/", b"evil\n"));
        assert!(!m("/evil\\z/", b"evil\n"));
        // G: ungreedy.
        assert_eq!(ok("/a+/G").regex.find_at(b"aaa", 0).unwrap(), Some((0, 1)));
        // PCRE-only constructs load and run.
        assert!(m("/(a)\\1/", b"aa"));
        assert!(m("/a(?=b)/", b"ab"));
        assert!(m("/(?<!x)b/", b"ab"));
        assert!(m("/a++b/", b"aab"));
        assert_eq!(ok("/x/U").buffer, Some(BufferFlag::Uri));
    }

    #[test]
    fn catastrophic_backtracking_stops_at_the_limit_and_is_counted() {
        let t = ok("/(a+)+$/");
        let mut hay = vec![b'a'; 40];
        hay.push(b'!');
        assert_eq!(t.regex.find_at(&hay, 0), Err(LimitHit));
        assert_eq!(t.regex.limit_hits(), 1);
    }

    #[test]
    fn malformed_is_a_syntax_error() {
        assert!(matches!(translate("abc"), Err(PcreError::Syntax(0, _))));
        assert!(matches!(translate("/abc/q"), Err(PcreError::Syntax(5, _))));
        assert!(matches!(translate("/a(/"), Err(PcreError::Syntax(_, _))));
    }
}
