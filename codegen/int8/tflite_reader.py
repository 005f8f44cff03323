"""Read a .tflite model into plain Python data with the `tflite` package (the schema's flatbuffer
accessors). Only what the int8 code generator needs: tensors with their quantization and constant
data, and the operators of the first subgraph with their builtin options."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: TFLite TensorType -> numpy dtype (the types an int8 model carries).
TENSOR_TYPES = {0: np.float32, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}
#: ActivationFunctionType -> name.
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
PADDINGS = {0: "SAME", 1: "VALID"}


class TFLiteError(ValueError):
    """The file is not a .tflite model this reader understands."""


class TFLiteMissingError(ImportError):
    """The optional `tflite` package is not installed."""


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: type
    scale: np.ndarray  # float32, one per channel or one per tensor; empty when not quantized
    zero_point: np.ndarray  # int64, same length as scale
    quantized_dimension: int
    data: np.ndarray | None  # constant tensors (weights, biases, shapes); None for activations

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class Operator:
    index: int
    kind: str  # builtin name: CONV_2D, ADD, AVERAGE_POOL_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX, ...
    inputs: tuple[int, ...]  # tensor indices, -1 for an omitted optional input
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Graph:
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    sha256: str  # of the .tflite file: the model identity the board reports in HELLO
    source: str


def _tflite():
    try:
        import tflite
    except ImportError:
        raise TFLiteMissingError(
            "the int8 yardstick needs the `tflite` package: pip install -e '.[yardstick]'") from None
    return tflite


def _options(tfl, op, kind: str) -> dict:
    table = op.BuiltinOptions()
    readers = {
        "CONV_2D": (tfl.Conv2DOptions, lambda o: {
            "padding": PADDINGS[o.Padding()], "stride": (o.StrideH(), o.StrideW()),
            "dilation": (o.DilationHFactor(), o.DilationWFactor()),
            "activation": ACTIVATIONS[o.FusedActivationFunction()]}),
        "AVERAGE_POOL_2D": (tfl.Pool2DOptions, lambda o: {
            "padding": PADDINGS[o.Padding()], "stride": (o.StrideH(), o.StrideW()),
            "filter": (o.FilterHeight(), o.FilterWidth()), "activation": ACTIVATIONS[o.FusedActivationFunction()]}),
        "ADD": (tfl.AddOptions, lambda o: {"activation": ACTIVATIONS[o.FusedActivationFunction()]}),
        "FULLY_CONNECTED": (tfl.FullyConnectedOptions, lambda o: {
            "activation": ACTIVATIONS[o.FusedActivationFunction()], "weights_format": o.WeightsFormat(),
            "keep_num_dims": bool(o.KeepNumDims())}),
        "SOFTMAX": (tfl.SoftmaxOptions, lambda o: {"beta": float(o.Beta())}),
    }
    if kind not in readers or table is None:
        return {}
    cls, read = readers[kind]
    options = cls()
    options.Init(table.Bytes, table.Pos)
    return read(options)


def _tensor(tfl, model, graph, i: int) -> Tensor:
    t = graph.Tensors(i)
    if t.Type() not in TENSOR_TYPES:
        raise TFLiteError(f"tensor {i} ({t.Name().decode()}): unsupported tensor type {t.Type()}")
    dtype = TENSOR_TYPES[t.Type()]
    q = t.Quantization()
    scale = q.ScaleAsNumpy().astype(np.float32) if q is not None and q.ScaleLength() else np.zeros(0, np.float32)
    zero = q.ZeroPointAsNumpy().astype(np.int64) if q is not None and q.ZeroPointLength() else np.zeros(0, np.int64)
    shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    data = None
    buffer = model.Buffers(t.Buffer())
    if buffer is not None and buffer.DataLength():
        raw = buffer.DataAsNumpy().tobytes()
        data = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
    elif buffer is not None and buffer.Offset() > 1:
        raise TFLiteError(f"tensor {i}: data stored outside the flatbuffer (files over 2 GB) is not supported")
    return Tensor(index=i, name=t.Name().decode(), shape=shape, dtype=dtype, scale=scale, zero_point=zero,
                  quantized_dimension=int(q.QuantizedDimension()) if q is not None else 0, data=data)


def read_tflite(path: Path | str) -> Graph:
    """The first subgraph of the .tflite at ``path`` as a :class:`Graph`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TFLite model not found: {path}")
    buf = path.read_bytes()
    tfl = _tflite()
    from tflite.utils import BUILTIN_OPCODE2NAME

    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise TFLiteError(f"{path}: not a TFLite flatbuffer (no TFL3 identifier)")
    model = tfl.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() < 1:
        raise TFLiteError(f"{path}: the model has no subgraph")
    graph = model.Subgraphs(0)
    tensors = tuple(_tensor(tfl, model, graph, i) for i in range(graph.TensorsLength()))
    operators = []
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        # Since schema v3a the code lives in BuiltinCode; old files keep it in DeprecatedBuiltinCode.
        opcode = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        kind = BUILTIN_OPCODE2NAME.get(opcode, f"BUILTIN_{opcode}")
        operators.append(Operator(index=k, kind=kind, inputs=tuple(int(i) for i in op.InputsAsNumpy()),
                                  outputs=tuple(int(i) for i in op.OutputsAsNumpy()), options=_options(tfl, op, kind)))
    return Graph(tensors=tensors, operators=tuple(operators), inputs=tuple(int(i) for i in graph.InputsAsNumpy()),
                 outputs=tuple(int(i) for i in graph.OutputsAsNumpy()), sha256=hashlib.sha256(buf).hexdigest(),
                 source=path.name)
