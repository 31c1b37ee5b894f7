// SPDX-License-Identifier: GPL-2.0
/* Source rotation for the firewall benchmark: before each BPF_PROG_TEST_RUN repetition, writes the
 * next source address from rotate_src (seq % rotate_n) into the frame, then tail-calls the program
 * under test (rotate_next[0]). One test run with a large repeat thus looks up many different
 * sources with the program's code hot, instead of one cache-hot entry per frame. The IPv4 header
 * checksum is left stale: neither rxray nor the LPM peer reads it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

struct rotate_addr {
	__u8 a[16];
};

/* Sized by the loader: the sources, in network byte order (IPv4 in the first 4 bytes). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rotate_addr);
} rotate_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rotate_next SEC(".maps");

volatile const __u32 rotate_n = 1; /* entries in rotate_src; set by the loader */

__u64 rotate_seq = 0;

SEC("xdp")
int bench_rotate(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_ABORTED;
	__u32 n = rotate_n ? rotate_n : 1;
	__u32 i = (__u32)(rotate_seq++ % n);
	struct rotate_addr *s = bpf_map_lookup_elem(&rotate_src, &i);
	if (!s)
		return XDP_ABORTED;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return XDP_ABORTED;
		__builtin_memcpy(&ip->saddr, s->a, 4);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return XDP_ABORTED;
		__builtin_memcpy(&ip6->saddr, s->a, 16);
	}
	bpf_tail_call(ctx, &rotate_next, 0);
	return XDP_ABORTED;
}
