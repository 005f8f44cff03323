"""Benchmark (not a test): reference vs fast kernel, PopBin vs baseline, Cortex-M4 vs M7, in one table.

For every (model, kernel, board) it runs `pbkit profile` (export, firmware build, QEMU, per-layer
instruction counts over the serial protocol), then reads the firmware's flash/RAM and counts the
multiply instructions in the binary-layer functions of the ELF. Last, the exported C built for x86
(-O2 -mpopcnt) against PyTorch eval of the same model: images per second on the 10,000 test images.

    .venv/bin/python bench/cortex_m.py --data ../shared/cifar10/cifar-10-batches-py

PopBin and baseline are the width-0.125 ReActNet-18 rows of the deck-tables run (same architecture,
same training budget), shipped in docs/results/deck-tables-w0.125-e2/checkpoints/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "docs" / "results" / "deck-tables-w0.125-e2" / "checkpoints"
MODELS = {"popbin": CHECKPOINTS / "reactnet18-popbin-c_times_a.safetensors",
          "baseline": CHECKPOINTS / "reactnet18-baseline.safetensors"}
BOARDS = {"netduinoplus2": "M4", "mps2-an500": "M7"}


def profile(checkpoint: Path, board: str, kernel: str, workdir: Path, timeout: float) -> dict:
    cmd = [str(ROOT / ".venv" / "bin" / "pbkit"), "profile", "--board", board, "--kernel", kernel,
           "--checkpoint", str(checkpoint), "--workdir", str(workdir), "--timeout", str(timeout), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def cortex_m_rows(workdir: Path, timeout: float) -> list[dict]:
    from pbkit.host.build import _sizes
    from pbkit.host.disasm import binary_layer_functions, count_multiplies

    rows = []
    for mode, ckpt in MODELS.items():
        kinds = ["requant"] if mode == "baseline" else ["popbin"]
        for board, core in BOARDS.items():
            for kernel in ("reference", "fast"):
                result = profile(ckpt, board, kernel, workdir / f"{mode}-{board}-{kernel}", timeout)
                run_dir = workdir / f"{mode}-{board}-{kernel}" / f"{board}-{kernel}"
                report = json.loads((run_dir / "model" / "memory_report.json").read_text())
                elf = run_dir / "build" / "firmware.elf"
                flash, ram = _sizes(elf)
                muls = count_multiplies(elf, binary_layer_functions(kinds))
                rows.append({"model": mode, "core": core, "board": board, "kernel": kernel,
                             "per_image": result["whole_image"], "per_32_bits": result["binary_per_32_bits"],
                             "worst": result["worst_binary_layer"],
                             "binary_muls": sum(muls.values()), "flash": flash, "ram": ram,
                             "model_flash": report.get("flash_bytes_model"), "model_ram": report.get("ram_bytes_model"),
                             "identical": result["logits_identical"]})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def host_rows(data: str, workdir: Path) -> list[dict]:
    from pbkit.boards import BOARDS as ALL_BOARDS
    from pbkit.codegen.export import export_files, write_files
    from pbkit.codegen.kernel import Kernel
    from pbkit.host.host_c import build_host, run_host
    from pbkit.trainer import data as cifar
    from pbkit.trainer.checkpoint import load_checkpoint
    from pbkit.trainer.fold import fold_model

    test = cifar.load_split(data, "test")
    rows = []
    for mode, ckpt in MODELS.items():
        model, _ = load_checkpoint(ckpt)
        ir = fold_model(model)
        model_dir = workdir / f"host-{mode}"
        write_files(export_files(ir, ALL_BOARDS["mps2-an386"], Kernel.REFERENCE, source=ckpt.name), model_dir)
        exe = build_host(model_dir, flags=("-O2", "-mpopcnt"))
        t0 = time.perf_counter()
        host = run_host(exe, test.images, ir.num_classes)
        host_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with torch.no_grad():
            torch_logits = model(torch.from_numpy(test.images))
        torch_s = time.perf_counter() - t0
        ir_logits = np.rint(torch_logits.numpy() / ir.meta["logit_scale"]).astype(np.int64)
        rows.append({"model": mode, "images": len(test), "host_c_img_s": len(test) / host_s,
                     "pytorch_eval_img_s": len(test) / torch_s, "torch_threads": torch.get_num_threads(),
                     "identical": float((host.logits == ir_logits).all(axis=1).mean()),
                     "top1": float((host.classes == test.labels).mean())})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="cifar-10-batches-py folder (host C vs PyTorch rows)")
    parser.add_argument("--workdir", default="build/bench")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds to wait for one reply of a board (default 600: a loaded machine is slow)")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    rows = cortex_m_rows(workdir, args.timeout)
    print("| model | core (board) | kernel | instructions / image | binary layers, instructions / 32 useful bits "
          "| worst binary layer | multiplies in "
          "binary-layer code | firmware flash | firmware RAM (data + bss) | model data flash | model RAM "
          "| logits identical |")
    print("|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['core']} ({r['board']}) | {r['kernel']} | {r['per_image']:,.0f} | "
              f"{r['per_32_bits']:.2f} | {r['worst']['name']} {r['worst']['per_32_bits']:.2f} | "
              f"{r['binary_muls']} | {r['flash']:,} B | {r['ram']:,} B | "
              f"{r['model_flash']:,} B | {r['model_ram']:,} B | {r['identical']:.2f} |")
    print()
    print("| model | test images | host C (-O2 -mpopcnt) images/s | PyTorch eval images/s | logits identical | top-1 |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in host_rows(args.data, workdir):
        print(f"| {r['model']} | {r['images']:,} | {r['host_c_img_s']:,.0f} | {r['pytorch_eval_img_s']:,.0f} "
              f"({r['torch_threads']} threads) | {r['identical']:.4f} | {100 * r['top1']:.2f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
