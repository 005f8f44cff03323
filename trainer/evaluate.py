"""Top-1 / top-5 of a checkpoint, computed by the exact integer graph (what the board computes)."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from .data import CLASSES, Split
from .fold import fold_model
from .integer_graph import integer_logits


def evaluate(model, split: Split, batch: int = 500, progress: bool = False) -> dict:
    """Integer-graph accuracy, and how often the float QAT graph's class differs from it."""
    model.eval()
    if model.config.mode == "real":
        return _evaluate_float(model, split, batch)
    ir = fold_model(model)
    top1 = top5 = disagree = 0
    confusion = np.zeros((model.config.num_classes, model.config.num_classes), dtype=np.int64)
    for i in tqdm(range(0, len(split), batch), disable=not progress, desc="eval", unit="batch"):
        images = torch.from_numpy(split.images[i:i + batch])
        labels = split.labels[i:i + batch]
        logits = integer_logits(ir, images).numpy()
        with torch.no_grad():
            float_cls = model.float_forward(images).argmax(1).numpy()
        cls = np.argmax(logits, axis=1)
        top1 += int((cls == labels).sum())
        # Top-5 with ties broken towards the lower index, like argmax.
        order = np.argsort(-logits, axis=1, kind="stable")[:, :5]
        top5 += int((order == labels[:, None]).any(axis=1).sum())
        disagree += int((float_cls != cls).sum())
        np.add.at(confusion, (labels, cls), 1)
    n = max(1, len(split))
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {"images": len(split), "top1": top1 / n, "top5": top5 / n, "float_integer_disagreement": disagree / n,
            "per_class_top1": {name: float(acc) for name, acc in zip(CLASSES, per_class, strict=True)},
            "confusion": confusion.tolist(), "model_sha256": ir.sha256()}


def _evaluate_float(model, split: Split, batch: int) -> dict:
    """The float teacher (mode 'real') has no integer graph: top-1/top-5 of its float logits."""
    top1 = top5 = 0
    confusion = np.zeros((model.config.num_classes, model.config.num_classes), dtype=np.int64)
    with torch.no_grad():
        for i in range(0, len(split), batch):
            logits = model.float_forward(torch.from_numpy(split.images[i:i + batch])).numpy()
            labels = split.labels[i:i + batch]
            cls = np.argmax(logits, axis=1)
            top1 += int((cls == labels).sum())
            top5 += int((np.argsort(-logits, axis=1, kind="stable")[:, :5] == labels[:, None]).any(axis=1).sum())
            np.add.at(confusion, (labels, cls), 1)
    n = max(1, len(split))
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {"images": len(split), "top1": top1 / n, "top5": top5 / n, "float_integer_disagreement": None,
            "per_class_top1": {name: float(acc) for name, acc in zip(CLASSES, per_class, strict=True)},
            "confusion": confusion.tolist(), "model_sha256": None}

