//! A minimal classic-pcap writer (Ethernet link type) so tests can hand their frames to
//! tshark/tcpdump; written by hand because the format is 40 bytes of headers and no more.

use std::io;
use std::path::Path;

/// The frames as a classic pcap file: magic a1b2c3d4 (microseconds), version 2.4, snaplen
/// 262144, link type 1; frame `i` is stamped `i` microseconds after the epoch.
pub fn pcap_bytes(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + frames.iter().map(|f| 16 + f.len()).sum::<usize>());
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&262_144u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (i, f) in frames.iter().enumerate() {
        let len = u32::try_from(f.len()).expect("frame over 4 GiB");
        out.extend_from_slice(&((i / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((i % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes()); // captured length
        out.extend_from_slice(&len.to_le_bytes()); // original length
        out.extend_from_slice(f);
    }
    out
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
