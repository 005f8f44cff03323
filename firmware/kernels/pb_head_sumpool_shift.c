#include "pb_head_pool.h"

/* The head without a multiply (`--head shift`): the weights are powers of two, stored as codes
 * (codegen/pack.py head_shift_codes): 0 is a weight of 0, +(e + 1) is +2^e and -(e + 1) is -2^e, e <= 6.
 * A product is a left shift of pooled, done on uint32 (C leaves << of a negative int undefined; the two's
 * complement bits are the same), then an add or a subtract. The exporter's static bound (pbkit.ir.head_bound,
 * with the power-of-two values) keeps every partial sum inside int32. One loop serves both builds, as the
 * int8 head's does: 1,280 terms at width 0.25, no layout to win. */

int pb_head_sumpool_shift_path(const pb_head_params_t *p)
{
    (void)p;
    return PB_PATH_HEAD_SHIFT;
}

int pb_head_sumpool_shift(const pb_head_params_t *p, const pb_residual_t *x_hwc, int32_t *pooled, int32_t *logits,
                          uint32_t *class_index)
{
    if (!p || !x_hwc || !pooled || !logits || !class_index || !p->weight || !p->bias)
        return PB_ERR_NULL;
    if (p->classes == 0 || p->pool_shift > 31)
        return PB_ERR_SHAPE;
    pb_head_pool(p, x_hwc, pooled);
    const int8_t *code = p->weight;
    uint32_t best = 0;
    for (int k = 0; k < p->classes; k++) {
        int32_t acc = p->bias[k];
        for (int c = 0; c < p->channels; c++, code++) {
            if (*code == 0)
                continue;
            const int negative = *code < 0;
            const uint32_t shift = (uint32_t)(negative ? -*code : *code) - 1u;
            if (shift > 6u)
                return PB_ERR_SHAPE;
            const int32_t term = (int32_t)((uint32_t)pooled[c] << shift);
            acc = negative ? acc - term : acc + term;
        }
        logits[k] = acc;
        if (acc > logits[best])
            best = (uint32_t)k; /* strict: ties keep the lowest index */
    }
    *class_index = best;
    return PB_OK;
}
