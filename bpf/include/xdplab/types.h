/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * xdplab/types.h - freestanding base definitions shared by the kernel
 * (clang -target bpf, BCC) and user-space (gcc/clang) builds.
 *
 * Nothing here includes a system or kernel header: fixed-width types come
 * from the compiler's predefined macros, byte order from __BYTE_ORDER__,
 * so the same text compiles in all three places.
 */
#ifndef XDPLAB_TYPES_H
#define XDPLAB_TYPES_H

typedef __UINT8_TYPE__ xl_u8;
typedef __UINT16_TYPE__ xl_u16;
typedef __UINT32_TYPE__ xl_u32;
typedef __UINT64_TYPE__ xl_u64;

/* Packet logic is always inlined into the entry point (kernel) or the
 * caller (user space); no BPF-to-BPF calls, no function-pointer games. */
#define XL_INLINE static inline __attribute__((always_inline))

/* Ask for full unrolling of a loop with a small constant trip count. */
#if defined(__clang__)
#define XL_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define XL_UNROLL _Pragma("GCC unroll 16")
#else
#define XL_UNROLL
#endif

/* XDP verdicts. Values are the kernel's enum xdp_action (UAPI, stable);
 * kern.h checks that at compile time where the kernel's enum is visible. */
#define XL_XDP_ABORTED 0
#define XL_XDP_DROP 1
#define XL_XDP_PASS 2
#define XL_XDP_TX 3
#define XL_XDP_REDIRECT 4

/* Byte order: network <-> host for 16/32-bit fields. Constant-folds. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define xl_htons(x) ((xl_u16)__builtin_bswap16((xl_u16)(x)))
#define xl_htonl(x) ((xl_u32)__builtin_bswap32((xl_u32)(x)))
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define xl_htons(x) ((xl_u16)(x))
#define xl_htonl(x) ((xl_u32)(x))
#else
#error "xdplab: cannot determine byte order (__BYTE_ORDER__ undefined)"
#endif
#define xl_ntohs(x) xl_htons(x)
#define xl_ntohl(x) xl_htonl(x)

/*
 * Optimisation barrier: tells the compiler that VAR may have been read and
 * changed, so work producing it cannot be folded, hoisted or removed. An
 * empty asm with a register operand: valid for the BPF backend (clang, BCC)
 * and for gcc/clang on the host; costs no instruction.
 */
#define xl_barrier_var(var) __asm__ __volatile__("" : "+r"(var))

#endif /* XDPLAB_TYPES_H */
