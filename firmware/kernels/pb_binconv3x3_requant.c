#include "pb_binconv_walk.h"
#include "pb_floor_shift.h"
#include "pb_kernels.h"

/* Baseline: BN folded into one int32 multiply-add and a shift (the multiply the deck counts).
 * The product stays in int32: the exporter checked |N M| + |B| < 2^31. */
static inline __attribute__((always_inline)) int32_t requant_branch(const pb_binconv_params_t *p, int o, uint32_t count,
                                                                    const uint32_t *tail)
{
    (void)tail;
    const int32_t dot = p->fan_in - (int32_t)(count << 1); /* +-1 dot product p */
    return pb_floor_shift(dot * p->multiplier[o] + p->bias[o], p->shift);
}

/* The path of a shape (pb_kernels.h's table): the C walk, two pixels a word up to 16 channels. */
int pb_binconv3x3_requant_path(const pb_binconv_params_t *p)
{
    if (!PB_KERNEL_FAST)
        return PB_PATH_REFERENCE;
    if (!p || p->in_words > PB_FAST_MAX_IN_WORDS)
        return PB_PATH_REFUSED;
    return p->in_channels <= PB_HALVES_MAX_CHANNELS ? PB_PATH_REQUANT_HALVES_C : PB_PATH_REQUANT_C;
}

int pb_binconv3x3_requant(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x_hwc)
{
    if (!p || !bits || !x_hwc || !p->multiplier || !p->bias)
        return PB_ERR_NULL;
    if (p->shift > 31)
        return PB_ERR_SHAPE;
    return pb_binconv_walk(p, bits, x_hwc, requant_branch, 0, 0, 0);
}
