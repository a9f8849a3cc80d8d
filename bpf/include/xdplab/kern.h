/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * xdplab/kern.h - kernel-side prelude of every xdplab XDP program.
 *
 * Hides the differences between the two kernel compilers:
 *   - clang -target bpf + libbpf (default): <linux/bpf.h>, <bpf/bpf_helpers.h>,
 *     BTF-style map definition in ".maps", SEC("xdp"), a GPL license section;
 *   - BCC (compile with -DXL_BCC): BCC injects its own helpers and kernel
 *     headers, defines maps with BPF_PERCPU_ARRAY and rewrites .lookup();
 *     the section and license come from BCC itself. BCC rewrites map
 *     accesses only in its main text, so this header must be inlined into
 *     the text (programs.bcc_source() does that), not #included.
 * Programs use XL_PROG(name), xl_frame_len(), xl_account() and XL_LICENSE.
 *
 * -DXL_TARGET_IP=<IPv4 address as an integer, host order> makes the program
 * act only on IPv4 frames to that address: every other frame (ARP, other
 * hosts' traffic) passes with XDP_PASS before the program's logic runs and
 * is not counted. A program on a host's uplink then works on one guest's
 * traffic and leaves its neighbours' traffic alone (the VM experiments).
 *
 * -DXL_OFFLOAD builds the same program for hardware offload (Netronome NFP):
 * the NIC holds no per-CPU maps and refuses plain stores to map values, so
 * xl_stats becomes one shared BPF_MAP_TYPE_ARRAY (same key, same value
 * layout, one value instead of one per CPU) updated with atomic adds.
 */
#ifndef XDPLAB_KERN_H
#define XDPLAB_KERN_H

#include "xdplab/types.h"
#include "xdplab/stats.h"

#ifndef XL_BCC

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#if defined(XL_OFFLOAD) && (XL_OFFLOAD + 0)
#define XL_STATS_SHARED 1
#endif

struct {
#ifdef XL_STATS_SHARED
	__uint(type, BPF_MAP_TYPE_ARRAY);
#else
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
#endif
	__uint(max_entries, XL_NR_COUNTERS);
	__type(key, __u32);
	__type(value, struct xl_counter);
} xl_stats SEC(".maps");

#define XL_PROG_ENTRY(name) SEC("xdp") int name(struct xdp_md *ctx)
#define XL_LICENSE char _license[] SEC("license") = "GPL";

#else /* XL_BCC */

#if defined(XL_OFFLOAD) && (XL_OFFLOAD + 0)
#define XL_STATS_SHARED 1
BPF_ARRAY(xl_stats, struct xl_counter, XL_NR_COUNTERS);
#else
BPF_PERCPU_ARRAY(xl_stats, struct xl_counter, XL_NR_COUNTERS);
#endif

#define XL_PROG_ENTRY(name) int name(struct xdp_md *ctx)
#define XL_LICENSE /* BCC loads with license "GPL" */

#endif /* XL_BCC */

_Static_assert(XL_XDP_ABORTED == XDP_ABORTED && XL_XDP_DROP == XDP_DROP &&
		       XL_XDP_PASS == XDP_PASS && XL_XDP_TX == XDP_TX &&
		       XL_XDP_REDIRECT == XDP_REDIRECT,
	       "xdplab verdicts must equal enum xdp_action");

/* Pointers to the frame, as the packet logic functions take them. */
#define XL_DATA(ctx) ((void *)(long)(ctx)->data)
#define XL_DATA_END(ctx) ((void *)(long)(ctx)->data_end)

#ifdef XL_TARGET_IP
#include "xdplab/proto.h"

/* 1 if the frame is IPv4 to XL_TARGET_IP (the frames the program acts on). */
XL_INLINE int xl_for_target(struct xdp_md *ctx)
{
	struct xl_ethhdr *eth = XL_DATA(ctx);
	struct xl_iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > XL_DATA_END(ctx))
		return 0;
	return eth->h_proto == xl_htons(XL_ETH_P_IP) &&
	       ip->daddr == xl_htonl((xl_u32)(XL_TARGET_IP));
}

/* The entry point passes other frames; the program's body sees only the target's. */
#define XL_PROG(name)                                                          \
	XL_INLINE int name##_for_target(struct xdp_md *ctx);                   \
	XL_PROG_ENTRY(name)                                                    \
	{                                                                      \
		return xl_for_target(ctx) ? name##_for_target(ctx) : XDP_PASS; \
	}                                                                      \
	XL_INLINE int name##_for_target(struct xdp_md *ctx)
#else
#define XL_PROG(name) XL_PROG_ENTRY(name)
#endif

/*
 * Frame length, taken before the packet logic runs. The barrier keeps the
 * compiler from sinking the subtraction past the logic, so the packet
 * pointers are dead once the logic is done and the verifier can prune
 * states at a loop that differ only in proven packet ranges. (Defensive:
 * the current programs verify in the same number of insns without it.)
 */
XL_INLINE xl_u64 xl_frame_len(void *data, void *data_end)
{
	xl_u64 len = (xl_u64)((char *)data_end - (char *)data);

	xl_barrier_var(len);
	return len;
}

/* Per-CPU counter slot KEY of xl_stats (NULL only if KEY is out of range).
 * BCC rewrites map.lookup() itself and refuses it inside a macro, hence a
 * function per compiler instead of a macro. */
XL_INLINE struct xl_counter *xl_stats_slot(xl_u32 key)
{
#ifdef XL_BCC
	return xl_stats.lookup(&key);
#else
	return bpf_map_lookup_elem(&xl_stats, &key);
#endif
}

/* Add to a counter: a plain add in a per-CPU slot, an atomic add (no
 * fetch) in the shared offload array. */
#ifdef XL_STATS_SHARED
#define XL_COUNT(field, value) __sync_fetch_and_add(&(field), (value))
#else
#define XL_COUNT(field, value) ((field) += (value))
#endif

/* Count one packet of BYTES bytes as seen and under its verdict. */
XL_INLINE void xl_account(int verdict, xl_u64 bytes)
{
	struct xl_counter *c;
	xl_u32 key;

	c = xl_stats_slot(XL_SEEN);
	if (c) {
		XL_COUNT(c->packets, 1);
		XL_COUNT(c->bytes, bytes);
	}
	key = xl_verdict_key(verdict);
	if (key >= XL_NR_COUNTERS)
		return;
	c = xl_stats_slot(key);
	if (c) {
		XL_COUNT(c->packets, 1);
		XL_COUNT(c->bytes, bytes);
	}
}

#endif /* XDPLAB_KERN_H */
