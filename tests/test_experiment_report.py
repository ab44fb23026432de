"""The demo's report (lowlight_matting.experiment.report / figures): tables, verdict, intervals, headroom,
seeds summary, ablation table and figures, from hand-made results dicts."""

import json
import math

import numpy as np
import pytest

from lowlight_matting import experiment as ex
from lowlight_matting.evaluation import format_change, relative_change
from lowlight_matting.experiment.report import comparison_rows, format_metric
from lowlight_matting.io import to_jsonable


# --------------------------------------------------------------------------------------- report writing
def test_relative_change_sign_and_degenerate_cases():
    assert relative_change(0.032, 0.018) == pytest.approx(-0.4375)
    assert relative_change(10, 12) == pytest.approx(0.2)
    assert math.isnan(relative_change(0, 1)) and math.isnan(relative_change(1, float("nan")))


def test_format_change_and_metric():
    assert format_change(-0.4375) == "-44%"
    assert format_change(0.021) == "+2%"
    assert format_change(0.0001) == "0%"
    assert format_change(-0.0123, 1) == "-1.2%"
    assert format_change(float("nan")) == "n/a"
    assert format_metric("mse", 0.0321) == "0.0321" and format_metric("sad", 48.7) == "48.70"


def test_article_changes_are_the_claimed_ones():
    ch = comparison_rows(ex.ARTICLE["baseline"], ex.ARTICLE["finetuned"])
    assert {k: format_change(v) for k, v in ch.items()} == {
        "mse": "-44%",
        "sad": "-36%",
        "grad": "-32%",
        "conn": "-32%",
    }


def _results(low_ft_sad=5.0, normal_ft_sad=10.2):
    m = {"sad": 10.0, "mse": 0.02, "grad": 4.0, "conn": 9.0}
    return {
        "lowlight": {
            "baseline": dict(m, sad=20.0),
            "finetuned": {"sad": low_ft_sad, "mse": 0.01, "grad": 3.0, "conn": 5.0},
        },
        "normal": {"baseline": m, "finetuned": dict(m, sad=normal_ft_sad)},
        "preset": "unit",
        "device": "cpu",
        "seconds": 1.0,
    }


def test_verdict_and_report_say_what_the_numbers_say():
    good = ex.verdict(_results())
    assert good["lowlight_all_better"] and good["normal_within_tolerance"]
    assert good["lowlight_change"]["sad"] == pytest.approx(-0.75)
    bad = ex.verdict(_results(low_ft_sad=25.0, normal_ft_sad=11.0))
    assert not bad["lowlight_all_better"] and not bad["normal_within_tolerance"]
    assert bad["normal_worst_change"] == pytest.approx(0.1)
    text = ex.render_report(_results(low_ft_sad=25.0, normal_ft_sad=11.0))
    assert "+25%" in text and "+10%" in text
    assert "all four metrics: **no**" in text
    assert "| **ours: relative change** | -50% | +25% | -25% | -44% |" in text


def test_report_setup_says_when_the_fine_tune_distilled_on_normal_light():
    """The setup sentence names the learning-without-forgetting weight from the run's config, and only then."""
    r = _results()
    r["finetune_config"] = {"loss": {"distill": 4.0}}
    assert "the others also learn the base's own prediction, weight 4 (`loss.distill`" in ex.render_report(r)
    r["finetune_config"] = {"loss": {"distill": 0.0}}
    assert "`loss.distill`" not in ex.render_report(r)


def test_headroom_uses_the_normal_light_baseline_as_reference():
    v = ex.verdict(_results())
    # SAD: baseline 20 in the dark, 10 in daylight, fine-tuned 5 in the dark
    assert v["lowlight_penalty"]["sad"] == pytest.approx(1.0)
    assert v["reference_change"]["sad"] == pytest.approx(-0.5)
    assert v["gap_closed"]["sad"] == pytest.approx(1.5)
    # MSE: low light does not hurt the baseline (0.02 both): no gap to close
    assert math.isnan(v["gap_closed"]["mse"])
    text = ex.render_report(_results())
    assert "| share of the gap closed | n/a | 150% |" in text
    assert "| change that would reach the normal-light reference | 0% | -50% |" in text


def test_tradeoff_section_finds_the_last_point_that_keeps_normal_light():
    """The weight line: changes vs the baseline per t (the fine-tune itself as t = 1), and the sentence names
    the largest measured t whose normal-light changes all stay within the tolerance, with its dark gains."""
    r = _results(normal_ft_sad=12.0)  # the fine-tune loses 20 % SAD in daylight
    assert ex.tradeoff_rows(r) == [] and "What keeping normal light costs" not in ex.render_report(r)
    m = r["normal"]["baseline"]
    r["tradeoff"] = [
        {"t": 0.75, "lowlight": dict(r["lowlight"]["baseline"], sad=10.0), "normal": dict(m, sad=10.8)},
        {"t": 0.25, "lowlight": dict(r["lowlight"]["baseline"], sad=18.0), "normal": dict(m, sad=10.1)},
        {"t": 0.5, "lowlight": dict(r["lowlight"]["baseline"], sad=15.0), "normal": dict(m, sad=10.4)},
    ]
    rows = ex.tradeoff_rows(r)
    assert [x["t"] for x in rows] == [0.25, 0.5, 0.75, 1.0]
    assert [x["normal_ok"] for x in rows] == [True, True, False, False]
    assert rows[1]["lowlight"]["sad"] == pytest.approx(-0.25) and rows[3]["normal"]["sad"] == pytest.approx(
        0.2
    )
    text = ex.render_report(r)
    assert "| 0.50 | 0% | -25% | 0% | 0% | 0% | +4% | 0% | 0% |" in text
    assert "up to t = 0.50 of the measured points; there the low-light changes are MSE 0%, SAD -25%" in text
    r["normal"]["finetuned"] = dict(m)
    assert "The fine-tuned model itself (t = 1) keeps normal light within 5%" in ex.render_report(r)
    r["normal"]["finetuned"] = dict(m, sad=12.0)
    for x in r["tradeoff"]:
        x["normal"] = dict(m, sad=11.0)
    assert "No measured point keeps normal light within 5%" in ex.render_report(r)


def test_report_gives_bootstrap_intervals_when_per_image_values_are_kept():
    r = _results()
    assert "lowlight_ci" not in ex.verdict(r) and "95 % interval of our change" not in ex.render_report(r)
    g = np.random.default_rng(1)
    base = g.gamma(2.0, 0.1, 40)
    r["per_image"] = {
        light: {
            "baseline": {k: base.tolist() for k in ex.METRICS},
            "finetuned": {k: (base * f).tolist() for k in ex.METRICS},
        }
        for light, f in (("lowlight", 0.5), ("normal", 1.0))
    }
    v = ex.verdict(r)
    assert v["lowlight_ci"]["sad"] == pytest.approx([-0.5, -0.5])
    assert v["normal_ci"]["mse"] == pytest.approx([0.0, 0.0])
    text = ex.render_report(r)
    assert "| 95 % interval of our change (paired bootstrap over the ? test images) | [-50%, -50%] |" in text


def test_seed_summary_gives_mean_and_sd_of_every_change():
    a, b = _results(low_ft_sad=5.0), _results(low_ft_sad=15.0, normal_ft_sad=11.0)
    a["config"], b["config"] = {"seed": 0}, {"seed": 1}
    s = ex.summarize_seeds([a, b])
    assert s["seeds"] == [0, 1] and s["n"] == 2
    assert s["lowlight_change"]["sad"]["values"] == pytest.approx([-0.75, -0.25])
    assert s["lowlight_change"]["sad"]["mean"] == pytest.approx(-0.5)
    assert s["lowlight_change"]["sad"]["sd"] == pytest.approx(np.std([-0.75, -0.25], ddof=1))
    assert s["lowlight_all_better"] == 2 and s["normal_within_tolerance"] == 1
    text = ex.render_seeds(s)
    assert "| **mean ± sd** | -50% ± 0 | -50% ± 35 |" in text
    assert "in 1 of 2 runs" in text
    # written as JSON (NaN -> null) and rendered again, as tools/record_results.py does
    again = ex.render_seeds(json.loads(json.dumps(to_jsonable(s))))
    assert again == text and "| **mean ± sd** | n/a |" in again
    single = ex.summarize_seeds([a])
    assert math.isnan(single["lowlight_change"]["sad"]["sd"])
    with pytest.raises(ValueError, match="runs"):
        ex.summarize_seeds([])


def test_ablation_table_lists_every_variant_with_changes():
    base = {
        "lowlight": {"sad": 20.0, "mse": 0.02, "grad": 4.0, "conn": 10.0},
        "normal": {"sad": 10.0, "mse": 0.01, "grad": 2.0, "conn": 5.0},
    }
    rows = [
        {
            "variant": "full recipe",
            "lowlight": {k: v / 2 for k, v in base["lowlight"].items()},
            "normal": base["normal"],
        }
    ]
    text = ex.render_ablation(rows, base)
    assert "| full recipe | 0.0100 | 10.00 | 2.00 | 5.00 | -50% | -50% | -50% | -50% |" in text
    assert "against the full recipe" not in text  # no per-image values: no intervals
    # with per-image values: each variant against the full recipe, paired over the same images
    g = np.random.default_rng(0)
    imgs = g.gamma(2.0, 1.0, 30)
    per = {light: {k: imgs.tolist() for k in ex.METRICS} for light in ("lowlight", "normal")}
    worse = {light: {k: (1.2 * imgs).tolist() for k in ex.METRICS} for light in ("lowlight", "normal")}
    rows = [dict(rows[0], per_image=per), dict(rows[0], variant="no LLIE", per_image=worse)]
    text = ex.render_ablation(rows, base)
    assert "## Each variant against the full recipe" in text
    assert "| no LLIE | +20% [+20%, +20%] | +20% [+20%, +20%] |" in text


def test_loss_curve_and_comparison_figures(tmp_path):
    """Both figures are written as images: one panel per history, one row per comparison row, seven columns."""
    import cv2

    hist = [{"step": i, "loss": 1.0 / (i + 1), "stage": "1" if i < 30 else "2"} for i in range(60)]
    hist[-1]["val_normal"] = 0.1
    ex.plot_loss_curves({"a": hist, "b": []}, tmp_path / "c.png")
    g = np.random.default_rng(0)
    row = {
        "normal": g.integers(0, 255, (16, 16, 3), dtype=np.uint8),
        "lowlight": np.zeros((16, 16, 3), np.uint8),
        "gt": g.random((16, 16)),
        "baseline": g.random((16, 16)),
        "finetuned": g.random((16, 16)),
    }
    ex.plot_comparison_grid([row, row], tmp_path / "g.png", ["x", "y"])
    curves, grid = cv2.imread(str(tmp_path / "c.png")), cv2.imread(str(tmp_path / "g.png"))
    assert curves.shape[1] > 1.8 * curves.shape[0]  # two panels side by side
    one = tmp_path / "g1.png"
    ex.plot_comparison_grid([row], one, ["x"])
    assert grid.shape[0] > 1.5 * cv2.imread(str(one)).shape[0]  # two rows are taller than one
    assert grid.shape[1] > 3 * grid.shape[0] / 2  # seven columns, two rows


def _with_switch(r, low_bright, normal_bright, per_low, per_normal):
    """Per-image values (one list per model, the same for every metric) and input brightness for a results
    dict; the means are set from them so that the run is consistent."""
    r["brightness"] = {"lowlight": low_bright, "normal": normal_bright}
    r["per_image"] = {}
    for light, per in (("lowlight", per_low), ("normal", per_normal)):
        r["per_image"][light] = {m: {k: list(per[m]) for k in ex.METRICS} for m in ("baseline", "finetuned")}
        for m in ("baseline", "finetuned"):
            r[light][m] = {k: float(np.mean(per[m])) for k in ex.METRICS}
    return r


def test_switched_pair_sends_only_dark_photos_to_the_fine_tune():
    """The deployed pair: each photo below DARK_THRESHOLD takes the fine-tune's value, the others the
    baseline's; a daylight regression of the fine-tune alone disappears when no daylight photo is dark, and
    the dark gains shrink by the darkened photos that read bright."""
    from lowlight_matting.color import DARK_THRESHOLD

    dark, bright = DARK_THRESHOLD / 2, DARK_THRESHOLD * 2
    r = _with_switch(
        _results(),
        low_bright=[dark, dark, dark, bright],
        normal_bright=[bright, bright, bright, dark],
        per_low={"baseline": [4.0, 4.0, 4.0, 4.0], "finetuned": [2.0, 2.0, 2.0, 2.0]},
        per_normal={"baseline": [1.0, 1.0, 1.0, 1.0], "finetuned": [2.0, 2.0, 2.0, 1.0]},
    )
    sw = ex.switched(r)
    assert sw["lowlight"]["to_finetuned"] == 3 and sw["normal"]["to_finetuned"] == 1
    assert sw["lowlight"]["mean"]["sad"] == pytest.approx((3 * 2.0 + 4.0) / 4)
    assert sw["normal"]["mean"]["grad"] == pytest.approx(1.0)
    v = ex.verdict(r)
    assert not v["normal_within_tolerance"]  # the fine-tune alone: +75 % in daylight
    assert v["switch_lowlight_change"]["sad"] == pytest.approx(-0.375)
    assert v["switch_normal_change"]["mse"] == pytest.approx(0.0)
    assert v["switch_lowlight_all_better"] and v["switch_normal_within_tolerance"]
    text = ex.render_report(r)
    assert "### As deployed: the two models switched by brightness" in text
    assert "| low light | 3 of 4 | -38% | -38% | -38% | -38% |" in text
    assert "| normal light | 1 of 4 | 0% | 0% | 0% | 0% |" in text
    assert "normal light within 5%: **yes** (worst change 0.0%)" in text
    # a run without per-image brightness (older records) has no switch
    del r["brightness"]
    assert ex.switched(r) is None and "switch_lowlight_change" not in ex.verdict(r)
    assert "As deployed" not in ex.render_report(r)


def test_seed_summary_counts_the_switched_pair_when_every_run_kept_brightness():
    from lowlight_matting.color import DARK_THRESHOLD

    dark, bright = DARK_THRESHOLD / 2, DARK_THRESHOLD * 2
    runs = []
    for seed, ft_normal in ((0, 1.0), (1, 2.0)):
        r = _with_switch(
            _results(),
            low_bright=[dark, dark],
            normal_bright=[bright, dark],
            per_low={"baseline": [4.0, 4.0], "finetuned": [2.0, 2.0]},
            per_normal={"baseline": [1.0, 1.0], "finetuned": [1.0, ft_normal]},
        )
        r["config"] = {"seed": seed}
        runs.append(r)
    s = ex.summarize_seeds(runs)
    assert s["switch_lowlight_change"]["sad"]["values"] == pytest.approx([-0.5, -0.5])
    assert s["switch_normal_change"]["sad"]["values"] == pytest.approx([0.0, 0.5])
    assert s["switch_lowlight_all_better"] == 2 and s["switch_normal_within_tolerance"] == 1
    text = ex.render_seeds(s)
    assert "## Deployed, switched by brightness: normal light vs baseline" in text
    assert "normal light within 5% on every metric in 1 of 2 runs" in text
    del runs[1]["brightness"]
    assert "switch_lowlight_change" not in ex.summarize_seeds(runs)
