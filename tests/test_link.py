"""host/link.py: pure framing, then the real thing against the stub firmware in QEMU:
replies, and an ERROR reply (never a hang) for every kind of bad frame."""

from __future__ import annotations

import random
import re
import struct
import threading
import zlib
from pathlib import Path

import pytest
import serial
from cobs import cobs
from fw_support import STUB_CLASSES, STUB_SHA256, STUB_SHAPE, STUB_STATUS_ALL_WHITE, c_defines, stub_rule

from pbkit.boards import get_board
from pbkit.host import link as L
from pbkit.host.link import BoardError, BoardLink, FrameError, LinkTimeout, SequenceError
from pbkit.paths import FIRMWARE_DIR

IMAGE_BYTES = STUB_SHAPE[0] * STUB_SHAPE[1] * STUB_SHAPE[2]

# ---- pure framing ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 253, 254, 255, 508, 784, 3000])
def test_frame_round_trip(size: int) -> None:
    rng = random.Random(size)
    for payload in (bytes(rng.randrange(256) for _ in range(size)), bytes([7]) * size, bytes(size)):
        wire = L.encode_frame(L.MSG_INFER, 1234, payload)
        assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
        assert L.decode_frame(wire[:-1]) == L.Frame(L.MSG_INFER, 1234, payload)


def test_body_layout_is_little_endian_with_zlib_crc() -> None:
    body = L.encode_body(0x02, 0x0102, b"\xaa\xbb")
    assert body[:6] == b"\x02\x00\x02\x01\xaa\xbb"
    assert body[6:] == struct.pack("<I", zlib.crc32(body[:6]))


def test_decode_rejects_bad_crc_cobs_and_short_frames() -> None:
    body = bytearray(L.encode_body(L.MSG_HELLO, 5))
    body[-1] ^= 0x01
    with pytest.raises(FrameError, match="CRC mismatch"):
        L.decode_frame(cobs.encode(bytes(body)))
    with pytest.raises(FrameError, match="bad COBS"):
        L.decode_frame(b"\x05\x01\x02")
    with pytest.raises(FrameError, match="shorter than header"):
        L.decode_frame(cobs.encode(b"\x01\x00\x05"))


def test_parse_replies() -> None:
    name = b"board"
    hello = L.HELLO_FIXED.pack(1, 1, 3, len(name), 168_000_000, 16384, bytes(range(32)), 3, 32, 32, 10) + name
    info = L.parse_hello(hello)
    assert (info.board, info.counter, info.input_shape, info.num_classes, info.input_bytes) == (
        "board",
        "instructions",
        (3, 32, 32),
        10,
        3072,
    )
    infer = L.INFER_FIXED.pack(2, 2**40 + 5, 3, 0) + struct.pack("<3i", -1, 0, 9)
    assert L.parse_infer(infer) == L.InferResult(2, [-1, 0, 9], 2**40 + 5)
    with pytest.raises(FrameError, match="expected"):
        L.parse_infer(infer[:-1])
    err = L.parse_error(L.Frame(L.MSG_ERROR, 9, L.ERROR_FIXED.pack(L.ERR_MODEL, 4, 0, -7) + b"oops"))
    assert (err.code, err.name, err.text, err.detail, err.seq) == (L.ERR_MODEL, "MODEL", "oops", -7, 9)
    profile = L.PROFILE_FIXED.pack(1, 52, 2, 3, 0) + struct.pack("<2i", 5, -6) + struct.pack("<3Q", 7, 2**33, 0)
    assert L.parse_profile(profile) == L.ProfileResult(1, [5, -6], [7, 2**33, 0], 52)
    with pytest.raises(FrameError, match="expected .* 2 logits and 3 layers"):
        L.parse_profile(profile + b"\x00")


# ---- one protocol on both sides: firmware/include/pb_protocol.h and docs/protocol.md against host/link.py ----

PROTOCOL_H = FIRMWARE_DIR / "include" / "pb_protocol.h"
PROTOCOL_MD = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
#: The header's build limits and buffer sizes, which the host does not share: it learns max_payload from HELLO
#: and takes any reply up to MAX_REPLY_FRAME (checked below against the largest the firmware can send).
FIRMWARE_ONLY = {"PB_MAX_PAYLOAD", "PB_MAX_CLASSES", "PB_MAX_LAYERS", "PB_MAX_BOARD_NAME", "PB_MAX_REPLY",
                 "PB_MAX_REQUEST", "PB_RX_CAP", "PB_TX_CAP"}


def _host_value(c_name: str) -> int:
    """The host's value of a header constant: PB_MSG_HELLO -> MSG_HELLO, PB_HELLO_FIXED_LEN -> HELLO_FIXED.size."""
    name = c_name.removeprefix("PB_")
    if isinstance(getattr(L, name, None), int):
        return getattr(L, name)
    layout = getattr(L, name.removesuffix("_LEN"), None)
    assert name.endswith("_LEN") and isinstance(layout, struct.Struct), f"{c_name} has no counterpart in host/link.py"
    return layout.size


def _c_value(expression: str, known: dict) -> int:
    """A header expression of integer constants, + - * / and PB_COBS_MAX_ENCODED, evaluated as C would."""
    python = re.sub(r"\b(\d+)[uU]\b", r"\1", expression).replace("/", "//")
    return eval(python, {"__builtins__": {}}, {**known, "PB_COBS_MAX_ENCODED": cobs.max_encoded_length})


def test_protocol_constants_are_the_firmwares() -> None:
    """Every constant of pb_protocol.h is the host's (or named firmware-only above), and every message type,
    error code and fixed layout the host speaks is in the header: a change on one side fails here."""
    c = c_defines(PROTOCOL_H)
    shared = {name: value for name, value in c.items() if name not in FIRMWARE_ONLY}
    assert {name: _host_value(name) for name in shared} == shared
    host = {f"PB_{n}" for n, v in vars(L).items() if n.startswith(("MSG_", "ERR_")) and isinstance(v, int)}
    host |= {f"PB_{n}_LEN" for n, v in vars(L).items() if isinstance(v, struct.Struct)}
    assert host | {"PB_PROTOCOL_VERSION", "PB_SEQ_UNKNOWN"} <= set(shared)
    assert L.ERROR_NAMES == {v: n.removeprefix("ERR_") for n, v in vars(L).items() if n.startswith("ERR_")}
    known = {name: value for name, value in c.items() if isinstance(value, int)}
    for name in ("PB_MAX_REPLY", "PB_MAX_REQUEST", "PB_RX_CAP", "PB_TX_CAP"):
        known[name] = _c_value(str(c[name]), known)
    assert known["PB_MAX_REPLY"] == L.HEADER.size + L.PROFILE_FIXED.size + 4 * 256 + 8 * 64 + L.CRC.size
    assert known["PB_TX_CAP"] <= L.MAX_REPLY_FRAME


def _doc_table(heading: str, nth: int = 0) -> list[list[str]]:
    """The body rows of the nth table under a docs/protocol.md heading, cells stripped."""
    lines = PROTOCOL_MD.read_text().split(f"\n{heading}\n", 1)[1].splitlines()
    tables, current = [], []
    for line in lines:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            current.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif current:
            tables.append(current[2:])  # past the header row and the ---- row
            current = []
    return (tables + [current[2:]])[nth]


def _field_spans(layout: struct.Struct) -> list[tuple[int, int]]:
    """(offset, size) of each field of a little-endian struct format."""
    spans, offset = [], 0
    for count, code in re.findall(r"(\d*)([a-zA-Z])", layout.format.lstrip("<")):
        size = struct.calcsize(f"<{count}{code}")
        spans.append((offset, size))
        offset += size
    return spans


@pytest.mark.parametrize("heading,layout", [
    ("### Header", L.HEADER), ("### HELLO reply payload (52 + N bytes)", L.HELLO_FIXED),
    ("### INFER reply payload (16 + 4·K bytes)", L.INFER_FIXED),
    ("### PROFILE reply payload (16 + 4·K + 8·L bytes)", L.PROFILE_FIXED),
    ("### ERROR payload (8 + N bytes)", L.ERROR_FIXED),
])
def test_the_documented_layouts_are_the_hosts(heading: str, layout: struct.Struct) -> None:
    """docs/protocol.md's field tables (offset, size) are the host's struct layouts, field by field; the firmware
    writes the same bytes (test_hello, test_infer_matches_stub_rule, test_profile_times_the_stub_as_one_layer)."""
    rows = [(int(row[0]), int(row[1])) for row in _doc_table(heading) if row[0].isdigit() and row[1].isdigit()]
    assert rows == _field_spans(layout)


def test_the_documented_codes_are_the_hosts() -> None:
    types = {row[2]: int(row[0], 16) for row in _doc_table("## Message types")}
    assert types == {"HELLO": L.MSG_HELLO, "HELLO reply": L.MSG_HELLO | L.MSG_REPLY, "INFER": L.MSG_INFER,
                     "INFER reply": L.MSG_INFER | L.MSG_REPLY, "PROFILE": L.MSG_PROFILE,
                     "PROFILE reply": L.MSG_PROFILE | L.MSG_REPLY, "ERROR": L.MSG_ERROR}
    codes = _doc_table("### ERROR payload (8 + N bytes)", nth=1)
    assert {int(row[0]): row[1] for row in codes} == L.ERROR_NAMES
    assert f"(version {L.PROTOCOL_VERSION})" in PROTOCOL_MD.read_text().splitlines()[0]


def test_read_frame_skips_garbage_before_a_frame() -> None:
    lk = BoardLink("loop://", timeout=0.5)
    good = L.encode_frame(L.MSG_HELLO | L.MSG_REPLY, 77, b"xyz")
    lk.send_raw(b"\x13\x37garbage\x00\x02\x00\xff\xfe\x00" + good)
    assert lk.read_frame() == L.Frame(L.MSG_HELLO | L.MSG_REPLY, 77, b"xyz")


def test_timeout_and_wrong_sequence_raise_link_errors() -> None:
    with BoardLink("loop://", timeout=0.2) as lk:
        with pytest.raises(LinkTimeout, match="no reply"):
            lk.read_frame()
        # A reply that was waiting before the request is stale: dropped, not an error.
        lk.send_raw(L.encode_frame(L.MSG_HELLO | L.MSG_REPLY, 999, b""))
        with pytest.raises(FrameError, match="reply type 0x01"):
            lk.request(L.MSG_HELLO)  # loop:// echoes the request itself
        # A reply with another seq that arrives after the request is an error.
        real_send = lk.send_raw
        lk.send_raw = lambda data: real_send(L.encode_frame(L.MSG_HELLO | L.MSG_REPLY, 999, b""))
        with pytest.raises(SequenceError, match="999"):
            lk.request(L.MSG_HELLO)


def test_unopenable_port_is_a_link_error() -> None:
    with pytest.raises(L.LinkError, match="cannot open"):
        BoardLink("/dev/does-not-exist-pbkit")


# ---- against the stub firmware in QEMU --------------------------------------------------


def test_hello(link: BoardLink, emulated_board: str) -> None:
    info = link.hello()
    board = get_board(emulated_board)
    assert info.protocol_version == L.PROTOCOL_VERSION
    assert info.board == emulated_board
    assert info.model_sha256 == STUB_SHA256
    assert info.input_shape == STUB_SHAPE
    assert info.num_classes == STUB_CLASSES
    assert (info.clock_hz, info.counter, info.icount_shift) == (board.clock_hz, "instructions", board.icount_shift)
    assert info.max_payload >= IMAGE_BYTES


def _images() -> list[bytes]:
    rng = random.Random(1)
    imgs = [bytes(rng.randrange(256) for _ in range(IMAGE_BYTES)) for _ in range(4)]
    imgs.append(bytes(IMAGE_BYTES))  # all zeros: every logit ties, lowest index wins
    imgs.append(bytes([0xFE]) * IMAGE_BYTES)  # no zero: full 254-byte COBS blocks
    imgs.append(bytes(1 if i % 10 == 9 else 0 for i in range(IMAGE_BYTES)))  # class 9
    return imgs


@pytest.mark.parametrize("image", _images(), ids=lambda im: f"img{sum(im) % 997}")
def test_infer_matches_stub_rule(link: BoardLink, image: bytes) -> None:
    expected_class, expected_logits = stub_rule(image)
    result = link.infer(image)
    assert result.logits == expected_logits
    assert result.class_index == expected_class
    assert result.ticks > 0


def test_infer_ticks_are_repeatable(link: BoardLink) -> None:
    image = _images()[0]
    ticks = [link.infer(image).ticks for _ in range(3)]
    assert max(ticks) - min(ticks) <= 2  # ns -> SysTick rounding only


def test_profile_times_the_stub_as_one_layer(link: BoardLink, emulated_board: str) -> None:
    """The stub calls its layer hook once: PROFILE's one layer is the whole run, as INFER counts it."""
    image = _images()[0]
    expected_class, expected_logits = stub_rule(image)
    prof = link.profile(image)
    assert (prof.class_index, prof.logits) == (expected_class, expected_logits)
    assert len(prof.layer_ticks) == 1 and prof.hook_ticks > 0
    # The hook runs just before the stub returns: the layer misses only the return and INFER's
    # extra call (pb_model_run -> pb_model_run_hooked), about ten instructions.
    missed = get_board(emulated_board).ticks_to_counter(link.infer(image).ticks - prof.layer_ticks[0])
    assert 0 <= missed <= 20


def test_profile_errors_are_those_of_infer(link: BoardLink) -> None:
    with pytest.raises(BoardError) as err:
        link.profile(bytes(10))
    assert (err.value.code, err.value.detail) == (L.ERR_BAD_LENGTH, IMAGE_BYTES)
    with pytest.raises(BoardError) as err:
        link.profile(bytes([255]) * IMAGE_BYTES)
    assert (err.value.code, err.value.detail) == (L.ERR_MODEL, STUB_STATUS_ALL_WHITE)
    link.hello()


def _error_reply(link: BoardLink, wire: bytes) -> BoardError:
    link.send_raw(wire)
    frame = link.read_frame(timeout=30)
    assert frame.type == L.MSG_ERROR, frame
    err = L.parse_error(frame)
    link.hello()  # the link still works afterwards
    return err


def test_model_error_is_reported(link: BoardLink) -> None:
    with pytest.raises(BoardError) as err:
        link.infer(bytes([255]) * IMAGE_BYTES)
    assert (err.value.code, err.value.detail) == (L.ERR_MODEL, STUB_STATUS_ALL_WHITE)
    link.hello()


def test_flipped_crc_byte(link: BoardLink) -> None:
    body = bytearray(L.encode_body(L.MSG_HELLO, 42))
    body[-2] ^= 0x40
    err = _error_reply(link, cobs.encode(bytes(body)) + b"\x00")
    assert (err.code, err.seq) == (L.ERR_BAD_CRC, L.SEQ_UNKNOWN)


def test_bad_cobs(link: BoardLink) -> None:
    err = _error_reply(link, b"\x09\x01\x02\x03\x00")  # code byte points past the frame end
    assert (err.code, err.seq) == (L.ERR_BAD_COBS, L.SEQ_UNKNOWN)


def test_unknown_message_type(link: BoardLink) -> None:
    err = _error_reply(link, L.encode_frame(0x33, 4321))
    assert (err.code, err.seq, err.detail) == (L.ERR_UNKNOWN_TYPE, 4321, 0x33)


@pytest.mark.parametrize(
    "msg_type,length",
    [(L.MSG_INFER, 10), (L.MSG_INFER, IMAGE_BYTES + 1), (L.MSG_PROFILE, IMAGE_BYTES - 1), (L.MSG_HELLO, 1)],
)
def test_wrong_payload_length(link: BoardLink, msg_type: int, length: int) -> None:
    err = _error_reply(link, L.encode_frame(msg_type, 17, bytes(length)))
    assert (err.code, err.seq) == (L.ERR_BAD_LENGTH, 17)
    if msg_type != L.MSG_HELLO:
        assert err.detail == IMAGE_BYTES
    with pytest.raises(BoardError, match="BAD_LENGTH"):
        link.request(msg_type, bytes(length))


def test_frame_too_short(link: BoardLink) -> None:
    err = _error_reply(link, cobs.encode(b"\x01\x00\x05") + b"\x00")
    assert (err.code, err.seq) == (L.ERR_FRAME_TOO_SHORT, L.SEQ_UNKNOWN)


def test_over_long_frame_is_dropped_and_answered(link: BoardLink) -> None:
    info = link.hello()
    err = _error_reply(link, b"\x11" * (info.max_payload + 200) + b"\x00")
    assert (err.code, err.seq) == (L.ERR_FRAME_TOO_LONG, L.SEQ_UNKNOWN)
    assert "too long" in err.text


def test_random_garbage_gets_an_error_and_link_recovers(link: BoardLink) -> None:
    rng = random.Random(7)
    for _ in range(5):
        garbage = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 300)))
        err = _error_reply(link, garbage + b"\x00")
        assert err.code in (L.ERR_BAD_COBS, L.ERR_BAD_CRC, L.ERR_FRAME_TOO_SHORT)
    # Garbage without a delimiter: the next request's leading 0x00 would not help, but a
    # lone delimiter (what BoardLink sends on open) flushes it without a reply.
    link.send_raw(b"\x55" * 40 + b"\x00")
    assert L.parse_error(link.read_frame()).code in (L.ERR_BAD_COBS, L.ERR_BAD_CRC)
    link.send_raw(b"\x00")
    image = _images()[1]
    assert link.infer(image).logits == stub_rule(image)[1]


def test_serial_link_is_pyserial_socket(link: BoardLink) -> None:
    assert link.url.startswith("socket://")
    assert isinstance(link._ser, serial.SerialBase)


def test_wait_ready(link: BoardLink, emulated_board: str) -> None:
    assert link.wait_ready(timeout=5).board == emulated_board
    link.hello()
    with (
        BoardLink("loop://", timeout=0.2) as silent,
        pytest.raises(LinkTimeout, match="did not answer HELLO"),
    ):
        silent.wait_ready(timeout=0.3, attempt_timeout=0.1)


def test_a_late_reply_to_an_abandoned_request_is_dropped() -> None:
    with BoardLink("loop://", timeout=0.2) as lk:
        real_send = lk.send_raw
        with pytest.raises(LinkTimeout):  # the first request goes unanswered...
            lk.send_raw = lambda data: None
            lk.request(L.MSG_HELLO)
        abandoned = lk._seq  # noqa: SLF001 - the seq the host gave up on
        # ...its answer comes late, just before the answer to the next request.
        late = L.encode_frame(L.MSG_HELLO | L.MSG_REPLY, abandoned, b"old")
        lk.send_raw = lambda data: real_send(late + L.encode_frame(L.MSG_HELLO | L.MSG_REPLY, abandoned + 1, b"new"))
        assert lk.request(L.MSG_HELLO).payload == b"new"


# ---- the board's contract: replies are checked against HELLO -----------------------------------


def _info(**changes) -> L.BoardInfo:
    fields = dict(protocol_version=2, board="netduinoplus2", clock_hz=168_000_000, counter="instructions",
                  icount_shift=3, max_payload=16384, model_sha256=bytes(32), channels=3, height=32, width=32,
                  num_classes=10)
    return L.BoardInfo(**{**fields, **changes})


@pytest.mark.parametrize(("changes", "message"), [
    ({"num_classes": 0}, "num_classes 0"),
    ({"height": 0}, "input shape (3, 0, 32)"),
    ({"clock_hz": 0}, "clock 0 Hz"),
    ({"counter": "unknown(7)"}, "counter kind unknown(7)"),
    ({"max_payload": 100}, "max_payload 100 B, below its own input of 3072 B"),
])
def test_a_hello_that_promises_nonsense_is_refused(changes, message) -> None:
    L.check_hello(_info(), "b")
    expected = f"b: board breaks the protocol contract: its HELLO says {message}"
    with pytest.raises(L.BoardContractError, match=re.escape(expected)):
        L.check_hello(_info(**changes), "b")


def test_infer_replies_are_checked_against_hello_and_the_clock() -> None:
    info = _info()
    good = L.InferResult(3, list(range(10)), 20_000_000 * 8 * 168 // 1000)  # 20M instructions in 0.1 s: fine
    assert L.check_infer(info, good, 0.1, "b") is good
    for bad, message in [
        (L.InferResult(4_000_000_000, list(range(10)), 1), "class 4000000000, HELLO said 10 classes"),
        (L.InferResult(0, [1, 2], 1), "2 logits, HELLO said 10 classes"),
        (L.InferResult(0, list(range(10)), 2**64 - 1), f"{2**64 - 1} ticks in 0.100 s, more than its"),
    ]:
        with pytest.raises(L.BoardContractError, match=f"INFER reply with {re.escape(message)}"):
            L.check_infer(info, bad, 0.1, "b")
    # Cycles on hardware: at most the clock rate (with a little slack) for the time waited.
    hw = _info(counter="cycles", clock_hz=16_000_000, icount_shift=0)
    L.check_infer(hw, L.InferResult(0, list(range(10)), 16_000_000), 1.0, "b")
    with pytest.raises(L.BoardContractError, match="ticks in 0.500 s"):
        L.check_infer(hw, L.InferResult(0, list(range(10)), 16_000_000), 0.5, "b")


def test_profile_replies_are_checked_too() -> None:
    info = _info()
    L.check_profile(info, L.ProfileResult(1, list(range(10)), [100, 200], 5), 0.1, "b")
    with pytest.raises(L.BoardContractError, match="PROFILE reply with"):
        L.check_profile(info, L.ProfileResult(1, list(range(10)), [2**63, 2**63 - 1], 5), 0.1, "b")
    with pytest.raises(L.BoardContractError, match="class 10, HELLO said 10"):
        L.check_profile(info, L.ProfileResult(10, list(range(10)), [1], 5), 0.1, "b")


def test_a_timeout_names_the_timeout_given() -> None:
    """A stale reply that arrives first used to shorten the wait named in the error ("2.0 s" for a 5 s timeout)."""
    with BoardLink("loop://", timeout=0.6) as lk:
        real_send = lk.send_raw
        lk._unanswered.add(999)  # noqa: SLF001 - a request given up on earlier
        stale = L.encode_frame(L.MSG_HELLO | L.MSG_REPLY, 999, b"")

        def send_then_stale_reply(data: bytes) -> None:
            threading.Timer(0.3, real_send, args=(stale,)).start()

        lk.send_raw = send_then_stale_reply
        with pytest.raises(LinkTimeout) as err:
            lk.request(L.MSG_HELLO)
    assert str(err.value) == "no reply from loop:// within 0.6 s"


def test_a_port_held_by_another_client_is_named(emulator, link: BoardLink) -> None:
    link.hello()  # the session link holds QEMU's one serial client
    with BoardLink(emulator.url, timeout=1) as second, pytest.raises(LinkTimeout) as err:
        second.wait_ready(timeout=1, attempt_timeout=0.25)
    text = str(err.value)
    assert f"did not answer HELLO within 1 s: port {emulator.port} is held by another client (127.0.0.1:" in text
    assert "QEMU's serial serves one client at a time" in text
    link.hello()


def test_a_device_port_is_locked_against_a_second_program() -> None:
    import os

    primary, secondary = os.openpty()
    try:
        tty = os.ttyname(secondary)
        with BoardLink(tty), pytest.raises(L.LinkError, match=f"cannot open {tty} \\(another program holds it\\)"):
            BoardLink(tty)
    finally:
        os.close(primary)
        os.close(secondary)
