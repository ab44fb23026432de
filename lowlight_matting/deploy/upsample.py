r"""Edge-aware upsampling of an alpha matte: the guided filter and fast guided upsampling, with OpenCV boxes.

The network runs at a working resolution; the low-resolution alpha is brought back to full size with the
*fast guided filter* (He & Sun, "Fast Guided Filter", 2015), built on the guided filter of He, Sun & Tang
("Guided Image Filtering", ECCV 2010): per window :math:`\omega_k` of radius ``r`` the alpha is modelled as a
linear function of the colour guide :math:`I`,

.. math:: q_i = a_k^\top I_i + b_k, \qquad
          a_k = (\Sigma_k + \epsilon U)^{-1} \operatorname{cov}_k(I, p), \qquad
          b_k = \bar p_k - a_k^\top \bar I_k,

the coefficients are averaged over the windows covering each pixel, computed at the working resolution and
bilinearly upsampled, then applied to the *full-resolution* guide. Hair strands thinner than one
working-resolution pixel come back where plain bilinear upsampling blurs them away. The full-resolution step
runs in strips of rows, so a 50-megapixel photo needs only a few strips' worth of float memory. The guide is
normalised by its 99th-percentile brightness first, so ``eps`` means the same thing in a dark photo as in a
bright one (a dark guide would otherwise have tiny variance and ``eps`` would flatten every edge: the
low-light failure mode of an unnormalised guided filter), and ``eps`` grows with the guide's squared noise
level (Immerkaer, "Fast Noise Variance Estimation", 1996: :func:`estimate_noise`).

Hand-written rather than ``cv2.ximgproc.guidedFilter``: that lives in opencv-contrib (not the headless
wheel albumentations depends on) and has no fast, strip-wise *upsampling* variant.

Example:
    >>> g = np.zeros((8, 8), np.float32); g[:, 4:] = 1
    >>> bool(np.abs(guided_filter(g, g.copy(), radius=1, eps=1e-4) - g).max() < 0.01)
    True
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "box_mean",
    "estimate_noise",
    "guide_noise",
    "guided_filter",
    "guided_filter_coefficients",
    "guided_upsample",
    "resize_bilinear_rows",
]


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a ``(2 r + 1)²`` window at every pixel (reflected borders), for (H, W) or (H, W, C) float32.

    O(1) per pixel whatever the radius (OpenCV's running-sum box filter).

    Example:
        >>> box_mean(np.ones((5, 4), np.float32), 2).round(6).tolist()[0]
        [1.0, 1.0, 1.0, 1.0]
    """
    if radius < 0:
        raise ValueError(f"box_mean: radius must be >= 0, got {radius}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    k = 2 * int(radius) + 1
    if x.ndim == 3 and x.shape[2] > 4:  # OpenCV filters at most 4 channels reliably: do the rest in groups
        return np.concatenate([box_mean(x[:, :, i : i + 4], radius) for i in range(0, x.shape[2], 4)], axis=2)
    out = cv2.boxFilter(x, -1, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)
    return out.reshape(x.shape)


def _as_guide(guide: np.ndarray, name: str = "guide") -> np.ndarray:
    g = np.asarray(guide)
    if g.ndim not in (2, 3) or (g.ndim == 3 and g.shape[2] not in (1, 3)):
        raise ValueError(f"{name}: expected (H, W) or (H, W, 3), got shape {g.shape}")
    if g.dtype == np.uint8:
        g = g.astype(np.float32) / 255.0
    g = np.ascontiguousarray(g, dtype=np.float32)
    return g[:, :, 0] if g.ndim == 3 and g.shape[2] == 1 else g


def guided_filter_coefficients(
    guide: np.ndarray, src: np.ndarray, radius: int = 2, eps: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Window-averaged linear coefficients ``(mean_a, mean_b)`` of the guided filter.

    Args:
        guide: (H, W) grey or (H, W, 3) colour guide, float in [0, 1] (uint8 is scaled).
        src: (H, W) float image to filter (here an alpha matte).
        radius: window radius r (window side 2r+1).
        eps: regulariser ε; larger means smoother (ε → ∞ gives a plain box blur).

    Returns:
        ``mean_a`` (H, W) for a grey guide or (H, W, 3) for a colour guide, and ``mean_b`` (H, W), so that
        the filter output is ``q = sum(mean_a * I, -1) + mean_b`` (He, Sun & Tang 2010, eqs. 14-15 and 19-21).
        For a colour guide the 3x3 system per pixel is solved in closed form (adjugate / determinant).
    """
    I = _as_guide(guide)  # noqa: E741 - the paper's name for the guide
    p = np.ascontiguousarray(src, dtype=np.float32)
    if p.shape != I.shape[:2]:
        raise ValueError(f"src: shape {p.shape} does not match guide {I.shape[:2]}")
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    r = int(radius)
    mean_p = box_mean(p, r)
    if I.ndim == 2:
        mean_I = box_mean(I, r)
        cov_Ip = box_mean(I * p, r) - mean_I * mean_p
        var_I = box_mean(I * I, r) - mean_I * mean_I
        a = cov_Ip / (var_I + eps)
        b = mean_p - a * mean_I
        return box_mean(a, r), box_mean(b, r)

    mean_I = box_mean(I, r)  # (H, W, 3)
    cov_Ip = box_mean(I * p[:, :, None], r) - mean_I * mean_p[:, :, None]
    # second moments of the guide: rr, rg, rb, gg, gb, bb
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    prods = np.stack([I[:, :, i] * I[:, :, j] for i, j in pairs], axis=2)
    m2 = box_mean(prods, r)
    s = [m2[:, :, k] - mean_I[:, :, i] * mean_I[:, :, j] for k, (i, j) in enumerate(pairs)]
    rr, rg, rb, gg, gb, bb = s
    rr, gg, bb = rr + eps, gg + eps, bb + eps
    # inverse of the symmetric 3x3 matrix [[rr, rg, rb], [rg, gg, gb], [rb, gb, bb]] via its adjugate
    i_rr = gg * bb - gb * gb
    i_rg = gb * rb - rg * bb
    i_rb = rg * gb - gg * rb
    i_gg = rr * bb - rb * rb
    i_gb = rb * rg - rr * gb
    i_bb = rr * gg - rg * rg
    det = rr * i_rr + rg * i_rg + rb * i_rb
    cr, cg, cb = cov_Ip[:, :, 0], cov_Ip[:, :, 1], cov_Ip[:, :, 2]
    a = np.stack(
        [
            (i_rr * cr + i_rg * cg + i_rb * cb) / det,
            (i_rg * cr + i_gg * cg + i_gb * cb) / det,
            (i_rb * cr + i_gb * cg + i_bb * cb) / det,
        ],
        axis=2,
    )
    b = mean_p - np.sum(a * mean_I, axis=2)
    return box_mean(a, r), box_mean(b, r)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int = 2, eps: float = 1e-3) -> np.ndarray:
    """Guided filter (He, Sun & Tang, ECCV 2010) of ``src`` (H, W) steered by ``guide`` (H, W[, 3]).

    ``q_i = mean_a_i · I_i + mean_b_i``: edges of the guide are kept in the output, flat guide regions are
    smoothed. Returns float32 (H, W).

    Example:
        >>> g = np.zeros((8, 8), np.float32); g[:, 4:] = 1
        >>> q = guided_filter(g, g.copy(), radius=1, eps=1e-4)
        >>> bool(np.abs(q - g).max() < 0.01)  # an edge present in the guide survives
        True
    """
    I = _as_guide(guide)  # noqa: E741
    mean_a, mean_b = guided_filter_coefficients(I, src, radius, eps)
    q = mean_a * I if I.ndim == 2 else np.sum(mean_a * I, axis=2)
    return (q + mean_b).astype(np.float32)


def _row_weights(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows and weights of bilinear resizing n_in -> n_out with OpenCV's half-pixel convention."""
    y = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    y = np.clip(y, 0, n_in - 1)
    y0 = np.floor(y).astype(np.int64)
    y1 = np.minimum(y0 + 1, n_in - 1)
    return y0, y1, (y - y0).astype(np.float32)


def resize_bilinear_rows(maps: np.ndarray, height: int, rows: slice, width: int | None = None) -> np.ndarray:
    """Rows ``rows`` of ``cv2.resize(maps, (width, height), INTER_LINEAR)``, computed without the rest.

    ``maps`` is (h, w) or (h, w, C) float32. Lets a full-resolution result be built strip by strip.
    """
    h, w = maps.shape[:2]
    width = w if width is None else width
    if width != w:
        maps = cv2.resize(maps, (width, h), interpolation=cv2.INTER_LINEAR).reshape(
            (h, width) + maps.shape[2:]
        )
    y0, y1, wy = _row_weights(height, h)
    y0, y1, wy = y0[rows], y1[rows], wy[rows]
    wy = wy.reshape((-1,) + (1,) * (maps.ndim - 1))
    out = maps[y0]
    upper = maps[y1]
    upper -= out
    upper *= wy
    out += upper
    return out


def _guide_scale(guide_lo: np.ndarray) -> float:
    """Factor that maps the guide's 99th percentile to 1 (never below 1): normalises dark photos."""
    p99 = float(np.percentile(guide_lo, 99)) if guide_lo.size else 1.0
    return 1.0 / max(p99, 1.0 / 255.0) if p99 < 1.0 else 1.0


def estimate_noise(image: np.ndarray, max_side: int = 1024) -> float:
    """Standard deviation of white noise in an image (Immerkaer, "Fast Noise Variance Estimation", 1996).

    ``sigma = sqrt(pi / 2) / 6 * mean |N * I|`` with the Laplacian-difference mask
    ``N = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]]``, which cancels smooth image structure. Measured on the grey
    image (float in [0, 1]; uint8 is scaled), on a centre crop of at most ``max_side`` pixels a side.
    """
    g = np.asarray(image)
    g = g.astype(np.float32) / 255.0 if g.dtype == np.uint8 else g.astype(np.float32)
    if g.ndim == 3:
        g = g.mean(axis=2)
    h, w = g.shape
    y0, x0 = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
    g = np.ascontiguousarray(g[y0 : y0 + max_side, x0 : x0 + max_side])
    if min(g.shape) < 3:
        return 0.0
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    r = cv2.filter2D(g, -1, k, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(r).mean() / 6)


def guide_noise(image: np.ndarray, alpha_shape: tuple[int, int]) -> float:
    """Noise level of ``image`` as the guided upsampling sees it (after its brightness normalisation)."""
    h, w = alpha_shape
    small = cv2.resize(np.asarray(image), (w, h), interpolation=cv2.INTER_AREA)
    small = small.astype(np.float32) / (255.0 if small.dtype == np.uint8 else 1.0)
    return estimate_noise(image) * _guide_scale(small)


def guided_upsample(
    image: np.ndarray,
    alpha_lo: np.ndarray,
    radius: int = 1,
    eps: float = 1e-4,
    strip_pixels: int = 1_000_000,
) -> np.ndarray:
    """Bring a low-resolution alpha back to ``image``'s size with the fast guided filter (He & Sun 2015).

    Args:
        image: full-resolution uint8 RGB (H, W, 3) (or float in [0, 1]), the guide.
        alpha_lo: (h, w) float alpha predicted on ``image`` resized (cv2 ``INTER_AREA``) to (h, w).
        radius, eps: guided filter window radius (in low-resolution pixels) and regulariser.
        strip_pixels: the full-resolution step runs on strips of about this many pixels, bounding the
            extra memory to ~``strip_pixels * 40`` bytes (40 MB by default) whatever the photo's size.

    Returns:
        float32 (H, W) alpha in [0, 1].
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image: expected (H, W, 3), got shape {img.shape}")
    H, W = img.shape[:2]
    a_lo = np.asarray(alpha_lo, dtype=np.float32)
    h, w = a_lo.shape
    unit = 255.0 if img.dtype == np.uint8 else 1.0
    guide_lo = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / unit
    scale = _guide_scale(guide_lo)
    mean_a, mean_b = guided_filter_coefficients(guide_lo * scale, a_lo, radius, eps)
    coef = np.concatenate([mean_a * scale / unit, mean_b[:, :, None]], axis=2)  # folds the guide scaling in
    coef = cv2.resize(coef, (W, h), interpolation=cv2.INTER_LINEAR)  # columns once (h x W x 4, small)
    out = np.empty((H, W), np.float32)
    step = max(1, int(strip_pixels) // max(W, 1))
    for y in range(0, H, step):
        rows = slice(y, min(H, y + step))
        c = resize_bilinear_rows(coef, H, rows)
        g = img[rows]
        q = c[:, :, 3]
        for ch in range(3):
            q += c[:, :, ch] * g[:, :, ch]
        np.clip(q, 0.0, 1.0, out=out[rows])
    return out
