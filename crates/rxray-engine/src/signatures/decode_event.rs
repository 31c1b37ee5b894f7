//! `decode-event:NAME` (Suricata's decoder-events.rules, `alert pkthdr ...`): a few TCP and UDP
//! decoder events, derived from the wire decoder's malformed category and the lengths it read,
//! with the conditions of Suricata's decoder (decode-tcp.c, decode-udp.c, DecodeTCPPacket and
//! DecodeUDPPacket, `len` being the IP payload's length):
//! - `tcp.pkt_too_small`: `len < TCP_HEADER_LEN` (20);
//! - `tcp.hlen_too_small`: `len < hlen` (the data offset's length);
//! - `tcp.invalid_optlen`: `hlen - TCP_HEADER_LEN > TCP_OPTLENMAX` (40) in a `uint8_t`, which is
//!   a data offset below 5;
//! - `udp.hlen_too_small`: `len < UDP_HEADER_LEN` (8);
//! - `udp.pkt_too_small`: `len <` the UDP length field;
//! - `udp.hlen_invalid`: a length field below 8 (Suricata: `len != UDP_GET_LEN`; rxray's decoder
//!   accepts a datagram shorter than its IP payload, so only this case of it is seen).
//! Every other decoder event is reported unsupported by sid.
use crate::event::Packet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeEvent {
    TcpPktTooSmall,
    TcpHlenTooSmall,
    TcpInvalidOptlen,
    UdpHlenTooSmall,
    UdpPktTooSmall,
    UdpHlenInvalid,
}

pub const SUPPORTED: &str = "tcp.pkt_too_small, tcp.hlen_too_small, tcp.invalid_optlen, udp.hlen_too_small, udp.pkt_too_small, udp.hlen_invalid";

impl DecodeEvent {
    /// The event a `decode-event` value names; None for an event rxray does not derive.
    pub fn parse(name: &str) -> Option<DecodeEvent> {
        Some(match name.trim() {
            "tcp.pkt_too_small" => DecodeEvent::TcpPktTooSmall,
            "tcp.hlen_too_small" => DecodeEvent::TcpHlenTooSmall,
            "tcp.invalid_optlen" => DecodeEvent::TcpInvalidOptlen,
            "udp.hlen_too_small" => DecodeEvent::UdpHlenTooSmall,
            "udp.pkt_too_small" => DecodeEvent::UdpPktTooSmall,
            "udp.hlen_invalid" => DecodeEvent::UdpHlenInvalid,
            _ => return None,
        })
    }

    /// The decoder event of `p`, if it has one of these.
    pub fn of(p: &Packet) -> Option<DecodeEvent> {
        let mal = p.malformed?;
        let ip = p.ip.as_ref()?;
        // The IP payload's length, as Suricata's `len`.
        let len = ip.total_len.saturating_sub(ip.hdr_len);
        Some(match mal {
            "tcp_truncated" if len < 20 => DecodeEvent::TcpPktTooSmall,
            "tcp_truncated" => DecodeEvent::TcpHlenTooSmall,
            "tcp_bad_header" => DecodeEvent::TcpInvalidOptlen,
            "udp_truncated" => DecodeEvent::UdpHlenTooSmall,
            "udp_bad_length" => match p.udp {
                Some(u) if u.len < 8 => DecodeEvent::UdpHlenInvalid,
                Some(_) => DecodeEvent::UdpPktTooSmall,
                None => return None,
            },
            _ => return None,
        })
    }
}
