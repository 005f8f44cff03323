"""pbkit bench against a generated model running in QEMU, over a real pyserial socket:// link."""

import json

import numpy as np
import pytest

from pbkit.cli import EXIT_MISMATCH, EXIT_OK, main
from pbkit.host.bench import ModelMismatchError, run_bench
from pbkit.host.emulator import Emulator
from pbkit.trainer.checkpoint import save_checkpoint
from pbkit.trainer.data import load_sample
from tests.support import random_model


def test_bench_agrees_with_pytorch_on_every_image(real_model_firmware, real_model_emulator, tmp_path):
    checkpoint, _ = real_model_firmware
    report = tmp_path / "report.json"
    summary = run_bench([real_model_emulator.url], checkpoint, load_sample().head(12), report, progress=False)
    assert summary["images"] == 12 and summary["complete"]
    assert summary["agreement"] == 1.0 and summary["logits_identical"] == 1.0
    assert summary["counter"] == "instructions" and summary["board"] == "netduinoplus2"
    assert summary["per_image_median"] > 1e5
    assert json.loads(report.read_text()) == summary
    rows = [json.loads(line) for line in report.with_suffix(".images.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(12))


def test_bench_agrees_with_pytorch_on_a_baseline_model(baseline_model_firmware):
    """Requant blocks (int32 multiply + flooring shift) on the emulated Cortex-M4: same logits as PyTorch eval."""
    checkpoint, built = baseline_model_firmware
    with Emulator(built.elf, "netduinoplus2") as board:
        summary = run_bench([board.url], checkpoint, load_sample().head(3), progress=False)
    assert summary["images"] == 3 and summary["complete"]
    assert summary["agreement"] == 1.0 and summary["logits_identical"] == 1.0


def test_two_boards_share_the_images(real_model_firmware, real_model_emulator):
    checkpoint, built = real_model_firmware
    with Emulator(built.elf, "netduinoplus2") as second:
        summary = run_bench([real_model_emulator.url, second.url], checkpoint, load_sample().head(10),
                            progress=False)
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
