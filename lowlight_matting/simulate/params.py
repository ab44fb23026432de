r"""The low-light simulator's parameters: ONE table of ranges, the presets, and ONE law both backends draw from.

:data:`DEFAULT_RANGES` is the table; :data:`SIMULATOR_PRESETS` are named overrides of it. :func:`draw_params`
is the law, written once for NumPy arrays and torch tensors alike: it receives callables that return fresh
uniform / standard-normal draws of length ``B`` and an array namespace (``numpy`` or ``torch``), so
:class:`~lowlight_matting.simulate.LowLightSimulator` (NumPy, ``B = 1`` per image) and
:func:`~lowlight_matting.simulate.simulate_batch` (torch, one call per batch, no host synchronisation) draw
every parameter from the same distribution by construction.

The law (``u`` a fresh U[0, 1) draw, ``z`` a fresh N(0, 1) draw, ``LU(lo, hi) = exp(U(log lo, log hi))``):

.. math::

    r &= LU(\text{extreme\_ratio}) \text{ with probability } p_{extreme}, \text{ else } LU(\text{ratio}) \\
    \text{shot} &= LU(\text{shot}), \quad
        \log \text{read} = 2.18 \log \text{shot} + 1.20 + 0.26\, z
        \quad \text{(Brooks et al. 2019, "Unprocessing Images for Learned Raw Denoising")} \\
    \text{row\_std} &= [u < p_{row}] \; U(\text{row}) \sqrt{\text{read}} \\
    \text{wb} &= (e^{U(-c, c)}, 1, e^{U(-c, c)}), \quad c = \text{cast} \\
    \text{gain} &= r^{U(\text{gain\_power})} \text{ with probability } p_{gain}, \text{ else } 1 \\
    \text{blur\_length} &= [u < p_{blur}] \; U(\text{blur\_length}), \quad \text{blur\_angle} = U(0, 180) \\
    \text{jpeg\_quality} &= [u < p_{jpeg}] \; \text{integer uniform on } [q_{lo}, q_{hi}] \quad (0 = \text{none}) \\
    \gamma &= LU(\text{gamma})

(``shot = read = 0`` when the shot range is ``(0, 0)``.) The NumPy and torch random streams differ, so the
two backends give the same *distribution*, not the same draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "DEFAULT_RANGES",
    "PARAM_DEFAULTS",
    "SIMULATOR_PRESETS",
    "check_ranges",
    "draw_params",
    "preset_ranges",
]

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
    "p_jpeg": 0.3,  # probability of JPEG re-encoding
    "jpeg_quality": (40, 90),  # integer, uniform, both ends included
    "gamma": (1.0, 1.0),  # extra tone exponent on the sRGB output (1 = none), log-uniform
}
"""The one table of simulator ranges (what ``LowLightSimulator(**ranges)`` and ``simulate_batch`` override)."""

SIMULATOR_PRESETS: dict[str, dict[str, Any]] = {
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
"""Named overrides of :data:`DEFAULT_RANGES` (``"default"``, ``"mild"``, ``"extreme"``, ``"exposure_only"``)."""

PARAM_DEFAULTS: dict[str, Any] = {
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
"""The parameters one simulation takes, each at its "off" value (``noise_seed``: NumPy path only)."""

_RANGE_KEYS = ("ratio", "extreme_ratio", "shot", "row", "gain_power", "blur_length", "jpeg_quality", "gamma")
_PROB_KEYS = ("p_extreme", "p_row", "p_gain", "p_blur", "p_jpeg")


def check_ranges(ranges: dict[str, Any], who: str = "LowLightSimulator") -> dict[str, Any]:
    """``DEFAULT_RANGES`` overridden by ``ranges``, validated; each error is one line naming the range.

    ``who`` names the caller in the messages (e.g. ``"simulate_batch"``).
    """
    unknown = set(ranges) - set(DEFAULT_RANGES)
    if unknown:
        raise TypeError(
            f"{who}: unknown range(s) {sorted(unknown)}; known: {', '.join(sorted(DEFAULT_RANGES))}"
        )
    out = {**DEFAULT_RANGES, **ranges}
    for key in _RANGE_KEYS:
        value = out[key]
        if not isinstance(value, tuple | list) or len(value) != 2:
            raise ValueError(f"{who}: range {key} must be a (low, high) pair, got {value!r}")
        lo, hi = value
        if lo > hi:
            raise ValueError(f"{who}: range {key}={tuple(value)} has low > high")
        out[key] = (lo, hi)
    if out["ratio"][0] < 1.0 or out["extreme_ratio"][0] < 1.0:
        raise ValueError(f"{who}: exposure ratios must be >= 1 (1 = unchanged), got ratio={out['ratio']}")
    for key in _PROB_KEYS:
        if not 0.0 <= out[key] <= 1.0:
            raise ValueError(f"{who}: probability {key}={out[key]} must be in [0, 1]")
    if out["shot"][0] < 0 or (out["shot"][0] == 0 < out["shot"][1]):
        raise ValueError(
            f"{who}: shot range must be (0, 0) (no noise) or strictly positive, got {out['shot']}"
        )
    q_lo, q_hi = out["jpeg_quality"]
    if out["p_jpeg"] > 0 and not (1 <= q_lo and q_hi <= 100):
        raise ValueError(f"{who}: jpeg_quality must lie in [1, 100], got {out['jpeg_quality']}")
    if out["gamma"][0] <= 0:
        raise ValueError(f"{who}: gamma range must be > 0, got {out['gamma']}")
    return out


def preset_ranges(name: str, **overrides: Any) -> dict[str, Any]:
    """The overrides of preset ``name`` (see :data:`SIMULATOR_PRESETS`) updated with ``overrides``.

    >>> preset_ranges("mild", p_jpeg=0.0)["p_jpeg"]
    0.0
    """
    if name not in SIMULATOR_PRESETS:
        raise ValueError(
            f"simulator preset: unknown name {name!r}; choose from {', '.join(SIMULATOR_PRESETS)}"
        )
    return {**SIMULATOR_PRESETS[name], **overrides}


def draw_params(
    uniform: Callable[[], Any], normal: Callable[[], Any], xp: Any, ranges: dict[str, Any]
) -> dict[str, Any]:
    """Draw ``B`` parameter sets from the law of the module docstring; the one definition of that law.

    Args:
        uniform: returns a fresh array/tensor of ``B`` independent U[0, 1) values at each call.
        normal: returns a fresh array/tensor of ``B`` independent N(0, 1) values at each call.
        xp: the namespace of those arrays: ``numpy`` or ``torch`` (only ``exp``, ``log``, ``sqrt``,
            ``floor``, ``where``, ``stack``, ``ones_like``, ``zeros_like`` and ``full_like`` are used, which
            both spell the same way).
        ranges: validated ranges (the output of :func:`check_ranges`).

    Returns:
        ``ratio``, ``shot``, ``read``, ``row_std``, ``gain``, ``blur_length``, ``blur_angle``, ``gamma`` and
        ``jpeg_quality`` (integer-valued, 0 = no JPEG) of shape ``(B,)``, and ``wb`` of shape ``(B, 3)``, all
        in the float dtype of the draws, on their device. Every random decision consumes a draw whether or
        not it is taken (so one batch element never shifts the stream of another).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = draw_params(lambda: rng.random(4), lambda: rng.standard_normal(4), np, check_ranges({}))
    >>> p["ratio"].shape, p["wb"].shape, bool((p["ratio"] >= 2).all())
    ((4,), (4, 3), True)
    """
    rr = ranges

    def log_uniform(lo: float, hi: float):
        v = uniform()
        if hi <= lo:
            return xp.full_like(v, float(lo))
        return xp.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * v)

    def between(lo: float, hi: float):
        return lo + (hi - lo) * uniform()

    def bernoulli(p: float):
        return uniform() < p

    extreme = bernoulli(rr["p_extreme"])
    ratio = xp.where(extreme, log_uniform(*rr["extreme_ratio"]), log_uniform(*rr["ratio"]))
    if rr["shot"][1] > 0:
        shot = log_uniform(*rr["shot"])
        read = xp.exp(rr["read_slope"] * xp.log(shot) + rr["read_intercept"] + rr["read_sigma"] * normal())
    else:
        shot = xp.zeros_like(ratio)
        read = xp.zeros_like(ratio)
    row_std = bernoulli(rr["p_row"]) * between(*rr["row"]) * xp.sqrt(read)
    c = float(rr["cast"])
    wb_r, wb_b = xp.exp(between(-c, c)), xp.exp(between(-c, c))
    wb = xp.stack([wb_r, xp.ones_like(wb_r), wb_b], 1)
    gain_on = bernoulli(rr["p_gain"])
    gain = xp.where(gain_on, ratio ** between(*rr["gain_power"]), xp.ones_like(ratio))
    blur_length = bernoulli(rr["p_blur"]) * between(*rr["blur_length"])
    blur_angle = 180.0 * uniform()
    jpeg_on = bernoulli(rr["p_jpeg"])
    q_lo, q_hi = rr["jpeg_quality"]
    q = xp.floor(q_lo + (q_hi - q_lo + 1) * uniform())
    q = xp.where(q > q_hi, xp.full_like(q, float(q_hi)), q)  # u -> 1 can round up to q_hi + 1 in float32
    jpeg_quality = xp.where(jpeg_on, q, xp.zeros_like(q))
    gamma = log_uniform(*rr["gamma"])
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
    }
