//! Suricata's HTTP buffers of one side of a reassembled, paired call, as the signature matcher
//! reads them. What each holds (docs/signatures.md):
//!
//! - `http.method`, `http.uri.raw` (the request-target as sent) and `http.uri` (normalized:
//!   percent-decoded, `.` and `..` path segments resolved, `+` left as it is, as libhtp's defaults);
//! - `http.header`: each header as `Name: value\r\n` (value trimmed), Cookie included;
//!   `http.header.raw`: the header lines as sent, up to and including the empty line;
//!   `http.header_names`: `\r\n` + each name + `\r\n`, then a final `\r\n`;
//! - `http.host` (lowercased, port removed) and `http.host.raw`, `http.user_agent`,
//!   `http.cookie` (Cookie in a request, Set-Cookie in a response);
//! - `http.request_body` and `http.response_body` (de-chunked, up to the body limit),
//!   `http.stat_code` and `http.stat_msg`; `file.data` is the side's body.
use super::rule::Buffer;
use crate::http::Call;
use rxray_wire::http::head_headers;

/// Every buffer of one side of a call (empty where that side has none).
#[derive(Debug, Default)]
pub struct HttpBuffers {
    pub method: Vec<u8>,
    pub uri: Vec<u8>,
    pub uri_raw: Vec<u8>,
    pub header: Vec<u8>,
    pub header_raw: Vec<u8>,
    pub header_names: Vec<u8>,
    pub host: Vec<u8>,
    pub host_raw: Vec<u8>,
    pub user_agent: Vec<u8>,
    pub cookie: Vec<u8>,
    pub stat_code: Vec<u8>,
    pub stat_msg: Vec<u8>,
    pub body: Vec<u8>,
    /// The whole message as sent (head and body): what an HTTP rule's unbuffered contents search.
    pub raw: Vec<u8>,
}

impl HttpBuffers {
    /// The request side of `c`.
    pub fn request(c: &Call) -> HttpBuffers {
        let head = &c.request.head;
        let (line, rest) = split_line(head);
        let mut parts = line.splitn(3, |&b| b == b' ');
        let method = parts.next().unwrap_or_default().to_vec();
        let target = parts.next().unwrap_or_default().to_vec();
        let mut b = HttpBuffers { method, uri: normalize_uri(&target), uri_raw: target, ..Default::default() };
        b.headers(head, rest, "cookie");
        b.body.clone_from(&c.request.body);
        b.raw = [&head[..], &c.request.body[..]].concat();
        b
    }

    /// The response side of `c`.
    pub fn response(c: &Call) -> HttpBuffers {
        let head = &c.response.head;
        let (line, rest) = split_line(head);
        let mut parts = line.splitn(3, |&b| b == b' ');
        parts.next();
        let mut b = HttpBuffers {
            stat_code: parts.next().unwrap_or_default().to_vec(),
            stat_msg: parts.next().unwrap_or_default().to_vec(),
            ..Default::default()
        };
        b.headers(head, rest, "set-cookie");
        b.body.clone_from(&c.response.body);
        b.raw = [&head[..], &c.response.body[..]].concat();
        b
    }

    fn headers(&mut self, head: &[u8], rest: &[u8], cookie: &str) {
        self.header_raw = rest.to_vec();
        self.header_names.extend_from_slice(b"\r\n");
        for (name, value) in head_headers(head) {
            let v = value.trim_ascii();
            self.header.extend_from_slice(name.as_bytes());
            self.header.extend_from_slice(b": ");
            self.header.extend_from_slice(v);
            self.header.extend_from_slice(b"\r\n");
            self.header_names.extend_from_slice(name.as_bytes());
            self.header_names.extend_from_slice(b"\r\n");
            if name.eq_ignore_ascii_case("host") && self.host_raw.is_empty() {
                self.host_raw = v.to_vec();
                self.host = normalize_host(v);
            } else if name.eq_ignore_ascii_case("user-agent") && self.user_agent.is_empty() {
                self.user_agent = v.to_vec();
            } else if name.eq_ignore_ascii_case(cookie) {
                if !self.cookie.is_empty() {
                    self.cookie.extend_from_slice(b"; ");
                }
                self.cookie.extend_from_slice(v);
            }
        }
        self.header_names.extend_from_slice(b"\r\n");
    }

    /// The bytes of `b` on this side.
    pub fn get(&self, b: Buffer) -> &[u8] {
        match b {
            Buffer::Payload => &self.raw,
            Buffer::Method => &self.method,
            Buffer::Uri => &self.uri,
            Buffer::UriRaw => &self.uri_raw,
            Buffer::Header => &self.header,
            Buffer::HeaderRaw => &self.header_raw,
            Buffer::HeaderNames => &self.header_names,
            Buffer::Host => &self.host,
            Buffer::HostRaw => &self.host_raw,
            Buffer::UserAgent => &self.user_agent,
            Buffer::Cookie => &self.cookie,
            Buffer::StatCode => &self.stat_code,
            Buffer::StatMsg => &self.stat_msg,
            Buffer::RequestBody | Buffer::ResponseBody | Buffer::FileData => &self.body,
            // Not HTTP buffers: an HTTP call has none of them.
            Buffer::DnsQuery | Buffer::TlsSni | Buffer::TlsCertSubject | Buffer::TlsCertIssuer | Buffer::Ja4Hash => &[],
        }
    }
}

/// The first line (without its CRLF) and the rest of a head.
fn split_line(head: &[u8]) -> (&[u8], &[u8]) {
    match head.iter().position(|&b| b == b'\n') {
        Some(i) => (head[..i].strip_suffix(b"\r").unwrap_or(&head[..i]), &head[i + 1..]),
        None => (head, &[]),
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decoding (`%XX`; a malformed escape stays as it is), then the path's `.` and `..`
/// segments resolved (RFC 3986 5.2.4); the query is decoded and kept.
pub fn normalize_uri(raw: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' && i + 2 < raw.len() {
            if let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2])) {
                d.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        d.push(raw[i]);
        i += 1;
    }
    let q = d.iter().position(|&b| b == b'?').unwrap_or(d.len());
    let (path, query) = d.split_at(q);
    if !path.starts_with(b"/") {
        return d;
    }
    let mut out: Vec<&[u8]> = Vec::new();
    let segs: Vec<&[u8]> = path[1..].split(|&b| b == b'/').collect();
    let n = segs.len();
    for (k, s) in segs.into_iter().enumerate() {
        match s {
            b"." => {
                if k == n - 1 {
                    out.push(b"");
                }
            }
            b".." => {
                out.pop();
                if k == n - 1 {
                    out.push(b"");
                }
            }
            s => out.push(s),
        }
    }
    let mut r = Vec::with_capacity(d.len());
    for s in out {
        r.push(b'/');
        r.extend_from_slice(s);
    }
    if r.is_empty() {
        r.push(b'/');
    }
    r.extend_from_slice(query);
    r
}

/// Lowercased, without a port or a trailing dot.
fn normalize_host(v: &[u8]) -> Vec<u8> {
    let mut h = v.to_ascii_lowercase();
    // An IPv6 literal keeps its colons: the port follows the closing bracket.
    let end = if h.starts_with(b"[") { h.iter().position(|&b| b == b']').map_or(h.len(), |i| i + 1) } else { h.iter().position(|&b| b == b':').unwrap_or(h.len()) };
    h.truncate(end);
    if h.ends_with(b".") {
        h.pop();
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_decoded_and_dot_segments_resolved() {
        assert_eq!(normalize_uri(b"/a/%2e%2e/b?x=%27%20or"), b"/b?x=' or");
        assert_eq!(normalize_uri(b"/a/./b/../c"), b"/a/c");
        assert_eq!(normalize_uri(b"/a+b%zz%4"), b"/a+b%zz%4");
        assert_eq!(normalize_uri(b"/../../etc/passwd"), b"/etc/passwd");
        assert_eq!(normalize_uri(b"/a/.."), b"/");
    }

    #[test]
    fn host_is_lowercased_without_its_port() {
        assert_eq!(normalize_host(b"Example.COM:8080"), b"example.com");
        assert_eq!(normalize_host(b"[2001:2::1]:80"), b"[2001:2::1]");
    }
}
