"""Write the model card (pbkit/pretrained/NAME.json) of a trained run and copy its log and curves.

    python scripts/model_card.py RUN_DIR NAME --data ../shared/cifar10/cifar-10-batches-py --command "pbkit train ..."
    python scripts/model_card.py --remeasure NAME      # after a kernel change: the board figures again

The card records the model hash, the config, the exact training command, the measured accuracies of the
integer model (full test set, and the first 200 shipped sample images, which a test re-checks) and, on
netduinoplus2 with the fast kernel, the instructions per image (QEMU -icount, median of 3 sample images),
firmware flash and RAM. pbkit.zoo picks `make demo`'s model from these cards.
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


def measure_board(checkpoint: Path, board_name: str = CARD_BOARD, images: int = 3) -> dict:
    """Export (fast kernel), build and run the model in QEMU: instructions per image, flash, RAM."""
    import tempfile

    from pbkit.boards import get_board
    from pbkit.codegen.export import export_files, write_files
    from pbkit.codegen.kernel import Kernel
    from pbkit.expected import expected_from_ir
    from pbkit.host.build import build_firmware
    from pbkit.host.emulator import Emulator
    from pbkit.host.profile import profile_board

    board = get_board(board_name)
    model, _ = load_checkpoint(checkpoint)
    ir, pixels = fold_model(model), cifar.load_sample().head(images).images
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_files(export_files(ir, board, Kernel.FAST, source=checkpoint.name), work / "model")
        built = build_firmware(work / "model", board.name, work / "build")
        with Emulator(built.elf, board.name, start_timeout=120.0) as emu:
            result = profile_board(emu.url, ir, expected_from_ir(ir, pixels), pixels, timeout=600.0)
    return {"kernel": "fast", "instructions_per_image": int(result["whole_image"]),
            "counter": "QEMU -icount instructions (exact; not cycles)", "images": images,
            "firmware_flash_bytes": built.flash_bytes, "firmware_ram_bytes": built.ram_bytes,
            "command": f"pbkit profile --board {board.name} --kernel fast --images {images} "
                       f"--checkpoint {checkpoint.relative_to(ROOT)}"}


def remeasure(name: str) -> None:
    card_path = PRETRAINED / f"{name}.json"
    card = json.loads(card_path.read_text())
    card.setdefault("boards", {})[CARD_BOARD] = measure_board(card_path.with_suffix(".safetensors"))
    card_path.write_text(json.dumps(card, indent=2) + "\n")
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
        "boards": {CARD_BOARD: measure_board(checkpoint)},
    }
    checkpoint.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
