"""Lowering to CMSIS-NN: TFLite's quantization arithmetic, the arena plan, the ResNet-8 layers."""

import math

import numpy as np
import pytest
from int8_support import model_path, require_packages

from pbkit.codegen.int8.lower import (
    UnsupportedModelError,
    activation_range,
    lower,
    plan_arena,
    quantize_multiplier,
    same_padding,
    softmax_params,
)
from pbkit.codegen.int8.tflite_reader import Graph, Operator


def test_quantize_multiplier_is_tflites():
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    # Exactly halfway between two fixed-point values rounds away from zero (std::round), not to even.
    real = (2**30 + 0.5) / 2**31
    assert quantize_multiplier(real) == (2**30 + 1, 0)
    # A significand that rounds up to 2**31 renormalises.
    assert quantize_multiplier(1 - 2**-40) == (1 << 30, 1)
    assert quantize_multiplier(1e-12) == (0, 0)  # shift below -31: all bits shifted out
    m, s = quantize_multiplier(0.0123)
    assert math.isclose(m * 2.0 ** (s - 31), 0.0123, rel_tol=1e-9)


def test_activation_range_and_padding():
    assert activation_range("NONE", 0.1, 5) == (-128, 127)
    assert activation_range("RELU", 0.1, -128) == (-128, 127)
    assert activation_range("RELU", 0.1, 4) == (4, 127)
    assert activation_range("RELU6", 0.05, -128) == (-128, -8)
    with pytest.raises(UnsupportedModelError):
        activation_range("TANH", 0.1, 0)
    assert same_padding(32, 3, 1, 1, "SAME") == (32, 1)
    assert same_padding(32, 3, 2, 1, "SAME") == (16, 0)  # the odd pixel goes after
    assert same_padding(32, 1, 2, 1, "SAME") == (16, 0)
    assert same_padding(8, 8, 8, 1, "VALID") == (1, 0)


def test_softmax_params():
    multiplier, shift, diff_min = softmax_params(1.0, 0.17185351)
    assert 2**30 <= multiplier < 2**31 and shift >= 0
    real = 0.17185351 * 2**26
    assert math.isclose(multiplier * 2.0 ** (shift - 31), real, rel_tol=1e-9)
    assert diff_min == -math.floor(31 * 2**26 / 2**shift)


def test_arena_plan_never_overlaps_live_buffers():
    rng = np.random.default_rng(0)
    sizes = {i: int(rng.integers(1, 5000)) for i in range(12)}
    lifetimes = {}
    for i in sizes:
        first = int(rng.integers(0, 10))
        lifetimes[i] = (first, first + int(rng.integers(0, 4)))
    offsets, total = plan_arena(sizes, lifetimes)
    for a in sizes:
        assert offsets[a] % 8 == 0 and offsets[a] + sizes[a] <= total
        for b in sizes:
            live = lifetimes[a][0] <= lifetimes[b][1] and lifetimes[b][0] <= lifetimes[a][1]
            if a < b and live:
                assert offsets[a] + sizes[a] <= offsets[b] or offsets[b] + sizes[b] <= offsets[a]
    assert total < sum(sizes.values())  # buffers that never meet share memory


def test_lowers_resnet8():
    require_packages("tflite")
    from pbkit.codegen.int8.tflite_reader import read_tflite

    net = lower(read_tflite(model_path()))
    kinds = [layer.kind for layer in net.layers]
    assert kinds == ["conv", "conv", "conv", "add", "conv", "conv", "conv", "add", "conv", "conv", "conv", "add",
                     "avgpool", "fc", "softmax"]  # RESHAPE is an alias, no code
    assert net.macs == 12_501_632
    assert net.input.shape == (1, 32, 32, 3) and net.input.zero_point == -128
    assert net.num_classes == 10 and net.logits is net.layers[-1].inputs[0]
    assert net.arena_bytes == 3 * 32 * 32 * 16  # three 16 KiB activations live at once around the first add
    assert net.scratch_bytes >= 2 * (9 * 64) * 2
    for layer in net.layers:
        for a in layer.inputs:
            assert not (a.offset < layer.output.offset + layer.output.size and layer.output.offset < a.offset + a.size)
    conv = net.layers[0]
    assert conv.params["input_offset"] == 128 and conv.arrays["multiplier"][1].shape == (16,)


def test_refuses_unsupported_operators():
    graph = Graph(tensors=(), operators=(Operator(0, "LSTM", (), ()),), inputs=(0,), outputs=(0,), sha256="0" * 64,
                  source="x")
    with pytest.raises(UnsupportedModelError, match="LSTM"):
        lower(graph)
