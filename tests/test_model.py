import pytest
import torch

from pbkit.trainer.model import ModelConfig, build_model
from tests.support import tiny_images


def test_config_rejects_bad_width_and_unknown_names():
    with pytest.raises(ValueError, match="not a whole number"):
        ModelConfig(width=0.3)
    with pytest.raises(ValueError, match="unknown mode"):
        ModelConfig(mode="nope")
    with pytest.raises(ValueError, match="unknown division"):
        ModelConfig(division="nope")
    assert ModelConfig(width=0.25).stage_channels() == [16, 32, 64, 128]


def test_architecture_has_sixteen_binary_blocks_with_three_downsamplings():
    model = build_model(ModelConfig(width=0.125))
    assert len(model.blocks) == 16
    assert [b.stride for b in model.blocks].count(2) == 3
    assert model.blocks[-1].grid_out == 4 * 4**3


def test_training_forward_and_backward_reach_every_parameter():
    model = build_model(ModelConfig(width=0.125)).train()
    out = model(tiny_images(4))
    assert out.shape == (4, 10)
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_training_residual_stays_on_the_grid():
    model = build_model(ModelConfig(width=0.125)).train()
    x = model.stem(tiny_images(2).float() - 128)
    assert torch.equal(x * 4, (x * 4).round())
    for blk in model.blocks:
        x = blk(x)
        assert torch.equal(x * blk.grid_out, (x * blk.grid_out).round())


def test_eval_forward_is_the_integer_graph():
    model = build_model(ModelConfig(width=0.125)).eval()
    logits = model(tiny_images(3))
    assert logits.dtype == torch.float64 and logits.shape == (3, 10)


@pytest.mark.parametrize("division", ["c_plus_a", "n_plus_a", "c_times_a", "n_times_a", "minmax"])
def test_every_division_rule_trains_and_starts_near_the_stem_range(division):
    model = build_model(ModelConfig(width=0.125, division=division)).train()
    expected = 0.5 if division == "minmax" else 1.0
    assert all(float(b.delta().detach()) == pytest.approx(expected, abs=0.25) for b in model.blocks)
    torch.nn.functional.cross_entropy(model(tiny_images(2)), torch.tensor([0, 1])).backward()
    learnable_a = [b.log_a for b in model.blocks if isinstance(b.log_a, torch.nn.Parameter)]
    assert (not learnable_a) == (division == "minmax")
    assert all(a.grad is not None for a in learnable_a)


def test_birealnet_signs_at_zero_with_no_learnable_threshold():
    model = build_model(ModelConfig(model="birealnet18", width=0.125))
    names = {n for n, _ in model.named_parameters()}
    assert not any("rsign_threshold" in n for n in names)
    assert all(torch.equal(b.rsign_threshold, torch.zeros(b.in_channels)) for b in model.blocks)
