//! HTTP payload from both hooks: the XDP program copies incoming TCP segments of the watched ports
//! (RXRAY_FEAT_HTTP), the TC egress program of the same object the outgoing ones, into one ring.
//! This module configures and attaches them and turns ring records into the engine's TCP segments.
use crate::{abi, Ingress, KernelError};
use aya::maps::{Array, MapData, PerCpuArray, RingBuf};
use aya::programs::{tc, SchedClassifier, TcAttachType};
use rxray_engine::http::{direction, TcpSegment};
use rxray_wire::dissect::ip_from;

/// Bytes of a message copied before its body counts against the body limit (room for the head).
pub const HEAD_ALLOWANCE: u32 = 16 * 1024;
/// The largest budget (the entry's top bit marks an HTTP/2 flow, copied whole: RXRAY_HTTP_ALL).
pub const BUDGET_MAX: u32 = 0x7fff_ffff;
/// The most ports the HTTP program watches.
pub const MAX_PORTS: usize = abi::HTTP_MAX_PORTS;
const EGRESS_PROG: &str = "rxray_http_egress";

/// The kernel's HTTP counters, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct HttpKernelTotals {
    /// Segments on a watched port seen by either hook.
    pub segments: u64,
    /// Records written to the ring, and payload bytes in them.
    pub records: u64,
    pub bytes_copied: u64,
    /// Payload bytes not copied because their message was past its budget (truncated bodies).
    pub bytes_over_budget: u64,
    /// Records the ring had no room for, and the payload bytes they held.
    pub records_lost: u64,
    pub bytes_lost: u64,
    /// Egress packets that could not be parsed to TCP (IPv6 extension headers, ...).
    pub unparsed: u64,
    /// Payload bytes past the 64 KiB walked per segment.
    pub bytes_unwalked: u64,
}

impl HttpKernelTotals {
    /// Applies `f` to each counter with the same counter of `b`.
    fn zip(&mut self, b: &HttpKernelTotals, f: impl Fn(u64, u64) -> u64) {
        for (x, y) in [
            (&mut self.segments, b.segments),
            (&mut self.records, b.records),
            (&mut self.bytes_copied, b.bytes_copied),
            (&mut self.bytes_over_budget, b.bytes_over_budget),
            (&mut self.records_lost, b.records_lost),
            (&mut self.bytes_lost, b.bytes_lost),
            (&mut self.unparsed, b.unparsed),
            (&mut self.bytes_unwalked, b.bytes_unwalked),
        ] {
            *x = f(*x, y);
        }
    }

    /// Adds another program's counters (a sum over interfaces).
    pub fn add(&mut self, other: &HttpKernelTotals) {
        self.zip(other, u64::saturating_add);
    }

    /// What was counted since `base` was read (never negative).
    pub fn since(&self, base: &HttpKernelTotals) -> HttpKernelTotals {
        let mut d = *self;
        d.zip(base, u64::saturating_sub);
        d
    }

    /// Every payload byte the kernel saw but user space did not get.
    pub fn bytes_not_copied(&self) -> u64 {
        self.bytes_over_budget + self.bytes_lost + self.bytes_unwalked
    }
}

impl Ingress {
    /// Turns HTTP payload copies on for `ports`, with `body_max` body bytes per message, and attaches
    /// the TC egress program to every interface the XDP program is attached to. Call after attaching.
    pub fn enable_http(&mut self, ports: &[u16], body_max: u32) -> Result<(), KernelError> {
        if ports.is_empty() || ports.len() > abi::HTTP_MAX_PORTS {
            return Err(KernelError::Load(format!("HTTP needs 1 to {} ports, got {}", abi::HTTP_MAX_PORTS, ports.len())));
        }
        let mut cfg = abi::HttpCfg { nports: ports.len() as u32, budget: body_max.saturating_add(HEAD_ALLOWANCE).min(BUDGET_MAX), ..Default::default() };
        cfg.ports[..ports.len()].copy_from_slice(ports);
        let err = |e: aya::maps::MapError| KernelError::Map { map: "rxray_http_config", detail: e.to_string() };
        let map = self.ebpf_mut().map_mut("rxray_http_config").ok_or(KernelError::Map { map: "rxray_http_config", detail: "missing from the object".into() })?;
        let mut arr: Array<&mut MapData, abi::HttpCfg> = Array::try_from(map).map_err(err)?;
        arr.set(0, cfg, 0).map_err(err)?;

        let ifaces: Vec<String> = self.attached().iter().map(|a| a.iface.clone()).collect();
        let prog: &mut SchedClassifier = self
            .ebpf_mut()
            .program_mut(EGRESS_PROG)
            .ok_or_else(|| KernelError::Load(format!("program {EGRESS_PROG} missing from the object")))?
            .try_into()
            .map_err(|e| KernelError::Load(format!("{e}")))?;
        prog.load().map_err(crate::classify_load_error)?;
        for iface in &ifaces {
            // Kernels since 6.6 attach through a TCX link; older ones need the clsact qdisc first.
            if prog.attach(iface, TcAttachType::Egress).is_err() {
                let _ = tc::qdisc_add_clsact(iface);
                prog.attach(iface, TcAttachType::Egress)
                    .map_err(|e| KernelError::Attach { iface: iface.clone(), detail: format!("TC egress: {e}") })?;
            }
        }
        self.set_feature(abi::FEAT_HTTP, true)
    }

    /// The HTTP ring; `None` after the first call.
    pub fn take_http_ring(&mut self) -> Option<RingBuf<MapData>> {
        let map = self.ebpf_mut().take_map("rxray_http")?;
        RingBuf::try_from(map).ok()
    }

    pub fn http_totals(&self) -> Result<HttpKernelTotals, KernelError> {
        let err = |e: aya::maps::MapError| KernelError::Map { map: "rxray_http_stats", detail: e.to_string() };
        let map = self.ebpf().map("rxray_http_stats").ok_or(KernelError::Map { map: "rxray_http_stats", detail: "missing".into() })?;
        let a: PerCpuArray<&MapData, abi::HttpStats> = PerCpuArray::try_from(map).map_err(err)?;
        let mut c = [0u64; abi::HC_COUNT];
        for s in a.get(&0, 0).map_err(err)?.iter() {
            for (acc, v) in c.iter_mut().zip(s.c.iter()) {
                *acc += v;
            }
        }
        Ok(HttpKernelTotals {
            segments: c[abi::HC_SEGMENTS],
            records: c[abi::HC_RECORDS],
            bytes_copied: c[abi::HC_BYTES_COPIED],
            bytes_over_budget: c[abi::HC_BYTES_BUDGET],
            records_lost: c[abi::HC_RECORDS_LOST],
            bytes_lost: c[abi::HC_BYTES_LOST],
            unparsed: c[abi::HC_UNPARSED],
            bytes_unwalked: c[abi::HC_BYTES_UNWALKED],
        })
    }
}

const SYN: u8 = 0x02;
const FIN: u8 = 0x01;

/// One ring record as the engine's segment: a record holds the payload bytes at `offset` of its
/// segment, so its sequence number is the segment's advanced by that offset; SYN stays on the
/// first record, FIN on the last, and the last record's length on the wire covers the payload the
/// kernel did not copy. `None` for a record that is inconsistent or on no watched port.
pub fn segment_of<'a>(rec: &'a [u8], ports: &[u16]) -> Option<(abi::HttpHdr, TcpSegment<'a>)> {
    let (h, data) = abi::HttpHdr::split(rec)?;
    let dir = direction(h.sport, h.dport, ports)?;
    if h.offset > h.payload_len || (h.last == 0 && h.len == 0) {
        return None;
    }
    let syn = u32::from(h.tcp_flags & SYN != 0);
    let mut flags = h.tcp_flags;
    let mut seq = h.seq;
    if h.offset > 0 {
        flags &= !SYN;
        seq = h.seq.wrapping_add(syn).wrapping_add(h.offset);
    }
    if h.last == 0 {
        flags &= !FIN;
    }
    let wire_len = if h.last != 0 { h.payload_len - h.offset } else { u32::from(h.len) };
    let seg = TcpSegment {
        ts_ns: h.ts_ns,
        src: ip_from(h.ip_ver, &h.saddr),
        sport: h.sport,
        dst: ip_from(h.ip_ver, &h.daddr),
        dport: h.dport,
        dir,
        seq,
        ack: h.ack,
        flags,
        payload: data,
        wire_len,
    };
    Some((h, seg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rxray_engine::http::Direction;

    fn rec(h: abi::HttpHdr, data: &[u8]) -> Vec<u8> {
        // SAFETY: HttpHdr is #[repr(C)] plain-old-data; its bytes are what the kernel writes.
        let mut v = unsafe { std::slice::from_raw_parts((&h as *const abi::HttpHdr).cast::<u8>(), std::mem::size_of::<abi::HttpHdr>()) }.to_vec();
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn records_become_segments_at_their_offsets() {
        let mut h = abi::HttpHdr { ip_ver: 4, sport: 40000, dport: 80, seq: 100, tcp_flags: 0x19, payload_len: 5000, copy_len: 3000, len: 2048, ..Default::default() };
        h.saddr[..4].copy_from_slice(&[198, 18, 0, 1]);
        let first = rec(h, &[b'a'; 2048]);
        let (_, s) = segment_of(&first, &[80]).unwrap();
        assert_eq!((s.seq, s.flags & FIN, s.wire_len, s.dir), (100, 0, 2048, Direction::ToServer));
        assert_eq!(s.src.to_string(), "198.18.0.1");
        h.offset = 2048;
        h.len = 952;
        h.last = 1;
        let second = rec(h, &[b'b'; 952]);
        let (_, s) = segment_of(&second, &[80]).unwrap();
        // The last record covers the 2000 bytes the kernel did not copy.
        assert_eq!((s.seq, s.flags & FIN, s.payload.len(), s.wire_len), (2148, FIN, 952, 5000 - 2048));
        assert!(segment_of(&second, &[8080]).is_none());
        assert!(segment_of(&second[..10], &[80]).is_none());
        assert!(segment_of(&second[..second.len() - 1], &[80]).is_none(), "a record shorter than its len");
    }
}
