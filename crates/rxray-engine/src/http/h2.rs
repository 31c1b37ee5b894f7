//! HTTP/2 over one reassembled connection (h2c: prior knowledge or `Upgrade: h2c`): frames per
//! direction, header blocks through each direction's HPACK state, streams paired into calls, gRPC.
//!
//! HPACK's dynamic table lives across a whole direction, so a connection is read only from its
//! start (the preface, the first SETTINGS); one picked up mid-way is counted as not decodable, and
//! a lost byte outside a DATA frame's payload (or a block HPACK refuses) ends the reading there.
use super::endpoints::{PROTO_GRPC, PROTO_H2C};
use super::exchange::{add_bytes, answered, unanswered, Call, Ctx, Dir, Message};
use rxray_wire::h2::{self as w, FrameHeader, GrpcMessages, HeaderDecoder};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Header-block bytes held per direction before the block is refused (as an HTTP/1.x head).
const MAX_BLOCK: usize = 64 * 1024;
/// Streams tracked at once on one connection (a peer's usual SETTINGS_MAX_CONCURRENT_STREAMS is
/// 100 to 1000); past it the oldest is given up as unanswered.
const MAX_STREAMS: usize = 4096;

#[derive(Debug)]
enum Frames {
    /// The client preface: bytes of it matched so far.
    Preface(usize),
    /// A frame header: bytes of it read so far.
    Header([u8; 9], usize),
    /// A frame's payload, buffered (all frames but DATA).
    Payload { h: FrameHeader, buf: Vec<u8> },
    /// A frame's payload skipped (a frame the engine does not read, too long to buffer).
    Skip { left: u32 },
    /// A DATA frame: `pad` is None until the pad length (first byte, PADDED) is read; `data` is the
    /// data bytes left, then `left` the frame bytes left (padding after the data).
    Data { stream: u32, end: bool, padded_unread: bool, data: u32, left: u32 },
    /// Not readable any more (lost bytes, a refused block, a protocol error).
    Dead,
}

#[derive(Debug)]
struct Block {
    stream: u32,
    end_stream: bool,
    push: bool,
    buf: Vec<u8>,
    /// Frame bytes on the wire (headers included) of the block's frames.
    wire: u64,
    ts: u64,
}

#[derive(Debug)]
struct Side {
    frames: Frames,
    dec: HeaderDecoder,
    block: Option<Block>,
    /// The first frame must be a SETTINGS (the connection's start was seen).
    expect_settings: bool,
    /// Event time of the piece the current frame started in.
    frame_ts: u64,
}

impl Side {
    fn new(frames: Frames) -> Self {
        Side { frames, dec: HeaderDecoder::default(), block: None, expect_settings: true, frame_ts: 0 }
    }
}

#[derive(Debug, Default)]
struct Stream {
    endpoint: Option<usize>,
    grpc: bool,
    first_ts: u64,
    /// The final response head arrived.
    answered: bool,
    ended: [bool; 2],
    msgs: [GrpcMessages; 2],
    /// Whole-call copies for the checks (only when calls are collected).
    request: Option<Message>,
    response: Option<Message>,
    status: u16,
    /// From the first request byte to the response head.
    latency_ns: u64,
}

/// One HTTP/2 connection.
#[derive(Debug)]
pub struct H2Conn {
    conn: super::ConnKey,
    sides: [Side; 2],
    streams: BTreeMap<u32, Stream>,
    /// The connection was already counted as lost (once).
    lost: bool,
}

fn ix(d: Dir) -> usize {
    match d {
        Dir::ToServer => 0,
        Dir::ToClient => 1,
    }
}

impl H2Conn {
    /// A connection that starts with the client preface (prior knowledge).
    pub fn prior_knowledge(conn: super::ConnKey) -> Self {
        H2Conn { conn, sides: [Side::new(Frames::Preface(0)), Side::new(Frames::Header([0; 9], 0))], streams: BTreeMap::new(), lost: false }
    }

    /// A connection upgraded from HTTP/1.1 (`Upgrade: h2c`, answered 101): the upgrade request is
    /// stream 1, half-closed by the client, counted already at `endpoint`.
    pub fn upgraded(conn: super::ConnKey, endpoint: usize, first_ts: u64) -> Self {
        let mut c = H2Conn::prior_knowledge(conn);
        c.streams.insert(1, Stream { endpoint: Some(endpoint), first_ts, ended: [true, false], ..Default::default() });
        c
    }

    pub fn data(&mut self, dir: Dir, mut b: &[u8], ts: u64, cx: &mut Ctx<'_>) {
        let i = ix(dir);
        while !b.is_empty() {
            let side = &mut self.sides[i];
            match &mut side.frames {
                Frames::Dead => {
                    cx.comp.unparsed_bytes += b.len() as u64;
                    return;
                }
                Frames::Preface(n) => {
                    let k = (w::PREFACE.len() - *n).min(b.len());
                    if b[..k] != w::PREFACE[*n..*n + k] {
                        self.die(dir, cx);
                        continue;
                    }
                    *n += k;
                    if *n == w::PREFACE.len() {
                        side.frames = Frames::Header([0; 9], 0);
                    }
                    b = &b[k..];
                }
                Frames::Header(h, n) => {
                    if *n == 0 {
                        side.frame_ts = ts;
                    }
                    let k = (9 - *n).min(b.len());
                    h[*n..*n + k].copy_from_slice(&b[..k]);
                    *n += k;
                    b = &b[k..];
                    if *n == 9 {
                        let raw = *h;
                        // The next frame's header follows unless this one's payload comes first.
                        side.frames = Frames::Header([0; 9], 0);
                        self.header(dir, &raw, cx);
                    }
                }
                Frames::Payload { h, buf } => {
                    let k = (h.len as usize - buf.len()).min(b.len());
                    buf.extend_from_slice(&b[..k]);
                    b = &b[k..];
                    if buf.len() == h.len as usize {
                        let (h, buf) = (*h, std::mem::take(buf));
                        side.frames = Frames::Header([0; 9], 0);
                        self.frame(dir, h, &buf, cx);
                    }
                }
                Frames::Skip { left } => {
                    let k = (*left).min(b.len() as u32);
                    *left -= k;
                    b = &b[k as usize..];
                    if *left == 0 {
                        side.frames = Frames::Header([0; 9], 0);
                    }
                }
                Frames::Data { stream, end, padded_unread, data, left } => {
                    if *padded_unread {
                        let pad = u32::from(b[0]);
                        *padded_unread = false;
                        *left -= 1;
                        b = &b[1..];
                        if pad > *left {
                            self.die(dir, cx);
                            continue;
                        }
                        *data = *left - pad;
                        continue;
                    }
                    let k = (*data).min(b.len() as u32);
                    let (s, e) = (*stream, *end);
                    *data -= k;
                    *left -= k;
                    let pad = (*left - *data).min(b.len() as u32 - k);
                    *left -= pad;
                    let done = *left == 0;
                    if done {
                        side.frames = Frames::Header([0; 9], 0);
                    }
                    let (chunk, rest) = b.split_at(k as usize);
                    b = &rest[pad as usize..];
                    self.stream_data(dir, s, chunk, k as u64, cx);
                    if done && e {
                        self.end_stream(dir, s, cx);
                    }
                }
            }
        }
    }

    /// `len` bytes were lost: skipped inside a DATA frame (framing intact), else the direction
    /// cannot be read any more.
    pub fn gap(&mut self, dir: Dir, len: u64, cx: &mut Ctx<'_>) {
        let side = &mut self.sides[ix(dir)];
        match &mut side.frames {
            Frames::Dead => {}
            Frames::Skip { left } if len <= u64::from(*left) => {
                *left -= len as u32;
                if *left == 0 {
                    side.frames = Frames::Header([0; 9], 0);
                }
            }
            Frames::Data { stream, end, padded_unread: false, data, left } if len <= u64::from(*left) => {
                let (s, e) = (*stream, *end);
                let in_data = (len as u32).min(*data);
                *data -= in_data;
                *left -= len as u32;
                if *left == 0 {
                    side.frames = Frames::Header([0; 9], 0);
                }
                let exact = self.streams.get_mut(&s).is_none_or(|st| st.msgs[ix(dir)].skip(u64::from(in_data)));
                if let Some(st) = self.streams.get_mut(&s) {
                    if !exact {
                        // The gRPC message walk lost its place: later counts would be guesses.
                        st.grpc = false;
                    }
                    for m in [st.request.as_mut(), st.response.as_mut()].into_iter().flatten() {
                        m.truncated = true;
                    }
                    if let Some(e) = st.endpoint {
                        add_bytes(cx, e, &self.conn, dir, len);
                    }
                }
                if matches!(self.sides[ix(dir)].frames, Frames::Header(..)) && e {
                    self.end_stream(dir, s, cx);
                }
            }
            _ => self.die(dir, cx),
        }
    }

    /// The direction ended (FIN, reset, idle, end of input).
    pub fn end(&mut self, _dir: Dir, _cx: &mut Ctx<'_>) {}

    /// The connection is gone: streams still waiting for an answer are unanswered.
    pub fn close(&mut self, cx: &mut Ctx<'_>) {
        for (_, s) in std::mem::take(&mut self.streams) {
            if let (Some(e), false) = (s.endpoint, s.answered) {
                unanswered(e, &self.conn, cx);
            }
        }
    }

    fn die(&mut self, dir: Dir, cx: &mut Ctx<'_>) {
        self.sides[ix(dir)].frames = Frames::Dead;
        self.sides[ix(dir)].block = None;
        if !self.lost {
            self.lost = true;
            cx.comp.h2_decoding_lost += 1;
        }
    }

    fn header(&mut self, dir: Dir, raw: &[u8; 9], cx: &mut Ctx<'_>) {
        let Some(h) = FrameHeader::parse(raw) else { return };
        let side = &mut self.sides[ix(dir)];
        if side.expect_settings {
            side.expect_settings = false;
            if h.kind != w::SETTINGS || h.flags & w::FLAG_ACK != 0 {
                self.die(dir, cx);
                return;
            }
        }
        if side.block.is_some() && h.kind != w::CONTINUATION {
            // RFC 9113 §6.10: nothing may come between a block's frames.
            self.die(dir, cx);
            return;
        }
        let wire = 9 + u64::from(h.len);
        match h.kind {
            w::DATA => {
                if let Some(e) = self.streams.get(&h.stream).and_then(|s| s.endpoint) {
                    add_bytes(cx, e, &self.conn, dir, 9);
                }
                let end = h.flags & w::FLAG_END_STREAM != 0;
                let padded = h.flags & w::FLAG_PADDED != 0;
                if h.len == 0 {
                    if padded {
                        self.die(dir, cx);
                    } else if end {
                        self.end_stream(dir, h.stream, cx);
                    }
                    return;
                }
                self.sides[ix(dir)].frames = Frames::Data { stream: h.stream, end, padded_unread: padded, data: h.len, left: h.len };
            }
            w::HEADERS | w::CONTINUATION | w::PUSH_PROMISE => {
                let held = side.block.as_ref().map_or(0, |b| b.buf.len());
                if held + h.len as usize > MAX_BLOCK {
                    cx.comp.heads_too_large += 1;
                    self.die(dir, cx);
                    return;
                }
                if h.kind == w::CONTINUATION && side.block.as_ref().is_none_or(|b| b.stream != h.stream) {
                    self.die(dir, cx);
                    return;
                }
                let _ = wire;
                side.frames = Frames::Payload { h, buf: Vec::with_capacity(h.len as usize) };
                if h.len == 0 {
                    side.frames = Frames::Header([0; 9], 0);
                    self.frame(dir, h, &[], cx);
                }
            }
            w::SETTINGS | w::RST_STREAM | w::GOAWAY if h.len as usize <= MAX_BLOCK => {
                side.frames = Frames::Payload { h, buf: Vec::with_capacity(h.len as usize) };
                if h.len == 0 {
                    side.frames = Frames::Header([0; 9], 0);
                    self.frame(dir, h, &[], cx);
                }
            }
            _ => {
                if h.len > 0 {
                    side.frames = Frames::Skip { left: h.len };
                }
            }
        }
    }

    fn frame(&mut self, dir: Dir, h: FrameHeader, p: &[u8], cx: &mut Ctx<'_>) {
        let ts = self.sides[ix(dir)].frame_ts;
        match h.kind {
            w::HEADERS | w::PUSH_PROMISE => {
                let frag = match w::headers_fragment(h.flags, if h.kind == w::PUSH_PROMISE { p.get(4..).unwrap_or(&[]) } else { p }) {
                    Ok(f) => f,
                    Err(_) => return self.die(dir, cx),
                };
                let blk = Block { stream: h.stream, end_stream: h.flags & w::FLAG_END_STREAM != 0, push: h.kind == w::PUSH_PROMISE, buf: frag.to_vec(), wire: 9 + u64::from(h.len), ts };
                self.sides[ix(dir)].block = Some(blk);
                if h.flags & w::FLAG_END_HEADERS != 0 {
                    self.block_done(dir, cx);
                }
            }
            w::CONTINUATION => {
                if let Some(b) = self.sides[ix(dir)].block.as_mut() {
                    b.buf.extend_from_slice(p);
                    b.wire += 9 + u64::from(h.len);
                }
                if h.flags & w::FLAG_END_HEADERS != 0 {
                    self.block_done(dir, cx);
                }
            }
            w::SETTINGS => {
                if w::settings(p).is_err() {
                    self.die(dir, cx);
                }
            }
            w::RST_STREAM => {
                if w::rst_code(p).is_err() {
                    return self.die(dir, cx);
                }
                if let Some(s) = self.streams.remove(&h.stream) {
                    cx.totals.resets += 1;
                    if let Some(e) = s.endpoint {
                        cx.endpoints.list[e].resets += 1;
                    }
                }
            }
            w::GOAWAY => {
                let Ok((last, _code)) = w::goaway(p) else { return self.die(dir, cx) };
                cx.totals.goaways += 1;
                for s in self.streams.values() {
                    if let Some(e) = s.endpoint {
                        cx.endpoints.list[e].goaways += 1;
                    }
                }
                // Streams past the last one the sender processed were refused: never answered.
                let refused: Vec<u32> = self.streams.range(last.saturating_add(1)..).map(|(k, _)| *k).collect();
                for k in refused {
                    if let Some(s) = self.streams.remove(&k) {
                        if let (Some(e), false) = (s.endpoint, s.answered) {
                            unanswered(e, &self.conn, cx);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// A whole header block: decoded through the direction's HPACK state, then read.
    fn block_done(&mut self, dir: Dir, cx: &mut Ctx<'_>) {
        let Some(b) = self.sides[ix(dir)].block.take() else { return };
        let mut f = Fields::default();
        let collect = cx.calls.is_some();
        if self.sides[ix(dir)].dec.decode(&b.buf, |n, v| f.add(n, v, collect)).is_err() {
            cx.comp.parse_errors += 1;
            return self.die(dir, cx);
        }
        if b.push {
            return; // a promised request: its block kept the HPACK state; it is not a call here
        }
        match dir {
            Dir::ToServer => self.request_block(b, f, cx),
            Dir::ToClient => self.response_block(b, f, cx),
        }
    }

    fn request_block(&mut self, b: Block, f: Fields, cx: &mut Ctx<'_>) {
        if let Some(s) = self.streams.get_mut(&b.stream) {
            // Trailers of the request (or a block on an upgraded stream 1).
            if let Some(e) = s.endpoint {
                add_bytes(cx, e, &self.conn, Dir::ToServer, b.wire);
            }
        } else {
            if self.streams.len() >= MAX_STREAMS {
                if let Some((_, old)) = self.streams.pop_first() {
                    cx.comp.pipeline_overflow += 1;
                    if let (Some(e), false) = (old.endpoint, old.answered) {
                        unanswered(e, &self.conn, cx);
                    }
                }
            }
            let grpc = f.content_type.starts_with("application/grpc");
            let method = if f.method.is_empty() { "?" } else { f.method.as_str() };
            let target = if f.path.is_empty() { "/" } else { f.path.as_str() };
            let e = cx.endpoints.request_of(if grpc { PROTO_GRPC } else { PROTO_H2C }, method, target, self.conn.client);
            if let Some(c) = cx.endpoints.client(e, &self.conn) {
                c.requests += 1;
            }
            cx.totals.requests += 1;
            add_bytes(cx, e, &self.conn, Dir::ToServer, b.wire);
            let request = cx.calls.is_some().then(|| Message { head: f.head(&format!("{method} {target} HTTP/1.1")), ..Default::default() });
            self.streams.insert(b.stream, Stream { endpoint: Some(e), grpc, first_ts: b.ts, request, ..Default::default() });
        }
        if b.end_stream {
            self.end_stream(Dir::ToServer, b.stream, cx);
        }
    }

    fn response_block(&mut self, b: Block, f: Fields, cx: &mut Ctx<'_>) {
        let Some(s) = self.streams.get_mut(&b.stream) else {
            // An answer to a request never seen (a stream the server opened is a push: not here).
            if f.status.is_some_and(|c| c >= 200) {
                cx.totals.responses += 1;
                cx.totals.unpaired_responses += 1;
            }
            return;
        };
        if let Some(e) = s.endpoint {
            add_bytes(cx, e, &self.conn, Dir::ToClient, b.wire);
        }
        match f.status {
            Some(c) if (100..200).contains(&c) => cx.totals.interim_responses += 1,
            Some(c) if !s.answered => {
                s.answered = true;
                s.status = c;
                cx.totals.responses += 1;
                if let Some(e) = s.endpoint {
                    answered(cx, e, &self.conn, c, b.ts.saturating_sub(s.first_ts));
                    s.latency_ns = b.ts.saturating_sub(s.first_ts);
                }
                if cx.calls.is_some() {
                    s.response = Some(Message { head: f.head(&format!("HTTP/1.1 {c} -")), ..Default::default() });
                }
            }
            _ => {}
        }
        if let (Some(g), Some(e), true) = (f.grpc_status, s.endpoint, s.grpc) {
            *cx.endpoints.list[e].grpc_statuses.entry(g).or_insert(0) += 1;
        }
        if b.end_stream {
            self.end_stream(Dir::ToClient, b.stream, cx);
        }
    }

    fn stream_data(&mut self, dir: Dir, stream: u32, chunk: &[u8], n: u64, cx: &mut Ctx<'_>) {
        let Some(s) = self.streams.get_mut(&stream) else { return };
        if let Some(e) = s.endpoint {
            add_bytes(cx, e, &self.conn, dir, n);
        }
        if s.grpc {
            s.msgs[ix(dir)].feed(chunk);
        }
        let m = match dir {
            Dir::ToServer => s.request.as_mut(),
            Dir::ToClient => s.response.as_mut(),
        };
        if let Some(m) = m {
            let room = cx.body_max.saturating_sub(m.body.len());
            m.body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            m.truncated |= chunk.len() > room;
        }
    }

    fn end_stream(&mut self, dir: Dir, stream: u32, cx: &mut Ctx<'_>) {
        let Some(s) = self.streams.get_mut(&stream) else { return };
        s.ended[ix(dir)] = true;
        // The request alone, as soon as it is whole, as HTTP/1.x delivers it: what request-side
        // inspection reads (request rules, API limits); the checks of whole calls skip it.
        if let (Dir::ToServer, Some(calls), Some(request)) = (dir, cx.calls.as_mut(), s.request.as_ref()) {
            calls.push(Call { client: self.conn.client, conn: self.conn, ts_ns: s.first_ts, request: request.clone(), status: 0, response: Message::default(), latency_ns: 0 });
        }
        if !(s.ended[0] && s.ended[1]) {
            return;
        }
        let Some(s) = self.streams.remove(&stream) else { return };
        let Some(e) = s.endpoint else { return };
        if s.grpc {
            let ep = &mut cx.endpoints.list[e];
            ep.grpc_request_messages += s.msgs[0].count;
            ep.grpc_response_messages += s.msgs[1].count;
        }
        if !s.answered {
            unanswered(e, &self.conn, cx);
        }
        if let (Some(calls), Some(request), Some(response)) = (cx.calls.as_mut(), s.request, s.response) {
            calls.push(Call { client: self.conn.client, conn: self.conn, ts_ns: s.first_ts, request, status: s.status, response, latency_ns: s.latency_ns });
        }
    }
}

/// The fields of one block the engine reads (and all of them, as text, when calls are collected).
#[derive(Default)]
struct Fields {
    method: String,
    path: String,
    content_type: String,
    status: Option<u16>,
    grpc_status: Option<u32>,
    /// Regular fields as `name: value` lines (only when calls are collected).
    lines: String,
}

impl Fields {
    fn add(&mut self, n: &[u8], v: &[u8], collect: bool) {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match n {
            b":method" => self.method = text(v),
            b":path" => self.path = text(v),
            b":status" => self.status = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()),
            b"content-type" => self.content_type = text(v),
            b"grpc-status" => self.grpc_status = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()),
            _ => {}
        }
        if collect && !n.starts_with(b":") {
            // Control characters would break the HTTP/1-shaped head the checks read.
            if !n.iter().chain(v).any(|c| *c == b'\r' || *c == b'\n') {
                let _ = write!(self.lines, "{}: {}\r\n", String::from_utf8_lossy(n), String::from_utf8_lossy(v));
            }
        }
    }

    /// An HTTP/1-shaped head (start line, fields, blank line), which the whole-call checks read.
    fn head(&self, start: &str) -> Vec<u8> {
        format!("{start}\r\n{}\r\n", self.lines).into_bytes()
    }
}
