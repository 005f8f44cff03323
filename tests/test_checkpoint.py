import pytest
import torch

from pbkit.trainer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tests.support import random_model


def test_round_trip_keeps_every_tensor_and_the_config(tmp_path):
    model = random_model(8, seed=4)
    path = tmp_path / "m.safetensors"
    save_checkpoint(model, path, extra={"epoch": 3})
    loaded, extra = load_checkpoint(path)
    assert extra == {"epoch": 3} and loaded.config == model.config and not loaded.training
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(random_model(8), path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="m.safetensors"):
        load_checkpoint(path)


def test_foreign_file_and_missing_file(tmp_path):
    bogus = tmp_path / "x.safetensors"
    bogus.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(bogus)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_tensors_of_another_width_are_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    save_checkpoint(random_model(8), path)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    save_file({k: v for k, v in random_model(16).state_dict().items()}, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="do not match reactnet18 width 0.125"):
        load_checkpoint(path)


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(random_model(8), path)
    save_checkpoint(random_model(8, seed=1), path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
