/* Reading a packet's IP and L4 headers from an skb (tracing programs: the skb is kernel memory,
 * read with bpf_probe_read_kernel). Shared by the drop program and the latency stages, so a drop and
 * a delivery name the same 5-tuple the same way. Include after vmlinux.h and bpf_helpers.h. */
#ifndef RXRAY_SKB_H
#define RXRAY_SKB_H

#define RXRAY_SKB_ETH_P_IP 0x0800
#define RXRAY_SKB_ETH_P_IPV6 0x86DD
#define RXRAY_SKB_V6_EXT_WALK 4 /* extension headers walked before giving up on ports */

/* What rxray_skb_headers found. Addresses network order (IPv4 in the first 4 bytes), ports host
 * order. l4_off is 0 when there is no L4 header to read (later fragment, unknown protocol). */
struct rxray_skb_hdrs {
	__u8 ip_ver;
	__u8 l4_proto;
	__u8 tcp_flags;
	__u8 _pad;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u32 l4_off;    /* offset of the L4 header from head */
	__u32 tcp_seq;   /* TCP: the sequence number */
	__u16 udp_len;   /* UDP: the length field */
	__u16 udp_csum;  /* UDP: the checksum field */
	__u32 udp_first; /* UDP: the first (up to) 4 payload bytes, big-endian, zero-padded */
};

/* The first min(n, 4) of the bytes p, big-endian, the rest zero: how the UDP payload's first bytes
 * enter a latency tag (the XDP program computes the same from the packet). */
static __always_inline __u32 rxray_udp_first(const __u8 *p, __u32 n)
{
	__u32 v = (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
	if (n == 0)
		return 0;
	if (n >= 4)
		return v;
	return v & ~(0xffffffffU >> (n * 8));
}

/* Reads the IPv4 or IPv6 header at head + nh and the L4 header after it. Fields it cannot read stay
 * zero (h must be zeroed by the caller): a drop is reported even when its headers are gone. */
static __noinline int rxray_skb_headers(const unsigned char *head, __u32 nh, __u16 proto, struct rxray_skb_hdrs *h)
{
	__u32 l4 = 0;
	__u8 l4p = 0;
	if (!head || !h)
		return 0;
	if (proto == RXRAY_SKB_ETH_P_IP) {
		struct iphdr ip;
		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh) || ip.version != 4 || ip.ihl < 5)
			return 0;
		h->ip_ver = 4;
		h->l4_proto = ip.protocol;
		__builtin_memcpy(h->saddr, &ip.saddr, 4);
		__builtin_memcpy(h->daddr, &ip.daddr, 4);
		if (bpf_ntohs(ip.frag_off) & 0x1fff)
			return 0; /* a later fragment: no ports */
		l4 = nh + ip.ihl * 4;
		l4p = ip.protocol;
	} else if (proto == RXRAY_SKB_ETH_P_IPV6) {
		struct ipv6hdr ip6;
		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh) || ip6.version != 6)
			return 0;
		h->ip_ver = 6;
		__builtin_memcpy(h->saddr, &ip6.saddr, 16);
		__builtin_memcpy(h->daddr, &ip6.daddr, 16);
		l4 = nh + sizeof(ip6);
		l4p = ip6.nexthdr;
		for (int i = 0; i < RXRAY_SKB_V6_EXT_WALK; i++) {
			__u8 ext[4];
			if (l4p != 0 /* hop-by-hop */ && l4p != 43 /* routing */ && l4p != 60 /* dest opts */ &&
			    l4p != 44 /* fragment */)
				break;
			if (bpf_probe_read_kernel(ext, sizeof(ext), head + l4))
				return 0;
			if (l4p == 44) {
				l4p = ext[0];
				if (((ext[2] << 8) | ext[3]) & 0xfff8) {
					h->l4_proto = l4p;
					return 0; /* a later fragment: no ports */
				}
				l4 += 8;
			} else {
				l4p = ext[0];
				l4 += (ext[1] + 1) * 8;
			}
		}
		h->l4_proto = l4p;
	} else {
		return 0;
	}
	if (l4p == 6 /* TCP */) {
		__u8 th[14];
		if (bpf_probe_read_kernel(th, sizeof(th), head + l4))
			return 0;
		h->sport = (th[0] << 8) | th[1];
		h->dport = (th[2] << 8) | th[3];
		h->tcp_seq = (__u32)th[4] << 24 | (__u32)th[5] << 16 | (__u32)th[6] << 8 | th[7];
		h->tcp_flags = th[13];
		h->l4_off = l4;
	} else if (l4p == 17 /* UDP */) {
		__u8 uh[8];
		if (bpf_probe_read_kernel(uh, 8, head + l4))
			return 0;
		h->sport = (uh[0] << 8) | uh[1];
		h->dport = (uh[2] << 8) | uh[3];
		h->udp_len = (uh[4] << 8) | uh[5];
		h->udp_csum = (uh[6] << 8) | uh[7];
		h->l4_off = l4;
		__u32 n = h->udp_len > 8 ? h->udp_len - 8 : 0;
		__u8 p[4];
		if (n && bpf_probe_read_kernel(p, 4, head + l4 + 8) == 0)
			h->udp_first = rxray_udp_first(p, n);
	}
	return 0;
}

#endif
