"""Render an IntegerModel into C sources: a pure function from the model to {file name: text}.

Templates (one per generated file, in templates/) hold only loops; everything computed lives
in `build_context`. Writing files is `export.write_files`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined

import pbkit
from pbkit.ir import IntegerModel

from .pack import pack_channels, words_for
from .plan import MemoryPlan, plan_memory

TEMPLATES = Path(__file__).resolve().parent / "templates"
KERNELS = ("reference", "fast")
PER_LINE = 16


def _c_rows(values, fmt: str = "{}") -> str:
    flat = [fmt.format(int(v)) for v in np.asarray(values).ravel()]
    lines = [", ".join(flat[i:i + PER_LINE]) for i in range(0, len(flat), PER_LINE)]
    return ",\n".join("    " + line for line in lines)


def _c_hex_rows(values) -> str:
    return _c_rows(values, "0x{:08x}u")


def _c_list(values) -> str:
    return ", ".join(str(int(v)) for v in values)


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(c_rows=_c_rows, c_hex_rows=_c_hex_rows, c_list=_c_list)
    return env


def build_context(ir: IntegerModel, kernel: str = "fast", source: str = "a pbkit checkpoint") -> dict:
    """Everything the templates print, flattened into plain numbers and lists."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    plan: MemoryPlan = plan_memory(ir)
    _, h, w = ir.input_shape
    blocks = []
    for blk in ir.blocks:
        in_words = words_for(blk.in_channels)
        padded_row_words = (w + 2) * in_words
        out_h, out_w = h // blk.stride, w // blk.stride
        blocks.append({
            "in_channels": blk.in_channels, "out_channels": blk.out_channels, "stride": blk.stride,
            "delta": blk.delta, "in_height": h, "in_width": w, "out_height": out_h, "out_width": out_w,
            "in_words": in_words, "padded_row_words": padded_row_words, "window_words": 3 * in_words,
            "step_words": blk.stride * in_words, "row_step_words": blk.stride * padded_row_words,
            "row_elements": w * blk.in_channels,
            "pool_ref": f"&pool_{len(blocks)}" if blk.stride == 2 else "0",
            "rsign_threshold": blk.rsign_threshold.astype(np.int64).tolist(),
            "weights": pack_channels(blk.weight_bits).ravel().tolist(),
            "popcount_threshold": blk.popcount_threshold.astype(np.int64).tolist(),
        })
        h, w = out_h, out_w
    sha = ir.sha256()
    meta = ir.meta
    return {
        "version": pbkit.__version__, "source": source, "sha256": sha,
        "sha256_bytes": list(bytes.fromhex(sha)),
        "meta_line": f"{meta.get('model', '?')} width {meta.get('width', '?')} mode {meta.get('mode', '?')}",
        "kernel_fast": 1 if kernel == "fast" else 0, "plan": plan.to_dict(),
        "input_shape": list(ir.input_shape), "num_classes": ir.num_classes,
        "stem": {"weight": ir.stem.weight.ravel().tolist(), "thresholds": ir.stem.thresholds.ravel().tolist(),
                 "channels": ir.stem.weight.shape[0], "levels": ir.stem.levels},
        "blocks": blocks,
        "head": {"weight": ir.head.weight.ravel().tolist(), "bias": ir.head.bias.ravel().tolist(),
                 "positions": h * w, "channels": ir.head.weight.shape[1]},
    }


def render(ir: IntegerModel, kernel: str = "fast", source: str = "a pbkit checkpoint") -> dict[str, str]:
    """IntegerModel -> {"pb_model_config.h": ..., "model_data.c": ...}."""
    context = build_context(ir, kernel, source)
    env = _environment()
    return {name: env.get_template(f"{name}.j2").render(**context)
            for name in ("pb_model_config.h", "model_data.c")}
