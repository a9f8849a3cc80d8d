/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * xdplab/stats.h - layout of the per-CPU counters map `xl_stats`
 * (BPF_MAP_TYPE_PERCPU_ARRAY, key u32, value struct xl_counter).
 * Shared with user space (AF_XDP worker, Python readers).
 */
#ifndef XDPLAB_STATS_H
#define XDPLAB_STATS_H

#include "xdplab/types.h"

enum xl_counter_key {
	XL_SEEN = 0,       /* every packet the program ran on */
	XL_DROPPED = 1,    /* verdict XDP_DROP */
	XL_TX = 2,         /* verdict XDP_TX */
	XL_PASSED = 3,     /* verdict XDP_PASS */
	XL_REDIRECTED = 4, /* verdict XDP_REDIRECT */
	XL_NR_COUNTERS = 5,
};

struct xl_counter {
	xl_u64 packets;
	xl_u64 bytes;
};

/* Counter key for a verdict, or XL_NR_COUNTERS for none (XDP_ABORTED). */
XL_INLINE xl_u32 xl_verdict_key(int verdict)
{
	switch (verdict) {
	case XL_XDP_DROP:
		return XL_DROPPED;
	case XL_XDP_TX:
		return XL_TX;
	case XL_XDP_PASS:
		return XL_PASSED;
	case XL_XDP_REDIRECT:
		return XL_REDIRECTED;
	default:
		return XL_NR_COUNTERS;
	}
}

#endif /* XDPLAB_STATS_H */
