"""deploy: full-resolution alpha at any size, guided upsampling, cut-outs, safe loading, brightness routing,
and the input/output checks (NaN, out-of-range floats, tiny photos, broken models, fp16 on a CPU)."""

import cv2
import numpy as np
import pytest
import torch

from lowlight_matting import deploy
from lowlight_matting.checkpoint import CheckpointError, save_checkpoint
from lowlight_matting.deploy import (
    AutoMatter,
    Matter,
    guided_filter,
    guided_upsample,
    image_brightness,
    load_matter,
    resize_bilinear_rows,
    threshold_between,
)
from lowlight_matting.models import build_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("test_convnext").eval()


def constant_model(value: float):
    """A tiny model whose alpha is ~``value`` everywhere (to tell two models apart)."""
    m = build_model("test_convnext").eval()
    with torch.no_grad():
        m.head.coarse.weight.zero_()
        m.head.coarse.bias.fill_(float(np.log(value / (1 - value))))
    return m


def hair_scene(h=600, w=800, seed=0):
    """A disc with thin anti-aliased strands, uniform foreground colour over a colour gradient."""
    rng = np.random.default_rng(seed)
    alpha = np.zeros((h, w), np.float32)
    cv2.circle(alpha, (w // 2, h // 2 + 60), h // 4, 1.0, -1)
    for _ in range(60):
        x0 = int(rng.integers(w // 4, 3 * w // 4))
        end = (int(x0 + rng.uniform(-150, 150)), int(rng.uniform(20, h // 3)))
        cv2.line(alpha, (x0, h // 2), end, 1.0, 1, cv2.LINE_AA)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.6)  # soft, partly transparent strands and edges
    fg = np.array([0.85, 0.6, 0.3], np.float32)
    bg = np.linspace(0.05, 0.6, w, dtype=np.float32)[None, :, None] * np.array([0.3, 0.6, 1.0], np.float32)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return np.round(image * 255).astype(np.uint8), alpha


@pytest.mark.parametrize("shape", [(31, 17), (300, 201), (1, 5), (2000, 3000)])
def test_predict_returns_the_input_size(model, shape):
    matter = Matter(model, device="cpu", long_side=64, foreground="none")
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    alpha = matter.predict(image)
    assert alpha.shape == shape and alpha.dtype == np.float32
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    h, w = matter.working_size(*shape)
    assert max(h, w) <= 64  # the network never sees the full 6-megapixel image


def test_working_size_and_stride(model):
    matter = Matter(model, long_side=500)
    assert matter.stride == max(model.encoder.reductions) == 32
    assert matter.long_side % matter.stride == 0
    assert deploy.working_size(3000, 2000, 512) == (512, 341)
    assert deploy.working_size(100, 61, 512) == (100, 61)  # never upscaled


def test_predict_accepts_grey_rgba_16bit_and_float(model):
    matter = Matter(model, long_side=64)
    rgb = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    ref = matter.predict(rgb)
    np.testing.assert_allclose(matter.predict(np.dstack([rgb, np.zeros((40, 50), np.uint8)])), ref)
    np.testing.assert_allclose(matter.predict(rgb.astype(np.uint16) * 257), ref)
    np.testing.assert_allclose(matter.predict(rgb / 255.0), ref, atol=1e-6)
    assert matter.predict(rgb[:, :, 0]).shape == (40, 50)
    with pytest.raises(ValueError, match="image"):
        matter.predict(np.zeros((4, 4, 2), np.uint8))


def test_predict_batch_matches_predict(model):
    matter = Matter(model, long_side=64)
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, s, dtype=np.uint8) for s in [(64, 64, 3), (40, 50, 3), (64, 64, 3)]]
    batch = matter.predict_batch(images, batch_size=2)
    for im, a in zip(images, batch, strict=True):
        np.testing.assert_allclose(a, matter.predict(im), atol=1e-5)


def test_resize_rows_matches_opencv():
    m = np.random.default_rng(0).random((37, 53, 4)).astype(np.float32)
    full = cv2.resize(m, (211, 149), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(resize_bilinear_rows(m, 149, slice(20, 90), width=211), full[20:90], atol=1e-5)


def test_guided_filter_keeps_guide_edges_and_tends_to_box_blur():
    g = np.zeros((32, 32), np.float32)
    g[:, 16:] = 1
    noisy = g + np.random.default_rng(0).normal(0, 0.05, g.shape).astype(np.float32)
    q = guided_filter(g, noisy, radius=3, eps=1e-4)
    assert np.abs(q - g).mean() < np.abs(noisy - g).mean() / 2  # denoised ...
    assert q[:, 15].mean() < 0.2 and q[:, 16].mean() > 0.8  # ... with the edge kept sharp
    blur = guided_filter(g, noisy, radius=1, eps=1e6)
    box = deploy.box_mean(deploy.box_mean(noisy, 1), 1)
    np.testing.assert_allclose(blur, box, atol=1e-3)


@pytest.mark.parametrize("dark", [False, True])
def test_guided_upsampling_recovers_hair_that_bilinear_blurs(dark):
    image, alpha = hair_scene()
    if dark:  # the guide is normalised, so a dark photo works as well
        image = np.round(image * 0.06).astype(np.uint8)
    h, w = deploy.working_size(*alpha.shape, 200)
    alpha_lo = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)
    bilinear = cv2.resize(alpha_lo, alpha.shape[::-1], interpolation=cv2.INTER_LINEAR)
    guided = guided_upsample(image, alpha_lo)
    assert guided.shape == alpha.shape and 0 <= guided.min() and guided.max() <= 1
    err_b, err_g = np.abs(bilinear - alpha).mean(), np.abs(guided - alpha).mean()
    assert err_g < 0.5 * err_b, (err_g, err_b)


def test_guided_upsampling_is_independent_of_the_strip_size():
    image, alpha = hair_scene(200, 300)
    lo = cv2.resize(alpha, (75, 50), interpolation=cv2.INTER_AREA)
    one = guided_upsample(image, lo, strip_pixels=10**9)
    np.testing.assert_allclose(guided_upsample(image, lo, strip_pixels=1000), one, atol=1e-5)


def test_cutout_is_rgba_with_the_predicted_alpha(model):
    image = np.random.default_rng(3).integers(0, 256, (45, 67, 3), dtype=np.uint8)
    fast = Matter(model, long_side=32, foreground="none")
    rgba = fast.cutout(image)
    assert rgba.shape == (45, 67, 4) and rgba.dtype == np.uint8
    np.testing.assert_array_equal(rgba[:, :, :3], image)
    np.testing.assert_array_equal(rgba[:, :, 3], np.round(fast.predict(image) * 255).astype(np.uint8))
    ml = Matter(model, long_side=32, foreground="ml").cutout(image)
    np.testing.assert_array_equal(ml[:, :, 3], rgba[:, :, 3])


def test_foreground_estimation_removes_background_bleed():
    image, alpha = hair_scene(120, 160)
    fg_true = np.array([0.85, 0.6, 0.3]) * 255
    edge = (alpha > 0.1) & (alpha < 0.9)
    fg = deploy.estimate_foreground(image, alpha)
    err_raw = np.abs(image[edge].astype(float) - fg_true).mean()
    err_est = np.abs(fg[edge].astype(float) - fg_true).mean()
    assert err_est < 0.5 * err_raw


def test_load_matter_from_checkpoint_and_weights_agree(model, tmp_path):
    from lowlight_matting.export import save_weights

    ckpt = save_checkpoint(tmp_path / "m.pt", {"model": model.state_dict(), "model_config": model.config})
    weights = save_weights(model, tmp_path / "m.safetensors")
    image = np.random.default_rng(4).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    a = load_matter(ckpt, device="cpu", long_side=64).predict(image)
    b = load_matter(weights, device="cpu", long_side=64).predict(image)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a, Matter(model, long_side=64).predict(image), atol=1e-6)


def test_load_matter_refuses_code_in_a_checkpoint(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "model_config": {}, "hook": print}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_matter(path)


def test_precision_choices(model):
    cpu = Matter(model, device="cpu", long_side=64)
    assert cpu.autocast_dtype is None  # auto: fp32 on CPU
    with pytest.raises(ValueError, match="fp16"):
        Matter(model, device="cpu", precision="fp16")  # refused once, at construction, not per photo
    bf16 = Matter(model, device="cpu", long_side=64, precision="bf16")
    assert bf16.autocast_dtype == torch.bfloat16
    image = np.random.default_rng(5).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    np.testing.assert_allclose(bf16.predict(image), cpu.predict(image), atol=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_matches_cpu(model):  # pragma: no cover - runs on GPU machines only
    image = np.random.default_rng(6).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    gpu = Matter(model, device="cuda", long_side=128)
    assert gpu.autocast_dtype == (torch.bfloat16 if torch.cuda.is_bf16_supported() else None)
    np.testing.assert_allclose(
        gpu.predict(image), Matter(model, device="cpu", long_side=128).predict(image), atol=0.05
    )
    model.cpu()


def test_brightness_is_mean_linear_luminance():
    from lowlight_matting.color import luminance, mean_luminance

    image = np.random.default_rng(7).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    assert image_brightness(image) == mean_luminance(image)  # the one definition, not a twin
    assert image_brightness(image, "percentile", 50) == pytest.approx(float(np.median(luminance(image))))
    assert image_brightness(image // 8) < image_brightness(image)
    lamp = np.zeros((100, 100, 3), np.uint8)
    lamp[:3, :3] = 255  # a street lamp in a dark scene
    assert image_brightness(lamp, "percentile", 75) < image_brightness(lamp)


def test_the_router_uses_the_packages_one_meaning_of_dark():
    from lowlight_matting.color import DARK_THRESHOLD, is_dark

    normal = Matter(constant_model(0.1), long_side=32, foreground="none")
    auto = AutoMatter(normal, normal)
    assert auto.threshold == DARK_THRESHOLD and not hasattr(deploy, "DEFAULT_THRESHOLD")
    rng = np.random.default_rng(8)
    routes = set()
    for scale in (0.2, 0.3, 0.35, 0.5, 1.0):  # photos on both sides of the cut
        image = np.round(rng.integers(0, 256, (16, 16, 3)) * scale).astype(np.uint8)
        routes.add(auto.route(image).name)
        assert (auto.route(image).name == "lowlight") == is_dark(image)
    assert routes == {"normal", "lowlight"}
    # the demo's "as deployed" numbers pick each photo's value by the same rule as the router
    from lowlight_matting.evaluation import switch_by_brightness

    images = [np.round(rng.integers(0, 256, (16, 16, 3)) * s).astype(np.uint8) for s in (0.2, 0.3, 0.5, 1.0)]
    picked = switch_by_brightness([0.0] * 4, [1.0] * 4, [image_brightness(im) for im in images])
    assert picked.tolist() == [float(auto.route(im).name == "lowlight") for im in images]
    assert 0 < picked.sum() < 4
    with pytest.raises(ValueError, match="one length"):
        switch_by_brightness([0.0], [1.0, 2.0], [0.1])
    for bad in (0.0, 1.0, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            AutoMatter(normal, normal, threshold=bad)


def test_auto_matter_routes_dark_photos_to_the_lowlight_model():
    normal = Matter(constant_model(0.1), long_side=32, foreground="none", name="normal")
    low = Matter(constant_model(0.9), long_side=32, foreground="none", name="lowlight")
    auto = AutoMatter(normal, low)
    from lowlight_matting.data import load_samples
    from lowlight_matting.simulate import LowLightSimulator

    photo = load_samples("test", n=1)[0]["image"]
    photo = np.clip(photo.astype(np.float32) * 1.5 + 40, 0, 255).astype(np.uint8)  # a well-lit photo
    dark = LowLightSimulator(seed=0).apply(photo, ratio=20.0)
    alpha, route = auto.predict_with_route(dark)
    assert route.name == "lowlight" and route.brightness < route.threshold
    assert "<" in route.reason and alpha.mean() > 0.8  # the low-light model's answer
    assert auto.predict(photo).mean() < 0.2
    assert auto.last_route.name == "normal" and auto.last_route.brightness >= auto.threshold
    assert auto.counts == {"normal": 1, "lowlight": 1}
    rgba = auto.cutout(dark)
    assert rgba[:, :, 3].mean() > 200 and auto.last_route.name == "lowlight"


def test_threshold_between_separates_and_orders():
    t, acc = threshold_between([0.2, 0.3, 0.5, 0.25], [0.01, 0.02, 0.04])
    assert 0.04 < t < 0.2 and acc == 1.0
    t2, acc2 = threshold_between([0.05, 0.2, 0.3], [0.01, 0.1, 0.02])
    assert 0.0 < acc2 < 1.0 and 0.02 < t2 < 0.2


def test_calibration_puts_the_cut_between_normal_and_simulated_low_light():
    cal = deploy.calibrate_threshold(n_synthetic=8, return_details=True)
    assert np.median(cal.lowlight) < cal.threshold < np.median(cal.normal)
    assert cal.balanced_accuracy == deploy.balanced_accuracy(cal.normal, cal.lowlight, cal.threshold) > 0.6


def test_noisy_photos_fall_back_to_bilinear_upsampling(model):
    from lowlight_matting.simulate import LowLightSimulator

    image, _ = hair_scene(200, 300)
    noisy = LowLightSimulator.apply(image, ratio=10.0, shot=0.005, read=1e-4, noise_seed=1)
    matter = Matter(model, long_side=64, foreground="none")
    size = matter.working_size(200, 300)
    assert deploy.guide_noise(noisy, size) > matter.noise_limit > deploy.guide_noise(image, size)
    matter.predict(image)
    assert matter.last_upsample == "guided"
    alpha = matter.predict(noisy)
    assert matter.last_upsample == "bilinear"
    lo = matter.predict_lowres(noisy)
    np.testing.assert_allclose(
        alpha, np.clip(cv2.resize(lo, (300, 200), interpolation=cv2.INTER_LINEAR), 0, 1), atol=1e-6
    )


def test_float_images_must_be_finite_and_in_the_unit_range(model):
    matter = Matter(model, long_side=32, foreground="none")
    image = np.random.default_rng(9).random((20, 24, 3)).astype(np.float32)
    assert matter.predict(image).shape == (20, 24)
    for bad, words in [
        (np.where(image > 0.5, np.nan, image), "NaN"),
        (np.full((20, 24, 3), np.inf, np.float32), "NaN or infinite"),
        (image * 255.0, "divide uint8 values by 255"),  # used to be clipped to white without a word
        (image - 0.5, r"\[0, 1\]"),
    ]:
        with pytest.raises(ValueError, match=words):
            matter.predict(bad)
    with pytest.raises(ValueError, match="dtype"):
        matter.predict(np.zeros((4, 4, 3), np.int32))


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 1), (3, 1)])
def test_tiny_photos_get_a_cutout_with_foreground_estimation(model, shape):
    """A 1x1 photo used to fail in pymatting with "division by zero"."""
    image = np.full((*shape, 3), (200, 120, 40), np.uint8)
    rgba = Matter(model, long_side=32, foreground="ml").cutout(image)
    assert rgba.shape == (*shape, 4)
    np.testing.assert_array_equal(rgba[..., :3], image)  # a uniform photo: its own colour is the foreground


def test_a_model_that_outputs_nan_is_an_error_not_a_transparent_cutout():
    broken = build_model("test_convnext").eval()
    with torch.no_grad():
        broken.head.coarse.bias.fill_(float("nan"))
    matter = Matter(broken, long_side=32, foreground="none", name="broken")
    with pytest.raises(ValueError, match="'broken' produced NaN"):
        matter.predict(np.zeros((40, 40, 3), np.uint8))


def test_checkpoints_with_non_finite_weights_are_refused(model, tmp_path):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["head.coarse.weight"][0, 0] = float("nan")
    path = save_checkpoint(tmp_path / "nan.pt", {"model": state, "model_config": model.config})
    with pytest.raises(CheckpointError, match=r"nan\.pt: weight 'head\.coarse\.weight' holds non-finite"):
        load_matter(path)


def test_matter_pads_to_the_models_stride_including_the_llie_scale():
    m = build_model("test_convnext", llie="zero_dce_pp", llie_scale_factor=3).eval()
    assert m.stride == 96 and deploy.model_stride(m) == 96  # lcm(32, 3): the LLIE sees whole pixels
    matter = Matter(m, long_side=100, foreground="none")
    assert matter.stride == 96 and matter.long_side == 96
    assert matter.predict(np.zeros((5, 7, 3), np.uint8)).shape == (5, 7)
    with pytest.raises(ValueError, match="stride"):
        Matter(m, stride=10**9)  # a file's metadata must not choose the padding
