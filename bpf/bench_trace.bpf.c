// SPDX-License-Identifier: GPL-2.0
/* The floors of scripts/bench-latency: tp_btf programs on the latency stages' tracepoints that only
 * return, attached beside rxray's, so each run's cost is measured against the bare cost of a run. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/skb_copy_datagram_iovec")
int floor_read(__u64 *ctx)
{
	return 0;
}

SEC("tp_btf/sk_data_ready")
int floor_queued(__u64 *ctx)
{
	return 0;
}
