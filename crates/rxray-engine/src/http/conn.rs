//! Which protocol one connection speaks, and the switches between them: HTTP/1.x until the client
//! preface (or the server's first SETTINGS) or a 101 to `Upgrade: h2c` says HTTP/2; TLS on TLS ports.
use super::exchange::{Ctx, Dir, Exchange};
use super::h2::H2Conn;
use super::reassembly::Piece;
use super::tls::TlsConn;
use super::ConnKey;
use rxray_wire::h2 as w;

#[derive(Debug)]
pub enum Proto {
    Http1(Box<Exchange>),
    Http2(Box<H2Conn>),
    Tls(Box<TlsConn>),
}

/// One connection's parser.
#[derive(Debug)]
pub struct ConnParser {
    pub proto: Proto,
    key: ConnKey,
    /// Data was seen per direction (client, server).
    seen: [bool; 2],
    /// The direction was picked up mid-way.
    midway: [bool; 2],
    /// Counted once as an HTTP/2 connection that cannot be decoded.
    undecodable: bool,
}

fn ix(d: Dir) -> usize {
    match d {
        Dir::ToServer => 0,
        Dir::ToClient => 1,
    }
}

impl ConnParser {
    pub fn new(key: ConnKey, tls: bool) -> Self {
        let proto = if tls { Proto::Tls(Box::new(TlsConn::new(&key))) } else { Proto::Http1(Box::new(Exchange::new(key))) };
        ConnParser { proto, key, seen: [false; 2], midway: [false; 2], undecodable: false }
    }

    pub fn tls(&self) -> Option<&TlsConn> {
        match &self.proto {
            Proto::Tls(t) => Some(t),
            _ => None,
        }
    }

    /// The direction starts without knowing where messages begin (picked up mid-way).
    pub fn lost_place(&mut self, dir: Dir) {
        self.midway[ix(dir)] = true;
        match &mut self.proto {
            Proto::Http1(ex) => ex.lost_place(dir),
            Proto::Http2(_) => {}
            Proto::Tls(t) => t.midway(dir),
        }
    }

    pub fn piece(&mut self, dir: Dir, p: Piece<'_>, cx: &mut Ctx<'_>) {
        if let (Proto::Http1(_), Piece::Data { bytes, segment_start, .. }) = (&self.proto, p) {
            let first = !self.seen[ix(dir)];
            let preface = dir == Dir::ToServer && first && bytes.len() >= 4 && w::PREFACE.starts_with(&bytes[..bytes.len().min(w::PREFACE.len())]);
            // The server speaks first with its SETTINGS when the client's preface is still on the way.
            let server_first = dir == Dir::ToClient && first && !self.seen[0] && !self.midway[1] && w::FrameHeader::parse(bytes).is_some_and(|h| h.kind == w::SETTINGS) && w::starts_frame(bytes);
            if preface || server_first {
                cx.totals.h2_connections += 1;
                self.proto = Proto::Http2(Box::new(H2Conn::prior_knowledge(self.key)));
            } else if self.midway[ix(dir)] && segment_start && !self.undecodable && w::starts_frame(bytes) {
                // HTTP/2 frames with no start seen: no HPACK state, so nothing is read (the
                // bytes go on as unparsed).
                self.undecodable = true;
                cx.comp.h2_not_decodable += 1;
            }
        }
        if matches!(p, Piece::Data { .. }) {
            self.seen[ix(dir)] = true;
        }
        match &mut self.proto {
            Proto::Http1(ex) => {
                ex.piece(dir, p, cx);
                if let (Some((endpoint, first_ts)), Piece::Data { ts_ns, .. }) = (ex.h2_upgrade, p) {
                    let after = std::mem::take(&mut ex.after_upgrade);
                    cx.totals.h2_connections += 1;
                    let mut h2 = H2Conn::upgraded(self.key, endpoint, first_ts);
                    for (d, b) in [(Dir::ToServer, &after[0]), (Dir::ToClient, &after[1])] {
                        if !b.is_empty() {
                            h2.data(d, b, ts_ns, cx);
                        }
                    }
                    self.proto = Proto::Http2(Box::new(h2));
                }
            }
            Proto::Http2(h) => match p {
                Piece::Data { bytes, ts_ns, .. } => h.data(dir, bytes, ts_ns, cx),
                Piece::Gap { len, .. } => h.gap(dir, len, cx),
                Piece::End { .. } => h.end(dir, cx),
            },
            Proto::Tls(t) => match p {
                Piece::Data { bytes, ts_ns, .. } => t.data(dir, bytes, ts_ns),
                Piece::Gap { len, .. } => t.gap(dir, len),
                Piece::End { .. } => {}
            },
        }
    }

    pub fn close(&mut self, cx: &mut Ctx<'_>) {
        match &mut self.proto {
            Proto::Http1(ex) => ex.close(cx),
            Proto::Http2(h) => h.close(cx),
            Proto::Tls(t) => t.complete = true,
        }
    }
}
