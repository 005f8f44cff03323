"""Benchmark (not a test): the MLPerf Tiny int8 ResNet-8 (CMSIS-NN) beside pbkit's models, per emulated board.

For each board (default netduinoplus2 = STM32F405 Cortex-M4, mps2-an386 Cortex-M4, mps2-an500 Cortex-M7)
it builds the int8 ResNet-8 (C generated from the .tflite, CMSIS-NN compiled in place, pbkit's
toolchain and flags) and each pbkit checkpoint (fast kernel) into pbkit's firmware, runs both in QEMU
and streams the same images over pbkit's serial protocol (HELLO/INFER, host/bench.py), so both are
measured by the same SysTick/-icount counter. The int8 board answers are held to the LiteRT
interpreter (reference kernels, bit for bit: class and the int8 logits); the agreement with LiteRT's
default interpreter (XNNPACK) is reported beside it. Estimated cycles come from pbkit.host.cycles (a
timing model over the traced instruction stream of the first image: an estimate, not a measurement).

    .venv/bin/python bench/int8_yardstick.py --data ../shared/cifar10/cifar-10-batches-py

Images on the boards: the 200 CIFAR-10 test images MLPerf Tiny uses for its performance runs
(perf_samples_idxs.npy), or --images N for the first N test images. Top-1 over all 10,000 test
images comes from the host builds, which equal the boards bit for bit (LiteRT reference kernels for
the int8 model, the integer graph for pbkit's).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ("netduinoplus2", "mps2-an386", "mps2-an500")
PERF_SAMPLES = "perf_samples_idxs.npy"


def _images(args: argparse.Namespace, test, model: Path):
    from pbkit.trainer.data import Split

    if args.images:
        idx = np.arange(args.images)
        what = f"the first {args.images} CIFAR-10 test images"
    else:
        samples = model.parent / PERF_SAMPLES
        if not samples.is_file():
            raise SystemExit(f"int8_yardstick: {samples} not found (MLPerf Tiny's image indices); pass --images N")
        idx = np.load(samples, allow_pickle=False)
        what = f"the {len(idx)} MLPerf Tiny performance images ({PERF_SAMPLES})"
    return Split(test.images[idx], test.labels[idx]), what


def _run(elf: Path, board: str, expected, split, report: Path, emulators: int) -> dict:
    from contextlib import ExitStack

    from pbkit.host.bench import images_path, run_bench
    from pbkit.host.emulator import Emulator

    for stale in (report, images_path(report)):  # a fresh measurement each run
        stale.unlink(missing_ok=True)
    with ExitStack() as stack:
        urls = [stack.enter_context(Emulator(elf, board, start_timeout=60.0)).url for _ in range(emulators)]
        return run_bench(urls, expected, split, report=report, timeout=120.0, progress=False)


def _classes(report: Path, n: int) -> np.ndarray:
    """The board's class per image, from the bench's per-image log."""
    from pbkit.host.bench import images_path

    out = np.full(n, -1)
    for line in images_path(report).read_text().splitlines():
        row = json.loads(line)
        if "index" in row:  # the first line is the report's header (model, data, options), not an image
            out[row["index"]] = row["class"]
    return out


def _row(model: str, board, summary: dict, built, estimate: dict, top1_all: float) -> dict:
    from pbkit.host.cycles import flash_wait_bound

    return {"model": model, "board": board.name, "cpu": board.cpu, "images": summary["images"],
            "instructions": summary["per_image_median"], "instructions_min": summary["per_image_min"],
            "instructions_max": summary["per_image_max"], "estimated_cycles": estimate["estimated_cycles"],
            "estimated_cycles_m4": estimate["estimated_cycles_m4"], "m4_range": estimate["m4_range"],
            "estimated_cycles_m7": estimate["estimated_cycles_m7"], "traced_instructions": estimate["instructions"],
            "flash_data_reads": estimate["flash_data_reads"], "flash_wait_states": board.flash_wait_states,
            "estimated_cycles_m4_all_flash_reads_wait": flash_wait_bound(estimate, board.flash_wait_states),
            "flash": built.flash_bytes, "ram": built.ram_bytes, "flash_total": built.flash_total,
            "ram_total": built.ram_total, "top1_board": summary["top1"], "top1_10000": top1_all,
            "agreement": summary["agreement"], "logits_identical": summary["logits_identical"]}


def int8_rows(args, boards, test, split, workdir: Path) -> tuple[list[dict], dict]:
    from pbkit.boards import get_board
    from pbkit.host.bench import Expected
    from pbkit.host.cycles import estimate_cycles
    from pbkit.host.host_c import run_host
    from pbkit.host.int8 import build_int8_firmware, build_int8_host, cmsis_nn_root, export_int8, litert_run
    from pbkit.host.int8 import tflite_path as find_tflite

    model, cmsis = find_tflite(args.tflite), cmsis_nn_root(args.cmsis_nn)
    net = export_int8(model, workdir / "int8" / "model")
    t0 = time.perf_counter()
    host = run_host(build_int8_host(workdir / "int8" / "model", cmsis), test.images, net.num_classes)
    facts = {"model": str(model), "sha256": net.sha256, "macs": net.macs, "weight_bytes": net.weight_bytes,
             "arena_bytes": net.arena_bytes, "host_top1_10000": float((host.classes == test.labels).mean())}
    if args.full_check:  # LiteRT on all 10,000: the host build (= the boards) against it, bit for bit
        ref_all = litert_run(model, test.images, "reference")
        default_all = litert_run(model, test.images, "default")
        facts.update({"litert_reference_top1_10000": float((ref_all.classes == test.labels).mean()),
                      "litert_default_top1_10000": float((default_all.classes == test.labels).mean()),
                      "host_vs_litert_reference_logits_identical_10000": float((host.logits == ref_all.logits)
                                                                               .all(axis=1).mean()),
                      "host_vs_litert_reference_classes_10000": float((host.classes == ref_all.classes).mean()),
                      "host_vs_litert_default_classes_10000": float((host.classes == default_all.classes).mean())})
    print(f"int8 host reference: {json.dumps(facts)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    ref = litert_run(model, split.images, "reference")
    default = litert_run(model, split.images, "default")
    expected = Expected(model_sha256=net.sha256, classes=ref.classes, logits=ref.logits.astype(np.int64))
    rows = []
    for name in boards:
        board = get_board(name)
        built = build_int8_firmware(workdir / "int8" / "model", name, workdir / "int8" / name, cmsis)
        report = workdir / "int8" / f"{name}.json"
        summary = _run(built.elf, name, expected, split, report, args.emulators)
        classes = _classes(report, len(split))
        estimate = estimate_cycles(built.elf, split.images[0].tobytes(), board.cpu, net.num_classes)
        row = _row("int8 ResNet-8 (MLPerf Tiny, CMSIS-NN)", board, summary, built, estimate,
                   facts["host_top1_10000"])
        row["agreement_litert_default"] = float((classes == default.classes).mean())
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows, facts


def pbkit_rows(args, boards, test, split, workdir: Path) -> list[dict]:
    from pbkit.boards import get_board
    from pbkit.codegen.export import export_files, write_files
    from pbkit.expected import expected_from_ir
    from pbkit.host.build import build_firmware
    from pbkit.host.cycles import estimate_cycles
    from pbkit.trainer.checkpoint import load_checkpoint
    from pbkit.trainer.fold import fold_model

    rows = []
    for ckpt in args.checkpoint:
        ckpt = Path(ckpt)
        model, _ = load_checkpoint(ckpt)
        ir = fold_model(model)
        top1_all = float((expected_from_ir(ir, test.images).classes == test.labels).mean())
        expected = expected_from_ir(ir, split.images)
        for name in boards:
            board = get_board(name)
            for kernel in args.kernel:
                out = workdir / ckpt.stem / name / kernel.value
                write_files(export_files(ir, board, kernel, source=ckpt.name), out / "model")
                built = build_firmware(out / "model", name, out / "build")
                summary = _run(built.elf, name, expected, split, out / "bench.json", args.emulators)
                estimate = estimate_cycles(built.elf, split.images[0].tobytes(), board.cpu, ir.num_classes)
                rows.append(_row(f"pbkit {ckpt.stem} ({kernel} kernel)", board, summary, built, estimate, top1_all))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | board (core) | instructions / image (QEMU, median) | **estimated** cycles / image "
             "(timing model, core of the board) | firmware flash | firmware RAM | top-1 on the board | top-1, 10,000 "
             "test images | agreement with its reference | logits identical |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        core = {"cortex-m4": "M4", "cortex-m7": "M7"}[r["cpu"]]
        lines.append(
            f"| {r['model']} | {r['board']} ({core}) | {r['instructions']:,.0f} | ~{r['estimated_cycles']:,} | "
            f"{r['flash']:,} B of {r['flash_total'] // 1024:,} KB | {r['ram']:,} B of {r['ram_total'] // 1024:,} KB | "
            f"{100 * r['top1_board']:.2f} % ({r['images']}) | {100 * r['top1_10000']:.2f} % | "
            f"{r['agreement']:.4f} | {r['logits_identical']:.4f} |")
    return "\n".join(lines)


def ratios(rows: list[dict]) -> str:
    lines = []
    for board in dict.fromkeys(r["board"] for r in rows):
        int8 = next(r for r in rows if r["board"] == board and r["model"].startswith("int8"))
        for r in rows:
            if r["board"] == board and r is not int8:
                ratio = int8["instructions"] / r["instructions"]
                cycles = int8["estimated_cycles"] / r["estimated_cycles"]
                lines.append(f"- {board}: int8 ResNet-8 / {r['model']}: {ratio:.2f}x the instructions, "
                             f"~{cycles:.2f}x the "
                             f"estimated cycles, {int8['flash'] / r['flash']:.2f}x the flash, "
                             f"{int8['ram'] / r['ram']:.2f}x the RAM")
    return "\n".join(lines)


def main() -> int:
    from pbkit.codegen.kernel import Kernel
    from pbkit.trainer.data import load_split
    from pbkit.zoo import default_model, resolve_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "cifar10" / "cifar-10-batches-py"),
                        help="cifar-10-batches-py folder (default ../shared/cifar10/cifar-10-batches-py)")
    parser.add_argument("--boards", nargs="+", default=list(BOARDS), help=f"default: {' '.join(BOARDS)}")
    parser.add_argument("--checkpoint", action="append", default=None,
                        help="pbkit checkpoint or shipped model name to run beside it (repeatable; default: "
                             "the default shipped model)")
    parser.add_argument("--images", type=int, default=None,
                        help="run the first N test images on the boards instead of MLPerf's 200")
    parser.add_argument("--tflite", default=None, help="int8 model (default $PBKIT_INT8_TFLITE or ../shared/...)")
    parser.add_argument("--cmsis-nn", default=None, help="CMSIS-NN tree (default $PBKIT_CMSIS_NN or "
                        "../shared/cmsis-nn)")
    parser.add_argument("--kernel", action="append", type=Kernel.parse, default=None,
                        help="pbkit kernel, repeatable: fast (default), tables (popcount tables, more flash), "
                             "reference")
    parser.add_argument("--emulators", type=int, default=1, help="QEMU instances per model and board (default 1)")
    parser.add_argument("--full-check", action="store_true",
                        help="also run LiteRT (reference and default) on all 10,000 images against the host build")
    parser.add_argument("--workdir", default="build/int8-yardstick")
    parser.add_argument("--json", default=None, help="write the rows and facts to this JSON file")
    args = parser.parse_args()
    # a shipped model's name or a file, as every pbkit command takes them
    args.checkpoint = [str(resolve_checkpoint(c)) for c in args.checkpoint or []] or [str(default_model().checkpoint)]
    args.kernel = args.kernel or [Kernel.FAST]
    from pbkit.host.int8 import Int8SetupError
    from pbkit.host.int8 import tflite_path as find_tflite

    try:
        model = find_tflite(args.tflite)
    except Int8SetupError as e:
        print(f"int8_yardstick: {e}", file=sys.stderr)
        return 1
    workdir = Path(args.workdir)
    t0 = time.perf_counter()
    test = load_split(args.data, "test")
    split, what = _images(args, test, model)
    try:
        rows, facts = int8_rows(args, args.boards, test, split, workdir)
    except Int8SetupError as e:
        print(f"int8_yardstick: {e}", file=sys.stderr)
        return 1
    rows += pbkit_rows(args, args.boards, test, split, workdir)
    rows.sort(key=lambda r: (args.boards.index(r["board"]), not r["model"].startswith("int8")))
    print(f"Images on the boards: {what}. Ran in {time.perf_counter() - t0:.0f} s.")
    print()
    print(table(rows))
    print()
    print(ratios(rows))
    print()
    print("int8: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    for r in rows:
        if r["flash_wait_states"]:
            bound = r["estimated_cycles_m4_all_flash_reads_wait"]
            print(f"{r['model']} on {r['board']}: {r['flash_data_reads']:,} data reads from flash per image; if every "
                  f"one waited the board's {r['flash_wait_states']} flash wait states, ~{bound:,} estimated M4 cycles "
                  "(an upper bound for data reads; the zero-wait-state estimate is the lower one)")
    for r in rows:
        if "agreement_litert_default" in r:
            print(f"int8 on {r['board']}: class agreement with LiteRT's default interpreter (XNNPACK) "
                  f"{r['agreement_litert_default']:.4f}; estimated M4 cycles at 1..3 refill cycles "
                  f"{r['m4_range'][0]:,} .. {r['m4_range'][1]:,}")
    if args.json:
        from pbkit.files import atomic_write_bytes

        atomic_write_bytes(Path(args.json), (json.dumps({"rows": rows, "int8": facts, "images": what},
                                                        indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
