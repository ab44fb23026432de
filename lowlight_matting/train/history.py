"""A run's history: ``metrics.csv`` (one row per pass), loss curves, tensorboard."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from lowlight_matting.io import atomic_write

__all__ = ["load_history", "plot_history", "write_history"]


def write_history(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write the per-pass rows as CSV (columns: the union of keys, in first-seen order), atomically."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return atomic_write(path, buf.getvalue())


def load_history(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of ``metrics.csv`` in a run folder (numbers parsed)."""
    rows = []
    with open(Path(run_dir) / "metrics.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            out: dict[str, Any] = {}
            for k, v in r.items():
                try:
                    out[k] = float(v) if v not in ("", None) else None
                except ValueError:
                    out[k] = v
            rows.append(out)
    return rows


def plot_history(rows: list[dict[str, Any]], path: str | os.PathLike | None = None, ax=None):
    """Loss curves (train/val) and validation MSE per epoch, stage boundaries dashed. Saves a PNG when
    ``path`` is given (without touching pyplot's global state); returns the figure."""
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(10, 3.5))
        axes = fig.subplots(1, 2)
    else:
        axes, fig = ax, ax[0].figure
    ep = [r["epoch"] for r in rows]

    def series(key):
        return [r.get(key) if r.get(key) not in ("", None) else float("nan") for r in rows]

    axes[0].plot(ep, series("train_total"), "o-", label="train loss")
    if any(r.get("val_loss") not in (None, "") for r in rows):
        axes[0].plot(ep, series("val_loss"), "s-", label="val loss (dark)")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    for key, label in (("val_mse", "val MSE (dark)"), ("val_normal_mse", "val MSE (normal)")):
        if any(r.get(key) not in (None, "") for r in rows):
            axes[1].plot(ep, series(key), "o-", label=label)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("alpha MSE")
    axes[1].set_yscale("log")
    if axes[1].lines:
        axes[1].legend()
    prev = None
    for r in rows:
        if prev is not None and r.get("stage") != prev:
            for a in axes:
                a.axvline(r["epoch"] - 0.5, color="grey", ls="--", lw=0.8)
        prev = r.get("stage")
    fig.tight_layout()
    if path is not None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
        fig.savefig(path, dpi=100)
    return fig


def _tensorboard(run_dir: Path, enabled: bool):
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed
        return None
    return SummaryWriter(log_dir=str(run_dir / "tb"))
