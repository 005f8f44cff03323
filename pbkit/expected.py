"""What PyTorch eval says for each image of a pbkit checkpoint: the answers `pbkit bench` and
`pbkit profile` hold a board to.

The command line's side of the one-way imports (trainer -> ir <- codegen <- host <- cli): the
trainer loads and folds the checkpoint and runs its integer graph (bit for bit what
``model.eval()`` computes); pbkit.host gets only the folded model and these answers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pbkit.host.bench import Expected
from pbkit.ir import IntegerModel


def load_folded(checkpoint: Path | str) -> IntegerModel:
    """The integer model of a checkpoint (loaded and checked by pbkit.trainer.checkpoint)."""
    from pbkit.trainer.checkpoint import load_checkpoint
    from pbkit.trainer.fold import fold_model

    model, _ = load_checkpoint(checkpoint)
    return fold_model(model)


def expected_from_ir(ir: IntegerModel, images: np.ndarray) -> Expected:
    """The integer graph's logits and classes for uint8 images N x C x H x W."""
    import torch

    from pbkit.trainer.integer_graph import integer_logits

    logits = integer_logits(ir, torch.from_numpy(np.ascontiguousarray(images))).numpy()
    return Expected.from_logits(ir.sha256(), logits)


def expected_from_checkpoint(checkpoint: Path | str, images: np.ndarray) -> Expected:
    """:func:`expected_from_ir` of the checkpoint's model, folded once."""
    return expected_from_ir(load_folded(checkpoint), images)
