"""The integer model: what the device computes, produced by folding a trained network.

Conventions (the integer contract, docs/integer-contract.md):
- The residual stream holds integers; stage s counts in units of 1/grid_s with
  grid_s = grid * 4**(s-1), because each stride-2 unit sums (not averages) a 2x2 window.
- Bits: 1 means +1, 0 means -1. RSign: bit = (x >= rsign_threshold[c]).
- Binary conv: 3x3, padding contributes -1 (bit 0) on every input channel, so every output
  sums exactly N = 9 * in_channels products: p = N - 2 * popcount(a XOR w).
- PopBin (kind "popbin"): b = +1 when popcount(a XOR w) <= popcount_threshold[o], else -1;
  x_out = shortcut + delta * b.
- Ternary PopBin (kind "ternary"): the branch adds +delta when popcount <= popcount_threshold[o], 0 when
  popcount_threshold[o] < popcount <= zero_threshold[o], and -delta above: two compares, no multiply.
- Baseline (kind "requant"): x_out = shortcut + ((p * multiplier[o] + bias[o]) >> shift), an
  arithmetic (flooring) shift of an int32 product: the integer multiply + shift the deck counts.
- Stem: s = conv3x3(pixel - 128, int8 weight, zero padding); level = -stem_max + #{k: s >= T[c, k]}.
- Head: pooled = (sum over the 4x4 positions of x) >> pool_shift (flooring), then
  logits = fc_weight @ pooled + fc_bias, argmax ties to the lowest index. The fold picks the
  smallest pool_shift whose static accumulator bound fits int32 (0 for every PopBin model so far).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

IR_VERSION = 1

#: Bit-plane stem (`--stem bitplanes`): thermometer planes per colour channel. 3 x 10 = 30 bits is the most
#: that fits one 32-bit word per pixel, so each 3x3 output costs 9 XOR + popcount words per channel.
THERMOMETER_PLANES = 10
#: Shift head (`--head shift`): weights in {0, +-1, +-2, ..., +-2^HEAD_MAX_EXPONENT}, within int8.
HEAD_MAX_EXPONENT = 6


def thermometer_thresholds(planes: int = THERMOMETER_PLANES) -> np.ndarray:
    """The pixel thresholds t_k = round(256 (k + 1) / (planes + 1)), k < planes: evenly spaced in 1..255."""
    return np.floor(256 * np.arange(1, planes + 1) / (planes + 1) + 0.5).astype(np.int32)


@dataclass
class StemIR:
    weight: np.ndarray  # int8 [C0, 3, 3, 3] (OIHW), channel-flipped where the folded scale was negative
    thresholds: np.ndarray  # int32 [C0, 2 * stem_max], ascending per channel
    # "int8": s = conv3x3(pixel - 128, weight) with zero padding. "bitplanes": weight is +-1 int8
    # [C0, 3 L, 3, 3] over thermometer planes (plane c L + k = +1 where pixel >= input_thresholds[k], else -1),
    # padded with -1, so s = N - 2 popcount(planes XOR weight bits), N = 27 L: no multiply.
    kind: str = "int8"
    input_thresholds: np.ndarray | None = None  # int32 [L], ascending in 1..255 (bitplanes)

    @property
    def levels(self) -> int:
        return self.thresholds.shape[1]


@dataclass
class BlockIR:
    in_channels: int
    out_channels: int
    stride: int  # 1, or 2 with a 2x2 sum-pool + channel-duplication shortcut
    rsign_threshold: np.ndarray  # int32 [Cin], on the input grid
    weight_bits: np.ndarray  # uint8 {0,1} [Cout, 3, 3, Cin] (OHWI)
    popcount_threshold: np.ndarray  # int32 [Cout], in -1..N (popbin; zeros for requant)
    delta: int  # added or subtracted, on the output grid (popbin; 0 for requant)
    kind: str = "popbin"  # "ternary" (-delta, 0, +delta) or "requant" (the baseline)
    multiplier: np.ndarray | None = None  # int32 [Cout] (requant)
    bias: np.ndarray | None = None  # int32 [Cout], rounding offset included (requant)
    shift: int = 0  # requant: one right shift per layer
    zero_threshold: np.ndarray | None = None  # int32 [Cout], >= popcount_threshold (ternary): above it, -delta
    # int32 [Cout]: one delta per output channel (then `delta` is their largest). A training reading: the
    # integer graph and the reference run it, the C kernels take one delta per layer and export refuses it.
    channel_delta: np.ndarray | None = None

    def branch_delta(self) -> np.ndarray | int:
        """What +delta is for each output channel: `channel_delta`, or the layer's one delta."""
        return self.delta if self.channel_delta is None else self.channel_delta

    @property
    def fan_in(self) -> int:
        return 9 * self.in_channels

    def branch_bound(self) -> int:
        """Largest |value| the conv branch adds to the residual stream, in output-grid units."""
        if self.kind in ("popbin", "ternary"):
            return int(np.abs(self.branch_delta()).max())
        n = self.fan_in
        m, b = self.multiplier.astype(np.int64), self.bias.astype(np.int64)
        ends = np.concatenate([(n * m + b) >> self.shift, (-n * m + b) >> self.shift])
        return int(np.abs(ends).max())


@dataclass
class HeadIR:
    weight: np.ndarray  # int8 [classes, C]
    bias: np.ndarray  # int32 [classes]
    pool_shift: int = 0  # pooled = sum >> pool_shift: keeps W @ pooled + bias provably inside int32
    # "int8": any int8 weight (a multiply each). "shift": every weight is 0 or +-2^e, e <= HEAD_MAX_EXPONENT,
    # so W @ pooled is shifts and adds/subtracts; the integers are the same formula either way.
    kind: str = "int8"


@dataclass
class IntegerModel:
    stem: StemIR
    blocks: list[BlockIR]
    head: HeadIR
    grid: int  # units per 1.0 of the residual stream in stage 1
    input_shape: tuple[int, int, int] = (3, 32, 32)
    meta: dict = field(default_factory=dict)  # model name, width, mode: provenance, not computation

    @property
    def num_classes(self) -> int:
        return self.head.weight.shape[0]

    def residual_bound(self) -> list[int]:
        """Static bound on |x| after each block (and the stem first), in integer units."""
        bound = self.stem.levels // 2
        bounds = [bound]
        for blk in self.blocks:
            bound = (4 * bound if blk.stride == 2 else bound) + blk.branch_bound()
            bounds.append(bound)
        return bounds

    def canonical_bytes(self) -> bytes:
        """A byte string of everything that defines the computation, for the model hash."""
        parts = [json.dumps({"ir_version": IR_VERSION, "grid": self.grid,
                             "input_shape": list(self.input_shape)}).encode()]

        def add(arr: np.ndarray, dtype: str) -> None:
            a = np.ascontiguousarray(arr, dtype=dtype)
            parts.append(f"{dtype}{list(a.shape)}".encode())
            parts.append(a.tobytes())

        add(self.stem.weight, "<i1")
        add(self.stem.thresholds, "<i4")
        if self.stem.kind != "int8":  # int8-stem hashes stay as they were before other stems existed
            parts.append(f"stem {self.stem.kind}".encode())
            add(self.stem.input_thresholds, "<i4")
        for blk in self.blocks:
            parts.append(f"block {blk.in_channels} {blk.out_channels} {blk.stride} {blk.delta}".encode())
            add(blk.rsign_threshold, "<i4")
            add(blk.weight_bits, "u1")
            add(blk.popcount_threshold, "<i4")
            if blk.kind == "requant":  # popbin hashes stay as they were before other kinds existed
                parts.append(f"{blk.kind} shift {blk.shift}".encode())
                add(blk.multiplier, "<i4")
                add(blk.bias, "<i4")
            elif blk.kind == "ternary":
                parts.append(b"ternary")
                add(blk.zero_threshold, "<i4")
            if blk.channel_delta is not None:
                parts.append(b"channel_delta")
                add(blk.channel_delta, "<i4")
        add(self.head.weight, "<i1")
        add(self.head.bias, "<i4")
        if self.head.kind != "int8":
            parts.append(f"head {self.head.kind}".encode())
        if self.head.pool_shift:  # models without a pool shift keep the hashes they had before it existed
            parts.append(f"head pool_shift {self.head.pool_shift}".encode())
        return b"\n".join(parts)

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_bytes()).hexdigest()


# ---- static bounds: what export refuses (int32 on the device) ------------------------------

#: C shifts an int32 by at most 31.
MAX_POOL_SHIFT = 31


def head_positions(ir: IntegerModel) -> int:
    """Positions the head sums over."""
    return ir.input_shape[1] * ir.input_shape[2] // 64  # three stride-2 stages: 4 x 4 on 32 x 32


def pooled_bound(ir: IntegerModel) -> int:
    """Static bound on |sum over the head's positions of x|, before the pool shift."""
    return head_positions(ir) * ir.residual_bound()[-1]


def head_bound(weight: np.ndarray, bias: np.ndarray, pooled: int, pool_shift: int) -> int:
    """Static bound on |bias[k] + sum_c W[k, c] pooled[c]|, every partial sum included.

    |floor(v / 2^s)| <= ceil(|v| / 2^s), so the shifted sum is bounded by ceil(pooled / 2^s).
    """
    shifted = -(-pooled // 2**pool_shift)
    row_l1 = np.abs(weight.astype(np.int64)).sum(axis=1)
    # Python integers: a model far out of range gets an honest bound, not a wrapped int64.
    return max(int(l1) * shifted + abs(int(b)) for l1, b in zip(row_l1, bias, strict=True))


def check_multiply_free(ir: IntegerModel) -> None:
    """Refuse a bit-plane stem or a shift head whose integers the multiply-free kernels cannot hold."""
    stem = ir.stem
    if stem.kind == "bitplanes":
        t = np.asarray(stem.input_thresholds)
        if t.ndim != 1 or not 1 <= 3 * t.size <= 32 or np.any(np.diff(t) <= 0) or t.min() < 1 or t.max() > 255:
            raise ValueError(f"bit-plane stem: input thresholds {t.tolist()} must rise strictly within 1..255, "
                             "at most 10 per colour channel (one 32-bit word a pixel)")
        if stem.weight.shape[1] != 3 * t.size or not np.all(np.abs(stem.weight) == 1):
            raise ValueError(f"bit-plane stem: weights must be +-1 over 3 x {t.size} planes")
    elif stem.kind != "int8":
        raise ValueError(f"unknown stem kind {stem.kind!r}")
    if ir.head.kind == "shift":
        w = np.abs(ir.head.weight.astype(np.int64))
        if np.any((w & (w - 1)) != 0) or w.max(initial=0) > 2**HEAD_MAX_EXPONENT:
            raise ValueError(f"shift head: weights must be 0 or +-2^e with e <= {HEAD_MAX_EXPONENT}")
    elif ir.head.kind != "int8":
        raise ValueError(f"unknown head kind {ir.head.kind!r}")


def check_ranges(ir: IntegerModel) -> None:
    """Refuse a model whose integers could overflow int32 anywhere on the device."""
    check_multiply_free(ir)
    pooled = pooled_bound(ir)
    if pooled >= 2**31:  # the sum is formed in int32 before it is shifted
        raise OverflowError(f"head pooled-sum bound {pooled} exceeds int32")
    if not 0 <= ir.head.pool_shift <= MAX_POOL_SHIFT:
        raise ValueError(f"head pool_shift {ir.head.pool_shift} outside 0..{MAX_POOL_SHIFT}")
    bound = head_bound(ir.head.weight, ir.head.bias, pooled, ir.head.pool_shift)
    if bound >= 2**31:
        raise OverflowError(f"head accumulator bound {bound} exceeds int32 (pool shift {ir.head.pool_shift})")
