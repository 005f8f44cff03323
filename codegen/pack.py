"""Bit packing shared by the exporter and the integer reference (the kernel's layout)."""

from __future__ import annotations

import numpy as np


def words_for(channels: int) -> int:
    return (channels + 31) // 32


def pack_channels(bits: np.ndarray) -> np.ndarray:
    """{0,1} array [..., C] -> uint32 [..., ceil(C/32)]; channel c is bit c % 32 of word c // 32.

    The unused high bits of the last word are 0 on both sides (weights and activations), so
    their XOR is 0 and they add nothing to a popcount.
    """
    c = bits.shape[-1]
    padded = np.zeros((*bits.shape[:-1], words_for(c) * 32), dtype=np.uint8)
    padded[..., :c] = bits
    packed = np.packbits(padded, axis=-1, bitorder="little")  # 4 bytes per word, little-endian
    return np.ascontiguousarray(packed).view("<u4")


def popcount32(words: np.ndarray) -> np.ndarray:
    """Popcount of each uint32 element."""
    words = np.asarray(words, dtype=np.uint32)
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(words).astype(np.int64)
    table = np.array([bin(i).count("1") for i in range(1 << 16)], dtype=np.int64)
    return table[words & 0xFFFF] + table[words >> 16]


#: Input channels up to which the fast kernel packs two pixels into one word.
HALVES_MAX_CHANNELS = 16
#: The fast kernel's per-pixel scratch holds 12 words per input word (pb_binconv_walk.h).
FAST_MAX_IN_WORDS = 16


def fast_words_per_channel(in_channels: int) -> int:
    """Weight words per output channel in the fast layout (fast_weight_words)."""
    return 6 if in_channels <= HALVES_MAX_CHANNELS else 12 * words_for(in_channels)


def pack_channels_fast(bits: np.ndarray) -> np.ndarray:
    """pack_channels in the fast kernel's bit order: channels 2k and 2k + 1 of a word (k < 16) are
    bits k and 16 + k, which one 16-bit SIMD compare of the fast RSign sets together."""
    c = bits.shape[-1]
    padded = np.zeros((*bits.shape[:-1], words_for(c) * 32), dtype=np.uint8)
    padded[..., :c] = bits
    pairs = padded.reshape(*bits.shape[:-1], words_for(c), 16, 2)
    return pack_channels(np.swapaxes(pairs, -1, -2).reshape(padded.shape))


def _derive3(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> list[np.ndarray]:
    """The weight side of one carry-save group: w0, w0^w1, w0^w2, w0^w1^w2."""
    return [x, x ^ y, x ^ z, x ^ y ^ z]


def fast_weight_words(weight_bits: np.ndarray) -> np.ndarray:
    """{0,1} weights [Cout, 3, 3, Cin] -> uint32 [Cout, n] in the fast kernel's layout.

    Channels are in pack_channels_fast's order. The window's words (ky, kx, word order) go three
    at a time into carry-save groups, each stored as w0, w0^w1, w0^w2, w0^w1^w2 (n = 12 * words).
    At most 16 input channels (bits 0-7 and 16-23 of a word) put two pixels in one word: h0..h8
    -> h0|h1<<8, h2|h3<<8, h4|h5<<8, h6|h7<<8, h8, stored as one group of three and w3, w3^w4
    (n = 6). firmware/kernels/pb_binconv_walk.h reads it.
    """
    cout, _, _, cin = weight_bits.shape
    if words_for(cin) > FAST_MAX_IN_WORDS:
        raise ValueError(f"{cin} input channels: the fast kernel takes at most {32 * FAST_MAX_IN_WORDS}")
    words = pack_channels_fast(weight_bits).reshape(cout, 9 * words_for(cin)).astype(np.uint32)
    if cin <= HALVES_MAX_CHANNELS:
        h = words
        p = [h[:, 2 * i] | (h[:, 2 * i + 1] << np.uint32(8)) for i in range(4)] + [h[:, 8]]
        return np.stack([*_derive3(p[0], p[1], p[2]), p[3], p[3] ^ p[4]], axis=1)
    groups = words.reshape(cout, -1, 3)
    return np.stack(_derive3(groups[..., 0], groups[..., 1], groups[..., 2]), axis=-1).reshape(cout, -1)


def _threshold_tables(threshold: np.ndarray, zero_threshold: np.ndarray | None) -> list[np.ndarray]:
    """The popcount thresholds a block's branch compares against: one table (popbin) or, ternary, the plus
    thresholds and then the zero ones; each in -1..9 * Cin, which int16 holds for Cin < 3641."""
    tables = [np.asarray(threshold, dtype=np.int64)]
    if zero_threshold is not None:
        tables.append(np.asarray(zero_threshold, dtype=np.int64))
    for t in tables:
        if t.min() < -(2**15) or t.max() >= 2**15:
            raise ValueError("popcount thresholds outside int16")
    return tables


def _int16_pair_words(t: np.ndarray) -> np.ndarray:
    """int16 pairs in words, channel 2k low and 2k + 1 high (0 above an odd last channel)."""
    if len(t) % 2:
        t = np.append(t, 0)
    return ((t[0::2] & 0xFFFF) | (t[1::2] & 0xFFFF) << 16).astype(np.uint32)


def fast_interleave_thresholds(words: np.ndarray, threshold: np.ndarray,
                               zero_threshold: np.ndarray | None = None) -> np.ndarray:
    """The fast popbin stream: the weights of two output channels, then one word with both popcount
    thresholds as int16 (the even channel's in the low half); an odd last channel gets its own word.
    A ternary block (zero_threshold given) follows the plus thresholds' word with the zero thresholds' one."""
    tails = np.stack([_int16_pair_words(t) for t in _threshold_tables(threshold, zero_threshold)], axis=1)
    rows = [np.concatenate([words[o:o + 2].ravel(), tails[o // 2]]) for o in range(0, len(words), 2)]
    return np.concatenate(rows).astype(np.uint32)


def fast_rsign_thresholds(threshold: np.ndarray, bound: int, residual_bits: int) -> np.ndarray:
    """The fast RSign's table (firmware/kernels/pb_rsign_pack.c): t' = t - 1 clamped to the
    residual bound [-bound, bound], so that bit = x > t'; an int16 residual gets int16 pairs in
    int32 words (channel 2k low, 2k + 1 high; 32767 above an odd last channel)."""
    t = np.clip(np.asarray(threshold, dtype=np.int64) - 1, -bound - 1, bound)
    if residual_bits != 16:
        return t
    if len(t) % 2:
        t = np.append(t, 32767)
    lo, hi = t[0::2] & 0xFFFF, t[1::2] & 0xFFFF
    return ((hi << 16) | lo).astype(np.uint32).view(np.int32).astype(np.int64)


#: The fast stem (firmware/kernels/pb_stem_conv_thermometer.c): the 27 taps of one output channel as
#: 14 int16 pairs, for 14 dual 16-bit MACs (SMLAD) over the raw pixels.
STEM_FAST_PAIRS = 14
#: Per channel after the pairs: the level estimate (base, M, J0), then the thresholds and one more above them.
STEM_ESTIMATE_WORDS = 3
#: |s| of the centred stem conv never exceeds 27 taps x 128 x 128 (pixel - 128 in -128..127, int8 weights).
STEM_SUM_BOUND = 27 * 128 * 128
#: The threshold after the last, past every reachable raw sum: the estimate's second compare may read it.
STEM_SENTINEL = 2**30


def stem_fast_words_per_channel(levels: int) -> int:
    return STEM_FAST_PAIRS + STEM_ESTIMATE_WORDS + levels + 1


def _stem_estimate(t: list[int], lo: int, hi: int) -> tuple[int, int, int] | None:
    """(base, M, J0) such that j(s) = clamp(J0 + floor((s - base) M / 2^32), 0, L - 1) is within two of the
    count c(s) = #{k : T_k <= s} from below (c - j in 0..2) for every reachable raw sum s in [lo, hi], so
    that c = j + (s >= T_j) + (s >= T_j+1); or None. The fold's thresholds are the ceilings of equally
    spaced boundaries, so the spacing of those inside the range predicts the rest; the fit is checked
    exactly (_stem_estimate_holds) and refused where it does not hold."""
    levels = len(t)
    inside = [k for k, v in enumerate(t) if lo < v <= hi]  # the boundaries some reachable sum crosses
    below = sum(v <= lo for v in t)  # thresholds every reachable sum passes
    if not inside:  # a constant level: no compare needed
        return (0, 0, min(below, levels - 1))
    if len(inside) == 1:
        return None
    k0, k1 = inside[0], inside[-1]
    delta = (t[k1] - t[k0]) / (k1 - k0)
    if delta <= 2:  # M = 2^32 / delta must fit int32
        return None
    return (int(np.floor(t[k0] - k0 * delta)), int(2**32 // delta), 0)


def _stem_j(estimate: tuple[int, int, int], s: int, levels: int) -> int:
    base, m, j0 = estimate
    return min(max(j0 + (((s - base) * m) >> 32), 0), levels - 1)


def _stem_estimate_holds(t: list[int], estimate: tuple[int, int, int], lo: int, hi: int) -> bool:
    """c(s) - j(s) in 0..2 for every s in [lo, hi]: both are step functions, so it is checked at every
    point where either steps (and at the ends)."""
    base, m, j0 = estimate
    points = {lo, hi}
    points.update(v + d for v in t for d in (-1, 0))
    if m:  # where j0 + floor((s - base) m / 2^32) reaches v: s = base + ceil((v - j0) 2^32 / m)
        for v in range(-1, len(t) + 1):
            step = base - ((-(v - j0) * 2**32) // m)
            points.update((step - 1, step))
    for s in points:
        if lo <= s <= hi and not 0 <= sum(v <= s for v in t) - _stem_j(estimate, s, len(t)) <= 2:
            return False
    return True


def stem_fast_words(weight: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, bool]:
    """int8 weights [Cout, 3, 3, 3] (OIHW) and int32 thresholds [Cout, levels] -> (uint32 [Cout,
    stem_fast_words_per_channel(levels)], estimate), the fast stem's table and whether every channel's
    level estimate holds (else the kernel counts the thresholds one by one).

    The kernel reads the 3 pixels of row r = 3 * c + ky (input channel c, kernel row ky) with one word load
    and splits its bytes into (left, right) and the centre. So word r < 9 holds (w[c, ky, 0], w[c, ky, 2]) as
    int16 (low, high), word 9 + j holds the centres (w[2j], w[2j + 1]) of rows 2j and 2j + 1, and the high
    half of word 13, which faces a pixel outside the window, is 0.

    The kernel multiplies the raw pixels p, not p - 128: sum(p * w) = s + 128 * sum(w), with the padding read
    as 128, so every threshold moves by 128 * sum(w). Thresholds are clamped to [-B, B + 1] first
    (B = STEM_SUM_BOUND, past which s never goes), so that s_raw - T fits int32 and its sign is (s < T).
    Then per channel: the estimate (base, M, J0: _stem_estimate, zeros where it does not hold), the
    thresholds, and STEM_SENTINEL.
    """
    w = np.asarray(weight, dtype=np.int64)
    cout, cin, kh, kw = w.shape
    if (cin, kh, kw) != (3, 3, 3):
        raise ValueError(f"stem weights {w.shape}: the fast stem takes 3 input channels and 3x3 kernels")
    rows = w.reshape(cout, 9, 3)  # row r = 3 * c + ky, then kx
    centres = np.concatenate([rows[:, :, 1], np.zeros((cout, 1), dtype=np.int64)], axis=1)  # 10: pad row 9
    lo = np.concatenate([rows[:, :, 0], centres[:, 0::2]], axis=1)  # 9 + 5 words
    hi = np.concatenate([rows[:, :, 2], centres[:, 1::2]], axis=1)
    pairs = (lo & 0xFFFF) | ((hi & 0xFFFF) << 16)
    flat = w.reshape(cout, -1)
    shift = 128 * flat.sum(axis=1, keepdims=True)
    t = np.clip(np.asarray(thresholds, dtype=np.int64), -STEM_SUM_BOUND, STEM_SUM_BOUND + 1) + shift
    # The raw sums a channel can reach: each tap's (pixel - 128) in -128..127, the padding at 0.
    reach_lo = np.minimum(-128 * flat, 127 * flat).sum(axis=1) + shift[:, 0]
    reach_hi = np.maximum(-128 * flat, 127 * flat).sum(axis=1) + shift[:, 0]
    estimates = []
    for ch in range(cout):
        row_t, lo_s, hi_s = t[ch].tolist(), int(reach_lo[ch]), int(reach_hi[ch])
        est = _stem_estimate(row_t, lo_s, hi_s)
        estimates.append(est if est is not None and _stem_estimate_holds(row_t, est, lo_s, hi_s) else None)
    estimate = all(e is not None for e in estimates)
    est = np.array([e if estimate else (0, 0, 0) for e in estimates], dtype=np.int64)
    sentinel = np.full((cout, 1), STEM_SENTINEL, dtype=np.int64)
    words = np.concatenate([pairs, est, t, sentinel], axis=1) & 0xFFFFFFFF
    return words.astype(np.uint32), estimate


def lane_pair_activation(h: np.ndarray) -> np.ndarray:
    """The word the lane-pair kernel makes of a pixel's fast-packed word of at most 16 channels (bits 0-7:
    channels 0, 2, .., 14; bits 16-23: channels 1, 3, .., 15): h | ror(h, 8), which holds every channel once
    in lanes 0-15 (bits 0-7, 8-15 = even, odd channels) and once in lanes 16-31 (odd, even)."""
    h = np.asarray(h, dtype=np.uint32)
    return h | (h >> np.uint32(8)) | (h << np.uint32(24))


def _ror16(words: np.ndarray) -> np.ndarray:
    words = np.asarray(words, dtype=np.uint32)
    return (words >> np.uint32(16)) | (words << np.uint32(16))


#: Input channels up to which a lane pair's window is one word per pixel (two streams for more than 16).
LANE_PAIR_MAX_CHANNELS = 32


def lane_pair_words_per_pair(in_channels: int, ternary: bool = False) -> int:
    """Stream words per pair of output channels in the lane-pair layout: 12 per stream, then the thresholds
    (one word, two for a ternary block)."""
    return (12 if in_channels <= HALVES_MAX_CHANNELS else 24) + (2 if ternary else 1)


def fast_lane_pair_words(weight_bits: np.ndarray, threshold: np.ndarray,
                         zero_threshold: np.ndarray | None = None) -> np.ndarray:
    """PopBin, at most 32 input channels: {0,1} weights [Cout, 3, 3, Cin] and popcount thresholds [Cout] ->
    uint32 [ceil(Cout / 2), lane_pair_words_per_pair(Cin)], the stream of pb_binconv3x3_popbin.c's lane pairs.
    A ternary block's zero thresholds (zero_threshold) follow as one more word per pair.

    Output channels go in pairs, the even one in lanes 0-15 of every word and the odd one in lanes 16-31, so
    that one carry-save count (pb_count9_bytes) gives both channels' popcounts as the two 16-bit halves of its
    byte sums. The activation words of the nine window pixels hold each input channel once per half:
      at most 16 channels: one stream, lane_pair_activation(h) (h: the fast-packed word, bits 0-7 and 16-23);
      17 to 32 channels: two streams, a and ror(a, 16): the first gives the even channel its input channels
        of bits 0-15 and the odd one those of bits 16-31, the second the other halves.
    Per pair and stream: the weight side of its three groups (one window row each: w0, w0^w1, w0^w2,
    w0^w1^w2); then both thresholds as int16 (the even channel's low), and the zero thresholds likewise
    (ternary). An odd last channel pairs with zero weights, whose half the kernel ignores.
    """
    cout, _, _, cin = weight_bits.shape
    if cin > LANE_PAIR_MAX_CHANNELS:
        raise ValueError(f"{cin} input channels: the lane-pair layout takes at most {LANE_PAIR_MAX_CHANNELS}")
    taps = pack_channels_fast(weight_bits).reshape(cout, 9)
    tails = [_int16_pair_words(t) for t in _threshold_tables(threshold, zero_threshold)]
    if cout % 2:
        taps = np.concatenate([taps, np.zeros((1, 9), dtype=np.uint32)])
    streams = [lane_pair_activation(taps)] if cin <= HALVES_MAX_CHANNELS else [taps, _ror16(taps)]
    parts = []
    for words in streams:
        lanes = (words[0::2] & np.uint32(0xFFFF)) | (words[1::2] & np.uint32(0xFFFF0000))  # [pairs, 9]
        rows = lanes.reshape(len(lanes), 3, 3)
        parts.append(np.stack(_derive3(rows[..., 0], rows[..., 1], rows[..., 2]), axis=-1).reshape(len(lanes), 12))
    return np.concatenate([*parts, *(tail[:, None] for tail in tails)], axis=1).astype(np.uint32)


# ---- the table path (--kernel tables) -------------------------------------------------------------------

#: Taps of a table window (firmware/kernels/pb_binconv_table.h): each looks up 4 nibbles of its fast-packed word.
TABLE_TAPS = 9
#: The nibbles of a group: bits 0-7 of a fast-packed word hold the even channels of 0-15, bits 16-23 the odd ones.
TABLE_NIBBLE_SHIFTS = (0, 4, 16, 20)
#: Input channels up to which a window takes tables: one word a pixel, two groups of nibbles (16 channels each;
#: group 1 is the word shifted right by 8), whose counts a byte holds (9 x 16 = 144).
TABLE_MAX_IN_CHANNELS = 32
#: The output channel counts a table entry takes (Cout / 4 words of byte counts, a power of two).
TABLE_OUT_CHANNELS = (4, 8, 16, 32, 64)


def takes_table(in_channels: int, out_channels: int, slices: bool = False) -> bool:
    """Whether a popbin or ternary block gets a table: a nibble table (pb_table_shape; --kernel tables and slices)
    or, with `slices` (--kernel slices), a slice table (takes_slice_table)."""
    return takes_nibble_table(in_channels, out_channels) or (slices and takes_slice_table(in_channels, out_channels))


def takes_nibble_table(in_channels: int, out_channels: int) -> bool:
    """Whether a popbin or ternary block gets a nibble popcount table under --kernel tables (pb_table_shape)."""
    return in_channels <= TABLE_MAX_IN_CHANNELS and out_channels in TABLE_OUT_CHANNELS


def table_groups(in_channels: int) -> int:
    return 1 if in_channels <= HALVES_MAX_CHANNELS else 2


def table_entry_words(in_channels: int, out_channels: int) -> int:
    """Words of a block's table, thresholds not included. Nibble tables: groups x 9 taps x 16 values x 4 nibbles x
    Cout / 4; slice tables: Cout / 32 slices x 9 taps x in_words x SLICE_GROUPS x SLICE_GROUP_WORDS."""
    if takes_slice_table(in_channels, out_channels):
        return (out_channels // SLICE_CHANNELS) * TABLE_TAPS * (in_channels // 32) * SLICE_GROUPS * SLICE_GROUP_WORDS
    return table_groups(in_channels) * TABLE_TAPS * 16 * len(TABLE_NIBBLE_SHIFTS) * (out_channels // 4)


def table_threshold_words(in_channels: int, out_channels: int, ternary: bool) -> int:
    """Words of a block's table that hold its thresholds: int16 pairs (nibble tables), planes (slice tables)."""
    kinds = 2 if ternary else 1
    if takes_slice_table(in_channels, out_channels):
        return kinds * SLICE_PLANES * (out_channels // SLICE_CHANNELS)
    return kinds * ((out_channels + 1) // 2)


def table_words(weight_bits: np.ndarray, threshold: np.ndarray, zero_threshold: np.ndarray | None = None) -> np.ndarray:
    """{0,1} weights [Cout, 3, 3, Cin] (Cin <= 32, Cout in TABLE_OUT_CHANNELS) and popcount thresholds ->
    uint32, the table path's table (firmware/kernels/pb_binconv_table.h).

    [group g][tap (ky, kx)][value v][nibble j][Cout / 4 words]: the popcount of v XOR nibble j of each output
    channel's weight word at that tap shifted right by 8 g; word m has the counts of channels 4m, 4m + 2, 4m + 1,
    4m + 3 in its bytes 0-3. Then the threshold words of each pair, as the lane pairs hold them (int16, the even
    channel low; ternary: the plus word, then the zero word).
    """
    cout, _, _, cin = weight_bits.shape
    if not takes_nibble_table(cin, cout):
        raise ValueError(f"{cin} -> {cout} channels: the table path takes at most {TABLE_MAX_IN_CHANNELS} input "
                         f"channels and {', '.join(map(str, TABLE_OUT_CHANNELS))} output channels")
    taps = pack_channels_fast(weight_bits).reshape(cout, TABLE_TAPS)  # [Cout, tap]
    values = np.arange(16, dtype=np.uint32)
    parts = []
    for group in range(table_groups(cin)):
        shifted = taps >> np.uint32(8 * group)
        nibbles = np.stack([(shifted >> np.uint32(s)) & np.uint32(15) for s in TABLE_NIBBLE_SHIFTS], axis=-1)
        counts = popcount32(values[None, None, :, None] ^ nibbles[:, :, None, :])  # [Cout, tap, value, nibble]
        quads = counts.transpose(1, 2, 3, 0).reshape(TABLE_TAPS, 16, 4, cout // 4, 4).astype(np.uint32)
        parts.append((quads[..., 0] | quads[..., 2] << 8 | quads[..., 1] << 16 | quads[..., 3] << 24).ravel())
    tails = np.stack([_int16_pair_words(t) for t in _threshold_tables(threshold, zero_threshold)], axis=1)
    return np.concatenate([*parts, tails.ravel()]).astype(np.uint32)


# ---- the slice path (--kernel slices: the wider layers) ------------------------------------------------------

#: Output channels of a slice (firmware/kernels/pb_binconv_slice.h): lane o of a word is channel o of the slice.
SLICE_CHANNELS = 32
#: Groups an activation word is read in: bits 3g..3g + 2 for g < 10, then bits 30-31.
SLICE_GROUPS = 11
#: Words of a group's entries: 8 values x (sum, carry).
SLICE_GROUP_WORDS = 16
#: Planes of a count and of a threshold + 1: both stay below 2^11.
SLICE_PLANES = 11
#: Input words up to which a window takes slice tables: 9 x 32 x 7 + 1 < 2^SLICE_PLANES.
SLICE_MAX_IN_WORDS = 7


def takes_slice_table(in_channels: int, out_channels: int) -> bool:
    """Whether a popbin or ternary block gets a slice table under --kernel slices (pb_slice_shape): whole input
    words, more than one, and whole slices of output channels."""
    return (in_channels > 32 and in_channels % 32 == 0 and in_channels // 32 <= SLICE_MAX_IN_WORDS
            and out_channels > 0 and out_channels % SLICE_CHANNELS == 0)


def _lane_words(bits: np.ndarray) -> np.ndarray:
    """{0,1} [..., 32 lanes] -> uint32 [...]: bit o of the word is lane o."""
    return (bits.astype(np.uint64) << np.arange(32, dtype=np.uint64)).sum(axis=-1).astype(np.uint32)


def slice_table_words(weight_bits: np.ndarray, threshold: np.ndarray,
                      zero_threshold: np.ndarray | None = None) -> np.ndarray:
    """{0,1} weights [Cout, 3, 3, Cin] and popcount thresholds -> uint32, the slice path's table
    (firmware/kernels/pb_binconv_slice.h).

    [slice][tap (ky, kx)][input word][group g][value v][sum, carry]: with W_i the word whose lane o is bit 3g + i
    of output channel 32 slice + o's fast-packed weight word at that tap and x_i = W_i XOR (bit i of v, in every
    lane), the sum x_0 ^ x_1 ^ x_2 and the carry maj(x_0, x_1, x_2) (group 10: bits 30 and 31, values below 4, the
    rest zero). Then per slice the planes of threshold + 1 (ternary: the plus planes, then the zero planes).
    """
    cout, _, _, cin = weight_bits.shape
    if not takes_slice_table(cin, cout):
        raise ValueError(f"{cin} -> {cout} channels: the slice path takes a multiple of 32 input channels from 64 "
                         f"to {32 * SLICE_MAX_IN_WORDS} and a multiple of {SLICE_CHANNELS} output channels")
    in_words, slices = cin // 32, cout // SLICE_CHANNELS
    words = pack_channels_fast(weight_bits).reshape(slices, SLICE_CHANNELS, TABLE_TAPS, in_words)
    weight_bit = (words[..., None] >> np.arange(32, dtype=np.uint32)) & np.uint32(1)  # [s, o, tap, word, bit]
    lanes = _lane_words(np.moveaxis(weight_bit, 1, -1))  # [s, tap, word, bit]
    entries = np.zeros((slices, TABLE_TAPS, in_words, SLICE_GROUPS, 8, 2), dtype=np.uint32)
    for g in range(SLICE_GROUPS):
        width = 3 if g < SLICE_GROUPS - 1 else 2
        for v in range(1 << width):
            x = [lanes[..., 3 * g + i] ^ np.uint32(0xFFFFFFFF if (v >> i) & 1 else 0) for i in range(width)]
            if width == 3:
                entries[..., g, v, 0] = x[0] ^ x[1] ^ x[2]
                entries[..., g, v, 1] = (x[0] & x[1]) | (x[2] & (x[0] ^ x[1]))
            else:
                entries[..., g, v, 0] = x[0] ^ x[1]
                entries[..., g, v, 1] = x[0] & x[1]
    planes = []
    for t in _threshold_tables(threshold, zero_threshold):
        above = (t + 1).reshape(slices, SLICE_CHANNELS)
        if above.min() < 0 or above.max() >= 1 << SLICE_PLANES:
            raise ValueError(f"popcount thresholds outside -1..{(1 << SLICE_PLANES) - 2}")
        plane_bits = (above[..., None] >> np.arange(SLICE_PLANES)) & 1  # [s, o, k]
        planes.append(_lane_words(np.moveaxis(plane_bits, 1, -1)))  # [s, k]
    return np.concatenate([entries.ravel(), np.concatenate(planes, axis=1).ravel()]).astype(np.uint32)


# ---- the multiply-free options: bit-plane stem, shift head ---------------------------------------------

def bitstem_weight_words(weight: np.ndarray) -> np.ndarray:
    """+-1 stem weights [C0, 3 L, 3, 3] (OIHW) -> uint32 [C0, 9]: one word per tap (ky, kx), bit c L + k = +1.

    The activation words put plane c L + k (pixel[c] >= t_k) at the same bit (firmware/kernels/pb_stem_bitplanes.c).
    """
    if weight.shape[1] > 32:
        raise ValueError(f"bit-plane stem: {weight.shape[1]} planes do not fit one 32-bit word a pixel")
    bits = (np.transpose(weight, (0, 2, 3, 1)) > 0).astype(np.uint8)  # OHWI
    return pack_channels(bits).reshape(weight.shape[0], 9).astype(np.uint32)


def bitstem_fast_tables(weight: np.ndarray, thresholds: np.ndarray,
                        input_thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fast bit-plane stem's tables (firmware/kernels/pb_stem_bitplanes.c):

    - masks, uint16 [256]: the thermometer planes a pixel value sets ((1 << #{k : value >= t_k}) - 1);
    - words, uint32 [C0, 12]: per output channel the three carry-save groups of its 9 tap words (one per kernel
      row: w0, w0^w1, w0^w2, w0^w1^w2, as pb_count9_bytes reads them);
    - levels, int8 [C0, N + 1]: the level of every popcount c, -m + #{k : N - 2 c >= T_k}.
    """
    counts = (np.arange(256)[:, None] >= np.asarray(input_thresholds)[None, :]).sum(1)
    masks = ((1 << counts) - 1).astype(np.uint16)
    taps = bitstem_weight_words(weight).reshape(weight.shape[0], 3, 3)
    words = np.stack(_derive3(taps[..., 0], taps[..., 1], taps[..., 2]), axis=-1).reshape(weight.shape[0], 12)
    n = 9 * weight.shape[1]
    s = n - 2 * np.arange(n + 1)
    t = np.asarray(thresholds, dtype=np.int64)
    levels = (s[None, :, None] >= t[:, None, :]).sum(-1) - t.shape[1] // 2
    return masks, words.astype(np.uint32), levels.astype(np.int8)


def head_shift_codes(weight: np.ndarray) -> np.ndarray:
    """Power-of-two head weights (0 or +-2^e) -> int8 codes 0 or +-(e + 1) (pb_head_sumpool_shift.c)."""
    w = np.asarray(weight, dtype=np.int64)
    magnitude = np.abs(w)
    if np.any(magnitude & (magnitude - 1)):
        raise ValueError("shift head: every weight must be 0 or a power of two")
    exponent = np.log2(np.where(magnitude > 0, magnitude, 1)).astype(np.int64)
    return (np.sign(w) * np.where(magnitude > 0, exponent + 1, 0)).astype(np.int8)
