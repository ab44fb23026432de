"""The experiment repeated with several seeds: mean and standard deviation of every change (``seeds.md``)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lowlight_matting.evaluation import METRIC_TITLES, METRICS, format_change
from lowlight_matting.experiment.report import NORMAL_TOLERANCE, _num, _share, verdict
from lowlight_matting.io import atomic_write, write_json

__all__ = ["format_mean_sd", "render_seeds", "summarize_seeds", "write_seeds"]


def summarize_seeds(runs: Sequence[dict]) -> dict[str, Any]:
    """Mean and sample standard deviation over runs (``results.json`` dicts) that differ only in their seed.

    For each of ``lowlight_change``, ``normal_change`` and ``gap_closed`` (see :func:`verdict`) and each
    metric: ``{"mean": …, "sd": …, "values": [one per run]}``; ``sd`` is NaN for a single run. Also
    ``lowlight_all_better`` / ``normal_within_tolerance``: in how many runs the verdict held.
    """
    if not runs:
        raise ValueError("runs: need at least one run to summarize")
    verdicts = [verdict(r) for r in runs]
    out: dict[str, Any] = {"seeds": [r.get("config", {}).get("seed") for r in runs], "n": len(runs)}
    for key in ("lowlight_change", "normal_change", "gap_closed"):
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
    for title, key, share in (
        ("Low light: fine-tuned vs baseline", "lowlight_change", False),
        ("Normal light: fine-tuned vs baseline", "normal_change", False),
        (
            "Share of the low-light gap closed (see report.md, 'How much was there to gain?')",
            "gap_closed",
            True,
        ),
    ):
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
