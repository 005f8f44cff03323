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
    if (halves) return 0; /* not reached: popbin windows of at most 16 channels take the lane pairs */
    if (in_words == 1) pb_popbin_pairs_w1(d, wt, x, x_pairs_end, delta2, even_pairs);
    else if (in_words == 2) pb_popbin_pairs_w2(d, wt, x, x_pairs_end, delta2);
    else if (in_words == 4) pb_popbin_pairs_w4(d, wt, x, x_pairs_end, delta2);
    else return 0;
    return 1;
}
#endif

#if PB_KERNEL_FAST
/* At most 16 input channels: lane pairs. Each output pixel's nine window words h (pb_rsign_pack's
 * order: even channels in bits 0-7, odd ones in bits 16-23) become h | ror(h, 8), every channel once
 * in each 16-bit half, and are derived for the carry-save groups as the full-word path does. The
 * exporter (codegen/pack.py fast_lane_pair_words) puts the even channel of each output pair in lanes
 * 0-15 of the weight words and the odd one in lanes 16-31: one count (pb_count9_bytes) then serves two
 * channels, whose popcounts are the sums of bytes 0-1 and 2-3. Per pair the stream holds 12 words
 * and both thresholds (int16, the even one low). */
#define PB_LANE_PAIR_WORDS 13

PB_INLINE uint32_t pb_lane_dup(uint32_t h) {
    return h | (h >> 8) | (h << 24);
}

PB_INLINE void pb_derive_lane_pairs(uint32_t *d, const uint32_t *win, uint32_t row) {
    for (int ky = 0; ky < 3; ky++, win += row, d += 4)
        pb_derive3(d, pb_lane_dup(win[0]), pb_lane_dup(win[1]), pb_lane_dup(win[2]));
}

/* x[0] (and x[1] unless `last`) +-delta from the byte sums v of a pair and its threshold word. */
PB_INLINE void pb_lane_pair_branch(uint32_t v, uint32_t t, int32_t delta, pb_residual_t *x, int last) {
    const int32_t even = (int32_t)((v & 0xFFu) + ((v >> 8) & 0xFFu));
    x[0] = (pb_residual_t)(x[0] + (even <= (int16_t)(t & 0xFFFFu) ? delta : -delta));
    if (last) return;
    const int32_t odd = (int32_t)(((v >> 16) & 0xFFu) + (v >> 24));
    x[1] = (pb_residual_t)(x[1] + (odd <= (int16_t)(t >> 16) ? delta : -delta));
}

static void popbin_lane_pairs(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x) {
    uint32_t d[12];
    const uint32_t row = p->padded_row_words, step = p->step_words, row_step = p->row_step_words;
    const int out_c = p->out_channels, pairs = out_c >> 1;
    const int32_t delta = p->delta;
#if PB_POPBIN_ASM
    const uint32_t delta2 = ((uint32_t)delta & 0xFFFFu) | (uint32_t)delta << 16;
#endif
    const uint32_t *out_row = bits;
#if PB_POPBIN_ASM
    if (pairs && !(out_c & 3) && p->out_width) { /* whole rows in assembly */
        int row_outputs = 0; /* out_width * out_channels, added up; opaque, or gcc makes it a multiply */
        for (int ox = 0; ox < p->out_width; ox++) {
            row_outputs += out_c;
            PB_OPAQUE(row_outputs);
        }
        for (int oy = 0; oy < p->out_height; oy++, out_row += row_step, x += row_outputs)
            pb_popbin_lane_row(d, out_row, row << 2, step << 2, p->weights, x, x + row_outputs,
                               (uint32_t)out_c << 1, delta2);
        return;
    }
#endif
    for (int oy = 0; oy < p->out_height; oy++, out_row += row_step) {
        const uint32_t *win = out_row;
        for (int ox = 0; ox < p->out_width; ox++, win += step) {
            pb_derive_lane_pairs(d, win, row);
            const uint32_t *wt = p->weights;
            pb_residual_t *const pairs_end = x + (pairs << 1);
#if PB_POPBIN_ASM
            if (pairs) pb_popbin_lane_pairs(d, &wt, &x, pairs_end, delta2, !(pairs & 1));
#endif
            for (; x != pairs_end; x += 2, wt += PB_LANE_PAIR_WORDS)
                pb_lane_pair_branch(pb_count9_bytes(d, wt), wt[12], delta, x, 0);
            if (out_c & 1) { /* the last channel, paired with zero weights */
                pb_lane_pair_branch(pb_count9_bytes(d, wt), wt[12], delta, x, 1);
                x++;
            }
        }
    }
}
#endif

int pb_binconv3x3_popbin(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x_hwc) {
    if (!p || !bits || !x_hwc) return PB_ERR_NULL;
#if PB_KERNEL_FAST
    if (p->in_channels <= PB_HALVES_MAX_CHANNELS) {
        popbin_lane_pairs(p, bits, x_hwc);
        return PB_OK;
    }
#endif
#if PB_POPBIN_ASM
    const uint32_t delta2 = ((uint32_t)p->delta & 0xFFFFu) | (uint32_t)p->delta << 16;
    return pb_binconv_walk(p, bits, x_hwc, popbin_branch, 1, popbin_channels, delta2);
#else
    return pb_binconv_walk(p, bits, x_hwc, popbin_branch, 1, 0, 0);
#endif
}
