"""Behaviour of the matting losses: zero at the truth, positive elsewhere, finite gradients, per-sample dynamic
weight computed without host synchronisation."""

import pytest
import torch

from lowlight_matting import losses as L


def _matte(seed, b=2, size=32, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    r = torch.rand(b, 1, 1, 1, generator=g) * 0.4 + 0.3
    soft = torch.sigmoid((r - (xx**2 + yy**2).sqrt()) * 20)  # a disc with a soft edge
    return (soft + 0.05 * torch.rand(b, 1, size, size, generator=g)).clamp(0, 1).to(dtype)


def _rgb(seed, b=2, size=32, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, size, size, generator=g) * scale


PAIR_LOSSES = {
    "alpha_mse": L.alpha_mse,
    "alpha_l1": L.alpha_l1,
    "ssim_loss": L.ssim_loss,
    "sobel_edge_loss": L.sobel_edge_loss,
    "laplacian_loss": L.laplacian_loss,
}


@pytest.mark.parametrize("name", sorted(PAIR_LOSSES))
def test_zero_for_perfect_prediction_positive_otherwise(name):
    fn = PAIR_LOSSES[name]
    gt = _matte(0)
    assert float(fn(gt, gt)) == pytest.approx(0.0, abs=1e-6)
    pred = _matte(1)
    assert float(fn(pred, gt)) > 1e-4
    per = fn(pred, gt, reduction="none")
    assert per.shape == (2,) and bool((per > 0).all())
    assert float(fn(pred, gt, reduction="sum")) == pytest.approx(float(per.sum()), rel=1e-5)


def test_composition_loss_zero_at_truth_and_positive_otherwise():
    gt, fg, bg = _matte(0), _rgb(1), _rgb(2)
    assert float(L.composition_loss(gt, gt, fg, bg)) == pytest.approx(0.0, abs=1e-5)
    image = L.composite(gt, fg, bg)
    assert float(L.composition_loss(gt, gt, fg, bg, image=image)) == pytest.approx(0.0, abs=1e-5)
    assert float(L.composition_loss(_matte(3), gt, fg, bg)) > 1e-3
    # where F == B the alpha is invisible in the composite: no signal
    assert float(L.composition_loss(_matte(3), gt, fg, fg)) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("name", sorted(PAIR_LOSSES) + ["composition", "matting"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gradients_finite_fp32_and_bf16_autocast(name, dtype):
    gt = _matte(0)
    # half flat (the Sobel magnitude's sqrt sits at 0 there, the worst case for its gradient), half textured
    pred = _matte(1)
    pred[..., :16, :] = 0.5
    pred = pred.to(dtype).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        if name == "composition":
            loss = L.composition_loss(pred, gt, _rgb(1), _rgb(2))
        elif name == "matting":
            loss, _ = L.MattingLoss(ssim=0.5, edge=1.5, composition=1.0, laplacian=0.5, l1=0.5)(
                pred, gt, image=_rgb(3), fg=_rgb(1), bg=_rgb(2)
            )
        else:
            loss = PAIR_LOSSES[name](pred, gt.to(dtype))
    assert loss.dtype == torch.float32
    loss.backward()
    assert pred.grad is not None and pred.grad.dtype == dtype
    assert torch.isfinite(pred.grad.float()).all()
    assert pred.grad.float().abs().sum() > 0


@pytest.mark.parametrize("name", ["alpha_mse", "sobel_edge_loss", "laplacian_loss", "ssim_loss"])
def test_gradcheck_double(name):
    fn = PAIR_LOSSES[name]
    gt = _matte(0, b=1, size=8).double()
    pred = _matte(1, b=1, size=8).double().requires_grad_(True)
    kw = {"window_size": 5} if name == "ssim_loss" else {"levels": 2} if name == "laplacian_loss" else {}
    assert torch.autograd.gradcheck(lambda p: fn(p, gt, **kw), (pred,), eps=1e-6, atol=1e-5, fast_mode=True)


def test_gradcheck_composition_double():
    gt = _matte(0, b=1, size=8).double()
    fg, bg = _rgb(1, b=1, size=8).double(), _rgb(2, b=1, size=8).double()
    pred = _matte(1, b=1, size=8).double().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p: L.composition_loss(p, gt, fg, bg), (pred,), eps=1e-6, atol=1e-5, fast_mode=True
    )


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


def test_modules_match_functions():
    pred, gt = _matte(1), _matte(0)
    fg, bg = _rgb(1), _rgb(2)
    assert torch.equal(L.AlphaMSELoss()(pred, gt), L.alpha_mse(pred, gt))
    assert torch.equal(L.AlphaL1Loss()(pred, gt), L.alpha_l1(pred, gt))
    assert torch.equal(L.SSIMLoss(7)(pred, gt), L.ssim_loss(pred, gt, 7))
    assert torch.equal(L.SobelEdgeLoss()(pred, gt), L.sobel_edge_loss(pred, gt))
    assert torch.equal(L.LaplacianLoss(3)(pred, gt), L.laplacian_loss(pred, gt, 3))
    assert torch.equal(L.CompositionLoss()(pred, gt, fg, bg), L.composition_loss(pred, gt, fg, bg))


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


def test_dynamic_edge_weight_never_syncs_with_the_host(monkeypatch):
    image = torch.cat([_rgb(0, b=2, scale=0.2), _rgb(1, b=2)])
    pred, gt = _matte(1, b=4), _matte(0, b=4)

    def forbidden(*a, **k):
        raise AssertionError("host synchronisation (item/bool/float/tolist) during the loss")

    for name in ("item", "__bool__", "__float__", "__int__", "tolist", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    w = L.dynamic_edge_weight(image)
    ws = L.dynamic_edge_weight(image, smooth=True)
    total, terms = L.MattingLoss(ssim=0.5, edge=1.5, dynamic=True)(pred, gt, image=image)
    monkeypatch.undo()
    assert w.tolist() == [3.0, 3.0, 1.5, 1.5]
    assert ws.shape == (4,)
    assert torch.isfinite(total)


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
    # perfect prediction -> 0 total
    zero, _ = crit(gt, gt, image=image)
    assert float(zero) == pytest.approx(0.0, abs=1e-6)
    # static weighting ignores brightness
    static, t2 = L.MattingLoss(ssim=0.5, edge=1.5, dynamic=False)(pred, gt)
    assert float(t2["edge_weight"]) == pytest.approx(1.5)
    # composition is only added when fg/bg are there
    _, t3 = L.MattingLoss(composition=1.0, dynamic=False)(pred, gt, fg=_rgb(3), bg=_rgb(4))
    _, t4 = L.MattingLoss(composition=1.0, dynamic=False)(pred, gt)
    assert "composition" in t3 and "composition" not in t4
