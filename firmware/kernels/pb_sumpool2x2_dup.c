#include "pb_kernels.h"
#include "pb_popcount.h" /* PB_LOAD2, PB_STORE2 */

#if PB_KERNEL_FAST && PB_RESIDUAL_BITS == 16 && defined(__ARM_FEATURE_SIMD32)
#include <arm_acle.h> /* __sadd16: two int16 adds in one instruction (ARMv7E-M DSP) */
#endif

#if PB_KERNEL_FAST && PB_RESIDUAL_BITS == 16
/* Two adjacent int16 channels as one word, and back. The builtin, not memcpy: with
 * -ffreestanding gcc would call the library for these four bytes. */
static inline __attribute__((always_inline)) uint32_t load2(const pb_residual_t *x)
{
    uint32_t v;
    __builtin_memcpy(&v, x, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void store2(pb_residual_t *x, uint32_t v)
{
    __builtin_memcpy(x, &v, sizeof v);
}

/* a + b in each int16 half. No half overflows: the static bound covers the pooled sum. */
static inline __attribute__((always_inline)) uint32_t add2(uint32_t a, uint32_t b)
{
#if defined(__ARM_FEATURE_SIMD32)
    return (uint32_t)__sadd16((int16x2_t)a, (int16x2_t)b);
#else
    return (((a & 0xFFFFu) + (b & 0xFFFFu)) & 0xFFFFu) | ((a >> 16) + (b >> 16)) << 16;
#endif
}

/* Two pairs of channels of one output pixel (4 int16, word-aligned: the residual is, and c and the
 * row are even) from the four input pixels at s, s + c, s + row, s + row + c: LDRDs and STRDs. */
static inline __attribute__((always_inline)) void pool_two_pairs(pb_residual_t *dst, const pb_residual_t *s, uint32_t c,
                                                                 uint32_t row)
{
    const uint32_t *a = (const uint32_t *)(const void *)s, *b = (const uint32_t *)(const void *)(s + c);
    const uint32_t *e = (const uint32_t *)(const void *)(s + row), *f = (const uint32_t *)(const void *)(s + row + c);
    uint32_t a0, a1, b0, b1, e0, e1, f0, f1;
    PB_LOAD2(a, 0, a0, a1);
    PB_LOAD2(b, 0, b0, b1);
    PB_LOAD2(e, 0, e0, e1);
    PB_LOAD2(f, 0, f0, f1);
    const uint32_t lo = add2(add2(a0, b0), add2(e0, f0)), hi = add2(add2(a1, b1), add2(e1, f1));
    uint32_t *out = (uint32_t *)(void *)dst, *dup = (uint32_t *)(void *)(dst + c);
    PB_STORE2(out, 0, lo, hi);
    PB_STORE2(dup, 0, lo, hi);
}
#endif

/* The path of a shape (pb_kernels.h's table): two channels a step where the count is even. */
static inline __attribute__((always_inline)) int sumpool_path(const pb_sumpool_params_t *p)
{
#if PB_KERNEL_FAST && PB_RESIDUAL_BITS == 16
    return (p->channels & 1) ? PB_PATH_SUMPOOL_ANY : PB_PATH_SUMPOOL_PAIRS;
#elif PB_KERNEL_FAST
    (void)p;
    return PB_PATH_SUMPOOL_ANY;
#else
    (void)p;
    return PB_PATH_REFERENCE;
#endif
}

int pb_sumpool2x2_dup_path(const pb_sumpool_params_t *p)
{
    return p ? sumpool_path(p) : PB_PATH_SUMPOOL_ANY;
}

/* In place is safe: output pixel (oy, ox) occupies the slots of input pixels (2oy, 2ox) and
 * (2oy, 2ox+1) only for oy = 0, and each channel is read before its two slots are written;
 * for oy > 0 every write lands below the rows still to be read. The fast path takes four
 * channels at a time (two int16 pairs by LDRD), then a last pair where the count is 2 mod 4 (an even
 * count, so that no pair crosses into the next pixel), which keeps that order step by step. */
int pb_sumpool2x2_dup(const pb_sumpool_params_t *p, pb_residual_t *x_hwc)
{
    if (!p || !x_hwc)
        return PB_ERR_NULL;
    const int c = p->channels;
#if PB_KERNEL_FAST && PB_RESIDUAL_BITS == 16
    const int pairs = sumpool_path(p) == PB_PATH_SUMPOOL_PAIRS;
#endif
    const uint32_t row = p->row_elements;
    pb_residual_t *dst = x_hwc;
    const pb_residual_t *src_row = x_hwc;
    for (int oy = 0; oy < p->in_height; oy += 2) {
        const pb_residual_t *s = src_row;
        for (int ox = 0; ox < p->in_width; ox += 2) {
#if PB_KERNEL_FAST && PB_RESIDUAL_BITS == 16
            if (pairs) { /* two pairs a step, then the last pair where c is not a multiple of 4 */
                for (const pb_residual_t *end = s + (c & ~3); s != end; s += 4, dst += 4)
                    pool_two_pairs(dst, s, (uint32_t)c, row);
                if (c & 2) {
                    const uint32_t sum = add2(add2(load2(s), load2(s + c)), add2(load2(s + row), load2(s + row + c)));
                    store2(dst, sum);
                    store2(dst + c, sum);
                    s += 2;
                    dst += 2;
                }
                dst += c;
                s += c;
                continue;
            }
#endif
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
