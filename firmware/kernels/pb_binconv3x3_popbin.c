#include "pb_binconv_slice.h"
#include "pb_binconv_table.h"
#include "pb_binconv_walk.h"
#include "pb_kernels.h"

/* The table path is compiled only into the builds of exports that have tables (pb_model_config.h): in the
 * others its code would cost flash, and beside it gcc allocates the walk's registers less well. */
#ifndef PB_MODEL_TABLES
#define PB_MODEL_TABLES 0
#endif
/* The slice path likewise, only into exports with slice tables (--kernel slices): 18 KB of code otherwise. */
#ifndef PB_MODEL_SLICES
#define PB_MODEL_SLICES 0
#endif

#if PB_KERNEL_FAST && PB_RESIDUAL_BITS == 16 && defined(__ARM_FEATURE_SIMD32) && defined(__thumb2__)
#include "pb_popbin_channels_arm.h"
#define PB_POPBIN_ASM 1
#else
#define PB_POPBIN_ASM 0
#endif

/* The path of a shape (pb_kernels.h's table): the dispatch below follows it. Lane-pair paths come in
 * the order row4, row2, pixel2, pixel1, c for one stream and again for two. */
_Static_assert(PB_PATH_LANE1_C == PB_PATH_LANE1_ROW4_ASM + 4 && PB_PATH_LANE2_ROW4_ASM == PB_PATH_LANE1_C + 1 &&
                   PB_PATH_LANE2_C == PB_PATH_LANE2_ROW4_ASM + 4,
               "lane-pair paths out of order");
#define PB_LANE_ROW4   0
#define PB_LANE_ROW2   1
#define PB_LANE_PIXEL2 2
#define PB_LANE_PIXEL1 3
#define PB_LANE_C      4

static inline __attribute__((always_inline)) int popbin_path(const pb_binconv_params_t *p)
{
#if !PB_KERNEL_FAST
    (void)p;
    return PB_PATH_REFERENCE;
#else
    if (p->table) /* --kernel tables: the exporter writes one only for the shapes pb_table_shape or
                   * pb_slice_shape takes, and links the table paths only into exports that have tables */
        return !PB_MODEL_TABLES        ? PB_PATH_REFUSED
               : pb_slice_shape(p)     ? (!PB_MODEL_SLICES ? PB_PATH_REFUSED
                                          : PB_POPBIN_ASM  ? PB_PATH_SLICE_ASM
                                                           : PB_PATH_SLICE_C)
               : !pb_table_shape(p)    ? PB_PATH_REFUSED
               : !PB_POPBIN_ASM        ? PB_PATH_TABLE_C
               : p->out_channels >= 16 ? PB_PATH_TABLE_ASM
                                       : PB_PATH_TABLE_SIMD;
    if (p->in_words == 1) { /* lane pairs: one stream up to 16 channels, two up to 32 */
        const int base = p->in_channels > PB_HALVES_MAX_CHANNELS ? PB_PATH_LANE2_ROW4_ASM : PB_PATH_LANE1_ROW4_ASM;
#if PB_POPBIN_ASM
        const int out_c = p->out_channels, pairs = out_c >> 1;
        if (pairs && !(out_c & 3) && p->out_width)
            return base + ((out_c & 7) ? PB_LANE_ROW2 : PB_LANE_ROW4);
        if (pairs)
            return base + ((pairs & 1) ? PB_LANE_PIXEL1 : PB_LANE_PIXEL2);
#endif
        return base + PB_LANE_C;
    }
    if (p->in_words > PB_FAST_MAX_IN_WORDS)
        return PB_PATH_REFUSED;
#if PB_POPBIN_ASM
    if (p->out_channels >= 2 && p->in_words == 2)
        return PB_PATH_WALK_W2_ASM;
    if (p->out_channels >= 2 && p->in_words == 4)
        return PB_PATH_WALK_W4_ASM;
#endif
    return PB_PATH_WALK_C;
#endif
}

int pb_binconv3x3_popbin_path(const pb_binconv_params_t *p)
{
    return p ? popbin_path(p) : PB_PATH_REFUSED;
}

/* Ternary blocks take the same paths: only the branch differs. */
int pb_binconv3x3_ternary_path(const pb_binconv_params_t *p)
{
    return p ? popbin_path(p) : PB_PATH_REFUSED;
}

/* What a popcount adds: +delta up to the plus threshold, else -delta; ternary: 0 up to the zero threshold
 * first, that is delta * ((count <= plus) + (count <= zero) - 1) with two compares and no multiply. */
static inline __attribute__((always_inline)) int32_t popbin_level(int32_t count, int32_t plus, int32_t zero,
                                                                  int32_t delta, int ternary)
{
    if (count <= plus)
        return delta;
    return ternary && count <= zero ? 0 : -delta;
}

/* PopBin: the popcount itself is binarized; the branch adds +-delta, no scaling. The fast
 * layout keeps the thresholds of two channels, as int16, after their weights (one word of tail;
 * ternary: two, the plus thresholds, then the zero ones). */
static inline __attribute__((always_inline)) int32_t popbin_branch(const pb_binconv_params_t *p, int o, uint32_t count,
                                                                   const uint32_t *tail)
{
    const int32_t threshold = PB_KERNEL_FAST ? (int16_t)(tail[0] >> ((o & 1) << 4)) : p->popcount_threshold[o];
    return popbin_level((int32_t)count, threshold, 0, p->delta, 0);
}

static inline __attribute__((always_inline)) int32_t ternary_branch(const pb_binconv_params_t *p, int o, uint32_t count,
                                                                    const uint32_t *tail)
{
#if PB_KERNEL_FAST
    const int half = (o & 1) << 4;
    const int32_t plus = (int16_t)(tail[0] >> half), zero = (int16_t)(tail[1] >> half);
#else
    (void)tail;
    const int32_t plus = p->popcount_threshold[o], zero = p->zero_threshold[o];
#endif
    return popbin_level((int32_t)count, plus, zero, p->delta, 1);
}

#if PB_POPBIN_ASM
/* The walk's channel pairs of one pixel in assembly for two and four input words (one word takes the
 * lane pairs); else the C loop. `delta2` holds delta in both halves. */
static inline __attribute__((always_inline)) int popbin_levels_channels(const uint32_t *d, const uint32_t **wt,
                                                                        pb_residual_t **x, pb_residual_t *x_pairs_end,
                                                                        uint32_t delta2, uint32_t in_words, int halves,
                                                                        int ternary)
{
    if (halves)
        return 0; /* not reached: popbin windows of at most 16 channels take the lane pairs */
    if (in_words == 2)
        pb_popbin_pairs_w2(d, wt, x, x_pairs_end, delta2, ternary);
    else if (in_words == 4)
        pb_popbin_pairs_w4(d, wt, x, x_pairs_end, delta2, ternary);
    else
        return 0;
    return 1;
}

static inline __attribute__((always_inline)) int popbin_channels(const uint32_t *d, const uint32_t **wt,
                                                                 pb_residual_t **x, pb_residual_t *x_pairs_end,
                                                                 int even_pairs, uint32_t delta2, uint32_t in_words,
                                                                 int halves)
{
    (void)even_pairs;
    return popbin_levels_channels(d, wt, x, x_pairs_end, delta2, in_words, halves, 0);
}

static inline __attribute__((always_inline)) int ternary_channels(const uint32_t *d, const uint32_t **wt,
                                                                  pb_residual_t **x, pb_residual_t *x_pairs_end,
                                                                  int even_pairs, uint32_t delta2, uint32_t in_words,
                                                                  int halves)
{
    (void)even_pairs;
    return popbin_levels_channels(d, wt, x, x_pairs_end, delta2, in_words, halves, 1);
}
#endif

#if PB_KERNEL_FAST
/* At most 32 input channels (one word a pixel): lane pairs. The exporter (codegen/pack.py
 * fast_lane_pair_words) puts the even channel of each output pair in lanes 0-15 of the weight words
 * and the odd one in lanes 16-31, and the walk makes the window's activation words hold every input
 * channel once in each half:
 *   at most 16 channels: one stream, h | ror(h, 8) of each window word h (pb_rsign_pack's order puts
 *     the even channels in bits 0-7 and the odd ones in bits 16-23);
 *   17 to 32: two streams, a and ror(a, 16).
 * Each stream's nine words are derived for the carry-save groups as the full-word path derives them,
 * and one count (pb_count9_bytes per stream) then serves two channels: their popcounts are the sums of
 * bytes 0-1 and of bytes 2-3. Per pair the stream holds 12 words per stream and both thresholds
 * (int16, the even one low); a ternary pair its plus thresholds, then its zero thresholds. */
PB_INLINE uint32_t pb_lane_dup(uint32_t h)
{
    return h | (h >> 8) | (h << 24);
}

PB_INLINE uint32_t pb_ror16(uint32_t a)
{
    return a >> 16 | a << 16;
}

PB_INLINE void pb_derive_lane_pairs(uint32_t *d, const uint32_t *win, uint32_t row, int two_streams)
{
    for (int ky = 0; ky < 3; ky++, win += row, d += 4) {
        if (two_streams) {
            pb_derive3(d, win[0], win[1], win[2]);
            pb_derive3(d + 12, pb_ror16(win[0]), pb_ror16(win[1]), pb_ror16(win[2]));
        } else {
            pb_derive3(d, pb_lane_dup(win[0]), pb_lane_dup(win[1]), pb_lane_dup(win[2]));
        }
    }
}

/* x[0] (and x[1] unless `last`) +-delta (or 0) from the byte sums v of a pair and its threshold words. */
PB_INLINE void pb_lane_pair_branch(uint32_t v, const uint32_t *tail, int32_t delta, pb_residual_t *x, int last,
                                   int ternary)
{
    const uint32_t t = tail[0], z = ternary ? tail[1] : 0;
    const int32_t even = (int32_t)((v & 0xFFu) + ((v >> 8) & 0xFFu));
    x[0] = (pb_residual_t)(x[0] + popbin_level(even, (int16_t)(t & 0xFFFFu), (int16_t)(z & 0xFFFFu), delta, ternary));
    if (last)
        return;
    const int32_t odd = (int32_t)(((v >> 16) & 0xFFu) + (v >> 24));
    x[1] = (pb_residual_t)(x[1] + popbin_level(odd, (int16_t)(t >> 16), (int16_t)(z >> 16), delta, ternary));
}

/* The byte sums of a pair: per stream at most 72 a byte, so two streams still fit. */
PB_INLINE uint32_t pb_lane_pair_count(const uint32_t *d, const uint32_t *wt, int two_streams)
{
    const uint32_t v = pb_count9_bytes(d, wt);
    return two_streams ? v + pb_count9_bytes(d + 12, wt + 12) : v;
}

/* One call site per kernel only: inlined twice, for one and for two streams, the row assembly would
 * leave gcc no register for its operands. `path` is popbin_path's; `ternary` a constant. */
PB_INLINE void popbin_lane_pairs(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x, const int path,
                                 const int ternary)
{
    const int two_streams = path >= PB_PATH_LANE2_ROW4_ASM;
    const int loop = path - (two_streams ? PB_PATH_LANE2_ROW4_ASM : PB_PATH_LANE1_ROW4_ASM);
    (void)loop; /* the C build has one loop */
    uint32_t d[24];
    const int tail_words = ternary ? 2 : 1, stream_words = (two_streams ? 24 : 12) + tail_words;
    const int tail = stream_words - tail_words;
    const uint32_t row = p->padded_row_words, step = p->step_words, row_step = p->row_step_words;
    const int out_c = p->out_channels, pairs = out_c >> 1;
    const int32_t delta = p->delta;
#if PB_POPBIN_ASM
    const uint32_t delta2 = ((uint32_t)delta & 0xFFFFu) | (uint32_t)delta << 16;
#endif
    const uint32_t *out_row = bits;
#if PB_POPBIN_ASM
    if (loop == PB_LANE_ROW4 || loop == PB_LANE_ROW2) { /* whole rows in assembly */
        int row_outputs = 0; /* out_width * out_channels, added up; opaque, or gcc makes it a multiply */
        for (int ox = 0; ox < p->out_width; ox++) {
            row_outputs += out_c;
            PB_OPAQUE(row_outputs);
        }
        const uint32_t *weights_end = p->weights; /* the same: pairs * stream_words */
        for (int k = 0; k < pairs; k++) {
            weights_end += stream_words;
            PB_OPAQUE(weights_end);
        }
        for (int oy = 0; oy < p->out_height; oy++, out_row += row_step, x += row_outputs)
            pb_popbin_lane_row(d, out_row, row << 2, step << 2, p->weights, weights_end, x, x + row_outputs, delta2,
                               two_streams, loop == PB_LANE_ROW4, ternary);
        return;
    }
#endif
    for (int oy = 0; oy < p->out_height; oy++, out_row += row_step) {
        const uint32_t *win = out_row;
        for (int ox = 0; ox < p->out_width; ox++, win += step) {
            pb_derive_lane_pairs(d, win, row, two_streams);
            const uint32_t *wt = p->weights;
            pb_residual_t *const pairs_end = x + (pairs << 1);
#if PB_POPBIN_ASM
            if (loop != PB_LANE_C)
                pb_popbin_lane_pairs(d, &wt, &x, pairs_end, delta2, loop == PB_LANE_PIXEL2, two_streams, ternary);
#endif
            for (; x != pairs_end; x += 2) {
                pb_lane_pair_branch(pb_lane_pair_count(d, wt, two_streams), wt + tail, delta, x, 0, ternary);
                wt += stream_words;
                PB_OPAQUE(wt); /* else gcc multiplies out where the loop leaves wt */
            }
            if (out_c & 1) { /* the last channel, paired with zero weights */
                pb_lane_pair_branch(pb_lane_pair_count(d, wt, two_streams), wt + tail, delta, x, 1, ternary);
                x++;
            }
        }
    }
}
#endif

#if PB_KERNEL_FAST && PB_MODEL_TABLES
/* The table path (pb_binconv_table.h): the counts of a pixel by lookups, then the branch a pair at a time. */
#if PB_POPBIN_ASM
/* x (two int16 channels) +-delta2 per half by the pair's counts c: SSUB16 of the thresholds and the counts
 * sets GE where count <= threshold, SEL picks x + delta or x - delta; ternary: x where count <= zero first. */
PB_INLINE uint32_t pb_table_pair_simd(uint32_t x, uint32_t c, const uint32_t *t, uint32_t delta2, const int ternary)
{
    uint32_t up, down, ge;
    __asm__("sadd16 %[up], %[x], %[d]\n\t"
            "ssub16 %[down], %[x], %[d]"
            : [up] "=&r"(up), [down] "=&r"(down)
            : [x] "r"(x), [d] "r"(delta2)
            : "cc");
    if (ternary)
        __asm__("ssub16 %[ge], %[z], %[c]\n\t"
                "sel %[down], %[x], %[down]"
                : [ge] "=&r"(ge), [down] "+r"(down)
                : [z] "r"(t[1]), [c] "r"(c), [x] "r"(x)
                : "cc");
    __asm__("ssub16 %[ge], %[t], %[c]\n\t"
            "sel %[ge], %[up], %[down]"
            : [ge] "=&r"(ge)
            : [t] "r"(t[0]), [c] "r"(c), [up] "r"(up), [down] "r"(down)
            : "cc");
    return ge;
}
#endif

#if PB_POPBIN_ASM
/* The residual's int16 pairs as words (it is word-aligned, and every pixel has an even channel count). */
typedef uint32_t __attribute__((may_alias)) pb_pair_word_t;
#endif

/* Channels 2k, 2k + 1 from their counts in bytes 0 and 2 of v plus those of w (the second group's, or 0),
 * thresholds at t. */
PB_INLINE void pb_table_pair(pb_residual_t *x, uint32_t v, uint32_t w, const uint32_t *t, int32_t delta,
                             const int ternary)
{
#if PB_POPBIN_ASM
    const uint32_t delta2 = ((uint32_t)delta & 0xFFFFu) | (uint32_t)delta << 16;
    pb_pair_word_t *pair = (pb_pair_word_t *)(void *)x;
    *pair = pb_table_pair_simd(*pair, __uxtab16(__uxtb16(v), w), t, delta2, ternary);
#else
    const uint32_t z = ternary ? t[1] : 0;
    const int32_t even = (int32_t)((v & 0xFFu) + (w & 0xFFu)),
                  odd = (int32_t)(((v >> 16) & 0xFFu) + ((w >> 16) & 0xFFu));
    x[0] =
        (pb_residual_t)(x[0] + popbin_level(even, (int16_t)(t[0] & 0xFFFFu), (int16_t)(z & 0xFFFFu), delta, ternary));
    x[1] = (pb_residual_t)(x[1] + popbin_level(odd, (int16_t)(t[0] >> 16), (int16_t)(z >> 16), delta, ternary));
#endif
}

/* `groups` (1: at most 16 input channels, 2: 17 to 32) and `shift` (Cout = 4 << shift) are constants. */
PB_INLINE void popbin_table_shift(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x, const int shift,
                                  const int groups, const int ternary)
{
    const uint32_t row = p->padded_row_words, step = p->step_words, row_step = p->row_step_words;
    const int nw = 1 << shift, tw = ternary ? 2 : 1, group_words = PB_TABLE_TAPS * 64 << shift;
    const uint32_t *const table = p->table, *const tails = table + groups * group_words;
    const int32_t delta = p->delta;
#if PB_POPBIN_ASM
    const uint32_t delta2 = ((uint32_t)delta & 0xFFFFu) | (uint32_t)delta << 16;
#endif
    const uint32_t *out_row = bits;
    for (int oy = 0; oy < p->out_height; oy++, out_row += row_step) {
        const uint32_t *win = out_row;
        for (int ox = 0; ox < p->out_width; ox++, win += step) {
            uint32_t acc[16], accb[16];
#if PB_POPBIN_ASM
            if (shift >= 2) { /* the counts in assembly (32 channels a pass), then their branch */
                const uint32_t *t = tails;
                for (int half = 0; half < (shift == 4 ? 2 : 1); half++) {
                    pb_table_counts_arm(acc, table, win, row << 2, shift, half, 0);
                    if (groups == 1) {
                        pb_table_branch16_arm(&x, &t, acc, delta2, ternary);
                        if (shift >= 3)
                            pb_table_branch16_arm(&x, &t, acc + 4, delta2, ternary);
                        continue;
                    }
                    pb_table_counts_arm(accb, table + group_words, win, row << 2, shift, half, 1);
                    for (int m = 0; m < (shift == 2 ? 4 : 8); m += 2)
                        pb_table_branch8x2_arm(&x, &t, acc + m, accb + m, delta2, ternary);
                }
                continue;
            }
#endif
            pb_table_counts(acc, table, win, row, shift, 0);
            if (groups == 2)
                pb_table_counts(accb, table + group_words, win, row, shift, 1);
            else
                for (int m = 0; m < nw; m++)
                    accb[m] = 0;
            const uint32_t *t = tails;
            for (int m = 0; m < nw; m++, x += 4, t += 2 * tw) {
                pb_table_pair(x, acc[m], accb[m], t, delta, ternary);
                pb_table_pair(x + 2, acc[m] >> 8, accb[m] >> 8, t + tw, delta, ternary);
            }
        }
    }
}

PB_INLINE void popbin_table_groups(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x,
                                   const int groups, const int ternary)
{
    switch (p->out_channels) {
    case 64:
        popbin_table_shift(p, bits, x, 4, groups, ternary);
        break;
    case 32:
        popbin_table_shift(p, bits, x, 3, groups, ternary);
        break;
    case 16:
        popbin_table_shift(p, bits, x, 2, groups, ternary);
        break;
    case 8:
        popbin_table_shift(p, bits, x, 1, groups, ternary);
        break;
    default:
        popbin_table_shift(p, bits, x, 0, groups, ternary);
        break;
    }
}

/* One flat loop per output channel count, group count and kind: the entry's words, offsets and branch are
 * constants. Not inlined: beside the lane rows' assembly in one function, gcc would have no register left for
 * its operands. */
#define PB_TABLE_KERNEL(name, ternary)                                                                                 \
    static __attribute__((noinline)) void name(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x)   \
    {                                                                                                                  \
        if (p->in_channels > PB_HALVES_MAX_CHANNELS)                                                                   \
            popbin_table_groups(p, bits, x, 2, ternary);                                                               \
        else                                                                                                           \
            popbin_table_groups(p, bits, x, 1, ternary);                                                               \
    }
PB_TABLE_KERNEL(popbin_table, 0)
PB_TABLE_KERNEL(ternary_table, 1)

#if PB_MODEL_SLICES
/* The slice path (pb_binconv_slice.h): per pixel and slice of 32 output channels, the count planes, the plus (and
 * zero) lanes by bit-sliced compares, then what each channel adds: level[plus | zero << 1] (popbin: zero = plus).
 * `in_words` is a constant where the caller can. */
PB_INLINE void popbin_slice_words(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x,
                                  const uint32_t in_words, const int ternary)
{
    const uint32_t row = p->padded_row_words, step = p->step_words, row_step = p->row_step_words;
    const uint32_t slice_words = PB_TABLE_TAPS * in_words * PB_SLICE_WORD_WORDS;
    const int slices = p->out_channels >> 5, plane_words = (ternary ? 2 : 1) * PB_SLICE_PLANES;
    const uint32_t *planes = p->table;
    for (int s = 0; s < slices; s++)
        planes += slice_words; /* not slices * slice_words: no multiply */
    const int32_t level[4] = {-p->delta, p->delta, 0, p->delta};
#if PB_POPBIN_ASM
    /* Two channels a step: their int16 levels as one word, indexed by plus (even, odd) | zero (even, odd) << 2. */
    uint32_t level2[16];
    for (int k = 0; k < 16; k++)
        level2[k] = ((uint32_t)level[(k & 1) | ((k >> 1) & 2)] & 0xFFFFu) |
                    (uint32_t)level[((k >> 1) & 1) | ((k >> 2) & 2)] << 16;
#endif
    const uint32_t *out_row = bits;
    for (int oy = 0; oy < p->out_height; oy++, out_row += row_step) {
        const uint32_t *win = out_row;
        for (int ox = 0; ox < p->out_width; ox++, win += step) {
            const uint32_t *words = p->table, *t = planes;
            for (int s = 0; s < slices; s++, words += slice_words, t += plane_words, x += 32) {
                pb_slice_count_t n;
                pb_slice_counts(&n, words, win, row, in_words);
                const uint32_t plus = pb_slice_at_most(n.p, t);
                const uint32_t zero = ternary ? pb_slice_at_most(n.p, t + PB_SLICE_PLANES) : plus;
#if PB_POPBIN_ASM
                pb_pair_word_t *pair = (pb_pair_word_t *)(void *)x;
#pragma GCC unroll 16 /* constant bit positions: one UBFX each */
                for (int j = 0; j < 16; j++)
                    pair[j] = __sadd16(pair[j], level2[((plus >> 2 * j) & 3u) | ((zero >> 2 * j) & 3u) << 2]);
#else
                for (int o = 0; o < 32; o++)
                    x[o] = (pb_residual_t)(x[o] + level[((plus >> o) & 1u) | ((zero >> o) & 1u) << 1]);
#endif
            }
        }
    }
}

PB_INLINE void popbin_slice_kind(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x,
                                 const int ternary)
{
    if (p->in_words == 2)
        popbin_slice_words(p, bits, x, 2, ternary);
    else if (p->in_words == 4)
        popbin_slice_words(p, bits, x, 4, ternary);
    else
        popbin_slice_words(p, bits, x, p->in_words, ternary);
}

static __attribute__((noinline)) void popbin_slice(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x)
{
    popbin_slice_kind(p, bits, x, 0);
}

static __attribute__((noinline)) void ternary_slice(const pb_binconv_params_t *p, const uint32_t *bits,
                                                    pb_residual_t *x)
{
    popbin_slice_kind(p, bits, x, 1);
}
#endif /* PB_MODEL_SLICES */
#endif

_Static_assert(PB_PATH_TABLE_C == PB_PATH_TABLE_ASM + 2 && PB_PATH_TABLE_SIMD == PB_PATH_TABLE_ASM + 1 &&
                   PB_PATH_SLICE_ASM == PB_PATH_TABLE_C + 1 && PB_PATH_SLICE_C == PB_PATH_COUNT - 1,
               "table paths out of order: the dispatch takes every id from PB_PATH_TABLE_ASM on");

/* Both kernels: `ternary` is a constant, so each compiles to its own flat loops. */
#if PB_POPBIN_ASM
#define PB_POPBIN_WALK(branch, tail_words, channels)                                                                   \
    pb_binconv_walk(p, bits, x_hwc, branch, tail_words, channels,                                                      \
                    ((uint32_t)p->delta & 0xFFFFu) | (uint32_t)p->delta << 16)
#else
#define PB_POPBIN_WALK(branch, tail_words, channels) pb_binconv_walk(p, bits, x_hwc, branch, tail_words, 0, 0)
#endif

int pb_binconv3x3_popbin(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x_hwc)
{
    if (!p || !bits || !x_hwc)
        return PB_ERR_NULL;
    const int path = popbin_path(p);
    if (path == PB_PATH_REFUSED)
        return PB_ERR_SHAPE;
#if PB_KERNEL_FAST
#if PB_MODEL_TABLES
#if PB_MODEL_SLICES
    if (path == PB_PATH_SLICE_ASM || path == PB_PATH_SLICE_C) {
        popbin_slice(p, bits, x_hwc);
        return PB_OK;
    }
#endif
    if (path >= PB_PATH_TABLE_ASM) {
        popbin_table(p, bits, x_hwc);
        return PB_OK;
    }
#endif
    if (p->in_words == 1) {
        popbin_lane_pairs(p, bits, x_hwc, path, 0);
        return PB_OK;
    }
#endif
    return PB_POPBIN_WALK(popbin_branch, 1, popbin_channels);
}

int pb_binconv3x3_ternary(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x_hwc)
{
    if (!p || !bits || !x_hwc)
        return PB_ERR_NULL;
    if (!PB_KERNEL_FAST && (!p->popcount_threshold || !p->zero_threshold))
        return PB_ERR_NULL;
    const int path = popbin_path(p);
    if (path == PB_PATH_REFUSED)
        return PB_ERR_SHAPE;
#if PB_KERNEL_FAST
#if PB_MODEL_TABLES
#if PB_MODEL_SLICES
    if (path == PB_PATH_SLICE_ASM || path == PB_PATH_SLICE_C) {
        ternary_slice(p, bits, x_hwc);
        return PB_OK;
    }
#endif
    if (path >= PB_PATH_TABLE_ASM) {
        ternary_table(p, bits, x_hwc);
        return PB_OK;
    }
#endif
    if (p->in_words == 1) {
        popbin_lane_pairs(p, bits, x_hwc, path, 1);
        return PB_OK;
    }
#endif
    return PB_POPBIN_WALK(ternary_branch, 2, ternary_channels);
}
