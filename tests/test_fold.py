"""PyTorch eval (the model's own eval forward) == the numpy integer reference, bit for bit."""

import numpy as np
import pytest
import torch

from pbkit.codegen import reference
from pbkit.trainer.fold import check_ranges, fold_model
from pbkit.trainer.integer_graph import integer_logits
from tests.support import random_model, tiny_images


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
    with torch.no_grad():
        blk.bn.weight.copy_(torch.tensor([-1.0, 1.0] * 4))
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
