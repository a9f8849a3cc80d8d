// SPDX-License-Identifier: GPL-2.0
/*
 * checksum.bpf.c - XDP entry point of the "checksum" program: N IPv4 header checksums, then XDP_DROP (-DN=<n>).
 * Packet logic: xdplab/checksum.h (shared with BCC and user space).
 */
#include "xdplab/kern.h"
#include "xdplab/checksum.h"

XL_PROG(xl_checksum)
{
	void *data = XL_DATA(ctx);
	void *data_end = XL_DATA_END(ctx);
	xl_u64 bytes = xl_frame_len(data, data_end);
	int verdict = xl_checksum_logic(data, data_end);

	xl_account(verdict, bytes);
	return verdict;
}

XL_LICENSE
