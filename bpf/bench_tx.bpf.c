// SPDX-License-Identifier: GPL-2.0
/* The flood generator for the firewall benchmark: run with BPF_PROG_TEST_RUN and
 * BPF_F_TEST_XDP_LIVE_FRAMES on the sending veth, it returns XDP_TX so every run sends its frame to
 * the peer. Each frame gets the next IPv4 source of tx_src_base + (n % tx_src_count) (the IPv4
 * header checksum is recomputed), so the receiver sees many sources, not one hot entry. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800

/* Set by the loader. */
volatile const __u32 tx_src_base = 0; /* host byte order */
volatile const __u32 tx_src_count = 1;

__u64 tx_seq = 0;

SEC("xdp")
int bench_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return XDP_TX;
	__u32 n = tx_src_count ? tx_src_count : 1;
	__u64 seq = tx_seq++;
	ip->saddr = bpf_htonl(tx_src_base + (__u32)(seq % n));
	ip->check = 0;
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = ~sum & 0xffff;
	return XDP_TX;
}
