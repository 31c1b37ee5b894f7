//! Ring-buffer record (abi::PktEvent) → engine Packet, plus the monotonic→wall clock mapping.
use crate::abi::{self, PktEvent};
use rxray_engine::event::{Arp, Eth, Icmp, Ip, Packet, Tcp, Udp, Vlan};
use rxray_engine::flows::{FlowKey, FlowRecord};

/// Converts the kernel's CLOCK_MONOTONIC stamps to Unix-epoch nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    offset_ns: i128,
}

impl Clock {
    /// Samples the offset between CLOCK_REALTIME and CLOCK_MONOTONIC now.
    pub fn now() -> Self {
        fn read(id: libc::clockid_t) -> i128 {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: ts is a valid, writable timespec; both clock ids exist on every Linux.
            unsafe { libc::clock_gettime(id, &mut ts) };
            ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
        }
        let mono = read(libc::CLOCK_MONOTONIC);
        let real = read(libc::CLOCK_REALTIME);
        Clock { offset_ns: real - mono }
    }

    /// A clock that leaves timestamps as they are (tests, simulations).
    pub fn identity() -> Self {
        Clock { offset_ns: 0 }
    }

    pub fn to_unix_ns(&self, mono_ns: u64) -> u64 {
        (mono_ns as i128 + self.offset_ns).max(0) as u64
    }
}

use rxray_wire::dissect::ip_from;

/// Decodes one event. `iface` is the interface's name as the caller knows it.
pub fn decode(e: &PktEvent, clock: &Clock, iface: &str) -> Packet {
    let l = e.layers;
    let eth = (l & abi::L_ETH != 0).then_some(Eth { src: e.src_mac, dst: e.dst_mac, ethertype: e.eth_proto });
    let vlans = (0..(e.vlan_count as usize).min(abi::MAX_VLANS))
        .map(|i| Vlan::from_tci(e.vlan_tpid[i], e.vlan_tci[i]))
        .collect();
    let arp = (l & abi::L_ARP != 0).then(|| Arp {
        op: e.arp_op,
        sha: e.arp_sha,
        spa: ip_from(4, &e.saddr),
        tha: e.arp_tha,
        tpa: ip_from(4, &e.daddr),
    });
    let ip = (l & (abi::L_IPV4 | abi::L_IPV6) != 0).then(|| Ip {
        version: e.ip_ver,
        src: ip_from(e.ip_ver, &e.saddr),
        dst: ip_from(e.ip_ver, &e.daddr),
        ttl: e.ttl,
        dscp: e.tos >> 2,
        ecn: e.tos & 3,
        id: e.ip_id,
        df: e.frag_flags & abi::FRAG_DF != 0,
        mf: e.frag_flags & abi::FRAG_MF != 0,
        frag_offset: e.frag_off,
        fragment: l & abi::L_FRAG != 0,
        proto: e.l4_proto,
        hdr_len: e.ip_hdr_len,
        total_len: e.ip_total_len,
        options: l & abi::L_IP_OPTS != 0,
        flow_label: e.ipv6_flow_label,
        ext_headers: e.ipv6_exts[..(e.ipv6_ext_count as usize).min(abi::MAX_IPV6_EXT)].to_vec(),
    });
    let o = e.tcp_opts;
    let tcp = (l & abi::L_TCP != 0).then_some(Tcp {
        sport: e.sport,
        dport: e.dport,
        seq: e.tcp_seq,
        ack: e.tcp_ack,
        flags: e.tcp_flags,
        window: e.tcp_window,
        hdr_len: e.tcp_hdr_len,
        mss: (o & abi::TCPOPT_MSS != 0).then_some(e.tcp_mss),
        wscale: (o & abi::TCPOPT_WSCALE != 0).then_some(e.tcp_wscale),
        sack_ok: o & abi::TCPOPT_SACK_OK != 0,
        sack: o & abi::TCPOPT_SACK != 0,
        ts: (o & abi::TCPOPT_TS != 0).then_some((e.tcp_tsval, e.tcp_tsecr)),
    });
    let udp = (l & abi::L_UDP != 0).then_some(Udp { sport: e.sport, dport: e.dport, len: e.l4_len });
    let icmp = (l & (abi::L_ICMP | abi::L_ICMPV6) != 0).then(|| {
        let v6 = l & abi::L_ICMPV6 != 0;
        let echo = if v6 { matches!(e.icmp_type, 128 | 129) } else { matches!(e.icmp_type, 0 | 8) };
        Icmp { v6, ty: e.icmp_type, code: e.icmp_code, echo: echo.then_some((e.icmp_id, e.icmp_seq)) }
    });
    let mal = e.malformed as usize;
    Packet {
        ts_ns: clock.to_unix_ns(e.ts_ns),
        ifindex: e.ifindex,
        iface: iface.to_string(),
        rx_queue: e.rx_queue,
        len: e.wire_len,
        malformed: (mal != 0).then(|| abi::MALFORMED_NAMES.get(mal).copied().unwrap_or("unknown")),
        eth,
        vlans,
        arp,
        ip,
        tcp,
        udp,
        icmp,
        payload_offset: e.payload_off,
        firewall: match e.fw_verdict {
            abi::FWV_DROP => Some("drop"),
            abi::FWV_WOULD => Some("would-drop"),
            _ => None,
        },
        payload: e.payload[..(e.payload_len as usize).min(abi::PAYLOAD_MAX)].to_vec(),
    }
}

/// Decodes one flow-table entry (counters already summed over CPUs).
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
        packets: v.packets,
        bytes: v.bytes,
        first_ns: clock.to_unix_ns(v.first_ns),
        last_ns: clock.to_unix_ns(v.last_ns),
        tcp_flags: v.tcp_flags as u8,
        size_hist: v.size_hist,
        pps: 0.0,
        bps: 0.0,
    }
}
