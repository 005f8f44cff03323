#include "pb_kernels.h"

/* In place is safe: output pixel (oy, ox) occupies the slots of input pixels (2oy, 2ox) and
 * (2oy, 2ox+1) only for oy = 0, and each channel is read before its two slots are written;
 * for oy > 0 every write lands below the rows still to be read. */
int pb_sumpool2x2_dup(const pb_sumpool_params_t *p, pb_residual_t *x_hwc) {
    if (!p || !x_hwc) return PB_ERR_NULL;
    const int c = p->channels;
    const uint32_t row = p->row_elements;
    pb_residual_t *dst = x_hwc;
    const pb_residual_t *src_row = x_hwc;
    for (int oy = 0; oy < p->in_height; oy += 2) {
        const pb_residual_t *s = src_row;
        for (int ox = 0; ox < p->in_width; ox += 2) {
            for (int ch = 0; ch < c; ch++) {
                const int32_t sum = (int32_t)s[ch] + s[ch + c] + s[ch + row] + s[ch + row + c];
                dst[ch] = (pb_residual_t)sum;
                dst[ch + c] = (pb_residual_t)sum;
            }
            dst += c + c;
            s += c + c;
        }
        src_row += row + row;
    }
    return PB_OK;
}
