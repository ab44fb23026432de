"""The Zero-DCE non-reference losses and LLIE pre-training."""

import math

import pytest
import torch
import torch.nn.functional as F

from lowlight_matting.models import (
    ZeroDCELoss,
    ZeroDCEPP,
    color_constancy_loss,
    curve_smoothness_loss,
    exposure_loss,
    spatial_consistency_loss,
)


def dark(n=2, h=32, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g) * 0.15


def test_each_loss_has_its_known_value_away_from_its_ideal():
    low = dark()
    # exposure: every patch at 0.2 is 0.4 from E = 0.6
    torch.testing.assert_close(exposure_loss(torch.full((1, 3, 32, 32), 0.2)), torch.tensor(0.16))
    # colour: channel means 0.2, 0.4, 0.6 -> sqrt(0.2^4 + 0.4^4 + 0.2^4 + eps) - sqrt(eps)
    rgb = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    k = 0.2**4 + 0.4**4 + 0.2**4
    torch.testing.assert_close(color_constancy_loss(rgb), torch.tensor(math.sqrt(k + 1e-8) - 1e-4))
    # spatial: the neighbour differences are linear in the image, so doubling it costs what darkening it to
    # black does
    torch.testing.assert_close(
        spatial_consistency_loss(low, 2 * low), spatial_consistency_loss(low, torch.zeros_like(low))
    )
    assert float(spatial_consistency_loss(low, 2 * low)) > 1e-5
    # smoothness: a curve with a unit step between two columns
    step = torch.zeros(1, 1, 4, 6)
    step[..., 3:] = 1.0
    torch.testing.assert_close(curve_smoothness_loss(step), torch.tensor(2 * 4 / (4 * 5)))


def test_each_loss_is_zero_at_its_ideal():
    low = dark()
    assert spatial_consistency_loss(low, low) == 0
    # a uniform lift keeps every interior difference; the released code's zero padding still counts the border
    h, w = 32 // 4, 48 // 4
    torch.testing.assert_close(
        spatial_consistency_loss(low, low + 0.3), torch.tensor(0.09 * (2 * h + 2 * w) / (h * w))
    )
    assert exposure_loss(torch.full((1, 3, 32, 32), 0.6)) < 1e-12
    assert color_constancy_loss(torch.rand(1, 1, 16, 16).expand(1, 3, 16, 16)) == 0
    assert curve_smoothness_loss(torch.full((2, 3, 8, 8), -0.4)) == 0


def test_spatial_consistency_matches_the_released_convolution_form():
    low, enhanced = dark(seed=1), dark(seed=2) * 4
    kernels = torch.tensor(
        [
            [[0, 0, 0], [-1, 1, 0], [0, 0, 0]],
            [[0, 0, 0], [0, 1, -1], [0, 0, 0]],
            [[0, -1, 0], [0, 1, 0], [0, 0, 0]],
            [[0, 0, 0], [0, 1, 0], [0, -1, 0]],
        ],
        dtype=torch.float32,
    ).unsqueeze(1)
    p0 = F.avg_pool2d(low.mean(1, keepdim=True), 4)
    p1 = F.avg_pool2d(enhanced.mean(1, keepdim=True), 4)
    ref = ((F.conv2d(p0, kernels, padding=1) - F.conv2d(p1, kernels, padding=1)) ** 2).sum(1).mean()
    torch.testing.assert_close(spatial_consistency_loss(low, enhanced), ref)


def test_exposure_uses_16x16_patch_means():
    x = torch.zeros(1, 3, 32, 32)
    x[..., :16, :16] = 0.6  # one patch on target, three at 0
    torch.testing.assert_close(exposure_loss(x), torch.tensor(3 * 0.36 / 4))
    assert exposure_loss(torch.full((1, 3, 32, 32), 0.3)) > exposure_loss(torch.full((1, 3, 32, 32), 0.5))
    # smaller than a patch: the patch shrinks to the image
    torch.testing.assert_close(exposure_loss(torch.full((1, 3, 7, 9), 0.3)), torch.tensor(0.09))


def test_curve_smoothness_matches_the_tv_formula():
    b, c, h, w = 2, 3, 5, 7
    a = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1).expand(b, c, h, w) * 0.1  # vertical ramp
    expected = 2 * (b * c * (h - 1) * w * 0.01 / ((h - 1) * w)) / b
    torch.testing.assert_close(curve_smoothness_loss(a), torch.tensor(expected))


def test_color_gradient_is_finite_on_grey_images_where_the_released_form_is_nan():
    grey = torch.rand(2, 1, 16, 16).expand(2, 3, 16, 16).clone().requires_grad_(True)
    color_constancy_loss(grey).backward()
    assert torch.isfinite(grey.grad).all()

    released = grey.detach().clone().requires_grad_(True)  # sqrt without epsilon, as in the release
    m = released.mean((2, 3))
    k = ((m[:, 0] - m[:, 1]) ** 2) ** 2 + ((m[:, 0] - m[:, 2]) ** 2) ** 2 + ((m[:, 1] - m[:, 2]) ** 2) ** 2
    torch.pow(k, 0.5).mean().backward()
    assert torch.isnan(released.grad).any()


def test_total_loss_gradients_are_finite_through_zero_dce_pp_on_grey_input():
    net = ZeroDCEPP()
    grey = torch.full((1, 3, 32, 32), 0.1)
    y, a = net(grey)
    total, terms = ZeroDCELoss()(grey, y, a)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    assert any(float(p.grad.abs().sum()) > 0 for p in net.parameters())


def test_zero_dce_loss_default_weights_are_the_released_ones():
    loss = ZeroDCELoss()
    assert loss.weights == {"spatial": 1.0, "exposure": 10.0, "color": 5.0, "smoothness": 1600.0}
    low, enhanced, curve = dark(), dark().sqrt(), torch.rand(2, 3, 32, 48) - 0.5
    total, terms = loss(low, enhanced, curve)
    expected = sum(loss.weights[k] * terms[k] for k in loss.weights)
    torch.testing.assert_close(total.detach(), expected)
    assert math.isclose(float(terms["total"]), float(total))
    with pytest.raises(ValueError, match="enhanced"):
        exposure_loss(torch.rand(3, 32, 32))


def test_losses_compute_in_float32_under_bf16_autocast():
    low, curve = dark(), torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(5)) - 0.5
    args = (low.bfloat16(), low.sqrt().bfloat16(), curve.bfloat16())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, _ = ZeroDCELoss()(*args)
    want, _ = ZeroDCELoss()(*(a.float() for a in args))  # the same bf16 values, float32 arithmetic
    assert total.dtype == torch.float32
    assert float(total) == pytest.approx(float(want), rel=1e-5)
