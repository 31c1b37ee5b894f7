//! TLS rules on a connection's handshake facts (`http::TlsFacts`, read on the TLS ports): one
//! evaluation per connection, once the server's clear-text handshake is over (Suricata's TLS
//! has one transaction a connection, so a rule alerts at most once on it).
//!
//! Buffers (docs/detection.md, "Keywords: dns, tls, pkthdr"):
//! - `tls.sni`: the ClientHello's server_name;
//! - `tls.cert_subject`, `tls.cert_issuer`: the server certificate's subject and issuer as
//!   "C=US, O=..., CN=..." (TLS 1.2 and older: TLS 1.3 encrypts the certificate);
//! - `ja4.hash`: the ClientHello's JA4 fingerprint ("t13d1516h2_8daaf6152771_02713d6af862");
//! - `tls.version`: the version the server chose.
//!
//! A buffer the handshake did not show (no SNI, a TLS 1.3 certificate) never matches.
use super::payload::{inspect, Buffers};
use super::rule::{Buffer, Rule};
use crate::http::TlsFacts;

/// The buffer's bytes in `f`, if the handshake showed it.
pub fn buffer(f: &TlsFacts, b: Buffer) -> Option<&[u8]> {
    let s = match b {
        Buffer::TlsSni => f.sni.as_deref(),
        Buffer::TlsCertSubject => f.cert_subject.as_deref(),
        Buffer::TlsCertIssuer => f.cert_issuer.as_deref(),
        Buffer::Ja4Hash => f.ja4.as_deref(),
        _ => None,
    };
    s.map(str::as_bytes)
}

/// Whether TLS rule `r` matches the facts; on success `evidence` holds (buffer, start, end) of
/// each non-negated item's match, in rule order.
pub fn matches(r: &Rule, f: &TlsFacts, hits: &mut Vec<(u32, u32)>, evidence: &mut Vec<(Buffer, u32, u32)>) -> bool {
    evidence.clear();
    if let Some(v) = r.app.tls_version {
        if f.version.as_deref() != Some(rxray_wire::tls::version_name(v).as_str()) {
            return false;
        }
    }
    for (b, items) in &r.http {
        let Some(raw) = buffer(f, *b) else { return false };
        let lower = raw.to_ascii_lowercase();
        if !inspect(items, &Buffers { raw, lower: &lower }, hits) {
            return false;
        }
        evidence.extend(hits.iter().map(|&(s, e)| (*b, s, e)));
    }
    true
}
