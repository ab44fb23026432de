"""The demo's report: the article's table with relative changes, the verdict, 95 % intervals, headroom, the
switched pair, the weight line and the ablation (``report.md``, ``ablation.md``).

Everything here reads a results dict (what ``results.json`` holds) and renders it; nothing trains or
evaluates, so a committed record can be re-rendered from its JSON alone. What the numbers show is derived in
:mod:`lowlight_matting.experiment.analysis`; numbers are formatted and compared by
:mod:`lowlight_matting.evaluation` (one :func:`format_change`, :func:`format_metric`, :func:`metrics_table`
and :func:`relative_change` for the whole package); the figures are in
:mod:`lowlight_matting.experiment.figures`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lowlight_matting.color import DARK_THRESHOLD
from lowlight_matting.evaluation import (
    ARTICLE,
    METRIC_TITLES,
    METRICS,
    bootstrap_relative_change,
    format_change,
    format_metric,
    metrics_table,
    relative_change,
)
from lowlight_matting.evaluation import relative_changes as comparison_rows
from lowlight_matting.experiment.analysis import (
    NORMAL_TOLERANCE,
    _num,
    confidence_intervals,
    headroom,
    switched,
    tradeoff_rows,
    verdict,
)

__all__ = [
    "render_report",
    "render_ablation",
    # what a run shows (lowlight_matting.experiment.analysis), re-exported for the renderers' callers
    "NORMAL_TOLERANCE",
    "verdict",
    "confidence_intervals",
    "headroom",
    "switched",
    "tradeoff_rows",
    # the evaluation's one definition of each, re-exported under the names the demo has always used
    "METRICS",
    "METRIC_TITLES",
    "ARTICLE",
    "relative_change",
    "comparison_rows",
    "format_change",
    "format_metric",
    "metrics_table",
]


def _share(x: float | None) -> str:
    x = _num(x)
    return f"{x:.0%}" if math.isfinite(x) else "n/a"


def _ci_row(ci: dict | None, n_test) -> list[str]:
    """A table row with the 95 % bootstrap interval of each change (continues the table above it)."""
    if not ci:
        return []
    cells = [f"[{format_change(_num(ci[k][0]))}, {format_change(_num(ci[k][1]))}]" for k in METRICS]
    return [
        f"| 95 % interval of our change (paired bootstrap over the {n_test} test images) | "
        + " | ".join(cells)
        + " |"
    ]


def _yes(flag: bool) -> str:
    return "**yes**" if flag else "**no**"


def _load_note(results: dict) -> str:
    la = results.get("load_average")
    if not la or not la.get("start"):
        return ""
    return f" (machine load average {la['start'][0]:.1f} at the start, {la['end'][0]:.1f} at the end)"


def _setup(results: dict) -> str:
    """One sentence on the model, the base and the fine-tune of a run."""
    p = results.get("config", {})
    base = results.get("base", {}).get("source")
    if base in (None, "trained here"):
        where = f"a base trained here for {p.get('baseline_steps', '?')} steps"
    else:
        where = f"the base `{base}`" + (
            " (the project's shipped model, see `docs/results/cvunet-base/`)" if base == "cvunet-base" else ""
        )
    stages = p.get("stages", [])
    lengths = ", ".join(
        f"{s['name']} {s['steps']} steps"
        if s.get("steps") is not None
        else f"{s['name']} {s.get('epochs')} epochs"
        for s in stages
    )
    distill = _num((results.get("finetune_config") or {}).get("loss", {}).get("distill"))
    keep = (
        f"; the others also learn the base's own prediction, weight {distill:g} (`loss.distill`, learning "
        "without forgetting)"
        if math.isfinite(distill) and distill > 0
        else ""
    )
    return (
        f"Encoder `{p.get('encoder', '?')}`, {p.get('size', '?')}² px, starting from {where}; fine-tune "
        f"stages {lengths or '?'} at batch {p.get('batch_size', '?')} on {p.get('n_train', '?')} training "
        f"composites, {_share(p.get('p_lowlight'))} of them darkened{keep}."
    )


def _tradeoff_lines(results: dict) -> list[str]:
    rows = tradeoff_rows(results)
    if not rows:
        return []
    head = " | ".join(f"low {METRIC_TITLES[k]}" for k in METRICS) + " | "
    head += " | ".join(f"normal {METRIC_TITLES[k]}" for k in METRICS)
    lines = [
        "",
        "### What keeping normal light costs in the dark",
        "",
        "The same two models blended in weight space, (1 − t) · base + t · fine-tuned (WiSE-FT, Wortsman et "
        "al. 2022; the Zero-DCE++ front end stays the fine-tune's): changes against the baseline on both "
        "test sets. t = 1 is the fine-tuned model above.",
        "",
        f"| t | {head} |",
        "|---:|" + "---:|" * (2 * len(METRICS)),
    ]
    for r in rows:
        cells = [format_change(r["lowlight"][k]) for k in METRICS] + [
            format_change(r["normal"][k]) for k in METRICS
        ]
        lines.append(f"| {r['t']:.2f} | " + " | ".join(cells) + " |")
    ok = [r for r in rows if r["normal_ok"]]
    lines.append("")
    route = (
        "a deployment that must keep daylight exactly routes bright photos to the base "
        "(`lowlight-matting matte` does, by brightness)."
    )
    if rows[-1]["normal_ok"]:
        lines.append(f"The fine-tuned model itself (t = 1) keeps normal light within {NORMAL_TOLERANCE:.0%}.")
    elif ok:
        best = ok[-1]
        lines.append(
            f"Normal light stays within {NORMAL_TOLERANCE:.0%} on every metric up to t = {best['t']:.2f} of the "
            "measured points; there the low-light changes are "
            + ", ".join(f"{METRIC_TITLES[k]} {format_change(best['lowlight'][k])}" for k in METRICS)
            + ". Along the line the normal-light losses shrink only with the gains in the dark: in one "
            f"model of this size and training budget they are their price; {route}"
        )
    else:
        lines.append(
            f"No measured point keeps normal light within {NORMAL_TOLERANCE:.0%} on every metric; {route}"
        )
    return lines


def _switch_verdict(v: dict) -> list[str]:
    if "switch_lowlight_change" not in v:
        return []
    return [
        "- Deployed as a pair switched by brightness (below): better than the baseline in low light on all "
        f"four metrics: {_yes(v['switch_lowlight_all_better'])}; normal light within {NORMAL_TOLERANCE:.0%}: "
        f"{_yes(v['switch_normal_within_tolerance'])} (worst change "
        f"{format_change(v['switch_normal_worst_change'], 1)}).",
    ]


def _switch_lines(results: dict, v: dict) -> list[str]:
    sw = switched(results)
    if sw is None:
        return []
    lines = [
        "",
        "### As deployed: the two models switched by brightness",
        "",
        "`lowlight-matting matte` keeps both models and sends a photo to the fine-tune only when it is dark "
        f"(mean linear luminance below {DARK_THRESHOLD:.4f}, the package's one meaning of dark), otherwise to "
        "the baseline. The same test images through that switch (computed from the per-image metrics above), "
        "changes against the baseline alone:",
        "",
        "| test set | photos sent to the fine-tune | " + " | ".join(METRIC_TITLES[k] for k in METRICS) + " |",
        "|---|---:|" + "---:|" * len(METRICS),
    ]
    for light, title in (("lowlight", "low light"), ("normal", "normal light")):
        ch = v[f"switch_{light}_change"]
        lines.append(
            f"| {title} | {sw[light]['to_finetuned']} of {sw[light]['n']} | "
            + " | ".join(format_change(ch[k]) for k in METRICS)
            + " |"
        )
    missed = sw["lowlight"]["n"] - sw["lowlight"]["to_finetuned"]
    lines += [
        "",
        f"The {missed} darkened test photos at or above the threshold go to the baseline, so the switch gives "
        "up the fine-tune's gains on them (see 'Low light by input brightness'); the normal-light photos below "
        "it go to the fine-tune.",
    ]
    return lines


def render_report(results: dict) -> str:
    """The Markdown report of one run (``report.md``): both test sets, the article's claim beside ours."""
    v = verdict(results)
    n_test = results.get("n_test", "?")
    lines = [
        "# Low-light fine-tuning of CV-UNet: the article's experiment, measured",
        "",
        f"Preset **{results.get('preset', '?')}** on **{results.get('device', '?')}**, "
        f"{results.get('seconds', float('nan')):.0f} s wall{_load_note(results)}. {_setup(results)} "
        f"Test sets: the same {n_test} held-out composites (a data seed never used in training) under normal "
        "light and through the low-light simulator (fixed seed).",
        "",
        "Metrics: whole image (trimap-free convention), SAD and Gradient /1000 as in the Deep Image Matting "
        "code, MSE raw (not ×10³), Connectivity /1000; lower is better. Our images are small, so absolute SAD/"
        "Grad/Conn are not comparable with the article's; compare the relative changes.",
        "",
        "## Low light (simulated)",
        "",
        metrics_table(
            [
                ("baseline (normal-light training)", results["lowlight"]["baseline"]),
                ("fine-tuned (low-light recipe)", results["lowlight"]["finetuned"]),
                ("article: original CV-UNet", ARTICLE["baseline"]),
                ("article: fine-tuned", ARTICLE["finetuned"]),
            ],
            [
                ("**ours: relative change**", v["lowlight_change"]),
                ("article: relative change", v["article_change"]),
            ],
        ),
        *_ci_row(v.get("lowlight_ci"), n_test),
        "",
        "## Normal light",
        "",
        metrics_table(
            [
                ("baseline (normal-light training)", results["normal"]["baseline"]),
                ("fine-tuned (low-light recipe)", results["normal"]["finetuned"]),
            ],
            [("**relative change**", v["normal_change"])],
        ),
        *_ci_row(v.get("normal_ci"), n_test),
        "",
        f"- Fine-tuned beats the baseline in low light on all four metrics: {_yes(v['lowlight_all_better'])}.",
        f"- Normal light within {NORMAL_TOLERANCE:.0%} of the baseline on every metric: "
        f"{_yes(v['normal_within_tolerance'])} (worst change {format_change(v['normal_worst_change'], 1)}).",
        *_switch_verdict(v),
        "",
        "## How much was there to gain?",
        "",
        "A relative change can only be as large as low light hurts the baseline. The baseline's error on the "
        "*normal-light* versions of the same test images is the natural reference: a fine-tune that made the "
        "model see in the dark as well as in daylight would reach it (it is not a hard bound: more training "
        "can go below it).",
        "",
        "| | " + " | ".join(METRIC_TITLES[k] for k in METRICS) + " |",
        "|---|" + "---:|" * len(METRICS),
        "| baseline: low light vs normal light (penalty) | "
        + " | ".join(format_change(v["lowlight_penalty"][k]) for k in METRICS)
        + " |",
        "| change that would reach the normal-light reference | "
        + " | ".join(format_change(v["reference_change"][k]) for k in METRICS)
        + " |",
        "| **ours: change measured** | "
        + " | ".join(format_change(v["lowlight_change"][k]) for k in METRICS)
        + " |",
        "| share of the gap closed | " + " | ".join(_share(v["gap_closed"][k]) for k in METRICS) + " |",
        "| article: change claimed | "
        + " | ".join(format_change(v["article_change"][k]) for k in METRICS)
        + " |",
    ]
    lines += _tradeoff_lines(results)
    lines += _switch_lines(results, v)
    unknown = results.get("unknown_region")
    if unknown:
        lines += [
            "",
            "## Unknown region only (trimap derived from the ground truth)",
            "",
            f"Same predictions, counted only where the trimap is unknown ({results.get('trimap', 'eroded/dilated GT')}).",
            "",
        ]
        for light in ("lowlight", "normal"):
            if light not in unknown:
                continue
            ch = comparison_rows(unknown[light]["baseline"], unknown[light]["finetuned"])
            lines += [
                f"**{'Low light' if light == 'lowlight' else 'Normal light'}**",
                "",
                metrics_table(
                    [("baseline", unknown[light]["baseline"]), ("fine-tuned", unknown[light]["finetuned"])],
                    [("relative change", ch)],
                ),
                "",
            ]
    by_brightness = results.get("lowlight_by_brightness")
    if by_brightness:
        lines += ["", "## Low light by input brightness", ""]
        lines += [
            "| mean input luminance | n | SAD baseline | SAD fine-tuned | change |",
            "|---|---:|---:|---:|---:|",
        ]
        for b in by_brightness:
            lines.append(
                f"| {b['range']} | {b['n']} | {b['baseline_sad']:.2f} | {b['finetuned_sad']:.2f} | "
                f"{format_change(relative_change(b['baseline_sad'], b['finetuned_sad']))} |"
            )
    figures = results.get("figures") or {}
    if figures:
        lines += ["", "## Figures", ""]
        for title, name in figures.items():
            lines.append(f"- {title}: [`{name}`]({name})")
        if "comparison" in figures:
            lines += ["", f"![visual comparison]({figures['comparison']})"]
    lines += [
        "",
        "## How to read this",
        "",
        "- One simulator for training and testing: the fine-tune darkens its batches on the device with "
        "`lowlight_matting.simulate.simulate_batch`, the low-light test set comes from "
        "`lowlight_matting.simulate.LowLightSimulator`; both draw their parameters from the one law of "
        "`lowlight_matting.simulate.params` and apply the same steps (exposure cut, colour cast, blur, "
        "Poisson-Gaussian noise, ISP gain, JPEG), on different images with different draws. This measures "
        "adaptation to *that* degradation, not to real night photos; the article's test set was real "
        "low-light photos we do not have.",
        "- The fine-tuned model trained for more steps in all (base + fine-tune). The ablation's control "
        "(`lowlight-matting demo --ablation`) spends the same extra steps on normal light only, separating "
        "the effect of low-light data from the effect of longer training.",
        "- The 95 % intervals cover the choice of test images only, not the randomness of training: "
        "`lowlight-matting demo --seed 0 1 2` repeats the whole run per seed and writes `seeds.md`.",
        "- Seeds are fixed; the run is repeatable on the same machine, library versions and number of torch "
        "threads (another thread count changes the floating-point summation order and with it the trajectory).",
        "",
        "Checkpoints: `finetuned.pt` (and `baseline.pt` when the base was trained in this run; load with "
        "`lowlight_matting.weights.load_model`). The fine-tune's run folder `runs/finetune/` holds its "
        "`config.yaml`: `lowlight-matting train --config runs/finetune/config.yaml` reruns it. Numbers: "
        "`results.json`.",
        "",
    ]
    return "\n".join(lines)


def render_ablation(rows: Sequence[dict], baseline: dict) -> str:
    """``ablation.md``: one row per fine-tune variant, metrics and changes vs the baseline, per test set."""
    lines = [
        "# Ablation: the fine-tune with one ingredient removed at a time",
        "",
        "All variants start from the same baseline checkpoint, use the same number of steps and the same test "
        "sets. Changes are relative to the baseline (negative = better).",
    ]
    for title, light in (("Low light", "lowlight"), ("Normal light", "normal")):
        lines += [
            "",
            f"## {title}",
            "",
            "| variant | "
            + " | ".join(f"{METRIC_TITLES[k]} ↓" for k in METRICS)
            + " | "
            + " | ".join(f"Δ{METRIC_TITLES[k]}" for k in METRICS)
            + " |",
            "|---|" + "---:|" * (2 * len(METRICS)),
            "| baseline | "
            + " | ".join(format_metric(k, baseline[light][k]) for k in METRICS)
            + " |"
            + " |" * len(METRICS),
        ]
        for r in rows:
            ch = comparison_rows(baseline[light], r[light])
            lines.append(
                f"| {r['variant']} | "
                + " | ".join(format_metric(k, r[light][k]) for k in METRICS)
                + " | "
                + " | ".join(format_change(ch[k]) for k in METRICS)
                + " |"
            )
    lines += _ablation_intervals(rows)
    return "\n".join(lines) + "\n"


def _ablation_intervals(rows: Sequence[dict], level: float = 0.95) -> list[str]:
    """Each variant against the full recipe (the first row), paired over the same test images, with intervals.

    Needs ``per_image`` in the rows (runs since the ablation kept them) for at least two test images; returns
    no lines otherwise.
    """
    if len(rows) < 2 or not all("per_image" in r for r in rows):
        return []
    if len(rows[0]["per_image"]["lowlight"][METRICS[0]]) < 2:
        return []
    ref = rows[0]
    lines = [
        "",
        f"## Each variant against the {ref['variant']}",
        "",
        f"Relative change of the variant's mean error against the {ref['variant']}'s, on the same test images, "
        f"with its {level:.0%} interval (paired bootstrap over the images, "
        "`lowlight_matting.evaluation.bootstrap_relative_change`). An interval that contains 0 means this "
        "run cannot tell the two apart.",
    ]
    for title, light in (("Low light", "lowlight"), ("Normal light", "normal")):
        lines += [
            "",
            f"**{title}**",
            "",
            "| variant | " + " | ".join(METRIC_TITLES[k] for k in METRICS) + " |",
        ]
        lines.append("|---|" + "---:|" * len(METRICS))
        for r in rows[1:]:
            cells = []
            for k in METRICS:
                a, b = ref["per_image"][light][k], r["per_image"][light][k]
                lo, hi = bootstrap_relative_change(a, b, level=level)
                cells.append(
                    f"{format_change(relative_change(np.mean(a), np.mean(b)))} "
                    f"[{format_change(lo)}, {format_change(hi)}]"
                )
            lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    return lines


# --------------------------------------------------------------------------------------------------------
# several seeds
