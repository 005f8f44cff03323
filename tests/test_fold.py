"""PyTorch eval (the model's own eval forward) == the numpy integer reference, bit for bit."""

import numpy as np
import pytest
import torch

from pbkit.codegen import reference
from pbkit.ir import check_multiply_free, check_ranges, head_bound, pooled_bound
from pbkit.trainer.fold import fold_model
from pbkit.trainer.integer_graph import integer_logits
from tests.support import data_calibrated_model, random_model, tiny_images


@pytest.mark.parametrize("channels", [8, 24, 40])
def test_eval_forward_equals_integer_reference(channels):
    model = random_model(channels, seed=channels)
    images = tiny_images(6)
    ir = fold_model(model)
    expected = reference.run(ir, images.numpy())
    assert np.array_equal(integer_logits(ir, images).numpy(), expected)
    eval_logits = model(images)  # eval mode: integers scaled by one positive constant
    assert np.array_equal(eval_logits.argmax(1).numpy(), expected.argmax(1))
    check_ranges(ir)


def test_fold_flips_channels_with_negative_scale():
    model = random_model(8, seed=1)
    blk = model.blocks[0]
    bn = blk.bn
    assert isinstance(bn, torch.nn.BatchNorm2d)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([-1.0, 1.0] * 4))
    ir_block = fold_model(model).blocks[0]
    signs = (blk.weight.detach() >= 0).permute(0, 2, 3, 1).numpy().astype(np.uint8)
    assert np.array_equal(ir_block.weight_bits[0], 1 - signs[0])
    assert np.array_equal(ir_block.weight_bits[1], signs[1])


def test_float_graph_matches_integer_graph_on_real_images():
    """With the same quantizers, float QAT eval and the folded integers pick the same class."""
    model = random_model(16, seed=3)
    images = tiny_images(32)
    with torch.no_grad():
        float_cls = model.float_forward(images).argmax(1)
    integer_cls = model(images).argmax(1)
    assert (float_cls == integer_cls).float().mean() >= 0.9


def test_popcount_thresholds_stay_in_range():
    ir = fold_model(random_model(24, seed=2))
    for blk in ir.blocks:
        assert blk.popcount_threshold.min() >= -1 and blk.popcount_threshold.max() <= blk.fan_in
        assert blk.delta >= 1


@pytest.mark.parametrize("model_name,division", [("birealnet18", "n_plus_a"), ("reactnet18", "minmax"),
                                                 ("birealnet18", "c_plus_a")])
def test_other_models_and_division_rules_keep_parity(model_name, division):
    from pbkit.trainer.model import ModelConfig, build_model

    torch.manual_seed(7)
    model = build_model(ModelConfig(model=model_name, width=24 / 64, division=division))
    model.load_state_dict({**model.state_dict(), **{k: v for k, v in random_model(24, seed=7).state_dict().items()
                                                  if k.endswith(("running_mean", "running_var", "bn.weight",
                                                                 "bn.bias"))}})
    model.eval()
    images = tiny_images(4)
    ir = fold_model(model)
    assert np.array_equal(integer_logits(ir, images).numpy(), reference.run(ir, images.numpy()))


@pytest.mark.parametrize("branch_levels", [2, 3])
def test_a_per_channel_delta_keeps_eval_equal_to_the_integer_reference(branch_levels):
    model = random_model(24, seed=9, delta_per_channel=True, branch_levels=branch_levels)
    images = tiny_images(4)
    ir = fold_model(model)
    for blk in ir.blocks:
        assert blk.channel_delta.shape == (blk.out_channels,) and blk.delta == blk.channel_delta.max()
    assert any(len(np.unique(blk.channel_delta)) > 1 for blk in ir.blocks)
    expected = reference.run(ir, images.numpy())
    assert np.array_equal(integer_logits(ir, images).numpy(), expected)
    assert np.array_equal(model(images).argmax(1).numpy(), expected.argmax(1))
    assert fold_model(random_model(24, seed=9, branch_levels=branch_levels)).blocks[0].channel_delta is None


@pytest.mark.parametrize("mode", ["baseline", "ptq-popcount", "simple-qat-popcount"])
def test_every_exportable_mode_keeps_eval_equal_to_the_integer_reference(mode):
    model = random_model(24, seed=5, mode=mode)
    images = tiny_images(4)
    ir = fold_model(model)
    assert {b.kind for b in ir.blocks} == {"requant" if mode == "baseline" else "popbin"}
    expected = reference.run(ir, images.numpy())
    assert np.array_equal(integer_logits(ir, images).numpy(), expected)
    assert np.array_equal(model(images).argmax(1).numpy(), expected.argmax(1))


def test_baseline_requant_is_floor_of_grid_times_bn_within_one_unit():
    """(p M + B) >> S approximates round(grid * BN(p)): off by at most one unit, exact for most p."""
    from pbkit.trainer.fold import _bn_affine, fold_requant_block

    blk = random_model(8, seed=2, mode="baseline").blocks[3]
    ir_blk = fold_requant_block(blk)
    p = torch.arange(-blk.fan_in, blk.fan_in + 1, 2, dtype=torch.float64)
    with torch.no_grad():
        scale, shift = _bn_affine(blk.bn)
    exact = torch.floor(blk.grid_out * (scale[:, None] * p[None] + shift[:, None]) + 0.5)
    integer = (p[None].numpy().astype(np.int64) * ir_blk.multiplier[:, None].astype(np.int64)
               + ir_blk.bias[:, None]) >> ir_blk.shift
    diff = np.abs(integer - exact.numpy())
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99
    assert np.abs(p[None].numpy() * ir_blk.multiplier[:, None] + ir_blk.bias[:, None]).max() < 2**31


def test_real_mode_does_not_fold():
    from pbkit.trainer.model import ModelConfig, build_model

    with pytest.raises(ValueError, match="float distillation teacher"):
        fold_model(build_model(ModelConfig(width=0.125, mode="real")))


def test_a_data_calibrated_baseline_pools_with_a_shift_and_stays_exact():
    """Trained-like BN statistics push W @ (sum of x) past int32; the smallest pool shift brings it back."""
    model = data_calibrated_model(8, seed=0)
    ir = fold_model(model)
    pooled = pooled_bound(ir)
    shift = ir.head.pool_shift
    assert shift > 0
    check_ranges(ir)
    assert head_bound(ir.head.weight, ir.head.bias, pooled, shift) < 2**31
    # The smallest: one bit less would not be provably in range (with the bias that scale gives).
    scale_one_less = ir.meta["logit_scale"] / 2  # logit_scale carries 2^shift
    bias = np.floor(model.fc.bias.detach().double().numpy() / scale_one_less + 0.5).astype(np.int64)
    assert head_bound(ir.head.weight, bias, pooled, shift - 1) >= 2**31
    images = tiny_images(8)
    logits = integer_logits(ir, images)
    assert np.array_equal(logits.numpy(), reference.run(ir, images.numpy()))
    assert torch.equal(model(images), logits.to(torch.float64) * ir.meta["logit_scale"])
    # The scale carries 2^shift: eval logits still track the float graph's.
    with torch.no_grad():
        float_logits = model.float_forward(images)
    assert (model(images).argmax(1) == float_logits.argmax(1)).float().mean() >= 0.75


def test_pool_shift_enters_the_hash_only_when_nonzero():
    ir = fold_model(random_model(8, seed=0))
    assert ir.head.pool_shift == 0
    before = ir.sha256()
    ir.head.pool_shift = 1
    assert ir.sha256() != before
    ir.head.pool_shift = 0
    assert ir.sha256() == before


def test_per_channel_deltas_enter_the_hash():
    ir = fold_model(random_model(8, seed=0, delta_per_channel=True))
    before = ir.sha256()
    ir.blocks[3].channel_delta = ir.blocks[3].channel_delta.copy()
    ir.blocks[3].channel_delta[0] += 1
    assert ir.sha256() != before


def test_check_ranges_refuses_a_head_without_the_shift_it_needs():
    ir = fold_model(data_calibrated_model(8, seed=0))
    ir.head.pool_shift = 0
    with pytest.raises(OverflowError, match="head accumulator bound"):
        check_ranges(ir)


@pytest.mark.parametrize("channels", [8, 24])
def test_a_ternary_branch_folds_to_two_ordered_thresholds_and_keeps_parity(channels):
    model = random_model(channels, seed=11, branch_levels=3)
    images = tiny_images(6)
    ir = fold_model(model)
    assert {b.kind for b in ir.blocks} == {"ternary"}
    for blk in ir.blocks:
        assert np.all(blk.popcount_threshold <= blk.zero_threshold)
        assert blk.zero_threshold.min() >= -1 and blk.zero_threshold.max() <= blk.fan_in
    expected = reference.run(ir, images.numpy())
    assert np.array_equal(integer_logits(ir, images).numpy(), expected)
    assert np.array_equal(model(images).argmax(1).numpy(), expected.argmax(1))
    with torch.no_grad():
        float_cls = model.float_forward(tiny_images(32)).argmax(1)
    assert (float_cls == model(tiny_images(32)).argmax(1)).float().mean() >= 0.9
    assert ir.sha256() != fold_model(random_model(channels, seed=11)).sha256()


def test_the_ternary_branch_adds_zero_between_its_thresholds():
    from pbkit.codegen.reference import _branch
    from pbkit.ir import BlockIR

    blk = BlockIR(in_channels=8, out_channels=1, stride=1, rsign_threshold=np.zeros(8, np.int32),
                  weight_bits=np.zeros((1, 3, 3, 8), np.uint8), popcount_threshold=np.array([30], np.int32),
                  delta=5, kind="ternary", zero_threshold=np.array([40], np.int32))
    counts = np.array([[0], [30], [31], [40], [41], [72]])
    assert _branch(blk, counts).ravel().tolist() == [5, 5, 0, 0, -5, -5]


def test_multiply_free_fold_equals_the_reference_and_is_hashed_apart():
    model = random_model(8, seed=4, branch_levels=3, stem="bitplanes", head="shift")
    images = tiny_images(6)
    ir = fold_model(model)
    assert ir.stem.kind == "bitplanes" and ir.head.kind == "shift" and ir.meta["stem"] == "bitplanes"
    assert set(np.unique(ir.stem.weight)) <= {-1, 1} and ir.stem.input_thresholds.tolist()[:2] == [23, 47]
    assert np.array_equal(integer_logits(ir, images).numpy(), reference.run(ir, images.numpy()))
    check_ranges(ir)
    sha = ir.sha256()
    ir.head.kind = "int8"  # the same integers under another kernel: another model hash
    assert ir.sha256() != sha


def test_check_multiply_free_refuses_what_the_kernels_cannot_hold():
    ir = fold_model(random_model(8, seed=4, stem="bitplanes", head="shift"))
    ir.head.weight[0, 0] = 3
    with pytest.raises(ValueError, match="0 or \\+-2\\^e"):
        check_multiply_free(ir)
    ir = fold_model(random_model(8, seed=4, stem="bitplanes"))
    ir.stem.input_thresholds = np.arange(1, 12, dtype=np.int32)  # 11 planes: 33 bits a pixel
    with pytest.raises(ValueError, match="one 32-bit word a pixel"):
        check_multiply_free(ir)
