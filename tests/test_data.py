import pickle

import numpy as np
import pytest
import torch

from pbkit.paths import SAMPLE_DATA
from pbkit.trainer import data
from tests.cifar_fixture import write_tiny_cifar


def test_shipped_sample_is_the_first_1000_official_test_images():
    sample = data.load_sample()
    assert sample.images.shape == (1000, 3, 32, 32) and sample.images.dtype == np.uint8
    assert sample.labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]  # the official test_batch order
    assert SAMPLE_DATA.stat().st_size < 5 * 1024 * 1024


def test_reads_the_official_pickle_layout(tmp_path):
    root = write_tiny_cifar(tmp_path / "cifar")
    train, test = data.load_split(root, "train"), data.load_split(root, "test")
    assert len(train) == 100 and len(test) == 20
    assert np.array_equal(test.images, data.load_sample().images[100:120])


def test_missing_batch_names_the_file(tmp_path):
    root = write_tiny_cifar(tmp_path / "cifar")
    (root / "data_batch_3").unlink()
    with pytest.raises(data.DatasetError, match="data_batch_3: missing"):
        data.load_split(root, "train")


def test_truncated_batch_is_a_clear_error(tmp_path):
    root = write_tiny_cifar(tmp_path / "cifar")
    path = root / "test_batch"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(data.DatasetError, match="test_batch: not a readable CIFAR-10 batch"):
        data.load_split(root, "test")


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_with_foreign_globals_is_refused_without_running_it(tmp_path, capsys):
    root = write_tiny_cifar(tmp_path / "cifar")
    (root / "test_batch").write_bytes(pickle.dumps({b"data": _Exploit(), b"labels": []}))
    with pytest.raises(data.DatasetError, match="builtins.print is not allowed"):
        data.load_split(root, "test")
    assert "pwned" not in capsys.readouterr().out


def test_wrong_shapes_are_refused(tmp_path):
    root = write_tiny_cifar(tmp_path / "cifar")
    (root / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(data.DatasetError, match="N x 3072"):
        data.load_split(root, "test")


def test_missing_folder(tmp_path):
    with pytest.raises(data.DatasetError, match="no such dataset folder"):
        data.load_split(tmp_path / "nope", "test")


def test_augment_keeps_shape_dtype_and_content():
    images = torch.from_numpy(data.load_sample().images[:16].copy())
    out = data.augment(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    again = data.augment(images, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # deterministic for a seed
    # A crop of a flip keeps most pixel values: every output pixel comes from the image or the zero pad.
    assert not torch.equal(out, images)
