//! The app-layer side of a rule: which protocol a `dns` or `tls` rule inspects (from its header
//! or its buffers), and the keywords that are not buffers (`dns.opcode`, `tls.version`). The
//! parser calls [`keyword`] for those and [`finish`] once the buffers are split.
use super::rule::{Buffer, Rule};

/// What a rule inspects beyond packets and HTTP calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AppProto {
    /// Packets (or HTTP calls, for a rule with HTTP buffers).
    #[default]
    None,
    /// Each DNS message on port 53, UDP or TCP (signatures/dns.rs).
    Dns,
    /// Each TLS connection's handshake facts (signatures/tls.rs).
    Tls,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppRule {
    pub proto: AppProto,
    /// `dns.opcode`.
    pub dns_opcode: Option<U8Match>,
    /// `tls.version`: the version the server chose, as on the wire (0x0303 for 1.2).
    pub tls_version: Option<u16>,
    /// An HTTP rule on `file.data` alone with no `flow` direction: it inspects both sides of a
    /// call, the request body and the response body (Suricata's file.data matches files in
    /// either direction: uploads and downloads).
    pub both_sides: bool,
}

/// Suricata's unsigned 8-bit integer match: `N`, `<N`, `>N`, `<=N`, `>=N`, `A-B` (both ends
/// excluded), each of them negated by a leading `!`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct U8Match {
    pub negated: bool,
    pub op: U8Op,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum U8Op {
    Eq(u8),
    Lt(u8),
    Gt(u8),
    Le(u8),
    Ge(u8),
    Range(u8, u8),
}

impl U8Match {
    pub fn matches(&self, v: u8) -> bool {
        let m = match self.op {
            U8Op::Eq(a) => v == a,
            U8Op::Lt(a) => v < a,
            U8Op::Gt(a) => v > a,
            U8Op::Le(a) => v <= a,
            U8Op::Ge(a) => v >= a,
            U8Op::Range(a, b) => a < v && v < b,
        };
        m != self.negated
    }

    /// Parses `v` (the keyword's value, at char `vat` of the rule); errors name the place.
    pub fn parse(v: &str, vat: usize, what: &str) -> Result<U8Match, (usize, String)> {
        let lead = v.len() - v.trim_start().len();
        let t = v.trim();
        let at = vat + lead;
        let (negated, r) = match t.strip_prefix('!') {
            Some(r) => (true, r.trim_start()),
            None => (false, t),
        };
        let num = |s: &str| s.trim().parse::<u8>().map_err(|_| (at, format!("{what}: '{}' is not a number from 0 to 255", s.trim())));
        let op = if let Some(x) = r.strip_prefix("<=") {
            U8Op::Le(num(x)?)
        } else if let Some(x) = r.strip_prefix(">=") {
            U8Op::Ge(num(x)?)
        } else if let Some(x) = r.strip_prefix('<') {
            U8Op::Lt(num(x)?)
        } else if let Some(x) = r.strip_prefix('>') {
            U8Op::Gt(num(x)?)
        } else if let Some((a, b)) = r.split_once('-') {
            let (a, b) = (num(a)?, num(b)?);
            if b <= a {
                return Err((at, format!("{what}: range {a}-{b} must go from low to high")));
            }
            U8Op::Range(a, b)
        } else {
            U8Op::Eq(num(r)?)
        };
        Ok(U8Match { negated, op })
    }
}

/// Keywords handled here.
pub fn is_keyword(name: &str) -> bool {
    matches!(name, "dns.opcode" | "tls.version")
}

/// Applies `dns.opcode` or `tls.version` to the rule.
pub fn keyword(rule: &mut Rule, name: &str, v: &str, vat: usize) -> Result<(), (usize, String)> {
    match name {
        "dns.opcode" => rule.app.dns_opcode = Some(U8Match::parse(v, vat, name)?),
        "tls.version" => rule.app.tls_version = Some(tls_version(v, vat)?),
        _ => return Err((vat, format!("'{name}' is not an app-layer keyword"))),
    }
    Ok(())
}

/// `tls.version`: "1.0" .. "1.3", "ssl3", or a hex value (0x7f12).
fn tls_version(v: &str, vat: usize) -> Result<u16, (usize, String)> {
    let t = v.trim().trim_matches('"');
    Ok(match t {
        "1.3" => 0x0304,
        "1.2" => 0x0303,
        "1.1" => 0x0302,
        "1.0" => 0x0301,
        "ssl3" | "3.0" => 0x0300,
        h => match h.strip_prefix("0x").and_then(|x| u16::from_str_radix(x, 16).ok()) {
            Some(x) => x,
            None => return Err((vat, format!("tls.version: '{t}' is not 1.0, 1.1, 1.2, 1.3 or a hex version such as 0x0303"))),
        },
    })
}

fn is_dns(b: Buffer) -> bool {
    b == Buffer::DnsQuery
}

fn is_tls(b: Buffer) -> bool {
    matches!(b, Buffer::TlsSni | Buffer::TlsCertSubject | Buffer::TlsCertIssuer | Buffer::Ja4Hash)
}

/// Decides the app protocol once the buffers are split, from the header's protocol word and the
/// buffers and keywords used. Returns why the rule cannot be honoured, if it cannot.
pub fn finish(rule: &mut Rule, proto_word: &str) -> Option<String> {
    let dns = proto_word.eq_ignore_ascii_case("dns") || rule.app.dns_opcode.is_some() || rule.http.iter().any(|(b, _)| is_dns(*b));
    let tls = proto_word.eq_ignore_ascii_case("tls") || rule.app.tls_version.is_some() || rule.http.iter().any(|(b, _)| is_tls(*b));
    let other = rule.http.iter().any(|(b, _)| !is_dns(*b) && !is_tls(*b));
    if (dns && tls) || ((dns || tls) && other) {
        return Some("the rule mixes buffers of different protocols (dns, tls, http)".into());
    }
    let file_data_only = !rule.http.is_empty() && rule.http.iter().all(|(b, _)| *b == Buffer::FileData);
    if file_data_only && rule.flow.and_then(|f| f.to_server).is_none() {
        rule.app.both_sides = true;
    }
    if dns {
        rule.app.proto = AppProto::Dns;
    } else if tls {
        rule.app.proto = AppProto::Tls;
        if !rule.payload.is_empty() {
            return Some("a tls rule's content must follow a tls buffer (tls.sni, tls.cert_subject, tls.cert_issuer, ja4.hash): rxray matches TLS on the handshake's facts, not its records".into());
        }
        // Certificates come from the server; SNI and JA4 from the client.
        let server = rule.http.iter().any(|(b, _)| matches!(b, Buffer::TlsCertSubject | Buffer::TlsCertIssuer));
        let client = rule.http.iter().any(|(b, _)| matches!(b, Buffer::TlsSni | Buffer::Ja4Hash));
        if rule.flow.and_then(|f| f.to_server).is_none() {
            rule.to_client = server && !client;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u8_matches_as_suricata_documents() {
        let m = |s: &str| U8Match::parse(s, 0, "dns.opcode").unwrap();
        // "dns.opcode:4;" / "dns.opcode:!0;" / "7-15, exclusively" / "not between 7 and 15".
        assert!(m("4").matches(4) && !m("4").matches(5));
        assert!(m("!0").matches(1) && !m("!0").matches(0));
        assert!(m("7-15").matches(8) && !m("7-15").matches(7) && !m("7-15").matches(15));
        assert!(m("!7-15").matches(7) && !m("!7-15").matches(8));
        assert!(m(">=2").matches(2) && m("<2").matches(1) && !m(">2").matches(2));
        assert!(U8Match::parse("256", 3, "dns.opcode").is_err());
        assert_eq!(U8Match::parse(" x", 3, "dns.opcode").unwrap_err().0, 4);
        assert!(U8Match::parse("9-3", 0, "dns.opcode").is_err());
    }
}
