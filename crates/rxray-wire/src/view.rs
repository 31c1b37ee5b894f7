//! Typed, bounds-checked views over header bytes (smoltcp's `new_checked` style): a view is only
//! built over a slice long enough for every accessor, so accessors never panic and never allocate.

/// The slice is shorter than the header it should hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated;

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `len` bytes of `buf` starting at `off`, or `Truncated` when they are not all there.
#[inline]
pub fn bytes_at(buf: &[u8], off: usize, len: usize) -> Result<&[u8], Truncated> {
    let end = off.checked_add(len).ok_or(Truncated)?;
    buf.get(off..end).ok_or(Truncated)
}

macro_rules! view {
    ($(#[$m:meta])* $name:ident, $len:expr) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name<'a>(&'a [u8]);

        impl<'a> $name<'a> {
            /// The fixed header length this view reads.
            pub const LEN: usize = $len;

            /// A view over the header at `buf[off..]`, or `Truncated` when fewer than `LEN` bytes remain.
            #[inline]
            pub fn new_checked(buf: &'a [u8], off: usize) -> Result<Self, Truncated> {
                bytes_at(buf, off, Self::LEN).map($name)
            }
        }
    };
}

view!(
    /// Ethernet II header: destination, source, ethertype.
    EthernetHeader,
    14
);

impl EthernetHeader<'_> {
    pub fn dst(&self) -> [u8; 6] {
        [self.0[0], self.0[1], self.0[2], self.0[3], self.0[4], self.0[5]]
    }
    pub fn src(&self) -> [u8; 6] {
        [self.0[6], self.0[7], self.0[8], self.0[9], self.0[10], self.0[11]]
    }
    pub fn ethertype(&self) -> u16 {
        be16(self.0, 12)
    }
}

view!(
    /// An 802.1Q/802.1ad tag after its TPID: TCI, then the encapsulated ethertype.
    VlanTag,
    4
);

impl VlanTag<'_> {
    pub fn tci(&self) -> u16 {
        be16(self.0, 0)
    }
    pub fn ethertype(&self) -> u16 {
        be16(self.0, 2)
    }
}

view!(
    /// The fixed ARP header (htype, ptype, hlen, plen, op).
    ArpHeader,
    8
);

impl ArpHeader<'_> {
    pub fn htype(&self) -> u16 {
        be16(self.0, 0)
    }
    pub fn ptype(&self) -> u16 {
        be16(self.0, 2)
    }
    pub fn hlen(&self) -> u8 {
        self.0[4]
    }
    pub fn plen(&self) -> u8 {
        self.0[5]
    }
    pub fn op(&self) -> u16 {
        be16(self.0, 6)
    }
}

view!(
    /// The Ethernet/IPv4 ARP body: sha, spa, tha, tpa.
    ArpEthIpv4,
    20
);

impl ArpEthIpv4<'_> {
    pub fn sha(&self) -> [u8; 6] {
        [self.0[0], self.0[1], self.0[2], self.0[3], self.0[4], self.0[5]]
    }
    pub fn spa(&self) -> [u8; 4] {
        [self.0[6], self.0[7], self.0[8], self.0[9]]
    }
    pub fn tha(&self) -> [u8; 6] {
        [self.0[10], self.0[11], self.0[12], self.0[13], self.0[14], self.0[15]]
    }
    pub fn tpa(&self) -> [u8; 4] {
        [self.0[16], self.0[17], self.0[18], self.0[19]]
    }
}

view!(
    /// The fixed 20-byte IPv4 header (options, if any, follow).
    Ipv4Header,
    20
);

impl Ipv4Header<'_> {
    pub fn version(&self) -> u8 {
        self.0[0] >> 4
    }
    pub fn ihl(&self) -> u8 {
        self.0[0] & 0x0f
    }
    pub fn tos(&self) -> u8 {
        self.0[1]
    }
    pub fn total_len(&self) -> u16 {
        be16(self.0, 2)
    }
    pub fn id(&self) -> u16 {
        be16(self.0, 4)
    }
    /// Flags (top 3 bits) and fragment offset in 8-byte units (low 13 bits).
    pub fn frag_field(&self) -> u16 {
        be16(self.0, 6)
    }
    pub fn ttl(&self) -> u8 {
        self.0[8]
    }
    pub fn protocol(&self) -> u8 {
        self.0[9]
    }
    pub fn src(&self) -> [u8; 4] {
        [self.0[12], self.0[13], self.0[14], self.0[15]]
    }
    pub fn dst(&self) -> [u8; 4] {
        [self.0[16], self.0[17], self.0[18], self.0[19]]
    }
}

view!(
    /// The fixed 40-byte IPv6 header.
    Ipv6Header,
    40
);

impl Ipv6Header<'_> {
    /// Version, traffic class and flow label as one word.
    pub fn word0(&self) -> u32 {
        be32(self.0, 0)
    }
    pub fn version(&self) -> u8 {
        self.0[0] >> 4
    }
    pub fn payload_len(&self) -> u16 {
        be16(self.0, 4)
    }
    pub fn next_header(&self) -> u8 {
        self.0[6]
    }
    pub fn hop_limit(&self) -> u8 {
        self.0[7]
    }
    pub fn src(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.0[8..24]);
        a
    }
    pub fn dst(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.0[24..40]);
        a
    }
}

view!(
    /// The first 8 bytes of any IPv6 extension header (next header, length, and 6 more bytes).
    Ipv6Ext,
    8
);

impl Ipv6Ext<'_> {
    pub fn next_header(&self) -> u8 {
        self.0[0]
    }
    pub fn len_field(&self) -> u8 {
        self.0[1]
    }
    /// Fragment header: offset (bytes, low 3 bits cleared) and M flag in one word.
    pub fn frag_field(&self) -> u16 {
        be16(self.0, 2)
    }
    /// Fragment header: identification.
    pub fn frag_id(&self) -> u32 {
        be32(self.0, 4)
    }
}

view!(
    /// The fixed 20-byte TCP header (options follow up to the data offset).
    TcpHeader,
    20
);

impl TcpHeader<'_> {
    pub fn sport(&self) -> u16 {
        be16(self.0, 0)
    }
    pub fn dport(&self) -> u16 {
        be16(self.0, 2)
    }
    pub fn seq(&self) -> u32 {
        be32(self.0, 4)
    }
    pub fn ack(&self) -> u32 {
        be32(self.0, 8)
    }
    /// Data offset in bytes.
    pub fn hdr_len(&self) -> usize {
        (self.0[12] >> 4) as usize * 4
    }
    pub fn flags(&self) -> u8 {
        self.0[13]
    }
    pub fn window(&self) -> u16 {
        be16(self.0, 14)
    }
}

view!(
    /// The 8-byte UDP header.
    UdpHeader,
    8
);

impl UdpHeader<'_> {
    pub fn sport(&self) -> u16 {
        be16(self.0, 0)
    }
    pub fn dport(&self) -> u16 {
        be16(self.0, 2)
    }
    /// The UDP length field (header + data), as written.
    pub fn length(&self) -> u16 {
        be16(self.0, 4)
    }
}

view!(
    /// The first 8 bytes of ICMP/ICMPv6 (type, code, checksum, and the echo id/seq word).
    IcmpHeader,
    8
);

impl IcmpHeader<'_> {
    pub fn ty(&self) -> u8 {
        self.0[0]
    }
    pub fn code(&self) -> u8 {
        self.0[1]
    }
    pub fn echo_id(&self) -> u16 {
        be16(self.0, 4)
    }
    pub fn echo_seq(&self) -> u16 {
        be16(self.0, 6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_refuse_short_slices_and_offsets_past_the_end() {
        assert_eq!(TcpHeader::new_checked(&[0u8; 19], 0).unwrap_err(), Truncated);
        assert!(TcpHeader::new_checked(&[0u8; 20], 0).is_ok());
        assert!(UdpHeader::new_checked(&[0u8; 8], 1).is_err());
        assert!(bytes_at(&[0u8; 4], usize::MAX, 2).is_err());
    }

    #[test]
    fn accessors_read_network_order() {
        let b = [0x12, 0x34, 0x56, 0x78, 0x00, 0x10, 0xab, 0xcd];
        let u = UdpHeader::new_checked(&b, 0).unwrap();
        assert_eq!((u.sport(), u.dport(), u.length()), (0x1234, 0x5678, 16));
    }
}
