"""A procedural matting generator: foregrounds that make alpha matting genuinely hard, composited on real
photographs and procedural textures.

Public matting sets (Composition-1k, P3M-10k, AM-2k, AIM-500, PPM-100) cannot be downloaded here, so the
course makes its own. Each foreground is layered (back to front, "over" operator of Porter & Duff, 1984,
on premultiplied linear colour) from parts chosen at random:

* a **solid body** (a smooth random blob, or two) with exact anti-aliased outlines, sometimes with
  **holes** (ellipses cut through) or a **lace** pattern, and sometimes a **fuzzy** stretch of boundary
  (defocus blur under a noise mask) or a **fur** fringe of many short sub-pixel strands;
* **hair**: bundles of thin curved strands 0.25-0.75 px wide, drawn on a 4x supersampled canvas and
  area-averaged, so alpha along a strand is fractional (like hair in Composition-1k, Xu et al. 2017);
* **semi-transparent** parts: a textured veil, wisps of smoke, or a glass-like disc (alpha 0.1-0.9);
* **motion blur** of the whole foreground (applied to premultiplied colour and alpha together).

Foreground colours are textured and, in some samples, close to the background's colour. The image is
composited in linear light, ``I = alpha F + (1 - alpha) B``, then converted to sRGB (see
:func:`lowlight_matting.color.composite`); ``alpha`` is quantised to 1/255 so the saved PNGs read back
exactly.

Determinism: sample ``i`` is drawn from ``np.random.default_rng([seed, i])`` only, so it is the same in any
process, DataLoader worker and order of access.

Example:
    >>> ds = SyntheticMattingDataset(4, size=64, seed=0)
    >>> item = ds[1]
    >>> item["image"].shape, item["alpha"].dtype, sorted(item)
    ((64, 64, 3), dtype('float32'), ['alpha', 'bg', 'fg', 'image'])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from lowlight_matting.color import composite_linear as _composite_linear
from lowlight_matting.color import linear_to_u8, u8_to_linear
from lowlight_matting.data.backgrounds import _grid, _random_colours, fractal_noise, random_background

SUPERSAMPLE = 4
"""Strands and outlines are drawn at this many sub-pixels per pixel side, then area-averaged."""

_SHIFT = 3  # fixed-point bits for cv2 drawing coordinates


@dataclass(frozen=True)
class SyntheticConfig:
    """Probabilities of each foreground part (per sample) and background options.

    The defaults are the course's ONE data definition: the base model, the low-light fine-tune, the demo's
    test sets and the notebooks all draw from ``SyntheticConfig()``. They are the mix the quick demo
    used before the base model existed, chosen then so that a small CV-UNet trained on a CPU learns to
    matte them: no foreground coloured like its background (``p_similar_colour=0``: ambiguous even for a
    person), hair in 40 % of the samples, fur 10 %, semi-transparent parts 20 %, a real photograph behind
    30 %. Pass other values for harder data.
    """

    p_body: float = 0.92
    p_second_body: float = 0.35
    p_hair: float = 0.4
    p_fur: float = 0.1
    p_fuzzy: float = 0.35
    p_holes: float = 0.3
    p_lace: float = 0.12
    p_transparent: float = 0.2
    p_motion: float = 0.2
    p_similar_colour: float = 0.0
    p_photo: float = 0.3
    backgrounds: str = "all"

    def __post_init__(self):
        for k, v in asdict(self).items():
            if k.startswith("p_") and not 0.0 <= v <= 1.0:
                raise ValueError(f"SyntheticConfig: {k} must be in [0, 1], got {v}")
        if self.backgrounds not in ("all", "photos", "procedural"):
            raise ValueError(
                f"SyntheticConfig: backgrounds must be 'all', 'photos' or 'procedural', got {self.backgrounds!r}"
            )


# ----------------------------------------------------------------------------------------------- geometry
def _blob(rng: np.random.Generator, centre, radius: float, n: int = 128) -> np.ndarray:
    """Closed smooth random outline (n, 2) in (x, y): a circle with random Fourier harmonics, stretched and
    rotated."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    rough = rng.uniform(0.05, 0.35)
    for k in range(2, 8):
        r += rng.normal(0, rough / k**1.2) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    r = np.clip(r, 0.35, None) * radius
    sx, sy = rng.uniform(0.7, 1.3, 2)
    x, y = r * np.cos(t) * sx, r * np.sin(t) * sy
    a = rng.uniform(0, 2 * np.pi)
    ca, sa = np.cos(a), np.sin(a)
    return np.stack([ca * x - sa * y + centre[0], sa * x + ca * y + centre[1]], axis=1)


def _outward_normals(pts: np.ndarray) -> np.ndarray:
    """Unit outward normals (n, 2) of a closed outline (n, 2)."""
    tangent = np.roll(pts, -1, axis=0) - np.roll(pts, 1, axis=0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
    if np.mean(np.sum(normal * (pts - pts.mean(axis=0)), axis=1)) < 0:
        normal = -normal
    return normal


def _strand_paths(
    rng: np.random.Generator,
    roots: np.ndarray,
    angles: np.ndarray,
    lengths: np.ndarray,
    curl: float,
    n_pts: int,
) -> np.ndarray:
    """Curved strands (m, n_pts, 2): each starts at ``roots[j]`` heading ``angles[j]``, bends with a random
    curvature plus a gentle wave, and has arc length ``lengths[j]``."""
    m = len(roots)
    s = np.linspace(0.0, 1.0, n_pts)[None, :]
    curvature = rng.normal(0, curl, (m, 1)) * np.pi
    wave = rng.uniform(0, 0.35, (m, 1)) * np.sin(
        2 * np.pi * rng.uniform(0.5, 2.0, (m, 1)) * s + rng.uniform(0, 6.3, (m, 1))
    )
    theta = angles[:, None] + curvature * s + wave + rng.normal(0, 0.04, (m, n_pts)).cumsum(axis=1)
    step = (lengths / (n_pts - 1))[:, None]
    d = np.stack([np.cos(theta) * step, np.sin(theta) * step], axis=2)
    d[:, 0] = 0.0
    return roots[:, None, :] + d.cumsum(axis=1)


class _Canvas:
    """A supersampled uint8 coverage canvas; :meth:`alpha` area-averages it to float32 (H, W)."""

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self.a = np.zeros((shape[0] * SUPERSAMPLE, shape[1] * SUPERSAMPLE), np.uint8)

    @staticmethod
    def _fix(pts: np.ndarray) -> np.ndarray:
        # pixel (x, y) centre maps to sub-pixel centre (x + 0.5) * S - 0.5, in fixed point
        return np.round(((pts + 0.5) * SUPERSAMPLE - 0.5) * (1 << _SHIFT)).astype(np.int32)

    def fill(self, outline: np.ndarray, value: int = 255) -> None:
        cv2.fillPoly(self.a, [self._fix(outline)], value, cv2.LINE_8, _SHIFT)

    def ellipse(self, centre, axes, angle: float, value: int = 0) -> None:
        c = self._fix(np.asarray(centre, float))
        ax = np.round(np.asarray(axes, float) * SUPERSAMPLE * (1 << _SHIFT)).astype(int)
        cv2.ellipse(
            self.a,
            (int(c[0]), int(c[1])),
            (int(ax[0]), int(ax[1])),
            angle,
            0,
            360,
            value,
            -1,
            cv2.LINE_8,
            _SHIFT,
        )

    def lines(self, paths: np.ndarray, thickness: int = 1) -> None:
        if len(paths):
            cv2.polylines(self.a, self._fix(paths), False, 255, thickness, cv2.LINE_8, _SHIFT)

    def alpha(self) -> np.ndarray:
        h, w = self.shape
        return cv2.resize(self.a, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) * np.float32(
            1 / 255
        )


# ---------------------------------------------------------------------------------------------- colours
def _texture(rng: np.random.Generator, shape, base: np.ndarray) -> np.ndarray:
    """Textured linear colour (H, W, 3) around ``base`` (3,) linear: noise shading, sometimes stripes or a
    second colour."""
    h, w = shape
    small = (max(8, h // 4), max(8, w // 4))  # textures are smooth: make them at 1/4 size and upsample
    t = fractal_noise(rng, small, octaves=4, base=int(rng.integers(2, 8)))
    kind = rng.random()
    if kind < 0.3:
        other = np.clip(base * rng.uniform(0.3, 1.7, 3), 0, 1).astype(np.float32)
        tex = base + (other - base) * t[..., None]
    elif kind < 0.5:
        yy, xx = _grid(*small)
        ang = rng.uniform(0, np.pi)
        stripes = 0.5 + 0.5 * np.sin((np.cos(ang) * xx + np.sin(ang) * yy) * rng.uniform(0.3, 1.5) + 4 * t)
        tex = base * (0.55 + 0.9 * stripes[..., None])
    else:
        tex = base * (0.5 + t[..., None])
    tex = cv2.resize(tex.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(tex, 0, 1)


def _colour(rng: np.random.Generator, bg_lin: np.ndarray, region, similar: bool) -> np.ndarray:
    """A base colour (3,) in linear light: random, or (``similar``) close to the background in ``region``."""
    if similar:
        y0, y1, x0, x1 = region
        mean = np.array(cv2.mean(bg_lin[y0:y1, x0:x1])[:3])
        return np.clip(mean * rng.uniform(0.8, 1.25, 3), 0.002, 1).astype(np.float32)
    return (_random_colours(rng, 1)[0] ** 2.2).astype(np.float32)


def _rgb(a: np.ndarray) -> np.ndarray:
    """(H, W) -> contiguous (H, W, 3) copy (broadcasting a (H, W, 1) view is ~9x slower in numpy)."""
    return cv2.merge([a, a, a])


def _region(pts: np.ndarray, shape) -> tuple[int, int, int, int]:
    h, w = shape
    x0, y0 = np.clip(pts.min(axis=0).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(pts.max(axis=0).astype(int) + 1, 1, [w, h])
    return int(y0), int(max(y1, y0 + 1)), int(x0), int(max(x1, x0 + 1))


_MAX_TAPS = 11  # OpenCV switches filter2D to a ~50x slower DFT path for kernels larger than 11x11


def _line_kernel(length: int, angle: float) -> np.ndarray:
    """A normalised anti-aliased line of ``length`` (odd) pixels at ``angle`` (radians)."""
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = np.cos(angle) * c, np.sin(angle) * c
    p0 = (int(round(c - dx)), int(round(c - dy)))
    p1 = (int(round(c + dx)), int(round(c + dy)))
    cv2.line(k, p0, p1, 1.0, 1, cv2.LINE_AA)
    return k / k.sum()


def _motion_blur(rng: np.random.Generator, image: np.ndarray, scale: float) -> np.ndarray:
    """Linear motion blur of 5-21 px (x ``scale``) at a random angle. Long blurs are split into passes of
    at most 11 taps, which gives a smooth (triangular to Gaussian) profile along the motion."""
    length = max(3.0, rng.uniform(5, 21) * scale)
    angle = rng.uniform(0, np.pi)
    passes = int(np.ceil(length / _MAX_TAPS))
    taps = min(_MAX_TAPS, max(3, int(round(length / passes)) | 1))
    kernel = _line_kernel(taps, angle)
    for _ in range(passes):
        image = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return image


# --------------------------------------------------------------------------------------------- generator
def generate_sample(
    rng: np.random.Generator, size: int | tuple[int, int] = 256, config: SyntheticConfig | None = None
) -> dict[str, np.ndarray]:
    """One synthetic matting sample from ``rng``.

    Returns:
        dict with ``image`` uint8 (H, W, 3) sRGB composite, ``alpha`` float32 (H, W) in [0, 1] (multiples of
        1/255), ``fg`` uint8 (H, W, 3) and ``bg`` uint8 (H, W, 3); ``image == composite(fg, bg, alpha)``.
    """
    cfg = config or SyntheticConfig()
    h, w = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
    if h < 8 or w < 8:
        raise ValueError(f"generate_sample: size must be at least 8 pixels, got {(h, w)}")
    shape = (h, w)
    side = float(min(h, w))
    scale = side / 256.0

    bg = random_background(rng, shape, p_photo=cfg.p_photo, source=cfg.backgrounds)
    bg_lin = u8_to_linear(bg)

    # which parts this sample has; at least one of them, hair when the draw gave none
    has_body, has_hair, has_transparent = rng.random(3) < (cfg.p_body, cfg.p_hair, cfg.p_transparent)
    if not (has_body or has_hair or has_transparent):
        has_hair = True

    layers: list[tuple[np.ndarray, np.ndarray]] = []  # (alpha (H, W), linear colour (H, W, 3)), back to front
    base_colour = None
    outlines: list[np.ndarray] = []

    # --- solid body (one or two blobs) with holes, lace, fuzzy edges or a fur fringe
    if has_body:
        canvas = _Canvas(shape)
        n_bodies = 2 if rng.random() < cfg.p_second_body else 1
        centre = np.array([w, h]) * rng.uniform(0.3, 0.7, 2)
        for b in range(n_bodies):
            c = centre if b == 0 else centre + rng.normal(0, 0.25, 2) * side
            pts = _blob(rng, c, side * rng.uniform(0.14, 0.3) * (0.7 if b else 1.0))
            canvas.fill(pts)
            outlines.append(pts)
        if rng.random() < cfg.p_holes:
            for _ in range(int(rng.integers(1, 5))):
                o = outlines[0]
                p = o.mean(axis=0) + (o[int(rng.integers(len(o)))] - o.mean(axis=0)) * rng.uniform(0, 0.6)
                canvas.ellipse(p, side * rng.uniform(0.01, 0.07, 2), rng.uniform(0, 180), value=0)
        if rng.random() < cfg.p_fur:
            o = np.concatenate(outlines)
            nrm = (
                _outward_normals(outlines[0])
                if len(outlines) == 1
                else np.concatenate([_outward_normals(q) for q in outlines])
            )
            m = int(len(o) * rng.uniform(4, 10))
            idx = rng.integers(0, len(o), m)
            roots = o[idx] + rng.normal(0, 0.6, (m, 2))
            ang = np.arctan2(nrm[idx, 1], nrm[idx, 0]) + rng.normal(0, 0.5, m)
            canvas.lines(
                _strand_paths(
                    rng, roots - nrm[idx] * 2 * scale, ang, side * rng.uniform(0.02, 0.07, m), 0.3, 6
                )
            )
        a = canvas.alpha()
        if rng.random() < cfg.p_lace:
            yy, xx = _grid(h, w)
            period = rng.uniform(5, 12) * scale
            ang = rng.uniform(0, np.pi)
            u = (np.cos(ang) * xx + np.sin(ang) * yy) / period
            v = (-np.sin(ang) * xx + np.cos(ang) * yy) / period
            pattern = np.sin(2 * np.pi * u) * np.sin(2 * np.pi * v)
            holes = np.clip((pattern - 0.35) * 4.0 / max(scale, 0.25), 0, 1)
            band = np.clip((fractal_noise(rng, shape, 3) - 0.5) * 8, 0, 1)
            a = a * (1 - holes * band)
        if rng.random() < cfg.p_fuzzy:
            sigma = rng.uniform(1.5, 5.0) * scale
            soft = cv2.GaussianBlur(a, (0, 0), sigma)
            mask = np.clip((fractal_noise(rng, shape, 3) - rng.uniform(0.3, 0.6)) * 6, 0, 1)
            a = a + (soft - a) * mask
        region = _region(np.concatenate(outlines), shape)
        base_colour = _colour(rng, bg_lin, region, rng.random() < cfg.p_similar_colour)
        layers.append((a, _texture(rng, shape, base_colour)))

    # --- hair: bundles of sub-pixel curved strands rooted on the body outline (or anywhere without one)
    if has_hair:
        canvas = _Canvas(shape)
        for _ in range(int(rng.integers(2, 9))):
            if outlines:
                o = outlines[0]
                j = int(rng.integers(len(o)))
                nrm = _outward_normals(o)[j]
                root, heading = o[j] - nrm * rng.uniform(1, 6) * scale, np.arctan2(nrm[1], nrm[0])
                tangent = np.array([-nrm[1], nrm[0]])
            else:
                root = np.array([w, h]) * rng.uniform(0.2, 0.8, 2)
                heading = rng.uniform(0, 2 * np.pi)
                tangent = np.array([-np.sin(heading), np.cos(heading)])
            m = int(rng.integers(15, 70))
            spread = side * rng.uniform(0.01, 0.08)
            roots = root + tangent * rng.normal(0, spread, (m, 1))
            heading = heading + rng.normal(0, 0.5)
            ang = heading + rng.normal(0, rng.uniform(0.03, 0.2), m)
            length = side * rng.uniform(0.12, 0.45)
            paths = _strand_paths(
                rng, roots, ang, length * rng.uniform(0.6, 1.1, m), rng.uniform(0.05, 0.4), 24
            )
            k = int(m * rng.uniform(0.0, 0.3))  # a few thicker strands (0.75 px), the rest 0.25 px
            canvas.lines(paths[:k], 2)
            canvas.lines(paths[k:], 1)
        a = canvas.alpha()  # coverage of the union of all strands, exact up to the 4x4 sub-pixel grid
        near = base_colour is not None and rng.random() < 0.5
        hair_colour = (
            np.clip(base_colour * rng.uniform(0.6, 1.4, 3), 0.002, 1)
            if near
            else _colour(rng, bg_lin, (0, h, 0, w), rng.random() < cfg.p_similar_colour)
        )
        layers.append((a.astype(np.float32), _texture(rng, shape, hair_colour.astype(np.float32))))

    # --- semi-transparent parts: veil, smoke or glass (alpha roughly 0.1-0.9, textured)
    if has_transparent:
        kind = ("veil", "smoke", "glass")[int(rng.integers(3))]
        noise = fractal_noise(rng, shape, octaves=5, base=int(rng.integers(2, 6)))
        if kind == "veil":
            c = np.array([w, h]) * rng.uniform(0.25, 0.75, 2)
            canvas = _Canvas(shape)
            canvas.fill(_blob(rng, c, side * rng.uniform(0.15, 0.35)))
            lo, hi = sorted(rng.uniform(0.1, 0.9, 2))
            a = canvas.alpha() * (lo + (hi - lo) * noise)
            col = _texture(rng, shape, _colour(rng, bg_lin, (0, h, 0, w), False))
        elif kind == "smoke":
            yy, xx = _grid(h, w)
            cx, cy = np.array([w, h]) * rng.uniform(0.2, 0.8, 2)
            r = side * rng.uniform(0.1, 0.25)
            fall = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
            fall = np.clip((fall - 0.1) * np.float32(1 / 0.9), 0, 1)  # a wisp, not a haze over the frame
            a = (
                np.clip((noise - rng.uniform(0.2, 0.5)) * rng.uniform(1.5, 4), 0, 1)
                * fall
                * rng.uniform(0.5, 0.9)
            )
            col = np.empty((h, w, 3), np.float32)
            col[:] = rng.uniform(0.3, 0.9) * rng.uniform(0.9, 1.1, 3)
        else:
            yy, xx = _grid(h, w)
            cx, cy = np.array([w, h]) * rng.uniform(0.25, 0.75, 2)
            rx, ry = side * rng.uniform(0.1, 0.25, 2)
            d = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
            inside = np.clip((1 - d) * min(rx, ry), 0, 1)  # 1-pixel anti-aliased rim
            lo, hi = rng.uniform(0.08, 0.3), rng.uniform(0.6, 0.9)
            a = inside * (lo + (hi - lo) * np.clip(d, 0, 1) ** 4 + 0.1 * (noise - 0.5))
            col = np.empty((h, w, 3), np.float32)
            col[:] = np.clip(_random_colours(rng, 1)[0] * 0.4 + 0.6, 0, 1) ** 2.2
            streak = np.exp(-(((xx - cx) + (yy - cy) - 0.3 * rx) ** 2) / (2 * (0.08 * rx) ** 2)) * (d < 0.9)
            col = np.clip(col + streak[..., None], 0, 1)
            a = np.maximum(a, inside * 0.9 * streak)
        a = np.clip(a, 0, 1).astype(np.float32)
        if rng.random() < 0.5 or len(layers) == 0:
            layers.append((a, col.astype(np.float32)))
        else:
            layers.insert(0, (a, col.astype(np.float32)))

    # --- composite the parts (premultiplied, linear light); (H, W, 3) alpha copies keep numpy contiguous
    alpha = np.zeros(shape, np.float32)
    premult = np.zeros((h, w, 3), np.float32)
    for a, col in layers:
        premult += _rgb(a) * (col - premult)
        alpha += a * (1 - alpha)
    if rng.random() < cfg.p_motion:
        both = _motion_blur(rng, np.dstack([premult, alpha]), scale)
        premult, alpha = np.ascontiguousarray(both[:, :, :3]), np.ascontiguousarray(both[:, :, 3])

    a3 = _rgb(alpha)
    fg_lin = premult / np.maximum(a3, np.float32(1e-3))
    np.copyto(fg_lin, layers[0][1], where=a3 <= 1e-3)  # no foreground here: keep the back layer's texture
    alpha = np.round(np.clip(alpha, 0, 1) * np.float32(255)) / np.float32(255)  # as read_alpha reads 8 bits
    fg = linear_to_u8(fg_lin)
    image = _composite_linear(u8_to_linear(fg), bg_lin, alpha)
    return {"image": image, "alpha": alpha.astype(np.float32), "fg": fg, "bg": bg}


class SyntheticMattingDataset:
    """``length`` procedural matting samples of ``size`` pixels (int or (H, W)); see the module docstring.

    ``ds[i]`` → dict(``image`` uint8 (H, W, 3), ``alpha`` float32 (H, W), ``fg`` uint8, ``bg`` uint8), drawn
    from ``np.random.default_rng([seed, i])``: identical in every process, worker and order of access.

    Args:
        length: number of samples.
        size: side (int) or (H, W).
        seed: dataset seed.
        transform: optional callable ``t(image=, alpha=, fg=, bg=) -> dict`` (e.g.
            :func:`lowlight_matting.augment.build_train_transform`, which moves fg and bg with the image's
            geometry); its outputs replace all four.
        **config: fields of :class:`SyntheticConfig` (probabilities of each part, ``backgrounds``).
    """

    def __init__(
        self,
        length: int,
        size: int | tuple[int, int] = 256,
        seed: int = 0,
        transform: Callable | None = None,
        **config,
    ):
        if int(length) < 0:
            raise ValueError(f"SyntheticMattingDataset: length must be >= 0, got {length}")
        self.length = int(length)
        self.size = size
        self.seed = int(seed)
        self.transform = transform
        self.config = SyntheticConfig(**config)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        index = int(index)
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"SyntheticMattingDataset: index {index} out of range for length {self.length}")
        item = generate_sample(np.random.default_rng([self.seed, index]), self.size, self.config)
        if self.transform is not None:
            out = self.transform(image=item["image"], alpha=item["alpha"], fg=item["fg"], bg=item["bg"])
            item = {k: out[k] for k in ("image", "alpha", "fg", "bg")}
        return item

    def reseed(self, seed: int) -> None:
        """Reseed the optional ``transform`` (called per DataLoader worker by ``seeding.worker_init_fn``).

        The composites themselves depend only on (seed, index), so workers never repeat each other; a
        random transform, however, is copied into every worker with the same state and must be reseeded.
        """
        if self.transform is None:
            return
        reseed = getattr(self.transform, "reseed", None)
        if callable(reseed):
            reseed(seed)
        else:
            from lowlight_matting.augment import reseed_transform

            reseed_transform(self.transform, seed)

    def __repr__(self) -> str:
        return f"SyntheticMattingDataset(length={self.length}, size={self.size}, seed={self.seed})"
