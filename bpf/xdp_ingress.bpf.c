// SPDX-License-Identifier: GPL-2.0
/* rxray's ingress program: parses every incoming frame (L2..L4), counts it, and when events are
 * enabled emits one rxray_pkt_event through the ring buffer. It never changes a packet; it drops one
 * only when the firewall (RXRAY_FEAT_FIREWALL, not in dry run) denies it. Built as XDP here, and as a
 * TC (tcx/clsact) ingress classifier by tc_ingress.bpf.c (RXRAY_TC): the same code over the other
 * context, for observers on devices where native XDP costs GRO (veth, virtio_net). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "rxray.h"
#include "rxray_filter.h"

#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_AH_ 51
#define IPPROTO_DSTOPTS_ 60
#define IPPROTO_ICMPV6_ 58
#define EEXIST 17

/* The hook this object is built for. On TC a unit is an skb, which may be a GRO/GSO super-packet:
 * rx_segs says how many wire segments it stands for (1 on XDP, where every frame is one segment). */
#ifdef RXRAY_TC
#define RX_CTX struct __sk_buff
#define rx_load_bytes bpf_skb_load_bytes
#define rx_ifindex(c) ((c)->ingress_ifindex)
#define rx_queue(c) ((c)->queue_mapping)
#define rx_len(c) ((c)->len)
#define rx_segs(c) ((c)->gso_segs ? (c)->gso_segs : 1)
#define rx_gso_size(c) ((c)->gso_size)
/* The stack takes the outer VLAN tag off before TC (skb_vlan_untag): 4 wire bytes not in the data. */
#define rx_vlan_hw(c) ((c)->vlan_present ? 4 : 0)
#define RX_PASS 0 /* TC_ACT_OK */
#define RX_DROP 2 /* TC_ACT_SHOT */
#else
#define RX_CTX struct xdp_md
#define rx_load_bytes bpf_xdp_load_bytes
#define rx_ifindex(c) ((c)->ingress_ifindex)
#define rx_queue(c) ((c)->rx_queue_index)
#define rx_len(c) bpf_xdp_get_buff_len(c)
#define rx_segs(c) 1
#define rx_gso_size(c) 0
#define rx_vlan_hw(c) 0
#define RX_PASS XDP_PASS
#define RX_DROP XDP_DROP
#endif

#include "rxray_fw.h"

char LICENSE[] SEC("license") = "GPL";

/* Never read: it puts rxray.h's enums into this object's BTF (see struct rxray_abi_enums). */
const volatile struct rxray_abi_enums rxray_abi_enums = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	RXRAY_PINNING
	__uint(max_entries, 1 << 22); /* resized by the loader */
} rxray_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_stats);
} rxray_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_config);
} rxray_config SEC(".maps");

/* Whole-packet capture, apart from the events so a capture never competes with `watch`. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	RXRAY_PINNING
	__uint(max_entries, 1 << 12); /* resized by the loader */
} rxray_cap SEC(".maps");

/* Per-CPU staging for one capture chunk (the ring takes variable-size records by copy). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_cap_chunk);
} rxray_cap_stage SEC(".maps");

/* Per-CPU packet sequence for stitching chunks back together. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rxray_cap_seq SEC(".maps");

/* Flow table: sized by the loader; a full table fails inserts, which are counted (RXRAY_C_FLOW_FAIL).
 * A plain hash with the counters inline, updated with atomic adds: a packet touches the bucket and
 * one element (three adjacent cache lines), where a per-CPU hash also touched a separate per-CPU
 * value, and the table takes one value per flow instead of one per flow and CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	RXRAY_PINNING
	__uint(max_entries, 65536);
	__type(key, struct rxray_flow_key);
	__type(value, struct rxray_flow_stats);
} rxray_flows SEC(".maps");

/* First fragments' ports, so later fragments join their flow. LRU: an old entry only costs the
 * attribution of a fragment that arrives after it was evicted (it then counts in the fragments bucket). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	RXRAY_PINNING
	__uint(max_entries, 4096);
	__type(key, struct rxray_frag_key);
	__type(value, struct rxray_frag_ports);
} rxray_frags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, RXRAY_P_COUNT);
	__type(key, __u32);
	__type(value, struct rxray_count);
} rxray_protos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	RXRAY_PINNING
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct rxray_count);
} rxray_ifaces SEC(".maps");

/* The common case of the per-interface counters: an array read instead of a hash lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, RXRAY_IFACE_SLOTS);
	__type(key, __u32);
	__type(value, struct rxray_iface_slot);
} rxray_iface_slots SEC(".maps");

/* Where a packet is parsed when no ring-buffer record is taken (events off, or ring full). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_pkt_event);
} rxray_scratch SEC(".maps");

/* The one clock every program reads, so a simulation can set it. */
static __always_inline __u64 rx_now(const struct rxray_config *cfg)
{
	return cfg->clock_ns ? cfg->clock_ns : bpf_ktime_get_ns();
}

/* The parsers below are global (not inlined) functions taking byte offsets: the verifier checks
 * each once, instead of once per path through the layers before it. Offsets are masked to the
 * packet range so the verifier can bound every access. */
#define OFF_MASK 0x3fff

static __always_inline void *pkt_at(RX_CTX *ctx, __u32 off, __u32 len)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	void *p = data + (off & OFF_MASK);
	if (p + len > end)
		return NULL;
	return p;
}

/* Whether the packet holds len bytes from off. XDP (single buffer) holds them all in data..data_end;
 * on TC only the headers need to be linear, the rest may sit in pages (bpf_skb_load_bytes reads it). */
#ifdef RXRAY_TC
#define pkt_has(ctx, off, n) (((off) & OFF_MASK) + (__u64)(n) <= (ctx)->len)
#else
#define pkt_has(ctx, off, n) (pkt_at(ctx, off, n) != NULL)
#endif
/* Where an IP datagram ends may lie beyond OFF_MASK in a GRO/GSO unit (up to 64 KiB). */
#define END_MASK 0x1ffff

/* TCP options, parsed apart from the rest of the program. */
struct tcp_opt_out {
	__u32 tsval;
	__u32 tsecr;
	__u16 mss;
	__u8 opts;
	__u8 wscale;
};

struct tcp_opt_walk {
	__u8 buf[128]; /* options live in buf[0..40); the slack keeps masked reads in bounds */
	__u32 i;
	__u32 len;
	int mal;
	struct tcp_opt_out o;
};

/* One option per call of bpf_loop's callback: the verifier checks the body once. */
static long tcp_opt_step(__u32 idx, void *arg)
{
	struct tcp_opt_walk *w = arg;
	__u32 i = w->i;
	__u32 len = w->len;

	if (i >= len || i >= RXRAY_TCP_OPT_MAX)
		return 1;
	__u8 kind = w->buf[i & 63];
	if (kind == 0) /* end of option list */
		return 1;
	if (kind == 1) { /* no-op */
		w->i = i + 1;
		return 0;
	}
	if (i + 1 >= len)
		goto bad;
	__u8 olen = w->buf[(i + 1) & 63];
	if (olen < 2 || i + olen > len)
		goto bad;
	__u8 *v = &w->buf[(i + 2) & 63]; /* v[0..9] stays inside buf */
	if (kind == 2) {
		if (olen != 4)
			goto bad;
		w->o.mss = (__u16)v[0] << 8 | v[1];
		w->o.opts |= RXRAY_TCPOPT_MSS;
	} else if (kind == 3) {
		if (olen != 3)
			goto bad;
		w->o.wscale = v[0];
		w->o.opts |= RXRAY_TCPOPT_WSCALE;
	} else if (kind == 4) {
		if (olen != 2)
			goto bad;
		w->o.opts |= RXRAY_TCPOPT_SACK_OK;
	} else if (kind == 5) {
		w->o.opts |= RXRAY_TCPOPT_SACK;
	} else if (kind == 8) {
		if (olen != 10)
			goto bad;
		w->o.tsval = (__u32)v[0] << 24 | (__u32)v[1] << 16 | (__u32)v[2] << 8 | v[3];
		w->o.tsecr = (__u32)v[4] << 24 | (__u32)v[5] << 16 | (__u32)v[6] << 8 | v[7];
		w->o.opts |= RXRAY_TCPOPT_TS;
	}
	w->i = i + olen;
	return 0;
bad:
	w->mal = RXRAY_MAL_TCP_OPT;
	return 1;
}

/* Returns a malformed category or 0. A global function: verified once, not per caller path. */
__noinline int rxray_parse_tcp_opts(RX_CTX *ctx, __u32 off, __u32 len, struct tcp_opt_out *o)
{
	struct tcp_opt_walk w = {};

	if (!ctx || !o)
		return 0;
	__u64 n = len; /* 64-bit and fenced, so the verifier sees the same register checked and passed */
	if (n > RXRAY_TCP_OPT_MAX)
		return RXRAY_MAL_TCP_HDR;
	asm volatile("" : "+r"(n));
	if (n == 0)
		return 0;
	if (rx_load_bytes(ctx, off, w.buf, n) < 0)
		return RXRAY_MAL_TCP_TRUNC;
	w.len = n;
	bpf_loop(RXRAY_TCP_OPT_MAX, tcp_opt_step, &w, 0);
	*o = w.o;
	return w.mal;
}

/* L4 at byte off; the IP payload ends at byte end. Returns a malformed category or 0 and leaves
 * e->payload_off after the L4 header. */
static __always_inline int rxray_parse_l4(RX_CTX *ctx, __u32 off, __u32 end, struct rxray_pkt_event *e)
{
	if (!ctx || !e)
		return 0;
	off &= OFF_MASK;
	end &= END_MASK;
	__u8 proto = e->l4_proto;
	__u32 avail = end > off ? end - off : 0;

	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = pkt_at(ctx, off, sizeof(*th));
		if (!th || sizeof(*th) > avail)
			return RXRAY_MAL_TCP_TRUNC;
		__u32 hlen = th->doff * 4;
		if (hlen < sizeof(*th))
			return RXRAY_MAL_TCP_HDR;
		if (!pkt_has(ctx, off, hlen) || hlen > avail)
			return RXRAY_MAL_TCP_TRUNC;
		e->layers |= RXRAY_L_TCP;
		e->sport = bpf_ntohs(th->source);
		e->dport = bpf_ntohs(th->dest);
		e->tcp_seq = bpf_ntohl(th->seq);
		e->tcp_ack = bpf_ntohl(th->ack_seq);
		e->tcp_window = bpf_ntohs(th->window);
		e->tcp_flags = ((__u8 *)th)[13];
		e->tcp_hdr_len = hlen;
		e->l4_len = avail;
		if (hlen > sizeof(*th)) {
			struct tcp_opt_out o = {};
			int mal = rxray_parse_tcp_opts(ctx, off + sizeof(*th), hlen - sizeof(*th), &o);
			e->tcp_mss = o.mss;
			e->tcp_wscale = o.wscale;
			e->tcp_opts = o.opts;
			e->tcp_tsval = o.tsval;
			e->tcp_tsecr = o.tsecr;
			if (mal)
				return mal;
		}
		e->payload_off = off + hlen;
		return 0;
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr *uh = pkt_at(ctx, off, sizeof(*uh));
		if (!uh || sizeof(*uh) > avail)
			return RXRAY_MAL_UDP_TRUNC;
		e->layers |= RXRAY_L_UDP;
		e->sport = bpf_ntohs(uh->source);
		e->dport = bpf_ntohs(uh->dest);
		__u16 ulen = bpf_ntohs(uh->len);
		e->l4_len = ulen;
		/* A first fragment carries the whole datagram's length; only check unfragmented ones. */
		if (!(e->layers & RXRAY_L_FRAG) && (ulen < sizeof(*uh) || ulen > avail))
			return RXRAY_MAL_UDP_LEN;
		e->payload_off = off + sizeof(*uh);
		return 0;
	}
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6_) {
		struct icmphdr *ih = pkt_at(ctx, off, sizeof(*ih)); /* ICMPv6 shares these 8 bytes' layout */
		if (!ih || sizeof(*ih) > avail)
			return RXRAY_MAL_ICMP_TRUNC;
		e->layers |= proto == IPPROTO_ICMP ? RXRAY_L_ICMP : RXRAY_L_ICMPV6;
		e->icmp_type = ih->type;
		e->icmp_code = ih->code;
		e->l4_len = avail;
		int echo = proto == IPPROTO_ICMP ? (ih->type == 0 || ih->type == 8)
						 : (ih->type == 128 || ih->type == 129);
		if (echo) {
			e->icmp_id = bpf_ntohs(ih->un.echo.id);
			e->icmp_seq = bpf_ntohs(ih->un.echo.sequence);
		}
		e->payload_off = off + sizeof(*ih);
		return 0;
	}
	return 0;
}

/* IPv4 at byte off (e->payload_off == off on entry). */
static __always_inline int rxray_parse_ipv4(RX_CTX *ctx, __u32 off, struct rxray_pkt_event *e)
{
	if (!ctx || !e)
		return 0;
	off &= OFF_MASK;
	struct iphdr *ip = pkt_at(ctx, off, sizeof(*ip));
	if (!ip)
		return RXRAY_MAL_IPV4_TRUNC;
	if (ip->version != 4 || ip->ihl < 5)
		return RXRAY_MAL_IPV4_HDR;
	__u32 hlen = ip->ihl * 4;
	__u32 tot = bpf_ntohs(ip->tot_len);
	if (tot < hlen)
		return RXRAY_MAL_IPV4_HDR;
	if (!pkt_has(ctx, off, tot))
		return RXRAY_MAL_IPV4_TRUNC;
	e->layers |= RXRAY_L_IPV4;
	if (hlen > sizeof(*ip))
		e->layers |= RXRAY_L_IP_OPTS;
	e->ip_ver = 4;
	e->ip_hdr_len = hlen;
	e->ip_total_len = tot;
	e->ttl = ip->ttl;
	e->tos = ip->tos;
	e->l4_proto = ip->protocol;
	e->ip_id = bpf_ntohs(ip->id);
	__u16 fo = bpf_ntohs(ip->frag_off);
	e->frag_off = (fo & 0x1fff) * 8;
	if (fo & 0x4000)
		e->frag_flags |= RXRAY_FRAG_DF;
	if (fo & 0x2000)
		e->frag_flags |= RXRAY_FRAG_MF;
	if (fo & 0x3fff)
		e->layers |= RXRAY_L_FRAG;
	__builtin_memcpy(e->saddr, &ip->saddr, 4);
	__builtin_memcpy(e->daddr, &ip->daddr, 4);
	e->payload_off = off + hlen;
	/* A later fragment has no L4 header: its bytes are all payload. */
	if (e->frag_off != 0)
		return 0;
	return rxray_parse_l4(ctx, off + hlen, off + tot, e);
}

static __always_inline int ipv6_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS_ || nh == IPPROTO_ROUTING_ || nh == IPPROTO_FRAGMENT_ ||
	       nh == IPPROTO_DSTOPTS_ || nh == IPPROTO_AH_;
}

/* IPv6 at byte off, with up to RXRAY_MAX_IPV6_EXT extension headers. */
__noinline int rxray_parse_ipv6(RX_CTX *ctx, __u32 off, struct rxray_pkt_event *e)
{
	if (!ctx || !e)
		return 0;
	off &= OFF_MASK;
	struct ipv6hdr *ip6 = pkt_at(ctx, off, sizeof(*ip6));
	if (!ip6)
		return RXRAY_MAL_IPV6_TRUNC;
	if (ip6->version != 6)
		return RXRAY_MAL_IPV6_HDR;
	__u32 end = off + sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (!pkt_has(ctx, off, end - off))
		return RXRAY_MAL_IPV6_TRUNC;
	__u32 w0 = bpf_ntohl(*(__be32 *)ip6);
	e->layers |= RXRAY_L_IPV6;
	e->ip_ver = 6;
	e->tos = (w0 >> 20) & 0xff;
	e->ipv6_flow_label = w0 & 0xfffff;
	e->ttl = ip6->hop_limit;
	e->ip_total_len = end - off;
	__builtin_memcpy(e->saddr, &ip6->saddr, 16);
	__builtin_memcpy(e->daddr, &ip6->daddr, 16);

	__u8 nh = ip6->nexthdr;
	__u32 pos = off + sizeof(*ip6);
	for (int i = 0; i < RXRAY_MAX_IPV6_EXT; i++) {
		if (!ipv6_ext(nh))
			break;
		__u8 *h = pkt_at(ctx, pos, 8);
		if (!h || pos + 8 > end)
			return RXRAY_MAL_IPV6_EXT_TRUNC;
		__u32 len;
		if (nh == IPPROTO_FRAGMENT_) {
			struct frag_hdr *fh = (void *)h;
			__u16 fo = bpf_ntohs(fh->frag_off);
			len = 8;
			e->layers |= RXRAY_L_FRAG;
			e->frag_off = fo & 0xfff8;
			if (fo & 1)
				e->frag_flags |= RXRAY_FRAG_MF;
			e->ip_id = bpf_ntohl(fh->identification);
		} else if (nh == IPPROTO_AH_) {
			len = ((__u32)h[1] + 2) * 4;
		} else {
			len = ((__u32)h[1] + 1) * 8;
		}
		if (pos + len > end)
			return RXRAY_MAL_IPV6_EXT_TRUNC;
		e->ipv6_exts[i & (RXRAY_MAX_IPV6_EXT - 1)] = nh;
		e->ipv6_ext_count = i + 1;
		nh = h[0];
		pos = (pos + len) & OFF_MASK;
	}
	if (ipv6_ext(nh))
		return RXRAY_MAL_IPV6_EXT_CHAIN;
	e->l4_proto = nh;
	e->ip_hdr_len = pos - off;
	e->payload_off = pos;
	if ((e->layers & RXRAY_L_FRAG) && e->frag_off != 0)
		return 0;
	return rxray_parse_l4(ctx, pos, end, e);
}

/* Ethernet, VLAN tags and ARP inline; IP and above in the global parsers. Returns a malformed
 * category or 0; e->payload_off is left at the first byte after the last header that parsed. */
static __always_inline int parse_frame(RX_CTX *ctx, struct rxray_pkt_event *e, __u32 base)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return RXRAY_MAL_ETH_TRUNC;
	e->layers |= RXRAY_L_ETH;
	__builtin_memcpy(e->dst_mac, eth->h_dest, 6);
	__builtin_memcpy(e->src_mac, eth->h_source, 6);
	__u16 proto = bpf_ntohs(eth->h_proto);
	__u32 off = sizeof(*eth);
	e->eth_proto = proto;
	e->payload_off = off;

#pragma unroll
	for (int i = 0; i < RXRAY_MAX_VLANS + 1; i++) {
		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		if (i + base >= RXRAY_MAX_VLANS)
			return RXRAY_MAL_VLAN_DEPTH;
		__be16 *tag = data + off; /* TCI, then the encapsulated ethertype */
		if ((void *)(tag + 2) > end)
			return RXRAY_MAL_VLAN_TRUNC;
		e->layers |= proto == ETH_P_8021AD ? RXRAY_L_QINQ | RXRAY_L_VLAN : RXRAY_L_VLAN;
		e->vlan_tpid[(i + base) & 1] = proto;
		e->vlan_tci[(i + base) & 1] = bpf_ntohs(tag[0]);
		e->vlan_count = i + base + 1;
		proto = bpf_ntohs(tag[1]);
		off += 4;
		e->eth_proto = proto;
		e->payload_off = off;
	}

	if (proto == ETH_P_IP)
		return rxray_parse_ipv4(ctx, off, e);
	if (proto == ETH_P_IPV6)
		return rxray_parse_ipv6(ctx, off, e);
	if (proto == ETH_P_ARP) {
		struct arphdr *ah = data + off;
		if ((void *)(ah + 1) > end)
			return RXRAY_MAL_ARP_TRUNC;
		e->layers |= RXRAY_L_ARP;
		e->arp_op = bpf_ntohs(ah->ar_op);
		off += sizeof(*ah);
		if (ah->ar_hrd == bpf_htons(1) && ah->ar_pro == bpf_htons(ETH_P_IP) && ah->ar_hln == 6 &&
		    ah->ar_pln == 4) {
			__u8 *b = data + off;
			if ((void *)(b + 20) > end)
				return RXRAY_MAL_ARP_TRUNC;
			__builtin_memcpy(e->arp_sha, b, 6);
			__builtin_memcpy(e->saddr, b + 6, 4);
			__builtin_memcpy(e->arp_tha, b + 10, 6);
			__builtin_memcpy(e->daddr, b + 16, 4);
			off += 20;
		}
		e->payload_off = off;
	}
	return 0;
}

/* The outer VLAN tag, when the stack took it off the data before TC (skb_vlan_untag), as the first
 * of e's tags; returns how many tags that is (0 or 1), where parse_frame goes on counting. */
static __always_inline __u32 vlan_hw_tag(RX_CTX *ctx, struct rxray_pkt_event *e)
{
#ifdef RXRAY_TC
	if (!ctx->vlan_present)
		return 0;
	__u16 tpid = bpf_ntohs((__u16)ctx->vlan_proto);
	e->vlan_tpid[0] = tpid;
	e->vlan_tci[0] = ctx->vlan_tci;
	e->vlan_count = 1;
	e->layers |= tpid == ETH_P_8021AD ? RXRAY_L_QINQ | RXRAY_L_VLAN : RXRAY_L_VLAN;
	return 1;
#else
	return 0;
#endif
}

static __always_inline __u32 size_bucket(__u32 len)
{
	if (len <= 64)
		return 0;
	if (len <= 128)
		return 1;
	if (len <= 256)
		return 2;
	if (len <= 512)
		return 3;
	if (len <= 1024)
		return 4;
	if (len <= 1518)
		return 5;
	if (len <= 9018)
		return 6;
	return 7;
}

static __always_inline __u32 proto_class(const struct rxray_pkt_event *e, __u32 mal)
{
	if (mal)
		return RXRAY_P_MALFORMED;
	if (e->layers & RXRAY_L_ARP)
		return RXRAY_P_ARP;
	if (!e->ip_ver)
		return RXRAY_P_OTHER_L2;
	__u32 base = e->ip_ver == 4 ? RXRAY_P_IPV4_TCP : RXRAY_P_IPV6_TCP;
	if (e->l4_proto == IPPROTO_TCP)
		return base;
	if (e->l4_proto == IPPROTO_UDP)
		return base + 1;
	if (e->l4_proto == IPPROTO_ICMP || e->l4_proto == IPPROTO_ICMPV6_)
		return base + 2;
	return base + 3;
}

static __always_inline void count(struct rxray_count *c, __u32 segs, __u64 bytes)
{
	if (c) {
		c->packets += segs;
		c->bytes += bytes;
	}
}

/* The bytes a unit's wire segments add up to: the unit's length plus the headers (L2 to L4, as
 * parsed) that each further segment repeats. Exact for TCP and UDP GSO, whose segments all carry the
 * first one's headers. */
static __always_inline __u64 wire_bytes(__u32 len, __u32 segs, const struct rxray_pkt_event *e, __u32 vlan_hw)
{
	return (__u64)len + (__u64)(segs - 1) * (e->payload_off + vlan_hw);
}

/* IP fragments: a first fragment records its ports by datagram; a later one looks them up (and, when
 * found, carries them in frag_sport/frag_dport with RXRAY_L_FRAG_PORTS), so flows and firewall rules
 * see a fragmented datagram's ports on every fragment. Returns 0 for a later fragment whose first
 * fragment was not seen (its ports are unknown). */
static __always_inline int frag_ports(struct rxray_pkt_event *e)
{
	struct rxray_frag_key fk = {};
	fk.ifindex = e->ifindex;
	fk.id = e->ip_id;
	__builtin_memcpy(fk.saddr, e->saddr, 16);
	__builtin_memcpy(fk.daddr, e->daddr, 16);
	fk.ip_ver = e->ip_ver;
	fk.proto = e->l4_proto;
	if (e->frag_off == 0) {
		struct rxray_frag_ports fp = { .sport = e->sport, .dport = e->dport };
		bpf_map_update_elem(&rxray_frags, &fk, &fp, BPF_ANY);
		return 1;
	}
	struct rxray_frag_ports *fp = bpf_map_lookup_elem(&rxray_frags, &fk);
	if (!fp)
		return 0;
	e->layers |= RXRAY_L_FRAG_PORTS;
	e->frag_sport = fp->sport;
	e->frag_dport = fp->dport;
	return 1;
}

/* Per-interface, per-protocol and per-flow counters for one parsed packet. Exact whatever the ring
 * buffer does: they are kept here, not derived from events. */
__noinline int rxray_account(RX_CTX *ctx, struct rxray_pkt_event *e, struct rxray_stats *st,
			     __u32 mal, __u64 now)
{
	if (!ctx || !e || !st)
		return 0;
	__u32 segs = rx_segs(ctx);
	__u64 len = wire_bytes(e->wire_len, segs, e, rx_vlan_hw(ctx));
	__u32 idx = proto_class(e, mal) & (RXRAY_P_COUNT - 1);
	count(bpf_map_lookup_elem(&rxray_protos, &idx), segs, len);

	__u32 ifindex = e->ifindex;
	__u32 si = ifindex & (RXRAY_IFACE_SLOTS - 1);
	struct rxray_iface_slot *slot = bpf_map_lookup_elem(&rxray_iface_slots, &si);
	struct rxray_count *ic = NULL;
	if (slot && (slot->ifindex == ifindex || !slot->c.packets)) {
		slot->ifindex = ifindex;
		count(&slot->c, segs, len);
	} else if ((ic = bpf_map_lookup_elem(&rxray_ifaces, &ifindex))) {
		count(ic, segs, len);
	} else {
		struct rxray_count init = { .packets = segs, .bytes = len };
		if (bpf_map_update_elem(&rxray_ifaces, &ifindex, &init, BPF_NOEXIST) == -EEXIST) {
			count(bpf_map_lookup_elem(&rxray_ifaces, &ifindex), segs, len);
		} else if (!bpf_map_lookup_elem(&rxray_ifaces, &ifindex)) {
			st->c[RXRAY_C_IFACE_FAIL]++;
		}
	}

	if (mal || !e->ip_ver)
		return 0;
	struct rxray_flow_key k = {};
	k.ifindex = e->ifindex;
	k.vlan = e->vlan_count ? e->vlan_tci[(e->vlan_count - 1) & 1] & 0x0fff : 0;
	k.ip_ver = e->ip_ver;
	k.proto = e->l4_proto;
	__builtin_memcpy(k.saddr, e->saddr, 16);
	__builtin_memcpy(k.daddr, e->daddr, 16);
	k.sport = e->sport;
	k.dport = e->dport;

	if ((e->layers & RXRAY_L_FRAG) && e->frag_off != 0) {
		if (e->layers & RXRAY_L_FRAG_PORTS) {
			k.sport = e->frag_sport;
			k.dport = e->frag_dport;
		} else {
			k.kind = RXRAY_FK_FRAGS;
			st->c[RXRAY_C_FRAG_BUCKET]++;
		}
	}

	/* The size buckets: one, or for a GSO unit segs - 1 full segments and the rest. */
	__u32 b1 = size_bucket(len) & (RXRAY_FLOW_HIST - 1), b2 = 0;
	__u64 n1 = 1, n2 = 0;
	if (segs > 1) {
		__u32 full = e->payload_off + rx_vlan_hw(ctx) + rx_gso_size(ctx);
		b1 = size_bucket(full) & (RXRAY_FLOW_HIST - 1);
		n1 = segs - 1;
		b2 = size_bucket(len - (__u64)(segs - 1) * full) & (RXRAY_FLOW_HIST - 1);
		n2 = 1;
	}
	__u64 flags = e->tcp_flags;
	struct rxray_flow_stats *fs = bpf_map_lookup_elem(&rxray_flows, &k);
	if (!fs) {
		/* A new flow is inserted with this packet already counted; when another CPU inserted it
		 * first, this packet is added to that one's counters below. */
		struct rxray_flow_stats init = {};
		init.bytes = len;
		init.first_ns = now;
		init.last_ns = now;
		init.tcp_flags = flags;
		init.size_hist[b1] = n1;
		init.size_hist[b2 & (RXRAY_FLOW_HIST - 1)] += n2;
		if (bpf_map_update_elem(&rxray_flows, &k, &init, BPF_NOEXIST) == 0)
			return 0;
		fs = bpf_map_lookup_elem(&rxray_flows, &k);
		if (!fs) {
			st->c[RXRAY_C_FLOW_FAIL]++;
			return 0;
		}
	}
	__sync_fetch_and_add(&fs->bytes, len);
	__sync_fetch_and_add(&fs->size_hist[b1], n1);
	if (n2)
		__sync_fetch_and_add(&fs->size_hist[b2 & (RXRAY_FLOW_HIST - 1)], n2);
	fs->last_ns = now; /* two CPUs may store out of order: last_ns is then a few ns early */
	if ((fs->tcp_flags & flags) != flags) /* most packets add no new flag: no atomic then */
		__sync_fetch_and_or(&fs->tcp_flags, flags);
	return 0;
}

/* Copies n (1..RXRAY_PAYLOAD_MAX) packet bytes from off: whole 8-byte words straight from the
 * packet (a helper call costs ~30 ns here), the tail through bpf_xdp_load_bytes. */
static __always_inline int copy_payload(RX_CTX *ctx, __u32 off, __u8 *dst, __u64 n)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *src = data + (off & OFF_MASK);
	__u32 words = n / 8;
	int i;

	for (i = 0; i < RXRAY_PAYLOAD_MAX / 8; i++) {
		if (i >= words)
			break;
		if ((void *)(src + i * 8 + 8) > end)
			return rx_load_bytes(ctx, off, dst, n);
		*(__u64 *)(dst + i * 8) = *(__u64 *)(src + i * 8);
	}
	__u64 tail = n & 7;
	asm volatile("" : "+r"(tail));
	if (tail == 0)
		return 0;
	__u32 done = words * 8;
	if (done > RXRAY_PAYLOAD_MAX - 8)
		return 0;
	return rx_load_bytes(ctx, off + done, dst + done, tail);
}

struct cap_walk {
	RX_CTX *ctx;
	struct rxray_cap_chunk *c;
	__u32 cap_len;
	__u32 lost;
	__u64 wakeup_bytes;
	/* TC: the VLAN tag the stack took off (tpid, tci, network order), put back at byte 12. */
	__u32 vlan_hw;
	__u8 tag[4];
};

/* Copies wire bytes [off, off + n) of the frame: the data itself, or on TC with a VLAN tag taken
 * off, the MACs, the tag, and the data after them (4 bytes behind in the data). */
static __always_inline int cap_load(struct cap_walk *w, __u32 off, __u8 *dst, __u64 n)
{
#ifdef RXRAY_TC
	if (w->vlan_hw) {
		if (off > 0)
			return rx_load_bytes(w->ctx, off - 4, dst, n);
		if (n < 16) /* a snap length shorter than MACs and tag: the MACs, then the tag's start */
			return rx_load_bytes(w->ctx, 0, dst, n < 12 ? n : 12);
		if (rx_load_bytes(w->ctx, 0, dst, 12) < 0)
			return -1;
		__builtin_memcpy(dst + 12, w->tag, 4);
		__u64 m = n - 16;
		if (m > RXRAY_CAP_CHUNK - 16)
			return -1;
		asm volatile("" : "+r"(m));
		if (m == 0)
			return 0;
		return rx_load_bytes(w->ctx, 12, dst + 16, m);
	}
#endif
	return rx_load_bytes(w->ctx, off, dst, n);
}

/* One chunk per bpf_loop step: stage it, then copy it into the capture ring at its exact size. */
static long cap_step(__u32 i, void *arg)
{
	struct cap_walk *w = arg;
	struct rxray_cap_chunk *c = w->c;
	__u32 off = i * RXRAY_CAP_CHUNK;
	if (off >= w->cap_len)
		return 1;
	__u64 n = w->cap_len - off;
	if (n > RXRAY_CAP_CHUNK)
		n = RXRAY_CAP_CHUNK;
	asm volatile("" : "+r"(n));
	if (n == 0)
		return 1;
	if (cap_load(w, off, c->data, n) < 0) {
		w->lost = 1;
		return 1;
	}
	c->h.offset = off;
	c->h.len = n;
	c->h.last = off + n >= w->cap_len;
	__u64 size = sizeof(struct rxray_cap_hdr) + n;
	asm volatile("" : "+r"(size));
	if (size > sizeof(*c))
		return 1;
	/* As for events: wake the reader once a batch has built up (it polls every 100 ms for the
	 * rest); a wake-up per packet costs microseconds. */
	__u64 wake = c->h.last && bpf_ringbuf_query(&rxray_cap, BPF_RB_AVAIL_DATA) >= w->wakeup_bytes
			     ? BPF_RB_FORCE_WAKEUP
			     : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&rxray_cap, c, size, wake) < 0) {
		w->lost = 1;
		return 1;
	}
	return 0;
}

/* Copies the packet, up to capture_snap bytes, into the capture ring in RXRAY_CAP_CHUNK pieces. */
__noinline int rxray_capture(RX_CTX *ctx, const struct rxray_config *cfg, struct rxray_stats *st,
			     __u32 wire_len, __u64 now)
{
	__u32 zero = 0;
	if (!ctx || !cfg || !st)
		return 0;
	struct rxray_cap_chunk *c = bpf_map_lookup_elem(&rxray_cap_stage, &zero);
	__u32 *seq = bpf_map_lookup_elem(&rxray_cap_seq, &zero);
	if (!c || !seq)
		return 0;
	__u32 snap = cfg->capture_snap;
	if (snap == 0 || snap > RXRAY_CAP_SNAP_MAX)
		snap = RXRAY_CAP_SNAP_MAX;
	struct cap_walk w = { .ctx = ctx, .c = c, .cap_len = wire_len < snap ? wire_len : snap, .wakeup_bytes = cfg->wakeup_bytes };
#ifdef RXRAY_TC
	if (ctx->vlan_present) {
		__u16 tpid = (__u16)ctx->vlan_proto, tci = bpf_htons((__u16)ctx->vlan_tci);
		w.vlan_hw = 4;
		__builtin_memcpy(w.tag, &tpid, 2);
		__builtin_memcpy(w.tag + 2, &tci, 2);
	}
#endif
	c->h.ts_ns = now;
	c->h.ifindex = rx_ifindex(ctx);
	c->h.rx_queue = rx_queue(ctx);
	c->h.wire_len = wire_len;
	c->h.cap_len = w.cap_len;
	c->h.seq = ++*seq;
	c->h.cpu = bpf_get_smp_processor_id();
	c->h._pad = 0;
	bpf_loop(RXRAY_CAP_SNAP_MAX / RXRAY_CAP_CHUNK, cap_step, &w, 0);
	if (w.lost)
		st->c[RXRAY_C_CAP_LOST]++;
	else
		st->c[RXRAY_C_CAP_PACKETS]++;
	return 0;
}

__noinline int rxray_lat_arrive(RX_CTX *ctx, struct rxray_pkt_event *e, __u64 now);

#include "rxray_http.h"

#ifdef RXRAY_TC
SEC("classifier")
int rxray_tc(RX_CTX *ctx)
#else
SEC("xdp")
int rxray_xdp(RX_CTX *ctx)
#endif
{
	__u32 zero = 0;
	struct rxray_config *cfg = bpf_map_lookup_elem(&rxray_config, &zero);
	struct rxray_stats *st = bpf_map_lookup_elem(&rxray_stats, &zero);
	if (!cfg || !st)
		return RX_PASS;

	/* data_len: the bytes the program sees; wire_len: the frame as it was on the wire (on TC, with
	 * the VLAN tag the stack took off). Offsets in e are in data coordinates. */
	__u32 data_len = rx_len(ctx);
	__u32 vlan_hw = rx_vlan_hw(ctx);
	__u32 wire_len = data_len + vlan_hw;

	struct rxray_pkt_event *e = NULL;
	int ring = 0;
	if (cfg->features & RXRAY_FEAT_EVENTS) {
		e = bpf_ringbuf_reserve(&rxray_events, sizeof(*e), 0);
		if (e)
			ring = 1;
		else
			st->c[RXRAY_C_LOST]++;
	}
	if (!e) {
		e = bpf_map_lookup_elem(&rxray_scratch, &zero);
		if (!e)
			return RX_PASS;
	}
	__builtin_memset(e, 0, __builtin_offsetof(struct rxray_pkt_event, payload));
	/* The precise clock costs ~30 ns here: read it only for packets that become events. */
	e->ts_ns = ring ? rx_now(cfg) : 0;
	e->ifindex = rx_ifindex(ctx);
	e->rx_queue = rx_queue(ctx);
	e->wire_len = wire_len;

	__u32 mal = parse_frame(ctx, e, vlan_hw_tag(ctx, e));
#ifdef RXRAY_TC
	/* The parsers read headers from the linear part. An skb whose headers are not all there (a
	 * driver that put everything in pages) has them pulled in, and is parsed again, once. */
	__u32 linear = (long)ctx->data_end - (long)ctx->data;
	if (mal && linear < data_len && linear < 256 &&
	    bpf_skb_pull_data(ctx, data_len < 256 ? data_len : 256) == 0) {
		__u64 ts = e->ts_ns;
		__builtin_memset(e, 0, __builtin_offsetof(struct rxray_pkt_event, payload));
		e->ts_ns = ts;
		e->ifindex = rx_ifindex(ctx);
		e->rx_queue = rx_queue(ctx);
		e->wire_len = wire_len;
		mal = parse_frame(ctx, e, vlan_hw_tag(ctx, e));
	}
#endif
	__u32 segs = rx_segs(ctx);
	st->c[RXRAY_C_PACKETS] += segs;
	st->c[RXRAY_C_BYTES] += wire_bytes(wire_len, segs, e, vlan_hw);
	if (mal) {
		e->malformed = mal;
		st->c[RXRAY_C_MALFORMED]++;
		/* mal < RXRAY_MAL_COUNT, so the index stays below RXRAY_C_COUNT; the mask tells the verifier */
		st->c[(RXRAY_C_MAL_BASE + mal) & (RXRAY_C_COUNT - 1)]++;
	}
	/* Later fragments take their first fragment's ports (flows and firewall rules need them). */
	int l4_known = 1;
	if ((cfg->features & (RXRAY_FEAT_FLOWS | RXRAY_FEAT_FIREWALL)) && !mal && (e->layers & RXRAY_L_FRAG))
		l4_known = frag_ports(e);
	/* The firewall decides first; every packet, dropped or not, is still counted and observed. */
	int verdict = RX_PASS;
	if (cfg->features & RXRAY_FEAT_FIREWALL) {
		__u32 fw = rxray_fw(ctx, e, mal, l4_known, cfg->clock_ns);
		if (cfg->clock_ns) { /* a replay reads which rule decided */
			__u32 *last = bpf_map_lookup_elem(&rxray_fw_last, &zero);
			if (last)
				*last = fw;
		}
		if ((fw & 0xff) == RXRAY_FWA_DENY) {
			if (cfg->features & RXRAY_FEAT_FW_DRYRUN) {
				e->fw_verdict = RXRAY_FWV_WOULD;
				st->c[RXRAY_C_FW_WOULD]++;
			} else {
				e->fw_verdict = RXRAY_FWV_DROP;
				st->c[RXRAY_C_FW_DROPPED]++;
				verdict = RX_DROP;
			}
		}
	}
	if (cfg->features & RXRAY_FEAT_FLOWS) {
		/* Flows take the coarse clock (cheap) unless this packet already read the precise one. */
		__u64 now = e->ts_ns ? e->ts_ns : (cfg->clock_ns ? cfg->clock_ns : bpf_ktime_get_coarse_ns());
		rxray_account(ctx, e, st, mal, now);
	}
	if ((cfg->features & RXRAY_FEAT_LATENCY) && !mal)
		rxray_lat_arrive(ctx, e, e->ts_ns ? e->ts_ns : rx_now(cfg));
	if ((cfg->features & RXRAY_FEAT_HTTP) && !mal && verdict != RX_DROP)
		rxray_http_xdp(ctx, e, e->ts_ns ? e->ts_ns : rx_now(cfg));
	/* Filter (RXRAY_FEAT_FILTER): a packet the compiled expression rejects reaches neither the
	 * capture ring nor the event ring. It is decided after the flow accounting, so flows still count
	 * every packet; a rejected event record is discarded and ring cleared, so nothing below uses it. */
	int matched = !(cfg->features & RXRAY_FEAT_FILTER) || rxray_filter_match(e);
	if (matched && (cfg->features & RXRAY_FEAT_CAPTURE))
		rxray_capture(ctx, cfg, st, wire_len, e->ts_ns ? e->ts_ns : rx_now(cfg));
	if (!matched) {
		st->c[RXRAY_C_FILTERED]++;
		if (ring)
			bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		ring = 0;
	}
	if (!ring)
		return verdict;

	/* The payload: bytes after the last parsed header, up to the layer's end (no Ethernet padding). */
	__u32 snap = cfg->payload_snap;
	__u32 start = e->payload_off;
	__u32 stop = data_len;
	if (e->ip_ver && !mal) /* the IP datagram's end, not Ethernet padding */
		stop = sizeof(struct ethhdr) + 4 * (__u32)e->vlan_count - vlan_hw + e->ip_total_len;
	if (stop > data_len)
		stop = data_len;
	if (start < stop && snap > 0) {
		__u64 n = (stop - start) & 0x1ffff; /* start < stop; the mask tells the verifier */
		if (n > snap)
			n = snap;
		if (n > RXRAY_PAYLOAD_MAX)
			n = RXRAY_PAYLOAD_MAX;
		/* keep clang from folding the two bounds into one check on a copy the verifier can't follow */
		asm volatile("" : "+r"(n));
		if (n != 0 && copy_payload(ctx, start, e->payload, n) == 0)
			e->payload_len = n;
	}
	e->payload_off += vlan_hw; /* users read it in wire coordinates */
	/* Waking the reader per event costs microseconds; wake it only once a batch has built up. The
	 * reader also polls with a short timeout, so a quiet link's events are never stuck. */
	__u64 wake = bpf_ringbuf_query(&rxray_events, BPF_RB_AVAIL_DATA) >= cfg->wakeup_bytes
			     ? BPF_RB_FORCE_WAKEUP
			     : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, wake);
	st->c[RXRAY_C_EVENTS]++;
	return verdict;
}

/* ---- delivery latency (RXRAY_FEAT_LATENCY) ----
 * Three stages of one packet, matched by struct rxray_lat_key (see rxray.h): XDP stamps the arrival;
 * tp_btf/sk_data_ready stamps the queueing of the skb at the tail of the socket's receive queue;
 * tp_btf/skb_copy_datagram_iovec (in the reading task) measures both and consumes the stamp. The
 * tracing programs live in this object so they share rxray_lat_arrivals and the clock with XDP; they
 * are attached only while latency is measured. */
#include "rxray_skb.h"

#define AF_INET_ 2
#define AF_INET6_ 10

/* The arrival stamps: a direct-mapped table (an array indexed by a hash of the packet's key), so that
 * stamping is a few stores and finding a stamp an inlined array lookup and a key compare, where an
 * LRU hash took locks and, once full, evictions on every data packet. A stamp is replaced by a later
 * packet whose key falls in the same slot (with 65,536 slots, rarely one not yet read). arrival_ns is
 * written last and 0 marks a free or consumed slot; a reader takes a stamp only if arrival_ns is the
 * same before and after it compared the key, so a slot rewritten meanwhile is skipped, not misread. */
struct rxray_lat_slot {
	struct rxray_lat_key k;
	struct rxray_lat_stamp s;
	__u64 _pad; /* 64 bytes: one cache line a slot */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RXRAY_LAT_ARRIVALS_MAX);
	__uint(map_flags, BPF_F_MMAPABLE); /* page-aligned values: each slot is exactly one cache line */
	__type(key, __u32);
	__type(value, struct rxray_lat_slot);
} rxray_lat_arrivals SEC(".maps");

#define LAT_ONCE(x) (*(volatile __typeof__(x) *)&(x))

/* A multiply-xor hash of a key's ten 32-bit words (the key is 4-byte aligned). */
static __always_inline __u64 lat_key_hash(const struct rxray_lat_key *k)
{
	const __u32 *w = (const __u32 *)k;
	__u64 h = 0x9e3779b97f4a7c15ULL;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(*k) / 4); i++)
		h = (h ^ w[i]) * 0xff51afd7ed558ccdULL;
	return h;
}

/* The stamp slot of a key. */
static __always_inline __u32 lat_slot(const struct rxray_lat_key *k)
{
	__u64 h = lat_key_hash(k);
	h ^= h >> 29;
	return (__u32)h & (RXRAY_LAT_ARRIVALS_MAX - 1);
}

static __always_inline int lat_key_eq(const struct rxray_lat_key *a, const struct rxray_lat_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	__u32 d = 0;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(*a) / 4); i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

/* The slot holding k's stamp, or NULL; *arrival is its arrival time (nonzero). */
static __always_inline struct rxray_lat_slot *lat_find(const struct rxray_lat_key *k, __u64 *arrival)
{
	__u32 i = lat_slot(k);
	struct rxray_lat_slot *sl = bpf_map_lookup_elem(&rxray_lat_arrivals, &i);
	if (!sl)
		return NULL;
	__u64 a = LAT_ONCE(sl->s.arrival_ns);
	if (!a || !lat_key_eq(&sl->k, k) || LAT_ONCE(sl->s.arrival_ns) != a)
		return NULL;
	*arrival = a;
	return sl;
}

/* Histograms per flow (key tag 0) and per reading process: per-CPU arrays, each slot owned by the
 * key in the same slot of its index table (see rxray.h). A full index fails the insert, counted. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RXRAY_LAT_FLOWS_MAX);
	__type(key, __u32);
	__type(value, struct rxray_lat_hist);
} rxray_lat_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RXRAY_LAT_FLOWS_MAX);
	__type(key, __u32);
	__type(value, struct rxray_lat_flow_ref);
} rxray_lat_flow_ix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RXRAY_LAT_PROCS_MAX);
	__type(key, __u32);
	__type(value, struct rxray_lat_hist);
} rxray_lat_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RXRAY_LAT_PROCS_MAX);
	__type(key, __u32);
	__type(value, struct rxray_lat_proc_ref);
} rxray_lat_proc_ix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_lat_stats);
} rxray_lat_stats SEC(".maps");

static __always_inline void lat_count(__u32 i)
{
	__u32 zero = 0;
	struct rxray_lat_stats *st = bpf_map_lookup_elem(&rxray_lat_stats, &zero);
	if (st && i < RXRAY_LC_COUNT)
		st->c[i]++;
}

static __always_inline __u32 lat_udp_tag(__u16 len, __u16 csum, __u32 first)
{
	return ((__u32)len << 16 | csum) ^ first;
}

/* XDP: stamps a TCP segment with payload or a UDP datagram (first fragment included). */
__noinline int rxray_lat_arrive(RX_CTX *ctx, struct rxray_pkt_event *e, __u64 now)
{
	if (!ctx || !e || e->frag_off)
		return 0;
	struct rxray_lat_key k = {};
	if (e->layers & RXRAY_L_TCP) {
		if (e->ip_total_len <= (__u32)e->ip_hdr_len + e->tcp_hdr_len)
			return 0; /* no payload: never queued for a reader */
		k.tag = e->tcp_seq;
	} else if (e->layers & RXRAY_L_UDP) {
		__u32 off = e->payload_off;
		__u8 *uh = pkt_at(ctx, off - 8, 8);
		if (!uh)
			return 0;
		__u32 n = e->l4_len > 8 ? e->l4_len - 8 : 0;
		__u8 p[4] = {};
		for (int i = 0; i < 4; i++) {
			__u8 *b = i < n ? pkt_at(ctx, off + i, 1) : NULL;
			if (b)
				p[i] = *b;
		}
		k.tag = lat_udp_tag(e->l4_len, (__u16)uh[6] << 8 | uh[7], rxray_udp_first(p, n));
	} else {
		return 0;
	}
	k.ip_ver = e->ip_ver;
	k.proto = e->l4_proto;
	__builtin_memcpy(k.saddr, e->saddr, 16);
	__builtin_memcpy(k.daddr, e->daddr, 16);
	k.sport = e->sport;
	k.dport = e->dport;
	__u32 i = lat_slot(&k);
	struct rxray_lat_slot *sl = bpf_map_lookup_elem(&rxray_lat_arrivals, &i);
	if (!sl)
		return 0;
	LAT_ONCE(sl->s.arrival_ns) = 0;
	sl->k = k;
	sl->s.queued_ns = 0;
	LAT_ONCE(sl->s.arrival_ns) = now ? now : 1;
	lat_count(RXRAY_LC_STAMPED);
	return 0;
}

/* The key of the packet an skb starts with, as XDP computed it; -1 when it is not TCP or UDP. The
 * skb's fields are read directly (tp_btf); the common headers (IPv4 without options, IPv6 without
 * extension headers) come in one read, anything else through rxray_skb_headers. */
static __always_inline int lat_skb_key(const struct sk_buff *skb, struct rxray_lat_key *k)
{
	__u16 proto = bpf_ntohs(skb->protocol);
	const unsigned char *head = skb->head;
	__u32 nh = skb->network_header;
	__u8 b[54]; /* IPv6 (40) + the TCP header's first 14 bytes */
	if (proto == RXRAY_SKB_ETH_P_IP) {
		if (bpf_probe_read_kernel(b, 34, head + nh))
			return -1;
		if (b[0] == 0x45) { /* IPv4, no options */
			if ((b[6] & 0x1f) | b[7])
				return -1; /* a later fragment: never stamped */
			k->ip_ver = 4;
			k->proto = b[9];
			__builtin_memcpy(k->saddr, b + 12, 4);
			__builtin_memcpy(k->daddr, b + 16, 4);
			if (b[9] == IPPROTO_TCP) {
				k->sport = (__u16)b[20] << 8 | b[21];
				k->dport = (__u16)b[22] << 8 | b[23];
				k->tag = (__u32)b[24] << 24 | (__u32)b[25] << 16 | (__u32)b[26] << 8 | b[27];
				return 0;
			}
			if (b[9] != IPPROTO_UDP)
				return -1;
			__u16 len = (__u16)b[24] << 8 | b[25];
			__u32 n = len > 8 ? len - 8 : 0;
			k->sport = (__u16)b[20] << 8 | b[21];
			k->dport = (__u16)b[22] << 8 | b[23];
			k->tag = lat_udp_tag(len, (__u16)b[26] << 8 | b[27], rxray_udp_first(b + 28, n));
			return 0;
		}
	} else if (proto == RXRAY_SKB_ETH_P_IPV6) {
		if (bpf_probe_read_kernel(b, sizeof(b), head + nh))
			return -1;
		if (b[6] == IPPROTO_TCP || b[6] == IPPROTO_UDP) { /* no extension headers */
			k->ip_ver = 6;
			k->proto = b[6];
			__builtin_memcpy(k->saddr, b + 8, 16);
			__builtin_memcpy(k->daddr, b + 24, 16);
			k->sport = (__u16)b[40] << 8 | b[41];
			k->dport = (__u16)b[42] << 8 | b[43];
			if (b[6] == IPPROTO_TCP) {
				k->tag = (__u32)b[44] << 24 | (__u32)b[45] << 16 | (__u32)b[46] << 8 | b[47];
			} else {
				__u16 len = (__u16)b[44] << 8 | b[45];
				__u32 n = len > 8 ? len - 8 : 0;
				k->tag = lat_udp_tag(len, (__u16)b[46] << 8 | b[47], rxray_udp_first(b + 48, n));
			}
			return 0;
		}
	} else {
		return -1;
	}
	/* IPv4 options, IPv6 extension headers: the general reader. */
	struct rxray_skb_hdrs h = {};
	rxray_skb_headers(head, nh, proto, &h);
	if (!h.l4_off)
		return -1;
	if (h.l4_proto == IPPROTO_TCP)
		k->tag = h.tcp_seq;
	else if (h.l4_proto == IPPROTO_UDP)
		k->tag = lat_udp_tag(h.udp_len, h.udp_csum, h.udp_first);
	else
		return -1;
	k->ip_ver = h.ip_ver;
	k->proto = h.l4_proto;
	__builtin_memcpy(k->saddr, h.saddr, 16);
	__builtin_memcpy(k->daddr, h.daddr, 16);
	k->sport = h.sport;
	k->dport = h.dport;
	return 0;
}

/* The key of a TCP skb on sk's receive queue, from what the stack already holds: the socket's
 * addresses (remote -> local, as the packets arrived) and TCP_SKB_CB(skb)->seq, the sequence number of
 * the skb's first byte (its first packet's, which XDP saw). No packet bytes are read. -1 when sk is
 * not a TCP socket or the skb is neither IPv4 nor IPv6. */
static __always_inline int lat_tcp_key(const struct sock *sk, const struct sk_buff *skb, struct rxray_lat_key *k)
{
	if (sk->sk_protocol != IPPROTO_TCP)
		return -1;
	__u16 proto = bpf_ntohs(skb->protocol);
	if (proto == RXRAY_SKB_ETH_P_IP) {
		k->ip_ver = 4;
		__u32 ra = sk->__sk_common.skc_daddr, la = sk->__sk_common.skc_rcv_saddr;
		__builtin_memcpy(k->saddr, &ra, 4);
		__builtin_memcpy(k->daddr, &la, 4);
	} else if (proto == RXRAY_SKB_ETH_P_IPV6) {
		k->ip_ver = 6;
		struct in6_addr ra = sk->__sk_common.skc_v6_daddr, la = sk->__sk_common.skc_v6_rcv_saddr;
		__builtin_memcpy(k->saddr, &ra, 16);
		__builtin_memcpy(k->daddr, &la, 16);
	} else {
		return -1;
	}
	k->proto = IPPROTO_TCP;
	k->sport = bpf_ntohs(sk->__sk_common.skc_dport);
	k->dport = sk->__sk_common.skc_num;
	k->tag = *(const __u32 *)skb->cb; /* struct tcp_skb_cb starts with seq */
	return 0;
}

static __always_inline const struct rxray_config *lat_config(void)
{
	__u32 zero = 0;
	const struct rxray_config *cfg = bpf_map_lookup_elem(&rxray_config, &zero);
	if (!cfg || !(cfg->features & RXRAY_FEAT_LATENCY))
		return NULL;
	return cfg;
}

/* UDP: datagrams are read in the order they were queued, one per recvmsg. Each UDP socket counts
 * the datagrams queued on it (sk_data_ready) and read from it (sock_recv_length, in the reading
 * task); a stamped datagram's stamp moves, when queued, to (socket, its queue number) and is
 * measured by the read with that number. A socket first seen with datagrams already waiting starts
 * its queue count after them. Two datagrams queued at the same moment from two CPUs may be numbered
 * in the opposite order of their queueing (their latencies are then swapped). */
struct rxray_lat_sock_key {
	__u64 sk;
	__u64 ino;  /* the socket's inode: a new socket at a reused address starts afresh */
};

struct rxray_lat_sock {
	__u64 queued;
	__u64 read;
};

struct rxray_lat_udp_key {
	struct rxray_lat_sock_key s;
	__u64 seq;
};

struct rxray_lat_pending {
	struct rxray_lat_key k; /* tag 0: the flow */
	__u32 _pad;
	__u64 arrival_ns;
	__u64 queued_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RXRAY_LAT_FLOWS_MAX);
	__type(key, struct rxray_lat_sock_key);
	__type(value, struct rxray_lat_sock);
} rxray_lat_udp_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RXRAY_LAT_ARRIVALS_MAX);
	__type(key, struct rxray_lat_udp_key);
	__type(value, struct rxray_lat_pending);
} rxray_lat_udp_queue SEC(".maps");

static __always_inline void lat_sock_key(const struct sock *sk, struct rxray_lat_sock_key *sk_key)
{
	sk_key->sk = (__u64)sk;
	sk_key->ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
}

static __always_inline int lat_udp_queued(const struct sock *sk, const struct rxray_config *cfg)
{
	struct rxray_lat_sock_key sk_key = {};
	lat_sock_key(sk, &sk_key);
	__u32 qlen = sk->sk_receive_queue.qlen;
	struct rxray_lat_sock *c = bpf_map_lookup_elem(&rxray_lat_udp_socks, &sk_key);
	if (!c) {
		/* Datagrams already waiting (both of UDP's queues, less this one) are read first. */
		__u32 backlog = qlen + BPF_CORE_READ((const struct udp_sock *)sk, reader_queue.qlen);
		struct rxray_lat_sock init = { .queued = backlog ? backlog - 1 : 0, .read = 0 };
		bpf_map_update_elem(&rxray_lat_udp_socks, &sk_key, &init, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&rxray_lat_udp_socks, &sk_key);
		if (!c)
			return 0;
	}
	__u64 seq = __sync_fetch_and_add(&c->queued, 1);
	if (!qlen)
		return 0; /* a reader took it before this ran: numbered, not measured */
	struct sk_buff *skb = sk->sk_receive_queue.prev;
	struct rxray_lat_key k = {};
	if (!skb || lat_skb_key(skb, &k))
		return 0;
	__u64 arr;
	struct rxray_lat_slot *sl = lat_find(&k, &arr);
	if (!sl)
		return 0;
	struct rxray_lat_pending p = {};
	p.k = k;
	p.k.tag = 0;
	p.arrival_ns = arr;
	p.queued_ns = rx_now(cfg);
	LAT_ONCE(sl->s.arrival_ns) = 0;
	struct rxray_lat_udp_key uk = { .s = sk_key, .seq = seq };
	bpf_map_update_elem(&rxray_lat_udp_queue, &uk, &p, BPF_ANY);
	lat_count(RXRAY_LC_QUEUED);
	return 0;
}

/* sk_data_ready(sk): an skb was just queued on sk; for TCP and UDP it is the receive queue's tail.
 * (A TCP segment coalesced into the tail finds the tail's stamp already set, and leaves it.) */
SEC("tp_btf/sk_data_ready")
int rxray_lat_queued(__u64 *ctx)
{
	const struct sock *sk = (const struct sock *)ctx[0];
	const struct rxray_config *cfg = lat_config();
	if (!cfg || !sk)
		return 0;
	__u16 family = sk->__sk_common.skc_family;
	if (family != AF_INET_ && family != AF_INET6_)
		return 0;
	__u16 proto = sk->sk_protocol;
	if (proto == IPPROTO_UDP)
		return lat_udp_queued(sk, cfg);
	if (proto != IPPROTO_TCP || !sk->sk_receive_queue.qlen)
		return 0;
	struct sk_buff *skb = sk->sk_receive_queue.prev;
	struct rxray_lat_key k = {};
	if (!skb || lat_tcp_key(sk, skb, &k))
		return 0;
	__u64 arr;
	struct rxray_lat_slot *sl = lat_find(&k, &arr);
	if (!sl || sl->s.queued_ns)
		return 0;
	sl->s.queued_ns = rx_now(cfg);
	lat_count(RXRAY_LC_QUEUED);
	return 0;
}

static __always_inline __u32 lat_bucket(__u64 v)
{
	if (v < 4)
		return v;
	__u64 x = v;
	__u32 o = 0;
	if (x >> 32) { x >>= 32; o += 32; }
	if (x >> 16) { x >>= 16; o += 16; }
	if (x >> 8) { x >>= 8; o += 8; }
	if (x >> 4) { x >>= 4; o += 4; }
	if (x >> 2) { x >>= 2; o += 2; }
	if (x >> 1) { o += 1; }
	__u32 i = (o - 1) * 4 + ((v >> (o - 2)) & 3);
	return i < RXRAY_LAT_BUCKETS ? i : RXRAY_LAT_BUCKETS - 1;
}

static __always_inline void lat_add(struct rxray_lat_hist *h, __u64 rd, __u64 qd, int queued, __u64 now)
{
	h->reads++;
	h->read_sum_ns += rd;
	if (rd > h->read_max_ns)
		h->read_max_ns = rd;
	h->last_ns = now;
	__u32 i = lat_bucket(rd);
	if (i < RXRAY_LAT_BUCKETS)
		h->read[i]++;
	if (!queued)
		return;
	h->queued++;
	h->queue_sum_ns += qd;
	if (qd > h->queue_max_ns)
		h->queue_max_ns = qd;
	i = lat_bucket(qd);
	if (i < RXRAY_LAT_BUCKETS)
		h->queue[i]++;
}

/* The slot of key (klen bytes, a multiple of 4) in the index table ix of n slots (a power of two),
 * claimed when missing; -1 when its RXRAY_LAT_PROBES slots from h hold other keys. Every slot of ix
 * is a __u64 state (RXRAY_LAT_REF_*) followed by the key (struct rxray_lat_flow_ref, _proc_ref). */
static __always_inline int lat_ref_slot(void *ix, __u32 n, __u64 h, const void *key, const int klen)
{
	__u32 base = (__u32)(h >> 32);
	for (__u32 p = 0; p < RXRAY_LAT_PROBES; p++) {
		__u32 i = (base + p) & (n - 1);
		__u64 *r = bpf_map_lookup_elem(ix, &i);
		if (!r)
			return -1;
		if (LAT_ONCE(*r) == RXRAY_LAT_REF_FREE &&
		    __sync_val_compare_and_swap(r, RXRAY_LAT_REF_FREE, RXRAY_LAT_REF_BUSY) == RXRAY_LAT_REF_FREE) {
			__builtin_memcpy(r + 1, key, klen);
			__sync_fetch_and_add(r, 1); /* BUSY -> READY, after the key */
			return i;
		}
		if (LAT_ONCE(*r) != RXRAY_LAT_REF_READY)
			continue; /* free but just taken, or a key being written: the next slot */
		const __u32 *x = (const __u32 *)(r + 1), *y = key;
		__u32 d = 0;
#pragma unroll
		for (int w = 0; w < klen / 4; w++)
			d |= x[w] ^ y[w];
		if (!d)
			return i;
	}
	return -1;
}

/* A flow's slot (key tag 0). */
static __always_inline int lat_flow_slot(const struct rxray_lat_key *fk)
{
	return lat_ref_slot(&rxray_lat_flow_ix, RXRAY_LAT_FLOWS_MAX, lat_key_hash(fk), fk, sizeof(*fk));
}

/* A reading process's slot. */
static __always_inline int lat_proc_slot(const struct rxray_lat_proc_key *pk)
{
	__u64 h = (((__u64)pk->tgid * 0x9e3779b97f4a7c15ULL) ^ pk->cgroup_id) * 0xff51afd7ed558ccdULL;
	return lat_ref_slot(&rxray_lat_proc_ix, RXRAY_LAT_PROCS_MAX, h, pk, sizeof(*pk));
}

/* Adds one measured packet (arrival, queue stamp or 0, read now) to its flow's and the current
 * task's histograms. fk is the packet's key with tag 0. */
static __always_inline void lat_record(struct rxray_lat_key *fk, __u64 arr, __u64 q, __u64 now)
{
	lat_count(RXRAY_LC_READ);
	__u64 rd = now > arr ? now - arr : 0;
	__u64 qd = q > arr ? q - arr : 0;
	struct rxray_lat_hist *h = NULL;
	int s = lat_flow_slot(fk);
	if (s >= 0) {
		__u32 i = s;
		h = bpf_map_lookup_elem(&rxray_lat_flows, &i);
	}
	if (h)
		lat_add(h, rd, qd, q != 0, now);
	else
		lat_count(RXRAY_LC_FLOW_FAIL);

	struct rxray_lat_proc_key pk = {};
	pk.tgid = bpf_get_current_pid_tgid() >> 32;
	pk.cgroup_id = bpf_get_current_cgroup_id();
	h = NULL;
	s = lat_proc_slot(&pk);
	if (s >= 0) {
		__u32 i = s;
		h = bpf_map_lookup_elem(&rxray_lat_procs, &i);
	}
	if (h) {
		if (!h->comm[0])
			bpf_get_current_comm(h->comm, sizeof(h->comm));
		lat_add(h, rd, qd, q != 0, now);
	} else {
		lat_count(RXRAY_LC_PROC_FAIL);
	}
}

/* The read stage of a TCP skb, in the reading task: measures its stamp, if any, and consumes it. */
static __always_inline int lat_read(const struct sk_buff *skb)
{
	const struct rxray_config *cfg = lat_config();
	if (!cfg || !skb)
		return 0;
	/* A TCP receive-queue skb is owned by its socket (skb_set_owner_r); anything else (UDP, unix,
	 * netlink copies) leaves here after a few loads. */
	const struct sock *sk = skb->sk;
	if (!sk)
		return 0;
	__u16 family = sk->__sk_common.skc_family;
	if (family != AF_INET_ && family != AF_INET6_)
		return 0;
	struct rxray_lat_key k = {};
	if (lat_tcp_key(sk, skb, &k))
		return 0;
	/* Only the copy that starts at the skb's first byte is its first read: the socket's copied_seq
	 * (advanced after each copy) is then the skb's seq. A later piece leaves without its stamp. */
	__u32 copied = 0;
	if (bpf_probe_read_kernel(&copied, sizeof(copied), (const char *)sk + bpf_core_field_offset(struct tcp_sock, copied_seq)) ||
	    copied != k.tag)
		return 0;
	__u64 arr;
	struct rxray_lat_slot *sl = lat_find(&k, &arr);
	if (!sl)
		return 0;
	__u64 q = sl->s.queued_ns;
	LAT_ONCE(sl->s.arrival_ns) = 0; /* consumed: a later read of the same skb is not measured again */
	k.tag = 0;
	lat_record(&k, arr, q, rx_now(cfg));
	return 0;
}

/* skb_copy_datagram_iovec(skb, len): recvmsg copying skb, in the reading task. Used for TCP only:
 * UDP copies whose checksum is verified on the way (veth with XDP, NICs without receive checksum
 * offload) never reach this tracepoint, so UDP is read through the socket's FIFO below. */
SEC("tp_btf/skb_copy_datagram_iovec")
int rxray_lat_read(__u64 *ctx)
{
	return lat_read((const struct sk_buff *)ctx[0]);
}

/* sock_recv_length(sk, ret, flags): after every recvmsg, in the reading task. UDP: one datagram was
 * read (unless it failed or only peeked): the next in the socket's queue order. */
SEC("tp_btf/sock_recv_length")
int rxray_lat_udp_read(__u64 *ctx)
{
	const struct sock *sk = (const struct sock *)ctx[0];
	int ret = (int)ctx[1];
	int flags = (int)ctx[2];
	const struct rxray_config *cfg = lat_config();
	if (!cfg || !sk || ret < 0 || (flags & 2 /* MSG_PEEK */))
		return 0;
	if (sk->sk_protocol != IPPROTO_UDP)
		return 0;
	struct rxray_lat_sock_key sk_key = {};
	lat_sock_key(sk, &sk_key);
	struct rxray_lat_sock *c = bpf_map_lookup_elem(&rxray_lat_udp_socks, &sk_key);
	if (!c)
		return 0;
	struct rxray_lat_udp_key uk = { .s = sk_key, .seq = __sync_fetch_and_add(&c->read, 1) };
	struct rxray_lat_pending *p = bpf_map_lookup_elem(&rxray_lat_udp_queue, &uk);
	if (!p)
		return 0;
	struct rxray_lat_key fk = p->k;
	__u64 arr = p->arrival_ns;
	__u64 q = p->queued_ns;
	bpf_map_delete_elem(&rxray_lat_udp_queue, &uk);
	lat_record(&fk, arr, q, rx_now(cfg));
	return 0;
}
