"""`pbkit profile --png`: the per-layer counts as a bar chart."""

from __future__ import annotations

import io
from pathlib import Path

from pbkit.files import atomic_write_bytes

KIND_COLORS = {"stem": "tab:orange", "binary": "tab:blue", "head": "tab:green"}


def plot_profile(result: dict, png: Path) -> None:
    """One bar per layer (instructions or cycles), written atomically: a reader never sees half a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    rows = result["layers"]
    fig, ax = plt.subplots(figsize=(10, 4.8))
    ax.bar(range(len(rows)), [r["count"] for r in rows], color=[KIND_COLORS.get(r["kind"], "gray") for r in rows])
    ax.set_xticks(range(len(rows)), [r["name"] for r in rows], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(f"{result['counter']} per image")
    ax.set_title(f"{result['board']}: {result['total']:,.0f} {result['counter']} per image, by layer "
                 f"(median of {result['images']} image{'s' if result['images'] != 1 else ''})")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.legend(handles=[Patch(color=color, label=kind) for kind, color in KIND_COLORS.items()])
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(Path(png), buf.getvalue())
