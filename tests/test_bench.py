"""pbkit bench against a generated model running in QEMU, over a real pyserial socket:// link."""

import json
import os
import signal
import stat
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from fw_support import EMULATED_BOARD, EMULATED_BOARDS

from pbkit.cli import EXIT_ERROR, EXIT_MISMATCH, EXIT_OK, main
from pbkit.expected import expected_from_checkpoint
from pbkit.host.bench import ModelMismatchError, ReportError, images_path, move_aside, run_bench
from pbkit.host.emulator import Emulator
from pbkit.host.link import MSG_HELLO, MSG_INFER, MSG_REPLY, BoardLink, Frame
from pbkit.trainer.checkpoint import save_checkpoint
from pbkit.trainer.data import load_sample
from tests.fault_proxy import FaultProxy
from tests.support import random_model


def _bench(urls, checkpoint, split, *args, **kwargs):
    """run_bench held to PyTorch eval of `checkpoint`, as `pbkit bench` does."""
    return run_bench(urls, expected_from_checkpoint(checkpoint, split.images), split, *args, **kwargs)


def test_bench_agrees_with_pytorch_on_every_image(real_model_firmware, real_model_emulator, tmp_path):
    checkpoint, _ = real_model_firmware
    report = tmp_path / "report.json"
    umask = os.umask(0o022)
    os.umask(umask)  # reports get the permissions any file would (0644 under umask 022), not mkstemp's 0600
    summary = _bench([real_model_emulator.url], checkpoint, load_sample().head(12), report,
                     timeout=REPLY_TIMEOUT, progress=False)
    assert summary["images"] == 12 and summary["complete"]
    assert summary["agreement"] == 1.0 and summary["logits_identical"] == 1.0
    assert summary["counter"] == "instructions" and summary["board"] == "netduinoplus2"
    assert summary["per_image_median"] > 1e5
    assert json.loads(report.read_text()) == summary
    assert stat.S_IMODE(report.stat().st_mode) == stat.S_IMODE(images_path(report).stat().st_mode) == 0o666 & ~umask
    header, *rows = [json.loads(line) for line in report.with_suffix(".images.jsonl").read_text().splitlines()]
    assert header["format"] == "pbkit-bench-1" and header["model_sha256"] == summary["model_sha256"]
    assert header["images_requested"] == 12
    assert sorted(r["index"] for r in rows) == list(range(12))


#: Seconds to wait for one reply: the reference kernel on an emulated Cortex-M4 beside training runs takes
#: more than the bench's default 30 s an image.
REPLY_TIMEOUT = 300.0
#: (model mode, popcount kernel) run on every emulated board: PopBin and the baseline (whose requant
#: blocks use an int32 multiply + flooring shift), each with both kernels, and PopBin with the popcount tables
#: (its 8- and 16-channel layers take them: 4 words of counts in C, then one and two passes in assembly), and
#: with the slice tables too (its 64-channel layers: two words, two slices, the Harley-Seal tree in assembly).
PARITY_MODELS = [("popbin", "reference"), ("popbin", "fast"), ("popbin", "tables"), ("popbin", "slices"),
                 ("baseline", "reference"), ("baseline", "fast")]


@pytest.mark.parametrize("board", EMULATED_BOARDS)
@pytest.mark.parametrize(("mode", "kernel"), PARITY_MODELS, ids=[f"{m}-{k}" for m, k in PARITY_MODELS])
def test_logits_match_pytorch_on_every_emulated_board(board, mode, kernel, model_firmware):
    """The same export, built for each emulated core (Cortex-M4 twice, Cortex-M7): logits equal PyTorch eval's."""
    checkpoint, built = model_firmware(mode, kernel, board)
    with Emulator(built.elf, board) as emu:
        summary = _bench([emu.url], checkpoint, load_sample().head(3), timeout=REPLY_TIMEOUT, progress=False)
    assert summary["images"] == 3 and summary["complete"] and summary["board"] == board
    assert summary["agreement"] == 1.0 and summary["logits_identical"] == 1.0
    assert summary["counter"] == "instructions" and summary["per_image_median"] > 1e5


#: Ternary PopBin (three branch levels), and the multiply-free model (bit-plane stem, shift head, ternary
#: blocks): the assembly build on both emulated cores, the reference on one.
TERNARY_RUNS = [(mode, board, kernel) for mode in ("ternary", "multfree") for board, kernel in
                (("netduinoplus2", "fast"), ("mps2-an500", "fast"), ("netduinoplus2", "reference"))]
TERNARY_RUNS += [("ternary", "netduinoplus2", "tables"), ("ternary", "netduinoplus2", "slices")]


@pytest.mark.parametrize(("mode", "board", "kernel"), TERNARY_RUNS, ids=["-".join(run) for run in TERNARY_RUNS])
def test_ternary_logits_match_pytorch_on_emulated_boards(mode, board, kernel, model_firmware):
    checkpoint, built = model_firmware(mode, kernel, board)
    with Emulator(built.elf, board) as emu:
        summary = _bench([emu.url], checkpoint, load_sample().head(3), timeout=REPLY_TIMEOUT, progress=False)
    assert summary["images"] == 3 and summary["complete"] and summary["board"] == board
    assert summary["agreement"] == 1.0 and summary["logits_identical"] == 1.0


def test_two_boards_share_the_images(real_model_firmware, real_model_emulator):
    checkpoint, built = real_model_firmware
    with Emulator(built.elf, "netduinoplus2") as second:
        summary = _bench([real_model_emulator.url, second.url], checkpoint, load_sample().head(10),
                         timeout=REPLY_TIMEOUT, progress=False)
    assert summary["images"] == 10 and summary["boards"] == 2 and summary["agreement"] == 1.0


def test_bench_refuses_a_board_running_another_model(real_model_firmware, real_model_emulator, tmp_path):
    other = tmp_path / "other.safetensors"
    save_checkpoint(random_model(8, seed=12), other)
    with pytest.raises(ModelMismatchError, match="runs model"):
        _bench([real_model_emulator.url], other, load_sample().head(2), progress=False)
    code = main(["bench", "--port", real_model_emulator.url, "--checkpoint", str(other), "--limit", "2"])
    assert code == EXIT_MISMATCH


def test_bench_cli_json(real_model_firmware, real_model_emulator, capsys):
    checkpoint, _ = real_model_firmware
    code = main(["bench", "--port", real_model_emulator.url, "--checkpoint", str(checkpoint), "--limit", "3",
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK
    for key in ("images", "top1", "agreement", "counter", "per_image_median", "board", "model_sha256"):
        assert key in out
    labels = load_sample().labels[:3]
    assert 0.0 <= out["top1"] <= 1.0 and out["images"] == len(labels)
    assert np.isclose(out["agreement"], 1.0)


@pytest.mark.parametrize(("board", "channels"), [("mps2-an386", 31), ("mps2-an500", 33)])
def test_fast_kernel_with_odd_channel_counts_matches_pytorch(board, channels, tmp_path):
    """The fast kernel's assembly on Cortex-M4 and M7 with odd channel counts: C0 = 31 leaves the last
    channel of every pair loop to C and runs 16-channel windows with a channel count that is not a
    multiple of 4; C0 = 33 runs two-word windows and odd RSign pairs."""
    from pbkit.boards import get_board
    from pbkit.codegen.export import export_files, write_files
    from pbkit.codegen.kernel import Kernel
    from pbkit.host.build import build_firmware
    from pbkit.trainer.fold import fold_model

    model = random_model(channels, seed=channels)
    checkpoint = tmp_path / "model.safetensors"
    save_checkpoint(model, checkpoint)
    write_files(export_files(fold_model(model), get_board(board), Kernel.FAST, source="test"), tmp_path / "export")
    built = build_firmware(tmp_path / "export", board, tmp_path / "build")
    with Emulator(built.elf, board) as emu:
        summary = _bench([emu.url], checkpoint, load_sample().head(2), progress=False, timeout=600)
    assert summary["images"] == 2 and summary["logits_identical"] == 1.0


# ---- nothing lost: faults injected on purpose, through real QEMU boards ----------------------

FAULT_IMAGES = 16


def _timeout_for(url: str) -> float:
    """A reply timeout that tolerates the machine's load: 20 times what one image takes on the board now,
    and at least 5 s. A reset or a lost delimiter costs one such timeout."""
    with BoardLink(url, timeout=600) as lk:
        lk.wait_ready(timeout=600)
        start = time.monotonic()
        lk.infer(load_sample().images[0].tobytes())
        took = time.monotonic() - start
    return max(5.0, 20 * took)


def _rows(report) -> list[dict]:
    header, *rows = [json.loads(line) for line in images_path(report).read_text().splitlines()]
    assert header["format"] == "pbkit-bench-1"
    return rows


def _measured_exactly_once(report, summary: dict | None = None, n: int = FAULT_IMAGES) -> list[dict]:
    """Every image once in the per-image rows, each the same as PyTorch eval; the summary agrees."""
    rows = _rows(report)
    assert sorted(r["index"] for r in rows) == list(range(n))
    assert all(r["agrees"] and r["logits_identical"] for r in rows)
    if summary is not None:
        assert summary["images"] == n and summary["complete"] and summary["agreement"] == 1.0
        assert json.loads(report.read_text()) == summary
    return rows


def _when_rows(report, count: int, action, port: str | None = None, timeout: float = 1800.0) -> threading.Thread:
    """Runs `action` (in a thread) once the report holds `count` rows (measured at `port`, if given)."""

    def wait_then_act() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                lines = images_path(report).read_text().splitlines()[1:]
            except FileNotFoundError:
                lines = []
            rows = [json.loads(line) for line in lines if line.endswith("}")]
            if sum(port is None or r["port"] == port for r in rows) >= count:
                action()
                return
            time.sleep(0.05)

    thread = threading.Thread(target=wait_then_act, daemon=True)
    thread.start()
    return thread


def test_a_board_killed_mid_run_hands_its_images_to_the_other(real_model_firmware, real_model_emulator, tmp_path):
    checkpoint, built = real_model_firmware
    report = tmp_path / "report.json"
    with Emulator(built.elf, EMULATED_BOARD) as doomed:
        timeout = _timeout_for(doomed.url)
        killer = _when_rows(report, 2, doomed.proc.kill, port=doomed.url)
        summary = _bench([real_model_emulator.url, doomed.url], checkpoint, load_sample().head(FAULT_IMAGES),
                            report, timeout=timeout, progress=False)
        killer.join()
    rows = _measured_exactly_once(report, summary)
    ports = summary["ports"]
    assert ports[doomed.url]["status"] == "dropped" and "did not come back" in ports[doomed.url]["dropped"]
    assert ports[doomed.url]["images"] >= 2
    assert ports[real_model_emulator.url]["status"] == "ok"
    assert ports[real_model_emulator.url]["images"] + ports[doomed.url]["images"] == FAULT_IMAGES
    assert {r["port"] for r in rows} == {doomed.url, real_model_emulator.url}


def test_a_board_reset_mid_run_is_reconnected(real_model_firmware, tmp_path):
    checkpoint, built = real_model_firmware
    report = tmp_path / "report.json"
    with Emulator(built.elf, EMULATED_BOARD, monitor=True) as emu:
        timeout = _timeout_for(emu.url)
        resetter = _when_rows(report, 4, lambda: emu.monitor_command("system_reset"))
        summary = _bench([emu.url], checkpoint, load_sample().head(FAULT_IMAGES), report, timeout=timeout,
                            progress=False)
        resetter.join()
    _measured_exactly_once(report, summary)
    port = summary["ports"][emu.url]
    assert port["status"] == "ok" and port["reconnects"] >= 1
    assert "reconnected (same HELLO)" in port["events"]


@pytest.mark.parametrize("faults", [{"flip": 0.05, "noise": 0.05}, {"drop": 0.08}], ids=["noise", "dropped-bytes"])
def test_line_noise_and_dropped_bytes_lose_nothing(real_model_firmware, real_model_emulator, tmp_path, faults):
    checkpoint, _ = real_model_firmware
    report = tmp_path / "report.json"
    port = int(real_model_emulator.url.rsplit(":", 1)[1])
    timeout = _timeout_for(real_model_emulator.url)
    with FaultProxy(port, seed=3, **faults) as proxy:
        summary = _bench([proxy.url], checkpoint, load_sample().head(FAULT_IMAGES), report, timeout=timeout,
                            progress=False)
    _measured_exactly_once(report, summary)
    assert sum(proxy.faults.values()) >= 3  # the line really was bad
    assert summary["ports"][proxy.url]["reconnects"] >= 1


def test_sigkill_of_the_bench_then_resume(real_model_firmware, real_model_emulator, tmp_path):
    checkpoint, _ = real_model_firmware
    report = tmp_path / "report.json"
    argv = ["bench", "--port", real_model_emulator.url, "--checkpoint", str(checkpoint), "--limit",
            str(FAULT_IMAGES), "--report", str(report), "--timeout", "600"]
    bench = subprocess.Popen([sys.executable, "-m", "pbkit", *argv], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        _when_rows(report, 5, lambda: bench.send_signal(signal.SIGKILL)).join()
    finally:
        bench.kill()
        assert bench.wait(timeout=30) == -signal.SIGKILL
    before = _rows(report)
    assert 5 <= len(before) < FAULT_IMAGES
    rows_file = images_path(report).read_bytes()
    # Without --resume the report is refused and kept byte for byte.
    assert main(argv) == EXIT_ERROR
    assert images_path(report).read_bytes() == rows_file
    assert main([*argv, "--resume", "--json"]) == EXIT_OK
    rows = _measured_exactly_once(report, n=FAULT_IMAGES)
    assert rows[: len(before)] == before  # what the killed run measured is kept, not measured again
    summary = json.loads(report.read_text())
    assert summary["complete"] and summary["agreement"] == 1.0 and summary["images"] == FAULT_IMAGES


def test_resume_refuses_another_model_or_other_images(real_model_firmware, real_model_emulator, tmp_path, capsys):
    checkpoint, _ = real_model_firmware
    report = tmp_path / "report.json"
    common = ["bench", "--port", real_model_emulator.url, "--report", str(report)]
    assert main([*common, "--checkpoint", str(checkpoint), "--limit", "2"]) == EXIT_OK
    capsys.readouterr()
    other = tmp_path / "other.safetensors"
    save_checkpoint(random_model(8, seed=12), other)
    assert main([*common, "--checkpoint", str(other), "--limit", "2", "--resume"]) == EXIT_ERROR
    assert "belongs to another run" in capsys.readouterr().err
    assert main([*common, "--checkpoint", str(checkpoint), "--limit", "3", "--resume"]) == EXIT_ERROR
    assert "was a run of 2 images, this one asks for 3" in capsys.readouterr().err
    assert main([*common, "--checkpoint", str(checkpoint), "--limit", "2", "--resume", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["images"] == 2  # nothing left to measure
    assert len(_rows(report)) == 2


def test_a_report_of_a_run_that_measured_nothing_may_be_replaced(tmp_path):
    from pbkit.host.bench import Expected, open_report

    expected = Expected("ab" * 32, np.zeros(2, dtype=np.int64), np.zeros((2, 10)))
    header = {"format": "pbkit-bench-1", "model_sha256": "ab" * 32, "data_sha256": "x", "images_requested": 2}
    report = tmp_path / "report.json"
    _, out = open_report(report, header, expected, resume=False)  # then the board never answered
    out.close()
    _, out = open_report(report, header, expected, resume=False)  # a rerun is not refused: nothing was measured
    out.write(json.dumps({"index": 0, "expected_class": 0}) + "\n")
    out.close()
    with pytest.raises(ReportError, match="already exists"):
        open_report(report, header, expected, resume=False)
    rows, out = open_report(report, header, expected, resume=True)
    out.close()
    assert list(rows) == [0]


def test_demo_moves_an_existing_report_aside(tmp_path):
    report = tmp_path / "report.json"
    report.write_text("old summary")
    images_path(report).write_text("old rows")
    assert move_aside(report) == [(images_path(report), tmp_path / "report.1.images.jsonl"),
                                  (report, tmp_path / "report.1.json")]
    assert (tmp_path / "report.1.json").read_text() == "old summary"
    assert (tmp_path / "report.1.images.jsonl").read_text() == "old rows"
    report.write_text("newer")
    assert move_aside(report) == [(report, tmp_path / "report.2.json")] and not report.exists()
    assert move_aside(report) == []
    images_path(report).write_text("rows of a run cut short")  # only the rows: only they are named as moved
    assert move_aside(report) == [(images_path(report), tmp_path / "report.3.images.jsonl")]


# ---- a board that breaks its contract is not believed -----------------------------------------


def _set_hello_classes(classes: int):
    def rewrite(frame: Frame) -> Frame:
        if frame.type != MSG_HELLO | MSG_REPLY:
            return frame
        payload = bytearray(frame.payload)
        struct.pack_into("<H", payload, 50, classes)
        return Frame(frame.type, frame.seq, bytes(payload))

    return rewrite


def _set_infer(offset: int, fmt: str, value: int):
    def rewrite(frame: Frame) -> Frame:
        if frame.type != MSG_INFER | MSG_REPLY:
            return frame
        payload = bytearray(frame.payload)
        struct.pack_into(fmt, payload, offset, value)
        return Frame(frame.type, frame.seq, bytes(payload))

    return rewrite


@pytest.mark.parametrize(("rewrite", "message"), [
    (_set_hello_classes(0), "its HELLO says num_classes 0"),
    (_set_infer(0, "<I", 4_000_000_000), "INFER reply with class 4000000000, HELLO said 10 classes"),
    (_set_infer(4, "<Q", 2**64 - 1), f"INFER reply with {2**64 - 1} ticks in"),
], ids=["hello-0-classes", "class-4e9", "ticks-2^64-1"])
def test_a_board_that_answers_nonsense_is_reported(real_model_firmware, real_model_emulator, rewrite, message,
                                                   capsys):
    checkpoint, _ = real_model_firmware
    port = int(real_model_emulator.url.rsplit(":", 1)[1])
    with FaultProxy(port, rewrite=rewrite) as proxy:
        code = main(["bench", "--port", proxy.url, "--checkpoint", str(checkpoint), "--limit", "2",
                     "--timeout", "600"])
    err = capsys.readouterr().err
    assert code == EXIT_MISMATCH
    assert "breaks the protocol contract" in err and message in err
    assert err.strip().splitlines()[-1].startswith("pbkit bench: error:")
