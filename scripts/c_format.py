"""One C style across firmware/: clang-format with the repository's .clang-format, on every tracked C file.

    python scripts/c_format.py            # rewrite the files in place (`make format`)
    python scripts/c_format.py --check    # list what differs, exit 1 (tests/test_c_format.py, in `make test`)

clang-format is the PyPI wheel pinned in pyproject.toml's dev extra (`make venv` installs it): its version
fixes the output, so every checkout formats alike.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The folders whose C follows the style.
FORMATTED = ["firmware"]
#: Folders left out of the check for a while (a branch that reworks them would collide with a reformat);
#: none today. firmware/kernels/ was formatted after its branches merged: 36 firmware builds (every model
#: kind, both kernels, all boards) kept byte-identical sections.
FORMAT_PENDING: list[str] = []
SUFFIXES = (".c", ".h")


class FormatError(RuntimeError):
    """clang-format is missing or failed; the message says what to do."""


def clang_format() -> str:
    """The venv's clang-format (beside this Python), else one on PATH."""
    beside = Path(sys.executable).parent / "clang-format"
    found = str(beside) if beside.is_file() else shutil.which("clang-format")
    if found is None:
        raise FormatError("clang-format not found: `make venv` installs the pinned wheel (pyproject.toml, dev)")
    return found


def _pending(name: str) -> bool:
    return any(name == p or name.startswith(p.rstrip("/") + "/") for p in FORMAT_PENDING)


def c_files(root: Path = ROOT) -> list[str]:
    """Tracked .c/.h files under FORMATTED, less FORMAT_PENDING (paths relative to root)."""
    out = subprocess.run(["git", "ls-files", "-z", "--", *FORMATTED], cwd=root, capture_output=True, check=True)
    names = [n for n in out.stdout.decode().split("\0") if n.endswith(SUFFIXES)]
    return sorted(n for n in names if not _pending(n) and not (root / n).is_symlink())


def unformatted(root: Path = ROOT) -> list[str]:
    """The files clang-format would change."""
    files = c_files(root)
    run = subprocess.run([clang_format(), "--dry-run", *files], cwd=root, capture_output=True, text=True)
    if run.returncode != 0:
        raise FormatError(f"clang-format failed: {run.stderr.strip()[:2000]}")
    # --dry-run prints "FILE:LINE:COL: warning: code should be clang-formatted" per change.
    flagged = (line for line in run.stderr.splitlines() if "code should be clang-formatted" in line)
    return sorted({line.split(":", 1)[0] for line in flagged})


def format_in_place(root: Path = ROOT) -> list[str]:
    """Rewrites the unformatted files; returns them."""
    changed = unformatted(root)
    if changed:
        subprocess.run([clang_format(), "-i", *changed], cwd=root, check=True)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only list the files that differ (exit 1 if any)")
    args = parser.parse_args(argv)
    try:
        changed = unformatted() if args.check else format_in_place()
    except FormatError as exc:
        print(f"c_format: error: {exc}", file=sys.stderr)
        return 1
    for name in changed:
        print(f"{'not formatted' if args.check else 'formatted'}: {name}")
    if args.check and changed:
        print("run `make format` (clang-format, .clang-format at the repository root)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
