"""Backgrounds for synthetic matting: real photographs shipped with scikit-image plus procedural textures.

Every background is a random crop, flip, scale and colour shift of a source, so few backgrounds repeat.
All functions take a NumPy ``Generator``; the same generator state gives the same background.

Photographs (``skimage.data``; scikit-image itself is BSD-3-Clause, each image carries its own licence,
taken from the scikit-image docstrings and listed in :data:`PHOTOS`):

==================== ================================================ ======
name                 licence                                          colour
==================== ================================================ ======
astronaut            public domain (NASA Great Images)                RGB
chelsea              CC0 (photographer Stefan van der Walt)           RGB
coffee               CC0 (photographer Rachel Michetti)               RGB
rocket               public domain (SpaceX photos)                    RGB
hubble_deep_field    public domain (NASA / HubbleSite)                RGB
brick                CC0 (CC0Textures "Bricks25")                     grey
grass                CC0 (DeviantArt "Grass-01", linolafett)          grey
gravel               CC0 (CC0Textures "Gravel04")                     grey
camera               CC0 (photographer Lav Varshney)                  grey
==================== ================================================ ======

Images of ``skimage.data`` without a stated licence (e.g. ``stereo_motorcycle``, ``logo``) are not used.
Grey photographs are tinted with a random two-colour ramp.

Example:
    >>> import numpy as np
    >>> bg = random_background(np.random.default_rng(0), (64, 96))
    >>> bg.shape, bg.dtype
    ((64, 96, 3), dtype('uint8'))
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

PHOTOS: dict[str, str] = {
    "astronaut": "public domain (NASA Great Images)",
    "chelsea": "CC0 (photographer Stefan van der Walt)",
    "coffee": "CC0 (photographer Rachel Michetti)",
    "rocket": "public domain (SpaceX photos)",
    "hubble_deep_field": "public domain (NASA / HubbleSite)",
    "brick": "CC0 (CC0Textures Bricks25)",
    "grass": "CC0 (DeviantArt Grass-01 by linolafett)",
    "gravel": "CC0 (CC0Textures Gravel04)",
    "camera": "CC0 (photographer Lav Varshney)",
}
"""skimage.data photographs used as backgrounds, with their licences."""

_PHOTO_WEIGHTS = {"hubble_deep_field": 0.3}  # mostly black: drawn less often
PROCEDURAL_KINDS = ("noise", "gradient", "stripes", "bokeh", "blotches")


@cache
def load_photo(name: str) -> np.ndarray:
    """One scikit-image sample photo as read-only uint8, (H, W, 3) for colour or (H, W) for grey.

    Read from the files installed with scikit-image (no download). Raises ``KeyError`` for names that are
    not in :data:`PHOTOS` (only images with a known free licence are allowed).
    """
    if name not in PHOTOS:
        raise KeyError(f"load_photo: {name!r} is not one of the licence-checked photos {sorted(PHOTOS)}")
    import skimage.data

    img = np.ascontiguousarray(getattr(skimage.data, name)())
    if img.dtype != np.uint8:
        img = (img > 0).astype(np.uint8) * 255 if img.dtype == bool else img.astype(np.uint8)
    img.setflags(write=False)
    return img


def fractal_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    octaves: int = 4,
    base: int = 3,
    persistence: float = 0.55,
) -> np.ndarray:
    """Smooth multi-octave value noise, float32 (H, W) rescaled to [0, 1].

    Octave ``k`` is a random grid of about ``base * 2**k`` cells across; amplitudes fall by ``persistence``
    per octave (a cheap stand-in for Perlin noise). Octaves are summed on a pyramid of small grids (each
    upsampled bicubically to the next), and only the sum is resized to ``shape``.
    """
    h, w = shape
    longest = max(h, w)
    out = None
    amp = 1.0
    for k in range(octaves):
        cells = min(base * 2**k + 1, longest)
        gh = max(2, int(round(cells * h / longest)) + 1)
        gw = max(2, int(round(cells * w / longest)) + 1)
        grid = rng.standard_normal((gh, gw)).astype(np.float32) * np.float32(amp)
        out = grid if out is None else cv2.resize(out, (gw, gh), interpolation=cv2.INTER_CUBIC) + grid
        amp *= persistence
    out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
    lo, hi = cv2.minMaxLoc(out)[:2]
    return (out - np.float32(lo)) * np.float32(1.0 / max(hi - lo, 1e-6))


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates as broadcastable float32 (h, 1) rows and (1, w) columns."""
    return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


def _random_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random RGB colours in [0, 1], float32 (n, 3), from random hue/saturation/value."""
    hsv = np.stack([rng.uniform(0, 180, n), rng.uniform(0, 255, n), rng.uniform(40, 255, n)], axis=1)
    rgb = cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0]
    return rgb.astype(np.float32) / 255.0


def _ramp_table(colours: np.ndarray) -> np.ndarray:
    """A 256-entry piecewise-linear colour ramp through ``colours`` (k, 3): float32 (256, 3)."""
    colours = np.asarray(colours, np.float32)
    x = np.linspace(0.0, 1.0, 256) * (len(colours) - 1)
    i = np.minimum(x.astype(np.int32), len(colours) - 2)
    f = (x - i)[:, None].astype(np.float32)
    return np.ascontiguousarray(colours[i] * (1 - f) + colours[i + 1] * f, dtype=np.float32)


def _ramp(t: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Map t (H, W) in [0, 1] through the colour ramp of :func:`_ramp_table`: float32 (H, W, 3)."""
    idx = cv2.convertScaleAbs(np.asarray(t, np.float32), alpha=255.0)  # rounds and saturates to uint8
    return cv2.LUT(cv2.merge([idx, idx, idx]), _ramp_table(colours)[None])


def _crop_photo(rng: np.random.Generator, photo: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    ph, pw = photo.shape[:2]
    # crop with the target's aspect ratio, between 30 % and 100 % of the largest such crop
    fit = min(ph / h, pw / w)
    s = fit * rng.uniform(0.3, 1.0)
    ch, cw = max(2, min(ph, int(h * s))), max(2, min(pw, int(w * s)))
    y = int(rng.integers(0, ph - ch + 1))
    x = int(rng.integers(0, pw - cw + 1))
    crop = photo[y : y + ch, x : x + cw]
    interp = cv2.INTER_AREA if ch > h else cv2.INTER_LINEAR
    out = cv2.resize(crop, (w, h), interpolation=interp)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return out


def photo_background(rng: np.random.Generator, shape: tuple[int, int], name: str | None = None) -> np.ndarray:
    """A random crop of one of :data:`PHOTOS` resized to ``shape``, uint8 (H, W, 3) sRGB."""
    if name is None:
        names = list(PHOTOS)
        p = np.array([_PHOTO_WEIGHTS.get(n, 1.0) for n in names])
        name = names[int(rng.choice(len(names), p=p / p.sum()))]
    out = _crop_photo(rng, load_photo(name), shape)
    if out.ndim == 2:  # grey texture: tint with a random ramp, sometimes flipped vertically
        if rng.random() < 0.5:
            out = out[::-1]
        table = np.round(_ramp_table(np.sort(_random_colours(rng, 2), axis=0)) * 255).astype(np.uint8)
        out = cv2.LUT(cv2.merge([np.ascontiguousarray(out)] * 3), table[None])
    return np.ascontiguousarray(out)


def procedural_background(
    rng: np.random.Generator, shape: tuple[int, int], kind: str | None = None
) -> np.ndarray:
    """A procedural texture of ``kind`` (one of :data:`PROCEDURAL_KINDS`), uint8 (H, W, 3) sRGB."""
    return cv2.convertScaleAbs(_procedural(rng, shape, kind), alpha=255.0)


def _procedural(rng: np.random.Generator, shape: tuple[int, int], kind: str | None) -> np.ndarray:
    h, w = shape
    if kind is None:
        kind = PROCEDURAL_KINDS[int(rng.integers(len(PROCEDURAL_KINDS)))]
    if kind == "noise":
        t = fractal_noise(rng, shape, octaves=int(rng.integers(3, 7)), base=int(rng.integers(2, 6)))
        return _ramp(t, _random_colours(rng, int(rng.integers(2, 5))))
    if kind == "gradient":
        yy, xx = _grid(h, w)
        ang = rng.uniform(0, 2 * np.pi)
        t = (np.cos(ang) * xx / w + np.sin(ang) * yy / h) * 0.5 + 0.5
        t = 0.8 * t + 0.2 * fractal_noise(rng, shape, octaves=5)
        return _ramp(t, _random_colours(rng, 3))
    if kind == "stripes":
        yy, xx = _grid(h, w)
        ang = rng.uniform(0, np.pi)
        period = rng.uniform(4, 40) * max(h, w) / 256
        warp = fractal_noise(rng, shape, octaves=3) * rng.uniform(0, 3 * period)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * ((np.cos(ang) * xx + np.sin(ang) * yy) + warp) / period)
        if rng.random() < 0.5:
            t = (t > 0.5).astype(np.float32)
            t = cv2.GaussianBlur(t, (0, 0), 0.7)
        return _ramp(t, _random_colours(rng, 2))
    if kind == "bokeh":  # night-street look: blurred bright discs on a dark noisy base
        base = _ramp(fractal_noise(rng, shape, octaves=3), _random_colours(rng, 2) * 0.35)
        acc = np.zeros((h, w, 3), np.float32)
        n = int(rng.integers(10, 40))
        cols = _random_colours(rng, n)
        scale = max(h, w) / 256
        for (cy, cx), r, c in zip(
            rng.uniform(0, 1, (n, 2)) * (h, w), rng.uniform(3, 18, n) * scale, cols, strict=True
        ):
            cv2.circle(
                acc, (int(cx), int(cy)), int(r), tuple(float(v) for v in c * rng.uniform(0.4, 1.0)), -1
            )
        acc = cv2.GaussianBlur(acc, (0, 0), rng.uniform(1.0, 4.0) * scale)
        return np.clip(base + acc, 0, 1)
    if kind == "blotches":  # foliage-like: thresholded noise layers painted in different colours
        labels = np.zeros((h, w), np.uint8)
        n = int(rng.integers(2, 5))
        for k in range(1, n + 1):
            m = fractal_noise(rng, shape, octaves=5, base=int(rng.integers(3, 9)))
            labels[m > rng.uniform(0.45, 0.65)] = k
        table = np.zeros((256, 3), np.float32)
        table[: n + 1] = _random_colours(rng, n + 1)
        out = cv2.LUT(cv2.merge([labels, labels, labels]), table[None])
        return cv2.GaussianBlur(out, (0, 0), 0.6 * max(h, w) / 256)
    raise ValueError(f"procedural_background: unknown kind {kind!r} (expected one of {PROCEDURAL_KINDS})")


def colour_shift(rng: np.random.Generator, image: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Random gain per channel, brightness, gamma and saturation of a uint8 (H, W, 3) image (uint8 out).

    Gains, brightness and gamma are one lookup table per channel; saturation mixes with the grey image.
    """
    gains = (1.0 + strength * rng.uniform(-0.15, 0.15, 3)) * (1.0 + strength * rng.uniform(-0.3, 0.25))
    gamma = np.exp(strength * rng.uniform(-0.3, 0.3))
    x = np.arange(256) / 255.0
    table = np.stack([np.clip(x * g, 0, 1) ** gamma for g in gains], axis=1)
    out = cv2.LUT(np.ascontiguousarray(image), np.round(table * 255).astype(np.uint8)[None])
    sat = 1.0 + strength * rng.uniform(-0.5, 0.4)
    grey = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(out, sat, grey, 1.0 - sat, 0.0)


def random_background(
    rng: np.random.Generator, shape: tuple[int, int], p_photo: float = 0.55, source: str = "all"
) -> np.ndarray:
    """A random background, uint8 (H, W, 3) sRGB.

    Args:
        rng: NumPy generator (its state decides everything).
        shape: (H, W) of the output.
        p_photo: chance of a photograph (when ``source == "all"``).
        source: ``"all"``, ``"photos"`` (only :data:`PHOTOS`) or ``"procedural"``.
    """
    if source not in ("all", "photos", "procedural"):
        raise ValueError(f"random_background: source must be 'all', 'photos' or 'procedural', got {source!r}")
    h, w = int(shape[0]), int(shape[1])
    use_photo = source == "photos" or (source == "all" and rng.random() < p_photo)
    out = photo_background(rng, (h, w)) if use_photo else procedural_background(rng, (h, w))
    out = colour_shift(rng, out)
    if rng.random() < 0.25:  # defocused background, as in portrait photos
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.8, 3.0) * max(h, w) / 256)
    return out
