#include "pb_head_pool.h"

int pb_head_sumpool_fc_path(const pb_head_params_t *p)
{
    (void)p;
    return PB_PATH_HEAD;
}

int pb_head_sumpool_fc(const pb_head_params_t *p, const pb_residual_t *x_hwc, int32_t *pooled, int32_t *logits,
                       uint32_t *class_index)
{
    if (!p || !x_hwc || !pooled || !logits || !class_index)
        return PB_ERR_NULL;
    if (p->classes == 0 || p->pool_shift > 31)
        return PB_ERR_SHAPE;
    pb_head_pool(p, x_hwc, pooled);
    const int8_t *w = p->weight;
    uint32_t best = 0;
    for (int k = 0; k < p->classes; k++) {
        int32_t acc = p->bias[k];
        for (int c = 0; c < p->channels; c++)
            acc += (int32_t)(*w++) * pooled[c];
        logits[k] = acc;
        if (acc > logits[best])
            best = (uint32_t)k; /* strict: ties keep the lowest index */
    }
    *class_index = best;
    return PB_OK;
}
