"""What a run's numbers show, derived from its results dict and nothing else: the verdict (better in the
dark? normal light kept within :data:`NORMAL_TOLERANCE`?), the 95 % intervals, the headroom in the dark, the
two models switched by brightness as they are deployed, and the weight line from base to fine-tune.

:mod:`.report` renders these as Markdown and :mod:`.seeds` summarises them over seeds; nothing here trains,
evaluates or formats, so a committed record can be re-derived from its ``results.json``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowlight_matting.color import DARK_THRESHOLD
from lowlight_matting.evaluation import (
    ARTICLE,
    METRICS,
    bootstrap_relative_change,
    switch_by_brightness,
)
from lowlight_matting.evaluation import relative_changes as comparison_rows

__all__ = [
    "NORMAL_TOLERANCE",
    "confidence_intervals",
    "headroom",
    "switched",
    "tradeoff_rows",
    "verdict",
]


NORMAL_TOLERANCE = 0.05
"""The fine-tuned model may lose at most this fraction (5%) against the baseline on normal light."""


def verdict(results: dict, tolerance: float = NORMAL_TOLERANCE) -> dict[str, Any]:
    """What the run shows: does the fine-tuned model win in the dark on every metric, and keep normal light?

    Returns ``lowlight_all_better`` (bool), ``normal_within_tolerance`` (bool: no metric worse by more than
    ``tolerance``), ``normal_worst_change`` and the per-metric relative changes of both test sets; the
    headroom (:func:`headroom`) and intervals (:func:`confidence_intervals`); and, for a run that kept each
    input's brightness, the same verdict for the two models switched by brightness (:func:`switched`):
    ``switch_lowlight_change``, ``switch_normal_change``, ``switch_lowlight_all_better``,
    ``switch_normal_worst_change``, ``switch_normal_within_tolerance``.
    """
    low = comparison_rows(results["lowlight"]["baseline"], results["lowlight"]["finetuned"])
    nor = comparison_rows(results["normal"]["baseline"], results["normal"]["finetuned"])
    worst = max(nor.values())
    out = {
        "lowlight_change": low,
        "normal_change": nor,
        "lowlight_all_better": all(v < 0 for v in low.values()),
        "normal_worst_change": worst,
        "normal_within_tolerance": bool(worst <= tolerance),
        "article_change": comparison_rows(ARTICLE["baseline"], ARTICLE["finetuned"]),
        **headroom(results),
        **confidence_intervals(results),
    }
    sw = switched(results)
    if sw is not None:
        low_sw = comparison_rows(results["lowlight"]["baseline"], sw["lowlight"]["mean"])
        nor_sw = comparison_rows(results["normal"]["baseline"], sw["normal"]["mean"])
        out.update(
            switch_lowlight_change=low_sw,
            switch_normal_change=nor_sw,
            switch_lowlight_all_better=all(v < 0 for v in low_sw.values()),
            switch_normal_worst_change=max(nor_sw.values()),
            switch_normal_within_tolerance=bool(max(nor_sw.values()) <= tolerance),
        )
    return out


def switched(results: dict, threshold: float = DARK_THRESHOLD) -> dict[str, dict] | None:
    """The two models of a run deployed together: each test photo darker than ``threshold`` (mean linear
    luminance of the input) goes to the fine-tune, the others to the baseline — what
    :class:`lowlight_matting.deploy.AutoMatter` and ``lowlight-matting matte`` do by default.

    Computed from the run's per-image metrics and input brightness
    (:func:`~lowlight_matting.evaluation.switch_by_brightness`); no model runs again. Returns ``{light:
    {"mean": {metric: mean}, "to_finetuned": images sent to the fine-tune, "n": images}}`` for ``"lowlight"``
    and ``"normal"``, or ``None`` for a run that did not keep them (``results["brightness"]`` and
    ``results["per_image"]``).
    """
    per, bright = results.get("per_image"), results.get("brightness")
    if not per or not bright:
        return None
    out = {}
    for light in ("lowlight", "normal"):
        y = np.asarray(bright[light], dtype=np.float64)
        vals = {
            k: switch_by_brightness(per[light]["baseline"][k], per[light]["finetuned"][k], y, threshold)
            for k in METRICS
        }
        out[light] = {
            "mean": {k: float(v.mean()) for k, v in vals.items()},
            "to_finetuned": int((y < threshold).sum()),
            "n": int(y.size),
        }
    return out


def confidence_intervals(results: dict, level: float = 0.95, seed: int = 0) -> dict[str, dict]:
    """95 % intervals of the fine-tuned-vs-baseline changes over the test images, when the run kept them.

    ``results["per_image"][light][model][metric]`` holds one value per test image (the same images, in the
    same order, for both models); :func:`~lowlight_matting.evaluation.bootstrap_relative_change` gives the
    paired bootstrap interval. Returns ``{"lowlight_ci": {metric: [lo, hi]}, "normal_ci": {...}}``, or ``{}``
    for results without per-image values (or with fewer than two test images).
    """
    per = results.get("per_image") or {}
    lights = [light for light in ("lowlight", "normal") if light in per]
    if not lights or len(per[lights[0]]["baseline"][METRICS[0]]) < 2:
        return {}  # no per-image values kept, or too few test images for an interval
    return {
        f"{light}_ci": {
            k: list(
                bootstrap_relative_change(
                    per[light]["baseline"][k], per[light]["finetuned"][k], level=level, seed=seed
                )
            )
            for k in METRICS
        }
        for light in lights
    }


def headroom(results: dict) -> dict[str, dict[str, float]]:
    """How much there was to gain in the dark, with the baseline's normal-light error as the reference.

    Per metric ``k``, with ``b_low``, ``b_norm`` the baseline's errors in low and normal light and ``f_low``
    the fine-tuned model's in low light:

    - ``lowlight_penalty`` = (b_low − b_norm) / b_norm: how much worse low light makes the baseline;
    - ``reference_change`` = (b_norm − b_low) / b_low: the relative change a fine-tune would show if it
      brought low-light error down to the baseline's normal-light error;
    - ``gap_closed`` = (b_low − f_low) / (b_low − b_norm): the share of that gap the fine-tune closed
      (NaN when low light does not hurt the baseline).

    The reference is not a bound (a fine-tune that trains longer may beat it), but it explains the size of
    a relative change: a −36 % change needs a baseline at least 1.56× worse in the dark than in normal light
    to stay below the reference.
    """
    b_low, b_norm = results["lowlight"]["baseline"], results["normal"]["baseline"]
    f_low = results["lowlight"]["finetuned"]
    closed = {}
    for k in METRICS:
        gap = float(b_low[k]) - float(b_norm[k])
        closed[k] = (float(b_low[k]) - float(f_low[k])) / gap if gap > 0 else float("nan")
    return {
        "lowlight_penalty": comparison_rows(b_norm, b_low),
        "reference_change": comparison_rows(b_low, b_norm),
        "gap_closed": closed,
    }


def _num(x: float | None) -> float:
    """``x`` as a float; ``None`` (how JSON stores NaN here) becomes NaN."""
    return float("nan") if x is None else float(x)


def tradeoff_rows(results: dict) -> list[dict[str, Any]]:
    """The line from base to fine-tune as relative changes against the baseline: ``[{"t", "lowlight":
    {metric: change}, "normal": {...}, "normal_ok": bool}]`` for the run's interpolations and t = 1 (the
    fine-tune itself), in increasing ``t``; ``[]`` for a run without ``results["tradeoff"]``."""
    points = list(results.get("tradeoff") or [])
    if not points:
        return []
    points.append({"t": 1.0, **{x: results[x]["finetuned"] for x in ("lowlight", "normal")}})
    rows = []
    for p in sorted(points, key=lambda p: p["t"]):
        ch = {x: comparison_rows(results[x]["baseline"], p[x]) for x in ("lowlight", "normal")}
        rows.append({"t": p["t"], **ch, "normal_ok": max(ch["normal"].values()) <= NORMAL_TOLERANCE})
    return rows
