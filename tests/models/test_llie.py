"""Zero-DCE++ (size, curve, official weights) and the article's illumination estimator."""

import pytest
import torch
import torch.nn.functional as F

from lowlight_matting.models import (
    IlluminationEstimator,
    ZeroDCEPP,
    apply_le_curve,
    build_llie,
    le_curve,
    load_official_zero_dce_pp,
)


def official_state_dict(seed: int = 0) -> dict:
    """Random weights in the authors' format: e_conv{1..7}.{depth_conv,point_conv}.{weight,bias}."""
    g = torch.Generator().manual_seed(seed)
    ins = [3, 32, 32, 32, 64, 64, 64]
    outs = [32, 32, 32, 32, 32, 32, 3]
    sd = {}
    for i, (cin, cout) in enumerate(zip(ins, outs, strict=True), start=1):
        sd[f"e_conv{i}.depth_conv.weight"] = torch.randn(cin, 1, 3, 3, generator=g) * 0.3
        sd[f"e_conv{i}.depth_conv.bias"] = torch.randn(cin, generator=g) * 0.1
        sd[f"e_conv{i}.point_conv.weight"] = torch.randn(cout, cin, 1, 1, generator=g) * 0.3
        sd[f"e_conv{i}.point_conv.bias"] = torch.randn(cout, generator=g) * 0.1
    return sd


def reference_forward(sd: dict, x: torch.Tensor, scale_factor: int = 1):
    """An independent, literal forward of the released network (written out, no shared code)."""

    def layer(i, t):
        c = t.shape[1]
        t = F.conv2d(
            t, sd[f"e_conv{i}.depth_conv.weight"], sd[f"e_conv{i}.depth_conv.bias"], padding=1, groups=c
        )
        return F.conv2d(t, sd[f"e_conv{i}.point_conv.weight"], sd[f"e_conv{i}.point_conv.bias"])

    x_down = x if scale_factor == 1 else F.interpolate(x, scale_factor=1 / scale_factor, mode="bilinear")
    x1 = torch.relu(layer(1, x_down))
    x2 = torch.relu(layer(2, x1))
    x3 = torch.relu(layer(3, x2))
    x4 = torch.relu(layer(4, x3))
    x5 = torch.relu(layer(5, torch.cat([x3, x4], 1)))
    x6 = torch.relu(layer(6, torch.cat([x2, x5], 1)))
    r = torch.tanh(layer(7, torch.cat([x1, x6], 1)))
    if scale_factor != 1:
        r = torch.nn.UpsamplingBilinear2d(scale_factor=scale_factor)(r)
    y = x
    for _ in range(8):
        y = y + r * (torch.pow(y, 2) - y)
    return y, r


def test_zero_dce_pp_has_10561_parameters():
    assert sum(p.numel() for p in ZeroDCEPP().parameters()) == 10561


def test_illumination_estimator_size():
    # conv 3->32 (896) + 8 res blocks of two 32->32 3x3 convs (147,968) + conv 32->3 (867)
    assert sum(p.numel() for p in IlluminationEstimator().parameters()) == 149731


def test_le_curve_keeps_range_and_fixed_points_and_brightens_for_negative_a():
    x = torch.linspace(0, 1, 101)
    for a in (-1.0, -0.5, 0.0, 0.5, 1.0):
        y = le_curve(x, a)
        assert y.min() >= 0 and y.max() <= 1
        assert y[0] == 0 and y[-1] == 1
        assert (y[1:] - y[:-1] >= -1e-7).all()  # monotone
    assert (le_curve(x[1:-1], -0.5) > x[1:-1]).all() and (le_curve(x[1:-1], 0.5) < x[1:-1]).all()
    torch.testing.assert_close(apply_le_curve(x, -0.3, 2), le_curve(le_curve(x, -0.3), -0.3))


@pytest.mark.parametrize("scale_factor", [1, 4])
def test_zero_dce_pp_any_size_and_full_size_curve(scale_factor):
    net = ZeroDCEPP(scale_factor=scale_factor)
    x = torch.rand(2, 3, 45, 63)
    y, a = net(x)
    assert y.shape == x.shape and a.shape == x.shape
    assert a.abs().max() <= 1 and y.min() >= 0 and y.max() <= 1
    torch.testing.assert_close(y, apply_le_curve(x, a, 8))


@pytest.mark.parametrize("scale_factor", [1, 4])
def test_official_weights_reproduce_the_reference_forward(tmp_path, scale_factor):
    sd = official_state_dict()
    path = tmp_path / "Epoch99.pth"
    torch.save(sd, path)
    net = load_official_zero_dce_pp(path, scale_factor=scale_factor)
    x = torch.rand(2, 3, 48, 64) * 0.4  # a multiple of 4, as the authors' upsampling needs
    with torch.no_grad():
        y, a = net(x)
        y_ref, a_ref = reference_forward(sd, x, scale_factor)
    torch.testing.assert_close(a, a_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=1e-5)
    assert not net.training


def test_official_loader_strips_data_parallel_prefix_and_names_bad_files(tmp_path):
    sd = official_state_dict(1)
    wrapped = tmp_path / "dp.pth"
    torch.save({f"module.{k}": v for k, v in sd.items()}, wrapped)
    torch.testing.assert_close(
        load_official_zero_dce_pp(wrapped).e_conv3.point_conv.weight, sd["e_conv3.point_conv.weight"]
    )
    with pytest.raises(FileNotFoundError, match="missing_dce.pth"):
        load_official_zero_dce_pp(tmp_path / "missing_dce.pth")
    wrong = tmp_path / "zero_dce_v1.pth"  # Zero-DCE (not ++) uses plain convs: other keys
    torch.save({"e_conv1.weight": torch.zeros(32, 3, 3, 3)}, wrong)
    with pytest.raises(ValueError, match="zero_dce_v1.pth"):
        load_official_zero_dce_pp(wrong)


def test_illumination_estimator_formula():
    net = IlluminationEstimator(n_blocks=2)
    x = torch.rand(1, 3, 21, 34)
    y, z = net(x)
    assert z.shape == x.shape and z.min() >= 1e-6 and z.max() <= 1
    torch.testing.assert_close(y, x * z + (1 - z) * 0.5)
    assert IlluminationEstimator(n_blocks=1, scale_factor=3)(x)[1].shape == x.shape


def test_bf16_autocast_keeps_the_curve_arithmetic_in_float32():
    """Under bf16 autocast the convolutions run in bf16, the eight curve iterations in float32: the output is
    float32 and within 1e-2 of the float32 forward, and every parameter gradient within 5 %."""
    torch.manual_seed(0)
    net = ZeroDCEPP()
    x = torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(0))
    y32, _ = net(x)
    y32.mean().backward()
    grads32 = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, a = net(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, y32, atol=1e-2, rtol=0)
    y.mean().backward()
    for (name, p), g32 in zip(net.named_parameters(), grads32, strict=True):
        assert float((p.grad - g32).norm() / g32.norm()) < 5e-2, name


def test_build_llie_names_and_checks():
    assert build_llie(None) is None and build_llie("none") is None
    assert isinstance(build_llie("zero_dce_pp", scale_factor=2), ZeroDCEPP)
    assert isinstance(build_llie("illumination"), IlluminationEstimator)
    with pytest.raises(ValueError, match="llie"):
        build_llie("retinexnet")
    with pytest.raises(ValueError, match="scale_factor"):
        ZeroDCEPP(scale_factor=0)
    with pytest.raises(ValueError, match="x must be"):
        ZeroDCEPP()(torch.rand(1, 4, 8, 8))
