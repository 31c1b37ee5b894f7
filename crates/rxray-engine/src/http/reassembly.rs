//! TCP stream reassembly for one direction of a connection: orders segments, drops retransmitted
//! and overlapping bytes, buffers out-of-order data within a bound, and reports holes as gaps.
//!
//! Bytes come out in stream order as [`Piece`]s. A hole is skipped (reported as a `Gap`) when the
//! buffer behind it is full, when it is older than the hole timeout, or when the stream ends; bytes
//! a source could not copy (a snap length, the kernel's body limit) come out as `Gap`s marked
//! `not_copied`. Sequence numbers wrap; offsets are kept as 64-bit stream positions.
use std::collections::BTreeMap;

/// TCP flag bits as on the wire.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// What the stream delivers, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Contiguous bytes. `segment_start` says they begin where a segment began (a parser that lost
    /// its place may resynchronise only there).
    Data { bytes: &'a [u8], ts_ns: u64, segment_start: bool },
    /// `len` stream bytes that will never be delivered: a hole nobody filled, or bytes the source
    /// did not copy (`not_copied`).
    Gap { len: u64, ts_ns: u64, not_copied: bool },
    /// The stream ended (FIN reached, reset, idle, or the end of the input).
    End { ts_ns: u64 },
}

/// What one direction dropped or skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamCounters {
    /// Bytes delivered as data.
    pub delivered: u64,
    /// Bytes received again (retransmissions, overlaps), dropped.
    pub duplicate: u64,
    /// Holes skipped and their bytes.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Holes skipped because the out-of-order buffer was full (included in `gaps`).
    pub overflow_gaps: u64,
    /// Bytes the source carried the length of but not the content.
    pub not_copied: u64,
    /// Bytes before the point the stream was picked up at (a capture that started mid-connection).
    pub before_start: u64,
}

#[derive(Debug)]
struct Held {
    data: Vec<u8>,
    /// Bytes after `data` that the segment carried but the source did not copy.
    missing: u64,
    ts_ns: u64,
}

impl Held {
    fn len(&self) -> u64 {
        self.data.len() as u64 + self.missing
    }
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub struct Stream {
    started: bool,
    /// Sequence number of stream offset 0.
    base_seq: u32,
    /// The next offset to deliver.
    next: u64,
    /// Out-of-order segments by offset.
    held: BTreeMap<u64, Held>,
    held_bytes: usize,
    fin_at: Option<u64>,
    ended: bool,
    pub counters: StreamCounters,
}

impl Stream {
    /// Bytes held out of order (the stream's memory beyond its fixed size).
    pub fn buffered(&self) -> usize {
        self.held_bytes
    }

    /// Whether a segment has fixed where the stream starts.
    pub fn is_started(&self) -> bool {
        self.started
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Event time of the oldest held segment, if any.
    pub fn oldest_held_ns(&self) -> Option<u64> {
        self.held.values().map(|h| h.ts_ns).min()
    }

    /// Takes one segment. `payload` is the copied part of the `wire_len` bytes it carried;
    /// `max_buffered` bounds the out-of-order buffer of this stream. (The segment's fields are passed
    /// one by one so the stream stays independent of where segments come from.)
    #[allow(clippy::too_many_arguments)]
    pub fn push(&mut self, seq: u32, flags: u8, payload: &[u8], wire_len: u32, ts_ns: u64, max_buffered: usize, out: &mut impl FnMut(Piece<'_>)) {
        if self.ended {
            self.counters.duplicate += u64::from(wire_len);
            return;
        }
        let payload = &payload[..payload.len().min(wire_len as usize)];
        let mut data_seq = seq;
        if flags & SYN != 0 {
            data_seq = seq.wrapping_add(1);
            if !self.started {
                self.started = true;
                self.base_seq = data_seq;
            }
        }
        if !self.started {
            if wire_len == 0 && flags & FIN == 0 {
                return;
            }
            // Picked up mid-stream: this segment is where the stream starts.
            self.started = true;
            self.base_seq = data_seq;
        }
        let Some(off) = self.offset_of(data_seq) else {
            self.counters.before_start += u64::from(wire_len);
            return;
        };
        let len = u64::from(wire_len);
        if flags & FIN != 0 && self.fin_at.is_none() {
            self.fin_at = Some(off + len);
        }
        if len > 0 {
            if off + len <= self.next {
                self.counters.duplicate += len;
            } else if off <= self.next {
                self.deliver(off, payload, len - payload.len() as u64, ts_ns, out);
                self.drain(out);
            } else {
                self.hold(off, payload, len - payload.len() as u64, ts_ns);
                while self.held_bytes > max_buffered && !self.held.is_empty() {
                    self.counters.overflow_gaps += 1;
                    self.skip_hole(out);
                }
            }
        }
        self.check_fin(ts_ns, out);
    }

    /// The stream offset of `seq`, or `None` when it lies before the start.
    fn offset_of(&self, seq: u32) -> Option<u64> {
        let next_seq = self.base_seq.wrapping_add(self.next as u32);
        let rel = i64::from(seq.wrapping_sub(next_seq) as i32);
        u64::try_from(self.next as i64 + rel).ok()
    }

    /// Delivers the part of a segment at `off` beyond what was already delivered.
    fn deliver(&mut self, off: u64, data: &[u8], missing: u64, ts_ns: u64, out: &mut impl FnMut(Piece<'_>)) {
        let skip = self.next - off;
        let total = data.len() as u64 + missing;
        if skip >= total {
            self.counters.duplicate += total;
            return;
        }
        self.counters.duplicate += skip;
        if (skip as usize) < data.len() {
            let bytes = &data[skip as usize..];
            self.counters.delivered += bytes.len() as u64;
            out(Piece::Data { bytes, ts_ns, segment_start: skip == 0 });
        }
        let missing_left = missing.min(total - skip);
        if missing_left > 0 {
            self.counters.not_copied += missing_left;
            out(Piece::Gap { len: missing_left, ts_ns, not_copied: true });
        }
        self.next = off + total;
    }

    fn hold(&mut self, off: u64, data: &[u8], missing: u64, ts_ns: u64) {
        if let Some(h) = self.held.get(&off) {
            // A retransmission of a held segment: keep the longer copy.
            if h.len() >= data.len() as u64 + missing {
                self.counters.duplicate += data.len() as u64 + missing;
                return;
            }
            self.counters.duplicate += h.len();
            self.held_bytes -= h.data.len();
        }
        self.held_bytes += data.len();
        self.held.insert(off, Held { data: data.to_vec(), missing, ts_ns });
    }

    /// Delivers held segments that now touch the delivered edge.
    fn drain(&mut self, out: &mut impl FnMut(Piece<'_>)) {
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() > self.next {
                break;
            }
            let off = *entry.key();
            let h = entry.remove();
            self.held_bytes -= h.data.len();
            self.deliver(off, &h.data, h.missing, h.ts_ns, out);
        }
    }

    /// Skips the hole before the first held segment (a gap), then delivers what follows it.
    fn skip_hole(&mut self, out: &mut impl FnMut(Piece<'_>)) {
        let Some((&off, h)) = self.held.first_key_value() else { return };
        if off > self.next {
            let len = off - self.next;
            self.counters.gaps += 1;
            self.counters.gap_bytes += len;
            out(Piece::Gap { len, ts_ns: h.ts_ns, not_copied: false });
            self.next = off;
        }
        self.drain(out);
    }

    /// The peer acknowledged everything before `ack`: bytes below it that were not seen will never
    /// be (the peer has them; no retransmission will come), so they become gaps now.
    pub fn acked(&mut self, ack: u32, out: &mut impl FnMut(Piece<'_>)) {
        if !self.started || self.ended {
            return;
        }
        let Some(ack_off) = self.offset_of(ack) else { return };
        // Only a plausible ack (within 1 GiB ahead) moves the edge: a wild value must not.
        if ack_off <= self.next || ack_off - self.next > 1 << 30 {
            return;
        }
        while self.held.first_key_value().is_some_and(|(&k, _)| k <= ack_off) {
            self.skip_hole(out);
        }
        if ack_off > self.next {
            let len = ack_off - self.next;
            self.counters.gaps += 1;
            self.counters.gap_bytes += len;
            let ts_ns = self.held.first_key_value().map_or(0, |(_, h)| h.ts_ns);
            out(Piece::Gap { len, ts_ns, not_copied: false });
            self.next = ack_off;
            self.drain(out);
        }
    }

    /// Skips every hole whose data has waited since before `older_than_ns` (the hole timeout).
    pub fn expire_holes(&mut self, older_than_ns: u64, out: &mut impl FnMut(Piece<'_>)) {
        while self.oldest_held_ns().is_some_and(|t| t < older_than_ns) {
            self.skip_hole(out);
        }
    }

    fn check_fin(&mut self, ts_ns: u64, out: &mut impl FnMut(Piece<'_>)) {
        if self.fin_at.is_some_and(|f| self.next >= f) && !self.ended {
            self.ended = true;
            out(Piece::End { ts_ns });
        }
    }

    /// Ends the stream now (reset, idle, end of input): skips every hole, then ends.
    pub fn finish(&mut self, ts_ns: u64, out: &mut impl FnMut(Piece<'_>)) {
        if self.ended {
            return;
        }
        while !self.held.is_empty() {
            self.skip_hole(out);
        }
        // A FIN whose bytes never all arrived ends here too.
        self.ended = true;
        out(Piece::End { ts_ns });
    }
}
