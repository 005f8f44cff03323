"""scripts/campaign.sh: start, stop with SIGTERM mid-run, start again; the end equals one straight run."""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pbkit.trainer.model import ModelConfig
from pbkit.trainer.train import TrainOptions, train
from tests.cifar_fixture import write_tiny_cifar

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "campaign.sh"
OPTIONS = ["--width", "0.125", "--epochs", "5", "--batch-size", "25", "--threads", "1", "--json"]


def _campaign(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300)


def _wait_for_exit(pidfile: Path, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while pidfile.exists() and time.time() < deadline:
        try:
            os.kill(int(pidfile.read_text()), 0)
        except (ProcessLookupError, ValueError):
            return
        time.sleep(0.1)


def test_a_campaign_stopped_and_started_again_ends_where_a_straight_run_does(tmp_path):
    data = write_tiny_cifar(tmp_path / "cifar")
    straight = train(ModelConfig(width=0.125), TrainOptions(epochs=5, batch_size=25, threads=1), str(data),
                     tmp_path / "straight", progress=False)
    env = {**os.environ, "PBKIT_CIFAR": str(data), "PBKIT_CAMPAIGNS": str(tmp_path / "campaigns"),
           "PBKIT": str(Path(sys.executable).with_name("pbkit"))}
    run = tmp_path / "campaigns" / "tiny"
    started = _campaign(env, "start", "tiny", *OPTIONS)
    assert started.returncode == 0, started.stderr
    assert _campaign(env, "start", "tiny").returncode == 1  # already running
    deadline = time.time() + 120
    while not (run / "train_state.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert _campaign(env, "stop", "tiny").returncode == 0
    assert (run / "command.txt").read_text().split() == OPTIONS
    refused = _campaign(env, "start", "tiny", "--epochs", "9")
    assert refused.returncode == 1 and "command.txt already fixes the options" in refused.stdout
    assert _campaign(env, "start", "tiny").returncode == 0
    _wait_for_exit(run / ".pid")
    final = json.loads((run / "train.log").read_text().strip().splitlines()[-1])
    assert final["params_sha256"] == straight["params_sha256"]
    with (run / "metrics.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2", "3", "4", "5"]
    assert "campaign tiny: stopped" in _campaign(env, "status", "tiny").stdout
