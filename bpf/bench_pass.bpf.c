// SPDX-License-Identifier: GPL-2.0
/* The benchmark floor: an XDP program that passes every packet and does nothing else. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
