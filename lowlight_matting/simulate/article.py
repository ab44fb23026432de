"""The seed article's low-light recipe, kept faithfully (flaws included) so the course can compare.

Chapter 01 shows each flaw next to the physical simulator of :mod:`.numpy_sim`; nothing here is used for
training.
"""

from __future__ import annotations

import numpy as np

__all__ = ["simulate_low_light"]


def simulate_low_light(image: np.ndarray, gamma: float = 0.4, scale: float = 0.3, rng=None) -> np.ndarray:
    """The seed article's low-light recipe, kept faithfully (flaws included) so the course can compare.

    ``out = uint8(clip(d + 0.05 * Poisson(255 d) / 255, 0, 1) * 255)`` with ``d = (image / 255) ** (1/gamma) * scale``.

    What it really does:

    * ``x ** (1/gamma) * scale`` is a *contrast curve applied to sRGB code values*, not an exposure change:
      light is linear in scene radiance, so a real exposure cut divides *linear* values by a constant. The
      curve crushes shadows far more than highlights (with gamma=0.4, mid-grey 0.5 -> 0.053, white 1 -> 0.3).
    * The "noise" ``Poisson(255 d) / 255 * 0.05`` is not zero-mean: its mean is ``0.05 d``, so it *brightens*
      the image by 5%; its standard deviation is only ``0.05 sqrt(255 d)`` code values (< 0.5 DN for every d
      the curve produces), the size of the uint8 quantisation step itself: tiny, not gone (a flat patch
      varies by a DN or two). The shot and read noise of a real exposure cut that deep is tens of times
      larger; chapter 01 measures both.
    * The final ``astype(np.uint8)`` truncates instead of rounding (another -0.5 DN on average).

    ``image``: uint8 RGB (H, W, 3); ``rng``: a NumPy Generator or seed (the article used the global state).
    Returns uint8 of the same shape.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"simulate_low_light: image must be uint8, got {image.dtype}")
    rng = np.random.default_rng(rng)
    img_norm = image.astype(np.float32) / 255.0
    img_dark = img_norm ** (1 / gamma) * scale
    noise = rng.poisson(img_dark * 255) / 255.0
    img_noisy = np.clip(img_dark + noise * 0.05, 0, 1)
    return (img_noisy * 255).astype(np.uint8)
