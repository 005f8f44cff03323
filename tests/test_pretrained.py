"""The shipped pretrained models: each loads without code execution, matches its card, fits and links on
every board, and its recorded accuracy on the shipped sample is what eval measures now."""

import json

import pytest

from pbkit.boards import BOARDS, get_board
from pbkit.codegen.export import export_files, write_files
from pbkit.codegen.kernel import Kernel
from pbkit.codegen.plan import ModelTooLargeError
from pbkit.host.build import build_firmware
from pbkit.trainer.checkpoint import load_checkpoint
from pbkit.trainer.data import load_sample
from pbkit.trainer.evaluate import evaluate
from pbkit.trainer.fold import fold_model
from pbkit.trainer.model import ModelConfig
from pbkit.zoo import CARD_BOARD, shipped_models

MODELS = shipped_models()


@pytest.fixture(scope="module", params=MODELS, ids=[m.name for m in MODELS])
def shipped(request):
    model, _ = load_checkpoint(request.param.checkpoint)
    return model, json.loads(request.param.checkpoint.with_suffix(".json").read_text())


def test_model_card_matches_the_checkpoint(shipped):
    model, card = shipped
    assert card["model_sha256"] == fold_model(model).sha256()
    # Cards written before a config field existed omit it; the field's default is what they mean.
    assert ModelConfig(**card["config"]) == model.config


def test_recorded_sample_accuracy_is_reproduced(shipped):
    model, card = shipped
    result = evaluate(model, load_sample().head(200))
    assert result["top1"] == card["sample_first200_top1"]


def test_every_card_records_its_cost_on_the_board(shipped):
    _, card = shipped
    board = card["boards"][CARD_BOARD]
    assert board["kernel"] == "fast" and board["instructions_per_image"] > 0
    assert board["firmware_flash_bytes"] > 0 and board["firmware_ram_bytes"] > 0


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_shipped_model_links_on_every_board_it_fits(shipped, board, tmp_path):
    model, _ = shipped
    try:
        files = export_files(fold_model(model), get_board(board), Kernel.FAST, source="shipped")
    except ModelTooLargeError:
        pytest.fail(f"the shipped model should fit {board}")
    write_files(files, tmp_path / "model")
    built = build_firmware(tmp_path / "model", board, tmp_path / "build")
    assert built.flash_bytes < built.flash_total and built.ram_bytes < built.ram_total
