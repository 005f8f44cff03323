"""The int8 yardstick's host side: export the MLPerf Tiny ResNet-8 (.tflite) to C, build it with
CMSIS-NN for a board (same toolchain and flags as pbkit's firmware) or for the host, and the
LiteRT interpreter's answers the builds are held to.

CMSIS-NN and the model stay where they are (../shared by default): their paths come from an
argument, else ``PBKIT_CMSIS_NN`` / ``PBKIT_INT8_TFLITE``, else the defaults below.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pbkit.boards import get_board
from pbkit.codegen.int8.lower import Int8Network, lower
from pbkit.codegen.int8.render import render
from pbkit.codegen.int8.tflite_reader import read_tflite
from pbkit.files import atomic_write_bytes
from pbkit.paths import FIRMWARE_DIR, SHARED

from .build import COMMON_FLAGS, GCC, BuildResult, build_firmware

DEFAULT_CMSIS_NN = SHARED / "cmsis-nn"
DEFAULT_TFLITE = SHARED / "mlperf-tiny" / "image_classification" / "pretrainedResnet_quant.tflite"
CMSIS_NN_ENV = "PBKIT_CMSIS_NN"
TFLITE_ENV = "PBKIT_INT8_TFLITE"
INT8_FIRMWARE_DIR = FIRMWARE_DIR / "int8"
#: The CMSIS-NN folders the int8 operators need; their float (f16/f32) and LSTM files are left out.
CMSIS_NN_FOLDERS = ("ConvolutionFunctions", "FullyConnectedFunctions", "PoolingFunctions", "BasicMathFunctions",
                    "SoftmaxFunctions", "NNSupportFunctions")
#: LiteRT op resolvers: TFLite's reference kernels and the default (the XNNPACK delegate where it applies).
RESOLVERS = ("reference", "default")


class Int8SetupError(RuntimeError):
    """Something the yardstick needs is missing: CMSIS-NN, the model, or an optional package."""


def cmsis_nn_root(path: Path | str | None = None) -> Path:
    """The CMSIS-NN source tree: ``path``, else $PBKIT_CMSIS_NN, else ../shared/cmsis-nn."""
    root = Path(path or os.environ.get(CMSIS_NN_ENV) or DEFAULT_CMSIS_NN)
    if not (root / "Include" / "arm_nnfunctions.h").is_file() or not (root / "Source").is_dir():
        raise Int8SetupError(
            f"CMSIS-NN not found at {root} (expected Include/arm_nnfunctions.h and Source/): pass --cmsis-nn DIR or "
            f"set {CMSIS_NN_ENV} to a checkout of ARM-software/CMSIS-NN (the project keeps one in ../shared/cmsis-nn)")
    return root


def tflite_path(path: Path | str | None = None) -> Path:
    """The int8 model: ``path``, else $PBKIT_INT8_TFLITE, else the MLPerf Tiny ResNet-8 in ../shared."""
    model = Path(path or os.environ.get(TFLITE_ENV) or DEFAULT_TFLITE)
    if not model.is_file():
        raise Int8SetupError(
            f"int8 model not found at {model}: pass --tflite FILE or set {TFLITE_ENV} (the MLPerf Tiny reference "
            "model is benchmark/training/image_classification/trained_models/pretrainedResnet_quant.tflite of "
            "mlcommons/tiny; the project keeps it in ../shared/mlperf-tiny/image_classification/)")
    return model


def cmsis_nn_sources(root: Path) -> list[Path]:
    """Every integer C file of the folders the int8 operators use (the linker drops what is not called)."""
    files = []
    for folder in CMSIS_NN_FOLDERS:
        files += [f for f in sorted((root / "Source" / folder).glob("*.c"))
                  if not any(part in f.name for part in ("_f16", "_f32", "_flt", "_lstm"))]
    if not files:
        raise Int8SetupError(f"no CMSIS-NN sources under {root / 'Source'}")
    return files


def export_int8(model: Path, out_dir: Path) -> Int8Network:
    """Reads the .tflite, lowers it and writes the generated C into ``out_dir``; returns the network."""
    net = lower(read_tflite(model))
    for name, text in render(net).items():
        atomic_write_bytes(Path(out_dir) / name, text.encode())
    return net


#: CMSIS-NN rounds a requantization twice (TFLM's convention), as LiteRT's convolutions do, but LiteRT's
#: reference fully-connected kernel rounds once: CMSIS-NN's own build option for single rounding, on
#: the one file the fully-connected layer runs, makes the board compute what LiteRT computes.
SINGLE_ROUNDING_FILES = ("arm_nn_vec_mat_mult_t_s8.c",)
SINGLE_ROUNDING_FLAG = "-DCMSIS_NN_USE_SINGLE_ROUNDING"
#: CMSIS-NN reads unaligned words with memcpy(&v, p, 4) and counts on the compiler to make that one
#: load; pbkit's -ffreestanding turns the builtin off (a libc call per read: 5x the instructions), so
#: the library, and only the library, is compiled with -fbuiltin, as its own build would be.
LIBRARY_FLAGS = ("-fbuiltin",)


def compile_cmsis_nn(cmsis_nn: Path, out_dir: Path, cc: str, flags: list[str] | tuple[str, ...]) -> list[Path]:
    """CMSIS-NN's integer sources compiled in place into objects under ``out_dir`` (``cc`` and ``flags``:
    the firmware's or the host's), with :data:`LIBRARY_FLAGS` and the single-rounding file."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = cmsis_nn_sources(cmsis_nn)
    groups = {(): [f for f in sources if f.name not in SINGLE_ROUNDING_FILES],
              (SINGLE_ROUNDING_FLAG,): [f for f in sources if f.name in SINGLE_ROUNDING_FILES]}
    objects = []
    for defines, files in groups.items():
        if not files:
            continue
        cmd = [cc, *flags, *LIBRARY_FLAGS, *defines, f"-I{cmsis_nn / 'Include'}", "-c", *map(str, files)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=out_dir)
        if proc.returncode != 0:
            raise Int8SetupError(f"compiling CMSIS-NN from {cmsis_nn} failed:\n{proc.stderr.strip()}")
        objects += [out_dir / f"{f.stem}.o" for f in files]
    return objects


def _glue() -> tuple[Path, ...]:
    return (INT8_FIRMWARE_DIR / "pb_int8_run.c",)


def build_int8_firmware(model_dir: Path, board: str, out_dir: Path, cmsis_nn: Path) -> BuildResult:
    """pbkit's firmware around the generated int8 model (pbkit's toolchain and flags), linked with
    CMSIS-NN compiled in place from ``cmsis_nn`` (the same flags, see :data:`LIBRARY_FLAGS`)."""
    b = get_board(board)
    gcc = shutil.which(GCC)
    if gcc is None:
        raise Int8SetupError(f"{GCC} not found: install the ARM toolchain with `make toolchain`")
    flags = [f"-mcpu={b.cpu}", *(f for f in COMMON_FLAGS if not f.startswith("-Wl,") and f != "-nostartfiles")]
    objects = compile_cmsis_nn(cmsis_nn, Path(out_dir) / "cmsis-nn", gcc, flags)
    return build_firmware(model_dir, board, out_dir, kernels=False, extra_sources=(*_glue(), *objects),
                          extra_includes=(INT8_FIRMWARE_DIR, cmsis_nn / "Include"))


def build_int8_host(model_dir: Path, cmsis_nn: Path, out: Path | None = None, cc: str = "gcc") -> Path:
    """The generated model + CMSIS-NN (its portable C paths) + pb_host_runner.c as a host executable,
    run with :func:`pbkit.host.host_c.run_host`."""
    if shutil.which(cc) is None:
        raise Int8SetupError(f"{cc} not found: a host C compiler is needed")
    model_dir = Path(model_dir)
    out = Path(out) if out else model_dir / "build" / "host" / "pb_int8_host"
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = ["-O2", "-std=c11", "-Wall", "-Wextra", "-ffunction-sections", "-fdata-sections"]
    objects = compile_cmsis_nn(cmsis_nn, out.parent / "cmsis-nn", cc, flags)
    cmd = [cc, *flags, "-Wl,--gc-sections", f"-I{FIRMWARE_DIR / 'include'}", f"-I{INT8_FIRMWARE_DIR}",
           f"-I{cmsis_nn / 'Include'}", f"-I{model_dir}", str(FIRMWARE_DIR / "host" / "pb_host_runner.c"),
           *map(str, sorted(model_dir.glob("*.c"))), *map(str, _glue()), *map(str, objects), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise Int8SetupError(f"host build of the int8 model failed:\n{proc.stderr.strip()}")
    return out


def to_model_input(images: np.ndarray, zero_point: int = -128) -> np.ndarray:
    """uint8 N x C x H x W (what pbkit streams) -> the model's int8 N x H x W x C: pixel + zero point."""
    x = np.asarray(images, dtype=np.int16).transpose(0, 2, 3, 1) + zero_point
    return x.astype(np.int8)


@dataclass(frozen=True)
class LiteRTResult:
    outputs: np.ndarray  # int8 [N, classes]: the model's output tensor (the softmax)
    classes: np.ndarray  # argmax of outputs, first of equal maxima (numpy's rule, and the board's)
    logits: np.ndarray | None  # int8 [N, classes]: the softmax's input (reference resolver only)
    resolver: str


def _logits_tensor(model: Path) -> int | None:
    """Index of the final softmax's input tensor, the logits the board reports."""
    graph = read_tflite(model)
    last = graph.operators[-1]
    return last.inputs[0] if last.kind == "SOFTMAX" else None


def litert_run(model: Path, images: np.ndarray, resolver: str = "reference") -> LiteRTResult:
    """The LiteRT interpreter (`ai-edge-litert`) on uint8 CHW images, one at a time (batch 1, as the
    model was converted). ``resolver``: ``reference`` (TFLite's reference kernels: what the board is
    held to, bit for bit) or ``default`` (what a user gets: the XNNPACK delegate, which requantizes in
    float and so differs from any integer kernel on a few images)."""
    if resolver not in RESOLVERS:
        raise ValueError(f"unknown resolver {resolver!r}; choose one of {', '.join(RESOLVERS)}")
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise Int8SetupError("the LiteRT check needs `ai-edge-litert`: pip install -e '.[yardstick]'") from None
    reference = resolver == "reference"
    kind = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    with warnings.catch_warnings():  # preserve_all_tensors warns that it is for debugging: it is, here
        warnings.simplefilter("ignore")
        interpreter = Interpreter(model_path=str(model), experimental_op_resolver_type=kind, num_threads=1,
                                  experimental_preserve_all_tensors=reference)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    logits_at = _logits_tensor(model) if reference else None
    x = to_model_input(images, int(inp["quantization"][1]))
    classes = int(np.prod(out["shape"]))
    outputs = np.empty((len(x), classes), dtype=np.int8)
    logits = np.empty((len(x), classes), dtype=np.int8) if logits_at is not None else None
    for i in range(len(x)):
        interpreter.set_tensor(inp["index"], x[i:i + 1])
        interpreter.invoke()
        outputs[i] = interpreter.get_tensor(out["index"]).reshape(-1)
        if logits is not None:
            logits[i] = interpreter.get_tensor(logits_at).reshape(-1)
    return LiteRTResult(outputs=outputs, classes=np.argmax(outputs, axis=1), logits=logits, resolver=resolver)
