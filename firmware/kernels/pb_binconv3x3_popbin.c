#include "pb_binconv_walk.h"
#include "pb_kernels.h"

#if PB_KERNEL_FAST && PB_RESIDUAL_BITS == 16 && defined(__ARM_FEATURE_SIMD32) && defined(__thumb2__)
#include "pb_popbin_channels_arm.h"
#define PB_POPBIN_ASM 1
#else
#define PB_POPBIN_ASM 0
#endif

/* PopBin: the popcount itself is binarized; the branch adds +-delta, no scaling. The fast
 * layout keeps the thresholds of two channels, as int16, after their weights (one word of tail). */
static inline __attribute__((always_inline)) int32_t popbin_branch(const pb_binconv_params_t *p, int o,
                                                                   uint32_t count, const uint32_t *tail) {
    const int32_t threshold = PB_KERNEL_FAST ? (int16_t)(tail[0] >> ((o & 1) << 4)) : p->popcount_threshold[o];
    return (int32_t)count <= threshold ? p->delta : -p->delta;
}

#if PB_POPBIN_ASM
/* The channel pairs of one pixel in assembly where the window shape has a loop; else the C loop.
 * `delta2` holds delta in both halves. */
static inline __attribute__((always_inline)) int popbin_channels(const uint32_t *d, const uint32_t **wt,
                                                                 pb_residual_t **x, pb_residual_t *x_pairs_end,
                                                                 int even_pairs, uint32_t delta2, uint32_t in_words,
                                                                 int halves) {
    if (halves) pb_popbin_pairs_halves(d, wt, x, x_pairs_end, delta2, even_pairs);
    else if (in_words == 1) pb_popbin_pairs_w1(d, wt, x, x_pairs_end, delta2, even_pairs);
    else if (in_words == 2) pb_popbin_pairs_w2(d, wt, x, x_pairs_end, delta2);
    else if (in_words == 4) pb_popbin_pairs_w4(d, wt, x, x_pairs_end, delta2);
    else return 0;
    return 1;
}

/* At most 16 input channels and a multiple of 4 output channels: whole output rows in assembly
 * (pb_popbin_row_halves). Returns 0 for other shapes. */
static int popbin_halves_rows(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x_hwc,
                              uint32_t delta2) {
    if (p->in_channels > PB_HALVES_MAX_CHANNELS || (p->out_channels & 3) || !p->out_width) return 0;
    uint32_t d[6];
    int row_outputs = 0; /* out_width * out_channels, added up; opaque, or gcc makes it a multiply */
    for (int ox = 0; ox < p->out_width; ox++) {
        row_outputs += p->out_channels;
        PB_OPAQUE(row_outputs);
    }
    const uint32_t row_bytes = p->padded_row_words << 2, step_bytes = p->step_words << 2;
    const uint32_t chan_bytes = (uint32_t)p->out_channels << 1;
    const uint32_t *out_row = bits;
    for (int oy = 0; oy < p->out_height; oy++, out_row += p->row_step_words, x_hwc += row_outputs)
        pb_popbin_row_halves(d, out_row, row_bytes, step_bytes, p->weights, x_hwc, x_hwc + row_outputs, chan_bytes,
                             delta2);
    return 1;
}
#endif

int pb_binconv3x3_popbin(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x_hwc) {
    if (!p || !bits || !x_hwc) return PB_ERR_NULL;
#if PB_POPBIN_ASM
    const uint32_t delta2 = ((uint32_t)p->delta & 0xFFFFu) | (uint32_t)p->delta << 16;
    if (popbin_halves_rows(p, bits, x_hwc, delta2)) return PB_OK;
    return pb_binconv_walk(p, bits, x_hwc, popbin_branch, 1, popbin_channels, delta2);
#else
    return pb_binconv_walk(p, bits, x_hwc, popbin_branch, 1, 0, 0);
#endif
}
