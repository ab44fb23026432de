r"""Alpha-matte losses: pixel, structure, edge, composition and Laplacian terms, and their weighted sum.

Every loss compares a predicted alpha matte with the ground truth, both ``(B, 1, H, W)`` in ``[0, 1]``, and
exists twice, following kornia's pattern: a function (``alpha_mse``) and a thin :class:`torch.nn.Module`
(``AlphaMSELoss``). :class:`MattingLoss` combines them the way the article's composite loss does,

.. math::

    \mathcal{L} = \lambda_{mse} \mathcal{L}_{mse} + \lambda_{ssim} \mathcal{L}_{ssim}
        + w_{edge}(I) \, \mathcal{L}_{edge} + \lambda_{comp} \mathcal{L}_{comp} + \lambda_{lap} \mathcal{L}_{lap},

with the edge weight :math:`w_{edge}` chosen per sample from the brightness of the input image ``I``
(:func:`dynamic_edge_weight`).

Reductions: ``reduction="mean"`` (default) gives a scalar, ``"sum"`` the sum over the batch of the
per-sample losses, and ``"none"`` one value per sample, shape ``(B,)`` -- per sample rather than per pixel, so
that a per-sample weight (the dynamic edge weight) can be applied to every term alike.

Numerics: the losses compute in float32 even when called on bf16/fp16 tensors or inside an autocast region
(SSIM's variance terms and the square root of the edge magnitude lose too much in 8 mantissa bits); the
gradient flows back in the input's dtype.

Where the article was wrong, and what we do instead:

- its ``get_dynamic_weights`` returns ``torch.where(lum < 0.3, 3.0, 1.5).mean().item()``: one number for
  the whole batch (a dark image in a bright batch gets the bright weight) and ``.item()`` forces the CPU to
  wait for the GPU at every step. :func:`dynamic_edge_weight` returns a ``(B,)`` tensor on the input's
  device, built from tensor operations only, so nothing waits.
- its Sobel kernels are rebuilt and copied to the device on every call; we use
  :func:`kornia.filters.spatial_gradient` with the same *unnormalised* kernels (``[-1, 0, 1]`` x
  ``[1, 2, 1]``), so :math:`\mathcal{L}_{edge}` is the article's formula and its weights 1.5 / 3.0 mean what
  they meant there. (``kornia.filters.sobel(normalized=True)`` divides each kernel by 8, which makes the
  squared term 64x smaller and the edge weights all but meaningless; an earlier version of this module
  did that.) Borders are padded by replication, not the article's zeros, so a matte that touches the
  image border has no fake edge there.
- its brightness was the plain channel mean of gamma-encoded values; here "dark" is the package's one
  definition, :data:`lowlight_matting.color.DARK_THRESHOLD` on the mean linear luminance (the article's 0.3,
  moved to linear light).

Example:
    >>> import torch
    >>> pred, gt = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    >>> image = torch.rand(2, 3, 32, 32) * 0.2          # two dark images
    >>> total, terms = MattingLoss(ssim=0.5, edge=1.5)(pred, gt, image=image)
    >>> sorted(terms)
    ['edge', 'edge_weight', 'mse', 'ssim', 'total']
    >>> float(alpha_mse(gt, gt))
    0.0
"""

from __future__ import annotations

import math

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lowlight_matting.color import DARK_THRESHOLD, mean_luminance

__all__ = [
    "AlphaL1Loss",
    "AlphaMSELoss",
    "CompositionLoss",
    "LaplacianLoss",
    "MattingLoss",
    "SSIMLoss",
    "SobelEdgeLoss",
    "alpha_l1",
    "alpha_mse",
    "composition_loss",
    "dynamic_edge_weight",
    "laplacian_loss",
    "sobel_edge_loss",
    "ssim_loss",
]

_REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------------------------- checks
def _check_alpha(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"{name} must have shape (B, 1, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got {x.dtype}")
    return x


def _check_rgb(name: str, x: object, like: Tensor | None = None) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got {x.dtype}")
    if like is not None and (x.shape[0] != like.shape[0] or x.shape[-2:] != like.shape[-2:]):
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}, which does not match the matte's batch and size "
            f"{(like.shape[0], like.shape[-2], like.shape[-1])}"
        )
    return x


def _check_pair(pred: object, target: object) -> tuple[Tensor, Tensor]:
    _check_alpha("pred", pred)
    _check_alpha("target", target)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    return pred, target


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _f32(*xs: Tensor) -> list[Tensor]:
    """Cast to float32 (half/bf16 inputs); float64 stays float64 so gradcheck works."""
    return [x.float() if x.dtype in (torch.float16, torch.bfloat16) else x for x in xs]


def _no_autocast(x: Tensor):
    return torch.autocast(device_type=x.device.type, enabled=False)


def _reduce(per_sample: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def _per_sample_mean(x: Tensor) -> Tensor:
    return x.flatten(1).mean(dim=1)


# ------------------------------------------------------------------------------------------ pixel losses
def alpha_mse(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    r"""Mean squared error of the alpha matte, :math:`\frac{1}{HW}\sum_p (\hat\alpha_p - \alpha_p)^2`.

    Args:
        pred, target: ``(B, 1, H, W)`` mattes in ``[0, 1]``.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (per sample, shape ``(B,)``).

    Example:
        >>> float(alpha_mse(torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)))
        1.0
    """
    _check_pair(pred, target)
    _check_reduction(reduction)
    with _no_autocast(pred):
        p, t = _f32(pred, target)
        return _reduce(_per_sample_mean((p - t) ** 2), reduction)


def alpha_l1(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    r"""Mean absolute error of the alpha matte, :math:`\frac{1}{HW}\sum_p |\hat\alpha_p - \alpha_p|`.

    The "alpha prediction loss" of Deep Image Matting (Xu et al., CVPR 2017) uses
    :math:`\sqrt{(\hat\alpha - \alpha)^2 + \epsilon^2}`, a smoothed L1; plain L1 is the usual modern choice.

    Example:
        >>> float(alpha_l1(torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.5)))
        0.5
    """
    _check_pair(pred, target)
    _check_reduction(reduction)
    with _no_autocast(pred):
        p, t = _f32(pred, target)
        return _reduce(_per_sample_mean((p - t).abs()), reduction)


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


# ------------------------------------------------------------------------------------------- composition
def composite(alpha: Tensor, fg: Tensor, bg: Tensor) -> Tensor:
    r"""The compositing equation :math:`I = \alpha F + (1 - \alpha) B`, ``(B, 3, H, W)``."""
    return alpha * fg + (1.0 - alpha) * bg


def composition_loss(
    pred: Tensor,
    target: Tensor,
    fg: Tensor,
    bg: Tensor,
    image: Tensor | None = None,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    r"""Composition loss of Deep Image Matting (Xu, Price, Cohen, Huang, CVPR 2017).

    Re-composite the known foreground and background with the predicted alpha and compare with the image:

    .. math::

        \mathcal{L}_{comp} = \frac{1}{3HW} \sum_{p,c} \sqrt{\big(\hat\alpha_p F_{pc}
            + (1 - \hat\alpha_p) B_{pc} - I_{pc}\big)^2 + \epsilon^2}.

    ``I`` is ``image`` when given, else the composite of ``fg`` and ``bg`` with the true alpha ``target``
    (what DIM does). Pass ``image`` only when it *is* that composite: a low-light-degraded input is not
    :math:`\alpha F + (1-\alpha) B` of the clean ``fg``/``bg`` and would never reach zero.

    Args:
        pred, target: ``(B, 1, H, W)`` mattes.
        fg, bg: ``(B, 3, H, W)`` foreground and background in ``[0, 1]``.
        image: optional ``(B, 3, H, W)`` reference composite.
        eps: DIM's smoothing (1e-6); the loss is exactly 0 for a perfect prediction up to this epsilon.

    Example:
        >>> a = torch.rand(1, 1, 8, 8); f, b = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
        >>> float(composition_loss(a, a, f, b)) < 1e-5
        True
    """
    _check_pair(pred, target)
    _check_rgb("fg", fg, pred)
    _check_rgb("bg", bg, pred)
    if image is not None:
        _check_rgb("image", image, pred)
    _check_reduction(reduction)
    with _no_autocast(pred):
        p, t, f, b = _f32(pred, target, fg, bg)
        ref = composite(t, f, b) if image is None else _f32(image)[0]
        err = torch.sqrt((composite(p, f, b) - ref) ** 2 + eps**2) - eps
        return _reduce(_per_sample_mean(err), reduction)


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


# -------------------------------------------------------------------------------------- dynamic weighting
def dynamic_edge_weight(
    image: Tensor,
    low: float = 3.0,
    high: float = 1.5,
    threshold: float = DARK_THRESHOLD,
    smooth: bool = False,
    temperature: float = 0.02,
) -> Tensor:
    r"""Per-sample edge-loss weight from the input's brightness: larger for darker images.

    Hard (the article's rule): :math:`w_b = \text{low}` if :math:`\bar Y_b < \text{threshold}` else
    :math:`\text{high}`, with :math:`\bar Y_b` the mean linear luminance of sample :math:`b`
    (:func:`lowlight_matting.color.mean_luminance`) and the threshold the package's one meaning of "dark",
    :data:`lowlight_matting.color.DARK_THRESHOLD` (the article's 0.3 of gamma-encoded values, in linear light). Smooth: a sigmoid ramp between the two, so the weight does not jump when a sample's
    brightness crosses the threshold,

    .. math:: w_b = \text{high} + (\text{low} - \text{high})\,\sigma\!\big((\text{threshold} - \bar Y_b)
        / \text{temperature}\big).

    Returns a ``(B,)`` tensor on ``image``'s device (float32). Only tensor operations: no ``.item()``, no
    Python ``if`` on tensor values, so a CUDA training step never waits for the GPU here. The article's
    version ended in ``.mean().item()``, averaging the weight over the batch and synchronising every step.

    Args:
        image: the network's input, ``(B, 3, H, W)`` sRGB in ``[0, 1]``.
        low: weight for dark samples (below ``threshold``).
        high: weight for bright samples.
        threshold: mean-luminance boundary between "dark" and "bright".
        smooth: use the sigmoid ramp instead of the hard step.
        temperature: width of the smooth ramp in luminance units.

    Example:
        >>> img = torch.stack([torch.full((3, 4, 4), 0.2), torch.full((3, 4, 4), 0.8)])
        >>> dynamic_edge_weight(img).tolist()
        [3.0, 1.5]
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    _check_rgb("image", image)
    with _no_autocast(image):
        lum = mean_luminance(image.detach().float())
    if smooth:
        ramp = torch.sigmoid((threshold - lum) / temperature)
        return (high + (low - high) * ramp).detach()
    lo = torch.full_like(lum, float(low))
    hi = torch.full_like(lum, float(high))
    return torch.where(lum < threshold, lo, hi)


# --------------------------------------------------------------------------------------------- modules
class _Loss(nn.Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class AlphaMSELoss(_Loss):
    """Module form of :func:`alpha_mse`."""

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return alpha_mse(pred, target, self.reduction)


class AlphaL1Loss(_Loss):
    """Module form of :func:`alpha_l1`."""

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return alpha_l1(pred, target, self.reduction)


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


class CompositionLoss(_Loss):
    """Module form of :func:`composition_loss`."""

    def forward(
        self, pred: Tensor, target: Tensor, fg: Tensor, bg: Tensor, image: Tensor | None = None
    ) -> Tensor:
        return composition_loss(pred, target, fg, bg, image=image, reduction=self.reduction)


class LaplacianLoss(_Loss):
    """Module form of :func:`laplacian_loss`."""

    def __init__(self, levels: int = 5, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.levels = levels

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return laplacian_loss(pred, target, self.levels, self.reduction)


class MattingLoss(nn.Module):
    r"""The composite matting loss, with the edge weight chosen per sample from the input's brightness.

    .. math::

        \mathcal{L} = \frac{1}{B}\sum_b \Big[\lambda_{mse}\mathcal{L}^b_{mse} + \lambda_{l1}\mathcal{L}^b_{l1}
            + \lambda_{ssim}\mathcal{L}^b_{ssim} + w_b\,\mathcal{L}^b_{edge}
            + \lambda_{comp}\mathcal{L}^b_{comp} + \lambda_{lap}\mathcal{L}^b_{lap}\Big],

    where :math:`w_b` = :func:`dynamic_edge_weight` ``(image, low=dark_edge, high=edge)`` when ``dynamic``
    (the article: 3.0 for dark inputs, 1.5 otherwise), else the constant ``edge``. A weight of 0 skips the
    term (it is not computed). A non-zero ``composition`` weight needs ``fg`` and ``bg`` in every call: a
    batch without them raises ``ValueError`` instead of silently training without the term.

    Returns ``(total, terms)``: ``total`` a scalar to back-propagate, ``terms`` a dict of *detached* scalar
    tensors (each unweighted term, ``edge_weight`` = the batch mean of :math:`w_b`, and ``total``) for
    logging; they stay on the device, so logging them costs no synchronisation until you read them.

    Args:
        mse, l1, ssim, edge, composition, laplacian: weights of the terms (``edge`` is the weight for bright
            inputs when ``dynamic``).
        dynamic: per-sample edge weight from the input's brightness (needs ``image`` in ``forward``).
        dark_edge: edge weight for dark inputs when ``dynamic``.
        threshold, smooth: see :func:`dynamic_edge_weight`.
        ssim_window: SSIM window size; laplacian_levels: pyramid depth.

    Example:
        >>> crit = MattingLoss(mse=1.0, ssim=0.5, edge=1.5, dynamic=True)
        >>> pred = torch.rand(2, 1, 32, 32, requires_grad=True)
        >>> total, terms = crit(pred, torch.rand(2, 1, 32, 32), image=torch.rand(2, 3, 32, 32))
        >>> total.backward(); pred.grad.shape
        torch.Size([2, 1, 32, 32])
    """

    def __init__(
        self,
        mse: float = 1.0,
        ssim: float = 0.5,
        edge: float = 1.5,
        composition: float = 0.0,
        laplacian: float = 0.0,
        l1: float = 0.0,
        dynamic: bool = True,
        dark_edge: float = 3.0,
        threshold: float = DARK_THRESHOLD,
        smooth: bool = False,
        ssim_window: int = 11,
        laplacian_levels: int = 5,
    ) -> None:
        super().__init__()
        weights = dict(mse=mse, l1=l1, ssim=ssim, edge=edge, composition=composition, laplacian=laplacian)
        for k, v in {**weights, "dark_edge": dark_edge}.items():
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"MattingLoss: weight {k} must be a finite number >= 0, got {v!r}")
        if all(v == 0 for v in weights.values()) and not (dynamic and dark_edge > 0):
            raise ValueError("MattingLoss: every weight is 0, the loss would be constant")
        self.weights = {k: float(v) for k, v in weights.items()}
        self.dynamic = bool(dynamic)
        self.dark_edge = float(dark_edge)
        self.threshold = float(threshold)
        self.smooth = bool(smooth)
        self.ssim_window = int(ssim_window)
        self.laplacian_levels = int(laplacian_levels)

    def extra_repr(self) -> str:
        w = ", ".join(f"{k}={v:g}" for k, v in self.weights.items())
        return f"{w}, dynamic={self.dynamic}, dark_edge={self.dark_edge:g}, threshold={self.threshold:g}"

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        image: Tensor | None = None,
        fg: Tensor | None = None,
        bg: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        _check_pair(pred, target)
        if image is not None:
            _check_rgb("image", image, pred)
        w = self.weights
        terms: dict[str, Tensor] = {}
        parts: list[Tensor] = []  # per-sample weighted terms, each (B,)
        if w["mse"]:
            t = alpha_mse(pred, target, "none")
            terms["mse"], parts = t, [*parts, w["mse"] * t]
        if w["l1"]:
            t = alpha_l1(pred, target, "none")
            terms["l1"], parts = t, [*parts, w["l1"] * t]
        if w["ssim"]:
            t = ssim_loss(pred, target, self.ssim_window, "none")
            terms["ssim"], parts = t, [*parts, w["ssim"] * t]
        if w["edge"] or (self.dynamic and self.dark_edge):
            if self.dynamic:
                if image is None:
                    raise ValueError(
                        "MattingLoss(dynamic=True) needs the input image: call it as loss(pred, target, image=x)"
                    )
                ew = dynamic_edge_weight(
                    image, low=self.dark_edge, high=w["edge"], threshold=self.threshold, smooth=self.smooth
                )
            else:
                ew = torch.full((pred.shape[0],), w["edge"], device=pred.device)
            t = sobel_edge_loss(pred, target, reduction="none")
            terms["edge"], parts = t, [*parts, ew.to(t.dtype) * t]
            terms["edge_weight"] = ew
        if w["composition"]:
            if fg is None or bg is None:
                raise ValueError(
                    "MattingLoss(composition > 0) needs the foreground and background: call it as "
                    "loss(pred, target, fg=..., bg=...) with data that has them (fg_alpha_bg folders or "
                    "synthetic data), or set the composition weight to 0"
                )
            t = composition_loss(pred, target, fg, bg, reduction="none")
            terms["composition"], parts = t, [*parts, w["composition"] * t]
        if w["laplacian"]:
            t = laplacian_loss(pred, target, self.laplacian_levels, "none")
            terms["laplacian"], parts = t, [*parts, w["laplacian"] * t]
        total = torch.stack(parts, dim=0).sum(dim=0).mean()
        logged = {k: v.detach().mean() for k, v in terms.items()}
        logged["total"] = total.detach()
        return total, logged
