"""Structure and edge losses: SSIM, the article's Sobel edge term, the Laplacian-pyramid loss."""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from lowlight_matting.losses._common import (
    _check_alpha,
    _check_pair,
    _check_reduction,
    _f32,
    _Loss,
    _no_autocast,
    _per_sample_mean,
    _reduce,
)


# ------------------------------------------------------------------------------------------------- SSIM
def ssim_loss(pred: Tensor, target: Tensor, window_size: int = 11, reduction: str = "mean") -> Tensor:
    r"""Structural dissimilarity :math:`(1 - \mathrm{SSIM}(\hat\alpha, \alpha)) / 2`, in ``[0, 1]``.

    SSIM (Wang, Bovik, Sheikh, Simoncelli, "Image Quality Assessment: From Error Visibility to Structural
    Similarity", IEEE TIP 2004) compares local means, variances and covariance in a Gaussian window:

    .. math::

        \mathrm{SSIM} = \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}{(\mu_x^2 + \mu_y^2 + C_1)
            (\sigma_x^2 + \sigma_y^2 + C_2)}.

    Computed by :func:`kornia.metrics.ssim` (per-pixel map), averaged per sample.

    Args:
        window_size: side of the Gaussian window (odd). For an image with a side smaller than the window,
            the window shrinks to the largest odd size that fits (``min(H, W)`` or one less; 1 for a 1-2
            pixel side, where SSIM compares the pixel values only): kornia pads by reflection, which needs
            a padding smaller than the side.

    Example:
        >>> x = torch.rand(1, 1, 32, 32)
        >>> float(ssim_loss(x, x)) < 1e-6
        True
    """
    _check_pair(pred, target)
    _check_reduction(reduction)
    loss = (1.0 - ssim_map(pred, target, window_size)).clamp(min=0.0) / 2.0
    return _reduce(_per_sample_mean(loss), reduction)


def _fit_window(window_size: int, height: int, width: int) -> int:
    """The largest odd window <= ``window_size`` whose reflection padding fits the image (pad < side)."""
    side = min(height, width)
    return max(1, min(window_size, side if side % 2 else side - 1))


def ssim_map(pred: Tensor, target: Tensor, window_size: int = 11) -> Tensor:
    """The per-pixel SSIM map ``(B, 1, H, W)`` (1 where the two mattes agree locally); see :func:`ssim_loss`."""
    _check_pair(pred, target)
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be a positive odd integer, got {window_size}")
    with _no_autocast(pred):
        p, t = _f32(pred, target)
        return kornia.metrics.ssim(p, t, _fit_window(window_size, *p.shape[-2:]), max_val=1.0)


# ------------------------------------------------------------------------------------------------- edges
def sobel_magnitude(alpha: Tensor, eps: float = 1e-6) -> Tensor:
    r"""Sobel gradient magnitude :math:`\sqrt{g_x^2 + g_y^2 + \epsilon}` of a matte, ``(B, 1, H, W)``.

    :math:`g_x = S_x * \alpha`, :math:`g_y = S_y * \alpha` with the article's unnormalised kernels

    .. math:: S_x = \begin{pmatrix} -1 & 0 & 1 \\ -2 & 0 & 2 \\ -1 & 0 & 1 \end{pmatrix}, \qquad S_y = S_x^\top,

    so a sharp 0 -> 1 step has magnitude 4 on both sides of the boundary and a unit-slope ramp 8
    (:func:`kornia.filters.spatial_gradient` with ``normalized=False``; borders replicated). The ``eps``
    inside the root keeps :math:`\partial / \partial g = g / \sqrt{g^2 + \epsilon}` finite where the matte is
    flat (:math:`g = 0`); without it the gradient there is 0/0 = NaN.

    Example:
        >>> a = torch.zeros(1, 1, 5, 6); a[..., 3:] = 1
        >>> sobel_magnitude(a)[0, 0, 2, 1:5].round().tolist()
        [0.0, 4.0, 4.0, 0.0]
    """
    _check_alpha("alpha", alpha)
    with _no_autocast(alpha):
        (a,) = _f32(alpha)
        g = kornia.filters.spatial_gradient(a, mode="sobel", order=1, normalized=False)  # (B, 1, 2, H, W)
        return torch.sqrt(g[:, :, 0] ** 2 + g[:, :, 1] ** 2 + eps)


def sobel_edge_loss(pred: Tensor, target: Tensor, eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    r"""The article's edge-aware term: MSE between Sobel gradient magnitudes of prediction and truth,

    .. math::

        \mathcal{L}_{edge} = \frac{1}{HW} \sum_p \big(|\nabla \hat\alpha|_p - |\nabla \alpha|_p\big)^2,
        \qquad |\nabla x| = \sqrt{(S_x * x)^2 + (S_y * x)^2 + \epsilon}

    with the unnormalised Sobel kernels of :func:`sobel_magnitude` (the article's ``EdgeAwareLoss``).

    It is zero when the outlines agree and large where the predicted boundary is blurred, missing, or
    misplaced -- the hair and fur strands that low light erodes first.

    Example:
        >>> gt = torch.zeros(1, 1, 16, 16); gt[..., 4:12, 4:12] = 1
        >>> float(sobel_edge_loss(gt, gt))
        0.0
    """
    _check_pair(pred, target)
    _check_reduction(reduction)
    if eps <= 0:
        raise ValueError(f"eps must be > 0 (it keeps the gradient at flat regions finite), got {eps}")
    with _no_autocast(pred):
        diff = sobel_magnitude(pred, eps) - sobel_magnitude(target, eps)
        return _reduce(_per_sample_mean(diff**2), reduction)


# --------------------------------------------------------------------------------------------- Laplacian
def laplacian_pyramid(x: Tensor, levels: int = 5) -> list[Tensor]:
    r"""Laplacian pyramid (Burt & Adelson, 1983): band-pass images :math:`L_k = G_k - \mathrm{up}(G_{k+1})`
    for ``k < levels - 1`` and the coarsest Gaussian level last. Odd sizes are handled by upsampling to the
    exact size of the finer level. Levels stop early once a side would drop below 2 pixels."""
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    out: list[Tensor] = []
    cur = x
    for _ in range(levels - 1):
        if min(cur.shape[-2:]) < 4:
            break
        down = kornia.geometry.transform.pyrdown(cur)
        up = F.interpolate(down, size=cur.shape[-2:], mode="bilinear", align_corners=False)
        out.append(cur - up)
        cur = down
    out.append(cur)
    return out


def laplacian_loss(pred: Tensor, target: Tensor, levels: int = 5, reduction: str = "mean") -> Tensor:
    r"""Laplacian-pyramid alpha loss: weighted L1 between the pyramids of prediction and truth,

    .. math::

        \mathcal{L}_{lap} = \sum_{k=0}^{K-1} 2^{k} \, \frac{1}{H_k W_k} \sum_p |L_k(\hat\alpha)_p - L_k(\alpha)_p|.

    From "Context-Aware Image Matting for Simultaneous Foreground and Alpha Estimation" (Hou & Liu, ICCV
    2019), also used by FBA Matting (Forte & Pitié, 2020): the coarse levels (weighted up) care about the overall shape, the
    fine levels about the boundary detail.

    Example:
        >>> x = torch.rand(1, 1, 32, 32)
        >>> float(laplacian_loss(x, x))
        0.0
    """
    _check_pair(pred, target)
    _check_reduction(reduction)
    with _no_autocast(pred):
        p, t = _f32(pred, target)
        lp, lt = laplacian_pyramid(p, levels), laplacian_pyramid(t, levels)
        per_sample = sum(
            (2.0**k) * _per_sample_mean((a - b).abs()) for k, (a, b) in enumerate(zip(lp, lt, strict=True))
        )
        return _reduce(per_sample, reduction)


class SSIMLoss(_Loss):
    """Module form of :func:`ssim_loss`."""

    def __init__(self, window_size: int = 11, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.window_size = window_size

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return ssim_loss(pred, target, self.window_size, self.reduction)


class SobelEdgeLoss(_Loss):
    """Module form of :func:`sobel_edge_loss`."""

    def __init__(self, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.eps = eps

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return sobel_edge_loss(pred, target, self.eps, self.reduction)


class LaplacianLoss(_Loss):
    """Module form of :func:`laplacian_loss`."""

    def __init__(self, levels: int = 5, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.levels = levels

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return laplacian_loss(pred, target, self.levels, self.reduction)
