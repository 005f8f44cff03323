import pytest
import torch

from pbkit.trainer.model import ModelConfig, Stem, build_model
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


@pytest.mark.parametrize("model_name", ["reactnet18", "birealnet18"])
@pytest.mark.parametrize("mode", ["baseline", "simple-qat-popcount", "popbin", "real"])
def test_every_mode_trains_forward_and_backward(mode, model_name):
    model = build_model(ModelConfig(model=model_name, width=0.125, mode=mode)).train()
    out = model(tiny_images(4))
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    assert model.blocks[0].weight.grad.abs().sum() > 0
    assert isinstance(model.stem, Stem) and model.stem.conv.weight.grad.abs().sum() > 0
    logits = model.eval()(tiny_images(2))
    assert logits.shape == (2, 10)


def test_baseline_branch_is_bn_output_on_the_grid_and_simple_qat_is_plus_minus_alpha():
    x = torch.round(torch.randn(2, 8, 8, 8) * 4) / 4  # a residual on the stage-1 grid
    base = build_model(ModelConfig(width=0.125, mode="baseline")).train().blocks[0]
    y = base(x) - x
    assert torch.equal(y * 4, (y * 4).round()) and len(torch.unique(y)) > 2  # many levels, on the grid
    simple = build_model(ModelConfig(width=0.125, mode="simple-qat-popcount")).train().blocks[0]
    with torch.no_grad():
        simple.weight.normal_(0, 0.6)
    alpha = float(simple.weight.detach().abs().mean())
    branch = torch.unique((simple(x) - x).detach().abs())
    assert len(branch) == 1 and float(branch) == pytest.approx(round(alpha * 4) / 4)


def test_ptq_conversion_keeps_weights_and_sets_delta_to_alpha_times_n():
    from pbkit.trainer.model import convert_to_ptq

    baseline = build_model(ModelConfig(width=0.125, mode="baseline")).eval()
    ptq = convert_to_ptq(baseline)
    assert ptq.config.mode == "ptq-popcount"
    blk, src = ptq.blocks[0], baseline.blocks[0]
    assert isinstance(blk.bn, torch.nn.BatchNorm2d) and isinstance(src.bn, torch.nn.BatchNorm2d)
    assert torch.equal(blk.weight, src.weight) and torch.equal(blk.bn.running_var, src.bn.running_var)
    expected = max(1.0, float(torch.floor(src.weight.detach().abs().mean() * src.fan_in * blk.grid_out + 0.5)))
    assert float(blk.delta()) * blk.grid_out == expected
    with pytest.raises(ValueError, match="converts a baseline"):
        convert_to_ptq(ptq)


def test_two_step_first_step_uses_real_weights():
    model = build_model(ModelConfig(width=0.125)).train()
    images = tiny_images(2)
    binary = model(images)
    model.set_binary_weights(False)
    real = model(images)
    assert not torch.equal(binary, real)
    model.set_binary_weights(True)
    assert torch.equal(model(images), binary)


def test_a_three_level_branch_adds_minus_delta_zero_or_delta():
    from pbkit.trainer.fold import fold_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(width=0.125, branch_levels=3))
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    model.train()
    stem = model.stem(images.float() - 128.0)
    block = model.blocks[0]
    step = block(stem) - block.shortcut(stem)
    units = torch.unique(torch.round(step / block.delta() * 1e6) / 1e6)
    assert set(units.tolist()) <= {-1.0, 0.0, 1.0} and 0.0 in units.tolist()
    model.float_forward(images).sum().backward()
    assert model.blocks[0].weight.grad.abs().sum() > 0
    assert {b.kind for b in fold_model(model.eval()).blocks} == {"ternary"}
    with pytest.raises(ValueError, match="need --mode popbin"):
        ModelConfig(mode="baseline", branch_levels=3)


def test_a_per_channel_delta_learns_one_a_per_output_channel():
    model = build_model(ModelConfig(width=0.125, delta_per_channel=True)).train()
    block = model.blocks[4]  # stride 2, 8 -> 16 channels
    assert block.log_a.shape == (16,) and block.delta().shape == (16,)
    assert torch.equal(block.delta(), torch.full((16,), 1.0))  # every channel starts where the layer's delta does
    with torch.no_grad():
        block.log_a.copy_(torch.linspace(0.5, 3.0, 16))
    x = torch.randn(2, 8, 32, 32).round() / 4
    step = (block(x) - block.shortcut(x)).detach()
    assert torch.equal(step.abs().amax(dim=(0, 2, 3)), block.delta().detach())  # each channel adds its own +-delta
    torch.nn.functional.cross_entropy(model(tiny_images(2)), torch.tensor([0, 1])).backward()
    assert all(b.log_a.grad is not None and b.log_a.grad.shape == b.log_a.shape for b in model.blocks)
    assert "delta_per_channel" not in ModelConfig().to_dict()  # older configs and hashes unchanged
    assert ModelConfig(**ModelConfig(delta_per_channel=True).to_dict()).delta_per_channel
    with pytest.raises(ValueError, match="per-channel delta needs"):
        ModelConfig(mode="baseline", delta_per_channel=True)
    with pytest.raises(ValueError, match="per-channel delta needs"):
        ModelConfig(division="minmax", delta_per_channel=True)


def test_multiply_free_options_are_recorded_only_when_chosen():
    assert "stem" not in ModelConfig().to_dict() and "head" not in ModelConfig().to_dict()  # old configs unchanged
    config = ModelConfig(stem="bitplanes", head="shift")
    assert config.to_dict()["stem"] == "bitplanes" and ModelConfig(**config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown stem"):
        ModelConfig(stem="float")
    with pytest.raises(ValueError, match="unknown head"):
        ModelConfig(head="float")


def test_bit_plane_stem_and_shift_head_train_and_stay_on_their_grids():
    model = build_model(ModelConfig(width=0.125, stem="bitplanes", head="shift", branch_levels=3)).train()
    assert model.stem.weight.shape == (8, 30, 3, 3)
    x = model.stem(tiny_images(2).float() - 128)
    assert torch.equal(x * 4, (x * 4).round()) and x.abs().max() <= 1
    q, _ = model.head_levels()
    magnitude = q.detach().abs()
    assert torch.all((magnitude == 0) | (magnitude == 2 ** torch.log2(magnitude.clamp_min(1)).round()))
    torch.nn.functional.cross_entropy(model(tiny_images(2)), torch.tensor([0, 1])).backward()
    assert model.stem.weight.grad is not None and model.fc.weight.grad is not None
