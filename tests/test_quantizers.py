import pytest
import torch

from pbkit.trainer.quantizers import (
    binary_sign,
    levels_ste,
    quantize_int8,
    quantize_pow2,
    round_ste,
    sign_approx_ste,
    sign_identity_ste,
    sign_ste,
    thermometer_planes,
)


def test_sign_of_zero_is_plus_one():
    x = torch.tensor([-2.0, -0.0, 0.0, 1e-9, 3.0])
    assert binary_sign(x).tolist() == [-1.0, 1.0, 1.0, 1.0, 1.0]
    assert sign_ste(x).tolist() == [-1.0, 1.0, 1.0, 1.0, 1.0]


def test_sign_ste_gradient_is_clipped():
    above_one = float(torch.nextafter(torch.tensor(1.0), torch.tensor(2.0)))
    x = torch.tensor([-1.5, -above_one, -1.0, -0.5, 0.0, 0.9, 1.0, above_one, 2.0], requires_grad=True)
    sign_ste(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]  # passes exactly where |x| <= 1


def test_identity_sign_ste_passes_every_gradient():
    x = torch.tensor([-3.0, -0.0, 0.0, 0.5, 7.0], requires_grad=True)
    y = sign_identity_ste(x)
    assert y.tolist() == [-1.0, 1.0, 1.0, 1.0, 1.0]
    (y * torch.arange(5.0)).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_round_half_up_with_identity_gradient():
    x = torch.tensor([-1.5, -0.5, 0.5, 1.5, 2.49], requires_grad=True)
    assert round_ste(x).tolist() == [-1.0, 0.0, 1.0, 2.0, 2.0]
    round_ste(x).sum().backward()
    assert x.grad.tolist() == [1.0] * 5


def test_int8_levels_are_symmetric_and_bounded():
    w = torch.randn(8, 3, 3, 3)
    q, scale = quantize_int8(w, per_channel=True)
    assert q.abs().max() == 127 and q.dtype == torch.float32
    assert torch.equal(q, q.round())
    assert torch.allclose(q * scale, w, atol=float(scale.max()) / 2 + 1e-6)


def test_three_levels_round_half_up_inside_the_clipped_window():
    x = torch.tensor([-2.0, -0.75, -0.5, -0.25, 0.0, 0.49, 0.5, 3.0], requires_grad=True)
    y = levels_ste(x, 3)
    assert y.tolist() == [-1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    two = torch.tensor([-0.5, -0.0, 0.0, 2.0])
    assert torch.equal(levels_ste(two, 2), sign_ste(two))


def test_approx_sign_ste_weighs_the_gradient_by_two_minus_two_abs_x():
    x = torch.tensor([-1.5, -0.5, 0.0, 0.25, 1.0], requires_grad=True)
    y = sign_approx_ste(x)
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 2.0, 1.5, 0.0]


def test_power_of_two_levels_round_in_the_log_domain_with_an_identity_gradient():
    w = torch.tensor([6.4, -3.2, 2.3, 1.0, -0.5, 0.04, 0.0], requires_grad=True)
    q, scale = quantize_pow2(w, max_exponent=6)
    assert float(scale) == pytest.approx(0.1)  # max |w| / 2^6
    assert q.tolist() == [64.0, -32.0, 32.0, 8.0, -4.0, 0.0, 0.0]  # 23 -> 2^4.52 -> 32; 0.4 < 2^-1/2 -> 0
    q.sum().backward()
    assert torch.allclose(w.grad, torch.full_like(w, 1 / float(scale)))


def test_thermometer_planes_are_plus_one_up_to_the_pixel():
    centered = torch.tensor([0, 23, 24, 255], dtype=torch.float32).view(1, 1, 1, 4).repeat(1, 3, 1, 1) - 128
    planes = thermometer_planes(centered, torch.tensor([24, 100, 250]))
    assert planes.shape == (1, 9, 1, 4)
    assert planes[0, :3, 0].T.tolist() == [[-1, -1, -1], [-1, -1, -1], [1, -1, -1], [1, 1, 1]]
    assert torch.equal(planes[0, 3:6], planes[0, :3])  # channel c takes planes 3c..3c+2
