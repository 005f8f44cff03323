import csv
import json

import pytest
import torch

from pbkit.trainer.checkpoint import load_checkpoint
from pbkit.trainer.model import ModelConfig
from pbkit.trainer.train import TrainOptions, train
from tests.cifar_fixture import write_tiny_cifar

CONFIG = ModelConfig(width=0.125)


def _opts(**kw) -> TrainOptions:
    return TrainOptions(**{"epochs": 2, "batch_size": 25, "threads": 1, **kw})


def test_training_writes_checkpoint_metrics_and_curves(tmp_path):
    data = write_tiny_cifar(tmp_path / "cifar")
    row = train(CONFIG, _opts(), str(data), tmp_path / "run", progress=False)
    assert row["epoch"] == 2
    with (tmp_path / "run" / "metrics.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]
    model, extra = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    assert extra["epoch"] == 2 and model.config == CONFIG
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tmp_path):
    data = str(write_tiny_cifar(tmp_path / "cifar"))
    train(CONFIG, _opts(), data, tmp_path / "straight", progress=False)
    # Interrupt after epoch 1 of a fresh run, then resume it.
    train(CONFIG, _opts(epochs=2, stop_after=1), data, tmp_path / "resumed", progress=False)
    train(CONFIG, _opts(epochs=2, resume=True), data, tmp_path / "resumed", progress=False)
    _same_weights(tmp_path / "straight", tmp_path / "resumed")


def test_an_existing_run_is_never_overwritten(tmp_path):
    data = str(write_tiny_cifar(tmp_path / "cifar"))
    train(CONFIG, _opts(epochs=1), data, tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "checkpoint.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        train(CONFIG, _opts(epochs=1), data, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "checkpoint.safetensors").read_bytes() == before


def test_cosine_schedule_warms_up_then_decays(tmp_path):
    data = str(write_tiny_cifar(tmp_path / "cifar"))
    train(CONFIG, _opts(epochs=3, schedule="cosine"), data, tmp_path / "run", progress=False)
    with (tmp_path / "run" / "metrics.csv").open() as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    assert lrs[0] > lrs[1] > lrs[2]  # after the first (warm-up) epoch the rate only falls


def _same_weights(a_dir, b_dir) -> None:
    a, _ = load_checkpoint(a_dir / "checkpoint.safetensors")
    b, _ = load_checkpoint(b_dir / "checkpoint.safetensors")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_a_run_stopped_mid_epoch_resumes_bit_identically(tmp_path):
    data = str(write_tiny_cifar(tmp_path / "cifar"))
    straight = train(CONFIG, _opts(epochs=2), data, tmp_path / "straight", progress=False)
    # 4 steps per epoch: stop after step 2 of epoch 1, then after step 2 of epoch 2 (6 steps in all).
    first = train(CONFIG, _opts(epochs=2, stop_after_steps=2), data, tmp_path / "resumed", progress=False)
    assert first["stopped"] == {"epoch": 0, "step": 2, "signal": None}
    second = train(CONFIG, _opts(epochs=2, stop_after_steps=6, resume=True), data, tmp_path / "resumed",
                   progress=False)
    assert second["stopped"] == {"epoch": 1, "step": 2, "signal": None}
    with (tmp_path / "resumed" / "metrics.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1"]  # only finished epochs are rows
    third = train(CONFIG, _opts(epochs=2, resume=True), data, tmp_path / "resumed", progress=False)
    assert "stopped" not in third and third["params_sha256"] == straight["params_sha256"]
    assert third["train_loss"] == straight["train_loss"]  # the epoch's running totals survive the stop
    _same_weights(tmp_path / "straight", tmp_path / "resumed")


def test_resume_may_extend_a_finished_run_and_refuses_other_changes_by_name(tmp_path):
    data = str(write_tiny_cifar(tmp_path / "cifar"))
    run = tmp_path / "run"
    train(CONFIG, _opts(epochs=2, schedule="cosine"), data, run, progress=False)
    with pytest.raises(ValueError, match="--lr 0.002, not 0.01"):
        train(CONFIG, _opts(epochs=3, schedule="cosine", lr=0.01, resume=True), data, run, progress=False)
    with pytest.raises(ValueError, match="--schedule 'cosine', not 'onecycle'"):
        train(CONFIG, _opts(epochs=3, resume=True), data, run, progress=False)
    with pytest.raises(ValueError, match="would shorten it"):
        train(CONFIG, _opts(epochs=1, schedule="cosine", resume=True), data, run, progress=False)
    with pytest.raises(ValueError, match="mode='popbin', not the requested 'baseline'"):
        train(ModelConfig(width=0.125, mode="baseline"), _opts(epochs=3, schedule="cosine", resume=True), data,
              run, progress=False)
    row = train(CONFIG, _opts(epochs=3, schedule="cosine", resume=True, threads=2), data, run, progress=False)
    assert row["epoch"] == 3 and "stopped" not in row
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert float(rows[2]["lr"]) == pytest.approx(0.0, abs=1e-12)  # the extension decays to 0 again


def test_a_fresh_run_refuses_a_folder_that_holds_a_stopped_run(tmp_path):
    data = str(write_tiny_cifar(tmp_path / "cifar"))
    train(CONFIG, _opts(epochs=2, stop_after_steps=1), data, tmp_path / "run", progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(CONFIG, _opts(epochs=2), data, tmp_path / "run", progress=False)


def test_resume_refuses_a_state_from_an_older_pbkit(tmp_path):
    from pbkit.trainer.checkpoint import CheckpointError, load_train_state, save_train_state

    data = str(write_tiny_cifar(tmp_path / "cifar"))
    run = tmp_path / "run"
    train(CONFIG, _opts(epochs=2, stop_after=1), data, run, progress=False)
    state = load_train_state(run / "train_state.pt")
    save_train_state({"optimizer": state["optimizer"], "epoch": 1}, run / "train_state.pt")
    with pytest.raises(CheckpointError, match="older pbkit"):
        train(CONFIG, _opts(epochs=2, resume=True), data, run, progress=False)


def test_sigterm_stops_pbkit_train_cleanly_and_resume_matches_a_straight_run(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    data = str(write_tiny_cifar(tmp_path / "cifar"))
    straight = train(CONFIG, _opts(epochs=6), data, tmp_path / "straight", progress=False)
    cmd = [sys.executable, "-m", "pbkit", "train", "--width", "0.125", "--epochs", "6", "--batch-size", "25",
           "--threads", "1", "--data", data, "--out", str(tmp_path / "run"), "--no-progress", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "run" / "train_state.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # the run was faster than the signal: nothing to resume, still equal
        row = json.loads(out)
    else:
        assert proc.returncode == 130, err
        assert json.loads(out)["stopped"]["signal"] == "SIGTERM"
        resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        row = json.loads(resumed.stdout)
    assert row["params_sha256"] == straight["params_sha256"]


def test_resume_equivalence_holds_for_the_baseline_and_two_step_training(tmp_path):
    data = str(write_tiny_cifar(tmp_path / "cifar"))
    config = ModelConfig(width=0.125, mode="baseline")
    opts = _opts(epochs=2, two_step=True)
    train(config, opts, data, tmp_path / "straight", progress=False)
    train(config, _opts(epochs=2, two_step=True, stop_after=1), data, tmp_path / "resumed", progress=False)
    train(config, _opts(epochs=2, two_step=True, resume=True), data, tmp_path / "resumed", progress=False)
    a, _ = load_checkpoint(tmp_path / "straight" / "checkpoint.safetensors")
    b, _ = load_checkpoint(tmp_path / "resumed" / "checkpoint.safetensors")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_distillation_from_a_teacher_and_init_from_another_mode(tmp_path):
    from pbkit.trainer.checkpoint import save_checkpoint
    from pbkit.trainer.model import build_model

    data = str(write_tiny_cifar(tmp_path / "cifar"))
    teacher = tmp_path / "teacher.safetensors"
    save_checkpoint(build_model(ModelConfig(width=0.125, mode="real")), teacher)
    row = train(CONFIG, _opts(epochs=1, teacher=str(teacher), kd_weight=0.5, init_from=str(teacher)), data,
                tmp_path / "run", progress=False)
    assert row["epoch"] == 1 and row["train_loss"] > 0
    student, _ = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    assert student.config == CONFIG


def test_distillation_loss_is_zero_when_student_matches_teacher():
    from pbkit.trainer.train import distillation_loss

    logits = torch.randn(4, 10)
    loss = distillation_loss(logits, logits, torch.zeros(4, dtype=torch.long), _opts(kd_weight=1.0))
    assert float(loss) == pytest.approx(0.0, abs=1e-6)


def test_bad_teacher_and_wrong_init_checkpoint_fail_before_anything_is_written(tmp_path):
    from pbkit.trainer.checkpoint import CheckpointError, save_checkpoint
    from pbkit.trainer.model import build_model

    data = str(write_tiny_cifar(tmp_path / "cifar"))
    broken = tmp_path / "teacher.safetensors"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="teacher: .*teacher.safetensors"):
        train(CONFIG, _opts(epochs=1, teacher=str(broken)), data, tmp_path / "a", progress=False)
    other = tmp_path / "bireal.safetensors"
    save_checkpoint(build_model(ModelConfig(model="birealnet18", width=0.25)), other)
    with pytest.raises(CheckpointError, match="birealnet18 width 0.25 checkpoint cannot start a reactnet18"):
        train(CONFIG, _opts(epochs=1, init_from=str(other)), data, tmp_path / "b", progress=False)
    assert not (tmp_path / "a" / "metrics.csv").exists() and not (tmp_path / "b" / "metrics.csv").exists()
