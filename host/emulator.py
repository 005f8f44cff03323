"""Runs pbkit firmware in QEMU with its serial port as a local TCP server.

QEMU runs with ``-icount shift=N,align=off,sleep=off``: every instruction advances virtual
time by 2**N ns, so the SysTick ticks the firmware reports convert exactly to instruction
counts (``Board.ticks_to_counter``), independent of host load; ``sleep=off`` lets virtual
time run as fast as the host can go while the firmware waits for input. The board's first
serial port, the one its firmware talks on (USART1 on netduinoplus2, the CMSDK UART0 on
mps2-an386 and mps2-an500), becomes a local TCP server; QEMU loads the ELF at its link
addresses and the core boots from the vector table at the start of the board's "flash".
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from pbkit.boards import get_board

QEMU = "qemu-system-arm"
_PTY_RE = re.compile(r"char device redirected to (/dev/\S+)")


class EmulatorError(RuntimeError):
    """QEMU is missing, cannot emulate the board, or did not come up."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        start_timeout: float = 10.0,
        port: int | None = None,
        wait_ready: bool = True,
        pty: bool = False,
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
        self.proc: subprocess.Popen[bytes] | None = None

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
        ]  # fmt: skip

    def start(self) -> Emulator:
        if not self.elf.is_file():
            raise EmulatorError(f"firmware ELF not found: {self.elf}")
        if self.port is None:
            self.port = _free_port()
        cmd = self.command()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + self.start_timeout
            if self.pty:
                self.pty_path = self._read_pty_path()
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
            raise EmulatorError(f"firmware in QEMU does not answer on {self.url}: {e}") from None

    def _read_pty_path(self) -> str:
        """QEMU names the pseudo-terminal on its first line of output, before the guest runs.
        (Until a client opens it, QEMU drops what the guest writes; input waits in the pty.)"""
        assert self.proc is not None and self.proc.stdout is not None
        lines = []
        for raw in self.proc.stdout:  # ends when QEMU exits; the start timeout does not apply
            line = raw.decode(errors="replace").strip()
            lines.append(line)
            found = _PTY_RE.search(line)
            if found:
                return found.group(1)
        self.proc.wait()
        raise EmulatorError(f"QEMU exited with status {self.proc.returncode} before naming its pty: "
                            f"{' '.join(lines)}")

    def _wait_listening(self, deadline: float) -> None:
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                raise EmulatorError(f"QEMU exited with status {self.proc.returncode}: {out.strip()}")
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
        if proc.stdout:
            proc.stdout.close()

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
