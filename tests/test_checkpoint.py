import pytest
import torch

from pbkit.trainer.checkpoint import (
    CHECKSUM_KEY,
    CheckpointError,
    load_checkpoint,
    load_train_state,
    save_checkpoint,
)
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
    del meta[CHECKSUM_KEY]  # as a writer that does not record one: the shapes are what is checked
    save_file({k: v for k, v in random_model(16).state_dict().items()}, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="do not match reactnet18 width 0.125"):
        load_checkpoint(path)


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(random_model(8), path)
    save_checkpoint(random_model(8, seed=1), path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def _rewrite(path, change_tensors=None, change_meta=None):
    """Rewrites a checkpoint's tensors and metadata as another writer (or damage) would."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    if change_tensors:
        change_tensors(tensors)
    if change_meta:
        change_meta(meta)
    save_file(tensors, str(path), metadata=meta)


def test_checksum_is_recorded_and_a_changed_tensor_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(random_model(8), path)
    _rewrite(path, change_tensors=lambda t: t["fc.bias"].add_(1e-3))
    with pytest.raises(CheckpointError, match="do not match the checksum in its metadata"):
        load_checkpoint(path)


def test_checkpoint_without_a_checksum_loads(tmp_path):
    path = tmp_path / "m.safetensors"
    model = random_model(8)
    save_checkpoint(model, path)
    _rewrite(path, change_meta=lambda m: m.pop(CHECKSUM_KEY))
    loaded, _ = load_checkpoint(path)
    assert torch.equal(loaded.fc.weight, model.fc.weight)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_or_infinite_weights_are_refused_at_load(tmp_path, value):
    model = random_model(8)
    with torch.no_grad():
        model.fc.weight[0, 0] = value
    path = tmp_path / "m.safetensors"
    save_checkpoint(model, path)  # the checksum is right: the values are what is wrong
    kind = "1 NaN and 0 infinite" if value != value else "0 NaN and 1 infinite"
    with pytest.raises(CheckpointError, match=f"fc.weight holds {kind} values"):
        load_checkpoint(path)


def test_training_state_torch_refuses_is_one_line_without_weights_only_advice(tmp_path):
    path = tmp_path / "train_state.pt"
    torch.save({"step": 1, "bad": ArbitraryObject()}, path)
    with pytest.raises(CheckpointError) as err:
        load_train_state(path)
    text = str(err.value)
    assert "\n" not in text and "weights_only" not in text and "ArbitraryObject" in text
    assert text.startswith(f"{path}: unreadable training state: it holds more than tensors")
    path.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="unreadable training state") as err:
        load_train_state(path)
    assert "\n" not in str(err.value)


class ArbitraryObject:
    """Something torch.load(weights_only=True) refuses to unpickle."""


def test_a_torch_pickle_is_named_as_such(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(random_model(8).state_dict(), path)
    with pytest.raises(CheckpointError, match="a torch.save \\(pickle\\) file, not a safetensors checkpoint"):
        load_checkpoint(path)
