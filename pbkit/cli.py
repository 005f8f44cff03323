"""The `pbkit` command line: train, eval, export, build, emulate, bench, profile, demo."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pbkit.boards import BOARDS, DEFAULT_BOARD
from pbkit.codegen.kernel import Kernel

if TYPE_CHECKING:
    import numpy as np

    from pbkit.boards import Board
    from pbkit.host.bench import Expected
    from pbkit.ir import IntegerModel

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_MISMATCH = 0, 1, 2, 3
EXIT_STOPPED = 130  # a training run stopped by SIGINT/SIGTERM, its state saved for --resume


class CliError(Exception):
    """An expected failure: printed as one line, exit code EXIT_ERROR unless given."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like a Ctrl-C so that every `finally` runs: emulators stop, reports are
    written."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def kernel_choice(text: str) -> Kernel:
    """argparse type: a kernel name, parsed here once and carried on as a Kernel."""
    try:
        return Kernel.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_kernel_option(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--kernel", type=kernel_choice, default=Kernel.FAST, metavar="{reference,fast,tables,slices}",
                   help=help_text)


def _first_images(split, limit: int | None, data: str | None):
    """The first `limit` images of `split`; an error when there are none, a note when fewer than asked."""
    if len(split) == 0:
        raise CliError(f"--data {data or 'sample'} holds no test images")
    if limit is not None and limit > len(split):
        print(f"pbkit: --limit {limit} is above the {len(split)} images of --data {data or 'sample'}: using all "
              f"{len(split)}", file=sys.stderr)
    return split.head(limit)


def _cmd_train(args: argparse.Namespace) -> int:
    from pbkit.trainer.model import ModelConfig
    from pbkit.trainer.train import TrainOptions, train

    _maybe_download(args)
    config = ModelConfig(model=args.model, width=args.width, mode=args.mode, division=args.division,
                         branch_ste=args.branch_ste, branch_levels=args.branch_levels, stem=args.stem,
                         head=args.head, delta_per_channel=args.delta_per_channel)
    if config.mode == "ptq-popcount":
        return _convert_ptq(args)
    opts = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                        precision=args.precision, threads=args.threads, limit_train=args.limit_train,
                        weight_decay=args.weight_decay, resume=args.resume, compile=args.compile,
                        schedule=args.schedule, device=args.device, two_step=args.two_step,
                        teacher=args.teacher, kd_weight=args.kd_weight, kd_temperature=args.kd_temperature,
                        init_from=args.init_from, channels_last=not args.no_channels_last,
                        label_smoothing=args.label_smoothing)
    try:
        row = train(config, opts, args.data, args.out, progress=not args.no_progress)
    except FileExistsError as exc:
        raise CliError(str(exc)) from None
    if row.get("rank", 0) != 0:  # under torchrun only rank 0 reports
        return EXIT_OK
    if "stopped" in row:
        where = row["stopped"]
        print(json.dumps(row) if args.json else f"stopped at epoch {where['epoch'] + 1} step {where['step']} "
              f"({where['signal'] or 'requested'}); the state is in {args.out}/train_state.pt: continue with the "
              f"same command and --resume", file=sys.stdout if args.json else sys.stderr)
        return EXIT_STOPPED
    if not row:
        print(json.dumps(row) if args.json else f"{args.out}: nothing to train (already at --epochs)")
        return EXIT_OK
    print(json.dumps(row) if args.json else f"trained: {args.out}/checkpoint.safetensors  "
          f"test top-1 (QAT graph) {100 * row['test_top1_qat']:.2f}%")
    return EXIT_OK


def _convert_ptq(args: argparse.Namespace) -> int:
    """--mode ptq-popcount trains nothing: it converts the baseline given with --from."""
    from pbkit.trainer.checkpoint import save_checkpoint
    from pbkit.trainer.model import convert_to_ptq

    if not args.init_from:
        raise CliError("--mode ptq-popcount converts a trained baseline: pass it with --from CHECKPOINT")
    baseline, _ = _load(args.init_from)
    if (baseline.config.model, baseline.config.width) != (args.model, args.width):
        raise CliError(f"{args.init_from} is {baseline.config.model} width {baseline.config.width}, "
                       f"not the requested {args.model} width {args.width}")
    if baseline.config.mode != "baseline":
        raise CliError(f"{args.init_from} is a {baseline.config.mode} checkpoint; ptq-popcount converts a baseline")
    out = Path(args.out) / "checkpoint.safetensors"
    if out.exists():
        raise CliError(f"{out} already exists; choose another --out")
    save_checkpoint(convert_to_ptq(baseline), out, extra={"converted_from": str(args.init_from)})
    print(json.dumps({"checkpoint": str(out)}) if args.json else f"converted (no training): {out}")
    return EXIT_OK


def _maybe_download(args: argparse.Namespace) -> None:
    """--download: fetch the official archive next to --data when the batches are not there yet."""
    if not getattr(args, "download", False) or args.data in (None, "sample"):
        return
    from pbkit.trainer import data as cifar

    target = Path(args.data)
    if not (target / "test_batch").exists():
        args.data = str(cifar.download(target.parent))


def _load(checkpoint: str):
    from pbkit.trainer.checkpoint import load_checkpoint

    return load_checkpoint(checkpoint)


def _cmd_eval(args: argparse.Namespace) -> int:
    from pbkit.trainer import data as cifar
    from pbkit.trainer.evaluate import evaluate

    _maybe_download(args)
    model, _ = _load(args.checkpoint)
    split = _first_images(cifar.load(args.data, "test"), args.limit, args.data)
    result = evaluate(model, split, progress=not args.json and sys.stderr.isatty())
    result["checkpoint"] = str(args.checkpoint)
    if args.confusion:
        from pbkit.trainer.plots import plot_confusion

        plot_confusion(result["confusion"], cifar.CLASSES, Path(args.confusion),
                       f"{Path(args.checkpoint).name}: top-1 {100 * result['top1']:.2f}% on {result['images']} images")
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['images']} images: top-1 {100 * result['top1']:.2f}%  top-5 {100 * result['top5']:.2f}%  "
              f"(float QAT vs integer graph differ on {100 * result['float_integer_disagreement']:.2f}%)")
        print("  per class: " + "  ".join(f"{k} {'-' if v is None else f'{100 * v:.1f}%'}"
                                          for k, v in result["per_class_top1"].items()))
        if args.confusion:
            print(f"  confusion matrix: {args.confusion}")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from pbkit.boards import get_board
    from pbkit.codegen.export import export_files, write_files
    from pbkit.expected import load_folded
    from pbkit.trainer import data as cifar

    board = get_board(args.board)
    ir = load_folded(args.checkpoint)
    golden = cifar.load_sample().images[: args.vectors] if args.vectors else None
    files = export_files(ir, board, args.kernel, source=Path(args.checkpoint).name, golden_images=golden)
    write_files(files, Path(args.out))
    report = json.loads(files["memory_report.json"])
    if args.json:
        print(json.dumps(report))
    else:
        print(f"exported {Path(args.checkpoint).name} -> {args.out} for {board.name} ({board.mcu})")
        print(f"  model sha256 {report['model_sha256'][:16]}...  kernel {args.kernel}")
        print(f"  flash (model data) {report['flash_bytes_model']:,} B of {board.flash_bytes:,} B; "
              f"model RAM {report['ram_bytes_model']:,} B of {board.ram_bytes:,} B "
              f"(int{report['plan']['residual_bits']} residual)")
        print(f"  next: pbkit build {args.out} --board {board.name}")
    return EXIT_OK


def _cmd_build(args: argparse.Namespace) -> int:
    from pbkit.host.build import build_firmware

    out = Path(args.out) if args.out else Path(args.model_dir) / "build" / args.board
    result = build_firmware(Path(args.model_dir), args.board, out, protocol=args.protocol)
    if args.json:
        print(json.dumps({"elf": str(result.elf), "board": result.board, "protocol": result.protocol,
                          "flash_bytes": result.flash_bytes,
                          "ram_bytes": result.ram_bytes, "flash_total": result.flash_total,
                          "ram_total": result.ram_total}))
    else:
        print(f"built {result.elf}")
        print(f"  {result.summary()}")
    return EXIT_OK


def _cmd_emulate(args: argparse.Namespace) -> int:
    import time

    from pbkit.host.emulator import Emulator

    # On a pty the firmware may speak either protocol (pbkit build --protocol), so QEMU is
    # not held until it answers pbkit's HELLO.
    with Emulator(Path(args.elf), args.board, port=args.tcp_port, pty=args.pty, wait_ready=not args.pty) as emu:
        print(f"pty: {emu.url}" if args.pty else emu.url, flush=True)
        print(f"QEMU {emu.board.qemu_machine} running {args.elf}; Ctrl-C to stop", file=sys.stderr, flush=True)
        while emu.running:
            time.sleep(0.5)
        raise CliError(emu.exit_message())


def _print_bench(summary: dict, report: str | None) -> None:
    print(f"{summary['images']} images on {summary['board']}: top-1 {100 * summary['top1']:.2f}%  "
          f"agreement with PyTorch eval {summary['agreement']:.4f}  "
          f"({100 * summary['logits_identical']:.1f}% identical logits)")
    print(f"  {summary['counter']} per image: median {summary['per_image_median']:,.0f}  "
          f"(min {summary['per_image_min']:,.0f}, max {summary['per_image_max']:,.0f})")
    ports = summary.get("ports", {})
    if len(ports) > 1 or any(p.get("reconnects") or p.get("dropped") for p in ports.values()):
        for url, p in ports.items():
            how = [f"{p.get('reconnects')} reconnect(s)"] if p.get("reconnects") else []
            how += [f"dropped: {p['dropped']}"] if p.get("dropped") else []
            how += ["earlier run"] if p["status"] == "earlier run" else []
            print(f"  {url} ({p['board']}): {p['images']} images" + (f"; {'; '.join(how)}" if how else ""))
    if report:
        print(f"  report: {report}")


def _log_event(line: str) -> None:
    print(f"pbkit: {line}", file=sys.stderr, flush=True)


def _check_ports(urls: list[str]) -> None:
    """A --port given twice is a usage error (exit 2)."""
    twice = sorted({u for u in urls if urls.count(u) > 1})
    if twice:
        raise CliError(f"--port {twice[0]} is given twice: a board serves one connection", EXIT_USAGE)


def _bench(urls: list[str], expected: Expected, split, report: Path | None, **kwargs) -> dict:
    """run_bench with its failures as CLI errors: exit 3 for a board that runs another model or breaks
    its contract."""
    from pbkit.host.bench import ModelMismatchError, run_bench
    from pbkit.host.link import BoardContractError

    try:
        return run_bench(urls, expected, split, report, log=_log_event, **kwargs)
    except (ModelMismatchError, BoardContractError) as exc:
        raise CliError(str(exc), EXIT_MISMATCH) from None


def _cmd_bench(args: argparse.Namespace) -> int:
    from pbkit.expected import expected_from_checkpoint
    from pbkit.trainer import data as cifar

    split = _first_images(cifar.load(args.data, "test"), args.limit, args.data)
    report = Path(args.report) if args.report else None
    if args.resume and report is None:
        raise CliError("--resume continues the run of a --report: give it", EXIT_USAGE)
    _check_ports(args.port)
    expected = expected_from_checkpoint(args.checkpoint, split.images)
    summary = _bench(args.port, expected, split, report, timeout=args.timeout, resume=args.resume)
    print(json.dumps(summary)) if args.json else _print_bench(summary, args.report)
    return EXIT_OK if summary["agreement"] == 1.0 else EXIT_MISMATCH


def _cmd_demo(args: argparse.Namespace) -> int:
    from pbkit.boards import get_board
    from pbkit.codegen.export import export_files, write_files
    from pbkit.expected import expected_from_ir, load_folded
    from pbkit.host.bench import move_aside
    from pbkit.host.build import build_firmware
    from pbkit.host.emulator import Emulator
    from pbkit.trainer import data as cifar

    board = get_board(args.board)
    checkpoint = Path(args.checkpoint)
    work = Path(args.workdir)
    ir = load_folded(checkpoint)
    split = _first_images(cifar.load_sample(), args.limit, "sample")
    print(f"[1/4] export {checkpoint.name} -> {work / 'model'}", flush=True)
    files = export_files(ir, board, args.kernel, source=checkpoint.name, golden_images=split.images[:16])
    write_files(files, work / "model")
    report = json.loads(files["memory_report.json"])
    print(f"      model data {report['flash_bytes_model']:,} B flash, {report['ram_bytes_model']:,} B RAM, "
          f"kernel {args.kernel}", flush=True)
    print(f"[2/4] build firmware for {board.name} ({board.mcu}) with arm-none-eabi-gcc", flush=True)
    built = build_firmware(work / "model", board.name, work / "build" / board.name)
    print(f"      {built.summary()}", flush=True)
    print(f"[3/4] start {args.instances} x QEMU {board.qemu_machine} (-icount: instructions are counted exactly)",
          flush=True)
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(Emulator(built.elf, board.name)).url for _ in range(args.instances)]
        print(f"      serial ports {' '.join(urls)}", flush=True)
        print(f"[4/4] stream {len(split)} CIFAR-10 test images over the serial links", flush=True)
        # A demo always starts afresh, and destroys no earlier report.
        for old, new in move_aside(Path(args.report)):
            print(f"      the previous {old} is now {new}", flush=True)
        summary = _bench(urls, expected_from_ir(ir, split.images), split, Path(args.report), timeout=args.timeout)
    summary.update({"flash_bytes": built.flash_bytes, "ram_bytes": built.ram_bytes,
                    "checkpoint": checkpoint.name, "kernel": args.kernel.value})
    from pbkit.files import atomic_write_bytes

    atomic_write_bytes(Path(args.report), (json.dumps(summary, indent=2) + "\n").encode())
    print()
    _print_bench(summary, args.report)
    return EXIT_OK if summary["agreement"] == 1.0 else EXIT_MISMATCH


def _cmd_profile(args: argparse.Namespace) -> int:
    from pbkit.boards import get_board
    from pbkit.expected import expected_from_ir, load_folded
    from pbkit.host.bench import ModelMismatchError
    from pbkit.host.link import BoardContractError
    from pbkit.host.profile import format_profile, profile_board
    from pbkit.trainer import data as cifar

    if args.images < 1:
        raise CliError("--images must be at least 1", EXIT_USAGE)
    checkpoint = Path(args.checkpoint)
    images = cifar.load_sample().head(args.images).images
    ir = load_folded(checkpoint)
    expected = expected_from_ir(ir, images)
    try:
        if args.port:
            result = profile_board(args.port, ir, expected, images, timeout=args.timeout)
        else:
            result = _profile_emulated(get_board(args.board), ir, expected, checkpoint, args, images)
    except (ModelMismatchError, BoardContractError) as exc:
        raise CliError(str(exc), EXIT_MISMATCH) from None
    result.update({"checkpoint": str(checkpoint), "kernel": None if args.port else args.kernel.value})
    if args.png:
        from pbkit.host.profile_plot import plot_profile

        plot_profile(result, Path(args.png))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['board']}: {Path(checkpoint).name}, {result['images']} image(s), "
              f"{result['counter']} per layer (median){'' if args.port else f', kernel {args.kernel}'}")
        print(format_profile(result))
        if "estimated_cycles" in result:
            from pbkit.host.cycles import format_profile_estimate

            print(format_profile_estimate(result))
        if args.png:
            print(f"  chart: {args.png}")
    if result["logits_identical"] != 1.0:
        print(f"pbkit profile: the board's logits differ from PyTorch eval on "
              f"{100 * (1 - result['logits_identical']):.0f}% of the images", file=sys.stderr)
        return EXIT_MISMATCH
    return EXIT_OK


def _profile_emulated(board: Board, ir: IntegerModel, expected: Expected, checkpoint: Path, args: argparse.Namespace,
                      images: np.ndarray) -> dict:
    """Export, build and start QEMU for an emulated board, then profile it."""
    from pbkit.codegen.export import export_files, write_files
    from pbkit.host.build import build_firmware
    from pbkit.host.emulator import Emulator
    from pbkit.host.profile import profile_board

    if not board.emulated:
        raise CliError(f"{board.name} is not emulated: flash its firmware (pbkit export, then PlatformIO) "
                       "and pass its serial port with --port", EXIT_USAGE)
    work = Path(args.workdir) / f"{board.name}-{args.kernel}"
    write_files(export_files(ir, board, args.kernel, source=checkpoint.name), work / "model")
    built = build_firmware(work / "model", board.name, work / "build")
    print(f"built {built.elf} ({built.summary()}); starting QEMU {board.qemu_machine}", file=sys.stderr, flush=True)
    with Emulator(built.elf, board.name) as emu:
        result = profile_board(emu.url, ir, expected, images, timeout=args.timeout)
    from pbkit.host.cycles import CyclesUnavailableError, attach_profile_estimate

    try:  # estimated cycles beside the exact instructions (labelled estimates; optional packages)
        return attach_profile_estimate(result, built.elf, images[0].tobytes(), board.cpu, board.flash_wait_states)
    except CyclesUnavailableError as exc:
        print(f"pbkit profile: no estimated cycles: {exc}", file=sys.stderr)
        return result


def _cost_text(figures: dict) -> str:
    """One kernel's card figures on a `pbkit models` line."""
    return (f"{figures['instructions_per_image']:>12,} instr/image  flash {figures['firmware_flash_bytes']:,} B  "
            f"RAM {figures['firmware_ram_bytes']:,} B")


def _cmd_models(args: argparse.Namespace) -> int:
    from pbkit.zoo import CARD_BOARD, DEMO_BUDGET_INSTRUCTIONS, default_model, shipped_models

    models, default = shipped_models(), default_model().name
    rows = [{"name": m.name, "default": m.name == default, "test_top1": m.top1, "test_top5": m.card.get("test_top5"),
             "epochs": m.card.get("epochs"), "epochs_planned": m.card.get("epochs_planned", m.card.get("epochs")),
             "checkpoint": str(m.checkpoint),
             **m.card.get("boards", {}).get(CARD_BOARD, {})} for m in models]
    if args.json:
        print(json.dumps({"board": CARD_BOARD, "demo_budget_instructions": DEMO_BUDGET_INSTRUCTIONS, "models": rows}))
        return EXIT_OK
    print(f"shipped models (integer model, 10,000 CIFAR-10 test images; cost on {CARD_BOARD}, fast kernel, "
          "QEMU instructions):")
    for r in rows:
        cost = _cost_text(r) if "instructions_per_image" in r else "cost not measured"
        trained = (f"{r['epochs']} epochs" if r["epochs"] == r["epochs_planned"]
                   else f"epoch {r['epochs']} of {r['epochs_planned']} (snapshot)")
        mark = "*" if r["default"] else " "
        print(f"  {mark} {r['name']:<32} top-1 {100 * r['test_top1']:.2f} %  {trained:<26} {cost}")
        for kernel, k in r.get("other_kernels", {}).items():
            figures = _cost_text(k) if k.get("fits", True) else "does not fit"
            print(f"    {'':<32} {'':<13}  {'--kernel ' + kernel:<26} {figures}")
    print(f"* the default (demo, profile): the most accurate within {DEMO_BUDGET_INSTRUCTIONS:,} instructions per "
          "image; any other: --checkpoint NAME")
    return EXIT_OK


def _cmd_ops(args: argparse.Namespace) -> int:
    from pbkit.codegen.ops import count_ops, totals

    layers = count_ops(args.model, args.width, args.mode, stem=args.stem, head=args.head)
    total = totals(layers)
    if args.json:
        print(json.dumps({"model": args.model, "width": args.width, "mode": args.mode, "stem": args.stem,
                          "head": args.head,
                          "layers": [layer.to_dict() for layer in layers], "total": total}))
        return EXIT_OK
    cols = ("xnor_words", "popcounts", "adds", "compares", "multiplies", "shifts", "macs")
    print(f"{'layer':<16}{'output':>12}" + "".join(f"{c:>13}" for c in cols))
    for layer in layers:
        print(f"{layer.name:<16}{layer.output:>12}" + "".join(f"{getattr(layer, c):>13,}" for c in cols))
    print(f"{args.model} width {args.width} {args.mode}: requantization multiplies {total['multiplies']:,} "
          f"(hidden layers {total['hidden_multiplies']:,}), shifts {total['shifts']:,}; "
          f"stem + head MACs {total['stem_head_macs']:,}; multiplies per image in all {total['all_multiplies']:,}"
          + (" (stem and head multiply-free)" if args.stem == "bitplanes" and args.head == "shift" else ""))
    return EXIT_OK


def _cmd_experiment(args: argparse.Namespace) -> int:
    from pbkit.trainer.experiment import run_deck_tables
    from pbkit.trainer.train import TrainOptions

    opts = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                        threads=args.threads, limit_train=args.limit_train, compile=args.compile)
    results = run_deck_tables(args.width, opts, args.data, args.out, limit_test=args.limit_test,
                              progress=not args.no_progress, only=args.only)
    if args.json:
        print(json.dumps(results))
    else:
        print((Path(args.out) / "results.md").read_text())
        print(f"wrote {args.out}/results.md, results.csv, results.png")
    return EXIT_OK


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a PopBin model (quantization-aware) on CIFAR-10",
                       description="Train a PopBin ReActNet-18 with straight-through quantizers. Writes "
                       "OUT/checkpoint.safetensors and OUT/train_state.pt (weights, optimizer, schedule, RNG) "
                       "every epoch, atomically, with metrics.csv and curves.png. SIGINT/SIGTERM saves the "
                       "state mid-epoch and exits 130; the same command with --resume continues bit for bit.")
    model = p.add_argument_group("model", "what is trained (recorded in the checkpoint)")
    model.add_argument("--model", default="reactnet18", help="reactnet18 (learnable RSign thresholds, default) or "
                       "birealnet18 (sign at 0)")
    model.add_argument("--width", type=float, default=0.25, help="width multiplier: C0 = 64 x W (default 0.25)")
    model.add_argument("--mode", default="popbin", choices=["popbin", "baseline", "ptq-popcount",
                                                             "simple-qat-popcount", "real"],
                       help="popbin (default): +-N/division_num, trained; baseline: BN + requantization (multiply + "
                       "shift on the device); ptq-popcount: converts the baseline given with --from, no training; "
                       "simple-qat-popcount: +-alpha (mean |W|), trained; real: a float network, only as a "
                       "--teacher (docs/modes.md)")
    model.add_argument("--division", default="c_times_a", help="PopBin delta = N / division_num: c_plus_a, n_plus_a, "
                       "c_times_a (default), n_times_a or minmax (docs/integer-contract.md)")
    model.add_argument("--branch-ste", choices=["clipped", "identity", "approx"], default="clipped",
                       help="pseudo-gradient of the branch sign sign(BN(p)): clipped where |BN(p)| > 1 (default), "
                       "identity, or approx (Bi-Real's 2 - 2|x|); training only, the exported model is the same")
    model.add_argument("--branch-levels", type=int, choices=[2, 3], default=2,
                       help="values the popbin branch adds: 2 = +-delta (one compare per output, default), 3 = "
                       "-delta/0/+delta (two compares per output, no multiply; exported and run in C like the default)")
    model.add_argument("--delta-per-channel", action="store_true",
                       help="popbin: one delta (and one learnable a) per output channel instead of one per layer; "
                       "still an add, no multiply. Trains, folds and evaluates as integers; the C kernels take one "
                       "delta per layer, so export refuses it (an ablation reading, docs/results.md)")
    model.add_argument("--stem", choices=["int8", "bitplanes"], default="int8",
                       help="int8 (default): int8 3x3 conv on pixel - 128 (multiplies); bitplanes: the image as 10 "
                       "thermometer bit planes per colour channel (one 32-bit word a pixel), binary 3x3 conv by "
                       "XOR + popcount, 9 levels by thresholds: no multiply")
    model.add_argument("--head", choices=["int8", "shift"], default="int8",
                       help="int8 (default): FC with int8 weights (multiplies); shift: weights 0 or +-2^e (e <= 6), "
                       "applied as shifts and adds/subtracts: no multiply")
    recipe = p.add_argument_group("recipe", "how it is trained; --resume refuses a change to these")
    recipe.add_argument("--epochs", type=int, default=30, help="epochs in the run (default 30)")
    recipe.add_argument("--batch-size", type=int, default=128)
    recipe.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of the one-cycle schedule")
    recipe.add_argument("--schedule", choices=["onecycle", "cosine", "linear"], default="onecycle",
                        help="learning-rate schedule: one-cycle (default), or 1-epoch warm-up then cosine or linear "
                        "decay to 0; --resume --epochs stretches what is left of it (trainer/schedule.py)")
    recipe.add_argument("--label-smoothing", type=float, default=0.0, help="label smoothing of the cross-entropy "
                        "(default 0)")
    recipe.add_argument("--weight-decay", type=float, default=0.0, help="on real-valued parameters only")
    recipe.add_argument("--two-step", action="store_true", help="two-step training: the first half of the epochs "
                        "with real weights and binary activations, the second half fully binary")
    recipe.add_argument("--teacher", default=None, metavar="CKPT", help="distil from this checkpoint (any pbkit "
                        "model; train one with --mode real)")
    recipe.add_argument("--kd-weight", type=float, default=1.0, help="share of the distillation loss (default 1.0, "
                        "the rest is cross-entropy)")
    recipe.add_argument("--kd-temperature", type=float, default=1.0)
    recipe.add_argument("--from", dest="init_from", default=None, metavar="CKPT", help="start from this checkpoint's "
                        "weights (same model and width; e.g. a --mode real or baseline run)")
    recipe.add_argument("--seed", type=int, default=0)
    speed = p.add_argument_group("speed", "where and how fast; the same maths")
    speed.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when available)")
    speed.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                       help="autocast for training steps; evaluation is always exact")
    speed.add_argument("--no-channels-last", action="store_true",
                       help="keep activations NCHW (default NHWC: about 1.5x faster on CPU; same maths, float "
                       "sums in another order)")
    speed.add_argument("--compile", action="store_true",
                       help="torch.compile the training step (minutes of compiling; measured slower than the NHWC "
                       "default on a 2-core AVX-512 CPU, bench/train_speed.py)")
    speed.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    run = p.add_argument_group("data and run folder")
    run.add_argument("--data", required=True, help="cifar-10-batches-py folder")
    run.add_argument("--download", action="store_true",
                     help="fetch the official CIFAR-10 archive (MD5-checked) when --data has no batches")
    run.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    run.add_argument("--out", required=True, help="run folder")
    run.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped (mid-epoch "
                     "after SIGINT/SIGTERM, bit-identical to an uninterrupted run); --epochs may be raised to "
                     "extend it; other options that change the result must match the run's")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    p.set_defaults(func=_cmd_train)


def _add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="top-1/top-5 of a checkpoint on the CIFAR-10 test set",
                       description="Evaluate with the exact integer graph (what the board computes).")
    p.add_argument("checkpoint", help="a .safetensors checkpoint from pbkit train, or a shipped model's name "
                   "(`pbkit models`)")
    p.add_argument("--data", default="sample", help="cifar-10-batches-py folder, or 'sample' (the shipped "
                   "first 1,000 test images; default)")
    p.add_argument("--download", action="store_true",
                   help="fetch the official CIFAR-10 archive (MD5-checked) when --data has no batches")
    p.add_argument("--limit", type=positive_int, default=None, help="first N test images only")
    p.add_argument("--confusion", default=None, metavar="PNG", help="save a confusion-matrix plot")
    p.add_argument("--json", action="store_true", help="machine-readable result")
    p.set_defaults(func=_cmd_eval)


def _add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="C sources for a board + memory report",
                       description="Fold the checkpoint into integers and render C: packed weights, integer "
                       "thresholds and the network table. Refuses a model that does not fit the board.")
    p.add_argument("checkpoint", help="a .safetensors checkpoint, or a shipped model's name (`pbkit models`)")
    p.add_argument("--target", choices=["stm32"], default="stm32", help="code generator (default stm32)")
    p.add_argument("--board", default=DEFAULT_BOARD, help=f"one of {', '.join(BOARDS)} (default {DEFAULT_BOARD})")
    _add_kernel_option(p, "popcount: compiler builtin (reference), inline bit arithmetic (fast, default), fast "
                       "plus popcount tables for the layers of at most 32 input channels (tables: about a fifth "
                       "fewer instructions per image, 576 B of flash per output channel and 16 input channels of "
                       "each such layer), or tables plus bit-sliced tables for the layers of 64 to 224 input "
                       "channels and a multiple of 32 output channels (slices: about 28 %% fewer instructions "
                       "than fast, 704 B of flash per input word, tap and 32 output channels: a 1 MB board for "
                       "the width-0.25 models). docs/performance.md has the figures")
    p.add_argument("--vectors", type=int, default=16, help="golden test vectors to include (0: none)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--json", action="store_true", help="print the memory report as JSON")
    p.set_defaults(func=_cmd_export)


def _add_build_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="firmware ELF for a board with the Debian arm-none-eabi toolchain",
                       description="Compile firmware/ with an exported model folder. Fails, with the "
                       "numbers, when the image does not fit the board.")
    p.add_argument("model_dir", help="a folder written by pbkit export")
    p.add_argument("--board", default=DEFAULT_BOARD, help=f"one of {', '.join(BOARDS)}")
    p.add_argument("--out", default=None, help="build folder (default MODEL_DIR/build/BOARD)")
    p.add_argument("--protocol", choices=["pbkit", "mlperf"], default="pbkit",
                   help="what the serial port speaks: pbkit (framed, CRC-checked; what bench and profile use; "
                   "default) or mlperf (the MLPerf Tiny runner's text commands at 115200 baud, model ic01: "
                   "firmware/README.md)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_build)


def _add_emulate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("emulate", help="run a firmware ELF in QEMU; prints its socket:// serial URL",
                       description="Start qemu-system-arm with -icount (exact instruction counts) and the "
                       "board's UART on a local TCP port. Runs until Ctrl-C.")
    p.add_argument("elf")
    p.add_argument("--board", default=DEFAULT_BOARD)
    p.add_argument("--tcp-port", type=int, default=None, help="TCP port (default: a free one)")
    p.add_argument("--pty", action="store_true", help="put the UART on a pseudo-terminal instead and print "
                   "'pty: /dev/pts/N' (for serial clients that need a device, such as the MLPerf Tiny runner)")
    p.set_defaults(func=_cmd_emulate)


def _add_bench_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="stream test images to boards over serial; accuracy, agreement, cost",
                       description="Send CIFAR-10 test images to one or more boards (--port may repeat: "
                       "images are shared), compare each answer with PyTorch eval of CHECKPOINT, and "
                       "report top-1, agreement and instructions (QEMU) or cycles (hardware) per image. "
                       "Exit code 3 when the board runs another model or disagrees with PyTorch.")
    p.add_argument("--port", action="append", required=True,
                   help="serial port or URL (/dev/ttyACM0, socket://127.0.0.1:PORT); repeatable")
    p.add_argument("--checkpoint", required=True, help="the checkpoint the board was exported from (a file or a "
                   "shipped model's name)")
    p.add_argument("--data", default="sample", help="cifar-10-batches-py folder or 'sample' (default)")
    p.add_argument("--limit", type=positive_int, default=None, help="first N test images only")
    p.add_argument("--report", default=None, help="summary JSON (per-image results go to REPORT.images.jsonl); "
                   "an existing report is never overwritten")
    p.add_argument("--resume", action="store_true", help="continue the run of --report: measure only the images "
                   "it lacks (it must be of the same checkpoint, --data and --limit)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one reply; a board that "
                   "misses it is reconnected (new HELLO) and its image goes to the other boards")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_bench)


def _add_profile_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="instructions (QEMU) or cycles (hardware) per layer of one image",
                       description="Export the checkpoint, build the firmware, start QEMU (or use the board at "
                       "--port) and let the firmware time every layer with its counter: prints per layer its "
                       "instructions or cycles, its share of the image and, for binary layers, the count per "
                       "32 useful XNOR bits (out_h x out_w x out_channels x 9 x Cin / 32 words: a 16-channel "
                       "word counts as half). "
                       "Exit code 3 when the board runs another model or its logits differ from PyTorch eval.")
    p.add_argument("--board", default=DEFAULT_BOARD, help=f"board to build for and emulate, one of {', '.join(BOARDS)} "
                   f"(default {DEFAULT_BOARD}); with --port, the board reports itself")
    p.add_argument("--checkpoint", default=None, help="a checkpoint file or a shipped model's name "
                   "(`pbkit models`; default: the demo's model)")
    _add_kernel_option(p, "popcount kernel to export with: reference, fast (default), tables or slices (see `pbkit "
                       "export --help`); ignored with --port")
    p.add_argument("--images", type=int, default=1, help="shipped sample images to run; medians per layer (default 1)")
    p.add_argument("--port", default=None, help="profile the board at this serial port or URL instead of "
                   "building and emulating; it must run the checkpoint's model")
    p.add_argument("--workdir", default="build/profile", help="export and build folder (default build/profile)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one reply")
    p.add_argument("--png", default=None, metavar="PATH", help="save a per-layer bar chart")
    p.add_argument("--json", action="store_true", help="machine-readable result")
    p.set_defaults(func=_cmd_profile)


def _add_ops_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ops", help="per-layer operation counts (XNOR words, popcounts, multiplies...)",
                       description="Count, per layer and in total, the operations of one image on the device: "
                       "XNOR words, popcounts, adds, compares, requantization multiplies and shifts, and the stem's "
                       "and head's MACs apart. `--width 1.0 --mode baseline` gives the deck's 557,056.")
    p.add_argument("--model", default="reactnet18", help="reactnet18 or birealnet18")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--mode", default="popbin", help="baseline, ptq-popcount, simple-qat-popcount or popbin")
    p.add_argument("--stem", choices=["int8", "bitplanes"], default="int8", help="int8 (27 MACs an output, "
                   "default) or bitplanes (XNOR + popcount, no multiply)")
    p.add_argument("--head", choices=["int8", "shift"], default="int8", help="int8 (a MAC a weight, default) or "
                   "shift (power-of-two weights: a shift and an add, no multiply)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_ops)


def _add_models_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="the shipped models: accuracy and cost on the board, the default marked",
                       description="List the shipped pretrained models (pbkit/pretrained/*.json cards): top-1 of "
                       "the integer model on the 10,000 test images and, on netduinoplus2 with the fast kernel, "
                       "instructions per image, firmware flash and RAM. Any command's --checkpoint takes a name.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_models)


def _add_demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the shipped model end to end on the emulated STM32F405",
                       description="Export the shipped pretrained model, build the firmware, start QEMU "
                       "netduinoplus2 and stream the shipped CIFAR-10 test sample over serial.")
    p.add_argument("--checkpoint", default=None, help="a checkpoint file or a shipped model's name "
                   "(`pbkit models`; default: the demo's model)")
    p.add_argument("--board", default=DEFAULT_BOARD, help="an emulated board")
    _add_kernel_option(p, "kernel to export with: fast (default; 170 KB of flash for the demo's model), tables or "
                       "slices (fewer instructions, more flash; `pbkit export --help`), or reference")
    p.add_argument("--limit", type=positive_int, default=None, help="first N sample images (default all 1,000)")
    p.add_argument("--instances", type=int, default=2, help="QEMU instances sharing the images (default 2)")
    p.add_argument("--workdir", default="build/demo")
    p.add_argument("--report", default="report.json", help="summary JSON (default report.json); an existing one "
                   "is moved aside to REPORT.N.json, never overwritten")
    p.add_argument("--timeout", type=float, default=60.0)
    p.set_defaults(func=_cmd_demo)


def _add_experiment_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="reproducible experiments: deck-tables",
                       description="deck-tables trains and evaluates every row of the deck's three tables "
                       "(PTQ, Simple QAT, QAT with the five division rules) for ReActNet-18 and Bi-RealNet-18, "
                       "each row in OUT/rows/ROW. Resumable: rerun the same command and finished rows are "
                       "skipped, a cut-off row continues from its last epoch. Writes OUT/results.md (ours beside "
                       "the deck), results.csv and results.png after every row.")
    p.add_argument("name", choices=["deck-tables"])
    p.add_argument("--width", type=float, default=0.125, help="width multiplier for every row (default 0.125)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per trained row (default 2)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--compile", action="store_true", help="torch.compile each row's training graph")
    p.add_argument("--limit-train", type=int, default=None, help="first N training images (smoke runs)")
    p.add_argument("--limit-test", type=int, default=None, help="first N test images (smoke runs)")
    p.add_argument("--only", action="append", default=None, metavar="ROW", help="run only this row key (repeatable)")
    p.add_argument("--data", required=True, help="cifar-10-batches-py folder")
    p.add_argument("--out", required=True, help="experiment folder")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=_cmd_experiment)


def build_parser() -> argparse.ArgumentParser:
    """The pbkit command line: one subcommand per job, each added by its own _add_*_parser."""
    parser = argparse.ArgumentParser(
        prog="pbkit",
        description="PopBin binary neural networks: train on CIFAR-10, export to C, run on Cortex-M.",
        epilog="Exit codes: 0 ok, 1 error (message on stderr), 2 usage, 3 board/model mismatch, "
               "130 training stopped by a signal (state saved; continue with --resume).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_train_parser, _add_eval_parser, _add_export_parser, _add_build_parser, _add_emulate_parser,
                _add_bench_parser, _add_profile_parser, _add_ops_parser, _add_models_parser,
                _add_demo_parser, _add_experiment_parser):
        add(sub)
    return parser


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def _terminate_like_ctrl_c():
    """SIGTERM and SIGHUP raise Terminated in the main thread while a command runs (then restored)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {signum: signal.signal(signum, _raise_terminated) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if "checkpoint" in vars(args):  # a file, a shipped model's name, or none (the default model)
        from pbkit.zoo import UnknownModelError, resolve_checkpoint

        try:
            args.checkpoint = str(resolve_checkpoint(args.checkpoint))
        except UnknownModelError as exc:
            print(f"pbkit {args.command}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        with _terminate_like_ctrl_c():
            return args.func(args)
    except CliError as exc:
        print(f"pbkit {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"pbkit {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Terminated as exc:
        print(f"pbkit {args.command}: terminated by signal {exc.signum}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print(f"pbkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
