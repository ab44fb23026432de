"""The experiment repeated with several seeds: mean and standard deviation of every change (``seeds.md``)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lowlight_matting.evaluation import METRIC_TITLES, METRICS, format_change
from lowlight_matting.experiment.analysis import NORMAL_TOLERANCE, _num, verdict
from lowlight_matting.experiment.report import _share
from lowlight_matting.io import atomic_write, write_json

__all__ = ["format_mean_sd", "render_seeds", "summarize_seeds", "write_seeds"]


def summarize_seeds(runs: Sequence[dict]) -> dict[str, Any]:
    """Mean and sample standard deviation over runs (``results.json`` dicts) that differ only in their seed.

    For each of ``lowlight_change``, ``normal_change`` and ``gap_closed`` (see :func:`verdict`) and each
    metric: ``{"mean": …, "sd": …, "values": [one per run]}``; ``sd`` is NaN for a single run. Also
    ``lowlight_all_better`` / ``normal_within_tolerance``: in how many runs the verdict held. When every run
    kept its per-image brightness, the same for the pair switched by brightness
    (:func:`~lowlight_matting.experiment.analysis.switched`): ``switch_lowlight_change``,
    ``switch_normal_change``, ``switch_lowlight_all_better``, ``switch_normal_within_tolerance``.
    """
    if not runs:
        raise ValueError("runs: need at least one run to summarize")
    verdicts = [verdict(r) for r in runs]
    out: dict[str, Any] = {"seeds": [r.get("config", {}).get("seed") for r in runs], "n": len(runs)}
    keys = ["lowlight_change", "normal_change", "gap_closed"]
    switch = all("switch_lowlight_change" in v for v in verdicts)  # runs that kept per-image brightness
    if switch:
        keys += ["switch_lowlight_change", "switch_normal_change"]
    for key in keys:
        out[key] = {}
        for k in METRICS:
            vals = np.array([v[key][k] for v in verdicts], dtype=float)
            out[key][k] = {
                "mean": float(vals.mean()),
                "sd": float(vals.std(ddof=1)) if len(vals) > 1 else float("nan"),
                "values": vals.tolist(),
            }
    out["lowlight_all_better"] = sum(bool(v["lowlight_all_better"]) for v in verdicts)
    out["normal_within_tolerance"] = sum(bool(v["normal_within_tolerance"]) for v in verdicts)
    if switch:
        for key in ("switch_lowlight_all_better", "switch_normal_within_tolerance"):
            out[key] = sum(bool(v[key]) for v in verdicts)
    return out


def format_mean_sd(d: dict, share: bool = False) -> str:
    """``{"mean": -0.15, "sd": 0.021}`` → ``'-15% ± 2'`` (sd in percentage points; left out when NaN/None).

    ``share=True`` formats a share (``'57% ± 9'``) instead of a signed change.
    """
    fmt = _share if share else format_change
    sd = _num(d["sd"])
    return fmt(_num(d["mean"])) + (f" ± {abs(sd) * 100:.0f}" if math.isfinite(sd) else "")


def render_seeds(summary: dict) -> str:
    """``seeds.md``: the relative changes of every seed, then their mean ± standard deviation."""

    n = summary["n"]
    lines = [
        "# The experiment repeated with different seeds",
        "",
        f"{n} runs of the same preset that differ only in the seed (training data, initialisation, batch "
        "order, simulator draws during training); the test sets are the same in every run. Relative changes of "
        "the fine-tuned model against its own baseline; mean ± sample standard deviation in percentage points.",
        "",
    ]
    tables = [
        ("Low light: fine-tuned vs baseline", "lowlight_change", False),
        ("Normal light: fine-tuned vs baseline", "normal_change", False),
        (
            "Share of the low-light gap closed (see report.md, 'How much was there to gain?')",
            "gap_closed",
            True,
        ),
    ]
    if "switch_lowlight_change" in summary:
        tables += [
            ("Deployed, switched by brightness: low light vs baseline", "switch_lowlight_change", False),
            ("Deployed, switched by brightness: normal light vs baseline", "switch_normal_change", False),
        ]
    for title, key, share in tables:
        fmt = _share if share else format_change
        lines += [f"## {title}", "", "| seed | " + " | ".join(METRIC_TITLES[k] for k in METRICS) + " |"]
        lines.append("|---|" + "---:|" * len(METRICS))
        for i, seed in enumerate(summary["seeds"]):
            lines.append(
                f"| {seed} | " + " | ".join(fmt(_num(summary[key][k]["values"][i])) for k in METRICS) + " |"
            )
        lines.append(
            "| **mean ± sd** | " + " | ".join(format_mean_sd(summary[key][k], share) for k in METRICS) + " |"
        )
        lines.append("")
    lines += [
        f"- Fine-tuned better in low light on all four metrics in {summary['lowlight_all_better']} of {n} runs.",
        f"- Normal light within {NORMAL_TOLERANCE:.0%} of the baseline on every metric in "
        f"{summary['normal_within_tolerance']} of {n} runs.",
    ]
    if "switch_lowlight_change" in summary:
        lines += [
            "- The pair switched by brightness (the fine-tune for photos darker than the package's threshold, "
            "the baseline otherwise; report.md, 'As deployed'): better in low light on all four metrics in "
            f"{summary['switch_lowlight_all_better']} of {n} runs, normal light within "
            f"{NORMAL_TOLERANCE:.0%} on every metric in {summary['switch_normal_within_tolerance']} of {n} runs.",
        ]
    lines += [
        "",
    ]
    return "\n".join(lines)


def write_seeds(runs: Sequence[dict], out: str | os.PathLike) -> dict[str, Any]:
    """:func:`summarize_seeds` of ``runs`` (with their preset, device and durations) as ``seeds.json`` and
    ``seeds.md`` in the folder ``out``; returns the summary."""
    out = Path(out)
    summary = summarize_seeds(runs)
    summary.update(preset=runs[0]["preset"], device=runs[0]["device"], seconds=[r["seconds"] for r in runs])
    write_json(out / "seeds.json", summary)
    atomic_write(out / "seeds.md", render_seeds(summary))
    return summary
