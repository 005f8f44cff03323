/* Popcounts for the binary convs. The reference path counts one word at a time with the
 * compiler builtin (a libgcc call on Cortex-M, which has no popcount instruction). The fast
 * path counts whole windows with bit arithmetic; see pb_binconv_walk.h for its layout. */
#ifndef PB_POPCOUNT_H
#define PB_POPCOUNT_H

#include <stdint.h>

#include "pb_model_config.h"

#if PB_KERNEL_FAST && defined(__ARM_FEATURE_SIMD32)
#include <arm_acle.h> /* __usada8: ARMv7E-M (Cortex-M4/M7) DSP extension */
#endif

static inline uint32_t pb_popcount32(uint32_t v)
{
    return (uint32_t)__builtin_popcount(v);
}

#if PB_KERNEL_FAST
/* Hides a value from the optimizer. gcc rewrites (x & 0xAA..) >> 1 as (x >> 1) & 0x55.., and
 * reassociates sums; both cost Thumb-2 an instruction, since only the first form lets the shift
 * ride on the add or sub that follows. No instruction is emitted. */
#define PB_OPAQUE(v) __asm__("" : "+r"(v))
/* Everything below is forced inline: the binary-layer functions stay flat, with no call. */
#define PB_INLINE    static inline __attribute__((always_inline))

PB_INLINE uint32_t pb_masked(uint32_t x, uint32_t mask)
{
    uint32_t m = x & mask;
    PB_OPAQUE(m);
    return m;
}

/* 2-bit fields of x: the count of their two bits (0..2). */
PB_INLINE uint32_t pb_pairs(uint32_t x)
{
    uint32_t p = x - (pb_masked(x, 0xAAAAAAAAu) >> 1);
    PB_OPAQUE(p);
    return p;
}

/* Adds the even bits of z to the 2-bit fields of a, the odd bits to those of b: fields of at
 * most 2 (pb_pairs) then hold at most 3, and z is counted. */
PB_INLINE void pb_pairs_add(uint32_t *a, uint32_t *b, uint32_t z)
{
    uint32_t even = *a + (z & 0x55555555u), odd = *b + (pb_masked(z, 0xAAAAAAAAu) >> 1);
    PB_OPAQUE(even);
    PB_OPAQUE(odd);
    *a = even;
    *b = odd;
}

/* 4-bit fields: the sum of the two 2-bit fields of p. */
PB_INLINE uint32_t pb_nibbles(uint32_t p)
{
    uint32_t n = (p & 0x33333333u) + (pb_masked(p, 0xCCCCCCCCu) >> 2);
    PB_OPAQUE(n);
    return n;
}

/* Nibble sums (at most 15 each) -> byte sums. */
PB_INLINE uint32_t pb_nibbles_to_bytes(uint32_t n)
{
    return (n & 0x0F0F0F0Fu) + (pb_masked(n, 0xF0F0F0F0u) >> 4);
}

/* acc + the sum of the four bytes of v: one USADA8 where the DSP extension has it. */
PB_INLINE uint32_t pb_byte_sum_acc(uint32_t v, uint32_t acc)
{
#if defined(__ARM_FEATURE_SIMD32)
    return __usada8(v, 0, acc);
#else
    v = (v & 0x00FF00FFu) + ((v >> 8) & 0x00FF00FFu);
    return acc + (v & 0xFFFFu) + (v >> 16);
#endif
}

/* p[k] and p[k + 1] of a 4-byte aligned uint32_t pointer (which may view other data, hence
 * memcpy elsewhere): one LDRD on Thumb-2, where gcc itself would split the pair into two loads.
 * `k` is a constant, so the offset rides on the instruction. */
#if defined(__thumb2__)
#define PB_LOAD2(p, k, lo, hi)                                                                                         \
    __asm__("ldrd %0, %1, [%2, #%c3]"                                                                                  \
            : "=r"(lo), "=r"(hi)                                                                                       \
            : "r"(p), "i"(4 * (k)), "m"(*(const uint32_t (*)[2])((p) + (k))))
/* The store the same way: p[k] = lo, p[k + 1] = hi by one STRD. */
#define PB_STORE2(p, k, lo, hi)                                                                                        \
    __asm__("strd %1, %2, [%3, #%c4]" : "=m"(*(uint32_t (*)[2])((p) + (k))) : "r"(lo), "r"(hi), "r"(p), "i"(4 * (k)))
#else
#define PB_LOAD2(p, k, lo, hi)  (__builtin_memcpy(&(lo), (p) + (k), 4), __builtin_memcpy(&(hi), (p) + (k) + 1, 4))
#define PB_STORE2(p, k, lo, hi) (__builtin_memcpy((p) + (k), &(lo), 4), __builtin_memcpy((p) + (k) + 1, &(hi), 4))
#endif

/* Carry-save add of three words x = a0^w0, y = a1^w1, z = a2^w2 with the XORs shared: the
 * activation side d = {a0, a0^a1, a0^a2, a0^a1^a2} is formed once per output pixel, the weight
 * side w = {w0, w0^w1, w0^w2, w0^w1^w2} by the exporter. Then x^y = d1^w1 and x^z = d2^w2, the
 * carry maj(x, y, z) = x ^ ((x^y) & (x^z)) and the sum x^y^z = d3^w3: 6 instructions. */
PB_INLINE void pb_csa3(const uint32_t *d, const uint32_t *w, int k, uint32_t *sum, uint32_t *carry)
{
    uint32_t d0, d1, d2, d3, w0, w1, w2, w3;
    PB_LOAD2(d, k, d0, d1);
    PB_LOAD2(w, k, w0, w1);
    PB_LOAD2(d, k + 2, d2, d3);
    PB_LOAD2(w, k + 2, w2, w3);
    const uint32_t x = d0 ^ w0;
    *carry = x ^ ((d1 ^ w1) & (d2 ^ w2));
    *sum = d3 ^ w3;
}

/* Half add of x = a0^w0, y = a1^w1 from d = {a0, a0^a1}, w = {w0, w0^w1}: sum x^y, carry
 * x & y = x & ~(x^y). */
PB_INLINE void pb_csa2(const uint32_t *d, const uint32_t *w, int k, uint32_t *sum, uint32_t *carry)
{
    uint32_t d0, d1, w0, w1;
    PB_LOAD2(d, k, d0, d1);
    PB_LOAD2(w, k, w0, w1);
    const uint32_t x = d0 ^ w0, s = d1 ^ w1;
    *sum = s;
    *carry = x & ~s;
}

/* popcount(a XOR w) over nine words, as three carry-save groups (12 derived words each side),
 * in byte lanes (0..72 each). The groups' sums and carries go straight into 2-bit fields, so
 * that few values stay live. */
PB_INLINE uint32_t pb_count9_bytes(const uint32_t *d, const uint32_t *w)
{
    uint32_t s, c;
    pb_csa3(d, w, 0, &s, &c);
    uint32_t ones_a = pb_pairs(s), twos_a = pb_pairs(c);
    pb_csa3(d, w, 4, &s, &c);
    uint32_t ones_b = pb_pairs(s), twos_b = pb_pairs(c);
    pb_csa3(d, w, 8, &s, &c);
    pb_pairs_add(&ones_a, &ones_b, s);
    pb_pairs_add(&twos_a, &twos_b, c);
    const uint32_t ones = pb_nibbles_to_bytes(pb_nibbles(ones_a) + pb_nibbles(ones_b));
    const uint32_t twos = pb_nibbles_to_bytes(pb_nibbles(twos_a) + pb_nibbles(twos_b));
    return ones + (twos << 1);
}

/* popcount(a XOR w) over the 4.5 words of a window of at most 16 channels (two pixels per
 * word): one carry-save group of three and one of two (6 derived words each side), in byte
 * lanes (0..48 each). */
PB_INLINE uint32_t pb_count_halves_bytes(const uint32_t *d, const uint32_t *w)
{
    uint32_t s, c, s2, c2;
    pb_csa3(d, w, 0, &s, &c);
    pb_csa2(d, w, 4, &s2, &c2);
    /* ones (s, s2) and twos (c, c2) in 2-bit fields of at most 3; b mixes s2's odd bits (weight
     * 1) with c2's (weight 2, left in the high bit of each field). */
    uint32_t ones_a = pb_pairs(s), ones_b = pb_masked(c2, 0xAAAAAAAAu), twos = pb_pairs(c);
    pb_pairs_add(&ones_a, &ones_b, s2);
    twos += c2 & 0x55555555u;
    const uint32_t ones = pb_nibbles_to_bytes(pb_nibbles(ones_a) + pb_nibbles(ones_b));
    return ones + (pb_nibbles_to_bytes(pb_nibbles(twos)) << 1);
}
#endif

#endif
