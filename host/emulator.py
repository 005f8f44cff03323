"""Runs pbkit firmware in QEMU with its serial port as a local TCP server.

QEMU runs with ``-icount shift=N,align=off,sleep=off``: every instruction advances virtual
time by 2**N ns, so the SysTick ticks the firmware reports convert exactly to instruction
counts (``Board.ticks_to_counter``), independent of host load; ``sleep=off`` lets virtual
time run as fast as the host can go while the firmware waits for input. The board's first
serial port, the one its firmware talks on (USART1 on netduinoplus2, the CMSDK UART0 on
mps2-an386 and mps2-an500), becomes a local TCP server; QEMU loads the ELF at its link
addresses and the core boots from the vector table at the start of the board's "flash".

QEMU never outlives the process that started it: it runs in its own session (a Ctrl-C or a signal
to pbkit's process group reaches pbkit, which stops it), and on Linux with PR_SET_PDEATHSIG, so the
kernel kills it when the thread that started it dies, by SIGKILL or anything else. Start an
Emulator from a thread that lives as long as it (pbkit starts them from the main thread). Its
output goes to a temporary file, shown when it exits early.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from pbkit.boards import get_board

QEMU = "qemu-system-arm"
_PTY_RE = re.compile(r"char device redirected to (/dev/\S+)")
PR_SET_PDEATHSIG = 1  # linux/prctl.h
#: How much of QEMU's own output is read back (its first bytes: a fatal error comes first).
OUTPUT_LIMIT = 64 * 1024


class EmulatorError(RuntimeError):
    """QEMU is missing, cannot emulate the board, or did not come up."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGKILL when the thread that forked it dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in the child
    parent = os.getpid()

    def set_death_signal() -> None:
        if prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0 or os.getppid() != parent:
            os._exit(127)  # the parent died before the signal was armed: do not start at all

    return set_death_signal


class Emulator:
    """Context manager: QEMU running ``elf`` for ``board``; ``.url`` is its serial port.

    >>> with Emulator(elf, "netduinoplus2") as emu, BoardLink(emu.url) as link:
    ...     link.hello()
    """

    def __init__(
        self,
        elf: Path,
        board: str,
        *,
        start_timeout: float = 60.0,
        port: int | None = None,
        wait_ready: bool = True,
        pty: bool = False,
        monitor: bool = False,
    ):
        self.elf = Path(elf)
        self.board = get_board(board)
        if not self.board.emulated:
            emulated = ", ".join(n for n, b in _emulated_boards().items())
            raise EmulatorError(f"board {board} has no QEMU machine; emulated boards: {emulated}")
        self.start_timeout = start_timeout
        self.port = port
        self.wait_ready = wait_ready
        self.pty = pty  # the UART on a pseudo-terminal (/dev/pts/N) instead of a TCP port
        self.pty_path: str | None = None
        #: With monitor=True, QEMU's human monitor listens on this local TCP port (see .monitor_command).
        self.monitor_port: int | None = _free_port() if monitor else None
        self.proc: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    @property
    def url(self) -> str:
        if self.pty:
            if self.pty_path is None:
                raise EmulatorError("emulator not started")
            return self.pty_path
        if self.port is None:
            raise EmulatorError("emulator not started")
        return f"socket://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        qemu = shutil.which(QEMU)
        if qemu is None:
            raise EmulatorError(
                f"{QEMU} not found on PATH; install with `make toolchain` (Debian: qemu-system-arm)"
            )
        return [
            qemu,
            "-M", str(self.board.qemu_machine),
            "-nographic",
            "-kernel", str(self.elf),
            "-icount", f"shift={self.board.icount_shift},align=off,sleep=off",
            "-serial", "pty" if self.pty else f"tcp:127.0.0.1:{self.port},server=on,wait=off",
            "-monitor", "none",
        ] + self._monitor_args()  # fmt: skip

    def _monitor_args(self) -> list[str]:
        if self.monitor_port is None:
            return []
        return ["-monitor", f"tcp:127.0.0.1:{self.monitor_port},server=on,wait=off"]

    def start(self) -> Emulator:
        if not self.elf.is_file():
            raise EmulatorError(f"firmware ELF not found: {self.elf}")
        if self.port is None:
            self.port = _free_port()
        cmd = self.command()
        self._output = tempfile.TemporaryFile()  # a file, not a pipe: QEMU never blocks on its own output
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._output, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=die_with_parent(),
        )  # fmt: skip
        try:
            deadline = time.monotonic() + self.start_timeout
            if self.pty:
                self.pty_path = self._read_pty_path(deadline)
            else:
                self._wait_listening(deadline)
            if self.wait_ready:
                self._wait_firmware(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_firmware(self, deadline: float) -> None:
        """Waits until the firmware answers HELLO. QEMU listens before the guest has run
        a single instruction, and its USART drops bytes until the firmware enables it,
        so on a loaded host a first request could vanish without this."""
        from pbkit.host.link import BoardLink, LinkError

        try:
            with BoardLink(self.url, timeout=1.0) as link:
                link.wait_ready(timeout=max(0.5, deadline - time.monotonic()))
        except LinkError as e:
            self._raise_if_exited()  # QEMU's own reason beats the link's "connection refused"
            raise EmulatorError(f"firmware in QEMU does not answer on {self.url}: {e}") from None

    def _read_pty_path(self, deadline: float) -> str:
        """QEMU names the pseudo-terminal on its first line of output, before the guest runs.
        (Until a client opens it, QEMU drops what the guest writes; input waits in the pty.)"""
        assert self.proc is not None
        while True:
            found = _PTY_RE.search(self.output())
            if found:
                return found.group(1)
            self._raise_if_exited()
            if time.monotonic() > deadline:
                raise EmulatorError(f"QEMU did not name its pty within {self.start_timeout:.0f} s: {self.output()}")
            time.sleep(0.02)

    def output(self) -> str:
        """What QEMU printed so far (stdout and stderr; its first OUTPUT_LIMIT bytes)."""
        if self._output is None:
            return ""
        self._output.flush()
        self._output.seek(0)
        return self._output.read(OUTPUT_LIMIT).decode(errors="replace").strip()

    def exit_message(self) -> str:
        """One line for a QEMU that has exited: its status and the first line it printed (a fatal
        error comes first, a register dump after it)."""
        assert self.proc is not None
        lines = [line.strip() for line in self.output().splitlines() if line.strip()]
        status = self.proc.returncode
        how = f"signal {-status}" if status is not None and status < 0 else f"status {status}"
        said = f": {lines[0]}" if lines else ""
        if len(lines) > 1:
            said += f" [+{len(lines) - 1} more lines]"
        if "Lockup" in said:
            said += f"; the image does not boot on {self.board.name}: is it pbkit firmware built for this board?"
        return f"QEMU ({self.elf.name} on {self.board.qemu_machine}) exited with {how}{said}"

    def _raise_if_exited(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise EmulatorError(self.exit_message())

    def monitor_command(self, command: str, timeout: float = 10.0) -> str:
        """Runs one QEMU monitor command (e.g. ``system_reset``) and returns its output. Needs monitor=True."""
        if self.monitor_port is None:
            raise EmulatorError("this emulator was started without monitor=True")
        prompt = b"(qemu) "
        with socket.create_connection(("127.0.0.1", self.monitor_port), timeout=timeout) as sock:
            data = b""
            while not data.endswith(prompt):
                chunk = sock.recv(4096)
                if not chunk:
                    raise EmulatorError(f"QEMU monitor closed before its prompt: {data!r}")
                data += chunk
            sock.sendall(command.encode() + b"\n")
            data = b""
            while not data.endswith(prompt):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.decode(errors="replace").removesuffix("(qemu) ").strip()

    def _wait_listening(self, deadline: float) -> None:
        assert self.proc is not None
        while True:
            self._raise_if_exited()
            try:
                # Probing with a connect is harmless: QEMU's TCP serial accepts the next
                # client once this one closes, and the firmware only ever answers.
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"QEMU did not open its serial port {self.port} within {self.start_timeout} s"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._output is not None:
            self._output.close()
            self._output = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _emulated_boards() -> dict:
    from pbkit.boards import BOARDS

    return {n: b for n, b in BOARDS.items() if b.emulated}
