//! TLS facts of one connection on a TLS port: the ClientHello (SNI, offered ALPN and versions,
//! JA4), the ServerHello (chosen version and, before TLS 1.3, ALPN and the Certificate's subject
//! and issuer) and the handshake time. Records are walked by their headers only; encrypted bytes are counted, never read.
use super::exchange::Dir;
use super::ConnKey;
use rxray_wire::tls::{self as t, RecordHeader};
use serde::Serialize;
use std::net::IpAddr;

/// Handshake bytes held per direction until its hello is whole.
const MAX_HELLO: usize = 64 * 1024;

/// What the handshake of one connection showed in clear text: the fields signatures and threat
/// lists match (`sni`, `ja4`, `alpn_offered`, `alpn`, `version`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TlsFacts {
    pub client: Option<IpAddr>,
    pub client_port: u16,
    pub server: Option<IpAddr>,
    pub server_port: u16,
    /// Event time of the ClientHello's first byte.
    pub ts_ns: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    pub alpn_offered: Vec<String>,
    /// The ALPN the server chose, when the ServerHello carries it (TLS 1.2 and older: in 1.3 it
    /// is encrypted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    /// The highest version the client offered, and the one the server chose ("1.3", "1.2", ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    /// The server certificate's subject and issuer ("C=US, O=..., CN=..."), before TLS 1.3 (which
    /// encrypts the certificate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_issuer: Option<String>,
    /// ClientHello to the client's Finished (its first encrypted handshake record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_ms: Option<f64>,
    /// Application-data bytes (records of type 23, headers included) each way; once a record
    /// header is lost, every later byte of that direction.
    pub client_encrypted_bytes: u64,
    pub server_encrypted_bytes: u64,
    /// Why a hello could not be read (what, at which byte of the message), or why the record
    /// walk stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Default)]
struct Side {
    hdr: [u8; 5],
    have: usize,
    /// The current record: its type and payload bytes left.
    kind: u8,
    left: u32,
    /// Handshake bytes until the hello is whole; `done` once read (or given up).
    hs: Vec<u8>,
    done: bool,
    /// The first handshake message (the hello) was read.
    hello_seen: bool,
    ccs: bool,
    /// The record walk lost its place: every byte is counted as encrypted.
    lost: bool,
    /// Picked up mid-way: the first byte seen must start a handshake record, or nothing is read.
    unsure: bool,
    record_ts: u64,
}

/// One TLS connection.
#[derive(Debug)]
pub struct TlsConn {
    sides: [Side; 2],
    pub facts: TlsFacts,
    /// The ServerHello was read (or the connection ended): the facts are final.
    pub complete: bool,
    finished: bool,
}

fn ix(d: Dir) -> usize {
    match d {
        Dir::ToServer => 0,
        Dir::ToClient => 1,
    }
}

impl TlsConn {
    pub fn new(k: &ConnKey) -> Self {
        TlsConn {
            sides: [Side::default(), Side::default()],
            facts: TlsFacts { client: Some(k.client), client_port: k.client_port, server: Some(k.server), server_port: k.server_port, ..Default::default() },
            complete: false,
            finished: false,
        }
    }

    fn count(&mut self, dir: Dir, n: u64) {
        match dir {
            Dir::ToServer => self.facts.client_encrypted_bytes += n,
            Dir::ToClient => self.facts.server_encrypted_bytes += n,
        }
    }

    fn lose(&mut self, dir: Dir, why: &str) {
        self.sides[ix(dir)].lost = true;
        if self.facts.error.is_none() {
            self.facts.error = Some(why.to_string());
        }
    }

    /// The direction was picked up mid-way (no SYN seen).
    pub fn midway(&mut self, dir: Dir) {
        self.sides[ix(dir)].unsure = true;
    }

    pub fn data(&mut self, dir: Dir, mut b: &[u8], ts: u64) {
        let i = ix(dir);
        if std::mem::take(&mut self.sides[i].unsure) && !RecordHeader::parse(b).is_some_and(|h| h.kind == t::HANDSHAKE) {
            self.lose(dir, "connection picked up mid-way");
            self.sides[i].done = true;
        }
        while !b.is_empty() {
            let s = &mut self.sides[i];
            if s.lost {
                self.count(dir, b.len() as u64);
                return;
            }
            if s.left == 0 {
                if s.have == 0 {
                    s.record_ts = ts;
                }
                let k = (5 - s.have).min(b.len());
                s.hdr[s.have..s.have + k].copy_from_slice(&b[..k]);
                s.have += k;
                b = &b[k..];
                if s.have < 5 {
                    continue;
                }
                s.have = 0;
                let Some(h) = RecordHeader::parse(&s.hdr) else {
                    self.lose(dir, "not a TLS record header");
                    continue;
                };
                s.kind = h.kind;
                s.left = u32::from(h.len);
                let rts = s.record_ts;
                if h.kind == t::APPLICATION_DATA {
                    self.count(dir, 5);
                }
                self.record_start(dir, h.kind, rts);
                continue;
            }
            let k = (s.left as usize).min(b.len());
            let (chunk, rest) = b.split_at(k);
            b = rest;
            s.left -= k as u32;
            match s.kind {
                t::APPLICATION_DATA => self.count(dir, k as u64),
                t::HANDSHAKE if !s.done => {
                    if s.hs.len() + k > MAX_HELLO {
                        s.done = true;
                        s.hs = Vec::new();
                        self.facts.error.get_or_insert_with(|| "hello over 64 KiB".into());
                    } else {
                        s.hs.extend_from_slice(chunk);
                        self.hello(dir);
                    }
                }
                _ => {}
            }
        }
    }

    /// A record begins: the client's Finished ends the handshake (TLS 1.3: its first application-
    /// data record; 1.2: its first handshake record after ChangeCipherSpec).
    fn record_start(&mut self, dir: Dir, kind: u8, ts: u64) {
        let s = &mut self.sides[ix(dir)];
        if kind == t::CHANGE_CIPHER_SPEC {
            s.ccs = true;
            if dir == Dir::ToClient && !s.done {
                self.server_done();
            }
        }
        let finished = dir == Dir::ToServer && self.sides[0].done && (kind == t::APPLICATION_DATA || (kind == t::HANDSHAKE && self.sides[0].ccs));
        if finished && !self.finished && self.facts.ja4.is_some() && self.sides[1].done {
            self.finished = true;
            self.facts.handshake_ms = Some(((ts.saturating_sub(self.facts.ts_ns)) as f64 / 1e3).round() / 1e3);
        }
    }

    /// Reads every whole handshake message collected so far: the client's ClientHello; the
    /// server's ServerHello and, before TLS 1.3 (where they are still in clear text), its
    /// Certificate, up to ServerHelloDone.
    fn hello(&mut self, dir: Dir) {
        loop {
            let s = &mut self.sides[ix(dir)];
            if s.done {
                return;
            }
            let Some((kind, n)) = t::handshake_message(&s.hs) else { return };
            let msg: Vec<u8> = s.hs.drain(..n).collect();
            self.message(dir, kind, &msg);
        }
    }

    fn message(&mut self, dir: Dir, kind: u8, msg: &[u8]) {
        let s = &mut self.sides[ix(dir)];
        let first = !s.hello_seen;
        s.hello_seen = true;
        match (dir, kind, first) {
            (Dir::ToServer, t::CLIENT_HELLO, true) => {
                s.done = true;
                s.hs = Vec::new();
                match t::parse_client_hello(msg) {
                    Ok(h) => {
                        self.facts.ts_ns = s.record_ts;
                        self.facts.sni = h.sni.clone();
                        self.facts.alpn_offered = h.alpn.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
                        let v = h.supported_versions.iter().copied().filter(|v| !t::is_grease(*v)).max().unwrap_or(h.legacy_version);
                        self.facts.client_version = Some(t::version_name(v));
                        self.facts.ja4 = Some(t::ja4(&h));
                    }
                    Err(e) => self.facts.error = Some(format!("ClientHello: {e}")),
                }
            }
            (Dir::ToClient, t::SERVER_HELLO, true) => match t::parse_server_hello(msg) {
                Ok(h) => {
                    self.facts.version = Some(t::version_name(h.version()));
                    self.facts.cipher = Some(format!("0x{:04x}", h.cipher));
                    self.facts.alpn = h.alpn.as_ref().map(|a| String::from_utf8_lossy(a).into_owned());
                    // TLS 1.3 encrypts everything after the ServerHello.
                    if h.version() >= 0x0304 {
                        self.server_done();
                    }
                }
                Err(e) => {
                    self.facts.error = Some(format!("ServerHello: {e}"));
                    self.server_done();
                }
            },
            (Dir::ToClient, t::CERTIFICATE, false) => {
                match t::certificate_names(msg) {
                    Ok(Some((subject, issuer))) => {
                        self.facts.cert_subject = Some(subject);
                        self.facts.cert_issuer = Some(issuer);
                    }
                    Ok(None) => {}
                    Err(e) => self.facts.error = Some(format!("Certificate: {e}")),
                }
                self.server_done();
            }
            // Other messages before ServerHelloDone (ServerKeyExchange, CertificateRequest).
            (Dir::ToClient, k, false) if k != t::SERVER_HELLO_DONE => {}
            (Dir::ToClient, _, false) => self.server_done(),
            (Dir::ToServer, _, _) => {
                s.done = true;
                s.hs = Vec::new();
                self.facts.error = Some("the client's first handshake message is not a ClientHello".into());
            }
            (Dir::ToClient, _, true) => {
                self.facts.error = Some("the server's first handshake message is not a ServerHello".into());
                self.server_done();
            }
        }
    }

    /// The server's clear-text handshake is over: the facts are final.
    fn server_done(&mut self) {
        let s = &mut self.sides[1];
        s.done = true;
        s.hs = Vec::new();
        self.complete = true;
    }

    /// `len` bytes were lost or not copied: skipped inside a record, else the walk stops.
    pub fn gap(&mut self, dir: Dir, len: u64) {
        let s = &mut self.sides[ix(dir)];
        if s.lost {
            self.count(dir, len);
            return;
        }
        if s.have == 0 && len <= u64::from(s.left) {
            s.left -= len as u32;
            let kind = s.kind;
            if kind == t::HANDSHAKE && !s.done {
                s.done = true;
                s.hs = Vec::new();
                self.facts.error.get_or_insert_with(|| "hello bytes lost".into());
            }
            if kind == t::APPLICATION_DATA {
                self.count(dir, len);
            }
        } else {
            self.count(dir, len);
            self.lose(dir, "bytes lost across a record header");
        }
    }
}
