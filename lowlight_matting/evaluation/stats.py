"""Numbers from per-image records: means, relative changes and their bootstrap intervals, brightness bins.

One definition of each, used by the evaluation reports, the demo's report and the notebooks:

- :func:`summarize` — mean of each metric per test set and model;
- :func:`relative_change` — (after − before) / before, the article's "relative change" (negative = the error
  went down); :func:`relative_changes` per metric;
- :func:`bootstrap_relative_change` — its paired percentile-bootstrap interval over the test images
  (``scipy.stats.bootstrap``);
- :func:`bin_by_brightness` / :func:`brightness_bins` — images grouped by the mean linear luminance of their
  input (:func:`lowlight_matting.color.mean_luminance`), with the package's one meaning of "dark",
  :data:`lowlight_matting.color.DARK_THRESHOLD`, as one of the bin edges;
- :func:`switch_by_brightness` — per-image values of two models switched by brightness, as
  :class:`lowlight_matting.deploy.AutoMatter` deploys them;
- :func:`hardest` — the images with the largest error, for the figures.

A record is one dict per (model, image) as :func:`lowlight_matting.evaluation.evaluate_models` returns them:
``model``, ``test_set``, ``index``, ``brightness`` and the metric values ``mse, sad, grad, conn``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lowlight_matting.color import DARK_THRESHOLD

__all__ = [
    "METRICS",
    "BRIGHTNESS_EDGES",
    "summarize",
    "relative_change",
    "relative_changes",
    "bootstrap_relative_change",
    "bin_label",
    "is_dark_bin",
    "bin_by_brightness",
    "brightness_bins",
    "switch_by_brightness",
    "hardest",
]

METRICS: tuple[str, ...] = ("mse", "sad", "grad", "conn")
"""Metric keys in the order of the article's table (MSE, SAD, Gradient, Connectivity)."""

BRIGHTNESS_EDGES: tuple[float, ...] = (0.0, 0.01, 0.03, DARK_THRESHOLD, 1.0)
"""Bin edges of the mean *linear* luminance Y of the input (Rec. 709,
:func:`lowlight_matting.color.mean_luminance`): pitch dark < 1 % < very dark < 3 % < dim < ``DARK_THRESHOLD``
(7.32 %) < normal. The package calls an image dark when Y < :data:`lowlight_matting.color.DARK_THRESHOLD`
(the article's "mean brightness < 0.3" of sRGB values, in linear light), so the first three bins are the
dark ones and the last is not."""


# ----------------------------------------------------------------------------------------------- means
def summarize(records: Sequence[Mapping[str, Any]], metrics: Sequence[str] = METRICS) -> dict:
    """Means per test set and model: ``{test_set: {model: {metric: mean, "n": count}}}`` (insertion order)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault((str(r["test_set"]), str(r["model"])), []).append(r)
    for (ts, model), rs in groups.items():
        row: dict[str, float] = {k: float(np.mean([float(r[k]) for r in rs])) for k in metrics}
        row["n"] = len(rs)
        out.setdefault(ts, {})[model] = row
    return out


# --------------------------------------------------------------------------------------------- changes
def relative_change(before: float, after: float) -> float:
    """(after − before) / |before|: negative when an error went down; NaN when ``before`` is 0 or either
    value is not finite (or None, as JSON stores NaN).

    Example:
        >>> relative_change(0.032, 0.018)
        -0.4375
    """
    before = float("nan") if before is None else float(before)
    after = float("nan") if after is None else float(after)
    if before == 0 or not math.isfinite(before) or not math.isfinite(after):
        return float("nan")
    return (after - before) / abs(before)


def relative_changes(
    before: Mapping[str, float], after: Mapping[str, float], metrics: Sequence[str] = METRICS
) -> dict[str, float]:
    """:func:`relative_change` per metric from ``before`` to ``after`` (dicts holding the keys
    ``metrics``)."""
    return {k: relative_change(before[k], after[k]) for k in metrics}


def _change_of_means(before: np.ndarray, after: np.ndarray, axis: int = -1) -> np.ndarray:
    """(mean(after) − mean(before)) / |mean(before)| along ``axis`` (NaN/inf where the mean before is 0)."""
    mb = before.mean(axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (after.mean(axis=axis) - mb) / np.abs(mb)


def bootstrap_relative_change(
    before: Sequence[float],
    after: Sequence[float],
    *,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Confidence interval of the relative change of a mean error, by the paired percentile bootstrap.

    ``before[i]`` and ``after[i]`` are one metric of the same test image i under two models. Each resample
    draws n image indices with replacement (the same indices for both models: the pairing keeps the
    image-to-image variation of difficulty out of the interval) and computes
    ``(mean(after[idx]) − mean(before[idx])) / mean(before[idx])``; the interval is the (1 − level)/2 and
    (1 + level)/2 quantiles of those ``n_resamples`` values (Efron & Tibshirani, *An Introduction to the
    Bootstrap*, 1993, ch. 13). It covers the test-set sampling only, not the training's randomness (for that,
    repeat the run with other seeds).

    Computed by ``scipy.stats.bootstrap(..., paired=True, method="percentile")`` with a
    ``numpy.random.default_rng(seed)`` generator: seeded, so a report re-rendered from its JSON repeats its
    intervals. When a resample's mean ``before`` is 0 the change is undefined there and the interval is NaN.

    Example::

        >>> lo, hi = bootstrap_relative_change([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
        >>> round(lo, 6), round(hi, 6)
        (-0.5, -0.5)
    """
    from scipy import stats

    b = np.asarray(before, dtype=np.float64)
    a = np.asarray(after, dtype=np.float64)
    if b.ndim != 1 or b.shape != a.shape or len(b) < 2:
        raise ValueError(
            "before/after: need two 1-D sequences of the same length, at least 2 images, got shapes "
            f"{b.shape} and {a.shape}"
        )
    if not 0 < level < 1:
        raise ValueError(f"level: must be in (0, 1), got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples: must be at least 1, got {n_resamples}")
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)  # NaN interval: said in the docstring
        res = stats.bootstrap(
            (b, a),
            _change_of_means,
            n_resamples=n_resamples,
            paired=True,
            vectorized=True,
            confidence_level=level,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return float("nan"), float("nan")
    return lo, hi


# ------------------------------------------------------------------------------------------ brightness
def bin_label(lo: float, hi: float) -> str:
    """``(0.01, 0.03) → '1–3 %'`` (luminance as a percentage of white, 3 significant digits)."""
    return f"{lo * 100:.3g}–{hi * 100:.3g} %"


def is_dark_bin(lo: float, hi: float, threshold: float = DARK_THRESHOLD) -> str:
    """Whether every image of the bin [lo, hi) is dark (Y < ``threshold``): ``"yes"``, ``"no"`` or
    ``"partly"`` (the bin straddles the threshold; never with :data:`BRIGHTNESS_EDGES`)."""
    if hi <= threshold:
        return "yes"
    return "no" if lo >= threshold else "partly"


def bin_by_brightness(
    brightness: Sequence[float], edges: Sequence[float] = BRIGHTNESS_EDGES
) -> list[tuple[float, float, np.ndarray]]:
    """``(lo, hi, mask)`` for each bin [lo, hi) of ``edges`` (the last one includes ``hi``): ``mask`` is a
    boolean array over ``brightness`` (mean linear luminance per image). Empty bins are included."""
    edges = [float(e) for e in edges]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True)):
        raise ValueError(f"edges: need at least two strictly increasing values, got {edges}")
    y = np.asarray(brightness, dtype=np.float64)
    out = []
    for j, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        mask = (y >= lo) & (y < hi)
        if j == len(edges) - 2:
            mask |= y == hi
        out.append((lo, hi, mask))
    return out


def brightness_bins(
    records: Sequence[Mapping[str, Any]],
    edges: Sequence[float] = BRIGHTNESS_EDGES,
    metrics: Sequence[str] = METRICS,
) -> list[dict[str, Any]]:
    """Mean metrics per brightness bin (mean linear luminance of the input) and model, over all test sets.

    Returns rows ``{"bin": label, "lo": , "hi": , "dark": "yes"/"no"/"partly", "n": images,
    model: {metric: mean}}`` for the non-empty bins (:func:`bin_by_brightness`, :func:`is_dark_bin`).
    """
    models = list(dict.fromkeys(str(r["model"]) for r in records))
    rows = []
    for lo, hi, mask in bin_by_brightness([r["brightness"] for r in records], edges):
        sel = [r for r, m in zip(records, mask, strict=True) if m]
        if not sel:
            continue
        row: dict[str, Any] = {"bin": bin_label(lo, hi), "lo": lo, "hi": hi, "dark": is_dark_bin(lo, hi)}
        row["n"] = len({(r["test_set"], r["index"]) for r in sel})
        for m in models:
            rs = [r for r in sel if r["model"] == m]
            row[m] = {k: float(np.mean([r[k] for r in rs])) for k in metrics} if rs else {}
        rows.append(row)
    return rows


def switch_by_brightness(
    normal: Sequence[float],
    lowlight: Sequence[float],
    brightness: Sequence[float],
    threshold: float = DARK_THRESHOLD,
) -> np.ndarray:
    """Per-image values of two models deployed together and switched by brightness.

    ``out[i] = lowlight[i]`` when ``brightness[i] < threshold``, else ``normal[i]``: the rule of
    :class:`lowlight_matting.deploy.AutoMatter` (and of ``lowlight-matting matte`` by default), with
    ``brightness`` the mean linear luminance of each input image and the package's one meaning of "dark",
    :data:`~lowlight_matting.color.DARK_THRESHOLD`. ``normal`` / ``lowlight``: one metric value per image of
    the model for normal and for dark photos, same images in the same order.

    Example:
        >>> switch_by_brightness([1.0, 2.0], [0.5, 0.5], [0.01, 0.5]).tolist()
        [0.5, 2.0]
    """
    n, low, y = (np.asarray(v, dtype=np.float64) for v in (normal, lowlight, brightness))
    if not (n.shape == low.shape == y.shape and n.ndim == 1):
        raise ValueError(
            f"normal, lowlight, brightness: need three 1-D sequences of one length, got shapes "
            f"{n.shape}, {low.shape}, {y.shape}"
        )
    return np.where(y < threshold, low, n)


# ------------------------------------------------------------------------------------------------ hardest
def hardest(
    records: Sequence[Mapping[str, Any]], k: int = 4, test_set: str | None = None, metric: str = "sad"
) -> list[int]:
    """Indices of the ``k`` images with the largest ``metric`` averaged over the models (one test set)."""
    per: dict[int, list[float]] = {}
    for r in records:
        if test_set is None or r["test_set"] == test_set:
            per.setdefault(int(r["index"]), []).append(float(r[metric]))
    order = sorted(per, key=lambda i: (-float(np.mean(per[i])), i))
    return order[: max(0, int(k))]
