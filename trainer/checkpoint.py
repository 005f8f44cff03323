"""Checkpoints as safetensors: tensors plus a JSON config in the metadata. Loading executes no code.

The metadata also carries ``tensors_sha256``, a hash of every tensor (name, dtype, shape, bytes), and
loading checks it: a file whose tensors were changed or damaged after saving is refused. Checkpoints
written before the hash existed (the shipped pretrained model among them) have none and load as before.
Tensors that are NaN or infinite are refused at load, whatever wrote them.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from pbkit.files import atomic_write_bytes

from .model import ModelConfig, PopBinNet18, build_model

FORMAT = "pbkit-checkpoint-1"
CHECKSUM_KEY = "tensors_sha256"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or not a pbkit model."""


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor in name order: its name, dtype, shape and raw bytes."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}\0{str(t.dtype).removeprefix('torch.')}\0{list(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def save_checkpoint(model: PopBinNet18, path: str | Path, extra: dict | None = None) -> None:
    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(model.config.to_dict()), "extra": json.dumps(extra or {}),
            CHECKSUM_KEY: tensors_sha256(tensors)}
    atomic_write_bytes(path, save(tensors, metadata=meta))


def read_metadata(path: str | Path) -> dict:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        if _looks_like_a_pickle(path):
            raise CheckpointError(f"{path}: a torch.save (pickle) file, not a safetensors checkpoint: pbkit never "
                                  "unpickles a model") from None
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a pbkit checkpoint (format {meta.get('format')!r})")
    return meta


def _looks_like_a_pickle(path: Path) -> bool:
    """torch.save writes a zip archive (or, in its legacy format, a bare pickle: protocol 2+ starts 0x80)."""
    with path.open("rb") as f:
        head = f.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def check_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """The checksum (when the checkpoint has one), then finite values: CheckpointError otherwise."""
    recorded = meta.get(CHECKSUM_KEY)
    if recorded is not None and tensors_sha256(tensors) != recorded:
        raise CheckpointError(f"{path}: tensors do not match the checksum in its metadata ({CHECKSUM_KEY}): "
                              "the file was changed or damaged after it was saved")
    for name in sorted(tensors):
        t = tensors[name]
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            raise CheckpointError(f"{path}: tensor {name} holds {nan} NaN and {inf} infinite values of "
                                  f"{t.numel()}: not a usable model (did training diverge?)")


def load_checkpoint(path: str | Path) -> tuple[PopBinNet18, dict]:
    """Returns the model in eval mode and the checkpoint's `extra` dict (epoch, metrics...)."""
    path = Path(path)
    meta = read_metadata(path)
    try:
        config = ModelConfig(**json.loads(meta["config"]))
        extra = json.loads(meta.get("extra", "{}"))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad config in checkpoint ({exc})") from None
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: corrupt tensors ({exc})") from None
    check_tensors(path, tensors, meta)
    model = build_model(config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{path}: tensors do not match {config.model} width {config.width}: {first}") from None
    model.eval()
    return model, extra


def save_train_state(state: dict, path: Path) -> None:
    """Optimizer/scheduler/RNG state for --resume; plain tensors and numbers, loadable weights_only."""
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _torch_load_reason(exc: Exception) -> str:
    """torch.load's refusal in one line, without its advice to load with weights_only=False."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    found = re.search(r"WeightsUnpickler error: (.*?)(?: was not an allowed global|\n|$)", text)
    if found:
        return f"it holds more than tensors and numbers ({found.group(1).strip()}), and pbkit runs no code on load"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def load_train_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable training state: {_torch_load_reason(exc)}") from None
