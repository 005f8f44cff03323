"""Facts and helpers for the firmware tests (stub model, emulated board)."""

from __future__ import annotations

from pathlib import Path

from pbkit.boards import BOARDS, DEFAULT_BOARD

FIXTURES = Path(__file__).parent / "fixtures"
STUB_MODEL = FIXTURES / "stub_model"
CALIB_MODEL = FIXTURES / "calib_model"
#: The board of the tests that need just one emulated board.
EMULATED_BOARD = DEFAULT_BOARD
#: Every board QEMU runs: the link, emulator and parity tests run on each.
EMULATED_BOARDS = tuple(sorted(name for name, board in BOARDS.items() if board.emulated))

# Facts of tests/fixtures/stub_model/model.c.
STUB_SHAPE = (1, 28, 28)
STUB_CLASSES = 10
STUB_SHA256 = bytes(range(32))
STUB_STATUS_ALL_WHITE = -7


def stub_rule(image: bytes) -> tuple[int, list[int]]:
    """What the stub model computes: logits[k] = sum of bytes at i % 10 == k; argmax."""
    logits = [sum(image[k::STUB_CLASSES]) for k in range(STUB_CLASSES)]
    return logits.index(max(logits)), logits
