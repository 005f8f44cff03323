"""host/mlperf.py: the MLCommons MLPerf Tiny runner, its own code unmodified, drives a pbkit
firmware built with --protocol mlperf in QEMU over `pbkit emulate --pty`: the classes it reads
back are PyTorch eval's and the times it reads are the firmware's counter.

The runner's 200 ic01 images come from the real CIFAR-10 test set, which the tests must not
need: they use the perf-set images that are in the shipped 1,000-image sample (19 of the 200).
bench/mlperf_runner.py runs all 200 when ../shared/cifar10 is there.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fw_support import EMULATED_BOARD

from pbkit.boards import get_board
from pbkit.expected import expected_from_checkpoint
from pbkit.host import mlperf
from pbkit.host.build import BuildResult, build_firmware
from pbkit.host.link import BoardLink
from pbkit.trainer.data import load_sample

try:
    RUNNER, MISSING = mlperf.mlperf_tiny_dir(), ""
except mlperf.MlperfError as exc:
    RUNNER, MISSING = None, str(exc)
needs_runner = pytest.mark.skipif(RUNNER is None, reason=MISSING)


def test_dataset_is_written_as_the_runner_reads_it(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2)  # N x C x H x W
    root = mlperf.write_ic01_dataset(images, np.array([7, 1]), ["a", "b"], tmp_path)
    assert (root / "ic01" / "y_labels.csv").read_text() == "a.bin,10,7\nb.bin,10,1\n"
    hwc = np.frombuffer((root / "ic01" / "a.bin").read_bytes(), dtype=np.uint8).reshape(2, 2, 3)
    assert (hwc.transpose(2, 0, 1) == images[0]).all()


def test_missing_runner_says_where_to_point(tmp_path: Path) -> None:
    with pytest.raises(mlperf.MlperfError, match="PBKIT_MLPERF_TINY"):
        mlperf.mlperf_tiny_dir(tmp_path)


@pytest.fixture(scope="module")
def mlperf_firmware(model_exports, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuildResult]:
    checkpoint, export = model_exports("popbin", "fast")
    return checkpoint, build_firmware(export, EMULATED_BOARD, tmp_path_factory.mktemp("mlperf_fw"),
                                      protocol="mlperf")


@pytest.fixture(scope="module")
def dut_pty(mlperf_firmware) -> Iterator[str]:
    """`pbkit emulate ELF --pty`, as a user runs it; stopped with Ctrl-C (SIGINT)."""
    _, built = mlperf_firmware
    proc = subprocess.Popen([sys.executable, "-m", "pbkit", "emulate", str(built.elf), "--board", EMULATED_BOARD,
                             "--pty"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("pty: /dev/"), (line, proc.stderr.read() if proc.poll() is not None else "")
        yield line.removeprefix("pty: ")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _sample_perf_images() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The images of the ic01 perf set that are among the first 1,000 test images (the sample)."""
    sample = load_sample()
    idx = np.sort(mlperf.perf_sample_indices(RUNNER))
    idx = idx[idx < len(sample)]
    return sample.images[idx], sample.labels[idx], [f"test_{i:05d}" for i in idx]


@needs_runner
def test_runner_accuracy_reads_pytorch_classes(mlperf_firmware, dut_pty, tmp_path: Path) -> None:
    checkpoint, _ = mlperf_firmware
    images, labels, names = _sample_perf_images()
    assert len(images) == 19
    dataset = mlperf.write_ic01_dataset(images, labels, names, tmp_path / "datasets")
    result = mlperf.run_runner(dut_pty, dataset, "a", tmp_path / "run", root=RUNNER)
    expected = expected_from_checkpoint(checkpoint, images)
    classes = mlperf.runner_classes(result)
    assert [classes[f"{n}.bin"] for n in names] == expected.classes.tolist()
    assert result[0]["dut"] == {"name": f"pbkit {EMULATED_BOARD}", "model": "ic01",
                                "profile": "ULPMark for tinyML Firmware V0.0.1"}
    # The results vector is softmax of the integer logits, to 3 decimals.
    softmax = torch.softmax(torch.tensor(expected.logits, dtype=torch.float64), dim=1).numpy()
    by_file = {r["file"]: r["infer"]["results"] for r in result if "infer" in r}
    got = np.array([by_file[f"{n}.bin"] for n in names])
    assert np.abs(got - softmax).max() <= 0.0006


@needs_runner
def test_runner_timing_is_the_firmware_counter(mlperf_firmware, dut_pty, real_model_emulator,
                                               tmp_path: Path) -> None:
    """The runner's m-lap-us stamps are the board's counter in microseconds: under QEMU -icount,
    instructions x 2^shift ns. Each window runs one image 20 times (after 5 warm-ups), so its
    elapsed time is 20 x what pbkit's INFER counts for that image, plus the loop."""
    images, labels, names = _sample_perf_images()
    dataset = mlperf.write_ic01_dataset(images, labels, names, tmp_path / "datasets")
    windows = mlperf.runner_windows(mlperf.run_runner(dut_pty, dataset, "p", tmp_path / "run", root=RUNNER))
    assert [w["file"] for w in windows] == [f"{n}.bin" for n in names[:5]]  # loop 5: the first five files
    board = get_board(EMULATED_BOARD)
    with BoardLink(real_model_emulator.url, timeout=30) as link:
        per_image_us = [link.infer(image.tobytes()).ticks * 1e6 / board.clock_hz for image in images[:5]]
    for window, us in zip(windows, per_image_us, strict=True):
        assert window["iterations"] == 20
        assert window["elapsed_us"] == pytest.approx(20 * us, abs=20)  # + at most 1 us a run: loop, wraps
        assert window["throughput"] == pytest.approx(1e6 / us, rel=1e-4)
