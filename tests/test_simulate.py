"""lowlight_matting.simulate: sRGB transfer, sensor noise statistics, the article's recipe and its flaws, the
physical simulator (seeding, determinism, presets) and the batched torch path against the NumPy path."""

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from lowlight_matting.simulate import (
    PRESETS,
    LowLightSimulator,
    add_sensor_noise,
    linear_to_srgb,
    mean_luminance,
    motion_blur_kernel,
    simulate_batch,
    simulate_low_light,
    srgb_to_linear,
)


@pytest.fixture(scope="module")
def photo():
    return cv2.resize(skimage.data.astronaut(), (48, 48), interpolation=cv2.INTER_AREA)


def to_tensor(img):
    return torch.from_numpy(img).permute(2, 0, 1).float().div(255.0)


# --- sRGB transfer -----------------------------------------------------------------------------------------


def test_srgb_transfer_matches_the_standard_and_round_trips():
    x = np.linspace(0, 1, 1001, dtype=np.float64)
    lin = srgb_to_linear(x)
    assert lin[0] == 0 and abs(lin[-1] - 1) < 1e-12
    assert abs(srgb_to_linear(np.float64(0.5)) - 0.21404114) < 1e-6  # IEC 61966-2-1
    assert abs(srgb_to_linear(np.float64(0.04045)) - 0.04045 / 12.92) < 1e-12
    np.testing.assert_allclose(linear_to_srgb(lin), x, atol=1e-9)
    assert np.all(np.diff(lin) > 0)
    t = torch.from_numpy(x)
    torch.testing.assert_close(srgb_to_linear(t), torch.from_numpy(lin))
    torch.testing.assert_close(linear_to_srgb(srgb_to_linear(t)), t)
    assert srgb_to_linear(np.zeros(3, np.float32)).dtype == np.float32


def test_transfer_clips_out_of_range_values():
    assert linear_to_srgb(np.array([-0.1, 1.5])).tolist() == pytest.approx([0.0, 1.0])
    assert linear_to_srgb(torch.tensor([-0.1, 1.5])).tolist() == pytest.approx([0.0, 1.0])


def test_mean_luminance_is_linear_rec709(photo):
    white = np.full_like(photo, 255)
    assert mean_luminance(white) == pytest.approx(1.0)
    red = np.zeros_like(photo)
    red[..., 0] = 255
    assert mean_luminance(red) == pytest.approx(0.2126)
    stack = np.stack([photo, white])
    np.testing.assert_allclose(mean_luminance(stack), [mean_luminance(photo), 1.0], rtol=1e-6)
    t = mean_luminance(to_tensor(photo)[None])
    assert t.shape == (1,) and float(t[0]) == pytest.approx(mean_luminance(photo), rel=1e-5)


# --- sensor noise --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("x", [0.005, 0.05, 0.3, 0.8])
@pytest.mark.parametrize(("shot", "read"), [(1e-4, 1e-6), (3e-3, 5e-5), (1.2e-2, 2e-4)])
def test_noise_is_zero_mean_with_variance_shot_x_plus_read(x, shot, read):
    n = 200_000
    clean = np.full(n, x, np.float64)
    noise = add_sensor_noise(clean, shot, read, rng=1) - clean
    var = shot * x + read
    assert abs(noise.mean()) < 5 * np.sqrt(var / n)  # zero mean within 5 standard errors
    assert noise.var() == pytest.approx(var, rel=0.02)  # std error of a variance ~ sqrt(2/n) = 0.3%


def test_torch_noise_has_the_same_statistics():
    g = torch.Generator().manual_seed(0)
    clean = torch.full((4, 50_000), 0.2, dtype=torch.float64)
    shot = torch.tensor([1e-4, 1e-3, 5e-3, 1e-2], dtype=torch.float64).view(4, 1)
    noise = add_sensor_noise(clean, shot, 1e-5, g) - clean
    expected = (shot.view(-1) * 0.2 + 1e-5).numpy()
    np.testing.assert_allclose(noise.var(dim=1).numpy(), expected, rtol=0.03)
    assert float(noise.mean(dim=1).abs().max()) < 5 * np.sqrt(expected.max() / 50_000)


def test_noise_is_seeded_and_checks_its_input():
    x = np.full((8, 8), 0.1, np.float32)
    np.testing.assert_array_equal(
        add_sensor_noise(x, 0.01, 1e-4, rng=3), add_sensor_noise(x, 0.01, 1e-4, rng=3)
    )
    assert not np.array_equal(add_sensor_noise(x, 0.01, 1e-4, rng=3), add_sensor_noise(x, 0.01, 1e-4, rng=4))
    assert add_sensor_noise(x, 0.01, 1e-4, rng=3).dtype == np.float32
    with pytest.raises(TypeError, match="float"):
        add_sensor_noise(np.zeros(3, np.uint8), 0.01, 0.0)
    with pytest.raises(ValueError, match=">= 0"):
        add_sensor_noise(x, -0.01, 0.0)


# --- the article's recipe and its flaws ---------------------------------------------------------------------


def test_article_recipe_brightens_by_five_percent():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    out = simulate_low_light(image, rng=1).astype(np.float64)
    dark = (image / 255.0) ** (1 / 0.4) * 0.3 * 255  # the curve alone, in code values
    # E[out] = 1.05 * dark, minus 0.5 on average for the truncation by astype(uint8)
    assert (out.mean() + 0.5) / dark.mean() == pytest.approx(1.05, abs=0.005)


@pytest.mark.parametrize("level", [60, 128, 200, 255])
def test_article_noise_vanishes_in_uint8(level):
    image = np.full((64, 64, 3), level, np.uint8)
    out = simulate_low_light(image, rng=0)
    # the recipe's "noise" is below one code value: after truncation to uint8 a flat patch stays nearly flat
    assert out.std() < 0.6
    values, counts = np.unique(out, return_counts=True)
    mode = int(values[counts.argmax()])
    assert counts.max() / out.size > 0.5 and np.mean(np.abs(out.astype(int) - mode) <= 1) > 0.99
    # while modest physical sensor noise (low end of Brooks et al.'s range) at the same brightness is visible
    ratio = mean_luminance(image) / mean_luminance(out)
    real = LowLightSimulator.apply(image, ratio=ratio, shot=1e-3, read=4e-6, noise_seed=0)
    assert abs(real.mean() - out.mean()) < 3
    assert real.std() > 3 * out.std()


def test_article_curve_is_not_an_exposure_change():
    grey = np.array([[[64] * 3, [128] * 3, [255] * 3]], np.uint8)
    out = simulate_low_light(grey, rng=0)
    ratio = srgb_to_linear(out[0, :, 0] / 255.0) / srgb_to_linear(grey[0, :, 0] / 255.0)
    # an exposure change scales linear light by one factor; the curve crushes shadows far more
    assert ratio[0] < 0.5 * ratio[2]


def test_article_recipe_is_seeded_and_uint8():
    img = np.full((8, 8, 3), 150, np.uint8)
    assert simulate_low_light(img, rng=5).dtype == np.uint8
    np.testing.assert_array_equal(simulate_low_light(img, rng=5), simulate_low_light(img, rng=5))
    with pytest.raises(TypeError, match="uint8"):
        simulate_low_light(img / 255.0)


# --- the physical simulator ----------------------------------------------------------------------------------


def test_seeded_runs_repeat_exactly(photo):
    a, b = LowLightSimulator(seed=7), LowLightSimulator(seed=7)
    outs_a = [a(photo) for _ in range(5)]
    outs_b = [b(photo) for _ in range(5)]
    for x, y in zip(outs_a, outs_b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(outs_a[0], o) for o in outs_a[1:])
    a.reseed(7)
    np.testing.assert_array_equal(a(photo), outs_a[0])


def test_apply_is_deterministic_and_reproduces_the_call(photo):
    sim = LowLightSimulator(seed=3, p_jpeg=1.0, p_blur=1.0, p_row=1.0, p_gain=1.0)
    out = sim(photo)
    p = sim.last_params
    assert p["jpeg_quality"] > 0 and p["blur_length"] > 0 and p["row_std"] > 0 and p["gain"] > 1
    np.testing.assert_array_equal(sim.apply(photo, **p), out)
    np.testing.assert_array_equal(LowLightSimulator.apply(photo, **p), out)


def test_apply_with_no_params_is_the_identity_and_unknown_params_fail(photo):
    np.testing.assert_array_equal(LowLightSimulator.apply(photo), photo)
    with pytest.raises(TypeError, match="unknown parameter"):
        LowLightSimulator.apply(photo, exposure=3)
    with pytest.raises(ValueError, match="uint8"):
        LowLightSimulator.apply(photo / 255.0)


def test_exposure_cut_divides_linear_light(photo):
    for r in (2.0, 8.0):
        out = LowLightSimulator.apply(photo, ratio=r)
        assert mean_luminance(out) == pytest.approx(mean_luminance(photo) / r, rel=0.03)


def test_gain_brightens_and_amplifies_noise():
    flat = np.full((64, 64, 3), 150, np.uint8)
    base = {"ratio": 16.0, "shot": 4e-3, "read": 1e-4, "noise_seed": 0}
    dark = LowLightSimulator.apply(flat, **base)
    bright = LowLightSimulator.apply(flat, **base, gain=8.0)
    assert bright.mean() > 2 * dark.mean()
    assert bright.std() > 2 * dark.std()


def test_default_distribution_darkens_and_draws_read_from_shot(photo):
    sim = LowLightSimulator(seed=0)
    lum0 = mean_luminance(photo)
    ratios, shots, reads, lums = [], [], [], []
    for _ in range(200):
        lums.append(mean_luminance(sim(photo)) / lum0)
        p = sim.last_params
        ratios.append(p["ratio"])
        shots.append(p["shot"])
        reads.append(p["read"])
    ratios, shots, reads = map(np.asarray, (ratios, shots, reads))
    assert np.median(lums) < 0.5
    assert ratios.min() >= 2.0 and np.mean(ratios <= 20.0) > 0.9 and ratios.max() <= 100.0
    assert 1e-4 <= shots.min() and shots.max() <= 1.2e-2
    # Brooks et al. 2019: log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26^2)
    slope, intercept = np.polyfit(np.log(shots), np.log(reads), 1)
    assert slope == pytest.approx(2.18, abs=0.1) and intercept == pytest.approx(1.2, abs=1.0)


def test_presets_and_range_checks(photo):
    assert {"default", "mild", "extreme"} <= set(PRESETS)
    mild = LowLightSimulator.from_preset("mild", seed=0)
    extreme = LowLightSimulator.from_preset("extreme", seed=0)
    lm = np.mean([mean_luminance(mild(photo)) for _ in range(30)])
    le = np.mean([mean_luminance(extreme(photo)) for _ in range(30)])
    assert lm > le
    quiet = LowLightSimulator.from_preset("exposure_only", seed=0)
    quiet(photo)
    assert quiet.last_params["shot"] == 0 and quiet.last_params["read"] == 0
    with pytest.raises(TypeError, match="unknown range"):
        LowLightSimulator(exposure=(1, 2))
    with pytest.raises(ValueError, match="low > high"):
        LowLightSimulator(ratio=(10, 2))
    with pytest.raises(ValueError, match="preset"):
        LowLightSimulator.from_preset("nope")


def test_motion_blur_kernel_is_a_normalised_line():
    k = motion_blur_kernel(7, 0)
    assert k.shape == (7, 7) and k.sum() == pytest.approx(1.0)
    assert np.count_nonzero(k[3]) == 7 and np.count_nonzero(k) == 7  # horizontal line through the centre
    assert np.count_nonzero(motion_blur_kernel(1, 30)) == 1


# --- the batched torch path -----------------------------------------------------------------------------------


def test_simulate_batch_shape_device_dtype_and_seed(photo):
    x = to_tensor(photo)[None].repeat(6, 1, 1, 1)
    y1 = simulate_batch(x, torch.Generator().manual_seed(0))
    y2 = simulate_batch(x, torch.Generator().manual_seed(0))
    assert y1.shape == x.shape and y1.dtype == x.dtype and y1.device == x.device
    assert float(y1.min()) >= 0 and float(y1.max()) <= 1
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    assert not torch.equal(y1[0], y1[1])  # per-sample parameters
    assert torch.allclose(y1 * 255, torch.round(y1 * 255), atol=1e-4)  # 8-bit levels
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        simulate_batch(x[0])
    with pytest.raises(TypeError, match="unknown range"):
        simulate_batch(x, foo=1)


def test_simulate_batch_matches_the_numpy_distribution(photo):
    n = 300
    sim = LowLightSimulator(seed=0, p_jpeg=0.0)
    lum0 = mean_luminance(photo)
    np_ratio = np.array([mean_luminance(sim(photo)) / lum0 for _ in range(n)])
    x = to_tensor(photo)[None].repeat(n, 1, 1, 1)
    y, params = simulate_batch(x, torch.Generator().manual_seed(0), return_params=True)
    t_ratio = (mean_luminance(y) / mean_luminance(x)).numpy()
    q = [0.1, 0.25, 0.5, 0.75, 0.9]
    np.testing.assert_allclose(np.quantile(np.log(t_ratio), q), np.quantile(np.log(np_ratio), q), atol=0.3)
    # the parameters themselves follow the same laws
    assert np.median(np.log(params["ratio"].numpy())) == pytest.approx(np.log(np.sqrt(2 * 20)), abs=0.25)
    slope = np.polyfit(np.log(params["shot"].numpy()), np.log(params["read"].numpy()), 1)[0]
    assert slope == pytest.approx(2.18, abs=0.1)


def test_simulate_batch_noise_variance_matches_numpy():
    # flat grey, fixed exposure and noise level: the noise variance in linear light must agree
    flat = np.full((64, 64, 3), 170, np.uint8)
    fixed = {"ratio": (4.0, 4.0), "p_extreme": 0.0, "shot": (5e-3, 5e-3), "read_sigma": 0.0, "cast": 0.0}
    fixed |= {"p_row": 0.0, "p_gain": 0.0, "p_blur": 0.0, "p_jpeg": 0.0}
    sim = LowLightSimulator(seed=0, **fixed)
    v_np = np.mean([srgb_to_linear(sim(flat)[..., 1] / 255.0).var() for _ in range(20)])
    x = to_tensor(flat)[None].repeat(20, 1, 1, 1)
    y = simulate_batch(x, torch.Generator().manual_seed(0), **fixed)
    v_t = float(srgb_to_linear(y[:, 1].double()).var(dim=(1, 2)).mean())
    signal = srgb_to_linear(170 / 255.0) / 4.0
    read = np.exp(2.18 * np.log(5e-3) + 1.2)
    assert v_np == pytest.approx(5e-3 * signal + read, rel=0.1)
    assert v_t == pytest.approx(v_np, rel=0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_simulate_batch_runs_on_cuda_with_a_cpu_generator(photo):
    x = to_tensor(photo)[None].repeat(4, 1, 1, 1).cuda()
    y = simulate_batch(x, torch.Generator().manual_seed(0))
    assert y.device == x.device and y.shape == x.shape


def test_transfer_refuses_integer_images():
    with pytest.raises(TypeError, match="255"):
        srgb_to_linear(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(TypeError, match="255"):
        linear_to_srgb(torch.zeros(3, dtype=torch.uint8))
