//! HTTP/1.x at the byte level: request and response heads (parsed by `httparse`), the body framing
//! they announce (RFC 9112 §6), and a streaming chunked-body walker. No I/O; streams live in the engine.
use std::str;

/// How many headers a head may carry before it is refused (httparse needs a fixed array).
pub const MAX_HEADERS: usize = 96;

/// How the body after a head is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (a request without length, 1xx/204/304, or a response to HEAD).
    None,
    /// Exactly this many bytes (Content-Length).
    Length(u64),
    /// Transfer-Encoding ending in chunked.
    Chunked,
    /// A response with neither: the body runs until the connection closes.
    UntilClose,
}

/// Why a head was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// httparse refused the bytes (bad token, bad version, bad header line, too many headers).
    Syntax(&'static str),
    /// Content-Length that is not a number, or several that disagree (RFC 9112 §6.3 item 5).
    BadContentLength,
}

impl HeadError {
    pub fn name(self) -> &'static str {
        match self {
            HeadError::Syntax(s) => s,
            HeadError::BadContentLength => "bad_content_length",
        }
    }
}

/// A parse attempt on the bytes of a stream that start where a head should start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Head<T> {
    /// The bytes so far are a valid prefix; more are needed.
    Partial,
    Complete(T),
    Invalid(HeadError),
}

/// A request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// The request target as sent (origin form `/path?q`, absolute form, `*`, or authority form).
    pub target: &'a str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Bytes of the head, final CRLF included.
    pub head_len: usize,
    pub body: BodyFraming,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
    /// The connection ends after this exchange (`Connection: close`, or HTTP/1.0 without keep-alive).
    pub close: bool,
}

/// A response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub minor: u8,
    pub head_len: usize,
    /// The framing the head announces, before the request's method is known: a response to HEAD
    /// (and a 2xx to CONNECT) has no body whatever it says; see [`response_framing`].
    pub body: BodyFraming,
    pub close: bool,
}

fn syntax(e: httparse::Error) -> HeadError {
    HeadError::Syntax(match e {
        httparse::Error::HeaderName => "bad_header_name",
        httparse::Error::HeaderValue => "bad_header_value",
        httparse::Error::NewLine => "bad_new_line",
        httparse::Error::Status => "bad_status",
        httparse::Error::Token => "bad_token",
        httparse::Error::TooManyHeaders => "too_many_headers",
        httparse::Error::Version => "bad_version",
    })
}

/// What the headers say about framing and the connection.
struct HeaderFacts {
    length: Option<u64>,
    chunked: bool,
    /// Transfer-Encoding present (any coding).
    transfer_encoding: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

fn header_facts(headers: &[httparse::Header<'_>]) -> Result<HeaderFacts, HeadError> {
    let mut f = HeaderFacts { length: None, chunked: false, transfer_encoding: false, close: false, keep_alive: false, expect_continue: false };
    for h in headers {
        let v = h.value;
        if h.name.eq_ignore_ascii_case("content-length") {
            // A list of equal values is allowed; anything else is refused.
            for part in v.split(|b| *b == b',') {
                let t = trim(part);
                if t.is_empty() || t.len() > 19 || !t.iter().all(u8::is_ascii_digit) {
                    return Err(HeadError::BadContentLength);
                }
                let n = t.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0'));
                if f.length.is_some_and(|m| m != n) {
                    return Err(HeadError::BadContentLength);
                }
                f.length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            f.transfer_encoding = true;
            // Chunked counts only as the final coding.
            let last = v.rsplit(|b| *b == b',').next().map(trim).unwrap_or_default();
            f.chunked = last.eq_ignore_ascii_case(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            for t in v.split(|b| *b == b',').map(trim) {
                f.close |= t.eq_ignore_ascii_case(b"close");
                f.keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if h.name.eq_ignore_ascii_case("expect") {
            f.expect_continue |= trim(v).eq_ignore_ascii_case(b"100-continue");
        }
    }
    Ok(f)
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let e = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(s, |i| i + 1);
    &b[s..e.max(s)]
}

/// Parses a request head at the start of `buf`.
pub fn parse_request(buf: &[u8]) -> Head<RequestHead<'_>> {
    // Uninitialised header slots: httparse writes only those it fills (no 3 KiB memset per head).
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Partial) => return Head::Partial,
        Ok(httparse::Status::Complete(n)) => n,
        Err(e) => return Head::Invalid(syntax(e)),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Head::Invalid(HeadError::Syntax("bad_token"));
    };
    let f = match header_facts(req.headers) {
        Ok(f) => f,
        Err(e) => return Head::Invalid(e),
    };
    // RFC 9112 §6.3: chunked wins over Content-Length; a request without either has no body.
    let body = if f.chunked {
        BodyFraming::Chunked
    } else {
        match f.length {
            Some(0) | None => BodyFraming::None,
            Some(n) => BodyFraming::Length(n),
        }
    };
    let close = f.close || (minor == 0 && !f.keep_alive);
    Head::Complete(RequestHead { method, target, minor, head_len, body, expect_continue: f.expect_continue, close })
}

/// Parses a response head at the start of `buf`.
pub fn parse_response(buf: &[u8]) -> Head<ResponseHead> {
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let head_len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut headers) {
        Ok(httparse::Status::Partial) => return Head::Partial,
        Ok(httparse::Status::Complete(n)) => n,
        Err(e) => return Head::Invalid(syntax(e)),
    };
    let (Some(status), Some(minor)) = (resp.code, resp.version) else {
        return Head::Invalid(HeadError::Syntax("bad_status"));
    };
    let f = match header_facts(resp.headers) {
        Ok(f) => f,
        Err(e) => return Head::Invalid(e),
    };
    let body = if (100..200).contains(&status) || status == 204 || status == 304 {
        BodyFraming::None
    } else if f.chunked {
        BodyFraming::Chunked
    } else if f.transfer_encoding {
        // A response with a non-chunked final coding runs until close (RFC 9112 §6.3 item 4).
        BodyFraming::UntilClose
    } else {
        match f.length {
            Some(0) => BodyFraming::None,
            Some(n) => BodyFraming::Length(n),
            None => BodyFraming::UntilClose,
        }
    };
    let close = f.close || (minor == 0 && !f.keep_alive);
    Head::Complete(ResponseHead { status, minor, head_len, body, close })
}

/// The framing of a response body once the request's method is known.
pub fn response_framing(head: &ResponseHead, request_method: &str) -> BodyFraming {
    if request_method.eq_ignore_ascii_case("HEAD") || (request_method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&head.status)) {
        BodyFraming::None
    } else {
        head.body
    }
}

/// Whether `buf` (bytes at a TCP segment boundary after a loss) plausibly starts a request:
/// `METHOD SP target SP HTTP/1.x CRLF`, or a prefix of that line when the segment ends before it
/// does (a method in capitals, a target starting with `/`, `*` or a scheme, no control bytes).
/// Body bytes almost never look like this, so resynchronising on it does not misparse a body.
pub fn starts_request(buf: &[u8]) -> bool {
    let head = &buf[..buf.len().min(8192)];
    let (line, complete) = match memchr_lf(head) {
        Some(eol) => (head[..eol].strip_suffix(b"\r").unwrap_or(&head[..eol]), true),
        None => (head.strip_suffix(b"\r").unwrap_or(head), false),
    };
    if line.iter().any(|c| c.is_ascii_control()) {
        return false;
    }
    let mut parts = line.splitn(3, |b| *b == b' ');
    let (Some(m), Some(t)) = (parts.next(), parts.next()) else { return false };
    let v = parts.next();
    let method_ok = (1..=20).contains(&m.len()) && m.iter().all(|c| c.is_ascii_uppercase() || *c == b'-' || *c == b'_');
    let target_ok = matches!(t.first(), Some(b'/' | b'*' | b'h')) || (!complete && v.is_none() && t.is_empty());
    let version_ok = match (v, complete) {
        (Some(v), true) => v == b"HTTP/1.1" || v == b"HTTP/1.0",
        (Some(v), false) => v.len() <= 8 && (b"HTTP/1.1".starts_with(v) || b"HTTP/1.0".starts_with(v)),
        (None, complete) => !complete,
    };
    method_ok && target_ok && version_ok && (complete || m.len() + 1 < line.len())
}

/// The request line at the start of a payload (without its line end), when the payload starts a
/// request; a line cut short by the payload's end ends in `...`. For showing, not for parsing.
pub fn request_line(payload: &[u8]) -> Option<String> {
    if !starts_request(payload) {
        return None;
    }
    let head = &payload[..payload.len().min(8192)];
    Some(match memchr_lf(head) {
        Some(eol) => String::from_utf8_lossy(head[..eol].strip_suffix(b"\r").unwrap_or(&head[..eol])).into_owned(),
        None => format!("{}...", String::from_utf8_lossy(head.strip_suffix(b"\r").unwrap_or(head))),
    })
}

/// Whether `buf` plausibly starts a response: `HTTP/1.x NNN`.
pub fn starts_response(buf: &[u8]) -> bool {
    buf.len() >= 12 && (buf.starts_with(b"HTTP/1.1 ") || buf.starts_with(b"HTTP/1.0 ")) && buf[9..12].iter().all(u8::is_ascii_digit)
}

fn memchr_lf(b: &[u8]) -> Option<usize> {
    b.iter().position(|c| *c == b'\n')
}

/// Where a chunked body's walk stands. Written by hand rather than buffering whole chunk-size lines
/// for `httparse::parse_chunk_size`: segments may split a size line anywhere, and this walks byte by
/// byte with no buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    Size { value: u64, digits: u8 },
    Ext { value: u64 },
    SizeLf { value: u64 },
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    EndLf,
    Done,
}

/// Malformed chunked framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkError;

/// The header fields of a complete request or response head (name, value bytes), in order; empty
/// when `head` is neither. For the checks that read headers after the head was framed.
pub fn head_headers(head: &[u8]) -> Vec<(&str, &[u8])> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    if req.parse(head).is_ok_and(|s| s.is_complete()) {
        return req.headers.iter().map(|h| (h.name, h.value)).collect();
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    if resp.parse(head).is_ok_and(|s| s.is_complete()) {
        return resp.headers.iter().map(|h| (h.name, h.value)).collect();
    }
    Vec::new()
}

/// A streaming walker over a chunked body: feed it the bytes after the head, in pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunked {
    state: ChunkState,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked { state: ChunkState::Size { value: 0, digits: 0 } }
    }
}

impl Chunked {
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Walks `buf`; returns how many bytes belong to the body (all of `buf` unless the body ends
    /// inside it: then the rest starts the next message).
    pub fn feed(&mut self, buf: &[u8]) -> Result<usize, ChunkError> {
        self.feed_into(buf, None)
    }

    /// Like [`feed`](Self::feed), appending the chunks' data (the body without its framing) to
    /// `out` while `out` is shorter than `max`; returns whether data had to be left out.
    pub fn feed_collect(&mut self, buf: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(usize, bool), ChunkError> {
        let mut cut = false;
        let n = self.feed_into(buf, Some((out, max, &mut cut)))?;
        Ok((n, cut))
    }

    fn feed_into(&mut self, buf: &[u8], mut sink: Option<(&mut Vec<u8>, usize, &mut bool)>) -> Result<usize, ChunkError> {
        use ChunkState::*;
        let mut i = 0;
        while i < buf.len() {
            if self.state == Done {
                return Ok(i);
            }
            if let Data(rem) = self.state {
                let take = rem.min((buf.len() - i) as u64);
                if let Some((out, max, cut)) = sink.as_mut() {
                    let room = max.saturating_sub(out.len());
                    let data = &buf[i..i + take as usize];
                    out.extend_from_slice(&data[..data.len().min(room)]);
                    if data.len() > room {
                        **cut = true;
                    }
                }
                i += take as usize;
                self.state = if rem == take { DataCr } else { Data(rem - take) };
                continue;
            }
            let c = buf[i];
            i += 1;
            self.state = match (self.state, c) {
                (Size { value, digits }, c) if c.is_ascii_hexdigit() => {
                    if digits >= 15 {
                        return Err(ChunkError);
                    }
                    let d = (c as char).to_digit(16).unwrap_or(0) as u64;
                    Size { value: value * 16 + d, digits: digits + 1 }
                }
                (Size { digits: 0, .. }, _) => return Err(ChunkError),
                (Size { value, .. }, b';' | b' ' | b'\t') => Ext { value },
                (Size { value, .. }, b'\r') => SizeLf { value },
                (Size { value, .. }, b'\n') => after_size(value),
                (Size { .. }, _) => return Err(ChunkError),
                (Ext { value }, b'\r') => SizeLf { value },
                (Ext { value }, b'\n') => after_size(value),
                (Ext { value }, _) => Ext { value },
                (SizeLf { value }, b'\n') => after_size(value),
                (SizeLf { .. }, _) => return Err(ChunkError),
                (DataCr, b'\r') => DataLf,
                (DataCr, b'\n') | (DataLf, b'\n') => Size { value: 0, digits: 0 },
                (DataCr, _) | (DataLf, _) => return Err(ChunkError),
                (TrailerStart, b'\r') => EndLf,
                (TrailerStart, b'\n') | (EndLf, b'\n') => Done,
                (TrailerStart, _) => Trailer,
                (Trailer, b'\n') => TrailerStart,
                (Trailer, _) => Trailer,
                (EndLf, _) => return Err(ChunkError),
                (Data(_), _) | (Done, _) => unreachable_state(),
            };
        }
        Ok(i)
    }

    /// Skips `n` bytes the stream lost (a gap) when they fall inside one chunk's data, where the
    /// framing survives; returns false when the gap touches framing bytes (the body is then lost).
    pub fn skip(&mut self, n: u64) -> bool {
        match self.state {
            ChunkState::Data(rem) if n <= rem => {
                self.state = if n == rem { ChunkState::DataCr } else { ChunkState::Data(rem - n) };
                true
            }
            _ => n == 0,
        }
    }
}

fn after_size(value: u64) -> ChunkState {
    if value == 0 {
        ChunkState::TrailerStart
    } else {
        ChunkState::Data(value)
    }
}

fn unreachable_state() -> ChunkState {
    // Data and Done are handled before a byte is taken; kept total rather than panicking.
    ChunkState::Done
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod head_header_tests {
    #[test]
    fn headers_of_requests_and_responses() {
        let h = super::head_headers(b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n");
        assert_eq!(h, [("Host", &b"x"[..]), ("Content-Type", &b"application/json"[..])]);
        let h = super::head_headers(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(h, [("Content-Length", &b"0"[..])]);
        assert!(super::head_headers(b"garbage").is_empty());
    }
}
