"""The physically based low-light simulator in NumPy, one uint8 image at a time (DataLoader workers, the CLI).

The steps of :meth:`LowLightSimulator.apply` (the batched :func:`~lowlight_matting.simulate.simulate_batch`
applies the same steps in the same order):

1. sRGB -> linear light (:func:`lowlight_matting.color.srgb_to_linear`);
2. a colour cast: per-channel white-balance gains ``wb`` (the scene's illuminant is not the one the camera
   assumed);
3. optional motion blur (hand shake during the longer exposure), kernel :func:`motion_blur_kernel`, edges
   mirrored without repeating the border pixel (``cv2.BORDER_REFLECT_101``, torch's ``"reflect"``);
4. exposure cut: divide by the ratio ``r``;
5. sensor noise :func:`~lowlight_matting.simulate.add_sensor_noise` (variance ``shot * x + read``), plus an
   optional per-row offset of std ``row_std`` (banding);
6. ISP digital gain ``gain`` (the bright-but-noisy phone night look);
7. clip at the black and white points, back to sRGB, tone exponent ``gamma``, rounding to 8 bits;
8. optional JPEG re-encoding at ``jpeg_quality`` (:func:`jpeg_roundtrip`, OpenCV's libjpeg).

Parameters are drawn by :func:`sample_params` from the one law of :mod:`.params`.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import cv2
import numpy as np

from lowlight_matting.color import linear_to_srgb, srgb_to_linear
from lowlight_matting.simulate.noise import add_sensor_noise
from lowlight_matting.simulate.params import (
    PARAM_DEFAULTS,
    check_ranges,
    draw_params,
    preset_ranges,
)

__all__ = ["LowLightSimulator", "jpeg_roundtrip", "motion_blur_kernel", "sample_params"]


def sample_params(rng, **ranges: Any) -> dict[str, Any]:
    """Draw one set of :meth:`LowLightSimulator.apply` parameters from the law of :mod:`.params`.

    ``rng``: a NumPy Generator (advanced) or a seed; ``ranges``: overrides of ``DEFAULT_RANGES``. Returns
    Python floats (``wb``: a 3-tuple; ``jpeg_quality`` and ``noise_seed``: ints), JSON-serialisable.

    >>> p = sample_params(np.random.default_rng(0), p_jpeg=1.0)
    >>> 40 <= p["jpeg_quality"] <= 90, p["wb"][1]
    (True, 1.0)
    """
    rr = check_ranges(ranges)
    rng = np.random.default_rng(rng)
    p = draw_params(lambda: rng.random(1), lambda: rng.standard_normal(1), np, rr)
    out: dict[str, Any] = {k: float(v[0]) for k, v in p.items() if k not in ("wb", "jpeg_quality")}
    out["wb"] = tuple(float(g) for g in p["wb"][0])
    out["jpeg_quality"] = int(p["jpeg_quality"][0])
    out["noise_seed"] = int(rng.integers(0, 2**31 - 1))
    return out


def motion_blur_kernel(length: float, angle: float, size: int | None = None) -> np.ndarray:
    """A normalised linear motion-blur kernel: a line of ``length`` pixels at ``angle`` degrees.

    Weight of pixel ``p`` (offset from the centre): ``max(0, 1 - |perp(p)|)`` where ``|along(p)| <= length/2``,
    normalised to sum 1. ``length <= 1`` gives the identity (a delta). ``size``: odd side (default: smallest
    fit). Returns float32 ``(size, size)``. (No library builds this anti-aliased line kernel for an arbitrary
    length and angle; albumentations' ``MotionBlur`` draws random ones. The batched torch path builds the same
    formula for a whole batch, see ``simulate.torch_sim.motion_blur_kernels``.)
    """
    if size is None:
        size = max(1, int(math.ceil(length)) | 1)
    h = size // 2
    if length <= 1.0:  # no blur; the line formula would still give the 8 neighbours a little weight
        delta = np.zeros((size, size), np.float32)
        delta[h, h] = 1.0
        return delta
    yy, xx = np.mgrid[-h : h + 1, -h : h + 1].astype(np.float32)
    t = math.radians(angle)
    along = xx * np.float32(math.cos(t)) + yy * np.float32(math.sin(t))
    perp = -xx * np.float32(math.sin(t)) + yy * np.float32(math.cos(t))
    w = np.maximum(0.0, 1.0 - np.abs(perp)) * (np.abs(along) <= length / 2 + 1e-6)
    return (w / w.sum()).astype(np.float32)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode uint8 RGB ``image`` (H, W, 3) as a baseline JPEG at ``quality`` (1-100) and decode it (OpenCV).

    Both simulators call this, so their JPEG step is the same codec with the same settings (4:2:0 chroma).
    """
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"jpeg_roundtrip: quality must be in [1, 100], got {quality}")
    ok, enc = cv2.imencode(
        ".jpg", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
        raise RuntimeError("jpeg_roundtrip: JPEG encoding failed")
    return np.ascontiguousarray(cv2.imdecode(enc, cv2.IMREAD_COLOR)[:, :, ::-1])


class LowLightSimulator:
    """Physically based low-light simulation of uint8 sRGB photos (steps in the module docstring).

    ``LowLightSimulator(seed=None, **ranges)``: ``ranges`` override ``DEFAULT_RANGES`` (e.g. ``ratio=(4, 8)``,
    ``p_gain=0``); unknown names raise. ``sim(image)`` draws parameters with :func:`sample_params`, stores
    them in ``sim.last_params`` and returns the low-light uint8 image; ``sim.apply(image, **params)`` is the
    deterministic form (the noise comes from ``params["noise_seed"]``); ``sim.reseed(seed)`` restarts the
    random stream (DataLoader workers, see :func:`lowlight_matting.seeding.worker_init_fn`).
    ``LowLightSimulator.from_preset(name)`` uses ``SIMULATOR_PRESETS[name]`` ("default", "mild", "extreme",
    "exposure_only").

    >>> sim = LowLightSimulator.from_preset("mild", seed=1)
    >>> sim(np.zeros((8, 8, 3), np.uint8)).shape
    (8, 8, 3)
    """

    def __init__(self, seed: int | None = None, **ranges: Any) -> None:
        self.ranges = check_ranges(ranges)
        self._overrides = dict(ranges)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.last_params: dict[str, Any] | None = None

    @classmethod
    def from_preset(
        cls, name: str = "default", seed: int | None = None, **overrides: Any
    ) -> LowLightSimulator:
        return cls(seed=seed, **preset_ranges(name, **overrides))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._overrides.items())
        return f"LowLightSimulator(seed={self.seed!r}{', ' if args else ''}{args})"

    def reseed(self, seed: int | None) -> None:
        """Restart the random stream from ``seed``."""
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def sample_params(self) -> dict[str, Any]:
        """Draw one parameter set (advances the stream)."""
        return sample_params(self.rng, **self._overrides)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        params = self.sample_params()
        out = self.apply(image, **params)
        self.last_params = copy.deepcopy(params)
        return out

    @staticmethod
    def apply(image: np.ndarray, **params: Any) -> np.ndarray:
        """Simulate low light with the given parameters (missing ones mean "off"); deterministic.

        Parameters (all optional): ``ratio`` (exposure cut, >= 1), ``shot``, ``read`` (noise variances, see
        :func:`add_sensor_noise`), ``row_std`` (std of a per-row offset, linear units), ``wb`` (3 channel
        gains), ``gain`` (ISP digital gain), ``blur_length`` (pixels; 0 = none), ``blur_angle`` (degrees),
        ``gamma`` (tone exponent on the sRGB output), ``jpeg_quality`` (0 = none), ``noise_seed``.
        ``image``: uint8 RGB (H, W, 3). Returns uint8 RGB of the same shape.
        """
        unknown = set(params) - set(PARAM_DEFAULTS)
        if unknown:
            raise TypeError(
                f"LowLightSimulator.apply: unknown parameter(s) {sorted(unknown)}; known: {', '.join(PARAM_DEFAULTS)}"
            )
        p = {**PARAM_DEFAULTS, **params}
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"LowLightSimulator: image must be uint8 (H, W, 3), got {image.dtype} {image.shape}"
            )
        if p["ratio"] <= 0:
            raise ValueError(f"LowLightSimulator: ratio must be > 0, got {p['ratio']}")
        rng = np.random.default_rng(p["noise_seed"])
        x = srgb_to_linear(image.astype(np.float32) / 255.0)
        x = x * np.asarray(p["wb"], np.float32)
        if p["blur_length"] > 1.0:
            k = motion_blur_kernel(p["blur_length"], p["blur_angle"])
            x = cv2.filter2D(x, -1, k, borderType=cv2.BORDER_REFLECT_101)
        x = x / np.float32(p["ratio"])
        if p["shot"] > 0 or p["read"] > 0:
            x = add_sensor_noise(x, p["shot"], p["read"], rng)
        if p["row_std"] > 0:
            x = x + np.float32(p["row_std"]) * rng.standard_normal((x.shape[0], 1, 1), dtype=np.float32)
        x = x * np.float32(p["gain"])
        s = linear_to_srgb(x)
        if p["gamma"] != 1.0:
            s = s ** np.float32(p["gamma"])
        out = np.clip(np.round(s * 255.0), 0, 255).astype(np.uint8)
        if p["jpeg_quality"]:
            out = jpeg_roundtrip(out, int(p["jpeg_quality"]))
        return out
