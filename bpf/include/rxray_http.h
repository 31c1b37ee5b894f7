/* HTTP payload copies (RXRAY_FEAT_HTTP): TCP segments to or from the configured ports go to the
 * rxray_http ring, from XDP on ingress (rxray_http_xdp, called by rxray_xdp) and from the TC egress
 * program rxray_http_egress. Structs and constants are in rxray.h; included by xdp_ingress.bpf.c. */
#ifndef RXRAY_HTTP_H
#define RXRAY_HTTP_H

#define RXRAY_TC_ACT_OK 0
#define RXRAY_HTTP_WAKE_BYTES (256 * 1024) /* wake the reader once this much waits (it also polls) */

/* Pinned with the firewall's maps (RXRAY_PINNING), so an observer that adopts the firewall's program
 * (alerts --enforce --port) shares its config and ring with the ingress side that program runs. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	RXRAY_PINNING
	__uint(max_entries, 1 << 12); /* resized by the loader */
} rxray_http SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_http_cfg);
} rxray_http_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_http_stats);
} rxray_http_stats SEC(".maps");

/* Per-CPU staging for one record (the ring takes variable-size records by copy). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_http_chunk);
} rxray_http_stage SEC(".maps");

/* Bytes of the current message copied so far, per flow direction. LRU: a forgotten flow only
 * starts a fresh budget (more is copied, never less). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	RXRAY_PINNING
	__uint(max_entries, RXRAY_HTTP_FLOWS_MAX);
	__type(key, struct rxray_http_key);
	__type(value, __u32);
} rxray_http_flows SEC(".maps");

static __always_inline int http_watched(const struct rxray_http_cfg *hc, __u16 sport, __u16 dport)
{
	int i;
	for (i = 0; i < RXRAY_HTTP_MAX_PORTS; i++) {
		if (i >= hc->nports)
			break;
		if (hc->ports[i] == sport || hc->ports[i] == dport)
			return 1;
	}
	return 0;
}

#define HTTP_W(a, b, c, d) ((__u32)(a) | (__u32)(b) << 8 | (__u32)(c) << 16 | (__u32)(d) << 24)

/* A message head starts with a method or "HTTP": its first four bytes (as loaded) say so. */
static __always_inline int http_head_word(__u32 w)
{
	return w == HTTP_W('G', 'E', 'T', ' ') || w == HTTP_W('P', 'O', 'S', 'T') || w == HTTP_W('P', 'U', 'T', ' ') ||
	       w == HTTP_W('H', 'E', 'A', 'D') || w == HTTP_W('D', 'E', 'L', 'E') || w == HTTP_W('P', 'A', 'T', 'C') ||
	       w == HTTP_W('O', 'P', 'T', 'I') || w == HTTP_W('H', 'T', 'T', 'P') || w == HTTP_W('C', 'O', 'N', 'N') ||
	       w == HTTP_W('T', 'R', 'A', 'C');
}

/* HTTP/2 interleaves its streams' frames, so no message budget applies: a flow whose client sent
 * the preface ("PRI * HTTP/2.0") is copied whole, both ways, marked by this bit of its entry. */
#define RXRAY_HTTP_ALL 0x80000000u

static __always_inline void http_copy_all(const struct rxray_http_key *k)
{
	struct rxray_http_key r = { .sport = k->dport, .dport = k->sport, .ip_ver = k->ip_ver };
	__u32 all = RXRAY_HTTP_ALL;
	__builtin_memcpy(r.saddr, k->daddr, 16);
	__builtin_memcpy(r.daddr, k->saddr, 16);
	bpf_map_update_elem(&rxray_http_flows, k, &all, BPF_ANY);
	bpf_map_update_elem(&rxray_http_flows, &r, &all, BPF_ANY);
}

/* Payload bytes of this segment to copy: what is left of its message's budget (a head renews it;
 * the HTTP/2 preface turns the budget off for the flow, both ways). */
static __always_inline __u32 http_take(struct rxray_http_key *k, __u32 plen, __u32 w4, __u8 flags,
				       const struct rxray_http_cfg *hc)
{
	__u32 budget = hc->budget;
	int head = plen >= 4 && http_head_word(w4);
	if (flags & 0x05) { /* FIN or RST: the flow is done */
		bpf_map_delete_elem(&rxray_http_flows, k);
		if (head)
			return plen < budget ? plen : budget;
	}
	if (plen == 0)
		return 0;
	if (plen >= 4 && w4 == HTTP_W('P', 'R', 'I', ' ') && !(flags & 0x05)) {
		http_copy_all(k);
		return plen;
	}
	__u32 *used = bpf_map_lookup_elem(&rxray_http_flows, k);
	if (used && (*used & RXRAY_HTTP_ALL))
		return plen;
	__u32 u = (used && !head) ? *used : 0;
	__u32 take = u < budget ? budget - u : 0;
	if (take > plen)
		take = plen;
	__u32 nu = u + plen;
	if (nu < u || nu >= RXRAY_HTTP_ALL)
		nu = RXRAY_HTTP_ALL - 1;
	if (used)
		*used = nu;
	else if (!(flags & 0x05))
		bpf_map_update_elem(&rxray_http_flows, k, &nu, BPF_ANY);
	return take;
}

struct http_walk {
	void *ctx;
	struct rxray_http_chunk *c;
	__u32 poff;   /* payload start in the packet */
	__u32 take;   /* payload bytes to copy */
	__u32 records;
	__u32 lost;
	__u32 lost_bytes;
};

static __always_inline __u64 http_wake(void)
{
	return bpf_ringbuf_query(&rxray_http, BPF_RB_AVAIL_DATA) >= RXRAY_HTTP_WAKE_BYTES ? BPF_RB_FORCE_WAKEUP
											    : BPF_RB_NO_WAKEUP;
}

/* One record per bpf_loop step: stage a chunk, then copy it into the ring at its exact size. */
#define RXRAY_HTTP_STEP(NAME, CTX_T, LOAD)                                                      \
	static long NAME(__u32 i, void *arg)                                                     \
	{                                                                                        \
		struct http_walk *w = arg;                                                       \
		struct rxray_http_chunk *c = w->c;                                               \
		__u32 off = i * RXRAY_HTTP_CHUNK;                                                \
		if (off >= w->take)                                                              \
			return 1;                                                                \
		__u64 n = w->take - off;                                                         \
		if (n > RXRAY_HTTP_CHUNK)                                                        \
			n = RXRAY_HTTP_CHUNK;                                                    \
		asm volatile("" : "+r"(n));                                                      \
		if (n == 0)                                                                      \
			return 1;                                                                \
		if (LOAD((CTX_T *)w->ctx, w->poff + off, c->data, n) < 0) {                      \
			w->lost++;                                                               \
			w->lost_bytes += w->take - off;                                          \
			return 1;                                                                \
		}                                                                                \
		c->h.offset = off;                                                               \
		c->h.len = n;                                                                    \
		c->h.last = off + n >= w->take;                                                  \
		__u64 size = sizeof(struct rxray_http_hdr) + n;                                  \
		asm volatile("" : "+r"(size));                                                   \
		if (size > sizeof(*c))                                                           \
			return 1;                                                                \
		if (bpf_ringbuf_output(&rxray_http, c, size, http_wake()) < 0) {                 \
			w->lost++;                                                               \
			w->lost_bytes += n;                                                      \
			return 0;                                                                \
		}                                                                                \
		w->records++;                                                                    \
		return 0;                                                                        \
	}

#ifndef RXRAY_TC
RXRAY_HTTP_STEP(http_step_xdp, struct xdp_md, bpf_xdp_load_bytes)
#endif
RXRAY_HTTP_STEP(http_step_skb, struct __sk_buff, bpf_skb_load_bytes)

/* Writes the staged header (fields but the sizes already set) and the payload's records; counts. */
static __always_inline void http_emit(void *ctx, long (*step)(__u32, void *), struct rxray_http_chunk *c,
				      struct rxray_http_stats *st, __u32 poff, __u32 plen, __u32 take)
{
	__u32 walk = plen < RXRAY_HTTP_MAX_PAYLOAD ? plen : RXRAY_HTTP_MAX_PAYLOAD;
	if (take > walk)
		take = walk;
	st->c[RXRAY_HC_SEGMENTS]++;
	st->c[RXRAY_HC_BYTES_BUDGET] += walk - take;
	st->c[RXRAY_HC_BYTES_UNWALKED] += plen - walk;
	c->h.payload_len = plen;
	c->h.copy_len = take;
	c->h._pad = 0;
	c->h._pad2 = 0;
	if (take == 0) {
		c->h.offset = 0;
		c->h.len = 0;
		c->h.last = 1;
		if (bpf_ringbuf_output(&rxray_http, c, sizeof(struct rxray_http_hdr), http_wake()) < 0)
			st->c[RXRAY_HC_RECORDS_LOST]++;
		else
			st->c[RXRAY_HC_RECORDS]++;
		return;
	}
	struct http_walk w = { .ctx = ctx, .c = c, .poff = poff, .take = take };
	bpf_loop(RXRAY_HTTP_MAX_PAYLOAD / RXRAY_HTTP_CHUNK, step, &w, 0);
	st->c[RXRAY_HC_RECORDS] += w.records;
	st->c[RXRAY_HC_RECORDS_LOST] += w.lost;
	st->c[RXRAY_HC_BYTES_LOST] += w.lost_bytes;
	st->c[RXRAY_HC_BYTES_COPIED] += take - w.lost_bytes;
}

/* Ingress: the segment rxray_xdp (or, in the TC build, rxray_tc) just parsed into e. */
#ifdef RXRAY_TC
#define http_step_in http_step_skb
#else
#define http_step_in http_step_xdp
#endif
__noinline int rxray_http_xdp(RX_CTX *ctx, struct rxray_pkt_event *e, __u64 now)
{
	__u32 zero = 0;
	if (!ctx || !e)
		return 0;
	if (!(e->layers & RXRAY_L_TCP) || (e->layers & RXRAY_L_FRAG))
		return 0;
	struct rxray_http_cfg *hc = bpf_map_lookup_elem(&rxray_http_config, &zero);
	struct rxray_http_stats *st = bpf_map_lookup_elem(&rxray_http_stats, &zero);
	struct rxray_http_chunk *c = bpf_map_lookup_elem(&rxray_http_stage, &zero);
	if (!hc || !st || !c || !http_watched(hc, e->sport, e->dport))
		return 0;
	__u32 plen = e->l4_len > e->tcp_hdr_len ? e->l4_len - e->tcp_hdr_len : 0;
	c->h.ts_ns = now;
	c->h.ifindex = ctx->ingress_ifindex;
	c->h.dir = 0;
	c->h.ip_ver = e->ip_ver;
	c->h.tcp_flags = e->tcp_flags;
	__builtin_memcpy(c->h.saddr, e->saddr, 16);
	__builtin_memcpy(c->h.daddr, e->daddr, 16);
	c->h.sport = e->sport;
	c->h.dport = e->dport;
	c->h.seq = e->tcp_seq;
	c->h.ack = e->tcp_ack;
	struct rxray_http_key k = { .sport = e->sport, .dport = e->dport, .ip_ver = e->ip_ver };
	__builtin_memcpy(k.saddr, e->saddr, 16);
	__builtin_memcpy(k.daddr, e->daddr, 16);
	__u32 w4 = 0;
	if (plen >= 4 && rx_load_bytes(ctx, e->payload_off, &w4, 4) < 0)
		w4 = 0;
	__u32 take = http_take(&k, plen, w4, e->tcp_flags, hc);
	http_emit(ctx, http_step_in, c, st, e->payload_off, plen, take);
	return 0;
}

/* Egress: parse Ethernet (one optional 802.1Q tag), IPv4 or IPv6 (no extension headers), TCP. */
SEC("classifier")
int rxray_http_egress(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct rxray_config *cfg = bpf_map_lookup_elem(&rxray_config, &zero);
	if (!cfg || !(cfg->features & RXRAY_FEAT_HTTP))
		return RXRAY_TC_ACT_OK;
	struct rxray_http_cfg *hc = bpf_map_lookup_elem(&rxray_http_config, &zero);
	struct rxray_http_stats *st = bpf_map_lookup_elem(&rxray_http_stats, &zero);
	struct rxray_http_chunk *c = bpf_map_lookup_elem(&rxray_http_stage, &zero);
	if (!hc || !st || !c)
		return RXRAY_TC_ACT_OK;
	__u16 proto;
	__u32 off = 14;
	if (bpf_skb_load_bytes(skb, 12, &proto, 2) < 0)
		return RXRAY_TC_ACT_OK;
	proto = bpf_ntohs(proto);
	if (proto == ETH_P_8021Q) {
		if (bpf_skb_load_bytes(skb, 16, &proto, 2) < 0)
			return RXRAY_TC_ACT_OK;
		proto = bpf_ntohs(proto);
		off = 18;
	}
	struct rxray_http_key k = {};
	__u32 end, l4;
	if (proto == ETH_P_IP) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) < 0 || ip.version != 4 || ip.ihl < 5)
			goto unparsed;
		if (ip.protocol != IPPROTO_TCP || (bpf_ntohs(ip.frag_off) & 0x3fff))
			return RXRAY_TC_ACT_OK;
		__u32 tot = bpf_ntohs(ip.tot_len);
		end = tot ? off + tot : skb->len; /* 0: a GSO packet over 64 KiB */
		l4 = off + ip.ihl * 4;
		k.ip_ver = 4;
		__builtin_memcpy(k.saddr, &ip.saddr, 4);
		__builtin_memcpy(k.daddr, &ip.daddr, 4);
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)) < 0 || ip6.version != 6)
			goto unparsed;
		if (ip6.nexthdr != IPPROTO_TCP) {
			if (ipv6_ext(ip6.nexthdr))
				goto unparsed;
			return RXRAY_TC_ACT_OK;
		}
		__u32 pl = bpf_ntohs(ip6.payload_len);
		end = pl ? off + 40 + pl : skb->len;
		l4 = off + 40;
		k.ip_ver = 6;
		__builtin_memcpy(k.saddr, &ip6.saddr, 16);
		__builtin_memcpy(k.daddr, &ip6.daddr, 16);
	} else {
		return RXRAY_TC_ACT_OK;
	}
	struct tcphdr th;
	if (bpf_skb_load_bytes(skb, l4, &th, sizeof(th)) < 0 || th.doff < 5)
		goto unparsed;
	k.sport = bpf_ntohs(th.source);
	k.dport = bpf_ntohs(th.dest);
	if (!http_watched(hc, k.sport, k.dport))
		return RXRAY_TC_ACT_OK;
	__u8 flags = ((__u8 *)&th)[13];
	__u32 poff = l4 + th.doff * 4;
	if (end > skb->len)
		end = skb->len;
	__u32 plen = end > poff ? end - poff : 0;
	c->h.ts_ns = rx_now(cfg);
	c->h.ifindex = skb->ifindex;
	c->h.dir = 1;
	c->h.ip_ver = k.ip_ver;
	c->h.tcp_flags = flags;
	__builtin_memcpy(c->h.saddr, k.saddr, 16);
	__builtin_memcpy(c->h.daddr, k.daddr, 16);
	c->h.sport = k.sport;
	c->h.dport = k.dport;
	c->h.seq = bpf_ntohl(th.seq);
	c->h.ack = bpf_ntohl(th.ack_seq);
	__u32 w4 = 0;
	if (plen >= 4 && bpf_skb_load_bytes(skb, poff, &w4, 4) < 0)
		w4 = 0;
	__u32 take = http_take(&k, plen, w4, flags, hc);
	http_emit(skb, http_step_skb, c, st, poff, plen, take);
	return RXRAY_TC_ACT_OK;
unparsed:
	st->c[RXRAY_HC_UNPARSED]++;
	return RXRAY_TC_ACT_OK;
}

#endif
