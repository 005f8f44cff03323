#ifndef PB_BINCONV_SLICE_H
#define PB_BINCONV_SLICE_H

#include "pb_kernels.h"
#include "pb_popcount.h"

/* The slice path of the popbin and ternary convs (--kernel slices): windows of whole words (input channels a
 * multiple of 32, more than 32) and output channels a multiple of 32. The counts of 32 output channels are formed
 * together, bit-sliced: lane o of each word belongs to output channel o of the slice. Each activation word is read
 * as 11 groups of bits (10 of three, bits 3g..3g + 2, and bits 30-31); the value of a group indexes a table entry
 * that holds, for the 32 channels, the sum and the carry of the group's three XORs (a carry-save add done by the
 * exporter). A Harley-Seal tree adds the entries up into planes of the count (bit k of lane o: bit k of channel
 * o's popcount), and a bit-sliced compare with the threshold planes gives the 32 branch decisions at once. Per
 * group: one extract, one address, one LDRD, and about ten ALU instructions of the tree for 96 XNOR bits. The
 * exporter writes the table (codegen/pack.py slice_table_words) at `p->table`:
 *   [Cout / 32 slices][9 taps (ky, kx)][in_words][11 groups][8 values][sum, carry],
 * then per slice PB_SLICE_PLANES threshold planes: bit k of lane o is bit k of (plus threshold of o) + 1, and for a
 * ternary block the same of the zero thresholds. The table costs 704 bytes of flash per input word, tap and slice
 * (25,344 B of entries at 64 -> 64, 101,376 B at 128 -> 128; docs/performance.md "The slice path"). Group 10
 * uses 4 of its 8 values; the other 4 stay zero so that every group has the same stride. */

#if PB_KERNEL_FAST
#define PB_SLICE_GROUPS       11 /* SLICE_GROUPS in codegen/pack.py: 10 groups of three bits, one of two */
#define PB_SLICE_GROUP_WORDS  16 /* 8 values x (sum, carry) */
#define PB_SLICE_WORD_WORDS   (PB_SLICE_GROUPS * PB_SLICE_GROUP_WORDS)
#define PB_SLICE_PLANES       11 /* SLICE_PLANES: counts and thresholds + 1 below 2^11 */
#define PB_SLICE_MAX_IN_WORDS 7  /* 9 x 32 x 7 + 1 < 2^11 */

/* Whether a shape takes the slice path when its export has a table (the exporter's rule: takes_slice_table). */
PB_INLINE int pb_slice_shape(const pb_binconv_params_t *p)
{
    return p->table && p->in_channels > 32 && !(p->in_channels & 31) && p->in_words <= PB_SLICE_MAX_IN_WORDS &&
           p->out_channels && !(p->out_channels & 31);
}

/* Carry-save add of a and b onto the plane *acc: the sum stays, the carry (weight two) comes back. */
PB_INLINE uint32_t pb_slice_csa(uint32_t *acc, uint32_t a, uint32_t b)
{
    const uint32_t u = *acc ^ a, carry = (*acc & a) | (u & b);
    *acc = u ^ b;
    return carry;
}

/* Half add of a onto *acc. */
PB_INLINE uint32_t pb_slice_ha(uint32_t *acc, uint32_t a)
{
    const uint32_t carry = *acc & a;
    *acc ^= a;
    return carry;
}

/* The count planes of one slice: bit k of lane o is bit k of channel o's popcount so far. */
typedef struct {
    uint32_t p[PB_SLICE_PLANES];
} pb_slice_count_t;

/* The entry of group g of word v in the word's table e: its sum and carry words (one LDRD, the group's offset on
 * the instruction). */
#define PB_SLICE_LOOK(e, v, g, s, c)                                                                                   \
    do {                                                                                                               \
        const uint32_t *entry_ = (e) + ((((v) >> (3 * (g))) & 7u) << 1);                                               \
        PB_LOAD2(entry_, 16 * (g), s, c);                                                                              \
    } while (0)

/* Weight 32 and up of one word: the words of weight 16 that the tree leaves (x16a, x16b, x16c). */
typedef struct {
    uint32_t a, b, c;
} pb_slice_top_t;

/* Groups g, g + 1 of word v: their sums onto ones, their carries onto twos; what comes up at weights 2 and 4. */
PB_INLINE void pb_slice_pair(uint32_t *ones, uint32_t *twos, const uint32_t *e, uint32_t v, const int g, uint32_t *w2,
                             uint32_t *w4)
{
    uint32_t s0, c0, s1, c1;
    PB_SLICE_LOOK(e, v, g, s0, c0);
    PB_SLICE_LOOK(e, v, g + 1, s1, c1);
    *w2 = pb_slice_csa(ones, s0, s1);
    *w4 = pb_slice_csa(twos, c0, c1);
}

/* Groups g .. g + 3: what comes up at weights 4 and 8. */
PB_INLINE void pb_slice_quad(uint32_t *ones, uint32_t *twos, uint32_t *fours, const uint32_t *e, uint32_t v,
                             const int g, uint32_t *w4, uint32_t *w8)
{
    uint32_t t2a, t4a, t2b, t4b;
    pb_slice_pair(ones, twos, e, v, g, &t2a, &t4a);
    pb_slice_pair(ones, twos, e, v, g + 2, &t2b, &t4b);
    *w4 = pb_slice_csa(twos, t2a, t2b);
    *w8 = pb_slice_csa(fours, t4a, t4b);
}

/* One activation word v onto planes 0-3 (ones .. eights), its table at e: the 11 groups' sums (weight 1) and
 * carries (weight 2) by a Harley-Seal tree, pairs of groups first; what reaches weight 16 comes back. */
PB_INLINE void pb_slice_word(uint32_t *ones, uint32_t *twos, uint32_t *fours, uint32_t *eights, const uint32_t *e,
                             uint32_t v, pb_slice_top_t *top)
{
    uint32_t u4a, u4b, e8a, e8c, t2a, t4a, s10, c10;
    pb_slice_quad(ones, twos, fours, e, v, 0, &u4a, &e8a);
    pb_slice_quad(ones, twos, fours, e, v, 4, &u4b, &e8c);
    const uint32_t e8b = pb_slice_csa(fours, u4a, u4b);
    /* groups 8-10 (10: bits 30-31, its value below 4) */
    pb_slice_pair(ones, twos, e, v, 8, &t2a, &t4a);
    PB_SLICE_LOOK(e, v, 10, s10, c10);
    const uint32_t t2b = pb_slice_ha(ones, s10), t4b = pb_slice_ha(twos, c10);
    const uint32_t u4c = pb_slice_csa(twos, t2a, t2b);
    /* weight 4: t4a, t4b, u4c; weight 8: e8a, e8b, e8c and what comes up */
    const uint32_t e8d = pb_slice_csa(fours, t4a, t4b), e8e = pb_slice_ha(fours, u4c);
    top->a = pb_slice_csa(eights, e8a, e8b);
    top->b = pb_slice_csa(eights, e8c, e8d);
    top->c = pb_slice_ha(eights, e8e);
}

#if PB_RESIDUAL_BITS == 16 && defined(__ARM_FEATURE_SIMD32) && defined(__thumb2__) /* as PB_POPBIN_ASM */
/* pb_slice_word in Thumb-2: 128 instructions a word (11 x 3 for the entries, 17 carry-save adds of 5, 4 half adds
 * of 2, two stores), every temporary in a register. With gcc's own version (it spills) stage 4 cost 6.76
 * instructions per 32 useful bits, with this one 6.43 (measured before the later changes). A carry-save add
 * leaves its carry in its first operand, a half add (acc ^= x, carry x & ~acc) in its only one. */
#define PB_SLA_LOOK(g, s, c, first)                                                                                    \
    first "add %[" s "], %[e], %[" s "], lsl #3\n\t"                                                                   \
          "ldrd %[" s "], %[" c "], [%[" s "], #" #g " * 64]\n\t"
#define PB_SLA_GROUP(g, s, c) PB_SLA_LOOK(g, s, c, "ubfx %[" s "], %[v], #" #g " * 3, #3\n\t")
#define PB_SLA_CSA(acc, x, y)                                                                                          \
    "eor %[u], %[" acc "], %[" x "]\n\t"                                                                               \
    "and %[" x "], %[" acc "], %[" x "]\n\t"                                                                           \
    "eor %[" acc "], %[u], %[" y "]\n\t"                                                                               \
    "and %[u], %[u], %[" y "]\n\t"                                                                                     \
    "orr %[" x "], %[" x "], %[u]\n\t"
#define PB_SLA_HA(acc, x)                                                                                              \
    "eor %[" acc "], %[" acc "], %[" x "]\n\t"                                                                         \
    "bic %[" x "], %[" x "], %[" acc "]\n\t"

PB_INLINE void pb_slice_word_arm(uint32_t *ones, uint32_t *twos, uint32_t *fours, uint32_t *eights, const uint32_t *e,
                                 uint32_t v, pb_slice_top_t *top)
{
    uint32_t o = *ones, t = *twos, f = *fours, g8 = *eights;
    uint32_t a, b, c, d, p, q, u;
    __asm__(
        /* groups 0, 1: weight 2 into a, weight 4 into b */
        PB_SLA_LOOK(0, "a", "b", "and %[a], %[v], #7\n\t") PB_SLA_GROUP(1, "c", "d") PB_SLA_CSA("o", "a", "c")
            PB_SLA_CSA("t", "b", "d")
        /* groups 2, 3, then the weight-2 pair into twos (a: weight 4), the weight-4 pair into fours (b: weight 8) */
        PB_SLA_GROUP(2, "c", "d") PB_SLA_GROUP(3, "p", "q") PB_SLA_CSA("o", "c", "p") PB_SLA_CSA("t", "d", "q")
            PB_SLA_CSA("t", "a", "c") PB_SLA_CSA("f", "b", "d")
        /* groups 4, 5 (c: weight 2, d: weight 4); a and d into fours, the two weight-8 words into eights */
        PB_SLA_GROUP(4, "c", "d") PB_SLA_GROUP(5, "p", "q") PB_SLA_CSA("o", "c", "p") PB_SLA_CSA("t", "d", "q")
            PB_SLA_CSA("f", "a", "d") PB_SLA_CSA("g8", "a", "b") "str %[a], %[top_a]\n\t"
        /* groups 6, 7 with c (weight 2): c ends as a weight-8 word */
        PB_SLA_GROUP(6, "a", "b") PB_SLA_GROUP(7, "d", "p") PB_SLA_CSA("o", "a", "d") PB_SLA_CSA("t", "b", "p")
            PB_SLA_CSA("t", "c", "a") PB_SLA_CSA("f", "c", "b")
        /* groups 8, 9 and 10 (bits 30-31) */
        PB_SLA_GROUP(8, "a", "b") PB_SLA_GROUP(9, "d", "p") PB_SLA_CSA("o", "a", "d") PB_SLA_CSA("t", "b", "p")
            PB_SLA_LOOK(10, "d", "p", "lsr %[d], %[v], #30\n\t") PB_SLA_HA("o", "d") PB_SLA_HA("t", "p")
                PB_SLA_CSA("t", "a", "d") PB_SLA_CSA("f", "a", "b") PB_SLA_HA("f", "p") PB_SLA_CSA("g8", "c", "a")
                    PB_SLA_HA("g8", "p") "str %[c], %[top_b]\n\t"
                                         "str %[p], %[top_c]\n\t"
        : [o] "+r"(o), [t] "+r"(t), [f] "+r"(f), [g8] "+r"(g8), [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [d] "=&r"(d),
          [p] "=&r"(p), [q] "=&r"(q), [u] "=&r"(u), [top_a] "=m"(top->a), [top_b] "=m"(top->b), [top_c] "=m"(top->c)
        : [e] "r"(e), [v] "r"(v), "m"(*(const uint32_t (*)[PB_SLICE_WORD_WORDS])e));
    *ones = o;
    *twos = t;
    *fours = f;
    *eights = g8;
}
#define PB_SLICE_WORD pb_slice_word_arm

/* pb_slice_high in Thumb-2 on two words' carries in memory (x then y): 52 instructions, the planes read and
 * written once each, the ripple from weight 128 unrolled. */
#define PB_SLA_RIPPLE(k)                                                                                               \
    "ldr %[d], [%[high], #" #k " * 4]\n\t"                                                                             \
    "eor %[d], %[d], %[a]\n\t"                                                                                         \
    "bic %[a], %[a], %[d]\n\t"                                                                                         \
    "str %[d], [%[high], #" #k " * 4]\n\t"
PB_INLINE void pb_slice_high_arm(uint32_t *high, const pb_slice_top_t *xy)
{
    uint32_t a, b, c, d, h, u;
    _Static_assert(sizeof(pb_slice_top_t) == 12 && PB_SLICE_PLANES == 11, "the assembly's offsets");
    __asm__(
        "ldrd %[a], %[b], [%[xy]]\n\t"
        "ldr %[h], [%[high]]\n\t" PB_SLA_CSA("h", "a", "b") "ldrd %[b], %[c], [%[xy], #8]\n\t" PB_SLA_CSA(
            "h", "b",
            "c") "ldrd %[c], %[d], [%[xy], #16]\n\t" PB_SLA_CSA("h", "c",
                                                                "d") "str %[h], [%[high]]\n\t"
                                                                     "ldr %[h], [%[high], #4]\n\t" PB_SLA_CSA("h", "a",
                                                                                                              "b")
                                                                         PB_SLA_HA(
                                                                             "h", "c") "str %[h], [%[high], #4]\n\t"
                                                                                       "ldr %[h], [%[high], "
                                                                                       "#8]\n\t" PB_SLA_CSA(
                                                                                           "h", "a",
                                                                                           "c") "str %[h], [%[high], "
                                                                                                "#8]\n\t" PB_SLA_RIPPLE(
                                                                                                    3) PB_SLA_RIPPLE(4)
                                                                                                    PB_SLA_RIPPLE(5)
                                                                                                        PB_SLA_RIPPLE(6)
        : [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [d] "=&r"(d), [h] "=&r"(h), [u] "=&r"(u),
          "+m"(*(uint32_t (*)[PB_SLICE_PLANES - 4]) high)
        : [high] "r"(high), [xy] "r"(xy), "m"(*(const pb_slice_top_t(*)[2])xy));
}
#define PB_SLICE_HIGH pb_slice_high_arm
#else
#define PB_SLICE_WORD pb_slice_word
#define PB_SLICE_HIGH pb_slice_high
#endif

/* Two words' weight-16 carries (xy[0], xy[1]) onto planes 4 and up (in memory: touched once a pair of words). */
PB_INLINE void pb_slice_high(uint32_t *high, const pb_slice_top_t *xy)
{
    const pb_slice_top_t x = xy[0], y = xy[1];
    uint32_t p16 = high[0], p32 = high[1], p64 = high[2];
    const uint32_t c32a = pb_slice_csa(&p16, x.a, x.b), c32b = pb_slice_csa(&p16, x.c, y.a);
    const uint32_t c32c = pb_slice_csa(&p16, y.b, y.c);
    const uint32_t c64a = pb_slice_csa(&p32, c32a, c32b), c64b = pb_slice_ha(&p32, c32c);
    uint32_t carry = pb_slice_csa(&p64, c64a, c64b);
    high[0] = p16;
    high[1] = p32;
    high[2] = p64;
    for (int k = 3; k < PB_SLICE_PLANES - 4; k++) /* weight 128 and up */
        carry = pb_slice_ha(&high[k], carry);
}

/* The lanes whose count is at most the threshold: count < threshold + 1, the borrow of count - (t + 1), planes
 * from the lowest. */
PB_INLINE uint32_t pb_slice_at_most(const uint32_t *count, const uint32_t *t_planes)
{
    uint32_t borrow = t_planes[0] & ~count[0];
#pragma GCC unroll 16
    for (int k = 1; k < PB_SLICE_PLANES; k++) {
        const uint32_t c = count[k], t = t_planes[k];
        borrow = (t & ~c) | (borrow & ~(c ^ t));
    }
    return borrow;
}

/* The planes of one slice's counts over the window at win: 9 taps x in_words words, a pair of words at a time
 * (an odd last word of a window row waits for the next row's, or for none); `words` is the slice's part of the
 * table. */
PB_INLINE void pb_slice_counts(pb_slice_count_t *n, const uint32_t *words, const uint32_t *win, uint32_t row,
                               uint32_t in_words)
{
    uint32_t ones = 0, twos = 0, fours = 0, eights = 0;
    uint32_t *const high = &n->p[4];
    for (int k = 0; k < PB_SLICE_PLANES - 4; k++)
        high[k] = 0;
    const uint32_t window_row = 3 * in_words, odd = window_row & 1u;
    pb_slice_top_t xy[2], held[2]; /* held: an odd row's last word, until the next one's */
    int holding = 0;
    for (int ky = 0; ky < 3; ky++, win += row) {
        const uint32_t *a = win, *const pairs_end = win + window_row - odd;
        for (; a != pairs_end; a += 2, words += 2 * PB_SLICE_WORD_WORDS) {
            PB_SLICE_WORD(&ones, &twos, &fours, &eights, words, a[0], &xy[0]);
            PB_SLICE_WORD(&ones, &twos, &fours, &eights, words + PB_SLICE_WORD_WORDS, a[1], &xy[1]);
            PB_SLICE_HIGH(high, xy);
        }
        if (odd) {
            PB_SLICE_WORD(&ones, &twos, &fours, &eights, words, a[0], &held[holding]);
            words += PB_SLICE_WORD_WORDS;
            if (holding)
                PB_SLICE_HIGH(high, held);
            holding = !holding;
        }
    }
    if (holding) {
        held[1].a = held[1].b = held[1].c = 0;
        PB_SLICE_HIGH(high, held);
    }
    n->p[0] = ones;
    n->p[1] = twos;
    n->p[2] = fours;
    n->p[3] = eights;
}
#endif

#endif
