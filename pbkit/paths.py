"""Where pbkit's non-Python parts live (firmware sources, shipped model and data)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def firmware_dir() -> Path:
    path = ROOT / "firmware"
    if not (path / "kernels").is_dir():
        raise FileNotFoundError(f"{path}: firmware sources not found; pbkit runs from a source checkout "
                                "(pip install -e .)")
    return path


PRETRAINED = Path(__file__).resolve().parent / "pretrained"
DEFAULT_CHECKPOINT = PRETRAINED / "reactnet18-w0.25-popbin.safetensors"
