"""The composite matting loss with the brightness-dependent edge weight (the article's recipe)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lowlight_matting.color import DARK_THRESHOLD, mean_luminance
from lowlight_matting.losses._common import (
    _check_pair,
    _check_rgb,
    _no_autocast,
)
from lowlight_matting.losses.pixel import alpha_l1, alpha_mse, composition_loss
from lowlight_matting.losses.structure import laplacian_loss, sobel_edge_loss, ssim_loss


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
