"""pbkit bench against a generated model running in QEMU, over a real pyserial socket:// link."""

import json

import numpy as np
import pytest
from fw_support import EMULATED_BOARDS

from pbkit.cli import EXIT_MISMATCH, EXIT_OK, main
from pbkit.host.bench import ModelMismatchError, run_bench
from pbkit.host.emulator import Emulator
from pbkit.trainer.checkpoint import save_checkpoint
from pbkit.trainer.data import load_sample
from tests.support import random_model


def test_bench_agrees_with_pytorch_on_every_image(real_model_firmware, real_model_emulator, tmp_path):
    checkpoint, _ = real_model_firmware
    report = tmp_path / "report.json"
    summary = run_bench([real_model_emulator.url], checkpoint, load_sample().head(12), report, timeout=REPLY_TIMEOUT,
                        progress=False)
    assert summary["images"] == 12 and summary["complete"]
    assert summary["agreement"] == 1.0 and summary["logits_identical"] == 1.0
    assert summary["counter"] == "instructions" and summary["board"] == "netduinoplus2"
    assert summary["per_image_median"] > 1e5
    assert json.loads(report.read_text()) == summary
    rows = [json.loads(line) for line in report.with_suffix(".images.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(12))


#: Seconds to wait for one reply: the reference kernel on an emulated Cortex-M4 beside training runs takes
#: more than the bench's default 30 s an image.
REPLY_TIMEOUT = 300.0
#: (model mode, popcount kernel) run on every emulated board: PopBin and the baseline (whose requant
#: blocks use an int32 multiply + flooring shift), each with both kernels.
PARITY_MODELS = [("popbin", "reference"), ("popbin", "fast"), ("baseline", "reference"), ("baseline", "fast")]


@pytest.mark.parametrize("board", EMULATED_BOARDS)
@pytest.mark.parametrize(("mode", "kernel"), PARITY_MODELS, ids=[f"{m}-{k}" for m, k in PARITY_MODELS])
def test_logits_match_pytorch_on_every_emulated_board(board, mode, kernel, model_firmware):
    """The same export, built for each emulated core (Cortex-M4 twice, Cortex-M7): logits equal PyTorch eval's."""
    checkpoint, built = model_firmware(mode, kernel, board)
    with Emulator(built.elf, board) as emu:
        summary = run_bench([emu.url], checkpoint, load_sample().head(3), timeout=REPLY_TIMEOUT, progress=False)
    assert summary["images"] == 3 and summary["complete"] and summary["board"] == board
    assert summary["agreement"] == 1.0 and summary["logits_identical"] == 1.0
    assert summary["counter"] == "instructions" and summary["per_image_median"] > 1e5


#: Ternary PopBin (three branch levels): the assembly build on both emulated cores, the reference on one.
TERNARY_RUNS = [("netduinoplus2", "fast"), ("mps2-an500", "fast"), ("netduinoplus2", "reference")]


@pytest.mark.parametrize(("board", "kernel"), TERNARY_RUNS, ids=[f"{b}-{k}" for b, k in TERNARY_RUNS])
def test_ternary_logits_match_pytorch_on_emulated_boards(board, kernel, model_firmware):
    checkpoint, built = model_firmware("ternary", kernel, board)
    with Emulator(built.elf, board) as emu:
        summary = run_bench([emu.url], checkpoint, load_sample().head(3), timeout=REPLY_TIMEOUT, progress=False)
    assert summary["images"] == 3 and summary["complete"] and summary["board"] == board
    assert summary["agreement"] == 1.0 and summary["logits_identical"] == 1.0


def test_two_boards_share_the_images(real_model_firmware, real_model_emulator):
    checkpoint, built = real_model_firmware
    with Emulator(built.elf, "netduinoplus2") as second:
        summary = run_bench([real_model_emulator.url, second.url], checkpoint, load_sample().head(10),
                            timeout=REPLY_TIMEOUT, progress=False)
    assert summary["images"] == 10 and summary["boards"] == 2 and summary["agreement"] == 1.0


def test_bench_refuses_a_board_running_another_model(real_model_firmware, real_model_emulator, tmp_path):
    other = tmp_path / "other.safetensors"
    save_checkpoint(random_model(8, seed=12), other)
    with pytest.raises(ModelMismatchError, match="runs model"):
        run_bench([real_model_emulator.url], other, load_sample().head(2), progress=False)
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
    from pbkit.host.build import build_firmware
    from pbkit.trainer.fold import fold_model

    model = random_model(channels, seed=channels)
    checkpoint = tmp_path / "model.safetensors"
    save_checkpoint(model, checkpoint)
    write_files(export_files(fold_model(model), get_board(board), "fast", source="test"), tmp_path / "export")
    built = build_firmware(tmp_path / "export", board, tmp_path / "build")
    with Emulator(built.elf, board) as emu:
        summary = run_bench([emu.url], checkpoint, load_sample().head(2), progress=False, timeout=600)
    assert summary["images"] == 2 and summary["logits_identical"] == 1.0
