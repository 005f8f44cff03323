"""Render an IntegerModel into C sources: a pure function from the model to {file name: text}.

Templates (one per generated file, in templates/) hold only loops; everything computed lives
in `build_context`. Writing files is `export.write_files`.
"""

from __future__ import annotations

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined

import pbkit
from pbkit.ir import BlockIR, IntegerModel, StemIR
from pbkit.paths import TEMPLATES

from .kernel import Kernel
from .pack import (
    LANE_PAIR_MAX_CHANNELS,
    bitstem_fast_tables,
    bitstem_weight_words,
    fast_interleave_thresholds,
    fast_lane_pair_words,
    fast_rsign_thresholds,
    fast_weight_words,
    head_shift_codes,
    pack_channels,
    slice_table_words,
    stem_fast_words,
    table_words,
    takes_slice_table,
    words_for,
)
from .plan import MemoryPlan, block_takes_slice_table, block_takes_table, plan_memory

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


def _int32_list(values: np.ndarray) -> list[int]:
    return np.asarray(values).astype(np.int64).tolist()


def _branch(blk: BlockIR, index: int, kernel: Kernel) -> dict:
    """The kind-specific part of a block: its note, its int32 arrays and the conv fields naming them.

    A popbin block renders exactly as before requant blocks existed (kind 0 is C's default), so
    popbin exports stay byte-identical; a requant block names its kind and its requant fields.
    The fast kernel reads popbin thresholds from the end of each channel's weights instead.
    """
    if blk.kind in ("popbin", "ternary"):
        ternary = blk.kind == "ternary"
        note = f"ternary, delta {blk.delta}" if ternary else f"delta {blk.delta}"
        block_fields = [".kind = PB_BLOCK_TERNARY"] if ternary else []
        if kernel.fast:
            return {"note": note, "block_fields": block_fields, "branch_arrays": [], "branch_fields": []}
        tables = [("popcount_threshold", blk.popcount_threshold)] + ([("zero_threshold", blk.zero_threshold)]
                                                                      if ternary else [])
        return {"note": note, "block_fields": block_fields,
                "branch_arrays": [{"name": f"{field}_{index}", "numbers": _int32_list(values)}
                                  for field, values in tables],
                "branch_fields": [f".{field} = {field}_{index}" for field, _ in tables]}
    if blk.kind == "requant":
        _check_requant(blk)
        multiplier, bias = f"multiplier_{index}", f"bias_{index}"
        return {"note": f"requant, shift {blk.shift}", "block_fields": [".kind = PB_BLOCK_REQUANT"],
                "branch_arrays": [{"name": multiplier, "numbers": _int32_list(blk.multiplier)},
                                  {"name": bias, "numbers": _int32_list(blk.bias)}],
                "branch_fields": [f".fan_in = {blk.fan_in}", f".shift = {blk.shift}",
                                  f".multiplier = {multiplier}", f".bias = {bias}"]}
    raise ValueError(f"block {index}: unknown kind {blk.kind!r}; the kernels run popbin, ternary and requant "
                     "blocks")


def _check_requant(blk: BlockIR) -> None:
    """The kernel's int32 multiply-add must not wrap for any |p| <= N, and its shift must be valid C."""
    if not 0 <= blk.shift <= 31:
        raise ValueError(f"requant shift {blk.shift} outside 0..31")
    reach = np.abs(blk.multiplier.astype(np.int64)) * blk.fan_in + np.abs(blk.bias.astype(np.int64))
    if reach.max() >= 2**31:
        raise OverflowError(f"requant |p * M + B| can reach {int(reach.max())}, past int32")


def _head_fields(ir: IntegerModel) -> list[str]:
    """Head fields beyond the FC: none without a pool shift (C's 0), so popbin exports stay byte-identical."""
    if not 0 <= ir.head.pool_shift <= 31:
        raise ValueError(f"head pool_shift {ir.head.pool_shift} outside 0..31")
    return [f".pool_shift = {ir.head.pool_shift}"] if ir.head.pool_shift else []


def _weight_words(blk: BlockIR, kernel: Kernel) -> np.ndarray:
    """The packed weights in the layout of the chosen kernel: the fast one shares XORs and follows
    each pair of popbin channels with their popcount thresholds (firmware/kernels/pb_binconv_walk.h)."""
    if not kernel.fast:
        return pack_channels(blk.weight_bits)
    zero = blk.zero_threshold if blk.kind == "ternary" else None
    if block_takes_table(blk, kernel):
        table = slice_table_words if takes_slice_table(blk.in_channels, blk.out_channels) else table_words
        return table(blk.weight_bits, blk.popcount_threshold, zero)
    if blk.kind in ("popbin", "ternary") and blk.in_channels <= LANE_PAIR_MAX_CHANNELS:
        return fast_lane_pair_words(blk.weight_bits, blk.popcount_threshold, zero)
    words = fast_weight_words(blk.weight_bits)
    if blk.kind == "requant":
        return words
    return fast_interleave_thresholds(words, blk.popcount_threshold, zero)


def _rsign_thresholds(blk: BlockIR, kernel: Kernel, bound: int, residual_bits: int) -> np.ndarray:
    """RSign thresholds in the layout of the chosen kernel (the fast one compares int16 pairs)."""
    if kernel.fast:
        return fast_rsign_thresholds(blk.rsign_threshold, bound, residual_bits)
    return blk.rsign_threshold.astype(np.int64)


def stem_tables(stem: StemIR, kernel: Kernel) -> dict:
    """The stem's tables: int8 weights and thresholds (reference), or the fast kernel's packed pairs; for the
    bit-plane stem its thermometer thresholds and weight words (`bitplanes`, pb_stem_bitplanes.c)."""
    tables = {"channels": stem.weight.shape[0], "levels": stem.levels, "bitplanes": None}
    if stem.kind == "bitplanes":
        bit = {"planes": len(stem.input_thresholds), "fan_in": 9 * stem.weight.shape[1],
               "input_thresholds": _int32_list(stem.input_thresholds), "thresholds": [], "masks": [],
               "level_table": []}
        if kernel.fast:
            masks, words, levels = bitstem_fast_tables(stem.weight, stem.thresholds, stem.input_thresholds)
            bit.update(masks=masks.tolist(), level_table=levels.ravel().tolist(), input_thresholds=[])
        else:
            words = bitstem_weight_words(stem.weight)
            bit.update(thresholds=stem.thresholds.ravel().tolist())
        return {**tables, "bitplanes": {**bit, "weights": words.ravel().tolist()}}
    if kernel.fast:
        words, estimate = stem_fast_words(stem.weight, stem.thresholds)
        return {**tables, "packed": words.ravel().tolist(), "estimate": int(estimate)}
    return {**tables, "packed": [], "estimate": 0, "weight": stem.weight.ravel().tolist(),
            "thresholds": stem.thresholds.ravel().tolist()}


def block_tables(blk: BlockIR, index: int, height: int, width: int, kernel: Kernel, bound: int,
                 residual_bits: int) -> dict:
    """One binary block on an input of height x width, in the chosen kernel's layout: the fields of its
    RSign, pooling and conv parameters and its tables (the RSign thresholds clamped to `bound`, the
    residual's static bound entering the block)."""
    in_words = words_for(blk.in_channels)
    padded_row_words = (width + 2) * in_words
    field = "table" if block_takes_table(blk, kernel) else "weights"
    return {
        "in_channels": blk.in_channels, "out_channels": blk.out_channels, "stride": blk.stride,
        "delta": blk.delta, "in_height": height, "in_width": width,
        "out_height": height // blk.stride, "out_width": width // blk.stride,
        "in_words": in_words, "padded_row_words": padded_row_words, "window_words": 3 * in_words,
        "step_words": blk.stride * in_words, "row_step_words": blk.stride * padded_row_words,
        "row_elements": width * blk.in_channels,
        "pool_ref": f"&pool_{index}" if blk.stride == 2 else "0",
        "rsign_threshold": _rsign_thresholds(blk, kernel, bound, residual_bits).tolist(),
        "weights": _weight_words(blk, kernel).ravel().tolist(),
        "weights_name": f"{field}_{index}", "weights_field": field,
        **_branch(blk, index, kernel),
    }


def build_context(ir: IntegerModel, kernel: Kernel = Kernel.FAST, source: str = "a pbkit checkpoint",
                  plan: MemoryPlan | None = None) -> dict:
    """Everything the templates print, flattened into plain numbers and lists. `plan` is the memory plan of
    `ir` for `kernel` when the caller has made it (an export makes it once), else it is made here."""
    per_channel = [i for i, blk in enumerate(ir.blocks) if blk.channel_delta is not None]
    if per_channel:
        raise ValueError(f"{len(per_channel)} of {len(ir.blocks)} blocks have one delta per output channel "
                         "(--delta-per-channel): the C kernels add one delta per layer, so this model trains and "
                         "evaluates here but does not export; train without --delta-per-channel to deploy")
    if plan is None:
        plan = plan_memory(ir, kernel)
    elif plan.kernel is not kernel:
        raise ValueError(f"a memory plan for the {plan.kernel} kernel cannot render the {kernel} one")
    _, h, w = ir.input_shape
    bounds = ir.residual_bound()  # bounds[i]: |x| entering block i
    blocks = []
    for blk in ir.blocks:
        blocks.append(block_tables(blk, len(blocks), h, w, kernel, bounds[len(blocks)], plan.residual_bits))
        h, w = h // blk.stride, w // blk.stride
    sha = ir.sha256()
    meta = ir.meta
    return {
        "version": pbkit.__version__, "source": source, "sha256": sha,
        "sha256_bytes": list(bytes.fromhex(sha)),
        "meta_line": f"{meta.get('model', '?')} width {meta.get('width', '?')} mode {meta.get('mode', '?')}",
        "kernel_fast": int(kernel.fast), "plan": plan.to_dict(),
        "input_shape": list(ir.input_shape), "num_classes": ir.num_classes,
        "stem": stem_tables(ir.stem, kernel),
        "blocks": blocks, "has_ternary": any(blk.kind == "ternary" for blk in ir.blocks),
        "has_tables": any(block_takes_table(blk, kernel) for blk in ir.blocks),
        "has_slices": any(block_takes_slice_table(blk, kernel) for blk in ir.blocks),
        "head_shift": ir.head.kind == "shift",
        "multiply_free_blocks": ((ir.stem.kind == "bitplanes" or ir.head.kind == "shift")
                                 and all(blk.kind != "requant" for blk in ir.blocks)),
        "head": {"weight": (head_shift_codes(ir.head.weight) if ir.head.kind == "shift"
                            else ir.head.weight).ravel().tolist(), "bias": ir.head.bias.ravel().tolist(),
                 "positions": h * w, "channels": ir.head.weight.shape[1], "fields": _head_fields(ir)},
    }


def render(ir: IntegerModel, kernel: Kernel = Kernel.FAST, source: str = "a pbkit checkpoint",
           plan: MemoryPlan | None = None) -> dict[str, str]:
    """IntegerModel -> {"pb_model_config.h": ..., "model_data.c": ...} (`plan`: as for build_context)."""
    context = build_context(ir, kernel, source, plan)
    env = _environment()
    return {name: env.get_template(f"{name}.j2").render(**context)
            for name in ("pb_model_config.h", "model_data.c")}
