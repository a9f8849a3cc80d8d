/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * xdplab/proto.h - minimal Ethernet / IPv4 / UDP / DNS headers and
 * one's-complement checksum helpers (RFC 1071, RFC 1624).
 *
 * Own definitions instead of <linux/if_ether.h>, <linux/ip.h>, ... so that
 * user-space builds need no kernel headers and BCC builds see no clashes.
 * Layouts follow the wire format; multi-byte fields are in network order.
 */
#ifndef XDPLAB_PROTO_H
#define XDPLAB_PROTO_H

#include "xdplab/types.h"

#define XL_ETH_ALEN 6
#define XL_ETH_HLEN 14
#define XL_ETH_P_IP 0x0800
#define XL_IPPROTO_TCP 6
#define XL_IPPROTO_UDP 17
#define XL_IP_MF 0x2000      /* more fragments (host order) */
#define XL_IP_OFFMASK 0x1fff /* fragment offset (host order) */
#define XL_DNS_PORT 53
#define XL_DNS_QR 0x8000          /* flags: 1 = response */
#define XL_DNS_RCODE_MASK 0x000f  /* flags: response code */
#define XL_DNS_RCODE_NXDOMAIN 3

struct xl_ethhdr {
	xl_u8 h_dest[XL_ETH_ALEN];
	xl_u8 h_source[XL_ETH_ALEN];
	xl_u16 h_proto;
};

struct xl_iphdr {
	xl_u8 ver_ihl; /* version (high nibble), header length in words (low) */
	xl_u8 tos;
	xl_u16 tot_len;
	xl_u16 id;
	xl_u16 frag_off;
	xl_u8 ttl;
	xl_u8 protocol;
	xl_u16 check;
	xl_u32 saddr;
	xl_u32 daddr;
};

struct xl_udphdr {
	xl_u16 source;
	xl_u16 dest;
	xl_u16 len;
	xl_u16 check;
};

struct xl_dnshdr {
	xl_u16 id;
	xl_u16 flags;
	xl_u16 qdcount;
	xl_u16 ancount;
	xl_u16 nscount;
	xl_u16 arcount;
};

/* Fold a 32-bit one's-complement accumulator to 16 bits (not inverted). */
XL_INLINE xl_u16 xl_csum_fold(xl_u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (xl_u16)sum;
}

/*
 * RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m') for a checksum HC over data in
 * which one 16-bit word changes from m to m'. All three values as stored in
 * the packet (network order; one's-complement sums are order-independent).
 */
XL_INLINE xl_u16 xl_csum_replace16(xl_u16 check, xl_u16 old, xl_u16 new_)
{
	xl_u64 sum = (xl_u16)~check;
	sum += (xl_u16)~old;
	sum += new_;
	return (xl_u16)~xl_csum_fold(sum);
}

#endif /* XDPLAB_PROTO_H */
