"""The MLCommons MLPerf Tiny runner as a client of a pbkit board (firmware built with
``pbkit build --protocol mlperf``).

The runner's own code (``benchmark/runner`` of mlcommons/tiny) is not part of pbkit: it is
imported, unmodified, from a checkout given by ``--mlperf-tiny`` / ``$PBKIT_MLPERF_TINY``
(default ``../shared/mlperf-tiny``, the folder holding ``runner/``). Its ``script.py``
redirects ``sys.stdout`` and writes ``sessions/`` into the working folder when imported,
so it runs in a child process (:mod:`pbkit.host.mlperf_driver`) in a folder of its own.

The runner reads a dataset the way its ``perf_samples_loader.py`` writes one:
``ic01/<name>.bin`` (32 x 32 x 3 uint8, HWC, RGB) and ``ic01/y_labels.csv``
(``name,10,label`` rows). :func:`write_ic01_dataset` writes that layout from pbkit's CHW
images, so any split (the shipped sample, or the 200 images of
``image_classification/perf_samples_idxs.npy`` from the real CIFAR-10) can be fed to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from pbkit.paths import SHARED

ENV_VAR = "PBKIT_MLPERF_TINY"
DEFAULT_MLPERF_TINY = SHARED / "mlperf-tiny"
MODEL = "ic01"
PERF_SAMPLES = Path("image_classification") / "perf_samples_idxs.npy"
#: The runner's test scripts for the two modes a host-to-DUT link supports.
TEST_SCRIPTS = {"p": "tests_performance.yaml", "a": "tests_accuracy.yaml"}


class MlperfError(RuntimeError):
    """The runner is missing or its run failed; the message says which and what to do."""


def mlperf_tiny_dir(path: str | Path | None = None) -> Path:
    """The MLPerf Tiny checkout: ``path``, else $PBKIT_MLPERF_TINY, else ../shared/mlperf-tiny."""
    root = Path(path or os.environ.get(ENV_VAR) or DEFAULT_MLPERF_TINY)
    if not (root / "runner" / "device_under_test.py").is_file():
        raise MlperfError(
            f"MLPerf Tiny runner not found: {root / 'runner'} has no device_under_test.py. Point --mlperf-tiny "
            f"or ${ENV_VAR} at a folder with mlcommons/tiny's benchmark/runner as runner/ "
            "(and image_classification/perf_samples_idxs.npy)")
    return root


def perf_sample_indices(root: Path) -> np.ndarray:
    """The 200 CIFAR-10 test indices of the ic01 performance/accuracy set."""
    path = root / PERF_SAMPLES
    if not path.is_file():
        raise MlperfError(f"{path} is missing: it lists the 200 CIFAR-10 test images ic01 uses")
    return np.load(path, allow_pickle=False)


def write_ic01_dataset(images_chw: np.ndarray, labels: np.ndarray, names: list[str], out: Path) -> Path:
    """Writes ``out/ic01/<name>.bin`` (HWC bytes) and ``y_labels.csv``; returns ``out`` (the runner's
    --dataset_path)."""
    images_chw = np.asarray(images_chw, dtype=np.uint8)
    if images_chw.ndim != 4 or len(images_chw) != len(labels) or len(names) != len(labels):
        raise ValueError("images (N x C x H x W), labels and names must have one entry per image")
    folder = Path(out) / MODEL
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for image, label, name in zip(images_chw, labels, names, strict=True):
        (folder / f"{name}.bin").write_bytes(np.ascontiguousarray(image.transpose(1, 2, 0)).tobytes())
        rows.append(f"{name}.bin,10,{int(label)}\n")
    (folder / "y_labels.csv").write_text("".join(rows))
    return Path(out)


def run_runner(port: str, dataset: Path, mode: str, workdir: Path, *, root: Path | None = None,
               timeout: float = 900.0) -> list[dict]:
    """Runs the runner's ic01 script for ``mode`` ("p" performance, "a" accuracy) against the DUT
    at ``port``; returns the runner's result list (one dict per loop iteration: file, class,
    infer{results, start_time, end_time, elapsed_time, ...})."""
    if mode not in TEST_SCRIPTS:
        raise ValueError(f"mode must be one of {', '.join(TEST_SCRIPTS)}")
    root = mlperf_tiny_dir(root)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"result-{mode}.json"
    cmd = [sys.executable, "-m", "pbkit.host.mlperf_driver", "--runner", str(root / "runner"), "--port", port,
           "--dataset", str(Path(dataset).resolve()), "--mode", mode, "--out", str(out)]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise MlperfError(f"the MLPerf Tiny runner failed (exit {proc.returncode}):\n{tail}")
    return json.loads(out.read_text())


def runner_classes(result: list[dict]) -> dict[str, int]:
    """{file: class} as the runner's summary reads them: argmax of each file's results vector."""
    return {r["file"]: int(np.argmax(r["infer"]["results"])) for r in result if "infer" in r and "file" in r}


def runner_windows(result: list[dict]) -> list[dict]:
    """The timed windows of a performance run: file, iterations, elapsed_time (us) and throughput."""
    return [{"file": r["file"], "iterations": r["infer"]["iterations"], "elapsed_us": r["infer"]["elapsed_time"],
             "throughput": r["infer"].get("throughput")}
            for r in result if "infer" in r and "file" in r and "elapsed_time" in r["infer"]]
