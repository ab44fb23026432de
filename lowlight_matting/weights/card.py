"""The record of a shipped model: rendered from its JSON, never written by hand.

A shipped model (``cvunet-base``, ``cvunet-lowlight``) comes with a record, ``docs/results/<name>/record.json``,
written by ``tools/record_training.py`` from the training run: the exact command and commit, the seeds, the
number of steps, the wall time and hardware, the history, and its metrics on the course's test composites
(normal and simulated low light) measured with the *shipped* weights. From that JSON this module renders the
record's ``README.md`` and the model card next to the weights (``lowlight_matting/weights/<file>.md``);
``tests/test_repo.py`` re-renders both and fails on any difference.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["render_card", "render_record"]

_METRICS = ("mse", "sad", "grad", "conn")
_TITLES = {"mse": "MSE", "sad": "SAD", "grad": "Grad", "conn": "Conn"}


def _fmt(key: str, v: float | None) -> str:
    if v is None or not math.isfinite(float(v)):
        return "n/a"
    return f"{v:.4f}" if key == "mse" else f"{v:.3f}"


def _table(metrics: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    lines = [
        "| test set | region | " + " | ".join(f"{_TITLES[k]} ↓" for k in _METRICS) + " |",
        "|---|---|" + "---:|" * len(_METRICS),
    ]
    for light, title in (("normal", "normal light"), ("lowlight", "simulated low light")):
        for region in ("whole", "unknown"):
            m = metrics[light][region]
            lines.append(f"| {title} | {region} | " + " | ".join(_fmt(k, m[k]) for k in _METRICS) + " |")
    return lines


def _hours(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(float(seconds)):
        return "not measured"
    h, rem = divmod(int(round(seconds)), 3600)
    return f"{h} h {rem // 60:02d} min" if h else f"{rem // 60} min {rem % 60:02d} s"


def render_record(rec: dict[str, Any]) -> str:
    """``docs/results/<name>/README.md``: how the shipped model was made, and what it measures."""
    t = rec["training"]
    n = rec["test"]["n"]
    lines = [
        f"# `{rec['name']}`: {rec['title']}",
        "",
        rec["summary"],
        "",
        "## How it was made",
        "",
        "```bash",
        *rec["commands"],
        "```",
        "",
        f"- Commit: `{rec['commit']}` (the package and config the run used).",
        f"- Seeds: run seed {t['seed']}, data seed {t['data_seed']}; training samples drawn once, "
        f"{t['samples']:,} synthetic composites of {t['size']}² (`lowlight_matting.data.SyntheticConfig()`).",
        f"- Optimizer steps: {t['steps']:,} in {t['passes']} passes ({', '.join(t['stages'])}), batch "
        f"{t['batch_size']}.",
        f"- Time: {_hours(t['loop_seconds'])} in the training loop (summed from the history: images / img_per_s "
        "per pass); wall time of the launches "
        f"{_hours(t['wall_seconds'])} ({t['wall_note']}), CPU time {_hours(t['cpu_seconds'])}.",
        f"- Hardware: {rec['hardware']}; {rec['versions']}.",
        f"- Weights: `lowlight_matting/weights/{rec['file']}` ({rec['file_mb']:.1f} MB, {rec['dtype']} storage), "
        f"the model at the end of the run (step {t['steps']:,}).",
        "",
        "History: [`metrics.csv`](metrics.csv) (one row per pass), [`curves.png`](curves.png), "
        "[`config.yaml`](config.yaml) (the run's own config).",
        "",
        "![loss curves](curves.png)",
        "",
        f"## Test metrics (the shipped weights, {n} held-out composites at {rec['test']['size']}²)",
        "",
        f"The course's test composites (data seed {rec['test']['data_seed']}, never used in training), under "
        f"normal light and through `LowLightSimulator(seed={rec['test']['sim_seed']})`; whole image and the "
        f"unknown band of a trimap derived from the ground truth. SAD, Grad and Conn /1000 as in the Deep Image "
        "Matting code; lower is better.",
        "",
        *_table(rec["test"]["metrics"]),
        "",
        f"`tests/test_shipped_models.py` reproduces the first {rec['subset']['n']} images' means from the shipped file "
        "to a relative 1e-4 (recorded in `record.json`, `subset`).",
        "",
        "## Limits",
        "",
        *[f"- {x}" for x in rec["limits"]],
        "",
    ]
    return "\n".join(lines)


def render_card(rec: dict[str, Any]) -> str:
    """The model card beside the weights (``lowlight_matting/weights/<file>.md``)."""
    t = rec["training"]
    m = rec["test"]["metrics"]
    lines = [
        f"# Model card: `{rec['name']}`",
        "",
        rec["summary"],
        "",
        f"- **Architecture**: CV-UNet (`lowlight_matting.models.build_model`) with "
        f"{rec['model_config']['encoder']}"
        + (f" and a {rec['model_config']['llie']} front end" if rec["model_config"].get("llie") else "")
        + f", {rec['parameters'] / 1e6:.2f} M parameters; RGB in [0, 1], alpha matte out.",
        f"- **Data**: {t['samples']:,} synthetic composites of {t['size']}² "
        "(`lowlight_matting.data.SyntheticConfig()`)"
        + (f", {t['p_lowlight']:.0%} darkened by the simulator" if t.get("p_lowlight") else ", normal light")
        + ".",
        f"- **Training**: `{rec['commands'][-1]}` at commit `{rec['commit'][:10]}`, {t['steps']:,} steps, "
        f"{_hours(t['loop_seconds'])} of training on {rec['hardware']}.",
        f"- **Test** ({rec['test']['n']} held-out composites, whole image): normal light MSE "
        f"{_fmt('mse', m['normal']['whole']['mse'])}, SAD {_fmt('sad', m['normal']['whole']['sad'])}; "
        f"simulated low light MSE {_fmt('mse', m['lowlight']['whole']['mse'])}, SAD "
        f"{_fmt('sad', m['lowlight']['whole']['sad'])}.",
        f"- **Load**: `lowlight_matting.weights.load_model({rec['name']!r})`, "
        f"`load_matter({rec['name']!r})`, `lowlight-matting matte ... --checkpoint {rec['name']}`.",
        f"- **Record**: `docs/results/{rec['name']}/` (command, seeds, history, metrics).",
        "",
        "**Limits.** " + " ".join(rec["limits"]),
        "",
    ]
    return "\n".join(lines)
