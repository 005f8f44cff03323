"""Lower a TFLite int8 graph to CMSIS-NN layers: TFLite's integer quantization parameters, computed
exactly as TFLite computes them, and a static arena for the activations.

Every function here is pure. The parameter formulas follow TFLite's kernels (and TFLM's, which
CMSIS-NN is tested against): per-channel conv and per-tensor fully-connected multipliers from
``input_scale * filter_scale / output_scale`` in double precision, ADD with a 20-bit left shift
and multipliers relative to twice the larger input scale, softmax with 5 integer bits for the
scaled difference, fused activations as clamps in the output's quantized domain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .tflite_reader import Graph, Operator, Tensor

INT8_MIN, INT8_MAX = -128, 127
ADD_LEFT_SHIFT = 20  # TFLite's left shift for int8 ADD
SOFTMAX_DIFF_INTEGER_BITS = 5  # TFLite's kScaledDiffIntegerBits
ARENA_ALIGN = 8
SUPPORTED = ("CONV_2D", "ADD", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX")


class UnsupportedModelError(ValueError):
    """The graph uses an operator or a quantization the yardstick does not lower."""


# ---- TFLite's quantization arithmetic ------------------------------------------------------


def _round_half_away(x: float) -> int:
    """std::round (TfLiteRound): halves away from zero, unlike Python's round()."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = multiplier * 2**(shift - 31), multiplier in [2**30, 2**31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    fixed = _round_half_away(q * (1 << 31))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if fixed > 2**31 - 1:
        raise UnsupportedModelError(f"multiplier {real} does not fit int32")
    return fixed, shift


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized for an int8 output."""

    def quantize(f: float) -> int:
        return int(zero_point) + _round_half_away(float(np.float32(f) / np.float32(scale)))

    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    if activation == "RELU":
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == "RELU6":
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(INT8_MIN, quantize(-1.0)), min(INT8_MAX, quantize(1.0))
    raise UnsupportedModelError(f"fused activation {activation} is not supported")


def same_padding(size: int, filt: int, stride: int, dilation: int, padding: str) -> tuple[int, int]:
    """(output size, leading pad) as TFLite's ComputePaddingHeightWidth; the odd pixel goes after."""
    effective = (filt - 1) * dilation + 1
    out = (size + stride - 1) // stride if padding == "SAME" else (size + stride - effective) // stride
    total = max((out - 1) * stride + effective - size, 0)
    return out, total // 2


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """(multiplier, left shift, diff_min) as TFLite's PreprocessSoftmaxScaling and CalculateInputRadius."""
    bits = SOFTMAX_DIFF_INTEGER_BITS
    real = min(float(beta) * float(input_scale) * (1 << (31 - bits)), (1 << 31) - 1.0)
    multiplier, shift = quantize_multiplier(real)
    if shift < 0:
        raise UnsupportedModelError("softmax input scale too small for TFLite's scaling")
    radius = math.floor(1.0 * ((1 << bits) - 1) * (1 << (31 - bits)) / (1 << shift))
    return multiplier, shift, -radius


# ---- the lowered network -------------------------------------------------------------------


@dataclass(frozen=True)
class Activation:
    """An activation tensor in the arena (NHWC int8)."""

    name: str
    shape: tuple[int, int, int, int]
    offset: int
    scale: float
    zero_point: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # conv, add, avgpool, fc, softmax
    inputs: tuple[Activation, ...]
    output: Activation
    params: dict  # integers the C op table holds
    arrays: dict = field(default_factory=dict)  # name -> (C type, np.ndarray): weights, bias, multipliers, shifts
    macs: int = 0


@dataclass(frozen=True)
class Int8Network:
    layers: tuple[Layer, ...]
    input: Activation  # NHWC; the board's uint8 CHW image becomes pixel + zero_point here
    output: Activation
    arena_bytes: int
    scratch_bytes: int
    sha256: str
    source: str

    @property
    def logits(self) -> Activation:
        """What the board reports as logits: the final softmax's input (else the output itself)."""
        last = self.layers[-1]
        return last.inputs[0] if last.kind == "softmax" else self.output

    @property
    def num_classes(self) -> int:
        return self.output.size

    @property
    def input_chw(self) -> tuple[int, int, int]:
        _, h, w, c = self.input.shape
        return c, h, w

    @property
    def weight_bytes(self) -> int:
        return sum(a.nbytes for layer in self.layers for _, a in layer.arrays.values())

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


def _nhwc(t: Tensor) -> tuple[int, int, int, int]:
    s = t.shape
    if len(s) == 4:
        return tuple(s)  # type: ignore[return-value]
    if len(s) == 2:
        return (s[0], 1, 1, s[1])
    raise UnsupportedModelError(f"tensor {t.name}: shape {s} is neither NHWC nor [N, C]")


def _scalar_quant(t: Tensor) -> tuple[float, int]:
    if t.dtype is not np.int8 or len(t.scale) != 1:
        raise UnsupportedModelError(f"tensor {t.name}: expected a per-tensor quantized int8 tensor")
    return float(t.scale[0]), int(t.zero_point[0])


def _check_batch(t: Tensor) -> None:
    if t.shape and t.shape[0] != 1:
        raise UnsupportedModelError(f"tensor {t.name}: batch {t.shape[0]}, the yardstick runs batch 1")


def _const(graph: Graph, index: int, what: str, dtype: type) -> np.ndarray:
    t = graph.tensors[index]
    if t.data is None or t.dtype is not dtype:
        raise UnsupportedModelError(f"{what} {t.name}: expected constant {np.dtype(dtype).name} data")
    return t.data


def _conv(graph: Graph, op: Operator, act, name: str) -> Layer:
    x, w_t, out_t = (graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]])
    weight = _const(graph, op.inputs[1], "conv filter", np.int8)
    cout, kh, kw, cin = weight.shape
    bias = (_const(graph, op.inputs[2], "conv bias", np.int32) if len(op.inputs) > 2 and op.inputs[2] >= 0
            else np.zeros(cout, np.int32))
    in_scale, in_zp = _scalar_quant(x)
    out_scale, out_zp = _scalar_quant(out_t)
    if np.any(w_t.zero_point != 0):
        raise UnsupportedModelError(f"conv filter {w_t.name}: CMSIS-NN needs symmetric (zero point 0) weights")
    scales = w_t.scale if len(w_t.scale) == cout else np.full(cout, w_t.scale[0], np.float32)
    mult_shift = [quantize_multiplier(float(in_scale) * float(s) / float(out_scale)) for s in scales]
    (sh, sw), (dh, dw) = op.options["stride"], op.options["dilation"]
    _, h, w, _ = _nhwc(x)
    out_h, pad_h = same_padding(h, kh, sh, dh, op.options["padding"])
    out_w, pad_w = same_padding(w, kw, sw, dw, op.options["padding"])
    if (1, out_h, out_w, cout) != _nhwc(out_t):
        raise UnsupportedModelError(f"conv {name}: output shape {out_t.shape} != computed {(1, out_h, out_w, cout)}")
    lo, hi = activation_range(op.options["activation"], out_scale, out_zp)
    return Layer(name=name, kind="conv", inputs=(act(x),), output=act(out_t), params={
        "input_offset": -in_zp, "output_offset": out_zp, "stride_h": sh, "stride_w": sw, "pad_h": pad_h,
        "pad_w": pad_w, "dilation_h": dh, "dilation_w": dw, "act_min": lo, "act_max": hi,
        "kernel_h": kh, "kernel_w": kw, "in_channels": cin, "out_channels": cout},
        arrays={"weight": ("int8_t", weight), "bias": ("int32_t", bias.astype(np.int32)),
                "multiplier": ("int32_t", np.array([m for m, _ in mult_shift], np.int32)),
                "shift": ("int32_t", np.array([s for _, s in mult_shift], np.int32))},
        macs=out_h * out_w * cout * kh * kw * cin)


def _add(graph: Graph, op: Operator, act, name: str) -> Layer:
    a, b, out_t = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    if a.shape != b.shape or a.shape != out_t.shape:
        raise UnsupportedModelError(f"add {name}: broadcasting ({a.shape} + {b.shape}) is not supported")
    (sa, za), (sb, zb), (so, zo) = _scalar_quant(a), _scalar_quant(b), _scalar_quant(out_t)
    twice_max = 2.0 * max(sa, sb)
    m1, s1 = quantize_multiplier(sa / twice_max)
    m2, s2 = quantize_multiplier(sb / twice_max)
    mo, shift_o = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * so))
    if s1 > 0 or s2 > 0:
        raise UnsupportedModelError(f"add {name}: input multiplier above one")
    lo, hi = activation_range(op.options["activation"], so, zo)
    return Layer(name=name, kind="add", inputs=(act(a), act(b)), output=act(out_t), params={
        "input1_offset": -za, "input1_mult": m1, "input1_shift": s1, "input2_offset": -zb, "input2_mult": m2,
        "input2_shift": s2, "left_shift": ADD_LEFT_SHIFT, "output_offset": zo, "output_mult": mo,
        "output_shift": shift_o, "act_min": lo, "act_max": hi, "size": int(np.prod(out_t.shape))})


def _avgpool(graph: Graph, op: Operator, act, name: str) -> Layer:
    x, out_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    (si, zi), (so, zo) = _scalar_quant(x), _scalar_quant(out_t)
    if si != so or zi != zo:
        raise UnsupportedModelError(f"average pool {name}: input and output quantization differ")
    (fh, fw), (sh, sw) = op.options["filter"], op.options["stride"]
    _, h, w, c = _nhwc(x)
    out_h, pad_h = same_padding(h, fh, sh, 1, op.options["padding"])
    out_w, pad_w = same_padding(w, fw, sw, 1, op.options["padding"])
    lo, hi = activation_range(op.options["activation"], so, zo)
    return Layer(name=name, kind="avgpool", inputs=(act(x),), output=act(out_t), params={
        "stride_h": sh, "stride_w": sw, "pad_h": pad_h, "pad_w": pad_w, "filter_h": fh, "filter_w": fw,
        "act_min": lo, "act_max": hi, "channels": c})


def _fully_connected(graph: Graph, op: Operator, act, name: str) -> Layer:
    x, w_t, out_t = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    weight = _const(graph, op.inputs[1], "fully-connected weights", np.int8)
    units, depth = weight.shape
    bias = (_const(graph, op.inputs[2], "fully-connected bias", np.int32) if len(op.inputs) > 2 and op.inputs[2] >= 0
            else np.zeros(units, np.int32))
    if op.options.get("weights_format", 0) != 0:
        raise UnsupportedModelError(f"fully connected {name}: shuffled weights are not supported")
    (si, zi), (so, zo) = _scalar_quant(x), _scalar_quant(out_t)
    if len(w_t.scale) != 1 or np.any(w_t.zero_point != 0):
        raise UnsupportedModelError(f"fully connected {name}: expected per-tensor symmetric weights")
    # TFLite's GetQuantizedConvolutionMultipler multiplies the two scales in float, then divides in double.
    m, s = quantize_multiplier(float(np.float32(si) * np.float32(w_t.scale[0])) / float(so))
    lo, hi = activation_range(op.options["activation"], so, zo)
    return Layer(name=name, kind="fc", inputs=(act(x),), output=act(out_t), params={
        "input_offset": -zi, "filter_offset": 0, "output_offset": zo, "multiplier": m, "shift": s,
        "act_min": lo, "act_max": hi, "depth": depth, "units": units},
        arrays={"weight": ("int8_t", weight), "bias": ("int32_t", bias.astype(np.int32))}, macs=units * depth)


def _softmax(graph: Graph, op: Operator, act, name: str) -> Layer:
    x, out_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    (si, _), (so, zo) = _scalar_quant(x), _scalar_quant(out_t)
    if so != 1.0 / 256 or zo != -128:
        raise UnsupportedModelError(f"softmax {name}: int8 output must have scale 1/256 and zero point -128")
    multiplier, shift, diff_min = softmax_params(op.options["beta"], si)
    shape = _nhwc(x)
    return Layer(name=name, kind="softmax", inputs=(act(x),), output=act(out_t), params={
        "rows": shape[0] * shape[1] * shape[2], "row_size": shape[3], "multiplier": multiplier, "shift": shift,
        "diff_min": diff_min})


LOWER = {"CONV_2D": _conv, "ADD": _add, "AVERAGE_POOL_2D": _avgpool, "FULLY_CONNECTED": _fully_connected,
         "SOFTMAX": _softmax}
SHORT = {"CONV_2D": "conv", "ADD": "add", "AVERAGE_POOL_2D": "avgpool", "FULLY_CONNECTED": "fc", "SOFTMAX": "softmax"}


# ---- arena ---------------------------------------------------------------------------------


def _align(n: int) -> int:
    return (n + ARENA_ALIGN - 1) // ARENA_ALIGN * ARENA_ALIGN


def plan_arena(sizes: dict[int, int], lifetimes: dict[int, tuple[int, int]]) -> tuple[dict[int, int], int]:
    """Greedy by size (TFLM's idea): each buffer, largest first, takes the lowest offset that does not
    overlap a placed buffer alive at the same time. Returns ({buffer: offset}, arena bytes)."""
    placed: list[tuple[int, int, int, int]] = []  # offset, end, first, last
    offsets = {}
    for buf in sorted(sizes, key=lambda b: (-sizes[b], lifetimes[b][0], b)):
        first, last = lifetimes[buf]
        size = _align(sizes[buf])
        busy = sorted((o, e) for o, e, f, la in placed if f <= last and first <= la)
        offset = 0
        for o, e in busy:
            if offset + size <= o:
                break
            offset = max(offset, e)
        offsets[buf] = offset
        placed.append((offset, offset + size, first, last))
    return offsets, max((e for _, e, _, _ in placed), default=0)


def _scratch_bytes(layers: list[Layer]) -> int:
    """An upper bound of CMSIS-NN's scratch needs on Cortex-M4/M7 (DSP, no MVE) and plain C: im2col of
    two columns of int16 for a conv, one int32 per channel for average pooling. The runtime checks
    the library's own *_get_buffer_size against it before every call."""
    need = 0
    for layer in layers:
        if layer.kind == "conv":
            cols = layer.params["kernel_h"] * layer.params["kernel_w"] * layer.params["in_channels"]
            need = max(need, 2 * (cols + (-cols) % 4) * 2)
        elif layer.kind == "avgpool":
            need = max(need, 4 * layer.params["channels"])
    return _align(need)


def lower(graph: Graph) -> Int8Network:
    """The graph as CMSIS-NN layers over one arena; RESHAPE becomes an alias (no code)."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedModelError("the yardstick runs models with one input and one output")
    unsupported = sorted({op.kind for op in graph.operators if op.kind not in SUPPORTED})
    if unsupported:
        raise UnsupportedModelError(f"operators not supported: {', '.join(unsupported)} (supported: "
                                    f"{', '.join(SUPPORTED)})")
    alias: dict[int, int] = {}  # reshape output -> the tensor holding its bytes

    def root(i: int) -> int:
        while i in alias:
            i = alias[i]
        return i

    compute = []
    for op in graph.operators:
        if op.kind == "RESHAPE":
            alias[op.outputs[0]] = root(op.inputs[0])
        else:
            compute.append(op)
    # Lifetimes in op steps; the input is written at step -1 (the uint8 -> int8 conversion).
    input_index, output_index = root(graph.inputs[0]), root(graph.outputs[0])
    lifetimes: dict[int, list[int]] = {input_index: [-1, -1]}
    for step, op in enumerate(compute):
        for i in op.inputs[:2] if op.kind in ("ADD",) else op.inputs[:1]:
            lifetimes[root(i)][1] = step
        lifetimes.setdefault(root(op.outputs[0]), [step, step])
    lifetimes[output_index][1] = len(compute)
    sizes = {i: graph.tensors[i].nbytes for i in lifetimes}
    offsets, arena = plan_arena(sizes, {i: tuple(v) for i, v in lifetimes.items()})

    def act(t: Tensor) -> Activation:
        r = root(t.index)
        scale, zp = _scalar_quant(t)
        return Activation(name=graph.tensors[r].name, shape=_nhwc(graph.tensors[r]), offset=offsets[r],
                          scale=scale, zero_point=zp)

    for i in (graph.inputs[0], graph.outputs[0]):
        _check_batch(graph.tensors[i])
    counts: dict[str, int] = {}
    layers = []
    for op in compute:
        short = SHORT[op.kind]
        name = f"{short}{counts.get(short, 0)}"
        counts[short] = counts.get(short, 0) + 1
        layers.append(LOWER[op.kind](graph, op, act, name))
    inp = act(graph.tensors[graph.inputs[0]])
    if inp.scale != 1.0:
        raise UnsupportedModelError(f"input scale {inp.scale}: the board receives uint8 pixels, so the model's input "
                                    "must be pixel + zero_point (scale 1.0)")
    return Int8Network(layers=tuple(layers), input=inp, output=act(graph.tensors[graph.outputs[0]]),
                       arena_bytes=arena, scratch_bytes=_scratch_bytes(layers), sha256=graph.sha256,
                       source=graph.source)
