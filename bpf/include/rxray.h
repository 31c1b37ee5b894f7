/* rxray kernel/user ABI: every struct and constant that crosses the boundary.
 * Rust mirrors live in crates/rxray-kernel/src/abi.rs and are checked against this object's BTF. */
#ifndef RXRAY_H
#define RXRAY_H

/* The firewall's copy of the XDP program (xdp_fw.bpf.c) pins its maps by name, so an observer that
 * loads the same object with the same pin path shares them with the running firewall. */
#ifdef RXRAY_PIN_MAPS
#define RXRAY_PINNING __uint(pinning, LIBBPF_PIN_BY_NAME);
#else
#define RXRAY_PINNING
#endif

/* ---- limits ---- */
enum rxray_limit {
	RXRAY_PAYLOAD_MAX = 256, /* payload bytes an event can carry */
	RXRAY_PAYLOAD_DEFAULT = 128, /* payload bytes copied unless configured */
	RXRAY_MAX_VLANS = 2, /* 802.1ad outer + 802.1Q inner */
	RXRAY_MAX_IPV6_EXT = 8, /* extension headers walked before giving up */
	RXRAY_TCP_OPT_MAX = 40, /* TCP option bytes (doff 15) */
};

/* ---- feature flags in rxray_config.features ---- */
enum rxray_feature {
	RXRAY_FEAT_EVENTS = (1U << 0), /* emit one rxray_pkt_event per packet */
	RXRAY_FEAT_FLOWS = (1U << 1), /* keep per-flow, per-interface and per-protocol counters */
	RXRAY_FEAT_FILTER = (1U << 2), /* only packets the rxray_filter program accepts become events */
	RXRAY_FEAT_CAPTURE = (1U << 3), /* copy whole packets (up to capture_snap) to the rxray_cap ring */
};

enum rxray_capture_limit {
	RXRAY_CAP_CHUNK = 1024, /* packet bytes per capture record */
	RXRAY_CAP_SNAP_MAX = 262144, /* largest capture snap length */
};

enum rxray_flow_hist {
	RXRAY_FLOW_HIST = 8, /* size buckets: <=64 <=128 <=256 <=512 <=1024 <=1518 <=9018 larger */
};

/* ---- rxray_pkt_event.layers: which headers were parsed ---- */
enum rxray_layer {
	RXRAY_L_ETH = (1U << 0),
	RXRAY_L_VLAN = (1U << 1), /* at least one 802.1Q tag */
	RXRAY_L_QINQ = (1U << 2), /* an 802.1ad (0x88a8) outer tag */
	RXRAY_L_ARP = (1U << 3),
	RXRAY_L_IPV4 = (1U << 4),
	RXRAY_L_IPV6 = (1U << 5),
	RXRAY_L_IP_OPTS = (1U << 6), /* IPv4 header carries options (IHL > 5) */
	RXRAY_L_FRAG = (1U << 7), /* an IP fragment (first or later) */
	RXRAY_L_TCP = (1U << 8),
	RXRAY_L_UDP = (1U << 9),
	RXRAY_L_ICMP = (1U << 10),
	RXRAY_L_ICMPV6 = (1U << 11),
	RXRAY_L_FRAG_PORTS = (1U << 12), /* a later fragment whose first fragment's ports are known (frag_sport/dport) */
};

/* ---- rxray_pkt_event.frag_flags ---- */
enum rxray_frag_flag {
	RXRAY_FRAG_DF = (1U << 0), /* IPv4 don't-fragment */
	RXRAY_FRAG_MF = (1U << 1), /* more fragments follow */
};

/* ---- rxray_pkt_event.tcp_opts: which TCP options were present ---- */
enum rxray_tcpopt {
	RXRAY_TCPOPT_MSS = (1U << 0),
	RXRAY_TCPOPT_WSCALE = (1U << 1),
	RXRAY_TCPOPT_SACK_OK = (1U << 2),
	RXRAY_TCPOPT_SACK = (1U << 3),
	RXRAY_TCPOPT_TS = (1U << 4),
};

/* ---- malformed categories (rxray_pkt_event.malformed; counter RXRAY_C_MAL_BASE + n) ----
 * A malformed packet is passed to the stack untouched; its event carries what parsed cleanly before
 * the fault, and nothing after it. */
enum rxray_malformed {
	RXRAY_MAL_NONE = 0,
	RXRAY_MAL_ETH_TRUNC = 1,      /* shorter than an Ethernet header */
	RXRAY_MAL_VLAN_TRUNC = 2,     /* VLAN tag cut short */
	RXRAY_MAL_VLAN_DEPTH = 3,     /* more than RXRAY_MAX_VLANS tags */
	RXRAY_MAL_ARP_TRUNC = 4,      /* ARP (Ethernet/IPv4) body cut short */
	RXRAY_MAL_IPV4_TRUNC = 5,     /* IPv4 header, or the bytes its total length claims, cut short */
	RXRAY_MAL_IPV4_HDR = 6,       /* version != 4, IHL < 5, or total length < IHL */
	RXRAY_MAL_IPV6_TRUNC = 7,     /* IPv6 fixed header or payload length cut short */
	RXRAY_MAL_IPV6_HDR = 8,       /* version != 6 */
	RXRAY_MAL_IPV6_EXT_TRUNC = 9, /* an extension header runs past the packet */
	RXRAY_MAL_IPV6_EXT_CHAIN = 10,/* more than RXRAY_MAX_IPV6_EXT extension headers */
	RXRAY_MAL_TCP_TRUNC = 11,     /* TCP header (or its options) cut short */
	RXRAY_MAL_TCP_HDR = 12,       /* data offset < 5 */
	RXRAY_MAL_TCP_OPT = 13,       /* an option with an impossible length */
	RXRAY_MAL_UDP_TRUNC = 14,     /* UDP header cut short */
	RXRAY_MAL_UDP_LEN = 15,       /* UDP length < 8 or beyond the IP payload */
	RXRAY_MAL_ICMP_TRUNC = 16,    /* ICMP/ICMPv6 header cut short */
	RXRAY_MAL_COUNT = 17,
};

/* ---- per-CPU counters: index into the rxray_stats array ---- */
enum rxray_counter {
	RXRAY_C_PACKETS = 0,   /* packets seen by the program */
	RXRAY_C_BYTES = 1,     /* their wire bytes */
	RXRAY_C_EVENTS = 2,    /* events written to the ring buffer */
	RXRAY_C_LOST = 3,      /* events the ring buffer had no room for */
	RXRAY_C_MALFORMED = 4, /* packets with any malformed category */
	RXRAY_C_FLOW_FAIL = 5, /* packets whose new flow found the flow table full (not counted in a flow) */
	RXRAY_C_FRAG_BUCKET = 6, /* later fragments whose first fragment was not seen (fragments bucket) */
	RXRAY_C_IFACE_FAIL = 7, /* packets whose interface found the interface table full */
	RXRAY_C_MAL_BASE = 8,  /* + enum rxray_malformed: per category */
	RXRAY_C_FILTERED = 25, /* packets the filter rejected (no event; still counted in flows) */
	RXRAY_C_CAP_PACKETS = 26, /* packets written whole to the capture ring */
	RXRAY_C_CAP_LOST = 27,    /* packets the capture ring had no room for (whole or in part) */
	RXRAY_C_FW_DROPPED = 28,  /* packets the firewall dropped (every rule set and block) */
	RXRAY_C_FW_WOULD = 29,    /* packets the firewall would have dropped, in dry run */
	RXRAY_C_COUNT = 32,
};

/* Per-CPU counters: the single entry of the rxray_stats per-CPU array; user space sums the CPUs. */
struct rxray_stats {
	__u64 c[RXRAY_C_COUNT]; /* indexed by enum rxray_counter */
};

/* Flow table key: one direction of a conversation as seen on one interface. */
enum rxray_flow_kind {
	RXRAY_FK_FLOW = 0,  /* a 5-tuple (ports 0 for protocols without ports) */
	RXRAY_FK_FRAGS = 1, /* later IP fragments that could not be tied to their first fragment */
};

struct rxray_flow_key {
	__u32 ifindex;
	__u16 vlan;       /* innermost VLAN id; 0 when untagged */
	__u8 ip_ver;
	__u8 proto;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 kind;        /* enum rxray_flow_kind */
	__u8 _pad[3];
};

/* A flow's counters: one value per flow, shared by every CPU and updated with atomic adds, so two
 * CPUs' packets of one flow add up exactly. The packet count is the sum of size_hist (every packet
 * lands in exactly one bucket), which saves a counter and an atomic add per packet. 96 bytes, so an
 * element of the hash map (48-byte header, 48-byte key, this) is three whole cache lines. */
struct rxray_flow_stats {
	__u64 bytes;
	__u64 last_ns;    /* CLOCK_MONOTONIC (coarse unless events are on) */
	__u64 first_ns;   /* set once, by the packet that inserted the flow */
	__u64 tcp_flags;  /* OR of the TCP flags seen (64-bit: the atomic OR BPF has at every -mcpu) */
	__u64 size_hist[RXRAY_FLOW_HIST];
};

/* Fragment tracking: the first fragment's ports, by datagram. */
struct rxray_frag_key {
	__u32 ifindex;
	__u32 id;
	__u8 saddr[16];
	__u8 daddr[16];
	__u8 ip_ver;
	__u8 proto;
	__u8 _pad[2];
};

struct rxray_frag_ports {
	__u16 sport;
	__u16 dport;
};

/* Per-protocol counters: index into the rxray_protos per-CPU array. */
enum rxray_proto_class {
	RXRAY_P_IPV4_TCP = 0,
	RXRAY_P_IPV4_UDP = 1,
	RXRAY_P_IPV4_ICMP = 2,
	RXRAY_P_IPV4_OTHER = 3,
	RXRAY_P_IPV6_TCP = 4,
	RXRAY_P_IPV6_UDP = 5,
	RXRAY_P_IPV6_ICMP = 6,
	RXRAY_P_IPV6_OTHER = 7,
	RXRAY_P_ARP = 8,
	RXRAY_P_OTHER_L2 = 9,
	RXRAY_P_MALFORMED = 10,
	RXRAY_P_COUNT = 16,
};

/* Packets and bytes (per protocol class, per interface). */
struct rxray_count {
	__u64 packets;
	__u64 bytes;
};

/* Per-interface counters, per CPU, in rxray_iface_slots[ifindex % RXRAY_IFACE_SLOTS]: the slot is
 * taken by the first interface counted there (c.packets != 0); another interface meeting a taken
 * slot counts in the rxray_ifaces hash instead. An interface's count is the sum of both. */
enum rxray_iface_limit {
	RXRAY_IFACE_SLOTS = 64,
};

struct rxray_iface_slot {
	__u32 ifindex;
	__u32 _pad;
	struct rxray_count c;
};

/* Runtime configuration: one entry of the rxray_config array map. */
struct rxray_config {
	__u32 features;    /* RXRAY_FEAT_* */
	__u32 payload_snap;/* payload bytes copied per event, 0..RXRAY_PAYLOAD_MAX */
	__u64 clock_ns;    /* when non-zero, the clock programs read (simulation); else bpf_ktime_get_ns */
	__u64 wakeup_bytes;/* wake the ring-buffer reader once this many bytes are waiting */
	__u32 capture_snap;/* bytes captured per packet with RXRAY_FEAT_CAPTURE (1..RXRAY_CAP_SNAP_MAX) */
	__u32 _pad0;
};

/* One capture record: a chunk of one packet. A packet is its chunks with the same (cpu, seq), at
 * offsets 0, RXRAY_CAP_CHUNK, ...; the chunk with last = 1 ends it. Records are sized to the data. */
struct rxray_cap_hdr {
	__u64 ts_ns;      /* CLOCK_MONOTONIC at XDP entry */
	__u32 ifindex;
	__u32 rx_queue;
	__u32 wire_len;   /* the packet's original length */
	__u32 cap_len;    /* bytes captured in all (min(wire_len, capture_snap)) */
	__u32 seq;        /* per-CPU packet sequence */
	__u32 offset;     /* this chunk's offset in the packet */
	__u16 len;        /* bytes of data following this header */
	__u8 cpu;
	__u8 last;
	__u32 _pad;
};

struct rxray_cap_chunk {
	struct rxray_cap_hdr h;
	__u8 data[RXRAY_CAP_CHUNK];
};

/* One incoming packet, as XDP saw it. Multi-byte fields are host order; addresses and MACs are
 * network byte order as on the wire. IPv4 addresses occupy the first 4 bytes of saddr/daddr. */
struct rxray_pkt_event {
	__u64 ts_ns;          /* CLOCK_MONOTONIC at XDP entry */
	__u32 ifindex;
	__u32 rx_queue;
	__u32 wire_len;       /* frame bytes (linear + fragments) */
	__u32 layers;         /* RXRAY_L_* */
	__u16 malformed;      /* enum rxray_malformed */
	__u16 payload_off;    /* offset of the first byte after the last parsed header */
	__u16 payload_len;    /* bytes copied into payload[] */
	__u16 eth_proto;      /* ethertype after any VLAN tags */
	__u8 dst_mac[6];
	__u8 src_mac[6];
	__u16 vlan_tpid[RXRAY_MAX_VLANS]; /* outermost first */
	__u16 vlan_tci[RXRAY_MAX_VLANS];
	__u8 vlan_count;
	__u8 ip_ver;          /* 0, 4 or 6 */
	__u8 l4_proto;        /* IPv4 protocol, or IPv6 next header after the extension headers */
	__u8 ttl;             /* TTL / hop limit */
	__u8 tos;             /* DSCP << 2 | ECN (IPv6 traffic class) */
	__u8 ipv6_ext_count;
	__u16 ip_hdr_len;     /* IPv4 IHL * 4; IPv6 40 + extension headers */
	__u16 ip_total_len;   /* IPv4 total length; IPv6 40 + payload length */
	__u8 frag_flags;      /* RXRAY_FRAG_* */
	__u8 tcp_flags;       /* FIN SYN RST PSH ACK URG ECE CWR as bits 0..7 */
	__u32 ip_id;          /* IPv4 identification; IPv6 fragment identification */
	__u16 frag_off;       /* fragment offset in bytes */
	__u16 arp_op;
	__u32 ipv6_flow_label;
	__u8 ipv6_exts[RXRAY_MAX_IPV6_EXT]; /* header types walked, in order */
	__u8 saddr[16];       /* ARP: sender protocol address */
	__u8 daddr[16];       /* ARP: target protocol address */
	__u8 arp_sha[6];
	__u8 arp_tha[6];
	__u16 sport;
	__u16 dport;
	__u32 tcp_seq;
	__u32 tcp_ack;
	__u16 tcp_window;
	__u8 tcp_opts;        /* RXRAY_TCPOPT_* */
	__u8 tcp_wscale;
	__u16 tcp_mss;
	__u8 tcp_hdr_len;     /* data offset * 4 */
	__u8 icmp_type;
	__u32 tcp_tsval;
	__u32 tcp_tsecr;
	__u8 icmp_code;
	__u8 fw_verdict;      /* enum rxray_fw_verdict */
	__u16 icmp_id;        /* echo request/reply only */
	__u16 icmp_seq;
	__u16 l4_len;         /* UDP length field; TCP/ICMP: IP payload bytes */
	__u16 frag_sport;     /* RXRAY_L_FRAG_PORTS: the ports of this later fragment's first fragment */
	__u16 frag_dport;
	__u8 payload[RXRAY_PAYLOAD_MAX];
};

/* ---- packet filter (RXRAY_FEAT_FILTER): a compiled tcpdump-style expression ----
 * A linear program of field tests; each instruction says where to go when its test holds (jt) and
 * when it does not (jf): a later instruction, or RXRAY_FILTER_ACCEPT / RXRAY_FILTER_REJECT. Jumps only
 * go forward, so a program ends within RXRAY_FILTER_MAX steps. User space (rxray-engine's filter
 * module) decides what every test means; the kernel only reads fields and compares. */
enum rxray_filter_limit {
	RXRAY_FILTER_MAX = 64, /* instructions in a program */
	RXRAY_FILTER_ACCEPT = 0xfe, /* jump target: the packet matches */
	RXRAY_FILTER_REJECT = 0xff, /* jump target: it does not */
};

/* rxray_filter_insn.field: scalar fields (index into the interpreter's field array), then addresses */
enum rxray_filter_field {
	RXRAY_FF_L3 = 0,         /* vlan_count << 16 | eth_proto */
	RXRAY_FF_IP = 1,         /* vlan_count << 16 | ip_ver << 8 | l4_proto */
	RXRAY_FF_V6EXT = 2,      /* ipv6_ext_count << 8 | ipv6_exts[0] */
	RXRAY_FF_FRAG_OFF = 3,
	RXRAY_FF_SPORT = 4,
	RXRAY_FF_DPORT = 5,
	RXRAY_FF_TCP_FLAGS = 6,
	RXRAY_FF_WIRE_LEN = 7,
	RXRAY_FF_VLAN_COUNT = 8,
	RXRAY_FF_VID0 = 9,       /* vlan_tci[0] & 0xfff */
	RXRAY_FF_VID1 = 10,
	RXRAY_FF_SCALARS = 16,   /* size of the scalar array */
	RXRAY_FF_SADDR = 16,     /* (saddr & amask) == addr, 16 bytes */
	RXRAY_FF_DADDR = 17,
};

/* rxray_filter_insn.cmp for scalar fields: (field & mask) <cmp> value */
enum rxray_filter_cmp {
	RXRAY_FC_EQ = 0,
	RXRAY_FC_GT = 1,
	RXRAY_FC_GE = 2,
};

struct rxray_filter_insn {
	__u8 field;     /* enum rxray_filter_field */
	__u8 cmp;       /* enum rxray_filter_cmp (scalar fields) */
	__u8 jt;        /* next instruction when the test holds, or ACCEPT/REJECT */
	__u8 jf;        /* ... when it does not */
	__u32 mask;
	__u32 value;
	__u32 _pad;
	__u8 addr[16];  /* network byte order; IPv4 in the first 4 bytes */
	__u8 amask[16];
};

/* The single entry of the rxray_filter array map. */
struct rxray_filter {
	__u32 len;      /* instructions in use */
	__u8 entry;     /* first instruction, or ACCEPT/REJECT for a program without tests */
	__u8 _pad[3];
	struct rxray_filter_insn insn[RXRAY_FILTER_MAX];
};

/* ---- drops (kernel.bpf.c: tp_btf/kfree_skb) ----
 * Every packet the kernel frees with a drop reason, in rxray's network namespace (and, when
 * RXRAY_DROPF_IFACES is set, on the interfaces in rxray_drop_ifaces). Reason numbers are the running
 * kernel's enum skb_drop_reason; user space names them from the kernel's BTF. */
enum rxray_drop_limit {
	RXRAY_DROP_REASONS = 512, /* per-reason counters; larger (subsystem) reasons count in the last */
	RXRAY_DROP_IFACES_MAX = 64, /* entries of the interface filter */
};

enum rxray_drop_flag {
	RXRAY_DROPF_IFACES = (1U << 0), /* only drops on interfaces in rxray_drop_ifaces */
	RXRAY_DROPF_COUNT_ONLY = (1U << 1), /* count per reason, send no events (conns joins the counts) */
};

/* per-CPU counters: index into rxray_drop_stats.c */
enum rxray_drop_counter {
	RXRAY_DC_DROPS = 0,    /* drops that matched the namespace and interface filters */
	RXRAY_DC_EVENTS = 1,   /* events written to the rxray_drops ring */
	RXRAY_DC_LOST = 2,     /* events the ring had no room for (still counted per reason) */
	RXRAY_DC_NO_NETNS = 3, /* drops with neither a device nor a socket (namespace unknown; skipped) */
	RXRAY_DC_COUNT = 8,
};

struct rxray_drop_stats {
	__u64 c[RXRAY_DC_COUNT]; /* indexed by enum rxray_drop_counter */
};

/* The single entry of the rxray_drop_config array map. */
struct rxray_drop_config {
	__u32 netns_ino; /* only drops in this network namespace (its /proc/PID/ns/net inode); 0: all */
	__u32 flags;     /* RXRAY_DROPF_* */
};

/* One dropped packet. Multi-byte fields are host order; addresses network order, IPv4 in the first
 * 4 bytes. ip_ver 0 means the packet was not IP (or its headers could not be read). */
struct rxray_drop_event {
	__u64 ts_ns;     /* CLOCK_MONOTONIC at the drop */
	__u64 location;  /* kernel address that freed the packet (symbolise with /proc/kallsyms) */
	__u32 reason;    /* enum skb_drop_reason of the running kernel */
	__u32 ifindex;   /* skb->dev's, else skb->skb_iif; 0 when neither */
	__u32 len;       /* skb->len */
	__u16 protocol;  /* skb->protocol (ethertype) */
	__u8 ip_ver;
	__u8 l4_proto;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;     /* 0 for protocols without ports and later fragments */
	__u16 dport;
	__u8 tcp_flags;  /* FIN SYN RST PSH ACK URG ECE CWR as bits 0..7 */
	__u8 _pad[11];
};

/* ---- TCP connections (kernel.bpf.c: tp_btf/inet_sock_set_state, tcp_retransmit_skb,
 * tcp_receive_reset, tcp_send_reset, tcp_probe) ----
 * One record per TCP socket in rxray's network namespace, keyed by the socket's address in an LRU
 * hash; every state change sends a copy of the record through the rxray_conn_events ring, the
 * change to CLOSE last (then the record is deleted). */
enum rxray_conn_limit {
	RXRAY_CONNS_MAX = 16384, /* sockets tracked at once (LRU) */
	RXRAY_CONN_PATH = 16, /* states remembered in order; later ones replace the last */
};

/* per-CPU counters: index into rxray_conn_stats.c */
enum rxray_conn_counter {
	RXRAY_CC_NEW = 0,          /* sockets that entered the map */
	RXRAY_CC_EVENTS = 1,       /* events written to the ring */
	RXRAY_CC_LOST = 2,         /* events the ring had no room for */
	RXRAY_CC_INSERT_FAIL = 3,  /* sockets the map could not take */
	RXRAY_CC_UNTRACKED = 4,    /* state changes of sockets not in the map (evicted, or older than rxray) */
	RXRAY_CC_RST_TX_NOSOCK = 5,/* resets sent without a tracked socket (closed port, TIME_WAIT, ...) */
	RXRAY_CC_CLOSED = 6,       /* records completed (state CLOSE) */
	RXRAY_CC_COUNT = 8,
};

struct rxray_conn_stats {
	__u64 c[RXRAY_CC_COUNT]; /* indexed by enum rxray_conn_counter */
};

/* The single entry of the rxray_conn_config array map. */
struct rxray_conn_config {
	__u32 netns_ino; /* only sockets in this network namespace; 0: all */
	__u32 flags;     /* none yet */
};

enum rxray_conn_flag {
	RXRAY_CONNF_PASSIVE = (1U << 0), /* accepted (went through SYN_RECV) */
	RXRAY_CONNF_FIN_RX = (1U << 1), /* the peer's FIN arrived (SOCK_DONE): bytes_received counts it */
	RXRAY_CONNF_LATE = (1U << 2), /* first seen after SYN: the socket predates rxray or was evicted */
};

/* One socket. Times are CLOCK_MONOTONIC ns; 0 when the state was not seen. Addresses network order
 * (IPv4 in the first 4 bytes), ports host order. RTTs in microseconds. */
struct rxray_conn {
	__u64 sk;              /* the socket's kernel address (the key) */
	__u64 first_ns;        /* first state change seen */
	__u64 syn_ns;          /* entered SYN_SENT or SYN_RECV */
	__u64 established_ns;  /* entered ESTABLISHED */
	__u64 last_ns;         /* latest state change */
	__u64 bytes_received;  /* tp->bytes_received (sequence space: includes a received FIN) */
	__u64 bytes_acked;     /* tp->bytes_acked (sequence space: includes SYN and FIN when acked) */
	__u64 bytes_sent;      /* tp->bytes_sent: payload transmitted, retransmissions included */
	__u64 bytes_retrans;   /* tp->bytes_retrans */
	__u32 retransmits;     /* tcp_retransmit_skb events */
	__u32 total_retrans;   /* tp->total_retrans */
	__u32 srtt_us;         /* latest smoothed RTT (tp->srtt_us >> 3) */
	__u32 rttvar_us;       /* tp->mdev_us >> 2 */
	__u32 min_rtt_us;      /* tcp_min_rtt(): windowed minimum RTT */
	__u32 srtt_min_us;     /* smallest and largest smoothed RTT sampled (state changes, tcp_probe) */
	__u32 srtt_max_us;
	__u32 flags;           /* RXRAY_CONNF_* */
	__u16 rst_rx;          /* resets received from the peer */
	__u16 rst_tx;          /* resets this socket sent */
	__u16 family;          /* AF_INET or AF_INET6 */
	__u16 sport;           /* local port */
	__u16 dport;           /* remote port */
	__u8 state;            /* current state (TCP_*) */
	__u8 old_state;        /* the state before it */
	__u8 npath;            /* states in path */
	__u8 _pad[7];
	__u8 path[RXRAY_CONN_PATH]; /* states in the order entered */
	__u8 saddr[16];        /* local */
	__u8 daddr[16];        /* remote */
	/* The process that read the socket's bytes (sock_recv_length, in the reader's context): the
	 * latest reader; reader_bytes restarts when the reader changes, reader_changes counts changes. */
	__u32 reader_changes;  /* times the reading process (tgid) changed after the first */
	__u64 reader_cgroup;   /* bpf_get_current_cgroup_id(): cgroup v2 id (directory inode) */
	__u64 reader_bytes;    /* sum of positive recv returns by this reader */
	__u32 reader_pid;      /* tgid; 0 when nothing was read yet */
	__u32 _pad2;
	char reader_comm[16];  /* bpf_get_current_comm() */
};

/* One state change, with the record as it stands after it. */
struct rxray_conn_event {
	__u64 ts_ns;
	struct rxray_conn c;
};

/* ---- firewall (xdp_ingress.bpf.c with RXRAY_FEAT_FIREWALL; include/rxray_fw.h) ----
 * Evaluation, per IP packet: dynamic blocks (rxray_fw_blocks, each with its own expiry), then the
 * rules of the active generation in order (first match decides: allow passes, deny drops, limit drops
 * what exceeds its rate and lets the rest go on to the next rule), then the default action.
 * A rule set is written whole into the inactive generation and made live by one write of
 * rxray_fw_active, so a packet sees either the old rule set or the new one, never a mix.
 * Source and destination prefixes are classified first: each field's "class" is the set of rules
 * whose prefixes cover the address (longest prefix decides, and its class already includes every
 * shorter covering prefix's rules); rxray_fw_classes maps a class to that rule bitmask. */
enum rxray_fw_feature {
	RXRAY_FEAT_FIREWALL = (1U << 5), /* evaluate the firewall and drop what it denies */
	RXRAY_FEAT_FW_DRYRUN = (1U << 6), /* evaluate and count, but pass everything */
};

enum rxray_fw_limit {
	RXRAY_FW_RULES = 64, /* rules per generation (a u64 bitmask) */
	RXRAY_FW_SLOTS = (RXRAY_FW_RULES + 2), /* counter slots per generation: rules, default, blocks */
	RXRAY_FW_C_DEFAULT = RXRAY_FW_RULES, /* packets that met no rule (default action) */
	RXRAY_FW_C_BLOCKS = (RXRAY_FW_RULES + 1), /* packets dropped by a dynamic block */
	RXRAY_FW_CLASSES = 128, /* address classes per field (7 bits; 0 = no prefix matched) */
	RXRAY_FW_DEEP = 0x80, /* v4 table byte flag: prefixes longer than /24 inside this /24 */
	RXRAY_FW_V4_WORDS = (1U << 22), /* v4 source table words: 2 generations x 2^24 /24s x 1 byte */
	RXRAY_FW_LENS = 32, /* distinct prefix lengths per (field, IP version) in rxray_fw_lpm */
	RXRAY_FW_V6_BITS = 22, /* v6 source length filter: 2^22 slots per generation */
	RXRAY_FW_V6_WORDS = (1U << 20), /* its words: 2 generations x 2^22 slots x 1 byte */
	RXRAY_FW_V6_REST = 0x80, /* v6 filter bit for every length from index 7 of lens[] on */
	RXRAY_FW_V6_MIN = 24, /* shorter v6 source lengths are not painted: always probed (v6_always) */
	RXRAY_FW_PSLOTS = 3, /* prefixes per 64-byte bucket of rxray_fw_lpm */
	RXRAY_FW_PROBES = 8, /* buckets read at most per probe: from the home bucket on (user space checks) */
	RXRAY_FW_GROUP = 6, /* IPv6 source prefixes (/32 or longer) sharing their first 32 bits, grouped */
	RXRAY_FW_TAG_GROUP = 0x10, /* tag bit of a grouped prefix (or a group's marker, len 0) */
};

/* The IPv6 source length filter (rxray_fw_v6): the slot of an address is its first 32 bits times
 * this constant, top RXRAY_FW_V6_BITS bits of the 32-bit product. Its byte says which of lens[SRC][v6] (bit i:
 * index i, RXRAY_FW_V6_REST: index 7 and later) have a prefix whose first 32 bits may hash there;
 * only those lengths (and set->v6_always) are probed. A collision only adds a probe. */
enum rxray_fw_v6_hash {
	RXRAY_FW_V6_MUL = 0x61c88647, /* the kernel's GOLDEN_RATIO_32, as hash_32() */
};

/* The prefix table's hash (rxray_fw_lpm, see struct rxray_fw_pbucket): with the masked address as four
 * little-endian words w0..w3 and meta = len | tag << 8,
 *   z = (w0 | w1 << 32) * K1 ^ (w2 | w3 << 32) * K2 ^ meta * K3;  z ^= z >> 29;  z *= K1;
 *   home bucket = ((z >> 32) * nbuckets) >> 32   (all in 64-bit arithmetic). */
#define RXRAY_FW_PK1 0x9e3779b97f4a7c15ULL
#define RXRAY_FW_PK2 0xc2b2ae3d27d4eb4fULL
#define RXRAY_FW_PK3 0x165667b19e3779f9ULL

enum rxray_fw_action {
	RXRAY_FWA_ALLOW = 1,
	RXRAY_FWA_DENY = 2,
	RXRAY_FWA_LIMIT = 3, /* drop what exceeds the rate; what conforms goes on to the next rule */
};

enum rxray_fw_limit_by {
	RXRAY_FWL_RULE = 0,  /* one bucket for everything the rule matches */
	RXRAY_FWL_SRC = 1,   /* one bucket per source prefix (limit_len / limit_len6) */
	RXRAY_FWL_DPORT = 2, /* one bucket per destination port (e.g. a SYN limit per port) */
};

/* rxray_pkt_event.fw_verdict */
enum rxray_fw_verdict {
	RXRAY_FWV_NONE = 0,    /* no firewall, or passed */
	RXRAY_FWV_DROP = 1,    /* dropped by a rule, a block or the default */
	RXRAY_FWV_WOULD = 2,   /* dry run: would have been dropped */
};

enum rxray_fw_field {
	RXRAY_FWF_SRC = 0,
	RXRAY_FWF_DST = 1,
};

struct rxray_fw_rule {
	__u64 expires_ns;  /* CLOCK_MONOTONIC after which the rule is skipped; 0: never */
	__u64 pps;         /* LIMIT: packets per second (0: no packet rate) */
	__u64 burst_pkts;  /* packets allowed above the rate at once */
	__u64 bps;         /* LIMIT: bytes per second (0: no byte rate) */
	__u64 burst_bytes;
	__u32 id;          /* the rule's number, as `firewall list` shows it */
	__u8 action;       /* enum rxray_fw_action */
	__u8 ip_ver;       /* 0: both */
	__u8 proto;        /* 0: any */
	__u8 limit_by;     /* enum rxray_fw_limit_by */
	__u8 limit_len;    /* RXRAY_FWL_SRC: IPv4 prefix length of a bucket */
	__u8 limit_len6;   /* ... IPv6 */
	__u8 flags_mask;   /* TCP flags: (flags & mask) == value */
	__u8 flags_value;
	__u16 sport_lo;    /* port ranges, inclusive; 0..65535 means any */
	__u16 sport_hi;
	__u16 dport_lo;
	__u16 dport_hi;
	__u8 l4;           /* the rule tests protocol, ports or flags (see rxray_fw.h for unknown L4) */
	__u8 _pad[3];
};

/* One generation's header: entry 0 and 1 of rxray_fw_sets. */
struct rxray_fw_set {
	__u32 nrules;
	__u8 default_action;  /* RXRAY_FWA_ALLOW or RXRAY_FWA_DENY */
	__u8 drop_malformed;  /* drop IP packets whose headers do not parse (addresses unknown) */
	__u8 nlens[2][2];     /* [field][0: v4, 1: v6]: lengths in lens[][][] */
	__u8 lens[2][2][RXRAY_FW_LENS]; /* prefix lengths present in rxray_fw_lpm, longest first */
	__u8 v6_always;       /* v6 source lengths (as a rxray_fw_v6 byte) probed whatever the filter says */
	__u8 v4_direct;       /* rxray_fw_v4 holds IPv4 source prefixes (0: no read, class 0) */
	__u8 groups;          /* bit 0: grouped IPv6 sources (rxray_fw_pgroup) first; bit 1: after a miss the
			       * filter always; bit 2: IPv4 source prefixes longer than /24 grouped by /24 */
	__u32 pbuckets;       /* home buckets of this generation's rxray_fw_lpm table */
};

/* rxray_fw_lpm: one array of these per generation, built whole by user space (memory-mapped) and
 * swapped in before the generation goes live. Every prefix but IPv4 source prefixes up to /24 (those
 * are in rxray_fw_v4). A prefix (masked address, len, tag = 0x80 | field << 1 | is_v6) sits in the
 * first bucket from its home (RXRAY_FW_PK*) with a free slot, slots filled in order, at most
 * RXRAY_FW_PROBES - 1 buckets on: a probe reads buckets from home until it finds the key, meets a
 * bucket whose last slot is free (tag 0), or has read RXRAY_FW_PROBES. Home buckets are 0 ..
 * set->pbuckets - 1; the array has RXRAY_FW_PROBES - 1 more after them, so nothing wraps.
 * Grouped source prefixes (tag | RXRAY_FW_TAG_GROUP): every IPv6 source prefix of /32 or longer, and
 * IPv4 one longer than /24, that shares its first GL bits (32, IPv4 24) with at most RXRAY_FW_GROUP - 1
 * others has the home of those bits alone (the hash of the address masked to GL, with len GL), so one
 * scan from that home meets all of them and the longest holding the source wins. A bigger group
 * leaves a marker there instead (len 0): its prefixes are probed per length (IPv6: after the filter). */
struct rxray_fw_pbucket {
	__u32 addr[RXRAY_FW_PSLOTS][4]; /* masked, as in the packet (network order) */
	__u8 len[RXRAY_FW_PSLOTS];
	__u8 tag[RXRAY_FW_PSLOTS];      /* 0: free */
	__u8 cls[RXRAY_FW_PSLOTS];
	__u8 _pad[7];
};


/* Per-CPU counters per rule slot: rxray_fw_counters[gen * RXRAY_FW_SLOTS + slot]. */
struct rxray_fw_counter {
	__u64 packets;
	__u64 bytes;
	__u64 last_ns; /* CLOCK_MONOTONIC (coarse) of the last hit */
};

/* A dynamic block: one prefix, dropped until it expires (checked here, so it holds with no agent). */
struct rxray_fw_block_key {
	__u8 ver;
	__u8 len;
	__u8 _pad[2];
	__u8 addr[16];
};

struct rxray_fw_block {
	__u64 expires_ns;  /* CLOCK_MONOTONIC; 0: never */
	__u64 added_ns;
	__u64 packets;     /* hits (shared by CPUs: atomic adds) */
	__u64 bytes;
	__u32 id;
	__u32 _pad;
};

/* Which prefix lengths rxray_fw_blocks holds, so a lookup tries only those: bit n = length n. */
struct rxray_fw_block_lens {
	__u64 v4;
	__u64 v6[3];
	__u32 dlimits;     /* entries in rxray_fw_dlimits (0: no lookup) */
	__u32 slimits;     /* entries in rxray_fw_slimits (0: no lookup) */
	__u64 s4;          /* prefix lengths in rxray_fw_slimits, as v4 and v6 above */
	__u64 s6[3];
};

/* A dynamic rate limit on traffic to one destination (a many-source flood's target): packets
 * beyond pps (with burst) are dropped until it expires. */
struct rxray_fw_dlimit_key {
	__u8 ver;
	__u8 _pad[3];
	__u8 addr[16];
};

struct rxray_fw_dlimit {
	__u64 expires_ns;  /* CLOCK_MONOTONIC; 0: never */
	__u64 added_ns;
	__u64 pps;
	__u64 burst;
	__u64 tat;         /* GCRA state */
	__u64 packets;     /* dropped (atomic adds) */
	__u64 bytes;
	__u32 id;
	__u32 _pad;
};

/* A dynamic rate limit on one source prefix (a client over its API limit; key: struct
 * rxray_fw_block_key): its packets to dport (0: any), or only its connection openings (SYN without
 * ACK) when syn_only, beyond one per interval_ns (with burst) are dropped until it expires.
 * Checked after the destination limits, shortest prefix first; the first entry found decides. */
struct rxray_fw_slimit {
	__u64 expires_ns;  /* CLOCK_MONOTONIC; 0: never */
	__u64 added_ns;
	__u64 interval_ns; /* one conforming packet per interval */
	__u64 burst;       /* packets allowed above the rate at once */
	__u64 tat;         /* GCRA state */
	__u64 packets;     /* dropped (atomic adds) */
	__u64 bytes;
	__u64 passed;      /* packets the limit applied to and let through (atomic adds) */
	__u32 id;
	__u16 dport;
	__u8 syn_only;
	__u8 _pad;
};

/* Rate-limit state: generic cell rate algorithm (a token bucket as one timestamp per rate). */
struct rxray_fw_bucket_key {
	__u32 slot;    /* gen * RXRAY_FW_RULES + rule index: a new rule set starts with fresh buckets */
	__u16 port;    /* RXRAY_FWL_DPORT */
	__u8 ver;      /* RXRAY_FWL_SRC: the source prefix */
	__u8 _pad;
	__u8 addr[16];
};

struct rxray_fw_bucket {
	__u64 tat_pkts;  /* theoretical arrival time of the next conforming packet */
	__u64 tat_bytes;
};

/* ---- delivery latency (RXRAY_FEAT_LATENCY: xdp_ingress.bpf.c's XDP program and its tp_btf stages) ----
 * XDP stamps each data packet's arrival in rxray_lat_arrivals, keyed by the packet (its 5-tuple as it
 * arrived, remote -> local, plus a per-packet tag). tp_btf/sk_data_ready stamps the skb that was just
 * queued on a socket (the tail of sk_receive_queue); tp_btf/skb_copy_datagram_iovec, which runs in the
 * reading task, finds the skb's stamp, adds arrival->queue and arrival->read to the flow's and the
 * reader's histograms and consumes the stamp. An skb built from several packets (GRO, receive-queue
 * coalescing) is measured by its first packet only; the others' stamps stay until a later packet
 * takes their slot (rxray_lat_arrivals is a direct-mapped table). */
enum rxray_lat_limit {
	RXRAY_FEAT_LATENCY = (1U << 4),
	RXRAY_LAT_ARRIVALS_MAX = 65536, /* slots of the stamp table (a power of two); direct-mapped */
	RXRAY_LAT_FLOWS_MAX = 4096, /* flows with histograms */
	RXRAY_LAT_PROCS_MAX = 1024, /* reading processes with histograms */
	RXRAY_LAT_SUB_BITS = 2, /* 4 linear sub-buckets per power of two: bucket width <= 25% */
	RXRAY_LAT_BUCKETS = 160, /* values 0..3 exact, then 39 octaves: up to 2^41 ns (~37 min) */
};

/* per-CPU counters: index into rxray_lat_stats.c */
enum rxray_lat_counter {
	RXRAY_LC_STAMPED = 0,    /* data packets XDP stamped */
	RXRAY_LC_QUEUED = 1,     /* stamps found when their skb was queued (sk_data_ready) */
	RXRAY_LC_READ = 2,       /* stamps found when their skb was read: measured packets */
	RXRAY_LC_FLOW_FAIL = 3,  /* measurements the flow histogram table had no room for */
	RXRAY_LC_PROC_FAIL = 4,  /* measurements the process histogram table had no room for */
	RXRAY_LC_COUNT = 8,
};

struct rxray_lat_stats {
	__u64 c[RXRAY_LC_COUNT]; /* indexed by enum rxray_lat_counter */
};

/* One packet as it arrived: addresses network order (IPv4 in the first 4 bytes), ports host order.
 * tag: TCP, the sequence number; UDP, (length << 16 | checksum) ^ the first 4 payload bytes
 * (big-endian, zero-padded). Two packets of one flow with the same tag in flight at once (a TCP
 * retransmission; UDP datagrams with equal length, checksum and first bytes) share a stamp: the later
 * arrival overwrites it and only the first read is measured. With tag 0 it keys a flow's histograms. */
struct rxray_lat_key {
	__u8 ip_ver;
	__u8 proto;
	__u16 _pad;
	__u32 tag;
	__u8 saddr[16];   /* remote */
	__u8 daddr[16];   /* local */
	__u16 sport;
	__u16 dport;
};

struct rxray_lat_stamp {
	__u64 arrival_ns;  /* XDP (the program's clock) */
	__u64 queued_ns;   /* sk_data_ready; 0 when not seen */
};

/* A reading process: its tgid and cgroup v2 id. */
struct rxray_lat_proc_key {
	__u32 tgid;
	__u32 _pad;
	__u64 cgroup_id;
};

/* The histogram tables are per-CPU arrays (rxray_lat_flows, rxray_lat_procs), so that the read stage
 * finds a histogram with inlined array lookups instead of two per-CPU hash lookups. A flow or process
 * owns the slot of the same index in an index table (rxray_lat_flow_ix, rxray_lat_proc_ix: plain
 * arrays, open addressing, RXRAY_LAT_PROBES slots from the key's hash). A slot is claimed once (state
 * 0 -> 1 by compare-and-swap, then the key, then 2) and never freed, as hash entries were not. Two
 * CPUs inserting the same key at once may claim two slots: user space sums entries of equal keys. */
enum rxray_lat_ref_limit {
	RXRAY_LAT_PROBES = 16,   /* slots tried per key; past them the insert fails, counted */
	RXRAY_LAT_REF_FREE = 0,
	RXRAY_LAT_REF_BUSY = 1,  /* claimed, key being written */
	RXRAY_LAT_REF_READY = 2,
};

struct rxray_lat_flow_ref {
	__u64 state;             /* RXRAY_LAT_REF_* (64 bits: the atomics the BPF target has) */
	struct rxray_lat_key k;  /* tag 0 */
};

struct rxray_lat_proc_ref {
	__u64 state;
	struct rxray_lat_proc_key k;
};

/* Per-CPU histograms of one flow or process (user space sums the CPUs). Bucket i holds values
 * [lo, hi) ns: i < 4: [i, i+1); else with o = i / 4 + 1, s = i % 4: [(4 + s) << (o - 2), (5 + s) << (o - 2)). */
struct rxray_lat_hist {
	__u64 reads;           /* measured packets (arrival -> read) */
	__u64 queued;          /* of them, with a queue stamp (arrival -> queue) */
	__u64 read_sum_ns;
	__u64 queue_sum_ns;
	__u64 read_max_ns;
	__u64 queue_max_ns;
	__u64 last_ns;         /* the latest read */
	char comm[16];         /* process entries: the reader's comm */
	__u32 read[RXRAY_LAT_BUCKETS];
	__u32 queue[RXRAY_LAT_BUCKETS];
};

/* ---- readers (kernel.bpf.c: tp_btf/sock_recv_length) ----
 * With RXRAY_CONN_CFG_READERS in rxray_conn_config.flags, every TCP or UDP socket read in rxray's
 * network namespace records who read it, keyed by the socket's own addresses (an unconnected UDP
 * socket: remote address and port 0). Flows and packets join it by their local/remote 5-tuple. */
enum rxray_reader_limit {
	RXRAY_CONN_CFG_READERS = (1U << 0),
	RXRAY_READERS_MAX = 16384, /* sockets remembered (LRU) */
};

struct rxray_reader_key {
	__u8 proto;      /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 _pad;
	__u16 family;    /* AF_INET or AF_INET6 (an IPv6 socket may hold IPv4-mapped addresses) */
	__u16 lport;     /* host order */
	__u16 rport;     /* host order; 0 for an unconnected socket */
	__u8 laddr[16];  /* network order, IPv4 in the first 4 bytes */
	__u8 raddr[16];
};

struct rxray_reader {
	__u64 bytes;      /* positive recvmsg returns (MSG_PEEK excluded), all readers */
	__u64 reads;
	__u64 last_ns;    /* CLOCK_MONOTONIC of the latest read */
	__u64 cgroup_id;  /* the latest reader's cgroup v2 id */
	__u32 tgid;       /* the latest reader */
	__u32 changes;    /* times the reader changed after the first */
	char comm[16];
};

/* ---- HTTP payload (RXRAY_FEAT_HTTP; program code in rxray_http.h) ----
 * TCP segments to or from the configured ports are copied to the rxray_http ring: from XDP on
 * ingress and from a TC egress (clsact) program, so both directions of a local server are seen. Each
 * segment becomes one or more records: a header plus up to RXRAY_HTTP_CHUNK payload bytes, at
 * increasing offsets; a segment without payload (SYN, ACK, FIN, RST) is one header-only record. A
 * message head at the start of a segment resets the flow's copy budget; after head_allow + body_max
 * bytes of one message, the rest of it is not copied (counted, and marked by copy_len < payload_len). */
enum rxray_http_limit {
	RXRAY_FEAT_HTTP = (1U << 7),
	RXRAY_HTTP_CHUNK = 2048, /* payload bytes per record */
	RXRAY_HTTP_MAX_PORTS = 16,
	RXRAY_HTTP_MAX_PAYLOAD = 65536, /* payload walked per segment (GSO/GRO super-packets) */
	RXRAY_HTTP_FLOWS_MAX = 65536, /* flows whose copy budget is tracked (LRU) */
};

struct rxray_http_cfg {
	__u16 ports[RXRAY_HTTP_MAX_PORTS]; /* host order */
	__u32 nports;
	__u32 budget;      /* bytes copied per message from its first byte: head allowance + body limit */
};

enum rxray_http_counter {
	RXRAY_HC_SEGMENTS = 0,     /* segments on a watched port seen (both hooks) */
	RXRAY_HC_RECORDS = 1,      /* records written to the ring */
	RXRAY_HC_BYTES_COPIED = 2, /* payload bytes written */
	RXRAY_HC_BYTES_BUDGET = 3, /* payload bytes not copied: past a message's budget */
	RXRAY_HC_RECORDS_LOST = 4, /* records the ring had no room for */
	RXRAY_HC_BYTES_LOST = 5,   /* payload bytes in those records */
	RXRAY_HC_UNPARSED = 6,     /* egress packets that could not be parsed to TCP (skipped) */
	RXRAY_HC_BYTES_UNWALKED = 7, /* payload bytes past RXRAY_HTTP_MAX_PAYLOAD in one segment */
	RXRAY_HC_COUNT = 8,
};

struct rxray_http_stats {
	__u64 c[RXRAY_HC_COUNT];
};

struct rxray_http_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 ip_ver;
	__u8 _pad[3];
};

struct rxray_http_hdr {
	__u64 ts_ns;       /* CLOCK_MONOTONIC at the hook (the same clock on both hooks) */
	__u32 ifindex;
	__u8 dir;          /* 0: ingress (XDP), 1: egress (TC) */
	__u8 ip_ver;
	__u8 tcp_flags;
	__u8 last;         /* the segment's last record */
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;       /* host order */
	__u16 dport;
	__u32 seq;         /* host order */
	__u32 ack;
	__u32 payload_len; /* the segment's TCP payload bytes on the wire */
	__u32 copy_len;    /* of which copied, over all its records */
	__u32 offset;      /* this record's offset in the payload */
	__u16 len;         /* payload bytes following this header */
	__u16 _pad;
	__u32 _pad2;
};

struct rxray_http_chunk {
	struct rxray_http_hdr h;
	__u8 data[RXRAY_HTTP_CHUNK];
};

/* ---- every enum above, named once in a type ----
 * (and struct rxray_fw_pbucket, which no map's BTF names: see rxray_fw_lpm)
 * A #define never reaches an object's BTF, and an enum only does when a type that BTF keeps names
 * it: xdp_ingress.bpf.c declares one read-only variable of this type, so the objects' BTF carries
 * each enum, and rxray-kernel's tests/abi_btf.rs checks every Rust constant against it. */
struct rxray_abi_enums {
	struct rxray_fw_pbucket fw_pbucket;
	enum rxray_limit limit;
	enum rxray_feature feature;
	enum rxray_capture_limit capture_limit;
	enum rxray_flow_hist flow_hist;
	enum rxray_layer layer;
	enum rxray_frag_flag frag_flag;
	enum rxray_tcpopt tcpopt;
	enum rxray_malformed malformed;
	enum rxray_counter counter;
	enum rxray_flow_kind flow_kind;
	enum rxray_proto_class proto_class;
	enum rxray_filter_limit filter_limit;
	enum rxray_filter_field filter_field;
	enum rxray_filter_cmp filter_cmp;
	enum rxray_drop_limit drop_limit;
	enum rxray_drop_flag drop_flag;
	enum rxray_drop_counter drop_counter;
	enum rxray_conn_limit conn_limit;
	enum rxray_conn_counter conn_counter;
	enum rxray_conn_flag conn_flag;
	enum rxray_fw_feature fw_feature;
	enum rxray_fw_limit fw_limit;
	enum rxray_fw_action fw_action;
	enum rxray_fw_limit_by fw_limit_by;
	enum rxray_fw_verdict fw_verdict;
	enum rxray_fw_field fw_field;
	enum rxray_fw_v6_hash fw_v6_hash;
	enum rxray_iface_limit iface_limit;
	enum rxray_lat_limit lat_limit;
	enum rxray_lat_ref_limit lat_ref_limit;
	enum rxray_lat_counter lat_counter;
	enum rxray_reader_limit reader_limit;
	enum rxray_http_limit http_limit;
	enum rxray_http_counter http_counter;
};

#endif
