"""Fold a trained PopBin network into the integer model (pbkit.ir) that the device runs.

Each fold turns "BatchNorm, then sign or round" into integer compares. A negative folded scale
is handled by negating that channel's weights, so every compare reads "value >= threshold".
Arithmetic is float64, and training and export both call these functions, so PyTorch eval and
the C code use the same integers.
"""

from __future__ import annotations

import numpy as np
import torch

from pbkit.ir import BlockIR, HeadIR, IntegerModel, StemIR

from .quantizers import quantize_int8

_INT_LIMIT = 2**30  # thresholds beyond any reachable value, still safe in int32


def _bn_affine(bn: torch.nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """BN(v) = scale * v + shift, per channel, in float64 from the running statistics."""
    std = torch.sqrt(bn.running_var.double() + bn.eps)
    scale = bn.weight.double() / std
    return scale, bn.bias.double() - bn.running_mean.double() * scale


def _ceil_clamped(v: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.ceil(v), -_INT_LIMIT, _INT_LIMIT)


def fold_stem(stem) -> StemIR:
    """level = clamp(round_half_up(grid * BN(s * w_scale)), -m, m) == -m + #{k : s >= T_k}."""
    q, w_scale = quantize_int8(stem.conv.weight.detach(), per_channel=True)
    bn_scale, bn_shift = _bn_affine(stem.bn)
    slope = stem.grid * bn_scale * w_scale.flatten().double()  # z = slope * s + offset
    offset = stem.grid * bn_shift
    m = stem.stem_max
    boundaries = torch.arange(-m + 1, m + 1, dtype=torch.float64) - 0.5  # z >= j - 1/2 <=> level >= j
    flip = slope < 0
    magnitude = slope.abs()
    safe = torch.where(magnitude > 0, magnitude, torch.ones_like(magnitude))
    thresholds = _ceil_clamped((boundaries[None, :] - offset[:, None]) / safe[:, None])
    constant = torch.where(offset[:, None] >= boundaries[None, :], -_INT_LIMIT, _INT_LIMIT)
    thresholds = torch.where(magnitude[:, None] > 0, thresholds, constant.double())
    weight = torch.where(flip.view(-1, 1, 1, 1), -q, q)
    return StemIR(weight=weight.to(torch.int8).numpy(), thresholds=thresholds.to(torch.int32).numpy())


def fold_block(blk) -> BlockIR:
    """b = sign(BN(p)) == (popcount(a XOR w) <= popcount_threshold), p = N - 2 popcount."""
    n = blk.fan_in
    bn_scale, bn_shift = _bn_affine(blk.bn)
    magnitude = bn_scale.abs()
    safe = torch.where(magnitude > 0, magnitude, torch.ones_like(magnitude))
    theta = _ceil_clamped(-bn_shift / safe)  # p' >= theta, with p' = p on flipped weights
    pc_threshold = torch.floor((n - theta) / 2)
    pc_threshold = torch.where(magnitude > 0, pc_threshold,
                               torch.where(bn_shift >= 0, float(n), -1.0))
    pc_threshold = torch.clamp(pc_threshold, -1, n)
    bits = (blk.weight.detach() >= 0)
    bits = bits ^ (bn_scale < 0).view(-1, 1, 1, 1)
    rsign = torch.floor(blk.rsign_threshold.detach().double() * blk.grid_in + 0.5)
    delta = round(float(blk.delta()) * blk.grid_out)  # delta() is already on the grid: this is exact
    return BlockIR(
        in_channels=blk.in_channels, out_channels=blk.out_channels, stride=blk.stride,
        rsign_threshold=rsign.to(torch.int32).numpy(),
        weight_bits=bits.permute(0, 2, 3, 1).contiguous().to(torch.uint8).numpy(),
        popcount_threshold=pc_threshold.to(torch.int32).numpy(),
        delta=delta,
    )


def fold_model(model) -> IntegerModel:
    """The whole network; `meta['logit_scale']` maps integer logits back to the float ones."""
    cfg = model.config
    with torch.no_grad():
        stem = fold_stem(model.stem)
        blocks = [fold_block(b) for b in model.blocks]
        q, w_scale = quantize_int8(model.fc.weight.detach(), per_channel=False)
        grid_last = model.blocks[-1].grid_out
        positions = 16  # 4 x 4 after three stride-2 stages on 32 x 32
        logit_scale = float(w_scale.item()) / (positions * grid_last)
        bias = torch.floor(model.fc.bias.detach().double() / logit_scale + 0.5)
    head = HeadIR(weight=q.to(torch.int8).numpy(), bias=bias.to(torch.int64).clip(-2**31, 2**31 - 1)
                  .to(torch.int32).numpy())
    meta = {**cfg.to_dict(), "logit_scale": logit_scale}
    return IntegerModel(stem=stem, blocks=blocks, head=head, grid=cfg.grid, meta=meta)


def check_ranges(ir: IntegerModel) -> None:
    """Refuse a model whose integers could overflow int32 anywhere on the device."""
    positions = ir.input_shape[1] * ir.input_shape[2] // 64  # three stride-2 stages
    pooled_bound = positions * ir.residual_bound()[-1]
    row_l1 = np.abs(ir.head.weight.astype(np.int64)).sum(axis=1)
    head_bound = int((row_l1 * pooled_bound + np.abs(ir.head.bias.astype(np.int64))).max())
    if head_bound >= 2**31:
        raise OverflowError(f"head accumulator bound {head_bound} exceeds int32")
