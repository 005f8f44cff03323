"""CIFAR-10 loading: the official python pickles through a restricted unpickler, and the shipped sample.

The pickles are untrusted input: only the few globals that a numpy array pickle needs are
allowed, and every file is checked for shape and label range before use.
"""

from __future__ import annotations

import hashlib
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pbkit.paths import SAMPLE_DATA, packaged

TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_BYTES = 3 * 32 * 32
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"


class DatasetError(ValueError):
    """A dataset file that is missing, truncated or not CIFAR-10."""


@dataclass
class Split:
    """Images as uint8 N x 3 x 32 x 32 (CHW, the pickles' own order) and int64 labels."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, n: int | None) -> Split:
        return self if n is None else Split(self.images[:n], self.labels[:n])


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D102 - pickle hook
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        return super().find_class(module, name)


def _load_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{path}: missing (expected the CIFAR-10 python batches; try --download)")
    try:
        with path.open("rb") as f:
            obj = _RestrictedUnpickler(f, encoding="bytes").load()
    except Exception as exc:  # any decode failure means a truncated or foreign file
        raise DatasetError(f"{path}: not a readable CIFAR-10 batch ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(obj, dict) or b"data" not in obj or b"labels" not in obj:
        raise DatasetError(f"{path}: not a CIFAR-10 batch (no data/labels entries)")
    data, labels = obj[b"data"], obj[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
        raise DatasetError(f"{path}: data is not an N x 3072 uint8 array")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (data.shape[0],) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DatasetError(f"{path}: labels do not match the images or are outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def load_split(data_dir: str | Path, split: str) -> Split:
    """Load 'train' (50,000 images) or 'test' (10,000) from a cifar-10-batches-py folder."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder (expected cifar-10-batches-py; try --download)")
    files = {"train": TRAIN_FILES, "test": TEST_FILES}[split]
    parts = [_load_batch(root / name) for name in files]
    return Split(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def load_sample() -> Split:
    """The shipped sample: the first 1,000 images of the official test batch, with labels."""
    with np.load(packaged(SAMPLE_DATA, "the CIFAR-10 test sample"), allow_pickle=False) as npz:
        return Split(npz["images"], npz["labels"].astype(np.int64))


def load(data: str | None, split: str) -> Split:
    """`data` is a cifar-10-batches-py folder, or None / 'sample' for the shipped test sample."""
    if data in (None, "sample"):
        if split != "test":
            raise DatasetError("the shipped sample holds test images only; give --data DIR for training")
        return load_sample()
    return load_split(data, split)


def download(dest: str | Path) -> Path:
    """Fetch the official archive, verify its MD5, and unpack it; returns the batches folder."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "cifar-10-python.tar.gz"
    if not archive.exists():
        tmp = archive.with_suffix(".part")
        with urllib.request.urlopen(ARCHIVE_URL, timeout=60) as resp, tmp.open("wb") as out:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
        tmp.replace(archive)
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    if digest != ARCHIVE_MD5:
        raise DatasetError(f"{archive}: MD5 {digest} does not match the official {ARCHIVE_MD5}")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest / "cifar-10-batches-py"


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop (4-pixel zero pad) and horizontal flip on a uint8 N x 3 x 32 x 32 batch.

    Runs where `images` lives (a GPU keeps the whole set and augments it there); the random
    draws come from the CPU `generator`, so every device sees the same crops and flips.
    """
    n, device = images.shape[0], images.device
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (n,), generator=generator).to(device)
    dy = torch.randint(0, 9, (n,), generator=generator).to(device)
    steps = torch.arange(32, device=device)
    rows = (dy[:, None] + steps[None, :])  # n x 32
    cols = (dx[:, None] + steps[None, :])
    idx_n = torch.arange(n, device=device)[:, None, None, None]
    idx_c = torch.arange(3, device=device)[None, :, None, None]
    out = padded[idx_n, idx_c, rows[:, None, :, None], cols[:, None, None, :]]
    flip = (torch.rand(n, generator=generator) < 0.5).to(device)
    out[flip] = out[flip].flip(-1)
    return out

