"""pbkit.zoo: the demo's model is the most accurate shipped one within the instruction budget, and a
--checkpoint may name any shipped model."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pbkit.zoo import (
    CARD_BOARD,
    DEMO_BUDGET_INSTRUCTIONS,
    UnknownModelError,
    default_model,
    resolve_checkpoint,
    shipped_models,
)


def _card(folder, name, top1, instructions):
    card = {"name": name, "test_top1": top1}
    if instructions is not None:
        card["boards"] = {CARD_BOARD: {"kernel": "fast", "instructions_per_image": instructions}}
    (folder / f"{name}.json").write_text(json.dumps(card))
    (folder / f"{name}.safetensors").write_bytes(b"")


def test_the_default_is_the_most_accurate_model_within_the_budget(tmp_path):
    _card(tmp_path, "cheap", 0.70, 10_000_000)
    _card(tmp_path, "best-but-costly", 0.90, DEMO_BUDGET_INSTRUCTIONS + 1)
    _card(tmp_path, "good", 0.80, DEMO_BUDGET_INSTRUCTIONS)
    _card(tmp_path, "unmeasured", 0.95, None)
    (tmp_path / "orphan.json").write_text(json.dumps({"name": "orphan", "test_top1": 0.99}))  # no checkpoint
    assert [m.name for m in shipped_models(tmp_path)] == ["unmeasured", "best-but-costly", "good", "cheap"]
    assert default_model(tmp_path).name == "good"
    assert resolve_checkpoint(None, tmp_path) == tmp_path / "good.safetensors"


def test_a_name_or_a_path_resolves_and_anything_else_is_refused(tmp_path):
    _card(tmp_path, "m", 0.7, 1)
    assert resolve_checkpoint("m", tmp_path) == tmp_path / "m.safetensors"
    assert str(resolve_checkpoint("runs/x/checkpoint.safetensors", tmp_path)) == "runs/x/checkpoint.safetensors"
    with pytest.raises(UnknownModelError, match="neither a checkpoint file nor a shipped model.*shipped: m"):
        resolve_checkpoint("nosuch", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnknownModelError, match="no shipped model"):
        default_model(tmp_path / "empty")


def test_the_shipped_default_fits_the_budget():
    model = default_model()
    assert model.instructions is not None and model.instructions <= DEMO_BUDGET_INSTRUCTIONS
    better_but_costly = [m for m in shipped_models() if m.top1 > model.top1]
    assert all(m.instructions is None or m.instructions > DEMO_BUDGET_INSTRUCTIONS for m in better_but_costly)


def test_pbkit_models_lists_the_shipped_models_and_marks_the_default():
    pbkit = shutil.which("pbkit", path=str(Path(sys.executable).parent))
    out = subprocess.run([pbkit, "models", "--json"], capture_output=True, text=True, check=True).stdout
    listed = json.loads(out)
    assert [r["name"] for r in listed["models"] if r["default"]] == [default_model().name]
    assert {r["name"] for r in listed["models"]} == {m.name for m in shipped_models()}
    refused = subprocess.run([pbkit, "eval", "no-such-model"], capture_output=True, text=True)
    assert refused.returncode == 2 and "neither a checkpoint file nor a shipped model" in refused.stderr


def test_kernel_costs_list_fast_first_and_leave_out_a_kernel_the_board_cannot_hold(tmp_path):
    _card(tmp_path, "m", 0.7, 9_000_000)
    card = json.loads((tmp_path / "m.json").read_text())
    card["boards"][CARD_BOARD]["other_kernels"] = {
        "tables": {"kernel": "tables", "instructions_per_image": 7_000_000},
        "slices": {"kernel": "slices", "fits": False, "reason": "model does not fit"}}
    (tmp_path / "m.json").write_text(json.dumps(card))
    (model,) = shipped_models(tmp_path)
    costs = model.kernel_costs()
    assert list(costs) == ["fast", "tables"]
    assert costs["fast"]["instructions_per_image"] == 9_000_000 and "other_kernels" not in costs["fast"]
    assert model.instructions == 9_000_000  # the demo's choice stays on the fast kernel
