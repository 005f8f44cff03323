#include "pb_kernels.h"
#include "pb_popcount.h"

/* The bit-plane stem (`--stem bitplanes`), with no multiply anywhere, address arithmetic included (every
 * stride is walked with adds):
 *   1. each pixel becomes one word of thermometer planes: bit c L + k is 1 where pixel[c] >= t_k (L planes per
 *      colour channel, 3 L <= 32 bits, the high bits 0), in `planes` ((H+2) x (W+2) words, border 0: a black
 *      pixel, the -1 padding of the contract);
 *   2. each output channel o: popcount(window XOR w_o) over the 9 words of the 3x3 window;
 *   3. level = -levels/2 + #{k : N - 2 popcount >= T[o][k]}, N = 9 x 3 L.
 * The reference does each step as written: L compares a colour, one window word at a time (pb_popcount32),
 * `levels` compares. The fast path takes the exporter's tables (codegen/pack.py bitstem_fast_tables): a
 * pixel's planes from a 256-entry mask table, the window in the carry-save layout of pb_count9_bytes (12
 * derived weight words a channel), and the level of the popcount from a table of N + 1 levels a channel. */

static int check(const pb_bitstem_params_t *p, const uint8_t *image_chw, const uint32_t *planes,
                 const pb_residual_t *out_hwc)
{
    if (!p || !image_chw || !planes || !out_hwc || !p->weights)
        return PB_ERR_NULL;
    if (p->planes == 0 || p->planes > 10 || p->height == 0 || p->width == 0 || p->levels == 0)
        return PB_ERR_SHAPE;
    if (p->fan_in == 0 || p->plane_pixels == 0)
        return PB_ERR_SHAPE;
    return PB_OK;
}

#if !PB_KERNEL_FAST
/* The planes a pixel value sets: the low `count` of them, count = #{k : value >= t_k}. */
static uint32_t thermometer(const pb_bitstem_params_t *p, uint8_t value)
{
    unsigned count = 0;
    for (int k = 0; k < p->planes; k++)
        count += (value >= p->input_thresholds[k]);
    return (1u << count) - 1u;
}
#else
static uint32_t thermometer(const pb_bitstem_params_t *p, uint8_t value)
{
    return p->input_masks[value];
}
#endif

/* One word of thermometer planes per pixel, into the interior of the bordered buffer (the border is zeroed). */
static void encode_planes(const pb_bitstem_params_t *p, const uint8_t *image_chw, uint32_t *planes)
{
    const int h = p->height, w = p->width, row = w + 2;
    const uint8_t *red = image_chw, *green = red + p->plane_pixels, *blue = green + p->plane_pixels;
    const unsigned green_shift = p->planes, blue_shift = green_shift + p->planes;
    uint32_t *q = planes;
    for (int i = 0; i < row; i++)
        *q++ = 0; /* top border */
    for (int y = 0; y < h; y++) {
        *q++ = 0; /* left border */
        for (int x = 0; x < w; x++)
            *q++ = thermometer(p, *red++) | thermometer(p, *green++) << green_shift |
                   thermometer(p, *blue++) << blue_shift;
        *q++ = 0; /* right border */
    }
    for (int i = 0; i < row; i++)
        *q++ = 0; /* bottom border */
}

#if !PB_KERNEL_FAST
int pb_stem_bitplanes_path(const pb_bitstem_params_t *p)
{
    (void)p;
    return PB_PATH_REFERENCE;
}

/* Reference: the contract as written, one window word at a time. */
int pb_stem_bitplanes(const pb_bitstem_params_t *p, const uint8_t *image_chw, uint32_t *planes, pb_residual_t *out_hwc)
{
    const int status = check(p, image_chw, planes, out_hwc);
    if (status != PB_OK)
        return status;
    if (!p->input_thresholds || !p->thresholds)
        return PB_ERR_NULL;
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
                    for (int kx = 0; kx < 3; kx++)
                        count += pb_popcount32(r[kx] ^ *wt++);
                const int32_t s = n - (int32_t)(count + count); /* N - 2 popcount: the +-1 dot product */
                int32_t level = base;
                for (int k = 0; k < p->levels; k++)
                    level += (s >= thr[k]);
                *out_hwc++ = (pb_residual_t)level;
            }
        }
    }
    return PB_OK;
}
#else
int pb_stem_bitplanes_path(const pb_bitstem_params_t *p)
{
    (void)p;
    return PB_PATH_BITSTEM_CSA;
}

/* Fast: per output pixel the activation side of the three carry-save groups (one per window row: a0, a0^a1,
 * a0^a2, a0^a1^a2) is formed once; every output channel then costs one pb_count9_bytes against its 12 derived
 * weight words, one byte sum (USADA8 on the M4/M7) and one table load for its level. */
int pb_stem_bitplanes(const pb_bitstem_params_t *p, const uint8_t *image_chw, uint32_t *planes, pb_residual_t *out_hwc)
{
    const int status = check(p, image_chw, planes, out_hwc);
    if (status != PB_OK)
        return status;
    if (!p->input_masks || !p->level_table)
        return PB_ERR_NULL;
    encode_planes(p, image_chw, planes);
    const int row = p->width + 2;
    const uint32_t table_stride = (uint32_t)p->fan_in + 1u;
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
            const int8_t *level = p->level_table;
            for (int o = 0; o < p->out_channels; o++, wt += 12, level += table_stride)
                *out_hwc++ = (pb_residual_t)level[pb_byte_sum_acc(pb_count9_bytes(d, wt), 0)];
        }
    }
    return PB_OK;
}
#endif
