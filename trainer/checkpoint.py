"""Checkpoints as safetensors: tensors plus a JSON config in the metadata. Loading executes no code."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from pbkit.files import atomic_write_bytes

from .model import ModelConfig, PopBinNet18, build_model

FORMAT = "pbkit-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or not a pbkit model."""


def save_checkpoint(model: PopBinNet18, path: str | Path, extra: dict | None = None) -> None:
    path = Path(path)
    meta = {"format": FORMAT, "config": json.dumps(model.config.to_dict()), "extra": json.dumps(extra or {})}
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
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
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a pbkit checkpoint (format {meta.get('format')!r})")
    return meta


def load_checkpoint(path: str | Path) -> tuple[PopBinNet18, dict]:
    """Returns the model in eval mode and the checkpoint's `extra` dict (epoch, metrics...)."""
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


def load_train_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable training state ({exc})") from None
