/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * xdplab/dns_nxdomain.h - "reducing latency": answer every DNS query with
 * NXDOMAIN from where the program runs.
 *   payload.dns.flags |= NXDOMAIN; swap(src, dst); return XDP_TX;
 *
 * A frame is answered when it is Ethernet (no VLAN tag) / IPv4 (any IHL
 * 5..15, not a fragment) / UDP to port 53 / a DNS header with QR=0 fully in
 * the frame (and the UDP length covers it). The reply is made in place:
 * QR=1, RCODE=3 (NXDOMAIN), all other flag bits, the id and the question
 * unchanged; Ethernet and IPv4 addresses and UDP ports swapped; the UDP
 * checksum updated incrementally (RFC 1624) unless it was 0 (none); the
 * IPv4 header checksum stays valid since swapping addresses does not change
 * the sum. Verdict XDP_TX. Everything else: XDP_PASS, untouched.
 */
#ifndef XDPLAB_DNS_NXDOMAIN_H
#define XDPLAB_DNS_NXDOMAIN_H

#include "xdplab/types.h"
#include "xdplab/proto.h"

XL_INLINE int xl_dns_nxdomain_logic(void *data, void *data_end)
{
	struct xl_ethhdr *eth = data;
	struct xl_iphdr *ip;
	struct xl_udphdr *udp;
	struct xl_dnshdr *dns;
	xl_u32 ihl, addr;
	xl_u16 old_flags, new_flags, port;
	xl_u8 mac;
	int k;

	if ((void *)(eth + 1) > data_end)
		return XL_XDP_PASS;
	if (eth->h_proto != xl_htons(XL_ETH_P_IP))
		return XL_XDP_PASS;

	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XL_XDP_PASS;
	if ((ip->ver_ihl >> 4) != 4 || ip->protocol != XL_IPPROTO_UDP)
		return XL_XDP_PASS;
	if (ip->frag_off & xl_htons(XL_IP_MF | XL_IP_OFFMASK))
		return XL_XDP_PASS;
	ihl = ip->ver_ihl & 0x0f; /* bounded: 0..15 words */
	if (ihl < 5)
		return XL_XDP_PASS;

	udp = (void *)((xl_u8 *)ip + ihl * 4);
	if ((void *)(udp + 1) > data_end)
		return XL_XDP_PASS;
	if (udp->dest != xl_htons(XL_DNS_PORT))
		return XL_XDP_PASS;
	if (xl_ntohs(udp->len) < sizeof(*udp) + sizeof(*dns))
		return XL_XDP_PASS;

	dns = (void *)(udp + 1);
	if ((void *)(dns + 1) > data_end)
		return XL_XDP_PASS;
	if (dns->flags & xl_htons(XL_DNS_QR))
		return XL_XDP_PASS; /* already a response */

	/* Query -> NXDOMAIN response. */
	old_flags = dns->flags;
	new_flags = (old_flags & ~xl_htons(XL_DNS_RCODE_MASK)) |
		    xl_htons(XL_DNS_QR | XL_DNS_RCODE_NXDOMAIN);
	dns->flags = new_flags;
	if (udp->check) {
		udp->check = xl_csum_replace16(udp->check, old_flags, new_flags);
		if (!udp->check)
			udp->check = 0xffff; /* 0 means "no checksum" in UDP */
	}

	/* Send it back where it came from. */
	for (k = 0; k < XL_ETH_ALEN; k++) {
		mac = eth->h_dest[k];
		eth->h_dest[k] = eth->h_source[k];
		eth->h_source[k] = mac;
	}
	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;
	port = udp->source;
	udp->source = udp->dest;
	udp->dest = port;

	return XL_XDP_TX;
}

#endif /* XDPLAB_DNS_NXDOMAIN_H */
