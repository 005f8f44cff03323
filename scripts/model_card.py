"""Write the model card (pbkit/pretrained/NAME.json) of a trained run and copy its log and curves.

    python scripts/model_card.py RUN_DIR NAME --data ../shared/cifar10/cifar-10-batches-py --command "pbkit train ..."
    python scripts/model_card.py --remeasure NAME      # after a kernel change: the board figures again

The card records the model hash, the config, the exact training command, the measured accuracies of the
integer model (full test set, and the first 200 shipped sample images, which a test re-checks) and, on
netduinoplus2 with the fast kernel, the instructions per image (QEMU -icount, median of 3 sample images),
firmware flash and RAM; the same figures for the kernels that trade flash for instructions (tables, slices)
go under `other_kernels`. pbkit.zoo picks `make demo`'s model from the fast figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

from pbkit.paths import PRETRAINED
from pbkit.trainer import data as cifar
from pbkit.trainer.checkpoint import load_checkpoint
from pbkit.trainer.evaluate import evaluate
from pbkit.trainer.fold import fold_model
from pbkit.zoo import CARD_BOARD


def measure_board(checkpoint: Path, board_name: str = CARD_BOARD, images: int = 3, kernel: str = "fast") -> dict:
    """Export with `kernel`, build and run the model in QEMU: instructions per image, flash, RAM.

    A model the board cannot hold with this kernel gives {"kernel", "fits": False, "reason"} instead.
    """
    import tempfile

    from pbkit.boards import get_board
    from pbkit.codegen.export import export_files, write_files
    from pbkit.codegen.kernel import Kernel
    from pbkit.codegen.plan import ModelTooLargeError
    from pbkit.expected import expected_from_ir
    from pbkit.host.build import build_firmware
    from pbkit.host.emulator import Emulator
    from pbkit.host.profile import profile_board

    board = get_board(board_name)
    model, _ = load_checkpoint(checkpoint)
    ir, pixels = fold_model(model), cifar.load_sample().head(images).images
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        try:
            files = export_files(ir, board, Kernel.parse(kernel), source=checkpoint.name)
        except ModelTooLargeError as err:
            return {"kernel": kernel, "fits": False, "reason": str(err)}
        write_files(files, work / "model")
        built = build_firmware(work / "model", board.name, work / "build")
        with Emulator(built.elf, board.name, start_timeout=120.0) as emu:
            result = profile_board(emu.url, ir, expected_from_ir(ir, pixels), pixels, timeout=600.0)
    return {"kernel": kernel, "instructions_per_image": int(result["whole_image"]),
            "counter": "QEMU -icount instructions (exact; not cycles)", "images": images,
            "firmware_flash_bytes": built.flash_bytes, "firmware_ram_bytes": built.ram_bytes,
            "command": f"pbkit profile --board {board.name} --kernel {kernel} --images {images} "
                       f"--checkpoint {checkpoint.relative_to(ROOT)}"}


#: Measured besides the fast kernel, which the card's board figures (and `make demo`) use.
OTHER_KERNELS = ("tables", "slices")


def measure_card_board(checkpoint: Path) -> dict:
    """The card's CARD_BOARD entry: the fast kernel's figures, and each other kernel's under other_kernels."""
    figures = measure_board(checkpoint)
    figures["other_kernels"] = {k: measure_board(checkpoint, kernel=k) for k in OTHER_KERNELS}
    return figures


def write_card(card_path: Path, card: dict) -> None:
    from pbkit.files import atomic_write_bytes

    atomic_write_bytes(card_path, (json.dumps(card, indent=2) + "\n").encode())


def remeasure(name: str) -> None:
    card_path = PRETRAINED / f"{name}.json"
    card = json.loads(card_path.read_text())
    card.setdefault("boards", {})[CARD_BOARD] = measure_card_board(card_path.with_suffix(".safetensors"))
    write_card(card_path, card)
    print(json.dumps(card["boards"], indent=2))

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, nargs="?")
    parser.add_argument("name", nargs="?")
    parser.add_argument("--data", default=None)
    parser.add_argument("--command", default=None, help="the exact pbkit train command of the run")
    parser.add_argument("--log", type=Path, default=None, help="the run's stdout/stderr log")
    parser.add_argument("--remeasure", metavar="NAME", default=None, help="only re-measure a card's board figures")
    args = parser.parse_args()
    if args.remeasure:
        remeasure(args.remeasure)
        return
    if not (args.run_dir and args.name and args.data and args.command):
        parser.error("RUN_DIR, NAME, --data and --command are needed to write a card")

    checkpoint = PRETRAINED / f"{args.name}.safetensors"
    shutil.copyfile(args.run_dir / "checkpoint.safetensors", checkpoint)
    docs = ROOT / "docs" / "pretrained" / args.name
    docs.mkdir(parents=True, exist_ok=True)
    for name in ("metrics.csv", "curves.png", "config.json"):
        if (args.run_dir / name).exists():
            shutil.copyfile(args.run_dir / name, docs / name)
    if args.log:
        shutil.copyfile(args.log, docs / "train.log")

    model, extra = load_checkpoint(checkpoint)
    full = evaluate(model, cifar.load_split(args.data, "test"), progress=True)
    sample = evaluate(model, cifar.load_sample().head(200))
    with (args.run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    planned = json.loads((args.run_dir / "config.json").read_text())["train"]["epochs"]
    card = {
        "name": args.name,
        "model_sha256": fold_model(model).sha256(),
        "config": model.config.to_dict(),
        "command": args.command,
        "epochs": int(rows[-1]["epoch"]),
        # A campaign still running ships snapshots: the card says how far its schedule had come.
        "epochs_planned": planned,
        "train_seconds": round(sum(float(r["seconds"]) for r in rows)),
        "test_top1": full["top1"],
        "test_top5": full["top5"],
        "test_images": full["images"],
        "float_integer_disagreement": full["float_integer_disagreement"],
        "sample_first200_top1": sample["top1"],
        "eval_command": f"pbkit eval {checkpoint.relative_to(ROOT)} --data {args.data} --json",
        "boards": {CARD_BOARD: measure_card_board(checkpoint)},
    }
    write_card(checkpoint.with_suffix(".json"), card)
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
