"""Kernel-level test vectors (the CMSIS-NN habit): one case per entry of tests/kernels/plan.json.

Each case is drawn from the plan's seed: random inputs and parameters, the tables in the chosen build's
layout (codegen's own packing and rendering functions, so the vectors test the layout the exporter
writes), and the expected output computed here with numpy, apart from the C. `render_build` turns a
build's cases into C (tests/kernels/templates/pb_kernel_cases.c.j2) with a provenance line;
tests/kernels/pb_kernel_test.c runs them, on the host (pb_kernel_test_host.c) and on an emulated board
(pb_kernel_test_model.c). `make golden` refreshes the checked-in build (tests/kernels/vectors/fast16);
the other builds are generated where the tests run them:

    .venv/bin/python -m tests.kernel_vectors
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined

import pbkit
from pbkit.codegen import reference
from pbkit.codegen.kernel import Kernel
from pbkit.codegen.pack import head_shift_codes, pack_channels, pack_channels_fast, words_for
from pbkit.codegen.render import block_tables, stem_tables
from pbkit.ir import BlockIR, StemIR, thermometer_thresholds
from pbkit.paths import FIRMWARE_DIR

KERNELS_TESTS = Path(__file__).parent / "kernels"
PLAN = KERNELS_TESTS / "plan.json"
TEMPLATES = KERNELS_TESTS / "templates"
VECTORS_DIR = KERNELS_TESTS / "vectors"
#: C sources of the test runner (beside the generated cases and config).
RUNNER = KERNELS_TESTS / "pb_kernel_test.c"
HOST_MAIN = KERNELS_TESTS / "pb_kernel_test_host.c"
MODEL_ADAPTER = KERNELS_TESTS / "pb_kernel_test_model.c"
#: The kernel kinds the runner knows, in the order of its PB_CASE_* constants (pb_kernel_test.h).
KINDS = ("stem", "rsign", "sumpool", "popbin", "requant", "head", "ternary", "bitstem", "head_shift")
#: The fast kernel refuses windows of more words than its scratch holds (pb_binconv_walk.h).
FAST_MAX_IN_WORDS = 16
PB_ERR_SHAPE = -2
#: |x| of the residual values the cases draw, and the RSign bound the fast tables are clamped to.
RESIDUAL_SPAN = 1000
RSIGN_BOUND = 300


@dataclass(frozen=True)
class Build:
    """One way to compile the kernels: the exporter's kernel choice and the residual width."""

    name: str
    kernel: str  # "fast" or "reference"
    residual_bits: int  # 16 or 32

    def path_key(self) -> str:
        """The plan's key for the path this build takes ('arm' and 'host' are both fast int16)."""
        return "reference" if self.kernel == "reference" else ("int32" if self.residual_bits == 32 else "fast16")


BUILDS = {b.name: b for b in (Build("fast16", "fast", 16), Build("fast32", "fast", 32),
                              Build("reference16", "reference", 16))}
#: The builds whose vectors are checked in (tests/kernels/vectors/NAME); the others differ from them in
#: layout only and are written where a test needs them.
CHECKED_IN = ("fast16",)


def load_plan() -> dict:
    return json.loads(PLAN.read_text())


def expected_path(case: dict, build: Build, on_arm: bool) -> str:
    key = build.path_key()
    if key == "fast16":
        key = "arm" if on_arm else "host"
    return case["path"].get(key, "reference")


def path_names() -> list[str]:
    """The kernels' path names in the order of their PB_PATH_* ids (the X-macro in pb_kernels.h)."""
    text = (FIRMWARE_DIR / "kernels" / "pb_kernels.h").read_text()
    return re.findall(r'X\(PB_PATH_\w+, "([^"]+)"\)', text)


def _residual_dtype(build: Build):
    return np.int16 if build.residual_bits == 16 else np.int32


def _pack(bits: np.ndarray, build: Build) -> np.ndarray:
    return pack_channels_fast(bits) if build.kernel == "fast" else pack_channels(bits)


def _padded_words(bits: np.ndarray, build: Build) -> np.ndarray:
    """{0,1} bits H x W x C -> the bit buffer the convs read: (H + 2) x (W + 2) x words, a zero border."""
    return np.pad(_pack(bits, build), ((1, 1), (1, 1), (0, 0))).ravel()


def _block(case: dict, rng: np.random.Generator, kind: str) -> BlockIR:
    cin, cout = case["in_channels"], case["out_channels"]
    blk = BlockIR(in_channels=cin, out_channels=cout, stride=case.get("stride", 1),
                  rsign_threshold=rng.integers(-RSIGN_BOUND - 100, RSIGN_BOUND + 100, cin).astype(np.int32),
                  weight_bits=rng.integers(0, 2, (cout, 3, 3, cin), dtype=np.uint8),
                  popcount_threshold=rng.integers(-1, 9 * cin + 1, cout).astype(np.int32),
                  delta=int(rng.integers(1, 50)), kind=kind)
    if kind == "ternary":  # both thresholds near N / 2, where the counts lie: every level is taken
        n = 9 * cin
        spread = max(2, int(n ** 0.5))
        blk.popcount_threshold = (n // 2 - rng.integers(0, spread, cout)).astype(np.int32)
        blk.zero_threshold = np.minimum(n, blk.popcount_threshold + rng.integers(0, 2 * spread, cout)).astype(np.int32)
    if kind == "requant":  # small enough that p * M + B stays far inside int32 and the branch inside int16
        blk.delta, blk.shift = 0, 8
        blk.popcount_threshold = np.zeros(cout, dtype=np.int32)
        blk.multiplier = rng.integers(-40, 41, cout).astype(np.int32)
        blk.bias = rng.integers(-2000, 2001, cout).astype(np.int32)
    return blk


def _counts(bits: np.ndarray, weight_bits: np.ndarray, stride: int) -> np.ndarray:
    """popcount(a XOR w) of every output, from the bits themselves (the -1 padding is bit 0)."""
    h, w, _ = bits.shape
    padded = np.pad(bits, ((1, 1), (1, 1), (0, 0)))
    ho, wo = h // stride, w // stride
    count = np.zeros((ho, wo, weight_bits.shape[0]), dtype=np.int64)
    for ky in range(3):
        for kx in range(3):
            tap = padded[ky:ky + stride * ho:stride, kx:kx + stride * wo:stride]  # ho, wo, cin
            count += (tap[:, :, None, :] != weight_bits[None, None, :, ky, kx, :]).sum(-1)
    return count


def _conv_case(case: dict, rng: np.random.Generator, build: Build, index: int) -> dict:
    blk = _block(case, rng, case["kernel"])
    h, w = case["height"], case["width"]
    bits = rng.integers(0, 2, (h, w, blk.in_channels), dtype=np.uint8)
    ho, wo = h // blk.stride, w // blk.stride
    x = rng.integers(-RESIDUAL_SPAN, RESIDUAL_SPAN + 1, (ho, wo, blk.out_channels))
    refused = build.kernel == "fast" and words_for(blk.in_channels) > FAST_MAX_IN_WORDS
    # The fast layout cannot hold a refused window: it gets the reference one, which its kernel never reads.
    # A case with "tables" takes --kernel tables' layout in the fast builds (the reference has no tables).
    layout = "reference" if refused else build.kernel
    if layout == "fast" and case.get("tables"):  # true: --kernel tables; "slices": --kernel slices
        layout = "tables" if case["tables"] is True else case["tables"]
    tables = block_tables(blk, index, h, w, Kernel(layout), RSIGN_BOUND, build.residual_bits)
    expected = x if refused else x + reference._branch(blk, _counts(bits, blk.weight_bits, blk.stride))
    return {"tables": tables, "input": x.ravel(), "aux": _padded_words(bits, build).tolist(),
            "expected": expected.ravel(), "status": PB_ERR_SHAPE if refused else 0}


def _rsign_case(case: dict, rng: np.random.Generator, build: Build, index: int) -> dict:
    c, h, w = case["channels"], case["height"], case["width"]
    blk = _block({"in_channels": c, "out_channels": 1}, rng, "popbin")
    x = rng.integers(-RSIGN_BOUND, RSIGN_BOUND + 1, (h, w, c))
    bits = (x >= blk.rsign_threshold).astype(np.uint8)
    return {"tables": block_tables(blk, index, h, w, Kernel(build.kernel), RSIGN_BOUND, build.residual_bits),
            "input": x.ravel(), "expected": _padded_words(bits, build), "status": 0}


def _sumpool_case(case: dict, rng: np.random.Generator, build: Build, index: int) -> dict:
    c, h, w = case["channels"], case["height"], case["width"]
    x = rng.integers(-RESIDUAL_SPAN, RESIDUAL_SPAN + 1, (h, w, c))
    pooled = x.reshape(h // 2, 2, w // 2, 2, c).sum(axis=(1, 3))
    return {"tables": {"in_height": h, "in_width": w, "channels": c, "row_elements": w * c},
            "input": x.ravel(), "expected": np.concatenate([pooled, pooled], axis=-1).ravel(), "status": 0}


def _stem_case(case: dict, rng: np.random.Generator, build: Build, index: int) -> dict:
    cout, levels, h, w = case["out_channels"], case["levels"], case["height"], case["width"]
    weight = rng.integers(-128, 128, (cout, 3, 3, 3)).astype(np.int8)
    if case["thresholds"] == "fold":  # ceilings of equally spaced boundaries, as trainer/fold.py makes them
        start = rng.uniform(-80_000, 20_000, (cout, 1))
        step = rng.uniform(500, 20_000, (cout, 1))
        thresholds = np.ceil(start + step * np.arange(levels)).astype(np.int64)
    else:
        thresholds = np.sort(rng.integers(-60_000, 60_000, (cout, levels)), axis=1)
    thresholds[0] = -(2**30)  # the fold's constant channels: every level reached, or none
    if cout > 1 and case["thresholds"] == "random":
        thresholds[1, levels // 2:] = 2**30  # and levels past reach (the estimate would refuse them)
    stem = StemIR(weight=weight, thresholds=thresholds.astype(np.int32))
    image = rng.integers(0, 256, (1, 3, h, w), dtype=np.uint8)
    expected = reference._stem(SimpleNamespace(stem=stem), image)[0]
    return {"tables": {**stem_tables(stem, Kernel(build.kernel)), "height": h, "width": w},
            "input": [], "aux": image.ravel().tolist(), "expected": expected.ravel(), "status": 0}


def _head_case(case: dict, rng: np.random.Generator, build: Build, index: int) -> dict:
    positions, c, classes, shift = case["positions"], case["channels"], case["classes"], case["pool_shift"]
    x = rng.integers(-RESIDUAL_SPAN, RESIDUAL_SPAN + 1, (positions, c))
    weight = rng.integers(-128, 128, (classes, c))
    bias = rng.integers(-5000, 5001, classes)
    logits = (x.sum(axis=0) >> shift) @ weight.T + bias
    return {"tables": {"positions": positions, "channels": c, "classes": classes, "pool_shift": shift,
                       "weight": weight.ravel().tolist(), "bias": bias.tolist()},
            "input": x.ravel(), "expected": np.concatenate([[int(np.argmax(logits))], logits]), "status": 0}


def _bitstem_case(case: dict, rng: np.random.Generator, build: Build, index: int) -> dict:
    """+-1 weights over 10 planes a colour; thresholds on s = 270 - 2 popcount around where s lies (|s| of a few
    tens), channel 0 reaching every level and channel 1 none. The planes' scratch follows the output."""
    cout, levels, h, w = case["out_channels"], case["levels"], case["height"], case["width"]
    weight = np.where(rng.random((cout, 30, 3, 3)) < 0.5, -1, 1).astype(np.int8)
    thresholds = np.sort(rng.integers(-60, 60, (cout, levels)), axis=1)
    thresholds[0], thresholds[1] = -(2**30), 2**30
    stem = StemIR(weight=weight, thresholds=thresholds.astype(np.int32), kind="bitplanes",
                  input_thresholds=thermometer_thresholds())
    image = rng.integers(0, 256, (1, 3, h, w), dtype=np.uint8)
    expected = reference._stem(SimpleNamespace(stem=stem), image)[0]
    scratch = (h + 2) * (w + 2) + (expected.size * build.residual_bits // 8 + 3) // 4
    return {"tables": {**stem_tables(stem, Kernel(build.kernel)), "height": h, "width": w}, "input": [],
            "aux": image.ravel().tolist(), "expected": expected.ravel(), "status": 0, "work_words": scratch}


def _head_shift_case(case: dict, rng: np.random.Generator, build: Build, index: int) -> dict:
    positions, c, classes, shift = case["positions"], case["channels"], case["classes"], case["pool_shift"]
    x = rng.integers(-RESIDUAL_SPAN, RESIDUAL_SPAN + 1, (positions, c))
    weight = rng.choice([-64, -8, -1, 0, 1, 2, 4, 32, 64], (classes, c))
    bias = rng.integers(-5000, 5001, classes)
    logits = (x.sum(axis=0) >> shift) @ weight.T + bias
    return {"tables": {"positions": positions, "channels": c, "classes": classes, "pool_shift": shift,
                       "weight": head_shift_codes(weight).ravel().tolist(), "bias": bias.tolist()},
            "input": x.ravel(), "expected": np.concatenate([[int(np.argmax(logits))], logits]), "status": 0}


_DRAW = {"stem": _stem_case, "rsign": _rsign_case, "sumpool": _sumpool_case, "popbin": _conv_case,
         "requant": _conv_case, "head": _head_case, "ternary": _conv_case, "bitstem": _bitstem_case,
         "head_shift": _head_shift_case}


def _check_fits(values: np.ndarray, build: Build, what: str) -> None:
    limit = 2 ** (build.residual_bits - 1)
    if values.size and (values.min() < -limit or values.max() >= limit):
        raise ValueError(f"{what}: values outside int{build.residual_bits}")


def draw_cases(plan: dict, build: Build) -> list[dict]:
    """Every case of the plan for one build, each from its own seed (plan seed + case index), so that
    adding a case changes no other."""
    cases = []
    for index, case in enumerate(plan["cases"]):
        if case["kernel"] not in _DRAW:
            raise ValueError(f"plan case {case['name']!r}: unknown kernel {case['kernel']!r}")
        rng = np.random.default_rng([plan["seed"], index])
        drawn = _DRAW[case["kernel"]](case, rng, build, index)
        _check_fits(np.asarray(drawn["input"]), build, case["name"])
        if case["kernel"] not in ("rsign", "head", "head_shift"):  # these output bit words and int32 logits
            _check_fits(np.asarray(drawn["expected"]), build, case["name"])
        out_type = {"rsign": "uint32_t", "head": "int32_t", "head_shift": "int32_t"}.get(case["kernel"],
                                                                                         "pb_residual_t")
        cases.append({**drawn, "index": index, "name": case["name"], "kernel": case["kernel"],
                      "kind": KINDS.index(case["kernel"]), "out_type": out_type,
                      "input": np.asarray(drawn["input"]).astype(np.int64).tolist(),
                      "expected": np.asarray(drawn["expected"]).astype(np.int64).tolist(),
                      "aux": drawn.get("aux", []), "work_words": drawn.get("work_words", 0)})
    return cases


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["c_list"] = lambda values: ", ".join(str(int(v)) for v in values)
    env.filters["c_hex"] = lambda values: ", ".join(f"0x{int(v) & 0xFFFFFFFF:08x}u" for v in values)
    return env


def provenance(plan_text: str) -> str:
    return (f"tests/kernel_vectors.py (pbkit {pbkit.__version__}) from tests/kernels/plan.json "
            f"(sha256 {hashlib.sha256(plan_text.encode()).hexdigest()[:16]}, seed {json.loads(plan_text)['seed']})")


def render_build(build: Build) -> dict[str, str]:
    """{file name: C text} of one build: the cases and the config header the kernels read."""
    plan_text = PLAN.read_text()
    cases = draw_cases(json.loads(plan_text), build)
    work_bytes = max(4 * max(len(c["input"]), len(c["expected"]), c["work_words"]) for c in cases)
    context = {"provenance": provenance(plan_text), "build": build, "cases": cases,
               "work_words": (work_bytes + 3) // 4, "kernel_fast": int(build.kernel == "fast")}
    env = _environment()
    return {name: env.get_template(f"{name}.j2").render(**context)
            for name in ("pb_kernel_cases.c", "pb_model_config.h")}


def write_build(build: Build, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in render_build(build).items():
        (out_dir / name).write_text(text)
    return out_dir


def write_checked_in() -> list[Path]:
    return [write_build(BUILDS[name], VECTORS_DIR / name) for name in CHECKED_IN]


if __name__ == "__main__":
    for folder in write_checked_in():
        print(f"wrote {folder}")
