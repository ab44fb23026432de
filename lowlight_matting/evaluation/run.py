"""Evaluation runs: every model over every test image, scored (:func:`evaluate_models`), and the whole job
with tables, figures and files (:func:`evaluate_checkpoints`, what ``lowlight-matting evaluate`` runs)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lowlight_matting.color import mean_luminance
from lowlight_matting.evaluation.plots import plot_brightness, plot_hardest
from lowlight_matting.evaluation.predict import (
    TrimapSpec,
    batches,
    item_names,
    load_models,
    predict_alphas,
    trimap_lookup,
)
from lowlight_matting.evaluation.report import (
    brightness_table,
    comparison_table,
    conventions,
    write_csv,
    write_report,
)
from lowlight_matting.evaluation.stats import (
    BRIGHTNESS_EDGES,
    METRICS,
    brightness_bins,
    hardest,
    summarize,
)
from lowlight_matting.io import atomic_write, write_json
from lowlight_matting.metrics import CONNECTIVITY_STEP, compute_metrics

__all__ = ["OUTPUT_FILES", "evaluate_models", "evaluate_model", "evaluate_checkpoints"]

OUTPUT_FILES = ("metrics.csv", "summary.md", "brightness.md", "results.json")
"""Files :func:`evaluate_checkpoints` writes into ``out_dir`` (besides ``figures/``)."""


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
        models: ``{name: model}`` as :func:`~lowlight_matting.evaluation.load_models` returns them
            (``nn.Module`` s taking float (B, 3, H, W) in [0, 1] and returning alpha (B, 1, H, W), or
            ``deploy.Matter`` s).
        dataset: indexable; items hold ``image`` uint8 (H, W, 3) and ``alpha`` float (H, W) in [0, 1].
        trimap: None (whole image), ``"auto"`` (from the ground truth, :func:`auto_trimap_kernel`),
            ``"item"`` (``item["trimap"]``), a folder of trimap images named like the items, or a callable
            ``f(item) -> trimap``. With a trimap only its unknown pixels (== 128) are counted. A tuple of
            these (``"whole"`` standing for None) scores each prediction once per entry: one inference,
            one record per region.

    Returns:
        one record per (model, image), model by model, images in order: ``model, test_set, index, name,
        height, width, brightness`` (:func:`lowlight_matting.color.mean_luminance` of the input),
        ``region`` (``"whole"``/``"unknown"``), ``unknown_fraction``, ``seconds`` (inference time per
        image), ``sad, mse, grad, conn`` (:func:`lowlight_matting.metrics.compute_metrics`).
    """
    import torch
    from tqdm.auto import tqdm

    from lowlight_matting.device import resolve_device

    if not models:
        raise ValueError("evaluate_models: no models given")
    specs = trimap if isinstance(trimap, tuple) else (trimap,)
    lookups = [trimap_lookup(None if t == "whole" else t) for t in specs]
    names = item_names(dataset)
    dev = resolve_device(device)
    for m in models.values():
        if isinstance(m, torch.nn.Module):
            m.to(dev).eval()
    records: list[dict[str, Any]] = []
    total = len(dataset) * len(models)
    with tqdm(
        total=total, desc=f"evaluate {test_set}", unit="pred", disable=not progress, leave=False
    ) as bar:
        for group in batches(dataset, max(1, int(batch_size))):
            images = [np.asarray(it["image"]) for _, it in group]
            gts = [np.asarray(it["alpha"], dtype=np.float64) for _, it in group]
            tris = [[lookup(it, names[i]) for lookup in lookups] for i, it in group]
            light = [float(mean_luminance(im)) for im in images]
            for mname, model in models.items():
                t0 = time.perf_counter()
                preds = predict_alphas(model, images, dev)
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                per_image = (time.perf_counter() - t0) / len(group)
                for (idx, _), pred, gt, tri_list, lum in zip(group, preds, gts, tris, light, strict=True):
                    if pred.shape != gt.shape:
                        raise ValueError(
                            f"model {mname!r} returned a {pred.shape} matte for the {gt.shape} image {names[idx]!r}"
                        )
                    for tri in tri_list:
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
                                **compute_metrics(pred, gt, tri, step=step),
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
    """Per-image records of one model (a module, a file or a shipped name) on a dataset or a list of items.

    See :func:`evaluate_models` for the options and the record fields.
    """
    models = load_models({name: model}, device)
    return evaluate_models(
        models, dataset_or_items, test_set, device, trimap=trimap, batch_size=batch_size, progress=progress
    )


def _check_out_dir(out: Path, overwrite: bool) -> None:
    clash = [f for f in OUTPUT_FILES if (out / f).exists()]
    if clash and not overwrite:
        raise FileExistsError(
            f"{out}: holds results already ({', '.join(clash)}); choose another folder or pass overwrite=True "
            "(--overwrite)"
        )


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(name)) or "set"


def _hardest_figures(records, test_sets, models, out: Path, n_figure: int, device) -> list[str]:
    """``figures/hardest_<set>.png`` per test set and ``figures/brightness_sad.png``; returns their paths."""
    figures: list[str] = []
    for ts, ds in test_sets.items():
        names = item_names(ds)
        rows = []
        for i in hardest(records, n_figure, ts):
            item = ds[i]
            preds = {
                m: predict_alphas(mod, [np.asarray(item["image"])], device)[0] for m, mod in models.items()
            }
            sad_of = {r["model"]: r["sad"] for r in records if r["test_set"] == ts and r["index"] == i}
            label = f"{names[i]}\n" + " ".join(f"{m}: {sad_of[m]:.2f}" for m in models)
            rows.append({"image": item["image"], "alpha": item["alpha"], "preds": preds, "label": label})
        if rows:
            p = out / "figures" / f"hardest_{_safe(ts)}.png"
            plot_hardest(rows, p, title=f"{ts}: the {len(rows)} hardest images (row label: SAD per model)")
            figures.append(str(p))
    p = out / "figures" / "brightness_sad.png"
    plot_brightness(records, p)
    figures.append(str(p))
    return figures


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
    """Evaluate several models (files, shipped names or modules) on several test sets, report, and save.

    Args:
        checkpoints: ``{name: source}`` or a list of sources (named after the files), anything
            :func:`~lowlight_matting.evaluation.load_models` takes. The first is the baseline of the
            relative changes unless ``baseline`` names another.
        test_sets: ``{name: dataset}`` (e.g. from :func:`~lowlight_matting.evaluation.make_test_sets`).
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
    from lowlight_matting.device import resolve_device

    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        _check_out_dir(out, overwrite)
    dev = resolve_device(device)
    models = load_models(checkpoints, dev)
    names = list(models)
    base = names[0] if baseline is None else baseline
    if base not in models:
        raise KeyError(f"baseline {base!r} is not one of the models {names}")
    ordered = {base: models[base], **{k: v for k, v in models.items() if k != base}}
    records: list[dict[str, Any]] = []
    for ts, ds in test_sets.items():
        records += evaluate_models(
            ordered, ds, ts, dev, trimap=trimap, batch_size=batch_size, progress=progress
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
    figures = _hardest_figures(records, test_sets, ordered, out, n_figure, dev) if n_figure > 0 else []
    files = {
        "csv": str(write_csv(records, out / "metrics.csv")),
        "brightness": str(atomic_write(out / "brightness.md", results["brightness_table"] + "\n")),
        "figures": figures,
    }
    results["files"] = files
    files["summary"] = str(write_report(results, out / "summary.md"))
    files["json"] = str(out / "results.json")
    write_json(out / "results.json", results)
    return results
