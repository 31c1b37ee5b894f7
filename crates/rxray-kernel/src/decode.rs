//! Ring-buffer and map records (abi::*) → the engine's typed events, plus the monotonic→wall
//! clock mapping. The only place where kernel records become events.
use crate::abi::{self, PktEvent};
use rxray_engine::event::Packet;
use rxray_engine::flows::{FlowKey, FlowRecord};
use rxray_engine::source::{ConnReader, Connection, DropEvent, LatencyEntry, LatencyFlow, LatencyProc};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Converts the kernel's CLOCK_MONOTONIC stamps to Unix-epoch nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    offset_ns: i128,
}

impl Clock {
    /// Samples the offset between CLOCK_REALTIME and CLOCK_MONOTONIC now: the realtime read
    /// bracketed by two monotonic reads, the tightest of a few tries (a preemption between two
    /// reads would otherwise skew every timestamp by its length).
    pub fn now() -> Self {
        fn read(id: libc::clockid_t) -> i128 {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: ts is a valid, writable timespec; both clock ids exist on every Linux.
            unsafe { libc::clock_gettime(id, &mut ts) };
            ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
        }
        let mut best = (i128::MAX, 0);
        for _ in 0..5 {
            let m0 = read(libc::CLOCK_MONOTONIC);
            let real = read(libc::CLOCK_REALTIME);
            let m1 = read(libc::CLOCK_MONOTONIC);
            if m1 - m0 < best.0 {
                best = (m1 - m0, real - (m0 + (m1 - m0) / 2));
            }
        }
        Clock { offset_ns: best.1 }
    }

    /// Samples the offset again, so that a step of the wall clock (NTP, a restored VM) reaches
    /// the timestamps: long-running sources call it about once a second.
    pub fn resync(&mut self) {
        *self = Clock::now();
    }

    /// A clock that leaves timestamps as they are (tests, simulations).
    pub fn identity() -> Self {
        Clock { offset_ns: 0 }
    }

    pub fn to_unix_ns(&self, mono_ns: u64) -> u64 {
        (mono_ns as i128 + self.offset_ns).max(0) as u64
    }

    /// The time now, Unix-epoch ns, on this clock.
    pub fn now_ns(&self) -> u64 {
        self.to_unix_ns(monotonic_ns())
    }
}

/// CLOCK_MONOTONIC in ns: the kernel's bpf_ktime_get_ns and its coarse variant count from the same base.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A 16-byte address field by IP version (4 or 6); `None` for any other version.
fn ip_by_ver(ver: u8, b: &[u8; 16]) -> Option<IpAddr> {
    matches!(ver, 4 | 6).then(|| ip_from(ver, b))
}

/// A socket address by family (AF_INET 2, AF_INET6 10); v4-mapped IPv6 reads as IPv4.
pub(crate) fn ip_by_family(family: u16, b: &[u8; 16]) -> Option<IpAddr> {
    match family {
        2 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        10 => {
            let v6 = Ipv6Addr::from(*b);
            Some(v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)))
        }
        _ => None,
    }
}

/// A NUL-padded comm.
pub(crate) fn comm_str(b: &[u8; 16]) -> String {
    let n = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// Decodes a drop event.
pub fn decode_drop(e: &abi::DropEvent, clock: &Clock) -> DropEvent {
    DropEvent {
        ts_ns: clock.to_unix_ns(e.ts_ns),
        ifindex: e.ifindex,
        reason: e.reason,
        location: e.location,
        len: e.len,
        protocol: e.protocol,
        ip_ver: e.ip_ver,
        proto: e.l4_proto,
        src: ip_by_ver(e.ip_ver, &e.saddr),
        dst: ip_by_ver(e.ip_ver, &e.daddr),
        sport: e.sport,
        dport: e.dport,
        tcp_flags: e.tcp_flags,
    }
}

/// Decodes a connection record (ring event or map entry).
pub fn decode_conn(c: &abi::Conn, clock: &Clock) -> Connection {
    let t = |ns: u64| (ns != 0).then(|| clock.to_unix_ns(ns));
    let n = (c.npath as usize).min(abi::CONN_PATH);
    Connection {
        local: ip_by_family(c.family, &c.saddr),
        local_port: c.sport,
        remote: ip_by_family(c.family, &c.daddr),
        remote_port: c.dport,
        state: c.state,
        path: c.path[..n].to_vec(),
        passive: c.flags & abi::CONNF_PASSIVE != 0,
        late: c.flags & abi::CONNF_LATE != 0,
        fin_rx: c.flags & abi::CONNF_FIN_RX != 0,
        first_ns: t(c.first_ns),
        syn_ns: t(c.syn_ns),
        established_ns: t(c.established_ns),
        last_ns: t(c.last_ns),
        bytes_received: c.bytes_received,
        bytes_acked: c.bytes_acked,
        bytes_sent: c.bytes_sent,
        bytes_retrans: c.bytes_retrans,
        retransmits: c.retransmits,
        total_retrans: c.total_retrans,
        srtt_us: c.srtt_us,
        rttvar_us: c.rttvar_us,
        min_rtt_us: c.min_rtt_us,
        srtt_min_us: c.srtt_min_us,
        srtt_max_us: c.srtt_max_us,
        rst_rx: c.rst_rx,
        rst_tx: c.rst_tx,
        reader: (c.reader_pid != 0).then(|| ConnReader {
            pid: c.reader_pid,
            comm: comm_str(&c.reader_comm),
            cgroup_id: c.reader_cgroup,
        }),
        reader_bytes: c.reader_bytes,
        reader_changes: c.reader_changes,
    }
}

/// Decodes a latency flow key (remote → local) with its histograms.
pub fn decode_latency_flow(k: &abi::LatKey, e: LatencyEntry) -> LatencyFlow {
    LatencyFlow {
        proto: k.proto,
        remote: ip_by_ver(k.ip_ver, &k.saddr),
        remote_port: k.sport,
        local: ip_by_ver(k.ip_ver, &k.daddr),
        local_port: k.dport,
        latency: e,
    }
}

/// Decodes a latency process key with its histograms.
pub fn decode_latency_proc(k: &abi::LatProcKey, e: LatencyEntry) -> LatencyProc {
    LatencyProc { pid: k.tgid, cgroup_id: k.cgroup_id, latency: e }
}

use rxray_wire::dissect::{empty_packet, ip_from};
use rxray_wire::flat::{fill_layers, Flat};

/// Decodes one event. `iface` is the interface's name as the caller knows it. The layers are
/// built by rxray-wire's one conversion (`flat::fill_layers`), the one captures go through too.
pub fn decode(e: &PktEvent, clock: &Clock, iface: &str) -> Packet {
    let f = Flat {
        layers: e.layers,
        payload_off: e.payload_off,
        eth_proto: e.eth_proto,
        dst_mac: e.dst_mac,
        src_mac: e.src_mac,
        vlan_tpid: e.vlan_tpid,
        vlan_tci: e.vlan_tci,
        vlan_count: e.vlan_count,
        ip_ver: e.ip_ver,
        l4_proto: e.l4_proto,
        ttl: e.ttl,
        tos: e.tos,
        ext_count: e.ipv6_ext_count,
        ip_hdr_len: e.ip_hdr_len,
        ip_total_len: e.ip_total_len,
        frag_flags: e.frag_flags,
        tcp_flags: e.tcp_flags,
        ip_id: e.ip_id,
        frag_off: e.frag_off,
        arp_op: e.arp_op,
        flow_label: e.ipv6_flow_label,
        exts: e.ipv6_exts,
        saddr: e.saddr,
        daddr: e.daddr,
        arp_sha: e.arp_sha,
        arp_tha: e.arp_tha,
        sport: e.sport,
        dport: e.dport,
        tcp_seq: e.tcp_seq,
        tcp_ack: e.tcp_ack,
        tcp_window: e.tcp_window,
        tcp_opts: e.tcp_opts,
        tcp_wscale: e.tcp_wscale,
        tcp_mss: e.tcp_mss,
        tcp_hdr_len: e.tcp_hdr_len,
        icmp_type: e.icmp_type,
        tcp_tsval: e.tcp_tsval,
        tcp_tsecr: e.tcp_tsecr,
        icmp_code: e.icmp_code,
        icmp_id: e.icmp_id,
        icmp_seq: e.icmp_seq,
        l4_len: e.l4_len,
        l3_off: 0,
        ifindex: None,
    };
    let mal = e.malformed as usize;
    let mut p = empty_packet();
    p.ts_ns = clock.to_unix_ns(e.ts_ns);
    p.ifindex = e.ifindex;
    p.iface = iface.to_string();
    p.rx_queue = e.rx_queue;
    p.len = e.wire_len;
    p.malformed = (mal != 0).then(|| abi::MALFORMED_NAMES.get(mal).copied().unwrap_or("unknown"));
    fill_layers(&mut p, &f);
    p.firewall = match e.fw_verdict {
        abi::FWV_DROP => Some("drop"),
        abi::FWV_WOULD => Some("would-drop"),
        _ => None,
    };
    p.payload = e.payload[..(e.payload_len as usize).min(abi::PAYLOAD_MAX)].to_vec();
    p
}

/// Decodes one flow-table entry.
pub fn decode_flow(k: &abi::FlowKey, v: &abi::FlowStats, clock: &Clock, iface: &str) -> FlowRecord {
    FlowRecord {
        key: FlowKey {
            ifindex: k.ifindex,
            vlan: k.vlan,
            proto: k.proto,
            src: ip_from(k.ip_ver, &k.saddr),
            dst: ip_from(k.ip_ver, &k.daddr),
            sport: k.sport,
            dport: k.dport,
            fragments: k.kind == abi::FK_FRAGS,
        },
        iface: iface.to_string(),
        packets: v.packets(),
        bytes: v.bytes,
        first_ns: clock.to_unix_ns(v.first_ns),
        last_ns: clock.to_unix_ns(v.last_ns),
        tcp_flags: v.tcp_flags as u8,
        size_hist: v.size_hist,
        pps: 0.0,
        bps: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_maps_monotonic_to_the_wall_clock_and_resyncs() {
        let wall = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i128;
        let mut c = Clock::now();
        let (before, mapped, after) = (wall(), c.now_ns() as i128, wall());
        // The mapping is one sample's error off at most (well under a millisecond, even preempted once).
        assert!(mapped >= before - 1_000_000 && mapped <= after + 1_000_000, "{before} {mapped} {after}");
        let off = c.offset_ns;
        c.offset_ns -= 5_000_000; // as if the wall clock had stepped 5 ms since the sample
        c.resync();
        assert!((c.offset_ns - off).abs() < 1_000_000, "resync did not resample: {} vs {off}", c.offset_ns);
    }

    #[test]
    fn a_connection_record_decodes_flags_addresses_path_and_unstamped_times() {
        let mut c = abi::Conn { family: 2, sport: 80, dport: 40000, state: 7, npath: 3, ..Default::default() };
        c.saddr[..4].copy_from_slice(&[10, 0, 0, 2]);
        c.daddr[..4].copy_from_slice(&[10, 0, 0, 1]);
        c.path[..3].copy_from_slice(&[3, 1, 7]);
        c.flags = abi::CONNF_FIN_RX | abi::CONNF_PASSIVE;
        c.first_ns = 1_000;
        c.last_ns = 3_000;
        let k = decode_conn(&c, &Clock::identity());
        assert_eq!((k.local, k.local_port), (Some("10.0.0.2".parse().unwrap()), 80));
        assert_eq!((k.remote, k.remote_port), (Some("10.0.0.1".parse().unwrap()), 40000));
        assert_eq!(k.path, vec![3, 1, 7]);
        assert!(k.fin_rx && k.passive && !k.late);
        assert_eq!((k.first_ns, k.syn_ns, k.last_ns), (Some(1_000), None, Some(3_000)), "0 is not stamped");
        assert_eq!(k.reader, None);
        c.flags = abi::CONNF_LATE;
        c.reader_pid = 42;
        c.reader_cgroup = 7;
        c.reader_comm[..7].copy_from_slice(b"python3");
        c.family = 10;
        c.saddr = std::net::Ipv4Addr::new(10, 0, 0, 2).to_ipv6_mapped().octets();
        let k = decode_conn(&c, &Clock::identity());
        assert!(k.late && !k.fin_rx && !k.passive);
        assert_eq!(k.local, Some("10.0.0.2".parse().unwrap()), "v4-mapped reads as IPv4");
        assert_eq!(k.reader, Some(ConnReader { pid: 42, comm: "python3".into(), cgroup_id: 7 }));
        c.family = 99;
        assert_eq!(decode_conn(&c, &Clock::identity()).local, None);
    }

    #[test]
    fn a_drop_event_decodes_its_addresses_by_ip_version() {
        let mut e = abi::DropEvent { ts_ns: 5, reason: 3, ifindex: 2, ip_ver: 4, l4_proto: 17, sport: 1, dport: 2, ..Default::default() };
        e.saddr[..4].copy_from_slice(&[198, 18, 0, 1]);
        e.daddr[..4].copy_from_slice(&[198, 18, 0, 2]);
        let d = decode_drop(&e, &Clock::identity());
        assert_eq!((d.ts_ns, d.reason, d.ifindex, d.proto), (5, 3, 2, 17));
        assert_eq!((d.src, d.dst), (Some("198.18.0.1".parse().unwrap()), Some("198.18.0.2".parse().unwrap())));
        e.ip_ver = 0;
        assert_eq!(decode_drop(&e, &Clock::identity()).src, None, "not IP: no addresses");
    }
}
