"""Weight-space interpolation between a base model and its fine-tune (WiSE-FT).

.. math::

    \\theta_t = (1 - t)\\,\\theta_\\text{base} + t\\,\\theta_\\text{fine-tuned},\\qquad t \\in [0, 1]

applied to every floating-point tensor the two models share by name and shape (weights, biases, BatchNorm
running statistics); integer buffers (``num_batches_tracked``) and tensors only the fine-tune has (its
Zero-DCE++ front end: the base has none) keep the fine-tune's values. ``t = 1`` is the fine-tune,
``t = 0`` the base's matting network behind the fine-tune's front end.

Source: Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022 (WiSE-FT): a fine-tune and its
starting point lie in one basin, so the straight line between them trades the new distribution's gains
against the old distribution's accuracy smoothly. The demo measures that line (``results["tradeoff"]``)
to show what keeping normal light exactly would cost in the dark.

Example:
    >>> from lowlight_matting.models import build_model
    >>> a, b = build_model("test_convnext"), build_model("test_convnext", llie="zero_dce_pp")
    >>> m = interpolate_weights(a, b, 0.5)
    >>> k = "head.refine.2.weight"
    >>> bool(torch.allclose(m.state_dict()[k], (a.state_dict()[k] + b.state_dict()[k]) / 2))
    True
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["interpolate_weights"]


def interpolate_weights(base: nn.Module, finetuned: nn.Module, t: float) -> nn.Module:
    """A copy of ``finetuned`` with weights ``(1 - t) * base + t * finetuned`` (see the module docstring).

    Args:
        base: the model the fine-tune started from (same architecture; it may lack the front end).
        finetuned: the fine-tuned model (not modified).
        t: position on the line, 0 (base) ... 1 (fine-tune).

    Raises ``ValueError`` for ``t`` outside [0, 1] or when the two models share no floating-point tensor.
    """
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"interpolate_weights: t must be in [0, 1], got {t}")
    sb, sf = base.state_dict(), finetuned.state_dict()
    shared = [k for k, v in sf.items() if v.is_floating_point() and k in sb and sb[k].shape == v.shape]
    if not shared:
        raise ValueError(
            "interpolate_weights: the two models share no floating-point tensor by name and shape"
        )
    out = copy.deepcopy(finetuned)
    with torch.no_grad():
        state = out.state_dict()
        for k in shared:
            state[k].copy_(torch.lerp(sb[k].to(state[k]), sf[k], t))
    return out
