"""`pio run -e netduinoplus2 -t upload` for an emulated board: "flash" = boot the ELF in QEMU.

QEMU starts detached (its own session, output to QEMU.log beside the pid file), with the
command line :class:`pbkit.host.emulator.Emulator` builds (``-icount``, the UART on a local
TCP port), so it outlives the `pio` command the way a flashed board does; the serial URL is
printed for `pbkit bench --port`. A second upload stops the QEMU the pid file names first,
as flashing replaces the image; ``--stop`` (pio's `-t qemu_stop`) stops it.

    python -m pbkit.host.qemu_upload firmware.elf --board netduinoplus2 --pidfile qemu.pid
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pbkit.host.emulator import Emulator, EmulatorError, _free_port


def _is_our_qemu(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and Path(cmdline[0].decode(errors="replace")).name.startswith("qemu-system-")


def stop(pidfile: Path, timeout: float = 5.0) -> bool:
    """Stops the QEMU recorded in ``pidfile``; True when one was running."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    pidfile.unlink(missing_ok=True)
    if not _is_our_qemu(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _is_our_qemu(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _is_our_qemu(pid):
        os.kill(pid, signal.SIGKILL)
    return True


def upload(elf: Path, board: str, pidfile: Path, timeout: float = 20.0) -> str:
    """Boots ``elf`` in a detached QEMU; returns its serial URL once QEMU listens on it."""
    emu = Emulator(elf, board, port=_free_port())
    if not emu.elf.is_file():
        raise EmulatorError(f"firmware ELF not found: {emu.elf}")
    cmd = emu.command()
    stop(pidfile)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(pidfile.with_suffix(".log"), "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    pidfile.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pidfile.unlink(missing_ok=True)
            raise EmulatorError(f"QEMU exited with status {proc.returncode}: "
                                f"{pidfile.with_suffix('.log').read_text(errors='replace').strip()}")
        try:
            with socket.create_connection(("127.0.0.1", emu.port), timeout=0.2):
                return emu.url
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop(pidfile)
            raise EmulatorError(f"QEMU did not open its serial port {emu.port} within {timeout} s")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("elf", nargs="?", help="firmware ELF to boot")
    parser.add_argument("--board", default="netduinoplus2", help="an emulated pbkit board")
    parser.add_argument("--pidfile", required=True, type=Path, help="where the QEMU process id is kept")
    parser.add_argument("--stop", action="store_true", help="stop the QEMU in --pidfile and exit")
    args = parser.parse_args(argv)
    if args.stop:
        print("QEMU stopped" if stop(args.pidfile) else "no QEMU was running", flush=True)
        return 0
    if not args.elf:
        parser.error("give the ELF to boot, or --stop")
    try:
        url = upload(Path(args.elf), args.board, args.pidfile)
    except (EmulatorError, ValueError) as exc:
        print(f"pbkit qemu upload: error: {exc}", file=sys.stderr)
        return 1
    print(f"QEMU {args.board} running {args.elf} (pid in {args.pidfile}; stop: pio run -t qemu_stop)", flush=True)
    print(url, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
