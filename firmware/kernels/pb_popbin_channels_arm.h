/* The fast popbin conv's inner loops in Thumb-2 assembly for ARMv7E-M (Cortex-M4/M7) with an int16
 * residual (which shape takes which: pb_kernels.h's path table):
 *   lane pairs, one input word a pixel (pb_binconv3x3_popbin.c): pb_popbin_lane_row runs whole output
 *     rows (derivation and pixel loop included), pb_popbin_lane_pairs the pairs of one pixel;
 *   the walk's channel pairs for two and four input words (pb_binconv_walk.h): pb_popbin_pairs_w2/w4.
 * They compute what the C loops compute, on the same layouts, which the kernel tests check (tests/
 * kernels/plan.json). They exist because gcc splits the loads into single LDRs, spills the loop's
 * pointers around the popcount and rebuilds constants. Here the weights stream through LDM, the
 * derived activation words through LDM and post-indexed LDRD (7 loads a unit of nine words), every
 * register is named (gcc places the pointers in those left), and the branch of two channels is one 16-bit SIMD step:
 * SSUB16 of the threshold pair and the count pair sets the GE flags where count <= threshold, SEL then takes x + delta
 * or x - delta per half. Ternary blocks (pb_binconv3x3_ternary) take the same loops with a second threshold word after
 * the first: one more SSUB16 and SEL pick x where plus < count <= zero threshold.
 *
 * Pairs only: an odd last channel is left to the C loop. */
#ifndef PB_POPBIN_CHANNELS_ARM_H
#define PB_POPBIN_CHANNELS_ARM_H

#include "pb_kernels.h"

/* One carry-save group (pb_csa3): four weight words by LDM, the four activation words at d (which
 * walks: a unit advances it by 48 bytes, the caller steps it back once per channel or pair) by one LDM
 * into r4, r5, `d2`, `d3` where two accumulators are still free (groups 0 and 1 of a unit), by two
 * post-indexed LDRDs into r4, r5 in group 2. Leaves the sum in r3 and the carry in r0. */
#define PB_ASM_CSA3_XOR(d2, d3)                                                                                        \
    "eor r0, r0, r4\n\t"     /* x = a0 ^ w0 */                                                                         \
    "eor r1, r1, r5\n\t"     /* x ^ y */                                                                               \
    "eor r2, r2, " d2 "\n\t" /* x ^ z */                                                                               \
    "eor r3, r3, " d3 "\n\t" /* sum */                                                                                 \
    "and r1, r1, r2\n\t"                                                                                               \
    "eor r0, r0, r1\n\t" /* carry = x ^ ((x^y) & (x^z)) */
#define PB_ASM_CSA3_LDM(d2, d3)                                                                                        \
    "ldmia %[w]!, {r0-r3}\n\t"                                                                                         \
    "ldmia %[d]!, {r4, r5, " d2 ", " d3 "}\n\t" PB_ASM_CSA3_XOR(d2, d3)
#define PB_ASM_CSA3_LDRD                                                                                               \
    "ldmia %[w]!, {r0-r3}\n\t"                                                                                         \
    "ldrd r4, r5, [%[d]], #8\n\t"                                                                                      \
    "eor r0, r0, r4\n\t"                                                                                               \
    "eor r1, r1, r5\n\t"                                                                                               \
    "ldrd r4, r5, [%[d]], #8\n\t"                                                                                      \
    "eor r2, r2, r4\n\t"                                                                                               \
    "eor r3, r3, r5\n\t"                                                                                               \
    "and r1, r1, r2\n\t"                                                                                               \
    "eor r0, r0, r1\n\t"

/* d back to the pixel's first derived word after `bytes` of units. */
#define PB_ASM_D_RESET(bytes) "sub %[d], %[d], #" bytes "\n\t"

/* pb_pairs of r3 into `ones` and of r0 into `twos` (groups 0 and 1 of a unit). */
#define PB_ASM_PAIRS(ones, twos)                                                                                       \
    "and r1, r3, #0xAAAAAAAA\n\t"                                                                                      \
    "sub " ones ", r3, r1, lsr #1\n\t"                                                                                 \
    "and r1, r0, #0xAAAAAAAA\n\t"                                                                                      \
    "sub " twos ", r0, r1, lsr #1\n\t"

/* pb_pairs_add of r3 into (r6, r8) and of r0 into (r9, r10) (group 2 of a unit). */
#define PB_ASM_PAIRS_ADD                                                                                               \
    "and r1, r3, #0x55555555\n\t"                                                                                      \
    "add r6, r6, r1\n\t"                                                                                               \
    "and r1, r3, #0xAAAAAAAA\n\t"                                                                                      \
    "add r8, r8, r1, lsr #1\n\t"                                                                                       \
    "and r1, r0, #0x55555555\n\t"                                                                                      \
    "add r9, r9, r1\n\t"                                                                                               \
    "and r1, r0, #0xAAAAAAAA\n\t"                                                                                      \
    "add r10, r10, r1, lsr #1\n\t"

/* pb_nibbles of `a` plus pb_nibbles of `b`, into a; r1 is scratch. */
#define PB_ASM_NIBBLES2(a, b)                                                                                          \
    "and r1, " a ", #0xCCCCCCCC\n\t"                                                                                   \
    "and " a ", " a ", #0x33333333\n\t"                                                                                \
    "add " a ", " a ", r1, lsr #2\n\t"                                                                                 \
    "and r1, " b ", #0xCCCCCCCC\n\t"                                                                                   \
    "and " b ", " b ", #0x33333333\n\t"                                                                                \
    "add " b ", " b ", r1, lsr #2\n\t"                                                                                 \
    "add " a ", " a ", " b "\n\t"

/* pb_nibbles_to_bytes of `a`; r1 is scratch. */
#define PB_ASM_BYTES(a)                                                                                                \
    "and r1, " a ", #0xF0F0F0F0\n\t"                                                                                   \
    "and " a ", " a ", #0x0F0F0F0F\n\t"                                                                                \
    "add " a ", " a ", r1, lsr #4\n\t"

/* One unit of three groups (nine window words, the next 12 derived words at d): byte lanes of ones
 * in r6, of twos in r9. One group a line, by hand: clang-format 23 does not settle on a layout here. */
/* clang-format off */
#define PB_ASM_UNIT                                                                                                    \
    PB_ASM_CSA3_LDM("r6", "r9") PB_ASM_PAIRS("r6", "r9")                                                               \
    PB_ASM_CSA3_LDM("r8", "r10") PB_ASM_PAIRS("r8", "r10")                                                             \
    PB_ASM_CSA3_LDRD PB_ASM_PAIRS_ADD                                                                                  \
    PB_ASM_NIBBLES2("r6", "r8") PB_ASM_NIBBLES2("r9", "r10")                                                           \
    PB_ASM_BYTES("r6") PB_ASM_BYTES("r9")
/* clang-format on */

/* The unit's count, ones + 2 twos summed over the bytes, into `dst` (the first unit) or onto
 * r12. Without a zero register: USAD8 of (ones + 3 twos) against twos is that sum. */
#define PB_ASM_UNIT_SUM                                                                                                \
    "add r6, r6, r9, lsl #1\n\t"                                                                                       \
    "add r6, r6, r9\n\t"
#define PB_ASM_UNIT_COUNT_FIRST(dst) PB_ASM_UNIT_SUM "usad8 " dst ", r6, r9\n\t"
#define PB_ASM_UNIT_COUNT_NEXT       PB_ASM_UNIT_SUM "usada8 r12, r6, r9, r12\n\t"

/* The branch of a channel pair, counts in registers `a` (even channel) and `b`, delta in both
 * halves of `delta2`: the pair's threshold word follows its weights. */
#define PB_ASM_BRANCH_PAIR(a, b, delta2)                                                                               \
    "ldr r1, [%[w]], #4\n\t"                                                                                           \
    "pkhbt r3, " a ", " b ", lsl #16\n\t"                                                                              \
    "ldr r2, [%[x]]\n\t"                                                                                               \
    "sadd16 r4, r2, " delta2 "\n\t"                                                                                    \
    "ssub16 r5, r2, " delta2 "\n\t"                                                                                    \
    "ssub16 r1, r1, r3\n\t"                                                                                            \
    "sel r2, r4, r5\n\t"                                                                                               \
    "str r2, [%[x]], #4\n\t"

/* The same for a ternary pair: the plus thresholds (r1) and the zero thresholds (r8) by one LDRD; x where
 * count <= zero threshold, else x - delta, then x + delta where count <= plus threshold. */
#define PB_ASM_BRANCH_PAIR3(a, b, delta2)                                                                              \
    "ldrd r1, r8, [%[w]], #8\n\t"                                                                                      \
    "pkhbt r3, " a ", " b ", lsl #16\n\t"                                                                              \
    "ldr r2, [%[x]]\n\t"                                                                                               \
    "sadd16 r4, r2, " delta2 "\n\t"                                                                                    \
    "ssub16 r5, r2, " delta2 "\n\t"                                                                                    \
    "ssub16 r8, r8, r3\n\t"                                                                                            \
    "sel r5, r2, r5\n\t"                                                                                               \
    "ssub16 r1, r1, r3\n\t"                                                                                            \
    "sel r2, r4, r5\n\t"                                                                                               \
    "str r2, [%[x]], #4\n\t"

/* The loop's end test, the end in memory. */
#define PB_ASM_NEXT                                                                                                    \
    "ldr r1, %[x_end]\n\t"                                                                                             \
    "cmp %[x], r1\n\t"                                                                                                 \
    "bne 1b\n\t"

#define PB_ASM_CLOBBERS_UNIT "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r9", "r10", "r12", "cc", "memory"

/* Lane pairs (pb_binconv3x3_popbin.c): one count serves both channels of a pair, the even one in
 * lanes 0-15 and the odd one in lanes 16-31; the halves of its byte sums are the two counts (UXTB16 +
 * UXTAB16), already the pair the branch compares. r6: the byte sums, r12: delta2. */
#define PB_ASM_LANE_COUNTS                                                                                             \
    "uxtb16 r3, r6, ror #8\n\t"                                                                                        \
    "uxtab16 r3, r3, r6\n\t" /* (bytes 0 + 1, bytes 2 + 3) = (even count, odd count) */
#define PB_ASM_LANE_BRANCH                                                                                             \
    PB_ASM_LANE_COUNTS                                                                                                 \
    "ldr r1, [%[w]], #4\n\t"                                                                                           \
    "ldr r2, [%[x]]\n\t"                                                                                               \
    "sadd16 r4, r2, r12\n\t"                                                                                           \
    "ssub16 r5, r2, r12\n\t"                                                                                           \
    "ssub16 r1, r1, r3\n\t"                                                                                            \
    "sel r2, r4, r5\n\t"                                                                                               \
    "str r2, [%[x]], #4\n\t"
/* Ternary: the plus (r0) and zero (r1) threshold pairs by one LDRD, two selects (PB_ASM_BRANCH_PAIR3). */
#define PB_ASM_LANE_BRANCH3                                                                                            \
    PB_ASM_LANE_COUNTS                                                                                                 \
    "ldrd r0, r1, [%[w]], #8\n\t"                                                                                      \
    "ldr r2, [%[x]]\n\t"                                                                                               \
    "sadd16 r4, r2, r12\n\t"                                                                                           \
    "ssub16 r5, r2, r12\n\t"                                                                                           \
    "ssub16 r1, r1, r3\n\t"                                                                                            \
    "sel r5, r2, r5\n\t"                                                                                               \
    "ssub16 r0, r0, r3\n\t"                                                                                            \
    "sel r2, r4, r5\n\t"                                                                                               \
    "str r2, [%[x]], #4\n\t"
/* At most 16 input channels: one stream, one unit; delta2 stays in r12. */
#define PB_ASM_LANE_PAIR_WITH(branch)                                                                                  \
    PB_ASM_UNIT                                                                                                        \
    "add r6, r6, r9, lsl #1\n\t" /* byte sums: ones + 2 twos */                                                        \
        PB_ASM_D_RESET("48") branch
/* 17 to 32: two streams (a, ror(a, 16)), two units whose byte sums (at most 72 each) add up in
 * bytes; r12 holds the first unit's until the branch reloads delta2 there. */
#define PB_ASM_LANE_PAIR2_WITH(branch)                                                                                 \
    PB_ASM_UNIT                                                                                                        \
    "add r12, r6, r9, lsl #1\n\t" PB_ASM_UNIT "add r6, r6, r9, lsl #1\n\t"                                             \
    "add r6, r6, r12\n\t" PB_ASM_D_RESET("96") "ldr r12, %[delta2]\n\t" branch
#define PB_ASM_LANE_PAIR    PB_ASM_LANE_PAIR_WITH(PB_ASM_LANE_BRANCH)
#define PB_ASM_LANE_PAIR2   PB_ASM_LANE_PAIR2_WITH(PB_ASM_LANE_BRANCH)
#define PB_ASM_LANE_PAIR3   PB_ASM_LANE_PAIR_WITH(PB_ASM_LANE_BRANCH3)
#define PB_ASM_LANE_PAIR2_3 PB_ASM_LANE_PAIR2_WITH(PB_ASM_LANE_BRANCH3)

static inline __attribute__((always_inline)) void pb_popbin_lane_pairs(const uint32_t *d, const uint32_t **wt,
                                                                       pb_residual_t **xp, pb_residual_t *x_end,
                                                                       uint32_t delta2, int two_a_turn, int two_streams,
                                                                       int ternary)
{
    const uint32_t *w = *wt, *dw = d; /* the asm walks dw and steps it back */
    pb_residual_t *x = *xp;
#define PB_ASM_LANE_LOOP(pair_asm)                                                                                     \
    __asm__ volatile("ldr r12, %[delta2]\n\t"                                                                          \
                     "1:\n\t" pair_asm PB_ASM_NEXT                                                                     \
                     : [w] "+r"(w), [x] "+r"(x), [d] "+r"(dw)                                                          \
                     : [x_end] "m"(x_end), [delta2] "m"(delta2)                                                        \
                     : PB_ASM_CLOBBERS_UNIT)
    if (ternary) {
        if (two_streams && two_a_turn)
            PB_ASM_LANE_LOOP(PB_ASM_LANE_PAIR2_3 PB_ASM_LANE_PAIR2_3);
        else if (two_streams)
            PB_ASM_LANE_LOOP(PB_ASM_LANE_PAIR2_3);
        else if (two_a_turn)
            PB_ASM_LANE_LOOP(PB_ASM_LANE_PAIR3 PB_ASM_LANE_PAIR3);
        else
            PB_ASM_LANE_LOOP(PB_ASM_LANE_PAIR3);
    } else if (two_streams && two_a_turn)
        PB_ASM_LANE_LOOP(PB_ASM_LANE_PAIR2 PB_ASM_LANE_PAIR2);
    else if (two_streams)
        PB_ASM_LANE_LOOP(PB_ASM_LANE_PAIR2);
    else if (two_a_turn)
        PB_ASM_LANE_LOOP(PB_ASM_LANE_PAIR PB_ASM_LANE_PAIR);
    else
        PB_ASM_LANE_LOOP(PB_ASM_LANE_PAIR);
#undef PB_ASM_LANE_LOOP
    *wt = w;
    *xp = x;
}

/* One window row of a lane-pair pixel, its three words at r0 and the group's place at r6: at most 16
 * channels, h | ror(h, 8) of each and their derived group a0, a0^a1, a0^a2, a0^a1^a2. */
#define PB_ASM_LANE_DERIVE_ROW                                                                                         \
    "ldmia r0, {r2-r4}\n\t"                                                                                            \
    "orr r2, r2, r2, ror #8\n\t"                                                                                       \
    "orr r3, r3, r3, ror #8\n\t"                                                                                       \
    "orr r4, r4, r4, ror #8\n\t"                                                                                       \
    "eor r3, r2, r3\n\t"                                                                                               \
    "eor r5, r3, r4\n\t"                                                                                               \
    "eor r4, r2, r4\n\t"                                                                                               \
    "stmia r6!, {r2-r5}\n\t"
/* 17 to 32 channels: the group of the words (at r6) and of their ror(a, 16) (48 bytes on). */
#define PB_ASM_LANE_DERIVE_ROW2                                                                                        \
    "ldmia r0, {r2-r4}\n\t"                                                                                            \
    "ror r8, r2, #16\n\t"                                                                                              \
    "ror r9, r3, #16\n\t"                                                                                              \
    "ror r10, r4, #16\n\t"                                                                                             \
    "eor r9, r8, r9\n\t"                                                                                               \
    "eor r12, r9, r10\n\t"                                                                                             \
    "eor r10, r8, r10\n\t"                                                                                             \
    "strd r8, r9, [r6, #48]\n\t"                                                                                       \
    "strd r10, r12, [r6, #56]\n\t"                                                                                     \
    "eor r3, r2, r3\n\t"                                                                                               \
    "eor r5, r3, r4\n\t"                                                                                               \
    "eor r4, r2, r4\n\t"                                                                                               \
    "stmia r6!, {r2-r5}\n\t"

/* One output row of lane pairs, the count of pairs even (two a turn, or four where it is a multiple
 * of 4: half the end tests): per pixel the derived words into d (each window row by one LDM and one
 * STM), then the pairs, which end where the weights end. The pixel loop is here too, its state in
 * memory, because around a per-pixel call gcc would spill and reload its loop state (about twice the
 * instructions of the derivation itself). The state is a local struct that an empty asm pins to the
 * stack, so that every memory operand is sp-relative: the loop leaves no register for a base. */
typedef struct {
    const uint32_t *win;
    uint32_t row_bytes, next_bytes; /* next_bytes: from the window's third row to the next window */
    const uint32_t *weights, *weights_end;
    pb_residual_t *x_row_end;
    uint32_t delta2;
} pb_lane_row_state_t;

/* The pair loop's end test on the weights (the row loop's own ends with x). */
#define PB_ASM_NEXT_W                                                                                                  \
    "ldr r1, %[w_end]\n\t"                                                                                             \
    "cmp %[w], r1\n\t"                                                                                                 \
    "bne 1b\n\t"

#define PB_ASM_LANE_ROW(derive_row, turn_asm)                                                                          \
    __asm__ volatile("2:\n\t"                                                                                          \
                     "ldr r0, %[win]\n\t"                                                                              \
                     "ldr r1, %[row_bytes]\n\t"                                                                        \
                     "mov r6, %[d]\n\t" derive_row "add r0, r0, r1\n\t" derive_row "add r0, r0, r1\n\t" derive_row     \
                     "ldr r1, %[next_bytes]\n\t"                                                                       \
                     "add r0, r0, r1\n\t"                                                                              \
                     "str r0, %[win]\n\t"                                                                              \
                     "ldr %[w], %[weights]\n\t"                                                                        \
                     "ldr r12, %[delta2]\n\t"                                                                          \
                     "1:\n\t" turn_asm PB_ASM_NEXT_W "ldr r1, %[x_row_end]\n\t"                                        \
                     "cmp %[x], r1\n\t"                                                                                \
                     "bne 2b\n\t"                                                                                      \
                     : [w] "=&r"(w), [x] "+r"(x), [win] "+m"(st.win), [d] "+r"(dw)                                     \
                     : [row_bytes] "m"(st.row_bytes), [next_bytes] "m"(st.next_bytes), [weights] "m"(st.weights),      \
                       [w_end] "m"(st.weights_end), [x_row_end] "m"(st.x_row_end), [delta2] "m"(st.delta2)             \
                     : PB_ASM_CLOBBERS_UNIT)

static inline __attribute__((always_inline)) void
pb_popbin_lane_row(uint32_t *d, const uint32_t *win, uint32_t row_bytes, uint32_t step_bytes, const uint32_t *weights,
                   const uint32_t *weights_end, pb_residual_t *x, pb_residual_t *x_row_end, uint32_t delta2,
                   int two_streams, int four_a_turn, int ternary)
{
    const uint32_t *w;
    uint32_t *dw = d; /* the asm walks dw and steps it back */
    pb_lane_row_state_t st = {win, row_bytes, step_bytes - (row_bytes << 1), weights, weights_end, x_row_end, delta2};
    __asm__ volatile("" : "+m"(st)); /* in memory, at a fixed place */
#define PB_ASM_TWO(pair) pair pair
    if (ternary) {
        if (two_streams && four_a_turn)
            PB_ASM_LANE_ROW(PB_ASM_LANE_DERIVE_ROW2, PB_ASM_TWO(PB_ASM_TWO(PB_ASM_LANE_PAIR2_3)));
        else if (two_streams)
            PB_ASM_LANE_ROW(PB_ASM_LANE_DERIVE_ROW2, PB_ASM_TWO(PB_ASM_LANE_PAIR2_3));
        else if (four_a_turn)
            PB_ASM_LANE_ROW(PB_ASM_LANE_DERIVE_ROW, PB_ASM_TWO(PB_ASM_TWO(PB_ASM_LANE_PAIR3)));
        else
            PB_ASM_LANE_ROW(PB_ASM_LANE_DERIVE_ROW, PB_ASM_TWO(PB_ASM_LANE_PAIR3));
    } else if (two_streams && four_a_turn)
        PB_ASM_LANE_ROW(PB_ASM_LANE_DERIVE_ROW2, PB_ASM_TWO(PB_ASM_TWO(PB_ASM_LANE_PAIR2)));
    else if (two_streams)
        PB_ASM_LANE_ROW(PB_ASM_LANE_DERIVE_ROW2, PB_ASM_TWO(PB_ASM_LANE_PAIR2));
    else if (four_a_turn)
        PB_ASM_LANE_ROW(PB_ASM_LANE_DERIVE_ROW, PB_ASM_TWO(PB_ASM_TWO(PB_ASM_LANE_PAIR)));
    else
        PB_ASM_LANE_ROW(PB_ASM_LANE_DERIVE_ROW, PB_ASM_TWO(PB_ASM_LANE_PAIR));
#undef PB_ASM_TWO
}

/* 2 or 4 input words: the units of a channel add up in r12; the even channel's count waits in
 * memory while the odd one's is formed. */
#define PB_ASM_PAIRS_UNITS(channel_asm, branch_pair)                                                                   \
    do {                                                                                                               \
        const uint32_t *w = *wt, *dw = d; /* the asm walks dw and steps it back */                                     \
        pb_residual_t *x = *xp;                                                                                        \
        uint32_t count_even;                                                                                           \
        __asm__ volatile("1:\n\t" channel_asm "str r12, %[even]\n\t" channel_asm "ldr r6, %[even]\n\t"                 \
                         "ldr r0, %[delta2]\n\t" branch_pair("r6", "r12", "r0") PB_ASM_NEXT                            \
                         : [w] "+r"(w), [x] "+r"(x), [even] "=m"(count_even), [d] "+r"(dw)                             \
                         : [x_end] "m"(x_end), [delta2] "m"(delta2)                                                    \
                         : PB_ASM_CLOBBERS_UNIT);                                                                      \
        *wt = w;                                                                                                       \
        *xp = x;                                                                                                       \
    } while (0)

static inline
    __attribute__((always_inline)) void pb_popbin_pairs_w2(const uint32_t *d, const uint32_t **wt, pb_residual_t **xp,
                                                           pb_residual_t *x_end, uint32_t delta2, int ternary)
{
#define PB_ASM_W2 PB_ASM_UNIT PB_ASM_UNIT_COUNT_FIRST("r12") PB_ASM_UNIT PB_ASM_UNIT_COUNT_NEXT PB_ASM_D_RESET("96")
    if (ternary)
        PB_ASM_PAIRS_UNITS(PB_ASM_W2, PB_ASM_BRANCH_PAIR3);
    else
        PB_ASM_PAIRS_UNITS(PB_ASM_W2, PB_ASM_BRANCH_PAIR);
#undef PB_ASM_W2
}

static inline __attribute__((always_inline)) void pb_popbin_pairs_w4(const uint32_t *d, const uint32_t **wt,
                                                                     pb_residual_t **xp, pb_residual_t *x_end,
                                                                     uint32_t delta2, int ternary)
{
#define PB_ASM_W4                                                                                                      \
    PB_ASM_UNIT PB_ASM_UNIT_COUNT_FIRST("r12") PB_ASM_UNIT PB_ASM_UNIT_COUNT_NEXT PB_ASM_UNIT PB_ASM_UNIT_COUNT_NEXT   \
        PB_ASM_UNIT PB_ASM_UNIT_COUNT_NEXT PB_ASM_D_RESET("192")
    if (ternary)
        PB_ASM_PAIRS_UNITS(PB_ASM_W4, PB_ASM_BRANCH_PAIR3);
    else
        PB_ASM_PAIRS_UNITS(PB_ASM_W4, PB_ASM_BRANCH_PAIR);
#undef PB_ASM_W4
}

#endif
