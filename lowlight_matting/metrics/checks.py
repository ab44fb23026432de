"""Input checks of the metrics: every matte and trimap is validated and converted here, once, with an error
that names the argument (``pred``, ``gt``, ``trimap``) and what is wrong.

- NumPy (:mod:`.reference`): :func:`as_alpha` → float64 (H, W) in [0, 1] (uint8 ÷ 255, uint16 ÷ 65535; torch
  tensors moved to NumPy; (1, H, W) and (1, 1, H, W) squeezed; NaN, booleans and values outside [0, 1]
  refused), :func:`unknown_mask` (trimap values 0 / 128 / 255 → mask of the 128s), :func:`pair`.
- torch (:mod:`.batched`): :func:`torch_batch` → (B, 1, H, W) float in [0, 1], :func:`torch_inputs`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["as_alpha", "unknown_mask", "pair", "torch_batch", "torch_inputs"]


def _to_numpy(x: Any, name: str) -> np.ndarray:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach().to("cpu")
            if x.dtype == torch.bfloat16 or x.dtype == torch.float16:
                x = x.float()
            x = x.numpy()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as e:
            raise TypeError(f"{name}: expected a NumPy array or torch tensor, got {type(x).__name__}") from e
    return x


def _squeeze_2d(a: np.ndarray, name: str) -> np.ndarray:
    if a.ndim > 2:
        keep = [i for i, s in enumerate(a.shape) if s != 1]
        if len(keep) == 2:
            a = a.reshape([a.shape[i] for i in keep])
    if a.ndim != 2:
        raise ValueError(
            f"{name}: expected one alpha matte of shape (H, W) (or (1, H, W) / (1, 1, H, W)), got shape {a.shape}"
        )
    if a.size == 0:
        raise ValueError(f"{name}: empty matte of shape {a.shape}")
    return a


def as_alpha(x: Any, name: str) -> np.ndarray:
    """``x`` as a float64 (H, W) array in [0, 1]; uint8 is divided by 255 (uint16 by 65535)."""
    a = _squeeze_2d(_to_numpy(x, name), name)
    if a.dtype == np.bool_:
        raise TypeError(f"{name}: got a boolean mask; pass a float alpha matte in [0, 1]")
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 65535.0
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise TypeError(f"{name}: expected a numeric alpha matte, got dtype {a.dtype}")
    a = np.asarray(a, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    if math.isnan(lo) or math.isnan(hi):
        raise ValueError(f"{name}: alpha matte contains NaN")
    if lo < -1e-6 or hi > 1 + 1e-6:
        hint = " (uint8-range values? divide by 255)" if hi > 1.5 else ""
        raise ValueError(f"{name}: alpha values must lie in [0, 1], found range [{lo:.4g}, {hi:.4g}]{hint}")
    if lo < 0 or hi > 1:
        a = np.clip(a, 0.0, 1.0)
    return a


def unknown_mask(trimap: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """Boolean mask of counted pixels (trimap == 128), or None for the whole image."""
    if trimap is None:
        return None
    t = _squeeze_2d(_to_numpy(trimap, "trimap"), "trimap")
    if t.shape != shape:
        raise ValueError(f"trimap: shape {t.shape} does not match the mattes' shape {shape}")
    if t.dtype == np.bool_ or not np.all(np.isin(t, (0, 128, 255))):
        vals = np.unique(t)[:8]
        raise ValueError(
            f"trimap: values must be 0 (background), 128 (unknown) and 255 (foreground); found {vals.tolist()}"
            + (" ..." if np.unique(t).size > 8 else "")
        )
    return t == 128


def pair(pred: Any, gt: Any, trimap: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    p = as_alpha(pred, "pred")
    g = as_alpha(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt must have the same shape, got pred {p.shape} and gt {g.shape}")
    return p, g, unknown_mask(trimap, p.shape)


def torch_batch(x: Any, name: str, check: bool):
    import torch

    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(
            f"{name}: expected a batch of mattes (B, 1, H, W) or (B, H, W), got {tuple(x.shape)}"
        )
    if x.dtype == torch.uint8:
        x = x.double() / 255.0
    elif not x.is_floating_point():
        raise TypeError(f"{name}: expected a float tensor in [0, 1] (or uint8), got {x.dtype}")
    elif x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    if check and x.numel():
        lo, hi = torch.aminmax(x.detach())
        lo, hi = float(lo), float(hi)
        if math.isnan(lo) or math.isnan(hi) or lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(f"{name}: alpha values must lie in [0, 1], found range [{lo:.4g}, {hi:.4g}]")
    return x


def torch_inputs(pred: Any, gt: Any, trimap: Any, check: bool):
    import torch

    p = torch_batch(pred, "pred", check)
    g = torch_batch(gt, "gt", check)
    if p.shape != g.shape:
        raise ValueError(
            f"pred and gt must have the same shape, got pred {tuple(p.shape)} and gt {tuple(g.shape)}"
        )
    dtype = torch.promote_types(p.dtype, g.dtype)
    g = g.to(device=p.device, dtype=dtype)
    p = p.to(dtype)
    if trimap is None:
        return p, g, None
    t = trimap if isinstance(trimap, torch.Tensor) else torch.as_tensor(np.asarray(trimap))
    if t.ndim == 3:
        t = t.unsqueeze(1)
    if tuple(t.shape) != tuple(p.shape):
        raise ValueError(f"trimap: shape {tuple(t.shape)} does not match the mattes' shape {tuple(p.shape)}")
    t = t.to(p.device)
    if check and not bool(torch.isin(t, torch.tensor([0, 128, 255], device=t.device, dtype=t.dtype)).all()):
        raise ValueError("trimap: values must be 0 (background), 128 (unknown) and 255 (foreground)")
    return p, g, (t == 128).to(dtype)
