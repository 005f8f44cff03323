"""Fuzzing the firmware's link code: the host ASan/UBSan build (firmware/host/pb_fuzz.c, bounded here;
`make fuzz` runs it long) must pass and must find a planted off-by-one; and the board in QEMU, sent a
few thousand mutated frames, must answer each with a well-formed reply and still answer HELLO and INFER."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from fw_support import EMULATED_BOARD, STUB_SHAPE, stub_rule

from pbkit.host import link as L
from pbkit.host.link import BoardLink

ROOT = Path(__file__).resolve().parents[1]
FUZZ_MK = ROOT / "firmware" / "host" / "fuzz.mk"
#: What `make test` runs: a fixed seed and a bounded number of inputs (a few seconds).
SEED, ITERATIONS = 1, 30000


def _fuzz(tmp_path: Path, src: Path | None = None) -> subprocess.CompletedProcess:
    if shutil.which("gcc") is None:
        pytest.fail("gcc not found: the fuzz harness is a host gcc build (Debian: apt-get install gcc)")
    args = ["make", "-s", "-f", str(FUZZ_MK), "run", f"OUT={tmp_path}", f"SEED={SEED}", f"ITERATIONS={ITERATIONS}"]
    if src is not None:
        args.append(f"SRC={src}")
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_sanitizer_fuzz_harness_passes(tmp_path):
    run = _fuzz(tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"pb_fuzz: seed {SEED}: {ITERATIONS} inputs" in run.stdout and "no failure" in run.stdout


#: Off-by-one errors planted in a copy of firmware/src: (file, correct code, planted code, where ASan sees it).
PLANTS = {
    "frame-rx-push": ("pb_frame.c", "if (rx->len < rx->cap) {", "if (rx->len <= rx->cap) {", "pb_frame_rx_push"),
    "cobs-decode": ("pb_cobs.c", "            if (o >= out_cap) {\n                return PB_COBS_ERR_OVERFLOW;\n"
                    "            }\n            out[o++] = in[i++];", None, "pb_cobs_decode"),
}


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_sanitizer_fuzz_harness_finds_a_planted_off_by_one(plant, tmp_path):
    name, good, bad, function = PLANTS[plant]
    bad = bad or good.replace("o >= out_cap", "o > out_cap")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "firmware" / "src", src)
    text = (src / name).read_text()
    assert text.count(good) == 1, f"{name} changed: update the plant"
    (src / name).write_text(text.replace(good, bad))
    run = _fuzz(tmp_path / "build", src)
    assert run.returncode != 0
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in run.stderr
    assert f"in {function} {src / name}" in run.stderr


# ---- the board itself, in QEMU ------------------------------------------------------------------

IMAGE_BYTES = STUB_SHAPE[0] * STUB_SHAPE[1] * STUB_SHAPE[2]
#: Mutated frames per board: the emulated UARTs move about 10 KB/s (5 ms a short frame and its reply),
#: so the default board gets a few thousand and the others, whose UART drivers differ, a few hundred.
QEMU_FRAMES = {EMULATED_BOARD: 2000}
OTHER_BOARD_FRAMES = 300


def _request(rng: random.Random) -> bytes:
    """A request to mutate: mostly short ones (the emulated UART moves some 10 KB/s), now and then a
    whole image (INFER, PROFILE, one byte off)."""
    kind = rng.randrange(6)
    seq = rng.randrange(0x8000)  # sync HELLOs use 0x8000 and up
    if kind == 0:
        return L.encode_frame(L.MSG_HELLO, seq)
    if kind in (1, 2):
        msg = L.MSG_INFER if kind == 1 else L.MSG_PROFILE
        whole = rng.random() < 0.015
        length = rng.choice([IMAGE_BYTES, IMAGE_BYTES - 1, IMAGE_BYTES + 1]) if whole else rng.randrange(48)
        return L.encode_frame(msg, seq, bytes(rng.randrange(256) for _ in range(length)))
    if kind == 3:
        return L.encode_frame(rng.randrange(256), seq, bytes(rng.randrange(8)))
    return L.encode_frame(L.MSG_HELLO, seq, bytes(rng.randrange(1, 4)))


def _mutate(frame: bytes, rng: random.Random) -> bytes:
    out = bytearray(frame)
    for _ in range(rng.randrange(1, 4)):
        at = rng.randrange(len(out) + 1)
        op = rng.randrange(7)
        if op == 0 and out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif op == 1:
            out.insert(at, rng.choice([0, rng.randrange(256)]))
        elif op == 2 and at < len(out):
            del out[at : at + rng.randrange(1, 8)]
        elif op == 3:
            del out[at:]
        elif op == 4 and at < len(out):
            out[at:at] = out[at : at + rng.randrange(1, 32)]
        elif op == 5:
            out += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        elif op == 6 and len(out) > 5:
            out[rng.randrange(1, 5)] ^= rng.randrange(1, 256)
    return bytes(out)


def test_board_in_qemu_survives_thousands_of_mutated_frames(link: BoardLink, emulated_board: str) -> None:
    rng = random.Random(2024)
    frames = QEMU_FRAMES.get(emulated_board, OTHER_BOARD_FRAMES)
    replies = sync = 0
    for batch in range(frames // 50):
        link.send_raw(b"\x00" + b"".join(_mutate(_request(rng), rng) for _ in range(50)) + b"\x00")
        sync = 0x8000 + batch
        link.send_raw(L.encode_frame(L.MSG_HELLO, sync))
        while True:  # every reply up to our HELLO's must be a well-formed frame (the line itself is clean)
            frame = link.read_frame(timeout=60, skip_garbage=False)
            assert frame.type in (L.MSG_ERROR, L.MSG_HELLO | L.MSG_REPLY, L.MSG_INFER | L.MSG_REPLY,
                                  L.MSG_PROFILE | L.MSG_REPLY), frame
            if frame.type == L.MSG_ERROR:
                L.parse_error(frame)
            if frame.type == L.MSG_HELLO | L.MSG_REPLY and frame.seq == sync:
                break
            replies += 1
    assert replies > frames // 2  # most mutated frames got an answer (some merged, some were empty)
    info = link.hello()
    assert info.input_shape == STUB_SHAPE
    image = bytes(rng.randrange(256) for _ in range(IMAGE_BYTES))
    result = link.infer(image)
    assert (result.class_index, result.logits) == stub_rule(image)
