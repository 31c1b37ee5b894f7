//! rxray-wire: packet dissection over `&[u8]` (no I/O), producing exactly the `Packet` the kernel's
//! XDP parser (bpf/xdp_ingress.bpf.c) produces for the same frame, so captures and live traffic agree.
pub mod dissect;
pub mod dns;
pub mod event;
pub mod flat;
pub mod ipproto;
pub mod h2;
pub mod hpack_huffman;
pub mod http;
pub mod tls;
pub mod view;

pub use dissect::{dissect, dissect_into};

/// A pcap/pcapng link-layer header type (LINKTYPE_* from tcpdump.org).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP: the version nibble says IPv4 or IPv6.
    pub const RAW: LinkType = LinkType(101);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// Whether `dissect` understands this link type (others give a packet with no layers).
    pub fn is_supported(self) -> bool {
        matches!(self.0, 1 | 101 | 113 | 228 | 229 | 276)
    }

    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "ethernet",
            101 => "raw",
            113 => "linux_sll",
            228 => "ipv4",
            229 => "ipv6",
            276 => "linux_sll2",
            _ => "unknown",
        }
    }
}

/// Payload bytes a packet can carry, as in the kernel's events (RXRAY_PAYLOAD_MAX).
pub const PAYLOAD_MAX: usize = 256;
/// VLAN tags parsed before `vlan_too_deep` (RXRAY_MAX_VLANS).
pub const MAX_VLANS: usize = 2;
/// IPv6 extension headers walked before `ipv6_ext_chain_too_long` (RXRAY_MAX_IPV6_EXT).
pub const MAX_IPV6_EXT: usize = 8;

// The malformed categories (enum rxray_malformed in bpf/include/rxray.h), defined here once for the
// dissector and the kernel path: rxray-kernel's abi.rs re-exports them, and its tests/abi_btf.rs
// checks them against the BTF.
pub const MAL_NONE: u16 = 0;
pub const MAL_ETH_TRUNC: u16 = 1;
pub const MAL_VLAN_TRUNC: u16 = 2;
pub const MAL_VLAN_DEPTH: u16 = 3;
pub const MAL_ARP_TRUNC: u16 = 4;
pub const MAL_IPV4_TRUNC: u16 = 5;
pub const MAL_IPV4_HDR: u16 = 6;
pub const MAL_IPV6_TRUNC: u16 = 7;
pub const MAL_IPV6_HDR: u16 = 8;
pub const MAL_IPV6_EXT_TRUNC: u16 = 9;
pub const MAL_IPV6_EXT_CHAIN: u16 = 10;
pub const MAL_TCP_TRUNC: u16 = 11;
pub const MAL_TCP_HDR: u16 = 12;
pub const MAL_TCP_OPT: u16 = 13;
pub const MAL_UDP_TRUNC: u16 = 14;
pub const MAL_UDP_LEN: u16 = 15;
pub const MAL_ICMP_TRUNC: u16 = 16;
pub const MAL_COUNT: usize = 17;

/// The malformed categories' names, by number (`rxray_kernel::abi` re-exports this list).
pub const MALFORMED_NAMES: [&str; MAL_COUNT] = [
    "none",
    "eth_truncated",
    "vlan_truncated",
    "vlan_too_deep",
    "arp_truncated",
    "ipv4_truncated",
    "ipv4_bad_header",
    "ipv6_truncated",
    "ipv6_bad_header",
    "ipv6_ext_truncated",
    "ipv6_ext_chain_too_long",
    "tcp_truncated",
    "tcp_bad_header",
    "tcp_bad_option",
    "udp_truncated",
    "udp_bad_length",
    "icmp_truncated",
];
