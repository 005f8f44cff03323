#ifndef PB_BINCONV_TABLE_H
#define PB_BINCONV_TABLE_H

#include "pb_kernels.h"
#include "pb_popcount.h"

/* The table path of the popbin and ternary convs (--kernel tables): windows of at most 32 input channels
 * (one word a pixel) and 4, 8, 16, 32 or 64 output channels. Instead of XOR and popcount, each nibble of each
 * window word indexes a table of the popcounts that nibble gives every output channel (the Four Russians'
 * method). The nibbles come in groups of four, whose counts a byte holds (at most 9 x 16 = 144): group 0 is bits
 * 0-3, 4-7, 16-19, 20-23 of the fast-packed word (input channels 0-15: pb_rsign_pack puts channel 2k at bit k and
 * 2k + 1 at bit 16 + k), group 1 the same bits of the word shifted right by 8 (channels 16-31, more than 16 input
 * channels only). Per pixel and group, 36 lookups each add Cout byte counts; the branch adds the groups' bytes as
 * int16 halves. The exporter writes the table (codegen/pack.py table_words) at `p->table`:
 *   [groups][9 taps (ky, kx)][16 nibble values][4 nibbles j][Cout / 4 words], then per pair of output channels
 *   the branch's threshold words (int16 pairs, even channel low: plus, then zero for a ternary block).
 * Word m of an entry holds the counts of channels 4m, 4m + 2, 4m + 1, 4m + 3 in bytes 0-3: UXTB16 of it is the
 * pair (4m, 4m + 1) as int16 halves, UXTB16 of it rotated by 8 the pair (4m + 2, 4m + 3), which the branch
 * compares with one SSUB16 as the lane pairs do. The four nibbles of a value sit side by side so that one
 * address serves them with immediate offsets. The table costs 576 bytes of flash per output channel and group
 * (9,216 B at 16 -> 16, 36,864 B at 32 -> 32). */

#if PB_KERNEL_FAST      /* the reference build has no table path */
#define PB_TABLE_TAPS 9 /* TABLE_TAPS in codegen/pack.py */

#define PB_TABLE_MAX_IN_CHANNELS 32 /* TABLE_MAX_IN_CHANNELS: one word a pixel, two groups */

/* Whether a shape takes the table path when its export has a table (the exporter's rule: takes_table). */
PB_INLINE int pb_table_shape(const pb_binconv_params_t *p)
{
    const int c = p->out_channels;
    return p->table && p->in_channels <= PB_TABLE_MAX_IN_CHANNELS &&
           (c == 4 || c == 8 || c == 16 || c == 32 || c == 64);
}

/* acc[m] += the entries of the four nibbles of h; `tap` points at the tap's 16 values. */
PB_INLINE void pb_table_tap(uint32_t *acc, const uint32_t *tap, uint32_t h, const int shift)
{
    const int nw = 1 << shift;
    const uint32_t *e0 = tap + ((h & 15u) << (shift + 2));
    const uint32_t *e1 = tap + (((h >> 4) & 15u) << (shift + 2)) + nw;
    const uint32_t *e2 = tap + (((h >> 16) & 15u) << (shift + 2)) + 2 * nw;
    const uint32_t *e3 = tap + (((h >> 20) & 15u) << (shift + 2)) + 3 * nw;
    for (int m = 0; m < nw; m++)
        acc[m] += e0[m] + e1[m] + e2[m] + e3[m];
}

/* The byte counts of one group (`table`: its part of the table) of the window at `win` into acc[0 .. Cout / 4):
 * the C path. Group 1 reads the window words shifted right by 8. */
PB_INLINE void pb_table_counts(uint32_t *acc, const uint32_t *table, const uint32_t *win, uint32_t row, const int shift,
                               const int group)
{
    const int nw = 1 << shift, tap = 64 << shift, down = group << 3;
    for (int m = 0; m < nw; m++)
        acc[m] = 0;
    for (int ky = 0; ky < 3; ky++, win += row, table += 3 * tap) {
        pb_table_tap(acc, table, win[0] >> down, shift);
        pb_table_tap(acc, table + tap, win[1] >> down, shift);
        pb_table_tap(acc, table + 2 * tap, win[2] >> down, shift);
    }
}

#if PB_KERNEL_FAST && PB_RESIDUAL_BITS == 16 && defined(__ARM_FEATURE_SIMD32) && defined(__thumb2__)
/* The same for 16 or 32 output channels in Thumb-2: per nibble an AND that leaves the value at a shift of its
 * entry's offset, one ADD (with that shift) for the address, LDRDs and one ADD per count word; per tap one load
 * of the window word and one step of the table pointer. gcc's own version spends a UBFX and an ADD on the index
 * and reloads its pointers (about 1.6 times the instructions). An entry is 16 << S bytes (4 nibbles x Cout / 4
 * words, Cout = 4 << S); value v starts at v << (S + 4), nibble j at j * (4 << S) within it. */
#define PB_TBL_STR2(x)   #x
#define PB_TBL_STR(x)    PB_TBL_STR2(x)
#define PB_TBL_ADD(a, r) "add %[" #a "], %[" #a "], " #r "\n\t"
#define PB_TBL_SET(a, r) "mov %[" #a "], " #r "\n\t"
/* The count words of one entry at r9 + off onto a0.. (op: PB_TBL_SET for the first entry, else PB_TBL_ADD). */
#define PB_TBL_W4(off, op)                                                                                             \
    "ldrd r0, r1, [r9, #" off "]\n\t"                                                                                  \
    "ldrd r2, r3, [r9, #" off " + 8]\n\t" op(a0, r0) op(a1, r1) op(a2, r2) op(a3, r3)
#define PB_TBL_W8(off, op)                                                                                             \
    "ldrd r0, r1, [r9, #" off "]\n\t" op(a0, r0) op(a1, r1) "ldrd r0, r1, [r9, #" off " + 8]\n\t" op(a2, r0)           \
        op(a3, r1) "ldrd r0, r1, [r9, #" off " + 16]\n\t" op(a4, r0) op(a5, r1) "ldrd r0, r1, [r9, #" off              \
                                                                                " + 24]\n\t" op(a6, r0) op(a7, r1)
/* Nibble j's entry: r9 = table + the value's offset (the AND leaves the value at bit `mask`'s shift, the ADD's
 * shift moves it to S + 4), then its words at j's place. */
#define PB_TBL_NIBBLE(W, mask, shift_op, off, op)                                                                      \
    "and r9, r10, #" mask "\n\t"                                                                                       \
    "add r9, r12, r9" shift_op "\n\t" W(off, op)
/* One tap at byte offset `at` of the row pointer lr (`down`: the group's shift of the word): nibble 0 (bits 0-3)
 * lsl S + 4, nibble 1 (4-7) lsl S, nibble 2 (16-19) lsr 12 - S, nibble 3 (20-23) lsr 16 - S; `off0` is the
 * half of a 64-channel entry. */
#define PB_TBL_TAP(W, at, down, S, off0, op0)                                                                          \
    "ldr r10, [lr, #" at "]\n\t" down PB_TBL_NIBBLE(W, "0xF", ", lsl #" PB_TBL_STR(S + 4), off0, op0)                  \
        PB_TBL_NIBBLE(W, "0xF0", PB_TBL_LSL(S), off0 " + (4 << " PB_TBL_STR(S) ")", PB_TBL_ADD)                        \
            PB_TBL_NIBBLE(W, "0xF0000", ", lsr #" PB_TBL_STR(12 - S), off0 " + (8 << " PB_TBL_STR(S) ")", PB_TBL_ADD)  \
                PB_TBL_NIBBLE(W, "0xF00000", ", lsr #" PB_TBL_STR(16 - S), off0 " + (12 << " PB_TBL_STR(S) ")",        \
                              PB_TBL_ADD) "add r12, r12, #(256 << " PB_TBL_STR(S) ")\n\t"
#define PB_TBL_LSL(S) ", lsl #" PB_TBL_STR(S)
#define PB_TBL_ROW(W, down, S, off0, op0)                                                                              \
    PB_TBL_TAP(W, "0", down, S, off0, op0)                                                                             \
    PB_TBL_TAP(W, "4", down, S, off0, PB_TBL_ADD) PB_TBL_TAP(W, "8", down, S, off0, PB_TBL_ADD)
#define PB_TBL_NEXT_ROW                                                                                                \
    "ldr r9, %[rb]\n\t"                                                                                                \
    "add lr, lr, r9\n\t"
#define PB_TBL_WINDOW(W, down, S, off0)                                                                                \
    PB_TBL_ROW(W, down, S, off0, PB_TBL_SET)                                                                           \
    PB_TBL_NEXT_ROW PB_TBL_ROW(W, down, S, off0, PB_TBL_ADD)                                                           \
    PB_TBL_NEXT_ROW PB_TBL_ROW(W, down, S, off0, PB_TBL_ADD)
#define PB_TBL_GROUP0 ""
#define PB_TBL_GROUP1 "lsr r10, r10, #8\n\t"

/* Where the 32-channel window's operands wait: with eight count registers none is left for them. */
typedef struct {
    const uint32_t *win, *table;
    uint32_t row_bytes;
} pb_table_window_t;

#define PB_TBL_COUNT4(down)                                                                                            \
    __asm__("mov lr, %[win]\n\t"                                                                                       \
            "mov r12, %[tbl]\n\t" PB_TBL_WINDOW(PB_TBL_W4, down, 2, "0")                                               \
            : [a0] "=&r"(acc[0]), [a1] "=&r"(acc[1]), [a2] "=&r"(acc[2]), [a3] "=&r"(acc[3])                           \
            : [win] "r"(win), [tbl] "r"(table), [rb] "m"(row_bytes)                                                    \
            : "r0", "r1", "r2", "r3", "r9", "r10", "r12", "lr", "memory")
#define PB_TBL_COUNT8(down, S, off0)                                                                                   \
    __asm__("ldr lr, %[win]\n\t"                                                                                       \
            "ldr r12, %[tbl]\n\t" PB_TBL_WINDOW(PB_TBL_W8, down, S, off0)                                              \
            : [a0] "=&r"(acc[0]), [a1] "=&r"(acc[1]), [a2] "=&r"(acc[2]), [a3] "=&r"(acc[3]), [a4] "=&r"(acc[4]),      \
              [a5] "=&r"(acc[5]), [a6] "=&r"(acc[6]), [a7] "=&r"(acc[7])                                               \
            : [win] "m"(st.win), [tbl] "m"(st.table), [rb] "m"(st.row_bytes)                                           \
            : "r0", "r1", "r9", "r10", "r12", "lr", "memory")

/* acc[0 .. 8) (4 for 16 output channels) = count words 8 half .. 8 half + 7 of one group (`table`: its part of
 * the table) of the window at `win`: 16 (S = 2), 32 (S = 3) or 64 (S = 4, two halves) output channels. */
PB_INLINE void pb_table_counts_arm(uint32_t *acc, const uint32_t *table, const uint32_t *win, uint32_t row_bytes,
                                   const int shift, const int half, const int group)
{
    if (shift == 2) {
        if (group)
            PB_TBL_COUNT4(PB_TBL_GROUP1);
        else
            PB_TBL_COUNT4(PB_TBL_GROUP0);
        return;
    }
    pb_table_window_t st = {win, table, row_bytes};
    __asm__ volatile("" : "+m"(st)); /* in memory, at a fixed place */
    if (shift == 3 && group)
        PB_TBL_COUNT8(PB_TBL_GROUP1, 3, "0");
    else if (shift == 3)
        PB_TBL_COUNT8(PB_TBL_GROUP0, 3, "0");
    else if (half && group)
        PB_TBL_COUNT8(PB_TBL_GROUP1, 4, "32");
    else if (half)
        PB_TBL_COUNT8(PB_TBL_GROUP0, 4, "32");
    else if (group)
        PB_TBL_COUNT8(PB_TBL_GROUP1, 4, "0");
    else
        PB_TBL_COUNT8(PB_TBL_GROUP0, 4, "0");
}

/* The branch of the 16 channels whose counts are in acc[0..3], their thresholds at *t, residual at *x (both
 * advanced past them): per pair UXTB16 of its counts, then as the lane pairs (pb_popbin_channels_arm.h's
 * PB_ASM_LANE_BRANCH): SSUB16 of thresholds and counts sets GE where count <= threshold, SEL takes x + delta
 * or x - delta per half; ternary: the zero thresholds first keep x where plus < count <= zero. */
#define PB_TBL_PAIR(a, rot) "uxtb16 r0, " a rot "\n\t" PB_TBL_PAIR_TAIL
#define PB_TBL_PAIR_TAIL                                                                                               \
    "ldr r1, [%[t]], #4\n\t"                                                                                           \
    "ldr r2, [%[x]]\n\t"                                                                                               \
    "sadd16 r3, r2, %[d2]\n\t"                                                                                         \
    "ssub16 r9, r2, %[d2]\n\t"                                                                                         \
    "ssub16 r1, r1, r0\n\t"                                                                                            \
    "sel r2, r3, r9\n\t"                                                                                               \
    "str r2, [%[x]], #4\n\t"
#define PB_TBL_PAIR3(a, rot) "uxtb16 r0, " a rot "\n\t" PB_TBL_PAIR3_TAIL
#define PB_TBL_PAIR3_TAIL                                                                                              \
    "ldrd r1, r10, [%[t]], #8\n\t"                                                                                     \
    "ldr r2, [%[x]]\n\t"                                                                                               \
    "sadd16 r3, r2, %[d2]\n\t"                                                                                         \
    "ssub16 r9, r2, %[d2]\n\t"                                                                                         \
    "ssub16 r10, r10, r0\n\t"                                                                                          \
    "sel r9, r2, r9\n\t"                                                                                               \
    "ssub16 r1, r1, r0\n\t"                                                                                            \
    "sel r2, r3, r9\n\t"                                                                                               \
    "str r2, [%[x]], #4\n\t"
#define PB_TBL_BRANCH16(pair)                                                                                          \
    __asm__ volatile(pair("%[a0]", "") pair("%[a0]", ", ror #8") pair("%[a1]", "") pair("%[a1]", ", ror #8")           \
                         pair("%[a2]", "") pair("%[a2]", ", ror #8") pair("%[a3]", "") pair("%[a3]", ", ror #8")       \
                     : [x] "+r"(*x), [t] "+r"(*t)                                                                      \
                     : [a0] "r"(acc[0]), [a1] "r"(acc[1]), [a2] "r"(acc[2]), [a3] "r"(acc[3]), [d2] "r"(delta2)        \
                     : "r0", "r1", "r2", "r3", "r9", "r10", "cc", "memory")

PB_INLINE void pb_table_branch16_arm(pb_residual_t **x, const uint32_t **t, const uint32_t *acc, uint32_t delta2,
                                     const int ternary)
{
    if (ternary)
        PB_TBL_BRANCH16(PB_TBL_PAIR3);
    else
        PB_TBL_BRANCH16(PB_TBL_PAIR);
}

/* Two groups: each pair's counts are the halves of UXTB16 of group 0's word plus UXTAB16 of group 1's; eight
 * channels at a time (count words acc[0..1] and accb[0..1]), which leaves registers for the branch. */
#define PB_TBL_SUM2(a, b, rot)                                                                                         \
    "uxtb16 r0, " a rot "\n\t"                                                                                         \
    "uxtab16 r0, r0, " b rot "\n\t"
#define PB_TBL_PAIR_2(a, b, rot)  PB_TBL_SUM2(a, b, rot) PB_TBL_PAIR_TAIL
#define PB_TBL_PAIR3_2(a, b, rot) PB_TBL_SUM2(a, b, rot) PB_TBL_PAIR3_TAIL
#define PB_TBL_BRANCH8_2(pair)                                                                                         \
    __asm__ volatile(pair("%[a0]", "%[b0]", "") pair("%[a0]", "%[b0]", ", ror #8") pair("%[a1]", "%[b1]", "")          \
                         pair("%[a1]", "%[b1]", ", ror #8")                                                            \
                     : [x] "+r"(*x), [t] "+r"(*t)                                                                      \
                     : [a0] "r"(acc[0]), [a1] "r"(acc[1]), [b0] "r"(accb[0]), [b1] "r"(accb[1]), [d2] "r"(delta2)      \
                     : "r0", "r1", "r2", "r3", "r9", "r10", "cc", "memory")

PB_INLINE void pb_table_branch8x2_arm(pb_residual_t **x, const uint32_t **t, const uint32_t *acc, const uint32_t *accb,
                                      uint32_t delta2, const int ternary)
{
    if (ternary)
        PB_TBL_BRANCH8_2(PB_TBL_PAIR3_2);
    else
        PB_TBL_BRANCH8_2(PB_TBL_PAIR_2);
}

#endif

#endif /* PB_KERNEL_FAST */

#endif
