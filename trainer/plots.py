"""Training curves as a PNG."""

from __future__ import annotations

import csv
from pathlib import Path


def plot_training_curves(metrics_csv: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with Path(metrics_csv).open() as f:
        rows = list(csv.DictReader(f))
    epochs = [int(r["epoch"]) for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [float(r["train_loss"]) for r in rows], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="loss")
    ax_acc.plot(epochs, [100 * float(r["train_top1"]) for r in rows], marker="o", label="train (augmented)")
    ax_acc.plot(epochs, [100 * float(r["test_top1_qat"]) for r in rows], marker="o", label="test (QAT graph)")
    ax_acc.set(xlabel="epoch", ylabel="top-1 %", title="accuracy")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
