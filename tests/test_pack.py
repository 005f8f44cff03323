import numpy as np
import pytest

from pbkit.codegen.pack import pack_channels, popcount32, words_for


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
