"""Matting metrics as the field computes them, on NumPy: SAD, MSE, Gradient and Connectivity error.

The reference is the MATLAB evaluation code released with *Deep Image Matting* (Xu, Price, Cohen, Huang,
CVPR 2017; files ``compute_sad_loss.m``, ``compute_mse_loss.m``, ``compute_gradient_loss.m`` with
``gaussgradient.m``, and ``compute_connectivity_error.m``), which the matting benchmarks (alphamatting.com,
Composition-1k, Distinctions-646, AIM-500, P3M-10k) use or port. The definitions follow the connectivity and
gradient errors of Rhemann et al., *A Perceptually Motivated Online Benchmark for Image Matting* (CVPR 2009).

All four take ``pred`` and ``gt``: alpha mattes of shape (H, W) with values in [0, 1] (float arrays; uint8
arrays are divided by 255, as the reference does; torch tensors are accepted and moved to NumPy), and an
optional ``trimap`` (H, W) holding 0 / 128 / 255:

- with a trimap only its unknown pixels (``trimap == 128``) are counted (the Composition-1k convention);
- without one the whole image is counted (the trimap-free convention of MODNet, P3M and AIM).

Definitions (Ω = counted pixels, α = ``pred``, α* = ``gt``):

- ``sad``  = Σ_Ω |α − α*| / 1000
- ``mse``  = Σ_Ω (α − α*)² / |Ω|   (raw; tables often print it ×10³ and must say so; 0 when Ω is empty)
- ``gradient_error`` = Σ_Ω (‖∇α‖ − ‖∇α*‖)² / 1000, ∇ = first-derivative-of-Gaussian filters with σ = 1.4
  (see :func:`gauss_gradient_kernels`), borders replicated
- ``connectivity_error`` = Σ_Ω |φ(α) − φ(α*)| / 1000 with φ(a) = 1 − d·[d ≥ 0.15], d = a − ℓ, where ℓ is each
  pixel's last threshold level (0.1, 0.2, …, 1) at which it still belonged to the largest 4-connected
  component of (α ≥ t) ∧ (α* ≥ t)

Deliberate differences from the MATLAB reference (each stated where it applies):

1. SAD, Gradient and Connectivity are divided by 1000 (as papers print them; the MATLAB files do not divide).
2. No ``mat2gray`` min–max stretch before the gradient: the reference stretches each matte to [0, 1] first,
   so a prediction that is uniformly half as bright would score as perfect. Mattes are already in [0, 1].
3. The connectivity code's distance transforms (``bwdist`` per threshold) are never used by the reference's
   result, so they are not computed; an empty intersection (the reference would fail on ``max([])``) simply
   ends every still-connected pixel at the previous level.
4. Thresholds are k/n (n = 1/step) rather than accumulated k·step, so 0.3 means 0.3 exactly.
5. Everything is computed in float64 (the reference uses single precision).

Ties between equally large components are broken as MATLAB's ``bwconncomp`` + ``max`` do: the component whose
first pixel in column-major order comes first.

Speed: separable filtering (OpenCV ``sepFilter2D``) and one connected-component labelling per threshold
(OpenCV ``connectedComponentsWithStats``) with no per-region Python loop; all four on a 2048×2048 pair take a
fraction of a second on one core (``python -m benchmarks metrics``).

The torch versions for (B, 1, H, W) batches are in :mod:`lowlight_matting.metrics.batched`.

Example:
    >>> import numpy as np
    >>> gt = np.ones((32, 32)); trimap = np.zeros((32, 32), np.uint8)
    >>> trimap[:16, :16] = 128; trimap[16:, 16:] = 255
    >>> pred = (trimap == 255).astype(float)
    >>> m = compute_metrics(pred, gt, trimap)
    >>> round(m["sad"], 6), round(m["mse"], 6), round(m["grad"], 7), round(m["conn"], 6)
    (0.256, 1.0, 0.0028887, 0.256)
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from lowlight_matting.metrics.checks import as_alpha, pair

__all__ = [
    "GRADIENT_SIGMA",
    "GRADIENT_EPSILON",
    "CONNECTIVITY_STEP",
    "CONNECTIVITY_MIN_DIFF",
    "METRIC_NAMES",
    "gauss_gradient_kernels",
    "gradient_magnitude",
    "connectivity_levels",
    "sad",
    "mse",
    "gradient_error",
    "connectivity_error",
    "compute_metrics",
    "error_maps",
    "make_trimap",
]

GRADIENT_SIGMA = 1.4
"""σ of the derivative-of-Gaussian filters (``compute_gradient_loss.m`` calls ``gaussgradient(x, 1.4)``)."""
GRADIENT_EPSILON = 1e-2
"""Kernel-size rule of ``gaussgradient.m``: halfsize = ceil(σ·sqrt(−2·ln(sqrt(2π)·σ·ε))) → 9×9 for σ = 1.4."""
CONNECTIVITY_STEP = 0.1
"""Threshold step of ``compute_connectivity_error.m``."""
CONNECTIVITY_MIN_DIFF = 0.15
"""Differences d = α − ℓ below this are ignored by the connectivity error (φ = 1 − d·[d ≥ 0.15])."""
METRIC_NAMES = ("sad", "mse", "grad", "conn")


def _masked_sum(err: np.ndarray, mask: np.ndarray | None) -> float:
    return float(err.sum() if mask is None else err[mask].sum())


# ------------------------------------------------------------------------------------------ SAD and MSE
def sad(pred: Any, gt: Any, trimap: Any = None) -> float:
    """Sum of absolute differences Σ_Ω |pred − gt| / 1000 over the counted pixels Ω (see module docstring).

    Example:
        >>> sad(np.zeros((10, 100)), np.ones((10, 100)))
        1.0
    """
    p, g, m = pair(pred, gt, trimap)
    return _masked_sum(np.abs(p - g), m) / 1000.0


def mse(pred: Any, gt: Any, trimap: Any = None) -> float:
    """Mean squared error Σ_Ω (pred − gt)² / |Ω|, raw (not ×10³). 0.0 when no pixel is counted.

    Example:
        >>> mse(np.full((4, 4), 0.5), np.ones((4, 4)))
        0.25
    """
    p, g, m = pair(pred, gt, trimap)
    return _mse(p, g, m)


def _mse(p: np.ndarray, g: np.ndarray, m: np.ndarray | None) -> float:
    n = p.size if m is None else int(m.sum())
    if n == 0:
        return 0.0
    d = p - g
    return _masked_sum(d * d, m) / n


# ------------------------------------------------------------------------------------------- gradient
def gauss_gradient_kernels(sigma: float = GRADIENT_SIGMA, epsilon: float = GRADIENT_EPSILON):
    """The two 1-D factors of ``gaussgradient.m``'s 2-D first-derivative-of-Gaussian kernel.

    halfsize = ceil(σ·sqrt(−2·ln(sqrt(2π)·σ·ε))) (4 for σ = 1.4, ε = 0.01, i.e. a 9×9 kernel); for u in
    −halfsize…halfsize, g(u) = exp(−u²/2σ²)/(σ·sqrt(2π)) and dg(u) = −u·g(u)/σ². The 2-D kernel
    h_x(i, j) = g(i)·dg(j) is divided by its L2 norm, which is ‖g‖·‖dg‖, so the factors are returned already
    normalised: ``np.outer(g, dg)`` is the reference's ``hx`` and ``np.outer(dg, g)`` its ``hy = hx'``.

    Returns:
        (g, dg): float64 arrays of length 2·halfsize + 1.

    Example:
        >>> g, dg = gauss_gradient_kernels()
        >>> g.shape, round(float(np.sum(np.outer(g, dg) ** 2)), 12)
        ((9,), 1.0)
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if not 0 < epsilon < 1 / (math.sqrt(2 * math.pi) * sigma):
        raise ValueError(f"epsilon must be in (0, 1/(sqrt(2*pi)*sigma)), got {epsilon}")
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon)))
    u = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(u**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    dg = -u * g / sigma**2
    return g / np.linalg.norm(g), dg / np.linalg.norm(dg)


def _gradient_xy(a: np.ndarray, sigma: float = GRADIENT_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """(gx, gy) as ``imfilter(a, h, 'replicate', 'conv')``: convolution, so the odd factor is flipped."""
    g, dg = gauss_gradient_kernels(sigma)
    dgc = np.ascontiguousarray(dg[::-1])  # cv2 correlates; flipping makes it MATLAB's 'conv'
    a = np.ascontiguousarray(a, dtype=np.float64)
    gx = cv2.sepFilter2D(a, cv2.CV_64F, dgc, g, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.sepFilter2D(a, cv2.CV_64F, g, dgc, borderType=cv2.BORDER_REPLICATE)
    return gx, gy


def _magnitude(a: np.ndarray, sigma: float) -> np.ndarray:
    gx, gy = _gradient_xy(a, sigma)
    np.multiply(gx, gx, out=gx)
    np.multiply(gy, gy, out=gy)
    np.add(gx, gy, out=gx)
    return np.sqrt(gx, out=gx)


def gradient_magnitude(alpha: Any, sigma: float = GRADIENT_SIGMA) -> np.ndarray:
    """‖∇α‖ = sqrt(gx² + gy²) with the derivative-of-Gaussian filters of :func:`gauss_gradient_kernels`.

    Returns a float64 (H, W) array. This is what the Gradient error compares between prediction and truth.
    """
    return _magnitude(as_alpha(alpha, "alpha"), sigma)


def _crop_box(mask: np.ndarray | None, margin: int) -> tuple[slice, slice] | None:
    """Bounding box of ``mask`` grown by ``margin`` (clipped to the image); None = whole image."""
    if mask is None:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return slice(0, 0), slice(0, 0)
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (
        slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, h)),
        slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, w)),
    )


def _gradient_error(p: np.ndarray, g: np.ndarray, m: np.ndarray | None, sigma: float) -> float:
    # Only pixels within the kernel's reach of the counted region matter: filtering that crop gives exactly
    # the same values there (replicated borders apply only at the real image border, which the crop keeps).
    half = (len(gauss_gradient_kernels(sigma)[0]) - 1) // 2
    box = _crop_box(m, half)
    if box is not None:
        p, g, m = p[box], g[box], m[box]
        if m.size == 0:
            return 0.0
    err = _magnitude(p, sigma)
    err -= _magnitude(g, sigma)
    np.multiply(err, err, out=err)
    return _masked_sum(err, m) / 1000.0


def gradient_error(pred: Any, gt: Any, trimap: Any = None, sigma: float = GRADIENT_SIGMA) -> float:
    """Gradient error Σ_Ω (‖∇pred‖ − ‖∇gt‖)² / 1000 (``compute_gradient_loss.m`` without ``mat2gray``).

    ∇ uses the unit-L2-norm first-derivative-of-Gaussian filters of ``gaussgradient.m`` (σ = 1.4, 9×9 kernel
    from ε = 0.01), applied as a convolution with replicated borders. It punishes blurred or over-sharpened
    transitions even when the average alpha is right.

    Example:
        >>> a = np.zeros((16, 16)); a[:, 8:] = 1
        >>> gradient_error(a, a)
        0.0
    """
    p, g, m = pair(pred, gt, trimap)
    return _gradient_error(p, g, m, sigma)


# --------------------------------------------------------------------------------------- connectivity
def _thresholds(step: float) -> np.ndarray:
    if not 0 < step <= 1:
        raise ValueError(f"step must be in (0, 1], got {step}")
    n = round(1.0 / step)
    if abs(n * step - 1.0) < 1e-9:
        return np.arange(1, n + 1, dtype=np.float64) / n
    k = np.arange(1, math.floor(1.0 / step + 1e-9) + 1, dtype=np.float64)
    return k * step


def _largest_component(mask_u8: np.ndarray) -> np.ndarray | None:
    """Boolean mask of the largest 4-connected component of ``mask_u8`` (uint8 0/1), None if it is empty.

    Equally large components are decided as MATLAB's ``bwconncomp`` + ``max`` do: the one whose first pixel
    in column-major order comes first.
    """
    # 16-bit labels when they fit (OpenCV raises on overflow): then a histogram of the labels is a cheap
    # lookup-table pass (exact while the pixel count fits float32's 24-bit mantissa).
    small = mask_u8.size < 1 << 24
    if small:
        try:
            n, labels = cv2.connectedComponents(mask_u8, connectivity=4, ltype=cv2.CV_16U)
        except cv2.error:  # more than 65535 labels
            small = False
    if not small:
        n, labels = cv2.connectedComponents(mask_u8, connectivity=4, ltype=cv2.CV_32S)
    if n <= 1:
        return None
    if n == 2:
        return labels.astype(bool)
    if small:
        sizes = cv2.calcHist([labels], [0], None, [n], [0, n]).ravel()
    else:
        sizes = np.bincount(labels.ravel(), minlength=n)
    sizes[0] = -1  # background
    tied = np.flatnonzero(sizes == sizes.max())
    if tied.size == 1:
        return labels == tied[0]
    # a tie (rare on real mattes): the first tied pixel in column-major order names the winner
    candidates = np.isin(labels, tied)
    x0 = int(np.argmax(candidates.any(axis=0)))
    y0 = int(np.argmax(candidates[:, x0]))
    return labels == labels[y0, x0]


def _levels(p: np.ndarray, g: np.ndarray, step: float) -> np.ndarray:
    """ℓ: per pixel, the last threshold at which it was still in the largest component (1 if never left).

    (p ≥ t) ∧ (g ≥ t) is min(p, g) ≥ t. The masks shrink as t grows, so each level is labelled only inside
    the bounding box of its mask (pixels outside it have left the component for good), and ℓ is read from
    how many levels each pixel stayed connected: one labelling pass and a few array operations per level.
    """
    ts = _thresholds(step)
    low = np.minimum(p, g)
    # number of levels each pixel stayed in the largest component
    survived = np.zeros(low.shape, dtype=np.uint8 if len(ts) < 255 else np.uint32)
    connected = np.ones(low.shape, dtype=bool)
    r0, r1, c0, c1 = 0, low.shape[0], 0, low.shape[1]
    for t in ts:
        mask = low[r0:r1, c0:c1] >= t
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            break
        cols = np.flatnonzero(mask.any(axis=0))
        mask = np.ascontiguousarray(mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
        r0, r1, c0, c1 = r0 + rows[0], r0 + rows[-1] + 1, c0 + cols[0], c0 + cols[-1] + 1
        omega = _largest_component(mask.view(np.uint8))
        still = connected[r0:r1, c0:c1]
        still &= omega
        if not still.any():
            break
        survived[r0:r1, c0:c1] += still.view(np.uint8)
    # survived k levels -> ℓ = t_k (t_0 = 0); survived all of them -> 1, as the reference's l_map == -1 -> 1
    table = np.concatenate([[0.0], ts[:-1], [1.0]])
    return table[survived]


def connectivity_levels(pred: Any, gt: Any, step: float = CONNECTIVITY_STEP) -> np.ndarray:
    """The level map ℓ of the connectivity error: for each pixel the last threshold t ∈ {step, 2·step, …, 1}
    before the first one at which it left the largest 4-connected component of (pred ≥ t) ∧ (gt ≥ t)
    (0 if it was not in it at t = step, 1 if it never left). float64 (H, W)."""
    p, g, _ = pair(pred, gt, None)
    return _levels(p, g, step)


def _phi(a: np.ndarray, levels: np.ndarray) -> np.ndarray:
    d = a - levels
    return 1.0 - d * (d >= CONNECTIVITY_MIN_DIFF)


def _kept_excess(a: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """d·[d ≥ 0.15] with d = a − ℓ (φ = 1 − this), computed in place on one new array."""
    d = np.subtract(a, levels)
    np.multiply(d, d >= CONNECTIVITY_MIN_DIFF, out=d)
    return d


def _connectivity_error(p: np.ndarray, g: np.ndarray, m: np.ndarray | None, step: float) -> float:
    if m is not None and not m.any():
        return 0.0
    levels = _levels(p, g, step)
    diff = _kept_excess(g, levels)  # |φ(p) − φ(g)| = |kept(g) − kept(p)|
    diff -= _kept_excess(p, levels)
    np.abs(diff, out=diff)
    return _masked_sum(diff, m) / 1000.0


def connectivity_error(pred: Any, gt: Any, trimap: Any = None, step: float = CONNECTIVITY_STEP) -> float:
    """Connectivity error Σ_Ω |φ(pred) − φ(gt)| / 1000 (``compute_connectivity_error.m``).

    For thresholds t = step, 2·step, …, 1 take the largest 4-connected component of (pred ≥ t) ∧ (gt ≥ t);
    ℓ is each pixel's last level still inside it (:func:`connectivity_levels`); with d = α − ℓ,
    φ(α) = 1 − d·[d ≥ 0.15]. Components are found on the whole image; only the sum is restricted to Ω.
    It punishes foreground that is present but cut off from the main body (broken hair strands, holes that
    split a region, floating blobs).

    Example:
        >>> a = np.zeros((8, 8)); a[2:6, 2:6] = 1
        >>> connectivity_error(a, a)
        0.0
    """
    p, g, m = pair(pred, gt, trimap)
    return _connectivity_error(p, g, m, step)


# -------------------------------------------------------------------------------------------- together
def compute_metrics(
    pred: Any, gt: Any, trimap: Any = None, step: float = CONNECTIVITY_STEP
) -> dict[str, float]:
    """All four metrics at once (inputs checked and converted once): ``dict(sad=, mse=, grad=, conn=)``.

    SAD, Grad and Conn are /1000, MSE is raw; counted over ``trimap == 128`` or the whole image without one.
    """
    p, g, m = pair(pred, gt, trimap)
    d = p - g
    n = d.size if m is None else int(m.sum())
    sq = d * d
    np.abs(d, out=d)
    return {
        "sad": _masked_sum(d, m) / 1000.0,
        "mse": _masked_sum(sq, m) / n if n else 0.0,
        "grad": _gradient_error(p, g, m, GRADIENT_SIGMA),
        "conn": _connectivity_error(p, g, m, step),
    }


def error_maps(pred: Any, gt: Any, step: float = CONNECTIVITY_STEP) -> dict[str, np.ndarray]:
    """Per-pixel terms of each metric on the whole image (float64 (H, W)), before summing and scaling:
    ``sad`` |Δ|, ``mse`` Δ², ``grad`` (‖∇pred‖ − ‖∇gt‖)², ``conn`` |φ(pred) − φ(gt)|. Shows *where* a
    metric punishes a prediction."""
    p, g, _ = pair(pred, gt, None)
    d = p - g
    levels = _levels(p, g, step)
    return {
        "sad": np.abs(d),
        "mse": d * d,
        "grad": (_magnitude(p, GRADIENT_SIGMA) - _magnitude(g, GRADIENT_SIGMA)) ** 2,
        "conn": np.abs(_phi(p, levels) - _phi(g, levels)),
    }


def make_trimap(
    alpha: Any,
    kernel_size: int = 11,
    iterations: int = 1,
    fg_threshold: float = 1.0,
    bg_threshold: float = 0.0,
) -> np.ndarray:
    """A trimap (uint8 (H, W): 0 background, 128 unknown, 255 foreground) from a ground-truth matte.

    Foreground = pixels with α ≥ ``fg_threshold`` eroded, unknown = pixels with α > ``bg_threshold``
    dilated, minus the foreground; both use an elliptical ``kernel_size``×``kernel_size`` structuring element
    (``cv2.MORPH_ELLIPSE``, default 11×11) applied ``iterations`` times, so the unknown band reaches about
    ``iterations·kernel_size//2`` pixels either side of every transition. Border pixels are treated as
    replicated (no band appears along the image frame). Use it for data that ships without trimaps; with
    the default every fractional pixel is unknown.

    Example:
        >>> a = np.zeros((32, 32), np.float32); a[8:24, 8:24] = 1
        >>> t = make_trimap(a, kernel_size=5)
        >>> sorted(np.unique(t).tolist()), int(t[16, 16]), int(t[8, 8]), int(t[0, 0])
        ([0, 128, 255], 255, 128, 0)
    """
    a = as_alpha(alpha, "alpha")
    if not isinstance(kernel_size, int | np.integer) or kernel_size < 1:
        raise ValueError(f"kernel_size must be a positive integer, got {kernel_size!r}")
    if not isinstance(iterations, int | np.integer) or iterations < 0:
        raise ValueError(f"iterations must be a non-negative integer, got {iterations!r}")
    if not 0 <= bg_threshold < fg_threshold <= 1:
        raise ValueError(f"need 0 <= bg_threshold < fg_threshold <= 1, got {bg_threshold}, {fg_threshold}")
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(kernel_size), int(kernel_size)))
    fg = (a >= fg_threshold).astype(np.uint8)
    anything = (a > bg_threshold).astype(np.uint8)
    if iterations > 0:
        fg = cv2.erode(fg, kernel, iterations=int(iterations), borderType=cv2.BORDER_REPLICATE)
        anything = cv2.dilate(anything, kernel, iterations=int(iterations), borderType=cv2.BORDER_REPLICATE)
    trimap = np.zeros(a.shape, dtype=np.uint8)
    trimap[anything.astype(bool)] = 128
    trimap[fg.astype(bool)] = 255
    return trimap
