// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* XDP half of xl-loadgen.
 *
 * BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES runs this program on
 * frames from a page pool that the kernel initialised once from the template
 * and then recycles: whatever the receiver (or a responder rewriting in place)
 * did to a frame is still there the next time round. So the program writes
 * the whole header region (Ethernet, IPv4, UDP and, for DNS, the query) from
 * the template on every run, counts the frame and redirects it into the
 * generator's interface.
 *
 * Paced mode (cfg_gap_fp != 0): frames that come up more than cfg_spin_ns
 * before the next burst is due are dropped unsent (polling); the first frame
 * of a burst of cfg_burst frames busy-waits the last stretch (bpf_loop over
 * bpf_ktime_get_ns), so the rate is constant down to the burst granularity. A sender that was
 * off the CPU catches up at no more than twice the rate; one more than
 * cfg_slack_ns (200 ms) behind restarts its schedule instead (counted in
 * state.late).
 *
 * Flows (cfg_flows > 1): frame n of a thread gets UDP source port
 * cfg_sport + (n mod cfg_flows), with the UDP checksum updated incrementally
 * (RFC 1624), so the frames stay valid and spread over cfg_flows 5-tuples.
 *
 * Steering (cfg_queues > 1): veth puts a redirected frame on the RX queue
 * (sending CPU mod RX queues), whatever its flow. To spread flows over the
 * peer's queues as RSS would, flow f is redirected through a cpumap to the
 * CPU cfg_queue_cpu[f mod cfg_queues]; that CPU's cpumap kthread runs
 * xl_loadgen_to_dev, which redirects it into the interface, so it lands on
 * the queue of that CPU. Frames whose queue the sending CPU selects itself
 * are redirected directly (no detour, no kthread).
 *
 * Configuration is in .rodata, set by user space before load; the map is
 * frozen, so the verifier sees constants and prunes what is not used. The
 * state is in .bss, one program instance (and so one state) per sending
 * thread; user space reads it through the skeleton's mmap.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "xl_loadgen.h"

const volatile __u32 cfg_ifindex = 0;
/* Number of whole words to copy from cfg_words to the frame start. */
const volatile __u32 cfg_nwords = 0;
/* When the header length is not a multiple of 8: one more, overlapping
 * 8-byte store of cfg_tail at byte offset cfg_tail_off (0 = none). */
const volatile __u32 cfg_tail_off = 0;
const volatile __u64 cfg_tail = 0;
const volatile __u64 cfg_words[XL_LG_MAX_WORDS] = {};
/* Pacing: time between bursts in ns << 16 (0 = full speed). */
const volatile __u64 cfg_gap_fp = 0;
const volatile __u32 cfg_burst = 1;
const volatile __u64 cfg_slack_ns = 0;	/* behind by more: restart */
const volatile __u64 cfg_catchup_ns = 0;	/* min. gap while behind */
const volatile __u64 cfg_spin_ns = 0;		/* spin at most this long */
const volatile __u64 cfg_total = 0;		/* frames to send in all */
const volatile __u32 cfg_flows = 1;		/* source ports in use */
const volatile __u16 cfg_sport = 0;		/* first source port (host order) */
const volatile __u16 cfg_ucsum = 0;		/* UDP checksum with cfg_sport (host order) */
const volatile __u32 cfg_queues = 0;		/* > 1: steer flows over this many queues */
const volatile __u32 cfg_rx_queues = 1;	/* the peer's RX queues */
const volatile __u32 cfg_queue_id[XL_LG_MAX_QUEUES] = {};	/* queues reached */
const volatile __u32 cfg_queue_cpu[XL_LG_MAX_QUEUES] = {};	/* and a CPU for each */

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(max_entries, XL_LG_MAX_CPUS);	/* user space lowers it to the possible CPUs */
	__type(key, __u32);
	__type(value, struct bpf_cpumap_val);
} xl_lg_cpus SEC(".maps");

struct xl_lg_state state = {};

static long wait_until(__u32 index, void *ctx)
{
	return bpf_ktime_get_ns() >= *(__u64 *)ctx;
}

/* Spin until due (at most XL_LG_SPIN_NS in practice, see pace()). */
static __always_inline void spin_until(__u64 due, __u64 *now)
{
	if (*now < due) {
		bpf_loop(1 << 23, wait_until, &due, 0);
		*now = bpf_ktime_get_ns();
	}
}

/* Paced mode: may this frame go now? Returns 0 for a frame that is not due
 * yet by more than cfg_spin_ns: the caller drops it unsent (it goes back to
 * the page pool) and the test run goes on with the next one, so long gaps
 * are polled with bottom halves enabled between batches, and only the last
 * stretch before a burst is spun in here. */
static __always_inline int pace(void)
{
	__u64 now, due;

	if (state.left) {
		state.left--;
		return 1;
	}
	now = bpf_ktime_get_ns();
	if (!state.base_ns)
		state.base_ns = now;
	due = state.base_ns + ((state.bursts * cfg_gap_fp) >> 16);
	if (now < due) {
		if (due - now > cfg_spin_ns)
			return 0;
		spin_until(due, &now);
	} else if (now - due > cfg_slack_ns) {
		/* too far behind: start a new schedule, the loss shows in
		 * the achieved rate */
		state.late++;
		state.base_ns = now;
		state.bursts = 0;
	} else if (state.last_ns + cfg_catchup_ns > now) {
		/* behind: catch up, but at most at twice the rate */
		if (state.last_ns + cfg_catchup_ns - now > cfg_spin_ns)
			return 0;
		spin_until(state.last_ns + cfg_catchup_ns, &now);
	}
	if (!state.first_ns)
		state.first_ns = now;
	state.last_ns = now;
	state.bursts++;
	state.left = cfg_burst - 1;
	return 1;
}

SEC("xdp")
int xl_loadgen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 *word = data;
	__u32 flow = 0;

	/* paced: nothing after the planned frames, nothing before it is due */
	if (cfg_gap_fp && (state.sent >= cfg_total || !pace()))
		return XDP_DROP;
#pragma unroll
	for (int i = 0; i < XL_LG_MAX_WORDS; i++) {
		if (i >= cfg_nwords)
			break;
		if ((void *)(word + i + 1) > data_end)
			return XDP_ABORTED;
		word[i] = cfg_words[i];
	}
	if (cfg_tail_off) {
		if (data + cfg_tail_off + sizeof(__u64) > data_end)
			return XDP_ABORTED;
		*(__u64 *)(data + cfg_tail_off) = cfg_tail;
	}
	if (cfg_flows > 1) {
		__u32 f = state.flow;
		__u16 port = cfg_sport + f;
		__u32 sum;
		__u16 csum;

		if (++state.flow >= cfg_flows)
			state.flow = 0;
		if (data + XL_LG_UCSUM_OFF + 2 > data_end)
			return XDP_ABORTED;
		/* RFC 1624: HC' = ~(~HC + ~m + m') */
		sum = (__u16)~cfg_ucsum + (__u16)~cfg_sport + (__u32)port;
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		csum = (__u16)~sum;
		*(__u16 *)(data + XL_LG_SPORT_OFF) = __builtin_bswap16(port);
		*(__u16 *)(data + XL_LG_UCSUM_OFF) = __builtin_bswap16(csum ? csum : 0xffff);
		flow = f;
	}
	if (cfg_gap_fp) {
		state.sent++;
	} else if ((++state.sent & 63) == 1) {
		/* full speed: a time stamp every 64 frames is close enough */
		state.last_ns = bpf_ktime_get_ns();
		if (state.sent == 1)
			state.first_ns = state.last_ns;
	}
	if (cfg_queues > 1) {
		__u32 q = flow % cfg_queues;

		if (q >= XL_LG_MAX_QUEUES)
			return XDP_ABORTED;
		/* this CPU selects the frame's queue itself: no detour */
		if (bpf_get_smp_processor_id() % cfg_rx_queues == cfg_queue_id[q])
			return bpf_redirect(cfg_ifindex, 0);
		return bpf_redirect_map(&xl_lg_cpus, cfg_queue_cpu[q], 0);
	}
	return bpf_redirect(cfg_ifindex, 0);
}

/* Steering: runs in the cpumap kthread of the CPU whose RX queue the frame is for. */
SEC("xdp/cpumap")
int xl_loadgen_to_dev(struct xdp_md *ctx)
{
	return bpf_redirect(cfg_ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
