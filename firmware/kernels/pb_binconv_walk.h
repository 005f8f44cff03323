#ifndef PB_BINCONV_WALK_H
#define PB_BINCONV_WALK_H

#include "pb_kernels.h"
#include "pb_popcount.h"

/* The 3x3 binary conv's walk over the packed window, shared by the popbin and requant kernels.
 * `branch` turns one output's popcount(a XOR w) into what is added to the residual; `tail` is
 * the output channel's own words at the end of its weights in the fast layout (NULL in the
 * reference one). Walk and branch are forced inline: each kernel compiles to flat loops. */
typedef int32_t (*pb_branch_fn)(const pb_binconv_params_t *p, int out_channel, uint32_t count, const uint32_t *tail);

/* A kernel's own loop over the pairs of output channels of one pixel in the fast layout (an
 * assembly one, say), given the pixel's derived words `d`: runs the pairs up to x_pairs_end
 * (`even_pairs`: their count is even), advances *wt and *x past them and returns 1; or returns 0
 * where it does not take this window shape, and the walk's C loop runs instead. An odd last
 * channel is left to the C loop. `arg` is the kernel's own, computed once per layer. NULL for none. */
typedef int (*pb_channels_fn)(const uint32_t *d, const uint32_t **wt, pb_residual_t **x, pb_residual_t *x_pairs_end,
                              int even_pairs, uint32_t arg, uint32_t in_words, int halves);

#if !PB_KERNEL_FAST
/* Reference: weights [Cout][3][3][in_words], one builtin popcount per word. */
static inline __attribute__((always_inline)) int pb_binconv_walk(const pb_binconv_params_t *p, const uint32_t *bits,
                                                                 pb_residual_t *x_hwc, pb_branch_fn branch,
                                                                 uint32_t tail_words, pb_channels_fn channels,
                                                                 uint32_t channels_arg)
{
    (void)tail_words;
    (void)channels;
    (void)channels_arg;
    const uint32_t window = p->window_words, row = p->padded_row_words;
    const uint32_t *out_row = bits; /* top-left word of the window of output (0, 0) */
    for (int oy = 0; oy < p->out_height; oy++) {
        const uint32_t *win = out_row;
        for (int ox = 0; ox < p->out_width; ox++) {
            const uint32_t *wt = p->weights;
            for (int o = 0; o < p->out_channels; o++) {
                uint32_t count = 0;
                const uint32_t *a = win;
                for (int ky = 0; ky < 3; ky++) {
                    for (uint32_t k = 0; k < window; k++)
                        count += pb_popcount32(a[k] ^ *wt++);
                    a += row;
                }
                *x_hwc = (pb_residual_t)(*x_hwc + branch(p, o, count, 0));
                x_hwc++;
            }
            win += p->step_words;
        }
        out_row += p->row_step_words;
    }
    return PB_OK;
}
#else
/* Fast: the window's words, in (ky, kx, word) order, are taken three at a time (a group never
 * crosses a window row, whose 3 * in_words words are contiguous). Each group is one carry-save
 * add (pb_csa3) whose XORs are shared: per output pixel the walk forms the activation side of
 * every group once, into `d`, and every output channel reuses it. The exporter writes the
 * weight side of each output channel (codegen/pack.py fast_weight_words):
 *   in_channels > 16:  [3 * in_words groups][w0, w0^w1, w0^w2, w0^w1^w2]
 *   in_channels <= 16: two pixels per word (pb_rsign_pack's bit order leaves bits 8-15 and
 *                      24-31 free: h0..h8 -> h0|h1<<8, h2|h3<<8, h4|h5<<8, h6|h7<<8, h8),
 *                      then [W0, W0^W1, W0^W2, W0^W1^W2, W3, W3^W4],
 * two channels after another, each pair (and an odd last channel) followed by `tail_words`
 * words for the branch (popbin: both thresholds, int16, the even channel's in the low half).
 * Loops run on end pointers so that the compiler has no trip count to multiply out. */

PB_INLINE void pb_derive3(uint32_t *d, uint32_t a0, uint32_t a1, uint32_t a2)
{
    d[0] = a0;
    d[1] = a0 ^ a1;
    d[2] = a0 ^ a2;
    d[3] = a0 ^ a1 ^ a2;
}

/* The activation side of every group of the window at `win`: 12 words per input word. The
 * group loop counts groups: run on an end pointer stepping by 3, gcc would divide the distance
 * by 3 (a multiply by the inverse) for its trip count. */
PB_INLINE void pb_derive_window(uint32_t *d, const uint32_t *win, uint32_t row, uint32_t in_words)
{
    for (int ky = 0; ky < 3; ky++, win += row) {
        const uint32_t *a = win;
        for (uint32_t g = 0; g < in_words; g++, a += 3, d += 4)
            pb_derive3(d, a[0], a[1], a[2]);
    }
}

/* The same for at most 16 channels, two pixels per word: 6 words. */
PB_INLINE void pb_derive_halves(uint32_t *d, const uint32_t *win, uint32_t row)
{
    const uint32_t *r1 = win + row, *r2 = r1 + row;
    pb_derive3(d, win[0] | win[1] << 8, win[2] | r1[0] << 8, r1[1] | r1[2] << 8);
    d[4] = r2[0] | r2[1] << 8;
    d[5] = d[4] ^ r2[2];
}

/* popcount(a XOR w) of the output channel whose weights start at *wt; advances *wt past them. */
PB_INLINE uint32_t pb_count_channel(const uint32_t *d, const uint32_t *d_end, const uint32_t **wt, int halves)
{
    const uint32_t *w = *wt;
    uint32_t count = 0;
    if (halves) {
        count = pb_byte_sum_acc(pb_count_halves_bytes(d, w), 0);
        w += 6;
    } else {
        for (const uint32_t *du = d; du != d_end; du += 12, w += 12)
            count = pb_byte_sum_acc(pb_count9_bytes(du, w), count);
    }
    *wt = w;
    return count;
}

/* x + branch, in int32: no zero-extension before the add. */
PB_INLINE pb_residual_t pb_apply(pb_branch_fn branch, const pb_binconv_params_t *p, int o, uint32_t count,
                                 const uint32_t *tail, pb_residual_t x)
{
    return (pb_residual_t)((int32_t)x + branch(p, o, count, tail));
}

/* One walk per window shape: `halves`, `tail_words` and, where the caller can, `in_words` are
 * constants. */
PB_INLINE void pb_binconv_walk_fast(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x_hwc,
                                    pb_branch_fn branch, uint32_t tail_words, pb_channels_fn channels,
                                    uint32_t channels_arg, uint32_t in_words, int halves)
{
    uint32_t d[12 * PB_FAST_MAX_IN_WORDS];
    const uint32_t row = p->padded_row_words, step = p->step_words, row_step = p->row_step_words;
    const int out_h = p->out_height, out_w = p->out_width, out_c = p->out_channels;
    const uint32_t *d_end = d + ((3 * in_words) << 2);
    const uint32_t *const weights = p->weights;
    const int pairs = out_c >> 1, even_pairs = !(pairs & 1);
    const uint32_t *out_row = bits;
    for (int oy = 0; oy < out_h; oy++, out_row += row_step) {
        const uint32_t *win = out_row;
        for (int ox = 0; ox < out_w; ox++, win += step) {
            if (halves)
                pb_derive_halves(d, win, row);
            else
                pb_derive_window(d, win, row, in_words);
            const uint32_t *wt = weights;
            int o = 0;
            if (channels && pairs &&
                channels(d, &wt, &x_hwc, x_hwc + (pairs << 1), even_pairs, channels_arg, in_words, halves))
                o = pairs << 1;
            for (; o < out_c; o += 2) {
                const uint32_t count = pb_count_channel(d, d_end, &wt, halves);
                if (o + 1 == out_c) { /* an odd last channel: its own tail */
                    *x_hwc = pb_apply(branch, p, o, count, wt, *x_hwc);
                    x_hwc++;
                    wt += tail_words;
                    break;
                }
                const uint32_t count_odd = pb_count_channel(d, d_end, &wt, halves);
                x_hwc[0] = pb_apply(branch, p, o, count, wt, x_hwc[0]);
                x_hwc[1] = pb_apply(branch, p, o + 1, count_odd, wt, x_hwc[1]);
                x_hwc += 2;
                wt += tail_words;
            }
        }
    }
}

static inline __attribute__((always_inline)) int pb_binconv_walk(const pb_binconv_params_t *p, const uint32_t *bits,
                                                                 pb_residual_t *x_hwc, pb_branch_fn branch,
                                                                 uint32_t tail_words, pb_channels_fn channels,
                                                                 uint32_t channels_arg)
{
    if (p->in_words > PB_FAST_MAX_IN_WORDS)
        return PB_ERR_SHAPE;
    const pb_channels_fn c = channels;
    const uint32_t a = channels_arg;
    if (p->in_channels <= PB_HALVES_MAX_CHANNELS)
        pb_binconv_walk_fast(p, bits, x_hwc, branch, tail_words, c, a, 1, 1);
    else if (p->in_words == 1)
        pb_binconv_walk_fast(p, bits, x_hwc, branch, tail_words, c, a, 1, 0);
    else if (p->in_words == 2)
        pb_binconv_walk_fast(p, bits, x_hwc, branch, tail_words, c, a, 2, 0);
    else if (p->in_words == 4)
        pb_binconv_walk_fast(p, bits, x_hwc, branch, tail_words, c, a, 4, 0);
    else
        pb_binconv_walk_fast(p, bits, x_hwc, branch, tail_words, c, a, p->in_words, 0);
    return PB_OK;
}
#endif

#endif
