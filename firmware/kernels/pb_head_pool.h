/* The heads' shared first step (pb_head_sumpool_fc.c, pb_head_sumpool_shift.c): sum over positions, then the
 * flooring pool shift. */
#ifndef PB_HEAD_POOL_H
#define PB_HEAD_POOL_H

#include "pb_floor_shift.h"
#include "pb_kernels.h"

/* pooled[c] = (sum over positions of x[., c]) >> pool_shift; the caller checked pool_shift <= 31. The
 * exporter chose pool_shift so that bias + W @ pooled provably stays in int32. */
static inline void pb_head_pool(const pb_head_params_t *p, const pb_residual_t *x_hwc, int32_t *pooled)
{
    for (int c = 0; c < p->channels; c++)
        pooled[c] = 0;
    for (int i = 0; i < p->positions; i++)
        for (int c = 0; c < p->channels; c++)
            pooled[c] += *x_hwc++;
    if (p->pool_shift)
        for (int c = 0; c < p->channels; c++)
            pooled[c] = pb_floor_shift(pooled[c], p->pool_shift);
}

#endif
