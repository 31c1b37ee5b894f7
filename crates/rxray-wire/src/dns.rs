//! DNS messages (RFC 1035 §4.1): the 12-byte header and the question section's names, in dotted
//! form, as Suricata's `dns.query` buffer holds them. Bounded: at most 255 bytes a name, 16
//! compression hops, `MAX_QUESTIONS` questions; bad input is an error with its byte offset.
//!
//! Written here rather than taken from `simple-dns` or `hickory-proto`: both parse (and allocate)
//! every record of the message, where signatures need the header and the question names only, on
//! every packet to or from port 53. The names are written into a buffer the caller reuses.

/// The DNS port: UDP and TCP traffic to or from it is read as DNS.
pub const PORT: u16 = 53;
/// Questions read per message (real queries carry one).
pub const MAX_QUESTIONS: usize = 16;
/// A name's presentation form is at most 253 characters; 255 wire bytes (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;
/// Compression pointers followed per name before it is refused (a loop otherwise never ends).
const MAX_HOPS: usize = 16;

/// The fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    /// QR: false for a query, true for a response.
    pub response: bool,
    /// The 4-bit OPCODE (0 QUERY, 1 IQUERY, 2 STATUS, 4 NOTIFY, 5 UPDATE).
    pub opcode: u8,
    pub rcode: u8,
    pub qdcount: u16,
    pub ancount: u16,
}

/// Why a message was refused: what, at which byte of the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsError {
    pub what: &'static str,
    pub offset: usize,
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {} of the DNS message", self.what, self.offset)
    }
}

impl std::error::Error for DnsError {}

/// Reads the header of a message; an error when it is shorter than 12 bytes.
pub fn header(m: &[u8]) -> Result<Header, DnsError> {
    let h = m.get(..12).ok_or(DnsError { what: "message shorter than its 12-byte header", offset: m.len() })?;
    let be = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    Ok(Header { id: be(0), response: h[2] & 0x80 != 0, opcode: (h[2] >> 3) & 0x0f, rcode: h[3] & 0x0f, qdcount: be(4), ancount: be(6) })
}

/// Reads the name at `at` into `out` in dotted form (labels joined by '.', no trailing dot, the
/// root as an empty name); returns the offset just past the name where it started.
pub fn name(m: &[u8], at: usize, out: &mut Vec<u8>) -> Result<usize, DnsError> {
    let start = out.len();
    let mut pos = at;
    let mut end = None;
    let mut hops = 0;
    loop {
        let len = *m.get(pos).ok_or(DnsError { what: "name runs past the message", offset: pos })? as usize;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok(end.unwrap_or(pos + 1));
                }
                let label = m.get(pos + 1..pos + 1 + len).ok_or(DnsError { what: "label runs past the message", offset: pos })?;
                if out.len() > start {
                    out.push(b'.');
                }
                out.extend_from_slice(label);
                if out.len() - start > MAX_NAME {
                    return Err(DnsError { what: "name longer than 255 bytes", offset: pos });
                }
                pos += 1 + len;
            }
            0xc0 => {
                let lo = *m.get(pos + 1).ok_or(DnsError { what: "compression pointer runs past the message", offset: pos })? as usize;
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(DnsError { what: "too many compression pointers (a loop?)", offset: pos });
                }
                end.get_or_insert(pos + 2);
                pos = (len & 0x3f) << 8 | lo;
            }
            _ => return Err(DnsError { what: "unknown label type", offset: pos }),
        }
    }
}

/// The question names of a message, each in dotted form, appended to `names` (cleared first) with
/// their (start, end) in `spans`. Stops at `MAX_QUESTIONS`.
pub fn questions(m: &[u8], names: &mut Vec<u8>, spans: &mut Vec<(u32, u32)>) -> Result<Header, DnsError> {
    names.clear();
    spans.clear();
    let h = header(m)?;
    let mut at = 12;
    for _ in 0..(h.qdcount as usize).min(MAX_QUESTIONS) {
        let s = names.len();
        at = name(m, at, names)?;
        if m.len() < at + 4 {
            return Err(DnsError { what: "question type and class run past the message", offset: at });
        }
        at += 4;
        spans.push((s as u32, names.len() as u32));
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(id: u16, flags: u16, names: &[&str]) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&(names.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        for n in names {
            for l in n.split('.') {
                m.push(l.len() as u8);
                m.extend_from_slice(l.as_bytes());
            }
            m.extend_from_slice(&[0, 0, 1, 0, 1]);
        }
        m
    }

    #[test]
    fn header_and_dotted_question_names() {
        // Opcode 4 (NOTIFY) sits in bits 3..6 of the third byte.
        let m = query(0x1234, 4 << 11, &["mail.google.com", "a.b"]);
        let (mut names, mut spans) = (Vec::new(), Vec::new());
        let h = questions(&m, &mut names, &mut spans).unwrap();
        assert_eq!((h.id, h.response, h.opcode, h.qdcount), (0x1234, false, 4, 2));
        let got: Vec<&[u8]> = spans.iter().map(|&(s, e)| &names[s as usize..e as usize]).collect();
        assert_eq!(got, vec![&b"mail.google.com"[..], &b"a.b"[..]]);
    }

    #[test]
    fn pointers_are_followed_and_loops_refused() {
        // Second question points back at the first name.
        let mut m = query(1, 0x0100, &["x.example"]);
        m[5] = 2;
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let (mut names, mut spans) = (Vec::new(), Vec::new());
        questions(&m, &mut names, &mut spans).unwrap();
        assert_eq!(&names[spans[1].0 as usize..spans[1].1 as usize], b"x.example");
        // A pointer to itself.
        let mut l = query(1, 0, &[]);
        l[5] = 1;
        l.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let e = questions(&l, &mut names, &mut spans).unwrap_err();
        assert_eq!((e.what, e.offset), ("too many compression pointers (a loop?)", 12));
    }

    #[test]
    fn truncated_messages_name_the_offset() {
        let m = query(1, 0, &["abc.de"]);
        let (mut names, mut spans) = (Vec::new(), Vec::new());
        assert_eq!(questions(&m[..5], &mut names, &mut spans).unwrap_err().offset, 5);
        let e = questions(&m[..15], &mut names, &mut spans).unwrap_err();
        assert_eq!((e.what, e.offset), ("label runs past the message", 12));
        for n in 0..m.len() {
            let _ = questions(&m[..n], &mut names, &mut spans);
        }
    }
}
