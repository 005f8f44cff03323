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
