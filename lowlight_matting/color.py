r"""Colour in one place: the sRGB transfer, the one luminance, the one meaning of "dark", linear compositing.

Every part of the package that asks "how bright is this?" or "is this dark?" -- the simulator, the loss's
brightness-dependent edge weight, the deployment router, the evaluation's brightness bins, the widgets --
calls this module, so the answer is the same everywhere.

* **sRGB transfer** (IEC 61966-2-1): :func:`srgb_to_linear`, :func:`linear_to_srgb` for NumPy arrays and
  torch tensors, and fast uint8 look-up tables :func:`u8_to_linear` / :func:`linear_to_u8`.
* **Luminance**: relative luminance of *linear* light with the Rec. 709 / sRGB primaries,

  .. math:: Y = 0.2126\,R_{lin} + 0.7152\,G_{lin} + 0.0722\,B_{lin},

  :func:`luminance` per pixel, :func:`mean_luminance` per image. Light adds up linearly, so this is the
  quantity an exposure change divides (a 10x darker exposure gives a 10x smaller mean luminance).
* **Dark**: an image is dark when its mean luminance is below :data:`DARK_THRESHOLD`
  :math:`= \mathrm{srgb\_to\_linear}(0.3) \approx 0.0732`. Source: the article's rule "mean brightness
  < 0.3" (its ``get_dynamic_weights``), which it applies to gamma-encoded sRGB values; 0.3 of the sRGB
  scale is 0.0732 in linear light. A uniform mid-grey (sRGB 0.5) has :math:`Y = 0.214`: not dark.
* **Compositing** in linear light: :func:`composite` (uint8 sRGB in and out).

Only NumPy (and OpenCV for the tables) is imported at module level; torch tensors are handled when given.

Example:
    >>> import numpy as np
    >>> round(DARK_THRESHOLD, 4)
    0.0732
    >>> grey = np.full((4, 4, 3), 128, np.uint8)
    >>> round(mean_luminance(grey), 3), is_dark(grey)
    (0.216, False)
    >>> is_dark(grey // 3)
    True
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

__all__ = [
    "DARK_THRESHOLD",
    "LUMA_709",
    "composite",
    "composite_linear",
    "is_dark",
    "linear_to_srgb",
    "linear_to_u8",
    "luminance",
    "mean_luminance",
    "srgb_to_linear",
    "u8_to_linear",
]

LUMA_709 = (0.2126, 0.7152, 0.0722)
"""Rec. 709 / sRGB weights of linear R, G, B in the relative luminance Y."""

_DARK_SRGB = 0.3  # the article's threshold, stated for gamma-encoded values


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".", 1)[0] == "torch"


def _check_float(x: Any, name: str) -> None:
    """Refuse integer arrays/tensors (a uint8 image passed without dividing by 255)."""
    if _is_torch(x):
        bad = not x.is_floating_point()
    else:
        bad = isinstance(x, np.ndarray | np.integer) and not np.issubdtype(x.dtype, np.floating)
    if bad:
        raise TypeError(
            f"{name}: expects float values in [0, 1] (divide uint8 images by 255 first), got {x.dtype}"
        )


# ----------------------------------------------------------------------------------------------------
# sRGB transfer
# ----------------------------------------------------------------------------------------------------
def srgb_to_linear(x):
    """Exact sRGB decoding (IEC 61966-2-1): ``x / 12.92`` if ``x <= 0.04045`` else ``((x + 0.055) / 1.055) ** 2.4``.

    ``x``: float NumPy array or torch tensor in [0, 1] (values outside are clipped), any shape. Returns the same
    type, shape and (float) dtype.

    >>> float(srgb_to_linear(np.float32(0.5)))  # doctest: +ELLIPSIS
    0.2140...
    """
    _check_float(x, "srgb_to_linear")
    if _is_torch(x):
        import torch

        x = x.clamp(0.0, 1.0)
        return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    x = np.clip(np.asarray(x, dtype=np.result_type(x, np.float32)), 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(x.dtype, copy=False)


def linear_to_srgb(y):
    """Exact sRGB encoding: ``12.92 y`` if ``y <= 0.0031308`` else ``1.055 y ** (1/2.4) - 0.055``.

    ``y``: float NumPy array or torch tensor of linear light; clipped to [0, 1] first (the sensor's black and
    white points). Inverse of :func:`srgb_to_linear` on [0, 1].
    """
    _check_float(y, "linear_to_srgb")
    if _is_torch(y):
        import torch

        y = y.clamp(0.0, 1.0)
        return torch.where(y <= 0.0031308, 12.92 * y, 1.055 * y ** (1 / 2.4) - 0.055)
    y = np.clip(np.asarray(y, dtype=np.result_type(y, np.float32)), 0.0, 1.0)
    return np.where(y <= 0.0031308, 12.92 * y, 1.055 * y ** (1 / 2.4) - 0.055).astype(y.dtype, copy=False)


DARK_THRESHOLD: float = float(srgb_to_linear(np.float64(_DARK_SRGB)))
"""Mean linear luminance below which an image counts as dark (the article's sRGB 0.3, in linear light)."""

_LIN_STEPS = 65536  # linear -> sRGB table resolution (the darkest sRGB step is ~20 table entries wide)


@lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray]:
    u8_to_lin = np.asarray(srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0), dtype=np.float32)
    lin = np.linspace(0.0, 1.0, _LIN_STEPS, dtype=np.float64)
    lin_to_u8 = np.clip(np.round(linear_to_srgb(lin) * 255.0), 0, 255).astype(np.uint8)
    return u8_to_lin, lin_to_u8


def _lut_ok(a: np.ndarray) -> bool:
    return a.ndim in (2, 3) and a.size > 0 and (a.ndim == 2 or a.shape[2] <= 4)


def u8_to_linear(image: np.ndarray) -> np.ndarray:
    """uint8 sRGB -> float32 linear light in [0, 1] (same shape), by table look-up."""
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"u8_to_linear: expects a uint8 image, got {image.dtype}")
    if _lut_ok(image):
        return cv2.LUT(np.ascontiguousarray(image), _tables()[0])  # ~3x faster than NumPy indexing
    return _tables()[0][image]


def linear_to_u8(linear: np.ndarray) -> np.ndarray:
    """float linear light (clipped to [0, 1]) -> uint8 sRGB (same shape), by table look-up."""
    import cv2

    x = np.asarray(linear, dtype=np.float32) * np.float32(_LIN_STEPS - 1) + np.float32(0.5)
    np.maximum(x, 0.0, out=x)
    np.minimum(x, np.float32(_LIN_STEPS - 1), out=x)
    idx = x.astype(np.uint16)
    if _lut_ok(idx):
        return cv2.LUT(idx, _tables()[1])  # OpenCV's 16-bit table look-up is several times faster
    return _tables()[1][idx]


# ----------------------------------------------------------------------------------------------------
# Luminance and "dark"
# ----------------------------------------------------------------------------------------------------
def luminance(images):
    """Per-pixel relative luminance Y (Rec. 709 weights of linear RGB).

    Accepts uint8 or float NumPy ``(..., H, W, 3)`` (returns float32 ``(..., H, W)``) or a torch tensor
    ``(..., 3, H, W)`` (float in [0, 1], or uint8; returns ``(..., H, W)`` on the same device, float32 for
    integer and reduced-precision input).
    """
    if _is_torch(images):
        import torch

        x = images
        if x.ndim < 3 or x.shape[-3] != 3:
            raise ValueError(f"luminance: expected a (..., 3, H, W) tensor, got {tuple(x.shape)}")
        if not x.is_floating_point():
            x = x.float() / 255.0
        elif x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        lin = srgb_to_linear(x)
        w = lin.new_tensor(LUMA_709).view(3, 1, 1)
        return (lin * w).sum(dim=-3)
    a = np.asarray(images)
    if a.ndim < 3 or a.shape[-1] != 3:
        raise ValueError(f"luminance: expected (..., H, W, 3), got shape {a.shape}")
    lin = u8_to_linear(a) if a.dtype == np.uint8 and a.ndim == 3 else None
    if lin is None:
        x = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
        lin = srgb_to_linear(x)
    return lin @ np.asarray(LUMA_709, np.float32)


def mean_luminance(images):
    """Mean relative luminance per image (see :func:`luminance`).

    uint8 or float NumPy ``(H, W, 3)`` -> a float; ``(N, H, W, 3)`` -> shape ``(N,)``. A torch tensor
    ``(B, 3, H, W)`` -> ``(B,)``, ``(3, H, W)`` -> a 0-d tensor, on the same device.
    """
    if _is_torch(images):
        if images.ndim not in (3, 4):
            raise ValueError(
                f"mean_luminance: expected a (B, 3, H, W) or (3, H, W) tensor, got {tuple(images.shape)}"
            )
        return luminance(images).mean(dim=(-2, -1))
    a = np.asarray(images)
    if a.ndim not in (3, 4):
        raise ValueError(f"mean_luminance: expected (H, W, 3) or (N, H, W, 3), got shape {a.shape}")
    out = luminance(a).mean(axis=(-2, -1))
    return float(out) if np.ndim(out) == 0 else out


def is_dark(images, threshold: float = DARK_THRESHOLD):
    """Whether each image's :func:`mean_luminance` is below ``threshold`` (default :data:`DARK_THRESHOLD`).

    A bool for one NumPy image, a bool array for a stack, a bool tensor for a batch tensor.
    """
    lum = mean_luminance(images)
    return bool(lum < threshold) if isinstance(lum, float) else lum < threshold


# ----------------------------------------------------------------------------------------------------
# Compositing
# ----------------------------------------------------------------------------------------------------
def composite(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite in linear light: ``I = alpha * F + (1 - alpha) * B``, then back to sRGB.

    Args:
        fg, bg: uint8 sRGB (H, W, 3).
        alpha: float (H, W) in [0, 1].

    Returns:
        uint8 sRGB (H, W, 3). Averaging in sRGB instead (as most matting code does) darkens every
        mixed pixel: a 50 % white-over-black strand would come out at sRGB 128 instead of 188.

    Example:
        >>> white, black = np.full((1, 1, 3), 255, np.uint8), np.zeros((1, 1, 3), np.uint8)
        >>> int(composite(white, black, np.full((1, 1), 0.5))[0, 0, 0])
        188
    """
    fg = np.asarray(fg)
    bg = np.asarray(bg)
    a = np.ascontiguousarray(alpha, dtype=np.float32)
    if fg.shape != bg.shape or fg.ndim != 3 or fg.shape[2] != 3:
        raise ValueError(f"composite: fg {fg.shape} and bg {bg.shape} must both be (H, W, 3)")
    if a.shape != fg.shape[:2]:
        raise ValueError(f"composite: alpha {a.shape} must be (H, W) = {fg.shape[:2]}")
    if fg.dtype != np.uint8 or bg.dtype != np.uint8:
        raise ValueError(f"composite: fg and bg must be uint8, got {fg.dtype} and {bg.dtype}")
    return composite_linear(u8_to_linear(fg), u8_to_linear(bg), a)


def composite_linear(fg_lin: np.ndarray, bg_lin: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """:func:`composite` for float linear-light ``fg_lin``/``bg_lin`` (H, W, 3) and float32 ``alpha`` (H, W);
    returns uint8 sRGB."""
    import cv2

    a3 = cv2.merge([alpha, alpha, alpha])  # contiguous (H, W, 3): much faster than broadcasting (H, W, 1)
    return linear_to_u8(bg_lin + a3 * (fg_lin - bg_lin))
