"""How hard is an alpha matte? Simple statistics that separate a real matting problem from segmentation.

* ``fractional``: share of pixels with 0 < alpha < 1 (the pixels a segmentation mask gets wrong);
* ``semi_transparent``: share with 0.1 <= alpha <= 0.9 (glass, smoke, veils, strands);
* ``thin``: share of pixels in structures narrower than 3 px — foreground pixels (alpha > 0) that a 3x3
  morphological opening removes (hair, fur, strands, edges of fine holes);
* ``subpixel``: share of pixels in such thin structures with alpha < 0.5 (strands narrower than half a pixel).

Example:
    >>> import numpy as np
    >>> a = np.zeros((16, 16), np.float32); a[:, 8] = 0.3  # one vertical strand, 0.3 px wide
    >>> s = alpha_statistics(a)
    >>> round(s["fractional"], 4), round(s["thin"], 4), round(s["subpixel"], 4)
    (0.0625, 0.0625, 0.0625)
"""

from __future__ import annotations

import cv2
import numpy as np


def alpha_statistics(alpha: np.ndarray) -> dict[str, float]:
    """The statistics of the module docstring for one matte, float (H, W) in [0, 1]."""
    a = np.asarray(alpha, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"alpha_statistics: alpha must be (H, W), got shape {a.shape}")
    fg = (a > 0).astype(np.uint8)
    opened = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    thin = (fg > 0) & (opened == 0)
    return {
        "fractional": float(((a > 0) & (a < 1)).mean()),
        "semi_transparent": float(((a >= 0.1) & (a <= 0.9)).mean()),
        "thin": float(thin.mean()),
        "subpixel": float((thin & (a < 0.5)).mean()),
        "foreground": float((a > 0.5).mean()),
    }


def detail_window(alpha: np.ndarray, window: int) -> tuple[int, int]:
    """Top-left (y, x) of the ``window`` x ``window`` crop with the most thin and fractional pixels — where
    to zoom in to see hair (thin pixels count double).

    Example:
        >>> a = np.zeros((64, 64), np.float32); a[40:60, 10] = 0.3
        >>> y, x = detail_window(a, 16); (y <= 40 and y + 16 >= 44, x <= 10 < x + 16)
        (True, True)
    """
    a = np.asarray(alpha, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"detail_window: alpha must be (H, W), got shape {a.shape}")
    h, w = a.shape
    window = int(min(window, h, w))
    if window < 1:
        raise ValueError(f"detail_window: window must be >= 1, got {window}")
    fg = (a > 0).astype(np.uint8)
    opened = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    score = ((a > 0) & (a < 1)).astype(np.float32) + ((fg > 0) & (opened == 0)).astype(np.float32)
    sums = cv2.boxFilter(
        score, -1, (window, window), normalize=False, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT
    )
    sums = sums[: h - window + 1, : w - window + 1]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(y), int(x)
