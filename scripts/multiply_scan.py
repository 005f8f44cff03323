"""Multiply instructions on a firmware's image path: every function pb_model_run reaches by direct calls and tail
calls (libgcc helpers included), disassembled (objdump, pbkit.host.disasm), with the multiplies each holds.

    .venv/bin/python scripts/multiply_scan.py build/profile/netduinoplus2-fast/firmware.elf

Exit 0 when the path holds none, 1 when it holds some (listed), 2 on bad usage. Indirect calls are listed apart:
a scan cannot follow them (the network's only one is the layer hook, NULL in pb_model_run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pbkit.host.disasm import IMAGE_PATH_ROOT, image_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("elf", type=Path, help="a firmware ELF (pbkit build / pbkit profile)")
    parser.add_argument("--root", default=IMAGE_PATH_ROOT, help=f"where the path starts (default {IMAGE_PATH_ROOT})")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.elf.is_file():
        print(f"multiply_scan: error: {args.elf} is not a file", file=sys.stderr)
        return 2
    try:
        found, indirect = image_path(args.elf, args.root)
    except (ValueError, FileNotFoundError) as e:
        print(f"multiply_scan: error: {e}", file=sys.stderr)
        return 2
    total = sum(len(lines) for lines in found.values())
    if args.json:
        print(json.dumps({"elf": str(args.elf), "root": args.root, "multiplies": total,
                          "functions": {name: lines for name, lines in found.items()}, "indirect_calls": indirect}))
        return 0 if total == 0 else 1
    for name, lines in found.items():
        print(f"{name:<32}{len(lines):>4} multiply instructions" + "".join(f"\n    {line}" for line in lines))
    for name, lines in indirect.items():
        print(f"{name}: {len(lines)} indirect calls (not followed): " + "; ".join(lines))
    print(f"{len(found)} functions reachable from {args.root}: {total} multiply instructions")
    return 0 if total == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
