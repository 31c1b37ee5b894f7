//! Joining the agent: the socket protocol (versioned, length-prefixed frames) that lets a command
//! (`watch`, ...) take its output from the running agent instead of attaching again. The agent side
//! (`hub`) keeps one bounded queue and one filter per client; the command side is `client`.
//!
//! Protocol, version 1 (docs/agent.md, "Joining the agent"):
//! - The client sends one JSON line: a `JoinRequest` (`{"cmd":"join","v":1,"command":"watch",...}`).
//! - The agent answers with frames, each `[kind: u8][length: u32 big-endian][payload]`:
//!   `H` hello (JSON `Hello`, always first), `O` output (bytes the command writes to its stdout,
//!   one event each), `L` loss (JSON `{"lost": N}`: the events dropped so far because the client's
//!   queue was full), `S` summary (JSON, the last frame before the agent closes).
//! - Later, the client may send `{"cmd":"bye"}` (one line): the agent queues the summary and closes.
//!   A client that simply disconnects is forgotten.
pub mod client;
pub mod hub;
pub mod top_view;
pub mod views;

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks; an agent refuses a request of another one.
pub const VERSION: u32 = 1;

/// The largest frame either side accepts (a packet line is a few hundred bytes).
pub const MAX_FRAME: usize = 1 << 20;

/// The commands that can join, and what each receives.
pub const COMMANDS: &[&str] = &["watch", "http", "alerts", "flows", "drops", "conns", "capture", "latency", "top"];

/// What a joining command asks for: its own view, filtered and rendered by the agent.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct JoinRequest {
    /// Always "join".
    pub cmd: String,
    /// The protocol version (`VERSION`).
    pub v: u32,
    /// The command joining (`watch`).
    pub command: String,
    /// Its interfaces; empty: every interface the agent owns.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Its filter in tcpdump syntax, applied by the agent for this client only.
    #[serde(default)]
    pub filter: Option<String>,
    /// JSON Lines output instead of text.
    #[serde(default)]
    pub json: bool,
    /// Payload bytes per packet (as `watch -s`).
    #[serde(default)]
    pub snap: u32,
    /// The process that read each packet's flow (as `watch` without `--no-context`).
    #[serde(default)]
    pub context: bool,
    /// Stop after this many events.
    #[serde(default)]
    pub count: Option<u64>,
    /// A smaller queue than the agent's `[clients] queue` (events).
    #[serde(default)]
    pub queue: Option<usize>,
    /// `http`: the server ports it watches (a subset of the agent's `[http] ports`).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// `http`: endpoints kept before the rest go to `other`.
    #[serde(default)]
    pub max_endpoints: Option<usize>,
    /// Snapshot commands (`http`): seconds between snapshots.
    #[serde(default)]
    pub interval: Option<f64>,
    /// Snapshot commands: rows in the text table.
    #[serde(default)]
    pub top: Option<usize>,
    /// `flows`: the table's order (`bytes`, `packets`, `rate`).
    #[serde(default)]
    pub sort: Option<String>,
    /// Text output to a terminal (the table is redrawn in place).
    #[serde(default)]
    pub tty: bool,
    /// `alerts`: the detection options (the agent runs this client's own detectors).
    #[serde(default)]
    pub alerts: Option<AlertsRequest>,
}

/// A joined `alerts`'s detection options (paths absolute; the agent reads the files).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct AlertsRequest {
    pub signatures: String,
    #[serde(default)]
    pub detect_config: Option<String>,
    #[serde(default)]
    pub threat_lists: Vec<String>,
    pub max_file_size: u64,
}

/// The agent's first frame: accepted (with what it will send) or refused (and why).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Hello {
    pub v: u32,
    pub ok: bool,
    /// Why the join was refused.
    #[serde(default)]
    pub error: Option<String>,
    /// Refused because the agent does not own the interfaces asked for: the command may attach
    /// itself instead.
    #[serde(default)]
    pub not_owned: bool,
    #[serde(default)]
    pub host: String,
    /// The interfaces this client sees.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// The client's queue, in events.
    #[serde(default)]
    pub queue: usize,
    /// The client's id (as `rxray status` lists it).
    #[serde(default)]
    pub id: u64,
}

/// The kind of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Hello,
    Out,
    Lost,
    Summary,
}

impl Kind {
    pub fn byte(self) -> u8 {
        match self {
            Kind::Hello => b'H',
            Kind::Out => b'O',
            Kind::Lost => b'L',
            Kind::Summary => b'S',
        }
    }

    pub fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            b'H' => Kind::Hello,
            b'O' => Kind::Out,
            b'L' => Kind::Lost,
            b'S' => Kind::Summary,
            _ => return None,
        })
    }
}

/// One frame, encoded.
pub fn frame(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.push(kind.byte());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A frame's JSON payload: a typed record (`crate::records::agent`, or `Hello`), encoded.
pub fn json_frame<R: crate::sinks::Record>(kind: Kind, rec: &R) -> Vec<u8> {
    frame(kind, crate::sinks::json_line(rec).as_bytes())
}

impl crate::sinks::Record for Hello {
    const KEYS: crate::sinks::Keys = crate::sinks::Keys::Declared;
}

/// A protocol violation, with the byte offset in the stream where it was found.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    Kind { kind: u8, offset: u64 },
    TooLong { len: usize, offset: u64 },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Kind { kind, offset } => write!(f, "unknown frame kind 0x{kind:02x} at byte {offset} of the agent's stream"),
            FrameError::TooLong { len, offset } => write!(f, "a frame of {len} bytes at byte {offset} of the agent's stream (at most {MAX_FRAME})"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Splits a byte stream into frames as it arrives (partial frames wait for their rest).
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    /// Stream offset of `buf[0]`.
    offset: u64,
}

impl FrameReader {
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.offset += self.start as u64;
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<(Kind, Vec<u8>)>, FrameError> {
        let b = &self.buf[self.start..];
        if b.len() < 5 {
            return Ok(None);
        }
        let at = self.offset + self.start as u64;
        let kind = Kind::from_byte(b[0]).ok_or(FrameError::Kind { kind: b[0], offset: at })?;
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLong { len, offset: at });
        }
        if b.len() < 5 + len {
            return Ok(None);
        }
        let payload = b[5..5 + len].to_vec();
        self.start += 5 + len;
        if self.start > (64 << 10) {
            self.buf.drain(..self.start);
            self.offset += self.start as u64;
            self.start = 0;
        }
        Ok(Some((kind, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_at_any_byte_boundary() {
        let mut stream = Vec::new();
        stream.extend(json_frame(Kind::Hello, &Hello { v: 1, ok: true, ..Default::default() }));
        stream.extend(frame(Kind::Out, b"line one\n"));
        stream.extend(frame(Kind::Out, b""));
        stream.extend(json_frame(Kind::Lost, &crate::records::agent::LostNotice { lost: 3 }));
        for cut in 0..stream.len() {
            let mut r = FrameReader::default();
            let mut got = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                r.feed(part);
                while let Some(f) = r.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got.len(), 4, "cut at {cut}");
            assert_eq!(got[1], (Kind::Out, b"line one\n".to_vec()));
            assert_eq!(got[2], (Kind::Out, Vec::new()));
            assert_eq!(got[3].0, Kind::Lost);
        }
    }

    #[test]
    fn bad_frames_name_their_offset() {
        let mut r = FrameReader::default();
        r.feed(&frame(Kind::Out, b"ok"));
        r.feed(b"Z\0\0\0\0");
        assert!(r.next_frame().unwrap().is_some());
        assert_eq!(r.next_frame(), Err(FrameError::Kind { kind: b'Z', offset: 7 }));
        let mut r = FrameReader::default();
        r.feed(&[b'O', 0xff, 0, 0, 0]);
        assert!(matches!(r.next_frame(), Err(FrameError::TooLong { offset: 0, .. })));
    }

    #[test]
    fn a_request_round_trips_and_defaults_missing_fields() {
        let r = JoinRequest { cmd: "join".into(), v: VERSION, command: "watch".into(), filter: Some("udp".into()), snap: 64, ..Default::default() };
        let back: JoinRequest = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let min: JoinRequest = serde_json::from_str(r#"{"cmd":"join","v":1,"command":"watch"}"#).unwrap();
        assert!(min.interfaces.is_empty() && min.filter.is_none() && !min.json);
    }
}
