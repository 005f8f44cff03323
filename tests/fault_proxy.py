"""A TCP proxy between pbkit and a board in QEMU that injects faults on purpose: flipped, dropped
and inserted bytes on the line, and replies rewritten (re-encoded with a valid CRC) to break the
board's contract. Everything else passes through unchanged, so the board is the real firmware."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable

from pbkit.host.link import Frame, FrameError, decode_frame, encode_frame

#: rewrite(frame) -> the frame to send on instead (board -> host only).
Rewrite = Callable[[Frame], Frame]


class _Line:
    """Where the next fault of one direction falls: each frame is damaged with the given probabilities,
    at a byte drawn over the length of the frame before it (the 0x00 delimiter included)."""

    def __init__(self) -> None:
        self.pos = 0
        self.last_len = 16
        self.fault: tuple[int, str] | None = None


class FaultProxy:
    """``url`` forwards to 127.0.0.1:``target_port``. Each frame, in either direction, gets a flipped
    bit with probability ``flip``, loses a byte with ``drop`` (the delimiter too, sometimes), or gets
    1-8 bytes of noise inserted with ``noise``; ``faults`` counts what was done. A new client gets a
    new upstream connection, as if it had connected to QEMU itself."""

    def __init__(self, target_port: int, *, seed: int = 0, flip: float = 0.0, drop: float = 0.0,
                 noise: float = 0.0, rewrite: Rewrite | None = None):
        self.target_port = target_port
        self.rates = {"flip": flip, "drop": drop, "noise": noise}
        self.rewrite = rewrite
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.faults = {"flip": 0, "drop": 0, "noise": 0, "rewrite": 0}
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._closing = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                board = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            self._sockets += [client, board]
            threading.Thread(target=self._pump, args=(client, board, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(board, client, True), daemon=True).start()

    def _draw(self, line: _Line) -> None:
        line.fault = None
        for kind, rate in self.rates.items():
            if rate and self.rng.random() < rate:
                line.fault = (self.rng.randrange(line.last_len), kind)
                return

    def _damage(self, data: bytes, line: _Line) -> bytes:
        if not any(self.rates.values()):
            return data
        out = bytearray()
        with self.lock:
            for byte in data:
                if line.fault is not None and line.fault[0] == line.pos:
                    kind = line.fault[1]
                    self.faults[kind] += 1
                    if kind == "flip":
                        out.append(byte ^ (1 << self.rng.randrange(8)))
                    elif kind == "noise":
                        out += bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 9)))
                        out.append(byte)
                else:
                    out.append(byte)
                line.pos += 1
                if byte == 0:
                    line.last_len, line.pos = line.pos, 0
                    self._draw(line)
        return bytes(out)

    def _rewritten(self, pending: bytearray, data: bytes) -> bytes:
        """Whole frames of `pending + data` passed through `rewrite`; a partial frame waits in pending."""
        pending += data
        out = bytearray()
        while b"\x00" in pending:
            end = pending.index(b"\x00")
            chunk = bytes(pending[:end])
            del pending[: end + 1]
            try:
                frame = decode_frame(chunk)
            except FrameError:
                out += chunk + b"\x00"
                continue
            new = self.rewrite(frame) if self.rewrite else frame
            if new != frame:
                with self.lock:
                    self.faults["rewrite"] += 1
            out += encode_frame(new.type, new.seq, new.payload)
        return bytes(out)

    def _pump(self, src: socket.socket, dst: socket.socket, to_host: bool) -> None:
        pending = bytearray()
        line = _Line()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if to_host and self.rewrite is not None:
                    data = self._rewritten(pending, data)
                dst.sendall(self._damage(data, line))
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self._closing = True
        self._server.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
