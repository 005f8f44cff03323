"""`pbkit experiment deck-tables`: every row of the deck's three tables, trained and measured here.

Each row trains (or, for PTQ, converts) one model in its own folder under OUT/rows/, then
evaluates it with the integer graph on the test set and writes OUT/rows/ROW/result.json.
A row with a result is skipped on the next run; a row cut off mid-training resumes from its
last epoch. After every row the Markdown table, the CSV and the plot are rewritten, so an
interrupted run still leaves a consistent (partial) report.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pbkit.files import atomic_write_bytes

from . import data as cifar
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import evaluate
from .model import ModelConfig, convert_to_ptq
from .train import TrainOptions, train


@dataclass(frozen=True)
class Row:
    table: str  # "ptq", "simple-qat" or "qat" (the deck's three tables)
    model: str
    mode: str
    division: str = "c_times_a"
    deck_top1: float | None = None  # percent, as the deck prints them
    deck_top5: float | None = None

    @property
    def key(self) -> str:
        suffix = f"-{self.division}" if self.mode == "popbin" else ""
        return f"{self.model}-{self.mode}{suffix}"

    @property
    def label(self) -> str:
        name = {"reactnet18": "ReActNet-18", "birealnet18": "Bi-RealNet-18"}[self.model]
        mode = {"baseline": "baseline", "ptq-popcount": "PTQ-popcount", "simple-qat-popcount": "Simple QAT-popcount",
                "popbin": f"QAT-popcount (PopBin), division {self.division}"}[self.mode]
        return f"{name} {mode}"


_DECK_DIVISIONS = {"c_plus_a": (92.15, 99.64), "n_plus_a": (89.58, 99.46), "c_times_a": (92.51, 99.64),
                   "n_times_a": (92.16, 99.66), "minmax": (89.23, 99.39)}
_DECK_BASELINE = {"reactnet18": (93.38, 99.80), "birealnet18": (88.77, 98.25)}
_DECK_PTQ = {"reactnet18": (10.00, 52.04), "birealnet18": (10.00, 50.00)}
_DECK_SIMPLE = {"reactnet18": (84.93, 99.25), "birealnet18": (30.07, 79.69)}
_DECK_BIREAL_POPBIN = {"c_times_a": (87.66, None)}  # the deck's summary slide: Bi-Real, best division only


def deck_rows() -> list[Row]:
    """Every row, in the order they run: a PTQ row needs its model's baseline row before it."""
    rows = []
    for model in ("reactnet18", "birealnet18"):
        deck = _DECK_DIVISIONS if model == "reactnet18" else _DECK_BIREAL_POPBIN
        for division in ("c_times_a", "c_plus_a", "n_plus_a", "n_times_a", "minmax"):
            top1, top5 = deck.get(division, (None, None))
            rows.append(Row("qat", model, "popbin", division, top1, top5))
    for model in ("reactnet18", "birealnet18"):
        rows.append(Row("baseline", model, "baseline", deck_top1=_DECK_BASELINE[model][0],
                        deck_top5=_DECK_BASELINE[model][1]))
        rows.append(Row("ptq", model, "ptq-popcount", deck_top1=_DECK_PTQ[model][0], deck_top5=_DECK_PTQ[model][1]))
        rows.append(Row("simple-qat", model, "simple-qat-popcount", deck_top1=_DECK_SIMPLE[model][0],
                        deck_top5=_DECK_SIMPLE[model][1]))
    return rows


class ExperimentError(ValueError):
    """An experiment folder that holds a run with other settings."""


def run_deck_tables(width: float, opts: TrainOptions, data_dir: str | Path, out_dir: str | Path,
                    limit_test: int | None = None, progress: bool = True, only: list[str] | None = None) -> list[dict]:
    """Run (or resume) every row; returns the results of the rows done so far."""
    out = Path(out_dir)
    settings = {"width": width, "epochs": opts.epochs, "batch_size": opts.batch_size, "lr": opts.lr,
                "seed": opts.seed, "schedule": opts.schedule, "weight_decay": opts.weight_decay,
                "limit_train": opts.limit_train, "limit_test": limit_test}
    settings_path = out / "experiment.json"
    if settings_path.exists():
        before = json.loads(settings_path.read_text())
        if before != settings:
            changed = sorted(k for k in settings if before.get(k) != settings[k])
            raise ExperimentError(f"{out} holds a deck-tables run with other settings ({', '.join(changed)}); "
                                  f"use another --out or the same settings to resume it")
    else:
        atomic_write_bytes(settings_path, json.dumps(settings, indent=2).encode())
    test_split = cifar.load_split(data_dir, "test").head(limit_test)
    rows = [r for r in deck_rows() if not only or r.key in only]
    for row in rows:
        row_dir = out / "rows" / row.key
        if (row_dir / "result.json").exists():
            continue
        print(f"[deck-tables] {row.key}", file=sys.stderr, flush=True)
        t0 = time.time()
        if row.mode == "ptq-popcount":
            baseline_ckpt = out / "rows" / f"{row.model}-baseline" / "checkpoint.safetensors"
            if not (out / "rows" / f"{row.model}-baseline" / "result.json").exists():
                raise ExperimentError(f"{row.key} converts the {row.model} baseline, which has not run yet")
            baseline, _ = load_checkpoint(baseline_ckpt)
            model = convert_to_ptq(baseline)
            save_checkpoint(model, row_dir / "checkpoint.safetensors", extra={"converted_from": str(baseline_ckpt)})
            train_seconds = 0.0
        else:
            config = ModelConfig(model=row.model, width=width, mode=row.mode, division=row.division)
            resume = (row_dir / "train_state.pt").exists()
            run_opts = TrainOptions(**{**opts.__dict__, "resume": resume})
            train(config, run_opts, data_dir, row_dir, progress=progress)
            train_seconds = time.time() - t0
            model, _ = load_checkpoint(row_dir / "checkpoint.safetensors")
        metrics = evaluate(model, test_split)
        result = {**asdict(row), "key": row.key, "label": row.label, "top1": 100 * metrics["top1"],
                  "top5": 100 * metrics["top5"], "float_integer_disagreement": metrics["float_integer_disagreement"],
                  "test_images": metrics["images"], "train_seconds": train_seconds,
                  "row_seconds": time.time() - t0, "model_sha256": metrics["model_sha256"]}
        atomic_write_bytes(row_dir / "result.json", json.dumps(result, indent=2).encode())
        write_report(out, settings)
        print(f"[deck-tables] {row.key}: top-1 {result['top1']:.2f}%  top-5 {result['top5']:.2f}%  "
              f"({result['row_seconds']:.0f} s)", file=sys.stderr, flush=True)
    return write_report(out, settings)


def collect(out: Path) -> list[dict]:
    results = []
    for row in deck_rows():
        path = out / "rows" / row.key / "result.json"
        if path.exists():
            results.append(json.loads(path.read_text()))
    return results


_TABLES = [("ptq", "Table 1: PTQ-popcount (a trained baseline, converted, no retraining)"),
           ("simple-qat", "Table 2: Simple QAT-popcount"),
           ("qat", "Table 3: QAT-popcount (PopBin) by division_num")]
CSV_FIELDS = ["table", "key", "model", "mode", "division", "top1", "top5", "deck_top1", "deck_top5",
              "float_integer_disagreement", "test_images", "train_seconds", "row_seconds", "model_sha256"]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render_markdown(results: list[dict], settings: dict) -> str:
    by_key = {r["key"]: r for r in results}
    lines = [f"Width {settings['width']} (C0 = {int(round(64 * settings['width']))}), {settings['epochs']} epochs, "
             f"batch {settings['batch_size']}, peak lr {settings['lr']}, seed {settings['seed']}; "
             f"top-1 / top-5 in % on {results[0]['test_images'] if results else '?'} test images, integer graph "
             f"(what the board computes). Deck: width 1.0, its full recipe.", ""]
    for table, title in _TABLES:
        lines += [f"### {title}", "", "| model | ours top-1 | ours top-5 | deck top-1 | deck top-5 |",
                  "|---|---:|---:|---:|---:|"]
        for row in deck_rows():
            keep = row.table == table or (row.mode == "baseline" and table in ("ptq", "simple-qat"))
            if not keep:
                continue
            r = by_key.get(row.key)
            ours = (_fmt(r["top1"]), _fmt(r["top5"])) if r else ("not run", "not run")
            lines.append(f"| {row.label} | {ours[0]} | {ours[1]} | {_fmt(row.deck_top1)} | {_fmt(row.deck_top5)} |")
        lines.append("")
    return "\n".join(lines)


def write_report(out: Path, settings: dict) -> list[dict]:
    """results.md, results.csv and results.png from the rows done so far (each written atomically)."""
    results = collect(out)
    atomic_write_bytes(out / "results.md", render_markdown(results, settings).encode())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for result in results:  # percentages to two decimals, as the deck prints them
        writer.writerow({k: (round(v, 2) if k in ("top1", "top5") else v) for k, v in result.items()})
    atomic_write_bytes(out / "results.csv", buf.getvalue().encode())
    try:
        _plot(results, out / "results.png")
    except Exception as exc:  # a plot must never cost the run
        print(f"warning: results plot not drawn: {exc}", file=sys.stderr)
    return results


def _plot(results: list[dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not results:
        return
    labels = [r["key"] for r in results]
    xs = range(len(results))
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(results) + 2), 4.5))
    ax.bar([x - 0.2 for x in xs], [r["top1"] for r in results], width=0.4, label="ours (integer graph)")
    ax.bar([x + 0.2 for x in xs], [r["deck_top1"] or 0 for r in results], width=0.4, label="deck", alpha=0.6)
    ax.axhline(10, color="grey", lw=0.8, ls=":", label="chance")
    ax.set_xticks(list(xs), labels, rotation=60, ha="right", fontsize=8)
    ax.set(ylabel="top-1 %", ylim=(0, 100), title="deck tables: ours vs the deck")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(png, buf.getvalue())
