"""The main job, orchestrated: the article's experiment end to end (``lowlight-matting demo``, ``make demo``).

1. **test sets** -- the course's 200 held-out synthetic composites (data seed :data:`TEST_SEED`, never used in
   training) at the fine-tune's size, under normal light and through the physically based simulator
   (:class:`~lowlight_matting.simulate.LowLightSimulator`, seed :data:`TEST_SIM_SEED`). The fine-tune
   darkens its training batches with :func:`~lowlight_matting.simulate.simulate_batch`: the same simulator
   family and parameter law on the device (other images, other draws).
2. **base** -- the "original CV-UNet": the shipped ``cvunet-base`` (trained by the project, see
   ``docs/results/cvunet-base/``), a ``--base`` file, or (``--from-scratch``) a toy base trained here first.
3. **evaluate** the base on both test sets (SAD, MSE, Gradient, Connectivity; whole image and the unknown
   region of a trimap derived from the ground truth).
4. **fine-tune** with the article's recipe (:mod:`lowlight_matting.experiment.recipe`): one
   :func:`lowlight_matting.train.train` call, whose run folder (``runs/finetune/config.yaml``) reruns it
   from the command line.
5. **evaluate** the fine-tuned model on the same test sets, and the weight interpolations between base and
   fine-tune (:func:`weight_tradeoff`: what keeping normal light costs in the dark);
6. **report** (:mod:`.report`, :mod:`.figures`).

``ablation=True`` then re-runs the fine-tune with one ingredient removed at a time (same base, same data,
same steps) and ``seeds`` repeats the whole run per seed.

Example:
    >>> from lowlight_matting.experiment import run_experiment
    >>> results = run_experiment("fast", out="/tmp/demo_fast", progress=False)  # doctest: +SKIP
    >>> sorted(results["lowlight"])  # doctest: +SKIP
    ['baseline', 'finetuned']
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lowlight_matting.device import describe_device
from lowlight_matting.experiment.analysis import verdict
from lowlight_matting.experiment.figures import plot_comparison_grid, plot_loss_curves
from lowlight_matting.experiment.recipe import (
    ABLATIONS,
    DEMOS,
    apply_ingredients,
    base_config,
    finetune_config,
)
from lowlight_matting.experiment.report import (
    ARTICLE,
    METRICS,
    comparison_rows,
    render_ablation,
    render_report,
)
from lowlight_matting.experiment.seeds import write_seeds
from lowlight_matting.io import atomic_write, write_json

__all__ = [
    "MARKER",
    "TEST_SEED",
    "TEST_SIM_SEED",
    "TestSets",
    "evaluate_on",
    "make_test_sets",
    "run_ablation",
    "run_experiment",
    "run_seeds",
    "weight_tradeoff",
]

MARKER = ".lowlight-matting-demo.json"
"""File a demo run leaves in its output folder: says what wrote it and lists the files it wrote."""

TEST_SEED = 1_000_003
"""Data seed of the held-out test composites (training uses small seeds; this one never)."""

TEST_SIM_SEED = 2_000_003
"""Seed of the simulator that darkens the low-light test set."""


# ------------------------------------------------------------------------------------------- test sets
@dataclass
class TestSets:
    """The same ``n`` held-out composites under normal light and simulated low light.

    ``normal``/``lowlight``: uint8 (S, S, 3) images; ``alpha``: float32 (S, S) mattes; ``params``: the
    simulator's parameters of each low-light image.
    """

    normal: list[np.ndarray]
    lowlight: list[np.ndarray]
    alpha: list[np.ndarray]
    params: list[dict]

    def items(self, light: str) -> list[dict[str, np.ndarray]]:
        return [{"image": im, "alpha": a} for im, a in zip(getattr(self, light), self.alpha, strict=True)]


def make_test_sets(n: int, size: int, progress: bool = False) -> TestSets:
    """The course's ``n`` test composites at ``size``² (:data:`TEST_SEED`), normal and darkened
    (:data:`TEST_SIM_SEED`); sample ``i`` is the same for every ``n`` > ``i``."""
    from tqdm.auto import tqdm

    from lowlight_matting.data import SyntheticMattingDataset
    from lowlight_matting.io import to_jsonable
    from lowlight_matting.simulate import LowLightSimulator

    ds = SyntheticMattingDataset(n, size=size, seed=TEST_SEED)
    sim = LowLightSimulator(seed=TEST_SIM_SEED)
    normal, low, alpha, params = [], [], [], []
    for i in tqdm(range(n), desc="test sets", unit="img", disable=not progress, leave=False):
        item = ds[i]
        normal.append(item["image"])
        alpha.append(item["alpha"].astype(np.float32))
        low.append(sim(item["image"]))
        params.append(to_jsonable(sim.last_params))
    return TestSets(normal, low, alpha, params)


def evaluate_on(model, tests: TestSets, device: str, progress: bool = False) -> dict[str, Any]:
    """Metrics of ``model`` on both test sets: ``{light: {"whole": {...}, "unknown": {...}, "brightness"}}``,
    each region with ``mean`` (per metric) and ``per_image`` (lists), from
    :func:`lowlight_matting.evaluation.evaluate_models` (one prediction per image, scored over the whole
    image and over the unknown band of the ground-truth trimap)."""
    from lowlight_matting.evaluation import evaluate_models

    out: dict[str, Any] = {}
    for light in ("normal", "lowlight"):
        recs = evaluate_models(
            {"model": model}, tests.items(light), light, device, trimap=("whole", "auto"), progress=progress
        )
        out[light] = {"brightness": [r["brightness"] for r in recs if r["region"] == "whole"]}
        for region in ("whole", "unknown"):
            rs = [r for r in recs if r["region"] == region]
            per = {k: [float(r[k]) for r in rs] for k in METRICS}
            out[light][region] = {"mean": {k: float(np.mean(v)) for k, v in per.items()}, "per_image": per}
    return out


TRADEOFF_T = (0.25, 0.5, 0.75)
"""Points between the base (t = 0) and the fine-tune (t = 1) at which the demo measures both test sets."""


def weight_tradeoff(
    base_model, ft_model, tests: TestSets, device: str, ts: Sequence[float] = TRADEOFF_T
) -> list[dict[str, Any]]:
    """Whole-image mean metrics of the weight interpolation
    :func:`~lowlight_matting.weights.interpolate_weights` ``(base, fine-tune, t)`` for each ``t`` in ``ts``,
    on both test sets: ``[{"t": t, "lowlight": {metric: mean}, "normal": {...}}]``. It measures what
    keeping normal light would cost in the dark (WiSE-FT, Wortsman et al. 2022): the report's trade-off."""
    from lowlight_matting.weights import interpolate_weights

    rows = []
    for t in ts:
        ev = evaluate_on(
            interpolate_weights(base_model, ft_model, t), tests, device
        )  # a copy: eval, on device
        rows.append({"t": float(t), **{x: ev[x]["whole"]["mean"] for x in ("lowlight", "normal")}})
    return rows


# --------------------------------------------------------------------------------------------- helpers
def _load(path_or_name: str | os.PathLike, device: str):
    from lowlight_matting.weights import load_model

    return load_model(path_or_name).to(device).eval()


def _history(run_dir: Path) -> list[dict]:
    """A run's ``metrics.csv`` as the loss-curve rows of :func:`plot_loss_curves`."""
    from lowlight_matting.train import load_history

    return [
        {
            "step": r["epoch"],
            "stage": r.get("stage_name"),
            "loss": r.get("train_total"),
            "val_lowlight": r.get("val_mse") if r.get("val_normal_mse") is not None else None,
            "val_normal": r.get("val_normal_mse", r.get("val_mse")),
        }
        for r in load_history(run_dir)
    ]


def _brightness_rows(ev_base: dict, ev_ft: dict) -> list[dict]:
    """SAD of both models per bin of the low-light inputs' mean linear luminance (the evaluation's bins,
    split at :data:`lowlight_matting.color.DARK_THRESHOLD`)."""
    from lowlight_matting.evaluation.stats import BRIGHTNESS_EDGES, bin_by_brightness, bin_label, is_dark_bin

    edges = BRIGHTNESS_EDGES
    sad_b = np.asarray(ev_base["lowlight"]["whole"]["per_image"]["sad"])
    sad_f = np.asarray(ev_ft["lowlight"]["whole"]["per_image"]["sad"])
    rows = []
    for lo, hi, m in bin_by_brightness(ev_base["lowlight"]["brightness"], edges):
        if m.any():
            rows.append(
                {
                    "range": bin_label(lo, hi),
                    "dark": is_dark_bin(lo, hi),
                    "n": int(m.sum()),
                    "baseline_sad": float(sad_b[m].mean()),
                    "finetuned_sad": float(sad_f[m].mean()),
                }
            )
    return rows


def _versions() -> dict[str, str]:
    import timm
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__}


class _Clock:
    """Wall and CPU seconds per phase."""

    def __init__(self) -> None:
        self.t0 = self.last = time.perf_counter()
        self.cpu0 = self.cpu_last = time.process_time()
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def phase(self, name: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.wall[name] = round(now - self.last, 2)
        self.cpu[name] = round(cpu - self.cpu_last, 2)
        self.last, self.cpu_last = now, cpu


# ------------------------------------------------------------------------------------------------- the run
def run_experiment(
    preset: str = "quick",
    out: str | os.PathLike = "runs/demo",
    *,
    seed: int = 0,
    base: str | os.PathLike | None = None,
    ablation: bool = False,
    device: str | None = None,
    progress: bool = True,
    log=print,
) -> dict:
    """Run the experiment of demo ``preset`` (:data:`~lowlight_matting.experiment.recipe.DEMOS`) into ``out``.

    ``base``: start from this model (shipped name, checkpoint or weights file) instead of the demo's own.
    Writes ``report.md``, ``results.json``, ``finetuned.pt`` (and ``baseline.pt`` when the base was trained
    here), ``comparison.png``, ``loss_curves.png``, ``contact_sheet.png``, the run folders ``runs/`` (each
    with its ``config.yaml``) and, with ``ablation``, ``ablation.md`` / ``ablation.json``. Returns the
    results dict written to ``results.json``.
    """
    from lowlight_matting.device import resolve_device
    from lowlight_matting.train import build_datasets, train

    log = log or (lambda *a, **k: None)
    clock = _Clock()
    load0 = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    dev = str(resolve_device(device))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = out / "runs"
    demo = DEMOS[preset] if preset in DEMOS else None
    cfg_b = base_config(preset, seed=seed, out_dir=str(runs)) if base is None else None
    if cfg_b is not None:
        cfg_b.device = dev
        cfg_b.logging.verbose = progress
    ft_base = str(base) if base is not None else None
    cfg = finetune_config(preset, seed=seed, out_dir=str(runs), base=ft_base, device=dev)
    cfg.logging.verbose = progress
    n_test = demo.n_test if demo else 200
    lengths = ", ".join(
        f"{s.name} {s.steps if s.steps is not None else f'{s.epochs} epochs'}" for s in cfg.stages
    )
    where = f"trained here ({cfg_b.name})" if cfg_b else cfg.model.init_checkpoint
    log(
        f"demo {preset}: {cfg.model.encoder} at {cfg.data.size}px on {dev}; base {where}; fine-tune {lengths}"
    )
    tests = make_test_sets(n_test, cfg.data.size, progress)
    train_ds, val_ds = build_datasets(cfg)
    clock.phase("data")

    if cfg_b is not None:
        base_dir = train(cfg_b)
        cfg.model.init_checkpoint = str(base_dir / "last.pt")
        shutil.copyfile(base_dir / "last.pt", out / "baseline.pt")
        clock.phase("baseline")
    base_model = _load(cfg.model.init_checkpoint, dev)
    ev_base = evaluate_on(base_model, tests, dev, progress)
    clock.phase("evaluate_baseline")

    ft_dir = train(cfg, train_dataset=train_ds, val_dataset=val_ds)
    clock.phase("finetune")
    ft_model = _load(ft_dir / "last.pt", dev)
    ev_ft = evaluate_on(ft_model, tests, dev, progress)
    shutil.copyfile(ft_dir / "last.pt", out / "finetuned.pt")
    clock.phase("evaluate_finetuned")
    tradeoff = weight_tradeoff(base_model, ft_model, tests, dev)
    clock.phase("tradeoff")

    results: dict[str, Any] = {
        light: {"baseline": ev_base[light]["whole"]["mean"], "finetuned": ev_ft[light]["whole"]["mean"]}
        for light in ("lowlight", "normal")
    }
    results["per_image"] = {
        light: {
            "baseline": ev_base[light]["whole"]["per_image"],
            "finetuned": ev_ft[light]["whole"]["per_image"],
        }
        for light in ("lowlight", "normal")
    }
    # mean linear luminance of every test input (the same for both models): what the brightness switch reads
    results["brightness"] = {light: ev_base[light]["brightness"] for light in ("lowlight", "normal")}
    results["unknown_region"] = {
        light: {"baseline": ev_base[light]["unknown"]["mean"], "finetuned": ev_ft[light]["unknown"]["mean"]}
        for light in ("lowlight", "normal")
    }
    from lowlight_matting.evaluation.predict import auto_trimap_kernel

    results.update(
        preset=preset,
        device=describe_device(dev),
        n_test=n_test,
        trimap=f"make_trimap(alpha, kernel_size={auto_trimap_kernel(cfg.data.size)})",
        lowlight_by_brightness=_brightness_rows(ev_base, ev_ft),
        article=ARTICLE,
        base={
            "source": str(cfg.model.init_checkpoint) if cfg_b is None else "trained here",
            "config": cfg_b.to_dict() if cfg_b else None,
        },
        tradeoff=tradeoff,
        config=_summary(cfg, cfg_b),
        finetune_config=cfg.to_dict(),
        versions=_versions(),
    )
    results["figures"] = _figures(out, tests, ev_base, ev_ft, base_model, ft_model, dev, cfg, cfg_b, log)
    clock.phase("figures")
    results["history"] = {"finetune": _history(ft_dir), **({"baseline": _history(base_dir)} if cfg_b else {})}
    if ablation:
        results["ablation"] = run_ablation(
            cfg, tests, ev_base, (train_ds, val_ds), out, dev, progress, log, ev_full=ev_ft
        )
        clock.phase("ablation")
    results["phases_seconds"] = clock.wall
    results["phases_cpu_seconds"] = clock.cpu
    results["cpu_seconds"] = round(time.process_time() - clock.cpu0, 1)
    if load0 is not None:
        results["load_average"] = {"start": load0, "end": [round(x, 2) for x in os.getloadavg()]}
    results["seconds"] = round(time.perf_counter() - clock.t0, 1)
    results["verdict"] = verdict(results)
    write_json(out / "results.json", results)
    atomic_write(out / "report.md", render_report(results))
    return results


def _summary(cfg, cfg_b) -> dict[str, Any]:
    """The few numbers the report's header quotes."""
    return {
        "encoder": cfg.model.encoder,
        "size": cfg.data.size,
        "batch_size": cfg.data.batch_size,
        "n_train": cfg.data.length,
        "seed": cfg.seed,
        "p_lowlight": cfg.data.p_lowlight,
        "baseline_steps": sum(s.steps or 0 for s in cfg_b.stages) if cfg_b else None,
        "stages": [dataclasses.asdict(s) for s in cfg.stages],
    }


def _figures(out, tests, ev_base, ev_ft, base_model, ft_model, dev, cfg, cfg_b, log) -> dict[str, str]:
    from lowlight_matting.evaluation.predict import predict_alphas
    from lowlight_matting.io import write_image

    figures = {}
    n_vis = min(6, len(tests.normal))
    order = np.argsort([-v for v in ev_base["lowlight"]["whole"]["per_image"]["sad"]])[:n_vis]
    low = [tests.lowlight[i] for i in order]
    pb, pf = predict_alphas(base_model, low, dev), predict_alphas(ft_model, low, dev)
    rows = [
        {
            "normal": tests.normal[i],
            "lowlight": tests.lowlight[i],
            "gt": tests.alpha[i],
            "baseline": b,
            "finetuned": f,
        }
        for i, b, f in zip(order, pb, pf, strict=True)
    ]
    plot_comparison_grid(rows, out / "comparison.png", [f"test #{i}" for i in order])
    figures["visual comparison, low-light test images where the baseline errs most"] = "comparison.png"
    hist = {"fine-tune": _history(out / "runs" / "finetune")}
    if cfg_b is not None:
        hist = {"baseline (normal light)": _history(out / "runs" / "base"), **hist}
    plot_loss_curves(hist, out / "loss_curves.png")
    figures["training loss and validation MSE per pass"] = "loss_curves.png"
    from lowlight_matting.simulate import LowLightSimulator
    from lowlight_matting.viz import contact_sheet

    k = min(6, len(tests.normal))
    sheet = contact_sheet(
        tests.normal[:k],
        LowLightSimulator(),
        seed=TEST_SIM_SEED,
        names=[f"test #{i}" for i in range(k)],
        thumb=max(cfg.data.size, 96),
    )
    write_image(out / "contact_sheet.png", sheet, overwrite=True)
    figures["normal vs simulated low light, with the simulator's parameters"] = "contact_sheet.png"
    return figures


def run_ablation(
    cfg, tests: TestSets, ev_base: dict, data, out: Path, device: str, progress=True, log=print, ev_full=None
):
    """Fine-tune once per entry of :data:`~lowlight_matting.experiment.recipe.ABLATIONS` from the same base
    and data; writes ``ablation.md`` / ``ablation.json`` and returns the rows.

    ``ev_full``: the evaluation of a fine-tune of ``cfg`` itself (the experiment's main run); the "full recipe"
    row then reuses it instead of training the same configuration a second time."""
    from lowlight_matting.train import train

    rows = []
    for k, (name, ing) in enumerate(ABLATIONS):
        vcfg = apply_ingredients(cfg, ing)
        if ev_full is not None and vcfg.to_dict() == cfg.to_dict():
            ev = ev_full
        else:
            vcfg.name = f"ablation-{k}"
            run_dir = train(vcfg, train_dataset=data[0], val_dataset=data[1])
            ev = evaluate_on(_load(run_dir / "last.pt", device), tests, device)
            for f in run_dir.glob("*.pt"):  # keep each variant's config and history, not its weights
                f.unlink()
        rows.append(
            {
                "variant": name,
                "ingredients": dataclasses.asdict(ing),
                "lowlight": ev["lowlight"]["whole"]["mean"],
                "normal": ev["normal"]["whole"]["mean"],
                "unknown_region": {x: ev[x]["unknown"]["mean"] for x in ("lowlight", "normal")},
                "per_image": {x: ev[x]["whole"]["per_image"] for x in ("lowlight", "normal")},
            }
        )
        if log:
            ch = comparison_rows(ev_base["lowlight"]["whole"]["mean"], ev["lowlight"]["whole"]["mean"])
            log(f"ablation {name}: low light " + ", ".join(f"{m} {v * 100:+.0f}%" for m, v in ch.items()))
    baseline = {x: ev_base[x]["whole"]["mean"] for x in ("lowlight", "normal")}
    atomic_write(out / "ablation.md", render_ablation(rows, baseline))
    write_json(out / "ablation.json", {"preset": cfg.name, "baseline": baseline, "variants": rows})
    return rows


def run_seeds(
    preset: str,
    seeds: Sequence[int],
    out: str | os.PathLike,
    *,
    base: str | os.PathLike | None = None,
    ablation: bool = False,
    device: str | None = None,
    progress: bool = True,
    log=print,
) -> dict[str, Any]:
    """:func:`run_experiment` once per seed into ``out/seed<k>/``, then ``seeds.md`` / ``seeds.json`` in ``out``."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: need distinct seeds, got {list(seeds)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for i, s in enumerate(seeds):
        if log:
            log(f"seed {s} ({i + 1} of {len(seeds)})")
        results.append(
            run_experiment(
                preset,
                out / f"seed{s}",
                seed=int(s),
                base=base,
                ablation=ablation,
                device=device,
                progress=progress,
                log=log,
            )
        )
    return write_seeds(results, out)
