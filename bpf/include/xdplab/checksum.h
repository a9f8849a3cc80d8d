/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * xdplab/checksum.h - "processing complexity" with a real computation:
 * N times the RFC 1071 Internet checksum of the frame's IPv4 header, then
 * drop every packet.
 *   for (i = 0; i < N; i++) calculate_checksum(); return XDP_DROP;
 *
 * Behaviour:
 *   - IPv4 (EtherType 0x0800, version 4, 5 <= IHL <= 15, whole header in the
 *     frame): the header (20..60 bytes, options included) is copied once
 *     into a zero-padded 60-byte buffer on the stack; then N times: the
 *     one's-complement sum of its fifteen 32-bit words is computed and
 *     folded (zero padding does not change the sum). The result of every
 *     iteration is kept live by a barrier; the packet is not modified.
 *   - anything else (non-IPv4, truncated header, bad version/IHL): no
 *     checksum work.
 *   - the verdict is always XDP_DROP (like the paper's program), so the
 *     program counts and drops every frame: seen == dropped.
 *
 * Why the copy: summing a fixed 15-word buffer needs no branch per word, so
 * an iteration costs the verifier ~50 insns whatever the IHL. Each word
 * sits in its own 64-bit stack slot: the verifier then sees every slot as
 * a spilled, imprecise scalar, the states of the different IHL paths are
 * equal at the loop head and it walks the loop once, not once per IHL
 * (with packed 32-bit words it kept them apart and N = 1000 already hit
 * its 1M-insn budget). N = 10000 loads as a plain bounded loop.
 */
#ifndef XDPLAB_CHECKSUM_H
#define XDPLAB_CHECKSUM_H

#include "xdplab/types.h"
#include "xdplab/proto.h"

#ifndef N
#define N 1
#endif

#define XL_IPV4_MAX_WORDS 15 /* IHL is 4 bits: at most 60 bytes */

/* RFC 1071 checksum (inverted, network order) of a zero-padded header. */
XL_INLINE xl_u16 xl_ipv4_csum_words(const xl_u64 *w)
{
	xl_u64 sum = 0;
	int k;

	XL_UNROLL
	for (k = 0; k < XL_IPV4_MAX_WORDS; k++)
		sum += w[k];
	return (xl_u16)~xl_csum_fold(sum);
}

XL_INLINE int xl_checksum_logic(void *data, void *data_end)
{
	struct xl_ethhdr *eth = data;
	struct xl_iphdr *ip;
	xl_u64 hdr[XL_IPV4_MAX_WORDS]; /* one 32-bit word per slot */
	xl_u32 *src;
	xl_u64 *words;
	xl_u32 ihl, k, i;
	xl_u16 csum;

	if ((void *)(eth + 1) > data_end)
		return XL_XDP_DROP;
	if (eth->h_proto != xl_htons(XL_ETH_P_IP))
		return XL_XDP_DROP;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XL_XDP_DROP;
	if ((ip->ver_ihl >> 4) != 4)
		return XL_XDP_DROP;
	ihl = ip->ver_ihl & 0x0f;
	if (ihl < 5)
		return XL_XDP_DROP;

	/* Copy the header, bounds-checked word by word, zero-padded. */
	src = (xl_u32 *)ip;
	XL_UNROLL
	for (k = 0; k < XL_IPV4_MAX_WORDS; k++) {
		if (k < ihl) {
			if ((void *)(src + k + 1) > data_end)
				return XL_XDP_DROP; /* options run past the frame */
			hdr[k] = src[k];
		} else {
			hdr[k] = 0;
		}
	}

	words = hdr;
	for (i = 0; i < (xl_u32)(N); i++) {
		/* words "may change": reload and re-sum every iteration */
		xl_barrier_var(words);
		csum = xl_ipv4_csum_words(words);
		xl_barrier_var(csum);
	}
	return XL_XDP_DROP;
}

#endif /* XDPLAB_CHECKSUM_H */
