"""lowlight_matting.simulate: sensor noise statistics, the article's recipe and its flaws, the physical
simulator (seeding, determinism, presets), the one parameter law against its table, and the batched torch path
against the NumPy path (same law, same steps)."""

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from scipy import stats

from lowlight_matting.color import mean_luminance, srgb_to_linear
from lowlight_matting.simulate import (
    DEFAULT_RANGES,
    SIMULATOR_PRESETS,
    LowLightSimulator,
    add_sensor_noise,
    apply_batch,
    motion_blur_kernel,
    motion_blur_kernels,
    sample_params,
    sample_params_torch,
    simulate_batch,
    simulate_low_light,
)


@pytest.fixture(scope="module")
def photo():
    return cv2.resize(skimage.data.astronaut(), (48, 48), interpolation=cv2.INTER_AREA)


def to_tensor(img):
    return torch.from_numpy(img).permute(2, 0, 1).float().div(255.0)


def to_u8(batch):
    return (batch.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()


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


def test_default_distribution_darkens(photo):
    sim = LowLightSimulator(seed=0)
    lum0 = mean_luminance(photo)
    lums = [mean_luminance(sim(photo)) / lum0 for _ in range(100)]
    assert np.median(lums) < 0.5


def test_presets_and_range_checks(photo):
    mild = LowLightSimulator.from_preset("mild", seed=0)
    extreme = LowLightSimulator.from_preset("extreme", seed=0)
    lm = np.mean([mean_luminance(mild(photo)) for _ in range(30)])
    le = np.mean([mean_luminance(extreme(photo)) for _ in range(30)])
    assert lm > le
    quiet = LowLightSimulator.from_preset("exposure_only", seed=0)
    quiet(photo)
    assert quiet.last_params["shot"] == 0 and quiet.last_params["read"] == 0
    assert LowLightSimulator.from_preset("mild", seed=0).ranges["ratio"] == SIMULATOR_PRESETS["mild"]["ratio"]
    with pytest.raises(TypeError, match="unknown range"):
        LowLightSimulator(exposure=(1, 2))
    with pytest.raises(ValueError, match=r"^LowLightSimulator: range ratio=\(10, 2\) has low > high$"):
        LowLightSimulator(ratio=(10, 2))
    with pytest.raises(ValueError, match="p_jpeg"):
        LowLightSimulator(p_jpeg=1.5)
    with pytest.raises(ValueError, match="jpeg_quality"):
        LowLightSimulator(jpeg_quality=(0, 90))
    with pytest.raises(ValueError, match="unknown name 'nope'"):
        LowLightSimulator.from_preset("nope")


def test_motion_blur_kernel_is_a_normalised_line():
    k = motion_blur_kernel(7, 0)
    assert k.shape == (7, 7) and k.sum() == pytest.approx(1.0)
    assert np.count_nonzero(k[3]) == 7 and np.count_nonzero(k) == 7  # horizontal line through the centre
    for length in (0.0, 1.0):  # no blur: the identity, whatever the angle and the kernel side
        np.testing.assert_array_equal(motion_blur_kernel(length, 30, size=5), np.pad([[1.0]], 2))


def test_batched_kernels_are_the_numpy_kernel_padded():
    lengths, angles = [3.0, 5.5, 8.9, 1.0, 0.0], [0.0, 33.0, 101.0, 170.0, 45.0]
    k = motion_blur_kernels(torch.tensor(lengths), torch.tensor(angles), 11).numpy()
    for i, (length, angle) in enumerate(zip(lengths, angles, strict=True)):
        ref = motion_blur_kernel(length, angle)
        pad = (11 - ref.shape[0]) // 2
        np.testing.assert_allclose(k[i], np.pad(ref, pad), atol=1e-6)


# --- the one law, against its table -----------------------------------------------------------------------------

N_DRAWS = 3000
SCALARS = ("ratio", "shot", "read", "row_std", "gain", "blur_length", "blur_angle", "jpeg_quality")


def numpy_draws(n=N_DRAWS, seed=0, **ranges):
    rng = np.random.default_rng(seed)
    draws = [sample_params(rng, **ranges) for _ in range(n)]
    out = {k: np.array([d[k] for d in draws], np.float64) for k in SCALARS}
    out["wb"] = np.array([d["wb"] for d in draws])
    out["gamma"] = np.array([d["gamma"] for d in draws])
    return out


def torch_draws(n=N_DRAWS, seed=0, **ranges):
    p = sample_params_torch(n, torch.Generator().manual_seed(seed), **ranges)
    return {k: v.double().numpy() for k, v in p.items()}


def law_pvalues(d, table=DEFAULT_RANGES):
    """p-values of the draws ``d`` against the laws the table states (KS, binomial and chi-square tests)."""
    t = table
    lr, le = np.log(t["ratio"]), np.log(t["extreme_ratio"])
    pe = t["p_extreme"]

    def ratio_cdf(x):
        lx = np.log(x)
        return (1 - pe) * np.clip((lx - lr[0]) / (lr[1] - lr[0]), 0, 1) + pe * np.clip(
            (lx - le[0]) / (le[1] - le[0]), 0, 1
        )

    def share(on, p):
        return stats.binomtest(int(on.sum()), on.size, p).pvalue

    residual = np.log(d["read"]) - t["read_slope"] * np.log(d["shot"]) - t["read_intercept"]
    row_on, gain_on = d["row_std"] > 0, d["gain"] != 1.0
    blur_on, jpeg_on = d["blur_length"] > 0, d["jpeg_quality"] > 0
    q_lo, q_hi = t["jpeg_quality"]
    counts = np.bincount(d["jpeg_quality"][jpeg_on].astype(int) - q_lo, minlength=q_hi - q_lo + 1)
    return {
        "ratio": stats.kstest(d["ratio"], ratio_cdf).pvalue,
        "shot": stats.kstest(d["shot"], stats.loguniform(*t["shot"]).cdf).pvalue,
        "read": stats.kstest(residual, stats.norm(0, t["read_sigma"]).cdf).pvalue,
        "p_row": share(row_on, t["p_row"]),
        "row": stats.kstest(
            d["row_std"][row_on] / np.sqrt(d["read"][row_on]),
            stats.uniform(t["row"][0], np.ptp(t["row"])).cdf,
        ).pvalue,
        "cast": stats.kstest(
            np.log(d["wb"][:, [0, 2]]).ravel(), stats.uniform(-t["cast"], 2 * t["cast"]).cdf
        ).pvalue,
        "p_gain": share(gain_on, t["p_gain"]),
        "gain_power": stats.kstest(
            np.log(d["gain"][gain_on]) / np.log(d["ratio"][gain_on]),
            stats.uniform(t["gain_power"][0], np.ptp(t["gain_power"])).cdf,
        ).pvalue,
        "p_blur": share(blur_on, t["p_blur"]),
        "blur_length": stats.kstest(
            d["blur_length"][blur_on], stats.uniform(t["blur_length"][0], np.ptp(t["blur_length"])).cdf
        ).pvalue,
        "blur_angle": stats.kstest(d["blur_angle"], stats.uniform(0, 180).cdf).pvalue,
        "p_jpeg": share(jpeg_on, t["p_jpeg"]),
        "jpeg_quality": stats.chisquare(counts).pvalue,
    }


@pytest.mark.parametrize("draw", [numpy_draws, torch_draws], ids=["numpy", "torch"])
def test_each_backend_draws_the_law_of_the_table(draw):
    d = draw()
    pvalues = law_pvalues(d)
    assert min(pvalues.values()) > 1e-3, pvalues
    np.testing.assert_array_equal(d["wb"][:, 1], 1.0)  # green is the reference channel
    np.testing.assert_array_equal(d["gamma"], 1.0)  # the default tone range is (1, 1)


@pytest.mark.parametrize(
    ("change", "name"),
    [({"ratio": (2.0, 30.0)}, "ratio"), ({"read_slope": 2.0}, "read"), ({"p_jpeg": 0.4}, "p_jpeg")],
)
def test_the_table_check_fails_when_a_law_changes(change, name):
    # the same checks, on draws from a changed table: the changed parameter is caught
    assert law_pvalues(numpy_draws(**change))[name] < 1e-6


def test_both_backends_draw_each_parameter_from_the_same_distribution():
    a, b = numpy_draws(seed=1), torch_draws(seed=1)
    pvalues = {k: stats.ks_2samp(a[k], b[k]).pvalue for k in SCALARS}
    pvalues["wb"] = stats.ks_2samp(a["wb"][:, 0], b["wb"][:, 0]).pvalue
    assert min(pvalues.values()) > 1e-3, pvalues
    # and a change of one range on one backend is detected by the same comparison
    for change, name in [({"ratio": (2.0, 30.0)}, "ratio"), ({"p_jpeg": 0.4}, "jpeg_quality")]:
        assert stats.ks_2samp(a[name], torch_draws(seed=1, **change)[name]).pvalue < 1e-6


# --- the batched torch path ------------------------------------------------------------------------------------


def stack_params(draws):
    """NumPy parameter dicts -> the per-sample tensors apply_batch takes (noise_seed dropped)."""
    keys = [k for k in draws[0] if k != "noise_seed"]
    return {k: torch.tensor([d[k] for d in draws]) for k in keys}


def test_batched_path_applies_the_same_steps_as_numpy(photo):
    # noise off, everything else on: white balance, blur, exposure, gain, tone, rounding and JPEG must agree
    rng = np.random.default_rng(0)
    ranges = {"p_blur": 0.5, "blur_length": (3.0, 12.0), "p_gain": 0.5, "p_jpeg": 0.5, "gamma": (0.8, 1.3)}
    draws = [sample_params(rng, **ranges) | {"shot": 0.0, "read": 0.0, "row_std": 0.0} for _ in range(8)]
    # samples with and without JPEG, and with and without blur (a sample without blur must stay sharp)
    assert 0 < sum(d["jpeg_quality"] > 0 for d in draws) < 8
    assert 0 < sum(d["blur_length"] > 0 for d in draws) < 8
    x = to_tensor(photo)[None].repeat(8, 1, 1, 1)
    out = to_u8(apply_batch(x, stack_params(draws), blur_size=13))
    for i, p in enumerate(draws):
        # equal up to float rounding: the blur sums in another order than OpenCV's, so a value on a rounding
        # boundary can round the other way (and JPEG spreads that over its block); a missing or different
        # step changes most pixels
        diff = np.abs(out[i].astype(int) - LowLightSimulator.apply(photo, **p))
        assert diff.max() <= 4 and (diff > 0).mean() < 1e-3, (i, p, diff.max(), (diff > 0).mean())


def test_simulate_batch_jpeg_encodes_exactly_the_drawn_samples(photo):
    # no noise: the batched output must be the NumPy simulator's output for the returned parameters
    ranges = {**SIMULATOR_PRESETS["exposure_only"], "p_jpeg": 0.5}
    x = to_tensor(photo)[None].repeat(12, 1, 1, 1)
    y, params = simulate_batch(x, torch.Generator().manual_seed(3), return_params=True, **ranges)
    q = params["jpeg_quality"]
    assert 0 < int((q > 0).sum()) < 12
    out = to_u8(y)
    for i in range(12):
        p = {"ratio": float(params["ratio"][i]), "wb": params["wb"][i].tolist(), "jpeg_quality": int(q[i])}
        np.testing.assert_array_equal(out[i], LowLightSimulator.apply(photo, **p), err_msg=f"sample {i}")


def test_simulate_batch_shape_device_dtype_and_seed(photo):
    x = to_tensor(photo)[None].repeat(6, 1, 1, 1)
    y1 = simulate_batch(x, torch.Generator().manual_seed(0))
    y2 = simulate_batch(x, torch.Generator().manual_seed(0))
    assert y1.shape == x.shape and y1.dtype == x.dtype and y1.device == x.device
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    assert not torch.equal(y1[0], y1[1])  # per-sample parameters
    assert torch.allclose(y1 * 255, torch.round(y1 * 255), atol=1e-4)  # 8-bit levels
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        simulate_batch(x[0])
    with pytest.raises(TypeError, match="simulate_batch: unknown range"):
        simulate_batch(x, foo=1)
    with pytest.raises(ValueError, match=r"^simulate_batch: range ratio=\(10, 2\) has low > high$"):
        simulate_batch(x, ratio=(10, 2))
    with pytest.raises(TypeError, match="noise_seed"):
        apply_batch(x, {"noise_seed": 1})
    with pytest.raises(ValueError, match="^apply_batch: blur_size must be"):
        apply_batch(x, {}, blur_size=4)


def test_simulate_batch_matches_the_numpy_output_distribution(photo):
    n = 300
    sim = LowLightSimulator(seed=0)
    lum0 = mean_luminance(photo)
    np_ratio = np.array([mean_luminance(sim(photo)) / lum0 for _ in range(n)])
    x = to_tensor(photo)[None].repeat(n, 1, 1, 1)
    y = simulate_batch(x, torch.Generator().manual_seed(0))
    t_ratio = (mean_luminance(y) / mean_luminance(x)).numpy()
    assert stats.ks_2samp(np.log(np_ratio), np.log(t_ratio)).pvalue > 1e-3
    # the comparison has the power to see a changed exposure range
    y_changed = simulate_batch(x, torch.Generator().manual_seed(0), ratio=(3.0, 30.0))
    changed = (mean_luminance(y_changed) / mean_luminance(x)).numpy()
    assert stats.ks_2samp(np.log(np_ratio), np.log(changed)).pvalue < 1e-6


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
    y = simulate_batch(x, torch.Generator().manual_seed(0), p_jpeg=0.5)
    assert y.device == x.device and y.shape == x.shape
    torch.testing.assert_close(y.cpu(), simulate_batch(x.cpu(), torch.Generator().manual_seed(0), p_jpeg=0.5))
