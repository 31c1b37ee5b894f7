//! Frames as a classic pcap file (Ethernet link type, microsecond times) so tests can hand them to
//! tshark/tcpdump, written by rxray-io's one pcap writer.

use rxray_io::{LinkType, PcapWriter};
use std::io;
use std::path::Path;

/// The frames as a classic pcap file: magic a1b2c3d4 (microseconds), version 2.4, snaplen
/// 262144, link type 1; frame `i` is stamped `i` microseconds after the epoch.
pub fn pcap_bytes(frames: &[Vec<u8>]) -> Vec<u8> {
    let cap = 24 + frames.iter().map(|f| 16 + f.len()).sum::<usize>();
    let mut w = PcapWriter::new_micros(Vec::with_capacity(cap), LinkType::ETHERNET, 262_144).expect("writing to memory");
    for (i, f) in frames.iter().enumerate() {
        let len = u32::try_from(f.len()).expect("frame over 4 GiB");
        w.write_packet(i as u64 * 1000, len, f).expect("writing to memory");
    }
    w.into_inner()
}

/// Writes [`pcap_bytes`] to `path`.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) -> io::Result<()> {
    std::fs::write(path, pcap_bytes(frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let b = pcap_bytes(&[vec![1, 2, 3]]);
        assert_eq!(b.len(), 24 + 16 + 3);
        assert_eq!(b[..4], [0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(b[20..24], [1, 0, 0, 0]);
        assert_eq!(b[32..40], [3, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(b[40..], [1, 2, 3]);
    }
}
