"""Metric tables and files: the one formatter of metric values and relative changes, the article-shaped
Markdown table, the brightness table, ``summary.md``, and the per-image CSV.

Formatting, once for the whole package (the demo's ``report.md`` uses the same functions):

- :func:`format_metric` — MSE raw with 4 decimals (or ×``mse_scale`` with 2, the title then says so), SAD,
  Grad and Conn with 2;
- :func:`format_change` — a relative change as a signed percentage with ``digits`` decimals and an ASCII
  minus (``-44%``, ``+2%``, ``0%``; ``n/a`` for NaN);
- :func:`metrics_table` — rows of metric values, then rows of relative changes, in the article's column order
  (MSE, SAD, Grad, Conn ↓).
"""

from __future__ import annotations

import csv
import io as _io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lowlight_matting.color import DARK_THRESHOLD
from lowlight_matting.evaluation.stats import (
    BRIGHTNESS_EDGES,
    METRICS,
    brightness_bins,
    relative_change,
    relative_changes,
)
from lowlight_matting.io import atomic_write
from lowlight_matting.metrics import CONNECTIVITY_STEP

__all__ = [
    "METRIC_TITLES",
    "ARTICLE",
    "ARTICLE_TABLE",
    "CSV_FIELDS",
    "format_change",
    "format_metric",
    "metric_title",
    "metrics_table",
    "comparison_table",
    "brightness_table",
    "conventions",
    "write_csv",
    "read_csv",
    "write_report",
]

METRIC_TITLES = {"mse": "MSE", "sad": "SAD", "grad": "Grad", "conn": "Conn"}
"""Column titles of the metric keys."""

ARTICLE = {
    "baseline": {"mse": 0.032, "sad": 48.7, "grad": 28.5, "conn": 35.2},
    "finetuned": {"mse": 0.018, "sad": 31.4, "grad": 19.3, "conn": 24.1},
}
"""The article's table ("LL-Matte-Test", N = 200; its conventions are not stated): original CV-UNet vs
fine-tuned, lower is better."""

ARTICLE_TABLE = {"original CV-UNet": ARTICLE["baseline"], "fine-tuned (article)": ARTICLE["finetuned"]}
""":data:`ARTICLE` with the article's own row names, as a :func:`comparison_table` summary."""

CSV_FIELDS = (
    "model",
    "test_set",
    "index",
    "name",
    "height",
    "width",
    "brightness",
    "region",
    "unknown_fraction",
    "seconds",
    *METRICS,
)
"""Leading columns of ``metrics.csv`` (:func:`write_csv`)."""


# ------------------------------------------------------------------------------------------- formatting
def format_change(change: float | None, digits: int = 0) -> str:
    """A relative change as a signed percentage with ``digits`` decimals; NaN/None → ``'n/a'``.

    Example:
        >>> format_change(-0.4375), format_change(-0.4375, 1), format_change(0.021), format_change(0.0001)
        ('-44%', '-43.8%', '+2%', '0%')
    """
    if change is None or not math.isfinite(float(change)):
        return "n/a"
    pct = round(float(change) * 100, digits)
    if pct == 0:
        return f"{0:.{digits}f}%"
    return f"{pct:+.{digits}f}%"


def format_metric(key: str, value: float | None, mse_scale: float = 1.0) -> str:
    """A metric value as the tables show it: MSE raw with 4 decimals, or multiplied by ``mse_scale`` (e.g.
    1000) with 2; SAD, Grad and Conn with 2. NaN/None → ``'n/a'``.

    Example:
        >>> format_metric("mse", 0.0321), format_metric("mse", 0.0321, 1000), format_metric("sad", 48.7)
        ('0.0321', '32.10', '48.70')
    """
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    if key == "mse":
        v = float(value) * mse_scale
        return f"{v:.4f}" if mse_scale == 1 else f"{v:.2f}"
    return f"{float(value):.2f}"


def metric_title(key: str, mse_scale: float = 1.0) -> str:
    """Column title of ``key``; MSE shown scaled says by how much (``'MSE ×1000'``)."""
    if key == "mse" and mse_scale != 1:
        return f"MSE ×{mse_scale:g}"
    return METRIC_TITLES.get(key, key)


def metrics_table(
    rows: Sequence[tuple[str, Mapping[str, float]]],
    changes: Sequence[tuple[str, Mapping[str, float]]] = (),
    *,
    mse_scale: float = 1.0,
    metrics: Sequence[str] = METRICS,
    digits: int = 0,
) -> str:
    """A Markdown table in the article's shape: one row per ``(label, {metric: value})`` of ``rows``
    (:func:`format_metric`), then one per ``(label, {metric: relative change})`` of ``changes``
    (:func:`format_change` with ``digits``).

    Example:
        >>> print(metrics_table([("a", {"mse": 0.02, "sad": 4.0, "grad": 2.0, "conn": 3.0})]))
        | model | MSE ↓ | SAD ↓ | Grad ↓ | Conn ↓ |
        |---|---:|---:|---:|---:|
        | a | 0.0200 | 4.00 | 2.00 | 3.00 |
    """
    lines = [
        "| model | " + " | ".join(f"{metric_title(k, mse_scale)} ↓" for k in metrics) + " |",
        "|---|" + "---:|" * len(metrics),
    ]
    for label, m in rows:
        lines.append(f"| {label} | " + " | ".join(format_metric(k, m[k], mse_scale) for k in metrics) + " |")
    for label, ch in changes:
        lines.append(f"| {label} | " + " | ".join(format_change(ch[k], digits) for k in metrics) + " |")
    return "\n".join(lines)


def comparison_table(
    summary: Mapping[str, Mapping[str, float]],
    baseline: str | None = None,
    mse_scale: float = 1.0,
    metrics: Sequence[str] = METRICS,
    digits: int = 1,
) -> str:
    """:func:`metrics_table` of one test set of :func:`~lowlight_matting.evaluation.summarize`
    (``{model: {metric: value}}``): one row per model, then "relative change, <model> vs <baseline>" per
    other model. ``baseline`` defaults to the first model.

    Example:
        >>> print(comparison_table(ARTICLE_TABLE))  # doctest: +NORMALIZE_WHITESPACE
        | model | MSE ↓ | SAD ↓ | Grad ↓ | Conn ↓ |
        |---|---:|---:|---:|---:|
        | original CV-UNet | 0.0320 | 48.70 | 28.50 | 35.20 |
        | fine-tuned (article) | 0.0180 | 31.40 | 19.30 | 24.10 |
        | relative change, fine-tuned (article) vs original CV-UNet | -43.8% | -35.5% | -32.3% | -31.5% |
    """
    names = list(summary)
    if not names:
        raise ValueError("comparison_table: empty summary")
    base = names[0] if baseline is None else baseline
    if base not in summary:
        raise KeyError(f"comparison_table: baseline {base!r} not among {names}")
    changes = [
        (f"relative change, {name} vs {base}", relative_changes(summary[base], summary[name], metrics))
        for name in names
        if name != base
    ]
    return metrics_table(
        [(name, summary[name]) for name in names],
        changes,
        mse_scale=mse_scale,
        metrics=metrics,
        digits=digits,
    )


def brightness_table(
    records: Sequence[Mapping[str, Any]],
    edges: Sequence[float] = BRIGHTNESS_EDGES,
    metrics: Sequence[str] = ("sad", "conn"),
    mse_scale: float = 1.0,
    digits: int = 1,
) -> str:
    """Markdown: one row per brightness bin (:func:`~lowlight_matting.evaluation.brightness_bins`) with a
    "dark" column (Y < ``color.DARK_THRESHOLD``), then each metric × each model, and the change of the last
    model vs the first when there are two or more."""
    rows = brightness_bins(records, edges, metrics)
    models = list(dict.fromkeys(str(r["model"]) for r in records))
    head = [
        "input brightness (mean linear luminance)",
        f"dark (< {DARK_THRESHOLD * 100:.3g} %)",
        "images",
    ]
    for k in metrics:
        t = metric_title(k, mse_scale)
        head += [f"{t} {m}" for m in models]
        if len(models) > 1:
            head += [f"{t} change ({models[-1]} vs {models[0]})"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for row in rows:
        cells = [row["bin"], row["dark"], str(row["n"])]
        for k in metrics:
            vals = [row[m].get(k, float("nan")) for m in models]
            cells += [format_metric(k, v, mse_scale) for v in vals]
            if len(models) > 1:
                cells.append(format_change(relative_change(vals[0], vals[-1]), digits))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def conventions(
    region: str = "whole", mse_scale: float = 1.0, trimap: Any = None, step: float = CONNECTIVITY_STEP
) -> str:
    """One paragraph stating how the numbers were computed (region, scaling, kernels)."""
    if region == "whole":
        where = "over the whole image (trimap-free convention of MODNet, P3M, AIM)"
    else:
        how = {
            "auto": "derived from the ground truth (make_trimap, kernel auto_trimap_kernel)",
            "item": "given",
        }
        src = how.get(str(trimap), f"from {trimap}") if trimap is not None else "given"
        where = f"over the unknown region (trimap == 128) of a trimap {src} (Composition-1k convention)"
    mse = "MSE is raw (mean squared error in [0, 1])" if mse_scale == 1 else f"MSE is shown ×{mse_scale:g}"
    return (
        f"Metrics per image {where}, averaged over images. {mse}; SAD, Grad and Conn are divided by 1000 "
        "(Deep Image Matting reference definitions; Grad with σ = 1.4 derivative-of-Gaussian 9×9 kernels "
        f"without min–max stretch; Conn with thresholds {step:g}…1, 4-connectivity, differences < 0.15 "
        "ignored). Lower is better; relative change = (model − baseline) / baseline."
    )


# ------------------------------------------------------------------------------------------------- files
def write_csv(records: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Per-image records as CSV (columns :data:`CSV_FIELDS` first, then any other scalar keys); floats are
    written with ``repr`` so :func:`read_csv` gives them back exactly. Written atomically."""
    extra = [k for r in records for k in r if k not in CSV_FIELDS and np.isscalar(r[k])]
    fields = list(CSV_FIELDS) + list(dict.fromkeys(extra))
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow({k: (repr(float(v)) if isinstance(v, float | np.floating) else v) for k, v in r.items()})
    return atomic_write(path, buf.getvalue())


def read_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read :func:`write_csv` output back (numbers as int/float)."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rec: dict[str, Any] = {}
            for k, v in row.items():
                if k in ("index", "height", "width"):
                    rec[k] = int(v)
                elif k in ("model", "test_set", "name", "region"):
                    rec[k] = v
                else:
                    try:
                        rec[k] = float(v)
                    except (TypeError, ValueError):
                        rec[k] = v
            out.append(rec)
    return out


def write_report(results: Mapping[str, Any], path: str | os.PathLike, title: str = "Evaluation") -> Path:
    """Write ``summary.md``: the conventions, one article-shaped table per test set, the brightness bins,
    the article's own table for comparison, and links to the figures (paths relative to the report)."""
    path = Path(path)
    lines = [f"# {title}", "", results.get("conventions", ""), ""]
    for ts, table in results["tables"].items():
        n = next(iter(results["summary"][ts].values()))["n"]
        lines += [f"## Test set: {ts} ({n} images)", "", table, ""]
    lines += ["## By input brightness (all test sets)", "", results.get("brightness_table", ""), ""]
    lines += [
        "## The article's table, for comparison",
        "",
        'Its test set ("LL-Matte-Test", N = 200) is not public and its conventions (region, scaling) are '
        "not stated, so only the relative changes can be compared.",
        "",
        comparison_table(ARTICLE_TABLE),
        "",
    ]
    figs = results.get("files", {}).get("figures", [])
    if figs:
        lines += ["## Figures", ""]
        for f in figs:
            rel = os.path.relpath(f, path.parent)
            lines += [f"![{Path(f).stem}]({rel})", ""]
    return atomic_write(path, "\n".join(lines).rstrip() + "\n")
