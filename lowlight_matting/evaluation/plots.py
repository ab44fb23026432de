"""Evaluation figures: the visual comparison the article left out (:func:`plot_hardest`, zoomed on the
hairiest region, :func:`zoom_box`) and the mean error per input-brightness bin (:func:`plot_brightness`).

Figures are drawn on Matplotlib's Agg canvas (no GUI, no global pyplot state) and returned, so a notebook
shows them by leaving them as a cell's value; given a ``path`` they are also written as PNG.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lowlight_matting.color import linear_to_u8, mean_luminance, u8_to_linear
from lowlight_matting.evaluation.report import METRIC_TITLES
from lowlight_matting.evaluation.stats import brightness_bins
from lowlight_matting.io import atomic_write

__all__ = ["zoom_box", "plot_hardest", "plot_brightness"]


def zoom_box(
    alpha: np.ndarray, fraction: float = 0.4, weight: np.ndarray | None = None
) -> tuple[int, int, int, int]:
    """A square crop (y0, y1, x0, x1) of side ``fraction``·min(H, W) where the matte is most "hairy": the most
    fractional pixels (0.02 < α < 0.98), plus ``weight`` (e.g. an error map) when given."""
    import cv2

    a = np.asarray(alpha, dtype=np.float32)
    h, w = a.shape
    s = max(8, min(h, w, int(round(fraction * min(h, w)))))
    score = ((a > 0.02) & (a < 0.98)).astype(np.float32)
    if weight is not None:
        wt = np.asarray(weight, dtype=np.float32)
        score = score + 0.25 * wt / max(float(wt.max()), 1e-12)  # errors only break ties between regions
    density = cv2.boxFilter(score, -1, (s, s), normalize=False, borderType=cv2.BORDER_CONSTANT)
    half = s // 2
    # only centres whose box lies inside the image
    inner = density[half : h - (s - half) + 1, half : w - (s - half) + 1]
    cy, cx = np.unravel_index(int(np.argmax(inner)), inner.shape)
    y0, x0 = int(cy), int(cx)
    return y0, y0 + s, x0, x0 + s


def _display_image(image: np.ndarray, target: float = 0.18) -> tuple[np.ndarray, float]:
    """A dark uint8 RGB image brightened for display only (linear-light gain so its mean luminance reaches
    ``target``, at most ×50), and the gain used (1 when it is bright enough already)."""
    lum = float(mean_luminance(image))
    if lum >= 0.1:
        return image, 1.0
    gain = float(min(50.0, target / max(lum, 1e-4)))
    return linear_to_u8(u8_to_linear(np.ascontiguousarray(image, dtype=np.uint8)) * gain), gain


def _figure(figsize, dpi=100):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike | None) -> None:
    """Write ``fig`` as PNG to ``path`` atomically (nothing when ``path`` is None)."""
    if path is not None:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


def plot_hardest(
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike | None = None,
    title: str | None = None,
    zoom: bool = True,
):
    """The visual comparison: per image, input / ground truth / each model's alpha / each model's error map
    |α − α*|, and beneath it the same panels zoomed on the hairiest region (:func:`zoom_box`, framed in
    the full view).

    Args:
        rows: dicts with ``image`` uint8 (H, W, 3), ``alpha`` (ground truth), ``preds`` ``{model: alpha}``,
            optional ``label`` (row title) and ``box`` (y0, y1, x0, x1).
        path: PNG to write (None: only return the figure).

    Returns:
        the Matplotlib ``Figure`` (Agg; display it in a notebook by leaving it as the cell's value).
    """
    from matplotlib.patches import Rectangle

    if not rows:
        raise ValueError("plot_hardest: no rows")
    models = list(rows[0]["preds"])
    cols = ["input", "ground truth"] + models + [f"|error| {m}" for m in models]
    per = 2 if zoom else 1
    nrows = per * len(rows)
    fig = _figure((1.8 * len(cols), 1.85 * nrows + (0.4 if title else 0.1)), dpi=110)
    axes = fig.subplots(nrows, len(cols), squeeze=False)
    for i, r in enumerate(rows):
        gt = np.asarray(r["alpha"], dtype=np.float32)
        preds = {m: np.asarray(r["preds"][m], dtype=np.float32) for m in models}
        errs = {m: np.abs(preds[m] - gt) for m in models}
        box = r.get("box") or zoom_box(gt, weight=sum(errs.values()))
        shown_input, gain = _display_image(np.asarray(r["image"]))
        panels = [shown_input, gt] + [preds[m] for m in models] + [errs[m] for m in models]
        kinds = ["rgb", "alpha"] + ["alpha"] * len(models) + ["err"] * len(models)
        for v in range(per):
            for j, (img, kind) in enumerate(zip(panels, kinds, strict=True)):
                ax = axes[per * i + v, j]
                y0, y1, x0, x1 = box
                shown = img if v == 0 else img[y0:y1, x0:x1]
                if kind == "rgb":
                    ax.imshow(shown, interpolation="nearest")
                elif kind == "err":
                    ax.imshow(shown, cmap="inferno", vmin=0, vmax=1, interpolation="nearest")
                else:
                    ax.imshow(shown, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                if v == 0 and zoom:
                    ax.add_patch(
                        Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="#00e5ff", lw=0.8)
                    )
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0 and v == 0:
                    ax.set_title(cols[j], fontsize=7)
            label = str(r.get("label", "")) + (f"\n(input shown ×{gain:.0f} brighter)" if gain > 1 else "")
            axes[per * i + v, 0].set_ylabel(label if v == 0 else "zoom", fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    # fixed margins (tight_layout would draw the whole figure once more just to measure it)
    height = fig.get_figheight()
    fig.subplots_adjust(
        left=0.7 / fig.get_figwidth(),
        right=0.995,
        bottom=0.05 / height,
        top=1 - (0.55 if title else 0.3) / height,
        wspace=0.04,
        hspace=0.08,
    )
    _save(fig, path)
    return fig


def plot_brightness(
    records: Sequence[Mapping[str, Any]], path: str | os.PathLike | None = None, metric: str = "sad"
):
    """Mean ``metric`` per brightness bin (:func:`~lowlight_matting.evaluation.brightness_bins`) and model;
    the dark bins (mean linear luminance below ``color.DARK_THRESHOLD``) are shaded."""
    rows = brightness_bins(records, metrics=(metric,))
    models = list(dict.fromkeys(str(r["model"]) for r in records))
    fig = _figure((5.0, 3.2), dpi=110)
    ax = fig.subplots()
    xs = np.arange(len(rows))
    for m in models:
        ax.plot(xs, [row[m].get(metric, np.nan) for row in rows], marker="o", label=m)
    dark = [x for x, row in zip(xs, rows, strict=True) if row["dark"] == "yes"]
    if dark:
        ax.axvspan(min(dark) - 0.5, max(dark) + 0.5, color="0.5", alpha=0.12, lw=0, label="dark")
    ax.set_xticks(xs, [f"{row['bin']}\n(n={row['n']})" for row in rows], fontsize=7)
    ax.set_xlabel("input brightness (mean linear luminance)")
    ax.set_ylabel(f"{METRIC_TITLES.get(metric, metric)} (mean) ↓")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return fig
