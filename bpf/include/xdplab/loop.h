/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * xdplab/loop.h - "processing complexity": N iterations of a trivial
 * operation the compiler may not fold, then drop every packet.
 *   for (i = 0; i < N; i++) do_something(); return XDP_DROP;
 *
 * N is fixed at compile time (-DN=<n>, default 1). do_something() is one
 * add on an accumulator followed by an optimisation barrier, so each
 * iteration costs a constant, small amount of work in every build (kernel
 * JIT, BCC, native) and the loop cannot be replaced by a closed form.
 * A bounded loop: the verifier walks it (about 3-5 insns per iteration),
 * so N up to well over 10000 loads without unrolling.
 */
#ifndef XDPLAB_LOOP_H
#define XDPLAB_LOOP_H

#include "xdplab/types.h"

#ifndef N
#define N 1
#endif

XL_INLINE int xl_loop_logic(void *data, void *data_end)
{
	xl_u64 acc = 0;
	xl_u32 i;

	(void)data;
	(void)data_end;
	for (i = 0; i < (xl_u32)(N); i++) {
		acc += i;
		xl_barrier_var(acc);
	}
	return XL_XDP_DROP;
}

#endif /* XDPLAB_LOOP_H */
