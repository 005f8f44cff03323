/*
 * pbkit kernels: the operations of a PopBin network on integers.
 *
 * Layouts
 *   image       uint8, CHW (CIFAR order), 3 x 32 x 32
 *   residual    pb_residual_t, HWC; its width (int16/int32) is chosen by the exporter from a
 *               static bound on |x| and set in pb_model_config.h
 *   bits        uint32 words, HWC with a one-pixel border: (H+2) x (W+2) x words, words =
 *               ceil(C/32). Channel c is bit (c % 32) of word (c / 32). Bit 1 means +1, bit 0
 *               means -1. The border and the unused high bits of the last word are 0: the
 *               border is the -1 padding of the contract, the unused bits match the weights'
 *               zero bits and add nothing to a popcount.
 *   weights     uint32 words, [Cout][3][3][words], same bit convention.
 *   fast kernel (PB_KERNEL_FAST 1): the same bits in another order within each word (channels 2k
 *               and 2k + 1 of a word are bits k and 16 + k, pb_rsign_pack.c); the tables in the
 *               layouts codegen/pack.py writes and the kernels describe: the stem's int16 weight
 *               pairs and raw-pixel thresholds (pb_stem_conv_thermometer.c), lane pairs for
 *               windows of one word (pb_binconv3x3_popbin.c), the carry-save groups of the walk for
 *               wider ones and for the baseline (pb_binconv_walk.h), RSign thresholds in int16 pairs
 *               (pb_rsign_pack.c); the residual array is word-aligned.
 *
 * PopBin's binary layers (rsign_pack, binconv3x3_popbin, binconv3x3_ternary, sumpool2x2_dup) use no multiply:
 * every stride is precomputed by the exporter into the parameter structs, loops only add.
 * The baseline's binconv3x3_requant multiplies once per output element by design: that
 * requantization multiply + shift is what PopBin removes, and what the comparison counts.
 * The stem and the head multiply (the int8 part; the fast stem with SMLAD, two MACs a step), unless the model
 * takes the bit-plane stem (pb_stem_bitplanes) and the shift head (pb_head_sumpool_shift): then nothing does.
 * Every function returns PB_OK or a negative PB_ERR_* status.
 */
#ifndef PB_KERNELS_H
#define PB_KERNELS_H

#include <stdint.h>

#include "pb_model_config.h" /* PB_RESIDUAL_BITS, PB_KERNEL_FAST */

#define PB_OK        0
#define PB_ERR_NULL  (-1)
#define PB_ERR_SHAPE (-2)
#define PB_ERR_KIND  (-3) /* a block kind this build does not know (firmware older than the export) */

#if PB_RESIDUAL_BITS == 16
typedef int16_t pb_residual_t;
#else
typedef int32_t pb_residual_t;
#endif

typedef struct {
    uint16_t height, width, out_channels; /* output = input size (3x3, pad 1, stride 1) */
    uint16_t levels;                      /* thresholds per channel; level = -levels/2 + count */
    const int8_t *weight;                 /* [Cout][3][3][3], OIHW, applied to pixel - 128 */
    const int32_t *thresholds;            /* [Cout][levels], ascending */
    /* The fast kernel's table instead of the two above (NULL in the reference export):
     * [Cout][PB_STEM_PAIRS int16 weight pairs, the level estimate (3 words), levels int32 thresholds on
     * the raw-pixel sum and one above them], written by codegen/pack.py stem_fast_words;
     * pb_stem_conv_thermometer.c reads it. */
    const uint32_t *packed;
    uint8_t estimate; /* 1: the exporter checked every channel's level estimate, two compares suffice */
} pb_stem_params_t;

/* Layout constants the exporter shares (codegen/pack.py; tests/test_pack.py holds them equal). */
#define PB_STEM_PAIRS          14  /* 27 taps in int16 pairs: STEM_FAST_PAIRS */
#define PB_STEM_ESTIMATE_WORDS 3   /* base, M, J0 of the level estimate: STEM_ESTIMATE_WORDS */
#define PB_FAST_MAX_IN_WORDS   16u /* the fast conv's scratch, 12 words per input word: FAST_MAX_IN_WORDS */
#define PB_HALVES_MAX_CHANNELS 16  /* up to here a window takes half words: HALVES_MAX_CHANNELS */

/* The bit-plane stem (pb_stem_bitplanes.c): thermometer planes of the image, binary 3x3 conv, levels. */
typedef struct {
    uint16_t height, width, out_channels; /* output = input size (3x3, pad 1 with black pixels, stride 1) */
    uint16_t levels;                      /* thresholds per channel; level = -levels/2 + count */
    uint16_t planes;                      /* thermometer planes per colour channel, 3 x planes <= 32 */
    uint16_t fan_in;                      /* N = 9 x 3 x planes: s = N - 2 popcount */
    uint32_t plane_pixels;                /* height x width: one colour plane of the CHW image */
    /* Reference: [planes] ascending thresholds (plane c L + k is pixel[c] >= t_k); [Cout][9] weight words
     * (ky, kx), bit c L + k; [Cout][levels] thresholds on s, ascending. */
    const uint8_t *input_thresholds;
    const uint32_t *weights;
    const int32_t *thresholds;
    /* Fast (codegen/pack.py bitstem_fast_tables) instead of the thresholds: [256] thermometer masks of a pixel
     * value (the planes it sets), and [Cout][fan_in + 1] the level of every popcount; `weights` then holds
     * [Cout][12] carry-save words. */
    const uint16_t *input_masks;
    const int8_t *level_table;
} pb_bitstem_params_t;

typedef struct {
    uint16_t height, width, channels, words; /* input residual size; words = ceil(channels/32) */
    uint32_t padded_row_words;               /* (width + 2) * words */
    uint32_t row_elements;                   /* width * channels */
    const int32_t *threshold;                /* [channels]: bit = (x >= threshold) */
} pb_rsign_params_t;

typedef struct {
    uint16_t out_height, out_width, out_channels, in_words;
    uint32_t window_words;     /* 3 * in_words: one row of the 3x3 window, contiguous */
    uint32_t padded_row_words; /* (in_width + 2) * in_words */
    uint32_t step_words;       /* stride * in_words: next output column */
    uint32_t row_step_words;   /* stride * padded_row_words: next output row */
    const uint32_t *weights;   /* [Cout][3][3][in_words]; the fast kernel's layout: pb_binconv_walk.h */
    /* PopBin (binconv3x3_popbin, binconv3x3_ternary): */
    int32_t delta;                     /* added when the popcount passes the threshold, else subtracted */
    const int32_t *popcount_threshold; /* [Cout]: +delta when popcount(a ^ w) <= threshold */
    /* Ternary only, [Cout], >= popcount_threshold: 0 when popcount_threshold < popcount <= zero_threshold,
     * -delta above. The fast layout holds both thresholds in the weight stream instead (NULL here). */
    const int32_t *zero_threshold;
    /* Baseline (binconv3x3_requant); 0 / NULL in popbin blocks, whose tables do not name them: */
    int32_t fan_in;            /* N = 9 * in_channels: p = N - 2 * popcount(a ^ w) */
    uint32_t shift;            /* branch = (p * multiplier + bias) >> shift, flooring */
    const int32_t *multiplier; /* [Cout] */
    const int32_t *bias;       /* [Cout], BN's shift and the rounding offset folded in */
    uint16_t in_channels;      /* the fast kernel's weight layout depends on it (pb_binconv_walk.h) */
    /* --kernel tables: the popcount tables and thresholds of a window of at most 32 channels
     * (pb_binconv_table.h), or the slice tables of wider ones (pb_binconv_slice.h), instead of `weights`;
     * NULL otherwise. */
    const uint32_t *table;
} pb_binconv_params_t;

typedef struct {
    uint16_t in_height, in_width, channels; /* output: in/2 x in/2 x 2*channels */
    uint32_t row_elements;                  /* in_width * channels */
} pb_sumpool_params_t;

typedef struct {
    uint16_t positions, channels, classes;
    const int8_t *weight; /* [classes][channels] */
    const int32_t *bias;  /* [classes] */
    uint32_t pool_shift;  /* pooled = sum >> pool_shift, flooring; 0 (unnamed in the table) for PopBin */
} pb_head_params_t;

/* Code paths: which loop runs a shape, per build. Each kernel reports its own for a parameter struct
 * (pb_*_path below), from the same tests its dispatch makes, and tests/kernels/plan.json names a shape
 * of every class with the path the Cortex-M build ("-asm": Thumb-2 assembly) and the host take.
 *
 *   kernel        shape                                         fast, int16, Cortex-M      fast elsewhere
 *   stem          8 thresholds, estimate checked by the exporter  stem/estimate-asm        stem/c
 *                 8 thresholds                                  stem/levels8-asm           stem/c
 *                 other counts                                  stem/c                     stem/c
 *   rsign_pack    16 channels (int16)                           rsign/16                   rsign/16 (int32: any)
 *                 a multiple of 32 (int16)                      rsign/words                rsign/words (int32: any)
 *                 any other                                     rsign/any                  rsign/any
 *   sumpool       an even channel count (int16)                 sumpool/pairs              sumpool/pairs (int32: any)
 *                 odd                                           sumpool/any                sumpool/any
 *   popbin conv   a table (--kernel tables): Cin <= 32,           popbin/table-asm           popbin/table-c
 *                   Cout 16, 32 or 64 (pb_binconv_table.h)
 *                 a table, Cin <= 32, Cout 4 or 8               popbin/table-simd          popbin/table-c
 *                 a table (--kernel slices), Cin 64..224, a     popbin/slice-asm           popbin/slice-c
 *                   multiple of 32, Cout a multiple of 32 (pb_binconv_slice.h)
 *                 a table, any other shape                      refused                    refused
 *                 Cin <= 16, Cout % 8 == 0                      popbin/lane1-row4-asm      popbin/lane1-c
 *                 Cin <= 16, Cout % 4 == 0                      popbin/lane1-row2-asm      popbin/lane1-c
 *                 Cin <= 16, pairs (Cout / 2) even, Cout % 4    popbin/lane1-pixel2-asm    popbin/lane1-c
 *                 Cin <= 16, pairs odd                          popbin/lane1-pixel1-asm    popbin/lane1-c
 *                 Cin <= 16, Cout == 1                          popbin/lane1-c             popbin/lane1-c
 *                 17 <= Cin <= 32: the same, two streams        popbin/lane2-*             popbin/lane2-c
 *                 2 words (33..64), Cout >= 2                   popbin/walk-w2-asm         popbin/walk-c
 *                 4 words (97..128), Cout >= 2                  popbin/walk-w4-asm         popbin/walk-c
 *                 3, 5 .. 16 words                              popbin/walk-c              popbin/walk-c
 *                 more than 16 words                            refused (PB_ERR_SHAPE)     refused
 *   ternary conv  the popbin conv's shapes and paths, with a second threshold (three levels)
 *   requant conv  Cin <= 16                                     requant/walk-halves-c      requant/walk-halves-c
 *                 1 .. 16 words                                 requant/walk-c             requant/walk-c
 *                 more than 16 words                            refused                    refused
 *   bit stem      any (--stem bitplanes)                        bitstem/csa                bitstem/csa
 *   head          any                                           head                       head
 *   shift head    any (--head shift)                            head/shift                 head/shift
 * The reference build (PB_KERNEL_FAST 0) takes "reference" in every kernel but the two heads. Lane pairs
 * and the walk: pb_binconv3x3_popbin.c, pb_binconv_walk.h; their assembly: pb_popbin_channels_arm.h. */
#define PB_KERNEL_PATHS(X)                                                                                             \
    X(PB_PATH_REFERENCE, "reference")                                                                                  \
    X(PB_PATH_STEM_ESTIMATE_ASM, "stem/estimate-asm")                                                                  \
    X(PB_PATH_STEM_LEVELS8_ASM, "stem/levels8-asm")                                                                    \
    X(PB_PATH_STEM_C, "stem/c")                                                                                        \
    X(PB_PATH_RSIGN_16, "rsign/16")                                                                                    \
    X(PB_PATH_RSIGN_WORDS, "rsign/words")                                                                              \
    X(PB_PATH_RSIGN_ANY, "rsign/any")                                                                                  \
    X(PB_PATH_SUMPOOL_PAIRS, "sumpool/pairs")                                                                          \
    X(PB_PATH_SUMPOOL_ANY, "sumpool/any")                                                                              \
    X(PB_PATH_LANE1_ROW4_ASM, "popbin/lane1-row4-asm")                                                                 \
    X(PB_PATH_LANE1_ROW2_ASM, "popbin/lane1-row2-asm")                                                                 \
    X(PB_PATH_LANE1_PIXEL2_ASM, "popbin/lane1-pixel2-asm")                                                             \
    X(PB_PATH_LANE1_PIXEL1_ASM, "popbin/lane1-pixel1-asm")                                                             \
    X(PB_PATH_LANE1_C, "popbin/lane1-c")                                                                               \
    X(PB_PATH_LANE2_ROW4_ASM, "popbin/lane2-row4-asm")                                                                 \
    X(PB_PATH_LANE2_ROW2_ASM, "popbin/lane2-row2-asm")                                                                 \
    X(PB_PATH_LANE2_PIXEL2_ASM, "popbin/lane2-pixel2-asm")                                                             \
    X(PB_PATH_LANE2_PIXEL1_ASM, "popbin/lane2-pixel1-asm")                                                             \
    X(PB_PATH_LANE2_C, "popbin/lane2-c")                                                                               \
    X(PB_PATH_WALK_W2_ASM, "popbin/walk-w2-asm")                                                                       \
    X(PB_PATH_WALK_W4_ASM, "popbin/walk-w4-asm")                                                                       \
    X(PB_PATH_WALK_C, "popbin/walk-c")                                                                                 \
    X(PB_PATH_REQUANT_HALVES_C, "requant/walk-halves-c")                                                               \
    X(PB_PATH_REQUANT_C, "requant/walk-c")                                                                             \
    X(PB_PATH_REFUSED, "refused")                                                                                      \
    X(PB_PATH_HEAD, "head")                                                                                            \
    X(PB_PATH_BITSTEM_CSA, "bitstem/csa")                                                                              \
    X(PB_PATH_HEAD_SHIFT, "head/shift")                                                                                \
    X(PB_PATH_TABLE_ASM, "popbin/table-asm")                                                                           \
    X(PB_PATH_TABLE_SIMD, "popbin/table-simd")                                                                         \
    X(PB_PATH_TABLE_C, "popbin/table-c")                                                                               \
    X(PB_PATH_SLICE_ASM, "popbin/slice-asm")                                                                           \
    X(PB_PATH_SLICE_C, "popbin/slice-c")

enum {
#define PB_PATH_ENUM(id, name) id,
    PB_KERNEL_PATHS(PB_PATH_ENUM)
#undef PB_PATH_ENUM
        PB_PATH_COUNT
};

/* Stem: int8 3x3 conv on (pixel - 128), zero padding, then thermometer thresholds -> grid levels. */
int pb_stem_conv_thermometer(const pb_stem_params_t *p, const uint8_t *image_chw, pb_residual_t *out_hwc);

/* Bit-plane stem, no multiply: thermometer planes of the image into `planes` ((H+2) x (W+2) words, the
 * caller's; the network lends it the bit buffer, which the first RSign overwrites), binary 3x3 conv by XOR +
 * popcount, then level = -levels/2 + #{k : N - 2 popcount >= T[c,k]}. */
int pb_stem_bitplanes(const pb_bitstem_params_t *p, const uint8_t *image_chw, uint32_t *planes, pb_residual_t *out_hwc);

/* RSign: residual -> bits (with the zero border) for the next binary conv. */
int pb_rsign_pack(const pb_rsign_params_t *p, const pb_residual_t *x_hwc, uint32_t *bits);

/* Binary 3x3 conv, popcount binarized: x_hwc[o] += popcount <= threshold ? delta : -delta. */
int pb_binconv3x3_popbin(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x_hwc);

/* Binary 3x3 conv, popcount ternarized: x_hwc[o] += delta when popcount <= popcount_threshold, nothing up
 * to zero_threshold, -delta above; two compares, no multiply. Same shapes, paths and status codes as the
 * popbin conv. */
int pb_binconv3x3_ternary(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x_hwc);

/* Binary 3x3 conv, requantized (the baseline): p = N - 2 popcount, then one int32 multiply-add
 * and a flooring shift per output: x_hwc[o] += (p * multiplier[o] + bias[o]) >> shift.
 * The exporter guarantees |p * multiplier + bias| < 2^31 for every |p| <= N. */
int pb_binconv3x3_requant(const pb_binconv_params_t *p, const uint32_t *bits, pb_residual_t *x_hwc);

/* Downsampling shortcut, in place: 2x2 sum pooling and channel duplication (c' = c mod C). */
int pb_sumpool2x2_dup(const pb_sumpool_params_t *p, pb_residual_t *x_hwc);

/* Head: sum over positions, a flooring shift by pool_shift, int8 FC, argmax with ties to the
 * lowest index. pooled_scratch holds `channels` int32 (the caller owns all memory). */
int pb_head_sumpool_fc(const pb_head_params_t *p, const pb_residual_t *x_hwc, int32_t *pooled_scratch, int32_t *logits,
                       uint32_t *class_index);

/* Head without multiply (--head shift): sum over positions, pool shift, then every weight is a code c of
 * p->weight: 0 adds nothing, +-(e + 1) adds or subtracts pooled << e (e <= 6); bias, argmax as above. */
int pb_head_sumpool_shift(const pb_head_params_t *p, const pb_residual_t *x_hwc, int32_t *pooled_scratch,
                          int32_t *logits, uint32_t *class_index);

/* The path (PB_PATH_*) each kernel takes for these parameters in this build: the table above. */
int pb_stem_conv_thermometer_path(const pb_stem_params_t *p);
int pb_rsign_pack_path(const pb_rsign_params_t *p);
int pb_binconv3x3_popbin_path(const pb_binconv_params_t *p);
int pb_binconv3x3_ternary_path(const pb_binconv_params_t *p);
int pb_binconv3x3_requant_path(const pb_binconv_params_t *p);
int pb_sumpool2x2_dup_path(const pb_sumpool_params_t *p);
int pb_head_sumpool_fc_path(const pb_head_params_t *p);
int pb_stem_bitplanes_path(const pb_bitstem_params_t *p);
int pb_head_sumpool_shift_path(const pb_head_params_t *p);

#endif
