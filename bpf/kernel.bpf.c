// SPDX-License-Identifier: GPL-2.0
/* rxray's tracepoint programs: what the kernel did with packets. For now, drops: every skb freed
 * through kfree_skb with a drop reason becomes an rxray_drop_event and a per-reason count. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "rxray.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_DSTOPTS_ 60
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define RXRAY_V6_EXT_WALK 4 /* extension headers walked before giving up on ports */

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

/* Reads the IPv4 or IPv6 header at skb->head + network_header and the ports after it. Fields it
 * cannot read stay zero: a drop is reported even when its headers are gone. */
static __noinline int rxray_drop_headers(const unsigned char *head, __u32 nh, __u16 proto, struct rxray_drop_event *e)
{
	__u32 l4 = 0;
	__u8 l4p = 0;
	if (!head || !e)
		return 0;
	if (proto == ETH_P_IP) {
		struct iphdr ip;
		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh) || ip.version != 4 || ip.ihl < 5)
			return 0;
		e->ip_ver = 4;
		e->l4_proto = ip.protocol;
		__builtin_memcpy(e->saddr, &ip.saddr, 4);
		__builtin_memcpy(e->daddr, &ip.daddr, 4);
		if (bpf_ntohs(ip.frag_off) & 0x1fff)
			return 0; /* a later fragment: no ports */
		l4 = nh + ip.ihl * 4;
		l4p = ip.protocol;
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr ip6;
		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh) || ip6.version != 6)
			return 0;
		e->ip_ver = 6;
		__builtin_memcpy(e->saddr, &ip6.saddr, 16);
		__builtin_memcpy(e->daddr, &ip6.daddr, 16);
		l4 = nh + sizeof(ip6);
		l4p = ip6.nexthdr;
		for (int i = 0; i < RXRAY_V6_EXT_WALK; i++) {
			__u8 ext[4];
			if (l4p != IPPROTO_HOPOPTS_ && l4p != IPPROTO_ROUTING_ && l4p != IPPROTO_DSTOPTS_ &&
			    l4p != IPPROTO_FRAGMENT_)
				break;
			if (bpf_probe_read_kernel(ext, sizeof(ext), head + l4))
				return 0;
			if (l4p == IPPROTO_FRAGMENT_) {
				l4p = ext[0];
				if (((ext[2] << 8) | ext[3]) & 0xfff8) {
					e->l4_proto = l4p;
					return 0; /* a later fragment: no ports */
				}
				l4 += 8;
			} else {
				l4p = ext[0];
				l4 += (ext[1] + 1) * 8;
			}
		}
		e->l4_proto = l4p;
	} else {
		return 0;
	}
	if (l4p == IPPROTO_TCP_) {
		__u8 th[14];
		if (bpf_probe_read_kernel(th, sizeof(th), head + l4))
			return 0;
		e->sport = (th[0] << 8) | th[1];
		e->dport = (th[2] << 8) | th[3];
		e->tcp_flags = th[13];
	} else if (l4p == IPPROTO_UDP_) {
		__u8 uh[4];
		if (bpf_probe_read_kernel(uh, sizeof(uh), head + l4))
			return 0;
		e->sport = (uh[0] << 8) | uh[1];
		e->dport = (uh[2] << 8) | uh[3];
	}
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
