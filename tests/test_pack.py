import numpy as np
import pytest

from pbkit.codegen import pack
from pbkit.codegen.pack import (
    fast_interleave_thresholds,
    fast_rsign_thresholds,
    fast_weight_words,
    fast_words_per_channel,
    pack_channels,
    pack_channels_fast,
    popcount32,
    words_for,
)


@pytest.mark.parametrize("channels", [1, 31, 32, 33, 63, 64])
def test_pack_round_trip_across_word_boundaries(channels):
    rng = np.random.default_rng(channels)
    bits = rng.integers(0, 2, size=(5, channels), dtype=np.uint8)
    packed = pack_channels(bits)
    assert packed.shape == (5, words_for(channels)) and packed.dtype == np.dtype("<u4")
    unpacked = np.unpackbits(packed.view(np.uint8), axis=-1, bitorder="little")
    assert np.array_equal(unpacked[:, :channels], bits)
    assert not unpacked[:, channels:].any()  # unused bits are zero: they add nothing to a popcount


def test_bit_convention_channel_c_is_bit_c_mod_32():
    bits = np.zeros((1, 40), dtype=np.uint8)
    bits[0, 0] = bits[0, 33] = 1
    assert pack_channels(bits).tolist() == [[1, 2]]


def test_popcount32():
    words = np.array([0, 1, 0xFFFFFFFF, 0x80000001], dtype=np.uint32)
    assert popcount32(words).tolist() == [0, 1, 32, 2]


# The fast kernel's layouts (firmware/kernels/pb_binconv_walk.h, pb_rsign_pack.c).


@pytest.mark.parametrize("channels", [1, 16, 31, 32, 33, 64])
def test_fast_bit_order_puts_channel_pairs_in_the_two_halves(channels):
    rng = np.random.default_rng(channels)
    bits = rng.integers(0, 2, size=(3, channels), dtype=np.uint8)
    plain, fast = pack_channels(bits), pack_channels_fast(bits)
    assert fast.shape == plain.shape
    assert np.array_equal(popcount32(fast), popcount32(plain))  # the same bits, in another order
    for c in range(channels):
        r = c % 32
        bit = (fast[:, c // 32] >> np.uint32(r // 2 + 16 * (r % 2))) & np.uint32(1)
        assert np.array_equal(bit, bits[:, c])


def _csa3(d: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's carry-save group from the derived words of both sides (pb_csa3)."""
    x = d[0] ^ w[0]
    return d[3] ^ w[3], x ^ ((d[1] ^ w[1]) & (d[2] ^ w[2]))


def _derive3(a0, a1, a2) -> list[np.ndarray]:
    return [a0, a0 ^ a1, a0 ^ a2, a0 ^ a1 ^ a2]


@pytest.mark.parametrize("cin", [8, 16, 24, 32, 40, 64, 96])
def test_fast_weight_words_count_what_the_plain_popcount_counts(cin):
    """sum + 2 carry over the groups, from the derived words, == sum of popcount(a XOR w) per channel."""
    rng = np.random.default_rng(cin)
    cout = 5
    weight_bits = rng.integers(0, 2, size=(cout, 3, 3, cin), dtype=np.uint8)
    window_bits = rng.integers(0, 2, size=(3, 3, cin), dtype=np.uint8)  # one output pixel's window
    expected = popcount32(pack_channels(window_bits).ravel()[None, :] ^
                          pack_channels(weight_bits).reshape(cout, -1)).sum(1)
    words = fast_weight_words(weight_bits)
    assert words.shape == (cout, fast_words_per_channel(cin)) and words.dtype == np.uint32
    a = pack_channels_fast(window_bits).ravel()
    counts = []
    for w in words:
        if cin <= 16:  # two pixels a word, bits 8-15 and 24-31 free: h0|h1<<8, ..., h8
            p = [a[2 * i] | (a[2 * i + 1] << np.uint32(8)) for i in range(4)] + [a[8]]
            s, c = _csa3(_derive3(p[0], p[1], p[2]), w[:4])
            x3, s2 = p[3] ^ w[4], (p[3] ^ p[4]) ^ w[5]
            total = popcount32(s) + popcount32(s2) + 2 * (popcount32(c) + popcount32(x3 & ~s2))
        else:
            total = 0
            for g in range(len(a) // 3):
                s, c = _csa3(_derive3(a[3 * g], a[3 * g + 1], a[3 * g + 2]), w[4 * g:4 * g + 4])
                total += popcount32(s) + 2 * popcount32(c)
        counts.append(int(total))
    assert counts == expected.tolist()


@pytest.mark.parametrize("cin,cout", [(16, 16), (16, 32), (9, 8), (5, 4), (32, 32), (32, 64), (20, 8)])
def test_popcount_tables_count_what_the_plain_popcount_counts(cin, cout):
    """The kernel's sum over the lookups of each group, bytes decoded as pb_binconv_table.h reads them, == the
    popcounts."""
    rng = np.random.default_rng(cin + cout)
    weight_bits = rng.integers(0, 2, size=(cout, 3, 3, cin), dtype=np.uint8)
    window_bits = rng.integers(0, 2, size=(3, 3, cin), dtype=np.uint8)
    expected = popcount32(pack_channels(window_bits).ravel()[None, :] ^
                          pack_channels(weight_bits).reshape(cout, -1)).sum(1)
    words = pack.table_words(weight_bits, np.arange(cout), np.arange(cout) + 1)
    n = pack.table_entry_words(cin, cout)
    assert len(words) == n + cout  # two threshold words a pair: ternary
    groups = words[:n].reshape(pack.table_groups(cin), pack.TABLE_TAPS, 16, 4, cout // 4)
    counts = np.zeros(cout, dtype=np.int64)
    for g, entries in enumerate(groups):
        acc = np.zeros(cout // 4, dtype=np.uint64)
        for tap, h in enumerate(pack_channels_fast(window_bits).ravel()):
            for j, shift in enumerate(pack.TABLE_NIBBLE_SHIFTS):
                acc += entries[tap, (int(h) >> (shift + 8 * g)) & 15, j]
        for m, word in enumerate(acc.astype(np.int64)):  # bytes 0-3: channels 4m, 4m + 2, 4m + 1, 4m + 3
            counts[[4 * m, 4 * m + 2, 4 * m + 1, 4 * m + 3]] += [(int(word) >> (8 * b)) & 0xFF for b in range(4)]
    assert counts.tolist() == expected.tolist()
    tails = words[n:].reshape(cout // 2, 2).view(np.int16).reshape(cout // 2, 4)
    assert tails[:, [0, 1]].ravel().tolist() == list(range(cout))  # plus thresholds, even channel low
    assert tails[:, [2, 3]].ravel().tolist() == list(range(1, cout + 1))  # then the zero ones
    with pytest.raises(ValueError, match="table path"):
        pack.table_words(weight_bits[:3], np.arange(3))


@pytest.mark.parametrize("cin,cout", [(64, 64), (128, 32), (96, 64)])
def test_slice_tables_count_what_the_plain_popcount_counts(cin, cout):
    """Each lane's sum over the entries (sum + 2 carry) the groups of the window words pick, as pb_binconv_slice.h
    reads them, == the popcounts; the threshold planes hold threshold + 1, plus then zero."""
    rng = np.random.default_rng(cin + cout)
    weight_bits = rng.integers(0, 2, size=(cout, 3, 3, cin), dtype=np.uint8)
    window_bits = rng.integers(0, 2, size=(3, 3, cin), dtype=np.uint8)
    expected = popcount32(pack_channels(window_bits).ravel()[None, :] ^
                          pack_channels(weight_bits).reshape(cout, -1)).sum(1)
    plus, zero = rng.integers(-1, 9 * cin + 1, size=cout), rng.integers(-1, 9 * cin + 1, size=cout)
    words = pack.slice_table_words(weight_bits, plus, zero)
    n = pack.table_entry_words(cin, cout)
    slices, in_words = cout // pack.SLICE_CHANNELS, cin // 32
    assert len(words) == n + pack.table_threshold_words(cin, cout, ternary=True)
    entries = words[:n].reshape(slices, pack.TABLE_TAPS * in_words, pack.SLICE_GROUPS, 8, 2)
    lanes = np.arange(32, dtype=np.uint32)
    counts = np.zeros((slices, 32), dtype=np.int64)
    for k, h in enumerate(pack_channels_fast(window_bits).ravel()):
        for g in range(pack.SLICE_GROUPS):
            s, c = entries[:, k, g, (int(h) >> (3 * g)) & 7].T
            counts += ((s[:, None] >> lanes) & 1) + 2 * ((c[:, None] >> lanes) & 1)
    assert counts.ravel().tolist() == expected.tolist()
    planes = words[n:].reshape(slices, 2, pack.SLICE_PLANES)
    plane_bits = ((planes[..., None] >> lanes) & 1).astype(np.int64)  # [slice, kind, plane, lane]
    decoded = [(plane_bits[:, kind] << np.arange(pack.SLICE_PLANES)[None, :, None]).sum(axis=1) for kind in (0, 1)]
    assert (decoded[0].ravel() - 1).tolist() == plus.tolist() and (decoded[1].ravel() - 1).tolist() == zero.tolist()
    assert not pack.takes_slice_table(32, 64) and not pack.takes_slice_table(64, 48)
    assert pack.takes_table(64, 64, slices=True) and not pack.takes_table(64, 64)
    assert not pack.takes_nibble_table(64, 64) and pack.takes_table(32, 64)
    with pytest.raises(ValueError, match="slice path"):
        pack.slice_table_words(weight_bits[:16], plus[:16])


def test_fast_stream_follows_each_channel_pair_with_its_thresholds():
    words = np.arange(5 * 3, dtype=np.uint32).reshape(5, 3)
    stream = fast_interleave_thresholds(words, np.array([-1, 7, 300, 0, 12]))
    assert stream.tolist() == [0, 1, 2, 3, 4, 5, 0x0007FFFF, 6, 7, 8, 9, 10, 11, 300, 12, 13, 14, 12]
    with pytest.raises(ValueError, match="int16"):
        fast_interleave_thresholds(words[:1], np.array([40000]))


@pytest.mark.parametrize("residual_bits", [16, 32])
def test_fast_rsign_thresholds_keep_x_ge_t(residual_bits):
    """bit = x > t' for every x within the bound, t' clamped; int16 pairs with 32767 after an odd last channel."""
    bound = 300
    t = np.array([-5000, -301, -300, -1, 0, 1, 299, 300, 301, 9000, 17])
    table = fast_rsign_thresholds(t, bound, residual_bits)
    if residual_bits == 16:
        halves = table.astype(np.int64).astype(np.uint32).view(np.int16).astype(np.int64)
        assert len(table) == (len(t) + 1) // 2 and halves[-1] == 32767
        t_prime = halves[:len(t)]
    else:
        t_prime = table
    x = np.arange(-bound, bound + 1)[:, None]
    assert np.array_equal(x > t_prime[None, :], x >= t[None, :])


def test_layout_constants_are_the_kernels():
    """The constants both sides of the layout use are defined in C and in Python: they must agree."""
    import re

    from pbkit.codegen import pack
    from pbkit.paths import FIRMWARE_DIR

    header = (FIRMWARE_DIR / "kernels" / "pb_kernels.h").read_text()
    c = {name: int(value) for name, value in re.findall(r"#define (PB_\w+)\s+(\d+)u?\b", header)}
    assert c["PB_STEM_PAIRS"] == pack.STEM_FAST_PAIRS
    assert c["PB_STEM_ESTIMATE_WORDS"] == pack.STEM_ESTIMATE_WORDS
    assert c["PB_FAST_MAX_IN_WORDS"] == pack.FAST_MAX_IN_WORDS
    assert c["PB_HALVES_MAX_CHANNELS"] == pack.HALVES_MAX_CHANNELS
    table = (FIRMWARE_DIR / "kernels" / "pb_binconv_table.h").read_text()
    assert re.search(r"#define PB_TABLE_TAPS\s+(\d+)", table).group(1) == str(pack.TABLE_TAPS)
    shape = re.search(r"int pb_table_shape.*?\n}", table, re.S).group(0)  # the Cout list C takes, and Cin's bound
    assert re.findall(r"c == (\d+)", shape) == [str(c) for c in pack.TABLE_OUT_CHANNELS]
    assert "in_channels <= PB_TABLE_MAX_IN_CHANNELS" in shape
    assert re.search(r"#define PB_TABLE_MAX_IN_CHANNELS\s+(\d+)", table).group(1) == str(pack.TABLE_MAX_IN_CHANNELS)
    sliced = (FIRMWARE_DIR / "kernels" / "pb_binconv_slice.h").read_text()
    for name in ("SLICE_GROUPS", "SLICE_GROUP_WORDS", "SLICE_PLANES", "SLICE_MAX_IN_WORDS"):
        assert re.search(rf"#define PB_{name}\s+(\d+)", sliced).group(1) == str(getattr(pack, name)), name


def _stem_levels_by_estimate(words: np.ndarray, sums: np.ndarray, levels: int) -> np.ndarray:
    """What the fast stem computes from its table where the estimate holds: j + (s >= T_j) + (s >= T_j+1)."""
    base, m, j0 = (words[pack.STEM_FAST_PAIRS + i].astype(np.uint32).view(np.int32).astype(np.int64) for i in range(3))
    t = words[pack.STEM_FAST_PAIRS + 3:].astype(np.uint32).view(np.int32).astype(np.int64)
    j = np.clip(j0 + (((sums - base) * m) >> 32), 0, levels - 1)
    return j + (sums >= t[j]) + (sums >= t[j + 1])


def test_stem_estimate_is_exact_on_every_reachable_sum_or_refused():
    rng = np.random.default_rng(7)
    weight = rng.integers(-128, 128, (3, 3, 3, 3)).astype(np.int8)
    flat = weight.reshape(3, -1).astype(np.int64)
    shift = 128 * flat.sum(axis=1)
    start, step = rng.uniform(-80_000, 20_000, (3, 1)), rng.uniform(500, 20_000, (3, 1))
    thresholds = np.ceil(start + step * np.arange(8)).astype(np.int32)
    thresholds[0] = -(2**30)  # a constant channel
    words, estimate = pack.stem_fast_words(weight, thresholds)
    assert estimate
    for ch in range(3):  # every raw sum the channel can reach, against the count the reference makes
        lo, hi = np.minimum(-128 * flat[ch], 127 * flat[ch]).sum(), np.maximum(-128 * flat[ch], 127 * flat[ch]).sum()
        centred = np.arange(lo, hi + 1)
        count = (centred[:, None] >= thresholds[ch][None, :].astype(np.int64)).sum(axis=1)
        assert np.array_equal(_stem_levels_by_estimate(words[ch], centred + shift[ch], 8), count)
    irregular = thresholds.copy()
    irregular[1, 4:] = 2**30  # levels past reach: no linear estimate stays within two of the count
    assert not pack.stem_fast_words(weight, irregular)[1]


def test_a_ternary_stream_follows_the_plus_thresholds_with_the_zero_ones():
    plus, zero = np.array([5, -1, 7]), np.array([9, 3, 7])
    stream = fast_interleave_thresholds(np.arange(36, dtype=np.uint32).reshape(3, 12), plus, zero)
    assert len(stream) == 36 + 4  # two channels' weights, two tail words; the odd last channel's own two
    assert stream[24:26].tolist() == [0xFFFF0005, 3 << 16 | 9] and stream[38:].tolist() == [7, 7]
    lanes = pack.fast_lane_pair_words(np.zeros((3, 3, 3, 8), np.uint8), plus, zero)
    assert lanes.shape == (2, pack.lane_pair_words_per_pair(8, ternary=True))
    assert lanes[:, -2].tolist() == [0xFFFF0005, 7] and lanes[:, -1].tolist() == [3 << 16 | 9, 7]


def test_bit_stem_words_and_shift_codes():
    rng = np.random.default_rng(0)
    weight = np.where(rng.random((2, 30, 3, 3)) < 0.5, -1, 1).astype(np.int8)
    words = pack.bitstem_weight_words(weight)
    assert words.shape == (2, 9) and int(words.max()) < 2**30  # bits 30, 31 unused: 0
    assert (int(words[1, 5]) >> 7) & 1 == int(weight[1, 7, 1, 2] > 0)  # tap (1, 2) is word 5, plane 7 bit 7
    masks, fast, levels = pack.bitstem_fast_tables(weight, np.array([[-2**30, 0, 270, 2**30]] * 2),
                                                   np.arange(10, 110, 10))
    assert masks[9] == 0 and masks[10] == 1 and masks[255] == 2**10 - 1
    assert fast.shape == (2, 12) and fast[0, 1] == words[0, 0] ^ words[0, 1]
    # s = 270 - 2 c >= T: popcount 0 passes three thresholds, 1..135 two, 136..270 one; minus m = 2
    assert levels.shape == (2, 271) and levels[0, [0, 1, 135, 136, 270]].tolist() == [1, 0, 0, -1, -1]
    assert pack.head_shift_codes(np.array([[0, 1, -1, 64, -8]])).tolist() == [[0, 1, -1, 7, -4]]
    with pytest.raises(ValueError, match="power of two"):
        pack.head_shift_codes(np.array([[3]]))
