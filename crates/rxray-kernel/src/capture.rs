//! The capture ring's records (chunks of whole packets, per CPU) put back together into frames.
//! Owns the chunk protocol of `struct rxray_cap_hdr`; nothing above the kernel crate sees it.
use crate::abi;
use std::collections::HashMap;

/// Where a reassembled frame came from (its first chunk's header, decoded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameInfo {
    /// CLOCK_MONOTONIC ns (the source maps it to wall time).
    pub ts_mono_ns: u64,
    pub ifindex: u32,
    pub rx_queue: u32,
    pub wire_len: u32,
}

/// A packet being put back together from its chunks (one per CPU at a time).
struct Pending {
    hdr: abi::CapHdr,
    data: Vec<u8>,
}

/// Puts capture-ring records (chunks of packets, per CPU) back together into whole packets.
#[derive(Default)]
pub struct Reassembler {
    pending: HashMap<u8, Pending>,
    done: Vec<u8>,
    /// Packets lost in part (a chunk the ring had no room for) or records that made no sense.
    pub incomplete: u64,
}

impl Reassembler {
    /// Takes one record; returns the packet it completes (header of its first chunk, and the bytes).
    pub fn push(&mut self, item: &[u8]) -> Option<(FrameInfo, &[u8])> {
        let info = self.push_record(item)?;
        Some((info, &self.done))
    }

    /// Like `push`; the completed frame's bytes are then `last_frame()`.
    pub(crate) fn push_record(&mut self, item: &[u8]) -> Option<FrameInfo> {
        let Some((h, data)) = abi::CapHdr::split(item) else {
            self.incomplete += 1;
            return None;
        };
        let p = self.pending.entry(h.cpu).or_insert_with(|| Pending { hdr: h, data: Vec::new() });
        if h.offset == 0 {
            if !p.data.is_empty() {
                self.incomplete += 1; // the previous packet on this CPU never got its last chunk
            }
            p.hdr = h;
            p.data.clear();
        } else if p.hdr.seq != h.seq || p.data.len() != h.offset as usize {
            self.incomplete += 1;
            p.data.clear();
            return None;
        }
        p.data.extend_from_slice(data);
        if h.last != 1 {
            return None;
        }
        std::mem::swap(&mut self.done, &mut p.data);
        p.data.clear();
        let h = p.hdr;
        Some(FrameInfo { ts_mono_ns: h.ts_ns, ifindex: h.ifindex, rx_queue: h.rx_queue, wire_len: h.wire_len })
    }

    /// The bytes of the frame the last `push_record` completed.
    pub(crate) fn last_frame(&self) -> &[u8] {
        &self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(cpu: u8, seq: u32, offset: u32, last: bool, data: &[u8]) -> Vec<u8> {
        let h = abi::CapHdr {
            ts_ns: 7,
            ifindex: 3,
            rx_queue: 1,
            wire_len: 100,
            cap_len: 0,
            seq,
            offset,
            len: data.len() as u16,
            cpu,
            last: last as u8,
            _pad: 0,
        };
        let mut v = vec![0u8; std::mem::size_of::<abi::CapHdr>()];
        // SAFETY: v holds exactly size_of::<CapHdr>() bytes; CapHdr is plain old data.
        unsafe { std::ptr::write_unaligned(v.as_mut_ptr().cast::<abi::CapHdr>(), h) };
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn chunks_of_two_cpus_interleave_and_a_gap_counts_as_incomplete() {
        let mut r = Reassembler::default();
        assert!(r.push(&chunk(0, 1, 0, false, b"ab")).is_none());
        assert!(r.push(&chunk(1, 9, 0, false, b"xy")).is_none());
        let (info, data) = r.push(&chunk(0, 1, 2, true, b"cd")).expect("cpu 0 complete");
        assert_eq!((info.ifindex, info.rx_queue, info.wire_len, info.ts_mono_ns, data), (3, 1, 100, 7, &b"abcd"[..]));
        // cpu 1's next chunk is at the wrong offset: the packet is dropped and counted.
        assert!(r.push(&chunk(1, 9, 5, true, b"z")).is_none());
        assert_eq!(r.incomplete, 1);
        assert!(r.push(&[1, 2, 3]).is_none(), "a short record");
        assert_eq!(r.incomplete, 2);
    }
}
