//! HTTP/1.x over one reassembled connection: request and response messages (heads, bodies by
//! Content-Length or chunks), pipelining and keep-alive, interim 1xx answers, and pairing.
//!
//! A gap inside a body of known length, or inside one chunk's data, is skipped with the framing
//! intact. Any other gap ends the message it falls in; the side then parses again only at a
//! segment that starts a request line (or status line) and is the first of its side after the other
//! side spoke (a turn of the conversation), so body bytes that look like a request are not taken
//! for one. Pairing after a loss goes by time, and never across a request that may have been lost.
use super::endpoints::Endpoints;
use super::reassembly::Piece;
use super::{Completeness, Totals};
use rxray_wire::http::{self as h, BodyFraming, Chunked, Head};
use std::collections::VecDeque;
use std::net::IpAddr;

/// Limits of one connection's parser.
#[derive(Clone, Copy, Debug)]
pub struct ParserLimits {
    /// A head longer than this is refused (and counted).
    pub max_head: usize,
    /// Requests waiting for an answer on one connection (pipelining) before the oldest is given up.
    pub max_pipeline: usize,
}

#[derive(Debug)]
enum Body {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

#[derive(Debug)]
enum State {
    /// Expecting a head; `buf` holds its start when it spans pieces.
    Head,
    Body(Body),
    /// Lost place: waiting for a segment that starts a message.
    Lost,
    /// After a protocol switch (101, CONNECT): not HTTP/1.x any more.
    Opaque,
}

/// One message as the whole-call checks (OpenAPI) read it: the head's bytes and the body (its data,
/// without chunk framing) up to the body limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub head: Vec<u8>,
    pub body: Vec<u8>,
    /// Part of the body is missing: past the limit, not copied by the source, or lost in a gap.
    pub truncated: bool,
}

/// A request and its final response, each whole up to the body limit. Collected only when the
/// tracker is asked to (it costs a copy of every head and body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub client: IpAddr,
    /// The connection: client and server addresses and ports.
    pub conn: super::ConnKey,
    /// Event time of the request's first byte.
    pub ts_ns: u64,
    pub request: Message,
    pub status: u16,
    pub response: Message,
    /// From the request's first byte to the response head (0 for a request alone).
    pub latency_ns: u64,
}

impl Call {
    /// The request alone, delivered when it was whole (before any answer): status 0, no response.
    pub fn is_request_only(&self) -> bool {
        self.status == 0 && self.response.head.is_empty()
    }
}

/// One direction's message parser.
#[derive(Debug)]
struct Side {
    state: State,
    buf: Vec<u8>,
    /// Event time of the first byte of the head being parsed.
    head_ts: u64,
    /// The endpoint the current message's bytes are counted to.
    endpoint: Option<usize>,
    /// The current message's body already lost bytes the source did not copy.
    truncated: bool,
    /// The current message, when calls are collected.
    msg: Option<Message>,
}

impl Side {
    fn new() -> Self {
        Side { state: State::Head, buf: Vec::new(), head_ts: 0, endpoint: None, truncated: false, msg: None }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    /// Numbers the requests of this connection, to find this one's entry when its body ends.
    id: u64,
    /// The whole request, once its body has ended (when calls are collected).
    request: Option<Message>,
    endpoint: usize,
    first_ts: u64,
    head: bool,
    connect: bool,
    /// The request side lost bytes after this request: a request may be missing behind it.
    gap_after: bool,
    /// The request asks to switch to HTTP/2 (`Upgrade: h2c`).
    h2c: bool,
}

/// Shared state the parser writes to.
pub struct Ctx<'a> {
    pub endpoints: &'a mut Endpoints,
    pub totals: &'a mut Totals,
    pub comp: &'a mut Completeness,
    pub limits: ParserLimits,
    /// Where whole calls go, when something reads them; `None` costs nothing.
    pub calls: Option<&'a mut Vec<Call>>,
    /// Body bytes kept per message for `calls`.
    pub body_max: usize,
}

/// Both directions of one connection.
#[derive(Debug)]
pub struct Exchange {
    conn: super::ConnKey,
    req: Side,
    resp: Side,
    pending: VecDeque<Pending>,
    /// The response side lost its place since it last paired: pair by time, not by order.
    resp_desync: bool,
    /// The side that delivered data (or a gap) last: a turn is data after the other side's.
    last_data: Option<Dir>,
    /// Requests numbered so far, and the one the request side is reading.
    next_id: u64,
    req_id: u64,
    /// The response being read: its request (as far as it was seen), status and the request's time.
    answering: Option<(Message, u16, u64, u64)>,
    /// The server switched to HTTP/2 (101 to `Upgrade: h2c`): the upgrade request's endpoint and
    /// time, and the bytes after the 101 per direction, for the HTTP/2 reader to take over.
    pub h2_upgrade: Option<(usize, u64)>,
    pub after_upgrade: [Vec<u8>; 2],
}

/// Which side a piece is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to server: requests.
    ToServer,
    /// Server to client: responses.
    ToClient,
}

enum Parsed {
    Need,
    Done(usize),
    Bad,
}

impl Exchange {
    pub fn new(conn: super::ConnKey) -> Self {
        Exchange {
            conn,
            req: Side::new(),
            resp: Side::new(),
            pending: VecDeque::new(),
            resp_desync: false,
            last_data: None,
            next_id: 0,
            req_id: 0,
            answering: None,
            h2_upgrade: None,
            after_upgrade: [Vec::new(), Vec::new()],
        }
    }

    pub fn piece(&mut self, dir: Dir, p: Piece<'_>, cx: &mut Ctx<'_>) {
        match p {
            Piece::Data { bytes, ts_ns, segment_start } => self.data(dir, bytes, ts_ns, segment_start, cx),
            Piece::Gap { len, not_copied, .. } => {
                // Bytes right after a gap continue whatever the gap held: no turn there.
                self.last_data = Some(dir);
                let s = self.side(dir);
                if not_copied && matches!(s.state, State::Body(_)) && !s.truncated {
                    // A body the source cut (snap length, body limit): marked once per message.
                    s.truncated = true;
                    cx.comp.bodies_truncated += 1;
                }
                if let Some(m) = s.msg.as_mut() {
                    m.truncated = true;
                }
                self.gap(dir, len, cx)
            }
            Piece::End { .. } => self.end(dir, cx),
        }
    }

    /// The side starts without knowing where messages begin (a connection picked up mid-way).
    pub fn lost_place(&mut self, dir: Dir) {
        let s = self.side(dir);
        s.state = State::Lost;
        if dir == Dir::ToClient {
            self.resp_desync = true;
        }
    }

    fn side(&mut self, dir: Dir) -> &mut Side {
        match dir {
            Dir::ToServer => &mut self.req,
            Dir::ToClient => &mut self.resp,
        }
    }

    fn count_bytes(&self, dir: Dir, n: u64, cx: &mut Ctx<'_>) {
        let side = match dir {
            Dir::ToServer => &self.req,
            Dir::ToClient => &self.resp,
        };
        if let Some(i) = side.endpoint {
            add_bytes(cx, i, &self.conn, dir, n);
        }
    }

    fn data(&mut self, dir: Dir, bytes: &[u8], ts: u64, segment_start: bool, cx: &mut Ctx<'_>) {
        let turn = self.last_data.is_some_and(|d| d != dir);
        self.last_data = Some(dir);
        self.parse(dir, bytes, ts, segment_start && turn, cx);
    }

    fn parse(&mut self, dir: Dir, mut bytes: &[u8], ts: u64, may_resync: bool, cx: &mut Ctx<'_>) {
        if matches!(self.side(dir).state, State::Lost) {
            let starts = match dir {
                Dir::ToServer => h::starts_request(bytes),
                Dir::ToClient => h::starts_response(bytes),
            };
            if may_resync && starts {
                self.side(dir).state = State::Head;
            } else {
                cx.comp.unparsed_bytes += bytes.len() as u64;
                return;
            }
        }
        while !bytes.is_empty() {
            let s = self.side(dir);
            match &mut s.state {
                State::Opaque => {
                    if self.h2_upgrade.is_some() {
                        let held = &mut self.after_upgrade[usize::from(dir == Dir::ToClient)];
                        if held.len() + bytes.len() <= cx.limits.max_head {
                            held.extend_from_slice(bytes);
                            return;
                        }
                    }
                    cx.comp.unparsed_bytes += bytes.len() as u64;
                    return;
                }
                State::Lost => {
                    // A message ended in error inside this piece: the rest waits for a resync.
                    cx.comp.unparsed_bytes += bytes.len() as u64;
                    return;
                }
                State::Body(Body::Length(rem)) => {
                    let take = (*rem).min(bytes.len() as u64);
                    *rem -= take;
                    let ended = *rem == 0;
                    if ended {
                        s.state = State::Head;
                    }
                    if let Some(m) = s.msg.as_mut() {
                        keep(m, &bytes[..take as usize], cx.body_max);
                    }
                    bytes = &bytes[take as usize..];
                    self.count_bytes(dir, take, cx);
                    if ended {
                        self.done(dir, cx);
                    }
                }
                State::Body(Body::UntilClose) => {
                    if let Some(m) = s.msg.as_mut() {
                        keep(m, bytes, cx.body_max);
                    }
                    self.count_bytes(dir, bytes.len() as u64, cx);
                    return;
                }
                State::Body(Body::Chunked(c)) => match match s.msg.as_mut() {
                    Some(m) => c.feed_collect(bytes, &mut m.body, cx.body_max).map(|(n, cut)| {
                        m.truncated |= cut;
                        n
                    }),
                    None => c.feed(bytes),
                } {
                    Ok(n) => {
                        let ended = c.is_done();
                        if ended {
                            s.state = State::Head;
                        }
                        bytes = &bytes[n..];
                        self.count_bytes(dir, n as u64, cx);
                        if ended {
                            self.done(dir, cx);
                        }
                    }
                    Err(_) => {
                        cx.comp.parse_errors += 1;
                        self.lose(dir, cx);
                    }
                },
                State::Head => {
                    if s.buf.is_empty() {
                        s.head_ts = ts;
                    }
                    let had = s.buf.len();
                    if had > 0 && memchr::memchr(b'\n', bytes).is_none() {
                        // No line end in this piece: the held head cannot be complete yet, so it is
                        // not parsed again (parsing on every piece would be quadratic in its length).
                        self.hold(dir, bytes, cx);
                        return;
                    }
                    let parsed = if had == 0 {
                        self.head(dir, bytes, cx)
                    } else {
                        // The head spans pieces: parse the held start plus (at most the rest of the
                        // allowed head of) this piece, then put the held start back as it was.
                        let mut buf = std::mem::take(&mut self.side(dir).buf);
                        let add = bytes.len().min((cx.limits.max_head + 1).saturating_sub(had));
                        buf.extend_from_slice(&bytes[..add]);
                        let r = self.head(dir, &buf, cx);
                        buf.truncate(had);
                        self.side(dir).buf = buf;
                        r
                    };
                    match parsed {
                        Parsed::Done(n) => {
                            self.side(dir).buf.clear();
                            bytes = &bytes[n.saturating_sub(had).min(bytes.len())..];
                        }
                        Parsed::Need => {
                            self.hold(dir, bytes, cx);
                            return;
                        }
                        Parsed::Bad => {
                            cx.comp.parse_errors += 1;
                            self.side(dir).buf.clear();
                            self.lose(dir, cx);
                        }
                    }
                }
            }
        }
    }

    /// Keeps the start of a head that is not complete yet; past the head limit it is refused (and
    /// counted) and the side loses its place.
    fn hold(&mut self, dir: Dir, bytes: &[u8], cx: &mut Ctx<'_>) {
        let s = self.side(dir);
        if s.buf.len() + bytes.len() > cx.limits.max_head {
            cx.comp.heads_too_large += 1;
            s.buf.clear();
            self.lose(dir, cx);
        } else {
            s.buf.extend_from_slice(bytes);
        }
    }

    /// Tries a head at the start of `buf`; on success sets up the body and returns the head's length.
    fn head(&mut self, dir: Dir, buf: &[u8], cx: &mut Ctx<'_>) -> Parsed {
        match dir {
            Dir::ToServer => match h::parse_request(buf) {
                Head::Partial => Parsed::Need,
                Head::Invalid(_) => Parsed::Bad,
                Head::Complete(r) => {
                    let i = cx.endpoints.request(r.method, r.target, self.conn.client);
                    if let Some(c) = cx.endpoints.client(i, &self.conn) {
                        c.requests += 1;
                    }
                    cx.totals.requests += 1;
                    if self.pending.len() >= cx.limits.max_pipeline {
                        if let Some(old) = self.pending.pop_front() {
                            cx.comp.pipeline_overflow += 1;
                            unanswered(old.endpoint, &self.conn, cx);
                        }
                    }
                    self.next_id += 1;
                    self.req_id = self.next_id;
                    self.pending.push_back(Pending {
                        id: self.next_id,
                        request: None,
                        endpoint: i,
                        first_ts: self.req.head_ts,
                        head: r.method.eq_ignore_ascii_case("HEAD"),
                        connect: r.method.eq_ignore_ascii_case("CONNECT"),
                        gap_after: false,
                        h2c: memchr::memmem::find(&buf[..r.head_len], b"h2c").is_some() && upgrades_to_h2c(&buf[..r.head_len]),
                    });
                    self.req.endpoint = Some(i);
                    self.req.truncated = false;
                    if cx.calls.is_some() {
                        self.req.msg = Some(Message { head: buf[..r.head_len].to_vec(), ..Default::default() });
                    }
                    self.count_bytes(dir, r.head_len as u64, cx);
                    self.req.state = body_state(r.body);
                    if matches!(self.req.state, State::Head) {
                        self.done(dir, cx);
                    }
                    Parsed::Done(r.head_len)
                }
            },
            Dir::ToClient => match h::parse_response(buf) {
                Head::Partial => Parsed::Need,
                Head::Invalid(_) => Parsed::Bad,
                Head::Complete(r) => {
                    let ts = self.resp.head_ts;
                    if r.status == 101 && self.pending.front().is_some_and(|p| p.h2c && p.first_ts <= ts) {
                        // HTTP/2 from here on: the upgrade request's answer comes on stream 1.
                        if let Some(p) = self.pending.pop_front() {
                            cx.totals.interim_responses += 1;
                            self.resp.endpoint = Some(p.endpoint);
                            self.count_bytes(dir, r.head_len as u64, cx);
                            self.resp.endpoint = None;
                            self.h2_upgrade = Some((p.endpoint, p.first_ts));
                            self.req.state = State::Opaque;
                            self.resp.state = State::Opaque;
                            return Parsed::Done(r.head_len);
                        }
                    }
                    if (100..200).contains(&r.status) && r.status != 101 {
                        // 100 Continue and other interim answers: the final one follows.
                        cx.totals.interim_responses += 1;
                        self.count_bytes(dir, r.head_len as u64, cx);
                        return Parsed::Done(r.head_len);
                    }
                    cx.totals.responses += 1;
                    let mut req = self.pair(ts, cx);
                    self.resp.endpoint = req.as_ref().map(|p| p.endpoint);
                    self.resp.truncated = false;
                    self.resp.msg = None;
                    self.answering = None;
                    if let (Some(p), true) = (req.as_mut(), cx.calls.is_some()) {
                        // A request still being read (answered early) is checked as far as it came.
                        let request = p.request.take().unwrap_or_else(|| Message { truncated: true, ..self.req.msg.clone().unwrap_or_default() });
                        self.answering = Some((request, r.status, p.first_ts, ts.saturating_sub(p.first_ts)));
                        self.resp.msg = Some(Message { head: buf[..r.head_len].to_vec(), ..Default::default() });
                    }
                    let mut framing = r.body;
                    if let Some(p) = req {
                        answered(cx, p.endpoint, &self.conn, r.status, ts.saturating_sub(p.first_ts));
                        if p.head {
                            framing = BodyFraming::None;
                        }
                        if p.connect && (200..300).contains(&r.status) {
                            self.req.state = State::Opaque;
                            self.count_bytes(dir, r.head_len as u64, cx);
                            self.resp.state = State::Opaque;
                            return Parsed::Done(r.head_len);
                        }
                    } else {
                        cx.totals.unpaired_responses += 1;
                    }
                    self.count_bytes(dir, r.head_len as u64, cx);
                    self.resp.state = if r.status == 101 {
                        self.req.state = State::Opaque;
                        State::Opaque
                    } else {
                        body_state(framing)
                    };
                    if matches!(self.resp.state, State::Head | State::Opaque) {
                        self.done(dir, cx);
                    }
                    Parsed::Done(r.head_len)
                }
            },
        }
    }

    /// The request a response head at `ts` answers: the oldest waiting one, or after the response
    /// side lost its place, the latest one sent before `ts` (the older ones are then unanswered).
    fn pair(&mut self, ts: u64, cx: &mut Ctx<'_>) -> Option<Pending> {
        if self.resp_desync {
            self.resp_desync = false;
            let n = self.pending.iter().take_while(|p| p.first_ts <= ts).count();
            if n == 0 {
                return None;
            }
            for old in self.pending.drain(..n - 1).collect::<Vec<_>>() {
                unanswered(old.endpoint, &self.conn, cx);
            }
            let p = self.pending.pop_front()?;
            if p.gap_after {
                // The answer may be to a request lost after this one: pair with neither.
                unanswered(p.endpoint, &self.conn, cx);
                return None;
            }
            return Some(p);
        }
        // A response cannot start before its request did.
        if self.pending.front().is_some_and(|p| p.first_ts <= ts) {
            self.pending.pop_front()
        } else {
            None
        }
    }

    /// The side lost its place: the message in progress ends here.
    fn lose(&mut self, dir: Dir, cx: &mut Ctx<'_>) {
        // The message in progress is cut: what was seen of it still goes to the checks, marked.
        if let Some(m) = self.side(dir).msg.as_mut() {
            m.truncated = true;
        }
        self.done(dir, cx);
        let s = self.side(dir);
        if !matches!(s.state, State::Head if s.buf.is_empty()) {
            cx.comp.messages_cut += 1;
        }
        s.buf.clear();
        s.state = State::Lost;
        s.endpoint = None;
        if dir == Dir::ToClient {
            self.resp_desync = true;
        } else {
            for p in &mut self.pending {
                p.gap_after = true;
            }
        }
    }

    fn gap(&mut self, dir: Dir, len: u64, cx: &mut Ctx<'_>) {
        let s = self.side(dir);
        match &mut s.state {
            State::Lost | State::Opaque => {}
            State::Body(Body::Length(rem)) if len <= *rem => {
                *rem -= len;
                let ended = *rem == 0;
                if ended {
                    s.state = State::Head;
                }
                if let Some(m) = s.msg.as_mut() {
                    m.truncated = true;
                }
                self.count_bytes(dir, len, cx);
                if ended {
                    self.done(dir, cx);
                }
            }
            State::Body(Body::UntilClose) => {
                if let Some(m) = s.msg.as_mut() {
                    m.truncated = true;
                }
                self.count_bytes(dir, len, cx)
            }
            State::Body(Body::Chunked(c)) => {
                if c.skip(len) {
                    if let Some(m) = s.msg.as_mut() {
                        m.truncated = true;
                    }
                    self.count_bytes(dir, len, cx);
                } else {
                    self.lose(dir, cx);
                }
            }
            State::Head | State::Body(_) => {
                if matches!(s.state, State::Head) && s.buf.is_empty() && dir == Dir::ToServer {
                    // A gap where a request should start: whole requests may be in it.
                    cx.comp.request_gaps += 1;
                }
                self.lose(dir, cx);
            }
        }
    }

    fn end(&mut self, dir: Dir, cx: &mut Ctx<'_>) {
        if matches!(self.side(dir).state, State::Body(Body::UntilClose)) {
            self.done(dir, cx);
        } else if let Some(m) = self.side(dir).msg.as_mut() {
            m.truncated = true;
            self.done(dir, cx);
        }
        let s = self.side(dir);
        match &s.state {
            State::Body(Body::UntilClose) => s.state = State::Head,
            State::Head if s.buf.is_empty() => {}
            State::Lost | State::Opaque => {}
            _ => {
                cx.comp.messages_cut += 1;
                s.state = State::Lost;
            }
        }
        s.buf = Vec::new();
    }

    /// The connection is gone: requests still waiting are unanswered.
    pub fn close(&mut self, cx: &mut Ctx<'_>) {
        for p in self.pending.drain(..) {
            unanswered(p.endpoint, &self.conn, cx);
        }
    }

    /// Bytes this exchange holds in head buffers (and collected messages).
    pub fn buffered(&self) -> usize {
        let m = |s: &Side| s.msg.as_ref().map_or(0, |m| m.head.capacity() + m.body.capacity());
        self.req.buf.capacity() + self.resp.buf.capacity() + m(&self.req) + m(&self.resp)
    }

    /// The message of `dir` ended (or was cut): a request joins its pending entry, a response
    /// completes its call.
    fn done(&mut self, dir: Dir, cx: &mut Ctx<'_>) {
        let Some(m) = self.side(dir).msg.take() else { return };
        match dir {
            Dir::ToServer => {
                let id = self.req_id;
                if let Some(p) = self.pending.iter_mut().rev().find(|p| p.id == id) {
                    // The request alone, as soon as it is whole (what request-side inspection reads;
                    // the checks of whole calls skip it): status 0, no response.
                    if let Some(calls) = cx.calls.as_mut() {
                        calls.push(Call { client: self.conn.client, conn: self.conn, ts_ns: p.first_ts, request: m.clone(), status: 0, response: Message::default(), latency_ns: 0 });
                    }
                    p.request = Some(m);
                }
            }
            Dir::ToClient => {
                let Some((request, status, ts_ns, latency_ns)) = self.answering.take() else { return };
                if let Some(calls) = cx.calls.as_mut() {
                    calls.push(Call { client: self.conn.client, conn: self.conn, ts_ns, request, status, response: m, latency_ns });
                }
            }
        }
    }
}

/// Whether a request head asks for `Upgrade: h2c` (RFC 7540 §3.2).
fn upgrades_to_h2c(head: &[u8]) -> bool {
    h::head_headers(head).iter().any(|(n, v)| n.eq_ignore_ascii_case("upgrade") && v.split(|c| *c == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"h2c")))
}

/// Appends body bytes up to `max`; past it the message is marked truncated.
fn keep(m: &mut Message, data: &[u8], max: usize) {
    let room = max.saturating_sub(m.body.len());
    m.body.extend_from_slice(&data[..data.len().min(room)]);
    if data.len() > room {
        m.truncated = true;
    }
}

/// Counts `n` message bytes of `dir` to endpoint `e` (and its client's entry) and the totals.
pub(super) fn add_bytes(cx: &mut Ctx<'_>, e: usize, conn: &super::ConnKey, dir: Dir, n: u64) {
    let ep = &mut cx.endpoints.list[e];
    match dir {
        Dir::ToServer => {
            ep.request_bytes += n;
            cx.totals.request_bytes += n;
        }
        Dir::ToClient => {
            ep.response_bytes += n;
            cx.totals.response_bytes += n;
        }
    }
    if let Some(c) = cx.endpoints.client(e, conn) {
        match dir {
            Dir::ToServer => c.request_bytes += n,
            Dir::ToClient => c.response_bytes += n,
        }
    }
}

/// A request of endpoint `e` got its final answer `status` after `latency_ns`.
pub(super) fn answered(cx: &mut Ctx<'_>, e: usize, conn: &super::ConnKey, status: u16, latency_ns: u64) {
    let ep = &mut cx.endpoints.list[e];
    *ep.statuses.entry(status).or_insert(0) += 1;
    ep.latency.add(latency_ns);
    if let Some(c) = cx.endpoints.client(e, conn) {
        *c.statuses.entry(status).or_insert(0) += 1;
        c.latency.add(latency_ns);
    }
}

/// A request of endpoint `e` was given up without an answer.
pub(super) fn unanswered(endpoint: usize, conn: &super::ConnKey, cx: &mut Ctx<'_>) {
    cx.endpoints.list[endpoint].unanswered += 1;
    cx.totals.unanswered += 1;
    if let Some(c) = cx.endpoints.client(endpoint, conn) {
        c.unanswered += 1;
    }
}

fn body_state(b: BodyFraming) -> State {
    match b {
        BodyFraming::None => State::Head,
        BodyFraming::Length(n) => State::Body(Body::Length(n)),
        BodyFraming::Chunked => State::Body(Body::Chunked(Chunked::default())),
        BodyFraming::UntilClose => State::Body(Body::UntilClose),
    }
}
