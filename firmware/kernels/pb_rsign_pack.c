#include "pb_kernels.h"
#include "pb_popcount.h" /* PB_LOAD2 */

#if !PB_KERNEL_FAST
int pb_rsign_pack_path(const pb_rsign_params_t *p)
{
    (void)p;
    return PB_PATH_REFERENCE;
}

/* Reference: channel c is bit c % 32 of word c / 32; bit = x >= threshold[c]. */
/* Loops run on end pointers so that the compiler has no trip count to multiply out. */
int pb_rsign_pack(const pb_rsign_params_t *p, const pb_residual_t *x_hwc, uint32_t *bits)
{
    if (!p || !x_hwc || !bits)
        return PB_ERR_NULL;
    const uint32_t words = p->words, row = p->padded_row_words;
    const int channels = p->channels;
    /* Border = -1 padding = bit 0: top row, then each row's two edge pixels, then bottom row. */
    uint32_t *dst = bits;
    for (uint32_t *end = dst + row; dst != end; dst++)
        *dst = 0;
    for (int y = 0; y < p->height; y++) {
        for (uint32_t *end = dst + words; dst != end; dst++)
            *dst = 0;
        for (const pb_residual_t *row_end = x_hwc + p->row_elements; x_hwc != row_end; x_hwc += channels) {
            int c = 0;
            for (uint32_t *end = dst + words; dst != end; dst++) {
                uint32_t word = 0, bit = 1;
                for (int b = 0; b < 32 && c < channels; b++, c++, bit <<= 1) {
                    if (x_hwc[c] >= p->threshold[c])
                        word |= bit;
                }
                *dst = word;
            }
        }
        for (uint32_t *end = dst + words; dst != end; dst++)
            *dst = 0;
    }
    for (uint32_t *end = dst + row; dst != end; dst++)
        *dst = 0;
    return PB_OK;
}
#else
/* Fast: channels 2k and 2k+1 of a word (k < 16) go to bits k and 16 + k, so that one 16-bit
 * SIMD compare sets both; the exporter permutes the conv weights the same way. The threshold
 * table holds t' = t - 1, clamped to the residual bound, and bit = x > t' (= x >= t):
 *   int16 residual: [ceil(channels / 2)] pairs, channel 2k in the low half, 2k+1 in the high
 *                   half (32767, never exceeded, above an odd last channel);
 *   int32 residual: [channels]. */
#if PB_RESIDUAL_BITS == 16
/* Bits 15 and 31 set where x > t' in the low and high halves of two int16 pairs. */
static inline __attribute__((always_inline)) uint32_t pair_bits(uint32_t x2, uint32_t t2)
{
#if defined(__ARM_FEATURE_SIMD32)
    uint32_t r;
    const uint32_t zero = 0, top = 0x80008000u;
    /* SSUB16 sets each half's GE flags where t' - x >= 0; SEL takes 0 there, else the top bit. */
    __asm__("ssub16 %0, %1, %2\n\tsel %0, %3, %4" : "=&r"(r) : "r"(t2), "r"(x2), "r"(zero), "r"(top));
    return r;
#else
    const uint32_t lo = (int16_t)(x2 & 0xFFFFu) > (int16_t)(t2 & 0xFFFFu);
    const uint32_t hi = (int16_t)(x2 >> 16) > (int16_t)(t2 >> 16);
    return lo << 15 | hi << 31;
#endif
}

/* One pair of channels into bits 15 and 31; the last of an odd count pairs with nothing (its
 * high half is 0 and its threshold 32767, so that bit stays 0). */
#define PB_PAIR(x, t, last) (pair_bits((last) ? (uint16_t)(x)[0] : pb_load_pair(x), *(t)))
#define PB_T_STEP           1

static inline __attribute__((always_inline)) uint32_t pb_load_pair(const pb_residual_t *x)
{
    uint32_t x2;
    /* Two int16, little-endian: the even channel in the low half. The builtin, not memcpy: with
     * -ffreestanding gcc would call the library for these four bytes. */
    __builtin_memcpy(&x2, x, sizeof x2);
    return x2;
}
#else
#define PB_PAIR(x, t, last) ((uint32_t)((x)[0] > (t)[0]) << 15 | ((last) ? 0u : (uint32_t)((x)[1] > (t)[1]) << 31))
#define PB_T_STEP           2
#endif

/* The words of one pixel. */
static inline __attribute__((always_inline)) void pack_pixel(const pb_rsign_params_t *p, const pb_residual_t *x,
                                                             uint32_t *dst)
{
    const int32_t *t = p->threshold;
    int left = p->channels;
    for (uint32_t *end = dst + p->words; dst != end; dst++) {
        const int n = left < 32 ? left : 32; /* channels of this word */
        left -= n;
        uint32_t word = 0;
        /* Each pair enters at bits 15 and 31 and moves down a bit per later pair. */
        for (const pb_residual_t *x_end = x + (n & ~1); x != x_end; x += 2, t += PB_T_STEP)
            word = PB_PAIR(x, t, 0) | word >> 1;
        if (n & 1) {
            word = PB_PAIR(x, t, 1) | word >> 1;
            x++;
            t += PB_T_STEP;
        }
        const int pairs = (n + 1) >> 1;
        *dst = pairs < 16 ? word >> (16 - pairs) : word; /* a short word ends that many bits high */
    }
}

#if PB_RESIDUAL_BITS == 16
/* `pairs` pairs of channels (an even constant: unrolled) into one word, thresholds t[0..pairs),
 * which the 16-channel loop keeps in registers (`t_in_memory` 0). x is 4-byte aligned (the
 * exporter aligns the residual, and these loops take whole words), so that LDRD takes two pairs. */
static inline __attribute__((always_inline)) uint32_t pack_pairs(const pb_residual_t *x, const uint32_t *t,
                                                                 const int pairs, const int t_in_memory)
{
    const uint32_t *x2 = (const uint32_t *)(const void *)x;
    uint32_t word = 0;
#pragma GCC unroll 8
    for (int k = 0; k < pairs; k += 2) {
        uint32_t xa, xb, ta, tb;
        PB_LOAD2(x2, k, xa, xb);
        if (t_in_memory) {
            PB_LOAD2(t, k, ta, tb);
        } else {
            ta = t[k];
            tb = t[k + 1];
        }
        word = pair_bits(xa, ta) | word >> 1;
        word = pair_bits(xb, tb) | word >> 1;
    }
    return pairs < 16 ? word >> (16 - pairs) : word;
}
#endif

/* Which pixel loop: any channel count, or (int16 residual) 16 channels with the 8 thresholds in
 * registers, or whole words of 32 channels unrolled. */
#define PB_RSIGN_ANY   0
#define PB_RSIGN_16    1
#define PB_RSIGN_WORDS 2

/* The same walk as the reference: border words 0 (the -1 padding), each pixel's words between. */
static inline __attribute__((always_inline)) void rsign_walk(const pb_rsign_params_t *p, const pb_residual_t *x_hwc,
                                                             uint32_t *bits, const int shape)
{
    const uint32_t words = p->words, row = p->padded_row_words;
    const int channels = p->channels;
    (void)shape; /* int32 residual: one loop */
#if PB_RESIDUAL_BITS == 16
    uint32_t t16[8]; /* the 16-channel loop's thresholds, hoisted out of the pixel loop */
    if (shape == PB_RSIGN_16)
        for (int k = 0; k < 8; k++)
            t16[k] = (uint32_t)p->threshold[k];
#endif
    uint32_t *dst = bits;
    for (uint32_t *end = dst + row; dst != end; dst++)
        *dst = 0;
    for (int y = 0; y < p->height; y++) {
        for (uint32_t *end = dst + words; dst != end; dst++)
            *dst = 0;
        for (const pb_residual_t *row_end = x_hwc + p->row_elements; x_hwc != row_end; x_hwc += channels) {
#if PB_RESIDUAL_BITS == 16
            if (shape == PB_RSIGN_16) {
                *dst++ = pack_pairs(x_hwc, t16, 8, 0);
                continue;
            }
            if (shape == PB_RSIGN_WORDS) {
                const uint32_t *t = (const uint32_t *)p->threshold;
                const pb_residual_t *x = x_hwc;
                for (uint32_t *end = dst + words; dst != end; dst++, x += 32, t += 16)
                    *dst = pack_pairs(x, t, 16, 1);
                continue;
            }
#endif
            pack_pixel(p, x_hwc, dst);
            dst += words;
        }
        for (uint32_t *end = dst + words; dst != end; dst++)
            *dst = 0;
    }
    for (uint32_t *end = dst + row; dst != end; dst++)
        *dst = 0;
}

/* The path of a shape (pb_kernels.h's table). */
static inline __attribute__((always_inline)) int rsign_path(const pb_rsign_params_t *p)
{
    if (PB_RESIDUAL_BITS == 16 && p->channels == 16)
        return PB_PATH_RSIGN_16;
    if (PB_RESIDUAL_BITS == 16 && (p->channels & 31) == 0)
        return PB_PATH_RSIGN_WORDS;
    return PB_PATH_RSIGN_ANY;
}

int pb_rsign_pack_path(const pb_rsign_params_t *p)
{
    return p ? rsign_path(p) : PB_PATH_RSIGN_ANY;
}

int pb_rsign_pack(const pb_rsign_params_t *p, const pb_residual_t *x_hwc, uint32_t *bits)
{
    if (!p || !x_hwc || !bits)
        return PB_ERR_NULL;
    const int path = rsign_path(p);
    if (path == PB_PATH_RSIGN_16)
        rsign_walk(p, x_hwc, bits, PB_RSIGN_16);
    else if (path == PB_PATH_RSIGN_WORDS)
        rsign_walk(p, x_hwc, bits, PB_RSIGN_WORDS);
    else
        rsign_walk(p, x_hwc, bits, PB_RSIGN_ANY);
    return PB_OK;
}
#endif
