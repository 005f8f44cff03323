"""`pbkit export`: checkpoint -> integer model -> C sources + memory report + test vectors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from pbkit.boards import Board
from pbkit.files import atomic_write_bytes
from pbkit.ir import IntegerModel, check_ranges

from .kernel import Kernel
from .plan import MemoryPlan, check_fits, plan_memory
from .reference import run as reference_run
from .render import render

VECTORS_MAGIC = b"PBTV"
VECTORS_VERSION = 1


def memory_report(ir: IntegerModel, board: Board, plan: MemoryPlan) -> dict:
    return {"board": board.name, "mcu": board.mcu, "kernel": plan.kernel.value, "model_sha256": ir.sha256(),
            "model": {k: ir.meta.get(k) for k in ("model", "width", "mode", "division")},
            "flash_bytes_model": plan.model_flash_bytes, "ram_bytes_model": plan.model_ram_bytes,
            "board_flash_bytes": board.flash_bytes, "board_ram_bytes": board.ram_bytes,
            "plan": plan.to_dict(),
            "note": "model data and buffers only; `pbkit build` adds the firmware's code and stack"}


def test_vectors(ir: IntegerModel, images: np.ndarray) -> bytes:
    """Versioned binary golden file: magic, version, count, classes, image bytes, then logits."""
    logits = reference_run(ir, images).astype("<i4")
    c, h, w = ir.input_shape
    header = VECTORS_MAGIC + struct.pack("<IIII", VECTORS_VERSION, len(images), ir.num_classes, c * h * w)
    return header + np.ascontiguousarray(images, dtype=np.uint8).tobytes() + logits.tobytes()


def export_files(ir: IntegerModel, board: Board, kernel: Kernel, source: str,
                 golden_images: np.ndarray | None = None) -> dict[str, bytes]:
    """Everything `pbkit export` writes, as {relative path: bytes}; refuses a model that does not fit.
    The memory plan is made once here and used for the fit, the C tables and the report."""
    check_ranges(ir)
    plan = plan_memory(ir, kernel)
    check_fits(plan, board)
    files = {name: text.encode() for name, text in render(ir, kernel, source, plan).items()}
    files["memory_report.json"] = (json.dumps(memory_report(ir, board, plan), indent=2) + "\n").encode()
    if golden_images is not None:
        files["test_vectors.bin"] = test_vectors(ir, golden_images)
    return files


def write_files(files: dict[str, bytes], out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    written = []
    for name, data in files.items():
        atomic_write_bytes(out_dir / name, data)
        written.append(out_dir / name)
    return written
