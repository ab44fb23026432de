"""Per-pixel alpha losses: MSE, L1, and the composition loss of Deep Image Matting."""

from __future__ import annotations

import torch
from torch import Tensor

from lowlight_matting.losses._common import (
    _check_pair,
    _check_reduction,
    _check_rgb,
    _f32,
    _Loss,
    _no_autocast,
    _per_sample_mean,
    _reduce,
)


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


# ------------------------------------------------------------------------------------------- composition
def blend(alpha: Tensor, fg: Tensor, bg: Tensor) -> Tensor:
    r"""The compositing equation :math:`I = \alpha F + (1 - \alpha) B` on tensors as given, ``(B, 3, H, W)``
    (no colour-space conversion: :func:`lowlight_matting.color.composite` composites uint8 images in linear
    light)."""
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
        ref = blend(t, f, b) if image is None else _f32(image)[0]
        err = torch.sqrt((blend(p, f, b) - ref) ** 2 + eps**2) - eps
        return _reduce(_per_sample_mean(err), reduction)


class AlphaMSELoss(_Loss):
    """Module form of :func:`alpha_mse`."""

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return alpha_mse(pred, target, self.reduction)


class AlphaL1Loss(_Loss):
    """Module form of :func:`alpha_l1`."""

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return alpha_l1(pred, target, self.reduction)


class CompositionLoss(_Loss):
    """Module form of :func:`composition_loss`."""

    def forward(
        self, pred: Tensor, target: Tensor, fg: Tensor, bg: Tensor, image: Tensor | None = None
    ) -> Tensor:
        return composition_loss(pred, target, fg, bg, image=image, reduction=self.reduction)
