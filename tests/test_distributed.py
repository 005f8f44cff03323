"""Data-parallel training (what `torchrun --nproc_per_node=N -m pbkit train` runs): two CPU processes
with gloo stay in sync and train the same weights."""

import json
import os
import socket

import torch.multiprocessing as mp

from pbkit.trainer.model import ModelConfig
from pbkit.trainer.train import TrainOptions, train
from tests.cifar_fixture import write_tiny_cifar


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, data: str, out: str, results: str) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    import torch.distributed as dist

    row = train(ModelConfig(width=0.125), TrainOptions(epochs=2, batch_size=20, threads=1, device="cpu"),
                data, out, progress=False)
    with open(f"{results}/rank{rank}.json", "w") as f:
        json.dump(row, f)
    dist.destroy_process_group()


def test_two_gloo_processes_stay_in_sync(tmp_path):
    data = str(write_tiny_cifar(tmp_path / "cifar"))
    mp.spawn(_worker, args=(2, _free_port(), data, str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    assert rank0["world_size"] == 2 and rank0["epoch"] == 2
    assert rank0["params_sha256"] == rank1["params_sha256"]  # gradients all-reduced, BN buffers broadcast
    assert (tmp_path / "run" / "checkpoint.safetensors").exists()
    assert rank0["test_top1_qat"] is not None and rank1["test_top1_qat"] is None
