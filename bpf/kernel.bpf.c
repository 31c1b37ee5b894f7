// SPDX-License-Identifier: GPL-2.0
/* rxray's tracepoint programs: what the kernel did with packets. Drops: every skb freed
 * through kfree_skb with a drop reason becomes an rxray_drop_event and a per-reason count.
 * TCP connections: a record per socket (state changes, retransmits, resets, RTT) and an event per
 * state change. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "rxray.h"
#include "rxray_skb.h"

#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* resized by the loader */
} rxray_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_drop_stats);
} rxray_drop_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RXRAY_DROP_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} rxray_drop_reasons SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_drop_config);
} rxray_drop_config SEC(".maps");

/* Interfaces to report with RXRAY_DROPF_IFACES (ifindex -> 1). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RXRAY_DROP_IFACES_MAX);
	__type(key, __u32);
	__type(value, __u8);
} rxray_drop_ifaces SEC(".maps");

/* Fills the event's 5-tuple from the headers at skb->head + network_header (rxray_skb.h). Not
 * inlined, so struct rxray_drop_event lands in the object's BTF (the layout test reads it). */
static __noinline int rxray_drop_headers(const unsigned char *head, __u32 nh, __u16 proto, struct rxray_drop_event *e)
{
	struct rxray_skb_hdrs h = {};
	if (!e)
		return 0;
	rxray_skb_headers(head, nh, proto, &h);
	e->ip_ver = h.ip_ver;
	e->l4_proto = h.l4_proto;
	__builtin_memcpy(e->saddr, h.saddr, 16);
	__builtin_memcpy(e->daddr, h.daddr, 16);
	e->sport = h.sport;
	e->dport = h.dport;
	e->tcp_flags = h.tcp_flags;
	return 0;
}

SEC("tp_btf/kfree_skb")
int rxray_kfree_skb(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	__u64 location = ctx[1];
	__u32 reason = (__u32)ctx[2];
	__u32 zero = 0;

	/* Not drops: a packet that was used up, or freed before any reason was set. */
	if (reason == SKB_CONSUMED || reason == SKB_NOT_DROPPED_YET || !skb)
		return 0;
	struct rxray_drop_config *cfg = bpf_map_lookup_elem(&rxray_drop_config, &zero);
	struct rxray_drop_stats *st = bpf_map_lookup_elem(&rxray_drop_stats, &zero);
	if (!cfg || !st)
		return 0;

	struct net_device *dev = BPF_CORE_READ(skb, dev);
	__u32 ifindex = 0;
	__u32 ino = 0;
	if (dev) {
		ifindex = BPF_CORE_READ(dev, ifindex);
		ino = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	} else {
		struct sock *sk = BPF_CORE_READ(skb, sk);
		ifindex = BPF_CORE_READ(skb, skb_iif);
		if (sk)
			ino = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	}
	if (cfg->netns_ino) {
		if (!ino) {
			st->c[RXRAY_DC_NO_NETNS]++;
			return 0;
		}
		if (ino != cfg->netns_ino)
			return 0;
	}
	if ((cfg->flags & RXRAY_DROPF_IFACES) && !bpf_map_lookup_elem(&rxray_drop_ifaces, &ifindex))
		return 0;

	st->c[RXRAY_DC_DROPS]++;
	__u32 slot = reason < RXRAY_DROP_REASONS - 1 ? reason : RXRAY_DROP_REASONS - 1;
	__u64 *n = bpf_map_lookup_elem(&rxray_drop_reasons, &slot);
	if (n)
		(*n)++;
	if (cfg->flags & RXRAY_DROPF_COUNT_ONLY)
		return 0;

	struct rxray_drop_event *e = bpf_ringbuf_reserve(&rxray_drops, sizeof(*e), 0);
	if (!e) {
		st->c[RXRAY_DC_LOST]++;
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->location = location;
	e->reason = reason;
	e->ifindex = ifindex;
	e->len = BPF_CORE_READ(skb, len);
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	e->protocol = proto;
	rxray_drop_headers(BPF_CORE_READ(skb, head), BPF_CORE_READ(skb, network_header), proto, e);
	bpf_ringbuf_submit(e, 0);
	st->c[RXRAY_DC_EVENTS]++;
	return 0;
}

/* ---- TCP connections ---- */
#define AF_INET_ 2
#define AF_INET6_ 10
#define TCP_ESTABLISHED_ 1
#define TCP_SYN_SENT_ 2
#define TCP_SYN_RECV_ 3
#define TCP_CLOSE_ 7
#define SOCK_DONE_BIT 1

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* resized by the loader */
} rxray_conn_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RXRAY_CONNS_MAX);
	__type(key, __u64);
	__type(value, struct rxray_conn);
} rxray_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_conn_stats);
} rxray_conn_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_conn_config);
} rxray_conn_config SEC(".maps");

/* A zeroed record to insert from (the stack is too small to build one and an event). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxray_conn);
} rxray_conn_scratch SEC(".maps");

static __always_inline struct rxray_conn_stats *conn_stats(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&rxray_conn_stats, &zero);
}

/* 1 when sk is in the configured namespace. */
static __always_inline int conn_netns_ok(const struct sock *sk)
{
	__u32 zero = 0;
	struct rxray_conn_config *cfg = bpf_map_lookup_elem(&rxray_conn_config, &zero);
	if (!cfg)
		return 0;
	if (!cfg->netns_ino)
		return 1;
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum) == cfg->netns_ino;
}

static __always_inline void conn_rtt_sample(struct rxray_conn *c, const struct tcp_sock *tp)
{
	__u32 srtt = BPF_CORE_READ(tp, srtt_us) >> 3;
	if (!srtt)
		return;
	c->srtt_us = srtt;
	c->rttvar_us = BPF_CORE_READ(tp, mdev_us) >> 2;
	__u32 m = BPF_CORE_READ(tp, rtt_min.s[0].v);
	if (m != ~0U)
		c->min_rtt_us = m;
	if (!c->srtt_min_us || srtt < c->srtt_min_us)
		c->srtt_min_us = srtt;
	if (srtt > c->srtt_max_us)
		c->srtt_max_us = srtt;
}

static __always_inline void conn_read_sock(struct rxray_conn *c, const struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	/* Closing unhashes the socket and releases its port first: keep the tuple seen before. */
	if (!sport && c->sport)
		goto counters;
	c->family = family;
	c->sport = sport;
	c->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET_) {
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(c->saddr, &s, 4);
		__builtin_memcpy(c->daddr, &d, 4);
	} else if (family == AF_INET6_) {
		BPF_CORE_READ_INTO(&c->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&c->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
counters:
	c->bytes_received = BPF_CORE_READ(tp, bytes_received);
	c->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	c->bytes_sent = BPF_CORE_READ(tp, bytes_sent);
	c->bytes_retrans = BPF_CORE_READ(tp, bytes_retrans);
	c->total_retrans = BPF_CORE_READ(tp, total_retrans);
	conn_rtt_sample(c, tp);
}

/* Not inlined, so struct rxray_conn_event lands in the object's BTF (the layout test reads it). */
static __noinline int conn_fill_event(struct rxray_conn_event *e, const struct rxray_conn *c, __u64 now)
{
	if (!e || !c)
		return 0;
	e->ts_ns = now;
	__builtin_memcpy(&e->c, c, sizeof(*c));
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int rxray_sock_set_state(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	int oldstate = (int)ctx[1];
	int newstate = (int)ctx[2];
	__u32 zero = 0;
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_)
		return 0;
	if (!conn_netns_ok(sk))
		return 0;
	struct rxray_conn_stats *st = conn_stats();
	if (!st)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 key = (__u64)sk;
	struct rxray_conn *c = bpf_map_lookup_elem(&rxray_conns, &key);
	if (!c) {
		/* A listener, or a socket closing before it ever connected: nothing to follow. */
		if (newstate == TCP_CLOSE_ && (oldstate == TCP_CLOSE_ || oldstate == 10 /* LISTEN */))
			return 0;
		if (newstate == 10 /* LISTEN */)
			return 0;
		struct rxray_conn *z = bpf_map_lookup_elem(&rxray_conn_scratch, &zero);
		if (!z)
			return 0;
		__builtin_memset(z, 0, sizeof(*z));
		z->sk = key;
		z->first_ns = now;
		if (newstate != TCP_SYN_SENT_ && newstate != TCP_SYN_RECV_) {
			z->flags |= RXRAY_CONNF_LATE;
			st->c[RXRAY_CC_UNTRACKED]++;
		}
		if (bpf_map_update_elem(&rxray_conns, &key, z, BPF_NOEXIST)) {
			st->c[RXRAY_CC_INSERT_FAIL]++;
			return 0;
		}
		st->c[RXRAY_CC_NEW]++;
		c = bpf_map_lookup_elem(&rxray_conns, &key);
		if (!c)
			return 0;
	}
	c->old_state = oldstate;
	c->state = newstate;
	c->last_ns = now;
	if (newstate == TCP_SYN_SENT_ || newstate == TCP_SYN_RECV_) {
		c->syn_ns = now;
		if (newstate == TCP_SYN_RECV_)
			c->flags |= RXRAY_CONNF_PASSIVE;
	}
	if (newstate == TCP_ESTABLISHED_ && !c->established_ns)
		c->established_ns = now;
	__u8 i = c->npath;
	if (i >= RXRAY_CONN_PATH)
		i = RXRAY_CONN_PATH - 1;
	else
		c->npath = i + 1;
	c->path[i & (RXRAY_CONN_PATH - 1)] = newstate;
	conn_read_sock(c, sk);
	if (newstate == TCP_CLOSE_) {
		unsigned long flags = BPF_CORE_READ(sk, __sk_common.skc_flags);
		if (flags & (1UL << SOCK_DONE_BIT))
			c->flags |= RXRAY_CONNF_FIN_RX;
		st->c[RXRAY_CC_CLOSED]++;
	}

	struct rxray_conn_event *e = bpf_ringbuf_reserve(&rxray_conn_events, sizeof(*e), 0);
	if (!e) {
		st->c[RXRAY_CC_LOST]++;
	} else {
		conn_fill_event(e, c, now);
		bpf_ringbuf_submit(e, 0);
		st->c[RXRAY_CC_EVENTS]++;
	}
	if (newstate == TCP_CLOSE_)
		bpf_map_delete_elem(&rxray_conns, &key);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int rxray_tcp_retransmit(__u64 *ctx)
{
	__u64 key = ctx[0];
	struct rxray_conn *c = bpf_map_lookup_elem(&rxray_conns, &key);
	if (c)
		__sync_fetch_and_add(&c->retransmits, 1);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int rxray_tcp_receive_reset(__u64 *ctx)
{
	__u64 key = ctx[0];
	struct rxray_conn *c = bpf_map_lookup_elem(&rxray_conns, &key);
	if (c)
		c->rst_rx++;
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int rxray_tcp_send_reset(__u64 *ctx)
{
	__u64 key = ctx[0];
	struct rxray_conn *c = key ? bpf_map_lookup_elem(&rxray_conns, &key) : 0;
	if (c) {
		c->rst_tx++;
		return 0;
	}
	/* No tracked socket: count it when it happened in our namespace (by the packet's device). */
	struct sk_buff *skb = (struct sk_buff *)ctx[1];
	__u32 zero = 0;
	struct rxray_conn_config *cfg = bpf_map_lookup_elem(&rxray_conn_config, &zero);
	if (!cfg || !skb)
		return 0;
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	if (cfg->netns_ino && (!dev || BPF_CORE_READ(dev, nd_net.net, ns.inum) != cfg->netns_ino))
		return 0;
	struct rxray_conn_stats *st = conn_stats();
	if (st)
		st->c[RXRAY_CC_RST_TX_NOSOCK]++;
	return 0;
}

SEC("tp_btf/tcp_probe")
int rxray_tcp_probe(__u64 *ctx)
{
	__u64 key = ctx[0];
	struct rxray_conn *c = bpf_map_lookup_elem(&rxray_conns, &key);
	if (c)
		conn_rtt_sample(c, (const struct tcp_sock *)key);
	return 0;
}

static __always_inline void rxray_reader_note(const struct sock *sk, int ret, int flags);

/* sock_recv_length(sk, ret, flags): runs in the reading task after every recvmsg. */
SEC("tp_btf/sock_recv_length")
int rxray_sock_recv_length(__u64 *ctx)
{
	__u64 key = ctx[0];
	int ret = (int)ctx[1];
	int flags = (int)ctx[2];
	if (!key)
		return 0;
	rxray_reader_note((const struct sock *)key, ret, flags);
	struct rxray_conn *c = bpf_map_lookup_elem(&rxray_conns, &key);
	if (!c)
		return 0;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (c->reader_pid != pid) {
		if (c->reader_pid)
			c->reader_changes++;
		c->reader_pid = pid;
		c->reader_bytes = 0;
		bpf_get_current_comm(c->reader_comm, sizeof(c->reader_comm));
		c->reader_cgroup = bpf_get_current_cgroup_id();
	}
	/* MSG_PEEK (2) does not consume bytes. */
	if (ret > 0 && !(flags & 2))
		__sync_fetch_and_add(&c->reader_bytes, (__u64)ret);
	return 0;
}

/* ---- readers: who read each TCP or UDP socket (RXRAY_CONN_CFG_READERS) ---- */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RXRAY_READERS_MAX);
	__type(key, struct rxray_reader_key);
	__type(value, struct rxray_reader);
} rxray_readers SEC(".maps");

static __always_inline void rxray_reader_note(const struct sock *sk, int ret, int flags)
{
	__u32 zero = 0;
	if (ret <= 0 || (flags & 2 /* MSG_PEEK */))
		return;
	struct rxray_conn_config *cfg = bpf_map_lookup_elem(&rxray_conn_config, &zero);
	if (!cfg || !(cfg->flags & RXRAY_CONN_CFG_READERS))
		return;
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if ((proto != IPPROTO_TCP_ && proto != IPPROTO_UDP_) || (family != AF_INET_ && family != AF_INET6_))
		return;
	if (cfg->netns_ino && BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum) != cfg->netns_ino)
		return;
	struct rxray_reader_key k = {};
	k.proto = proto;
	k.family = family;
	k.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	k.rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET_) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(k.laddr, &l, 4);
		__builtin_memcpy(k.raddr, &r, 4);
	} else {
		BPF_CORE_READ_INTO(&k.laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&k.raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	struct rxray_reader *r = bpf_map_lookup_elem(&rxray_readers, &k);
	if (!r) {
		struct rxray_reader z = {};
		bpf_map_update_elem(&rxray_readers, &k, &z, BPF_NOEXIST);
		r = bpf_map_lookup_elem(&rxray_readers, &k);
		if (!r)
			return;
	}
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (r->tgid != pid) {
		if (r->tgid)
			r->changes++;
		r->tgid = pid;
		bpf_get_current_comm(r->comm, sizeof(r->comm));
		r->cgroup_id = bpf_get_current_cgroup_id();
	}
	__sync_fetch_and_add(&r->bytes, (__u64)ret);
	__sync_fetch_and_add(&r->reads, 1);
	r->last_ns = bpf_ktime_get_ns();
}
