"""Host side of the pbkit serial link (the byte layout is in docs/protocol.md).

A frame body is ``header | payload | crc32``: header = type u8, reserved u8, seq u16 (all
little-endian), CRC-32 (``zlib.crc32``) over header and payload. On the wire each body is
COBS-encoded and ended by one 0x00, so a receiver can always resync on the next 0x00.

:class:`BoardLink` talks to a board over anything ``serial.serial_for_url`` opens: a real
``/dev/tty*`` port or ``socket://host:port`` (QEMU's serial as a TCP server).
"""

from __future__ import annotations

import math
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import serial
from cobs import cobs

from pbkit.boards import COUNTER_CODES, UART_BAUD

#: What this host speaks. Version 2 added PROFILE; HELLO and INFER are as in version 1, so
#: boards with version 1 firmware still work for everything but profiling.
PROTOCOL_VERSION = 2
PROFILE_SINCE_VERSION = 2

MSG_HELLO = 0x01
MSG_INFER = 0x02
MSG_PROFILE = 0x03
MSG_REPLY = 0x80
MSG_ERROR = 0x7F

SEQ_UNKNOWN = 0xFFFF  # seq of errors about frames whose header could not be trusted

ERR_BAD_CRC = 1
ERR_BAD_COBS = 2
ERR_UNKNOWN_TYPE = 3
ERR_BAD_LENGTH = 4
ERR_FRAME_TOO_LONG = 5
ERR_MODEL = 6
ERR_FRAME_TOO_SHORT = 7
ERR_INTERNAL = 8

ERROR_NAMES = {
    ERR_BAD_CRC: "BAD_CRC",
    ERR_BAD_COBS: "BAD_COBS",
    ERR_UNKNOWN_TYPE: "UNKNOWN_TYPE",
    ERR_BAD_LENGTH: "BAD_LENGTH",
    ERR_FRAME_TOO_LONG: "FRAME_TOO_LONG",
    ERR_MODEL: "MODEL",
    ERR_FRAME_TOO_SHORT: "FRAME_TOO_SHORT",
    ERR_INTERNAL: "INTERNAL",
}

COUNTER_KINDS = {code: kind for kind, code in COUNTER_CODES.items()}

HEADER = struct.Struct("<BBH")
CRC = struct.Struct("<I")
HELLO_FIXED = struct.Struct("<BBBBII32sHHHH")  # 52 bytes, then the board name
INFER_FIXED = struct.Struct("<IQHH")  # 16 bytes, then num_classes int32 logits
PROFILE_FIXED = struct.Struct("<IIHHI")  # 16 bytes, then num_classes int32 logits, num_layers u64 ticks
ERROR_FIXED = struct.Struct("<BBHi")  # 8 bytes, then text_len bytes of ASCII

#: Longest reply a host accepts before declaring the line garbage (encoded bytes).
MAX_REPLY_FRAME = 64 * 1024

#: Most instructions per second of wall time a QEMU guest is taken to reach: far above what TCG runs
#: (a few hundred million), so only a count no emulator could reach in the time waited is refused.
MAX_EMULATED_IPS = 1e10


class LinkError(RuntimeError):
    """Base class of every link failure."""


class LinkTimeout(LinkError):
    """No complete frame arrived in time."""


class FrameError(LinkError):
    """A frame arrived but is malformed (bad COBS, bad CRC, too short, bad layout)."""


class SequenceError(LinkError):
    """A reply carried a sequence number other than the request's."""


class BoardContractError(LinkError):
    """A reply that is well-formed but breaks what the board promised in its HELLO (or a HELLO
    that promises nonsense): such a board is not believed."""


class BoardError(LinkError):
    """The board answered with an ERROR reply."""

    def __init__(self, code: int, text: str, detail: int = 0, seq: int = SEQ_UNKNOWN):
        self.code = code
        self.text = text
        self.detail = detail
        self.seq = seq
        name = ERROR_NAMES.get(code, f"code {code}")
        super().__init__(f"board error {name} ({code}): {text} [detail={detail}]")

    @property
    def name(self) -> str:
        return ERROR_NAMES.get(self.code, str(self.code))


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes


@dataclass(frozen=True)
class BoardInfo:
    protocol_version: int
    board: str
    clock_hz: int
    counter: str  # "instructions" or "cycles"
    icount_shift: int
    max_payload: int
    model_sha256: bytes
    channels: int
    height: int
    width: int
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    @property
    def input_bytes(self) -> int:
        return self.channels * self.height * self.width


@dataclass(frozen=True)
class InferResult:
    class_index: int
    logits: list[int]
    ticks: int  # counter ticks of pb_model_run alone; Board.ticks_to_counter converts


@dataclass(frozen=True)
class ProfileResult:
    class_index: int
    logits: list[int]
    layer_ticks: list[int]  # counter ticks of each layer, in run order, the profiler's own cost taken off
    hook_ticks: int  # what the firmware took off each layer: the cost of one hook call


# ---- framing (pure) --------------------------------------------------------------------


def encode_body(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """header + payload + CRC, before COBS."""
    head = HEADER.pack(msg_type, 0, seq) + bytes(payload)
    return head + CRC.pack(zlib.crc32(head))


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """The bytes to put on the wire for one message (COBS + 0x00 delimiter)."""
    return cobs.encode(encode_body(msg_type, seq, payload)) + b"\x00"


def decode_body(body: bytes) -> Frame:
    """Checks length and CRC of a decoded body and splits it."""
    if len(body) < HEADER.size + CRC.size:
        raise FrameError(f"frame of {len(body)} bytes is shorter than header + CRC")
    data, (crc,) = body[: -CRC.size], CRC.unpack(body[-CRC.size :])
    if zlib.crc32(data) != crc:
        raise FrameError(f"CRC mismatch: frame says {crc:#010x}, data gives {zlib.crc32(data):#010x}")
    msg_type, _reserved, seq = HEADER.unpack(data[: HEADER.size])
    return Frame(msg_type, seq, bytes(data[HEADER.size :]))


def decode_frame(encoded: bytes) -> Frame:
    """Decodes one wire frame (without its 0x00 delimiter)."""
    try:
        body = cobs.decode(bytes(encoded))
    except cobs.DecodeError as e:
        raise FrameError(f"bad COBS encoding: {e}") from None
    return decode_body(body)


def parse_error(frame: Frame) -> BoardError:
    if len(frame.payload) < ERROR_FIXED.size:
        raise FrameError(f"ERROR reply of {len(frame.payload)} bytes is too short")
    code, text_len, _reserved, detail = ERROR_FIXED.unpack_from(frame.payload)
    text = frame.payload[ERROR_FIXED.size : ERROR_FIXED.size + text_len].decode("ascii", "replace")
    return BoardError(code, text, detail, frame.seq)


def parse_hello(payload: bytes) -> BoardInfo:
    if len(payload) < HELLO_FIXED.size:
        raise FrameError(f"HELLO reply of {len(payload)} bytes is too short")
    fields = HELLO_FIXED.unpack_from(payload)
    version, counter, shift, name_len, clock_hz, max_payload, sha, c, h, w, k = fields
    name = payload[HELLO_FIXED.size : HELLO_FIXED.size + name_len]
    if len(name) != name_len:
        raise FrameError("HELLO reply truncated inside the board name")
    return BoardInfo(
        protocol_version=version,
        board=name.decode("ascii", "replace"),
        clock_hz=clock_hz,
        counter=COUNTER_KINDS.get(counter, f"unknown({counter})"),
        icount_shift=shift,
        max_payload=max_payload,
        model_sha256=sha,
        channels=c,
        height=h,
        width=w,
        num_classes=k,
    )


def parse_infer(payload: bytes) -> InferResult:
    if len(payload) < INFER_FIXED.size:
        raise FrameError(f"INFER reply of {len(payload)} bytes is too short")
    class_index, ticks, num_classes, _reserved = INFER_FIXED.unpack_from(payload)
    expected = INFER_FIXED.size + 4 * num_classes
    if len(payload) != expected:
        raise FrameError(f"INFER reply is {len(payload)} bytes, expected {expected} for {num_classes} logits")
    logits = list(struct.unpack_from(f"<{num_classes}i", payload, INFER_FIXED.size))
    return InferResult(class_index, logits, ticks)


def parse_profile(payload: bytes) -> ProfileResult:
    if len(payload) < PROFILE_FIXED.size:
        raise FrameError(f"PROFILE reply of {len(payload)} bytes is too short")
    class_index, hook_ticks, num_classes, num_layers, _reserved = PROFILE_FIXED.unpack_from(payload)
    expected = PROFILE_FIXED.size + 4 * num_classes + 8 * num_layers
    if len(payload) != expected:
        raise FrameError(f"PROFILE reply is {len(payload)} bytes, expected {expected} for {num_classes} "
                         f"logits and {num_layers} layers")
    logits = list(struct.unpack_from(f"<{num_classes}i", payload, PROFILE_FIXED.size))
    layer_ticks = list(struct.unpack_from(f"<{num_layers}Q", payload, PROFILE_FIXED.size + 4 * num_classes))
    return ProfileResult(class_index, logits, layer_ticks, hook_ticks)


# ---- the board's contract (pure) --------------------------------------------------------


def check_hello(info: BoardInfo, where: str) -> BoardInfo:
    """A HELLO that describes a board that could answer INFER; BoardContractError otherwise."""
    problems = []
    if info.num_classes < 1:
        problems.append(f"num_classes {info.num_classes}")
    if min(info.input_shape) < 1:
        problems.append(f"input shape {info.input_shape}")
    if info.clock_hz < 1:
        problems.append(f"clock {info.clock_hz} Hz")
    if info.counter not in COUNTER_CODES:
        problems.append(f"counter kind {info.counter}")
    if info.max_payload < info.input_bytes:
        problems.append(f"max_payload {info.max_payload} B, below its own input of {info.input_bytes} B")
    if problems:
        raise BoardContractError(f"{where}: board breaks the protocol contract: its HELLO says {', '.join(problems)}")
    return info


def max_ticks(info: BoardInfo, elapsed_s: float) -> int:
    """Most counter ticks a board can report for work done within `elapsed_s` of wall time: its clock
    (cycles), or MAX_EMULATED_IPS instructions at its -icount shift (instructions); with some slack."""
    if info.counter == "cycles":
        return math.ceil(info.clock_hz * (1.05 * elapsed_s + 0.01))
    ticks_per_instruction = info.clock_hz * 2**info.icount_shift / 1e9
    return math.ceil((MAX_EMULATED_IPS * elapsed_s + 1e6) * ticks_per_instruction)


def _check_run(info: BoardInfo, kind: str, class_index: int, logits: list[int], ticks: int, elapsed_s: float,
               where: str) -> None:
    problems = []
    if len(logits) != info.num_classes:
        problems.append(f"{len(logits)} logits, HELLO said {info.num_classes} classes")
    if not 0 <= class_index < info.num_classes:
        problems.append(f"class {class_index}, HELLO said {info.num_classes} classes")
    limit = max_ticks(info, elapsed_s)
    if ticks > limit:
        problems.append(f"{ticks} ticks in {elapsed_s:.3f} s, more than its {info.clock_hz} Hz {info.counter} "
                        f"counter can reach ({limit})")
    if problems:
        raise BoardContractError(f"{where}: board breaks the protocol contract: {kind} reply with "
                                 f"{'; '.join(problems)}")


def check_infer(info: BoardInfo, result: InferResult, elapsed_s: float, where: str) -> InferResult:
    """An INFER reply consistent with the board's HELLO and the time it took; BoardContractError otherwise."""
    _check_run(info, "INFER", result.class_index, result.logits, result.ticks, elapsed_s, where)
    return result


def check_profile(info: BoardInfo, result: ProfileResult, elapsed_s: float, where: str) -> ProfileResult:
    """A PROFILE reply consistent with the board's HELLO and the time it took; BoardContractError otherwise."""
    ticks = sum(result.layer_ticks) + result.hook_ticks * len(result.layer_ticks)
    _check_run(info, "PROFILE", result.class_index, result.logits, ticks, elapsed_s, where)
    return result


# ---- who else holds a local TCP port (diagnostics) ---------------------------------------


def other_local_clients(server_port: int, own_port: int | None) -> list[int]:
    """Client ports of the other connections to a 127.0.0.1 server port, read from /proc/net/tcp
    (Linux; empty elsewhere). QEMU's TCP serial serves one client at a time: a second one connects
    but is never answered."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or fields[3] != "01":  # 01: ESTABLISHED
                continue
            local_port, remote_port = int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16)
            if local_port == server_port and remote_port != own_port:
                found.append(remote_port)
    return sorted(set(found))


# ---- the link --------------------------------------------------------------------------


class BoardLink:
    """A request/response link to a board running the pbkit firmware.

    ``url_or_port`` is anything ``serial.serial_for_url`` opens (``/dev/ttyACM0``,
    ``socket://127.0.0.1:4321``). ``timeout`` bounds each reply, in seconds.
    """

    def __init__(self, url_or_port: str, timeout: float = 5.0, baudrate: int = UART_BAUD):
        self.url = url_or_port
        self.timeout = timeout
        #: What the board said in its last HELLO; replies are checked against it (check_infer).
        self.info: BoardInfo | None = None
        try:
            # A device port is locked (flock) so that two programs cannot share one board unknowingly.
            self._ser = serial.serial_for_url(url_or_port, baudrate=baudrate, timeout=0.05, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            held = " (another program holds it)" if "exclusively lock" in str(e) else ""
            raise LinkError(f"cannot open {url_or_port}{held}: {e}") from None
        self._rx = bytearray()
        self._seq = 0
        self._unanswered: set[int] = set()  # seqs sent whose reply has not come (yet)
        # A leading delimiter ends whatever partial frame the board may hold (it ignores
        # empty frames), so the first request is never glued to old garbage.
        self.send_raw(b"\x00")

    # context manager -----------------------------------------------------------------
    def __enter__(self) -> BoardLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._ser.close()

    # raw access (tests, diagnostics) -------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        """Writes bytes to the line as they are."""
        try:
            self._ser.write(bytes(data))
            self._ser.flush()
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"write to {self.url} failed: {e}") from None

    def discard_input(self) -> None:
        """Drops whatever arrived unasked (say, the late reply to a request that timed
        out): the board only speaks when asked, so it cannot be for the next request."""
        self._rx.clear()
        try:
            self._ser.reset_input_buffer()
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"cannot flush {self.url}: {e}") from None

    def read_frame(self, timeout: float | None = None, *, stated: float | None = None,
                   skip_garbage: bool = True) -> Frame:
        """Returns the next well-formed frame. Bytes before a frame that do not decode
        (line noise, a half frame) are skipped: the link resyncs on every 0x00; with
        ``skip_garbage=False`` they raise FrameError instead. ``stated`` is the timeout the
        caller was given, named in the error (``timeout`` may be what is left of it)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        last_problem: FrameError | None = None
        while True:
            while b"\x00" in self._rx:
                end = self._rx.index(b"\x00")
                chunk = bytes(self._rx[:end])
                del self._rx[: end + 1]
                if not chunk:
                    continue
                try:
                    return decode_frame(chunk)
                except FrameError as e:
                    if not skip_garbage:
                        raise FrameError(f"undecodable reply from {self.url}: {e}") from None
                    last_problem = e  # garbage before a real frame: skip to the next 0x00
            if len(self._rx) > MAX_REPLY_FRAME:
                self._rx.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                hint = f" (last undecodable frame: {last_problem})" if last_problem else ""
                given = timeout if stated is None else stated
                raise LinkTimeout(f"no reply from {self.url} within {given:.3g} s{hint}")
            try:
                data = self._ser.read(max(1, self._ser.in_waiting))
            except (serial.SerialException, OSError) as e:
                raise LinkError(f"read from {self.url} failed: {e}") from None
            self._rx += data

    def request(self, msg_type: int, payload: bytes = b"") -> Frame:
        """Sends one request and returns its reply; ERROR replies raise BoardError."""
        seq = self._next_seq()
        self.discard_input()
        self.send_raw(encode_frame(msg_type, seq, payload))
        if len(self._unanswered) > 1024:  # a board that never answered: forget the oldest history
            self._unanswered.clear()
        self._unanswered.add(seq)
        deadline = time.monotonic() + self.timeout
        while True:
            # After a request the board sends one frame, its reply: a frame that does not decode is that
            # reply garbled on the line, so waiting on would only run into the timeout.
            frame = self.read_frame(timeout=max(0.0, deadline - time.monotonic()), stated=self.timeout,
                                    skip_garbage=False)
            # A late answer to an earlier request we gave up on (a timed-out request, a spare
            # HELLO of wait_ready) is stale: drop it and keep waiting for ours.
            if frame.seq != seq and frame.seq in self._unanswered:
                self._unanswered.discard(frame.seq)
                continue
            break
        self._unanswered.discard(seq)
        if frame.type == MSG_ERROR:
            err = parse_error(frame)
            if err.seq not in (seq, SEQ_UNKNOWN):
                raise SequenceError(f"ERROR reply for seq {err.seq}, expected {seq}: {err}")
            raise err
        if frame.seq != seq:
            raise SequenceError(f"reply seq {frame.seq} does not match request seq {seq}")
        if frame.type != msg_type | MSG_REPLY:
            raise FrameError(f"reply type {frame.type:#04x} to request type {msg_type:#04x}")
        return frame

    def wait_ready(self, timeout: float = 10.0, attempt_timeout: float = 0.5) -> BoardInfo:
        """Sends HELLO until the board answers and returns its info.

        For a board that may still be booting (QEMU just started, a board just reset):
        its UART drops bytes until the firmware has enabled it. Every attempt is a HELLO,
        so a late reply to an earlier attempt is as good as one to the last.
        """
        deadline = time.monotonic() + timeout
        sent: set[int] = set()
        while True:
            seq = self._next_seq()
            sent.add(seq)
            self._unanswered.add(seq)
            self.send_raw(b"\x00" + encode_frame(MSG_HELLO, seq))
            attempt_end = min(deadline, time.monotonic() + attempt_timeout)
            try:
                while True:
                    frame = self.read_frame(timeout=max(0.0, attempt_end - time.monotonic()))
                    if frame.type == MSG_HELLO | MSG_REPLY and frame.seq in sent:
                        self._unanswered.discard(frame.seq)
                        return self._believe_hello(frame.payload)
                    # Anything else answers a frame cut short by the boot: ignore it.
            except LinkTimeout:
                if time.monotonic() >= deadline:
                    raise LinkTimeout(f"{self.url} did not answer HELLO within {timeout:.3g} s"
                                      f"{self._silence_hint()}") from None

    def _silence_hint(self) -> str:
        """Why a socket:// port that accepted the connection may never answer: another client holds it."""
        host, _, port = self.url.removeprefix("socket://").partition(":")
        if not self.url.startswith("socket://") or host not in ("127.0.0.1", "localhost"):
            return ""
        sock = getattr(self._ser, "_socket", None)
        try:
            own = sock.getsockname()[1] if sock is not None else None
            others = other_local_clients(int(port.split("/")[0].split("?")[0]), own)
        except (OSError, ValueError):
            return ""
        if not others:
            return ""
        return (f": port {port} is held by another client (127.0.0.1:{others[0]}); QEMU's serial serves one "
                "client at a time: stop the other one, or start another emulator")

    def _believe_hello(self, payload: bytes) -> BoardInfo:
        self.info = check_hello(parse_hello(payload), self.url)
        return self.info

    def hello(self) -> BoardInfo:
        return self._believe_hello(self.request(MSG_HELLO).payload)

    def infer(self, image: bytes) -> InferResult:
        """Runs one uint8 CHW image on the board; the reply is checked against its HELLO (once there was one)."""
        start = time.monotonic()
        result = parse_infer(self.request(MSG_INFER, bytes(image)).payload)
        if self.info is not None:
            check_infer(self.info, result, time.monotonic() - start, self.url)
        return result

    def profile(self, image: bytes) -> ProfileResult:
        """Runs one uint8 CHW image with every layer timed (protocol version 2 and later); checked as infer."""
        start = time.monotonic()
        result = parse_profile(self.request(MSG_PROFILE, bytes(image)).payload)
        if self.info is not None:
            check_profile(self.info, result, time.monotonic() - start, self.url)
        return result

    def _next_seq(self) -> int:
        # SEQ_UNKNOWN is never used by the host, so it always means "not yours".
        self._seq = (self._seq + 1) % SEQ_UNKNOWN
        return self._seq
