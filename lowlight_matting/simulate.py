"""Simulating low light: the seed article's recipe (kept for comparison) and a physically based simulator.

Three layers, each usable alone:

* :func:`srgb_to_linear` / :func:`linear_to_srgb` -- the exact sRGB transfer (IEC 61966-2-1), defined in
  :mod:`lowlight_matting.color` and re-exported here.
* :func:`add_sensor_noise` -- heteroscedastic sensor noise in linear light, ``y = x + n`` with
  ``E[n] = 0`` and ``Var[n] = shot * x + read`` (the Poisson-Gaussian model, in the Gaussian form used by
  Brooks et al. 2019, "Unprocessing Images for Learned Raw Denoising").
* :class:`LowLightSimulator` (NumPy, one image at a time, for DataLoader workers and the CLI) and
  :func:`simulate_batch` (torch, a whole batch at once on any device) -- the same parameter distribution:

  1. sRGB -> linear light;
  2. a colour cast (per-channel white-balance gains: the scene's illuminant is not the one the camera assumed);
  3. optional motion blur (hand shake during the longer exposure);
  4. exposure cut: divide by a ratio ``r``, log-uniform (default 2-20, with a rare extreme tail up to 100);
  5. sensor noise: shot level log-uniform, read noise tied to it log-linearly as in Brooks et al. 2019,
     ``log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26^2)``, plus optional row (banding) noise;
  6. optional ISP digital gain ``g = r ** u`` (u in [0.5, 1]): the bright-but-noisy phone night look;
  7. clip at the black and white points, back to sRGB, optional tone exponent, 8-bit quantisation;
  8. optional JPEG re-encoding (NumPy path only).

The alpha matte is never touched: the simulators take images only.

Example:
    >>> import numpy as np
    >>> from lowlight_matting.simulate import LowLightSimulator
    >>> image = np.full((32, 32, 3), 180, np.uint8)
    >>> sim = LowLightSimulator(seed=0)
    >>> dark = sim(image)
    >>> bool(dark.mean() < image.mean()), sorted(sim.last_params)[:3]
    (True, ['blur_angle', 'blur_length', 'gain'])
    >>> np.array_equal(sim.apply(image, **sim.last_params), dark)   # the deterministic form
    True
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

__all__ = [
    "PRESETS",
    "LowLightSimulator",
    "add_sensor_noise",
    "linear_to_srgb",
    "mean_luminance",
    "sample_params",
    "simulate_batch",
    "simulate_low_light",
    "srgb_to_linear",
]

from lowlight_matting.color import (  # the one sRGB / luminance definition (re-exported here)
    _is_torch,
    linear_to_srgb,
    mean_luminance,
    srgb_to_linear,
)

# ----------------------------------------------------------------------------------------------------
# The article's recipe
# ----------------------------------------------------------------------------------------------------


def simulate_low_light(image: np.ndarray, gamma: float = 0.4, scale: float = 0.3, rng=None) -> np.ndarray:
    """The seed article's low-light recipe, kept faithfully (flaws included) so the course can compare.

    ``out = uint8(clip(d + 0.05 * Poisson(255 d) / 255, 0, 1) * 255)`` with ``d = (image / 255) ** (1/gamma) * scale``.

    What it really does:

    * ``x ** (1/gamma) * scale`` is a *contrast curve applied to sRGB code values*, not an exposure change:
      light is linear in scene radiance, so a real exposure cut divides *linear* values by a constant. The
      curve crushes shadows far more than highlights (with gamma=0.4, mid-grey 0.5 -> 0.053, white 1 -> 0.3).
    * The "noise" ``Poisson(255 d) / 255 * 0.05`` is not zero-mean: its mean is ``0.05 d``, so it *brightens*
      the image by 5%; its standard deviation is only ``0.05 sqrt(255 d)`` code values (< 0.5 DN for every d
      the curve produces), so it all but vanishes when the result is truncated to uint8. Real dark photos
      have noise that *dominates* the signal.
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


# ----------------------------------------------------------------------------------------------------
# Sensor noise
# ----------------------------------------------------------------------------------------------------


def add_sensor_noise(linear, shot, read, rng=None):
    """Add heteroscedastic sensor noise in linear light: ``y = x + sqrt(shot * max(x, 0) + read) * z``, z ~ N(0, 1).

    So ``E[y - x] = 0`` exactly and ``Var[y - x] = shot * x + read``: photon (shot) noise is Poisson with
    variance proportional to the signal, read noise is signal-independent. Like Brooks et al. 2019
    ("Unprocessing Images for Learned Raw Denoising") we use the Gaussian approximation of the Poisson part,
    which is accurate once a pixel collects more than a few photons and keeps the noise exactly zero-centred.
    The result is *not* clipped (clip when you quantise).

    ``linear``: float NumPy array or torch tensor, any shape. ``shot``, ``read``: non-negative scalars or
    arrays/tensors broadcastable to ``linear`` (e.g. per-sample ``(B, 1, 1, 1)``). ``rng``: NumPy Generator or
    seed for arrays, ``torch.Generator`` (on the tensor's device) for tensors.

    >>> x = np.full(100_000, 0.1)
    >>> y = add_sensor_noise(x, shot=0.01, read=1e-4, rng=0)
    >>> round(float((y - x).var()), 4)      # 0.01 * 0.1 + 1e-4
    0.0011
    """
    if _is_torch(linear):
        import torch

        if not linear.is_floating_point():
            raise TypeError(f"add_sensor_noise: linear must be a float tensor, got {linear.dtype}")
        var = torch.as_tensor(shot, dtype=linear.dtype, device=linear.device) * linear.clamp_min(0.0)
        var = var + torch.as_tensor(read, dtype=linear.dtype, device=linear.device)
        if rng is not None and not isinstance(rng, torch.Generator):
            raise TypeError("add_sensor_noise: for tensors pass rng as a torch.Generator (or None)")
        z = torch.randn(linear.shape, generator=rng, device=linear.device, dtype=linear.dtype)
        return linear + var.clamp_min(0.0).sqrt() * z
    x = np.asarray(linear)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"add_sensor_noise: linear must be a float array, got {x.dtype}")
    shot_a, read_a = np.asarray(shot, x.dtype), np.asarray(read, x.dtype)
    if np.any(shot_a < 0) or np.any(read_a < 0):
        raise ValueError("add_sensor_noise: shot and read must be >= 0")
    rng = np.random.default_rng(rng)
    var = shot_a * np.maximum(x, 0) + read_a
    z = rng.standard_normal(x.shape, dtype=np.float64 if x.dtype == np.float64 else np.float32)
    return (x + np.sqrt(var) * z.astype(x.dtype, copy=False)).astype(x.dtype, copy=False)


# ----------------------------------------------------------------------------------------------------
# Parameter distribution (shared by the NumPy and torch paths)
# ----------------------------------------------------------------------------------------------------

DEFAULT_RANGES: dict[str, Any] = {
    "ratio": (2.0, 20.0),  # exposure cut r, log-uniform
    "p_extreme": 0.05,  # probability of drawing r from the extreme tail instead
    "extreme_ratio": (20.0, 100.0),
    "shot": (1e-4, 1.2e-2),  # shot-noise level, log-uniform (Brooks et al. 2019)
    "read_slope": 2.18,  # log(read) = slope * log(shot) + intercept + N(0, read_sigma^2)
    "read_intercept": 1.20,
    "read_sigma": 0.26,
    "p_row": 0.2,  # probability of row (banding) noise
    "row": (0.2, 1.0),  # row-noise std as a multiple of the read-noise std
    "cast": 0.15,  # white-balance gains for R and B: exp(U(-cast, cast)), green fixed at 1
    "p_gain": 0.3,  # probability of ISP digital gain
    "gain_power": (0.5, 1.0),  # gain = r ** u, u ~ U(gain_power)
    "p_blur": 0.15,  # probability of motion blur
    "blur_length": (3.0, 9.0),  # blur length in pixels, uniform
    "p_jpeg": 0.3,  # probability of JPEG re-encoding (NumPy path only)
    "jpeg_quality": (40, 90),
    "gamma": (1.0, 1.0),  # extra tone exponent on the sRGB output (1 = none), log-uniform
}

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "mild": {
        "ratio": (1.5, 6.0),
        "p_extreme": 0.0,
        "shot": (1e-4, 3e-3),
        "p_row": 0.05,
        "cast": 0.08,
        "p_gain": 0.2,
        "p_blur": 0.05,
        "p_jpeg": 0.2,
        "jpeg_quality": (60, 95),
    },
    "extreme": {
        "ratio": (10.0, 60.0),
        "p_extreme": 0.2,
        "extreme_ratio": (60.0, 200.0),
        "shot": (2e-3, 2e-2),
        "p_row": 0.4,
        "cast": 0.25,
        "p_gain": 0.5,
        "p_blur": 0.3,
        "p_jpeg": 0.4,
        "jpeg_quality": (30, 80),
    },
    # Exposure and colour only: no noise, blur, gain or JPEG (for ablations and for teaching).
    "exposure_only": {
        "shot": (0.0, 0.0),
        "p_row": 0.0,
        "p_gain": 0.0,
        "p_blur": 0.0,
        "p_jpeg": 0.0,
    },
}

_PARAM_DEFAULTS: dict[str, Any] = {
    "ratio": 1.0,
    "shot": 0.0,
    "read": 0.0,
    "row_std": 0.0,
    "wb": (1.0, 1.0, 1.0),
    "gain": 1.0,
    "blur_length": 0.0,
    "blur_angle": 0.0,
    "gamma": 1.0,
    "jpeg_quality": 0,
    "noise_seed": 0,
}


def _check_ranges(ranges: dict[str, Any]) -> dict[str, Any]:
    unknown = set(ranges) - set(DEFAULT_RANGES)
    if unknown:
        raise TypeError(
            f"LowLightSimulator: unknown range(s) {sorted(unknown)}; known: {', '.join(sorted(DEFAULT_RANGES))}"
        )
    out = {**DEFAULT_RANGES, **ranges}
    for key in (
        "ratio",
        "extreme_ratio",
        "shot",
        "row",
        "gain_power",
        "blur_length",
        "jpeg_quality",
        "gamma",
    ):
        lo, hi = out[key]
        if lo > hi:
            raise ValueError(f"LowLightSimulator: range {key}={out[key]} has low > high")
    if out["ratio"][0] < 1.0 or out["extreme_ratio"][0] < 1.0:
        raise ValueError("LowLightSimulator: exposure ratios must be >= 1 (1 = unchanged)")
    for key in ("p_extreme", "p_row", "p_gain", "p_blur", "p_jpeg"):
        if not 0.0 <= out[key] <= 1.0:
            raise ValueError(f"LowLightSimulator: probability {key}={out[key]} must be in [0, 1]")
    if out["shot"][0] < 0 or (out["shot"][0] == 0 < out["shot"][1]):
        raise ValueError("LowLightSimulator: shot range must be (0, 0) (no noise) or strictly positive")
    return out


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi)))) if hi > lo else float(lo)


def sample_params(rng: np.random.Generator, **ranges: Any) -> dict[str, Any]:
    """Draw one set of :meth:`LowLightSimulator.apply` parameters from ``ranges`` (see ``DEFAULT_RANGES``)."""
    rr = _check_ranges(ranges)
    extreme = rng.random() < rr["p_extreme"]
    ratio = _log_uniform(rng, *(rr["extreme_ratio"] if extreme else rr["ratio"]))
    if rr["shot"][1] > 0:
        shot = _log_uniform(rng, *rr["shot"])
        log_read = (
            rr["read_slope"] * math.log(shot)
            + rr["read_intercept"]
            + rr["read_sigma"] * rng.standard_normal()
        )
        read = float(math.exp(log_read))
    else:
        shot = read = 0.0
    row_on = rng.random() < rr["p_row"]
    row_std = float(rng.uniform(*rr["row"]) * math.sqrt(read)) if row_on else 0.0
    c = rr["cast"]
    wb = (float(math.exp(rng.uniform(-c, c))), 1.0, float(math.exp(rng.uniform(-c, c))))
    gain_on = rng.random() < rr["p_gain"]
    gain = float(ratio ** rng.uniform(*rr["gain_power"])) if gain_on else 1.0
    blur_on = rng.random() < rr["p_blur"]
    blur_length = float(rng.uniform(*rr["blur_length"])) if blur_on else 0.0
    blur_angle = float(rng.uniform(0.0, 180.0))
    jpeg_on = rng.random() < rr["p_jpeg"]
    jpeg_quality = int(rng.integers(rr["jpeg_quality"][0], rr["jpeg_quality"][1] + 1)) if jpeg_on else 0
    gamma = _log_uniform(rng, *rr["gamma"])
    return {
        "ratio": ratio,
        "shot": shot,
        "read": read,
        "row_std": row_std,
        "wb": wb,
        "gain": gain,
        "blur_length": blur_length,
        "blur_angle": blur_angle,
        "gamma": gamma,
        "jpeg_quality": jpeg_quality,
        "noise_seed": int(rng.integers(0, 2**31 - 1)),
    }


# ----------------------------------------------------------------------------------------------------
# Motion blur kernels (the same formula for NumPy and torch)
# ----------------------------------------------------------------------------------------------------

MAX_BLUR = 15  # kernel side on the batched path; lengths are clipped to it


def motion_blur_kernel(length: float, angle: float, size: int | None = None) -> np.ndarray:
    """A normalised linear motion-blur kernel: a line of ``length`` pixels at ``angle`` degrees.

    Weight of pixel ``p`` (offset from the centre): ``max(0, 1 - |perp(p)|)`` where ``|along(p)| <= length/2``,
    normalised to sum 1. ``length <= 1`` gives the identity (a delta). ``size``: odd side (default: smallest fit).
    """
    if size is None:
        size = max(1, int(math.ceil(length)) | 1)
    h = size // 2
    yy, xx = np.mgrid[-h : h + 1, -h : h + 1].astype(np.float32)
    t = math.radians(angle)
    along = xx * math.cos(t) + yy * math.sin(t)
    perp = -xx * math.sin(t) + yy * math.cos(t)
    w = np.maximum(0.0, 1.0 - np.abs(perp)) * (np.abs(along) <= max(length, 1.0) / 2 + 1e-6)
    return (w / w.sum()).astype(np.float32)


def _motion_blur_kernels_torch(length, angle, size: int):
    import torch

    h = size // 2
    r = torch.arange(-h, h + 1, device=length.device, dtype=torch.float32)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    t = torch.deg2rad(angle).view(-1, 1, 1)
    along = xx * torch.cos(t) + yy * torch.sin(t)
    perp = -xx * torch.sin(t) + yy * torch.cos(t)
    half = length.clamp_min(1.0).view(-1, 1, 1) / 2 + 1e-6
    w = (1.0 - perp.abs()).clamp_min(0.0) * (along.abs() <= half)
    return w / w.sum(dim=(1, 2), keepdim=True)  # (B, size, size)


# ----------------------------------------------------------------------------------------------------
# The NumPy simulator
# ----------------------------------------------------------------------------------------------------


class LowLightSimulator:
    """Physically based low-light simulation of uint8 sRGB photos (see the module docstring for the model).

    ``LowLightSimulator(seed=None, **ranges)``: ``ranges`` override ``DEFAULT_RANGES`` (e.g. ``ratio=(4, 8)``,
    ``p_gain=0``); unknown names raise. ``sim(image)`` draws parameters, stores them in ``sim.last_params``
    and returns the low-light uint8 image; ``sim.apply(image, **params)`` is the deterministic form (the noise
    comes from ``params["noise_seed"]``); ``sim.reseed(seed)`` restarts the random stream (DataLoader workers,
    see :func:`lowlight_matting.seeding.worker_init_fn`). ``LowLightSimulator.from_preset(name)`` uses
    ``PRESETS[name]`` ("default", "mild", "extreme", "exposure_only").

    >>> sim = LowLightSimulator.from_preset("mild", seed=1)
    >>> sim(np.zeros((8, 8, 3), np.uint8)).shape
    (8, 8, 3)
    """

    def __init__(self, seed: int | None = None, **ranges: Any) -> None:
        self.ranges = _check_ranges(ranges)
        self._overrides = dict(ranges)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.last_params: dict[str, Any] | None = None

    @classmethod
    def from_preset(
        cls, name: str = "default", seed: int | None = None, **overrides: Any
    ) -> LowLightSimulator:
        if name not in PRESETS:
            raise ValueError(f"LowLightSimulator: unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        return cls(seed=seed, **{**PRESETS[name], **overrides})

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
        unknown = set(params) - set(_PARAM_DEFAULTS)
        if unknown:
            raise TypeError(f"LowLightSimulator.apply: unknown parameter(s) {sorted(unknown)}")
        p = {**_PARAM_DEFAULTS, **params}
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
            import cv2

            k = motion_blur_kernel(p["blur_length"], p["blur_angle"])
            x = cv2.filter2D(x, -1, k, borderType=cv2.BORDER_REFLECT)
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
            import cv2

            ok, enc = cv2.imencode(
                ".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(p["jpeg_quality"])]
            )
            if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
                raise RuntimeError("LowLightSimulator: JPEG encoding failed")
            out = np.ascontiguousarray(cv2.imdecode(enc, cv2.IMREAD_COLOR)[:, :, ::-1])
        return out


# ----------------------------------------------------------------------------------------------------
# The batched torch simulator
# ----------------------------------------------------------------------------------------------------


def _sample_params_torch(b: int, generator, device, rr: dict[str, Any]) -> dict[str, Any]:
    import torch

    def u(*shape):  # uniform [0, 1) drawn on the generator's device, then moved (no host sync)
        gdev = generator.device if generator is not None else device
        return torch.rand((b, *shape), generator=generator, device=gdev).to(device, non_blocking=True)

    def n(*shape):
        gdev = generator.device if generator is not None else device
        return torch.randn((b, *shape), generator=generator, device=gdev).to(device, non_blocking=True)

    def log_uniform(lo, hi, v):
        if hi <= lo:
            return torch.full_like(v, float(lo))
        return torch.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * v)

    extreme = u() < rr["p_extreme"]
    ratio = torch.where(extreme, log_uniform(*rr["extreme_ratio"], u()), log_uniform(*rr["ratio"], u()))
    if rr["shot"][1] > 0:
        shot = log_uniform(*rr["shot"], u())
        read = torch.exp(rr["read_slope"] * torch.log(shot) + rr["read_intercept"] + rr["read_sigma"] * n())
    else:
        shot = read = torch.zeros(b, device=device)
    lo, hi = rr["row"]
    row_std = (u() < rr["p_row"]) * (lo + (hi - lo) * u()) * read.sqrt()
    c = rr["cast"]
    wb = torch.exp(c * (2 * u(3) - 1))
    wb[:, 1] = 1.0
    lo, hi = rr["gain_power"]
    gain = torch.where(u() < rr["p_gain"], ratio ** (lo + (hi - lo) * u()), torch.ones_like(ratio))
    lo, hi = rr["blur_length"]
    blur_length = (u() < rr["p_blur"]) * (lo + (hi - lo) * u())
    blur_angle = 180.0 * u()
    gamma = log_uniform(*rr["gamma"], u())
    return {
        "ratio": ratio,
        "shot": shot,
        "read": read,
        "row_std": row_std,
        "wb": wb,
        "gain": gain,
        "blur_length": blur_length,
        "blur_angle": blur_angle,
        "gamma": gamma,
    }


def simulate_batch(images, generator=None, *, quantize: bool = True, return_params: bool = False, **ranges):
    """Batched low-light simulation in torch: the :class:`LowLightSimulator` distribution, per-sample parameters.

    ``images``: float tensor (B, 3, H, W), sRGB in [0, 1], on any device. ``generator``: a ``torch.Generator``
    (None: torch's default stream). Parameters are drawn on the generator's device and moved to the images'
    device without waiting; the noise is drawn on the images' device, from ``generator`` itself when it lives
    there, else from a device generator seeded from it (a CPU generator with CUDA images works without a GPU
    sync). ``ranges``: as for :class:`LowLightSimulator` (a preset: ``**PRESETS["mild"]``).
    ``quantize``: round to 8-bit levels like the NumPy path. Returns a tensor of the same shape, device and
    dtype in [0, 1]; with ``return_params=True`` also a dict of per-sample parameter tensors.

    Differences from the NumPy path: JPEG re-encoding is skipped (``p_jpeg`` is ignored; there is no batched
    JPEG codec in torch), motion-blur lengths are capped at ``MAX_BLUR`` pixels (same kernel formula, edges
    padded by reflection), and the random streams differ (same distribution, not the same draws). No Python
    loop over the batch and no ``.item()``.

    >>> import torch
    >>> x = torch.full((4, 3, 16, 16), 0.7)
    >>> y = simulate_batch(x, torch.Generator().manual_seed(0))
    >>> y.shape, bool((y.mean(dim=(1, 2, 3)) < 0.7).all())
    (torch.Size([4, 3, 16, 16]), True)
    """
    import torch
    import torch.nn.functional as F

    if not _is_torch(images) or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"simulate_batch: images must be a (B, 3, H, W) tensor, got {getattr(images, 'shape', images)}"
        )
    if not images.is_floating_point():
        raise TypeError(f"simulate_batch: images must be float in [0, 1], got {images.dtype}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError("simulate_batch: generator must be a torch.Generator or None")
    rr = _check_ranges(ranges)
    b, _, h, w = images.shape
    dtype, device = images.dtype, images.device
    p = _sample_params_torch(b, generator, device, rr)

    def col(v):
        return v.to(torch.float32).view(b, 1, 1, 1)

    x = srgb_to_linear(images.to(torch.float32))
    x = x * p["wb"].view(b, 3, 1, 1)
    if rr["p_blur"] > 0:
        ksize = min(MAX_BLUR, int(math.ceil(rr["blur_length"][1])) | 1)  # from the ranges: no host sync
        k = _motion_blur_kernels_torch(p["blur_length"].clamp(max=ksize), p["blur_angle"], ksize)
        pad = ksize // 2
        mode = "reflect" if min(h, w) > pad else "replicate"
        xp = F.pad(x.reshape(1, b * 3, h, w), (pad, pad, pad, pad), mode=mode)
        weight = k.repeat_interleave(3, dim=0).unsqueeze(1)  # (B*3, 1, k, k)
        x = F.conv2d(xp, weight, groups=b * 3).view(b, 3, h, w)
    x = x / col(p["ratio"])
    gen_noise = generator if generator is not None and generator.device == device else None
    if generator is not None and gen_noise is None:
        # Noise must be drawn where the images live; derive a device generator from the given one.
        seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)
        gen_noise = torch.Generator(device=device)
        gen_noise.manual_seed(int(seed))  # a host read of a CPU tensor for a CPU generator: no GPU sync
    x = add_sensor_noise(x, col(p["shot"]), col(p["read"]), gen_noise)
    if rr["p_row"] > 0:
        z = torch.randn((b, 1, h, 1), generator=gen_noise, device=device)
        x = x + col(p["row_std"]) * z
    x = x * col(p["gain"])
    s = linear_to_srgb(x)
    s = s.clamp_min(0.0) ** col(p["gamma"])
    if quantize:
        s = torch.round(s * 255.0) / 255.0
    out = s.clamp(0.0, 1.0).to(dtype)
    return (out, p) if return_params else out
