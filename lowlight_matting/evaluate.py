"""Evaluate matting models as the field does, and report it in the article's shape.

The article's only evidence is one table (MSE 0.032 → 0.018, SAD 48.7 → 31.4, Gradient 28.5 → 19.3,
Connectivity 35.2 → 24.1 on "LL-Matte-Test, N = 200") and a visual comparison it could not show. This module
produces both from real runs, with the metric conventions written next to the numbers:

- **metrics** — SAD, MSE, Grad, Conn from :mod:`lowlight_matting.metrics` (the Deep Image Matting reference
  definitions; SAD/Grad/Conn ÷ 1000, MSE raw, shown ×10³ only when ``mse_scale=1000`` and then labelled).
- **region** — the whole image (trimap-free convention of MODNet, P3M, AIM: ``trimap=None``) or the unknown
  region of a trimap (Composition-1k convention: ``trimap="auto"`` derives one from the ground truth with
  :func:`~lowlight_matting.metrics.make_trimap`, kernel :func:`auto_trimap_kernel`; a folder of trimap PNGs
  or the items' own ``trimap`` also work).
- **test sets** — normal light and the SAME images through the low-light simulator with a fixed seed
  (:func:`make_test_sets`), or a folder from disk (e.g. real low-light photos with mattes).

Main entry points (the demo and the ``evaluate`` command call these):

- :func:`evaluate_models` / :func:`evaluate_model` → per-image records (dicts; one per model × image);
- :func:`evaluate_checkpoints` → everything at once: records, summaries, tables, figures and files;
- :func:`summarize`, :func:`comparison_table`, :func:`brightness_table`, :func:`write_csv`,
  :func:`write_report`, :func:`plot_hardest`.

Example:
    >>> from lowlight_matting.models import build_model
    >>> from lowlight_matting.evaluate import make_test_sets, evaluate_checkpoints
    >>> sets = make_test_sets("synthetic", lowlight=True, n=2, size=64, seed=0)  # doctest: +SKIP
    >>> models = {"baseline": build_model("test_convnext"), "other": build_model("test_convnext")}  # doctest: +SKIP
    >>> res = evaluate_checkpoints(models, sets, out_dir="/tmp/eval", progress=False)  # doctest: +SKIP
    >>> print(res["tables"]["lowlight"])  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io as _io
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lowlight_matting.metrics import CONNECTIVITY_STEP, compute_metrics, make_trimap

__all__ = [
    "METRICS",
    "METRIC_TITLES",
    "ARTICLE_TABLE",
    "BRIGHTNESS_EDGES",
    "OUTPUT_FILES",
    "auto_trimap_kernel",
    "make_test_sets",
    "load_models",
    "resolve_device",
    "predict_alphas",
    "evaluate_models",
    "evaluate_model",
    "summarize",
    "relative_change",
    "bootstrap_relative_change",
    "format_change",
    "conventions",
    "comparison_table",
    "brightness_bins",
    "brightness_table",
    "hardest",
    "zoom_box",
    "plot_hardest",
    "plot_brightness",
    "write_csv",
    "read_csv",
    "write_report",
    "evaluate_checkpoints",
]

METRICS: tuple[str, ...] = ("mse", "sad", "grad", "conn")
"""Metric keys in the order of the article's table (MSE, SAD, Gradient, Connectivity)."""
METRIC_TITLES = {"mse": "MSE", "sad": "SAD", "grad": "Grad", "conn": "Conn"}
ARTICLE_TABLE = {
    "original CV-UNet": {"mse": 0.032, "sad": 48.7, "grad": 28.5, "conn": 35.2},
    "fine-tuned (article)": {"mse": 0.018, "sad": 31.4, "grad": 19.3, "conn": 24.1},
}
"""The article's table ("LL-Matte-Test", N = 200; its conventions are not stated)."""
BRIGHTNESS_EDGES: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 1.0)
"""Bin edges of the mean *linear* luminance of the input (Rec. 709, :func:`lowlight_matting.simulate.mean_luminance`):
pitch dark < 1 % < very dark < 3 % < dim < 10 % < normal."""
OUTPUT_FILES = ("metrics.csv", "summary.md", "brightness.md", "results.json")
"""Files :func:`evaluate_checkpoints` writes into ``out_dir`` (besides ``figures/``)."""


# ------------------------------------------------------------------------------------------------ data
def auto_trimap_kernel(height: int, width: int | None = None) -> int:
    """Odd structuring-element size used by ``trimap="auto"``: 2·max(1, min(H, W) // 48) + 1 pixels
    (3 px at 64², 11 px at 256², 21 px at 512²), so the unknown band scales with the image."""
    side = min(int(height), int(width if width is not None else height))
    return 2 * max(1, side // 48) + 1


class _Subset:
    """The first ``n`` items of a dataset (keeps ``names`` and the ``.dataset`` chain for lookups)."""

    def __init__(self, dataset, n: int):
        self.dataset = dataset
        self.n = min(int(n), len(dataset))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not 0 <= int(i) < self.n:
            raise IndexError(f"index {i} out of range for {self.n} items")
        return self.dataset[int(i)]

    @property
    def names(self) -> list[str]:
        return _item_names(self.dataset)[: self.n]


def make_test_sets(
    data: str | os.PathLike = "synthetic",
    lowlight: bool = False,
    n: int | None = 16,
    size: int = 256,
    seed: int = 0,
    normal: bool = True,
    simulator: Any | None = None,
) -> dict[str, Any]:
    """Test sets by name.

    Args:
        data: ``"synthetic"`` (:class:`~lowlight_matting.data.SyntheticMattingDataset` of ``n`` images of
            ``size``², dataset seed ``seed``), ``"samples"`` (the committed ``data_samples/test``, first ``n``),
            or a folder (:class:`~lowlight_matting.data.FolderMattingDataset`, first ``n`` when given).
        lowlight: add ``"lowlight"``: the same images through a
            :class:`~lowlight_matting.simulate.LowLightSimulator` (or ``simulator``) with a fixed seed, via
            :class:`~lowlight_matting.data.LowLightPairs` (every image darkened; ``item["normal"]`` kept).
        normal: keep the undarkened set (named ``"normal"``, or after the folder for data from disk).
        seed: seeds the synthetic data and the simulation; the same seed gives the same test sets.

    Returns:
        ``{name: dataset}``; each dataset has ``len`` and items with ``image`` uint8 (H, W, 3) and ``alpha``.
    """
    from lowlight_matting.data import (
        FolderMattingDataset,
        LowLightPairs,
        SyntheticMattingDataset,
        load_samples,
    )

    key = str(data)
    if key == "synthetic":
        base: Any = SyntheticMattingDataset(16 if n is None else int(n), size=size, seed=seed)
        base_name = "normal"
    elif key == "samples":
        base = load_samples("test", n=n)
        base_name = "normal"
    else:
        root = Path(data)
        if not root.is_dir():
            raise FileNotFoundError(f"--data {root}: not 'synthetic', 'samples' or an existing folder")
        base = FolderMattingDataset(root)
        if n is not None:
            base = _Subset(base, n)
        base_name = root.name or "data"
    if len(base) == 0:
        raise ValueError(f"test data {key!r} holds no images")
    sets: dict[str, Any] = {}
    if normal:
        sets[base_name] = base
    if lowlight:
        if simulator is None:
            from lowlight_matting.simulate import LowLightSimulator

            simulator = LowLightSimulator(seed=seed)
        sets["lowlight"] = LowLightPairs(base, simulator=simulator, seed=seed)
    if not sets:
        raise ValueError("make_test_sets: nothing to evaluate (normal=False and lowlight=False)")
    return sets


def _item_names(dataset) -> list[str]:
    """Per-index names: ``dataset.names`` (or of a wrapped ``.dataset``), item ``name`` keys, else indices."""
    d = dataset
    for _ in range(8):
        names = getattr(d, "names", None)
        if names is not None and not callable(names) and len(names) >= len(dataset):
            return [str(x) for x in list(names)[: len(dataset)]]
        if isinstance(d, list | tuple) and all(isinstance(it, Mapping) and "name" in it for it in d):
            return [str(it["name"]) for it in d[: len(dataset)]]
        if not hasattr(d, "dataset"):
            break
        d = d.dataset
    return [f"{i:04d}" for i in range(len(dataset))]


# ----------------------------------------------------------------------------------------------- models
def resolve_device(device: Any = None):
    """``None``/``"auto"`` → CUDA when available, else CPU; anything else as a :class:`torch.device`."""
    import torch

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _unique_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    names: list[str] = []
    for p in paths:
        stem = Path(p).stem or "model"
        name, k = stem, 2
        while name in names:
            name, k = f"{stem}_{k}", k + 1
        names.append(name)
    return names


def load_models(checkpoints: Mapping[str, Any] | Sequence[Any], device: Any = None) -> dict[str, Any]:
    """``{name: model}`` in eval mode on ``device`` from checkpoint paths or ready ``nn.Module`` s.

    A mapping keeps its names; a list is named after the files (``runs/a/baseline.pt`` → ``baseline``).
    Checkpoints are read with :func:`lowlight_matting.checkpoint.model_from_checkpoint` (weights only).
    """
    import torch

    from lowlight_matting.checkpoint import model_from_checkpoint

    dev = resolve_device(device)
    if isinstance(checkpoints, Mapping):
        items = list(checkpoints.items())
    else:
        seq = list(checkpoints)
        labels = _unique_names(
            [p if not isinstance(p, torch.nn.Module) else f"model{i}" for i, p in enumerate(seq)]
        )
        items = list(zip(labels, seq, strict=True))
    if not items:
        raise ValueError("load_models: no checkpoints given")
    models = {}
    for name, src in items:
        model = src if isinstance(src, torch.nn.Module) else model_from_checkpoint(src, map_location="cpu")
        models[str(name)] = model.to(dev).eval()
    return models


def predict_alphas(model, images: Sequence[np.ndarray], device: Any = None) -> list[np.ndarray]:
    """Alpha mattes (float32 (H, W) in [0, 1]) of ``model`` for uint8 (H, W, 3) ``images`` of one size."""
    import torch

    dev = resolve_device(device) if device is not None else next(model.parameters()).device
    x = torch.from_numpy(np.stack([np.asarray(im) for im in images])).to(dev)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    with torch.inference_mode():
        out = model(x)
        if isinstance(out, Mapping):
            out = out["alpha"]
        out = out.float().clamp(0, 1)[:, 0].cpu().numpy()
    return list(out)


# ------------------------------------------------------------------------------------------- evaluation
TrimapSpec = None | str | os.PathLike | Callable[[Mapping[str, Any]], Any]


def _trimap_lookup(spec: TrimapSpec) -> Callable[[Mapping[str, Any], str], np.ndarray | None]:
    """Turn the ``trimap`` option into ``f(item, name) -> trimap or None``."""
    if spec is None or (isinstance(spec, str) and spec in ("none", "")):
        return lambda item, name: None
    if isinstance(spec, str) and spec == "auto":

        def auto(item, name):
            a = np.asarray(item["alpha"])
            return make_trimap(a, kernel_size=auto_trimap_kernel(*a.shape[:2]))

        return auto
    if isinstance(spec, str) and spec == "item":

        def from_item(item, name):
            if "trimap" not in item:
                raise KeyError(f"trimap='item': item {name!r} has no 'trimap' key")
            return np.asarray(item["trimap"])

        return from_item
    if callable(spec):
        return lambda item, name: spec(item)
    folder = Path(spec)
    if not folder.is_dir():
        raise FileNotFoundError(f"trimap: {folder} is not 'auto', 'none', 'item' or an existing folder")
    from lowlight_matting.io import list_images, read_raw

    files = {p.stem: p for p in list_images([folder])}

    def from_folder(item, name):
        path = files.get(Path(name).name) or files.get(Path(name).stem)
        if path is None:
            raise FileNotFoundError(f"trimap: no file for image {name!r} in {folder}")
        t = read_raw(path)
        if t.dtype != np.uint8:
            t = np.round(t / 257.0).astype(np.uint8)
        return t if t.ndim == 2 else t[:, :, 0]

    return from_folder


def _batches(dataset, batch_size: int) -> Iterable[list[tuple[int, Mapping[str, Any]]]]:
    """Consecutive items grouped by image size, at most ``batch_size`` per group."""
    group: list[tuple[int, Mapping[str, Any]]] = []
    for i in range(len(dataset)):
        item = dataset[i]
        if group and (len(group) >= batch_size or np.shape(item["image"]) != np.shape(group[0][1]["image"])):
            yield group
            group = []
        group.append((i, item))
    if group:
        yield group


def evaluate_models(
    models: Mapping[str, Any],
    dataset,
    test_set: str = "test",
    device: Any = None,
    trimap: TrimapSpec = None,
    batch_size: int = 4,
    progress: bool = True,
    step: float = CONNECTIVITY_STEP,
) -> list[dict[str, Any]]:
    """Run every model of ``models`` over ``dataset`` (each item loaded once) and score each prediction.

    Args:
        models: ``{name: nn.Module}`` taking float (B, 3, H, W) in [0, 1] and returning alpha (B, 1, H, W).
        dataset: indexable; items hold ``image`` uint8 (H, W, 3) and ``alpha`` float (H, W) in [0, 1].
        trimap: None (whole image), ``"auto"`` (from the ground truth, :func:`auto_trimap_kernel`),
            ``"item"`` (``item["trimap"]``), a folder of trimap images named like the items, or a callable
            ``f(item) -> trimap``. With a trimap only its unknown pixels (== 128) are counted.

    Returns:
        one record per (model, image): ``model, test_set, index, name, height, width, brightness`` (mean
        linear luminance of the input), ``region`` (``"whole"``/``"unknown"``), ``unknown_fraction``,
        ``seconds`` (inference time per image), ``sad, mse, grad, conn``.
    """
    from tqdm.auto import tqdm

    from lowlight_matting.simulate import mean_luminance

    if not models:
        raise ValueError("evaluate_models: no models given")
    lookup = _trimap_lookup(trimap)
    names = _item_names(dataset)
    dev = resolve_device(device)
    for m in models.values():
        m.to(dev).eval()
    records: list[dict[str, Any]] = []
    total = len(dataset) * len(models)
    with tqdm(
        total=total, desc=f"evaluate {test_set}", unit="pred", disable=not progress, leave=False
    ) as bar:
        for group in _batches(dataset, max(1, int(batch_size))):
            images = [np.asarray(it["image"]) for _, it in group]
            gts = [np.asarray(it["alpha"], dtype=np.float64) for _, it in group]
            tris = [lookup(it, names[i]) for i, it in group]
            light = [float(mean_luminance(im)) for im in images]
            for mname, model in models.items():
                t0 = time.perf_counter()
                preds = predict_alphas(model, images, dev)
                if dev.type == "cuda":
                    import torch

                    torch.cuda.synchronize(dev)
                per_image = (time.perf_counter() - t0) / len(group)
                for (idx, _), pred, gt, tri, lum in zip(group, preds, gts, tris, light, strict=True):
                    if pred.shape != gt.shape:
                        raise ValueError(
                            f"model {mname!r} returned a {pred.shape} matte for the {gt.shape} image {names[idx]!r}"
                        )
                    m = compute_metrics(pred, gt, tri, step=step)
                    records.append(
                        {
                            "model": mname,
                            "test_set": test_set,
                            "index": int(idx),
                            "name": names[idx],
                            "height": int(gt.shape[0]),
                            "width": int(gt.shape[1]),
                            "brightness": lum,
                            "region": "whole" if tri is None else "unknown",
                            "unknown_fraction": 1.0
                            if tri is None
                            else float(np.mean(np.asarray(tri) == 128)),
                            "seconds": per_image,
                            **m,
                        }
                    )
                bar.update(len(group))
    order = {m: j for j, m in enumerate(models)}
    records.sort(key=lambda r: (order[r["model"]], r["index"]))  # model by model, images in order
    return records


def evaluate_model(
    model,
    dataset_or_items,
    device: Any = None,
    trimap: TrimapSpec = None,
    name: str = "model",
    test_set: str = "test",
    batch_size: int = 4,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Per-image records of one model (a module or a checkpoint path) on a dataset or a list of items.

    See :func:`evaluate_models` for the options and the record fields.
    """
    models = load_models({name: model}, device)
    return evaluate_models(
        models, dataset_or_items, test_set, device, trimap=trimap, batch_size=batch_size, progress=progress
    )


# -------------------------------------------------------------------------------------------- summaries
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


def relative_change(before: float, after: float) -> float:
    """(after − before) / before: negative when an error went down; NaN when ``before`` is 0 or not finite."""
    before, after = float(before), float(after)
    if before == 0 or not math.isfinite(before) or not math.isfinite(after):
        return float("nan")
    return (after - before) / abs(before)


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

    Example::

        >>> lo, hi = bootstrap_relative_change([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
        >>> round(lo, 6), round(hi, 6)
        (-0.5, -0.5)
    """
    b = np.asarray(before, dtype=np.float64)
    a = np.asarray(after, dtype=np.float64)
    if b.ndim != 1 or b.shape != a.shape or len(b) == 0:
        raise ValueError(
            f"before/after: need two 1-D sequences of the same non-zero length, got shapes {b.shape} and {a.shape}"
        )
    if not 0 < level < 1:
        raise ValueError(f"level: must be in (0, 1), got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples: must be at least 1, got {n_resamples}")
    idx = np.random.default_rng(seed).integers(0, len(b), size=(n_resamples, len(b)))
    mb, ma = b[idx].mean(axis=1), a[idx].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ch = (ma - mb) / np.abs(mb)
    ch = ch[np.isfinite(ch)]
    if len(ch) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(ch, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def format_change(change: float) -> str:
    """``-0.4375 → '−43.8%'``; NaN → ``'n/a'``."""
    if not math.isfinite(change):
        return "n/a"
    return f"{change * 100:+.1f}%".replace("-", "−")


def _fmt(key: str, value: float, mse_scale: float) -> str:
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    if key == "mse":
        v = float(value) * mse_scale
        return f"{v:.4f}" if mse_scale == 1 else f"{v:.3f}"
    return f"{float(value):.3f}" if abs(float(value)) < 10 else f"{float(value):.2f}"


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


def comparison_table(
    summary: Mapping[str, Mapping[str, float]],
    baseline: str | None = None,
    mse_scale: float = 1.0,
    metrics: Sequence[str] = METRICS,
) -> str:
    """A Markdown table in the article's shape: one row per model (MSE, SAD, Grad, Conn ↓), then one
    "relative change" row per non-baseline model. ``summary`` is ``{model: {metric: value}}`` (one test set
    of :func:`summarize`); ``baseline`` defaults to the first model.

    Example:
        >>> print(comparison_table(ARTICLE_TABLE))  # doctest: +NORMALIZE_WHITESPACE
        | model | MSE ↓ | SAD ↓ | Grad ↓ | Conn ↓ |
        |---|---:|---:|---:|---:|
        | original CV-UNet | 0.0320 | 48.70 | 28.50 | 35.20 |
        | fine-tuned (article) | 0.0180 | 31.40 | 19.30 | 24.10 |
        | relative change, fine-tuned (article) vs original CV-UNet | −43.8% | −35.5% | −32.3% | −31.5% |
    """
    names = list(summary)
    if not names:
        raise ValueError("comparison_table: empty summary")
    base = names[0] if baseline is None else baseline
    if base not in summary:
        raise KeyError(f"comparison_table: baseline {base!r} not among {names}")
    mse_title = "MSE" if mse_scale == 1 else f"MSE ×{mse_scale:g}"
    titles = [mse_title if k == "mse" else METRIC_TITLES.get(k, k) for k in metrics]
    lines = ["| model | " + " | ".join(f"{t} ↓" for t in titles) + " |", "|---|" + "---:|" * len(metrics)]
    for name in names:
        lines.append(
            f"| {name} | " + " | ".join(_fmt(k, summary[name][k], mse_scale) for k in metrics) + " |"
        )
    for name in names:
        if name == base:
            continue
        ch = [format_change(relative_change(summary[base][k], summary[name][k])) for k in metrics]
        lines.append(f"| relative change, {name} vs {base} | " + " | ".join(ch) + " |")
    return "\n".join(lines)


def _bin_label(lo: float, hi: float) -> str:
    return f"{lo * 100:g}–{hi * 100:g} %"


def brightness_bins(
    records: Sequence[Mapping[str, Any]],
    edges: Sequence[float] = BRIGHTNESS_EDGES,
    metrics: Sequence[str] = METRICS,
) -> list[dict[str, Any]]:
    """Mean metrics per brightness bin (mean linear luminance of the input) and model, over all test sets.

    Returns rows ``{"bin": label, "lo": , "hi": , "n": images, model: {metric: mean}}`` for non-empty bins;
    the last bin includes its upper edge.
    """
    models = list(dict.fromkeys(str(r["model"]) for r in records))
    rows = []
    for j, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        last = j == len(edges) - 2
        sel = [r for r in records if lo <= r["brightness"] < hi or (last and r["brightness"] == hi)]
        if not sel:
            continue
        row: dict[str, Any] = {"bin": _bin_label(lo, hi), "lo": lo, "hi": hi}
        row["n"] = len({(r["test_set"], r["index"]) for r in sel})
        for m in models:
            rs = [r for r in sel if r["model"] == m]
            row[m] = {k: float(np.mean([r[k] for r in rs])) for k in metrics} if rs else {}
        rows.append(row)
    return rows


def brightness_table(
    records: Sequence[Mapping[str, Any]],
    edges: Sequence[float] = BRIGHTNESS_EDGES,
    metrics: Sequence[str] = ("sad", "conn"),
    mse_scale: float = 1.0,
) -> str:
    """Markdown: one row per brightness bin, columns = each metric × each model (and the change vs the
    first model when there are two or more)."""
    rows = brightness_bins(records, edges, metrics)
    models = list(dict.fromkeys(str(r["model"]) for r in records))
    head = ["input brightness (mean linear luminance)", "images"]
    for k in metrics:
        t = METRIC_TITLES.get(k, k) if not (k == "mse" and mse_scale != 1) else f"MSE ×{mse_scale:g}"
        head += [f"{t} {m}" for m in models]
        if len(models) > 1:
            head += [f"{t} change ({models[-1]} vs {models[0]})"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for row in rows:
        cells = [row["bin"], str(row["n"])]
        for k in metrics:
            vals = [row[m].get(k, float("nan")) for m in models]
            cells += [_fmt(k, v, mse_scale) for v in vals]
            if len(models) > 1:
                cells.append(format_change(relative_change(vals[0], vals[-1])))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- figures
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
    from lowlight_matting.simulate import linear_to_srgb, mean_luminance, srgb_to_linear

    lum = float(mean_luminance(image))
    if lum >= 0.1:
        return image, 1.0
    gain = float(min(50.0, target / max(lum, 1e-4)))
    lin = srgb_to_linear(image.astype(np.float32) / 255.0) * gain
    return (np.clip(linear_to_srgb(np.clip(lin, 0, 1)), 0, 1) * 255 + 0.5).astype(np.uint8), gain


def _figure(figsize, dpi=100):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


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
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return fig


def plot_brightness(
    records: Sequence[Mapping[str, Any]], path: str | os.PathLike | None = None, metric: str = "sad"
):
    """Mean ``metric`` per brightness bin and model (line plot, log-luminance axis)."""
    rows = brightness_bins(records, metrics=(metric,))
    models = list(dict.fromkeys(str(r["model"]) for r in records))
    fig = _figure((5.0, 3.2), dpi=110)
    ax = fig.subplots()
    xs = np.arange(len(rows))
    for m in models:
        ax.plot(xs, [row[m].get(metric, np.nan) for row in rows], marker="o", label=m)
    ax.set_xticks(xs, [f"{row['bin']}\n(n={row['n']})" for row in rows], fontsize=7)
    ax.set_xlabel("input brightness (mean linear luminance)")
    ax.set_ylabel(f"{METRIC_TITLES.get(metric, metric)} (mean) ↓")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return fig


# ------------------------------------------------------------------------------------------------- files
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


def _atomic_write_text(path: Path, text: str) -> Path:
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_csv(records: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Per-image records as CSV (columns :data:`CSV_FIELDS` first, then any other scalar keys)."""
    extra = [k for r in records for k in r if k not in CSV_FIELDS and np.isscalar(r[k])]
    fields = list(CSV_FIELDS) + list(dict.fromkeys(extra))
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow({k: (repr(float(v)) if isinstance(v, float | np.floating) else v) for k, v in r.items()})
    return _atomic_write_text(Path(path), buf.getvalue())


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


def to_jsonable(x: Any) -> Any:
    """``x`` with NumPy scalars as Python numbers, paths as strings and non-finite floats as None (for JSON)."""
    if isinstance(x, Mapping):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


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
    return _atomic_write_text(path, "\n".join(lines).rstrip() + "\n")


def _check_out_dir(out: Path, overwrite: bool) -> None:
    clash = [f for f in OUTPUT_FILES if (out / f).exists()]
    if clash and not overwrite:
        raise FileExistsError(
            f"{out}: holds results already ({', '.join(clash)}); choose another folder or pass overwrite=True "
            "(--overwrite)"
        )


def evaluate_checkpoints(
    checkpoints: Mapping[str, Any] | Sequence[Any],
    test_sets: Mapping[str, Any],
    out_dir: str | os.PathLike | None = None,
    device: Any = None,
    trimap: TrimapSpec = None,
    baseline: str | None = None,
    mse_scale: float = 1.0,
    n_figure: int = 4,
    batch_size: int = 4,
    progress: bool = True,
    overwrite: bool = False,
    brightness_edges: Sequence[float] = BRIGHTNESS_EDGES,
) -> dict[str, Any]:
    """Evaluate several models (checkpoint paths or modules) on several test sets, report, and save.

    Args:
        checkpoints: ``{name: path | nn.Module}`` or a list of paths (named after the files). The first is
            the baseline of the relative changes unless ``baseline`` names another.
        test_sets: ``{name: dataset}`` (e.g. from :func:`make_test_sets`).
        out_dir: when given, writes ``metrics.csv`` (per image), ``summary.md`` (tables + figures),
            ``brightness.md``, ``results.json`` and ``figures/hardest_<set>.png``, ``figures/brightness_sad.png``;
            refuses to replace earlier results unless ``overwrite``.
        trimap: see :func:`evaluate_models` (None = whole image).
        mse_scale: 1 (raw MSE, default) or 1000 (shown ×10³, labelled so) in the tables.
        n_figure: how many of the hardest images (largest SAD averaged over models) each figure shows.

    Returns:
        ``dict(records=[...], summary={set: {model: {metric: mean, n}}}, tables={set: markdown},
        brightness=[rows], brightness_table=markdown, conventions=str, models=[...], test_sets=[...],
        baseline=name, region=, mse_scale=, trimap=, files={csv, summary, brightness, json, figures: [...]})``.
    """
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        _check_out_dir(out, overwrite)
    models = load_models(checkpoints, device)
    names = list(models)
    base = names[0] if baseline is None else baseline
    if base not in models:
        raise KeyError(f"baseline {base!r} is not one of the models {names}")
    ordered = {base: models[base], **{k: v for k, v in models.items() if k != base}}
    records: list[dict[str, Any]] = []
    for ts, ds in test_sets.items():
        records += evaluate_models(
            ordered, ds, ts, device, trimap=trimap, batch_size=batch_size, progress=progress
        )
    summary = summarize(records)
    region = records[0]["region"] if records else "whole"
    trimap_label = None if trimap is None else (str(trimap) if not callable(trimap) else "callable")
    results: dict[str, Any] = {
        "records": records,
        "summary": summary,
        "tables": {ts: comparison_table(s, base, mse_scale) for ts, s in summary.items()},
        "brightness": brightness_bins(records, brightness_edges),
        "brightness_table": brightness_table(records, brightness_edges, metrics=METRICS, mse_scale=mse_scale),
        "conventions": conventions(region, mse_scale, trimap_label),
        "models": list(ordered),
        "test_sets": list(test_sets),
        "baseline": base,
        "region": region,
        "mse_scale": mse_scale,
        "trimap": trimap_label,
        "files": {},
    }
    if out is None:
        return results
    out.mkdir(parents=True, exist_ok=True)
    figures: list[str] = []
    if n_figure > 0:
        for ts, ds in test_sets.items():
            idx = hardest(records, n_figure, ts)
            rows = []
            for i in idx:
                item = ds[i]
                preds = {
                    m: predict_alphas(mod, [np.asarray(item["image"])], device=resolve_device(device))[0]
                    for m, mod in ordered.items()
                }
                sad_of = {r["model"]: r["sad"] for r in records if r["test_set"] == ts and r["index"] == i}
                label = f"{_item_names(ds)[i]}\n" + " ".join(f"{m}: {sad_of[m]:.2f}" for m in ordered)
                rows.append({"image": item["image"], "alpha": item["alpha"], "preds": preds, "label": label})
            if rows:
                p = out / "figures" / f"hardest_{_safe(ts)}.png"
                plot_hardest(
                    rows, p, title=f"{ts}: the {len(rows)} hardest images (row label: SAD per model)"
                )
                figures.append(str(p))
        p = out / "figures" / "brightness_sad.png"
        plot_brightness(records, p)
        figures.append(str(p))
    files = {
        "csv": str(write_csv(records, out / "metrics.csv")),
        "brightness": str(_atomic_write_text(out / "brightness.md", results["brightness_table"] + "\n")),
        "figures": figures,
    }
    results["files"] = files
    files["summary"] = str(write_report(results, out / "summary.md"))
    files["json"] = str(out / "results.json")
    _atomic_write_text(
        out / "results.json", json.dumps(to_jsonable(results), indent=1, ensure_ascii=False) + "\n"
    )
    return results


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(name)) or "set"
