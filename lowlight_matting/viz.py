"""Small picture helpers for the course: image grids, histograms, and the normal-vs-low-light contact sheet.

Everything that must work headless (the demo, the widget) renders with Matplotlib's Agg canvas directly
(``matplotlib.figure.Figure``, never ``pyplot``), so nothing depends on the notebook backend.

Example:
    >>> import numpy as np
    >>> from lowlight_matting.simulate import LowLightSimulator
    >>> sheet = contact_sheet([np.full((40, 60, 3), 200, np.uint8)], LowLightSimulator(), seed=0, thumb=64)
    >>> sheet.dtype, sheet.ndim
    (dtype('uint8'), 3)
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "CAPTION_FONTSIZE",
    "contact_sheet",
    "contact_sheet_figure",
    "figure_to_array",
    "figure_to_png",
    "format_params",
    "histogram_png",
    "image_grid",
    "plot_histogram",
]


CAPTION_FONTSIZE = 9
"""Smallest font size (points) of the contact sheet's captions and the widget histogram's legend: readable
when the picture is shown at its own size (at 72-100 dpi, 9-12 pixels)."""


def _agg_figure(figsize, dpi=100):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def figure_to_png(fig) -> bytes:
    """PNG bytes of a Matplotlib figure (rendered with Agg)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def figure_to_array(fig) -> np.ndarray:
    """A Matplotlib figure as a uint8 RGB array (H, W, 3) (rendered with Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[:, :, :3])


def image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    size: float = 3.0,
    suptitle: str | None = None,
    cmap: str = "gray",
):
    """Show images (uint8 or float in [0, 1]; (H, W) shown with ``cmap``) in a grid; returns the pyplot Figure.

    For notebooks (uses ``pyplot`` so the figure appears inline). ``ncols`` defaults to ``len(images)`` (max 6).
    """
    import matplotlib.pyplot as plt

    n = len(images)
    if n == 0:
        raise ValueError("image_grid: no images")
    ncols = ncols or min(n, 6)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            im = np.asarray(images[i])
            ax.imshow(
                im, cmap=cmap if im.ndim == 2 else None, vmin=0, vmax=255 if im.dtype == np.uint8 else 1
            )
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_histogram(ax, image: np.ndarray, label: str | None = None, channels: bool = True, log: bool = False):
    """Plot the 8-bit histogram of ``image`` (uint8 (H, W, 3) or (H, W)) on a Matplotlib axis.

    ``channels``: one line per R, G, B (else the Rec. 709 luma of the code values). Returns the axis.
    """
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.clip(np.round(np.asarray(a, np.float32) * 255), 0, 255).astype(np.uint8)
    bins = np.arange(257)
    if a.ndim == 3 and channels:
        for c, colour in enumerate(("tab:red", "tab:green", "tab:blue")):
            h, _ = np.histogram(a[..., c], bins=bins)
            ax.plot(bins[:-1], h, color=colour, lw=1, label=f"{label} {'RGB'[c]}" if label else None)
    else:
        y = a if a.ndim == 2 else a.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        h, _ = np.histogram(np.round(y), bins=bins)
        ax.plot(bins[:-1], h, color="k", lw=1, label=label)
    ax.set_xlim(0, 255)
    ax.set_xlabel("8-bit code value")
    ax.set_ylabel("pixels")
    if log:
        ax.set_yscale("log")
    if label:
        ax.legend(fontsize=7)
    return ax


def histogram_png(
    images: Sequence[np.ndarray], labels: Sequence[str], size=(4.0, 2.6), dpi: int = 80, log: bool = True
) -> bytes:
    """PNG bytes of the luma histograms of several images on one plot (for ``ipywidgets.Image``)."""
    fig = _agg_figure(size, dpi)
    ax = fig.add_subplot(1, 1, 1)
    colours = ("0.45", "tab:orange", "tab:blue", "tab:green")
    bins = np.arange(257)
    for i, (im, lab) in enumerate(zip(images, labels, strict=True)):
        a = np.asarray(im, np.float32)
        y = a @ np.array([0.2126, 0.7152, 0.0722], np.float32) if a.ndim == 3 else a
        h, _ = np.histogram(np.round(y), bins=bins)
        ax.fill_between(bins[:-1], h, step="mid", alpha=0.35, color=colours[i % 4], label=lab)
    ax.set_xlim(0, 255)
    if log:
        ax.set_yscale("log", nonpositive="clip")
        ax.set_ylim(bottom=0.8)
    ax.set_xlabel("luma (8-bit code value)")
    ax.set_ylabel("pixels")
    ax.legend(fontsize=CAPTION_FONTSIZE)
    fig.tight_layout()
    return figure_to_png(fig)


def format_params(params: dict[str, Any], per_line: int = 2) -> str:
    """A compact multi-line text of simulator parameters (for captions); at most ``per_line`` of the optional
    steps (gain, rows, blur, JPEG, white balance) share a line, so a caption stays as narrow as its picture."""
    p = params
    lines = [f"exposure 1/{p.get('ratio', 1):.1f} ({-np.log2(max(p.get('ratio', 1), 1e-9)):+.1f} EV)"]
    lines.append(f"shot {p.get('shot', 0):.2g}  read {p.get('read', 0):.2g}")
    extras = []
    if p.get("gain", 1) != 1:
        extras.append(f"gain x{p['gain']:.1f}")
    if p.get("row_std", 0):
        extras.append("rows")
    if p.get("blur_length", 0):
        extras.append(f"blur {p['blur_length']:.0f}px")
    if p.get("jpeg_quality", 0):
        extras.append(f"jpeg q{p['jpeg_quality']}")
    wb = p.get("wb")
    if wb is not None:
        extras.append(f"wb {wb[0]:.2f}/{wb[2]:.2f}")
    lines += ["  ".join(extras[i : i + per_line]) for i in range(0, len(extras), max(1, per_line))]
    return "\n".join(line for line in lines if line)


def contact_sheet(
    images: Sequence[np.ndarray],
    simulator=None,
    seed: int | None = 0,
    names: Sequence[str] | None = None,
    thumb: int = 256,
    return_params: bool = False,
):
    """A contact sheet: each photo (top row) above its simulated low-light version with the drawn parameters.

    ``images``: uint8 RGB photos; ``simulator``: a :class:`~lowlight_matting.simulate.LowLightSimulator`
    (default preset when None), reseeded with ``seed`` so the sheet is reproducible; ``thumb``: longest side
    of each thumbnail. Returns a uint8 RGB array (write it with :func:`lowlight_matting.io.write_image`);
    with ``return_params=True`` also the list of parameter dicts. The figure itself:
    :func:`contact_sheet_figure`.
    """
    fig, params = contact_sheet_figure(images, simulator, seed=seed, names=names, thumb=thumb)
    sheet = figure_to_array(fig)
    return (sheet, params) if return_params else sheet


def contact_sheet_figure(
    images: Sequence[np.ndarray],
    simulator=None,
    seed: int | None = 0,
    names: Sequence[str] | None = None,
    thumb: int = 256,
):
    """The Matplotlib figure of :func:`contact_sheet` (Agg canvas) and the list of drawn parameter dicts.

    One column of 2.6 inches per photo at ``thumb / 2.6`` dpi (at least 72), so each thumbnail is drawn at
    about its own size; captions in :data:`CAPTION_FONTSIZE` points, titles one point larger.
    """
    import cv2

    from lowlight_matting.simulate import LowLightSimulator

    if len(images) == 0:
        raise ValueError("contact_sheet: no images")
    sim = simulator if simulator is not None else LowLightSimulator()
    sim.reseed(seed)
    thumbs, darks, params = [], [], []
    for im in images:
        im = np.asarray(im)
        s = thumb / max(im.shape[:2])
        small = cv2.resize(
            im, (max(1, round(im.shape[1] * s)), max(1, round(im.shape[0] * s))), interpolation=cv2.INTER_AREA
        )
        thumbs.append(small)
        darks.append(sim(small))
        params.append(sim.last_params)
    n = len(images)
    fig = _agg_figure((2.6 * n, 7.0), dpi=max(72, thumb // 2.6 + 1))
    title = CAPTION_FONTSIZE + 1
    for i in range(n):
        ax = fig.add_subplot(2, n, i + 1)
        ax.imshow(thumbs[i])
        ax.set_title(names[i] if names else f"normal #{i}", fontsize=title)
        ax.axis("off")
        ax = fig.add_subplot(2, n, n + i + 1)
        ax.imshow(darks[i])
        ax.set_title("low light (simulated)", fontsize=title)
        ax.set_xlabel(format_params(params[i]), fontsize=CAPTION_FONTSIZE)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"LowLightSimulator, seed={seed}", fontsize=title + 1)
    fig.set_layout_engine("constrained")  # keeps titles and multi-line captions clear of the pictures
    return fig, params
