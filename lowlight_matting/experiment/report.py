"""The demo's report: the article's table with relative changes, the verdict, 95 % intervals, headroom, the
ablation, several seeds, and the figures (``report.md``, ``ablation.md``, ``seeds.md``, PNGs).

Everything here reads a results dict (what ``results.json`` holds) and renders it; nothing trains or
evaluates, so a committed record can be re-rendered from its JSON alone.
"""

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lowlight_matting.evaluate import bootstrap_relative_change, relative_change
from lowlight_matting.evaluate import to_jsonable as _jsonable

METRICS: tuple[str, ...] = ("mse", "sad", "grad", "conn")
"""Metric keys in the order of the article's table (MSE, SAD, Gradient, Connectivity)."""

METRIC_TITLES = {"mse": "MSE", "sad": "SAD", "grad": "Grad", "conn": "Conn"}

ARTICLE = {
    "baseline": {"mse": 0.032, "sad": 48.7, "grad": 28.5, "conn": 35.2},
    "finetuned": {"mse": 0.018, "sad": 31.4, "grad": 19.3, "conn": 24.1},
}
"""The article's table ("LL-Matte-Test", N = 200): original CV-UNet vs fine-tuned, lower is better."""

NORMAL_TOLERANCE = 0.05
"""The fine-tuned model may lose at most this fraction (5%) against the baseline on normal light."""


# --------------------------------------------------------------------------------------------------------
# tables, relative changes, report
# --------------------------------------------------------------------------------------------------------
def format_change(change: float, digits: int = 0) -> str:
    """A relative change as a signed percentage: ``-0.4375 -> '-44%'``, ``0.02 -> '+2%'``, NaN -> ``'n/a'``."""
    if not math.isfinite(change):
        return "n/a"
    pct = round(change * 100, digits)
    if pct == 0:
        return f"{0:.{digits}f}%"
    return f"{pct:+.{digits}f}%"


def format_metric(key: str, value: float) -> str:
    """Metric value as shown in the tables: MSE with 4 decimals (raw, not ×10³), the others with 2."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return f"{value:.4f}" if key == "mse" else f"{value:.2f}"


def comparison_rows(before: dict, after: dict) -> dict[str, float]:
    """Relative change per metric from ``before`` to ``after`` (dicts with keys :data:`METRICS`)."""
    return {k: relative_change(before[k], after[k]) for k in METRICS}


def metrics_table(
    rows: Sequence[tuple[str, dict[str, float]]], changes: Sequence[tuple[str, dict[str, float]]] = ()
) -> str:
    """A Markdown table in the article's shape: one row per model (MSE, SAD, Grad, Conn), then change rows."""
    head = "| model | " + " | ".join(f"{METRIC_TITLES[k]} ↓" for k in METRICS) + " |"
    sep = "|---|" + "---:|" * len(METRICS)
    lines = [head, sep]
    for label, m in rows:
        lines.append(f"| {label} | " + " | ".join(format_metric(k, m[k]) for k in METRICS) + " |")
    for label, ch in changes:
        lines.append(f"| {label} | " + " | ".join(format_change(ch[k]) for k in METRICS) + " |")
    return "\n".join(lines)


def verdict(results: dict, tolerance: float = NORMAL_TOLERANCE) -> dict[str, Any]:
    """What the run shows: does the fine-tuned model win in the dark on every metric, and keep normal light?

    Returns ``lowlight_all_better`` (bool), ``normal_within_tolerance`` (bool: no metric worse by more than
    ``tolerance``), ``normal_worst_change`` and the per-metric relative changes of both test sets.
    """
    low = comparison_rows(results["lowlight"]["baseline"], results["lowlight"]["finetuned"])
    nor = comparison_rows(results["normal"]["baseline"], results["normal"]["finetuned"])
    worst = max(nor.values())
    return {
        "lowlight_change": low,
        "normal_change": nor,
        "lowlight_all_better": all(v < 0 for v in low.values()),
        "normal_worst_change": worst,
        "normal_within_tolerance": bool(worst <= tolerance),
        "article_change": comparison_rows(ARTICLE["baseline"], ARTICLE["finetuned"]),
        **headroom(results),
        **confidence_intervals(results),
    }


def confidence_intervals(results: dict, level: float = 0.95, seed: int = 0) -> dict[str, dict]:
    """95 % intervals of the fine-tuned-vs-baseline changes over the test images, when the run kept them.

    ``results["per_image"][light][model][metric]`` holds one value per test image (the same images, in the
    same order, for both models); :func:`~lowlight_matting.evaluate.bootstrap_relative_change` gives the paired
    bootstrap interval. Returns ``{"lowlight_ci": {metric: [lo, hi]}, "normal_ci": {...}}``, or ``{}`` for
    results without per-image values.
    """
    per = results.get("per_image")
    if not per:
        return {}
    return {
        f"{light}_ci": {
            k: list(
                bootstrap_relative_change(
                    per[light]["baseline"][k], per[light]["finetuned"][k], level=level, seed=seed
                )
            )
            for k in METRICS
        }
        for light in ("lowlight", "normal")
        if light in per
    }


def headroom(results: dict) -> dict[str, dict[str, float]]:
    """How much there was to gain in the dark, with the baseline's normal-light error as the reference.

    Per metric ``k``, with ``b_low``, ``b_norm`` the baseline's errors in low and normal light and ``f_low``
    the fine-tuned model's in low light:

    - ``lowlight_penalty`` = (b_low − b_norm) / b_norm: how much worse low light makes the baseline;
    - ``reference_change`` = (b_norm − b_low) / b_low: the relative change a fine-tune would show if it
      brought low-light error down to the baseline's normal-light error;
    - ``gap_closed`` = (b_low − f_low) / (b_low − b_norm): the share of that gap the fine-tune closed
      (NaN when low light does not hurt the baseline).

    The reference is not a bound (a fine-tune that trains longer may beat it), but it explains the size of
    a relative change: a −36 % change needs a baseline at least 1.56× worse in the dark than in normal light
    to stay below the reference.
    """
    b_low, b_norm = results["lowlight"]["baseline"], results["normal"]["baseline"]
    f_low = results["lowlight"]["finetuned"]
    closed = {}
    for k in METRICS:
        gap = float(b_low[k]) - float(b_norm[k])
        closed[k] = (float(b_low[k]) - float(f_low[k])) / gap if gap > 0 else float("nan")
    return {
        "lowlight_penalty": comparison_rows(b_norm, b_low),
        "reference_change": comparison_rows(b_low, b_norm),
        "gap_closed": closed,
    }


def _num(x: float | None) -> float:
    """``x`` as a float; ``None`` (how JSON stores NaN here) becomes NaN."""
    return float("nan") if x is None else float(x)


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


def render_report(results: dict) -> str:
    """The Markdown report of one run (``report.md``): both test sets, the article's claim beside ours."""
    v = verdict(results)
    p = results.get("config", {})
    n_test = results.get("n_test", "?")
    lines = [
        "# Low-light fine-tuning of CV-UNet: the article's experiment, measured",
        "",
        f"Preset **{results.get('preset', '?')}** on **{results.get('device', '?')}**, "
        f"{results.get('seconds', float('nan')):.0f} s wall{_load_note(results)}. Encoder `{p.get('encoder', '?')}`, "
        f"{p.get('size', '?')}² px, baseline {p.get('baseline_steps', '?')} steps, fine-tune "
        f"{sum(s['steps'] for s in p.get('stages', [])) or '?'} steps, batch {p.get('batch_size', '?')}, "
        f"{p.get('n_train', '?')} training composites. Test sets: the same {n_test} held-out composites "
        "(a data seed never used in training) under normal light and through the low-light simulator "
        "(fixed seed).",
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
        "- The low-light test images come from the same simulator family the fine-tune trains on (different "
        "images, different noise draws): this measures adaptation to *that* degradation, not to real night "
        "photos. The article's test set was real low-light photos we do not have.",
        "- The fine-tuned model trained for more steps in all (baseline + fine-tune). The ablation's control "
        "(`lowlight-matting demo --ablation`) spends the same extra steps on normal light only, separating "
        "the effect of low-light data from the effect of longer training.",
        "- The 95 % intervals cover the choice of test images only, not the randomness of training: "
        "`lowlight-matting demo --seed 0 1 2` repeats the whole run per seed and writes `seeds.md`.",
        "- Seeds are fixed; the run is repeatable on the same machine, library versions and number of torch "
        "threads (another thread count changes the floating-point summation order and with it the trajectory).",
        "",
        "Checkpoints: `baseline.pt`, `finetuned.pt` (load with "
        "`lowlight_matting.checkpoint.model_from_checkpoint`). Numbers: `results.json`.",
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

    Needs ``per_image`` in the rows (runs since the ablation kept them); returns no lines otherwise.
    """
    if len(rows) < 2 or not all("per_image" in r for r in rows):
        return []
    ref = rows[0]
    lines = [
        "",
        f"## Each variant against the {ref['variant']}",
        "",
        f"Relative change of the variant's mean error against the {ref['variant']}'s, on the same test images, "
        f"with its {level:.0%} interval (paired bootstrap over the images, "
        "`lowlight_matting.evaluate.bootstrap_relative_change`). An interval that contains 0 means this "
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


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (numpy scalars converted, non-finite floats as null)."""
    p = Path(path)
    p.write_text(json.dumps(_jsonable(obj), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return p


# --------------------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------------------
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
    fig.savefig(path, dpi=110)
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
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


# --------------------------------------------------------------------------------------------------------
# several seeds
# --------------------------------------------------------------------------------------------------------
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
    (out / "seeds.md").write_text(render_seeds(summary), encoding="utf-8")
    return summary
