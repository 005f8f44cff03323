/* floor(v / 2^shift) on int32, shared by the kernels that shift signed values (the baseline's
 * requant branch, the head's pool shift). */
#ifndef PB_FLOOR_SHIFT_H
#define PB_FLOOR_SHIFT_H

#include <stdint.h>

/* C leaves >> of a negative int implementation-defined, so negatives go through
 * ~v = -v - 1 >= 0: floor(v / 2^s) = ~(~v >> s). GCC folds both arms into one asr.
 * shift must be 0..31; callers check it once, outside their loops. */
static inline int32_t pb_floor_shift(int32_t v, uint32_t shift)
{
    return v >= 0 ? v >> shift : ~(~v >> shift);
}

#endif
