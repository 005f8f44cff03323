#include "pb_binconv_walk.h"
#include "pb_kernels.h"

/* PopBin: the popcount itself is binarized; the branch adds +-delta, no scaling. */
static inline __attribute__((always_inline)) int32_t popbin_branch(const pb_binconv_params_t *p, int o,
                                                                   uint32_t count) {
    return (int32_t)count <= p->popcount_threshold[o] ? p->delta : -p->delta;
}

int pb_binconv3x3_popbin(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x_hwc) {
    if (!p || !bits || !x_hwc) return PB_ERR_NULL;
    pb_binconv_walk(p, bits, x_hwc, popbin_branch);
    return PB_OK;
}
