// SPDX-License-Identifier: GPL-2.0
/*
 * loop.bpf.c - XDP entry point of the "loop" program: N iterations of a trivial operation, then XDP_DROP (-DN=<n>).
 * Packet logic: xdplab/loop.h (shared with BCC and user space).
 */
#include "xdplab/kern.h"
#include "xdplab/loop.h"

XL_PROG(xl_loop)
{
	void *data = XL_DATA(ctx);
	void *data_end = XL_DATA_END(ctx);
	xl_u64 bytes = xl_frame_len(data, data_end);
	int verdict = xl_loop_logic(data, data_end);

	xl_account(verdict, bytes);
	return verdict;
}

XL_LICENSE
