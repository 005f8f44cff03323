"""Fold a trained PopBin network into the integer model (pbkit.ir) that the device runs.

Each fold turns "BatchNorm, then sign or round" into integer compares. A negative folded scale
is handled by negating that channel's weights, so every compare reads "value >= threshold".
Arithmetic is float64, and training and export both call these functions, so PyTorch eval and
the C code use the same integers.
"""

from __future__ import annotations

import numpy as np
import torch

from pbkit.ir import MAX_POOL_SHIFT, BlockIR, HeadIR, IntegerModel, StemIR, head_bound, head_positions, pooled_bound

from .quantizers import binary_sign, quantize_int8

_INT_LIMIT = 2**30  # thresholds beyond any reachable value, still safe in int32


def _bn_affine(bn: torch.nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """BN(v) = scale * v + shift, per channel, in float64 from the running statistics."""
    std = torch.sqrt(bn.running_var.double() + bn.eps)
    scale = bn.weight.double() / std
    return scale, bn.bias.double() - bn.running_mean.double() * scale


def _ceil_clamped(v: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.ceil(v), -_INT_LIMIT, _INT_LIMIT)


def fold_stem(stem) -> StemIR:
    """level = clamp(round_half_up(grid * BN(s * w_scale)), -m, m) == -m + #{k : s >= T_k}.

    The bit-plane stem is the same fold with +-1 weights and w_scale = 1 (s = N - 2 popcount on the device).
    """
    if hasattr(stem, "planes"):  # BitPlaneStem
        weight, thresholds = _stem_levels(stem, binary_sign(stem.weight.detach()), torch.ones(1))
        return StemIR(weight=weight.to(torch.int8).numpy(), thresholds=thresholds.to(torch.int32).numpy(),
                      kind="bitplanes", input_thresholds=stem.thresholds.numpy().astype(np.int32))
    weight, thresholds = _stem_levels(stem, *quantize_int8(stem.conv.weight.detach(), per_channel=True))
    return StemIR(weight=weight.to(torch.int8).numpy(), thresholds=thresholds.to(torch.int32).numpy())


def _stem_levels(stem, q: torch.Tensor, w_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel-flipped integer weights and the 2m ascending thresholds on the conv sum s."""
    bn_scale, bn_shift = _bn_affine(stem.bn)
    slope = stem.grid * bn_scale * w_scale.flatten().double().expand_as(bn_scale)  # z = slope * s + offset
    offset = stem.grid * bn_shift
    m = stem.stem_max
    boundaries = torch.arange(-m + 1, m + 1, dtype=torch.float64) - 0.5  # z >= j - 1/2 <=> level >= j
    flip = slope < 0
    magnitude = slope.abs()
    safe = torch.where(magnitude > 0, magnitude, torch.ones_like(magnitude))
    thresholds = _ceil_clamped((boundaries[None, :] - offset[:, None]) / safe[:, None])
    constant = torch.where(offset[:, None] >= boundaries[None, :], -_INT_LIMIT, _INT_LIMIT)
    thresholds = torch.where(magnitude[:, None] > 0, thresholds, constant.double())
    return torch.where(flip.view(-1, 1, 1, 1), -q, q), thresholds


_MAX_SHIFT = 24


@torch.no_grad()
def fold_requant_block(blk) -> BlockIR:
    """Baseline: round_half_up(grid * BN(p)) == (p * M + B) >> S, M and B int32, S per layer.

    S is the largest shift (<= 24) whose products fit int32 for every |p| <= N; M and B are
    rounded, so this is the integer hardware's approximation of BN, and eval uses it too.
    """
    n = blk.fan_in
    bn_scale, bn_shift = _bn_affine(blk.bn)
    slope, offset = blk.grid_out * bn_scale, blk.grid_out * bn_shift + 0.5
    for shift in range(_MAX_SHIFT, -1, -1):
        multiplier = torch.floor(slope * 2**shift + 0.5)
        bias = torch.floor(offset * 2**shift + 0.5)
        if float((multiplier.abs() * n + bias.abs()).max()) < 2**31:
            break
    else:
        raise OverflowError(f"baseline block: BN scale {float(slope.abs().max()):.3g} too large for int32 requant")
    rsign = torch.floor(blk.rsign_threshold.detach().double() * blk.grid_in + 0.5)
    bits = blk.weight.detach() >= 0
    return BlockIR(
        in_channels=blk.in_channels, out_channels=blk.out_channels, stride=blk.stride,
        rsign_threshold=rsign.to(torch.int32).numpy(),
        weight_bits=bits.permute(0, 2, 3, 1).contiguous().to(torch.uint8).numpy(),
        popcount_threshold=np.zeros(blk.out_channels, dtype=np.int32), delta=0, kind="requant",
        multiplier=multiplier.to(torch.int32).numpy(), bias=bias.to(torch.int32).numpy(), shift=shift,
    )


def _popcount_threshold(n: int, bn_scale: torch.Tensor, bn_shift: torch.Tensor, boundary: float) -> torch.Tensor:
    """The largest popcount c with BN(p) >= boundary, p = N - 2c on channel-flipped weights; -1 for none."""
    magnitude = bn_scale.abs()
    safe = torch.where(magnitude > 0, magnitude, torch.ones_like(magnitude))
    theta = _ceil_clamped((boundary - bn_shift) / safe)  # p' >= theta, with p' = p on flipped weights
    threshold = torch.floor((n - theta) / 2)
    threshold = torch.where(magnitude > 0, threshold, torch.where(bn_shift >= boundary, float(n), -1.0))
    return torch.clamp(threshold, -1, n)


def fold_block(blk) -> BlockIR:
    """Two levels: b = sign(BN(p)) == (popcount(a XOR w) <= popcount_threshold), p = N - 2 popcount.

    Three levels (ternary): BN(p) >= 1/2 adds +delta, BN(p) < -1/2 adds -delta, between adds 0, i.e.
    popcount <= popcount_threshold, popcount <= zero_threshold (the rounding of `levels_ste`).
    """
    n = blk.fan_in
    bn_scale, bn_shift = _bn_affine(blk.bn)
    ternary = getattr(blk, "branch_levels", 2) == 3
    pc_threshold = _popcount_threshold(n, bn_scale, bn_shift, 0.5 if ternary else 0.0)
    zero_threshold = _popcount_threshold(n, bn_scale, bn_shift, -0.5) if ternary else None
    bits = (blk.weight.detach() >= 0)
    bits = bits ^ (bn_scale < 0).view(-1, 1, 1, 1)
    rsign = torch.floor(blk.rsign_threshold.detach().double() * blk.grid_in + 0.5)
    units = torch.round(blk.delta().detach().double() * blk.grid_out)  # delta() is already on the grid: exact
    channel_delta = units.to(torch.int32).numpy() if units.dim() else None
    delta = int(units.max())
    return BlockIR(
        in_channels=blk.in_channels, out_channels=blk.out_channels, stride=blk.stride,
        rsign_threshold=rsign.to(torch.int32).numpy(),
        weight_bits=bits.permute(0, 2, 3, 1).contiguous().to(torch.uint8).numpy(),
        popcount_threshold=pc_threshold.to(torch.int32).numpy(),
        delta=delta, kind="ternary" if ternary else "popbin",
        zero_threshold=None if zero_threshold is None else zero_threshold.to(torch.int32).numpy(),
        channel_delta=channel_delta,
    )


def fold_model(model) -> IntegerModel:
    """The whole network; `meta['logit_scale']` maps integer logits back to the float ones.

    The head pools with the smallest right shift whose static accumulator bound fits int32 (see
    `head_bound`): 0 for PopBin models, whose residual stays small, so their integers and hashes
    are what they were before the shift existed; a trained baseline's requant branches grow the
    residual far past what `W @ sum` can hold, and the shift drops only low bits of the sum.
    """
    cfg = model.config
    with torch.no_grad():
        stem = fold_stem(model.stem)
        if cfg.mode == "real":
            raise ValueError("mode 'real' is a float distillation teacher: it has no integer model to export")
        blocks = [fold_requant_block(b) if cfg.mode == "baseline" else fold_block(b) for b in model.blocks]
        q, w_scale = model.head_levels()
        weight = q.detach().to(torch.int8).numpy()
        # The head is completed below: its shift depends on the residual bound of the blocks.
        ir = IntegerModel(stem=stem, blocks=blocks, head=HeadIR(weight=weight, bias=np.zeros(0, np.int32)),
                          grid=cfg.grid)
        grid_last = model.blocks[-1].grid_out

        def scale_and_bias(pool_shift: int) -> tuple[float, np.ndarray]:
            # Sum pooling then >> s is an average pool times positions * grid / 2^s: the scale undoes it.
            logit_scale = float(w_scale.item()) * 2**pool_shift / (head_positions(ir) * grid_last)
            bias = torch.floor(model.fc.bias.detach().double() / logit_scale + 0.5)
            return logit_scale, bias.to(torch.int64).clip(-2**31, 2**31 - 1).to(torch.int32).numpy()

        pooled = pooled_bound(ir)
        # No shift fits only when the residual itself is out of range: keep none, check_ranges refuses.
        pool_shift = next((s for s in range(MAX_POOL_SHIFT + 1)
                           if head_bound(weight, scale_and_bias(s)[1], pooled, s) < 2**31), 0)
        logit_scale, bias = scale_and_bias(pool_shift)
    ir.head = HeadIR(weight=weight, bias=bias, pool_shift=pool_shift, kind=cfg.head)
    ir.meta = {**cfg.to_dict(), "logit_scale": logit_scale}
    return ir
