// SPDX-License-Identifier: GPL-2.0
/*
 * dns_nxdomain.bpf.c - XDP entry point of the "dns_nxdomain" program: answer DNS queries with NXDOMAIN via XDP_TX.
 * Packet logic: xdplab/dns_nxdomain.h (shared with BCC and user space).
 */
#include "xdplab/kern.h"
#include "xdplab/dns_nxdomain.h"

XL_PROG(xl_dns_nxdomain)
{
	void *data = XL_DATA(ctx);
	void *data_end = XL_DATA_END(ctx);
	xl_u64 bytes = xl_frame_len(data, data_end);
	int verdict = xl_dns_nxdomain_logic(data, data_end);

	xl_account(verdict, bytes);
	return verdict;
}

XL_LICENSE
