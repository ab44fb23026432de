"""Batched torch versions of SAD, MSE and Gradient error for validation during training.

Same definitions as :mod:`lowlight_matting.metrics.reference` (the Deep Image Matting reference: SAD and Grad
÷ 1000, MSE raw, Grad with the σ = 1.4 unit-norm derivative-of-Gaussian filters and replicated borders),
computed on (B, 1, H, W) (or (B, H, W)) tensors on any device, in the inputs' float dtype, one value per
matte: tensors of shape (B,). Connectivity needs connected components and stays on the CPU
(:func:`~lowlight_matting.metrics.reference.connectivity_error`).

torch is imported inside the functions, so importing :mod:`lowlight_matting.metrics` stays light.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowlight_matting.metrics.checks import torch_inputs
from lowlight_matting.metrics.reference import GRADIENT_SIGMA, gauss_gradient_kernels

__all__ = ["sad_torch", "mse_torch", "gradient_error_torch", "batch_metrics"]


def sad_torch(pred: Any, gt: Any, trimap: Any = None, check: bool = True):
    """Batched SAD: tensor (B,) of Σ_Ω |pred − gt| / 1000 for (B, 1, H, W) mattes on any device."""
    p, g, m = torch_inputs(pred, gt, trimap, check)
    e = (p - g).abs()
    return (e if m is None else e * m).flatten(1).sum(1) / 1000.0


def mse_torch(pred: Any, gt: Any, trimap: Any = None, check: bool = True):
    """Batched raw MSE: tensor (B,) of Σ_Ω (pred − gt)² / |Ω| (0 where Ω is empty)."""
    p, g, m = torch_inputs(pred, gt, trimap, check)
    return _mse_t(p, g, m)


def _mse_t(p, g, m):
    e = (p - g) ** 2
    if m is None:
        return e.flatten(1).mean(1)
    n = m.flatten(1).sum(1)
    return (e * m).flatten(1).sum(1) / n.clamp_min(1)


def _corr1d_t(x, k: np.ndarray, dim: int):
    """Valid 1-D correlation of ``x`` with ``k`` along ``dim`` as a sum of shifted slices (fast on CPU and GPU
    alike for a 9-tap kernel; ``conv2d`` with a single channel is slow on CPU)."""
    n = x.shape[dim] - (len(k) - 1)
    out = x.narrow(dim, 0, n) * float(k[0])
    for i in range(1, len(k)):
        if k[i] != 0:
            out.add_(x.narrow(dim, i, n), alpha=float(k[i]))
    return out


def _gradient_mag_t(x):
    import torch
    import torch.nn.functional as F

    g, dg = gauss_gradient_kernels(GRADIENT_SIGMA)
    half = (len(g) - 1) // 2
    dgc = dg[::-1]  # flipped: convolution, as MATLAB's imfilter(..., 'conv')
    xp = F.pad(x, (half, half, half, half), mode="replicate")
    gx = _corr1d_t(_corr1d_t(xp, dgc, -1), g, -2)  # derivative along the width, smoothing along the height
    gy = _corr1d_t(_corr1d_t(xp, g, -1), dgc, -2)
    return torch.sqrt(gx * gx + gy * gy)


def gradient_error_torch(pred: Any, gt: Any, trimap: Any = None, check: bool = True):
    """Batched Gradient error: tensor (B,) of Σ_Ω (‖∇pred‖ − ‖∇gt‖)² / 1000, same filters as
    :func:`gradient_error` (replicated borders), computed in the inputs' float dtype on their device."""
    p, g, m = torch_inputs(pred, gt, trimap, check)
    e = (_gradient_mag_t(p) - _gradient_mag_t(g)) ** 2
    return (e if m is None else e * m).flatten(1).sum(1) / 1000.0


def batch_metrics(pred: Any, gt: Any, trimap: Any = None, check: bool = True) -> dict[str, Any]:
    """SAD, MSE and Gradient for a (B, 1, H, W) batch on any device: ``dict(sad=, mse=, grad=)`` of (B,)
    tensors, for validation during training (no gradients are tracked). Connectivity needs connected
    components: compute it on the CPU with :func:`connectivity_error`.

    Example:
        >>> import torch
        >>> m = batch_metrics(torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8))
        >>> [round(float(v), 3) for v in m["sad"]], [float(v) for v in m["mse"]]
        ([0.064, 0.064], [1.0, 1.0])
    """
    import torch

    with torch.no_grad():
        p, g, m = torch_inputs(pred, gt, trimap, check)
        e = (p - g).abs()
        gerr = (_gradient_mag_t(p) - _gradient_mag_t(g)) ** 2
        if m is not None:
            e, gerr = e * m, gerr * m
        return {
            "sad": e.flatten(1).sum(1) / 1000.0,
            "mse": _mse_t(p, g, m),
            "grad": gerr.flatten(1).sum(1) / 1000.0,
        }
