/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * xl_latency.h - shared between the latency client (xl_latency.c) and its
 * XDP half (xl_latency.bpf.c).
 *
 * The XDP program stores, in the frame's XDP metadata area (just before the
 * packet data), the kernel's CLOCK_MONOTONIC time at which the frame reached
 * the client's interface; AF_XDP copy mode copies the metadata along with
 * the frame, so user space finds it at data - sizeof(struct xl_lat_meta).
 */
#ifndef XL_LATENCY_H
#define XL_LATENCY_H

#define XL_LAT_MAX_QUEUES 64
#define XL_LAT_META_MAGIC 0x584c4c41544d4554ULL /* "XLLATMET" */

struct xl_lat_meta {
	__u64 magic;
	__u64 rx_ns; /* bpf_ktime_get_ns() at the XDP hook */
};

/* Per-CPU counters of the XDP program (u64 each). */
enum xl_lat_counter {
	XL_LAT_TO_SOCKET = 0,  /* IPv4 frames redirected to the socket */
	XL_LAT_NOT_TAKEN = 1,  /* IPv4 frames of a queue without the socket */
	XL_LAT_PASSED = 2,     /* non-IPv4 frames (ARP, IPv6): left to the stack */
	XL_LAT_NO_META = 3,    /* frames without room for the time stamp */
	XL_LAT_NR_COUNTERS = 4,
};

#endif /* XL_LATENCY_H */
