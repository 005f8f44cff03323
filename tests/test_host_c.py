"""Exported C compiled for the host with gcc == the integer reference: identical logits."""

import numpy as np
import pytest

from pbkit.boards import get_board
from pbkit.codegen import reference
from pbkit.codegen.export import export_files, write_files
from pbkit.codegen.host_c import build_host, run_host
from pbkit.trainer.fold import fold_model
from tests.support import random_model, tiny_images


@pytest.mark.parametrize("channels,kernel", [(8, "fast"), (24, "reference"), (40, "fast")])
def test_host_c_logits_identical_to_reference(tmp_path, channels, kernel):
    ir = fold_model(random_model(channels, seed=channels))
    images = tiny_images(8).numpy()
    write_files(export_files(ir, get_board("netduinoplus2"), kernel, source="test"), tmp_path)
    result = run_host(build_host(tmp_path), images, ir.num_classes)
    expected = reference.run(ir, images)
    assert np.array_equal(result.logits, expected)
    assert np.array_equal(result.classes, expected.argmax(1))


def test_argmax_ties_go_to_the_lowest_index(tmp_path):
    ir = fold_model(random_model(8, seed=5))
    ir.head.weight[:] = 0
    ir.head.bias[:] = [1, 3, 3, 0, 3, 0, 0, 0, 0, 0]
    write_files(export_files(ir, get_board("netduinoplus2"), "fast", source="test"), tmp_path)
    result = run_host(build_host(tmp_path), tiny_images(2).numpy(), ir.num_classes)
    assert result.classes.tolist() == [1, 1]
