"""host/emulator.py: QEMU comes up with a serial TCP port, goes away on exit, and its
-icount virtual time gives instruction counts through Board.ticks_to_counter."""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fw_support import CALIB_MODEL, EMULATED_BOARD, EMULATED_BOARDS

from pbkit.boards import get_board
from pbkit.host import emulator as emulator_mod
from pbkit.host.build import BuildResult, build_firmware
from pbkit.host.emulator import Emulator, EmulatorError
from pbkit.host.link import BoardLink


def test_session_emulator_serves_a_socket_url(emulator: Emulator) -> None:
    assert emulator.running
    assert emulator.url == f"socket://127.0.0.1:{emulator.port}"
    cmd = emulator.command()
    board = emulator.board
    assert cmd[cmd.index("-M") + 1] == board.qemu_machine
    assert cmd[cmd.index("-icount") + 1] == f"shift={board.icount_shift},align=off,sleep=off"


def test_qemu_is_killed_on_exit_and_on_exception(stub_firmware: BuildResult) -> None:
    emu = Emulator(stub_firmware.elf, stub_firmware.board)
    with pytest.raises(RuntimeError, match="boom"), emu:
        proc = emu.proc
        assert proc is not None and proc.poll() is None
        raise RuntimeError("boom")
    assert proc.poll() is not None and not emu.running
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", emu.port), timeout=0.5):
        pass


def test_board_without_qemu_machine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError, match="nucleo_f446re has no QEMU machine") as err:
        Emulator(tmp_path / "firmware.elf", "nucleo_f446re")
    assert all(name in str(err.value) for name in EMULATED_BOARDS)


def test_missing_qemu_says_make_toolchain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")  # never run: QEMU is missing
    monkeypatch.setattr(emulator_mod.shutil, "which", lambda name: None)
    with (
        pytest.raises(EmulatorError, match="qemu-system-arm not found.*make toolchain"),
        Emulator(elf, EMULATED_BOARD),
    ):
        pass


def test_missing_elf_is_reported(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError, match="ELF not found"), Emulator(tmp_path / "nope.elf", EMULATED_BOARD):
        pass


@pytest.mark.parametrize("board_name", EMULATED_BOARDS)
def test_ticks_convert_to_instruction_counts(board_name: str, tmp_path: Path) -> None:
    """The calibration model runs exactly 2*N instructions in its loop (subs + bne), so
    two runs differ by 2*(N2 - N1) instructions; the counter must agree, on every emulated
    board (each has its own SysTick clock and -icount shift)."""
    board = get_board(board_name)
    fw = build_firmware(CALIB_MODEL, board_name, tmp_path)
    with Emulator(fw.elf, board_name) as emu, BoardLink(emu.url, timeout=10) as link:
        info = link.hello()
        assert info.counter == "instructions"
        assert (info.board, info.icount_shift, info.clock_hz) == (board_name, board.icount_shift, board.clock_hz)
        ticks = {n: link.infer(struct.pack("<I", n)).ticks for n in (1000, 2000, 15_000_000)}
        layers = {n: link.profile(struct.pack("<I", n)).layer_ticks for n in (1000, 2000)}
    small = board.ticks_to_counter(ticks[2000] - ticks[1000])
    assert small == pytest.approx(2000, abs=2)
    # PROFILE: layer 0 is the loop, layer 1 is empty: the hook's own cost is taken off both.
    assert board.ticks_to_counter(layers[2000][0] - layers[1000][0]) == pytest.approx(2000, abs=2)
    assert board.ticks_to_counter(layers[1000][1]) <= 2
    # 30M instructions: several SysTick wraps, each handled by the wrap interrupt.
    large = board.ticks_to_counter(ticks[15_000_000] - ticks[1000])
    assert large == pytest.approx(2 * (15_000_000 - 1000), rel=1e-5)
    assert ticks[15_000_000] > 0xFFFFFF  # really wrapped


# ---- QEMU's own words, and QEMU that never outlives pbkit ------------------------------------


def test_a_file_that_does_not_boot_shows_qemus_own_error(tmp_path: Path) -> None:
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(bytes(range(256)) * 16)  # not an ELF: QEMU loads it raw, and the core locks up
    with pytest.raises(EmulatorError) as err, Emulator(elf, EMULATED_BOARD):
        pass
    text = str(err.value)
    assert "\n" not in text and "Connection refused" not in text
    assert "QEMU (firmware.elf on netduinoplus2) exited with signal 6: qemu: fatal: Lockup" in text


def test_monitor_resets_the_board(stub_firmware: BuildResult) -> None:
    with Emulator(stub_firmware.elf, stub_firmware.board, monitor=True) as emu, BoardLink(emu.url, timeout=5) as lk:
        assert lk.hello().board == stub_firmware.board
        emu.monitor_command("system_reset")
        assert lk.wait_ready(timeout=60).board == stub_firmware.board


def _children_named(pid: int, name: str) -> list[int]:
    """Live processes whose parent is `pid` and whose command is `name` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            comm = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and comm == name[:15] and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
@pytest.mark.parametrize("command", ["emulate", "profile", "demo"])
def test_no_qemu_survives_a_signal_to_pbkit(command: str, signum: int, real_model_firmware, tmp_path: Path) -> None:
    checkpoint, built = real_model_firmware
    argv = {
        "emulate": ["emulate", str(built.elf)],
        "profile": ["profile", "--checkpoint", str(checkpoint), "--images", "50", "--workdir", str(tmp_path)],
        "demo": ["demo", "--checkpoint", str(checkpoint), "--limit", "200", "--workdir", str(tmp_path),
                 "--report", str(tmp_path / "report.json")],
    }[command]
    pbkit = subprocess.Popen([sys.executable, "-m", "pbkit", *argv], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 900  # export and build first: minutes on a loaded machine
        wanted = 2 if command == "demo" else 1  # the demo starts two boards
        while len(qemus := _children_named(pbkit.pid, "qemu-system-arm")) < wanted:
            assert pbkit.poll() is None, pbkit.stderr.read().decode() if pbkit.stderr else ""
            assert time.monotonic() < deadline, f"pbkit {command} started no QEMU"
            time.sleep(0.05)
        time.sleep(0.5)  # mid-run: the boards are up and answering
        pbkit.send_signal(signum)
        code = pbkit.wait(timeout=120)
    finally:
        pbkit.kill()
        pbkit.wait()
    assert code == (128 + signum if signum == signal.SIGTERM else -signum)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in qemus) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in qemus), f"QEMU {qemus} outlived pbkit {command}"
