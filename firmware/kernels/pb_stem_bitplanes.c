#include "pb_kernels.h"
#include "pb_popcount.h"

/* The bit-plane stem (`--stem bitplanes`), with no multiply anywhere, address arithmetic included (every
 * stride is walked with adds):
 *   1. each pixel becomes one word of thermometer planes: bit c L + k is 1 where pixel[c] >= t_k (L planes per
 *      colour channel, 3 L <= 32 bits, the high bits 0), in `planes` ((H+2) x (W+2) words, border 0: a black
 *      pixel, the -1 padding of the contract);
 *   2. each output channel o: popcount(window XOR w_o) over the 9 words of the 3x3 window;
 *   3. level = -levels/2 + #{k : N - 2 popcount >= T[o][k]}, N = 9 x 3 L.
 * The reference counts one word at a time (pb_popcount32); the fast path reads the exporter's carry-save
 * layout (codegen/pack.py bitstem_fast_words): per channel the 12 derived weight words of pb_count9_bytes,
 * then the levels thresholds on the popcount, U_k = floor((N - T_k) / 2), so that a level is the count of
 * U_k >= popcount. */

/* One word of thermometer planes per pixel, into the interior of the bordered buffer (the border is zeroed). */
static void encode_planes(const pb_bitstem_params_t *p, const uint8_t *image_chw, uint32_t *planes) {
    const int h = p->height, w = p->width, row = w + 2;
    uint32_t *q = planes;
    for (int i = 0; i < row; i++) *q++ = 0; /* top border */
    const uint8_t *red = image_chw;
    const uint32_t plane_bytes = p->plane_pixels; /* h * w, from the exporter: no multiply here */
    for (int y = 0; y < h; y++) {
        *q++ = 0; /* left border */
        for (int x = 0; x < w; x++, red++) {
            uint32_t word = 0;
            unsigned shift = 0;
            const uint8_t *pixel = red;
            for (int c = 0; c < 3; c++, pixel += plane_bytes, shift += p->planes) {
                unsigned count = 0;
                for (int k = 0; k < p->planes; k++) count += (*pixel >= p->input_thresholds[k]);
                word |= ((1u << count) - 1u) << shift; /* thermometer: the low `count` planes */
            }
            *q++ = word;
        }
        *q++ = 0; /* right border */
    }
    for (int i = 0; i < row; i++) *q++ = 0; /* bottom border */
}

static int check(const pb_bitstem_params_t *p, const uint8_t *image_chw, const uint32_t *planes,
                 const pb_residual_t *out_hwc) {
    if (!p || !image_chw || !planes || !out_hwc || !p->input_thresholds || !p->weights) return PB_ERR_NULL;
    if (p->planes == 0 || p->planes > 10 || p->height == 0 || p->width == 0 || p->levels == 0) return PB_ERR_SHAPE;
    if (p->fan_in == 0 || p->plane_pixels == 0) return PB_ERR_SHAPE;
    return PB_OK;
}

#if !PB_KERNEL_FAST
int pb_stem_bitplanes_path(const pb_bitstem_params_t *p) {
    (void)p;
    return PB_PATH_REFERENCE;
}

/* Reference: the contract as written, one window word at a time. */
int pb_stem_bitplanes(const pb_bitstem_params_t *p, const uint8_t *image_chw, uint32_t *planes,
                      pb_residual_t *out_hwc) {
    const int status = check(p, image_chw, planes, out_hwc);
    if (status != PB_OK) return status;
    if (!p->thresholds) return PB_ERR_NULL;
    encode_planes(p, image_chw, planes);
    const int row = p->width + 2;
    const int32_t base = -(int32_t)(p->levels / 2), n = (int32_t)p->fan_in;
    const uint32_t *corner = planes; /* top-left word of the window of (y, x) */
    for (int y = 0; y < p->height; y++, corner += 2) {
        for (int x = 0; x < p->width; x++, corner++) {
            const uint32_t *wt = p->weights;
            const int32_t *thr = p->thresholds;
            for (int o = 0; o < p->out_channels; o++, thr += p->levels) {
                uint32_t count = 0;
                const uint32_t *r = corner;
                for (int ky = 0; ky < 3; ky++, r += row)
                    for (int kx = 0; kx < 3; kx++) count += pb_popcount32(r[kx] ^ *wt++);
                const int32_t s = n - (int32_t)(count + count); /* N - 2 popcount: the +-1 dot product */
                int32_t level = base;
                for (int k = 0; k < p->levels; k++) level += (s >= thr[k]);
                *out_hwc++ = (pb_residual_t)level;
            }
        }
    }
    return PB_OK;
}
#else
int pb_stem_bitplanes_path(const pb_bitstem_params_t *p) {
    (void)p;
    return PB_PATH_BITSTEM_CSA;
}

/* Fast: per output pixel the activation side of the three carry-save groups (one per window row: a0, a0^a1,
 * a0^a2, a0^a1^a2) is formed once; every output channel then costs one pb_count9_bytes against its derived
 * weight words, one byte sum, and `levels` compares on the popcount. */
int pb_stem_bitplanes(const pb_bitstem_params_t *p, const uint8_t *image_chw, uint32_t *planes,
                      pb_residual_t *out_hwc) {
    const int status = check(p, image_chw, planes, out_hwc);
    if (status != PB_OK) return status;
    encode_planes(p, image_chw, planes);
    const int row = p->width + 2;
    const int32_t base = -(int32_t)(p->levels / 2);
    _Alignas(8) uint32_t d[12];
    const uint32_t *corner = planes;
    for (int y = 0; y < p->height; y++, corner += 2) {
        for (int x = 0; x < p->width; x++, corner++) {
            const uint32_t *r = corner;
            for (int g = 0; g < 12; g += 4, r += row) {
                const uint32_t a0 = r[0], a1 = r[1], a2 = r[2];
                d[g] = a0;
                d[g + 1] = a0 ^ a1;
                d[g + 2] = a0 ^ a2;
                d[g + 3] = a0 ^ a1 ^ a2;
            }
            const uint32_t *wt = p->weights;
            for (int o = 0; o < p->out_channels; o++) {
                const int32_t count = (int32_t)pb_byte_sum_acc(pb_count9_bytes(d, wt), 0);
                const int32_t *upper = (const int32_t *)(wt + 12);
                int32_t level = base;
                for (int k = 0; k < p->levels; k++) level += (count <= upper[k]);
                wt += 12 + p->levels;
                *out_hwc++ = (pb_residual_t)level;
            }
        }
    }
    return PB_OK;
}
#endif
