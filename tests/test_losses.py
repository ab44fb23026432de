"""Behaviour of the matting losses: the article's formulas (unnormalised Sobel edge term, SSIM as skimage
computes it), zero at the truth and positive elsewhere, gradients that match float64 (also under bf16
autocast), images smaller than the SSIM window, a composition weight that cannot be silently dropped, and a
per-sample dynamic weight that uses the package's one meaning of "dark" without host synchronisation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from lowlight_matting import losses as L
from lowlight_matting.color import DARK_THRESHOLD, mean_luminance


def _matte(seed, b=2, size=32, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    r = torch.rand(b, 1, 1, 1, generator=g) * 0.4 + 0.3
    soft = torch.sigmoid((r - (xx**2 + yy**2).sqrt()) * 20)  # a disc with a soft edge
    return (soft + 0.05 * torch.rand(b, 1, size, size, generator=g)).clamp(0, 1).to(dtype)


def _rgb(seed, b=2, size=32, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, size, size, generator=g) * scale


def _grey(srgb, b=1, size=8):
    return torch.full((b, 3, size, size), float(srgb))


PAIR_LOSSES = {
    "alpha_mse": L.alpha_mse,
    "alpha_l1": L.alpha_l1,
    "ssim_loss": L.ssim_loss,
    "sobel_edge_loss": L.sobel_edge_loss,
    "laplacian_loss": L.laplacian_loss,
}


# ------------------------------------------------------------------------------ zero at the truth, > 0 off it
@pytest.mark.parametrize("name", sorted(PAIR_LOSSES))
def test_zero_for_perfect_prediction_positive_otherwise(name):
    fn = PAIR_LOSSES[name]
    gt = _matte(0)
    assert float(fn(gt, gt)) == pytest.approx(0.0, abs=1e-6)
    pred = _matte(1)
    assert float(fn(pred, gt)) > 1e-4
    per = fn(pred, gt, reduction="none")
    assert per.shape == (2,) and bool((per > 1e-4).all())
    assert float(fn(pred, gt, reduction="sum")) == pytest.approx(float(per.sum()), rel=1e-5)


def test_composition_loss_zero_at_truth_and_positive_otherwise():
    gt, fg, bg = _matte(0), _rgb(1), _rgb(2)
    assert float(L.composition_loss(gt, gt, fg, bg)) == pytest.approx(0.0, abs=1e-5)
    image = L.blend(gt, fg, bg)
    assert float(L.composition_loss(gt, gt, fg, bg, image=image)) == pytest.approx(0.0, abs=1e-5)
    assert float(L.composition_loss(_matte(3), gt, fg, bg)) > 1e-3
    # where F == B the alpha is invisible in the composite: no signal
    assert float(L.composition_loss(_matte(3), gt, fg, fg)) == pytest.approx(0.0, abs=1e-5)


def test_every_term_of_the_matting_loss_is_zero_for_a_perfect_prediction():
    gt, fg, bg = _matte(0), _rgb(1), _rgb(2)
    image = torch.cat([_rgb(3, b=1, scale=0.1), _rgb(4, b=1)])  # one dark, one bright input
    crit = L.MattingLoss(mse=1.0, l1=1.0, ssim=1.0, edge=1.5, composition=1.0, laplacian=1.0, dynamic=True)
    total, terms = crit(gt, gt, image=image, fg=fg, bg=bg)
    losses = {k: float(v) for k, v in terms.items() if k != "edge_weight"}
    assert set(losses) == {"mse", "l1", "ssim", "edge", "composition", "laplacian", "total"}
    assert losses == pytest.approx(dict.fromkeys(losses, 0.0), abs=1e-5)
    total, terms = crit(_matte(1), gt, image=image, fg=fg, bg=bg)
    assert all(float(v) > 1e-4 for k, v in terms.items() if k != "edge_weight")


# ------------------------------------------------------------------------------------ the edge term's maths
SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64)


def _article_sobel(x, eps=1e-6):
    """The article's ``EdgeAwareLoss.compute_edge``, written out: ``F.conv2d`` with the unnormalised kernels
    ``S_x`` and ``S_y = S_x^T``, zero padding, ``sqrt(gx^2 + gy^2 + eps)``."""
    kx = SOBEL_X.to(x.dtype).view(1, 1, 3, 3)
    ky = kx.transpose(-1, -2)
    return torch.sqrt(F.conv2d(x, kx, padding=1) ** 2 + F.conv2d(x, ky, padding=1) ** 2 + eps)


def test_sobel_magnitude_is_the_article_formula_on_interior_pixels():
    x = torch.rand(2, 1, 9, 11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = L.sobel_magnitude(x)
    assert ours.shape == x.shape and ours.dtype == torch.float64
    # borders differ by design (replicated, not zero-padded): compare the pixels whose 3x3 window is inside
    torch.testing.assert_close(ours[..., 1:-1, 1:-1], _article_sobel(x)[..., 1:-1, 1:-1], rtol=0, atol=1e-12)


def test_sobel_magnitude_of_a_sharp_step_is_4_and_the_border_has_no_fake_edge():
    a = torch.zeros(1, 1, 6, 8, dtype=torch.float64)
    a[..., 4:] = 1.0
    eps = 1e-6
    want = torch.zeros_like(a)
    want[..., 3:5] = 4.0  # both sides of the boundary; kornia's normalised Sobel would give 0.5
    torch.testing.assert_close(L.sobel_magnitude(a, eps), torch.sqrt(want**2 + eps), rtol=0, atol=1e-12)
    # a matte that fills the frame has no edge anywhere (replicate padding); zero padding would see one
    ones = torch.ones(1, 1, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(
        L.sobel_magnitude(ones, eps), torch.full_like(ones, eps**0.5), rtol=0, atol=1e-12
    )


def test_sobel_edge_loss_is_the_article_edge_term():
    """On mattes with a 2-pixel empty frame both paddings give the same map, so the whole loss must equal the
    article's ``mse(compute_edge(pred), compute_edge(target))`` -- 64x the value of normalised kernels."""
    g = torch.Generator().manual_seed(1)
    pred = torch.zeros(2, 1, 12, 14, dtype=torch.float64)
    gt = torch.zeros_like(pred)
    pred[..., 2:-2, 2:-2] = torch.rand(2, 1, 8, 10, generator=g, dtype=torch.float64)
    gt[..., 2:-2, 2:-2] = torch.rand(2, 1, 8, 10, generator=g, dtype=torch.float64)
    want = ((_article_sobel(pred) - _article_sobel(gt)) ** 2).flatten(1).mean(1)
    torch.testing.assert_close(L.sobel_edge_loss(pred, gt, reduction="none"), want, rtol=1e-12, atol=0)
    torch.testing.assert_close(L.SobelEdgeLoss()(pred, gt), want.mean(), rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------------------------------- SSIM
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-8), (torch.float32, 1e-5)])
def test_ssim_map_agrees_with_skimage_on_interior_pixels(dtype, tol):
    """skimage's Gaussian SSIM (sigma 1.5, truncated at radius 5 = an 11x11 window, population covariance) is
    the reference of Wang et al. 2004; pixels within 5 of the border differ by the padding rule only."""
    g = torch.Generator().manual_seed(2)
    a = torch.rand(1, 1, 24, 20, generator=g, dtype=torch.float64)
    b = (a + 0.3 * torch.rand(1, 1, 24, 20, generator=g, dtype=torch.float64)).clamp(0, 1)
    _, ref = structural_similarity(
        a[0, 0].numpy(),
        b[0, 0].numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        full=True,
    )
    ours = L.ssim_map(a.to(dtype), b.to(dtype))[0, 0].double().numpy()
    np.testing.assert_allclose(ours[5:-5, 5:-5], ref[5:-5, 5:-5], rtol=0, atol=tol)
    assert 0.5 < ref[5:-5, 5:-5].mean() < 0.95  # a pair that is neither identical nor unrelated
    # the loss is the per-sample mean of (1 - SSIM) / 2 over that map
    loss = L.ssim_loss(a.to(dtype), b.to(dtype), reduction="none")
    torch.testing.assert_close(loss, ((1 - L.ssim_map(a.to(dtype), b.to(dtype))) / 2).flatten(1).mean(1))


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (3, 2), (5, 5), (1, 7), (4, 32), (32, 5)])
def test_ssim_loss_on_images_smaller_than_the_window(shape):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 1, *shape, generator=g)
    y = torch.rand(2, 1, *shape, generator=g).requires_grad_(True)
    # float32 rounding of sigma^2 = E[x^2] - mu^2 against C2 = 9e-4 leaves ~1e-6
    assert float(L.ssim_loss(x, x)) == pytest.approx(0.0, abs=1e-5)
    per = L.ssim_loss(y, x, reduction="none")
    assert per.shape == (2,) and bool((per > 1e-3).all())
    per.sum().backward()
    assert y.grad.shape == y.shape and bool(torch.isfinite(y.grad).all()) and float(y.grad.abs().max()) > 0


def test_ssim_window_must_be_odd_and_positive():
    x = _matte(0)
    for bad in (0, 4, -3):
        with pytest.raises(ValueError, match="window_size"):
            L.ssim_loss(x, x, window_size=bad)


# ------------------------------------------------------------------------------------- gradients and dtypes
def _loss_of(name, pred, gt, fg, bg, image):
    if name == "composition":
        return L.composition_loss(pred, gt, fg, bg)
    if name == "matting":
        crit = L.MattingLoss(ssim=0.5, edge=1.5, composition=1.0, laplacian=0.5, l1=0.5)
        return crit(pred, gt, image=image, fg=fg, bg=bg)[0]
    return PAIR_LOSSES[name](pred, gt)


@pytest.mark.parametrize("name", sorted(PAIR_LOSSES) + ["composition", "matting"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_loss_and_gradient_match_float64_in_fp32_and_under_bf16_autocast(name, dtype):
    """The losses compute in float32 whatever the input dtype: under bf16 autocast the loss equals the float64
    loss of the same (bf16-rounded) values to 1e-5, and the gradient comes back in bf16 within 1 %."""
    gt = _matte(0).to(dtype)
    # half flat (the Sobel magnitude's sqrt sits at 0 there, the worst case for its gradient), half textured
    pred = _matte(1)
    pred[..., :16, :] = 0.5
    pred = pred.to(dtype).requires_grad_(True)
    fg, bg, image = _rgb(1), _rgb(2), _rgb(3)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        loss = _loss_of(name, pred, gt, fg, bg, image)
    assert loss.dtype == torch.float32
    loss.backward()
    assert pred.grad is not None and pred.grad.dtype == dtype

    ref_pred = pred.detach().double().requires_grad_(True)
    ref = _loss_of(name, ref_pred, gt.double(), fg.double(), bg.double(), image.double())
    ref.backward()
    assert float(loss.detach()) == pytest.approx(float(ref), rel=1e-5)
    rel_err = float((pred.grad.double() - ref_pred.grad).norm() / ref_pred.grad.norm())
    assert rel_err < (1e-2 if dtype == torch.bfloat16 else 1e-3), rel_err


@pytest.mark.parametrize("size", [(8, 8), (3, 5)])
@pytest.mark.parametrize("name", ["alpha_mse", "sobel_edge_loss", "laplacian_loss", "ssim_loss"])
def test_gradcheck_double(name, size):
    fn = PAIR_LOSSES[name]
    g = torch.Generator().manual_seed(4)
    gt = torch.rand(1, 1, *size, generator=g, dtype=torch.float64)
    pred = torch.rand(1, 1, *size, generator=g, dtype=torch.float64).requires_grad_(True)
    kw = {"levels": 2} if name == "laplacian_loss" else {}  # ssim: the default 11 window, shrunk to fit
    assert torch.autograd.gradcheck(lambda p: fn(p, gt, **kw), (pred,), eps=1e-6, atol=1e-5)


def test_gradcheck_composition_double():
    gt = _matte(0, b=1, size=8).double()
    fg, bg = _rgb(1, b=1, size=8).double(), _rgb(2, b=1, size=8).double()
    pred = _matte(1, b=1, size=8).double().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p: L.composition_loss(p, gt, fg, bg), (pred,), eps=1e-6, atol=1e-5, fast_mode=True
    )


# -------------------------------------------------------------------------------------------------- errors
def test_input_checks_name_the_argument():
    gt = _matte(0)
    with pytest.raises(ValueError, match="pred"):
        L.alpha_mse(torch.rand(2, 3, 32, 32), gt)
    with pytest.raises(ValueError, match="target"):
        L.ssim_loss(gt, torch.rand(2, 32, 32))
    with pytest.raises(TypeError, match="pred"):
        L.sobel_edge_loss(gt.numpy(), gt)
    with pytest.raises(ValueError, match="same shape"):
        L.alpha_l1(gt, gt[:, :, :16])
    with pytest.raises(ValueError, match="fg"):
        L.composition_loss(gt, gt, torch.rand(2, 1, 32, 32), _rgb(0))
    with pytest.raises(ValueError, match="reduction"):
        L.alpha_mse(gt, gt, reduction="avg")
    with pytest.raises(ValueError, match="needs the input image"):
        L.MattingLoss(dynamic=True)(gt, gt)
    with pytest.raises(ValueError, match="weight ssim"):
        L.MattingLoss(ssim=-1)
    with pytest.raises(ValueError, match="every weight is 0"):
        L.MattingLoss(mse=0, ssim=0, edge=0, dynamic=False)


def test_a_composition_weight_without_fg_and_bg_is_a_clear_error():
    pred, gt, fg, bg = _matte(1), _matte(0), _rgb(3), _rgb(4)
    with pytest.raises(ValueError, match="needs the foreground and background"):
        L.MattingLoss(composition=1.0, dynamic=False)(pred, gt)  # was: the term silently left out
    only_comp = L.MattingLoss(mse=0, ssim=0, edge=0, composition=1.0, dynamic=False)
    with pytest.raises(ValueError, match="needs the foreground and background"):
        only_comp(pred, gt, fg=fg)  # was: "stack expects a non-empty TensorList"
    total, terms = only_comp(pred, gt, fg=fg, bg=bg)
    assert set(terms) == {"composition", "total"}
    assert float(total) == pytest.approx(float(L.composition_loss(pred, gt, fg, bg)), rel=1e-6)


def test_modules_match_functions():
    pred, gt = _matte(1), _matte(0)
    fg, bg = _rgb(1), _rgb(2)
    assert torch.equal(L.AlphaMSELoss()(pred, gt), L.alpha_mse(pred, gt))
    assert torch.equal(L.AlphaL1Loss()(pred, gt), L.alpha_l1(pred, gt))
    assert torch.equal(L.SSIMLoss(7)(pred, gt), L.ssim_loss(pred, gt, 7))
    assert torch.equal(L.SobelEdgeLoss()(pred, gt), L.sobel_edge_loss(pred, gt))
    assert torch.equal(L.LaplacianLoss(3)(pred, gt), L.laplacian_loss(pred, gt, 3))
    assert torch.equal(L.CompositionLoss()(pred, gt, fg, bg), L.composition_loss(pred, gt, fg, bg))


# ---------------------------------------------------------------------------------- the dynamic edge weight
def test_dynamic_edge_weight_is_per_sample():
    dark, bright = _rgb(0, b=1, scale=0.2), _rgb(1, b=1, scale=1.0)
    w = L.dynamic_edge_weight(torch.cat([dark, bright, dark]))
    assert w.shape == (3,)
    assert w.tolist() == [3.0, 1.5, 3.0]  # the article's .mean() would give 2.5 to all three
    smooth = L.dynamic_edge_weight(torch.cat([dark, bright]), smooth=True)
    assert 1.5 <= float(smooth[1]) < float(smooth[0]) <= 3.0
    # smooth weight is monotone in brightness
    levels = torch.linspace(0, 1, 21).view(-1, 1, 1, 1).expand(-1, 3, 4, 4)
    sw = L.dynamic_edge_weight(levels, smooth=True)
    assert bool((sw[1:] <= sw[:-1]).all())


def test_dynamic_edge_weight_uses_the_package_meaning_of_dark():
    """Dark = mean linear luminance below ``color.DARK_THRESHOLD`` (the article's 0.3, moved to linear light)."""
    assert float(mean_luminance(_grey(0.5))[0]) > DARK_THRESHOLD > float(mean_luminance(_grey(0.25))[0])
    assert L.dynamic_edge_weight(torch.cat([_grey(0.5), _grey(0.25)])).tolist() == [1.5, 3.0]
    # for a uniform grey the boundary sits at sRGB 0.3, the smooth ramp's midpoint exactly there
    assert L.dynamic_edge_weight(torch.cat([_grey(0.29), _grey(0.31)])).tolist() == [3.0, 1.5]
    assert float(L.dynamic_edge_weight(_grey(0.3), smooth=True)[0]) == pytest.approx(2.25, abs=1e-3)
    # Where the rules part: a lit subject on black, half the frame black and half sRGB 0.5 grey. Light adds up
    # linearly: mean luminance 0.107 > 0.0732, bright (weight 1.5). The old rule (BT.601 luma of the
    # gamma-encoded values, 0.25 < 0.3) and the article's channel mean (0.25) both called it dark (3.0).
    half = torch.zeros(1, 3, 8, 8)
    half[..., 4:] = 0.5
    assert float(mean_luminance(half)[0]) == pytest.approx(0.107, abs=1e-3)
    assert L.dynamic_edge_weight(half).tolist() == [1.5]
    # MattingLoss's default threshold is the same one
    _, terms = L.MattingLoss()(_matte(1, b=1, size=8), _matte(0, b=1, size=8), image=half)
    assert float(terms["edge_weight"]) == 1.5


def test_dynamic_edge_weight_never_syncs_with_the_host(monkeypatch):
    image = torch.cat([_rgb(0, b=2, scale=0.2), _rgb(1, b=2)])
    pred, gt = _matte(1, b=4), _matte(0, b=4)
    crit = L.MattingLoss(ssim=0.5, edge=1.5, dynamic=True)
    want, _ = crit(pred, gt, image=image)

    def forbidden(*a, **k):
        raise AssertionError("host synchronisation (item/bool/float/tolist) during the loss")

    for name in ("item", "__bool__", "__float__", "__int__", "tolist", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    w = L.dynamic_edge_weight(image)
    ws = L.dynamic_edge_weight(image, smooth=True)
    total, terms = crit(pred, gt, image=image)
    monkeypatch.undo()
    assert w.tolist() == [3.0, 3.0, 1.5, 1.5]
    assert ws.shape == (4,) and bool((ws[:2] > 2.25).all()) and bool((ws[2:] < 2.25).all())
    assert torch.equal(total, want)


def test_matting_loss_combines_terms_and_applies_weight_per_sample():
    pred, gt = _matte(1), _matte(0)
    dark, bright = _rgb(0, b=1, scale=0.1), _rgb(1, b=1)
    image = torch.cat([dark, bright])
    crit = L.MattingLoss(mse=1.0, ssim=0.5, edge=1.5, dark_edge=3.0, dynamic=True)
    total, terms = crit(pred, gt, image=image)
    mse = L.alpha_mse(pred, gt, "none")
    ssim = L.ssim_loss(pred, gt, reduction="none")
    edge = L.sobel_edge_loss(pred, gt, reduction="none")
    expected = (mse + 0.5 * ssim + torch.tensor([3.0, 1.5]) * edge).mean()
    assert float(total) == pytest.approx(float(expected), rel=1e-5)
    assert set(terms) == {"mse", "ssim", "edge", "edge_weight", "total"}
    assert all(not v.requires_grad and v.ndim == 0 for v in terms.values())
    assert float(terms["edge_weight"]) == pytest.approx(2.25)
    # static weighting ignores brightness
    static, t2 = L.MattingLoss(ssim=0.5, edge=1.5, dynamic=False)(pred, gt)
    assert float(t2["edge_weight"]) == pytest.approx(1.5)
    assert float(static) == pytest.approx(float((mse + 0.5 * ssim + 1.5 * edge).mean()), rel=1e-5)
    # composition is added when fg/bg are there
    fg, bg = _rgb(3), _rgb(4)
    with_comp, t3 = L.MattingLoss(ssim=0.5, edge=1.5, composition=1.0, dynamic=False)(pred, gt, fg=fg, bg=bg)
    comp = L.composition_loss(pred, gt, fg, bg)
    assert float(t3["composition"]) == pytest.approx(float(comp), rel=1e-6)
    assert float(with_comp) == pytest.approx(float(static + comp), rel=1e-5)
