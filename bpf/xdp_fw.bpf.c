// SPDX-License-Identifier: GPL-2.0
/* The firewall's copy of the XDP program: the same code, with every map pinned by name (see
 * RXRAY_PINNING in rxray.h), so the firewall's state outlives the agent and an observer (watch,
 * flows, alerts) shares the maps of the program already attached instead of attaching another. */
#define RXRAY_PIN_MAPS 1
#include "xdp_ingress.bpf.c"
