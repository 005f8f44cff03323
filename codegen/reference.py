"""Integer reference: the IR executed the way the kernel does it, with packed words and popcounts.

Independent of the PyTorch eval path (which uses +-1 convolutions): agreement between the two
checks the folding, the packing and the bit conventions.
"""

from __future__ import annotations

import numpy as np

from pbkit.ir import IntegerModel

from .pack import bitstem_weight_words, pack_channels, popcount32, words_for


def _window_counts(packed: np.ndarray, weights: np.ndarray, stride: int, ho: int, wo: int) -> np.ndarray:
    """popcount(window XOR w) per output: packed n x (h+2) x (w+2) x words, weights Cout x 9 words."""
    taps = [packed[:, ky:ky + stride * ho:stride, kx:kx + stride * wo:stride, :] for ky in range(3) for kx in range(3)]
    window = np.concatenate(taps, axis=-1)  # n, ho, wo, 9*words in (ky, kx, word) order
    xor = window[:, :, :, None, :] ^ weights[None, None, None, :, :]
    return popcount32(xor).sum(-1)  # n, ho, wo, cout


def _bitstem(ir: IntegerModel, images: np.ndarray) -> np.ndarray:
    """Thermometer planes packed one word a pixel (plane c L + k at bit c L + k), binary 3x3 conv, levels."""
    n, _, h, w = images.shape
    t = np.asarray(ir.stem.input_thresholds, dtype=np.int64)
    planes = images[:, :, None, :, :].astype(np.int64) >= t[None, None, :, None, None]  # n, 3, L, h, w
    hwc = planes.transpose(0, 3, 4, 1, 2).reshape(n, h, w, 3 * t.size).astype(np.uint8)
    packed = np.pad(pack_channels(hwc), ((0, 0), (1, 1), (1, 1), (0, 0)))  # zero border: black, -1
    count = _window_counts(packed, bitstem_weight_words(ir.stem.weight), 1, h, w)
    s = 9 * ir.stem.weight.shape[1] - 2 * count
    level = (s[..., None] >= ir.stem.thresholds[None, None, None].astype(np.int64)).sum(-1)
    return level - ir.stem.levels // 2


def _stem(ir: IntegerModel, images: np.ndarray) -> np.ndarray:
    if ir.stem.kind == "bitplanes":
        return _bitstem(ir, images)
    n, _, h, w = images.shape
    centered = np.pad(images.astype(np.int64) - 128, ((0, 0), (0, 0), (1, 1), (1, 1)))
    weight = ir.stem.weight.astype(np.int64)  # O, I, 3, 3
    s = np.zeros((n, h, w, weight.shape[0]), dtype=np.int64)
    for ky in range(3):
        for kx in range(3):
            patch = centered[:, :, ky:ky + h, kx:kx + w]  # n, I, h, w
            s += np.einsum("nihw,oi->nhwo", patch, weight[:, :, ky, kx])
    count = (s[..., None] >= ir.stem.thresholds[None, None, None].astype(np.int64)).sum(-1)
    return count - ir.stem.levels // 2  # n, h, w, c (HWC like the kernel)


def _binconv(blk, x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    bits = (x >= blk.rsign_threshold[None, None, None, :]).astype(np.uint8)
    packed = np.pad(pack_channels(bits), ((0, 0), (1, 1), (1, 1), (0, 0)))  # zero border = -1
    weights = pack_channels(blk.weight_bits).reshape(blk.out_channels, 9 * words_for(c))
    return _branch(blk, _window_counts(packed, weights, blk.stride, h // blk.stride, w // blk.stride))


def _branch(blk, count: np.ndarray) -> np.ndarray:
    """What the block adds to the residual stream, from the popcounts (last axis: output channel)."""
    delta = blk.branch_delta()
    if blk.kind == "popbin":
        return np.where(count <= blk.popcount_threshold, delta, -delta)
    if blk.kind == "ternary":
        return np.where(count <= blk.popcount_threshold, delta, np.where(count <= blk.zero_threshold, 0, -delta))
    if blk.kind == "requant":
        dot = blk.fan_in - 2 * count  # p, the +-1 dot product
        acc = dot * blk.multiplier.astype(np.int64) + blk.bias.astype(np.int64)
        # The kernel forms acc in int32; past 2^31 it would wrap, and this reference would not.
        if acc.size and np.abs(acc).max() >= 2**31:
            raise OverflowError(f"requant p * M + B reaches {int(np.abs(acc).max())}, past int32")
        return acc >> blk.shift  # numpy's >> on signed integers is arithmetic: floor, as in C
    raise ValueError(f"unknown block kind {blk.kind!r}")


def run(ir: IntegerModel, images: np.ndarray) -> np.ndarray:
    """uint8 images N x 3 x H x W -> int64 logits N x classes."""
    x = _stem(ir, images)
    for blk in ir.blocks:
        branch = _binconv(blk, x)
        if blk.stride == 2:
            n, h, w, c = x.shape
            x = x.reshape(n, h // 2, 2, w // 2, 2, c).sum(axis=(2, 4))
        if blk.out_channels == 2 * blk.in_channels:
            x = np.concatenate([x, x], axis=-1)
        x = x + branch
    pooled = x.sum(axis=(1, 2)) >> ir.head.pool_shift  # arithmetic on signed integers: floor, as in C
    return pooled @ ir.head.weight.astype(np.int64).T + ir.head.bias.astype(np.int64)
