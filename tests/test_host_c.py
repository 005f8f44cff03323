"""Exported C compiled for the host with gcc == the integer reference == PyTorch eval: identical logits."""

import numpy as np
import pytest
import torch

from pbkit.boards import get_board
from pbkit.cli import EXIT_OK, main
from pbkit.codegen import reference
from pbkit.codegen.export import VECTORS_MAGIC, export_files, write_files
from pbkit.codegen.kernel import Kernel
from pbkit.codegen.plan import plan_memory
from pbkit.codegen.render import render
from pbkit.host.host_c import build_host, run_host
from pbkit.trainer.checkpoint import save_checkpoint
from pbkit.trainer.fold import fold_model
from pbkit.trainer.integer_graph import integer_logits
from tests.support import data_calibrated_model, random_model, tiny_images

FAST, REFERENCE = Kernel.FAST, Kernel.REFERENCE


def _host_logits(ir, kernel: Kernel, images: np.ndarray, out_dir) -> np.ndarray:
    write_files(export_files(ir, get_board("netduinoplus2"), kernel, source="test"), out_dir)
    result = run_host(build_host(out_dir), images, ir.num_classes)
    assert np.array_equal(result.classes, result.logits.argmax(1))  # ties to the lowest index, as np.argmax
    return result.logits


def _assert_c_equals_eval_and_reference(model, kernel: Kernel, tmp_path, n_images: int = 8) -> None:
    """C logits == codegen.reference == the model's own eval forward, which folds and runs integer_graph."""
    images = tiny_images(n_images)
    ir = fold_model(model)
    logits = _host_logits(ir, kernel, images.numpy(), tmp_path)
    assert np.array_equal(logits, reference.run(ir, images.numpy()))
    assert np.array_equal(logits, integer_logits(ir, images).numpy())
    # model(images) returns those integers times one constant; the same product from C's logits matches exactly.
    assert torch.equal(model(images), torch.from_numpy(logits).to(torch.float64) * ir.meta["logit_scale"])


@pytest.mark.parametrize("kernel", [Kernel.FAST, Kernel.REFERENCE])
@pytest.mark.parametrize("channels", [8, 24, 31, 33, 40, 64])
def test_host_c_logits_identical_to_reference(tmp_path, channels, kernel):
    """Both kernels, odd channel counts included: 31 and 33 leave a channel of the fast kernel's
    pairs and of its 16-bit RSign pairs alone, 64 runs up to 16 words a pixel (width 1.0, so the
    fit check uses a board that holds it; the C does not depend on the board)."""
    ir = fold_model(random_model(channels, seed=channels))
    images = tiny_images(8).numpy()
    write_files(export_files(ir, get_board("mps2-an386"), kernel, source="test"), tmp_path)
    result = run_host(build_host(tmp_path), images, ir.num_classes)
    expected = reference.run(ir, images)
    assert np.array_equal(result.logits, expected)
    assert np.array_equal(result.classes, expected.argmax(1))


@pytest.mark.parametrize("channels,kernel", [(8, FAST), (8, REFERENCE), (24, REFERENCE), (40, FAST)])
def test_baseline_requant_blocks_in_c_are_bit_exact(tmp_path, channels, kernel):
    model = random_model(channels, seed=channels, mode="baseline")
    assert {blk.kind for blk in fold_model(model).blocks} == {"requant"}
    _assert_c_equals_eval_and_reference(model, kernel, tmp_path)


@pytest.mark.parametrize("kernel", [Kernel.FAST, Kernel.REFERENCE])
def test_baseline_with_an_int32_residual_is_bit_exact(tmp_path, kernel):
    """Stronger BN gains push the static bound past int16: the requant kernel then adds into int32."""
    model = random_model(8, seed=9, mode="baseline")
    with torch.no_grad():
        for blk in model.blocks:
            bn = blk.bn
            assert isinstance(bn, torch.nn.BatchNorm2d)
            bn.weight.mul_(8)
            bn.bias.mul_(8)
    assert plan_memory(fold_model(model)).residual_bits == 32
    _assert_c_equals_eval_and_reference(model, kernel, tmp_path, n_images=4)


@pytest.mark.parametrize("kernel", [Kernel.FAST, Kernel.REFERENCE])
def test_baseline_with_a_head_pool_shift_is_bit_exact(tmp_path, kernel):
    """Trained-like BN statistics need a head pool shift: C floors the negative sums as numpy's >> does."""
    model = data_calibrated_model(8, seed=1)
    ir = fold_model(model)
    assert ir.head.pool_shift > 0
    assert f".pool_shift = {ir.head.pool_shift}" in render(ir)["model_data.c"]
    _assert_c_equals_eval_and_reference(model, kernel, tmp_path)


@pytest.mark.parametrize("mode,kernel", [("ptq-popcount", Kernel.FAST), ("simple-qat-popcount", Kernel.REFERENCE)])
def test_popcount_modes_fold_to_popbin_blocks_that_stay_bit_exact(tmp_path, mode, kernel):
    model = random_model(16, seed=3, mode=mode)
    assert {blk.kind for blk in fold_model(model).blocks} == {"popbin"}
    _assert_c_equals_eval_and_reference(model, kernel, tmp_path)


@pytest.mark.parametrize("kernel", [Kernel.TABLES, Kernel.SLICES])
@pytest.mark.parametrize("branch_levels", [2, 3])
def test_popcount_tables_in_c_are_bit_exact(tmp_path, branch_levels, kernel):
    """--kernel tables: width 8 gives nibble tables to 8 -> 8, 8 -> 16, 16 -> 16, 16 -> 32 (one group; one, two,
    four and eight count words), 32 -> 32 and 32 -> 64 (two groups); the 64-channel blocks keep the fast kernel's
    layouts, which --kernel slices replaces with slice tables (two words, two slices)."""
    model = random_model(8, seed=5, branch_levels=branch_levels)
    text = render(fold_model(model), kernel=kernel)["model_data.c"]
    tables = 16 if kernel is Kernel.SLICES else 13
    assert text.count(".table = table_") == tables and text.count(".weights = weights_") == 16 - tables
    _assert_c_equals_eval_and_reference(model, kernel, tmp_path)


@pytest.mark.parametrize("channels,kernel", [(8, FAST), (8, REFERENCE), (24, REFERENCE), (32, FAST)])
def test_ternary_blocks_in_c_are_bit_exact(tmp_path, channels, kernel):
    """Three branch levels: 8 channels take the lane pairs (one and two streams) and the 2-word walk, 32 the
    2- and 4-word walks and the C walk; every level is taken."""
    model = random_model(channels, seed=channels, branch_levels=3)
    ir = fold_model(model)
    assert {blk.kind for blk in ir.blocks} == {"ternary"}
    assert any(np.any(blk.zero_threshold > blk.popcount_threshold) for blk in ir.blocks)
    _assert_c_equals_eval_and_reference(model, kernel, tmp_path)


def test_requant_arrays_replace_the_popcount_thresholds_in_the_plan():
    ir = fold_model(random_model(8, seed=8, mode="baseline"))
    plan = plan_memory(ir)
    assert plan.requant_bytes == sum(8 * blk.out_channels for blk in ir.blocks)
    assert plan.threshold_bytes == sum(4 * blk.in_channels for blk in ir.blocks)
    popbin = plan_memory(fold_model(random_model(8, seed=8)))
    assert popbin.requant_bytes == 0 and popbin.model_flash_bytes == plan.model_flash_bytes - 4 * sum(
        blk.out_channels for blk in ir.blocks)


def test_requant_that_could_wrap_int32_is_not_rendered():
    ir = fold_model(random_model(8, seed=8, mode="baseline"))
    ir.blocks[2].multiplier[0] = 2**31 // ir.blocks[2].fan_in + 1
    with pytest.raises(OverflowError, match="past int32"):
        render(ir)


def test_pbkit_export_of_a_baseline_checkpoint_runs_in_c(tmp_path, capsys):
    """`pbkit export` (checkpoint -> fold -> C + test vectors), then gcc: the C reproduces the vectors."""
    checkpoint = tmp_path / "baseline.safetensors"
    save_checkpoint(random_model(8, seed=21, mode="baseline"), checkpoint)
    out = tmp_path / "export"
    assert main(["export", str(checkpoint), "--out", str(out), "--vectors", "4", "--kernel", "reference"]) == EXIT_OK
    assert "model sha256" in capsys.readouterr().out
    assert "PB_BLOCK_REQUANT" in (out / "model_data.c").read_text()
    vectors = (out / "test_vectors.bin").read_bytes()
    assert vectors.startswith(VECTORS_MAGIC)
    _, count, classes, image_bytes = np.frombuffer(vectors[4:20], dtype="<u4")
    images = np.frombuffer(vectors[20:20 + count * image_bytes], dtype=np.uint8).reshape(count, 3, 32, 32)
    expected = np.frombuffer(vectors[20 + count * image_bytes:], dtype="<i4").reshape(count, classes)
    result = run_host(build_host(out), images, int(classes))
    assert np.array_equal(result.logits, expected)


def test_argmax_ties_go_to_the_lowest_index(tmp_path):
    ir = fold_model(random_model(8, seed=5))
    ir.head.weight[:] = 0
    ir.head.bias[:] = [1, 3, 3, 0, 3, 0, 0, 0, 0, 0]
    write_files(export_files(ir, get_board("netduinoplus2"), Kernel.FAST, source="test"), tmp_path)
    result = run_host(build_host(tmp_path), tiny_images(2).numpy(), ir.num_classes)
    assert result.classes.tolist() == [1, 1]


@pytest.mark.parametrize("kernel", [Kernel.FAST, Kernel.REFERENCE])
def test_multiply_free_model_in_c_is_bit_exact(tmp_path, kernel):
    """--stem bitplanes --head shift (ternary blocks, as the trained run): C == reference == PyTorch eval."""
    model = random_model(8, seed=5, branch_levels=3, stem="bitplanes", head="shift")
    ir = fold_model(model)
    assert ir.stem.kind == "bitplanes" and ir.head.kind == "shift"
    levels = reference.run(ir, tiny_images(8).numpy())  # the logits differ between images: not a constant model
    assert len({tuple(row) for row in levels}) > 1
    _assert_c_equals_eval_and_reference(model, kernel, tmp_path)
