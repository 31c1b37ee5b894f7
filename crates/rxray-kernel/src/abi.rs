//! Rust mirrors of bpf/include/rxray.h, the kernel/user ABI.
//! The C header is the source of truth; `tests/abi_btf.rs` checks every size and field offset here
//! against the BTF of the compiled object.
#![allow(missing_docs)]

/// The frame's limits, its layers, fragment flags, TCP options seen and malformed categories:
/// rxray-wire defines them once (the capture dissector fills the same flat record as the kernel),
/// and this module re-exports them, so tests/abi_btf.rs checks them against rxray.h with the rest.
pub use rxray_wire::flat::{
    FRAG_DF, FRAG_MF, L_ARP, L_ETH, L_FRAG, L_FRAG_PORTS, L_ICMP, L_ICMPV6, L_IPV4, L_IPV6, L_IP_OPTS, L_QINQ, L_TCP, L_UDP, L_VLAN,
    TCPOPT_MSS, TCPOPT_SACK, TCPOPT_SACK_OK, TCPOPT_TS, TCPOPT_WSCALE,
};
pub use rxray_wire::{
    MALFORMED_NAMES, MAL_ARP_TRUNC, MAL_COUNT, MAL_ETH_TRUNC, MAL_ICMP_TRUNC, MAL_IPV4_HDR, MAL_IPV4_TRUNC, MAL_IPV6_EXT_CHAIN,
    MAL_IPV6_EXT_TRUNC, MAL_IPV6_HDR, MAL_IPV6_TRUNC, MAL_NONE, MAL_TCP_HDR, MAL_TCP_OPT, MAL_TCP_TRUNC, MAL_UDP_LEN, MAL_UDP_TRUNC,
    MAL_VLAN_DEPTH, MAL_VLAN_TRUNC, MAX_IPV6_EXT, MAX_VLANS, PAYLOAD_MAX,
};

pub const PAYLOAD_DEFAULT: u32 = 128;

pub const FEAT_EVENTS: u32 = 1 << 0;
pub const FEAT_FLOWS: u32 = 1 << 1;
pub const FEAT_FILTER: u32 = 1 << 2;
pub const FEAT_CAPTURE: u32 = 1 << 3;
pub const FEAT_FIREWALL: u32 = 1 << 5;
pub const FEAT_FW_DRYRUN: u32 = 1 << 6;
pub const CAP_CHUNK: usize = 1024;
pub const CAP_SNAP_MAX: u32 = 262144;
pub const FLOW_HIST: usize = 8;
/// Upper bounds of the flow size-histogram buckets (the last is open).
pub const FLOW_HIST_BOUNDS: [u32; FLOW_HIST] = [64, 128, 256, 512, 1024, 1518, 9018, u32::MAX];

pub const FK_FLOW: u8 = 0;
pub const FK_FRAGS: u8 = 1;

/// `enum rxray_proto_class`, in order.
pub const PROTO_NAMES: [&str; 11] = [
    "ipv4_tcp", "ipv4_udp", "ipv4_icmp", "ipv4_other", "ipv6_tcp", "ipv6_udp", "ipv6_icmp", "ipv6_other",
    "arp", "other_l2", "malformed",
];
pub const P_COUNT: usize = 16;


pub const C_PACKETS: usize = 0;
pub const C_BYTES: usize = 1;
pub const C_EVENTS: usize = 2;
pub const C_LOST: usize = 3;
pub const C_MALFORMED: usize = 4;
pub const C_FLOW_FAIL: usize = 5;
pub const C_FRAG_BUCKET: usize = 6;
pub const C_IFACE_FAIL: usize = 7;
pub const C_MAL_BASE: usize = 8;
pub const C_FILTERED: usize = 25;
pub const C_CAP_PACKETS: usize = 26;
pub const C_CAP_LOST: usize = 27;
pub const C_FW_DROPPED: usize = 28;
pub const C_FW_WOULD: usize = 29;
pub const C_COUNT: usize = 32;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub c: [u64; C_COUNT],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    pub features: u32,
    pub payload_snap: u32,
    pub clock_ns: u64,
    pub wakeup_bytes: u64,
    pub capture_snap: u32,
    pub _pad0: u32,
}

/// `struct rxray_cap_hdr`: the header of one capture record; `len` packet bytes follow it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapHdr {
    pub ts_ns: u64,
    pub ifindex: u32,
    pub rx_queue: u32,
    pub wire_len: u32,
    pub cap_len: u32,
    pub seq: u32,
    pub offset: u32,
    pub len: u16,
    pub cpu: u8,
    pub last: u8,
    pub _pad: u32,
}

impl CapHdr {
    /// The header and the data of a capture record; `None` when the record is inconsistent.
    pub fn split(b: &[u8]) -> Option<(CapHdr, &[u8])> {
        split_record(b, |h: &CapHdr| h.len as usize)
    }
}

/// A ring record: a `#[repr(C)]` header `H` then `data_len(&header)` bytes; `None` when the record
/// is shorter than that.
fn split_record<H: Copy + RecordHeader>(b: &[u8], data_len: impl Fn(&H) -> usize) -> Option<(H, &[u8])> {
    let n = std::mem::size_of::<H>();
    if b.len() < n {
        return None;
    }
    // SAFETY: length checked; H is plain-old-data valid for any bits (RecordHeader); no alignment needed.
    let h = unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<H>()) };
    let data = b.get(n..n + data_len(&h))?;
    Some((h, data))
}

/// Headers `split_record` may read from raw record bytes.
///
/// # Safety
/// Implementors are `#[repr(C)]` plain-old-data, valid for any bit pattern.
unsafe trait RecordHeader {}
// SAFETY: #[repr(C)] integers only.
unsafe impl RecordHeader for CapHdr {}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub ifindex: u32,
    pub vlan: u16,
    pub ip_ver: u8,
    pub proto: u8,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub kind: u8,
    pub _pad: [u8; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub bytes: u64,
    pub last_ns: u64,
    pub first_ns: u64,
    pub tcp_flags: u64,
    pub size_hist: [u64; FLOW_HIST],
}

impl FlowStats {
    /// The flow's packets: every packet is counted in exactly one size bucket.
    pub fn packets(&self) -> u64 {
        self.size_hist.iter().sum()
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    pub packets: u64,
    pub bytes: u64,
}

pub const IFACE_SLOTS: usize = 64;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfaceSlot {
    pub ifindex: u32,
    pub _pad: u32,
    pub c: Count,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub ifindex: u32,
    pub id: u32,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub ip_ver: u8,
    pub proto: u8,
    pub _pad: [u8; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragPorts {
    pub sport: u16,
    pub dport: u16,
}


#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PktEvent {
    pub ts_ns: u64,
    pub ifindex: u32,
    pub rx_queue: u32,
    pub wire_len: u32,
    pub layers: u32,
    pub malformed: u16,
    pub payload_off: u16,
    pub payload_len: u16,
    pub eth_proto: u16,
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub vlan_tpid: [u16; MAX_VLANS],
    pub vlan_tci: [u16; MAX_VLANS],
    pub vlan_count: u8,
    pub ip_ver: u8,
    pub l4_proto: u8,
    pub ttl: u8,
    pub tos: u8,
    pub ipv6_ext_count: u8,
    pub ip_hdr_len: u16,
    pub ip_total_len: u16,
    pub frag_flags: u8,
    pub tcp_flags: u8,
    pub ip_id: u32,
    pub frag_off: u16,
    pub arp_op: u16,
    pub ipv6_flow_label: u32,
    pub ipv6_exts: [u8; MAX_IPV6_EXT],
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub arp_sha: [u8; 6],
    pub arp_tha: [u8; 6],
    pub sport: u16,
    pub dport: u16,
    pub tcp_seq: u32,
    pub tcp_ack: u32,
    pub tcp_window: u16,
    pub tcp_opts: u8,
    pub tcp_wscale: u8,
    pub tcp_mss: u16,
    pub tcp_hdr_len: u8,
    pub icmp_type: u8,
    pub tcp_tsval: u32,
    pub tcp_tsecr: u32,
    pub icmp_code: u8,
    pub fw_verdict: u8,
    pub icmp_id: u16,
    pub icmp_seq: u16,
    pub l4_len: u16,
    pub frag_sport: u16,
    pub frag_dport: u16,
    pub payload: [u8; PAYLOAD_MAX],
}

impl PktEvent {
    /// Reads an event from a ring-buffer record; `None` when the record is too short.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < std::mem::size_of::<Self>() {
            return None;
        }
        // SAFETY: the length was checked; PktEvent is plain-old-data for which every bit pattern
        // is valid, and read_unaligned has no alignment requirement.
        Some(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<Self>()) })
    }
}

// ---- packet filter (RXRAY_FEAT_FILTER) ----
pub const FILTER_MAX: usize = 64;
pub const FILTER_ACCEPT: u8 = 0xfe;
pub const FILTER_REJECT: u8 = 0xff;

/// `enum rxray_filter_field`.
pub const FF_L3: u8 = 0;
pub const FF_IP: u8 = 1;
pub const FF_V6EXT: u8 = 2;
pub const FF_FRAG_OFF: u8 = 3;
pub const FF_SPORT: u8 = 4;
pub const FF_DPORT: u8 = 5;
pub const FF_TCP_FLAGS: u8 = 6;
pub const FF_WIRE_LEN: u8 = 7;
pub const FF_VLAN_COUNT: u8 = 8;
pub const FF_VID0: u8 = 9;
pub const FF_VID1: u8 = 10;
pub const FF_SADDR: u8 = 16;
pub const FF_DADDR: u8 = 17;

/// `enum rxray_filter_cmp`.
pub const FC_EQ: u8 = 0;
pub const FC_GT: u8 = 1;
pub const FC_GE: u8 = 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterInsn {
    pub field: u8,
    pub cmp: u8,
    pub jt: u8,
    pub jf: u8,
    pub mask: u32,
    pub value: u32,
    pub _pad: u32,
    pub addr: [u8; 16],
    pub amask: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterProg {
    pub len: u32,
    pub entry: u8,
    pub _pad: [u8; 3],
    pub insn: [FilterInsn; FILTER_MAX],
}

impl Default for FilterProg {
    fn default() -> Self {
        FilterProg { len: 0, entry: FILTER_ACCEPT, _pad: [0; 3], insn: [FilterInsn::default(); FILTER_MAX] }
    }
}


// ---- drops (bpf/kernel.bpf.c) ----
pub const DROP_REASONS: usize = 512;
pub const DROP_IFACES_MAX: u32 = 64;
pub const DROPF_IFACES: u32 = 1 << 0;
pub const DROPF_COUNT_ONLY: u32 = 1 << 1;
pub const DC_DROPS: usize = 0;
pub const DC_EVENTS: usize = 1;
pub const DC_LOST: usize = 2;
pub const DC_NO_NETNS: usize = 3;
pub const DC_COUNT: usize = 8;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DropStats {
    pub c: [u64; DC_COUNT],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DropConfig {
    pub netns_ino: u32,
    pub flags: u32,
}

/// `struct rxray_drop_event`: one packet the kernel dropped.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropEvent {
    pub ts_ns: u64,
    pub location: u64,
    pub reason: u32,
    pub ifindex: u32,
    pub len: u32,
    pub protocol: u16,
    pub ip_ver: u8,
    pub l4_proto: u8,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub _pad: [u8; 11],
}

impl DropEvent {
    /// Reads an event from a ring-buffer record; `None` when the record is too short.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < std::mem::size_of::<Self>() {
            return None;
        }
        // SAFETY: the length was checked; DropEvent is plain-old-data valid for any bits, and
        // read_unaligned has no alignment requirement.
        Some(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<Self>()) })
    }
}


pub const CONNS_MAX: u32 = 16384;
pub const CONN_PATH: usize = 16;
pub const CC_NEW: usize = 0;
pub const CC_EVENTS: usize = 1;
pub const CC_LOST: usize = 2;
pub const CC_INSERT_FAIL: usize = 3;
pub const CC_UNTRACKED: usize = 4;
pub const CC_RST_TX_NOSOCK: usize = 5;
pub const CC_CLOSED: usize = 6;
pub const CC_COUNT: usize = 8;
pub const CONNF_PASSIVE: u32 = 1 << 0;
pub const CONNF_FIN_RX: u32 = 1 << 1;
pub const CONNF_LATE: u32 = 1 << 2;

/// `struct rxray_conn_stats`: per-CPU counters indexed by `CC_*`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnStats {
    pub c: [u64; CC_COUNT],
}

/// `struct rxray_conn_config`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnConfig {
    pub netns_ino: u32,
    pub flags: u32,
}

/// `struct rxray_conn`: one TCP socket's record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conn {
    pub sk: u64,
    pub first_ns: u64,
    pub syn_ns: u64,
    pub established_ns: u64,
    pub last_ns: u64,
    pub bytes_received: u64,
    pub bytes_acked: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub retransmits: u32,
    pub total_retrans: u32,
    pub srtt_us: u32,
    pub rttvar_us: u32,
    pub min_rtt_us: u32,
    pub srtt_min_us: u32,
    pub srtt_max_us: u32,
    pub flags: u32,
    pub rst_rx: u16,
    pub rst_tx: u16,
    pub family: u16,
    pub sport: u16,
    pub dport: u16,
    pub state: u8,
    pub old_state: u8,
    pub npath: u8,
    pub _pad: [u8; 7],
    pub path: [u8; CONN_PATH],
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    /// Times the reading process changed after the first (sock_recv_length).
    pub reader_changes: u32,
    /// The latest reader's cgroup v2 id (the cgroup directory's inode number).
    pub reader_cgroup: u64,
    /// Bytes the latest reader received (positive recvmsg returns, MSG_PEEK excluded).
    pub reader_bytes: u64,
    /// The latest reader's tgid; 0 when nothing was read yet.
    pub reader_pid: u32,
    pub _pad2: u32,
    /// The latest reader's comm (NUL-padded).
    pub reader_comm: [u8; 16],
}

/// `struct rxray_conn_event`: a state change with the record after it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnEvent {
    pub ts_ns: u64,
    pub c: Conn,
}

impl ConnEvent {
    /// Reads an event from a ring-buffer record; `None` when the record is too short.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < std::mem::size_of::<Self>() {
            return None;
        }
        // SAFETY: the length was checked; ConnEvent is plain-old-data valid for any bits, and
        // read_unaligned has no alignment requirement.
        Some(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<Self>()) })
    }
}


// ---- firewall (rxray.h "firewall" section; bpf/include/rxray_fw.h) ----
pub const FW_RULES: usize = 64;
pub const FW_SLOTS: usize = FW_RULES + 2;
pub const FW_C_DEFAULT: usize = FW_RULES;
pub const FW_C_BLOCKS: usize = FW_RULES + 1;
pub const FW_CLASSES: usize = 128;
pub const FW_DEEP: u8 = 0x80;
pub const FW_V4_WORDS: u32 = 1 << 22;
pub const FW_LENS: usize = 32;
pub const FW_V6_BITS: u32 = 22;
pub const FW_V6_WORDS: u32 = 1 << 20;
pub const FW_V6_REST: u8 = 0x80;
pub const FW_V6_MIN: u8 = 24;
pub const FW_V6_MUL: u32 = 0x61c8_8647;
pub const FW_PSLOTS: usize = 3;
pub const FW_PROBES: usize = 8;
pub const FW_GROUP: usize = 6;
pub const FW_TAG_GROUP: u8 = 0x10;
pub const FWA_ALLOW: u8 = 1;
pub const FWA_DENY: u8 = 2;
pub const FWA_LIMIT: u8 = 3;
pub const FWL_RULE: u8 = 0;
pub const FWL_SRC: u8 = 1;
pub const FWL_DPORT: u8 = 2;
pub const FWV_NONE: u8 = 0;
pub const FWV_DROP: u8 = 1;
pub const FWV_WOULD: u8 = 2;
pub const FWF_SRC: u8 = 0;
pub const FWF_DST: u8 = 1;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwRule {
    pub expires_ns: u64,
    pub pps: u64,
    pub burst_pkts: u64,
    pub bps: u64,
    pub burst_bytes: u64,
    pub id: u32,
    pub action: u8,
    pub ip_ver: u8,
    pub proto: u8,
    pub limit_by: u8,
    pub limit_len: u8,
    pub limit_len6: u8,
    pub flags_mask: u8,
    pub flags_value: u8,
    pub sport_lo: u16,
    pub sport_hi: u16,
    pub dport_lo: u16,
    pub dport_hi: u16,
    pub l4: u8,
    pub _pad: [u8; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwSet {
    pub nrules: u32,
    pub default_action: u8,
    pub drop_malformed: u8,
    pub nlens: [[u8; 2]; 2],
    pub lens: [[[u8; FW_LENS]; 2]; 2],
    pub v6_always: u8,
    pub v4_direct: u8,
    pub groups: u8,
    pub pbuckets: u32,
}

/// One bucket of a prefix table (struct rxray_fw_pbucket); rxray_engine's ptable writes them as bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FwPbucket {
    pub addr: [[u32; 4]; FW_PSLOTS],
    pub len: [u8; FW_PSLOTS],
    pub tag: [u8; FW_PSLOTS],
    pub cls: [u8; FW_PSLOTS],
    pub _pad: [u8; 7],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwCounter {
    pub packets: u64,
    pub bytes: u64,
    pub last_ns: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FwBlockKey {
    pub ver: u8,
    pub len: u8,
    pub _pad: [u8; 2],
    pub addr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwBlock {
    pub expires_ns: u64,
    pub added_ns: u64,
    pub packets: u64,
    pub bytes: u64,
    pub id: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwBlockLens {
    pub v4: u64,
    pub v6: [u64; 3],
    pub dlimits: u32,
    pub slimits: u32,
    pub s4: u64,
    pub s6: [u64; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FwDlimitKey {
    pub ver: u8,
    pub _pad: [u8; 3],
    pub addr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwDlimit {
    pub expires_ns: u64,
    pub added_ns: u64,
    pub pps: u64,
    pub burst: u64,
    pub tat: u64,
    pub packets: u64,
    pub bytes: u64,
    pub id: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwSlimit {
    pub expires_ns: u64,
    pub added_ns: u64,
    pub interval_ns: u64,
    pub burst: u64,
    pub tat: u64,
    pub packets: u64,
    pub bytes: u64,
    pub passed: u64,
    pub id: u32,
    pub dport: u16,
    pub syn_only: u8,
    pub _pad: u8,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwBucketKey {
    pub slot: u32,
    pub port: u16,
    pub ver: u8,
    pub _pad: u8,
    pub addr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwBucket {
    pub tat_pkts: u64,
    pub tat_bytes: u64,
}

/// A rule's counters for display: packets, bytes, and seconds since the last hit.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct FwCounterView {
    pub packets: u64,
    pub bytes: u64,
    /// Seconds since the last hit (None: never hit).
    pub last_hit_s_ago: Option<f64>,
}

impl FwCounterView {
    pub fn from_raw(c: &FwCounter, now_ns: u64) -> FwCounterView {
        FwCounterView {
            packets: c.packets,
            bytes: c.bytes,
            last_hit_s_ago: (c.packets > 0).then(|| now_ns.saturating_sub(c.last_ns) as f64 / 1e9),
        }
    }
}

// ---- delivery latency (bpf/xdp_ingress.bpf.c, RXRAY_FEAT_LATENCY) ----
pub const FEAT_LATENCY: u32 = 1 << 4;
pub const LAT_ARRIVALS_MAX: u32 = 65536;
pub const LAT_FLOWS_MAX: u32 = 4096;
pub const LAT_PROCS_MAX: u32 = 1024;
pub const LAT_SUB_BITS: u32 = 2;
pub const LAT_BUCKETS: usize = 160;
pub const LC_STAMPED: usize = 0;
pub const LC_QUEUED: usize = 1;
pub const LC_READ: usize = 2;
pub const LC_FLOW_FAIL: usize = 3;
pub const LC_PROC_FAIL: usize = 4;
pub const LC_COUNT: usize = 8;

/// `struct rxray_lat_stats`: per-CPU counters indexed by `LC_*`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LatStats {
    pub c: [u64; LC_COUNT],
}

/// `struct rxray_lat_key`: one packet as it arrived (remote → local), or with tag 0 a flow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LatKey {
    pub ip_ver: u8,
    pub proto: u8,
    pub _pad: u16,
    pub tag: u32,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
}

/// `struct rxray_lat_stamp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LatStamp {
    pub arrival_ns: u64,
    pub queued_ns: u64,
}

/// `struct rxray_lat_proc_key`: a reading process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LatProcKey {
    pub tgid: u32,
    pub _pad: u32,
    pub cgroup_id: u64,
}

pub const LAT_PROBES: u32 = 16;
pub const LAT_REF_FREE: u64 = 0;
pub const LAT_REF_BUSY: u64 = 1;
pub const LAT_REF_READY: u64 = 2;

/// `struct rxray_lat_flow_ref`: the flow owning the same slot of `rxray_lat_flows`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LatFlowRef {
    pub state: u64,
    pub k: LatKey,
}

/// `struct rxray_lat_proc_ref`: the process owning the same slot of `rxray_lat_procs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LatProcRef {
    pub state: u64,
    pub k: LatProcKey,
}

/// `struct rxray_lat_hist`: one CPU's histograms of a flow or process.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LatHist {
    pub reads: u64,
    pub queued: u64,
    pub read_sum_ns: u64,
    pub queue_sum_ns: u64,
    pub read_max_ns: u64,
    pub queue_max_ns: u64,
    pub last_ns: u64,
    pub comm: [u8; 16],
    pub read: [u32; LAT_BUCKETS],
    pub queue: [u32; LAT_BUCKETS],
}

impl Default for LatHist {
    fn default() -> Self {
        LatHist {
            reads: 0,
            queued: 0,
            read_sum_ns: 0,
            queue_sum_ns: 0,
            read_max_ns: 0,
            queue_max_ns: 0,
            last_ns: 0,
            comm: [0; 16],
            read: [0; LAT_BUCKETS],
            queue: [0; LAT_BUCKETS],
        }
    }
}



// ---- readers (bpf/kernel.bpf.c, sock_recv_length) ----
pub const CONN_CFG_READERS: u32 = 1 << 0;
pub const READERS_MAX: u32 = 16384;

/// `struct rxray_reader_key`: a TCP or UDP socket by its own addresses.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReaderKey {
    pub proto: u8,
    pub _pad: u8,
    pub family: u16,
    pub lport: u16,
    pub rport: u16,
    pub laddr: [u8; 16],
    pub raddr: [u8; 16],
}

/// `struct rxray_reader`: who read a socket last, and how much was read.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reader {
    pub bytes: u64,
    pub reads: u64,
    pub last_ns: u64,
    pub cgroup_id: u64,
    pub tgid: u32,
    pub changes: u32,
    pub comm: [u8; 16],
}


/// (C struct name, Rust size, [(field, offset)]) for the layout test against BTF.
pub fn layouts() -> Vec<(&'static str, usize, Vec<(&'static str, usize)>)> {
    macro_rules! layout {
        ($c:literal, $t:ty, [$($f:ident),* $(,)?]) => {
            ($c, std::mem::size_of::<$t>(), vec![$((stringify!($f), std::mem::offset_of!($t, $f))),*])
        };
    }
    vec![
        layout!("rxray_stats", Stats, [c]),
        layout!("rxray_config", Config, [features, payload_snap, clock_ns, wakeup_bytes, capture_snap, _pad0]),
        layout!("rxray_flow_key", FlowKey, [ifindex, vlan, ip_ver, proto, saddr, daddr, sport, dport, kind, _pad]),
        layout!("rxray_flow_stats", FlowStats, [bytes, last_ns, first_ns, tcp_flags, size_hist]),
        layout!("rxray_count", Count, [packets, bytes]),
        layout!("rxray_iface_slot", IfaceSlot, [ifindex, _pad, c]),
        layout!("rxray_filter_insn", FilterInsn, [field, cmp, jt, jf, mask, value, _pad, addr, amask]),
        layout!("rxray_filter", FilterProg, [len, entry, _pad, insn]),
        layout!("rxray_cap_hdr", CapHdr, [ts_ns, ifindex, rx_queue, wire_len, cap_len, seq, offset, len, cpu, last, _pad]),
        layout!("rxray_frag_key", FragKey, [ifindex, id, saddr, daddr, ip_ver, proto, _pad]),
        layout!("rxray_frag_ports", FragPorts, [sport, dport]),
        layout!("rxray_drop_stats", DropStats, [c]),
        layout!("rxray_drop_config", DropConfig, [netns_ino, flags]),
        layout!(
            "rxray_drop_event",
            DropEvent,
            [ts_ns, location, reason, ifindex, len, protocol, ip_ver, l4_proto, saddr, daddr, sport, dport, tcp_flags, _pad]
        ),
        layout!("rxray_conn_stats", ConnStats, [c]),
        layout!("rxray_conn_config", ConnConfig, [netns_ino, flags]),
        layout!(
            "rxray_conn",
            Conn,
            [
                sk, first_ns, syn_ns, established_ns, last_ns, bytes_received, bytes_acked, bytes_sent,
                bytes_retrans, retransmits, total_retrans, srtt_us, rttvar_us, min_rtt_us, srtt_min_us,
                srtt_max_us, flags, rst_rx, rst_tx, family, sport, dport, state, old_state, npath, _pad, path,
                saddr, daddr, reader_changes, reader_cgroup, reader_bytes, reader_pid, _pad2, reader_comm
            ]
        ),
        layout!("rxray_conn_event", ConnEvent, [ts_ns, c]),
        layout!("rxray_reader_key", ReaderKey, [proto, _pad, family, lport, rport, laddr, raddr]),
        layout!("rxray_reader", Reader, [bytes, reads, last_ns, cgroup_id, tgid, changes, comm]),
        layout!("rxray_http_cfg", HttpCfg, [ports, nports, budget]),
        layout!("rxray_http_stats", HttpStats, [c]),
        layout!("rxray_http_key", HttpKey, [saddr, daddr, sport, dport, ip_ver, _pad]),
        layout!(
            "rxray_http_hdr",
            HttpHdr,
            [ts_ns, ifindex, dir, ip_ver, tcp_flags, last, saddr, daddr, sport, dport, seq, ack, payload_len, copy_len, offset, len, _pad, _pad2]
        ),
        layout!("rxray_lat_stats", LatStats, [c]),
        layout!("rxray_lat_key", LatKey, [ip_ver, proto, _pad, tag, saddr, daddr, sport, dport]),
        layout!("rxray_lat_stamp", LatStamp, [arrival_ns, queued_ns]),
        layout!("rxray_lat_proc_key", LatProcKey, [tgid, _pad, cgroup_id]),
        layout!("rxray_lat_flow_ref", LatFlowRef, [state, k]),
        layout!("rxray_lat_proc_ref", LatProcRef, [state, k]),
        layout!(
            "rxray_lat_hist",
            LatHist,
            [reads, queued, read_sum_ns, queue_sum_ns, read_max_ns, queue_max_ns, last_ns, comm, read, queue]
        ),
        layout!(
            "rxray_fw_rule",
            FwRule,
            [
                expires_ns, pps, burst_pkts, bps, burst_bytes, id, action, ip_ver, proto, limit_by, limit_len,
                limit_len6, flags_mask, flags_value, sport_lo, sport_hi, dport_lo, dport_hi, l4, _pad
            ]
        ),
        layout!("rxray_fw_set", FwSet, [nrules, default_action, drop_malformed, nlens, lens, v6_always, v4_direct, groups, pbuckets]),
        layout!("rxray_fw_pbucket", FwPbucket, [addr, len, tag, cls, _pad]),
        layout!("rxray_fw_counter", FwCounter, [packets, bytes, last_ns]),
        layout!("rxray_fw_block_key", FwBlockKey, [ver, len, _pad, addr]),
        layout!("rxray_fw_block", FwBlock, [expires_ns, added_ns, packets, bytes, id, _pad]),
        layout!("rxray_fw_block_lens", FwBlockLens, [v4, v6, dlimits, slimits, s4, s6]),
        layout!("rxray_fw_slimit", FwSlimit, [expires_ns, added_ns, interval_ns, burst, tat, packets, bytes, passed, id, dport, syn_only, _pad]),
        layout!("rxray_fw_dlimit_key", FwDlimitKey, [ver, _pad, addr]),
        layout!("rxray_fw_dlimit", FwDlimit, [expires_ns, added_ns, pps, burst, tat, packets, bytes, id, _pad]),
        layout!("rxray_fw_bucket_key", FwBucketKey, [slot, port, ver, _pad, addr]),
        layout!("rxray_fw_bucket", FwBucket, [tat_pkts, tat_bytes]),
        layout!(
            "rxray_pkt_event",
            PktEvent,
            [
                ts_ns, ifindex, rx_queue, wire_len, layers, malformed, payload_off, payload_len,
                eth_proto, dst_mac, src_mac, vlan_tpid, vlan_tci, vlan_count, ip_ver, l4_proto, ttl,
                tos, ipv6_ext_count, ip_hdr_len, ip_total_len, frag_flags, tcp_flags, ip_id, frag_off,
                arp_op, ipv6_flow_label, ipv6_exts, saddr, daddr, arp_sha, arp_tha, sport, dport,
                tcp_seq, tcp_ack, tcp_window, tcp_opts, tcp_wscale, tcp_mss, tcp_hdr_len, icmp_type,
                tcp_tsval, tcp_tsecr, icmp_code, fw_verdict, icmp_id, icmp_seq, l4_len, frag_sport, frag_dport,
                payload
            ]
        ),
    ]
}

// ---- HTTP payload (bpf/include/rxray_http.h, RXRAY_FEAT_HTTP) ----
pub const FEAT_HTTP: u32 = 1 << 7;
pub const HTTP_CHUNK: usize = 2048;
pub const HTTP_MAX_PORTS: usize = 16;
pub const HTTP_MAX_PAYLOAD: u32 = 65536;

/// `struct rxray_http_cfg`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpCfg {
    pub ports: [u16; HTTP_MAX_PORTS],
    pub nports: u32,
    pub budget: u32,
}

/// `enum rxray_http_counter`: indexes into `HttpStats::c`.
pub const HC_SEGMENTS: usize = 0;
pub const HC_RECORDS: usize = 1;
pub const HC_BYTES_COPIED: usize = 2;
pub const HC_BYTES_BUDGET: usize = 3;
pub const HC_RECORDS_LOST: usize = 4;
pub const HC_BYTES_LOST: usize = 5;
pub const HC_UNPARSED: usize = 6;
pub const HC_BYTES_UNWALKED: usize = 7;
pub const HC_COUNT: usize = 8;

/// `struct rxray_http_stats` (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpStats {
    pub c: [u64; HC_COUNT],
}

/// `struct rxray_http_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpKey {
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub ip_ver: u8,
    pub _pad: [u8; 3],
}

/// `struct rxray_http_hdr`: one HTTP ring record's header; `len` payload bytes follow it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpHdr {
    pub ts_ns: u64,
    pub ifindex: u32,
    /// 0 ingress (XDP), 1 egress (TC).
    pub dir: u8,
    pub ip_ver: u8,
    pub tcp_flags: u8,
    pub last: u8,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub payload_len: u32,
    pub copy_len: u32,
    pub offset: u32,
    pub len: u16,
    pub _pad: u16,
    pub _pad2: u32,
}

impl HttpHdr {
    /// The header and the payload bytes of a record; `None` when the record is inconsistent.
    pub fn split(b: &[u8]) -> Option<(HttpHdr, &[u8])> {
        split_record(b, |h: &HttpHdr| h.len as usize)
    }
}

// SAFETY: #[repr(C)] integers and byte arrays only.
unsafe impl RecordHeader for HttpHdr {}


/// Every ABI struct above is `#[repr(C)]`, made of integers and integer arrays with explicit
/// padding (no implicit padding bytes, no pointers), so any bit pattern is a valid value: what
/// aya::Pod requires. One list, so a new struct is added in one place.
macro_rules! pod {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: see the macro's comment: repr(C), integer fields, explicit padding.
            unsafe impl aya::Pod for $t {}
        )*
    };
}

pod!(
    Stats,
    FlowKey,
    FlowStats,
    Count,
    IfaceSlot,
    Config,
    FilterProg,
    DropStats,
    DropConfig,
    ConnStats,
    ConnConfig,
    Conn,
    FwRule,
    FwSet,
    FwPbucket,
    FwCounter,
    FwBlockKey,
    FwBlock,
    FwBlockLens,
    FwDlimitKey,
    FwDlimit,
    FwSlimit,
    LatStats,
    LatKey,
    LatStamp,
    LatProcKey,
    LatFlowRef,
    LatProcRef,
    LatHist,
    ReaderKey,
    Reader,
    HttpCfg,
    HttpStats,
);
