"""Facts and helpers for the firmware tests (stub model, emulated board)."""

from __future__ import annotations

import re
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


def tree_snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder below `folder` (Python's bytecode caches aside) with its size and mtime: equal
    snapshots before and after a command show it wrote nothing there."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if "__pycache__" not in p.parts}


_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)(\([^)]*\))?[ \t]*(.*?)\s*(?:/\*.*)?$", re.M)
_INTEGER = re.compile(r"\(?\s*(-?\s*(?:0[xX][0-9a-fA-F]+|\d+))[uUlL]*\s*\)?")


def c_defines(header: Path) -> dict[str, int | str]:
    """Every object-like ``#define`` of a C header: integer literals (hex or decimal, u/L suffixes, in
    parentheses, negative) as ints, any other value (an expression, a string) as its text. Include
    guards (no value) are left out, and so are function-like macros."""
    found: dict[str, int | str] = {}
    for name, params, value in _DEFINE.findall(header.read_text()):
        if params or not value:
            continue
        literal = _INTEGER.fullmatch(value)
        found[name] = int(literal.group(1).replace(" ", ""), 0) if literal else value
    return found
