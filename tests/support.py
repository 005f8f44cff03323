"""Test inputs: random PopBin models with non-trivial folds, and real images from the shipped sample."""

from __future__ import annotations

import torch

from pbkit.trainer.data import load_sample
from pbkit.trainer.model import ModelConfig, build_model


def random_model(base_channels: int, seed: int = 0):
    """A model whose folds exercise negative scales, flipped channels and off-grid thresholds."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig(width=base_channels / 64))
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
        model.fc.weight.normal_(0, 0.1)
        model.fc.bias.normal_(0, 0.1)
    return model.eval()



def tiny_images(n: int) -> torch.Tensor:
    return torch.from_numpy(load_sample().images[:n].copy())
