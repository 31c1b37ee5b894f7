//! The one packet event every source produces: the facts an incoming frame carries, decoded.
//! Absent layers are `None`; a malformed frame keeps the layers that parsed before the fault.
use serde::Serialize;
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Packet {
    /// Arrival time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    pub ifindex: u32,
    pub iface: String,
    pub rx_queue: u32,
    /// Frame length on the wire.
    pub len: u32,
    /// The malformed category, when the frame could not be parsed to the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub malformed: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eth: Option<Eth>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vlans: Vec<Vlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arp: Option<Arp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ip>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Tcp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp: Option<Udp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp: Option<Icmp>,
    /// Offset of the first byte after the last parsed header.
    pub payload_offset: u16,
    /// What rxray's XDP firewall did: "drop", or "would-drop" in dry run (live only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall: Option<&'static str>,
    /// The payload prefix that was captured (hex in JSON).
    #[serde(serialize_with = "hex")]
    #[schemars(with = "String")]
    pub payload: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Eth {
    #[serde(serialize_with = "mac")]
    #[schemars(with = "String")]
    pub src: [u8; 6],
    #[serde(serialize_with = "mac")]
    #[schemars(with = "String")]
    pub dst: [u8; 6],
    /// Ethertype after any VLAN tags.
    pub ethertype: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Vlan {
    /// 0x8100 (802.1Q) or 0x88a8 (802.1ad).
    pub tpid: u16,
    pub vid: u16,
    pub pcp: u8,
    pub dei: bool,
}

impl Vlan {
    pub fn from_tci(tpid: u16, tci: u16) -> Self {
        Vlan { tpid, vid: tci & 0x0fff, pcp: (tci >> 13) as u8, dei: tci & 0x1000 != 0 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Arp {
    pub op: u16,
    #[serde(serialize_with = "mac")]
    #[schemars(with = "String")]
    pub sha: [u8; 6],
    pub spa: IpAddr,
    #[serde(serialize_with = "mac")]
    #[schemars(with = "String")]
    pub tha: [u8; 6],
    pub tpa: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Ip {
    pub version: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    pub dscp: u8,
    pub ecn: u8,
    /// IPv4 identification, or the IPv6 fragment header's identification.
    pub id: u32,
    pub df: bool,
    pub mf: bool,
    /// Fragment offset in bytes.
    pub frag_offset: u16,
    pub fragment: bool,
    /// Upper-layer protocol (after any IPv6 extension headers).
    pub proto: u8,
    pub hdr_len: u16,
    pub total_len: u16,
    /// IPv4 header carries options.
    pub options: bool,
    pub flow_label: u32,
    /// IPv6 extension header types, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ext_headers: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// FIN SYN RST PSH ACK URG ECE CWR as bits 0..7.
    pub flags: u8,
    pub window: u16,
    pub hdr_len: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mss: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wscale: Option<u8>,
    pub sack_ok: bool,
    pub sack: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<(u32, u32)>,
}

impl Tcp {
    /// Flags as tcpdump prints them: `S`, `S.`, `P.`, `F.`, `R`, ... (`.` is ACK; `none` for none).
    pub fn flags_str(&self) -> String {
        let mut s = String::new();
        for (bit, c) in [(0x02, 'S'), (0x01, 'F'), (0x08, 'P'), (0x04, 'R'), (0x20, 'U'), (0x40, 'E'), (0x80, 'W')] {
            if self.flags & bit != 0 {
                s.push(c);
            }
        }
        if self.flags & 0x10 != 0 {
            s.push('.');
        }
        if s.is_empty() {
            s.push_str("none");
        }
        s
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Udp {
    pub sport: u16,
    pub dport: u16,
    /// The UDP length field.
    pub len: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Icmp {
    pub v6: bool,
    #[serde(rename = "type")]
    pub ty: u8,
    pub code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo: Option<(u16, u16)>,
}

pub fn mac_string(m: &[u8; 6]) -> String {
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
}

fn mac<S: serde::Serializer>(m: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&mac_string(m))
}

pub fn hex_string(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(b.len() * 2);
    for x in b {
        out.push(H[(x >> 4) as usize] as char);
        out.push(H[(x & 15) as usize] as char);
    }
    out
}

fn hex<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex_string(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_tci_splits_into_pcp_dei_vid() {
        let v = Vlan::from_tci(0x8100, (5 << 13) | 0x1000 | 100);
        assert_eq!((v.pcp, v.dei, v.vid), (5, true, 100));
    }

    #[test]
    fn tcp_flags_print_like_tcpdump() {
        let mut t = Tcp { sport: 1, dport: 2, seq: 0, ack: 0, flags: 0x12, window: 0, hdr_len: 20,
            mss: None, wscale: None, sack_ok: false, sack: false, ts: None };
        assert_eq!(t.flags_str(), "S.");
        t.flags = 0x18;
        assert_eq!(t.flags_str(), "P.");
        t.flags = 0;
        assert_eq!(t.flags_str(), "none");
    }

    #[test]
    fn payload_serialises_as_hex() {
        assert_eq!(hex_string(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
