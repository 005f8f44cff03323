"""The .tflite reader: the MLPerf Tiny ResNet-8 as plain tensors and operators."""

import numpy as np
import pytest
from int8_support import model_path, require_packages

from pbkit.codegen.int8.tflite_reader import TFLiteError, read_tflite


@pytest.fixture(scope="module")
def graph():
    require_packages("tflite")
    return read_tflite(model_path())


def test_reads_the_resnet8_graph(graph):
    kinds = [op.kind for op in graph.operators]
    assert kinds.count("CONV_2D") == 9 and kinds.count("ADD") == 3
    assert kinds[-4:] == ["AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    inp, out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    assert inp.shape == (1, 32, 32, 3) and inp.dtype is np.int8
    assert inp.scale.tolist() == [1.0] and inp.zero_point.tolist() == [-128]  # int8 = pixel - 128
    assert out.shape == (1, 10) and out.scale.tolist() == [1 / 256]
    assert len(graph.sha256) == 64


def test_constants_and_options(graph):
    first = graph.operators[0]
    weight, bias = graph.tensors[first.inputs[1]], graph.tensors[first.inputs[2]]
    assert weight.data.shape == (16, 3, 3, 3) and weight.data.dtype == np.int8
    assert bias.data.dtype == np.int32 and len(weight.scale) == 16  # per-channel
    assert first.options == {"padding": "SAME", "stride": (1, 1), "dilation": (1, 1), "activation": "RELU"}
    assert graph.tensors[first.outputs[0]].data is None  # an activation, no buffer
    fc = next(op for op in graph.operators if op.kind == "FULLY_CONNECTED")
    assert graph.tensors[fc.inputs[1]].data.shape == (10, 64)
    assert next(op for op in graph.operators if op.kind == "SOFTMAX").options == {"beta": 1.0}


def test_refuses_what_is_not_a_tflite(tmp_path):
    require_packages("tflite")
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(TFLiteError, match="no TFL3 identifier"):
        read_tflite(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_tflite(tmp_path / "missing.tflite")
