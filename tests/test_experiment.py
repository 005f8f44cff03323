import csv
import json

import pytest

from pbkit.trainer.experiment import ExperimentError, deck_rows, run_deck_tables
from pbkit.trainer.train import TrainOptions
from tests.cifar_fixture import write_tiny_cifar

ONLY = ["reactnet18-baseline", "reactnet18-ptq-popcount", "birealnet18-popbin-c_times_a"]


def _opts(**kw) -> TrainOptions:
    return TrainOptions(**{"epochs": 1, "batch_size": 50, "threads": 1, **kw})


def test_deck_rows_cover_the_three_tables_for_both_models():
    rows = deck_rows()
    assert len(rows) == 16 and len({r.key for r in rows}) == 16
    assert {r.mode for r in rows} == {"baseline", "ptq-popcount", "simple-qat-popcount", "popbin"}
    assert {r.division for r in rows if r.mode == "popbin"} == {"c_plus_a", "n_plus_a", "c_times_a", "n_times_a",
                                                                "minmax"}
    keys = [r.key for r in rows]
    for model in ("reactnet18", "birealnet18"):  # a PTQ row converts its baseline, so it runs after it
        assert keys.index(f"{model}-baseline") < keys.index(f"{model}-ptq-popcount")
    assert next(r for r in rows if r.key == "reactnet18-popbin-c_times_a").deck_top1 == 92.51


def test_rows_run_resume_and_report(tmp_path):
    data = str(write_tiny_cifar(tmp_path / "cifar"))
    out = tmp_path / "exp"
    results = run_deck_tables(0.125, _opts(), data, out, limit_test=15, progress=False, only=ONLY)
    assert [r["key"] for r in results] == ["birealnet18-popbin-c_times_a", "reactnet18-baseline",
                                           "reactnet18-ptq-popcount"]
    assert all(0 <= r["top1"] <= 100 and r["test_images"] == 15 for r in results)
    md = (out / "results.md").read_text()
    assert "| ReActNet-18 PTQ-popcount |" in md and "93.38" in md and "not run" in md
    with (out / "results.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 3
    assert (out / "results.png").stat().st_size > 1000
    # A second run skips finished rows: their results stay byte for byte.
    before = (out / "rows" / "reactnet18-baseline" / "result.json").read_bytes()
    again = run_deck_tables(0.125, _opts(), data, out, limit_test=15, progress=False, only=ONLY)
    assert (out / "rows" / "reactnet18-baseline" / "result.json").read_bytes() == before
    assert json.loads(before)["top1"] == again[1]["top1"]


def test_other_settings_are_refused_and_ptq_needs_its_baseline(tmp_path):
    data = str(write_tiny_cifar(tmp_path / "cifar"))
    out = tmp_path / "exp"
    with pytest.raises(ExperimentError, match="baseline, which has not run yet"):
        run_deck_tables(0.125, _opts(), data, out, limit_test=20, progress=False, only=["reactnet18-ptq-popcount"])
    with pytest.raises(ExperimentError, match="other settings \\(epochs\\)"):
        run_deck_tables(0.125, _opts(epochs=3), data, out, limit_test=20, progress=False)
