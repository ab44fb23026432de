"""deploy in linear light: foreground colours solved where ``I = αF + (1 − α)B`` is physics, compositing with
the package's one sRGB definition, and the upsampling choice ``predict`` makes, reported before it is made."""

import numpy as np
import pytest
import torch

from lowlight_matting import deploy
from lowlight_matting.color import composite, linear_to_u8, srgb_to_linear, u8_to_linear
from lowlight_matting.deploy import Matter
from lowlight_matting.models import build_model
from lowlight_matting.simulate import LowLightSimulator


def two_colour_scene(h=96, w=128):
    """Flat foreground F over flat background B, alpha ramping 0 -> 1 across the middle, composited in linear
    light (as the course's data are)."""
    alpha = np.clip((np.arange(w, dtype=np.float32) - 0.3 * w) / (0.4 * w), 0, 1)
    alpha = np.ascontiguousarray(np.broadcast_to(alpha, (h, w)))
    fg = np.zeros((h, w, 3), np.uint8)
    fg[:] = (230, 150, 40)
    bg = np.zeros((h, w, 3), np.uint8)
    bg[:] = (20, 60, 120)
    return composite(fg, bg, alpha), alpha, fg, bg


def test_composite_mixes_linear_light_not_srgb_values():
    white, black = np.full((4, 4, 3), 255, np.uint8), np.zeros((4, 4, 3), np.uint8)
    half = np.full((4, 4), 0.5, np.float32)
    assert composite(white, black, half).min() == composite(white, black, half).max() == 188  # not 128
    rng = np.random.default_rng(0)
    fg, bg = (rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(2))
    a = rng.random((16, 16)).astype(np.float32)
    lin = a[..., None] * srgb_to_linear(fg / 255.0) + (1 - a[..., None]) * srgb_to_linear(bg / 255.0)
    got = composite(fg, bg, a).astype(int)
    assert np.abs(got - linear_to_u8(lin.astype(np.float32)).astype(int)).max() <= 1
    np.testing.assert_array_equal(composite(fg, bg, np.ones_like(a)), fg)
    np.testing.assert_array_equal(composite(fg, bg, np.zeros_like(a)), bg)


def test_foreground_is_estimated_in_linear_light():
    image, alpha, fg, _ = two_colour_scene()
    mixed = (alpha > 0.1) & (alpha < 0.9)
    est = deploy.estimate_foreground(image, alpha)
    err_linear = np.abs(est[mixed].astype(float) - fg[mixed]).mean()
    est_srgb = deploy.estimate_foreground(image, alpha, linear=False)
    err_srgb = np.abs(est_srgb[mixed].astype(float) - fg[mixed]).mean()
    assert err_linear < 1.0 and err_srgb > 5.0, (err_linear, err_srgb)  # sRGB values misread the mix
    # and a cut-out re-composited (in linear light) on a new background matches the truth
    new_bg = np.zeros_like(image)
    new_bg[:] = (0, 255, 0)
    truth = composite(fg, new_bg, alpha).astype(int)
    assert np.abs(composite(est, new_bg, alpha).astype(int) - truth)[mixed].mean() < 2.0


def test_the_cutout_carries_the_linear_light_foreground():
    image, alpha, _, _ = two_colour_scene(40, 64)
    matter = Matter(build_model("test_convnext").eval(), long_side=64, foreground="ml")
    rgba = matter.cutout(image, alpha=alpha)
    np.testing.assert_array_equal(rgba[:, :, :3], deploy.estimate_foreground(image, alpha))
    assert np.abs(u8_to_linear(rgba[:, :, :3]) - u8_to_linear(image)).max() > 0.05  # the mix was undone


@pytest.fixture(scope="module")
def matter():
    torch.manual_seed(0)
    return Matter(build_model("test_convnext").eval(), long_side=64, foreground="none")


def test_choose_upsample_says_what_predict_does(matter):
    rng = np.random.default_rng(1)
    clean = np.zeros((200, 300, 3), np.uint8)
    clean[:, 150:] = 200
    noisy = LowLightSimulator.apply(clean, ratio=10.0, shot=0.005, read=1e-4, noise_seed=1)
    small = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    for image, expected in ((clean, "guided"), (noisy, "bilinear"), (small, "none")):
        method, noise = matter.choose_upsample(image)
        assert method == expected
        assert (noise > matter.noise_limit) == (expected == "bilinear")
        matter.predict(image)
        assert matter.last_upsample == method
    forced = Matter(matter.model, long_side=64, foreground="none", upsample="guided")
    assert forced.choose_upsample(noisy)[0] == "guided"
    assert Matter(matter.model, long_side=64, upsample="bilinear").choose_upsample(clean) == ("bilinear", 0.0)
