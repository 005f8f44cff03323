"""The MLCommons MLPerf Tiny runner (its own code, unmodified) against a pbkit board on the
ic01 set: the 200 CIFAR-10 test images of image_classification/perf_samples_idxs.npy.

Builds the checkpoint's firmware twice for an emulated board, with --protocol mlperf (what the
runner talks to, over `Emulator(pty=True)`) and with pbkit's protocol (to read the board's own
counter for the same images), runs the runner's performance script (tests_performance.yaml:
5 windows of `infer 20 5`) and accuracy script (tests_accuracy.yaml: every image, `infer 1 0`),
and compares what the runner read with PyTorch eval and with the counter. Needs the real
CIFAR-10 test batch (--data); the tests run the same path on the 19 perf images that are in
the shipped sample.

    python bench/mlperf_runner.py --data ../shared/cifar10/cifar-10-batches-py --json build/mlperf.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from pbkit.boards import get_board
from pbkit.codegen.export import export_files, write_files
from pbkit.codegen.kernel import Kernel
from pbkit.expected import expected_from_checkpoint
from pbkit.files import atomic_write_bytes
from pbkit.host import mlperf
from pbkit.host.build import build_firmware
from pbkit.host.emulator import Emulator
from pbkit.host.link import BoardLink
from pbkit.trainer import data as cifar
from pbkit.trainer.checkpoint import load_checkpoint
from pbkit.trainer.fold import fold_model
from pbkit.zoo import default_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="a checkpoint file (default: the demo's model, pbkit models)")
    parser.add_argument("--data", default=str(Path("..") / "shared" / "cifar10" / "cifar-10-batches-py"),
                        help="cifar-10-batches-py folder (the ic01 images are test images)")
    parser.add_argument("--mlperf-tiny", default=None, help=f"MLPerf Tiny checkout (default ${mlperf.ENV_VAR} "
                        "or ../shared/mlperf-tiny)")
    parser.add_argument("--board", default="netduinoplus2", help="an emulated board")
    parser.add_argument("--workdir", type=Path, default=Path("build") / "mlperf")
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    args = parser.parse_args(argv)
    args.checkpoint = args.checkpoint or default_model().checkpoint

    root = mlperf.mlperf_tiny_dir(args.mlperf_tiny)
    idx = mlperf.perf_sample_indices(root)
    try:
        split = cifar.load(args.data, "test")
    except (OSError, cifar.DatasetError) as exc:
        print(f"mlperf_runner: error: the ic01 images are CIFAR-10 test images; {exc}", file=sys.stderr)
        return 1
    images, labels = split.images[idx], split.labels[idx]
    names = [f"test_{i:05d}" for i in idx]
    board = get_board(args.board)

    model, _ = load_checkpoint(args.checkpoint)
    files = export_files(fold_model(model), board, Kernel.FAST, source=args.checkpoint.name)
    write_files(files, args.workdir / "model")
    dut_fw = build_firmware(args.workdir / "model", board.name, args.workdir / "fw-mlperf", protocol="mlperf")
    ref_fw = build_firmware(args.workdir / "model", board.name, args.workdir / "fw-pbkit")
    dataset = mlperf.write_ic01_dataset(images, labels, names, args.workdir / "datasets")

    with Emulator(dut_fw.elf, board.name, pty=True, wait_ready=False) as emu:
        print(f"runner -> {emu.url} ({board.name}, --protocol mlperf): performance", flush=True)
        perf = mlperf.run_runner(emu.url, dataset, "p", args.workdir / "run-p", root=root)
        print(f"runner -> {emu.url}: accuracy, {len(names)} images", flush=True)
        acc = mlperf.run_runner(emu.url, dataset, "a", args.workdir / "run-a", root=root)

    expected = expected_from_checkpoint(args.checkpoint, images)
    read = mlperf.runner_classes(acc)
    classes = np.array([read[f"{n}.bin"] for n in names])
    windows = mlperf.runner_windows(perf)
    with Emulator(ref_fw.elf, board.name) as emu, BoardLink(emu.url, timeout=120) as link:
        by_name = dict(zip(names, images, strict=True))
        counter_us = [link.infer(by_name[w["file"].removesuffix(".bin")].tobytes()).ticks * 1e6 / board.clock_hz
                      for w in windows]
    summary = {
        "board": board.name,
        "checkpoint": str(args.checkpoint),
        "images": len(names),
        "runner_top1": float(np.mean(classes == labels)),
        "agreement_with_pytorch": float(np.mean(classes == expected.classes)),
        "pytorch_top1": float(np.mean(expected.classes == labels)),
        "windows": [{**w, "counter_us_x_iterations": w["iterations"] * us} for w, us in zip(windows, counter_us,
                                                                                           strict=True)],
        "timing_note": ("under QEMU -icount the runner's microseconds are virtual time: "
                        f"instructions x {2 ** board.icount_shift} ns") if board.emulated else "DWT cycles / clock",
    }
    print(f"{len(names)} ic01 images: runner top-1 {100 * summary['runner_top1']:.2f}%, classes equal to "
          f"PyTorch eval on {100 * summary['agreement_with_pytorch']:.2f}% "
          f"(PyTorch top-1 {100 * summary['pytorch_top1']:.2f}%)")
    for w in summary["windows"]:
        print(f"  {w['file']}: {w['iterations']} inferences in {w['elapsed_us']:,} us (runner), "
              f"{w['counter_us_x_iterations']:,.0f} us = {w['iterations']} x INFER counter; "
              f"{w['throughput']:.3f} inf./s")
    print(f"  ({summary['timing_note']})")
    if args.json:
        atomic_write_bytes(args.json, (json.dumps(summary, indent=2) + "\n").encode())
    return 0 if summary["agreement_with_pytorch"] == 1.0 else 3


if __name__ == "__main__":
    sys.exit(main())
