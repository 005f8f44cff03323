"""Write the model card (pbkit/pretrained/NAME.json) of a trained run and copy its log and curves.

    python scripts/model_card.py RUN_DIR NAME --data ../shared/cifar10/cifar-10-batches-py --command "pbkit train ..."

The card records the model hash, the config, the exact training command and the measured
accuracies (full test set, and the first 200 shipped sample images, which a test re-checks).
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

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--data", required=True)
    parser.add_argument("--command", required=True, help="the exact pbkit train command of the run")
    parser.add_argument("--log", type=Path, default=None, help="the run's stdout/stderr log")
    args = parser.parse_args()

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
    card = {
        "name": args.name,
        "model_sha256": fold_model(model).sha256(),
        "config": model.config.to_dict(),
        "command": args.command,
        "epochs": int(rows[-1]["epoch"]),
        "train_seconds": round(sum(float(r["seconds"]) for r in rows)),
        "test_top1": full["top1"],
        "test_top5": full["top5"],
        "test_images": full["images"],
        "float_integer_disagreement": full["float_integer_disagreement"],
        "sample_first200_top1": sample["top1"],
        "eval_command": f"pbkit eval {checkpoint.relative_to(ROOT)} --data {args.data} --json",
    }
    checkpoint.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
