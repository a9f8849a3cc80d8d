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
	if (cfg_gap_fp) {
		state.sent++;
	} else if ((++state.sent & 63) == 1) {
		/* full speed: a time stamp every 64 frames is close enough */
		state.last_ns = bpf_ktime_get_ns();
		if (state.sent == 1)
			state.first_ns = state.last_ns;
	}
	return bpf_redirect(cfg_ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
