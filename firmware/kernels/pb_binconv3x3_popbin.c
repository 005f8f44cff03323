#include "pb_kernels.h"
#include "pb_popcount.h"

int pb_binconv3x3_popbin(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x_hwc) {
    if (!p || !bits || !x_hwc) return PB_ERR_NULL;
    const uint32_t window = p->window_words, row = p->padded_row_words;
    const int32_t delta = p->delta;
    const uint32_t *out_row = bits; /* top-left word of the window of output (0, 0) */
    for (int oy = 0; oy < p->out_height; oy++) {
        const uint32_t *win = out_row;
        for (int ox = 0; ox < p->out_width; ox++) {
            const uint32_t *wt = p->weights;
            for (int o = 0; o < p->out_channels; o++) {
                uint32_t count = 0;
                const uint32_t *a = win;
                for (int ky = 0; ky < 3; ky++) {
                    for (uint32_t k = 0; k < window; k++) count += pb_popcount32(a[k] ^ *wt++);
                    a += row;
                }
                /* PopBin: the popcount itself is binarized; the branch adds +-delta, no scaling. */
                *x_hwc++ += (int32_t)count <= p->popcount_threshold[o] ? delta : -delta;
            }
            win += p->step_words;
        }
        out_row += p->row_step_words;
    }
    return PB_OK;
}
