"""pbkit profile: the firmware times every layer (PROFILE), the host names and converts them.

The layers must add up to the whole image as INFER counts it (the hook's own cost is taken
off on the board), and the result must name the checkpoint's layers with their binary words."""

import json

import pytest

from pbkit.cli import EXIT_MISMATCH, EXIT_OK, EXIT_USAGE, main
from pbkit.codegen.ops import model_layers
from pbkit.expected import expected_from_ir, load_folded
from pbkit.host.profile import format_profile, profile_board
from pbkit.trainer.checkpoint import load_checkpoint, save_checkpoint
from pbkit.trainer.data import load_sample
from pbkit.trainer.fold import fold_model
from tests.support import random_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_layers_add_up(result: dict, checkpoint) -> None:
    model, _ = load_checkpoint(checkpoint)
    layers = model_layers(fold_model(model))
    assert [r["name"] for r in result["layers"]] == [layer.name for layer in layers]
    assert [r["xnor_bits"] for r in result["layers"]] == [layer.xnor_bits for layer in layers]
    assert result["total"] == pytest.approx(sum(r["count"] for r in result["layers"]))
    # Each layer's share of the image is lost only to SysTick rounding and the few instructions
    # between the last hook and pb_model_run's return: about one instruction per layer.
    assert abs(result["total"] - result["whole_image"]) <= 3 * len(layers)
    assert all(r["count"] > 0 for r in result["layers"])
    for r in result["layers"]:
        if r["kind"] == "binary":  # per 32 useful bits: 16 channels make half a word, not a whole one
            assert r["useful_words"] == r["xnor_bits"] / 32
            assert r["per_32_bits"] == pytest.approx(r["count"] / r["useful_words"])
    worst = max((r for r in result["layers"] if r["kind"] == "binary"), key=lambda r: r["per_32_bits"])
    assert result["worst_binary_layer"] == {"name": worst["name"], "per_32_bits": worst["per_32_bits"]}
    assert result["logits_identical"] == 1.0


def test_profile_builds_emulates_and_writes_json_and_png(model_exports, tmp_path, capsys):
    checkpoint, _ = model_exports("popbin", "fast")
    png = tmp_path / "layers.png"
    code = main(["profile", "--board", "mps2-an386", "--checkpoint", str(checkpoint), "--images", "2",
                 "--workdir", str(tmp_path / "work"), "--png", str(png), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK
    assert (result["board"], result["counter"], result["images"], result["kernel"]) == (
        "mps2-an386", "instructions", 2, "fast")
    _check_layers_add_up(result, checkpoint)
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert not list(tmp_path.glob(".layers.png.*"))  # the atomic write left no temporary behind


def test_profile_of_a_running_board_prints_the_table(real_model_firmware, real_model_emulator, capsys):
    checkpoint, _ = real_model_firmware
    code = main(["profile", "--port", real_model_emulator.url, "--checkpoint", str(checkpoint)])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    for name in ("stem", "stage1.unit1", "stage4.unit4", "head", "total per image", "instr/32 bits", "useful words"):
        assert name in out


def test_profile_board_matches_infer(real_model_firmware, real_model_emulator):
    checkpoint, _ = real_model_firmware
    images = load_sample().head(1).images
    ir = load_folded(checkpoint)
    result = profile_board(real_model_emulator.url, ir, expected_from_ir(ir, images), images)
    _check_layers_add_up(result, checkpoint)
    assert "stage2.unit1" in format_profile(result)


def test_profile_refuses_a_board_running_another_model(real_model_emulator, tmp_path, capsys):
    other = tmp_path / "other.safetensors"
    save_checkpoint(random_model(8, seed=12), other)
    code = main(["profile", "--port", real_model_emulator.url, "--checkpoint", str(other)])
    assert code == EXIT_MISMATCH
    assert "runs model" in capsys.readouterr().err


def test_profile_of_a_hardware_board_needs_its_port(capsys):
    assert main(["profile", "--board", "nucleo_f446re"]) == EXIT_USAGE
    assert "--port" in capsys.readouterr().err
    assert main(["profile", "--images", "0"]) == EXIT_USAGE
