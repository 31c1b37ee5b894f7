// SPDX-License-Identifier: GPL-2.0
/* The observers' TC ingress copy of the program (tcx, or clsact before Linux 6.6): the same code over
 * struct __sk_buff. It runs after GRO, so on veth and virtio_net it leaves GRO and the offloads alone
 * (native XDP there turns them off), and it counts each GRO/GSO unit as its gso_segs wire segments. */
#define RXRAY_TC 1
#include "xdp_ingress.bpf.c"
