"""A markdown table of training runs side by side: test top-1 (QAT graph) per epoch, with each run's command.

    .venv/bin/python scripts/ablation_table.py runs/ablate --log runs/ablate/queue.log

Reads RUN/metrics.csv of every run folder under the given folder (or the run folders given), and
the command of each run from a queue log whose lines read `... start NAME: pbkit train ARGS`.
The figure is the float QAT graph's top-1 on the 10,000 test images after each epoch (BN running
statistics; it differs from the exported integer model on about 0.2 % of the images).
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path


def read_commands(log: Path | None) -> dict[str, str]:
    commands: dict[str, str] = {}
    if log and log.exists():
        for line in log.read_text().splitlines():
            match = re.search(r"start (\S+): (pbkit train .*)$", line)
            if match:
                commands[match.group(1)] = match.group(2)
    return commands


def read_run(run: Path) -> list[float]:
    with (run / "metrics.csv").open() as f:
        return [100 * float(r["test_top1_qat"]) for r in csv.DictReader(f)]


def render(runs: dict[str, list[float]], commands: dict[str, str], reference: str | None) -> str:
    epochs = max((len(v) for v in runs.values()), default=0)
    head = "| run | " + " | ".join(f"ep {e + 1}" for e in range(epochs)) + " | last | vs " + (reference or "-") + " |"
    lines = [head, "|---" * (epochs + 3) + "|"]
    ref_last = runs[reference][-1] if reference in runs and runs[reference] else None
    for name, tops in runs.items():
        cells = [f"{t:.2f}" for t in tops] + [""] * (epochs - len(tops))
        last = f"**{tops[-1]:.2f}**" if tops else "-"
        delta = f"{tops[-1] - ref_last:+.2f}" if tops and ref_last is not None else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {last} | {delta} |")
    if commands:
        lines += ["", "Commands:", ""]
        lines += [f"- `{name}`: `{commands[name]}`" for name in runs if name in commands]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", type=Path, help="run folders, or a folder of run folders")
    ap.add_argument("--log", type=Path, default=None, help="queue log with the commands")
    ap.add_argument("--reference", default=None, help="run the last column compares with")
    args = ap.parse_args(argv)
    folders: list[Path] = []
    for path in args.paths:
        folders += [path] if (path / "metrics.csv").exists() else sorted(p.parent for p in path.glob("*/metrics.csv"))
    runs = {folder.name: read_run(folder) for folder in folders}
    print(render(runs, read_commands(args.log), args.reference))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
