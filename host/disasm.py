"""Scan compiled Cortex-M code for multiply instructions, function by function (objdump -d)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

OBJDUMP = "arm-none-eabi-objdump"
# Every ARMv7-M/ARMv7E-M multiply: MUL, MLA, MLS, SMUL*, SMLA*, SMMUL/SMMLA/SMMLS, UMULL, UMLAL, UMAAL,
# SMULL, SMLAL, SMUAD/SMUSD, SMLAD/SMLSD, and the divides for good measure.
MULTIPLY = re.compile(r"^(mul|mla|mls|smul\w*|smla\w*|smml\w*|smmul\w*|smua\w*|smus\w*|smls\w*|umull|umlal|umaal|"
                      r"sdiv|udiv)(s|\.w|\.n)?$")
#: The binary-layer functions a network runs, by block kind (pbkit.ir BlockIR.kind). A popbin
#: network's have no multiply at all, nor a ternary one's; the baseline's requant conv multiplies once per output
#: element by design (the requantization the comparison counts), so a scan must find it there.
BINARY_LAYER_FUNCTIONS_BY_KIND = {
    "popbin": ("pb_rsign_pack", "pb_binconv3x3_popbin", "pb_sumpool2x2_dup"),
    "requant": ("pb_rsign_pack", "pb_binconv3x3_requant", "pb_sumpool2x2_dup"),
    "ternary": ("pb_rsign_pack", "pb_binconv3x3_ternary", "pb_sumpool2x2_dup"),
}
BINARY_LAYER_FUNCTIONS = BINARY_LAYER_FUNCTIONS_BY_KIND["popbin"]


def disassemble(elf: Path) -> dict[str, list[str]]:
    """{function name: [instruction lines]} from `objdump -d`."""
    tool = shutil.which(OBJDUMP)
    if tool is None:
        raise FileNotFoundError(f"{OBJDUMP} not found; install with `make toolchain`")
    text = subprocess.run([tool, "-d", "--no-show-raw-insn", str(elf)], capture_output=True, text=True,
                          check=True).stdout
    functions: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        header = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if header:
            current = functions.setdefault(header.group(1), [])
        elif current is not None and re.match(r"^\s+[0-9a-f]+:\s", line):
            current.append(line.strip())
    return functions


def multiplies(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        parts = line.split("\t")
        if len(parts) >= 2 and MULTIPLY.match(parts[1].strip().lower()):
            out.append(line)
    return out


def scan(elf: Path, functions: tuple[str, ...] = BINARY_LAYER_FUNCTIONS) -> dict[str, list[str]]:
    """Multiply instructions found in each named function; a missing function is an error."""
    code = disassemble(elf)
    missing = [f for f in functions if f not in code]
    if missing:
        raise ValueError(f"{elf}: functions not found in the disassembly: {', '.join(missing)}")
    return {f: multiplies(code[f]) for f in functions}


def binary_layer_functions(kinds: Iterable[str]) -> tuple[str, ...]:
    """The binary-layer functions of a network whose blocks have these kinds, each once, in order."""
    names: dict[str, None] = {}
    for kind in kinds:
        if kind not in BINARY_LAYER_FUNCTIONS_BY_KIND:
            raise ValueError(f"unknown block kind {kind!r}; known: {', '.join(BINARY_LAYER_FUNCTIONS_BY_KIND)}")
        names.update(dict.fromkeys(BINARY_LAYER_FUNCTIONS_BY_KIND[kind]))
    return tuple(names)


def count_multiplies(elf: Path, functions: tuple[str, ...] = BINARY_LAYER_FUNCTIONS) -> dict[str, int]:
    """How many multiply instructions each named function contains (what `scan` lists, counted)."""
    return {name: len(found) for name, found in scan(elf, functions).items()}


#: Where the firmware's image path starts: the generated model's entry point (codegen/templates/model_data.c.j2).
IMAGE_PATH_ROOT = "pb_model_run"
_DIRECT = re.compile(r"^(bl|blx|b|b\.w|b\.n|bne|beq|bcs|bcc|bhi|bls|bge|blt|bgt|ble|bmi|bpl|cbz|cbnz)"
                     r"(\.w|\.n)?$")


def _targets(lines: list[str]) -> tuple[set[str], list[str]]:
    """Functions a function's code branches to (calls and tail calls: a target `<name>` with no offset), and its
    indirect calls (blx / bx through a register other than lr)."""
    direct, indirect = set(), []
    for line in lines:
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        op, operand = parts[1].strip().lower(), parts[2].strip()
        target = re.search(r"<([^>+]+)>$", operand)
        if _DIRECT.match(op) and target:
            direct.add(target.group(1))
        elif op in ("blx", "bx") and operand.split()[0] != "lr":
            indirect.append(line)
    return direct, indirect


def image_path(elf: Path, root: str = IMAGE_PATH_ROOT) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Every function reachable from `root` by direct calls and tail calls (libgcc helpers included): {function:
    its multiply instructions}, and {function: its indirect calls} where it has any (a scan cannot follow those)."""
    code = disassemble(elf)
    if root not in code:
        raise ValueError(f"{elf}: {root} not found in the disassembly")
    seen, todo, indirect = {}, [root], {}
    while todo:
        name = todo.pop()
        if name in seen or name not in code:
            continue
        seen[name] = multiplies(code[name])
        direct, calls = _targets(code[name])
        if calls:
            indirect[name] = calls
        todo.extend(sorted(direct - set(seen)))
    return dict(sorted(seen.items())), indirect
