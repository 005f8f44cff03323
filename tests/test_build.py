"""host/build.py: the firmware builds for every board, sizes are reported, and the
failures a user can hit (no toolchain, model too big, bad model code) read clearly."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fw_support import STUB_MODEL

from pbkit.boards import BOARDS, get_board
from pbkit.host import build as build_mod
from pbkit.host.build import FIRMWARE_DIR, FirmwareBuildError, board_defines, build_firmware


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_stub_firmware_builds_for_every_board(board: str, tmp_path: Path) -> None:
    result = build_firmware(STUB_MODEL, board, tmp_path)
    print(result.summary())
    assert result.elf.is_file() and result.bin.is_file() and result.map_file.is_file()
    assert result.board == board
    assert 1000 < result.flash_bytes < result.flash_total
    # RAM holds the 16 KiB request buffer and the 8 KiB minimum stack at least.
    assert 16384 + 8192 < result.ram_bytes < result.ram_total
    b = get_board(board)
    assert (result.flash_total, result.ram_total) == (b.flash_bytes, b.ram_bytes)
    # The vector table sits at the start of flash: initial SP = top of RAM.
    head = result.bin.read_bytes()[:8]
    sp, reset = int.from_bytes(head[:4], "little"), int.from_bytes(head[4:], "little")
    origins = _memory_regions(board)
    assert sp == origins["RAM"][0] + b.ram_bytes
    flash_origin = origins["FLASH"][0]
    assert reset & 1 and flash_origin <= reset < flash_origin + result.flash_bytes  # Thumb bit set


def _memory_regions(board: str) -> dict[str, tuple[int, int]]:
    """{region: (origin, length in bytes)} from the board's linker script."""
    text = (FIRMWARE_DIR / "ld" / f"{board}.ld").read_text()
    pattern = r"(FLASH|RAM)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*(\w+),\s*LENGTH\s*=\s*(\d+)K"
    return {name: (int(origin, 0), int(length) * 1024) for name, origin, length in re.findall(pattern, text)}


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_linker_script_matches_boards_table(board: str) -> None:
    regions = _memory_regions(board)
    b = get_board(board)
    assert regions["FLASH"][1] == b.flash_bytes
    assert regions["RAM"][1] == b.ram_bytes


def test_board_defines_come_from_boards_table() -> None:
    qemu = board_defines(get_board("netduinoplus2"))
    assert '-DPB_BOARD_NAME="netduinoplus2"' in qemu
    assert "-DPB_CLOCK_HZ=168000000u" in qemu
    assert "-DPB_COUNTER_KIND=1" in qemu
    assert f"-DPB_ICOUNT_SHIFT={get_board('netduinoplus2').icount_shift}" in qemu
    hw = board_defines(get_board("nucleo_h743zi"))
    assert "-DPB_COUNTER_KIND=0" in hw and "-DPB_ICOUNT_SHIFT=0" in hw and "-DPB_CLOCK_HZ=64000000u" in hw
    for mps2 in ("mps2-an386", "mps2-an500"):  # 25 MHz SysTick: shift 6 (64 ns) resolves each instruction
        flags = board_defines(get_board(mps2))
        assert f'-DPB_BOARD_NAME="{mps2}"' in flags and "-DPB_CLOCK_HZ=25000000u" in flags
        assert "-DPB_COUNTER_KIND=1" in flags and "-DPB_ICOUNT_SHIFT=6" in flags
        assert get_board(mps2).ticks_to_counter(5) == 5 * 40 / 2**6  # the design note's ticks x 40 / 2^N


def test_missing_toolchain_says_make_toolchain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_mod.shutil, "which", lambda name: None)
    with pytest.raises(FirmwareBuildError, match=r"arm-none-eabi-gcc not found.*make toolchain"):
        build_firmware(STUB_MODEL, "netduinoplus2", tmp_path)


def test_model_too_big_for_ram_reports_numbers(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(STUB_MODEL, model)
    (model / "big.c").write_text(
        "#include <stdint.h>\n"
        "uint8_t pb_big_buffer[200 * 1024];\n"
        "void pb_touch(void);\n"
        "__attribute__((used)) void pb_touch(void) { pb_big_buffer[7] = 1; }\n"
        "__attribute__((used)) static void (*const keep)(void) = pb_touch;\n"
    )
    with pytest.raises(FirmwareBuildError) as err:
        build_firmware(model, "nucleo_f446re", tmp_path / "out", extra_cflags=("-Wl,--undefined=pb_touch",))
    msg = str(err.value)
    assert "does not fit on nucleo_f446re" in msg
    assert re.search(r"RAM of 131072 bytes overflowed by \d+ bytes", msg), msg


def test_model_too_big_for_flash_reports_numbers(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(STUB_MODEL, model)
    (model / "weights.c").write_text("#include <stdint.h>\nconst uint8_t pb_weights[600 * 1024] = {1};\n")
    with pytest.raises(FirmwareBuildError, match=r"FLASH of 524288 bytes overflowed by \d+ bytes"):
        build_firmware(model, "nucleo_f446re", tmp_path / "out", extra_cflags=("-Wl,--undefined=pb_weights",))


def test_compile_error_carries_compiler_message(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.c").write_text('#include "pb_model.h"\nint pb_model_run(void) { return oops; }\n')
    with pytest.raises(FirmwareBuildError, match=r"(?s)failed.*oops"):
        build_firmware(model, "netduinoplus2", tmp_path / "out")


def test_empty_model_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FirmwareBuildError, match="no model sources"):
        build_firmware(tmp_path, "netduinoplus2", tmp_path / "out")


def test_protocol_picks_the_main_loop(tmp_path: Path) -> None:
    board = get_board("netduinoplus2")
    pbkit_names = {p.relative_to(FIRMWARE_DIR / "src").as_posix() for p in build_mod.firmware_sources(board)}
    mlperf_names = {p.relative_to(FIRMWARE_DIR / "src").as_posix()
                    for p in build_mod.firmware_sources(board, "mlperf")}
    assert "main.c" in pbkit_names and "main.c" not in mlperf_names
    assert {"mlperf/pb_mlperf_main.c", "mlperf/pb_mlperf_dut.c"} <= mlperf_names
    assert pbkit_names - {"main.c"} == mlperf_names - {"mlperf/pb_mlperf_main.c", "mlperf/pb_mlperf_dut.c"}
    result = build_firmware(STUB_MODEL, "netduinoplus2", tmp_path, protocol="mlperf")
    assert result.protocol == "mlperf" and result.elf.is_file()
    with pytest.raises(FirmwareBuildError, match="unknown protocol 'eembc'; known: pbkit, mlperf"):
        build_firmware(STUB_MODEL, "netduinoplus2", tmp_path, protocol="eembc")
