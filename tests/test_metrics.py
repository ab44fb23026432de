"""Matting metrics: the known values, agreement with a literal MATLAB-style re-implementation of the Deep Image
Matting evaluation code, torch/numpy agreement, and the input checks."""

import math
from collections import deque

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from lowlight_matting import metrics as M
from lowlight_matting.metrics.reference import _largest_component

# ------------------------------------------------------------------------------------------------------
# An independent, deliberately plain re-implementation of compute_sad_loss.m, compute_mse_loss.m,
# compute_gradient_loss.m (+ gaussgradient.m) and compute_connectivity_error.m: explicit 2-D kernels built
# element by element, a full 2-D convolution, a column-major flood fill standing in for bwconncomp, and the
# reference's per-threshold loop. Conventions of lowlight_matting.metrics.reference: inputs already in
# [0, 1], no mat2gray, SAD/Grad/Conn divided by 1000, whole image when there is no trimap.
# ------------------------------------------------------------------------------------------------------


def _gauss(x, sigma):
    return math.exp(-(x**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))


def _dgauss(x, sigma):
    return -x * _gauss(x, sigma) / sigma**2


def _ref_imfilter_replicate_conv(im, h):
    """imfilter(im, h, 'replicate', 'conv') with a plain sum over the kernel's taps."""
    k = h.shape[0]
    r = k // 2
    height, width = im.shape
    padded = np.pad(im, r, mode="edge")  # padded[y + r] == im[y], replicated outside
    out = np.zeros_like(im)
    for i in range(k):
        for j in range(k):
            # convolution: out(y, x) = sum h(i, j) * im(y - (i - r), x - (j - r))
            out += h[i, j] * padded[2 * r - i : 2 * r - i + height, 2 * r - j : 2 * r - j + width]
    return out


def _ref_gaussgradient(im, sigma):
    epsilon = 1e-2
    halfsize = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon)))
    size = 2 * halfsize + 1
    hx = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            u = (i - halfsize, j - halfsize)
            hx[i, j] = _gauss(u[0], sigma) * _dgauss(u[1], sigma)
    hx = hx / math.sqrt(np.sum(np.abs(hx) * np.abs(hx)))
    hy = hx.T
    return _ref_imfilter_replicate_conv(im, hx), _ref_imfilter_replicate_conv(im, hy)


def _ref_bwconncomp4(mask):
    """Lists of pixels of the 4-connected components, numbered in column-major order as MATLAB does."""
    height, width = mask.shape
    seen = np.zeros(mask.shape, dtype=bool)
    comps = []
    for x in range(width):
        for y in range(height):
            if mask[y, x] and not seen[y, x]:
                seen[y, x] = True
                queue = deque([(y, x)])
                comp = []
                while queue:
                    cy, cx = queue.popleft()
                    comp.append((cy, cx))
                    for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                        if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not seen[ny, nx]:
                            seen[ny, nx] = True
                            queue.append((ny, nx))
                comps.append(comp)
    return comps


def _ref_counted(trimap, shape):
    return np.ones(shape) if trimap is None else (trimap == 128).astype(float)


def ref_sad(pred, target, trimap=None):
    return np.sum(np.abs(pred - target) * _ref_counted(trimap, pred.shape)) / 1000


def ref_mse(pred, target, trimap=None):
    w = _ref_counted(trimap, pred.shape)
    return np.sum((pred - target) ** 2 * w) / np.sum(w)


def ref_grad(pred, target, trimap=None):
    pred_x, pred_y = _ref_gaussgradient(pred, 1.4)
    target_x, target_y = _ref_gaussgradient(target, 1.4)
    pred_amp = np.sqrt(pred_x**2 + pred_y**2)
    target_amp = np.sqrt(target_x**2 + target_y**2)
    error_map = (pred_amp - target_amp) ** 2
    return np.sum(error_map * _ref_counted(trimap, pred.shape)) / 1000


def ref_conn(pred, target, trimap=None, step=0.1):
    """compute_connectivity_error.m, line by line (its unused bwdist maps left out). Returns (loss, l_map)."""
    thresh_steps = [k * step for k in range(round(1 / step) + 1)]  # 0:step:1
    l_map = np.ones(pred.shape) * -1
    for ii in range(1, len(thresh_steps)):
        pred_alpha_thresh = pred >= thresh_steps[ii]
        target_alpha_thresh = target >= thresh_steps[ii]
        comps = _ref_bwconncomp4(pred_alpha_thresh & target_alpha_thresh)
        omega = np.zeros(pred.shape)
        if comps:  # the reference fails on an empty intersection; nothing is connected then
            size_vec = [len(c) for c in comps]
            max_id = size_vec.index(max(size_vec))  # first of the largest, like MATLAB's max
            for y, x in comps[max_id]:
                omega[y, x] = 1
        flag = (l_map == -1) & (omega == 0)
        l_map[flag] = thresh_steps[ii - 1]
    l_map[l_map == -1] = 1
    pred_d = pred - l_map
    target_d = target - l_map
    pred_phi = 1 - pred_d * (pred_d >= 0.15)
    target_phi = 1 - target_d * (target_d >= 0.15)
    loss = np.sum(np.abs(pred_phi - target_phi) * _ref_counted(trimap, pred.shape)) / 1000
    return loss, l_map


# ------------------------------------------------------------------------------------------------------
def smooth_matte(rng, shape, sigma=3.0, sharpness=4.0):
    """A random matte with solid regions (0 and 1) and soft transitions."""
    n = ndi.gaussian_filter(rng.standard_normal(shape), sigma)
    n /= n.std()
    return np.clip(0.5 + sharpness * n / 2, 0, 1)


def random_trimap(rng, shape):
    n = ndi.gaussian_filter(rng.standard_normal(shape), 4)
    t = np.zeros(shape, np.uint8)
    t[n > -0.02] = 128
    t[n > 0.08] = 255
    return t


def known_case():
    gt = np.ones((32, 32))
    trimap = np.zeros((32, 32), np.uint8)
    trimap[:16, :16] = 128
    trimap[16:, 16:] = 255
    pred = (trimap == 255).astype(np.float64)
    return pred, gt, trimap


def close(a, b, rel=1e-9, abs_=1e-15):
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_)


# ------------------------------------------------------------------------------------------------ tests
def test_known_values():
    pred, gt, trimap = known_case()
    m = M.compute_metrics(pred, gt, trimap)
    assert m["sad"] == pytest.approx(0.256, abs=1e-12)
    assert m["mse"] == pytest.approx(1.0, abs=1e-12)
    assert m["grad"] == pytest.approx(0.0028887, abs=5e-8)
    assert m["conn"] == pytest.approx(0.256, abs=1e-12)
    # the single-metric functions give the same numbers
    assert M.sad(pred, gt, trimap) == m["sad"]
    assert M.mse(pred, gt, trimap) == m["mse"]
    assert M.gradient_error(pred, gt, trimap) == pytest.approx(m["grad"], rel=1e-12)
    assert M.connectivity_error(pred, gt, trimap) == pytest.approx(m["conn"], rel=1e-12)


def test_known_values_match_the_reference_reimplementation():
    pred, gt, trimap = known_case()
    assert ref_grad(pred, gt, trimap) == pytest.approx(0.0028887, abs=5e-8)
    assert ref_conn(pred, gt, trimap)[0] == pytest.approx(0.256, abs=1e-12)


def test_kernel_is_the_9x9_unit_norm_derivative_of_gaussian():
    g, dg = M.gauss_gradient_kernels()
    hx = np.outer(g, dg)
    assert hx.shape == (9, 9)
    assert np.sum(hx**2) == pytest.approx(1.0, abs=1e-12)
    assert np.allclose(dg, -dg[::-1]) and np.allclose(g, g[::-1])
    # a bigger sigma or a smaller epsilon widens the kernel, as gaussgradient.m's rule says
    assert len(M.gauss_gradient_kernels(3.0)[0]) > 9
    assert len(M.gauss_gradient_kernels(1.4, 1e-4)[0]) > 9


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("with_trimap", [False, True])
def test_agrees_with_reference_reimplementation_on_random_smooth_mattes(seed, with_trimap):
    rng = np.random.default_rng(seed)
    shape = (40, 52)  # not square: catches a transposed filter or scan order
    gt = smooth_matte(rng, shape)
    pred = np.clip(gt + 0.35 * ndi.gaussian_filter(rng.standard_normal(shape), 2.0), 0, 1)
    pred[rng.random(shape) < 0.02] = 0.0  # pinholes: break some components
    trimap = random_trimap(rng, shape) if with_trimap else None
    got = M.compute_metrics(pred, gt, trimap)
    want = {
        "sad": ref_sad(pred, gt, trimap),
        "mse": ref_mse(pred, gt, trimap),
        "grad": ref_grad(pred, gt, trimap),
        "conn": ref_conn(pred, gt, trimap)[0],
    }
    assert all(v > 0 for v in want.values()), want  # a meaningful comparison
    for k in want:
        assert close(got[k], want[k]), (k, got[k], want[k])
    assert np.allclose(M.connectivity_levels(pred, gt), ref_conn(pred, gt)[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("step", [0.1, 0.25, 0.3])
def test_connectivity_other_steps_agree_with_reference(step):
    rng = np.random.default_rng(7)
    gt = smooth_matte(rng, (30, 34))
    pred = smooth_matte(rng, (30, 34))
    want, want_levels = ref_conn(pred, gt, None, step)
    assert close(M.connectivity_error(pred, gt, step=step), want)
    assert np.allclose(M.connectivity_levels(pred, gt, step=step), want_levels, rtol=0, atol=1e-12)


def test_ties_between_components_are_broken_in_matlab_column_major_order():
    # Two equally large blobs: top-right comes first in row-major order, bottom-left in column-major order.
    gt = np.ones((13, 13))
    pred = np.zeros((13, 13))
    pred[0:3, 10:13] = 1  # top right
    pred[10:13, 0:3] = 1  # bottom left
    levels = M.connectivity_levels(pred, gt)
    assert np.allclose(levels, ref_conn(pred, gt)[1], rtol=0, atol=1e-12)
    assert levels[11, 1] == 1.0 and levels[1, 11] == 0.0


def test_ties_on_many_random_binary_mattes():
    rng = np.random.default_rng(3)
    for _ in range(5):
        pred = (rng.random((20, 24)) < 0.45).astype(float)  # many small equal-sized components
        gt = (rng.random((20, 24)) < 0.8).astype(float)
        assert np.allclose(M.connectivity_levels(pred, gt), ref_conn(pred, gt)[1], rtol=0, atol=1e-12)
        assert close(M.connectivity_error(pred, gt), ref_conn(pred, gt)[0])


def test_empty_intersection():
    rng = np.random.default_rng(1)
    gt = smooth_matte(rng, (24, 24))
    pred = np.zeros_like(gt)
    # nothing is ever connected: every level is 0, phi(pred) = 1, phi(gt) = 1 - gt where gt >= 0.15
    want = np.sum(gt * (gt >= 0.15)) / 1000
    assert M.connectivity_error(pred, gt) == pytest.approx(want, rel=1e-12)
    assert M.connectivity_error(pred, gt) == pytest.approx(ref_conn(pred, gt)[0], rel=1e-12)
    assert np.all(M.connectivity_levels(pred, gt) == 0)
    # intersection empty only from some level on
    pred = np.full_like(gt, 0.35)
    assert close(M.connectivity_error(pred, gt), ref_conn(pred, gt)[0])


def test_perfect_prediction_scores_zero():
    rng = np.random.default_rng(2)
    gt = smooth_matte(rng, (48, 40))
    for trimap in (None, random_trimap(rng, gt.shape)):
        m = M.compute_metrics(gt.copy(), gt, trimap)
        assert m == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}


def test_trimap_restricts_counting_to_unknown_pixels():
    rng = np.random.default_rng(4)
    gt = smooth_matte(rng, (36, 36))
    pred = smooth_matte(rng, (36, 36))
    trimap = random_trimap(rng, gt.shape)
    maps = M.error_maps(pred, gt)
    unknown = trimap == 128
    m = M.compute_metrics(pred, gt, trimap)
    assert m["sad"] == pytest.approx(maps["sad"][unknown].sum() / 1000, rel=1e-12)
    assert m["mse"] == pytest.approx(maps["mse"][unknown].mean(), rel=1e-12)
    assert m["grad"] == pytest.approx(maps["grad"][unknown].sum() / 1000, rel=1e-12)  # crop is exact
    assert m["conn"] == pytest.approx(maps["conn"][unknown].sum() / 1000, rel=1e-12)
    full = M.compute_metrics(pred, gt)
    assert full["sad"] == pytest.approx(maps["sad"].sum() / 1000, rel=1e-12)
    assert full["sad"] > m["sad"]
    # a trimap with no unknown pixel counts nothing
    empty = np.full(gt.shape, 255, np.uint8)
    assert M.compute_metrics(pred, gt, empty) == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}


def test_uint8_and_torch_inputs_are_accepted():
    rng = np.random.default_rng(5)
    gt = smooth_matte(rng, (32, 30))
    pred = smooth_matte(rng, (32, 30))
    p8, g8 = np.round(pred * 255).astype(np.uint8), np.round(gt * 255).astype(np.uint8)
    assert M.compute_metrics(p8, g8) == M.compute_metrics(p8 / 255.0, g8 / 255.0)
    as_tensor = M.compute_metrics(torch.from_numpy(pred)[None, None], torch.from_numpy(gt)[None])
    assert as_tensor == M.compute_metrics(pred, gt)


@pytest.mark.parametrize("dtype,rel", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize("with_trimap", [False, True])
def test_torch_batch_agrees_with_numpy(dtype, rel, with_trimap):
    rng = np.random.default_rng(6)
    gts = [smooth_matte(rng, (36, 44)) for _ in range(3)]
    preds = [np.clip(g + 0.3 * ndi.gaussian_filter(rng.standard_normal(g.shape), 2), 0, 1) for g in gts]
    tris = [random_trimap(rng, g.shape) for g in gts] if with_trimap else [None] * 3
    p = torch.tensor(np.stack(preds)[:, None], dtype=dtype)
    g = torch.tensor(np.stack(gts)[:, None], dtype=dtype)
    t = torch.tensor(np.stack(tris)[:, None]) if with_trimap else None
    batch = M.batch_metrics(p, g, t)
    singles = {
        "sad": M.sad_torch(p, g, t),
        "mse": M.mse_torch(p, g, t),
        "grad": M.gradient_error_torch(p, g, t),
    }
    for i in range(3):
        want = M.compute_metrics(preds[i], gts[i], tris[i])
        for k in ("sad", "mse", "grad"):
            assert batch[k].shape == (3,)
            assert float(batch[k][i]) == pytest.approx(want[k], rel=rel), k
            assert float(singles[k][i]) == pytest.approx(want[k], rel=rel), k
    assert batch["sad"].dtype == dtype


def test_torch_batch_accepts_b_h_w_and_checks_shapes():
    p = torch.rand(2, 16, 16)
    g = torch.rand(2, 16, 16)
    assert M.batch_metrics(p, g)["sad"].shape == (2,)
    with pytest.raises(ValueError, match="pred"):
        M.batch_metrics(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="same shape"):
        M.batch_metrics(torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.batch_metrics(torch.rand(2, 1, 8, 8) * 255, torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="trimap"):
        M.batch_metrics(p, g, torch.full((2, 16, 16), 7, dtype=torch.uint8))


def test_bad_inputs_give_clear_errors():
    a = np.zeros((8, 8))
    with pytest.raises(ValueError, match="pred.*shape"):
        M.sad(np.zeros((8, 8, 3)), a)
    with pytest.raises(ValueError, match="same shape"):
        M.mse(np.zeros((8, 9)), a)
    with pytest.raises(ValueError, match=r"gt: alpha values must lie in \[0, 1\].*255"):
        M.gradient_error(a, np.full((8, 8), 200.0))
    with pytest.raises(ValueError, match="NaN"):
        M.compute_metrics(np.full((8, 8), np.nan), a)
    with pytest.raises(ValueError, match="trimap: shape"):
        M.connectivity_error(a, a, np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="trimap: values must be 0"):
        M.compute_metrics(a, a, np.full((8, 8), 0.5))
    with pytest.raises(TypeError, match="boolean"):
        M.sad(a > 0, a)
    with pytest.raises(ValueError, match="step"):
        M.connectivity_error(a, a, step=0)
    with pytest.raises(ValueError, match="empty"):
        M.sad(np.zeros((0, 4)), np.zeros((0, 4)))


def test_connectivity_forgives_faint_strands_but_not_broken_ones():
    # a solid disc with three thin strands of alpha 0.6 attached to it
    yy, xx = np.mgrid[:64, :64]
    gt = (np.hypot(yy - 32, xx - 32) <= 12).astype(float)
    for r in (29, 32, 35):
        gt[r, 40:62] = np.maximum(gt[r, 40:62], 0.6)
    faint = np.where((gt > 0) & (gt < 1), 0.5, gt)  # strands a little too faint, still attached
    broken = faint.copy()
    broken[[29, 32, 35], 48] = 0  # one pixel missing per strand: the rest floats free
    m_faint, m_broken = M.compute_metrics(faint, gt), M.compute_metrics(broken, gt)
    assert m_faint["conn"] == 0.0 and m_faint["sad"] > 0  # connected, within 0.15 of its level: forgiven
    assert m_broken["conn"] > 0.8 * m_broken["sad"]  # cut off: every strand pixel's error counts
    assert m_broken["sad"] < 1.5 * m_faint["sad"]  # while SAD barely notices the difference


def test_gradient_error_punishes_blur_more_than_a_uniform_fade_of_equal_sad():
    yy, xx = np.mgrid[:64, :64]
    gt = (np.hypot(yy - 32, xx - 32) <= 12).astype(float)
    blurred = ndi.gaussian_filter(gt, 1.5)
    faded = gt * (1 - M.sad(blurred, gt) * 1000 / gt.sum())  # same SAD, edges as sharp as the truth
    assert M.sad(faded, gt) == pytest.approx(M.sad(blurred, gt), rel=1e-9)
    assert M.gradient_error(blurred, gt) > 1.2 * M.gradient_error(faded, gt)
    shifted = np.roll(gt, 2, axis=1)  # a 2-pixel misplacement: small SAD, large gradient error
    assert M.gradient_error(shifted, gt) > 3 * M.sad(shifted, gt)


def test_make_trimap():
    a = np.zeros((64, 64), np.float32)
    a[16:48, 16:48] = 1
    a[16:48, 47] = 0.5  # a fractional edge column
    t = M.make_trimap(a, kernel_size=7)
    assert t.dtype == np.uint8 and set(np.unique(t)) == {0, 128, 255}
    assert np.all(t[(a > 0) & (a < 1)] == 128)  # every fractional pixel is unknown
    assert t[32, 32] == 255 and t[0, 0] == 0
    # the unknown band reaches kernel_size // 2 = 3 px either side of the top edge (row 16), no further
    np.testing.assert_array_equal(t[10:24, 32], [0] * 3 + [128] * 6 + [255] * 5)
    # and 3 px beyond the fractional column 47, whose eroded foreground stops 3 px before the last opaque one
    np.testing.assert_array_equal(t[32, 42:53], [255] * 2 + [128] * 7 + [0] * 2)
    assert not np.any(t[a == 0] == 255)  # transparent pixels are never foreground
    assert not np.any(t[a == 1] == 0)
    wide = M.make_trimap(a, kernel_size=15)
    assert (wide == 128).sum() > (t == 128).sum()
    more = M.make_trimap(a, kernel_size=7, iterations=2)
    assert (more == 128).sum() > (t == 128).sum()
    with pytest.raises(ValueError, match="kernel_size"):
        M.make_trimap(a, kernel_size=0)


def test_largest_component_with_more_labels_than_16_bits_hold():
    rng = np.random.default_rng(8)
    mask = rng.random((1024, 1024)) < 0.3  # > 65535 components: the 32-bit label path
    labels, n = ndi.label(mask)  # 4-connectivity, raster order
    assert n > 65535
    want = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    got = _largest_component(np.ascontiguousarray(mask).view(np.uint8))
    assert np.array_equal(got, want)
    small = mask[:100, :100]
    labels, _ = ndi.label(small)
    want = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    assert np.array_equal(_largest_component(np.ascontiguousarray(small).view(np.uint8)), want)


def test_connectivity_with_many_levels():
    rng = np.random.default_rng(9)
    gt = smooth_matte(rng, (16, 18), sigma=2)
    pred = smooth_matte(rng, (16, 18), sigma=2)
    want, want_levels = ref_conn(pred, gt, None, 0.002)  # 500 levels: more than a uint8 counter holds
    assert close(M.connectivity_error(pred, gt, step=0.002), want)
    assert np.allclose(M.connectivity_levels(pred, gt, step=0.002), want_levels, rtol=0, atol=1e-12)
