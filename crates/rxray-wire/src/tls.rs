//! TLS in clear text: record headers, the ClientHello and ServerHello (RFC 8446 §4.1.2-3), and the
//! JA4 fingerprint of a ClientHello (FoxIO's published algorithm). Nothing after the hellos is read.
use sha2::{Digest, Sha256};

/// Bytes of a record header: content type, legacy version, length.
pub const RECORD_HEADER_LEN: usize = 5;
pub const CHANGE_CIPHER_SPEC: u8 = 20;
pub const ALERT: u8 = 21;
pub const HANDSHAKE: u8 = 22;
pub const APPLICATION_DATA: u8 = 23;
/// A record's length may not exceed 2^14 + 256 (RFC 8446 §5.2; 2^14 + 2048 in TLS 1.2).
pub const MAX_RECORD_LEN: u16 = (1 << 14) + 2048;

pub const CLIENT_HELLO: u8 = 1;
pub const SERVER_HELLO: u8 = 2;
pub const CERTIFICATE: u8 = 11;
pub const SERVER_HELLO_DONE: u8 = 14;

const EXT_SNI: u16 = 0x0000;
const EXT_ALPN: u16 = 0x0010;
const EXT_SIG_ALGS: u16 = 0x000d;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

/// A record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub kind: u8,
    pub version: u16,
    pub len: u16,
}

impl RecordHeader {
    /// Reads a record header; `None` when fewer than 5 bytes or not a TLS record (unknown content
    /// type, a version other than 3.x, a length past the limit).
    pub fn parse(b: &[u8]) -> Option<RecordHeader> {
        let h = b.get(..RECORD_HEADER_LEN)?;
        let r = RecordHeader { kind: h[0], version: u16::from_be_bytes([h[1], h[2]]), len: u16::from_be_bytes([h[3], h[4]]) };
        ((20..=24).contains(&r.kind) && h[1] == 3 && r.len <= MAX_RECORD_LEN).then_some(r)
    }
}

/// Why a hello was refused: what and at which byte offset of the handshake message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelloError {
    pub what: &'static str,
    pub offset: usize,
}

impl std::fmt::Display for HelloError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {} of the handshake message", self.what, self.offset)
    }
}

/// What a ClientHello says, in the order it says it (GREASE values kept: JA4 drops them itself).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub legacy_version: u16,
    pub ciphers: Vec<u16>,
    /// Extension types in order.
    pub extensions: Vec<u16>,
    pub sni: Option<String>,
    pub alpn: Vec<Vec<u8>>,
    pub supported_versions: Vec<u16>,
    pub signature_algorithms: Vec<u16>,
}

/// What a ServerHello says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello {
    pub legacy_version: u16,
    pub cipher: u16,
    /// The supported_versions extension (TLS 1.3), when present.
    pub selected_version: Option<u16>,
    /// The ALPN the server chose, when the ServerHello carries it (TLS 1.2; in 1.3 it is in the
    /// encrypted extensions and cannot be seen).
    pub alpn: Option<Vec<u8>>,
}

impl ServerHello {
    /// The version in use: supported_versions when present, else the legacy field.
    pub fn version(&self) -> u16 {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// A cursor over a handshake message that reports where it ran out.
struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], HelloError> {
        let s = self.b.get(self.at..self.at + n).ok_or(HelloError { what, offset: self.at })?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, HelloError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, HelloError> {
        let s = self.take(2, what)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], HelloError> {
        let n = self.u8(what)? as usize;
        self.take(n, what)
    }
    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], HelloError> {
        let n = self.u16(what)? as usize;
        self.take(n, what)
    }
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect()
}

/// Whether a handshake message is whole at the start of `b`: returns its type and total length
/// (4-byte header included) once all of it is there.
pub fn handshake_message(b: &[u8]) -> Option<(u8, usize)> {
    let h = b.get(..4)?;
    let n = 4 + (u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize);
    (b.len() >= n).then_some((h[0], n))
}

/// Parses a ClientHello handshake message (its 4-byte header included).
pub fn parse_client_hello(msg: &[u8]) -> Result<ClientHello, HelloError> {
    let mut c = Cur { b: msg, at: 0 };
    if c.u8("handshake type")? != CLIENT_HELLO {
        return Err(HelloError { what: "not a ClientHello", offset: 0 });
    }
    c.take(3, "handshake length")?;
    let mut h = ClientHello { legacy_version: c.u16("client version")?, ..Default::default() };
    c.take(32, "random")?;
    c.vec8("session id")?;
    let cs = c.vec16("cipher suites")?;
    if cs.len() % 2 != 0 {
        return Err(HelloError { what: "odd cipher suites length", offset: c.at });
    }
    h.ciphers = u16s(cs);
    c.vec8("compression methods")?;
    if c.at == msg.len() {
        return Ok(h); // no extensions (allowed before TLS 1.3)
    }
    let exts = c.vec16("extensions")?;
    let base = c.at - exts.len();
    let mut e = Cur { b: exts, at: 0 };
    while e.at < exts.len() {
        let kind = e.u16("extension type").map_err(|x| HelloError { offset: base + x.offset, ..x })?;
        let data = e.vec16("extension data").map_err(|x| HelloError { offset: base + x.offset, ..x })?;
        h.extensions.push(kind);
        let at = base + e.at - data.len();
        let bad = |what| HelloError { what, offset: at };
        let mut d = Cur { b: data, at: 0 };
        match kind {
            EXT_SNI => {
                let list = d.vec16("server name list").map_err(|_| bad("bad server_name extension"))?;
                let mut l = Cur { b: list, at: 0 };
                while l.at < list.len() {
                    let t = l.u8("name type").map_err(|_| bad("bad server_name entry"))?;
                    let name = l.vec16("host name").map_err(|_| bad("bad server_name entry"))?;
                    if t == 0 && h.sni.is_none() {
                        h.sni = Some(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
            EXT_ALPN => {
                let list = d.vec16("protocol list").map_err(|_| bad("bad ALPN extension"))?;
                let mut l = Cur { b: list, at: 0 };
                while l.at < list.len() {
                    h.alpn.push(l.vec8("protocol").map_err(|_| bad("bad ALPN entry"))?.to_vec());
                }
            }
            EXT_SIG_ALGS => h.signature_algorithms = u16s(d.vec16("algorithms").map_err(|_| bad("bad signature_algorithms extension"))?),
            EXT_SUPPORTED_VERSIONS => h.supported_versions = u16s(d.vec8("versions").map_err(|_| bad("bad supported_versions extension"))?),
            _ => {}
        }
    }
    Ok(h)
}

/// Parses a ServerHello handshake message (its 4-byte header included).
pub fn parse_server_hello(msg: &[u8]) -> Result<ServerHello, HelloError> {
    let mut c = Cur { b: msg, at: 0 };
    if c.u8("handshake type")? != SERVER_HELLO {
        return Err(HelloError { what: "not a ServerHello", offset: 0 });
    }
    c.take(3, "handshake length")?;
    let mut h = ServerHello { legacy_version: c.u16("server version")?, ..Default::default() };
    c.take(32, "random")?;
    c.vec8("session id")?;
    h.cipher = c.u16("cipher suite")?;
    c.u8("compression method")?;
    if c.at == msg.len() {
        return Ok(h);
    }
    let exts = c.vec16("extensions")?;
    let mut e = Cur { b: exts, at: 0 };
    while e.at < exts.len() {
        let kind = e.u16("extension type")?;
        let data = e.vec16("extension data")?;
        match kind {
            EXT_SUPPORTED_VERSIONS if data.len() == 2 => h.selected_version = Some(u16::from_be_bytes([data[0], data[1]])),
            EXT_ALPN => {
                let mut d = Cur { b: data, at: 0 };
                let list = d.vec16("ALPN list")?;
                let mut l = Cur { b: list, at: 0 };
                h.alpn = Some(l.vec8("ALPN protocol")?.to_vec());
            }
            _ => {}
        }
    }
    Ok(h)
}

/// The subject and issuer of the first (the server's own) certificate of a TLS 1.2 Certificate
/// handshake message (RFC 5246 §7.4.2; its 4-byte header included), formatted as Suricata's
/// `tls.cert_subject` and `tls.cert_issuer` hold them ("C=US, O=Example, CN=example.com": the
/// RDNs in certificate order, joined by ", "), which is x509-parser's formatting, the crate
/// Suricata itself uses. None when the message carries no certificate.
pub fn certificate_names(msg: &[u8]) -> Result<Option<(String, String)>, HelloError> {
    let mut c = Cur { b: msg, at: 0 };
    if c.u8("handshake type")? != CERTIFICATE {
        return Err(HelloError { what: "not a Certificate message", offset: 0 });
    }
    c.take(3, "handshake length")?;
    let list = c.take(3, "certificate list length")?;
    let n = u32::from_be_bytes([0, list[0], list[1], list[2]]) as usize;
    if n == 0 {
        return Ok(None);
    }
    let first = c.take(3, "certificate length")?;
    let len = u32::from_be_bytes([0, first[0], first[1], first[2]]) as usize;
    let at = c.at;
    let der = c.take(len, "certificate")?;
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| HelloError { what: "certificate is not valid X.509 DER", offset: at })?;
    Ok(Some((cert.subject().to_string(), cert.issuer().to_string())))
}

/// GREASE values (RFC 8701): 0x?a?a with both bytes equal.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// A version as people write it: "1.3", "1.2", ... ("0x...." for others).
pub fn version_name(v: u16) -> String {
    match v {
        0x0304 => "1.3".into(),
        0x0303 => "1.2".into(),
        0x0302 => "1.1".into(),
        0x0301 => "1.0".into(),
        0x0300 => "ssl3".into(),
        _ => format!("0x{v:04x}"),
    }
}

fn ja4_version(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// The first 12 hex digits of SHA-256 of `s` ("000000000000" for an empty list).
fn hash12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    let d = Sha256::digest(s.as_bytes());
    let mut o = String::with_capacity(12);
    for b in &d[..6] {
        o.push_str(&format!("{b:02x}"));
    }
    o
}

fn hex_list(v: impl Iterator<Item = u16>) -> String {
    v.map(|x| format!("{x:04x}")).collect::<Vec<_>>().join(",")
}

/// The JA4 fingerprint of a ClientHello sent over TCP: `t<version><d|i><ciphers><extensions><alpn>`
/// `_<sorted ciphers hash>_<sorted extensions and signature algorithms hash>`.
pub fn ja4(h: &ClientHello) -> String {
    let version = h.supported_versions.iter().copied().filter(|v| !is_grease(*v)).max().unwrap_or(h.legacy_version);
    let sni = if h.sni.is_some() { 'd' } else { 'i' };
    let ciphers: Vec<u16> = h.ciphers.iter().copied().filter(|c| !is_grease(*c)).collect();
    let exts: Vec<u16> = h.extensions.iter().copied().filter(|e| !is_grease(*e)).collect();
    let alpn = match h.alpn.first() {
        Some(a) if !a.is_empty() => {
            let (f, l) = (a[0], a[a.len() - 1]);
            if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                format!("{}{}", f as char, l as char)
            } else {
                let hx = a.iter().map(|b| format!("{b:02x}")).collect::<String>();
                let c: Vec<char> = hx.chars().collect();
                format!("{}{}", c[0], c[c.len() - 1])
            }
        }
        _ => "00".into(),
    };
    let a = format!("t{}{}{:02}{:02}{}", ja4_version(version), sni, ciphers.len().min(99), exts.len().min(99), alpn);
    let mut sc = ciphers;
    sc.sort_unstable();
    let b = hash12(&hex_list(sc.into_iter()));
    let mut se: Vec<u16> = exts.into_iter().filter(|e| *e != EXT_SNI && *e != EXT_ALPN).collect();
    se.sort_unstable();
    let mut cs = hex_list(se.into_iter());
    let sigs: Vec<u16> = h.signature_algorithms.iter().copied().filter(|s| !is_grease(*s)).collect();
    if !sigs.is_empty() {
        cs.push('_');
        cs.push_str(&hex_list(sigs.into_iter()));
    }
    format!("{a}_{b}_{}", hash12(&cs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut v = kind.to_be_bytes().to_vec();
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    fn client_hello(exts: &[Vec<u8>], ciphers: &[u16]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&((ciphers.len() * 2) as u16).to_be_bytes());
        for c in ciphers {
            body.extend_from_slice(&c.to_be_bytes());
        }
        body.extend_from_slice(&[1, 0]);
        let e: Vec<u8> = exts.concat();
        body.extend_from_slice(&(e.len() as u16).to_be_bytes());
        body.extend_from_slice(&e);
        let mut m = vec![CLIENT_HELLO];
        m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn client_hello_fields_and_ja4_shape() {
        let sni = ext(0, &[0, 8, 0, 0, 5, b'a', b'.', b't', b'e', b's']);
        let alpn = ext(0x10, &[0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1']);
        let sv = ext(0x2b, &[4, 0x03, 0x04, 0x03, 0x03]);
        let sig = ext(0x0d, &[0, 4, 0x04, 0x03, 0x08, 0x04]);
        let grease = ext(0x0a0a, &[]);
        let m = client_hello(&[grease, sni, alpn, sv, sig], &[0x1a1a, 0x1301, 0x1302, 0xc02f]);
        let h = parse_client_hello(&m).unwrap();
        assert_eq!(h.sni.as_deref(), Some("a.tes"));
        assert_eq!(h.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert_eq!(h.supported_versions, vec![0x0304, 0x0303]);
        let j = ja4(&h);
        assert!(j.starts_with("t13d0304h2_"), "{j}");
        // b: sha256("1301,1302,c02f")
        assert_eq!(&j[11..23], &hash12("1301,1302,c02f"));
        assert_eq!(&j[24..], &hash12("000d,002b_0403,0804"));
    }

    #[test]
    fn truncated_hello_names_the_offset() {
        let m = client_hello(&[ext(0, &[0, 8, 0])], &[0x1301]);
        let e = parse_client_hello(&m).unwrap_err();
        assert_eq!(e.what, "bad server_name extension");
        assert!(e.offset > 40, "{e}");
        assert!(parse_client_hello(&m[..20]).is_err());
        assert!(parse_server_hello(&m).is_err());
    }

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && !is_grease(0x0a1a) && !is_grease(0x1301));
    }
}
