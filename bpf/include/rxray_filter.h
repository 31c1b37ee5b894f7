/* rxray's packet-filter interpreter: runs the compiled program in the rxray_filter map over a parsed
 * rxray_pkt_event. Include once, after rxray.h and bpf_helpers.h (it defines the map). */
#ifndef RXRAY_FILTER_H
#define RXRAY_FILTER_H

/* The compiled filter (written by user space before RXRAY_FEAT_FILTER is turned on). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	RXRAY_PINNING
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_filter);
} rxray_filter SEC(".maps");

/* The event's fields, loaded once per packet so each step is an array read. */
struct rxray_filter_run {
	__u32 f[RXRAY_FF_SCALARS];
	__u32 addr[2][4]; /* saddr, daddr */
	__u32 pc;
	__u32 verdict;
};

/* One instruction per bpf_loop callback: the verifier checks the body once. */
static long rxray_filter_step(__u32 idx, void *arg)
{
	struct rxray_filter_run *r = arg;
	__u32 zero = 0;
	struct rxray_filter *p = bpf_map_lookup_elem(&rxray_filter, &zero);
	__u32 pc = r->pc;

	if (!p || pc >= RXRAY_FILTER_MAX) {
		r->verdict = !p || pc != RXRAY_FILTER_REJECT;
		return 1;
	}
	struct rxray_filter_insn *in = &p->insn[pc & (RXRAY_FILTER_MAX - 1)];
	__u8 field = in->field;
	int ok;
	if (field >= RXRAY_FF_SADDR) {
		__u32 *a = r->addr[(field - RXRAY_FF_SADDR) & 1];
		__u32 *want = (__u32 *)in->addr;
		__u32 *m = (__u32 *)in->amask;
		ok = (a[0] & m[0]) == want[0] && (a[1] & m[1]) == want[1] && (a[2] & m[2]) == want[2] &&
		     (a[3] & m[3]) == want[3];
	} else {
		__u32 v = r->f[field & (RXRAY_FF_SCALARS - 1)] & in->mask;
		__u32 want = in->value;
		if (in->cmp == RXRAY_FC_GT)
			ok = v > want;
		else if (in->cmp == RXRAY_FC_GE)
			ok = v >= want;
		else
			ok = v == want;
	}
	__u32 next = ok ? in->jt : in->jf;
	if (next <= pc) { /* a backward jump: not a program rxray wrote; let the packet through */
		r->verdict = 1;
		return 1;
	}
	r->pc = next;
	return 0;
}

/* 1 when the packet matches the filter (or there is no usable program), else 0. A global function:
 * verified once, whatever path led here. */
__noinline int rxray_filter_match(const struct rxray_pkt_event *e)
{
	__u32 zero = 0;
	if (!e)
		return 1;
	struct rxray_filter *p = bpf_map_lookup_elem(&rxray_filter, &zero);
	if (!p)
		return 1;
	struct rxray_filter_run r = {};
	r.pc = p->entry;
	r.verdict = 1;
	if (r.pc < RXRAY_FILTER_MAX) {
		__u32 vc = e->vlan_count;
		r.f[RXRAY_FF_L3] = vc << 16 | e->eth_proto;
		r.f[RXRAY_FF_IP] = vc << 16 | (__u32)e->ip_ver << 8 | e->l4_proto;
		r.f[RXRAY_FF_V6EXT] = (__u32)e->ipv6_ext_count << 8 | e->ipv6_exts[0];
		r.f[RXRAY_FF_FRAG_OFF] = e->frag_off;
		r.f[RXRAY_FF_SPORT] = e->sport;
		r.f[RXRAY_FF_DPORT] = e->dport;
		r.f[RXRAY_FF_TCP_FLAGS] = e->tcp_flags;
		r.f[RXRAY_FF_WIRE_LEN] = e->wire_len;
		r.f[RXRAY_FF_VLAN_COUNT] = vc;
		r.f[RXRAY_FF_VID0] = vc > 0 ? e->vlan_tci[0] & 0x0fff : 0;
		r.f[RXRAY_FF_VID1] = vc > 1 ? e->vlan_tci[1] & 0x0fff : 0;
		__builtin_memcpy(r.addr[0], e->saddr, 16);
		__builtin_memcpy(r.addr[1], e->daddr, 16);
		/* forward jumps only: RXRAY_FILTER_MAX steps reach a verdict, one more reports it */
		bpf_loop(RXRAY_FILTER_MAX + 1, rxray_filter_step, &r, 0);
		return r.verdict;
	}
	return r.pc != RXRAY_FILTER_REJECT;
}

#endif
