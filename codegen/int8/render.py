"""Render a lowered int8 network into C: a pure function from the network to {file name: text}.

One template (templates/int8_model_data.c.j2) per generated file; it only loops over the plain
numbers and lists that :func:`build_context` prepares.
"""

from __future__ import annotations

from jinja2 import Environment, FileSystemLoader, StrictUndefined

import pbkit
from pbkit.paths import INT8_TEMPLATES

from .lower import Int8Network, Layer

MODEL_FILE = "int8_model_data.c"
PER_LINE = 16


def _c_rows(values) -> str:
    flat = [str(int(v)) for v in values]
    return ",\n".join("    " + ", ".join(flat[i:i + PER_LINE]) for i in range(0, len(flat), PER_LINE))


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(INT8_TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["c_rows"] = _c_rows
    return env


def _dims(shape: tuple[int, int, int, int]) -> list[int]:
    return [int(v) for v in shape]


def _layer_context(layer: Layer) -> dict:
    p = dict(layer.params)
    ctx = {"name": layer.name, "kind": layer.kind, "p": p, "macs": layer.macs,
           "inputs": [a.offset for a in layer.inputs], "output": layer.output.offset,
           "input_dims": _dims(layer.inputs[0].shape), "output_dims": _dims(layer.output.shape),
           "arrays": [{"name": f"{layer.name}_{key}", "ctype": ctype, "values": arr.ravel().tolist(),
                       "count": int(arr.size)} for key, (ctype, arr) in layer.arrays.items()]}
    if layer.kind == "conv":
        ctx["filter_dims"] = [p["out_channels"], p["kernel_h"], p["kernel_w"], p["in_channels"]]
    elif layer.kind == "avgpool":
        ctx["filter_dims"] = [1, p["filter_h"], p["filter_w"], 1]
    elif layer.kind == "fc":
        ctx["input_dims"] = [1, 1, 1, p["depth"]]
        ctx["filter_dims"] = [p["depth"], 1, 1, p["units"]]
        ctx["output_dims"] = [1, 1, 1, p["units"]]
    return ctx


def build_context(net: Int8Network) -> dict:
    c, h, w = net.input_chw
    return {"version": pbkit.__version__, "source": net.source, "sha256": net.sha256,
            "sha256_bytes": list(bytes.fromhex(net.sha256)), "channels": c, "height": h, "width": w,
            "num_classes": net.num_classes, "arena_bytes": net.arena_bytes, "scratch_bytes": net.scratch_bytes,
            "input_offset": net.input.offset, "input_zero_point": net.input.zero_point,
            "output_offset": net.output.offset, "logits_offset": net.logits.offset, "macs": net.macs,
            "weight_bytes": net.weight_bytes,
            "layers": [_layer_context(layer) for layer in net.layers]}


def render(net: Int8Network) -> dict[str, str]:
    """Int8Network -> {"int8_model_data.c": ...}."""
    return {MODEL_FILE: _environment().get_template(f"{MODEL_FILE}.j2").render(**build_context(net))}
