/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Shared between the XDP part (xl_loadgen.bpf.c) and the user-space part
 * (xl_loadgen.c) of the xl-loadgen live-frames load generator. */
#ifndef XL_LOADGEN_H
#define XL_LOADGEN_H

#include <linux/types.h>

/* The XDP program rewrites at most this many 8-byte words at the start of
 * every frame on every run: enough for Ethernet + IPv4 + UDP + a DNS query
 * with a name of up to 70 bytes on the wire. */
#define XL_LG_MAX_WORDS 16
#define XL_LG_MAX_HDR (XL_LG_MAX_WORDS * 8)

/* Flows: the UDP source port of a frame is src_port + flow, flow 0..flows-1;
 * byte offsets of the UDP source port and checksum (IPv4 without options). */
#define XL_LG_SPORT_OFF 34
#define XL_LG_UCSUM_OFF 40
/* Steering over a veth peer's RX queues: at most this many queues and CPUs. */
#define XL_LG_MAX_QUEUES 64
#define XL_LG_MAX_CPUS 1024

/* Per-thread state of the XDP program (its .bss), read by user space. */
struct xl_lg_state {
	__u64 sent;		/* frames redirected */
	__u64 late;		/* paced: schedule restarts after falling behind */
	__u64 base_ns;		/* paced: schedule origin (CLOCK_MONOTONIC) */
	__u64 bursts;		/* paced: bursts since base_ns */
	__u64 first_ns;		/* time of the first frame (CLOCK_MONOTONIC) */
	__u64 last_ns;		/* time of the last burst start (paced) or of the
				 * last frame n with n % 64 == 1 (full speed) */
	__u32 left;		/* paced: frames left in the current burst */
	__u32 flow;		/* flow of the next frame, 0..cfg_flows-1 */
};

#endif
