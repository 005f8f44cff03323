"""firmware/src/startup.c, pb_core.c and the board files: what runs before the first timed
instruction, checked where it can be: in the disassembly (every board) and in QEMU (the
Cortex-M7 code path on mps2-an500). The Nucleo register settings (flash wait states, ART,
the H743 erratum) have no QEMU machine; firmware/README.md lists what is verified how."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from fw_support import STUB_MODEL

from pbkit.host.build import build_firmware
from pbkit.host.disasm import disassemble
from pbkit.host.emulator import _free_port
from pbkit.host.link import BoardLink


def _instructions(lines: list[str]) -> list[str]:
    """objdump lines -> 'mnemonic operands' (address and encoding dropped)."""
    return [" ".join(part.strip() for part in line.split("\t")[1:]) for line in lines if "\t" in line]


@pytest.fixture(scope="module")
def h743_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(STUB_MODEL, "nucleo_h743zi", tmp_path_factory.mktemp("h743")).elf


def test_h743_erratum_workaround_runs_before_any_ram_access(h743_elf: Path) -> None:
    """All H743 RAM is AXI SRAM, so ES0392 2.2.9's write must come before the first stack push:
    Reset_Handler is naked and calls the board's early hook first, which touches no stack."""
    funcs = disassemble(h743_elf)
    reset = _instructions(funcs["Reset_Handler"])
    assert re.match(r"bl\s+\w+ <pb_board_early_init>", reset[0]), reset
    early = _instructions(funcs["pb_board_early_init"])
    assert not [i for i in early if "sp" in i.split(None, 1)[-1] or i.startswith(("push", "pop"))], early
    assert any(i.startswith("str") for i in early)  # the AXI_TARG7_FN_MOD write


def test_boards_without_an_early_hook_get_the_empty_one(tmp_path: Path) -> None:
    funcs = disassemble(build_firmware(STUB_MODEL, "nucleo_f446re", tmp_path).elf)
    assert _instructions(funcs["pb_board_early_init_none"])[0].startswith("bx")
    assert "pb_board_early_init" not in funcs  # the weak alias: no board code of its own


def _monitor_read(elf: Path, machine: str, shift: int, addresses: list[int]) -> tuple[dict[int, int], bool]:
    """Boots ``elf``, lets the firmware answer HELLO (its start-up is done), then reads words with
    the QEMU monitor. Returns ({address: value}, whether HELLO was answered)."""
    port = _free_port()
    proc = subprocess.Popen(["qemu-system-arm", "-M", machine, "-nographic", "-kernel", str(elf),
                             "-icount", f"shift={shift},align=off,sleep=off",
                             "-serial", f"tcp:127.0.0.1:{port},server=on,wait=off", "-monitor", "stdio"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with BoardLink(f"socket://127.0.0.1:{port}", timeout=2) as link:
                    answered = link.wait_ready(timeout=20).board == machine
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        commands = "".join(f"x /1xw {a:#x}\n" for a in addresses) + "quit\n"
        out = proc.communicate(commands.encode(), timeout=30)[0].decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    values = {int(a, 16): int(v, 16) for a, v in re.findall(r"([0-9a-f]{8}): (0x[0-9a-f]{8})", out)}
    return values, answered


def test_cortex_m7_cache_start_up_runs_in_qemu(tmp_path: Path) -> None:
    """On mps2-an500 the firmware sees a Cortex-M7 (CPUID part 0xC27), so pb_core_enable_caches
    runs its invalidate-and-enable sequence, and the board answers afterwards. QEMU 7.2 models no
    cache: CCSIDR reads 0 (one line) and CCR.IC/DC read as zero, so whether the caches are on is
    only checkable on hardware."""
    elf = build_firmware(STUB_MODEL, "mps2-an500", tmp_path).elf
    cpuid, ccr = 0xE000ED00, 0xE000ED14
    values, answered = _monitor_read(elf, "mps2-an500", 6, [cpuid, ccr])
    assert answered
    assert (values[cpuid] >> 4) & 0xFFF == 0xC27
    assert values[ccr] & (3 << 16) == 0  # what QEMU shows; a real M7 would read IC|DC set here
