#include "pb_kernels.h"

int pb_stem_conv_thermometer(const pb_stem_params_t *p, const uint8_t *image_chw, pb_residual_t *out_hwc) {
    if (!p || !image_chw || !out_hwc) return PB_ERR_NULL;
    const int h = p->height, w = p->width, plane = h * w;
    const int32_t base = -(int32_t)(p->levels / 2);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            const int8_t *wt = p->weight;
            const int32_t *thr = p->thresholds;
            for (int o = 0; o < p->out_channels; o++) {
                int32_t s = 0;
                for (int c = 0; c < 3; c++) {
                    for (int ky = -1; ky <= 1; ky++) {
                        for (int kx = -1; kx <= 1; kx++, wt++) {
                            const int yy = y + ky, xx = x + kx;
                            /* Zero padding of the centred image: outside pixels add nothing. */
                            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                            s += ((int32_t)image_chw[c * plane + yy * w + xx] - 128) * (int32_t)(*wt);
                        }
                    }
                }
                int32_t level = base;
                for (int k = 0; k < p->levels; k++) level += (s >= thr[k]);
                thr += p->levels;
                *out_hwc++ = (pb_residual_t)level;
            }
        }
    }
    return PB_OK;
}
