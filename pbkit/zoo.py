"""The shipped models: one card (NAME.json) beside each checkpoint (NAME.safetensors) in pbkit/pretrained.

A card records how its model was trained and what it measured: top-1/top-5 of the integer model on the
10,000 CIFAR-10 test images, and on `netduinoplus2` (fast kernel) its instructions per image, firmware
flash and RAM (scripts/model_card.py writes it). `make demo` runs the most accurate shipped model whose
image costs no more instructions than DEMO_BUDGET_INSTRUCTIONS; every other one is a name away
(`pbkit demo --checkpoint NAME`, `pbkit models`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pbkit.paths import PRETRAINED

#: The cost of the first shipped model's image on netduinoplus2 (19,889,213 instructions with the
#: kernels of its time): the demo's model must not cost more than what users had.
DEMO_BUDGET_INSTRUCTIONS = 19_900_000
#: The board the cards' costs are measured on.
CARD_BOARD = "netduinoplus2"


class UnknownModelError(ValueError):
    """A --checkpoint that is neither a file nor the name of a shipped model."""


@dataclass(frozen=True)
class ShippedModel:
    name: str
    checkpoint: Path
    card: dict

    @property
    def top1(self) -> float:
        return float(self.card["test_top1"])

    @property
    def instructions(self) -> int | None:
        """Median instructions per image on CARD_BOARD with the fast kernel (None: not measured)."""
        board = self.card.get("boards", {}).get(CARD_BOARD)
        return None if board is None else int(board["instructions_per_image"])

    def kernel_costs(self) -> dict[str, dict]:
        """{kernel: its CARD_BOARD figures} for every kernel measured on the card that fits the board, fast first."""
        board = self.card.get("boards", {}).get(CARD_BOARD)
        if board is None:
            return {}
        fast = {k: v for k, v in board.items() if k != "other_kernels"}
        others = {name: figures for name, figures in board.get("other_kernels", {}).items()
                  if figures.get("fits", True)}
        return {"fast": fast, **others}


def shipped_models(folder: Path = PRETRAINED) -> list[ShippedModel]:
    """Every card in `folder` whose checkpoint is there, most accurate first."""
    models = []
    for card_path in sorted(folder.glob("*.json")):
        checkpoint = card_path.with_suffix(".safetensors")
        if checkpoint.is_file():
            models.append(ShippedModel(card_path.stem, checkpoint, json.loads(card_path.read_text())))
    return sorted(models, key=lambda m: -m.top1)


def default_model(folder: Path = PRETRAINED, budget: int = DEMO_BUDGET_INSTRUCTIONS) -> ShippedModel:
    """The most accurate shipped model whose measured cost fits `budget`."""
    fitting = [m for m in shipped_models(folder) if m.instructions is not None and m.instructions <= budget]
    if not fitting:
        raise UnknownModelError(f"no shipped model in {folder} has a measured cost within {budget:,} instructions")
    return fitting[0]


def resolve_checkpoint(given: str | Path | None, folder: Path = PRETRAINED) -> Path:
    """A checkpoint argument: None (the default model), a shipped model's name, or a file path."""
    if given is None:
        return default_model(folder).checkpoint
    path = Path(given)
    if path.is_file() or path.suffix == ".safetensors" or len(path.parts) > 1:
        return path  # a file (the loader says clearly if it is missing or broken)
    names = {m.name: m for m in shipped_models(folder)}
    if str(given) in names:
        return names[str(given)].checkpoint
    raise UnknownModelError(f"{given!r} is neither a checkpoint file nor a shipped model "
                            f"(shipped: {', '.join(sorted(names)) or 'none'}; `pbkit models` lists them)")
