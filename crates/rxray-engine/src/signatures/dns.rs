//! DNS rules: each DNS message to or from port 53 is read (rxray-wire's `dns`) and the `dns`
//! rules evaluated on it. UDP: one message a datagram. TCP: messages carry a 2-byte length prefix
//! (RFC 1035 §4.2.2) and are reassembled per direction from in-order segments.
//!
//! Semantics (docs/detection.md, "Keywords: dns, tls, pkthdr"):
//! - `dns.query` holds each question name of a request (QR = 0) in dotted form, without a trailing
//!   dot ("mail.google.com"); the rule matches when its contents match any one of them. Responses
//!   have no `dns.query` buffer (Suricata: "the DNS request queries are inspected").
//! - `dns.opcode` matches the header's OPCODE in requests and responses.
//! - `flow:to_server` is a request, `to_client` a response (the QR bit).
//! - Contents outside a buffer search the DNS message (the datagram's payload; over TCP the message
//!   without its length prefix).
use super::payload::{inspect, Buffers};
use super::rule::{Buffer, PayloadItem, Rule};
use super::table::Bounded;
use crate::event::Packet;
use rxray_wire::dns::{self, Header};
use std::net::IpAddr;

/// TCP directions reassembled at once (the least recently used half is dropped when full).
pub const DNS_STREAMS: usize = 16_384;
/// A DNS message over TCP is at most 65,535 bytes after its 2-byte length.
const MAX_MESSAGE: usize = 65_535 + 2;

const SYN: u8 = 0x02;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;

#[derive(Default)]
struct Stream {
    next_seq: Option<u32>,
    buf: Vec<u8>,
}

/// Counters of the DNS side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DnsStats {
    pub messages: u64,
    /// Messages the parser refused (too short, a name past the end, a pointer loop).
    pub malformed: u64,
    /// TCP bytes skipped: a hole in the sequence, or a segment whose payload was not all captured.
    pub tcp_gaps: u64,
}

/// The DNS side of a rule set: TCP reassembly and per-message scratch, reused.
pub struct DnsSide {
    streams: Bounded<(IpAddr, u16, IpAddr, u16), Stream>,
    pub stats: DnsStats,
    /// Messages completed by the current packet (TCP may complete several), end offsets in `msgs`.
    msgs: Vec<u8>,
    ends: Vec<usize>,
    names: Vec<u8>,
    lower_names: Vec<u8>,
    spans: Vec<(u32, u32)>,
    lower: Vec<u8>,
}

impl Default for DnsSide {
    fn default() -> Self {
        DnsSide {
            streams: Bounded::new(DNS_STREAMS),
            stats: DnsStats::default(),
            msgs: Vec::new(),
            ends: Vec::new(),
            names: Vec::new(),
            lower_names: Vec::new(),
            spans: Vec::new(),
            lower: Vec::new(),
        }
    }
}

/// One DNS message as a rule sees it.
pub struct Message<'a> {
    pub header: Header,
    pub bytes: &'a [u8],
    pub lower: &'a [u8],
    /// The question names, dotted, and their spans (empty for responses: `dns.query` is requests only).
    pub names: &'a [u8],
    pub lower_names: &'a [u8],
    pub spans: &'a [(u32, u32)],
}

impl DnsSide {
    pub fn streams_evicted(&self) -> u64 {
        self.streams.evicted
    }

    /// Calls `each` with every DNS message `p` carries or completes (none when it is not on port
    /// 53, or not DNS).
    pub fn messages(&mut self, p: &Packet, captured_whole: bool, mut each: impl FnMut(&Message<'_>)) {
        self.msgs.clear();
        self.ends.clear();
        if let Some(u) = p.udp {
            if u.sport != dns::PORT && u.dport != dns::PORT {
                return;
            }
            if !captured_whole {
                self.stats.malformed += 1;
                return;
            }
            self.msgs.extend_from_slice(&p.payload);
            self.ends.push(self.msgs.len());
        } else if let (Some(t), Some(ip)) = (p.tcp, p.ip.as_ref()) {
            if t.sport != dns::PORT && t.dport != dns::PORT {
                return;
            }
            self.tcp(ip.src, t.sport, ip.dst, t.dport, t.seq, t.flags, &p.payload, captured_whole);
        } else {
            return;
        }
        let mut start = 0;
        for k in 0..self.ends.len() {
            let end = self.ends[k];
            let bytes = &self.msgs[start..end];
            start = end;
            let header = match dns::questions(bytes, &mut self.names, &mut self.spans) {
                Ok(h) => h,
                Err(_) => {
                    self.stats.malformed += 1;
                    continue;
                }
            };
            self.stats.messages += 1;
            if header.response {
                self.spans.clear();
                self.names.clear();
            }
            self.lower.clear();
            self.lower.extend(bytes.iter().map(u8::to_ascii_lowercase));
            self.lower_names.clear();
            self.lower_names.extend(self.names.iter().map(u8::to_ascii_lowercase));
            each(&Message { header, bytes, lower: &self.lower, names: &self.names, lower_names: &self.lower_names, spans: &self.spans });
        }
    }

    /// In-order reassembly of one TCP direction; each whole length-prefixed message goes to `msgs`.
    #[allow(clippy::too_many_arguments)]
    fn tcp(&mut self, src: IpAddr, sport: u16, dst: IpAddr, dport: u16, seq: u32, flags: u8, payload: &[u8], whole: bool) {
        let key = (src, sport, dst, dport);
        let st = self.streams.entry(key, Stream::default);
        if flags & SYN != 0 {
            *st = Stream { next_seq: Some(seq.wrapping_add(1)), buf: Vec::new() };
        }
        if !payload.is_empty() {
            let mut data = payload;
            let next = *st.next_seq.get_or_insert(seq);
            let ahead = seq.wrapping_sub(next) as i32;
            if ahead > 0 || !whole {
                // A hole (or bytes not captured): the message it cut is lost; start over here.
                self.stats.tcp_gaps += 1;
                st.buf.clear();
            } else if ahead < 0 {
                // Bytes already seen (a retransmission): keep only what is new.
                data = payload.get((-ahead) as usize..).unwrap_or(&[]);
            }
            st.next_seq = Some(seq.wrapping_add(payload.len() as u32));
            if whole {
                st.buf.extend_from_slice(data);
            }
            while st.buf.len() >= 2 {
                let n = u16::from_be_bytes([st.buf[0], st.buf[1]]) as usize;
                if st.buf.len() < 2 + n {
                    break;
                }
                self.msgs.extend_from_slice(&st.buf[2..2 + n]);
                self.ends.push(self.msgs.len());
                st.buf.drain(..2 + n);
            }
            if st.buf.len() > MAX_MESSAGE {
                st.buf.clear();
            }
        }
        if flags & (FIN | RST) != 0 {
            st.buf.clear();
        }
    }
}

/// Where one item matched: its buffer, where that buffer starts in the message's names (0 for the
/// message itself), and the match's (start, end) in it.
pub type Hit = (Buffer, u32, u32, u32);

/// Whether DNS rule `r` matches message `m`; on success `evidence` holds the hit of each
/// non-negated item, in rule order.
pub fn matches(r: &Rule, m: &Message<'_>, hits: &mut Vec<(u32, u32)>, evidence: &mut Vec<Hit>) -> bool {
    evidence.clear();
    if r.flow.and_then(|f| f.to_server).is_some_and(|ts| ts == m.header.response) {
        return false;
    }
    if r.app.dns_opcode.is_some_and(|o| !o.matches(m.header.opcode)) {
        return false;
    }
    for (b, items) in &r.http {
        if *b != Buffer::DnsQuery {
            return false;
        }
        // Any one question name may match (Suricata's multi-buffer).
        let hit = m.spans.iter().find_map(|&(s, e)| {
            let (s, e) = (s as usize, e as usize);
            let buf = Buffers { raw: &m.names[s..e], lower: &m.lower_names[s..e] };
            inspect(items, &buf, hits).then(|| hits.iter().map(|&(a, z)| (Buffer::DnsQuery, s as u32, a, z)).collect::<Vec<_>>())
        });
        let Some(h) = hit else { return false };
        evidence.extend(h);
    }
    if !r.payload.is_empty() {
        if !inspect(&r.payload, &Buffers { raw: m.bytes, lower: m.lower }, hits) {
            return false;
        }
        evidence.extend(hits.iter().map(|&(a, z)| (Buffer::Payload, 0, a, z)));
    }
    true
}

/// The bytes of a hit in `m`.
pub fn hit_bytes<'a>(m: &Message<'a>, h: Hit) -> &'a [u8] {
    let (b, base, s, e) = h;
    let src = if b == Buffer::DnsQuery { m.names } else { m.bytes };
    src.get((base + s) as usize..(base + e) as usize).unwrap_or(&[])
}

/// Items of a rule in order, for naming evidence keywords.
pub fn keywords(r: &Rule) -> impl Iterator<Item = &'static str> + '_ {
    r.http.iter().flat_map(|(_, v)| v.iter()).chain(r.payload.iter()).filter(|i| !i.is_negated()).map(|i| match i {
        PayloadItem::Content(_) => "content",
        PayloadItem::Pcre(_) => "pcre",
    })
}
