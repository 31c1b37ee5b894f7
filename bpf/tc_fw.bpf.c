// SPDX-License-Identifier: GPL-2.0
/* The firewall's TC copy: the same code over struct __sk_buff with every map pinned by name, for
 * devices where the frame is already an skb when it arrives (veth): there XDP must first copy each
 * skb into a buffer of its own, and native XDP turns GRO off, so a tcx classifier drops for less. */
#define RXRAY_PIN_MAPS 1
#define RXRAY_TC 1
#include "xdp_ingress.bpf.c"
