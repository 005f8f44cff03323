#include "pb_kernels.h"

#if !PB_KERNEL_FAST
int pb_stem_conv_thermometer_path(const pb_stem_params_t *p)
{
    (void)p;
    return PB_PATH_REFERENCE;
}

/* Reference: the contract as written, one tap at a time, padding tested per tap. */
int pb_stem_conv_thermometer(const pb_stem_params_t *p, const uint8_t *image_chw, pb_residual_t *out_hwc)
{
    if (!p || !image_chw || !out_hwc || !p->weight || !p->thresholds)
        return PB_ERR_NULL;
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
                            if (yy < 0 || yy >= h || xx < 0 || xx >= w)
                                continue;
                            s += ((int32_t)image_chw[c * plane + yy * w + xx] - 128) * (int32_t)(*wt);
                        }
                    }
                }
                int32_t level = base;
                for (int k = 0; k < p->levels; k++)
                    level += (s >= thr[k]);
                thr += p->levels;
                *out_hwc++ = (pb_residual_t)level;
            }
        }
    }
    return PB_OK;
}
#else
/* Fast: per output pixel, the 27 raw pixels of its window go once into PB_STEM_PAIRS words of
 * int16 pairs (the patch); every output channel then takes 14 dual 16-bit multiply-adds (SMLAD)
 * of the patch against its weight pairs, and counts the thresholds below the sum with no branch:
 * one by one, or, where the exporter checked it for every sum the channel can reach
 * (codegen/pack.py stem_fast_words), from an estimate j = clamp(J0 + (s - base) * M >> 32, 0, L - 1)
 * that is at most two below the count, so that count = j + (s >= T_j) + (s >= T_j+1) (the fold's
 * thresholds are ceilings of equally spaced boundaries, which the estimate follows).
 *
 * Patch of pixel (y, x), row r = 3 c + ky of the window (input channel c, kernel row ky):
 *   d[r]      = (p[x - 1], p[x + 1]) of row r, int16 (low, high)    r = 0..8
 *   d[9 + j]  = (p[x] of row 2j, p[x] of row 2j + 1)               j = 0..3
 *   d[13]     = (p[x] of row 8, anything: its weight is 0)
 * The pixels are raw (0..255), not centred: the exporter moved every threshold by 128 sum(w)
 * (codegen/pack.py stem_fast_words), and a pixel outside the image reads as 128, so that it adds
 * nothing to the centred sum, as the contract's zero padding does. Inside the image one unaligned
 * word load takes the three pixels of a row (and one more, unused), and two byte extractions
 * (UXTB16) split them into the pair and the centre; the border pixels take a plain C loop. */
#if defined(__ARM_FEATURE_SIMD32)
#include <arm_acle.h>
#endif

#define PB_STEM_ROWS 9
#define PB_STEM_PAD  128u

#define PB_STEM_INLINE static inline __attribute__((always_inline))

/* Four bytes from any address: one LDR on ARMv7-M, which loads unaligned words. The builtin, not
 * memcpy: with -ffreestanding gcc would call the library. */
PB_STEM_INLINE uint32_t load4(const uint8_t *p)
{
    uint32_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

/* Bytes 0 and 2 of v as two uint16 halves (UXTB16), and bytes 1 and 3. */
PB_STEM_INLINE uint32_t even_bytes(uint32_t v)
{
#if defined(__ARM_FEATURE_SIMD32)
    return __uxtb16(v);
#else
    return v & 0x00FF00FFu;
#endif
}

PB_STEM_INLINE uint32_t odd_bytes(uint32_t v)
{
#if defined(__ARM_FEATURE_SIMD32)
    uint32_t r;
    __asm__("uxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
#else
    return (v >> 8) & 0x00FF00FFu;
#endif
}

/* The low halves of a and b as (a, b) (PKHBT). */
PB_STEM_INLINE uint32_t low_halves(uint32_t a, uint32_t b)
{
    return (a & 0xFFFFu) | (b << 16);
}

/* acc + a.lo * b.lo + a.hi * b.hi, int16 halves (SMLAD). */
PB_STEM_INLINE int32_t dual_mac(uint32_t a, uint32_t b, int32_t acc)
{
#if defined(__ARM_FEATURE_SIMD32)
    return __smlad(a, b, acc);
#else
    return acc + (int32_t)(int16_t)(a & 0xFFFFu) * (int16_t)(b & 0xFFFFu) +
           (int32_t)(int16_t)(a >> 16) * (int16_t)(b >> 16);
#endif
}

/* The patch of a pixel whose window lies inside the image (and whose fourth bytes, unused, too):
 * `window` is pixel (0, y - 1, x - 1), w the row and plane the channel stride in bytes. */
#if defined(__ARM_FEATURE_SIMD32) && defined(__thumb2__)
/* Nine unaligned word loads; UXTB16 gives the (left, right) pair of a row, UXTB16 ROR 8 its centre
 * in the low half, PKHBT pairs the centres of two rows. 47 instructions. */
#define PB_STEM_ROW_PAIR(v, k)                                                                                         \
    "uxtb16 r12, " v "\n\t"                                                                                            \
    "str r12, [%[d], #(4 * " k ")]\n\t"                                                                                \
    "uxtb16 " v ", " v ", ror #8\n\t"
#define PB_STEM_CENTRES(a, b, j)                                                                                       \
    "pkhbt r12, " a ", " b ", lsl #16\n\t"                                                                             \
    "str r12, [%[d], #(36 + 4 * " j ")]\n\t"
PB_STEM_INLINE void patch_inside(const uint8_t *window, uint32_t plane, uint32_t w, uint32_t *d)
{
    const uint32_t w2 = w << 1;
    __asm__ volatile(
        "ldr r0, [%[p]]\n\t"
        "ldr r1, [%[p], %[w]]\n\t"
        "ldr r2, [%[p], %[w2]]\n\t"
        "add %[p], %[p], %[plane]\n\t"
        "ldr r3, [%[p]]\n\t"
        "ldr r4, [%[p], %[w]]\n\t"
        "ldr r5, [%[p], %[w2]]\n\t"
        "add %[p], %[p], %[plane]\n\t" PB_STEM_ROW_PAIR("r0", "0") PB_STEM_ROW_PAIR("r1", "1")
            PB_STEM_ROW_PAIR("r2", "2") PB_STEM_ROW_PAIR("r3", "3") PB_STEM_ROW_PAIR("r4", "4")
                PB_STEM_ROW_PAIR("r5", "5") PB_STEM_CENTRES("r0", "r1", "0") PB_STEM_CENTRES("r2", "r3", "1")
                    PB_STEM_CENTRES("r4", "r5", "2") "ldr r0, [%[p]]\n\t"
                                                     "ldr r1, [%[p], %[w]]\n\t"
                                                     "ldr r2, [%[p], %[w2]]\n\t" PB_STEM_ROW_PAIR("r0", "6")
                                                         PB_STEM_ROW_PAIR("r1", "7") PB_STEM_ROW_PAIR("r2", "8")
                                                             PB_STEM_CENTRES("r0", "r1", "3") "str r2, [%[d], #52]\n\t"
        : [p] "+r"(window)
        : [w] "r"(w), [w2] "r"(w2), [plane] "r"(plane), [d] "r"(d)
        : "r0", "r1", "r2", "r3", "r4", "r5", "r12", "memory");
}
#else
PB_STEM_INLINE void patch_inside(const uint8_t *window, uint32_t plane, uint32_t w, uint32_t *d)
{
    uint32_t centre[PB_STEM_ROWS];
    const uint8_t *row = window;
    for (int c = 0, r = 0; c < 3; c++, row += plane) {
        const uint8_t *line = row;
        for (int ky = 0; ky < 3; ky++, r++, line += w) {
            const uint32_t v = load4(line);
            d[r] = even_bytes(v);
            centre[r] = odd_bytes(v);
        }
    }
    for (int j = 0; j < 4; j++)
        d[PB_STEM_ROWS + j] = low_halves(centre[2 * j], centre[2 * j + 1]);
    d[PB_STEM_ROWS + 4] = centre[8];
}
#endif

/* The same for a pixel on the image's edge: rows and columns outside read as 128. */
static void patch_edge(const uint8_t *image, int h, int w, int y, int x, uint32_t *d)
{
    const uint32_t pad2 = PB_STEM_PAD | PB_STEM_PAD << 16;
    uint32_t centre[PB_STEM_ROWS];
    const uint8_t *plane_start = image;
    for (int c = 0, r = 0; c < 3; c++, plane_start += h * w) {
        for (int yy = y - 1; yy <= y + 1; yy++, r++) {
            if (yy < 0 || yy >= h) {
                d[r] = pad2;
                centre[r] = PB_STEM_PAD;
                continue;
            }
            const uint8_t *row = plane_start + yy * w;
            const uint32_t left = x > 0 ? row[x - 1] : PB_STEM_PAD, right = x + 1 < w ? row[x + 1] : PB_STEM_PAD;
            d[r] = left | right << 16;
            centre[r] = row[x];
        }
    }
    for (int j = 0; j < 4; j++)
        d[PB_STEM_ROWS + j] = low_halves(centre[2 * j], centre[2 * j + 1]);
    d[PB_STEM_ROWS + 4] = centre[8];
}

#if PB_RESIDUAL_BITS == 16 && defined(__ARM_FEATURE_SIMD32) && defined(__thumb2__)
#define PB_STEM_ASM 1
/* Every output channel of one pixel, 8 thresholds each, int16 output: the weight pairs and the
 * thresholds stream through LDM, the patch through LDM from the stack. Per channel: 14 SMLAD, 9
 * loads, 8 subtractions whose sign bits, added, count the thresholds above the sum, and the store. */
/* Four patch words against four weight words, onto r9 (the first group starts it with SMUAD). */
#define PB_STEM_MAC4(first)                                                                                            \
    "ldmia %[d]!, {r0-r3}\n\t"                                                                                         \
    "ldmia %[w]!, {r4-r6, r8}\n\t" first "smlad r9, r1, r5, r9\n\t"                                                    \
    "smlad r9, r2, r6, r9\n\t"                                                                                         \
    "smlad r9, r3, r8, r9\n\t"
/* Four thresholds: the sign bits of s - T_k (no overflow: the exporter clamped T) onto r12. */
#define PB_STEM_BELOW4(first)                                                                                          \
    "ldmia %[w]!, {r0-r3}\n\t"                                                                                         \
    "sub r0, r9, r0\n\t"                                                                                               \
    "sub r1, r9, r1\n\t"                                                                                               \
    "sub r2, r9, r2\n\t"                                                                                               \
    "sub r3, r9, r3\n\t" first "add r12, r12, r1, lsr #31\n\t"                                                         \
    "add r12, r12, r2, lsr #31\n\t"                                                                                    \
    "add r12, r12, r3, lsr #31\n\t"

#define PB_STEM_MACS                                                                                                   \
    PB_STEM_MAC4("smuad r9, r0, r4\n\t")                                                                               \
    PB_STEM_MAC4("smlad r9, r0, r4, r9\n\t")                                                                           \
    PB_STEM_MAC4("smlad r9, r0, r4, r9\n\t")                                                                           \
    "ldrd r0, r1, [%[d]]\n\t"                                                                                          \
    "ldrd r4, r5, [%[w]], #8\n\t"                                                                                      \
    "smlad r9, r0, r4, r9\n\t"                                                                                         \
    "smlad r9, r1, r5, r9\n\t"                                                                                         \
    "sub %[d], %[d], #48\n\t"
#define PB_STEM_STORE_NEXT                                                                                             \
    "strh r12, [%[x]], #2\n\t"                                                                                         \
    "ldr r0, %[x_end]\n\t"                                                                                             \
    "cmp %[x], r0\n\t"                                                                                                 \
    "bne 1b\n\t"
#define PB_STEM_OPERANDS                                                                                               \
    : [d] "+r"(d), [w] "+r"(wt), [x] "+r"(x)                                                       \
    : [x_end] "m"(x_end)                                                                           \
    : "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r9", "r12", "cc", "memory"

/* 8 thresholds, one by one: 14 SMLAD, 11 loads and pointer steps, 8 subtractions whose sign bits,
 * added, count the thresholds above the sum, and the store. */
PB_STEM_INLINE void stem_channels8(const uint32_t *d, const uint32_t *wt, pb_residual_t *x, pb_residual_t *x_end)
{
    __asm__ volatile(
        "1:\n\t" PB_STEM_MACS "add %[w], %[w], #12\n\t" /* past the estimate */
        PB_STEM_BELOW4("lsr r12, r0, #31\n\t")          /* r12 = #{k : s < T_k} */
        PB_STEM_BELOW4(
            "add r12, r12, r0, lsr #31\n\t") "add %[w], %[w], #4\n\t" /* past the sentinel */
                                             "rsb r12, r12, #4\n\t"   /* level = -4 + #{s >= T} = 4 - #{s < T} */
        PB_STEM_STORE_NEXT PB_STEM_OPERANDS);
}

/* 8 thresholds from the estimate: SMMLA, USAT to 0..7, then the two thresholds at j (LDRD) and the
 * sign bits of s minus each. */
PB_STEM_INLINE void stem_channels8_estimate(const uint32_t *d, const uint32_t *wt, pb_residual_t *x,
                                            pb_residual_t *x_end)
{
    __asm__ volatile("1:\n\t" PB_STEM_MACS "ldmia %[w]!, {r0-r2}\n\t" /* base, M, J0 */
                     "sub r0, r9, r0\n\t"
                     "smmla r0, r0, r1, r2\n\t" /* J0 + ((s - base) * M >> 32) */
                     "usat r0, #3, r0\n\t"      /* j */
                     "add r1, %[w], r0, lsl #2\n\t"
                     "ldrd r2, r3, [r1]\n\t" /* T_j, T_j+1 */
                     "sub r2, r9, r2\n\t"
                     "sub r3, r9, r3\n\t"
                     "sub r12, r0, #2\n\t" /* level = j + (s >= T_j) + (s >= T_j+1) - 4 */
                     "sub r12, r12, r2, lsr #31\n\t"
                     "sub r12, r12, r3, lsr #31\n\t"
                     "add %[w], %[w], #36\n\t" /* past the thresholds and the sentinel */
                     PB_STEM_STORE_NEXT PB_STEM_OPERANDS);
}
#else
#define PB_STEM_ASM 0
#endif

/* Every output channel of one pixel in C: any number of thresholds, either residual width, either
 * count. */
PB_STEM_INLINE void stem_channels(const uint32_t *d, const uint32_t *wt, int levels, int channels, int estimate,
                                  pb_residual_t *x)
{
    const int32_t top = levels - levels / 2; /* -levels/2 + levels: the level when no threshold is above */
    for (int o = 0; o < channels; o++) {
        int32_t s = 0;
        for (int i = 0; i < PB_STEM_PAIRS; i++)
            s = dual_mac(d[i], wt[i], s);
        const int32_t base = (int32_t)wt[PB_STEM_PAIRS], m = (int32_t)wt[PB_STEM_PAIRS + 1];
        const int32_t j0 = (int32_t)wt[PB_STEM_PAIRS + 2];
        wt += PB_STEM_PAIRS + PB_STEM_ESTIMATE_WORDS;
        int32_t above = 0;
        if (estimate) { /* count = j + (s >= T_j) + (s >= T_j+1) */
            int32_t j = j0 + (int32_t)(((int64_t)(s - base) * m) >> 32);
            j = j < 0 ? 0 : (j > levels - 1 ? levels - 1 : j);
            above = levels - j - 2 + (int32_t)((uint32_t)(s - (int32_t)wt[j]) >> 31) +
                    (int32_t)((uint32_t)(s - (int32_t)wt[j + 1]) >> 31);
        } else {
            for (int k = 0; k < levels; k++)
                above += (int32_t)((uint32_t)(s - (int32_t)wt[k]) >> 31);
        }
        wt += levels + 1; /* the thresholds and the sentinel */
        x[o] = (pb_residual_t)(top - above);
    }
}

/* The path of a shape (pb_kernels.h's table). */
PB_STEM_INLINE int stem_path(const pb_stem_params_t *p)
{
    if (!PB_STEM_ASM || p->levels != 8)
        return PB_PATH_STEM_C;
    return p->estimate ? PB_PATH_STEM_ESTIMATE_ASM : PB_PATH_STEM_LEVELS8_ASM;
}

int pb_stem_conv_thermometer_path(const pb_stem_params_t *p)
{
    return p ? stem_path(p) : PB_PATH_STEM_C;
}

/* One pixel's channels, through the assembly where the shape has it. */
PB_STEM_INLINE void stem_pixel(const pb_stem_params_t *p, const uint32_t *d, pb_residual_t *x)
{
#if PB_STEM_ASM
    const int path = stem_path(p);
    if (path != PB_PATH_STEM_C && p->out_channels) {
        if (path == PB_PATH_STEM_ESTIMATE_ASM)
            stem_channels8_estimate(d, p->packed, x, x + p->out_channels);
        else
            stem_channels8(d, p->packed, x, x + p->out_channels);
        return;
    }
#endif
    stem_channels(d, p->packed, p->levels, p->out_channels, p->estimate, x);
}

int pb_stem_conv_thermometer(const pb_stem_params_t *p, const uint8_t *image_chw, pb_residual_t *out_hwc)
{
    if (!p || !image_chw || !out_hwc || !p->packed)
        return PB_ERR_NULL;
    const int h = p->height, w = p->width, c = p->out_channels;
    const uint32_t plane = (uint32_t)h * (uint32_t)w;
    uint32_t d[PB_STEM_PAIRS];
    pb_residual_t *x = out_hwc;
    for (int y = 0; y < h; y++) {
        /* Inside: rows 1 .. h - 2 and columns 1 .. w - 2, whose row loads (three pixels and the next)
         * stay inside the image; the last such load of the last row would not, so that pixel is an edge. */
        const int inside_row = y >= 1 && y + 1 < h;
        const int last_inside = inside_row ? (y + 2 < h ? w - 2 : w - 3) : 0;
        const uint8_t *window = image_chw + (inside_row ? (uint32_t)(y - 1) * (uint32_t)w : 0u); /* (0, y - 1, 0) */
        for (int col = 0; col < w; col++, x += c) {
            if (col >= 1 && col <= last_inside)
                patch_inside(window + (col - 1), plane, (uint32_t)w, d);
            else
                patch_edge(image_chw, h, w, y, col, d);
            stem_pixel(p, d, x);
        }
    }
    return PB_OK;
}
#endif
