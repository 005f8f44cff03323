"""Top-1 / top-5 of a checkpoint, computed by the exact integer graph (what the board computes)."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from .data import CLASSES, Split
from .fold import fold_model
from .integer_graph import integer_logits


def evaluate(model, split: Split, batch: int = 500, progress: bool = False) -> dict:
    """Integer-graph accuracy, and how often the float QAT graph's class differs from it.

    The float teacher (mode 'real') has no integer graph: its float logits are scored instead.
    """
    model.eval()
    ir = None if model.config.mode == "real" else fold_model(model)
    top1 = top5 = disagree = 0
    confusion = np.zeros((model.config.num_classes, model.config.num_classes), dtype=np.int64)
    for i in tqdm(range(0, len(split), batch), disable=not progress, desc="eval", unit="batch"):
        images = torch.from_numpy(split.images[i:i + batch])
        labels = split.labels[i:i + batch]
        with torch.no_grad():
            float_logits = model.float_forward(images).numpy()
        logits = float_logits if ir is None else integer_logits(ir, images).numpy()
        cls = np.argmax(logits, axis=1)
        top1 += int((cls == labels).sum())
        # Top-5 with ties broken towards the lower index, like argmax.
        order = np.argsort(-logits, axis=1, kind="stable")[:, :5]
        top5 += int((order == labels[:, None]).any(axis=1).sum())
        disagree += int((float_logits.argmax(1) != cls).sum())
        np.add.at(confusion, (labels, cls), 1)
    n = max(1, len(split))
    shown = confusion.sum(axis=1)
    # A class the split does not contain has no accuracy (None), not 0 %.
    per_class = [None if count == 0 else float(confusion[c, c] / count) for c, count in enumerate(shown)]
    return {"images": len(split), "top1": top1 / n, "top5": top5 / n,
            "float_integer_disagreement": None if ir is None else disagree / n,
            "per_class_top1": dict(zip(CLASSES, per_class, strict=True)),
            "confusion": confusion.tolist(), "model_sha256": None if ir is None else ir.sha256()}
