"""A tiny CIFAR-10 folder in the official pickle layout, made from the shipped sample's real bytes."""

from __future__ import annotations

import pickle
from pathlib import Path

from pbkit.trainer.data import TEST_FILES, TRAIN_FILES, load_sample


def write_tiny_cifar(root: Path, per_batch: int = 20) -> Path:
    sample = load_sample()
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(TRAIN_FILES + TEST_FILES):
        part = slice(i * per_batch, (i + 1) * per_batch)
        batch = {b"batch_label": name.encode(), b"labels": sample.labels[part].tolist(),
                 b"data": sample.images[part].reshape(-1, 3072), b"filenames": [b"x.png"] * per_batch}
        with (root / name).open("wb") as f:
            pickle.dump(batch, f, protocol=2)
    return root
