/* The fast popbin conv's loop over the output channels of one pixel (and, for at most 16 input
 * channels, over the pixels of an output row), in Thumb-2 assembly for ARMv7E-M (Cortex-M4/M7)
 * with an int16 residual. It computes what pb_binconv_walk.h's C loop computes, on the same
 * layout, which the host tests check. It exists because gcc splits the loads into single LDRs,
 * spills the loop's pointers around the popcount and rebuilds constants: measured on the shipped
 * model, these loops took the binary layers from 8.56 to 7.76 instructions per 32-bit word, and
 * the channel pairs and the row loop below to 6.92. Here the weights stream through LDM, the
 * derived activation words through LDRD, every register is named (gcc places the pointers in
 * those left), and the branch of two channels is one 16-bit SIMD step: SSUB16 of the threshold
 * pair and the count pair sets the GE flags where count <= threshold, SEL then takes x + delta
 * or x - delta per half.
 *
 * Pairs only: an odd last channel is left to the C loop. */
#ifndef PB_POPBIN_CHANNELS_ARM_H
#define PB_POPBIN_CHANNELS_ARM_H

#include "pb_kernels.h"

/* One carry-save group (pb_csa3): four weight words by LDM, the activation side at byte offset
 * `off` of d by two LDRDs. Leaves the sum in r3 and the carry in r0. */
#define PB_ASM_CSA3(off)                                                                           \
    "ldmia %[w]!, {r0-r3}\n\t"                                                                     \
    "ldrd r4, r5, [%[d], #(" off ")]\n\t"                                                          \
    "eor r0, r0, r4\n\t"      /* x = a0 ^ w0 */                                                    \
    "eor r1, r1, r5\n\t"      /* x ^ y */                                                          \
    "ldrd r4, r5, [%[d], #(" off " + 8)]\n\t"                                                      \
    "eor r2, r2, r4\n\t"      /* x ^ z */                                                          \
    "eor r3, r3, r5\n\t"      /* sum */                                                            \
    "and r1, r1, r2\n\t"                                                                           \
    "eor r0, r0, r1\n\t"      /* carry = x ^ ((x^y) & (x^z)) */

/* pb_pairs of r3 into `ones` and of r0 into `twos` (groups 0 and 1 of a unit). */
#define PB_ASM_PAIRS(ones, twos)                                                                   \
    "and r1, r3, #0xAAAAAAAA\n\t"                                                                  \
    "sub " ones ", r3, r1, lsr #1\n\t"                                                             \
    "and r1, r0, #0xAAAAAAAA\n\t"                                                                  \
    "sub " twos ", r0, r1, lsr #1\n\t"

/* pb_pairs_add of r3 into (r6, r8) and of r0 into (r9, r10) (group 2 of a unit). */
#define PB_ASM_PAIRS_ADD                                                                           \
    "and r1, r3, #0x55555555\n\t"                                                                  \
    "add r6, r6, r1\n\t"                                                                           \
    "and r1, r3, #0xAAAAAAAA\n\t"                                                                  \
    "add r8, r8, r1, lsr #1\n\t"                                                                   \
    "and r1, r0, #0x55555555\n\t"                                                                  \
    "add r9, r9, r1\n\t"                                                                           \
    "and r1, r0, #0xAAAAAAAA\n\t"                                                                  \
    "add r10, r10, r1, lsr #1\n\t"

/* pb_nibbles of `a` plus pb_nibbles of `b`, into a; r1 is scratch. */
#define PB_ASM_NIBBLES2(a, b)                                                                      \
    "and r1, " a ", #0xCCCCCCCC\n\t"                                                               \
    "and " a ", " a ", #0x33333333\n\t"                                                            \
    "add " a ", " a ", r1, lsr #2\n\t"                                                             \
    "and r1, " b ", #0xCCCCCCCC\n\t"                                                               \
    "and " b ", " b ", #0x33333333\n\t"                                                            \
    "add " b ", " b ", r1, lsr #2\n\t"                                                             \
    "add " a ", " a ", " b "\n\t"

/* pb_nibbles_to_bytes of `a`; r1 is scratch. */
#define PB_ASM_BYTES(a)                                                                            \
    "and r1, " a ", #0xF0F0F0F0\n\t"                                                               \
    "and " a ", " a ", #0x0F0F0F0F\n\t"                                                            \
    "add " a ", " a ", r1, lsr #4\n\t"

/* One unit of three groups (nine window words) at byte offset `off` of d: byte lanes of ones in
 * r6, of twos in r9. */
#define PB_ASM_UNIT(off)                                                                           \
    PB_ASM_CSA3(off) PB_ASM_PAIRS("r6", "r9")                                                     \
    PB_ASM_CSA3(off " + 16") PB_ASM_PAIRS("r8", "r10")                                            \
    PB_ASM_CSA3(off " + 32") PB_ASM_PAIRS_ADD                                                     \
    PB_ASM_NIBBLES2("r6", "r8") PB_ASM_NIBBLES2("r9", "r10")                                      \
    PB_ASM_BYTES("r6") PB_ASM_BYTES("r9")

/* The unit's count, ones + 2 twos summed over the bytes, into `dst` (the first unit) or onto
 * r12. Without a zero register: USAD8 of (ones + 3 twos) against twos is that sum. */
#define PB_ASM_UNIT_SUM                                                                            \
    "add r6, r6, r9, lsl #1\n\t"                                                                   \
    "add r6, r6, r9\n\t"
#define PB_ASM_UNIT_COUNT_FIRST(dst) PB_ASM_UNIT_SUM "usad8 " dst ", r6, r9\n\t"
#define PB_ASM_UNIT_COUNT_NEXT PB_ASM_UNIT_SUM "usada8 r12, r6, r9, r12\n\t"

/* The branch of a channel pair, counts in registers `a` (even channel) and `b`, delta in both
 * halves of `delta2`: the pair's threshold word follows its weights. */
#define PB_ASM_BRANCH_PAIR(a, b, delta2)                                                           \
    "ldr r1, [%[w]], #4\n\t"                                                                       \
    "pkhbt r3, " a ", " b ", lsl #16\n\t"                                                          \
    "ldr r2, [%[x]]\n\t"                                                                           \
    "sadd16 r4, r2, " delta2 "\n\t"                                                                \
    "ssub16 r5, r2, " delta2 "\n\t"                                                                \
    "ssub16 r1, r1, r3\n\t"                                                                        \
    "sel r2, r4, r5\n\t"                                                                           \
    "str r2, [%[x]], #4\n\t"

/* The loop's end test, the end in memory. */
#define PB_ASM_NEXT                                                                                \
    "ldr r1, %[x_end]\n\t"                                                                         \
    "cmp %[x], r1\n\t"                                                                             \
    "bne 1b\n\t"

/* At most 16 input channels, two pixels per word (pb_count_halves_bytes): 6 weight words; the
 * count goes to `dst`. */
#define PB_ASM_HALVES(dst)                                                                         \
    "ldmia %[w]!, {r0-r3}\n\t"                                                                     \
    "ldmia %[d], {r4, r5, r6, r12}\n\t"                                                            \
    "eor r0, r0, r4\n\t"                                                                           \
    "eor r1, r1, r5\n\t"                                                                           \
    "eor r2, r2, r6\n\t"                                                                           \
    "and r1, r1, r2\n\t"                                                                           \
    "eor r0, r0, r1\n\t"          /* carry c */                                                    \
    "eor r3, r3, r12\n\t"         /* sum s */                                                      \
    "ldrd r1, r2, [%[w]], #8\n\t"                                                                  \
    "ldrd r4, r5, [%[d], #16]\n\t"                                                                 \
    "eor r1, r1, r4\n\t"          /* x3 */                                                         \
    "eor r2, r2, r5\n\t"          /* sum s2 = x3 ^ x4 */                                           \
    "bic r1, r1, r2\n\t"          /* carry c2 = x3 & x4 */                                         \
    /* ones: pairs(s) + even bits of s2 (r3), odd bits of s2 + c2's in place (r5); twos (r0) */ \
    "and r4, r3, #0xAAAAAAAA\n\t"                                                                  \
    "sub r3, r3, r4, lsr #1\n\t"                                                                   \
    "and r5, r1, #0xAAAAAAAA\n\t"                                                                  \
    "and r4, r0, #0xAAAAAAAA\n\t"                                                                  \
    "sub r0, r0, r4, lsr #1\n\t"                                                                   \
    "and r4, r2, #0x55555555\n\t"                                                                  \
    "add r3, r3, r4\n\t"                                                                           \
    "and r4, r2, #0xAAAAAAAA\n\t"                                                                  \
    "add r5, r5, r4, lsr #1\n\t"                                                                   \
    "and r4, r1, #0x55555555\n\t"                                                                  \
    "add r0, r0, r4\n\t"                                                                           \
    PB_ASM_NIBBLES2("r3", "r5")                                                                   \
    "and r4, r0, #0xCCCCCCCC\n\t"                                                                  \
    "and r0, r0, #0x33333333\n\t"                                                                  \
    "add r0, r0, r4, lsr #2\n\t"                                                                   \
    PB_ASM_BYTES("r3")                                                                            \
    /* twos: at most 6 a nibble, so one add and a mask make the bytes */                         \
    "add r0, r0, r0, lsr #4\n\t"                                                                   \
    "and r0, r0, #0x0F0F0F0F\n\t"                                                                  \
    "add r3, r3, r0, lsl #1\n\t"                                                                   \
    "usad8 " dst ", r3, %[zero]\n\t"

/* The halves' pair, and two pairs a turn where the count of pairs is even: one end test less. */
#define PB_ASM_HALVES_PAIR PB_ASM_HALVES("r8") PB_ASM_HALVES("r3") PB_ASM_BRANCH_PAIR("r8", "r3", "%[delta2]")

static inline __attribute__((always_inline)) void pb_popbin_pairs_halves(const uint32_t *d, const uint32_t **wt,
                                                                         pb_residual_t **xp, pb_residual_t *x_end,
                                                                         uint32_t delta2, int two_a_turn) {
    const uint32_t *w = *wt, zero = 0;
    pb_residual_t *x = *xp;
    if (two_a_turn)
        __asm__ volatile("1:\n\t" PB_ASM_HALVES_PAIR PB_ASM_HALVES_PAIR PB_ASM_NEXT
                         : [w] "+r"(w), [x] "+r"(x)
                         : [d] "r"(d), [x_end] "m"(x_end), [delta2] "r"(delta2), [zero] "r"(zero)
                         : "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r12", "cc", "memory");
    else
        __asm__ volatile("1:\n\t" PB_ASM_HALVES_PAIR PB_ASM_NEXT
                         : [w] "+r"(w), [x] "+r"(x)
                         : [d] "r"(d), [x_end] "m"(x_end), [delta2] "r"(delta2), [zero] "r"(zero)
                         : "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r12", "cc", "memory");
    *wt = w;
    *xp = x;
}

#define PB_ASM_CLOBBERS_UNIT "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r9", "r10", "r12", "cc", "memory"

/* One input word (nine window words): one unit per channel, counts in r12 and r6; two pairs a
 * turn where the count of pairs is even. */
#define PB_ASM_W1_PAIR                                                                             \
    PB_ASM_UNIT("0") PB_ASM_UNIT_COUNT_FIRST("r12") PB_ASM_UNIT("0") PB_ASM_UNIT_COUNT_FIRST("r6")   \
    "ldr r0, %[delta2]\n\t" PB_ASM_BRANCH_PAIR("r12", "r6", "r0")

static inline __attribute__((always_inline)) void pb_popbin_pairs_w1(const uint32_t *d, const uint32_t **wt,
                                                                     pb_residual_t **xp, pb_residual_t *x_end,
                                                                     uint32_t delta2, int two_a_turn) {
    const uint32_t *w = *wt;
    pb_residual_t *x = *xp;
    if (two_a_turn)
        __asm__ volatile("1:\n\t" PB_ASM_W1_PAIR PB_ASM_W1_PAIR PB_ASM_NEXT
                         : [w] "+r"(w), [x] "+r"(x)
                         : [d] "r"(d), [x_end] "m"(x_end), [delta2] "m"(delta2)
                         : PB_ASM_CLOBBERS_UNIT);
    else
        __asm__ volatile("1:\n\t" PB_ASM_W1_PAIR PB_ASM_NEXT
                         : [w] "+r"(w), [x] "+r"(x)
                         : [d] "r"(d), [x_end] "m"(x_end), [delta2] "m"(delta2)
                         : PB_ASM_CLOBBERS_UNIT);
    *wt = w;
    *xp = x;
}

/* 2 or 4 input words: the units of a channel add up in r12; the even channel's count waits in
 * memory while the odd one's is formed. */
#define PB_ASM_PAIRS_UNITS(channel_asm)                                                            \
    do {                                                                                          \
        const uint32_t *w = *wt;                                                                  \
        pb_residual_t *x = *xp;                                                                   \
        uint32_t count_even;                                                                      \
        __asm__ volatile("1:\n\t" channel_asm "str r12, %[even]\n\t" channel_asm                   \
                         "ldr r6, %[even]\n\t"                                                     \
                         "ldr r0, %[delta2]\n\t" PB_ASM_BRANCH_PAIR("r6", "r12", "r0") PB_ASM_NEXT  \
                         : [w] "+r"(w), [x] "+r"(x), [even] "=m"(count_even)                      \
                         : [d] "r"(d), [x_end] "m"(x_end), [delta2] "m"(delta2)                  \
                         : PB_ASM_CLOBBERS_UNIT);                                                 \
        *wt = w;                                                                                  \
        *xp = x;                                                                                  \
    } while (0)

static inline __attribute__((always_inline)) void pb_popbin_pairs_w2(const uint32_t *d, const uint32_t **wt,
                                                                     pb_residual_t **xp, pb_residual_t *x_end,
                                                                     uint32_t delta2) {
    PB_ASM_PAIRS_UNITS(PB_ASM_UNIT("0") PB_ASM_UNIT_COUNT_FIRST("r12") PB_ASM_UNIT("48") PB_ASM_UNIT_COUNT_NEXT);
}

static inline __attribute__((always_inline)) void pb_popbin_pairs_w4(const uint32_t *d, const uint32_t **wt,
                                                                     pb_residual_t **xp, pb_residual_t *x_end,
                                                                     uint32_t delta2) {
    PB_ASM_PAIRS_UNITS(PB_ASM_UNIT("0") PB_ASM_UNIT_COUNT_FIRST("r12") PB_ASM_UNIT("48") PB_ASM_UNIT_COUNT_NEXT
                       PB_ASM_UNIT("96") PB_ASM_UNIT_COUNT_NEXT PB_ASM_UNIT("144") PB_ASM_UNIT_COUNT_NEXT);
}

/* One output row at most 16 input channels, the output channels a multiple of 4: per pixel the
 * derived words (pb_derive_halves) into d, then the channel pairs two a turn. The pixel loop is
 * here too, its state in memory, because around a per-pixel call gcc would spill and reload its
 * loop state (about twice the instructions of the derivation itself). */
static inline __attribute__((always_inline)) void pb_popbin_row_halves(uint32_t *d, const uint32_t *win,
                                                                       uint32_t row_bytes, uint32_t step_bytes,
                                                                       const uint32_t *weights, pb_residual_t *x,
                                                                       pb_residual_t *x_row_end, uint32_t chan_bytes,
                                                                       uint32_t delta2) {
    const uint32_t zero = 0;
    const uint32_t *w;
    pb_residual_t *x_end;
    __asm__ volatile(
        "2:\n\t"
        "ldr r0, %[win]\n\t"
        "ldr r1, %[row_bytes]\n\t"
        "ldrd r2, r3, [r0]\n\t"          /* h0, h1 */
        "ldr r4, [r0, #8]\n\t"           /* h2 */
        "add r6, r0, r1\n\t"
        "ldrd r5, r12, [r6]\n\t"         /* h3, h4 */
        "orr r2, r2, r3, lsl #8\n\t"     /* A0 */
        "orr r4, r4, r5, lsl #8\n\t"     /* A1 */
        "ldr r5, [r6, #8]\n\t"           /* h5 */
        "orr r12, r12, r5, lsl #8\n\t"   /* A2 */
        "eor r3, r2, r4\n\t"
        "eor r5, r2, r12\n\t"
        "eor r12, r3, r12\n\t"
        "stmia %[d], {r2, r3, r5, r12}\n\t" /* A0, A0^A1, A0^A2, A0^A1^A2 */
        "add r6, r6, r1\n\t"
        "ldrd r2, r3, [r6]\n\t"          /* h6, h7 */
        "ldr r4, [r6, #8]\n\t"           /* h8 */
        "orr r2, r2, r3, lsl #8\n\t"     /* A3 */
        "eor r3, r2, r4\n\t"
        "strd r2, r3, [%[d], #16]\n\t"   /* A3, A3^A4 */
        "ldr r1, %[step_bytes]\n\t"
        "add r0, r0, r1\n\t"
        "str r0, %[win]\n\t"
        "ldr %[w], %[weights]\n\t"
        "ldr r1, %[chan_bytes]\n\t"
        "add r1, %[x], r1\n\t"
        "str r1, %[x_end]\n\t"
        "1:\n\t" PB_ASM_HALVES_PAIR PB_ASM_HALVES_PAIR PB_ASM_NEXT
        "ldr r1, %[x_row_end]\n\t"
        "cmp %[x], r1\n\t"
        "bne 2b\n\t"
        : [w] "=&r"(w), [x] "+r"(x), [win] "+m"(win), [x_end] "=m"(x_end)
        : [d] "r"(d), [row_bytes] "m"(row_bytes), [step_bytes] "m"(step_bytes), [weights] "m"(weights),
          [chan_bytes] "m"(chan_bytes), [x_row_end] "m"(x_row_end), [delta2] "r"(delta2), [zero] "r"(zero)
        : "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r12", "cc", "memory");
}

#endif
