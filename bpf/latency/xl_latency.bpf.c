// SPDX-License-Identifier: GPL-2.0
/*
 * xl_latency.bpf.c - the XDP half of the latency client (xl-latency).
 *
 * Runs on the client's own interface. Every IPv4 frame of RX queue q gets a
 * receive time stamp (bpf_ktime_get_ns, CLOCK_MONOTONIC) in its XDP metadata
 * and goes to the AF_XDP socket in slot q of xl_lat_xsks, where the client
 * validates it as a DNS reply; everything else (ARP, IPv6) is passed to the
 * stack. All IPv4 frames, not just UDP from port 53, so that a responder
 * that mangles a reply shows up as an invalid reply rather than as a loss.
 *
 * On a veth pair, having this program attached is also what makes the peer
 * deliver its XDP_TX/redirected frames here at all.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xl_latency.h"

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XL_LAT_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xl_lat_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XL_LAT_NR_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} xl_lat_stats SEC(".maps");

static __always_inline void count(__u32 key)
{
	__u64 *c = bpf_map_lookup_elem(&xl_lat_stats, &key);

	if (c)
		*c += 1;
}

SEC("xdp")
int xl_latency_rx(struct xdp_md *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct xl_lat_meta *meta;
	long action;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		count(XL_LAT_PASSED);
		return XDP_PASS;
	}
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*meta)) == 0) {
		meta = (void *)(long)ctx->data_meta;
		data = (void *)(long)ctx->data;
		if ((void *)(meta + 1) <= data) {
			meta->magic = XL_LAT_META_MAGIC;
			meta->rx_ns = now;
		}
	} else {
		count(XL_LAT_NO_META);
	}
	action = bpf_redirect_map(&xl_lat_xsks, ctx->rx_queue_index, XDP_PASS);
	count(action == XDP_REDIRECT ? XL_LAT_TO_SOCKET : XL_LAT_NOT_TAKEN);
	return action;
}

char _license[] SEC("license") = "GPL";
