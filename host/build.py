"""Builds the pbkit firmware (firmware/) around a generated model for one board.

The firmware is bare metal with its own start-up code and linker scripts, so a build is
one `arm-none-eabi-gcc` call over the firmware sources, the board's source file, every
``*.c`` of the model directory and, for generated models, the shared kernels in
firmware/kernels. Board facts reach the C code only as ``-D`` flags made
here from :mod:`pbkit.boards` (see :func:`board_defines`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pbkit.boards import COUNTER_CODES, Board, get_board
from pbkit.paths import FIRMWARE_DIR

GCC = "arm-none-eabi-gcc"
SIZE = "arm-none-eabi-size"
OBJCOPY = "arm-none-eabi-objcopy"

TOOLCHAIN_HINT = "install with `make toolchain`"

#: Flags every board shares; -mcpu comes from the board.
COMMON_FLAGS = [
    "-O2",
    "-mthumb",
    "-mfloat-abi=soft",
    "-std=c11",
    "-g",
    "-Wall",
    "-Wextra",
    "-ffunction-sections",
    "-fdata-sections",
    "-ffreestanding",
    "-Wl,--gc-sections",
    "-nostartfiles",
    "--specs=nano.specs",
]


#: The serial protocols a firmware can speak, each the sources that replace the default main.c:
#: pbkit's framed protocol (docs/protocol.md) or the MLPerf Tiny runner's text protocol.
PROTOCOL_SOURCES = {
    "pbkit": ("main.c",),
    "mlperf": ("mlperf/pb_mlperf_main.c", "mlperf/pb_mlperf_dut.c"),
}
DEFAULT_PROTOCOL = "pbkit"


class FirmwareBuildError(RuntimeError):
    """The firmware could not be built; the message says why and what to do."""


@dataclass(frozen=True)
class BuildResult:
    board: str
    elf: Path
    bin: Path
    map_file: Path
    flash_bytes: int  # .text + .rodata + .data image
    ram_bytes: int  # .data + .bss + the reserved minimum stack
    flash_total: int  # the board's flash
    ram_total: int  # the board's RAM
    protocol: str = DEFAULT_PROTOCOL  # what the serial port speaks (PROTOCOL_SOURCES)

    def summary(self) -> str:
        return (
            f"{self.board}: flash {self.flash_bytes} / {self.flash_total} B "
            f"({100 * self.flash_bytes / self.flash_total:.1f}%), "
            f"RAM {self.ram_bytes} / {self.ram_total} B ({100 * self.ram_bytes / self.ram_total:.1f}%)"
        )


def board_defines(board: Board) -> list[str]:
    """The -D flags that carry a board's facts into the C code (pb_board.h)."""
    if board.counter not in COUNTER_CODES:
        raise FirmwareBuildError(f"board {board.name}: unknown counter kind {board.counter!r}")
    return [
        f'-DPB_BOARD_NAME="{board.name}"',
        f"-DPB_CLOCK_HZ={board.clock_hz}u",
        f"-DPB_COUNTER_KIND={COUNTER_CODES[board.counter]}",
        f"-DPB_ICOUNT_SHIFT={board.icount_shift if board.emulated else 0}",
    ]


def firmware_sources(board: Board, protocol: str = DEFAULT_PROTOCOL) -> list[Path]:
    """Common firmware sources, the protocol's own and the board's file."""
    if protocol not in PROTOCOL_SOURCES:
        raise FirmwareBuildError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOL_SOURCES)}")
    src = FIRMWARE_DIR / "src"
    board_src = src / "boards" / board.support_source
    if not board_src.is_file():
        raise FirmwareBuildError(f"no firmware board file for {board.name}: expected {board_src}")
    common = [p for p in sorted(src.glob("*.c")) if p.name not in PROTOCOL_SOURCES[DEFAULT_PROTOCOL]]
    return common + [src / name for name in PROTOCOL_SOURCES[protocol]] + [board_src]


KERNELS_DIR = FIRMWARE_DIR / "kernels"
#: A generated PopBin model ships this header; its code then needs the shared kernels.
MODEL_CONFIG_HEADER = "pb_model_config.h"


def model_build_inputs(model_dir: Path, kernels: bool | None = None) -> tuple[list[Path], list[Path]]:
    """(sources, include dirs) for a model: every *.c of ``model_dir``, plus the shared
    kernels of firmware/kernels when the model uses them (``kernels=None``: when
    ``model_dir`` has pb_model_config.h, as generated models do; stub models do not)."""
    model_dir = Path(model_dir)
    sources = sorted(model_dir.glob("*.c"))
    if not sources:
        raise FirmwareBuildError(f"no model sources (*.c) in {model_dir}")
    if kernels is None:
        kernels = (model_dir / MODEL_CONFIG_HEADER).is_file()
    if not kernels:
        return sources, [model_dir]
    return sorted(KERNELS_DIR.glob("*.c")) + sources, [KERNELS_DIR, model_dir]


def linker_script(board: Board) -> Path:
    return FIRMWARE_DIR / "ld" / f"{board.name}.ld"


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FirmwareBuildError(f"{name} not found on PATH: the ARM toolchain is missing; {TOOLCHAIN_HINT}")
    return path


_OVERFLOW_RE = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")
_NOFIT_RE = re.compile(r"section `([^']+)' will not fit in region `(\w+)'")


def _explain_link_failure(stderr: str, board: Board) -> str | None:
    """Turns the linker's region overflow into a sentence with the numbers."""
    overflows = _OVERFLOW_RE.findall(stderr)
    if not overflows:
        return None
    totals = {"FLASH": board.flash_bytes, "RAM": board.ram_bytes}
    parts = []
    for region, extra in overflows:
        total = totals.get(region)
        size = f" of {total} bytes" if total else ""
        parts.append(f"{region}{size} overflowed by {int(extra)} bytes")
    sections = sorted({s for s, _ in _NOFIT_RE.findall(stderr)})
    where = f" (sections that do not fit: {', '.join(sections)})" if sections else ""
    return (
        f"the model does not fit on {board.name} ({board.mcu}): {'; '.join(parts)}{where}. "
        "Use a smaller model or a board with more memory."
    )


def _sizes(elf: Path) -> tuple[int, int]:
    """(flash, ram) from `arm-none-eabi-size` (Berkeley format: text, data, bss)."""
    out = subprocess.run([_require_tool(SIZE), str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return text + data, data + bss


def build_firmware(
    model_dir: Path,
    board: str,
    out_dir: Path,
    *,
    max_payload: int | None = None,
    stack_bytes: int | None = None,
    extra_cflags: tuple[str, ...] = (),
    kernels: bool | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    extra_sources: tuple[Path, ...] = (),
    extra_includes: tuple[Path, ...] = (),
) -> BuildResult:
    """Compiles and links the firmware with the model in ``model_dir`` for ``board``.

    ``max_payload`` sets the largest request payload the firmware buffers (default 16 KiB,
    must hold one image); ``stack_bytes`` the minimum stack the link reserves (8 KiB);
    ``kernels`` whether to compile firmware/kernels (default: detected, see
    :func:`model_build_inputs`); ``protocol`` what the serial port speaks (``pbkit``, the
    framed protocol, or ``mlperf``, the MLPerf Tiny runner's; see :data:`PROTOCOL_SOURCES`);
    ``extra_sources`` and ``extra_includes`` add C files and include folders that live elsewhere
    (a third-party library built in place, such as CMSIS-NN).
    Raises :class:`FirmwareBuildError` with the compiler's message on failure.
    """
    b = get_board(board)
    model_dir = Path(model_dir)
    out_dir = Path(out_dir)
    gcc = _require_tool(GCC)
    model_sources, model_includes = model_build_inputs(model_dir, kernels)
    out_dir.mkdir(parents=True, exist_ok=True)
    elf = out_dir / "firmware.elf"
    map_file = out_dir / "firmware.map"

    cmd = [gcc, f"-mcpu={b.cpu}", *COMMON_FLAGS, *board_defines(b)]
    if max_payload is not None:
        cmd.append(f"-DPB_MAX_PAYLOAD={int(max_payload)}u")
    if stack_bytes is not None:
        cmd.append(f"-Wl,--defsym=__pb_stack_size={int(stack_bytes)}")
    cmd += [
        *extra_cflags,
        f"-I{FIRMWARE_DIR / 'include'}",
        *(f"-I{d}" for d in (*model_includes, *extra_includes)),
        *map(str, firmware_sources(b, protocol)),
        *map(str, model_sources),
        *map(str, extra_sources),
        f"-L{FIRMWARE_DIR / 'ld'}",
        f"-T{linker_script(b)}",
        f"-Wl,-Map={map_file}",
        "-o",
        str(elf),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        explained = _explain_link_failure(proc.stderr, b)
        if explained:
            raise FirmwareBuildError(explained)
        raise FirmwareBuildError(
            f"firmware build for {b.name} failed (exit {proc.returncode}):\n{proc.stderr.strip()}"
        )
    bin_file = out_dir / "firmware.bin"
    subprocess.run([_require_tool(OBJCOPY), "-O", "binary", str(elf), str(bin_file)], check=True)
    flash, ram = _sizes(elf)
    return BuildResult(
        board=b.name,
        elf=elf,
        bin=bin_file,
        map_file=map_file,
        flash_bytes=flash,
        ram_bytes=ram,
        flash_total=b.flash_bytes,
        ram_total=b.ram_bytes,
        protocol=protocol,
    )
