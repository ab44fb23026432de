"""The demo's figures: training loss curves (``loss_curves.png``) and the visual comparison of baseline and
fine-tuned alphas on normal and low-light inputs (``comparison.png``).

Both draw with pyplot on the Agg backend and write a PNG atomically
(:func:`lowlight_matting.io.atomic_write`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lowlight_matting.io import atomic_write

__all__ = ["plot_loss_curves", "plot_comparison_grid"]


def plot_loss_curves(histories: dict[str, list[dict]], path: str | os.PathLike) -> Path:
    """Training loss per step for each phase (baseline, fine-tune stages marked), smoothed; saved as PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(histories), figsize=(5.5 * len(histories), 3.6), squeeze=False)
    for ax, (title, hist) in zip(axes[0], histories.items(), strict=True):
        if not hist:
            ax.set_title(f"{title} (no steps)")
            continue
        steps = np.array([h["step"] for h in hist])
        loss = np.array([h["loss"] for h in hist], dtype=float)
        ax.plot(steps, loss, color="0.75", lw=0.8, label="per step")
        k = max(1, len(loss) // 25)
        if k > 1:
            smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1 :], smooth, color="C0", lw=1.6, label=f"mean of {k}")
        stages = [h.get("stage") for h in hist]
        for i in range(1, len(stages)):
            if stages[i] != stages[i - 1]:
                ax.axvline(steps[i], color="C3", ls="--", lw=0.8)
                ax.text(steps[i], ax.get_ylim()[1], f" {stages[i]}", color="C3", fontsize=7, va="top")
        for key, color in (("val_normal", "C2"), ("val_lowlight", "C1")):
            val = [(h["step"], h[key]) for h in hist if h.get(key) is not None]
            if val:
                ax.plot(
                    *zip(*val, strict=True), "o-", color=color, ms=3, label=key.replace("_", " ") + " MSE"
                )
        ax.set_yscale("log")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return Path(path)


def plot_comparison_grid(
    rows: Sequence[dict[str, np.ndarray]], path: str | os.PathLike, titles: Sequence[str] | None = None
) -> Path:
    """A grid, one row per test image: normal input, low-light input, ground truth, baseline alpha, fine-tuned
    alpha, and the two absolute-error maps. Each row dict holds uint8 images ``normal``, ``lowlight`` and float
    mattes ``gt``, ``baseline``, ``finetuned`` (H, W); ``titles`` label the rows."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cols = [
        ("normal light", "normal"),
        ("low light (input)", "lowlight"),
        ("ground truth", "gt"),
        ("baseline", "baseline"),
        ("fine-tuned", "finetuned"),
        ("|error| baseline", "err_baseline"),
        ("|error| fine-tuned", "err_finetuned"),
    ]
    n = len(rows)
    fig, axes = plt.subplots(n, len(cols), figsize=(1.9 * len(cols), 1.95 * n + 0.3), squeeze=False)
    for i, r in enumerate(rows):
        data = dict(r)
        data["err_baseline"] = np.abs(r["baseline"] - r["gt"])
        data["err_finetuned"] = np.abs(r["finetuned"] - r["gt"])
        for j, (title, key) in enumerate(cols):
            ax = axes[i, j]
            img = data[key]
            if img.ndim == 3:
                ax.imshow(img)
            elif key.startswith("err"):
                ax.imshow(img, cmap="inferno", vmin=0, vmax=1)
            else:
                ax.imshow(img, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=8)
            if j == 0 and titles is not None:
                ax.set_ylabel(titles[i], fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return Path(path)
