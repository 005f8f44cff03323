"""The checked-in golden export of a tiny model. Refresh with `make golden` after a deliberate codegen change."""

from __future__ import annotations

from pathlib import Path

from pbkit.codegen.render import render
from pbkit.trainer.fold import fold_model
from tests.support import random_model

GOLDEN_DIR = Path(__file__).parent / "golden" / "tiny_export"


def tiny_render() -> dict[str, str]:
    return render(fold_model(random_model(8, seed=0)), kernel="fast", source="tests/golden.py tiny model")


if __name__ == "__main__":
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in tiny_render().items():
        (GOLDEN_DIR / name).write_text(text)
        print(f"wrote {GOLDEN_DIR / name}")
