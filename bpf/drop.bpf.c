// SPDX-License-Identifier: GPL-2.0
/*
 * drop.bpf.c - XDP entry point of the "drop" program: drop all: return XDP_DROP.
 * Packet logic: xdplab/drop.h (shared with BCC and user space).
 */
#include "xdplab/kern.h"
#include "xdplab/drop.h"

XL_PROG(xl_drop)
{
	void *data = XL_DATA(ctx);
	void *data_end = XL_DATA_END(ctx);
	xl_u64 bytes = xl_frame_len(data, data_end);
	int verdict = xl_drop_logic(data, data_end);

	xl_account(verdict, bytes);
	return verdict;
}

XL_LICENSE
