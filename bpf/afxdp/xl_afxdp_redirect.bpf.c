// SPDX-License-Identifier: GPL-2.0
/*
 * xl_afxdp_redirect.bpf.c - the XDP side of the AF_XDP worker (xl-afxdp).
 *
 * Every frame of the interface's RX queue q goes to the AF_XDP socket in
 * slot q of the XSKMAP xl_xsks; queues without a socket keep the frame
 * (XDP_PASS, the default action of bpf_redirect_map). The program counts
 * what it saw in xl_stats (same layout as the experiment programs):
 *   XL_SEEN        every frame,
 *   XL_REDIRECTED  frames handed to a socket (the socket may still drop
 *                  them when its RX ring is full: see the socket's
 *                  XDP_STATISTICS),
 *   XL_PASSED      frames of queues without a socket.
 * The packet logic itself runs in user space, in the worker.
 *
 * The entry point's name, xl_afxdp_redir, is how xdplab recognises a
 * worker's program on an interface (e.g. one left behind by a killed worker
 * attached through netlink).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdplab/stats.h"

#define XL_AFXDP_MAX_QUEUES 64

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XL_AFXDP_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xl_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XL_NR_COUNTERS);
	__type(key, __u32);
	__type(value, struct xl_counter);
} xl_stats SEC(".maps");

static __always_inline void count(__u32 key, __u64 bytes)
{
	struct xl_counter *c = bpf_map_lookup_elem(&xl_stats, &key);

	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
}

SEC("xdp")
int xl_afxdp_redir(struct xdp_md *ctx)
{
	__u64 bytes = ctx->data_end - ctx->data;
	long action = bpf_redirect_map(&xl_xsks, ctx->rx_queue_index, XDP_PASS);

	count(XL_SEEN, bytes);
	count(action == XDP_REDIRECT ? XL_REDIRECTED : XL_PASSED, bytes);
	return action;
}

char _license[] SEC("license") = "GPL";
