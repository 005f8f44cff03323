"""The checked-in golden export of a tiny model, and the kernel-level vectors (tests/kernel_vectors.py). Refresh both
with `make golden` after a deliberate codegen or plan change."""

from __future__ import annotations

from pathlib import Path

from pbkit.codegen.kernel import Kernel
from pbkit.codegen.render import render
from pbkit.trainer.fold import fold_model
from tests.support import random_model

GOLDEN_DIR = Path(__file__).parent / "golden" / "tiny_export"


def tiny_render() -> dict[str, str]:
    return render(fold_model(random_model(8, seed=0)), kernel=Kernel.FAST, source="tests/golden.py tiny model")


if __name__ == "__main__":
    from tests.kernel_vectors import write_checked_in

    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in tiny_render().items():
        (GOLDEN_DIR / name).write_text(text)
        print(f"wrote {GOLDEN_DIR / name}")
    for folder in write_checked_in():  # the kernel-level vectors (tests/kernels/plan.json) too
        print(f"wrote {folder}")
