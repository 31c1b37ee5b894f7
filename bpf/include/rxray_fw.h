/* rxray's XDP firewall: dynamic blocks, ordered rules with rate limits, default action.
 * Include once in xdp_ingress.bpf.c, after rxray.h and bpf_helpers.h (it defines the maps).
 * The structures and the evaluation order are described in rxray.h; user space (rxray-engine's
 * firewall module) compiles rules into these maps and decides what every entry means.
 *
 * Packets whose L4 is unknown (later fragments whose first fragment was not seen, truncated or
 * malformed L4 headers, IPv6 header chains longer than rxray walks) never slip past a rule:
 * a deny or limit rule that tests protocol, ports or flags matches them, an allow rule does not.
 * IP packets whose addresses cannot be read (truncated headers) meet only drop_malformed. */
#ifndef RXRAY_FW_H
#define RXRAY_FW_H

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rxray_fw_active SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct rxray_fw_set);
} rxray_fw_sets SEC(".maps");

/* IPv4 source classes by /24, one generation after the other: byte (gen << 24 | a24), so the live
 * generation is 16 MiB of contiguous memory. Memory-mapped by
 * user space (written in place); one entry until the loader sizes it for the firewall. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} rxray_fw_v4 SEC(".maps");

/* IPv6 source length filter (see enum rxray_fw_v6_hash), one generation after the other: byte
 * (gen << RXRAY_FW_V6_BITS | slot), 4 MiB each. Memory-mapped by user space; one entry until sized. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} rxray_fw_v6 SEC(".maps");

/* The prefix tables, one per generation (see struct rxray_fw_pbucket): user space creates each
 * one sized for its rule set, fills it through a memory mapping and puts it here before the flip. */
struct rxray_fw_ptable {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	/* Sizes, not types: the BTF of a map inside a map would only forward-declare the bucket. */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct rxray_fw_pbucket));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	RXRAY_PINNING
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct rxray_fw_ptable);
} rxray_fw_lpm SEC(".maps");

/* Rule bitmask per class: [gen][field][class]. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 2 * 2 * RXRAY_FW_CLASSES);
	__type(key, __u32);
	__type(value, __u64);
} rxray_fw_classes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 2 * RXRAY_FW_RULES);
	__type(key, __u32);
	__type(value, struct rxray_fw_rule);
} rxray_fw_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 2 * RXRAY_FW_SLOTS);
	__type(key, __u32);
	__type(value, struct rxray_fw_counter);
} rxray_fw_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rxray_fw_block_key);
	__type(value, struct rxray_fw_block);
} rxray_fw_blocks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_fw_block_lens);
} rxray_fw_block_lens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rxray_fw_dlimit_key);
	__type(value, struct rxray_fw_dlimit);
} rxray_fw_dlimits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rxray_fw_block_key);
	__type(value, struct rxray_fw_slimit);
} rxray_fw_slimits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__type(key, struct rxray_fw_bucket_key);
	__type(value, struct rxray_fw_bucket);
} rxray_fw_buckets SEC(".maps");

/* The last decision (slot << 8 | action), written only while the clock is simulated (replay). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rxray_fw_last SEC(".maps");

/* Index of the lowest set bit (x != 0), by de Bruijn multiplication. */
static const __u8 fw_debruijn[64] = {
	0,  1,  48, 2,  57, 49, 28, 3,  61, 58, 50, 42, 38, 29, 17, 4,  62, 55, 59, 36, 53, 51,
	43, 22, 45, 39, 33, 30, 24, 18, 12, 5,  63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21,
	44, 32, 23, 11, 46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9,  13, 8,  7,  6,
};

static __always_inline __u32 fw_ctz(__u64 x)
{
	return fw_debruijn[((x & -x) * 0x03f79d71b4cb0a89ULL) >> 58];
}

/* addr masked to its first len bits, as four big-endian words. */
static __always_inline void fw_mask(__u32 *out, const __u32 *addr, __u32 len)
{
#pragma unroll
	for (int w = 0; w < 4; w++) {
		__s32 bits = (__s32)len - 32 * w;
		__u32 m = bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : ~(0xffffffffU >> bits);
		out[w] = addr[w] & bpf_htonl(m);
	}
}

struct fw_pkt {
	__u32 saddr[4];
	__u32 daddr[4];
	__u64 now;       /* the clock, read at most once (0 until read) */
	__u64 coarse;    /* coarse clock for expiry and last-hit times */
	__u64 clock;     /* rxray_config.clock_ns (simulation), 0 for the real clocks */
	__u64 smask;
	__u64 dmask;
	__u32 len;
	__u32 gen;
	__u16 sport;
	__u16 dport;
	__u8 ver;
	__u8 proto;
	__u8 flags;
	__u8 l4_known;
	__u32 verdict;   /* RXRAY_FWA_*, 0 while undecided */
	__u32 slot;      /* counter slot that decided */
	__u32 rule_ix;   /* loop state: rules tried */
};

static __always_inline __u64 fw_precise(struct fw_pkt *p)
{
	if (!p->now)
		p->now = p->clock ? p->clock : bpf_ktime_get_ns();
	return p->now;
}

/* One probe of rxray_fw_lpm: the masked address, len | tag << 8, the generation, its bucket count. */
struct fw_pkey {
	__u32 w[4];
	__u32 meta;
	__u32 gen;
	__u32 nb;
};

/* Longest prefix of addr in rxray_fw_lpm for (gen, field, ver): its class, or dflt. */
struct fw_lpm {
	struct fw_pkey pk;
	const __u32 *addr;
	__u8 lens[RXRAY_FW_LENS];
	__u32 n;
	__u32 cls;
	__u32 present;   /* lens indexes to probe, as a rxray_fw_v6 byte (0xff: all) */
	__u32 tag;       /* 0x80 | field << 1 | is_v6 */
};

/* The home bucket of (w0..w3, meta) in a table of nb home buckets (RXRAY_FW_PK*). */
static __always_inline __u32 fw_phome(__u32 w0, __u32 w1, __u32 w2, __u32 w3, __u32 meta, __u32 nb)
{
	__u64 x = (__u64)w0 | (__u64)w1 << 32;
	__u64 y = (__u64)w2 | (__u64)w3 << 32;
	__u64 z = x * RXRAY_FW_PK1 ^ y * RXRAY_FW_PK2 ^ (__u64)meta * RXRAY_FW_PK3;
	z ^= z >> 29;
	z *= RXRAY_FW_PK1;
	return ((z >> 32) * nb) >> 32;
}

/* The prefix table of k's generation (NULL without k or table). */
static __always_inline void *fw_ptable_of(const struct fw_pkey *k)
{
	if (!k)
		return NULL;
	__u32 gen = k->gen;
	return bpf_map_lookup_elem(&rxray_fw_lpm, &gen);
}

/* The class of the prefix k in the table, or -1 (see struct rxray_fw_pbucket). A global function, so
 * the verifier checks its loop once rather than at every length of every caller. */
__noinline int rxray_fw_pget(const struct fw_pkey *k)
{
	void *t = fw_ptable_of(k);
	if (!t)
		return -1;
	__u32 w0 = k->w[0], w1 = k->w[1], w2 = k->w[2], w3 = k->w[3], meta = k->meta;
	/* The table has RXRAY_FW_PROBES - 1 buckets past the last home bucket: no wrap. */
	__u32 b = fw_phome(w0, w1, w2, w3, meta, k->nb);
	for (int j = 0; j < RXRAY_FW_PROBES; j++) {
		__u32 ix = b + j;
		struct rxray_fw_pbucket *bk = bpf_map_lookup_elem(t, &ix);
		if (!bk)
			return -1;
		__u32 d0 = (bk->addr[0][0] ^ w0) | (bk->addr[0][1] ^ w1) | (bk->addr[0][2] ^ w2) | (bk->addr[0][3] ^ w3) |
			   ((bk->len[0] | (__u32)bk->tag[0] << 8) ^ meta);
		__u32 d1 = (bk->addr[1][0] ^ w0) | (bk->addr[1][1] ^ w1) | (bk->addr[1][2] ^ w2) | (bk->addr[1][3] ^ w3) |
			   ((bk->len[1] | (__u32)bk->tag[1] << 8) ^ meta);
		__u32 d2 = (bk->addr[2][0] ^ w0) | (bk->addr[2][1] ^ w1) | (bk->addr[2][2] ^ w2) | (bk->addr[2][3] ^ w3) |
			   ((bk->len[2] | (__u32)bk->tag[2] << 8) ^ meta);
		if (!d0)
			return bk->cls[0];
		if (!d1)
			return bk->cls[1];
		if (!d2)
			return bk->cls[2];
		if (!bk->tag[RXRAY_FW_PSLOTS - 1])
			return -1;
	}
	return -1;
}

/* The first `bits` bits of a 32-bit word, in network order (bits may be <= 0 or >= 32). */
static __always_inline __u32 fw_m32(__s32 bits)
{
	if (bits <= 0)
		return 0;
	if (bits >= 32)
		return 0xffffffff;
	return bpf_htonl(~(0xffffffffU >> bits));
}

/* The grouped source prefixes holding k->w (the source; k->meta: the group tag | GL << 8): the class
 * of the longest, -1 when none, -2 when the group is too big and marked (see struct rxray_fw_pbucket). */
__noinline int rxray_fw_pgroup(const struct fw_pkey *k)
{
	void *t = fw_ptable_of(k);
	if (!t)
		return -1;
	__u32 w0 = k->w[0], w1 = k->w[1], w2 = k->w[2], w3 = k->w[3], tag = k->meta & 0xff, gl = (k->meta >> 8) & 63;
	__u32 mgl = fw_m32(gl);
	__u32 b = fw_phome(w0 & mgl, 0, 0, 0, gl | tag << 8, k->nb);
	int best = -1;
	__u32 blen = 0;
	for (int j = 0; j < RXRAY_FW_PROBES; j++) {
		__u32 ix = b + j;
		struct rxray_fw_pbucket *bk = bpf_map_lookup_elem(t, &ix);
		if (!bk)
			return best;
#pragma unroll
		for (int s = 0; s < RXRAY_FW_PSLOTS; s++) {
			if (bk->tag[s] != tag || (bk->addr[s][0] & mgl) != (w0 & mgl))
				continue;
			__s32 len = bk->len[s];
			if (!len)
				return -2;
			if ((__u32)len <= blen)
				continue;
			__u32 d = ((w0 & fw_m32(len)) ^ bk->addr[s][0]) | ((w1 & fw_m32(len - 32)) ^ bk->addr[s][1]) | ((w2 & fw_m32(len - 64)) ^ bk->addr[s][2]) |
				  ((w3 & fw_m32(len - 96)) ^ bk->addr[s][3]);
			if (d)
				continue;
			best = bk->cls[s];
			blen = len;
		}
		if (!bk->tag[RXRAY_FW_PSLOTS - 1])
			return best;
	}
	return best;
}

static long fw_lpm_step(__u32 i, void *arg)
{
	struct fw_lpm *l = arg;
	if (i >= l->n || i >= RXRAY_FW_LENS)
		return 1;
	__u32 ix = i & (RXRAY_FW_LENS - 1);
	asm volatile("" : "+r"(ix));
	if (!(l->present & (1U << (ix < 7 ? ix : 7))))
		return 0;
	__u32 len = l->lens[ix & (RXRAY_FW_LENS - 1)];
	fw_mask(l->pk.w, l->addr, len);
	l->pk.meta = len | l->tag << 8;
	int c = rxray_fw_pget(&l->pk);
	if (c >= 0) {
		l->cls = c;
		return 1;
	}
	return 0;
}

static __always_inline __u32 fw_classify(const struct rxray_fw_set *set, __u32 gen, __u32 field, __u8 ver,
					 const __u32 *addr, __u32 dflt, __u32 present)
{
	__u32 vi = ver == 6;
	__u32 n = set->nlens[field & 1][vi];
	if (!n || !present)
		return dflt;
	struct fw_lpm l = {};
	l.pk.gen = gen;
	l.pk.nb = set->pbuckets;
	l.tag = 0x80 | (field & 1) << 1 | vi;
	l.addr = addr;
	__builtin_memcpy(l.lens, set->lens[field & 1][vi], RXRAY_FW_LENS);
	l.n = n;
	l.cls = dflt;
	l.present = present;
	bpf_loop(RXRAY_FW_LENS, fw_lpm_step, &l, 0);
	return l.cls;
}

static __always_inline __u64 fw_class_mask(__u32 gen, __u32 field, __u32 cls)
{
	__u32 k = (gen * 2 + field) * RXRAY_FW_CLASSES + (cls & (RXRAY_FW_CLASSES - 1));
	__u64 *m = bpf_map_lookup_elem(&rxray_fw_classes, &k);
	return m ? *m : 0;
}

/* Generic cell rate algorithm on one timestamp: conforming when the bucket's theoretical arrival time
 * is at most burst intervals ahead of now; then it advances by this packet's interval. */
static __always_inline int fw_gcra(__u64 *tat, __u64 now, __u64 interval, __u64 tolerance)
{
	for (int i = 0; i < 4; i++) {
		__u64 old = *(volatile __u64 *)tat;
		__u64 t = old > now ? old : now;
		if (t - now > tolerance)
			return 0;
		if (__sync_val_compare_and_swap(tat, old, t + interval) == old)
			return 1;
	}
	return 1; /* heavy contention: let it through rather than spin */
}

static __always_inline int fw_conforms(struct fw_pkt *p, const struct rxray_fw_rule *r, __u32 slot)
{
	struct rxray_fw_bucket_key k = {};
	k.slot = slot;
	if (r->limit_by == RXRAY_FWL_DPORT) {
		k.port = p->dport;
	} else if (r->limit_by == RXRAY_FWL_SRC) {
		k.ver = p->ver;
		fw_mask((__u32 *)k.addr, p->saddr, p->ver == 4 ? r->limit_len : r->limit_len6);
	}
	__u64 now = fw_precise(p);
	struct rxray_fw_bucket *b = bpf_map_lookup_elem(&rxray_fw_buckets, &k);
	if (!b) {
		struct rxray_fw_bucket init = { .tat_pkts = now, .tat_bytes = now };
		bpf_map_update_elem(&rxray_fw_buckets, &k, &init, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&rxray_fw_buckets, &k);
		if (!b)
			return 1;
	}
	if (r->pps) {
		__u64 iv = 1000000000ULL / r->pps;
		if (!fw_gcra(&b->tat_pkts, now, iv, iv * r->burst_pkts))
			return 0;
	}
	if (r->bps) {
		__u64 iv = (__u64)p->len * 1000000000ULL / r->bps;
		__u64 tol = r->burst_bytes * 1000000000ULL / r->bps;
		if (!fw_gcra(&b->tat_bytes, now, iv, tol))
			return 0;
	}
	return 1;
}

/* Does rule r's L4 part match? Unknown L4 matches deny and limit rules, never allow rules. */
static __always_inline int fw_l4_match(const struct fw_pkt *p, const struct rxray_fw_rule *r)
{
	if (!r->l4)
		return 1;
	if (!p->l4_known)
		return r->action != RXRAY_FWA_ALLOW;
	if (r->proto && r->proto != p->proto)
		return 0;
	if (p->sport < r->sport_lo || p->sport > r->sport_hi)
		return 0;
	if (p->dport < r->dport_lo || p->dport > r->dport_hi)
		return 0;
	if ((p->flags & r->flags_mask) != r->flags_value)
		return 0;
	return 1;
}

static long fw_rule_step(__u32 i, void *arg)
{
	struct fw_pkt *p = arg;
	__u64 m = p->smask & p->dmask;
	if (!m)
		return 1;
	__u32 ix = fw_ctz(m);
	__u64 bit = 1ULL << ix;
	p->smask &= ~bit;
	__u32 slot = p->gen * RXRAY_FW_RULES + (ix & (RXRAY_FW_RULES - 1));
	struct rxray_fw_rule *r = bpf_map_lookup_elem(&rxray_fw_rules, &slot);
	if (!r)
		return 1;
	if (r->expires_ns && p->coarse > r->expires_ns)
		return 0;
	if (r->ip_ver && r->ip_ver != p->ver)
		return 0;
	if (!fw_l4_match(p, r))
		return 0;
	if (r->action == RXRAY_FWA_LIMIT) {
		if (fw_conforms(p, r, slot))
			return 0;
		p->verdict = RXRAY_FWA_DENY;
	} else {
		p->verdict = r->action;
	}
	p->slot = ix & (RXRAY_FW_RULES - 1);
	return 1;
}

static __always_inline void fw_count(__u32 gen, __u32 slot, __u32 len, __u64 now)
{
	__u32 k = gen * RXRAY_FW_SLOTS + slot;
	struct rxray_fw_counter *c = bpf_map_lookup_elem(&rxray_fw_counters, &k);
	if (c) {
		c->packets++;
		c->bytes += len;
		c->last_ns = now;
	}
}

/* The entry of `map` (keyed by struct rxray_fw_block_key, its value starting with expires_ns) for the
 * first length in `bits` whose prefix of the source has one that has not expired; NULL when none. */
static __always_inline void *fw_src_entry(void *map, struct fw_pkt *p, __u64 bits, __u32 base, struct rxray_fw_block_key *k)
{
	for (int i = 0; i < 64 && bits; i++) {
		__u32 len = base + fw_ctz(bits);
		bits &= bits - 1;
		k->len = len;
		fw_mask((__u32 *)k->addr, p->saddr, len);
		__u64 *expires = bpf_map_lookup_elem(map, k);
		if (expires && (!*expires || p->coarse <= *expires))
			return expires;
	}
	return NULL;
}

/* Dynamic blocks: does any present length hold a block for the source? */
static __always_inline int fw_blocked_word(struct fw_pkt *p, __u64 bits, __u32 base, struct rxray_fw_block_key *k)
{
	struct rxray_fw_block *b = fw_src_entry(&rxray_fw_blocks, p, bits, base, k);
	if (!b)
		return 0;
	__sync_fetch_and_add(&b->packets, 1);
	__sync_fetch_and_add(&b->bytes, p->len);
	return 1;
}

/* Source rate limits: 1 when the entry for the source (see fw_src_entry) drops the packet. */
static __always_inline int fw_slimited_word(struct fw_pkt *p, __u64 bits, __u32 base, struct rxray_fw_block_key *k)
{
	struct rxray_fw_slimit *s = fw_src_entry(&rxray_fw_slimits, p, bits, base, k);
	if (!s)
		return 0;
	if (s->dport && (!p->l4_known || p->dport != s->dport))
		return 0;
	if (s->syn_only && (p->proto != IPPROTO_TCP || (p->flags & 0x12) != 0x02))
		return 0;
	if (fw_gcra(&s->tat, fw_precise(p), s->interval_ns, s->interval_ns * s->burst)) {
		__sync_fetch_and_add(&s->passed, 1);
		return 0;
	}
	__sync_fetch_and_add(&s->packets, 1);
	__sync_fetch_and_add(&s->bytes, p->len);
	return 1;
}

/* Whether a source rate limit drops the packet. A global function, so the verifier checks it once
 * rather than on every path through rxray_fw. */
__noinline int rxray_fw_src_limited(struct fw_pkt *p)
{
	if (!p)
		return 0;
	__u32 zero = 0;
	struct rxray_fw_block_lens *bl = bpf_map_lookup_elem(&rxray_fw_block_lens, &zero);
	if (!bl)
		return 0;
	struct rxray_fw_block_key k = {};
	k.ver = p->ver;
	if (p->ver == 4)
		return fw_slimited_word(p, bl->s4, 0, &k);
	return fw_slimited_word(p, bl->s6[0], 0, &k) || fw_slimited_word(p, bl->s6[1], 64, &k) ||
	       fw_slimited_word(p, bl->s6[2], 128, &k);
}

/* Reads the addresses of an IP packet whose parse stopped before them (truncated or bad header). */
static __always_inline int fw_raw_addrs(RX_CTX *ctx, const struct rxray_pkt_event *e, struct fw_pkt *p)
{
	__u32 off = e->payload_off & 0x3fff;
	if (e->eth_proto == ETH_P_IP) {
		if (rx_load_bytes(ctx, off + 12, p->saddr, 4) || rx_load_bytes(ctx, off + 16, p->daddr, 4))
			return 0;
		p->ver = 4;
		return 1;
	}
	if (e->eth_proto == ETH_P_IPV6) {
		if (rx_load_bytes(ctx, off + 8, p->saddr, 16) || rx_load_bytes(ctx, off + 24, p->daddr, 16))
			return 0;
		p->ver = 6;
		return 1;
	}
	return 0;
}

/* The firewall's decision for one parsed packet: slot << 8 | RXRAY_FWA_ALLOW or RXRAY_FWA_DENY, where
 * slot is the deciding rule's index, RXRAY_FW_C_DEFAULT or RXRAY_FW_C_BLOCKS. l4_known is 0 for a
 * later fragment whose first fragment's ports could not be found. */
#define RXRAY_FW_NOT_IP (0xff << 8 | RXRAY_FWA_ALLOW)

__noinline int rxray_fw(RX_CTX *ctx, struct rxray_pkt_event *e, __u32 mal, __u32 l4_known, __u64 clock)
{
	if (!ctx || !e)
		return RXRAY_FW_NOT_IP;
	__u32 zero = 0;
	__u32 *active = bpf_map_lookup_elem(&rxray_fw_active, &zero);
	if (!active)
		return RXRAY_FW_NOT_IP;
	__u32 gen = *active & 1;
	struct rxray_fw_set *set = bpf_map_lookup_elem(&rxray_fw_sets, &gen);
	if (!set)
		return RXRAY_FW_NOT_IP;

	struct fw_pkt p = {};
	p.gen = gen;
	p.len = e->wire_len;
	p.clock = clock;
	p.coarse = clock ? clock : bpf_ktime_get_coarse_ns();
	if (e->layers & (RXRAY_L_IPV4 | RXRAY_L_IPV6)) {
		p.ver = e->ip_ver;
		__builtin_memcpy(p.saddr, e->saddr, 16);
		__builtin_memcpy(p.daddr, e->daddr, 16);
	} else if (!fw_raw_addrs(ctx, e, &p)) {
		return RXRAY_FW_NOT_IP; /* not IP (ARP, other ethertypes): the firewall is for IP */
	} else if (set->drop_malformed) {
		fw_count(gen, RXRAY_FW_C_DEFAULT, p.len, p.coarse);
		return RXRAY_FW_C_DEFAULT << 8 | RXRAY_FWA_DENY;
	}
	if (mal && set->drop_malformed) {
		fw_count(gen, RXRAY_FW_C_DEFAULT, p.len, p.coarse);
		return RXRAY_FW_C_DEFAULT << 8 | RXRAY_FWA_DENY;
	}
	p.proto = e->l4_proto;
	p.sport = e->sport;
	p.dport = e->dport;
	if (e->layers & RXRAY_L_FRAG_PORTS) { /* a later fragment: its datagram's ports */
		p.sport = e->frag_sport;
		p.dport = e->frag_dport;
	}
	p.flags = e->tcp_flags;
	p.l4_known = l4_known && !mal && (e->layers & (RXRAY_L_IPV4 | RXRAY_L_IPV6));

	/* 1. dynamic blocks */
	struct rxray_fw_block_lens *bl = bpf_map_lookup_elem(&rxray_fw_block_lens, &zero);
	if (bl) {
		struct rxray_fw_block_key bk = {};
		bk.ver = p.ver;
		int hit;
		if (p.ver == 4)
			hit = fw_blocked_word(&p, bl->v4, 0, &bk);
		else
			hit = fw_blocked_word(&p, bl->v6[0], 0, &bk) || fw_blocked_word(&p, bl->v6[1], 64, &bk) ||
			      fw_blocked_word(&p, bl->v6[2], 128, &bk);
		if (hit) {
			fw_count(gen, RXRAY_FW_C_BLOCKS, p.len, p.coarse);
			return RXRAY_FW_C_BLOCKS << 8 | RXRAY_FWA_DENY;
		}
		/* dynamic rate limits per destination */
		if (bl->dlimits) {
			struct rxray_fw_dlimit_key dk = {};
			dk.ver = p.ver;
			__builtin_memcpy(dk.addr, p.daddr, 16);
			struct rxray_fw_dlimit *dl = bpf_map_lookup_elem(&rxray_fw_dlimits, &dk);
			if (dl && dl->pps && (!dl->expires_ns || p.coarse <= dl->expires_ns)) {
				__u64 iv = 1000000000ULL / dl->pps;
				if (!fw_gcra(&dl->tat, fw_precise(&p), iv, iv * dl->burst)) {
					__sync_fetch_and_add(&dl->packets, 1);
					__sync_fetch_and_add(&dl->bytes, p.len);
					fw_count(gen, RXRAY_FW_C_BLOCKS, p.len, p.coarse);
					return RXRAY_FW_C_BLOCKS << 8 | RXRAY_FWA_DENY;
				}
			}
		}
		/* dynamic rate limits per source prefix (verified on its own: see rxray_fw_src_limited) */
		if (bl->slimits) {
			if (rxray_fw_src_limited(&p)) {
				fw_count(gen, RXRAY_FW_C_BLOCKS, p.len, p.coarse);
				return RXRAY_FW_C_BLOCKS << 8 | RXRAY_FWA_DENY;
			}
		}
	}

	/* 2. classify the addresses, 3. the rules in order */
	__u32 scls;
	if (p.ver == 4 && !set->v4_direct) {
		scls = 0; /* no IPv4 source prefix: the 32 MiB table is not read */
	} else if (p.ver == 4) {
		__u32 a24 = bpf_ntohl(p.saddr[0]) >> 8;
		__u32 idx = gen << 24 | a24;
		__u32 word = idx >> 3;
		__u64 *w = bpf_map_lookup_elem(&rxray_fw_v4, &word);
		__u32 b = w ? (*w >> ((idx & 7) * 8)) & 0xff : 0;
		scls = b & (RXRAY_FW_CLASSES - 1);
		if (b & RXRAY_FW_DEEP) {
			/* The /24's longer prefixes in one scan of their group; a marked group per length. */
			int g = -2;
			if (set->groups & 4) {
				struct fw_pkey gk = {};
				gk.w[0] = p.saddr[0];
				gk.meta = (0x80 | RXRAY_FW_TAG_GROUP | RXRAY_FWF_SRC << 1) | 24 << 8;
				gk.gen = gen;
				gk.nb = set->pbuckets;
				g = rxray_fw_pgroup(&gk);
			}
			if (g >= 0)
				scls = g;
			else if (g == -2)
				scls = fw_classify(set, gen, RXRAY_FWF_SRC, 4, p.saddr, scls, 0xff);
		}
	} else if (set->nlens[RXRAY_FWF_SRC][1]) {
		/* The grouped prefixes (/32 and longer, most of them) in one scan; on a miss, only the
		 * lengths the filter names for the first 32 bits (most sources: none). */
		int g = -1;
		__u8 grp = set->groups;
		if (grp & 1) {
			struct fw_pkey gk = {};
			__builtin_memcpy(gk.w, p.saddr, 16);
			gk.meta = (0x80 | RXRAY_FW_TAG_GROUP | RXRAY_FWF_SRC << 1 | 1) | 32 << 8;
			gk.gen = gen;
			gk.nb = set->pbuckets;
			g = rxray_fw_pgroup(&gk);
		}
		if (g >= 0) {
			scls = g;
		} else {
			__u32 present = set->v6_always;
			if (!(grp & 1) || (grp & 2) || g == -2) {
				__u32 h = bpf_ntohl(p.saddr[0]) * (__u32)RXRAY_FW_V6_MUL;
				__u32 idx = gen << RXRAY_FW_V6_BITS | h >> (32 - RXRAY_FW_V6_BITS);
				__u32 word = idx >> 3;
				__u64 *w = bpf_map_lookup_elem(&rxray_fw_v6, &word);
				present = w ? ((*w >> ((idx & 7) * 8)) & 0xff) | set->v6_always : 0xff;
			}
			scls = fw_classify(set, gen, RXRAY_FWF_SRC, 6, p.saddr, 0, present);
		}
	} else {
		scls = 0;
	}
	__u32 dcls = fw_classify(set, gen, RXRAY_FWF_DST, p.ver, p.daddr, 0, 0xff);
	p.smask = fw_class_mask(gen, RXRAY_FWF_SRC, scls);
	p.dmask = fw_class_mask(gen, RXRAY_FWF_DST, dcls);
	if (p.smask & p.dmask)
		bpf_loop(RXRAY_FW_RULES, fw_rule_step, &p, 0);

	if (!p.verdict) {
		fw_count(gen, RXRAY_FW_C_DEFAULT, p.len, p.coarse);
		return RXRAY_FW_C_DEFAULT << 8 | (set->default_action == RXRAY_FWA_DENY ? RXRAY_FWA_DENY : RXRAY_FWA_ALLOW);
	}
	fw_count(gen, p.slot, p.len, p.coarse);
	return p.slot << 8 | p.verdict;
}

#endif
