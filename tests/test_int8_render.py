"""Rendering the lowered ResNet-8: one template, a pure function, every layer in the op table."""

import pytest
from int8_support import model_path, require_packages

from pbkit.codegen.int8.render import MODEL_FILE, build_context, render


@pytest.fixture(scope="module")
def net():
    require_packages("tflite")
    from pbkit.codegen.int8.lower import lower
    from pbkit.codegen.int8.tflite_reader import read_tflite

    return lower(read_tflite(model_path()))


def test_render_is_pure_and_complete(net):
    files = render(net)
    assert list(files) == [MODEL_FILE]
    assert files == render(net)  # deterministic
    text = files[MODEL_FILE]
    assert text.count("static const pb_i8_conv_t conv") == 9
    assert text.count("{ PB_I8_") == len(net.layers)
    assert f"static int8_t arena[{net.arena_bytes}]" in text
    assert ".input_zero_point = -128" in text
    assert net.sha256 in text


def test_context_numbers(net):
    ctx = build_context(net)
    assert (ctx["channels"], ctx["height"], ctx["width"]) == (3, 32, 32)
    assert ctx["sha256_bytes"] == list(bytes.fromhex(net.sha256))
    fc = next(layer for layer in ctx["layers"] if layer["kind"] == "fc")
    assert fc["filter_dims"] == [64, 1, 1, 10] and fc["output_dims"] == [1, 1, 1, 10]
    weights = sum(a["count"] for layer in ctx["layers"] for a in layer["arrays"] if a["name"].endswith("_weight"))
    # Every weight of the 9 convolutions (3x3 and 1x1 at 16, 32, 64 channels) and the 64 x 10 FC, once.
    convs = 16 * 27 + 2 * 16 * 144 + 32 * 144 + 32 * 288 + 32 * 16 + 64 * 288 + 64 * 576 + 64 * 32
    assert weights == convs + 64 * 10
