/* Popcount of one 32-bit word. The reference path is the compiler builtin (a libgcc call on
 * Cortex-M, which has no popcount instruction); the fast path is inline bit arithmetic. */
#ifndef PB_POPCOUNT_H
#define PB_POPCOUNT_H

#include <stdint.h>

#include "pb_model_config.h"

static inline uint32_t pb_popcount32(uint32_t v) {
#if PB_KERNEL_FAST
    /* SWAR: pairs, nibbles, bytes; the final byte sum by shifts and adds, no multiply. */
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    v = (v + (v >> 4)) & 0x0F0F0F0Fu;
    v = v + (v >> 8);
    v = v + (v >> 16);
    return v & 0x3Fu;
#else
    return (uint32_t)__builtin_popcount(v);
#endif
}

#endif
