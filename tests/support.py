"""Test inputs: random PopBin models with non-trivial folds, and real images from the shipped sample."""

from __future__ import annotations

import torch

from pbkit.trainer.data import load_sample
from pbkit.trainer.model import ModelConfig, build_model


def random_model(base_channels: int, seed: int = 0, mode: str = "popbin", model_name: str = "reactnet18",
                 branch_levels: int = 2, stem: str = "int8", head: str = "int8", delta_per_channel: bool = False):
    """A model whose folds exercise negative scales, flipped channels and off-grid thresholds.

    mode "baseline" folds to requant blocks (multiply + shift), "ptq-popcount" and
    "simple-qat-popcount" to popbin blocks with their own deltas. stem="bitplanes" and head="shift" give the
    multiply-free model; the bit-plane stem's BN is scaled to its fan-in, so its levels are not all saturated.
    """
    torch.manual_seed(seed)
    model = build_model(ModelConfig(model=model_name, width=base_channels / 64, mode=mode,
                                    branch_levels=branch_levels, stem=stem, head=head,
                                    delta_per_channel=delta_per_channel))
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 3)
                mod.running_var.uniform_(0.5, 20)
                mod.weight.normal_(0, 1)
                mod.bias.normal_(0, 1)
        for blk in model.blocks:
            blk.rsign_threshold.normal_(0, 0.5)
            blk.log_a.uniform_(1.5, 3.0)
            if mode != "popbin":  # popbin draws nothing more, so its models (and tests/golden) stay as they were
                blk.weight.normal_(0, 0.05)
            if mode == "ptq-popcount":
                blk.ptq_delta_units.fill_(float(torch.randint(1, 40, ())))
            if mode == "baseline":
                _tame_requant_bn(blk.bn, blk.fan_in)
        if stem == "bitplanes":  # p spans +-N = +-270: BN statistics on that scale (drawn last: others unchanged)
            model.stem.bn.running_mean.normal_(0, 10)
            model.stem.bn.running_var.uniform_(50, 400)
        model.fc.weight.normal_(0, 0.1)
        model.fc.bias.normal_(0, 0.1)
    return model.eval()


def _tame_requant_bn(bn: torch.nn.BatchNorm2d, fan_in: int) -> None:
    """BN statistics for a baseline block that keep |grid * BN(p)| small even at |p| = N.

    The requant branch adds grid * BN(p) itself, not +-delta, and the exporter bounds the head's
    int32 accumulator assuming |p| = N in every block. With the generic statistics above (std ~3
    where p spans +-N), or even with std ~sqrt(N) as data would give, that bound passes 2^31 and
    the export is refused. Here std ~N, so |BN(p)| <= ~2 at |p| = N: the branch still spans
    hundreds of units in the last stage, with negative floors and large multipliers, and the
    static bound stays exportable (int16 residual; tests scale bn.weight up for int32).
    """
    bn.running_var.uniform_(0.5, 2.0).mul_(fan_in**2)
    bn.running_mean.normal_(0, 1).mul_(fan_in**0.5)
    bn.weight.uniform_(-1.0, 1.0)
    bn.bias.uniform_(-0.5, 0.5)


def tiny_images(n: int) -> torch.Tensor:
    return torch.from_numpy(load_sample().images[:n].copy())


def data_calibrated_model(base_channels: int, seed: int = 0, mode: str = "baseline", n_images: int = 64):
    """random_model with every BN as training leaves it: statistics measured on real images.

    A trained baseline's requant branches add grid * BN(p) with BN normalising p by its real
    spread (std ~sqrt(N), not _tame_requant_bn's ~N), so the last-stage residual bound reaches
    tens of thousands and W @ (sum of x) no longer provably fits int32: the head needs a pool
    shift. One train-mode pass with momentum None sets each running statistic to the batch's own.
    """
    model = random_model(base_channels, seed=seed, mode=mode)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.reset_parameters()  # default affine (1, 0) and fresh statistics
            mod.momentum = None  # cumulative average: one pass gives exactly the batch statistics
    model.train()
    with torch.no_grad():
        model(tiny_images(n_images))
    return model.eval()
