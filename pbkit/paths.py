"""Where pbkit's non-Python parts live (firmware sources, shipped model and data)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The firmware and kernel sources; pbkit runs from a source checkout (pip install -e .).
FIRMWARE_DIR = ROOT / "firmware"


PRETRAINED = Path(__file__).resolve().parent / "pretrained"
