"""docs/accuracy-vs-cost.png and its table: top-1 against instructions per image on netduinoplus2 for each
shipped model (their cards, pbkit.zoo), beside the MLPerf Tiny int8 ResNet-8 measured on the same emulated
board with CMSIS-NN (bench/int8_yardstick.py, docs/performance.md).

    python scripts/accuracy_vs_cost.py [--png docs/accuracy-vs-cost.png]

Prints the table as Markdown. Both axes are measured: top-1 of the integer model on all 10,000 CIFAR-10
test images, and QEMU -icount instructions per image (exact instructions, not cycles) on the STM32F405.
A model appears once per kernel its card measured (fast, and tables / slices, which trade flash for
instructions: the same logits, so the same top-1); the table gives each one's firmware flash.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pbkit.zoo import CARD_BOARD, DEMO_BUDGET_INSTRUCTIONS, default_model, shipped_models

#: Measured by `bench/int8_yardstick.py --emulators 2 --full-check` (docs/performance.md): CMSIS-NN on
#: netduinoplus2, its logits identical to LiteRT's reference kernels; top-1 = LiteRT's default interpreter
#: on the 10,000 test images (the figure users know; the reference kernels give 87.07 %).
INT8_RESNET8 = {"name": "int8 ResNet-8 (MLPerf Tiny, CMSIS-NN)", "top1": 0.8697, "instructions": 29_802_406,
                "flash": 104_868}


def rows() -> list[dict]:
    default = default_model().name
    out = []
    for m in shipped_models():
        for kernel, figures in m.kernel_costs().items():
            out.append({"name": m.name, "kernel": kernel, "top1": m.top1,
                        "instructions": int(figures["instructions_per_image"]),
                        "flash": figures.get("firmware_flash_bytes"),
                        "default": m.name == default and kernel == "fast"})
    return out + [{**INT8_RESNET8, "kernel": "CMSIS-NN", "default": False}]


def table(data: list[dict]) -> str:
    lines = [f"| model | kernel | top-1, 10,000 test images | instructions / image ({CARD_BOARD}, QEMU) "
             "| firmware flash | |",
             "|---|---|---:|---:|---:|---|"]
    for r in sorted(data, key=lambda r: (-r["top1"], r["instructions"])):
        flash = "-" if r["flash"] is None else f"{r['flash']:,} B"
        lines.append(f"| {r['name']} | {r['kernel']} | {100 * r['top1']:.2f} % | {r['instructions']:,} | {flash} | "
                     f"{'`make demo`' if r['default'] else ''} |")
    return "\n".join(lines)


def plot(data: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    top = max(r["instructions"] for r in data) / 1e6
    default = next((r["name"] for r in data if r["default"]), None)
    for r in data:
        if r["kernel"] in ("tables", "slices"):  # the same model, fewer instructions for more flash
            fast = next(f for f in data if f["name"] == r["name"] and f["kernel"] == "fast")
            ax.plot([r["instructions"] / 1e6, fast["instructions"] / 1e6], [100 * r["top1"]] * 2,
                    color="tab:blue", lw=0.8, alpha=0.5, zorder=2)
            ax.scatter(r["instructions"] / 1e6, 100 * r["top1"], s=40, facecolors="white",
                       edgecolors="tab:blue", zorder=3)
            if r["name"] == default:
                above = r["kernel"] == "tables"  # the two labels on either side of the line, apart
                ax.annotate(f"--kernel {r['kernel']}\n{r['flash']:,} B flash",
                            (r["instructions"] / 1e6, 100 * r["top1"]), textcoords="offset points",
                            xytext=(0, 7 if above else -8), fontsize=7, ha="center",
                            va="bottom" if above else "top", color="tab:blue")
            continue
        int8 = r["name"].startswith("int8")
        ax.scatter(r["instructions"] / 1e6, 100 * r["top1"], s=60, marker="s" if int8 else "o",
                   color="tab:gray" if int8 else "tab:blue", zorder=3)
        right = r["instructions"] / 1e6 > 0.6 * top  # labels of points on the right go to their left
        label = r["name"] + (f" (make demo, fast kernel, {r['flash']:,} B flash)" if r["default"] else "")
        ax.annotate(label, (r["instructions"] / 1e6, 100 * r["top1"]),
                    textcoords="offset points", xytext=(-8 if right else 8, 5), fontsize=8,
                    ha="right" if right else "left")
    ax.axvline(DEMO_BUDGET_INSTRUCTIONS / 1e6, color="tab:red", lw=0.8, ls="--")
    ax.text(DEMO_BUDGET_INSTRUCTIONS / 1e6, 1.0, " demo budget", color="tab:red", fontsize=8, va="top",
            transform=ax.get_xaxis_transform())
    ax.set_xlabel(f"instructions per image, millions ({CARD_BOARD}, Cortex-M4, QEMU -icount)")
    ax.set_ylabel("top-1 %, 10,000 CIFAR-10 test images")
    ax.set_title("Accuracy against cost on one emulated board (up and left is better)", fontsize=10)
    ax.set_xlim(0, 1.1 * top)
    low, high = ax.get_ylim()
    ax.set_ylim(low - 1, high + 1)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--png", type=Path, default=Path("docs/accuracy-vs-cost.png"))
    args = parser.parse_args()
    data = rows()
    plot(data, args.png)
    print(table(data))


if __name__ == "__main__":
    main()
