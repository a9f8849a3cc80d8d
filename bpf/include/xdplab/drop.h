/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * xdplab/drop.h - "drop all": the paper's throughput baseline.
 *   return XDP_DROP;
 */
#ifndef XDPLAB_DROP_H
#define XDPLAB_DROP_H

#include "xdplab/types.h"

XL_INLINE int xl_drop_logic(void *data, void *data_end)
{
	(void)data;
	(void)data_end;
	return XL_XDP_DROP;
}

#endif /* XDPLAB_DROP_H */
