"""The `pbkit` command line: train, eval, export, build, emulate, bench, demo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pbkit.boards import BOARDS, DEFAULT_BOARD

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_MISMATCH = 0, 1, 2, 3


class CliError(Exception):
    """An expected failure: printed as one line, exit code EXIT_ERROR unless given."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def _cmd_train(args: argparse.Namespace) -> int:
    from pbkit.trainer.model import ModelConfig
    from pbkit.trainer.train import TrainOptions, train

    config = ModelConfig(model=args.model, width=args.width, mode=args.mode, division=args.division)
    opts = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                        precision=args.precision, threads=args.threads, limit_train=args.limit_train,
                        weight_decay=args.weight_decay, resume=args.resume)
    row = train(config, opts, args.data, args.out, progress=not args.no_progress)
    print(json.dumps(row) if args.json else f"trained: {args.out}/checkpoint.safetensors  "
          f"test top-1 (QAT graph) {100 * row.get('test_top1_qat', 0):.2f}%")
    return EXIT_OK


def _load(checkpoint: str):
    from pbkit.trainer.checkpoint import load_checkpoint

    return load_checkpoint(checkpoint)


def _cmd_eval(args: argparse.Namespace) -> int:
    from pbkit.trainer import data as cifar
    from pbkit.trainer.evaluate import evaluate

    model, _ = _load(args.checkpoint)
    split = cifar.load(args.data, "test").head(args.limit)
    result = evaluate(model, split, progress=not args.json and sys.stderr.isatty())
    result["checkpoint"] = str(args.checkpoint)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['images']} images: top-1 {100 * result['top1']:.2f}%  top-5 {100 * result['top5']:.2f}%  "
              f"(float QAT vs integer graph differ on {100 * result['float_integer_disagreement']:.2f}%)")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from pbkit.boards import get_board
    from pbkit.codegen.export import export_files, write_files
    from pbkit.trainer import data as cifar
    from pbkit.trainer.fold import fold_model

    board = get_board(args.board)
    model, _ = _load(args.checkpoint)
    ir = fold_model(model)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pbkit",
        description="PopBin binary neural networks: train on CIFAR-10, export to C, run on Cortex-M.",
        epilog="Exit codes: 0 ok, 1 error (message on stderr), 2 usage, 3 board/model mismatch.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a PopBin model (quantization-aware) on CIFAR-10",
                       description="Train a PopBin ReActNet-18 with straight-through quantizers. Writes "
                       "RUN_DIR/checkpoint.safetensors every epoch (atomically), metrics.csv, curves.png.")
    p.add_argument("--model", default="reactnet18", help="network (default: reactnet18)")
    p.add_argument("--width", type=float, default=0.25, help="width multiplier: C0 = 64 x W (default 0.25)")
    p.add_argument("--mode", default="popbin", help="training mode (default: popbin)")
    p.add_argument("--division", default="c_times_a", help="PopBin division rule (default: c_times_a)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--weight-decay", type=float, default=0.0, help="on real-valued parameters only")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="autocast for training steps; evaluation is always exact")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    p.add_argument("--data", required=True, help="cifar-10-batches-py folder")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("eval", help="top-1/top-5 of a checkpoint on the CIFAR-10 test set",
                       description="Evaluate with the exact integer graph (what the board computes).")
    p.add_argument("checkpoint", help="a .safetensors checkpoint from pbkit train")
    p.add_argument("--data", default="sample", help="cifar-10-batches-py folder, or 'sample' (the shipped "
                   "first 1,000 test images; default)")
    p.add_argument("--limit", type=int, default=None, help="first N test images only")
    p.add_argument("--json", action="store_true", help="machine-readable result")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("export", help="C sources for a board + memory report",
                       description="Fold the checkpoint into integers and render C: packed weights, integer "
                       "thresholds and the network table. Refuses a model that does not fit the board.")
    p.add_argument("checkpoint")
    p.add_argument("--target", choices=["stm32"], default="stm32", help="code generator (default stm32)")
    p.add_argument("--board", default=DEFAULT_BOARD, help=f"one of {', '.join(BOARDS)} (default {DEFAULT_BOARD})")
    p.add_argument("--kernel", choices=["reference", "fast"], default="fast",
                   help="popcount: compiler builtin (reference) or inline bit arithmetic (fast, default)")
    p.add_argument("--vectors", type=int, default=16, help="golden test vectors to include (0: none)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--json", action="store_true", help="print the memory report as JSON")
    p.set_defaults(func=_cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"pbkit {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except (ValueError, OSError) as exc:
        print(f"pbkit {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"pbkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
