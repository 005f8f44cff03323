"""Facts and helpers for the firmware tests (stub model, emulated board)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
STUB_MODEL = FIXTURES / "stub_model"
CALIB_MODEL = FIXTURES / "calib_model"
EMULATED_BOARD = "netduinoplus2"

# Facts of tests/fixtures/stub_model/model.c.
STUB_SHAPE = (1, 28, 28)
STUB_CLASSES = 10
STUB_SHA256 = bytes(range(32))
STUB_STATUS_ALL_WHITE = -7


def stub_rule(image: bytes) -> tuple[int, list[int]]:
    """What the stub model computes: logits[k] = sum of bytes at i % 10 == k; argmax."""
    logits = [sum(image[k::STUB_CLASSES]) for k in range(STUB_CLASSES)]
    return logits.index(max(logits)), logits
