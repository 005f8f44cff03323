"""Run an IntegerModel in PyTorch, exactly (float64 holds every intermediate integer exactly).

This is the eval-mode forward of the trained model. `pbkit.codegen.reference` runs the same
IR with explicit bit packing and popcounts in numpy; the C kernel is the third implementation.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pbkit.ir import IntegerModel

from .quantizers import thermometer_planes


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


@torch.no_grad()
def integer_logits(ir: IntegerModel, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """uint8 images N x 3 x 32 x 32 -> int64 logits N x classes."""
    out = [_integer_batch(ir, images[i:i + batch]) for i in range(0, images.shape[0], batch)]
    return torch.cat(out) if out else torch.zeros((0, ir.num_classes), dtype=torch.int64)


def _integer_batch(ir: IntegerModel, images: torch.Tensor) -> torch.Tensor:
    x = images.to(torch.float64) - 128.0
    if ir.stem.kind == "bitplanes":  # +-1 planes padded with -1: s = N - 2 popcount, exact in float64
        planes = thermometer_planes(x, torch.from_numpy(np.asarray(ir.stem.input_thresholds)))
        s = F.conv2d(F.pad(planes, (1, 1, 1, 1), value=-1.0), _t(ir.stem.weight))
    else:
        s = F.conv2d(x, _t(ir.stem.weight), padding=1)
    thresholds = _t(ir.stem.thresholds)  # C x K
    x = (s.unsqueeze(2) >= thresholds.view(1, *thresholds.shape, 1, 1)).sum(2).to(torch.float64)
    x = x - ir.stem.levels // 2
    for blk in ir.blocks:
        a = torch.where(x >= _t(blk.rsign_threshold).view(1, -1, 1, 1), 1.0, -1.0).to(torch.float64)
        w = _t(blk.weight_bits).permute(0, 3, 1, 2) * 2 - 1  # OHWI bits -> OIHW +-1
        p = F.conv2d(F.pad(a, (1, 1, 1, 1), value=-1.0), w, stride=blk.stride)
        if blk.kind == "requant":  # |p * M + B| < 2^31: exact in float64, floor == arithmetic shift
            branch = torch.floor((p * _t(blk.multiplier).view(1, -1, 1, 1)
                                  + _t(blk.bias).view(1, -1, 1, 1)) / 2.0**blk.shift)
        else:
            popcount = (blk.fan_in - p) / 2
            plus = (popcount <= _t(blk.popcount_threshold).view(1, -1, 1, 1)).to(torch.float64)
            delta = _t(np.asarray(blk.branch_delta())).view(1, -1, 1, 1)
            if blk.kind == "ternary":  # +delta, 0 or -delta
                branch = delta * (plus + (popcount <= _t(blk.zero_threshold).view(1, -1, 1, 1)) - 1)
            else:
                branch = delta * (2 * plus - 1)
        if blk.stride == 2:
            x = F.avg_pool2d(x, 2) * 4  # exact sum of the 2x2 window
        if blk.out_channels == 2 * blk.in_channels:
            x = torch.cat([x, x], dim=1)
        x = x + branch.to(torch.float64)
    # The sum is an exact integer in float64; dividing by 2^s and flooring is the arithmetic shift.
    pooled = torch.floor(x.sum(dim=(2, 3)) / 2.0**ir.head.pool_shift)
    logits = pooled @ _t(ir.head.weight).T + _t(ir.head.bias)
    return logits.round().to(torch.int64)
