//! HTTP/2 at the byte level (RFC 9113): the client preface, frame headers, the fields of the frames
//! the engine reads, header blocks decoded by `loona-hpack`, and gRPC's message prefix. No I/O.
use std::borrow::Cow;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Bytes of a frame header.
pub const FRAME_HEADER_LEN: usize = 9;
/// The largest frame length a peer may allow (SETTINGS_MAX_FRAME_SIZE's ceiling, 2^24 - 1).
pub const MAX_FRAME_LEN: u32 = (1 << 24) - 1;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const FLAG_END_STREAM: u8 = 0x1;
pub const FLAG_ACK: u8 = 0x1;
pub const FLAG_END_HEADERS: u8 = 0x4;
pub const FLAG_PADDED: u8 = 0x8;
pub const FLAG_PRIORITY: u8 = 0x20;

/// SETTINGS_HEADER_TABLE_SIZE: the dynamic table size the sender's decoder allows.
pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl FrameHeader {
    /// Reads the 9 bytes at the start of `b` (`None` when fewer).
    pub fn parse(b: &[u8]) -> Option<FrameHeader> {
        let h: &[u8; FRAME_HEADER_LEN] = b.get(..FRAME_HEADER_LEN)?.try_into().ok()?;
        Some(FrameHeader {
            len: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            kind: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        })
    }

    /// Whether this header could be a real one: a known type on the right kind of stream (0 for
    /// connection frames, not 0 for stream frames), a sane length. Used to tell an HTTP/2
    /// connection picked up mid-way from other bytes; a frame of an unknown type (allowed by the
    /// protocol, RFC 9113 §4.1) is not taken as evidence.
    pub fn is_plausible(&self, raw_reserved_bit: bool) -> bool {
        if raw_reserved_bit || self.len > MAX_FRAME_LEN {
            return false;
        }
        match self.kind {
            DATA | HEADERS | PRIORITY | RST_STREAM | PUSH_PROMISE | CONTINUATION => self.stream != 0,
            SETTINGS => self.stream == 0 && self.len % 6 == 0,
            PING => self.stream == 0 && self.len == 8,
            GOAWAY => self.stream == 0 && self.len >= 8,
            WINDOW_UPDATE => self.len == 4,
            _ => false,
        }
    }
}

/// Whether `b` starts with a plausible frame header (see [`FrameHeader::is_plausible`]).
pub fn starts_frame(b: &[u8]) -> bool {
    FrameHeader::parse(b).is_some_and(|h| h.is_plausible(b[5] & 0x80 != 0))
}

/// Why a frame's payload was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Padding longer than the payload (RFC 9113 §6.1, §6.2).
    BadPadding,
    /// A fixed-size frame of the wrong size.
    BadLength,
}

/// The header-block fragment of a HEADERS (or PUSH_PROMISE) payload: padding and the priority
/// fields removed.
pub fn headers_fragment(flags: u8, payload: &[u8]) -> Result<&[u8], FrameError> {
    let mut p = payload;
    let mut pad = 0usize;
    if flags & FLAG_PADDED != 0 {
        let (&n, rest) = p.split_first().ok_or(FrameError::BadPadding)?;
        pad = n as usize;
        p = rest;
    }
    if flags & FLAG_PRIORITY != 0 {
        p = p.get(5..).ok_or(FrameError::BadLength)?;
    }
    p.get(..p.len().checked_sub(pad).ok_or(FrameError::BadPadding)?).ok_or(FrameError::BadPadding)
}

/// The error code of RST_STREAM.
pub fn rst_code(payload: &[u8]) -> Result<u32, FrameError> {
    let b: [u8; 4] = payload.try_into().map_err(|_| FrameError::BadLength)?;
    Ok(u32::from_be_bytes(b))
}

/// GOAWAY's last stream id and error code.
pub fn goaway(payload: &[u8]) -> Result<(u32, u32), FrameError> {
    if payload.len() < 8 {
        return Err(FrameError::BadLength);
    }
    let last = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff;
    Ok((last, u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]])))
}

/// The SETTINGS parameters, in order.
pub fn settings(payload: &[u8]) -> Result<impl Iterator<Item = (u16, u32)> + '_, FrameError> {
    if payload.len() % 6 != 0 {
        return Err(FrameError::BadLength);
    }
    Ok(payload.chunks_exact(6).map(|c| (u16::from_be_bytes([c[0], c[1]]), u32::from_be_bytes([c[2], c[3], c[4], c[5]]))))
}

/// The largest dynamic table a decoder here accepts (a peer announcing more is refused: its blocks
/// are then not decoded, rather than holding unbounded memory).
pub const MAX_TABLE_SIZE: usize = 64 * 1024;

/// One direction's HPACK decoder: the dynamic table lives across header blocks, so every block of
/// the direction must pass through it in order, or later ones cannot be read.
pub struct HeaderDecoder {
    inner: loona_hpack::Decoder<'static>,
    /// The block with its Huffman strings decoded (see `hpack_huffman`).
    plain: Vec<u8>,
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        let mut inner = loona_hpack::Decoder::new();
        inner.set_max_allowed_table_size(MAX_TABLE_SIZE);
        HeaderDecoder { inner, plain: Vec::new() }
    }
}

impl std::fmt::Debug for HeaderDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeaderDecoder")
    }
}

/// A header block that HPACK could not decode (the decoder's state is then unknown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HpackError(pub String);

impl HeaderDecoder {
    /// Decodes one whole header block (HEADERS plus its CONTINUATIONs), calling `f` per field.
    pub fn decode(&mut self, block: &[u8], mut f: impl FnMut(&[u8], &[u8])) -> Result<(), HpackError> {
        self.plain.clear();
        rewrite_strings(block, &mut self.plain, |huffman, s, out| {
            if !huffman {
                return Ok((false, s));
            }
            crate::hpack_huffman::decode(s, out).map_err(|e| HpackError(format!("Huffman string: {e:?}")))?;
            Ok((false, &[]))
        })?;
        self.inner.decode_with_cb(&self.plain, |n: Cow<'_, [u8]>, v: Cow<'_, [u8]>| f(&n, &v)).map_err(|e| HpackError(format!("{e:?}")))
    }
}

/// Reads an HPACK integer with an `n`-bit prefix at the start of `b` (RFC 7541 §5.1): its value
/// and length in bytes.
fn integer(b: &[u8], n: u8) -> Result<(usize, usize), HpackError> {
    let max = (1usize << n) - 1;
    let first = *b.first().ok_or_else(|| HpackError("integer past the block's end".into()))? as usize & max;
    if first < max {
        return Ok((first, 1));
    }
    let mut v = max;
    for (i, &c) in b.iter().enumerate().skip(1).take(5) {
        v += ((c & 0x7f) as usize) << (7 * (i - 1));
        if c & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(HpackError("integer too long or past the block's end".into()))
}

/// What a string rewriter gives back: whether the string it wrote is Huffman-coded, and the bytes
/// to write (when empty, the bytes it appended to its scratch `Vec` are taken instead).
type Rewritten<'a> = Result<(bool, &'a [u8]), HpackError>;

/// Copies a header block representation by representation, with every string literal passed
/// through `f(huffman, bytes, scratch)`: decoding turns Huffman strings plain, so the HPACK state
/// machine (loona-hpack) never runs its own Huffman decoder (see `hpack_huffman`); the benchmark
/// turns plain strings Huffman-coded, as nghttp2 sends them.
pub fn rewrite_strings<'b>(b: &'b [u8], out: &mut Vec<u8>, mut f: impl FnMut(bool, &'b [u8], &mut Vec<u8>) -> Rewritten<'b>) -> Result<(), HpackError> {
    let mut scratch = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let c = b[at];
        let (prefix, strings) = match c {
            _ if c & 0x80 != 0 => (7, 0),      // indexed field
            _ if c & 0xc0 == 0x40 => (6, 1),   // literal with incremental indexing
            _ if c & 0xe0 == 0x20 => (5, 0),   // dynamic table size update
            _ => (4, 1),                       // literal without indexing / never indexed
        };
        let (index, n) = integer(&b[at..], prefix)?;
        out.extend_from_slice(&b[at..at + n]);
        at += n;
        // A literal has a name string when its index is 0, then its value string.
        let strings = if strings == 1 && index == 0 { 2 } else { strings };
        for _ in 0..strings {
            let h = *b.get(at).ok_or_else(|| HpackError("string past the block's end".into()))? & 0x80 != 0;
            let (len, n) = integer(&b[at..], 7)?;
            let s = b.get(at + n..at + n + len).ok_or_else(|| HpackError(format!("string of {len} bytes past the block's end at byte {at}")))?;
            at += n + len;
            scratch.clear();
            let (huff, w) = f(h, s, &mut scratch).map_err(|e| HpackError(format!("{} (string at byte {})", e.0, at - len)))?;
            let plain: &[u8] = if w.is_empty() { &scratch } else { w };
            // The length with the H bit (RFC 7541 §5.1 integer, 7-bit prefix).
            let hbit = if huff { 0x80 } else { 0 };
            let mut v = plain.len();
            if v < 127 {
                out.push(v as u8 | hbit);
            } else {
                out.push(127 | hbit);
                v -= 127;
                while v >= 128 {
                    out.push((v % 128) as u8 | 0x80);
                    v /= 128;
                }
                out.push(v as u8);
            }
            out.extend_from_slice(plain);
        }
    }
    Ok(())
}

/// Walks gRPC's length-prefixed messages (a flag byte and a 4-byte length, then the message) over
/// the DATA bytes of one direction of a stream, fed in pieces; counts the messages that start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrpcMessages {
    /// Prefix bytes read of the message being started (0..5).
    prefix: [u8; 5],
    have: u8,
    /// Message bytes still to skip.
    left: u64,
    /// Messages whose prefix was read.
    pub count: u64,
}

impl GrpcMessages {
    pub fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            if self.left > 0 {
                let n = (self.left).min(b.len() as u64);
                self.left -= n;
                b = &b[n as usize..];
                continue;
            }
            let need = 5 - self.have as usize;
            let n = need.min(b.len());
            self.prefix[self.have as usize..self.have as usize + n].copy_from_slice(&b[..n]);
            self.have += n as u8;
            b = &b[n..];
            if self.have == 5 {
                self.have = 0;
                self.count += 1;
                self.left = u64::from(u32::from_be_bytes([self.prefix[1], self.prefix[2], self.prefix[3], self.prefix[4]]));
            }
        }
    }

    /// `n` bytes were lost: skipped when they lie inside a message, else the walk stops being
    /// exact (returns false).
    pub fn skip(&mut self, n: u64) -> bool {
        if self.have == 0 && n <= self.left {
            self.left -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_fields() {
        let h = FrameHeader::parse(&[0, 0, 6, SETTINGS, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(h, FrameHeader { len: 6, kind: SETTINGS, flags: 0, stream: 0 });
        assert!(starts_frame(&[0, 0, 6, SETTINGS, 0, 0, 0, 0, 0]));
        assert!(!starts_frame(&[0, 0, 5, SETTINGS, 0, 0, 0, 0, 0]), "SETTINGS length must be a multiple of 6");
        assert!(!starts_frame(b"GET / HTTP/1.1\r\n"));
        assert!(!starts_frame(&[0, 0, 4, HEADERS, 4, 0, 0, 0, 0]), "HEADERS on stream 0");
        assert!(FrameHeader::parse(&[0; 8]).is_none());
    }

    #[test]
    fn padded_priority_headers() {
        // pad length 2, priority 5 bytes, fragment "ab", padding 2.
        let p = [2, 0, 0, 0, 1, 16, b'a', b'b', 0, 0];
        assert_eq!(headers_fragment(FLAG_PADDED | FLAG_PRIORITY, &p), Ok(&b"ab"[..]));
        assert_eq!(headers_fragment(FLAG_PADDED, &[9, 1]), Err(FrameError::BadPadding));
        assert_eq!(headers_fragment(FLAG_PRIORITY, &[1, 2]), Err(FrameError::BadLength));
    }

    #[test]
    fn hpack_round_trip_through_the_dynamic_table() {
        // Encoded by loona-hpack's own encoder; the decoder must read both blocks in order.
        let mut enc = loona_hpack::Encoder::new();
        let b1 = enc.encode([(&b":method"[..], &b"GET"[..]), (b":path", b"/a"), (b"x-custom", b"v1")]);
        let b2 = enc.encode([(&b":method"[..], &b"GET"[..]), (b":path", b"/a"), (b"x-custom", b"v1")]);
        let mut d = HeaderDecoder::default();
        let mut got = Vec::new();
        d.decode(&b1, |n, v| got.push((n.to_vec(), v.to_vec()))).unwrap();
        d.decode(&b2, |n, v| got.push((n.to_vec(), v.to_vec()))).unwrap();
        assert_eq!(got.len(), 6);
        assert_eq!(got[5], (b"x-custom".to_vec(), b"v1".to_vec()));
        // A fresh decoder (a connection picked up mid-way) cannot read the second block right.
        let mut fresh = HeaderDecoder::default();
        let mut got2 = Vec::new();
        let r = fresh.decode(&b2, |n, v| got2.push((n.to_vec(), v.to_vec())));
        assert!(r.is_err() || got2 != got[3..].to_vec());
    }

    #[test]
    fn rfc7541_c4_requests_with_huffman_coding() {
        // RFC 7541 Appendix C.4: three requests with Huffman-coded strings, one dynamic table.
        let hex = |s: &str| (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect::<Vec<u8>>();
        let blocks = ["828684418cf1e3c2e5f23a6ba0ab90f4ff", "828684be5886a8eb10649cbf", "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"];
        let want: [&[(&str, &str)]; 3] = [
            &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")],
            &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com"), ("cache-control", "no-cache")],
            &[(":method", "GET"), (":scheme", "https"), (":path", "/index.html"), (":authority", "www.example.com"), ("custom-key", "custom-value")],
        ];
        let mut d = HeaderDecoder::default();
        for (b, w) in blocks.iter().zip(want) {
            let mut got = Vec::new();
            d.decode(&hex(b), |n, v| got.push((String::from_utf8_lossy(n).into_owned(), String::from_utf8_lossy(v).into_owned()))).unwrap();
            assert_eq!(got, w.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect::<Vec<_>>());
        }
        let mut out = Vec::new();
        crate::hpack_huffman::decode(&hex("f1e3c2e5f23a6ba0ab90f4ff"), &mut out).unwrap();
        assert_eq!(out, b"www.example.com");
        // Every byte value, and a value over 127 bytes (a multi-byte length once plain), through
        // the encoder and back through the decoder's block rewrite.
        let all: Vec<u8> = (0..=255u8).chain(b"x".repeat(300)).collect();
        let mut h = Vec::new();
        crate::hpack_huffman::encode(&all, &mut h);
        let mut block = Vec::new();
        let mut k = 0;
        rewrite_strings(&[0x00, 0x01, b'n', 0x01, b'v'], &mut block, |_, _, _| {
            k += 1;
            Ok(if k == 1 { (false, &b"abc"[..]) } else { (true, &h[..]) })
        })
        .unwrap();
        let mut got = Vec::new();
        HeaderDecoder::default().decode(&block, |k, v| got.push((k.to_vec(), v.to_vec()))).unwrap();
        assert_eq!(got, vec![(b"abc".to_vec(), all)]);
        assert!(crate::hpack_huffman::decode(&[0xff, 0xff, 0xff, 0xff], &mut Vec::new()).is_err(), "EOS inside a string");
    }

    #[test]
    fn hpack_rejects_garbage_without_panicking() {
        let mut d = HeaderDecoder::default();
        for b in [&[0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff][..], &[0x3f, 0xff, 0xff, 0xff, 0xff, 0x0f], &[0x7f], &[0x40, 0x85]] {
            let _ = d.decode(b, |_, _| {});
        }
    }

    #[test]
    fn grpc_messages_over_pieces() {
        let mut g = GrpcMessages::default();
        let mut data = vec![0u8, 0, 0, 0, 3, 1, 2, 3];
        data.extend_from_slice(&[0, 0, 0, 0, 0]); // empty message
        data.extend_from_slice(&[0, 0, 0, 0, 2, 9, 9]);
        for c in data.chunks(3) {
            g.feed(c);
        }
        assert_eq!(g.count, 3);
    }
}
